//! In-process execution of one DAG run (`weft dag test`), with Airflow 3's semantics.
//!
//! [`run_dag_once`] simulates the loop of Airflow's `dag.test()`: each pass evaluates every
//! schedulable task instance against a snapshot of its upstreams' finished states (marking
//! `skipped` / `upstream_failed` at once where Airflow does), then runs the instances whose
//! trigger rule is met, by priority. It honours retries with (exponential) back-off through a
//! caller-supplied sleep, branching, dynamic task mapping, XCom (size-capped) and the DAG run
//! state rule. Operators run through a caller's [`TaskExecutor`]; this crate knows no wasm.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use indexmap::IndexMap;
use serde_json::{json, Map, Value};

use crate::model::{Dag, Task};
use crate::template::{NoSecrets, Secrets};
use crate::timetable::{parse_duration, DataInterval};
use crate::trigger::TiState;

/// One try of one task instance, as handed to an executor.
#[derive(Debug, Clone)]
pub struct TaskInvocation {
    /// DAG id.
    pub dag_id: String,
    /// Task id.
    pub task_id: String,
    /// Run id.
    pub run_id: String,
    /// Map index (-1 when not mapped).
    pub map_index: i64,
    /// Try number (first try is 1).
    pub try_number: u32,
    /// Tries allowed in total (retries + 1).
    pub max_tries: u32,
    /// The plugin reference to run.
    pub operator: String,
    /// Rendered input arguments (mapped arguments included).
    pub arguments: Value,
    /// Capability grant (role) name.
    pub grant: Option<String>,
    /// Deadline of this try.
    pub execution_timeout: Option<Duration>,
    /// Pool name.
    pub pool: String,
    /// The queue a remote worker takes the try from (`queue:`, also in `default_args`);
    /// `None`: the default queue.
    pub queue: Option<String>,
    /// Logical date of the run.
    pub logical_date: DateTime<Utc>,
    /// The run's data interval, when known (`data_interval_start` / `_end` of the context).
    pub data_interval: Option<DataInterval>,
    /// Params visible to the task.
    pub params: Map<String, Value>,
    /// Sensor settings (used when the operator is a sensor-world plugin).
    pub sensor: SensorSpec,
    /// Time since this try's first poke (sensor timeout basis; zero for a first poke).
    pub first_poke_elapsed: Duration,
    /// The Python DAG file a Python callable task was defined in (its callable runs from it);
    /// `None` for every other task.
    pub source_file: Option<std::path::PathBuf>,
    /// The run's XComs so far, for a Python callable's `ti.xcom_pull` (`None` for other tasks).
    pub xcoms: Option<Arc<crate::template::XComStore>>,
    /// For a Python callable task of a YAML (dag-factory) DAG file: which callable of
    /// `source_file` to run, and the DAG file's folder the callable's file must lie in.
    pub python_callable: Option<PythonCallable>,
}

/// A YAML task's Python callable: dag-factory's `python_callable_name` + `python_callable_file`,
/// or `python_callable: module.function` (the module a `.py` file beside the DAG file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PythonCallable {
    /// The function's (qualified) name in its file.
    pub name: String,
    /// The folder of the DAG file that names it: the callable's file must be inside it.
    pub dag_dir: std::path::PathBuf,
}

impl PythonCallable {
    /// The callable of a YAML task and the file defining it, when the task names one in a form
    /// weft can locate (a file path, or a dotted `module.function` beside the DAG file).
    pub fn of_task(
        dag_file: &std::path::Path,
        arguments: &Map<String, Value>,
    ) -> Option<(std::path::PathBuf, PythonCallable)> {
        let dag_dir = dag_file.parent()?.to_path_buf();
        let s = |k: &str| arguments.get(k).and_then(Value::as_str);
        let (file, name) = match (s("python_callable_name"), s("python_callable_file")) {
            (Some(name), Some(file)) => (std::path::PathBuf::from(file), name.to_string()),
            _ => {
                let (module, name) = s("python_callable")?.rsplit_once('.')?;
                let ok = |p: &str| {
                    !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                };
                if !module.split('.').all(ok) || !ok(name) {
                    return None;
                }
                let mut f = dag_dir.clone();
                for part in module.split('.') {
                    f.push(part);
                }
                f.set_extension("py");
                (f, name.to_string())
            }
        };
        let file = if file.is_absolute() {
            file
        } else {
            dag_dir.join(file)
        };
        Some((file, PythonCallable { name, dag_dir }))
    }
}

