//! `*.py` files in a DAG folder, with a stand-in evaluator (no sandbox): which files reach the
//! evaluator, how its DAG structures become the same model as YAML, and how import errors and
//! loader errors point at the Python file.

use std::path::Path;
use std::sync::Mutex;

use serde_json::json;
use weft_dag::{load_dag_file, load_folder, OperatorCheck, PyEvaluation, PythonDagEvaluator};

/// Answers with a fixed evaluation per file name and remembers what it was asked.
struct Stub {
    asked: Mutex<Vec<String>>,
}

impl PythonDagEvaluator for Stub {
    fn evaluate(&self, file: &Path, _source: &str) -> PyEvaluation {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        self.asked.lock().unwrap().push(name.clone());
        let v = match name.as_str() {
            "good.py" => json!({
                "dags": {"py_dag": {"schedule": "@daily", "start_date": "2024-01-01T00:00:00+00:00",
                    "tasks": [
                        {"task_id": "a", "operator": "airflow.operators.empty.EmptyOperator"},
                        {"task_id": "b", "operator": "echo", "task_group_name": "g", "dependencies": ["a"]}
                    ],
                    "task_groups": {"g": {}}}},
                "lines": {"py_dag": 5},
                "task_lines": {"py_dag": {"a": 6, "g.b": 8}}
            }),
            "bad_operator.py" => json!({
                "dags": {"bad": {"tasks": [{"task_id": "x", "operator": "airflow.operators.bash.BashOperator"}]}},
                "lines": {"bad": 12}
            }),
            "empty.py" => json!({"dags": {}}),
            _ => {
                json!({"import_error": {"line": 2, "error": "ImportError: nope", "traceback": "Traceback (most recent call last):\n..."}})
            }
        };
        PyEvaluation::from_output(&v).unwrap()
    }
}

struct Check<'a>(&'a Stub);

impl OperatorCheck for Check<'_> {
    fn is_known_operator(&self, op: &str) -> bool {
        op == "echo"
    }
    fn python_evaluator(&self) -> Option<&dyn PythonDagEvaluator> {
        Some(self.0)
    }
}

fn stub() -> Stub {
    Stub {
        asked: Mutex::new(Vec::new()),
    }
}

#[test]
fn python_files_become_dags_like_yaml_ones() {
    let dir = tempfile::tempdir().unwrap();
    let from_airflow = "from airflow import DAG\n";
    for f in ["good.py", "bad_operator.py", "empty.py", "broken.py"] {
        std::fs::write(dir.path().join(f), from_airflow).unwrap();
    }
    std::fs::write(dir.path().join("helpers.py"), "def f():\n    return 1\n").unwrap();
    std::fs::write(
        dir.path().join("y.yaml"),
        "y:\n  tasks:\n    t:\n      operator: echo\n",
    )
    .unwrap();
    let s = stub();
    let load = load_folder(dir.path(), &Check(&s));
    let mut asked = s.asked.lock().unwrap().clone();
    asked.sort();
    // the helper module never reaches the evaluator
    assert_eq!(
        asked,
        ["bad_operator.py", "broken.py", "empty.py", "good.py"]
    );
    let ids: Vec<_> = load.dags.iter().map(|d| d.dag_id.as_str()).collect();
    assert_eq!(ids, ["py_dag", "y"]);
    let d = &load.dags[0];
    assert!(d.file.ends_with("good.py"));
    assert_eq!(d.line, 5);
    assert_eq!(d.tasks["a"].line, 6);
    assert_eq!(d.tasks["g.b"].line, 8);
    assert_eq!(d.tasks["g.b"].upstream, ["a"]);
    assert_eq!(d.tasks["a"].operator, weft_dag::builtin::EMPTY);
    // loader errors point at the DAG's line in the Python file
    let bad = load
        .errors
        .iter()
        .find(|e| e.file.ends_with("bad_operator.py"))
        .unwrap();
    assert_eq!(bad.line, 12);
    assert!(bad.reason.contains("BashOperator") && bad.reason.contains("weft.yaml"));
    // import errors keep their line and traceback
    let broken = load
        .errors
        .iter()
        .find(|e| e.file.ends_with("broken.py"))
        .unwrap();
    assert_eq!(
        (broken.line, broken.reason.as_str()),
        (2, "ImportError: nope")
    );
    assert!(broken
        .traceback
        .as_deref()
        .unwrap()
        .starts_with("Traceback"));
    // a file that defines no DAG is skipped, not an error
    assert!(load.skipped.iter().any(|e| e.file.ends_with("empty.py")));
    assert!(load.skipped.iter().any(|e| e.file.ends_with("helpers.py")));
}

#[test]
fn without_an_evaluator_python_files_are_skipped_with_a_note() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("d.py"), "from airflow import DAG\n").unwrap();
    let load = load_folder(dir.path(), &|_: &str| true);
    assert!(load.dags.is_empty() && load.errors.is_empty());
    assert!(load.skipped[0].reason.contains("no Python DAG parser"));
}

#[test]
fn one_python_file_validates_alone() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("good.py");
    std::fs::write(&f, "from airflow import DAG\n").unwrap();
    let s = stub();
    let (dags, errors) = load_dag_file(&f, &Check(&s));
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(dags[0].dag_id, "py_dag");
}
