//! [`PgDatabase`]: weft's state in PostgreSQL, shared by every node of a cluster. Owns the
//! connection pool (deadpool-postgres over tokio-postgres, no hand-written wire code), the
//! schema's migrations ([`migrate`]) and the bridge between the engine's threads and the async
//! driver.
//!
//! The bridge: the engine's scheduler loop, execution workers and the server's handlers call
//! stores synchronously, some of them from inside the server's tokio runtime, where
//! `Runtime::block_on` would panic. So the database owns a small runtime of its own (two
//! threads, `weft-pg`); [`PgDatabase::run`] spawns a query there and waits for its answer on a
//! channel. The calling thread blocks like on a sled read (the async API of a later server can
//! await the same futures directly); the driver's connections live on the database's runtime
//! only, so they never depend on which thread asked.

mod call;
mod catalog;
pub mod cluster;
mod credentials;
mod dag;
mod dag_lease;
mod executions;
mod history;
mod journal;
mod logs;
pub mod migrate;
mod tokens;

pub use catalog::PgCatalog;
pub use credentials::SharedCredentials;
pub use dag::PgDagStore;
pub use dag_lease::PgDagLeases;
pub use executions::PgExecutions;
pub use history::PgHistory;
pub use journal::PgJournal;
pub use logs::{LogTable, PgLog, PgMapRuns};
pub use tokens::PgTokens;

use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::NoTls;

use super::error::chain;
use super::PersistenceError;

/// Connections a node keeps open at most.
const POOL_SIZE: usize = 16;
/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

struct Inner {
    pool: Pool,
    /// What the pool connects with (the wake-up listener opens a connection of its own).
    cfg: tokio_postgres::Config,
    /// This node's fence once it joined a cluster ([`cluster::Cluster::join`]); until then
    /// (the CLI's commands, tests) writes are not fenced.
    fence: std::sync::OnceLock<Arc<cluster::Fence>>,
    rt: Option<tokio::runtime::Runtime>,
    host: String,
    port: u16,
    dbname: String,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // (may run on a thread of another runtime, where a blocking shutdown would panic)
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// A connected, migrated PostgreSQL database (cheap to clone).
#[derive(Clone)]
pub struct PgDatabase {
    inner: Arc<Inner>,
}

impl PgDatabase {
    /// Connects to `url` (`postgres://USER[:PASSWORD]@HOST[:PORT]/DB`), checks that the server
    /// answers, and creates or migrates weft's schema; refuses a schema newer than this binary
    /// knows ([`PersistenceError::SchemaTooNew`]).
    pub fn connect(url: &str) -> Result<Self, PersistenceError> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(PersistenceError::BadUrl(format!(
                "`{}` is not a postgres:// URL",
                redact(url)
            )));
        }
        let mut cfg = tokio_postgres::Config::from_str(url)
            .map_err(|e| PersistenceError::BadUrl(format!("`{}`: {}", redact(url), chain(&e))))?;
        if cfg.get_connect_timeout().is_none() {
            cfg.connect_timeout(CONNECT_TIMEOUT);
        }
        let host = match cfg.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            #[cfg(unix)]
            Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
            None => "localhost".to_string(),
        };
        let port = cfg.get_ports().first().copied().unwrap_or(5432);
        let dbname = cfg
            .get_dbname()
            .map(str::to_string)
            .or_else(|| cfg.get_user().map(str::to_string))
            .unwrap_or_default();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("weft-pg")
            .enable_all()
            .build()
            .map_err(|e| PersistenceError::Postgres(format!("cannot start its runtime: {e}")))?;
        let mgr = Manager::from_config(
            cfg.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = {
            // (the pool's timers need the runtime it runs on)
            let _g = rt.enter();
            Pool::builder(mgr)
                .max_size(POOL_SIZE)
                .runtime(deadpool_postgres::Runtime::Tokio1)
                .build()
                .map_err(|e| PersistenceError::Postgres(format!("cannot build the pool: {e}")))?
        };
        let db = PgDatabase {
            inner: Arc::new(Inner {
                pool,
                cfg,
                fence: std::sync::OnceLock::new(),
                rt: Some(rt),
                host,
                port,
                dbname,
            }),
        };
        let (host, port) = (db.inner.host.clone(), db.inner.port);
        let pool = db.inner.pool.clone();
        let version = db.run(async move {
            let mut client = pool.get().await.map_err(|e| PersistenceError::Connect {
                host,
                port,
                reason: chain(&e),
            })?;
            migrate::migrate(&mut client).await
        })??;
        tracing::info!(
            database = %db.target(),
            schema = version,
            "connected to PostgreSQL"
        );
        Ok(db)
    }

    /// `HOST:PORT/DB`, for messages.
    pub fn target(&self) -> String {
        format!(
            "{}:{}/{}",
            self.inner.host, self.inner.port, self.inner.dbname
        )
    }

    /// The connection pool (for stores and tests).
    pub fn pool(&self) -> &Pool {
        &self.inner.pool
    }

    /// The connection settings of the pool.
    pub fn config(&self) -> &tokio_postgres::Config {
        &self.inner.cfg
    }

    /// The runtime the database's futures run on.
    pub(crate) fn handle(&self) -> Result<tokio::runtime::Handle, PersistenceError> {
        self.inner
            .rt
            .as_ref()
            .map(|r| r.handle().clone())
            .ok_or_else(|| PersistenceError::Postgres("the database is closed".into()))
    }

    /// This node's fence, once it joined a cluster.
    pub fn fence(&self) -> Option<&Arc<cluster::Fence>> {
        self.inner.fence.get()
    }

    /// Turns fencing on for every store of this database (idempotent).
    pub(crate) fn enable_fencing(&self) -> Arc<cluster::Fence> {
        self.inner
            .fence
            .get_or_init(|| Arc::new(cluster::Fence::default()))
            .clone()
    }

    /// The DAG scheduler's store in this database.
    pub fn dag_store(&self) -> PgDagStore {
        PgDagStore::new(self.clone())
    }

    /// Runs `fut` on the database's runtime and waits for its output (see the module docs).
    pub fn run<T, F>(&self, fut: F) -> Result<T, PersistenceError>
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let rt = self
            .inner
            .rt
            .as_ref()
            .ok_or_else(|| PersistenceError::Postgres("the database is closed".into()))?;
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        rt.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv()
            .map_err(|_| PersistenceError::Postgres("the database's runtime stopped".into()))
    }
}

/// `url` without its password.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            super::redact("postgres://u:secret@h:1/db"),
            "postgres://u:***@h:1/db"
        );
        assert_eq!(super::redact("postgres://u@h/db"), "postgres://u@h/db");
        let e = super::PgDatabase::connect("mysql://u:pw@h/db")
            .err()
            .unwrap();
        assert!(!e.to_string().contains("pw"), "{e}");
        assert!(e.to_string().contains("postgres://"), "{e}");
    }
}
