//! The node's task dispatcher: where a sandboxed task runs when remote workers are connected.
//!
//! A task bound for a queue is [`TaskDispatch::submit`]ted and waits there until a worker that
//! listens to the queue takes it ([`TaskDispatch::take`], behind the long poll of
//! `POST /v1/worker/poll`). The taken try belongs to that worker alone: only it may heartbeat
//! and report it, and only under the try's `task_id` (its fencing id). A try whose worker
//! stops heartbeating is [`TaskDispatch::lost`]; once the node gives up on a try (lost,
//! cancelled, finished) its id is forgotten, so a late report is refused.
//!
//! [`MemoryDispatch`] keeps queues in the node's memory, as the sled backend's executions live
//! in one process; a shared-database implementation fits behind the same trait.

use crate::remote::{RemoteTask, TaskReport};
use std::collections::{HashMap, VecDeque};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a running try may go without a heartbeat before it is lost (default; the
/// `WEFT_WORKER_HEARTBEAT_TIMEOUT_MS` variable overrides).
pub const DEFAULT_HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one poll waits for a task (default; `WEFT_WORKER_POLL_WAIT_MS` overrides).
pub const POLL_WAIT: Duration = Duration::from_secs(20);

/// The poll wait from `WEFT_WORKER_POLL_WAIT_MS` (at most a minute), else [`POLL_WAIT`].
pub fn poll_wait_from_env() -> Duration {
    std::env::var("WEFT_WORKER_POLL_WAIT_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|ms| *ms > 0)
        .map_or(POLL_WAIT, |ms| Duration::from_millis(ms.min(60_000)))
}

/// Why the dispatcher refused a worker's call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DispatchError {
    /// The try is not (or no longer) running on this worker: finished, failed over, cancelled,
    /// or another worker's.
    #[error("task {task_id} is not running on worker {worker_id} (finished, failed over after lost heartbeats, cancelled, or never assigned to it); the result is discarded")]
    NotYours { task_id: String, worker_id: String },
    /// The worker id is registered to another access key.
    #[error("worker id {worker_id} belongs to another access key")]
    WorkerIdTaken { worker_id: String },
}

/// A connected worker, as `/metrics` and the UI show it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct WorkerView {
    pub worker_id: String,
    pub host: String,
    pub queues: Vec<String>,
    pub slots: u32,
    pub busy: u32,
    /// The tries running on it.
    pub tasks: Vec<String>,
    /// Milliseconds since it last polled or heartbeated.
    pub idle_ms: u64,
    /// It is draining (shutting down): it takes no more tasks, its running ones go on.
    pub draining: bool,
}

impl WorkerView {
    /// Its slots free to take a task: none while it drains (an autoscaler's idle capacity).
    pub fn idle_slots(&self) -> u32 {
        if self.draining {
            0
        } else {
            self.slots.saturating_sub(self.busy)
        }
    }
}

/// What the node's waiting thread learns about its try.
#[derive(Debug)]
pub enum Completion {
    /// The worker reported.
    Reported {
        report: Box<TaskReport>,
        worker: String,
    },
}

