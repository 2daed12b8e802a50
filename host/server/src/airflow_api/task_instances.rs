//! Task instances under `/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances` as
//! Airflow's `TaskInstanceResponse`: list (`~` for every DAG and/or every run the caller may
//! read), get, patch the state (mark success/failed/skipped, with upstream, downstream, past
//! and future), clear (`POST /dags/{dag_id}/clearTaskInstances`), logs per try and XCom
//! entries.
//!
//! The scheduler loop owns the task instances of queued and running runs, so marks on those go
//! through it (a running try that is marked is stopped, its result discarded); instances are
//! cleared only in finished runs (elsewhere the answer is a 409). After a mark in a finished run
//! the run's state follows its instances: failed when one failed, success when all succeeded
//! or were skipped. A task instance's `note` is set with the same PATCH (`update_mask=note`). Actions on `weft:dag:DAG_ID`: `dags:ListDagRuns` (list and
//! get), `dags:PatchTaskInstance`, `dags:ClearTaskInstances`, `dags:GetTaskLogs`,
//! `dags:GetXComEntries`.

use super::dag_runs::{
    dag_ids_of, dag_name, enum_values, get_run, must_be_finished, run_after, DateRange, ALL,
};
use super::dags::find;
use super::{
    bad_request, body_bool, body_object, body_str, clip, dag_resource, iso, iso_epoch, not_found,
    only_fields, respond, sched_store, sort_json, store_err, unprocessable, Query,
};
use crate::dag_scheduler::{sched_error, with_control};
use crate::error::ApiError;
use crate::v1_access::V1Request;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::Arc;
use weft_dag::{Dag, TiState};
use weft_engine::scheduler::{ControlRequest, DagRunRecord, SchedStore, StoredTi};

/// Most task instances one list reads before paging (`~`/`~` over a large store).
pub const MAX_LISTED: usize = 100_000;

/// Airflow's name of a state (`None` for no state yet).
fn state_name(s: TiState) -> Value {
    match s {
        TiState::None => Value::Null,
        s => json!(s.as_str()),
    }
}

/// A stable id of a task instance (Airflow's is a UUID).
fn ti_id(dag_id: &str, run_id: &str, task_id: &str, map_index: i64) -> String {
    let h = blake3::hash(format!("{dag_id}\0{run_id}\0{task_id}\0{map_index}").as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&h.as_bytes()[..16]);
    uuid::Builder::from_random_bytes(b).into_uuid().to_string()
}

/// `TaskInstanceResponse`.
pub fn ti_json(dag: Option<&Dag>, r: &DagRunRecord, t: &StoredTi, dag_display_name: &str) -> Value {
    let task = dag.and_then(|d| d.tasks.get(&t.ti.task_id));
    let duration = match (t.start_date, t.end_date) {
        (Some(s), Some(e)) if e >= s => json!(e - s),
        _ => Value::Null,
    };
    let operator = task.map(|k| {
        k.operator_source
            .rsplit('.')
            .next()
            .unwrap_or(&k.operator_source)
            .to_string()
    });
    json!({
        "id": ti_id(&r.dag_id, &r.run_id, &t.ti.task_id, t.ti.map_index),
        "task_id": t.ti.task_id,
        "dag_id": r.dag_id,
        "dag_run_id": r.run_id,
        "map_index": t.ti.map_index,
        "logical_date": iso(&r.logical_date),
        "run_after": iso(&run_after(r)),
        "start_date": iso_epoch(t.start_date),
        "end_date": iso_epoch(t.end_date),
        "duration": duration,
        "state": state_name(t.ti.state),
        "try_number": t.ti.try_number,
        "max_tries": task.map_or(0, |k| k.retries) + t.ti.tries_before_clear,
        "task_display_name": t.ti.task_id,
        "dag_display_name": dag_display_name,
        "hostname": t.hostname,
        "unixname": Value::Null,
        "pool": task.map_or("default_pool", |k| k.pool.as_str()),
        "pool_slots": task.map_or(1, |k| k.pool_slots),
        "queue": task.and_then(|k| k.queue.clone()),
        "priority_weight": task.map(|k| k.priority_weight),
        "operator": operator,
        "operator_name": operator,
        "queued_when": Value::Null,
        "scheduled_when": Value::Null,
        "pid": Value::Null,
        "executor": Value::Null,
        "executor_config": "{}",
        "note": t.ti.note,
        "rendered_map_index": (t.ti.map_index >= 0).then(|| t.ti.map_index.to_string()),
        "rendered_fields": {},
        "trigger": Value::Null,
        "triggerer_job": Value::Null,
        "dag_version": Value::Null,
    })
}

