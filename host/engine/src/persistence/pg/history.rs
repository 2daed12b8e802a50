//! [`PgHistory`]: history events, task logs and run-recorded journal entries
//! ([`HistoryStore`]) in tables `sfn_history` (one row per event, key execution + id),
//! `sfn_task_logs` and the journal table `sfn_journal` itself (PostgreSQL has no per-value cost
//! that riding in a history value would save, so [`HistoryStore::journal_lines`] is always
//! empty here and the execution's journal holds them). A batch is one transaction, committed
//! synchronously: durable when [`HistoryStore::write_batch`] returns, which the group committer
//! relies on. Each statement of a batch sends whole columns as arrays (`unnest`), so a batch
//! costs a handful of round trips whatever its size.

use std::collections::BTreeMap;

use super::call::{conn, keep_rows, mask, pg, PAGE};
use super::cluster;
use super::journal::JournalColumns;
use super::PgDatabase;
use crate::durable::Writes;
use crate::persistence::history::{HistoryBatch, HistoryStore, RunVisit};
use crate::persistence::{limits, PersistenceError};

const EXEC: &str = "execution ARN";

/// The history tables.
#[derive(Clone)]
pub struct PgHistory {
    db: PgDatabase,
}

fn id_i64(id: u64) -> Result<i64, PersistenceError> {
    i64::try_from(id).map_err(|_| PersistenceError::Invalid {
        what: "history event id",
        reason: format!("{id} is over {}", i64::MAX),
    })
}

/// A batch as columns, checked against the caps ([`HistoryBatch::check`]: ids fit an
/// `i64`); an event or entry written twice keeps its
/// last value (as sled's overwrite does).
#[derive(Default)]
struct Columns {
    ev_exec: Vec<String>,
    ev_id: Vec<i64>,
    ev_json: Vec<Vec<u8>>,
    log_exec: Vec<String>,
    log_seq: Vec<i64>,
    log_state: Vec<String>,
    log_attempt: Vec<i64>,
    log_json: Vec<Vec<u8>>,
    j_exec: Vec<String>,
    j_key: Vec<String>,
    j_json: Vec<Vec<u8>>,
}

impl Columns {
    fn of(b: &HistoryBatch) -> Result<Self, PersistenceError> {
        b.check()?;
        let mut c = Columns::default();
        let mut events = BTreeMap::new();
        for e in &b.events {
            events.insert((e.execution.as_str(), e.id as i64), e.json.as_bytes());
        }
        for ((x, id), j) in events {
            c.ev_exec.push(x.to_string());
            c.ev_id.push(id);
            c.ev_json.push(j.to_vec());
        }
        let mut logs = BTreeMap::new();
        for t in &b.task_logs {
            logs.insert(
                (
                    t.execution.as_str(),
                    t.seq as i64,
                    t.state.as_str(),
                    i64::from(t.attempt),
                ),
                t.json.as_bytes(),
            );
        }
        for ((x, seq, state, attempt), j) in logs {
            c.log_exec.push(x.to_string());
            c.log_seq.push(seq);
            c.log_state.push(state.to_string());
            c.log_attempt.push(attempt);
            c.log_json.push(j.to_vec());
        }
        let mut journal = BTreeMap::new();
        for j in &b.journal {
            journal.insert((j.execution.as_str(), j.key.as_str()), j.json.as_slice());
        }
        for ((x, k), j) in journal {
            c.j_exec.push(x.to_string());
            c.j_key.push(k.to_string());
            c.j_json.push(j.to_vec());
        }
        Ok(c)
    }
}

