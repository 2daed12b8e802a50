//! How the Step Functions stores on PostgreSQL call the database: a store method runs one
//! future with a pooled connection on the database's runtime ([`PgDatabase::run`]) and waits
//! for it, and every driver or pool error becomes a [`PersistenceError::Postgres`] with its
//! causes. Also [`Kv`]: the one-key tables (`KEY TEXT PRIMARY KEY, rec BYTEA`) several stores
//! share, with sled's semantics (insert-if-absent, compare-and-set updates, listing after a
//! cursor in byte order).

use std::borrow::Cow;
use std::future::Future;

use deadpool_postgres::{Object, Pool};

use super::PgDatabase;
use crate::persistence::catalog::Update;
use crate::persistence::{limits, PersistenceError};

/// A driver error.
pub(crate) fn pg(e: tokio_postgres::Error) -> PersistenceError {
    PersistenceError::postgres(&e)
}

/// A pooled connection.
pub(crate) async fn conn(pool: &Pool) -> Result<Object, PersistenceError> {
    pool.get().await.map_err(|e| PersistenceError::postgres(&e))
}

impl PgDatabase {
    /// Runs `f` with the pool on the database's runtime and waits for its answer.
    pub(crate) fn call<T, F, Fut>(&self, f: F) -> Result<T, PersistenceError>
    where
        F: FnOnce(Pool) -> Fut,
        Fut: Future<Output = Result<T, PersistenceError>> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.pool().clone();
        self.run(f(pool))?
    }
}

/// Which rows of a column of executions fencing left (`ok`): a mask for [`keep_rows`].
pub(crate) fn mask(ok: &std::collections::HashSet<String>, exec: &[String]) -> Vec<bool> {
    exec.iter().map(|x| ok.contains(x)).collect()
}

/// Keeps the rows of `v` that `mask` keeps.
pub(crate) fn keep_rows<T>(v: &mut Vec<T>, mask: &[bool]) {
    let mut i = 0;
    v.retain(|_| {
        i += 1;
        mask.get(i - 1).copied().unwrap_or(false)
    });
}

/// Statement parameters owned by the call: they move onto the database's runtime with it.
pub(crate) type Params = Vec<Box<dyn tokio_postgres::types::ToSql + Send + Sync>>;

/// [`Params`] from expressions of any parameter types.
macro_rules! params {
    ($($p:expr),* $(,)?) => {
        vec![$(Box::new($p) as Box<dyn tokio_postgres::types::ToSql + Send + Sync>),*]
    };
}
pub(crate) use params;

/// `params` as the driver's parameter slice.
fn refs(params: &Params) -> Vec<&(dyn tokio_postgres::types::ToSql + Sync)> {
    params
        .iter()
        .map(|p| p.as_ref() as &(dyn tokio_postgres::types::ToSql + Sync))
        .collect()
}

impl PgDatabase {
    /// Runs one statement on a pooled connection; the rows it changed.
    pub(crate) fn execute(
        &self,
        sql: impl Into<Cow<'static, str>>,
        params: Params,
    ) -> Result<u64, PersistenceError> {
        let sql = sql.into();
        self.call(|pool| async move {
            conn(&pool)
                .await?
                .execute(&*sql, &refs(&params))
                .await
                .map_err(pg)
        })
    }

    /// Runs one query on a pooled connection; its rows.
    pub(crate) fn query(
        &self,
        sql: impl Into<Cow<'static, str>>,
        params: Params,
    ) -> Result<Vec<tokio_postgres::Row>, PersistenceError> {
        let sql = sql.into();
        self.call(|pool| async move {
            conn(&pool)
                .await?
                .query(&*sql, &refs(&params))
                .await
                .map_err(pg)
        })
    }
}

/// Rows fetched per round trip when a store hands rows to a visitor.
pub(crate) const PAGE: i64 = 500;

/// A table of one text key and one record.
#[derive(Clone)]
pub(crate) struct Kv {
    pub db: PgDatabase,
    /// Table name (a constant of this crate).
    pub table: &'static str,
    /// Key column (a constant of this crate).
    pub key: &'static str,
    /// What a key is, for errors.
    pub what: &'static str,
    /// What a record is, for errors.
    pub rec: &'static str,
}

