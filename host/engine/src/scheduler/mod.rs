//! weft's persistent DAG scheduler, with Apache Airflow's semantics.
//!
//! The pure run semantics (trigger rules, branching, mapping, retries, sensors' reschedules and
//! timeouts, XCom) live in [`weft_dag::RunMachine`]; this module keeps machines for the active
//! runs, persists every task-instance state change before acting on it, and runs task
//! instances on an autoscaling worker pool. Modules, one job each:
//! - [`store`]: the persisted records and the handle on the store ([`crate::persistence::DagStore`]:
//!   runs, task instances, per-try logs, SLA misses, seen files; sled or PostgreSQL);
//! - [`workers`]: the autoscaling thread pool;
//! - [`pools`]: Airflow pools (slots shared by tasks across runs);
//! - [`runner`]: the executor interface a scheduler runs tries and callbacks through;
//! - [`core`]: the loop (run creation from timetables, queueing by priority with pools,
//!   `max_active_runs` and `max_active_tasks`, completions, callbacks, SLAs, restart recovery);
//! - [`files`]: the file-arrival trigger;
//! - [`assets`]: asset events and the per-DAG queue asset schedules read;
//! - [`cross_dag`]: `TriggerDagRunOperator` and `ExternalTaskSensor`, run by the scheduler;
//! - [`email`]: Airflow's failure and retry e-mail through `smtp_default`;
//! - [`control`]: marks and notes asked for from outside the loop (the API, the CLI);
//! - `ha`: which DAGs a loop schedules when several schedulers share a database (leases).

pub mod assets;
pub mod control;
pub mod core;
pub mod cross_dag;
pub mod email;
pub mod files;
mod ha;
pub mod pools;
pub mod runner;
pub mod store;
pub mod workers;

pub use self::core::{
    paused_at_creation_from_env, paused_or_default, LoopOptions, Scheduler, SchedulerConfig,
    Trigger, PAUSED_AT_CREATION_ENV,
};
pub use assets::{AssetEvent, QueuedAssetEvent};
pub use control::{related_tasks, Control, ControlRequest, RunMark};
pub use files::FileTrigger;
pub use pools::Pools;
pub use runner::{Plain, TryOutcome, TryRunner};
pub use store::{DagRunRecord, SchedStore, StoredTi};
pub use workers::WorkerPool;

/// What can go wrong in the scheduler.
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    /// The sled store failed or holds a corrupt record.
    #[error("scheduler store: {0}")]
    Store(String),
    /// A run with that logical date or id exists.
    #[error("DAG `{dag_id}`: {detail}")]
    RunExists {
        /// DAG id.
        dag_id: String,
        /// Which constraint.
        detail: String,
    },
    /// No such DAG among the loaded ones.
    #[error("DAG `{0}` is not loaded (see `weft dag list`)")]
    UnknownDag(String),
    /// No such run.
    #[error("DAG `{dag_id}` has no run `{run_id}`")]
    UnknownRun {
        /// DAG id.
        dag_id: String,
        /// Run id.
        run_id: String,
    },
    /// No such task.
    #[error("DAG `{dag_id}` has no task `{task_id}`")]
    UnknownTask {
        /// DAG id.
        dag_id: String,
        /// Task id.
        task_id: String,
    },
    /// A bad configuration file.
    #[error("{0}")]
    Config(String),
    /// The queued asset events a run was to consume were consumed meanwhile (by another
    /// scheduler on the same database): no run was created.
    #[error("DAG `{0}`: its queued asset events were consumed by another scheduler")]
    AssetEventsTaken(String),
    /// A write on a DAG this scheduler no longer holds: another scheduler took its lease over
    /// (the write was refused and nothing was written).
    #[error("DAG `{dag_id}`: {detail}")]
    Fenced {
        /// DAG id.
        dag_id: String,
        /// What was refused.
        detail: String,
    },
}
