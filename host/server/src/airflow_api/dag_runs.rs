//! `/api/v2/dags/{dag_id}/dagRuns`: weft's DAG runs as Airflow's `DAGRunResponse`; trigger
//! (with `dag_run_id`, `logical_date`, `conf`), list with Airflow's filters (`~` for every DAG
//! the caller may read), get, patch the state, clear, delete.
//!
//! Runs are changed by the server's scheduler loop while they are queued or running: marking
//! such a run `success`/`failed` goes through the loop (Airflow's mark: running tries are
//! stopped; success marks every instance, failed fails the running ones and skips the rest),
//! and deleting or clearing it is refused (409) until it has finished. A run's `note` is set on
//! trigger or by a patch (`update_mask=note`). Actions on `weft:dag:DAG_ID`: `dags:ListDagRuns` (list and get),
//! `dags:TriggerDagRun`, `dags:PatchDagRun`, `dags:ClearTaskInstances` (clear, and patch to
//! `queued`), `dags:DeleteDagRun`.

use super::dags::{display_name, find, visible_dag_ids};
use super::{
    bad_request, body_bool, body_object, body_str, clip, conflict, dag_resource, iso, iso_opt,
    not_found, only_fields, respond, sched_store, store_err, unprocessable, Query, MAX_CONF_BYTES,
};
use crate::dag_scheduler::{sched_error, with_control};
use crate::error::ApiError;
use crate::v1_access::{Ctx, V1Request};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::sync::Arc;
use weft_engine::scheduler::{ControlRequest, DagRunRecord, RunMark, SchedStore, Trigger};

/// The `~` path segment: every DAG (or run) the caller may read.
pub const ALL: &str = "~";

/// Airflow's run types for weft's (`file_trigger` runs are data-driven: `asset_triggered`).
fn run_type(t: &str) -> &'static str {
    match t {
        "scheduled" => "scheduled",
        "backfill" => "backfill",
        "file_trigger" | "asset_triggered" => "asset_triggered",
        _ => "manual",
    }
}

fn triggered_by(t: &str) -> &'static str {
    match t {
        "scheduled" => "timetable",
        "backfill" => "backfill",
        "file_trigger" | "asset_triggered" => "asset",
        _ => "rest_api",
    }
}

/// When a run may start: the end of its data interval for a scheduled run, else its
/// logical date (Airflow 3's `run_after`).
pub fn run_after(r: &DagRunRecord) -> DateTime<Utc> {
    if r.run_type == "scheduled" {
        r.data_interval_end
    } else {
        r.logical_date
    }
}

/// `DAGRunResponse`.
pub fn run_json(r: &DagRunRecord, dag_display_name: &str) -> Value {
    let duration = match (r.start_date, r.end_date) {
        (Some(s), Some(e)) => json!((e - s).num_microseconds().unwrap_or(0) as f64 / 1e6),
        _ => Value::Null,
    };
    json!({
        "dag_run_id": r.run_id,
        "dag_id": r.dag_id,
        "logical_date": iso(&r.logical_date),
        "queued_at": iso(&r.queued_at),
        "start_date": iso_opt(r.start_date.as_ref()),
        "end_date": iso_opt(r.end_date.as_ref()),
        "duration": duration,
        "data_interval_start": iso(&r.data_interval_start),
        "data_interval_end": iso(&r.data_interval_end),
        "run_after": iso(&run_after(r)),
        "last_scheduling_decision": Value::Null,
        "run_type": run_type(&r.run_type),
        "state": r.state,
        "triggered_by": triggered_by(&r.run_type),
        "triggering_user_name": Value::Null,
        "conf": r.conf,
        "note": r.note,
        "dag_versions": [],
        "bundle_version": Value::Null,
        "dag_display_name": dag_display_name,
        "partition_key": Value::Null,
        "partition_date": Value::Null,
    })
}

/// The display name of `dag_id` when it is loaded (its id otherwise).
pub fn dag_name(app: &AppState, dag_id: &str) -> String {
    find(app, dag_id).map_or_else(|_| dag_id.to_string(), |d| display_name(&d))
}

/// A run, or Airflow's 404.
pub fn get_run(store: &SchedStore, dag_id: &str, run_id: &str) -> Result<DagRunRecord, ApiError> {
    store
        .get_run(dag_id, run_id)
        .map_err(store_err)?
        .ok_or_else(|| {
            not_found(format!(
                "The DagRun with dag_id: `{}` and run_id: `{}` was not found",
                clip(dag_id),
                clip(run_id)
            ))
        })
}

