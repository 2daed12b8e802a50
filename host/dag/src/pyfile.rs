//! Python DAG files (`*.py` in a DAG folder): what running one produced, and turning that into
//! the same [`Dag`] model YAML files give.
//!
//! This crate runs no Python. A [`PythonDagEvaluator`] (weft's engine implements it with the
//! `weft-airflow-py` component in the sandbox) executes the file's top level and answers with a
//! [`PyEvaluation`]: either the DAGs found, as dag-factory structures, or an import error with
//! its line and traceback. The structures go through the YAML loader ([`parse_file_of_folder`]),
//! so a Python DAG is checked exactly as a YAML one (operator map, known plugins, dates,
//! dependencies); its errors point at the Python file and the line of the DAG or task.

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

use crate::error::DagError;
use crate::load::{parse_file_of_folder, FileOutcome, FolderConfig, OperatorCheck};
use crate::model::Dag;

/// What evaluating a Python DAG file gave.
#[derive(Debug, Clone, PartialEq)]
pub enum PyEvaluation {
    /// The file ran: the DAGs it defines.
    Dags(PyDags),
    /// The file raised, looped, imported something missing or exceeded a limit.
    ImportError(PyImportError),
}

/// The DAGs a Python DAG file defines.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PyDags {
    /// dag id -> dag-factory structure (`tasks` as a list with `task_id`s).
    pub dags: serde_json::Map<String, Value>,
    /// dag id -> line of the file that created it.
    pub lines: HashMap<String, usize>,
    /// dag id -> task id -> line of the file that created the task.
    pub task_lines: HashMap<String, HashMap<String, usize>>,
}

/// Why a Python DAG file could not be imported (Airflow's "Broken DAG").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PyImportError {
    /// 1-based line of the file where it failed (0: the file as a whole, e.g. a timeout).
    pub line: usize,
    /// One line: `ModuleNotFoundError: No module named 'pandas'`.
    pub error: String,
    /// The Python traceback, when there is one.
    pub traceback: Option<String>,
}

impl PyEvaluation {
    /// Reads the parser component's output (see `plugins/python/weft-airflow-py/app.py`).
    pub fn from_output(v: &Value) -> Result<Self, String> {
        if let Some(e) = v.get("import_error") {
            return Ok(Self::ImportError(PyImportError {
                line: e.get("line").and_then(Value::as_u64).unwrap_or(0) as usize,
                error: e
                    .get("error")
                    .and_then(Value::as_str)
                    .ok_or("import_error without `error`")?
                    .to_string(),
                traceback: e
                    .get("traceback")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            }));
        }
        let dags = v
            .get("dags")
            .and_then(Value::as_object)
            .ok_or("neither `dags` nor `import_error` in the parser's output")?
            .clone();
        let lines = v
            .get("lines")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, l)| (k.clone(), l.as_u64().unwrap_or(0) as usize))
                    .collect()
            })
            .unwrap_or_default();
        let task_lines = v
            .get("task_lines")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(d, ts)| {
                        let ts = ts
                            .as_object()
                            .map(|ts| {
                                ts.iter()
                                    .map(|(t, l)| (t.clone(), l.as_u64().unwrap_or(0) as usize))
                                    .collect()
                            })
                            .unwrap_or_default();
                        (d.clone(), ts)
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Self::Dags(PyDags {
            dags,
            lines,
            task_lines,
        }))
    }
}

/// Runs a Python DAG file's top level somewhere safe (weft: the sandbox).
pub trait PythonDagEvaluator: Send + Sync {
    /// Evaluates `source`, the text of the DAG file `file`.
    fn evaluate(&self, file: &Path, source: &str) -> PyEvaluation;

    /// Evaluates `source` as a file of the DAG folder `folder` (`None`: no folder), which
    /// decides what else the file may import (the folder's `requirements.txt` packages).
    /// Defaults to [`PythonDagEvaluator::evaluate`].
    fn evaluate_in(&self, folder: Option<&Path>, file: &Path, source: &str) -> PyEvaluation {
        let _ = folder;
        self.evaluate(file, source)
    }
}

