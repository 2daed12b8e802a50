//! The per-execution journal: what a replay must reproduce without redoing it. Keys are
//! `EXECUTION_ARN 0x00 ENTRY_KEY`; entry keys come from the interpreter (`/3.1@2` is the
//! second attempt of the first visit of state 3; `/3.1:wait` a Wait deadline) and values are
//! JSON [`Entry`]s.

use super::writeback::JournalStore;
use super::DurableError;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One journaled fact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Entry {
    /// A task attempt began (epoch ms); no result yet.
    Started {
        /// When.
        at_ms: i64,
    },
    /// A task attempt's result.
    Ok {
        /// The raw task result.
        output: Value,
    },
    /// A task attempt's failure.
    Err {
        /// Error name.
        error: String,
        /// Cause.
        cause: String,
    },
    /// A timer's deadline (epoch ms), fixed when first reached.
    Timer {
        /// Deadline.
        until_ms: i64,
    },
    /// The plugin digest a reference resolved to the first time it ran.
    Pinned {
        /// blake3 hex digest.
        digest: String,
    },
    /// The redrive during which a task attempt first ran (key `ATTEMPT:gen`; absent: the
    /// execution's first run): its task token derives from it, so a redriven attempt gets a new
    /// token and every replay the same one.
    Generation {
        /// The execution's redrive count then.
        n: u32,
    },
}

/// True when a stored entry is an attempt's result (`Ok`/`Err`), which nothing replaces.
fn holds_result(cur: Option<&[u8]>) -> bool {
    cur.is_some_and(|b| {
        matches!(
            serde_json::from_slice::<Entry>(b),
            Ok(Entry::Ok { .. } | Entry::Err { .. })
        )
    })
}

/// The journal tree's key of entry `k` of `execution` (`EXECUTION 0x00 KEY`).
pub fn journal_key(execution: &str, k: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(execution.len() + 1 + k.len());
    v.extend_from_slice(execution.as_bytes());
    v.push(0);
    v.extend_from_slice(k.as_bytes());
    v
}

/// Where [`Journal::complete_via`] hands entries: (execution ARN, entry key, entry JSON).
pub type RecordSink = std::sync::Arc<dyn Fn(&str, &str, Vec<u8>) + Send + Sync>;

/// The journal of one execution.
#[derive(Clone)]
pub struct Journal {
    tree: JournalStore,
    execution: String,
    prefix: Vec<u8>,
}

impl Journal {
    /// The journal of `execution` in `tree`.
    pub fn new(tree: sled::Tree, execution: &str) -> Self {
        Self::on(&JournalStore::direct(tree), execution)
    }

    /// The journal of `execution` in `store` (buffered or not).
    pub fn on(store: &JournalStore, execution: &str) -> Self {
        let mut prefix = execution.as_bytes().to_vec();
        prefix.push(0);
        Journal {
            tree: store.clone(),
            execution: execution.to_string(),
            prefix,
        }
    }

    /// The execution this journal belongs to.
    pub fn execution(&self) -> &str {
        &self.execution
    }

    fn key(&self, k: &str) -> Vec<u8> {
        journal_key(&self.execution, k)
    }

    /// An entry as stored (JSON).
    pub(crate) fn encode(&self, k: &str, e: &Entry) -> Result<Vec<u8>, DurableError> {
        serde_json::to_vec(e).map_err(|e| DurableError::BadEntry {
            execution: self.execution.clone(),
            key: k.to_string(),
            reason: e.to_string(),
        })
    }

    /// Reads an entry.
    pub fn get(&self, k: &str) -> Result<Option<Entry>, DurableError> {
        match self.tree.get(&self.key(k))? {
            None => Ok(None),
            Some(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| DurableError::BadEntry {
                    execution: self.execution.clone(),
                    key: k.to_string(),
                    reason: e.to_string(),
                }),
        }
    }

    /// Writes an entry (not yet durable: see [`super::GroupCommit::commit`]).
    pub fn put(&self, k: &str, e: &Entry) -> Result<(), DurableError> {
        let v = self.encode(k, e)?;
        self.tree.insert(self.key(k), v)?;
        Ok(())
    }

    /// Writes `e` unless the key already holds a result (`Ok`/`Err`); true when written. Used
    /// by callbacks, timeouts and workers racing to complete the same attempt.
    pub fn complete(&self, k: &str, e: &Entry) -> Result<bool, DurableError> {
        let key = self.key(k);
        let new = self.encode(k, e)?;
        Ok(self.tree.update_unless(&key, Some(new), holds_result)?)
    }

    /// [`Journal::complete`] for answers from outside the run (a callback, a timeout, a
    /// child's end), which may arrive on any node: on a shared database it is decided there
    /// at once ([`JournalStore::update_unless_now`]).
    pub fn complete_now(&self, k: &str, e: &Entry) -> Result<bool, DurableError> {
        let key = self.key(k);
        let new = self.encode(k, e)?;
        Ok(self.tree.update_unless_now(&key, Some(new), holds_result)?)
    }

    /// [`Journal::complete`], but the entry is handed to `sink` (execution, entry key, JSON)
    /// instead of the journal tree: the caller stores it elsewhere, durable by the next commit,
    /// and gives it back to later runs ([`super::ExecControl::set_recorded`]). Only for attempts
    /// nobody else can complete (callbacks, timeouts and workers use [`Journal::complete`]).
    pub fn complete_via(
        &self,
        k: &str,
        e: &Entry,
        sink: &RecordSink,
    ) -> Result<bool, DurableError> {
        let key = self.key(k);
        let new = self.encode(k, e)?;
        Ok(self
            .tree
            .divert_unless(&key, new, holds_result, |v| sink(&self.execution, k, v))?)
    }

