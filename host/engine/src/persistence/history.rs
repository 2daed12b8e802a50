//! [`HistoryStore`]: the history events of Standard executions, the task logs of their
//! sandboxed attempts and the journal entries only a run records, written in batches by the
//! group committer (one writer at a time, right before each flush) and read back by the API,
//! replays and the Map Run views.
//!
//! What each database guarantees: a batch's writes are durable together at the next flush; an
//! execution's events read back in id order; every task-log entry of an execution is returned
//! by [`HistoryStore::task_logs`]; every journal entry of a batch is returned either by
//! [`HistoryStore::journal_lines`] or by the execution's journal (the runtime reads both).

use super::PersistenceError;

/// One history event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventWrite {
    /// Execution ARN.
    pub execution: String,
    /// Event id (consecutive within an execution).
    pub id: u64,
    /// The event's JSON.
    pub json: String,
}

/// One task attempt's log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskLogWrite {
    /// Execution ARN.
    pub execution: String,
    /// Its sequence number: entries list in this order.
    pub seq: u64,
    /// The state that ran the task.
    pub state: String,
    /// The attempt (1-based).
    pub attempt: u32,
    /// The entry's JSON.
    pub json: String,
}

/// One journal entry a run records (a task's result).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalLine {
    /// Execution ARN.
    pub execution: String,
    /// The entry key within the execution's journal.
    pub key: String,
    /// The entry's JSON.
    pub json: Vec<u8>,
}

/// The writes of one group commit, each list in the order written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryBatch {
    /// History events.
    pub events: Vec<EventWrite>,
    /// Task log entries.
    pub task_logs: Vec<TaskLogWrite>,
    /// Journal entries.
    pub journal: Vec<JournalLine>,
}

impl HistoryBatch {
    /// Nothing to write.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.task_logs.is_empty() && self.journal.is_empty()
    }

    /// Refuses the batch when a key or record is over the caps of [`super::limits`] or an id
    /// over `i64::MAX` (every database refuses the same batches, before writing any of it).
    pub fn check(&self) -> Result<(), PersistenceError> {
        use super::limits::{key, record};
        let too_big = |what, n: u64| PersistenceError::Invalid {
            what,
            reason: format!("{n} is over {}", i64::MAX),
        };
        for e in &self.events {
            key("execution ARN", &e.execution)?;
            record("history event", e.json.as_bytes())?;
            if i64::try_from(e.id).is_err() {
                return Err(too_big("history event id", e.id));
            }
        }
        for t in &self.task_logs {
            key("execution ARN", &t.execution)?;
            key("state name", &t.state)?;
            record("task log entry", t.json.as_bytes())?;
            if i64::try_from(t.seq).is_err() {
                return Err(too_big("task log sequence number", t.seq));
            }
        }
        for j in &self.journal {
            key("execution ARN", &j.execution)?;
            key("journal entry key", &j.key)?;
            record("journal entry", &j.json)?;
        }
        Ok(())
    }
}

/// A visitor of stored runs of events: the id of the run's last event and the events' JSON,
/// oldest first; answers false to stop.
pub type RunVisit<'a> = &'a mut dyn FnMut(u64, Vec<Vec<u8>>) -> bool;

/// History events, task logs and run-recorded journal entries.
pub trait HistoryStore: Send + Sync {
    /// Writes a batch (one writer at a time).
    fn write_batch(&self, batch: &HistoryBatch) -> Result<(), PersistenceError>;
    /// Writes one event outside a batch (an event the API itself appends).
    fn put_event(&self, execution: &str, id: u64, json: &[u8]) -> Result<(), PersistenceError>;
    /// Hands `visit` the stored runs of an execution's events, oldest first (`reverse`:
    /// newest first), until it answers false.
    fn each_run(
        &self,
        execution: &str,
        reverse: bool,
        visit: RunVisit<'_>,
    ) -> Result<(), PersistenceError>;
    /// The id of an execution's last stored event (0: none).
    fn last_event_id(&self, execution: &str) -> Result<u64, PersistenceError>;
    /// An execution's task log entries `(sequence number, JSON)`, in no particular order.
    fn task_logs(&self, execution: &str) -> Result<Vec<(u64, Vec<u8>)>, PersistenceError>;
    /// The journal entries of an execution that batches stored beside its history
    /// `(entry key, JSON)`, oldest first.
    fn journal_lines(&self, execution: &str) -> Result<Vec<(String, Vec<u8>)>, PersistenceError>;
}