/// A sensor task's settings (Airflow's `BaseSensorOperator` arguments).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SensorSpec {
    /// `mode: reschedule` frees the worker slot between pokes; `poke` holds it.
    pub reschedule: bool,
    /// Time between pokes (`poke_interval`, default 60 s).
    pub poke_interval: Duration,
    /// Give up after this long (`timeout`, default 7 days).
    pub timeout: Duration,
    /// On timeout, mark the task skipped instead of failed.
    pub soft_fail: bool,
    /// Grow the interval exponentially between pokes.
    pub exponential_backoff: bool,
    /// Cap on the interval with exponential back-off (`max_wait`).
    pub max_wait: Option<Duration>,
}

impl Default for SensorSpec {
    fn default() -> Self {
        SensorSpec {
            reschedule: false,
            poke_interval: Duration::from_secs(60),
            timeout: Duration::from_secs(7 * 24 * 3600),
            soft_fail: false,
            exponential_backoff: false,
            max_wait: None,
        }
    }
}

impl SensorSpec {
    /// The settings a task's `poke_interval`, `timeout`, `mode`, `soft_fail`,
    /// `exponential_backoff` and `max_wait` give (validated when the DAG was loaded).
    pub fn from_task(task: &Task) -> SensorSpec {
        let mut s = SensorSpec::default();
        let get = |k: &str| task.extra.get(k).or_else(|| task.arguments.get(k));
        if let Some(d) = get("poke_interval").and_then(|v| parse_duration(v).ok()) {
            s.poke_interval = d;
        }
        if let Some(d) = get("timeout").and_then(|v| parse_duration(v).ok()) {
            s.timeout = d;
        }
        if let Some(d) = get("max_wait").and_then(|v| parse_duration(v).ok()) {
            s.max_wait = Some(d);
        }
        s.reschedule = get("mode").and_then(Value::as_str) == Some("reschedule");
        s.soft_fail = get("soft_fail").and_then(Value::as_bool).unwrap_or(false);
        s.exponential_backoff = get("exponential_backoff")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        s
    }

    /// The wait before the next poke after `pokes` unsuccessful pokes, `ran` seconds into the
    /// try (Airflow's `_get_next_poke_interval`: with exponential back-off the interval doubles
    /// per poke with a deterministic jitter, never past the timeout or `max_wait`).
    pub fn next_interval(&self, dag_id: &str, ti_key: &str, pokes: u32, ran: f64) -> Duration {
        if !self.exponential_backoff {
            return self.poke_interval;
        }
        let exp = 2f64.powi(pokes.saturating_sub(1).min(40) as i32);
        let min_backoff = (self.poke_interval.as_secs_f64() * exp).max(1.0).floor();
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in format!("{dag_id}#{ti_key}#{pokes}").bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        let m = min_backoff as u64;
        let mut secs = (m + h % m.max(1)) as f64;
        secs = secs.min((self.timeout.as_secs_f64() - ran).max(0.0));
        if let Some(w) = self.max_wait {
            secs = secs.min(w.as_secs_f64());
        }
        Duration::from_secs_f64(secs)
    }
}

impl TaskInvocation {
    /// `task_id` or `task_id[map_index]`.
    pub fn display_id(&self) -> String {
        ti_key(&self.task_id, self.map_index)
    }

    /// The `ctx` JSON handed to operators (task name, attempt, params).
    pub fn context_json(&self) -> Value {
        let mut v = json!({
            "dag_id": self.dag_id, "task_id": self.task_id, "run_id": self.run_id,
            "map_index": self.map_index, "try_number": self.try_number,
            "logical_date": self.logical_date.to_rfc3339_opts(SecondsFormat::AutoSi, false),
            "params": self.params,
        });
        if let (Some(i), Value::Object(m)) = (self.data_interval, &mut v) {
            let t =
                |d: DateTime<Utc>| Value::String(d.to_rfc3339_opts(SecondsFormat::AutoSi, false));
            m.insert("data_interval_start".into(), t(i.start));
            m.insert("data_interval_end".into(), t(i.end));
        }
        v
    }
}

/// A failed try: ASL-style error name and cause.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TaskFailure {
    /// Error name (`States.TaskFailed`, `Custom.Fail`, ...). `AirflowSkipException` /
    /// `Weft.Skip` mark the instance skipped; `AirflowFailException` / `Weft.FailNoRetry` fail
    /// it without retrying.
    pub error: String,
    /// Human-readable cause.
    pub cause: String,
}

impl TaskFailure {
    /// Build a failure.
    pub fn new(error: impl Into<String>, cause: impl Into<String>) -> Self {
        TaskFailure {
            error: error.into(),
            cause: cause.into(),
        }
    }

    /// A sensor that timed out.
    pub fn is_sensor_timeout(&self) -> bool {
        self.error == "AirflowSensorTimeout"
    }

    /// The operator asked for the instance to be skipped.
    pub fn is_skip(&self) -> bool {
        matches!(self.error.as_str(), "AirflowSkipException" | "Weft.Skip")
    }

