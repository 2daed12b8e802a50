//! `weft dag trigger|backfill|clear|logs|runs|scheduler`: the persistent scheduler
//! (`weft_engine::scheduler`) on `$WEFT_HOME`'s store, every task in the sandbox.
//!
//! `trigger` prints the run like `dag test` (`--json`: the same document) and exits 0 on
//! success, 1 on failure; `backfill` runs each data interval in [--from, --to] within
//! `max_active_runs`; `clear` resets a task instance and its downstream and runs them again.

use crate::args::SchedArgs;
use crate::cmd_dag::{dags_dir, known};
use crate::context::{home, json_arg, open_store, plugin_host_on, usage};
use crate::progress::Progress;
use anyhow::Result;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use weft_dag::{load_dags, parse_logical_date, Dag, DagRunReport, TiState};
use weft_engine::dag_exec::SandboxTaskExecutor;
use weft_engine::scheduler::{LoopOptions, Pools, SchedStore, Scheduler, SchedulerConfig, Trigger};
use weft_engine::variables::GrantedSecrets;
use weft_engine::{PluginHost, Roles};

/// Everything a scheduler command needs, owned here so the scheduler can borrow it.
pub struct Env {
    /// The database the scheduler's runs live in (held for the command's lifetime).
    pub store: Arc<weft_store::Store>,
    pub host: PluginHost,
    pub dir: PathBuf,
    pub dags: Vec<Dag>,
    pub roles: Arc<Roles>,
    pub secrets: Arc<GrantedSecrets>,
    pub cfg: SchedulerConfig,
}

pub fn env(dags: Option<PathBuf>, a: Option<&SchedArgs>) -> Result<Env> {
    let store = open_store()?;
    let host = plugin_host_on(store.plugin_store())?;
    let dir = dags_dir(dags);
    if !dir.is_dir() {
        return Err(usage(format!(
            "DAG folder {} does not exist (use --dags DIR or set WEFT_DAGS)",
            dir.display()
        )));
    }
    let (dags, errors) = {
        let check = known(&host.store);
        load_dags(&dir, &check)
    };
    for e in &errors {
        weft_server::console::warn(format!("warning: {e}"));
    }
    let roles = Arc::new(crate::cmd_dag::roles(&dir));
    let secrets = Arc::new(GrantedSecrets::load(&home(), roles.clone())?);
    let mut cfg = SchedulerConfig {
        pools: Pools::load(&[&home().join("pools.json"), &dir.join("pools.json")])
            .map_err(|e| usage(e.to_string()))?,
        ..SchedulerConfig::default()
    };
    if let Some(a) = a {
        cfg.min_workers = a.min_workers;
        if let Some(m) = a.max_workers {
            cfg.max_workers = m.max(1);
        }
        cfg.parallelism = a.parallelism.max(1);
    }
    Ok(Env {
        store,
        host,
        dir,
        dags,
        roles,
        secrets,
        cfg,
    })
}

fn find<'a>(env: &'a Env, dag_id: &str) -> Result<&'a Dag> {
    env.dags
        .iter()
        .find(|d| d.dag_id == dag_id)
        .ok_or_else(|| usage(format!("DAG `{dag_id}` not found in {}", env.dir.display())))
}

fn print_report(r: &DagRunReport, json: bool) {
    for (id, t) in &r.tasks {
        if let Some(e) = &t.error {
            if t.state != TiState::Success {
                weft_server::console::warn(format!(
                    "task {id} try {}: {}: {}",
                    t.try_number, e.error, e.cause
                ));
            }
        }
    }
    if json {
        println!("{}", r.to_json());
    } else {
        println!("DAG {} run {}: {}", r.dag_id, r.run_id, r.state.as_str());
        for (id, t) in &r.tasks {
            println!(
                "  {:<32} {:<18} try {}  {:.3}s",
                id,
                t.state.as_str(),
                t.try_number,
                t.duration_s
            );
        }
    }
}

fn progress(run_id: &str, ti: &str, dag_id: &str, s: TiState) {
    tracing::info!(
        dag_id,
        run_id,
        task = ti,
        state = s.as_str(),
        "task instance"
    );
}

fn date(d: &str) -> Result<chrono::DateTime<chrono::Utc>> {
    parse_logical_date(d).map_err(|e| usage(format!("date `{d}`: {e}")))
}

