//! In-process execution of one DAG run (`weft dag test`), with Airflow 3's semantics.
//!
//! [`run_dag_once`] simulates the loop of Airflow's `dag.test()`: each pass evaluates every
//! schedulable task instance against a snapshot of its upstreams' finished states (marking
//! `skipped` / `upstream_failed` at once where Airflow does), then runs the instances whose
//! trigger rule is met, by priority. It honours retries with (exponential) back-off through a
//! caller-supplied sleep, branching, dynamic task mapping, XCom (size-capped) and the DAG run
//! state rule. Operators run through a caller's [`TaskExecutor`]; this crate knows no wasm.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use indexmap::IndexMap;
use serde_json::{json, Map, Value};

use crate::model::{Dag, ExpandSource, Task};
use crate::template::{self, NoSecrets, Secrets, TemplateContext, XComStore};
use crate::timetable::DataInterval;
use crate::trigger::{evaluate, Decision, TiState, UpstreamCounts};

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
    /// Logical date of the run.
    pub logical_date: DateTime<Utc>,
    /// Params visible to the task.
    pub params: Map<String, Value>,
}

impl TaskInvocation {
    /// `task_id` or `task_id[map_index]`.
    pub fn display_id(&self) -> String {
        ti_key(&self.task_id, self.map_index)
    }

    /// The `ctx` JSON handed to operators (task name, attempt, params).
    pub fn context_json(&self) -> Value {
        json!({
            "dag_id": self.dag_id, "task_id": self.task_id, "run_id": self.run_id,
            "map_index": self.map_index, "try_number": self.try_number,
            "logical_date": self.logical_date.to_rfc3339_opts(SecondsFormat::AutoSi, false),
            "params": self.params,
        })
    }
}

/// A failed try: ASL-style error name and cause.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
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

    fn is_skip(&self) -> bool {
        matches!(self.error.as_str(), "AirflowSkipException" | "Weft.Skip")
    }

    fn no_retry(&self) -> bool {
        matches!(
            self.error.as_str(),
            "AirflowFailException"
                | "Weft.FailNoRetry"
                | "Weft.TemplateError"
                | "Weft.InvalidBranch"
                | "Weft.XComTooLarge"
                | "Weft.MappingFailed"
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
                    }),
                )
            })
            .collect();
        json!({"dag_id": self.dag_id, "state": self.state.as_str(), "tasks": tasks})
    }
}

fn ti_key(task_id: &str, map_index: i64) -> String {
    if map_index >= 0 {
        format!("{task_id}[{map_index}]")
    } else {
        task_id.to_string()
    }
}

#[derive(Debug, Clone)]
struct Ti {
    map_index: i64,
    state: TiState,
    try_number: u32,
    duration: f64,
    retry_at: f64,
    xcom: Value,
    error: Option<TaskFailure>,
    /// Values of expanded arguments for this instance.
    mapped_args: Map<String, Value>,
}

impl Ti {
    fn new(map_index: i64) -> Self {
        Ti {
            map_index,
            state: TiState::None,
            try_number: 0,
            duration: 0.0,
            retry_at: 0.0,
            xcom: Value::Null,
            error: None,
            mapped_args: Map::new(),
        }
    }
}

/// Tasks whose upstream states changed since they were last evaluated.
struct Dirty {
    flag: Vec<bool>,
    list: Vec<usize>,
}

impl Dirty {
    fn mark(&mut self, t: usize) {
        if !self.flag[t] {
            self.flag[t] = true;
            self.list.push(t);
        }
    }
}

struct TaskRt<'a> {
    task: &'a Task,
    ups: Vec<usize>,
    downs: Vec<usize>,
    tis: Vec<Ti>,
    /// Mapped task not yet expanded (its single instance has map_index -1).
    unexpanded: bool,
    /// Some downstream expands over this task's XCom.
    feeds_mapping: bool,
}

struct Runner<'a> {
    dag: &'a Dag,
    exec: &'a dyn TaskExecutor,
    opts: &'a RunOptions,
    tasks: Vec<TaskRt<'a>>,
    priority: Vec<i64>,
    xcom: Arc<XComStore>,
    run_id: String,
    logical_date: DateTime<Utc>,
    interval: DataInterval,
    params: Map<String, Value>,
    /// Virtual clock (seconds since start): real time plus waited retry delays.
    clock_offset: f64,
    started: Instant,
}

