//! Group commit: writers append to sled, then wait in [`GroupCommit::commit`] until a flush that
//! started after their write has reached the disk (on a database with transactions, whose
//! writes all go through flush hooks, [`GroupCommit::hooks_only`]: until the hooks of such a
//! flush have committed). One thread flushes; every writer that arrived
//! while a flush was running shares the next one, so fsyncs are batched across executions and
//! nothing is acknowledged before it is on disk.
//!
//! Writers whose records need only be durable by the next commit (history events, task logs)
//! hand them to a [`FlushHook`] instead of writing to sled themselves: the flusher applies every
//! hook's pending writes, single-threaded, right before each flush, so they cost no contention
//! on the hot path and are on disk whenever any later commit returns.

use super::DurableError;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

struct State {
    /// Tickets handed out (one per commit call).
    requested: u64,
    /// Every ticket up to this one is durable.
    done: u64,
    /// Callers blocked in [`GroupCommit::commit`].
    waiting: u64,
    /// Flushes started so far; a commit is covered by flush number `started + 1` (the next to
    /// start: one already running took its target before the commit's ticket existed).
    started: u64,
    stop: bool,
    /// The last flush's error and number, if it failed: the commits it covered fail (later
    /// commits wait for a later flush).
    failed: Option<(u64, String)>,
}

/// How long a flush asked for by [`GroupCommit::nudge`] alone waits for more writes to share it.
const NUDGE_DELAY: std::time::Duration = std::time::Duration::from_millis(2);

/// Pending writes applied by the flusher right before each flush (see the module docs); an
/// error fails every commit that flush covers.
pub type FlushHook = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

struct Inner {
    /// The sled database to flush (`None`: the hooks' own commits are the durability).
    db: Option<sled::Db>,
    hooks: Mutex<Vec<FlushHook>>,
    st: Mutex<State>,
    wake_flusher: Condvar,
    /// Waiters for flush number `n` wait on `flushed[n % 2]`, so the end of one flush wakes
    /// only the commits it covered, not those that must wait for the next.
    flushed: [Condvar; 2],
    flushes: AtomicU64,
}

