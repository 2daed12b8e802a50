//! JSON endpoints of the web UI under `/v1` (actions on state machines go through the Step
//! Functions API on `POST /`). Authenticated like the API (`Authorization: Bearer SECRET` or
//! a SigV4 signature over the request as sent), authorised per route with the caller's policy
//! and audited (see [`crate::v1_access`] for the actions and resources); lists keep only what the
//! caller may see.
//!
//! - `GET /v1/executions?stateMachine=&status=&name=&from=&to=&limit=&next=`: executions of all
//!   state machines, newest first; `name` is a substring, `from`/`to` bound the start time
//!   (epoch milliseconds); `next` is the `nextToken` of the previous page.
//! - `GET /v1/state-machines/summary?hours=24`: the landing page's counts of executions by
//!   status per state machine ([`crate::sm_summary`]).
//! - `GET /v1/executions/{arn}/events`: live updates (server-sent events, [`crate::live`]).
//! - `GET /v1/executions/{arn}/tasks`: task logs ([`crate::task_logs`]).
//! - `GET /v1/executions/{arn}/tokens`: task tokens `.waitForTaskToken` tasks wait for.
//! - `GET /v1/plugins`: installed plugins with their requested grant and who uses them.
//! - `GET /v1/dags?runs=N`, `GET /v1/dags/{dag_id}`: DAG files (`$WEFT_DAGS` or
//!   `$WEFT_HOME/dags`) with their next run and, in the list, their recent runs
//!   ([`crate::dag_landing`]).

use crate::error::ApiError;
use crate::live::{load_execution, query_param};
use crate::records::{parse_exec_arn, sm_arn, ts, valid_name, ExecutionRecord, StateMachineRecord};
use crate::v1_access::{dag_resource, decide, plugin_resource, Ctx, V1Request};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/executions", get(executions))
        .route(
            "/v1/state-machines/summary",
            get(crate::sm_summary::endpoint),
        )
        .route(
            "/v1/executions/{arn}/events",
            get(crate::live::execution_events),
        )
        .route("/v1/executions/{arn}/tasks", get(tasks))
        .route("/v1/executions/{arn}/tokens", get(tokens))
        .route("/v1/plugins", get(plugins))
        .route("/v1/dags", get(dags))
        .route("/v1/dags/{dag_id}", get(dag))
        .route("/v1/dags/{dag_id}/runs", get(dag_runs).post(trigger_dag))
        .route(
            "/v1/dags/{dag_id}/runs/{run_id}/clear",
            axum::routing::post(clear_task),
        )
        .route(
            "/v1/dags/{dag_id}/runs/{run_id}/tasks/{task_id}/logs",
            get(task_instance_logs),
        )
        .route("/v1/dags/{dag_id}/runs/{run_id}/gantt", get(run_gantt))
}

pub(crate) fn reply(r: Result<Value, ApiError>) -> Response {
    match r {
        Ok(v) => (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            v.to_string(),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

/// Runs a `/v1` route's body under [`decide`] (authenticated, authorised, audited) and
/// answers with its JSON or its error.
pub(crate) fn respond(
    app: &AppState,
    req: &V1Request,
    action: &'static str,
    f: impl FnOnce(&mut Ctx) -> Result<Value, ApiError>,
) -> Response {
    reply(decide(app, req, action, f))
}

/// A state machine name from a query parameter, checked before it is used in an ARN.
pub(crate) fn sm_name_param(q: Option<&str>, name: &str) -> Result<Option<String>, ApiError> {
    match query_param(q, name).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(n) => valid_name(&n)
            .map(|_| Some(n))
            .map_err(|e| ApiError::validation(format!("`{name}`: {e}"))),
    }
}

// ---- executions ----

pub(crate) fn num_param(q: Option<&str>, name: &str) -> Result<Option<i64>, ApiError> {
    match query_param(q, name).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| {
            ApiError::validation(format!(
                "`{name}` must be an integer (epoch milliseconds or a count), not `{v}`"
            ))
        }),
    }
}

