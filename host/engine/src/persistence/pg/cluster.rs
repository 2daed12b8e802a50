//! Several `weft server` nodes on one PostgreSQL database: membership, who owns each running
//! Standard execution, and the fence that keeps a node that lost an execution from writing it.
//!
//! **Membership.** A node joins with a fresh id: a row of `weft_nodes` whose `lease_until` it
//! pushes forward with every [`Cluster::heartbeat`] (database time, so clocks of the nodes do
//! not matter). A node that misses its heartbeats past its lease is dead to the others; when it
//! notices (a heartbeat finds its lease over) it drops every run it had and joins again under a
//! new id ([`Cluster::rejoin`]). Each node also holds a session advisory lock keyed by its id
//! for its whole life, so that a node restarted on the same home finds its predecessor's
//! session gone ([`Cluster::join`]) and takes its executions at once instead of waiting out
//! the lease.
//!
//! **Ownership.** Each row of `sfn_executions` names its `owner` node and a fencing `epoch`. A
//! node owns what it starts (the insert names it, epoch 1) and what it redrives; executions whose
//! owner's lease is in the past (or that have no owner) are orphans, adopted in batches with
//! `FOR UPDATE SKIP LOCKED` ([`Cluster::adopt`]): the epoch grows by one, so several nodes
//! adopting at once never take the same execution.
//!
//! **Fencing.** The [`Fence`] is this node's book of the executions it owns and their epochs.
//! Every journal, history and execution-record write of an owned execution checks, in its own
//! transaction, that the row still names this node at that epoch and that this node's lease
//! has not ended ([`check`]); the writes of any other execution are dropped and the execution
//! is reported lost ([`Fence::take_lost`]), so a node paused past its lease writes nothing once
//! another node adopted its work.
//!
//! **Wake-ups.** An answer recorded on any node (SendTaskSuccess, an activity result, a
//! child's end, StopExecution) marks the execution `woken` and notifies channel `weft_wake`;
//! the owner listens ([`Cluster::listen`]) and takes its woken executions
//! ([`Cluster::take_woken`]) — also at every tick, the fallback when a notification is lost.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio_postgres::{AsyncMessage, NoTls};

use super::call::{conn, params, pg};
use super::PgDatabase;
use crate::persistence::PersistenceError;

/// The notification channel of wake-ups.
pub const WAKE_CHANNEL: &str = "weft_wake";

