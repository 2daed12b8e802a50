//! `StartExecution` / `StartSyncExecution` on Step Functions Local's `ARN#TestCase`, over real
//! HTTP with authentication on: the test case runs with its mocks, and the `#` suffix never
//! changes what is authorised: a principal allowed `dev-*` cannot reach `prod` through
//! `prod#x`, `dev-x#../prod`, `%23` or a request field of its own.

use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;
use weft_asl::mock::MockConfig;
use weft_server::auth::Tokens;

mod common;

use common::{principal, sfn_call as call, sfn_ok as ok, start_with_mocks, Server};

const ADMIN: &str = "admin-secret";
const DEV: &str = "dev-secret";
const BASE: &str = "arn:aws:states:us-east-1:000000000000:stateMachine";

fn tokens() -> Tokens {
    let dev = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "states:*", "Resource": [
            "arn:aws:states:*:*:stateMachine:dev-*",
            "arn:aws:states:*:*:execution:dev-*"]},
        {"Effect": "Allow", "Action": "iam:PassRole", "Resource": "weft:role:dev-*"}
    ]});
    Tokens(HashMap::from([
        principal("admin", ADMIN, None),
        principal("dev", DEV, Some(dev)),
    ]))
}

async fn wait_status(s: &Server, arn: &str) -> Value {
    for _ in 0..800 {
        let v = ok(s, ADMIN, "DescribeExecution", json!({"executionArn": arn})).await;
        if v["status"] != "RUNNING" {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{arn} still running");
}

/// One mocked Task: `{"who": NAME}` from the mock, through ResultSelector.
fn task_def() -> String {
    json!({"StartAt": "Work", "States": {"Work": {"Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke", "Parameters": {"FunctionName": "work"},
        "OutputPath": "$.Payload", "End": true}}})
    .to_string()
}

fn mocks() -> MockConfig {
    MockConfig::parse(
        &json!({
            "StateMachines": {
                "dev-flow": {"TestCases": {"Happy": {"Work": "DevOk"}, "Boom": {"Work": "Fails"}}},
                "dev-x": {"TestCases": {"Happy": {"Work": "DevOk"}}},
                "prod": {"TestCases": {"x": {"Work": "ProdOk"}, "Happy": {"Work": "ProdOk"}}},
                "dev-express": {"TestCases": {"Happy": {"Work": "DevOk"}}}
            },
            "MockedResponses": {
                "DevOk": {"0": {"Return": {"StatusCode": 200, "Payload": {"who": "dev"}}}},
                "ProdOk": {"0": {"Return": {"StatusCode": 200, "Payload": {"who": "prod"}}}},
                "Fails": {"0": {"Throw": {"Error": "Custom.Boom", "Cause": "mocked"}}}
            }
        })
        .to_string(),
    )
    .unwrap()
}

async fn setup(s: &Server) {
    std::fs::create_dir_all(s.home().join("roles")).unwrap();
    std::fs::write(
        s.home().join("roles/dev-r.json"),
        json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "*", "Resource": "*"}]})
        .to_string(),
    )
    .unwrap();
    for name in ["dev-flow", "dev-x", "prod"] {
        ok(
            s,
            ADMIN,
            "CreateStateMachine",
            json!({"name": name, "definition": task_def(), "roleArn": "weft:role:dev-r"}),
        )
        .await;
    }
    ok(
        s,
        ADMIN,
        "CreateStateMachine",
        json!({"name": "dev-express", "definition": task_def(), "type": "EXPRESS", "roleArn": "weft:role:dev-r"}),
    )
    .await;
}

