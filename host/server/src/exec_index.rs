//! The per-state-machine index of executions by start time, so that the web UI's landing page
//! (counts of executions by status over the last 24 hours, the last execution's start) is a
//! range scan of one state machine's recent keys rather than a scan of every execution record.
//!
//! Two sled trees, keyed `STATE_MACHINE \0 START_MS (8 bytes, order-preserving) EXECUTION_NAME`
//! (names cannot hold `\0`: AWS's naming rule refuses control characters), both valued with the
//! execution's status:
//! - `sfn_exec_by_start`: every Standard execution;
//! - `sfn_exec_running`: only the executions that are RUNNING (or PENDING_REDRIVE) now, so
//!   executions that started long ago and still run are counted without scanning the rest.
//!
//! The index is derived from the execution records (tree `sfn_executions`): every place that
//! changes a record's status (start, end, stop, redrive) calls [`ExecIndex::sync`] afterwards,
//! which re-reads the record under a per-execution lock, so the last sync after the last change
//! always writes the final status whatever the interleaving. At start-up
//! [`ExecIndex::check`] repairs what a crash between a record's write and its sync left behind
//! (and fills the index of a store written before it existed).

use crate::records::ExecutionRecord;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Statuses counted on the landing page, in the order the UI shows them.
pub const STATUSES: [&str; 6] = [
    "RUNNING",
    "SUCCEEDED",
    "FAILED",
    "TIMED_OUT",
    "ABORTED",
    "PENDING_REDRIVE",
];

/// Striped locks serialising the syncs of one execution.
const STRIPES: usize = 64;

/// The index trees.
pub struct ExecIndex {
    by_start: sled::Tree,
    running: sled::Tree,
    locks: Vec<Mutex<()>>,
}

/// One state machine's executions over a window.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Executions by status: started in the window, plus every execution running now.
    pub counts: BTreeMap<String, u64>,
    /// Start (epoch ms) of the newest execution, if any.
    pub last_start_ms: Option<i64>,
}

fn start_bytes(ms: i64) -> [u8; 8] {
    ((ms as u64) ^ (1 << 63)).to_be_bytes()
}

fn sm_prefix(sm: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(sm.len() + 9);
    k.extend_from_slice(sm.as_bytes());
    k.push(0);
    k
}

fn key(sm: &str, start_ms: i64, name: &str) -> Vec<u8> {
    let mut k = sm_prefix(sm);
    k.extend_from_slice(&start_bytes(start_ms));
    k.extend_from_slice(name.as_bytes());
    k
}

fn start_of_key(prefix_len: usize, k: &[u8]) -> Option<i64> {
    let b: [u8; 8] = k.get(prefix_len..prefix_len + 8)?.try_into().ok()?;
    Some((u64::from_be_bytes(b) ^ (1 << 63)) as i64)
}

fn is_running(status: &str) -> bool {
    matches!(status, "RUNNING" | "PENDING_REDRIVE")
}

impl ExecIndex {
    /// Opens (creating) the index trees in `db`.
    pub fn open(db: &sled::Db) -> sled::Result<Self> {
        Ok(ExecIndex {
            by_start: db.open_tree("sfn_exec_by_start")?,
            running: db.open_tree("sfn_exec_running")?,
            locks: (0..STRIPES).map(|_| Mutex::new(())).collect(),
        })
    }

    fn lock(&self, arn: &str) -> std::sync::MutexGuard<'_, ()> {
        let h = blake3::hash(arn.as_bytes());
        let i = h.as_bytes()[0] as usize % STRIPES;
        self.locks[i].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes `rec`'s status into the index (both trees), if it differs.
    fn put(&self, rec: &ExecutionRecord) -> sled::Result<()> {
        let k = key(&rec.state_machine_name, rec.start_ms, &rec.name);
        let status = rec.status.as_bytes();
        if self.by_start.get(&k)?.as_deref() != Some(status) {
            self.by_start.insert(k.as_slice(), status)?;
        }
        if is_running(&rec.status) {
            if self.running.get(&k)?.as_deref() != Some(status) {
                self.running.insert(k, status)?;
            }
        } else if self.running.get(&k)?.is_some() {
            self.running.remove(k)?;
        }
        Ok(())
    }

    /// Brings the index in line with the execution record of `arn` in `executions`, as it is
    /// now. Call it after every change of a record's status.
    pub fn sync(&self, executions: &sled::Tree, arn: &str) -> sled::Result<()> {
        let _g = self.lock(arn);
        let Some(v) = executions.get(arn.as_bytes())? else {
            return Ok(());
        };
        match serde_json::from_slice::<ExecutionRecord>(&v) {
            Ok(rec) => self.put(&rec),
            Err(e) => {
                tracing::error!(execution = %arn, "unreadable execution record, not indexed: {e}");
                Ok(())
            }
        }
    }

    /// [`ExecIndex::sync`], logging a failure: the execution's own write already succeeded,
    /// and the next start-up's [`ExecIndex::check`] repairs the index.
    pub fn sync_or_log(&self, executions: &sled::Tree, arn: &str) {
        if let Err(e) = self.sync(executions, arn) {
            tracing::error!(execution = %arn, "cannot update the execution index: {e}");
        }
    }

    /// Repairs the index entry of `rec` (read at start-up, before anything changes records).
    pub fn check(&self, rec: &ExecutionRecord) -> sled::Result<()> {
        self.put(rec)
    }

