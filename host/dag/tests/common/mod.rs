//! Shared helpers for the integration tests: a fake executor that behaves like weft's real
//! `echo` (returns its input) and `fail` (fails with its `error`/`cause`) plugins.

#![allow(dead_code)]

use serde_json::Value;
use weft_dag::{TaskFailure, TaskInvocation};

/// Runs `echo` and `fail` like the real plugins do.
pub fn fake_exec(ti: &TaskInvocation) -> Result<Value, TaskFailure> {
    match ti.operator.as_str() {
        "echo" => Ok(ti.arguments.clone()),
        "fail" => {
            let s = |k: &str, d: &str| {
                ti.arguments
                    .get(k)
                    .and_then(Value::as_str)
                    .unwrap_or(d)
                    .to_string()
            };
            Err(TaskFailure::new(
                s("error", "States.TaskFailed"),
                s("cause", ""),
            ))
        }
        other => Err(TaskFailure::new(
            "Weft.UnknownOperator",
            format!("no plugin {other}"),
        )),
    }
}