impl Kv {
    pub fn get(&self, k: &str) -> Result<Option<Vec<u8>>, PersistenceError> {
        limits::key(self.what, k)?;
        let sql = format!("SELECT rec FROM {} WHERE {} = $1", self.table, self.key);
        let k = k.to_string();
        self.db.call(|pool| async move {
            let c = conn(&pool).await?;
            let row = c.query_opt(&sql, &[&k]).await.map_err(pg)?;
            Ok(row.map(|r| r.get(0)))
        })
    }

    /// Inserts unless present; the present record otherwise.
    pub fn insert_new(&self, k: &str, v: &[u8]) -> Result<Option<Vec<u8>>, PersistenceError> {
        limits::key(self.what, k)?;
        limits::record(self.rec, v)?;
        let ins = format!(
            "INSERT INTO {} ({}, rec) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            self.table, self.key
        );
        let sel = format!("SELECT rec FROM {} WHERE {} = $1", self.table, self.key);
        let (k, v) = (k.to_string(), v.to_vec());
        self.db.call(|pool| async move {
            let c = conn(&pool).await?;
            loop {
                if c.execute(&ins, &[&k, &v]).await.map_err(pg)? == 1 {
                    return Ok(None);
                }
                // (None: removed in between; try again)
                if let Some(row) = c.query_opt(&sel, &[&k]).await.map_err(pg)? {
                    return Ok(Some(row.get(0)));
                }
            }
        })
    }

    pub fn put(&self, k: &str, v: &[u8]) -> Result<(), PersistenceError> {
        limits::key(self.what, k)?;
        limits::record(self.rec, v)?;
        let sql = format!(
            "INSERT INTO {t} ({k}, rec) VALUES ($1, $2) ON CONFLICT ({k}) DO UPDATE SET rec = EXCLUDED.rec",
            t = self.table,
            k = self.key
        );
        let (k, v) = (k.to_string(), v.to_vec());
        self.db.call(|pool| async move {
            conn(&pool)
                .await?
                .execute(&sql, &[&k, &v])
                .await
                .map_err(pg)?;
            Ok(())
        })
    }

    pub fn remove(&self, k: &str) -> Result<(), PersistenceError> {
        limits::key(self.what, k)?;
        let sql = format!("DELETE FROM {} WHERE {} = $1", self.table, self.key);
        let k = k.to_string();
        self.db.call(|pool| async move {
            conn(&pool).await?.execute(&sql, &[&k]).await.map_err(pg)?;
            Ok(())
        })
    }

    /// Rewrites a record through `f`, compare-and-set: `f` runs again when another writer
    /// changed the record in between.
    pub fn update(&self, k: &str, f: Update<'_>) -> Result<(), PersistenceError> {
        limits::key(self.what, k)?;
        loop {
            let cur = self.get(k)?;
            let new = f(cur.as_deref());
            if let Some(n) = &new {
                limits::record(self.rec, n)?;
            }
            let (t, kc) = (self.table, self.key);
            let sql = match (&cur, &new) {
                (None, None) => return Ok(()),
                (None, Some(_)) => {
                    format!("INSERT INTO {t} ({kc}, rec) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                }
                (Some(_), None) => format!("DELETE FROM {t} WHERE {kc} = $1 AND rec = $2"),
                (Some(_), Some(_)) => {
                    format!("UPDATE {t} SET rec = $3 WHERE {kc} = $1 AND rec = $2")
                }
            };
            let key = k.to_string();
            let done = self.db.call(|pool| async move {
                let c = conn(&pool).await?;
                let n = match (cur, new) {
                    (None, Some(n)) => c.execute(&sql, &[&key, &n]).await,
                    (Some(o), None) => c.execute(&sql, &[&key, &o]).await,
                    (Some(o), Some(n)) => c.execute(&sql, &[&key, &o, &n]).await,
                    (None, None) => Ok(1),
                }
                .map_err(pg)?;
                Ok(n == 1)
            })?;
            if done {
                return Ok(());
            }
        }
    }

    /// Records with keys after `after` (byte order), at most `limit`.
    pub fn after(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, PersistenceError> {
        if let Some(a) = after {
            limits::key(self.what, a)?;
        }
        let sql = format!(
            "SELECT {k}, rec FROM {t} WHERE $1::TEXT IS NULL OR {k} > $1 ORDER BY {k} LIMIT $2",
            t = self.table,
            k = self.key
        );
        let after = after.map(str::to_string);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.db.call(|pool| async move {
            let c = conn(&pool).await?;
            let rows = c.query(&sql, &[&after, &limit]).await.map_err(pg)?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
    }
}
