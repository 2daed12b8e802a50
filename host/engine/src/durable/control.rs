//! [`ExecControl`]: the [`RunControl`] of one durable execution. Timer deadlines are journaled
//! the first time they are reached and kept on every replay; a wait longer than the suspension
//! threshold (a Wait state or a retry back-off, top-level or inside Map and Parallel) unwinds the
//! run (`Weft.Suspended`) so that no thread is held while an execution sleeps; StopExecution and
//! process shutdown unwind it at the next state or wait.

use super::journal::RecordSink;
use super::{DurableError, Entry, GroupCommit, Journal};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::OnceLock;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use weft_asl::error::names;
use weft_asl::{Cancellation, RunControl, StateError};

/// Why a run unwound without finishing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Suspension {
    /// A timer (Wait state, retry back-off): resume at `until_ms`.
    Timer {
        /// Epoch milliseconds.
        until_ms: i64,
    },
    /// A task waits for an external answer (task token, activity worker, child
    /// execution): resume when it arrives.
    External,
}

/// The control of one execution's run.
pub struct ExecControl {
    journal: Journal,
    commit: Arc<GroupCommit>,
    stop: AtomicBool,
    shutdown: Arc<AtomicBool>,
    suspend_after_ms: i64,
    suspension: Mutex<Option<Suspension>>,
    /// This run is the execution's first: nothing of it is journaled yet.
    fresh: AtomicBool,
    /// How many times the execution was redriven.
    redrive_count: AtomicU32,
    /// Where task results that only the run itself can record go (see
    /// [`ExecControl::set_record_sink`]).
    record_sink: OnceLock<RecordSink>,
    /// Entries recorded through the sink by earlier runs (see [`ExecControl::set_recorded`]).
    recorded: Mutex<HashMap<String, Entry>>,
    /// The execution's seed for random draws (see [`weft_asl::entropy`]).
    entropy_seed: Option<u64>,
    /// Where the limits an operator set on a running Map Run are read (see
    /// [`ExecControl::set_map_run_limits`]).
    map_run_limits: OnceLock<MapRunLimitSource>,
}

/// Reads the current limits of a Map Run by its ARN (`UpdateMapRun`).
pub type MapRunLimitSource = Arc<dyn Fn(&str) -> Option<weft_asl::MapRunLimits> + Send + Sync>;

/// The `Weft.Suspended` error.
pub fn suspended(why: &str) -> StateError {
    StateError::new(names::SUSPENDED, why)
}

impl ExecControl {
    /// A control over `journal`; `shutdown` is the process-wide stop switch; waits of
    /// at least `suspend_after` unwind the run instead of sleeping.
    pub fn new(
        journal: Journal,
        commit: Arc<GroupCommit>,
        shutdown: Arc<AtomicBool>,
        suspend_after: Duration,
    ) -> Self {
        ExecControl {
            journal,
            commit,
            stop: AtomicBool::new(false),
            shutdown,
            suspend_after_ms: suspend_after.as_millis().min(i64::MAX as u128) as i64,
            suspension: Mutex::new(None),
            fresh: AtomicBool::new(false),
            redrive_count: AtomicU32::new(0),
            record_sink: OnceLock::new(),
            recorded: Mutex::new(HashMap::new()),
            entropy_seed: None,
            map_run_limits: OnceLock::new(),
        }
    }

    /// Where the run reads the limits an operator set on its running Map Runs
    /// (`UpdateMapRun`): asked as each Map Run item starts and fails.
    pub fn set_map_run_limits(&self, source: MapRunLimitSource) {
        let _ = self.map_run_limits.set(source);
    }

    /// Makes the run's random draws (`States.UUID`, `$random()`, ...) a function of `seed` and
    /// each state visit, so that replays draw the same values. The seed must be the same for
    /// every run of the execution and unguessable (derive it from a secret).
    pub fn with_entropy_seed(mut self, seed: u64) -> Self {
        self.entropy_seed = Some(seed);
        self
    }

    /// Declares whether the run about to start is the execution's first (nothing recorded, not
    /// even a history event): then no task attempt can have a journal entry before this run
    /// writes one, and [`super::JournalingRunner`] does not look for one.
    pub fn set_fresh(&self, fresh: bool) {
        self.fresh.store(fresh, Ordering::SeqCst);
    }

    /// See [`ExecControl::set_fresh`].
    pub fn is_fresh(&self) -> bool {
        self.fresh.load(Ordering::SeqCst)
    }

    /// Lets the results of attempts that only the run itself completes (plugin and Lambda
    /// tasks) be stored by `sink` instead of the journal tree (e.g. beside the history the run
    /// writes anyway): one write less per task. Whoever sets it hands those entries back to
    /// every later run with [`ExecControl::set_recorded`].
    pub fn set_record_sink(&self, sink: RecordSink) {
        let _ = self.record_sink.set(sink);
    }

    /// The sink set by [`ExecControl::set_record_sink`].
    pub fn record_sink(&self) -> Option<&RecordSink> {
        self.record_sink.get()
    }

    /// The entries earlier runs recorded through the sink, by entry key.
    pub fn set_recorded(&self, entries: HashMap<String, Entry>) {
        *self.recorded.lock().unwrap_or_else(|e| e.into_inner()) = entries;
    }

