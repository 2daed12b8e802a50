//! Map Runs: each Distributed Map of a Standard execution is a Map Run with its own ARN
//! (`arn:aws:states:REGION:ACCOUNT:mapRun:MACHINE/LABEL:ID`). The Map Run store
//! ([`weft_engine::persistence::MapRunStore`]) keeps, per Map Run ARN, its execution and the limits `UpdateMapRun` set; everything else
//! (status, dates, item counts by status) is read from the execution's history, so it is
//! always what the history says. The actions `DescribeMapRun`, `ListMapRuns` and
//! `UpdateMapRun` (field names as in AWS's API reference) live here, and the running
//! interpreter reads updated limits through [`limits`].

use crate::api::{opt_str, req_str};
use crate::error::ApiError;
use crate::records::{details_of, ts};
use crate::AppState;
use serde_json::{json, Value};
use std::sync::Arc;
use weft_engine::standard::map_runs::record;

/// The most Map Runs one `ListMapRuns` page holds, and its default.
const MAX_PAGE: usize = 1000;
const DEFAULT_PAGE: usize = 100;

/// What the history says of one Map Run.
#[derive(Debug, Default, Clone)]
struct Observed {
    arn: String,
    start_ms: i64,
    stop_ms: Option<i64>,
    status: &'static str,
    total: u64,
    started: u64,
    succeeded: u64,
    failed: u64,
    aborted: u64,
    /// The Map's result names a `ResultWriterDetails` (its results were exported).
    exported: bool,
    /// The Map state's name.
    state: String,
}

fn ms_of(ev: &Value) -> i64 {
    (ev["timestamp"].as_f64().unwrap_or(0.0) * 1000.0) as i64
}

/// Every Map Run of execution `exec_arn`, in the order they started.
fn observe(app: &AppState, exec_arn: &str) -> Result<Vec<Observed>, ApiError> {
    app.pending.apply_if_queued(exec_arn)?;
    let mut runs: Vec<Observed> = Vec::new();
    // event id of each run's MapRunStarted -> index in `runs`; and each run's Map state name
    let mut by_start: std::collections::HashMap<u64, usize> = Default::default();
    let mut names: Vec<String> = Vec::new();
    let mut last_map_start: Option<(String, u64)> = None;
    let mut entered_name = String::new();
    for batch in crate::pending::history_events(app.history.as_ref(), exec_arn)? {
        for raw in batch {
            let ev: Value = serde_json::from_slice(&raw)?;
            let ty = ev["type"].as_str().unwrap_or("");
            let d = details_of(&ev);
            match ty {
                "MapStateEntered" => {
                    entered_name = d["name"].as_str().unwrap_or("").to_string();
                }
                "MapStateExited" => {
                    let name = d["name"].as_str().unwrap_or("");
                    let exported = d["output"]
                        .as_str()
                        .is_some_and(|o| o.contains("\"ResultWriterDetails\""));
                    if let Some(i) = names.iter().rposition(|n| n == name) {
                        runs[i].exported |= exported;
                    }
                }
                "MapStateStarted" => {
                    last_map_start =
                        Some((entered_name.clone(), d["length"].as_u64().unwrap_or(0)));
                }
                "MapRunStarted" => {
                    let (name, total) = last_map_start.clone().unwrap_or_default();
                    by_start.insert(ev["id"].as_u64().unwrap_or(0), runs.len());
                    names.push(name.clone());
                    runs.push(Observed {
                        arn: d["mapRunArn"].as_str().unwrap_or("").to_string(),
                        start_ms: ms_of(&ev),
                        status: "RUNNING",
                        total,
                        state: name,
                        ..Observed::default()
                    });
                }
                "MapRunSucceeded" | "MapRunFailed" | "MapRunAborted" => {
                    let prev = ev["previousEventId"].as_u64().unwrap_or(0);
                    if let Some(r) = by_start.get(&prev).and_then(|i| runs.get_mut(*i)) {
                        r.stop_ms = Some(ms_of(&ev));
                        r.status = match ty {
                            "MapRunSucceeded" => "SUCCEEDED",
                            "MapRunFailed" => "FAILED",
                            _ => "ABORTED",
                        };
                    }
                }
                "MapIterationStarted"
                | "MapIterationSucceeded"
                | "MapIterationFailed"
                | "MapIterationAborted" => {
                    // the latest run of the Map state the iteration names
                    let name = d["name"].as_str().unwrap_or("");
                    let Some(i) = names.iter().rposition(|n| n == name) else {
                        continue;
                    };
                    let r = &mut runs[i];
                    match ty {
                        "MapIterationStarted" => r.started += 1,
                        "MapIterationSucceeded" => r.succeeded += 1,
                        "MapIterationFailed" => r.failed += 1,
                        _ => r.aborted += 1,
                    }
                }
                _ => {}
            }
        }
    }
    Ok(runs)
}

