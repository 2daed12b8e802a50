//! `/api/v2/variables`, `/api/v2/connections` and `/api/v2/pools`: Airflow Variables and
//! Connections kept in weft's secrets store (`$WEFT_HOME/secrets.json`, see
//! [`weft_engine::variables`]) and the pools of the DAG folder's `pools.json`.
//!
//! Secrets are redacted as Airflow does: a connection's password is never returned (`***`
//! stands for one that is set), neither is the value of a variable whose key names a secret
//! (`password`, `secret`, `token`, `api_key`, ...); fields of a connection's `extra` with
//! such names read `***`.
//!
//! Actions: `variables:GetVariable` (list, per variable, and get), `variables:PutVariable`
//! (create, update), `variables:DeleteVariable` on `weft:variable:KEY`;
//! `connections:GetConnection`, `connections:PutConnection`, `connections:DeleteConnection`
//! on `weft:connection:ID`; `pools:GetPool` on `weft:pool:NAME`. Keys and ids are
//! case-insensitive (as weft's secret names) and resources use their lower-case form.

use super::{
    bad_request, body_object, body_str, clip, conflict, not_found, only_fields, respond,
    sched_store, sort_json, store_err, unprocessable, Query,
};
use crate::error::ApiError;
use crate::v1_access::V1Request;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use weft_engine::variables::{parse_connection, Kind, SecretsFile};

/// What replaces a secret in answers.
pub const MASK: &str = "***";

/// Airflow's sensitive field names (`core.sensitive_var_conn_names` defaults).
const SENSITIVE: &[&str] = &[
    "access_token",
    "api_key",
    "apikey",
    "authorization",
    "passphrase",
    "passwd",
    "password",
    "private_key",
    "secret",
    "token",
    "keyfile_dict",
    "service_account",
];

/// Whether a key names a secret.
pub fn is_sensitive(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    SENSITIVE.iter().any(|s| k.contains(s))
}

/// A JSON value with the values of sensitive keys masked, at any depth (up to 32 levels; deeper
/// values are masked whole).
pub fn redact(v: &Value, depth: usize) -> Value {
    if depth > 32 {
        return json!(MASK);
    }
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let v = if is_sensitive(k) && !v.is_null() {
                        json!(MASK)
                    } else {
                        redact(v, depth + 1)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(|v| redact(v, depth + 1)).collect()),
        other => other.clone(),
    }
}

fn secrets(app: &AppState) -> SecretsFile {
    SecretsFile::new(app.store.home())
}

fn engine_err(e: weft_engine::EngineError) -> ApiError {
    ApiError::internal(e.to_string())
}

/// The canonical name of a variable key or connection id (lower case), or a 400 saying why it
/// is refused.
fn canonical(kind: Kind, name: &str) -> Result<String, ApiError> {
    kind.secret(name)
        .map(|s| s.as_str().trim_start_matches(kind.prefix()).to_string())
        .map_err(|e| {
            bad_request(format!(
                "`{}` is not a {} name weft can keep: {e}",
                clip(name),
                match kind {
                    Kind::Variable => "variable",
                    Kind::Connection => "connection",
                }
            ))
        })
}

/// The policy resource of a variable (`weft:variable:KEY`) or connection
/// (`weft:connection:ID`).
fn resource(kind: Kind, name: &str) -> String {
    match kind {
        Kind::Variable => format!("weft:variable:{name}"),
        Kind::Connection => format!("weft:connection:{name}"),
    }
}

fn variable_resource(key: &str) -> String {
    resource(Kind::Variable, key)
}

fn connection_resource(id: &str) -> String {
    resource(Kind::Connection, id)
}

/// Airflow's 404 for a variable or connection that does not exist.
fn missing(kind: Kind, name: &str) -> ApiError {
    not_found(match kind {
        Kind::Variable => format!("The Variable with key: `{name}` was not found"),
        Kind::Connection => format!("The Connection with connection_id: `{name}` was not found"),
    })
}