/// The dispatcher (see the module docs).
pub trait TaskDispatch: Send + Sync {
    /// Whether a task of `queue` goes to a worker rather than a local thread: a live worker
    /// listens to it, or the node runs no tasks itself.
    fn routes_remote(&self, queue: &str) -> bool;
    /// Queues `task`; the receiver gets its completion.
    fn submit(&self, task: RemoteTask) -> mpsc::Receiver<Completion>;
    /// Registers a poll of `worker` (on behalf of the access key `principal`) and hands it the
    /// oldest task of its queues, if any; also returns the depth left on its queues.
    fn take(
        &self,
        worker: &crate::remote::PollRequest,
        principal: &str,
    ) -> Result<(Option<Arc<RemoteTask>>, u64), DispatchError>;
    /// A heartbeat of a running try; `Ok(true)`: the node asks the worker to cancel it.
    fn heartbeat(
        &self,
        worker_id: &str,
        principal: &str,
        task_id: &str,
    ) -> Result<bool, DispatchError>;
    /// A worker's report: delivered to the waiting thread when the try is this worker's.
    fn report(&self, principal: &str, report: TaskReport) -> Result<(), DispatchError>;
    /// Session `session` of worker `worker_id` (the access key `principal`'s) takes no more
    /// tasks; its running tries go on. Wakes the polls waiting on the worker's queues (so its
    /// own answer at once).
    fn drain(&self, worker_id: &str, principal: &str, session: &str) -> Result<(), DispatchError>;
    /// Whether `poll` comes from a draining session: it is answered at once, with no task.
    fn is_draining(&self, poll: &crate::remote::PollRequest) -> bool;
    /// The node gives up on a try (StopExecution, shutdown): a queued try is dropped, a
    /// running one is asked to cancel at its next heartbeat; a report is no longer accepted.
    fn cancel(&self, task_id: &str);
    /// When the try has run without a heartbeat for longer than the timeout: the worker that
    /// had it (the try is then forgotten).
    fn lost(&self, task_id: &str) -> Option<String>;
    /// Connected workers.
    fn workers(&self) -> Vec<WorkerView>;
    /// Tasks waiting per queue.
    fn queue_depths(&self) -> Vec<(String, u64)>;
    /// Tries running on workers.
    fn running(&self) -> u64;
    /// Whether a worker has taken the try and the node still waits for it.
    fn is_running(&self, task_id: &str) -> bool;
    /// Whether a try running on a worker of the access key `principal` carries the packages
    /// archive `digest` (64 hex digits): the only archives that key may fetch.
    fn holds_packages(&self, principal: &str, digest: &str) -> bool;
    /// One per queue of `queues`, each woken once per task queued on it (a long poll waits on
    /// those of its queues): a task wakes one poll of its queue, not every waiting poll.
    fn wakeup(&self, queues: &[String]) -> Vec<Arc<tokio::sync::Notify>>;
    /// How long a running try may go without a heartbeat.
    fn heartbeat_timeout(&self) -> Duration;
    /// The latest round trips (queued to reported), oldest first.
    fn round_trips(&self) -> Vec<Duration>;
    /// How long one poll waits for a task.
    fn poll_wait(&self) -> Duration;
}

enum TryState {
    Queued,
    Running {
        worker: String,
        last_heartbeat: Instant,
    },
}

struct Try {
    /// Shared with the poll that hands it out (no copy of the message per take).
    task: Arc<RemoteTask>,
    queued_at: Instant,
    state: TryState,
    cancel: bool,
    done: mpsc::Sender<Completion>,
}

struct Worker {
    host: String,
    principal: String,
    queues: Vec<String>,
    slots: u32,
    busy: u32,
    last_seen: Instant,
    /// The session of its latest poll.
    session: Option<String>,
    /// The session that is draining (see [`TaskDispatch::drain`]).
    draining: Option<String>,
}

impl Worker {
    fn drains(&self, session: Option<&String>) -> bool {
        session.is_some() && self.draining.as_ref() == session
    }
}

#[derive(Default)]
struct Inner {
    queues: HashMap<String, VecDeque<String>>,
    tries: HashMap<String, Try>,
    workers: HashMap<String, Worker>,
    /// Per queue, what wakes one long poll of it (see [`TaskDispatch::wakeup`]).
    wakes: HashMap<String, Arc<tokio::sync::Notify>>,
    /// When abandoned tries were last swept (see [`SWEEP_EVERY`]).
    swept: Option<Instant>,
}

/// How often a poll sweeps the tries the node gave up on whose worker went silent (a sweep
/// walks every try, so not on every poll).
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// Round trips (queued to reported) kept for benchmarks and `/metrics`.
pub const ROUND_TRIPS_KEPT: usize = 65_536;

/// The in-memory dispatcher.
pub struct MemoryDispatch {
    inner: Mutex<Inner>,
    /// The latest round trips, microseconds.
    round_trips: Mutex<VecDeque<u32>>,
    heartbeat_timeout: Duration,
    poll_wait: Duration,
    local_tasks: bool,
}

