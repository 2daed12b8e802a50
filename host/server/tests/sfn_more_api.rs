//! ValidateStateMachineDefinition, TestState, DescribeStateMachineForExecution and the tag
//! actions over real HTTP, with AWS's shapes, and the attacker's side of each: a principal
//! allowed only some ARNs is refused the others (and the field that was checked is the one
//! acted on), TestState passes its role.

use serde_json::{json, Value};
use std::collections::HashMap;
use weft_server::auth::Tokens;

mod common;

use common::{principal, sfn_call as call, sfn_ok as ok, start_with, Server};

const ADMIN: &str = "admin-secret";
const DEV: &str = "dev-secret";

/// admin: everything. dev: `dev-*` state machines, executions and activities, TestState and
/// ValidateStateMachineDefinition, PassRole of `dev-*` roles only.
fn tokens() -> Tokens {
    let dev = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "states:*", "Resource": [
            "arn:aws:states:*:*:stateMachine:dev-*",
            "arn:aws:states:*:*:execution:dev-*",
            "arn:aws:states:*:*:activity:dev-*"]},
        {"Effect": "Allow", "Action": ["states:TestState", "states:ValidateStateMachineDefinition"], "Resource": "*"},
        {"Effect": "Allow", "Action": "iam:PassRole", "Resource": "weft:role:dev-*"}
    ]});
    Tokens(HashMap::from([
        principal("admin", ADMIN, None),
        principal("dev", DEV, Some(dev)),
    ]))
}

async fn fails(s: &Server, who: &str, action: &str, body: Value) -> String {
    let (st, v) = call(s, who, action, body.clone()).await;
    assert_ne!(st, 200, "{action} as {who} with {body} succeeded: {v}");
    v["__type"].as_str().unwrap_or("").to_string()
}

const PASS: &str = r#"{"StartAt":"A","States":{"A":{"Type":"Pass","End":true}}}"#;

fn sm(name: &str) -> String {
    format!("arn:aws:states:us-east-1:000000000000:stateMachine:{name}")
}

