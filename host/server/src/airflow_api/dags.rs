//! `/api/v2/dags`: the DAGs of the server's DAG folder as Airflow's `DAGResponse`,
//! `DAGDetailsResponse` and `TaskResponse`, and pause/unpause (`PATCH` with `is_paused`, kept
//! in the scheduler's store so that the scheduler honours it).
//!
//! Also `GET /api/v2/dagSources/{dag_id}` (the DAG's file) and `DELETE /api/v2/dags/{dag_id}`
//! (its records). Actions: `dags:ListDags` (per listed DAG), `dags:GetDag` (a DAG, its details,
//! tasks and source), `dags:PatchDag` (pause/unpause), `dags:DeleteDag`, all on
//! `weft:dag:DAG_ID`.

use super::{
    body_bool, body_object, clip, dag_resource, iso_opt, not_found, only_fields, respond,
    sched_store, sort_json, store_err, unprocessable, Query,
};
use crate::error::ApiError;
use crate::v1_access::V1Request;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::sync::Arc;
use weft_dag::Dag;

/// A DAG's display name (`dag_display_name`, else its id).
pub fn display_name(d: &Dag) -> String {
    d.extra
        .get("dag_display_name")
        .and_then(Value::as_str)
        .map_or_else(|| d.dag_id.clone(), str::to_string)
}

/// Whether `d` is paused (its stored flag, else its `is_paused_upon_creation`, else the
/// server's default).
pub fn is_paused(store: &weft_engine::scheduler::SchedStore, d: &Dag) -> Result<bool, ApiError> {
    Ok(weft_engine::scheduler::paused_or_default(
        store.dag_paused(&d.dag_id).map_err(store_err)?,
        d,
        crate::dag_scheduler::dags_paused_at_creation(),
    ))
}

/// The loaded DAG `dag_id`, or Airflow's 404.
pub fn find(app: &AppState, dag_id: &str) -> Result<Dag, ApiError> {
    let (dags, _, _) = crate::rest::load_dags(app);
    dags.into_iter()
        .find(|d| d.dag_id == dag_id)
        .ok_or_else(|| not_found(format!("The Dag with ID: `{}` was not found", clip(dag_id))))
}

fn schedule_summary(s: &weft_dag::Schedule) -> Value {
    match s {
        weft_dag::Schedule::Never => Value::Null,
        weft_dag::Schedule::Once => json!("@once"),
        weft_dag::Schedule::Cron { source, .. } => json!(source),
        weft_dag::Schedule::Delta(d) | weft_dag::Schedule::DeltaTrigger { delta: d, .. } => {
            json!(time_delta_text(d.as_secs()))
        }
        weft_dag::Schedule::CronTrigger { source, .. } => json!(source),
        // as Airflow summarises asset-triggered timetables
        weft_dag::Schedule::Assets { timetable, .. } => match timetable {
            Some(t) => json!(format!(
                "Asset or {}",
                schedule_summary(t).as_str().unwrap_or("?")
            )),
            None => json!("Asset"),
        },
        weft_dag::Schedule::NotRun { what } => json!(what),
    }
}

/// `H:MM:SS` or `N days, H:MM:SS`, as Python prints a timedelta.
fn time_delta_text(secs: u64) -> String {
    let (d, r) = (secs / 86400, secs % 86400);
    let hms = format!("{}:{:02}:{:02}", r / 3600, r % 3600 / 60, r % 60);
    match d {
        0 => hms,
        1 => format!("1 day, {hms}"),
        n => format!("{n} days, {hms}"),
    }
}

/// Airflow's `TimeDelta` object.
pub fn time_delta(d: std::time::Duration) -> Value {
    let secs = d.as_secs();
    json!({"__type": "TimeDelta", "days": secs / 86400, "seconds": secs % 86400, "microseconds": d.subsec_micros()})
}

fn owners(d: &Dag) -> Vec<String> {
    let mut o: Vec<String> = d.tasks.values().map(|t| t.owner.clone()).collect();
    o.sort();
    o.dedup();
    o
}

