//! [`JournalStore`]: every execution's journal, written straight to a sled tree or through a
//! write-back buffer in front of any [`JournalBackend`] (a sled tree, or PostgreSQL's
//! `sfn_journal` table), so that execution threads never write the database themselves.
//!
//! With a buffer, puts, removals, compare-and-set completions and prefix clears go to an
//! in-memory map that reads consult first; [`JournalStore::apply`] moves it into the backend
//! (one transaction per apply on PostgreSQL) and is registered with the
//! [`super::GroupCommit`] as a flush hook, so whatever a commit covers is durable when the
//! commit returns, exactly as if it had been written straight through. The writes of one flush
//! window are applied by one thread, and a key written several times in a window (an attempt's
//! `Started` marker, then its result) is written once.
//!
//! This module knows bytes and prefixes only; what an entry means is [`super::Journal`]'s.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::persistence::PersistenceError;

/// Key -> new value (`None`: removed).
pub type Writes = HashMap<Vec<u8>, Option<Vec<u8>>>;

/// Stored (key, value) pairs, in key order.
pub type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// Where a buffered [`JournalStore`]'s writes land.
pub trait JournalBackend: Send + Sync {
    /// The stored value of `key`.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, PersistenceError>;
    /// Every stored (key, value) under `prefix` (an execution's `ARN \0`), in key order.
    fn scan_prefix(&self, prefix: &[u8]) -> Result<Pairs, PersistenceError>;
    /// Removes every key under each of `clears`, then applies `writes` (at once where the
    /// database has transactions).
    fn apply(&self, clears: &[Vec<u8>], writes: &Writes) -> Result<(), PersistenceError>;
    /// On a database several nodes share: sets `key` to `new` in the database itself, at once
    /// and atomically, unless `keep` says its stored value must stay (`Some(written)`); `None`
    /// where the buffer is the only writer (a process's own store).
    fn update_unless_now(
        &self,
        _key: &[u8],
        _new: Option<&[u8]>,
        _keep: &(dyn Fn(Option<&[u8]>) -> bool + Sync),
    ) -> Result<Option<bool>, PersistenceError> {
        Ok(None)
    }
}

impl JournalBackend for sled::Tree {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, PersistenceError> {
        Ok(sled::Tree::get(self, key)?.map(|v| v.to_vec()))
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<Pairs, PersistenceError> {
        Ok(sled::Tree::scan_prefix(self, prefix)
            .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())))
            .collect::<Result<_, _>>()?)
    }

    fn apply(&self, clears: &[Vec<u8>], writes: &Writes) -> Result<(), PersistenceError> {
        for p in clears {
            remove_prefix(self, p)?;
        }
        for (k, v) in writes {
            match v {
                Some(v) => self.insert(k.as_slice(), v.as_slice())?,
                None => self.remove(k.as_slice())?,
            };
        }
        Ok(())
    }
}

/// Removes every key under `prefix`, one at a time: sled's batches take a tree-wide write lock
/// that stalls every other execution's journal reads.
fn remove_prefix(tree: &sled::Tree, prefix: &[u8]) -> sled::Result<()> {
    let keys: Vec<sled::IVec> = tree.scan_prefix(prefix).keys().collect::<Result<_, _>>()?;
    for k in keys {
        tree.remove(k)?;
    }
    Ok(())
}

#[derive(Default)]
struct Batch {
    /// Prefixes removed; applied before `writes` (a write queued after a clear survives it).
    clears: Vec<Vec<u8>>,
    /// Key -> new value (`None`: removed).
    writes: Writes,
}

impl Batch {
    fn is_empty(&self) -> bool {
        self.clears.is_empty() && self.writes.is_empty()
    }

    /// What this batch says about `key`: `Some(value or None)` when it decides it.
    fn lookup(&self, key: &[u8]) -> Option<Option<Vec<u8>>> {
        if let Some(v) = self.writes.get(key) {
            return Some(v.clone());
        }
        if self.clears.iter().any(|p| key.starts_with(p)) {
            return Some(None);
        }
        None
    }
}

