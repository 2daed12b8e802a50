//! The scheduler's persistent records ([`DagRunRecord`], [`StoredTi`]) and [`SchedStore`], the
//! handle the scheduler and its callers hold: a [`DagStore`] on whichever database the process
//! uses (sled by default, PostgreSQL with `--db`; see [`crate::persistence`]).
//!
//! The loop writes a whole pass of state changes with [`DagStore::write_tis`] (one atomic batch
//! per run) and commits it before acting on it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use weft_dag::TiRecord;

use crate::persistence::sled_dag::SledDagStore;
use crate::persistence::{DagStore, PgDatabase};
use std::sync::Arc;

use super::SchedulerError;

/// One DAG run as persisted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DagRunRecord {
    /// DAG id.
    pub dag_id: String,
    /// Run id (`scheduled__...`, `manual__...`, `backfill__...`, `file__...`).
    pub run_id: String,
    /// `scheduled`, `manual`, `backfill` or `file_trigger`.
    pub run_type: String,
    /// Logical date.
    pub logical_date: DateTime<Utc>,
    /// Data interval start.
    pub data_interval_start: DateTime<Utc>,
    /// Data interval end.
    pub data_interval_end: DateTime<Utc>,
    /// `queued`, `running`, `success` or `failed`.
    pub state: String,
    /// Run conf (`dag_run.conf`).
    #[serde(default)]
    pub conf: Map<String, Value>,
    /// When the run was created.
    pub queued_at: DateTime<Utc>,
    /// When it started running.
    #[serde(default)]
    pub start_date: Option<DateTime<Utc>>,
    /// When it finished.
    #[serde(default)]
    pub end_date: Option<DateTime<Utc>>,
    /// The note a user left on the run (Airflow's DAG run note).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl DagRunRecord {
    /// Success or failed.
    pub fn is_finished(&self) -> bool {
        matches!(self.state.as_str(), "success" | "failed")
    }
}

/// One task instance as persisted: the machine's record plus wall-clock times.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredTi {
    /// The run machine's view.
    #[serde(flatten)]
    pub ti: TiRecord,
    /// Start of the latest try (epoch seconds).
    #[serde(default)]
    pub start_date: Option<f64>,
    /// End of the latest try (epoch seconds).
    #[serde(default)]
    pub end_date: Option<f64>,
    /// The host that ran the latest try (Airflow's `hostname`): a remote worker's host, else
    /// the node's (or the `weft dag test` process's); set when the try ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
}

/// The scheduler's store: a cheap handle on a [`DagStore`] (it dereferences to the trait).
#[derive(Clone)]
pub struct SchedStore(Arc<dyn DagStore>);

impl SchedStore {
    /// The store in sled database `db` (creating its trees).
    pub fn open(db: &sled::Db) -> Result<Self, SchedulerError> {
        Ok(SchedStore(Arc::new(SledDagStore::open(db)?)))
    }

    /// The store in a PostgreSQL database.
    pub fn postgres(db: &PgDatabase) -> Self {
        SchedStore(Arc::new(db.dag_store()))
    }

    /// A store over any implementation.
    pub fn new(store: Arc<dyn DagStore>) -> Self {
        SchedStore(store)
    }
}

impl std::ops::Deref for SchedStore {
    type Target = dyn DagStore;

    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}
