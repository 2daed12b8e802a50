//! The web UI's JSON endpoints under `/v1` over real HTTP: authentication (header only: a key in
//! the URL is refused),
//! the live event stream of an execution, waiting task tokens, task logs, the executions list's
//! filters and paging, plugins and DAGs.

use serde_json::{json, Value};
use std::time::Duration;
use weft_server::auth::Tokens;

mod common;

use common::{request, start_with, Server};

const TOKEN: &str = "ui-token";

fn tokens() -> Option<Tokens> {
    Some(Tokens::from_keys(&[(TOKEN, TOKEN)]))
}

async fn sfn(s: &Server, action: &str, body: Value) -> Value {
    let target = format!("AWSStepFunctions.{action}");
    let auth = format!("Bearer {TOKEN}");
    let (status, _, text) = request(
        s.addr,
        "POST",
        "/",
        &[
            ("X-Amz-Target", &target),
            ("Content-Type", "application/x-amz-json-1.0"),
            ("Authorization", &auth),
        ],
        &body.to_string(),
    )
    .await;
    assert_eq!(status, 200, "{action}: {text}");
    serde_json::from_str(&text).unwrap()
}

async fn get(s: &Server, path: &str) -> (u16, Value) {
    let auth = format!("Bearer {TOKEN}");
    let (status, _, text) = request(s.addr, "GET", path, &[("Authorization", &auth)], "").await;
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}")),
    )
}

fn enc(s: &str) -> String {
    s.replace(':', "%3A")
}