    /// Removes an entry only while it is still `Started` (an answer that raced in stays).
    pub fn remove_started(&self, k: &str) -> Result<(), DurableError> {
        let key = self.key(k);
        // a concurrent complete() wins: then the entry is no longer Started and stays (also an
        // answer another node wrote straight into a shared database: decided there)
        self.tree.update_unless_now(&key, None, |cur| {
            !cur.is_some_and(|b| {
                matches!(
                    serde_json::from_slice::<Entry>(b),
                    Ok(Entry::Started { .. })
                )
            })
        })?;
        Ok(())
    }

    /// Removes an entry.
    pub fn remove(&self, k: &str) -> Result<(), DurableError> {
        self.tree.remove(self.key(k))?;
        Ok(())
    }

    /// Every entry, in key order.
    pub fn entries(&self) -> Result<Vec<(String, Entry)>, DurableError> {
        let mut out = Vec::new();
        for (k, v) in self.tree.scan_prefix(&self.prefix)? {
            let key = String::from_utf8_lossy(&k[self.prefix.len()..]).into_owned();
            let e = serde_json::from_slice(&v).map_err(|e| DurableError::BadEntry {
                execution: self.execution.clone(),
                key: key.clone(),
                reason: e.to_string(),
            })?;
            out.push((key, e));
        }
        Ok(out)
    }

    /// Deletes the whole journal (the execution succeeded: nothing will replay it).
    pub fn clear(&self) -> Result<(), DurableError> {
        self.tree.clear_prefix(&self.prefix)?;
        Ok(())
    }

    /// Prepares a redrive: forgets the failures of every task that never succeeded (all its
    /// attempts, and the redrive generations their tokens came from), so a replay re-runs
    /// exactly the unsuccessful work, and the timers that had not
    /// fired when the execution ended (`stopped_ms`: a Wait that was interrupted waits again in
    /// full); successful tasks, fired timers and caught-and-succeeded paths stay.
    /// `recorded_elsewhere`: the entries [`Journal::complete_via`] handed out. Returns how many
    /// entries were removed.
    pub fn forget_failures(
        &self,
        stopped_ms: i64,
        recorded_elsewhere: &[(String, Entry)],
    ) -> Result<usize, DurableError> {
        let entries = self.entries()?;
        let base = |k: &str| {
            k.rsplit_once('@')
                .map_or(k.to_string(), |(b, _)| b.to_string())
        };
        let succeeded: std::collections::HashSet<String> = entries
            .iter()
            .chain(recorded_elsewhere)
            .filter(|(_, e)| matches!(e, Entry::Ok { .. }))
            .map(|(k, _)| base(k))
            .collect();
        let mut n = 0;
        for (k, e) in &entries {
            let unfired = matches!(e, Entry::Timer { until_ms } if *until_ms > stopped_ms);
            if unfired
                || (matches!(
                    e,
                    Entry::Err { .. } | Entry::Started { .. } | Entry::Generation { .. }
                ) && !succeeded.contains(&base(k)))
            {
                self.remove(k)?;
                n += 1;
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_roundtrip_and_redrive_forgets_only_unsuccessful_tasks() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let j = Journal::new(db.open_tree("j").unwrap(), "arn:x");
        let other = Journal::new(db.open_tree("j").unwrap(), "arn:x2");
        j.put(
            "/0.1@1",
            &Entry::Ok {
                output: Value::from(1),
            },
        )
        .unwrap();
        j.put(
            "/1.1@1",
            &Entry::Err {
                error: "E".into(),
                cause: "c".into(),
            },
        )
        .unwrap();
        j.put(
            "/1.1@2",
            &Entry::Err {
                error: "E".into(),
                cause: "c".into(),
            },
        )
        .unwrap();
        j.put(
            "/2.1@1",
            &Entry::Err {
                error: "E".into(),
                cause: "c".into(),
            },
        )
        .unwrap();
        j.put(
            "/2.1@2",
            &Entry::Ok {
                output: Value::Null,
            },
        )
        .unwrap();
        j.put("/1.1:wait", &Entry::Timer { until_ms: 5 }).unwrap();
        j.put("/3.1:wait", &Entry::Timer { until_ms: 500 }).unwrap();
        other
            .put(
                "/1.1@1",
                &Entry::Err {
                    error: "E".into(),
                    cause: "c".into(),
                },
            )
            .unwrap();
        assert_eq!(j.entries().unwrap().len(), 7);
        assert_eq!(j.forget_failures(100, &[]).unwrap(), 3);
        assert!(
            j.get("/3.1:wait").unwrap().is_none(),
            "a timer still pending at the end"
        );
        assert!(j.get("/1.1@1").unwrap().is_none());
        assert!(
            j.get("/2.1@1").unwrap().is_some(),
            "a retried-then-succeeded task stays"
        );
        assert!(j.get("/1.1:wait").unwrap().is_some());
        assert!(
            other.get("/1.1@1").unwrap().is_some(),
            "journals are per execution"
        );
        // complete() never overwrites a result
        assert!(!j
            .complete(
                "/0.1@1",
                &Entry::Ok {
                    output: Value::from(2)
                }
            )
            .unwrap());
        assert!(j
            .complete(
                "/9.1@1",
                &Entry::Ok {
                    output: Value::from(2)
                }
            )
            .unwrap());
        j.clear().unwrap();
        assert!(j.entries().unwrap().is_empty());
        assert_eq!(other.entries().unwrap().len(), 1);
        db.open_tree("j")
            .unwrap()
            .insert(b"arn:x\0bad", b"{")
            .unwrap();
        assert!(matches!(j.get("bad"), Err(DurableError::BadEntry { .. })));
    }
}
