//! End-to-end tests of `run_dag_once`: retries, branching, mapping, templating, XCom, the JSON
//! report shape, and loading a DAG folder with a `weft.yaml` operator table.

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use weft_dag::{
    load_dags, parse_dag_file, run_dag_once, AnyOperator, Dag, FolderConfig, RunOptions, RunState,
    TaskFailure, TaskInvocation,
};

fn dag(yaml: &str) -> Dag {
    let (dags, errors) = parse_dag_file(
        Path::new("t.yaml"),
        yaml,
        &FolderConfig::default(),
        &AnyOperator,
    );
    assert!(errors.is_empty(), "{errors:?}");
    dags.into_iter().next().expect("one dag")
}

fn date() -> chrono::DateTime<chrono::Utc> {
    weft_dag::timetable::parse_datetime("2024-03-05", chrono_tz::Tz::UTC).unwrap()
}

fn states(report: &Value) -> Vec<(String, String)> {
    report["tasks"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v["state"].as_str().unwrap().to_string()))
        .collect()
}

#[test]
fn retries_with_backoff_then_success() {
    let d = dag("d:\n  default_args:\n    retries: 3\n    retry_delay: 10\n    retry_exponential_backoff: true\n    max_retry_delay: {seconds: 30}\n  tasks:\n    flaky:\n      operator: flaky\n    after:\n      operator: echo\n      dependencies: [flaky]\n");
    let slept = Arc::new(Mutex::new(Vec::new()));
    let s2 = slept.clone();
    let opts = RunOptions {
        sleep: Arc::new(move |d: Duration| s2.lock().unwrap().push(d)),
        ..RunOptions::default()
    };
    let exec = |ti: &TaskInvocation| -> Result<Value, TaskFailure> {
        if ti.operator == "flaky" && ti.try_number < 3 {
            return Err(TaskFailure::new("Boom", format!("try {}", ti.try_number)));
        }
        Ok(json!(ti.try_number))
    };
    let r = run_dag_once(&d, date(), &exec, &opts);
    assert_eq!(r.state, RunState::Success);
    let j = r.to_json();
    assert_eq!(j["tasks"]["flaky"]["try_number"], 3);
    assert_eq!(j["tasks"]["flaky"]["xcom"], 3);
    assert_eq!(j["tasks"]["after"]["try_number"], 1);
    let slept = slept.lock().unwrap();
    assert_eq!(slept.len(), 2, "{slept:?}");
    // first retry: [10, 20) s; second: [20, 40) capped at 30 s
    assert!(
        slept[0] >= Duration::from_secs(9) && slept[0] < Duration::from_secs(20),
        "{slept:?}"
    );
    assert!(
        slept[1] >= Duration::from_secs(19) && slept[1] <= Duration::from_secs(30),
        "{slept:?}"
    );
}

#[test]
fn retries_exhausted_fail_the_run() {
    let d = dag("d:\n  default_args:\n    retries: 1\n    retry_delay: 0\n  tasks:\n    a:\n      operator: fail\n      error: X.Y\n      cause: nope\n    b:\n      operator: echo\n      dependencies: [a]\n");
    let r = run_dag_once(&d, date(), &common::fake_exec, &RunOptions::instant());
    assert_eq!(r.state, RunState::Failed);
    assert_eq!(r.tasks["a"].try_number, 2);
    assert_eq!(r.tasks["a"].error.as_ref().unwrap().error, "X.Y");
    assert_eq!(r.tasks["b"].try_number, 0);
    assert_eq!(r.to_json()["tasks"]["b"]["state"], "upstream_failed");
}

