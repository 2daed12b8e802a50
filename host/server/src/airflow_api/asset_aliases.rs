//! Airflow 3's asset aliases: `GET /api/v2/assets/aliases` (`limit`, `offset`, `order_by`
//! `id`/`name`, `name_pattern`) and `GET /api/v2/assets/aliases/{asset_alias_id}`, as
//! `AssetAliasCollectionResponse` / `AssetAliasResponse` (`id`, `name`, `group`).
//!
//! The aliases are those the loaded DAGs name: `AssetAlias` (or `DatasetAlias`) objects in task
//! `outlets` and in asset schedules (`{__type__: airflow.sdk.AssetAlias, name: ...}`, or the
//! name as `__args__[0]`). An alias's id is derived from its name, stable across restarts. Each
//! alias is authorised as `weft:asset-alias:NAME` (`assets:GetAssetAlias`): the list keeps those
//! the caller may read; an unknown id is decided on `weft:asset-alias:#ID` first, so a caller
//! cannot probe which names exist.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};
use weft_dag::{Dag, Schedule};

use super::{clip, not_found, respond, sort_json, unprocessable, Query};
use crate::v1_access::V1Request;
use crate::AppState;

/// Class names (last path segment) of an alias object.
const ALIAS_CLASSES: &[&str] = &["AssetAlias", "DatasetAlias"];
/// Deepest JSON read while looking for aliases in a schedule.
const MAX_DEPTH: usize = 32;
/// Longest alias name kept (Airflow's column width).
const MAX_NAME_BYTES: usize = 1500;

/// The policy resource of an alias.
pub fn alias_resource(name: &str) -> String {
    format!("weft:asset-alias:{name}")
}

/// The id weft shows for an alias name (48 bits of its BLAKE3 hash, exact in JSON).
pub fn alias_id(name: &str) -> i64 {
    let h = blake3::hash(format!("asset-alias\0{name}").as_bytes());
    let mut v = [0u8; 8];
    v[2..].copy_from_slice(&h.as_bytes()[..6]);
    i64::from_be_bytes(v)
}

/// The alias name of `v` when it is an alias object.
fn alias_name(v: &Value) -> Option<String> {
    let m = v.as_object()?;
    let class = m.get("__type__")?.as_str()?;
    let class = class.rsplit('.').next().unwrap_or(class);
    if !ALIAS_CLASSES.contains(&class) {
        return None;
    }
    let name = m
        .get("name")
        .and_then(Value::as_str)
        .or_else(|| m.get("__args__")?.get(0)?.as_str())?
        .trim();
    (!name.is_empty() && name.len() <= MAX_NAME_BYTES && !name.chars().any(char::is_control))
        .then(|| name.to_string())
}

fn collect(v: &Value, depth: usize, out: &mut BTreeSet<String>) {
    if depth > MAX_DEPTH {
        return;
    }
    if let Some(n) = alias_name(v) {
        out.insert(n);
        return;
    }
    match v {
        Value::Array(a) => a.iter().for_each(|x| collect(x, depth + 1, out)),
        Value::Object(m) => m.values().for_each(|x| collect(x, depth + 1, out)),
        _ => {}
    }
}

/// Every alias the DAGs name, by name.
pub fn aliases_of(dags: &[Dag]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for d in dags {
        for t in d.tasks.values() {
            if let Some(o) = t.extra.get("outlets") {
                collect(o, 0, &mut out);
            }
        }
        if let Schedule::Assets { condition, .. } = &d.schedule {
            collect(condition, 0, &mut out);
        }
    }
    out
}

fn alias_json(name: &str) -> Value {
    json!({"id": alias_id(name), "name": name, "group": "asset"})
}

/// `GET /api/v2/assets/aliases`.
pub async fn list(State(app): State<Arc<AppState>>, req: V1Request) -> Response {
    respond(&app, &req, "assets:GetAssetAlias", StatusCode::OK, |ctx| {
        ctx.filtered("weft:asset-alias:*");
        let q = Query::parse(req.query())?;
        let page = q.page()?;
        let order = q.order_by(&["id", "name"], "id")?;
        let pat = q.get("name_pattern");
        let (dags, _, _) = crate::rest::load_dags(&app);
        let mut out: Vec<Value> = aliases_of(&dags)
            .iter()
            .filter(|n| ctx.may("assets:GetAssetAlias", &alias_resource(n)))
            .filter(|n| pat.is_none_or(|p| super::dags::like(p, n)))
            .map(|n| alias_json(n))
            .collect();
        sort_json(&mut out, &order);
        let total = out.len();
        Ok(json!({"asset_aliases": page.take(out), "total_entries": total}))
    })
}

/// `GET /api/v2/assets/aliases/{asset_alias_id}`.
pub async fn get(
    State(app): State<Arc<AppState>>,
    Path(raw): Path<String>,
    req: V1Request,
) -> Response {
    respond(&app, &req, "assets:GetAssetAlias", StatusCode::OK, |ctx| {
        let id: i64 = raw.parse().map_err(|_| {
            unprocessable(
                &["path", "asset_alias_id"],
                format!("Input should be a valid integer, got `{}`", clip(&raw)),
            )
        })?;
        let (dags, _, _) = crate::rest::load_dags(&app);
        match aliases_of(&dags).into_iter().find(|n| alias_id(n) == id) {
            Some(name) => {
                ctx.authorize(alias_resource(&name))?;
                Ok(alias_json(&name))
            }
            None => {
                ctx.authorize(format!("weft:asset-alias:#{id}"))?;
                Err(not_found(format!(
                    "The Asset Alias with ID: `{id}` was not found"
                )))
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_are_found_in_outlets_and_schedules() {
        let mut out = BTreeSet::new();
        collect(
            &json!([
                {"__type__": "airflow.sdk.AssetAlias", "name": "daily"},
                {"__type__": "airflow.datasets.DatasetAlias", "__args__": ["legacy"]},
                {"__type__": "airflow.sdk.Asset", "uri": "s3://x", "name": "not-an-alias"},
                {"__or__": [{"__type__": "AssetAlias", "name": "nested"}]},
                {"__type__": "AssetAlias", "name": "bad\nname"},
            ]),
            0,
            &mut out,
        );
        assert_eq!(
            out.into_iter().collect::<Vec<_>>(),
            ["daily", "legacy", "nested"]
        );
        assert_ne!(alias_id("daily"), alias_id("legacy"));
        assert!((0..(1i64 << 48)).contains(&alias_id("daily")));
    }
}
