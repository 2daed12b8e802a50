//! [`SledExecutions`]: execution records and their index ([`super::ExecutionRecords`]) on
//! sled, in the trees and keys the server has always written, so an existing `$WEFT_HOME`
//! opens unchanged:
//! - `sfn_executions`: execution ARN -> record;
//! - `sfn_exec_by_start`: `STATE_MACHINE \0 START_MS (8 bytes, order-preserving)
//!   EXECUTION_NAME` -> status, for every execution;
//! - `sfn_exec_running`: the same keys, only for the executions RUNNING (or PENDING_REDRIVE)
//!   now, so executions that started long ago and still run are counted without scanning the
//!   rest.
//!
//! Names cannot hold `\0` (AWS's naming rule refuses control characters). The index is
//! derived from the records: every write of a record syncs its entry afterwards, re-reading the
//! record under a per-execution lock, so the last sync after the last change always writes the
//! final status whatever the interleaving. A crash between a record's write and its sync leaves
//! the index behind; [`super::ExecutionRecords::repair_index`] at start-up repairs it (and fills
//! the index of a store written before it existed).

use std::sync::Mutex;

use super::catalog::Update;
use super::executions::{checked, is_running, ExecutionRecords, IndexedFields, Summary, Visit};
use super::limits;
use super::PersistenceError;

/// Tree of execution records.
pub const EXECUTIONS: &str = "sfn_executions";
/// Tree of every execution by state machine and start.
pub const BY_START: &str = "sfn_exec_by_start";
/// Tree of the running executions by state machine and start.
pub const RUNNING: &str = "sfn_exec_running";

/// Striped locks serialising the syncs of one execution.
const STRIPES: usize = 64;

/// The execution trees.
pub struct SledExecutions {
    records: sled::Tree,
    by_start: sled::Tree,
    running: sled::Tree,
    locks: Vec<Mutex<()>>,
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

impl SledExecutions {
    /// Opens (creating) the trees in `db`.
    pub fn open(db: &sled::Db) -> Result<Self, PersistenceError> {
        Ok(SledExecutions {
            records: db.open_tree(EXECUTIONS)?,
            by_start: db.open_tree(BY_START)?,
            running: db.open_tree(RUNNING)?,
            locks: (0..STRIPES).map(|_| Mutex::new(())).collect(),
        })
    }

    fn lock(&self, arn: &str) -> std::sync::MutexGuard<'_, ()> {
        let h = blake3::hash(arn.as_bytes());
        let i = h.as_bytes()[0] as usize % STRIPES;
        self.locks[i].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes a record's status into the index (both trees), if it differs.
    fn put_index(&self, rec: &IndexedFields) -> Result<(), PersistenceError> {
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

    /// Brings the index in line with the record of `arn` as it is now; a failure is logged:
    /// the record's own write already succeeded, and the next start-up repairs the index.
    fn sync(&self, arn: &str) {
        let r = (|| {
            let _g = self.lock(arn);
            let Some(v) = self.records.get(arn.as_bytes())? else {
                return Ok(());
            };
            match IndexedFields::of(&v) {
                Ok(rec) => self.put_index(&rec),
                Err(e) => {
                    tracing::error!(execution = %arn, "unreadable execution record, not indexed: {e}");
                    Ok(())
                }
            }
        })();
        if let Err(e) = r {
            tracing::error!(execution = %arn, "cannot update the execution index: {e}");
        }
    }
}

impl ExecutionRecords for SledExecutions {
    fn execution(&self, arn: &str) -> Result<Option<Vec<u8>>, PersistenceError> {
        limits::key("execution ARN", arn)?;
        Ok(self.records.get(arn.as_bytes())?.map(|v| v.to_vec()))
    }

    fn insert_execution(
        &self,
        arn: &str,
        json: &[u8],
    ) -> Result<Option<Vec<u8>>, PersistenceError> {
        checked(arn, json)?;
        match self
            .records
            .compare_and_swap(arn.as_bytes(), None as Option<&[u8]>, Some(json))?
        {
            Ok(()) => {
                self.sync(arn);
                Ok(None)
            }
            Err(c) => Ok(Some(c.current.map(|b| b.to_vec()).unwrap_or_default())),
        }
    }

    fn put_execution(&self, arn: &str, json: &[u8]) -> Result<(), PersistenceError> {
        checked(arn, json)?;
        self.records.insert(arn.as_bytes(), json)?;
        self.sync(arn);
        Ok(())
    }