fn execution_json(e: &ExecutionRecord) -> Value {
    let mut v = json!({
        "executionArn": e.arn,
        "stateMachineArn": e.state_machine_arn,
        "stateMachineName": e.state_machine_name,
        "name": e.name,
        "status": e.status,
        "startDate": ts(e.start_ms),
    });
    if let Some(s) = e.stop_ms {
        v["stopDate"] = ts(s);
    }
    v
}

fn list_executions(app: &AppState, ctx: &mut Ctx, q: Option<&str>) -> Result<Value, ApiError> {
    let sm = sm_name_param(q, "stateMachine")?;
    match &sm {
        Some(name) => ctx.authorize(sm_arn(name))?,
        // executions of every state machine: those the caller may list and describe
        None => ctx.filtered("*"),
    }
    let status = query_param(q, "status").filter(|s| !s.is_empty());
    let name = query_param(q, "name")
        .filter(|s| !s.is_empty())
        .map(|s| s.to_lowercase());
    let from = num_param(q, "from")?;
    let to = num_param(q, "to")?;
    let limit = num_param(q, "limit")?.unwrap_or(50).clamp(1, 1000) as usize;
    let offset = match query_param(q, "next").filter(|s| !s.is_empty()) {
        None => 0,
        Some(t) => t
            .strip_prefix("o:")
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| ApiError::new("InvalidToken", format!("Invalid Token: '{t}'")))?,
    };
    let mut all = Vec::new();
    crate::records::each_execution(app.executions.as_ref(), "", |e| {
        if sm.as_deref().is_some_and(|s| s != e.state_machine_name)
            || status.as_deref().is_some_and(|s| s != e.status)
            || name
                .as_deref()
                .is_some_and(|n| !e.name.to_lowercase().contains(n))
            || from.is_some_and(|f| e.start_ms < f)
            || to.is_some_and(|t| e.start_ms > t)
            || !ctx.may("states:ListExecutions", &e.state_machine_arn)
            || !ctx.may("states:DescribeExecution", &e.arn)
        {
            return;
        }
        all.push(e);
    })?;
    all.sort_by(|a, b| b.start_ms.cmp(&a.start_ms).then_with(|| a.arn.cmp(&b.arn)));
    let page: Vec<Value> = all
        .iter()
        .skip(offset)
        .take(limit)
        .map(execution_json)
        .collect();
    let mut v = json!({"executions": page, "total": all.len()});
    if offset + limit < all.len() {
        v["nextToken"] = json!(format!("o:{}", offset + limit));
    }
    Ok(v)
}

async fn executions(State(app): State<Arc<AppState>>, req: V1Request) -> Response {
    respond(&app, &req, "states:ListExecutions", |ctx| {
        list_executions(&app, ctx, req.query())
    })
}

/// `GET /v1/executions/{arn}/tasks`: the execution's task logs (`states:GetExecutionHistory`).
async fn tasks(
    State(app): State<Arc<AppState>>,
    Path(arn): Path<String>,
    req: V1Request,
) -> Response {
    respond(&app, &req, "states:GetExecutionHistory", |ctx| {
        let arn = parse_exec_arn(&arn)?;
        ctx.authorize(arn.as_str())?;
        let e = load_execution(&app, &arn)?;
        let (tasks, truncated) = crate::task_logs::list(&app, &e.arn)?;
        Ok(json!({"executionArn": e.arn, "tasks": tasks, "truncated": truncated}))
    })
}

