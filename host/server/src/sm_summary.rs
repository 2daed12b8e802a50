//! `GET /v1/state-machines/summary?hours=24`: the web UI's landing page of state machines, as
//! the Step Functions console shows it — per state machine its type, creation date, the start
//! of its newest execution and how many executions of each status started in the window (the
//! last 24 hours unless `hours`, 1 to 720, says otherwise), with every execution running now
//! counted as RUNNING whenever it started. Counts come from
//! [`weft_engine::persistence::ExecutionRecords::summary`] (a range read per state machine), never from a scan of every execution.
//!
//! Authorisation (see [`crate::v1_access`]): the list is filtered per item; a state machine is
//! listed only when the caller may `states:DescribeStateMachine` it, and its counts and last
//! execution are given only when the caller may also `states:ListExecutions` on it (`null`
//! otherwise). Express executions are not recorded, so an EXPRESS state machine has no counts
//! (`executions: null`).

use crate::error::ApiError;
use crate::records::{now_ms, ts, StateMachineRecord};
use crate::rest::{num_param, respond};
use crate::v1_access::{Ctx, V1Request};
use crate::AppState;
use axum::extract::State;
use axum::response::Response;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use weft_engine::persistence::executions::STATUSES;

/// The default window, in hours.
pub const DEFAULT_HOURS: i64 = 24;
/// The longest window, in hours (30 days).
pub const MAX_HOURS: i64 = 720;

/// The summary of every state machine the caller may see, with executions since `since_ms`.
pub fn summarise(app: &AppState, ctx: &mut Ctx, since_ms: i64) -> Result<Vec<Value>, ApiError> {
    ctx.filtered("*");
    let mut out = Vec::new();
    for (_, v) in app.catalog.state_machines(None, usize::MAX)? {
        let sm: StateMachineRecord = serde_json::from_slice(&v)?;
        if !ctx.may("states:DescribeStateMachine", &sm.arn) {
            continue;
        }
        let mut entry = json!({
            "name": sm.name,
            "stateMachineArn": sm.arn,
            "type": sm.sm_type,
            "creationDate": ts(sm.creation_ms),
            "lastExecutionDate": null,
            "executions": null,
        });
        if sm.sm_type != "EXPRESS" && ctx.may("states:ListExecutions", &sm.arn) {
            let s = app.executions.summary(&sm.name, since_ms)?;
            let mut counts = Map::new();
            for status in STATUSES {
                counts.insert(
                    status.to_string(),
                    json!(s.counts.get(status).copied().unwrap_or(0)),
                );
            }
            entry["executions"] = Value::Object(counts);
            entry["lastExecutionDate"] = s.last_start_ms.map_or(Value::Null, ts);
        }
        out.push(entry);
    }
    Ok(out)
}

/// The window's start from the request's `hours` (default 24).
fn window(q: Option<&str>, now: i64) -> Result<(i64, i64), ApiError> {
    let hours = num_param(q, "hours")?.unwrap_or(DEFAULT_HOURS);
    if !(1..=MAX_HOURS).contains(&hours) {
        return Err(ApiError::validation(format!(
            "`hours` must be between 1 and {MAX_HOURS}, not {hours}"
        )));
    }
    Ok((hours, now - hours * 3_600_000))
}

/// `GET /v1/state-machines/summary`.
pub async fn endpoint(State(app): State<Arc<AppState>>, req: V1Request) -> Response {
    respond(&app, &req, "states:ListStateMachines", |ctx| {
        let now = now_ms();
        let (hours, since) = window(req.query(), now)?;
        let machines = summarise(&app, ctx, since)?;
        Ok(json!({
            "windowHours": hours,
            "since": ts(since),
            "now": ts(now),
            "statuses": STATUSES,
            "stateMachines": machines,
        }))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_is_bounded() {
        assert_eq!(
            window(None, 100_000_000).unwrap(),
            (24, 100_000_000 - 86_400_000)
        );
        assert_eq!(window(Some("hours=1"), 3_600_000).unwrap(), (1, 0));
        for bad in ["hours=0", "hours=721", "hours=-3", "hours=x"] {
            assert!(window(Some(bad), 0).is_err(), "{bad}");
        }
    }
}
