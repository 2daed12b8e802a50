//! Resource maps on `weft server`, over real HTTP: `$WEFT_HOME/resource-map.yaml` and a state
//! machine's own map (`/v1/state-machines/NAME/resource-map`) serve AWS service integrations
//! with installed plugins; a `.waitForTaskToken` integration runs its plugin and is completed
//! by SendTaskSuccess; unmapped integrations are reported by ValidateStateMachineDefinition
//! and CreateStateMachine and fail a run with `Weft.IntegrationNotMapped`. The attacker's side:
//! a principal without `states:UpdateStateMachine` cannot set a map, a hostile map body is
//! refused with its line, and a deleted state machine's map does not pass to its successor.
//!
//! A `.sync` job in `start_poll` mode is kept in the execution's journal: started once, polled
//! on timers.
//!
//! Needs the built `echo` and `job-sim` guests (`make guests`, or `WEFT_PLUGINS_DIR`).

use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use weft_server::auth::{Principal, Tokens};

mod common;

const READER: &str = r#"{"Statement": [{"Effect": "Allow",
    "Action": ["states:Describe*", "states:List*", "states:CreateStateMachine", "iam:PassRole"], "Resource": "*"}]}"#;

fn tokens() -> Tokens {
    let p = |name: &str, policy: Option<&str>| {
        (
            name.to_uppercase(),
            Principal {
                name: name.into(),
                access_key_id: name.to_uppercase(),
                secret: format!("{name}-secret"),
                policy: policy.map(|p| Arc::new(weft_sandbox::Policy::parse(p).unwrap())),
            },
        )
    };
    Tokens(HashMap::from([p("admin", None), p("reader", Some(READER))]))
}

struct Srv {
    addr: std::net::SocketAddr,
    task: tokio::task::JoinHandle<()>,
    _home: tempfile::TempDir,
}

impl Drop for Srv {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn plugins_dir() -> PathBuf {
    std::env::var_os("WEFT_PLUGINS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/plugins"))
}

/// A server whose home maps `sns:*` to `echo` and whose role `r` allows SNS and DynamoDB.
async fn start() -> Srv {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join("resource-map.yaml"),
        "sns:*: {plugin: echo}\n",
    )
    .unwrap();
    std::fs::create_dir_all(home.path().join("roles")).unwrap();
    std::fs::write(
        home.path().join("roles/r.json"),
        json!({"Statement": [{"Effect": "Allow", "Resource": "*",
            "Action": ["sns:Publish", "dynamodb:PutItem", "glue:StartJobRun"]}]})
        .to_string(),
    )
    .unwrap();
    let store = Arc::new(weft_store::Store::open(home.path()).unwrap());
    for p in ["echo.wasm", "job-sim.wasm"] {
        weft_plugins::install_path(
            &store.plugin_store(),
            &plugins_dir().join(p),
            &weft_plugins::InstallOptions { force: true },
        )
        .unwrap();
    }
    let state = weft_server::AppState::with_limit(store, Some(tokens()), 10).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        weft_server::serve(listener, state).await.unwrap();
    });
    Srv {
        addr,
        task,
        _home: home,
    }
}