/// Run one DAG run in-process and report every task instance.
pub fn run_dag_once(
    dag: &Dag,
    logical_date: DateTime<Utc>,
    exec: &dyn TaskExecutor,
    opts: &RunOptions,
) -> DagRunReport {
    let started = Instant::now();
    let run_id = opts.run_id.clone().unwrap_or_else(|| {
        format!(
            "manual__{}",
            logical_date.to_rfc3339_opts(SecondsFormat::AutoSi, false)
        )
    });
    let interval = opts.data_interval.unwrap_or_else(|| {
        dag.schedule
            .infer_manual_data_interval(dag.timezone, logical_date)
    });
    let index = |id: &str| dag.tasks.get_index_of(id);
    let mut feeds: HashSet<usize> = HashSet::new();
    for t in dag.tasks.values() {
        if let Some(e) = &t.expand {
            for src in e.args.values() {
                if let ExpandSource::XCom { task_id, .. } = src {
                    if let Some(i) = index(task_id) {
                        feeds.insert(i);
                    }
                }
            }
        }
    }
    let tasks: Vec<TaskRt> = dag
        .tasks
        .values()
        .enumerate()
        .map(|(i, t)| TaskRt {
            task: t,
            ups: t.upstream.iter().filter_map(|u| index(u)).collect(),
            downs: t.downstream.iter().filter_map(|u| index(u)).collect(),
            tis: vec![Ti::new(-1)],
            unexpanded: t.expand.is_some(),
            feeds_mapping: feeds.contains(&i),
        })
        .collect();
    let mut params = dag.params.clone();
    params.extend(opts.conf.clone());
    let mut r = Runner {
        dag,
        exec,
        opts,
        priority: dag.effective_priorities(),
        tasks,
        xcom: Arc::new(XComStore::default()),
        run_id,
        logical_date,
        interval,
        params,
        clock_offset: 0.0,
        started,
    };
    let deadlocked = r.run();
    r.report(deadlocked)
}

