//! Operators weft provides itself, with no plugin: Airflow's `EmptyOperator` / `DummyOperator`
//! (succeed at once, as Airflow's do) and Python callables (`decorator:` TaskFlow tasks and
//! unmapped `PythonOperator`s). Callables of Python DAG files are run by the executor in the
//! sandbox (see `weft_engine::py_dags`), and so are those of YAML files whose callable lives in
//! a `.py` file of the DAG's folder ([`crate::run::PythonCallable`]); a YAML callable weft cannot
//! locate fails when run with [`PYTHON_NOT_RUN`];
//! and the cross-DAG operators `TriggerDagRunOperator` and `ExternalTaskSensor`, which the
//! persistent scheduler runs (their arguments: [`crate::cross_dag`]).
//!
//! A DAG folder's operator map (`weft.yaml`) is consulted first, so a user can still send any of
//! these classes to a plugin of their own.

use serde_json::Value;

use crate::run::{TaskFailure, TaskInvocation};

/// Operator reference of the built-in empty operator.
pub const EMPTY: &str = "weft:builtin:empty";
/// Operator reference of a Python callable task, followed by the decorator or class it names
/// (`weft:builtin:python:airflow.decorators.task`).
pub const PYTHON: &str = "weft:builtin:python:";
/// Error name of a Python callable task when run.
pub const PYTHON_NOT_RUN: &str = "Weft.PythonCallableNotSupported";
/// Operator reference of Airflow's `TriggerDagRunOperator` (see [`crate::cross_dag`]).
pub const TRIGGER_DAG_RUN: &str = "weft:builtin:trigger_dagrun";
/// Operator reference of Airflow's `ExternalTaskSensor` (see [`crate::cross_dag`]).
pub const EXTERNAL_TASK_SENSOR: &str = "weft:builtin:external_task_sensor";
/// Error name of a cross-DAG operator run outside the persistent scheduler.
pub const NEEDS_SCHEDULER: &str = "Weft.NeedsScheduler";

/// `TriggerDagRunOperator` under every import path it has had (Airflow 1, 2 and 3).
const TRIGGER_CLASSES: &[&str] = &[
    "airflow.operators.trigger_dagrun.TriggerDagRunOperator",
    "airflow.operators.dagrun_operator.TriggerDagRunOperator",
    "airflow.providers.standard.operators.trigger_dagrun.TriggerDagRunOperator",
];

/// `ExternalTaskSensor` under every import path it has had (Airflow 1, 2 and 3).
const EXTERNAL_TASK_CLASSES: &[&str] = &[
    "airflow.sensors.external_task.ExternalTaskSensor",
    "airflow.sensors.external_task_sensor.ExternalTaskSensor",
    "airflow.providers.standard.sensors.external_task.ExternalTaskSensor",
];

/// Airflow's empty operators, under every import path they have had.
const EMPTY_CLASSES: &[&str] = &[
    "airflow.operators.empty.EmptyOperator",
    "airflow.operators.dummy.DummyOperator",
    "airflow.operators.dummy_operator.DummyOperator",
    "airflow.providers.standard.operators.empty.EmptyOperator",
    "airflow.sdk.EmptyOperator",
];

/// Airflow's Python operators (a `python_callable` to run), under their import paths.
const PYTHON_CLASSES: &[&str] = &[
    "airflow.operators.python.PythonOperator",
    "airflow.operators.python_operator.PythonOperator",
    "airflow.providers.standard.operators.python.PythonOperator",
    "airflow.operators.python.BranchPythonOperator",
    "airflow.operators.python_operator.BranchPythonOperator",
    "airflow.providers.standard.operators.python.BranchPythonOperator",
    "airflow.operators.python.ShortCircuitOperator",
    "airflow.providers.standard.operators.python.ShortCircuitOperator",
    "airflow.sensors.python.PythonSensor",
    "airflow.sensors.python_sensor.PythonSensor",
    "airflow.providers.standard.sensors.python.PythonSensor",
];

