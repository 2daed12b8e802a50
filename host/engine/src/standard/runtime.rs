//! The Standard-execution runtime: which executions run, on which threads, and what wakes
//! them ([`Runtime`], which also holds what the runs need: stores, plugin host, roles).
//!
//! An execution is driven by replay (see `crate::durable`): a worker runs the ASL
//! interpreter from the execution's input with the journal answering every task and timer that
//! already happened. A run ends by finishing the execution, or by suspending: a Wait or retry
//! back-off arms a timer here, a callback / activity / `.sync` child waits for its answer (at
//! the top level or inside Map and Parallel, whose other branches first finish or suspend too);
//! no thread is held meanwhile. Answers (SendTaskSuccess, an activity worker, a
//! child's end, a token's timeout) are journaled and committed, then the execution is scheduled
//! again. At start-up every RUNNING execution is scheduled, so a crash loses nothing that was
//! committed.
//!
//! Back-pressure: at most `max_running` runs at once (worker threads), at most `MAX_QUEUED`
//! executions waiting for a worker; StartExecution beyond that fails with
//! `ExecutionLimitExceeded`. This module owns the queue, the timers, the task-token and activity
//! records; the wire protocol stays in the server.

use super::error::RuntimeError;
use super::observer::Observer;
use super::records::*;
use super::runner::{DurableHistory, ExecutionTaskRunner};
use crate::buckets::BucketAccess;
use crate::durable::{Entry, ExecControl, GroupCommit, Journal, JournalingRunner, Suspension};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, Weak};
use std::time::Duration;
use weft_asl::{Hooks, RunOptions, StateError, SystemClock};

/// Executions waiting for a worker, at most.
pub const MAX_QUEUED: usize = 100_000;
/// Waits at least this long suspend the run instead of holding a thread.
pub const SUSPEND_AFTER: Duration = Duration::from_millis(250);

/// A task waiting for an answer from outside, by token (tree `sfn_tokens`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenRecord {
    /// The waiting execution.
    pub execution: String,
    /// Its journal key (`KEY@ATTEMPT`).
    pub key: String,
    /// TimeoutSeconds deadline.
    pub timeout_at_ms: Option<i64>,
    /// HeartbeatSeconds, in ms.
    pub heartbeat_ms: Option<u64>,
    /// Next heartbeat deadline.
    pub heartbeat_at_ms: Option<i64>,
    /// The activity this task waits on (GetActivityTask hands it out).
    pub activity: Option<String>,
    /// The activity input.
    pub input: Option<String>,
    /// The worker that claimed it.
    pub claimed_by: Option<String>,
    /// The waiting state's name and when it began waiting (for the web UI).
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub since_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Resume(String),
    Token(String),
}

struct Active {
    ctl: Arc<ExecControl>,
    /// Scheduled again while running: run once more after this run unwinds.
    rerun: bool,
}

struct QueueState {
    items: VecDeque<String>,
    workers: usize,
    idle: usize,
    closed: bool,
}

struct Queue {
    st: Mutex<QueueState>,
    cv: Condvar,
}

struct TimerState {
    set: BTreeSet<(i64, Timer)>,
    closed: bool,
}

struct Timers {
    st: Mutex<TimerState>,
    cv: Condvar,
}

/// The durable runtime of Standard executions and what it runs on: the stores, the
/// plugin host, roles, buckets and resource maps, the task dispatcher, and its own queue,
/// timers, task tokens and activities. One per process; the service around it (the HTTP
/// server) hears from it through [`Observer`]. Its DAG scheduler runs `weft:dag:ID` tasks
/// and the DAG folder (see [`super::dag_scheduler`]).
pub struct Runtime {
    pub store: Arc<weft_store::Store>,
    /// The database of the Step Functions stores and the DAG scheduler: the sled store of
    /// `store`, or PostgreSQL (`weft server --db`).
    pub database: crate::persistence::Database,
    /// This node's membership when the database is shared (see [`super::cluster`]).
    pub cluster: OnceLock<Arc<crate::persistence::pg::cluster::Cluster>>,
    /// State machines, versions, aliases, resource maps and tags.
    pub catalog: Arc<dyn crate::persistence::CatalogStore>,
    /// Execution records and their index by state machine and start time.
    pub executions: Arc<dyn crate::persistence::ExecutionRecords>,
    /// History events, task logs and run-recorded journal entries (written through
    /// [`crate::persistence::pending`]).
    pub history: Arc<dyn crate::persistence::history::HistoryStore>,
    /// The execution log (Express executions; Standard ones that ask for it; see
    /// [`super::execution_log`]).
    pub execution_log: Arc<dyn crate::persistence::AppendLog>,
    /// Map Runs: ARN -> execution and the limits `UpdateMapRun` set (see [`super::map_runs`]).
    pub map_runs: Arc<dyn crate::persistence::MapRunStore>,
    /// History events and task logs waiting for the next group commit.
    pub pending: Arc<crate::persistence::pending::Pending>,
    /// The plugin host, created on the first Task (creating the sandbox is not free).
    host: OnceLock<Result<Arc<crate::PluginHost>, String>>,
    pub roles: crate::Roles,
    /// Where relative `file:` grants are resolved.
    pub base_dir: PathBuf,
    /// The buckets of `$WEFT_HOME/buckets.json` (Distributed Map ItemReader/ResultWriter).
    pub buckets: Arc<crate::buckets::Buckets>,
    /// The mock configuration (`weft server --mock-config`): executions started on
    /// `ARN#TestCase` run with that test case's mocks (see [`weft_asl::mock`]).
    pub mocks: Option<Arc<weft_asl::mock::MockConfig>>,
    /// `$WEFT_HOME/resource-map.yaml`, read when the runtime starts.
    pub home_map: Arc<crate::resource_map::ResourceMap>,
    /// Where plugin tasks go when remote workers are connected (see [`super::dispatch`]).
    pub dispatch: Arc<dyn super::dispatch::TaskDispatch>,
    /// Who hears of executions, events and the execution role's decisions.
    pub observer: Arc<dyn Observer>,
    /// Marks and notes for the DAG runs the scheduler thread holds (see
    /// [`super::dag_scheduler`]).
    pub dag_control: crate::scheduler::Control,
    /// Airflow's scheduler metrics of the runtime's DAG scheduler.
    pub dag_metrics: Arc<crate::metrics::DagMetrics>,
    /// Every execution's journal, written back by the group committer (see
    /// [`crate::durable::JournalStore`]).
    pub journal: crate::durable::JournalStore,
    /// Task tokens waiting for an answer.
    pub tokens: Arc<dyn crate::persistence::tokens::TokenStore>,
    /// Activities.
    pub activities: Arc<dyn crate::persistence::tokens::ActivityStore>,
    pub commit: Arc<GroupCommit>,
    pub secret: [u8; 32],
    pub shutdown: Arc<AtomicBool>,
    active: Mutex<HashMap<String, Active>>,
    queue: Arc<Queue>,
    timers: Arc<Timers>,
    /// Activity name -> tokens not yet handed to a worker.
    activity_queue: Mutex<HashMap<String, VecDeque<String>>>,
    pub activity_ready: tokio::sync::Notify,
    /// Itself, for the threads it starts.
    me: OnceLock<Weak<Runtime>>,
    max_running: usize,
    /// At most this many runs of one state machine at once (`None`: no limit); the others
    /// wait in `per_sm` until one ends.
    per_sm_limit: Option<usize>,
    per_sm: Mutex<HashMap<String, (usize, VecDeque<String>)>>,
    /// Transitions-style counters for /metrics and benchmarks.
    pub runs: AtomicU64,
    /// Parsed definitions by their blake3 digest (a definition is parsed once, not per run).
    machines: Mutex<HashMap<[u8; 32], Arc<weft_asl::StateMachine>>>,
    /// The shared database when this node is one of several (`weft server --db`).
    shared: Option<crate::persistence::PgDatabase>,
}

