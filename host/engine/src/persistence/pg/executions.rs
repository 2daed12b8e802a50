//! [`PgExecutions`]: execution records ([`ExecutionRecords`]) in table `sfn_executions`, one
//! row per execution with the indexed fields (state machine, name, start, status) as columns
//! beside the record, written by the same statement: the index can never lag its record, so
//! there is nothing to repair at start-up, and a summary is two index range reads
//! (`sfn_executions_by_start`, and `sfn_executions_running` for what runs now).
//!
//! Each row also has `owner` and `epoch` columns, unused so far: the node that runs the
//! execution and its lease's fencing epoch, for the several-node step to come.

use super::call::{conn, pg, PAGE};
use super::PgDatabase;
use crate::persistence::catalog::Update;
use crate::persistence::executions::{checked, ExecutionRecords, Summary, Visit};
use crate::persistence::{limits, PersistenceError};

const ARN: &str = "execution ARN";

/// The execution table.
#[derive(Clone)]
pub struct PgExecutions {
    db: PgDatabase,
}

const INSERT: &str =
    "INSERT INTO sfn_executions (arn, state_machine, name, start_ms, status, rec) \
                      VALUES ($1, $2, $3, $4, $5, $6)";

impl PgExecutions {
    /// The table in `db`.
    pub fn new(db: &PgDatabase) -> Self {
        PgExecutions { db: db.clone() }
    }

    /// Runs `sql` with `(arn, fields of json, json[, old])`; the rows it touched.
    fn write(
        &self,
        sql: String,
        arn: &str,
        json: &[u8],
        old: Option<Vec<u8>>,
    ) -> Result<u64, PersistenceError> {
        let f = checked(arn, json)?;
        let (arn, json) = (arn.to_string(), json.to_vec());
        self.db.call(|pool| async move {
            let c = conn(&pool).await?;
            let n = match old {
                None => {
                    c.execute(
                        &sql,
                        &[
                            &arn,
                            &f.state_machine_name,
                            &f.name,
                            &f.start_ms,
                            &f.status,
                            &json,
                        ],
                    )
                    .await
                }
                Some(o) => {
                    c.execute(
                        &sql,
                        &[
                            &arn,
                            &f.state_machine_name,
                            &f.name,
                            &f.start_ms,
                            &f.status,
                            &json,
                            &o,
                        ],
                    )
                    .await
                }
            };
            n.map_err(pg)
        })
    }
}

impl ExecutionRecords for PgExecutions {
    fn execution(&self, arn: &str) -> Result<Option<Vec<u8>>, PersistenceError> {
        limits::key(ARN, arn)?;
        let arn = arn.to_string();
        self.db.call(|pool| async move {
            let row = conn(&pool)
                .await?
                .query_opt("SELECT rec FROM sfn_executions WHERE arn = $1", &[&arn])
                .await
                .map_err(pg)?;
            Ok(row.map(|r| r.get(0)))
        })
    }

    fn insert_execution(
        &self,
        arn: &str,
        json: &[u8],
    ) -> Result<Option<Vec<u8>>, PersistenceError> {
        loop {
            if self.write(format!("{INSERT} ON CONFLICT DO NOTHING"), arn, json, None)? == 1 {
                return Ok(None);
            }
            if let Some(cur) = self.execution(arn)? {
                return Ok(Some(cur));
            }
        }
    }

    fn put_execution(&self, arn: &str, json: &[u8]) -> Result<(), PersistenceError> {
        self.write(
            format!(
                "{INSERT} ON CONFLICT (arn) DO UPDATE SET state_machine = EXCLUDED.state_machine, \
                 name = EXCLUDED.name, start_ms = EXCLUDED.start_ms, status = EXCLUDED.status, \
                 rec = EXCLUDED.rec"
            ),
            arn,
            json,
            None,
        )?;
        Ok(())
    }

    fn update_execution(&self, arn: &str, f: Update<'_>) -> Result<(), PersistenceError> {
        loop {
            let cur = self.execution(arn)?;
            let new = f(cur.as_deref());
            let done =
                match (cur, new) {
                    (None, None) => return Ok(()),
                    (None, Some(n)) => {
                        self.write(format!("{INSERT} ON CONFLICT DO NOTHING"), arn, &n, None)? == 1
                    }
                    (Some(o), None) => {
                        let (arn, o) = (arn.to_string(), o);
                        self.db.call(|pool| async move {
                            conn(&pool)
                                .await?
                                .execute(
                                    "DELETE FROM sfn_executions WHERE arn = $1 AND rec = $2",
                                    &[&arn, &o],
                                )
                                .await
                                .map_err(pg)
                        })? == 1
                    }
                    (Some(o), Some(n)) => self.write(
                        "UPDATE sfn_executions SET state_machine = $2, name = $3, start_ms = $4, \
                         status = $5, rec = $6 WHERE arn = $1 AND rec = $7"
                            .into(),
                        arn,
                        &n,
                        Some(o),
                    )? == 1,
                };
            if done {
                return Ok(());
            }
        }
    }

    fn each_execution(&self, arn_prefix: &str, visit: Visit<'_>) -> Result<(), PersistenceError> {
        limits::key("execution ARN prefix", arn_prefix)?;
        // pages in ARN order from the prefix on; the ARNs with the prefix are contiguous
        // (byte order) and the first one without it ends the walk
        let mut after: Option<String> = None;
        loop {
            let (prefix, from) = (arn_prefix.to_string(), after.clone());
            let rows: Vec<(String, Vec<u8>)> = self.db.call(|pool| async move {
                let rows = conn(&pool)
                    .await?
                    .query(
                        "SELECT arn, rec FROM sfn_executions \
                         WHERE arn >= $1 AND ($2::TEXT IS NULL OR arn > $2) \
                         ORDER BY arn LIMIT $3",
                        &[&prefix, &from, &PAGE],
                    )
                    .await
                    .map_err(pg)?;
                Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
            })?;
            let full = rows.len() as i64 == PAGE;
            for (arn, rec) in rows {
                if !arn.starts_with(arn_prefix) || !visit(&rec) {
                    return Ok(());
                }
                after = Some(arn);
            }
            if !full {
                return Ok(());
            }
        }
    }

    fn summary(&self, state_machine: &str, since_ms: i64) -> Result<Summary, PersistenceError> {
        limits::key("state machine name", state_machine)?;
        let sm = state_machine.to_string();
        self.db.call(|pool| async move {
            let c = conn(&pool).await?;
            let rows = c
                .query(
                    "SELECT status, count(*) FROM sfn_executions \
                     WHERE state_machine = $1 AND start_ms >= $2 GROUP BY status \
                     UNION ALL \
                     SELECT status, count(*) FROM sfn_executions \
                     WHERE state_machine = $1 AND start_ms < $2 \
                       AND status IN ('RUNNING', 'PENDING_REDRIVE') GROUP BY status",
                    &[&sm, &since_ms],
                )
                .await
                .map_err(pg)?;
            let mut out = Summary::default();
            for r in rows {
                let n: i64 = r.get(1);
                *out.counts.entry(r.get(0)).or_default() += u64::try_from(n).unwrap_or(0);
            }
            out.last_start_ms = c
                .query_one(
                    "SELECT max(start_ms) FROM sfn_executions WHERE state_machine = $1",
                    &[&sm],
                )
                .await
                .map_err(pg)?
                .get(0);
            Ok(out)
        })
    }

    fn repair_index(&self, _json: &[u8]) -> Result<(), PersistenceError> {
        // (the index columns are written with their record)
        Ok(())
    }
}