#[test]
fn branching_skips_unfollowed_downstreams() {
    let d = dag("d:\n  tasks:\n    pick:\n      operator: echo\n      branch: true\n      branch_to: x\n    a:\n      operator: echo\n      dependencies: [pick]\n    b:\n      operator: echo\n      dependencies: [pick]\n    after_b:\n      operator: echo\n      dependencies: [b]\n    join:\n      operator: echo\n      dependencies: [a, after_b]\n      trigger_rule: none_failed_min_one_success\n");
    // `pick` returns its `branch_to`-like argument through a custom executor.
    let exec = |ti: &TaskInvocation| -> Result<Value, TaskFailure> {
        if ti.task_id == "pick" {
            return Ok(json!({"branch": ["a"]}));
        }
        common::fake_exec(ti)
    };
    let r = run_dag_once(&d, date(), &exec, &RunOptions::instant());
    let j = r.to_json();
    assert_eq!(j["state"], "success");
    assert_eq!(j["tasks"]["a"]["state"], "success");
    assert_eq!(j["tasks"]["b"]["state"], "skipped");
    assert_eq!(j["tasks"]["b"]["try_number"], 0);
    assert_eq!(j["tasks"]["after_b"]["state"], "skipped");
    assert_eq!(j["tasks"]["join"]["state"], "success");

    // A list result also works, and an unknown id fails the branch task.
    let exec2 = |ti: &TaskInvocation| -> Result<Value, TaskFailure> {
        if ti.task_id == "pick" {
            return Ok(json!(["nope"]));
        }
        common::fake_exec(ti)
    };
    let r = run_dag_once(&d, date(), &exec2, &RunOptions::instant());
    assert_eq!(r.tasks["pick"].state.as_str(), "failed");
    assert_eq!(
        r.tasks["pick"].error.as_ref().unwrap().error,
        "Weft.InvalidBranch"
    );
}

#[test]
fn mapping_over_literal_and_upstream_xcom() {
    let d = dag("d:\n  tasks:\n    src:\n      operator: echo\n      items: [1, 2, 3]\n    lit:\n      operator: echo\n      fixed: k\n      expand:\n        x: [a, b]\n    m:\n      operator: echo\n      expand:\n        n: \"{{ ti.xcom_pull('src')['items'] }}\"\n    total:\n      operator: echo\n      dependencies: [m]\n      got: \"{{ ti.xcom_pull('m') | map(attribute='n') | sum }}\"\n    none:\n      operator: echo\n      expand:\n        x: []\n");
    let r = run_dag_once(&d, date(), &common::fake_exec, &RunOptions::instant());
    let j = r.to_json();
    assert_eq!(j["state"], "success", "{j}");
    assert_eq!(
        j["tasks"]["lit[0]"]["xcom"],
        json!({"fixed": "k", "x": "a"})
    );
    assert_eq!(
        j["tasks"]["lit[1]"]["xcom"],
        json!({"fixed": "k", "x": "b"})
    );
    assert_eq!(j["tasks"]["m[2]"]["xcom"], json!({"n": 3}));
    assert_eq!(j["tasks"]["total"]["xcom"], json!({"got": "6"}));
    assert_eq!(j["tasks"]["none"]["state"], "skipped");
    assert!(j["tasks"].get("m").is_none());
}

#[test]
fn mapping_over_non_list_fails_the_producer() {
    let d = dag("d:\n  tasks:\n    src:\n      operator: echo\n    m:\n      operator: echo\n      expand:\n        n: +src\n");
    let exec = |ti: &TaskInvocation| -> Result<Value, TaskFailure> {
        if ti.task_id == "src" {
            return Ok(json!(5));
        }
        common::fake_exec(ti)
    };
    let r = run_dag_once(&d, date(), &exec, &RunOptions::instant());
    assert_eq!(r.state, RunState::Failed);
    assert_eq!(
        r.tasks["src"].error.as_ref().unwrap().error,
        "Weft.MappingFailed"
    );
    assert_eq!(r.tasks["m"].state.as_str(), "upstream_failed");
}

