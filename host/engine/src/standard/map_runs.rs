//! The Map Run records of the runtime: per Map Run ARN, its execution (recorded when the
//! run's `MapRunStarted` event is) and the limits `UpdateMapRun` set, which the running
//! interpreter reads through [`limits`]. The Map Run actions of the API read the rest from the
//! execution's history.

use super::{Runtime, RuntimeError};
use serde_json::{json, Map, Value};
use weft_asl::MapRunLimits;

/// Records that `map_run_arn` started in execution `exec_arn` (a `MapRunStarted` event was
/// written); a replay that sees it again changes nothing.
pub fn record_started(rt: &Runtime, map_run_arn: &str, exec_arn: &str) {
    let v = json!({"executionArn": exec_arn}).to_string();
    if let Err(e) = rt.map_runs.insert_map_run(map_run_arn, v.as_bytes()) {
        tracing::error!("cannot record Map Run {map_run_arn}: {e}");
    }
}

/// The record of Map Run `arn` (`ResourceNotFound` when there is none).
pub fn record(rt: &Runtime, arn: &str) -> Result<Map<String, Value>, RuntimeError> {
    let raw = rt
        .map_runs
        .map_run(arn)
        .map_err(|e| RuntimeError::internal(e.to_string()))?
        .ok_or_else(|| {
            RuntimeError::new("ResourceNotFound", format!("Map Run Does Not Exist: {arn}"))
        })?;
    match serde_json::from_slice(&raw) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(RuntimeError::internal(format!(
            "the record of {arn} is damaged"
        ))),
    }
}

/// The limits `UpdateMapRun` set on `map_run_arn`, if any.
pub fn limits(rt: &Runtime, map_run_arn: &str) -> Option<MapRunLimits> {
    let m = record(rt, map_run_arn).ok()?;
    let l = MapRunLimits {
        max_concurrency: m.get("maxConcurrency").and_then(Value::as_u64),
        tolerated_failure_count: m.get("toleratedFailureCount").and_then(Value::as_u64),
        tolerated_failure_percentage: m.get("toleratedFailurePercentage").and_then(Value::as_f64),
    };
    (l != MapRunLimits::default()).then_some(l)
}
