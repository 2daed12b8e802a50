//! Changes to DAG runs asked for from outside the scheduler loop — marking task instances or a
//! whole run success/failed/skipped (Airflow's "mark success / mark failed") and notes on runs
//! and task instances — and the [`Control`] handle that hands them to a running loop.
//!
//! A run the loop is working on lives in its memory, so such a change must be made there: the
//! loop applies it to the run's machine, stops the tries it overrides (cancelled in the sandbox
//! or on the remote worker, their late results discarded) and persists it. A run no loop holds
//! is changed in the store directly ([`Scheduler::apply_control`]).

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use weft_dag::{RunMachine, TiState};

use super::core::{Msg, Scheduler};
use super::SchedulerError;

/// How a run is marked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunMark {
    /// Every task instance not yet successful becomes `success`, and so does the run.
    Success,
    /// Running instances become `failed`, the other unfinished ones `skipped`; the run `failed`.
    Failed,
}

impl RunMark {
    /// The run state it sets.
    pub fn as_str(self) -> &'static str {
        match self {
            RunMark::Success => "success",
            RunMark::Failed => "failed",
        }
    }
}

/// One change to a run.
#[derive(Debug, Clone)]
pub enum ControlRequest {
    /// Set task instances to `state` (`success`, `failed` or `skipped`): `(task id, map index)`,
    /// a `None` map index meaning every instance of the task.
    MarkTis {
        /// DAG id.
        dag_id: String,
        /// Run id.
        run_id: String,
        /// The instances.
        tis: Vec<(String, Option<i64>)>,
        /// The new state.
        state: TiState,
    },
    /// Mark a whole run as Airflow does.
    MarkRun {
        /// DAG id.
        dag_id: String,
        /// Run id.
        run_id: String,
        /// Success or failed.
        mark: RunMark,
    },
    /// Set or remove a run's note.
    RunNote {
        /// DAG id.
        dag_id: String,
        /// Run id.
        run_id: String,
        /// The note (`None` removes it).
        note: Option<String>,
    },
    /// Set or remove a task instance's note.
    TiNote {
        /// DAG id.
        dag_id: String,
        /// Run id.
        run_id: String,
        /// Task id.
        task_id: String,
        /// Map index (-1 when not mapped).
        map_index: i64,
        /// The note (`None` removes it).
        note: Option<String>,
    },
}

impl ControlRequest {
    /// The run the request is about.
    pub fn run(&self) -> (&str, &str) {
        match self {
            ControlRequest::MarkTis { dag_id, run_id, .. }
            | ControlRequest::MarkRun { dag_id, run_id, .. }
            | ControlRequest::RunNote { dag_id, run_id, .. }
            | ControlRequest::TiNote { dag_id, run_id, .. } => (dag_id, run_id),
        }
    }
}

/// The instances a request changed, as `(task id, map index)`.
pub type Changed = Vec<(String, i64)>;

/// What the loop answers a request with.
pub(super) type Reply = mpsc::Sender<Result<Changed, SchedulerError>>;

/// How long a caller waits for the loop to apply a request.
const REPLY_WAIT: Duration = Duration::from_secs(30);

/// A handle on a running scheduler loop (cheap to clone): the server's API holds one, the loop
/// attaches itself while it runs ([`super::LoopOptions::control`]).
#[derive(Clone, Default)]
pub struct Control {
    loop_tx: Arc<Mutex<Option<mpsc::Sender<Msg>>>>,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Control")
    }
}

impl Control {
    pub(super) fn attach(&self, tx: mpsc::Sender<Msg>) {
        *self.loop_tx.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
    }

