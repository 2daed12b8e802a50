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
        runtime_on(home, store, database)
    }

    /// Runs `body` on a runtime over sled, then over a fresh PostgreSQL database of the test
    /// cluster `$WEFT_TEST_PG` (`make test` starts one). Without it the PostgreSQL half is
    /// skipped loudly, unless `WEFT_REQUIRE_PG=1` makes that a failure.
    pub(crate) fn each_runtime(body: impl Fn(&Arc<Runtime>)) {
        let home = tempfile::tempdir().unwrap();
        body(&runtime(home.path()));
        let Some(admin) = std::env::var("WEFT_TEST_PG").ok().filter(|u| !u.is_empty()) else {
            assert!(
                std::env::var("WEFT_REQUIRE_PG").as_deref() != Ok("1"),
                "PostgreSQL is required (WEFT_REQUIRE_PG=1) but WEFT_TEST_PG is not set"
            );
            eprintln!("\n*** SKIPPING the PostgreSQL half: set WEFT_TEST_PG to a cluster ***\n");
            return;
        };
        let db = TestDatabase::create(&admin);
        let home = tempfile::tempdir().unwrap();
        let store = Arc::new(weft_store::Store::open(home.path()).unwrap());
        let pg = crate::persistence::PgDatabase::connect(&db.url).unwrap();
        body(&runtime_on(
            home.path(),
            store,
            crate::persistence::Database::Postgres(pg),
        ));
    }

    /// A database of its own on the cluster at `admin`, dropped with the value.
    struct TestDatabase {
        admin: String,
        name: String,
        url: String,
    }

    impl TestDatabase {
        fn create(admin: &str) -> TestDatabase {
            static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            // (digits only: a database name cannot be a bound parameter)
            let name = format!(
                "weft_unit_{}_{}",
                std::process::id(),
                N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            );
            Self::exec(admin, &format!("DROP DATABASE IF EXISTS {name}"));
            Self::exec(admin, &format!("CREATE DATABASE {name}"));
            let base = admin.rsplit_once('/').map_or(admin, |(b, _)| b);
            TestDatabase {
                admin: admin.to_string(),
                url: format!("{base}/{name}"),
                name,
            }
        }

        fn exec(admin: &str, sql: &str) {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let (client, conn) = tokio_postgres::connect(admin, tokio_postgres::NoTls)
                    .await
                    .unwrap();
                let h = tokio::spawn(conn);
                client.batch_execute(sql).await.unwrap();
                drop(client);
                let _ = h.await;
            })
        }
    }

    impl Drop for TestDatabase {
        fn drop(&mut self) {
            Self::exec(
                &self.admin,
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            );
        }
    }

    /// A runtime on `database`, not started.
    fn runtime_on(
        home: &std::path::Path,
        store: Arc<weft_store::Store>,
        database: crate::persistence::Database,
    ) -> Arc<Runtime> {
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