    /// Failures that are never retried.
    pub fn no_retry(&self) -> bool {
        matches!(
            self.error.as_str(),
            "AirflowFailException"
                | "AirflowSensorTimeout"
                | "Weft.FailNoRetry"
                | "Weft.TemplateError"
                | "Weft.InvalidBranch"
                | "Weft.XComTooLarge"
                | "Weft.MappingFailed"
                | "Weft.InvalidAssetEvent"
        )
    }
}

/// Runs operators.
pub trait TaskExecutor: Sync {
    /// Run one try; `Ok` is the task's return value (its XCom), `Null` for none.
    fn execute(&self, ti: &TaskInvocation) -> Result<Value, TaskFailure>;
}

impl<F: Fn(&TaskInvocation) -> Result<Value, TaskFailure> + Sync> TaskExecutor for F {
    fn execute(&self, ti: &TaskInvocation) -> Result<Value, TaskFailure> {
        self(ti)
    }
}

/// Sleep function used for retry delays (tests pass one that returns at once).
pub type SleepFn = Arc<dyn Fn(Duration) + Send + Sync>;

/// Options of one run.
#[derive(Clone)]
pub struct RunOptions {
    /// Waits out retry delays.
    pub sleep: SleepFn,
    /// Variables and connections for templates.
    pub secrets: Arc<dyn Secrets>,
    /// Run id (default `manual__<logical date>`).
    pub run_id: Option<String>,
    /// Run conf; overrides params like `dag_run.conf` does.
    pub conf: Map<String, Value>,
    /// Data interval (default: the schedule's manual interval for the logical date).
    pub data_interval: Option<DataInterval>,
    /// Largest XCom accepted, in bytes of JSON.
    pub max_xcom_bytes: usize,
    /// Task instances run at once within a pass (capped by the DAG's `max_active_tasks`);
    /// 1 runs them one by one in priority order.
    pub parallelism: usize,
    /// The asset events that triggered the run, asset URI -> events (templates'
    /// `triggering_asset_events` and Airflow 2's `triggering_dataset_events`).
    pub triggering_asset_events: Value,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            sleep: Arc::new(std::thread::sleep),
            secrets: Arc::new(NoSecrets),
            run_id: None,
            conf: Map::new(),
            data_interval: None,
            max_xcom_bytes: 1 << 20,
            parallelism: 1,
            triggering_asset_events: Value::Object(Map::new()),
        }
    }
}

impl RunOptions {
    /// Options whose sleep returns at once (retry delays are only accounted).
    pub fn instant() -> Self {
        RunOptions {
            sleep: Arc::new(|_| {}),
            ..Default::default()
        }
    }
}

/// Final state of a DAG run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    /// No leaf failed.
    Success,
    /// A leaf failed or was upstream_failed, or the run deadlocked.
    Failed,
}

impl RunState {
    /// `success` / `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Success => "success",
            RunState::Failed => "failed",
        }
    }
}

/// One task instance's outcome.
#[derive(Debug, Clone)]
pub struct TaskReport {
    /// Task id.
    pub task_id: String,
    /// Map index (-1 when not mapped).
    pub map_index: i64,
    /// Final state.
    pub state: TiState,
    /// Tries made (0 when it never ran).
    pub try_number: u32,
    /// Seconds spent running (all tries).
    pub duration_s: f64,
    /// Return value (`null` when none).
    pub xcom: Value,
    /// Every XCom the instance pushed, by key (`return_value`, and each key of a
    /// `multiple_outputs` result), as Airflow's XCom table holds them.
    pub xcoms: Map<String, Value>,
    /// Last failure, if any.
    pub error: Option<TaskFailure>,
}

/// Outcome of [`run_dag_once`].
#[derive(Debug, Clone)]
pub struct DagRunReport {
    /// DAG id.
    pub dag_id: String,
    /// Run id.
    pub run_id: String,
    /// Logical date.
    pub logical_date: DateTime<Utc>,
    /// Data interval.
    pub data_interval: DataInterval,
    /// Run state.
    pub state: RunState,
    /// `TASK_ID` / `TASK_ID[i]` -> outcome, in DAG order.
    pub tasks: IndexMap<String, TaskReport>,
    /// Wall-clock seconds.
    pub duration_s: f64,
}

impl DagRunReport {
    /// The `weft dag test --json` document.
    pub fn to_json(&self) -> Value {
        let tasks: Map<String, Value> = self
            .tasks
            .iter()
            .map(|(k, t)| {
                (
                    k.clone(),
                    json!({
                        "state": t.state.as_str(),
                        "try_number": t.try_number,
                        "duration_s": (t.duration_s * 1e6).round() / 1e6,
                        "xcom": t.xcom,
                        "xcoms": t.xcoms,
                    }),
                )
            })
            .collect();
        json!({"dag_id": self.dag_id, "state": self.state.as_str(), "tasks": tasks})
    }
}

