//! The scheduler loop: one thread owns the sled trees and the run machines of the active runs;
//! task tries run on the worker pool and report back over a channel.
//!
//! One pass of the loop: create runs the timetables (and file triggers) ask for, honouring
//! `catchup`, `start_date`/`end_date` and `max_active_runs`; start queued runs up to
//! `max_active_runs`; apply finished tries (retries with back-off, sensor reschedules,
//! callbacks); ask every run machine what is ready; pick instances by priority weight (then
//! older runs first) within `parallelism`, each DAG's `max_active_tasks` and pool slots; write
//! every state change of the pass to sled in one batch per run and ask the group committer to
//! flush it; hand the instances to workers without waiting for that fsync, and finish runs
//! (a run's end is flushed before it is reported). Sled's log is replayed as a prefix, so after
//! a crash the store holds every pass up to some point: tries whose end reached the disk are
//! never run again, and those of the last (unflushed, at most one fsync old) passes run again
//! (at-least-once, as Airflow's tasks). Restarting resumes unfinished runs from sled: finished
//! instances keep their state, and a try that was running when the process died counts as a
//! failed try (retried if it has retries left), as Airflow treats zombie tasks.
//!
//! Several schedulers may share one database (PostgreSQL): a loop schedules only the DAGs whose
//! leases it holds (see `super::ha`), takes pool slots in the database before a try starts,
//! and its store's writes are fenced by those leases; a DAG taken over from a dead scheduler is
//! resumed exactly as after a restart.

use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};
use weft_dag::timetable::DataInterval;
use weft_dag::{
    callback_plugins, Change, Dag, DagRunReport, RunMachine, RunOptions, Secrets, TaskFailure,
    TiState, SENSOR_NOT_READY,
};

use super::control::{self, Control, ControlRequest, Reply};
use super::files::FileTrigger;
use super::ha::Ownership;
use super::pools::{PoolCheck, Pools};
use super::runner::TryRunner;
use super::store::{DagRunRecord, SchedStore, StoredTi};
use super::workers::WorkerPool;
use super::SchedulerError;
use crate::persistence::{DagLeases, SlotAsk, SlotKey};

/// Settings of a scheduler.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// Workers kept alive when idle.
    pub min_workers: usize,
    /// Most workers at once.
    pub max_workers: usize,
    /// An idle worker above `min_workers` exits after this long.
    pub worker_idle_timeout: Duration,
    /// Most task instances queued or running at once (Airflow's `core.parallelism`).
    pub parallelism: usize,
    /// Pools.
    pub pools: Pools,
    /// Largest XCom accepted, in bytes of JSON.
    pub max_xcom_bytes: usize,
    /// The loop wakes at least this often.
    pub tick: Duration,
    /// Flush sled after every pass that changed state, on the group committer's thread (crash
    /// safety; off only in benchmarks that measure the in-memory path).
    pub durable: bool,
    /// Whether a DAG never paused or unpaused starts paused (Airflow's
    /// `dags_are_paused_at_creation`; a DAG's `is_paused_upon_creation` wins). A paused DAG's
    /// timetable and file trigger create no runs; triggered runs still run.
    pub dags_paused_at_creation: bool,
    /// How long a DAG lease lasts without renewal when several schedulers share a
    /// PostgreSQL database (another scheduler adopts the DAG once it expired); renewed every
    /// tick. Unused on sled.
    pub lease: Duration,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        SchedulerConfig {
            min_workers: 1,
            max_workers: (cpus * 2).max(4),
            worker_idle_timeout: Duration::from_secs(5),
            parallelism: 32,
            pools: Pools::default(),
            max_xcom_bytes: 1 << 20,
            tick: Duration::from_secs(1),
            durable: true,
            dags_paused_at_creation: false,
            lease: Duration::from_secs(10),
        }
    }
}

/// How a run came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// By the timetable.
    Scheduled,
    /// `weft dag trigger`.
    Manual,
    /// `weft dag backfill`.
    Backfill,
    /// A file-arrival trigger.
    File,
    /// An asset condition that became true.
    Asset,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Trigger::Scheduled => "scheduled",
            Trigger::Manual => "manual",
            Trigger::Backfill => "backfill",
            Trigger::File => "file_trigger",
            Trigger::Asset => super::assets::ASSET_TRIGGERED,
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Trigger::Scheduled => "scheduled",
            Trigger::Manual => "manual",
            Trigger::Backfill => "backfill",
            Trigger::File => "file",
            Trigger::Asset => super::assets::ASSET_TRIGGERED,
        }
    }
}

/// A progress callback: `(run_id, task instance, dag_id, new state)`.
pub type OnChange = dyn Fn(&str, &str, &str, TiState) + Sync;

/// What one call of [`Scheduler::run`] does.
#[derive(Default)]
pub struct LoopOptions<'a> {
    /// Create runs from timetables and file triggers (`weft dag scheduler`).
    pub schedule: bool,
    /// Also pick up runs other components create or clear on this store while the loop runs
    /// (the scheduler inside `weft server`, fed by the UI and API). Implied by `schedule`.
    pub adopt: bool,
    /// Return once these runs `(dag_id, run_id)` are finished.
    pub until_runs: Option<Vec<(String, String)>>,
    /// Return once nothing is running, queued, waiting or due.
    pub until_idle: bool,
    /// Return when set (Ctrl-C).
    pub stop: Option<&'a AtomicBool>,
    /// Called with every task-instance state change (for progress output).
    pub on_change: Option<&'a OnChange>,
    /// Marks and notes from outside the loop (the server's API) reach it through this handle.
    pub control: Option<&'a Control>,
    /// Hold the runs of paused DAGs as Airflow's scheduler does: their queued runs stay queued
    /// and no new task instance of their running runs starts (running tries finish). Off for
    /// the commands that run one run in-process (`weft dag trigger|backfill|clear`).
    pub hold_paused: bool,
    /// Airflow's scheduler metrics, updated as the loop goes (see [`crate::metrics`]).
    pub metrics: Option<&'a crate::metrics::DagMetrics>,
    /// Fault tests: when set, return at once as a killed process would — nothing more is
    /// written, no lease is given up, tries in flight are forgotten.
    pub abandon: Option<&'a AtomicBool>,
}

/// Statistics of one [`Scheduler::run`].
#[derive(Debug, Default, Clone)]
pub struct LoopStats {
    /// Runs finished.
    pub runs_finished: usize,
    /// Tries run.
    pub tries: usize,
    /// Most workers alive at once.
    pub peak_workers: usize,
    /// Latencies from an upstream try's end on its worker to the downstream try's start on its
    /// worker, seconds (commit and flush included; one per try whose upstreams ran in this
    /// process).
    pub dispatch_latencies: Vec<f64>,
}

/// The persistent scheduler.
pub struct Scheduler<'a> {
    pub(super) store: SchedStore,
    /// Its DAG leases and shared pool slots (the store's writes are fenced by them).
    leases: Arc<dyn DagLeases>,
    dags: HashMap<String, Arc<Dag>>,
    cross: super::cross_dag::CrossDag,
    exec: &'a dyn TryRunner,
    secrets: Arc<dyn Secrets>,
    cfg: SchedulerConfig,
}

/// A try the loop started.
#[derive(Debug, Clone, Default)]
pub(super) struct TryStart {
    /// Epoch seconds.
    pub(super) at: f64,
    /// Who ran it, once it ended (see [`StoredTi::hostname`]).
    pub(super) host: Option<String>,
}

/// The host that ran a try whose log entries are `log`: the worker's host a remote try's log
/// names (`"worker": "HOST/WORKER_ID"`), else this host.
fn try_host(log: &[Value]) -> String {
    log.iter()
        .find_map(|e| e.get("worker").and_then(Value::as_str))
        .and_then(|w| w.split('/').next())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| crate::remote::host_name())
        .to_string()
}

struct Active {
    rec: DagRunRecord,
    m: RunMachine,
    in_flight: usize,
    /// Running tries (and those that ended this pass, until it is persisted).
    started: HashMap<(usize, usize), TryStart>,
    /// When each task's last instance ended on its worker (for latency figures).
    finished_at: HashMap<usize, Instant>,
    /// Past its `dagrun_timeout`: unfinished instances were skipped, results are ignored.
    timed_out: bool,
    /// Tries stopped by a mark: their results are discarded when they come back.
    voided: HashSet<(usize, usize)>,
    /// The state the run was marked with (it ends in it once its stopped tries are back).
    marked: Option<&'static str>,
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Pending {
    priority: i64,
    /// Negated logical date: older runs first.
    older: i64,
    /// Negated sequence: first come first served.
    seq: i64,
    run: u64,
    t: usize,
    i: usize,
}

pub(super) enum Msg {
    Done {
        run: u64,
        t: usize,
        i: usize,
        result: Result<Value, TaskFailure>,
        elapsed: f64,
        log: Vec<Value>,
        /// When the try ended on its worker.
        ended: Instant,
        /// Time from the last upstream's end to this try's start on its worker.
        latency: Option<f64>,
    },
    Callback {
        what: String,
        key: (String, String, String, i64, u32),
        plugin: String,
        result: Result<Value, TaskFailure>,
    },
    /// A change asked for from outside the loop (see [`control`]).
    Control(ControlRequest, Reply),
}

/// The environment variable of Airflow's `dags_are_paused_at_creation`.
pub const PAUSED_AT_CREATION_ENV: &str = "WEFT_DAGS_ARE_PAUSED_AT_CREATION";

/// Whether DAGs never paused or unpaused start paused, from `$WEFT_DAGS_ARE_PAUSED_AT_CREATION`
/// (`true`/`false`, `1`/`0`; Airflow's `AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION`), else
/// `WEFT_SERVER_SCHEDULE_DAGS=1` (the older spelling) for unpaused, else Airflow's default:
/// paused. A value that is not a boolean is an error naming the variable.
pub fn paused_at_creation_from_env() -> Result<bool, SchedulerError> {
    match std::env::var(PAUSED_AT_CREATION_ENV) {
        Ok(v) => match v.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(true),
            "false" | "0" | "no" => Ok(false),
            _ => Err(SchedulerError::Config(format!(
                "{PAUSED_AT_CREATION_ENV}=`{}`: expected true or false",
                v.chars().take(40).collect::<String>()
            ))),
        },
        Err(_) => Ok(!std::env::var("WEFT_SERVER_SCHEDULE_DAGS").is_ok_and(|v| v == "1")),
    }
}

