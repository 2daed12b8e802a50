//! The HTTP Task (`arn:aws:states:::http:invoke`) through the real `weft` binary: `weft run`
//! and a Standard execution on `weft server`, against an HTTP server this test starts on
//! 127.0.0.1. The connection's secret is looked for everywhere the run leaves text: stdout,
//! stderr (task logs, history), the server's API answers and every file of `$WEFT_HOME` but the
//! secrets store itself.

mod common;
use common::*;

use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SECRET: &str = "sk_test_5ecretValue7Qx";

/// An HTTP server on 127.0.0.1 that echoes each request as JSON (`404` for `/missing`), keeps
/// what it saw, and stops when dropped.
struct Echo {
    port: u16,
    seen: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Echo {
    fn start() -> Self {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let port = l.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen2, stop2) = (seen.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                let Ok((mut s, _)) = l.accept() else {
                    std::thread::sleep(Duration::from_millis(2));
                    continue;
                };
                s.set_nonblocking(false).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let mut data = Vec::new();
                let mut buf = [0u8; 8192];
                loop {
                    let k = s.read(&mut buf).unwrap_or(0);
                    if k == 0 {
                        break;
                    }
                    data.extend_from_slice(&buf[..k]);
                    let text = String::from_utf8_lossy(&data).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len = text[..end]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if data.len() >= end + 4 + len {
                            break;
                        }
                    }
                }
                let req = String::from_utf8_lossy(&data).into_owned();
                seen2.lock().unwrap().push(req.clone());
                let status = if req.starts_with("GET /missing") {
                    "404 Not Found"
                } else {
                    "200 OK"
                };
                let body = json!({"request": req}).to_string();
                let _ = write!(
                    s,
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Self {
            port,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn weft(home: &Path, dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(args)
        .env("WEFT_HOME", home)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The definition of AWS's HTTP Task documentation ("Call HTTPS API"), with only the API's
/// origin pointed at the local server.
fn aws_docs_definition(origin: &str) -> Value {
    let text = r#"{
  "Comment": "Call the Stripe API to list customers",
  "StartAt": "Call HTTPS API",
  "States": {
    "Call HTTPS API": {
      "Type": "Task",
      "Resource": "arn:aws:states:::http:invoke",
      "Parameters": {
        "ApiEndpoint": "https://api.stripe.com/v1/customers",
        "Authentication": {
          "ConnectionArn": "arn:aws:events:us-east-2:123456789012:connection/Stripe/81210c42-8af1-456b-9c4a-6ff02fc664ac"
        },
        "Method": "GET"
      },
      "End": true
    }
  }
}"#;
    serde_json::from_str(&text.replace("https://api.stripe.com", origin)).unwrap()
}

/// `$WEFT_HOME` with the `Stripe` connection (an API key sent as `Authorization`), the role
/// `caller` (the local server and that connection) and the role `other` (the server and
/// another connection only).
fn home_with_connection(home: &Path, port: u16) {
    let o = weft(
        home,
        home,
        &[
            "connections",
            "set",
            "Stripe",
            &json!({"conn_type": "http", "password": format!("Bearer {SECRET}"),
                    "extra": {"AuthorizationType": "API_KEY", "ApiKeyName": "Authorization"}})
            .to_string(),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    std::fs::create_dir_all(home.join("roles")).unwrap();
    let http = format!("http://127.0.0.1:{port}/*");
    std::fs::write(
        home.join("roles/caller.json"),
        json!({"Statement": [
            {"Effect": "Allow", "Action": "http:Request", "Resource": http},
            {"Effect": "Allow", "Action": "secrets:Get", "Resource": "secret:conn/stripe"}]})
        .to_string(),
    )
    .unwrap();
    std::fs::write(
        home.join("roles/other.json"),
        json!({"Statement": [
            {"Effect": "Allow", "Action": "http:Request", "Resource": http},
            {"Effect": "Allow", "Action": "secrets:Get", "Resource": "secret:conn/mine"}]})
        .to_string(),
    )
    .unwrap();
}

fn no_secret(what: &str, text: &str) {
    assert!(!text.contains(SECRET), "{what} shows the secret: {text}");
}

#[test]
fn weft_run_calls_apis_with_a_connection_and_never_shows_its_secret() {
    let srv = Echo::start();
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    home_with_connection(home.path(), srv.port);
    let origin = format!("http://127.0.0.1:{}", srv.port);
    let def = dir.path().join("docs.asl.json");
    std::fs::write(&def, aws_docs_definition(&origin).to_string()).unwrap();
    let def = def.to_str().unwrap();
    let o = weft(
        home.path(),
        dir.path(),
        &["run", def, "--role", "caller", "--logs", "--history"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(out["StatusCode"], 200);
    assert_eq!(out["StatusText"], "OK");
    assert!(out["ResponseBody"]["request"]
        .as_str()
        .unwrap()
        .starts_with("GET /v1/customers HTTP/1.1"));
    assert!(srv.seen()[0].contains(&format!("authorization: Bearer {SECRET}")));
    // the server echoed the credentials: output, history and task logs show none of them
    no_secret("weft run", &text(&o));
    assert!(text(&o).contains("********"));
    assert!(
        text(&o).contains("secret:conn/stripe"),
        "the audit is logged"
    );

    // a 404 is States.Http.StatusCode.404, which a Catch sees
    let catch = json!({"StartAt": "Get", "States": {
        "Get": {"Type": "Task", "Resource": "arn:aws:states:::http:invoke",
                "Parameters": {"ApiEndpoint": format!("{origin}/missing"), "Method": "GET",
                               "Authentication": {"ConnectionArn": "weft:connection:stripe"},
                               "QueryParameters": {"q.$": "$.q"}},
                "Catch": [{"ErrorEquals": ["States.Http.StatusCode.404"], "ResultPath": "$.error",
                           "Next": "NotFound"}],
                "End": true},
        "NotFound": {"Type": "Pass", "End": true}}});
    let f = dir.path().join("catch.asl.json");
    std::fs::write(&f, catch.to_string()).unwrap();
    let o = weft(
        home.path(),
        dir.path(),
        &[
            "run",
            f.to_str().unwrap(),
            "--role",
            "caller",
            "--input",
            r#"{"q":"x y"}"#,
            "--logs",
            "--history",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(out["error"]["Error"], "States.Http.StatusCode.404");
    assert!(srv.seen()[1].starts_with("GET /missing?q=x+y HTTP/1.1"));
    no_secret("weft run (caught)", &text(&o));

    // attackers: no role, the connection of another role, a host the role does not name
    let sent = srv.seen().len();
    for (role, endpoint, conn) in [
        (None, format!("{origin}/x"), None),
        (
            Some("other"),
            format!("{origin}/x"),
            Some("arn:aws:events:us-east-2:123456789012:connection/Stripe/81210c42"),
        ),
        (
            Some("caller"),
            format!("http://127.0.0.2:{}/x", srv.port),
            None,
        ),
        (
            Some("caller"),
            format!("http://127.0.0.1:{}@127.0.0.2:{}/x", srv.port, srv.port),
            None,
        ),
    ] {
        let mut params = json!({"ApiEndpoint": endpoint, "Method": "GET"});
        if let Some(c) = conn {
            params["Authentication"] = json!({ "ConnectionArn": c });
        }
        let d = json!({"StartAt": "T", "States": {"T": {"Type": "Task",
            "Resource": "arn:aws:states:::http:invoke", "Parameters": params, "End": true}}});
        std::fs::write(&f, d.to_string()).unwrap();
        let mut args = vec!["run", f.to_str().unwrap(), "--logs"];
        if let Some(r) = role {
            args.extend(["--role", r]);
        }
        let o = weft(home.path(), dir.path(), &args);
        assert_eq!(
            o.status.code(),
            Some(1),
            "{:?} {endpoint}: {}",
            role,
            text(&o)
        );
        let e: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(e["Error"], "Sandbox.PermissionDenied", "{e}");
        no_secret("weft run (denied)", &text(&o));
    }
    assert_eq!(
        srv.seen().len(),
        sent,
        "no denied request reached the server"
    );
}

/// Every file under `dir` but `skip`, as bytes.
fn files(dir: &Path, skip: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p == skip {
            continue;
        }
        if p.is_dir() {
            files(&p, skip, out);
        } else if let Ok(b) = std::fs::read(&p) {
            out.push((p.display().to_string(), b));
        }
    }
}

fn a_standard_execution_calls_the_api_and_stores_no_secret(backend: &Backend) {
    let srv = Echo::start();
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    home_with_connection(home.path(), srv.port);
    let origin = format!("http://127.0.0.1:{}", srv.port);
    let s = start_weft_server_on(backend, home.path(), work.path(), true, &[]);
    let sm = ok(
        s.port,
        "CreateStateMachine",
        json!({"name": "stripe", "roleArn": "weft:role:caller",
               "definition": aws_docs_definition(&origin).to_string()}),
    )["stateMachineArn"]
        .as_str()
        .unwrap()
        .to_string();
    let exec = ok(
        s.port,
        "StartExecution",
        json!({"stateMachineArn": sm, "name": "one"}),
    )["executionArn"]
        .as_str()
        .unwrap()
        .to_string();
    let end = Instant::now() + Duration::from_secs(60);
    let done = loop {
        let v = ok(s.port, "DescribeExecution", json!({"executionArn": exec}));
        if v["status"] != "RUNNING" {
            break v;
        }
        assert!(Instant::now() < end, "{exec} still running");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    let out: Value = serde_json::from_str(done["output"].as_str().unwrap()).unwrap();
    assert_eq!(out["StatusCode"], 200);
    assert!(srv.seen()[0].contains(&format!("authorization: Bearer {SECRET}")));
    no_secret("DescribeExecution", &done.to_string());
    let history = ok(s.port, "GetExecutionHistory", json!({"executionArn": exec}));
    no_secret("GetExecutionHistory", &history.to_string());
    let (st, tasks) = raw(
        s.port,
        &format!(
            "GET /v1/executions/{exec}/tasks HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
            s.port
        ),
    );
    assert_eq!(st, 200, "{tasks}");
    assert!(tasks.contains("secret:conn/stripe"), "{tasks}");
    assert!(tasks.contains("http:Request"), "{tasks}");
    no_secret("task logs", &tasks);
    // TestState of the same Task
    let state = aws_docs_definition(&origin)["States"]["Call HTTPS API"].clone();
    let t = ok(
        s.port,
        "TestState",
        json!({"definition": state.to_string(), "roleArn": "weft:role:caller",
               "inspectionLevel": "TRACE"}),
    );
    assert_eq!(t["status"], "SUCCEEDED", "{t}");
    no_secret("TestState", &t.to_string());
    drop(s);
    // nothing the server stored holds the secret (only the secrets store does)
    let mut all = Vec::new();
    files(home.path(), &home.path().join("secrets.json"), &mut all);
    assert!(!all.is_empty());
    for (path, bytes) in all {
        assert!(
            !bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
            "{path} holds the secret"
        );
    }
    // nor does the database: every row, text as text and bytes as hex (pg_dump's encoding)
    if let Some(url) = backend.url() {
        let dump = std::process::Command::new("pg_dump")
            .args(["--data-only", url])
            .output()
            .unwrap();
        assert!(
            dump.status.success(),
            "{}",
            String::from_utf8_lossy(&dump.stderr)
        );
        let dump = String::from_utf8_lossy(&dump.stdout);
        assert!(dump.contains("sfn_executions"), "the dump holds the tables");
        let hex: String = SECRET.bytes().map(|b| format!("{b:02x}")).collect();
        assert!(
            !dump.contains(SECRET),
            "a row of the database holds the secret"
        );
        assert!(
            !dump.contains(&hex),
            "a row of the database holds the secret's bytes"
        );
    }
}
on_both_backends!(a_standard_execution_calls_the_api_and_stores_no_secret);

#[test]
fn traces_and_trace_level_logs_of_a_run_show_no_secret() {
    let srv = Echo::start();
    // an OTLP/HTTP collector that keeps what it is sent (protobuf strings are plain bytes)
    let collector = Echo::start();
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    home_with_connection(home.path(), srv.port);
    let origin = format!("http://127.0.0.1:{}", srv.port);
    let def = dir.path().join("docs.asl.json");
    std::fs::write(&def, aws_docs_definition(&origin).to_string()).unwrap();
    let endpoint = format!("http://127.0.0.1:{}", collector.port);
    let o = Command::new(env!("CARGO_BIN_EXE_weft"))
        .args([
            "run",
            def.to_str().unwrap(),
            "--role",
            "caller",
            "--otlp-endpoint",
            &endpoint,
            "--log-format",
            "json",
        ])
        .env("WEFT_HOME", home.path())
        .env("WEFT_LOG", "trace")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(srv.seen()[0].contains(&format!("authorization: Bearer {SECRET}")));
    let logs = String::from_utf8_lossy(&o.stderr);
    assert!(logs.contains("HTTP Task"), "trace-level logs were written");
    no_secret("trace-level logs", &logs);
    let exported = collector.seen();
    assert!(
        exported.iter().any(|r| r.contains("Call HTTPS API")),
        "the state's span was exported: {exported:?}"
    );
    for r in exported {
        no_secret("exported spans", &r);
    }
}
