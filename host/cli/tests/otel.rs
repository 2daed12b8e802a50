//! Traces and logs an operator can ship: `weft run` and `weft dag test` export their spans over
//! OTLP/HTTP to a receiver this test starts (decoded with the OTLP protobuf types, asserted as
//! trees), `--log-format json` writes one JSON object per line carrying the execution and trace
//! ids, and a collector that refuses, hangs or is misnamed never fails a run.

mod common;

use common::{free_port, plugin, repo, wait_until_serving, Backend};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

fn weft(home: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_weft"));
    c.args(args)
        .env("WEFT_HOME", home)
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .current_dir(repo());
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

/// What an OTLP/HTTP receiver got: the paths and content types of the requests, and the spans.
#[derive(Default)]
struct Received {
    requests: Vec<(String, String)>,
    spans: Vec<Span>,
}

/// An OTLP/HTTP traces receiver on a free loopback port: decodes each request's protobuf body
/// and answers 200. Its thread ends with the test process.
fn receiver() -> (u16, Arc<Mutex<Received>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let got = Arc::new(Mutex::new(Received::default()));
    let g = got.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let g = g.clone();
            std::thread::spawn(move || serve(conn, &g));
        }
    });
    (port, got)
}

fn serve(conn: TcpStream, got: &Mutex<Received>) {
    let mut out = conn.try_clone().unwrap();
    let mut r = BufReader::new(conn);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split(' ').nth(1).unwrap_or("").to_string();
        let (mut len, mut ctype) = (0usize, String::new());
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (k, v) = h.split_once(':').unwrap_or((h, ""));
            match k.to_ascii_lowercase().as_str() {
                "content-length" => len = v.trim().parse().unwrap(),
                "content-type" => ctype = v.trim().to_string(),
                _ => {}
            }
        }
        let mut body = vec![0; len];
        r.read_exact(&mut body).unwrap();
        let req =
            ExportTraceServiceRequest::decode(body.as_slice()).expect("an OTLP protobuf body");
        {
            let mut g = got.lock().unwrap();
            g.requests.push((path, ctype));
            for rs in req.resource_spans {
                let service = rs
                    .resource
                    .iter()
                    .flat_map(|r| &r.attributes)
                    .find(|a| a.key == "service.name")
                    .and_then(|a| a.value.clone())
                    .and_then(|v| v.value);
                assert_eq!(service, Some(Any::StringValue("weft".into())));
                for ss in rs.scope_spans {
                    g.spans.extend(ss.spans);
                }
            }
        }
        out.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n",
        )
        .unwrap();
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn attr(s: &Span, key: &str) -> Option<Any> {
    s.attributes
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| a.value.clone())
        .and_then(|v| v.value)
}

fn int(s: &Span, key: &str) -> i64 {
    match attr(s, key) {
        Some(Any::IntValue(n)) => n,
        other => panic!("{}: {key} = {other:?}", s.name),
    }
}

fn string(s: &Span, key: &str) -> String {
    match attr(s, key) {
        Some(Any::StringValue(v)) => v,
        other => panic!("{}: {key} = {other:?}", s.name),
    }
}

/// The spans of one trace by span id, checked to form one tree: a single root, every other
/// span's parent in the trace, no span id twice.
fn tree(spans: &[Span], trace: &[u8]) -> HashMap<String, Span> {
    tree_under(spans, trace, &[])
}

/// [`tree`] whose root's parent is `caller` (a span of another process; empty: none).
fn tree_under(spans: &[Span], trace: &[u8], caller: &[u8]) -> HashMap<String, Span> {
    let mine: Vec<&Span> = spans.iter().filter(|s| s.trace_id == trace).collect();
    let by_id: HashMap<String, Span> = mine
        .iter()
        .map(|s| (hex(&s.span_id), (*s).clone()))
        .collect();
    assert_eq!(by_id.len(), mine.len(), "a span id appears twice");
    let roots: Vec<&Span> = mine
        .iter()
        .filter(|s| s.parent_span_id == caller)
        .copied()
        .collect();
    assert_eq!(
        roots.len(),
        1,
        "one root: {:?}",
        roots.iter().map(|s| &s.name).collect::<Vec<_>>()
    );
    for s in &mine {
        if s.parent_span_id != caller {
            assert!(
                by_id.contains_key(&hex(&s.parent_span_id)),
                "{}: its parent is not in the trace",
                s.name
            );
        }
        assert!(s.end_time_unix_nano >= s.start_time_unix_nano, "{}", s.name);
    }
    by_id
}

