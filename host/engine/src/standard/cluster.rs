//! This node's part in a cluster of runtimes (`weft server` nodes) on one PostgreSQL database
//! (see [`crate::persistence::pg::cluster`] for the protocol): it joins, keeps its lease with
//! heartbeats, adopts the running executions of nodes that are gone, runs what other nodes
//! woke, and stops the runs of executions it lost. On the embedded store there is nothing to do.
//!
//! One thread ticks every half second, or at once when a wake-up notification arrives. The
//! node's id is kept in `$WEFT_HOME/node-id`, so that a node restarted on the same home finds
//! its predecessor's executions at once instead of waiting for its lease to end.

use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::persistence::pg::cluster::Cluster;
use crate::persistence::Database;

use super::{Runtime, RuntimeError};

/// How long a node counts as alive after a heartbeat, unless `WEFT_NODE_LEASE_MS` says.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(10);
/// Executions adopted per statement.
const ADOPT_BATCH: i64 = 256;
/// The longest pause between two ticks.
const TICK: Duration = Duration::from_millis(500);

/// The lease of this node's process.
fn lease() -> Duration {
    lease_from(std::env::var("WEFT_NODE_LEASE_MS").ok().as_deref())
}

/// The lease `WEFT_NODE_LEASE_MS` = `value` asks for; a value that is not a number of
/// milliseconds from 500 to 600,000 is reported and the default used.
fn lease_from(value: Option<&str>) -> Duration {
    let Some(v) = value else {
        return DEFAULT_LEASE;
    };
    match v.trim().parse::<u64>() {
        Ok(ms) if (500..=600_000).contains(&ms) => Duration::from_millis(ms),
        _ => {
            tracing::warn!(
                value = %v,
                "WEFT_NODE_LEASE_MS must be a number of milliseconds from 500 to 600000; using {} ms",
                DEFAULT_LEASE.as_millis()
            );
            DEFAULT_LEASE
        }
    }
}

/// A kick that ends the current pause of the tick loop.
#[derive(Default)]
struct Kick {
    set: Mutex<bool>,
    cv: Condvar,
}

impl Kick {
    fn kick(&self) {
        *self.set.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.cv.notify_one();
    }

    fn wait(&self, d: Duration) {
        let g = self.set.lock().unwrap_or_else(|e| e.into_inner());
        let (mut g, _) = self
            .cv
            .wait_timeout_while(g, d, |set| !*set)
            .unwrap_or_else(|e| e.into_inner());
        *g = false;
    }
}

/// Joins the cluster of the node's database (PostgreSQL only) and starts the tick thread.
pub fn start(rt: &Arc<Runtime>) -> Result<(), RuntimeError> {
    let Database::Postgres(pg) = &rt.database else {
        return Ok(());
    };
    let id_file = rt.store.home().join("node-id");
    let previous = std::fs::read_to_string(&id_file)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| s.starts_with("node-") && s.len() < 64);
    let lease = lease();
    let cluster = Cluster::join(pg, lease, previous.as_deref())?;
    remember(&id_file, &cluster);
    let _ = rt.cluster.set(cluster.clone());
    let kick = Arc::new(Kick::default());
    let k = kick.clone();
    cluster.listen(Arc::new(move || k.kick()))?;
    let weak = Arc::downgrade(rt);
    let c = cluster.clone();
    std::thread::Builder::new()
        .name("weft-heartbeat".into())
        .spawn(move || heartbeat_loop(&weak, &c, lease, &id_file))?;
    let weak = Arc::downgrade(rt);
    std::thread::Builder::new()
        .name("weft-cluster".into())
        .spawn(move || tick_loop(&weak, &cluster, &kick))?;
    Ok(())
}

/// Keeps the node's lease: a heartbeat every quarter lease, on a thread of its own so that
/// adoption or a busy pool never delays it.
fn heartbeat_loop(
    rt: &Weak<Runtime>,
    cluster: &Cluster,
    lease: Duration,
    id_file: &std::path::Path,
) {
    let every = lease / 4;
    loop {
        let started = Instant::now();
        {
            let Some(rt) = rt.upgrade() else {
                return;
            };
            if rt.shutdown.load(std::sync::atomic::Ordering::SeqCst) {
                return;
            }
            match cluster.heartbeat() {
                Ok(true) => {}
                Ok(false) => match cluster.rejoin() {
                    Ok(dropped) => {
                        for a in &dropped {
                            rt.abandon(a);
                        }
                        remember(id_file, cluster);
                    }
                    Err(e) => tracing::error!("cannot join the cluster again: {e}"),
                },
                Err(e) => tracing::warn!("heartbeat: {e}"),
            }
        }
        std::thread::sleep(every.saturating_sub(started.elapsed()));
    }
}

fn remember(id_file: &std::path::Path, cluster: &Cluster) {
    if let Err(e) = std::fs::write(id_file, cluster.node_id()) {
        tracing::warn!("{}: cannot keep the node id: {e}", id_file.display());
    }
}

fn tick_loop(rt: &Weak<Runtime>, cluster: &Cluster, kick: &Kick) {
    loop {
        let Some(rt) = rt.upgrade() else {
            return;
        };
        if rt.shutdown.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let fence = cluster.fence();
        for a in fence.take_lost() {
            rt.abandon(&a);
        }
        loop {
            match cluster.adopt(ADOPT_BATCH) {
                Ok(got) if got.is_empty() => break,
                Ok(got) => {
                    rt.adopted(&got);
                    if (got.len() as i64) < ADOPT_BATCH {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!("cannot adopt executions: {e}");
                    break;
                }
            }
        }
        match cluster.take_woken() {
            Ok(woken) => {
                for a in woken {
                    rt.woken(&a);
                }
            }
            Err(e) => tracing::warn!("cannot read wake-ups: {e}"),
        }
        drop(rt);
        kick.wait(TICK);
    }
}

/// Leaves the cluster after a clean shutdown (the runs unwound): the other nodes adopt this
/// node's executions at once.
pub fn leave(rt: &Runtime) {
    if let Some(c) = rt.cluster.get() {
        if let Err(e) = c.leave() {
            tracing::warn!("cannot leave the cluster: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_outside_its_bounds_falls_back_to_the_default() {
        assert_eq!(lease_from(None), DEFAULT_LEASE);
        assert_eq!(lease_from(Some("4000")), Duration::from_millis(4000));
        for bad in [
            "0",
            "499",
            "600001",
            "-5",
            "10s",
            "",
            "99999999999999999999999",
        ] {
            assert_eq!(lease_from(Some(bad)), DEFAULT_LEASE, "{bad}");
        }
    }
}
