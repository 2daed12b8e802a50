//! Writes that need only be durable by the next group commit: history events, task logs and
//! the journal entries only a run writes.
//!
//! Execution threads queue them here instead of inserting into sled themselves; the group
//! committer applies the queue, single-threaded, right before each flush (a
//! [`weft_engine::durable::FlushHook`]), and every reader calls [`Pending::apply`] first, so a
//! read always sees what was queued before it. History events of one execution with consecutive
//! ids are stored as one sled value: the key is [`history_key`] of the *last* id of the run, the
//! value the events' JSON joined by `\n` (a value holding one event is just that event, which
//! is also how every older store kept them). [`history_events`] reads either form.
//!
//! A task log entry (see [`crate::task_logs`]) queued for an execution that also has events in
//! the same batch rides in that execution's last run: it is one more line of the run's value,
//! [`TASK_LOG_MARK`] + the entry's sequence number (16 hex digits) + its JSON, so a task costs no
//! sled write of its own; history readers skip such lines ([`history_runs`]) and
//! [`task_log_lines`] returns them. An entry whose execution has no events in the batch is
//! inserted into the task-log tree under its own key, as every older store kept them.
//!
//! Task results that only the run itself records (see
//! [`weft_engine::durable::ExecControl::set_record_sink`]) ride the same way: a line of
//! [`JOURNAL_MARK`] + the journal entry key + `0x1f` + the entry's JSON, read back by
//! [`journal_lines`]; without a run to ride in they go to the journal tree under their own key.
//!
//! This module owns only the queue and the stored shape of history runs; what an event says is
//! `runner`'s business, and who may read it the API's.

use crate::records::{history_key, history_prefix, id_of_history_key};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Mutex;

/// A run of coalesced events is closed at this many bytes (keeps sled values modest).
const MAX_RUN_BYTES: usize = 64 * 1024;

/// Task log entries ride in a run only while it stays under this many bytes.
const MAX_RUN_BYTES_WITH_LOGS: usize = 256 * 1024;

/// First byte of a task-log line inside a run (an event line starts with `{`).
pub const TASK_LOG_MARK: u8 = 0x1e;

/// First byte of a journal line inside a run.
pub const JOURNAL_MARK: u8 = 0x1d;

/// Separates a journal line's entry key from its JSON.
const JOURNAL_SEP: u8 = 0x1f;

/// A queued journal entry.
struct JournalEntry {
    execution: String,
    /// The entry key within the execution's journal.
    key: String,
    json: Vec<u8>,
}

impl JournalEntry {
    /// Its key in the journal tree.
    fn tree_key(&self) -> Vec<u8> {
        weft_engine::durable::journal_key(&self.execution, &self.key)
    }

    /// True when the key can be written as a line.
    fn fits_a_line(&self) -> bool {
        !self
            .key
            .bytes()
            .any(|b| b == b'\n' || b == JOURNAL_SEP || b == JOURNAL_MARK || b == TASK_LOG_MARK)
    }
}

/// One execution's share of a batch: its events (id, JSON), task log and journal entries.
type ExecBatch<'q> = (
    Vec<(u64, &'q str)>,
    Vec<&'q TaskLogEntry>,
    Vec<&'q JournalEntry>,
);

/// A queued task log entry.
struct TaskLogEntry {
    execution: String,
    /// Its own key in the task-log tree (used when it cannot ride in a run).
    key: Vec<u8>,
    seq: u64,
    json: String,
}

#[derive(Default)]
struct Queue {
    /// (execution ARN, event id, event JSON), in the order they were written.
    events: Vec<(String, u64, String)>,
    /// Task log entries, in the order they were written.
    task_logs: Vec<TaskLogEntry>,
    /// Journal entries, in the order they were written.
    journal: Vec<JournalEntry>,
}

impl Queue {
    fn is_empty(&self) -> bool {
        self.events.is_empty() && self.task_logs.is_empty() && self.journal.is_empty()
    }
}

/// The queue of deferred writes.
pub struct Pending {
    history: sled::Tree,
    task_logs: sled::Tree,
    journal: sled::Tree,
    queue: Mutex<Queue>,
    /// Held while a batch is applied, so readers never see half of one.
    applying: Mutex<()>,
}

