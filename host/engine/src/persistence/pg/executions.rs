//! [`PgExecutions`]: execution records ([`ExecutionRecords`]) in table `sfn_executions`, one
//! row per execution with the indexed fields (state machine, name, start, status) as columns
//! beside the record, written by the same statement: the index can never lag its record, so
//! there is nothing to repair at start-up, and a summary is two index range reads
//! (`sfn_executions_by_start`, and `sfn_executions_running` for what runs now).
//!
//! Each row also names the node that owns the execution and its fencing epoch (see
//! [`super::cluster`]): on a node of a cluster, a new execution is owned by the node that
//! inserts it, an execution set running again (a redrive) by the node that does it, and an
//! update of an execution this node owns is refused ([`PersistenceError::Fenced`]) once another
//! node adopted it.

use super::call::{conn, params, pg, PAGE};
use super::PgDatabase;
use crate::persistence::catalog::Update;
use crate::persistence::executions::{
    checked, is_running, ExecutionRecords, IndexedFields, Summary, Visit,
};
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
        let mut p = params![
            arn.to_string(),
            f.state_machine_name,
            f.name,
            f.start_ms,
            f.status,
            json.to_vec(),
        ];
        if let Some(o) = old {
            p.push(Box::new(o));
        }
        self.db.execute(sql, p)
    }
}

const UPDATE: &str = "UPDATE sfn_executions SET state_machine = $2, name = $3, start_ms = $4, \
     status = $5, rec = $6 WHERE arn = $1 AND rec = $7";

impl PgExecutions {
    /// Inserts a new record unless the ARN exists (true: inserted); on a node of a cluster the
    /// node owns it from now on.
    fn insert_owned(&self, arn: &str, json: &[u8]) -> Result<bool, PersistenceError> {
        let Some(fence) = self.db.fence().cloned() else {
            return Ok(
                self.write(format!("{INSERT} ON CONFLICT DO NOTHING"), arn, json, None)? == 1,
            );
        };
        let f = checked(arn, json)?;
        let running = is_running(&f.status);
        let (a, json, node) = (arn.to_string(), json.to_vec(), fence.node());
        let n = self.db.call(|pool| async move {
            conn(&pool)
                .await?
                .execute(
                    "INSERT INTO sfn_executions \
                     (arn, state_machine, name, start_ms, status, rec, owner, epoch) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, 1) ON CONFLICT DO NOTHING",
                    &[
                        &a,
                        &f.state_machine_name,
                        &f.name,
                        &f.start_ms,
                        &f.status,
                        &json,
                        &node,
                    ],
                )
                .await
                .map_err(pg)
        })?;
        if n == 1 && running {
            fence.hold(arn, 1);
        }
        Ok(n == 1)
    }

    /// Replaces record `old` with `new` (false: the record changed meanwhile). On a node of a
    /// cluster, setting an execution running again makes this node its owner (a new epoch), and
    /// an execution this node owns is written only while it still owns it.
    fn update_owned(
        &self,
        arn: &str,
        old: Vec<u8>,
        new: &[u8],
        run_epoch: Option<i64>,
    ) -> Result<bool, PersistenceError> {
        let Some(fence) = self.db.fence().cloned() else {
            return Ok(self.write(UPDATE.into(), arn, new, Some(old))? == 1);
        };
        let f = checked(arn, new)?;
        let was_running = IndexedFields::of(&old).is_ok_and(|o| is_running(&o.status));
        let takes = is_running(&f.status) && !was_running;
        // the epoch the writing run began under, else the one this node holds now
        let held = run_epoch.or_else(|| fence.epoch_of(arn));
        let (a, new, node) = (arn.to_string(), new.to_vec(), fence.node());
        let r: Result<Option<i64>, PersistenceError> = self.db.call(|pool| async move {
            let c = conn(&pool).await?;
            let p: [&(dyn tokio_postgres::types::ToSql + Sync); 7] = [
                &a,
                &f.state_machine_name,
                &f.name,
                &f.start_ms,
                &f.status,
                &new,
                &old,
            ];
            if takes {
                let row = c
                    .query_opt(
                        "UPDATE sfn_executions SET state_machine = $2, name = $3, \
                         start_ms = $4, status = $5, rec = $6, owner = $8, \
                         epoch = epoch + 1, woken = false \
                         WHERE arn = $1 AND rec = $7 RETURNING epoch",
                        &[p[0], p[1], p[2], p[3], p[4], p[5], p[6], &node],
                    )
                    .await
                    .map_err(pg)?;
                return Ok(row.map(|r| r.get(0)));
            }
            let Some(epoch) = held else {
                let n = c.execute(UPDATE, &p).await.map_err(pg)?;
                return Ok((n == 1).then_some(0));
            };
            let n = c
                .execute(
                    &format!("{UPDATE} AND owner = $8 AND epoch = $9"),
                    &[p[0], p[1], p[2], p[3], p[4], p[5], p[6], &node, &epoch],
                )
                .await
                .map_err(pg)?;
            if n == 1 {
                return Ok(Some(epoch));
            }
            // the record changed (try again), or another node owns the execution now
            let row = c
                .query_opt(
                    "SELECT owner = $2 AND epoch = $3 FROM sfn_executions WHERE arn = $1",
                    &[&a, &node, &epoch],
                )
                .await
                .map_err(pg)?;
            match row.and_then(|r| r.get::<_, Option<bool>>(0)) {
                Some(true) | None => Ok(None),
                Some(false) => Err(PersistenceError::Fenced {
                    execution: a,
                    epoch,
                }),
            }
        });
        match r {
            Ok(Some(epoch)) if takes => {
                fence.hold(arn, epoch);
                Ok(true)
            }
            Ok(done) => Ok(done.is_some()),
            Err(e @ PersistenceError::Fenced { .. }) => {
                fence.lose([arn.to_string()]);
                Err(e)
            }
            Err(e) => Err(e),
        }
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
            if self.insert_owned(arn, json)? {
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
            let done = match (cur, new) {
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
                (Some(o), Some(n)) => self.update_owned(arn, o, &n, None)?,
            };
            if done {
                return Ok(());
            }
        }
    }

    fn update_execution_at(
        &self,
        arn: &str,
        epoch: Option<i64>,
        f: Update<'_>,
    ) -> Result<(), PersistenceError> {
        if epoch.is_none() {
            return self.update_execution(arn, f);
        }
        loop {
            let Some(cur) = self.execution(arn)? else {
                return Ok(());
            };
            let Some(new) = f(Some(&cur)) else {
                return Ok(());
            };
            if self.update_owned(arn, cur, &new, epoch)? {
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
