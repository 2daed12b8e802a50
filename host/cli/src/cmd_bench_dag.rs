//! `weft bench dag`: the persistent scheduler's figures (DESIGN.md's 10,000-task DAG target):
//! a 10,000-task wide DAG and a 10,000-task chain from trigger to done, the latency between an
//! upstream's success and its downstream's start, and a 3-year daily catchup (1,096 runs of a
//! 5-task DAG). Each scenario uses a fresh sled store under `$WEFT_HOME/bench-dag`, or with
//! `--db`/`WEFT_DB` the PostgreSQL database (the scenario's DAG is deleted there before and
//! after), with every state change committed before it is acted on. Figures only, no
//! thresholds.

use crate::args::BenchArgs;
use crate::context::{home, plugin_host, usage};
use crate::progress::Progress;
use anyhow::Result;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;
use weft_dag::{
    parse_dag_file, AnyOperator, Dag, FolderConfig, NoSecrets, TaskFailure, TaskInvocation,
};
use weft_engine::dag_exec::SandboxTaskExecutor;
use weft_engine::persistence::PgDatabase;
use weft_engine::scheduler::{
    LoopOptions, Plain, SchedStore, Scheduler, SchedulerConfig, Trigger, TryRunner,
};
use weft_engine::Roles;

fn dag(yaml: &str) -> Result<Dag> {
    let (mut dags, errors) = parse_dag_file(
        Path::new("bench.yaml"),
        yaml,
        &FolderConfig::default(),
        &AnyOperator,
    );
    if let Some(e) = errors.first() {
        anyhow::bail!("bench DAG: {e}");
    }
    dags.pop()
        .ok_or_else(|| anyhow::anyhow!("bench DAG missing"))
}

fn wide(n: usize, op: &str) -> String {
    let mut y = format!("wide:\n  schedule: null\n  max_active_tasks: 100000\n  tasks:\n    start:\n      operator: {op}\n");
    for i in 1..n {
        y.push_str(&format!(
            "    t{i}:\n      operator: {op}\n      dependencies: [start]\n"
        ));
    }
    y
}

fn deep(n: usize, op: &str) -> String {
    let mut y = format!("deep:\n  schedule: null\n  tasks:\n    t0:\n      operator: {op}\n");
    for i in 1..n {
        y.push_str(&format!(
            "    t{i}:\n      operator: {op}\n      dependencies: [t{}]\n",
            i - 1
        ));
    }
    y
}

fn catchup(op: &str, start: &str) -> String {
    format!("catchup:\n  schedule: '@daily'\n  start_date: {start}\n  catchup: true\n  max_active_runs: 16\n  tasks:\n    extract:\n      operator: {op}\n    a:\n      operator: {op}\n      dependencies: [extract]\n    b:\n      operator: {op}\n      dependencies: [extract]\n    c:\n      operator: {op}\n      dependencies: [a, b]\n    load:\n      operator: {op}\n      dependencies: [c]\n")
}

struct Scenario {
    name: &'static str,
    tasks: usize,
    runs: usize,
    secs: f64,
    latencies: Vec<f64>,
    peak_workers: usize,
}

