//! Apache Airflow 3's public REST API (`/api/v2`) over weft's DAG scheduler, so the official
//! `apache-airflow-client`, `airflowctl` and scripts written for Airflow work against
//! `weft server`: the same paths, field names, states, paging (`limit`/`offset` with
//! `total_entries`, `order_by` with `-` for descending), filters and error shapes
//! (`{"detail": "..."}`; request validation errors as 422 `{"detail": [{"loc", "msg",
//! "type"}]}`).
//!
//! This module owns the router, the request plumbing every route shares (authentication,
//! authorization and auditing through [`crate::v1_access::decide`], query parsing, paging,
//! ordering, errors) and `POST /auth/token`. The resources live in their own modules:
//! [`dags`], [`dag_runs`], [`task_instances`], [`settings`] (variables, connections, pools),
//! [`assets`] (assets, asset events, queued events) and [`service`] (version, health, import
//! errors).
//!
//! Authorization uses weft's policy language with the actions and resources listed in the
//! README (`dags:*` on `weft:dag:DAG_ID`, `variables:*` on `weft:variable:KEY`,
//! `connections:*` on `weft:connection:ID`, `pools:GetPool` on `weft:pool:NAME`, `assets:*` on
//! `weft:asset:URI`; version and
//! health are public, as in Airflow). A list keeps only what the caller may see, and a
//! `~` ("every DAG") path segment is a list filtered the same way.

pub mod asset_aliases;
pub mod assets;
pub mod dag_runs;
pub mod dags;
pub mod service;
pub mod settings;
pub mod task_instances;
pub mod ti_bulk;

use crate::error::ApiError;
use crate::v1_access::{decide, Ctx, V1Request};
use crate::AppState;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::Router;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};
use std::sync::Arc;

/// Largest page (Airflow's `maximum_page_limit`); a larger `limit` is capped to it.
pub const MAX_PAGE_LIMIT: usize = 100;
/// Page size without `limit` (Airflow's `fallback_page_limit`).
pub const DEFAULT_PAGE_LIMIT: usize = 50;
/// Largest `conf` accepted when a run is triggered, in bytes of JSON.
pub const MAX_CONF_BYTES: usize = 64 * 1024;
/// Most `order_by` fields in one request.
const MAX_ORDER_FIELDS: usize = 5;

/// The routes, mounted at `/api/v2` (and `POST /auth/token`).
pub fn routes() -> Router<Arc<AppState>> {
    let ti = "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances";
    Router::new()
        .route("/auth/token", post(service::token))
        .route("/auth/token/cli", post(service::token))
        .route("/api/v2/version", get(service::version))
        .route("/api/v2/monitor/health", get(service::health))
        .route("/api/v2/importErrors", get(service::import_errors))
        .route("/api/v2/assets", get(assets::list))
        .route(
            "/api/v2/assets/events",
            get(assets::list_events).post(assets::create_event),
        )
        .route("/api/v2/assets/aliases", get(asset_aliases::list))
        .route(
            "/api/v2/assets/aliases/{asset_alias_id}",
            get(asset_aliases::get),
        )
        .route("/api/v2/assets/{asset_id}", get(assets::get))
        .route(
            "/api/v2/assets/{asset_id}/queuedEvents",
            get(assets::asset_queued).delete(assets::delete_asset_queued),
        )
        .route(
            "/api/v2/dags/{dag_id}/assets/queuedEvents",
            get(assets::dag_queued).delete(assets::delete_dag_queued),
        )
        .route(
            "/api/v2/dags/{dag_id}/assets/{asset_id}/queuedEvents",
            get(assets::dag_asset_queued).delete(assets::delete_dag_asset_queued),
        )
        .route("/api/v2/dags", get(dags::list))
        .route(
            "/api/v2/dags/{dag_id}",
            get(dags::get_one).patch(dags::patch).delete(dags::delete),
        )
        .route("/api/v2/dags/{dag_id}/details", get(dags::details))
        .route("/api/v2/dagSources/{dag_id}", get(dags::source))
        .route("/api/v2/dags/{dag_id}/tasks", get(dags::tasks))
        .route("/api/v2/dags/{dag_id}/tasks/{task_id}", get(dags::task))
        .route(
            "/api/v2/dags/{dag_id}/dagRuns",
            get(dag_runs::list).post(dag_runs::trigger),
        )
        .route(
            "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}",
            get(dag_runs::get_one)
                .patch(dag_runs::patch)
                .delete(dag_runs::delete),
        )
        .route(
            "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/clear",
            post(dag_runs::clear),
        )
        .route(
            "/api/v2/dags/{dag_id}/clearTaskInstances",
            post(task_instances::clear),
        )
        .route(ti, get(task_instances::list).patch(ti_bulk::bulk))
        .route(
            &format!("{ti}/{{task_id}}"),
            get(task_instances::get_one).patch(task_instances::patch),
        )
        .route(
            &format!("{ti}/{{task_id}}/{{map_index}}"),
            get(task_instances::get_mapped).patch(task_instances::patch_mapped),
        )
        .route(
            &format!("{ti}/{{task_id}}/dry_run"),
            patch(task_instances::patch_dry_run),
        )
        .route(
            &format!("{ti}/{{task_id}}/{{map_index}}/dry_run"),
            patch(task_instances::patch_mapped_dry_run),
        )
        .route(
            &format!("{ti}/{{task_id}}/logs/{{try_number}}"),
            get(task_instances::logs),
        )
        .route(
            &format!("{ti}/{{task_id}}/xcomEntries"),
            get(task_instances::xcom_entries),
        )
        .route(
            &format!("{ti}/{{task_id}}/xcomEntries/{{xcom_key}}"),
            get(task_instances::xcom_entry),
        )
        .route(
            "/api/v2/variables",
            get(settings::list_variables).post(settings::post_variable),
        )
        .route(
            "/api/v2/variables/{key}",
            get(settings::get_variable)
                .patch(settings::patch_variable)
                .delete(settings::delete_variable),
        )
        .route(
            "/api/v2/connections",
            get(settings::list_connections).post(settings::post_connection),
        )
        .route(
            "/api/v2/connections/{connection_id}",
            get(settings::get_connection)
                .patch(settings::patch_connection)
                .delete(settings::delete_connection),
        )
        .route("/api/v2/pools", get(settings::list_pools))
        .route("/api/v2/pools/{pool_name}", get(settings::get_pool))
}