/// Airflow's run id alphabet (`RUN_ID_REGEX`): letters, digits, `_`, `.`, `~`, `:`, `+`, `-`;
/// 1 to 250 characters.
pub fn valid_run_id(id: &str) -> bool {
    (1..=250).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.~:+-".contains(&b))
}

/// The DAG ids a route reads: the one in the path (authorised with the route's action), or
/// with `~` every loaded DAG the caller may `action` (the decision is per DAG).
pub fn dag_ids_of(
    app: &AppState,
    ctx: &mut Ctx,
    dag_id: &str,
    action: &str,
) -> Result<Vec<String>, ApiError> {
    if dag_id == ALL {
        ctx.filtered("*");
        Ok(visible_dag_ids(app, ctx, action))
    } else {
        ctx.authorize(dag_resource(dag_id)?)?;
        Ok(vec![dag_id.to_string()])
    }
}

/// A range filter on a date field: `NAME_gte`, `NAME_gt`, `NAME_lte`, `NAME_lt`.
pub struct DateRange {
    gte: Option<DateTime<Utc>>,
    gt: Option<DateTime<Utc>>,
    lte: Option<DateTime<Utc>>,
    lt: Option<DateTime<Utc>>,
}

impl DateRange {
    pub fn parse(q: &Query, name: &str) -> Result<Self, ApiError> {
        Ok(DateRange {
            gte: q.date(&format!("{name}_gte"))?,
            gt: q.date(&format!("{name}_gt"))?,
            lte: q.date(&format!("{name}_lte"))?,
            lt: q.date(&format!("{name}_lt"))?,
        })
    }

    /// Whether `d` is in the range (a missing date is in it only when no bound is set).
    pub fn contains(&self, d: Option<DateTime<Utc>>) -> bool {
        let bounded =
            self.gte.is_some() || self.gt.is_some() || self.lte.is_some() || self.lt.is_some();
        let Some(d) = d else {
            return !bounded;
        };
        self.gte.is_none_or(|b| d >= b)
            && self.gt.is_none_or(|b| d > b)
            && self.lte.is_none_or(|b| d <= b)
            && self.lt.is_none_or(|b| d < b)
    }
}

const RUN_STATES: &[&str] = &["queued", "running", "success", "failed"];
const RUN_TYPES: &[&str] = &[
    "backfill",
    "scheduled",
    "manual",
    "operator_triggered",
    "asset_triggered",
    "asset_materialization",
];

/// Every value of `name` must be one of `allowed` (Airflow's enums), else a 422.
pub fn enum_values<'a>(
    q: &'a Query,
    name: &str,
    allowed: &[&str],
) -> Result<Vec<&'a str>, ApiError> {
    let v = q.all(name);
    if let Some(bad) = v.iter().find(|s| !allowed.contains(s)) {
        return Err(unprocessable(
            &["query", name],
            format!(
                "Input should be one of {}, not `{}`",
                allowed.join(", "),
                clip(bad)
            ),
        ));
    }
    Ok(v)
}

