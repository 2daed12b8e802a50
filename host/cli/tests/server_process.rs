//! `weft server` as a child process. The durability promise, end to end: it runs 1,000 Standard
//! executions (plugin task -> Wait -> plugin task), is killed with SIGKILL mid-way twice and
//! restarted; every execution must finish with the right output, none lost or duplicated, and
//! no task whose completion was on disk at a kill may run again. The `record-run` plugin leaves
//! one file per real run in the granted `runs/` directory, so runs are counted from outside.
//! And the `weft sm` / `weft audit` client against a server with authentication on.

mod common;
use common::*;

use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const N: usize = 1000;

/// One plain HTTP request to the server's UI endpoints (`/v1/...`, `/metrics`); the raw body.
fn http_text(port: u16, method: &str, path: &str, body: &str) -> String {
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        c,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    c.read_to_string(&mut resp).unwrap();
    resp.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_else(|| panic!("no HTTP body in {resp}"))
}

/// [`http_text`] for a JSON answer.
fn http(port: u16, method: &str, path: &str, body: &str) -> Value {
    let text = http_text(port, method, path, body);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method} {path}: {e}: {text}"))
}

fn start_server(backend: &Backend, home: &Path, work: &Path) -> Server {
    start_server_with(backend, home, work, true)
}

fn start_server_with(backend: &Backend, home: &Path, work: &Path, no_auth: bool) -> Server {
    start_weft_server_on(
        backend,
        home,
        work,
        no_auth,
        &[("WEFT_SERVER_MAX_RUNNING", Path::new("16"))],
    )
}

/// The tasks whose completion is on disk (read from the store of the killed server): journaled
/// results, and both tasks of every execution already SUCCEEDED.
fn durably_completed(backend: &Backend, home: &Path) -> HashSet<String> {
    match backend.url() {
        // state 0 is T1, state 2 is T2 (see DEFINITION)
        Some(url) => pg_nodes::durably_completed_tasks(url, |_| "/2."),
        None => durably_completed_in_sled(home),
    }
}

/// [`durably_completed`] from the sled store in `home`.
fn durably_completed_in_sled(home: &Path) -> HashSet<String> {
    let db = sled::open(home.join("db")).unwrap_or_else(|e| panic!("open the store: {e}"));
    let mut done = HashSet::new();
    let name_of = |arn: &str| arn.rsplit(':').next().unwrap().to_string();
    for item in db.open_tree("sfn_executions").unwrap().iter() {
        let (_, v) = item.unwrap();
        let e: Value = serde_json::from_slice(&v).unwrap();
        if e["status"] == "SUCCEEDED" {
            let n = name_of(e["arn"].as_str().unwrap());
            done.insert(format!("{n}-t1"));
            done.insert(format!("{n}-t2"));
        }
    }
    // journal entries: in the journal tree (`ARN 0x00 KEY`), or riding in a history run as a
    // line `0x1d KEY 0x1f JSON` (history key `ARN 0x00 ID`)
    let mut entries: Vec<(String, String, Vec<u8>)> = Vec::new();
    for item in db.open_tree("sfn_journal").unwrap().iter() {
        let (k, v) = item.unwrap();
        let k = String::from_utf8_lossy(&k).into_owned();
        let (arn, key) = k.split_once('\0').unwrap();
        entries.push((arn.to_string(), key.to_string(), v.to_vec()));
    }
    for item in db.open_tree("sfn_history").unwrap().iter() {
        let (k, v) = item.unwrap();
        let arn = String::from_utf8_lossy(&k[..k.len() - 9]).into_owned();
        for line in v.split(|b| *b == b'\n') {
            let Some(rest) = line.strip_prefix(&[0x1d]) else {
                continue;
            };
            let sep = rest.iter().position(|b| *b == 0x1f).unwrap();
            let key = String::from_utf8_lossy(&rest[..sep]).into_owned();
            entries.push((arn.clone(), key, rest[sep + 1..].to_vec()));
        }
    }
    for (arn, key, v) in &entries {
        let e: Value = serde_json::from_slice(v).unwrap();
        if e["t"] != "ok" {
            continue;
        }
        // state 0 is T1, state 2 is T2 (see DEFINITION)
        let t = if key.starts_with("/0.") {
            "t1"
        } else if key.starts_with("/2.") {
            "t2"
        } else {
            continue;
        };
        done.insert(format!("{}-{t}", name_of(arn)));
    }
    done
}

