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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::Arc;

    /// A service that hears nothing.
    struct Unobserved;

    impl Observer for Unobserved {}

    /// A runtime on the sled store of `home`, not started.
    pub(crate) fn runtime(home: &std::path::Path) -> Arc<Runtime> {
        let store = Arc::new(weft_store::Store::open(home).unwrap());
        let database = crate::persistence::Database::Sled(store.db().clone());
        let stores = crate::persistence::sfn::SfnStores::open(&database).unwrap();
        let settings = Settings {
            max_running: 2,
            per_state_machine: None,
            mocks: None,
            local_tasks: true,
            base_dir: home.to_path_buf(),
            buckets: Arc::new(crate::buckets::Buckets::load(home).unwrap()),
            home_map: Arc::new(crate::resource_map::ResourceMap::default()),
        };
        Arc::new(Runtime::new(
            store,
            database,
            &stores,
            settings,
            Arc::new(Unobserved),
        ))
    }
}