/// The executions this node owns, by ARN, with their fencing epochs.
#[derive(Default)]
pub struct Fence {
    node: RwLock<String>,
    book: Mutex<HashMap<String, i64>>,
    lost: Mutex<Vec<String>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Fence {
    /// This node's id.
    pub fn node(&self) -> String {
        self.node.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The epoch this node holds `arn` at, when it owns it.
    pub fn epoch_of(&self, arn: &str) -> Option<i64> {
        lock(&self.book).get(arn).copied()
    }

    /// Whether this node owns `arn`.
    pub fn holds(&self, arn: &str) -> bool {
        lock(&self.book).contains_key(arn)
    }

    /// Records that this node owns `arn` at `epoch`.
    pub(crate) fn hold(&self, arn: &str, epoch: i64) {
        lock(&self.book).insert(arn.to_string(), epoch);
    }

    /// Forgets `arn` (its run ended: nothing more to write).
    pub fn release(&self, arn: &str) {
        lock(&self.book).remove(arn);
    }

    /// How many executions this node owns.
    pub fn owned(&self) -> usize {
        lock(&self.book).len()
    }

    /// `arns` were taken by another node: forgotten, and reported by [`Fence::take_lost`].
    pub(crate) fn lose(&self, arns: impl IntoIterator<Item = String>) {
        let mut book = lock(&self.book);
        let mut lost = lock(&self.lost);
        for a in arns {
            if book.remove(&a).is_some() {
                tracing::warn!(execution = %a, "another node owns this execution now; its run here is dropped");
                lost.push(a);
            }
        }
    }

    /// The executions lost since the last call (their runs must stop).
    pub fn take_lost(&self) -> Vec<String> {
        std::mem::take(&mut *lock(&self.lost))
    }

    /// Everything owned, forgotten at once (this node's lease ended); returns what it held.
    fn forget_all(&self) -> Vec<String> {
        lock(&self.book).drain().map(|(a, _)| a).collect()
    }
}

/// The part of `arns` this node may still write, checked inside the caller's transaction
/// (the rows stay share-locked until it commits, so no adoption slips in between); the others
/// are reported lost.
pub(crate) async fn check(
    tx: &tokio_postgres::Transaction<'_>,
    fence: &Fence,
    arns: HashSet<String>,
) -> Result<HashSet<String>, PersistenceError> {
    if arns.is_empty() {
        return Ok(arns);
    }
    let node = fence.node();
    let list: Vec<String> = arns.iter().cloned().collect();
    let rows = tx
        .query(
            "SELECT e.arn, e.epoch FROM sfn_executions e \
             JOIN weft_nodes n ON n.id = e.owner AND n.lease_until > now() \
             WHERE e.arn = ANY($1) AND e.owner = $2 FOR SHARE OF e",
            &[&list, &node],
        )
        .await
        .map_err(pg)?;
    let current: HashMap<String, i64> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    let mut ok = HashSet::new();
    let mut refused = Vec::new();
    for a in arns {
        match (current.get(&a), fence.epoch_of(&a)) {
            (Some(db), Some(mine)) if *db == mine => {
                ok.insert(a);
            }
            _ => refused.push(a),
        }
    }
    if !refused.is_empty() {
        tracing::warn!(
            count = refused.len(),
            "writes of executions this node no longer owns were refused"
        );
        fence.lose(refused);
    }
    Ok(ok)
}

/// This node's membership of the database's cluster.
pub struct Cluster {
    db: PgDatabase,
    fence: Arc<Fence>,
    lease: Duration,
    /// Holds this node's advisory lock (see the module docs); replaced at a rejoin.
    session: Mutex<Option<deadpool_postgres::ClientWrapper>>,
}

/// The advisory lock key of node `id`.
fn node_lock_key(id: &str) -> i64 {
    let h = blake3::hash(id.as_bytes());
    i64::from_le_bytes(h.as_bytes()[..8].try_into().unwrap_or([0; 8]))
}

fn lease_ms(lease: Duration) -> i64 {
    lease.as_millis().min(i64::MAX as u128) as i64
}

impl Cluster {
    /// Joins the cluster of `db` with a new node id (`lease`: how long the node counts as alive
    /// after a heartbeat). `previous`: the id this node's home had before a restart; when that
    /// node's session is gone, its lease is ended now so its executions are adopted at once.
    /// From now on every write of `db`'s stores is fenced.
    pub fn join(
        db: &PgDatabase,
        lease: Duration,
        previous: Option<&str>,
    ) -> Result<Arc<Cluster>, PersistenceError> {
        let fence = db.enable_fencing();
        let c = Arc::new(Cluster {
            db: db.clone(),
            fence,
            lease,
            session: Mutex::new(None),
        });
        if let Some(prev) = previous {
            c.end_if_gone(prev)?;
        }
        c.register()?;
        Ok(c)
    }

    /// The fence of this node's writes.
    pub fn fence(&self) -> &Arc<Fence> {
        &self.fence
    }

    /// This node's id.
    pub fn node_id(&self) -> String {
        self.fence.node()
    }

    /// A new id, its row and its advisory lock.
    fn register(&self) -> Result<(), PersistenceError> {
        let id = format!("node-{}", uuid::Uuid::new_v4().simple());
        let host = hostname();
        let ms = lease_ms(self.lease);
        let key = node_lock_key(&id);
        let pool = self.db.pool().clone();
        let id2 = id.clone();
        let session = self.db.run(async move {
            let client = deadpool_postgres::Object::take(conn(&pool).await?);
            client
                .execute("SELECT pg_advisory_lock($1)", &[&key])
                .await
                .map_err(pg)?;
            client
                .execute(
                    "INSERT INTO weft_nodes (id, host, lease_until) \
                     VALUES ($1, $2, now() + $3 * interval '1 millisecond')",
                    &[&id2, &host, &(ms as f64)],
                )
                .await
                .map_err(pg)?;
            // rows of nodes long dead are of no use once nothing running names them (adoption
            // looks executions up by their owner's row)
            client
                .execute(
                    "DELETE FROM weft_nodes n WHERE lease_until < now() - interval '1 day' \
                     AND NOT EXISTS (SELECT 1 FROM sfn_executions e WHERE e.owner = n.id \
                                     AND e.status IN ('RUNNING', 'PENDING_REDRIVE'))",
                    &[],
                )
                .await
                .map_err(pg)?;
            Ok::<_, PersistenceError>(client)
        })??;
        *self.fence.node.write().unwrap_or_else(|e| e.into_inner()) = id.clone();
        *lock(&self.session) = Some(session);
        tracing::info!(node = %id, "joined the cluster of {}", self.db.target());
        Ok(())
    }

    /// Ends the lease of node `prev` when its session is gone (its advisory lock is free).
    fn end_if_gone(&self, prev: &str) -> Result<(), PersistenceError> {
        let key = node_lock_key(prev);
        let prev = prev.to_string();
        self.db.call(|pool| async move {
            let c = conn(&pool).await?;
            let free: bool = c
                .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
                .await
                .map_err(pg)?
                .get(0);
            if free {
                c.execute("SELECT pg_advisory_unlock($1)", &[&key])
                    .await
                    .map_err(pg)?;
                let n = c
                    .execute(
                        "UPDATE weft_nodes SET lease_until = now() - interval '1 second' \
                         WHERE id = $1 AND lease_until > now()",
                        &[&prev],
                    )
                    .await
                    .map_err(pg)?;
                if n > 0 {
                    tracing::info!(node = %prev, "the previous process of this home is gone; its executions are adopted now");
                }
            }
            Ok(())
        })
    }

    /// Extends this node's lease; false when it had already ended (every run this node had
    /// must stop: call [`Cluster::rejoin`]). Sent on the node's own session, so that a pool
    /// busy with executions' writes never delays it.
    pub fn heartbeat(&self) -> Result<bool, PersistenceError> {
        let id = self.node_id();
        let ms = lease_ms(self.lease) as f64;
        let session = lock(&self.session).take().filter(|c| !c.is_closed());
        let pool = self.db.pool().clone();
        let (session, r) = self.db.run(async move {
            const SQL: &str =
                "UPDATE weft_nodes SET lease_until = now() + $2 * interval '1 millisecond' \
                 WHERE id = $1 AND lease_until > now()";
            let r = match &session {
                Some(c) => c.execute(SQL, &[&id, &ms]).await.map_err(pg),
                None => match conn(&pool).await {
                    Ok(c) => c.execute(SQL, &[&id, &ms]).await.map_err(pg),
                    Err(e) => Err(e),
                },
            };
            (session, r.map(|n| n == 1))
        })?;
        if let Some(s) = session {
            lock(&self.session).get_or_insert(s);
        }
        r
    }

    /// Leaves the cluster (a clean shutdown, after the runs unwound): the lease ends now, so
    /// the other nodes adopt this node's executions at their next tick instead of after the
    /// lease.
    pub fn leave(&self) -> Result<(), PersistenceError> {
        self.db.execute(
            "UPDATE weft_nodes SET lease_until = now() - interval '1 second' WHERE id = $1",
            params![self.node_id()],
        )?;
        lock(&self.session).take();
        tracing::info!(node = %self.node_id(), "left the cluster");
        Ok(())
    }

    /// After a lapsed lease: forgets everything owned (returned: their runs must stop) and
    /// joins again under a new id.
    pub fn rejoin(&self) -> Result<Vec<String>, PersistenceError> {
        let dropped = self.fence.forget_all();
        tracing::warn!(
            node = %self.node_id(),
            dropped = dropped.len(),
            "this node's lease ended (paused or cut off): its runs stop and it joins again"
        );
        lock(&self.session).take();
        self.register()?;
        Ok(dropped)
    }

    /// Takes up to `limit` orphaned running executions (owner dead or none) for this node.
    pub fn adopt(&self, limit: i64) -> Result<Vec<String>, PersistenceError> {
        let rows = self.db.query(
            "UPDATE sfn_executions e SET owner = $1, epoch = e.epoch + 1, woken = false \
             WHERE e.arn IN ( \
               SELECT x.arn FROM sfn_executions x \
               WHERE x.status IN ('RUNNING', 'PENDING_REDRIVE') \
                 AND (x.owner IS NULL OR x.owner IN \
                      (SELECT id FROM weft_nodes WHERE lease_until < now())) \
               ORDER BY x.start_ms LIMIT $2 \
               FOR UPDATE OF x SKIP LOCKED) \
             RETURNING e.arn, e.epoch",
            params![self.node_id(), limit],
        )?;
        let adopted: Vec<String> = rows
            .iter()
            .map(|r| {
                let arn: String = r.get(0);
                self.fence.hold(&arn, r.get(1));
                arn
            })
            .collect();
        if !adopted.is_empty() {
            tracing::info!(
                count = adopted.len(),
                "adopted executions of a node that is gone"
            );
        }
        Ok(adopted)
    }

    /// The executions of this node that were woken since the last call.
    pub fn take_woken(&self) -> Result<Vec<String>, PersistenceError> {
        let rows = self.db.query(
            "UPDATE sfn_executions SET woken = false WHERE owner = $1 AND woken RETURNING arn",
            params![self.node_id()],
        )?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Listens to wake-ups on a connection of its own (reconnecting after a failure) and calls
    /// `on_wake` for each, and once after every (re)connection.
    pub fn listen(&self, on_wake: Arc<dyn Fn() + Send + Sync>) -> Result<(), PersistenceError> {
        let cfg = self.db.config().clone();
        let rt = self.db.handle()?;
        rt.spawn(async move {
            loop {
                match cfg.connect(NoTls).await {
                    Ok((client, mut connection)) => {
                        let sql = format!("LISTEN {WAKE_CHANNEL}");
                        let listen = client.batch_execute(&sql);
                        tokio::pin!(listen);
                        let mut listening = false;
                        loop {
                            tokio::select! {
                                r = &mut listen, if !listening => {
                                    if let Err(e) = r {
                                        tracing::warn!("LISTEN {WAKE_CHANNEL}: {e}");
                                        break;
                                    }
                                    listening = true;
                                    on_wake();
                                }
                                m = futures::future::poll_fn(|cx| connection.poll_message(cx)) => match m {
                                    Some(Ok(AsyncMessage::Notification(_))) => on_wake(),
                                    Some(Ok(_)) => {}
                                    Some(Err(e)) => {
                                        tracing::warn!("the wake-up connection failed: {e}; reconnecting");
                                        break;
                                    }
                                    None => break,
                                }
                            }
                        }
                    }
                    Err(e) => tracing::warn!("cannot open the wake-up connection: {e}"),
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        Ok(())
    }
}

/// Marks `arn` woken and tells its owner (whichever node that is).
pub fn wake(db: &PgDatabase, arn: &str) -> Result<(), PersistenceError> {
    db.query(
        "WITH w AS (UPDATE sfn_executions SET woken = true WHERE arn = $1 RETURNING owner) \
         SELECT pg_notify($2, owner) FROM w WHERE owner IS NOT NULL",
        params![arn.to_string(), WAKE_CHANNEL],
    )?;
    Ok(())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}