impl MemoryDispatch {
    /// `local_tasks: false`: every task goes to a queue (`weft server --no-local-tasks`).
    pub fn new(heartbeat_timeout: Duration, local_tasks: bool) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            round_trips: Mutex::new(VecDeque::new()),
            heartbeat_timeout,
            poll_wait: poll_wait_from_env(),
            local_tasks,
        }
    }

    /// The heartbeat timeout from `WEFT_WORKER_HEARTBEAT_TIMEOUT_MS`, else the default.
    pub fn heartbeat_timeout_from_env() -> Duration {
        std::env::var("WEFT_WORKER_HEARTBEAT_TIMEOUT_MS")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|ms| *ms > 0)
            .map_or(DEFAULT_HEARTBEAT_TIMEOUT, Duration::from_millis)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A worker counts as connected while it polled or heartbeated within a poll's wait plus
    /// the heartbeat timeout.
    fn live(&self, w: &Worker) -> bool {
        w.last_seen.elapsed() < self.poll_wait + self.heartbeat_timeout
    }
}

impl TaskDispatch for MemoryDispatch {
    fn routes_remote(&self, queue: &str) -> bool {
        if !self.local_tasks {
            return true;
        }
        self.lock()
            .workers
            .values()
            .any(|w| self.live(w) && w.queues.iter().any(|q| q == queue))
    }

    fn submit(&self, task: RemoteTask) -> mpsc::Receiver<Completion> {
        let (tx, rx) = mpsc::channel();
        let wake = {
            let mut g = self.lock();
            let wake = g.wakes.entry(task.queue.clone()).or_default().clone();
            g.queues
                .entry(task.queue.clone())
                .or_default()
                .push_back(task.task_id.clone());
            g.tries.insert(
                task.task_id.clone(),
                Try {
                    task: Arc::new(task),
                    queued_at: Instant::now(),
                    state: TryState::Queued,
                    cancel: false,
                    done: tx,
                },
            );
            wake
        };
        // one poll of the queue (or, with none waiting, the next one)
        wake.notify_one();
        rx
    }

    fn take(
        &self,
        poll: &crate::remote::PollRequest,
        principal: &str,
    ) -> Result<(Option<Arc<RemoteTask>>, u64), DispatchError> {
        let mut g = self.lock();
        let inner = &mut *g;
        // tries the node gave up on whose worker went silent: nobody waits for them any more
        let timeout = self.heartbeat_timeout;
        if inner.swept.is_none_or(|t| t.elapsed() >= SWEEP_EVERY) {
            inner.swept = Some(Instant::now());
            inner.tries.retain(|_, t| {
                !(t.cancel
                    && matches!(t.state, TryState::Running { last_heartbeat, .. } if last_heartbeat.elapsed() > timeout))
            });
            // wakes no poll waits on any more (queue names come from callers: not kept forever)
            inner.wakes.retain(|_, n| Arc::strong_count(n) > 1);
        }
        let draining = match inner.workers.get_mut(&poll.worker_id) {
            Some(w) if w.principal != principal => {
                return Err(DispatchError::WorkerIdTaken {
                    worker_id: poll.worker_id.clone(),
                })
            }
            Some(w) => {
                // a worker polls with the same names every time: copy them only when changed
                if w.host != poll.host {
                    w.host = poll.host.clone();
                }
                if w.queues != poll.queues {
                    w.queues = poll.queues.clone();
                }
                w.slots = poll.slots;
                w.busy = poll.busy;
                w.last_seen = Instant::now();
                if w.session != poll.session {
                    w.session = poll.session.clone();
                }
                w.drains(poll.session.as_ref())
            }
            None => {
                inner.workers.insert(
                    poll.worker_id.clone(),
                    Worker {
                        host: poll.host.clone(),
                        principal: principal.to_string(),
                        queues: poll.queues.clone(),
                        slots: poll.slots,
                        busy: poll.busy,
                        last_seen: Instant::now(),
                        session: poll.session.clone(),
                        draining: None,
                    },
                );
                false
            }
        };
        // a draining session is handed nothing
        let open: &[String] = if draining { &[] } else { &poll.queues };
        let mut found = None;
        for q in open {
            let Some(ids) = inner.queues.get_mut(q) else {
                continue;
            };
            while let Some(id) = ids.pop_front() {
                // a cancelled try left its id behind
                if let Some(t) = inner.tries.get_mut(&id) {
                    t.state = TryState::Running {
                        worker: poll.worker_id.clone(),
                        last_heartbeat: Instant::now(),
                    };
                    found = Some(t.task.clone());
                    break;
                }
            }
            if found.is_some() {
                break;
            }
        }
        let mut depth = 0;
        for q in &poll.queues {
            let Some(ids) = inner.queues.get(q) else {
                continue;
            };
            depth += ids.len() as u64;
            // this poll may have taken the wakeup meant for a task still waiting (it listens to
            // several queues, or took from another one): pass it on to the queue's next poll
            if found.is_some() && !ids.is_empty() {
                if let Some(n) = inner.wakes.get(q) {
                    n.notify_one();
                }
            }
        }
        Ok((found, depth))
    }