fn run_one(
    name: &'static str,
    d: Dag,
    exec: &dyn TryRunner,
    cfg: &SchedulerConfig,
    schedule: bool,
    pg: Option<&PgDatabase>,
) -> Result<Scenario> {
    let dir = home().join("bench-dag").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    let tasks = d.tasks.len();
    let dag_id = d.dag_id.clone();
    let (store, db) = match pg {
        Some(pg) => {
            let store = SchedStore::postgres(pg);
            store.delete_dag(&dag_id)?;
            (store, None)
        }
        None => {
            std::fs::create_dir_all(&dir)?;
            let db = sled::Config::new().path(&dir).open()?;
            (SchedStore::open(&db)?, Some(db))
        }
    };
    let s = Scheduler::with_store(store, vec![d], exec, Arc::new(NoSecrets), cfg.clone())?;
    let t = Instant::now();
    let opts = if schedule {
        LoopOptions {
            schedule: true,
            until_idle: true,
            ..Default::default()
        }
    } else {
        let rec = s.create_run(
            &dag_id,
            chrono::Utc::now(),
            None,
            Default::default(),
            Trigger::Manual,
        )?;
        LoopOptions {
            until_runs: Some(vec![(rec.dag_id, rec.run_id)]),
            ..Default::default()
        }
    };
    let stats = s.run(&opts)?;
    let secs = t.elapsed().as_secs_f64();
    let runs = s.store().runs_of(&dag_id)?;
    if let Some(bad) = runs.iter().find(|r| r.state != "success") {
        anyhow::bail!("bench {name}: run {} ended {}", bad.run_id, bad.state);
    }
    if pg.is_some() {
        s.store().delete_dag(&dag_id)?;
    }
    drop(s);
    drop(db);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(Scenario {
        name,
        tasks,
        runs: runs.len(),
        secs,
        latencies: stats.dispatch_latencies,
        peak_workers: stats.peak_workers,
    })
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

pub fn run(a: &BenchArgs) -> Result<ExitCode> {
    let noop = a.plugin == "none";
    let host = plugin_host()?;
    let roles = Roles::new(vec![home().join("roles")]);
    let sandbox = SandboxTaskExecutor::new(&host, &roles, std::env::current_dir()?);
    let plain = Plain(
        |_: &TaskInvocation| -> Result<serde_json::Value, TaskFailure> {
            Ok(serde_json::Value::Null)
        },
    );
    let exec: &dyn TryRunner = if noop { &plain } else { &sandbox };
    if !noop {
        let r = weft_engine::PluginRef::parse(&a.plugin).map_err(|e| usage(e.to_string()))?;
        host.resolve(&r)
            .map_err(|e| usage(format!("{e} (or use --plugin none)")))?;
    }
    let op = if noop { "noop" } else { a.plugin.as_str() };
    let n = (a.iterations as usize).clamp(2, 1_000_000);
    let n = if a.iterations == 20_000 { 10_000 } else { n };
    let cfg = SchedulerConfig {
        max_workers: a.threads.max(1) as usize,
        min_workers: 1,
        parallelism: 64,
        durable: !a.no_flush,
        ..SchedulerConfig::default()
    };
    let start = (chrono::Utc::now() - chrono::Duration::days(1096))
        .format("%Y-%m-%d")
        .to_string();
    let pg = match a.db.clone().or_else(|| std::env::var("WEFT_DB").ok()) {
        Some(url) => Some(PgDatabase::connect(&url).map_err(|e| usage(e.to_string()))?),
        None => None,
    };
    let pg = pg.as_ref();
    let bar = Progress::counted("bench dag", 3, "scenarios");
    let mut out = Vec::new();
    bar.set(0, &format!("wide: {n} tasks"));
    out.push(run_one("wide", dag(&wide(n, op))?, exec, &cfg, false, pg)?);
    bar.set(1, &format!("deep: a chain of {n} tasks"));
    out.push(run_one("deep", dag(&deep(n, op))?, exec, &cfg, false, pg)?);
    bar.set(2, "catchup_3y_daily: 1,096 runs");
    out.push(run_one(
        "catchup_3y_daily",
        dag(&catchup(op, &start))?,
        exec,
        &cfg,
        true,
        pg,
    )?);
    bar.set(3, "");
    bar.finish("3 scenarios");
    let mut report = Vec::new();
    for s in &mut out {
        let p50 = pct(&mut s.latencies, 0.5) * 1e3;
        let p99 = pct(&mut s.latencies, 0.99) * 1e3;
        let tis = s.tasks * s.runs;
        report.push(serde_json::json!({
            "scenario": s.name, "tasks_per_run": s.tasks, "runs": s.runs,
            "seconds": s.secs, "task_instances_per_s": tis as f64 / s.secs,
            "latency_upstream_success_to_downstream_start_ms_p50": p50,
            "latency_ms_p99": p99, "peak_workers": s.peak_workers,
        }));
        if !a.json {
            println!(
                "{:<18} {:>6} tasks x {:>5} runs  {:>8.3} s  {:>9.0} TI/s  latency p50 {:.3} ms p99 {:.3} ms  peak workers {}",
                s.name, s.tasks, s.runs, s.secs, tis as f64 / s.secs, p50, p99, s.peak_workers
            );
        }
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    let store = pg.map_or("sled".to_string(), |p| format!("postgres {}", p.target()));
    let executor = if noop {
        "in-process no-op".to_string()
    } else {
        format!("sandboxed plugin `{}`", a.plugin)
    };
    if a.json {
        // stdout holds only the JSON report
        eprintln!("store: {store}");
        eprintln!("executor: {executor}");
    } else {
        println!("store: {store}");
        println!("executor: {executor}");
    }
    Ok(ExitCode::SUCCESS)
}
