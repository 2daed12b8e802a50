//! Writes that need only be durable by the next group commit: history events and task logs.
//!
//! Execution threads queue them here instead of inserting into sled themselves; the group
//! committer applies the queue, single-threaded, right before each flush (a
//! [`weft_engine::durable::FlushHook`]), and every reader calls [`Pending::apply`] first, so a
//! read always sees what was queued before it. History events of one execution with consecutive
//! ids are stored as one sled value: the key is [`history_key`] of the *last* id of the run, the
//! value the events' JSON joined by `\n` (a value holding one event is just that event, which
//! is also how every older store kept them). [`history_events`] reads either form.
//!
//! This module owns only the queue and the stored shape of history runs; what an event says is
//! `runner`'s business, and who may read it the API's.

use crate::records::{history_key, history_prefix, id_of_history_key};
use std::collections::HashMap;
use std::sync::Mutex;

/// A run of coalesced events is closed at this many bytes (keeps sled values modest).
const MAX_RUN_BYTES: usize = 64 * 1024;

#[derive(Default)]
struct Queue {
    /// (execution ARN, event id, event JSON), in the order they were written.
    events: Vec<(String, u64, String)>,
    /// Plain writes: (tree, key, value).
    writes: Vec<(sled::Tree, Vec<u8>, Vec<u8>)>,
}

impl Queue {
    fn is_empty(&self) -> bool {
        self.events.is_empty() && self.writes.is_empty()
    }
}

/// The queue of deferred writes.
pub struct Pending {
    history: sled::Tree,
    queue: Mutex<Queue>,
    /// Held while a batch is applied, so readers never see half of one.
    applying: Mutex<()>,
}

impl Pending {
    pub fn new(history: sled::Tree) -> Self {
        Pending {
            history,
            queue: Mutex::new(Queue::default()),
            applying: Mutex::new(()),
        }
    }

    /// Queues a history event; returns true when the queue was empty before (the caller may
    /// want a flush to happen soon).
    pub fn push_event(&self, arn: &str, id: u64, json: String) -> bool {
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        let was_empty = q.is_empty();
        q.events.push((arn.to_string(), id, json));
        was_empty
    }

    /// Queues a plain insert into `tree`; returns true when the queue was empty before.
    pub fn push(&self, tree: &sled::Tree, key: Vec<u8>, value: Vec<u8>) -> bool {
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        let was_empty = q.is_empty();
        q.writes.push((tree.clone(), key, value));
        was_empty
    }

    /// Applies everything queued so far if any of it is an event of `arn` (a new execution's
    /// first run then costs no write on its own thread).
    pub fn apply_if_queued(&self, arn: &str) -> sled::Result<()> {
        // (an apply in progress finishes first: what it took from the queue is not there)
        let _g = self.applying.lock().unwrap_or_else(|e| e.into_inner());
        let queued = {
            let q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            q.events.iter().any(|(a, _, _)| a == arn)
        };
        if queued {
            self.apply_locked()?;
        }
        Ok(())
    }

    /// Applies everything queued so far.
    pub fn apply(&self) -> sled::Result<()> {
        let _g = self.applying.lock().unwrap_or_else(|e| e.into_inner());
        self.apply_locked()
    }

    /// [`Pending::apply`], with `applying` held by the caller.
    fn apply_locked(&self) -> sled::Result<()> {
        let q = std::mem::take(&mut *self.queue.lock().unwrap_or_else(|e| e.into_inner()));
        if q.is_empty() {
            return Ok(());
        }
        for (tree, k, v) in q.writes {
            tree.insert(k, v)?;
        }
        // group by execution (keeping each one's order), then coalesce consecutive ids
        let mut by_exec: HashMap<&str, Vec<(u64, &str)>> = HashMap::new();
        for (arn, id, json) in &q.events {
            by_exec
                .entry(arn.as_str())
                .or_default()
                .push((*id, json.as_str()));
        }
        let mut buf = String::new();
        for (arn, evs) in by_exec {
            let mut last: Option<u64> = None;
            for (id, json) in evs {
                let joins = last.is_some_and(|l| l + 1 == id) && buf.len() < MAX_RUN_BYTES;
                if !joins {
                    if let Some(l) = last {
                        self.history.insert(history_key(arn, l), buf.as_bytes())?;
                    }
                    buf.clear();
                } else {
                    buf.push('\n');
                }
                buf.push_str(json);
                last = Some(id);
            }
            if let Some(l) = last {
                self.history.insert(history_key(arn, l), buf.as_bytes())?;
            }
            buf.clear();
        }
        Ok(())
    }
}