    fn heartbeat(
        &self,
        worker_id: &str,
        principal: &str,
        task_id: &str,
    ) -> Result<bool, DispatchError> {
        let mut g = self.lock();
        let not_yours = || DispatchError::NotYours {
            task_id: task_id.to_string(),
            worker_id: worker_id.to_string(),
        };
        match g.workers.get_mut(worker_id) {
            Some(w) if w.principal == principal => w.last_seen = Instant::now(),
            _ => return Err(not_yours()),
        }
        let Some(t) = g.tries.get_mut(task_id) else {
            return Err(not_yours());
        };
        match &mut t.state {
            TryState::Running {
                worker,
                last_heartbeat,
            } if worker == worker_id => {
                *last_heartbeat = Instant::now();
                Ok(t.cancel)
            }
            _ => Err(not_yours()),
        }
    }

    fn report(&self, principal: &str, report: TaskReport) -> Result<(), DispatchError> {
        let mut g = self.lock();
        let not_yours = || DispatchError::NotYours {
            task_id: report.task_id.clone(),
            worker_id: report.worker_id.clone(),
        };
        let worker_name = match g.workers.get_mut(&report.worker_id) {
            Some(w) if w.principal == principal => {
                w.last_seen = Instant::now();
                format!("{}/{}", w.host, report.worker_id)
            }
            _ => return Err(not_yours()),
        };
        let mine = matches!(
            g.tries.get(&report.task_id).map(|t| &t.state),
            Some(TryState::Running { worker, .. }) if *worker == report.worker_id
        );
        if !mine {
            return Err(not_yours());
        }
        let Some(t) = g.tries.remove(&report.task_id) else {
            return Err(not_yours());
        };
        drop(g);
        {
            let us = t.queued_at.elapsed().as_micros().min(u32::MAX as u128) as u32;
            let mut rt = self.round_trips.lock().unwrap_or_else(|e| e.into_inner());
            if rt.len() == ROUND_TRIPS_KEPT {
                rt.pop_front();
            }
            rt.push_back(us);
        }
        // the waiting thread may be gone (the node gave up just now): nothing to deliver to
        let _ = t.done.send(Completion::Reported {
            report: Box::new(report),
            worker: worker_name,
        });
        Ok(())
    }

    fn drain(&self, worker_id: &str, principal: &str, session: &str) -> Result<(), DispatchError> {
        let mut g = self.lock();
        let inner = &mut *g;
        let queues = match inner.workers.get_mut(worker_id) {
            Some(w) if w.principal == principal => {
                w.draining = Some(session.to_string());
                w.last_seen = Instant::now();
                w.queues.clone()
            }
            Some(_) => {
                return Err(DispatchError::WorkerIdTaken {
                    worker_id: worker_id.to_string(),
                })
            }
            // never polled here: nothing to drain
            None => return Ok(()),
        };
        // its polls waiting on these queues look again, find it draining and answer
        for q in &queues {
            if let Some(n) = inner.wakes.get(q) {
                n.notify_waiters();
            }
        }
        Ok(())
    }

    fn is_draining(&self, poll: &crate::remote::PollRequest) -> bool {
        self.lock()
            .workers
            .get(&poll.worker_id)
            .is_some_and(|w| w.drains(poll.session.as_ref()))
    }

