//! Python DAG files parsed in the sandbox by the `weft-airflow-py` component: the DAG model
//! they give (TaskFlow XComs, branching, mapping, task groups, `>>` / `chain`, Airflow 3's
//! `airflow.sdk`) and what hostile files get (an import error, never a hung or owned process).
//!
//! The component comes from `target/plugins` (built by `scripts/polyglot.sh`; `WEFT_PLUGINS_DIR`
//! is tried first). It is installed into a store under `target/test-home-pydags`, so its
//! precompiled code is cached across runs; each test parses files under its own temporary
//! folder, so parse results cached by path and content never hide a parse.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use weft_dag::{load_folder, ExpandSource, FolderLoad, PyEvaluation, PythonDagEvaluator};
use weft_engine::py_dags::{SandboxDagParser, WithPythonDags, PARSER_PLUGIN};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn component() -> PathBuf {
    let name = format!("{PARSER_PLUGIN}.wasm");
    let candidates = [
        std::env::var_os("WEFT_PLUGINS_DIR").map(|d| PathBuf::from(d).join(&name)),
        Some(root().join("target/plugins").join(&name)),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("{name} is missing: run scripts/polyglot.sh (builds it into target/plugins)")
        })
}

/// The test store, with the parser installed (once per run).
fn home() -> &'static Path {
    static HOME: OnceLock<PathBuf> = OnceLock::new();
    HOME.get_or_init(|| {
        let home = std::env::var_os("WEFT_TEST_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| root().join("target/test-home-pydags"));
        let store = weft_store::PluginStore::open(&home).expect("open the test store");
        weft_plugins::install_path(
            &store,
            &component(),
            &weft_plugins::InstallOptions { force: true },
        )
        .expect("install the parser");
        home
    })
}

/// One parser (one sandbox, one compile) shared by every test.
fn parser() -> Arc<SandboxDagParser> {
    static P: OnceLock<Arc<SandboxDagParser>> = OnceLock::new();
    P.get_or_init(|| Arc::new(SandboxDagParser::new(home(), Duration::from_secs(5))))
        .clone()
}

fn load_files(files: &[(&str, &str)]) -> (tempfile::TempDir, FolderLoad) {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let check = WithPythonDags {
        check: |_: &str| true,
        parser: parser(),
    };
    let load = load_folder(dir.path(), &check);
    (dir, load)
}

fn ups(load: &FolderLoad, dag: &str, task: &str) -> Vec<String> {
    let d = load.dags.iter().find(|d| d.dag_id == dag).expect("dag");
    let mut u = d.tasks.get(task).expect("task").upstream.clone();
    u.sort();
    u
}

const TASKFLOW_ETL: &str = r#"
import json
import pendulum
from datetime import timedelta
from airflow.decorators import dag, task

@dag(schedule="@daily", start_date=pendulum.datetime(2021, 1, 1, tz="UTC"), catchup=False,
     tags=["example"], default_args={"retries": 2, "retry_delay": timedelta(minutes=5)})
def tutorial_taskflow_api():
    @task()
    def extract():
        return json.loads('{"1001": 301.27, "1002": 433.21}')

    @task(multiple_outputs=True)
    def transform(order_data_dict: dict):
        return {"total_order_value": sum(order_data_dict.values())}

    @task()
    def load(total_order_value: float):
        print(f"Total order value is: {total_order_value:.2f}")

    order_data = extract()
    order_summary = transform(order_data)
    load(order_summary["total_order_value"])

tutorial_taskflow_api()
"#;

