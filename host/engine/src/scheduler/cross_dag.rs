//! The cross-DAG operators the scheduler runs itself: `TriggerDagRunOperator` creates (or
//! resets) a run of another DAG and may wait for it; each poke of `ExternalTaskSensor` reads the
//! state of another DAG's run at the same logical date. Their arguments are
//! [`weft_dag::cross_dag`]'s.
//!
//! Both act on another DAG for the task, so both go through the task's grant (its role), as
//! IAM's `iam:PassRole` does for a role handed on: triggering needs `dags:TriggerDagRun` and
//! reading needs `dags:ListDagRuns` on `weft:dag:TARGET` (the target's id checked against
//! Airflow's alphabet first). A task without a grant may do neither: nothing is allowed by
//! default.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use chrono::{SecondsFormat, Utc};
use serde_json::{json, Value};
use weft_dag::cross_dag::{ExternalTask, TriggerDagRun, Verdict};
use weft_dag::{Dag, TaskFailure, TaskInvocation, SENSOR_NOT_READY};

use super::store::{DagRunRecord, SchedStore};
use super::SchedulerError;
use crate::roles::Roles;

/// Error name of a cross-DAG action the task's grant does not allow.
pub const ACCESS_DENIED: &str = "Weft.AccessDenied";

/// What the cross-DAG operators need from the scheduler, shared with its workers.
#[derive(Clone)]
pub struct CrossDag {
    store: SchedStore,
    dags: Arc<HashMap<String, Arc<Dag>>>,
    roles: Option<Arc<Roles>>,
    /// Set when a run was created here: the loop adopts it on its next pass.
    created: Arc<AtomicBool>,
    /// Set while the loop is stopping: waits end.
    stopping: Arc<AtomicBool>,
}

fn invalid(why: String) -> TaskFailure {
    TaskFailure::new("Weft.FailNoRetry", why)
}

fn store_failure(e: SchedulerError) -> TaskFailure {
    TaskFailure::new("Weft.StoreError", e.to_string())
}

impl CrossDag {
    /// Over the scheduler's store and DAGs, with the roles grants name (`None`: no role is
    /// known, every cross-DAG action is denied).
    pub fn new(
        store: SchedStore,
        dags: Arc<HashMap<String, Arc<Dag>>>,
        roles: Option<Arc<Roles>>,
    ) -> Self {
        CrossDag {
            store,
            dags,
            roles,
            created: Arc::default(),
            stopping: Arc::default(),
        }
    }

    /// Whether a run was created since the last call (and clears the flag).
    pub fn take_created(&self) -> bool {
        self.created.swap(false, Ordering::SeqCst)
    }

    /// Tells waits to end (the loop is stopping).
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    /// The target DAG, authorised for `action` through the task's grant.
    fn authorised(
        &self,
        inv: &TaskInvocation,
        action: &str,
        dag_id: &str,
    ) -> Result<Arc<Dag>, TaskFailure> {
        if !weft_dag::valid_dag_id(dag_id) {
            return Err(invalid(format!("`{dag_id}` is not a DAG id")));
        }
        let resource = format!("weft:dag:{dag_id}");
        let denied = |why: String| {
            tracing::warn!(dag_id = %inv.dag_id, task = %inv.task_id, action, resource = %resource, "cross-DAG action denied: {why}");
            TaskFailure::new(
                ACCESS_DENIED,
                format!(
                    "task `{}` of DAG `{}` may not {action} on {resource}: {why}",
                    inv.task_id, inv.dag_id
                ),
            )
        };
        let Some(grant) = inv.grant.as_deref() else {
            return Err(denied(
                "the task has no grant (nothing is allowed without one)".into(),
            ));
        };
        let Some(roles) = &self.roles else {
            return Err(denied("no roles are loaded".into()));
        };
        let policy = roles.get(grant).map_err(|e| denied(e.to_string()))?;
        if !policy.evaluate(action, &resource).allowed() {
            return Err(denied(format!("its grant `{grant}` does not allow it")));
        }
        self.dags.get(dag_id).cloned().ok_or_else(|| {
            invalid(format!(
                "DAG `{dag_id}` is not loaded (see `weft dag list`)"
            ))
        })
    }