    fn update_execution(&self, arn: &str, f: Update<'_>) -> Result<(), PersistenceError> {
        limits::key("execution ARN", arn)?;
        // a new record that fails the checks leaves the old one in place, and is reported
        let mut refused = None;
        let old = self.records.fetch_and_update(arn.as_bytes(), |cur| {
            let new = f(cur);
            match new.as_deref().map(|n| checked(arn, n)) {
                Some(Err(e)) => {
                    refused = Some(e);
                    cur.map(<[u8]>::to_vec)
                }
                _ => {
                    refused = None;
                    new
                }
            }
        })?;
        if let Some(e) = refused {
            return Err(e);
        }
        if old.is_some() {
            self.sync(arn);
        }
        Ok(())
    }

    fn each_execution(&self, arn_prefix: &str, visit: Visit<'_>) -> Result<(), PersistenceError> {
        limits::key("execution ARN prefix", arn_prefix)?;
        for item in self.records.scan_prefix(arn_prefix.as_bytes()) {
            let (_, v) = item?;
            if !visit(&v) {
                break;
            }
        }
        Ok(())
    }

    fn summary(&self, sm: &str, since_ms: i64) -> Result<Summary, PersistenceError> {
        limits::key("state machine name", sm)?;
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

    fn repair_index(&self, json: &[u8]) -> Result<(), PersistenceError> {
        self.put_index(&IndexedFields::of(json)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn arn(sm: &str, name: &str) -> String {
        format!("arn:aws:states:us-east-1:000000000000:execution:{sm}:{name}")
    }

    fn rec(sm: &str, name: &str, start_ms: i64, status: &str) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "arn": arn(sm, name), "state_machine_name": sm, "name": name,
            "start_ms": start_ms, "status": status, "input": "{}",
        }))
        .unwrap()
    }

    fn write(s: &SledExecutions, sm: &str, name: &str, start_ms: i64, status: &str) {
        s.put_execution(&arn(sm, name), &rec(sm, name, start_ms, status))
            .unwrap();
    }

    fn counts(s: &Summary) -> Vec<(&str, u64)> {
        s.counts.iter().map(|(k, v)| (k.as_str(), *v)).collect()
    }

    #[test]
    fn a_stale_index_is_repaired_from_the_records() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let s = SledExecutions::open(&db).unwrap();
        write(&s, "sm", "e", 1_000, "RUNNING");
        // the record changed, the process died before the index followed
        db.open_tree(EXECUTIONS)
            .unwrap()
            .insert(
                arn("sm", "e").as_bytes(),
                rec("sm", "e", 1_000, "SUCCEEDED"),
            )
            .unwrap();
        assert_eq!(counts(&s.summary("sm", 0).unwrap()), [("RUNNING", 1)]);
        let mut all = Vec::new();
        s.each_execution("", &mut |v| {
            all.push(v.to_vec());
            true
        })
        .unwrap();
        for v in all {
            s.repair_index(&v).unwrap();
        }
        assert_eq!(counts(&s.summary("sm", 0).unwrap()), [("SUCCEEDED", 1)]);
        assert_eq!(s.summary("sm", 5_000).unwrap().counts.len(), 0);
    }

    /// Records and index entries written in the server's layout, with keys built by hand, are
    /// read back unchanged; an insert never overwrites.
    #[test]
    fn opens_executions_written_in_the_servers_layout() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = sled::open(dir.path()).unwrap();
            let t = db.open_tree("sfn_executions").unwrap();
            t.insert(arn("sm", "a").as_bytes(), rec("sm", "a", 5, "SUCCEEDED"))
                .unwrap();
            t.insert(arn("sm", "b").as_bytes(), rec("sm", "b", 7, "RUNNING"))
                .unwrap();
            t.insert(arn("sm2", "c").as_bytes(), rec("sm2", "c", 9, "FAILED"))
                .unwrap();
            let mut k = b"sm\0".to_vec();
            k.extend_from_slice(&((7u64) ^ (1 << 63)).to_be_bytes());
            k.extend_from_slice(b"b");
            db.open_tree("sfn_exec_by_start")
                .unwrap()
                .insert(k.clone(), &b"RUNNING"[..])
                .unwrap();
            db.open_tree("sfn_exec_running")
                .unwrap()
                .insert(k, &b"RUNNING"[..])
                .unwrap();
            db.flush().unwrap();
        }
        let db = sled::open(dir.path()).unwrap();
        let s = SledExecutions::open(&db).unwrap();
        let mut of_sm = Vec::new();
        s.each_execution(&arn("sm", ""), &mut |v| {
            of_sm.push(IndexedFields::of(v).unwrap().name);
            true
        })
        .unwrap();
        assert_eq!(of_sm, ["a", "b"]);
        let sum = s.summary("sm", 0).unwrap();
        assert_eq!(counts(&sum), [("RUNNING", 1)]);
        assert_eq!(sum.last_start_ms, Some(7));
        assert_eq!(
            s.insert_execution(&arn("sm", "a"), &rec("sm", "a", 1, "RUNNING"))
                .unwrap(),
            Some(rec("sm", "a", 5, "SUCCEEDED"))
        );
    }
}
