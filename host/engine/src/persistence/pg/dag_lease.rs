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

use super::dag::{err, unsynced};
use super::PgDatabase;
use std::collections::HashMap;

use crate::persistence::dag_lease::{DagLeases, Fence, Holding, SlotAsk, SlotKey};
use crate::scheduler::SchedulerError;

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

/// Slot keys to give back, as columns.
struct Released {
    dags: Vec<String>,
    runs: Vec<String>,
    tasks: Vec<String>,
    indexes: Vec<i64>,
}

impl Released {
    fn of(keys: &[SlotKey]) -> Self {
        Released {
            dags: keys.iter().map(|k| k.dag_id.clone()).collect(),
            runs: keys.iter().map(|k| k.run_id.clone()).collect(),
            tasks: keys.iter().map(|k| k.task_id.clone()).collect(),
            indexes: keys.iter().map(|k| k.map_index).collect(),
        }
    }

    /// Deletes `owner`'s slot rows of these keys.
    async fn delete(&self, tx: &Transaction<'_>, owner: &str) -> Result<(), SchedulerError> {
        if self.dags.is_empty() {
            return Ok(());
        }
        tx.execute(
            "DELETE FROM pool_slots s USING UNNEST($1::text[], $2::text[], $3::text[], \
             $4::bigint[]) AS u(d, r, t, m) WHERE s.dag_id = u.d AND s.run_id = u.r \
             AND s.task_id = u.t AND s.map_index = u.m AND s.owner = $5",
            &[&self.dags, &self.runs, &self.tasks, &self.indexes, &owner],
        )
        .await
        .map_err(err)?;
        Ok(())
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

    /// Gives up this scheduler's leases of `dag_ids` (`None`: every one it holds) so that
    /// another scheduler may take them at once; with `retire`, also its registration and its
    /// pool slots (a loop ends with no try in flight: none of its slots is in use). The DAGs
    /// released are written unfenced again; a DAG taken over meanwhile stays fenced.
    fn give_up(&self, dag_ids: Option<Vec<String>>, retire: bool) -> Result<(), SchedulerError> {
        let owner = self.fence.owner().to_string();
        let released: Vec<String> = self.call(|pool| async move {
            let c = pool.get().await.map_err(err)?;
            let rows = c
                .query(
                    "UPDATE dag_leases SET owner = NULL, expires_at = now() \
                     WHERE owner = $1 AND ($2::TEXT[] IS NULL OR dag_id = ANY($2)) \
                     RETURNING dag_id",
                    &[&owner, &dag_ids],
                )
                .await
                .map_err(err)?;
            if retire {
                c.execute("DELETE FROM dag_schedulers WHERE owner = $1", &[&owner])
                    .await
                    .map_err(err)?;
                c.execute("DELETE FROM pool_slots WHERE owner = $1", &[&owner])
                    .await
                    .map_err(err)?;
            }
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })?;
        for d in released {
            self.fence.forget(&d);
        }
        Ok(())
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
        self.give_up(Some(dag_ids.to_vec()), false)
    }

    fn retire(&self) -> Result<(), SchedulerError> {
        self.give_up(None, true)
    }

    fn take_slots(
        &self,
        release: &[SlotKey],
        asks: &[SlotAsk],
    ) -> Result<Vec<bool>, SchedulerError> {
        if asks.is_empty() {
            self.release_slots(release)?;
            return Ok(Vec::new());
        }
        let gone = Released::of(release);
        let owner = self.fence.owner().to_string();
        let mut fences: Vec<(String, Option<(String, i64)>)> = asks
            .iter()
            .map(|a| a.key.dag_id.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .map(|d| {
                let f = self.fence.epoch(&d).map(|e| (owner.clone(), e));
                (d, f)
            })
            .collect();
        fences.retain(|(_, f)| f.is_some());
        let asks = asks.to_vec();
        let mut pools: Vec<String> = asks.iter().map(|a| a.pool.clone()).collect();
        pools.sort();
        pools.dedup();
        self.call(|pool| async move {
            let mut c = pool.get().await.map_err(err)?;
            // (slot rows live as long as their scheduler and are freed when its DAGs change
            // hands, so a database crash that loses the last of them is repaired the same way;
            // their commits do not wait for the disk, as task-instance writes do not)
            let tx = unsynced(&mut c).await?;
            gone.delete(&tx, &owner).await?;
            for (dag_id, f) in &fences {
                check_fence(&tx, f.as_ref(), dag_id).await?;
            }
            tx.execute(
                "INSERT INTO dag_pools (pool) SELECT p FROM UNNEST($1::text[]) AS p \
                 ORDER BY p ON CONFLICT DO NOTHING",
                &[&pools],
            )
            .await
            .map_err(err)?;
            // (the pools' row locks, taken in name order, make counting and taking one step
            // for every scheduler)
            tx.execute(
                "SELECT 1 FROM dag_pools WHERE pool = ANY($1) ORDER BY pool FOR UPDATE",
                &[&pools],
            )
            .await
            .map_err(err)?;
            let rows = tx
                .query(
                    "SELECT dag_id, run_id, task_id, map_index, pool, slots FROM pool_slots \
                     WHERE pool = ANY($1)",
                    &[&pools],
                )
                .await
                .map_err(err)?;
            let asked: std::collections::HashSet<&SlotKey> = asks.iter().map(|a| &a.key).collect();
            let mut used: HashMap<String, i64> = HashMap::new();
            for r in &rows {
                let key = SlotKey {
                    dag_id: r.get(0),
                    run_id: r.get(1),
                    task_id: r.get(2),
                    map_index: r.get(3),
                };
                if !asked.contains(&key) {
                    *used.entry(r.get(4)).or_default() += r.get::<_, i64>(5);
                }
            }
            let mut granted = Vec::with_capacity(asks.len());
            let mut taken: Vec<&SlotAsk> = Vec::new();
            for a in &asks {
                let u = used.entry(a.pool.clone()).or_default();
                let ok = *u + i64::from(a.slots) <= i64::from(a.total);
                if ok {
                    *u += i64::from(a.slots);
                    taken.push(a);
                }
                granted.push(ok);
            }
            if !taken.is_empty() {
                let keys: Vec<SlotKey> = taken.iter().map(|a| a.key.clone()).collect();
                let cols = Released::of(&keys);
                let pools: Vec<&str> = taken.iter().map(|a| a.pool.as_str()).collect();
                let slots: Vec<i64> = taken.iter().map(|a| i64::from(a.slots)).collect();
                tx.execute(
                    "INSERT INTO pool_slots (dag_id, run_id, task_id, map_index, pool, slots, owner) \
                     SELECT d, r, t, m, p, s, $7 FROM UNNEST($1::text[], $2::text[], $3::text[], \
                     $4::bigint[], $5::text[], $6::bigint[]) AS u(d, r, t, m, p, s) \
                     ON CONFLICT (dag_id, run_id, task_id, map_index) DO UPDATE SET \
                     pool = EXCLUDED.pool, slots = EXCLUDED.slots, owner = EXCLUDED.owner",
                    &[
                        &cols.dags,
                        &cols.runs,
                        &cols.tasks,
                        &cols.indexes,
                        &pools,
                        &slots,
                        &owner,
                    ],
                )
                .await
                .map_err(err)?;
            }
            tx.commit().await.map_err(err)?;
            Ok(granted)
        })
    }

    fn release_slots(&self, keys: &[SlotKey]) -> Result<(), SchedulerError> {
        if keys.is_empty() {
            return Ok(());
        }
        let owner = self.fence.owner().to_string();
        let gone = Released::of(keys);
        self.call(|pool| async move {
            let mut c = pool.get().await.map_err(err)?;
            let tx = unsynced(&mut c).await?;
            gone.delete(&tx, &owner).await?;
            tx.commit().await.map_err(err)?;
            Ok(())
        })
    }
}