impl Columns {
    /// Writes them in `tx`: one statement per table, whole columns at once.
    async fn write(&self, tx: &tokio_postgres::Transaction<'_>) -> Result<(), PersistenceError> {
        let c = self;
        if !c.ev_id.is_empty() {
            tx.execute(
                "INSERT INTO sfn_history (execution, id, event) \
                 SELECT * FROM unnest($1::TEXT[], $2::BIGINT[], $3::BYTEA[]) \
                 ON CONFLICT (execution, id) DO UPDATE SET event = EXCLUDED.event",
                &[&c.ev_exec, &c.ev_id, &c.ev_json],
            )
            .await
            .map_err(pg)?;
        }
        if !c.log_seq.is_empty() {
            tx.execute(
                "INSERT INTO sfn_task_logs (execution, seq, state, attempt, entry) \
                 SELECT * FROM unnest($1::TEXT[], $2::BIGINT[], $3::TEXT[], $4::BIGINT[], \
                                      $5::BYTEA[]) \
                 ON CONFLICT (execution, seq, state, attempt) \
                 DO UPDATE SET entry = EXCLUDED.entry",
                &[
                    &c.log_exec,
                    &c.log_seq,
                    &c.log_state,
                    &c.log_attempt,
                    &c.log_json,
                ],
            )
            .await
            .map_err(pg)?;
        }
        if !c.j_key.is_empty() {
            tx.execute(UPSERT_JOURNAL, &[&c.j_exec, &c.j_key, &c.j_json])
                .await
                .map_err(pg)?;
        }
        Ok(())
    }

    /// Keeps the rows of the executions in `ok` (fencing).
    fn retain(&mut self, ok: &std::collections::HashSet<String>) {
        let m = mask(ok, &self.ev_exec);
        keep_rows(&mut self.ev_exec, &m);
        keep_rows(&mut self.ev_id, &m);
        keep_rows(&mut self.ev_json, &m);
        let m = mask(ok, &self.log_exec);
        keep_rows(&mut self.log_exec, &m);
        keep_rows(&mut self.log_seq, &m);
        keep_rows(&mut self.log_state, &m);
        keep_rows(&mut self.log_attempt, &m);
        keep_rows(&mut self.log_json, &m);
        let m = mask(ok, &self.j_exec);
        keep_rows(&mut self.j_exec, &m);
        keep_rows(&mut self.j_key, &m);
        keep_rows(&mut self.j_json, &m);
    }
}

/// Upserts `sfn_journal` rows from arrays `$1` (execution), `$2` (key), `$3` (entry). An
/// attempt's result (`{"t":"ok"...`, `{"t":"err"...`) is never replaced by its `Started`
/// marker: a marker still buffered on the owner must not undo an answer another node
/// recorded meanwhile ([`crate::durable::Journal::complete_now`]).
pub(crate) const UPSERT_JOURNAL: &str = "INSERT INTO sfn_journal (execution, key, entry) \
     SELECT * FROM unnest($1::TEXT[], $2::TEXT[], $3::BYTEA[]) \
     ON CONFLICT (execution, key) DO UPDATE SET entry = EXCLUDED.entry \
     WHERE NOT (substring(sfn_journal.entry FROM 1 FOR 9) IN ('{\"t\":\"ok\"'::BYTEA, '{\"t\":\"err'::BYTEA) \
                AND substring(EXCLUDED.entry FROM 1 FOR 14) = '{\"t\":\"started\"'::BYTEA)";

impl PgHistory {
    /// The tables in `db`.
    pub fn new(db: &PgDatabase) -> Self {
        PgHistory { db: db.clone() }
    }

    /// Writes a history batch and a flush of the journal's buffer (prefix `clears`, then
    /// `writes`) in one transaction: what a group commit covers lands at once, fenced once.
    pub fn write_group(
        &self,
        batch: &HistoryBatch,
        clears: &[Vec<u8>],
        writes: &Writes,
    ) -> Result<(), PersistenceError> {
        if batch.is_empty() && clears.is_empty() && writes.is_empty() {
            return Ok(());
        }
        let mut c = Columns::of(batch)?;
        let mut j = JournalColumns::of(clears, writes)?;
        let fence = self.db.fence().cloned();
        self.db.call(|pool| async move {
            let mut client = conn(&pool).await?;
            let tx = client.transaction().await.map_err(pg)?;
            if let Some(fence) = fence {
                let mut arns = j.executions();
                arns.extend(
                    c.ev_exec
                        .iter()
                        .chain(&c.log_exec)
                        .chain(&c.j_exec)
                        .cloned(),
                );
                let ok = cluster::check(&tx, &fence, arns).await?;
                c.retain(&ok);
                j.retain(&ok);
            }
            // the journal's flush first: its clears must not remove the batch's entries
            j.write(&tx).await?;
            c.write(&tx).await?;
            tx.commit().await.map_err(pg)
        })
    }
}