/// `GET /api/v2/dags/{dag_id}/dagRuns` (`~`: every DAG): `limit`, `offset`, `order_by`
/// (`id`, `state`, `dag_id`, `run_id`/`dag_run_id`, `logical_date`, `run_after`,
/// `start_date`, `end_date`, `duration`), `state`, `run_type`, `run_id_pattern`,
/// `dag_id_pattern` (and their case-sensitive `_prefix_pattern`s), and `_gte`/`_gt`/`_lte`/`_lt` bounds on `logical_date`, `run_after`,
/// `start_date`, `end_date`.
pub async fn list(
    State(app): State<Arc<AppState>>,
    Path(dag_id): Path<String>,
    req: V1Request,
) -> Response {
    respond(&app, &req, "dags:ListDagRuns", StatusCode::OK, |ctx| {
        let q = Query::parse(req.query())?;
        let page = q.page()?;
        let order = q.order_by(
            &[
                "id",
                "state",
                "dag_id",
                "run_id",
                "dag_run_id",
                "logical_date",
                "run_after",
                "start_date",
                "end_date",
                "duration",
                "queued_at",
            ],
            "id",
        )?;
        let states = enum_values(&q, "state", RUN_STATES)?;
        let types = enum_values(&q, "run_type", RUN_TYPES)?;
        let logical = DateRange::parse(&q, "logical_date")?;
        let after = DateRange::parse(&q, "run_after")?;
        let start = DateRange::parse(&q, "start_date")?;
        let end = DateRange::parse(&q, "end_date")?;
        let run_pat = q.get("run_id_pattern");
        let run_prefix = q.get("run_id_prefix_pattern");
        let dag_pat = q.get("dag_id_pattern");
        let dag_prefix = q.get("dag_id_prefix_pattern");
        let ids = dag_ids_of(&app, ctx, &dag_id, "dags:ListDagRuns")?;
        if dag_id != ALL {
            find(&app, &dag_id)?;
        }
        let store = sched_store(&app)?;
        // filter, sort and page the records; only the page is rendered as JSON
        let mut out: Vec<(DagRunRecord, Arc<str>)> = Vec::new();
        for id in ids {
            if dag_pat.is_some_and(|p| !super::dags::like(p, &id))
                || dag_prefix.is_some_and(|p| !id.starts_with(p))
            {
                continue;
            }
            let name: Arc<str> = dag_name(&app, &id).into();
            for r in store.runs_of(&id).map_err(store_err)? {
                if (!states.is_empty() && !states.contains(&r.state.as_str()))
                    || (!types.is_empty() && !types.contains(&run_type(&r.run_type)))
                    || !logical.contains(Some(r.logical_date))
                    || !after.contains(Some(run_after(&r)))
                    || !start.contains(r.start_date)
                    || !end.contains(r.end_date)
                    || run_pat.is_some_and(|p| !super::dags::like(p, &r.run_id))
                    || run_prefix.is_some_and(|p| !r.run_id.starts_with(p))
                {
                    continue;
                }
                out.push((r, name.clone()));
            }
        }
        out.sort_by(|(a, _), (b, _)| {
            for (field, desc) in &order {
                let o = compare_runs(a, b, field);
                let o = if *desc { o.reverse() } else { o };
                if o.is_ne() {
                    return o;
                }
            }
            std::cmp::Ordering::Equal
        });
        let total = out.len();
        let page: Vec<Value> = page
            .take(out)
            .iter()
            .map(|(r, name)| run_json(r, name))
            .collect();
        Ok(json!({"dag_runs": page, "total_entries": total}))
    })
}

fn duration_s(r: &DagRunRecord) -> Option<i64> {
    Some(
        (r.end_date? - r.start_date?)
            .num_microseconds()
            .unwrap_or(0),
    )
}

/// Orders two runs by an `order_by` field (a missing date or duration sorts first).
fn compare_runs(a: &DagRunRecord, b: &DagRunRecord, field: &str) -> std::cmp::Ordering {
    match field {
        "state" => a.state.cmp(&b.state),
        "dag_id" => a.dag_id.cmp(&b.dag_id),
        "run_id" | "dag_run_id" => a.run_id.cmp(&b.run_id),
        "logical_date" => a.logical_date.cmp(&b.logical_date),
        "run_after" => run_after(a).cmp(&run_after(b)),
        "start_date" => a.start_date.cmp(&b.start_date),
        "end_date" => a.end_date.cmp(&b.end_date),
        "duration" => duration_s(a).cmp(&duration_s(b)),
        // runs have no numeric id: creation order is when they were queued
        _ => a.queued_at.cmp(&b.queued_at),
    }
}

/// `GET /api/v2/dags/{dag_id}/dagRuns/{dag_run_id}`.
pub async fn get_one(
    State(app): State<Arc<AppState>>,
    Path((dag_id, run_id)): Path<(String, String)>,
    req: V1Request,
) -> Response {
    respond(&app, &req, "dags:ListDagRuns", StatusCode::OK, |ctx| {
        ctx.authorize(dag_resource(&dag_id)?)?;
        let r = get_run(&sched_store(&app)?, &dag_id, &run_id)?;
        Ok(run_json(&r, &dag_name(&app, &dag_id)))
    })
}

fn body_date(
    body: &serde_json::Map<String, Value>,
    name: &str,
) -> Result<Option<DateTime<Utc>>, ApiError> {
    body_str(body, name)?
        .map(|s| {
            weft_dag::parse_logical_date(s).map_err(|e| {
                unprocessable(
                    &["body", name],
                    format!("Input should be a valid datetime: {e}"),
                )
            })
        })
        .transpose()
}

