//! Attacks on the web UI's `/v1` routes by a principal with a narrow policy, over real HTTP:
//! every route authorises every resource it touches with the caller's policy (on the canonical
//! resource it then uses), lists keep only what the caller may see, a SigV4 signature is bound
//! to its route and body, and every decision, allowed or denied, is in `GET /v1/audit`.

use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use weft_server::auth::{Principal, Tokens};

mod common;

type Srv = common::Server;

const DEV_READ: &str = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
    "Action": ["states:List*", "states:Describe*"],
    "Resource": ["arn:aws:states:*:*:stateMachine:dev-*", "arn:aws:states:*:*:execution:dev-*"]}]}"#;

const DEV_OPS: &str = r#"{"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["dags:*"], "Resource": ["weft:dag:dev-*"]},
    {"Effect": "Allow", "Action": ["states:List*", "states:Describe*", "states:GetExecutionHistory", "states:SendTaskSuccess"],
     "Resource": ["arn:aws:states:*:*:stateMachine:dev-*", "arn:aws:states:*:*:execution:dev-*"]},
    {"Effect": "Allow", "Action": ["plugins:ListPlugins"], "Resource": ["weft:plugin:echo"]}]}"#;

/// Reads every history but prod's, with the Deny written for this server's region and account.
const NOT_PROD: &str = r#"{"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["states:GetExecutionHistory"], "Resource": ["*"]},
    {"Effect": "Deny", "Action": ["states:*"], "Resource": ["arn:aws:states:us-east-1:000000000000:execution:prod-*"]}]}"#;

fn principal(name: &str, secret: &str, policy: Option<&str>) -> (String, Principal) {
    (
        name.to_uppercase(),
        Principal {
            name: name.into(),
            access_key_id: name.to_uppercase(),
            secret: secret.into(),
            policy: policy.map(|p| Arc::new(weft_sandbox::Policy::parse(p).unwrap())),
        },
    )
}

fn tokens() -> Tokens {
    Tokens(HashMap::from([
        principal("admin", "admin-secret", None),
        principal("dev", "dev-secret", Some(DEV_READ)),
        principal("devops", "devops-secret", Some(DEV_OPS)),
        principal("notprod", "notprod-secret", Some(NOT_PROD)),
    ]))
}

/// A server whose store has an `echo` plugin and DAGs `dev-pipe` and `prod-pipe`.
async fn start() -> Srv {
    let pipe = |id: &str| {
        format!("{id}:\n  schedule: null\n  start_date: 2024-01-01\n  tasks:\n    a:\n      operator: echo\n")
    };
    let dags = [
        ("dev-pipe.yaml", pipe("dev-pipe")),
        ("prod-pipe.yaml", pipe("prod-pipe")),
        (
            "broken.yaml",
            "broken:\n  tasks:\n    x:\n      operator: not-installed\n".to_string(),
        ),
    ];
    common::start_with_dags(Some(tokens()), &dags, &["echo", "secret-tool"]).await
}

/// One `/v1` call as `secret`'s principal; (status, JSON body).
async fn v1(s: &Srv, secret: &str, method: &str, path: &str, body: &str) -> (u16, Value) {
    let auth = format!("Bearer {secret}");
    let mut hs = vec![("Authorization", auth.as_str())];
    if method != "GET" {
        hs.push(("Content-Type", "application/json"));
    }
    let (status, _, text) = common::request(s.addr, method, path, &hs, body).await;
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text)),
    )
}

async fn sfn(s: &Srv, action: &str, body: Value) -> Value {
    let target = format!("AWSStepFunctions.{action}");
    let (status, _, text) = common::request(
        s.addr,
        "POST",
        "/",
        &[
            ("X-Amz-Target", &target),
            ("Content-Type", "application/x-amz-json-1.0"),
            ("Authorization", "Bearer admin-secret"),
        ],
        &body.to_string(),
    )
    .await;
    assert_eq!(status, 200, "{action}: {text}");
    serde_json::from_str(&text).unwrap()
}

fn enc(s: &str) -> String {
    s.replace(':', "%3A")
}

fn assert_denied(what: &str, (status, v): &(u16, Value), action: &str) {
    assert_eq!(*status, 403, "{what}: {v}");
    assert_eq!(v["__type"], "AccessDeniedException", "{what}: {v}");
    assert!(
        v["message"].as_str().unwrap_or("").contains(action),
        "{what}: {v}"
    );
}

const PASS: &str = r#"{"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}"#;

