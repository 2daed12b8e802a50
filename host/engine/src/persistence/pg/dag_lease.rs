//! [`PgDagLeases`]: DAG leases and shared pool slots in PostgreSQL (see
//! [`crate::persistence::dag_lease`]). Decisions are made inside transactions on locked rows:
//! a lease is taken with `FOR UPDATE SKIP LOCKED` (two schedulers never take the same DAG, and
//! neither waits for the other), a pool's slots are counted and taken under the lock of the
//! pool's row (two schedulers never overfill a pool), and the fenced writes of
//! [`super::PgDagStore`] read the lease row `FOR SHARE` (a takeover waits for a write in flight,
//! and a write after a takeover is refused). Expiry is the database's clock, never a node's.

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use tokio_postgres::Transaction;

use super::PgDatabase;
use crate::persistence::dag_lease::{DagLeases, Fence, Holding, SlotKey};
use crate::persistence::error::chain;
use crate::scheduler::SchedulerError;

fn err(e: impl std::error::Error + 'static) -> SchedulerError {
    SchedulerError::Store(chain(&e))
}

/// Checks, inside `tx`, that `fence`'s scheduler still holds `dag_id` under the epoch it
/// held it under (no check for a DAG it never held); the lease row stays share-locked until
/// `tx` ends, so a takeover waits for the write.
pub(super) async fn check_fence(
    tx: &Transaction<'_>,
    fence: Option<&(String, i64)>,
    dag_id: &str,
) -> Result<(), SchedulerError> {
    let Some((owner, epoch)) = fence else {
        return Ok(());
    };
    let row = tx
        .query_opt(
            "SELECT 1 FROM dag_leases WHERE dag_id = $1 AND owner = $2 AND epoch = $3 FOR SHARE",
            &[&dag_id, owner, epoch],
        )
        .await
        .map_err(err)?;
    match row {
        Some(_) => Ok(()),
        None => Err(SchedulerError::Fenced {
            dag_id: dag_id.to_string(),
            detail: format!(
                "scheduler `{owner}` no longer holds this DAG (its lease of epoch {epoch} was taken over): the write was refused"
            ),
        }),
    }
}

/// One scheduler's leases in PostgreSQL.
#[derive(Clone)]
pub struct PgDagLeases {
    db: PgDatabase,
    fence: Arc<Fence>,
}

impl PgDagLeases {
    /// The leases of the scheduler `fence` names.
    pub fn new(db: PgDatabase, fence: Arc<Fence>) -> Self {
        PgDagLeases { db, fence }
    }

    fn call<T, F, Fut>(&self, f: F) -> Result<T, SchedulerError>
    where
        F: FnOnce(Pool) -> Fut,
        Fut: std::future::Future<Output = Result<T, SchedulerError>> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.db.pool().clone();
        self.db.run(f(pool)).map_err(err)?
    }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

impl DagLeases for PgDagLeases {
    fn owner(&self) -> &str {
        self.fence.owner()
    }

    fn tick(
        &self,
        dags: &[String],
        ttl: Duration,
        register: bool,
    ) -> Result<Holding, SchedulerError> {
        let owner = self.fence.owner().to_string();
        let dags = dags.to_vec();
        let ttl = secs(ttl);
        let holding = self.call(|pool| async move {
            let mut c = pool.get().await.map_err(err)?;
            let tx = c.transaction().await.map_err(err)?;
            let share = if register {
                tx.execute(
                    "INSERT INTO dag_schedulers (owner, expires_at) \
                     VALUES ($1, now() + make_interval(secs => $2::float8)) \
                     ON CONFLICT (owner) DO UPDATE SET expires_at = EXCLUDED.expires_at",
                    &[&owner, &ttl],
                )
                .await
                .map_err(err)?;
                let live: i64 = tx
                    .query_one(
                        "SELECT COUNT(*) FROM dag_schedulers WHERE expires_at > now()",
                        &[],
                    )
                    .await
                    .map_err(err)?
                    .get(0);
                dags.len().div_ceil(live.max(1) as usize)
            } else {
                dags.len()
            };
            tx.execute(
                "INSERT INTO dag_leases (dag_id, owner, expires_at, epoch) \
                 SELECT d, NULL, now(), 0 FROM UNNEST($1::text[]) AS d ON CONFLICT DO NOTHING",
                &[&dags],
            )
            .await
            .map_err(err)?;
            let mut held: Vec<(String, i64)> = tx
                .query(
                    "UPDATE dag_leases SET expires_at = now() + make_interval(secs => $3::float8) \
                     WHERE owner = $1 AND dag_id = ANY($2) RETURNING dag_id, epoch",
                    &[&owner, &dags, &ttl],
                )
                .await
                .map_err(err)?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
            let want = share.saturating_sub(held.len()) as i64;
            if want > 0 {
                let taken: Vec<(String, i64)> = tx
                    .query(
                        "WITH free AS (SELECT dag_id FROM dag_leases WHERE dag_id = ANY($2) \
                         AND (owner IS NULL OR expires_at <= now()) \
                         ORDER BY dag_id LIMIT $4 FOR UPDATE SKIP LOCKED) \
                         UPDATE dag_leases l SET owner = $1, \
                         expires_at = now() + make_interval(secs => $3::float8), epoch = l.epoch + 1 \
                         FROM free WHERE l.dag_id = free.dag_id RETURNING l.dag_id, l.epoch",
                        &[&owner, &dags, &ttl, &want],
                    )
                    .await
                    .map_err(err)?
                    .iter()
                    .map(|r| (r.get(0), r.get(1)))
                    .collect();
                if !taken.is_empty() {
                    // the previous owners' tries are zombies now: their slots are free
                    let ids: Vec<&String> = taken.iter().map(|(d, _)| d).collect();
                    tx.execute("DELETE FROM pool_slots WHERE dag_id = ANY($1)", &[&ids])
                        .await
                        .map_err(err)?;
                }
                held.extend(taken);
            }
            tx.commit().await.map_err(err)?;
            held.sort();
            Ok(Holding { held, share })
        })?;
        for (dag_id, epoch) in &holding.held {
            self.fence.hold(dag_id, *epoch);
        }
        Ok(holding)
    }