use crate::machine::{ti_key, RunMachine};

/// Run one DAG run in-process and report every task instance.
pub fn run_dag_once(
    dag: &Dag,
    logical_date: DateTime<Utc>,
    exec: &dyn TaskExecutor,
    opts: &RunOptions,
) -> DagRunReport {
    let started = Instant::now();
    let mut m = RunMachine::new(Arc::new(dag.clone()), logical_date, opts);
    // Virtual clock (seconds since start): real time plus waited retry delays.
    let mut clock_offset = 0.0f64;
    let now = |off: f64| started.elapsed().as_secs_f64() + off;
    let workers = opts
        .parallelism
        .clamp(1, dag.max_active_tasks.max(1) as usize);
    loop {
        let poll = m.poll(now(clock_offset));
        let ready = poll.ready;
        if workers <= 1 || ready.len() < 2 {
            for (t, i) in ready {
                if !m.startable(t, i) {
                    continue; // skipped by a branch earlier in this pass
                }
                if let Ok(inv) = m.start(t, i, now(clock_offset)) {
                    let (result, elapsed) = call(exec, &inv);
                    m.finish(t, i, result, elapsed, now(clock_offset));
                }
            }
        } else {
            let mut jobs: Vec<(usize, usize, TaskInvocation)> = Vec::new();
            for (t, i) in ready {
                if !m.startable(t, i) {
                    continue;
                }
                if let Ok(inv) = m.start(t, i, now(clock_offset)) {
                    jobs.push((t, i, inv));
                }
            }
            let results = execute_parallel(exec, &jobs, workers);
            for ((t, i, _), (result, elapsed)) in jobs.into_iter().zip(results) {
                m.finish(t, i, result, elapsed, now(clock_offset));
            }
        }
        m.take_changes();
        if m.unfinished() == 0 {
            break;
        }
        if !poll.progressed {
            let Some(next) = m.next_wakeup() else {
                break; // deadlock: the run fails
            };
            let wait = next - now(clock_offset);
            if wait > 0.0 {
                (opts.sleep)(Duration::from_secs_f64(wait));
                let behind = next - now(clock_offset);
                if behind > 0.0 {
                    clock_offset += behind;
                }
            }
        }
    }
    m.report(started.elapsed().as_secs_f64())
}

/// A try's result and its duration in seconds.
type Outcome = (Result<Value, TaskFailure>, f64);

/// Run one try through the executor, timing it; a panicking executor fails the try.
fn call(exec: &dyn TaskExecutor, inv: &TaskInvocation) -> Outcome {
    let started = Instant::now();
    if let Some(r) = crate::builtin::execute(inv) {
        return (r, started.elapsed().as_secs_f64());
    }
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| exec.execute(inv)))
        .unwrap_or_else(|_| {
            Err(TaskFailure::new(
                "Weft.ExecutorPanicked",
                "the task executor panicked",
            ))
        });
    (r, started.elapsed().as_secs_f64())
}

/// Run `jobs` on up to `workers` threads; results in job order.
fn execute_parallel(
    exec: &dyn TaskExecutor,
    jobs: &[(usize, usize, TaskInvocation)],
    workers: usize,
) -> Vec<Outcome> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Outcome>>> = Mutex::new((0..jobs.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..workers.min(jobs.len()) {
            scope.spawn(|| loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                let Some((_, _, inv)) = jobs.get(k) else {
                    break;
                };
                let outcome = call(exec, inv);
                if let Ok(mut g) = results.lock() {
                    g[k] = Some(outcome);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_default()
        .into_iter()
        .map(|r| {
            r.unwrap_or_else(|| {
                (
                    Err(TaskFailure::new(
                        "Weft.ExecutorPanicked",
                        "the task executor panicked",
                    )),
                    0.0,
                )
            })
        })
        .collect()
}

/// Airflow's retry delay for the try that just failed (`try_number` >= 1).
pub fn retry_delay(task: &Task, dag_id: &str, ti_key: &str, try_number: u32) -> Duration {
    const MAX: f64 = 86_400.0;
    let base = task.retry_delay.as_secs_f64();
    if !task.retry_exponential_backoff {
        return task.retry_delay;
    }
    let exp = 2f64.powi(try_number.saturating_sub(1).min(60) as i32);
    let min_backoff = (base * exp).ceil().clamp(1.0, MAX);
    // Deterministic jitter in [min_backoff, 2 * min_backoff), like Airflow's hash of the TI.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in format!("{dag_id}#{ti_key}#{try_number}").bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let m = min_backoff as u64;
    let secs = ((m + h % m.max(1)) as f64).min(MAX);
    let mut d = Duration::from_secs_f64(secs);
    if let Some(max) = task.max_retry_delay {
        d = d.min(max);
    }
    d
}
