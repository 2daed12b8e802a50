//! `weft bench python`: what Python DAG files cost. The first compile of the parser component
//! (`weft-airflow-py`: what a fresh machine pays once per component digest), the parse of a
//! generated 100-task Python DAG file in the sandbox with no cache (the file changed) and with
//! the parser's caches (in memory, and on disk as a new process finds it), and one `@task`
//! callable's try through the DAG task executor (the sandboxed call mode the scheduler uses).
//! Figures only; no thresholds are asserted.

use crate::args::BenchArgs;
use crate::context::{home, open_plugin_store, usage};
use crate::progress::Progress;
use anyhow::Result;
use serde_json::json;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};
use weft_dag::pyfile::{PyEvaluation, PythonDagEvaluator};
use weft_engine::py_dags::{
    SandboxDagParser, MAX_PARSE_OUTPUT_BYTES, PARSER_PLUGIN, PARSE_FUEL, PARSE_MEMORY_BYTES,
};
use weft_engine::{PluginHost, PluginRef};
use weft_sandbox::{Grant, Limits, Sandbox, SandboxConfig};

/// A DAG file of `tasks` tasks: a chain of BashOperator-style tasks (recorded by class path),
/// TaskFlow callables and a task group, as a real file mixes them.
fn dag_file(tasks: usize) -> String {
    let mut s = String::from(
        "from datetime import datetime, timedelta\nfrom airflow import DAG\nfrom airflow.decorators import task\nfrom airflow.operators.empty import EmptyOperator\nfrom airflow.utils.task_group import TaskGroup\n\n\
         with DAG(\"bench_py\", schedule=\"@daily\", start_date=datetime(2024, 1, 1), catchup=False,\n         default_args={\"retries\": 2, \"retry_delay\": timedelta(minutes=5)}, tags=[\"bench\"]) as dag:\n    prev = EmptyOperator(task_id=\"start\")\n",
    );
    let mut n = 1;
    while n < tasks {
        if n % 10 == 0 {
            s.push_str(&format!(
                "    with TaskGroup(\"group_{n}\") as g:\n        a = EmptyOperator(task_id=\"a\")\n        b = EmptyOperator(task_id=\"b\")\n        a >> b\n    prev >> g\n    prev = g\n"
            ));
            n += 2;
        } else {
            s.push_str(&format!(
                "    @task(task_id=\"step_{n}\")\n    def step_{n}(x=None):\n        return {{\"step\": {n}, \"got\": x}}\n    t = step_{n}()\n    prev >> t\n    prev = t\n"
            ));
            n += 1;
        }
    }
    s
}

/// A small TaskFlow file whose `add` callable the call-mode figures run.
const CALL_FILE: &str = r#"
from datetime import datetime
from airflow.decorators import dag, task

@dag(schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def bench_call():
    @task
    def add(a, b):
        return {"sum": a + b}
    add(1, 2)

bench_call()
"#;

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1e3
}

fn timed(n: u32, mut f: impl FnMut(u32) -> Result<()>) -> Result<Vec<Duration>> {
    let mut v = Vec::with_capacity(n as usize);
    for i in 0..n {
        let t = Instant::now();
        f(i)?;
        v.push(t.elapsed());
    }
    v.sort();
    Ok(v)
}

fn dags_of(ev: PyEvaluation) -> Result<usize> {
    match ev {
        PyEvaluation::Dags(d) => Ok(d.dags.len()),
        PyEvaluation::ImportError(e) => anyhow::bail!("the bench DAG file did not parse: {e:?}"),
    }
}