#[test]
fn taskflow_etl_passes_xcoms_and_keeps_the_dag_settings() {
    let (_d, load) = load_files(&[("etl.py", TASKFLOW_ETL)]);
    assert!(load.errors.is_empty(), "{:?}", load.errors);
    let dag = &load.dags[0];
    assert_eq!(dag.dag_id, "tutorial_taskflow_api");
    assert_eq!(dag.tags, vec!["example"]);
    assert!(!dag.catchup);
    assert_eq!(
        dag.start_date.unwrap().to_rfc3339(),
        "2021-01-01T00:00:00+00:00"
    );
    assert_eq!(
        dag.tasks.keys().collect::<Vec<_>>(),
        ["extract", "transform", "load"]
    );
    let t = &dag.tasks["transform"];
    assert_eq!(t.retries, 2);
    assert_eq!(t.retry_delay, Duration::from_secs(300));
    assert!(t.multiple_outputs);
    assert_eq!(t.arguments["op_args"], serde_json::json!(["+extract"]));
    assert_eq!(
        ups(&load, "tutorial_taskflow_api", "transform"),
        ["extract"]
    );
    assert_eq!(ups(&load, "tutorial_taskflow_api", "load"), ["transform"]);
    assert_eq!(
        dag.tasks["load"].arguments["op_args"],
        serde_json::json!(["+transform['total_order_value']"])
    );
    // lines point into the Python file
    assert_eq!(dag.tasks["extract"].line, 22);
    assert!(dag.file.ends_with("etl.py"));
}

#[test]
fn branching_groups_chain_and_mapping() {
    let src = r#"
from datetime import datetime
from airflow import DAG
from airflow.operators.empty import EmptyOperator
from airflow.operators.python import BranchPythonOperator, ShortCircuitOperator
from airflow.operators.bash import BashOperator
from airflow.decorators import task, task_group
from airflow.utils.task_group import TaskGroup
from airflow.models.baseoperator import chain, cross_downstream
from airflow.utils.trigger_rule import TriggerRule

def choose(**context):
    return "left"

with DAG("shapes", schedule=None, start_date=datetime(2024, 1, 1), params={"n": 3}) as dag:
    start = EmptyOperator(task_id="start")
    pick = BranchPythonOperator(task_id="pick", python_callable=choose)
    left = BashOperator(task_id="left", bash_command="echo {{ ds }} {{ var.value.x }}")
    right = EmptyOperator(task_id="right")
    join = EmptyOperator(task_id="join", trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS)
    start >> pick >> [left, right] >> join

    with TaskGroup("section", tooltip="a group") as section:
        a = EmptyOperator(task_id="a")
        with TaskGroup("inner") as inner:
            b = EmptyOperator(task_id="b")
        a >> inner
    join >> section

    @task_group
    def per_file():
        @task
        def fetch():
            return 1
        @task
        def check(x):
            return x
        check(fetch())
    g1 = per_file()
    g2 = per_file()
    section >> g1
    chain(g1, g2)

    @task
    def numbers():
        return [1, 2, 3]
    @task
    def add(x, y):
        return x + y
    added = add.partial(y=10).expand(x=numbers())
    gate = ShortCircuitOperator(task_id="gate", python_callable=lambda: True)
    e1 = EmptyOperator(task_id="e1")
    e2 = EmptyOperator(task_id="e2")
    cross_downstream([added, gate], [e1, e2])
"#;
    let map = "operators:\n  airflow.operators.bash.BashOperator: echo\n";
    let (_d, load) = load_files(&[("shapes.py", src), ("weft.yaml", map)]);
    assert!(load.errors.is_empty(), "{:?}", load.errors);
    let dag = &load.dags[0];
    assert_eq!(dag.params["n"], 3);
    assert!(dag.tasks["pick"].branch);
    assert_eq!(ups(&load, "shapes", "left"), ["pick"]);
    assert_eq!(ups(&load, "shapes", "join"), ["left", "right"]);
    assert_eq!(
        dag.tasks["join"].trigger_rule.as_str(),
        "none_failed_min_one_success"
    );
    // templates stay strings (rendered at run time under the task's grant)
    assert_eq!(
        dag.tasks["left"].arguments["bash_command"],
        "echo {{ ds }} {{ var.value.x }}"
    );
    // task groups: prefixed ids, nested groups, group-to-group edges
    assert!(dag.tasks.contains_key("section.inner.b"));
    assert_eq!(ups(&load, "shapes", "section.a"), ["join"]);
    assert_eq!(ups(&load, "shapes", "section.inner.b"), ["section.a"]);
    assert_eq!(ups(&load, "shapes", "per_file.fetch"), ["section.inner.b"]);
    assert_eq!(
        ups(&load, "shapes", "per_file__1.fetch"),
        ["per_file.check"]
    );
    assert_eq!(ups(&load, "shapes", "per_file.check"), ["per_file.fetch"]);
    assert!(dag.task_groups.contains_key("section.inner"));
    // mapping over an upstream's output
    let exp = dag.tasks["add"].expand.as_ref().expect("expand");
    assert!(matches!(&exp.args["x"], ExpandSource::XCom { task_id, .. } if task_id == "numbers"));
    assert_eq!(dag.tasks["add"].arguments["op_kwargs"]["y"], 10);
    assert_eq!(ups(&load, "shapes", "e2"), ["add", "gate"]);
    assert!(dag.tasks["gate"]
        .operator_source
        .ends_with("ShortCircuitOperator"));
}

