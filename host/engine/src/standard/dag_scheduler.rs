//! The DAG scheduler of the runtime (what Airflow's scheduler is to its webserver): a
//! thread runs [`crate::scheduler`] over the runtime's store and DAG folder, so DAG runs
//! triggered or cleared from the UI or `POST /v1/dags/{id}/runs` run here, with every task in
//! the sandbox. A DAG's timetable and file trigger create runs only while it is unpaused
//! (`PATCH /api/v2/dags/{id}` `{"is_paused": false}`); new DAGs start paused as in Airflow,
//! unless `--dags-paused-at-creation false` or their `is_paused_upon_creation: false`. As in
//! Airflow, a paused DAG's triggered runs stay queued and its running runs start no new task
//! instance (running tries finish). Marks and notes on the runs the thread holds reach it
//! through [`Runtime::dag_control`]. The DAG folder is loaded again when one of its
//! files changes.

use super::{Runtime, RuntimeError};
use crate::scheduler::{LoopOptions, Plain, Pools, Scheduler, SchedulerConfig, Trigger};
use crate::variables::GrantedSecrets;
use crate::Roles;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::Arc;

fn roles(rt: &Runtime, dir: &std::path::Path) -> Roles {
    Roles::new(vec![
        rt.store.home().join("roles"),
        dir.join("roles"),
        dir.join("../roles"),
    ])
}

pub fn config(rt: &Runtime, dir: &std::path::Path) -> Result<SchedulerConfig, String> {
    Ok(SchedulerConfig {
        pools: Pools::load(&[&rt.store.home().join("pools.json"), &dir.join("pools.json")])
            .map_err(|e| e.to_string())?,
        dags_paused_at_creation: dags_paused_at_creation(),
        ..SchedulerConfig::default()
    })
}

/// Whether DAGs never paused or unpaused start paused: yes (Airflow's default) unless
/// `weft server --dags-paused-at-creation false`, `WEFT_DAGS_ARE_PAUSED_AT_CREATION=false` or
/// `WEFT_SERVER_SCHEDULE_DAGS=1` (a bad value was refused when the server started).
pub fn dags_paused_at_creation() -> bool {
    crate::scheduler::paused_at_creation_from_env().unwrap_or(true)
}

/// The DAG folder: `$WEFT_DAGS`, else `$WEFT_HOME/dags`.
pub fn dags_dir(rt: &Runtime) -> PathBuf {
    std::env::var_os("WEFT_DAGS")
        .map(PathBuf::from)
        .unwrap_or_else(|| rt.store.home().join("dags"))
}