/// The stored runs of an execution's events, oldest first: each is the id of its last event and
/// the events' raw JSON.
pub fn history_runs(
    tree: &sled::Tree,
    arn: &str,
) -> impl DoubleEndedIterator<Item = sled::Result<(u64, Vec<Vec<u8>>)>> {
    tree.scan_prefix(history_prefix(arn)).map(|item| {
        let (k, v) = item?;
        Ok((
            id_of_history_key(&k),
            v.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect(),
        ))
    })
}

/// The stored events of an execution, oldest first, as raw JSON, one `Vec` per stored run.
pub fn history_events(
    tree: &sled::Tree,
    arn: &str,
) -> impl DoubleEndedIterator<Item = sled::Result<Vec<Vec<u8>>>> {
    history_runs(tree, arn).map(|r| r.map(|(_, evs)| evs))
}

/// The id of the last stored event of an execution (0: none).
pub fn last_event_id(tree: &sled::Tree, arn: &str) -> sled::Result<u64> {
    Ok(match tree.scan_prefix(history_prefix(arn)).next_back() {
        Some(item) => id_of_history_key(&item?.0),
        None => 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(tree: &sled::Tree, arn: &str) -> Vec<u64> {
        history_events(tree, arn)
            .flat_map(|r| r.unwrap())
            .map(|v| {
                serde_json::from_slice::<serde_json::Value>(&v).unwrap()["id"]
                    .as_u64()
                    .unwrap()
            })
            .collect()
    }

    #[test]
    fn coalesces_runs_and_reads_them_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let t = db.open_tree("h").unwrap();
        let p = Pending::new(t.clone());
        for id in 1..=3 {
            p.push_event("a", id, format!("{{\"id\":{id}}}"));
            p.push_event("b", id, format!("{{\"id\":{id}}}"));
        }
        // an older store's single event, then a gap in the ids
        t.insert(history_key("c", 1), &b"{\"id\":1}"[..]).unwrap();
        p.push_event("c", 2, "{\"id\":2}".into());
        p.push_event("c", 5, "{\"id\":5}".into());
        assert!(ids(&t, "a").is_empty(), "nothing is written before apply");
        p.apply().unwrap();
        assert_eq!(ids(&t, "a"), vec![1, 2, 3]);
        assert_eq!(ids(&t, "b"), vec![1, 2, 3]);
        assert_eq!(ids(&t, "c"), vec![1, 2, 5]);
        assert_eq!(
            t.scan_prefix(history_prefix("a")).count(),
            1,
            "one value per run"
        );
        assert_eq!(last_event_id(&t, "a").unwrap(), 3);
        assert_eq!(last_event_id(&t, "c").unwrap(), 5);
        assert_eq!(last_event_id(&t, "zz").unwrap(), 0);
        p.push_event("a", 4, "{\"id\":4}".into());
        p.apply().unwrap();
        assert_eq!(ids(&t, "a"), vec![1, 2, 3, 4]);
        let rev: Vec<u64> = history_events(&t, "a")
            .rev()
            .flat_map(|r| r.unwrap().into_iter().rev())
            .map(|v| {
                serde_json::from_slice::<serde_json::Value>(&v).unwrap()["id"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        assert_eq!(rev, vec![4, 3, 2, 1]);
    }

    #[test]
    fn plain_writes_are_applied() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let t = db.open_tree("h").unwrap();
        let logs = db.open_tree("l").unwrap();
        let p = Pending::new(t);
        assert!(p.push(&logs, b"k".to_vec(), b"v".to_vec()));
        assert!(!p.push(&logs, b"k2".to_vec(), b"v".to_vec()));
        p.apply().unwrap();
        assert_eq!(logs.len(), 2);
    }
}