    fn cancel(&self, task_id: &str) {
        let mut g = self.lock();
        if let Some(t) = g.tries.get_mut(task_id) {
            match t.state {
                TryState::Queued => {
                    g.tries.remove(task_id);
                }
                TryState::Running { .. } => t.cancel = true,
            }
        }
    }

    fn lost(&self, task_id: &str) -> Option<String> {
        let mut g = self.lock();
        let worker = match &g.tries.get(task_id)?.state {
            TryState::Running {
                worker,
                last_heartbeat,
            } if last_heartbeat.elapsed() > self.heartbeat_timeout => worker.clone(),
            _ => return None,
        };
        g.tries.remove(task_id);
        let host = g.workers.get(&worker).map_or("?", |w| w.host.as_str());
        Some(format!("{host}/{worker}"))
    }

    fn workers(&self) -> Vec<WorkerView> {
        let g = self.lock();
        let mut out: Vec<WorkerView> = g
            .workers
            .iter()
            .filter(|(_, w)| self.live(w))
            .map(|(id, w)| WorkerView {
                worker_id: id.clone(),
                host: w.host.clone(),
                queues: w.queues.clone(),
                slots: w.slots,
                busy: w.busy,
                draining: w.drains(w.session.as_ref()),
                tasks: g
                    .tries
                    .iter()
                    .filter(|(_, t)| matches!(&t.state, TryState::Running { worker, .. } if worker == id))
                    .map(|(k, t)| format!("{} {} #{}", t.task.execution, t.task.state, k))
                    .collect(),
                idle_ms: w.last_seen.elapsed().as_millis() as u64,
            })
            .collect();
        out.sort_by(|a, b| a.worker_id.cmp(&b.worker_id));
        out
    }

    fn queue_depths(&self) -> Vec<(String, u64)> {
        let g = self.lock();
        let mut out: Vec<(String, u64)> = g
            .queues
            .iter()
            .map(|(q, ids)| {
                let n = ids.iter().filter(|id| g.tries.contains_key(*id)).count() as u64;
                (q.clone(), n)
            })
            .collect();
        out.sort();
        out
    }

    fn running(&self) -> u64 {
        self.lock()
            .tries
            .values()
            .filter(|t| matches!(t.state, TryState::Running { .. }))
            .count() as u64
    }

    fn is_running(&self, task_id: &str) -> bool {
        matches!(
            self.lock().tries.get(task_id).map(|t| &t.state),
            Some(TryState::Running { .. })
        )
    }

    fn holds_packages(&self, principal: &str, digest: &str) -> bool {
        let g = self.lock();
        g.tries.values().any(|t| {
            t.task.packages.as_deref() == Some(digest)
                && matches!(&t.state, TryState::Running { worker, .. }
                    if g.workers.get(worker).is_some_and(|w| w.principal == principal))
        })
    }

    fn wakeup(&self, queues: &[String]) -> Vec<Arc<tokio::sync::Notify>> {
        let mut g = self.lock();
        queues
            .iter()
            .map(|q| g.wakes.entry(q.clone()).or_default().clone())
            .collect()
    }

    fn heartbeat_timeout(&self) -> Duration {
        self.heartbeat_timeout
    }

    fn poll_wait(&self) -> Duration {
        self.poll_wait
    }

