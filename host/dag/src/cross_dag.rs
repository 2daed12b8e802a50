//! The arguments of Airflow's cross-DAG operators, `TriggerDagRunOperator` and
//! `ExternalTaskSensor`, read from a task's (rendered) arguments with Airflow's keyword names,
//! and checked when a DAG file loads. The scheduler runs them (`weft-engine`): they read and
//! create runs of other DAGs, which no sandboxed plugin can.
//!
//! Poke settings (`poke_interval`, `timeout`, `mode`, `soft_fail`) are the task's sensor
//! settings ([`crate::SensorSpec`]); `TriggerDagRunOperator` waits for the run it triggered
//! every `poke_interval` when `wait_for_completion` is set.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

/// States a run or a task instance can be named by in `allowed_states` / `failed_states` /
/// `skipped_states`.
const STATES: &[&str] = &[
    "success",
    "failed",
    "skipped",
    "upstream_failed",
    "running",
    "queued",
    "scheduled",
    "up_for_retry",
    "up_for_reschedule",
    "removed",
    "none",
    "deferred",
    "restarting",
];

/// `TriggerDagRunOperator`'s arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct TriggerDagRun {
    /// The DAG to trigger.
    pub trigger_dag_id: String,
    /// The new run's id (`None`: `manual__LOGICAL_DATE`).
    pub trigger_run_id: Option<String>,
    /// The new run's conf.
    pub conf: Map<String, Value>,
    /// The new run's logical date (`None`: now).
    pub logical_date: Option<DateTime<Utc>>,
    /// Clear (re-run) the run when it exists already and has finished.
    pub reset_dag_run: bool,
    /// Wait until the run reaches one of `allowed_states` or `failed_states`.
    pub wait_for_completion: bool,
    /// Run states that end the wait successfully.
    pub allowed_states: Vec<String>,
    /// Run states that fail the task.
    pub failed_states: Vec<String>,
    /// Skip (instead of failing) when the run exists already.
    pub skip_when_already_exists: bool,
}

/// `ExternalTaskSensor`'s arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct ExternalTask {
    /// The DAG waited on.
    pub external_dag_id: String,
    /// Its tasks waited on (`None` with no group: the run itself).
    pub task_ids: Option<Vec<String>>,
    /// Its task group waited on.
    pub task_group_id: Option<String>,
    /// States that satisfy the sensor.
    pub allowed_states: Vec<String>,
    /// States that fail it.
    pub failed_states: Vec<String>,
    /// States that skip it.
    pub skipped_states: Vec<String>,
    /// Fail at once when the external DAG (or task) does not exist.
    pub check_existence: bool,
}

fn string(args: &Map<String, Value>, k: &str) -> Result<Option<String>, String> {
    match args.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim().to_string())),
        Some(other) => Err(format!("`{k}` must be a non-empty string, got {other}")),
    }
}

fn boolean(args: &Map<String, Value>, k: &str) -> Result<bool, String> {
    match args.get(k) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(true),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(false),
        Some(other) => Err(format!("`{k}` must be true or false, got {other}")),
    }
}

fn states(args: &Map<String, Value>, k: &str, default: &[&str]) -> Result<Vec<String>, String> {
    let list: Vec<String> = match args.get(k) {
        None | Some(Value::Null) => return Ok(default.iter().map(|s| s.to_string()).collect()),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("`{k}` must list state names, got {v}"))
            })
            .collect::<Result<_, _>>()?,
        Some(other) => return Err(format!("`{k}` must be a list of states, got {other}")),
    };
    for s in &list {
        // (`State.SUCCESS` as dag-factory users sometimes write it)
        let s = s.rsplit('.').next().unwrap_or(s).to_ascii_lowercase();
        if !STATES.contains(&s.as_str()) {
            return Err(format!(
                "`{k}`: unknown state `{s}` (expected one of {})",
                STATES.join(", ")
            ));
        }
    }
    Ok(list
        .iter()
        .map(|s| s.rsplit('.').next().unwrap_or(s).to_ascii_lowercase())
        .collect())
}