impl HistoryStore for PgHistory {
    fn write_batch(&self, batch: &HistoryBatch) -> Result<(), PersistenceError> {
        if batch.is_empty() {
            return Ok(());
        }
        self.write_group(batch, &[], &Writes::new())
    }

    fn put_event(&self, execution: &str, id: u64, json: &[u8]) -> Result<(), PersistenceError> {
        limits::key(EXEC, execution)?;
        limits::record("history event", json)?;
        let (x, id, json) = (execution.to_string(), id_i64(id)?, json.to_vec());
        self.db.call(|pool| async move {
            conn(&pool)
                .await?
                .execute(
                    "INSERT INTO sfn_history (execution, id, event) VALUES ($1, $2, $3) \
                     ON CONFLICT (execution, id) DO UPDATE SET event = EXCLUDED.event",
                    &[&x, &id, &json],
                )
                .await
                .map_err(pg)?;
            Ok(())
        })
    }

    fn each_run(
        &self,
        execution: &str,
        reverse: bool,
        visit: RunVisit<'_>,
    ) -> Result<(), PersistenceError> {
        limits::key(EXEC, execution)?;
        // a page of events at a time; each event is a run of its own
        let sql = if reverse {
            "SELECT id, event FROM sfn_history WHERE execution = $1 AND id < $2 \
             ORDER BY id DESC LIMIT $3"
        } else {
            "SELECT id, event FROM sfn_history WHERE execution = $1 AND id > $2 \
             ORDER BY id LIMIT $3"
        };
        let mut from = if reverse { i64::MAX } else { -1 };
        loop {
            let x = execution.to_string();
            let rows: Vec<(i64, Vec<u8>)> = self.db.call(|pool| async move {
                let rows = conn(&pool)
                    .await?
                    .query(sql, &[&x, &from, &PAGE])
                    .await
                    .map_err(pg)?;
                Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
            })?;
            let full = rows.len() as i64 == PAGE;
            for (id, ev) in rows {
                if !visit(u64::try_from(id).unwrap_or(0), vec![ev]) {
                    return Ok(());
                }
                from = id;
            }
            if !full {
                return Ok(());
            }
        }
    }

    fn last_event_id(&self, execution: &str) -> Result<u64, PersistenceError> {
        limits::key(EXEC, execution)?;
        let x = execution.to_string();
        self.db.call(|pool| async move {
            let row = conn(&pool)
                .await?
                .query_one(
                    "SELECT COALESCE(max(id), 0) FROM sfn_history WHERE execution = $1",
                    &[&x],
                )
                .await
                .map_err(pg)?;
            Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
        })
    }

    fn task_logs(&self, execution: &str) -> Result<Vec<(u64, Vec<u8>)>, PersistenceError> {
        limits::key(EXEC, execution)?;
        let x = execution.to_string();
        self.db.call(|pool| async move {
            let rows = conn(&pool)
                .await?
                .query(
                    "SELECT seq, entry FROM sfn_task_logs WHERE execution = $1 \
                     ORDER BY seq, state, attempt",
                    &[&x],
                )
                .await
                .map_err(pg)?;
            Ok(rows
                .iter()
                .map(|r| (u64::try_from(r.get::<_, i64>(0)).unwrap_or(0), r.get(1)))
                .collect())
        })
    }

    fn journal_lines(&self, execution: &str) -> Result<Vec<(String, Vec<u8>)>, PersistenceError> {
        limits::key(EXEC, execution)?;
        // (batches write journal entries into the execution's journal itself)
        Ok(Vec::new())
    }
}