/// How a [`Runtime`] is set up, besides its stores.
pub struct Settings {
    /// Executions running at once, at most (worker threads).
    pub max_running: usize,
    /// Runs of one state machine at once, at most (`None`:
    /// `WEFT_SERVER_MAX_RUNNING_PER_STATE_MACHINE`, else unbounded).
    pub per_state_machine: Option<usize>,
    /// The mock configuration, if any.
    pub mocks: Option<weft_asl::mock::MockConfig>,
    /// False: every plugin task of a Standard execution waits on its queue for a remote
    /// worker (`weft server --no-local-tasks`).
    pub local_tasks: bool,
    /// Where relative `file:` grants are resolved.
    pub base_dir: PathBuf,
    /// `$WEFT_HOME/buckets.json`'s buckets.
    pub buckets: Arc<crate::buckets::Buckets>,
    /// `$WEFT_HOME/resource-map.yaml`.
    pub home_map: Arc<crate::resource_map::ResourceMap>,
}

/// The parse cache is emptied when it holds this many definitions.
const MAX_CACHED_MACHINES: usize = 512;

impl Runtime {
    /// The parsed state machine of a definition, from the cache when it was parsed before.
    fn machine(&self, definition: &str) -> Result<Arc<weft_asl::StateMachine>, String> {
        let key = *blake3::hash(definition.as_bytes()).as_bytes();
        if let Some(m) = self
            .machines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return Ok(m.clone());
        }
        let m = Arc::new(weft_asl::parse(definition).map_err(|e| e.to_string())?);
        let mut cache = self.machines.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= MAX_CACHED_MACHINES {
            cache.clear();
        }
        cache.insert(key, m.clone());
        Ok(m)
    }

    /// The runtime over `store` (plugins, roles) and the Step Functions stores of `database`
    /// (see [`crate::persistence::sfn::SfnStores`]); nothing runs before [`Runtime::start`].
    pub fn new(
        store: Arc<weft_store::Store>,
        database: crate::persistence::Database,
        stores: &crate::persistence::sfn::SfnStores,
        settings: Settings,
        observer: Arc<dyn Observer>,
    ) -> Self {
        let shared = match &database {
            crate::persistence::Database::Postgres(pg) => Some(pg.clone()),
            crate::persistence::Database::Sled(_) => None,
        };
        let per_sm_limit = match settings.per_state_machine {
            Some(n) => Some(n),
            None => std::env::var("WEFT_SERVER_MAX_RUNNING_PER_STATE_MACHINE")
                .ok()
                .and_then(|v| v.parse::<usize>().ok()),
        };
        Runtime {
            roles: crate::Roles::new(vec![store.home().join("roles")]),
            store,
            database,
            cluster: OnceLock::new(),
            catalog: stores.catalog.clone(),
            executions: stores.executions.clone(),
            history: stores.history.clone(),
            execution_log: stores.execution_log.clone(),
            map_runs: stores.map_runs.clone(),
            pending: stores.pending.clone(),
            host: OnceLock::new(),
            base_dir: settings.base_dir,
            buckets: settings.buckets,
            mocks: settings.mocks.map(Arc::new),
            home_map: settings.home_map,
            dispatch: Arc::new(super::dispatch::MemoryDispatch::new(
                super::dispatch::MemoryDispatch::heartbeat_timeout_from_env(),
                settings.local_tasks,
            )),
            observer,
            dag_control: crate::scheduler::Control::default(),
            dag_metrics: Arc::new(crate::metrics::DagMetrics::default()),
            journal: stores.journal.clone(),
            tokens: stores.tokens.clone(),
            activities: stores.activities.clone(),
            commit: stores.commit.clone(),
            machines: Mutex::new(HashMap::new()),
            secret: stores.token_secret,
            shutdown: Arc::new(AtomicBool::new(false)),
            active: Mutex::new(HashMap::new()),
            queue: Arc::new(Queue {
                st: Mutex::new(QueueState {
                    items: VecDeque::new(),
                    workers: 0,
                    idle: 0,
                    closed: false,
                }),
                cv: Condvar::new(),
            }),
            timers: Arc::new(Timers {
                st: Mutex::new(TimerState {
                    set: BTreeSet::new(),
                    closed: false,
                }),
                cv: Condvar::new(),
            }),
            activity_queue: Mutex::new(HashMap::new()),
            activity_ready: tokio::sync::Notify::new(),
            me: OnceLock::new(),
            max_running: settings.max_running.max(1),
            per_sm_limit: per_sm_limit.filter(|n| *n > 0),
            per_sm: Mutex::new(HashMap::new()),
            runs: AtomicU64::new(0),
            shared,
        }
    }

    /// The plugin host, created on first use (creating the sandbox is not free).
    pub fn plugin_host(&self) -> Result<Arc<crate::PluginHost>, String> {
        self.host
            .get_or_init(|| {
                let sandbox = weft_sandbox::Sandbox::new(&weft_sandbox::SandboxConfig::default())
                    .map_err(|e| format!("sandbox: {e}"))?;
                crate::PluginHost::new(self.store.plugin_store(), Arc::new(sandbox))
                    .map(Arc::new)
                    .map_err(|e| e.to_string())
            })
            .clone()
    }

    /// The DAG scheduler's store on this runtime's database.
    pub fn dag_store(
        &self,
    ) -> Result<crate::scheduler::SchedStore, crate::scheduler::SchedulerError> {
        self.database.dag_store()
    }

    /// This node's fence when it is one of several: the executions it owns.
    pub fn fence(&self) -> Option<&Arc<crate::persistence::pg::cluster::Fence>> {
        self.shared.as_ref().and_then(|db| db.fence())
    }

    /// Whether this node runs `arn` (always, on the embedded store).
    fn owns(&self, arn: &str) -> bool {
        self.fence().is_none_or(|f| f.holds(arn))
    }

    /// Schedules `arn` here when this node owns it, else wakes the node that does.
    pub fn wake(&self, arn: &str) {
        if self.owns(arn) {
            self.schedule(arn);
        } else if let Some(db) = &self.shared {
            if let Err(e) = crate::persistence::pg::cluster::wake(db, arn) {
                tracing::error!(execution = %arn, "cannot wake the node that runs it: {e}");
            }
        }
    }

    /// Another node owns `arn` now (or this node's lease ended): its run here stops and writes
    /// nothing more (the fence refuses it anyway).
    pub fn abandon(&self, arn: &str) {
        if let Some(ctl) = self.active_control(arn) {
            ctl.stop();
        }
    }

    /// This node adopted `arns` from a node that is gone: their token deadlines are armed here,
    /// their unclaimed activity tasks queued, and each is replayed from its journal.
    pub fn adopted(&self, arns: &[String]) {
        for arn in arns {
            match self.tokens.tokens_of(arn) {
                Ok(tokens) => {
                    for (token, v) in tokens {
                        if let Ok(rec) = serde_json::from_slice::<TokenRecord>(&v) {
                            self.arm_token(&token, &rec);
                            if let (Some(a), None) = (&rec.activity, &rec.claimed_by) {
                                self.enqueue_activity(a, &token);
                            }
                        }
                    }
                }
                Err(e) => tracing::error!(
                    execution = %arn,
                    "cannot read the task tokens of an adopted execution: {e}"
                ),
            }
            self.schedule(arn);
        }
    }

    /// Another node recorded an answer for (or stopped) `arn`, which this node owns.
    pub fn woken(&self, arn: &str) {
        if !self.owns(arn) {
            return;
        }
        if load_record(self, arn).is_some_and(|r| r.status != "RUNNING") {
            self.abandon(arn);
        }
        self.schedule(arn);
    }

    /// Connects the runtime to itself, starts the timer thread and schedules every execution
    /// a previous process left RUNNING; returns how many.
    pub fn start(rt: &Arc<Runtime>) -> Result<usize, RuntimeError> {
        let _ = rt.me.set(Arc::downgrade(rt));
        let weak = Arc::downgrade(rt);
        let timers = rt.timers.clone();
        std::thread::Builder::new()
            .name("weft-timers".into())
            .spawn(move || timer_loop(&timers, &weak))?;
        if rt.shared.is_some() {
            // a node of a cluster adopts orphaned executions instead (see `super::cluster`)
            return Ok(0);
        }
        // re-arm token deadlines and re-queue unclaimed activity tasks
        rt.tokens.each_token(&mut |token, v| {
            let Ok(rec) = serde_json::from_slice::<TokenRecord>(v) else {
                tracing::error!(token = %token, "unreadable task token record; ignored");
                return true;
            };
            rt.arm_token(token, &rec);
            if let (Some(a), None) = (&rec.activity, &rec.claimed_by) {
                rt.enqueue_activity(a, token);
            }
            true
        })?;
        let mut n = 0;
        let mut failed = None;
        rt.executions.each_execution("", &mut |v| {
            // repairs what a crash between a record's write and its index's left behind
            let checked = rt.executions.repair_index(v).map_err(RuntimeError::from);
            match checked.and_then(|()| Ok(serde_json::from_slice::<ExecutionRecord>(v)?)) {
                Ok(e) => {
                    if e.status == "RUNNING" {
                        rt.schedule(&e.arn);
                        n += 1;
                    }
                    true
                }
                Err(e) => {
                    failed = Some(e);
                    false
                }
            }
        })?;
        match failed {
            Some(e) => Err(e),
            None => Ok(n),
        }
    }

    fn control(&self, arn: &str) -> Arc<ExecControl> {
        // unguessable, and the same for every run of the execution (replays draw alike)
        let mut h = blake3::Hasher::new_keyed(&self.secret);
        h.update(b"entropy\0");
        h.update(arn.as_bytes());
        let seed = u64::from_le_bytes(h.finalize().as_bytes()[..8].try_into().unwrap_or([0; 8]));
        Arc::new(
            ExecControl::new(
                Journal::on(&self.journal, arn),
                self.commit.clone(),
                self.shutdown.clone(),
                SUSPEND_AFTER,
            )
            .with_entropy_seed(seed),
        )
    }

    /// How many executions wait for a worker.
    pub fn queued(&self) -> usize {
        self.queue
            .st
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .items
            .len()
    }

    /// How many executions are running or queued.
    pub fn active_count(&self) -> usize {
        self.active.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Refuses new work when the queue is full.
    pub fn check_capacity(&self) -> Result<(), RuntimeError> {
        let q = self.queued();
        if q >= MAX_QUEUED {
            return Err(RuntimeError::new(
                "ExecutionLimitExceeded",
                format!("{q} executions are waiting to run, the limit of this server; retry later"),
            ));
        }
        Ok(())
    }

    /// Runs (or re-runs) an execution on a worker soon. A running execution runs once more
    /// after its current run unwinds.
    pub fn schedule(&self, arn: &str) {
        {
            let mut active = self.active.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(a) = active.get_mut(arn) {
                a.rerun = true;
                return;
            }
            active.insert(
                arn.to_string(),
                Active {
                    ctl: self.control(arn),
                    rerun: false,
                },
            );
        }
        self.push(arn.to_string());
    }

    fn push(&self, arn: String) {
        let spawn = {
            let mut q = self.queue.st.lock().unwrap_or_else(|e| e.into_inner());
            q.items.push_back(arn);
            let spawn = q.idle == 0 && q.workers < self.max_running && !q.closed;
            if spawn {
                q.workers += 1;
            }
            spawn
        };
        self.queue.cv.notify_one();
        if spawn {
            let queue = self.queue.clone();
            let weak = self.me.get().cloned().unwrap_or_default();
            let r = std::thread::Builder::new()
                .name("weft-exec".into())
                .stack_size(8 << 20)
                .spawn(move || worker_loop(&queue, &weak));
            if let Err(e) = r {
                tracing::error!("cannot start an execution worker: {e}");
                self.queue
                    .st
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .workers -= 1;
            }
        }
    }

    /// Takes a run slot of the execution's state machine, or parks the execution until one
    /// frees up (false).
    fn admit(&self, arn: &str) -> bool {
        let Some(limit) = self.per_sm_limit else {
            return true;
        };
        let sm = sm_of(arn);
        let mut m = self.per_sm.lock().unwrap_or_else(|e| e.into_inner());
        let e = m.entry(sm.to_string()).or_default();
        if e.0 < limit {
            e.0 += 1;
            true
        } else {
            e.1.push_back(arn.to_string());
            false
        }
    }

    /// Frees the run slot taken by [`Self::admit`] and queues a parked execution.
    fn release(&self, arn: &str) {
        if self.per_sm_limit.is_none() {
            return;
        }
        let next = {
            let mut m = self.per_sm.lock().unwrap_or_else(|e| e.into_inner());
            let Some(e) = m.get_mut(sm_of(arn)) else {
                return;
            };
            e.0 = e.0.saturating_sub(1);
            e.1.pop_front()
        };
        if let Some(a) = next {
            self.push(a);
        }
    }

    /// The control of a running or queued execution.
    pub fn active_control(&self, arn: &str) -> Option<Arc<ExecControl>> {
        self.active
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(arn)
            .map(|a| a.ctl.clone())
    }

    /// Ends a run: re-queues it when it was scheduled meanwhile, else forgets it.
    fn run_ended(&self, arn: &str, finished: bool) {
        let again = {
            let mut active = self.active.lock().unwrap_or_else(|e| e.into_inner());
            match active.get_mut(arn) {
                Some(a) if a.rerun && !finished && !a.ctl.is_cancelled() => {
                    a.rerun = false;
                    a.ctl = self.control(arn);
                    true
                }
                _ => {
                    active.remove(arn);
                    false
                }
            }
        };
        if again {
            self.push(arn.to_string());
        }
    }

    fn add_timer(&self, at_ms: i64, t: Timer) {
        let mut st = self.timers.st.lock().unwrap_or_else(|e| e.into_inner());
        st.set.insert((at_ms, t));
        self.timers.cv.notify_one();
    }

    fn arm_token(&self, token: &str, rec: &TokenRecord) {
        let at = match (rec.timeout_at_ms, rec.heartbeat_at_ms) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let Some(at) = at {
            self.add_timer(at, Timer::Token(token.to_string()));
        }
    }

    /// Records a waiting task's token (durably) and arms its deadlines; an activity task is
    /// queued for GetActivityTask. Idempotent.
    pub fn register_token(
        &self,
        token: &str,
        rec: &TokenRecord,
    ) -> Result<(), crate::durable::DurableError> {
        let json = serde_json::to_vec(rec).map_err(|e| crate::durable::DurableError::BadEntry {
            execution: rec.execution.clone(),
            key: rec.key.clone(),
            reason: e.to_string(),
        })?;
        if !self.tokens.insert_token(token, &json)? {
            return Ok(());
        }
        self.commit.commit()?;
        self.arm_token(token, rec);
        if let Some(a) = &rec.activity {
            self.enqueue_activity(a, token);
        }
        Ok(())
    }

    pub fn forget_token(&self, token: &str) {
        if let Err(e) = self.tokens.remove_token(token) {
            tracing::error!("cannot remove a task token: {e}");
        }
    }

    /// Forgets every task token of an execution (it was stopped: nobody may answer them).
    pub fn forget_tokens_of(&self, execution: &str) {
        match self.tokens.tokens_of(execution) {
            Ok(theirs) => {
                for (token, _) in theirs {
                    self.forget_token(&token);
                }
            }
            Err(e) => tracing::error!(execution, "cannot read the task tokens: {e}"),
        }
    }

    pub fn token(&self, token: &str) -> Result<Option<TokenRecord>, RuntimeError> {
        match self.tokens.token(token)? {
            None => Ok(None),
            Some(v) => Ok(Some(serde_json::from_slice(&v)?)),
        }
    }

    pub fn put_token(&self, token: &str, rec: &TokenRecord) -> Result<(), RuntimeError> {
        self.tokens.put_token(token, &serde_json::to_vec(rec)?)?;
        Ok(())
    }

    /// Journals the answer of a waiting task and wakes its execution. False when the task
    /// already had an answer (it timed out, or was answered before).
    pub fn complete(
        &self,
        execution: &str,
        key: &str,
        answer: Result<Value, weft_asl::TaskFailure>,
    ) -> Result<bool, RuntimeError> {
        let journal = Journal::on(&self.journal, execution);
        let entry = match answer {
            Ok(output) => Entry::Ok { output },
            Err(f) => Entry::Err {
                error: f.error,
                cause: f.cause,
            },
        };
        let done = journal
            .complete_now(key, &entry)
            .map_err(|e| RuntimeError::internal(e.to_string()))?;
        self.commit
            .commit()
            .map_err(|e| RuntimeError::internal(e.to_string()))?;
        if done {
            self.wake(execution);
        }
        Ok(done)
    }

    fn enqueue_activity(&self, activity: &str, token: &str) {
        self.activity_queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(activity.to_string())
            .or_default()
            .push_back(token.to_string());
        self.activity_ready.notify_waiters();
    }

    /// Takes the next task of an activity for `worker`: (token, input). A task is claimed in
    /// the token store itself (compare-and-set), so that one worker gets it whichever node it
    /// polls; on a shared database the tasks other nodes queued are found there too.
    pub fn claim_activity(
        &self,
        activity: &str,
        worker: &str,
    ) -> Result<Option<(String, String)>, RuntimeError> {
        loop {
            let token = {
                let mut q = self
                    .activity_queue
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                q.get_mut(activity).and_then(VecDeque::pop_front)
            };
            let Some(token) = token else {
                break;
            };
            // the task may have been answered, timed out or claimed meanwhile
            if let Some(input) = self.claim_token(&token, activity, worker)? {
                return Ok(Some((token, input)));
            }
        }
        if self.shared.is_none() {
            return Ok(None);
        }
        for token in self.tokens.open_activity_tasks(activity, 64)? {
            if let Some(input) = self.claim_token(&token, activity, worker)? {
                return Ok(Some((token, input)));
            }
        }
        Ok(None)
    }

    /// Marks activity task `token` claimed by `worker` unless it is gone or claimed; its input.
    fn claim_token(
        &self,
        token: &str,
        activity: &str,
        worker: &str,
    ) -> Result<Option<String>, RuntimeError> {
        let mut input = None;
        self.tokens.update_token(token, &mut |cur| {
            input = None;
            let cur = cur?;
            let Ok(mut rec) = serde_json::from_slice::<TokenRecord>(cur) else {
                return Some(cur.to_vec());
            };
            if rec.claimed_by.is_some() || rec.activity.as_deref() != Some(activity) {
                return Some(cur.to_vec());
            }
            rec.claimed_by = Some(worker.to_string());
            input = Some(rec.input.clone().unwrap_or_else(|| "{}".into()));
            serde_json::to_vec(&rec).ok()
        })?;
        if input.is_some() {
            self.commit
                .commit()
                .map_err(|e| RuntimeError::internal(e.to_string()))?;
        }
        Ok(input)
    }

    pub fn activity_exists(&self, name: &str) -> bool {
        self.activities.activity(name).is_ok_and(|a| a.is_some())
    }

    /// A token's deadline passed: fail the task with States.Timeout / States.HeartbeatTimeout,
    /// or re-arm when a heartbeat moved it.
    fn token_deadline(&self, token: &str) {
        let rec = match self.token(token) {
            Ok(Some(r)) => r,
            Ok(None) => return,
            Err(e) => {
                tracing::error!("task token record: {}", e.message);
                return;
            }
        };
        let now = now_ms();
        let failure = if rec.timeout_at_ms.is_some_and(|t| now >= t) {
            Some((
                "States.Timeout",
                "the task did not complete within its TimeoutSeconds",
            ))
        } else if rec.heartbeat_at_ms.is_some_and(|t| now >= t) {
            Some((
                "States.HeartbeatTimeout",
                "no SendTaskHeartbeat within the task's HeartbeatSeconds",
            ))
        } else {
            None
        };
        match failure {
            Some((error, cause)) => {
                self.forget_token(token);
                let r = self.complete(
                    &rec.execution,
                    &rec.key,
                    Err(weft_asl::TaskFailure {
                        error: error.into(),
                        cause: cause.into(),
                    }),
                );
                if let Err(e) = r {
                    tracing::error!("cannot time out a task: {}", e.message);
                }
            }
            None => self.arm_token(token, &rec),
        }
    }

    /// Stops accepting work and makes running executions unwind (they stay RUNNING and resume
    /// at the next start).
    pub fn close(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
        self.queue
            .st
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .closed = true;
        self.queue.cv.notify_all();
        self.timers
            .st
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .closed = true;
        self.timers.cv.notify_all();
    }

    /// Waits (up to `limit`) until no run is in progress.
    pub fn drain(&self, limit: Duration) {
        let end = std::time::Instant::now() + limit;
        while std::time::Instant::now() < end {
            if self
                .active
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_empty()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.close();
    }
}

fn worker_loop(queue: &Queue, rt: &Weak<Runtime>) {
    loop {
        let arn = {
            let mut q = queue.st.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if q.closed {
                    q.workers -= 1;
                    return;
                }
                if let Some(a) = q.items.pop_front() {
                    break a;
                }
                q.idle += 1;
                let (g, to) = queue
                    .cv
                    .wait_timeout(q, Duration::from_secs(30))
                    .unwrap_or_else(|e| e.into_inner());
                q = g;
                q.idle -= 1;
                if to.timed_out() && q.items.is_empty() {
                    q.workers -= 1;
                    return;
                }
            }
        };
        let Some(rt) = rt.upgrade() else {
            let mut q = queue.st.lock().unwrap_or_else(|e| e.into_inner());
            q.workers -= 1;
            return;
        };
        drive(&rt, &arn);
    }
}