    pub(super) fn detach(&self) {
        *self.loop_tx.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Hands `req` to the running loop and waits for it to be applied; `None` when no loop is
    /// running (or it stopped before applying it): the caller changes the store itself.
    pub fn send(&self, req: ControlRequest) -> Option<Result<Changed, SchedulerError>> {
        let tx = self
            .loop_tx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()?;
        let (rtx, rrx) = mpsc::channel();
        tx.send(Msg::Control(req, rtx)).ok()?;
        match rrx.recv_timeout(REPLY_WAIT) {
            Ok(r) => Some(r),
            Err(mpsc::RecvTimeoutError::Disconnected) => None,
            Err(mpsc::RecvTimeoutError::Timeout) => Some(Err(SchedulerError::Store(
                "the scheduler loop did not apply the change within 30 s; try again".into(),
            ))),
        }
    }
}

/// The instances of `m` that `tis` names; an unknown task or map index is an error.
pub(super) fn select(
    m: &RunMachine,
    tis: &[(String, Option<i64>)],
) -> Result<Vec<(usize, usize)>, SchedulerError> {
    let mut out = Vec::new();
    for (task_id, map_index) in tis {
        let unknown = || SchedulerError::UnknownTask {
            dag_id: m.dag().dag_id.clone(),
            task_id: match map_index {
                Some(i) => weft_dag::ti_key(task_id, *i),
                None => task_id.clone(),
            },
        };
        match map_index {
            Some(i) => out.push(m.find(task_id, *i).ok_or_else(unknown)?),
            None => {
                let t = m
                    .dag()
                    .tasks
                    .get_index_of(task_id.as_str())
                    .ok_or_else(unknown)?;
                out.extend((0..m.instances(t)).map(|i| (t, i)));
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// The instance states marking a run sets: `(task, instance, new state)` for each change.
pub(super) fn run_marks(m: &RunMachine, mark: RunMark) -> Vec<(usize, usize, TiState)> {
    m.instance_keys()
        .into_iter()
        .filter_map(|(t, i)| {
            let s = m.state(t, i);
            let new = match mark {
                RunMark::Success => TiState::Success,
                RunMark::Failed if s.is_finished() => return None,
                RunMark::Failed if s == TiState::Running => TiState::Failed,
                RunMark::Failed => TiState::Skipped,
            };
            (s != new).then_some((t, i, new))
        })
        .collect()
}

/// The key of an instance for [`Changed`].
pub(super) fn key(m: &RunMachine, t: usize, i: usize) -> (String, i64) {
    let r = m.record(t, i);
    (r.task_id, r.map_index)
}

/// The run state that follows from a finished run's instances after a change (`None`: some
/// instance is unfinished, the state stays).
pub(super) fn finished_state_after(m: &RunMachine) -> Option<&'static str> {
    let states: Vec<TiState> = m
        .instance_keys()
        .into_iter()
        .map(|(t, i)| m.state(t, i))
        .collect();
    if states
        .iter()
        .any(|s| matches!(s, TiState::Failed | TiState::UpstreamFailed))
    {
        Some("failed")
    } else if states
        .iter()
        .all(|s| matches!(s, TiState::Success | TiState::Skipped | TiState::Removed))
    {
        Some("success")
    } else {
        None
    }
}

impl Scheduler<'_> {
    /// Applies `req` to a run no loop of this process holds, in the store: marks and notes on
    /// queued and finished runs (and on running ones whose loop is gone). A finished run's state
    /// follows its instances afterwards (failed when one failed, success when all succeeded or
    /// were skipped); a marked run ends at once.
    pub fn apply_control(&self, req: &ControlRequest) -> Result<Changed, SchedulerError> {
        let (dag_id, run_id) = req.run();
        let dag = self.dag(dag_id)?.clone();
        let mut rec =
            self.store
                .get_run(dag_id, run_id)?
                .ok_or_else(|| SchedulerError::UnknownRun {
                    dag_id: dag_id.into(),
                    run_id: run_id.into(),
                })?;
        let stored = self.store.tis_of(dag_id, run_id)?;
        match req {
            ControlRequest::RunNote { note, .. } => {
                rec.note = note.clone();
                self.store.put_run(&rec)?;
                self.store.flush()?;
                return Ok(Vec::new());
            }
            ControlRequest::TiNote {
                task_id,
                map_index,
                note,
                ..
            } => {
                // the instance's dates stay as they are
                let mut ti = stored
                    .into_iter()
                    .find(|s| &s.ti.task_id == task_id && s.ti.map_index == *map_index)
                    .ok_or_else(|| SchedulerError::UnknownTask {
                        dag_id: dag_id.into(),
                        task_id: weft_dag::ti_key(task_id, *map_index),
                    })?;
                ti.ti.note = note.clone();
                self.store.write_tis(dag_id, run_id, &[], &[ti])?;
                self.store.flush()?;
                return Ok(vec![(task_id.clone(), *map_index)]);
            }
            _ => {}
        }
        let mut m = self.machine(&dag, &rec);
        // a marked instance keeps its latest try's start and host
        let starts: Vec<((String, i64), super::core::TryStart)> = stored
            .iter()
            .filter_map(|s| {
                let start = super::core::TryStart {
                    at: s.start_date?,
                    host: s.hostname.clone(),
                };
                Some(((s.ti.task_id.clone(), s.ti.map_index), start))
            })
            .collect();
        m.restore(stored.into_iter().map(|s| s.ti).collect());
        m.take_changes();
        let times: std::collections::HashMap<(usize, usize), super::core::TryStart> = starts
            .into_iter()
            .filter_map(|((task, mi), start)| Some((m.find(&task, mi)?, start)))
            .collect();
        let mut changed = Vec::new();
        match req {
            ControlRequest::MarkTis { tis, state, .. } => {
                for (t, i) in select(&m, tis)? {
                    if m.mark(t, i, *state) {
                        changed.push(key(&m, t, i));
                    }
                }
                if rec.is_finished() {
                    if let Some(s) = finished_state_after(&m) {
                        rec.state = s.into();
                    }
                }
            }
            ControlRequest::MarkRun { mark, .. } => {
                for (t, i, s) in run_marks(&m, *mark) {
                    m.mark(t, i, s);
                    changed.push(key(&m, t, i));
                }
                rec.state = mark.as_str().into();
                rec.end_date = Some(Utc::now());
            }
            ControlRequest::RunNote { .. } | ControlRequest::TiNote { .. } => {}
        }
        self.persist(&mut m, &rec, &times)?;
        self.store.put_run(&rec)?;
        self.store.flush()?;
        Ok(changed)
    }
}

/// The task ids a mark or clear selects: `task_ids` with their upstream and/or downstream
/// tasks (transitively), as Airflow's `include_upstream` / `include_downstream`.
pub fn related_tasks(
    dag: &weft_dag::Dag,
    task_ids: &[String],
    upstream: bool,
    downstream: bool,
) -> std::collections::BTreeSet<String> {
    let mut set: std::collections::BTreeSet<String> = task_ids.iter().cloned().collect();
    for (on, down) in [(upstream, false), (downstream, true)] {
        if !on {
            continue;
        }
        let mut stack: Vec<String> = task_ids.to_vec();
        while let Some(id) = stack.pop() {
            let Some(t) = dag.tasks.get(&id) else {
                continue;
            };
            for n in if down { &t.downstream } else { &t.upstream } {
                if set.insert(n.clone()) {
                    stack.push(n.clone());
                }
            }
        }
    }
    set
}