fn named<'a>(t: &'a HashMap<String, Span>, name: &str) -> Vec<&'a Span> {
    let mut v: Vec<&Span> = t.values().filter(|s| s.name == name).collect();
    v.sort_by_key(|s| s.start_time_unix_nano);
    v
}

fn parent<'a>(t: &'a HashMap<String, Span>, s: &Span) -> &'a Span {
    &t[&hex(&s.parent_span_id)]
}

const FANOUT: &str = r#"{"StartAt": "Prep", "States": {
  "Prep": {"Type": "Pass", "Result": [1, 2], "ResultPath": "$.items", "Next": "Fan"},
  "Fan": {"Type": "Parallel", "Next": "Done", "Branches": [
    {"StartAt": "Each", "States": {"Each": {"Type": "Map", "ItemsPath": "$.items", "End": true,
      "ItemProcessor": {"StartAt": "Echo", "States": {
        "Echo": {"Type": "Task", "Resource": "weft:plugin:echo", "End": true}}}}}},
    {"StartAt": "Side", "States": {"Side": {"Type": "Pass", "End": true}}}]},
  "Done": {"Type": "Succeed"}}}"#;

fn install_echo(home: &Path) {
    let o = weft(
        home,
        &["plugin", "install", plugin("echo.wasm").to_str().unwrap()],
        &[],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
}

/// Issue 20 item 3: a run is one trace (root, a span per state visit, a span per sandboxed
/// attempt under its state, Map/Parallel children under their state) and the `traceparent` a
/// task gets names its attempt's span; a DAG run is one trace (root, task instances, tries).
#[test]
fn runs_and_dag_runs_export_span_trees_over_otlp_http() {
    let home = tempfile::tempdir().unwrap();
    install_echo(home.path());
    let file = home.path().join("fanout.asl.json");
    std::fs::write(&file, FANOUT).unwrap();
    let (port, got) = receiver();
    let endpoint = format!("http://127.0.0.1:{port}");
    let o = weft(
        home.path(),
        &[
            "run",
            file.to_str().unwrap(),
            "--input",
            "{}",
            "--otlp-endpoint",
            &endpoint,
            "--log-format",
            "json",
        ],
        &[("WEFT_LOG", "info")],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));

    let spans = std::mem::take(&mut got.lock().unwrap().spans);
    let root = spans
        .iter()
        .find(|s| s.name == "execution fanout")
        .unwrap_or_else(|| {
            panic!(
                "no root span in {:?}",
                spans.iter().map(|s| &s.name).collect::<Vec<_>>()
            )
        });
    let t = tree(&spans, &root.trace_id);
    assert!(root.parent_span_id.is_empty());
    assert_eq!(string(root, "weft.execution.status"), "SUCCEEDED");
    for name in ["Pass Prep", "Parallel Fan", "Succeed Done"] {
        let s = named(&t, name);
        assert_eq!(s.len(), 1, "{name}");
        assert_eq!(parent(&t, s[0]).name, root.name, "{name}");
    }
    let each = named(&t, "Map Each");
    assert_eq!(each.len(), 1);
    assert_eq!(parent(&t, each[0]).name, "Parallel Fan");
    assert_eq!(int(each[0], "weft.parallel.branch"), 0);
    assert_eq!(parent(&t, named(&t, "Pass Side")[0]).name, "Parallel Fan");
    let echoes = named(&t, "Task Echo");
    assert_eq!(echoes.len(), 2);
    let mut iterations: Vec<i64> = echoes
        .iter()
        .map(|s| int(s, "weft.map.iteration"))
        .collect();
    iterations.sort();
    assert_eq!(iterations, [0, 1]);
    let attempts = named(&t, "attempt echo");
    assert_eq!(attempts.len(), 2);
    for a in &attempts {
        assert_eq!(parent(&t, a).name, "Task Echo");
        assert_eq!(string(a, "weft.plugin.name"), "echo");
        let digest = string(a, "weft.plugin.digest");
        assert!(
            digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit()),
            "{digest}"
        );
        assert!(int(a, "weft.fuel_used") > 0);
        assert!(int(a, "weft.memory.peak_bytes") > 0);
        assert_eq!(int(a, "weft.grant.allowed"), 0);
        assert_eq!(int(a, "weft.grant.denied"), 0);
        assert_eq!(int(a, "weft.attempt"), 1);
        assert!(attr(a, "error.type").is_none());
    }

    // the traceparent each task received is its attempt span's (the task's log line says it)
    let trace = hex(&root.trace_id);
    let mut seen = Vec::new();
    for line in text(&o.stderr).lines() {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        if let Some(tp) = v["fields"]["traceparent"].as_str() {
            seen.push(tp.to_string());
        }
    }
    let mut expected: Vec<String> = attempts
        .iter()
        .map(|a| format!("00-{trace}-{}-01", hex(&a.span_id)))
        .collect();
    seen.sort();
    expected.sort();
    assert_eq!(seen, expected);
    {
        let g = got.lock().unwrap();
        assert!(g
            .requests
            .iter()
            .all(|(p, c)| p == "/v1/traces" && c == "application/x-protobuf"));
    }

    // a DAG run: root, a span per task instance, a span per try under it
    let dags = home.path().join("dags");
    std::fs::create_dir_all(&dags).unwrap();
    std::fs::write(
        dags.join("pair.yaml"),
        "pair:\n  schedule: null\n  tasks:\n    first:\n      operator: echo\n      x: 1\n    second:\n      operator: echo\n      dependencies: [first]\n      y: 2\n",
    )
    .unwrap();
    let dag_test = [
        "dag",
        "test",
        "pair",
        "2024-03-05",
        "--dags",
        dags.to_str().unwrap(),
        "--json",
        "--otlp-endpoint",
        &endpoint,
    ];
    let o = weft(home.path(), &dag_test, &[]);
    assert!(
        o.status.success(),
        "{}\n{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    let spans = std::mem::take(&mut got.lock().unwrap().spans);
    let root = spans
        .iter()
        .find(|s| s.name == "dag_run pair")
        .expect("a DAG run root span");
    let t = tree(&spans, &root.trace_id);
    assert_eq!(string(root, "weft.dag.state"), "success");
    for task in ["first", "second"] {
        let ti = named(&t, &format!("task {task}"));
        assert_eq!(ti.len(), 1, "{task}");
        assert_eq!(parent(&t, ti[0]).name, "dag_run pair");
        let tries: Vec<&Span> = t
            .values()
            .filter(|s| s.parent_span_id == ti[0].span_id)
            .collect();
        assert_eq!(tries.len(), 1, "{task}");
        assert_eq!(tries[0].name, "attempt echo");
        assert_eq!(string(tries[0], "weft.task"), task);
    }
    assert_eq!(t.len(), 5);
    // the same logical date tested again is another trace
    let first = root.trace_id.clone();
    let o = weft(home.path(), &dag_test, &[]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let spans = std::mem::take(&mut got.lock().unwrap().spans);
    let again = spans.iter().find(|s| s.name == "dag_run pair").unwrap();
    assert_ne!(again.trace_id, first);
    assert_eq!(tree(&spans, &again.trace_id).len(), 5);

    // the persistent scheduler (`dag trigger`) makes the same tree, and its JSON log lines name
    // the run and its trace
    let o = weft(
        home.path(),
        &[
            "dag",
            "trigger",
            "pair",
            "--dags",
            dags.to_str().unwrap(),
            "--date",
            "2024-03-06",
            "--otlp-endpoint",
            &endpoint,
            "--log-format",
            "json",
        ],
        &[("WEFT_LOG", "info")],
    );
    assert!(
        o.status.success(),
        "{}\n{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    let spans = std::mem::take(&mut got.lock().unwrap().spans);
    let root = spans
        .iter()
        .find(|s| s.name == "dag_run pair")
        .expect("a DAG run root span");
    let t = tree(&spans, &root.trace_id);
    assert_eq!(t.len(), 5);
    let run_id = string(root, "weft.dag.run_id");
    let trace = hex(&root.trace_id);
    let mut finished = 0;
    for line in text(&o.stderr).lines() {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        if v["fields"]["message"] == "dag run finished" {
            assert_eq!(v["fields"]["run_id"], run_id.as_str(), "{line}");
            assert_eq!(v["fields"]["trace_id"], trace.as_str(), "{line}");
            finished += 1;
        }
        if let Some(tt) = v["spans"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["name"] == "task_try"))
        {
            assert_eq!(tt["run_id"], run_id.as_str(), "{line}");
            assert_eq!(tt["trace_id"], trace.as_str(), "{line}");
        }
    }
    assert_eq!(finished, 1, "{}", text(&o.stderr));
}

/// Issue 20 item 4: with `--log-format json` every line is one JSON object, and the lines about
/// an execution carry its execution ARN and trace id.
#[test]
fn json_logs_carry_the_execution_and_trace_ids() {
    let home = tempfile::tempdir().unwrap();
    install_echo(home.path());
    let file = home.path().join("fanout.asl.json");
    std::fs::write(&file, FANOUT).unwrap();
    let o = weft(
        home.path(),
        &[
            "run",
            file.to_str().unwrap(),
            "--name",
            "json-logs",
            "--log-format",
            "json",
        ],
        &[("WEFT_LOG", "info,weft_asl=debug")],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(
        serde_json::from_str::<Value>(text(&o.stdout).trim()).unwrap(),
        json!([[1, 2], {"items": [1, 2]}])
    );
    let mut about = 0;
    for line in text(&o.stderr).lines() {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(
            v["level"].is_string() && v["timestamp"].is_string(),
            "{line}"
        );
        let Some(spans) = v["spans"].as_array() else {
            continue;
        };
        let exec = spans.iter().find(|s| s["name"] == "execution");
        let exec = exec.unwrap_or_else(|| panic!("a line outside its execution: {line}"));
        assert!(
            exec["execution"]
                .as_str()
                .is_some_and(|a| a.ends_with(":fanout:json-logs")),
            "{line}"
        );
        assert_eq!(exec["trace_id"].as_str().map(str::len), Some(32), "{line}");
        about += 1;
    }
    assert!(about >= 2, "{}", text(&o.stderr));
}

/// The attacker's side of item 3: a collector that refuses connections or accepts and never
/// answers costs dropped spans, never a failed run; a malformed endpoint is refused at start
/// with a message naming it.
#[test]
fn an_unreachable_or_hanging_collector_never_fails_a_run() {
    let home = tempfile::tempdir().unwrap();
    install_echo(home.path());
    let file = home.path().join("fanout.asl.json");
    std::fs::write(&file, FANOUT).unwrap();
    // nothing listens on a port that was just free
    let closed = format!("http://127.0.0.1:{}", free_port());
    // accepts, reads nothing, answers nothing (the sockets stay open until the test ends)
    let hanging = TcpListener::bind("127.0.0.1:0").unwrap();
    let hang_url = format!("http://127.0.0.1:{}", hanging.local_addr().unwrap().port());
    let held = Arc::new(Mutex::new(Vec::new()));
    let h = held.clone();
    std::thread::spawn(move || {
        for c in hanging.incoming().flatten() {
            h.lock().unwrap().push(c);
        }
    });
    for endpoint in [&closed, &hang_url] {
        let t0 = std::time::Instant::now();
        let o = weft(
            home.path(),
            &["run", file.to_str().unwrap(), "--otlp-endpoint", endpoint],
            &[],
        );
        assert!(o.status.success(), "{endpoint}: {}", text(&o.stderr));
        let out: Value = serde_json::from_str(text(&o.stdout).trim()).unwrap();
        assert_eq!(out, json!([[1, 2], {"items": [1, 2]}]), "{endpoint}");
        eprintln!("{endpoint}: the run and its exit took {:?}", t0.elapsed());
    }
    // the environment variable names the collector too
    let o = weft(
        home.path(),
        &["run", file.to_str().unwrap()],
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", closed.as_str())],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    for bad in ["ftp://127.0.0.1:4318", "127.0.0.1:4318", "http://"] {
        let o = weft(
            home.path(),
            &["run", file.to_str().unwrap(), "--otlp-endpoint", bad],
            &[],
        );
        assert_eq!(o.status.code(), Some(2), "{bad}");
        let err = text(&o.stderr);
        assert!(
            err.contains("--otlp-endpoint") && err.contains(bad),
            "{err}"
        );
        assert!(o.stdout.is_empty(), "nothing ran");
    }
    let o = weft(
        home.path(),
        &["run", file.to_str().unwrap()],
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", "not a url")],
    );
    assert_eq!(o.status.code(), Some(2));
}

/// One AWS JSON 1.0 call to a `weft server --no-auth`; the answer's JSON (status 200 asserted).
fn call(port: u16, action: &str, body: &Value) -> Value {
    let (status, v) = common::call(port, action, body);
    assert_eq!(status, 200, "{action}: {v}");
    v
}

/// Item 3 and 4 on `weft server`: a Standard execution that suspends on a Wait and is replayed
/// is still one trace, each state reported once (a replay does not repeat what the first run
/// reported), under the caller's span from its `traceHeader`; its log lines in JSON name the
/// execution and that trace.
fn a_replayed_standard_execution_is_one_trace_and_its_json_logs_name_it(backend: &Backend) {
    let home = tempfile::tempdir().unwrap();
    install_echo(home.path());
    let (port_otlp, got) = receiver();
    let port = free_port();
    let stderr_path = home.path().join("server.log");
    let mut child = backend
        .apply(&mut Command::new(env!("CARGO_BIN_EXE_weft")))
        .args(["server", "--no-auth", "--log-format", "json", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--otlp-endpoint")
        .arg(format!("http://127.0.0.1:{port_otlp}/v1/traces"))
        .env("WEFT_HOME", home.path())
        .env("WEFT_LOG", "info")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .current_dir(home.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap();
    // (the child is reaped below on every path the test passes; a failure leaves it to the
    // test harness's exit)
    wait_until_serving(&mut child, port, std::time::Duration::from_secs(60));
    let def = r#"{"StartAt": "Each", "States": {
      "Each": {"Type": "Map", "ItemsPath": "$.items", "ResultPath": "$.echoed", "Next": "W",
        "ItemProcessor": {"StartAt": "Echo", "States": {
          "Echo": {"Type": "Task", "Resource": "weft:plugin:echo", "End": true}}}},
      "W": {"Type": "Wait", "Seconds": 1, "Next": "Last"},
      "Last": {"Type": "Task", "Resource": "weft:plugin:echo", "End": true}}}"#;
    let sm = call(
        port,
        "CreateStateMachine",
        &json!({"name": "replayed", "definition": def, "type": "STANDARD"}),
    )["stateMachineArn"]
        .clone();
    let caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let arn = call(
        port,
        "StartExecution",
        &json!({"stateMachineArn": sm, "name": "e1", "input": "{\"items\": [1, 2]}",
                "traceHeader": format!("00-{caller_trace}-{caller_span}-01")}),
    )["executionArn"]
        .as_str()
        .unwrap()
        .to_string();
    let t0 = std::time::Instant::now();
    let status = loop {
        let d = call(port, "DescribeExecution", &json!({"executionArn": arn}));
        if d["status"] != "RUNNING" {
            break d["status"].clone();
        }
        assert!(t0.elapsed().as_secs() < 60, "still running");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(status, "SUCCEEDED");
    // SIGTERM: the server stops and sends what it queued before exiting
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert!(child.wait().unwrap().success());

    let spans = std::mem::take(&mut got.lock().unwrap().spans);
    let trace: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&caller_trace[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let caller: Vec<u8> = (0..8)
        .map(|i| u8::from_str_radix(&caller_span[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let t = tree_under(&spans, &trace, &caller);
    let names = |n: &str| named(&t, n).len();
    let root = named(&t, "execution replayed")[0];
    assert_eq!(string(root, "weft.execution.arn"), arn);
    assert_eq!(string(root, "weft.execution.status"), "SUCCEEDED");
    assert_eq!(
        (names("Map Each"), names("Task Echo"), names("attempt echo")),
        (1, 2, 3),
        "{:?}",
        t.values().map(|s| &s.name).collect::<Vec<_>>()
    );
    assert_eq!((names("Wait W"), names("Task Last")), (1, 1));
    assert_eq!(t.len(), 1 + 1 + 2 + 1 + 1 + 3);
    let w = named(&t, "Wait W")[0];
    assert!(
        w.end_time_unix_nano - w.start_time_unix_nano >= 1_000_000_000,
        "the Wait's span starts when the first run entered it"
    );
    for e in named(&t, "Task Echo") {
        assert_eq!(parent(&t, e).name, "Map Each");
    }

    let log = std::fs::read_to_string(&stderr_path).unwrap();
    let mut about = 0;
    for line in log.lines() {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let Some(exec) = v["spans"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["name"] == "execution"))
        else {
            continue;
        };
        assert_eq!(exec["execution"], arn.as_str(), "{line}");
        assert_eq!(exec["trace_id"], caller_trace, "{line}");
        about += 1;
    }
    assert!(about >= 3, "{log}");
    assert!(log.contains("execution ended"), "{log}");
}
on_both_backends!(a_replayed_standard_execution_is_one_trace_and_its_json_logs_name_it);