fn timer_loop(timers: &Timers, rt: &Weak<Runtime>) {
    loop {
        let due = {
            let mut st = timers.st.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if st.closed {
                    return;
                }
                let now = now_ms();
                match st.set.first() {
                    Some((at, _)) if *at <= now => break,
                    Some((at, _)) => {
                        let wait = Duration::from_millis((*at - now).min(1000) as u64);
                        st = timers
                            .cv
                            .wait_timeout(st, wait)
                            .unwrap_or_else(|e| e.into_inner())
                            .0;
                    }
                    None => {
                        st = timers
                            .cv
                            .wait_timeout(st, Duration::from_secs(1))
                            .unwrap_or_else(|e| e.into_inner())
                            .0;
                    }
                }
            }
            let now = now_ms();
            let mut due = Vec::new();
            while let Some(first) = st.set.first() {
                if first.0 > now {
                    break;
                }
                if let Some(t) = st.set.pop_first() {
                    due.push(t.1);
                }
            }
            due
        };
        let Some(rt) = rt.upgrade() else {
            return;
        };
        for t in due {
            match t {
                Timer::Resume(arn) => rt.schedule(&arn),
                Timer::Token(tok) => rt.token_deadline(&tok),
            }
        }
    }
}

/// The execution role: `weft:role:NAME` (or a bare NAME), or an IAM role ARN
/// `arn:aws:iam::ACCOUNT:role/[PATH/]NAME` whose NAME has a weft role file (without one, the
/// execution has no role: nothing is allowed). One canonical spelling
/// ([`crate::roles::canonical_role`]) is what PassRole decided on and what is loaded.
pub fn execution_role(
    rt: &Runtime,
    role_arn: &str,
) -> Result<Option<Arc<weft_sandbox::Policy>>, StateError> {
    let Some(canonical) = crate::roles::canonical_role(role_arn) else {
        return Ok(None);
    };
    if role_arn.starts_with("arn:") {
        return Ok(rt.roles.get(&canonical).ok());
    }
    rt.roles
        .get(&canonical)
        .map(Some)
        .map_err(|e| StateError::new("States.Permissions", e.to_string()))
}

