//! [`PgDagStore`]: the DAG scheduler's store ([`DagStore`]) in PostgreSQL. Uniqueness (one run
//! per logical date, one run id per DAG, one SLA miss per task) is the database's constraints,
//! so two schedulers racing on one database cannot both win; a pass's task-instance writes are
//! one transaction. Orderings match sled's byte order (`COLLATE "C"`).
//!
//! Durability follows the scheduler's contract (see [`crate::scheduler::core`]): a pass's
//! task-instance writes and task logs need only be durable by the next flush, as sled's group
//! commit makes them, so they commit with `synchronous_commit = off` (PostgreSQL's WAL writer
//! flushes them within its delay; a crash loses at most those last passes, whose tries run
//! again). Runs are created and ended with synchronous commits, and a synchronous commit
//! flushes the WAL up to itself, so every earlier write too; [`DagStore::flush`] makes one
//! (assigning a transaction id) only when an asynchronous commit may not be covered yet.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use deadpool_postgres::Pool;
use serde_json::Value;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::Json;

use super::dag_lease::check_fence;
use super::PgDatabase;
use crate::persistence::asset_query::{
    AssetEventOrder, AssetEventPage, AssetEventQuery, AssetStats,
};
use crate::persistence::dag::{Committer, Coordination, DagStore};
use crate::persistence::dag_lease::Fence;
use crate::persistence::error::chain;
use crate::scheduler::{AssetEvent, DagRunRecord, QueuedAssetEvent, SchedulerError, StoredTi};

/// The scheduler's store in PostgreSQL.
#[derive(Clone)]
pub struct PgDagStore {
    db: PgDatabase,
    flushes: Arc<Flushes>,
    /// The leases this handle's run and task-instance writes are checked against (`None`: not
    /// a scheduler's handle; nothing is checked).
    fence: Option<Arc<Fence>>,
}

/// Which asynchronous commits are known to be on disk.
#[derive(Default)]
struct Flushes {
    /// Asynchronous commits so far.
    written: AtomicU64,
    /// The first this many are durable (a synchronous commit came after them).
    durable: AtomicU64,
}

/// A driver or pool error, as the scheduler's store error.
pub(super) fn err(e: impl std::error::Error + 'static) -> SchedulerError {
    SchedulerError::Store(chain(&e))
}

/// A transaction on `c` whose commit does not wait for the disk (`synchronous_commit = off`):
/// what the scheduler writes between two flushes (see the module docs).
pub(super) async fn unsynced(
    c: &mut deadpool_postgres::Object,
) -> Result<deadpool_postgres::Transaction<'_>, SchedulerError> {
    let tx = c.transaction().await.map_err(err)?;
    tx.batch_execute("SET LOCAL synchronous_commit TO OFF")
        .await
        .map_err(err)?;
    Ok(tx)
}

fn micros(d: &chrono::DateTime<chrono::Utc>) -> i64 {
    d.timestamp_micros()
}

fn run_from(row: &tokio_postgres::Row) -> Result<DagRunRecord, SchedulerError> {
    row.try_get::<_, Json<DagRunRecord>>(0)
        .map(|j| j.0)
        .map_err(|e| SchedulerError::Store(format!("corrupt dag run record: {}", chain(&e))))
}

impl PgDagStore {
    /// The store in `db`.
    pub fn new(db: PgDatabase) -> Self {
        PgDagStore {
            db,
            flushes: Arc::default(),
            fence: None,
        }
    }

    /// What a write on `dag_id` is checked against: the owner and the epoch it held the DAG
    /// under (`None`: no check).
    fn fence_of(&self, dag_id: &str) -> Option<(String, i64)> {
        let f = self.fence.as_ref()?;
        f.epoch(dag_id).map(|e| (f.owner().to_string(), e))
    }

    /// [`Self::call`] for a query that commits synchronously: once it succeeds, every
    /// asynchronous commit that ended before it started is durable too.
    fn call_sync<T, F, Fut>(&self, f: F) -> Result<T, SchedulerError>
    where
        F: FnOnce(Pool) -> Fut,
        Fut: Future<Output = Result<T, SchedulerError>> + Send + 'static,
        T: Send + 'static,
    {
        let before = self.flushes.written.load(Ordering::SeqCst);
        let r = self.call(f)?;
        self.flushes.durable.fetch_max(before, Ordering::SeqCst);
        Ok(r)
    }

