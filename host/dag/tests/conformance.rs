//! Runs every recorded Airflow case in `shared/dag-conformance/cases` in place and checks that
//! the DAG run state and every task state equal what Apache Airflow 3.3.2 produced.

mod common;

use std::path::{Path, PathBuf};

use serde_json::Value;
use weft_dag::{parse_dag_file, run_dag_once, AnyOperator, FolderConfig, RunOptions};

const CASES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/dag-conformance/cases"
);

fn run_case(path: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("read: {e}"))?;
    let case: Value = serde_json::from_str(&text).map_err(|e| format!("json: {e}"))?;
    let yaml = case["yaml"].as_str().ok_or("no yaml")?;
    let dag_id = case["dag_id"].as_str().ok_or("no dag_id")?;
    let date = case["logical_date"].as_str().unwrap_or("2024-03-05");
    let file = PathBuf::from(format!("{dag_id}.yaml"));
    let (dags, errors) = parse_dag_file(&file, yaml, &FolderConfig::default(), &AnyOperator);
    if !errors.is_empty() {
        let msgs: Vec<String> = errors.iter().map(ToString::to_string).collect();
        return Err(format!("load errors: {}", msgs.join("; ")));
    }
    let dag = dags
        .iter()
        .find(|d| d.dag_id == dag_id)
        .ok_or("dag not found")?;
    let logical = weft_dag::timetable::parse_datetime(date, chrono_tz::Tz::UTC)?;
    let parallel = RunOptions {
        parallelism: 4,
        ..RunOptions::instant()
    };
    let par = run_dag_once(dag, logical, &common::fake_exec, &parallel).to_json();
    let report = run_dag_once(dag, logical, &common::fake_exec, &RunOptions::instant());
    let got = report.to_json();
    let want = &case["expect"];
    let mut problems = Vec::new();
    if got["state"] != want["state"] {
        problems.push(format!(
            "dag run state: got {} want {}",
            got["state"], want["state"]
        ));
    }
    let want_tasks = want["tasks"].as_object().ok_or("no expect.tasks")?;
    for (tid, wstate) in want_tasks {
        let gstate = &got["tasks"][tid]["state"];
        if gstate != wstate {
            problems.push(format!("task {tid}: got {gstate} want {wstate}"));
        }
    }
    for tid in got["tasks"].as_object().into_iter().flat_map(|m| m.keys()) {
        if !want_tasks.contains_key(tid) {
            problems.push(format!("task {tid}: not in the recorded DAG"));
        }
    }
    for (tid, t) in got["tasks"].as_object().into_iter().flatten() {
        if par["tasks"][tid]["state"] != t["state"] {
            problems.push(format!(
                "task {tid}: parallel run disagrees with the sequential one"
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

#[test]
fn airflow_recorded_cases() {
    let dir = Path::new(CASES);
    if !dir.is_dir() {
        if std::env::var("WEFT_SKIP_CONFORMANCE").as_deref() == Ok("1") {
            eprintln!("skipping: {CASES} not found (WEFT_SKIP_CONFORMANCE=1)");
            return;
        }
        panic!(
            "conformance cases not found at {CASES}; they live in shared/dag-conformance beside the \
             repository. Set WEFT_SKIP_CONFORMANCE=1 to skip."
        );
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read cases dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no cases in {CASES}");
    let mut failures = Vec::new();
    for f in &files {
        if let Err(e) = run_case(f) {
            failures.push(format!("{}: {e}", f.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}