impl Pending {
    pub fn new(history: sled::Tree, task_logs: sled::Tree, journal: sled::Tree) -> Self {
        Pending {
            history,
            task_logs,
            journal,
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

    /// Queues a task log entry of `execution` (`key`: its own key in the task-log tree, `seq`:
    /// its sequence number); returns true when the queue was empty before.
    pub fn push_task_log(&self, execution: &str, key: Vec<u8>, seq: u64, json: String) -> bool {
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        let was_empty = q.is_empty();
        q.task_logs.push(TaskLogEntry {
            execution: execution.to_string(),
            key,
            seq,
            json,
        });
        was_empty
    }

    /// Queues a journal entry of `execution` (entry key `key`, JSON `json`); it is durable by
    /// the next flush, in the execution's run or else the journal tree.
    pub fn push_journal(&self, execution: &str, key: &str, json: Vec<u8>) {
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        q.journal.push(JournalEntry {
            execution: execution.to_string(),
            key: key.to_string(),
            json,
        });
    }

    /// Applies everything queued so far if any of it is an event of `arn` (a new execution's
    /// first run then costs no write on its own thread).
    pub fn apply_if_queued(&self, arn: &str) -> sled::Result<()> {
        // (an apply in progress finishes first: what it took from the queue is not there)
        let _g = self.applying.lock().unwrap_or_else(|e| e.into_inner());
        let queued = {
            let q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            q.events.iter().any(|(a, _, _)| a == arn)
                || q.journal.iter().any(|j| j.execution == arn)
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
        // group by execution (keeping each one's order), then coalesce consecutive ids
        let mut by_exec: HashMap<&str, ExecBatch<'_>> = HashMap::new();
        for (arn, id, json) in &q.events {
            by_exec
                .entry(arn.as_str())
                .or_default()
                .0
                .push((*id, json.as_str()));
        }
        for t in &q.task_logs {
            match by_exec.get_mut(t.execution.as_str()) {
                Some(e) => e.1.push(t),
                // no run to ride in
                None => {
                    self.task_logs.insert(t.key.as_slice(), t.json.as_bytes())?;
                }
            }
        }
        for j in &q.journal {
            match by_exec.get_mut(j.execution.as_str()) {
                Some(e) if j.fits_a_line() => e.2.push(j),
                _ => {
                    self.journal.insert(j.tree_key(), j.json.as_slice())?;
                }
            }
        }
        let mut buf = String::new();
        for (arn, (evs, logs, journal)) in by_exec {
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
            for t in logs {
                if buf.len() + t.json.len() > MAX_RUN_BYTES_WITH_LOGS {
                    self.task_logs.insert(t.key.as_slice(), t.json.as_bytes())?;
                    continue;
                }
                buf.push('\n');
                buf.push(TASK_LOG_MARK as char);
                let _ = write!(buf, "{:016x}", t.seq);
                buf.push_str(&t.json);
            }
            for j in journal {
                let line = std::str::from_utf8(&j.json).ok();
                match line {
                    Some(json) if buf.len() + json.len() <= MAX_RUN_BYTES_WITH_LOGS => {
                        buf.push('\n');
                        buf.push(JOURNAL_MARK as char);
                        buf.push_str(&j.key);
                        buf.push(JOURNAL_SEP as char);
                        buf.push_str(json);
                    }
                    _ => {
                        self.journal.insert(j.tree_key(), j.json.as_slice())?;
                    }
                }
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
/// the events' raw JSON (task log and journal lines left out).
pub fn history_runs(
    tree: &sled::Tree,
    arn: &str,
) -> impl DoubleEndedIterator<Item = sled::Result<(u64, Vec<Vec<u8>>)>> {
    tree.scan_prefix(history_prefix(arn)).map(|item| {
        let (k, v) = item?;
        Ok((
            id_of_history_key(&k),
            v.split(|b| *b == b'\n')
                .filter(|l| l.first() == Some(&b'{'))
                .map(<[u8]>::to_vec)
                .collect(),
        ))
    })
}

/// The lines of an execution's runs that start with `mark` (without it), oldest first.
fn marked_lines(tree: &sled::Tree, arn: &str, mark: u8) -> sled::Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    for item in tree.scan_prefix(history_prefix(arn)) {
        let (_, v) = item?;
        if !v.contains(&mark) {
            continue;
        }
        out.extend(
            v.split(|b| *b == b'\n')
                .filter_map(|line| line.strip_prefix(&[mark]))
                .map(<[u8]>::to_vec),
        );
    }
    Ok(out)
}

/// The task log entries that ride in an execution's runs: (sequence number, JSON), in the order
/// stored (not necessarily by sequence number).
pub fn task_log_lines(tree: &sled::Tree, arn: &str) -> sled::Result<Vec<(u64, Vec<u8>)>> {
    Ok(marked_lines(tree, arn, TASK_LOG_MARK)?
        .into_iter()
        .filter_map(|line| {
            let seq = std::str::from_utf8(line.get(..16)?).ok()?;
            let seq = u64::from_str_radix(seq, 16).ok()?;
            Some((seq, line[16..].to_vec()))
        })
        .collect())
}

/// The journal entries that ride in an execution's runs: (entry key, JSON), oldest first.
pub fn journal_lines(tree: &sled::Tree, arn: &str) -> sled::Result<Vec<(String, Vec<u8>)>> {
    Ok(marked_lines(tree, arn, JOURNAL_MARK)?
        .into_iter()
        .filter_map(|line| {
            let sep = line.iter().position(|b| *b == JOURNAL_SEP)?;
            Some((
                String::from_utf8_lossy(&line[..sep]).into_owned(),
                line[sep + 1..].to_vec(),
            ))
        })
        .collect())
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
        let p = Pending::new(
            t.clone(),
            db.open_tree("l").unwrap(),
            db.open_tree("j").unwrap(),
        );
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
    fn task_logs_ride_in_runs_and_history_readers_skip_them() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let t = db.open_tree("h").unwrap();
        let logs = db.open_tree("l").unwrap();
        let p = Pending::new(t.clone(), logs.clone(), db.open_tree("j").unwrap());
        p.push_event("a", 1, "{\"id\":1}".into());
        p.push_task_log("a", b"a-own-key-7".to_vec(), 7, "{\"state\":\"X\"}".into());
        p.push_event("a", 2, "{\"id\":2}".into());
        // no events of "b" in this batch: its entry gets its own key
        p.push_task_log("b", b"b-own-key-8".to_vec(), 8, "{\"state\":\"Y\"}".into());
        p.apply().unwrap();
        assert_eq!(
            ids(&t, "a"),
            vec![1, 2],
            "history readers skip task log lines"
        );
        assert_eq!(
            task_log_lines(&t, "a").unwrap(),
            vec![(7, b"{\"state\":\"X\"}".to_vec())]
        );
        assert_eq!(logs.len(), 1);
        assert_eq!(
            logs.get(b"b-own-key-8").unwrap().as_deref(),
            Some(&b"{\"state\":\"Y\"}"[..])
        );
        assert!(task_log_lines(&t, "b").unwrap().is_empty());
        assert_eq!(last_event_id(&t, "a").unwrap(), 2);
    }

    #[test]
    fn journal_entries_ride_in_runs_or_go_to_the_journal_tree() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let t = db.open_tree("h").unwrap();
        let j = db.open_tree("j").unwrap();
        let p = Pending::new(t.clone(), db.open_tree("l").unwrap(), j.clone());
        p.push_event("a", 1, "{\"id\":1}".into());
        p.push_journal("a", "/0.1@1", b"{\"t\":\"ok\",\"output\":1}".to_vec());
        p.push_journal("b", "/0.1@1", b"{\"t\":\"ok\",\"output\":2}".to_vec());
        p.push_event("c", 1, "{\"id\":1}".into());
        p.push_journal("c", "bad\nkey", b"{}".to_vec());
        p.apply().unwrap();
        assert_eq!(
            journal_lines(&t, "a").unwrap(),
            vec![(
                "/0.1@1".to_string(),
                b"{\"t\":\"ok\",\"output\":1}".to_vec()
            )]
        );
        assert_eq!(ids(&t, "a"), vec![1], "history readers skip journal lines");
        // no run of "b" in the batch, and a key that cannot be a line: the journal tree
        assert_eq!(
            j.get(b"b\0/0.1@1").unwrap().as_deref(),
            Some(&b"{\"t\":\"ok\",\"output\":2}"[..])
        );
        assert!(j.get(b"c\0bad\nkey").unwrap().is_some());
        assert!(journal_lines(&t, "c").unwrap().is_empty());
    }
}