async fn v1(s: &Srv, who: &str, method: &str, path: &str, body: &str) -> (u16, Value) {
    let auth = format!("Bearer {who}-secret");
    let mut hs = vec![("Authorization", auth.as_str())];
    if method != "GET" {
        hs.push(("Content-Type", "application/json"));
    }
    let (status, _, text) = common::request(s.addr, method, path, &hs, body).await;
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn sfn(s: &Srv, who: &str, action: &str, body: Value) -> (u16, Value) {
    let target = format!("AWSStepFunctions.{action}");
    let auth = format!("Bearer {who}-secret");
    let (status, _, text) = common::request(
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
    (status, serde_json::from_str(&text).unwrap())
}

async fn ok(s: &Srv, action: &str, body: Value) -> Value {
    let (status, v) = sfn(s, "admin", action, body).await;
    assert_eq!(status, 200, "{action}: {v}");
    v
}

async fn wait_done(s: &Srv, arn: &str) -> Value {
    for _ in 0..1000 {
        let d = ok(s, "DescribeExecution", json!({"executionArn": arn})).await;
        if d["status"] != "RUNNING" {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{arn} did not finish");
}

const ROLE: &str = "arn:aws:iam::000000000000:role/r";

/// Save (DynamoDB, mapped by the state machine's own map) then Ask (SNS with a callback,
/// mapped by the home map).
/// The execution's task logs (`GET /v1/executions/ARN/tasks`), read as the admin.
async fn task_logs(s: &Srv, exec: &str) -> Value {
    let path = format!("/v1/executions/{}/tasks", exec.replace(':', "%3A"));
    v1(s, "admin", "GET", &path, "").await.1
}

fn orders() -> String {
    json!({"StartAt": "Save", "States": {
        "Save": {"Type": "Task", "Resource": "arn:aws:states:::dynamodb:putItem",
                 "Parameters": {"TableName": "Orders", "Item": {"id": {"S.$": "$.id"}}},
                 "ResultPath": "$.saved", "Next": "Ask"},
        "Ask": {"Type": "Task", "Resource": "arn:aws:states:::sns:publish.waitForTaskToken",
                "Parameters": {"TopicArn": "arn:aws:sns:us-east-1:123456789012:approvals",
                               "Message": {"token.$": "$$.Task.Token"}},
                "TimeoutSeconds": 600, "ResultPath": "$.answer", "End": true}}})
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integrations_run_on_mapped_plugins_and_callbacks_complete_them() {
    let s = start().await;
    // validation names the unmapped integration and the entry that would serve it
    let v = ok(
        &s,
        "ValidateStateMachineDefinition",
        json!({"definition": orders()}),
    )
    .await;
    assert_eq!(v["result"], "FAIL", "{v}");
    assert_eq!(v["diagnostics"][0]["code"], "INTEGRATION_NOT_MAPPED", "{v}");
    assert_eq!(
        v["diagnostics"][0]["location"], "/States/Save/Resource",
        "{v}"
    );
    assert!(
        v["diagnostics"][0]["message"]
            .as_str()
            .unwrap()
            .contains("dynamodb:putItem: {plugin: <plugin>}"),
        "{v}"
    );
    let created = ok(
        &s,
        "CreateStateMachine",
        json!({"name": "orders", "definition": orders(), "roleArn": ROLE}),
    )
    .await;
    let arn = created["stateMachineArn"].as_str().unwrap().to_string();
    let w = created["warnings"].as_array().expect("warnings").clone();
    assert_eq!(w.len(), 1, "{created}");
    assert!(
        w[0].as_str()
            .unwrap()
            .starts_with("/States/Save/Resource: warning: the integration dynamodb:putItem"),
        "{created}"
    );
    // without a map for Save, a run fails at once with the named error
    let e = ok(
        &s,
        "StartExecution",
        json!({"stateMachineArn": arn, "input": "{\"id\":\"o-1\"}"}),
    )
    .await;
    let d = wait_done(&s, e["executionArn"].as_str().unwrap()).await;
    assert_eq!(d["status"], "FAILED", "{d}");
    assert_eq!(d["error"], "Weft.IntegrationNotMapped", "{d}");
    assert!(
        d["cause"]
            .as_str()
            .unwrap()
            .contains("dynamodb:putItem: {plugin: <plugin>}"),
        "{d}"
    );

    // the state machine's own map
    let path = "/v1/state-machines/orders/resource-map";
    let (status, v) = v1(
        &s,
        "admin",
        "PUT",
        path,
        r#"{"dynamodb:putItem": {"plugin": "echo"}}"#,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["unmapped"], json!([]), "{v}");
    let (status, v) = v1(&s, "reader", "GET", path, "").await;
    assert_eq!(
        (status, &v["resourceMap"]),
        (200, &json!({"dynamodb:putItem": {"plugin": "echo"}})),
        "{v}"
    );

    let e = ok(
        &s,
        "StartExecution",
        json!({"stateMachineArn": arn, "input": "{\"id\":\"o-2\"}"}),
    )
    .await;
    let exec = e["executionArn"].as_str().unwrap().to_string();
    // Ask's plugin ran and the execution waits for its token
    let tokens_path = format!("/v1/executions/{}/tokens", exec.replace(':', "%3A"));
    let mut token = String::new();
    for _ in 0..1000 {
        let (_, v) = v1(&s, "admin", "GET", &tokens_path, "").await;
        if let Some(t) = v["tokens"][0]["taskToken"].as_str() {
            assert_eq!(v["tokens"][0]["state"], "Ask", "{v}");
            token = t.to_string();
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !token.is_empty(),
        "the execution never waited for its callback"
    );
    // (the token answers from the moment the plugin is called: its log follows when it returns)
    let mut logs = String::new();
    for _ in 0..1000 {
        logs = task_logs(&s, &exec).await.to_string();
        if logs.contains("\"Ask\"") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(logs.contains("\"Ask\"") && logs.contains("echo"), "{logs}");
    ok(
        &s,
        "SendTaskSuccess",
        json!({"taskToken": token, "output": "{\"approved\":true}"}),
    )
    .await;
    let d = wait_done(&s, &exec).await;
    assert_eq!(d["status"], "SUCCEEDED", "{d}");
    let out: Value = serde_json::from_str(d["output"].as_str().unwrap()).unwrap();
    assert_eq!(out["answer"], json!({"approved": true}), "{out}");
    assert_eq!(out["saved"]["integration"], "dynamodb:putItem", "{out}");
    // the execution role's decisions on the integrations are in the audit log
    let (_, audit) = v1(
        &s,
        "admin",
        "GET",
        "/v1/audit?filter=dynamodb%3APutItem",
        "",
    )
    .await;
    let records = audit["records"].as_array().cloned().unwrap_or_default();
    assert!(
        records
            .iter()
            .any(|r| r["resource"] == "arn:aws:states:::dynamodb:putItem" && r["outcome"] == "ok"),
        "{audit}"
    );
    assert_eq!(
        out["saved"]["request"],
        json!({"TableName": "Orders", "Item": {"id": {"S": "o-2"}}})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_updaters_set_maps_and_hostile_maps_are_refused() {
    let s = start().await;
    ok(
        &s,
        "CreateStateMachine",
        json!({"name": "orders", "definition": orders(), "roleArn": ROLE}),
    )
    .await;
    let path = "/v1/state-machines/orders/resource-map";
    // a principal without states:UpdateStateMachine cannot set or delete the map
    let (status, v) = v1(
        &s,
        "reader",
        "PUT",
        path,
        r#"{"dynamodb:putItem": {"plugin": "evil"}}"#,
    )
    .await;
    assert_eq!(status, 403, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("UpdateStateMachine"),
        "{v}"
    );
    let (status, _) = v1(&s, "reader", "DELETE", path, "").await;
    assert_eq!(status, 403);
    let (_, v) = v1(&s, "admin", "GET", path, "").await;
    assert_eq!(v["resourceMap"], json!({}), "{v}");
    // hostile bodies: a built-in shadowed, a traversal in a plugin name, a short digest, deep
    // nesting, unknown fields; each refused with its line
    for (body, why) in [
        (
            "{\n\"http:invoke\": {\"plugin\": \"echo\"}}",
            "request body:2",
        ),
        (
            r#"{"sns:publish": {"plugin": "../../bin/sh"}}"#,
            "plugin name",
        ),
        (r#"{"sns:publish": {"plugin": "echo#abcd1234"}}"#, "64 hex"),
        (
            r#"{"sns:publish": {"plugin": "echo", "grant": "*"}}"#,
            "unknown field",
        ),
        (
            &format!(
                "{{\"sns:publish\": {}1{}}}",
                "[".repeat(5000),
                "]".repeat(5000)
            ),
            "not a valid map",
        ),
    ] {
        let (status, v) = v1(&s, "admin", "PUT", path, body).await;
        assert_eq!(status, 400, "{body:.80}: {v}");
        assert!(
            v["message"].as_str().unwrap().contains(why),
            "{body:.80}: {v}"
        );
    }
    // unknown state machine, bad name
    let (status, _) = v1(
        &s,
        "admin",
        "PUT",
        "/v1/state-machines/nope/resource-map",
        "{}",
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = v1(
        &s,
        "admin",
        "GET",
        "/v1/state-machines/a%2F..%2Fb/resource-map",
        "",
    )
    .await;
    assert_eq!(status, 400);
    // a deleted state machine's map does not pass to a new one of the same name
    let (status, _) = v1(
        &s,
        "admin",
        "PUT",
        path,
        r#"{"dynamodb:putItem": {"plugin": "echo"}}"#,
    )
    .await;
    assert_eq!(status, 200);
    let arn = weft_server::records::sm_arn("orders");
    ok(&s, "DeleteStateMachine", json!({"stateMachineArn": arn})).await;
    let (status, v) = sfn(
        &s,
        "reader",
        "CreateStateMachine",
        json!({"name": "orders", "definition": orders(), "roleArn": ROLE}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let (_, v) = v1(&s, "admin", "GET", path, "").await;
    assert_eq!(v["resourceMap"], json!({}), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_job_is_started_once_and_polled_until_done() {
    let s = start().await;
    let def = |params: Value| {
        json!({"StartAt": "Job", "States": {"Job": {"Type": "Task",
            "Resource": "arn:aws:states:::glue:startJobRun.sync", "Parameters": params,
            "TimeoutSeconds": 600, "End": true}}})
        .to_string()
    };
    let arn = ok(
        &s,
        "CreateStateMachine",
        json!({"name": "nightly", "definition": def(json!({"JobName": "n", "PollsUntilDone": 3})), "roleArn": ROLE}),
    )
    .await["stateMachineArn"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, v) = v1(
        &s,
        "admin",
        "PUT",
        "/v1/state-machines/nightly/resource-map",
        r#"{"glue:startJobRun.sync": {"plugin": "job-sim", "mode": "start_poll", "poll_action": "getJobRun", "poll_interval": 0.05}}"#,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let e = ok(&s, "StartExecution", json!({"stateMachineArn": arn})).await;
    let exec = e["executionArn"].as_str().unwrap().to_string();
    let d = wait_done(&s, &exec).await;
    assert_eq!(d["status"], "SUCCEEDED", "{d}");
    let out: Value = serde_json::from_str(d["output"].as_str().unwrap()).unwrap();
    assert_eq!(
        out,
        json!({"JobRunId": "jr_n", "JobRunState": "SUCCEEDED", "Polls": 3})
    );
    // one start call and three polls, each a plugin call of its own in the task logs
    let logs = task_logs(&s, &exec).await;
    let calls = logs.to_string().matches("\"job-sim@").count();
    assert_eq!(calls, 4, "{logs}");
    // a failed job fails the state with the job's error
    ok(
        &s,
        "UpdateStateMachine",
        json!({"stateMachineArn": arn, "definition": def(json!({"JobName": "bad", "Fail": true, "PollsUntilDone": 1}))}),
    )
    .await;
    let e = ok(&s, "StartExecution", json!({"stateMachineArn": arn})).await;
    let d = wait_done(&s, e["executionArn"].as_str().unwrap()).await;
    assert_eq!(
        (d["status"].as_str(), d["error"].as_str()),
        (Some("FAILED"), Some("Glue.JobRunFailed")),
        "{d}"
    );
}
