//! [`SledDagStore`]: the DAG scheduler's store ([`super::DagStore`]) on sled — DAG runs, task
//! instances, per-try task logs, SLA misses and the files a file-arrival trigger has seen.
//!
//! Trees and keys (all keys are byte strings; ids are separated by `\0`, which DAG and task ids
//! cannot contain):
//! - `dag_runs`: `dag_id \0 logical_date` (8 bytes, order-preserving) -> [`DagRunRecord`], so
//!   one DAG's runs list in logical-date order with a prefix scan;
//! - `dag_run_ids`: `dag_id \0 run_id` -> the `dag_runs` key;
//! - `task_instances`: `dag_id \0 run_id \0 task_id \0 map_index` -> [`StoredTi`];
//! - `task_logs`: the task-instance key + `\0 try_number` -> a JSON array of the try's log
//!   entries (guest log records, stdout, stderr, audit, error);
//! - `sla_misses`: `dag_id \0 run_id \0 task_id` -> a JSON record;
//! - `seen_files`: `dag_id \0 path` -> modification time seen;
//! - `dag_paused`: `dag_id` -> `1` (paused) or `0` (unpaused), set by pause/unpause;
//! - `asset_events`: event id (8 bytes, big-endian) -> [`AssetEvent`];
//! - `asset_event_index`: `uri \0 event id` -> the event's timestamp (RFC 3339), written with
//!   the event, so one asset's events and every asset's count, first and last event are read
//!   without decoding events; the empty key marks the index complete (built at open for
//!   databases written before it);
//! - `asset_queue`: `dag_id \0 event id` -> [`QueuedAssetEvent`];
//! - `run_asset_events`: `dag_id \0 run_id` -> the ids of the events that triggered the run.
//!
//! Writes go through [`SledDagStore::write_tis`] (one sled batch) and [`SledDagStore::flush`], so
//! the loop commits a whole pass of state changes at once before acting on them.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::asset_query::{AssetEventPage, AssetEventQuery, AssetStats, TopK};
use super::dag::{Committer, DagStore};
use crate::scheduler::{AssetEvent, DagRunRecord, QueuedAssetEvent, SchedulerError, StoredTi};

/// The scheduler's sled trees.
#[derive(Clone)]
pub struct SledDagStore {
    db: sled::Db,
    runs: sled::Tree,
    run_ids: sled::Tree,
    tis: sled::Tree,
    logs: sled::Tree,
    sla: sled::Tree,
    seen: sled::Tree,
    paused: sled::Tree,
    asset_events: sled::Tree,
    asset_index: sled::Tree,
    asset_queue: sled::Tree,
    run_events: sled::Tree,
}

fn db_err(e: sled::Error) -> SchedulerError {
    SchedulerError::Store(e.to_string())
}

fn json_err(what: &str, e: serde_json::Error) -> SchedulerError {
    SchedulerError::Store(format!("corrupt {what} record: {e}"))
}

fn date_bytes(d: &DateTime<Utc>) -> [u8; 8] {
    ((d.timestamp_micros() as u64) ^ (1 << 63)).to_be_bytes()
}

fn map_index_bytes(m: i64) -> [u8; 8] {
    ((m as u64) ^ (1 << 63)).to_be_bytes()
}

fn join(parts: &[&[u8]]) -> Vec<u8> {
    let mut k = Vec::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for (n, p) in parts.iter().enumerate() {
        if n > 0 {
            k.push(0);
        }
        k.extend_from_slice(p);
    }
    k
}

/// Key of a task instance.
pub fn ti_key(dag_id: &str, run_id: &str, task_id: &str, map_index: i64) -> Vec<u8> {
    join(&[
        dag_id.as_bytes(),
        run_id.as_bytes(),
        task_id.as_bytes(),
        &map_index_bytes(map_index),
    ])
}

fn task_prefix(dag_id: &str, run_id: &str, task_id: &str) -> Vec<u8> {
    let mut k = join(&[dag_id.as_bytes(), run_id.as_bytes(), task_id.as_bytes()]);
    k.push(0);
    k
}