/// The `TaskInstanceResponse`s of run `r` that `keep` keeps.
pub fn tis_json(
    app: &AppState,
    store: &SchedStore,
    r: &DagRunRecord,
    keep: impl Fn(&StoredTi) -> bool,
) -> Result<Vec<Value>, ApiError> {
    let dag = find(app, &r.dag_id).ok();
    let name = dag
        .as_ref()
        .map_or_else(|| r.dag_id.clone(), super::dags::display_name);
    Ok(store
        .tis_of(&r.dag_id, &r.run_id)
        .map_err(store_err)?
        .iter()
        .filter(|t| keep(t))
        .map(|t| ti_json(dag.as_ref(), r, t, &name))
        .collect())
}

const TI_STATES: &[&str] = &[
    "removed",
    "scheduled",
    "queued",
    "running",
    "success",
    "restarting",
    "failed",
    "up_for_retry",
    "up_for_reschedule",
    "upstream_failed",
    "skipped",
    "deferred",
    "awaiting_input",
    "no_status",
    "none",
];

/// `GET .../dagRuns/{dag_run_id}/taskInstances` (`~` for the DAG and/or the run): `limit`,
/// `offset`, `order_by`, `state` (`no_status`/`none` for none yet), `task_id`, `pool`,
/// `queue`, `try_number`, `map_index`, `dag_id_pattern`, `run_id_pattern`,
/// `task_display_name_pattern`, and `_gte`/`_gt`/`_lte`/`_lt` bounds on `logical_date`,
/// `run_after`, `start_date`, `end_date`.
pub async fn list(
    State(app): State<Arc<AppState>>,
    Path((dag_id, run_id)): Path<(String, String)>,
    req: V1Request,
) -> Response {
    respond(&app, &req, "dags:ListDagRuns", StatusCode::OK, |ctx| {
        let q = Query::parse(req.query())?;
        let page = q.page()?;
        let order = q.order_by(
            &[
                "id",
                "state",
                "duration",
                "start_date",
                "end_date",
                "map_index",
                "try_number",
                "logical_date",
                "run_after",
                "rendered_map_index",
                "operator",
                "task_id",
                "dag_id",
                "dag_run_id",
            ],
            "map_index",
        )?;
        let states = enum_values(&q, "state", TI_STATES)?;
        let task_ids = q.all("task_id");
        let pools = q.all("pool");
        let queues = q.all("queue");
        let tries = q.uint("try_number")?;
        let map_index = q
            .get("map_index")
            .map(|v| {
                v.parse::<i64>().map_err(|_| {
                    unprocessable(&["query", "map_index"], "Input should be a valid integer")
                })
            })
            .transpose()?;
        let logical = DateRange::parse(&q, "logical_date")?;
        let after = DateRange::parse(&q, "run_after")?;
        let start = DateRange::parse(&q, "start_date")?;
        let end = DateRange::parse(&q, "end_date")?;
        let dag_pat = q.get("dag_id_pattern");
        let run_pat = q.get("run_id_pattern");
        let name_pat = q.get("task_display_name_pattern");
        let ids = dag_ids_of(&app, ctx, &dag_id, "dags:ListDagRuns")?;
        let store = sched_store(&app)?;
        let mut out = Vec::new();
        for id in ids {
            if dag_pat.is_some_and(|p| !super::dags::like(p, &id)) {
                continue;
            }
            let runs = if run_id == ALL {
                store.runs_of(&id).map_err(store_err)?
            } else {
                match store.get_run(&id, &run_id).map_err(store_err)? {
                    Some(r) => vec![r],
                    // with `~` for the DAG, DAGs without this run contribute nothing
                    None if dag_id == ALL => Vec::new(),
                    None => vec![get_run(&store, &id, &run_id)?],
                }
            };
            for r in runs {
                if !logical.contains(Some(r.logical_date))
                    || !after.contains(Some(run_after(&r)))
                    || run_pat.is_some_and(|p| !super::dags::like(p, &r.run_id))
                {
                    continue;
                }
                let tis = tis_json(&app, &store, &r, |t| {
                    let st = t.ti.state;
                    (states.is_empty()
                        || states.contains(&st.as_str())
                        || (st == TiState::None && states.contains(&"no_status")))
                        && (task_ids.is_empty() || task_ids.contains(&t.ti.task_id.as_str()))
                        && tries.is_none_or(|n| t.ti.try_number as usize == n)
                        && map_index.is_none_or(|m| t.ti.map_index == m)
                        && name_pat.is_none_or(|p| super::dags::like(p, &t.ti.task_id))
                })?;
                for v in tis {
                    let date = |k: &str| {
                        v[k].as_str()
                            .and_then(|s| weft_dag::parse_logical_date(s).ok())
                    };
                    if !start.contains(date("start_date"))
                        || !end.contains(date("end_date"))
                        || (!pools.is_empty()
                            && !pools.iter().any(|p| v["pool"].as_str() == Some(p)))
                        || (!queues.is_empty()
                            && !queues.iter().any(|p| v["queue"].as_str() == Some(p)))
                    {
                        continue;
                    }
                    out.push(v);
                    if out.len() > MAX_LISTED {
                        return Err(bad_request(format!(
                            "more than {MAX_LISTED} task instances match: narrow the query (a DAG id, a run id, filters)"
                        )));
                    }
                }
            }
        }
        sort_json(&mut out, &order);
        let total = out.len();
        Ok(json!({"task_instances": page.take(out), "total_entries": total}))
    })
}