#[derive(Default)]
struct State {
    /// Writes since the last apply took the batch.
    current: Batch,
    /// The batch being applied right now (still answered from memory until it is stored).
    in_flight: Option<Arc<Batch>>,
}

#[derive(Default)]
struct WriteBack {
    st: Mutex<State>,
    /// Serialises appliers.
    applying: Mutex<()>,
}

#[derive(Clone)]
enum Mode {
    /// Straight to a sled tree.
    Direct(sled::Tree),
    /// Through the buffer to a backend.
    Buffered(Arc<WriteBack>, Arc<dyn JournalBackend>),
}

/// The journal, written straight through or through a write-back buffer.
#[derive(Clone)]
pub struct JournalStore {
    mode: Mode,
}

impl JournalStore {
    /// Writes go straight to sled.
    pub fn direct(tree: sled::Tree) -> Self {
        JournalStore {
            mode: Mode::Direct(tree),
        }
    }

    /// Writes wait in memory until [`JournalStore::apply`] (register it with the group
    /// committer: `commit.before_flush(store.flush_hook())`).
    pub fn buffered(tree: sled::Tree) -> Self {
        Self::buffered_on(Arc::new(tree))
    }

    /// [`JournalStore::buffered`] in front of any backend.
    pub fn buffered_on(backend: Arc<dyn JournalBackend>) -> Self {
        JournalStore {
            mode: Mode::Buffered(Arc::new(WriteBack::default()), backend),
        }
    }

    /// A flush hook that applies the buffer (its failure fails the commits of that flush).
    pub fn flush_hook(&self) -> super::commit::FlushHook {
        let me = self.clone();
        Arc::new(move || {
            me.apply()
                .map_err(|e| format!("cannot write the journal: {e}"))
        })
    }

    /// Moves every buffered write into the backend (a no-op without a buffer).
    pub fn apply(&self) -> Result<(), PersistenceError> {
        let Mode::Buffered(_, backend) = &self.mode else {
            return Ok(());
        };
        let backend = backend.clone();
        self.apply_with(|clears, writes| {
            if clears.is_empty() && writes.is_empty() {
                return Ok(());
            }
            backend.apply(clears, writes)
        })
    }

    /// Hands every buffered write (prefix clears, then writes; possibly none) to `write`,
    /// which must make them durable in the backend — with other writes of its own in the same
    /// transaction (the history of the same flush, on PostgreSQL); on its failure they stay
    /// buffered. Without a buffer, `write` gets nothing to write.
    pub fn apply_with(
        &self,
        write: impl FnOnce(&[Vec<u8>], &Writes) -> Result<(), PersistenceError>,
    ) -> Result<(), PersistenceError> {
        let Mode::Buffered(wb, _) = &self.mode else {
            return write(&[], &Writes::new());
        };
        let _g = wb.applying.lock().unwrap_or_else(|e| e.into_inner());
        let batch = {
            let mut st = wb.st.lock().unwrap_or_else(|e| e.into_inner());
            let b = Arc::new(std::mem::take(&mut st.current));
            if !b.is_empty() {
                st.in_flight = Some(b.clone());
            }
            b
        };
        let r = write(&batch.clears, &batch.writes);
        let mut st = wb.st.lock().unwrap_or_else(|e| e.into_inner());
        st.in_flight = None;
        if r.is_err() {
            // keep what was not applied: writes queued since take precedence
            let b = Arc::try_unwrap(batch).unwrap_or_else(|a| Batch {
                clears: a.clears.clone(),
                writes: a.writes.clone(),
            });
            let newer = std::mem::take(&mut st.current);
            st.current = b;
            st.current.clears.extend(newer.clears);
            st.current.writes.extend(newer.writes);
        }
        r
    }

    fn lookup(st: &State, key: &[u8]) -> Option<Option<Vec<u8>>> {
        if let Some(v) = st.current.lookup(key) {
            return Some(v);
        }
        st.in_flight.as_ref().and_then(|b| b.lookup(key))
    }

