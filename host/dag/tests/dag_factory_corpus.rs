//! Real dag-factory files (tests/fixtures/dag-factory, sources in SOURCES.tsv) against what
//! dag-factory itself did with them (EXPECTED.*.jsonl, written by record.py with dag-factory
//! 1.x on Airflow 3 and on Airflow 2, and dag-factory 0.23 on Airflow 2).
//!
//! A file some recording built is accepted by dag-factory: weft loads it, with the same dag
//! ids, task ids and upstreams, schedule and start date. A file every recording rejected is
//! rejected by weft with `file:line`. A file no recording built because a module or file was
//! missing on the recording machine (a provider package, a callable file) loads in weft, which
//! imports nothing. The folder's `weft.yaml` maps the Airflow operators the files use.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;
use weft_dag::load::parse_folder_config;
use weft_dag::{parse_dag_file, Dag, FolderConfig, Schedule};

const RECORDINGS: [&str; 3] = ["airflow3", "airflow2", "dag-factory-0.23"];

/// Files no dag-factory release accepts that weft loads, and why: each mixes forms that
/// different releases accept (0.x: Airflow 2's `schedule_interval`; 1.x: list-form `tasks` and
/// `task_groups`), which weft reads both of.
const WEFT_ACCEPTS: &[(&str, &str)] = &[
    ("dev/dags/airflow2/example_params.yml", "schedule_interval with list-form tasks"),
    ("dev/dags/airflow2/example_user_defined_macros.yml", "schedule_interval with list-form tasks"),
    ("history/dev/dags/airflow2/example_task_group_as_list.yml", "schedule_interval with list-form task_groups"),
    ("history/dev/dags/example_dag_factory_tasks_as_list.yml", "schedule_interval with list-form tasks"),
    ("history/dev/dags/example_dynamic_task_mapping_with_taskflow.yml", "schedule_interval with decorator tasks (dag-factory 1.x); weft passes `args`/`kwargs` to the callable as plain arguments"),
    ("history/examples/example_dynamic_task_mapping.yml", "schedule_interval (dag-factory 0.x), whose callable module the 0.23 checkout no longer has"),
    // the tutorial targets dag-factory 0.x: it failed here only for want of its include/ file
    ("tutorial/dags/etl.yml", "dag-factory 0.x form; include/etl_helpers.py absent when recording"),
    ("tutorial/dags/dynamic_etl.yml", "dag-factory 0.x form; include/etl_helpers.py absent when recording"),
    // dataset schedules from dag-factory's own examples that the releases recorded here fail on
    // (plain URI strings in a schedule list on Airflow 2, `airflow.datasets` gone in Airflow 3)
    ("dev/dags/datasets/example_dag_datasets.yml", "dataset URIs as a schedule list"),
    ("history/dev/dags/airflow3/example_timetable_dataset_schedule.yml", "dataset-or-timetable schedule"),
    ("history/dev/dags/datasets/example_dataset_with_file.yml", "datasets listed with a file"),
];

/// Files dag-factory accepts that weft refuses, and why.
const WEFT_REFUSES: &[(&str, &str)] = &[
    // a schedule snippet of dag-factory's tests: dag-factory builds a DAG called `schedule`
    // with no tasks from it
    ("history/tests/schedule/cron_dict.yml", "not a DAG file"),
    // `example_dag4` keeps its tasks under `vars:` (an anchor holder), so it has none
    ("tests/fixtures/dag_factory.yml", "a DAG needs"),
];

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dag-factory")
}

/// The DAG folder a fixture is loaded from (record.py uses the same rule).
fn root_of(rel: &str) -> PathBuf {
    for root in [
        "dev/dags",
        "tests/fixtures",
        "tests/fixtures_without_default_yaml",
        "tests/schedule",
        "scripts/airflow3/dags",
        "tutorial/dags",
    ] {
        if rel.starts_with(&format!("{root}/")) {
            return corpus().join(root);
        }
    }
    corpus().join(rel).parent().unwrap().to_path_buf()
}

/// fixture -> recording -> record
fn recordings() -> BTreeMap<String, BTreeMap<&'static str, Value>> {
    let mut out: BTreeMap<String, BTreeMap<&'static str, Value>> = BTreeMap::new();
    for name in RECORDINGS {
        let text =
            std::fs::read_to_string(corpus().join(format!("EXPECTED.{name}.jsonl"))).unwrap();
        for line in text.lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            let fixture = v["fixture"].as_str().unwrap().to_string();
            out.entry(fixture).or_default().insert(name, v);
        }
    }
    out
}

