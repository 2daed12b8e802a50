//! The state machine of one DAG run, without any executor or clock of its own.
//!
//! [`RunMachine`] holds every task instance of a run and answers "what is ready now": [`poll`]
//! evaluates the instances whose upstreams changed against Airflow 3's trigger rules (marking
//! `skipped` / `upstream_failed` at once where Airflow does), expands mapped tasks once their
//! inputs are known, and returns the instances to start, highest priority first, together with
//! retries and sensor reschedules that are due. [`start`] renders a try's arguments into a
//! [`TaskInvocation`]; [`finish`] applies its outcome (XCom, branching, retries with back-off,
//! sensor reschedules and timeouts). Times are plain seconds on the caller's clock, so
//! `weft dag test` drives it with a virtual clock and the persistent scheduler with wall-clock
//! epoch seconds. Every instance whose state changed is listed by [`take_changes`] and can be
//! saved as a [`TiRecord`] and restored with [`RunMachine::restore`].
//!
//! [`poll`]: RunMachine::poll
//! [`start`]: RunMachine::start
//! [`finish`]: RunMachine::finish
//! [`take_changes`]: RunMachine::take_changes

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use indexmap::IndexMap;
use serde_json::{json, Map, Value};

use crate::model::{Dag, ExpandSource, Task};
use crate::run::{
    retry_delay, DagRunReport, RunOptions, RunState, SensorSpec, TaskFailure, TaskInvocation,
    TaskReport,
};
use crate::template::{self, Secrets, TemplateContext, XComStore};
use crate::timetable::DataInterval;
use crate::trigger::{evaluate, Decision, TiState, UpstreamCounts};

/// Error name an executor returns when a sensor's poke said "not yet".
pub const SENSOR_NOT_READY: &str = "Weft.SensorNotReady";

/// One task instance as persisted by the scheduler.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TiRecord {
    /// Task id.
    pub task_id: String,
    /// Map index (-1 when not mapped).
    pub map_index: i64,
    /// State.
    pub state: TiState,
    /// Tries made so far (the running try included).
    pub try_number: u32,
    /// Tries made before the instance was last cleared (retries count from here).
    #[serde(default)]
    pub tries_before_clear: u32,
    /// Seconds spent running, all tries.
    #[serde(default)]
    pub duration_s: f64,
    /// When a retry or a sensor reschedule is due (caller's clock, seconds).
    #[serde(default)]
    pub wait_until: f64,
    /// When the current try's first poke happened (sensor timeout basis).
    #[serde(default)]
    pub first_poke_at: Option<f64>,
    /// Pokes made in the current try.
    #[serde(default)]
    pub pokes: u32,
    /// Return value.
    #[serde(default)]
    pub xcom: Value,
    /// Last failure.
    #[serde(default)]
    pub error: Option<TaskFailure>,
    /// Values of the expanded arguments of a mapped instance.
    #[serde(default)]
    pub mapped_args: Map<String, Value>,
    /// The note a user left on the instance (Airflow's task instance note).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// XComs the instance pushed under keys of its own (a Python callable's `ti.xcom_push`).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub xcoms: Map<String, Value>,
}

/// A state change the caller must persist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Change {
    /// Instance `index` of task `task` changed.
    Ti(usize, usize),
    /// Task `task` was expanded, or reset to unexpanded: its instances were replaced.
    Instances(usize),
}

#[derive(Debug, Clone)]
struct Ti {
    map_index: i64,
    state: TiState,
    try_number: u32,
    tries_before_clear: u32,
    duration: f64,
    wait_until: f64,
    first_poke_at: Option<f64>,
    pokes: u32,
    xcom: Value,
    error: Option<TaskFailure>,
    mapped_args: Map<String, Value>,
    note: Option<String>,
    /// Keys pushed besides the return value (`ti.xcom_push`).
    pushed: Map<String, Value>,
    /// A short-circuit's falsy result: skip every downstream task (`true`) or only the direct
    /// ones (`false`); applied once when the try succeeds.
    skip_downstream: Option<bool>,
    /// A branch callable's answer (the tasks to follow), when it is not its XCom.
    follow: Option<Value>,
    /// The asset events the try's callable emitted (`outlet_events`), taken by the scheduler
    /// once the try succeeded.
    asset_events: Vec<OutletEvent>,
}

impl Ti {
    fn new(map_index: i64) -> Self {
        Ti {
            map_index,
            state: TiState::None,
            try_number: 0,
            tries_before_clear: 0,
            duration: 0.0,
            wait_until: 0.0,
            first_poke_at: None,
            pokes: 0,
            xcom: Value::Null,
            error: None,
            mapped_args: Map::new(),
            note: None,
            pushed: Map::new(),
            skip_downstream: None,
            follow: None,
            asset_events: Vec::new(),
        }
    }

    fn from_record(r: TiRecord) -> Self {
        Ti {
            map_index: r.map_index,
            state: r.state,
            try_number: r.try_number,
            tries_before_clear: r.tries_before_clear,
            duration: r.duration_s,
            wait_until: r.wait_until,
            first_poke_at: r.first_poke_at,
            pokes: r.pokes,
            xcom: r.xcom,
            error: r.error,
            mapped_args: r.mapped_args,
            note: r.note,
            pushed: r.xcoms,
            skip_downstream: None,
            follow: None,
            asset_events: Vec::new(),
        }
    }
}

struct TaskRt {
    ups: Vec<usize>,
    downs: Vec<usize>,
    tis: Vec<Ti>,
    /// Mapped task not yet expanded (its single instance has map_index -1).
    unexpanded: bool,
    /// Some downstream expands over this task's XCom.
    feeds_mapping: bool,
    /// Why expanding failed, if it did.
    expand_error: Option<String>,
}

/// What [`RunMachine::poll`] found.
#[derive(Debug, Default)]
pub struct Poll {
    /// Instances to start now (task index, instance index), highest priority first.
    pub ready: Vec<(usize, usize)>,
    /// Whether any instance changed state or became ready.
    pub progressed: bool,
}

/// The state of one DAG run (see the module docs).
pub struct RunMachine {
    dag: Arc<Dag>,
    tasks: Vec<TaskRt>,
    priority: Vec<i64>,
    xcom: Arc<XComStore>,
    run_id: String,
    logical_date: DateTime<Utc>,
    interval: DataInterval,
    params: Map<String, Value>,
    conf: Map<String, Value>,
    secrets: Arc<dyn Secrets>,
    triggering_asset_events: Value,
    max_xcom_bytes: usize,
    dirty_flag: Vec<bool>,
    dirty: Vec<usize>,
    /// Instances waiting for a retry or a sensor reschedule.
    waiting: Vec<(usize, usize)>,
    unfinished: usize,
    changes: Vec<Change>,
}

/// `task_id` or `task_id[map_index]`.
pub fn ti_key(task_id: &str, map_index: i64) -> String {
    if map_index >= 0 {
        format!("{task_id}[{map_index}]")
    } else {
        task_id.to_string()
    }
}