const DEFINITION: &str = RECORDER_FLOW;

/// A store with `plugins` installed and the role `weft:role:recorder` (read and write under
/// `runs/`), and a working directory holding `runs/`: (home, work).
fn recorder_setup(plugins: &[&str]) -> (tempfile::TempDir, tempfile::TempDir) {
    (recorder_home(plugins), recorder_work())
}

fn kill_dash_nine_loses_nothing_and_reruns_nothing_completed(backend: &Backend) {
    let (home, work) = recorder_setup(&["record-run.wasm"]);

    let s = start_server(backend, home.path(), work.path());
    let sm = ok(
        s.port,
        "CreateStateMachine",
        json!({"name": "crash", "definition": DEFINITION, "roleArn": "weft:role:recorder"}),
    )["stateMachineArn"]
        .as_str()
        .unwrap()
        .to_string();
    for i in 0..N {
        ok(
            s.port,
            "StartExecution",
            json!({"stateMachineArn": sm, "name": format!("e{i}"), "input": json!({"n": i}).to_string()}),
        );
    }
    let mut server = Some(s);
    let mut protected: HashMap<String, usize> = HashMap::new();
    // kill when a third, then two thirds of the task runs happened: mid-way, both times
    for target in [2 * N / 3, 4 * N / 3] {
        let end = Instant::now() + Duration::from_secs(300);
        while recorded_runs(work.path()).values().sum::<usize>() < target {
            assert!(
                Instant::now() < end,
                "no progress towards {target} task runs"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        server.take().unwrap().kill9();
        // what was durably complete at the kill must never run again
        let done = durably_completed(backend, home.path());
        let counts = recorded_runs(work.path());
        eprintln!(
            "killed at {target}+ runs: {} task runs so far, {} tasks durably complete",
            counts.values().sum::<usize>(),
            done.len()
        );
        for t in done {
            let n = counts.get(&t).copied().unwrap_or(0);
            assert!(n >= 1, "{t} is recorded as complete but never ran");
            protected.entry(t).or_insert(n);
        }
        server = Some(start_server(backend, home.path(), work.path()));
    }
    let s = server.take().unwrap();
    // every execution finishes
    let end = Instant::now() + Duration::from_secs(300);
    let mut pending: Vec<usize> = (0..N).collect();
    while !pending.is_empty() {
        assert!(
            Instant::now() < end,
            "{} executions did not finish",
            pending.len()
        );
        pending.retain(|i| {
            let d = ok(
                s.port,
                "DescribeExecution",
                json!({"executionArn": format!("arn:aws:states:us-east-1:000000000000:execution:crash:e{i}")}),
            );
            match d["status"].as_str().unwrap() {
                "RUNNING" => true,
                "SUCCEEDED" => {
                    let out: Value = serde_json::from_str(d["output"].as_str().unwrap()).unwrap();
                    assert_eq!(out, json!({"n": i, "ok": true}), "e{i}");
                    false
                }
                other => panic!("e{i} ended {other}: {d}"),
            }
        });
        if !pending.is_empty() {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    // none lost, none duplicated
    let mut names = HashSet::new();
    let mut token: Option<String> = None;
    loop {
        let mut req = json!({"stateMachineArn": sm, "maxResults": 1000});
        if let Some(t) = &token {
            req["nextToken"] = json!(t);
        }
        let page = ok(s.port, "ListExecutions", req);
        for e in page["executions"].as_array().unwrap() {
            assert!(
                names.insert(e["name"].as_str().unwrap().to_string()),
                "duplicate {e}"
            );
        }
        match page["nextToken"].as_str() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    assert_eq!(names.len(), N);
    // the landing page's counts followed through both kills: each execution counted once, as
    // it ended
    let summary = http(s.port, "GET", "/v1/state-machines/summary", "");
    let crash = summary["stateMachines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "crash")
        .unwrap_or_else(|| panic!("crash is listed: {summary}"))
        .clone();
    assert_eq!(crash["executions"]["SUCCEEDED"], N, "{summary}");
    assert_eq!(crash["executions"]["RUNNING"], 0, "{summary}");
    assert_eq!(crash["executions"]["FAILED"], 0, "{summary}");
    // every task ran; none that was complete on disk at a kill ran again
    let counts = recorded_runs(work.path());
    for i in 0..N {
        for t in ["t1", "t2"] {
            let id = format!("e{i}-{t}");
            assert!(counts.get(&id).copied().unwrap_or(0) >= 1, "{id} never ran");
        }
    }
    assert!(!protected.is_empty());
    for (t, n) in &protected {
        assert_eq!(
            counts.get(t).copied().unwrap_or(0),
            *n,
            "{t} ran again after it was recorded complete"
        );
    }
    // the history of an execution has each state once, in order
    let h = ok(
        s.port,
        "GetExecutionHistory",
        json!({"executionArn": "arn:aws:states:us-east-1:000000000000:execution:crash:e0", "maxResults": 1000}),
    );
    let entered: Vec<&str> = h["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"].as_str().unwrap().ends_with("StateEntered"))
        .map(|e| e["stateEnteredEventDetails"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(entered, ["T1", "W", "T2", "Done"]);
    // Prometheus metrics of the last process: its tasks, fuel and executions
    let metrics = http_text(s.port, "GET", "/metrics", "");
    let metric = |name: &str| -> u64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {metrics}"))
    };
    assert!(metric("weft_tasks_total") > 0);
    assert!(metric("weft_task_fuel_used_total") > 0);
    assert!(metric("weft_executions_succeeded_total") > 0);
    assert_eq!(metric("weft_executions_failed_total"), 0);
    eprintln!(
        "crash test: {N} executions, {} task runs for {} tasks, {} tasks protected by the journal",
        counts.values().sum::<usize>(),
        2 * N,
        protected.len()
    );
}
on_both_backends!(kill_dash_nine_loses_nothing_and_reruns_nothing_completed);

/// A redrive re-runs only what failed, with plugin tasks whose results ride beside the history:
/// T1 fails its first attempt (`$$.State.RetryCount` is 0: an id record-run refuses) and
/// succeeds on retry (it is 1), then F fails the execution; after a restart and a redrive,
/// neither T1 attempt runs again and F does.
fn redrive_after_a_restart_reruns_only_the_failed_plugin_task(backend: &Backend) {
    let (home, work) = recorder_setup(&["record-run.wasm", "fail.wasm"]);
    let def = r#"{"StartAt": "T1", "States": {
      "T1": {"Type": "Task", "Resource": "weft:plugin:record-run", "QueryLanguage": "JSONata",
             "Arguments": {"dir": "/runs",
               "id": "{% $states.context.State.RetryCount = 0 ? 'not/allowed' : 'r-t1' %}"},
             "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1, "MaxAttempts": 1}],
             "Next": "Again"},
      "Again": {"Type": "Task", "Resource": "weft:plugin:record-run",
             "Parameters": {"dir": "/runs", "id": "r-again"}, "ResultPath": "$.again", "Next": "F"},
      "F": {"Type": "Task", "Resource": "weft:plugin:fail",
            "Parameters": {"error": "Disk.Full"}, "End": true}}}"#;
    let s = start_server(backend, home.path(), work.path());
    let sm = ok(
        s.port,
        "CreateStateMachine",
        json!({"name": "redrive", "definition": def, "roleArn": "weft:role:recorder"}),
    )["stateMachineArn"]
        .as_str()
        .unwrap()
        .to_string();
    let arn = ok(
        s.port,
        "StartExecution",
        json!({"stateMachineArn": sm, "name": "r"}),
    )["executionArn"]
        .as_str()
        .unwrap()
        .to_string();
    let ended = |port: u16| {
        let end = Instant::now() + Duration::from_secs(60);
        loop {
            let d = ok(port, "DescribeExecution", json!({"executionArn": arn}));
            if d["status"] != "RUNNING" {
                return d;
            }
            assert!(Instant::now() < end, "the execution did not end: {d}");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let d = ended(s.port);
    assert_eq!(
        (d["status"].as_str(), d["error"].as_str()),
        (Some("FAILED"), Some("Disk.Full")),
        "{d}"
    );
    let before = recorded_runs(work.path());
    assert_eq!(before.get("r-t1"), Some(&1), "{before:?}");
    assert_eq!(before.get("r-again"), Some(&1), "{before:?}");
    // a new process, then the redrive
    s.kill9();
    let s = start_server(backend, home.path(), work.path());
    ok(s.port, "RedriveExecution", json!({"executionArn": arn}));
    let d = ended(s.port);
    assert_eq!(
        (d["status"].as_str(), d["error"].as_str()),
        (Some("FAILED"), Some("Disk.Full"))
    );
    assert_eq!(d["redriveCount"], 1);
    // the landing page counts it once, FAILED again, after the restart and the redrive
    let summary = http(s.port, "GET", "/v1/state-machines/summary", "");
    let counts = &summary["stateMachines"][0]["executions"];
    assert_eq!(
        (&counts["FAILED"], &counts["RUNNING"]),
        (&json!(1), &json!(0)),
        "{summary}"
    );
    assert_eq!(
        recorded_runs(work.path()),
        before,
        "a redrive re-ran a task that had succeeded"
    );
    let h = ok(
        s.port,
        "GetExecutionHistory",
        json!({"executionArn": arn, "maxResults": 1000}),
    );
    let count = |ty: &str| {
        h["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["type"] == ty)
            .count()
    };
    assert_eq!(count("TaskSucceeded"), 2, "{h}");
    assert_eq!(count("TaskFailed"), 3, "T1's first attempt, F twice: {h}");
    assert_eq!(count("ExecutionFailed"), 2, "{h}");
    assert_eq!(count("TaskStateEntered"), 4, "T1, Again, F, F again: {h}");
    let events = h["events"].as_array().unwrap();
    assert_eq!(events.last().unwrap()["type"], "ExecutionFailed");
    let ids: Vec<u64> = events.iter().map(|e| e["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, (1..=ids.len() as u64).collect::<Vec<_>>());
}
on_both_backends!(redrive_after_a_restart_reruns_only_the_failed_plugin_task);

/// `weft ARGS` on `backend`'s store with `$WEFT_HOME` = `home`: (exit code, stdout, stderr).
fn weft(backend: &Backend, home: &Path, args: &[&str]) -> (i32, String, String) {
    let o = backend
        .apply(&mut Command::new(env!("CARGO_BIN_EXE_weft")))
        .args(args)
        .env("WEFT_HOME", home)
        .current_dir(repo())
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn sm_client_signs_requests_and_audit_lists_them(backend: &Backend) {
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let s = start_server_with(backend, home.path(), work.path(), false);
    let ep = format!("http://127.0.0.1:{}", s.port);
    let def = repo().join("examples/intrinsics.asl.json");
    let (code, out, err) = weft(
        backend,
        home.path(),
        &[
            "sm",
            "--endpoint",
            &ep,
            "create",
            "hello",
            def.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("stateMachine:hello"), "{out}");
    let input = std::fs::read_to_string(repo().join("examples/intrinsics.input.json")).unwrap();
    let (code, out, err) = weft(
        backend,
        home.path(),
        &[
            "sm",
            "--endpoint",
            &ep,
            "start",
            "hello",
            "--name",
            "one",
            "--input",
            &input,
            "--wait",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let d: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(d["status"], "SUCCEEDED");
    let arn = d["executionArn"].as_str().unwrap();
    let (code, out, _) = weft(
        backend,
        home.path(),
        &["sm", "--endpoint", &ep, "history", arn],
    );
    assert_eq!(code, 0);
    let h: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(h["events"][0]["type"], "ExecutionStarted");
    // errors come back by AWS name, exit 3
    let (code, _, err) = weft(
        backend,
        home.path(),
        &[
            "sm",
            "--endpoint",
            &ep,
            "describe",
            &arn.replace(":one", ":ghost"),
        ],
    );
    assert_eq!(code, 3);
    assert!(err.contains("ExecutionDoesNotExist"), "{err}");
    // a wrong secret is refused by the server's SigV4 check
    let cred = home.path().join("credentials");
    let text = std::fs::read_to_string(&cred).unwrap();
    std::fs::write(
        &cred,
        format!("{text}\n[bad]\naws_access_key_id = WEFTBAD\naws_secret_access_key = nope\n"),
    )
    .unwrap();
    let (code, _, err) = weft(
        backend,
        home.path(),
        &["sm", "--endpoint", &ep, "--profile", "bad", "list"],
    );
    assert_eq!(code, 3);
    assert!(
        err.contains("UnrecognizedClientException"),
        "the running server does not know the new key: {err}"
    );
    let (code, out, err) = weft(
        backend,
        home.path(),
        &[
            "audit",
            "--endpoint",
            &ep,
            "--json",
            "--filter",
            "Execution",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let a: Value = serde_json::from_str(&out).unwrap();
    let actions: Vec<&str> = a["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"StartExecution") && actions.contains(&"DescribeExecution"),
        "{actions:?}"
    );
    let failed = a["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["outcome"] == "error")
        .unwrap();
    assert_eq!(failed["error"], "ExecutionDoesNotExist");
    assert_eq!(failed["principal"], "default");
}
on_both_backends!(sm_client_signs_requests_and_audit_lists_them);

fn dag_runs_made_by_the_scheduler_feed_the_ui_grid(backend: &Backend) {
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    for p in ["echo.wasm", "json-transform.wasm"] {
        let (code, _, err) = weft(
            backend,
            home.path(),
            &["plugin", "install", plugin(p).to_str().unwrap()],
        );
        assert_eq!(code, 0, "{err}");
    }
    let dags = repo().join("examples/dags");
    let (code, out, err) = weft(
        backend,
        home.path(),
        &[
            "dag",
            "trigger",
            "branching",
            "--date",
            "2024-03-05",
            "--json",
            "--dags",
            dags.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let s = start_server(backend, home.path(), work.path());
    let v = http(s.port, "GET", "/v1/dags/branching/runs", "");
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "{v}");
    assert_eq!(runs[0]["state"], "success");
    assert_eq!(runs[0]["tasks"]["full_load"]["state"], "success");
    assert_eq!(runs[0]["tasks"]["incremental_load"]["state"], "skipped");
    assert_eq!(runs[0]["tasks"]["join"]["tryNumber"], 1);
}
on_both_backends!(dag_runs_made_by_the_scheduler_feed_the_ui_grid);

fn a_state_machine_task_runs_a_dag_and_waits_for_it(backend: &Backend) {
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let (code, _, err) = weft(
        backend,
        home.path(),
        &["plugin", "install", plugin("echo.wasm").to_str().unwrap()],
    );
    assert_eq!(code, 0, "{err}");
    std::fs::create_dir_all(home.path().join("dags")).unwrap();
    std::fs::write(
        home.path().join("dags/greet.dag.yaml"),
        "greet:\n  schedule: null\n  is_paused_upon_creation: false\n  start_date: 2024-01-01\n  tasks:\n    hello:\n      operator: echo\n      msg: \"{{ dag_run.conf.greeting }}\"\n    bye:\n      operator: echo\n      dependencies: [hello]\n",
    )
    .unwrap();
    // the state machine's role must allow running the DAG
    std::fs::create_dir_all(home.path().join("roles")).unwrap();
    std::fs::write(
        home.path().join("roles/dag-caller.json"),
        json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "dags:TriggerDagRun", "Resource": "weft:dag:greet"}
        ]})
        .to_string(),
    )
    .unwrap();
    let s = start_server(backend, home.path(), work.path());
    let def = json!({"StartAt": "Run", "States": {"Run": {"Type": "Task", "Resource": "weft:dag:greet",
        "Parameters": {"greeting.$": "$.who"}, "End": true}}});
    let sm = ok(
        s.port,
        "CreateStateMachine",
        json!({"name": "dag-caller", "definition": def.to_string(), "roleArn": "weft:role:dag-caller"}),
    )["stateMachineArn"]
        .as_str()
        .unwrap()
        .to_string();
    let e = ok(
        s.port,
        "StartExecution",
        json!({"stateMachineArn": sm, "input": "{\"who\":\"ana\"}"}),
    );
    let arn = e["executionArn"].as_str().unwrap().to_string();
    let d = pg_nodes::wait_done(s.port, &arn);
    assert_eq!(d["status"], "SUCCEEDED", "{d}");
    let out: Value = serde_json::from_str(d["output"].as_str().unwrap()).unwrap();
    assert_eq!(out["DagId"], "greet");
    assert_eq!(out["State"], "success");
    assert_eq!(out["Tasks"], json!({"hello": "success", "bye": "success"}));
    // the run is the DAG's, visible in its grid, with the state machine's parameters as conf
    let v = http(s.port, "GET", "/v1/dags/greet/runs", "");
    assert_eq!(v["runs"][0]["runId"], out["RunId"]);
}
on_both_backends!(a_state_machine_task_runs_a_dag_and_waits_for_it);

fn a_dag_task_runs_a_state_machine(backend: &Backend) {
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let (code, _, err) = weft(
        backend,
        home.path(),
        &["plugin", "install", plugin("echo.wasm").to_str().unwrap()],
    );
    assert_eq!(code, 0, "{err}");
    std::fs::create_dir_all(home.path().join("dags")).unwrap();
    std::fs::write(
        home.path().join("dags/calls_sm.dag.yaml"),
        "calls_sm:\n  schedule: null\n  is_paused_upon_creation: false\n  start_date: 2024-01-01\n  tasks:\n    double:\n      operator: weft:statemachine:double\n      grant: sm-caller\n      v: 21\n    report:\n      operator: echo\n      dependencies: [double]\n",
    )
    .unwrap();
    // the task's grant must allow starting the state machine
    std::fs::create_dir_all(home.path().join("roles")).unwrap();
    std::fs::write(
        home.path().join("roles/sm-caller.json"),
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "states:StartExecution",
            "Resource": "arn:aws:states:us-east-1:000000000000:stateMachine:double"}]})
        .to_string(),
    )
    .unwrap();
    let s = start_server(backend, home.path(), work.path());
    let def = r#"{"StartAt":"D","States":{"D":{"Type":"Pass","Parameters":{"doubled.$":"States.MathAdd($.v, $.v)"},"End":true}}}"#;
    ok(
        s.port,
        "CreateStateMachine",
        json!({"name": "double", "definition": def}),
    );
    // bad input to the DAG endpoints: named errors that say what is wrong
    let e = http(s.port, "POST", "/v1/dags/nope/runs", "{}");
    assert_eq!(e["__type"], "NotFound", "{e}");
    assert!(e["message"].as_str().unwrap().contains("nope"), "{e}");
    let e = http(s.port, "POST", "/v1/dags/calls_sm/runs", r#"{"conf": 3}"#);
    assert_eq!(e["__type"], "ValidationException", "{e}");
    assert!(e["message"].as_str().unwrap().contains("/conf"), "{e}");
    let e = http(s.port, "POST", "/v1/dags/calls_sm/runs", "[1");
    assert_eq!(e["__type"], "SerializationException", "{e}");
    let e = http(
        s.port,
        "POST",
        "/v1/dags/calls_sm/runs/manual__x/clear",
        "{}",
    );
    assert!(e["message"].as_str().unwrap().contains("/task"), "{e}");
    let e = http(
        s.port,
        "POST",
        "/v1/dags/calls_sm/runs/manual__x/clear",
        r#"{"task": "double"}"#,
    );
    assert_eq!(e["__type"], "NotFound", "{e}");
    let run = http(s.port, "POST", "/v1/dags/calls_sm/runs", "{}");
    assert!(
        run["runId"].as_str().unwrap().starts_with("manual__"),
        "{run}"
    );
    let end = Instant::now() + Duration::from_secs(120);
    let r = loop {
        let v = http(s.port, "GET", "/v1/dags/calls_sm/runs", "");
        let r = v["runs"][0].clone();
        if r["state"] == "success" || r["state"] == "failed" {
            break r;
        }
        assert!(Instant::now() < end, "the DAG run did not finish: {v}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(r["state"], "success", "{r}");
    assert_eq!(r["tasks"]["double"]["state"], "success");
    // the state machine's execution is an execution like any other
    let l = ok(
        s.port,
        "ListExecutions",
        json!({"stateMachineArn": "arn:aws:states:us-east-1:000000000000:stateMachine:double"}),
    );
    let e = &l["executions"][0];
    assert_eq!(e["status"], "SUCCEEDED");
    let d = ok(
        s.port,
        "DescribeExecution",
        json!({"executionArn": e["executionArn"]}),
    );
    assert_eq!(d["output"], "{\"doubled\":42}");
}
on_both_backends!(a_dag_task_runs_a_state_machine);

fn the_server_loads_dag_files_written_while_it_runs(backend: &Backend) {
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let (code, _, err) = weft(
        backend,
        home.path(),
        &["plugin", "install", plugin("echo.wasm").to_str().unwrap()],
    );
    assert_eq!(code, 0, "{err}");
    std::fs::create_dir_all(home.path().join("dags")).unwrap();
    let s = start_server(backend, home.path(), work.path());
    std::fs::write(
        home.path().join("dags/late.dag.yaml"),
        "late:\n  schedule: null\n  is_paused_upon_creation: false\n  start_date: 2024-01-01\n  tasks:\n    only:\n      operator: echo\n",
    )
    .unwrap();
    let run = http(s.port, "POST", "/v1/dags/late/runs", "");
    assert!(run["runId"].is_string(), "{run}");
    // the scheduler notices the new file (it re-reads the folder when a file changes) and runs it
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        let v = http(s.port, "GET", "/v1/dags/late/runs", "");
        if v["runs"][0]["state"] == "success" {
            break;
        }
        assert!(
            Instant::now() < end,
            "the run of a DAG added later never ran: {v}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
on_both_backends!(the_server_loads_dag_files_written_while_it_runs);

/// A callback Task's plugin hands its token to a worker that answers at once, before the plugin
/// has even returned (here the plugin itself calls SendTaskSuccess): the token answers from the
/// moment the task runs, as in Step Functions, and the answer is the task's result.
fn a_callback_answered_before_its_plugin_returns_completes_the_task(backend: &Backend) {
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let (code, _, err) = weft(
        backend,
        home.path(),
        &[
            "plugin",
            "install",
            plugin("http-request.wasm").to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    std::fs::create_dir_all(home.path().join("roles")).unwrap();
    std::fs::write(
        home.path().join("roles/caller.json"),
        json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "http:Request", "Resource": "http://127.0.0.1:*/*"}]})
        .to_string(),
    )
    .unwrap();
    let s = start_server(backend, home.path(), work.path());
    let def = json!({"StartAt": "Ask", "States": {"Ask": {"Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
        "Parameters": {"FunctionName": "http-request", "Payload": {
            "url": format!("http://127.0.0.1:{}/", s.port), "method": "POST",
            "headers": {"X-Amz-Target": "AWSStepFunctions.SendTaskSuccess",
                        "Content-Type": "application/x-amz-json-1.0"},
            "json": {"taskToken.$": "$$.Task.Token", "output": "{\"answered\": \"at once\"}"},
            "fail_on_status": true}},
        "TimeoutSeconds": 60, "End": true}}});
    let sm = ok(
        s.port,
        "CreateStateMachine",
        json!({"name": "eager", "definition": def.to_string(), "roleArn": "weft:role:caller"}),
    )["stateMachineArn"]
        .as_str()
        .unwrap()
        .to_string();
    let arn = ok(s.port, "StartExecution", json!({"stateMachineArn": sm}))["executionArn"]
        .as_str()
        .unwrap()
        .to_string();
    let d = pg_nodes::wait_done(s.port, &arn);
    assert_eq!(d["status"], "SUCCEEDED", "{d}");
    assert_eq!(d["output"], r#"{"answered":"at once"}"#, "{d}");
}
on_both_backends!(a_callback_answered_before_its_plugin_returns_completes_the_task);