/// The instance of `task_id` at `map_index`, or Airflow's 404.
fn find_ti(
    store: &SchedStore,
    r: &DagRunRecord,
    task_id: &str,
    map_index: i64,
) -> Result<StoredTi, ApiError> {
    store
        .tis_of(&r.dag_id, &r.run_id)
        .map_err(store_err)?
        .into_iter()
        .find(|t| t.ti.task_id == task_id && t.ti.map_index == map_index)
        .ok_or_else(|| {
            not_found(format!(
                "The Task Instance with dag_id: `{}`, run_id: `{}`, task_id: `{}` and map_index: `{map_index}` was not found",
                r.dag_id,
                r.run_id,
                clip(task_id)
            ))
        })
}

fn map_index_param(q: &Query) -> Result<i64, ApiError> {
    q.get("map_index")
        .map(|v| {
            v.parse::<i64>().map_err(|_| {
                unprocessable(&["query", "map_index"], "Input should be a valid integer")
            })
        })
        .transpose()
        .map(|m| m.unwrap_or(-1))
}

/// `GET .../taskInstances/{task_id}`.
pub async fn get_one(
    State(app): State<Arc<AppState>>,
    Path((dag_id, run_id, task_id)): Path<(String, String, String)>,
    req: V1Request,
) -> Response {
    get_ti(&app, &req, &dag_id, &run_id, &task_id, None)
}

/// `GET .../taskInstances/{task_id}/{map_index}`: one instance of a mapped task.
pub async fn get_mapped(
    State(app): State<Arc<AppState>>,
    Path((dag_id, run_id, task_id, map_index)): Path<(String, String, String, String)>,
    req: V1Request,
) -> Response {
    match path_map_index(&map_index) {
        Ok(m) => get_ti(&app, &req, &dag_id, &run_id, &task_id, Some(m)),
        Err(e) => super::error_response(e),
    }
}

/// A `{map_index}` path segment (-1 or more).
fn path_map_index(v: &str) -> Result<i64, ApiError> {
    v.parse::<i64>().ok().filter(|m| *m >= -1).ok_or_else(|| {
        unprocessable(
            &["path", "map_index"],
            "Input should be an integer of -1 or more",
        )
    })
}

fn get_ti(
    app: &AppState,
    req: &V1Request,
    dag_id: &str,
    run_id: &str,
    task_id: &str,
    path_map: Option<i64>,
) -> Response {
    respond(app, req, "dags:ListDagRuns", StatusCode::OK, |ctx| {
        ctx.authorize(dag_resource(dag_id)?)?;
        let q = Query::parse(req.query())?;
        let map_index = match path_map {
            Some(m) => m,
            None => map_index_param(&q)?,
        };
        let store = sched_store(app)?;
        let r = get_run(&store, dag_id, run_id)?;
        let t = find_ti(&store, &r, task_id, map_index)?;
        let dag = find(app, dag_id).ok();
        Ok(ti_json(dag.as_ref(), &r, &t, &dag_name(app, dag_id)))
    })
}

/// Task ids reachable from `start` through `next` (upstream or downstream), `start` included.
fn closure(dag: &Dag, start: &[String], downstream: bool) -> BTreeSet<String> {
    let mut seen: BTreeSet<String> = start.iter().cloned().collect();
    let mut stack: Vec<String> = start.to_vec();
    while let Some(id) = stack.pop() {
        let Some(t) = dag.tasks.get(&id) else {
            continue;
        };
        let next = if downstream {
            &t.downstream
        } else {
            &t.upstream
        };
        for n in next {
            if seen.insert(n.clone()) {
                stack.push(n.clone());
            }
        }
    }
    seen
}

/// The tasks a patch or clear selects: `task_ids` with their upstream and/or downstream.
fn select_tasks(
    dag: &Dag,
    task_ids: &[String],
    upstream: bool,
    downstream: bool,
) -> BTreeSet<String> {
    let mut set: BTreeSet<String> = task_ids.iter().cloned().collect();
    if upstream {
        set.extend(closure(dag, task_ids, false));
    }
    if downstream {
        set.extend(closure(dag, task_ids, true));
    }
    set
}

/// The run state that follows from its instances after a change (`None`: unchanged).
fn run_state_after(tis: &[StoredTi]) -> Option<&'static str> {
    if tis
        .iter()
        .any(|t| matches!(t.ti.state, TiState::Failed | TiState::UpstreamFailed))
    {
        Some("failed")
    } else if tis.iter().all(|t| {
        matches!(
            t.ti.state,
            TiState::Success | TiState::Skipped | TiState::Removed
        )
    }) {
        Some("success")
    } else {
        None
    }
}