fn run_prefix(dag_id: &str, run_id: &str) -> Vec<u8> {
    let mut k = join(&[dag_id.as_bytes(), run_id.as_bytes()]);
    k.push(0);
    k
}

impl SledDagStore {
    /// Opens (creating) the trees in `db`.
    pub fn open(db: &sled::Db) -> Result<Self, SchedulerError> {
        let store = SledDagStore {
            db: db.clone(),
            runs: db.open_tree("dag_runs").map_err(db_err)?,
            run_ids: db.open_tree("dag_run_ids").map_err(db_err)?,
            tis: db.open_tree("task_instances").map_err(db_err)?,
            logs: db.open_tree("task_logs").map_err(db_err)?,
            sla: db.open_tree("sla_misses").map_err(db_err)?,
            seen: db.open_tree("seen_files").map_err(db_err)?,
            paused: db.open_tree("dag_paused").map_err(db_err)?,
            asset_events: db.open_tree("asset_events").map_err(db_err)?,
            asset_index: db.open_tree("asset_event_index").map_err(db_err)?,
            asset_queue: db.open_tree("asset_queue").map_err(db_err)?,
            run_events: db.open_tree("run_asset_events").map_err(db_err)?,
        };
        store.build_asset_index()?;
        Ok(store)
    }

    /// Indexes every event not indexed yet (a database written before the index); idempotent,
    /// so two processes opening at once, or one stopped halfway, leave it whole.
    fn build_asset_index(&self) -> Result<(), SchedulerError> {
        if self.asset_index.contains_key(b"").map_err(db_err)? {
            return Ok(());
        }
        for kv in self.asset_events.iter() {
            let (_, v) = kv.map_err(db_err)?;
            let e: AssetEvent =
                serde_json::from_slice(&v).map_err(|e| json_err("asset event", e))?;
            let (k, ts) = index_entry(&e);
            self.asset_index.insert(k, ts).map_err(db_err)?;
        }
        self.asset_index.insert(b"", b"").map_err(db_err)?;
        Ok(())
    }

    /// The database the trees live in.
    pub fn db(&self) -> &sled::Db {
        &self.db
    }

    fn run_key(rec: &DagRunRecord) -> Vec<u8> {
        join(&[rec.dag_id.as_bytes(), &date_bytes(&rec.logical_date)])
    }
}

/// An event's `asset_event_index` entry.
fn index_entry(e: &AssetEvent) -> (Vec<u8>, Vec<u8>) {
    (
        join(&[e.uri.as_bytes(), &e.id.to_be_bytes()]),
        e.timestamp.to_rfc3339().into_bytes(),
    )
}

/// An `asset_event_index` key's URI and event id.
fn split_index_key(k: &[u8]) -> Option<(&[u8], i64)> {
    let n = k.len().checked_sub(9)?;
    (k[n] == 0).then_some(())?;
    let id = i64::from_be_bytes(k[n + 1..].try_into().ok()?);
    Some((&k[..n], id))
}

fn index_time(v: &[u8]) -> Result<DateTime<Utc>, SchedulerError> {
    std::str::from_utf8(v)
        .ok()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|d| d.with_timezone(&Utc))
        .ok_or_else(|| SchedulerError::Store("corrupt asset event index entry".into()))
}

fn queue_key(dag_id: &str, event_id: i64) -> Vec<u8> {
    join(&[dag_id.as_bytes(), &event_id.to_be_bytes()])
}

