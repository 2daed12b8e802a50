//! The DAG scheduler's operations the server's APIs call (the scheduler loop itself runs in
//! the engine's runtime, see [`weft_engine::standard::dag_scheduler`]): marks and notes,
//! clearing task instances, and the scheduler errors as API errors.

use crate::error::ApiError;
use crate::AppState;
use serde_json::{json, Value};
pub(crate) use weft_engine::standard::dag_scheduler::{
    config, dags_paused_at_creation, trigger, with_control,
};

/// Applies a mark or note: through the runtime's scheduler thread when it runs (it holds the
/// queued and running runs; tries a mark overrides are stopped), else on the store.
pub(crate) fn apply_control(
    app: &AppState,
    req: weft_engine::scheduler::ControlRequest,
) -> Result<Vec<(String, i64)>, ApiError> {
    match app.dag_control.send(req.clone()) {
        Some(r) => r.map_err(sched_error),
        None => with_control(app, |s| s.apply_control(&req).map_err(sched_error)),
    }
}

/// A DAG scheduler error as the API answers it (`DagRunAlreadyExists` 409, `NotFound` 404,
/// else 500; see [`ApiError`]'s `From<RuntimeError>`).
pub(crate) fn sched_error(e: weft_engine::scheduler::SchedulerError) -> ApiError {
    ApiError::from(weft_engine::standard::RuntimeError::from(e))
}

/// Clears a task instance (and its downstream) of a finished run so the scheduler runs them
/// again (body: `{"task": ID, "downstream": true}`).
pub(crate) fn clear(
    app: &AppState,
    dag_id: &str,
    run_id: &str,
    body: &Value,
) -> Result<Value, ApiError> {
    let task = body
        .get("task")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::validation("/task: the task id to clear"))?;
    let downstream = body
        .get("downstream")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let cleared = with_control(app, |s| {
        if let Some(r) = s.store().get_run(dag_id, run_id).map_err(sched_error)? {
            if !r.is_finished() {
                return Err(ApiError::new(
                    "DagRunNotFinished",
                    format!(
                        "run `{run_id}` is {}: clear it once it has finished",
                        r.state
                    ),
                )
                .with_status(axum::http::StatusCode::CONFLICT));
            }
        }
        s.clear(dag_id, run_id, task, downstream)
            .map_err(sched_error)
    })?;
    Ok(json!({"dagId": dag_id, "runId": run_id, "cleared": cleared}))
}
