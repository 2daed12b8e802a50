//! Which DAGs one scheduler loop schedules when several share a database (Airflow 2's HA
//! scheduler): [`Ownership`] renews the loop's DAG leases once a tick and says what changed —
//! DAGs gained (the loop rebuilds their runs from the store, as a restarted scheduler does, so
//! tries that were running under a dead owner are zombies and follow `retries`), DAGs lost
//! (their runs are dropped from memory without another write), and DAGs beyond the loop's
//! fair share, which it drains (no new try starts) and hands over once their tries are back.
//! On sled every DAG is always held and nothing ever changes hands.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::persistence::DagLeases;

use super::SchedulerError;

/// What one renewal changed.
#[derive(Debug, Default)]
pub(super) struct Turn {
    /// DAGs taken (or taken back under a new epoch): rebuild their runs from the store.
    pub gained: Vec<String>,
    /// DAGs no longer held: forget their runs.
    pub lost: Vec<String>,
}

/// The DAG leases of one scheduler loop.
pub(super) struct Ownership {
    leases: Arc<dyn DagLeases>,
    /// The DAGs the loop schedules.
    wanted: Vec<String>,
    /// Held DAGs and their epochs.
    held: HashMap<String, i64>,
    /// Held DAGs being handed over: they start nothing new.
    draining: HashSet<String>,
    ttl: Duration,
    every: Duration,
    next: Instant,
    register: bool,
}

impl Ownership {
    /// The ownership of a loop that schedules `wanted`, with leases of `ttl` renewed every
    /// `every`; with `register` the loop counts among the schedulers that share DAGs fairly
    /// (a scheduler, not a command running one run).
    pub fn new(
        leases: Arc<dyn DagLeases>,
        wanted: Vec<String>,
        ttl: Duration,
        every: Duration,
        register: bool,
    ) -> Self {
        Ownership {
            leases,
            wanted,
            held: HashMap::new(),
            draining: HashSet::new(),
            ttl,
            every: every.min(ttl / 3),
            next: Instant::now(),
            register,
        }
    }

    /// Whether a renewal is due.
    pub fn due(&self) -> bool {
        Instant::now() >= self.next
    }

    /// Renews the leases and takes free ones; says what changed. DAGs held beyond the fair
    /// share start draining.
    pub fn renew(&mut self) -> Result<Turn, SchedulerError> {
        self.next = Instant::now() + self.every;
        let h = self.leases.tick(&self.wanted, self.ttl, self.register)?;
        let now: HashMap<String, i64> = h.held.into_iter().collect();
        let mut turn = Turn::default();
        for (d, e) in &self.held {
            if now.get(d) != Some(e) {
                turn.lost.push(d.clone());
            }
        }
        for (d, e) in &now {
            if self.held.get(d) != Some(e) {
                turn.gained.push(d.clone());
            }
        }
        turn.lost.sort();
        turn.gained.sort();
        for d in &turn.lost {
            self.draining.remove(d);
        }
        self.held = now;
        let surplus = self.held.len().saturating_sub(h.share.max(1));
        if surplus > self.draining.len() {
            let mut ids: Vec<&String> = self
                .held
                .keys()
                .filter(|d| !self.draining.contains(*d))
                .collect();
            ids.sort();
            let n = surplus - self.draining.len();
            let pick: Vec<String> = ids.into_iter().rev().take(n).cloned().collect();
            for d in pick {
                tracing::info!(dag_id = %d, "handing the DAG over to another scheduler (fair share)");
                self.draining.insert(d);
            }
        }
        Ok(turn)
    }

    /// Whether the loop holds `dag_id` and may start work on it.
    pub fn schedules(&self, dag_id: &str) -> bool {
        self.held.contains_key(dag_id) && !self.draining.contains(dag_id)
    }

    /// Whether the loop holds `dag_id` (draining or not).
    pub fn holds(&self, dag_id: &str) -> bool {
        self.held.contains_key(dag_id)
    }

    /// DAGs being handed over.
    pub fn draining(&self) -> impl Iterator<Item = &String> {
        self.draining.iter()
    }

    /// Hands a drained DAG over: its lease is released.
    pub fn hand_over(&mut self, dag_id: &str) -> Result<(), SchedulerError> {
        self.draining.remove(dag_id);
        self.held.remove(dag_id);
        self.leases.release(&[dag_id.to_string()])
    }

    /// Gives every lease up (a clean stop).
    pub fn retire(&mut self) -> Result<(), SchedulerError> {
        self.held.clear();
        self.draining.clear();
        self.leases.retire()
    }
}
