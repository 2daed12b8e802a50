//! [`SledHistory`]: the [`super::HistoryStore`] on sled, in the trees and values the server
//! has always written, so an existing `$WEFT_HOME` opens unchanged.
//!
//! Tree `sfn_history`: history events of one execution with consecutive ids are stored as one
//! value, a *run*: the key is `execution ARN \0 id` (id: the run's *last* event id, 8 bytes
//! big-endian), the value the events' JSON joined by `\n` (a value holding one event is just
//! that event, which is also how every older store kept them).
//!
//! A task log entry of an execution that also has events in the same batch rides in that
//! execution's last run: one more line, [`TASK_LOG_MARK`] + the entry's sequence number (16 hex
//! digits) + its JSON, so a task costs no write of its own; history readers skip such lines. An
//! entry whose execution has no events in the batch goes to tree `sfn_task_logs` under its own
//! key: `execution ARN \0` + sequence number (8 bytes big-endian) + state name + `\0` + attempt
//! (4 bytes big-endian).
//!
//! Journal entries of a batch ride the same way: a line of [`JOURNAL_MARK`] + the entry key +
//! `0x1f` + the entry's JSON; without a run to ride in (or with a key that cannot be a line)
//! they go to the journal tree `sfn_journal` under their own key
//! ([`crate::durable::journal_key`]).

use std::collections::HashMap;
use std::fmt::Write as _;

use super::history::{HistoryBatch, HistoryStore, JournalLine, RunVisit, TaskLogWrite};
use super::limits;
use super::PersistenceError;

/// Tree of history runs.
pub const HISTORY: &str = "sfn_history";
/// Tree of task log entries that did not ride in a run.
pub const TASK_LOGS: &str = "sfn_task_logs";
/// Tree of journal entries (shared with [`crate::durable::JournalStore`]).
pub const JOURNAL: &str = "sfn_journal";

/// A run of coalesced events is closed at this many bytes (keeps sled values modest).
const MAX_RUN_BYTES: usize = 64 * 1024;
/// Task log and journal entries ride in a run only while it stays under this many bytes.
const MAX_RUN_BYTES_WITH_LOGS: usize = 256 * 1024;
/// First byte of a task-log line inside a run (an event line starts with `{`).
pub const TASK_LOG_MARK: u8 = 0x1e;
/// First byte of a journal line inside a run.
pub const JOURNAL_MARK: u8 = 0x1d;
/// Separates a journal line's entry key from its JSON.
const JOURNAL_SEP: u8 = 0x1f;

/// The history trees.
#[derive(Clone)]
pub struct SledHistory {
    history: sled::Tree,
    task_logs: sled::Tree,
    journal: sled::Tree,
}

/// `execution ARN \0`: the prefix of an execution's keys in the history and task-log trees.
pub fn history_prefix(execution: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(execution.len() + 9);
    k.extend_from_slice(execution.as_bytes());
    k.push(0);
    k
}

/// The key of the run ending at event `id`.
pub fn history_key(execution: &str, id: u64) -> Vec<u8> {
    let mut k = history_prefix(execution);
    k.extend_from_slice(&id.to_be_bytes());
    k
}

/// The event id a history key ends with.
pub fn id_of_history_key(k: &[u8]) -> u64 {
    k.len()
        .checked_sub(8)
        .and_then(|n| k[n..].try_into().ok())
        .map(u64::from_be_bytes)
        .unwrap_or(0)
}

/// The own key of a task log entry in `sfn_task_logs`.
pub fn task_log_key(execution: &str, seq: u64, state: &str, attempt: u32) -> Vec<u8> {
    let mut k = history_prefix(execution);
    k.extend_from_slice(&seq.to_be_bytes());
    k.extend_from_slice(state.as_bytes());
    k.push(0);
    k.extend_from_slice(&attempt.to_be_bytes());
    k
}