impl SledDagStore {
    /// Inserts a run (refusing a taken logical date or run id) and, for an asset-triggered
    /// run, consumes its queued events and records its triggering ones: one transaction over
    /// every tree involved, so two handles racing cannot both insert and a crash keeps all or
    /// nothing.
    fn create_asset_run_in(
        &self,
        rec: &DagRunRecord,
        consumed: Option<&[QueuedAssetEvent]>,
    ) -> Result<(), SchedulerError> {
        use sled::transaction::{ConflictableTransactionError as Abort, TransactionError};
        use sled::Transactional;
        let key = Self::run_key(rec);
        let id_key = join(&[rec.dag_id.as_bytes(), rec.run_id.as_bytes()]);
        let v = serde_json::to_vec(rec).map_err(|e| json_err("dag run", e))?;
        let ids: Option<Vec<u8>> = match consumed {
            Some(c) => Some(
                serde_json::to_vec(&c.iter().map(|q| q.event_id).collect::<Vec<_>>())
                    .map_err(|e| json_err("run asset events", e))?,
            ),
            None => None,
        };
        let r = (
            &self.runs,
            &self.run_ids,
            &self.asset_queue,
            &self.run_events,
        )
            .transaction(|(runs, run_ids, queue, run_events)| {
                if let Some(existing) = runs.get(&key)? {
                    let detail = match serde_json::from_slice::<DagRunRecord>(&existing) {
                        Ok(old) => format!(
                            "run `{}` already has logical date {}",
                            old.run_id,
                            rec.logical_date.to_rfc3339()
                        ),
                        Err(e) => return Err(Abort::Abort(json_err("dag run", e))),
                    };
                    return Err(Abort::Abort(SchedulerError::RunExists {
                        dag_id: rec.dag_id.clone(),
                        detail,
                    }));
                }
                if run_ids.get(&id_key)?.is_some() {
                    return Err(Abort::Abort(SchedulerError::RunExists {
                        dag_id: rec.dag_id.clone(),
                        detail: format!("run id `{}` is taken", rec.run_id),
                    }));
                }
                runs.insert(key.as_slice(), v.as_slice())?;
                run_ids.insert(id_key.as_slice(), key.as_slice())?;
                if let (Some(consumed), Some(ids)) = (consumed, &ids) {
                    for q in consumed {
                        if queue.remove(queue_key(&q.dag_id, q.event_id))?.is_none() {
                            return Err(Abort::Abort(SchedulerError::AssetEventsTaken(
                                rec.dag_id.clone(),
                            )));
                        }
                    }
                    run_events.insert(id_key.as_slice(), ids.as_slice())?;
                }
                Ok(())
            });
        match r {
            Ok(()) => Ok(()),
            Err(TransactionError::Abort(e)) => Err(e),
            Err(TransactionError::Storage(e)) => Err(db_err(e)),
        }
    }
}

impl DagStore for SledDagStore {
    fn add_asset_event(
        &self,
        event: &AssetEvent,
        consumers: &[String],
    ) -> Result<AssetEvent, SchedulerError> {
        use sled::transaction::TransactionError;
        use sled::Transactional;
        let mut ev = event.clone();
        ev.id = i64::try_from(self.db.generate_id().map_err(db_err)? + 1)
            .map_err(|_| SchedulerError::Store("asset event ids are exhausted".into()))?;
        let v = serde_json::to_vec(&ev).map_err(|e| json_err("asset event", e))?;
        let queued: Vec<(Vec<u8>, Vec<u8>)> = consumers
            .iter()
            .map(|d| {
                let q = QueuedAssetEvent {
                    dag_id: d.clone(),
                    uri: ev.uri.clone(),
                    event_id: ev.id,
                    created_at: ev.timestamp,
                    source_aliases: ev.source_aliases.clone(),
                };
                serde_json::to_vec(&q)
                    .map(|b| (queue_key(d, ev.id), b))
                    .map_err(|e| json_err("queued asset event", e))
            })
            .collect::<Result<_, _>>()?;
        let (ik, iv) = index_entry(&ev);
        let r: Result<(), TransactionError<SchedulerError>> =
            (&self.asset_events, &self.asset_queue, &self.asset_index).transaction(
                |(events, queue, index)| {
                    events.insert(&ev.id.to_be_bytes(), v.as_slice())?;
                    index.insert(ik.as_slice(), iv.as_slice())?;
                    for (k, b) in &queued {
                        queue.insert(k.as_slice(), b.as_slice())?;
                    }
                    Ok(())
                },
            );
        match r {
            Ok(()) => Ok(ev),
            Err(TransactionError::Abort(e)) => Err(e),
            Err(TransactionError::Storage(e)) => Err(db_err(e)),
        }
    }