    /// Runs a query on the database's runtime with a pooled connection.
    fn call<T, F, Fut>(&self, f: F) -> Result<T, SchedulerError>
    where
        F: FnOnce(Pool) -> Fut,
        Fut: Future<Output = Result<T, SchedulerError>> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.db.pool().clone();
        self.db.run(f(pool)).map_err(err)?
    }
}

/// The [`SchedulerError::RunExists`] for a refused insert of `rec`.
async fn run_exists(c: &tokio_postgres::Client, rec: &DagRunRecord) -> SchedulerError {
    let row = c
        .query_opt(
            "SELECT run_id FROM dag_runs WHERE dag_id = $1 AND logical_date_us = $2",
            &[&rec.dag_id, &micros(&rec.logical_date)],
        )
        .await;
    let detail = match row {
        Ok(Some(row)) => format!(
            "run `{}` already has logical date {}",
            row.get::<_, String>(0),
            rec.logical_date.to_rfc3339()
        ),
        Ok(None) => format!("run id `{}` is taken", rec.run_id),
        Err(e) => return err(e),
    };
    SchedulerError::RunExists {
        dag_id: rec.dag_id.clone(),
        detail,
    }
}

fn event_from(row: &tokio_postgres::Row) -> Result<AssetEvent, SchedulerError> {
    event_from_at(row, 0)
}

/// The event whose id is column `at` and record column `at + 1`.
fn event_from_at(row: &tokio_postgres::Row, at: usize) -> Result<AssetEvent, SchedulerError> {
    let id: i64 = row.try_get(at).map_err(err)?;
    let mut ev = row
        .try_get::<_, Json<AssetEvent>>(at + 1)
        .map(|j| j.0)
        .map_err(|e| SchedulerError::Store(format!("corrupt asset event: {}", chain(&e))))?;
    ev.id = id;
    Ok(ev)
}

/// A parameter of a built query.
enum Param {
    Text(String),
    Texts(Vec<String>),
    Int(i64),
}

impl Param {
    fn as_sql(&self) -> &(dyn tokio_postgres::types::ToSql + Sync) {
        match self {
            Param::Text(v) => v,
            Param::Texts(v) => v,
            Param::Int(v) => v,
        }
    }
}

/// Adds a parameter; its placeholder.
fn push(params: &mut Vec<Param>, p: Param) -> String {
    params.push(p);
    format!("${}", params.len())
}

/// An event's timestamp in microseconds, as SQL over its record.
const EVENT_MICROS: &str =
    "(EXTRACT(EPOCH FROM (rec->>'timestamp')::timestamptz) * 1000000)::bigint";
/// An event's map index (-1 when the record has none), as SQL.
const EVENT_MAP_INDEX: &str = "COALESCE((rec->>'source_map_index')::bigint, -1)";

/// The `WHERE` and `ORDER BY` of [`AssetEventQuery`], with their parameters: the same
/// selection and order as [`AssetEventQuery::matches`] and [`AssetEventQuery::compare`]. The
/// `WHERE` uses the first of the parameters, as many as the answer's last number says.
fn event_query_sql(q: &AssetEventQuery) -> (String, String, Vec<Param>, usize) {
    let mut params = Vec::new();
    let mut conds = vec!["TRUE".to_string()];
    if let Some(uris) = &q.uris {
        conds.push(format!(
            "uri = ANY({})",
            push(&mut params, Param::Texts(uris.clone()))
        ));
    }
    for (field, v) in [
        ("source_dag_id", &q.source_dag_id),
        ("source_task_id", &q.source_task_id),
        ("source_run_id", &q.source_run_id),
    ] {
        if let Some(v) = v {
            conds.push(format!(
                "rec->>'{field}' = {}",
                push(&mut params, Param::Text(v.clone()))
            ));
        }
    }
    if let Some(m) = q.source_map_index {
        conds.push(format!(
            "{EVENT_MAP_INDEX} = {}",
            push(&mut params, Param::Int(m))
        ));
    }
    if let Some(t) = q.timestamp_gte {
        conds.push(format!(
            "{EVENT_MICROS} >= {}",
            push(&mut params, Param::Int(micros(&t)))
        ));
    }
    if let Some(t) = q.timestamp_lte {
        conds.push(format!(
            "{EVENT_MICROS} <= {}",
            push(&mut params, Param::Int(micros(&t)))
        ));
    }
    let n_cond = params.len();
    let mut keys = Vec::new();
    for (key, desc) in &q.order {
        let dir = if *desc {
            "DESC NULLS LAST"
        } else {
            "ASC NULLS FIRST"
        };
        match key {
            AssetEventOrder::Id => keys.push(format!("id {dir}")),
            AssetEventOrder::Timestamp => keys.push(format!("{EVENT_MICROS} {dir}")),
            AssetEventOrder::Asset => {
                let rank = push(&mut params, Param::Texts(q.asset_rank.clone()));
                let others = push(&mut params, Param::Int(q.asset_rank.len() as i64));
                keys.push(format!(
                    "COALESCE((array_position({rank}::text[], uri) - 1)::bigint, {others}::bigint) {dir}"
                ));
                keys.push(format!("uri COLLATE \"C\" {dir}"));
            }
            AssetEventOrder::SourceDagId => {
                keys.push(format!("(rec->>'source_dag_id') COLLATE \"C\" {dir}"))
            }
            AssetEventOrder::SourceTaskId => {
                keys.push(format!("(rec->>'source_task_id') COLLATE \"C\" {dir}"))
            }
            AssetEventOrder::SourceRunId => {
                keys.push(format!("(rec->>'source_run_id') COLLATE \"C\" {dir}"))
            }
            AssetEventOrder::SourceMapIndex => keys.push(format!("{EVENT_MAP_INDEX} {dir}")),
        }
    }
    keys.push("id ASC".into());
    (conds.join(" AND "), keys.join(", "), params, n_cond)
}