/// `DELETE` of a variable or connection: 204, or Airflow's 404.
async fn delete_entry(app: Arc<AppState>, req: V1Request, kind: Kind, name: String) -> Response {
    let action = match kind {
        Kind::Variable => "variables:DeleteVariable",
        Kind::Connection => "connections:DeleteConnection",
    };
    respond(&app, &req, action, StatusCode::NO_CONTENT, |ctx| {
        let name = canonical(kind, &name)?;
        ctx.authorize(resource(kind, &name))?;
        if secrets(&app).delete(kind, &name).map_err(engine_err)? {
            Ok(Value::Null)
        } else {
            Err(missing(kind, &name))
        }
    })
}

/// `VariableResponse`.
fn variable_json(key: &str, value: &str) -> Value {
    json!({
        "key": key,
        "value": if is_sensitive(key) { MASK } else { value },
        "description": Value::Null,
        "is_encrypted": false,
        "team_name": Value::Null,
    })
}

/// `GET /api/v2/variables` (`limit`, `offset`, `order_by` `key`, `variable_key_pattern`): the
/// variables the caller may read.
pub async fn list_variables(State(app): State<Arc<AppState>>, req: V1Request) -> Response {
    respond(&app, &req, "variables:GetVariable", StatusCode::OK, |ctx| {
        ctx.filtered("*");
        let q = Query::parse(req.query())?;
        let page = q.page()?;
        let order = q.order_by(&["key", "id"], "id")?;
        let pat = q.get("variable_key_pattern");
        let file = secrets(&app);
        let mut out = Vec::new();
        for key in file.list(Kind::Variable).map_err(engine_err)? {
            if !ctx.may("variables:GetVariable", &variable_resource(&key))
                || pat.is_some_and(|p| !super::dags::like(p, &key))
            {
                continue;
            }
            let value = file
                .get(Kind::Variable, &key)
                .map_err(engine_err)?
                .unwrap_or_default();
            out.push(variable_json(&key, &value));
        }
        let order: Vec<_> = order.into_iter().map(|(_, d)| ("key", d)).collect();
        sort_json(&mut out, &order);
        let total = out.len();
        Ok(json!({"variables": page.take(out), "total_entries": total}))
    })
}

/// `GET /api/v2/variables/{key}`.
pub async fn get_variable(
    State(app): State<Arc<AppState>>,
    Path(key): Path<String>,
    req: V1Request,
) -> Response {
    respond(&app, &req, "variables:GetVariable", StatusCode::OK, |ctx| {
        let key = canonical(Kind::Variable, &key)?;
        ctx.authorize(variable_resource(&key))?;
        match secrets(&app)
            .get(Kind::Variable, &key)
            .map_err(engine_err)?
        {
            Some(v) => Ok(variable_json(&key, &v)),
            None => Err(missing(Kind::Variable, &key)),
        }
    })
}

/// A `VariableBody`'s key and value (a value that is not a string is kept as its JSON text,
/// as Airflow does).
fn variable_body(body: &Map<String, Value>) -> Result<(String, String), ApiError> {
    only_fields(body, &["key", "value", "description", "team_name"])?;
    let key = body_str(body, "key")?
        .ok_or_else(|| unprocessable(&["body", "key"], "Field required"))?
        .to_string();
    let value = match body.get("value") {
        None => return Err(unprocessable(&["body", "value"], "Field required")),
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    };
    if body_str(body, "description")?.is_some() || body_str(body, "team_name")?.is_some() {
        return Err(bad_request(
            "weft keeps a variable's key and value only: leave `description` and `team_name` out",
        ));
    }
    Ok((key, value))
}