async fn create(s: &Server, name: &str, def: Value) -> String {
    sfn(
        s,
        "CreateStateMachine",
        json!({"name": name, "definition": def.to_string(), "roleArn": "arn:aws:iam::000000000000:role/x"}),
    )
    .await["stateMachineArn"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn start(s: &Server, sm: &str, name: &str) -> String {
    sfn(
        s,
        "StartExecution",
        json!({"stateMachineArn": sm, "name": name, "input": "{}"}),
    )
    .await["executionArn"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn wait_done(s: &Server, arn: &str) -> Value {
    for _ in 0..200 {
        let d = sfn(s, "DescribeExecution", json!({"executionArn": arn})).await;
        if d["status"] != "RUNNING" {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{arn} did not finish");
}

#[tokio::test]
async fn endpoints_need_the_key_in_the_header_never_in_the_url() {
    let s = start_with(tokens(), 10).await;
    let (status, _, body) = request(s.addr, "GET", "/v1/plugins", &[], "").await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("MissingAuthenticationTokenException"));
    let (status, _, _) = request(s.addr, "GET", "/v1/plugins?token=wrong", &[], "").await;
    assert_eq!(status, 403);
    // the right secret in the URL (where logs, history and Referer keep it) is not a login
    for path in [
        format!("/v1/plugins?token={TOKEN}"),
        format!("/v1/plugins?a=1&token={TOKEN}"),
        "/v1/executions?token=%75i-token".to_string(),
        format!("/v1/audit?access_token={TOKEN}"),
        format!("/metrics?token={TOKEN}"),
    ] {
        let (status, _, body) = request(s.addr, "GET", &path, &[], "").await;
        assert_eq!(status, 403, "{path}: {body}");
        assert!(
            body.contains("MissingAuthenticationTokenException"),
            "{path}: {body}"
        );
    }
    let exec = "arn%3Aaws%3Astates%3Aus-east-1%3A000000000000%3Aexecution%3Ax%3Ay";
    let (status, _, body) = request(
        s.addr,
        "GET",
        &format!("/v1/executions/{exec}/events?token={TOKEN}"),
        &[],
        "",
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let (status, v) = get(&s, "/v1/plugins").await;
    assert_eq!(status, 200);
    assert_eq!(v["plugins"], json!([]));
}

#[tokio::test]
async fn event_stream_sends_history_and_status_until_the_end() {
    let s = start_with(tokens(), 10).await;
    let sm = create(
        &s,
        "waits",
        json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 1, "Next": "P"}, "P": {"Type": "Pass", "End": true}}}),
    )
    .await;
    let exec = start(&s, &sm, "e1").await;
    // the stream ends by itself after the terminal status, so reading to the end terminates
    let auth = format!("Bearer {TOKEN}");
    let (status, hs, body) = request(
        s.addr,
        "GET",
        &format!("/v1/executions/{}/events", enc(&exec)),
        &[("Authorization", &auth)],
        "",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        hs.iter()
            .any(|(k, v)| k == "content-type" && v.starts_with("text/event-stream")),
        "{hs:?}"
    );
    let first_status = body.find("event: status").expect(&body);
    assert!(body[first_status..].contains("RUNNING"), "{body}");
    assert!(
        body.contains("event: history") && body.contains("WaitStateExited"),
        "{body}"
    );
    assert!(body.contains("ExecutionSucceeded"), "{body}");
    assert!(
        body.rfind("SUCCEEDED").unwrap() > body.find("ExecutionSucceeded").unwrap(),
        "{body}"
    );

    // a finished execution: its status, then the end
    let (_, _, body) = request(
        s.addr,
        "GET",
        &format!("/v1/executions/{}/events", enc(&exec)),
        &[("Authorization", &auth)],
        "",
    )
    .await;
    assert!(
        body.contains("SUCCEEDED") && !body.contains("event: history"),
        "{body}"
    );

    let (status, v) = get(&s, "/v1/executions/arn%3Aaws%3Astates%3Aus-east-1%3A000000000000%3Aexecution%3Awaits%3Anope/events").await;
    assert_eq!(status, 404, "{v}");
    assert_eq!(v["__type"], "ExecutionDoesNotExist");
    let (status, v) = get(&s, "/v1/executions/not-an-arn/tasks").await;
    assert_eq!(status, 400);
    assert_eq!(v["__type"], "InvalidArn");
}

#[tokio::test]
async fn waiting_tokens_are_listed_until_answered() {
    let s = start_with(tokens(), 10).await;
    let sm = create(
        &s,
        "approval",
        json!({"StartAt": "Ask", "States": {"Ask": {"Type": "Task",
            "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
            "Parameters": {"MessageBody": {"t.$": "$$.Task.Token"}}, "End": true}}}),
    )
    .await;
    let exec = start(&s, &sm, "a1").await;
    let path = format!("/v1/executions/{}/tokens", enc(&exec));
    let mut tokens = json!([]);
    for _ in 0..100 {
        tokens = get(&s, &path).await.1["tokens"].clone();
        if tokens.as_array().is_some_and(|t| !t.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(tokens.as_array().unwrap().len(), 1, "{tokens}");
    assert_eq!(tokens[0]["state"], "Ask");
    let token = tokens[0]["taskToken"].as_str().unwrap();
    // the same token is in TaskScheduled's parameters
    let hist = sfn(&s, "GetExecutionHistory", json!({"executionArn": exec})).await;
    assert!(hist.to_string().contains(token));
    sfn(
        &s,
        "SendTaskSuccess",
        json!({"taskToken": token, "output": "{\"ok\":1}"}),
    )
    .await;
    assert_eq!(wait_done(&s, &exec).await["status"], "SUCCEEDED");
    assert_eq!(get(&s, &path).await.1["tokens"], json!([]));
}

#[tokio::test]
async fn task_logs_record_failures_before_the_sandbox() {
    let s = start_with(tokens(), 10).await;
    let sm = create(
        &s,
        "missing",
        json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "weft:plugin:does-not-exist",
            "Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 1, "IntervalSeconds": 1}], "End": true}}}),
    )
    .await;
    let exec = start(&s, &sm, "m1").await;
    assert_eq!(wait_done(&s, &exec).await["status"], "FAILED");
    let (status, v) = get(&s, &format!("/v1/executions/{}/tasks", enc(&exec))).await;
    assert_eq!(status, 200, "{v}");
    let tasks = v["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 2, "two attempts: {v}");
    assert_eq!(tasks[0]["state"], "T");
    assert_eq!(tasks[0]["attempt"], 1);
    assert_eq!(tasks[1]["attempt"], 2);
    assert!(
        tasks[1]["error"]["cause"]
            .as_str()
            .unwrap()
            .contains("does-not-exist"),
        "{v}"
    );
    // another execution's logs are not mixed in
    let other = start(&s, &sm, "m10").await;
    wait_done(&s, &other).await;
    let (_, v) = get(&s, &format!("/v1/executions/{}/tasks", enc(&exec))).await;
    assert_eq!(v["tasks"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn executions_list_filters_and_pages() {
    let s = start_with(tokens(), 50).await;
    let a = create(
        &s,
        "alpha",
        json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}),
    )
    .await;
    let b = create(
        &s,
        "beta",
        json!({"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "E"}}}),
    )
    .await;
    let mut all = Vec::new();
    for i in 0..5 {
        all.push(start(&s, &a, &format!("nightly-{i}")).await);
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    all.push(start(&s, &b, "adhoc").await);
    for e in &all {
        wait_done(&s, e).await;
    }
    let (_, v) = get(&s, "/v1/executions").await;
    assert_eq!(v["total"], 6);
    assert_eq!(v["executions"][0]["name"], "adhoc", "newest first: {v}");
    let (_, v) = get(&s, "/v1/executions?status=FAILED").await;
    assert_eq!(v["total"], 1);
    assert_eq!(v["executions"][0]["stateMachineName"], "beta");
    let (_, v) = get(&s, "/v1/executions?name=NIGHTLY&stateMachine=alpha&limit=2").await;
    assert_eq!(v["total"], 5);
    assert_eq!(v["executions"].as_array().unwrap().len(), 2);
    let next = v["nextToken"].as_str().unwrap().to_string();
    let (_, v2) = get(
        &s,
        &format!("/v1/executions?name=nightly&limit=2&next={next}"),
    )
    .await;
    assert_eq!(v2["executions"].as_array().unwrap().len(), 2);
    assert_ne!(v2["executions"][0]["name"], v["executions"][0]["name"]);
    let (_, v) = get(&s, "/v1/executions?from=99999999999999").await;
    assert_eq!(v["total"], 0);
    let (status, v) = get(&s, "/v1/executions?from=yesterday").await;
    assert_eq!(status, 400, "{v}");
    let (status, v) = get(&s, "/v1/executions?next=garbage").await;
    assert_eq!(status, 400);
    assert_eq!(v["__type"], "InvalidToken");
}

/// The app on a store of our own (so the test can put plugins and DAG files in it).
async fn start_in(home: &std::path::Path) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let store = std::sync::Arc::new(weft_store::Store::open(home).unwrap());
    for (name, grant) in [
        ("echo", json!(null)),
        (
            "csv-to-json",
            json!({"Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["fs:Read"], "Resource": ["file:data/*"]}]}),
        ),
    ] {
        store
            .registry()
            .put(&weft_store::PluginRecord {
                name: name.into(),
                version: "0.1.0".into(),
                digest: weft_store::Digest::of(name.as_bytes()),
                world: "task".into(),
                manifest: json!({"description": format!("{name} plugin"), "grant": grant}),
                installed_at: 0,
            })
            .unwrap();
    }
    let state = weft_server::AppState::with_limit(store, tokens(), 10).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        weft_server::serve(listener, state).await.unwrap();
    });
    (addr, task)
}

#[tokio::test]
async fn dags_and_plugins_with_their_users() {
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join("dags")).unwrap();
    std::fs::write(
        home.path().join("dags/pipe.yaml"),
        "pipe:\n  schedule: '@daily'\n  default_args:\n    start_date: 2024-01-01\n  tags: [t1]\n  params:\n    n: {default: 1, type: integer, description: how many}\n    plain: x\n  tasks:\n    a:\n      operator: csv-to-json\n    b:\n      operator: echo\n      dependencies: [a]\n",
    )
    .unwrap();
    std::fs::write(
        home.path().join("dags/broken.yaml"),
        "broken:\n  tasks:\n    x:\n      operator: not-installed\n",
    )
    .unwrap();
    let (addr, task) = start_in(home.path()).await;
    let s = Server2(addr);
    sfn2(&s, "CreateStateMachine", json!({"name": "uses-echo", "definition": json!({"StartAt": "T", "States": {"T": {"Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke", "Parameters": {"FunctionName": "echo", "Payload": {}}, "End": true}}}).to_string()})).await;

    let (status, v) = get2(&s, "/v1/dags").await;
    assert_eq!(status, 200, "{v}");
    let dags = v["dags"].as_array().unwrap();
    assert_eq!(dags.len(), 2, "{v}");
    assert_eq!(dags[0]["dagId"], "pipe");
    assert_eq!(dags[0]["schedule"], "@daily");
    assert_eq!(dags[0]["tags"], json!(["t1"]));
    assert_eq!(dags[0]["owners"], json!(["airflow"]), "{v}");
    assert_eq!(dags[0]["recentRuns"], json!([]), "{v}");
    assert_eq!(dags[0]["importError"], false, "{v}");
    assert!(dags[0]["nextRun"]["logicalDate"].is_string(), "{v}");
    assert!(v["errors"].to_string().contains("not-installed"), "{v}");
    // the import errors banner's entries: file, line, reason, DAG
    let e = &v["importErrors"][0];
    assert!(e["file"].as_str().unwrap().ends_with("broken.yaml"), "{v}");
    assert_eq!(
        (&e["line"], &e["dagId"]),
        (&json!(4), &json!("broken")),
        "{v}"
    );
    assert!(
        e["reason"].as_str().unwrap().contains("not-installed"),
        "{v}"
    );
    assert_eq!(e["traceback"], Value::Null, "{v}");
    assert!(dags[0]["isPaused"].is_boolean(), "{v}");
    // a DAG whose file fails to load is listed by its id, marked
    assert_eq!(dags[1]["dagId"], "broken", "{v}");
    assert_eq!(dags[1]["importError"], true, "{v}");
    assert_eq!(dags[1]["nextRun"], Value::Null, "{v}");

    let (status, v) = get2(&s, "/v1/dags/pipe").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["topoOrder"], json!(["a", "b"]));
    assert_eq!(v["taskList"][1]["upstream"], json!(["a"]));
    // what the trigger form is made from: the params as written, a Param with its schema
    assert_eq!(
        v["params"],
        json!({"n": {"default": 1, "type": "integer", "description": "how many"}, "plain": "x"})
    );
    assert_eq!(v["taskGroups"], json!([]));
    assert!(v["isPaused"].is_boolean(), "{v}");
    let (status, v) = get2(&s, "/v1/dags/nope").await;
    assert_eq!(status, 404);
    assert_eq!(v["__type"], "DagNotFound");

    let (_, v) = get2(&s, "/v1/plugins").await;
    let by_name = |n: &str| {
        v["plugins"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == n)
            .unwrap()
            .clone()
    };
    let echo = by_name("echo");
    assert_eq!(echo["stateMachines"], json!(["uses-echo"]));
    assert_eq!(echo["dags"], json!(["pipe"]));
    assert_eq!(echo["world"], "task");
    let csv = by_name("csv-to-json");
    assert_eq!(csv["stateMachines"], json!([]));
    assert_eq!(csv["grant"]["Statement"][0]["Action"], json!(["fs:Read"]));
    assert_eq!(csv["digest"].as_str().unwrap().len(), 64);
    task.abort();
}

struct Server2(std::net::SocketAddr);

async fn sfn2(s: &Server2, action: &str, body: Value) -> Value {
    let target = format!("AWSStepFunctions.{action}");
    let auth = format!("Bearer {TOKEN}");
    let (status, _, text) = request(
        s.0,
        "POST",
        "/",
        &[
            ("X-Amz-Target", &target),
            ("Content-Type", "application/x-amz-json-1.0"),
            ("Authorization", &auth),
        ],
        &body.to_string(),
    )
    .await;
    assert_eq!(status, 200, "{action}: {text}");
    serde_json::from_str(&text).unwrap()
}

async fn get2(s: &Server2, path: &str) -> (u16, Value) {
    let auth = format!("Bearer {TOKEN}");
    let (status, _, text) = request(s.0, "GET", path, &[("Authorization", &auth)], "").await;
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}")),
    )
}

/// The state machines' landing page follows an execution through stop, redrive and stop again;
/// an EXPRESS state machine has no counts (its executions are not recorded).
#[tokio::test]
async fn the_summary_counts_follow_stop_and_redrive() {
    let s = start_with(tokens(), 10).await;
    let sm = create(
        &s,
        "waits",
        json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 3600, "End": true}}}),
    )
    .await;
    sfn(
        &s,
        "CreateStateMachine",
        json!({"name": "quick", "type": "EXPRESS", "roleArn": "arn:aws:iam::000000000000:role/x",
            "definition": json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}).to_string()}),
    )
    .await;
    let counts = |v: &Value, name: &str| -> Value {
        v["stateMachines"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == name)
            .unwrap_or_else(|| panic!("{name} listed: {v}"))["executions"]
            .clone()
    };
    let (status, v) = get(&s, "/v1/state-machines/summary").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(counts(&v, "waits")["RUNNING"], 0, "{v}");
    assert_eq!(counts(&v, "quick"), Value::Null, "{v}");
    let waits = v["stateMachines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "waits")
        .unwrap()
        .clone();
    assert_eq!(waits["lastExecutionDate"], Value::Null, "{v}");
    assert_eq!(waits["type"], "STANDARD");

    let exec = sfn(
        &s,
        "StartExecution",
        json!({"stateMachineArn": sm, "name": "w1"}),
    )
    .await["executionArn"]
        .as_str()
        .unwrap()
        .to_string();
    let expect = |running: u64, aborted: u64| json!({"RUNNING": running, "SUCCEEDED": 0, "FAILED": 0, "TIMED_OUT": 0, "ABORTED": aborted, "PENDING_REDRIVE": 0});
    let (_, v) = get(&s, "/v1/state-machines/summary").await;
    assert_eq!(counts(&v, "waits"), expect(1, 0), "started: {v}");
    assert!(v["stateMachines"].to_string().contains("lastExecutionDate"));
    sfn(&s, "StopExecution", json!({"executionArn": exec})).await;
    let (_, v) = get(&s, "/v1/state-machines/summary").await;
    assert_eq!(counts(&v, "waits"), expect(0, 1), "stopped: {v}");
    sfn(&s, "RedriveExecution", json!({"executionArn": exec})).await;
    let (_, v) = get(&s, "/v1/state-machines/summary").await;
    assert_eq!(counts(&v, "waits"), expect(1, 0), "redriven: {v}");
    sfn(&s, "StopExecution", json!({"executionArn": exec})).await;
    let (_, v) = get(&s, "/v1/state-machines/summary?hours=1").await;
    assert_eq!(counts(&v, "waits"), expect(0, 1), "stopped again: {v}");
    assert_eq!(v["windowHours"], 1);
}
