//! Running a Standard execution's plugin Task on a remote worker: the node's side.
//!
//! [`queue_of`] reads the queue a Task names (`Parameters."weft:queue"`, default `default`);
//! when the dispatcher routes that queue remotely, [`run`] builds the try's message (the plugin
//! pinned by digest, the evaluated grant, only the granted secrets), queues it and blocks the
//! execution's thread until the worker reports, the worker is lost (no heartbeat within the
//! timeout: `States.TaskFailed`, so the state's Retry applies as for any failed try) or the
//! execution is stopped (the worker is asked to cancel). The attempt's task log names the
//! worker (`"worker": "HOST/WORKER_ID"`).

use super::Runtime;
use crate::asl_tasks::SandboxTaskRunner;
use crate::remote::{RemoteOutcome, RemotePlugin, RemoteTask, DEFAULT_QUEUE};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use weft_asl::{TaskFailure, TaskRequest};
use weft_store::PluginRecord;

/// The `Parameters` (or `Arguments`) key naming a Task's queue.
pub const QUEUE_KEY: &str = "weft:queue";

/// How soon the waiting thread first checks for a stop or a lost worker; each quiet check
/// doubles the wait, up to [`MAX_WAIT_TICK`] (a short task costs the node no wakeups, a long
/// one a few per second, and a stop reaches the worker within that bound plus a heartbeat).
const WAIT_TICK: Duration = Duration::from_millis(20);
/// The longest wait between two checks.
const MAX_WAIT_TICK: Duration = Duration::from_millis(250);

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
        Some(Value::String(q)) if crate::remote::valid_name(q) => Ok(q.clone()),
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

/// How a remote try ended, besides a report.
enum Ended {
    Reported(Box<RemoteOutcome>, String),
    /// The waiter gave up (stop, deadline); the worker is asked to cancel.
    Cancelled(TaskFailure),
    /// The worker went silent: `(worker, cause)`.
    Lost(String, String),
}

/// Queues `task` and waits for its end: a report, a lost worker, `cancelled()` turning true,
/// or the try's deadline (its timeout plus the heartbeat timeout) passing.
fn dispatch_and_wait(rt: &Runtime, task: RemoteTask, cancelled: &dyn Fn() -> bool) -> Ended {
    let task_id = task.task_id.clone();
    let heartbeat_timeout = rt.dispatch.heartbeat_timeout();
    let budget = Duration::from_millis(task.timeout_ms) + heartbeat_timeout;
    let mut started: Option<Instant> = None;
    let done = rt.dispatch.submit(task);
    let mut tick = WAIT_TICK;
    loop {
        match done.recv_timeout(tick) {
            Ok(super::dispatch::Completion::Reported { report, worker }) => {
                return Ended::Reported(Box::new(report.outcome), worker)
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                tick = (tick * 2).min(MAX_WAIT_TICK);
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                return Ended::Cancelled(failure(
                    "States.TaskFailed",
                    "the task was dropped from its queue",
                ))
            }
        }
        if cancelled() {
            rt.dispatch.cancel(&task_id);
            return Ended::Cancelled(failure("Sandbox.Cancelled", "the execution was stopped"));
        }
        if let Some(worker) = rt.dispatch.lost(&task_id) {
            let cause = format!(
                "worker {worker} stopped heartbeating for more than {} ms while running this task; the try is failed over (a late result is discarded)",
                heartbeat_timeout.as_millis()
            );
            return Ended::Lost(worker, cause);
        }
        // the deadline counts from when a worker took the try, not from the queue
        if started.is_none() && rt.dispatch.is_running(&task_id) {
            started = Some(Instant::now());
        }
        if started.is_some_and(|t| t.elapsed() > budget) {
            rt.dispatch.cancel(&task_id);
            return Ended::Cancelled(failure(
                "States.Timeout",
                format!(
                    "the worker did not report within the task's timeout ({} ms) plus the heartbeat timeout",
                    budget.saturating_sub(heartbeat_timeout).as_millis()
                ),
            ));
        }
    }
}