impl TriggerDagRun {
    /// Reads the arguments (after templating).
    pub fn parse(args: &Map<String, Value>) -> Result<Self, String> {
        let trigger_dag_id =
            string(args, "trigger_dag_id")?.ok_or("`trigger_dag_id` is required")?;
        let conf = match args.get("conf") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
                Ok(Value::Object(m)) => m,
                _ => return Err(format!("`conf` must be a mapping, got {s:?}")),
            },
            Some(other) => return Err(format!("`conf` must be a mapping, got {other}")),
        };
        let logical_date = match string(args, "logical_date")?.or(string(args, "execution_date")?) {
            None => None,
            Some(s) => Some(
                crate::parse_logical_date(&s).map_err(|e| format!("`logical_date` `{s}`: {e}"))?,
            ),
        };
        Ok(TriggerDagRun {
            trigger_dag_id,
            trigger_run_id: string(args, "trigger_run_id")?,
            conf,
            logical_date,
            reset_dag_run: boolean(args, "reset_dag_run")?,
            wait_for_completion: boolean(args, "wait_for_completion")?,
            allowed_states: states(args, "allowed_states", &["success"])?,
            failed_states: states(args, "failed_states", &["failed"])?,
            skip_when_already_exists: boolean(args, "skip_when_already_exists")?,
        })
    }
}

