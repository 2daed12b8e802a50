//! Drives the Step Functions API over real HTTP: the router on 127.0.0.1:0 in-process, requests
//! written by hand (AWS JSON 1.0), every action, error shapes, pagination and idempotency.

use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use weft_server::auth::Tokens;
use weft_server::records::{exec_arn, sm_arn, ExecutionRecord};
use weft_server::AppState;

mod common;

use common::{start_with, Server};

async fn start(tokens: Option<Tokens>) -> Server {
    start_with(tokens, 100).await
}

/// One raw `POST /` request (with AWS JSON 1.0's content type unless `headers` name one, as
/// the server requires a JSON content type on a POST); returns (status, headers lower-cased,
/// body).
async fn raw(
    addr: std::net::SocketAddr,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Vec<(String, String)>, String) {
    let mut hs = headers.to_vec();
    if !hs
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
    {
        hs.push(("Content-Type", "application/x-amz-json-1.0"));
    }
    common::request(addr, "POST", "/", &hs, body).await
}

async fn call_with(
    addr: std::net::SocketAddr,
    action: &str,
    body: Value,
    auth: Option<&str>,
) -> (u16, Value) {
    let target = format!("AWSStepFunctions.{action}");
    let mut hs = vec![
        ("Content-Type", "application/x-amz-json-1.0"),
        ("X-Amz-Target", target.as_str()),
    ];
    if let Some(a) = auth {
        hs.push(("Authorization", a));
    }
    let (status, headers, text) = raw(addr, &hs, &body.to_string()).await;
    assert!(
        headers
            .iter()
            .any(|(k, v)| k == "content-type" && v == "application/x-amz-json-1.0"),
        "{headers:?}"
    );
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}")),
    )
}

async fn call(s: &Server, action: &str, body: Value) -> (u16, Value) {
    call_with(s.addr, action, body, None).await
}

async fn ok(s: &Server, action: &str, body: Value) -> Value {
    let (status, v) = call(s, action, body).await;
    assert_eq!(status, 200, "{action}: {v}");
    v
}

async fn err(s: &Server, action: &str, body: Value) -> (String, String) {
    let (status, v) = call(s, action, body).await;
    assert_eq!(status, 400, "{action}: {v}");
    (
        v["__type"].as_str().unwrap().to_string(),
        v["message"].as_str().unwrap().to_string(),
    )
}

const PASS: &str =
    r#"{"StartAt":"A","States":{"A":{"Type":"Pass","Parameters":{"got.$":"$.x"},"End":true}}}"#;

async fn create(s: &Server, name: &str, def: &str, ty: &str) -> String {
    let v = ok(s, "CreateStateMachine", json!({"name": name, "definition": def, "roleArn": "arn:aws:iam::000000000000:role/r", "type": ty})).await;
    assert!(v["creationDate"].is_f64() || v["creationDate"].is_u64());
    v["stateMachineArn"].as_str().unwrap().to_string()
}