impl RunMachine {
    /// A fresh run: every instance in state `none`.
    pub fn new(dag: Arc<Dag>, logical_date: DateTime<Utc>, opts: &RunOptions) -> Self {
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
                ups: t.upstream.iter().filter_map(|u| index(u)).collect(),
                downs: t.downstream.iter().filter_map(|u| index(u)).collect(),
                tis: vec![Ti::new(-1)],
                unexpanded: t.expand.is_some(),
                feeds_mapping: feeds.contains(&i),
                expand_error: None,
            })
            .collect();
        let mut params = dag.params.clone();
        params.extend(opts.conf.clone());
        let n = tasks.len();
        RunMachine {
            priority: dag.effective_priorities(),
            tasks,
            xcom: Arc::new(XComStore::default()),
            run_id,
            logical_date,
            interval,
            params,
            conf: opts.conf.clone(),
            secrets: opts.secrets.clone(),
            triggering_asset_events: opts.triggering_asset_events.clone(),
            max_xcom_bytes: opts.max_xcom_bytes,
            dirty_flag: vec![true; n],
            dirty: (0..n).collect(),
            waiting: Vec::new(),
            unfinished: n,
            changes: Vec::new(),
            dag,
        }
    }

    /// Rebuild a run from its persisted instances (unknown task ids are ignored, tasks without a
    /// record start fresh). Instances found `running` are returned: the process that ran them
    /// is gone, so the caller fails their try with [`RunMachine::fail_lost`].
    pub fn restore(&mut self, records: Vec<TiRecord>) -> Vec<(usize, usize)> {
        let mut by_task: Vec<Vec<TiRecord>> = (0..self.tasks.len()).map(|_| Vec::new()).collect();
        for r in records {
            if let Some(t) = self.dag.tasks.get_index_of(&r.task_id) {
                by_task[t].push(r);
            }
        }
        for (t, mut recs) in by_task.into_iter().enumerate() {
            if recs.is_empty() {
                continue;
            }
            recs.sort_by_key(|r| r.map_index);
            let rt = &mut self.tasks[t];
            let mapped = recs.iter().any(|r| r.map_index >= 0);
            if mapped {
                recs.retain(|r| r.map_index >= 0);
            } else {
                recs.truncate(1);
            }
            rt.unexpanded =
                self.dag.tasks[t].expand.is_some() && !mapped && recs[0].state == TiState::None;
            rt.tis = recs.into_iter().map(Ti::from_record).collect();
        }
        // Rebuild XComs, counters and the waiting list.
        let mut lost = Vec::new();
        self.unfinished = 0;
        self.waiting.clear();
        for t in 0..self.tasks.len() {
            for i in 0..self.tasks[t].tis.len() {
                let state = self.tasks[t].tis[i].state;
                if !state.is_finished() {
                    self.unfinished += 1;
                }
                match state {
                    TiState::Success => self.push_xcom(t, i),
                    TiState::UpForRetry | TiState::UpForReschedule => self.waiting.push((t, i)),
                    TiState::Running | TiState::Queued | TiState::Scheduled => lost.push((t, i)),
                    _ => {}
                }
            }
        }
        let n = self.tasks.len();
        self.dirty_flag = vec![true; n];
        self.dirty = (0..n).collect();
        lost
    }

    /// The DAG.
    pub fn dag(&self) -> &Arc<Dag> {
        &self.dag
    }

    /// The run id.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// The logical date.
    pub fn logical_date(&self) -> DateTime<Utc> {
        self.logical_date
    }

    /// The data interval.
    pub fn data_interval(&self) -> DataInterval {
        self.interval
    }

    /// Instances not yet in a finished state.
    pub fn unfinished(&self) -> usize {
        self.unfinished
    }

    /// Effective priority weight of task `t`.
    pub fn priority(&self, t: usize) -> i64 {
        self.priority[t]
    }

    /// The task of index `t`.
    pub fn task(&self, t: usize) -> &Task {
        &self.dag.tasks[t]
    }

    /// Number of instances of task `t`.
    pub fn instances(&self, t: usize) -> usize {
        self.tasks[t].tis.len()
    }

    /// State of an instance.
    pub fn state(&self, t: usize, i: usize) -> TiState {
        self.tasks[t].tis[i].state
    }

    /// Earliest due time of a pending retry or reschedule.
    pub fn next_wakeup(&self) -> Option<f64> {
        self.waiting
            .iter()
            .map(|&(t, i)| self.tasks[t].tis[i].wait_until)
            .fold(None, |a: Option<f64>, x| Some(a.map_or(x, |a| a.min(x))))
    }

    /// Whether a retry or reschedule is pending.
    pub fn has_waiting(&self) -> bool {
        !self.waiting.is_empty()
    }

    /// Instances changed since the last call (to persist).
    pub fn take_changes(&mut self) -> Vec<Change> {
        std::mem::take(&mut self.changes)
    }

    /// The persistable record of an instance.
    pub fn record(&self, t: usize, i: usize) -> TiRecord {
        let ti = &self.tasks[t].tis[i];
        TiRecord {
            task_id: self.dag.tasks[t].task_id.clone(),
            map_index: ti.map_index,
            state: ti.state,
            try_number: ti.try_number,
            tries_before_clear: ti.tries_before_clear,
            duration_s: ti.duration,
            wait_until: ti.wait_until,
            first_poke_at: ti.first_poke_at,
            pokes: ti.pokes,
            xcom: ti.xcom.clone(),
            error: ti.error.clone(),
            mapped_args: ti.mapped_args.clone(),
            note: ti.note.clone(),
            xcoms: ti.pushed.clone(),
        }
    }

    /// The instance of task `task_id` at `map_index`, as (task index, instance index).
    pub fn find(&self, task_id: &str, map_index: i64) -> Option<(usize, usize)> {
        let t = self.dag.tasks.get_index_of(task_id)?;
        let i = self.tasks[t]
            .tis
            .iter()
            .position(|ti| ti.map_index == map_index)?;
        Some((t, i))
    }

    /// Every instance as (task index, instance index), in DAG order.
    pub fn instance_keys(&self) -> Vec<(usize, usize)> {
        (0..self.tasks.len())
            .flat_map(|t| (0..self.tasks[t].tis.len()).map(move |i| (t, i)))
            .collect()
    }

    /// Sets an instance to `state` from outside the run (Airflow's "mark success / failed /
    /// skipped"): a waiting retry or reschedule is dropped, the run's counters follow, and the
    /// downstream instances are evaluated again. A running try is the caller's to stop (its
    /// result must not be applied afterwards). Returns whether the state changed.
    pub fn mark(&mut self, t: usize, i: usize, state: TiState) -> bool {
        let old = self.tasks[t].tis[i].state;
        if old == state {
            return false;
        }
        self.waiting.retain(|&w| w != (t, i));
        self.tasks[t].tis[i].wait_until = 0.0;
        self.set_state(t, i, state);
        match (old.is_finished(), state.is_finished()) {
            (false, true) => self.unfinished -= 1,
            (true, false) => self.unfinished += 1,
            _ => {}
        }
        if state == TiState::Success {
            self.push_xcom(t, i);
        }
        for d in self.tasks[t].downs.clone() {
            self.mark_dirty(d);
        }
        true
    }

    /// Sets (or, with `None`, removes) an instance's note.
    pub fn set_note(&mut self, t: usize, i: usize, note: Option<String>) {
        self.tasks[t].tis[i].note = note;
        self.changes.push(Change::Ti(t, i));
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

    fn mark_dirty(&mut self, t: usize) {
        if !self.dirty_flag[t] {
            self.dirty_flag[t] = true;
            self.dirty.push(t);
        }
    }

    fn set_state(&mut self, t: usize, i: usize, s: TiState) {
        self.tasks[t].tis[i].state = s;
        self.changes.push(Change::Ti(t, i));
    }

    /// Evaluate instances whose upstreams changed and collect what may start at `now`.
    pub fn poll(&mut self, now: f64) -> Poll {
        let mut changes: Vec<(usize, usize, TiState)> = Vec::new();
        let mut ready: Vec<(usize, usize)> = Vec::new();
        let mut candidates = std::mem::take(&mut self.dirty);
        candidates.sort_unstable();
        let mut expanded_any = false;
        for &t in &candidates {
            self.dirty_flag[t] = false;
            if self.tasks[t].unexpanded && self.tasks[t].tis[0].state == TiState::None {
                match self.try_expand(t) {
                    Ok(true) => {
                        expanded_any = true;
                        self.changes.push(Change::Instances(t));
                        if self.tasks[t].tis.iter().all(|ti| ti.state.is_finished()) {
                            // Expanded to nothing: skipped.
                            for d in self.tasks[t].downs.clone() {
                                self.mark_dirty(d);
                            }
                            self.unfinished -= 1;
                            continue;
                        }
                        self.unfinished += self.tasks[t].tis.len() - 1;
                    }
                    Ok(false) => {}
                    Err(msg) => self.tasks[t].expand_error = Some(msg),
                }
            }
            let c = self.counts(t);
            let rule = self.dag.tasks[t].trigger_rule;
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
        let tasks = &self.tasks;
        self.waiting.retain(|&(t, i)| {
            if tasks[t].tis[i].wait_until <= now {
                ready.push((t, i));
                false
            } else {
                true
            }
        });
        let progressed = !changes.is_empty() || !ready.is_empty() || expanded_any;
        for (t, i, s) in changes {
            self.set_state(t, i, s);
            self.unfinished -= 1;
            for d in self.tasks[t].downs.clone() {
                self.mark_dirty(d);
            }
        }
        let prio = &self.priority;
        ready.sort_by(|a, b| {
            prio[b.0]
                .cmp(&prio[a.0])
                .then(a.0.cmp(&b.0))
                .then(a.1.cmp(&b.1))
        });
        Poll { ready, progressed }
    }

    /// Whether an instance returned by [`poll`](Self::poll) may still start (a branch may have
    /// skipped it since).
    pub fn startable(&self, t: usize, i: usize) -> bool {
        matches!(
            self.tasks[t].tis[i].state,
            TiState::None | TiState::UpForRetry | TiState::UpForReschedule
        )
    }

    /// Start a try: render arguments and build the invocation (the instance is `running`), or
    /// fail the instance at once (template error, failed expansion) and return its state.
    pub fn start(&mut self, t: usize, i: usize, now: f64) -> Result<TaskInvocation, TiState> {
        if self.tasks[t].unexpanded {
            let msg = self.tasks[t].expand_error.clone().unwrap_or_else(|| {
                "the list to expand over is not available (its upstream did not succeed)".into()
            });
            let s = self.finish_failed(t, i, TaskFailure::new("Weft.MappingFailed", msg));
            self.settle(t, i, s);
            return Err(s);
        }
        let rescheduled = self.tasks[t].tis[i].state == TiState::UpForReschedule;
        let task = &self.dag.tasks[t];
        let ti = &self.tasks[t].tis[i];
        let try_number = ti.try_number + 1;
        let map_index = ti.map_index;
        let args = Value::Object(task.arguments.clone());
        let mut arguments = if template::needs_rendering(&args)
            || ti.mapped_args.values().any(template::needs_rendering)
        {
            let ctx = self.context(t, map_index, try_number);
            match template::render_value(&args, &ctx, self.dag.render_template_as_native_obj) {
                Ok(v) => v,
                Err(e) => {
                    let s = self.finish_failed(
                        t,
                        i,
                        TaskFailure::new("Weft.TemplateError", e.to_string()),
                    );
                    self.settle(t, i, s);
                    return Err(s);
                }
            }
        } else {
            args
        };
        let task = &self.dag.tasks[t];
        let python = task.operator.starts_with(crate::builtin::PYTHON);
        if let Value::Object(m) = &mut arguments {
            for (k, v) in &self.tasks[t].tis[i].mapped_args {
                match (k.as_str(), v) {
                    // one element of `expand_kwargs`: its entries are the instance's arguments
                    // (a Python callable gets it whole and applies its `XComArg.map` first)
                    (EXPAND_KWARGS, Value::Object(kw)) if !python => {
                        m.extend(kw.iter().map(|(k, v)| (k.clone(), v.clone())))
                    }
                    _ => {
                        m.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        if python {
            // TaskFlow arguments (`+task`, `+task['key']`) become the upstreams' XComs
            arguments = resolve_taskflow(arguments, &self.xcom, 0);
            // what the callable's context needs besides its arguments: the events that
            // triggered the run and the task's outlets (for `outlet_events`)
            if let Value::Object(m) = &mut arguments {
                let events = &self.triggering_asset_events;
                if events.as_object().is_some_and(|e| !e.is_empty()) {
                    m.insert("__weft_triggering_asset_events".into(), events.clone());
                }
                if let Some(o) = task.extra.get("outlets") {
                    m.insert("__weft_outlets".into(), o.clone());
                }
            }
        }
        let py_dag = self.dag.file.extension().is_some_and(|e| e == "py");
        let (source_file, python_callable) = match (python, py_dag) {
            (true, true) => (Some(self.dag.file.clone()), None),
            // a YAML task's callable, from the Python file it names beside the DAG file
            (true, false) => {
                match crate::run::PythonCallable::of_task(&self.dag.file, &task.arguments) {
                    Some((file, c)) => (Some(file), Some(c)),
                    None => (None, None),
                }
            }
            _ => (None, None),
        };
        let xcoms = source_file.as_ref().map(|_| self.xcom.clone());
        let sensor = SensorSpec::from_task(task);
        let ti = &mut self.tasks[t].tis[i];
        ti.try_number = try_number;
        if !rescheduled {
            ti.first_poke_at = None;
            ti.pokes = 0;
        }
        let first_poke_at = *ti.first_poke_at.get_or_insert(now);
        let inv = TaskInvocation {
            dag_id: self.dag.dag_id.clone(),
            task_id: task.task_id.clone(),
            run_id: self.run_id.clone(),
            map_index,
            try_number,
            max_tries: task
                .retries
                .saturating_add(1)
                .saturating_add(ti.tries_before_clear),
            operator: task.operator.clone(),
            arguments,
            grant: task.grant.clone(),
            execution_timeout: task.execution_timeout,
            pool: task.pool.clone(),
            queue: task.queue.clone(),
            logical_date: self.logical_date,
            data_interval: Some(self.interval),
            params: if task.params.is_empty() {
                self.params.clone()
            } else {
                self.context(t, map_index, try_number).params
            },
            sensor,
            first_poke_elapsed: Duration::from_secs_f64((now - first_poke_at).max(0.0)),
            source_file,
            xcoms,
            python_callable,
        };
        self.set_state(t, i, TiState::Running);
        Ok(inv)
    }

    /// Record the outcome of a try that ran for `elapsed` seconds and ended at `now`; returns
    /// the instance's new state.
    pub fn finish(
        &mut self,
        t: usize,
        i: usize,
        result: Result<Value, TaskFailure>,
        elapsed: f64,
        now: f64,
    ) -> TiState {
        let s = self.apply(t, i, result, elapsed, now);
        self.settle(t, i, s);
        s
    }

    /// The asset events the instance's last successful try emitted through `outlet_events`
    /// (empty once taken, and after any other outcome).
    pub fn take_asset_events(&mut self, t: usize, i: usize) -> Vec<OutletEvent> {
        std::mem::take(&mut self.tasks[t].tis[i].asset_events)
    }

    /// Fail the try of an instance whose process died while it ran (Airflow's zombie tasks):
    /// it is retried if it has tries left.
    pub fn fail_lost(&mut self, t: usize, i: usize, now: f64) -> TiState {
        if self.tasks[t].tis[i].try_number == 0 {
            // Never started: it simply becomes schedulable again.
            self.set_state(t, i, TiState::None);
            self.mark_dirty(t);
            return TiState::None;
        }
        self.finish(
            t,
            i,
            Err(TaskFailure::new(
                "Weft.TaskLost",
                "the scheduler process stopped while this try was running",
            )),
            0.0,
            now,
        )
    }

    /// Fail an instance without retrying (e.g. an unknown pool).
    pub fn fail_now(&mut self, t: usize, i: usize, f: TaskFailure) -> TiState {
        let s = self.finish_failed(t, i, f);
        self.settle(t, i, s);
        s
    }

    /// Reset `task_ids` (and, with `downstream`, everything downstream of them) to state
    /// `none` so they run again, as Airflow's "clear" does. Returns the cleared task ids.
    pub fn clear(&mut self, task_ids: &[String], downstream: bool) -> Vec<String> {
        let mut set: Vec<usize> = task_ids
            .iter()
            .filter_map(|id| self.dag.tasks.get_index_of(id))
            .collect();
        if downstream {
            let mut k = 0;
            while k < set.len() {
                for &d in &self.tasks[set[k]].downs {
                    if !set.contains(&d) {
                        set.push(d);
                    }
                }
                k += 1;
            }
        }
        for &t in &set {
            let mapped = self.dag.tasks[t].expand.is_some();
            let rt = &mut self.tasks[t];
            if mapped {
                let tries = rt.tis.iter().map(|ti| ti.try_number).max().unwrap_or(0);
                let mut ti = Ti::new(-1);
                ti.try_number = tries;
                ti.tries_before_clear = tries;
                rt.tis = vec![ti];
                rt.unexpanded = true;
                rt.expand_error = None;
                self.changes.push(Change::Instances(t));
            } else {
                for (i, ti) in rt.tis.iter_mut().enumerate() {
                    ti.state = TiState::None;
                    ti.tries_before_clear = ti.try_number;
                    ti.xcom = Value::Null;
                    ti.pushed = Map::new();
                    ti.error = None;
                    ti.wait_until = 0.0;
                    self.changes.push(Change::Ti(t, i));
                }
            }
            self.mark_dirty(t);
        }
        // Rebuild counters and XComs from scratch.
        self.xcom = Arc::new(XComStore::default());
        self.unfinished = 0;
        let cleared: HashSet<usize> = set.iter().copied().collect();
        self.waiting.retain(|(t, _)| !cleared.contains(t));
        for t in 0..self.tasks.len() {
            for i in 0..self.tasks[t].tis.len() {
                let s = self.tasks[t].tis[i].state;
                if !s.is_finished() {
                    self.unfinished += 1;
                }
                if s == TiState::Success {
                    self.push_xcom(t, i);
                }
            }
        }
        set.iter()
            .map(|&t| self.dag.tasks[t].task_id.clone())
            .collect()
    }

    /// Mark every unfinished instance skipped (a run past its `dagrun_timeout`, as Airflow
    /// does); returns how many were.
    pub fn skip_unfinished(&mut self) -> usize {
        let mut n = 0;
        for t in 0..self.tasks.len() {
            for i in 0..self.tasks[t].tis.len() {
                if !self.tasks[t].tis[i].state.is_finished() {
                    self.set_state(t, i, TiState::Skipped);
                    n += 1;
                }
            }
        }
        self.unfinished = 0;
        self.waiting.clear();
        n
    }

    /// Expand a mapped task if its inputs are known. Ok(true) when expanded.
    fn try_expand(&mut self, t: usize) -> Result<bool, String> {
        let dag = self.dag.clone();
        let task = &dag.tasks[t];
        let Some(expand) = &task.expand else {
            return Ok(false);
        };
        let mut lists: Vec<(String, Vec<Value>)> = Vec::new();
        for (arg, src) in &expand.args {
            let value = match src {
                ExpandSource::Literal(v) => v.clone(),
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
                    self.xcom.pull(task_id, key, None).unwrap_or(Value::Null)
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
                    template::render_native(s, &ctx).map_err(|e| format!("expand.{arg}: {e}"))?
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
            lists.push((arg.clone(), items));
        }
        let total: usize = lists.iter().map(|(_, l)| l.len()).product();
        let rt = &mut self.tasks[t];
        rt.unexpanded = false;
        let base = rt.tis[0].try_number;
        if total == 0 {
            rt.tis[0].state = TiState::Skipped;
            return Ok(true);
        }
        rt.tis = (0..total)
            .map(|idx| {
                let mut ti = Ti::new(idx as i64);
                ti.try_number = base;
                ti.tries_before_clear = base;
                let mut rem = idx;
                for (arg, list) in lists.iter().rev() {
                    ti.mapped_args
                        .insert(arg.clone(), list[rem % list.len()].clone());
                    rem /= list.len();
                }
                ti
            })
            .collect();
        Ok(true)
    }

    /// The template context of an instance.
    pub fn context(&self, t: usize, map_index: i64, try_number: u32) -> TemplateContext {
        let task = &self.dag.tasks[t];
        let mut params = self.params.clone();
        for (k, v) in &task.params {
            if !self.conf.contains_key(k) {
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
            conf: self.conf.clone(),
            triggering_asset_events: self.triggering_asset_events.clone(),
            owner: task.owner.clone(),
            operator: task.operator.clone(),
            xcom: self.xcom.clone(),
            secrets: self
                .secrets
                .for_grant(task.grant.as_deref())
                .unwrap_or_else(|| self.secrets.clone()),
        }
    }

    fn finish_failed(&mut self, t: usize, i: usize, f: TaskFailure) -> TiState {
        let key = ti_key(&self.dag.tasks[t].task_id, self.tasks[t].tis[i].map_index);
        let ti = &mut self.tasks[t].tis[i];
        ti.try_number += 1;
        tracing::info!(dag_id = %self.dag.dag_id, task = %key, error = %f.error, cause = %f.cause, "task failed");
        ti.error = Some(f);
        self.set_state(t, i, TiState::Failed);
        TiState::Failed
    }

    /// Account for an instance's new state.
    fn settle(&mut self, t: usize, i: usize, state: TiState) {
        if matches!(state, TiState::UpForRetry | TiState::UpForReschedule) {
            self.waiting.push((t, i));
        } else if state.is_finished() {
            self.unfinished -= 1;
            if state == TiState::Success {
                self.after_success(t, i);
            }
            for d in self.tasks[t].downs.clone() {
                self.mark_dirty(d);
            }
        }
    }

    fn apply(
        &mut self,
        t: usize,
        i: usize,
        result: Result<Value, TaskFailure>,
        elapsed: f64,
        now: f64,
    ) -> TiState {
        let dag = self.dag.clone();
        let task = &dag.tasks[t];
        let try_number = self.tasks[t].tis[i].try_number;
        let map_index = self.tasks[t].tis[i].map_index;
        let key = ti_key(&task.task_id, map_index);
        let result = result
            .and_then(|v| unwrap_call_result(task, v))
            .and_then(|c| {
                self.check_pushed(&c.pushed)?;
                Ok(CallResult {
                    value: self.check_result(t, c.value, c.follow.as_ref())?,
                    ..c
                })
            });
        let ti = &mut self.tasks[t].tis[i];
        ti.duration += elapsed;
        let new_state = match result {
            Ok(c) => {
                ti.xcom = c.value;
                ti.pushed = c.pushed;
                ti.skip_downstream = c.skip_downstream;
                ti.follow = c.follow;
                ti.asset_events = c.asset_events;
                ti.error = None;
                TiState::Success
            }
            Err(f) if f.is_skip() => TiState::Skipped,
            Err(f) if f.error == SENSOR_NOT_READY => {
                let spec = SensorSpec::from_task(task);
                let first = ti.first_poke_at.unwrap_or(now);
                let ran = (now - first).max(0.0);
                ti.pokes += 1;
                if ran >= spec.timeout.as_secs_f64() {
                    let f = TaskFailure::new(
                        "AirflowSensorTimeout",
                        format!(
                            "sensor timed out after {:.1}s (timeout {}s, {} pokes)",
                            ran,
                            spec.timeout.as_secs_f64(),
                            ti.pokes
                        ),
                    );
                    ti.first_poke_at = None;
                    if spec.soft_fail {
                        tracing::info!(dag_id = %dag.dag_id, task = %key, "sensor timed out, soft_fail: skipped");
                        ti.error = Some(f);
                        TiState::Skipped
                    } else {
                        tracing::info!(dag_id = %dag.dag_id, task = %key, error = %f.error, cause = %f.cause, "sensor failed");
                        ti.error = Some(f);
                        TiState::Failed
                    }
                } else {
                    let wait = spec.next_interval(&dag.dag_id, &key, ti.pokes, ran);
                    // A reschedule keeps the try number, as Airflow does.
                    ti.try_number -= 1;
                    ti.wait_until = now + wait.as_secs_f64();
                    TiState::UpForReschedule
                }
            }
            Err(f) => {
                if !f.no_retry()
                    && try_number - ti.tries_before_clear.min(try_number) <= task.retries
                {
                    let delay = retry_delay(task, &dag.dag_id, &key, try_number);
                    tracing::info!(dag_id = %dag.dag_id, task = %key, try_number, delay_s = delay.as_secs_f64(), error = %f.error, cause = %f.cause, "task failed, will retry");
                    ti.error = Some(f);
                    ti.wait_until = now + delay.as_secs_f64();
                    TiState::UpForRetry
                } else {
                    tracing::info!(dag_id = %dag.dag_id, task = %key, try_number, error = %f.error, cause = %f.cause, "task failed");
                    if f.is_sensor_timeout() && SensorSpec::from_task(task).soft_fail {
                        ti.error = Some(f);
                        TiState::Skipped
                    } else {
                        ti.error = Some(f);
                        TiState::Failed
                    }
                }
            }
        };
        if new_state != TiState::UpForReschedule {
            ti.first_poke_at = None;
        }
        self.set_state(t, i, new_state);
        new_state
    }

    /// Size cap, mapping input type, branch validation.
    fn check_result(
        &self,
        t: usize,
        v: Value,
        follow: Option<&Value>,
    ) -> Result<Value, TaskFailure> {
        let task = &self.dag.tasks[t];
        let size = serde_json::to_vec(&v).map(|b| b.len()).unwrap_or(0);
        if size > self.max_xcom_bytes {
            return Err(TaskFailure::new(
                "Weft.XComTooLarge",
                format!(
                    "return value is {size} bytes; the XCom limit is {} bytes",
                    self.max_xcom_bytes
                ),
            ));
        }
        // (a mapped task's instances each give one element of the list its downstream maps over)
        if self.tasks[t].feeds_mapping
            && task.expand.is_none()
            && !matches!(v, Value::Array(_) | Value::Object(_))
        {
            return Err(TaskFailure::new(
                "Weft.MappingFailed",
                format!("a downstream task expands over this task's output, which must be a list or a mapping, got {v}"),
            ));
        }
        if task.branch {
            let answer = follow.unwrap_or(&v);
            let follow = branch_targets(answer).ok_or_else(|| {
                TaskFailure::new("Weft.InvalidBranch", format!("a branch task must return a task id, a list of task ids or {{\"branch\": [...]}}, got {answer}"))
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

    /// Size caps of the keys a callable pushed with `ti.xcom_push` (each as a return value's).
    fn check_pushed(&self, pushed: &Map<String, Value>) -> Result<(), TaskFailure> {
        let mut total = 0usize;
        for (k, v) in pushed {
            let size = serde_json::to_vec(v).map(|b| b.len()).unwrap_or(0);
            total += size + k.len();
            if size > self.max_xcom_bytes || total > MAX_PUSHED_FACTOR * self.max_xcom_bytes {
                return Err(TaskFailure::new(
                    "Weft.XComTooLarge",
                    format!(
                        "XCom `{k}` pushed by the task is {size} bytes (all keys: {total}); the XCom limit is {} bytes per key, {} per task",
                        self.max_xcom_bytes,
                        MAX_PUSHED_FACTOR * self.max_xcom_bytes
                    ),
                ));
            }
        }
        Ok(())
    }

    fn push_xcom(&mut self, t: usize, i: usize) {
        let task = &self.dag.tasks[t];
        let ti = &self.tasks[t].tis[i];
        for (k, x) in &ti.pushed {
            self.xcom.push(&task.task_id, ti.map_index, k, x.clone());
        }
        let v = &ti.xcom;
        if v.is_null() {
            return;
        }
        if task.multiple_outputs {
            if let Value::Object(m) = v {
                for (k, x) in m {
                    self.xcom.push(&task.task_id, ti.map_index, k, x.clone());
                }
            }
        }
        self.xcom
            .push(&task.task_id, ti.map_index, "return_value", v.clone());
    }

    fn after_success(&mut self, t: usize, i: usize) {
        self.push_xcom(t, i);
        if let Some(all) = self.tasks[t].tis[i].skip_downstream.take() {
            self.short_circuit(t, all);
            return;
        }
        let dag = self.dag.clone();
        let task = &dag.tasks[t];
        let answer = self.tasks[t].tis[i].follow.take();
        let v = answer.as_ref().unwrap_or(&self.tasks[t].tis[i].xcom);
        // Branching: skip direct downstreams that are not followed.
        let follow = if task.branch {
            branch_targets(v)
        } else {
            // A plain task may branch with {"branch": [...]} naming only its direct downstreams.
            match v {
                Value::Object(m) if m.contains_key("branch") => branch_targets(v)
                    .filter(|ids| ids.iter().all(|id| task.downstream.contains(id))),
                _ => None,
            }
        };
        let Some(follow) = follow else { return };
        let mut keep: HashSet<String> = HashSet::new();
        for id in follow {
            if let Some(g) = dag.task_groups.get(&id) {
                keep.extend(g.tasks.iter().cloned());
            }
            keep.insert(id);
        }
        let downs = self.tasks[t].downs.clone();
        for d in downs {
            if keep.contains(&dag.tasks[d].task_id) {
                continue;
            }
            if self.skip_unstarted(d) {
                for dd in self.tasks[d].downs.clone() {
                    self.mark_dirty(dd);
                }
            }
        }
    }

    /// Skips every instance of task `d` that has not started (a skipped task is not expanded
    /// later); whether any was.
    fn skip_unstarted(&mut self, d: usize) -> bool {
        let mut changed = false;
        for k in 0..self.tasks[d].tis.len() {
            if self.tasks[d].tis[k].state == TiState::None {
                self.set_state(d, k, TiState::Skipped);
                self.unfinished -= 1;
                changed = true;
            }
        }
        if changed {
            self.tasks[d].unexpanded = false;
        }
        changed
    }

    /// A short-circuit's falsy result: skip the direct downstream tasks, or with `all` every task
    /// downstream whatever its trigger rule (`ignore_downstream_trigger_rules`, Airflow's
    /// default); tasks already finished or running are left alone.
    fn short_circuit(&mut self, t: usize, all: bool) {
        let mut queue: Vec<usize> = self.tasks[t].downs.clone();
        let mut seen: HashSet<usize> = queue.iter().copied().collect();
        while let Some(d) = queue.pop() {
            self.skip_unstarted(d);
            for dd in self.tasks[d].downs.clone() {
                self.mark_dirty(dd);
                if all && seen.insert(dd) {
                    queue.push(dd);
                }
            }
        }
    }

    /// The run's state once nothing is left to do: failed when a leaf failed or was
    /// upstream_failed, or when instances are left unfinished (deadlock).
    pub fn run_state(&self) -> RunState {
        if self.unfinished > 0 {
            return RunState::Failed;
        }
        let failed = self.tasks.iter().any(|rt| {
            rt.downs.is_empty()
                && rt
                    .tis
                    .iter()
                    .any(|ti| matches!(ti.state, TiState::Failed | TiState::UpstreamFailed))
        });
        if failed {
            RunState::Failed
        } else {
            RunState::Success
        }
    }

    /// Every instance's outcome, in DAG order.
    pub fn report(&self, duration_s: f64) -> DagRunReport {
        let mut tasks = IndexMap::new();
        for (t, rt) in self.tasks.iter().enumerate() {
            let task_id = &self.dag.tasks[t].task_id;
            for ti in &rt.tis {
                tasks.insert(
                    ti_key(task_id, ti.map_index),
                    TaskReport {
                        task_id: task_id.clone(),
                        map_index: ti.map_index,
                        state: ti.state,
                        try_number: ti.try_number,
                        duration_s: ti.duration,
                        xcom: ti.xcom.clone(),
                        xcoms: pushed_xcoms(&self.dag.tasks[t], ti),
                        error: ti.error.clone(),
                    },
                );
            }
        }
        DagRunReport {
            dag_id: self.dag.dag_id.clone(),
            run_id: self.run_id.clone(),
            logical_date: self.logical_date,
            data_interval: self.interval,
            state: self.run_state(),
            tasks,
            duration_s,
        }
    }
}

/// The argument name of an `expand_kwargs` source in [`crate::model::Expand`]: each element is a
/// mapping of arguments for one instance.
pub const EXPAND_KWARGS: &str = "**";

/// Pushed keys of one instance may take this many times the per-XCom limit together.
const MAX_PUSHED_FACTOR: usize = 4;

/// What a try returned, once a Python callable's call-mode envelope is opened.
struct CallResult {
    /// The return value (`null`: none pushed).
    value: Value,
    /// Keys pushed with `ti.xcom_push`.
    pushed: Map<String, Value>,
    /// A falsy short-circuit: skip all downstream (`true`) or the direct ones (`false`).
    skip_downstream: Option<bool>,
    /// A branch callable's answer, kept apart from its (unpushed) return value.
    follow: Option<Value>,
    /// The asset events its `outlet_events` collected.
    asset_events: Vec<OutletEvent>,
}

/// One asset event a Python callable emitted through `outlet_events`: the `extra` of a plain
/// outlet's event (`aliases` empty), or an event added through aliases the task names in its
/// `outlets`.
#[derive(Debug, Clone, PartialEq)]
pub struct OutletEvent {
    /// The asset's canonical URI.
    pub uri: String,
    /// The event's extra.
    pub extra: Map<String, Value>,
    /// The aliases it was added through (empty: a plain outlet's extra).
    pub aliases: Vec<String>,
}

/// Most asset events one try may emit through `outlet_events`.
pub const MAX_OUTLET_EVENTS: usize = 1000;

/// The `asset_events` of a call envelope, checked against the task's `outlets`: each names a
/// valid asset, carries an `extra` object of at most [`crate::assets::MAX_EXTRA_BYTES`] bytes
/// of JSON, and names an alias the task declares (or, without alias, an asset it declares);
/// at most [`MAX_OUTLET_EVENTS`] of them. Events added through several aliases with the same
/// asset and extra become one event with every alias, as Airflow records them.
fn outlet_events(task: &Task, v: Option<Value>) -> Result<Vec<OutletEvent>, TaskFailure> {
    let items = match v {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(bad_call_result("`asset_events` is not a list")),
    };
    if items.len() > MAX_OUTLET_EVENTS {
        return Err(bad_call_result(&format!(
            "the task emitted {} asset events, more than the {MAX_OUTLET_EVENTS} a task instance may",
            items.len()
        )));
    }
    let outlets = task.extra.get("outlets").cloned().unwrap_or(Value::Null);
    let declared_uris = crate::assets::outlet_uris(&outlets).unwrap_or_default();
    let declared_aliases = crate::assets::outlet_aliases(&outlets).unwrap_or_default();
    let mut out: Vec<OutletEvent> = Vec::new();
    for item in items {
        let Value::Object(mut m) = item else {
            return Err(bad_call_result("an asset event is not an object"));
        };
        let uri = m
            .get("uri")
            .and_then(Value::as_str)
            .ok_or_else(|| bad_call_result("an asset event has no `uri`"))?;
        let uri = crate::assets::canonical_uri(uri)
            .map_err(|e| TaskFailure::new("Weft.InvalidAssetEvent", e.to_string()))?;
        let extra = match m.remove("extra") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(e)) => e,
            Some(_) => return Err(bad_call_result("an asset event's `extra` is not an object")),
        };
        let size = serde_json::to_vec(&extra)
            .map(|b| b.len())
            .unwrap_or(usize::MAX);
        if size > crate::assets::MAX_EXTRA_BYTES {
            return Err(TaskFailure::new(
                "Weft.InvalidAssetEvent",
                format!(
                    "the extra of the event of `{uri}` is {size} bytes of JSON, more than the {} an asset event may carry",
                    crate::assets::MAX_EXTRA_BYTES
                ),
            ));
        }
        let alias = match m.get("alias") {
            None | Some(Value::Null) => None,
            Some(Value::String(a)) => Some(
                crate::assets::alias_name(a)
                    .map_err(|e| TaskFailure::new("Weft.InvalidAssetEvent", e.to_string()))?,
            ),
            Some(_) => return Err(bad_call_result("an asset event's `alias` is not a string")),
        };
        match alias {
            Some(a) => {
                if !declared_aliases.contains(&a) {
                    return Err(TaskFailure::new(
                        "Weft.InvalidAssetEvent",
                        format!(
                            "the task added an event through the asset alias `{a}`, which its `outlets` do not name"
                        ),
                    )
                    );
                }
                match out
                    .iter_mut()
                    .find(|e| !e.aliases.is_empty() && e.uri == uri && e.extra == extra)
                {
                    Some(e) if !e.aliases.contains(&a) => e.aliases.push(a),
                    Some(_) => {}
                    None => out.push(OutletEvent {
                        uri,
                        extra,
                        aliases: vec![a],
                    }),
                }
            }
            None => {
                if !declared_uris.contains(&uri) {
                    return Err(TaskFailure::new(
                        "Weft.InvalidAssetEvent",
                        format!(
                            "the task set the extra of `{uri}`, which its `outlets` do not name"
                        ),
                    ));
                }
                match out
                    .iter_mut()
                    .find(|e| e.aliases.is_empty() && e.uri == uri)
                {
                    Some(e) => e.extra.extend(extra),
                    None => out.push(OutletEvent {
                        uri,
                        extra,
                        aliases: Vec::new(),
                    }),
                }
            }
        }
    }
    Ok(out)
}

/// A Python callable answers `{"__weft_call__": {"value", "xcoms", "skip_downstream",
/// "follow"}}` (see
/// `plugins/python/weft-airflow-py/app.py`); every other result is the return value itself.
fn unwrap_call_result(task: &Task, v: Value) -> Result<CallResult, TaskFailure> {
    let plain = |value| CallResult {
        value,
        pushed: Map::new(),
        skip_downstream: None,
        follow: None,
        asset_events: Vec::new(),
    };
    if !task.operator.starts_with(crate::builtin::PYTHON) {
        return Ok(plain(v));
    }
    let mut env = match v {
        Value::Object(mut m) if m.len() == 1 && m.contains_key("__weft_call__") => {
            match m.remove("__weft_call__") {
                Some(Value::Object(e)) => e,
                _ => return Err(bad_call_result("`__weft_call__` is not an object")),
            }
        }
        other => return Ok(plain(other)),
    };
    let pushed = match env.remove("xcoms") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m,
        Some(_) => return Err(bad_call_result("`xcoms` is not an object")),
    };
    let skip_downstream = match env.get("skip_downstream").and_then(Value::as_str) {
        None => None,
        Some("all") => Some(true),
        Some("direct") => Some(false),
        Some(other) => {
            return Err(bad_call_result(&format!(
                "unknown skip_downstream `{other}`"
            )))
        }
    };
    let asset_events = outlet_events(task, env.remove("asset_events"))?;
    Ok(CallResult {
        value: env.remove("value").unwrap_or(Value::Null),
        pushed,
        skip_downstream,
        follow: env.remove("follow"),
        asset_events,
    })
}

fn bad_call_result(why: &str) -> TaskFailure {
    TaskFailure::new(
        "Weft.InvalidCallResult",
        format!("the Python callable's result could not be read: {why}"),
    )
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

/// Replace TaskFlow references (`+task`, `+group.task`, `+task['key']`) anywhere in a Python
/// callable task's arguments with the upstream's XCom (Airflow resolves XComArgs the same way);
/// other strings are left alone. Nesting deeper than 64 levels is left as it is.
fn resolve_taskflow(v: Value, xcom: &crate::template::XComStore, depth: usize) -> Value {
    if depth > 64 {
        return v;
    }
    match v {
        Value::String(s) => match taskflow_ref(&s) {
            Some((task, key)) => xcom.pull(task, key, None).unwrap_or(Value::Null),
            None => Value::String(s),
        },
        Value::Array(a) => Value::Array(
            a.into_iter()
                .map(|x| resolve_taskflow(x, xcom, depth + 1))
                .collect(),
        ),
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, x)| (k, resolve_taskflow(x, xcom, depth + 1)))
                .collect(),
        ),
        other => other,
    }
}

/// `+task` / `+group.task` / `+task['key']` as (task id, key).
fn taskflow_ref(s: &str) -> Option<(&str, &str)> {
    let rest = s.strip_prefix('+')?;
    let end = rest
        .find(|c: char| !(c.is_alphanumeric() || matches!(c, '_' | '-' | '.')))
        .unwrap_or(rest.len());
    let (task, tail) = rest.split_at(end);
    if task.is_empty() {
        return None;
    }
    if tail.is_empty() {
        return Some((task, "return_value"));
    }
    let inner = tail.strip_prefix('[')?.strip_suffix(']')?;
    let key = inner
        .strip_prefix('\'')
        .and_then(|k| k.strip_suffix('\''))
        .or_else(|| inner.strip_prefix('"').and_then(|k| k.strip_suffix('"')))?;
    Some((task, key))
}

/// The XComs a finished instance pushed, by key: what [`RunMachine`] pushes on success
/// (`return_value` unless the result is null, and each key of a `multiple_outputs` object).
fn pushed_xcoms(task: &Task, ti: &Ti) -> Map<String, Value> {
    let (state, xcom) = (ti.state, &ti.xcom);
    let mut out = Map::new();
    if state != TiState::Success {
        return out;
    }
    out.extend(ti.pushed.iter().map(|(k, v)| (k.clone(), v.clone())));
    if xcom.is_null() {
        return out;
    }
    if task.multiple_outputs {
        if let Value::Object(m) = xcom {
            out.extend(m.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
    }
    out.insert("return_value".into(), xcom.clone());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::{parse_dag_file, AnyOperator, FolderConfig};

    fn dag(yaml: &str) -> Arc<Dag> {
        let (dags, errors) = parse_dag_file(
            std::path::Path::new("t.yaml"),
            yaml,
            &FolderConfig::default(),
            &AnyOperator,
        );
        assert!(errors.is_empty(), "{errors:?}");
        Arc::new(dags.into_iter().next().unwrap())
    }

    fn machine(d: &Arc<Dag>) -> RunMachine {
        let date = crate::timetable::parse_logical_date("2024-03-05").unwrap();
        RunMachine::new(d.clone(), date, &RunOptions::default())
    }

    fn not_ready() -> Result<Value, TaskFailure> {
        Err(TaskFailure::new(SENSOR_NOT_READY, "no"))
    }

    #[test]
    fn sensor_reschedules_keep_the_try_then_time_out_or_soft_fail() {
        let d = dag("s:\n  tasks:\n    w:\n      operator: s\n      mode: reschedule\n      poke_interval: 10\n      timeout: 25\n    soft:\n      operator: s\n      poke_interval: 10\n      timeout: 5\n      soft_fail: true\n");
        let mut m = machine(&d);
        let p = m.poll(0.0);
        assert_eq!(p.ready, [(0, 0), (1, 0)]);
        let inv = m.start(0, 0, 0.0).unwrap();
        assert!(inv.sensor.reschedule);
        assert_eq!(
            m.finish(0, 0, not_ready(), 0.1, 0.1),
            TiState::UpForReschedule
        );
        assert_eq!(
            m.record(0, 0).try_number,
            0,
            "a reschedule keeps the try number"
        );
        assert!(m.poll(5.0).ready.is_empty(), "not due before poke_interval");
        assert_eq!(m.poll(10.2).ready, [(0, 0)]);
        let inv = m.start(0, 0, 10.2).unwrap();
        assert_eq!(inv.try_number, 1);
        assert!(inv.first_poke_elapsed.as_secs_f64() > 10.0);
        assert_eq!(m.finish(0, 0, not_ready(), 0.1, 26.0), TiState::Failed);
        assert_eq!(m.record(0, 0).error.unwrap().error, "AirflowSensorTimeout");
        m.start(1, 0, 0.0).unwrap();
        assert_eq!(m.finish(1, 0, not_ready(), 6.0, 6.0), TiState::Skipped);
        assert_eq!(m.unfinished(), 0);
    }

    /// What the Python component answers for a callable (see `unwrap_call_result`).
    fn call(value: Value, extra: Value) -> Result<Value, TaskFailure> {
        let mut env = json!({"value": value});
        if let (Value::Object(e), Value::Object(x)) = (&mut env, extra) {
            e.extend(x);
        }
        Ok(json!({ "__weft_call__": env }))
    }

    fn run_all(m: &mut RunMachine, mut answer: impl FnMut(&str) -> Result<Value, TaskFailure>) {
        for _ in 0..20 {
            let p = m.poll(0.0);
            for (t, i) in p.ready {
                if !m.startable(t, i) {
                    continue;
                }
                if let Ok(inv) = m.start(t, i, 0.0) {
                    let r = answer(&inv.display_id());
                    m.finish(t, i, r, 0.0, 0.0);
                }
            }
            if m.unfinished() == 0 {
                return;
            }
        }
        panic!("the run did not finish");
    }

    const PY: &str = "decorator: airflow.decorators.task\n      python_callable: m.f";

    #[test]
    fn callables_push_keys_and_short_circuit_all_or_direct_downstream() {
        let d = dag(&format!(
            "p:\n  tasks:\n    push:\n      {PY}\n    sc_all:\n      {PY}\n    a1:\n      operator: x\n      dependencies: [sc_all]\n    a2:\n      operator: x\n      trigger_rule: all_done\n      dependencies: [a1]\n    sc_direct:\n      {PY}\n    d1:\n      operator: x\n      dependencies: [sc_direct]\n    d2:\n      operator: x\n      trigger_rule: all_done\n      dependencies: [d1]\n    br:\n      {PY}\n      branch: true\n    left:\n      operator: x\n      dependencies: [br]\n    right:\n      operator: x\n      dependencies: [br]\n"
        ));
        let mut m = machine(&d);
        run_all(&mut m, |id| match id {
            "push" => call(json!(1), json!({"xcoms": {"k": [1, 2]}})),
            "sc_all" => call(Value::Null, json!({"skip_downstream": "all"})),
            "sc_direct" => call(Value::Null, json!({"skip_downstream": "direct"})),
            "br" => call(Value::Null, json!({"follow": "left"})),
            _ => Ok(Value::Null),
        });
        let r = m.report(0.0);
        let st = |id: &str| r.tasks[id].state;
        assert_eq!(r.tasks["push"].xcoms["k"], json!([1, 2]));
        assert_eq!(r.tasks["push"].xcoms["return_value"], 1);
        assert_eq!(m.record(0, 0).xcoms["k"], json!([1, 2]), "persisted");
        assert_eq!((st("a1"), st("a2")), (TiState::Skipped, TiState::Skipped));
        assert_eq!((st("d1"), st("d2")), (TiState::Skipped, TiState::Success));
        assert_eq!(
            (st("left"), st("right")),
            (TiState::Success, TiState::Skipped)
        );
        assert!(
            r.tasks["br"].xcoms.is_empty(),
            "a branch's answer is not its XCom"
        );
    }

    #[test]
    fn asset_events_are_checked_against_the_outlets_and_kept_only_on_success() {
        let outlets = "outlets: [{__type__: airflow.sdk.AssetAlias, name: mine}, \"s3://b/plain\"]";
        let d = dag(&format!(
            "p:\n  tasks:\n    ok:\n      {PY}\n      {outlets}\n    undeclared:\n      {PY}\n      {outlets}\n    plain_other:\n      {PY}\n      {outlets}\n    many:\n      {PY}\n      {outlets}\n    big:\n      {PY}\n      {outlets}\n    failed:\n      {PY}\n      {outlets}\n      retries: 0\n"
        ));
        let mut m = machine(&d);
        let ev = |uri: &str, alias: Option<&str>, extra: Value| json!({"uri": uri, "alias": alias, "extra": extra});
        let many: Vec<Value> = (0..=MAX_OUTLET_EVENTS)
            .map(|i| ev(&format!("s3://b/{i}"), Some("mine"), json!({})))
            .collect();
        let big = json!({"x": "y".repeat(crate::assets::MAX_EXTRA_BYTES)});
        run_all(&mut m, |id| match id {
            "ok" => call(
                Value::Null,
                json!({"asset_events": [
                    ev("S3://b//k", Some("mine"), json!({"n": 1})),
                    ev("s3://b/k", Some(" mine "), json!({"n": 1})),
                    ev("s3://b/plain", None, json!({"rows": 3})),
                ]}),
            ),
            "undeclared" => call(
                Value::Null,
                json!({"asset_events": [ev("s3://victim", Some("theirs"), json!({}))]}),
            ),
            "plain_other" => call(
                Value::Null,
                json!({"asset_events": [ev("s3://victim", None, json!({"x": 1}))]}),
            ),
            "many" => call(Value::Null, json!({ "asset_events": many.clone() })),
            "big" => call(
                Value::Null,
                json!({"asset_events": [ev("s3://b/k", Some("mine"), big.clone())]}),
            ),
            _ => Err(TaskFailure::new("ValueError", "boom")),
        });
        let (t, i) = m.find("ok", -1).unwrap();
        assert_eq!(m.state(t, i), TiState::Success);
        let got = m.take_asset_events(t, i);
        assert_eq!(
            got,
            vec![
                OutletEvent {
                    uri: "s3://b/k".into(),
                    extra: json!({"n": 1}).as_object().cloned().unwrap(),
                    aliases: vec!["mine".into()],
                },
                OutletEvent {
                    uri: "s3://b/plain".into(),
                    extra: json!({"rows": 3}).as_object().cloned().unwrap(),
                    aliases: vec![],
                },
            ]
        );
        assert!(m.take_asset_events(t, i).is_empty(), "taken once");
        for (task, why) in [
            ("undeclared", "`theirs`, which its `outlets` do not name"),
            (
                "plain_other",
                "`s3://victim`, which its `outlets` do not name",
            ),
            ("many", "more than the 1000"),
            ("big", "bytes of JSON"),
            ("failed", "boom"),
        ] {
            let (t, i) = m.find(task, -1).unwrap();
            assert_eq!(m.state(t, i), TiState::Failed, "{task}");
            let e = m.record(t, i).error.unwrap();
            assert!(e.cause.contains(why), "{task}: {e:?}");
            assert_eq!(m.record(t, i).try_number, 1, "{task}: not retried");
            assert!(m.take_asset_events(t, i).is_empty(), "{task}");
        }
    }

    #[test]
    fn oversized_pushes_and_bad_envelopes_fail_the_try() {
        let d = dag(&format!(
            "p:\n  tasks:\n    big:\n      {PY}\n    odd:\n      {PY}\n"
        ));
        let mut m = machine(&d);
        let big = "x".repeat((1 << 20) + 1);
        run_all(&mut m, |id| match id {
            "big" => call(Value::Null, json!({ "xcoms": { "k": big } })),
            _ => Ok(json!({"__weft_call__": {"xcoms": 5}})),
        });
        let r = m.report(0.0);
        let err = |id: &str| r.tasks[id].error.clone().unwrap().error;
        assert_eq!(r.tasks["big"].state, TiState::Failed);
        assert_eq!(err("big"), "Weft.XComTooLarge");
        assert!(r.tasks["big"].xcoms.is_empty());
        assert_eq!(err("odd"), "Weft.InvalidCallResult");
    }

    #[test]
    fn expand_kwargs_gives_each_instance_its_mapping_of_arguments() {
        let d = dag("e:\n  tasks:\n    m:\n      operator: x\n      fixed: 1\n      expand:\n        '**': [{a: 1}, {a: 2, b: 3}]\n");
        let mut m = machine(&d);
        let p = m.poll(0.0);
        assert_eq!(p.ready.len(), 2);
        let inv = m.start(0, 1, 0.0).unwrap();
        assert_eq!(inv.arguments, json!({"fixed": 1, "a": 2, "b": 3}));
    }

    #[test]
    fn records_restore_a_run_and_clear_resets_downstream() {
        let d = dag("r:\n  tasks:\n    a:\n      operator: x\n    m:\n      operator: x\n      dependencies: [a]\n      expand:\n        n: +a\n    z:\n      operator: x\n      dependencies: [m]\n");
        let mut m = machine(&d);
        assert_eq!(m.poll(0.0).ready, [(0, 0)]);
        m.start(0, 0, 0.0).unwrap();
        m.finish(0, 0, Ok(serde_json::json!([1, 2])), 0.0, 0.0);
        let p = m.poll(0.0);
        assert_eq!(p.ready, [(1, 0), (1, 1)]);
        assert!(m.take_changes().contains(&Change::Instances(1)));
        let inv = m.start(1, 0, 0.0).unwrap();
        assert_eq!(inv.arguments["n"], 1);
        m.finish(1, 0, Ok(serde_json::json!("one")), 0.0, 0.0);
        m.start(1, 1, 0.0).unwrap();
        // Persist and restore: m[1] was running -> lost.
        let recs: Vec<TiRecord> = (0..3)
            .flat_map(|t| (0..m.instances(t)).map(move |i| (t, i)))
            .map(|(t, i)| m.record(t, i))
            .collect();
        let mut r = machine(&d);
        let lost = r.restore(recs);
        assert_eq!(lost, [(1, 1)]);
        assert_eq!(r.fail_lost(1, 1, 0.0), TiState::Failed, "no retries left");
        r.poll(0.0);
        assert_eq!(r.state(2, 0), TiState::UpstreamFailed);
        assert_eq!(r.unfinished(), 0);
        // Clear m: it goes back to unexpanded; z is reset too; a keeps its XCom.
        let cleared = r.clear(&["m".into()], true);
        assert_eq!(cleared, ["m", "z"]);
        assert_eq!(r.instances(1), 1);
        let p = r.poll(0.0);
        assert_eq!(p.ready, [(1, 0), (1, 1)]);
        let inv = r.start(1, 1, 0.0).unwrap();
        assert_eq!(inv.try_number, 2, "tries go on after a clear");
        assert_eq!(inv.max_tries, 2);
    }

    #[test]
    fn sensor_trigger_and_callback_fields_are_validated_with_lines() {
        let (_, errors) = parse_dag_file(
            std::path::Path::new("bad.yaml"),
            "s:\n  trigger: {path: in, glob: 'a/b'}\n  on_failure_callback: 5\n  tasks:\n    w:\n      operator: s\n      mode: sometimes\n      poke_interval: soon\n      soft_fail: 3\n",
            &FolderConfig::default(),
            &AnyOperator,
        );
        let shown: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        for want in [
            "bad.yaml:2: s.trigger: trigger glob",
            "bad.yaml:3: s.on_failure_callback",
            "bad.yaml:7: s.tasks.w.mode",
            "bad.yaml:8: s.tasks.w.poke_interval",
            "bad.yaml:9: s.tasks.w.soft_fail",
        ] {
            assert!(
                shown.iter().any(|e| e.starts_with(want)),
                "{want} in {shown:#?}"
            );
        }
    }
}
