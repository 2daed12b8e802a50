//! `GET /v1/dags?runs=N`: the web UI's landing page of DAGs, as Airflow's DAG list shows it —
//! per DAG its schedule, owners and tags, its next run (the data interval the scheduler would
//! create next, from the DAG's timetable and its latest scheduled run, respecting `catchup`,
//! `start_date` and `end_date`; `null` for unscheduled DAGs and finished timetables) and the
//! states of its newest `N` runs (default 10, at most 25; read with
//! [`weft_engine::persistence::DagStore::recent_runs`], not by loading every run). DAGs
//! whose file fails to load are listed too (`importError: true`) when their id is known.
//!
//! Authorisation (see [`crate::v1_access`]): a DAG is listed only with `dags:ListDags` on
//! `weft:dag:DAG_ID`; its recent runs need `dags:ListDagRuns` on it too (`null` otherwise);
//! the folder and the text of load errors need `dags:ListImportErrors` on `weft:dags`
//! (`errors`, one line each, and `importErrors`, each with its `file`, `line`, `reason` and a
//! Python file's `traceback`). `isPaused` is the DAG's paused flag as the scheduler reads it.

use crate::error::ApiError;
use crate::rest::num_param;
use crate::v1_access::{Ctx, DAG_FOLDER};
use crate::AppState;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use weft_engine::scheduler::{DagRunRecord, SchedStore};

/// Recent runs per DAG unless `runs` says otherwise.
pub const DEFAULT_RUNS: i64 = 10;
/// The most recent runs listed per DAG.
pub const MAX_RUNS: i64 = 25;

fn store_err(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(format!("DAG store: {e}"))
}

/// The next run the scheduler would create for `d` after its latest scheduled run.
pub fn next_run(
    d: &weft_dag::Dag,
    store: &SchedStore,
    now: DateTime<Utc>,
) -> Result<Value, ApiError> {
    if matches!(d.schedule, weft_dag::Schedule::Never) {
        return Ok(Value::Null);
    }
    let last = store
        .last_run(&d.dag_id, &["scheduled"])
        .map_err(store_err)?
        .map(|r| weft_dag::DataInterval {
            start: r.data_interval_start,
            end: r.data_interval_end,
        });
    Ok(match d.next_dagrun_info(last.as_ref(), now) {
        // the scheduler creates nothing more once the timetable repeats the last interval
        Some(i) if last != Some(i.data_interval) => json!({
            "logicalDate": i.logical_date.to_rfc3339(),
            "runAfter": i.run_after.to_rfc3339(),
            "dataInterval": [i.data_interval.start.to_rfc3339(), i.data_interval.end.to_rfc3339()],
        }),
        _ => Value::Null,
    })
}