    /// The value of `key`: buffered, else stored.
    fn current(
        st: &State,
        backend: &dyn JournalBackend,
        key: &[u8],
    ) -> Result<Option<Vec<u8>>, PersistenceError> {
        match Self::lookup(st, key) {
            Some(v) => Ok(v),
            None => backend.get(key),
        }
    }

    /// The value of `key`.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, PersistenceError> {
        match &self.mode {
            Mode::Direct(tree) => JournalBackend::get(tree, key),
            Mode::Buffered(wb, backend) => {
                {
                    let st = wb.st.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some(v) = Self::lookup(&st, key) {
                        return Ok(v);
                    }
                }
                backend.get(key)
            }
        }
    }

    /// Sets `key`.
    pub fn insert(&self, key: Vec<u8>, value: Vec<u8>) -> Result<(), PersistenceError> {
        match &self.mode {
            Mode::Direct(tree) => {
                tree.insert(key, value)?;
            }
            Mode::Buffered(wb, _) => {
                let mut st = wb.st.lock().unwrap_or_else(|e| e.into_inner());
                st.current.writes.insert(key, Some(value));
            }
        }
        Ok(())
    }

    /// Removes `key`.
    pub fn remove(&self, key: Vec<u8>) -> Result<(), PersistenceError> {
        match &self.mode {
            Mode::Direct(tree) => {
                tree.remove(key)?;
            }
            Mode::Buffered(wb, _) => {
                let mut st = wb.st.lock().unwrap_or_else(|e| e.into_inner());
                st.current.writes.insert(key, None);
            }
        }
        Ok(())
    }

    /// Replaces the value of `key` with `new` (`None`: removes it) unless `keep` says the
    /// current value must stay; returns whether it was replaced. Atomic against every other
    /// writer of this store.
    pub fn update_unless(
        &self,
        key: &[u8],
        new: Option<Vec<u8>>,
        keep: impl Fn(Option<&[u8]>) -> bool,
    ) -> Result<bool, PersistenceError> {
        match &self.mode {
            Mode::Direct(tree) => loop {
                let cur = tree.get(key)?;
                if keep(cur.as_deref()) {
                    return Ok(false);
                }
                if tree.compare_and_swap(key, cur, new.as_deref())?.is_ok() {
                    return Ok(true);
                }
            },
            Mode::Buffered(wb, backend) => {
                let mut st = wb.st.lock().unwrap_or_else(|e| e.into_inner());
                let cur = Self::current(&st, backend.as_ref(), key)?;
                if keep(cur.as_deref()) {
                    return Ok(false);
                }
                st.current.writes.insert(key.to_vec(), new);
                Ok(true)
            }
        }
    }

    /// [`JournalStore::update_unless`] for writers on any node (answers from outside): on a
    /// shared database the value is written there at once, compared with what any node
    /// stored; elsewhere it is buffered as usual.
    ///
    /// A write of `key` this store still holds is this node's newest value: it decides first,
    /// and when the database holds nothing yet it is the only value there is (the database's
    /// `None` does not count against it). A batch being applied right now is waited for, so
    /// the database's answer covers everything this store wrote before.
    pub fn update_unless_now(
        &self,
        key: &[u8],
        new: Option<Vec<u8>>,
        keep: impl Fn(Option<&[u8]>) -> bool + Sync,
    ) -> Result<bool, PersistenceError> {
        if let Mode::Buffered(wb, backend) = &self.mode {
            let mut st = wb.st.lock().unwrap_or_else(|e| e.into_inner());
            if st
                .in_flight
                .as_ref()
                .is_some_and(|b| b.lookup(key).is_some())
            {
                // (lock order: appliers take `applying`, then `st`)
                drop(st);
                let _landed = wb.applying.lock().unwrap_or_else(|e| e.into_inner());
                st = wb.st.lock().unwrap_or_else(|e| e.into_inner());
            }
            let buffered = st.current.lookup(key);
            let done = match &buffered {
                Some(v) if keep(v.as_deref()) => return Ok(false),
                // stored: the database's value decides (an answer another node wrote stays);
                // nothing stored: the buffered value, just decided on, was all there was
                Some(_) => backend
                    .update_unless_now(key, new.as_deref(), &|cur| cur.is_some() && keep(cur))?,
                None => backend.update_unless_now(key, new.as_deref(), &keep)?,
            };
            if let Some(done) = done {
                if done {
                    st.current.writes.remove(key);
                }
                return Ok(done);
            }
        }
        self.update_unless(key, new, keep)
    }

    /// Like [`JournalStore::update_unless`] with a value that is not written here: unless
    /// `keep` refuses, any write of `key` still buffered is dropped and `elsewhere` is called
    /// with the value, under the same lock (it must make the value durable by the next flush
    /// and visible to later readers on its own); true when it was called.
    pub fn divert_unless(
        &self,
        key: &[u8],
        value: Vec<u8>,
        keep: impl Fn(Option<&[u8]>) -> bool,
        elsewhere: impl FnOnce(Vec<u8>),
    ) -> Result<bool, PersistenceError> {
        match &self.mode {
            Mode::Direct(tree) => {
                if keep(tree.get(key)?.as_deref()) {
                    return Ok(false);
                }
                elsewhere(value);
                Ok(true)
            }
            Mode::Buffered(wb, backend) => {
                let mut st = wb.st.lock().unwrap_or_else(|e| e.into_inner());
                let cur = Self::current(&st, backend.as_ref(), key)?;
                if keep(cur.as_deref()) {
                    return Ok(false);
                }
                st.current.writes.remove(key);
                elsewhere(value);
                Ok(true)
            }
        }
    }

    /// Every (key, value) under `prefix`, in key order.
    pub fn scan_prefix(&self, prefix: &[u8]) -> Result<Pairs, PersistenceError> {
        self.apply()?;
        match &self.mode {
            Mode::Direct(tree) => JournalBackend::scan_prefix(tree, prefix),
            Mode::Buffered(_, backend) => backend.scan_prefix(prefix),
        }
    }

    /// Removes every key under `prefix`.
    pub fn clear_prefix(&self, prefix: &[u8]) -> Result<(), PersistenceError> {
        match &self.mode {
            Mode::Direct(tree) => remove_prefix(tree, prefix)?,
            Mode::Buffered(wb, _) => {
                let mut st = wb.st.lock().unwrap_or_else(|e| e.into_inner());
                st.current.writes.retain(|k, _| !k.starts_with(prefix));
                st.current.clears.push(prefix.to_vec());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stores() -> (tempfile::TempDir, JournalStore, sled::Tree) {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let t = db.open_tree("j").unwrap();
        (dir, JournalStore::buffered(t.clone()), t)
    }

    #[test]
    fn buffered_writes_are_read_back_before_and_after_apply() {
        let (_d, s, tree) = stores();
        s.insert(b"a\0k1".to_vec(), b"1".to_vec()).unwrap();
        s.insert(b"a\0k2".to_vec(), b"2".to_vec()).unwrap();
        assert!(tree.is_empty(), "nothing reaches sled before apply");
        assert_eq!(s.get(b"a\0k1").unwrap().as_deref(), Some(&b"1"[..]));
        s.apply().unwrap();
        assert_eq!(tree.len(), 2);
        assert_eq!(s.get(b"a\0k2").unwrap().as_deref(), Some(&b"2"[..]));
        s.remove(b"a\0k2".to_vec()).unwrap();
        assert_eq!(
            s.get(b"a\0k2").unwrap(),
            None,
            "a buffered removal hides sled's value"
        );
        s.apply().unwrap();
        assert_eq!(tree.len(), 1);
    }

    #[test]
    fn update_unless_keeps_a_final_value_and_clears_hide_older_writes() {
        let (_d, s, tree) = stores();
        let is_final = |v: Option<&[u8]>| v == Some(&b"ok"[..]);
        assert!(s
            .update_unless(b"a\0k", Some(b"started".to_vec()), is_final)
            .unwrap());
        assert!(s
            .update_unless(b"a\0k", Some(b"ok".to_vec()), is_final)
            .unwrap());
        assert!(!s
            .update_unless(b"a\0k", Some(b"late".to_vec()), is_final)
            .unwrap());
        s.apply().unwrap();
        assert_eq!(tree.get(b"a\0k").unwrap().as_deref(), Some(&b"ok"[..]));
        assert!(
            !s.update_unless(b"a\0k", None, is_final).unwrap(),
            "sled's value counts too"
        );
        tree.insert(b"b\0old", &b"x"[..]).unwrap();
        s.insert(b"b\0new".to_vec(), b"y".to_vec()).unwrap();
        s.clear_prefix(b"b\0").unwrap();
        assert_eq!(s.get(b"b\0old").unwrap(), None);
        assert_eq!(s.get(b"b\0new").unwrap(), None);
        s.insert(b"b\0after".to_vec(), b"z".to_vec()).unwrap();
        s.apply().unwrap();
        let left: Vec<_> = tree
            .scan_prefix(b"b\0")
            .keys()
            .map(|k| k.unwrap().to_vec())
            .collect();
        assert_eq!(
            left,
            vec![b"b\0after".to_vec()],
            "a write after the clear survives it"
        );
        assert_eq!(s.scan_prefix(b"a\0").unwrap().len(), 1);
    }

    /// A database several nodes share, in memory: `update_unless_now` decides on the stored
    /// value at once; `apply` waits while `hold` is set (a batch in flight), and, as
    /// PostgreSQL's upsert does, never lets a buffered `started` replace a stored result.
    #[derive(Default)]
    struct SharedDb {
        rows: Mutex<std::collections::BTreeMap<Vec<u8>, Vec<u8>>>,
        hold: Mutex<Option<std::sync::mpsc::Receiver<()>>>,
        applying: Mutex<Option<std::sync::mpsc::Sender<()>>>,
    }

    impl JournalBackend for SharedDb {
        fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, PersistenceError> {
            Ok(self.rows.lock().unwrap().get(key).cloned())
        }

        fn scan_prefix(&self, prefix: &[u8]) -> Result<Pairs, PersistenceError> {
            let rows = self.rows.lock().unwrap();
            Ok(rows
                .iter()
                .filter(|(k, _)| k.starts_with(prefix))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect())
        }

        fn apply(&self, clears: &[Vec<u8>], writes: &Writes) -> Result<(), PersistenceError> {
            if let Some(tx) = self.applying.lock().unwrap().take() {
                tx.send(()).unwrap();
            }
            if let Some(rx) = self.hold.lock().unwrap().take() {
                rx.recv().unwrap();
            }
            let mut rows = self.rows.lock().unwrap();
            rows.retain(|k, _| !clears.iter().any(|p| k.starts_with(p)));
            for (k, v) in writes {
                match v {
                    Some(v) if v == b"started" && rows.get(k).is_some_and(|o| o == b"ok") => {}
                    Some(v) => {
                        rows.insert(k.clone(), v.clone());
                    }
                    None => {
                        rows.remove(k);
                    }
                }
            }
            Ok(())
        }

        fn update_unless_now(
            &self,
            key: &[u8],
            new: Option<&[u8]>,
            keep: &(dyn Fn(Option<&[u8]>) -> bool + Sync),
        ) -> Result<Option<bool>, PersistenceError> {
            let mut rows = self.rows.lock().unwrap();
            if keep(rows.get(key).map(Vec::as_slice)) {
                return Ok(Some(false));
            }
            match new {
                Some(v) => rows.insert(key.to_vec(), v.to_vec()),
                None => rows.remove(key),
            };
            Ok(Some(true))
        }
    }

    fn is_started(v: Option<&[u8]>) -> bool {
        v == Some(&b"started"[..])
    }

    fn holds_result(v: Option<&[u8]>) -> bool {
        v == Some(&b"ok"[..])
    }

    #[test]
    fn a_marker_only_buffered_is_removed_and_an_answer_replaces_it_at_once() {
        let db = Arc::new(SharedDb::default());
        let s = JournalStore::buffered_on(db.clone());
        // the owner's marker, not yet applied; its removal (the attempt suspends) must not
        // leave it to be applied later, though the database holds nothing to compare with
        s.insert(b"a\0k".to_vec(), b"started".to_vec()).unwrap();
        assert!(s
            .update_unless_now(b"a\0k", None, |v| !is_started(v))
            .unwrap());
        s.apply().unwrap();
        assert_eq!(
            db.get(b"a\0k").unwrap(),
            None,
            "the marker was applied after its removal"
        );
        // an answer from outside while the marker is buffered: stored at once, and the marker
        // applied after it does not undo it
        s.insert(b"a\0k".to_vec(), b"started".to_vec()).unwrap();
        assert!(s
            .update_unless_now(b"a\0k", Some(b"ok".to_vec()), holds_result)
            .unwrap());
        assert_eq!(db.get(b"a\0k").unwrap().as_deref(), Some(&b"ok"[..]));
        s.apply().unwrap();
        assert_eq!(s.get(b"a\0k").unwrap().as_deref(), Some(&b"ok"[..]));
        // another node's answer stays: neither a removal of the marker nor a second answer
        // replaces it
        s.insert(b"a\0j".to_vec(), b"started".to_vec()).unwrap();
        db.rows
            .lock()
            .unwrap()
            .insert(b"a\0j".to_vec(), b"ok".to_vec());
        assert!(!s
            .update_unless_now(b"a\0j", None, |v| !is_started(v))
            .unwrap());
        assert!(!s
            .update_unless_now(b"a\0j", Some(b"late".to_vec()), holds_result)
            .unwrap());
        s.apply().unwrap();
        assert_eq!(db.get(b"a\0j").unwrap().as_deref(), Some(&b"ok"[..]));
    }

    #[test]
    fn a_marker_being_applied_is_removed_once_it_has_landed() {
        let db = Arc::new(SharedDb::default());
        let s = JournalStore::buffered_on(db.clone());
        let (release, hold) = std::sync::mpsc::channel();
        let (applying_tx, applying) = std::sync::mpsc::channel();
        *db.hold.lock().unwrap() = Some(hold);
        *db.applying.lock().unwrap() = Some(applying_tx);
        s.insert(b"a\0k".to_vec(), b"started".to_vec()).unwrap();
        let flusher = {
            let s = s.clone();
            std::thread::spawn(move || s.apply().unwrap())
        };
        // the marker is in flight: in no buffer and not yet in the database
        applying.recv().unwrap();
        let remover = {
            let s = s.clone();
            std::thread::spawn(move || s.update_unless_now(b"a\0k", None, |v| !is_started(v)))
        };
        std::thread::sleep(std::time::Duration::from_millis(100));
        release.send(()).unwrap();
        flusher.join().unwrap();
        assert!(remover.join().unwrap().unwrap());
        assert_eq!(
            db.get(b"a\0k").unwrap(),
            None,
            "the marker landed after its removal"
        );
    }

    #[test]
    fn direct_store_behaves_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let s = JournalStore::direct(db.open_tree("j").unwrap());
        let is_final = |v: Option<&[u8]>| v == Some(&b"ok"[..]);
        assert!(s
            .update_unless(b"a\0k", Some(b"ok".to_vec()), is_final)
            .unwrap());
        assert!(!s
            .update_unless(b"a\0k", Some(b"x".to_vec()), is_final)
            .unwrap());
        s.clear_prefix(b"a\0").unwrap();
        assert_eq!(s.get(b"a\0k").unwrap(), None);
    }
}
