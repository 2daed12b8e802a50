//! The DAG scheduler inside `weft server` (what Airflow's scheduler is to its webserver): a
//! thread runs `weft_engine::scheduler` over the server's store and DAG folder, so DAG runs
//! triggered or cleared from the UI or `POST /v1/dags/{id}/runs` run here, with every task in
//! the sandbox. A DAG's timetable and file trigger create runs only while it is unpaused
//! (`PATCH /api/v2/dags/{id}` `{"is_paused": false}`); new DAGs start paused as in Airflow,
//! unless `--dags-paused-at-creation false` or their `is_paused_upon_creation: false`. As in
//! Airflow, a paused DAG's triggered runs stay queued and its running runs start no new task
//! instance (running tries finish). Marks and notes on the runs the thread holds reach it
//! through [`crate::AppState::dag_control`]. The DAG folder is loaded again when one of its
//! files changes.

use crate::error::ApiError;
use crate::AppState;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::Arc;
use weft_engine::scheduler::{LoopOptions, Plain, Pools, Scheduler, SchedulerConfig, Trigger};
use weft_engine::variables::GrantedSecrets;
use weft_engine::Roles;

fn roles(app: &AppState, dir: &std::path::Path) -> Roles {
    Roles::new(vec![
        app.store.home().join("roles"),
        dir.join("roles"),
        dir.join("../roles"),
    ])
}

pub(crate) fn config(app: &AppState, dir: &std::path::Path) -> Result<SchedulerConfig, String> {
    Ok(SchedulerConfig {
        pools: Pools::load(&[
            &app.store.home().join("pools.json"),
            &dir.join("pools.json"),
        ])
        .map_err(|e| e.to_string())?,
        dags_paused_at_creation: dags_paused_at_creation(),
        ..SchedulerConfig::default()
    })
}

/// Whether DAGs never paused or unpaused start paused: yes (Airflow's default) unless
/// `weft server --dags-paused-at-creation false`, `WEFT_DAGS_ARE_PAUSED_AT_CREATION=false` or
/// `WEFT_SERVER_SCHEDULE_DAGS=1` (a bad value was refused when the server started).
pub(crate) fn dags_paused_at_creation() -> bool {
    weft_engine::scheduler::paused_at_creation_from_env().unwrap_or(true)
}

/// How often the DAG folder is checked for changed files (Airflow re-parses on an interval too).
const REPARSE_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// A fingerprint of the DAG folder: names, sizes and modification times of its files.
fn folder_fingerprint(dir: &std::path::Path) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    let mut stack = vec![dir.to_path_buf()];
    let mut entries = Vec::new();
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            match e.metadata() {
                Ok(m) if m.is_dir() => stack.push(p),
                Ok(m) => entries.push((p, m.len(), m.modified().ok())),
                Err(_) => {}
            }
        }
    }
    entries.sort();
    entries.hash(&mut h);
    h.finish()
}

/// Starts the scheduler thread. It loads the DAG folder, runs the scheduler until the server
/// stops or a DAG file changes, and then loads the folder again (in-flight tries finish first).
pub(crate) fn start(app: &Arc<AppState>) {
    let dir = crate::rest::dags_dir(app);
    if !dir.is_dir() {
        return;
    }
    let app = app.clone();
    let r = std::thread::Builder::new()
        .name("weft-dag-scheduler".into())
        .spawn(move || supervise(&app, &dir));
    if let Err(e) = r {
        tracing::error!("cannot start the DAG scheduler: {e}");
    }
}

fn supervise(app: &Arc<AppState>, dir: &std::path::Path) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let shutdown = || app.rt.shutdown.load(Ordering::SeqCst);
    while !shutdown() {
        let seen = folder_fingerprint(dir);
        let parse = std::time::Instant::now();
        let (dags, errors, _) = crate::rest::load_dags(app);
        let m = &app.dag_metrics;
        m.dag_processing_total_parse_time
            .set(&[], parse.elapsed().as_secs_f64());
        m.dag_processing_import_errors.set(&[], errors.len() as f64);
        m.dag_processing_dag_count.set(&[], dags.len() as f64);
        for e in &errors {
            tracing::warn!("DAG folder: {e}");
        }
        let restart = AtomicBool::new(false);
        std::thread::scope(|s| {
            // the watcher ends the loop when a file changes or the server stops
            s.spawn(|| {
                while !restart.load(Ordering::SeqCst) {
                    if shutdown() || folder_fingerprint(dir) != seen {
                        restart.store(true, Ordering::SeqCst);
                        break;
                    }
                    std::thread::sleep(REPARSE_EVERY);
                }
            });
            if dags.is_empty() {
                while !restart.load(Ordering::SeqCst) {
                    std::thread::sleep(std::time::Duration::from_millis(200));
                }
            } else if let Err(e) = run(app, dags, dir.to_path_buf(), &restart) {
                tracing::error!("the DAG scheduler stopped: {e}");
                restart.store(true, Ordering::SeqCst);
            }
        });
        if !shutdown() {
            tracing::info!("DAG folder changed: loading it again");
        }
    }
}