#[test]
fn airflow_3_sdk_imports_and_assets() {
    let src = r#"
import pendulum
from airflow.sdk import DAG, dag, task, Asset, chain
from airflow.providers.standard.operators.empty import EmptyOperator

orders = Asset("s3://bucket/orders")

@dag(schedule=[orders], start_date=pendulum.datetime(2025, 1, 1), catchup=False)
def consume():
    @task.branch
    def decide():
        return "yes"
    yes = EmptyOperator(task_id="yes")
    no = EmptyOperator(task_id="no")
    chain(decide(), [yes, no])

consume()

with DAG(dag_id="second", schedule="0 3 * * *", start_date=pendulum.datetime(2025, 1, 1)):
    EmptyOperator(task_id="only")
"#;
    let (_d, load) = load_files(&[("sdk.py", src)]);
    assert!(load.errors.is_empty(), "{:?}", load.errors);
    let ids: Vec<_> = load.dags.iter().map(|d| d.dag_id.as_str()).collect();
    assert_eq!(ids, ["consume", "second"]);
    assert!(load.dags[0].tasks["decide"].branch);
    assert_eq!(ups(&load, "consume", "no"), ["decide"]);
}

#[test]
fn schedules_follow_create_cron_data_intervals_and_timetables_keep_their_kind() {
    let src = r#"
import datetime
import pendulum
from airflow.sdk import DAG, CronDataIntervalTimetable, CronTriggerTimetable
from airflow.timetables.trigger import DeltaTriggerTimetable
from airflow.providers.standard.operators.empty import EmptyOperator

start = pendulum.datetime(2025, 1, 1, tz="UTC")
for dag_id, schedule in [
    ("bare_cron", "30 2 * * *"),
    ("bare_delta", datetime.timedelta(hours=6)),
    ("data_interval", CronDataIntervalTimetable("30 2 * * *", timezone="Europe/Paris")),
    ("trigger", CronTriggerTimetable("0 1 * * *", timezone="UTC", interval=datetime.timedelta(hours=1))),
    ("delta_trigger", DeltaTriggerTimetable(datetime.timedelta(minutes=10))),
]:
    with DAG(dag_id=dag_id, schedule=schedule, start_date=start):
        EmptyOperator(task_id="only")
"#;
    use weft_dag::Schedule;
    let kinds = |extra: &[(&str, &str)]| {
        let mut files = vec![("schedules.py", src)];
        files.extend_from_slice(extra);
        let (_d, load) = load_files(&files);
        assert!(load.errors.is_empty(), "{:?}", load.errors);
        load.dags
            .iter()
            .map(|d| match &d.schedule {
                Schedule::Cron { timezone, .. } => format!("cron tz={timezone:?}"),
                Schedule::CronTrigger { interval, .. } => {
                    format!("cron-trigger {}s", interval.as_secs())
                }
                Schedule::Delta(d) => format!("delta {}s", d.as_secs()),
                Schedule::DeltaTrigger { delta, .. } => {
                    format!("delta-trigger {}s", delta.as_secs())
                }
                other => format!("{other:?}"),
            })
            .collect::<Vec<_>>()
    };
    let explicit = [
        "cron tz=Some(Europe/Paris)",
        "cron-trigger 3600s",
        "delta-trigger 600s",
    ];
    assert_eq!(kinds(&[])[..2], ["cron tz=None", "delta 21600s"]);
    assert_eq!(kinds(&[])[2..], explicit);
    let airflow3 = kinds(&[(
        "weft.yaml",
        "scheduler:\n  create_cron_data_intervals: false\n",
    )]);
    assert_eq!(airflow3[..2], ["cron-trigger 0s", "delta-trigger 21600s"]);
    assert_eq!(airflow3[2..], explicit);
}