/// `PATCH .../taskInstances/{task_id}` (`PatchTaskInstanceBody`: `new_state` `success`,
/// `failed` or `skipped`; `include_upstream`, `include_downstream`, `include_past`,
/// `include_future`; `map_index` query parameter, every instance of the task without it):
/// answers the changed instances as a `TaskInstanceCollectionResponse`; `dry_run=true` only
/// lists them.
pub async fn patch(
    State(app): State<Arc<AppState>>,
    Path((dag_id, run_id, task_id)): Path<(String, String, String)>,
    req: V1Request,
) -> Response {
    patch_ti(&app, &req, dag_id, run_id, task_id, None, false)
}

/// `PATCH .../taskInstances/{task_id}/dry_run`: [`patch`] with `dry_run`: the instances the
/// patch would change.
pub async fn patch_dry_run(
    State(app): State<Arc<AppState>>,
    Path((dag_id, run_id, task_id)): Path<(String, String, String)>,
    req: V1Request,
) -> Response {
    patch_ti(&app, &req, dag_id, run_id, task_id, None, true)
}

/// `PATCH .../taskInstances/{task_id}/{map_index}/dry_run`.
pub async fn patch_mapped_dry_run(
    State(app): State<Arc<AppState>>,
    Path((dag_id, run_id, task_id, map_index)): Path<(String, String, String, String)>,
    req: V1Request,
) -> Response {
    match path_map_index(&map_index) {
        Ok(m) => patch_ti(&app, &req, dag_id, run_id, task_id, Some(m), true),
        Err(e) => super::error_response(e),
    }
}

/// `PATCH .../taskInstances/{task_id}/{map_index}`: [`patch`] on one instance of a mapped task.
pub async fn patch_mapped(
    State(app): State<Arc<AppState>>,
    Path((dag_id, run_id, task_id, map_index)): Path<(String, String, String, String)>,
    req: V1Request,
) -> Response {
    match path_map_index(&map_index) {
        Ok(m) => patch_ti(&app, &req, dag_id, run_id, task_id, Some(m), false),
        Err(e) => super::error_response(e),
    }
}

fn patch_ti(
    app: &AppState,
    req: &V1Request,
    dag_id: String,
    run_id: String,
    task_id: String,
    path_map: Option<i64>,
    force_dry_run: bool,
) -> Response {
    respond(app, req, "dags:PatchTaskInstance", StatusCode::OK, |ctx| {
        ctx.authorize(dag_resource(&dag_id)?)?;
        let q = Query::parse(req.query())?;
        let mask = q.all("update_mask");
        for m in &mask {
            if !matches!(*m, "new_state" | "note") {
                return Err(bad_request(format!(
                    "Invalid field `{}` in update mask (weft updates `new_state` and `note`)",
                    clip(m)
                )));
            }
        }
        let masked = |k: &str| mask.is_empty() || mask.contains(&k);
        let only_map = match path_map {
            Some(m) => Some(m),
            None => q
                .get("map_index")
                .map(|_| map_index_param(&q))
                .transpose()?,
        };
        let dry_run = force_dry_run || q.bool("dry_run")?.unwrap_or(false);
        let body = body_object(req)?;
        only_fields(
            &body,
            &[
                "new_state",
                "note",
                "include_upstream",
                "include_downstream",
                "include_future",
                "include_past",
            ],
        )?;
        let note = (masked("note") && body.contains_key("note"))
            .then(|| super::dag_runs::body_note(&body))
            .transpose()?;
        let new_state = match body_str(&body, "new_state")?.filter(|_| masked("new_state")) {
            Some("success") => Some(TiState::Success),
            Some("failed") => Some(TiState::Failed),
            Some("skipped") => Some(TiState::Skipped),
            Some(other) => {
                return Err(unprocessable(
                    &["body", "new_state"],
                    format!(
                        "Input should be 'success', 'failed' or 'skipped', not `{}`",
                        clip(other)
                    ),
                ))
            }
            None if note.is_some() => None,
            None => return Err(unprocessable(&["body", "new_state"], "Field required")),
        };
        let flag = |k: &str| body_bool(&body, k).map(|b| b.unwrap_or(false));
        let patch = TiPatch {
            new_state,
            note,
            upstream: flag("include_upstream")?,
            downstream: flag("include_downstream")?,
            past: flag("include_past")?,
            future: flag("include_future")?,
        };
        let changed = apply_patch(app, &dag_id, &run_id, &task_id, only_map, &patch, dry_run)?;
        let total = changed.len();
        Ok(json!({"task_instances": changed, "total_entries": total}))
    })
}