    /// Runs a `TriggerDagRunOperator` try.
    pub fn trigger(&self, inv: &TaskInvocation) -> Result<Value, TaskFailure> {
        let args = inv.arguments.as_object().cloned().unwrap_or_default();
        let spec = TriggerDagRun::parse(&args)
            .map_err(|e| invalid(format!("task `{}`: {e}", inv.task_id)))?;
        let dag = self.authorised(inv, "dags:TriggerDagRun", &spec.trigger_dag_id)?;
        let logical_date = spec.logical_date.unwrap_or_else(Utc::now);
        let run_id = spec.trigger_run_id.clone().unwrap_or_else(|| {
            format!(
                "manual__{}",
                logical_date.to_rfc3339_opts(SecondsFormat::AutoSi, false)
            )
        });
        if !run_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.:+~".contains(c))
            || run_id.len() > 250
        {
            return Err(invalid(format!(
                "`trigger_run_id` `{run_id}` has characters a run id cannot"
            )));
        }
        let interval = dag
            .schedule
            .infer_manual_data_interval(dag.timezone, logical_date);
        let rec = DagRunRecord {
            dag_id: dag.dag_id.clone(),
            run_id: run_id.clone(),
            run_type: "manual".into(),
            logical_date,
            data_interval_start: interval.start,
            data_interval_end: interval.end,
            state: "queued".into(),
            conf: spec.conf.clone(),
            queued_at: Utc::now(),
            start_date: None,
            end_date: None,
            note: None,
        };
        match self.store.insert_run(&rec) {
            Ok(()) => {}
            Err(SchedulerError::RunExists { detail, .. }) => {
                let existing = self
                    .store
                    .get_run(&dag.dag_id, &run_id)
                    .map_err(store_failure)?;
                // a wait the scheduler's stop interrupted resumes on the run it triggered
                let resumed =
                    inv.first_poke_elapsed > std::time::Duration::ZERO && spec.wait_for_completion;
                match existing {
                    Some(_) if resumed => {
                        tracing::info!(dag_id = %inv.dag_id, task = %inv.task_id, run_id = %run_id, "resuming the wait for a triggered run");
                    }
                    Some(old) if spec.reset_dag_run => {
                        if old.is_finished() {
                            // Airflow clears the run: its tasks run again under the same id
                            self.store
                                .delete_run(&old.dag_id, &old.run_id)
                                .map_err(store_failure)?;
                            self.store.insert_run(&rec).map_err(store_failure)?;
                            tracing::info!(dag_id = %rec.dag_id, run_id = %rec.run_id, "triggered run reset");
                        }
                    }
                    _ if spec.skip_when_already_exists => {
                        return Err(TaskFailure::new(
                            "AirflowSkipException",
                            format!("DAG `{}`: {detail}", dag.dag_id),
                        ))
                    }
                    _ => {
                        return Err(TaskFailure::new(
                            "DagRunAlreadyExists",
                            format!("DAG `{}`: {detail}", dag.dag_id),
                        ))
                    }
                }
            }
            Err(e) => return Err(store_failure(e)),
        }
        self.store.flush().map_err(store_failure)?;
        self.created.store(true, Ordering::SeqCst);
        tracing::info!(dag_id = %inv.dag_id, task = %inv.task_id, target = %dag.dag_id, run_id = %run_id, "dag run triggered");
        let out = json!({"trigger_dag_id": dag.dag_id, "trigger_run_id": run_id});
        if !spec.wait_for_completion {
            return Ok(out);
        }
        loop {
            let state = self
                .store
                .get_run(&dag.dag_id, &run_id)
                .map_err(store_failure)?
                .map(|r| r.state);
            let Some(state) = state else {
                return Err(TaskFailure::new(
                    "AirflowException",
                    format!(
                        "the triggered run `{run_id}` of DAG `{}` was deleted",
                        dag.dag_id
                    ),
                ));
            };
            if spec.failed_states.contains(&state) {
                return Err(TaskFailure::new(
                    "AirflowException",
                    format!("{} failed with failed state {state}", dag.dag_id),
                ));
            }
            if spec.allowed_states.contains(&state) {
                return Ok(out);
            }
            if self.stopping.load(Ordering::SeqCst) {
                // rescheduled, not failed: the next scheduler waits on the same run (when its
                // id is the same: `trigger_run_id` or `logical_date` given)
                return Err(TaskFailure::new(
                    SENSOR_NOT_READY,
                    format!(
                        "the scheduler stopped while waiting for run `{run_id}` of DAG `{}`",
                        dag.dag_id
                    ),
                ));
            }
            std::thread::sleep(inv.sensor.poke_interval);
        }
    }

