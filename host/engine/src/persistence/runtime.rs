//! The contract of the Standard-execution runtime's durable state, for the implementations to
//! come (today the server keeps this state in sled trees of its own: `sfn_executions`,
//! `sfn_history`, `sfn_journal`, `sfn_tokens`, `sfn_activities`, ...).
//!
//! The execution records themselves are behind [`super::ExecutionRecords`]. The unit of
//! writing is a *step*: whatever one run of an execution produced between two commits
//! (history events, journal entries, the execution record when it ends), written by
//! [`StepStore::commit_step`] in one transaction. Each step carries the [`Lease`] epoch its
//! node holds; an implementation shared by several nodes refuses a step whose epoch is not the
//! execution's current one ([`PersistenceError::Fenced`]), so a node paused past its lease
//! writes nothing after another node adopted the execution. sled (one process) has a single
//! owner and checks nothing. Task tokens and activities are behind [`super::tokens`]. Timers are claimed, not read: [`TimerStore::claim_due`] hands each
//! due timer to one node (PostgreSQL: `FOR UPDATE SKIP LOCKED`).
//!
//! Records are passed as their JSON encodings: their types live with the runtime, which moves
//! into the engine behind these traits.

use super::PersistenceError;

/// Ownership of one running execution by one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// Execution ARN.
    pub execution: String,
    /// The owning node's id.
    pub owner: String,
    /// Grows by one at every adoption; every write of the execution carries it.
    pub epoch: i64,
    /// When the lease ends unless renewed (epoch ms).
    pub expires_ms: i64,
}

/// One write to an execution's journal.
#[derive(Debug, Clone, PartialEq)]
pub enum JournalWrite {
    /// Sets entry `key` to `json`.
    Put {
        /// Entry key (`/3.1@2`, `/3.1:wait`, ...).
        key: String,
        /// The entry's JSON.
        json: Vec<u8>,
    },
    /// Removes entry `key`.
    Remove {
        /// Entry key.
        key: String,
    },
    /// Removes the whole journal (the execution succeeded).
    Clear,
}

/// What one run of an execution produced, committed at once.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Step {
    /// Execution ARN.
    pub execution: String,
    /// The writer's lease epoch (`None`: a single-process store).
    pub epoch: Option<i64>,
    /// History events `(id, JSON)`, ids consecutive after the last committed one.
    pub history: Vec<(u64, Vec<u8>)>,
    /// Journal writes, in order.
    pub journal: Vec<JournalWrite>,
    /// The execution record's new JSON (its end), if it changed.
    pub record: Option<Vec<u8>>,
}

/// Executions' history and journal.
pub trait StepStore: Send + Sync {
    /// Commits a step atomically; [`PersistenceError::Fenced`] when its epoch is stale.
    fn commit_step(&self, step: Step) -> Result<(), PersistenceError>;
    /// Writes a journal entry unless the key already holds an attempt's result (callbacks,
    /// timeouts and workers racing to complete an attempt); true when written.
    fn complete_attempt(
        &self,
        arn: &str,
        key: &str,
        json: &[u8],
        epoch: Option<i64>,
    ) -> Result<bool, PersistenceError>;
    /// An execution's journal, in key order.
    fn journal(&self, arn: &str) -> Result<Vec<(String, Vec<u8>)>, PersistenceError>;
    /// History events with ids above `after`, at most `limit`.
    fn history(
        &self,
        arn: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, PersistenceError>;
}

/// Leases of running executions (several nodes; a single-process store grants every lease).
pub trait LeaseStore: Send + Sync {
    /// Takes the lease of `arn` for `owner` when it is free or expired (a new epoch); `None`
    /// while another node holds it.
    fn acquire(
        &self,
        arn: &str,
        owner: &str,
        ttl_ms: i64,
    ) -> Result<Option<Lease>, PersistenceError>;
    /// Extends the leases `owner` holds; returns those it lost.
    fn renew(&self, owner: &str, ttl_ms: i64) -> Result<Vec<String>, PersistenceError>;
    /// Gives a lease up (the run ended or suspended).
    fn release(&self, lease: &Lease) -> Result<(), PersistenceError>;
    /// RUNNING executions whose lease expired (to adopt), at most `limit`.
    fn orphans(&self, now_ms: i64, limit: usize) -> Result<Vec<String>, PersistenceError>;
}

/// Timers (Wait states, retry back-offs, token deadlines), fired once cluster-wide.
pub trait TimerStore: Send + Sync {
    /// Arms (or moves earlier) the timer `id` at `at_ms`.
    fn arm(&self, id: &str, at_ms: i64) -> Result<(), PersistenceError>;
    /// Removes the timers due at `now_ms` and hands them to the caller, at most `limit`; a
    /// timer is handed to one caller only.
    fn claim_due(&self, now_ms: i64, limit: usize) -> Result<Vec<(String, i64)>, PersistenceError>;
}