/// `GET /v1/executions/{arn}/tokens`: the task tokens the execution waits for. A token lets its
/// holder complete the task, so this needs what reading the history (where TaskScheduled
/// shows the token) and SendTaskSuccess need: `states:GetExecutionHistory` and
/// `states:SendTaskSuccess` on the execution.
async fn tokens(
    State(app): State<Arc<AppState>>,
    Path(arn): Path<String>,
    req: V1Request,
) -> Response {
    respond(&app, &req, "states:GetExecutionHistory", |ctx| {
        let arn = parse_exec_arn(&arn)?;
        ctx.authorize(arn.as_str())?;
        ctx.authorize_also("states:SendTaskSuccess", &arn)?;
        let e = load_execution(&app, &arn)?;
        // the durable token records of the runtime (they survive restarts)
        let mut out: Vec<Value> = Vec::new();
        app.rt.tokens.each_token(&mut |k, v| {
            let Ok(t) = serde_json::from_slice::<crate::runtime::TokenRecord>(v) else {
                return true;
            };
            if t.execution != e.arn || t.activity.is_some() {
                return true;
            }
            out.push(json!({
                "taskToken": k,
                "state": t.state,
                "since": ts(t.since_ms),
                "timeoutSeconds": t.timeout_at_ms.map(|at| (at - t.since_ms) / 1000),
                "heartbeatSeconds": t.heartbeat_ms.map(|h| h / 1000),
            }));
            true
        })?;
        out.sort_by(|a, b| {
            a["since"]
                .as_f64()
                .partial_cmp(&b["since"].as_f64())
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        Ok(json!({"executionArn": e.arn, "tokens": out}))
    })
}

// ---- plugins ----

/// The plugin names a Task `Resource` (with its Parameters) runs, if it names one.
fn plugin_of_resource(resource: &str, params: Option<&Value>) -> Option<String> {
    use weft_asl::resource::{Resource, ResourceKind};
    let r = Resource::parse(resource).ok()?;
    match &r.kind {
        ResourceKind::Plugin { name, .. } | ResourceKind::LambdaFunction { name, .. } => {
            Some(name.clone())
        }
        ResourceKind::LambdaInvoke => {
            let f = params?.get("FunctionName")?.as_str()?;
            Some(weft_asl::resource::function_name(f))
        }
        _ => None,
    }
}

/// Every plugin the Task states of an ASL definition (nested Parallel branches and Map
/// iterators included) name.
pub fn plugins_in_definition(def: &Value, out: &mut BTreeSet<String>) {
    match def {
        Value::Object(m) => {
            if m.get("Type").and_then(Value::as_str) == Some("Task") {
                if let Some(res) = m.get("Resource").and_then(Value::as_str) {
                    let params = m.get("Parameters").or_else(|| m.get("Arguments"));
                    if let Some(p) = plugin_of_resource(res, params) {
                        out.insert(p);
                    }
                }
            }
            for v in m.values() {
                plugins_in_definition(v, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|v| plugins_in_definition(v, out)),
        _ => {}
    }
}

pub(crate) use weft_engine::standard::dag_scheduler::dags_dir;

/// The DAG folder's DAGs and load errors, as [`weft_engine::standard::dag_scheduler::load_dags`]
/// finds them. Loading parses the folder (a Python file in the sandbox, the first time after a
/// cold compile of the parser, which takes seconds to minutes): on a multi-threaded runtime the
/// calling worker thread hands its other tasks over first, so a listing never stalls the
/// node's other requests (a worker's heartbeats among them).
pub(crate) fn load_dags(
    rt: &weft_engine::standard::Runtime,
) -> (
    Vec<weft_dag::Dag>,
    Vec<weft_dag::DagError>,
    std::path::PathBuf,
) {
    let load = || weft_engine::standard::dag_scheduler::load_dags(rt);
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(load),
        // a current-thread runtime has no other worker to hand over to
        _ => load(),
    }
}

fn plugin_name_of_operator(op: &str) -> String {
    let r = weft_engine::dag_exec::operator_ref(op);
    weft_engine::PluginRef::parse(r)
        .map(|p| p.name().to_string())
        .unwrap_or_else(|_| r.to_string())
}

/// The installed plugins the caller may list (`plugins:ListPlugins` on `weft:plugin:NAME`),
/// each with the state machines (`states:DescribeStateMachine`) and DAGs (`dags:ListDags`)
/// that use it and the caller may see.
fn list_plugins(app: &AppState, ctx: &mut Ctx) -> Result<Value, ApiError> {
    ctx.filtered("*");
    let mut sm_uses: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (_, v) in app.catalog.state_machines(None, usize::MAX)? {
        let sm: StateMachineRecord = serde_json::from_slice(&v)?;
        if !ctx.may("states:DescribeStateMachine", &sm.arn) {
            continue;
        }
        let Ok(def) = serde_json::from_str::<Value>(&sm.definition) else {
            continue;
        };
        let mut names = BTreeSet::new();
        plugins_in_definition(&def, &mut names);
        for n in names {
            sm_uses.entry(n).or_default().insert(sm.name.clone());
        }
    }
    let mut dag_uses: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let (dags, _, _) = load_dags(app);
    for d in &dags {
        if !ctx.may("dags:ListDags", &format!("weft:dag:{}", d.dag_id)) {
            continue;
        }
        for t in d.tasks.values() {
            dag_uses
                .entry(plugin_name_of_operator(&t.operator))
                .or_default()
                .insert(d.dag_id.clone());
        }
    }
    let recs = app
        .store
        .registry()
        .list()
        .map_err(|e| ApiError::internal(format!("plugin registry: {e}")))?;
    let plugins: Vec<Value> = recs
        .iter()
        .filter(|p| ctx.may("plugins:ListPlugins", &plugin_resource(&p.name)))
        .map(|p| {
            json!({
                "name": p.name,
                "version": p.version,
                "digest": p.digest.to_hex(),
                "world": p.world,
                "description": p.manifest.get("description"),
                "grant": p.manifest.get("grant"),
                "installedAt": p.installed_at,
                "stateMachines": sm_uses.get(&p.name).map(|s| s.iter().collect::<Vec<_>>()).unwrap_or_default(),
                "dags": dag_uses.get(&p.name).map(|s| s.iter().collect::<Vec<_>>()).unwrap_or_default(),
            })
        })
        .collect();
    Ok(json!({"plugins": plugins}))
}

async fn plugins(State(app): State<Arc<AppState>>, req: V1Request) -> Response {
    respond(&app, &req, "plugins:ListPlugins", |ctx| {
        list_plugins(&app, ctx)
    })
}

// ---- DAGs ----

fn schedule_text(s: &weft_dag::Schedule) -> Value {
    match s {
        weft_dag::Schedule::Never => Value::Null,
        weft_dag::Schedule::Once => json!("@once"),
        weft_dag::Schedule::Cron { source, .. } => json!(source),
        weft_dag::Schedule::Delta(d) | weft_dag::Schedule::DeltaTrigger { delta: d, .. } => {
            json!(format!("every {}", humanize(d.as_secs())))
        }
        weft_dag::Schedule::CronTrigger { source, .. } => json!(source),
        weft_dag::Schedule::Assets { timetable, .. } => match timetable {
            Some(t) => json!(format!(
                "datasets or {}",
                schedule_text(t).as_str().unwrap_or("?")
            )),
            None => json!("datasets"),
        },
        weft_dag::Schedule::NotRun { what } => json!(what),
    }
}

fn humanize(secs: u64) -> String {
    match secs {
        s if s % 86400 == 0 && s > 0 => format!("{}d", s / 86400),
        s if s % 3600 == 0 && s > 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 && s > 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// What the DAG file says about a DAG (the caller adds `nextRun`, which needs the store).
pub(crate) fn dag_summary(d: &weft_dag::Dag) -> Value {
    json!({
        "dagId": d.dag_id,
        "file": d.file.display().to_string(),
        "description": d.description,
        "schedule": schedule_text(&d.schedule),
        "timezone": d.timezone.to_string(),
        "catchup": d.catchup,
        "tags": d.tags,
        "tasks": d.tasks.len(),
    })
}

/// `GET /v1/dags`: the DAGs the caller may list, with their recent runs and next run (see
/// [`crate::dag_landing`]).
async fn dags(State(app): State<Arc<AppState>>, req: V1Request) -> Response {
    respond(&app, &req, "dags:ListDags", |ctx| {
        crate::dag_landing::list(&app, ctx, req.query())
    })
}

fn json_body(body: &axum::body::Bytes) -> Result<Value, ApiError> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(json!({}));
    }
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            "SerializationException",
            format!("request body is not JSON: {e}"),
        )
    })?;
    if !v.is_object() {
        return Err(ApiError::new(
            "SerializationException",
            "request body must be a JSON object",
        ));
    }
    Ok(v)
}

