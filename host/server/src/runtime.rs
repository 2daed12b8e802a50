//! The Standard-execution runtime of the server: which executions run, on which threads, and
//! what wakes them.
//!
//! An execution is driven by replay (see `weft_engine::durable`): a worker runs the ASL
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
//! records; the wire protocol stays in `api`.

use crate::error::ApiError;
use crate::records::*;
use crate::runner::{DurableHistory, ServerTaskRunner};
use crate::AppState;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, Weak};
use std::time::Duration;
use weft_asl::{Hooks, RunOptions, StateError, SystemClock};
use weft_engine::buckets::BucketAccess;
use weft_engine::durable::{
    Entry, ExecControl, GroupCommit, Journal, JournalingRunner, Suspension,
};

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

/// The runtime's state, owned by [`AppState`].
pub struct Runtime {
    /// Every execution's journal, written back by the group committer (see
    /// [`weft_engine::durable::JournalStore`]).
    pub(crate) journal: weft_engine::durable::JournalStore,
    /// Task tokens waiting for an answer.
    pub(crate) tokens: Arc<dyn weft_engine::persistence::tokens::TokenStore>,
    /// Activities.
    pub(crate) activities: Arc<dyn weft_engine::persistence::tokens::ActivityStore>,
    pub(crate) commit: Arc<GroupCommit>,
    pub(crate) secret: [u8; 32],
    pub(crate) shutdown: Arc<AtomicBool>,
    active: Mutex<HashMap<String, Active>>,
    queue: Arc<Queue>,
    timers: Arc<Timers>,
    /// Activity name -> tokens not yet handed to a worker.
    activity_queue: Mutex<HashMap<String, VecDeque<String>>>,
    pub(crate) activity_ready: tokio::sync::Notify,
    app: OnceLock<Weak<AppState>>,
    max_running: usize,
    /// At most this many runs of one state machine at once (`None`: no limit); the others
    /// wait in `per_sm` until one ends.
    per_sm_limit: Option<usize>,
    per_sm: Mutex<HashMap<String, (usize, VecDeque<String>)>>,
    /// Transitions-style counters for /metrics and benchmarks.
    pub(crate) runs: AtomicU64,
    /// Parsed definitions by their blake3 digest (a definition is parsed once, not per run).
    machines: Mutex<HashMap<[u8; 32], Arc<weft_asl::StateMachine>>>,
    /// The shared database when this node is one of several (`weft server --db`).
    shared: Option<weft_engine::persistence::PgDatabase>,
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

    /// The runtime over the journal, committer, tokens and activities of `stores` (the rest
    /// of them stay with the caller).
    pub(crate) fn new(
        stores: &weft_engine::persistence::sfn::SfnStores,
        max_running: usize,
        shared: Option<weft_engine::persistence::PgDatabase>,
    ) -> anyhow::Result<Self> {
        let secret = stores.token_secret;
        Ok(Runtime {
            journal: stores.journal.clone(),
            tokens: stores.tokens.clone(),
            activities: stores.activities.clone(),
            commit: stores.commit.clone(),
            machines: Mutex::new(HashMap::new()),
            secret,
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
            app: OnceLock::new(),
            max_running: max_running.max(1),
            per_sm_limit: std::env::var("WEFT_SERVER_MAX_RUNNING_PER_STATE_MACHINE")
                .ok()
                .and_then(|v| v.parse::<usize>().ok())
                .filter(|n| *n > 0),
            per_sm: Mutex::new(HashMap::new()),
            runs: AtomicU64::new(0),
            shared,
        })
    }

    /// This node's fence when it is one of several: the executions it owns.
    pub(crate) fn fence(&self) -> Option<&Arc<weft_engine::persistence::pg::cluster::Fence>> {
        self.shared.as_ref().and_then(|db| db.fence())
    }

    /// Whether this node runs `arn` (always, on the embedded store).
    fn owns(&self, arn: &str) -> bool {
        self.fence().is_none_or(|f| f.holds(arn))
    }