#[test]
fn unmapped_operators_name_the_class_and_the_map_entry() {
    let src = "from airflow import DAG\nfrom airflow.providers.ssh.operators.ssh import SSHOperator\nwith DAG('remote', schedule=None):\n    SSHOperator(task_id='go', command='ls')\n";
    let (_d, load) = load_files(&[("remote.py", src)]);
    assert!(load.dags.is_empty());
    let msg = load.errors[0].to_string();
    assert!(
        msg.contains("airflow.providers.ssh.operators.ssh.SSHOperator")
            && msg.contains("weft.yaml"),
        "{msg}"
    );
    assert_eq!(load.errors[0].line, 3, "{msg}");
    // mapped in weft.yaml, the same file loads
    let (_d, load) = load_with_map(src);
    assert!(load.errors.is_empty(), "{:?}", load.errors);
    assert_eq!(load.dags[0].tasks["go"].operator, "echo");
    assert_eq!(load.dags[0].tasks["go"].arguments["command"], "ls");
}

fn load_with_map(src: &str) -> (tempfile::TempDir, FolderLoad) {
    load_files(&[
        ("remote.py", src),
        (
            "weft.yaml",
            "operators:\n  airflow.providers.ssh.operators.ssh.SSHOperator: echo\n",
        ),
    ])
}

#[test]
fn broken_files_are_import_errors_and_other_dags_still_load() {
    let (_d, load) = load_files(&[
        ("good.py", TASKFLOW_ETL),
        (
            "missing.py",
            "from airflow import DAG\nimport numpy_not_installed\n",
        ),
        (
            "raises.py",
            "from airflow import DAG\n\ndef f():\n    raise ValueError('bad config')\nf()\n",
        ),
        ("syntax.py", "from airflow import DAG\nwith DAG('x' as d:\n"),
        (
            "variable.py",
            "from airflow import DAG\nfrom airflow.models import Variable\nx = Variable.get('secret_key')\n",
        ),
        ("helper.py", "def util():\n    return 1\n"),
    ]);
    assert_eq!(load.dags.len(), 1, "{:?}", load.errors);
    let err = |f: &str| {
        load.errors
            .iter()
            .find(|e| e.file.ends_with(f))
            .unwrap_or_else(|| panic!("no error for {f}: {:?}", load.errors))
    };
    let e = err("missing.py");
    assert_eq!(e.line, 2);
    assert!(e.reason.contains("ModuleNotFoundError") && e.reason.contains("numpy_not_installed"));
    let e = err("raises.py");
    assert_eq!(e.line, 4, "the innermost line of the file");
    assert!(e.reason.starts_with("ValueError: bad config"));
    let tb = e.traceback.as_deref().unwrap();
    assert!(tb.contains("Traceback") && tb.contains("raises.py"), "{tb}");
    // the parser's own frames are not part of the user's traceback
    assert!(!tb.contains("app.py"), "{tb}");
    assert_eq!(err("syntax.py").line, 2);
    assert!(err("syntax.py").reason.starts_with("SyntaxError"));
    let e = err("variable.py");
    assert!(e.reason.contains("var.value.secret_key"), "{}", e.reason);
    // helpers without `airflow`/`dag` are not DAG files (Airflow's safe mode)
    assert!(load.skipped.iter().any(|s| s.file.ends_with("helper.py")));
}

// ---- attacker tests ------------------------------------------------------------------------

#[test]
fn a_file_that_loops_forever_is_an_import_error_not_a_hang() {
    let src = "from airflow import DAG\nwhile True:\n    pass\n";
    let quick = SandboxDagParser::new(home(), Duration::from_millis(1500));
    let ev = quick.evaluate(Path::new("/dags/spin.py"), src);
    let PyEvaluation::ImportError(e) = ev else {
        panic!("{ev:?}")
    };
    assert!(
        e.error.contains("timeout") || e.error.contains("fuel"),
        "{}",
        e.error
    );
}