    fn asset_events(&self, ids: Option<&[i64]>) -> Result<Vec<AssetEvent>, SchedulerError> {
        let decode = |v: &[u8]| serde_json::from_slice(v).map_err(|e| json_err("asset event", e));
        match ids {
            None => self
                .asset_events
                .iter()
                .map(|kv| decode(&kv.map_err(db_err)?.1))
                .collect(),
            Some(ids) => {
                let mut ids = ids.to_vec();
                ids.sort_unstable();
                ids.dedup();
                let mut out = Vec::new();
                for id in ids {
                    if let Some(v) = self.asset_events.get(id.to_be_bytes()).map_err(db_err)? {
                        out.push(decode(&v)?);
                    }
                }
                Ok(out)
            }
        }
    }

    fn asset_events_page(&self, q: &AssetEventQuery) -> Result<AssetEventPage, SchedulerError> {
        let decode = |v: &[u8]| -> Result<AssetEvent, SchedulerError> {
            serde_json::from_slice(v).map_err(|e| json_err("asset event", e))
        };
        let mut top = TopK::new(q);
        match &q.uris {
            // a few assets: their events through the index
            Some(uris) => {
                let mut ids = Vec::new();
                for uri in uris {
                    let mut prefix = uri.as_bytes().to_vec();
                    prefix.push(0);
                    for kv in self.asset_index.scan_prefix(&prefix) {
                        let (k, _) = kv.map_err(db_err)?;
                        if let Some((u, id)) = split_index_key(&k) {
                            if u == uri.as_bytes() {
                                ids.push(id);
                            }
                        }
                    }
                }
                ids.sort_unstable();
                ids.dedup();
                for id in ids {
                    if let Some(v) = self.asset_events.get(id.to_be_bytes()).map_err(db_err)? {
                        top.offer(decode(&v)?);
                    }
                }
            }
            None => {
                for kv in self.asset_events.iter() {
                    top.offer(decode(&kv.map_err(db_err)?.1)?);
                }
            }
        }
        Ok(top.finish())
    }

    fn asset_stats(&self) -> Result<Vec<AssetStats>, SchedulerError> {
        let mut by_uri: std::collections::BTreeMap<Vec<u8>, AssetStats> = Default::default();
        for kv in self.asset_index.iter() {
            let (k, v) = kv.map_err(db_err)?;
            let Some((uri, id)) = split_index_key(&k) else {
                continue;
            };
            let t = index_time(&v)?;
            let s = by_uri.entry(uri.to_vec()).or_insert_with(|| AssetStats {
                uri: String::from_utf8_lossy(uri).into_owned(),
                count: 0,
                first_timestamp: t,
                last_id: id,
                last_timestamp: t,
            });
            s.count += 1;
            if id >= s.last_id {
                (s.last_id, s.last_timestamp) = (id, t);
            }
        }
        Ok(by_uri.into_values().collect())
    }

    fn asset_queue(&self, dag_id: Option<&str>) -> Result<Vec<QueuedAssetEvent>, SchedulerError> {
        let decode = |kv: Result<(sled::IVec, sled::IVec), sled::Error>| {
            let (_, v) = kv.map_err(db_err)?;
            serde_json::from_slice(&v).map_err(|e| json_err("queued asset event", e))
        };
        match dag_id {
            Some(d) => {
                let mut prefix = d.as_bytes().to_vec();
                prefix.push(0);
                self.asset_queue.scan_prefix(prefix).map(decode).collect()
            }
            None => self.asset_queue.iter().map(decode).collect(),
        }
    }

    fn create_asset_run(
        &self,
        rec: &DagRunRecord,
        consumed: &[QueuedAssetEvent],
    ) -> Result<(), SchedulerError> {
        self.create_asset_run_in(rec, Some(consumed))
    }

    fn delete_asset_queue(
        &self,
        dag_id: Option<&str>,
        uris: Option<&[String]>,
    ) -> Result<usize, SchedulerError> {
        let mut n = 0;
        for q in self.asset_queue(dag_id)? {
            if uris.is_some_and(|u| !u.contains(&q.uri)) {
                continue;
            }
            if self
                .asset_queue
                .remove(queue_key(&q.dag_id, q.event_id))
                .map_err(db_err)?
                .is_some()
            {
                n += 1;
            }
        }
        Ok(n)
    }

