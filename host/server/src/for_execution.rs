//! DescribeStateMachineForExecution: the state machine as an execution runs it. The definition
//! and role are the ones pinned in the execution record when it started (a later
//! UpdateStateMachine does not change them); the configuration comes from the state machine
//! (or, when it was deleted since, AWS's defaults).

use crate::error::ApiError;
use crate::records::*;
use crate::AppState;
use serde_json::{json, Value};
use std::sync::Arc;

pub(crate) fn describe(app: &Arc<AppState>, req: &Value) -> Result<Value, ApiError> {
    let arn = crate::api::req_str(req, "executionArn")?;
    let e = crate::api::exec_by_arn(app, arn)?;
    let sm = crate::api::sm_by_arn(app, &e.state_machine_arn).ok();
    let definition = e
        .definition
        .clone()
        .or_else(|| sm.as_ref().map(|s| s.definition.clone()))
        .unwrap_or_default();
    let role = e
        .role_arn
        .clone()
        .or_else(|| sm.as_ref().map(|s| s.role_arn.clone()))
        .unwrap_or_else(|| crate::api::DEFAULT_ROLE.to_string());
    let updated = sm
        .as_ref()
        .map_or(e.start_ms, |s| s.update_ms.unwrap_or(s.creation_ms));
    let mut v = json!({
        "stateMachineArn": e.state_machine_arn,
        "name": e.state_machine_name,
        "definition": definition,
        "roleArn": role,
        "updateDate": ts(updated),
        "loggingConfiguration": sm.as_ref().and_then(|s| s.logging_configuration.clone())
            .unwrap_or_else(|| json!({"level": "OFF", "includeExecutionData": false})),
        "tracingConfiguration": sm.as_ref().and_then(|s| s.tracing_configuration.clone())
            .unwrap_or_else(|| json!({"enabled": false})),
    });
    // the revision only names the definition when it is still the state machine's own
    if let Some(s) = sm.as_ref().filter(|s| s.definition == definition) {
        v["revisionId"] = json!(s.revision_id);
    }
    Ok(v)
}