/// Inserts `rec` in one transaction, after checking `fence`; with `consumed`, also consumes
/// those queued asset events and records them as the run's triggering events (refused with
/// [`SchedulerError::AssetEventsTaken`] when one is gone). A refused insert writes nothing.
async fn insert_run_tx(
    c: &mut deadpool_postgres::Object,
    rec: &DagRunRecord,
    consumed: Option<&[QueuedAssetEvent]>,
    fence: Option<&(String, i64)>,
) -> Result<(), SchedulerError> {
    let inserted = {
        let tx = c.transaction().await.map_err(err)?;
        check_fence(&tx, fence, &rec.dag_id).await?;
        let r = tx
            .execute(
                "INSERT INTO dag_runs (dag_id, logical_date_us, run_id, run_type, state, rec) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &rec.dag_id,
                    &micros(&rec.logical_date),
                    &rec.run_id,
                    &rec.run_type,
                    &rec.state,
                    &Json(rec),
                ],
            )
            .await;
        match r {
            Ok(_) => {
                if let Some(consumed) = consumed {
                    let ids: Vec<i64> = consumed.iter().map(|q| q.event_id).collect();
                    for q in consumed {
                        let n = tx
                            .execute(
                                "DELETE FROM asset_queue WHERE dag_id = $1 AND event_id = $2",
                                &[&q.dag_id, &q.event_id],
                            )
                            .await
                            .map_err(err)?;
                        if n == 0 {
                            // (dropping the transaction rolls the run back)
                            return Err(SchedulerError::AssetEventsTaken(rec.dag_id.clone()));
                        }
                    }
                    tx.execute(
                        "INSERT INTO run_asset_events (dag_id, run_id, event_ids) VALUES ($1, $2, $3)",
                        &[&rec.dag_id, &rec.run_id, &Json(&ids)],
                    )
                    .await
                    .map_err(err)?;
                }
                tx.commit().await.map_err(err)?;
                Ok(())
            }
            Err(e) => Err(e),
        }
    };
    match inserted {
        Ok(()) => Ok(()),
        Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => Err(run_exists(c, rec).await),
        Err(e) => Err(err(e)),
    }
}

impl DagStore for PgDagStore {
    fn asset_events_page(&self, q: &AssetEventQuery) -> Result<AssetEventPage, SchedulerError> {
        let (cond, order, mut params, n_cond) = event_query_sql(q);
        let (limit, offset) = (q.page_size() as i64, q.offset.min(i64::MAX as usize) as i64);
        self.call(|pool| async move {
            let c = pool.get().await.map_err(err)?;
            let refs: Vec<_> = params[..n_cond].iter().map(Param::as_sql).collect();
            let total: i64 = c
                .query_one(
                    &format!("SELECT COUNT(*) FROM asset_events WHERE {cond}"),
                    &refs,
                )
                .await
                .map_err(err)?
                .get(0);
            let n = params.len();
            params.push(Param::Int(limit));
            params.push(Param::Int(offset));
            let refs: Vec<_> = params.iter().map(Param::as_sql).collect();
            let rows = c
                .query(
                    &format!(
                        "SELECT id, rec FROM asset_events WHERE {cond} ORDER BY {order} LIMIT ${} OFFSET ${}",
                        n + 1,
                        n + 2
                    ),
                    &refs,
                )
                .await
                .map_err(err)?;
            Ok(AssetEventPage {
                events: rows.iter().map(event_from).collect::<Result<_, _>>()?,
                total: total as usize,
            })
        })
    }

