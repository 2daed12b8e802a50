//! `weft dag delete|state|tasks-state|mark`: a DAG's life cycle on the scheduler's store (the
//! local sled store, or the PostgreSQL database of `$WEFT_DB`), as Airflow's `dags delete`,
//! `dags state`, `tasks states-for-dag-run` and the UI's "Mark success / Mark failed" do.
//!
//! A run is named by its run id or by its logical date. Marks change runs no scheduler of this
//! process holds; a run that `weft server`'s scheduler is running is marked through the
//! server's API (`PATCH /api/v2/dags/{id}/dagRuns/{run_id}[/taskInstances/{task_id}]`), which
//! also stops its running tries.

use crate::cmd_sched::sched_store;
use crate::context::{open_store, usage};
use anyhow::Result;
use serde_json::{json, Value};
use std::io::Write;
use std::process::ExitCode;
use weft_dag::TiState;
use weft_engine::scheduler::{
    related_tasks, ControlRequest, DagRunRecord, Plain, RunMark, SchedStore, Scheduler,
};

fn check_dag_id(dag_id: &str) -> Result<()> {
    if weft_dag::valid_dag_id(dag_id) {
        Ok(())
    } else {
        Err(usage(format!(
            "`{dag_id}` is not a DAG id (1 to 250 letters, digits, `_`, `-` or `.`)"
        )))
    }
}

/// The run `run` names: a run id, else a logical date.
fn find_run(s: &SchedStore, dag_id: &str, run: &str) -> Result<DagRunRecord> {
    if let Some(r) = s.get_run(dag_id, run)? {
        return Ok(r);
    }
    if let Ok(date) = weft_dag::parse_logical_date(run) {
        if let Some(r) = s
            .runs_of(dag_id)?
            .into_iter()
            .find(|r| r.logical_date == date)
        {
            return Ok(r);
        }
    }
    Err(usage(format!(
        "DAG `{dag_id}` has no run with run id or logical date `{run}` (see `weft dag runs {dag_id}`)"
    )))
}

fn iso_epoch(t: Option<f64>) -> Value {
    t.and_then(|s| chrono::DateTime::from_timestamp_micros((s * 1e6) as i64))
        .map_or(Value::Null, |d| json!(d.to_rfc3339()))
}

/// `weft dag delete DAG_ID [-y]`.
pub fn delete(dag_id: String, yes: bool) -> Result<ExitCode> {
    check_dag_id(&dag_id)?;
    let store = open_store()?;
    let s = sched_store(store.db())?;
    if let Some(r) = s.runs_of(&dag_id)?.into_iter().find(|r| !r.is_finished()) {
        return Err(usage(format!(
            "DAG `{dag_id}` has a {} run ({}): mark it or wait for it to finish before deleting the DAG's records",
            r.state, r.run_id
        )));
    }
    if !yes {
        eprint!(
            "This will drop all existing records related to the DAG `{dag_id}`. Proceed? (y/n) "
        );
        std::io::stderr().flush()?;
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            weft_server::console::say("Cancelled");
            return Ok(ExitCode::from(1));
        }
    }
    let n = s.delete_dag(&dag_id)?;
    s.flush()?;
    println!("Removed {n} record(s)");
    Ok(ExitCode::SUCCESS)
}

/// `weft dag state DAG_ID RUN`: the run's state, then `, CONF` when it has a conf.
pub fn state(dag_id: String, run: String, json: bool) -> Result<ExitCode> {
    check_dag_id(&dag_id)?;
    let store = open_store()?;
    let s = sched_store(store.db())?;
    let r = find_run(&s, &dag_id, &run)?;
    if json {
        println!(
            "{}",
            json!({"dag_id": r.dag_id, "run_id": r.run_id, "logical_date": r.logical_date.to_rfc3339(),
                "state": r.state, "conf": r.conf, "note": r.note})
        );
    } else if r.conf.is_empty() {
        println!("{}", r.state);
    } else {
        println!("{}, {}", r.state, Value::Object(r.conf));
    }
    Ok(ExitCode::SUCCESS)
}

