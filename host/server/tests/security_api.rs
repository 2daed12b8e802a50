//! Attacks on the Step Functions API (issue 13, items 3, 5 and 6), over real HTTP: every
//! resource of a request is authorised (decoy fields, ARN spellings, versions and aliases,
//! task tokens, lists), every role a definition names is a PassRole decision, child work is
//! the execution role's decision, and SigV4 binds the signature to the whole request.

use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;
use weft_server::auth::Tokens;
use weft_server::records::{exec_arn, sm_arn};

mod common;

use common::{principal, sfn_call as call, sfn_ok as ok, start_with, Server};

const ADMIN: &str = "admin-secret";
const DEV: &str = "dev-secret";
const OPS: &str = "ops-secret";

/// admin: no policy (everything). dev: everything on `dev-*` resources, lists, PassRole of
/// `dev-*` roles. ops: everything, but an explicit Deny on the `prod` state machine and its
/// executions.
fn tokens() -> Tokens {
    let dev = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "states:*", "Resource": [
            "arn:aws:states:*:*:stateMachine:dev-*",
            "arn:aws:states:*:*:execution:dev-*",
            "arn:aws:states:*:*:activity:dev-*"]},
        {"Effect": "Allow", "Action": ["states:ListStateMachines", "states:ListActivities"], "Resource": "*"},
        {"Effect": "Allow", "Action": "iam:PassRole", "Resource": "weft:role:dev-*"}
    ]});
    let ops = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["states:*", "iam:PassRole"], "Resource": "*"},
        {"Effect": "Deny", "Action": "states:*", "Resource": [
            "arn:aws:states:us-east-1:000000000000:stateMachine:prod",
            "arn:aws:states:us-east-1:000000000000:execution:prod:*"]}
    ]});
    Tokens(HashMap::from([
        principal("admin", ADMIN, None),
        principal("dev", DEV, Some(dev)),
        principal("ops", OPS, Some(ops)),
    ]))
}

/// The call is refused: AccessDeniedException (or InvalidArn for a malformed ARN).
async fn refused(s: &Server, who: &str, action: &str, body: Value) -> String {
    let (st, v) = call(s, who, action, body.clone()).await;
    let kind = v["__type"].as_str().unwrap_or("").to_string();
    assert!(
        st != 200 && matches!(kind.as_str(), "AccessDeniedException" | "InvalidArn"),
        "{action} as {who} with {body} was not refused: {st} {v}"
    );
    kind
}

async fn denied(s: &Server, who: &str, action: &str, body: Value) {
    let kind = refused(s, who, action, body.clone()).await;
    assert_eq!(kind, "AccessDeniedException", "{action} {body}");
}

const PASS: &str = r#"{"StartAt":"A","States":{"A":{"Type":"Pass","End":true}}}"#;

fn waits_for(activity: &str) -> String {
    json!({"StartAt": "W", "States": {"W": {"Type": "Task",
        "Resource": format!("arn:aws:states:us-east-1:000000000000:activity:{activity}"), "End": true}}})
    .to_string()
}