fn tags_of(v: &Value) -> Vec<(String, String)> {
    let mut t: Vec<(String, String)> = v["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["key"].as_str().unwrap().to_string(),
                t["value"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    t.sort();
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_of_state_machines_and_activities() {
    let s = start_with(Some(tokens()), 100).await;
    ok(
        &s,
        ADMIN,
        "CreateStateMachine",
        json!({"name": "dev-a", "definition": PASS,
        "tags": [{"key": "team", "value": "data"}]}),
    )
    .await;
    let act = ok(
        &s,
        ADMIN,
        "CreateActivity",
        json!({"name": "dev-act",
        "tags": [{"key": "k", "value": "v"}]}),
    )
    .await["activityArn"]
        .as_str()
        .unwrap()
        .to_string();
    let a = sm("dev-a");
    let listed = ok(&s, ADMIN, "ListTagsForResource", json!({"resourceArn": a})).await;
    assert_eq!(tags_of(&listed), [("team".into(), "data".into())]);
    ok(
        &s,
        ADMIN,
        "TagResource",
        json!({"resourceArn": a,
        "tags": [{"key": "team", "value": "ml"}, {"key": "env", "value": "dev"}]}),
    )
    .await;
    let listed = ok(&s, ADMIN, "ListTagsForResource", json!({"resourceArn": a})).await;
    assert_eq!(
        tags_of(&listed),
        [("env".into(), "dev".into()), ("team".into(), "ml".into())]
    );
    ok(
        &s,
        ADMIN,
        "UntagResource",
        json!({"resourceArn": a, "tagKeys": ["env"]}),
    )
    .await;
    let listed = ok(&s, ADMIN, "ListTagsForResource", json!({"resourceArn": a})).await;
    assert_eq!(tags_of(&listed), [("team".into(), "ml".into())]);
    let listed = ok(
        &s,
        ADMIN,
        "ListTagsForResource",
        json!({"resourceArn": act}),
    )
    .await;
    assert_eq!(tags_of(&listed), [("k".into(), "v".into())]);

    // AWS's limits
    let many: Vec<Value> = (0..51)
        .map(|i| json!({"key": format!("k{i}"), "value": ""}))
        .collect();
    assert_eq!(
        fails(
            &s,
            ADMIN,
            "TagResource",
            json!({"resourceArn": a, "tags": many})
        )
        .await,
        "TooManyTags"
    );
    let fifty: Vec<Value> = (0..50)
        .map(|i| json!({"key": format!("k{i}"), "value": ""}))
        .collect();
    // 50 new keys beside the one it has: 51
    assert_eq!(
        fails(
            &s,
            ADMIN,
            "TagResource",
            json!({"resourceArn": a, "tags": fifty})
        )
        .await,
        "TooManyTags"
    );
    let long_key = "k".repeat(129);
    assert_eq!(
        fails(
            &s,
            ADMIN,
            "TagResource",
            json!({"resourceArn": a, "tags": [{"key": long_key, "value": ""}]})
        )
        .await,
        "ValidationException"
    );
    let long_value = "v".repeat(257);
    assert_eq!(
        fails(
            &s,
            ADMIN,
            "TagResource",
            json!({"resourceArn": a, "tags": [{"key": "k", "value": long_value}]})
        )
        .await,
        "ValidationException"
    );
    assert_eq!(
        fails(
            &s,
            ADMIN,
            "ListTagsForResource",
            json!({"resourceArn": sm("dev-ghost")})
        )
        .await,
        "ResourceNotFound"
    );
    assert_eq!(
        fails(
            &s,
            ADMIN,
            "TagResource",
            json!({"resourceArn": format!("{a}:1"), "tags": []})
        )
        .await,
        "InvalidArn"
    );
    // deleting forgets the tags: a new state machine of that name starts without them
    ok(
        &s,
        ADMIN,
        "DeleteStateMachine",
        json!({"stateMachineArn": a}),
    )
    .await;
    ok(
        &s,
        ADMIN,
        "CreateStateMachine",
        json!({"name": "dev-a", "definition": PASS}),
    )
    .await;
    let listed = ok(&s, ADMIN, "ListTagsForResource", json!({"resourceArn": a})).await;
    assert!(tags_of(&listed).is_empty(), "{listed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tag_actions_authorize_the_resource_they_act_on() {
    let s = start_with(Some(tokens()), 100).await;
    for n in ["dev-a", "prod"] {
        ok(
            &s,
            ADMIN,
            "CreateStateMachine",
            json!({"name": n, "definition": PASS}),
        )
        .await;
    }
    ok(&s, ADMIN, "CreateActivity", json!({"name": "prod-act"})).await;
    let prod = sm("prod");
    let prod_act = "arn:aws:states:us-east-1:000000000000:activity:prod-act";
    for target in [prod.as_str(), prod_act] {
        let t = json!([{"key": "owned", "value": "yes"}]);
        assert_eq!(
            fails(
                &s,
                DEV,
                "TagResource",
                json!({"resourceArn": target, "tags": t})
            )
            .await,
            "AccessDeniedException"
        );
        assert_eq!(
            fails(
                &s,
                DEV,
                "UntagResource",
                json!({"resourceArn": target, "tagKeys": ["x"]})
            )
            .await,
            "AccessDeniedException"
        );
        assert_eq!(
            fails(
                &s,
                DEV,
                "ListTagsForResource",
                json!({"resourceArn": target})
            )
            .await,
            "AccessDeniedException"
        );
    }
    // a decoy field names an allowed resource: the one in resourceArn is what was checked
    let decoy = json!({"resourceArn": prod, "stateMachineArn": sm("dev-a"), "tags": [{"key": "x", "value": "y"}]});
    assert_eq!(
        fails(&s, DEV, "TagResource", decoy).await,
        "AccessDeniedException"
    );
    let listed = ok(
        &s,
        ADMIN,
        "ListTagsForResource",
        json!({"resourceArn": prod}),
    )
    .await;
    assert!(tags_of(&listed).is_empty(), "{listed}");
    // its own resource works
    ok(
        &s,
        DEV,
        "TagResource",
        json!({"resourceArn": sm("dev-a"), "tags": [{"key": "x", "value": "y"}]}),
    )
    .await;
    // a creator may tag only what it may create
    assert_eq!(
        fails(
            &s,
            DEV,
            "CreateStateMachine",
            json!({"name": "prod2", "definition": PASS,
            "roleArn": "weft:role:dev-r", "tags": [{"key": "x", "value": "y"}]})
        )
        .await,
        "AccessDeniedException"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_state_machine_for_execution() {
    let s = start_with(Some(tokens()), 100).await;
    for n in ["dev-a", "prod"] {
        ok(
            &s,
            ADMIN,
            "CreateStateMachine",
            json!({"name": n, "definition": PASS}),
        )
        .await;
    }
    let e = ok(
        &s,
        ADMIN,
        "StartExecution",
        json!({"stateMachineArn": sm("dev-a"), "name": "run-1"}),
    )
    .await;
    let arn = e["executionArn"].as_str().unwrap().to_string();
    // the definition the execution runs stays the one it started with
    let newer = r#"{"StartAt":"B","States":{"B":{"Type":"Pass","End":true}}}"#;
    ok(
        &s,
        ADMIN,
        "UpdateStateMachine",
        json!({"stateMachineArn": sm("dev-a"), "definition": newer}),
    )
    .await;
    let d = ok(
        &s,
        DEV,
        "DescribeStateMachineForExecution",
        json!({"executionArn": arn}),
    )
    .await;
    assert_eq!(d["definition"], PASS, "{d}");
    assert_eq!(d["stateMachineArn"], sm("dev-a"));
    assert_eq!(d["name"], "dev-a");
    assert!(
        d["roleArn"].is_string() && d["updateDate"].is_number(),
        "{d}"
    );
    assert!(
        d.get("revisionId").is_none(),
        "the revision names the newer definition: {d}"
    );

    let p = ok(
        &s,
        ADMIN,
        "StartExecution",
        json!({"stateMachineArn": sm("prod"), "name": "run-1"}),
    )
    .await;
    let parn = p["executionArn"].as_str().unwrap().to_string();
    assert_eq!(
        fails(
            &s,
            DEV,
            "DescribeStateMachineForExecution",
            json!({"executionArn": parn, "stateMachineArn": sm("dev-a")})
        )
        .await,
        "AccessDeniedException"
    );
    let ghost = arn.replace("run-1", "ghost");
    assert_eq!(
        fails(
            &s,
            ADMIN,
            "DescribeStateMachineForExecution",
            json!({"executionArn": ghost})
        )
        .await,
        "ExecutionDoesNotExist"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_answers_in_aws_diagnostics() {
    let s = start_with(Some(tokens()), 100).await;
    let v = ok(
        &s,
        DEV,
        "ValidateStateMachineDefinition",
        json!({"definition": PASS}),
    )
    .await;
    assert_eq!(
        v,
        json!({"result": "OK", "diagnostics": [], "truncated": false})
    );

    let bad = r#"{"StartAt":"A","States":{"A":{"Type":"Pass","Next":"Nowhere"},"B":{"Type":"Task","Resource":"nope:x","End":true}}}"#;
    let v = ok(
        &s,
        DEV,
        "ValidateStateMachineDefinition",
        json!({"definition": bad}),
    )
    .await;
    assert_eq!(v["result"], "FAIL", "{v}");
    let d = v["diagnostics"].as_array().unwrap();
    assert!(d.iter().all(|x| x["severity"] == "ERROR"), "{v}");
    assert!(
        d.iter()
            .any(|x| x["location"] == "/States/A/Next" && x["code"] == "SCHEMA_VALIDATION_FAILED"),
        "{v}"
    );
    assert!(
        d.iter()
            .any(|x| x["location"] == "/States/B/Resource" && x["code"] == "INVALID_RESOURCE"),
        "{v}"
    );
    let v = ok(
        &s,
        DEV,
        "ValidateStateMachineDefinition",
        json!({"definition": bad, "maxResults": 1}),
    )
    .await;
    assert_eq!(v["diagnostics"].as_array().unwrap().len(), 1);
    assert_eq!(v["truncated"], true);

    let v = ok(
        &s,
        DEV,
        "ValidateStateMachineDefinition",
        json!({"definition": "{not json"}),
    )
    .await;
    assert_eq!(
        v["diagnostics"][0]["code"], "INVALID_JSON_DESCRIPTION",
        "{v}"
    );

    // warnings only when asked for: an operator not installed
    let missing = r#"{"StartAt":"T","States":{"T":{"Type":"Task","Resource":"weft:plugin:not-here","End":true}}}"#;
    let v = ok(
        &s,
        DEV,
        "ValidateStateMachineDefinition",
        json!({"definition": missing}),
    )
    .await;
    assert_eq!(
        v,
        json!({"result": "OK", "diagnostics": [], "truncated": false})
    );
    let v = ok(
        &s,
        DEV,
        "ValidateStateMachineDefinition",
        json!({"definition": missing, "severity": "WARNING"}),
    )
    .await;
    assert_eq!(v["result"], "OK");
    assert_eq!(v["diagnostics"][0]["severity"], "WARNING", "{v}");
    assert_eq!(v["diagnostics"][0]["code"], "OPERATOR_NOT_INSTALLED");
    assert_eq!(v["diagnostics"][0]["location"], "/States/T/Resource");

    // an Express workflow cannot wait for a task token
    let cb = r#"{"StartAt":"T","States":{"T":{"Type":"Task","Resource":"arn:aws:states:::sqs:sendMessage.waitForTaskToken","Parameters":{"QueueUrl":"q","MessageBody":{"t.$":"$$.Task.Token"}},"End":true}}}"#;
    let v = ok(
        &s,
        DEV,
        "ValidateStateMachineDefinition",
        json!({"definition": cb}),
    )
    .await;
    assert_eq!(v["result"], "OK", "{v}");
    let v = ok(
        &s,
        DEV,
        "ValidateStateMachineDefinition",
        json!({"definition": cb, "type": "EXPRESS"}),
    )
    .await;
    assert_eq!(v["result"], "FAIL", "{v}");
    assert_eq!(v["diagnostics"][0]["location"], "/States/T/Resource");

    for bad_req in [
        json!({"definition": PASS, "severity": "INFO"}),
        json!({"definition": PASS, "type": "BATCH"}),
        json!({"definition": PASS, "maxResults": 101}),
        json!({}),
    ] {
        assert_eq!(
            fails(&s, DEV, "ValidateStateMachineDefinition", bad_req).await,
            "ValidationException"
        );
    }
}

async fn test_state(s: &Server, st: Value, input: Value, level: &str) -> Value {
    ok(
        s,
        ADMIN,
        "TestState",
        json!({"definition": st.to_string(), "input": input.to_string(), "inspectionLevel": level}),
    )
    .await
}

fn parsed(v: &Value) -> Value {
    serde_json::from_str(v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_state_runs_one_state() {
    let s = start_with(Some(tokens()), 100).await;
    // Pass with every JSONPath step, inspected
    let st = json!({"Type": "Pass", "InputPath": "$.in", "Parameters": {"v.$": "$.x"},
        "ResultPath": "$.out", "Next": "Then"});
    let v = test_state(&s, st, json!({"in": {"x": 1}, "keep": true}), "DEBUG").await;
    assert_eq!(v["status"], "SUCCEEDED", "{v}");
    assert_eq!(v["nextState"], "Then");
    assert_eq!(
        parsed(&v["output"]),
        json!({"in": {"x": 1}, "keep": true, "out": {"v": 1}})
    );
    let d = &v["inspectionData"];
    assert_eq!(parsed(&d["afterInputPath"]), json!({"x": 1}), "{d}");
    assert_eq!(parsed(&d["afterParameters"]), json!({"v": 1}));
    assert_eq!(parsed(&d["result"]), json!({"v": 1}));
    assert_eq!(parsed(&d["afterResultSelector"]), json!({"v": 1}));
    assert_eq!(parsed(&d["afterResultPath"]), parsed(&v["output"]));
    // INFO: no inspection data
    let st = json!({"Type": "Pass", "End": true});
    let v = test_state(&s, st, json!({"a": 1}), "INFO").await;
    assert!(
        v.get("inspectionData").is_none() && v.get("nextState").is_none(),
        "{v}"
    );

    // Choice: the next state, also a loop back to itself
    let st = json!({"Type": "Choice", "Choices": [
        {"Variable": "$.n", "NumericLessThan": 3, "Next": "TestState"}], "Default": "Done"});
    let v = test_state(&s, st.clone(), json!({"n": 1}), "INFO").await;
    assert_eq!(v["nextState"], "TestState", "{v}");
    let v = test_state(&s, st, json!({"n": 5}), "INFO").await;
    assert_eq!(v["nextState"], "Done", "{v}");

    // Wait does not wait
    let st = json!({"Type": "Wait", "Seconds": 86400, "Next": "After"});
    let v = test_state(&s, st, json!({}), "INFO").await;
    assert_eq!(
        (v["status"].as_str(), v["nextState"].as_str()),
        (Some("SUCCEEDED"), Some("After")),
        "{v}"
    );

    // Fail
    let st = json!({"Type": "Fail", "Error": "Custom.Bad", "Cause": "on purpose"});
    let v = test_state(&s, st, json!({}), "INFO").await;
    assert_eq!(
        (
            v["status"].as_str(),
            v["error"].as_str(),
            v["cause"].as_str()
        ),
        (Some("FAILED"), Some("Custom.Bad"), Some("on purpose")),
        "{v}"
    );

    // Retry and Catch are answered, not run
    let failing = json!({"Type": "Task", "Resource": "weft:plugin:not-installed-here", "InputPath": "$.missing", "Next": "N",
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.err", "Next": "Handler"}]});
    let v = test_state(&s, failing.clone(), json!({"a": 1}), "INFO").await;
    // States.Runtime is not caught by States.ALL
    assert_eq!(v["status"], "FAILED", "{v}");
    assert_eq!(v["error"], "States.Runtime");
    let st = json!({"Type": "Task", "Resource": "weft:plugin:not-installed-here", "Next": "N",
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.err", "Next": "Handler"}]});
    let v = test_state(&s, st, json!({"a": 1}), "INFO").await;
    assert_eq!(v["status"], "CAUGHT_ERROR", "{v}");
    assert_eq!(v["nextState"], "Handler");
    assert_eq!(parsed(&v["output"])["a"], 1);
    assert!(parsed(&v["output"])["err"]["Error"].is_string(), "{v}");
    let st = json!({"Type": "Task", "Resource": "weft:plugin:not-installed-here", "End": true,
        "Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 3}]});
    let v = test_state(&s, st, json!({}), "INFO").await;
    assert_eq!(v["status"], "RETRIABLE", "{v}");

    // a state of a whole machine, by name
    let machine = json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"},
        "B": {"Type": "Pass", "Result": {"b": true}, "End": true}}});
    let v = ok(
        &s,
        ADMIN,
        "TestState",
        json!({"definition": machine.to_string(), "stateName": "B"}),
    )
    .await;
    assert_eq!(parsed(&v["output"]), json!({"b": true}), "{v}");

    // bad requests
    let bad = json!({"Type": "Pass", "Next": 3}).to_string();
    let (st, v) = call(&s, ADMIN, "TestState", json!({"definition": bad})).await;
    assert_eq!(
        (st, v["__type"].as_str()),
        (400, Some("InvalidDefinition")),
        "{v}"
    );
    assert!(v["message"].as_str().unwrap().contains("/Next"), "{v}");
    for r in [
        "arn:aws:states:::states:startExecution.sync",
        "arn:aws:states:us-east-1:000000000000:activity:a",
    ] {
        let d = json!({"Type": "Task", "Resource": r, "End": true}).to_string();
        assert_eq!(
            fails(&s, ADMIN, "TestState", json!({"definition": d})).await,
            "ValidationException"
        );
    }
    let d = json!({"Type": "Pass", "End": true}).to_string();
    assert_eq!(
        fails(
            &s,
            ADMIN,
            "TestState",
            json!({"definition": d, "input": "{"})
        )
        .await,
        "InvalidExecutionInput"
    );
    assert_eq!(
        fails(
            &s,
            ADMIN,
            "TestState",
            json!({"definition": d, "inspectionLevel": "ALL"})
        )
        .await,
        "ValidationException"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_state_passes_its_roles() {
    let s = start_with(Some(tokens()), 100).await;
    let d = json!({"Type": "Pass", "End": true}).to_string();
    ok(
        &s,
        DEV,
        "TestState",
        json!({"definition": d, "roleArn": "weft:role:dev-r"}),
    )
    .await;
    // a role the caller may not pass, in roleArn or in the state's Credentials
    assert_eq!(
        fails(
            &s,
            DEV,
            "TestState",
            json!({"definition": d, "roleArn": "weft:role:prod-r"})
        )
        .await,
        "AccessDeniedException"
    );
    assert_eq!(
        fails(
            &s,
            DEV,
            "TestState",
            json!({"definition": d, "roleArn": "arn:aws:iam::000000000000:role/prod-r"})
        )
        .await,
        "AccessDeniedException"
    );
    // without roleArn, the default role is passed (dev may not)
    assert_eq!(
        fails(&s, DEV, "TestState", json!({"definition": d})).await,
        "AccessDeniedException"
    );
    let creds = json!({"Type": "Task", "Resource": "weft:plugin:echo", "End": true,
        "Credentials": {"RoleArn": "weft:role:prod-r"}})
    .to_string();
    assert_eq!(
        fails(
            &s,
            DEV,
            "TestState",
            json!({"definition": creds, "roleArn": "weft:role:dev-r"})
        )
        .await,
        "AccessDeniedException"
    );
    let machine =
        json!({"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "weft:plugin:echo",
        "Credentials": {"RoleArn": "weft:role:prod-r"}, "End": true}}})
        .to_string();
    assert_eq!(
        fails(
            &s,
            DEV,
            "TestState",
            json!({"definition": machine, "roleArn": "weft:role:dev-r", "stateName": "A"})
        )
        .await,
        "AccessDeniedException"
    );
    // revealSecrets is its own permission
    assert_eq!(
        fails(
            &s,
            DEV,
            "TestState",
            json!({"definition": d, "roleArn": "weft:role:dev-r", "revealSecrets": true})
        )
        .await,
        "AccessDeniedException"
    );
}