async fn prod_executions(s: &Server) -> usize {
    ok(
        s,
        ADMIN,
        "ListExecutions",
        json!({"stateMachineArn": format!("{BASE}:prod")}),
    )
    .await["executions"]
        .as_array()
        .unwrap()
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_case_runs_with_its_mocks() {
    let s = start_with_mocks(Some(tokens()), Some(mocks())).await;
    setup(&s).await;
    let e = ok(
        &s,
        DEV,
        "StartExecution",
        json!({"stateMachineArn": format!("{BASE}:dev-flow#Happy"), "name": "dev-one"}),
    )
    .await;
    let arn = e["executionArn"].as_str().unwrap();
    assert_eq!(
        arn,
        "arn:aws:states:us-east-1:000000000000:execution:dev-flow:dev-one"
    );
    let d = wait_status(&s, arn).await;
    assert_eq!(d["status"], "SUCCEEDED", "{d}");
    assert_eq!(d["output"], json!({"who": "dev"}).to_string());
    assert_eq!(d["stateMachineArn"], format!("{BASE}:dev-flow"));
    // Throw fails the execution with the mocked error
    let e = ok(
        &s,
        DEV,
        "StartExecution",
        json!({"stateMachineArn": format!("{BASE}:dev-flow#Boom")}),
    )
    .await;
    let d = wait_status(&s, e["executionArn"].as_str().unwrap()).await;
    assert_eq!(d["status"], "FAILED");
    assert_eq!(d["error"], "Custom.Boom");
    // the same name again with another test case is another execution
    let (st, v) = call(
        &s,
        DEV,
        "StartExecution",
        json!({"stateMachineArn": format!("{BASE}:dev-flow#Boom"), "name": "dev-one"}),
    )
    .await;
    assert_eq!(st, 400, "{v}");
    assert_eq!(v["__type"], "ExecutionAlreadyExists");
    // StartSyncExecution on an EXPRESS machine
    let v = ok(
        &s,
        DEV,
        "StartSyncExecution",
        json!({"stateMachineArn": format!("{BASE}:dev-express#Happy")}),
    )
    .await;
    assert_eq!(v["status"], "SUCCEEDED", "{v}");
    assert_eq!(v["output"], json!({"who": "dev"}).to_string());
    assert_eq!(v["stateMachineArn"], format!("{BASE}:dev-express"));
    // an unknown test case names itself
    let (st, v) = call(
        &s,
        DEV,
        "StartExecution",
        json!({"stateMachineArn": format!("{BASE}:dev-flow#Sad")}),
    )
    .await;
    assert_eq!(st, 400);
    assert_eq!(v["__type"], "ValidationException");
    assert!(v["message"].as_str().unwrap().contains("'Sad'"), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_suffix_never_widens_what_a_principal_reaches() {
    let s = start_with_mocks(Some(tokens()), Some(mocks())).await;
    setup(&s).await;
    let attempts = [
        format!("{BASE}:prod#x"),
        format!("{BASE}:prod#Happy"),
        format!("{BASE}:dev-x#../prod"),
        format!("{BASE}:dev-x#/../../prod"),
        format!("{BASE}:dev-x%23prod"),
        format!("{BASE}:prod%23dev-x"),
        format!("{BASE}:dev-x#x#{BASE}:prod"),
        format!("{BASE}:dev-x#Happy:prod"),
        format!("{BASE}:prod:1#Happy"),
        format!("{BASE}:prod#"),
        format!("{BASE}:#prod"),
        format!("{BASE}:dev-x#\u{0}prod"),
        format!("{BASE}:dev-x#{}", "A".repeat(5000)),
    ];
    for arn in &attempts {
        for action in ["StartExecution", "StartSyncExecution"] {
            let (st, v) = call(&s, DEV, action, json!({"stateMachineArn": arn})).await;
            assert_ne!(st, 200, "{action} {arn}: {v}");
            let kind = v["__type"].as_str().unwrap_or("");
            assert!(
                matches!(
                    kind,
                    "AccessDeniedException"
                        | "InvalidArn"
                        | "ValidationException"
                        | "StateMachineTypeNotSupported"
                ),
                "{action} {arn}: {v}"
            );
        }
    }
    // the test case travels only from the ARN: a field of the caller's is dropped
    let e = ok(
        &s,
        DEV,
        "StartExecution",
        json!({"stateMachineArn": format!("{BASE}:dev-x"), "weft:testCase": "Happy"}),
    )
    .await;
    let d = wait_status(&s, e["executionArn"].as_str().unwrap()).await;
    assert_eq!(d["status"], "FAILED", "the real (missing) plugin ran: {d}");
    assert_eq!(prod_executions(&s).await, 0);
    // the audit log records the canonical ARN, never the suffix
    let (_, v) = call(
        &s,
        ADMIN,
        "StartExecution",
        json!({"stateMachineArn": format!("{BASE}:prod#x")}),
    )
    .await;
    assert!(v["executionArn"].is_string(), "{v}");
    let mut n = 0;
    for rec in weft_server::audit::query(&s.state.audit, usize::MAX, None).unwrap() {
        let text = rec.to_string();
        if text.contains("StartExecution") {
            n += 1;
            assert!(!text.contains('#'), "{text}");
        }
    }
    assert!(n > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_mock_configuration_the_suffix_is_an_error() {
    let s = start_with_mocks(Some(tokens()), None).await;
    setup(&s).await;
    let (st, v) = call(
        &s,
        DEV,
        "StartExecution",
        json!({"stateMachineArn": format!("{BASE}:dev-flow#Happy")}),
    )
    .await;
    assert_eq!(st, 400, "{v}");
    assert_eq!(v["__type"], "ValidationException");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("no mock configuration"),
        "{v}"
    );
}
