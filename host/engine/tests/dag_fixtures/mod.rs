//! DAG fixtures of the scheduler's integration tests: DAGs parsed from inline YAML (any operator
//! name accepted), and an executor that stands in for the plugins (`echo` returns its rendered
//! arguments, `fail` fails).

#![allow(dead_code)]

use std::path::Path;

use serde_json::Value;
use weft_dag::{parse_dag_file, AnyOperator, Dag, FolderConfig, TaskFailure, TaskInvocation};
use weft_engine::scheduler::Plain;

/// What the stand-in executor runs for each try.
pub type Exec = Box<dyn Fn(&TaskInvocation) -> Result<Value, TaskFailure> + Sync>;

/// The DAGs of one inline YAML file, which must load without errors.
pub fn dags(yaml: &str) -> Vec<Dag> {
    let (dags, errors) = parse_dag_file(
        Path::new("t.yaml"),
        yaml,
        &FolderConfig::default(),
        &AnyOperator,
    );
    assert!(errors.is_empty(), "{errors:?}");
    dags
}

/// `fail` fails with `Boom`; every other operator returns its rendered arguments, like the
/// echo plugin.
pub fn echo_or_fail() -> Plain<Exec> {
    Plain(Box::new(|ti: &TaskInvocation| {
        if ti.operator == "fail" {
            Err(TaskFailure::new("Boom", "failed on purpose"))
        } else {
            Ok(ti.arguments.clone())
        }
    }))
}
