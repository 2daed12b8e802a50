//! [`SfnStores`]: every store of the Step Functions side, opened at once on one database — what
//! the server asks for when it starts, and the one place that knows which database is below.
//!
//! On sled ([`SfnStores::open_sled`]) every store is a set of trees of the process's store,
//! exactly as the server has always laid them out, plus the runtime's journal (written back by
//! the group committer) and the group committer itself; the secret that signs task tokens is
//! kept in tree `sfn_meta` (key `token_secret`) and created on first use.
//!
//! On PostgreSQL ([`SfnStores::open_pg`]) every store is a set of tables of [`super::pg`]; the
//! journal's buffer is applied in one transaction per group commit, the history batch in
//! another, both committed synchronously by the committer's hooks, so the committer has no
//! flush of its own ([`GroupCommit::hooks_only`]); the token secret is row `token_secret` of
//! table `sfn_meta`, created by the first node and read by every other.

use std::sync::Arc;

use super::catalog::CatalogStore;
use super::executions::ExecutionRecords;
use super::history::HistoryStore;
use super::logs::AppendLog;
use super::map_runs::MapRunStore;
use super::pending::Pending;
use super::pg::{self, LogTable, PgDatabase};
use super::tokens::{ActivityStore, TokenStore};
use super::PersistenceError;
use super::{sled_catalog, sled_executions, sled_history, sled_logs, sled_tokens, Database};
use crate::durable::{DurableError, GroupCommit, JournalStore};

/// Tree of the runtime's own settings.
pub const META: &str = "sfn_meta";

/// The Step Functions side's stores.
pub struct SfnStores {
    /// State machines, versions, aliases, resource maps, tags.
    pub catalog: Arc<dyn CatalogStore>,
    /// Execution records and their index.
    pub executions: Arc<dyn ExecutionRecords>,
    /// History events, task logs, run-recorded journal entries.
    pub history: Arc<dyn HistoryStore>,
    /// Task tokens waiting for an answer.
    pub tokens: Arc<dyn TokenStore>,
    /// Activities.
    pub activities: Arc<dyn ActivityStore>,
    /// The API audit log.
    pub audit: Arc<dyn AppendLog>,
    /// The execution log.
    pub execution_log: Arc<dyn AppendLog>,
    /// Map Runs.
    pub map_runs: Arc<dyn MapRunStore>,
    /// History events, task logs and run-recorded journal entries waiting for the next group
    /// commit (which writes them).
    pub pending: Arc<Pending>,
    /// Every execution's journal, written back at each group commit.
    pub journal: JournalStore,
    /// The group committer.
    pub commit: Arc<GroupCommit>,
    /// The secret that signs task tokens (32 bytes, the same across restarts).
    pub token_secret: [u8; 32],
}