/// Runs a route under [`decide`] (authenticated, authorised, audited) and answers with
/// `status` and its JSON, or with the error in Airflow's shape.
pub(crate) fn respond(
    app: &AppState,
    req: &V1Request,
    action: &'static str,
    status: StatusCode,
    f: impl FnOnce(&mut Ctx) -> Result<Value, ApiError>,
) -> Response {
    match decide(app, req, action, f) {
        Ok(Value::Null) if status == StatusCode::NO_CONTENT => {
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(v) => (
            status,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            v.to_string(),
        )
            .into_response(),
        Err(e) => error_response(e),
    }
}

/// The kind of a request validation error (answered 422 with Airflow's `detail` list).
pub const REQUEST_VALIDATION: &str = "RequestValidationError";

/// A request validation error at `loc` (`["query", "limit"]`, `["body", "conf"]`): HTTP 422
/// with Airflow's (FastAPI's) shape.
pub fn unprocessable(loc: &[&str], msg: impl Into<String>) -> ApiError {
    ApiError::new(
        REQUEST_VALIDATION,
        json!({"loc": loc, "msg": msg.into()}).to_string(),
    )
    .with_status(StatusCode::UNPROCESSABLE_ENTITY)
}

/// A 400 with `detail`.
pub fn bad_request(detail: impl Into<String>) -> ApiError {
    ApiError::new("BadRequest", detail)
}

/// A 404 with `detail`.
pub fn not_found(detail: impl Into<String>) -> ApiError {
    ApiError::new("NotFound", detail).with_status(StatusCode::NOT_FOUND)
}

/// A 409 with `detail`.
pub fn conflict(detail: impl Into<String>) -> ApiError {
    ApiError::new("Conflict", detail).with_status(StatusCode::CONFLICT)
}

/// An error in Airflow's shape: `{"detail": "..."}` with its status; authentication failures
/// are 401 (with `WWW-Authenticate: Bearer`), denials 403, request validation 422 with a
/// `detail` list.
pub fn error_response(e: ApiError) -> Response {
    let status = match e.kind {
        "MissingAuthenticationTokenException"
        | "UnrecognizedClientException"
        | "IncompleteSignatureException"
        | "InvalidSignatureException" => StatusCode::UNAUTHORIZED,
        "ValidationException" if e.status == StatusCode::BAD_REQUEST => StatusCode::BAD_REQUEST,
        _ => e.status,
    };
    let body = if e.kind == REQUEST_VALIDATION {
        let v: Value = serde_json::from_str(&e.message).unwrap_or(Value::Null);
        json!({"detail": [{
            "type": "value_error",
            "loc": v.get("loc").cloned().unwrap_or(json!([])),
            "msg": v.get("msg").cloned().unwrap_or(json!(e.message)),
            "input": Value::Null,
        }]})
    } else {
        json!({"detail": e.message})
    };
    let mut r = (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response();
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            axum::http::header::WWW_AUTHENTICATE,
            axum::http::HeaderValue::from_static("Bearer"),
        );
    }
    r
}