/// What one task-instance patch asks (`PatchTaskInstanceBody`, or one entity of a bulk
/// update): a new state and/or a note, and how far the state spreads.
pub(super) struct TiPatch {
    /// `success`, `failed` or `skipped`.
    pub new_state: Option<TiState>,
    /// The note to set (`Some(None)` removes it).
    pub note: Option<Option<String>>,
    pub upstream: bool,
    pub downstream: bool,
    pub past: bool,
    pub future: bool,
}

/// Applies `p` to `task_id` (at `only_map`, or every instance of the task) in run `run_id` of
/// `dag_id` and answers the instances it changed as `TaskInstanceResponse`s (with only a note,
/// the instance noted); `dry_run` changes nothing. The caller has authorised the DAG.
pub(super) fn apply_patch(
    app: &AppState,
    dag_id: &str,
    run_id: &str,
    task_id: &str,
    only_map: Option<i64>,
    p: &TiPatch,
    dry_run: bool,
) -> Result<Vec<Value>, ApiError> {
    let (dag_id, run_id, task_id) = (dag_id.to_string(), run_id.to_string(), task_id.to_string());
    let (up, down, past, future) = (p.upstream, p.downstream, p.past, p.future);
    let dag = find(app, &dag_id)?;
    if !dag.tasks.contains_key(&task_id) {
        return Err(not_found(format!(
            "Task with id {} not found in Dag {dag_id}",
            clip(&task_id)
        )));
    }
    let store = sched_store(app)?;
    let r = get_run(&store, &dag_id, &run_id)?;
    if let Some(note) = &p.note {
        let map_index = only_map.unwrap_or(-1);
        find_ti(&store, &r, &task_id, map_index)?;
        if !dry_run {
            crate::dag_scheduler::apply_control(
                app,
                ControlRequest::TiNote {
                    dag_id: dag_id.clone(),
                    run_id: run_id.clone(),
                    task_id: task_id.clone(),
                    map_index,
                    note: note.clone(),
                },
            )?;
        }
    }
    let Some(new_state) = p.new_state else {
        let t = find_ti(&store, &r, &task_id, only_map.unwrap_or(-1))?;
        return Ok(vec![ti_json(
            Some(&dag),
            &r,
            &t,
            &super::dags::display_name(&dag),
        )]);
    };
    let tasks = select_tasks(&dag, std::slice::from_ref(&task_id), up, down);
    let mut runs = vec![r.clone()];
    if past || future {
        for o in store.runs_of(&dag_id).map_err(store_err)? {
            if (past && o.logical_date < r.logical_date)
                || (future && o.logical_date > r.logical_date)
            {
                runs.push(o);
            }
        }
    }
    let name = super::dags::display_name(&dag);
    let now = chrono::Utc::now().timestamp_micros() as f64 / 1e6;
    let mut changed = Vec::new();
    for run in &runs {
        if !dry_run && !run.is_finished() {
            // the scheduler thread holds the run: it marks it and stops the tries marked
            let sel: Vec<(String, Option<i64>)> = tasks
                .iter()
                .map(|t| (t.clone(), if *t == task_id { only_map } else { None }))
                .collect();
            let done = crate::dag_scheduler::apply_control(
                app,
                ControlRequest::MarkTis {
                    dag_id: dag_id.clone(),
                    run_id: run.run_id.clone(),
                    tis: sel,
                    state: new_state,
                },
            )?;
            let now = get_run(&store, &dag_id, &run.run_id)?;
            changed.extend(tis_json(app, &store, &now, |t| {
                done.iter()
                    .any(|(id, m)| *id == t.ti.task_id && *m == t.ti.map_index)
            })?);
            tracing::info!(dag_id, run_id = %run.run_id, changed = done.len(), state = new_state.as_str(), "task instances marked");
            continue;
        }
        let mut tis = store.tis_of(&run.dag_id, &run.run_id).map_err(store_err)?;
        let mut put = Vec::new();
        for t in tis.iter_mut() {
            let selected = tasks.contains(&t.ti.task_id)
                && (t.ti.task_id != task_id || only_map.is_none_or(|m| m == t.ti.map_index));
            if !selected || t.ti.state == new_state {
                continue;
            }
            t.ti.state = new_state;
            t.end_date = Some(now);
            put.push(t.clone());
        }
        changed.extend(put.iter().map(|t| ti_json(Some(&dag), run, t, &name)));
        if dry_run || put.is_empty() {
            continue;
        }
        store
            .write_tis(&run.dag_id, &run.run_id, &[], &put)
            .map_err(store_err)?;
        if let Some(st) = run_state_after(&tis) {
            if st != run.state {
                let mut rec = run.clone();
                rec.state = st.to_string();
                store.put_run(&rec).map_err(store_err)?;
            }
        }
        tracing::info!(dag_id, run_id = %run.run_id, changed = put.len(), state = new_state.as_str(), "task instances marked");
    }
    store.flush().map_err(store_err)?;
    Ok(changed)
}

