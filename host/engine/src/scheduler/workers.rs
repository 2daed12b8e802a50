//! The local worker pool that runs task instances: threads that grow and shrink between
//! `min_workers` and `max_workers` with the queue depth, like MWAA's worker autoscaling.
//!
//! A job submitted while no worker is idle starts a new worker (up to `max_workers`); a worker
//! idle for `idle_timeout` exits unless only `min_workers` are left. Workers live in a
//! [`std::thread::Scope`], so jobs may borrow the executor and the plugin host.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::Scope;
use std::time::Duration;

/// A unit of work.
pub type Job<'env> = Box<dyn FnOnce() + Send + 'env>;

struct Queue<'env> {
    jobs: Mutex<VecDeque<Job<'env>>>,
    ready: Condvar,
    workers: AtomicUsize,
    idle: AtomicUsize,
    peak: AtomicUsize,
    shutdown: std::sync::atomic::AtomicBool,
}

/// An autoscaling pool of worker threads inside a scope.
pub struct WorkerPool<'scope, 'env> {
    scope: &'scope Scope<'scope, 'env>,
    q: Arc<Queue<'env>>,
    min: usize,
    max: usize,
    idle_timeout: Duration,
}

impl<'scope, 'env> WorkerPool<'scope, 'env> {
    /// A pool with `min` workers started at once.
    pub fn new(
        scope: &'scope Scope<'scope, 'env>,
        min: usize,
        max: usize,
        idle_timeout: Duration,
    ) -> Self {
        let max = max.max(1);
        let pool = WorkerPool {
            scope,
            q: Arc::new(Queue {
                jobs: Mutex::new(VecDeque::new()),
                ready: Condvar::new(),
                workers: AtomicUsize::new(0),
                idle: AtomicUsize::new(0),
                peak: AtomicUsize::new(0),
                shutdown: std::sync::atomic::AtomicBool::new(false),
            }),
            min: min.min(max),
            max,
            idle_timeout,
        };
        for _ in 0..pool.min {
            pool.spawn();
        }
        pool
    }

    fn spawn(&self) {
        let n = self.q.workers.fetch_add(1, Ordering::SeqCst) + 1;
        self.q.peak.fetch_max(n, Ordering::SeqCst);
        let q = self.q.clone();
        let min = self.min;
        let idle_timeout = self.idle_timeout;
        tracing::debug!(workers = n, "worker started");
        self.scope.spawn(move || worker(q, min, idle_timeout));
    }

    /// Queue a job; starts a worker when none is idle and the pool may grow.
    pub fn submit(&self, job: Job<'env>) {
        let depth = {
            let mut g = self.q.jobs.lock().unwrap_or_else(|e| e.into_inner());
            g.push_back(job);
            g.len()
        };
        self.q.ready.notify_one();
        let idle = self.q.idle.load(Ordering::SeqCst);
        let workers = self.q.workers.load(Ordering::SeqCst);
        if depth > idle && workers < self.max {
            self.spawn();
        }
    }

    /// Workers alive now.
    pub fn workers(&self) -> usize {
        self.q.workers.load(Ordering::SeqCst)
    }

    /// Most workers alive at once so far.
    pub fn peak(&self) -> usize {
        self.q.peak.load(Ordering::SeqCst)
    }

    /// Jobs waiting for a worker.
    pub fn queue_depth(&self) -> usize {
        self.q.jobs.lock().map(|g| g.len()).unwrap_or(0)
    }
}

impl Drop for WorkerPool<'_, '_> {
    fn drop(&mut self) {
        self.q.shutdown.store(true, Ordering::SeqCst);
        self.q.ready.notify_all();
    }
}

fn worker(q: Arc<Queue<'_>>, min: usize, idle_timeout: Duration) {
    loop {
        let job = {
            let mut g = q.jobs.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if let Some(j) = g.pop_front() {
                    break Some(j);
                }
                if q.shutdown.load(Ordering::SeqCst) {
                    break None;
                }
                q.idle.fetch_add(1, Ordering::SeqCst);
                let (ng, res) = q
                    .ready
                    .wait_timeout(g, idle_timeout)
                    .unwrap_or_else(|e| e.into_inner());
                q.idle.fetch_sub(1, Ordering::SeqCst);
                g = ng;
                if res.timed_out() && g.is_empty() {
                    // Shrink: leave unless only the minimum is left.
                    let n = q.workers.load(Ordering::SeqCst);
                    if n > min
                        && q.workers
                            .compare_exchange(n, n - 1, Ordering::SeqCst, Ordering::SeqCst)
                            .is_ok()
                    {
                        tracing::debug!(workers = n - 1, "idle worker stopped");
                        return;
                    }
                }
            }
        };
        match job {
            Some(j) => {
                if std::panic::catch_unwind(std::panic::AssertUnwindSafe(j)).is_err() {
                    tracing::error!("a worker job panicked");
                }
            }
            None => {
                q.workers.fetch_sub(1, Ordering::SeqCst);
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn grows_with_queue_depth_and_shrinks_when_idle() {
        let (tx, rx) = mpsc::channel();
        std::thread::scope(|s| {
            let pool = WorkerPool::new(s, 1, 4, Duration::from_millis(50));
            assert_eq!(pool.workers(), 1);
            let gate = Arc::new((Mutex::new(false), Condvar::new()));
            for n in 0..8 {
                let tx = tx.clone();
                let gate = gate.clone();
                pool.submit(Box::new(move || {
                    let (m, c) = &*gate;
                    let mut open = m.lock().unwrap();
                    while !*open {
                        open = c.wait(open).unwrap();
                    }
                    tx.send(n).unwrap();
                }));
            }
            assert_eq!(pool.workers(), 4, "grew to max_workers with 8 queued jobs");
            {
                let (m, c) = &*gate;
                *m.lock().unwrap() = true;
                c.notify_all();
            }
            let mut got: Vec<i32> = (0..8).map(|_| rx.recv().unwrap()).collect();
            got.sort();
            assert_eq!(got, (0..8).collect::<Vec<_>>());
            let t0 = std::time::Instant::now();
            while pool.workers() > 1 && t0.elapsed() < Duration::from_secs(5) {
                std::thread::sleep(Duration::from_millis(10));
            }
            assert_eq!(pool.workers(), 1, "shrank back to min_workers");
            assert_eq!(pool.peak(), 4);
        });
    }
}