fn fits_a_line(key: &str) -> bool {
    !key.bytes()
        .any(|b| b == b'\n' || b == JOURNAL_SEP || b == JOURNAL_MARK || b == TASK_LOG_MARK)
}

/// One execution's share of a batch: its events (id, JSON), task log and journal entries.
type ExecBatch<'q> = (
    Vec<(u64, &'q str)>,
    Vec<&'q TaskLogWrite>,
    Vec<&'q JournalLine>,
);

fn events_of(v: &[u8]) -> Vec<Vec<u8>> {
    v.split(|b| *b == b'\n')
        .filter(|l| l.first() == Some(&b'{'))
        .map(<[u8]>::to_vec)
        .collect()
}

impl SledHistory {
    /// Opens (creating) the trees in `db`.
    pub fn open(db: &sled::Db) -> Result<Self, PersistenceError> {
        Ok(SledHistory {
            history: db.open_tree(HISTORY)?,
            task_logs: db.open_tree(TASK_LOGS)?,
            journal: db.open_tree(JOURNAL)?,
        })
    }

    fn put_task_log(&self, t: &TaskLogWrite) -> Result<(), PersistenceError> {
        let k = task_log_key(&t.execution, t.seq, &t.state, t.attempt);
        self.task_logs.insert(k, t.json.as_bytes())?;
        Ok(())
    }

    fn put_journal(&self, j: &JournalLine) -> Result<(), PersistenceError> {
        self.journal.insert(
            crate::durable::journal_key(&j.execution, &j.key),
            j.json.as_slice(),
        )?;
        Ok(())
    }

    /// The lines of an execution's runs that start with `mark` (without it), oldest first.
    fn marked_lines(&self, execution: &str, mark: u8) -> Result<Vec<Vec<u8>>, PersistenceError> {
        let mut out = Vec::new();
        for item in self.history.scan_prefix(history_prefix(execution)) {
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
}

impl HistoryStore for SledHistory {
    fn write_batch(&self, q: &HistoryBatch) -> Result<(), PersistenceError> {
        if q.is_empty() {
            return Ok(());
        }
        q.check()?;
        // group by execution (keeping each one's order), then coalesce consecutive ids
        let mut by_exec: HashMap<&str, ExecBatch<'_>> = HashMap::new();
        for e in &q.events {
            by_exec
                .entry(e.execution.as_str())
                .or_default()
                .0
                .push((e.id, e.json.as_str()));
        }
        for t in &q.task_logs {
            match by_exec.get_mut(t.execution.as_str()) {
                Some(e) => e.1.push(t),
                // no run to ride in
                None => self.put_task_log(t)?,
            }
        }
        for j in &q.journal {
            match by_exec.get_mut(j.execution.as_str()) {
                Some(e) if fits_a_line(&j.key) => e.2.push(j),
                _ => self.put_journal(j)?,
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
                    self.put_task_log(t)?;
                    continue;
                }
                buf.push('\n');
                buf.push(TASK_LOG_MARK as char);
                let _ = write!(buf, "{:016x}", t.seq);
                buf.push_str(&t.json);
            }
            for j in journal {
                match std::str::from_utf8(&j.json).ok() {
                    Some(json) if buf.len() + json.len() <= MAX_RUN_BYTES_WITH_LOGS => {
                        buf.push('\n');
                        buf.push(JOURNAL_MARK as char);
                        buf.push_str(&j.key);
                        buf.push(JOURNAL_SEP as char);
                        buf.push_str(json);
                    }
                    _ => self.put_journal(j)?,
                }
            }
            if let Some(l) = last {
                self.history.insert(history_key(arn, l), buf.as_bytes())?;
            }
            buf.clear();
        }
        Ok(())
    }

    fn put_event(&self, execution: &str, id: u64, json: &[u8]) -> Result<(), PersistenceError> {
        limits::key("execution ARN", execution)?;
        limits::record("history event", json)?;
        self.history.insert(history_key(execution, id), json)?;
        Ok(())
    }

    fn each_run(
        &self,
        execution: &str,
        reverse: bool,
        visit: RunVisit<'_>,
    ) -> Result<(), PersistenceError> {
        limits::key("execution ARN", execution)?;
        let iter = self.history.scan_prefix(history_prefix(execution));
        let mut go = |item: sled::Result<(sled::IVec, sled::IVec)>| {
            item.map(|(k, v)| visit(id_of_history_key(&k), events_of(&v)))
        };
        if reverse {
            for item in iter.rev() {
                if !go(item)? {
                    break;
                }
            }
        } else {
            for item in iter {
                if !go(item)? {
                    break;
                }
            }
        }
        Ok(())
    }

    fn last_event_id(&self, execution: &str) -> Result<u64, PersistenceError> {
        limits::key("execution ARN", execution)?;
        Ok(
            match self
                .history
                .scan_prefix(history_prefix(execution))
                .next_back()
            {
                Some(item) => id_of_history_key(&item?.0),
                None => 0,
            },
        )
    }

    fn task_logs(&self, execution: &str) -> Result<Vec<(u64, Vec<u8>)>, PersistenceError> {
        limits::key("execution ARN", execution)?;
        let prefix = history_prefix(execution);
        let mut out = Vec::new();
        for item in self.task_logs.scan_prefix(&prefix) {
            let (k, v) = item?;
            let seq = k
                .get(prefix.len()..prefix.len() + 8)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_be_bytes)
                .unwrap_or(0);
            out.push((seq, v.to_vec()));
        }
        out.extend(
            self.marked_lines(execution, TASK_LOG_MARK)?
                .into_iter()
                .filter_map(|line| {
                    let seq = std::str::from_utf8(line.get(..16)?).ok()?;
                    let seq = u64::from_str_radix(seq, 16).ok()?;
                    Some((seq, line[16..].to_vec()))
                }),
        );
        Ok(out)
    }