/// A request's query parameters, percent-decoded, in order (a name may repeat:
/// `state=success&state=failed`).
pub struct Query(Vec<(String, String)>);

/// Most query parameters read from one request.
const MAX_QUERY_PARAMS: usize = 256;

impl Query {
    pub fn parse(q: Option<&str>) -> Result<Self, ApiError> {
        let mut out = Vec::new();
        for pair in q.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            if out.len() == MAX_QUERY_PARAMS {
                return Err(bad_request(format!(
                    "more than {MAX_QUERY_PARAMS} query parameters"
                )));
            }
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            out.push((
                crate::live::percent_decode(k),
                crate::live::percent_decode(v),
            ));
        }
        Ok(Query(out))
    }

    /// The last value of `name` (empty values count as absent).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// A non-negative integer parameter.
    pub fn uint(&self, name: &str) -> Result<Option<usize>, ApiError> {
        self.get(name)
            .map(|v| {
                v.parse::<usize>().map_err(|_| {
                    unprocessable(
                        &["query", name],
                        format!("Input should be a valid non-negative integer, not `{v}`"),
                    )
                })
            })
            .transpose()
    }

    /// A boolean parameter (`true`/`false`, as FastAPI also takes `1`/`0`).
    pub fn bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        self.get(name)
            .map(|v| match v.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => Ok(true),
                "false" | "0" | "no" | "off" => Ok(false),
                _ => Err(unprocessable(
                    &["query", name],
                    format!("Input should be a valid boolean, not `{v}`"),
                )),
            })
            .transpose()
    }

    /// A date-time parameter (ISO 8601).
    pub fn date(&self, name: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
        self.get(name)
            .map(|v| {
                weft_dag::parse_logical_date(v).map_err(|e| {
                    unprocessable(
                        &["query", name],
                        format!("Input should be a valid datetime: {e}"),
                    )
                })
            })
            .transpose()
    }

    /// `limit` (default [`DEFAULT_PAGE_LIMIT`], capped to [`MAX_PAGE_LIMIT`]) and `offset`.
    pub fn page(&self) -> Result<Page, ApiError> {
        let limit = self
            .uint("limit")?
            .unwrap_or(DEFAULT_PAGE_LIMIT)
            .min(MAX_PAGE_LIMIT);
        let offset = self.uint("offset")?.unwrap_or(0);
        Ok(Page { limit, offset })
    }

    /// `order_by` (repeatable, or comma-separated), each a field of `allowed` with an optional
    /// `-` for descending; `default` without one. An unknown field is a 400, as in Airflow.
    pub fn order_by(
        &self,
        allowed: &[&'static str],
        default: &'static str,
    ) -> Result<Vec<(&'static str, bool)>, ApiError> {
        let given: Vec<&str> = self
            .all("order_by")
            .into_iter()
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .collect();
        if given.len() > MAX_ORDER_FIELDS {
            return Err(bad_request(format!(
                "at most {MAX_ORDER_FIELDS} `order_by` fields"
            )));
        }
        let given = if given.is_empty() {
            vec![default]
        } else {
            given
        };
        given
            .into_iter()
            .map(|f| {
                let (name, desc) = match f.strip_prefix('-') {
                    Some(n) => (n, true),
                    None => (f, false),
                };
                match allowed.iter().find(|a| **a == name) {
                    Some(a) => Ok((*a, desc)),
                    None => Err(bad_request(format!(
                        "Ordering with '{}' is disallowed or the attribute does not exist on the model (allowed: {})",
                        name.chars().take(64).collect::<String>(),
                        allowed.join(", ")
                    ))),
                }
            })
            .collect()
    }
}

/// One page of a list.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub limit: usize,
    pub offset: usize,
}

impl Page {
    /// The items of this page.
    pub fn take<T>(&self, items: Vec<T>) -> Vec<T> {
        items
            .into_iter()
            .skip(self.offset)
            .take(self.limit)
            .collect()
    }
}

/// Sorts `items` by the `order` fields, each read from an item's JSON by `key`.
pub fn sort_json(items: &mut [Value], order: &[(&'static str, bool)]) {
    items.sort_by(|a, b| {
        for (field, desc) in order {
            let o = cmp_json(&a[*field], &b[*field]);
            let o = if *desc { o.reverse() } else { o };
            if o != std::cmp::Ordering::Equal {
                return o;
            }
        }
        std::cmp::Ordering::Equal
    });
}

/// Nulls first, then numbers, then strings (ISO dates compare as strings in one format).
fn cmp_json(a: &Value, b: &Value) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a, b) {
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Null, _) => Ordering::Less,
        (_, Value::Null) => Ordering::Greater,
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .unwrap_or(0.0)
            .partial_cmp(&y.as_f64().unwrap_or(0.0))
            .unwrap_or(Ordering::Equal),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        _ => a.to_string().cmp(&b.to_string()),
    }
}