    /// One poke of an `ExternalTaskSensor`: `Ok` when the external run (or its tasks) reached
    /// an allowed state, a failure for a failed state (skipped with `soft_fail`), a skip for a
    /// skipped state, else "not ready".
    pub fn poke_external(&self, inv: &TaskInvocation) -> Result<Value, TaskFailure> {
        let args = inv.arguments.as_object().cloned().unwrap_or_default();
        let spec = ExternalTask::parse(&args)
            .map_err(|e| invalid(format!("task `{}`: {e}", inv.task_id)))?;
        let dag = self.authorised(inv, "dags:ListDagRuns", &spec.external_dag_id)?;
        let mut task_ids: Option<Vec<String>> = spec.task_ids.clone();
        if let Some(g) = &spec.task_group_id {
            let members: Vec<String> = dag
                .tasks
                .values()
                .filter(|t| {
                    t.task_group
                        .as_deref()
                        .is_some_and(|tg| tg == g || tg.starts_with(&format!("{g}.")))
                })
                .map(|t| t.task_id.clone())
                .collect();
            if members.is_empty() {
                return Err(invalid(format!(
                    "DAG `{}` has no task group `{g}`",
                    dag.dag_id
                )));
            }
            task_ids = Some(members);
        }
        if spec.check_existence {
            if let Some(missing) = task_ids
                .iter()
                .flatten()
                .find(|t| !dag.tasks.contains_key(t.as_str()))
            {
                return Err(invalid(format!(
                    "DAG `{}` has no task `{missing}`",
                    dag.dag_id
                )));
            }
        }
        let run = self
            .store
            .runs_of(&dag.dag_id)
            .map_err(store_failure)?
            .into_iter()
            .find(|r| r.logical_date == inv.logical_date);
        let found: Vec<String> = match (&run, &task_ids) {
            (None, _) => Vec::new(),
            (Some(r), None) => vec![r.state.clone()],
            (Some(r), Some(ids)) => {
                let tis = self
                    .store
                    .tis_of(&r.dag_id, &r.run_id)
                    .map_err(store_failure)?;
                let mut out = Vec::new();
                for id in ids {
                    let mine: Vec<String> = tis
                        .iter()
                        .filter(|t| &t.ti.task_id == id)
                        .map(|t| t.ti.state.as_str().to_string())
                        .collect();
                    if mine.is_empty() {
                        out.push("none".to_string());
                    }
                    out.extend(mine);
                }
                out
            }
        };
        let what = match &task_ids {
            Some(ids) => format!("tasks {ids:?} of DAG `{}`", dag.dag_id),
            None => format!("DAG `{}`", dag.dag_id),
        };
        let at = inv
            .logical_date
            .to_rfc3339_opts(SecondsFormat::AutoSi, false);
        match spec.verdict(&found) {
            Verdict::Done => Ok(json!({"external_dag_id": dag.dag_id, "states": found})),
            Verdict::Failed(s) if inv.sensor.soft_fail => Err(TaskFailure::new(
                "AirflowSkipException",
                format!("{what} at {at} is {s} (soft_fail: skipped)"),
            )),
            Verdict::Failed(s) => Err(TaskFailure::new(
                "AirflowException",
                format!("{what} at {at} is {s}, one of failed_states"),
            )),
            Verdict::Skipped(s) => Err(TaskFailure::new(
                "AirflowSkipException",
                format!("{what} at {at} is {s}, one of skipped_states"),
            )),
            Verdict::Wait => Err(TaskFailure::new(
                SENSOR_NOT_READY,
                match run {
                    None => format!("no run of DAG `{}` at {at} yet", dag.dag_id),
                    Some(_) => format!(
                        "{what} at {at}: {found:?}, waiting for {:?}",
                        spec.allowed_states
                    ),
                },
            )),
        }
    }
}