    fn asset_stats(&self) -> Result<Vec<AssetStats>, SchedulerError> {
        self.call(|pool| async move {
            let c = pool.get().await.map_err(err)?;
            let rows = c
                .query(
                    "SELECT s.uri, s.n, f.id, f.rec, l.id, l.rec FROM \
                     (SELECT uri, COUNT(*) AS n, MIN(id) AS lo, MAX(id) AS hi FROM asset_events GROUP BY uri) s \
                     JOIN asset_events f ON f.id = s.lo JOIN asset_events l ON l.id = s.hi \
                     ORDER BY s.uri COLLATE \"C\"",
                    &[],
                )
                .await
                .map_err(err)?;
            rows.iter()
                .map(|row| {
                    let first = event_from_at(row, 2)?;
                    let last = event_from_at(row, 4)?;
                    Ok(AssetStats {
                        uri: row.try_get(0).map_err(err)?,
                        count: row.try_get::<_, i64>(1).map_err(err)? as u64,
                        first_timestamp: first.timestamp,
                        last_id: last.id,
                        last_timestamp: last.timestamp,
                    })
                })
                .collect()
        })
    }

    fn add_asset_event(
        &self,
        event: &AssetEvent,
        consumers: &[String],
    ) -> Result<AssetEvent, SchedulerError> {
        let (event, consumers) = (event.clone(), consumers.to_vec());
        self.call_sync(|pool| async move {
            let mut c = pool.get().await.map_err(err)?;
            let tx = c.transaction().await.map_err(err)?;
            let row = tx
                .query_one(
                    "INSERT INTO asset_events (uri, rec) VALUES ($1, $2) RETURNING id",
                    &[&event.uri, &Json(&event)],
                )
                .await
                .map_err(err)?;
            let mut ev = event;
            ev.id = row.get(0);
            for dag_id in &consumers {
                let q = QueuedAssetEvent {
                    dag_id: dag_id.clone(),
                    uri: ev.uri.clone(),
                    event_id: ev.id,
                    created_at: ev.timestamp,
                    source_aliases: ev.source_aliases.clone(),
                };
                tx.execute(
                    "INSERT INTO asset_queue (dag_id, event_id, rec) VALUES ($1, $2, $3) \
                     ON CONFLICT DO NOTHING",
                    &[dag_id, &ev.id, &Json(&q)],
                )
                .await
                .map_err(err)?;
            }
            tx.commit().await.map_err(err)?;
            Ok(ev)
        })
    }

    fn asset_events(&self, ids: Option<&[i64]>) -> Result<Vec<AssetEvent>, SchedulerError> {
        let ids = ids.map(<[i64]>::to_vec);
        self.call(|pool| async move {
            let c = pool.get().await.map_err(err)?;
            let rows = match ids {
                None => c
                    .query("SELECT id, rec FROM asset_events ORDER BY id", &[])
                    .await
                    .map_err(err)?,
                Some(ids) => c
                    .query(
                        "SELECT id, rec FROM asset_events WHERE id = ANY($1) ORDER BY id",
                        &[&ids],
                    )
                    .await
                    .map_err(err)?,
            };
            rows.iter().map(event_from).collect()
        })
    }

    fn asset_queue(&self, dag_id: Option<&str>) -> Result<Vec<QueuedAssetEvent>, SchedulerError> {
        let dag_id = dag_id.map(str::to_string);
        self.call(|pool| async move {
            let c = pool.get().await.map_err(err)?;
            let rows = match dag_id {
                None => c
                    .query(
                        "SELECT rec FROM asset_queue ORDER BY dag_id COLLATE \"C\", event_id",
                        &[],
                    )
                    .await
                    .map_err(err)?,
                Some(d) => c
                    .query(
                        "SELECT rec FROM asset_queue WHERE dag_id = $1 ORDER BY event_id",
                        &[&d],
                    )
                    .await
                    .map_err(err)?,
            };
            rows.iter()
                .map(|r| {
                    r.try_get::<_, Json<QueuedAssetEvent>>(0)
                        .map(|j| j.0)
                        .map_err(|e| {
                            SchedulerError::Store(format!(
                                "corrupt queued asset event: {}",
                                chain(&e)
                            ))
                        })
                })
                .collect()
        })
    }

