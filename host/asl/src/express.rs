//! The synchronous driver for Express-style runs: executes a whole state machine in-process
//! with the pure steps of [`crate::step`], calling the caller's [`TaskRunner`] for Task
//! states, the caller's [`Clock`] for Wait states and retry delays, an optional
//! [`ItemReader`] for Map `ItemReader`, and writing Step Functions history events to an
//! optional [`HistorySink`]. Map iterations and Parallel branches run on scoped threads,
//! honouring `MaxConcurrency`, with results kept in order.

use crate::cancel::Cancellation;
use crate::env::{format_time, Context, Env, ExecutionInfo, Variables};
use crate::error::{names, ExecutionFailure, StateError};
use crate::history::{HistoryEvent, HistorySink};
use crate::model::*;
use crate::resource::{wrap_lambda_invoke, IntegrationPattern, Resource};
use crate::step::{self, ErrorDecision, Finished};
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A task for the caller to execute.
#[derive(Debug, Clone)]
pub struct TaskRequest<'a> {
    /// Task state name.
    pub state_name: &'a str,
    /// Parsed `Resource`.
    pub resource: &'a Resource,
    /// Plugin / function to call (`FunctionName` for `lambda:invoke`).
    pub target: String,
    /// Effective parameters after `InputPath` and `Parameters`/`Arguments`.
    pub parameters: Value,
    /// What the operator receives: `Parameters.Payload` for `lambda:invoke`, else `parameters`.
    pub payload: Value,
    /// Evaluated `Credentials` (e.g. `{"RoleArn": "weft:role:NAME"}`).
    pub credentials: Option<Value>,
    /// `TimeoutSeconds` (resolved).
    pub timeout_seconds: Option<u64>,
    /// `HeartbeatSeconds` (resolved).
    pub heartbeat_seconds: Option<u64>,
    /// The context object, including `Task.Token` for `.waitForTaskToken`.
    pub context: &'a Value,
    /// The task token for `.waitForTaskToken`.
    pub task_token: Option<String>,
    /// 1-based attempt number (retries increase it).
    pub attempt: u32,
    /// The task's identity within the execution, stable across replays of the same run
    /// (scope path + state index + visit count; attempts are counted separately). Empty unless
    /// the run has a [`RunControl`] or a [`StateObserver`].
    pub key: String,
    /// Nesting depth: 0 for a state of the top-level machine, +1 per Map/Parallel level.
    pub depth: usize,
    /// Thrown when a sibling Parallel branch or Map iteration failed: the runner should stop
    /// the task (its result is ignored once thrown).
    pub cancel: Cancellation,
}

/// A failed task: becomes the state's `Error`/`Cause`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}: {cause}")]
pub struct TaskFailure {
    /// Error name (`States.Timeout`, `Sandbox.FuelExhausted`, a plugin's own name...).
    pub error: String,
    /// Human readable cause.
    pub cause: String,
}

/// Executes Task states.
pub trait TaskRunner: Send + Sync {
    /// Runs one task attempt and returns its raw result.
    fn run_task(&self, req: &TaskRequest<'_>) -> Result<Value, TaskFailure>;

    /// The task token of a `.waitForTaskToken` attempt (`$$.Task.Token`). A durable runner
    /// derives it from `key` and `attempt` so that a replayed run issues the same token.
    fn task_token(&self, key: &str, attempt: u32) -> String {
        let _ = (key, attempt);
        uuid::Uuid::new_v4().to_string()
    }

    /// Whether a successful result of `req` is wrapped like `lambda:invoke`'s response (see
    /// [`wrap_lambda_invoke`]); a runner answering with a whole response (a mock) says no.
    fn wraps_result(&self, req: &TaskRequest<'_>) -> bool {
        req.resource.wraps_result()
    }

    /// Told by a journaling wrapper of each attempt it answered from its journal without
    /// calling this runner (so that a runner counting calls counts the same on a replay).
    fn replayed(&self, req: &TaskRequest<'_>) {
        let _ = req;
    }
}

/// How a durable driver steers a run: timers it can persist and a way to unwind the run
/// (by returning [`names::SUSPENDED`]) to resume it later by replay, or to stop it.
pub trait RunControl: Send + Sync {
    /// Called as every state is entered; an error ends the run (use `SUSPENDED` to unwind).
    fn check(&self) -> Result<(), StateError> {
        Ok(())
    }

    /// Waits for timer `key` (a Wait state: `KEY:wait`, a retry back-off: `KEY:retryN`) to
    /// reach `until_ms` (epoch milliseconds). `key` is stable across replays, so a durable
    /// driver records the first deadline it sees and keeps it. `depth` is the nesting depth
    /// of the waiting state (0 = top-level machine). A wait should end early when `cancel`
    /// is thrown (the interpreter then unwinds the branch).
    fn wait_until(
        &self,
        key: &str,
        until_ms: i64,
        depth: usize,
        cancel: &Cancellation,
    ) -> Result<(), StateError>;

    /// The execution's seed for random draws (`States.UUID`, `$random()`, jitter, ...): with
    /// `Some`, each state visit draws from a sequence derived from it and the visit's key, so
    /// replays draw the same values (see [`crate::entropy`]).
    fn entropy_seed(&self) -> Option<u64> {
        None
    }

    /// The limits an operator set on a running Map Run (`UpdateMapRun`), read as its items
    /// start and fail; `None`: the definition's own.
    fn map_run_limits(&self, map_run_arn: &str) -> Option<MapRunLimits> {
        let _ = map_run_arn;
        None
    }
}

/// A Map Run's limits as `UpdateMapRun` sets them (each `None`: unchanged).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MapRunLimits {
    /// At most this many items at once (0: no limit).
    pub max_concurrency: Option<u64>,
    /// More failures than this fail the run.
    pub tolerated_failure_count: Option<u64>,
    /// A larger share of failed items (percent) fails the run.
    pub tolerated_failure_percentage: Option<f64>,
}

/// A runner that fails every task (for machines without tasks).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoTasks;

impl TaskRunner for NoTasks {
    fn run_task(&self, req: &TaskRequest<'_>) -> Result<Value, TaskFailure> {
        Err(TaskFailure {
            error: names::TASK_FAILED.into(),
            cause: format!(
                "no task runner is configured for resource '{}'",
                req.resource
            ),
        })
    }
}

/// Time source for Wait states, retry delays and timestamps.
pub trait Clock: Send + Sync {
    /// Current time.
    fn now(&self) -> DateTime<Utc>;
    /// Blocks (or pretends to) for `d`.
    fn sleep(&self, d: Duration);
    /// Blocks for `d` or until `cancel` is thrown, whichever comes first. The default
    /// sleeps in slices of at most [`CANCEL_POLL`].
    fn sleep_unless_cancelled(&self, d: Duration, cancel: &Cancellation) {
        if !cancel.is_armed() {
            return self.sleep(d);
        }
        let end = self.now() + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
        loop {
            if cancel.is_cancelled() {
                return;
            }
            let left = (end - self.now()).to_std().unwrap_or_default();
            if left.is_zero() {
                return;
            }
            self.sleep(left.min(CANCEL_POLL));
        }
    }
}

/// How often a sleeping branch looks at its [`Cancellation`].
pub const CANCEL_POLL: Duration = Duration::from_millis(10);

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
    fn sleep(&self, d: Duration) {
        std::thread::sleep(d)
    }
}

/// A clock for tests: starts at the real time and advances only when slept on.
#[derive(Debug)]
pub struct FakeClock {
    ms: AtomicU64,
}

impl FakeClock {
    /// A fake clock starting at `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        FakeClock {
            ms: AtomicU64::new(start.timestamp_millis().max(0) as u64),
        }
    }
}

impl Default for FakeClock {
    fn default() -> Self {
        FakeClock::new(Utc::now())
    }
}

impl Clock for FakeClock {
    fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.ms.load(Ordering::Relaxed) as i64).unwrap_or_default()
    }
    /// Moves the clock to at least the sleeper's "now + d": sequential sleeps add up, and
    /// Map iterations or Parallel branches sleeping side by side overlap as they would.
    fn sleep(&self, d: Duration) {
        let d = d.as_millis().min(u64::MAX as u128) as u64;
        let from = self.ms.load(Ordering::Relaxed);
        self.ms.fetch_max(from.saturating_add(d), Ordering::Relaxed);
    }
    fn sleep_unless_cancelled(&self, d: Duration, cancel: &Cancellation) {
        // virtual time: a cancelled sleeper simply does not advance the clock
        if !cancel.is_cancelled() {
            self.sleep(d)
        }
    }
}

