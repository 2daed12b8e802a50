//! Remote workers end to end: `weft server --no-local-tasks` and `weft worker` processes on
//! loopback. Tasks land on the worker of their queue (task logs name it); a worker killed with
//! SIGKILL mid-task is failed over and the retry runs on another worker; a tampered plugin blob
//! is refused by the worker; a task message carries only the secrets its grant allows, and a
//! late report of a failed-over try is discarded; a worker's key cannot use the control plane.
//! A Python callable's DAG folder packages reach its worker by digest, only for the key running
//! its try, and a tampered archive is refused.

mod common;
use common::*;

use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ADMIN_SECRET: &str = "admin-secret-0123456789";
const WORKER_SECRET: &str = "worker-secret-0123456789";
/// A worker key that may poll queue `own` only.
const NARROW_SECRET: &str = "narrow-secret-0123456789";
/// The node fails a try over after this long without a heartbeat.
const HEARTBEAT_TIMEOUT_MS: &str = "1500";

/// A node home: plugins installed, an admin key and a worker key whose policy allows only the
/// worker actions, a role `weft:role:task` (secrets:Get on `db-*`) and two secrets.
fn node_home() -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    std::fs::write(
        h.join("worker-policy.json"),
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Action": ["weft:PollTask", "weft:Heartbeat", "weft:ReportTask", "weft:GetBlob"],
            "Resource": ["*"]}]})
        .to_string(),
    )
    .unwrap();
    std::fs::write(
        h.join("narrow-policy.json"),
        json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["weft:Heartbeat", "weft:ReportTask"], "Resource": ["*"]},
            {"Effect": "Allow", "Action": ["weft:PollTask"], "Resource": ["weft:queue:own"]}]})
        .to_string(),
    )
    .unwrap();
    std::fs::write(
        h.join("credentials"),
        format!(
            "[default]\naws_access_key_id = WEFTADMIN\naws_secret_access_key = {ADMIN_SECRET}\n\n[worker]\naws_access_key_id = WEFTWORKER\naws_secret_access_key = {WORKER_SECRET}\nweft_policy = worker-policy.json\n\n[narrow]\naws_access_key_id = WEFTNARROW\naws_secret_access_key = {NARROW_SECRET}\nweft_policy = narrow-policy.json\n"
        ),
    )
    .unwrap();
    std::fs::create_dir_all(h.join("roles")).unwrap();
    std::fs::write(
        h.join("roles/task.json"),
        json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["secrets:Get"], "Resource": ["secret:db-*"]},
            {"Effect": "Allow", "Action": ["http:Request"], "Resource": ["http://127.0.0.1:*/*"]}]})
        .to_string(),
    )
    .unwrap();
    std::fs::write(
        h.join("secrets.json"),
        json!({"db-password": "granted-value", "root-key": "never-leaves-the-node"}).to_string(),
    )
    .unwrap();
    for p in ["echo.wasm", "hostile/spin.wasm", "http-request.wasm"] {
        let o = Command::new(env!("CARGO_BIN_EXE_weft"))
            .args(["plugin", "install", plugin(p).to_str().unwrap()])
            .env("WEFT_HOME", h)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    home
}

/// A child process killed and reaped when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_node(backend: &Backend, home: &Path, local_tasks: bool) -> (Proc, u16) {
    let port = free_port();
    (start_node_on(backend, home, port, local_tasks), port)
}

/// [`start_node`] (without local tasks) failing a try over only after 30 s without a
/// heartbeat: for tests whose tries compile the Python component while the machine is busy,
/// where no worker dies and a late heartbeat must not fail a try over.
fn start_patient_node(backend: &Backend, home: &Path) -> (Proc, u16) {
    let port = free_port();
    (start_node_with(backend, home, port, false, "30000"), port)
}

/// A node on `port` (a restarted node keeps its address: its workers poll it again).
fn start_node_on(backend: &Backend, home: &Path, port: u16, local_tasks: bool) -> Proc {
    start_node_with(backend, home, port, local_tasks, HEARTBEAT_TIMEOUT_MS)
}

/// [`start_node_on`] with its heartbeat timeout.
fn start_node_with(
    backend: &Backend,
    home: &Path,
    port: u16,
    local_tasks: bool,
    heartbeat_timeout_ms: &str,
) -> Proc {
    let listen = format!("127.0.0.1:{port}");
    let mut args = vec!["server", "--listen", &listen];
    if !local_tasks {
        args.push("--no-local-tasks");
    }
    let child = backend
        .apply(&mut Command::new(env!("CARGO_BIN_EXE_weft")))
        .args(&args)
        .env("WEFT_HOME", home)
        .env("WEFT_WORKER_HEARTBEAT_TIMEOUT_MS", heartbeat_timeout_ms)
        .env("WEFT_WORKER_POLL_WAIT_MS", "2000")
        .current_dir(home)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut p = Proc(child);
    wait_until_serving(&mut p.0, port, Duration::from_secs(60));
    p
}

/// `weft worker` with its own empty home, signing with the node's `worker` profile.
fn start_worker(
    node_home: &Path,
    port: u16,
    id: &str,
    queues: &[&str],
) -> (Proc, tempfile::TempDir) {
    start_worker_with(node_home, port, id, queues, &["--max-slots", "2"])
}

/// [`start_worker`] with `extra` arguments.
fn start_worker_with(
    node_home: &Path,
    port: u16,
    id: &str,
    queues: &[&str],
    extra: &[&str],
) -> (Proc, tempfile::TempDir) {
    start_worker_at(
        node_home,
        &format!("http://127.0.0.1:{port}"),
        id,
        queues,
        extra,
    )
}

/// [`start_worker_with`] polling the node at `server`.
fn start_worker_at(
    node_home: &Path,
    server: &str,
    id: &str,
    queues: &[&str],
    extra: &[&str],
) -> (Proc, tempfile::TempDir) {
    start_worker_env(node_home, server, id, queues, extra, &[])
}