/// A date-time as Airflow writes it (`2024-01-01T00:00:00Z`, fractions when present).
pub fn iso(d: &DateTime<Utc>) -> Value {
    json!(d.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

/// An optional date-time.
pub fn iso_opt(d: Option<&DateTime<Utc>>) -> Value {
    d.map_or(Value::Null, iso)
}

/// Epoch seconds as an Airflow date-time.
pub fn iso_epoch(s: Option<f64>) -> Value {
    s.and_then(|s| DateTime::from_timestamp_micros((s * 1e6) as i64))
        .as_ref()
        .map_or(Value::Null, iso)
}

/// The request body as a JSON object (an empty body is `{}`); anything else is a 422.
pub fn body_object(req: &V1Request) -> Result<serde_json::Map<String, Value>, ApiError> {
    if req.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::Map::new());
    }
    match serde_json::from_slice::<Value>(&req.body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(unprocessable(
            &["body"],
            "Input should be a valid dictionary",
        )),
        Err(e) => Err(unprocessable(&["body"], format!("JSON decode error: {e}"))),
    }
}

/// A body field that must be a string when present.
pub fn body_str<'a>(
    body: &'a serde_json::Map<String, Value>,
    name: &str,
) -> Result<Option<&'a str>, ApiError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(unprocessable(
            &["body", name],
            "Input should be a valid string",
        )),
    }
}

/// A body field that must be a boolean when present.
pub fn body_bool(
    body: &serde_json::Map<String, Value>,
    name: &str,
) -> Result<Option<bool>, ApiError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(unprocessable(
            &["body", name],
            "Input should be a valid boolean",
        )),
    }
}

/// Refuses body fields outside `known` (Airflow's bodies forbid extra fields).
pub fn only_fields(body: &serde_json::Map<String, Value>, known: &[&str]) -> Result<(), ApiError> {
    match body.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(unprocessable(
            &["body", k.as_str()],
            "Extra inputs are not permitted",
        )),
        None => Ok(()),
    }
}

/// The resource of a DAG, checked (`weft:dag:DAG_ID`); an id outside Airflow's alphabet is a
/// 404 as no such DAG can exist.
pub fn dag_resource(dag_id: &str) -> Result<String, ApiError> {
    crate::v1_access::dag_resource(dag_id)
        .map_err(|_| not_found(format!("The Dag with ID: `{}` was not found", clip(dag_id))))
}

/// At most 100 characters of caller input, for error messages.
pub fn clip(s: &str) -> String {
    s.chars().take(100).collect()
}

/// The scheduler's store of the server.
pub fn sched_store(app: &AppState) -> Result<weft_engine::scheduler::SchedStore, ApiError> {
    app.dag_store()
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// A store error as a 500.
pub fn store_err(e: weft_engine::scheduler::SchedulerError) -> ApiError {
    ApiError::internal(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging_caps_and_validates() {
        let q = Query::parse(Some("limit=100000&offset=3")).unwrap();
        let p = q.page().unwrap();
        assert_eq!((p.limit, p.offset), (MAX_PAGE_LIMIT, 3));
        let e = Query::parse(Some("limit=-1")).unwrap().page().unwrap_err();
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
        let e = Query::parse(Some("offset=x")).unwrap().page().unwrap_err();
        assert_eq!(e.kind, REQUEST_VALIDATION);
    }

    #[test]
    fn order_by_takes_only_known_fields() {
        let q = Query::parse(Some("order_by=-start_date&order_by=dag_run_id")).unwrap();
        assert_eq!(
            q.order_by(&["start_date", "dag_run_id"], "dag_run_id")
                .unwrap(),
            vec![("start_date", true), ("dag_run_id", false)]
        );
        for bad in [
            "order_by=conf",
            "order_by=state;DROP%20TABLE%20dag_run",
            "order_by=--start_date",
            "order_by=a,b,c,d,e,f",
        ] {
            let q = Query::parse(Some(bad)).unwrap();
            let e = q.order_by(&["start_date", "state"], "state").unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{bad}");
        }
    }

    #[test]
    fn repeated_parameters_and_sorting() {
        let q = Query::parse(Some("state=success&state=failed&x=")).unwrap();
        assert_eq!(q.all("state"), ["success", "failed"]);
        assert_eq!(q.get("x"), None);
        let mut v = vec![json!({"a": 2}), json!({"a": null}), json!({"a": 1})];
        sort_json(&mut v, &[("a", true)]);
        assert_eq!(v[0]["a"], 2);
        assert_eq!(v[2]["a"], Value::Null);
    }
}