pub fn run(a: &BenchArgs) -> Result<ExitCode> {
    let store = open_plugin_store()?;
    let rec = weft_engine::plugin_host::resolve(&store, &PluginRef::Latest(PARSER_PLUGIN.into()))
        .map_err(|_| {
        usage(format!(
            "`weft bench python` needs the parser component: weft plugin install target/plugins/{PARSER_PLUGIN}.wasm"
        ))
    })?;
    let sandbox = Arc::new(Sandbox::new(&SandboxConfig {
        max_memory_bytes: PARSE_MEMORY_BYTES.max(SandboxConfig::default().max_memory_bytes),
        ..SandboxConfig::default()
    })?);
    let host = PluginHost::new(store, sandbox)?;
    let n = a.iterations.clamp(1, 1000);
    let bar = Progress::counted("bench python".to_string(), 5, "steps");

    bar.set(0, "first compile of the parser component");
    let bytes = host.store.blobs().get(&rec.digest)?;
    let t = Instant::now();
    let art = host
        .sandbox
        .engine_for(bytes.len())
        .precompile_component(&bytes)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let compile = t.elapsed();
    drop((art, bytes));
    let component = host.load(&rec)?;

    let dir = std::env::temp_dir().join(format!("weft-bench-python-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let _cleanup = Cleanup(&dir);
    let file = dir.join("bench_py.py");
    let limits = Limits {
        fuel: PARSE_FUEL,
        timeout: Duration::from_secs(60),
        memory_bytes: PARSE_MEMORY_BYTES,
        max_output_bytes: MAX_PARSE_OUTPUT_BYTES,
        ..Limits::default()
    };

    bar.set(1, &format!("{n} uncached parses of a 100-task file"));
    let mut tasks_seen = 0;
    let uncached = timed(n, |i| {
        // a changed file each time: nothing cached can answer
        let source = format!("{}\n# edit {i}\n", dag_file(100));
        let input = json!({"path": file.display().to_string(), "source": source}).to_string();
        let o = host.invoke(&component, &input, "{}", Arc::new(Grant::none()), limits)?;
        let text = o
            .result
            .map_err(|e| anyhow::anyhow!("parse failed: {}: {}", e.error, e.cause))?;
        let v: serde_json::Value = serde_json::from_str(&text)?;
        let tasks = &v["dags"]["bench_py"]["tasks"];
        tasks_seen = tasks
            .as_object()
            .map(|m| m.len())
            .or_else(|| tasks.as_array().map(|a| a.len()))
            .unwrap_or(0);
        anyhow::ensure!(
            tasks_seen > 0,
            "the bench DAG file parsed to no tasks: {text:.500}"
        );
        Ok(())
    })?;

    bar.set(2, &format!("{n} cached parses (memory, then disk)"));
    let source = dag_file(100);
    // the parser of a fresh home reads the component from the bench's store
    let parser = SandboxDagParser::new(&home(), Duration::from_secs(60));
    dags_of(parser.evaluate(&file, &source))?;
    let memo = timed(n, |_| dags_of(parser.evaluate(&file, &source)).map(drop))?;
    let disk = timed(n, |_| {
        let fresh = SandboxDagParser::new(&home(), Duration::from_secs(60));
        dags_of(fresh.evaluate(&file, &source)).map(drop)
    })?;

    bar.set(3, &format!("{n} @task tries"));
    let call_file = dir.join("bench_call.py");
    std::fs::write(&call_file, CALL_FILE)?;
    let roles = weft_engine::Roles::new(Vec::new());
    let mut exec = weft_engine::dag_exec::SandboxTaskExecutor::new(&host, &roles, dir.clone());
    exec.limits = Limits {
        memory_bytes: PARSE_MEMORY_BYTES,
        ..Limits::default()
    };
    let ti = weft_dag::TaskInvocation {
        dag_id: "bench_call".into(),
        task_id: "add".into(),
        run_id: "bench".into(),
        map_index: -1,
        try_number: 1,
        max_tries: 1,
        operator: format!("{}:add", weft_dag::builtin::PYTHON),
        arguments: json!({"op_args": [20, 22]}),
        grant: None,
        execution_timeout: Some(Duration::from_secs(60)),
        pool: "default_pool".into(),
        queue: None,
        logical_date: chrono::Utc::now(),
        params: serde_json::Map::new(),
        sensor: Default::default(),
        first_poke_elapsed: Duration::ZERO,
        source_file: Some(call_file.clone()),
        xcoms: None,
        data_interval: None,
        python_callable: None,
    };
    let call = |ti: &weft_dag::TaskInvocation| -> Result<()> {
        let (r, _) = exec.execute_logged(ti);
        r.map(drop)
            .map_err(|f| anyhow::anyhow!("the @task try failed: {}: {}", f.error, f.cause))
    };
    call(&ti)?;
    let calls = timed(n, |_| call(&ti))?;
    bar.finish("done");

    let rows = [
        ("uncached parse, 100 tasks", &uncached),
        ("cached parse (memory)", &memo),
        ("cached parse (disk, new process)", &disk),
        ("@task try (call mode)", &calls),
    ];
    if a.json {
        let mut out = serde_json::Map::new();
        out.insert(
            "first_compile_ms".into(),
            json!(compile.as_secs_f64() * 1e3),
        );
        out.insert("tasks_parsed".into(), json!(tasks_seen));
        for (name, v) in rows {
            out.insert(
                name.into(),
                json!({"p50_ms": pct(v, 0.5), "p99_ms": pct(v, 0.99), "n": v.len()}),
            );
        }
        println!("{}", serde_json::Value::Object(out));
    } else {
        println!(
            "first compile of {PARSER_PLUGIN} ({:.1} MB): {:.1} s",
            host.store.blobs().get(&rec.digest)?.len() as f64 / 1e6,
            compile.as_secs_f64()
        );
        println!("tasks in the parsed 100-task file: {tasks_seen}");
        for (name, v) in rows {
            println!(
                "{name:<34} p50 {:>9.3} ms  p99 {:>9.3} ms  (n={})",
                pct(v, 0.5),
                pct(v, 0.99),
                v.len()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Removes the bench's temporary folder when the bench ends.
struct Cleanup<'a>(&'a Path);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(self.0);
    }
}