/// The task log entry of a remote attempt, as JSON text: a local attempt's entry plus the
/// worker that ran it.
fn log_entry(
    state: &str,
    attempt: u32,
    rec: &PluginRecord,
    o: &RemoteOutcome,
    worker: &str,
) -> String {
    serde_json::to_string(&super::task_logs::OutcomeEntry {
        state,
        attempt,
        plugin: rec.key(),
        digest: rec.digest.to_hex().to_string(),
        stdout: &o.stdout,
        stderr: &o.stderr,
        logs: &o.logs,
        audit: &o.audit,
        fuel_used: o.fuel_used,
        duration_ms: o.duration_ms,
        error: o.error.as_ref().map(|e| super::task_logs::ErrorEntry {
            error: &e.error,
            cause: &e.cause,
        }),
        timestamp: super::records::now_ms(),
        worker: Some(worker),
    })
    .unwrap_or_default()
}

fn plugin_of(rec: &PluginRecord) -> RemotePlugin {
    RemotePlugin {
        name: rec.name.clone(),
        version: rec.version.clone(),
        digest: rec.digest.to_hex().to_string(),
        world: rec.world.clone(),
    }
}

/// Runs `req` (already pinned to `rec`) on a worker of `queue` (see the module docs).
pub fn run(
    rt: &Arc<Runtime>,
    runner: &SandboxTaskRunner<'_>,
    req: &TaskRequest<'_>,
    rec: &PluginRecord,
    queue: String,
    cancelled: &dyn Fn() -> bool,
) -> Result<Value, TaskFailure> {
    let layers = runner.grant_layers(req.credentials.as_ref())?;
    let secrets =
        crate::remote::secrets_for_layers(runner.host.secrets.as_ref(), &layers, &rt.base_dir);
    let timeout = req
        .timeout_seconds
        .map(|t| Duration::from_secs(t.min(365 * 24 * 3600)))
        .unwrap_or(runner.limits.timeout);
    let task = RemoteTask {
        task_id: uuid::Uuid::new_v4().to_string(),
        queue,
        execution: req
            .context
            .pointer("/Execution/Id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        state: req.state_name.to_string(),
        attempt: req.attempt,
        plugin: plugin_of(rec),
        input: req.payload.to_string(),
        ctx: runner.guest_context(req)?,
        timeout_ms: timeout.as_millis() as u64,
        grant: layers.iter().map(|p| p.to_value()).collect(),
        secrets,
        heartbeat_ms: heartbeat_every(rt),
        packages: None,
    };
    match dispatch_and_wait(rt, task, cancelled) {
        Ended::Reported(o, worker) => {
            let log = log_entry(req.state_name, req.attempt, rec, &o, &worker);
            super::task_logs::record_entry(rt, req, log);
            rt.observer
                .remote_task_finished(o.error.is_some(), o.fuel_used);
            let o = *o;
            match (o.output, o.error) {
                (_, Some(e)) => Err(failure(&e.error, e.cause)),
                (Some(text), None) => serde_json::from_str(&text)
                    .map_err(|e| failure("States.TaskFailed", format!("output is not JSON: {e}"))),
                (None, None) => Err(failure("States.TaskFailed", "no output")),
            }
        }
        Ended::Cancelled(f) => Err(f),
        Ended::Lost(worker, cause) => {
            let o = RemoteOutcome::failed("States.TaskFailed", cause.clone());
            let log = log_entry(req.state_name, req.attempt, rec, &o, &worker);
            super::task_logs::record_entry(rt, req, log);
            Err(failure("States.TaskFailed", cause))
        }
    }
}

fn heartbeat_every(rt: &Runtime) -> u64 {
    (rt.dispatch.heartbeat_timeout().as_millis() as u64 / 3).max(1)
}

/// One try of a DAG task instance as a worker runs it.
pub struct DagTry<'a> {
    pub inv: &'a weft_dag::TaskInvocation,
    /// The plugin that runs it (a Python callable: the Python DAG parser component).
    pub rec: &'a PluginRecord,
    /// The plugin's input when it is not the task's arguments (a Python callable's call-mode
    /// request, carrying its DAG file's text).
    pub input: Option<String>,
    /// The blake3 of the archive of a Python callable's DAG folder packages, in the node's
    /// blob store (see [`crate::remote_packages::publish`]).
    pub packages: Option<String>,
}