/// Errors opening the stores.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// A store failed.
    #[error(transparent)]
    Store(#[from] PersistenceError),
    /// The group committer failed to start.
    #[error(transparent)]
    Durable(#[from] DurableError),
}

impl From<sled::Error> for OpenError {
    fn from(e: sled::Error) -> Self {
        OpenError::Store(e.into())
    }
}

fn sled_token_secret(db: &sled::Db) -> Result<[u8; 32], OpenError> {
    let meta = db.open_tree(META)?;
    if let Some(v) = meta.get("token_secret")? {
        if let Ok(s) = <[u8; 32]>::try_from(v.as_ref()) {
            return Ok(s);
        }
    }
    let s = new_secret();
    meta.insert("token_secret", &s[..])?;
    Ok(s)
}

fn new_secret() -> [u8; 32] {
    let mut s = [0u8; 32];
    s[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    s[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    s
}

/// The token secret of a PostgreSQL database: the first node's, whichever node asks.
fn pg_token_secret(db: &PgDatabase) -> Result<[u8; 32], OpenError> {
    let fresh = new_secret().to_vec();
    let v: Vec<u8> = db.run({
        let pool = db.pool().clone();
        async move {
            let c = pool
                .get()
                .await
                .map_err(|e| PersistenceError::postgres(&e))?;
            c.execute(
                "INSERT INTO sfn_meta (key, value) VALUES ('token_secret', $1) \
                 ON CONFLICT DO NOTHING",
                &[&fresh],
            )
            .await
            .map_err(|e| PersistenceError::postgres(&e))?;
            let row = c
                .query_one("SELECT value FROM sfn_meta WHERE key = 'token_secret'", &[])
                .await
                .map_err(|e| PersistenceError::postgres(&e))?;
            Ok::<_, PersistenceError>(row.get(0))
        }
    })??;
    <[u8; 32]>::try_from(v.as_slice()).map_err(|_| {
        OpenError::Store(PersistenceError::Corrupt {
            what: "token secret",
            reason: format!("{} bytes, not 32", v.len()),
        })
    })
}

impl SfnStores {
    /// Opens every store on `db`.
    pub fn open(db: &Database) -> Result<Self, OpenError> {
        match db {
            Database::Sled(db) => Self::open_sled(db),
            Database::Postgres(pg) => Self::open_pg(pg),
        }
    }

    /// Opens every store in the tables of `db` (created by its migrations).
    pub fn open_pg(db: &PgDatabase) -> Result<Self, OpenError> {
        let tokens = Arc::new(pg::PgTokens::new(db));
        let journal = JournalStore::buffered_on(Arc::new(pg::PgJournal::new(db)));
        let history = Arc::new(pg::PgHistory::new(db));
        let pending = Arc::new(Pending::new(history.clone()));
        let commit = Arc::new(GroupCommit::hooks_only()?);
        // a flush writes the journal's buffer and the queued history in one transaction
        let (j, p, h) = (journal.clone(), pending.clone(), history.clone());
        commit.before_flush(Arc::new(move || {
            j.apply_with(|clears, writes| {
                p.apply_with(|batch| h.write_group(batch, clears, writes))
            })
            .map_err(|e| format!("cannot write the journal and history: {e}"))
        }));
        Ok(SfnStores {
            catalog: Arc::new(pg::PgCatalog::new(db)),
            executions: Arc::new(pg::PgExecutions::new(db)),
            history,
            pending,
            tokens: tokens.clone(),
            activities: tokens,
            audit: Arc::new(pg::PgLog::new(db, LogTable::Audit)),
            execution_log: Arc::new(pg::PgLog::new(db, LogTable::ExecutionLog)),
            map_runs: Arc::new(pg::PgMapRuns::new(db)),
            journal,
            commit,
            token_secret: pg_token_secret(db)?,
        })
    }

    /// Opens every store in the trees of `db` (creating what is missing).
    pub fn open_sled(db: &sled::Db) -> Result<Self, OpenError> {
        let tokens = Arc::new(sled_tokens::SledTokens::open(db)?);
        let journal = JournalStore::buffered(db.open_tree(sled_history::JOURNAL)?);
        let commit = Arc::new(GroupCommit::start(db.clone())?);
        commit.before_flush(journal.flush_hook());
        let history: Arc<dyn HistoryStore> = Arc::new(sled_history::SledHistory::open(db)?);
        let pending = Arc::new(Pending::new(history.clone()));
        let p = pending.clone();
        commit.before_flush(Arc::new(move || {
            p.apply()
                .map_err(|e| format!("cannot write history events or task logs: {e}"))
        }));
        Ok(SfnStores {
            catalog: Arc::new(sled_catalog::SledCatalog::open(db)?),
            executions: Arc::new(sled_executions::SledExecutions::open(db)?),
            history,
            pending,
            tokens: tokens.clone(),
            activities: tokens,
            audit: Arc::new(sled_logs::SledLog::open(db, sled_logs::AUDIT)?),
            execution_log: Arc::new(sled_logs::SledLog::open(db, sled_logs::EXECUTION_LOG)?),
            map_runs: Arc::new(sled_logs::SledMapRuns::open(db)?),
            journal,
            commit,
            token_secret: sled_token_secret(db)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The token secret a store already holds is kept (tokens issued before a restart stay
    /// valid); a store without one gets a new one that is kept from then on.
    #[test]
    fn the_token_secret_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        db.open_tree("sfn_meta")
            .unwrap()
            .insert("token_secret", &[7u8; 32][..])
            .unwrap();
        assert_eq!(sled_token_secret(&db).unwrap(), [7u8; 32]);
        let other = tempfile::tempdir().unwrap();
        let db2 = sled::open(other.path()).unwrap();
        let s = sled_token_secret(&db2).unwrap();
        assert_ne!(s, [0u8; 32]);
        assert_eq!(sled_token_secret(&db2).unwrap(), s);
    }
}