impl Runner<'_> {
    fn now(&self) -> f64 {
        self.started.elapsed().as_secs_f64() + self.clock_offset
    }

    fn counts(&self, t: usize) -> UpstreamCounts {
        let mut c = UpstreamCounts::default();
        for &u in &self.tasks[t].ups {
            for ti in &self.tasks[u].tis {
                c.add(ti.state);
            }
        }
        c
    }

    /// Returns true when the run ended with unfinished instances (deadlock).
    fn run(&mut self) -> bool {
        let n = self.tasks.len();
        let mut dirty = Dirty {
            flag: vec![true; n],
            list: (0..n).collect(),
        };
        let mut retrying: Vec<(usize, usize)> = Vec::new();
        let mut unfinished = n;
        loop {
            // 1. Evaluate schedulable instances against the current snapshot.
            let mut changes: Vec<(usize, usize, TiState)> = Vec::new();
            let mut ready: Vec<(usize, usize)> = Vec::new();
            let mut failed_expansion: Vec<(usize, String)> = Vec::new();
            let mut candidates = std::mem::take(&mut dirty.list);
            candidates.sort_unstable();
            for &t in &candidates {
                dirty.flag[t] = false;
                if self.tasks[t].unexpanded && self.tasks[t].tis[0].state == TiState::None {
                    match self.try_expand(t) {
                        Ok(true) => {
                            if self.tasks[t].tis.iter().all(|ti| ti.state.is_finished()) {
                                // Expanded to nothing: skipped.
                                for &d in &self.tasks[t].downs {
                                    dirty.mark(d);
                                }
                                unfinished -= 1;
                                continue;
                            }
                            unfinished += self.tasks[t].tis.len() - 1;
                        }
                        Ok(false) => {}
                        Err(msg) => failed_expansion.push((t, msg)),
                    }
                }
                let c = self.counts(t);
                let rule = self.tasks[t].task.trigger_rule;
                for (i, ti) in self.tasks[t].tis.iter().enumerate() {
                    if ti.state != TiState::None {
                        continue;
                    }
                    match evaluate(rule, &c, ti.map_index >= 0) {
                        Decision::Run => ready.push((t, i)),
                        Decision::Wait => {}
                        Decision::Skip => changes.push((t, i, TiState::Skipped)),
                        Decision::UpstreamFailed => changes.push((t, i, TiState::UpstreamFailed)),
                    }
                }
            }
            let now = self.now();
            retrying.retain(|&(t, i)| {
                if self.tasks[t].tis[i].retry_at <= now {
                    ready.push((t, i));
                    false
                } else {
                    true
                }
            });
            let progressed = !changes.is_empty() || !ready.is_empty();
            for (t, i, s) in changes {
                self.tasks[t].tis[i].state = s;
                unfinished -= 1;
                for &d in &self.tasks[t].downs {
                    dirty.mark(d);
                }
            }
            // 2. Run what is ready, highest priority first.
            ready.sort_by(|a, b| {
                self.priority[b.0]
                    .cmp(&self.priority[a.0])
                    .then(a.0.cmp(&b.0))
                    .then(a.1.cmp(&b.1))
            });
            let workers = self
                .opts
                .parallelism
                .clamp(1, self.dag.max_active_tasks.max(1) as usize);
            if workers <= 1 || ready.len() < 2 {
                for (t, i) in ready {
                    let state = self.tasks[t].tis[i].state;
                    if state != TiState::None && state != TiState::UpForRetry {
                        continue; // skipped by a branch earlier in this pass
                    }
                    let s = match self.prepare(t, i, &failed_expansion) {
                        Ok(inv) => {
                            let (result, elapsed) = call(self.exec, &inv);
                            self.apply(t, i, result, elapsed)
                        }
                        Err(s) => s,
                    };
                    self.settle(t, i, s, &mut retrying, &mut dirty, &mut unfinished);
                }
            } else {
                let mut jobs: Vec<(usize, usize, TaskInvocation)> = Vec::new();
                for (t, i) in ready {
                    match self.prepare(t, i, &failed_expansion) {
                        Ok(inv) => jobs.push((t, i, inv)),
                        Err(s) => self.settle(t, i, s, &mut retrying, &mut dirty, &mut unfinished),
                    }
                }
                let results = execute_parallel(self.exec, &jobs, workers);
                for ((t, i, _), (result, elapsed)) in jobs.into_iter().zip(results) {
                    let s = self.apply(t, i, result, elapsed);
                    self.settle(t, i, s, &mut retrying, &mut dirty, &mut unfinished);
                }
            }
            if unfinished == 0 {
                return false;
            }
            if !progressed {
                if retrying.is_empty() {
                    return true;
                }
                let next = retrying
                    .iter()
                    .map(|&(t, i)| self.tasks[t].tis[i].retry_at)
                    .fold(f64::INFINITY, f64::min);
                let wait = next - self.now();
                if wait > 0.0 {
                    let d = Duration::from_secs_f64(wait);
                    (self.opts.sleep)(d);
                    let behind = next - self.now();
                    if behind > 0.0 {
                        self.clock_offset += behind;
                    }
                }
            }
        }
    }

    /// Expand a mapped task if its inputs are known. Ok(true) when expanded.
    fn try_expand(&mut self, t: usize) -> Result<bool, String> {
        let task = self.tasks[t].task;
        let Some(expand) = &task.expand else {
            return Ok(false);
        };
        let mut lists: Vec<(String, Vec<Value>, bool)> = Vec::new();
        for (arg, src) in &expand.args {
            let (value, literal) = match src {
                ExpandSource::Literal(v) => (v.clone(), true),
                ExpandSource::XCom { task_id, key } => {
                    let Some(u) = self.dag.tasks.get_index_of(task_id) else {
                        return Err(format!("unknown task `{task_id}`"));
                    };
                    if !self.tasks[u]
                        .tis
                        .iter()
                        .all(|ti| ti.state == TiState::Success)
                    {
                        return Ok(false);
                    }
                    (
                        self.xcom.pull(task_id, key, None).unwrap_or(Value::Null),
                        false,
                    )
                }
                ExpandSource::Template(s) => {
                    if !self.tasks[t]
                        .ups
                        .iter()
                        .all(|&u| self.tasks[u].tis.iter().all(|ti| ti.state.is_finished()))
                    {
                        return Ok(false);
                    }
                    let ctx = self.context(t, -1, 0);
                    (
                        template::render_native(s, &ctx)
                            .map_err(|e| format!("expand.{arg}: {e}"))?,
                        false,
                    )
                }
            };
            let items = match value {
                Value::Array(a) => a,
                Value::Object(m) => m.into_iter().map(|(k, v)| json!([k, v])).collect(),
                other => {
                    return Err(format!(
                        "expand.{arg}: cannot map over {other}; expected a list or a mapping"
                    ))
                }
            };
            lists.push((arg.clone(), items, literal));
        }
        let total: usize = lists.iter().map(|(_, l, _)| l.len()).product();
        let rt = &mut self.tasks[t];
        rt.unexpanded = false;
        if total == 0 {
            rt.tis[0].state = TiState::Skipped;
            return Ok(true);
        }
        rt.tis = (0..total)
            .map(|idx| {
                let mut ti = Ti::new(idx as i64);
                let mut rem = idx;
                for (arg, list, _) in lists.iter().rev() {
                    ti.mapped_args
                        .insert(arg.clone(), list[rem % list.len()].clone());
                    rem /= list.len();
                }
                ti
            })
            .collect();
        Ok(true)
    }

    fn context(&self, t: usize, map_index: i64, try_number: u32) -> TemplateContext {
        let task = self.tasks[t].task;
        let mut params = self.params.clone();
        for (k, v) in &task.params {
            if !self.opts.conf.contains_key(k) {
                params.insert(k.clone(), v.clone());
            }
        }
        TemplateContext {
            dag_id: self.dag.dag_id.clone(),
            task_id: task.task_id.clone(),
            map_index,
            try_number,
            run_id: self.run_id.clone(),
            logical_date: self.logical_date,
            data_interval_start: self.interval.start,
            data_interval_end: self.interval.end,
            params,
            conf: self.opts.conf.clone(),
            owner: task.owner.clone(),
            operator: task.operator.clone(),
            xcom: self.xcom.clone(),
            secrets: self.opts.secrets.clone(),
        }
    }

    fn finish_failed(&mut self, t: usize, i: usize, f: TaskFailure) -> TiState {
        let task = self.tasks[t].task;
        let ti = &mut self.tasks[t].tis[i];
        ti.try_number += 1;
        ti.state = TiState::Failed;
        tracing::info!(dag_id = %self.dag.dag_id, task = %ti_key(&task.task_id, ti.map_index), error = %f.error, cause = %f.cause, "task failed");
        ti.error = Some(f);
        TiState::Failed
    }

    /// Account for an instance's new state.
    fn settle(
        &mut self,
        t: usize,
        i: usize,
        state: TiState,
        retrying: &mut Vec<(usize, usize)>,
        dirty: &mut Dirty,
        unfinished: &mut usize,
    ) {
        if state == TiState::UpForRetry {
            retrying.push((t, i));
        } else if state.is_finished() {
            *unfinished -= 1;
            if state == TiState::Success {
                self.after_success(t, i, dirty, unfinished);
            }
            for &d in &self.tasks[t].downs {
                dirty.mark(d);
            }
        }
    }

    /// Start a try: render arguments and build the invocation, or fail the instance at once.
    fn prepare(
        &mut self,
        t: usize,
        i: usize,
        failed_expansion: &[(usize, String)],
    ) -> Result<TaskInvocation, TiState> {
        if self.tasks[t].unexpanded {
            let msg = failed_expansion
                .iter()
                .find(|(ft, _)| *ft == t)
                .map(|(_, m)| m.clone())
                .unwrap_or_else(|| {
                    "the list to expand over is not available (its upstream did not succeed)".into()
                });
            return Err(self.finish_failed(t, i, TaskFailure::new("Weft.MappingFailed", msg)));
        }
        let task = self.tasks[t].task;
        let try_number = self.tasks[t].tis[i].try_number + 1;
        let map_index = self.tasks[t].tis[i].map_index;
        self.tasks[t].tis[i].try_number = try_number;
        self.tasks[t].tis[i].state = TiState::Running;
        let args = Value::Object(task.arguments.clone());
        let mut arguments = if template::needs_rendering(&args)
            || self.tasks[t].tis[i]
                .mapped_args
                .values()
                .any(template::needs_rendering)
        {
            let ctx = self.context(t, map_index, try_number);
            match template::render_value(&args, &ctx, self.dag.render_template_as_native_obj) {
                Ok(v) => v,
                Err(e) => {
                    self.tasks[t].tis[i].try_number -= 1;
                    return Err(self.finish_failed(
                        t,
                        i,
                        TaskFailure::new("Weft.TemplateError", e.to_string()),
                    ));
                }
            }
        } else {
            args
        };
        if let Value::Object(m) = &mut arguments {
            for (k, v) in &self.tasks[t].tis[i].mapped_args {
                m.insert(k.clone(), v.clone());
            }
        }
        let inv = TaskInvocation {
            dag_id: self.dag.dag_id.clone(),
            task_id: task.task_id.clone(),
            run_id: self.run_id.clone(),
            map_index,
            try_number,
            max_tries: task.retries.saturating_add(1),
            operator: task.operator.clone(),
            arguments,
            grant: task.grant.clone(),
            execution_timeout: task.execution_timeout,
            pool: task.pool.clone(),
            logical_date: self.logical_date,
            params: if task.params.is_empty() {
                self.params.clone()
            } else {
                self.context(t, map_index, try_number).params
            },
        };
        Ok(inv)
    }

    /// Record the outcome of a try; returns the instance's new state.
    fn apply(
        &mut self,
        t: usize,
        i: usize,
        result: Result<Value, TaskFailure>,
        elapsed: f64,
    ) -> TiState {
        let task = self.tasks[t].task;
        let try_number = self.tasks[t].tis[i].try_number;
        let map_index = self.tasks[t].tis[i].map_index;
        let result = result.and_then(|v| self.check_result(t, v));
        let ti = &mut self.tasks[t].tis[i];
        ti.duration += elapsed;
        match result {
            Ok(v) => {
                ti.state = TiState::Success;
                ti.xcom = v;
                ti.error = None;
                TiState::Success
            }
            Err(f) if f.is_skip() => {
                ti.state = TiState::Skipped;
                TiState::Skipped
            }
            Err(f) => {
                let key = ti_key(&task.task_id, map_index);
                if !f.no_retry() && try_number <= task.retries {
                    let delay = retry_delay(task, &self.dag.dag_id, &key, try_number);
                    tracing::info!(dag_id = %self.dag.dag_id, task = %key, try_number, delay_s = delay.as_secs_f64(), error = %f.error, cause = %f.cause, "task failed, will retry");
                    ti.error = Some(f);
                    ti.state = TiState::UpForRetry;
                    ti.retry_at = self.started.elapsed().as_secs_f64()
                        + self.clock_offset
                        + delay.as_secs_f64();
                    TiState::UpForRetry
                } else {
                    tracing::info!(dag_id = %self.dag.dag_id, task = %key, try_number, error = %f.error, cause = %f.cause, "task failed");
                    ti.error = Some(f);
                    ti.state = TiState::Failed;
                    TiState::Failed
                }
            }
        }
    }

    /// Size cap, mapping input type, branch validation.
    fn check_result(&self, t: usize, v: Value) -> Result<Value, TaskFailure> {
        let task = self.tasks[t].task;
        let size = serde_json::to_vec(&v).map(|b| b.len()).unwrap_or(0);
        if size > self.opts.max_xcom_bytes {
            return Err(TaskFailure::new(
                "Weft.XComTooLarge",
                format!(
                    "return value is {size} bytes; the XCom limit is {} bytes",
                    self.opts.max_xcom_bytes
                ),
            ));
        }
        if self.tasks[t].feeds_mapping && !matches!(v, Value::Array(_) | Value::Object(_)) {
            return Err(TaskFailure::new(
                "Weft.MappingFailed",
                format!("a downstream task expands over this task's output, which must be a list or a mapping, got {v}"),
            ));
        }
        if task.branch {
            let follow = branch_targets(&v).ok_or_else(|| {
                TaskFailure::new("Weft.InvalidBranch", format!("a branch task must return a task id, a list of task ids or {{\"branch\": [...]}}, got {v}"))
            })?;
            let unknown: Vec<&String> = follow
                .iter()
                .filter(|id| {
                    !self.dag.tasks.contains_key(*id) && !self.dag.task_groups.contains_key(*id)
                })
                .collect();
            if !unknown.is_empty() {
                return Err(TaskFailure::new(
                    "Weft.InvalidBranch",
                    format!("branch names unknown task ids {unknown:?}"),
                ));
            }
        }
        Ok(v)
    }

    fn after_success(&mut self, t: usize, i: usize, dirty: &mut Dirty, unfinished: &mut usize) {
        let task = self.tasks[t].task;
        let map_index = self.tasks[t].tis[i].map_index;
        let v = self.tasks[t].tis[i].xcom.clone();
        if !v.is_null() {
            if task.multiple_outputs {
                if let Value::Object(m) = &v {
                    for (k, x) in m {
                        self.xcom.push(&task.task_id, map_index, k, x.clone());
                    }
                }
            }
            self.xcom
                .push(&task.task_id, map_index, "return_value", v.clone());
        }
        // Branching: skip direct downstreams that are not followed.
        let follow = if task.branch {
            branch_targets(&v)
        } else {
            // A plain task may branch with {"branch": [...]} naming only its direct downstreams.
            match &v {
                Value::Object(m) if m.contains_key("branch") => branch_targets(&v)
                    .filter(|ids| ids.iter().all(|id| task.downstream.contains(id))),
                _ => None,
            }
        };
        let Some(follow) = follow else { return };
        let mut keep: HashSet<String> = HashSet::new();
        for id in follow {
            if let Some(g) = self.dag.task_groups.get(&id) {
                keep.extend(g.tasks.iter().cloned());
            }
            keep.insert(id);
        }
        let downs = self.tasks[t].downs.clone();
        for d in downs {
            if keep.contains(&self.tasks[d].task.task_id) {
                continue;
            }
            let mut changed = false;
            for ti in &mut self.tasks[d].tis {
                if ti.state == TiState::None {
                    ti.state = TiState::Skipped;
                    *unfinished -= 1;
                    changed = true;
                }
            }
            if changed {
                self.tasks[d].unexpanded = false;
                for &dd in &self.tasks[d].downs {
                    dirty.mark(dd);
                }
            }
        }
    }

    fn report(self, deadlocked: bool) -> DagRunReport {
        let mut tasks = IndexMap::new();
        let mut failed = deadlocked;
        for rt in &self.tasks {
            for ti in &rt.tis {
                if rt.downs.is_empty()
                    && matches!(ti.state, TiState::Failed | TiState::UpstreamFailed)
                {
                    failed = true;
                }
                let key = ti_key(&rt.task.task_id, ti.map_index);
                tasks.insert(
                    key,
                    TaskReport {
                        task_id: rt.task.task_id.clone(),
                        map_index: ti.map_index,
                        state: ti.state,
                        try_number: ti.try_number,
                        duration_s: ti.duration,
                        xcom: ti.xcom.clone(),
                        error: ti.error.clone(),
                    },
                );
            }
        }
        DagRunReport {
            dag_id: self.dag.dag_id.clone(),
            run_id: self.run_id,
            logical_date: self.logical_date,
            data_interval: self.interval,
            state: if failed {
                RunState::Failed
            } else {
                RunState::Success
            },
            tasks,
            duration_s: self.started.elapsed().as_secs_f64(),
        }
    }
}

/// A try's result and its duration in seconds.
type Outcome = (Result<Value, TaskFailure>, f64);

/// Run one try through the executor, timing it; a panicking executor fails the try.
fn call(exec: &dyn TaskExecutor, inv: &TaskInvocation) -> Outcome {
    let started = Instant::now();
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

/// Task ids a branch result names: `"id"`, `["a", "b"]`, `{"branch": ...}`; `null` follows none.
fn branch_targets(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::Null => Some(Vec::new()),
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(a) => a.iter().map(|x| x.as_str().map(str::to_string)).collect(),
        Value::Object(m) => m.get("branch").and_then(|b| match b {
            Value::Object(_) => None,
            other => branch_targets(other),
        }),
        _ => None,
    }
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