/// [`start_worker_at`] with environment variables set.
fn start_worker_env(
    node_home: &Path,
    server: &str,
    id: &str,
    queues: &[&str],
    extra: &[&str],
    env: &[(&str, &Path)],
) -> (Proc, tempfile::TempDir) {
    let home = tempfile::tempdir().unwrap();
    let mut args = vec![
        "worker",
        "--server",
        server,
        "--profile",
        "worker",
        "--id",
        id,
    ];
    args.extend(extra);
    for q in queues {
        args.extend(["--queue", q]);
    }
    let child = Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(&args)
        .env("WEFT_HOME", home.path())
        .env("AWS_SHARED_CREDENTIALS_FILE", node_home.join("credentials"))
        .envs(env.iter().copied())
        .current_dir(home.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    (Proc(child), home)
}

/// One HTTP request with `Authorization: Bearer SECRET`: (status, JSON body).
fn request(
    port: u16,
    secret: &str,
    method: &str,
    path: &str,
    headers: &str,
    body: &str,
) -> (u16, Value) {
    let (status, body) = request_raw(port, secret, method, path, headers, body);
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// [`request`] answering the body's bytes.
fn request_raw(
    port: u16,
    secret: &str,
    method: &str,
    path: &str,
    headers: &str,
    body: &str,
) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    // listing DAGs parses the folder, the first time after a cold compile of the Python
    // parser, which takes minutes on a loaded 2-core machine
    s.set_read_timeout(Some(Duration::from_secs(600))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {secret}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(out.len());
    let head = String::from_utf8_lossy(&out[..split]);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, out.get(split + 4..).unwrap_or_default().to_vec())
}

fn sfn(port: u16, secret: &str, action: &str, body: Value) -> (u16, Value) {
    request(
        port,
        secret,
        "POST",
        "/",
        &format!("X-Amz-Target: AWSStepFunctions.{action}\r\nContent-Type: application/x-amz-json-1.0\r\n"),
        &body.to_string(),
    )
}

fn ok(port: u16, action: &str, body: Value) -> Value {
    let (st, v) = sfn(port, ADMIN_SECRET, action, body);
    assert_eq!(st, 200, "{action}: {v}");
    v
}

fn worker_call(port: u16, path: &str, body: Value) -> (u16, Value) {
    worker_call_as(port, WORKER_SECRET, path, body)
}

fn worker_call_as(port: u16, secret: &str, path: &str, body: Value) -> (u16, Value) {
    request(
        port,
        secret,
        "POST",
        path,
        "Content-Type: application/json\r\n",
        &body.to_string(),
    )
}

/// Creates state machine `name` and starts one execution; its ARN.
fn start(port: u16, name: &str, definition: Value) -> String {
    let sm = ok(
        port,
        "CreateStateMachine",
        json!({"name": name, "definition": definition.to_string(), "roleArn": "weft:role:task"}),
    )["stateMachineArn"]
        .as_str()
        .unwrap()
        .to_string();
    ok(
        port,
        "StartExecution",
        json!({"stateMachineArn": sm, "name": "e1", "input": "{\"n\": 1}"}),
    )["executionArn"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Creates state machine `name` (role `task`): one `http-request` Task with `parameters` and
/// `TimeoutSeconds: timeout`; its ARN.
fn request_machine(port: u16, name: &str, timeout: u64, parameters: Value) -> String {
    let definition = json!({"StartAt": "T", "States": {"T": {"Type": "Task",
        "Resource": "weft:plugin:http-request", "TimeoutSeconds": timeout,
        "Parameters": parameters, "End": true}}});
    ok(
        port,
        "CreateStateMachine",
        json!({"name": name, "roleArn": "weft:role:task", "definition": definition.to_string()}),
    )["stateMachineArn"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Waits for the execution to end; its DescribeExecution.
fn finished(port: u16, arn: &str) -> Value {
    let end = Instant::now() + Duration::from_secs(120);
    loop {
        let d = ok(port, "DescribeExecution", json!({"executionArn": arn}));
        if d["status"] != "RUNNING" {
            return d;
        }
        assert!(Instant::now() < end, "the execution did not finish: {d}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn task_logs(port: u16, arn: &str) -> Vec<Value> {
    let (st, v) = request(
        port,
        ADMIN_SECRET,
        "GET",
        &format!("/v1/executions/{arn}/tasks"),
        "",
        "",
    );
    assert_eq!(st, 200, "{v}");
    v["tasks"].as_array().unwrap().clone()
}

/// A one-echo-Task execution (state machine `after`) succeeds: a worker is free to run it.
fn assert_an_echo_task_succeeds(port: u16) {
    let arn = start(
        port,
        "after",
        json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "weft:plugin:echo", "End": true}}}),
    );
    assert_eq!(finished(port, &arn)["status"], "SUCCEEDED");
}

/// Whether no worker runs a try.
fn no_task_running(port: u16) -> bool {
    workers(port)["workers"]
        .as_array()
        .unwrap()
        .iter()
        .all(|w| w["tasks"].as_array().unwrap().is_empty())
}

fn workers(port: u16) -> Value {
    let (st, v) = request(port, ADMIN_SECRET, "GET", "/v1/workers", "", "");
    assert_eq!(st, 200, "{v}");
    v
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(60);
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Triggers a run of `dag` (its DAG file already loaded); the run id.
fn trigger_dag(port: u16, dag: &str) -> String {
    let (st, run) = request(
        port,
        ADMIN_SECRET,
        "POST",
        &format!("/v1/dags/{dag}/runs"),
        "Content-Type: application/json\r\n",
        "{}",
    );
    assert_eq!(st, 200, "{run}");
    run["runId"].as_str().unwrap().to_string()
}

/// The ids of the DAGs the node has loaded.
fn dags(port: u16) -> Vec<String> {
    let (_, v) = request(port, ADMIN_SECRET, "GET", "/v1/dags", "", "");
    v["dags"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|d| d["dagId"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Waits up to `limit` for the latest run of `dag` to succeed (a failed run fails the test).
fn wait_for_dag_success(port: u16, dag: &str, limit: Duration) {
    wait_for_dag_end(port, dag, "success", limit);
}

/// Waits up to `limit` for the latest run of `dag` to end `state` (`success` or `failed`; the
/// other end fails the test); the runs listing.
fn wait_for_dag_end(port: u16, dag: &str, state: &str, limit: Duration) -> Value {
    let end = Instant::now() + limit;
    loop {
        let (_, v) = request(
            port,
            ADMIN_SECRET,
            "GET",
            &format!("/v1/dags/{dag}/runs"),
            "",
            "",
        );
        let now = v["runs"][0]["state"].as_str().unwrap_or("").to_string();
        if now == state {
            return v;
        }
        assert!(now != "success" && now != "failed", "{v}");
        assert!(
            Instant::now() < end,
            "the run of {dag} did not end {state}: {v}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The tries' logs of `task` in run `run_id` of `dag`.
fn try_logs(port: u16, dag: &str, run_id: &str, task: &str) -> Value {
    let (st, v) = request(
        port,
        ADMIN_SECRET,
        "GET",
        &format!("/v1/dags/{dag}/runs/{run_id}/tasks/{task}/logs"),
        "",
        "",
    );
    assert_eq!(st, 200, "{v}");
    v
}

fn echo_task(queue: &str, next: Option<&str>) -> Value {
    let mut t = json!({"Type": "Task", "Resource": "weft:plugin:echo",
        "Parameters": {"weft:queue": queue, "from": queue, "n.$": "$.n"}, "ResultPath": format!("$.{queue}")});
    match next {
        Some(n) => t["Next"] = json!(n),
        None => t["End"] = json!(true),
    }
    t
}

fn tasks_land_on_the_worker_of_their_queue_and_logs_name_it(backend: &Backend) {
    let home = node_home();
    let (_node, port) = start_node(backend, home.path(), false);
    let (_a, a_home) = start_worker(home.path(), port, "wa", &["alpha"]);
    let (_b, _b_home) = start_worker(home.path(), port, "wb", &["beta"]);
    wait_for("both workers", || {
        workers(port)["workers"].as_array().unwrap().len() == 2
    });
    let arn = start(
        port,
        "queues",
        json!({"StartAt": "A", "States": {"A": echo_task("alpha", Some("B")), "B": echo_task("beta", None)}}),
    );
    let d = finished(port, &arn);
    assert_eq!(d["status"], "SUCCEEDED", "{d}");
    let out: Value = serde_json::from_str(d["output"].as_str().unwrap()).unwrap();
    assert_eq!(out["alpha"]["from"], "alpha");
    assert!(
        out["alpha"].get("weft:queue").is_none(),
        "the queue key is weft's, not the operator's: {out}"
    );
    let logs = task_logs(port, &arn);
    let worker_of = |state: &str| {
        logs.iter()
            .find(|l| l["state"] == state)
            .unwrap_or_else(|| panic!("no log of {state}: {logs:?}"))["worker"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(worker_of("A").ends_with("/wa"), "{logs:?}");
    assert!(worker_of("B").ends_with("/wb"), "{logs:?}");
    // the worker fetched the plugin by digest into its own store, with its compiled artifact
    let digest = logs[0]["digest"].as_str().unwrap();
    assert!(a_home
        .path()
        .join("blobs")
        .join(&digest[..2])
        .join(&digest[2..])
        .is_file());
    // /metrics carries the dispatcher's series
    let metrics = metrics_text(port);
    for series in [
        "weft_workers_connected 2",
        "weft_queue_depth{queue=\"alpha\"} 0",
        "weft_remote_tasks_running 0",
        "weft_worker_slots{state=\"idle\"}",
    ] {
        assert!(metrics.contains(series), "{series} in {metrics}");
    }
    // and each worker's slots per queue it serves
    for (w, q) in [("wa", "alpha"), ("wb", "beta")] {
        for state in ["busy", "idle"] {
            assert!(
                metrics.lines().any(|l| l
                    .starts_with(&format!("weft_worker_queue_slots{{worker=\"{w}@"))
                    && l.contains(&format!("queue=\"{q}\",state=\"{state}\"}} "))),
                "{w} {q} {state} in {metrics}"
            );
        }
    }
}
on_both_backends!(tasks_land_on_the_worker_of_their_queue_and_logs_name_it);

fn metrics_text(port: u16) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {ADMIN_SECRET}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// A loopback HTTP port that reads each request and holds it until released: a task requesting
/// it stays busy without burning fuel. Released, it closes ([`Held::hanging`]: the requests
/// fail) or answers 200 ([`Held::gate`]: they succeed) every held request and every later one.
struct Held {
    port: u16,
    held: std::sync::Arc<std::sync::Mutex<Option<Vec<TcpStream>>>>,
    answer: bool,
}

impl Held {
    fn hanging() -> Self {
        Self::start(false)
    }

    fn gate() -> Self {
        Self::start(true)
    }

    fn start(answer: bool) -> Self {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let held = std::sync::Arc::new(std::sync::Mutex::new(Some(Vec::new())));
        let h = held.clone();
        std::thread::spawn(move || {
            for mut c in l.incoming().flatten() {
                let _ = c.set_read_timeout(Some(Duration::from_secs(10)));
                let mut head = Vec::new();
                let mut b = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && c.read(&mut b).is_ok_and(|n| n == 1) {
                    head.push(b[0]);
                }
                match h.lock().unwrap().as_mut() {
                    Some(v) => v.push(c),
                    // released: a later request (a client's retry) is answered or closed at once
                    None => Held::finish(c, answer),
                }
            }
        });
        Held { port, held, answer }
    }

    fn finish(mut c: TcpStream, answer: bool) {
        if answer {
            let _ = c.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\nConnection: close\r\n\r\n{\"ok\":true}");
        }
    }

    /// Answers (a gate) or closes (hanging) every held request, and every later one.
    fn release(&self) {
        for c in self.held.lock().unwrap().take().unwrap_or_default() {
            Held::finish(c, self.answer);
        }
    }
}

fn a_worker_grows_its_slots_with_the_queue_and_shrinks_when_idle(backend: &Backend) {
    let home = node_home();
    let hang = Held::hanging();
    let (_node, port) = start_node(backend, home.path(), false);
    let (_w, _wh) = start_worker_with(
        home.path(),
        port,
        "wg",
        &["default"],
        &["--min-slots", "1", "--max-slots", "3"],
    );
    let slots = || {
        workers(port)["workers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["worker_id"] == "wg")
            .map(|w| {
                (
                    w["slots"].as_u64().unwrap(),
                    w["tasks"].as_array().unwrap().len(),
                )
            })
    };
    wait_for("the worker", || slots().is_some());
    let sm = request_machine(
        port,
        "grow",
        600,
        json!({"url": format!("http://127.0.0.1:{}/hang", hang.port)}),
    );
    let mut arns = Vec::new();
    for i in 0..4 {
        arns.push(
            ok(
                port,
                "StartExecution",
                json!({"stateMachineArn": sm, "name": format!("g{i}")}),
            )["executionArn"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    wait_for("three slots running three tasks", || {
        slots() == Some((3, 3))
    });
    // the fourth waits on the queue, and the node says so
    wait_for("a queue depth of 1 in /metrics", || {
        metrics_text(port).contains("weft_queue_depth{queue=\"default\"} 1")
    });
    assert!(metrics_text(port).contains("weft_remote_tasks_running 3"));
    for arn in &arns {
        ok(port, "StopExecution", json!({"executionArn": arn}));
    }
    hang.release();
    // idle polls give slots back down to --min-slots
    wait_for("one slot left", || slots() == Some((1, 0)));
}
on_both_backends!(a_worker_grows_its_slots_with_the_queue_and_shrinks_when_idle);

fn a_worker_key_is_refused_on_the_control_plane(backend: &Backend) {
    let home = node_home();
    let (_node, port) = start_node(backend, home.path(), false);
    let (st, v) = sfn(
        port,
        WORKER_SECRET,
        "CreateStateMachine",
        json!({"name": "x", "definition": "{\"StartAt\":\"P\",\"States\":{\"P\":{\"Type\":\"Pass\",\"End\":true}}}", "roleArn": "weft:role:task"}),
    );
    assert_eq!(v["__type"], "AccessDeniedException", "{st} {v}");
    let (st, _) = sfn(port, WORKER_SECRET, "ListExecutions", json!({}));
    assert_ne!(st, 200);
    let (st, _) = request(port, WORKER_SECRET, "GET", "/v1/workers", "", "");
    assert_eq!(st, 403);
    // an unknown secret is not a worker at all
    let (st, _) = request(
        port,
        "nope",
        "POST",
        "/v1/worker/poll",
        "Content-Type: application/json\r\n",
        "{}",
    );
    assert_eq!(st, 403);
    // blobs: only installed plugins, only by a well-formed digest
    let (st, v) = request(
        port,
        WORKER_SECRET,
        "GET",
        &format!("/v1/blobs/{}", "0".repeat(64)),
        "",
        "",
    );
    assert_eq!(
        (st, v["__type"].as_str()),
        (404, Some("ResourceNotFoundException")),
        "{v}"
    );
    for bad in ["..%2F..%2Fcredentials", "abc", "zz"] {
        let (st, _) = request(
            port,
            WORKER_SECRET,
            "GET",
            &format!("/v1/blobs/{bad}"),
            "",
            "",
        );
        assert_eq!(st, 400, "{bad}");
    }
    // a forged worker report for a try nobody took is refused
    let (st, _) = worker_call(
        port,
        "/v1/worker/report",
        json!({"worker_id": "ghost", "task_id": "00000000-0000-0000-0000-000000000000", "outcome": {"output": "{}"}}),
    );
    assert_eq!(st, 409);
    // the admin key (no policy) may create it
    let (st, _) = sfn(
        port,
        ADMIN_SECRET,
        "CreateStateMachine",
        json!({"name": "x", "definition": "{\"StartAt\":\"P\",\"States\":{\"P\":{\"Type\":\"Pass\",\"End\":true}}}"}),
    );
    assert_eq!(st, 200);
}
on_both_backends!(a_worker_key_is_refused_on_the_control_plane);

/// The test plays the worker: a report that carries its slot's next poll is answered with the
/// next task at once, or with one queued while it waits; the poll riding along is authorised as a poll is (its queues, its worker
/// id), before the report takes effect.
fn a_report_hands_out_the_slot_s_next_task_in_the_same_round_trip(backend: &Backend) {
    let home = node_home();
    let (_node, port) = start_node(backend, home.path(), false);
    let def = |queue: &str| {
        json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "weft:plugin:echo",
            "Parameters": {"weft:queue": queue}, "End": true}}})
    };
    let first = start(port, "first", def("own"));
    let second = start(port, "second", def("own"));
    let other = start(port, "other", def("other"));
    let poll = |queues: Value| json!({"worker_id": "probe", "host": "test", "queues": queues, "slots": 1, "busy": 0});
    let (st, got) = worker_call_as(port, NARROW_SECRET, "/v1/worker/poll", poll(json!(["own"])));
    assert_eq!(st, 200, "{got}");
    let id = got["task"]["task_id"].as_str().unwrap().to_string();
    let report = |task_id: &str, next: Value| {
        json!({"worker_id": "probe", "task_id": task_id, "outcome": {"output": "{\"n\":1}"},
               "next": next})
    };
    // attacker: the poll riding along names a queue this key may not poll: refused whole,
    // the report is not taken either (the try still runs)
    let (st, v) = worker_call_as(
        port,
        NARROW_SECRET,
        "/v1/worker/report",
        report(&id, poll(json!(["own", "other"]))),
    );
    assert_eq!(st, 403, "{v}");
    // attacker: another worker's poll cannot ride along
    let mut foreign = poll(json!(["own"]));
    foreign["worker_id"] = json!("someone-else");
    let (st, v) = worker_call_as(
        port,
        NARROW_SECRET,
        "/v1/worker/report",
        report(&id, foreign),
    );
    assert_eq!(st, 400, "{v}");
    let (st, v) = worker_call_as(
        port,
        NARROW_SECRET,
        "/v1/worker/report",
        report(
            &id,
            json!({"worker_id": "probe", "host": "../x", "queues": ["own"], "slots": 1, "busy": 0}),
        ),
    );
    assert_eq!(st, 400, "{v}");
    // the user: the report is taken and the next task of the slot's queues comes back with it
    let (st, next) = worker_call_as(
        port,
        NARROW_SECRET,
        "/v1/worker/report",
        report(&id, poll(json!(["own"]))),
    );
    assert_eq!(st, 200, "{next}");
    let next_id = next["task"]["task_id"].as_str().unwrap().to_string();
    assert_ne!(next_id, id);
    assert_eq!(next["queue_depth"], 0);
    // nothing left on the queue: the report's poll waits as a poll does, and hands out the
    // task queued meanwhile (no second request for an idle slot)
    let third_sm = ok(
        port,
        "CreateStateMachine",
        json!({"name": "third", "definition": def("own").to_string(), "roleArn": "weft:role:task"}),
    )["stateMachineArn"]
        .as_str()
        .unwrap()
        .to_string();
    let waiting = {
        let body = report(&next_id, poll(json!(["own"])));
        std::thread::spawn(move || worker_call_as(port, NARROW_SECRET, "/v1/worker/report", body))
    };
    // the report is in (its execution ends) before the next execution starts
    assert_eq!(finished(port, &second)["status"], "SUCCEEDED");
    let third = ok(
        port,
        "StartExecution",
        json!({"stateMachineArn": third_sm, "name": "e1", "input": "{}"}),
    )["executionArn"]
        .as_str()
        .unwrap()
        .to_string();
    let (st, last) = waiting.join().unwrap();
    assert_eq!(st, 200, "{last}");
    let third_id = last["task"]["task_id"].as_str().unwrap().to_string();
    assert_eq!(last["task"]["execution"], json!(third), "{last}");
    let (st, v) = worker_call_as(
        port,
        NARROW_SECRET,
        "/v1/worker/report",
        json!({"worker_id": "probe", "task_id": third_id, "outcome": {"output": "{\"n\":3}"}}),
    );
    assert_eq!((st, v), (200, json!({})));
    assert_eq!(finished(port, &third)["output"], "{\"n\":3}");
    // a report without a poll is answered as before
    for arn in [&first, &second] {
        let d = finished(port, arn);
        assert_eq!(d["status"], "SUCCEEDED", "{d}");
        assert_eq!(d["output"], "{\"n\":1}");
    }
    let mut plain = poll(json!(["other"]));
    plain["worker_id"] = json!("plain");
    let (st, v) = worker_call(port, "/v1/worker/poll", plain);
    assert_eq!(st, 200, "{v}");
    let id = v["task"]["task_id"].as_str().unwrap().to_string();
    let (st, v) = worker_call(
        port,
        "/v1/worker/report",
        json!({"worker_id": "plain", "task_id": id, "outcome": {"output": "{}"}}),
    );
    assert_eq!((st, v), (200, json!({})));
    assert_eq!(finished(port, &other)["status"], "SUCCEEDED");
}
on_both_backends!(a_report_hands_out_the_slot_s_next_task_in_the_same_round_trip);

/// The test plays the worker: it inspects the message it is given, lets the try go stale, and
/// finds its late report refused while the retry succeeds.
fn a_task_message_carries_only_granted_secrets_and_late_reports_are_discarded(backend: &Backend) {
    let home = node_home();
    let (_node, port) = start_node(backend, home.path(), false);
    let def = json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "weft:plugin:echo",
        "Parameters": {"weft:queue": "own"},
        "Retry": [{"ErrorEquals": ["States.TaskFailed"], "IntervalSeconds": 1, "MaxAttempts": 1}],
        "End": true}}});
    let arn = start(port, "secrets", def);
    let poll =
        json!({"worker_id": "probe", "host": "test", "queues": ["own"], "slots": 1, "busy": 0});
    let (st, first) = worker_call(port, "/v1/worker/poll", poll.clone());
    assert_eq!(st, 200, "{first}");
    let task = &first["task"];
    assert_eq!(task["plugin"]["name"], "echo");
    assert_eq!(task["plugin"]["digest"].as_str().unwrap().len(), 64);
    assert_eq!(
        task["secrets"],
        json!({"db-password": "granted-value"}),
        "only the granted secret"
    );
    let raw = first.to_string();
    assert!(!raw.contains("never-leaves-the-node"), "{raw}");
    assert!(
        raw.contains("secret:db-*"),
        "the evaluated grant rides along: {raw}"
    );
    // another worker id cannot heartbeat or report this try
    let old_id = task["task_id"].as_str().unwrap().to_string();
    let (st, _) = worker_call(
        port,
        "/v1/worker/heartbeat",
        json!({"worker_id": "intruder", "task_id": old_id}),
    );
    assert_eq!(st, 409);
    // no heartbeat: the try is failed over, the Retry queues a new try (long poll waits for it)
    let end = Instant::now() + Duration::from_secs(60);
    let second = loop {
        let (st, v) = worker_call(port, "/v1/worker/poll", poll.clone());
        assert_eq!(st, 200, "{v}");
        if !v["task"].is_null() {
            break v;
        }
        assert!(Instant::now() < end, "no retry was queued");
    };
    let new_id = second["task"]["task_id"].as_str().unwrap().to_string();
    assert_ne!(new_id, old_id, "each try has its own fencing id");
    assert_eq!(second["task"]["attempt"], 2);
    // the late report of the failed-over try is discarded
    let (st, v) = worker_call(
        port,
        "/v1/worker/report",
        json!({"worker_id": "probe", "task_id": old_id, "outcome": {"output": "{\"late\":true}"}}),
    );
    assert_eq!(st, 409, "{v}");
    // the current try's report is accepted
    let (st, _) = worker_call(
        port,
        "/v1/worker/report",
        json!({"worker_id": "probe", "task_id": new_id, "outcome": {"output": "{\"ok\":true}"}}),
    );
    assert_eq!(st, 200);
    let d = finished(port, &arn);
    assert_eq!(d["status"], "SUCCEEDED", "{d}");
    assert_eq!(d["output"], "{\"ok\":true}");
    let logs = task_logs(port, &arn);
    assert_eq!(logs.len(), 2, "{logs:?}");
    assert_eq!(logs[0]["error"]["error"], "States.TaskFailed");
    assert_eq!(logs[1]["worker"], "test/probe");
}
on_both_backends!(a_task_message_carries_only_granted_secrets_and_late_reports_are_discarded);

fn a_killed_worker_s_task_is_retried_on_another_worker(backend: &Backend) {
    let home = node_home();
    let (_node, port) = start_node(backend, home.path(), false);
    let (a, _a_home) = start_worker(home.path(), port, "wa", &["shared"]);
    // the first try spins (until killed), the retry echoes
    let def = json!({"StartAt": "T", "States": {"T": {"Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"weft:queue": "shared",
            "FunctionName.$": "States.ArrayGetItem(States.Array('hostile-spin', 'echo'), $$.State.RetryCount)",
            "Payload": {"survived": true}},
        "OutputPath": "$.Payload",
        "TimeoutSeconds": 120,
        "Retry": [{"ErrorEquals": ["States.TaskFailed"], "IntervalSeconds": 1, "MaxAttempts": 1}],
        "End": true}}});
    let arn = start(port, "failover", def);
    wait_for("the spin task to run on wa", || {
        workers(port)["workers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["worker_id"] == "wa" && !w["tasks"].as_array().unwrap().is_empty())
    });
    drop(a); // SIGKILL, reaped
    let (_b, _b_home) = start_worker(home.path(), port, "wb", &["shared"]);
    let d = finished(port, &arn);
    assert_eq!(d["status"], "SUCCEEDED", "{d}");
    let out: Value = serde_json::from_str(d["output"].as_str().unwrap()).unwrap();
    assert_eq!(out["survived"], true, "{out}");
    let logs = task_logs(port, &arn);
    assert_eq!(logs.len(), 2, "{logs:?}");
    assert!(logs[0]["worker"].as_str().unwrap().ends_with("/wa"));
    assert!(
        logs[0]["error"]["cause"]
            .as_str()
            .unwrap()
            .contains("stopped heartbeating"),
        "{logs:?}"
    );
    assert!(logs[1]["worker"].as_str().unwrap().ends_with("/wb"));
    assert_eq!(logs[1]["error"], Value::Null);
}
on_both_backends!(a_killed_worker_s_task_is_retried_on_another_worker);

fn a_tampered_plugin_blob_is_refused_by_the_worker(backend: &Backend) {
    let home = node_home();
    // corrupt echo's blob in the node's store: the node streams it as it lies on disk
    let list = Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(["plugin", "list", "--json"])
        .env("WEFT_HOME", home.path())
        .output()
        .unwrap();
    let plugins: Value = serde_json::from_slice(&list.stdout).unwrap();
    let digest = plugins
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "echo")
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("blake3:")
        .to_string();
    let blob = home
        .path()
        .join("blobs")
        .join(&digest[..2])
        .join(&digest[2..]);
    let mut bytes = std::fs::read(&blob).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&blob, &bytes).unwrap();
    let (_node, port) = start_node(backend, home.path(), false);
    let (_w, w_home) = start_worker(home.path(), port, "wt", &["default"]);
    let arn = start(
        port,
        "tampered",
        json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "weft:plugin:echo", "End": true}}}),
    );
    let d = finished(port, &arn);
    assert_eq!(d["status"], "FAILED", "{d}");
    assert_eq!(d["error"], "Sandbox.PluginCorrupt", "{d}");
    assert!(d["cause"].as_str().unwrap().contains(&digest), "{d}");
    assert!(
        !w_home
            .path()
            .join("blobs")
            .join(&digest[..2])
            .join(&digest[2..])
            .exists(),
        "nothing was written to the worker's store"
    );
}
on_both_backends!(a_tampered_plugin_blob_is_refused_by_the_worker);

fn dag_tasks_go_to_the_worker_of_their_queue(backend: &Backend) {
    let home = node_home();
    std::fs::create_dir_all(home.path().join("dags")).unwrap();
    // `queue:` on a task, and in default_args for the others
    std::fs::write(
        home.path().join("dags/remote.dag.yaml"),
        "remote_dag:\n  schedule: null\n  is_paused_upon_creation: false\n  start_date: 2024-03-01\n  default_args:\n    queue: beta\n  tasks:\n    first:\n      operator: echo\n      queue: alpha\n      msg: hi\n    second:\n      operator: echo\n      dependencies: [first]\n      got: \"{{ ti.xcom_pull(task_ids='first') }}\"\n",
    )
    .unwrap();
    let (_node, port) = start_node(backend, home.path(), false);
    let (_a, _ah) = start_worker(home.path(), port, "wa", &["alpha"]);
    let (_b, _bh) = start_worker(home.path(), port, "wb", &["beta"]);
    wait_for("both workers", || {
        workers(port)["workers"].as_array().unwrap().len() == 2
    });
    let run_id = trigger_dag(port, "remote_dag");
    wait_for_dag_success(port, "remote_dag", Duration::from_secs(60));
    for (task, worker) in [("first", "/wa"), ("second", "/wb")] {
        let text = try_logs(port, "remote_dag", &run_id, task).to_string();
        assert!(
            text.contains(&format!("{worker}\"")),
            "{task} ran on {worker}: {text}"
        );
        // Airflow's task instance names the host that ran the try: the worker's
        let (st, ti) = request(
            port,
            ADMIN_SECRET,
            "GET",
            &format!("/api/v2/dags/remote_dag/dagRuns/{run_id}/taskInstances/{task}"),
            "",
            "",
        );
        assert_eq!(st, 200, "{ti}");
        let host = ti["hostname"]
            .as_str()
            .unwrap_or_else(|| panic!("no hostname: {ti}"));
        assert!(
            text.contains(&format!("\"{host}{worker}\"")),
            "{task}'s hostname {host} is the host of worker {worker}: {text}"
        );
    }
}
on_both_backends!(dag_tasks_go_to_the_worker_of_their_queue);

fn stop_execution_cancels_the_task_on_its_worker(backend: &Backend) {
    let home = node_home();
    let (_node, port) = start_node(backend, home.path(), false);
    let (_w, _wh) = start_worker(home.path(), port, "ws", &["default"]);
    let arn = start(
        port,
        "stopped",
        json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "weft:plugin:hostile-spin",
            "TimeoutSeconds": 600, "End": true}}}),
    );
    let busy = || {
        workers(port)["workers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["worker_id"] == "ws" && w["busy"].as_u64().unwrap_or(0) > 0)
    };
    wait_for("the spin task to run on ws", || !no_task_running(port));
    ok(port, "StopExecution", json!({"executionArn": arn}));
    assert_eq!(finished(port, &arn)["status"], "ABORTED");
    // the worker stops the guest at its next heartbeat, reports, and polls again idle
    wait_for("the worker to be idle again", || {
        !busy() && no_task_running(port)
    });
    // and is free for the next task
    assert_an_echo_task_succeeds(port);
}
on_both_backends!(stop_execution_cancels_the_task_on_its_worker);

