//! `weft server --db postgres://...` (and `WEFT_DB`): a node whose Step Functions state lives
//! entirely in PostgreSQL. A Standard execution (Task -> Wait -> Task) runs to SUCCEEDED; a
//! second one is killed (SIGKILL) in its Wait and finishes after a restart on a *fresh*
//! `$WEFT_HOME` (only the plugin installed again), so everything the restart needs — the
//! state machine, the execution record, its history and journal — came from the database;
//! DescribeExecution and GetExecutionHistory answer the same after the restart; the sled
//! store of the first node holds no execution. The cluster is `$WEFT_TEST_PG`, or one
//! `scripts/pg.sh` starts for this test process (skipped loudly without PostgreSQL unless
//! `WEFT_REQUIRE_PG=1`).

mod common;
use common::*;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

fn psql(url: &str, sql: &str) -> String {
    let o = Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-At", "-c", sql])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// One AWS JSON 1.0 call; (status, body).
fn call(port: u16, action: &str, body: &Value) -> (u16, Value) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let b = body.to_string();
    write!(
        s,
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Amz-Target: AWSStepFunctions.{action}\r\nContent-Type: application/x-amz-json-1.0\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{b}",
        b.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn ok(port: u16, action: &str, body: Value) -> Value {
    let (st, v) = call(port, action, &body);
    assert_eq!(st, 200, "{action}: {v}");
    v
}

/// `weft server --db URL --no-auth` with `$WEFT_HOME` = `home`, listening.
fn start(home: &Path, url: &str) -> Server {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_weft"))
        .args([
            "server",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--no-auth",
            "--db",
            url,
        ])
        .env("WEFT_HOME", home)
        .env_remove("WEFT_DB")
        .current_dir(home)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Server { child, port };
    let end = Instant::now() + Duration::from_secs(120);
    while Instant::now() < end {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return server;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("the server did not start listening");
}

/// A `$WEFT_HOME` with the echo plugin installed.
fn home_with_echo(dir: &Path) {
    let o = weft(
        dir,
        &["plugin", "install", plugin("echo.wasm").to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", stderr(&o));
}

/// Polls DescribeExecution until the execution is no longer RUNNING (the test's own deadline
/// only guards against a hang).
fn wait_done(port: u16, arn: &str) -> Value {
    let end = Instant::now() + Duration::from_secs(300);
    loop {
        let d = ok(port, "DescribeExecution", json!({"executionArn": arn}));
        if d["status"] != "RUNNING" || Instant::now() > end {
            return d;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn event_types(port: u16, arn: &str) -> Vec<String> {
    let h = ok(port, "GetExecutionHistory", json!({"executionArn": arn}));
    h["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect()
}

const DEFINITION: &str = r#"{
  "StartAt": "T1",
  "States": {
    "T1": {"Type": "Task", "Resource": "weft:plugin:echo", "ResultPath": "$.t1", "Next": "W"},
    "W": {"Type": "Wait", "SecondsPath": "$.wait", "Next": "T2"},
    "T2": {"Type": "Task", "Resource": "weft:plugin:echo", "ResultPath": "$.t2", "End": true}
  }
}"#;

#[test]
fn standard_executions_run_on_postgres_and_survive_a_restart() {
    let Some(admin) = pg_cluster() else { return };
    // (a name made here from digits: identifiers cannot be bound parameters)
    let name = format!("weft_srv_{}", std::process::id());
    psql(&admin, &format!("DROP DATABASE IF EXISTS {name}"));
    psql(&admin, &format!("CREATE DATABASE {name}"));
    let url = format!("{}/{name}", admin.rsplit_once('/').unwrap().0);

    let first = tempfile::tempdir().unwrap();
    home_with_echo(first.path());
    let s = start(first.path(), &url);
    let sm = ok(
        s.port,
        "CreateStateMachine",
        json!({"name": "pg-flow", "definition": DEFINITION}),
    )["stateMachineArn"]
        .as_str()
        .unwrap()
        .to_string();
    let quick = ok(
        s.port,
        "StartExecution",
        json!({"stateMachineArn": sm, "name": "quick", "input": "{\"wait\": 1}"}),
    )["executionArn"]
        .as_str()
        .unwrap()
        .to_string();
    let d = wait_done(s.port, &quick);
    assert_eq!(d["status"], "SUCCEEDED", "{d}");
    let out: Value = serde_json::from_str(d["output"].as_str().unwrap()).unwrap();
    assert_eq!(out["wait"], 1);
    assert!(out.get("t2").is_some(), "{out}");
    let quick_history = event_types(s.port, &quick);
    assert_eq!(quick_history.first().unwrap(), "ExecutionStarted");
    assert_eq!(quick_history.last().unwrap(), "ExecutionSucceeded");
    assert!(quick_history.iter().any(|t| t == "WaitStateEntered"));

    // a second node on the same database refuses to start while this one serves it (until
    // leases own executions, two nodes would run the same tasks twice)
    let other = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_weft"))
        .args([
            "server",
            "--listen",
            &format!("127.0.0.1:{}", free_port()),
            "--no-auth",
            "--db",
            &url,
        ])
        .env("WEFT_HOME", other.path())
        .env_remove("WEFT_DB")
        .current_dir(other.path())
        .output()
        .unwrap();
    assert!(
        !o.status.success(),
        "a second node started on a served database"
    );
    assert!(
        stderr(&o).contains("another weft node is serving the database"),
        "{}",
        stderr(&o)
    );

    // a second execution, killed with the node while it waits
    let slow = ok(
        s.port,
        "StartExecution",
        json!({"stateMachineArn": sm, "name": "slow", "input": "{\"wait\": 3}"}),
    )["executionArn"]
        .as_str()
        .unwrap()
        .to_string();
    let end = Instant::now() + Duration::from_secs(120);
    while !event_types(s.port, &slow)
        .iter()
        .any(|t| t == "WaitStateEntered")
    {
        assert!(Instant::now() < end, "the execution never reached its Wait");
        std::thread::sleep(Duration::from_millis(20));
    }
    s.kill9();

    // nothing of the executions went to the first node's sled store
    {
        let db = sled::open(first.path().join("db")).unwrap();
        assert_eq!(db.open_tree("sfn_executions").unwrap().len(), 0);
        assert_eq!(db.open_tree("sfn_history").unwrap().len(), 0);
    }
    assert_eq!(
        psql(&url, "SELECT count(*) FROM sfn_executions"),
        "2",
        "both executions are rows of PostgreSQL"
    );

    // a node on a fresh home finds everything in the database and finishes the execution
    let second = tempfile::tempdir().unwrap();
    home_with_echo(second.path());
    let s = start(second.path(), &url);
    let d = wait_done(s.port, &slow);
    assert_eq!(d["status"], "SUCCEEDED", "{d}");
    let types = event_types(s.port, &slow);
    assert_eq!(types.last().unwrap(), "ExecutionSucceeded", "{types:?}");
    assert_eq!(
        types.iter().filter(|t| *t == "ExecutionStarted").count(),
        1,
        "the restart resumed the execution, it did not start it again: {types:?}"
    );
    assert_eq!(event_types(s.port, &quick), quick_history);
    let d = ok(s.port, "DescribeExecution", json!({"executionArn": quick}));
    assert_eq!(d["status"], "SUCCEEDED");
    let listed = ok(s.port, "ListExecutions", json!({"stateMachineArn": sm}));
    assert_eq!(
        listed["executions"].as_array().unwrap().len(),
        2,
        "{listed}"
    );
    drop(s);
    psql(
        &admin,
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    );
}