/// `POST /v1/dags/{id}/runs` `{"conf": {...}, "logicalDate": ...}`: a manual run, run by the
/// server's scheduler thread.
async fn trigger_dag(
    State(app): State<Arc<AppState>>,
    Path(id): Path<String>,
    req: V1Request,
) -> Response {
    respond(&app, &req, "dags:TriggerDagRun", |ctx| {
        ctx.authorize(dag_resource(&id)?)?;
        Ok(crate::dag_scheduler::trigger(
            &app,
            &id,
            &json_body(&req.body)?,
        )?)
    })
}

/// `GET /v1/dags/{id}/runs/{run_id}/tasks/{task_id}/logs`: the task instance's log entries per
/// try (guest logs, stdout/stderr, the sandbox's grant decisions, callbacks), as `weft dag logs`.
async fn task_instance_logs(
    State(app): State<Arc<AppState>>,
    Path((id, run_id, task_id)): Path<(String, String, String)>,
    req: V1Request,
) -> Response {
    respond(&app, &req, "dags:GetTaskLogs", |ctx| {
        ctx.authorize(dag_resource(&id)?)?;
        let store = app
            .dag_store()
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let tries: Vec<Value> = store
            .logs_of(&id, &run_id, &task_id)
            .map_err(|e| ApiError::internal(e.to_string()))?
            .into_iter()
            .map(|(map_index, try_number, entries)| {
                json!({"mapIndex": map_index, "tryNumber": try_number, "entries": entries})
            })
            .collect();
        Ok(json!({"dagId": id, "runId": run_id, "taskId": task_id, "tries": tries}))
    })
}

