//! The Step Functions runtime, independent of HTTP: Standard executions (durable, replayed
//! from the journal, crash-resumable, with timers, task tokens, activities, `.sync` children
//! and DAG runs; [`runtime`]), Express executions ([`express`]), the DAG scheduler loop
//! ([`dag_scheduler`]), the tasks they run
//! ([`runner`]: plugins in the sandbox or on remote workers through [`dispatch`] and
//! [`remote_tasks`], mapped integrations, callbacks), their records ([`records`], [`task_logs`],
//! [`map_runs`], [`execution_log`]) and this node's part in a cluster ([`cluster`]).
//!
//! [`Runtime`] is the one context all of it runs on: the persistence interface of the
//! database it was given (sled or PostgreSQL, see [`crate::persistence::sfn::SfnStores`]),
//! the plugin host, roles and buckets. The service around it (the HTTP server: wire protocol,
//! auth, UI, metrics) hears from it through [`Observer`]; errors a caller sees by name are
//! [`RuntimeError`]s.

pub mod arn;
pub mod cluster;
pub mod dag_scheduler;
pub mod definition_roles;
pub mod dispatch;
mod error;
pub mod execution_log;
pub mod express;
pub mod map_runs;
mod observer;
pub mod records;
pub mod remote_tasks;
pub mod resource_maps;
pub mod runner;
pub mod runtime;
pub mod stop_and_redrive;
pub mod task_logs;
pub mod traces;

pub use error::{RuntimeError, INTERNAL, NOT_FOUND, RUN_EXISTS};
pub use observer::Observer;
pub use runtime::{Runtime, Settings};