    /// Executions of state machine `sm` that started at or after `since_ms`, by status, plus
    /// those running now that started earlier; and the newest execution's start.
    pub fn summary(&self, sm: &str, since_ms: i64) -> sled::Result<Summary> {
        let prefix = sm_prefix(sm);
        let mut out = Summary::default();
        // `NAME \1`: just past every key of this state machine
        let mut end = sm.as_bytes().to_vec();
        end.push(1);
        if let Some(last) = self.by_start.range(prefix.clone()..end.clone()).next_back() {
            let (k, _) = last?;
            out.last_start_ms = start_of_key(prefix.len(), &k);
        }
        let mut from = prefix.clone();
        from.extend_from_slice(&start_bytes(since_ms));
        for kv in self.by_start.range(from.clone()..end) {
            let (_, v) = kv?;
            *out.counts
                .entry(String::from_utf8_lossy(&v).into_owned())
                .or_default() += 1;
        }
        for kv in self.running.range(prefix..from) {
            let (_, v) = kv?;
            *out.counts
                .entry(String::from_utf8_lossy(&v).into_owned())
                .or_default() += 1;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(sm: &str, name: &str, start_ms: i64, status: &str) -> ExecutionRecord {
        ExecutionRecord {
            arn: crate::records::exec_arn(sm, name),
            state_machine_arn: crate::records::sm_arn(sm),
            state_machine_name: sm.into(),
            name: name.into(),
            status: status.into(),
            start_ms,
            stop_ms: None,
            input: "{}".into(),
            output: None,
            error: None,
            cause: None,
            trace_header: None,
            definition: None,
            role_arn: None,
            redrive_count: 0,
            redrive_ms: None,
            parent: None,
            parent_wants_json: false,
            version_arn: None,
            alias_arn: None,
            test_case: None,
            mocks: None,
        }
    }

    fn write(execs: &sled::Tree, idx: &ExecIndex, r: &ExecutionRecord) {
        execs
            .insert(r.arn.as_bytes(), serde_json::to_vec(r).unwrap())
            .unwrap();
        idx.sync(execs, &r.arn).unwrap();
    }

    fn counts(s: &Summary) -> Vec<(&str, u64)> {
        s.counts.iter().map(|(k, v)| (k.as_str(), *v)).collect()
    }

    #[test]
    fn counts_the_window_and_what_runs_now() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let execs = db.open_tree("sfn_executions").unwrap();
        let idx = ExecIndex::open(&db).unwrap();
        let day = 86_400_000;
        let now = 10 * day;
        write(
            &execs,
            &idx,
            &rec("orders", "old-ok", now - 2 * day, "SUCCEEDED"),
        );
        write(
            &execs,
            &idx,
            &rec("orders", "old-run", now - 3 * day, "RUNNING"),
        );
        write(
            &execs,
            &idx,
            &rec("orders", "new-ok", now - 1000, "SUCCEEDED"),
        );
        write(&execs, &idx, &rec("orders", "new-bad", now - 500, "FAILED"));
        write(
            &execs,
            &idx,
            &rec("orders", "new-run", now - 100, "RUNNING"),
        );
        // another state machine whose name extends this one's is not counted
        write(&execs, &idx, &rec("orders2", "x", now - 10, "FAILED"));
        let s = idx.summary("orders", now - day).unwrap();
        assert_eq!(
            counts(&s),
            [("FAILED", 1), ("RUNNING", 2), ("SUCCEEDED", 1)]
        );
        assert_eq!(s.last_start_ms, Some(now - 100));
        assert_eq!(idx.summary("none", now - day).unwrap(), Summary::default());
        // a negative start (before 1970) sorts before the others
        write(&execs, &idx, &rec("orders", "ancient", -5, "ABORTED"));
        assert_eq!(idx.summary("orders", -10).unwrap().counts["ABORTED"], 1);
    }

    #[test]
    fn status_changes_move_an_execution_between_counts() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let execs = db.open_tree("sfn_executions").unwrap();
        let idx = ExecIndex::open(&db).unwrap();
        let mut r = rec("sm", "e", 1_000, "RUNNING");
        write(&execs, &idx, &r);
        for status in ["ABORTED", "RUNNING", "FAILED", "RUNNING", "SUCCEEDED"] {
            r.status = status.into();
            write(&execs, &idx, &r);
            let s = idx.summary("sm", 0).unwrap();
            assert_eq!(counts(&s), [(status, 1)], "after {status}");
        }
        // nothing lingers in the running tree after the execution ended
        assert_eq!(idx.summary("sm", 2_000).unwrap().counts.len(), 0);
    }

    #[test]
    fn a_stale_index_is_repaired_from_the_records() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let execs = db.open_tree("sfn_executions").unwrap();
        let idx = ExecIndex::open(&db).unwrap();
        let mut r = rec("sm", "e", 1_000, "RUNNING");
        write(&execs, &idx, &r);
        // the record changed, the process died before the index followed
        r.status = "SUCCEEDED".into();
        execs
            .insert(r.arn.as_bytes(), serde_json::to_vec(&r).unwrap())
            .unwrap();
        assert_eq!(counts(&idx.summary("sm", 0).unwrap()), [("RUNNING", 1)]);
        for kv in execs.iter() {
            let (_, v) = kv.unwrap();
            idx.check(&serde_json::from_slice(&v).unwrap()).unwrap();
        }
        assert_eq!(counts(&idx.summary("sm", 0).unwrap()), [("SUCCEEDED", 1)]);
        assert_eq!(idx.summary("sm", 5_000).unwrap().counts.len(), 0);
    }
}