/// `POST /v1/dags/{id}/runs/{run_id}/clear` `{"task": ID, "downstream": true}`.
async fn clear_task(
    State(app): State<Arc<AppState>>,
    Path((id, run_id)): Path<(String, String)>,
    req: V1Request,
) -> Response {
    respond(&app, &req, "dags:ClearTaskInstances", |ctx| {
        ctx.authorize(dag_resource(&id)?)?;
        crate::dag_scheduler::clear(&app, &id, &run_id, &json_body(&req.body)?)
    })
}

/// `GET /v1/dags/{id}/runs?limit=N`: the newest DAG runs recorded in this store by the
/// scheduler (`weft dag trigger|backfill|scheduler`), oldest first, with each task instance's
/// state and try number: the grid view's data.
async fn dag_runs(
    State(app): State<Arc<AppState>>,
    Path(id): Path<String>,
    req: V1Request,
) -> Response {
    respond(&app, &req, "dags:ListDagRuns", |ctx| {
        ctx.authorize(dag_resource(&id)?)?;
        let limit = num_param(req.query(), "limit")?.unwrap_or(25).clamp(1, 500) as usize;
        let store = app
            .dag_store()
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let runs = store
            .recent_runs(&id, limit)
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let mut out = Vec::new();
        for r in runs {
            let mut tasks = serde_json::Map::new();
            for t in store
                .tis_of(&r.dag_id, &r.run_id)
                .map_err(|e| ApiError::internal(e.to_string()))?
            {
                let key = if t.ti.map_index >= 0 {
                    format!("{}[{}]", t.ti.task_id, t.ti.map_index)
                } else {
                    t.ti.task_id.clone()
                };
                tasks.insert(
                    key,
                    json!({"state": t.ti.state.as_str(), "tryNumber": t.ti.try_number, "durationS": t.ti.duration_s}),
                );
            }
            out.push(json!({
                "runId": r.run_id,
                "runType": r.run_type,
                "logicalDate": r.logical_date.to_rfc3339(),
                "state": r.state,
                "tasks": tasks,
            }));
        }
        Ok(json!({"dagId": id, "runs": out}))
    })
}