/// The process's group committer for one sled database.
pub struct GroupCommit {
    inner: Arc<Inner>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl GroupCommit {
    /// Starts the flusher thread for a sled database.
    pub fn start(db: sled::Db) -> Result<Self, DurableError> {
        Self::spawn(Some(db))
    }

    /// Starts a flusher that only runs the hooks: for a database whose writes are all made
    /// durable by the hooks' own commits (PostgreSQL).
    pub fn hooks_only() -> Result<Self, DurableError> {
        Self::spawn(None)
    }

    fn spawn(db: Option<sled::Db>) -> Result<Self, DurableError> {
        let inner = Arc::new(Inner {
            db,
            hooks: Mutex::new(Vec::new()),
            st: Mutex::new(State {
                requested: 0,
                done: 0,
                waiting: 0,
                started: 0,
                stop: false,
                failed: None,
            }),
            wake_flusher: Condvar::new(),
            flushed: [Condvar::new(), Condvar::new()],
            flushes: AtomicU64::new(0),
        });
        let i2 = inner.clone();
        let thread = std::thread::Builder::new()
            .name("weft-commit".into())
            .spawn(move || flusher(&i2))
            .map_err(|e| DurableError::Commit(format!("cannot start the commit thread: {e}")))?;
        Ok(GroupCommit {
            inner,
            thread: Some(thread),
        })
    }

    /// Registers writes to apply before every flush (and once more when the committer stops).
    pub fn before_flush(&self, hook: FlushHook) {
        self.inner
            .hooks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(hook);
    }

    /// Asks for a flush soon (within a couple of milliseconds, shared with whatever else is
    /// written meanwhile) without waiting for it.
    pub fn nudge(&self) {
        let mut st = self.inner.st.lock().unwrap_or_else(|e| e.into_inner());
        if !st.stop && st.requested == st.done {
            st.requested += 1;
            self.inner.wake_flusher.notify_one();
        }
    }

    /// Blocks until everything written before this call is durable.
    pub fn commit(&self) -> Result<(), DurableError> {
        let mut st = self.inner.st.lock().unwrap_or_else(|e| e.into_inner());
        if st.stop {
            drop(st);
            // the flusher is gone: flush here
            return self.inner.flush().map_err(DurableError::Commit);
        }
        st.requested += 1;
        let ticket = st.requested;
        let covering = st.started + 1;
        let cv = &self.inner.flushed[(covering % 2) as usize];
        self.inner.wake_flusher.notify_one();
        st.waiting += 1;
        let r = loop {
            if let Some((n, e)) = &st.failed {
                if *n >= covering {
                    break Err(DurableError::Commit(e.clone()));
                }
            }
            if st.done >= ticket {
                break Ok(());
            }
            st = cv.wait(st).unwrap_or_else(|e| e.into_inner());
        };
        st.waiting -= 1;
        r
    }

    /// How many flushes ran (each covering one or more commits).
    pub fn flushes(&self) -> u64 {
        self.inner.flushes.load(Ordering::Relaxed)
    }
}

impl Inner {
    /// Runs every hook (all of them, even after one failed), then flushes sled; the first
    /// error.
    fn flush(&self) -> Result<(), String> {
        let hooks = self.hooks.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut first = None;
        for h in hooks {
            if let Err(e) = h() {
                first.get_or_insert(e);
            }
        }
        if let Some(db) = &self.db {
            if let Err(e) = db.flush() {
                first.get_or_insert(e.to_string());
            }
        }
        first.map_or(Ok(()), Err)
    }
}

fn flusher(inner: &Inner) {
    loop {
        let target = {
            let mut st = inner.st.lock().unwrap_or_else(|e| e.into_inner());
            while st.requested == st.done && !st.stop {
                st = inner
                    .wake_flusher
                    .wait(st)
                    .unwrap_or_else(|e| e.into_inner());
            }
            // only nudges so far: let the writes of the next moments share this flush, unless
            // someone blocks on a commit meanwhile
            let deadline = std::time::Instant::now() + NUDGE_DELAY;
            while st.waiting == 0 && !st.stop {
                let now = std::time::Instant::now();
                if now >= deadline {
                    break;
                }
                st = inner
                    .wake_flusher
                    .wait_timeout(st, deadline - now)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            if st.requested == st.done && st.stop {
                drop(st);
                if let Err(e) = inner.flush() {
                    tracing::error!("group commit: last flush failed: {e}");
                }
                return;
            }
            st.started += 1;
            (st.requested, st.started)
        };
        let (target, n) = target;
        let r = inner.flush();
        inner.flushes.fetch_add(1, Ordering::Relaxed);
        let mut st = inner.st.lock().unwrap_or_else(|e| e.into_inner());
        match r {
            Ok(_) => {
                st.done = target;
                st.failed = None;
            }
            Err(e) => {
                // (its commits fail; what the hooks could not write they keep for the next flush)
                tracing::error!("group commit: flush failed: {e}");
                st.done = target;
                st.failed = Some((n, e));
            }
        }
        inner.flushed[(n % 2) as usize].notify_all();
    }
}

impl Drop for GroupCommit {
    fn drop(&mut self) {
        {
            let mut st = self.inner.st.lock().unwrap_or_else(|e| e.into_inner());
            st.stop = true;
            self.inner.wake_flusher.notify_one();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_are_batched_and_durable() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let gc = Arc::new(GroupCommit::start(db.clone()).unwrap());
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let (gc, db) = (gc.clone(), db.clone());
                std::thread::spawn(move || {
                    for i in 0..50u32 {
                        db.insert(format!("{t}/{i}"), &i.to_be_bytes()).unwrap();
                        gc.commit().unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(db.len(), 400);
        // 400 commits, but concurrent ones share flushes
        assert!(gc.flushes() <= 400, "{}", gc.flushes());
        assert!(gc.flushes() >= 1);
    }

    /// A hook that fails fails the commits of its flush (nothing is acknowledged that was not
    /// written), and a later flush whose hooks succeed clears the failure.
    #[test]
    fn a_failing_hook_fails_the_commit() {
        let gc = GroupCommit::hooks_only().unwrap();
        let fail = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let f2 = fail.clone();
        gc.before_flush(Arc::new(move || {
            if f2.load(Ordering::SeqCst) {
                Err("database unreachable".into())
            } else {
                Ok(())
            }
        }));
        let e = gc.commit().unwrap_err().to_string();
        assert!(e.contains("database unreachable"), "{e}");
        fail.store(false, Ordering::SeqCst);
        gc.commit().unwrap();
    }

    #[test]
    fn hooks_run_before_every_flush_and_at_stop() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let gc = GroupCommit::start(db.clone()).unwrap();
        let pending = Arc::new(Mutex::new(Vec::<u32>::new()));
        let (p2, db2) = (pending.clone(), db.clone());
        gc.before_flush(Arc::new(move || {
            for i in std::mem::take(&mut *p2.lock().unwrap()) {
                db2.insert(i.to_be_bytes(), &[]).unwrap();
            }
            Ok(())
        }));
        pending.lock().unwrap().push(1);
        gc.commit().unwrap();
        assert!(db.contains_key(1u32.to_be_bytes()).unwrap());
        pending.lock().unwrap().push(2);
        drop(gc);
        assert!(db.contains_key(2u32.to_be_bytes()).unwrap());
    }
}