/// A loopback HTTP server answering every request `200 {}`.
fn answering_server() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut c in l.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = c.read(&mut buf);
            let _ = c.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
            );
        }
    });
    port
}

fn a_killed_worker_s_dag_try_is_retried_on_another_worker(backend: &Backend) {
    let home = node_home();
    let hang = Held::hanging();
    let answer = answering_server();
    std::fs::create_dir_all(home.path().join("dags")).unwrap();
    // the first try hangs on a port that never answers, the retry reaches one that does
    std::fs::write(
        home.path().join("dags/failover.dag.yaml"),
        format!(
            "failover_dag:\n  schedule: null\n  is_paused_upon_creation: false\n  start_date: 2024-03-01\n  tasks:\n    fetch:\n      operator: http-request\n      grant: task\n      retries: 1\n      retry_delay: {{seconds: 1}}\n      url: \"http://127.0.0.1:{{{{ {} if ti.try_number == 1 else {} }}}}/x\"\n",
            hang.port, answer
        ),
    )
    .unwrap();
    let (_node, port) = start_node(backend, home.path(), false);
    let (a, _ah) = start_worker(home.path(), port, "wa", &["default"]);
    let run_id = trigger_dag(port, "failover_dag");
    wait_for("the first try to run on wa", || {
        workers(port)["workers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["worker_id"] == "wa" && !w["tasks"].as_array().unwrap().is_empty())
    });
    drop(a); // SIGKILL, reaped
    let (_b, _bh) = start_worker(home.path(), port, "wb", &["default"]);
    wait_for_dag_success(port, "failover_dag", Duration::from_secs(60));
    let v = try_logs(port, "failover_dag", &run_id, "fetch");
    let tries = v["tries"].as_array().unwrap();
    assert_eq!(tries.len(), 2, "{v}");
    let text = v.to_string();
    assert!(text.contains("stopped heartbeating"), "{text}");
    assert!(text.contains("/wa\"") && text.contains("/wb\""), "{text}");
    hang.release();
}
on_both_backends!(a_killed_worker_s_dag_try_is_retried_on_another_worker);

/// A Python DAG file's `@task` callables, on a node with `--no-local-tasks`: each try runs on
/// the worker of its queue in the Python DAG parser component (fetched by digest), from the DAG
/// file's text carried in the task message; XComs pass between the tries, and a callable without
/// a grant cannot read the worker's files.
fn python_callables_run_on_the_worker_of_their_queue(backend: &Backend) {
    let home = node_home();
    let o = Command::new(env!("CARGO_BIN_EXE_weft"))
        .args([
            "plugin",
            "install",
            plugin("weft-airflow-py.wasm").to_str().unwrap(),
        ])
        .env("WEFT_HOME", home.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::create_dir_all(home.path().join("dags")).unwrap();
    std::fs::write(
        home.path().join("dags/py_remote.py"),
        r#"
from datetime import datetime
from airflow.sdk import dag, task

@dag(schedule=None, start_date=datetime(2024, 3, 1), catchup=False,
     is_paused_upon_creation=False, default_args={"queue": "alpha"})
def py_remote():
    @task
    def extract():
        return {"n": 21}

    @task
    def double(d):
        return d["n"] * 2

    @task
    def snoop():
        try:
            return open("/etc/hostname").read()
        except Exception as e:
            return "refused: " + type(e).__name__

    double(extract()) >> snoop()

py_remote()
"#,
    )
    .unwrap();
    let (_node, port) = start_patient_node(backend, home.path());
    let (_a, _ah) = start_worker(home.path(), port, "wpy", &["alpha"]);
    wait_for_dag(port, "py_remote");
    let run_id = trigger_dag(port, "py_remote");
    wait_for_dag_success(port, "py_remote", Duration::from_secs(600));
    for task in ["extract", "double", "snoop"] {
        let v = try_logs(port, "py_remote", &run_id, task);
        assert!(v.to_string().contains("/wpy\""), "{task} ran on wpy: {v}");
    }
    let xcom = |task: &str| {
        let (st, v) = request(
            port,
            ADMIN_SECRET,
            "GET",
            &format!("/api/v2/dags/py_remote/dagRuns/{run_id}/taskInstances/{task}/xcomEntries/return_value"),
            "",
            "",
        );
        assert_eq!(st, 200, "{task}: {v}");
        v["value"].clone()
    };
    assert_eq!(xcom("double"), json!(42));
    let snooped = xcom("snoop").to_string();
    assert!(snooped.contains("refused"), "{snooped}");
}
on_both_backends!(python_callables_run_on_the_worker_of_their_queue);

/// Marking a DAG task instance success while its try runs on a worker stops the guest there
/// (the worker frees its slot), and the run goes on downstream as if the try had succeeded.
fn marking_a_task_instance_cancels_its_try_on_the_worker(backend: &Backend) {
    let home = node_home();
    std::fs::create_dir_all(home.path().join("dags")).unwrap();
    std::fs::write(
        home.path().join("dags/marked.dag.yaml"),
        "marked_dag:\n  schedule: null\n  is_paused_upon_creation: false\n  start_date: 2024-03-01\n  tasks:\n    spin:\n      operator: hostile-spin\n      execution_timeout: 600\n    after:\n      operator: echo\n      dependencies: [spin]\n      msg: next\n",
    )
    .unwrap();
    let (_node, port) = start_node(backend, home.path(), false);
    let (_w, _wh) = start_worker(home.path(), port, "wm", &["default"]);
    wait_for("the worker", || {
        workers(port)["workers"].as_array().unwrap().len() == 1
    });
    let run_id = trigger_dag(port, "marked_dag");
    let running = || !no_task_running(port);
    wait_for("the spin try to run on wm", running);
    let (st, v) = request(
        port,
        ADMIN_SECRET,
        "PATCH",
        &format!("/api/v2/dags/marked_dag/dagRuns/{run_id}/taskInstances/spin"),
        "Content-Type: application/json\r\n",
        r#"{"new_state": "success"}"#,
    );
    assert_eq!(st, 200, "{v}");
    wait_for("the worker to drop the marked try", || !running());
    wait_for_dag_success(port, "marked_dag", Duration::from_secs(120));
    let v = try_logs(port, "marked_dag", &run_id, "after");
    assert!(v.to_string().contains("/wm\""), "after ran on wm: {v}");
}
on_both_backends!(marking_a_task_instance_cancels_its_try_on_the_worker);

/// A task's own time limit holds on its worker: the worker stops the guest (here waiting on a
/// request that is never answered) when the limit passes and reports it, long before the node
/// would give up on the try (its heartbeat timeout here is 30 s): ASL `TimeoutSeconds` fails the
/// execution with `States.Timeout`, a DAG task's `execution_timeout` fails its try, and the
/// worker's slot is free for the next task.
fn a_task_s_timeout_stops_it_on_its_worker(backend: &Backend) {
    let home = node_home();
    let hang = Held::hanging();
    std::fs::create_dir_all(home.path().join("dags")).unwrap();
    std::fs::write(
        home.path().join("dags/timed.dag.yaml"),
        format!("timed_dag:\n  schedule: null\n  is_paused_upon_creation: false\n  start_date: 2024-03-01\n  tasks:\n    spin:\n      operator: http-request\n      grant: task\n      url: http://127.0.0.1:{}/hang\n      execution_timeout: 2\n      retries: 0\n", hang.port),
    )
    .unwrap();
    let (_node, port) = start_patient_node(backend, home.path());
    let (_w, _wh) = start_worker(home.path(), port, "wt", &["default"]);
    wait_for("the worker", || {
        workers(port)["workers"].as_array().unwrap().len() == 1
    });
    let idle = || no_task_running(port);
    let sm = request_machine(
        port,
        "timed",
        2,
        json!({"url": format!("http://127.0.0.1:{}/hang", hang.port)}),
    );
    let arn = ok(
        port,
        "StartExecution",
        json!({"stateMachineArn": sm, "name": "e1"}),
    )["executionArn"]
        .as_str()
        .unwrap()
        .to_string();
    let d = finished(port, &arn);
    assert_eq!(d["status"], "FAILED", "{d}");
    assert_eq!(d["error"], "States.Timeout", "{d}");
    let cause = d["cause"].as_str().unwrap_or_default();
    // the sandbox's deadline on the worker, not the node giving up ("did not report")
    assert!(
        cause.contains("did not finish within 2s"),
        "the worker stopped the guest and reported: {cause}"
    );
    let logs = task_logs(port, &arn);
    assert!(
        logs.iter().any(|l| l.to_string().contains("/wt\"")),
        "the try ran on wt: {logs:?}"
    );
    wait_for("the worker to be idle again", idle);
    // a DAG task's execution_timeout, the same way
    wait_for("the DAG file", || {
        dags(port).contains(&"timed_dag".to_string())
    });
    let run_id = trigger_dag(port, "timed_dag");
    wait_for_dag_end(port, "timed_dag", "failed", Duration::from_secs(120));
    let (st, ti) = request(
        port,
        ADMIN_SECRET,
        "GET",
        &format!("/api/v2/dags/timed_dag/dagRuns/{run_id}/taskInstances/spin"),
        "",
        "",
    );
    assert_eq!(st, 200, "{ti}");
    assert_eq!(ti["state"], "failed", "{ti}");
    let text = try_logs(port, "timed_dag", &run_id, "spin").to_string();
    assert!(text.contains("/wt\""), "the try ran on wt: {text}");
    assert!(
        text.contains("States.Timeout") && text.contains("did not finish within 2s"),
        "the worker timed the try out: {text}"
    );
    wait_for("the worker to be idle again", idle);
    assert_an_echo_task_succeeds(port);
}
on_both_backends!(a_task_s_timeout_stops_it_on_its_worker);

/// A node killed (SIGKILL) while its worker runs a try, then restarted on the same store and
/// address: the execution resumes, the interrupted try fails with `States.TaskFailed`, its
/// `Retry` runs it again on the worker, and the worker drops the orphaned try (its heartbeats
/// name a try the new node does not know).
fn a_restarted_node_fails_over_the_try_its_worker_was_running(backend: &Backend) {
    let home = node_home();
    let port = free_port();
    let node = start_node_on(backend, home.path(), port, false);
    let (_w, _wh) = start_worker(home.path(), port, "wr", &["default"]);
    let def = json!({"StartAt": "T", "States": {"T": {"Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {
            "FunctionName.$": "States.ArrayGetItem(States.Array('hostile-spin', 'echo'), $$.State.RetryCount)",
            "Payload": {"survived": true}},
        "OutputPath": "$.Payload",
        "TimeoutSeconds": 120,
        "Retry": [{"ErrorEquals": ["States.TaskFailed"], "IntervalSeconds": 1, "MaxAttempts": 1}],
        "End": true}}});
    let arn = start(port, "restarted", def);
    wait_for("the spin task to run on wr", || {
        workers(port)["workers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["worker_id"] == "wr" && !w["tasks"].as_array().unwrap().is_empty())
    });
    drop(node); // SIGKILL, reaped
    let _node = start_node_on(backend, home.path(), port, false);
    let d = finished(port, &arn);
    assert_eq!(d["status"], "SUCCEEDED", "{d}");
    let out: Value = serde_json::from_str(d["output"].as_str().unwrap()).unwrap();
    assert_eq!(out["survived"], true, "{out}");
    let logs = task_logs(port, &arn);
    let last = logs.last().expect("task logs");
    assert!(
        last["worker"].as_str().unwrap().ends_with("/wr"),
        "{logs:?}"
    );
    assert_eq!(last["error"], Value::Null, "{logs:?}");
    // the spinning guest of the first node's try is stopped: the worker ends up idle
    wait_for("the worker to drop the orphaned try", || {
        let ws = workers(port)["workers"].as_array().unwrap().clone();
        !ws.is_empty() && ws.iter().all(|w| w["busy"].as_u64() == Some(0))
    });
}
on_both_backends!(a_restarted_node_fails_over_the_try_its_worker_was_running);

/// The DAG folder `home/dags` with a Python DAG file `file` (text `dag`) and a
/// `requirements.txt` naming tinypkg 1.0.0, resolved offline from a wheelhouse beside it (the
/// fixtures of `host/engine/tests/py_packages`); the Python DAG parser installed.
fn python_packages_folder(home: &Path, file: &str, dag: &str) {
    let o = Command::new(env!("CARGO_BIN_EXE_weft"))
        .args([
            "plugin",
            "install",
            plugin("weft-airflow-py.wasm").to_str().unwrap(),
        ])
        .env("WEFT_HOME", home)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let dags = home.join("dags");
    std::fs::create_dir_all(dags.join("wheelhouse")).unwrap();
    std::fs::write(dags.join(file), dag).unwrap();
    std::fs::write(dags.join("requirements.txt"), "tinypkg==1.0.0\n").unwrap();
    let wheel = "tinypkg-1.0.0-py3-none-any.whl";
    std::fs::copy(
        repo()
            .join("host/engine/tests/py_packages/wheelhouse")
            .join(wheel),
        dags.join("wheelhouse").join(wheel),
    )
    .unwrap();
}

/// Waits (a cold compile of the parser first) for the node to load `dag`.
fn wait_for_dag(port: u16, dag: &str) {
    let end = Instant::now() + Duration::from_secs(600);
    while !dags(port).contains(&dag.to_string()) {
        assert!(Instant::now() < end, "the DAG {dag} never appeared");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A Python callable whose DAG folder has a `requirements.txt` runs on the worker: the worker
/// fetches the folder's packages by digest once, and both tasks import them.
fn python_callables_with_requirements_run_on_a_worker_with_the_folder_s_packages(
    backend: &Backend,
) {
    let home = node_home();
    python_packages_folder(
        home.path(),
        "py_pkgs.py",
        r#"
from datetime import datetime
import tinypkg
from airflow.sdk import dag, task

@dag(schedule=None, start_date=datetime(2024, 3, 1), catchup=False,
     is_paused_upon_creation=False, default_args={"queue": "alpha"})
def py_pkgs():
    @task
    def shout():
        from tinypkg import shout as s
        return s("hello")

    @task
    def tag(text):
        import tinypkg
        return text + " " + tinypkg.VERSION

    tag(shout())

py_pkgs()
"#,
    );
    let (_node, port) = start_patient_node(backend, home.path());
    let (_w, w_home) = start_worker(home.path(), port, "wpkg", &["alpha"]);
    wait_for_dag(port, "py_pkgs");
    let run_id = trigger_dag(port, "py_pkgs");
    wait_for_dag_success(port, "py_pkgs", Duration::from_secs(600));
    for task in ["shout", "tag"] {
        let v = try_logs(port, "py_pkgs", &run_id, task);
        assert!(v.to_string().contains("/wpkg\""), "{task} ran on wpkg: {v}");
    }
    let (st, v) = request(
        port,
        ADMIN_SECRET,
        "GET",
        &format!(
            "/api/v2/dags/py_pkgs/dagRuns/{run_id}/taskInstances/tag/xcomEntries/return_value"
        ),
        "",
        "",
    );
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["value"], json!("HELLO! 1.0.0"));
    // one archive, fetched and unpacked once for both tasks, holding the package
    let cached: Vec<_> = std::fs::read_dir(w_home.path().join("cache/worker-packages"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(cached.len(), 1, "{cached:?}");
    assert!(cached[0].join("tinypkg/__init__.py").is_file());
}
on_both_backends!(python_callables_with_requirements_run_on_a_worker_with_the_folder_s_packages);

/// The test plays a worker to learn the packages digest of a try: only a key running that try
/// may fetch the archive; a tampered archive is refused by a real worker and not kept.
fn a_packages_archive_is_served_only_for_a_running_try_and_refused_when_tampered(
    backend: &Backend,
) {
    let home = node_home();
    python_packages_folder(
        home.path(),
        "py_tamper.py",
        r#"
from datetime import datetime, timedelta
from airflow.sdk import dag, task

@dag(schedule=None, start_date=datetime(2024, 3, 1), catchup=False,
     is_paused_upon_creation=False,
     default_args={"queue": "probe", "retries": 1, "retry_delay": timedelta(seconds=0)})
def py_tamper():
    @task
    def shout():
        from tinypkg import shout as s
        return s("hello")

    shout()

py_tamper()
"#,
    );
    // a second worker key, running nothing
    let creds = home.path().join("credentials");
    let mut text = std::fs::read_to_string(&creds).unwrap();
    text.push_str("\n[other]\naws_access_key_id = WEFTOTHER\naws_secret_access_key = other-secret-0123456789\nweft_policy = worker-policy.json\n");
    std::fs::write(&creds, text).unwrap();
    let (_node, port) = start_patient_node(backend, home.path());
    wait_for_dag(port, "py_tamper");
    trigger_dag(port, "py_tamper");
    let poll =
        json!({"worker_id": "probe", "host": "test", "queues": ["probe"], "slots": 1, "busy": 0});
    let end = Instant::now() + Duration::from_secs(120);
    let task = loop {
        let (st, v) = worker_call(port, "/v1/worker/poll", poll.clone());
        assert_eq!(st, 200, "{v}");
        if !v["task"].is_null() {
            break v["task"].clone();
        }
        assert!(Instant::now() < end, "the try was never queued");
    };
    let pk = task["packages"]
        .as_str()
        .expect("the packages digest")
        .to_string();
    assert_eq!(pk.len(), 64, "{task}");
    let get = |secret: &str| request_raw(port, secret, "GET", &format!("/v1/blobs/{pk}"), "", "");
    let (st, archive) = get(WORKER_SECRET);
    assert_eq!(st, 200, "the key running the try may fetch them");
    assert_eq!(
        blake3::hash(&archive).to_hex().as_str(),
        pk,
        "the archive's digest"
    );
    let get = |secret: &str| get(secret).0;
    assert_eq!(
        get("other-secret-0123456789"),
        404,
        "a worker key with no try carrying them may not"
    );
    let (st, v) = worker_call(
        port,
        "/v1/worker/report",
        json!({"worker_id": "probe", "task_id": task["task_id"],
            "outcome": {"error": {"error": "States.TaskFailed", "cause": "the probe gave up"}}}),
    );
    assert_eq!(st, 200, "{v}");
    assert_eq!(get(WORKER_SECRET), 404, "the try ended: no longer served");
    // the retry goes to a real worker, fetching the archive as it now lies on the node
    let blob = home.path().join("blobs").join(&pk[..2]).join(&pk[2..]);
    let mut bytes = std::fs::read(&blob).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&blob, &bytes).unwrap();
    let (_w, w_home) = start_worker(home.path(), port, "wt", &["probe"]);
    let runs = wait_for_dag_end(port, "py_tamper", "failed", Duration::from_secs(600));
    let run_id = runs["runs"][0]["runId"].as_str().unwrap().to_string();
    let logs = try_logs(port, "py_tamper", &run_id, "shout");
    let all = format!("{runs} {logs}");
    assert!(all.contains("Sandbox.PluginCorrupt"), "{all}");
    assert!(all.contains("/wt\""), "the retry ran on wt: {all}");
    assert!(
        !w_home
            .path()
            .join("cache/worker-packages")
            .join(&pk)
            .exists(),
        "nothing was kept"
    );
}
on_both_backends!(a_packages_archive_is_served_only_for_a_running_try_and_refused_when_tampered);

/// Two nodes of one PostgreSQL database, neither running tasks itself, and one worker naming
/// both (`--server` twice): each node queues the task of the execution it runs, and the worker
/// serves both, reporting each task to the node that handed it out. The worker's slot bounds
/// are checked at start: fewer `--max-slots` than nodes, or a node named twice, is refused.
#[test]
fn one_worker_serves_every_node_it_names() {
    let Some(backend) = Backend::postgres() else {
        return;
    };
    let (ha, hb) = (node_home(), node_home());
    let (_a, pa) = start_node(&backend, ha.path(), false);
    let (_b, pb) = start_node(&backend, hb.path(), false);
    let other = format!("http://127.0.0.1:{pb}");
    for (extra, why) in [
        (
            vec!["--server", other.as_str(), "--max-slots", "1"],
            "needs a slot",
        ),
        (
            vec!["--server", &format!("http://127.0.0.1:{pa}")],
            "named twice",
        ),
    ] {
        let wh = tempfile::tempdir().unwrap();
        let o = Command::new(env!("CARGO_BIN_EXE_weft"))
            .args(["worker", "--server", &format!("http://127.0.0.1:{pa}")])
            .args(["--profile", "worker", "--id", "bad"])
            .args(&extra)
            .env("WEFT_HOME", wh.path())
            .env("AWS_SHARED_CREDENTIALS_FILE", ha.path().join("credentials"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{why}: {err}");
        assert!(err.contains(why) && err.contains("--"), "{err}");
    }
    let (_w, _wh) = start_worker_with(
        ha.path(),
        pa,
        "both",
        &["default"],
        &["--server", &other, "--max-slots", "4"],
    );
    wait_for("the worker on both nodes", || {
        [pa, pb]
            .iter()
            .all(|p| workers(*p)["workers"].as_array().unwrap().len() == 1)
    });
    let on_a = start(
        pa,
        "spread",
        json!({"StartAt": "A", "States": {"A": echo_task("default", None)}}),
    );
    let on_b = ok(
        pb,
        "StartExecution",
        json!({"stateMachineArn": "arn:aws:states:us-east-1:000000000000:stateMachine:spread",
               "name": "e2", "input": "{\"n\": 2}"}),
    )["executionArn"]
        .as_str()
        .unwrap()
        .to_string();
    for (port, arn, n) in [(pa, &on_a, 1), (pb, &on_b, 2)] {
        let d = finished(port, arn);
        assert_eq!(d["status"], "SUCCEEDED", "{d}");
        let out: Value = serde_json::from_str(d["output"].as_str().unwrap()).unwrap();
        assert_eq!(out["default"]["n"], n, "{out}");
        let logs = task_logs(port, arn);
        assert!(
            logs[0]["worker"].as_str().unwrap().ends_with("/both"),
            "{logs:?}"
        );
    }
}

/// `weft bench remote` (the issue's figures: tasks/s, round trip and the node's CPU per remote
/// task beside local execution) runs end to end with a few executions and reports every
/// figure for the node alone and for 1 and 2 worker processes. Figures only: no threshold.
#[test]
fn bench_remote_reports_its_figures_for_the_node_and_for_one_and_two_workers() {
    let home = tempfile::tempdir().unwrap();
    let weft = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_weft"))
            .args(args)
            .env("WEFT_HOME", home.path())
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        o.stdout
    };
    weft(&["plugin", "install", plugin("echo.wasm").to_str().unwrap()]);
    let out = weft(&["bench", "remote", "--iterations", "8", "--json"]);
    let reports: Vec<Value> = serde_json::from_slice(&out)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out)));
    assert_eq!(reports.len(), 3, "{reports:?}");
    for (r, workers) in reports.iter().zip([0, 1, 2]) {
        assert_eq!(r["workers"], workers, "{r}");
        assert_eq!(r["executions"], 8, "{r}");
        assert!(r["tasks_per_s"].as_f64().unwrap() > 0.0, "{r}");
        for k in [
            "node_cpu_us_per_task",
            "node_cpu_us_per_mocked_task_execution",
        ] {
            assert!(r[k].as_f64().unwrap() > 0.0, "{k}: {r}");
        }
        let trip = &r["round_trip_ms"];
        let dispatch = &r["node_dispatch_cpu_us_per_task"];
        if workers == 0 {
            // nothing was dispatched: no round trip, no dispatch figure
            assert_eq!(trip["idle_p50"], 0.0, "{r}");
            assert!(dispatch.is_null(), "{r}");
        } else {
            // every measured round trip went through a worker process
            assert!(trip["idle_p50"].as_f64().unwrap() > 0.0, "{r}");
            assert!(
                trip["idle_p99"].as_f64().unwrap() >= trip["idle_p50"].as_f64().unwrap(),
                "{r}"
            );
            assert!(dispatch.is_number(), "{r}");
        }
    }
}

/// A TLS-terminating proxy on 127.0.0.1 in front of the node (as a load balancer would be),
/// with a certificate for `IP:127.0.0.1` that a test-only CA signed; counts the handshakes
/// that failed. Runs until the test process ends.
struct TlsProxy {
    port: u16,
    refused: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

const TEST_CA: &[u8] = include_bytes!("../../engine/tests/smtp_fixtures/ca.der");
const TEST_CERT: &[u8] = include_bytes!("../../engine/tests/smtp_fixtures/server.der");
const TEST_KEY: &[u8] = include_bytes!("../../engine/tests/smtp_fixtures/server.key.der");

impl TlsProxy {
    fn start(upstream: u16) -> Self {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![rustls::pki_types::CertificateDer::from(TEST_CERT.to_vec())],
                rustls::pki_types::PrivateKeyDer::Pkcs8(TEST_KEY.to_vec().into()),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let refused = Arc::new(AtomicUsize::new(0));
        let counted = refused.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                loop {
                    let Ok((tcp, _)) = listener.accept().await else {
                        continue;
                    };
                    let (acceptor, counted) = (acceptor.clone(), counted.clone());
                    tokio::spawn(async move {
                        let mut tls = match acceptor.accept(tcp).await {
                            Ok(tls) => tls,
                            Err(_) => {
                                counted.fetch_add(1, Ordering::SeqCst);
                                return;
                            }
                        };
                        if let Ok(mut node) =
                            tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                        {
                            let _ = tokio::io::copy_bidirectional(&mut tls, &mut node).await;
                        }
                    });
                }
            });
        });
        TlsProxy { port, refused }
    }

    fn refused(&self) -> usize {
        self.refused.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// `TEST_CA` as a PEM bundle, written into `dir`.
fn ca_bundle(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("ca-bundle.pem");
    std::fs::write(&path, pem("CERTIFICATE", TEST_CA)).unwrap();
    path
}

/// `der` as one PEM section labelled `label`.
fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap());
        pem.push('\n');
    }
    pem.push_str(&format!("-----END {label}-----\n"));
    pem
}