    fn journal_lines(&self, execution: &str) -> Result<Vec<(String, Vec<u8>)>, PersistenceError> {
        limits::key("execution ARN", execution)?;
        Ok(self
            .marked_lines(execution, JOURNAL_MARK)?
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persistence::history::EventWrite;

    fn ids(h: &SledHistory, arn: &str, reverse: bool) -> Vec<u64> {
        let mut out = Vec::new();
        h.each_run(arn, reverse, &mut |_, evs| {
            let mut evs: Vec<u64> = evs
                .iter()
                .map(|v| {
                    serde_json::from_slice::<serde_json::Value>(v).unwrap()["id"]
                        .as_u64()
                        .unwrap()
                })
                .collect();
            if reverse {
                evs.reverse();
            }
            out.extend(evs);
            true
        })
        .unwrap();
        out
    }

    fn ev(arn: &str, id: u64) -> EventWrite {
        EventWrite {
            execution: arn.into(),
            id,
            json: format!("{{\"id\":{id}}}"),
        }
    }

    fn open() -> (tempfile::TempDir, sled::Db, SledHistory) {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let h = SledHistory::open(&db).unwrap();
        (dir, db, h)
    }

    #[test]
    fn coalesces_runs_and_reads_them_back_in_order() {
        let (_d, db, h) = open();
        let mut b = HistoryBatch::default();
        for id in 1..=3 {
            b.events.push(ev("a", id));
            b.events.push(ev("b", id));
        }
        // an older store's single event, written in its layout by hand, then a gap in the ids
        let mut k = b"c\0".to_vec();
        k.extend_from_slice(&1u64.to_be_bytes());
        db.open_tree("sfn_history")
            .unwrap()
            .insert(k, &b"{\"id\":1}"[..])
            .unwrap();
        b.events.push(ev("c", 2));
        b.events.push(ev("c", 5));
        h.write_batch(&b).unwrap();
        assert_eq!(ids(&h, "a", false), vec![1, 2, 3]);
        assert_eq!(ids(&h, "b", false), vec![1, 2, 3]);
        assert_eq!(ids(&h, "c", false), vec![1, 2, 5]);
        let mut runs = 0;
        h.each_run("a", false, &mut |_, _| {
            runs += 1;
            true
        })
        .unwrap();
        assert_eq!(runs, 1, "one value per run");
        assert_eq!(h.last_event_id("a").unwrap(), 3);
        assert_eq!(h.last_event_id("c").unwrap(), 5);
        assert_eq!(h.last_event_id("zz").unwrap(), 0);
        h.write_batch(&HistoryBatch {
            events: vec![ev("a", 4)],
            ..Default::default()
        })
        .unwrap();
        h.put_event("a", 5, b"{\"id\":5}").unwrap();
        assert_eq!(ids(&h, "a", false), vec![1, 2, 3, 4, 5]);
        assert_eq!(ids(&h, "a", true), vec![5, 4, 3, 2, 1]);
    }

    #[test]
    fn task_logs_ride_in_runs_and_history_readers_skip_them() {
        let (_d, db, h) = open();
        let log = |arn: &str, seq, state: &str| TaskLogWrite {
            execution: arn.into(),
            seq,
            state: state.into(),
            attempt: 1,
            json: format!("{{\"state\":\"{state}\"}}"),
        };
        h.write_batch(&HistoryBatch {
            events: vec![ev("a", 1), ev("a", 2)],
            // no events of "b" in this batch: its entry gets its own key
            task_logs: vec![log("a", 7, "X"), log("b", 8, "Y")],
            journal: vec![],
        })
        .unwrap();
        assert_eq!(
            ids(&h, "a", false),
            vec![1, 2],
            "history readers skip task log lines"
        );
        assert_eq!(
            h.task_logs("a").unwrap(),
            vec![(7, b"{\"state\":\"X\"}".to_vec())]
        );
        let own = db.open_tree("sfn_task_logs").unwrap();
        assert_eq!(own.len(), 1);
        let mut k = b"b\0".to_vec();
        k.extend_from_slice(&8u64.to_be_bytes());
        k.extend_from_slice(b"Y\0");
        k.extend_from_slice(&1u32.to_be_bytes());
        assert!(own.get(k).unwrap().is_some(), "the server's own-key layout");
        assert_eq!(
            h.task_logs("b").unwrap(),
            vec![(8, b"{\"state\":\"Y\"}".to_vec())]
        );
        assert_eq!(h.last_event_id("a").unwrap(), 2);
    }

    #[test]
    fn journal_entries_ride_in_runs_or_go_to_the_journal_tree() {
        let (_d, db, h) = open();
        let j = |arn: &str, key: &str, json: &[u8]| JournalLine {
            execution: arn.into(),
            key: key.into(),
            json: json.to_vec(),
        };
        h.write_batch(&HistoryBatch {
            events: vec![ev("a", 1), ev("c", 1)],
            task_logs: vec![],
            journal: vec![
                j("a", "/0.1@1", b"{\"t\":\"ok\",\"output\":1}"),
                j("b", "/0.1@1", b"{\"t\":\"ok\",\"output\":2}"),
                j("c", "bad\nkey", b"{}"),
            ],
        })
        .unwrap();
        assert_eq!(
            h.journal_lines("a").unwrap(),
            vec![(
                "/0.1@1".to_string(),
                b"{\"t\":\"ok\",\"output\":1}".to_vec()
            )]
        );
        assert_eq!(
            ids(&h, "a", false),
            vec![1],
            "history readers skip journal lines"
        );
        // no run of "b" in the batch, and a key that cannot be a line: the journal tree
        let jt = db.open_tree("sfn_journal").unwrap();
        assert_eq!(
            jt.get(b"b\0/0.1@1").unwrap().as_deref(),
            Some(&b"{\"t\":\"ok\",\"output\":2}"[..])
        );
        assert!(jt.get(b"c\0bad\nkey").unwrap().is_some());
        assert!(h.journal_lines("c").unwrap().is_empty());
    }
}