async fn dag(State(app): State<Arc<AppState>>, Path(id): Path<String>, req: V1Request) -> Response {
    respond(&app, &req, "dags:GetDag", |ctx| {
        ctx.authorize(dag_resource(&id)?)?;
        let (dags, _, dir) = load_dags(&app);
        let Some(d) = dags.iter().find(|d| d.dag_id == id) else {
            return Err(ApiError::new(
                "DagNotFound",
                format!(
                    "no DAG `{id}` in {} (or its file has errors: see GET /v1/dags)",
                    dir.display()
                ),
            )
            .with_status(StatusCode::NOT_FOUND));
        };
        let store = app
            .dag_store()
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let mut v = dag_summary(d);
        v["nextRun"] = crate::dag_landing::next_run(d, &store, chrono::Utc::now())?;
        v["owners"] = json!(crate::dag_landing::owners(d));
        v["isPaused"] = json!(crate::airflow_api::dags::is_paused(&store, d)?);
        v["params"] = Value::Object(d.param_specs.clone());
        v["taskGroups"] = task_groups_json(d);
        v["topoOrder"] = json!(d.topo_order);
        v["taskList"] = d
            .tasks
            .values()
            .map(|t| {
                json!({
                    "taskId": t.task_id,
                    "operator": t.operator,
                    "upstream": t.upstream,
                    "triggerRule": t.trigger_rule.as_str(),
                    "taskGroup": t.task_group,
                    "retries": t.retries,
                    "mapped": t.expand.is_some(),
                    "line": t.line,
                })
            })
            .collect();
        Ok(v)
    })
}

/// A DAG's task groups for the graph (outer groups first): `groupId` (dotted, as task ids
/// are prefixed), `parent`, `tooltip`.
fn task_groups_json(d: &weft_dag::Dag) -> Value {
    d.task_groups
        .values()
        .map(|g| json!({"groupId": g.group_id, "parent": g.parent, "tooltip": g.tooltip}))
        .collect()
}

/// The interval of each try of one task instance that its log entries carry (`started_at` /
/// `ended_at`, epoch seconds, and `outcome`, stamped by the server's runner: see
/// `dag_scheduler::stamp_try`), oldest try first; a sensor's pokes make one interval.
fn try_intervals(entries_by_try: &[(u32, &Vec<Value>)]) -> Vec<Value> {
    let mut out = Vec::new();
    for (try_number, entries) in entries_by_try {
        let stamped = entries.iter().filter_map(|e| {
            Some((
                e.get("started_at")?.as_f64()?,
                e.get("ended_at")?.as_f64()?,
                e,
            ))
        });
        let start = stamped.clone().map(|s| s.0).reduce(f64::min);
        let last = stamped.reduce(|a, b| if b.1 >= a.1 { b } else { a });
        if let (Some(start), Some((_, end, e))) = (start, last) {
            out.push(json!({"tryNumber": try_number, "start": start, "end": end, "outcome": e.get("outcome")}));
        }
    }
    out
}