/// `POST /api/v2/dags/{dag_id}/dagRuns` (`TriggerDAGRunPostBody`: `dag_run_id`,
/// `logical_date`, `conf`, `data_interval_start`/`_end`, `run_after`, `note`): a manual run,
/// run by the server's scheduler thread. 409 when the run id or logical date is taken.
pub async fn trigger(
    State(app): State<Arc<AppState>>,
    Path(dag_id): Path<String>,
    req: V1Request,
) -> Response {
    respond(&app, &req, "dags:TriggerDagRun", StatusCode::OK, |ctx| {
        ctx.authorize(dag_resource(&dag_id)?)?;
        let body = body_object(&req)?;
        only_fields(
            &body,
            &[
                "dag_run_id",
                "logical_date",
                "conf",
                "data_interval_start",
                "data_interval_end",
                "run_after",
                "note",
                "partition_key",
            ],
        )?;
        let run_id = body_str(&body, "dag_run_id")?.map(str::to_string);
        if let Some(id) = &run_id {
            if !valid_run_id(id) {
                return Err(unprocessable(
                    &["body", "dag_run_id"],
                    format!(
                        "`{}` is not a run id (1 to 250 letters, digits, `_`, `.`, `~`, `:`, `+` or `-`)",
                        clip(id)
                    ),
                ));
            }
        }
        let conf = match body.get("conf") {
            None | Some(Value::Null) => serde_json::Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(_) => {
                return Err(unprocessable(
                    &["body", "conf"],
                    "Input should be a valid dictionary",
                ))
            }
        };
        let conf_len = Value::Object(conf.clone()).to_string().len();
        if conf_len > MAX_CONF_BYTES {
            return Err(unprocessable(
                &["body", "conf"],
                format!("conf is {conf_len} bytes of JSON; at most {MAX_CONF_BYTES} are accepted"),
            ));
        }
        let note = body_note(&body)?;
        if body_str(&body, "partition_key")?.is_some() {
            return Err(bad_request(
                "weft has no partitioned DAGs: leave `partition_key` out",
            ));
        }
        let interval = match (
            body_date(&body, "data_interval_start")?,
            body_date(&body, "data_interval_end")?,
        ) {
            (None, None) => None,
            (Some(start), Some(end)) if start <= end => {
                Some(weft_dag::timetable::DataInterval { start, end })
            }
            (Some(_), Some(_)) => {
                return Err(bad_request(
                    "data_interval_start must be before data_interval_end",
                ))
            }
            _ => {
                return Err(bad_request(
                    "Either both data_interval_start and data_interval_end must be provided or both must be None",
                ))
            }
        };
        let given = body_date(&body, "logical_date")?.or(body_date(&body, "run_after")?);
        find(&app, &dag_id)?;
        let mut when = given.unwrap_or_else(Utc::now);
        let rec = with_control(&app, |s| loop {
            let r = s.create_run_named(
                &dag_id,
                run_id.clone(),
                when,
                interval,
                conf.clone(),
                Trigger::Manual,
            );
            match r {
                // without a given date, runs triggered in the same millisecond get distinct ones
                Err(weft_engine::scheduler::SchedulerError::RunExists { .. })
                    if given.is_none() && run_id.is_none() =>
                {
                    when += chrono::Duration::milliseconds(1);
                }
                Err(e @ weft_engine::scheduler::SchedulerError::RunExists { .. }) => {
                    return Err(conflict(format!(
                        "DAGRun with dag_id: '{dag_id}' and run_id: '{}' already exists ({e})",
                        run_id.as_deref().unwrap_or("(generated)")
                    )))
                }
                r => return r.map_err(sched_error),
            }
        })?;
        let rec = match note {
            Some(note) => {
                crate::dag_scheduler::apply_control(
                    &app,
                    ControlRequest::RunNote {
                        dag_id: dag_id.clone(),
                        run_id: rec.run_id.clone(),
                        note: Some(note),
                    },
                )?;
                get_run(&sched_store(&app)?, &dag_id, &rec.run_id)?
            }
            None => rec,
        };
        Ok(run_json(&rec, &dag_name(&app, &dag_id)))
    })
}

