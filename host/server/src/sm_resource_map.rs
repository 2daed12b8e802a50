//! Resource maps on the server: `$WEFT_HOME/resource-map.yaml` (read when the server starts)
//! and each state machine's own map, which takes precedence over it (see
//! [`weft_engine::resource_map`] for the format). A state machine's map is set through
//! `/v1/state-machines/{name}/resource-map`:
//!
//! - `PUT` (body: the map in YAML or JSON) replaces it; needs `states:UpdateStateMachine` on
//!   the state machine's ARN. The answer lists the integrations of the current definition that
//!   are still unmapped.
//! - `GET` answers it as JSON (`{}` when it has none); needs `states:DescribeStateMachine`.
//! - `DELETE` removes it; needs `states:UpdateStateMachine`.
//!
//! Executions read the maps when they start running (or resume); DeleteStateMachine forgets
//! the state machine's map, so a later state machine of the same name does not inherit it.

use crate::error::ApiError;
use crate::records::{sm_arn, valid_name};
use crate::rest::respond;
use crate::v1_access::V1Request;
use crate::AppState;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use std::sync::Arc;
use weft_engine::resource_map::{ResourceMap, ResourceMaps};
use weft_engine::standard::resource_maps::{maps_for, own_map};

pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new().route(
        "/v1/state-machines/{name}/resource-map",
        get(get_map).put(put_map).delete(delete_map),
    )
}

/// Reads `$WEFT_HOME/resource-map.yaml` (`.yml`, `.json`) when there is one.
pub(crate) fn home_map(home: &std::path::Path) -> anyhow::Result<Arc<ResourceMap>> {
    match weft_engine::resource_map::map_in(home) {
        None => Ok(Arc::new(ResourceMap::default())),
        Some(p) => ResourceMap::read(&p).map(Arc::new).map_err(|errs| {
            let lines: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
            anyhow::anyhow!("the resource map cannot be used:\n{}", lines.join("\n"))
        }),
    }
}

/// Forgets a deleted state machine's map.
pub(crate) fn forget(app: &AppState, name: &str) -> Result<(), ApiError> {
    app.catalog.remove_resource_map(name)?;
    Ok(())
}

/// Messages for the integrations of `definition` that `maps` does not serve
/// (`POINTER: warning: ...`).
pub(crate) fn unmapped_warnings(definition: &str, maps: &ResourceMaps) -> Vec<String> {
    let Ok(def) = weft_asl::yaml::any_to_value(definition) else {
        return Vec::new();
    };
    weft_engine::resource_map::unmapped(&def, maps)
        .iter()
        .map(|u| format!("{}: warning: {}", u.pointer, u.message()))
        .collect()
}

/// The state machine's record, checked to exist (after the caller's decision).
fn definition_of(app: &AppState, name: &str) -> Result<String, ApiError> {
    match app.catalog.state_machine(name)? {
        Some(b) => {
            let r: crate::records::StateMachineRecord = serde_json::from_slice(&b)?;
            Ok(r.definition)
        }
        None => Err(ApiError::new(
            "StateMachineDoesNotExist",
            format!("State Machine Does Not Exist: '{}'", sm_arn(name)),
        )
        .with_status(axum::http::StatusCode::NOT_FOUND)),
    }
}

fn checked_name(name: &str) -> Result<String, ApiError> {
    valid_name(name).map_err(ApiError::validation)?;
    Ok(name.to_string())
}

async fn get_map(
    State(app): State<Arc<AppState>>,
    Path(name): Path<String>,
    req: V1Request,
) -> Response {
    respond(&app, &req, "states:DescribeStateMachine", |ctx| {
        let name = checked_name(&name)?;
        ctx.authorize(sm_arn(&name))?;
        definition_of(&app, &name)?;
        let map = own_map(&app.rt, &name)?.unwrap_or_default();
        Ok(json!({"stateMachineArn": sm_arn(&name), "resourceMap": map.to_json()}))
    })
}

async fn put_map(
    State(app): State<Arc<AppState>>,
    Path(name): Path<String>,
    req: V1Request,
) -> Response {
    respond(&app, &req, "states:UpdateStateMachine", |ctx| {
        let name = checked_name(&name)?;
        ctx.authorize(sm_arn(&name))?;
        let definition = definition_of(&app, &name)?;
        let text = std::str::from_utf8(&req.body)
            .map_err(|_| ApiError::validation("the resource map must be UTF-8 text"))?;
        let map = ResourceMap::parse(text, "request body").map_err(|errs| {
            let lines: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
            ApiError::validation(format!("Invalid resource map: {}", lines.join("; ")))
        })?;
        let canonical = map.to_json();
        app.catalog
            .put_resource_map(&name, canonical.to_string().as_bytes())?;
        let unmapped: Vec<Value> = unmapped_warnings(&definition, &maps_for(&app.rt, &name))
            .into_iter()
            .map(Value::String)
            .collect();
        Ok(json!({
            "stateMachineArn": sm_arn(&name),
            "resourceMap": canonical,
            "unmapped": unmapped,
        }))
    })
}

async fn delete_map(
    State(app): State<Arc<AppState>>,
    Path(name): Path<String>,
    req: V1Request,
) -> Response {
    respond(&app, &req, "states:UpdateStateMachine", |ctx| {
        let name = checked_name(&name)?;
        ctx.authorize(sm_arn(&name))?;
        forget(&app, &name)?;
        Ok(json!({}))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unmapped_warnings_name_pointer_and_entry() {
        let def = r#"{"StartAt":"Save","States":{"Save":{"Type":"Task","Resource":"arn:aws:states:::dynamodb:putItem","End":true}}}"#;
        let w = unmapped_warnings(def, &ResourceMaps::default());
        assert_eq!(w.len(), 1);
        assert!(
            w[0].starts_with("/States/Save/Resource: warning: "),
            "{w:?}"
        );
        assert!(
            w[0].contains("dynamodb:putItem: {plugin: <plugin>}"),
            "{w:?}"
        );
    }
}