    fn triggering_event_ids(&self, dag_id: &str, run_id: &str) -> Result<Vec<i64>, SchedulerError> {
        match self
            .run_events
            .get(join(&[dag_id.as_bytes(), run_id.as_bytes()]))
            .map_err(db_err)?
        {
            Some(v) => serde_json::from_slice(&v).map_err(|e| json_err("run asset events", e)),
            None => Ok(Vec::new()),
        }
    }

    fn delete_dag(&self, dag_id: &str) -> Result<usize, SchedulerError> {
        let mut prefix = dag_id.as_bytes().to_vec();
        prefix.push(0);
        let runs = self.runs.scan_prefix(&prefix).count();
        for tree in [
            &self.runs,
            &self.run_ids,
            &self.tis,
            &self.logs,
            &self.sla,
            &self.seen,
            &self.asset_queue,
            &self.run_events,
        ] {
            let keys: Vec<sled::IVec> = tree
                .scan_prefix(&prefix)
                .keys()
                .collect::<Result<_, _>>()
                .map_err(db_err)?;
            for k in keys {
                tree.remove(k).map_err(db_err)?;
            }
        }
        self.paused.remove(dag_id.as_bytes()).map_err(db_err)?;
        Ok(runs)
    }

    fn delete_run(&self, dag_id: &str, run_id: &str) -> Result<bool, SchedulerError> {
        let id_key = join(&[dag_id.as_bytes(), run_id.as_bytes()]);
        let Some(run_key) = self.run_ids.get(&id_key).map_err(db_err)? else {
            return Ok(false);
        };
        let prefix = run_prefix(dag_id, run_id);
        for tree in [&self.tis, &self.logs, &self.sla] {
            let keys: Vec<sled::IVec> = tree
                .scan_prefix(&prefix)
                .keys()
                .collect::<Result<_, _>>()
                .map_err(db_err)?;
            for k in keys {
                tree.remove(k).map_err(db_err)?;
            }
        }
        // an SLA miss is keyed `dag \0 run \0 task`, which the run prefix covers
        self.runs.remove(run_key).map_err(db_err)?;
        self.run_events.remove(&id_key).map_err(db_err)?;
        self.run_ids.remove(id_key).map_err(db_err)?;
        Ok(true)
    }

    fn dag_paused(&self, dag_id: &str) -> Result<Option<bool>, SchedulerError> {
        Ok(self
            .paused
            .get(dag_id.as_bytes())
            .map_err(db_err)?
            .map(|v| v.as_ref() == b"1"))
    }

    fn set_dag_paused(&self, dag_id: &str, paused: bool) -> Result<(), SchedulerError> {
        let v: &[u8] = if paused { b"1" } else { b"0" };
        self.paused.insert(dag_id.as_bytes(), v).map_err(db_err)?;
        Ok(())
    }

    /// Make every write so far durable.
    fn flush(&self) -> Result<(), SchedulerError> {
        self.db.flush().map_err(db_err)?;
        Ok(())
    }

    fn coordinate(
        &self,
        owner: &str,
    ) -> Result<crate::persistence::dag::Coordination, SchedulerError> {
        // one process: every DAG is this scheduler's
        Ok(crate::persistence::dag::Coordination {
            store: std::sync::Arc::new(self.clone()),
            leases: std::sync::Arc::new(crate::persistence::SoleLeases::new(owner)),
        })
    }

    fn committer(&self) -> Result<Option<Box<dyn Committer>>, SchedulerError> {
        let c = crate::durable::GroupCommit::start(self.db.clone())
            .map_err(|e| SchedulerError::Store(format!("cannot start the group committer: {e}")))?;
        Ok(Some(Box::new(c)))
    }