/// `DAGResponse`.
pub fn dag_json(d: &Dag, paused: bool) -> Value {
    let name = display_name(d);
    let next = d.next_dagrun_info(None, chrono::Utc::now());
    let fileloc = d.file.display().to_string();
    json!({
        "dag_id": d.dag_id,
        "dag_display_name": name,
        "is_paused": paused,
        "is_stale": false,
        "last_parsed_time": Value::Null,
        "last_parse_duration": Value::Null,
        "last_expired": Value::Null,
        "bundle_name": "dags-folder",
        "bundle_version": Value::Null,
        "relative_fileloc": d.file.file_name().map(|f| f.to_string_lossy().into_owned()),
        "fileloc": fileloc,
        "description": d.description,
        "timetable_summary": schedule_summary(&d.schedule),
        "timetable_description": schedule_summary(&d.schedule),
        "timetable_partitioned": false,
        "timetable_periodic": !matches!(d.schedule, weft_dag::Schedule::Never | weft_dag::Schedule::Once),
        "tags": d.tags.iter().map(|t| json!({"name": t, "dag_id": d.dag_id, "dag_display_name": name})).collect::<Vec<_>>(),
        "max_active_tasks": d.max_active_tasks,
        "max_active_runs": d.max_active_runs,
        "max_consecutive_failed_dag_runs": d.extra.get("max_consecutive_failed_dag_runs").and_then(Value::as_u64).unwrap_or(0),
        "has_task_concurrency_limits": d.tasks.values().any(|t| t.extra.contains_key("max_active_tis_per_dag")),
        "has_import_errors": false,
        "next_dagrun_logical_date": iso_opt(next.as_ref().map(|n| &n.logical_date)),
        "next_dagrun_data_interval_start": iso_opt(next.as_ref().map(|n| &n.data_interval.start)),
        "next_dagrun_data_interval_end": iso_opt(next.as_ref().map(|n| &n.data_interval.end)),
        "next_dagrun_run_after": iso_opt(next.as_ref().map(|n| &n.run_after)),
        "owners": owners(d),
        "is_backfillable": !matches!(d.schedule, weft_dag::Schedule::Never),
        "file_token": blake3::hash(fileloc.as_bytes()).to_hex().to_string(),
        "allowed_run_types": Value::Null,
    })
}

/// `DAGDetailsResponse`.
pub fn details_json(d: &Dag, paused: bool, active_runs: usize) -> Value {
    let mut v = dag_json(d, paused);
    let extra = json!({
        "catchup": d.catchup,
        "render_template_as_native_obj": d.render_template_as_native_obj,
        "concurrency": d.max_active_tasks,
        "start_date": iso_opt(d.start_date.as_ref()),
        "end_date": iso_opt(d.end_date.as_ref()),
        "timezone": d.timezone.name(),
        "params": d.params,
        "default_args": d.default_args,
        "doc_md": d.extra.get("doc_md"),
        "is_paused_upon_creation": d.extra.get("is_paused_upon_creation").and_then(Value::as_bool),
        "dag_run_timeout": Value::Null,
        "template_search_path": Value::Null,
        "owner_links": Value::Null,
        "last_parsed": Value::Null,
        "asset_expression": Value::Null,
        "latest_dag_version": Value::Null,
        "is_favorite": false,
        "active_runs_count": active_runs,
    });
    if let (Value::Object(a), Value::Object(b)) = (&mut v, extra) {
        a.extend(b);
    }
    v
}

/// `TaskResponse`.
pub fn task_json(t: &weft_dag::Task) -> Value {
    let flag = |k: &str| t.extra.get(k).and_then(Value::as_bool).unwrap_or(false);
    let (module, class) = match t.operator_source.rsplit_once('.') {
        Some((m, c)) => (json!(m), json!(c)),
        None => (Value::Null, json!(t.operator_source)),
    };
    json!({
        "task_id": t.task_id,
        "task_display_name": t.task_id,
        "owner": t.owner,
        "start_date": Value::Null,
        "end_date": Value::Null,
        "trigger_rule": t.trigger_rule.as_str(),
        "depends_on_past": flag("depends_on_past"),
        "wait_for_downstream": flag("wait_for_downstream"),
        "retries": t.retries,
        "queue": t.queue,
        "pool": t.pool,
        "pool_slots": t.pool_slots,
        "execution_timeout": t.execution_timeout.map(time_delta),
        "retry_delay": time_delta(t.retry_delay),
        "retry_exponential_backoff": if t.retry_exponential_backoff { 2.0 } else { 0.0 },
        "priority_weight": t.priority_weight,
        "weight_rule": Value::Null,
        "ui_color": Value::Null,
        "ui_fgcolor": Value::Null,
        "template_fields": [],
        "downstream_task_ids": t.downstream,
        "doc_md": t.extra.get("doc_md"),
        "operator_name": class,
        "params": t.params,
        "class_ref": {"module_path": module, "class_name": class},
        "is_mapped": t.expand.is_some(),
        "extra_links": [],
    })
}