    /// What the journal knows of entry `k`: an entry recorded through the sink wins (it is a
    /// final result), else the journal's own.
    pub fn lookup(&self, k: &str) -> Result<Option<Entry>, DurableError> {
        if let Some(e) = self
            .recorded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(k)
        {
            return Ok(Some(e.clone()));
        }
        self.journal.get(k)
    }

    /// Writes an entry only the run itself writes (a pinned digest): through the record sink
    /// when one is set (durable by the next commit), else into the journal.
    pub fn record(&self, k: &str, e: &Entry) -> Result<(), DurableError> {
        match self.record_sink() {
            Some(sink) => {
                sink(self.journal.execution(), k, self.journal.encode(k, e)?);
                Ok(())
            }
            None => self.journal.put(k, e),
        }
    }

    /// Declares how many times the execution was redriven (see
    /// [`ExecControl::token_generation`]).
    pub fn set_redrive_count(&self, n: u32) {
        self.redrive_count.store(n, Ordering::SeqCst);
    }

    /// The redrive generation the task token of attempt `attempt_key` derives from: the redrive
    /// during which the attempt first ran, journaled as [`Entry::Generation`] when that was a
    /// redrive (an attempt recorded without one ran before any redrive: 0).
    pub fn token_generation(&self, attempt_key: &str) -> Result<u32, DurableError> {
        let current = self.redrive_count.load(Ordering::SeqCst);
        if current == 0 && self.is_fresh() {
            return Ok(0);
        }
        let gen_key = format!("{attempt_key}:gen");
        if let Some(Entry::Generation { n }) = self.journal.get(&gen_key)? {
            return Ok(n);
        }
        if current == 0 || self.lookup(attempt_key)?.is_some() {
            return Ok(0);
        }
        // (durable with the attempt's own entry, at the commit after it ends)
        self.journal
            .put(&gen_key, &Entry::Generation { n: current })?;
        Ok(current)
    }

    /// The execution's journal.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// Waits until the journal's writes so far are on disk.
    pub fn commit(&self) -> Result<(), DurableError> {
        self.commit.commit()
    }

    /// StopExecution: the run unwinds at its next state, wait or task boundary.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// True once StopExecution was called.
    pub fn is_stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// True when the run must unwind (stopped, or the process is shutting down).
    pub fn is_cancelled(&self) -> bool {
        self.is_stopped() || self.shutdown.load(Ordering::SeqCst)
    }

    /// Records why the run unwinds and returns the error that unwinds it. Branches and
    /// iterations of one run may suspend for different reasons: the run resumes at the earliest
    /// timer, or when an external answer arrives if none is set (a replay suspends again on
    /// whatever is still pending).
    pub fn suspend_for(&self, s: Suspension) -> StateError {
        let mut cur = self.suspension.lock().unwrap_or_else(|e| e.into_inner());
        *cur = Some(match (cur.take(), s) {
            (Some(Suspension::Timer { until_ms: a }), Suspension::Timer { until_ms: b }) => {
                Suspension::Timer { until_ms: a.min(b) }
            }
            (Some(t @ Suspension::Timer { .. }), Suspension::External) => t,
            (_, s) => s,
        });
        suspended("the execution is suspended")
    }

    /// Why the run unwound (None: stopped or shut down).
    pub fn take_suspension(&self) -> Option<Suspension> {
        self.suspension
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// Sleeps up to `d`, waking early when the run is cancelled.
    pub fn nap(&self, d: Duration) {
        self.nap_unless(d, &Cancellation::none())
    }

    /// [`Self::nap`], waking early also when `branch` is thrown.
    pub fn nap_unless(&self, d: Duration, branch: &Cancellation) {
        let end = std::time::Instant::now() + d;
        loop {
            if self.is_cancelled() || branch.is_cancelled() {
                return;
            }
            let now = std::time::Instant::now();
            if now >= end {
                return;
            }
            std::thread::sleep((end - now).min(Duration::from_millis(20)));
        }
    }

    fn db_error(e: DurableError) -> StateError {
        // the journal cannot be written: unwind; the run resumes from what is on disk
        tracing::error!("journal: {e}");
        suspended(&format!("the journal cannot be written: {e}"))
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl RunControl for ExecControl {
    fn entropy_seed(&self) -> Option<u64> {
        self.entropy_seed
    }

    fn map_run_limits(&self, map_run_arn: &str) -> Option<weft_asl::MapRunLimits> {
        self.map_run_limits.get().and_then(|f| f(map_run_arn))
    }

    fn check(&self) -> Result<(), StateError> {
        if self.is_cancelled() {
            return Err(suspended("the execution is stopping"));
        }
        Ok(())
    }

    fn wait_until(
        &self,
        key: &str,
        until_ms: i64,
        _depth: usize,
        cancel: &Cancellation,
    ) -> Result<(), StateError> {
        let until = match self.journal.get(key).map_err(Self::db_error)? {
            Some(Entry::Timer { until_ms }) => until_ms,
            _ => {
                self.journal
                    .put(key, &Entry::Timer { until_ms })
                    .map_err(Self::db_error)?;
                self.commit().map_err(Self::db_error)?;
                until_ms
            }
        };
        loop {
            self.check()?;
            let now = now_ms();
            // a sibling branch failed: the interpreter unwinds this one
            if now >= until || cancel.is_cancelled() {
                return Ok(());
            }
            if until - now >= self.suspend_after_ms {
                return Err(self.suspend_for(Suspension::Timer { until_ms: until }));
            }
            self.nap_unless(Duration::from_millis((until - now) as u64), cancel);
        }
    }
}