/// The tolerated failure count once an `UpdateMapRun` changed it: the lower of an updated
/// count and an updated percentage of `total`, else what the definition said.
fn tolerated_after_update(l: MapRunLimits, def: Option<usize>, total: usize) -> Option<usize> {
    let by_count = l
        .tolerated_failure_count
        .map(|c| usize::try_from(c).unwrap_or(usize::MAX));
    let by_pct = l
        .tolerated_failure_percentage
        .map(|p| ((p.clamp(0.0, 100.0) / 100.0) * total as f64).floor() as usize);
    match (by_count, by_pct) {
        (None, None) => def,
        (Some(c), None) => Some(c),
        (None, Some(p)) => Some(p),
        (Some(c), Some(p)) => Some(c.max(p)),
    }
}

/// One Map item's input, start and stop (epoch ms), once it started.
type ItemMeta = Mutex<Option<(Value, i64, i64)>>;

/// Each Map item's outcome, input and times, for `ResultWriter`.
fn item_results(
    results: &[Result<Value, StateError>],
    metas: Vec<ItemMeta>,
) -> Vec<crate::results::ItemResult> {
    use crate::results::{ItemOutcome, ItemResult};
    results
        .iter()
        .zip(metas)
        .map(|(r, m)| {
            let meta = m.into_inner().unwrap_or_else(|e| e.into_inner());
            let Some((input, start_ms, stop_ms)) = meta else {
                return ItemResult {
                    input: Value::Null,
                    outcome: ItemOutcome::Pending,
                    start_ms: 0,
                    stop_ms: 0,
                };
            };
            let outcome = match r {
                Ok(v) => ItemOutcome::Succeeded(v.clone()),
                Err(e) if e.is_cancelled() => ItemOutcome::Aborted,
                Err(e) => ItemOutcome::Failed(e.clone()),
            };
            ItemResult {
                input,
                outcome,
                start_ms,
                stop_ms,
            }
        })
        .collect()
}

/// Reads Map `ItemReader` sources (the one place the interpreter touches external data).
pub trait ItemReader: Send + Sync {
    /// Returns the raw bytes of the source named by the reader's evaluated parameters
    /// (e.g. `{"Bucket": .., "Key": ..}` or `{"Path": ..}`).
    fn read(&self, resource: &str, parameters: &Value) -> Result<Vec<u8>, StateError>;

    /// Lists the objects named by an `s3:listObjectsV2` reader's parameters (`Bucket`,
    /// `Prefix`), at most `max` of them, each in S3's shape (`Key`, `Size`, `ETag`,
    /// `LastModified`, `StorageClass`).
    fn list(
        &self,
        resource: &str,
        parameters: &Value,
        max: Option<u64>,
    ) -> Result<Vec<Value>, StateError> {
        let _ = (parameters, max);
        Err(StateError::new(
            names::ITEM_READER_FAILED,
            format!("ItemReader {resource}: this run cannot list buckets"),
        ))
    }
}

/// Writes a Distributed Map's exported results (`ResultWriter` with `Resource` and
/// `Parameters`): one object at a time, each key already under the writer's prefix.
pub trait ResultWriter: Send + Sync {
    /// Stores `body` as `bucket`/`key`; fails with `States.ResultWriterFailed`.
    fn put(&self, resource: &str, bucket: &str, key: &str, body: Vec<u8>)
        -> Result<(), StateError>;
}

/// Execution options.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Execution name (`$$.Execution.Name`).
    pub execution_name: String,
    /// State machine name (`$$.StateMachine.Name`).
    pub state_machine_name: String,
    /// Region used in ARNs.
    pub region: String,
    /// Account used in ARNs.
    pub account: String,
    /// Execution role ARN (`$$.Execution.RoleArn`).
    pub role_arn: String,
    /// `$$.Execution.Id` when the caller names the execution itself (an Express execution's
    /// `arn:aws:states:REGION:ACCOUNT:express:MACHINE:NAME:UUID`); `None`: the Standard shape
    /// `...:execution:MACHINE:NAME`.
    pub execution_arn: Option<String>,
    /// Upper bound on threads per Map/Parallel state.
    pub max_threads: usize,
    /// Fail with `States.Runtime` after this many state transitions (loop guard).
    pub max_transitions: Option<u64>,
    /// The execution's start time (epoch ms) when resuming a run; `None`: now.
    pub start_ms: Option<i64>,
    /// `$$.Execution.RedriveCount`.
    pub redrive_count: u32,
    /// When the state machine's `TimeoutSeconds` starts counting (epoch ms): a redrive starts
    /// it again; `None`: at the execution's start.
    pub timeout_from_ms: Option<i64>,
    /// Largest execution input and state output, in bytes of JSON ([`PAYLOAD_LIMIT`], AWS's
    /// 256 KiB, by default); more is `States.DataLimitExceeded`. An operator setting (for
    /// local batch runs and benchmarks), never taken from a definition.
    pub max_payload_bytes: usize,
}

/// The machine's available parallelism, asked once (the answer reads cgroup files).
fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
    })
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            execution_name: uuid::Uuid::new_v4().to_string(),
            state_machine_name: "StateMachine".into(),
            region: "us-east-1".into(),
            account: "000000000000".into(),
            role_arn: "arn:aws:iam::000000000000:role/weft-execution".into(),
            execution_arn: None,
            max_threads: cores(),
            max_transitions: None,
            start_ms: None,
            redrive_count: 0,
            timeout_from_ms: None,
            max_payload_bytes: PAYLOAD_LIMIT,
        }
    }
}

/// Optional collaborators of a run.
#[derive(Default)]
pub struct Hooks<'a> {
    /// History receiver.
    pub history: Option<&'a mut dyn HistorySink>,
    /// ItemReader source.
    pub item_reader: Option<&'a dyn ItemReader>,
    /// Where `ResultWriter` exports go.
    pub result_writer: Option<&'a dyn ResultWriter>,
    /// Durable control: persisted timers, suspension, stop. With it, task requests carry
    /// stable keys.
    pub control: Option<&'a dyn RunControl>,
    /// Told of every state visit as it ends (for traces). With it, task requests carry stable
    /// keys, as with `control`.
    pub observer: Option<&'a dyn StateObserver>,
}

/// One state visit that ended: exited, failed, was caught or was stopped by a sibling's
/// failure. A run that suspends leaves its unfinished visits unreported (its replay reports
/// them when they end).
#[derive(Debug, Clone, Copy)]
pub struct StateVisit<'a> {
    /// The state's name.
    pub name: &'a str,
    /// Its type (`Task`, `Pass`, `Map`, ...).
    pub kind: &'static str,
    /// The visit's key, stable across replays: `SCOPE/INDEX.VISIT`, where `SCOPE` is empty at
    /// the top level and `PARENT_KEY@ATTEMPT/bN` (Parallel branch `N`) or
    /// `PARENT_KEY@ATTEMPT/iN` (Map iteration `N`) inside one. A task attempt of this visit has
    /// `TaskRequest::key` equal to it.
    pub key: &'a str,
    /// When the state was entered and when it ended.
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// History event ids of its entry, of its exit (0: it did not exit) and of the last event
    /// it caused.
    pub entered_event: u64,
    pub exited_event: u64,
    pub last_event: u64,
    /// `Some(error name)` when the state failed (or was stopped: `States.Cancelled`...).
    pub error: Option<&'a str>,
}

/// Receives each state visit as it ends (see [`StateVisit`]).
pub trait StateObserver: Send + Sync {
    /// Called on the thread that ran the state, after its last history event.
    fn state_visited(&self, visit: &StateVisit<'_>);
}

/// The state type's name, as in the definition (`Task`, `Map`, ...).
pub fn kind_name(k: &StateKind) -> &'static str {
    match k {
        StateKind::Pass { .. } => "Pass",
        StateKind::Task(_) => "Task",
        StateKind::Choice { .. } => "Choice",
        StateKind::Wait(_) => "Wait",
        StateKind::Succeed => "Succeed",
        StateKind::Fail { .. } => "Fail",
        StateKind::Parallel { .. } => "Parallel",
        StateKind::Map(_) => "Map",
    }
}

struct Recorder<'a> {
    sink: Option<Mutex<&'a mut dyn HistorySink>>,
    next_id: AtomicU64,
}