    /// Insert a new run; refuses a second run of the DAG at the same logical date or with the
    /// same run id (Airflow's unique constraints).
    fn insert_run(&self, rec: &DagRunRecord) -> Result<(), SchedulerError> {
        self.create_asset_run_in(rec, None)
    }

    /// Overwrite a run's record.
    fn put_run(&self, rec: &DagRunRecord) -> Result<(), SchedulerError> {
        let v = serde_json::to_vec(rec).map_err(|e| json_err("dag run", e))?;
        self.runs.insert(Self::run_key(rec), v).map_err(db_err)?;
        Ok(())
    }

    /// A run by id.
    fn get_run(&self, dag_id: &str, run_id: &str) -> Result<Option<DagRunRecord>, SchedulerError> {
        let Some(key) = self
            .run_ids
            .get(join(&[dag_id.as_bytes(), run_id.as_bytes()]))
            .map_err(db_err)?
        else {
            return Ok(None);
        };
        match self.runs.get(key).map_err(db_err)? {
            Some(v) => Ok(Some(
                serde_json::from_slice(&v).map_err(|e| json_err("dag run", e))?,
            )),
            None => Ok(None),
        }
    }

    /// A DAG's runs in logical-date order.
    fn runs_of(&self, dag_id: &str) -> Result<Vec<DagRunRecord>, SchedulerError> {
        let mut prefix = dag_id.as_bytes().to_vec();
        prefix.push(0);
        self.runs
            .scan_prefix(prefix)
            .map(|kv| {
                let (_, v) = kv.map_err(db_err)?;
                serde_json::from_slice(&v).map_err(|e| json_err("dag run", e))
            })
            .collect()
    }

    /// The newest `n` runs of a DAG, in logical-date order.
    fn recent_runs(&self, dag_id: &str, n: usize) -> Result<Vec<DagRunRecord>, SchedulerError> {
        let mut prefix = dag_id.as_bytes().to_vec();
        prefix.push(0);
        let mut out = self
            .runs
            .scan_prefix(prefix)
            .rev()
            .take(n)
            .map(|kv| {
                let (_, v) = kv.map_err(db_err)?;
                serde_json::from_slice(&v).map_err(|e| json_err("dag run", e))
            })
            .collect::<Result<Vec<DagRunRecord>, _>>()?;
        out.reverse();
        Ok(out)
    }