async fn wait_done(s: &Server, arn: &str) -> Value {
    for _ in 0..200 {
        let v = ok(s, "DescribeExecution", json!({"executionArn": arn})).await;
        if v["status"] != "RUNNING" {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{arn} still running");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_machine_crud_and_errors() {
    let s = start(None).await;
    let arn = create(&s, "hello", PASS, "STANDARD").await;
    assert_eq!(arn, sm_arn("hello"));
    // identical create is idempotent; a different one is refused
    assert_eq!(create(&s, "hello", PASS, "STANDARD").await, arn);
    let other = r#"{"StartAt":"B","States":{"B":{"Type":"Succeed"}}}"#;
    let (t, _) = err(
        &s,
        "CreateStateMachine",
        json!({"name": "hello", "definition": other}),
    )
    .await;
    assert_eq!(t, "StateMachineAlreadyExists");
    // pointer-precise definition errors
    let bad = r#"{"StartAt":"A","States":{"A":{"Type":"Pass","Next":"Nope"}}}"#;
    let (t, m) = err(
        &s,
        "CreateStateMachine",
        json!({"name": "bad", "definition": bad}),
    )
    .await;
    assert_eq!(t, "InvalidDefinition");
    assert!(m.contains("/States/A/Next"), "{m}");
    let (t, _) = err(
        &s,
        "CreateStateMachine",
        json!({"name": "bad", "definition": "{not json"}),
    )
    .await;
    assert_eq!(t, "InvalidDefinition");
    let (t, _) = err(
        &s,
        "CreateStateMachine",
        json!({"name": "has space", "definition": PASS}),
    )
    .await;
    assert_eq!(t, "InvalidName");
    let (t, _) = err(&s, "CreateStateMachine", json!({"definition": PASS})).await;
    assert_eq!(t, "ValidationException");
    let (t, _) = err(
        &s,
        "CreateStateMachine",
        json!({"name": "x", "definition": PASS, "type": "FAST"}),
    )
    .await;
    assert_eq!(t, "ValidationException");

    let d = ok(&s, "DescribeStateMachine", json!({"stateMachineArn": arn})).await;
    assert_eq!(d["name"], "hello");
    assert_eq!(d["definition"], PASS);
    assert_eq!(d["type"], "STANDARD");
    assert_eq!(d["status"], "ACTIVE");
    assert_eq!(d["roleArn"], "arn:aws:iam::000000000000:role/r");
    let (t, _) = err(
        &s,
        "DescribeStateMachine",
        json!({"stateMachineArn": sm_arn("nope")}),
    )
    .await;
    assert_eq!(t, "StateMachineDoesNotExist");
    let (t, _) = err(
        &s,
        "DescribeStateMachine",
        json!({"stateMachineArn": "arn:nope"}),
    )
    .await;
    assert_eq!(t, "InvalidArn");

    let u = ok(
        &s,
        "UpdateStateMachine",
        json!({"stateMachineArn": arn, "definition": other}),
    )
    .await;
    assert!(u["updateDate"].is_number() && u["revisionId"].is_string());
    let d = ok(&s, "DescribeStateMachine", json!({"stateMachineArn": arn})).await;
    assert_eq!(d["definition"], other);
    let (t, _) = err(
        &s,
        "UpdateStateMachine",
        json!({"stateMachineArn": arn, "definition": bad}),
    )
    .await;
    assert_eq!(t, "InvalidDefinition");
    let (t, _) = err(&s, "UpdateStateMachine", json!({"stateMachineArn": arn})).await;
    assert_eq!(t, "MissingRequiredParameter");
    let (t, _) = err(
        &s,
        "UpdateStateMachine",
        json!({"stateMachineArn": sm_arn("nope"), "definition": PASS}),
    )
    .await;
    assert_eq!(t, "StateMachineDoesNotExist");

    // pagination over 5 machines, 2 a page
    for i in 0..4 {
        create(&s, &format!("m{i}"), PASS, "EXPRESS").await;
    }
    let mut names = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut req = json!({"maxResults": 2});
        if let Some(t) = &token {
            req["nextToken"] = json!(t);
        }
        let v = ok(&s, "ListStateMachines", req).await;
        pages += 1;
        for m in v["stateMachines"].as_array().unwrap() {
            assert!(
                m["creationDate"].is_number()
                    && m["type"].is_string()
                    && m["stateMachineArn"].is_string()
            );
            names.push(m["name"].as_str().unwrap().to_string());
        }
        match v.get("nextToken") {
            Some(t) => token = Some(t.as_str().unwrap().to_string()),
            None => break,
        }
    }
    assert_eq!(names, ["hello", "m0", "m1", "m2", "m3"]);
    assert_eq!(pages, 3);
    let (t, _) = err(&s, "ListStateMachines", json!({"nextToken": "garbage"})).await;
    assert_eq!(t, "InvalidToken");
    let (t, _) = err(&s, "ListStateMachines", json!({"maxResults": 5000})).await;
    assert_eq!(t, "ValidationException");

    ok(&s, "DeleteStateMachine", json!({"stateMachineArn": arn})).await;
    let (t, _) = err(&s, "DescribeStateMachine", json!({"stateMachineArn": arn})).await;
    assert_eq!(t, "StateMachineDoesNotExist");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_errors() {
    let s = start(None).await;
    let (t, _) = err(&s, "NoSuchAction", json!({})).await;
    assert_eq!(t, "UnknownOperationException");
    let (status, _, body) = raw(
        s.addr,
        &[("X-Amz-Target", "AWSStepFunctions.ListStateMachines")],
        "{oops",
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["__type"],
        "SerializationException"
    );
    let (status, _, body) = raw(s.addr, &[], "{}").await;
    assert_eq!(status, 400);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["__type"],
        "UnknownOperationException"
    );
    // an empty body is an empty request
    let (status, _, body) = raw(
        s.addr,
        &[("X-Amz-Target", "AWSStepFunctions.ListStateMachines")],
        "",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (t, _) = err(&s, "DescribeExecution", json!({"executionArn": 42})).await;
    assert_eq!(t, "SerializationException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executions_history_idempotency_pagination() {
    let s = start(None).await;
    let sm = create(&s, "flow", PASS, "STANDARD").await;
    let v = ok(
        &s,
        "StartExecution",
        json!({"stateMachineArn": sm, "name": "e1", "input": "{\"x\": 7}"}),
    )
    .await;
    let e1 = v["executionArn"].as_str().unwrap().to_string();
    assert_eq!(e1, exec_arn("flow", "e1"));
    assert!(v["startDate"].is_number());
    // as AWS: a repeat of a closed execution's name is ExecutionAlreadyExists, whatever the
    // input (a running one with the same input is answered: see oversized_body_and_concurrency_limit)
    wait_done(&s, &e1).await;
    let (t, _) = err(
        &s,
        "StartExecution",
        json!({"stateMachineArn": sm, "name": "e1", "input": "{\"x\":7}"}),
    )
    .await;
    assert_eq!(t, "ExecutionAlreadyExists");
    let (t, _) = err(
        &s,
        "StartExecution",
        json!({"stateMachineArn": sm, "name": "e1", "input": "{\"x\":8}"}),
    )
    .await;
    assert_eq!(t, "ExecutionAlreadyExists");
    let (t, _) = err(
        &s,
        "StartExecution",
        json!({"stateMachineArn": sm, "input": "{nope"}),
    )
    .await;
    assert_eq!(t, "InvalidExecutionInput");
    let big = format!("\"{}\"", "a".repeat(300 * 1024));
    let (t, _) = err(
        &s,
        "StartExecution",
        json!({"stateMachineArn": sm, "input": big}),
    )
    .await;
    assert_eq!(t, "ValidationException");
    let (t, _) = err(
        &s,
        "StartExecution",
        json!({"stateMachineArn": sm_arn("ghost")}),
    )
    .await;
    assert_eq!(t, "StateMachineDoesNotExist");
    let (t, _) = err(&s, "StartSyncExecution", json!({"stateMachineArn": sm})).await;
    assert_eq!(t, "StateMachineTypeNotSupported");

    let d = wait_done(&s, &e1).await;
    assert_eq!(d["status"], "SUCCEEDED");
    assert_eq!(
        serde_json::from_str::<Value>(d["output"].as_str().unwrap()).unwrap(),
        json!({"got": 7})
    );
    assert_eq!(d["input"], "{\"x\": 7}");
    assert_eq!(d["stateMachineArn"], sm);
    assert!(d["stopDate"].is_number());
    let (t, _) = err(
        &s,
        "DescribeExecution",
        json!({"executionArn": exec_arn("flow", "nope")}),
    )
    .await;
    assert_eq!(t, "ExecutionDoesNotExist");
    let (t, _) = err(&s, "DescribeExecution", json!({"executionArn": sm})).await;
    assert_eq!(t, "InvalidArn");

    // history: forward, reverse, paginated
    let h = ok(&s, "GetExecutionHistory", json!({"executionArn": e1})).await;
    let types: Vec<&str> = h["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "ExecutionStarted",
            "PassStateEntered",
            "PassStateExited",
            "ExecutionSucceeded"
        ]
    );
    assert_eq!(h["events"][0]["id"], 1);
    assert!(h["events"][0]["timestamp"].is_number());
    assert!(h["events"][0]["executionStartedEventDetails"]["input"].is_string());
    assert!(h.get("nextToken").is_none());
    let r = ok(
        &s,
        "GetExecutionHistory",
        json!({"executionArn": e1, "reverseOrder": true, "maxResults": 3}),
    )
    .await;
    let ids: Vec<u64> = r["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [4, 3, 2]);
    let tok = r["nextToken"].as_str().unwrap();
    let r2 = ok(
        &s,
        "GetExecutionHistory",
        json!({"executionArn": e1, "reverseOrder": true, "maxResults": 3, "nextToken": tok}),
    )
    .await;
    let ids: Vec<u64> = r2["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [1]);
    assert!(r2.get("nextToken").is_none());
    let f = ok(
        &s,
        "GetExecutionHistory",
        json!({"executionArn": e1, "maxResults": 2}),
    )
    .await;
    let f2 = ok(
        &s,
        "GetExecutionHistory",
        json!({"executionArn": e1, "maxResults": 2, "nextToken": f["nextToken"]}),
    )
    .await;
    let ids: Vec<u64> = f["events"]
        .as_array()
        .unwrap()
        .iter()
        .chain(f2["events"].as_array().unwrap())
        .map(|e| e["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [1, 2, 3, 4]);
    let (t, _) = err(
        &s,
        "GetExecutionHistory",
        json!({"executionArn": e1, "nextToken": "zzz"}),
    )
    .await;
    assert_eq!(t, "InvalidToken");
    let nodata = ok(
        &s,
        "GetExecutionHistory",
        json!({"executionArn": e1, "includeExecutionData": false}),
    )
    .await;
    assert!(nodata["events"][0]["executionStartedEventDetails"]
        .get("input")
        .is_none());

    // a failing execution (no such plugin: the sandbox host is created on demand)
    let failing = r#"{"StartAt":"T","States":{"T":{"Type":"Task","Resource":"weft:plugin:does-not-exist","End":true}}}"#;
    let fsm = create(&s, "failing", failing, "STANDARD").await;
    let fe = ok(
        &s,
        "StartExecution",
        json!({"stateMachineArn": fsm, "name": "f1"}),
    )
    .await;
    let d = wait_done(&s, fe["executionArn"].as_str().unwrap()).await;
    assert_eq!(d["status"], "FAILED");
    assert_eq!(d["error"], "Weft.PluginNotFound");
    assert!(
        d["cause"].as_str().unwrap().contains("does-not-exist"),
        "{d}"
    );

    // ListExecutions: pagination and statusFilter
    for i in 2..=5 {
        ok(
            &s,
            "StartExecution",
            json!({"stateMachineArn": sm, "name": format!("e{i}"), "input": "{\"x\": 1}"}),
        )
        .await;
    }
    for i in 2..=5 {
        wait_done(&s, &exec_arn("flow", &format!("e{i}"))).await;
    }
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut req = json!({"stateMachineArn": sm, "maxResults": 2});
        if let Some(t) = &token {
            req["nextToken"] = json!(t);
        }
        let v = ok(&s, "ListExecutions", req).await;
        for e in v["executions"].as_array().unwrap() {
            assert_eq!(e["stateMachineArn"], sm);
            assert!(e["startDate"].is_number() && e["stopDate"].is_number());
            seen.push(e["name"].as_str().unwrap().to_string());
        }
        match v.get("nextToken") {
            Some(t) => token = Some(t.as_str().unwrap().to_string()),
            None => break,
        }
    }
    seen.sort();
    assert_eq!(seen, ["e1", "e2", "e3", "e4", "e5"]);
    let v = ok(
        &s,
        "ListExecutions",
        json!({"stateMachineArn": sm, "statusFilter": "FAILED"}),
    )
    .await;
    assert_eq!(v["executions"].as_array().unwrap().len(), 0);
    let v = ok(
        &s,
        "ListExecutions",
        json!({"stateMachineArn": fsm, "statusFilter": "FAILED"}),
    )
    .await;
    assert_eq!(v["executions"].as_array().unwrap().len(), 1);
    let (t, _) = err(
        &s,
        "ListExecutions",
        json!({"stateMachineArn": sm, "statusFilter": "WEIRD"}),
    )
    .await;
    assert_eq!(t, "ValidationException");
    let (t, _) = err(
        &s,
        "ListExecutions",
        json!({"stateMachineArn": sm_arn("ghost")}),
    )
    .await;
    assert_eq!(t, "StateMachineDoesNotExist");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_express() {
    let s = start(None).await;
    let sm = create(&s, "quick", PASS, "EXPRESS").await;
    let v = ok(
        &s,
        "StartSyncExecution",
        json!({"stateMachineArn": sm, "name": "s1", "input": "{\"x\": [1,2]}"}),
    )
    .await;
    assert_eq!(v["status"], "SUCCEEDED");
    assert_eq!(
        serde_json::from_str::<Value>(v["output"].as_str().unwrap()).unwrap(),
        json!({"got": [1, 2]})
    );
    assert!(v["executionArn"]
        .as_str()
        .unwrap()
        .starts_with("arn:aws:states:us-east-1:000000000000:express:quick:s1:"));
    assert_eq!(v["stateMachineArn"], sm);
    assert!(v["startDate"].is_number() && v["stopDate"].is_number());
    assert!(v["billingDetails"]["billedDurationInMilliseconds"].is_number());
    let fail =
        r#"{"StartAt":"F","States":{"F":{"Type":"Fail","Error":"My.Error","Cause":"because"}}}"#;
    let fsm = create(&s, "boom", fail, "EXPRESS").await;
    let v = ok(&s, "StartSyncExecution", json!({"stateMachineArn": fsm})).await;
    assert_eq!(v["status"], "FAILED");
    assert_eq!(v["error"], "My.Error");
    assert_eq!(v["cause"], "because");
    assert!(v.get("output").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_execution_is_final() {
    let s = start(None).await;
    let def = r#"{"StartAt":"W","States":{"W":{"Type":"Wait","Seconds":30,"Next":"Done"},"Done":{"Type":"Pass","Result":"finished","End":true}}}"#;
    let sm = create(&s, "slow", def, "STANDARD").await;
    let v = ok(
        &s,
        "StartExecution",
        json!({"stateMachineArn": sm, "name": "w1"}),
    )
    .await;
    let arn = v["executionArn"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let d = ok(&s, "DescribeExecution", json!({"executionArn": arn})).await;
    assert_eq!(d["status"], "RUNNING");
    let running = ok(
        &s,
        "ListExecutions",
        json!({"stateMachineArn": sm, "statusFilter": "RUNNING"}),
    )
    .await;
    assert_eq!(running["executions"].as_array().unwrap().len(), 1);
    let st = ok(
        &s,
        "StopExecution",
        json!({"executionArn": arn, "error": "Manual", "cause": "test"}),
    )
    .await;
    assert!(st["stopDate"].is_number());
    // the in-process run ends its Wait early; its result must not overwrite ABORTED
    tokio::time::sleep(Duration::from_millis(400)).await;
    let d = ok(&s, "DescribeExecution", json!({"executionArn": arn})).await;
    assert_eq!(d["status"], "ABORTED");
    assert_eq!(d["error"], "Manual");
    assert_eq!(d["cause"], "test");
    assert!(d.get("output").is_none());
    let h = ok(
        &s,
        "GetExecutionHistory",
        json!({"executionArn": arn, "reverseOrder": true, "maxResults": 1}),
    )
    .await;
    assert_eq!(h["events"][0]["type"], "ExecutionAborted");
    assert_eq!(
        h["events"][0]["executionAbortedEventDetails"]["error"],
        "Manual"
    );
    let all = ok(&s, "GetExecutionHistory", json!({"executionArn": arn})).await;
    let types: Vec<&str> = all["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(types.last(), Some(&"ExecutionAborted"));
    assert!(!types.contains(&"ExecutionSucceeded"), "{types:?}");
    // stopping again is harmless
    ok(&s, "StopExecution", json!({"executionArn": arn})).await;
    let (t, _) = err(
        &s,
        "StopExecution",
        json!({"executionArn": exec_arn("slow", "ghost")}),
    )
    .await;
    assert_eq!(t, "ExecutionDoesNotExist");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_tokens() {
    let tokens = Tokens::parse("# comment\nsecret-token\n");
    let s = start(Some(tokens)).await;
    let (status, v) = call_with(s.addr, "ListStateMachines", json!({}), None).await;
    assert_eq!(status, 403);
    assert_eq!(v["__type"], "MissingAuthenticationTokenException");
    let (status, v) = call_with(s.addr, "ListStateMachines", json!({}), Some("Bearer wrong")).await;
    assert_eq!(status, 400);
    assert_eq!(v["__type"], "UnrecognizedClientException");
    let (status, _) = call_with(
        s.addr,
        "ListStateMachines",
        json!({}),
        Some("Bearer secret-token"),
    )
    .await;
    assert_eq!(status, 200);
    // a real SigV4 signature over the request, as the AWS SDKs compute it
    let keys = Tokens::from_keys(&[("AKIDWEFT", "the-secret")]);
    let s2 = start(Some(keys)).await;
    let signed = |secret: &str, date: &str, body: &str| {
        let host = s2.addr.to_string();
        let headers = vec![
            (
                "content-type".to_string(),
                "application/x-amz-json-1.0".to_string(),
            ),
            ("host".to_string(), host.clone()),
            ("x-amz-date".to_string(), date.to_string()),
            (
                "x-amz-target".to_string(),
                "AWSStepFunctions.ListStateMachines".to_string(),
            ),
        ];
        let scope = format!("{}/us-east-1/states/aws4_request", &date[..8]);
        let payload = {
            use sha2::Digest;
            sha2::Sha256::digest(body.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        };
        let sig = weft_server::auth::sign(
            secret,
            "POST",
            "/",
            "",
            &headers,
            &["content-type", "host", "x-amz-date", "x-amz-target"],
            &payload,
            date,
            &scope,
        );
        format!("AWS4-HMAC-SHA256 Credential=AKIDWEFT/{scope}, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature={sig}")
    };
    let now = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    let send = |auth: String, date: String, body: &'static str| {
        let addr = s2.addr;
        async move {
            let (st, _, b) = common::request(
                addr,
                "POST",
                "/",
                &[
                    ("X-Amz-Date", &date),
                    ("X-Amz-Target", "AWSStepFunctions.ListStateMachines"),
                    ("Content-Type", "application/x-amz-json-1.0"),
                    ("Authorization", &auth),
                ],
                body,
            )
            .await;
            (st, serde_json::from_str::<Value>(&b).unwrap_or(Value::Null))
        }
    };
    let (st, v) = send(signed("the-secret", &now, "{}"), now.clone(), "{}").await;
    assert_eq!(st, 200, "{v}");
    // wrong secret, tampered body, stale date, unknown key
    let (st, v) = send(signed("not-the-secret", &now, "{}"), now.clone(), "{}").await;
    assert_eq!(
        (st, v["__type"].as_str()),
        (403, Some("InvalidSignatureException"))
    );
    let (st, v) = send(signed("the-secret", &now, "{}"), now.clone(), "{ }").await;
    assert_eq!(
        (st, v["__type"].as_str()),
        (403, Some("InvalidSignatureException"))
    );
    let old = "20200101T000000Z".to_string();
    let (st, v) = send(signed("the-secret", &old, "{}"), old.clone(), "{}").await;
    assert_eq!(
        (st, v["__type"].as_str()),
        (403, Some("InvalidSignatureException"))
    );
    assert!(v["message"].as_str().unwrap().contains("expired"));
    let (st, v) = send(
        signed("the-secret", &now, "{}").replace("AKIDWEFT", "AKIAOTHER"),
        now.clone(),
        "{}",
    )
    .await;
    assert_eq!(
        (st, v["__type"].as_str()),
        (400, Some("UnrecognizedClientException"))
    );
    // Bearer with the secret (the web UI's login)
    let (st, _, _) = common::request(
        s2.addr,
        "POST",
        "/",
        &[
            ("X-Amz-Target", "AWSStepFunctions.ListStateMachines"),
            ("Content-Type", "application/x-amz-json-1.0"),
            ("Authorization", "Bearer the-secret"),
        ],
        "{}",
    )
    .await;
    assert_eq!(st, 200);
}

#[test]
fn credentials_file_is_created_once() {
    let home = tempfile::tempdir().unwrap();
    let (t1, created) = Tokens::load_or_create(home.path()).unwrap();
    assert!(created && t1.0.len() == 1);
    let text = std::fs::read_to_string(home.path().join("credentials")).unwrap();
    assert!(text.contains("[default]") && text.contains("aws_secret_access_key"));
    let (t2, created) = Tokens::load_or_create(home.path()).unwrap();
    assert!(!created);
    assert_eq!(
        t1.0.keys().collect::<Vec<_>>(),
        t2.0.keys().collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_restart_and_resumes_interrupted_runs() {
    let home = tempfile::tempdir().unwrap();
    {
        let store = Arc::new(weft_store::Store::open(home.path()).unwrap());
        let app = AppState::new(store.clone(), None).unwrap();
        let v = weft_server::api::dispatch(
            &app,
            "CreateStateMachine",
            json!({"name": "keep", "definition": PASS}),
        )
        .await
        .unwrap();
        assert_eq!(v["stateMachineArn"], sm_arn("keep"));
        let v = weft_server::api::dispatch(
            &app,
            "StartSyncExecution",
            json!({"stateMachineArn": sm_arn("keep")}),
        )
        .await;
        assert_eq!(v.unwrap_err().kind, "StateMachineTypeNotSupported");
        // an execution a crash left RUNNING
        let rec = ExecutionRecord {
            arn: exec_arn("keep", "crashed"),
            state_machine_arn: sm_arn("keep"),
            state_machine_name: "keep".into(),
            name: "crashed".into(),
            status: "RUNNING".into(),
            start_ms: 1,
            stop_ms: None,
            input: r#"{"x":7}"#.into(),
            output: None,
            error: None,
            cause: None,
            trace_header: None,
            definition: None,
            role_arn: None,
            redrive_count: 0,
            redrive_ms: None,
            parent: None,
            parent_wants_json: false,
            version_arn: None,
            alias_arn: None,
            test_case: None,
            mocks: None,
        };
        let tree = store.db().open_tree("sfn_executions").unwrap();
        tree.insert(rec.arn.as_bytes(), serde_json::to_vec(&rec).unwrap())
            .unwrap();
        store.flush().unwrap();
    }
    let store = Arc::new(weft_store::Store::open(home.path()).unwrap());
    let app = AppState::new(store, None).unwrap();
    let d = weft_server::api::dispatch(
        &app,
        "DescribeStateMachine",
        json!({"stateMachineArn": sm_arn("keep")}),
    )
    .await
    .unwrap();
    assert_eq!(d["definition"], PASS);
    // the execution a crash left RUNNING is resumed (here: run from its input) and finishes
    let mut e = Value::Null;
    for _ in 0..500 {
        e = weft_server::api::dispatch(
            &app,
            "DescribeExecution",
            json!({"executionArn": exec_arn("keep", "crashed")}),
        )
        .await
        .unwrap();
        if e["status"] != "RUNNING" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(e["status"], "SUCCEEDED", "{e}");
    assert_eq!(e["output"], r#"{"got":7}"#);
    let h = weft_server::api::dispatch(
        &app,
        "GetExecutionHistory",
        json!({"executionArn": exec_arn("keep", "crashed")}),
    )
    .await
    .unwrap();
    assert_eq!(h["events"][0]["type"], "ExecutionStarted");
    let last = h["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["type"], "ExecutionSucceeded");
}

#[test]
fn no_auth_only_on_loopback() {
    let home = tempfile::tempdir().unwrap();
    let code = weft_server::run("0.0.0.0:0", true, home.path()).unwrap();
    assert_eq!(code, std::process::ExitCode::from(2));
    assert!(weft_server::run("not an address", true, home.path()).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_body_and_concurrency_limit() {
    let s = start_with(None, 2).await;
    let huge = format!("{{\"name\":\"{}\"}}", "x".repeat(2 << 20));
    let (status, _, body) = raw(
        s.addr,
        &[("X-Amz-Target", "AWSStepFunctions.CreateStateMachine")],
        &huge,
    )
    .await;
    assert_eq!(status, 413);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["__type"],
        "ValidationException"
    );

    let def = r#"{"StartAt":"W","States":{"W":{"Type":"Wait","Seconds":30,"End":true}}}"#;
    let sm = create(&s, "slow", def, "STANDARD").await;
    ok(
        &s,
        "StartExecution",
        json!({"stateMachineArn": sm, "name": "a"}),
    )
    .await;
    ok(
        &s,
        "StartExecution",
        json!({"stateMachineArn": sm, "name": "b"}),
    )
    .await;
    // waiting executions hold no worker: more than the limit of 2 wait at once
    for n in ["c", "d", "e"] {
        ok(
            &s,
            "StartExecution",
            json!({"stateMachineArn": sm, "name": n}),
        )
        .await;
    }
    // an idempotent repeat is answered
    ok(
        &s,
        "StartExecution",
        json!({"stateMachineArn": sm, "name": "a"}),
    )
    .await;
    // the same name with another input is refused
    let (t, _) = err(
        &s,
        "StartExecution",
        json!({"stateMachineArn": sm, "name": "a", "input": "{\"other\":1}"}),
    )
    .await;
    assert_eq!(t, "ExecutionAlreadyExists");
    for n in ["a", "b", "c", "d", "e"] {
        ok(
            &s,
            "StopExecution",
            json!({"executionArn": exec_arn("slow", n)}),
        )
        .await;
        let d = ok(
            &s,
            "DescribeExecution",
            json!({"executionArn": exec_arn("slow", n)}),
        )
        .await;
        assert_eq!(d["status"], "ABORTED");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_same_name_starts_one_execution() {
    let s = start(None).await;
    // it waits a second, so every duplicate start arrives while it runs
    let def = r#"{"StartAt":"W","States":{"W":{"Type":"Wait","Seconds":1,"Next":"A"},
        "A":{"Type":"Pass","Parameters":{"got.$":"$.x"},"End":true}}}"#;
    let sm = create(&s, "flow", def, "STANDARD").await;
    let addr = s.addr;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let sm = sm.clone();
        tasks.push(tokio::spawn(async move {
            call_with(
                addr,
                "StartExecution",
                json!({"stateMachineArn": sm, "name": "once", "input": "{\"x\":1}"}),
                None,
            )
            .await
        }));
    }
    let mut arns = std::collections::HashSet::new();
    for t in tasks {
        let (status, v) = t.await.unwrap();
        assert_eq!(status, 200, "{v}");
        arns.insert((
            v["executionArn"].as_str().unwrap().to_string(),
            v["startDate"].to_string(),
        ));
    }
    assert_eq!(arns.len(), 1);
    let d = wait_done(&s, &exec_arn("flow", "once")).await;
    assert_eq!(d["status"], "SUCCEEDED");
    let h = ok(
        &s,
        "GetExecutionHistory",
        json!({"executionArn": exec_arn("flow", "once")}),
    )
    .await;
    // the Wait suspended the run and the resumed replay recorded every event exactly once
    let types: Vec<&str> = h["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "ExecutionStarted",
            "WaitStateEntered",
            "WaitStateExited",
            "PassStateEntered",
            "PassStateExited",
            "ExecutionSucceeded"
        ]
    );
    let ids: Vec<u64> = h["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [1, 2, 3, 4, 5, 6]);
}

const CALLBACK: &str = r#"{"StartAt":"Ask","States":{"Ask":{"Type":"Task",
  "Resource":"arn:aws:states:::sqs:sendMessage.waitForTaskToken",
  "Parameters":{"QueueUrl":"q","MessageBody":{"token.$":"$$.Task.Token"}},
  "HeartbeatSeconds":HB,"End":true}}}"#;

/// The task token, as an external worker would find it (the TaskScheduled parameters).
async fn token_of(s: &Server, arn: &str) -> String {
    for _ in 0..200 {
        let h = ok(s, "GetExecutionHistory", json!({"executionArn": arn})).await;
        for e in h["events"].as_array().unwrap() {
            if e["type"] == "TaskScheduled" {
                let p: Value = serde_json::from_str(
                    e["taskScheduledEventDetails"]["parameters"]
                        .as_str()
                        .unwrap(),
                )
                .unwrap();
                return p["MessageBody"]["token"].as_str().unwrap().to_string();
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no TaskScheduled event for {arn}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_for_task_token_callbacks() {
    let s = start(None).await;
    let sm = create(&s, "cb", &CALLBACK.replace("HB", "1"), "STANDARD").await;

    // success, with heartbeats keeping it alive past HeartbeatSeconds
    let e = ok(
        &s,
        "StartExecution",
        json!({"stateMachineArn": sm, "name": "ok"}),
    )
    .await;
    let arn = e["executionArn"].as_str().unwrap().to_string();
    let token = token_of(&s, &arn).await;
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        ok(&s, "SendTaskHeartbeat", json!({"taskToken": token})).await;
    }
    let (t, _) = err(
        &s,
        "SendTaskSuccess",
        json!({"taskToken": token, "output": "{nope"}),
    )
    .await;
    assert_eq!(t, "InvalidOutput");
    ok(
        &s,
        "SendTaskSuccess",
        json!({"taskToken": token, "output": "{\"answer\": 42}"}),
    )
    .await;
    let d = wait_done(&s, &arn).await;
    assert_eq!(d["status"], "SUCCEEDED", "{d}");
    assert_eq!(
        serde_json::from_str::<Value>(d["output"].as_str().unwrap()).unwrap(),
        json!({"answer": 42})
    );
    let (t, _) = err(
        &s,
        "SendTaskSuccess",
        json!({"taskToken": token, "output": "{}"}),
    )
    .await;
    assert_eq!(t, "TaskDoesNotExist");

    // a stopped execution's token can no longer be answered
    let e = ok(
        &s,
        "StartExecution",
        json!({"stateMachineArn": sm, "name": "stopped"}),
    )
    .await;
    let arn = e["executionArn"].as_str().unwrap().to_string();
    let token = token_of(&s, &arn).await;
    ok(&s, "StopExecution", json!({"executionArn": arn})).await;
    let (t, _) = err(
        &s,
        "SendTaskSuccess",
        json!({"taskToken": token, "output": "{}"}),
    )
    .await;
    assert_eq!(t, "TaskDoesNotExist");

    // failure
    let e = ok(
        &s,
        "StartExecution",
        json!({"stateMachineArn": sm, "name": "bad"}),
    )
    .await;
    let arn = e["executionArn"].as_str().unwrap().to_string();
    let token = token_of(&s, &arn).await;
    ok(
        &s,
        "SendTaskFailure",
        json!({"taskToken": token, "error": "Worker.Failed", "cause": "disk full"}),
    )
    .await;
    let d = wait_done(&s, &arn).await;
    assert_eq!(d["status"], "FAILED");
    assert_eq!(d["error"], "Worker.Failed");
    assert_eq!(d["cause"], "disk full");

    // no heartbeat: States.HeartbeatTimeout
    let e = ok(
        &s,
        "StartExecution",
        json!({"stateMachineArn": sm, "name": "silent"}),
    )
    .await;
    let d = wait_done(&s, e["executionArn"].as_str().unwrap()).await;
    assert_eq!(d["error"], "States.HeartbeatTimeout");

    let (t, _) = err(&s, "SendTaskHeartbeat", json!({"taskToken": "unknown"})).await;
    assert_eq!(t, "TaskDoesNotExist");
    let (t, _) = err(&s, "SendTaskSuccess", json!({"output": "{}"})).await;
    assert_eq!(t, "ValidationException");
}

/// Not a timed test: prints StartSyncExecution/s over HTTP (one connection per request).
/// `cargo test --release -p weft-server --test api -- --ignored --nocapture bench_sync_express`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn bench_sync_express() {
    let s = start(None).await;
    let def = r#"{"StartAt":"A","States":{"A":{"Type":"Pass","Next":"B"},"B":{"Type":"Choice","Choices":[{"Variable":"$.x","NumericEquals":1,"Next":"C"}],"Default":"C"},"C":{"Type":"Succeed"}}}"#;
    let sm = create(&s, "bench", def, "EXPRESS").await;
    let (clients, per_client) = (8, 500);
    let t0 = std::time::Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (addr, sm) = (s.addr, sm.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..per_client {
                let (status, _) = call_with(
                    addr,
                    "StartSyncExecution",
                    json!({"stateMachineArn": sm, "input": "{\"x\":1}"}),
                    None,
                )
                .await;
                assert_eq!(status, 200);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let n = clients * per_client;
    let secs = t0.elapsed().as_secs_f64();
    println!("StartSyncExecution over HTTP: {n} executions in {secs:.2} s = {:.0}/s ({clients} clients, connection per request)", n as f64 / secs);
}

/// Polls until `arn` shows a TaskScheduled event whose parameters carry a token at `pointer`.
/// True once a task waits for `token` (a heartbeat is accepted), within 2 s.
async fn is_waited_for(s: &Server, token: &str) -> bool {
    for _ in 0..100 {
        let (status, _) = call(s, "SendTaskHeartbeat", json!({"taskToken": token})).await;
        if status == 200 {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

async fn token_at(s: &Server, arn: &str, nth: usize) -> String {
    for _ in 0..200 {
        let h = ok(s, "GetExecutionHistory", json!({"executionArn": arn})).await;
        let toks: Vec<String> = h["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["type"] == "TaskScheduled")
            .filter_map(|e| {
                let p: Value =
                    serde_json::from_str(e["taskScheduledEventDetails"]["parameters"].as_str()?)
                        .ok()?;
                p["MessageBody"]["token"].as_str().map(str::to_string)
            })
            .collect();
        if let Some(t) = toks.get(nth) {
            return t.clone();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no token #{nth} for {arn}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activities_workers_and_heartbeat_timeouts() {
    let s = start(None).await;
    let a = ok(&s, "CreateActivity", json!({"name": "resize"})).await;
    let act = a["activityArn"].as_str().unwrap().to_string();
    assert_eq!(act, "arn:aws:states:us-east-1:000000000000:activity:resize");
    // idempotent create; describe; list
    assert_eq!(
        ok(&s, "CreateActivity", json!({"name": "resize"})).await["activityArn"],
        act
    );
    assert_eq!(
        ok(&s, "DescribeActivity", json!({"activityArn": act})).await["name"],
        "resize"
    );
    let l = ok(&s, "ListActivities", json!({})).await;
    assert_eq!(l["activities"].as_array().unwrap().len(), 1);
    let (t, _) = err(
        &s,
        "DescribeActivity",
        json!({"activityArn": act.replace("resize", "nope")}),
    )
    .await;
    assert_eq!(t, "ActivityDoesNotExist");

    let def = format!(
        r#"{{"StartAt":"Work","States":{{"Work":{{"Type":"Task","Resource":"{act}","TimeoutSeconds":30,"HeartbeatSeconds":HB,"End":true}}}}}}"#
    );
    let sm = create(&s, "act", &def.replace("HB", "20"), "STANDARD").await;
    let e = ok(
        &s,
        "StartExecution",
        json!({"stateMachineArn": sm, "name": "one", "input": "{\"w\":3}"}),
    )
    .await;
    let arn = e["executionArn"].as_str().unwrap().to_string();
    // a worker long-polls and gets the task with its input
    let task = ok(
        &s,
        "GetActivityTask",
        json!({"activityArn": act, "workerName": "w1"}),
    )
    .await;
    let token = task["taskToken"].as_str().unwrap().to_string();
    assert_eq!(
        serde_json::from_str::<Value>(task["input"].as_str().unwrap()).unwrap(),
        json!({"w": 3})
    );
    ok(&s, "SendTaskHeartbeat", json!({"taskToken": token})).await;
    ok(
        &s,
        "SendTaskSuccess",
        json!({"taskToken": token, "output": "{\"done\":true}"}),
    )
    .await;
    let d = wait_done(&s, &arn).await;
    assert_eq!(d["status"], "SUCCEEDED", "{d}");
    assert_eq!(d["output"], "{\"done\":true}");

    // a worker that takes the task and goes silent: States.HeartbeatTimeout
    let sm2 = create(&s, "act-hb", &def.replace("HB", "1"), "STANDARD").await;
    let e = ok(
        &s,
        "StartExecution",
        json!({"stateMachineArn": sm2, "name": "silent"}),
    )
    .await;
    let arn = e["executionArn"].as_str().unwrap().to_string();
    let task = ok(
        &s,
        "GetActivityTask",
        json!({"activityArn": act, "workerName": "w2"}),
    )
    .await;
    assert!(task["taskToken"].is_string());
    let mut d = Value::Null;
    for _ in 0..150 {
        d = ok(&s, "DescribeExecution", json!({"executionArn": arn})).await;
        if d["status"] != "RUNNING" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(d["status"], "FAILED", "{d}");
    assert_eq!(d["error"], "States.HeartbeatTimeout");
    // the late answer is refused
    let (t, _) = err(
        &s,
        "SendTaskSuccess",
        json!({"taskToken": task["taskToken"], "output": "{}"}),
    )
    .await;
    assert_eq!(t, "TaskDoesNotExist");
    // a task for an activity that does not exist fails the state
    let bad = def
        .replace("HB", "5")
        .replace("activity:resize", "activity:ghost");
    let sm3 = create(&s, "act-ghost", &bad, "STANDARD").await;
    let e = ok(&s, "StartExecution", json!({"stateMachineArn": sm3})).await;
    let d = wait_done(&s, e["executionArn"].as_str().unwrap()).await;
    assert_eq!(d["status"], "FAILED");
    assert!(d["cause"].as_str().unwrap().contains("ghost"), "{d}");
    ok(&s, "DeleteActivity", json!({"activityArn": act})).await;
    assert!(ok(&s, "ListActivities", json!({})).await["activities"]
        .as_array()
        .unwrap()
        .is_empty());
}

const TWO_CALLBACKS: &str = r#"{"StartAt":"A","States":{
  "A":{"Type":"Task","Resource":"arn:aws:states:::sqs:sendMessage.waitForTaskToken",
       "Parameters":{"QueueUrl":"q","MessageBody":{"token.$":"$$.Task.Token"}},"ResultPath":"$.a","Next":"B"},
  "B":{"Type":"Task","Resource":"arn:aws:states:::sqs:sendMessage.waitForTaskToken",
       "Parameters":{"QueueUrl":"q","MessageBody":{"token.$":"$$.Task.Token"}},"ResultPath":"$.b","End":true}}}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redrive_reruns_only_what_failed() {
    let s = start(None).await;
    let sm = create(&s, "redrive", TWO_CALLBACKS, "STANDARD").await;
    let e = ok(
        &s,
        "StartExecution",
        json!({"stateMachineArn": sm, "name": "r1"}),
    )
    .await;
    let arn = e["executionArn"].as_str().unwrap().to_string();
    let (t, _) = err(&s, "RedriveExecution", json!({"executionArn": arn})).await;
    assert_eq!(t, "ExecutionNotRedrivable");
    let ta = token_at(&s, &arn, 0).await;
    ok(
        &s,
        "SendTaskSuccess",
        json!({"taskToken": ta, "output": "1"}),
    )
    .await;
    let tb = token_at(&s, &arn, 1).await;
    ok(
        &s,
        "SendTaskFailure",
        json!({"taskToken": tb, "error": "Disk.Full", "cause": "no space"}),
    )
    .await;
    let d = wait_done(&s, &arn).await;
    assert_eq!(
        (d["status"].as_str(), d["error"].as_str()),
        (Some("FAILED"), Some("Disk.Full"))
    );
    assert_eq!(d["redriveStatus"], "REDRIVABLE");

    let r = ok(&s, "RedriveExecution", json!({"executionArn": arn})).await;
    assert!(r["redriveDate"].is_number());
    // B waits again, for a new token (the failed run's is void); A is not asked again
    let tb2 = token_at(&s, &arn, 2).await;
    assert_ne!(tb2, tb);
    assert!(
        is_waited_for(&s, &tb2).await,
        "the redriven task does not wait for its token"
    );
    for old in [&ta, &tb] {
        let (t, _) = err(
            &s,
            "SendTaskSuccess",
            json!({"taskToken": old, "output": "9"}),
        )
        .await;
        assert_eq!(t, "TaskDoesNotExist");
    }
    ok(
        &s,
        "SendTaskSuccess",
        json!({"taskToken": tb2, "output": "2"}),
    )
    .await;
    let d = wait_done(&s, &arn).await;
    assert_eq!(d["status"], "SUCCEEDED", "{d}");
    assert_eq!(
        serde_json::from_str::<Value>(d["output"].as_str().unwrap()).unwrap(),
        json!({"a": 1, "b": 2})
    );
    assert_eq!(d["redriveCount"], 1);
    let h = ok(&s, "GetExecutionHistory", json!({"executionArn": arn})).await;
    let types: Vec<&str> = h["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert!(
        types.contains(&"ExecutionFailed") && types.contains(&"ExecutionRedriven"),
        "{types:?}"
    );
    assert_eq!(types.last(), Some(&"ExecutionSucceeded"));
    assert_eq!(
        types.iter().filter(|t| **t == "ExecutionStarted").count(),
        1
    );
    let ids: Vec<u64> = h["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, (1..=ids.len() as u64).collect::<Vec<_>>());
    let count = |ty: &str| types.iter().filter(|t| **t == ty).count();
    // A once; B in the failed run and again in the redriven one (which suspended for its
    // token and was replayed when the answer came)
    assert_eq!(count("TaskStateEntered"), 3, "{types:?}");
    assert_eq!(count("TaskScheduled"), 3, "{types:?}");
    assert_eq!(count("TaskSucceeded"), 2, "{types:?}");
    assert_eq!(count("TaskFailed"), 1, "{types:?}");
    let (t, _) = err(&s, "RedriveExecution", json!({"executionArn": arn})).await;
    assert_eq!(t, "ExecutionNotRedrivable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_sync_executions() {
    let s = start(None).await;
    // the parent's role (`r`, as `create` names it) must allow starting the child
    std::fs::create_dir_all(s.home().join("roles")).unwrap();
    std::fs::write(
        s.home().join("roles/r.json"),
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Action": "states:StartExecution", "Resource": sm_arn("child")}]})
        .to_string(),
    )
    .unwrap();
    let child = create(
        &s,
        "child",
        r#"{"StartAt":"C","States":{"C":{"Type":"Pass","Parameters":{"doubled.$":"States.MathAdd($.v, $.v)"},"End":true}}}"#,
        "STANDARD",
    )
    .await;
    let parent = format!(
        r#"{{"StartAt":"Aws","States":{{
          "Aws":{{"Type":"Task","Resource":"arn:aws:states:::states:startExecution.sync:2",
                 "Parameters":{{"StateMachineArn":"{child}","Input":{{"v.$":"$.v"}}}},
                 "ResultSelector":{{"out.$":"$.Output","status.$":"$.Status"}},"ResultPath":"$.aws","Next":"Weft"}},
          "Weft":{{"Type":"Task","Resource":"weft:statemachine:child.sync",
                 "Parameters":{{"v":5}},"ResultSelector":{{"out.$":"$.Output"}},"ResultPath":"$.weft","Next":"Bad"}},
          "Bad":{{"Type":"Task","Resource":"arn:aws:states:::states:startExecution.sync",
                 "Parameters":{{"StateMachineArn":"{child}","Input":{{"no":"v"}}}},
                 "Catch":[{{"ErrorEquals":["States.TaskFailed"],"ResultPath":"$.err","Next":"Done"}}],"End":true}},
          "Done":{{"Type":"Pass","End":true}}}}}}"#
    );
    let sm = create(&s, "parent", &parent, "STANDARD").await;
    let e = ok(
        &s,
        "StartExecution",
        json!({"stateMachineArn": sm, "input": "{\"v\":21}"}),
    )
    .await;
    let d = wait_done(&s, e["executionArn"].as_str().unwrap()).await;
    assert_eq!(d["status"], "SUCCEEDED", "{d}");
    let out: Value = serde_json::from_str(d["output"].as_str().unwrap()).unwrap();
    assert_eq!(
        out["aws"],
        json!({"out": {"doubled": 42}, "status": "SUCCEEDED"})
    );
    // `.sync` (not :2) gives the output as a string
    assert_eq!(out["weft"], json!({"out": "{\"doubled\":10}"}));
    assert_eq!(out["err"]["Error"], "States.TaskFailed");
    let cause: Value = serde_json::from_str(out["err"]["Cause"].as_str().unwrap()).unwrap();
    assert_eq!(cause["Status"], "FAILED");
    // the children are executions of their own, linked to the parent
    let l = ok(&s, "ListExecutions", json!({"stateMachineArn": child})).await;
    let kids = l["executions"].as_array().unwrap();
    assert_eq!(kids.len(), 3);
    let kd = ok(
        &s,
        "DescribeExecution",
        json!({"executionArn": kids[0]["executionArn"]}),
    )
    .await;
    assert_eq!(kd["parentExecutionArn"], e["executionArn"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_and_weighted_aliases_pin_definitions() {
    let s = start(None).await;
    let def = |tag: &str| {
        format!(
            r#"{{"StartAt":"P","States":{{"P":{{"Type":"Pass","Result":"{tag}","End":true}}}}}}"#
        )
    };
    let c = ok(
        &s,
        "CreateStateMachine",
        json!({"name": "pinned", "definition": def("v1"), "publish": true}),
    )
    .await;
    let sm = c["stateMachineArn"].as_str().unwrap().to_string();
    assert_eq!(c["stateMachineVersionArn"], format!("{sm}:1"));
    // publishing an unchanged definition returns the same version
    let p = ok(
        &s,
        "PublishStateMachineVersion",
        json!({"stateMachineArn": sm}),
    )
    .await;
    assert_eq!(p["stateMachineVersionArn"], format!("{sm}:1"));
    let u = ok(
        &s,
        "UpdateStateMachine",
        json!({"stateMachineArn": sm, "definition": def("v2"), "publish": true}),
    )
    .await;
    assert_eq!(u["stateMachineVersionArn"], format!("{sm}:2"));
    let l = ok(
        &s,
        "ListStateMachineVersions",
        json!({"stateMachineArn": sm}),
    )
    .await;
    let arns: Vec<&str> = l["stateMachineVersions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["stateMachineVersionArn"].as_str().unwrap())
        .collect();
    assert_eq!(arns, [format!("{sm}:2"), format!("{sm}:1")]);
    let d = ok(
        &s,
        "DescribeStateMachine",
        json!({"stateMachineArn": format!("{sm}:1")}),
    )
    .await;
    assert_eq!(d["definition"], def("v1"));

    let a = ok(
        &s,
        "CreateStateMachineAlias",
        json!({"name": "prod", "routingConfiguration": [{"stateMachineVersionArn": format!("{sm}:1"), "weight": 100}]}),
    )
    .await;
    let alias = a["stateMachineAliasArn"].as_str().unwrap().to_string();
    assert_eq!(alias, format!("{sm}:prod"));
    let run = |target: String, name: String| {
        let s = &s;
        async move {
            let e = ok(
                s,
                "StartExecution",
                json!({"stateMachineArn": target, "name": name}),
            )
            .await;
            wait_done(s, e["executionArn"].as_str().unwrap()).await
        }
    };
    let d = run(alias.clone(), "via-alias".into()).await;
    assert_eq!(d["output"], "\"v1\"");
    assert_eq!(d["stateMachineVersionArn"], format!("{sm}:1"));
    assert_eq!(d["stateMachineAliasArn"], alias);
    assert_eq!(run(sm.clone(), "latest".into()).await["output"], "\"v2\"");
    assert_eq!(
        run(format!("{sm}:1"), "v1".into()).await["output"],
        "\"v1\""
    );
    // a version an alias routes to cannot be deleted
    let (t, _) = err(
        &s,
        "DeleteStateMachineVersion",
        json!({"stateMachineVersionArn": format!("{sm}:1")}),
    )
    .await;
    assert_eq!(t, "ConflictException");
    // weights must add up to 100; 50/50 routes to both
    let (t, _) = err(
        &s,
        "UpdateStateMachineAlias",
        json!({"stateMachineAliasArn": alias, "routingConfiguration": [{"stateMachineVersionArn": format!("{sm}:1"), "weight": 60}]}),
    )
    .await;
    assert_eq!(t, "ValidationException");
    ok(
        &s,
        "UpdateStateMachineAlias",
        json!({"stateMachineAliasArn": alias, "routingConfiguration": [
            {"stateMachineVersionArn": format!("{sm}:1"), "weight": 50},
            {"stateMachineVersionArn": format!("{sm}:2"), "weight": 50}]}),
    )
    .await;
    let mut seen = std::collections::HashSet::new();
    for i in 0..40 {
        let d = run(alias.clone(), format!("w{i}")).await;
        seen.insert(d["output"].as_str().unwrap().to_string());
    }
    assert_eq!(seen.len(), 2, "{seen:?}");
    let da = ok(
        &s,
        "DescribeStateMachineAlias",
        json!({"stateMachineAliasArn": alias}),
    )
    .await;
    assert_eq!(da["routingConfiguration"].as_array().unwrap().len(), 2);
    ok(
        &s,
        "DeleteStateMachineAlias",
        json!({"stateMachineAliasArn": alias}),
    )
    .await;
    ok(
        &s,
        "DeleteStateMachineVersion",
        json!({"stateMachineVersionArn": format!("{sm}:1")}),
    )
    .await;
    let (t, _) = err(
        &s,
        "StartExecution",
        json!({"stateMachineArn": format!("{sm}:1")}),
    )
    .await;
    assert_eq!(t, "ResourceNotFound");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn express_logging_levels_and_async_start() {
    let s = start(None).await;
    let fail =
        r#"{"StartAt":"F","States":{"F":{"Type":"Fail","Error":"Bad.Thing","Cause":"nope"}}}"#;
    let mk = |name: &str, def: &str, level: &str| {
        json!({"name": name, "definition": def, "type": "EXPRESS",
               "loggingConfiguration": {"level": level, "includeExecutionData": false}})
    };
    let all =
        ok(&s, "CreateStateMachine", mk("x-all", PASS, "ALL")).await["stateMachineArn"].clone();
    let err_ok = ok(&s, "CreateStateMachine", mk("x-err-ok", PASS, "ERROR")).await
        ["stateMachineArn"]
        .clone();
    let err_bad = ok(&s, "CreateStateMachine", mk("x-err-bad", fail, "ERROR")).await
        ["stateMachineArn"]
        .clone();
    let off =
        ok(&s, "CreateStateMachine", mk("x-off", fail, "OFF")).await["stateMachineArn"].clone();
    for sm in [&all, &err_ok, &err_bad, &off] {
        ok(
            &s,
            "StartSyncExecution",
            json!({"stateMachineArn": sm, "input": "{\"x\":1}"}),
        )
        .await;
    }
    // asynchronous StartExecution of an EXPRESS machine answers at once with an express ARN
    let a = ok(
        &s,
        "StartExecution",
        json!({"stateMachineArn": all, "input": "{\"x\":2}"}),
    )
    .await;
    assert!(
        a["executionArn"]
            .as_str()
            .unwrap()
            .contains(":express:x-all:"),
        "{a}"
    );
    let logs = |sm: &str| {
        let addr = s.addr;
        let sm = sm.to_string();
        async move {
            let (st, _, body) = common::request(
                addr,
                "GET",
                &format!("/v1/express/logs?stateMachine={sm}"),
                &[],
                "",
            )
            .await;
            assert_eq!(st, 200, "{body}");
            let v: Value = serde_json::from_str(&body).unwrap();
            v["records"].as_array().unwrap().clone()
        }
    };
    let mut all_logs = Vec::new();
    for _ in 0..100 {
        all_logs = logs("x-all").await;
        if all_logs
            .iter()
            .filter(|r| r["event"]["type"] == "ExecutionSucceeded")
            .count()
            == 2
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let types: Vec<&str> = all_logs
        .iter()
        .map(|r| r["event"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types.iter().filter(|t| **t == "ExecutionSucceeded").count(),
        2,
        "{types:?}"
    );
    assert!(types.contains(&"PassStateEntered"));
    // includeExecutionData: false strips inputs and outputs
    assert!(all_logs
        .iter()
        .all(|r| !r["event"].to_string().contains("\"input\"")));
    assert!(logs("x-err-ok").await.is_empty());
    let bad = logs("x-err-bad").await;
    assert!(
        !bad.is_empty()
            && bad
                .iter()
                .all(|r| r["event"]["type"].as_str().unwrap().ends_with("Failed")),
        "{bad:?}"
    );
    assert!(logs("x-off").await.is_empty());
}

/// Issue 20 item 4: a STANDARD state machine's loggingConfiguration is honoured as an EXPRESS
/// one's (level, includeExecutionData), each event is logged once even when the run suspends
/// and is replayed, and the log is read per execution.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standard_executions_honour_the_logging_configuration() {
    let s = start(None).await;
    let fail =
        r#"{"StartAt":"F","States":{"F":{"Type":"Fail","Error":"Bad.Thing","Cause":"nope"}}}"#;
    // a one-second Wait suspends the run (longer than the 250 ms threshold): the execution is
    // replayed from its start when the timer fires
    let wait = r#"{"StartAt":"A","States":{"A":{"Type":"Pass","Next":"W"},"W":{"Type":"Wait","Seconds":1,"Next":"B"},"B":{"Type":"Pass","Parameters":{"got.$":"$.x"},"End":true}}}"#;
    let mk = |name: &str, def: &str, level: &str, data: bool| {
        json!({"name": name, "definition": def, "type": "STANDARD",
               "loggingConfiguration": {"level": level, "includeExecutionData": data}})
    };
    let mut arns = Vec::new();
    for (name, def, level, data) in [
        ("s-all", wait, "ALL", true),
        ("s-fatal", fail, "FATAL", false),
        ("s-fatal-ok", PASS, "FATAL", false),
        ("s-off", fail, "OFF", true),
    ] {
        let sm = ok(&s, "CreateStateMachine", mk(name, def, level, data)).await["stateMachineArn"]
            .clone();
        let e = ok(
            &s,
            "StartExecution",
            json!({"stateMachineArn": sm, "input": "{\"x\":7}"}),
        )
        .await;
        let arn = e["executionArn"].as_str().unwrap().to_string();
        wait_done(&s, &arn).await;
        arns.push(arn);
    }
    let logs = |q: String| {
        let addr = s.addr;
        async move {
            let (st, _, body) = common::request(addr, "GET", &q, &[], "").await;
            assert_eq!(st, 200, "{body}");
            let v: Value = serde_json::from_str(&body).unwrap();
            v["records"].as_array().unwrap().clone()
        }
    };
    let of = |arn: &str| format!("/v1/logs?execution={}", percent(arn));
    let all = logs(of(&arns[0])).await;
    let types: Vec<&str> = all
        .iter()
        .map(|r| r["event"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "ExecutionStarted",
            "PassStateEntered",
            "PassStateExited",
            "WaitStateEntered",
            "WaitStateExited",
            "PassStateEntered",
            "PassStateExited",
            "ExecutionSucceeded"
        ],
        "each event once, though the run was replayed"
    );
    assert!(all.iter().all(|r| r["execution_arn"] == arns[0].as_str()));
    assert!(
        all[0]["event"].to_string().contains("\"input\""),
        "includeExecutionData"
    );
    let fatal = logs(of(&arns[1])).await;
    assert_eq!(fatal.len(), 1, "{fatal:?}");
    assert_eq!(fatal[0]["event"]["type"], "ExecutionFailed");
    assert!(!fatal[0]["event"].to_string().contains("\"input\""));
    assert!(
        logs(of(&arns[2])).await.is_empty(),
        "FATAL: a success logs nothing"
    );
    assert!(logs(of(&arns[3])).await.is_empty(), "OFF");
    // the Express route reads the same log, filtered by state machine
    let by_sm = logs("/v1/express/logs?stateMachine=s-fatal".to_string()).await;
    assert_eq!(by_sm, fatal);
}

fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_state_machine_concurrency_limit() {
    let home = tempfile::tempdir().unwrap();
    let store = Arc::new(weft_store::Store::open(home.path()).unwrap());
    let app = AppState::with_limits(store, None, 8, Some(1)).unwrap();
    let call = |action: &'static str, body: Value| {
        let app = app.clone();
        async move {
            weft_server::api::dispatch(&app, action, body)
                .await
                .unwrap()
        }
    };
    // a wait shorter than the suspension threshold (250 ms) holds its run: execution i waits
    // until 200 ms x (i + 1) after the start, so each one run after another still waits, and
    // runs let in together would overlap in their waits
    let def = r#"{"StartAt":"P","States":{"P":{"Type":"Parallel","End":true,
        "Branches":[{"StartAt":"W","States":{"W":{"Type":"Wait","TimestampPath":"$.until","End":true}}}]}}}"#;
    let sm = call(
        "CreateStateMachine",
        json!({"name": "one-at-a-time", "definition": def}),
    )
    .await["stateMachineArn"]
        .clone();
    let mut arns = Vec::new();
    let t0 = chrono::Utc::now();
    for i in 0..3 {
        let until = (t0 + chrono::Duration::milliseconds(200 * (i + 1)))
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let e = call(
            "StartExecution",
            json!({"stateMachineArn": sm, "name": format!("e{i}"),
                   "input": json!({"until": until}).to_string()}),
        )
        .await;
        arns.push(e["executionArn"].as_str().unwrap().to_string());
    }
    let mut spans = Vec::new();
    for arn in &arns {
        let mut d = Value::Null;
        for _ in 0..400 {
            d = call("DescribeExecution", json!({"executionArn": arn})).await;
            if d["status"] != "RUNNING" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert_eq!(d["status"], "SUCCEEDED", "{d}");
        let h = call("GetExecutionHistory", json!({"executionArn": arn})).await;
        let at = |ty: &str| {
            h["events"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["type"] == ty)
                .unwrap()["timestamp"]
                .as_f64()
                .unwrap()
        };
        spans.push((at("ParallelStateEntered"), at("ParallelStateExited")));
    }
    spans.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
    for w in spans.windows(2) {
        assert!(
            w[1].0 >= w[0].1,
            "runs of one state machine overlapped: {spans:?}"
        );
    }
}

/// Waits inside Map and Parallel suspend the run like top-level ones: with a single worker, a
/// second execution finishes while the first sleeps in its iterations; the first then ends with
/// the right output, each event recorded once, and `MaxConcurrency` held across the suspension.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waits_inside_map_and_parallel_release_the_worker() {
    let home = tempfile::tempdir().unwrap();
    let store = Arc::new(weft_store::Store::open(home.path()).unwrap());
    let app = AppState::with_limits(store, None, 1, None).unwrap();
    let call = |action: &'static str, body: Value| {
        let app = app.clone();
        async move {
            weft_server::api::dispatch(&app, action, body)
                .await
                .unwrap()
        }
    };
    let create = |name: &'static str, def: &'static str| async move {
        call(
            "CreateStateMachine",
            json!({"name": name, "definition": def}),
        )
        .await["stateMachineArn"]
            .clone()
    };
    let sleepy = create(
        "sleepy",
        r#"{"StartAt":"Fan","States":{"Fan":{"Type":"Parallel","End":true,"Branches":[
          {"StartAt":"M","States":{"M":{"Type":"Map","MaxConcurrency":1,"End":true,
            "ItemProcessor":{"StartAt":"W","States":{
              "W":{"Type":"Wait","Seconds":1,"Next":"Twice"},
              "Twice":{"Type":"Pass","Parameters":{"v.$":"States.MathAdd($.n, $.n)"},"End":true}}}}}},
          {"StartAt":"W2","States":{"W2":{"Type":"Wait","Seconds":1,"End":true}}}]}}}"#,
    )
    .await;
    let quick = create(
        "quick",
        r#"{"StartAt":"P","States":{"P":{"Type":"Pass","End":true}}}"#,
    )
    .await;
    let a = call(
        "StartExecution",
        json!({"stateMachineArn": sleepy, "name": "a",
               "input": json!([{"n": 1}, {"n": 2}]).to_string()}),
    )
    .await["executionArn"]
        .clone();
    let describe = |arn: Value| async move {
        let mut d = Value::Null;
        for _ in 0..400 {
            d = call("DescribeExecution", json!({"executionArn": arn})).await;
            if d["status"] != "RUNNING" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        d
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let b = call(
        "StartExecution",
        json!({"stateMachineArn": quick, "name": "b"}),
    )
    .await["executionArn"]
        .clone();
    let db = describe(b).await;
    assert_eq!(db["status"], "SUCCEEDED", "{db}");
    let da = call("DescribeExecution", json!({"executionArn": a})).await;
    assert_eq!(
        da["status"], "RUNNING",
        "the second execution ran while the first slept in its Map and Parallel"
    );
    let da = describe(a.clone()).await;
    assert_eq!(da["status"], "SUCCEEDED", "{da}");
    let out: Value = serde_json::from_str(da["output"].as_str().unwrap()).unwrap();
    assert_eq!(out, json!([[{"v": 2}, {"v": 4}], [{"n": 1}, {"n": 2}]]));
    let h = call(
        "GetExecutionHistory",
        json!({"executionArn": a, "maxResults": 1000}),
    )
    .await;
    let events = h["events"].as_array().unwrap();
    let count = |ty: &str| events.iter().filter(|e| e["type"] == ty).count();
    assert_eq!(count("MapIterationStarted"), 2, "{h}");
    assert_eq!(count("MapIterationSucceeded"), 2, "{h}");
    assert_eq!(count("WaitStateEntered"), 3, "{h}");
    assert_eq!(count("WaitStateExited"), 3, "{h}");
    assert_eq!(count("ParallelStateEntered"), 1, "{h}");
    assert_eq!(count("ExecutionSucceeded"), 1, "{h}");
    let ids: Vec<u64> = events.iter().map(|e| e["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, (1..=ids.len() as u64).collect::<Vec<_>>());
    // MaxConcurrency 1: the second iteration started after the first one ended
    let at = |ty: &str, index: u64| {
        events
            .iter()
            .find(|e| {
                e["type"] == ty
                    && (e["mapIterationStartedEventDetails"]["index"] == index
                        || e["mapIterationSucceededEventDetails"]["index"] == index)
            })
            .unwrap_or_else(|| panic!("no {ty} {index}: {h}"))["timestamp"]
            .as_f64()
            .unwrap()
    };
    assert!(
        at("MapIterationStarted", 1) >= at("MapIterationSucceeded", 0),
        "iterations overlapped: {h}"
    );
}

/// A run that suspends in a Wait is replayed from its input when the timer fires: the random
/// draws before the Wait (States.UUID, States.MathRandom, JSONata $uuid) come out the same, so
/// the history records each state once and the output is what the first run computed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_draw_the_same_random_values() {
    let s = start(None).await;
    let def = json!({
        "StartAt": "Draw",
        "States": {
            "Draw": {"Type": "Pass", "Parameters": {
                "id.$": "States.UUID()", "n.$": "States.MathRandom(0, 1000000000)"}, "Next": "J"},
            "J": {"Type": "Pass", "QueryLanguage": "JSONata",
                  "Output": "{% $merge([$states.input, {'j': $uuid()}]) %}", "Next": "W"},
            "W": {"Type": "Wait", "Seconds": 1, "Next": "Again"},
            "Again": {"Type": "Pass", "Parameters": {"id2.$": "States.UUID()", "first.$": "$"}, "End": true}
        }
    })
    .to_string();
    let sm = create(&s, "draws", &def, "STANDARD").await;
    let mut outputs = Vec::new();
    for name in ["d1", "d2"] {
        let e = ok(
            &s,
            "StartExecution",
            json!({"stateMachineArn": sm, "name": name}),
        )
        .await;
        let arn = e["executionArn"].as_str().unwrap().to_string();
        let d = wait_done(&s, &arn).await;
        assert_eq!(d["status"], "SUCCEEDED", "{d}");
        let out: Value = serde_json::from_str(d["output"].as_str().unwrap()).unwrap();
        let h = ok(
            &s,
            "GetExecutionHistory",
            json!({"executionArn": arn, "maxResults": 1000}),
        )
        .await;
        let events = h["events"].as_array().unwrap();
        let exits: Vec<&Value> = events
            .iter()
            .filter(|e| e["type"] == "PassStateExited")
            .collect();
        assert_eq!(exits.len(), 3, "each Pass state exits once: {events:?}");
        let recorded: Value = serde_json::from_str(
            exits[1]["stateExitedEventDetails"]["output"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            out["first"], recorded,
            "the replay drew what the first run recorded"
        );
        let id = out["first"]["id"].as_str().unwrap();
        assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 4);
        assert_ne!(out["first"]["id"], out["first"]["j"]);
        assert_ne!(out["first"]["id"], out["id2"]);
        outputs.push(out);
    }
    assert_ne!(
        outputs[0]["first"]["id"], outputs[1]["first"]["id"],
        "executions draw differently"
    );
}

/// The state machine's TimeoutSeconds ends an execution that waits for a callback (its token
/// is void from then on), and a redrive gives the redriven run the whole timeout again and the
/// redriven attempt a new token; the history records each token once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timed_out_executions_redrive_with_a_fresh_timeout() {
    let s = start(None).await;
    let def = r#"{"StartAt":"A","TimeoutSeconds":1,"States":{
      "A":{"Type":"Task","Resource":"arn:aws:states:::sqs:sendMessage.waitForTaskToken",
           "Parameters":{"QueueUrl":"q","MessageBody":{"token.$":"$$.Task.Token"}},"End":true}}}"#;
    let sm = create(&s, "sm-timeout", def, "STANDARD").await;
    let e = ok(
        &s,
        "StartExecution",
        json!({"stateMachineArn": sm, "name": "t1"}),
    )
    .await;
    let arn = e["executionArn"].as_str().unwrap().to_string();
    let token = token_at(&s, &arn, 0).await;
    let d = wait_done(&s, &arn).await;
    assert_eq!(d["status"], "TIMED_OUT", "{d}");
    let (ty, _) = err(
        &s,
        "SendTaskSuccess",
        json!({"taskToken": token, "output": "{}"}),
    )
    .await;
    assert_eq!(
        ty, "TaskDoesNotExist",
        "nobody waits for the token of a timed-out execution"
    );
    ok(&s, "RedriveExecution", json!({"executionArn": arn})).await;
    // the redriven attempt waits again, for a new token, with a new second to go
    let token2 = token_at(&s, &arn, 1).await;
    assert_ne!(token2, token, "a redriven attempt gets a new token");
    assert!(
        is_waited_for(&s, &token2).await,
        "the redriven task does not wait for its token"
    );
    let (ty, _) = err(
        &s,
        "SendTaskSuccess",
        json!({"taskToken": token, "output": "{}"}),
    )
    .await;
    assert_eq!(ty, "TaskDoesNotExist", "the first run's token stays void");
    ok(
        &s,
        "SendTaskSuccess",
        json!({"taskToken": token2, "output": "{\"ok\":1}"}),
    )
    .await;
    let d = wait_done(&s, &arn).await;
    assert_eq!(d["status"], "SUCCEEDED", "{d}");
    assert_eq!(d["redriveCount"], 1);
    let h = ok(&s, "GetExecutionHistory", json!({"executionArn": arn})).await;
    let scheduled = h["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "TaskScheduled")
        .count();
    assert_eq!(scheduled, 2, "one TaskScheduled per run: {h}");
}

/// CreateStateMachine and UpdateStateMachine name the operators a definition needs that are
/// not installed (a set-up mistake, not a task failure to retry), beside AWS's members.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_a_machine_whose_operators_are_missing_warns() {
    let s = start(None).await;
    let def = r#"{"StartAt":"A","States":{
        "A":{"Type":"Task","Resource":"weft:plugin:not-installed-here","Next":"B"},
        "B":{"Type":"Task","Resource":"arn:aws:lambda:us-east-1:123456789012:function:score","End":true}}}"#;
    let v = ok(
        &s,
        "CreateStateMachine",
        json!({"name": "needs-ops", "definition": def}),
    )
    .await;
    let w = v["warnings"].as_array().expect("warnings").clone();
    assert_eq!(w.len(), 2, "{v}");
    assert!(
        w[0].as_str()
            .unwrap()
            .starts_with("/States/A/Resource: warning: operator `not-installed-here`"),
        "{v}"
    );
    assert!(
        w[1].as_str()
            .unwrap()
            .contains("Lambda.ResourceNotFoundException"),
        "{v}"
    );
    // a definition without operators has nothing to say
    let v = ok(
        &s,
        "UpdateStateMachine",
        json!({"stateMachineArn": sm_arn("needs-ops"), "definition": PASS}),
    )
    .await;
    assert!(v.get("warnings").is_none(), "{v}");
    let v = ok(
        &s,
        "CreateStateMachine",
        json!({"name": "no-ops", "definition": PASS}),
    )
    .await;
    assert!(v.get("warnings").is_none(), "{v}");
}