impl Recorder<'_> {
    #[inline]
    fn emit(&self, prev: u64, ts: i64, ty: &'static str, details: impl FnOnce() -> Value) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(s) = &self.sink {
            let ev = HistoryEvent {
                id,
                previous_event_id: prev,
                timestamp_ms: ts,
                event_type: ty,
                details: details(),
            };
            if let Ok(mut g) = s.lock() {
                g.event(ev);
            }
        }
        id
    }
}

struct Exec<'a> {
    runner: &'a dyn TaskRunner,
    clock: &'a dyn Clock,
    reader: Option<&'a dyn ItemReader>,
    writer: Option<&'a dyn ResultWriter>,
    rec: Recorder<'a>,
    info: ExecutionInfo,
    opts: &'a RunOptions,
    deadline_ms: Option<i64>,
    transitions: AtomicU64,
    control: Option<&'a dyn RunControl>,
    observer: Option<&'a dyn StateObserver>,
}

/// How a state visit continues.
enum Flow {
    /// To the state at this index, with this input.
    Next(usize, Value),
    /// The machine (or branch, iteration) ends with this output.
    End(Value),
}

/// Where a state runs: the key path of its enclosing Map iteration / Parallel branch.
struct Scope<'s> {
    path: &'s str,
    depth: usize,
    /// Thrown when a sibling branch or iteration of an enclosing Parallel/Map failed.
    cancel: &'s Cancellation,
}

static NEVER: Cancellation = Cancellation::none();
const TOP: Scope<'static> = Scope {
    path: "",
    depth: 0,
    cancel: &NEVER,
};

/// The error that unwinds a branch or iteration whose sibling failed.
fn cancelled() -> StateError {
    StateError::new(
        names::CANCELLED,
        "stopped because another branch or iteration of the state failed",
    )
}

fn aborted_type(k: &StateKind) -> &'static str {
    match k {
        StateKind::Task(_) => "TaskStateAborted",
        StateKind::Wait(_) => "WaitStateAborted",
        StateKind::Parallel { .. } => "ParallelStateAborted",
        StateKind::Map(_) => "MapStateAborted",
        StateKind::Pass { .. } => "PassStateAborted",
        StateKind::Choice { .. } => "ChoiceStateAborted",
        StateKind::Succeed => "SucceedStateAborted",
        StateKind::Fail { .. } => "FailStateAborted",
    }
}

fn entered_type(k: &StateKind) -> (&'static str, &'static str) {
    match k {
        StateKind::Pass { .. } => ("PassStateEntered", "PassStateExited"),
        StateKind::Task(_) => ("TaskStateEntered", "TaskStateExited"),
        StateKind::Choice { .. } => ("ChoiceStateEntered", "ChoiceStateExited"),
        StateKind::Wait(_) => ("WaitStateEntered", "WaitStateExited"),
        StateKind::Succeed => ("SucceedStateEntered", "SucceedStateExited"),
        StateKind::Fail { .. } => ("FailStateEntered", "FailStateExited"),
        StateKind::Parallel { .. } => ("ParallelStateEntered", "ParallelStateExited"),
        StateKind::Map(_) => ("MapStateEntered", "MapStateExited"),
    }
}

fn text(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn engine_error(state: &str, entered: u64, e: StateError) -> StateError {
    let cause = match e.cause {
        Some(c) => format!(
            "An error occurred while executing the state '{state}' (entered at the event id #{entered}). {c}"
        ),
        None => format!(
            "An error occurred while executing the state '{state}' (entered at the event id #{entered})."
        ),
    };
    StateError {
        error: e.error,
        cause: Some(cause),
    }
}

fn random01() -> f64 {
    crate::entropy::next_f64()
}

/// Runs a state machine to completion (Express semantics, in-process).
///
/// Returns the final output, or the execution's `Error`/`Cause`.
pub fn run_express<'a>(
    sm: &StateMachine,
    input: Value,
    opts: &'a RunOptions,
    runner: &'a dyn TaskRunner,
    clock: &'a dyn Clock,
    hooks: Hooks<'a>,
) -> Result<Value, ExecutionFailure> {
    let start_ms = opts
        .start_ms
        .unwrap_or_else(|| clock.now().timestamp_millis());
    let sm_arn = format!(
        "arn:aws:states:{}:{}:stateMachine:{}",
        opts.region, opts.account, opts.state_machine_name
    );
    let exec_arn = opts.execution_arn.clone().unwrap_or_else(|| {
        format!(
            "arn:aws:states:{}:{}:execution:{}:{}",
            opts.region, opts.account, opts.state_machine_name, opts.execution_name
        )
    });
    let info = ExecutionInfo {
        execution: json!({
            "Id": exec_arn,
            "Input": input,
            "StartTime": format_time(start_ms),
            "Name": opts.execution_name,
            "RoleArn": opts.role_arn,
            "RedriveCount": opts.redrive_count
        }),
        state_machine: json!({"Id": sm_arn, "Name": opts.state_machine_name}),
    };
    let exec = Exec {
        runner,
        clock,
        reader: hooks.item_reader,
        writer: hooks.result_writer,
        rec: Recorder {
            sink: hooks.history.map(Mutex::new),
            next_id: AtomicU64::new(0),
        },
        info,
        opts,
        deadline_ms: sm.timeout_seconds.map(|t| {
            opts.timeout_from_ms
                .unwrap_or(start_ms)
                .saturating_add((t.min(i64::MAX as u64) as i64).saturating_mul(1000))
        }),
        transitions: AtomicU64::new(0),
        control: hooks.control,
        observer: hooks.observer,
    };
    exec.rec.emit(0, start_ms, "ExecutionStarted", || {
        json!({"input": text(&input), "inputDetails": {"truncated": false}, "roleArn": opts.role_arn})
    });
    // as in GetExecutionHistory, the first state's entry links to event 0
    let mut prev = 0;
    let mut vars = Variables::new();
    let r = match crate::limits::check_payload(&input, opts.max_payload_bytes, || {
        "The execution input".to_string()
    }) {
        Ok(()) => exec.run_machine(sm, input, &mut vars, &mut prev, &TOP),
        Err(e) => Err(e),
    };
    let now = exec.now_ms();
    match &r {
        Err(e) if e.is_suspended() => {}
        Ok(out) => {
            exec.rec.emit(
                prev,
                now,
                "ExecutionSucceeded",
                || json!({"output": text(out), "outputDetails": {"truncated": false}}),
            );
        }
        Err(e) => {
            let ty = if e.error == names::TIMEOUT && exec.deadline_ms.is_some_and(|d| now >= d) {
                "ExecutionTimedOut"
            } else {
                "ExecutionFailed"
            };
            exec.rec.emit(prev, now, ty, || {
                let mut m = Map::new();
                m.insert("error".into(), Value::String(e.error.clone()));
                if let Some(c) = &e.cause {
                    m.insert("cause".into(), Value::String(c.clone()));
                }
                Value::Object(m)
            });
        }
    }
    r
}