    fn delete_asset_queue(
        &self,
        dag_id: Option<&str>,
        uris: Option<&[String]>,
    ) -> Result<usize, SchedulerError> {
        let (dag_id, uris) = (dag_id.map(str::to_string), uris.map(<[String]>::to_vec));
        self.call_sync(|pool| async move {
            let c = pool.get().await.map_err(err)?;
            // (NULL parameters match everything; the URI is the record's `uri` field)
            let n = c
                .execute(
                    "DELETE FROM asset_queue WHERE ($1::TEXT IS NULL OR dag_id = $1) \
                     AND ($2::TEXT[] IS NULL OR (rec->>'uri') = ANY($2))",
                    &[&dag_id, &uris],
                )
                .await
                .map_err(err)?;
            Ok(n as usize)
        })
    }

    fn create_asset_run(
        &self,
        rec: &DagRunRecord,
        consumed: &[QueuedAssetEvent],
    ) -> Result<(), SchedulerError> {
        let (rec, consumed) = (rec.clone(), consumed.to_vec());
        let fence = self.fence_of(&rec.dag_id);
        self.call_sync(|pool| async move {
            let mut c = pool.get().await.map_err(err)?;
            insert_run_tx(&mut c, &rec, Some(&consumed), fence.as_ref()).await
        })
    }

    fn triggering_event_ids(&self, dag_id: &str, run_id: &str) -> Result<Vec<i64>, SchedulerError> {
        let (dag_id, run_id) = (dag_id.to_string(), run_id.to_string());
        self.call(|pool| async move {
            let c = pool.get().await.map_err(err)?;
            let row = c
                .query_opt(
                    "SELECT event_ids FROM run_asset_events WHERE dag_id = $1 AND run_id = $2",
                    &[&dag_id, &run_id],
                )
                .await
                .map_err(err)?;
            match row {
                Some(r) => r.try_get::<_, Json<Vec<i64>>>(0).map(|j| j.0).map_err(err),
                None => Ok(Vec::new()),
            }
        })
    }

    fn insert_run(&self, rec: &DagRunRecord) -> Result<(), SchedulerError> {
        let rec = rec.clone();
        let fence = self.fence_of(&rec.dag_id);
        self.call_sync(|pool| async move {
            let mut c = pool.get().await.map_err(err)?;
            insert_run_tx(&mut c, &rec, None, fence.as_ref()).await
        })
    }

    fn put_run(&self, rec: &DagRunRecord) -> Result<(), SchedulerError> {
        let rec = rec.clone();
        let fence = self.fence_of(&rec.dag_id);
        self.call_sync(|pool| async move {
            let mut c = pool.get().await.map_err(err)?;
            let tx = c.transaction().await.map_err(err)?;
            check_fence(&tx, fence.as_ref(), &rec.dag_id).await?;
            tx.execute(
                "INSERT INTO dag_runs (dag_id, logical_date_us, run_id, run_type, state, rec) \
                 VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (dag_id, logical_date_us) DO UPDATE SET run_id = EXCLUDED.run_id, \
                 run_type = EXCLUDED.run_type, state = EXCLUDED.state, rec = EXCLUDED.rec",
                &[
                    &rec.dag_id,
                    &micros(&rec.logical_date),
                    &rec.run_id,
                    &rec.run_type,
                    &rec.state,
                    &Json(&rec),
                ],
            )
            .await
            .map_err(err)?;
            tx.commit().await.map_err(err)?;
            Ok(())
        })
    }

    fn get_run(&self, dag_id: &str, run_id: &str) -> Result<Option<DagRunRecord>, SchedulerError> {
        let (dag_id, run_id) = (dag_id.to_string(), run_id.to_string());
        self.call(|pool| async move {
            let c = pool.get().await.map_err(err)?;
            let row = c
                .query_opt(
                    "SELECT rec FROM dag_runs WHERE dag_id = $1 AND run_id = $2",
                    &[&dag_id, &run_id],
                )
                .await
                .map_err(err)?;
            row.as_ref().map(run_from).transpose()
        })
    }

    fn runs_of(&self, dag_id: &str) -> Result<Vec<DagRunRecord>, SchedulerError> {
        let dag_id = dag_id.to_string();
        self.call(|pool| async move {
            let c = pool.get().await.map_err(err)?;
            let rows = c
                .query(
                    "SELECT rec FROM dag_runs WHERE dag_id = $1 ORDER BY logical_date_us",
                    &[&dag_id],
                )
                .await
                .map_err(err)?;
            rows.iter().map(run_from).collect()
        })
    }