/// `POST /api/v2/variables` (`VariableBody`): 201; 409 when the key exists.
pub async fn post_variable(State(app): State<Arc<AppState>>, req: V1Request) -> Response {
    respond(
        &app,
        &req,
        "variables:PutVariable",
        StatusCode::CREATED,
        |ctx| {
            let (key, value) = variable_body(&body_object(&req)?)?;
            let key = canonical(Kind::Variable, &key)?;
            ctx.authorize(variable_resource(&key))?;
            let file = secrets(&app);
            if file
                .get(Kind::Variable, &key)
                .map_err(engine_err)?
                .is_some()
            {
                return Err(conflict(format!(
                    "The Variable with key: `{key}` already exists"
                )));
            }
            file.set(Kind::Variable, &key, &value).map_err(engine_err)?;
            Ok(variable_json(&key, &value))
        },
    )
}

/// `PATCH /api/v2/variables/{key}` (`VariableBody`, `update_mask` `value`): the body's key
/// must be the path's.
pub async fn patch_variable(
    State(app): State<Arc<AppState>>,
    Path(key): Path<String>,
    req: V1Request,
) -> Response {
    respond(&app, &req, "variables:PutVariable", StatusCode::OK, |ctx| {
        let key = canonical(Kind::Variable, &key)?;
        ctx.authorize(variable_resource(&key))?;
        let q = Query::parse(req.query())?;
        if let Some(m) = q.all("update_mask").into_iter().find(|m| *m != "value") {
            return Err(bad_request(format!(
                "Invalid field `{}` in update mask (weft updates `value`)",
                clip(m)
            )));
        }
        let (body_key, value) = variable_body(&body_object(&req)?)?;
        if canonical(Kind::Variable, &body_key)? != key {
            return Err(bad_request(
                "Invalid body, key from request body doesn't match uri parameter",
            ));
        }
        let file = secrets(&app);
        if file
            .get(Kind::Variable, &key)
            .map_err(engine_err)?
            .is_none()
        {
            return Err(missing(Kind::Variable, &key));
        }
        file.set(Kind::Variable, &key, &value).map_err(engine_err)?;
        Ok(variable_json(&key, &value))
    })
}

/// `DELETE /api/v2/variables/{key}`: 204.
pub async fn delete_variable(
    State(app): State<Arc<AppState>>,
    Path(key): Path<String>,
    req: V1Request,
) -> Response {
    delete_entry(app, req, Kind::Variable, key).await
}

/// `ConnectionResponse`, redacted.
fn connection_json(id: &str, c: &weft_dag::Connection) -> Value {
    let extra = c
        .extra
        .as_deref()
        .map(|e| match serde_json::from_str::<Value>(e) {
            Ok(v) => redact(&v, 0).to_string(),
            // an extra that is not JSON is returned only when it cannot hold a named secret
            Err(_) if is_sensitive(e) => MASK.to_string(),
            Err(_) => e.to_string(),
        });
    json!({
        "connection_id": id,
        "conn_type": c.conn_type.clone().unwrap_or_default(),
        "description": Value::Null,
        "host": c.host,
        "login": c.login,
        "schema": c.schema,
        "port": c.port,
        "password": c.password.as_ref().map(|_| MASK),
        "extra": extra,
        "team_name": Value::Null,
    })
}

fn load_connection(file: &SecretsFile, id: &str) -> Result<Option<weft_dag::Connection>, ApiError> {
    match file.get(Kind::Connection, id).map_err(engine_err)? {
        None => Ok(None),
        Some(text) => parse_connection(&text).map(Some).map_err(|e| {
            ApiError::internal(format!("connection `{id}` in the secrets store: {e}"))
        }),
    }
}

