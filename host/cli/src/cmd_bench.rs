//! `weft bench invoke`: warm invocation latency/throughput of a plugin, cold load of a cached
//! precompiled component, first compile, and store put/get of a 1 MiB blob. Figures only; no
//! thresholds are asserted.

use crate::args::BenchArgs;
use crate::context::{plugin_host, usage};
use crate::progress::Progress;
use anyhow::Result;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};
use weft_engine::PluginRef;
use weft_sandbox::{Grant, Limits};

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

pub fn run(a: BenchArgs) -> Result<ExitCode> {
    match a.what.as_str() {
        "invoke" => {}
        "standard" | "idle" => return durable(&a),
        "summary" => return summary(&a),
        "chain" => return chain(&a),
        "dag" => return crate::cmd_bench_dag::run(&a),
        "traces" => return crate::cmd_bench_traces::run(&a),
        "http" => return crate::cmd_bench_http::run(&a),
        "remote" => return remote(&a),
        "python" => return crate::cmd_bench_python::run(&a),
        other => {
            return Err(usage(format!(
            "unknown benchmark `{other}` (available: invoke, chain, standard, idle, summary, dag, traces, http, remote, python)"
        )))
        }
    }
    let host = plugin_host()?;
    let r = PluginRef::parse(&a.plugin).map_err(|e| usage(e.to_string()))?;
    let rec = host.resolve(&r).map_err(|e| usage(e.to_string()))?;
    let digest = blake3::Hash::from_bytes(*rec.digest.as_bytes());
    let bar = Progress::counted(format!("bench invoke {}", rec.name), 5, "steps");
    bar.set(0, "first compile");

    // First compile (bypassing every cache) and cold load from the precompiled cache.
    let bytes = host.store.blobs().get(&rec.digest)?;
    let t = Instant::now();
    let art = host
        .sandbox
        .engine_for(bytes.len())
        .precompile_component(&bytes)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let compile = t.elapsed();
    drop(art);
    bar.set(1, "cold loads from the precompiled cache");
    let _ = host.load(&rec)?; // make sure the artifact is cached
    let mut cold = Vec::new();
    for _ in 0..20 {
        host.sandbox.evict(&digest);
        let t = Instant::now();
        let c = host.load(&rec)?;
        cold.push(t.elapsed());
        assert!(!c.compiled, "the precompiled cache should have been used");
    }
    cold.sort();

    bar.set(2, &format!("{} warm invocations, 1 thread", a.iterations));
    let component = host.load(&rec)?;
    let grant = Arc::new(Grant::none());
    let input = r#"{"order":42,"items":["a","b"],"total":9.5}"#;
    let ctx = r#"{"task":"bench","attempt":1}"#;
    let limits = Limits::default();
    for _ in 0..200 {
        host.invoke(&component, input, ctx, grant.clone(), limits)?;
    }
    let mut lat = Vec::with_capacity(a.iterations as usize);
    let t = Instant::now();
    for _ in 0..a.iterations {
        let s = Instant::now();
        let o = host.invoke(&component, input, ctx, grant.clone(), limits)?;
        lat.push(s.elapsed());
        if let Err(e) = o.result {
            anyhow::bail!("benchmark invocation failed: {e}");
        }
    }
    let single_wall = t.elapsed();
    lat.sort();

    // Throughput with several threads sharing the engine and component.
    bar.set(
        3,
        &format!(
            "{} warm invocations, {} threads",
            a.iterations,
            a.threads.max(1)
        ),
    );
    let host = Arc::new(host);
    let per = a.iterations / a.threads.max(1);
    let t = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..a.threads.max(1) {
            let host = host.clone();
            let component = component.clone();
            let grant = grant.clone();
            s.spawn(move || {
                for _ in 0..per {
                    let _ = host.invoke(&component, input, ctx, grant.clone(), limits);
                }
            });
        }
    });
    let multi_wall = t.elapsed();
    let multi_rate = (per * a.threads.max(1)) as f64 / multi_wall.as_secs_f64();

    // Store put/get of 1 MiB.
    bar.set(4, "store put/get of 1 MiB");
    let blob: Vec<u8> = (0..(1u32 << 20))
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let t = Instant::now();
    let d = host.store.blobs().put(&blob)?;
    let put = t.elapsed();
    let t = Instant::now();
    let got = host.store.blobs().get(&d)?;
    let get = t.elapsed();
    assert_eq!(got.len(), blob.len());
    bar.set(5, "");
    bar.finish("5 steps");

    let report = serde_json::json!({
        "plugin": format!("{}@{}", rec.name, rec.version),
        "component_bytes": bytes.len(),
        "compile_ms": compile.as_secs_f64() * 1e3,
        "cold_load_precompiled_ms_p50": pct(&cold, 0.5).as_secs_f64() * 1e3,
        "warm_invoke_us_p50": us(pct(&lat, 0.5)),
        "warm_invoke_us_p99": us(pct(&lat, 0.99)),
        "warm_invoke_per_s_1_thread": a.iterations as f64 / single_wall.as_secs_f64(),
        "threads": a.threads,
        "warm_invoke_per_s_all_threads": multi_rate,
        "store_put_1mib_ms": put.as_secs_f64() * 1e3,
        "store_get_1mib_ms": get.as_secs_f64() * 1e3,
    });
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "plugin {} ({} bytes)",
            report["plugin"].as_str().unwrap_or(""),
            bytes.len()
        );
        println!(
            "  compile (no cache)            {:>10.2} ms",
            compile.as_secs_f64() * 1e3
        );
        println!(
            "  cold load, precompiled (p50)  {:>10.3} ms",
            pct(&cold, 0.5).as_secs_f64() * 1e3
        );
        println!(
            "  warm invoke p50 / p99         {:>10.1} / {:.1} us",
            us(pct(&lat, 0.5)),
            us(pct(&lat, 0.99))
        );
        println!(
            "  warm invokes/s, 1 thread      {:>10.0}",
            a.iterations as f64 / single_wall.as_secs_f64()
        );
        println!(
            "  warm invokes/s, {} threads     {:>10.0}",
            a.threads, multi_rate
        );
        println!(
            "  store put / get 1 MiB         {:>10.3} / {:.3} ms",
            put.as_secs_f64() * 1e3,
            get.as_secs_f64() * 1e3
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `weft bench standard` (durable transitions with group commit) and `weft bench idle`
/// (memory of parked executions, then the restart that resumes them), on a scratch store.
/// `weft bench remote`: one-task executions on the node, then on 1 and 2 `weft worker`
/// processes of this binary over loopback.
fn remote(a: &BenchArgs) -> Result<ExitCode> {
    let store = crate::context::open_store()?;
    let r = PluginRef::parse(&a.plugin).map_err(|e| usage(e.to_string()))?;
    let rec = weft_engine::plugin_host::resolve(&store, &r).map_err(|e| usage(e.to_string()))?;
    let bytes = store.blobs().get(&rec.digest)?;
    drop(store);
    let dir = std::env::temp_dir().join(format!("weft-bench-remote-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let wasm = dir.join("echo.wasm");
    std::fs::write(&wasm, &bytes)?;
    let exe = std::env::current_exe()?;
    let start_worker = |port: u16, i: usize| -> Result<std::process::Child> {
        let home = dir.join(format!("worker{i}-{port}"));
        std::fs::create_dir_all(&home)?;
        Ok(std::process::Command::new(&exe)
            .args([
                "worker",
                "--server",
                &format!("http://127.0.0.1:{port}"),
                "--id",
                &format!("bench{i}"),
                "--min-slots",
                "2",
                "--max-slots",
                &a.threads.max(2).to_string(),
            ])
            .env("WEFT_HOME", &home)
            .env("AWS_SHARED_CREDENTIALS_FILE", home.join("none"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()?)
    };
    let execs = (a.iterations as usize).max(1);
    let bar = Progress::steps("bench remote".to_string());
    let mut reports = Vec::new();
    for workers in [0usize, 1, 2] {
        bar.step(&format!("{execs} one-task executions, {workers} worker(s)"));
        reports.push(weft_server::bench::remote(
            &wasm,
            execs,
            workers,
            &start_worker,
        )?);
    }
    bar.finish("measured");
    let _ = std::fs::remove_dir_all(&dir);
    if a.json {
        let all: Vec<&serde_json::Value> = reports.iter().map(|r| &r.json).collect();
        println!("{}", serde_json::to_string_pretty(&all)?);
    } else {
        for r in reports {
            for l in r.lines {
                println!("{l}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn durable(a: &BenchArgs) -> Result<ExitCode> {
    let bar = Progress::steps(format!("bench {}", a.what));
    bar.step(&if a.what == "standard" {
        format!(
            "{} durable executions of 10 `{}` tasks",
            a.iterations.max(1),
            a.plugin
        )
    } else {
        format!(
            "{} executions parked in a Wait, then a restart",
            a.iterations.max(1)
        )
    });
    let report = if a.what == "standard" {
        // the echo plugin of the local store, copied into the scratch store
        let store = crate::context::open_store()?;
        let r = PluginRef::parse(&a.plugin).map_err(|e| usage(e.to_string()))?;
        let rec =
            weft_engine::plugin_host::resolve(&store, &r).map_err(|e| usage(e.to_string()))?;
        let bytes = store.blobs().get(&rec.digest)?;
        let dir = std::env::temp_dir().join(format!("weft-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let tmp = dir.join("echo.wasm");
        std::fs::write(&tmp, &bytes)?;
        let execs = (a.iterations as usize).max(1);
        let db = a.db.clone().or_else(|| std::env::var("WEFT_DB").ok());
        let db = db.filter(|u| !u.is_empty());
        let r = weft_server::bench::standard(
            &tmp,
            execs,
            10,
            64 * a.threads.max(1) as usize,
            db.as_deref(),
            a.nodes.clamp(1, 8) as usize,
        );
        let _ = std::fs::remove_dir_all(&dir);
        r?
    } else {
        weft_server::bench::idle_and_restart((a.iterations as usize).max(1))?
    };
    bar.finish("measured");
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report.json)?);
    } else {
        for l in report.lines {
            println!("{l}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `weft bench summary`: the state machines' landing page over `--iterations` executions.
fn summary(a: &BenchArgs) -> Result<ExitCode> {
    let n = (a.iterations as usize).max(1);
    let bar = Progress::steps("bench summary");
    bar.step(&format!("{n} executions, then the landing page's counts"));
    let report = weft_server::bench::summary(n)?;
    bar.finish("measured");
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report.json)?);
    } else {
        for l in report.lines {
            println!("{l}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `weft bench chain`: an in-process (Express-style) run of a 100-Task chain calling the plugin
/// through the ASL interpreter and the sandboxed task runner, against direct warm invocations:
/// the per-task overhead of the state machine around the sandbox.
fn chain(a: &BenchArgs) -> Result<ExitCode> {
    use serde_json::{json, Map, Value};
    const TASKS: usize = 100;
    let host = plugin_host()?;
    let r = PluginRef::parse(&a.plugin).map_err(|e| usage(e.to_string()))?;
    let rec = host.resolve(&r).map_err(|e| usage(e.to_string()))?;
    let mut states = Map::new();
    for i in 0..TASKS {
        let mut st = json!({"Type": "Task", "Resource": format!("weft:plugin:{}", rec.name)});
        if i + 1 == TASKS {
            st["End"] = json!(true);
        } else {
            st["Next"] = json!(format!("T{}", i + 1));
        }
        states.insert(format!("T{i}"), st);
    }
    let def = json!({"StartAt": "T0", "States": states}).to_string();
    let sm = weft_asl::parse(&def).map_err(|e| anyhow::anyhow!("{e}"))?;
    let roles = weft_engine::Roles::new(Vec::new());
    let runner = weft_engine::asl_tasks::SandboxTaskRunner::new(
        &host,
        &roles,
        None,
        std::env::current_dir()?,
    );
    let input = json!({"order": 42, "items": ["a", "b"], "total": 9.5});
    let opts = weft_asl::RunOptions::default();
    let run = || -> Result<Value> {
        weft_asl::run_express(
            &sm,
            input.clone(),
            &opts,
            &runner,
            &weft_asl::SystemClock,
            weft_asl::Hooks::default(),
        )
        .map_err(|e| anyhow::anyhow!("{}: {:?}", e.error, e.cause))
    };
    let runs = (a.iterations as usize / TASKS).max(5);
    let bar = Progress::counted(format!("bench chain {}", rec.name), 2, "steps");
    bar.set(
        0,
        &format!("{runs} runs of {TASKS} tasks through the interpreter"),
    );
    run()?; // warm
    let t = Instant::now();
    for _ in 0..runs {
        run()?;
    }
    let per_task = t.elapsed() / (runs * TASKS) as u32;
    // the same number of direct warm invocations
    bar.set(1, &format!("{} direct warm invocations", runs * TASKS));
    let component = host.load(&rec)?;
    let grant = Arc::new(Grant::none());
    let text = input.to_string();
    let t = Instant::now();
    for _ in 0..runs * TASKS {
        host.invoke(&component, &text, "{}", grant.clone(), Limits::default())?;
    }
    let direct = t.elapsed() / (runs * TASKS) as u32;
    bar.set(2, "");
    bar.finish("2 steps");
    println!(
        "chain: {runs} runs of {TASKS} `{}` tasks: {:.1} us per task through the ASL interpreter, {:.1} us per direct warm invocation: {:.1} us of state-machine overhead per task",
        rec.name,
        us(per_task),
        us(direct),
        us(per_task) - us(direct)
    );
    Ok(ExitCode::SUCCESS)
}