#[test]
fn reading_host_files_or_opening_sockets_at_import_fails() {
    let (_d, load) = load_files(&[
        (
            "passwd.py",
            "from airflow import DAG\nSECRET = open('/etc/passwd').read()\n",
        ),
        (
            "listdir.py",
            "from airflow import DAG\nimport os\nFILES = os.listdir('/')\nassert FILES, 'no root'\nopen('/etc/hostname')\n",
        ),
        (
            "socket.py",
            "from airflow import DAG\nimport socket\ns = socket.create_connection(('127.0.0.1', 22), timeout=1)\n",
        ),
        (
            "env.py",
            "from airflow import DAG\nimport os\nassert 'HOME' not in os.environ and 'PATH' not in os.environ, 'host env leaked'\nraise RuntimeError('clean')\n",
        ),
    ]);
    assert!(load.dags.is_empty());
    for f in ["passwd.py", "listdir.py", "socket.py", "env.py"] {
        let e = load
            .errors
            .iter()
            .find(|e| e.file.ends_with(f))
            .unwrap_or_else(|| panic!("{f} loaded: {:?}", load.errors));
        assert!(!e.reason.contains("root:x:0"), "{f}: {}", e.reason);
    }
    let passwd = load
        .errors
        .iter()
        .find(|e| e.file.ends_with("passwd.py"))
        .unwrap();
    assert!(
        passwd.reason.contains("FileNotFoundError") || passwd.reason.contains("PermissionError"),
        "{}",
        passwd.reason
    );
    let env = load
        .errors
        .iter()
        .find(|e| e.file.ends_with("env.py"))
        .unwrap();
    assert!(env.reason.contains("RuntimeError: clean"), "{}", env.reason);
}

#[test]
fn deep_recursion_and_huge_output_are_capped() {
    let (_d, load) = load_files(&[
        (
            "recurse.py",
            "from airflow import DAG\ndef f(n):\n    return f(n + 1)\nf(0)\n",
        ),
        (
            "memory.py",
            "from airflow import DAG\nhoard = []\nwhile True:\n    hoard.append(bytearray(64 << 20))\n",
        ),
        (
            "noisy.py",
            "from airflow import DAG\nraise ValueError('x' * 10_000_000)\n",
        ),
    ]);
    assert!(load.dags.is_empty());
    assert_eq!(load.errors.len(), 3, "{:?}", load.errors);
    for e in &load.errors {
        assert!(
            e.reason.len() <= 4096,
            "{}: {} bytes",
            e.file.display(),
            e.reason.len()
        );
    }
    let rec = load
        .errors
        .iter()
        .find(|e| e.file.ends_with("recurse.py"))
        .unwrap();
    assert!(rec.reason.contains("RecursionError"), "{}", rec.reason);
}

#[test]
fn ten_thousand_tasks_load_within_limits() {
    let src = "from airflow import DAG\nfrom airflow.operators.empty import EmptyOperator\nwith DAG('wide', schedule=None):\n    prev = None\n    for i in range(10_000):\n        t = EmptyOperator(task_id=f't{i}')\n        if prev is not None and i % 100:\n            prev >> t\n        prev = t\n";
    let (_d, load) = load_files(&[("wide.py", src)]);
    assert!(load.errors.is_empty(), "{:?}", load.errors.first());
    assert_eq!(load.dags[0].tasks.len(), 10_000);
    // beyond the shim's cap, refused with a clear message
    let src = "from airflow import DAG\nfrom airflow.operators.empty import EmptyOperator\nwith DAG('wider', schedule=None):\n    for i in range(20_001):\n        EmptyOperator(task_id=f't{i}')\n";
    let (_d, load) = load_files(&[("wider.py", src)]);
    assert!(load.dags.is_empty());
    assert!(
        load.errors[0].reason.contains("more than 20000 tasks"),
        "{}",
        load.errors[0]
    );
}