fn run(
    app: &Arc<AppState>,
    dags: Vec<weft_dag::Dag>,
    dir: PathBuf,
    stop: &std::sync::atomic::AtomicBool,
) -> Result<(), String> {
    let host = app.plugin_host()?;
    let roles = Arc::new(roles(app, &dir));
    let exec = weft_engine::dag_exec::SandboxTaskExecutor::new(&host, &roles, app.base_dir.clone());
    let secrets =
        Arc::new(GrantedSecrets::load(app.store.home(), roles.clone()).map_err(|e| e.to_string())?);
    let tries = ServerTries {
        app: app.clone(),
        sandbox: &exec,
    };
    let sched = Scheduler::with_store(
        app.dag_store().map_err(|e| e.to_string())?,
        dags,
        &tries,
        secrets,
        config(app, &dir)?,
    )
    .map_err(|e| e.to_string())?
    .with_roles(roles.clone());
    tracing::info!(
        paused_at_creation = dags_paused_at_creation(),
        "DAG scheduler running in the server"
    );
    sched
        .run(&LoopOptions {
            schedule: true,
            adopt: true,
            hold_paused: true,
            control: Some(&app.dag_control),
            metrics: Some(&app.dag_metrics),
            stop: Some(stop),
            ..Default::default()
        })
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// The operator prefix of a DAG task that runs a state machine.
pub(crate) const STATE_MACHINE_OPERATOR: &str = "weft:statemachine:";

/// The server's task runner for DAG tries: `weft:statemachine:NAME` operators start an execution
/// of the state machine (the task's arguments as its input) and wait for it; every other
/// operator is a plugin in the sandbox.
struct ServerTries<'a> {
    app: Arc<AppState>,
    sandbox: &'a weft_engine::dag_exec::SandboxTaskExecutor<'a>,
}

impl ServerTries<'_> {
    /// The task's `grant:` role must allow `states:StartExecution` on the state machine (no
    /// grant: nothing is allowed). The decision is audited.
    fn may_start(
        &self,
        name: &str,
        inv: &weft_dag::TaskInvocation,
    ) -> Result<(), weft_dag::TaskFailure> {
        let fail = |error: &str, cause: String| weft_dag::TaskFailure {
            error: error.to_string(),
            cause,
        };
        crate::records::valid_name(name).map_err(|m| fail("States.Runtime", m))?;
        let policy = match inv.grant.as_deref() {
            None => None,
            Some(g) => Some(
                self.sandbox
                    .roles
                    .get(g)
                    .map_err(|e| fail("States.Permissions", e.to_string()))?,
            ),
        };
        let principal = format!(
            "{} (DAG {} task {})",
            inv.grant
                .as_deref()
                .and_then(weft_engine::roles::canonical_role)
                .unwrap_or_else(|| "no grant".into()),
            inv.dag_id,
            inv.task_id
        );
        crate::runner::role_allows(
            &self.app,
            policy.as_deref(),
            &principal,
            "states:StartExecution",
            &crate::records::sm_arn(name),
        )
        .map_err(|f| fail(&f.error, f.cause))
    }
}

