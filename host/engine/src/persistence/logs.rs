//! [`AppendLog`]: an append-only log of JSON records ordered by time — the API audit log and
//! the execution log (Express executions, and Standard ones whose `loggingConfiguration` asks
//! for it) — read newest first. Each database implements it with the same ordering: by the
//! time the writer gave, then by the order of appends.

use super::executions::Visit;
use super::PersistenceError;

/// An append-only, time-ordered log.
pub trait AppendLog: Send + Sync {
    /// Appends records `(time in epoch ms, JSON)` at once.
    fn append(&self, records: &[(i64, Vec<u8>)]) -> Result<(), PersistenceError>;
    /// Hands `visit` the records newest first until it answers false.
    fn newest_first(&self, visit: Visit<'_>) -> Result<(), PersistenceError>;
}
