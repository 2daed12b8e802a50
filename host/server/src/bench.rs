//! Benchmarks of the durable runtime, run in-process by `weft bench standard|idle|restart`
//! against a scratch store (figures only, nothing asserted):
//!
//! - `standard`: Standard executions of a chain of `echo` plugin tasks; every task result is
//!   journaled and group-committed before the execution moves on. Reports durable state
//!   transitions per second and the per-execution latency percentiles.
//! - `idle`: executions parked in a one-hour Wait (suspended: no thread); reports resident
//!   memory before and after.
//! - `restart`: the idle executions' store is reopened; reports the time until every open
//!   execution was resumed (replayed to its Wait and parked again).
//! - `summary`: the web UI's state machines landing page over many executions (see
//!   [`summary`]).
//! - `remote`: Standard executions of one `echo` task run on the node itself, then on 1 and 2
//!   `weft worker` processes over loopback; reports tasks/s, the remote round trip (queued to
//!   reported) percentiles and the node's CPU per task.

use crate::records::*;
use crate::AppState;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a benchmark measured, as printable lines and JSON.
pub struct Report {
    pub lines: Vec<String>,
    pub json: Value,
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// CPU time (user + system) of every thread of this process so far
/// (`CLOCK_PROCESS_CPUTIME_ID`, nanosecond resolution).
fn cpu_time() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Duration::new(
        t.tv_sec.max(0) as u64,
        t.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

fn scratch(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("weft-bench-{tag}-{}", uuid::Uuid::new_v4()))
}

fn open(home: &Path, max_running: usize) -> anyhow::Result<Arc<AppState>> {
    let store = Arc::new(weft_store::Store::open(home)?);
    AppState::with_limit(store, None, max_running)
}

async fn call(app: &Arc<AppState>, action: &str, req: Value) -> anyhow::Result<Value> {
    crate::api::dispatch(app, action, req)
        .await
        .map_err(|e| anyhow::anyhow!("{action}: {}: {}", e.kind, e.message))
}

fn settled(app: &AppState) -> bool {
    app.rt.queued() == 0 && app.rt.active_count() == 0
}

/// CPU time (user + system) of every `postgres` process of this machine, from `/proc` (zero
/// when the database runs elsewhere): PostgreSQL's share of a benchmark.
fn postgres_cpu_time() -> Duration {
    let mut ticks = 0u64;
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
                continue;
            };
            let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
                continue;
            };
            if &stat[open + 1..close] != "postgres" {
                continue;
            }
            let f: Vec<&str> = stat[close + 2..].split_whitespace().collect();
            ticks += f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
                + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        }
    }
    Duration::from_millis(ticks * 10)
}