fn counts(o: &Observed, results_written: u64) -> Value {
    let ended = o.succeeded + o.failed + o.aborted;
    let running = o.started.saturating_sub(ended);
    let pending = o.total.saturating_sub(o.started);
    json!({
        "pending": pending,
        "running": running,
        "succeeded": o.succeeded,
        "failed": o.failed,
        "timedOut": 0,
        "aborted": o.aborted,
        "total": o.total,
        "resultsWritten": results_written,
        "failuresNotRedrivable": 0,
        "pendingRedrive": 0,
    })
}

/// Checks a Map Run ARN's shape (`arn:aws:states:REGION:ACCOUNT:mapRun:MACHINE/LABEL:ID`).
pub(crate) fn check_arn(arn: &str) -> Result<(), ApiError> {
    let bad = || {
        ApiError::new(
            "InvalidArn",
            format!("Invalid Arn: 'not a Map Run ARN: {arn}'"),
        )
    };
    let rest = arn
        .strip_prefix(&format!(
            "arn:aws:states:{}:{}:mapRun:",
            crate::records::REGION,
            crate::records::ACCOUNT
        ))
        .ok_or_else(bad)?;
    let (names, id) = rest.rsplit_once(':').ok_or_else(bad)?;
    let (machine, label) = names.split_once('/').ok_or_else(bad)?;
    let ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 80
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    };
    if ok(machine) && ok(label) && ok(id) && arn.len() <= 2048 {
        Ok(())
    } else {
        Err(bad())
    }
}

/// The state named `name` anywhere in a definition (top level, Parallel branches, Map
/// processors), depth-bounded.
fn find_state<'a>(def: &'a Value, name: &str, depth: usize) -> Option<&'a Value> {
    if depth > 64 {
        return None;
    }
    let states = def.get("States")?.as_object()?;
    if let Some(s) = states.get(name) {
        return Some(s);
    }
    states.values().find_map(|s| {
        let nested = s.get("Branches").and_then(Value::as_array);
        let processor = s.get("ItemProcessor").or(s.get("Iterator"));
        nested
            .into_iter()
            .flatten()
            .chain(processor)
            .find_map(|d| find_state(d, name, depth + 1))
    })
}

/// `DescribeMapRun`.
pub(crate) fn describe(app: &Arc<AppState>, req: &Value) -> Result<Value, ApiError> {
    let arn = req_str(req, "mapRunArn")?;
    check_arn(arn)?;
    let rec = record(app, arn)?;
    let exec = rec["executionArn"].as_str().unwrap_or("").to_string();
    let runs = observe(app, &exec)?;
    let o = runs
        .iter()
        .rev()
        .find(|r| r.arn == arn)
        .cloned()
        .unwrap_or_default();
    // an export writes every item (those that never ran go to PENDING_n)
    let written = if o.stop_ms.is_some() && o.exported {
        o.total
    } else {
        0
    };
    // UpdateMapRun's values, else the Map state's own (as the execution's definition says)
    let defined = crate::api::exec_by_arn(app, &exec)
        .ok()
        .and_then(|e| {
            e.definition.or_else(|| {
                crate::api::sm_by_arn(app, &e.state_machine_arn)
                    .ok()
                    .map(|s| s.definition)
            })
        })
        .and_then(|d| serde_json::from_str::<Value>(&d).ok())
        .and_then(|d| find_state(&d, &o.state, 0).cloned())
        .unwrap_or(Value::Null);
    let limit = |update: &str, field: &str| rec.get(update).or(defined.get(field)).cloned();
    let mut v = json!({
        "mapRunArn": arn,
        "executionArn": exec,
        "status": o.status,
        "startDate": ts(o.start_ms),
        "maxConcurrency": limit("maxConcurrency", "MaxConcurrency").and_then(|v| v.as_u64()).unwrap_or(0),
        "toleratedFailurePercentage": limit("toleratedFailurePercentage", "ToleratedFailurePercentage").and_then(|v| v.as_f64()).unwrap_or(0.0),
        "toleratedFailureCount": limit("toleratedFailureCount", "ToleratedFailureCount").and_then(|v| v.as_u64()).unwrap_or(0),
        "itemCounts": counts(&o, written),
        "executionCounts": counts(&o, written),
        "redriveCount": 0,
    });
    if let Some(s) = o.stop_ms {
        v["stopDate"] = ts(s);
    }
    Ok(v)
}

