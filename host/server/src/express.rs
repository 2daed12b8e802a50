//! The execution log at `GET /v1/logs` (also `GET /v1/express/logs`): the records the
//! runtime's execution log keeps (see [`weft_engine::standard::execution_log`]) of the
//! executions whose history the caller may read. Express executions themselves run in the
//! engine ([`weft_engine::standard::express`]).

use crate::records::*;
use crate::AppState;
use serde_json::{json, Value};
use std::sync::Arc;

/// `GET /v1/logs?stateMachine=NAME&execution=ARN&limit=N` (also `/v1/express/logs`): the
/// newest execution log records (Express and Standard executions whose state machine has a
/// `loggingConfiguration`) of the executions whose history the caller may read
/// (`states:GetExecutionHistory` on each execution ARN).
pub async fn logs_endpoint(
    axum::extract::State(app): axum::extract::State<Arc<AppState>>,
    req: crate::v1_access::V1Request,
) -> axum::response::Response {
    let q = req.query();
    crate::rest::respond(&app, &req, "states:GetExecutionHistory", |ctx| {
        let limit = crate::rest::num_param(q, "limit")?
            .unwrap_or(100)
            .clamp(1, 10_000) as usize;
        let sm = crate::rest::sm_name_param(q, "stateMachine")?.map(|n| sm_arn(&n));
        let execution = crate::live::query_param(q, "execution").filter(|e| !e.is_empty());
        ctx.filtered(execution.as_deref().or(sm.as_deref()).unwrap_or("*"));
        let mut out = Vec::new();
        let mut bad = None;
        app.execution_log.newest_first(&mut |v| {
            let rec: Value = match serde_json::from_slice(v) {
                Ok(r) => r,
                Err(e) => {
                    bad = Some(e);
                    return false;
                }
            };
            if sm.as_ref().is_some_and(|s| rec["state_machine_arn"] != *s) {
                return true;
            }
            if execution
                .as_ref()
                .is_some_and(|e| rec["execution_arn"] != *e)
            {
                return true;
            }
            let exec = rec["execution_arn"].as_str().unwrap_or("");
            if !ctx.may("states:GetExecutionHistory", exec) {
                return true;
            }
            out.push(rec);
            out.len() < limit
        })?;
        if let Some(e) = bad {
            return Err(e.into());
        }
        out.reverse();
        Ok(json!({ "records": out }))
    })
}
