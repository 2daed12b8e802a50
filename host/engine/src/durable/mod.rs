//! The durable building blocks of Standard executions, independent of any API: a group
//! committer that batches fsyncs across executions ([`GroupCommit`]), a per-execution journal of
//! task results and timer deadlines in sled ([`Journal`]), the [`weft_asl::RunControl`] that
//! persists timers and unwinds a run to suspend or stop it ([`ExecControl`]), and a task runner
//! that answers replayed tasks from the journal ([`JournalingRunner`]).
//!
//! The model is deterministic replay: an execution is re-run from its input by the ASL
//! interpreter; every task attempt and timer has a key that is stable across replays, so a task
//! whose result is journaled is never run again, a timer keeps its first deadline, and an
//! attempt found started-but-unfinished (the process died under it) fails with
//! `States.TaskFailed` so that the state's Retry policy decides. This module owns no HTTP, no
//! execution records and no history; the server drives it.

mod commit;
mod control;
mod journal;
mod tasks;
mod writeback;

pub use commit::{FlushHook, GroupCommit};
pub use control::{ExecControl, Suspension};
pub use journal::{journal_key, Entry, Journal, RecordSink};
pub use tasks::{attempt_key, task_token, JournalingRunner, INTERRUPTED_CAUSE};
pub use writeback::{JournalBackend, JournalStore, Pairs, Writes};

/// Errors of the durable layer.
#[derive(Debug, thiserror::Error)]
pub enum DurableError {
    /// sled failed.
    #[error("durable store: {0}")]
    Store(#[from] sled::Error),
    /// A journal entry could not be decoded (a damaged or foreign record).
    #[error("journal entry `{key}` of {execution}: {reason}")]
    BadEntry {
        /// Execution ARN.
        execution: String,
        /// Entry key.
        key: String,
        /// Why.
        reason: String,
    },
    /// A store behind the persistence interface failed.
    #[error("durable store: {0}")]
    Persistence(#[from] crate::persistence::PersistenceError),
    /// The committer stopped (the process is shutting down) or fsync failed.
    #[error("group commit: {0}")]
    Commit(String),
}