impl ServerTries<'_> {
    /// The packages of the Python DAG file `path` (as the local executor finds them: broken
    /// requirements leave them out, so an import of one fails naming it) and the digest of
    /// their archive in the node's blob store, which the worker fetches.
    #[allow(clippy::type_complexity)]
    fn packages_of(
        &self,
        path: &std::path::Path,
    ) -> Result<(Option<weft_engine::py_packages::Packages>, Option<String>), weft_dag::TaskFailure>
    {
        let store = &self.sandbox.host.store;
        let packages = weft_engine::py_dags::packages_for(store.home(), path).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "the DAG folder's requirements.txt is not installed");
            None
        });
        let Some(p) = packages else {
            return Ok((None, None));
        };
        let archive = weft_engine::remote_packages::publish(store.blobs(), &p).map_err(|e| {
            weft_dag::TaskFailure::new(
                "States.TaskFailed",
                format!("the DAG folder's Python packages cannot be packed for the worker: {e}"),
            )
        })?;
        Ok((Some(p), Some(archive.to_hex().to_string())))
    }

    /// A plugin try runs on a worker of its queue (`queue:`, default `default`) when the
    /// dispatcher routes the queue remotely, else here (see [`crate::remote_tasks`]).
    fn run_plugin_try(
        &self,
        inv: &weft_dag::TaskInvocation,
        cancel: &weft_engine::plugin_host::Cancel,
    ) -> weft_engine::scheduler::TryOutcome {
        let queue = inv
            .queue
            .clone()
            .unwrap_or_else(|| weft_engine::remote::DEFAULT_QUEUE.to_string());
        if !weft_engine::remote::valid_name(&queue) {
            return weft_engine::scheduler::TryOutcome {
                result: Err(weft_dag::TaskFailure::new(
                    "States.Runtime",
                    format!("queue `{queue}` is not a queue name (1 to 128 letters, digits, `.`, `_` or `-`)"),
                )),
                log: Value::Null,
            };
        }
        if self.app.dispatch.routes_remote(&queue) {
            // a Python callable runs in the Python DAG parser component, its DAG file's text in
            // the task's input (the worker has no DAG folder), its folder's packages fetched by
            // digest
            let python = weft_engine::dag_exec::python_callable_file(inv);
            let reference = match python {
                Some(_) => {
                    weft_engine::PluginRef::Latest(weft_engine::py_dags::PARSER_PLUGIN.to_string())
                }
                None => match weft_engine::PluginRef::parse(weft_engine::dag_exec::operator_ref(
                    &inv.operator,
                )) {
                    Ok(r) => r,
                    // not a reference: the local executor reports it as usual
                    Err(_) => {
                        return weft_engine::scheduler::TryRunner::run_try_cancellable(
                            self.sandbox,
                            inv,
                            cancel,
                        )
                    }
                },
            };
            // not installed: the local executor reports it as usual
            if let Ok(rec) = self.sandbox.host.resolve(&reference) {
                // a callable's DAG folder packages travel as one archive named by its digest
                let (packages, archive) = match python.map(|p| self.packages_of(p)) {
                    Some(Ok(x)) => x,
                    Some(Err(f)) => {
                        return weft_engine::scheduler::TryOutcome {
                            result: Err(f),
                            log: Value::Null,
                        }
                    }
                    None => (None, None),
                };
                let input = match python {
                    Some(path) => {
                        match weft_engine::dag_exec::python_call_input(path, inv, packages.as_ref())
                        {
                            Ok(input) => Some(input),
                            Err(f) => {
                                return weft_engine::scheduler::TryOutcome {
                                    result: Err(f),
                                    log: Value::Null,
                                }
                            }
                        }
                    }
                    None => None,
                };
                return crate::remote_tasks::run_dag_try(
                    &self.app,
                    self.sandbox,
                    crate::remote_tasks::DagTry {
                        inv,
                        rec: &rec,
                        input,
                        packages: archive,
                    },
                    queue,
                    &|| cancel(),
                );
            }
        }
        weft_engine::scheduler::TryRunner::run_try_cancellable(self.sandbox, inv, cancel)
    }
}

impl weft_engine::scheduler::TryRunner for ServerTries<'_> {
    fn run_try(&self, inv: &weft_dag::TaskInvocation) -> weft_engine::scheduler::TryOutcome {
        self.run_try_cancellable(
            inv,
            &(Arc::new(|| false) as weft_engine::plugin_host::Cancel),
        )
    }

    fn run_try_cancellable(
        &self,
        inv: &weft_dag::TaskInvocation,
        cancel: &weft_engine::plugin_host::Cancel,
    ) -> weft_engine::scheduler::TryOutcome {
        let started = now_epoch();
        let mut out = match inv.operator.strip_prefix(STATE_MACHINE_OPERATOR) {
            Some(name) => weft_engine::scheduler::TryOutcome {
                result: self
                    .may_start(name, inv)
                    .and_then(|()| run_state_machine(&self.app, name, inv)),
                log: Value::Null,
            },
            None => self.run_plugin_try(inv, cancel),
        };
        let outcome = match &out.result {
            Ok(_) => "success",
            Err(f) if f.error == weft_dag::SENSOR_NOT_READY => "up_for_reschedule",
            Err(_) => "failed",
        };
        stamp_try(&mut out.log, started, now_epoch(), outcome);
        out
    }

    fn run_callback(
        &self,
        plugin: &str,
        grant: Option<&str>,
        context: &Value,
    ) -> Result<Value, weft_dag::TaskFailure> {
        self.sandbox.run_callback(plugin, grant, context)
    }
}

fn now_epoch() -> f64 {
    chrono::Utc::now().timestamp_micros() as f64 / 1e6
}