#[test]
fn warm_parses_come_from_the_cache() {
    let (d, first) = load_files(&[("etl.py", TASKFLOW_ETL)]);
    assert!(first.errors.is_empty());
    let check = WithPythonDags {
        check: |_: &str| true,
        parser: parser(),
    };
    let again = load_folder(d.path(), &check);
    assert_eq!(again.dags[0].tasks.len(), first.dags[0].tasks.len());
    // the disk cache serves a new parser (a new process) too
    let fresh = SandboxDagParser::new(home(), Duration::from_secs(5));
    let path = d.path().join("etl.py");
    assert!(matches!(
        fresh.evaluate(&path, TASKFLOW_ETL),
        PyEvaluation::Dags(ref x) if x.dags.contains_key("tutorial_taskflow_api")
    ));
}

// ---- figures ------------------------------------------------------------------------------

/// `cargo test --workspace --test python_dags -- --ignored --nocapture python_dag_parse_bench`:
/// cold start (compile of the parser component in a fresh store), a parse that misses the
/// cache (component loaded, file run), a cached parse, for a 3-task and a 100-task DAG file.
#[test]
#[ignore]
fn python_dag_parse_bench() {
    use std::time::Instant;
    let hundred = {
        let mut s = String::from("from datetime import datetime\nfrom airflow.decorators import dag, task\n\n@dag(schedule='@daily', start_date=datetime(2024, 1, 1))\ndef hundred():\n    @task\n    def step(x):\n        return x\n    prev = step.override(task_id='s0')(0)\n");
        for i in 1..100 {
            s.push_str(&format!("    prev = step.override(task_id='s{i}')(prev)\n"));
        }
        s.push_str("hundred()\n");
        s
    };
    let cold_home = tempfile::tempdir().unwrap();
    let store = weft_store::PluginStore::open(cold_home.path()).unwrap();
    weft_plugins::install_path(
        &store,
        &component(),
        &weft_plugins::InstallOptions { force: true },
    )
    .unwrap();
    let cold = SandboxDagParser::new(cold_home.path(), Duration::from_secs(30));
    let t = Instant::now();
    assert!(matches!(
        cold.evaluate(Path::new("/b/cold.py"), TASKFLOW_ETL),
        PyEvaluation::Dags(_)
    ));
    println!(
        "cold parse (fresh store: compile + run): {:.1} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    let p = parser();
    let _ = p.evaluate(Path::new("/b/prime.py"), TASKFLOW_ETL);
    for (name, src) in [("3-task", TASKFLOW_ETL), ("100-task", hundred.as_str())] {
        let mut miss = Vec::new();
        for i in 0..10 {
            let path = PathBuf::from(format!("/b/{}/{name}-{i}.py", std::process::id()));
            let t = Instant::now();
            assert!(matches!(p.evaluate(&path, src), PyEvaluation::Dags(_)));
            miss.push(t.elapsed().as_secs_f64() * 1e3);
        }
        let path = PathBuf::from(format!("/b/{}/{name}-0.py", std::process::id()));
        let mut hit = Vec::new();
        for _ in 0..100 {
            let t = Instant::now();
            let _ = p.evaluate(&path, src);
            hit.push(t.elapsed().as_secs_f64() * 1e3);
        }
        miss.sort_by(f64::total_cmp);
        hit.sort_by(f64::total_cmp);
        println!(
            "{name} DAG file: uncached parse p50 {:.1} ms (min {:.1}), cached parse p50 {:.3} ms",
            miss[miss.len() / 2],
            miss[0],
            hit[hit.len() / 2]
        );
    }
    // a whole folder load (read + cache hit + model) of the 100-task file
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hundred.py"), &hundred).unwrap();
    let check = WithPythonDags {
        check: |_: &str| true,
        parser: p.clone(),
    };
    let first = load_folder(dir.path(), &check);
    assert_eq!(first.dags[0].tasks.len(), 100, "{:?}", first.errors);
    let mut warm = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let l = load_folder(dir.path(), &check);
        assert_eq!(l.dags.len(), 1);
        warm.push(t.elapsed().as_secs_f64() * 1e3);
    }
    warm.sort_by(f64::total_cmp);
    println!(
        "warm folder load of the 100-task Python DAG: p50 {:.2} ms",
        warm[warm.len() / 2]
    );
}