    fn recent_runs(&self, dag_id: &str, n: usize) -> Result<Vec<DagRunRecord>, SchedulerError> {
        let dag_id = dag_id.to_string();
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        self.call(|pool| async move {
            let c = pool.get().await.map_err(err)?;
            let rows = c
                .query(
                    "SELECT rec FROM (SELECT rec, logical_date_us FROM dag_runs WHERE dag_id = $1 \
                     ORDER BY logical_date_us DESC LIMIT $2) newest ORDER BY logical_date_us",
                    &[&dag_id, &n],
                )
                .await
                .map_err(err)?;
            rows.iter().map(run_from).collect()
        })
    }

    fn unfinished_runs(&self) -> Result<Vec<DagRunRecord>, SchedulerError> {
        self.call(|pool| async move {
            let c = pool.get().await.map_err(err)?;
            let rows = c
                .query(
                    "SELECT rec FROM dag_runs WHERE state NOT IN ('success', 'failed') \
                     ORDER BY dag_id COLLATE \"C\", logical_date_us",
                    &[],
                )
                .await
                .map_err(err)?;
            rows.iter().map(run_from).collect()
        })
    }

    fn last_run(
        &self,
        dag_id: &str,
        types: &[&str],
    ) -> Result<Option<DagRunRecord>, SchedulerError> {
        let dag_id = dag_id.to_string();
        let types: Vec<String> = types.iter().map(|t| t.to_string()).collect();
        self.call(|pool| async move {
            let c = pool.get().await.map_err(err)?;
            let row = c
                .query_opt(
                    "SELECT rec FROM dag_runs WHERE dag_id = $1 AND run_type = ANY($2) \
                     ORDER BY logical_date_us DESC LIMIT 1",
                    &[&dag_id, &types],
                )
                .await
                .map_err(err)?;
            row.as_ref().map(run_from).transpose()
        })
    }

    fn tis_of(&self, dag_id: &str, run_id: &str) -> Result<Vec<StoredTi>, SchedulerError> {
        let (dag_id, run_id) = (dag_id.to_string(), run_id.to_string());
        self.call(|pool| async move {
            let c = pool.get().await.map_err(err)?;
            let rows = c
                .query(
                    "SELECT rec FROM task_instances WHERE dag_id = $1 AND run_id = $2 \
                     ORDER BY task_id COLLATE \"C\", map_index",
                    &[&dag_id, &run_id],
                )
                .await
                .map_err(err)?;
            rows.iter()
                .map(|r| {
                    r.try_get::<_, Json<StoredTi>>(0).map(|j| j.0).map_err(|e| {
                        SchedulerError::Store(format!(
                            "corrupt task instance record: {}",
                            chain(&e)
                        ))
                    })
                })
                .collect()
        })
    }