#[test]
fn templates_render_in_arguments() {
    let d = dag("d:\n  schedule: '@daily'\n  params: {who: world}\n  tasks:\n    a:\n      operator: echo\n      v: 42\n    b:\n      operator: echo\n      dependencies: [a]\n      msg: \"hello {{ params.who }} on {{ ds }} ({{ data_interval_start }}..{{ data_interval_end }})\"\n      nested: [\"{{ ti.xcom_pull(task_ids='a')['v'] }}\", {k: \"{{ task.task_id }}@{{ dag.dag_id }}\"}]\n    bad:\n      operator: echo\n      x: \"{{ nope.nope }}\"\n    after_bad:\n      operator: echo\n      dependencies: [bad]\n");
    let r = run_dag_once(&d, date(), &common::fake_exec, &RunOptions::instant());
    let j = r.to_json();
    assert_eq!(
        j["tasks"]["b"]["xcom"]["msg"],
        "hello world on 2024-03-05 (2024-03-04T00:00:00+00:00..2024-03-05T00:00:00+00:00)"
    );
    assert_eq!(
        j["tasks"]["b"]["xcom"]["nested"],
        json!(["42", {"k": "b@d"}])
    );
    assert_eq!(j["tasks"]["bad"]["state"], "failed");
    let err = r.tasks["bad"].error.clone().unwrap();
    assert_eq!(err.error, "Weft.TemplateError");
    assert!(
        err.cause
            .starts_with("task bad: argument `x`: template error"),
        "{}",
        err.cause
    );
    assert_eq!(j["tasks"]["after_bad"]["state"], "upstream_failed");
    assert_eq!(j["state"], "failed");
}

#[test]
fn report_has_the_cli_shape() {
    let d = dag("d:\n  tasks:\n    a:\n      operator: echo\n      x: 1\n");
    let j = run_dag_once(&d, date(), &common::fake_exec, &RunOptions::instant()).to_json();
    let top: Vec<&String> = j.as_object().unwrap().keys().collect();
    assert_eq!(top, ["dag_id", "state", "tasks"]);
    let t: Vec<&String> = j["tasks"]["a"].as_object().unwrap().keys().collect();
    assert_eq!(t, ["state", "try_number", "duration_s", "xcom", "xcoms"]);
    assert_eq!(states(&j), vec![("a".to_string(), "success".to_string())]);
    // every XCom pushed, by key: the return value; a multiple_outputs result adds its keys
    let a = &j["tasks"]["a"];
    assert!(!a["xcom"].is_null(), "{a}");
    assert_eq!(a["xcoms"], serde_json::json!({"return_value": a["xcom"]}));
    let d = dag(
        "d:\n  tasks:\n    a:\n      operator: echo\n      multiple_outputs: true\n      k: v\n",
    );
    let j = run_dag_once(&d, date(), &common::fake_exec, &RunOptions::instant()).to_json();
    let a = &j["tasks"]["a"];
    let mut want = a["xcom"].as_object().unwrap().clone();
    want.insert("return_value".into(), a["xcom"].clone());
    assert_eq!(a["xcoms"], serde_json::Value::Object(want), "{a}");
}

#[test]
fn xcom_size_cap() {
    let d = dag("d:\n  tasks:\n    a:\n      operator: echo\n      x: \"0123456789\"\n");
    let opts = RunOptions {
        max_xcom_bytes: 5,
        ..RunOptions::instant()
    };
    let r = run_dag_once(&d, date(), &common::fake_exec, &opts);
    assert_eq!(
        r.tasks["a"].error.as_ref().unwrap().error,
        "Weft.XComTooLarge"
    );
}

#[test]
fn loads_a_folder_with_operator_table() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("weft.yaml"),
        "operators:\n  airflow.operators.bash.BashOperator: echo\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("a.yaml"),
        "one:\n  tasks:\n    t:\n      operator: airflow.operators.bash.BashOperator\n      bash_command: date\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("b.yml"),
        "two:\n  tasks:\n    t:\n      operator: missing_plugin\n    u:\n      operator: echo\n      dependencies: [t, ghost]\n",
    )
    .unwrap();
    let (dags, errors) = load_dags(dir.path(), &|op: &str| op == "echo");
    assert_eq!(dags.len(), 1);
    assert_eq!(dags[0].tasks["t"].operator, "echo");
    let msgs: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(msgs.len(), 2, "{msgs:?}");
    assert!(msgs[0].ends_with("b.yml:4: two.tasks.t.operator: unknown operator `missing_plugin`: no such plugin is installed"), "{msgs:?}");
    assert!(
        msgs[1].ends_with("b.yml:7: two.tasks.u.dependencies: unknown upstream task `ghost`"),
        "{msgs:?}"
    );
}

