//! Benchmark: a 10,000-task no-op DAG, wide (root -> 9,998 parallel -> sink) and deep (a
//! chain), parsed, validated and run in-process with `run_dag_once`; plus a 3-year daily
//! catchup listing. Run with `cargo bench -p weft-dag --bench dag_run`.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use serde_json::Value;
use weft_dag::{
    parse_dag_file, run_dag_once, AnyOperator, FolderConfig, Restriction, RunOptions, TaskFailure,
    TaskInvocation,
};

const N: usize = 10_000;

fn wide_yaml() -> String {
    let mut s = String::from(
        "wide:\n  default_args:\n    owner: bench\n  tasks:\n    root:\n      operator: noop\n",
    );
    for i in 0..N - 2 {
        let _ = write!(
            s,
            "    t{i}:\n      operator: noop\n      dependencies: [root]\n      n: {i}\n"
        );
    }
    s.push_str(
        "    sink:\n      operator: noop\n      trigger_rule: all_done\n      dependencies: [",
    );
    for i in 0..N - 2 {
        if i > 0 {
            s.push_str(", ");
        }
        let _ = write!(s, "t{i}");
    }
    s.push_str("]\n");
    s
}

fn deep_yaml() -> String {
    let mut s = String::from("deep:\n  tasks:\n    t0:\n      operator: noop\n");
    for i in 1..N {
        let _ = write!(
            s,
            "    t{i}:\n      operator: noop\n      dependencies: [t{}]\n",
            i - 1
        );
    }
    s
}

fn noop(_: &TaskInvocation) -> Result<Value, TaskFailure> {
    Ok(Value::Null)
}

fn bench(name: &str, yaml: &str) {
    let t0 = Instant::now();
    let (dags, errors) = parse_dag_file(
        Path::new("bench.yaml"),
        yaml,
        &FolderConfig::default(),
        &AnyOperator,
    );
    let parse = t0.elapsed();
    assert!(errors.is_empty(), "{errors:?}");
    let dag = &dags[0];
    let date = weft_dag::timetable::parse_datetime("2024-03-05", chrono_tz::Tz::UTC).unwrap();
    let t1 = Instant::now();
    let report = run_dag_once(dag, date, &noop, &RunOptions::instant());
    let run = t1.elapsed();
    let t2 = Instant::now();
    let json = report.to_json().to_string();
    let to_json = t2.elapsed();
    assert_eq!(report.tasks.len(), N);
    assert_eq!(report.state.as_str(), "success");
    println!(
        "{name:>5}: {N} tasks | parse+validate {:>7.1} ms | run {:>7.1} ms ({:.0} tasks/s) | report JSON {:>5.1} ms ({} KB) | total {:>7.1} ms",
        parse.as_secs_f64() * 1e3,
        run.as_secs_f64() * 1e3,
        N as f64 / run.as_secs_f64(),
        to_json.as_secs_f64() * 1e3,
        json.len() / 1024,
        (parse + run + to_json).as_secs_f64() * 1e3,
    );
}

fn catchup() {
    let yaml = "daily:\n  start_date: 2021-01-01\n  schedule: '@daily'\n  catchup: true\n  tasks:\n    a:\n      operator: noop\n    b:\n      operator: noop\n      dependencies: [a]\n    c:\n      operator: noop\n      dependencies: [a]\n    d:\n      operator: noop\n      dependencies: [b, c]\n    e:\n      operator: noop\n      dependencies: [d]\n";
    let (dags, _) = parse_dag_file(
        Path::new("c.yaml"),
        yaml,
        &FolderConfig::default(),
        &AnyOperator,
    );
    let dag = &dags[0];
    let now =
        weft_dag::timetable::parse_datetime("2024-01-01T00:00:01", chrono_tz::Tz::UTC).unwrap();
    let r = Restriction {
        earliest: dag.start_date,
        latest: dag.end_date,
        catchup: true,
    };
    let t0 = Instant::now();
    let runs = dag.schedule.runs_until(dag.timezone, None, &r, now, 10_000);
    let list = t0.elapsed();
    let t1 = Instant::now();
    for info in &runs {
        let opts = RunOptions {
            data_interval: Some(info.data_interval),
            ..RunOptions::instant()
        };
        let rep = run_dag_once(dag, info.logical_date, &noop, &opts);
        assert_eq!(rep.state.as_str(), "success");
    }
    let run = t1.elapsed();
    println!(
        "catchup: {} daily runs of a 5-task DAG | list intervals {:.1} ms | run all {:.1} ms ({:.0} runs/s)",
        runs.len(),
        list.as_secs_f64() * 1e3,
        run.as_secs_f64() * 1e3,
        runs.len() as f64 / run.as_secs_f64()
    );
}

fn main() {
    bench("wide", &wide_yaml());
    bench("deep", &deep_yaml());
    catchup();
}