/// `GET /api/v2/connections` (`limit`, `offset`, `order_by` `connection_id`,
/// `connection_id_pattern`).
pub async fn list_connections(State(app): State<Arc<AppState>>, req: V1Request) -> Response {
    respond(
        &app,
        &req,
        "connections:GetConnection",
        StatusCode::OK,
        |ctx| {
            ctx.filtered("*");
            let q = Query::parse(req.query())?;
            let page = q.page()?;
            let order = q.order_by(&["connection_id", "conn_type", "host", "port", "id"], "id")?;
            let pat = q.get("connection_id_pattern");
            let file = secrets(&app);
            let mut out = Vec::new();
            for id in file.list(Kind::Connection).map_err(engine_err)? {
                if !ctx.may("connections:GetConnection", &connection_resource(&id))
                    || pat.is_some_and(|p| !super::dags::like(p, &id))
                {
                    continue;
                }
                if let Some(c) = load_connection(&file, &id)? {
                    out.push(connection_json(&id, &c));
                }
            }
            let order: Vec<_> = order
                .into_iter()
                .map(|(f, d)| (if f == "id" { "connection_id" } else { f }, d))
                .collect();
            sort_json(&mut out, &order);
            let total = out.len();
            Ok(json!({"connections": page.take(out), "total_entries": total}))
        },
    )
}

/// `GET /api/v2/connections/{connection_id}`.
pub async fn get_connection(
    State(app): State<Arc<AppState>>,
    Path(id): Path<String>,
    req: V1Request,
) -> Response {
    respond(
        &app,
        &req,
        "connections:GetConnection",
        StatusCode::OK,
        |ctx| {
            let id = canonical(Kind::Connection, &id)?;
            ctx.authorize(connection_resource(&id))?;
            load_connection(&secrets(&app), &id)?
                .map(|c| connection_json(&id, &c))
                .ok_or_else(|| missing(Kind::Connection, &id))
        },
    )
}

const CONNECTION_FIELDS: &[&str] = &[
    "connection_id",
    "conn_type",
    "description",
    "host",
    "login",
    "schema",
    "port",
    "password",
    "extra",
    "team_name",
];

/// Applies a `ConnectionBody`'s fields (those in `mask` when one is given) to `c`. A password
/// of `***` keeps the stored one (what a client read back and sends again).
fn apply_connection(
    c: &mut weft_dag::Connection,
    body: &Map<String, Value>,
    mask: &[&str],
) -> Result<(), ApiError> {
    only_fields(body, CONNECTION_FIELDS)?;
    if body_str(body, "description")?.is_some() || body_str(body, "team_name")?.is_some() {
        return Err(bad_request(
            "weft keeps no description or team for a connection: leave them out",
        ));
    }
    let take = |f: &str| mask.is_empty() || mask.contains(&f);
    let s = |f: &str| body_str(body, f).map(|v| v.map(str::to_string));
    if take("conn_type") {
        c.conn_type = Some(
            s("conn_type")?
                .ok_or_else(|| unprocessable(&["body", "conn_type"], "Field required"))?,
        );
    }
    if take("host") {
        c.host = s("host")?;
    }
    if take("login") {
        c.login = s("login")?;
    }
    if take("schema") {
        c.schema = s("schema")?;
    }
    if take("password") {
        match s("password")? {
            Some(p) if p == MASK => {}
            p => c.password = p,
        }
    }
    if take("port") {
        c.port =
            match body.get("port") {
                None | Some(Value::Null) => None,
                Some(v) => Some(v.as_u64().and_then(|p| u16::try_from(p).ok()).ok_or_else(
                    || {
                        unprocessable(
                            &["body", "port"],
                            "Input should be a port number (0 to 65535)",
                        )
                    },
                )?),
            };
    }
    if take("extra") {
        c.extra = match s("extra")? {
            None => None,
            Some(e) => {
                if !serde_json::from_str::<Value>(&e).is_ok_and(|v| v.is_object()) {
                    return Err(bad_request(
                        "The `extra` field must be a valid JSON object (e.g., {\"key\": \"value\"})",
                    ));
                }
                Some(e)
            }
        };
    }
    Ok(())
}

fn store_connection(
    file: &SecretsFile,
    id: &str,
    c: &weft_dag::Connection,
) -> Result<(), ApiError> {
    let text = serde_json::to_string(c).map_err(|e| ApiError::internal(e.to_string()))?;
    file.set(Kind::Connection, id, &text).map_err(engine_err)
}