impl Exec<'_> {
    #[inline]
    fn now_ms(&self) -> i64 {
        self.clock.now().timestamp_millis()
    }

    /// Whether state visits get stable keys (durable runs and observed runs).
    #[inline]
    fn keyed(&self) -> bool {
        self.control.is_some() || self.observer.is_some()
    }

    /// Records that `st` was stopped by a sibling's failure (`{Type}StateAborted`, as in Step
    /// Functions' history) when `e` is the cancellation; returns `e` either way.
    fn aborted(&self, st: &State, prev: &mut u64, e: StateError) -> StateError {
        if e.is_cancelled() {
            *prev = self.rec.emit(
                *prev,
                self.now_ms(),
                aborted_type(&st.kind),
                || json!({"name": st.name}),
            );
        }
        e
    }

    fn check_limits(&self, now: i64) -> Result<(), StateError> {
        let n = self.transitions.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(max) = self.opts.max_transitions {
            if n > max {
                return Err(StateError::new(
                    names::RUNTIME,
                    format!("the execution exceeded the limit of {max} state transitions"),
                ));
            }
        }
        if let Some(d) = self.deadline_ms {
            if now >= d {
                return Err(StateError::new(names::TIMEOUT, "The execution timed out."));
            }
        }
        Ok(())
    }

    fn sleep_until(
        &self,
        key: impl FnOnce() -> String,
        scope: &Scope<'_>,
        until_ms: i64,
    ) -> Result<(), StateError> {
        let (target, timeout) = match self.deadline_ms {
            Some(d) if until_ms > d => (d, true),
            _ => (until_ms, false),
        };
        if let Some(c) = self.control {
            c.wait_until(&key(), target, scope.depth, scope.cancel)?;
        } else {
            let now = self.now_ms();
            if target > now {
                self.clock.sleep_unless_cancelled(
                    Duration::from_millis((target - now) as u64),
                    scope.cancel,
                );
            }
        }
        if scope.cancel.is_cancelled() {
            return Err(cancelled());
        }
        if timeout {
            return Err(StateError::new(names::TIMEOUT, "The execution timed out."));
        }
        Ok(())
    }

    fn run_machine(
        &self,
        m: &StateMachine,
        input: Value,
        vars: &mut Variables,
        prev: &mut u64,
        scope: &Scope<'_>,
    ) -> Result<Value, StateError> {
        let mut cur = m.start_at;
        let mut input = input;
        // visits per state index, for stable keys (only with a RunControl or an observer)
        let mut visits: Vec<u32> = if self.keyed() {
            vec![0; m.states.len()]
        } else {
            Vec::new()
        };
        loop {
            if scope.cancel.is_cancelled() {
                return Err(cancelled());
            }
            let Some(st) = m.states.get(cur) else {
                return Err(StateError::new(
                    names::RUNTIME,
                    "transition to an unknown state",
                ));
            };
            let key = match visits.get_mut(cur) {
                Some(v) => {
                    if let Some(c) = self.control {
                        c.check()?;
                    }
                    *v += 1;
                    format!("{}/{}.{}", scope.path, cur, v)
                }
                None => String::new(),
            };
            let _draws = self
                .control
                .and_then(|c| c.entropy_seed())
                .filter(|_| !key.is_empty())
                .map(|seed| crate::entropy::scope(crate::entropy::seed_for(seed, &key)));
            let here = Scope {
                path: &key,
                depth: scope.depth,
                cancel: scope.cancel,
            };
            let now = self.now_ms();
            self.check_limits(now)?;
            let (ent, exi) = entered_type(&st.kind);
            let entered = self.rec.emit(*prev, now, ent, || {
                json!({"name": st.name, "input": text(&input), "inputDetails": {"truncated": false}})
            });
            *prev = entered;
            let started = self.observer.map(|_| self.clock.now());
            // the id of the state's Exited event (0 when it did not exit)
            let mut exit_id = 0u64;
            let flow = (|| -> Result<Flow, StateError> {
                let mut ctx = Context::new(&self.info, &st.name, now);
                if matches!(
                    st.kind,
                    StateKind::Task(_) | StateKind::Map(_) | StateKind::Parallel { .. }
                ) {
                    ctx.retry_count = Some(0);
                }
                let null = Value::Null;
                let env = Env {
                    input: &null,
                    ctx: &ctx,
                    vars,
                };
                let ee = |e: StateError| engine_error(&st.name, entered, e);
                let (next, fin): (Option<usize>, Finished) = match &st.kind {
                    StateKind::Pass { .. } => {
                        let f = step::run_pass(st, input, &env).map_err(ee)?;
                        (None, f)
                    }
                    StateKind::Choice { .. } => {
                        let (n, f) = step::choose(st, input, &env).map_err(ee)?;
                        (Some(n), f)
                    }
                    StateKind::Succeed => {
                        let f = if st.query_language == QueryLanguage::Jsonata {
                            step::finish(st, input.clone(), input, &env).map_err(ee)?
                        } else {
                            let eff = step::effective_input(st, input, &env).map_err(ee)?;
                            let out =
                                step::apply_output_path(&st.output_path, eff, &env).map_err(ee)?;
                            Finished {
                                output: out,
                                assign: Vec::new(),
                            }
                        };
                        check_output(&st.name, &f.output, self.opts.max_payload_bytes)?;
                        exit_id = self.rec.emit(*prev, self.now_ms(), exi, || {
                            json!({"name": st.name, "output": text(&f.output), "outputDetails": {"truncated": false}})
                        });
                        return Ok(Flow::End(f.output));
                    }
                    StateKind::Fail { .. } => {
                        let e = step::fail_error(st, &input, &env).map_err(ee)?;
                        return Err(e);
                    }
                    StateKind::Wait(_) => {
                        let raw = if st.query_language == QueryLanguage::Jsonata {
                            Some(input.clone())
                        } else {
                            None
                        };
                        let eff = step::effective_input(st, input, &env).map_err(ee)?;
                        let until = step::wait_until(st, &eff, &env, now).map_err(ee)?;
                        self.sleep_until(|| format!("{key}:wait"), &here, until)
                            .map_err(|e| self.aborted(st, prev, e))?;
                        let f = if let Some(raw) = raw {
                            step::finish(st, raw, eff, &env).map_err(ee)?
                        } else {
                            let assign = match &st.assign {
                                Some(t) => match t.eval(&env.with_input(&eff), None).map_err(ee)? {
                                    Value::Object(o) => o.into_iter().collect(),
                                    _ => Vec::new(),
                                },
                                None => Vec::new(),
                            };
                            let out =
                                step::apply_output_path(&st.output_path, eff, &env).map_err(ee)?;
                            Finished {
                                output: out,
                                assign,
                            }
                        };
                        (None, f)
                    }
                    StateKind::Task(_) | StateKind::Map(_) | StateKind::Parallel { .. } => {
                        match self
                            .run_with_retry(st, input, &env, entered, prev, &here)
                            .map_err(|e| self.aborted(st, prev, e))?
                        {
                            Ok(f) => (None, f),
                            Err((n, f)) => (Some(n), f),
                        }
                    }
                };
                // as in Step Functions, the values one Assign sets are bounded together by the
                // payload limit (and each by the nesting limit)
                if !fin.assign.is_empty() {
                    let mut left = self.opts.max_payload_bytes;
                    for (k, v) in &fin.assign {
                        let size = match crate::limits::json_size(v, left) {
                            Ok(n) => n,
                            Err(_) => {
                                return Err(StateError::new(
                                    names::DATA_LIMIT_EXCEEDED,
                                    format!(
                                        "The variables assigned by the state '{}' (up to '{k}') exceed the maximum of {} bytes or {} levels of nesting",
                                        st.name, self.opts.max_payload_bytes, crate::limits::MAX_VALUE_DEPTH
                                    ),
                                ))
                            }
                        };
                        left -= size;
                    }
                }
                // apply assignments, then leave the state
                let assigned = if self.rec.sink.is_some() && !fin.assign.is_empty() {
                    let m: Map<String, Value> = fin
                        .assign
                        .iter()
                        .map(|(k, v)| (k.clone(), Value::String(text(v))))
                        .collect();
                    Some(Value::Object(m))
                } else {
                    None
                };
                for (k, v) in fin.assign {
                    vars.set(k, v);
                }
                let output = fin.output;
                check_output(&st.name, &output, self.opts.max_payload_bytes)?;
                *prev = self.rec.emit(*prev, self.now_ms(), exi, || {
                    let mut d = json!({"name": st.name, "output": text(&output), "outputDetails": {"truncated": false}});
                    if let Some(a) = assigned {
                        d["assignedVariables"] = a;
                        d["assignedVariablesDetails"] = json!({"truncated": false});
                    }
                    d
                });
                exit_id = *prev;
                let target = match next {
                    Some(n) => Some(n),
                    None => match st.transition {
                        Transition::Next(n) => Some(n),
                        Transition::End => None,
                    },
                };
                match target {
                    Some(n) => Ok(Flow::Next(n, output)),
                    None => Ok(Flow::End(output)),
                }
            })();
            if let (Some(o), Some(t0)) = (self.observer, started) {
                let error = match &flow {
                    Err(e) if e.is_suspended() => None,
                    Err(e) => Some(Some(e.error.as_str())),
                    Ok(_) => Some(None),
                };
                // a run that unwinds (suspends) leaves its state unfinished: not reported
                if let Some(error) = error {
                    o.state_visited(&StateVisit {
                        name: &st.name,
                        kind: kind_name(&st.kind),
                        key: &key,
                        start: t0,
                        end: self.clock.now(),
                        entered_event: entered,
                        exited_event: exit_id,
                        last_event: *prev,
                        error,
                    });
                }
            }
            match flow? {
                Flow::Next(n, output) => {
                    cur = n;
                    input = output;
                }
                Flow::End(output) => return Ok(output),
            }
        }
    }

    /// Runs a Task/Map/Parallel state with Retry/Catch. `Ok(Ok(f))`: normal completion;
    /// `Ok(Err((next, f)))`: caught, go to `next`; `Err(e)`: the state failed.
    #[allow(clippy::type_complexity)]
    fn run_with_retry(
        &self,
        st: &State,
        input: Value,
        env: &Env<'_>,
        entered: u64,
        prev: &mut u64,
        here: &Scope<'_>,
    ) -> Result<Result<Finished, (usize, Finished)>, StateError> {
        let mut attempts = vec![0u32; st.retry.len()];
        let mut attempt = 1u32;
        // the raw input is only needed again when a retrier or catcher may use it
        let handlers = !st.retry.is_empty() || !st.catch.is_empty();
        let mut input = Some(input);
        loop {
            let (this, raw_keep) = if handlers {
                let v = input.clone().unwrap_or_default();
                (v.clone(), v)
            } else {
                (input.take().unwrap_or_default(), Value::Null)
            };
            // a retried Map or Parallel sees its attempt's `$$.State.RetryCount`
            let mut retried = Context::new(&self.info, &st.name, env.ctx.entered_ms);
            retried.retry_count = Some(attempt.saturating_sub(1));
            let aenv = Env {
                input: env.input,
                ctx: if attempt > 1 { &retried } else { env.ctx },
                vars: env.vars,
            };
            let r = match &st.kind {
                StateKind::Task(t) => self.run_task(st, t, this, env, entered, prev, attempt, here),
                StateKind::Map(m) => self.run_map(st, m, this, &aenv, entered, prev, attempt, here),
                StateKind::Parallel { branches } => {
                    self.run_parallel(st, branches, this, &aenv, entered, prev, attempt, here)
                }
                _ => Err(StateError::new(names::RUNTIME, "not a task-like state")),
            };
            match r {
                Ok(f) => return Ok(Ok(f)),
                Err(e) if e.is_suspended() || e.is_cancelled() => return Err(e),
                Err(e) => {
                    let mut ctx = Context::new(&self.info, &st.name, self.now_ms());
                    ctx.retry_count = Some(attempt.saturating_sub(1));
                    let cenv = Env {
                        input: &raw_keep,
                        ctx: &ctx,
                        vars: env.vars,
                    };
                    match step::on_error(st, e, &attempts, random01(), &raw_keep, &cenv) {
                        ErrorDecision::Retry { retrier, delay_ms } => {
                            if let Some(a) = attempts.get_mut(retrier) {
                                *a += 1;
                            }
                            let until = self.now_ms().saturating_add(delay_ms as i64);
                            self.sleep_until(
                                || format!("{}:retry{attempt}", here.path),
                                here,
                                until,
                            )?;
                            attempt += 1;
                        }
                        ErrorDecision::Catch {
                            next,
                            output,
                            assign,
                        } => return Ok(Err((next, Finished { output, assign }))),
                        ErrorDecision::Fail(e) => return Err(e),
                    }
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn run_task(
        &self,
        st: &State,
        t: &TaskSpec,
        raw: Value,
        env: &Env<'_>,
        entered: u64,
        prev: &mut u64,
        attempt: u32,
        here: &Scope<'_>,
    ) -> Result<Finished, StateError> {
        let ee = |e: StateError| engine_error(&st.name, entered, e);
        let token = (t.resource.pattern == IntegrationPattern::WaitForTaskToken)
            .then(|| self.runner.task_token(here.path, attempt));
        let mut ctx = Context::new(&self.info, &st.name, env.ctx.entered_ms);
        ctx.task_token = token.as_deref();
        ctx.retry_count = Some(attempt.saturating_sub(1));
        let tenv = Env {
            input: &Value::Null,
            ctx: &ctx,
            vars: env.vars,
        };
        let step::PreparedTask {
            parameters: params,
            target,
            payload,
            timeout_seconds: timeout,
            heartbeat_seconds: heartbeat,
            credentials,
            ..
        } = step::prepare_task(st, t, raw.clone(), &tenv).map_err(ee)?;
        // as in Step Functions: the state's input after Parameters/Arguments is bounded too
        crate::limits::check_payload(&params, self.opts.max_payload_bytes, || {
            format!("The input of the state/task '{}' after Parameters", st.name)
        })
        .map_err(ee)?;
        let now = self.now_ms();
        let rtype = resource_type(&t.resource);
        *prev = self.rec.emit(*prev, now, "TaskScheduled", || {
            let mut d = json!({"resourceType": rtype.0, "resource": rtype.1, "region": self.opts.region, "parameters": text(&params)});
            if let Some(ts) = timeout {
                d["timeoutInSeconds"] = Value::from(ts);
            }
            if let Some(h) = heartbeat {
                d["heartbeatInSeconds"] = Value::from(h);
            }
            d
        });
        *prev = self.rec.emit(
            *prev,
            now,
            "TaskStarted",
            || json!({"resourceType": rtype.0, "resource": rtype.1}),
        );
        let context = ctx.value();
        let req = TaskRequest {
            state_name: &st.name,
            resource: &t.resource,
            target,
            parameters: params,
            payload,
            credentials,
            timeout_seconds: timeout,
            heartbeat_seconds: heartbeat,
            context,
            task_token: token.clone(),
            attempt,
            key: here.path.to_string(),
            depth: here.depth,
            cancel: here.cancel.clone(),
        };
        tracing::debug!(state = %st.name, resource = %t.resource, attempt, "running task");
        let started = self.now_ms();
        let outcome = match self.runner.run_task(&req) {
            // the runner should enforce TimeoutSeconds itself; a late answer still times out
            Ok(_)
                if timeout.is_some_and(|t| {
                    self.now_ms().saturating_sub(started)
                        > (t.min(i64::MAX as u64) as i64).saturating_mul(1000)
                }) =>
            {
                Err(TaskFailure {
                    error: names::TIMEOUT.into(),
                    cause: format!(
                        "The task did not complete within its TimeoutSeconds ({}s)",
                        timeout.unwrap_or(0)
                    ),
                })
            }
            other => other,
        };
        // a sibling failed while the task ran: whatever it returned, the branch stops here
        if here.cancel.is_cancelled() {
            return Err(cancelled());
        }
        // a task's (connector's) result is bounded before any selector cuts it down
        let outcome = match outcome {
            Ok(result) => match check_output(&st.name, &result, self.opts.max_payload_bytes) {
                Ok(()) => Ok(result),
                Err(e) => Err(TaskFailure {
                    error: e.error,
                    cause: e.cause.unwrap_or_default(),
                }),
            },
            other => other,
        };
        match outcome {
            Ok(result) => {
                let result = if self.runner.wraps_result(&req) {
                    let rid = crate::entropy::uuid_v4().to_string();
                    let date = self
                        .clock
                        .now()
                        .format("%a, %d %b %Y %H:%M:%S GMT")
                        .to_string();
                    wrap_lambda_invoke(result, &rid, &date)
                } else {
                    result
                };
                *prev = self.rec.emit(*prev, self.now_ms(), "TaskSucceeded", || {
                    json!({"resourceType": rtype.0, "resource": rtype.1, "output": text(&result), "outputDetails": {"truncated": false}})
                });
                let penv = Env {
                    input: &Value::Null,
                    ctx: &ctx,
                    vars: env.vars,
                };
                step::finish(st, raw, result, &penv).map_err(ee)
            }
            Err(f) if f.error == names::SUSPENDED => Err(StateError {
                error: f.error,
                cause: Some(f.cause),
            }),
            Err(f) => {
                let ty = if f.error == names::TIMEOUT {
                    "TaskTimedOut"
                } else {
                    "TaskFailed"
                };
                *prev = self.rec.emit(*prev, self.now_ms(), ty, || {
                    json!({"resourceType": rtype.0, "resource": rtype.1, "error": f.error, "cause": f.cause})
                });
                Err(StateError {
                    error: f.error,
                    cause: Some(f.cause),
                })
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn run_parallel(
        &self,
        st: &State,
        branches: &[StateMachine],
        raw: Value,
        env: &Env<'_>,
        entered: u64,
        prev: &mut u64,
        attempt: u32,
        here: &Scope<'_>,
    ) -> Result<Finished, StateError> {
        let ee = |e: StateError| engine_error(&st.name, entered, e);
        let effective = step::effective_input(st, raw.clone(), env).map_err(ee)?;
        let params = step::payload(st, effective, env).map_err(ee)?;
        let start_id = self
            .rec
            .emit(*prev, self.now_ms(), "ParallelStateStarted", || Value::Null);
        let outer = Arc::new(env.vars.clone());
        // every branch runs at once (as in Step Functions: a branch may wait on another's
        // side effects); the first to fail stops the others
        let cancel = here.cancel.child();
        let first_failure = AtomicUsize::new(usize::MAX);
        let n = branches.len();
        let results = self.fan_out(n, 0, n, start_id, &cancel, |i, p| {
            let mut vars = Variables::child(outer.clone());
            let path = self.child_path(here, attempt, 'b', i);
            let scope = Scope {
                path: &path,
                depth: here.depth + 1,
                cancel: &cancel,
            };
            let r = self.run_machine(&branches[i], params.clone(), &mut vars, p, &scope);
            if matches!(&r, Err(e) if !e.is_suspended() && !e.is_cancelled()) {
                let _ = first_failure.compare_exchange(
                    usize::MAX,
                    i,
                    Ordering::SeqCst,
                    Ordering::SeqCst,
                );
                cancel.cancel();
            }
            r
        });
        let failure = match first_failure.into_inner() {
            usize::MAX => None,
            i => results.get(i).and_then(|r| r.as_ref().err()).cloned(),
        };
        if let Some(e) = failure {
            *prev = self.rec.emit(
                start_id,
                self.now_ms(),
                "ParallelStateFailed",
                || json!({"error": e.error, "cause": e.cause}),
            );
            return Err(e);
        }
        if let Some(e) = suspended(&results) {
            return Err(e);
        }
        let mut outs = Vec::with_capacity(n);
        for r in results {
            match r {
                Ok(v) => outs.push(v),
                // only an enclosing state's cancellation is left
                Err(e) => return Err(e),
            }
        }
        *prev = self
            .rec
            .emit(start_id, self.now_ms(), "ParallelStateSucceeded", || {
                Value::Null
            });
        step::finish(st, raw, Value::Array(outs), env).map_err(ee)
    }

    fn read_items(
        &self,
        st: &State,
        spec: &MapSpec,
        effective: &Value,
        env: &Env<'_>,
    ) -> Result<Option<Vec<Value>>, StateError> {
        let Some(r) = &spec.item_reader else {
            return Ok(None);
        };
        let Some(reader) = self.reader else {
            return Err(StateError::new(
                names::ITEM_READER_FAILED,
                "no ItemReader source is configured for this run",
            ));
        };
        let params = match &r.parameters {
            Some(t) => {
                let stv = step::states_value(env, effective, None, None);
                t.eval(&env.with_input(effective), Some(&stv))?
            }
            None => Value::Object(Map::new()),
        };
        let max = self.max_items(r, effective, env)?;
        let bad = |e: String| {
            StateError::new(
                names::ITEM_READER_FAILED,
                format!("state '{}': {e}", st.name),
            )
        };
        let mut items = if r.resource.ends_with(":s3:listObjectsV2") {
            reader.list(&r.resource, &params, max)?
        } else if r.input_type == "MANIFEST" {
            let m = crate::reader::inventory_manifest(&reader.read(&r.resource, &params)?)
                .map_err(bad)?;
            let mut items = Vec::new();
            for key in &m.keys {
                let bytes = reader.read(&r.resource, &json!({"Bucket": m.bucket, "Key": key}))?;
                items.extend(crate::reader::inventory_rows(key, &bytes, &m.columns).map_err(bad)?);
                if max.is_some_and(|n| items.len() as u64 >= n) {
                    break;
                }
            }
            items
        } else {
            let bytes = reader.read(&r.resource, &params)?;
            crate::reader::decode(
                &bytes,
                &r.input_type,
                r.csv_headers.as_deref(),
                r.csv_delimiter,
            )
            .map_err(bad)?
        };
        if let Some(max) = max {
            items.truncate(usize::try_from(max).unwrap_or(usize::MAX));
        }
        Ok(Some(items))
    }

    /// `ReaderConfig.MaxItems` evaluated (`None`, or 0: every item).
    fn max_items(
        &self,
        r: &crate::model::ItemReaderSpec,
        effective: &Value,
        env: &Env<'_>,
    ) -> Result<Option<u64>, StateError> {
        let max = match &r.max_items {
            None => None,
            Some(Dynamic::Value(n)) => Some(*n),
            Some(Dynamic::Path(p)) => {
                let e = env.with_input(effective);
                let v = e.select_or_fail(p)?;
                Some(v.as_u64().ok_or_else(|| {
                    StateError::new(
                        names::RUNTIME,
                        format!("The MaxItemsPath field refers to value {v} which is not a valid integer: {p}"),
                    )
                })?)
            }
            Some(Dynamic::Expr(t)) => {
                let stv = step::states_value(env, effective, None, None);
                let v = t.eval(&env.with_input(effective), Some(&stv))?;
                Some(v.as_u64().ok_or_else(|| {
                    StateError::new(
                        names::QUERY_EVALUATION_ERROR,
                        "The MaxItems field must evaluate to a non-negative integer",
                    )
                })?)
            }
        };
        Ok(max.filter(|n| *n > 0))
    }

    #[allow(clippy::too_many_arguments)]
    fn run_map(
        &self,
        st: &State,
        spec: &MapSpec,
        raw: Value,
        env: &Env<'_>,
        entered: u64,
        prev: &mut u64,
        attempt: u32,
        here: &Scope<'_>,
    ) -> Result<Finished, StateError> {
        let ee = |e: StateError| engine_error(&st.name, entered, e);
        let (raw, effective) = if needs_raw(st) {
            let e = step::effective_input(st, raw.clone(), env).map_err(ee)?;
            (raw, e)
        } else {
            let e = step::effective_input(st, raw, env).map_err(ee)?;
            (Value::Null, e)
        };
        let simple = spec.item_reader.is_none()
            && spec.items.is_none()
            && spec.item_selector.is_none()
            && spec.item_batcher.is_none()
            && matches!(spec.items_path, PathSpec::Identity)
            && matches!(spec.max_concurrency, Dynamic::Value(_))
            && spec.tolerated_failure_count.is_none()
            && spec.tolerated_failure_percentage.is_none()
            && effective.is_array();
        let (items, effective) = if simple {
            // the input is the item array itself and nothing else reads it: move it
            match effective {
                Value::Array(a) => (a, Value::Null),
                other => (Vec::new(), other),
            }
        } else {
            let items = match self.read_items(st, spec, &effective, env).map_err(ee)? {
                Some(items) => items,
                None => step::map_items(st, spec, &effective, env).map_err(ee)?,
            };
            (items, effective)
        };
        let max_conc = step::map_max_concurrency(spec, &effective, env).map_err(ee)?;
        let mut tolerated = step::map_tolerated(spec, &effective, env, items.len()).map_err(ee)?;
        if spec.distributed && tolerated.is_none() {
            // a distributed Map run fails as a whole once any child fails
            tolerated = Some(0);
        }
        let batches = match &spec.item_batcher {
            Some(b) => Some(
                self.batch_items(st, spec, b, &items, &effective, env)
                    .map_err(ee)?,
            ),
            None => None,
        };
        let n = batches.as_ref().map_or(items.len(), Vec::len);
        let start_id = self.rec.emit(
            *prev,
            self.now_ms(),
            "MapStateStarted",
            || json!({"length": n}),
        );
        let run_names = spec
            .distributed
            .then(|| self.map_run_names(spec, here, attempt));
        let start_id = match &run_names {
            Some(r) => self.rec.emit(
                start_id,
                self.now_ms(),
                "MapRunStarted",
                || json!({"mapRunArn": r.arn}),
            ),
            None => start_id,
        };
        // each item's input and times, kept only when its results are exported
        let metas: Option<Vec<ItemMeta>> = spec
            .result_writer
            .as_ref()
            .map(|_| (0..n).map(|_| Mutex::new(None)).collect());
        let outer = Arc::new(env.vars.clone());
        let proc_ = &spec.processor;
        // once the Map must fail (the first failure, or one past the tolerated count), the
        // iterations still running stop and no more start
        let cancel = here.cancel.child();
        let failed = AtomicUsize::new(0);
        let first_failure = AtomicUsize::new(usize::MAX);
        let threads = self.opts.max_threads;
        // a Map Run's limits may change while it runs (UpdateMapRun)
        let updates = || {
            run_names
                .as_ref()
                .zip(self.control)
                .and_then(|(r, c)| c.map_run_limits(&r.arn))
        };
        let running = AtomicUsize::new(0);
        let total = n;
        let results = self.fan_out(n, max_conc as usize, threads, start_id, &cancel, |i, p| {
            let input = match &batches {
                Some(b) => b[i].clone(),
                None => {
                    let item = &items[i];
                    let mut ctx = Context::new(&self.info, &st.name, env.ctx.entered_ms);
                    ctx.map_item = Some((i, item));
                    ctx.retry_count = Some(attempt.saturating_sub(1));
                    let ienv = Env {
                        input: &Value::Null,
                        ctx: &ctx,
                        vars: env.vars,
                    };
                    step::map_item_input(st, spec, &effective, item, &ienv).map_err(ee)?
                }
            };
            if let Some(m) = &metas {
                if let Ok(mut g) = m[i].lock() {
                    *g = Some((input.clone(), self.now_ms(), 0));
                }
            }
            if run_names.is_some() {
                // wait for a place under the Map Run's current MaxConcurrency
                loop {
                    let limit = updates()
                        .and_then(|l| l.max_concurrency)
                        .filter(|m| *m > 0)
                        .map_or(usize::MAX, |m| usize::try_from(m).unwrap_or(usize::MAX));
                    let now = running.load(Ordering::SeqCst);
                    if now < limit
                        && running
                            .compare_exchange(now, now + 1, Ordering::SeqCst, Ordering::SeqCst)
                            .is_ok()
                    {
                        break;
                    }
                    if cancel.is_cancelled() {
                        return Err(cancelled());
                    }
                    self.clock.sleep_unless_cancelled(CANCEL_POLL, &cancel);
                }
            }
            *p = self.rec.emit(
                *p,
                self.now_ms(),
                "MapIterationStarted",
                || json!({"name": st.name, "index": i}),
            );
            let mut vars = Variables::child(outer.clone());
            let path = self.child_path(here, attempt, 'i', i);
            let scope = Scope {
                path: &path,
                depth: here.depth + 1,
                cancel: &cancel,
            };
            let r = self.run_machine(proc_, input, &mut vars, p, &scope);
            if run_names.is_some() {
                running.fetch_sub(1, Ordering::SeqCst);
            }
            if let Some(m) = &metas {
                if let Ok(mut g) = m[i].lock() {
                    if let Some(meta) = g.as_mut() {
                        meta.2 = self.now_ms();
                    }
                }
            }
            let ty = match &r {
                Ok(_) => "MapIterationSucceeded",
                Err(e) if e.is_suspended() => return r,
                Err(e) if e.is_cancelled() => "MapIterationAborted",
                Err(_) => {
                    let f = failed.fetch_add(1, Ordering::SeqCst) + 1;
                    let tolerated = match updates() {
                        Some(l) => tolerated_after_update(l, tolerated, total),
                        None => tolerated,
                    };
                    if tolerated.is_none_or(|t| f > t) {
                        let _ = first_failure.compare_exchange(
                            usize::MAX,
                            i,
                            Ordering::SeqCst,
                            Ordering::SeqCst,
                        );
                        cancel.cancel();
                    }
                    "MapIterationFailed"
                }
            };
            *p = self.rec.emit(
                *p,
                self.now_ms(),
                ty,
                || json!({"name": st.name, "index": i}),
            );
            r
        });
        let failure = match first_failure.into_inner() {
            usize::MAX => None,
            i => results.get(i).and_then(|r| r.as_ref().err()).cloned(),
        };
        let exported = match (&spec.result_writer, &run_names, metas) {
            (Some(w), Some(names), Some(metas)) if suspended(&results).is_none() => {
                let items = item_results(&results, metas);
                Some(self.export_results(st, w, names, &items, &effective, env))
            }
            _ => None,
        };
        if let Some(e) = failure {
            let err = match tolerated {
                Some(_) => StateError::new(
                    names::EXCEED_TOLERATED_FAILURE_THRESHOLD,
                    "The specified tolerated failure threshold was exceeded",
                ),
                None => e,
            };
            if let Some(Err(w)) = &exported {
                tracing::warn!(state = %st.name, error = %w.error, cause = w.cause.as_deref().unwrap_or(""), "the failed Map Run's results could not be exported");
            }
            let id = self.map_run_ended(start_id, run_names.as_ref(), Some(&err));
            *prev = self
                .rec
                .emit(id, self.now_ms(), "MapStateFailed", || Value::Null);
            return Err(err);
        }
        if let Some(e) = suspended(&results) {
            return Err(e);
        }
        if let Some(out) = exported {
            let out = match out {
                Ok(v) => v,
                Err(e) => {
                    let id = self.map_run_ended(start_id, run_names.as_ref(), Some(&e));
                    *prev = self
                        .rec
                        .emit(id, self.now_ms(), "MapStateFailed", || Value::Null);
                    return Err(ee(e));
                }
            };
            let id = self.map_run_ended(start_id, run_names.as_ref(), None);
            *prev = self
                .rec
                .emit(id, self.now_ms(), "MapStateSucceeded", || Value::Null);
            return step::finish(st, raw, out, env).map_err(ee);
        }
        let mut outs = Vec::with_capacity(n);
        for r in results {
            match r {
                Ok(v) => outs.push(v),
                // only an enclosing state's cancellation is left
                Err(e) if e.is_cancelled() => return Err(e),
                // a tolerated failure
                Err(e) => outs.push(e.to_error_output()),
            }
        }
        let id = self.map_run_ended(start_id, run_names.as_ref(), None);
        *prev = self
            .rec
            .emit(id, self.now_ms(), "MapStateSucceeded", || Value::Null);
        step::finish(st, raw, Value::Array(outs), env).map_err(ee)
    }

    /// The names of a Distributed Map's Map Run: its id is stable across replays of a
    /// durable run (derived from the execution, the visit and the attempt), random otherwise.
    fn map_run_names(
        &self,
        spec: &MapSpec,
        here: &Scope<'_>,
        attempt: u32,
    ) -> crate::results::MapRunNames {
        let id = if self.keyed() {
            let exec = self.info.execution["Id"].as_str().unwrap_or_default();
            crate::results::derived_uuid(&[exec, here.path, &attempt.to_string()])
        } else {
            uuid::Uuid::new_v4().to_string()
        };
        let label = spec
            .label
            .clone()
            .unwrap_or_else(|| self.opts.execution_name.clone());
        crate::results::MapRunNames::new(
            &self.opts.region,
            &self.opts.account,
            &self.opts.state_machine_name,
            &label,
            id,
        )
    }

    /// Records `MapRunSucceeded` / `MapRunFailed` for a Distributed Map; returns the id of
    /// the event the Map's own end follows.
    fn map_run_ended(
        &self,
        prev: u64,
        run: Option<&crate::results::MapRunNames>,
        err: Option<&StateError>,
    ) -> u64 {
        if run.is_none() {
            return prev;
        }
        match err {
            None => self
                .rec
                .emit(prev, self.now_ms(), "MapRunSucceeded", || Value::Null),
            Some(e) => self.rec.emit(
                prev,
                self.now_ms(),
                "MapRunFailed",
                || json!({"error": e.error, "cause": e.cause.clone().unwrap_or_default()}),
            ),
        }
    }

    /// Applies a `ResultWriter`: with `Resource`, writes AWS's layout through the run's
    /// [`ResultWriter`] and returns `{MapRunArn, ResultWriterDetails}`; with only
    /// `WriterConfig`, returns the transformed results.
    fn export_results(
        &self,
        st: &State,
        w: &ResultWriterSpec,
        names: &crate::results::MapRunNames,
        items: &[crate::results::ItemResult],
        effective: &Value,
        env: &Env<'_>,
    ) -> Result<Value, StateError> {
        let (Some(resource), Some(params)) = (&w.resource, &w.parameters) else {
            return Ok(crate::results::transformed_output(
                names,
                items,
                w.transformation,
            ));
        };
        let fail = |cause: String| {
            StateError::new(
                names::RESULT_WRITER_FAILED,
                format!("state '{}': ResultWriter {resource}: {cause}", st.name),
            )
        };
        let stv = step::states_value(env, effective, None, None);
        let p = params.eval(&env.with_input(effective), Some(&stv))?;
        let bucket = match p.get("Bucket") {
            Some(Value::String(b)) if !b.is_empty() => b.clone(),
            _ => return Err(fail("Parameters.Bucket must be a non-empty string".into())),
        };
        let prefix = match p.get("Prefix") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err(fail("Parameters.Prefix must be a string".into())),
        };
        let Some(writer) = self.writer else {
            return Err(fail("this run has no bucket to write results to".into()));
        };
        let (objects, manifest) = crate::results::layout(
            names,
            &bucket,
            &prefix,
            items,
            w.transformation,
            w.output_type,
        );
        for o in objects {
            writer.put(resource, &bucket, &o.key, o.body)?;
        }
        Ok(json!({
            "MapRunArn": names.arn,
            "ResultWriterDetails": {"Bucket": bucket, "Key": manifest},
        }))
    }

    /// Applies `ItemSelector` to every item and groups the results per `ItemBatcher`.
    fn batch_items(
        &self,
        st: &State,
        spec: &MapSpec,
        b: &ItemBatcherSpec,
        items: &[Value],
        effective: &Value,
        env: &Env<'_>,
    ) -> Result<Vec<Value>, StateError> {
        let mut selected = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let mut ctx = Context::new(&self.info, &st.name, env.ctx.entered_ms);
            ctx.map_item = Some((i, item));
            ctx.retry_count = env.ctx.retry_count;
            let ienv = Env {
                input: &Value::Null,
                ctx: &ctx,
                vars: env.vars,
            };
            selected.push(step::map_item_input(st, spec, effective, item, &ienv)?);
        }
        let e = env.with_input(effective);
        let stv = step::states_value(env, effective, None, None);
        let resolve = |d: &Option<Dynamic<u64>>, f: &str| -> Result<Option<u64>, StateError> {
            match d {
                None => Ok(None),
                Some(Dynamic::Value(n)) => Ok(Some(*n)),
                Some(Dynamic::Path(p)) => {
                    let v = e.select_or_fail(p)?;
                    step::path_number(v.as_ref(), true).as_u64().map(Some).ok_or_else(|| {
                        StateError::new(names::RUNTIME, format!("The {f}Path field refers to value {} which is not a valid integer: {p}", v))
                    })
                }
                Some(Dynamic::Expr(t)) => {
                    t.eval(&e, Some(&stv))?.as_u64().map(Some).ok_or_else(|| {
                        StateError::new(
                            names::QUERY_EVALUATION_ERROR,
                            format!("The {f} field must evaluate to a positive integer"),
                        )
                    })
                }
            }
        };
        let max_items = resolve(&b.max_items, "MaxItemsPerBatch")?
            .filter(|n| *n > 0)
            .map_or(usize::MAX, |n| n as usize);
        let max_bytes = resolve(&b.max_bytes, "MaxInputBytesPerBatch")?
            .filter(|n| *n > 0)
            .map_or(usize::MAX, |n| n as usize);
        let batch_input = match &b.batch_input {
            Some(t) => Some(t.eval(&e, Some(&stv))?),
            None => None,
        };
        let mut out = Vec::new();
        let mut cur: Vec<Value> = Vec::new();
        let mut bytes = 0usize;
        for v in selected {
            let sz = text(&v).len();
            if !cur.is_empty() && (cur.len() >= max_items || bytes + sz > max_bytes) {
                out.push(std::mem::take(&mut cur));
                bytes = 0;
            }
            bytes += sz;
            cur.push(v);
        }
        if !cur.is_empty() {
            out.push(cur);
        }
        Ok(out
            .into_iter()
            .map(|items| {
                let mut m = Map::new();
                if let Some(bi) = &batch_input {
                    m.insert("BatchInput".into(), bi.clone());
                }
                m.insert("Items".into(), Value::Array(items));
                Value::Object(m)
            })
            .collect())
    }

    /// The key path of a Map iteration (`kind` `i`) or Parallel branch (`b`) of the state at
    /// `here` (empty without a RunControl).
    fn child_path(&self, here: &Scope<'_>, attempt: u32, kind: char, i: usize) -> String {
        if self.keyed() {
            format!("{}@{attempt}/{kind}{i}", here.path)
        } else {
            String::new()
        }
    }

    /// Runs `n` jobs with at most `max_conc` (0 = unlimited) at a time on at most
    /// `threads` threads, results in order. Once `cancel` is thrown or a job suspends, jobs
    /// not yet started are skipped (a suspended job has not ended: starting more would break
    /// `MaxConcurrency`).
    fn fan_out<F>(
        &self,
        n: usize,
        max_conc: usize,
        threads: usize,
        start_id: u64,
        cancel: &Cancellation,
        job: F,
    ) -> Vec<Result<Value, StateError>>
    where
        F: Fn(usize, &mut u64) -> Result<Value, StateError> + Sync,
    {
        let limit = if max_conc == 0 { usize::MAX } else { max_conc };
        let threads = limit.min(threads.max(1)).min(n);
        if threads <= 1 {
            let mut out = Vec::with_capacity(n);
            let mut stop = false;
            for i in 0..n {
                if stop || cancel.is_cancelled() {
                    out.push(Err(cancelled()));
                    continue;
                }
                let mut p = start_id;
                let r = job(i, &mut p);
                stop = matches!(&r, Err(e) if e.is_suspended());
                out.push(r);
            }
            return out;
        }
        let next = AtomicUsize::new(0);
        let suspended = AtomicBool::new(false);
        let slots: Vec<Mutex<Option<Result<Value, StateError>>>> =
            (0..n).map(|_| Mutex::new(None)).collect();
        // log lines of every thread belong to the execution's span
        let span = tracing::Span::current();
        let span = &span;
        let worker = || loop {
            let _in = span.enter();
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= n {
                break;
            }
            let r = if suspended.load(Ordering::Relaxed) || cancel.is_cancelled() {
                Err(cancelled())
            } else {
                let mut p = start_id;
                let r = job(i, &mut p);
                if matches!(&r, Err(e) if e.is_suspended()) {
                    suspended.store(true, Ordering::Relaxed);
                }
                r
            };
            if let Ok(mut g) = slots[i].lock() {
                *g = Some(r);
            }
        };
        std::thread::scope(|s| {
            for _ in 1..threads {
                // a thread that cannot be created just leaves its share to the others
                if let Err(e) = std::thread::Builder::new()
                    .stack_size(8 << 20)
                    .spawn_scoped(s, worker)
                {
                    tracing::warn!(error = %e, "could not start a Map/Parallel worker thread");
                    break;
                }
            }
            // the calling thread works too, so progress never depends on spawning
            worker();
        });
        slots
            .into_iter()
            .map(|m| {
                m.into_inner().ok().flatten().unwrap_or_else(|| {
                    Err(StateError::new(names::RUNTIME, "a worker thread panicked"))
                })
            })
            .collect()
    }
}

/// Step Functions' limit on a state's input or output: 256 KiB of UTF-8 JSON.
pub const PAYLOAD_LIMIT: usize = crate::limits::MAX_PAYLOAD_BYTES;

/// `States.DataLimitExceeded` when a state's output is larger than `max` bytes as
/// JSON or nested deeper than [`crate::limits::MAX_VALUE_DEPTH`]. The walk stops as soon as a
/// limit is passed, so it costs at most the limit whatever the value.
fn check_output(state: &str, v: &Value, max: usize) -> Result<(), StateError> {
    use crate::limits::{json_size, Exceeded, MAX_VALUE_DEPTH};
    let why = match json_size(v, max) {
        Ok(_) => return Ok(()),
        Err(Exceeded::Size) => format!(
            "The state/task '{state}' returned a result with a size exceeding the maximum number of bytes service limit ({max} bytes)."
        ),
        Err(Exceeded::Depth) => format!(
            "The state/task '{state}' returned a result nested deeper than {MAX_VALUE_DEPTH} levels."
        ),
    };
    Err(StateError::new(names::DATA_LIMIT_EXCEEDED, why))
}

/// The first suspension among fan-out results: a suspended branch or iteration suspends the
/// whole state (siblings' finished work is kept by the durable driver's journal).
fn suspended(results: &[Result<Value, StateError>]) -> Option<StateError> {
    results.iter().find_map(|r| match r {
        Err(e) if e.is_suspended() => Some(e.clone()),
        _ => None,
    })
}

/// True when `finish` needs the state's raw input (ResultPath other than `$`, or JSONata).
fn needs_raw(st: &State) -> bool {
    st.query_language == QueryLanguage::Jsonata
        || !matches!(st.result_path, ResultPathSpec::Replace)
}

fn resource_type(r: &Resource) -> (&'static str, String) {
    use crate::resource::ResourceKind::*;
    match &r.kind {
        Plugin { name, .. } => ("weft", format!("plugin:{name}")),
        LambdaInvoke => ("lambda", "invoke".to_string()),
        LambdaFunction { name, .. } => ("lambda", format!("function:{name}")),
        StateMachine { name } => ("states", format!("startExecution:{name}")),
        Activity { name } => ("activity", name.clone()),
        Dag { id } => ("weft", format!("dag:{id}")),
        Service { service, action } => ("service", format!("{service}:{action}")),
    }
}