/// The owners of a DAG's tasks (Airflow's DAG list shows them), sorted, without repeats.
pub fn owners(d: &weft_dag::Dag) -> Vec<String> {
    d.tasks
        .values()
        .map(|t| t.owner.clone())
        .filter(|o| !o.is_empty())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

fn run_json(r: &DagRunRecord) -> Value {
    json!({
        "runId": r.run_id,
        "runType": r.run_type,
        "state": r.state,
        "logicalDate": r.logical_date.to_rfc3339(),
        "startDate": r.start_date.map(|d| d.to_rfc3339()),
        "endDate": r.end_date.map(|d| d.to_rfc3339()),
    })
}

/// The DAG list the caller may see.
pub fn list(app: &AppState, ctx: &mut Ctx, q: Option<&str>) -> Result<Value, ApiError> {
    ctx.filtered("*");
    let n = num_param(q, "runs")?.unwrap_or(DEFAULT_RUNS);
    if !(1..=MAX_RUNS).contains(&n) {
        return Err(ApiError::validation(format!(
            "`runs` must be between 1 and {MAX_RUNS}, not {n}"
        )));
    }
    let (dags, errors, dir) = crate::rest::load_dags(app);
    let store = app.dag_store().map_err(store_err)?;
    let now = Utc::now();
    let folder_visible = ctx.may("dags:ListImportErrors", DAG_FOLDER);
    let resource = |id: &str| format!("weft:dag:{id}");
    // load errors by the DAG they belong to (ids checked before they name a resource)
    let mut broken: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for e in &errors {
        if let Some(id) = e.dag_id.as_deref().filter(|id| weft_dag::valid_dag_id(id)) {
            broken
                .entry(id.to_string())
                .or_default()
                .push(e.to_string());
        }
    }
    let mut out = Vec::new();
    for d in &dags {
        if !ctx.may("dags:ListDags", &resource(&d.dag_id)) {
            continue;
        }
        let mut v = crate::rest::dag_summary(d);
        v["nextRun"] = next_run(d, &store, now)?;
        v["owners"] = json!(owners(d));
        v["isPaused"] = json!(crate::airflow_api::dags::is_paused(&store, d)?);
        v["recentRuns"] = if ctx.may("dags:ListDagRuns", &resource(&d.dag_id)) {
            let runs = store
                .recent_runs(&d.dag_id, n as usize)
                .map_err(store_err)?;
            json!(runs.iter().map(run_json).collect::<Vec<_>>())
        } else {
            Value::Null
        };
        let errs = broken.remove(&d.dag_id);
        v["importError"] = json!(errs.is_some());
        if folder_visible {
            v["importErrors"] = json!(errs.unwrap_or_default());
        }
        out.push(v);
    }
    // DAGs that failed to load: listed by id (with their past runs), as Airflow keeps them
    for (id, errs) in broken {
        if !ctx.may("dags:ListDags", &resource(&id)) {
            continue;
        }
        let runs = if ctx.may("dags:ListDagRuns", &resource(&id)) {
            let runs = store.recent_runs(&id, n as usize).map_err(store_err)?;
            json!(runs.iter().map(run_json).collect::<Vec<_>>())
        } else {
            Value::Null
        };
        let mut v = json!({
            "dagId": id,
            "importError": true,
            "schedule": null,
            "nextRun": null,
            "tags": [],
            "owners": [],
            "recentRuns": runs,
        });
        if folder_visible {
            v["importErrors"] = json!(errs);
        }
        out.push(v);
    }
    Ok(json!({
        "folder": folder_visible.then(|| dir.display().to_string()),
        "dags": out,
        "errors": if folder_visible {
            errors.iter().map(|e| e.to_string()).collect()
        } else {
            Vec::new()
        },
        "importErrors": if folder_visible {
            errors.iter().map(import_error_json).collect()
        } else {
            Vec::new()
        },
    }))
}

/// A load error as the import errors banner shows it: `file`, `line` (0: the whole file),
/// `path` in the file, `reason`, `dagId` and a Python file's `traceback`.
fn import_error_json(e: &weft_dag::DagError) -> Value {
    json!({
        "file": e.file.display().to_string(),
        "line": e.line,
        "path": e.path,
        "reason": e.reason,
        "dagId": e.dag_id,
        "traceback": e.traceback.as_deref(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn dag(yaml: &str) -> weft_dag::Dag {
        let (mut dags, errors) = weft_dag::load::parse_dag_file(
            std::path::Path::new("t.yaml"),
            yaml,
            &Default::default(),
            &weft_dag::load::AnyOperator,
        );
        assert!(errors.is_empty(), "{errors:?}");
        dags.remove(0)
    }

    fn day(d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 1, d, 0, 0, 0).unwrap()
    }

    fn scheduled(dag_id: &str, d: u32) -> DagRunRecord {
        DagRunRecord {
            dag_id: dag_id.into(),
            run_id: format!("scheduled__{d}"),
            run_type: "scheduled".into(),
            logical_date: day(d),
            data_interval_start: day(d),
            data_interval_end: day(d + 1),
            state: "success".into(),
            conf: Default::default(),
            queued_at: day(d + 1),
            start_date: None,
            end_date: None,
            note: None,
        }
    }

    fn logical(v: &Value) -> Option<&str> {
        v["logicalDate"].as_str()
    }

    #[test]
    fn the_next_run_follows_the_latest_scheduled_run_until_the_end_date() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let store = SchedStore::open(&db).unwrap();
        let d = dag("etl:\n  schedule: '@daily'\n  catchup: true\n  start_date: 2024-01-01\n  end_date: 2024-01-03\n  tasks:\n    a:\n      operator: echo\n");
        let now = day(20);
        let next = next_run(&d, &store, now).unwrap();
        assert_eq!(logical(&next), Some("2024-01-01T00:00:00+00:00"), "{next}");
        assert_eq!(
            next["dataInterval"],
            json!(["2024-01-01T00:00:00+00:00", "2024-01-02T00:00:00+00:00"])
        );
        store.insert_run(&scheduled("etl", 1)).unwrap();
        // a manual run does not move the timetable
        let mut manual = scheduled("etl", 10);
        manual.run_type = "manual".into();
        manual.run_id = "manual__10".into();
        store.insert_run(&manual).unwrap();
        let next = next_run(&d, &store, now).unwrap();
        assert_eq!(logical(&next), Some("2024-01-02T00:00:00+00:00"), "{next}");
        store.insert_run(&scheduled("etl", 3)).unwrap();
        // past end_date: no next run
        assert_eq!(next_run(&d, &store, now).unwrap(), Value::Null);
    }

    #[test]
    fn without_catchup_the_next_run_is_the_latest_interval_and_unscheduled_dags_have_none() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let store = SchedStore::open(&db).unwrap();
        let d = dag("etl:\n  schedule: '@daily'\n  catchup: false\n  start_date: 2024-01-01\n  tasks:\n    a:\n      operator: echo\n");
        let now = Utc.with_ymd_and_hms(2024, 1, 20, 6, 0, 0).unwrap();
        let next = next_run(&d, &store, now).unwrap();
        assert_eq!(logical(&next), Some("2024-01-19T00:00:00+00:00"), "{next}");
        let manual = dag("m:\n  schedule: null\n  start_date: 2024-01-01\n  tasks:\n    a:\n      operator: echo\n      owner: ops\n    b:\n      operator: echo\n      owner: data\n");
        assert_eq!(next_run(&manual, &store, now).unwrap(), Value::Null);
        assert_eq!(owners(&manual), ["data", "ops"]);
    }
}