/// The DAG folder's DAGs and the errors of the files that fail to load.
pub fn load_dags(rt: &Runtime) -> (Vec<weft_dag::Dag>, Vec<weft_dag::DagError>, PathBuf) {
    let dir = dags_dir(rt);
    if !dir.is_dir() {
        return (Vec::new(), Vec::new(), dir);
    }
    let store = rt.store.clone();
    let known = move |op: &str| {
        // state machines are run by the runtime's scheduler thread
        op.starts_with(STATE_MACHINE_OPERATOR)
            || crate::PluginRef::parse(crate::dag_exec::operator_ref(op))
                .ok()
                .is_some_and(|r| crate::plugin_host::resolve(&store, &r).is_ok())
    };
    let check = crate::py_dags::WithPythonDags {
        check: known,
        parser: crate::py_dags::SandboxDagParser::shared(rt.store.home()),
    };
    let (dags, errors) = weft_dag::load_dags(&dir, &check);
    (dags, errors, dir)
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

/// Starts the scheduler thread. It loads the DAG folder, runs the scheduler until the runtime
/// stops or a DAG file changes, and then loads the folder again (in-flight tries finish first).
pub fn start(rt: &Arc<Runtime>) {
    let dir = dags_dir(rt);
    if !dir.is_dir() {
        return;
    }
    let rt = rt.clone();
    let r = std::thread::Builder::new()
        .name("weft-dag-scheduler".into())
        .spawn(move || supervise(&rt, &dir));
    if let Err(e) = r {
        tracing::error!("cannot start the DAG scheduler: {e}");
    }
}

fn supervise(rt: &Arc<Runtime>, dir: &std::path::Path) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let shutdown = || rt.shutdown.load(Ordering::SeqCst);
    while !shutdown() {
        let seen = folder_fingerprint(dir);
        let parse = std::time::Instant::now();
        let (dags, errors, _) = load_dags(rt);
        let m = &rt.dag_metrics;
        m.dag_processing_total_parse_time
            .set(&[], parse.elapsed().as_secs_f64());
        m.dag_processing_import_errors.set(&[], errors.len() as f64);
        m.dag_processing_dag_count.set(&[], dags.len() as f64);
        for e in &errors {
            tracing::warn!("DAG folder: {e}");
        }
        let restart = AtomicBool::new(false);
        std::thread::scope(|s| {
            // the watcher ends the loop when a file changes or the runtime stops
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
            } else if let Err(e) = run(rt, dags, dir.to_path_buf(), &restart) {
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
    rt: &Arc<Runtime>,
    dags: Vec<weft_dag::Dag>,
    dir: PathBuf,
    stop: &std::sync::atomic::AtomicBool,
) -> Result<(), String> {
    let host = rt.plugin_host()?;
    let roles = Arc::new(roles(rt, &dir));
    let exec = crate::dag_exec::SandboxTaskExecutor::new(&host, &roles, rt.base_dir.clone());
    let secrets =
        Arc::new(GrantedSecrets::load(rt.store.home(), roles.clone()).map_err(|e| e.to_string())?);
    let tries = RuntimeTries {
        rt: rt.clone(),
        sandbox: &exec,
    };
    let sched = Scheduler::with_store(
        rt.dag_store().map_err(|e| e.to_string())?,
        dags,
        &tries,
        secrets,
        config(rt, &dir)?,
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
            control: Some(&rt.dag_control),
            metrics: Some(&rt.dag_metrics),
            stop: Some(stop),
            ..Default::default()
        })
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// The operator prefix of a DAG task that runs a state machine.
pub const STATE_MACHINE_OPERATOR: &str = "weft:statemachine:";

/// The runtime's task runner for DAG tries: `weft:statemachine:NAME` operators start an execution
/// of the state machine (the task's arguments as its input) and wait for it; every other
/// operator is a plugin in the sandbox.
struct RuntimeTries<'a> {
    rt: Arc<Runtime>,
    sandbox: &'a crate::dag_exec::SandboxTaskExecutor<'a>,
}

impl RuntimeTries<'_> {
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
        super::records::valid_name(name).map_err(|m| fail("States.Runtime", m))?;
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
                .and_then(crate::roles::canonical_role)
                .unwrap_or_else(|| "no grant".into()),
            inv.dag_id,
            inv.task_id
        );
        super::runner::role_allows(
            &self.rt,
            policy.as_deref(),
            &principal,
            "states:StartExecution",
            &super::records::sm_arn(name),
        )
        .map_err(|f| fail(&f.error, f.cause))
    }
}