/// The built-in operator an (unmapped) Airflow class path stands for.
pub fn for_class(class_path: &str) -> Option<String> {
    if EMPTY_CLASSES.contains(&class_path) {
        Some(EMPTY.to_string())
    } else if TRIGGER_CLASSES.contains(&class_path) {
        Some(TRIGGER_DAG_RUN.to_string())
    } else if EXTERNAL_TASK_CLASSES.contains(&class_path) {
        Some(EXTERNAL_TASK_SENSOR.to_string())
    } else if PYTHON_CLASSES.contains(&class_path) {
        Some(python(class_path))
    } else {
        None
    }
}

/// The operator reference of a Python callable task declared through `source` (a decorator
/// or an operator class path).
pub fn python(source: &str) -> String {
    format!("{PYTHON}{source}")
}

/// Whether `decorator:` names a TaskFlow decorator (`airflow.decorators.task`,
/// `airflow.sdk.task`, `task.branch`, ...).
pub fn is_task_decorator(path: &str) -> bool {
    let parts: Vec<&str> = path.split('.').collect();
    parts.first() == Some(&"airflow") && parts.contains(&"task")
}

/// Whether `operator` is run by weft itself.
pub fn is_builtin(operator: &str) -> bool {
    operator == EMPTY || operator.starts_with(PYTHON) || is_cross_dag(operator)
}

/// Whether `operator` reads or creates runs of other DAGs (run by the persistent scheduler).
pub fn is_cross_dag(operator: &str) -> bool {
    operator == TRIGGER_DAG_RUN || operator == EXTERNAL_TASK_SENSOR
}

/// Run a built-in operator; `None` when `ti` is not one.
pub fn execute(ti: &TaskInvocation) -> Option<Result<Value, TaskFailure>> {
    if ti.operator == EMPTY {
        return Some(Ok(Value::Null));
    }
    if is_cross_dag(&ti.operator) {
        return Some(Err(TaskFailure::new(
            NEEDS_SCHEDULER,
            format!(
                "task `{}` reads or triggers runs of other DAGs: it runs in weft's persistent scheduler (`weft dag trigger`, `weft dag scheduler`, `weft server`), not in a one-off `weft dag test`",
                ti.task_id
            ),
        )));
    }
    let source = ti.operator.strip_prefix(PYTHON)?;
    if ti.source_file.is_some() {
        // a callable of a Python DAG file: the executor runs it in the sandbox
        return None;
    }
    Some(Err(TaskFailure::new(
        PYTHON_NOT_RUN,
        python_cause(ti, source),
    )))
}

/// Why a Python callable task cannot run, naming the callable and what would serve it.
fn python_cause(ti: &TaskInvocation, source: &str) -> String {
    let args = &ti.arguments;
    let s = |k: &str| args.get(k).and_then(Value::as_str);
    let callable = match (
        s("python_callable"),
        s("python_callable_name"),
        s("python_callable_file"),
    ) {
        (Some(c), _, _) => format!("`{c}`"),
        (None, Some(n), Some(f)) => format!("`{n}` from `{f}`"),
        (None, Some(n), None) => format!("`{n}`"),
        _ => "(none given)".to_string(),
    };
    let via = if is_task_decorator(source) {
        format!("decorator `{source}`")
    } else {
        format!("operator `{source}`")
    };
    format!(
        "task `{}` calls the Python callable {callable} ({via}), which weft cannot locate: name it as `python_callable: MODULE.FUNCTION` (MODULE.py in the DAG file's folder) or with `python_callable_name` + `python_callable_file`, map the operator to a plugin in the DAG folder's weft.yaml, or use a plugin operator",
        ti.task_id
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_and_decorators() {
        assert_eq!(
            for_class("airflow.operators.dummy_operator.DummyOperator").as_deref(),
            Some(EMPTY)
        );
        let py = for_class("airflow.operators.python.PythonOperator").unwrap();
        assert!(is_builtin(&py) && py.ends_with("PythonOperator"));
        assert_eq!(for_class("airflow.operators.bash.BashOperator"), None);
        for c in TRIGGER_CLASSES {
            assert_eq!(for_class(c).as_deref(), Some(TRIGGER_DAG_RUN));
        }
        for c in EXTERNAL_TASK_CLASSES {
            assert_eq!(for_class(c).as_deref(), Some(EXTERNAL_TASK_SENSOR));
        }
        assert!(is_task_decorator("airflow.decorators.task"));
        assert!(is_task_decorator("airflow.sdk.definitions.decorators.task"));
        assert!(!is_task_decorator("mymod.task"));
    }
}