/// Durable transitions with plugin tasks: on a scratch sled store, or on the PostgreSQL
/// database `db_url` shared by `nodes` nodes of this process (each its own connections,
/// lease and runtime; executions started round-robin through them).
pub fn standard(
    plugin_wasm: &Path,
    executions: usize,
    tasks: usize,
    concurrency: usize,
    db_url: Option<&str>,
    nodes: usize,
) -> anyhow::Result<Report> {
    let mut homes = Vec::new();
    let mut apps = Vec::new();
    for _ in 0..if db_url.is_some() { nodes.max(1) } else { 1 } {
        let home = scratch("standard");
        let app = match db_url {
            None => open(&home, concurrency.max(1))?,
            Some(url) => {
                let store = Arc::new(weft_store::Store::open(&home)?);
                let database = weft_engine::persistence::Database::open(Some(url), store.db())?;
                AppState::build(
                    store,
                    None,
                    concurrency.max(1),
                    None,
                    None,
                    true,
                    Some(database),
                )?
            }
        };
        weft_plugins::install_path(&app.store, plugin_wasm, &Default::default())?;
        homes.push(home);
        apps.push(app);
    }
    let app = apps[0].clone();
    // (a shared database keeps earlier runs: this run's names are its own)
    let sm_name = match db_url {
        None => "bench".to_string(),
        Some(_) => format!("bench-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]),
    };
    let mut states = serde_json::Map::new();
    for i in 0..tasks {
        let mut s = json!({"Type": "Task", "Resource": "weft:plugin:echo"});
        if i + 1 == tasks {
            s["End"] = json!(true);
        } else {
            s["Next"] = json!(format!("T{}", i + 1));
        }
        states.insert(format!("T{i}"), s);
    }
    let def = json!({"StartAt": "T0", "States": states}).to_string();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let flushes0: u64 = apps.iter().map(|a| a.rt.commit.flushes()).sum();
    let (wall, lat, cpu, pg_cpu) = rt.block_on(async {
        let sm = call(&app, "CreateStateMachine", json!({"name": sm_name, "definition": def})).await?
            ["stateMachineArn"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        // warm every node's sandbox and component cache
        for (n, a) in apps.iter().enumerate() {
            let w = call(a, "StartExecution", json!({"stateMachineArn": sm, "name": format!("warm{n}")})).await?;
            wait_all(a, &[w["executionArn"].as_str().unwrap_or_default().to_string()]).await?;
        }
        let t = Instant::now();
        let cpu0 = cpu_time();
        let pg0 = postgres_cpu_time();
        let mut starts = Vec::new();
        for i in 0..executions {
            let app = apps[i % apps.len()].clone();
            let sm = sm.clone();
            starts.push(tokio::spawn(async move {
                call(&app, "StartExecution", json!({"stateMachineArn": sm, "name": format!("e{i}"), "input": format!("{{\"i\":{i}}}")})).await
            }));
        }
        let mut arns = Vec::new();
        for s in starts {
            arns.push(s.await??["executionArn"].as_str().unwrap_or_default().to_string());
        }
        let lat = wait_all(&app, &arns).await?;
        anyhow::Ok((
            t.elapsed(),
            lat,
            cpu_time().saturating_sub(cpu0),
            postgres_cpu_time().saturating_sub(pg0),
        ))
    })?;
    let flushes = apps.iter().map(|a| a.rt.commit.flushes()).sum::<u64>() - flushes0;
    let transitions = executions * tasks;
    let mut lat = lat;
    lat.sort_unstable();
    let p = |q: f64| lat[((lat.len() as f64 - 1.0) * q).round() as usize];
    let tps = transitions as f64 / wall.as_secs_f64();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let weft_us = cpu.as_secs_f64() * 1e6 / transitions as f64;
    let pg_us = pg_cpu.as_secs_f64() * 1e6 / transitions as f64;
    let where_ = match db_url {
        None => "sled".to_string(),
        Some(_) => format!("PostgreSQL, {} node(s)", apps.len()),
    };
    let mut lines = vec![
        format!(
            "standard ({where_}): {executions} executions x {tasks} echo tasks, {concurrency} workers per node: {transitions} durable task transitions in {:.2} s = {tps:.0} transitions/s",
            wall.as_secs_f64()
        ),
        format!(
            "standard: {flushes} group commits ({:.1} commits per flush); execution latency p50 {} ms, p99 {} ms (per transition p50 {:.2} ms, p99 {:.2} ms)",
            (transitions + 2 * executions) as f64 / flushes.max(1) as f64,
            p(0.5),
            p(0.99),
            p(0.5) as f64 / tasks as f64,
            p(0.99) as f64 / tasks as f64
        ),
        format!(
            "standard: {weft_us:.0} us of weft CPU (all threads) per transition, {:.0}% of the machine's {} cores busy with weft",
            100.0 * cpu.as_secs_f64() / wall.as_secs_f64() / cores as f64,
            cores
        ),
    ];
    let mut projection = Value::Null;
    if db_url.is_some() && pg_us > 0.0 {
        // N nodes on N hosts: weft's CPU spreads over them, PostgreSQL's stays on its primary
        let per_primary_core = 1e6 / pg_us;
        let per_node = 1e6 * cores as f64 / weft_us;
        lines.push(format!(
            "standard: {pg_us:.0} us of PostgreSQL CPU per transition (its processes on this machine); projection: a node of {cores} cores drives ~{per_node:.0} transitions/s, one PostgreSQL primary saturates at ~{per_primary_core:.0} transitions/s per core it has (e.g. ~{:.0}/s on 8 cores), reached with ~{:.1} such nodes",
            per_primary_core * 8.0,
            per_primary_core * 8.0 / per_node
        ));
        projection = json!({"pg_cpu_us_per_transition": pg_us, "per_node_tps": per_node,
                            "primary_tps_per_core": per_primary_core});
    }
    drop(rt);
    drop(app);
    drop(apps);
    for home in homes {
        let _ = std::fs::remove_dir_all(&home);
    }
    Ok(Report {
        lines,
        json: json!({"transitions_per_s": tps, "p50_ms": p(0.5), "p99_ms": p(0.99), "fsyncs": flushes,
                     "cpu_us_per_transition": weft_us, "nodes": nodes, "projection": projection}),
    })
}

/// Waits until every execution ended; returns their durations (ms).
async fn wait_all(app: &Arc<AppState>, arns: &[String]) -> anyhow::Result<Vec<i64>> {
    // while the node runs anything, look at its counters only: reading and parsing execution
    // records meanwhile would cost the node CPU in proportion to the wait, a benchmark's own
    // overhead in the figures it reports
    while !settled(app) {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let mut out = Vec::with_capacity(arns.len());
    for arn in arns {
        loop {
            let v = app
                .executions
                .execution(arn)?
                .ok_or_else(|| anyhow::anyhow!("{arn} vanished"))?;
            let e: ExecutionRecord = serde_json::from_slice(&v)?;
            if e.status != "RUNNING" {
                if e.status != "SUCCEEDED" {
                    anyhow::bail!("{arn} ended {}: {:?} {:?}", e.status, e.error, e.cause);
                }
                out.push(e.stop_ms.unwrap_or(e.start_ms) - e.start_ms);
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    Ok(out)
}

async fn park(app: &Arc<AppState>, n: usize) -> anyhow::Result<Duration> {
    let def = r#"{"StartAt":"Sleep","States":{"Sleep":{"Type":"Wait","Seconds":3600,"End":true}}}"#;
    let sm = call(
        app,
        "CreateStateMachine",
        json!({"name": "idle", "definition": def}),
    )
    .await?["stateMachineArn"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let t = Instant::now();
    let per = 64;
    let mut tasks = Vec::new();
    for c in 0..per {
        let (app, sm) = (app.clone(), sm.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = c;
            while i < n {
                call(
                    &app,
                    "StartExecution",
                    json!({"stateMachineArn": sm, "name": format!("w{i}")}),
                )
                .await?;
                i += per;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    while app.rt.runs.load(Ordering::Relaxed) < n as u64 || !settled(app) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(t.elapsed())
}

/// Memory of `n` executions parked in a Wait, and the time to resume them after a restart.
pub fn idle_and_restart(n: usize) -> anyhow::Result<Report> {
    let home = scratch("idle");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let app = open(&home, 64)?;
    let before = rss_bytes();
    let took = rt.block_on(park(&app, n))?;
    let after = rss_bytes();
    let mut lines = vec![format!(
        "idle: {n} executions started and parked in a 1 h Wait in {:.1} s; resident memory {} MiB -> {} MiB (+{:.0} bytes per execution)",
        took.as_secs_f64(),
        before >> 20,
        after >> 20,
        after.saturating_sub(before) as f64 / n as f64
    )];
    app.rt.close();
    app.rt.drain(Duration::from_secs(10));
    drop(app);
    let t = Instant::now();
    let app = open(&home, 64)?;
    let reopened = t.elapsed();
    rt.block_on(async {
        while app.rt.runs.load(Ordering::Relaxed) < n as u64 || !settled(&app) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    let resumed = t.elapsed();
    lines.push(format!(
        "restart: store reopened in {} ms; all {n} open executions resumed (replayed to their Wait and parked) {:.2} s after the restart",
        reopened.as_millis(),
        resumed.as_secs_f64()
    ));
    let json = json!({"idle_executions": n, "rss_before": before, "rss_after": after, "restart_resume_s": resumed.as_secs_f64()});
    drop(app);
    drop(rt);
    let _ = std::fs::remove_dir_all(&home);
    Ok(Report { lines, json })
}

/// The state machines' landing page (`GET /v1/state-machines/summary`, authenticated,
/// authorised and audited as served, minus HTTP) over `n` executions of 10 state machines
/// whose starts spread over the last 48 hours, against counting the same window by reading
/// every execution record (what the page would cost without the index of
/// [`weft_engine::persistence::ExecutionRecords`]).
pub fn summary(n: usize) -> anyhow::Result<Report> {
    let home = scratch("summary");
    std::fs::create_dir_all(&home)?;
    let app = open(&home, 8)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let machines = 10;
    let def = r#"{"StartAt":"P","States":{"P":{"Type":"Pass","End":true}}}"#;
    let mut smrs = Vec::new();
    for m in 0..machines {
        rt.block_on(call(
            &app,
            "CreateStateMachine",
            json!({"name": format!("sm-{m}"), "definition": def}),
        ))?;
        let v = app
            .catalog
            .state_machine(&format!("sm-{m}"))?
            .ok_or_else(|| anyhow::anyhow!("sm-{m} was not created"))?;
        smrs.push(serde_json::from_slice::<StateMachineRecord>(&v)?);
    }
    let now = now_ms();
    let statuses = [
        "SUCCEEDED",
        "SUCCEEDED",
        "SUCCEEDED",
        "FAILED",
        "RUNNING",
        "ABORTED",
        "TIMED_OUT",
    ];
    let t = Instant::now();
    for i in 0..n {
        let smr = &smrs[i % machines];
        let mut rec = crate::runtime::new_record(smr, &format!("e{i}"), "{}".into(), None, None);
        rec.start_ms = now - (i as i64 * 48 * 3_600_000 / n.max(1) as i64);
        rec.status = statuses[i % statuses.len()].to_string();
        app.executions
            .put_execution(&rec.arn, &serde_json::to_vec(&rec)?)?;
    }
    let filled = t.elapsed();
    let req = crate::v1_access::V1Request {
        method: axum::http::Method::GET,
        uri: "/v1/state-machines/summary".parse()?,
        headers: Default::default(),
        body: Default::default(),
    };
    let since = now - 24 * 3_600_000;
    let page = || {
        crate::v1_access::decide(&app, &req, "states:ListStateMachines", |ctx| {
            crate::sm_summary::summarise(&app, ctx, since)
        })
    };
    let first = page().map_err(|e| anyhow::anyhow!("{}: {}", e.kind, e.message))?;
    let counted: u64 = first
        .iter()
        .filter_map(|m| m["executions"].as_object())
        .flat_map(|c| c.values().filter_map(Value::as_u64))
        .sum();
    let mut lat = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        page().map_err(|e| anyhow::anyhow!("{}: {}", e.kind, e.message))?;
        lat.push(t.elapsed());
    }
    lat.sort_unstable();
    let mut scan = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let mut c: std::collections::HashMap<(String, String), u64> = Default::default();
        crate::records::each_execution(app.executions.as_ref(), "", |e| {
            if e.start_ms >= since || e.status == "RUNNING" {
                *c.entry((e.state_machine_name, e.status)).or_default() += 1;
            }
        })
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        std::hint::black_box(c);
        scan.push(t.elapsed());
    }
    scan.sort_unstable();
    let p = |v: &[Duration], q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let lines = vec![
        format!(
            "summary: {n} executions of {machines} state machines over 48 h ({:.1} s to write and index); {counted} counted in the 24 h window",
            filled.as_secs_f64()
        ),
        format!(
            "summary: GET /v1/state-machines/summary p50 {:.2} ms, p99 {:.2} ms (200 calls, index range scans)",
            ms(p(&lat, 0.5)),
            ms(p(&lat, 0.99))
        ),
        format!(
            "summary: the same counts by reading every execution record: p50 {:.1} ms (20 scans)",
            ms(p(&scan, 0.5))
        ),
    ];
    let json = json!({"executions": n, "state_machines": machines, "counted": counted,
        "p50_ms": ms(p(&lat, 0.5)), "p99_ms": ms(p(&lat, 0.99)), "full_scan_p50_ms": ms(p(&scan, 0.5))});
    app.rt.close();
    drop(app);
    drop(rt);
    let _ = std::fs::remove_dir_all(&home);
    Ok(Report { lines, json })
}

/// Executions run one at a time before the burst (the idle round trip).
const SEQUENTIAL: usize = 200;

/// A state machine with no task: the baseline of an execution's own cost on the node.
const PASS_DEFINITION: &str = r#"{"StartAt":"P","States":{"P":{"Type":"Pass","End":true}}}"#;

/// Rounds of the `remote` CPU measurement (task runs and mocked runs alternate; the median of
/// their differences is reported, so a VM's passing slowness in a few rounds does not decide it).
const CPU_ROUNDS: usize = 9;

/// The mock test case of the `remote` baseline: the Task's result mocked.
const MOCKED_CASE: &str = "Mocked";

/// Starts `n` executions of the state machine `arn` (run with the mock test case `case`, if
/// any), named `PREFIX0`, `PREFIX1`, ..., one call after another: the Task runs and the mocked
/// runs they are compared with are paced alike (started concurrently, the mocked ones would
/// share their durable commits far more than those waiting for a worker, and the difference
/// would measure commit batching rather than the dispatch); returns their ARNs.
async fn start_all(
    app: &Arc<AppState>,
    arn: &str,
    case: Option<&str>,
    prefix: &str,
    n: usize,
) -> anyhow::Result<Vec<String>> {
    let mut arns = Vec::with_capacity(n);
    for i in 0..n {
        let mut req = json!({"stateMachineArn": arn, "name": format!("{prefix}{i}")});
        if let Some(case) = case {
            req[crate::access::TEST_CASE_FIELD] = json!(case);
        }
        let v = call(app, "StartExecution", req).await?;
        arns.push(v["executionArn"].as_str().unwrap_or_default().to_string());
    }
    Ok(arns)
}

/// Node CPU time of [`start_all`]'s executions, all started at once and awaited.
async fn node_cpu_of(
    app: &Arc<AppState>,
    arn: &str,
    case: Option<&str>,
    prefix: &str,
    n: usize,
) -> anyhow::Result<Duration> {
    let cpu0 = cpu_time();
    let arns = start_all(app, arn, case, prefix, n).await?;
    wait_all(app, &arns).await?;
    Ok(cpu_time().saturating_sub(cpu0))
}

/// One `remote` measurement: `workers == 0` runs the tasks on the node itself.
pub fn remote(
    plugin_wasm: &Path,
    executions: usize,
    workers: usize,
    start_worker: &dyn Fn(u16, usize) -> anyhow::Result<std::process::Child>,
) -> anyhow::Result<Report> {
    struct Reap(Vec<std::process::Child>);
    impl Drop for Reap {
        fn drop(&mut self) {
            for c in &mut self.0 {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
    let home = scratch("remote");
    let store = Arc::new(weft_store::Store::open(&home)?);
    let mocks = weft_asl::mock::MockConfig::from_value(&json!({
        "StateMachines": {"bench": {"TestCases": {MOCKED_CASE: {"T": "Echoed"}}}},
        "MockedResponses": {"Echoed": {"0": {"Return": {"echoed": true}}}},
    }))
    .map_err(|e| anyhow::anyhow!("the benchmark's mock configuration: {e}"))?;
    let app = AppState::with_options(store, None, Some(mocks), workers == 0)?;
    weft_plugins::install_path(&app.store, plugin_wasm, &Default::default())?;
    let def = json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "weft:plugin:echo", "End": true}}}).to_string();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let port = listener.local_addr()?.port();
    rt.spawn(crate::serve(listener, app.clone()));
    let mut procs = Reap(Vec::new());
    for i in 0..workers {
        procs.0.push(start_worker(port, i)?);
    }
    let end = Instant::now() + Duration::from_secs(60);
    while app.dispatch.workers().len() < workers {
        anyhow::ensure!(Instant::now() < end, "the workers did not connect");
        std::thread::sleep(Duration::from_millis(10));
    }
    let (wall, lat, cpu, mut idle_trips, pass_cpu, real, mocked) = rt.block_on(async {
        let sm = call(
            &app,
            "CreateStateMachine",
            json!({"name": "bench", "definition": def}),
        )
        .await?["stateMachineArn"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        // warm: plugin fetched and compiled on every worker, sandboxes ready
        let warm = start_all(&app, &sm, None, "warm", 4 * workers.max(1)).await?;
        wait_all(&app, &warm).await?;
        // one at a time: the round trip of an idle system
        for i in 0..SEQUENTIAL.min(executions) {
            let v = call(
                &app,
                "StartExecution",
                json!({"stateMachineArn": sm, "name": format!("s{i}")}),
            )
            .await?;
            wait_all(
                &app,
                &[v["executionArn"].as_str().unwrap_or_default().to_string()],
            )
            .await?;
        }
        let idle_trips = app.dispatch.round_trips();
        let t = Instant::now();
        let cpu0 = cpu_time();
        let arns = start_all(&app, &sm, None, "e", executions).await?;
        let lat = wait_all(&app, &arns).await?;
        let wall = t.elapsed();
        let cpu = cpu_time().saturating_sub(cpu0);
        // the same executions with no task: what the execution itself costs the node
        let pass = call(
            &app,
            "CreateStateMachine",
            json!({"name": "bench-pass", "definition": PASS_DEFINITION}),
        )
        .await?["stateMachineArn"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let pass_cpu = node_cpu_of(&app, &pass, None, "pass", executions).await?;
        // the same Task state with its result mocked: every event of a task, no plugin run
        // anywhere and nothing dispatched. Task runs and mocked runs alternate for
        // CPU_ROUNDS rounds (the store grows, the page cache and flush threads vary): the
        // medians and the median per-round difference are reported
        let mut real = Vec::new();
        let mut mocked = Vec::new();
        for round in 0..CPU_ROUNDS {
            real.push(node_cpu_of(&app, &sm, None, &format!("r{round}-"), executions).await?);
            mocked.push(
                node_cpu_of(
                    &app,
                    &sm,
                    Some(MOCKED_CASE),
                    &format!("m{round}-"),
                    executions,
                )
                .await?,
            );
        }
        anyhow::Ok((wall, lat, cpu, idle_trips, pass_cpu, real, mocked))
    })?;
    let mut idle: Vec<Duration> =
        idle_trips.split_off(idle_trips.len().saturating_sub(SEQUENTIAL.min(executions)));
    idle.sort_unstable();
    let mut trips: Vec<Duration> = app.dispatch.round_trips();
    // the measured executions' round trips are the latest ones
    let skip = trips.len().saturating_sub(executions);
    let mut trips: Vec<Duration> = trips.split_off(skip);
    trips.sort_unstable();
    let mut lat = lat;
    lat.sort_unstable();
    let pd = |v: &[Duration], q: f64| {
        v.get(((v.len().max(1) as f64 - 1.0) * q).round() as usize)
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    let pl = |q: f64| lat[((lat.len() as f64 - 1.0) * q).round() as usize];
    let tps = executions as f64 / wall.as_secs_f64();
    let per_task = |d: &Duration| d.as_secs_f64() * 1e6 / executions as f64;
    let cpu_us = per_task(&cpu);
    let pass_us = per_task(&pass_cpu);
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    };
    let real_us = median(real.iter().map(per_task).collect());
    let mocked_us = median(mocked.iter().map(per_task).collect());
    let task_us = median(
        real.iter()
            .zip(&mocked)
            .map(|(r, m)| per_task(r) - per_task(m))
            .collect(),
    );
    let mode = if workers == 0 {
        "local (on the node)".to_string()
    } else {
        format!("{workers} worker process(es)")
    };
    let mut lines = vec![format!(
        "remote: {executions} executions of 1 echo task, all started at once, {mode}: {tps:.0} tasks/s; execution latency p50 {} ms, p99 {} ms",
        pl(0.5),
        pl(0.99)
    )];
    let running = if workers == 0 {
        "running the task on the node (its sandbox included)"
    } else {
        "the remote dispatch"
    };
    lines.push(format!(
        "remote: node CPU per execution, median of {CPU_ROUNDS} alternating rounds of {executions}: {real_us:.0} us with the echo task, {mocked_us:.0} us with the same Task's result mocked (same events; nothing run or dispatched), {pass_us:.0} us for a Pass state: {running} costs the node {task_us:.0} us of CPU per task (median per-round difference)"
    ));
    if workers > 0 {
        lines.push(format!(
            "remote: round trip queued -> result reported, one task at a time: p50 {:.2} ms, p99 {:.2} ms ({} samples); under the burst: p50 {:.2} ms, p99 {:.2} ms",
            pd(&idle, 0.5),
            pd(&idle, 0.99),
            idle.len(),
            pd(&trips, 0.5),
            pd(&trips, 0.99),
        ));
    }
    drop(procs);
    rt.shutdown_timeout(Duration::from_secs(1));
    app.rt.close();
    let _ = std::fs::remove_dir_all(&home);
    Ok(Report {
        lines,
        json: json!({
            "workers": workers,
            "executions": executions,
            "tasks_per_s": tps,
            "execution_latency_ms": {"p50": pl(0.5), "p99": pl(0.99)},
            "round_trip_ms": {"idle_p50": pd(&idle, 0.5), "idle_p99": pd(&idle, 0.99), "burst_p50": pd(&trips, 0.5), "burst_p99": pd(&trips, 0.99)},
            "node_cpu_us_per_task_burst": cpu_us,
            "node_cpu_us_per_task": real_us,
            "node_cpu_us_per_pass_execution": pass_us,
            "node_cpu_us_per_mocked_task_execution": mocked_us,
            "node_task_cpu_us_over_mocked": task_us,
            "node_dispatch_cpu_us_per_task": if workers > 0 { Some(task_us) } else { None },
        }),
    })
}
