//! The service-level routes of Airflow's API: `POST /auth/token` (Airflow 3's token flow:
//! weft's access key id and secret key in, a Bearer token out), `/api/v2/version`,
//! `/api/v2/monitor/health` (both unauthenticated, as in Airflow) and `/api/v2/importErrors`.
//!
//! Actions: `dags:ListImportErrors` on `weft:dags`.

use super::{only_fields, respond, unprocessable, Query};
use crate::error::ApiError;
use crate::v1_access::{V1Request, DAG_FOLDER};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::sync::Arc;

/// The Airflow API version weft answers as (the paths and shapes it follows).
pub const AIRFLOW_API_VERSION: &str = "3.3.0";
/// The resource token requests are audited on.
pub const AIRFLOW: &str = "weft:airflow";

/// `POST /auth/token` (and `POST /auth/token/cli`, where airflowctl asks)
/// `{"username": ACCESS_KEY_ID, "password": SECRET}`: 201
/// `{"access_token": ...}`, the token to send as `Authorization: Bearer TOKEN`. weft's Bearer
/// tokens are the secret keys of `$WEFT_HOME/credentials` themselves, so the answer is the
/// secret the caller proved to hold (a profile name also works as the username). 401 for a
/// wrong pair; the attempt is audited either way.
pub async fn token(State(app): State<Arc<AppState>>, req: V1Request) -> Response {
    let r = (|| {
        let body = super::body_object(&req)?;
        only_fields(&body, &["username", "password"])?;
        let field = |k: &str| {
            super::body_str(&body, k)?
                .map(str::to_string)
                .ok_or_else(|| unprocessable(&["body", k], "Field required"))
        };
        let (user, password) = (field("username")?, field("password")?);
        let Some(tokens) = app.tokens.as_ref() else {
            // without authentication every request is let in: any token does
            return Ok((user, json!({"access_token": "weft-no-auth"})));
        };
        let denied = || {
            ApiError::new(
                "UnrecognizedClientException",
                "Invalid credentials: the username is an access key id (or profile name) of $WEFT_HOME/credentials and the password its secret key",
            )
        };
        let p = crate::auth::bearer(tokens, &password).map_err(|_| denied())?;
        if p.access_key_id != user && p.name != user {
            return Err(denied());
        }
        Ok((p.name.clone(), json!({"access_token": p.secret})))
    })();
    let (who, outcome) = match &r {
        Ok((who, _)) => (who.clone(), Ok(Value::Null)),
        Err(e) => ("-".to_string(), Err(e.clone())),
    };
    crate::audit::record(&app, &who, "airflow:CreateToken", AIRFLOW, &outcome);
    match r {
        Ok((_, v)) => (
            StatusCode::CREATED,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            v.to_string(),
        )
            .into_response(),
        Err(e) => super::error_response(e),
    }
}

/// `GET /api/v2/version` (no authentication, as in Airflow): `{"version", "git_version"}` (the
/// Airflow API version followed, and weft's own).
pub async fn version() -> Response {
    let body = json!({
        "version": AIRFLOW_API_VERSION,
        "git_version": format!("weft-{}", env!("CARGO_PKG_VERSION")),
    });
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// `GET /api/v2/monitor/health` (no authentication, as in Airflow): the store answers
/// (`metadatabase`), the scheduler thread runs (`scheduler`: weft's scheduler lives in the
/// server process, so its heartbeat is now while the server is up and not shutting down).
pub async fn health(State(app): State<Arc<AppState>>) -> Response {
    let db_ok = app.store.db().get(b"weft-health").is_ok();
    let down = app.rt.shutdown.load(std::sync::atomic::Ordering::SeqCst);
    let sched_ok = !down && crate::rest::dags_dir(&app).is_dir();
    let status = |ok: bool| if ok { "healthy" } else { "unhealthy" };
    let now = super::iso(&chrono::Utc::now());
    let body = json!({
        "metadatabase": {"status": status(db_ok)},
        "scheduler": {
            "status": status(sched_ok),
            "latest_scheduler_heartbeat": if sched_ok { now.clone() } else { Value::Null },
        },
        "triggerer": {"status": Value::Null, "latest_triggerer_heartbeat": Value::Null},
        "dag_processor": {
            "status": status(!down),
            "latest_dag_processor_heartbeat": if down { Value::Null } else { now },
        },
    });
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// `GET /api/v2/importErrors` (`limit`, `offset`, `order_by` `id`/`timestamp`/`filename`):
/// the DAG files that fail to load, one entry per error with its file:line in `stack_trace`.
pub async fn import_errors(State(app): State<Arc<AppState>>, req: V1Request) -> Response {
    respond(&app, &req, "dags:ListImportErrors", StatusCode::OK, |ctx| {
        ctx.authorize(DAG_FOLDER)?;
        let q = Query::parse(req.query())?;
        let page = q.page()?;
        let order = q.order_by(&["id", "import_error_id", "timestamp", "filename"], "id")?;
        let (_, errors, _) = crate::rest::load_dags(&app);
        let now = super::iso(&chrono::Utc::now());
        let mut out: Vec<Value> = errors
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let ts = std::fs::metadata(&e.file)
                    .and_then(|m| m.modified())
                    .ok()
                    .map(chrono::DateTime::<chrono::Utc>::from)
                    .map_or_else(|| now.clone(), |t| super::iso(&t));
                json!({
                    "import_error_id": i + 1,
                    "timestamp": ts,
                    "filename": e.file.display().to_string(),
                    "bundle_name": "dags-folder",
                    // Python DAG files: the error, then the traceback (as Airflow shows it)
                    "stack_trace": match &e.traceback {
                        Some(tb) => format!("{e}\n{tb}"),
                        None => e.to_string(),
                    },
                })
            })
            .collect();
        let order: Vec<_> = order
            .into_iter()
            .map(|(f, d)| (if f == "id" { "import_error_id" } else { f }, d))
            .collect();
        super::sort_json(&mut out, &order);
        let total = out.len();
        Ok(json!({"import_errors": page.take(out), "total_entries": total}))
    })
}