    fn release(&self, dag_ids: &[String]) -> Result<(), SchedulerError> {
        let owner = self.fence.owner().to_string();
        let ids = dag_ids.to_vec();
        let released: Vec<String> = self.call(|pool| async move {
            let c = pool.get().await.map_err(err)?;
            let rows = c
                .query(
                    "UPDATE dag_leases SET owner = NULL, expires_at = now() \
                     WHERE owner = $1 AND dag_id = ANY($2) RETURNING dag_id",
                    &[&owner, &ids],
                )
                .await
                .map_err(err)?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })?;
        // (a DAG taken over stays fenced)
        for d in released {
            self.fence.forget(&d);
        }
        Ok(())
    }

    fn retire(&self) -> Result<(), SchedulerError> {
        let owner = self.fence.owner().to_string();
        let released: Vec<String> = self.call(|pool| async move {
            let c = pool.get().await.map_err(err)?;
            let rows = c
                .query(
                    "UPDATE dag_leases SET owner = NULL, expires_at = now() WHERE owner = $1 \
                     RETURNING dag_id",
                    &[&owner],
                )
                .await
                .map_err(err)?;
            c.execute("DELETE FROM dag_schedulers WHERE owner = $1", &[&owner])
                .await
                .map_err(err)?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })?;
        // (a DAG taken over stays fenced)
        for d in released {
            self.fence.forget(&d);
        }
        Ok(())
    }

    fn take_slots(
        &self,
        pool_name: &str,
        total: u32,
        slots: u32,
        key: &SlotKey,
    ) -> Result<bool, SchedulerError> {
        let owner = self.fence.owner().to_string();
        let fence = self.fence.epoch(&key.dag_id).map(|e| (owner.clone(), e));
        let (name, key) = (pool_name.to_string(), key.clone());
        let (total, slots) = (i64::from(total), i64::from(slots));
        self.call(|pool| async move {
            let mut c = pool.get().await.map_err(err)?;
            let tx = c.transaction().await.map_err(err)?;
            check_fence(&tx, fence.as_ref(), &key.dag_id).await?;
            tx.execute(
                "INSERT INTO dag_pools (pool) VALUES ($1) ON CONFLICT DO NOTHING",
                &[&name],
            )
            .await
            .map_err(err)?;
            // (the pool's row lock makes counting and taking one step for every scheduler)
            tx.execute(
                "SELECT 1 FROM dag_pools WHERE pool = $1 FOR UPDATE",
                &[&name],
            )
            .await
            .map_err(err)?;
            let used: i64 = tx
                .query_one(
                    "SELECT COALESCE(SUM(slots), 0)::bigint FROM pool_slots WHERE pool = $1 \
                     AND NOT (dag_id = $2 AND run_id = $3 AND task_id = $4 AND map_index = $5)",
                    &[
                        &name,
                        &key.dag_id,
                        &key.run_id,
                        &key.task_id,
                        &key.map_index,
                    ],
                )
                .await
                .map_err(err)?
                .get(0);
            if used + slots > total {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO pool_slots (dag_id, run_id, task_id, map_index, pool, slots, owner) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (dag_id, run_id, task_id, map_index) DO UPDATE SET \
                 pool = EXCLUDED.pool, slots = EXCLUDED.slots, owner = EXCLUDED.owner",
                &[
                    &key.dag_id,
                    &key.run_id,
                    &key.task_id,
                    &key.map_index,
                    &name,
                    &slots,
                    &owner,
                ],
            )
            .await
            .map_err(err)?;
            tx.commit().await.map_err(err)?;
            Ok(true)
        })
    }

    fn release_slots(&self, key: &SlotKey) -> Result<(), SchedulerError> {
        let owner = self.fence.owner().to_string();
        let key = key.clone();
        self.call(|pool| async move {
            let c = pool.get().await.map_err(err)?;
            c.execute(
                "DELETE FROM pool_slots WHERE dag_id = $1 AND run_id = $2 AND task_id = $3 \
                 AND map_index = $4 AND owner = $5",
                &[
                    &key.dag_id,
                    &key.run_id,
                    &key.task_id,
                    &key.map_index,
                    &owner,
                ],
            )
            .await
            .map_err(err)?;
            Ok(())
        })
    }
}