/// The task ids of a `ClearTaskInstancesBody`'s `task_ids` (ids, or `[id, map_index]` pairs,
/// whose map index weft does not narrow: every instance of the task is cleared).
fn body_task_ids(body: &serde_json::Map<String, Value>) -> Result<Option<Vec<String>>, ApiError> {
    let Some(v) = body.get("task_ids").filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let bad = || {
        unprocessable(
            &["body", "task_ids"],
            "Input should be a list of task ids or [task_id, map_index] pairs",
        )
    };
    let list = v.as_array().ok_or_else(bad)?;
    if list.len() > 10_000 {
        return Err(bad());
    }
    list.iter()
        .map(|e| match e {
            Value::String(s) => Ok(s.clone()),
            Value::Array(p) if p.len() == 2 && p[1].is_i64() => {
                p[0].as_str().map(str::to_string).ok_or_else(bad)
            }
            _ => Err(bad()),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// `POST /api/v2/dags/{dag_id}/clearTaskInstances` (`ClearTaskInstancesBody`: `dry_run` (true
/// by default), `dag_run_id` or `start_date`/`end_date`, `task_ids`, `include_upstream`,
/// `include_downstream`, `include_past`, `include_future`, `only_failed` (true by default),
/// `only_running`): clears the selected instances so the
/// scheduler runs them again; answers them as a `TaskInstanceCollectionResponse`.
pub async fn clear(
    State(app): State<Arc<AppState>>,
    Path(dag_id): Path<String>,
    req: V1Request,
) -> Response {
    respond(
        &app,
        &req,
        "dags:ClearTaskInstances",
        StatusCode::OK,
        |ctx| {
            ctx.authorize(dag_resource(&dag_id)?)?;
            let body = body_object(&req)?;
            only_fields(
                &body,
                &[
                    "dry_run",
                    "start_date",
                    "end_date",
                    "only_failed",
                    "only_running",
                    "reset_dag_runs",
                    "dag_run_id",
                    "task_ids",
                    "include_upstream",
                    "include_downstream",
                    "include_future",
                    "include_past",
                    "prevent_running_task",
                    "run_on_latest_version",
                ],
            )?;
            let flag = |k: &str, d: bool| body_bool(&body, k).map(|b| b.unwrap_or(d));
            // the scheduler never lets a running instance be cleared (`prevent_running_task`),
            // and a DAG has one version, the loaded one (`run_on_latest_version`)
            flag("prevent_running_task", false)?;
            flag("run_on_latest_version", true)?;
            if !flag("reset_dag_runs", true)? {
                return Err(bad_request(
                    "weft always puts a cleared run back to queued so that it runs again: leave `reset_dag_runs` true",
                ));
            }
            let dry_run = flag("dry_run", true)?;
            let only_failed = flag("only_failed", true)?;
            let only_running = flag("only_running", false)?;
            let (up, down) = (
                flag("include_upstream", false)?,
                flag("include_downstream", false)?,
            );
            let (past, future) = (flag("include_past", false)?, flag("include_future", false)?);
            let date = |k: &str| {
                body_str(&body, k)?
                    .map(|s| {
                        weft_dag::parse_logical_date(s).map_err(|e| {
                            unprocessable(
                                &["body", k],
                                format!("Input should be a valid datetime: {e}"),
                            )
                        })
                    })
                    .transpose()
            };
            let (from, to) = (date("start_date")?, date("end_date")?);
            let dag = find(&app, &dag_id)?;
            let task_ids = body_task_ids(&body)?;
            if let Some(ids) = &task_ids {
                if let Some(t) = ids.iter().find(|t| !dag.tasks.contains_key(t.as_str())) {
                    return Err(not_found(format!(
                        "Task with id {} not found in Dag {dag_id}",
                        clip(t)
                    )));
                }
            }
            let store = sched_store(&app)?;
            let all_runs = store.runs_of(&dag_id).map_err(store_err)?;
            let runs: Vec<DagRunRecord> = match body_str(&body, "dag_run_id")? {
                Some(run_id) => {
                    let r = get_run(&store, &dag_id, run_id)?;
                    all_runs
                        .into_iter()
                        .filter(|o| {
                            o.run_id == r.run_id
                                || (past && o.logical_date < r.logical_date)
                                || (future && o.logical_date > r.logical_date)
                        })
                        .collect()
                }
                None => all_runs
                    .into_iter()
                    .filter(|o| {
                        from.is_none_or(|f| o.logical_date >= f)
                            && to.is_none_or(|t| o.logical_date <= t)
                    })
                    .collect(),
            };
            let selected = match &task_ids {
                Some(ids) => select_tasks(&dag, ids, up, down),
                None => dag.tasks.keys().cloned().collect(),
            };
            let wanted = |t: &StoredTi| {
                selected.contains(&t.ti.task_id)
                    && (!only_failed
                        || matches!(t.ti.state, TiState::Failed | TiState::UpstreamFailed))
                    && (!only_running || t.ti.state == TiState::Running)
            };
            let mut out = Vec::new();
            let mut plan = Vec::new();
            for r in &runs {
                let tis = tis_json(&app, &store, r, wanted)?;
                if tis.is_empty() {
                    continue;
                }
                let ids: BTreeSet<String> = tis
                    .iter()
                    .filter_map(|v| v["task_id"].as_str().map(str::to_string))
                    .collect();
                out.extend(tis);
                plan.push((r, ids.into_iter().collect::<Vec<_>>()));
            }
            if !dry_run {
                for (r, _) in &plan {
                    must_be_finished(r, "clear its task instances")?;
                }
                with_control(&app, |s| {
                    for (r, ids) in &plan {
                        s.clear_tasks(&dag_id, &r.run_id, ids, false)
                            .map_err(sched_error)?;
                    }
                    Ok::<_, ApiError>(())
                })?;
            }
            let total = out.len();
            Ok(json!({"task_instances": out, "total_entries": total}))
        },
    )
}

/// A log entry as Airflow's `StructuredLogMessage` (`event`, `timestamp`, and `level` when
/// the entry has one).
fn log_message(entry: &Value) -> Value {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let Value::Object(m) = entry else {
        return json!({"event": text(entry)});
    };
    let event = ["msg", "message", "event", "line", "text"]
        .iter()
        .find_map(|k| m.get(*k))
        .map_or_else(|| entry.to_string(), text);
    let timestamp = ["timestamp", "ts", "time"]
        .iter()
        .find_map(|k| m.get(*k))
        .and_then(|v| match v {
            Value::String(_) => Some(v.clone()),
            Value::Number(n) => {
                let s = n.as_f64()?;
                // epoch milliseconds or seconds
                let s = if s > 1e11 { s / 1e3 } else { s };
                Some(iso_epoch(Some(s)))
            }
            _ => None,
        })
        .unwrap_or(Value::Null);
    let mut out = json!({"event": event, "timestamp": timestamp});
    if let Some(l) = m.get("level").or_else(|| m.get("stream")) {
        out["level"] = l.clone();
    }
    out
}

/// `GET .../taskInstances/{task_id}/logs/{try_number}` (`map_index` query parameter): the try's
/// log as `TaskInstancesLogResponse` (`content` of `StructuredLogMessage`s), or as
/// newline-delimited JSON with `Accept: application/x-ndjson`.
pub async fn logs(
    State(app): State<Arc<AppState>>,
    Path((dag_id, run_id, task_id, try_number)): Path<(String, String, String, String)>,
    req: V1Request,
) -> Response {
    let ndjson = req
        .headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/x-ndjson"));
    let r = crate::v1_access::decide(&app, &req, "dags:GetTaskLogs", |ctx| {
        ctx.authorize(dag_resource(&dag_id)?)?;
        let try_number: u32 = try_number.parse().map_err(|_| {
            unprocessable(
                &["path", "try_number"],
                "Input should be a valid non-negative integer",
            )
        })?;
        let q = Query::parse(req.query())?;
        let map_index = map_index_param(&q)?;
        let store = sched_store(&app)?;
        let r = get_run(&store, &dag_id, &run_id)?;
        let t = find_ti(&store, &r, &task_id, map_index)?;
        if try_number > t.ti.try_number.max(1) {
            return Err(not_found(format!(
                "TaskInstance {} has made {} tries: no try {try_number}",
                clip(&task_id),
                t.ti.try_number
            )));
        }
        let content: Vec<Value> = store
            .logs_of(&dag_id, &run_id, &task_id)
            .map_err(store_err)?
            .into_iter()
            .filter(|(m, n, _)| *m == map_index && *n == try_number)
            .flat_map(|(_, _, entries)| entries)
            .map(|e| log_message(&e))
            .collect();
        Ok(content)
    });
    match r {
        Ok(content) if ndjson => {
            let mut text = String::new();
            for c in &content {
                text.push_str(&c.to_string());
                text.push('\n');
            }
            (
                [(axum::http::header::CONTENT_TYPE, "application/x-ndjson")],
                text,
            )
                .into_response()
        }
        Ok(content) => (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            json!({"content": content, "continuation_token": Value::Null}).to_string(),
        )
            .into_response(),
        Err(e) => super::error_response(e),
    }
}

/// The XCom entries of a task's instances: `return_value`, and with `multiple_outputs` each
/// key of an object result. `(map_index, key, value, timestamp)`.
fn xcoms(dag: Option<&Dag>, t: &StoredTi) -> Vec<(String, Value)> {
    if t.ti.xcom.is_null() {
        return Vec::new();
    }
    let mut out = vec![("return_value".to_string(), t.ti.xcom.clone())];
    let multiple = dag
        .and_then(|d| d.tasks.get(&t.ti.task_id))
        .is_some_and(|k| k.multiple_outputs);
    if let (true, Value::Object(m)) = (multiple, &t.ti.xcom) {
        out.extend(m.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    out
}

fn xcom_json(
    r: &DagRunRecord,
    t: &StoredTi,
    key: &str,
    name: &str,
    value: Option<&Value>,
) -> Value {
    let mut v = json!({
        "key": key,
        "timestamp": iso_epoch(t.end_date.or(t.start_date)).as_str().map_or_else(|| iso(&r.queued_at), |s| json!(s)),
        "logical_date": iso(&r.logical_date),
        "run_after": iso(&run_after(r)),
        "map_index": t.ti.map_index,
        "task_id": t.ti.task_id,
        "dag_id": r.dag_id,
        "run_id": r.run_id,
        "dag_display_name": name,
        "task_display_name": t.ti.task_id,
    });
    if let Some(x) = value {
        v["value"] = x.clone();
    }
    v
}

/// `GET .../taskInstances/{task_id}/xcomEntries` (`xcom_key`, `map_index`, `limit`,
/// `offset`): `XComCollectionResponse`.
pub async fn xcom_entries(
    State(app): State<Arc<AppState>>,
    Path((dag_id, run_id, task_id)): Path<(String, String, String)>,
    req: V1Request,
) -> Response {
    respond(&app, &req, "dags:GetXComEntries", StatusCode::OK, |ctx| {
        ctx.authorize(dag_resource(&dag_id)?)?;
        let q = Query::parse(req.query())?;
        let page = q.page()?;
        let key = q.get("xcom_key");
        let map_index = q
            .get("map_index")
            .map(|_| map_index_param(&q))
            .transpose()?;
        let store = sched_store(&app)?;
        let r = get_run(&store, &dag_id, &run_id)?;
        let dag = find(&app, &dag_id).ok();
        let name = dag_name(&app, &dag_id);
        let mut out = Vec::new();
        for t in store.tis_of(&dag_id, &run_id).map_err(store_err)? {
            if t.ti.task_id != task_id || map_index.is_some_and(|m| m != t.ti.map_index) {
                continue;
            }
            for (k, _) in xcoms(dag.as_ref(), &t) {
                if key.is_none_or(|want| want == k) {
                    out.push(xcom_json(&r, &t, &k, &name, None));
                }
            }
        }
        let total = out.len();
        Ok(json!({"xcom_entries": page.take(out), "total_entries": total}))
    })
}

/// `GET .../taskInstances/{task_id}/xcomEntries/{xcom_key}` (`map_index`, -1 by default):
/// `XComResponseNative` (the value as JSON).
pub async fn xcom_entry(
    State(app): State<Arc<AppState>>,
    Path((dag_id, run_id, task_id, key)): Path<(String, String, String, String)>,
    req: V1Request,
) -> Response {
    respond(&app, &req, "dags:GetXComEntries", StatusCode::OK, |ctx| {
        ctx.authorize(dag_resource(&dag_id)?)?;
        let q = Query::parse(req.query())?;
        let map_index = map_index_param(&q)?;
        let store = sched_store(&app)?;
        let r = get_run(&store, &dag_id, &run_id)?;
        let t = find_ti(&store, &r, &task_id, map_index)?;
        let dag = find(&app, &dag_id).ok();
        let stringify = q.bool("stringify")?.unwrap_or(false);
        xcoms(dag.as_ref(), &t)
            .into_iter()
            .find(|(k, _)| *k == key)
            .map(|(k, v)| {
                let v = if stringify { json!(v.to_string()) } else { v };
                xcom_json(&r, &t, &k, &dag_name(&app, &dag_id), Some(&v))
            })
            .ok_or_else(|| not_found(format!("XCom entry with key: `{}` not found", clip(&key))))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_entries_become_structured_messages() {
        let m = log_message(&json!({"level": "info", "msg": "hello", "ts": 1_700_000_000.5}));
        assert_eq!(m["event"], "hello");
        assert_eq!(m["level"], "info");
        assert!(m["timestamp"]
            .as_str()
            .unwrap()
            .starts_with("2023-11-14T22:13:20.5"));
        assert_eq!(log_message(&json!("plain"))["event"], "plain");
        assert_eq!(
            log_message(&json!({"callback": "on_failure"}))["event"],
            r#"{"callback":"on_failure"}"#
        );
    }

    #[test]
    fn instance_ids_are_stable_uuids() {
        let a = ti_id("d", "r", "t", -1);
        assert_eq!(a, ti_id("d", "r", "t", -1));
        assert_ne!(a, ti_id("d", "r", "t", 0));
        assert!(uuid::Uuid::parse_str(&a).is_ok());
    }
}
