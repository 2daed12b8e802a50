//! [`PgLog`]: an [`AppendLog`] in one table (`sfn_audit`, `sfn_execution_log`) ordered by the
//! writer's time then by a sequence the database assigns (appends of several nodes interleave
//! by time; one node's appends keep their order), read newest first a page at a time; and
//! [`PgMapRuns`]: the [`MapRunStore`] in table `sfn_map_runs`.

use super::call::{conn, pg, Kv, PAGE};
use super::PgDatabase;
use crate::persistence::executions::Visit;
use crate::persistence::logs::AppendLog;
use crate::persistence::map_runs::MapRunStore;
use crate::persistence::{limits, PersistenceError};

/// Which log a [`PgLog`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogTable {
    /// The API audit log.
    Audit,
    /// The execution log.
    ExecutionLog,
}

impl LogTable {
    fn table(self) -> &'static str {
        match self {
            LogTable::Audit => "sfn_audit",
            LogTable::ExecutionLog => "sfn_execution_log",
        }
    }
}

/// A time-ordered log in one table.
#[derive(Clone)]
pub struct PgLog {
    db: PgDatabase,
    table: &'static str,
}

impl PgLog {
    /// The log `which` in `db`.
    pub fn new(db: &PgDatabase, which: LogTable) -> Self {
        PgLog {
            db: db.clone(),
            table: which.table(),
        }
    }
}

impl AppendLog for PgLog {
    fn append(&self, records: &[(i64, Vec<u8>)]) -> Result<(), PersistenceError> {
        if records.is_empty() {
            return Ok(());
        }
        for (_, v) in records {
            limits::record("log record", v)?;
        }
        let times: Vec<i64> = records.iter().map(|r| r.0).collect();
        let recs: Vec<Vec<u8>> = records.iter().map(|r| r.1.clone()).collect();
        // (WITH ORDINALITY: the sequence follows the order of the records given)
        let sql = format!(
            "INSERT INTO {} (time_ms, rec) SELECT t, r FROM \
             unnest($1::BIGINT[], $2::BYTEA[]) WITH ORDINALITY AS u(t, r, o) ORDER BY o",
            self.table
        );
        self.db.call(|pool| async move {
            conn(&pool)
                .await?
                .execute(&sql, &[&times, &recs])
                .await
                .map_err(pg)?;
            Ok(())
        })
    }

    fn newest_first(&self, visit: Visit<'_>) -> Result<(), PersistenceError> {
        let sql = format!(
            "SELECT time_ms, seq, rec FROM {} WHERE $1::BIGINT IS NULL OR (time_ms, seq) < ($1, $2) \
             ORDER BY time_ms DESC, seq DESC LIMIT $3",
            self.table
        );
        let mut before: Option<(i64, i64)> = None;
        loop {
            let (t, s) = (before.map(|b| b.0), before.map_or(0, |b| b.1));
            let sql = sql.clone();
            let rows: Vec<(i64, i64, Vec<u8>)> = self.db.call(|pool| async move {
                let rows = conn(&pool)
                    .await?
                    .query(&sql, &[&t, &s, &PAGE])
                    .await
                    .map_err(pg)?;
                Ok(rows
                    .iter()
                    .map(|r| (r.get(0), r.get(1), r.get(2)))
                    .collect())
            })?;
            let full = rows.len() as i64 == PAGE;
            for (t, s, rec) in rows {
                if !visit(&rec) {
                    return Ok(());
                }
                before = Some((t, s));
            }
            if !full {
                return Ok(());
            }
        }
    }
}

/// Map Run records in one table.
#[derive(Clone)]
pub struct PgMapRuns {
    kv: Kv,
}

impl PgMapRuns {
    /// The table in `db`.
    pub fn new(db: &PgDatabase) -> Self {
        PgMapRuns {
            kv: Kv {
                db: db.clone(),
                table: "sfn_map_runs",
                key: "arn",
                what: "Map Run ARN",
                rec: "Map Run record",
            },
        }
    }
}

impl MapRunStore for PgMapRuns {
    fn map_run(&self, arn: &str) -> Result<Option<Vec<u8>>, PersistenceError> {
        self.kv.get(arn)
    }

    fn insert_map_run(&self, arn: &str, json: &[u8]) -> Result<Option<Vec<u8>>, PersistenceError> {
        self.kv.insert_new(arn, json)
    }

    fn put_map_run(&self, arn: &str, json: &[u8]) -> Result<(), PersistenceError> {
        self.kv.put(arn, json)
    }
}
