//! The persistence interface: everything durable goes through the traits here, implemented once
//! per database — sled (embedded, one process: the default) in [`sled_dag`] and PostgreSQL
//! (several nodes on one database) in [`pg`]. Code above this module asks for a trait object
//! and never learns which database is below it; each implementation runs the same test suite.
//!
//! What is behind the interface so far: the DAG scheduler's store ([`DagStore`]: runs, task
//! instances, per-try logs, SLA misses, seen files) and the Step Functions catalog
//! ([`CatalogStore`]: state machines, versions, aliases, resource maps, tags; on sled in
//! [`sled_catalog`]) and execution records with their index by state machine and start
//! ([`ExecutionRecords`]; on sled in [`sled_executions`]), the audit and execution logs
//! ([`AppendLog`]) and Map Runs ([`MapRunStore`]; both on sled in [`sled_logs`]), history and
//! task logs ([`history::HistoryStore`]), task tokens and activities ([`tokens`]) and the
//! runtime's journal ([`crate::durable::JournalBackend`]): each on sled and on PostgreSQL
//! ([`pg`]), opened together by [`sfn::SfnStores`]. Both refuse the same keys and records
//! ([`limits`]). Several nodes share a PostgreSQL database through [`pg::cluster`]: node leases,
//! execution ownership with fencing epochs that every write checks, adoption of a dead node's
//! executions, and wake-ups between nodes.
//!
//! [`Database`] is what a process opens once, from `--db`/`WEFT_DB` (a `postgres://` URL) or
//! its sled store, and hands out the stores of each concern.

pub mod asset_query;
pub mod catalog;
pub mod dag;
pub mod dag_lease;
mod error;
pub mod executions;
pub mod history;
pub mod limits;
pub mod logs;
pub mod map_runs;
pub mod pending;
pub mod pg;
pub mod sfn;
pub mod sled_catalog;
pub mod sled_dag;
pub mod sled_executions;
pub mod sled_history;
pub mod sled_logs;
pub mod sled_tokens;
pub mod tokens;

pub use catalog::CatalogStore;
pub use dag::{Committer, Coordination, DagStore};
pub use dag_lease::{DagLeases, Fence, Holding, SlotAsk, SlotKey, SoleLeases};
pub use error::PersistenceError;
pub use executions::ExecutionRecords;
pub use logs::AppendLog;
pub use map_runs::MapRunStore;
pub use pg::PgDatabase;

use crate::scheduler::{SchedStore, SchedulerError};

/// The database a process keeps its durable state in.
#[derive(Clone)]
pub enum Database {
    /// The embedded sled store of one process.
    Sled(sled::Db),
    /// A PostgreSQL database shared by every node.
    Postgres(PgDatabase),
}

impl Database {
    /// Opens `url` when it is given (`postgres://USER@HOST:PORT/DB`: connects, creates or
    /// migrates the schema), else uses `sled`.
    pub fn open(url: Option<&str>, sled: &sled::Db) -> Result<Self, PersistenceError> {
        match url {
            Some(u) => Ok(Database::Postgres(PgDatabase::connect(u)?)),
            None => Ok(Database::Sled(sled.clone())),
        }
    }

    /// The DAG scheduler's store on this database.
    pub fn dag_store(&self) -> Result<SchedStore, SchedulerError> {
        Ok(match self {
            Database::Sled(db) => SchedStore::open(db)?,
            Database::Postgres(pg) => SchedStore::postgres(pg),
        })
    }

    /// A short name for logs: `sled` or `postgres HOST:PORT/DB`.
    pub fn describe(&self) -> String {
        match self {
            Database::Sled(_) => "sled".into(),
            Database::Postgres(pg) => format!("postgres {}", pg.target()),
        }
    }
}
