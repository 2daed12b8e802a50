//! The API audit log: one record per call (principal, action, resource, result, time), what
//! CloudTrail keeps for Step Functions. Records live in an append-only log ordered by time
//! ([`weft_engine::persistence::AppendLog`]) and are read by `weft audit` and `GET /v1/audit`.

use crate::error::ApiError;
use crate::AppState;
use serde_json::{json, Value};
use std::sync::Arc;
use weft_engine::persistence::{AppendLog, PersistenceError};

/// Appends one record (best effort: an audit write failure is logged, never fails the call).
pub fn record(
    app: &AppState,
    principal: &str,
    action: &str,
    resource: &str,
    result: &Result<Value, ApiError>,
) {
    let now = crate::records::now_ms();
    let (outcome, error) = match result {
        Ok(_) => ("ok", Value::Null),
        Err(e) => ("error", json!(e.kind)),
    };
    tracing::info!(principal, action, resource, outcome, "api call");
    let v = json!({
        "time": crate::records::format_ms(now),
        "principal": principal,
        "action": action,
        "resource": resource,
        "outcome": outcome,
        "error": error,
    });
    if let Err(e) = app.audit.append(&[(now, v.to_string().into_bytes())]) {
        tracing::error!("audit log: {e}");
    }
}

/// The last `limit` records, oldest first, optionally only those whose action, principal,
/// resource, outcome or error (`AccessDeniedException`) contains `filter`.
pub fn query(
    log: &Arc<dyn AppendLog>,
    limit: usize,
    filter: Option<&str>,
) -> Result<Vec<Value>, PersistenceError> {
    let mut out = Vec::new();
    log.newest_first(&mut |v| {
        let Ok(rec) = serde_json::from_slice::<Value>(v) else {
            return true;
        };
        if let Some(f) = filter {
            let hit = ["action", "principal", "resource", "outcome", "error"]
                .iter()
                .any(|k| rec[k].as_str().is_some_and(|s| s.contains(f)));
            if !hit {
                return true;
            }
        }
        out.push(rec);
        out.len() < limit
    })?;
    out.reverse();
    Ok(out)
}

/// `GET /v1/audit?limit=N&filter=S`: the newest records. Needs `weft:GetAudit` on `weft:audit`
/// (the log names every principal, action and resource); the read is itself audited, after the
/// records it returns.
pub async fn endpoint(
    axum::extract::State(app): axum::extract::State<std::sync::Arc<AppState>>,
    req: crate::v1_access::V1Request,
) -> axum::response::Response {
    let q = req.query();
    crate::rest::respond(&app, &req, "weft:GetAudit", |ctx| {
        ctx.authorize(crate::v1_access::AUDIT_LOG)?;
        let limit = crate::rest::num_param(q, "limit")?.unwrap_or(50);
        let filter = crate::live::query_param(q, "filter").filter(|f| !f.is_empty());
        let records = query(
            &app.audit,
            limit.clamp(1, 10_000) as usize,
            filter.as_deref(),
        )?;
        Ok(json!({ "records": records }))
    })
}