/// `POST /api/v2/connections` (`ConnectionBody`): 201; 409 when the id exists.
pub async fn post_connection(State(app): State<Arc<AppState>>, req: V1Request) -> Response {
    respond(
        &app,
        &req,
        "connections:PutConnection",
        StatusCode::CREATED,
        |ctx| {
            let body = body_object(&req)?;
            let id = body_str(&body, "connection_id")?
                .ok_or_else(|| unprocessable(&["body", "connection_id"], "Field required"))?;
            let id = canonical(Kind::Connection, id)?;
            ctx.authorize(connection_resource(&id))?;
            let mut c = weft_dag::Connection::default();
            apply_connection(&mut c, &body, &[])?;
            let file = secrets(&app);
            if file
                .get(Kind::Connection, &id)
                .map_err(engine_err)?
                .is_some()
            {
                return Err(conflict(format!(
                    "Connection with connection_id: `{id}` already exists"
                )));
            }
            store_connection(&file, &id, &c)?;
            Ok(connection_json(&id, &c))
        },
    )
}

/// `PATCH /api/v2/connections/{connection_id}` (`ConnectionBody`, `update_mask` to update only
/// some fields).
pub async fn patch_connection(
    State(app): State<Arc<AppState>>,
    Path(id): Path<String>,
    req: V1Request,
) -> Response {
    respond(
        &app,
        &req,
        "connections:PutConnection",
        StatusCode::OK,
        |ctx| {
            let id = canonical(Kind::Connection, &id)?;
            ctx.authorize(connection_resource(&id))?;
            let q = Query::parse(req.query())?;
            let mask = q.all("update_mask");
            if let Some(m) = mask
                .iter()
                .find(|m| !CONNECTION_FIELDS.contains(m) || **m == "connection_id")
            {
                return Err(bad_request(format!(
                    "Invalid field `{}` in update mask",
                    clip(m)
                )));
            }
            let body = body_object(&req)?;
            if let Some(b) = body_str(&body, "connection_id")? {
                if canonical(Kind::Connection, b)? != id {
                    return Err(bad_request(
                        "The connection_id in the request body does not match the URL parameter",
                    ));
                }
            }
            let file = secrets(&app);
            let mut c =
                load_connection(&file, &id)?.ok_or_else(|| missing(Kind::Connection, &id))?;
            apply_connection(&mut c, &body, &mask)?;
            store_connection(&file, &id, &c)?;
            Ok(connection_json(&id, &c))
        },
    )
}

/// `DELETE /api/v2/connections/{connection_id}`: 204.
pub async fn delete_connection(
    State(app): State<Arc<AppState>>,
    Path(id): Path<String>,
    req: V1Request,
) -> Response {
    delete_entry(app, req, Kind::Connection, id).await
}

/// Slots of each pool taken by queued and running task instances of unfinished runs.
fn pool_usage(app: &AppState) -> Result<std::collections::HashMap<String, (u32, u32)>, ApiError> {
    let (dags, _, _) = crate::rest::load_dags(app);
    let store = sched_store(app)?;
    let mut used: std::collections::HashMap<String, (u32, u32)> = Default::default();
    for r in store.unfinished_runs().map_err(store_err)? {
        let Some(d) = dags.iter().find(|d| d.dag_id == r.dag_id) else {
            continue;
        };
        for t in store.tis_of(&r.dag_id, &r.run_id).map_err(store_err)? {
            let Some(task) = d.tasks.get(&t.ti.task_id) else {
                continue;
            };
            let e = used.entry(task.pool.clone()).or_default();
            match t.ti.state {
                weft_dag::TiState::Running => e.0 += task.pool_slots,
                weft_dag::TiState::Queued => e.1 += task.pool_slots,
                _ => {}
            }
        }
    }
    Ok(used)
}