/// Writes when a try (a sensor's poke) ran and how it ended into its log entry (`started_at`,
/// `ended_at`, epoch seconds, and `outcome`): the web UI's Gantt chart draws every try from
/// them.
fn stamp_try(log: &mut Value, started: f64, ended: f64, outcome: &str) {
    if let Value::Object(m) = log {
        m.insert("started_at".into(), json!(started));
        m.insert("ended_at".into(), json!(ended));
        m.insert("outcome".into(), json!(outcome));
    }
}

/// Starts (once per try: the execution's name derives from the try) and waits for an execution
/// of `name`; its output is the task's XCom, its error the task's failure.
fn run_state_machine(
    app: &Arc<AppState>,
    name: &str,
    inv: &weft_dag::TaskInvocation,
) -> Result<Value, weft_dag::TaskFailure> {
    let fail = |error: &str, cause: String| weft_dag::TaskFailure {
        error: error.to_string(),
        cause,
    };
    let smr: crate::records::StateMachineRecord = match app.catalog.state_machine(name) {
        Ok(Some(v)) => {
            serde_json::from_slice(&v).map_err(|e| fail("States.Runtime", e.to_string()))?
        }
        Ok(None) => {
            return Err(fail(
                "StateMachineDoesNotExist",
                format!(
                    "State Machine Does Not Exist: '{}'",
                    crate::records::sm_arn(name)
                ),
            ))
        }
        Err(e) => return Err(fail("States.Runtime", e.to_string())),
    };
    let id = format!(
        "{}\0{}\0{}\0{}\0{}",
        inv.dag_id, inv.run_id, inv.task_id, inv.map_index, inv.try_number
    );
    let exec_name = format!("dag-{}", &blake3::hash(id.as_bytes()).to_hex()[..32]);
    let rec = crate::runtime::new_record(&smr, &exec_name, inv.arguments.to_string(), None, None);
    let (rec, _) =
        crate::runtime::insert_execution(&app.rt, rec).map_err(|e| fail(e.kind, e.message))?;
    let deadline = inv.execution_timeout.map(|t| std::time::Instant::now() + t);
    loop {
        let cur: crate::records::ExecutionRecord = match app.executions.execution(&rec.arn) {
            Ok(Some(v)) => {
                serde_json::from_slice(&v).map_err(|e| fail("States.Runtime", e.to_string()))?
            }
            _ => {
                return Err(fail(
                    "States.Runtime",
                    format!("execution {} vanished", rec.arn),
                ))
            }
        };
        match cur.status.as_str() {
            "RUNNING" => {}
            "SUCCEEDED" => {
                return Ok(cur
                    .output
                    .as_deref()
                    .and_then(|o| serde_json::from_str(o).ok())
                    .unwrap_or(Value::Null))
            }
            other => {
                return Err(fail(
                    cur.error.as_deref().unwrap_or("States.TaskFailed"),
                    format!(
                        "execution {} ended {other}: {}",
                        cur.arn,
                        cur.cause.as_deref().unwrap_or("")
                    ),
                ))
            }
        }
        if app.rt.shutdown.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(fail("Weft.TaskLost", "the server is shutting down".into()));
        }
        if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            return Err(fail(
                "States.Timeout",
                format!(
                    "execution {} did not finish within the task's execution_timeout",
                    cur.arn
                ),
            ));
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Runs `f` with a scheduler over the server's store and DAG folder for creating and clearing
/// runs (the loop thread runs them); it never runs a task itself.
pub(crate) fn with_control<R>(
    app: &AppState,
    f: impl FnOnce(&Scheduler<'_>) -> Result<R, ApiError>,
) -> Result<R, ApiError> {
    let (dags, _, dir) = crate::rest::load_dags(app);
    let exec = Plain(no_tasks);
    let roles = Arc::new(roles(app, &dir));
    let secrets = Arc::new(
        GrantedSecrets::load(app.store.home(), roles)
            .map_err(|e| ApiError::internal(e.to_string()))?,
    );
    let cfg = config(app, &dir).map_err(ApiError::internal)?;
    let s = Scheduler::with_store(
        app.dag_store().map_err(sched_error)?,
        dags,
        &exec,
        secrets,
        cfg,
    )
    .map_err(sched_error)?;
    f(&s)
}

fn no_tasks(_: &weft_dag::TaskInvocation) -> Result<Value, weft_dag::TaskFailure> {
    Err(weft_dag::TaskFailure {
        error: "Weft.NotHere".into(),
        cause: "tasks run on the server's scheduler thread".into(),
    })
}

/// Applies a mark or note: through the server's scheduler thread when it runs (it holds the
/// queued and running runs; tries a mark overrides are stopped), else on the store.
pub(crate) fn apply_control(
    app: &AppState,
    req: weft_engine::scheduler::ControlRequest,
) -> Result<Vec<(String, i64)>, ApiError> {
    match app.dag_control.send(req.clone()) {
        Some(r) => r.map_err(sched_error),
        None => with_control(app, |s| s.apply_control(&req).map_err(sched_error)),
    }
}

pub(crate) fn sched_error(e: weft_engine::scheduler::SchedulerError) -> ApiError {
    use weft_engine::scheduler::SchedulerError as E;
    match e {
        E::RunExists { .. } => ApiError::new("DagRunAlreadyExists", e.to_string())
            .with_status(axum::http::StatusCode::CONFLICT),
        E::UnknownDag(_) | E::UnknownRun { .. } | E::UnknownTask { .. } => {
            ApiError::new("NotFound", e.to_string()).with_status(axum::http::StatusCode::NOT_FOUND)
        }
        other => ApiError::internal(other.to_string()),
    }
}

/// Creates a manual run of `dag_id` (body: `{"conf": {...}, "logicalDate": RFC 3339}`).
pub(crate) fn trigger(app: &AppState, dag_id: &str, body: &Value) -> Result<Value, ApiError> {
    let conf = match body.get("conf") {
        None | Some(Value::Null) => serde_json::Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => return Err(ApiError::validation("/conf must be a JSON object")),
    };
    let given = body.get("logicalDate").and_then(Value::as_str);
    let mut when = match given {
        None => chrono::Utc::now(),
        Some(d) => weft_dag::parse_logical_date(d)
            .map_err(|e| ApiError::validation(format!("/logicalDate `{d}`: {e}")))?,
    };
    // without a given date, runs triggered in the same millisecond get distinct ones
    let rec = with_control(app, |s| loop {
        match s.create_run(dag_id, when, None, conf.clone(), Trigger::Manual) {
            Err(weft_engine::scheduler::SchedulerError::RunExists { .. }) if given.is_none() => {
                when += chrono::Duration::milliseconds(1);
            }
            r => return r.map_err(sched_error),
        }
    })?;
    Ok(
        json!({"dagId": rec.dag_id, "runId": rec.run_id, "state": rec.state, "logicalDate": rec.logical_date.to_rfc3339()}),
    )
}

/// Clears a task instance (and its downstream) of a finished run so the scheduler runs them
/// again (body: `{"task": ID, "downstream": true}`).
pub(crate) fn clear(
    app: &AppState,
    dag_id: &str,
    run_id: &str,
    body: &Value,
) -> Result<Value, ApiError> {
    let task = body
        .get("task")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::validation("/task: the task id to clear"))?;
    let downstream = body
        .get("downstream")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let cleared = with_control(app, |s| {
        if let Some(r) = s.store().get_run(dag_id, run_id).map_err(sched_error)? {
            if !r.is_finished() {
                return Err(ApiError::new(
                    "DagRunNotFinished",
                    format!(
                        "run `{run_id}` is {}: clear it once it has finished",
                        r.state
                    ),
                )
                .with_status(axum::http::StatusCode::CONFLICT));
            }
        }
        s.clear(dag_id, run_id, task, downstream)
            .map_err(sched_error)
    })?;
    Ok(json!({"dagId": dag_id, "runId": run_id, "cleared": cleared}))
}

/// A DAG run's outcome as a state machine task result: `{"DagId", "RunId", "State", "Tasks":
/// {TASK_ID: STATE}}`; `None` while it runs.
pub(crate) fn run_outcome(
    app: &AppState,
    dag_id: &str,
    run_id: &str,
) -> Result<Option<Value>, String> {
    let store = app.dag_store().map_err(|e| e.to_string())?;
    let Some(rec) = store.get_run(dag_id, run_id).map_err(|e| e.to_string())? else {
        return Err(format!("DAG `{dag_id}` has no run `{run_id}`"));
    };
    if !rec.is_finished() {
        return Ok(None);
    }
    let mut tasks = serde_json::Map::new();
    for t in store.tis_of(dag_id, run_id).map_err(|e| e.to_string())? {
        let key = weft_dag::ti_key(&t.ti.task_id, t.ti.map_index);
        tasks.insert(key, json!(t.ti.state.as_str()));
    }
    Ok(Some(json!({
        "DagId": dag_id,
        "RunId": run_id,
        "State": rec.state,
        "LogicalDate": rec.logical_date.to_rfc3339(),
        "Tasks": tasks,
    })))
}