/// Whether a DAG is paused: the `stored` flag, else the DAG's `is_paused_upon_creation`, else
/// `default`.
pub fn paused_or_default(stored: Option<bool>, dag: &Dag, default: bool) -> bool {
    stored
        .or_else(|| {
            dag.extra
                .get("is_paused_upon_creation")
                .and_then(Value::as_bool)
        })
        .unwrap_or(default)
}

fn epoch(t: DateTime<Utc>) -> f64 {
    t.timestamp_micros() as f64 / 1e6
}

fn now_s() -> f64 {
    epoch(Utc::now())
}

fn iso(d: &DateTime<Utc>) -> String {
    d.to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

impl<'a> Scheduler<'a> {
    /// A scheduler over `dags`, keeping state in `db`.
    pub fn new(
        db: &sled::Db,
        dags: Vec<Dag>,
        exec: &'a dyn TryRunner,
        secrets: Arc<dyn Secrets>,
        cfg: SchedulerConfig,
    ) -> Result<Self, SchedulerError> {
        Self::with_store(SchedStore::open(db)?, dags, exec, secrets, cfg)
    }

    /// A scheduler over `dags`, keeping state in `store` (any database).
    pub fn with_store(
        store: SchedStore,
        dags: Vec<Dag>,
        exec: &'a dyn TryRunner,
        secrets: Arc<dyn Secrets>,
        cfg: SchedulerConfig,
    ) -> Result<Self, SchedulerError> {
        let dags: HashMap<String, Arc<Dag>> = dags
            .into_iter()
            .map(|d| (d.dag_id.clone(), Arc::new(d)))
            .collect();
        let owner = format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple());
        let co = store.coordinate(&owner)?;
        let store = SchedStore::new(co.store);
        Ok(Scheduler {
            leases: co.leases,
            cross: super::cross_dag::CrossDag::new(store.clone(), Arc::new(dags.clone()), None),
            store,
            dags,
            exec,
            secrets,
            cfg,
        })
    }

    /// The roles tasks' grants name, for the cross-DAG operators' decisions (without them
    /// every cross-DAG action is denied).
    pub fn with_roles(mut self, roles: Arc<crate::roles::Roles>) -> Self {
        self.cross = super::cross_dag::CrossDag::new(
            self.store.clone(),
            Arc::new(self.dags.clone()),
            Some(roles),
        );
        self
    }

    /// The store.
    pub fn store(&self) -> &SchedStore {
        &self.store
    }

    /// Whether `dag` is paused: its stored pause flag, else its `is_paused_upon_creation`,
    /// else [`SchedulerConfig::dags_paused_at_creation`].
    pub fn is_paused(&self, dag: &Dag) -> Result<bool, SchedulerError> {
        Ok(paused_or_default(
            self.store.dag_paused(&dag.dag_id)?,
            dag,
            self.cfg.dags_paused_at_creation,
        ))
    }

    /// A loaded DAG.
    pub fn dag(&self, dag_id: &str) -> Result<&Arc<Dag>, SchedulerError> {
        self.dags
            .get(dag_id)
            .ok_or_else(|| SchedulerError::UnknownDag(dag_id.to_string()))
    }

    /// Create a queued run of `dag_id` at `logical_date` (`interval` defaults to the
    /// schedule's manual interval) and persist it.
    pub fn create_run(
        &self,
        dag_id: &str,
        logical_date: DateTime<Utc>,
        interval: Option<DataInterval>,
        conf: Map<String, Value>,
        trigger: Trigger,
    ) -> Result<DagRunRecord, SchedulerError> {
        self.create_run_named(dag_id, None, logical_date, interval, conf, trigger)
    }

    /// [`Scheduler::create_run`] with the caller's run id (`None`: `TRIGGER__LOGICAL_DATE`);
    /// the caller has checked the id's alphabet.
    pub fn create_run_named(
        &self,
        dag_id: &str,
        run_id: Option<String>,
        logical_date: DateTime<Utc>,
        interval: Option<DataInterval>,
        conf: Map<String, Value>,
        trigger: Trigger,
    ) -> Result<DagRunRecord, SchedulerError> {
        let dag = self.dag(dag_id)?;
        let interval = interval.unwrap_or_else(|| {
            dag.schedule
                .infer_manual_data_interval(dag.timezone, logical_date)
        });
        let rec = DagRunRecord {
            dag_id: dag_id.to_string(),
            run_id: run_id
                .unwrap_or_else(|| format!("{}__{}", trigger.prefix(), iso(&logical_date))),
            run_type: trigger.as_str().into(),
            logical_date,
            data_interval_start: interval.start,
            data_interval_end: interval.end,
            state: "queued".into(),
            conf,
            queued_at: Utc::now(),
            start_date: None,
            end_date: None,
            note: None,
        };
        self.store.insert_run(&rec)?;
        self.store.flush()?;
        tracing::info!(dag_id, run_id = %rec.run_id, "dag run created");
        Ok(rec)
    }

    /// Reset `task_id` (and everything downstream) of a run so it runs again, as Airflow's
    /// clear does; the run goes back to `queued`. Returns the cleared task ids.
    pub fn clear(
        &self,
        dag_id: &str,
        run_id: &str,
        task_id: &str,
        downstream: bool,
    ) -> Result<Vec<String>, SchedulerError> {
        self.clear_tasks(dag_id, run_id, &[task_id.to_string()], downstream)
    }

    /// [`Scheduler::clear`] for several tasks at once (one batch, one run state change).
    pub fn clear_tasks(
        &self,
        dag_id: &str,
        run_id: &str,
        task_ids: &[String],
        downstream: bool,
    ) -> Result<Vec<String>, SchedulerError> {
        let dag = self.dag(dag_id)?.clone();
        if let Some(t) = task_ids
            .iter()
            .find(|t| !dag.tasks.contains_key(t.as_str()))
        {
            return Err(SchedulerError::UnknownTask {
                dag_id: dag_id.into(),
                task_id: t.clone(),
            });
        }
        let mut rec =
            self.store
                .get_run(dag_id, run_id)?
                .ok_or_else(|| SchedulerError::UnknownRun {
                    dag_id: dag_id.into(),
                    run_id: run_id.into(),
                })?;
        let mut m = self.machine(&dag, &rec);
        let stored = self.store.tis_of(dag_id, run_id)?;
        m.restore(stored.iter().map(|s| s.ti.clone()).collect());
        m.take_changes();
        let cleared = m.clear(task_ids, downstream);
        self.persist(&mut m, &rec, &HashMap::new())?;
        rec.state = "queued".into();
        rec.end_date = None;
        self.store.put_run(&rec)?;
        self.store.flush()?;
        Ok(cleared)
    }

    pub(super) fn machine(&self, dag: &Arc<Dag>, rec: &DagRunRecord) -> RunMachine {
        let triggering = if rec.run_type == super::assets::ASSET_TRIGGERED {
            match self
                .store
                .triggering_event_ids(&rec.dag_id, &rec.run_id)
                .and_then(|ids| self.store.asset_events(Some(&ids)))
            {
                Ok(events) => super::assets::triggering_context(&events),
                Err(e) => {
                    tracing::warn!(dag_id = %rec.dag_id, run_id = %rec.run_id, error = %e, "cannot read the run's triggering asset events");
                    Value::Object(Map::new())
                }
            }
        } else {
            Value::Object(Map::new())
        };
        let opts = RunOptions {
            triggering_asset_events: triggering,
            secrets: self.secrets.clone(),
            run_id: Some(rec.run_id.clone()),
            conf: rec.conf.clone(),
            data_interval: Some(DataInterval {
                start: rec.data_interval_start,
                end: rec.data_interval_end,
            }),
            max_xcom_bytes: self.cfg.max_xcom_bytes,
            ..RunOptions::default()
        };
        RunMachine::new(dag.clone(), rec.logical_date, &opts)
    }

    /// Write a machine's pending changes (one batch).
    pub(super) fn persist(
        &self,
        m: &mut RunMachine,
        rec: &DagRunRecord,
        times: &HashMap<(usize, usize), TryStart>,
    ) -> Result<usize, SchedulerError> {
        let changes = m.take_changes();
        if changes.is_empty() {
            return Ok(0);
        }
        let mut replace = Vec::new();
        let mut seen: HashSet<(usize, usize)> = HashSet::new();
        let mut put = Vec::new();
        let now = now_s();
        let mut emit = |t: usize, i: usize, put: &mut Vec<StoredTi>| {
            if seen.insert((t, i)) {
                let ti = m.record(t, i);
                let running = ti.state == TiState::Running;
                let started = times.get(&(t, i));
                put.push(StoredTi {
                    start_date: started.map(|s| s.at).or(running.then_some(now)),
                    end_date: ti.state.is_finished().then_some(now),
                    hostname: started.and_then(|s| s.host.clone()),
                    ti,
                });
            }
        };
        for c in &changes {
            if let Change::Instances(t) = *c {
                replace.push(m.task(t).task_id.clone());
                for i in 0..m.instances(t) {
                    emit(t, i, &mut put);
                }
            }
        }
        for c in changes {
            if let Change::Ti(t, i) = c {
                if i < m.instances(t) {
                    emit(t, i, &mut put);
                }
            }
        }
        self.store
            .write_tis(&rec.dag_id, &rec.run_id, &replace, &put)?;
        Ok(put.len())
    }

    /// The report of a run as `weft dag test --json` prints it.
    pub fn report(&self, dag_id: &str, run_id: &str) -> Result<DagRunReport, SchedulerError> {
        let dag = self.dag(dag_id)?.clone();
        let rec =
            self.store
                .get_run(dag_id, run_id)?
                .ok_or_else(|| SchedulerError::UnknownRun {
                    dag_id: dag_id.into(),
                    run_id: run_id.into(),
                })?;
        let mut m = self.machine(&dag, &rec);
        m.restore(
            self.store
                .tis_of(dag_id, run_id)?
                .into_iter()
                .map(|s| s.ti)
                .collect(),
        );
        let dur = match (rec.start_date, rec.end_date) {
            (Some(s), Some(e)) => (e - s).num_microseconds().unwrap_or(0) as f64 / 1e6,
            _ => 0.0,
        };
        let mut r = m.report(dur);
        if rec.is_finished() {
            r.state = if rec.state == "success" {
                weft_dag::RunState::Success
            } else {
                weft_dag::RunState::Failed
            };
        }
        Ok(r)
    }

    /// Airflow's `depends_on_past`: a task instance starts only once the same task succeeded
    /// (or was skipped) in the DAG's previous run by logical date; `wait_for_downstream` also
    /// waits for that instance's immediate downstream. A first run, or a previous run without
    /// the task, does not hold it back.
    fn past_allows(
        &self,
        rec: &DagRunRecord,
        task: &weft_dag::Task,
    ) -> Result<bool, SchedulerError> {
        let flag = |k: &str| task.extra.get(k).and_then(Value::as_bool).unwrap_or(false);
        let (dop, wfd) = (flag("depends_on_past"), flag("wait_for_downstream"));
        if !dop && !wfd {
            return Ok(true);
        }
        let prev = self
            .store
            .runs_of(&rec.dag_id)?
            .into_iter()
            .filter(|r| r.logical_date < rec.logical_date)
            .max_by_key(|r| r.logical_date);
        let Some(prev) = prev else {
            return Ok(true);
        };
        let tis = self.store.tis_of(&prev.dag_id, &prev.run_id)?;
        let done = |id: &str| {
            tis.iter()
                .filter(|t| t.ti.task_id == id)
                .all(|t| matches!(t.ti.state, TiState::Success | TiState::Skipped))
        };
        if !done(&task.task_id) {
            return Ok(false);
        }
        Ok(!wfd || task.downstream.iter().all(|d| done(d)))
    }

    /// Whether a run of this loop's DAGs (not paused ones) is unfinished under a lease this
    /// loop does not hold: another scheduler runs it, or ran it until it died.
    fn unfinished_elsewhere(
        &self,
        own: &Ownership,
        paused: &HashSet<String>,
    ) -> Result<bool, SchedulerError> {
        Ok(self.store.unfinished_runs()?.iter().any(|r| {
            self.dags.contains_key(&r.dag_id)
                && !paused.contains(&r.dag_id)
                && !own.holds(&r.dag_id)
        }))
    }

    /// Run the loop (see the module docs) until `opts` says to return.
    pub fn run(&self, opts: &LoopOptions<'_>) -> Result<LoopStats, SchedulerError> {
        let (tx, rx) = mpsc::channel::<Msg>();
        let exec = self.exec;
        let out = std::thread::scope(|s| {
            let pool = WorkerPool::new(
                s,
                self.cfg.min_workers,
                self.cfg.max_workers,
                self.cfg.worker_idle_timeout,
            );
            let commit = if self.cfg.durable {
                self.store.committer()?
            } else {
                None
            };
            if let Some(c) = opts.control {
                c.attach(tx.clone());
            }
            let r = self.owned_loop(opts, &pool, exec, &tx, &rx, commit.as_deref());
            if let Some(c) = opts.control {
                c.detach();
            }
            let peak = pool.peak();
            drop(pool);
            r.map(|mut st| {
                st.peak_workers = peak;
                st
            })
        });
        if opts.abandon.is_some_and(|a| a.load(Ordering::SeqCst)) {
            return out;
        }
        // every worker has ended: callbacks and e-mail that finished after the last run are
        // still logged; requests that arrived too late are answered by their callers
        for m in rx.try_iter() {
            if let Msg::Callback {
                what,
                key: (dag_id, run_id, task_id, map_index, try_number),
                plugin,
                result,
            } = m
            {
                let entry = match &result {
                    Ok(v) => json!({"callback": what, "plugin": plugin, "result": v}),
                    Err(e) => json!({"callback": what, "plugin": plugin, "error": e}),
                };
                self.store
                    .append_log(&dag_id, &run_id, &task_id, map_index, try_number, entry)?;
            }
        }
        out
    }

    /// [`Self::run_loop`] under the loop's DAG leases: a scheduler (`schedule` or `adopt`)
    /// shares the loaded DAGs fairly with the other schedulers; a loop that runs given runs
    /// (`weft dag trigger`) takes the DAGs no scheduler holds (a run of a DAG another
    /// scheduler holds is run there, and the loop waits for its end). The leases are given up
    /// when the loop ends (not when it is abandoned).
    fn owned_loop<'scope, 'env>(
        &'env self,
        opts: &LoopOptions<'_>,
        pool: &WorkerPool<'scope, 'env>,
        exec: &'env dyn TryRunner,
        tx: &mpsc::Sender<Msg>,
        rx: &mpsc::Receiver<Msg>,
        commit: Option<&dyn crate::persistence::Committer>,
    ) -> Result<LoopStats, SchedulerError> {
        let register = opts.schedule || opts.adopt;
        let mut wanted: Vec<String> = self.dags.keys().cloned().collect();
        wanted.sort();
        let mut own = Ownership::new(
            self.leases.clone(),
            wanted,
            self.cfg.lease,
            self.cfg.tick,
            register,
        );
        let r = self.run_loop(opts, &mut own, pool, exec, tx, rx, commit);
        if opts.abandon.is_some_and(|a| a.load(Ordering::SeqCst)) {
            return r;
        }
        if let Err(SchedulerError::Fenced { dag_id, .. }) = &r {
            tracing::warn!(%dag_id, "another scheduler took this DAG over: stopping this loop");
        }
        if let Err(e) = own.retire() {
            tracing::warn!(error = %e, "cannot give the DAG leases up (they expire)");
        }
        r
    }

    /// Forgets the runs of `dag_id` this loop holds (the DAG was taken over or handed over):
    /// their tries in flight are stopped and their results will be ignored; nothing is
    /// written.
    #[allow(clippy::too_many_arguments)]
    fn forget_dag(
        dag_id: &str,
        active: &mut HashMap<u64, Active>,
        queued: &mut Vec<DagRunRecord>,
        heap: &mut BinaryHeap<Pending>,
        cancels: &mut HashMap<(u64, usize, usize), Arc<AtomicBool>>,
        pools: &mut Pools,
        running_per_dag: &mut HashMap<String, usize>,
        in_flight_total: &mut usize,
    ) {
        let ids: Vec<u64> = active
            .iter()
            .filter(|(_, a)| a.rec.dag_id == dag_id)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            let Some(a) = active.remove(&id) else {
                continue;
            };
            let tries: Vec<(u64, usize, usize)> =
                cancels.keys().filter(|k| k.0 == id).copied().collect();
            for k in tries {
                let task = a.m.task(k.1);
                pools.release(&task.pool, task.pool_slots);
                if let Some(c) = cancels.remove(&k) {
                    c.store(true, Ordering::SeqCst);
                }
            }
            *in_flight_total = in_flight_total.saturating_sub(a.in_flight);
        }
        running_per_dag.remove(dag_id);
        heap.retain(|p| active.contains_key(&p.run));
        queued.retain(|q| q.dag_id != dag_id);
    }

    /// Picks up the unfinished runs in the store that the loop does not know yet, of the DAGs
    /// `take` accepts (resumed as after a restart: running tries are lost tries).
    fn pick_up(
        &self,
        take: impl Fn(&str) -> bool,
        active: &mut HashMap<u64, Active>,
        queued: &mut Vec<DagRunRecord>,
        next_id: &mut u64,
    ) -> Result<(), SchedulerError> {
        for rec in self.store.unfinished_runs()? {
            if !self.dags.contains_key(&rec.dag_id) || !take(&rec.dag_id) {
                continue;
            }
            let known = active
                .values()
                .any(|a| a.rec.dag_id == rec.dag_id && a.rec.run_id == rec.run_id)
                || queued
                    .iter()
                    .any(|q| q.dag_id == rec.dag_id && q.run_id == rec.run_id);
            if known {
                continue;
            }
            if rec.state == "running" {
                let id = *next_id;
                *next_id += 1;
                active.insert(id, self.activate(rec, true)?);
            } else {
                queued.push(rec);
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_lines, clippy::too_many_arguments)]
    fn run_loop<'scope, 'env>(
        &'env self,
        opts: &LoopOptions<'_>,
        own: &mut Ownership,
        pool: &WorkerPool<'scope, 'env>,
        exec: &'env dyn TryRunner,
        tx: &mpsc::Sender<Msg>,
        rx: &mpsc::Receiver<Msg>,
        commit: Option<&dyn crate::persistence::Committer>,
    ) -> Result<LoopStats, SchedulerError> {
        let abandoned = || opts.abandon.is_some_and(|a| a.load(Ordering::SeqCst));
        let mut stats = LoopStats::default();
        let mut active: HashMap<u64, Active> = HashMap::new();
        let mut queued: Vec<DagRunRecord> = Vec::new();
        let mut next_id: u64 = 0;
        let mut heap: BinaryHeap<Pending> = BinaryHeap::new();
        let mut seq: i64 = 0;
        let mut pools = self.cfg.pools.clone();
        let mut running_per_dag: HashMap<String, usize> = HashMap::new();
        let mut in_flight_total = 0usize;
        let mut inbox: Vec<Msg> = Vec::new();
        // Pool slots of tries that ended, given back in the database once a pass.
        let mut slot_releases: Vec<SlotKey> = Vec::new();
        // Tries that ended this pass: their start times go once the pass is persisted.
        let mut ended_tries: Vec<(u64, usize, usize)> = Vec::new();
        let mut triggers: Vec<FileTrigger> = if opts.schedule {
            self.dags
                .values()
                .filter_map(|d| FileTrigger::of(d))
                .collect()
        } else {
            Vec::new()
        };
        // Timetable bookkeeping: the last scheduled interval per DAG.
        let mut last_interval: HashMap<String, Option<DataInterval>> = HashMap::new();
        let mut next_sla_check = Instant::now();
        // Set for one pass when idle, so due runs and new files are looked for once more.
        let mut idle_pass = false;
        // Runs created or cleared by another component on this store (the server's UI and
        // API) are picked up this often while scheduling.
        let mut next_adopt = Instant::now() + self.cfg.tick;
        // Asset queues are read once a tick (and on an idle pass), not on every pass.
        let mut next_asset_check = Instant::now();
        // The stop switch of each try in flight, by (run, task, instance).
        let mut cancels: HashMap<(u64, usize, usize), Arc<AtomicBool>> = HashMap::new();
        // Paused DAGs whose runs are held (`hold_paused`), read again every tick.
        let mut paused: HashSet<String> = HashSet::new();
        let mut next_paused_check = Instant::now();
        let mut next_metrics = Instant::now();

        // Resume unfinished runs of the DAGs this loop holds.
        own.renew()?;
        self.pick_up(|d| own.holds(d), &mut active, &mut queued, &mut next_id)?;
        let until: Option<HashSet<(String, String)>> = opts
            .until_runs
            .as_ref()
            .map(|v| v.iter().cloned().collect());

        loop {
            if abandoned() {
                return Ok(stats);
            }
            // 0. Renew the DAG leases: forget DAGs taken over, rebuild DAGs taken.
            if own.due() {
                let turn = own.renew()?;
                for d in &turn.lost {
                    tracing::warn!(dag_id = %d, "another scheduler took the DAG over");
                    Self::forget_dag(
                        d,
                        &mut active,
                        &mut queued,
                        &mut heap,
                        &mut cancels,
                        &mut pools,
                        &mut running_per_dag,
                        &mut in_flight_total,
                    );
                    last_interval.remove(d);
                }
                if !turn.gained.is_empty() {
                    for d in &turn.gained {
                        last_interval.remove(d);
                    }
                    tracing::info!(dags = ?turn.gained, "scheduling DAGs taken over");
                    let gained: HashSet<&String> = turn.gained.iter().collect();
                    self.pick_up(
                        |d| gained.contains(&d.to_string()),
                        &mut active,
                        &mut queued,
                        &mut next_id,
                    )?;
                }
            }
            let now_dt = Utc::now();
            if opts.hold_paused && Instant::now() >= next_paused_check {
                next_paused_check = Instant::now() + self.cfg.tick;
                paused.clear();
                for dag in self.dags.values() {
                    if self.is_paused(dag)? {
                        paused.insert(dag.dag_id.clone());
                    }
                }
            }

            // 1. New runs from timetables and file triggers.
            if opts.schedule {
                for dag in self.dags.values().filter(|d| own.schedules(&d.dag_id)) {
                    self.schedule_dag(dag, now_dt, &active, &mut queued, &mut last_interval)?;
                }
                if idle_pass || Instant::now() >= next_asset_check {
                    next_asset_check = Instant::now() + self.cfg.tick;
                    for dag in self.dags.values().filter(|d| own.schedules(&d.dag_id)) {
                        self.schedule_assets(dag, &active, &mut queued)?;
                    }
                }
                for trig in triggers
                    .iter_mut()
                    .filter(|t| own.schedules(&t.dag_id) && (idle_pass || t.due()))
                {
                    if let Some(dag) = self.dags.get(&trig.dag_id) {
                        if self.is_paused(dag)? {
                            continue;
                        }
                    }
                    for conf in trig.poll(&self.store)? {
                        let mut when = Utc::now();
                        // Distinct logical dates for files found in one poll.
                        loop {
                            match self.create_run(
                                &trig.dag_id,
                                when,
                                None,
                                conf.clone(),
                                Trigger::File,
                            ) {
                                Ok(r) => {
                                    queued.push(r);
                                    break;
                                }
                                Err(SchedulerError::RunExists { .. }) => {
                                    when += chrono::Duration::milliseconds(1);
                                }
                                Err(e) => return Err(e),
                            }
                        }
                    }
                }
            }

            // 1b. Adopt runs that appeared in the store meanwhile (triggered or cleared by the
            // server while this loop runs).
            // (at once when a TriggerDagRunOperator created a run, whatever the options)
            let triggered = self.cross.take_created();
            if triggered || ((opts.schedule || opts.adopt) && Instant::now() >= next_adopt) {
                next_adopt = Instant::now() + self.cfg.tick;
                self.pick_up(|d| own.schedules(d), &mut active, &mut queued, &mut next_id)?;
            }

            // 2. Start queued runs up to max_active_runs (oldest logical date first).
            if !queued.is_empty() {
                queued.sort_by_key(|r| r.logical_date);
                let mut keep = Vec::new();
                for rec in std::mem::take(&mut queued) {
                    let Some(dag) = self.dags.get(&rec.dag_id) else {
                        continue;
                    };
                    if paused.contains(&rec.dag_id) || !own.schedules(&rec.dag_id) {
                        // a paused DAG's queued runs stay queued (a DAG handed over: its
                        // next owner starts them)
                        keep.push(rec);
                        continue;
                    }
                    let n = active
                        .values()
                        .filter(|a| a.rec.dag_id == rec.dag_id)
                        .count();
                    if n < dag.max_active_runs.max(1) as usize {
                        let id = next_id;
                        next_id += 1;
                        active.insert(id, self.activate(rec, false)?);
                    } else {
                        keep.push(rec);
                    }
                }
                queued = keep;
            }

            let mut next_timeout: Option<f64> = None;
            // dagrun_timeout: the run fails and its unfinished instances are skipped.
            for a in active.values_mut() {
                if a.timed_out {
                    continue;
                }
                let dag = a.m.dag();
                let limit = dag
                    .extra
                    .get("dagrun_timeout")
                    .or_else(|| dag.extra.get("dagrun_timeout_sec"))
                    .and_then(|v| weft_dag::timetable::parse_duration(v).ok());
                let (Some(limit), Some(start)) = (limit, a.rec.start_date) else {
                    continue;
                };
                let deadline = epoch(start) + limit.as_secs_f64();
                next_timeout = Some(next_timeout.map_or(deadline, |d: f64| d.min(deadline)));
                if epoch(Utc::now()) > deadline {
                    a.timed_out = true;
                    let n = a.m.skip_unfinished();
                    tracing::warn!(dag_id = %a.rec.dag_id, run_id = %a.rec.run_id, skipped = n, "dag run timed out (dagrun_timeout)");
                }
            }

            // 3. Apply finished tries and callbacks.
            while let Ok(m) = rx.try_recv() {
                inbox.push(m);
            }
            for msg in std::mem::take(&mut inbox) {
                match msg {
                    Msg::Done {
                        run,
                        t,
                        i,
                        result,
                        elapsed,
                        log,
                        ended,
                        latency,
                    } => {
                        if let Some(l) = latency {
                            stats.dispatch_latencies.push(l);
                        }
                        cancels.remove(&(run, t, i));
                        let Some(a) = active.get_mut(&run) else {
                            continue;
                        };
                        a.in_flight -= 1;
                        in_flight_total -= 1;
                        stats.tries += 1;
                        let task = a.m.task(t).clone();
                        pools.release(&task.pool, task.pool_slots);
                        if let Some(c) = running_per_dag.get_mut(&a.rec.dag_id) {
                            *c -= 1;
                        }
                        let try_number = a.m.record(t, i).try_number;
                        let map_index = a.m.record(t, i).map_index;
                        if let Some(s) = a.started.get_mut(&(t, i)) {
                            s.host = Some(try_host(&log));
                        }
                        slot_releases.push(SlotKey {
                            dag_id: a.rec.dag_id.clone(),
                            run_id: a.rec.run_id.clone(),
                            task_id: task.task_id.clone(),
                            map_index,
                        });
                        for entry in log {
                            self.store.append_log(
                                &a.rec.dag_id,
                                &a.rec.run_id,
                                &task.task_id,
                                map_index,
                                try_number,
                                entry,
                            )?;
                        }
                        if a.timed_out {
                            continue;
                        }
                        if a.voided.remove(&(t, i)) {
                            // marked while it ran: the mark stands, the result is discarded
                            a.started.remove(&(t, i));
                            continue;
                        }
                        let error = result.as_ref().err().cloned();
                        let state = a.m.finish(t, i, result, elapsed, now_s());
                        if let Some(mx) = opts.metrics {
                            let labels = [a.rec.dag_id.as_str(), task.task_id.as_str()];
                            match state {
                                TiState::Success => mx.ti_successes.observe(&labels, 1.0),
                                TiState::Failed => mx.ti_failures.observe(&labels, 1.0),
                                _ => {}
                            }
                            if state.is_finished() || state == TiState::UpForRetry {
                                mx.task_duration.observe(&labels, elapsed);
                            }
                        }
                        // the start time is persisted with the end, then forgotten
                        ended_tries.push((run, t, i));
                        if state.is_finished() {
                            a.finished_at.insert(t, ended);
                        }
                        if let Some(f) = opts.on_change {
                            f(
                                &a.rec.run_id,
                                &weft_dag::ti_key(&task.task_id, map_index),
                                &a.rec.dag_id,
                                state,
                            );
                        }
                        let cb = match state {
                            TiState::Success => Some("on_success_callback"),
                            TiState::Failed => Some("on_failure_callback"),
                            TiState::UpForRetry => Some("on_retry_callback"),
                            TiState::Skipped => Some("on_skipped_callback"),
                            _ => None,
                        };
                        if super::email::wanted(&task, state.as_str()) {
                            let secrets = self
                                .secrets
                                .for_grant(task.grant.as_deref())
                                .unwrap_or_else(|| self.secrets.clone());
                            let (task, tx) = (task.clone(), tx.clone());
                            let (dag_id, run_id) = (a.rec.dag_id.clone(), a.rec.run_id.clone());
                            let exception = error
                                .as_ref()
                                .map(|e| format!("{}: {}", e.error, e.cause))
                                .unwrap_or_default();
                            let st = state.as_str();
                            pool.submit(Box::new(move || {
                                let ti = weft_dag::ti_key(&task.task_id, map_index);
                                let alert = super::email::Alert {
                                    dag_id: &dag_id,
                                    run_id: &run_id,
                                    ti: &ti,
                                    state: st,
                                    try_number,
                                    max_tries: task.retries + 1,
                                    exception: &exception,
                                };
                                let result = super::email::send_alert(&*secrets, &task, &alert)
                                    .map(|to| json!({"to": to}))
                                    .map_err(|e| {
                                        TaskFailure::new("Weft.EmailFailed", e.to_string())
                                    });
                                let key = (
                                    dag_id.clone(),
                                    run_id.clone(),
                                    task.task_id.clone(),
                                    map_index,
                                    try_number,
                                );
                                let _ = tx.send(Msg::Callback {
                                    what: "email".into(),
                                    key,
                                    plugin: super::email::SMTP_CONN.into(),
                                    result,
                                });
                            }));
                        }
                        if let Some(name) = cb {
                            if let Some(v) = task.extra.get(name) {
                                let ctx = json!({
                                    "callback": name, "dag_id": a.rec.dag_id, "run_id": a.rec.run_id,
                                    "task_id": task.task_id, "map_index": map_index,
                                    "try_number": try_number, "state": state.as_str(),
                                    "logical_date": iso(&a.rec.logical_date),
                                    "exception": error.as_ref().filter(|e| e.error != SENSOR_NOT_READY),
                                });
                                let key = (
                                    a.rec.dag_id.clone(),
                                    a.rec.run_id.clone(),
                                    task.task_id.clone(),
                                    map_index,
                                    try_number,
                                );
                                self.fire_callbacks(
                                    pool,
                                    exec,
                                    tx,
                                    name,
                                    v,
                                    task.grant.clone(),
                                    ctx,
                                    key,
                                );
                            }
                        }
                        if state == TiState::Success {
                            let events = a.m.take_asset_events(t, i);
                            self.emit_outlets(&a.rec, &task, map_index, events)?;
                            if let Some(miss) = self.check_sla_on_finish(a, &task)? {
                                self.sla_callback(a, &task.task_id, miss, pool, exec, tx);
                            }
                        }
                    }
                    Msg::Callback {
                        what,
                        key,
                        plugin,
                        result,
                    } => {
                        let (dag_id, run_id, task_id, map_index, try_number) = key;
                        let entry = match &result {
                            Ok(v) => json!({"callback": what, "plugin": plugin, "result": v}),
                            Err(e) => {
                                tracing::warn!(%dag_id, %run_id, %task_id, callback = %what, %plugin, error = %e.error, cause = %e.cause, "callback failed");
                                json!({"callback": what, "plugin": plugin, "error": e})
                            }
                        };
                        self.store
                            .append_log(&dag_id, &run_id, &task_id, map_index, try_number, entry)?;
                    }
                    Msg::Control(req, reply) => {
                        let r = self.control_in_loop(&req, &mut active, &mut queued, &cancels);
                        if let Err(e) = &r {
                            tracing::warn!(error = %e, "a change to a DAG run was refused");
                        }
                        let _ = reply.send(r);
                    }
                }
            }

            // 4. What is ready now.
            let mut progressed: HashSet<u64> = HashSet::new();
            let now = now_s();
            for (&id, a) in active.iter_mut() {
                let p = a.m.poll(now);
                if p.progressed {
                    progressed.insert(id);
                }
                let older = -a.rec.logical_date.timestamp_micros();
                for (t, i) in p.ready {
                    seq += 1;
                    heap.push(Pending {
                        priority: a.m.priority(t),
                        older,
                        seq: -seq,
                        run: id,
                        t,
                        i,
                    });
                }
            }

            // 5. Dispatch by priority within parallelism, max_active_tasks and pools.
            let stopping = opts.stop.is_some_and(|s| s.load(Ordering::SeqCst));
            if stopping {
                self.cross.stop();
            }
            let mut jobs = Vec::new();
            let mut set_aside = Vec::new();
            // Chosen instances hold their slots in this loop's accounting until the database
            // grants their pool slots (one transaction for the pass); then they start.
            let mut chosen: Vec<Pending> = Vec::new();
            let mut asks: Vec<SlotAsk> = Vec::new();
            let mut picked: HashSet<(u64, usize, usize)> = HashSet::new();
            while !stopping && in_flight_total + chosen.len() < self.cfg.parallelism {
                let Some(p) = heap.pop() else { break };
                if picked.contains(&(p.run, p.t, p.i)) {
                    continue;
                }
                let Some(a) = active.get_mut(&p.run) else {
                    continue;
                };
                if !a.m.startable(p.t, p.i) {
                    continue;
                }
                if paused.contains(&a.rec.dag_id) || !own.schedules(&a.rec.dag_id) {
                    // a paused DAG (or one being handed over) starts no new task instance
                    set_aside.push(p);
                    continue;
                }
                if !self.past_allows(&a.rec, a.m.task(p.t))? {
                    // depends_on_past / wait_for_downstream: wait for the previous run
                    set_aside.push(p);
                    continue;
                }
                let task = a.m.task(p.t);
                let dag_running = running_per_dag.get(&a.rec.dag_id).copied().unwrap_or(0);
                if dag_running >= a.m.dag().max_active_tasks.max(1) as usize {
                    set_aside.push(p);
                    continue;
                }
                match pools.check(&task.pool, task.pool_slots) {
                    PoolCheck::Ok => {}
                    PoolCheck::Full => {
                        set_aside.push(p);
                        continue;
                    }
                    PoolCheck::Impossible(why) => {
                        a.m.fail_now(p.t, p.i, TaskFailure::new("Weft.PoolUnavailable", why));
                        progressed.insert(p.run);
                        continue;
                    }
                }
                pools.take(&task.pool, task.pool_slots);
                *running_per_dag.entry(a.rec.dag_id.clone()).or_default() += 1;
                asks.push(SlotAsk {
                    key: SlotKey {
                        dag_id: a.rec.dag_id.clone(),
                        run_id: a.rec.run_id.clone(),
                        task_id: task.task_id.clone(),
                        map_index: a.m.record(p.t, p.i).map_index,
                    },
                    pool: task.pool.clone(),
                    total: pools.size(&task.pool).unwrap_or(0),
                    slots: task.pool_slots,
                });
                picked.insert((p.run, p.t, p.i));
                chosen.push(p);
            }
            // the pools' slots among every scheduler's tries (the slots of tries that ended
            // go back first, in the same transaction)
            let granted = self
                .leases
                .take_slots(&std::mem::take(&mut slot_releases), &asks)?;
            for ((p, ask), ok) in chosen.into_iter().zip(asks).zip(granted) {
                let Some(a) = active.get_mut(&p.run) else {
                    continue;
                };
                let started = if ok {
                    a.m.start(p.t, p.i, now).ok()
                } else {
                    None
                };
                let Some(inv) = started else {
                    pools.release(&ask.pool, ask.slots);
                    if let Some(c) = running_per_dag.get_mut(&a.rec.dag_id) {
                        *c = c.saturating_sub(1);
                    }
                    if ok {
                        slot_releases.push(ask.key);
                    } else {
                        set_aside.push(p);
                    }
                    continue;
                };
                progressed.insert(p.run);
                {
                    let task = a.m.task(p.t);
                    if let Some(v) = task.extra.get("on_execute_callback").cloned() {
                        let ctx = json!({
                            "callback": "on_execute_callback", "dag_id": a.rec.dag_id,
                            "run_id": a.rec.run_id, "task_id": task.task_id,
                            "map_index": inv.map_index, "try_number": inv.try_number,
                            "state": "running", "logical_date": iso(&a.rec.logical_date),
                        });
                        let key = (
                            a.rec.dag_id.clone(),
                            a.rec.run_id.clone(),
                            task.task_id.clone(),
                            inv.map_index,
                            inv.try_number,
                        );
                        let grant = task.grant.clone();
                        self.fire_callbacks(
                            pool,
                            exec,
                            tx,
                            "on_execute_callback",
                            &v,
                            grant,
                            ctx,
                            key,
                        );
                    }
                    a.in_flight += 1;
                    in_flight_total += 1;
                    a.started.insert(
                        (p.t, p.i),
                        TryStart {
                            at: now,
                            host: None,
                        },
                    );
                    // Latency: from the last upstream's end to this try's start.
                    let last = a.m.dag().tasks[p.t]
                        .upstream
                        .iter()
                        .filter_map(|u| a.m.dag().tasks.get_index_of(u))
                        .filter_map(|u| a.finished_at.get(&u).copied())
                        .max();
                    if let Some(f) = opts.on_change {
                        f(
                            &a.rec.run_id,
                            &inv.display_id(),
                            &a.rec.dag_id,
                            TiState::Running,
                        );
                    }
                    jobs.push((p.run, p.t, p.i, inv, last));
                }
            }
            for p in set_aside {
                heap.push(p);
            }
            if let Some(mx) = opts.metrics.filter(|_| Instant::now() >= next_metrics) {
                next_metrics = Instant::now() + self.cfg.tick;
                Self::gauges(
                    mx,
                    &active,
                    &heap,
                    &pools,
                    in_flight_total,
                    self.cfg.parallelism,
                );
            }

            // 6. Commit the pass, then act on it.
            let mut wrote = 0;
            for a in active.values_mut() {
                wrote += self.persist(&mut a.m, &a.rec, &a.started)?;
            }
            for (run, t, i) in ended_tries.drain(..) {
                if let Some(a) = active.get_mut(&run) {
                    a.started.remove(&(t, i));
                }
            }
            if wrote > 0 {
                if let Some(c) = commit {
                    c.nudge(); // flushed on the committer's thread while the tries run
                }
            }
            for (run, t, i, inv, last) in jobs {
                let tx = tx.clone();
                let cross = self.cross.clone();
                let stop = Arc::new(AtomicBool::new(false));
                cancels.insert((run, t, i), stop.clone());
                pool.submit(Box::new(move || {
                    let latency = last.map(|l| l.elapsed().as_secs_f64());
                    let (result, elapsed, log) = run_try(exec, &cross, &inv, &stop);
                    let _ = tx.send(Msg::Done {
                        run,
                        t,
                        i,
                        result,
                        elapsed,
                        log,
                        ended: Instant::now(),
                        latency,
                    });
                }));
            }

            // 7. Finish runs with nothing left to do.
            let mut done_ids = Vec::new();
            for (&id, a) in active.iter() {
                if a.in_flight > 0 {
                    continue;
                }
                let deadlocked = a.m.unfinished() > 0
                    && !progressed.contains(&id)
                    && !a.m.has_waiting()
                    && !heap.iter().any(|p| p.run == id);
                if a.m.unfinished() == 0 || deadlocked {
                    done_ids.push(id);
                }
            }
            for id in done_ids {
                let Some(mut a) = active.remove(&id) else {
                    continue;
                };
                heap.retain(|p| p.run != id);
                let state = match a.marked {
                    Some("success") => weft_dag::RunState::Success,
                    Some(_) => weft_dag::RunState::Failed,
                    None if a.timed_out => weft_dag::RunState::Failed,
                    None => a.m.run_state(),
                };
                a.rec.state = state.as_str().into();
                a.rec.end_date = Some(Utc::now());
                if let (Some(mx), Some(start)) = (opts.metrics, a.rec.start_date) {
                    let secs = (Utc::now() - start).num_microseconds().unwrap_or(0) as f64 / 1e6;
                    let series = if state == weft_dag::RunState::Success {
                        &mx.dagrun_duration_success
                    } else {
                        &mx.dagrun_duration_failed
                    };
                    series.observe(&[a.rec.dag_id.as_str()], secs.max(0.0));
                }
                self.store.put_run(&a.rec)?;
                self.store.flush()?;
                stats.runs_finished += 1;
                let trace_id = crate::telemetry::dag_trace_id(&a.rec.dag_id, &a.rec.run_id, None);
                tracing::info!(dag_id = %a.rec.dag_id, run_id = %a.rec.run_id, trace_id = %trace_id, state = state.as_str(), "dag run finished");
                let end = std::time::SystemTime::now();
                crate::telemetry::dag_run(&crate::telemetry::DagRunSpan {
                    trace: &trace_id,
                    dag_id: &a.rec.dag_id,
                    run_id: &a.rec.run_id,
                    start: a.rec.start_date.map_or(end, std::time::SystemTime::from),
                    end,
                    state: state.as_str(),
                });
                let name = if state == weft_dag::RunState::Success {
                    "on_success_callback"
                } else {
                    "on_failure_callback"
                };
                if let Some(v) = a.m.dag().extra.get(name) {
                    let ctx = json!({
                        "callback": name, "dag_id": a.rec.dag_id, "run_id": a.rec.run_id,
                        "task_id": "", "state": state.as_str(),
                        "logical_date": iso(&a.rec.logical_date),
                    });
                    let key = (
                        a.rec.dag_id.clone(),
                        a.rec.run_id.clone(),
                        "__dag__".into(),
                        -1,
                        0,
                    );
                    self.fire_callbacks(pool, exec, tx, name, v, None, ctx, key);
                }
            }

            // 7b. Hand drained DAGs over once their tries are back.
            let drained: Vec<String> = own
                .draining()
                .filter(|d| {
                    !active.iter().any(|(id, a)| {
                        &a.rec.dag_id == *d
                            && (a.in_flight > 0 || cancels.keys().any(|k| k.0 == *id))
                    })
                })
                .cloned()
                .collect();
            for d in drained {
                Self::forget_dag(
                    &d,
                    &mut active,
                    &mut queued,
                    &mut heap,
                    &mut cancels,
                    &mut pools,
                    &mut running_per_dag,
                    &mut in_flight_total,
                );
                last_interval.remove(&d);
                own.hand_over(&d)?;
                tracing::info!(dag_id = %d, "DAG handed over");
            }

            // SLA misses of running tasks (checked once a second).
            if Instant::now() >= next_sla_check {
                next_sla_check = Instant::now() + Duration::from_secs(1);
                for a in active.values() {
                    self.check_slas(a, pool, exec, tx)?;
                }
            }

            // 8. Return?
            if stopping && in_flight_total == 0 {
                break;
            }
            if let Some(u) = &until {
                let mut pending = false;
                for (d, r) in u {
                    pending = pending
                        || active
                            .values()
                            .any(|a| &a.rec.dag_id == d && &a.rec.run_id == r)
                        || queued.iter().any(|q| &q.dag_id == d && &q.run_id == r)
                        // a run of a DAG another scheduler holds: it runs it
                        || (!own.holds(d)
                            && self.store.get_run(d, r)?.is_some_and(|x| !x.is_finished()));
                    if pending {
                        break;
                    }
                }
                if !pending && in_flight_total == 0 {
                    break;
                }
            }
            // held runs of paused DAGs do not keep the loop busy
            let idle = active
                .values()
                .all(|a| paused.contains(&a.rec.dag_id) && a.in_flight == 0)
                && queued.iter().all(|q| paused.contains(&q.dag_id))
                // (a run another scheduler holds is not done: it may be a dead one's, which
                // this loop takes over once the lease runs out)
                && !(opts.until_idle && self.unfinished_elsewhere(own, &paused)?);
            if opts.until_idle && idle && in_flight_total == 0 {
                if idle_pass || !opts.schedule {
                    break;
                }
                idle_pass = true;
                continue;
            }
            idle_pass = false;

            // 9. Wait for a completion or the next timer; poll again at once after a change.
            let mut wait = if progressed.is_empty() || stopping {
                self.cfg.tick
            } else {
                Duration::ZERO
            };
            if let Some(d) = next_timeout {
                wait = wait.min(Duration::from_secs_f64((d - now_s()).max(0.0)));
            }
            for a in active.values() {
                if let Some(w) = a.m.next_wakeup() {
                    let d = (w - now_s()).max(0.0);
                    wait = wait.min(Duration::from_secs_f64(d));
                }
            }
            if wait.is_zero() {
                while let Ok(m) = rx.try_recv() {
                    inbox.push(m);
                }
            } else if let Ok(m) = rx.recv_timeout(wait) {
                inbox.push(m);
                while let Ok(m) = rx.try_recv() {
                    inbox.push(m);
                }
            }
            if abandoned() {
                return Ok(stats);
            }
        }
        Ok(stats)
    }

    /// One tick's gauges: a heartbeat, the executor's slots and tasks, each pool's slots.
    fn gauges(
        mx: &crate::metrics::DagMetrics,
        active: &HashMap<u64, Active>,
        heap: &BinaryHeap<Pending>,
        pools: &Pools,
        in_flight: usize,
        parallelism: usize,
    ) {
        mx.scheduler_heartbeat.observe(&[], 1.0);
        mx.executor_open_slots
            .set(&[], parallelism.saturating_sub(in_flight) as f64);
        mx.executor_queued_tasks.set(&[], heap.len() as f64);
        mx.executor_running_tasks.set(&[], in_flight as f64);
        let mut queued: HashMap<&str, u64> = HashMap::new();
        for p in heap.iter() {
            if let Some(a) = active.get(&p.run) {
                let task = a.m.task(p.t);
                *queued.entry(task.pool.as_str()).or_default() += u64::from(task.pool_slots);
            }
        }
        for (name, slots) in pools.sizes() {
            let used = pools.used(&name);
            mx.pool_open_slots
                .set(&[name.as_str()], f64::from(slots.saturating_sub(used)));
            mx.pool_running_slots.set(&[name.as_str()], f64::from(used));
            mx.pool_queued_slots.set(
                &[name.as_str()],
                queued.get(name.as_str()).copied().unwrap_or(0) as f64,
            );
        }
    }

    /// Applies a [`ControlRequest`] inside the loop: to the machine of an active run (tries it
    /// overrides are stopped and their results discarded; a marked run ends once they are
    /// back), else to the store ([`Scheduler::apply_control`]).
    fn control_in_loop(
        &self,
        req: &ControlRequest,
        active: &mut HashMap<u64, Active>,
        queued: &mut Vec<DagRunRecord>,
        cancels: &HashMap<(u64, usize, usize), Arc<AtomicBool>>,
    ) -> Result<control::Changed, SchedulerError> {
        let (dag_id, run_id) = req.run();
        let Some((&id, a)) = active
            .iter_mut()
            .find(|(_, a)| a.rec.dag_id == dag_id && a.rec.run_id == run_id)
        else {
            let r = self.apply_control(req)?;
            // a queued run this loop knows: its record again (a marked one is finished)
            if let Some(pos) = queued
                .iter()
                .position(|q| q.dag_id == dag_id && q.run_id == run_id)
            {
                match self.store.get_run(dag_id, run_id)? {
                    Some(fresh) if !fresh.is_finished() => queued[pos] = fresh,
                    _ => {
                        queued.remove(pos);
                    }
                }
            }
            return Ok(r);
        };
        let mut changed = Vec::new();
        let marks: Vec<(usize, usize, TiState)> = match req {
            ControlRequest::MarkTis { tis, state, .. } => control::select(&a.m, tis)?
                .into_iter()
                .map(|(t, i)| (t, i, *state))
                .collect(),
            ControlRequest::MarkRun { mark, .. } => {
                a.marked = Some(mark.as_str());
                a.rec.state = mark.as_str().into();
                a.rec.end_date = Some(Utc::now());
                control::run_marks(&a.m, *mark)
            }
            ControlRequest::RunNote { note, .. } => {
                a.rec.note = note.clone();
                Vec::new()
            }
            ControlRequest::TiNote {
                task_id,
                map_index,
                note,
                ..
            } => {
                let (t, i) = control::select(&a.m, &[(task_id.clone(), Some(*map_index))])?[0];
                a.m.set_note(t, i, note.clone());
                changed.push(control::key(&a.m, t, i));
                Vec::new()
            }
        };
        for (t, i, s) in marks {
            let was = a.m.state(t, i);
            if !a.m.mark(t, i, s) {
                continue;
            }
            if was == TiState::Running {
                a.voided.insert((t, i));
                if let Some(c) = cancels.get(&(id, t, i)) {
                    c.store(true, Ordering::SeqCst);
                }
                let r = a.m.record(t, i);
                self.store.append_log(
                    &a.rec.dag_id,
                    &a.rec.run_id,
                    &r.task_id,
                    r.map_index,
                    r.try_number,
                    json!({"error": {"error": "Weft.Marked", "cause": format!("the task instance was marked {} while this try ran: the try was stopped", s.as_str())}}),
                )?;
            }
            changed.push(control::key(&a.m, t, i));
        }
        self.persist(&mut a.m, &a.rec, &a.started)?;
        self.store.put_run(&a.rec)?;
        self.store.flush()?;
        tracing::info!(
            dag_id,
            run_id,
            changed = changed.len(),
            "dag run changed from outside the loop"
        );
        Ok(changed)
    }

    /// Load a run into a machine; with `resume`, instances that were running are failed as
    /// lost tries (retried if they have retries left).
    fn activate(&self, mut rec: DagRunRecord, resume: bool) -> Result<Active, SchedulerError> {
        let dag = self.dag(&rec.dag_id)?.clone();
        let mut m = self.machine(&dag, &rec);
        let stored = self.store.tis_of(&rec.dag_id, &rec.run_id)?;
        let lost = m.restore(stored.into_iter().map(|s| s.ti).collect());
        m.take_changes();
        let now = now_s();
        for (t, i) in lost {
            let r = m.record(t, i);
            if r.try_number > 0 {
                self.store.append_log(
                    &rec.dag_id,
                    &rec.run_id,
                    &r.task_id,
                    r.map_index,
                    r.try_number,
                    json!({"error": {"error": "Weft.TaskLost", "cause": "the scheduler process stopped while this try was running"}}),
                )?;
            }
            let s = m.fail_lost(t, i, now);
            tracing::warn!(dag_id = %rec.dag_id, run_id = %rec.run_id, task = %m.task(t).task_id, state = s.as_str(), "task instance was running when the scheduler stopped");
        }
        if rec.state != "running" {
            rec.state = "running".into();
            rec.start_date = Some(Utc::now());
            self.store.put_run(&rec)?;
        }
        if resume {
            tracing::info!(dag_id = %rec.dag_id, run_id = %rec.run_id, "resuming dag run");
        }
        let mut a = Active {
            rec,
            m,
            in_flight: 0,
            started: HashMap::new(),
            finished_at: HashMap::new(),
            timed_out: false,
            voided: HashSet::new(),
            marked: None,
        };
        self.persist(&mut a.m, &a.rec, &HashMap::new())?;
        Ok(a)
    }

    /// Queue the runs the DAG's timetable asks for, within max_active_runs.
    fn schedule_dag(
        &self,
        dag: &Arc<Dag>,
        now: DateTime<Utc>,
        active: &HashMap<u64, Active>,
        queued: &mut Vec<DagRunRecord>,
        last_interval: &mut HashMap<String, Option<DataInterval>>,
    ) -> Result<(), SchedulerError> {
        if matches!(dag.schedule, weft_dag::Schedule::Never) || self.is_paused(dag)? {
            return Ok(());
        }
        let mut count = active
            .values()
            .filter(|a| a.rec.dag_id == dag.dag_id)
            .count()
            + queued.iter().filter(|q| q.dag_id == dag.dag_id).count();
        let max = dag.max_active_runs.max(1) as usize;
        if count >= max {
            return Ok(());
        }
        if !last_interval.contains_key(&dag.dag_id) {
            let last = self
                .store
                .last_run(&dag.dag_id, &["scheduled"])?
                .map(|r| DataInterval {
                    start: r.data_interval_start,
                    end: r.data_interval_end,
                });
            last_interval.insert(dag.dag_id.clone(), last);
        }
        while count < max {
            let last = last_interval.get(&dag.dag_id).copied().flatten();
            let Some(info) = dag.next_dagrun_info(last.as_ref(), now) else {
                break;
            };
            if info.run_after > now || last == Some(info.data_interval) {
                break;
            }
            last_interval.insert(dag.dag_id.clone(), Some(info.data_interval));
            match self.create_run(
                &dag.dag_id,
                info.logical_date,
                Some(info.data_interval),
                Map::new(),
                Trigger::Scheduled,
            ) {
                Ok(rec) => {
                    queued.push(rec);
                    count += 1;
                }
                Err(SchedulerError::RunExists { .. }) => continue,
                Err(e) => return Err(e),
            }
            if matches!(dag.schedule, weft_dag::Schedule::Once) {
                break;
            }
        }
        Ok(())
    }

    /// Records the asset events of a task instance that succeeded (one per asset its
    /// `outlets` name, with the extra its callable set, then one per event its callable added
    /// through an alias) and queues each for the loaded DAGs whose condition names the asset or
    /// one of the aliases it came through.
    fn emit_outlets(
        &self,
        rec: &DagRunRecord,
        task: &weft_dag::Task,
        map_index: i64,
        emitted: Vec<weft_dag::OutletEvent>,
    ) -> Result<(), SchedulerError> {
        let (mut extras, through): (Vec<_>, Vec<_>) =
            emitted.into_iter().partition(|e| e.aliases.is_empty());
        let plain = super::assets::outlets_of(task).into_iter().map(|uri| {
            let extra = extras
                .iter_mut()
                .find(|e| e.uri == uri)
                .map(|e| std::mem::take(&mut e.extra))
                .unwrap_or_default();
            (uri, extra, Vec::new())
        });
        let plain: Vec<_> = plain.collect();
        for (uri, extra, source_aliases) in plain
            .into_iter()
            .chain(through.into_iter().map(|e| (e.uri, e.extra, e.aliases)))
        {
            let consumers = super::assets::consumers_of_event(
                self.dags.values().map(|d| &**d),
                &uri,
                &source_aliases,
            );
            let ev = super::AssetEvent {
                id: 0,
                uri,
                extra,
                source_dag_id: Some(rec.dag_id.clone()),
                source_task_id: Some(task.task_id.clone()),
                source_run_id: Some(rec.run_id.clone()),
                source_map_index: map_index,
                source_aliases,
                timestamp: Utc::now(),
            };
            let ev = self.store.add_asset_event(&ev, &consumers)?;
            tracing::info!(dag_id = %rec.dag_id, run_id = %rec.run_id, task = %task.task_id, uri = %ev.uri, event_id = ev.id, consumers = consumers.len(), "asset event");
        }
        Ok(())
    }

    /// Creates a run of an asset-scheduled DAG whose condition holds over the assets with
    /// queued events, consuming those events (Airflow clears the DAG's whole queue when it
    /// creates the run); within `max_active_runs`, not while paused.
    fn schedule_assets(
        &self,
        dag: &Arc<Dag>,
        active: &HashMap<u64, Active>,
        queued: &mut Vec<DagRunRecord>,
    ) -> Result<(), SchedulerError> {
        let Some(cond) = super::assets::condition_of(dag) else {
            return Ok(());
        };
        if self.is_paused(dag)? {
            return Ok(());
        }
        let count = active
            .values()
            .filter(|a| a.rec.dag_id == dag.dag_id)
            .count()
            + queued.iter().filter(|q| q.dag_id == dag.dag_id).count();
        if count >= dag.max_active_runs.max(1) as usize {
            return Ok(());
        }
        let waiting = self.store.asset_queue(Some(&dag.dag_id))?;
        let holds = cond.eval_with(&|u| waiting.iter().any(|q| q.uri == u), &|a| {
            waiting
                .iter()
                .any(|q| q.source_aliases.iter().any(|s| s == a))
        });
        if waiting.is_empty() || !holds {
            return Ok(());
        }
        if let Some(rec) = self.create_asset_run(dag, &waiting)? {
            queued.push(rec);
        }
        Ok(())
    }

    /// Creates the asset-triggered run of `dag` from `waiting` (its queued events), consuming
    /// them; its data interval spans the events' timestamps, as Airflow's does.
    fn create_asset_run(
        &self,
        dag: &Arc<Dag>,
        waiting: &[super::QueuedAssetEvent],
    ) -> Result<Option<DagRunRecord>, SchedulerError> {
        let first = waiting.iter().map(|q| q.created_at).min();
        let last = waiting.iter().map(|q| q.created_at).max();
        let mut when = Utc::now();
        for _ in 0..1000 {
            let rec = DagRunRecord {
                dag_id: dag.dag_id.clone(),
                run_id: format!("{}__{}", Trigger::Asset.prefix(), iso(&when)),
                run_type: Trigger::Asset.as_str().into(),
                logical_date: when,
                data_interval_start: first.unwrap_or(when),
                data_interval_end: last.unwrap_or(when),
                state: "queued".into(),
                conf: Map::new(),
                queued_at: Utc::now(),
                start_date: None,
                end_date: None,
                note: None,
            };
            match self.store.create_asset_run(&rec, waiting) {
                Ok(()) => {
                    self.store.flush()?;
                    tracing::info!(dag_id = %rec.dag_id, run_id = %rec.run_id, events = waiting.len(), "asset-triggered dag run created");
                    return Ok(Some(rec));
                }
                Err(SchedulerError::RunExists { .. }) => {
                    when += chrono::Duration::milliseconds(1);
                }
                // another scheduler created the run from these events
                Err(SchedulerError::AssetEventsTaken(_)) => return Ok(None),
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    #[allow(clippy::too_many_arguments)]
    fn fire_callbacks<'scope, 'env>(
        &'env self,
        pool: &WorkerPool<'scope, 'env>,
        exec: &'env dyn TryRunner,
        tx: &mpsc::Sender<Msg>,
        what: &str,
        spec: &Value,
        grant: Option<String>,
        ctx: Value,
        key: (String, String, String, i64, u32),
    ) {
        for plugin in callback_plugins(spec).unwrap_or_default() {
            let tx = tx.clone();
            let ctx = ctx.clone();
            let key = key.clone();
            let what = what.to_string();
            let grant = grant.clone();
            pool.submit(Box::new(move || {
                let result = exec.run_callback(&plugin, grant.as_deref(), &ctx);
                let _ = tx.send(Msg::Callback {
                    what,
                    key,
                    plugin,
                    result,
                });
            }));
        }
    }

    fn sla_deadline(a: &Active, sla: &Value) -> Option<f64> {
        let d = weft_dag::timetable::parse_duration(sla).ok()?;
        let start = a.rec.start_date.map(epoch)?;
        Some(start + d.as_secs_f64())
    }

    /// A task that succeeded after its SLA deadline missed it too; returns the new miss.
    fn check_sla_on_finish(
        &self,
        a: &Active,
        t: &weft_dag::Task,
    ) -> Result<Option<Value>, SchedulerError> {
        let Some(deadline) = t.extra.get("sla").and_then(|v| Self::sla_deadline(a, v)) else {
            return Ok(None);
        };
        let now = now_s();
        if now <= deadline {
            return Ok(None);
        }
        let rec = json!({"dag_id": a.rec.dag_id, "run_id": a.rec.run_id, "task_id": t.task_id,
            "deadline": deadline, "recorded_at": now, "late_finish": true});
        if self
            .store
            .record_sla_miss(&a.rec.dag_id, &a.rec.run_id, &t.task_id, &rec)?
        {
            tracing::warn!(dag_id = %a.rec.dag_id, run_id = %a.rec.run_id, task = %t.task_id, "SLA missed");
            return Ok(Some(rec));
        }
        Ok(None)
    }

    /// Call the DAG's `sla_miss_callback` for a recorded miss.
    fn sla_callback<'scope, 'env>(
        &'env self,
        a: &Active,
        task_id: &str,
        miss: Value,
        pool: &WorkerPool<'scope, 'env>,
        exec: &'env dyn TryRunner,
        tx: &mpsc::Sender<Msg>,
    ) {
        if let Some(v) = a.m.dag().extra.get("sla_miss_callback") {
            let ctx = json!({"callback": "sla_miss_callback", "dag_id": a.rec.dag_id,
                "run_id": a.rec.run_id, "task_id": task_id, "sla_miss": miss,
                "logical_date": iso(&a.rec.logical_date)});
            let key = (
                a.rec.dag_id.clone(),
                a.rec.run_id.clone(),
                task_id.to_string(),
                -1,
                0,
            );
            self.fire_callbacks(pool, exec, tx, "sla_miss_callback", v, None, ctx, key);
        }
    }

    fn check_slas<'scope, 'env>(
        &'env self,
        a: &Active,
        pool: &WorkerPool<'scope, 'env>,
        exec: &'env dyn TryRunner,
        tx: &mpsc::Sender<Msg>,
    ) -> Result<(), SchedulerError> {
        let now = now_s();
        for (t, task) in a.m.dag().tasks.values().enumerate() {
            let Some(sla) = task.extra.get("sla") else {
                continue;
            };
            let Some(deadline) = Self::sla_deadline(a, sla) else {
                continue;
            };
            if now <= deadline {
                continue;
            }
            let done = (0..a.m.instances(t))
                .all(|i| matches!(a.m.state(t, i), TiState::Success | TiState::Skipped));
            if done {
                continue;
            }
            let rec = json!({"dag_id": a.rec.dag_id, "run_id": a.rec.run_id, "task_id": task.task_id,
                "deadline": deadline, "recorded_at": now, "late_finish": false});
            if self
                .store
                .record_sla_miss(&a.rec.dag_id, &a.rec.run_id, &task.task_id, &rec)?
            {
                tracing::warn!(dag_id = %a.rec.dag_id, run_id = %a.rec.run_id, task = %task.task_id, "SLA missed");
                self.sla_callback(a, &task.task_id, rec, pool, exec, tx);
            }
        }
        Ok(())
    }
}

/// Run a try on a worker. A sensor in `poke` mode keeps its slot and pokes every interval until
/// it succeeds or times out; in `reschedule` mode it pokes once and gives the slot back. Setting
/// `stop` stops the try (the sandbox's guest, a remote worker's try, the pokes).
fn run_try(
    exec: &dyn TryRunner,
    cross: &super::cross_dag::CrossDag,
    inv: &weft_dag::TaskInvocation,
    stop: &Arc<AtomicBool>,
) -> (Result<Value, TaskFailure>, f64, Vec<Value>) {
    let started = Instant::now();
    if inv.operator == weft_dag::builtin::TRIGGER_DAG_RUN {
        let r = cross.trigger(inv);
        let log = r
            .as_ref()
            .err()
            .map(|e| json!({"error": e}))
            .into_iter()
            .collect();
        return (r, started.elapsed().as_secs_f64(), log);
    }
    let cancel: crate::plugin_host::Cancel = {
        let stop = stop.clone();
        Arc::new(move || stop.load(Ordering::SeqCst))
    };
    // EmptyOperator and the other built-ins run here, whatever the runner
    if inv.operator != weft_dag::builtin::EXTERNAL_TASK_SENSOR {
        if let Some(r) = weft_dag::builtin::execute(inv) {
            return (r, started.elapsed().as_secs_f64(), Vec::new());
        }
    }
    let mut logs = Vec::new();
    let mut pokes = 0u32;
    loop {
        let mut out = if inv.operator == weft_dag::builtin::EXTERNAL_TASK_SENSOR {
            super::runner::TryOutcome {
                result: cross.poke_external(inv),
                log: Value::Null,
            }
        } else {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                exec.run_try_cancellable(inv, &cancel)
            }))
            .unwrap_or_else(|_| super::runner::TryOutcome {
                result: Err(TaskFailure::new(
                    "Weft.ExecutorPanicked",
                    "the task executor panicked",
                )),
                log: Value::Null,
            })
        };
        // a try this loop stopped ends the same way wherever the stop found it: in the guest
        // (the sandbox interrupts it) or between a sensor's pokes
        if cancel() && matches!(&out.result, Err(f) if f.error == "Sandbox.Cancelled") {
            out.result = Err(TaskFailure::new("Weft.Cancelled", "the try was stopped"));
        }
        if !out.log.is_null() {
            logs.push(out.log);
        }
        let not_ready = matches!(&out.result, Err(f) if f.error == SENSOR_NOT_READY);
        if not_ready && !inv.sensor.reschedule {
            pokes += 1;
            let ran = inv.first_poke_elapsed + started.elapsed();
            if ran < inv.sensor.timeout {
                let key = inv.display_id();
                let wait = inv
                    .sensor
                    .next_interval(&inv.dag_id, &key, pokes, ran.as_secs_f64())
                    .min(inv.sensor.timeout.saturating_sub(ran));
                let until = Instant::now() + wait;
                while Instant::now() < until && !cancel() {
                    std::thread::sleep((until - Instant::now()).min(Duration::from_millis(100)));
                }
                if cancel() {
                    let f = TaskFailure::new("Weft.Cancelled", "the sensor's try was stopped");
                    logs.push(json!({"error": f}));
                    return (Err(f), started.elapsed().as_secs_f64(), logs);
                }
                continue;
            }
        }
        if let Err(e) = &out.result {
            if e.error != SENSOR_NOT_READY {
                logs.push(json!({"error": e}));
            }
        }
        return (out.result, started.elapsed().as_secs_f64(), logs);
    }
}