    /// Schedules `arn` here when this node owns it, else wakes the node that does.
    pub(crate) fn wake(&self, arn: &str) {
        if self.owns(arn) {
            self.schedule(arn);
        } else if let Some(db) = &self.shared {
            if let Err(e) = weft_engine::persistence::pg::cluster::wake(db, arn) {
                tracing::error!(execution = %arn, "cannot wake the node that runs it: {e}");
            }
        }
    }

    /// Another node owns `arn` now (or this node's lease ended): its run here stops and writes
    /// nothing more (the fence refuses it anyway).
    pub(crate) fn abandon(&self, arn: &str) {
        if let Some(ctl) = self.active_control(arn) {
            ctl.stop();
        }
    }

    /// This node adopted `arns` from a node that is gone: their token deadlines are armed here,
    /// their unclaimed activity tasks queued, and each is replayed from its journal.
    pub(crate) fn adopted(&self, arns: &[String]) {
        let set: std::collections::HashSet<&str> = arns.iter().map(String::as_str).collect();
        let walked = self.tokens.each_token(&mut |token, v| {
            if let Ok(rec) = serde_json::from_slice::<TokenRecord>(v) {
                if set.contains(rec.execution.as_str()) {
                    self.arm_token(token, &rec);
                    if let (Some(a), None) = (&rec.activity, &rec.claimed_by) {
                        self.enqueue_activity(a, token);
                    }
                }
            }
            true
        });
        if let Err(e) = walked {
            tracing::error!("cannot read the task tokens of adopted executions: {e}");
        }
        for a in arns {
            self.schedule(a);
        }
    }

    /// Another node recorded an answer for (or stopped) `arn`, which this node owns.
    pub(crate) fn woken(&self, arn: &str, app: &AppState) {
        if !self.owns(arn) {
            return;
        }
        if load_record(app, arn).is_some_and(|r| r.status != "RUNNING") {
            self.abandon(arn);
        }
        self.schedule(arn);
    }

