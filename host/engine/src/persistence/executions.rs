//! [`ExecutionRecords`]: the records of Step Functions executions and their index by state
//! machine and start time, as one trait that each database implements with the same
//! observable behaviour.
//!
//! A record crosses the boundary as the JSON its owner (the server's execution record)
//! encodes; the store reads only the fields of [`IndexedFields`] from it, to keep the index
//! that makes a state machine's summary ([`ExecutionRecords::summary`]) a range read of that
//! state machine's recent executions rather than a scan of every record. Every write of a
//! record brings the index in line with it.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::catalog::Update;
use super::PersistenceError;

/// Statuses counted by a summary, in the order the UI shows them.
pub const STATUSES: [&str; 6] = [
    "RUNNING",
    "SUCCEEDED",
    "FAILED",
    "TIMED_OUT",
    "ABORTED",
    "PENDING_REDRIVE",
];

/// The fields of an execution record the store indexes (every record has them).
#[derive(Debug, Clone, Deserialize)]
pub struct IndexedFields {
    /// The state machine's name.
    pub state_machine_name: String,
    /// The execution's name.
    pub name: String,
    /// Start (epoch ms).
    pub start_ms: i64,
    /// RUNNING | SUCCEEDED | FAILED | TIMED_OUT | ABORTED | PENDING_REDRIVE
    pub status: String,
}

impl IndexedFields {
    /// Reads the indexed fields of a record.
    pub fn of(json: &[u8]) -> Result<Self, PersistenceError> {
        serde_json::from_slice(json).map_err(|e| PersistenceError::Corrupt {
            what: "execution",
            reason: e.to_string(),
        })
    }
}

/// Refuses a record over the caps of [`super::limits`] or without the indexed fields (every
/// database refuses the same records); its indexed fields otherwise.
pub fn checked(arn: &str, json: &[u8]) -> Result<IndexedFields, PersistenceError> {
    use super::limits::{key, record};
    key("execution ARN", arn)?;
    record("execution record", json)?;
    let f = IndexedFields::of(json)?;
    key("state machine name", &f.state_machine_name)?;
    key("execution name", &f.name)?;
    key("execution status", &f.status)?;
    Ok(f)
}

/// Whether an execution in `status` counts as running in a summary whatever its start.
pub fn is_running(status: &str) -> bool {
    matches!(status, "RUNNING" | "PENDING_REDRIVE")
}

/// One state machine's executions over a window.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Executions by status: started in the window, plus every execution running now.
    pub counts: BTreeMap<String, u64>,
    /// Start (epoch ms) of the newest execution, if any.
    pub last_start_ms: Option<i64>,
}

/// What a visitor of records answers: go on or stop.
pub type Visit<'a> = &'a mut dyn FnMut(&[u8]) -> bool;

/// Execution records, by execution ARN, and their index.
pub trait ExecutionRecords: Send + Sync {
    /// An execution's record.
    fn execution(&self, arn: &str) -> Result<Option<Vec<u8>>, PersistenceError>;
    /// Inserts a new execution; when `arn` exists nothing is written and its current record
    /// is returned.
    fn insert_execution(&self, arn: &str, json: &[u8])
        -> Result<Option<Vec<u8>>, PersistenceError>;
    /// Writes a record, whatever was there.
    fn put_execution(&self, arn: &str, json: &[u8]) -> Result<(), PersistenceError>;
    /// Rewrites a record atomically through `f`.
    fn update_execution(&self, arn: &str, f: Update<'_>) -> Result<(), PersistenceError>;
    /// [`ExecutionRecords::update_execution`] by the run of a node that owned the execution at
    /// fencing `epoch` when the run began (`None`: no lease, one process): refused
    /// ([`PersistenceError::Fenced`]) where another node adopted it since. A store with one
    /// writer process has nothing to fence.
    fn update_execution_at(
        &self,
        arn: &str,
        epoch: Option<i64>,
        f: Update<'_>,
    ) -> Result<(), PersistenceError> {
        let _ = epoch;
        self.update_execution(arn, f)
    }
    /// Hands `visit` every record whose ARN starts with `arn_prefix` (`""`: all), in ARN
    /// order, until it answers false.
    fn each_execution(&self, arn_prefix: &str, visit: Visit<'_>) -> Result<(), PersistenceError>;
    /// Executions of `state_machine` that started at or after `since_ms`, by status, plus
    /// those running now that started earlier; and the newest execution's start.
    fn summary(&self, state_machine: &str, since_ms: i64) -> Result<Summary, PersistenceError>;
    /// Repairs the index entry of a record read at start-up, before anything changes records
    /// (a store whose index is written with its records has nothing to repair).
    fn repair_index(&self, json: &[u8]) -> Result<(), PersistenceError>;
}