    fn write_tis(
        &self,
        dag_id: &str,
        run_id: &str,
        replace: &[String],
        put: &[StoredTi],
    ) -> Result<(), SchedulerError> {
        let (dag_id, run_id) = (dag_id.to_string(), run_id.to_string());
        let replace = replace.to_vec();
        // the last write of an instance wins, as in one sled batch
        let mut last: HashMap<(String, i64), usize> = HashMap::new();
        for (n, ti) in put.iter().enumerate() {
            last.insert((ti.ti.task_id.clone(), ti.ti.map_index), n);
        }
        let mut order: Vec<usize> = last.into_values().collect();
        order.sort_unstable();
        let tasks: Vec<String> = order.iter().map(|&n| put[n].ti.task_id.clone()).collect();
        let indexes: Vec<i64> = order.iter().map(|&n| put[n].ti.map_index).collect();
        let recs: Vec<Json<StoredTi>> = order.iter().map(|&n| Json(put[n].clone())).collect();
        let flushes = self.flushes.clone();
        let fence = self.fence_of(&dag_id);
        self.call(|pool| async move {
            let mut c = pool.get().await.map_err(err)?;
            let tx = unsynced(&mut c).await?;
            check_fence(&tx, fence.as_ref(), &dag_id).await?;
            if !replace.is_empty() {
                tx.execute(
                    "DELETE FROM task_instances WHERE dag_id = $1 AND run_id = $2 \
                     AND task_id = ANY($3)",
                    &[&dag_id, &run_id, &replace],
                )
                .await
                .map_err(err)?;
            }
            if !tasks.is_empty() {
                tx.execute(
                    "INSERT INTO task_instances (dag_id, run_id, task_id, map_index, rec) \
                     SELECT $1, $2, t, m, r FROM UNNEST($3::text[], $4::bigint[], $5::json[]) \
                     AS u(t, m, r) \
                     ON CONFLICT (dag_id, run_id, task_id, map_index) DO UPDATE SET rec = EXCLUDED.rec",
                    &[&dag_id, &run_id, &tasks, &indexes, &recs],
                )
                .await
                .map_err(err)?;
            }
            tx.commit().await.map_err(err)?;
            flushes.written.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
    }

    fn append_log(
        &self,
        dag_id: &str,
        run_id: &str,
        task_id: &str,
        map_index: i64,
        try_number: u32,
        entry: Value,
    ) -> Result<(), SchedulerError> {
        let key = (dag_id.to_string(), run_id.to_string(), task_id.to_string());
        let try_number = try_number as i32;
        let flushes = self.flushes.clone();
        let fence = self.fence_of(dag_id);
        self.call(|pool| async move {
            let mut c = pool.get().await.map_err(err)?;
            let tx = unsynced(&mut c).await?;
            check_fence(&tx, fence.as_ref(), &key.0).await?;
            tx.execute(
                "INSERT INTO task_logs (dag_id, run_id, task_id, map_index, try_number, entry) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &key.0,
                    &key.1,
                    &key.2,
                    &map_index,
                    &try_number,
                    &Json(&entry),
                ],
            )
            .await
            .map_err(err)?;
            tx.commit().await.map_err(err)?;
            flushes.written.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
    }

    fn logs_of(
        &self,
        dag_id: &str,
        run_id: &str,
        task_id: &str,
    ) -> Result<Vec<(i64, u32, Vec<Value>)>, SchedulerError> {
        let key = (dag_id.to_string(), run_id.to_string(), task_id.to_string());
        self.call(|pool| async move {
            let c = pool.get().await.map_err(err)?;
            let rows = c
                .query(
                    "SELECT map_index, try_number, entry FROM task_logs \
                     WHERE dag_id = $1 AND run_id = $2 AND task_id = $3 \
                     ORDER BY map_index, try_number, seq",
                    &[&key.0, &key.1, &key.2],
                )
                .await
                .map_err(err)?;
            let mut out: Vec<(i64, u32, Vec<Value>)> = Vec::new();
            for r in rows {
                let mi: i64 = r.get(0);
                let tn = r.get::<_, i32>(1) as u32;
                let entry = r.try_get::<_, Json<Value>>(2).map_err(err)?.0;
                match out.last_mut() {
                    Some(last) if last.0 == mi && last.1 == tn => last.2.push(entry),
                    _ => out.push((mi, tn, vec![entry])),
                }
            }
            Ok(out)
        })
    }

    fn record_sla_miss(
        &self,
        dag_id: &str,
        run_id: &str,
        task_id: &str,
        rec: &Value,
    ) -> Result<bool, SchedulerError> {
        let key = (dag_id.to_string(), run_id.to_string(), task_id.to_string());
        let rec = rec.clone();
        self.call_sync(|pool| async move {
            let c = pool.get().await.map_err(err)?;
            let n = c
                .execute(
                    "INSERT INTO sla_misses (dag_id, run_id, task_id, rec) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT DO NOTHING",
                    &[&key.0, &key.1, &key.2, &Json(&rec)],
                )
                .await
                .map_err(err)?;
            Ok(n == 1)
        })
    }

    fn sla_misses(&self, dag_id: &str) -> Result<Vec<Value>, SchedulerError> {
        let dag_id = dag_id.to_string();
        self.call(|pool| async move {
            let c = pool.get().await.map_err(err)?;
            let rows = c
                .query(
                    "SELECT rec FROM sla_misses WHERE dag_id = $1 \
                     ORDER BY run_id COLLATE \"C\", task_id COLLATE \"C\"",
                    &[&dag_id],
                )
                .await
                .map_err(err)?;
            rows.iter()
                .map(|r| r.try_get::<_, Json<Value>>(0).map(|j| j.0).map_err(err))
                .collect()
        })
    }

    fn see_file(&self, dag_id: &str, path: &str, mtime: f64) -> Result<bool, SchedulerError> {
        let (dag_id, path) = (dag_id.to_string(), path.to_string());
        self.call_sync(|pool| async move {
            let mut c = pool.get().await.map_err(err)?;
            let tx = c.transaction().await.map_err(err)?;
            // (the row lock makes check-and-record one step for racing schedulers)
            let old = tx
                .query_opt(
                    "SELECT mtime FROM seen_files WHERE dag_id = $1 AND path = $2 FOR UPDATE",
                    &[&dag_id, &path],
                )
                .await
                .map_err(err)?
                .map(|r| r.get::<_, f64>(0));
            tx.execute(
                "INSERT INTO seen_files (dag_id, path, mtime) VALUES ($1, $2, $3) \
                 ON CONFLICT (dag_id, path) DO UPDATE SET mtime = EXCLUDED.mtime",
                &[&dag_id, &path, &mtime],
            )
            .await
            .map_err(err)?;
            tx.commit().await.map_err(err)?;
            Ok(old.is_some_and(|o| o.to_bits() == mtime.to_bits()))
        })
    }

    fn delete_dag(&self, dag_id: &str) -> Result<usize, SchedulerError> {
        let dag_id = dag_id.to_string();
        self.call_sync(|pool| async move {
            let mut c = pool.get().await.map_err(err)?;
            let tx = c.transaction().await.map_err(err)?;
            let mut runs = 0;
            for table in [
                "dag_runs",
                "task_instances",
                "task_logs",
                "sla_misses",
                "seen_files",
                "dag_paused",
                "asset_queue",
                "run_asset_events",
                "pool_slots",
            ] {
                // (table names are these constants; the DAG id is a bound parameter)
                let n = tx
                    .execute(
                        &format!("DELETE FROM {table} WHERE dag_id = $1"),
                        &[&dag_id],
                    )
                    .await
                    .map_err(err)?;
                if table == "dag_runs" {
                    runs = n as usize;
                }
            }
            tx.commit().await.map_err(err)?;
            Ok(runs)
        })
    }

    fn delete_run(&self, dag_id: &str, run_id: &str) -> Result<bool, SchedulerError> {
        let (dag_id, run_id) = (dag_id.to_string(), run_id.to_string());
        self.call_sync(|pool| async move {
            let mut c = pool.get().await.map_err(err)?;
            let tx = c.transaction().await.map_err(err)?;
            let mut found = false;
            for table in [
                "dag_runs",
                "task_instances",
                "task_logs",
                "sla_misses",
                "run_asset_events",
            ] {
                // (table names are these constants; the ids are bound parameters)
                let n = tx
                    .execute(
                        &format!("DELETE FROM {table} WHERE dag_id = $1 AND run_id = $2"),
                        &[&dag_id, &run_id],
                    )
                    .await
                    .map_err(err)?;
                if table == "dag_runs" {
                    found = n > 0;
                }
            }
            tx.commit().await.map_err(err)?;
            Ok(found)
        })
    }

    fn dag_paused(&self, dag_id: &str) -> Result<Option<bool>, SchedulerError> {
        let dag_id = dag_id.to_string();
        self.call(|pool| async move {
            let c = pool.get().await.map_err(err)?;
            let row = c
                .query_opt(
                    "SELECT paused FROM dag_paused WHERE dag_id = $1",
                    &[&dag_id],
                )
                .await
                .map_err(err)?;
            Ok(row.map(|r| r.get::<_, bool>(0)))
        })
    }

    fn set_dag_paused(&self, dag_id: &str, paused: bool) -> Result<(), SchedulerError> {
        let dag_id = dag_id.to_string();
        self.call_sync(|pool| async move {
            let c = pool.get().await.map_err(err)?;
            c.execute(
                "INSERT INTO dag_paused (dag_id, paused) VALUES ($1, $2) \
                 ON CONFLICT (dag_id) DO UPDATE SET paused = EXCLUDED.paused",
                &[&dag_id, &paused],
            )
            .await
            .map_err(err)?;
            Ok(())
        })
    }

    fn flush(&self) -> Result<(), SchedulerError> {
        let f = &self.flushes;
        if f.durable.load(Ordering::SeqCst) >= f.written.load(Ordering::SeqCst) {
            return Ok(());
        }
        self.call_sync(|pool| async move {
            let c = pool.get().await.map_err(err)?;
            // a transaction with an id commits synchronously: the WAL is flushed up to it
            c.execute("SELECT txid_current()", &[]).await.map_err(err)?;
            Ok(())
        })
    }

    fn coordinate(&self, owner: &str) -> Result<Coordination, SchedulerError> {
        let fence = Arc::new(Fence::new(owner));
        Ok(Coordination {
            store: Arc::new(PgDagStore {
                db: self.db.clone(),
                flushes: self.flushes.clone(),
                fence: Some(fence.clone()),
            }),
            leases: Arc::new(super::PgDagLeases::new(self.db.clone(), fence)),
        })
    }

    fn committer(&self) -> Result<Option<Box<dyn Committer>>, SchedulerError> {
        Ok(None)
    }
}
