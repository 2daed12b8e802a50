//! [`DagLeases`]: how several DAG schedulers share one database, as Airflow 2's HA scheduler
//! does. Each DAG is scheduled by one scheduler at a time, through a lease (owner, expiry and a
//! fencing epoch that grows each time the DAG changes hands); a scheduler renews its leases on
//! every tick, and another takes a lease over once it has expired. Every run and task-instance
//! write a scheduler makes on a DAG it has held carries the epoch it held it under ([`Fence`])
//! and the database refuses it ([`SchedulerError::Fenced`]) once the DAG has changed hands, so a
//! scheduler that was paused past its lease writes nothing when it wakes up. Pool slots are
//! shared by every DAG, hence by every scheduler: they are taken and given back in the database
//! ([`DagLeases::take_slots`]), and a dead scheduler's slots are freed when its DAGs are
//! adopted.
//!
//! On sled (one process) [`SoleLeases`] grants every DAG to whoever asks and the scheduler's
//! own pool accounting is the whole truth: nothing changes for a single node.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::Duration;

use crate::scheduler::SchedulerError;

/// The epochs under which one scheduler has held DAGs: the writes its store makes on those DAGs
/// are checked against them, also after the DAG was taken over (a DAG it never held, or whose
/// lease it gave up itself, is written unchecked, as the API writes).
#[derive(Debug)]
pub struct Fence {
    owner: String,
    epochs: RwLock<HashMap<String, i64>>,
}

impl Fence {
    /// The fence of scheduler `owner`, holding nothing yet.
    pub fn new(owner: &str) -> Self {
        Fence {
            owner: owner.to_string(),
            epochs: RwLock::default(),
        }
    }

    /// The scheduler's id.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// The epoch under which the scheduler last held `dag_id` (`None`: never held).
    pub fn epoch(&self, dag_id: &str) -> Option<i64> {
        self.epochs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(dag_id)
            .copied()
    }

    /// Forgets `dag_id` (its lease was given up): the scheduler's later writes on it are
    /// unchecked again, as a client's are.
    pub fn forget(&self, dag_id: &str) {
        self.epochs
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(dag_id);
    }

    /// Records that the scheduler holds `dag_id` under `epoch`.
    pub fn hold(&self, dag_id: &str, epoch: i64) {
        self.epochs
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(dag_id.to_string(), epoch);
    }
}

/// What one [`DagLeases::tick`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Holding {
    /// The DAGs held after the tick, with their epochs, by DAG id.
    pub held: Vec<(String, i64)>,
    /// How many DAGs this scheduler should hold at most (its fair share among the live
    /// schedulers); it hands the surplus over once their tries have ended.
    pub share: usize,
}

/// The task instance a pool slot is taken for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SlotKey {
    /// DAG id.
    pub dag_id: String,
    /// Run id.
    pub run_id: String,
    /// Task id.
    pub task_id: String,
    /// Map index (-1: not mapped).
    pub map_index: i64,
}

/// A request for pool slots: `slots` of `pool` (which has `total`) for the instance `key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotAsk {
    /// The instance.
    pub key: SlotKey,
    /// Pool name.
    pub pool: String,
    /// The pool's size.
    pub total: u32,
    /// Slots asked for.
    pub slots: u32,
}

/// One scheduler's leases on DAGs and its share of the pools, in the database every scheduler
/// uses.
pub trait DagLeases: Send + Sync {
    /// The scheduler's id.
    fn owner(&self) -> &str;
    /// One tick: with `register`, records that this scheduler is alive until `ttl` from now
    /// (schedulers count each other for their fair shares); renews the leases it holds among
    /// `dags` and takes free or expired ones (up to its fair share with `register`, all
    /// otherwise) for `ttl`. A DAG taken over gets a new epoch and its previous owner's pool
    /// slots are freed.
    fn tick(
        &self,
        dags: &[String],
        ttl: Duration,
        register: bool,
    ) -> Result<Holding, SchedulerError>;
    /// Gives up the leases of `dag_ids` (another scheduler may take them at once).
    fn release(&self, dag_ids: &[String]) -> Result<(), SchedulerError>;
    /// Gives up every lease, the registration and the pool slots (a scheduler stopping
    /// cleanly, with no try in flight).
    fn retire(&self) -> Result<(), SchedulerError>;
    /// Gives back this scheduler's slots of `release`, then takes pool slots for `asks`, in
    /// their order, in one transaction (a scheduler pass makes one call): an ask is granted
    /// when its slots are free among every scheduler's (the instance's own earlier slots do
    /// not count against it); one answer per ask. Refused ([`SchedulerError::Fenced`]) when
    /// one of the asking DAGs changed hands.
    fn take_slots(
        &self,
        release: &[SlotKey],
        asks: &[SlotAsk],
    ) -> Result<Vec<bool>, SchedulerError>;
    /// Gives back the slots taken for `keys` (this scheduler's only).
    fn release_slots(&self, keys: &[SlotKey]) -> Result<(), SchedulerError>;
}

/// The leases of a database only one process uses (sled): every DAG is granted, epoch 0, and
/// pools are the scheduler's own accounting.
#[derive(Debug, Clone)]
pub struct SoleLeases {
    owner: String,
}

impl SoleLeases {
    /// The leases of scheduler `owner`.
    pub fn new(owner: &str) -> Self {
        SoleLeases {
            owner: owner.to_string(),
        }
    }
}

impl DagLeases for SoleLeases {
    fn owner(&self) -> &str {
        &self.owner
    }

    fn tick(
        &self,
        dags: &[String],
        _ttl: Duration,
        _register: bool,
    ) -> Result<Holding, SchedulerError> {
        Ok(Holding {
            held: dags.iter().map(|d| (d.clone(), 0)).collect(),
            share: dags.len(),
        })
    }

    fn release(&self, _dag_ids: &[String]) -> Result<(), SchedulerError> {
        Ok(())
    }

    fn retire(&self) -> Result<(), SchedulerError> {
        Ok(())
    }

    fn take_slots(
        &self,
        _release: &[SlotKey],
        asks: &[SlotAsk],
    ) -> Result<Vec<bool>, SchedulerError> {
        Ok(vec![true; asks.len()])
    }

    fn release_slots(&self, _keys: &[SlotKey]) -> Result<(), SchedulerError> {
        Ok(())
    }
}
