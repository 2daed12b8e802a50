//! Writes that need only be durable by the next group commit: history events, task logs and
//! the journal entries only a run writes.
//!
//! Execution threads queue them here instead of writing the store themselves; the group
//! committer applies the queue, single-threaded, right before each flush (a
//! [`weft_engine::durable::FlushHook`]), as one [`HistoryBatch`] handed to the
//! [`HistoryStore`], and every reader calls [`Pending::apply`] first, so a read always sees
//! what was queued before it. How a batch is stored (sled coalesces an execution's consecutive
//! events into one value and lets task logs and journal entries ride in it) is the store's
//! business.
//!
//! On PostgreSQL the batch rides in the same transaction as the journal's writes of the same
//! flush ([`Pending::apply_with`], see [`super::sfn::SfnStores::open_pg`]), so the history and
//! journal of a step land together. This module owns only the queue; what an event says is the
//! runtime's business, and who may read it the API's.

use super::history::{EventWrite, HistoryBatch, HistoryStore, JournalLine, TaskLogWrite};
use super::PersistenceError;
use std::sync::{Arc, Mutex};

/// The queue of deferred writes.
pub struct Pending {
    store: Arc<dyn HistoryStore>,
    queue: Mutex<HistoryBatch>,
    /// Held while a batch is applied, so readers never see half of one.
    applying: Mutex<()>,
}

impl Pending {
    pub fn new(store: Arc<dyn HistoryStore>) -> Self {
        Pending {
            store,
            queue: Mutex::new(HistoryBatch::default()),
            applying: Mutex::new(()),
        }
    }

    /// Queues a history event; returns true when the queue was empty before (the caller may
    /// want a flush to happen soon).
    pub fn push_event(&self, arn: &str, id: u64, json: String) -> bool {
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        let was_empty = q.is_empty();
        q.events.push(EventWrite {
            execution: arn.to_string(),
            id,
            json,
        });
        was_empty
    }

    /// Queues the log entry of attempt `attempt` of state `state` of `execution` (`seq`: its
    /// sequence number, which orders entries); returns true when the queue was empty before.
    pub fn push_task_log(
        &self,
        execution: &str,
        seq: u64,
        state: &str,
        attempt: u32,
        json: String,
    ) -> bool {
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        let was_empty = q.is_empty();
        q.task_logs.push(TaskLogWrite {
            execution: execution.to_string(),
            seq,
            state: state.to_string(),
            attempt,
            json,
        });
        was_empty
    }

    /// Queues a journal entry of `execution` (entry key `key`, JSON `json`); it is durable by
    /// the next flush.
    pub fn push_journal(&self, execution: &str, key: &str, json: Vec<u8>) {
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        q.journal.push(JournalLine {
            execution: execution.to_string(),
            key: key.to_string(),
            json,
        });
    }

    /// Applies everything queued so far if any of it is an event of `arn` (a new execution's
    /// first run then costs no write on its own thread).
    pub fn apply_if_queued(&self, arn: &str) -> Result<(), PersistenceError> {
        // (an apply in progress finishes first: what it took from the queue is not there)
        let _g = self.applying.lock().unwrap_or_else(|e| e.into_inner());
        let queued = {
            let q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            q.events.iter().any(|e| e.execution == arn)
                || q.journal.iter().any(|j| j.execution == arn)
        };
        if queued {
            self.apply_locked()?;
        }
        Ok(())
    }

    /// Applies everything queued so far.
    pub fn apply(&self) -> Result<(), PersistenceError> {
        let _g = self.applying.lock().unwrap_or_else(|e| e.into_inner());
        self.apply_locked()
    }

    /// Applies everything queued so far through `write` (which must make the batch durable)
    /// instead of the store's own [`HistoryStore::write_batch`]; on its failure the batch stays
    /// queued for the next apply.
    pub fn apply_with(
        &self,
        write: impl FnOnce(&HistoryBatch) -> Result<(), PersistenceError>,
    ) -> Result<(), PersistenceError> {
        let _g = self.applying.lock().unwrap_or_else(|e| e.into_inner());
        self.apply_locked_with(write)
    }

    /// [`Pending::apply`], with `applying` held by the caller.
    fn apply_locked(&self) -> Result<(), PersistenceError> {
        let store = self.store.clone();
        self.apply_locked_with(|b| store.write_batch(b))
    }

    fn apply_locked_with(
        &self,
        write: impl FnOnce(&HistoryBatch) -> Result<(), PersistenceError>,
    ) -> Result<(), PersistenceError> {
        let q = std::mem::take(&mut *self.queue.lock().unwrap_or_else(|e| e.into_inner()));
        let r = write(&q);
        if r.is_err() {
            // keep it for the next apply, before what was queued meanwhile
            let mut cur = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            let newer = std::mem::replace(&mut *cur, q);
            cur.events.extend(newer.events);
            cur.task_logs.extend(newer.task_logs);
            cur.journal.extend(newer.journal);
        }
        r
    }
}

/// The stored events of an execution, oldest first, as raw JSON, one `Vec` per stored run.
pub fn history_events(
    store: &dyn HistoryStore,
    arn: &str,
) -> Result<Vec<Vec<Vec<u8>>>, PersistenceError> {
    let mut out = Vec::new();
    store.each_run(arn, false, &mut |_, evs| {
        out.push(evs);
        true
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Nothing queued is in the store before an apply; everything is after it.
    #[test]
    fn queued_writes_reach_the_store_at_apply() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let store: Arc<dyn HistoryStore> =
            Arc::new(crate::persistence::sled_history::SledHistory::open(&db).unwrap());
        let p = Pending::new(store.clone());
        assert!(p.push_event("a", 1, "{\"id\":1}".into()));
        assert!(!p.push_task_log("a", 7, "X", 1, "{\"state\":\"X\"}".into()));
        p.push_journal("a", "/0.1@1", b"{}".to_vec());
        p.apply_if_queued("b").unwrap();
        assert_eq!(
            store.last_event_id("a").unwrap(),
            0,
            "nothing of b was queued"
        );
        p.apply_if_queued("a").unwrap();
        assert_eq!(store.last_event_id("a").unwrap(), 1);
        assert_eq!(history_events(store.as_ref(), "a").unwrap().len(), 1);
        assert_eq!(store.task_logs("a").unwrap().len(), 1);
        assert_eq!(store.journal_lines("a").unwrap().len(), 1);
        assert!(
            p.push_event("a", 2, "{\"id\":2}".into()),
            "the queue was emptied"
        );
        p.apply().unwrap();
        assert_eq!(store.last_event_id("a").unwrap(), 2);
    }
}