    /// Connects the runtime to its app, starts the timer thread and schedules every execution
    /// a previous process left RUNNING; returns how many.
    pub(crate) fn start(app: &Arc<AppState>) -> anyhow::Result<usize> {
        let rt = &app.rt;
        let _ = rt.app.set(Arc::downgrade(app));
        let weak = Arc::downgrade(app);
        let timers = rt.timers.clone();
        std::thread::Builder::new()
            .name("weft-timers".into())
            .spawn(move || timer_loop(&timers, &weak))?;
        if rt.shared.is_some() {
            // a node of a cluster adopts orphaned executions instead (see `cluster`)
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
        app.executions.each_execution("", &mut |v| {
            // repairs what a crash between a record's write and its index's left behind
            let checked = app.executions.repair_index(v).map_err(anyhow::Error::from);
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
    pub(crate) fn queued(&self) -> usize {
        self.queue
            .st
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .items
            .len()
    }

    /// How many executions are running or queued.
    pub(crate) fn active_count(&self) -> usize {
        self.active.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Refuses new work when the queue is full.
    pub(crate) fn check_capacity(&self) -> Result<(), ApiError> {
        let q = self.queued();
        if q >= MAX_QUEUED {
            return Err(ApiError::new(
                "ExecutionLimitExceeded",
                format!("{q} executions are waiting to run, the limit of this server; retry later"),
            ));
        }
        Ok(())
    }

    /// Runs (or re-runs) an execution on a worker soon. A running execution runs once more
    /// after its current run unwinds.
    pub(crate) fn schedule(&self, arn: &str) {
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
            let weak = self.app.get().cloned().unwrap_or_default();
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

    /// Sets the per-state-machine concurrency limit.
    pub fn set_per_state_machine_limit(&mut self, limit: Option<usize>) {
        self.per_sm_limit = limit.filter(|n| *n > 0);
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
    pub(crate) fn active_control(&self, arn: &str) -> Option<Arc<ExecControl>> {
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
    pub(crate) fn register_token(
        &self,
        token: &str,
        rec: &TokenRecord,
    ) -> Result<(), weft_engine::durable::DurableError> {
        let json =
            serde_json::to_vec(rec).map_err(|e| weft_engine::durable::DurableError::BadEntry {
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

    pub(crate) fn forget_token(&self, token: &str) {
        if let Err(e) = self.tokens.remove_token(token) {
            tracing::error!("cannot remove a task token: {e}");
        }
    }

    /// Forgets every task token of an execution (it was stopped: nobody may answer them).
    pub(crate) fn forget_tokens_of(&self, execution: &str) {
        let mut theirs = Vec::new();
        let walked = self.tokens.each_token(&mut |token, v| {
            if serde_json::from_slice::<TokenRecord>(v).is_ok_and(|t| t.execution == execution) {
                theirs.push(token.to_string());
            }
            true
        });
        if let Err(e) = walked {
            tracing::error!(execution, "cannot read the task tokens: {e}");
        }
        for token in theirs {
            self.forget_token(&token);
        }
    }

    pub(crate) fn token(&self, token: &str) -> Result<Option<TokenRecord>, ApiError> {
        match self.tokens.token(token)? {
            None => Ok(None),
            Some(v) => Ok(Some(serde_json::from_slice(&v)?)),
        }
    }

    pub(crate) fn put_token(&self, token: &str, rec: &TokenRecord) -> Result<(), ApiError> {
        self.tokens.put_token(token, &serde_json::to_vec(rec)?)?;
        Ok(())
    }

    /// Journals the answer of a waiting task and wakes its execution. False when the task
    /// already had an answer (it timed out, or was answered before).
    pub(crate) fn complete(
        &self,
        execution: &str,
        key: &str,
        answer: Result<Value, weft_asl::TaskFailure>,
    ) -> Result<bool, ApiError> {
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
            .map_err(|e| ApiError::internal(e.to_string()))?;
        self.commit
            .commit()
            .map_err(|e| ApiError::internal(e.to_string()))?;
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
    pub(crate) fn claim_activity(
        &self,
        activity: &str,
        worker: &str,
    ) -> Result<Option<(String, String)>, ApiError> {
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
        let mut unclaimed = Vec::new();
        self.tokens.each_token(&mut |token, v| {
            if let Ok(rec) = serde_json::from_slice::<TokenRecord>(v) {
                if rec.activity.as_deref() == Some(activity) && rec.claimed_by.is_none() {
                    unclaimed.push(token.to_string());
                }
            }
            unclaimed.len() < 64
        })?;
        for token in unclaimed {
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
    ) -> Result<Option<String>, ApiError> {
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
                .map_err(|e| ApiError::internal(e.to_string()))?;
        }
        Ok(input)
    }

    pub(crate) fn activity_exists(&self, name: &str) -> bool {
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
    pub(crate) fn close(&self) {
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
    pub(crate) fn drain(&self, limit: Duration) {
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

fn worker_loop(queue: &Queue, app: &Weak<AppState>) {
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
        let Some(app) = app.upgrade() else {
            let mut q = queue.st.lock().unwrap_or_else(|e| e.into_inner());
            q.workers -= 1;
            return;
        };
        drive(&app, &arn);
    }
}

fn timer_loop(timers: &Timers, app: &Weak<AppState>) {
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
        let Some(app) = app.upgrade() else {
            return;
        };
        for t in due {
            match t {
                Timer::Resume(arn) => app.rt.schedule(&arn),
                Timer::Token(tok) => app.rt.token_deadline(&tok),
            }
        }
    }
}

/// The execution role: `weft:role:NAME` (or a bare NAME), or an IAM role ARN
/// `arn:aws:iam::ACCOUNT:role/[PATH/]NAME` whose NAME has a weft role file (without one, the
/// execution has no role: nothing is allowed). One canonical spelling
/// ([`weft_engine::roles::canonical_role`]) is what PassRole decided on and what is loaded.
pub(crate) fn execution_role(
    app: &AppState,
    role_arn: &str,
) -> Result<Option<Arc<weft_sandbox::Policy>>, StateError> {
    let Some(canonical) = weft_engine::roles::canonical_role(role_arn) else {
        return Ok(None);
    };
    if role_arn.starts_with("arn:") {
        return Ok(app.roles.get(&canonical).ok());
    }
    app.roles
        .get(&canonical)
        .map(Some)
        .map_err(|e| StateError::new("States.Permissions", e.to_string()))
}

fn load_record(app: &AppState, arn: &str) -> Option<ExecutionRecord> {
    read_record(app, arn).ok().flatten()
}

/// The execution's record (`Ok(None)`: there is none, or it is unreadable); `Err`: the store
/// cannot be read now (a shared database away): try again later.
fn read_record(app: &AppState, arn: &str) -> Result<Option<ExecutionRecord>, String> {
    match app.executions.execution(arn) {
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
fn drive(app: &Arc<AppState>, arn: &str) {
    if !app.rt.admit(arn) {
        return;
    }
    drive_admitted(app, arn);
    app.rt.release(arn);
}

/// One run of an execution: replay from the input until it finishes or suspends.
fn drive_admitted(app: &Arc<AppState>, arn: &str) {
    let rt = &app.rt;
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
    let rec = match read_record(app, arn) {
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
    let trace_id = weft_engine::asl_tasks::trace_id(arn, rec.trace_header.as_deref());
    let _span = tracing::info_span!("execution", execution = %arn, trace_id = %trace_id).entered();
    let definition = match &rec.definition {
        Some(d) => Some(d.clone()),
        None => app
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
        .unwrap_or_else(|| crate::api::DEFAULT_ROLE.to_string());
    // what the run replays from; a store that cannot be read now is retried, not a failure
    let mut history = match DurableHistory::load(app, arn, Some(ctl.clone())) {
        Ok(h) => Some(h),
        Err(e) => return retry_soon(rt, arn, &e.message),
    };
    let mut recorded = match history.as_ref().is_some_and(|h| !h.is_new()) {
        true => match recorded_entries(app, arn) {
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
        let runner = ServerTaskRunner {
            pins: Default::default(),
            app: app.clone(),
            execution_role: execution_role(app, &role_arn)?,
            ctl: Some(ctl.clone()),
            trace_header: rec.trace_header.clone(),
            role_arn: role_arn.clone(),
            execution_arn: arn.to_string(),
            static_roles: crate::access::static_roles(&definition),
            resource_maps: crate::sm_resource_map::maps_for(app, &rec.state_machine_name),
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
        let weak_limits = Arc::downgrade(app);
        ctl.set_map_run_limits(Arc::new(move |map_run| {
            weak_limits
                .upgrade()
                .and_then(|app| crate::map_runs::limits(&app, map_run))
        }));
        // plugin task results ride in the history runs (no journal write of their own)
        let weak = Arc::downgrade(app);
        ctl.set_record_sink(Arc::new(move |execution, key, json| {
            if let Some(app) = weak.upgrade() {
                app.pending.push_journal(execution, key, json);
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
            app.buckets.clone(),
            runner.execution_role.clone(),
            app.base_dir.clone(),
        );
        let spans =
            crate::traces::durable_spans(arn, rec.trace_header.as_deref(), history.replayed());
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
            if finish(app, &rec, result, epoch) {
                rt.run_ended(arn, true);
            } else {
                retry_soon(rt, arn, "cannot record its end");
            }
        }
    }
}

/// The journal entries an execution's earlier runs recorded beside its history (see
/// [`weft_engine::persistence::history::HistoryStore::journal_lines`]), by entry key; the
/// last one of a key wins.
pub(crate) fn recorded_entries(
    app: &AppState,
    arn: &str,
) -> Result<HashMap<String, weft_engine::durable::Entry>, crate::ApiError> {
    app.pending.apply_if_queued(arn)?;
    let mut out = HashMap::new();
    for (k, v) in app.history.journal_lines(arn)? {
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
    app: &Arc<AppState>,
    rec: &ExecutionRecord,
    result: Result<Value, StateError>,
    epoch: Option<i64>,
) -> bool {
    let stop = now_ms();
    // (the run parsed this definition: it comes from the cache)
    let deadline = rec
        .definition
        .as_deref()
        .and_then(|d| app.rt.machine(d).ok())
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
    let r = app
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
        app.rt.forget_tokens_of(&rec.arn);
    }
    if status == "SUCCEEDED" {
        // the journal is only needed to replay or redrive: dropped with the next flush
        if let Err(e) = Journal::on(&app.rt.journal, &rec.arn).clear() {
            tracing::error!(execution = %rec.arn, "cannot clear the journal: {e}");
        }
    }
    match app.rt.commit.commit() {
        Err(e) => tracing::error!(execution = %rec.arn, "commit: {e}"),
        // (held until then: the fence lets the last writes through)
        Ok(()) => {
            if let Some(f) = app.rt.fence() {
                f.release(&rec.arn);
            }
        }
    }
    if let Some(e) = &finished {
        app.live.status(&rec.arn, status); // web UI live updates
        crate::traces::execution_ended(e, status, e.error.as_deref(), stop);
    }
    crate::metrics::execution_finished(app, &rec.arn, status, stop - rec.start_ms);
    if let (Some(e), Some((parent, key))) = (finished, &rec.parent) {
        answer_parent(app, &e, parent, key);
    }
    true
}

/// Answers the `.sync` task of a parent execution with a child's end, as Step Functions does.
pub(crate) fn answer_parent(app: &Arc<AppState>, e: &ExecutionRecord, parent: &str, key: &str) {
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
    if let Err(err) = app.rt.complete(parent, key, answer) {
        tracing::error!(parent = %parent, "cannot answer the parent execution: {}", err.message);
    }
}

/// Creates (or finds, for a replayed attempt) a child execution and schedules it.
pub(crate) fn start_child(
    app: &Arc<AppState>,
    sm_name: &str,
    name: &str,
    input: &str,
    parent: Option<(String, String)>,
    parent_wants_json: bool,
) -> Result<ExecutionRecord, ApiError> {
    valid_name(name).map_err(|m| ApiError::new("InvalidName", m))?;
    let smr: StateMachineRecord = match app.catalog.state_machine(sm_name)? {
        Some(v) => serde_json::from_slice(&v)?,
        None => {
            return Err(ApiError::new(
                "StateMachineDoesNotExist",
                format!("State Machine Does Not Exist: '{}'", sm_arn(sm_name)),
            ))
        }
    };
    serde_json::from_str::<Value>(input).map_err(|e| {
        ApiError::new(
            "InvalidExecutionInput",
            format!("Invalid State Machine Execution Input: '{e}'"),
        )
    })?;
    let mut rec = new_record(&smr, name, input.to_string(), None, parent);
    rec.parent_wants_json = parent_wants_json;
    let (rec, _) = insert_execution(app, rec)?;
    Ok(rec)
}

/// A new RUNNING execution record of `smr`.
pub(crate) fn new_record(
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
pub(crate) fn insert_execution(
    app: &Arc<AppState>,
    rec: ExecutionRecord,
) -> Result<(ExecutionRecord, bool), ApiError> {
    app.rt.check_capacity()?;
    let existing = app
        .executions
        .insert_execution(&rec.arn, &serde_json::to_vec(&rec)?)?;
    match existing {
        None => {
            app.rt
                .commit
                .commit()
                .map_err(|e| ApiError::internal(e.to_string()))?;
            crate::metrics::execution_started(app, &rec.arn);
            app.rt.schedule(&rec.arn);
            Ok((rec, true))
        }
        Some(current) => {
            let old: ExecutionRecord = serde_json::from_slice(&current)?;
            Ok((old, false))
        }
    }
}