#[derive(Debug, PartialEq)]
enum Verdict {
    Accepted,
    Rejected,
    Environment,
}

/// Accepted when some recording built the file; rejected when dag-factory 1.x refused it on
/// Airflow 2 or 3 (dag-factory 0.23 on Airflow 2.10 refuses most files for reasons of its own,
/// "Dataset URI cannot be just whitespace", so only its successes count); else the recording
/// machines lacked a module or file.
fn verdict(records: &BTreeMap<&'static str, Value>) -> Verdict {
    let status = |n: &str| records.get(n).and_then(|r| r["status"].as_str());
    if records.values().any(|r| r["status"] == "ok") {
        Verdict::Accepted
    } else if ["airflow3", "airflow2"]
        .iter()
        .any(|n| matches!(status(n), Some("rejected" | "yaml-error")))
    {
        Verdict::Rejected
    } else {
        Verdict::Environment
    }
}

fn config() -> FolderConfig {
    let path = corpus().join("weft.yaml");
    parse_folder_config(&path, &std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn load(rel: &str) -> (Vec<Dag>, Vec<weft_dag::DagError>) {
    let file = corpus().join(rel);
    let text = std::fs::read_to_string(&file).unwrap();
    let mut config = config();
    config.defaults_root = Some(root_of(rel));
    let plugins = ["echo", "http-request"];
    parse_dag_file(&file, &text, &config, &|op: &str| plugins.contains(&op))
}

/// A schedule as (kind, detail), comparable with what Airflow recorded.
fn weft_schedule(s: &Schedule) -> (String, String) {
    let preset = |c: &str| {
        match c {
            "@hourly" => "0 * * * *",
            "@daily" | "@midnight" => "0 0 * * *",
            "@weekly" => "0 0 * * 0",
            "@monthly" => "0 0 1 * *",
            "@yearly" | "@annually" => "0 0 1 1 *",
            other => other,
        }
        .to_string()
    };
    match s {
        Schedule::Never => ("none".into(), String::new()),
        Schedule::Once => ("once".into(), String::new()),
        Schedule::Cron { source, .. } => ("cron".into(), preset(source)),
        Schedule::CronTrigger { source, .. } => ("cron-trigger".into(), source.clone()),
        Schedule::Delta(d) => ("delta".into(), d.as_secs().to_string()),
        Schedule::DeltaTrigger { delta, .. } => {
            ("delta-trigger".into(), delta.as_secs().to_string())
        }
        // Airflow's summary of a dataset-or-time schedule shows the cron text, not its kind
        Schedule::Assets { timetable, .. } => (
            "assets".into(),
            timetable
                .as_ref()
                .map_or(String::new(), |t| weft_schedule(t).1),
        ),
        Schedule::NotRun { what } => ("not-run".into(), what.clone()),
    }
}

/// What Airflow recorded, in the same terms; `None` when the summary says nothing (Airflow 3's
/// `CronTriggerTimetable` summary is its description, `None` when it has none).
fn airflow_schedule(dag: &Value) -> Option<(String, String)> {
    let summary = dag["schedule"].as_str().unwrap_or_default();
    let timetable = dag["timetable"].as_str().unwrap_or_default();
    let delta_secs = |s: &str| -> String {
        // `1 day, 0:00:00` / `2 days, 1:00:00` / `0:30:00`
        let (days, hms) = match s.split_once(", ") {
            Some((d, rest)) => (d.split(' ').next().unwrap().parse::<u64>().unwrap(), rest),
            None => (0, s),
        };
        let p: Vec<u64> = hms.split(':').map(|x| x.parse().unwrap()).collect();
        (days * 86400 + p[0] * 3600 + p[1] * 60 + p[2]).to_string()
    };
    Some(match timetable {
        "CronDataIntervalTimetable" => ("cron".into(), summary.into()),
        "CronTriggerTimetable" if summary == "None" => return None,
        "CronTriggerTimetable" => ("cron-trigger".into(), summary.into()),
        "DeltaDataIntervalTimetable" => ("delta".into(), delta_secs(summary)),
        "NullTimetable" => ("none".into(), String::new()),
        "OnceTimetable" => ("once".into(), String::new()),
        "DatasetTriggeredTimetable" | "AssetTriggeredTimetable" => ("assets".into(), String::new()),
        "DatasetOrTimeSchedule" | "AssetOrTimeSchedule" => (
            "assets".into(),
            summary.split(" or ").nth(1).unwrap_or_default().to_string(),
        ),
        _ => return None,
    })
}

/// Compare one loaded DAG with a recording of it; returns the differences.
fn differences(dag: &Dag, recorded: &Value, all: &[&Value]) -> Vec<String> {
    let mut out = Vec::new();
    let tasks: BTreeMap<String, BTreeSet<String>> = dag
        .tasks
        .values()
        .map(|t| (t.task_id.clone(), t.upstream.iter().cloned().collect()))
        .collect();
    let want: BTreeMap<String, BTreeSet<String>> = recorded["tasks"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            let ups = v.as_array().unwrap().iter();
            (
                k.clone(),
                ups.map(|u| u.as_str().unwrap().to_string()).collect(),
            )
        })
        .collect();
    if tasks != want {
        out.push(format!(
            "tasks/upstreams: weft {tasks:?}, dag-factory {want:?}"
        ));
    }
    // the first recording whose summary says something
    if let Some(want) = all.iter().find_map(|r| airflow_schedule(r)) {
        let got = weft_schedule(&dag.schedule);
        if got != want {
            out.push(format!("schedule: weft {got:?}, Airflow {want:?}"));
        }
    }
    // dates written relative to the day (`2 days`) differ by the days between the recording
    // and this run: only absolute start dates are compared
    let now = chrono::Utc::now();
    if let (Some(start), Some(want)) = (dag.start_date, recorded["start_date"].as_str()) {
        let want = chrono::DateTime::parse_from_rfc3339(want).unwrap();
        if (now - start).num_days().abs() > 60 && start != want {
            out.push(format!("start_date: weft {start}, dag-factory {want}"));
        }
    }
    out
}

#[test]
fn every_file_dag_factory_accepts_loads_and_every_file_it_rejects_is_refused() {
    let mut problems = Vec::new();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for (rel, records) in recordings() {
        let (dags, errors) = load(&rel);
        let v = verdict(&records);
        *counts
            .entry(match v {
                Verdict::Accepted => "accepted",
                Verdict::Rejected => "rejected",
                Verdict::Environment => "environment",
            })
            .or_default() += 1;
        let exception = WEFT_ACCEPTS.iter().find(|(f, _)| *f == rel);
        if let Some((_, why)) = WEFT_REFUSES.iter().find(|(f, _)| *f == rel) {
            if !errors.iter().any(|e| e.reason.contains(why)) {
                problems.push(format!(
                    "{rel}: expected weft to refuse it ({why}), got {errors:?}"
                ));
            }
            continue;
        }
        match v {
            Verdict::Accepted | Verdict::Environment => {
                if !errors.is_empty() {
                    let lines: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
                    problems.push(format!(
                        "{rel} ({v:?}) does not load:\n  {}",
                        lines.join("\n  ")
                    ));
                    continue;
                }
                let Some((name, rec)) = records.iter().find(|(_, r)| r["status"] == "ok") else {
                    continue;
                };
                let want: BTreeSet<&str> = rec["dags"]
                    .as_object()
                    .unwrap()
                    .keys()
                    .map(String::as_str)
                    .collect();
                let got: BTreeSet<&str> = dags.iter().map(|d| d.dag_id.as_str()).collect();
                if got != want {
                    problems.push(format!("{rel}: dag ids: weft {got:?}, {name} {want:?}"));
                    continue;
                }
                for dag in &dags {
                    let all: Vec<&Value> = RECORDINGS
                        .iter()
                        .filter_map(|n| records.get(n))
                        .filter(|r| r["status"] == "ok")
                        .map(|r| &r["dags"][&dag.dag_id])
                        .collect();
                    for d in differences(dag, &rec["dags"][&dag.dag_id], &all) {
                        problems.push(format!("{rel}: {}: {d}", dag.dag_id));
                    }
                }
            }
            Verdict::Rejected if exception.is_some() => {
                if !errors.is_empty() {
                    problems.push(format!("{rel}: listed as accepted by weft but: {errors:?}"));
                }
            }
            Verdict::Rejected => {
                if errors.is_empty() {
                    let why: Vec<String> = records
                        .iter()
                        .map(|(n, r)| format!("{n}: {}", r["detail"].as_str().unwrap_or_default()))
                        .collect();
                    problems.push(format!(
                        "{rel}: dag-factory rejects it ({}) but weft loads it",
                        why.join("; ")
                    ));
                    continue;
                }
                let file = corpus().join(&rel);
                for e in &errors {
                    if e.file != file || e.reason.is_empty() {
                        problems.push(format!("{rel}: unclear error: {e:?}"));
                    }
                }
                if !errors.iter().any(|e| e.line > 0) {
                    problems.push(format!("{rel}: no error names a line: {errors:?}"));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} problems ({counts:?}):\n{}",
        problems.len(),
        problems.join("\n")
    );
}