#[test]
fn parallel_runs_match_sequential_and_use_threads() {
    let d = dag("d:\n  max_active_tasks: 4\n  tasks:\n    root:\n      operator: echo\n    a:\n      operator: slow\n      dependencies: [root]\n    b:\n      operator: slow\n      dependencies: [root]\n    c:\n      operator: slow\n      dependencies: [root]\n    d:\n      operator: fail\n      dependencies: [root]\n    join:\n      operator: echo\n      dependencies: [a, b, c, d]\n      trigger_rule: one_failed\n");
    let running = std::sync::atomic::AtomicUsize::new(0);
    let peak = std::sync::atomic::AtomicUsize::new(0);
    let exec = |ti: &TaskInvocation| -> Result<Value, TaskFailure> {
        use std::sync::atomic::Ordering::SeqCst;
        if ti.operator == "slow" {
            let now = running.fetch_add(1, SeqCst) + 1;
            peak.fetch_max(now, SeqCst);
            std::thread::sleep(Duration::from_millis(50));
            running.fetch_sub(1, SeqCst);
            return Ok(json!(ti.task_id));
        }
        common::fake_exec(ti)
    };
    let seq = run_dag_once(&d, date(), &exec, &RunOptions::instant());
    assert_eq!(peak.load(std::sync::atomic::Ordering::SeqCst), 1);
    let opts = RunOptions {
        parallelism: 8,
        ..RunOptions::instant()
    };
    let par = run_dag_once(&d, date(), &exec, &opts);
    assert_eq!(states(&seq.to_json()), states(&par.to_json()));
    assert_eq!(par.to_json()["tasks"]["join"]["state"], "success");
    assert!(peak.load(std::sync::atomic::Ordering::SeqCst) >= 2);
}

#[test]
fn a_panicking_executor_fails_the_task() {
    let d = dag("d:\n  tasks:\n    a:\n      operator: echo\n");
    let exec = |_: &TaskInvocation| -> Result<Value, TaskFailure> { panic!("boom") };
    let r = run_dag_once(&d, date(), &exec, &RunOptions::instant());
    assert_eq!(
        r.tasks["a"].error.as_ref().unwrap().error,
        "Weft.ExecutorPanicked"
    );
}

#[test]
fn bad_input_never_panics() {
    let inputs = [
        "",
        "just a string",
        "- a\n- b\n",
        "d: 5\n",
        "d:\n  tasks: 5\n",
        "d:\n  tasks: []\n",
        "d:\n  tasks:\n    a: 1\n",
        "d:\n  tasks:\n    a:\n      operator: [x]\n",
        "d:\n  tasks:\n    a:\n      operator: echo\n      retries: -1\n      pool_slots: 0\n      priority_weight: x\n",
        "d:\n  schedule: {hours: -1}\n  tasks:\n    a:\n      operator: echo\n",
        "d:\n  schedule: 12\n  start_date: 99999-99-99\n  tasks:\n    a:\n      operator: echo\n",
        "d:\n  schedule: [1]\n  timezone: Mars/Olympus\n  tasks:\n    a:\n      operator: echo\n",
        "d:\n  default_args: [1]\n  tasks:\n    a:\n      operator: echo\n      expand: 5\n",
        "d:\n  tasks:\n    a:\n      operator: echo\n      expand: {x: 5, y: plain, z: '+nope'}\n",
        "d:\n  task_groups:\n    g1: {parent_group_name: g2}\n    g2: {parent_group_name: g1}\n  tasks:\n    a:\n      operator: echo\n      task_group_name: g1\n",
        "d:\n  tasks:\n    a:\n      operator: echo\n      dependencies: a\n",
        "d:\n  tasks:\n    a.b:\n      operator: echo\n    'x y':\n      operator: echo\n",
        "? [a]\n: 1\n",
        "d:\n  tasks:\n    a:\n      operator: echo\n      retry_delay: 1e300\n      max_retry_delay: 0\n",
        "d:\n  max_active_tasks: 0\n  tasks:\n    a:\n      operator: echo\n      trigger_rule: 7\n",
    ];
    for text in inputs {
        let (dags, errors) = parse_dag_file(
            Path::new("bad.yaml"),
            text,
            &FolderConfig::default(),
            &AnyOperator,
        );
        for e in &errors {
            let s = e.to_string();
            assert!(s.starts_with("bad.yaml"), "{s}");
        }
        for d in &dags {
            let _ = run_dag_once(d, date(), &common::fake_exec, &RunOptions::instant());
        }
    }
}