    fn round_trips(&self) -> Vec<Duration> {
        self.round_trips
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|us| Duration::from_micros(u64::from(*us)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::{PollRequest, RemoteOutcome, RemotePlugin};

    fn task(id: &str, queue: &str) -> RemoteTask {
        RemoteTask {
            task_id: id.into(),
            queue: queue.into(),
            execution: "arn:x".into(),
            state: "S".into(),
            attempt: 1,
            plugin: RemotePlugin {
                name: "echo".into(),
                version: "1".into(),
                digest: "0".repeat(64),
                world: "task".into(),
            },
            input: "{}".into(),
            ctx: "{}".into(),
            timeout_ms: 1000,
            grant: vec![],
            secrets: Default::default(),
            heartbeat_ms: 100,
            packages: None,
        }
    }

    fn poll(id: &str, queues: &[&str]) -> PollRequest {
        PollRequest {
            worker_id: id.into(),
            host: "h".into(),
            queues: queues.iter().map(|q| q.to_string()).collect(),
            slots: 1,
            busy: 0,
            session: None,
        }
    }

    fn report(worker: &str, task: &str) -> TaskReport {
        TaskReport {
            worker_id: worker.into(),
            task_id: task.into(),
            outcome: RemoteOutcome {
                output: Some("{}".into()),
                ..Default::default()
            },
            next: None,
        }
    }

    #[test]
    fn tasks_go_to_workers_of_their_queue_and_only_they_may_report() {
        let d = MemoryDispatch::new(Duration::from_secs(30), true);
        assert!(!d.routes_remote("gpu"), "no worker yet: run locally");
        assert_eq!(d.take(&poll("w1", &["gpu"]), "key1").unwrap().0, None);
        assert!(d.routes_remote("gpu"));
        assert!(!d.routes_remote("default"));
        let rx = d.submit(task("t1", "gpu"));
        // a worker of another queue gets nothing
        assert_eq!(d.take(&poll("w2", &["default"]), "key1").unwrap().0, None);
        let (got, depth) = d.take(&poll("w1", &["gpu"]), "key1").unwrap();
        assert_eq!(got.unwrap().task_id, "t1");
        assert_eq!(depth, 0);
        // another worker (or another key claiming w1) cannot heartbeat or report it
        assert!(d.heartbeat("w2", "key1", "t1").is_err());
        assert!(matches!(
            d.take(&poll("w1", &["gpu"]), "key2"),
            Err(DispatchError::WorkerIdTaken { .. })
        ));
        assert!(d.report("key1", report("w2", "t1")).is_err());
        assert!(d.report("key2", report("w1", "t1")).is_err());
        assert_eq!(d.heartbeat("w1", "key1", "t1"), Ok(false));
        d.report("key1", report("w1", "t1")).unwrap();
        let Completion::Reported { worker, .. } = rx.try_recv().unwrap();
        assert_eq!(worker, "h/w1");
        assert_eq!(d.round_trips().len(), 1);
        // a second report of the same try is void
        assert!(d.report("key1", report("w1", "t1")).is_err());
    }

    #[test]
    fn a_queued_task_wakes_one_poll_of_its_queue_and_no_other() {
        let d = MemoryDispatch::new(Duration::from_secs(30), false);
        let alpha = d.wakeup(&["alpha".to_string()]);
        let beta = d.wakeup(&["beta".to_string()]);
        let both = d.wakeup(&["beta".to_string(), "alpha".to_string()]);
        assert!(Arc::ptr_eq(&alpha[0], &both[1]), "one wakeup per queue");
        // two polls wait on alpha, one on beta
        let mut a1 = Box::pin(alpha[0].notified());
        let mut a2 = Box::pin(alpha[0].notified());
        let mut b = Box::pin(beta[0].notified());
        assert!(!a1.as_mut().enable() && !a2.as_mut().enable() && !b.as_mut().enable());
        let _rx = d.submit(task("t1", "alpha"));
        let woken = [a1.as_mut().enable(), a2.as_mut().enable()];
        assert_eq!(woken.iter().filter(|w| **w).count(), 1, "{woken:?}");
        assert!(!b.as_mut().enable(), "a poll of another queue sleeps on");
        // a poll that takes a task while more wait on its queue passes the wakeup on
        let _rx = d.submit(task("t2", "alpha"));
        let _rx = d.submit(task("t3", "alpha"));
        let mut a3 = Box::pin(alpha[0].notified());
        a3.as_mut().enable();
        d.take(&poll("w1", &["alpha"]), "k").unwrap();
        assert!(a3.as_mut().enable(), "the next poll of alpha is woken");
        // wakeups nobody waits on are dropped at the next sweep
        drop((a1, a2, a3, b));
        drop((alpha, beta, both));
        d.lock().swept = None;
        d.take(&poll("w1", &["alpha"]), "k").unwrap();
        assert!(d.lock().wakes.is_empty());
    }

    #[test]
    fn a_draining_session_takes_no_task_and_its_running_try_still_reports() {
        let d = MemoryDispatch::new(Duration::from_secs(30), false);
        let session = |p: PollRequest, s: &str| PollRequest {
            session: Some(s.into()),
            ..p
        };
        let rx = d.submit(task("t1", "q"));
        d.take(&session(poll("w", &["q"]), "s1"), "k").unwrap();
        let _rx2 = d.submit(task("t2", "q"));
        let waiting = d.wakeup(&["q".to_string()]);
        let mut w = Box::pin(waiting[0].notified());
        w.as_mut().enable();
        // only the worker's own key may drain it
        assert!(d.drain("w", "other-key", "s1").is_err());
        d.drain("w", "k", "s1").unwrap();
        assert!(w.as_mut().enable(), "its waiting polls are woken");
        let p = session(poll("w", &["q"]), "s1");
        assert!(d.is_draining(&p));
        let (none, depth) = d.take(&p, "k").unwrap();
        assert_eq!((none, depth), (None, 1), "no task for a draining session");
        assert!(d.workers()[0].draining);
        // the try it runs goes on, and its report is taken
        assert_eq!(d.heartbeat("w", "k", "t1"), Ok(false));
        d.report("k", report("w", "t1")).unwrap();
        assert!(rx.try_recv().is_ok());
        // a process started later under the same id (another session), or a poll naming no
        // session, is not drained
        let later = session(poll("w", &["q"]), "s2");
        assert!(!d.is_draining(&later));
        assert_eq!(d.take(&later, "k").unwrap().0.unwrap().task_id, "t2");
        assert!(!d.workers()[0].draining);
        assert!(!d.is_draining(&poll("w", &["q"])));
        // a worker that never polled here: nothing to drain
        d.drain("unknown", "k", "s").unwrap();
    }

    #[test]
    fn a_lost_try_is_forgotten_and_its_late_report_refused() {
        let d = MemoryDispatch::new(Duration::ZERO, true);
        let rx = d.submit(task("t1", "default"));
        assert_eq!(d.lost("t1"), None, "a queued try is not lost");
        d.take(&poll("w1", &["default"]), "k").unwrap();
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(d.lost("t1").as_deref(), Some("h/w1"));
        assert!(matches!(
            d.report("k", report("w1", "t1")),
            Err(DispatchError::NotYours { .. })
        ));
        assert!(rx.try_recv().is_err());
        // cancelled tries: a queued one is dropped, a running one is told at its heartbeat
        let d = MemoryDispatch::new(Duration::from_secs(30), false);
        assert!(d.routes_remote("anything"), "--no-local-tasks");
        d.submit(task("q", "default"));
        d.cancel("q");
        assert_eq!(d.queue_depths(), vec![("default".to_string(), 0)]);
        assert_eq!(d.take(&poll("w", &["default"]), "k").unwrap().0, None);
        d.submit(task("r", "default"));
        d.take(&poll("w", &["default"]), "k").unwrap();
        assert_eq!(d.running(), 1);
        d.cancel("r");
        assert_eq!(d.heartbeat("w", "k", "r"), Ok(true));
        assert_eq!(d.workers()[0].tasks.len(), 1);
    }

    #[test]
    fn only_a_key_running_a_try_may_fetch_its_packages() {
        let d = MemoryDispatch::new(Duration::from_secs(30), false);
        let pk = "ab".repeat(32);
        let mut t = task("p", "default");
        t.packages = Some(pk.clone());
        let rx = d.submit(t);
        assert!(!d.holds_packages("k", &pk), "queued: nobody holds it yet");
        d.take(&poll("w", &["default"]), "k").unwrap();
        d.take(&poll("other", &["default"]), "k2").unwrap();
        assert!(d.holds_packages("k", &pk));
        assert!(!d.holds_packages("k2", &pk), "another key's worker");
        assert!(!d.holds_packages("k", &"cd".repeat(32)), "another digest");
        d.report("k", report("w", "p")).unwrap();
        assert!(rx.try_recv().is_ok());
        assert!(!d.holds_packages("k", &pk), "reported: no longer held");
    }
}