/// dev-orders and prod-orders with one finished execution each, and dev-approval with one
/// execution waiting for a task token; returns (dev exec, prod exec, waiting exec).
async fn executions(s: &Srv) -> (String, String, String) {
    let mut arns = Vec::new();
    for (sm, def) in [
        ("dev-orders", PASS.to_string()),
        ("prod-orders", PASS.to_string()),
        (
            "dev-approval",
            json!({"StartAt": "Ask", "States": {"Ask": {"Type": "Task",
                "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                "Parameters": {"MessageBody": {"t.$": "$$.Task.Token"}}, "End": true}}})
            .to_string(),
        ),
    ] {
        let arn = sfn(
            s,
            "CreateStateMachine",
            json!({"name": sm, "definition": def, "roleArn": "arn:aws:iam::000000000000:role/x"}),
        )
        .await["stateMachineArn"]
            .as_str()
            .unwrap()
            .to_string();
        let e = sfn(
            s,
            "StartExecution",
            json!({"stateMachineArn": arn, "name": "e1", "input": "{}"}),
        )
        .await["executionArn"]
            .as_str()
            .unwrap()
            .to_string();
        arns.push(e);
    }
    for e in &arns[..2] {
        for _ in 0..200 {
            if sfn(s, "DescribeExecution", json!({"executionArn": e})).await["status"] != "RUNNING"
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // the waiting execution has registered its token
    let path = format!("/v1/executions/{}/tokens", enc(&arns[2]));
    for _ in 0..200 {
        let (_, v) = v1(s, "admin-secret", "GET", &path, "").await;
        if v["tokens"].as_array().is_some_and(|t| !t.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (arns[0].clone(), arns[1].clone(), arns[2].clone())
}

async fn audit(s: &Srv) -> Vec<Value> {
    let (status, v) = v1(s, "admin-secret", "GET", "/v1/audit?limit=10000", "").await;
    assert_eq!(status, 200, "{v}");
    v["records"].as_array().unwrap().clone()
}

fn audited(records: &[Value], who: &str, action: &str, resource: &str, outcome: &str) -> bool {
    records.iter().any(|r| {
        r["principal"] == who
            && r["action"] == action
            && r["resource"] == resource
            && r["outcome"] == outcome
    })
}

#[tokio::test]
async fn a_read_only_dev_principal_cannot_act_or_see_prod() {
    let s = start().await;
    let (dev_exec, prod_exec, waiting) = executions(&s).await;
    let dev = "dev-secret";

    // what it may not do: 403 AccessDeniedException, nothing done
    let denials = [
        (
            "POST",
            "/v1/dags/dev-pipe/runs".to_string(),
            "{}",
            "dags:TriggerDagRun",
            "weft:dag:dev-pipe".to_string(),
        ),
        (
            "POST",
            "/v1/dags/prod-pipe/runs".to_string(),
            r#"{"conf": {}}"#,
            "dags:TriggerDagRun",
            "weft:dag:prod-pipe".to_string(),
        ),
        (
            "POST",
            "/v1/dags/dev-pipe/runs/manual__x/clear".to_string(),
            r#"{"task": "a"}"#,
            "dags:ClearTaskInstances",
            "weft:dag:dev-pipe".to_string(),
        ),
        (
            "GET",
            "/v1/dags/dev-pipe/runs/manual__x/tasks/a/logs".to_string(),
            "",
            "dags:GetTaskLogs",
            "weft:dag:dev-pipe".to_string(),
        ),
        (
            "GET",
            "/v1/dags/dev-pipe/runs".to_string(),
            "",
            "dags:ListDagRuns",
            "weft:dag:dev-pipe".to_string(),
        ),
        (
            "GET",
            "/v1/dags/dev-pipe/runs/manual__x/gantt".to_string(),
            "",
            "dags:ListDagRuns",
            "weft:dag:dev-pipe".to_string(),
        ),
        (
            "GET",
            "/v1/dags/prod-pipe".to_string(),
            "",
            "dags:GetDag",
            "weft:dag:prod-pipe".to_string(),
        ),
        (
            "GET",
            format!("/v1/executions/{}/tokens", enc(&waiting)),
            "",
            "states:GetExecutionHistory",
            waiting.clone(),
        ),
        (
            "GET",
            "/v1/executions?stateMachine=prod-orders".to_string(),
            "",
            "states:ListExecutions",
            "arn:aws:states:us-east-1:000000000000:stateMachine:prod-orders".to_string(),
        ),
        (
            "GET",
            format!("/v1/executions/{}/events", enc(&prod_exec)),
            "",
            "states:GetExecutionHistory",
            prod_exec.clone(),
        ),
        (
            "GET",
            format!("/v1/executions/{}/tasks", enc(&prod_exec)),
            "",
            "states:GetExecutionHistory",
            prod_exec.clone(),
        ),
        // Describe* is not history: its own execution's events and task logs are not readable
        (
            "GET",
            format!("/v1/executions/{}/events", enc(&dev_exec)),
            "",
            "states:GetExecutionHistory",
            dev_exec.clone(),
        ),
        (
            "GET",
            "/v1/audit".to_string(),
            "",
            "weft:GetAudit",
            "weft:audit".to_string(),
        ),
        (
            "GET",
            "/metrics".to_string(),
            "",
            "weft:GetMetrics",
            "weft:metrics".to_string(),
        ),
    ];
    for (method, path, body, action, _) in &denials {
        let r = v1(&s, dev, method, path, body).await;
        assert_denied(&format!("{method} {path}"), &r, action);
    }
    let (_, runs) = v1(&s, "admin-secret", "GET", "/v1/dags/prod-pipe/runs", "").await;
    assert_eq!(runs["runs"], json!([]), "a denied trigger made no run");
    let (_, runs) = v1(&s, "admin-secret", "GET", "/v1/dags/dev-pipe/runs", "").await;
    assert_eq!(runs["runs"], json!([]));

    // lists keep only what it may see
    let (status, v) = v1(&s, dev, "GET", "/v1/executions", "").await;
    assert_eq!(status, 200, "{v}");
    let names: Vec<&str> = v["executions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["stateMachineName"].as_str().unwrap())
        .collect();
    assert_eq!(v["total"], 2, "{v}");
    assert!(names.iter().all(|n| n.starts_with("dev-")), "{names:?}");
    let (status, v) = v1(&s, dev, "GET", "/v1/executions?stateMachine=dev-orders", "").await;
    assert_eq!((status, v["total"].as_u64()), (200, Some(1)), "{v}");
    let (status, v) = v1(&s, dev, "GET", "/v1/dags", "").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["dags"], json!([]), "{v}");
    assert_eq!(v["errors"], json!([]), "import errors name files: {v}");
    assert_eq!(v["importErrors"], json!([]), "{v}");
    assert_eq!(v["folder"], Value::Null, "{v}");
    let (status, v) = v1(&s, dev, "GET", "/v1/plugins", "").await;
    assert_eq!((status, &v["plugins"]), (200, &json!([])), "{v}");
    let (status, v) = v1(&s, dev, "GET", "/v1/express/logs", "").await;
    assert_eq!((status, &v["records"]), (200, &json!([])), "{v}");

    // every decision is audited: the denials with their action and canonical resource, and
    // the allowed list calls
    let records = audit(&s).await;
    for (method, path, _, action, resource) in &denials {
        assert!(
            audited(&records, "dev", action, resource, "error"),
            "{method} {path}: no audit record of {action} on {resource}"
        );
    }
    for r in records
        .iter()
        .filter(|r| r["principal"] == "dev" && r["outcome"] == "error")
    {
        assert_eq!(r["error"], "AccessDeniedException", "{r}");
    }
    assert!(audited(&records, "dev", "states:ListExecutions", "*", "ok"));
    assert!(audited(
        &records,
        "dev",
        "states:ListExecutions",
        "arn:aws:states:us-east-1:000000000000:stateMachine:dev-orders",
        "ok"
    ));
    assert!(audited(&records, "dev", "dags:ListDags", "*", "ok"));
    assert!(audited(&records, "dev", "plugins:ListPlugins", "*", "ok"));
}

#[tokio::test]
async fn a_dev_operator_acts_on_dev_only() {
    let s = start().await;
    let (dev_exec, prod_exec, waiting) = executions(&s).await;
    let ops = "devops-secret";
    let (status, run) = v1(&s, ops, "POST", "/v1/dags/dev-pipe/runs", "{}").await;
    assert_eq!(status, 200, "{run}");
    assert!(run["runId"].as_str().unwrap().starts_with("manual__"));
    let r = v1(&s, ops, "POST", "/v1/dags/prod-pipe/runs", "{}").await;
    assert_denied("prod trigger", &r, "dags:TriggerDagRun");
    let (status, v) = v1(&s, ops, "GET", "/v1/dags/dev-pipe/runs", "").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["runs"].as_array().unwrap().len(), 1);
    let (status, v) = v1(&s, ops, "GET", "/v1/dags", "").await;
    assert_eq!(status, 200, "{v}");
    let ids: Vec<&str> = v["dags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["dagId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["dev-pipe"], "{v}");
    let (status, v) = v1(&s, ops, "GET", "/v1/dags/dev-pipe", "").await;
    assert_eq!((status, &v["dagId"]), (200, &json!("dev-pipe")), "{v}");

    // tokens: its own approvals, with history and SendTaskSuccess on them
    let (status, v) = v1(
        &s,
        ops,
        "GET",
        &format!("/v1/executions/{}/tokens", enc(&waiting)),
        "",
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["tokens"].as_array().unwrap().len(), 1, "{v}");
    let (status, _) = v1(
        &s,
        ops,
        "GET",
        &format!("/v1/executions/{}/tasks", enc(&dev_exec)),
        "",
    )
    .await;
    assert_eq!(status, 200);
    let r = v1(
        &s,
        ops,
        "GET",
        &format!("/v1/executions/{}/tasks", enc(&prod_exec)),
        "",
    )
    .await;
    assert_denied("prod task logs", &r, "states:GetExecutionHistory");

    // plugins: the ones it may list, and only the users it may see
    let (_, v) = v1(&s, ops, "GET", "/v1/plugins", "").await;
    let names: Vec<&str> = v["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["echo"], "{v}");
    assert_eq!(v["plugins"][0]["dags"], json!(["dev-pipe"]), "{v}");

    let records = audit(&s).await;
    assert!(audited(
        &records,
        "devops",
        "dags:TriggerDagRun",
        "weft:dag:dev-pipe",
        "ok"
    ));
    assert!(audited(
        &records,
        "devops",
        "dags:TriggerDagRun",
        "weft:dag:prod-pipe",
        "error"
    ));
    assert!(audited(
        &records,
        "devops",
        "states:GetExecutionHistory",
        &waiting,
        "ok"
    ));
}

/// A token list needs SendTaskSuccess besides the history: a principal that may read every
/// history but not answer tasks does not get the tokens.
#[tokio::test]
async fn tokens_need_send_task_success() {
    let s = start().await;
    let (_, _, waiting) = executions(&s).await;
    let r = v1(
        &s,
        "notprod-secret",
        "GET",
        &format!("/v1/executions/{}/tokens", enc(&waiting)),
        "",
    )
    .await;
    assert_denied("tokens", &r, "states:SendTaskSuccess");
    let records = audit(&s).await;
    assert!(audited(
        &records,
        "notprod",
        "states:SendTaskSuccess",
        &waiting,
        "error"
    ));
}

/// The resource is authorised in the canonical form the route then reads: an execution ARN
/// spelt with another region and account, or percent-encoded, is still prod's; a DAG id that
/// is a pattern or a path is refused before anything.
#[tokio::test]
async fn resources_are_canonical_before_they_are_authorised() {
    let s = start().await;
    let (_, prod_exec, _) = executions(&s).await;
    let who = "notprod-secret";
    let (status, _) = v1(
        &s,
        who,
        "GET",
        &format!("/v1/executions/{}/tasks", enc(&prod_exec)),
        "",
    )
    .await;
    assert_eq!(status, 403);
    for spelling in [
        prod_exec.replace("us-east-1", "eu-west-1"),
        prod_exec.replace("000000000000", "111111111111"),
        prod_exec.replace("us-east-1:000000000000", "xx:1"),
        prod_exec.replace("arn:aws:", "arn:aws-cn:"),
    ] {
        for path in [
            format!("/v1/executions/{}/tasks", enc(&spelling)),
            format!("/v1/executions/{}/events", enc(&spelling)),
            format!(
                "/v1/executions/{}/tasks",
                spelling.replace(':', "%3a").replace('-', "%2D")
            ),
        ] {
            let r = v1(&s, who, "GET", &path, "").await;
            assert_denied(&path, &r, "states:GetExecutionHistory");
        }
    }
    let records = audit(&s).await;
    assert!(
        records
            .iter()
            .filter(|r| r["principal"] == "notprod" && r["outcome"] == "error")
            .all(|r| r["resource"] == prod_exec),
        "denials are recorded on the canonical ARN"
    );
    for bad in ["dev-%2A", "dev-*", "..%2Fprod-pipe", "dev-pipe%00", "a%3Ab"] {
        let (status, v) = v1(
            &s,
            "devops-secret",
            "POST",
            &format!("/v1/dags/{bad}/runs"),
            "{}",
        )
        .await;
        assert_eq!(status, 400, "{bad}: {v}");
        assert_eq!(v["__type"], "ValidationException", "{bad}: {v}");
    }
    let (status, v) = v1(
        &s,
        "devops-secret",
        "GET",
        "/v1/executions?stateMachine=dev-*",
        "",
    )
    .await;
    assert_eq!(
        (status, v["__type"].as_str()),
        (400, Some("ValidationException")),
        "{v}"
    );
}

/// A SigV4 signature covers the route, query and body it was made for: one made for another
/// route (or for `GET /`, as the routes used to be verified) is refused.
#[tokio::test]
async fn a_signature_is_bound_to_its_route() {
    let s = start().await;
    let date = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    let scope = format!("{}/us-east-1/states/aws4_request", &date[..8]);
    let host = s.addr.to_string();
    let sign = |method: &str, path: &str, query: &str, body: &str| {
        use sha2::Digest;
        // a POST's content type is signed too, as the AWS SDKs do (an unsigned one is refused)
        let mut headers = Vec::new();
        let mut names = Vec::new();
        if method == "POST" {
            headers.push(("content-type".to_string(), "application/json".to_string()));
            names.push("content-type");
        }
        headers.push(("host".to_string(), host.clone()));
        headers.push(("x-amz-date".to_string(), date.clone()));
        names.extend(["host", "x-amz-date"]);
        let hash: String = sha2::Sha256::digest(body.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let sig = weft_server::auth::sign(
            "admin-secret",
            method,
            path,
            query,
            &headers,
            &names,
            &hash,
            &date,
            &scope,
        );
        format!(
            "AWS4-HMAC-SHA256 Credential=ADMIN/{scope}, SignedHeaders={}, Signature={sig}",
            names.join(";")
        )
    };
    let send = |method: &'static str, path: String, auth: String, body: &'static str| {
        let (addr, date) = (s.addr, date.clone());
        async move {
            let mut hs = vec![
                ("X-Amz-Date", date.as_str()),
                ("Authorization", auth.as_str()),
            ];
            if method == "POST" {
                hs.push(("Content-Type", "application/json"));
            }
            common::request(addr, method, &path, &hs, body).await.0
        }
    };
    let ok = sign("GET", "/v1/executions", "limit=5", "");
    assert_eq!(
        send("GET", "/v1/executions?limit=5".into(), ok.clone(), "").await,
        200
    );
    // another query, another route, another method
    assert_eq!(
        send("GET", "/v1/executions?limit=6".into(), ok.clone(), "").await,
        403
    );
    assert_eq!(
        send("GET", "/v1/audit?limit=5".into(), ok.clone(), "").await,
        403
    );
    assert_eq!(
        send("POST", "/v1/dags/dev-pipe/runs?limit=5".into(), ok, "").await,
        403
    );
    // what the routes were verified as before: GET / with an empty body
    let root = sign("GET", "/", "", "");
    assert_eq!(
        send("POST", "/v1/dags/dev-pipe/runs".into(), root.clone(), "{}").await,
        403
    );
    assert_eq!(send("GET", "/v1/plugins".into(), root, "").await, 403);
    // a body other than the one signed
    let post = sign("POST", "/v1/dags/dev-pipe/runs", "", "{}");
    assert_eq!(
        send(
            "POST",
            "/v1/dags/dev-pipe/runs".into(),
            post.clone(),
            r#"{"conf": {"x": 1}}"#
        )
        .await,
        403
    );
    assert_eq!(
        send("POST", "/v1/dags/dev-pipe/runs".into(), post, "{}").await,
        200
    );
}

/// The landing pages' routes: a principal restricted to `dev-*` sees only its own state
/// machines' counts and its own DAGs' runs; nothing of `prod-*` shows, not even its name.
#[tokio::test]
async fn landing_pages_show_a_restricted_principal_only_what_it_may_see() {
    let s = start().await;
    executions(&s).await;
    for id in ["dev-pipe", "prod-pipe"] {
        let (status, v) = v1(
            &s,
            "admin-secret",
            "POST",
            &format!("/v1/dags/{id}/runs"),
            "{}",
        )
        .await;
        assert_eq!(status, 200, "{v}");
    }

    // the administrator sees every state machine with its counts
    let (status, all) = v1(&s, "admin-secret", "GET", "/v1/state-machines/summary", "").await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(all["windowHours"], 24);
    let by_name = |v: &Value| -> HashMap<String, Value> {
        v["stateMachines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["name"].as_str().unwrap().to_string(), m.clone()))
            .collect()
    };
    let m = by_name(&all);
    assert_eq!(m.len(), 3, "{all}");
    assert_eq!(m["prod-orders"]["executions"]["SUCCEEDED"], 1, "{all}");
    assert_eq!(m["dev-orders"]["executions"]["SUCCEEDED"], 1, "{all}");
    assert_eq!(m["dev-approval"]["executions"]["RUNNING"], 1, "{all}");
    assert_eq!(m["dev-approval"]["executions"]["SUCCEEDED"], 0, "{all}");
    assert!(m["dev-orders"]["lastExecutionDate"].as_f64().unwrap() > 0.0);
    assert_eq!(m["dev-orders"]["type"], "STANDARD");

    // dev-* only: its two state machines, with counts; prod's name appears nowhere
    for who in ["dev-secret", "devops-secret"] {
        let (status, v) = v1(&s, who, "GET", "/v1/state-machines/summary", "").await;
        assert_eq!(status, 200, "{v}");
        let m = by_name(&v);
        assert_eq!(
            m.keys().cloned().collect::<std::collections::BTreeSet<_>>(),
            ["dev-approval".to_string(), "dev-orders".to_string()].into(),
            "{who}: {v}"
        );
        assert_eq!(m["dev-approval"]["executions"]["RUNNING"], 1, "{v}");
        assert!(!v.to_string().contains("prod"), "{who}: {v}");
    }
    // may read histories, but neither describe nor list state machines: sees none
    let (status, v) = v1(
        &s,
        "notprod-secret",
        "GET",
        "/v1/state-machines/summary",
        "",
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["stateMachines"], json!([]), "{v}");

    // the DAG list: runs of the DAGs the caller may list and whose runs it may list
    let runs_of = |v: &Value, id: &str| -> Option<Value> {
        v["dags"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["dagId"] == id)
            .map(|d| d["recentRuns"].clone())
    };
    let (status, all) = v1(&s, "admin-secret", "GET", "/v1/dags", "").await;
    assert_eq!(status, 200, "{all}");
    for id in ["dev-pipe", "prod-pipe"] {
        let runs = runs_of(&all, id).unwrap();
        assert_eq!(runs.as_array().unwrap().len(), 1, "{id}: {all}");
        assert_eq!(runs[0]["runType"], "manual", "{all}");
    }
    // the DAG whose file fails to load is listed, marked, with its error for the folder's reader
    let broken = all["dags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["dagId"] == "broken")
        .cloned()
        .unwrap_or_else(|| panic!("the broken DAG is listed: {all}"));
    assert_eq!(broken["importError"], true, "{broken}");
    assert!(
        broken["importErrors"][0]
            .as_str()
            .unwrap()
            .contains("not-installed"),
        "{broken}"
    );
    assert_eq!(runs_of(&all, "dev-pipe").unwrap()[0]["runType"], "manual");
    let (status, v) = v1(&s, "devops-secret", "GET", "/v1/dags", "").await;
    assert_eq!(status, 200, "{v}");
    let ids: Vec<&str> = v["dags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["dagId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["dev-pipe"], "{v}");
    assert_eq!(
        runs_of(&v, "dev-pipe").unwrap().as_array().unwrap().len(),
        1
    );
    let text = v.to_string();
    assert!(
        !text.contains("prod") && !text.contains("broken") && !text.contains("not-installed"),
        "{v}"
    );
    // lists no DAG at all without dags:ListDags
    let (status, v) = v1(&s, "dev-secret", "GET", "/v1/dags", "").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["dags"], json!([]), "{v}");
    assert!(!v.to_string().contains("prod"), "{v}");

    // out-of-range windows and run counts are refused before anything is read
    for path in [
        "/v1/state-machines/summary?hours=100000",
        "/v1/state-machines/summary?hours=0",
        "/v1/dags?runs=1000",
        "/v1/dags?runs=-1",
    ] {
        let (status, v) = v1(&s, "admin-secret", "GET", path, "").await;
        assert_eq!(status, 400, "{path}: {v}");
        assert_eq!(v["__type"], "ValidationException", "{path}: {v}");
    }
}