/// SQL `LIKE` as Airflow's `*_pattern` filters use it (`%` any run, `_` one character),
/// case-insensitive, matched anywhere in `s`.
pub fn like(pattern: &str, s: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().take(256).collect();
    let s: Vec<char> = s.to_lowercase().chars().collect();
    // ok[j]: the pattern read so far matches some substring of `s` ending before j
    // (dynamic programming: time |p| * |s|, whatever the pattern)
    let mut ok = vec![true; s.len() + 1];
    for c in &p {
        let mut next = vec![false; s.len() + 1];
        match c {
            '%' => {
                let mut any = false;
                for j in 0..=s.len() {
                    any |= ok[j];
                    next[j] = any;
                }
            }
            _ => {
                for j in 1..=s.len() {
                    next[j] = ok[j - 1] && (*c == '_' || s[j - 1] == *c);
                }
            }
        }
        ok = next;
    }
    ok.iter().any(|b| *b)
}

/// `GET /api/v2/dags`: `limit`, `offset`, `order_by` (`dag_id`, `dag_display_name`,
/// `next_dagrun`), `tags` (with `tags_match_mode` `any`/`all`), `owners`, `dag_id_pattern`,
/// `dag_display_name_pattern`, `paused`, `exclude_stale`.
pub async fn list(State(app): State<Arc<AppState>>, req: V1Request) -> Response {
    respond(&app, &req, "dags:ListDags", StatusCode::OK, |ctx| {
        ctx.filtered("*");
        let q = Query::parse(req.query())?;
        let page = q.page()?;
        let order = q.order_by(&["dag_id", "dag_display_name", "next_dagrun"], "dag_id")?;
        let paused = q.bool("paused")?;
        q.bool("exclude_stale")?;
        let tags = q.all("tags");
        let all_tags = match q.get("tags_match_mode") {
            None | Some("any") => false,
            Some("all") => true,
            Some(o) => {
                return Err(unprocessable(
                    &["query", "tags_match_mode"],
                    format!("Input should be 'any' or 'all', not `{}`", clip(o)),
                ))
            }
        };
        let owners_f = q.all("owners");
        let id_pat = q.get("dag_id_pattern");
        let id_prefix = q.get("dag_id_prefix_pattern");
        let name_pat = q.get("dag_display_name_pattern");
        let store = sched_store(&app)?;
        let (dags, _, _) = crate::rest::load_dags(&app);
        let mut out = Vec::new();
        for d in &dags {
            if !ctx.may("dags:ListDags", &format!("weft:dag:{}", d.dag_id)) {
                continue;
            }
            if id_pat.is_some_and(|p| !like(p, &d.dag_id))
                || id_prefix.is_some_and(|p| !d.dag_id.starts_with(p))
                || name_pat.is_some_and(|p| !like(p, &display_name(d)))
            {
                continue;
            }
            if !tags.is_empty() {
                let has = |t: &&str| d.tags.iter().any(|x| x == t);
                let ok = if all_tags {
                    tags.iter().all(has)
                } else {
                    tags.iter().any(has)
                };
                if !ok {
                    continue;
                }
            }
            if !owners_f.is_empty() && !owners(d).iter().any(|o| owners_f.contains(&o.as_str())) {
                continue;
            }
            let p = is_paused(&store, d)?;
            if paused.is_some_and(|want| want != p) {
                continue;
            }
            out.push(dag_json(d, p));
        }
        let order: Vec<_> = order
            .into_iter()
            .map(|(f, desc)| {
                let f = if f == "next_dagrun" {
                    "next_dagrun_logical_date"
                } else {
                    f
                };
                (f, desc)
            })
            .collect();
        sort_json(&mut out, &order);
        let total = out.len();
        Ok(json!({"dags": page.take(out), "total_entries": total}))
    })
}

