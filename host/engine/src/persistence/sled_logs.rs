//! [`SledLog`]: an [`super::AppendLog`] in one sled tree, keyed by time (8 bytes, big-endian)
//! then a sequence number of the process (8 bytes, big-endian) — the layout of the server's
//! `sfn_audit` and `sfn_express_log` trees, which open unchanged. [`SledMapRuns`]: the
//! [`super::MapRunStore`] in tree `sfn_map_runs` (key: Map Run ARN).

use std::sync::atomic::{AtomicU64, Ordering};

use super::executions::Visit;
use super::limits;
use super::logs::AppendLog;
use super::map_runs::MapRunStore;
use super::PersistenceError;

/// Tree of the API audit log.
pub const AUDIT: &str = "sfn_audit";
/// Tree of the execution log.
pub const EXECUTION_LOG: &str = "sfn_express_log";
/// Tree of Map Run records.
pub const MAP_RUNS: &str = "sfn_map_runs";

/// A time-ordered log in one tree.
pub struct SledLog {
    tree: sled::Tree,
    seq: AtomicU64,
}

impl SledLog {
    /// Opens (creating) the log in tree `name` of `db`.
    pub fn open(db: &sled::Db, name: &str) -> Result<Self, PersistenceError> {
        Ok(SledLog {
            tree: db.open_tree(name)?,
            seq: AtomicU64::new(0),
        })
    }

    fn key(&self, time_ms: i64) -> [u8; 16] {
        let mut k = [0u8; 16];
        k[..8].copy_from_slice(&time_ms.to_be_bytes());
        k[8..].copy_from_slice(&self.seq.fetch_add(1, Ordering::Relaxed).to_be_bytes());
        k
    }
}

impl AppendLog for SledLog {
    fn append(&self, records: &[(i64, Vec<u8>)]) -> Result<(), PersistenceError> {
        for (_, v) in records {
            limits::record("log record", v)?;
        }
        if let [(t, v)] = records {
            self.tree.insert(self.key(*t), v.as_slice())?;
            return Ok(());
        }
        let mut batch = sled::Batch::default();
        for (t, v) in records {
            batch.insert(&self.key(*t), v.as_slice());
        }
        self.tree.apply_batch(batch)?;
        Ok(())
    }

    fn newest_first(&self, visit: Visit<'_>) -> Result<(), PersistenceError> {
        for item in self.tree.iter().rev() {
            let (_, v) = item?;
            if !visit(&v) {
                break;
            }
        }
        Ok(())
    }
}

/// Map Run records in one tree.
pub struct SledMapRuns {
    tree: sled::Tree,
}

impl SledMapRuns {
    /// Opens (creating) tree `sfn_map_runs` of `db`.
    pub fn open(db: &sled::Db) -> Result<Self, PersistenceError> {
        Ok(SledMapRuns {
            tree: db.open_tree(MAP_RUNS)?,
        })
    }
}

impl MapRunStore for SledMapRuns {
    fn map_run(&self, arn: &str) -> Result<Option<Vec<u8>>, PersistenceError> {
        limits::key("Map Run ARN", arn)?;
        Ok(self.tree.get(arn.as_bytes())?.map(|v| v.to_vec()))
    }

    fn insert_map_run(&self, arn: &str, json: &[u8]) -> Result<Option<Vec<u8>>, PersistenceError> {
        limits::key("Map Run ARN", arn)?;
        limits::record("Map Run record", json)?;
        match self
            .tree
            .compare_and_swap(arn.as_bytes(), None as Option<&[u8]>, Some(json))?
        {
            Ok(()) => Ok(None),
            Err(c) => Ok(Some(c.current.map(|b| b.to_vec()).unwrap_or_default())),
        }
    }

    fn put_map_run(&self, arn: &str, json: &[u8]) -> Result<(), PersistenceError> {
        limits::key("Map Run ARN", arn)?;
        limits::record("Map Run record", json)?;
        self.tree.insert(arn.as_bytes(), json)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn newest(log: &SledLog, n: usize) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        log.newest_first(&mut |v| {
            out.push(v.to_vec());
            out.len() < n
        })
        .unwrap();
        out
    }

    /// Records written in the server's layout (keys built by hand) read back newest first,
    /// and appends after them sort by time, then by append order within one millisecond.
    #[test]
    fn reads_the_servers_layout_newest_first_and_appends_in_order() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = sled::open(dir.path()).unwrap();
            let t = db.open_tree("sfn_audit").unwrap();
            for (ms, seq, v) in [(10i64, 0u64, "a"), (20, 1, "b")] {
                let mut k = ms.to_be_bytes().to_vec();
                k.extend_from_slice(&seq.to_be_bytes());
                t.insert(k, v.as_bytes()).unwrap();
            }
            db.flush().unwrap();
        }
        let db = sled::open(dir.path()).unwrap();
        let log = SledLog::open(&db, AUDIT).unwrap();
        assert_eq!(newest(&log, 10), [b"b".to_vec(), b"a".to_vec()]);
        log.append(&[(30, b"c".to_vec()), (30, b"d".to_vec())])
            .unwrap();
        log.append(&[(15, b"late".to_vec())]).unwrap();
        assert_eq!(
            newest(&log, 10),
            [b"d", b"c", b"b", &b"late"[..], b"a"].map(<[u8]>::to_vec)
        );
        assert_eq!(newest(&log, 1), [b"d".to_vec()]);
    }
}