fn load_record(rt: &Runtime, arn: &str) -> Option<ExecutionRecord> {
    read_record(rt, arn).ok().flatten()
}

/// The execution's record (`Ok(None)`: there is none, or it is unreadable); `Err`: the store
/// cannot be read now (a shared database away): try again later.
pub(super) fn read_record(rt: &Runtime, arn: &str) -> Result<Option<ExecutionRecord>, String> {
    match rt.executions.execution(arn) {
        Ok(Some(v)) => Ok(serde_json::from_slice(&v).ok()),
        Ok(None) => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

/// The store failed under a run (a shared database away): the run ends here and the
/// execution runs again in a second, from its journal.
fn retry_soon(rt: &Runtime, arn: &str, why: &str) {
    tracing::warn!(execution = %arn, "run unwound: {why}; retrying in 1 s");
    rt.add_timer(now_ms() + 1000, Timer::Resume(arn.to_string()));
    rt.run_ended(arn, false);
}

/// The state machine name in an execution ARN.
fn sm_of(arn: &str) -> &str {
    arn.split(':').nth(6).unwrap_or("")
}

/// One run of an execution, within its state machine's concurrency limit.
fn drive(rt: &Arc<Runtime>, arn: &str) {
    if !rt.admit(arn) {
        return;
    }
    drive_admitted(rt, arn);
    rt.release(arn);
}

/// One run of an execution: replay from the input until it finishes or suspends.
fn drive_admitted(rt: &Arc<Runtime>, arn: &str) {
    let Some(ctl) = rt.active_control(arn) else {
        return;
    };
    if !rt.owns(arn) {
        // (a timer or wake-up of an execution another node adopted)
        rt.run_ended(arn, true);
        return;
    }
    // the lease this run writes under: its end is refused once another node adopted it
    let epoch = rt.fence().and_then(|f| f.epoch_of(arn));
    rt.runs.fetch_add(1, Ordering::Relaxed);
    let rec = match read_record(rt, arn) {
        Ok(Some(r)) => r,
        Ok(None) => {
            rt.run_ended(arn, true);
            return;
        }
        Err(e) => return retry_soon(rt, arn, &e),
    };
    if rec.status != "RUNNING" {
        if let Some(f) = rt.fence() {
            f.release(arn);
        }
        rt.run_ended(arn, true);
        return;
    }
    let trace_id = crate::asl_tasks::trace_id(arn, rec.trace_header.as_deref());
    let _span = tracing::info_span!("execution", execution = %arn, trace_id = %trace_id).entered();
    let definition = match &rec.definition {
        Some(d) => Some(d.clone()),
        None => rt
            .catalog
            .state_machine(&rec.state_machine_name)
            .ok()
            .flatten()
            .and_then(|v| serde_json::from_slice::<StateMachineRecord>(&v).ok())
            .map(|s| s.definition),
    };
    let role_arn = rec
        .role_arn
        .clone()
        .unwrap_or_else(|| DEFAULT_ROLE.to_string());
    // what the run replays from; a store that cannot be read now is retried, not a failure
    let mut history = match DurableHistory::load(rt, arn, Some(ctl.clone())) {
        Ok(h) => Some(h),
        Err(e) => return retry_soon(rt, arn, &e.message),
    };
    let mut recorded = match history.as_ref().is_some_and(|h| !h.is_new()) {
        true => match recorded_entries(rt, arn) {
            Ok(r) => Some(r),
            Err(e) => {
                return retry_soon(rt, arn, &format!("cannot read the journal: {}", e.message))
            }
        },
        false => None,
    };
    // the state machine's TimeoutSeconds deadline, to wake a suspended run when it passes
    let mut deadline_ms: Option<i64> = None;
    let outcome = (|| -> Result<Value, StateError> {
        let definition = definition.ok_or_else(|| {
            StateError::new(
                "States.Runtime",
                "the state machine of this execution was deleted",
            )
        })?;
        let sm = rt
            .machine(&definition)
            .map_err(|e| StateError::new("States.Runtime", format!("invalid definition: {e}")))?;
        deadline_ms = timeout_deadline(&rec, &sm);
        let input: Value = serde_json::from_str(&rec.input)
            .map_err(|e| StateError::new("States.Runtime", format!("invalid input: {e}")))?;
        let runner = ExecutionTaskRunner {
            pins: Default::default(),
            rt: rt.clone(),
            execution_role: execution_role(rt, &role_arn)?,
            ctl: Some(ctl.clone()),
            trace_header: rec.trace_header.clone(),
            role_arn: role_arn.clone(),
            execution_arn: arn.to_string(),
            static_roles: super::definition_roles::static_roles(&definition),
            resource_maps: super::resource_maps::maps_for(rt, &rec.state_machine_name),
        };
        // a test case's mocks answer inside the journal, like the tasks they stand for
        let mocked = match &rec.mocks {
            Some(m) => Some(weft_asl::mock::MockTaskRunner::new(
                &runner,
                weft_asl::mock::TestCase::from_json(m).map_err(|e| {
                    StateError::new("States.Runtime", format!("the execution's mocks: {e}"))
                })?,
            )),
            None => None,
        };
        let inner: &dyn weft_asl::TaskRunner = match &mocked {
            Some(m) => m,
            None => &runner,
        };
        let journaling = JournalingRunner {
            inner,
            ctl: &ctl,
            secret: &rt.secret,
        };
        let mut history = history
            .take()
            .ok_or_else(|| StateError::new("States.Runtime", "no history"))?;
        ctl.set_fresh(history.is_new());
        // UpdateMapRun's limits reach the running Map Runs
        let weak_limits = Arc::downgrade(rt);
        ctl.set_map_run_limits(Arc::new(move |map_run| {
            weak_limits
                .upgrade()
                .and_then(|rt| super::map_runs::limits(&rt, map_run))
        }));
        // plugin task results ride in the history runs (no journal write of their own)
        let weak = Arc::downgrade(rt);
        ctl.set_record_sink(Arc::new(move |execution, key, json| {
            if let Some(rt) = weak.upgrade() {
                rt.pending.push_journal(execution, key, json);
            }
        }));
        if let Some(r) = recorded.take() {
            ctl.set_recorded(r);
        }
        ctl.set_redrive_count(rec.redrive_count);
        let opts = RunOptions {
            execution_name: rec.name.clone(),
            state_machine_name: rec.state_machine_name.clone(),
            role_arn: role_arn.clone(),
            start_ms: Some(rec.start_ms),
            redrive_count: rec.redrive_count,
            timeout_from_ms: rec.redrive_ms,
            ..RunOptions::default()
        };
        let reader = BucketAccess::new(
            rt.buckets.clone(),
            runner.execution_role.clone(),
            rt.base_dir.clone(),
        );
        let spans =
            super::traces::durable_spans(arn, rec.trace_header.as_deref(), history.replayed());
        let hooks = Hooks {
            history: Some(&mut history),
            item_reader: Some(&reader),
            result_writer: Some(&reader),
            control: Some(&*ctl),
            observer: spans.as_ref().map(|s| s as &dyn weft_asl::StateObserver),
        };
        weft_asl::run_express(&sm, input, &opts, &journaling, &SystemClock, hooks)
    })();
    match outcome {
        Err(e) if e.is_suspended() => {
            if ctl.is_stopped() || rt.shutdown.load(Ordering::SeqCst) {
                rt.run_ended(arn, true);
                return;
            }
            match ctl.take_suspension() {
                // (past the deadline, the replay ends the execution with States.Timeout)
                Some(Suspension::Timer { until_ms }) => rt.add_timer(
                    deadline_ms.map_or(until_ms, |d| until_ms.min(d)),
                    Timer::Resume(arn.to_string()),
                ),
                Some(Suspension::External) => {
                    if let Some(d) = deadline_ms {
                        rt.add_timer(d, Timer::Resume(arn.to_string()));
                    }
                }
                None => {
                    // the journal failed: try again shortly
                    tracing::warn!(execution = %arn, "run unwound: {:?}; retrying in 1 s", e.cause);
                    rt.add_timer(now_ms() + 1000, Timer::Resume(arn.to_string()));
                }
            }
            rt.run_ended(arn, false);
        }
        result => {
            if finish(rt, &rec, result, epoch) {
                rt.run_ended(arn, true);
            } else {
                retry_soon(rt, arn, "cannot record its end");
            }
        }
    }
}

/// The journal entries an execution's earlier runs recorded beside its history (see
/// [`crate::persistence::history::HistoryStore::journal_lines`]), by entry key; the
/// last one of a key wins.
pub fn recorded_entries(
    rt: &Runtime,
    arn: &str,
) -> Result<HashMap<String, crate::durable::Entry>, RuntimeError> {
    rt.pending.apply_if_queued(arn)?;
    let mut out = HashMap::new();
    for (k, v) in rt.history.journal_lines(arn)? {
        out.insert(k, serde_json::from_slice(&v)?);
    }
    Ok(out)
}

/// When the state machine's `TimeoutSeconds` ends the execution (epoch ms): counted from its
/// start, or from its last redrive, which starts the timeout again.
fn timeout_deadline(rec: &ExecutionRecord, sm: &weft_asl::StateMachine) -> Option<i64> {
    sm.timeout_seconds.map(|t| {
        rec.redrive_ms
            .unwrap_or(rec.start_ms)
            .saturating_add((t.min(i64::MAX as u64) as i64).saturating_mul(1000))
    })
}

/// Records an execution's end (unless it was stopped meanwhile), commits, and answers a
/// `.sync` parent; false when the end could not be recorded (the run must be tried again).
fn finish(
    rt: &Arc<Runtime>,
    rec: &ExecutionRecord,
    result: Result<Value, StateError>,
    epoch: Option<i64>,
) -> bool {
    let stop = now_ms();
    // (the run parsed this definition: it comes from the cache)
    let deadline = rec
        .definition
        .as_deref()
        .and_then(|d| rt.machine(d).ok())
        .and_then(|sm| timeout_deadline(rec, &sm));
    let status = match &result {
        Ok(_) => "SUCCEEDED",
        Err(e)
            if e.error == weft_asl::error::names::TIMEOUT
                && deadline.is_some_and(|d| stop >= d) =>
        {
            "TIMED_OUT"
        }
        Err(_) => "FAILED",
    };
    let mut finished = None;
    let r = rt
        .executions
        .update_execution_at(&rec.arn, epoch, &mut |old| {
            let old = old?;
            let mut e: ExecutionRecord = serde_json::from_slice(old).ok()?;
            if e.status == "RUNNING" {
                e.status = status.to_string();
                e.stop_ms = Some(stop);
                match &result {
                    Ok(out) => e.output = Some(out.to_string()),
                    Err(err) => {
                        e.error = Some(err.error.clone());
                        e.cause = err.cause.clone();
                    }
                }
                finished = Some(e.clone());
            }
            serde_json::to_vec(&e).ok()
        });
    if let Err(e) = r {
        tracing::error!(execution = %rec.arn, "cannot record the result: {e}");
        // (fenced: another node owns it now, and the run's `owns` check ends it)
        return false;
    }
    if status != "SUCCEEDED" && finished.is_some() {
        // a task may still wait for an answer (the execution timed out or failed around it):
        // nobody may answer it now, and a redrive issues new tokens
        rt.forget_tokens_of(&rec.arn);
    }
    if status == "SUCCEEDED" {
        // the journal is only needed to replay or redrive: dropped with the next flush
        if let Err(e) = Journal::on(&rt.journal, &rec.arn).clear() {
            tracing::error!(execution = %rec.arn, "cannot clear the journal: {e}");
        }
    }
    match rt.commit.commit() {
        Err(e) => tracing::error!(execution = %rec.arn, "commit: {e}"),
        // (held until then: the fence lets the last writes through)
        Ok(()) => {
            if let Some(f) = rt.fence() {
                f.release(&rec.arn);
            }
        }
    }
    if let Some(e) = &finished {
        rt.observer.status_changed(&rec.arn, status);
        super::traces::execution_ended(e, status, e.error.as_deref(), stop);
    }
    rt.observer
        .execution_finished(&rec.arn, status, stop - rec.start_ms);
    if let (Some(e), Some((parent, key))) = (finished, &rec.parent) {
        answer_parent(rt, &e, parent, key);
    }
    true
}

/// Answers the `.sync` task of a parent execution with a child's end, as Step Functions does.
pub fn answer_parent(rt: &Arc<Runtime>, e: &ExecutionRecord, parent: &str, key: &str) {
    let mut out = json!({
        "ExecutionArn": e.arn,
        "StateMachineArn": e.state_machine_arn,
        "Name": e.name,
        "Input": e.input,
        "InputDetails": {"Included": true},
        "StartDate": format_ms(e.start_ms),
        "StopDate": format_ms(e.stop_ms.unwrap_or_else(now_ms)),
        "Status": e.status,
    });
    let answer = if e.status == "SUCCEEDED" {
        let output = e.output.clone().unwrap_or_else(|| "null".into());
        // `.sync:2` gives Output as JSON, `.sync` as a string
        out["Output"] = if e.parent_wants_json {
            serde_json::from_str(&output).unwrap_or(Value::Null)
        } else {
            Value::String(output)
        };
        out["OutputDetails"] = json!({"Included": true});
        Ok(out)
    } else {
        if let Some(x) = &e.error {
            out["Error"] = json!(x);
        }
        if let Some(x) = &e.cause {
            out["Cause"] = json!(x);
        }
        Err(weft_asl::TaskFailure {
            error: "States.TaskFailed".into(),
            cause: out.to_string(),
        })
    };
    if let Err(err) = rt.complete(parent, key, answer) {
        tracing::error!(parent = %parent, "cannot answer the parent execution: {}", err.message);
    }
}

/// Creates (or finds, for a replayed attempt) a child execution and schedules it.
pub fn start_child(
    rt: &Arc<Runtime>,
    sm_name: &str,
    name: &str,
    input: &str,
    parent: Option<(String, String)>,
    parent_wants_json: bool,
) -> Result<ExecutionRecord, RuntimeError> {
    valid_name(name).map_err(|m| RuntimeError::new("InvalidName", m))?;
    let smr: StateMachineRecord = match rt.catalog.state_machine(sm_name)? {
        Some(v) => serde_json::from_slice(&v)?,
        None => {
            return Err(RuntimeError::new(
                "StateMachineDoesNotExist",
                format!("State Machine Does Not Exist: '{}'", sm_arn(sm_name)),
            ))
        }
    };
    serde_json::from_str::<Value>(input).map_err(|e| {
        RuntimeError::new(
            "InvalidExecutionInput",
            format!("Invalid State Machine Execution Input: '{e}'"),
        )
    })?;
    let mut rec = new_record(&smr, name, input.to_string(), None, parent);
    rec.parent_wants_json = parent_wants_json;
    let (rec, _) = insert_execution(rt, rec)?;
    Ok(rec)
}

/// A new RUNNING execution record of `smr`.
pub fn new_record(
    smr: &StateMachineRecord,
    name: &str,
    input: String,
    trace_header: Option<String>,
    parent: Option<(String, String)>,
) -> ExecutionRecord {
    ExecutionRecord {
        arn: exec_arn(&smr.name, name),
        state_machine_arn: smr.arn.clone(),
        state_machine_name: smr.name.clone(),
        name: name.to_string(),
        status: "RUNNING".into(),
        start_ms: now_ms(),
        stop_ms: None,
        input,
        output: None,
        error: None,
        cause: None,
        trace_header,
        definition: Some(smr.definition.clone()),
        role_arn: Some(smr.role_arn.clone()),
        redrive_count: 0,
        redrive_ms: None,
        parent,
        parent_wants_json: false,
        version_arn: None,
        alias_arn: None,
        test_case: None,
        mocks: None,
    }
}

/// Inserts a new execution (durably) and schedules it; an execution of that name that
/// already exists is returned instead (`false`).
pub fn insert_execution(
    rt: &Arc<Runtime>,
    rec: ExecutionRecord,
) -> Result<(ExecutionRecord, bool), RuntimeError> {
    rt.check_capacity()?;
    let existing = rt
        .executions
        .insert_execution(&rec.arn, &serde_json::to_vec(&rec)?)?;
    match existing {
        None => {
            rt.commit
                .commit()
                .map_err(|e| RuntimeError::internal(e.to_string()))?;
            rt.observer.execution_started(&rec.arn);
            rt.schedule(&rec.arn);
            Ok((rec, true))
        }
        Some(current) => {
            let old: ExecutionRecord = serde_json::from_slice(&current)?;
            Ok((old, false))
        }
    }
}