/// `ListMapRuns` (pages of `maxResults`, `nextToken` `o:OFFSET`).
pub(crate) fn list(app: &Arc<AppState>, req: &Value) -> Result<Value, ApiError> {
    let exec = req_str(req, "executionArn")?;
    let _ = crate::api::exec_by_arn(app, exec)?;
    let max = match req.get("maxResults").and_then(Value::as_u64) {
        None | Some(0) => DEFAULT_PAGE,
        Some(n) => usize::try_from(n).unwrap_or(MAX_PAGE).min(MAX_PAGE),
    };
    let offset = match opt_str(req, "nextToken")? {
        None => 0,
        Some(t) => t
            .strip_prefix("o:")
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| ApiError::new("InvalidToken", format!("Invalid Token: '{t}'")))?,
    };
    let runs = observe(app, exec)?;
    let sm = crate::api::exec_by_arn(app, exec)?.state_machine_arn;
    let page: Vec<Value> = runs
        .iter()
        .skip(offset)
        .take(max)
        .map(|r| {
            let mut v = json!({
                "executionArn": exec,
                "mapRunArn": r.arn,
                "stateMachineArn": sm,
                "startDate": ts(r.start_ms),
            });
            if let Some(s) = r.stop_ms {
                v["stopDate"] = ts(s);
            }
            v
        })
        .collect();
    let mut out = json!({"mapRuns": page});
    if offset + max < runs.len() {
        out["nextToken"] = json!(format!("o:{}", offset + max));
    }
    Ok(out)
}

/// `UpdateMapRun`: `maxConcurrency`, `toleratedFailurePercentage`, `toleratedFailureCount`,
/// taking effect on the running Map Run as its next items start and fail.
pub(crate) fn update(app: &Arc<AppState>, req: &Value) -> Result<Value, ApiError> {
    let arn = req_str(req, "mapRunArn")?;
    check_arn(arn)?;
    let mut rec = record(app, arn)?;
    let field = |k: &str| req.get(k).filter(|v| !v.is_null());
    let mut any = false;
    if let Some(v) = field("maxConcurrency") {
        let n = v.as_u64().filter(|n| *n <= 10_000).ok_or_else(|| {
            ApiError::validation("maxConcurrency must be an integer from 0 to 10000")
        })?;
        rec.insert("maxConcurrency".into(), json!(n));
        any = true;
    }
    if let Some(v) = field("toleratedFailureCount") {
        let n = v.as_u64().ok_or_else(|| {
            ApiError::validation("toleratedFailureCount must be a non-negative integer")
        })?;
        rec.insert("toleratedFailureCount".into(), json!(n));
        any = true;
    }
    if let Some(v) = field("toleratedFailurePercentage") {
        let p = v
            .as_f64()
            .filter(|p| (0.0..=100.0).contains(p))
            .ok_or_else(|| {
                ApiError::validation("toleratedFailurePercentage must be a number from 0 to 100")
            })?;
        rec.insert("toleratedFailurePercentage".into(), json!(p));
        any = true;
    }
    if !any {
        return Err(ApiError::validation(
            "UpdateMapRun needs maxConcurrency, toleratedFailurePercentage or toleratedFailureCount",
        ));
    }
    app.map_runs
        .put_map_run(arn, Value::Object(rec).to_string().as_bytes())
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(json!({}))
}
