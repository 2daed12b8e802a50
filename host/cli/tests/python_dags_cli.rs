//! Python DAG files through the `weft` binary: `weft dag test ID DATE --dags DIR --json` gives
//! the same report for a `.py` DAG as for the same DAG in YAML, `weft dag validate FILE` checks
//! a `.py` file, and `weft dag list --json` reports broken files as `import_errors`.
//!
//! Needs echo.wasm (`make guests`) and weft-airflow-py.wasm (`scripts/polyglot.sh`), from
//! `WEFT_PLUGINS_DIR` or `target/plugins`. The store under `target/test-home-pydags-cli` keeps
//! the parser's precompiled code across runs.

mod common;

use common::{folder, install_plugin, plugin, repo, stderr, stdout, weft, Backend};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A home with echo and the parser installed (once per run).
fn home() -> &'static Path {
    static HOME: OnceLock<PathBuf> = OnceLock::new();
    HOME.get_or_init(|| {
        let home = repo().join("target/test-home-pydags-cli");
        for p in ["echo.wasm", "weft-airflow-py.wasm"] {
            let o = weft(
                &home,
                &["plugin", "install", "--force", plugin(p).to_str().unwrap()],
            );
            assert!(o.status.success(), "install {p}: {}", stderr(&o));
        }
        home
    })
}

const MAP: &str = "operators:\n  airflow.operators.bash.BashOperator: echo\n";

const YAML_DAG: &str = r#"
nightly:
  schedule: "@daily"
  start_date: 2024-01-01
  catchup: false
  default_args:
    retries: 1
  tasks:
    start:
      operator: airflow.operators.empty.EmptyOperator
    say:
      operator: airflow.operators.bash.BashOperator
      bash_command: "run {{ ds }}"
      dependencies: [start]
    done:
      operator: airflow.operators.empty.EmptyOperator
      dependencies: [say]
"#;

const PY_DAG: &str = r#"
from datetime import datetime
from airflow import DAG
from airflow.operators.empty import EmptyOperator
from airflow.operators.bash import BashOperator

with DAG("nightly", schedule="@daily", start_date=datetime(2024, 1, 1), catchup=False,
         default_args={"retries": 1}) as dag:
    start = EmptyOperator(task_id="start")
    say = BashOperator(task_id="say", bash_command="run {{ ds }}")
    done = EmptyOperator(task_id="done")
    start >> say >> done
"#;

/// The report without timings (they differ run to run).
fn report(dir: &Path) -> serde_json::Value {
    let o = weft(
        home(),
        &[
            "dag",
            "test",
            "nightly",
            "2024-03-05",
            "--dags",
            dir.to_str().unwrap(),
            "--json",
        ],
    );
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    let mut v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    for t in v["tasks"].as_object_mut().unwrap().values_mut() {
        t.as_object_mut().unwrap().remove("duration_s");
    }
    v
}

#[test]
fn dag_test_json_is_the_same_for_python_and_yaml() {
    let py = folder(&[("nightly.py", PY_DAG), ("weft.yaml", MAP)]);
    let yaml = folder(&[("nightly.yaml", YAML_DAG), ("weft.yaml", MAP)]);
    let (p, y) = (report(py.path()), report(yaml.path()));
    assert_eq!(p, y);
    assert_eq!(p["state"], "success");
    assert_eq!(p["tasks"]["say"]["xcom"]["bash_command"], "run 2024-03-05");
}

#[test]
fn validate_checks_a_python_file() {
    let d = folder(&[("nightly.py", PY_DAG), ("weft.yaml", MAP)]);
    let file = d.path().join("nightly.py");
    let o = weft(home(), &["dag", "validate", file.to_str().unwrap()]);
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    // unmapped operator: a clear error naming the class and the map entry
    let d = folder(&[("nightly.py", PY_DAG)]);
    let file = d.path().join("nightly.py");
    let o = weft(home(), &["dag", "validate", file.to_str().unwrap()]);
    assert!(!o.status.success());
    let all = format!("{}{}", stdout(&o), stderr(&o));
    assert!(
        all.contains("airflow.operators.bash.BashOperator") && all.contains("weft.yaml"),
        "{all}"
    );
}