/// Runs one try of a DAG task instance on a worker of `queue`: the plugin `rec`, the grant of
/// the task's `grant:` role, a sensor poked once (`true`: done; `false`:
/// [`weft_dag::SENSOR_NOT_READY`]). The try's log names the worker. `cancelled` stops it on
/// the worker (a task instance marked while it runs).
pub fn run_dag_try(
    rt: &Runtime,
    exec: &crate::dag_exec::SandboxTaskExecutor<'_>,
    dag_try: DagTry<'_>,
    queue: String,
    cancelled: &dyn Fn() -> bool,
) -> crate::scheduler::TryOutcome {
    let DagTry {
        inv,
        rec,
        input,
        packages,
    } = dag_try;
    let fail = |error: &str, cause: String| crate::scheduler::TryOutcome {
        result: Err(weft_dag::TaskFailure::new(error, cause)),
        log: Value::Null,
    };
    let layers = match &inv.grant {
        None => vec![],
        Some(name) => match exec.roles.get(name) {
            Ok(p) => vec![p],
            Err(e) => return fail("States.Permissions", e.to_string()),
        },
    };
    let secrets =
        crate::remote::secrets_for_layers(exec.host.secrets.as_ref(), &layers, &exec.base_dir);
    let sensor = rec.world == "sensor";
    let mut ctx = inv.context_json();
    if sensor {
        // a sensor gets its arguments as ctx params (it has no input)
        if let (Some(Value::Object(p)), Value::Object(args)) =
            (ctx.get_mut("params"), &inv.arguments)
        {
            for (k, v) in args {
                p.insert(k.clone(), v.clone());
            }
        }
    }
    let timeout = inv.execution_timeout.unwrap_or(exec.limits.timeout);
    let task = RemoteTask {
        task_id: uuid::Uuid::new_v4().to_string(),
        queue,
        execution: format!("{}/{}", inv.dag_id, inv.run_id),
        state: inv.display_id(),
        attempt: inv.try_number,
        plugin: plugin_of(rec),
        input: match input {
            Some(input) => input,
            None if sensor => String::new(),
            None => inv.arguments.to_string(),
        },
        ctx: ctx.to_string(),
        timeout_ms: timeout.as_millis() as u64,
        grant: layers.iter().map(|p| p.to_value()).collect(),
        secrets,
        heartbeat_ms: heartbeat_every(rt),
        packages,
    };
    let (o, worker) = match dispatch_and_wait(rt, task, cancelled) {
        Ended::Reported(o, worker) => (*o, worker),
        Ended::Cancelled(f) => return fail(&f.error, f.cause),
        Ended::Lost(worker, cause) => (RemoteOutcome::failed("States.TaskFailed", cause), worker),
    };
    rt.observer
        .remote_task_finished(o.error.is_some(), o.fuel_used);
    let log = json!({
        "task": inv.display_id(),
        "try_number": inv.try_number,
        "logs": o.logs,
        "stdout": o.stdout,
        "stderr": o.stderr,
        "audit": o.audit,
        "worker": worker,
    });
    let result = match (o.output, o.error) {
        (_, Some(e)) => Err(weft_dag::TaskFailure::new(e.error, e.cause)),
        (Some(t), None) if sensor => {
            if t == "true" {
                Ok(Value::Null)
            } else {
                Err(weft_dag::TaskFailure::new(
                    weft_dag::SENSOR_NOT_READY,
                    "the sensor's poke returned false",
                ))
            }
        }
        (Some(t), None) => serde_json::from_str(&t).map_err(|e| {
            weft_dag::TaskFailure::new("States.TaskFailed", format!("output is not JSON: {e}"))
        }),
        (None, None) => Err(weft_dag::TaskFailure::new("States.TaskFailed", "no output")),
    };
    crate::scheduler::TryOutcome { result, log }
}
