//! Fixtures of the tests that run `weft server` nodes on the test PostgreSQL cluster: a fresh
//! database per test, nodes as child processes (their log beside their home), AWS JSON calls.

use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::*;

pub fn psql(url: &str, sql: &str) -> String {
    let o = Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-At", "-c", sql])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// The nodes' lease in these tests.
pub const LEASE_MS: u64 = 4000;

/// `weft server --db URL --no-auth` with `$WEFT_HOME` = `home`, listening.
pub fn start(home: &Path, url: &str) -> Server {
    start_node(home, url, true)
}

/// `weft server --db URL` (`--no-auth` when `no_auth`) with `$WEFT_HOME` = `home`, listening.
pub fn start_node(home: &Path, url: &str, no_auth: bool) -> Server {
    start_node_in(home, home, url, no_auth)
}

/// [`start_node`] with its working directory (where fs grants point) in `work`.
pub fn start_node_in(home: &Path, work: &Path, url: &str, no_auth: bool) -> Server {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut args = vec!["server", "--listen", &listen, "--db", url];
    if no_auth {
        args.push("--no-auth");
    }
    let child = Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(&args)
        .env("WEFT_HOME", home)
        .env_remove("WEFT_DB")
        // a dead node's executions are adopted within this lease and a tick
        .env("WEFT_NODE_LEASE_MS", LEASE_MS.to_string())
        .current_dir(work)
        .env("WEFT_LOG", "info")
        .stdout(Stdio::null())
        // kept beside the home for a failure's investigation
        .stderr(std::fs::File::create(home.with_extension("log")).unwrap())
        .spawn()
        .unwrap();
    let mut server = Server { child, port };
    wait_until_serving(&mut server.child, port, Duration::from_secs(120));
    server
}

/// A `$WEFT_HOME` with the echo plugin installed.
pub fn home_with_echo(dir: &Path) {
    let o = weft(
        dir,
        &["plugin", "install", plugin("echo.wasm").to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", stderr(&o));
}

/// Polls DescribeExecution until the execution is no longer RUNNING (the test's own deadline
/// only guards against a hang).
pub fn wait_done(port: u16, arn: &str) -> Value {
    let end = Instant::now() + Duration::from_secs(300);
    loop {
        let d = ok(port, "DescribeExecution", json!({"executionArn": arn}));
        if d["status"] != "RUNNING" || Instant::now() > end {
            return d;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn event_types(port: u16, arn: &str) -> Vec<String> {
    let h = ok(port, "GetExecutionHistory", json!({"executionArn": arn}));
    h["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect()
}

/// A fresh database of the test cluster: (admin URL, its URL, its name).
pub fn fresh_database(tag: &str) -> Option<(String, String, String)> {
    let admin = pg_cluster()?;
    let name = format!("weft_{tag}_{}", std::process::id());
    psql(&admin, &format!("DROP DATABASE IF EXISTS {name}"));
    psql(&admin, &format!("CREATE DATABASE {name}"));
    let url = format!("{}/{name}", admin.rsplit_once('/').unwrap().0);
    Some((admin, url, name))
}

/// CreateStateMachine; the new state machine's ARN.
pub fn create_state_machine(port: u16, name: &str, definition: &str) -> String {
    ok(
        port,
        "CreateStateMachine",
        json!({"name": name, "definition": definition}),
    )["stateMachineArn"]
        .as_str()
        .unwrap()
        .to_string()
}

/// StartExecution; the new execution's ARN.
pub fn start_execution(port: u16, state_machine: &str, name: &str, input: &str) -> String {
    ok(
        port,
        "StartExecution",
        json!({"stateMachineArn": state_machine, "name": name, "input": input}),
    )["executionArn"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The task token a callback Task of `history` (a GetExecutionHistory answer) sent in its
/// `MessageBody.token`, as an external worker finds it; `None` while no Task sent one.
pub fn callback_token(history: &Value) -> Option<String> {
    history["events"].as_array()?.iter().find_map(|e| {
        let p = e["taskScheduledEventDetails"]["parameters"].as_str()?;
        let p: Value = serde_json::from_str(p).ok()?;
        p["MessageBody"]["token"].as_str().map(str::to_string)
    })
}

/// The tasks of a [`RECORDER_FLOW`]-shaped run whose completion is durable in the database at
/// `url` now, as `NAME-t1` / `NAME-t2`: both tasks of every SUCCEEDED execution, and the
/// journaled results of T1 (state 0) and of T2, whose state's key prefix `t2_key(NAME)` gives
/// (`"/2."` in the plain flow, `"/3."` where a callback state comes before T2).
pub fn durably_completed_tasks(
    url: &str,
    t2_key: impl Fn(&str) -> &'static str,
) -> HashSet<String> {
    let mut done = HashSet::new();
    for line in psql(
        url,
        "SELECT name FROM sfn_executions WHERE status = 'SUCCEEDED'",
    )
    .lines()
    {
        done.insert(format!("{line}-t1"));
        done.insert(format!("{line}-t2"));
    }
    let rows = psql(
        url,
        "SELECT e.name || ' ' || j.key FROM sfn_journal j JOIN sfn_executions e ON e.arn = j.execution \
         WHERE substring(j.entry FROM 1 FOR 9) = '{\"t\":\"ok\"'::BYTEA",
    );
    for line in rows.lines() {
        let (name, key) = line.split_once(' ').unwrap();
        let t = if key.starts_with("/0.") {
            "t1"
        } else if key.starts_with(t2_key(name)) {
            "t2"
        } else {
            continue;
        };
        done.insert(format!("{name}-{t}"));
    }
    done
}
