//! The API audit log: one record per call (principal, action, resource, result, time), what
//! CloudTrail keeps for Step Functions. Records live in the sled tree `sfn_audit`, keyed by
//! time (big-endian ms) and a sequence number, and are read by `weft audit` and `GET /v1/audit`.

use crate::error::ApiError;
use crate::AppState;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};

static SEQ: AtomicU64 = AtomicU64::new(0);

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
    let mut key = Vec::with_capacity(16);
    key.extend_from_slice(&now.to_be_bytes());
    key.extend_from_slice(&SEQ.fetch_add(1, Ordering::Relaxed).to_be_bytes());
    let v = json!({
        "time": crate::records::format_ms(now),
        "principal": principal,
        "action": action,
        "resource": resource,
        "outcome": outcome,
        "error": error,
    });
    if let Err(e) = app.audit.insert(key, v.to_string().as_bytes()) {
        tracing::error!("audit log: {e}");
    }
}

/// The last `limit` records, oldest first, optionally only those whose action, principal or
/// resource contains `filter`.
pub fn query(
    tree: &sled::Tree,
    limit: usize,
    filter: Option<&str>,
) -> Result<Vec<Value>, sled::Error> {
    let mut out = Vec::new();
    for item in tree.iter().rev() {
        let (_, v) = item?;
        let Ok(rec) = serde_json::from_slice::<Value>(&v) else {
            continue;
        };
        if let Some(f) = filter {
            let hit = ["action", "principal", "resource", "outcome"]
                .iter()
                .any(|k| rec[k].as_str().is_some_and(|s| s.contains(f)));
            if !hit {
                continue;
            }
        }
        out.push(rec);
        if out.len() >= limit {
            break;
        }
    }
    out.reverse();
    Ok(out)
}

/// `GET /v1/audit?limit=N&filter=S`: the newest records (authenticated like the API).
pub async fn endpoint(
    axum::extract::State(app): axum::extract::State<std::sync::Arc<AppState>>,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let r = (|| -> Result<Value, ApiError> {
        crate::auth::check(
            app.tokens.as_ref(),
            &crate::auth::Request {
                method: "GET",
                path: uri.path(),
                query: uri.query().unwrap_or(""),
                headers: &headers,
                body: b"",
            },
        )?;
        let mut limit = 50usize;
        let mut filter = None;
        for pair in uri.query().unwrap_or("").split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "limit" => {
                    limit = v
                        .parse()
                        .map_err(|_| ApiError::validation(format!("limit `{v}` is not a number")))?
                }
                "filter" => filter = Some(percent_decode(v)),
                _ => {}
            }
        }
        let records = query(&app.audit, limit.clamp(1, 10_000), filter.as_deref())?;
        Ok(json!({ "records": records }))
    })();
    match r {
        Ok(v) => (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            v.to_string(),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(x) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(x);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