/// A worker reaches its node through a TLS load balancer: `--server https://...` with the
/// balancer's CA given by `--ca-bundle` (or `AWS_CA_BUNDLE`) runs the task; a worker that does
/// not trust that certificate never connects (it sends nothing it signed to a server it cannot
/// authenticate), and a URL that is not a node's is a usage error.
#[test]
fn a_worker_reaches_its_node_over_tls_and_only_with_a_trusted_certificate() {
    let home = node_home();
    let (_node, port) = start_node(&Backend::Sled, home.path(), false);
    let proxy = TlsProxy::start(port);
    let bundle = ca_bundle(home.path());
    let server = format!("https://127.0.0.1:{}", proxy.port);
    // the attacker's side first: the public roots do not know the balancer's CA
    let (_untrusting, _h0) = start_worker_at(home.path(), &server, "untrusting", &["tls"], &[]);
    wait_for("the untrusting worker's refused handshake", || {
        proxy.refused() > 0
    });
    let (_w, _h1) = start_worker_at(
        home.path(),
        &server,
        "trusting",
        &["tls"],
        &["--ca-bundle", bundle.to_str().unwrap()],
    );
    let def = json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "weft:plugin:echo",
        "Parameters": {"weft:queue": "tls", "over": "tls"}, "End": true}}});
    let arn = start(port, "over-tls", def);
    let d = finished(port, &arn);
    assert_eq!(d["status"], "SUCCEEDED", "{d}");
    let logs = task_logs(port, &arn);
    assert!(
        logs[0]["worker"].as_str().unwrap().ends_with("/trusting"),
        "{logs:?}"
    );
    let connected = |id: &str| {
        workers(port)["workers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["worker_id"] == id)
    };
    assert!(!connected("untrusting"));
    // AWS_CA_BUNDLE is the same trust
    let (_env, _h2) = start_worker_env(
        home.path(),
        &server,
        "from-env",
        &["env"],
        &[],
        &[("AWS_CA_BUNDLE", &bundle)],
    );
    wait_for("the worker trusting AWS_CA_BUNDLE to connect", || {
        connected("from-env")
    });
    // a bundle is read only for a node reached over TLS: a plain http:// worker starts
    // whatever AWS_CA_BUNDLE names
    let (_plain, _h3) = start_worker_env(
        home.path(),
        &format!("http://127.0.0.1:{port}"),
        "plain-http",
        &["env"],
        &[],
        &[("AWS_CA_BUNDLE", &home.path().join("no-such-bundle.pem"))],
    );
    wait_for("the plain http worker to connect", || {
        connected("plain-http")
    });
    // not a node's URL, or a bundle with no certificate: usage errors before anything is sent
    let empty = home.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    for args in [
        vec!["--server", "ftp://127.0.0.1:1"],
        vec!["--server", "http://user:pw@127.0.0.1:1"],
        vec!["--server", "http://127.0.0.1:1/v1"],
        vec!["--server", "http://127.0.0.1:1?x=1"],
        vec!["--server", "127.0.0.1:1"],
        vec![
            "--server",
            "https://127.0.0.1:1",
            "--ca-bundle",
            empty.to_str().unwrap(),
        ],
    ] {
        let o = Command::new(env!("CARGO_BIN_EXE_weft"))
            .arg("worker")
            .args(&args)
            .env("WEFT_HOME", home.path())
            .output()
            .unwrap();
        assert_eq!(
            o.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    // a bundle that holds a private key, or that cannot be read: refused, naming the file
    let with_key = home.path().join("with-key.pem");
    std::fs::write(
        &with_key,
        pem("CERTIFICATE", TEST_CA) + &pem("PRIVATE KEY", TEST_KEY),
    )
    .unwrap();
    let missing = home.path().join("missing.pem");
    for (bundle, why) in [
        (&with_key, "holds certificates only"),
        (&missing, "reading the CA bundle"),
    ] {
        let o = Command::new(env!("CARGO_BIN_EXE_weft"))
            .args(["worker", "--server", "https://127.0.0.1:1", "--ca-bundle"])
            .arg(bundle)
            .env("WEFT_HOME", home.path())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{err}");
        assert!(
            err.contains(why) && err.contains(bundle.to_str().unwrap()),
            "{err}"
        );
    }
}

/// `kill -TERM` of a worker (an autoscaler's scale-in) drains it: the node hands it no more
/// tasks, the task it runs goes on until it succeeds and is reported, then the worker exits 0;
/// a task queued meanwhile waits for another worker. A drain names the worker's own session:
/// another key cannot drain a worker.
fn sigterm_drains_a_worker_its_running_task_finishes_and_it_exits_0(backend: &Backend) {
    let home = node_home();
    let gate = Held::gate();
    let (_node, port) = start_node(backend, home.path(), false);
    let (mut wd, _wd_home) = start_worker(home.path(), port, "wd", &["drain"]);
    let sm = request_machine(
        port,
        "drain",
        120,
        json!({"url": format!("http://127.0.0.1:{}/slow", gate.port), "weft:queue": "drain"}),
    );
    let run = |name: &str| {
        ok(
            port,
            "StartExecution",
            json!({"stateMachineArn": sm, "name": name}),
        )["executionArn"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let wd_view = || {
        workers(port)["workers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["worker_id"] == "wd")
            .cloned()
            .unwrap_or(Value::Null)
    };
    let first = run("first");
    wait_for("wd to run the first task", || {
        wd_view()["tasks"].as_array().is_some_and(|t| t.len() == 1)
    });
    // the attacker: another key cannot drain wd; a session must be a name
    let (st, v) = worker_call_as(
        port,
        NARROW_SECRET,
        "/v1/worker/drain",
        json!({"worker_id": "wd", "session": "anything"}),
    );
    assert_eq!(st, 403, "{v}");
    let (st, v) = worker_call(
        port,
        "/v1/worker/drain",
        json!({"worker_id": "wd", "session": "../x"}),
    );
    assert_eq!(st, 400, "{v}");
    let (st, v) = worker_call(
        port,
        "/v1/worker/poll",
        json!({"worker_id": "wd", "host": "h", "queues": ["drain"], "slots": 1, "busy": 0,
               "session": "../x"}),
    );
    assert_eq!(st, 400, "{v}");
    assert!(v["message"].as_str().unwrap().contains("/session"), "{v}");
    assert_eq!(wd_view()["draining"], false);
    let term = Command::new("kill")
        .args(["-TERM", &wd.0.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    wait_for("wd to be draining", || wd_view()["draining"] == true);
    // who took it out of service is audited (polls and heartbeats are not)
    let (st, audit) = request(port, ADMIN_SECRET, "GET", "/v1/audit?limit=10000", "", "");
    assert_eq!(st, 200, "{audit}");
    let records = audit["records"].as_array().unwrap();
    assert!(
        records.iter().any(|r| r["principal"] == "worker"
            && r["action"] == "weft:Heartbeat"
            && r["resource"] == "weft:worker:wd"
            && r["outcome"] == "ok"),
        "{audit}"
    );
    // an autoscaler sees it leaving: its free slot is no capacity
    let metrics = metrics_text(port);
    for series in [
        "weft_workers_draining 1",
        "weft_worker_slots{state=\"busy\"} 1",
        "weft_worker_slots{state=\"idle\"} 0",
    ] {
        assert!(metrics.contains(series), "{series} in {metrics}");
    }
    let second = run("second");
    gate.release();
    let d = finished(port, &first);
    assert_eq!(d["status"], "SUCCEEDED", "{d}");
    assert!(task_logs(port, &first)[0]["worker"]
        .as_str()
        .unwrap()
        .ends_with("/wd"));
    let end = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = wd.0.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < end, "the drained worker did not exit");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0), "a drained worker exits 0");
    // the task queued while wd drained waited for another worker
    let (_wn, _wn_home) = start_worker(home.path(), port, "wn", &["drain"]);
    let d = finished(port, &second);
    assert_eq!(d["status"], "SUCCEEDED", "{d}");
    let logs = task_logs(port, &second);
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert!(
        logs[0]["worker"].as_str().unwrap().ends_with("/wn"),
        "{logs:?}"
    );
}
on_both_backends!(sigterm_drains_a_worker_its_running_task_finishes_and_it_exits_0);
