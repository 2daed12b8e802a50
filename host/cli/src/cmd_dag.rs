//! `weft dag list|test`: DAG files from `--dags DIR`, `$WEFT_DAGS` or `$WEFT_HOME/dags`.
//! `dag test` runs one DAG run in-process with every task in the sandbox and prints the
//! DESIGN.md report (`--json`); exit 0 when the run succeeded, 1 when it failed.

use crate::args::DagCmd;
use crate::context::{home, open_plugin_store, plugin_host, usage};
use anyhow::Result;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use weft_dag::{load_dags, parse_logical_date, run_dag_once, Dag, DagError, RunOptions};
use weft_engine::dag_exec::{operator_ref, SandboxTaskExecutor};
use weft_engine::py_dags::{SandboxDagParser, WithPythonDags};
use weft_engine::{PluginRef, Roles};
use weft_store::PluginStore;

pub fn dags_dir(arg: Option<PathBuf>) -> PathBuf {
    arg.or_else(|| std::env::var_os("WEFT_DAGS").map(PathBuf::from))
        .unwrap_or_else(|| home().join("dags"))
}

/// Whether the store has a plugin for an operator reference; Python DAG files are parsed by
/// the store's `weft-airflow-py` component in the sandbox.
pub fn known(store: &PluginStore) -> WithPythonDags<impl Fn(&str) -> bool + '_> {
    WithPythonDags {
        check: move |op: &str| {
            // run by the scheduler inside `weft server`; elsewhere the task fails with a clear error
            op.starts_with("weft:statemachine:")
                || PluginRef::parse(operator_ref(op))
                    .ok()
                    .is_some_and(|r| weft_engine::plugin_host::resolve(store, &r).is_ok())
        },
        parser: SandboxDagParser::shared(store.home()),
    }
}

fn load(store: &PluginStore, dir: &Path) -> Result<(Vec<Dag>, Vec<DagError>)> {
    if !dir.is_dir() {
        return Err(usage(format!(
            "DAG folder {} does not exist (use --dags DIR or set WEFT_DAGS)",
            dir.display()
        )));
    }
    let check = known(store);
    Ok(load_dags(dir, &check))
}

/// One entry of `weft dag list --json`'s `import_errors` (Airflow's import errors): the file,
/// the line (0: the file as a whole), the error and, for Python files, the traceback.
pub fn import_error_json(e: &DagError) -> serde_json::Value {
    let error = if e.path.is_empty() {
        e.reason.clone()
    } else {
        format!("{}: {}", e.path, e.reason)
    };
    serde_json::json!({
        "file": e.file.display().to_string(),
        "line": e.line,
        "error": error,
        "dag_id": e.dag_id,
        "traceback": e.traceback,
    })
}

/// The role directories of DAG tasks: `$WEFT_HOME/roles`, then beside the DAG folder.
pub fn roles(dir: &Path) -> Roles {
    Roles::new(vec![
        home().join("roles"),
        dir.join("roles"),
        dir.join("../roles"),
    ])
}