async fn create(s: &Server, name: &str, def: &str, ty: &str) -> String {
    ok(
        s,
        ADMIN,
        "CreateStateMachine",
        json!({"name": name, "definition": def, "type": ty, "publish": true}),
    )
    .await["stateMachineArn"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn executions(s: &Server, sm: &str) -> Vec<Value> {
    ok(s, ADMIN, "ListExecutions", json!({"stateMachineArn": sm})).await["executions"]
        .as_array()
        .unwrap()
        .clone()
}

async fn wait_status(s: &Server, arn: &str) -> Value {
    for _ in 0..400 {
        let v = ok(s, ADMIN, "DescribeExecution", json!({"executionArn": arn})).await;
        if v["status"] != "RUNNING" {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{arn} still running");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decoy_fields_do_not_choose_the_authorised_resource() {
    let s = start_with(Some(tokens()), 100).await;
    let prod = create(&s, "prod", &waits_for("prod-act"), "STANDARD").await;
    let dev = create(&s, "dev-flow", PASS, "STANDARD").await;
    let prod_x = create(&s, "prodx", PASS, "EXPRESS").await;
    ok(&s, ADMIN, "CreateActivity", json!({"name": "prod-act"})).await;
    ok(&s, ADMIN, "CreateActivity", json!({"name": "dev-act"})).await;
    let pe = ok(
        &s,
        ADMIN,
        "StartExecution",
        json!({"stateMachineArn": prod, "name": "p1"}),
    )
    .await["executionArn"]
        .as_str()
        .unwrap()
        .to_string();
    let de = ok(
        &s,
        DEV,
        "StartExecution",
        json!({"stateMachineArn": dev, "name": "d1"}),
    )
    .await["executionArn"]
        .as_str()
        .unwrap()
        .to_string();
    let dev_act = "arn:aws:states:us-east-1:000000000000:activity:dev-act";
    let prod_act = "arn:aws:states:us-east-1:000000000000:activity:prod-act";
    // the reproduction: a prod stateMachineArn with a decoy dev executionArn
    let decoys = json!({"executionArn": de, "activityArn": dev_act, "stateMachineArn": dev});
    let with = |mut body: Value| {
        for (k, v) in decoys.as_object().unwrap() {
            if body.get(k).is_none() {
                body[k] = v.clone();
            }
        }
        body
    };
    denied(
        &s,
        DEV,
        "StartExecution",
        with(json!({"stateMachineArn": prod, "name": "evil"})),
    )
    .await;
    denied(
        &s,
        DEV,
        "DeleteStateMachine",
        with(json!({"stateMachineArn": prod})),
    )
    .await;
    denied(
        &s,
        DEV,
        "UpdateStateMachine",
        with(json!({"stateMachineArn": prod, "definition": PASS})),
    )
    .await;
    denied(
        &s,
        DEV,
        "DescribeStateMachine",
        with(json!({"stateMachineArn": prod})),
    )
    .await;
    denied(
        &s,
        DEV,
        "StartSyncExecution",
        with(json!({"stateMachineArn": prod_x})),
    )
    .await;
    denied(
        &s,
        DEV,
        "PublishStateMachineVersion",
        with(json!({"stateMachineArn": prod})),
    )
    .await;
    denied(
        &s,
        DEV,
        "ListStateMachineVersions",
        with(json!({"stateMachineArn": prod})),
    )
    .await;
    denied(
        &s,
        DEV,
        "DescribeStateMachine",
        with(json!({"stateMachineArn": format!("{prod}:1")})),
    )
    .await;
    denied(
        &s,
        DEV,
        "CreateStateMachineAlias",
        with(json!({"name": "live", "routingConfiguration": [{"stateMachineVersionArn": format!("{prod}:1"), "weight": 100}]})),
    )
    .await;
    denied(&s, DEV, "StopExecution", with(json!({"executionArn": pe}))).await;
    denied(
        &s,
        DEV,
        "RedriveExecution",
        with(json!({"executionArn": pe})),
    )
    .await;
    denied(
        &s,
        DEV,
        "DescribeExecution",
        with(json!({"executionArn": pe})),
    )
    .await;
    denied(
        &s,
        DEV,
        "GetExecutionHistory",
        with(json!({"executionArn": pe})),
    )
    .await;
    denied(
        &s,
        DEV,
        "GetActivityTask",
        with(json!({"activityArn": prod_act})),
    )
    .await;
    denied(
        &s,
        DEV,
        "DeleteActivity",
        with(json!({"activityArn": prod_act})),
    )
    .await;
    denied(
        &s,
        DEV,
        "ListExecutions",
        with(json!({"stateMachineArn": prod})),
    )
    .await;
    denied(
        &s,
        DEV,
        "CreateStateMachine",
        with(json!({"name": "prod2", "definition": PASS, "roleArn": "weft:role:dev-r"})),
    )
    .await;
    // a prod task token, answered with a dev principal
    let task = ok(
        &s,
        ADMIN,
        "GetActivityTask",
        json!({"activityArn": prod_act}),
    )
    .await;
    let token = task["taskToken"].as_str().unwrap().to_string();
    for a in ["SendTaskSuccess", "SendTaskFailure", "SendTaskHeartbeat"] {
        denied(
            &s,
            DEV,
            a,
            with(json!({"taskToken": token, "output": "{}"})),
        )
        .await;
    }
    // nothing of prod changed
    assert_eq!(executions(&s, &prod).await.len(), 1);
    let d = ok(&s, ADMIN, "DescribeExecution", json!({"executionArn": pe})).await;
    assert_eq!(d["status"], "RUNNING");
    ok(
        &s,
        ADMIN,
        "DescribeStateMachine",
        json!({"stateMachineArn": prod}),
    )
    .await;
    // the same calls on dev resources are allowed, decoys or not
    ok(
        &s,
        DEV,
        "DescribeStateMachine",
        json!({"stateMachineArn": dev, "executionArn": pe}),
    )
    .await;
    ok(
        &s,
        DEV,
        "DescribeExecution",
        json!({"executionArn": de, "stateMachineArn": prod}),
    )
    .await;
    ok(
        &s,
        ADMIN,
        "SendTaskSuccess",
        json!({"taskToken": token, "output": "{\"ok\":1}"}),
    )
    .await;
    assert_eq!(wait_status(&s, &pe).await["status"], "SUCCEEDED");
    // the audit log has the denials, with the resource that was refused
    let recs = weft_server::audit::query(&s.state.audit, 10_000, Some("AccessDenied")).unwrap();
    assert!(
        recs.iter().any(|r| r["principal"] == "dev"
            && r["action"] == "states:StartExecution"
            && r["resource"] == prod),
        "{recs:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arn_spellings_do_not_dodge_a_deny() {
    let s = start_with(Some(tokens()), 100).await;
    let prod = create(&s, "prod", PASS, "STANDARD").await;
    ok(
        &s,
        ADMIN,
        "CreateStateMachineAlias",
        json!({"name": "live", "routingConfiguration": [{"stateMachineVersionArn": format!("{prod}:1"), "weight": 100}]}),
    )
    .await;
    let pe = ok(
        &s,
        ADMIN,
        "StartExecution",
        json!({"stateMachineArn": prod, "name": "p1"}),
    )
    .await["executionArn"]
        .as_str()
        .unwrap()
        .to_string();
    let variants = [
        prod.clone(),
        format!("{prod}:1"),
        format!("{prod}:live"),
        format!("{prod} "),
        format!(" {prod}"),
        format!("{prod}\t"),
        prod.replace("stateMachine", "statemachine"),
        prod.replace("stateMachine", "STATEMACHINE"),
        prod.replace("arn:aws:", "ARN:AWS:"),
        prod.replace("us-east-1", "eu-west-1"),
        prod.replace("000000000000", "123456789012"),
        prod.replace("us-east-1:000000000000", ":"),
        prod.replace("prod", "pr%6Fd"),
        prod.replace("prod", "prod%00"),
        format!("{prod}:01"),
        format!("{prod}:"),
        format!("{prod}::1"),
        prod.replace("arn:aws:", "arn:aws-cn:"),
    ];
    for v in &variants {
        refused(&s, OPS, "StartExecution", json!({"stateMachineArn": v})).await;
        refused(
            &s,
            OPS,
            "DescribeStateMachine",
            json!({"stateMachineArn": v}),
        )
        .await;
        refused(&s, OPS, "DeleteStateMachine", json!({"stateMachineArn": v})).await;
    }
    for v in [
        pe.clone(),
        pe.replace("execution", "Execution"),
        pe.replace("us-east-1", "us-west-2"),
        format!("{pe} "),
        pe.replace(":p1", ":p%31"),
    ] {
        refused(&s, OPS, "StopExecution", json!({"executionArn": v})).await;
        refused(&s, OPS, "DescribeExecution", json!({"executionArn": v})).await;
    }
    refused(
        &s,
        OPS,
        "UpdateStateMachineAlias",
        json!({"stateMachineAliasArn": format!("{prod}:live"), "routingConfiguration": [{"stateMachineVersionArn": format!("{prod}:1"), "weight": 100}]}),
    )
    .await;
    refused(
        &s,
        OPS,
        "DeleteStateMachineAlias",
        json!({"stateMachineAliasArn": format!("{prod}:live")}),
    )
    .await;
    refused(
        &s,
        OPS,
        "DeleteStateMachineVersion",
        json!({"stateMachineVersionArn": format!("{prod}:1")}),
    )
    .await;
    // nothing was started or deleted
    assert_eq!(executions(&s, &prod).await.len(), 1);
    assert_eq!(wait_status(&s, &pe).await["status"], "SUCCEEDED");
    ok(
        &s,
        ADMIN,
        "DescribeStateMachineAlias",
        json!({"stateMachineAliasArn": format!("{prod}:live")}),
    )
    .await;
    // ops may act on everything else
    let other = create(&s, "other", PASS, "STANDARD").await;
    ok(
        &s,
        OPS,
        "StartExecution",
        json!({"stateMachineArn": format!("{other}:1")}),
    )
    .await;
    // the ARN is used as authorised: the canonical spelling
    let (_, v) = call(
        &s,
        OPS,
        "DescribeStateMachine",
        json!({"stateMachineArn": format!("{other}:1")}),
    )
    .await;
    assert_eq!(v["stateMachineArn"], other);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_show_only_what_the_caller_may_describe() {
    let s = start_with(Some(tokens()), 100).await;
    let prod = create(&s, "prod", PASS, "STANDARD").await;
    let dev = create(&s, "dev-a", PASS, "STANDARD").await;
    create(&s, "dev-b", PASS, "STANDARD").await;
    ok(&s, ADMIN, "CreateActivity", json!({"name": "prod-act"})).await;
    ok(&s, ADMIN, "CreateActivity", json!({"name": "dev-act"})).await;
    ok(
        &s,
        ADMIN,
        "StartExecution",
        json!({"stateMachineArn": prod}),
    )
    .await;
    ok(&s, ADMIN, "StartExecution", json!({"stateMachineArn": dev})).await;
    let names = |v: &Value, list: &str| -> Vec<String> {
        v[list]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["name"].as_str().unwrap().to_string())
            .collect()
    };
    let l = ok(&s, DEV, "ListStateMachines", json!({})).await;
    assert_eq!(names(&l, "stateMachines"), ["dev-a", "dev-b"]);
    // pages count what is shown
    let l = ok(&s, DEV, "ListStateMachines", json!({"maxResults": 1})).await;
    assert_eq!(names(&l, "stateMachines"), ["dev-a"]);
    let l2 = ok(
        &s,
        DEV,
        "ListStateMachines",
        json!({"maxResults": 1, "nextToken": l["nextToken"]}),
    )
    .await;
    assert_eq!(names(&l2, "stateMachines"), ["dev-b"]);
    assert!(l2.get("nextToken").is_none(), "{l2}");
    let l = ok(&s, DEV, "ListActivities", json!({})).await;
    assert_eq!(names(&l, "activities"), ["dev-act"]);
    assert_eq!(
        ok(&s, DEV, "ListExecutions", json!({"stateMachineArn": dev})).await["executions"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let l = ok(&s, OPS, "ListStateMachines", json!({})).await;
    assert_eq!(names(&l, "stateMachines"), ["dev-a", "dev-b"]);
    let l = ok(&s, ADMIN, "ListStateMachines", json!({})).await;
    assert_eq!(names(&l, "stateMachines"), ["dev-a", "dev-b", "prod"]);
}

fn role(s: &Server, name: &str, statements: Value) {
    std::fs::create_dir_all(s.home().join("roles")).unwrap();
    std::fs::write(
        s.home().join(format!("roles/{name}.json")),
        json!({"Version": "2012-10-17", "Statement": statements}).to_string(),
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_a_definition_names_is_passed_by_the_caller() {
    let s = start_with(Some(tokens()), 100).await;
    let task = |role: &str| json!({"Type": "Task", "Resource": "weft:plugin:echo", "Credentials": {"RoleArn": role}, "End": true});
    let defs = |role: &str| {
        vec![
            json!({"StartAt": "T", "States": {"T": task(role)}}),
            json!({"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": true, "Branches": [
                {"StartAt": "Ok", "States": {"Ok": {"Type": "Pass", "End": true}}},
                {"StartAt": "T", "States": {"T": task(role)}}]}}}),
            json!({"StartAt": "M", "States": {"M": {"Type": "Map", "End": true, "ItemProcessor": {
                "StartAt": "N", "States": {"N": {"Type": "Map", "End": true, "Iterator": {
                    "StartAt": "T", "States": {"T": task(role)}}}}}}}}),
            json!({"QueryLanguage": "JSONata", "StartAt": "T", "States": {"T": {"Type": "Task",
                "Resource": "weft:plugin:echo", "Arguments": {"x": "{% $states.input %}"},
                "Credentials": {"RoleArn": role}, "End": true}}}),
        ]
    };
    let admin_roles = [
        "weft:role:payments-admin",
        "payments-admin",
        "arn:aws:iam::000000000000:role/payments-admin",
        "arn:aws:iam::123456789012:role/team/payments-admin",
    ];
    for (i, r) in admin_roles.iter().enumerate() {
        for (j, d) in defs(r).into_iter().enumerate() {
            denied(
                &s,
                DEV,
                "CreateStateMachine",
                json!({"name": format!("dev-{i}-{j}"), "definition": d.to_string(), "roleArn": "weft:role:dev-r"}),
            )
            .await;
        }
        denied(
            &s,
            DEV,
            "CreateStateMachine",
            json!({"name": format!("dev-role-{i}"), "definition": PASS, "roleArn": r}),
        )
        .await;
    }
    // unparseable roles are refused, with where they are
    let (st, v) = call(
        &s,
        DEV,
        "CreateStateMachine",
        json!({"name": "dev-bad", "definition": defs("weft:role:../x")[1].to_string(), "roleArn": "weft:role:dev-r"}),
    )
    .await;
    assert_eq!(
        (st, v["__type"].as_str()),
        (400, Some("InvalidDefinition")),
        "{v}"
    );
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("/Branches/1/States/T/Credentials/RoleArn"),
        "{v}"
    );
    let (_, v) = call(
        &s,
        DEV,
        "CreateStateMachine",
        json!({"name": "dev-bad", "definition": PASS, "roleArn": "root"}),
    )
    .await;
    assert_eq!(v["__type"], "AccessDeniedException", "{v}");
    let (_, v) = call(
        &s,
        DEV,
        "CreateStateMachine",
        json!({"name": "dev-bad", "definition": PASS, "roleArn": "arn:aws:iam::1:role/x"}),
    )
    .await;
    assert_eq!(v["__type"], "InvalidArn", "{v}");
    // no roleArn: the default execution role is passed
    denied(
        &s,
        DEV,
        "CreateStateMachine",
        json!({"name": "dev-default", "definition": PASS}),
    )
    .await;
    // the dev roles may be passed, in every spelling
    for (j, d) in defs("arn:aws:iam::000000000000:role/dev-worker")
        .into_iter()
        .enumerate()
    {
        ok(
            &s,
            DEV,
            "CreateStateMachine",
            json!({"name": format!("dev-ok-{j}"), "definition": d.to_string(), "roleArn": "weft:role:dev-r"}),
        )
        .await;
    }
    // UpdateStateMachine: roleArn and definition
    let sm = sm_arn("dev-ok-0");
    denied(
        &s,
        DEV,
        "UpdateStateMachine",
        json!({"stateMachineArn": sm, "roleArn": "weft:role:payments-admin"}),
    )
    .await;
    denied(
        &s,
        DEV,
        "UpdateStateMachine",
        json!({"stateMachineArn": sm, "definition": defs("payments-admin")[2].to_string()}),
    )
    .await;
    ok(
        &s,
        DEV,
        "UpdateStateMachine",
        json!({"stateMachineArn": sm, "roleArn": "dev-other"}),
    )
    .await;
    let d = ok(
        &s,
        ADMIN,
        "DescribeStateMachine",
        json!({"stateMachineArn": sm}),
    )
    .await;
    assert_eq!(d["roleArn"], "dev-other");
    // every PassRole decision is audited
    let recs = weft_server::audit::query(&s.state.audit, 10_000, Some("iam:PassRole")).unwrap();
    assert!(
        recs.iter()
            .any(|r| r["resource"] == "weft:role:payments-admin" && r["outcome"] == "error"),
        "{recs:?}"
    );
    assert!(
        recs.iter()
            .any(|r| r["resource"] == "weft:role:dev-worker" && r["outcome"] == "ok"),
        "{recs:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_work_needs_the_execution_roles_permission() {
    let s = start_with(None, 100).await;
    role(
        &s,
        "parent",
        json!([{"Effect": "Allow", "Action": "states:StartExecution", "Resource": "arn:aws:states:*:*:stateMachine:child-ok"},
               {"Effect": "Allow", "Action": "iam:PassRole", "Resource": "weft:role:runtime-ok"}]),
    );
    let create_as = |name: &'static str, def: String, role: &'static str| {
        let s = &s;
        async move {
            let (st, v) = common::request(
                s.addr,
                "POST",
                "/",
                &[
                    ("Content-Type", "application/x-amz-json-1.0"),
                    ("X-Amz-Target", "AWSStepFunctions.CreateStateMachine"),
                ],
                &json!({"name": name, "definition": def, "roleArn": role}).to_string(),
            )
            .await
            .pipe(|(st, _, b)| (st, serde_json::from_str::<Value>(&b).unwrap()));
            assert_eq!(st, 200, "{v}");
            v["stateMachineArn"].as_str().unwrap().to_string()
        }
    };
    let child_def =
        r#"{"StartAt":"C","States":{"C":{"Type":"Pass","Result":{"secret":42},"End":true}}}"#;
    let ok_child = create_as(
        "child-ok",
        child_def.into(),
        "arn:aws:iam::000000000000:role/none",
    )
    .await;
    let secret_child = create_as(
        "child-secret",
        child_def.into(),
        "arn:aws:iam::000000000000:role/none",
    )
    .await;
    let start = |target: &str, resource: &str| {
        json!({"StartAt": "S", "States": {"S": {"Type": "Task", "Resource": resource,
            "Parameters": {"StateMachineArn": target}, "End": true}}})
        .to_string()
    };
    let run = |sm: String| {
        let s = &s;
        async move {
            let (_, _, b) = common::request(
                s.addr,
                "POST",
                "/",
                &[
                    ("Content-Type", "application/x-amz-json-1.0"),
                    ("X-Amz-Target", "AWSStepFunctions.StartExecution"),
                ],
                &json!({"stateMachineArn": sm, "input": "{\"role\":\"weft:role:runtime-admin\"}"})
                    .to_string(),
            )
            .await;
            let e: Value = serde_json::from_str(&b).unwrap();
            let arn = e["executionArn"].as_str().unwrap().to_string();
            for _ in 0..400 {
                let (_, _, b) = common::request(
                    s.addr,
                    "POST",
                    "/",
                    &[
                        ("Content-Type", "application/x-amz-json-1.0"),
                        ("X-Amz-Target", "AWSStepFunctions.DescribeExecution"),
                    ],
                    &json!({"executionArn": arn}).to_string(),
                )
                .await;
                let d: Value = serde_json::from_str(&b).unwrap();
                if d["status"] != "RUNNING" {
                    return d;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            panic!("{arn} still running")
        }
    };
    // allowed child: runs, output returned
    let p = create_as(
        "p-ok",
        start(&ok_child, "arn:aws:states:::states:startExecution.sync:2"),
        "weft:role:parent",
    )
    .await;
    let d = run(p).await;
    assert_eq!(d["status"], "SUCCEEDED", "{d}");
    assert!(d["output"].as_str().unwrap().contains("42"));
    // not allowed: every way of starting it fails with a named error, the child never runs
    for (i, res) in [
        "arn:aws:states:::states:startExecution.sync:2",
        "arn:aws:states:::states:startExecution.sync",
        "arn:aws:states:::states:startExecution",
    ]
    .iter()
    .enumerate()
    {
        let name: &'static str = ["p-1", "p-2", "p-3"][i];
        let p = create_as(name, start(&secret_child, res), "weft:role:parent").await;
        let d = run(p).await;
        assert_eq!(d["status"], "FAILED", "{d}");
        assert_eq!(d["error"], "Sandbox.PermissionDenied", "{d}");
        // the child's result ({"secret":42}) reaches neither the output nor the cause
        assert!(d.get("output").is_none(), "{d}");
        assert!(!d.to_string().contains("secret\\\":42"), "{d}");
    }
    let weft_style = json!({"StartAt": "S", "States": {"S": {"Type": "Task",
        "Resource": "weft:statemachine:child-secret.sync", "End": true}}})
    .to_string();
    let d = run(create_as("p-4", weft_style, "weft:role:parent").await).await;
    assert_eq!(d["error"], "Sandbox.PermissionDenied", "{d}");
    // a role that does not exist allows nothing
    let d = run(create_as(
        "p-5",
        start(&ok_child, "arn:aws:states:::states:startExecution.sync:2"),
        "arn:aws:iam::000000000000:role/ghost",
    )
    .await)
    .await;
    assert_eq!(d["error"], "Sandbox.PermissionDenied", "{d}");
    let (_, _, b) = common::request(
        s.addr,
        "POST",
        "/",
        &[
            ("Content-Type", "application/x-amz-json-1.0"),
            ("X-Amz-Target", "AWSStepFunctions.ListExecutions"),
        ],
        &json!({"stateMachineArn": secret_child}).to_string(),
    )
    .await;
    let l: Value = serde_json::from_str(&b).unwrap();
    assert_eq!(l["executions"], json!([]), "{l}");
    // a DAG run needs dags:TriggerDagRun on weft:dag:ID
    let dag = json!({"StartAt": "D", "States": {"D": {"Type": "Task", "Resource": "weft:dag:payroll", "End": true}}}).to_string();
    let d = run(create_as("p-dag", dag, "weft:role:parent").await).await;
    assert_eq!(d["error"], "Sandbox.PermissionDenied", "{d}");
    assert!(
        d["cause"]
            .as_str()
            .unwrap()
            .contains("dags:TriggerDagRun on weft:dag:payroll"),
        "{d}"
    );
    // a Credentials.RoleArn resolved at run time needs the execution role's iam:PassRole
    let dynamic = json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "weft:plugin:not-installed",
        "Credentials": {"RoleArn.$": "$.role"}, "End": true}}})
    .to_string();
    let d = run(create_as("p-dyn", dynamic.clone(), "weft:role:parent").await).await;
    assert_eq!(d["error"], "Sandbox.PermissionDenied", "{d}");
    assert!(
        d["cause"]
            .as_str()
            .unwrap()
            .contains("iam:PassRole on weft:role:runtime-admin"),
        "{d}"
    );
    let jsonata = json!({"QueryLanguage": "JSONata", "StartAt": "T", "States": {"T": {"Type": "Task",
        "Resource": "weft:plugin:not-installed", "Credentials": {"RoleArn": "{% $states.input.role %}"}, "End": true}}})
    .to_string();
    let d = run(create_as("p-jsonata", jsonata, "weft:role:parent").await).await;
    assert_eq!(d["error"], "Sandbox.PermissionDenied", "{d}");
    // a role the execution role may pass gets past the check (and fails on the missing plugin)
    let (_, _, b) = common::request(
        s.addr,
        "POST",
        "/",
        &[("Content-Type", "application/x-amz-json-1.0"), ("X-Amz-Target", "AWSStepFunctions.StartExecution")],
        &json!({"stateMachineArn": sm_arn("p-dyn"), "name": "allowed", "input": "{\"role\":\"runtime-ok\"}"}).to_string(),
    )
    .await;
    assert!(b.contains("executionArn"), "{b}");
    let arn = exec_arn("p-dyn", "allowed");
    let d = loop {
        let (_, _, b) = common::request(
            s.addr,
            "POST",
            "/",
            &[
                ("Content-Type", "application/x-amz-json-1.0"),
                ("X-Amz-Target", "AWSStepFunctions.DescribeExecution"),
            ],
            &json!({"executionArn": arn}).to_string(),
        )
        .await;
        let d: Value = serde_json::from_str(&b).unwrap();
        if d["status"] != "RUNNING" {
            break d;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert_ne!(d["error"], "Sandbox.PermissionDenied", "{d}");
    // the role's decisions are audited
    let recs = weft_server::audit::query(&s.state.audit, 10_000, Some("weft:role:parent")).unwrap();
    assert!(
        recs.iter()
            .any(|r| r["action"] == "states:StartExecution" && r["outcome"] == "ok"),
        "{recs:?}"
    );
    assert!(
        recs.iter()
            .any(|r| r["action"] == "states:StartExecution" && r["outcome"] == "error"),
        "{recs:?}"
    );
    assert!(
        recs.iter()
            .any(|r| r["action"] == "dags:TriggerDagRun" && r["outcome"] == "error"),
        "{recs:?}"
    );
    assert!(
        recs.iter()
            .any(|r| r["action"] == "iam:PassRole" && r["outcome"] == "error"),
        "{recs:?}"
    );
}

trait Pipe: Sized {
    fn pipe<T>(self, f: impl FnOnce(Self) -> T) -> T {
        f(self)
    }
}
impl<T> Pipe for T {}

/// SigV4 over real HTTP: a signed request replayed with another body (and the old body's hash
/// in `x-amz-content-sha256`), another query, or an added unsigned `x-amz-target` is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigv4_replays_with_changes_are_refused() {
    use sha2::Digest;
    let s = start_with(Some(Tokens::from_keys(&[("AKIDWEFT", "the-secret")])), 10).await;
    let host = s.addr.to_string();
    let now = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    let hash = |b: &str| {
        sha2::Sha256::digest(b.as_bytes())
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect::<String>()
    };
    let body = r#"{"name":"ok","definition":"{\"StartAt\":\"A\",\"States\":{\"A\":{\"Type\":\"Pass\",\"End\":true}}}"}"#;
    let headers = vec![
        (
            "content-type".to_string(),
            "application/x-amz-json-1.0".to_string(),
        ),
        ("host".to_string(), host.clone()),
        ("x-amz-content-sha256".to_string(), hash(body)),
        ("x-amz-date".to_string(), now.clone()),
        (
            "x-amz-target".to_string(),
            "AWSStepFunctions.CreateStateMachine".to_string(),
        ),
    ];
    let names: Vec<&str> = headers.iter().map(|(k, _)| k.as_str()).collect();
    let scope = format!("{}/us-east-1/states/aws4_request", &now[..8]);
    let sig = weft_server::auth::sign(
        "the-secret",
        "POST",
        "/",
        "",
        &headers,
        &names,
        &hash(body),
        &now,
        &scope,
    );
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential=AKIDWEFT/{scope}, SignedHeaders={}, Signature={sig}",
        names.join(";")
    );
    let send = |path: &'static str,
                body: &'static str,
                extra: Option<(&'static str, &'static str)>| {
        let (auth, now, sha) = (
            auth.clone(),
            now.clone(),
            hash(
                r#"{"name":"ok","definition":"{\"StartAt\":\"A\",\"States\":{\"A\":{\"Type\":\"Pass\",\"End\":true}}}"}"#,
            ),
        );
        let addr = s.addr;
        async move {
            let mut hs = vec![
                ("Content-Type", "application/x-amz-json-1.0"),
                ("X-Amz-Content-Sha256", sha.as_str()),
                ("X-Amz-Date", now.as_str()),
                ("X-Amz-Target", "AWSStepFunctions.CreateStateMachine"),
                ("Authorization", auth.as_str()),
            ];
            if let Some(e) = extra {
                hs.push(e);
            }
            let (st, _, b) = common::request(addr, "POST", path, &hs, body).await;
            (st, b)
        }
    };
    let evil = r#"{"name":"evil","definition":"{\"StartAt\":\"A\",\"States\":{\"A\":{\"Type\":\"Pass\",\"End\":true}}}"}"#;
    let (st, b) = send("/", evil, None).await;
    assert_eq!(st, 403, "{b}");
    assert!(b.contains("x-amz-content-sha256"), "{b}");
    let (st, b) = send("/?x=1", body_static(), None).await;
    assert_eq!(st, 403, "{b}");
    let (st, b) = send("/", body_static(), Some(("X-Amz-Security-Token", "t"))).await;
    assert_eq!(st, 403, "{b}");
    // the untouched request is accepted, once signed as sent
    let (st, b) = send("/", body_static(), None).await;
    assert_eq!(st, 200, "{b}");
    let (_, _, b) = common::request(
        s.addr,
        "POST",
        "/",
        &[
            ("Content-Type", "application/x-amz-json-1.0"),
            ("X-Amz-Target", "AWSStepFunctions.ListStateMachines"),
            ("Authorization", "Bearer the-secret"),
        ],
        "{}",
    )
    .await;
    let v: Value = serde_json::from_str(&b).unwrap();
    assert_eq!(v["stateMachines"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["stateMachines"][0]["name"], "ok");
}

fn body_static() -> &'static str {
    r#"{"name":"ok","definition":"{\"StartAt\":\"A\",\"States\":{\"A\":{\"Type\":\"Pass\",\"End\":true}}}"}"#
}