impl ExternalTask {
    /// Reads the arguments (after templating).
    pub fn parse(args: &Map<String, Value>) -> Result<Self, String> {
        for k in ["execution_delta", "execution_date_fn"] {
            if args.get(k).is_some_and(|v| !v.is_null()) {
                return Err(format!(
                    "`{k}` is not supported: weft's ExternalTaskSensor waits for the external DAG's run at the same logical date"
                ));
            }
        }
        let external_dag_id =
            string(args, "external_dag_id")?.ok_or("`external_dag_id` is required")?;
        let one = string(args, "external_task_id")?;
        let many = match args.get("external_task_ids") {
            None | Some(Value::Null) => None,
            Some(Value::Array(a)) => Some(
                a.iter()
                    .map(|v| {
                        v.as_str().map(str::to_string).ok_or_else(|| {
                            format!("`external_task_ids` must list task ids, got {v}")
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            Some(other) => {
                return Err(format!(
                    "`external_task_ids` must be a list of task ids, got {other}"
                ))
            }
        };
        let group = string(args, "external_task_group_id")?;
        let given = [one.is_some(), many.is_some(), group.is_some()]
            .iter()
            .filter(|b| **b)
            .count();
        if given > 1 {
            return Err(
                "give only one of `external_task_id`, `external_task_ids` and `external_task_group_id`"
                    .into(),
            );
        }
        let task_ids = one.map(|t| vec![t]).or(many);
        let default_allowed: &[&str] = &["success"];
        Ok(ExternalTask {
            external_dag_id,
            task_ids,
            task_group_id: group,
            allowed_states: states(args, "allowed_states", default_allowed)?,
            failed_states: states(args, "failed_states", &[])?,
            skipped_states: states(args, "skipped_states", &[])?,
            check_existence: boolean(args, "check_existence")?,
        })
    }
}

/// What is wrong with a cross-DAG operator's arguments as written in the DAG file, where that
/// can be told before templating (`None` for other operators or when nothing is).
pub fn check_at_load(operator: &str, args: &Map<String, Value>) -> Option<String> {
    let templated = |k: &str| {
        args.get(k)
            .and_then(Value::as_str)
            .is_some_and(|s| s.contains("{{") || s.contains("{%"))
    };
    // templated values are checked when the task runs
    let mut args = args.clone();
    args.retain(|k, _| !templated(k));
    let placeholder = |args: &mut Map<String, Value>, k: &str| {
        args.entry(k.to_string())
            .or_insert_with(|| Value::String("templated".into()));
    };
    match operator {
        crate::builtin::TRIGGER_DAG_RUN => {
            placeholder(&mut args, "trigger_dag_id");
            TriggerDagRun::parse(&args).err()
        }
        crate::builtin::EXTERNAL_TASK_SENSOR => {
            placeholder(&mut args, "external_dag_id");
            ExternalTask::parse(&args).err()
        }
        _ => None,
    }
}

/// How an `ExternalTaskSensor` poke ends, from the states it found (Airflow's order: all
/// allowed succeeds, any failed fails, any skipped skips, else it waits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every state is allowed.
    Done,
    /// One is a failed state.
    Failed(String),
    /// One is a skipped state.
    Skipped(String),
    /// Not yet.
    Wait,
}

impl ExternalTask {
    /// The verdict over the states found (empty: nothing to wait on yet).
    pub fn verdict(&self, found: &[String]) -> Verdict {
        if let Some(s) = found.iter().find(|s| self.failed_states.contains(s)) {
            return Verdict::Failed(s.clone());
        }
        if let Some(s) = found.iter().find(|s| self.skipped_states.contains(s)) {
            return Verdict::Skipped(s.clone());
        }
        if !found.is_empty() && found.iter().all(|s| self.allowed_states.contains(s)) {
            return Verdict::Done;
        }
        Verdict::Wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn trigger_arguments() {
        let t = TriggerDagRun::parse(&obj(json!({
            "trigger_dag_id": "child", "conf": {"a": 1}, "wait_for_completion": true,
            "logical_date": "2024-03-05", "failed_states": ["State.FAILED"],
        })))
        .unwrap();
        assert_eq!(t.trigger_dag_id, "child");
        assert!(t.wait_for_completion && !t.reset_dag_run);
        assert_eq!(t.allowed_states, ["success"]);
        assert_eq!(t.failed_states, ["failed"]);
        assert!(TriggerDagRun::parse(&obj(json!({}))).is_err());
        assert!(TriggerDagRun::parse(&obj(json!({"trigger_dag_id": "c", "conf": 3}))).is_err());
        assert!(TriggerDagRun::parse(&obj(
            json!({"trigger_dag_id": "c", "allowed_states": ["great"]})
        ))
        .is_err());
    }

    #[test]
    fn sensor_arguments_and_verdicts() {
        let e = ExternalTask::parse(&obj(json!({
            "external_dag_id": "up", "external_task_id": "t", "failed_states": ["failed"],
        })))
        .unwrap();
        assert_eq!(e.task_ids.as_deref(), Some(&["t".to_string()][..]));
        assert_eq!(e.verdict(&["success".into()]), Verdict::Done);
        assert_eq!(e.verdict(&["running".into()]), Verdict::Wait);
        assert_eq!(e.verdict(&[]), Verdict::Wait);
        assert_eq!(
            e.verdict(&["success".into(), "failed".into()]),
            Verdict::Failed("failed".into())
        );
        let err = ExternalTask::parse(&obj(
            json!({"external_dag_id": "up", "execution_delta": {"hours": 1}}),
        ))
        .unwrap_err();
        assert!(err.contains("execution_delta"), "{err}");
        assert!(ExternalTask::parse(&obj(json!({
            "external_dag_id": "up", "external_task_id": "a", "external_task_ids": ["b"],
        })))
        .is_err());
        assert_eq!(
            check_at_load(
                crate::builtin::EXTERNAL_TASK_SENSOR,
                &obj(json!({"external_dag_id": "{{ var.value.x }}", "execution_date_fn": "f"}))
            )
            .map(|m| m.contains("execution_date_fn")),
            Some(true)
        );
        assert_eq!(
            check_at_load(
                crate::builtin::TRIGGER_DAG_RUN,
                &obj(json!({"trigger_dag_id": "{{ params.d }}", "logical_date": "{{ ds }}"}))
            ),
            None
        );
    }
}