/// `weft dag tasks-state DAG_ID RUN`: one row per task instance.
pub fn tasks_state(dag_id: String, run: String, json: bool) -> Result<ExitCode> {
    check_dag_id(&dag_id)?;
    let store = open_store()?;
    let s = sched_store(store.db())?;
    let r = find_run(&s, &dag_id, &run)?;
    let rows: Vec<Value> = s
        .tis_of(&dag_id, &r.run_id)?
        .into_iter()
        .map(|t| {
            json!({
                "dag_id": dag_id,
                "logical_date": r.logical_date.to_rfc3339(),
                "task_id": t.ti.task_id,
                "map_index": t.ti.map_index,
                "state": (t.ti.state != TiState::None).then(|| t.ti.state.as_str()),
                "start_date": iso_epoch(t.start_date),
                "end_date": iso_epoch(t.end_date),
            })
        })
        .collect();
    if json {
        println!("{}", Value::Array(rows));
        return Ok(ExitCode::SUCCESS);
    }
    let cols = [
        "dag_id",
        "logical_date",
        "task_id",
        "state",
        "start_date",
        "end_date",
    ];
    let cell = |v: &Value, k: &str| -> String {
        match (k, &v[k]) {
            ("task_id", Value::String(t)) => {
                weft_dag::ti_key(t, v["map_index"].as_i64().unwrap_or(-1))
            }
            (_, Value::String(x)) => x.clone(),
            (_, Value::Null) => "None".into(),
            (_, x) => x.to_string(),
        }
    };
    let widths: Vec<usize> = cols
        .iter()
        .map(|c| {
            rows.iter()
                .map(|r| cell(r, c).len())
                .chain([c.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join(" | ")
            .trim_end()
            .to_string()
    };
    println!("{}", line(cols.iter().map(|c| c.to_string()).collect()));
    println!(
        "{}",
        widths
            .iter()
            .map(|w| "=".repeat(*w))
            .collect::<Vec<_>>()
            .join("=+=")
    );
    for r in &rows {
        println!("{}", line(cols.iter().map(|c| cell(r, c)).collect()));
    }
    Ok(ExitCode::SUCCESS)
}

use crate::args::MarkArgs;

fn no_tasks(_: &weft_dag::TaskInvocation) -> Result<Value, weft_dag::TaskFailure> {
    Err(weft_dag::TaskFailure::new(
        "Weft.NotHere",
        "`weft dag mark` runs no task",
    ))
}

/// `weft dag mark DAG_ID RUN [TASK] --state STATE`.
pub fn mark(a: MarkArgs) -> Result<ExitCode> {
    check_dag_id(&a.dag_id)?;
    let env = crate::cmd_sched::env(a.dags.clone(), None)?;
    let dag = env
        .dags
        .iter()
        .find(|d| d.dag_id == a.dag_id)
        .ok_or_else(|| {
            usage(format!(
                "DAG `{}` not found in {}",
                a.dag_id,
                env.dir.display()
            ))
        })?
        .clone();
    let s = sched_store(env.store.db())?;
    let run = find_run(&s, &a.dag_id, &a.run)?;
    let exec = Plain(no_tasks);
    let sched = Scheduler::with_store(
        s.clone(),
        env.dags.clone(),
        &exec,
        env.secrets.clone(),
        env.cfg.clone(),
    )?;
    let mut plan: Vec<(DagRunRecord, ControlRequest)> = Vec::new();
    match &a.task {
        None => {
            if a.upstream || a.downstream || a.past || a.future || a.map_index.is_some() {
                return Err(usage(
                    "--upstream, --downstream, --past, --future and --map-index select task instances: name a task",
                ));
            }
            let mark = match a.state.as_str() {
                "success" => RunMark::Success,
                "failed" => RunMark::Failed,
                o => {
                    return Err(usage(format!(
                        "--state `{o}`: a run is marked success or failed"
                    )))
                }
            };
            plan.push((
                run.clone(),
                ControlRequest::MarkRun {
                    dag_id: a.dag_id.clone(),
                    run_id: run.run_id.clone(),
                    mark,
                },
            ));
        }
        Some(task) => {
            if !dag.tasks.contains_key(task.as_str()) {
                return Err(usage(format!("DAG `{}` has no task `{task}`", a.dag_id)));
            }
            let state = match a.state.as_str() {
                "success" => TiState::Success,
                "failed" => TiState::Failed,
                "skipped" => TiState::Skipped,
                o => {
                    return Err(usage(format!(
                        "--state `{o}`: a task instance is marked success, failed or skipped"
                    )))
                }
            };
            let tasks = related_tasks(&dag, std::slice::from_ref(task), a.upstream, a.downstream);
            let tis: Vec<(String, Option<i64>)> = tasks
                .into_iter()
                .map(|t| {
                    let mi = if &t == task { a.map_index } else { None };
                    (t, mi)
                })
                .collect();
            for r in s.runs_of(&a.dag_id)? {
                let wanted = r.run_id == run.run_id
                    || (a.past && r.logical_date < run.logical_date)
                    || (a.future && r.logical_date > run.logical_date);
                if wanted {
                    plan.push((
                        r.clone(),
                        ControlRequest::MarkTis {
                            dag_id: a.dag_id.clone(),
                            run_id: r.run_id.clone(),
                            tis: tis.clone(),
                            state,
                        },
                    ));
                }
            }
        }
    }
    let mut out = Vec::new();
    for (r, req) in &plan {
        let changed: Vec<(String, i64, String)> = if a.dry_run {
            would_change(&s, r, req)?
        } else {
            let st = match req {
                ControlRequest::MarkTis { state, .. } => state.as_str().to_string(),
                _ => a.state.clone(),
            };
            sched
                .apply_control(req)
                .map_err(|e| usage(e.to_string()))?
                .into_iter()
                .map(|(t, m)| {
                    // a run marked failed skips what had not run
                    let now = s
                        .tis_of(&r.dag_id, &r.run_id)
                        .ok()
                        .and_then(|v| {
                            v.into_iter()
                                .find(|x| x.ti.task_id == t && x.ti.map_index == m)
                                .map(|x| x.ti.state.as_str().to_string())
                        })
                        .unwrap_or_else(|| st.clone());
                    (t, m, now)
                })
                .collect()
        };
        for (t, m, st) in changed {
            out.push(json!({"dag_id": r.dag_id, "run_id": r.run_id, "task_id": t, "map_index": m, "state": st}));
        }
    }
    if a.json {
        println!("{}", json!({"dry_run": a.dry_run, "task_instances": out}));
    } else {
        for v in &out {
            println!(
                "{} {} {} -> {}",
                v["dag_id"].as_str().unwrap_or(""),
                v["run_id"].as_str().unwrap_or(""),
                weft_dag::ti_key(
                    v["task_id"].as_str().unwrap_or(""),
                    v["map_index"].as_i64().unwrap_or(-1)
                ),
                v["state"].as_str().unwrap_or("")
            );
        }
        weft_server::console::say(format!(
            "{} {} task instance(s)",
            if a.dry_run { "would mark" } else { "marked" },
            out.len()
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// What `req` would change in run `r`, without changing it.
fn would_change(
    s: &SchedStore,
    r: &DagRunRecord,
    req: &ControlRequest,
) -> Result<Vec<(String, i64, String)>> {
    let tis = s.tis_of(&r.dag_id, &r.run_id)?;
    Ok(tis
        .into_iter()
        .filter_map(|t| {
            let st = t.ti.state;
            let new = match req {
                ControlRequest::MarkTis { tis, state, .. } => tis
                    .iter()
                    .any(|(id, mi)| id == &t.ti.task_id && mi.is_none_or(|m| m == t.ti.map_index))
                    .then_some(*state)?,
                ControlRequest::MarkRun { mark, .. } => match mark {
                    RunMark::Success => TiState::Success,
                    RunMark::Failed if st.is_finished() => return None,
                    RunMark::Failed if st == TiState::Running => TiState::Failed,
                    RunMark::Failed => TiState::Skipped,
                },
                _ => return None,
            };
            (new != st).then(|| (t.ti.task_id, t.ti.map_index, new.as_str().to_string()))
        })
        .collect())
}
