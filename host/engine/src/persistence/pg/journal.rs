//! [`PgJournal`]: every execution's journal in table `sfn_journal` (key: execution ARN +
//! entry key), the [`JournalBackend`] under the runtime's write-back [`JournalStore`]. The
//! buffer's keys are `ARN \0 ENTRY_KEY` ([`crate::durable::journal_key`]): split at the NUL
//! into the two columns. Each [`JournalBackend::apply`] — everything one group commit covers —
//! is one transaction, committed synchronously: durable when the committer's hook returns.
//!
//! [`JournalStore`]: crate::durable::JournalStore

use super::call::{conn, keep_rows, mask, pg};
use super::cluster;
use super::history::UPSERT_JOURNAL;
use super::PgDatabase;
use crate::durable::{JournalBackend, Pairs, Writes};
use crate::persistence::{limits, PersistenceError};

/// The journal table.
#[derive(Clone)]
pub struct PgJournal {
    db: PgDatabase,
}

/// `(execution, entry key)` of a buffer key.
fn split(key: &[u8]) -> Result<(String, String), PersistenceError> {
    let bad = |reason: &str| PersistenceError::Invalid {
        what: "journal key",
        reason: reason.to_string(),
    };
    let s = std::str::from_utf8(key).map_err(|_| bad("not UTF-8"))?;
    let (x, k) = s
        .split_once('\0')
        .ok_or_else(|| bad("no NUL between the execution ARN and the entry key"))?;
    limits::key("execution ARN", x)?;
    limits::key("journal entry key", k)?;
    Ok((x.to_string(), k.to_string()))
}

/// The execution of a prefix `ARN \0` (the only prefixes the runtime scans or clears).
fn execution_of_prefix(prefix: &[u8]) -> Result<String, PersistenceError> {
    match split(prefix)? {
        (x, k) if k.is_empty() => Ok(x),
        _ => Err(PersistenceError::Invalid {
            what: "journal prefix",
            reason: "not an execution's `ARN \\0`".into(),
        }),
    }
}

/// A flush of the journal's buffer as columns: executions whose journal is cleared, entries
/// set, entries removed.
#[derive(Default)]
pub(crate) struct JournalColumns {
    clears: Vec<String>,
    px: Vec<String>,
    pk: Vec<String>,
    pv: Vec<Vec<u8>>,
    dx: Vec<String>,
    dk: Vec<String>,
}

impl JournalColumns {
    /// The buffer's prefix clears and writes, checked (keys, record sizes).
    pub(crate) fn of(clears: &[Vec<u8>], writes: &Writes) -> Result<Self, PersistenceError> {
        let mut c = JournalColumns {
            clears: clears
                .iter()
                .map(|p| execution_of_prefix(p))
                .collect::<Result<_, _>>()?,
            ..Default::default()
        };
        for (key, v) in writes {
            let (x, k) = split(key)?;
            match v {
                Some(v) => {
                    limits::record("journal entry", v)?;
                    c.px.push(x);
                    c.pk.push(k);
                    c.pv.push(v.clone());
                }
                None => {
                    c.dx.push(x);
                    c.dk.push(k);
                }
            }
        }
        Ok(c)
    }

    /// Every execution written.
    pub(crate) fn executions(&self) -> std::collections::HashSet<String> {
        self.clears
            .iter()
            .chain(&self.px)
            .chain(&self.dx)
            .cloned()
            .collect()
    }

    /// Keeps the writes of the executions in `ok` (fencing).
    pub(crate) fn retain(&mut self, ok: &std::collections::HashSet<String>) {
        self.clears.retain(|x| ok.contains(x));
        let m = mask(ok, &self.px);
        keep_rows(&mut self.px, &m);
        keep_rows(&mut self.pk, &m);
        keep_rows(&mut self.pv, &m);
        let m = mask(ok, &self.dx);
        keep_rows(&mut self.dx, &m);
        keep_rows(&mut self.dk, &m);
    }