/// Whether a file name in a DAG folder is a Python DAG file candidate.
pub fn is_python_file(name: &str) -> bool {
    name.ends_with(".py")
}

/// Airflow's heuristic (`dag_discovery_safe_mode`): a Python file is only parsed when its text
/// mentions both `airflow` and `dag` (case-insensitive); other modules (helpers beside the DAG
/// files) are skipped unread by the sandbox.
pub fn looks_like_dag_file(source: &str) -> bool {
    let lower = source.to_ascii_lowercase();
    lower.contains("airflow") && lower.contains("dag")
}

/// Parse a Python DAG file: evaluate it, then load its DAGs as the YAML loader loads
/// dag-factory structures. `None` when no evaluator is available (the caller says so).
pub(crate) fn parse_python_file(
    file: &Path,
    source: &str,
    config: &FolderConfig,
    check: &dyn OperatorCheck,
    evaluator: &dyn PythonDagEvaluator,
) -> FileOutcome {
    let found = match evaluator.evaluate_in(config.defaults_root.as_deref(), file, source) {
        PyEvaluation::ImportError(e) => {
            return FileOutcome::Parsed(
                Vec::new(),
                vec![DagError {
                    file: file.to_path_buf(),
                    line: e.line,
                    path: String::new(),
                    dag_id: None,
                    traceback: e.traceback.map(String::into_boxed_str),
                    reason: e.error,
                }],
            );
        }
        PyEvaluation::Dags(d) => d,
    };
    if found.dags.is_empty() {
        return FileOutcome::NotDagFile(DagError {
            file: file.to_path_buf(),
            line: 0,
            path: String::new(),
            dag_id: None,
            traceback: None,
            reason: "defines no DAG: not a DAG file".into(),
        });
    }
    // JSON is YAML: the loader reads the structures as it reads a dag-factory file; only the
    // operator map applies (dag-factory's defaults.yml files are for YAML DAG files)
    let text = Value::Object(found.dags.clone()).to_string();
    let cfg = FolderConfig {
        operators: config.operators.clone(),
        defaults_root: None,
        scheduler: config.scheduler,
    };
    let (mut dags, mut errors) = match parse_file_of_folder(file, &text, &cfg, check) {
        FileOutcome::Parsed(d, e) => (d, e),
        FileOutcome::NotDagFile(e) => (Vec::new(), vec![e]),
    };
    for d in &mut dags {
        place(d, &found);
    }
    for e in &mut errors {
        // lines of the generated text mean nothing to the user: point at the DAG's line
        e.line = e
            .dag_id
            .as_ref()
            .and_then(|id| found.lines.get(id))
            .copied()
            .unwrap_or(0);
    }
    FileOutcome::Parsed(dags, errors)
}

/// Give a DAG and its tasks the lines of the Python file that created them.
fn place(d: &mut Dag, found: &PyDags) {
    d.line = found.lines.get(&d.dag_id).copied().unwrap_or(0);
    let lines = found.task_lines.get(&d.dag_id);
    for (id, t) in d.tasks.iter_mut() {
        t.line = lines.and_then(|l| l.get(id)).copied().unwrap_or(d.line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_the_parser_output() {
        let e = PyEvaluation::from_output(&json!({"import_error": {"line": 3, "error": "ValueError: x", "traceback": "Traceback..."}})).unwrap();
        assert!(
            matches!(e, PyEvaluation::ImportError(ref i) if i.line == 3 && i.error == "ValueError: x")
        );
        let d = PyEvaluation::from_output(&json!({"dags": {"a": {"tasks": []}}, "lines": {"a": 7}, "task_lines": {"a": {"t": 9}}})).unwrap();
        let PyEvaluation::Dags(d) = d else { panic!() };
        assert_eq!(d.lines["a"], 7);
        assert_eq!(d.task_lines["a"]["t"], 9);
        assert!(PyEvaluation::from_output(&json!({"nope": 1})).is_err());
    }

    #[test]
    fn safe_mode_heuristic() {
        assert!(looks_like_dag_file("from airflow import DAG"));
        assert!(!looks_like_dag_file("def helper(): return 1"));
    }
}