#[test]
fn dag_list_json_reports_import_errors_and_keeps_the_good_dags() {
    let d = folder(&[
        ("nightly.py", PY_DAG),
        ("weft.yaml", MAP),
        (
            "broken.py",
            "from airflow import DAG\n\nimport not_a_module\n",
        ),
        (
            "thief.py",
            "from airflow import DAG\nprint(open('/etc/passwd').read())\n",
        ),
    ]);
    let o = weft(
        home(),
        &[
            "dag",
            "list",
            "--dags",
            d.path().to_str().unwrap(),
            "--json",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["dags"][0]["dag_id"], "nightly");
    let errs = v["import_errors"].as_array().unwrap();
    assert_eq!(errs.len(), 2, "{errs:?}");
    let broken = errs
        .iter()
        .find(|e| e["file"].as_str().unwrap().ends_with("broken.py"))
        .unwrap();
    assert_eq!(broken["line"], 3);
    assert!(broken["error"]
        .as_str()
        .unwrap()
        .contains("No module named 'not_a_module'"));
    assert!(broken["traceback"].as_str().unwrap().contains("Traceback"));
    let thief = errs
        .iter()
        .find(|e| e["file"].as_str().unwrap().ends_with("thief.py"))
        .unwrap();
    assert!(!thief.to_string().contains("root:x:0"), "{thief}");
}

fn the_server_lists_python_import_errors_and_dags(backend: &Backend) {
    // its own home: the server holds its database while the other tests run the CLI
    let home = repo().join("target/test-home-pydags-server");
    install_plugin(&home, "weft-airflow-py.wasm");
    let work = tempfile::tempdir().unwrap();
    let dags = work.path().join("dags");
    std::fs::create_dir_all(&dags).unwrap();
    std::fs::write(
        dags.join("only.py"),
        "from airflow import DAG\nfrom airflow.operators.empty import EmptyOperator\nwith DAG('py_only', schedule=None):\n    EmptyOperator(task_id='a')\n",
    )
    .unwrap();
    std::fs::write(
        dags.join("broken.py"),
        "from airflow import DAG\nraise RuntimeError('broken on purpose')\n",
    )
    .unwrap();
    let server =
        common::start_weft_server_on(backend, &home, work.path(), true, &[("WEFT_DAGS", &dags)]);
    let get = |path: &str| -> serde_json::Value {
        let url = format!("http://127.0.0.1:{}{path}", server.port);
        let mut r = ureq::get(&url).call().unwrap();
        serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap()
    };
    let v = get("/api/v2/importErrors");
    assert_eq!(v["total_entries"], 1, "{v}");
    let e = &v["import_errors"][0];
    assert!(
        e["filename"].as_str().unwrap().ends_with("broken.py"),
        "{e}"
    );
    let trace = e["stack_trace"].as_str().unwrap();
    assert!(
        trace.contains("RuntimeError: broken on purpose") && trace.contains("Traceback"),
        "{trace}"
    );
    let v = get("/api/v2/dags");
    let ids: Vec<_> = v["dags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["dag_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, ["py_only"], "{v}");
}
on_both_backends!(the_server_lists_python_import_errors_and_dags);

const CALLABLES: &str = r#"
from datetime import datetime
from airflow.decorators import dag, task
from airflow.operators.python import PythonOperator, ShortCircuitOperator
from airflow.operators.empty import EmptyOperator

def greet(name, ds=None, params=None):
    print("hello from the sandbox")
    return f"{name}@{ds}/{params['who']}"

def steal():
    return open("/etc/passwd").read()

@dag(schedule=None, start_date=datetime(2024, 1, 1), params={"who": "ops"})
def callables():
    @task
    def extract():
        return {"a": 1, "b": 2}

    @task(multiple_outputs=True)
    def transform(d: dict):
        return {"total": sum(d.values()), "n": len(d)}

    @task
    def load(total, n):
        return total * 10 + n

    t = transform(extract())
    load(t["total"], t["n"])

    @task.branch
    def pick(**context):
        return "left" if context["ds"] == "2024-03-05" else "right"

    pick() >> [EmptyOperator(task_id="left"), EmptyOperator(task_id="right")]

    @task
    def numbers():
        return [1, 2, 3]

    @task
    def double(x):
        return x * 2

    double.expand(x=numbers())
    PythonOperator(task_id="greet", python_callable=greet, op_args=["weft"])
    ShortCircuitOperator(task_id="gate", python_callable=lambda: False) >> EmptyOperator(task_id="after_gate")
    PythonOperator(task_id="thief", python_callable=steal, retries=0)

callables()
"#;

#[test]
fn python_callables_run_in_the_sandbox_with_xcoms_branches_and_mapping() {
    let d = folder(&[("callables.py", CALLABLES)]);
    let o = weft(
        home(),
        &[
            "dag",
            "test",
            "callables",
            "2024-03-05",
            "--dags",
            d.path().to_str().unwrap(),
            "--json",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let t = &v["tasks"];
    let state = |id: &str| t[id]["state"].as_str().unwrap_or("?").to_string();
    assert_eq!(
        t["extract"]["xcom"],
        serde_json::json!({"a": 1, "b": 2}),
        "{v}"
    );
    assert_eq!(t["transform"]["xcom"]["total"], 3, "{v}");
    assert_eq!(
        t["load"]["xcom"], 32,
        "multiple_outputs keys reach the callable: {v}"
    );
    // as in Airflow, a branch's answer picks the path and is not pushed as its XCom
    assert_eq!(t["pick"]["state"], "success", "{v}");
    assert!(t["pick"]["xcom"].is_null(), "{v}");
    assert_eq!(
        (state("left"), state("right")),
        ("success".into(), "skipped".into())
    );
    for (i, want) in [2, 4, 6].iter().enumerate() {
        assert_eq!(t[format!("double[{i}]")]["xcom"], *want, "{v}");
    }
    assert_eq!(t["greet"]["xcom"], "weft@2024-03-05/ops", "{v}");
    assert_eq!(state("after_gate"), "skipped", "{v}");
    // the attacker's callable has no grant: the host's files do not exist for it
    assert_eq!(state("thief"), "failed", "{v}");
    assert!(!v.to_string().contains("root:x:0"));
    let err = stderr(&o);
    assert!(err.contains("thief") && !err.contains("root:x:0"), "{err}");
    assert_eq!(v["state"], "failed");
}