    /// Writes them in `tx`: clears first, then removals and sets.
    pub(crate) async fn write(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
    ) -> Result<(), PersistenceError> {
        if !self.clears.is_empty() {
            tx.execute(
                "DELETE FROM sfn_journal WHERE execution = ANY($1)",
                &[&self.clears],
            )
            .await
            .map_err(pg)?;
        }
        if !self.dk.is_empty() {
            tx.execute(
                "DELETE FROM sfn_journal WHERE (execution, key) IN \
                 (SELECT * FROM unnest($1::TEXT[], $2::TEXT[]))",
                &[&self.dx, &self.dk],
            )
            .await
            .map_err(pg)?;
        }
        if !self.pk.is_empty() {
            tx.execute(UPSERT_JOURNAL, &[&self.px, &self.pk, &self.pv])
                .await
                .map_err(pg)?;
        }
        Ok(())
    }
}

impl PgJournal {
    /// The table in `db`.
    pub fn new(db: &PgDatabase) -> Self {
        PgJournal { db: db.clone() }
    }
}

impl JournalBackend for PgJournal {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, PersistenceError> {
        let (x, k) = split(key)?;
        self.db.call(|pool| async move {
            let row = conn(&pool)
                .await?
                .query_opt(
                    "SELECT entry FROM sfn_journal WHERE execution = $1 AND key = $2",
                    &[&x, &k],
                )
                .await
                .map_err(pg)?;
            Ok(row.map(|r| r.get(0)))
        })
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<Pairs, PersistenceError> {
        let x = execution_of_prefix(prefix)?;
        let p = prefix.to_vec();
        self.db.call(|pool| async move {
            let rows = conn(&pool)
                .await?
                .query(
                    "SELECT key, entry FROM sfn_journal WHERE execution = $1 ORDER BY key",
                    &[&x],
                )
                .await
                .map_err(pg)?;
            Ok(rows
                .iter()
                .map(|r| {
                    let mut k = p.clone();
                    k.extend_from_slice(r.get::<_, &str>(0).as_bytes());
                    (k, r.get(1))
                })
                .collect())
        })
    }

    fn update_unless_now(
        &self,
        key: &[u8],
        new: Option<&[u8]>,
        keep: &(dyn Fn(Option<&[u8]>) -> bool + Sync),
    ) -> Result<Option<bool>, PersistenceError> {
        let (x, k) = split(key)?;
        if let Some(v) = new {
            limits::record("journal entry", v)?;
        }
        // decided on the stored value, written back only if it is still that value (else
        // decided again on what another node wrote meanwhile)
        loop {
            let cur = JournalBackend::get(self, key)?;
            if keep(cur.as_deref()) {
                return Ok(Some(false));
            }
            if cur.is_none() && new.is_none() {
                return Ok(Some(true));
            }
            let (x2, k2, v) = (x.clone(), k.clone(), new.map(<[u8]>::to_vec));
            let n = self.db.call(|pool| async move {
                let c = conn(&pool).await?;
                match (cur, v) {
                    (None, Some(v)) => c
                        .execute(
                            "INSERT INTO sfn_journal (execution, key, entry) VALUES ($1, $2, $3) \
                             ON CONFLICT DO NOTHING",
                            &[&x2, &k2, &v],
                        )
                        .await
                        .map_err(pg),
                    (Some(old), Some(v)) => c
                        .execute(
                            "UPDATE sfn_journal SET entry = $3 \
                             WHERE execution = $1 AND key = $2 AND entry = $4",
                            &[&x2, &k2, &v, &old],
                        )
                        .await
                        .map_err(pg),
                    (Some(old), None) => c
                        .execute(
                            "DELETE FROM sfn_journal \
                             WHERE execution = $1 AND key = $2 AND entry = $3",
                            &[&x2, &k2, &old],
                        )
                        .await
                        .map_err(pg),
                    (None, None) => Ok(1),
                }
            })?;
            if n == 1 {
                return Ok(Some(true));
            }
        }
    }

    fn apply(&self, clears: &[Vec<u8>], writes: &Writes) -> Result<(), PersistenceError> {
        let mut cols = JournalColumns::of(clears, writes)?;
        let fence = self.db.fence().cloned();
        self.db.call(|pool| async move {
            let mut c = conn(&pool).await?;
            let tx = c.transaction().await.map_err(pg)?;
            if let Some(fence) = fence {
                let ok = cluster::check(&tx, &fence, cols.executions()).await?;
                cols.retain(&ok);
            }
            cols.write(&tx).await?;
            tx.commit().await.map_err(pg)
        })
    }
}