/// Task ids to clear in a run: every task, or with `only_failed` those with a failed or
/// upstream-failed instance.
fn tasks_to_clear(
    store: &SchedStore,
    r: &DagRunRecord,
    only_failed: bool,
) -> Result<Vec<String>, ApiError> {
    let mut ids: Vec<String> = store
        .tis_of(&r.dag_id, &r.run_id)
        .map_err(store_err)?
        .into_iter()
        .filter(|t| {
            !only_failed
                || matches!(
                    t.ti.state,
                    weft_dag::TiState::Failed | weft_dag::TiState::UpstreamFailed
                )
        })
        .map(|t| t.ti.task_id)
        .collect();
    ids.dedup();
    Ok(ids)
}

/// Refuses to change a run the scheduler is still working on.
/// Most characters of a note (Airflow's limit).
pub const MAX_NOTE_CHARS: usize = 1000;

/// A body's `note`: a string of at most [`MAX_NOTE_CHARS`] characters, or `null`/absent.
pub fn body_note(body: &serde_json::Map<String, Value>) -> Result<Option<String>, ApiError> {
    match body.get("note") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.chars().count() <= MAX_NOTE_CHARS => Ok(Some(s.clone())),
        Some(Value::String(_)) => Err(unprocessable(
            &["body", "note"],
            format!("String should have at most {MAX_NOTE_CHARS} characters"),
        )),
        Some(_) => Err(unprocessable(
            &["body", "note"],
            "Input should be a valid string",
        )),
    }
}

pub fn must_be_finished(r: &DagRunRecord, what: &str) -> Result<(), ApiError> {
    if r.is_finished() {
        Ok(())
    } else {
        Err(conflict(format!(
            "DagRun `{}` of `{}` is {}: weft can {what} once it has finished",
            r.run_id, r.dag_id, r.state
        )))
    }
}

/// `POST /api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/clear` (`dry_run` true by default:
/// answers the task instances it would clear; `only_failed`).
pub async fn clear(
    State(app): State<Arc<AppState>>,
    Path((dag_id, run_id)): Path<(String, String)>,
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
                    "only_failed",
                    "only_new",
                    "run_on_latest_version",
                ],
            )?;
            // a DAG has one version, the loaded one: no newly added tasks to queue alone
            if body_bool(&body, "only_new")?.unwrap_or(false) {
                return Err(bad_request(
                    "weft keeps one version of a DAG: `only_new` has no tasks to queue",
                ));
            }
            body_bool(&body, "run_on_latest_version")?;
            let dry_run = body_bool(&body, "dry_run")?.unwrap_or(true);
            let only_failed = body_bool(&body, "only_failed")?.unwrap_or(false);
            let store = sched_store(&app)?;
            let r = get_run(&store, &dag_id, &run_id)?;
            let tasks = tasks_to_clear(&store, &r, only_failed)?;
            if dry_run {
                let tis = super::task_instances::tis_json(&app, &store, &r, |t| {
                    tasks.contains(&t.ti.task_id)
                })?;
                let total = tis.len();
                return Ok(json!({"task_instances": tis, "total_entries": total}));
            }
            must_be_finished(&r, "clear the run")?;
            if !tasks.is_empty() {
                with_control(&app, |s| {
                    s.clear_tasks(&dag_id, &run_id, &tasks, false)
                        .map_err(sched_error)
                })?;
            }
            let r = get_run(&store, &dag_id, &run_id)?;
            Ok(run_json(&r, &dag_name(&app, &dag_id)))
        },
    )
}