pub fn run(cmd: DagCmd) -> Result<ExitCode> {
    use crate::cmd_sched as s;
    match cmd {
        DagCmd::Validate { file, json } => crate::cmd_run::validate(crate::args::ValidateArgs {
            file,
            allow_unmapped: false,
            json,
        }),
        DagCmd::Trigger {
            dag_id,
            conf,
            date,
            json,
            sched,
        } => s::trigger(dag_id, conf, date, json, sched),
        DagCmd::Backfill {
            dag_id,
            from,
            to,
            json,
            sched,
        } => s::backfill(dag_id, from, to, json, sched),
        DagCmd::Clear {
            dag_id,
            task,
            run,
            no_downstream,
            json,
            sched,
        } => s::clear(dag_id, task, run, no_downstream, json, sched),
        DagCmd::Logs {
            dag_id,
            task,
            run,
            try_number,
            map_index,
            json,
        } => s::logs(dag_id, task, run, try_number, map_index, json),
        DagCmd::Runs { dag_id, json } => s::runs(dag_id, json),
        DagCmd::Pause { dag_id } => s::set_paused(dag_id, true),
        DagCmd::Unpause { dag_id } => s::set_paused(dag_id, false),
        DagCmd::Scheduler {
            sched,
            exit_when_idle,
            dags_paused_at_creation,
        } => s::scheduler(sched, exit_when_idle, dags_paused_at_creation),
        DagCmd::Delete { dag_id, yes } => crate::cmd_dag_ops::delete(dag_id, yes),
        DagCmd::State { dag_id, run, json } => crate::cmd_dag_ops::state(dag_id, run, json),
        DagCmd::TasksState { dag_id, run, json } => {
            crate::cmd_dag_ops::tasks_state(dag_id, run, json)
        }
        DagCmd::Mark(a) => crate::cmd_dag_ops::mark(a),
        DagCmd::Deps {
            dags,
            wheelhouse,
            offline,
            json,
        } => crate::cmd_dag_deps::deps(&dags_dir(dags), &wheelhouse, offline, json),
        DagCmd::List { dags, json } => {
            let store = open_plugin_store()?;
            let dir = dags_dir(dags);
            let (list, errors) = load(&store, &dir)?;
            for e in &errors {
                eprintln!("{e}");
            }
            if json {
                let v: Vec<_> = list
                    .iter()
                    .map(|d| {
                        serde_json::json!({"dag_id": d.dag_id, "description": d.description,
                            "tasks": d.tasks.len(), "tags": d.tags,
                            "file": d.file.display().to_string()})
                    })
                    .collect();
                let import_errors: Vec<_> = errors.iter().map(import_error_json).collect();
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({"dags": v, "import_errors": import_errors})
                    )?
                );
            } else {
                println!("{:<32} {:>6}  DESCRIPTION", "DAG_ID", "TASKS");
                for d in &list {
                    println!(
                        "{:<32} {:>6}  {}",
                        d.dag_id,
                        d.tasks.len(),
                        d.description.as_deref().unwrap_or("")
                    );
                }
            }
            Ok(if errors.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            })
        }
        DagCmd::Test {
            dag_id,
            date,
            json,
            dags,
            wait_retries,
        } => {
            let host = plugin_host()?;
            let dir = dags_dir(dags);
            let (list, errors) = load(&host.store, &dir)?;
            let Some(dag) = list.iter().find(|d| d.dag_id == dag_id) else {
                for e in &errors {
                    eprintln!("{e}");
                }
                return Err(usage(format!(
                    "DAG `{dag_id}` not found in {}{}",
                    dir.display(),
                    if errors.is_empty() {
                        ""
                    } else {
                        " (see the errors above)"
                    }
                )));
            };
            for e in &errors {
                weft_server::console::warn(format!("warning: {e}"));
            }
            let logical = match &date {
                Some(d) => {
                    parse_logical_date(d).map_err(|e| usage(format!("logical date `{d}`: {e}")))?
                }
                None => chrono::Utc::now(),
            };
            let roles = Arc::new(roles(&dir));
            let base = std::env::current_dir()?;
            let mut exec = SandboxTaskExecutor::new(&host, &roles, base);
            // each test run is a trace of its own, though its run id repeats
            let salt = weft_asl::entropy::uuid_v4().simple().to_string();
            exec.trace_salt = Some(salt.clone());
            let mut opts = RunOptions {
                secrets: Arc::new(weft_engine::variables::GrantedSecrets::load(
                    &home(),
                    roles.clone(),
                )?),
                ..RunOptions::default()
            };
            if !wait_retries {
                opts.sleep = Arc::new(|_| {});
            }
            let started = std::time::SystemTime::now();
            let report = run_dag_once(dag, logical, &exec, &opts);
            weft_engine::telemetry::dag_run(&weft_engine::telemetry::DagRunSpan {
                trace: &weft_engine::telemetry::dag_trace_id(
                    &report.dag_id,
                    &report.run_id,
                    Some(&salt),
                ),
                dag_id: &report.dag_id,
                run_id: &report.run_id,
                start: started,
                end: std::time::SystemTime::now(),
                state: report.state.as_str(),
            });
            for (id, t) in &report.tasks {
                if let Some(e) = &t.error {
                    weft_server::console::warn(format!(
                        "task {id} try {}: {}: {}",
                        t.try_number, e.error, e.cause
                    ));
                }
            }
            if json {
                println!("{}", report.to_json());
            } else {
                println!(
                    "DAG {} run {}: {}",
                    report.dag_id,
                    report.run_id,
                    report.state.as_str()
                );
                for (id, t) in &report.tasks {
                    println!(
                        "  {:<32} {:<16} try {}  {:.3}s",
                        id,
                        t.state.as_str(),
                        t.try_number,
                        t.duration_s
                    );
                }
            }
            Ok(if report.state.as_str() == "success" {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}