/// `GET /v1/dags/{id}/runs/{run_id}/gantt`: the run's Gantt chart data: the run's queued, start
/// and end times and, per task instance, its state, latest try's `start`/`end` (epoch
/// seconds) and the intervals of its tries (`tries`; see [`try_intervals`]).
async fn run_gantt(
    State(app): State<Arc<AppState>>,
    Path((id, run_id)): Path<(String, String)>,
    req: V1Request,
) -> Response {
    respond(&app, &req, "dags:ListDagRuns", |ctx| {
        ctx.authorize(dag_resource(&id)?)?;
        let err = |e: weft_engine::scheduler::SchedulerError| ApiError::internal(e.to_string());
        let store = weft_engine::scheduler::SchedStore::open(app.store.db()).map_err(err)?;
        let Some(r) = store.get_run(&id, &run_id).map_err(err)? else {
            return Err(ApiError::new(
                "DagRunNotFound",
                format!("DAG `{id}` has no run `{run_id}`"),
            )
            .with_status(StatusCode::NOT_FOUND));
        };
        let tis = store.tis_of(&id, &run_id).map_err(err)?;
        let mut logs: BTreeMap<String, Vec<(i64, u32, Vec<Value>)>> = BTreeMap::new();
        let mut out = Vec::with_capacity(tis.len());
        for t in &tis {
            if !logs.contains_key(&t.ti.task_id) {
                let l = store.logs_of(&id, &run_id, &t.ti.task_id).map_err(err)?;
                logs.insert(t.ti.task_id.clone(), l);
            }
            let mine: Vec<(u32, &Vec<Value>)> = logs[&t.ti.task_id]
                .iter()
                .filter(|(m, _, _)| *m == t.ti.map_index)
                .map(|(_, n, e)| (*n, e))
                .collect();
            out.push(json!({
                "taskId": t.ti.task_id,
                "mapIndex": t.ti.map_index,
                "state": t.ti.state.as_str(),
                "tryNumber": t.ti.try_number,
                "start": t.start_date,
                "end": t.end_date,
                "tries": try_intervals(&mine),
            }));
        }
        Ok(json!({
            "dagId": id,
            "runId": r.run_id,
            "state": r.state,
            "queuedAt": r.queued_at.to_rfc3339(),
            "startDate": r.start_date.map(|d| d.to_rfc3339()),
            "endDate": r.end_date.map(|d| d.to_rfc3339()),
            "taskInstances": out,
        }))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugins_of_a_definition() {
        let def = json!({"StartAt": "A", "States": {
            "A": {"Type": "Task", "Resource": "weft:plugin:echo@0.1.0", "Next": "B"},
            "B": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                  "Parameters": {"FunctionName": "arn:aws:lambda:us-east-1:1:function:csv-to-json:$LATEST"}, "Next": "C"},
            "C": {"Type": "Map", "ItemProcessor": {"StartAt": "D", "States": {
                "D": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:fail", "End": true}}}, "Next": "E"},
            "E": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken", "End": true}
        }});
        let mut out = BTreeSet::new();
        plugins_in_definition(&def, &mut out);
        assert_eq!(
            out.into_iter().collect::<Vec<_>>(),
            vec!["csv-to-json", "echo", "fail"]
        );
    }

    #[test]
    fn try_intervals_span_each_tries_entries() {
        let first = vec![
            json!({"stdout": "", "started_at": 10.0, "ended_at": 11.5, "outcome": "failed"}),
            json!({"error": {"error": "Weft.Marked"}}),
        ];
        // a sensor's pokes: one entry each, the try ends as its last poke
        let second = vec![
            json!({"started_at": 20.0, "ended_at": 20.5, "outcome": "up_for_reschedule"}),
            json!({"started_at": 25.0, "ended_at": 25.25, "outcome": "success"}),
        ];
        let unstamped = vec![json!({"callback": "on_failure_callback"})];
        let got = try_intervals(&[(1, &first), (2, &second), (3, &unstamped)]);
        assert_eq!(
            got,
            vec![
                json!({"tryNumber": 1, "start": 10.0, "end": 11.5, "outcome": "failed"}),
                json!({"tryNumber": 2, "start": 20.0, "end": 25.25, "outcome": "success"}),
            ]
        );
    }

    #[test]
    fn durations() {
        assert_eq!(humanize(86400), "1d");
        assert_eq!(humanize(7200), "2h");
        assert_eq!(humanize(90), "90s");
    }
}