pub fn trigger(
    dag_id: String,
    conf: Option<String>,
    date_arg: Option<String>,
    json: bool,
    a: SchedArgs,
) -> Result<ExitCode> {
    let env = env(a.dags.clone(), Some(&a))?;
    let dag = find(&env, &dag_id)?;
    let conf = match conf {
        Some(c) => match json_arg("conf", &c)? {
            serde_json::Value::Object(m) => m,
            _ => return Err(usage("--conf must be a JSON object")),
        },
        None => serde_json::Map::new(),
    };
    let logical = match &date_arg {
        Some(d) => date(d)?,
        None => chrono::Utc::now(),
    };
    let exec = SandboxTaskExecutor::new(&env.host, &env.roles, std::env::current_dir()?);
    let sched = Scheduler::with_store(
        sched_store(env.store.db())?,
        env.dags.clone(),
        &exec,
        env.secrets.clone(),
        env.cfg.clone(),
    )?
    .with_roles(env.roles.clone());
    let rec = sched
        .create_run(&dag.dag_id, logical, None, conf, Trigger::Manual)
        .map_err(|e| usage(e.to_string()))?;
    let opts = LoopOptions {
        until_runs: Some(vec![(rec.dag_id.clone(), rec.run_id.clone())]),
        on_change: Some(&progress),
        ..Default::default()
    };
    sched.run(&opts)?;
    let r = sched.report(&rec.dag_id, &rec.run_id)?;
    print_report(&r, json);
    Ok(if r.state.as_str() == "success" {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub fn backfill(
    dag_id: String,
    from: String,
    to: String,
    json: bool,
    a: SchedArgs,
) -> Result<ExitCode> {
    let env = env(a.dags.clone(), Some(&a))?;
    let dag = find(&env, &dag_id)?;
    let (from, to) = (date(&from)?, date(&to)?);
    if from > to {
        return Err(usage("--from is after --to"));
    }
    let infos = dag.schedule.runs_between(dag.timezone, from, to, 100_000);
    if infos.is_empty() {
        return Err(usage(format!(
            "DAG `{dag_id}` has no data interval with a logical date in [{from}, {to}] (a DAG with schedule null or @once has none to backfill)"
        )));
    }
    let exec = SandboxTaskExecutor::new(&env.host, &env.roles, std::env::current_dir()?);
    let sched = Scheduler::with_store(
        sched_store(env.store.db())?,
        env.dags.clone(),
        &exec,
        env.secrets.clone(),
        env.cfg.clone(),
    )?
    .with_roles(env.roles.clone());
    let mut runs = Vec::new();
    let mut skipped = 0;
    for info in &infos {
        match sched.create_run(
            &dag_id,
            info.logical_date,
            Some(info.data_interval),
            serde_json::Map::new(),
            Trigger::Backfill,
        ) {
            Ok(r) => runs.push((r.dag_id, r.run_id)),
            Err(weft_engine::scheduler::SchedulerError::RunExists { detail, .. }) => {
                weft_server::console::say(format!(
                    "skipping {}: {detail}",
                    info.logical_date.to_rfc3339()
                ));
                skipped += 1;
            }
            Err(e) => return Err(e.into()),
        }
    }
    let opts = LoopOptions {
        until_runs: Some(runs.clone()),
        on_change: Some(&progress),
        ..Default::default()
    };
    let bar = Progress::counted(
        format!("backfill {dag_id}"),
        runs.len() as u64,
        "runs finished",
    );
    let done = AtomicBool::new(false);
    let store = sched.store().clone();
    std::thread::scope(|s| -> Result<()> {
        s.spawn(|| watch_runs(&store, &runs, &bar, &done));
        let r = sched.run(&opts);
        done.store(true, Ordering::Release);
        r?;
        Ok(())
    })?;
    let mut failed = 0;
    let mut out = Vec::new();
    for (d, r) in &runs {
        let rec = sched
            .store()
            .get_run(d, r)?
            .ok_or_else(|| anyhow::anyhow!("run {r} vanished"))?;
        if rec.state != "success" {
            failed += 1;
        }
        out.push(serde_json::json!({"run_id": rec.run_id, "logical_date": rec.logical_date.to_rfc3339(), "state": rec.state}));
    }
    bar.set(runs.len() as u64, &format!("{failed} failed"));
    bar.finish(&format!("{} runs, {failed} failed", runs.len()));
    if json {
        println!(
            "{}",
            serde_json::json!({"dag_id": dag_id, "runs": out, "skipped": skipped})
        );
    } else {
        for r in &out {
            println!(
                "{}  {}",
                r["run_id"].as_str().unwrap_or(""),
                r["state"].as_str().unwrap_or("")
            );
        }
        println!(
            "{} runs, {} failed, {} skipped (already existed)",
            runs.len(),
            failed,
            skipped
        );
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Reports how many of `runs` have finished (and failed) until `done` is set: the scheduler
/// loop owns the thread it runs on, so this reads the run records beside it.
fn watch_runs(store: &SchedStore, runs: &[(String, String)], bar: &Progress, done: &AtomicBool) {
    let mut open: Vec<&(String, String)> = runs.iter().collect();
    let mut failed = 0;
    while !done.load(Ordering::Acquire) && !open.is_empty() {
        open.retain(|(d, r)| match store.get_run(d, r) {
            Ok(Some(rec)) if rec.is_finished() => {
                if rec.state != "success" {
                    failed += 1;
                }
                false
            }
            _ => true,
        });
        bar.set(
            (runs.len() - open.len()) as u64,
            &format!("{failed} failed"),
        );
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}

fn latest_run(sched: &Scheduler<'_>, dag_id: &str) -> Result<String> {
    sched
        .store()
        .runs_of(dag_id)?
        .into_iter()
        .max_by_key(|r| r.queued_at)
        .map(|r| r.run_id)
        .ok_or_else(|| usage(format!("DAG `{dag_id}` has no runs yet")))
}

pub fn clear(
    dag_id: String,
    task: String,
    run: Option<String>,
    no_downstream: bool,
    json: bool,
    a: SchedArgs,
) -> Result<ExitCode> {
    let env = env(a.dags.clone(), Some(&a))?;
    find(&env, &dag_id)?;
    let exec = SandboxTaskExecutor::new(&env.host, &env.roles, std::env::current_dir()?);
    let sched = Scheduler::with_store(
        sched_store(env.store.db())?,
        env.dags.clone(),
        &exec,
        env.secrets.clone(),
        env.cfg.clone(),
    )?
    .with_roles(env.roles.clone());
    let run_id = match run {
        Some(r) => r,
        None => latest_run(&sched, &dag_id)?,
    };
    let cleared = sched
        .clear(&dag_id, &run_id, &task, !no_downstream)
        .map_err(|e| usage(e.to_string()))?;
    weft_server::console::say(format!("cleared {} in run {run_id}", cleared.join(", ")));
    let opts = LoopOptions {
        until_runs: Some(vec![(dag_id.clone(), run_id.clone())]),
        on_change: Some(&progress),
        ..Default::default()
    };
    sched.run(&opts)?;
    let r = sched.report(&dag_id, &run_id)?;
    print_report(&r, json);
    Ok(if r.state.as_str() == "success" {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub fn logs(
    dag_id: String,
    task: String,
    run: Option<String>,
    try_number: Option<u32>,
    map_index: Option<i64>,
    json: bool,
) -> Result<ExitCode> {
    let store = open_store()?;
    let s = sched_store(store.db())?;
    let run_id = match run {
        Some(r) => r,
        None => s
            .runs_of(&dag_id)?
            .into_iter()
            .max_by_key(|r| r.queued_at)
            .map(|r| r.run_id)
            .ok_or_else(|| usage(format!("DAG `{dag_id}` has no runs")))?,
    };
    let entries: Vec<_> = s
        .logs_of(&dag_id, &run_id, &task)?
        .into_iter()
        .filter(|(m, t, _)| try_number.is_none_or(|x| x == *t) && map_index.is_none_or(|x| x == *m))
        .collect();
    if entries.is_empty() {
        return Err(usage(format!(
            "no logs for task `{task}` of run `{run_id}` of DAG `{dag_id}`{}",
            try_number.map(|t| format!(" try {t}")).unwrap_or_default()
        )));
    }
    if json {
        let v: Vec<_> = entries
            .iter()
            .map(|(m, t, e)| serde_json::json!({"map_index": m, "try_number": t, "entries": e}))
            .collect();
        println!("{}", serde_json::Value::Array(v));
        return Ok(ExitCode::SUCCESS);
    }
    for (m, t, list) in entries {
        let id = weft_dag::ti_key(&task, m);
        println!("=== {dag_id} / {run_id} / {id} / try {t} ===");
        for e in list {
            if let Some(lines) = e.get("logs").and_then(|l| l.as_array()) {
                for l in lines {
                    println!(
                        "[{}] {}",
                        l.get("level").and_then(|x| x.as_str()).unwrap_or("info"),
                        l.get("message")
                            .or_else(|| l.get("msg"))
                            .and_then(|x| x.as_str())
                            .unwrap_or(&l.to_string())
                    );
                }
                for (k, label) in [("stdout", "stdout"), ("stderr", "stderr")] {
                    if let Some(x) = e.get(k).and_then(|x| x.as_str()).filter(|x| !x.is_empty()) {
                        println!("--- {label} ---\n{}", x.trim_end());
                    }
                }
                if let Some(a) = e.get("audit").and_then(|x| x.as_array()) {
                    for r in a {
                        println!("[audit] {r}");
                    }
                }
            } else if let Some(err) = e.get("error") {
                println!(
                    "[error] {}: {}",
                    err["error"].as_str().unwrap_or(""),
                    err["cause"].as_str().unwrap_or("")
                );
            } else if e.get("callback").is_some() {
                println!("[callback] {e}");
            } else {
                println!("{e}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `weft dag pause|unpause DAG_ID`: records the DAG's paused flag in the scheduler's store
/// (the one `weft dag scheduler` and `weft server` read).
pub fn set_paused(dag_id: String, paused: bool) -> Result<ExitCode> {
    if !weft_dag::valid_dag_id(&dag_id) {
        return Err(usage(format!(
            "`{dag_id}` is not a DAG id (1 to 250 letters, digits, `_`, `-` or `.`)"
        )));
    }
    let store = open_store()?;
    let s = sched_store(store.db())?;
    s.set_dag_paused(&dag_id, paused)?;
    s.flush()?;
    weft_server::console::say(format!(
        "DAG {dag_id} {}",
        if paused { "paused" } else { "unpaused" }
    ));
    Ok(ExitCode::SUCCESS)
}

pub fn runs(dag_id: String, json: bool) -> Result<ExitCode> {
    let store = open_store()?;
    let s = sched_store(store.db())?;
    let mut out = Vec::new();
    for r in s.runs_of(&dag_id)? {
        let tis: serde_json::Map<String, serde_json::Value> = s
            .tis_of(&dag_id, &r.run_id)?
            .into_iter()
            .map(|t| {
                (
                    weft_dag::ti_key(&t.ti.task_id, t.ti.map_index),
                    serde_json::json!({"state": t.ti.state.as_str(), "try_number": t.ti.try_number}),
                )
            })
            .collect();
        out.push(
            serde_json::json!({"run_id": r.run_id, "run_type": r.run_type,
            "logical_date": r.logical_date.to_rfc3339(), "state": r.state, "tasks": tis}),
        );
    }
    if json {
        println!("{}", serde_json::Value::Array(out));
    } else {
        for r in &out {
            println!(
                "{:<48} {:<14} {}",
                r["run_id"].as_str().unwrap_or(""),
                r["run_type"].as_str().unwrap_or(""),
                r["state"].as_str().unwrap_or("")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

static STOP: AtomicBool = AtomicBool::new(false);

pub fn scheduler(
    a: SchedArgs,
    exit_when_idle: bool,
    paused_at_creation: Option<bool>,
) -> Result<ExitCode> {
    let mut env = env(a.dags.clone(), Some(&a))?;
    env.cfg.dags_paused_at_creation = match paused_at_creation {
        Some(p) => p,
        None => weft_engine::scheduler::paused_at_creation_from_env()
            .map_err(|e| usage(e.to_string()))?,
    };
    std::thread::spawn(|| {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async {
            if tokio::signal::ctrl_c().await.is_ok() {
                weft_server::console::say(
                    "stopping: waiting for running tries to finish (Ctrl-C again to abort)",
                );
                STOP.store(true, Ordering::SeqCst);
                if tokio::signal::ctrl_c().await.is_ok() {
                    weft_engine::telemetry::flush(); // what is queued still goes out
                    std::process::exit(130);
                }
            }
        });
    });
    let exec = SandboxTaskExecutor::new(&env.host, &env.roles, std::env::current_dir()?);
    let sched = Scheduler::with_store(
        sched_store(env.store.db())?,
        env.dags.clone(),
        &exec,
        env.secrets.clone(),
        env.cfg.clone(),
    )?
    .with_roles(env.roles.clone());
    weft_server::console::say(format!(
        "weft scheduler: {} DAGs from {}, workers {}..{}",
        env.dags.len(),
        env.dir.display(),
        env.cfg.min_workers,
        env.cfg.max_workers
    ));
    let on_change = |run_id: &str, ti: &str, dag_id: &str, s: TiState| {
        if s.is_finished() || matches!(s, TiState::UpForRetry | TiState::UpForReschedule) {
            weft_server::console::say(format!("{dag_id} {run_id} {ti}: {}", s.as_str()));
        }
    };
    let opts = LoopOptions {
        schedule: true,
        hold_paused: true,
        until_idle: exit_when_idle,
        stop: Some(&STOP),
        on_change: Some(&on_change),
        ..Default::default()
    };
    let stats = sched.run(&opts)?;
    weft_server::console::say(format!(
        "scheduler stopped: {} runs finished, {} tries, peak {} workers",
        stats.runs_finished, stats.tries, stats.peak_workers
    ));
    Ok(ExitCode::SUCCESS)
}

/// The scheduler's store: the PostgreSQL database named by `WEFT_DB` when it is set (a bad or
/// unreachable URL is a usage error naming host, port and the driver's reason), else the local
/// sled store.
pub fn sched_store(sled: &sled::Db) -> Result<weft_engine::scheduler::SchedStore> {
    match std::env::var("WEFT_DB").ok().filter(|u| !u.is_empty()) {
        Some(url) => {
            let db = weft_engine::persistence::PgDatabase::connect(&url)
                .map_err(|e| usage(e.to_string()))?;
            Ok(weft_engine::scheduler::SchedStore::postgres(&db))
        }
        None => Ok(weft_engine::scheduler::SchedStore::open(sled)?),
    }
}