impl RuntimeTries<'_> {
    /// The packages of the Python DAG file `path` (as the local executor finds them: broken
    /// requirements leave them out, so an import of one fails naming it) and the digest of
    /// their archive in the node's blob store, which the worker fetches.
    #[allow(clippy::type_complexity)]
    fn packages_of(
        &self,
        path: &std::path::Path,
    ) -> Result<(Option<crate::py_packages::Packages>, Option<String>), weft_dag::TaskFailure> {
        let store = &self.sandbox.host.store;
        let packages = crate::py_dags::packages_for(store.home(), path).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "the DAG folder's requirements.txt is not installed");
            None
        });
        let Some(p) = packages else {
            return Ok((None, None));
        };
        let archive = crate::remote_packages::publish(store.blobs(), &p).map_err(|e| {
            weft_dag::TaskFailure::new(
                "States.TaskFailed",
                format!("the DAG folder's Python packages cannot be packed for the worker: {e}"),
            )
        })?;
        Ok((Some(p), Some(archive.to_hex().to_string())))
    }

    /// A plugin try runs on a worker of its queue (`queue:`, default `default`) when the
    /// dispatcher routes the queue remotely, else here (see [`super::remote_tasks`]).
    fn run_plugin_try(
        &self,
        inv: &weft_dag::TaskInvocation,
        cancel: &crate::plugin_host::Cancel,
    ) -> crate::scheduler::TryOutcome {
        let queue = inv
            .queue
            .clone()
            .unwrap_or_else(|| crate::remote::DEFAULT_QUEUE.to_string());
        if !crate::remote::valid_name(&queue) {
            return crate::scheduler::TryOutcome {
                result: Err(weft_dag::TaskFailure::new(
                    "States.Runtime",
                    format!("queue `{queue}` is not a queue name (1 to 128 letters, digits, `.`, `_` or `-`)"),
                )),
                log: Value::Null,
            };
        }
        if self.rt.dispatch.routes_remote(&queue) {
            // a Python callable runs in the Python DAG parser component, its DAG file's text in
            // the task's input (the worker has no DAG folder), its folder's packages fetched by
            // digest
            let python = crate::dag_exec::python_callable_file(inv);
            let reference = match python {
                Some(_) => crate::PluginRef::Latest(crate::py_dags::PARSER_PLUGIN.to_string()),
                None => match crate::PluginRef::parse(crate::dag_exec::operator_ref(&inv.operator))
                {
                    Ok(r) => r,
                    // not a reference: the local executor reports it as usual
                    Err(_) => {
                        return crate::scheduler::TryRunner::run_try_cancellable(
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
                        return crate::scheduler::TryOutcome {
                            result: Err(f),
                            log: Value::Null,
                        }
                    }
                    None => (None, None),
                };
                let input = match python {
                    Some(path) => {
                        match crate::dag_exec::python_call_input(path, inv, packages.as_ref()) {
                            Ok(input) => Some(input),
                            Err(f) => {
                                return crate::scheduler::TryOutcome {
                                    result: Err(f),
                                    log: Value::Null,
                                }
                            }
                        }
                    }
                    None => None,
                };
                return super::remote_tasks::run_dag_try(
                    &self.rt,
                    self.sandbox,
                    super::remote_tasks::DagTry {
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
        crate::scheduler::TryRunner::run_try_cancellable(self.sandbox, inv, cancel)
    }
}

impl crate::scheduler::TryRunner for RuntimeTries<'_> {
    fn run_try(&self, inv: &weft_dag::TaskInvocation) -> crate::scheduler::TryOutcome {
        self.run_try_cancellable(inv, &(Arc::new(|| false) as crate::plugin_host::Cancel))
    }

    fn run_try_cancellable(
        &self,
        inv: &weft_dag::TaskInvocation,
        cancel: &crate::plugin_host::Cancel,
    ) -> crate::scheduler::TryOutcome {
        let started = now_epoch();
        let mut out = match inv.operator.strip_prefix(STATE_MACHINE_OPERATOR) {
            Some(name) => crate::scheduler::TryOutcome {
                result: self
                    .may_start(name, inv)
                    .and_then(|()| run_state_machine(&self.rt, name, inv)),
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
    rt: &Arc<Runtime>,
    name: &str,
    inv: &weft_dag::TaskInvocation,
) -> Result<Value, weft_dag::TaskFailure> {
    let fail = |error: &str, cause: String| weft_dag::TaskFailure {
        error: error.to_string(),
        cause,
    };
    let smr: super::records::StateMachineRecord = match rt.catalog.state_machine(name) {
        Ok(Some(v)) => {
            serde_json::from_slice(&v).map_err(|e| fail("States.Runtime", e.to_string()))?
        }
        Ok(None) => {
            return Err(fail(
                "StateMachineDoesNotExist",
                format!(
                    "State Machine Does Not Exist: '{}'",
                    super::records::sm_arn(name)
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
    let rec = super::runtime::new_record(&smr, &exec_name, inv.arguments.to_string(), None, None);
    let (rec, _) =
        super::runtime::insert_execution(rt, rec).map_err(|e| fail(e.kind, e.message))?;
    let deadline = inv.execution_timeout.map(|t| std::time::Instant::now() + t);
    loop {
        let cur: super::records::ExecutionRecord = match rt.executions.execution(&rec.arn) {
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
        if rt.shutdown.load(std::sync::atomic::Ordering::SeqCst) {
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

/// Runs `f` with a scheduler over the runtime's store and DAG folder for creating and clearing
/// runs (the loop thread runs them); it never runs a task itself.
pub fn with_control<R, E: From<RuntimeError>>(
    rt: &Runtime,
    f: impl FnOnce(&Scheduler<'_>) -> Result<R, E>,
) -> Result<R, E> {
    let (dags, _, dir) = load_dags(rt);
    let exec = Plain(no_tasks);
    let roles = Arc::new(roles(rt, &dir));
    let secrets = Arc::new(
        GrantedSecrets::load(rt.store.home(), roles)
            .map_err(|e| RuntimeError::internal(e.to_string()))?,
    );
    let cfg = config(rt, &dir).map_err(RuntimeError::internal)?;
    let s = Scheduler::with_store(
        rt.dag_store().map_err(RuntimeError::from)?,
        dags,
        &exec,
        secrets,
        cfg,
    )
    .map_err(RuntimeError::from)?;
    f(&s)
}

fn no_tasks(_: &weft_dag::TaskInvocation) -> Result<Value, weft_dag::TaskFailure> {
    Err(weft_dag::TaskFailure {
        error: "Weft.NotHere".into(),
        cause: "tasks run on the server's scheduler thread".into(),
    })
}

/// Creates a manual run of `dag_id` (body: `{"conf": {...}, "logicalDate": RFC 3339}`).
pub fn trigger(rt: &Runtime, dag_id: &str, body: &Value) -> Result<Value, RuntimeError> {
    let conf = match body.get("conf") {
        None | Some(Value::Null) => serde_json::Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => return Err(RuntimeError::validation("/conf must be a JSON object")),
    };
    let given = body.get("logicalDate").and_then(Value::as_str);
    let mut when = match given {
        None => chrono::Utc::now(),
        Some(d) => weft_dag::parse_logical_date(d)
            .map_err(|e| RuntimeError::validation(format!("/logicalDate `{d}`: {e}")))?,
    };
    // without a given date, runs triggered in the same millisecond get distinct ones
    let rec = with_control(rt, |s| loop {
        match s.create_run(dag_id, when, None, conf.clone(), Trigger::Manual) {
            Err(crate::scheduler::SchedulerError::RunExists { .. }) if given.is_none() => {
                when += chrono::Duration::milliseconds(1);
            }
            r => return r.map_err(RuntimeError::from),
        }
    })?;
    Ok(
        json!({"dagId": rec.dag_id, "runId": rec.run_id, "state": rec.state, "logicalDate": rec.logical_date.to_rfc3339()}),
    )
}

/// A DAG run's outcome as a state machine task result: `{"DagId", "RunId", "State", "Tasks":
/// {TASK_ID: STATE}}`; `None` while it runs.
pub fn run_outcome(rt: &Runtime, dag_id: &str, run_id: &str) -> Result<Option<Value>, String> {
    let store = rt.dag_store().map_err(|e| e.to_string())?;
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
