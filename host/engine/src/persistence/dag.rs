//! [`DagStore`]: the DAG scheduler's durable state — runs, task instances, per-try logs, SLA
//! misses, the files a file-arrival trigger has seen, whether a DAG is paused, asset events and
//! each DAG's queue of them — as one trait that each database
//! implements with the same observable behaviour (orderings included).

use serde_json::Value;

use super::asset_query::{AssetEventPage, AssetEventQuery, AssetStats};
use crate::scheduler::{AssetEvent, DagRunRecord, QueuedAssetEvent, SchedulerError, StoredTi};

/// A scheduler's fenced store and its leases ([`DagStore::coordinate`]).
pub struct Coordination {
    /// The store, fenced by the leases.
    pub store: std::sync::Arc<dyn DagStore>,
    /// The leases and shared pool slots.
    pub leases: std::sync::Arc<dyn super::DagLeases>,
}

/// A background flusher: asked to make recent writes durable soon, without waiting for it.
pub trait Committer: Send + Sync {
    /// Asks for a flush soon.
    fn nudge(&self);
}

impl Committer for crate::durable::GroupCommit {
    fn nudge(&self) {
        crate::durable::GroupCommit::nudge(self);
    }
}

/// The scheduler's store.
///
/// Orderings every implementation keeps: a DAG's runs by logical date; a run's task instances
/// by task id (bytewise) then map index; logs by map index then try number.
pub trait DagStore: Send + Sync {
    /// Inserts a new run; refuses ([`SchedulerError::RunExists`]) a second run of the DAG at
    /// the same logical date or with the same run id (Airflow's unique constraints), also when
    /// two schedulers race.
    fn insert_run(&self, rec: &DagRunRecord) -> Result<(), SchedulerError>;
    /// Overwrites a run's record.
    fn put_run(&self, rec: &DagRunRecord) -> Result<(), SchedulerError>;
    /// A run by id.
    fn get_run(&self, dag_id: &str, run_id: &str) -> Result<Option<DagRunRecord>, SchedulerError>;
    /// A DAG's runs in logical-date order.
    fn runs_of(&self, dag_id: &str) -> Result<Vec<DagRunRecord>, SchedulerError>;
    /// The newest `n` runs of a DAG (by logical date), in logical-date order: the "recent
    /// runs" of a DAG list, read without loading every run.
    fn recent_runs(&self, dag_id: &str, n: usize) -> Result<Vec<DagRunRecord>, SchedulerError>;
    /// Every run not yet finished (queued or running), any DAG, by DAG id then logical date.
    fn unfinished_runs(&self) -> Result<Vec<DagRunRecord>, SchedulerError>;
    /// The latest run of a DAG of one of `types` (the timetable's "last automated run").
    fn last_run(
        &self,
        dag_id: &str,
        types: &[&str],
    ) -> Result<Option<DagRunRecord>, SchedulerError>;
    /// Every task instance of a run.
    fn tis_of(&self, dag_id: &str, run_id: &str) -> Result<Vec<StoredTi>, SchedulerError>;
    /// Applies a batch of task-instance writes atomically: `replace` lists tasks whose
    /// instances are all rewritten (expansion), `put` the instances to write.
    fn write_tis(
        &self,
        dag_id: &str,
        run_id: &str,
        replace: &[String],
        put: &[StoredTi],
    ) -> Result<(), SchedulerError>;
    /// Appends an entry to a try's log.
    fn append_log(
        &self,
        dag_id: &str,
        run_id: &str,
        task_id: &str,
        map_index: i64,
        try_number: u32,
        entry: Value,
    ) -> Result<(), SchedulerError>;
    /// A task's logs: `(map_index, try_number, entries)` in order.
    fn logs_of(
        &self,
        dag_id: &str,
        run_id: &str,
        task_id: &str,
    ) -> Result<Vec<(i64, u32, Vec<Value>)>, SchedulerError>;
    /// Records an SLA miss once; false when it was already recorded.
    fn record_sla_miss(
        &self,
        dag_id: &str,
        run_id: &str,
        task_id: &str,
        rec: &Value,
    ) -> Result<bool, SchedulerError>;
    /// A DAG's recorded SLA misses, by run id then task id.
    fn sla_misses(&self, dag_id: &str) -> Result<Vec<Value>, SchedulerError>;
    /// Whether a file-arrival trigger has seen `path` at `mtime`; records it when not.
    fn see_file(&self, dag_id: &str, path: &str, mtime: f64) -> Result<bool, SchedulerError>;
    /// Deletes everything stored about a DAG (runs, task instances, logs, SLA misses, seen
    /// files, its paused flag, its queued asset events; the events it produced stay), as Airflow's `dags delete`; returns how many runs were deleted.
    fn delete_dag(&self, dag_id: &str) -> Result<usize, SchedulerError>;
    /// Deletes one run with its task instances, logs and SLA misses (Airflow's "delete DAG
    /// run"); false when there was no such run.
    fn delete_run(&self, dag_id: &str, run_id: &str) -> Result<bool, SchedulerError>;
    /// Whether a DAG was paused or unpaused (`None`: never set, the DAG's default applies).
    fn dag_paused(&self, dag_id: &str) -> Result<Option<bool>, SchedulerError>;
    /// Records that a DAG is paused (its timetable creates no runs) or unpaused.
    fn set_dag_paused(&self, dag_id: &str, paused: bool) -> Result<(), SchedulerError>;
    /// Records an asset event (its `id` is assigned here, increasing) and queues it for each
    /// of `consumers` (DAG ids), in one transaction; returns the event as stored.
    fn add_asset_event(
        &self,
        event: &AssetEvent,
        consumers: &[String],
    ) -> Result<AssetEvent, SchedulerError>;
    /// Asset events in id order: all of them, or those with the given ids.
    fn asset_events(&self, ids: Option<&[i64]>) -> Result<Vec<AssetEvent>, SchedulerError>;
    /// One page of the asset events `q` selects, in its order, with how many match in all;
    /// the database filters, orders and pages (see [`AssetEventQuery`]).
    fn asset_events_page(&self, q: &AssetEventQuery) -> Result<AssetEventPage, SchedulerError>;
    /// Every asset with recorded events: its count, first and latest event, by URI
    /// (bytewise).
    fn asset_stats(&self) -> Result<Vec<AssetStats>, SchedulerError>;
    /// Queued events of one DAG or of every DAG, by DAG id then event id.
    fn asset_queue(&self, dag_id: Option<&str>) -> Result<Vec<QueuedAssetEvent>, SchedulerError>;
    /// Deletes queued events (Airflow's "clear queued events"): of one DAG or of every DAG,
    /// of the assets in `uris` or of every asset; returns how many were deleted.
    fn delete_asset_queue(
        &self,
        dag_id: Option<&str>,
        uris: Option<&[String]>,
    ) -> Result<usize, SchedulerError>;
    /// Creates an asset-triggered run and consumes the queued events it was created from, in
    /// one transaction: refuses ([`SchedulerError::RunExists`]) as [`DagStore::insert_run`]
    /// does, and ([`SchedulerError::AssetEventsTaken`]) when one of `consumed` is no longer
    /// queued (another scheduler consumed it); a refused call creates and consumes nothing. The run's triggering events are recorded with it.
    fn create_asset_run(
        &self,
        rec: &DagRunRecord,
        consumed: &[QueuedAssetEvent],
    ) -> Result<(), SchedulerError>;
    /// The ids of the events that triggered an asset-triggered run (empty for other runs).
    fn triggering_event_ids(&self, dag_id: &str, run_id: &str) -> Result<Vec<i64>, SchedulerError>;
    /// Makes every write so far durable (a no-op where each write commits on its own).
    fn flush(&self) -> Result<(), SchedulerError>;
    /// The coordination of scheduler `owner` on this database: a handle on this store whose
    /// run and task-instance writes on the DAGs the scheduler has held are fenced by their
    /// leases, and those leases with the shared pool slots (see [`super::dag_lease`]).
    fn coordinate(&self, owner: &str) -> Result<Coordination, SchedulerError>;
    /// A background flusher for the scheduler loop's passes (`None`: writes are durable when
    /// they return).
    fn committer(&self) -> Result<Option<Box<dyn Committer>>, SchedulerError>;
}