/// `PoolResponse`.
fn pool_json(name: &str, slots: u32, running: u32, queued: u32) -> Value {
    json!({
        "name": name,
        "slots": slots,
        "description": Value::Null,
        "include_deferred": false,
        "occupied_slots": running + queued,
        "running_slots": running,
        "queued_slots": queued,
        "scheduled_slots": 0,
        "open_slots": slots.saturating_sub(running + queued),
        "deferred_slots": 0,
        "team_name": Value::Null,
    })
}

fn pools(app: &AppState) -> Result<Vec<(String, u32)>, ApiError> {
    let dir = crate::rest::dags_dir(app);
    let cfg = crate::dag_scheduler::config(app, &dir).map_err(ApiError::internal)?;
    Ok(cfg.pools.sizes())
}

/// `GET /api/v2/pools` (`limit`, `offset`, `order_by` `name`/`slots`, `pool_name_pattern`).
pub async fn list_pools(State(app): State<Arc<AppState>>, req: V1Request) -> Response {
    respond(&app, &req, "pools:GetPool", StatusCode::OK, |ctx| {
        ctx.filtered("*");
        let q = Query::parse(req.query())?;
        let page = q.page()?;
        let order = q.order_by(&["id", "name", "pool", "slots", "open_slots"], "id")?;
        let pat = q.get("pool_name_pattern");
        let used = pool_usage(&app)?;
        let mut out = Vec::new();
        for (name, slots) in pools(&app)? {
            if !ctx.may("pools:GetPool", &format!("weft:pool:{name}"))
                || pat.is_some_and(|p| !super::dags::like(p, &name))
            {
                continue;
            }
            let (r, qd) = used.get(&name).copied().unwrap_or_default();
            out.push(pool_json(&name, slots, r, qd));
        }
        let order: Vec<_> = order
            .into_iter()
            .map(|(f, d)| {
                (
                    if matches!(f, "id" | "pool") {
                        "name"
                    } else {
                        f
                    },
                    d,
                )
            })
            .collect();
        sort_json(&mut out, &order);
        let total = out.len();
        Ok(json!({"pools": page.take(out), "total_entries": total}))
    })
}

/// `GET /api/v2/pools/{pool_name}`.
pub async fn get_pool(
    State(app): State<Arc<AppState>>,
    Path(name): Path<String>,
    req: V1Request,
) -> Response {
    respond(&app, &req, "pools:GetPool", StatusCode::OK, |ctx| {
        if name.is_empty() || name.len() > 256 || name.contains('\0') {
            return Err(not_found("The Pool with name: `(invalid)` was not found"));
        }
        ctx.authorize(format!("weft:pool:{name}"))?;
        let Some((_, slots)) = pools(&app)?.into_iter().find(|(n, _)| *n == name) else {
            return Err(not_found(format!(
                "The Pool with name: `{}` was not found",
                clip(&name)
            )));
        };
        let (r, qd) = pool_usage(&app)?.get(&name).copied().unwrap_or_default();
        Ok(pool_json(&name, slots, r, qd))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_at_any_depth() {
        let v = json!({"region": "eu", "API_KEY": "k", "nested": {"client_secret": "s", "list": [{"token": "t"}]}});
        let r = redact(&v, 0);
        assert_eq!(r["region"], "eu");
        assert_eq!(r["API_KEY"], MASK);
        assert_eq!(r["nested"]["client_secret"], MASK);
        assert_eq!(r["nested"]["list"][0]["token"], MASK);
        let c = weft_dag::Connection {
            conn_type: Some("postgres".into()),
            password: Some("hunter2".into()),
            extra: Some(r#"{"password": "x", "sslmode": "require"}"#.into()),
            ..Default::default()
        };
        let j = connection_json("db", &c).to_string();
        assert!(!j.contains("hunter2") && !j.contains("\\\"x\\\""), "{j}");
        assert!(j.contains("require"));
        assert_eq!(variable_json("db_password", "p")["value"], MASK);
        assert_eq!(variable_json("region", "eu")["value"], "eu");
    }
}
