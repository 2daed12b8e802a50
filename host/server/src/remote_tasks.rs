//! Running a Standard execution's plugin Task on a remote worker: the node's side.
//!
//! [`queue_of`] reads the queue a Task names (`Parameters."weft:queue"`, default `default`);
//! when the dispatcher routes that queue remotely, [`run`] builds the try's message (the plugin
//! pinned by digest, the evaluated grant, only the granted secrets), queues it and blocks the
//! execution's thread until the worker reports, the worker is lost (no heartbeat within the
//! timeout: `States.TaskFailed`, so the state's Retry applies as for any failed try) or the
//! execution is stopped (the worker is asked to cancel). The attempt's task log names the
//! worker (`"worker": "HOST/WORKER_ID"`).

use crate::AppState;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use weft_asl::{TaskFailure, TaskRequest};
use weft_engine::asl_tasks::SandboxTaskRunner;
use weft_engine::remote::{RemotePlugin, RemoteTask, DEFAULT_QUEUE};
use weft_sandbox::Grant;
use weft_store::PluginRecord;

/// The `Parameters` (or `Arguments`) key naming a Task's queue.
pub const QUEUE_KEY: &str = "weft:queue";

/// How often the waiting thread checks for a stop or a lost worker.
const WAIT_TICK: Duration = Duration::from_millis(20);

fn failure(error: &str, cause: impl Into<String>) -> TaskFailure {
    TaskFailure {
        error: error.to_string(),
        cause: cause.into(),
    }
}

/// The queue a Task names: `Parameters."weft:queue"` (a string naming a queue), else
/// [`DEFAULT_QUEUE`].
pub fn queue_of(req: &TaskRequest<'_>) -> Result<String, TaskFailure> {
    match req.parameters.get(QUEUE_KEY) {
        None => Ok(DEFAULT_QUEUE.to_string()),
        Some(Value::String(q)) if crate::worker_api::valid_name(q) => Ok(q.clone()),
        Some(other) => Err(failure(
            "States.Runtime",
            format!(
                "Parameters.{QUEUE_KEY} must name a queue (1 to 128 letters, digits, `.`, `_` or `-`), not {other}"
            ),
        )),
    }
}

/// `req` without the queue key in what the operator receives.
pub fn without_queue_key<'a>(req: &TaskRequest<'a>) -> TaskRequest<'a> {
    let mut r = req.clone();
    if let Value::Object(m) = &mut r.payload {
        m.remove(QUEUE_KEY);
    }
    r
}

/// Runs `req` (already pinned to `rec`) on a worker of `queue` (see the module docs).
pub(crate) fn run(
    app: &Arc<AppState>,
    runner: &SandboxTaskRunner<'_>,
    req: &TaskRequest<'_>,
    rec: &PluginRecord,
    queue: String,
    cancelled: &dyn Fn() -> bool,
) -> Result<Value, TaskFailure> {
    let layers = runner.grant_layers(req.credentials.as_ref())?;
    let grant = Grant::compile(layers.clone(), &app.base_dir);
    let secrets = weft_engine::remote::granted_secrets(runner.host.secrets.as_ref(), &grant);
    let timeout = req
        .timeout_seconds
        .map(|t| Duration::from_secs(t.min(365 * 24 * 3600)))
        .unwrap_or(runner.limits.timeout);
    let task_id = uuid::Uuid::new_v4().to_string();
    let heartbeat_timeout = app.dispatch.heartbeat_timeout();
    let task = RemoteTask {
        task_id: task_id.clone(),
        queue,
        execution: req
            .context
            .pointer("/Execution/Id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        state: req.state_name.to_string(),
        attempt: req.attempt,
        plugin: RemotePlugin {
            name: rec.name.clone(),
            version: rec.version.clone(),
            digest: rec.digest.to_hex().to_string(),
            world: rec.world.clone(),
        },
        input: req.payload.to_string(),
        ctx: runner.guest_context(req)?,
        timeout_ms: timeout.as_millis() as u64,
        grant: layers.iter().map(|p| p.to_value()).collect(),
        secrets,
        heartbeat_ms: (heartbeat_timeout.as_millis() as u64 / 3).max(1),
    };
    let done = app.dispatch.submit(task);
    loop {
        match done.recv_timeout(WAIT_TICK) {
            Ok(crate::dispatch::Completion::Reported { report, worker }) => {
                let o = report.outcome;
                let log = json!({
                    "state": req.state_name,
                    "attempt": req.attempt,
                    "plugin": format!("{}@{}", rec.name, rec.version),
                    "digest": rec.digest.to_hex().to_string(),
                    "stdout": o.stdout,
                    "stderr": o.stderr,
                    "logs": o.logs,
                    "audit": o.audit,
                    "fuelUsed": o.fuel_used,
                    "durationMs": o.duration_ms,
                    "error": o.error.as_ref().map(|e| json!({"error": e.error, "cause": e.cause})),
                    "timestamp": crate::records::now_ms(),
                    "worker": worker,
                });
                crate::task_logs::record_entry(app, req, log.to_string());
                crate::metrics::remote_task_finished(app, o.error.is_some(), o.fuel_used);
                return match (o.output, o.error) {
                    (_, Some(e)) => Err(failure(&e.error, e.cause)),
                    (Some(text), None) => serde_json::from_str(&text).map_err(|e| {
                        failure("States.TaskFailed", format!("output is not JSON: {e}"))
                    }),
                    (None, None) => Err(failure("States.TaskFailed", "no output")),
                };
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                return Err(failure(
                    "States.TaskFailed",
                    "the task was dropped from its queue",
                ))
            }
        }
        if cancelled() {
            app.dispatch.cancel(&task_id);
            return Err(failure("Sandbox.Cancelled", "the execution was stopped"));
        }
        if let Some(worker) = app.dispatch.lost(&task_id) {
            let cause = format!(
                "worker {worker} stopped heartbeating for more than {} ms while running this task; the try is failed over (a late result is discarded)",
                heartbeat_timeout.as_millis()
            );
            crate::task_logs::record_entry(
                app,
                req,
                json!({
                    "state": req.state_name, "attempt": req.attempt,
                    "plugin": format!("{}@{}", rec.name, rec.version),
                    "digest": rec.digest.to_hex().to_string(),
                    "stdout": "", "stderr": "", "logs": [], "audit": [],
                    "fuelUsed": null, "durationMs": null,
                    "error": {"error": "States.TaskFailed", "cause": cause},
                    "timestamp": crate::records::now_ms(),
                    "worker": worker,
                })
                .to_string(),
            );
            return Err(failure("States.TaskFailed", cause));
        }
    }
}