/// `GET /api/v2/dags/{dag_id}`.
pub async fn get_one(
    State(app): State<Arc<AppState>>,
    Path(dag_id): Path<String>,
    req: V1Request,
) -> Response {
    respond(&app, &req, "dags:GetDag", StatusCode::OK, |ctx| {
        ctx.authorize(dag_resource(&dag_id)?)?;
        let d = find(&app, &dag_id)?;
        Ok(dag_json(&d, is_paused(&sched_store(&app)?, &d)?))
    })
}

/// `PATCH /api/v2/dags/{dag_id}` `{"is_paused": BOOL}` (`update_mask=is_paused` optional):
/// pauses or unpauses the DAG; answers its `DAGResponse`.
pub async fn patch(
    State(app): State<Arc<AppState>>,
    Path(dag_id): Path<String>,
    req: V1Request,
) -> Response {
    respond(&app, &req, "dags:PatchDag", StatusCode::OK, |ctx| {
        ctx.authorize(dag_resource(&dag_id)?)?;
        let q = Query::parse(req.query())?;
        for m in q.all("update_mask") {
            if m != "is_paused" {
                return Err(super::bad_request(format!(
                    "Only `is_paused` field can be updated through the REST API, not `{}`",
                    clip(m)
                )));
            }
        }
        let body = body_object(&req)?;
        only_fields(&body, &["is_paused"])?;
        let paused = body_bool(&body, "is_paused")?
            .ok_or_else(|| unprocessable(&["body", "is_paused"], "Field required"))?;
        let d = find(&app, &dag_id)?;
        let store = sched_store(&app)?;
        store.set_dag_paused(&d.dag_id, paused).map_err(store_err)?;
        store.flush().map_err(store_err)?;
        tracing::info!(dag_id = %d.dag_id, paused, "DAG paused flag set");
        Ok(dag_json(&d, paused))
    })
}

/// Largest DAG file served by `GET /api/v2/dagSources/{dag_id}`.
pub const MAX_SOURCE_BYTES: u64 = 1 << 20;