/// `PATCH /api/v2/dags/{dag_id}/dagRuns/{dag_run_id}` `{"state": "success"|"failed"|"queued"}`:
/// marks a finished run success or failed, or clears it (`queued`: every task runs again).
pub async fn patch(
    State(app): State<Arc<AppState>>,
    Path((dag_id, run_id)): Path<(String, String)>,
    req: V1Request,
) -> Response {
    respond(&app, &req, "dags:PatchDagRun", StatusCode::OK, |ctx| {
        ctx.authorize(dag_resource(&dag_id)?)?;
        let q = Query::parse(req.query())?;
        let mask = q.all("update_mask");
        for m in &mask {
            if !matches!(*m, "state" | "note") {
                return Err(bad_request(format!(
                    "Invalid field `{}` in update mask (weft updates `state` and `note`)",
                    clip(m)
                )));
            }
        }
        let body = body_object(&req)?;
        only_fields(&body, &["state", "note"])?;
        let masked = |k: &str| mask.is_empty() || mask.contains(&k);
        let state = if masked("state") {
            body_str(&body, "state")?
        } else {
            None
        };
        let store = sched_store(&app)?;
        let mut r = get_run(&store, &dag_id, &run_id)?;
        if masked("note") && body.contains_key("note") {
            // `null` removes the note
            let note = body_note(&body)?;
            crate::dag_scheduler::apply_control(
                &app,
                ControlRequest::RunNote {
                    dag_id: dag_id.clone(),
                    run_id: run_id.clone(),
                    note,
                },
            )?;
            r = get_run(&store, &dag_id, &run_id)?;
        }
        match state {
            None => {}
            Some("queued") => {
                ctx.authorize_also("dags:ClearTaskInstances", &dag_resource(&dag_id)?)?;
                must_be_finished(&r, "clear the run")?;
                let tasks = tasks_to_clear(&store, &r, false)?;
                if !tasks.is_empty() {
                    with_control(&app, |s| {
                        s.clear_tasks(&dag_id, &run_id, &tasks, false)
                            .map_err(sched_error)
                    })?;
                }
                r = get_run(&store, &dag_id, &run_id)?;
            }
            Some(st @ ("success" | "failed")) if !r.is_finished() => {
                // Airflow's mark: running tries are stopped, what had not run is skipped
                // (failed) or every instance succeeds (success)
                crate::dag_scheduler::apply_control(
                    &app,
                    ControlRequest::MarkRun {
                        dag_id: dag_id.clone(),
                        run_id: run_id.clone(),
                        mark: if st == "success" {
                            RunMark::Success
                        } else {
                            RunMark::Failed
                        },
                    },
                )?;
                r = get_run(&store, &dag_id, &run_id)?;
                tracing::info!(dag_id = %r.dag_id, run_id = %r.run_id, state = st, "dag run marked");
            }
            Some(st @ ("success" | "failed")) if r.state != st => {
                r.state = st.to_string();
                r.end_date = Some(Utc::now());
                store.put_run(&r).map_err(store_err)?;
                store.flush().map_err(store_err)?;
                tracing::info!(dag_id = %r.dag_id, run_id = %r.run_id, state = st, "dag run marked");
            }
            Some("success" | "failed") => {}
            Some(other) => {
                return Err(unprocessable(
                    &["body", "state"],
                    format!(
                        "Input should be 'queued', 'success' or 'failed', not `{}`",
                        clip(other)
                    ),
                ))
            }
        }
        Ok(run_json(&r, &dag_name(&app, &dag_id)))
    })
}

/// `DELETE /api/v2/dags/{dag_id}/dagRuns/{dag_run_id}`: 204; the run's task instances and logs
/// go with it.
pub async fn delete(
    State(app): State<Arc<AppState>>,
    Path((dag_id, run_id)): Path<(String, String)>,
    req: V1Request,
) -> Response {
    respond(
        &app,
        &req,
        "dags:DeleteDagRun",
        StatusCode::NO_CONTENT,
        |ctx| {
            ctx.authorize(dag_resource(&dag_id)?)?;
            let store = sched_store(&app)?;
            let r = get_run(&store, &dag_id, &run_id)?;
            must_be_finished(&r, "delete the run")?;
            store.delete_run(&dag_id, &run_id).map_err(store_err)?;
            store.flush().map_err(store_err)?;
            tracing::info!(dag_id, run_id, "dag run deleted");
            Ok(Value::Null)
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_use_airflows_alphabet() {
        assert!(valid_run_id("manual__2024-01-01T00:00:00+00:00"));
        for bad in ["", "a/b", "a b", "a\0b", &"x".repeat(251), "é"] {
            assert!(!valid_run_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn date_ranges() {
        let q = Query::parse(Some("d_gte=2024-01-02T00:00:00Z&d_lt=2024-01-03T00:00:00Z")).unwrap();
        let r = DateRange::parse(&q, "d").unwrap();
        let d = |s: &str| Some(weft_dag::parse_logical_date(s).unwrap());
        assert!(r.contains(d("2024-01-02T00:00:00Z")));
        assert!(!r.contains(d("2024-01-03T00:00:00Z")));
        assert!(!r.contains(None));
        let q = Query::parse(Some("d_gte=yesterday")).unwrap();
        assert!(DateRange::parse(&q, "d").is_err());
    }
}