    /// Every run not yet finished (queued or running), any DAG.
    fn unfinished_runs(&self) -> Result<Vec<DagRunRecord>, SchedulerError> {
        let mut out = Vec::new();
        for kv in self.runs.iter() {
            let (_, v) = kv.map_err(db_err)?;
            let r: DagRunRecord = serde_json::from_slice(&v).map_err(|e| json_err("dag run", e))?;
            if !r.is_finished() {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// The latest run of a DAG of one of `types` (for the timetable's "last automated run").
    fn last_run(
        &self,
        dag_id: &str,
        types: &[&str],
    ) -> Result<Option<DagRunRecord>, SchedulerError> {
        let mut prefix = dag_id.as_bytes().to_vec();
        prefix.push(0);
        for kv in self.runs.scan_prefix(prefix).rev() {
            let (_, v) = kv.map_err(db_err)?;
            let r: DagRunRecord = serde_json::from_slice(&v).map_err(|e| json_err("dag run", e))?;
            if types.contains(&r.run_type.as_str()) {
                return Ok(Some(r));
            }
        }
        Ok(None)
    }

    /// Every task instance of a run.
    fn tis_of(&self, dag_id: &str, run_id: &str) -> Result<Vec<StoredTi>, SchedulerError> {
        self.tis
            .scan_prefix(run_prefix(dag_id, run_id))
            .map(|kv| {
                let (_, v) = kv.map_err(db_err)?;
                serde_json::from_slice(&v).map_err(|e| json_err("task instance", e))
            })
            .collect()
    }

    /// Apply a batch of task-instance writes: `replace` lists tasks whose instances are all
    /// rewritten (expansion), `put` the instances to write.
    fn write_tis(
        &self,
        dag_id: &str,
        run_id: &str,
        replace: &[String],
        put: &[StoredTi],
    ) -> Result<(), SchedulerError> {
        let mut batch = sled::Batch::default();
        for task_id in replace {
            for kv in self.tis.scan_prefix(task_prefix(dag_id, run_id, task_id)) {
                let (k, _) = kv.map_err(db_err)?;
                batch.remove(k);
            }
        }
        for ti in put {
            let v = serde_json::to_vec(ti).map_err(|e| json_err("task instance", e))?;
            batch.insert(ti_key(dag_id, run_id, &ti.ti.task_id, ti.ti.map_index), v);
        }
        self.tis.apply_batch(batch).map_err(db_err)?;
        Ok(())
    }

    /// Append entries to a try's log.
    fn append_log(
        &self,
        dag_id: &str,
        run_id: &str,
        task_id: &str,
        map_index: i64,
        try_number: u32,
        entry: Value,
    ) -> Result<(), SchedulerError> {
        let mut key = ti_key(dag_id, run_id, task_id, map_index);
        key.push(0);
        key.extend_from_slice(&try_number.to_be_bytes());
        let mut list: Vec<Value> = match self.logs.get(&key).map_err(db_err)? {
            Some(v) => serde_json::from_slice(&v).map_err(|e| json_err("task log", e))?,
            None => Vec::new(),
        };
        list.push(entry);
        let v = serde_json::to_vec(&list).map_err(|e| json_err("task log", e))?;
        self.logs.insert(key, v).map_err(db_err)?;
        Ok(())
    }

    /// A task instance's logs: `(map_index, try_number, entries)` in order.
    fn logs_of(
        &self,
        dag_id: &str,
        run_id: &str,
        task_id: &str,
    ) -> Result<Vec<(i64, u32, Vec<Value>)>, SchedulerError> {
        let prefix = task_prefix(dag_id, run_id, task_id);
        let mut out = Vec::new();
        for kv in self.logs.scan_prefix(&prefix) {
            let (k, v) = kv.map_err(db_err)?;
            let rest = &k[prefix.len()..];
            if rest.len() != 8 + 1 + 4 {
                continue;
            }
            let mi = u64::from_be_bytes(rest[..8].try_into().unwrap_or([0; 8])) ^ (1 << 63);
            let tn = u32::from_be_bytes(rest[9..].try_into().unwrap_or([0; 4]));
            let entries: Vec<Value> =
                serde_json::from_slice(&v).map_err(|e| json_err("task log", e))?;
            out.push((mi as i64, tn, entries));
        }
        Ok(out)
    }

    /// Record an SLA miss once; returns false when it was already recorded.
    fn record_sla_miss(
        &self,
        dag_id: &str,
        run_id: &str,
        task_id: &str,
        rec: &Value,
    ) -> Result<bool, SchedulerError> {
        let key = join(&[dag_id.as_bytes(), run_id.as_bytes(), task_id.as_bytes()]);
        let v = serde_json::to_vec(rec).map_err(|e| json_err("sla miss", e))?;
        let prev = self
            .sla
            .compare_and_swap(key, None as Option<&[u8]>, Some(v))
            .map_err(db_err)?;
        Ok(prev.is_ok())
    }

    /// Recorded SLA misses of a DAG.
    fn sla_misses(&self, dag_id: &str) -> Result<Vec<Value>, SchedulerError> {
        let mut prefix = dag_id.as_bytes().to_vec();
        prefix.push(0);
        self.sla
            .scan_prefix(prefix)
            .map(|kv| {
                let (_, v) = kv.map_err(db_err)?;
                serde_json::from_slice(&v).map_err(|e| json_err("sla miss", e))
            })
            .collect()
    }

    /// Whether a file-arrival trigger has seen `path` at `mtime`; records it when not.
    fn see_file(&self, dag_id: &str, path: &str, mtime: f64) -> Result<bool, SchedulerError> {
        let key = join(&[dag_id.as_bytes(), path.as_bytes()]);
        let new = mtime.to_be_bytes();
        let old = self.seen.insert(key, &new).map_err(db_err)?;
        Ok(old.is_some_and(|o| o.as_ref() == new))
    }
}