/// `GET /api/v2/dagSources/{dag_id}`: the DAG's file as `DAGSourceResponse` (`content`), or
/// the text alone with `Accept: text/plain`.
pub async fn source(
    State(app): State<Arc<AppState>>,
    Path(dag_id): Path<String>,
    req: V1Request,
) -> Response {
    let plain = req
        .headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/plain"));
    let r = crate::v1_access::decide(&app, &req, "dags:GetDag", |ctx| {
        ctx.authorize(dag_resource(&dag_id)?)?;
        let d = find(&app, &dag_id)?;
        // the file the loader read from the DAG folder, opened without following a symlink
        // planted in its place since, and read up to the cap
        let f = open_no_follow(&d.file)
            .map_err(|e| ApiError::internal(format!("cannot read {}: {e}", d.file.display())))?;
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::Read::take(f, MAX_SOURCE_BYTES), &mut text)
            .map_err(|e| ApiError::internal(format!("cannot read {}: {e}", d.file.display())))?;
        Ok((d, text))
    });
    match r {
        Ok((_, text)) if plain => (
            [(axum::http::header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            text,
        )
            .into_response(),
        Ok((d, text)) => (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            json!({"content": text, "dag_id": d.dag_id, "dag_display_name": display_name(&d), "version_number": Value::Null}).to_string(),
        )
            .into_response(),
        Err(e) => super::error_response(e),
    }
}

/// Opens `p` read-only, refusing a symbolic link in its last component.
fn open_no_follow(p: &std::path::Path) -> std::io::Result<std::fs::File> {
    use rustix::fs::{Mode, OFlags};
    let fd = rustix::fs::open(
        p,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    Ok(std::fs::File::from(fd))
}

/// `DELETE /api/v2/dags/{dag_id}`: deletes everything weft recorded about the DAG (runs, task
/// instances, logs, its paused flag), as Airflow's; the file stays, so the DAG is listed again
/// (paused by default). 409 while one of its runs is queued or running.
pub async fn delete(
    State(app): State<Arc<AppState>>,
    Path(dag_id): Path<String>,
    req: V1Request,
) -> Response {
    respond(&app, &req, "dags:DeleteDag", StatusCode::OK, |ctx| {
        ctx.authorize(dag_resource(&dag_id)?)?;
        let store = sched_store(&app)?;
        let runs = store.runs_of(&dag_id).map_err(store_err)?;
        if runs.is_empty()
            && find(&app, &dag_id).is_err()
            && store.dag_paused(&dag_id).map_err(store_err)?.is_none()
        {
            return Err(not_found(format!(
                "The Dag with ID: `{}` was not found",
                clip(&dag_id)
            )));
        }
        if let Some(r) = runs.iter().find(|r| !r.is_finished()) {
            return Err(super::conflict(format!(
                "Dag run `{}` of `{dag_id}` is {}: delete the Dag once its runs have finished",
                r.run_id, r.state
            )));
        }
        let n = store.delete_dag(&dag_id).map_err(store_err)?;
        store.flush().map_err(store_err)?;
        tracing::info!(dag_id, runs = n, "DAG records deleted");
        Ok(Value::Null)
    })
}

/// `GET /api/v2/dags/{dag_id}/details`.
pub async fn details(
    State(app): State<Arc<AppState>>,
    Path(dag_id): Path<String>,
    req: V1Request,
) -> Response {
    respond(&app, &req, "dags:GetDag", StatusCode::OK, |ctx| {
        ctx.authorize(dag_resource(&dag_id)?)?;
        let d = find(&app, &dag_id)?;
        let store = sched_store(&app)?;
        let active = store
            .runs_of(&d.dag_id)
            .map_err(store_err)?
            .iter()
            .filter(|r| !r.is_finished())
            .count();
        Ok(details_json(&d, is_paused(&store, &d)?, active))
    })
}

/// `GET /api/v2/dags/{dag_id}/tasks` (`order_by` a task field, `task_id` by default).
pub async fn tasks(
    State(app): State<Arc<AppState>>,
    Path(dag_id): Path<String>,
    req: V1Request,
) -> Response {
    respond(&app, &req, "dags:GetDag", StatusCode::OK, |ctx| {
        ctx.authorize(dag_resource(&dag_id)?)?;
        let q = Query::parse(req.query())?;
        let order = q.order_by(
            &[
                "task_id",
                "task_display_name",
                "owner",
                "retries",
                "pool",
                "priority_weight",
                "operator_name",
            ],
            "task_id",
        )?;
        let d = find(&app, &dag_id)?;
        let mut out: Vec<Value> = d.tasks.values().map(task_json).collect();
        sort_json(&mut out, &order);
        let total = out.len();
        Ok(json!({"tasks": out, "total_entries": total}))
    })
}

/// `GET /api/v2/dags/{dag_id}/tasks/{task_id}`.
pub async fn task(
    State(app): State<Arc<AppState>>,
    Path((dag_id, task_id)): Path<(String, String)>,
    req: V1Request,
) -> Response {
    respond(&app, &req, "dags:GetDag", StatusCode::OK, |ctx| {
        ctx.authorize(dag_resource(&dag_id)?)?;
        let d = find(&app, &dag_id)?;
        d.tasks.get(&task_id).map(task_json).ok_or_else(|| {
            not_found(format!(
                "Task with id {} not found in Dag {}",
                clip(&task_id),
                d.dag_id
            ))
        })
    })
}

/// The ids of the loaded DAGs `ctx` may `action`: what a `~` route reads.
pub fn visible_dag_ids(app: &AppState, ctx: &crate::v1_access::Ctx, action: &str) -> Vec<String> {
    let (dags, _, _) = crate::rest::load_dags(app);
    dags.into_iter()
        .map(|d| d.dag_id)
        .filter(|id| ctx.may(action, &format!("weft:dag:{id}")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns() {
        assert!(like("orders", "daily_ORDERS_v2"));
        assert!(like("d%v2", "daily_orders_v2"));
        assert!(like("d_ily", "daily"));
        assert!(!like("x_y", "xy"));
        // many wildcards against a long id stay fast
        let p = "%a".repeat(100);
        assert!(!like(&p, &"a".repeat(60)));
    }

    #[test]
    fn timedeltas_read_like_python() {
        assert_eq!(time_delta_text(3600), "1:00:00");
        assert_eq!(time_delta_text(86400 + 61), "1 day, 0:01:01");
        assert_eq!(time_delta(std::time::Duration::from_secs(90061))["days"], 1);
    }
}
