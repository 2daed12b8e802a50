//! AWS service integrations served by plugins through a resource map, end to end: a SAM-style
//! definition (DynamoDB PutItem, SNS Publish, a Glue job run to completion with start + poll,
//! an SDK S3 GetObject) run by the interpreter with real guests (`echo` answers with the
//! envelope it received; `job-sim` simulates a job), and the attacker's side: unmapped
//! integrations, a role that does not allow the integration, a digest that differs.
//!
//! Needs `job-sim.wasm` beside the other built guests (`make guests`, or `WEFT_PLUGINS_DIR`).

mod common;

use common::*;
use serde_json::{json, Value};
use std::sync::{Arc, OnceLock};
use std::time::Instant;
use weft_engine::asl_tasks::SandboxTaskRunner;
use weft_engine::resource_map::{Integration, ResourceMap, ResourceMaps};
use weft_engine::{PluginHost, Roles};
use weft_sandbox::{Policy, Sandbox, SandboxConfig};

fn host() -> &'static PluginHost {
    static HOST: OnceLock<PluginHost> = OnceLock::new();
    HOST.get_or_init(|| {
        let home = repo_root().join("target").join("test-home-resource-map");
        let store = Arc::new(weft_store::PluginStore::open(&home).unwrap());
        let sandbox = Arc::new(Sandbox::new(&SandboxConfig::default()).unwrap());
        let host = PluginHost::new(store, sandbox).unwrap();
        for rel in ["echo.wasm", "job-sim.wasm"] {
            let opts = weft_plugins::InstallOptions { force: true };
            weft_plugins::install_path(&host.store, &component(rel), &opts).unwrap();
        }
        host
    })
}

const MAP: &str = r#"
# the integrations of the order workflow
dynamodb:putItem: {plugin: echo}
sns:*: {plugin: echo}
glue:startJobRun.sync: {plugin: job-sim, mode: start_poll, poll_action: getJobRun, poll_interval: 0.01}
aws-sdk:s3:getObject: {plugin: echo@0.1.0}
"#;

const ROLE: &str = r#"{"Statement": [{"Effect": "Allow", "Resource": "*",
    "Action": ["dynamodb:PutItem", "sns:Publish", "glue:StartJobRun", "s3:GetObject"]}]}"#;

/// An AWS SAM-style order workflow.
fn definition() -> Value {
    json!({"StartAt": "Save", "States": {
        "Save": {"Type": "Task", "Resource": "arn:aws:states:::dynamodb:putItem",
                 "Parameters": {"TableName": "Orders", "Item": {"id": {"S.$": "$.id"}}},
                 "ResultPath": "$.saved", "Next": "Notify"},
        "Notify": {"Type": "Task", "Resource": "arn:aws:states:::sns:publish",
                   "Parameters": {"TopicArn": "arn:aws:sns:us-east-1:123456789012:orders", "Message.$": "$.id"},
                   "ResultPath": "$.notified", "Next": "Job"},
        "Job": {"Type": "Task", "Resource": "arn:aws:states:::glue:startJobRun.sync",
                "Parameters": {"JobName": "nightly", "PollsUntilDone": 3},
                "TimeoutSeconds": 60, "ResultPath": "$.job", "Next": "Fetch"},
        "Fetch": {"Type": "Task", "Resource": "arn:aws:states:us-east-1:123456789012:aws-sdk:s3:getObject",
                  "Parameters": {"Bucket": "reports", "Key": "latest.json"},
                  "ResultPath": "$.fetched", "End": true}}})
}

fn maps(text: &str) -> ResourceMaps {
    ResourceMaps::new(vec![Arc::new(
        ResourceMap::parse(text, "test-map.yaml").unwrap(),
    )])
}

fn run(
    def: &Value,
    map: &str,
    role: Option<&str>,
    input: Value,
) -> Result<Value, (String, String)> {
    let roles = Roles::new(Vec::new());
    let role = role.map(|r| Arc::new(Policy::parse(r).unwrap()));
    let mut runner = SandboxTaskRunner::new(host(), &roles, role, std::env::temp_dir());
    runner.resource_maps = maps(map);
    let sm = weft_asl::parse(&def.to_string()).unwrap();
    weft_asl::run_express(
        &sm,
        input,
        &weft_asl::RunOptions::default(),
        &runner,
        &weft_asl::SystemClock,
        weft_asl::Hooks::default(),
    )
    .map_err(|e| (e.error.clone(), e.cause.clone().unwrap_or_default()))
}

#[test]
fn a_sam_order_workflow_runs_on_mapped_plugins() {
    let out = run(&definition(), MAP, Some(ROLE), json!({"id": "o-1"})).unwrap();
    // echo answers with the envelope: the integration's name and AWS's request payload
    assert_eq!(
        out["saved"],
        json!({"integration": "dynamodb:putItem", "service": "dynamodb", "action": "putItem",
               "pattern": "request_response", "phase": "call",
               "resource": "arn:aws:states:::dynamodb:putItem",
               "request": {"TableName": "Orders", "Item": {"id": {"S": "o-1"}}}})
    );
    assert_eq!(out["notified"]["integration"], "sns:publish");
    assert_eq!(out["notified"]["request"]["Message"], "o-1");
    // the job ran to completion: started once, polled until SUCCEEDED on the third poll
    assert_eq!(
        out["job"],
        json!({"JobRunId": "jr_nightly", "JobRunState": "SUCCEEDED", "Polls": 3})
    );
    assert_eq!(out["fetched"]["integration"], "aws-sdk:s3:getObject");
    assert_eq!(out["fetched"]["service"], "aws-sdk:s3");
    assert_eq!(
        out["fetched"]["request"],
        json!({"Bucket": "reports", "Key": "latest.json"})
    );
}

/// A `.waitForTaskToken` integration hands its plugin `$$.Task.Token` (the interpreter alone,
/// without a callback channel, takes the plugin's answer).
#[test]
fn a_callback_integration_hands_the_plugin_its_token() {
    let def = json!({"StartAt": "Ask", "States": {"Ask": {"Type": "Task",
        "Resource": "arn:aws:states:::sns:publish.waitForTaskToken",
        "Parameters": {"Message": {"token.$": "$$.Task.Token"}}, "End": true}}});
    let out = run(&def, MAP, Some(ROLE), json!({})).unwrap();
    assert_eq!(out["pattern"], "waitForTaskToken");
    let token = out["taskToken"].as_str().unwrap();
    assert!(!token.is_empty());
    assert_eq!(out["request"]["Message"]["token"], token);
}

#[test]
fn a_failed_or_endless_job_fails_the_task() {
    let job = |params: Value, timeout: u64| {
        json!({"StartAt": "Job", "States": {"Job": {"Type": "Task",
            "Resource": "arn:aws:states:::glue:startJobRun.sync", "Parameters": params,
            "TimeoutSeconds": timeout, "End": true}}})
    };
    let (e, c) = run(
        &job(json!({"JobName": "bad", "Fail": true}), 60),
        MAP,
        Some(ROLE),
        json!({}),
    )
    .unwrap_err();
    assert_eq!(e, "Glue.JobRunFailed", "{c}");
    assert!(c.contains("jr_bad"), "{c}");
    let (e, c) = run(
        &job(json!({"JobName": "forever", "PollsUntilDone": u32::MAX}), 1),
        MAP,
        Some(ROLE),
        json!({}),
    )
    .unwrap_err();
    assert_eq!(e, "States.Timeout", "{c}");
    // a poll plugin that breaks the protocol (echo answers without a status)
    let broken = "glue:startJobRun.sync: {plugin: echo, mode: start_poll, poll_interval: 0.01}";
    let (e, c) = run(&job(json!({}), 60), broken, Some(ROLE), json!({})).unwrap_err();
    assert_eq!(e, "Weft.IntegrationProtocol", "{c}");
    assert!(c.contains("test-map.yaml:1"), "{c}");
    // in call mode the plugin's answer is the job's result
    let call = "glue:startJobRun.sync: {plugin: job-sim}";
    let out = run(
        &job(json!({"JobName": "j"}), 60),
        call,
        Some(ROLE),
        json!({}),
    )
    .unwrap();
    assert_eq!(out["JobRunId"], "jr_j");
}

#[test]
fn an_unmapped_integration_fails_with_the_entry_it_needs() {
    let (e, c) = run(
        &definition(),
        "sns:*: {plugin: echo}",
        Some(ROLE),
        json!({"id": "x"}),
    )
    .unwrap_err();
    assert_eq!(e, "Weft.IntegrationNotMapped");
    assert!(c.contains("state 'Save'"), "{c}");
    assert!(c.contains("dynamodb:putItem: {plugin: <plugin>}"), "{c}");
}

/// The map never widens a grant: the execution role must allow the integration's action.
#[test]
fn the_execution_role_decides_every_integration_call() {
    let (e, c) = run(&definition(), MAP, None, json!({"id": "x"})).unwrap_err();
    assert_eq!(e, "Sandbox.PermissionDenied");
    assert!(
        c.contains("dynamodb:PutItem") && c.contains("no execution role"),
        "{c}"
    );
    let only_sns =
        r#"{"Statement": [{"Effect": "Allow", "Action": "sns:Publish", "Resource": "*"}]}"#;
    let (e, c) = run(&definition(), MAP, Some(only_sns), json!({"id": "x"})).unwrap_err();
    assert_eq!(e, "Sandbox.PermissionDenied", "{c}");
    assert!(c.contains("arn:aws:states:::dynamodb:putItem"), "{c}");
    let deny = r#"{"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Effect": "Deny", "Action": "dynamodb:*", "Resource": "arn:aws:states:::dynamodb:*"}]}"#;
    let (e, _) = run(&definition(), MAP, Some(deny), json!({"id": "x"})).unwrap_err();
    assert_eq!(e, "Sandbox.PermissionDenied");
}

/// A map entry pinning a digest runs exactly that build or nothing.
#[test]
fn a_digest_that_differs_runs_nothing() {
    let echo = host()
        .resolve(&weft_engine::PluginRef::parse("echo").unwrap())
        .unwrap();
    let pinned = format!(
        "dynamodb:putItem: {{plugin: 'echo#{}'}}",
        echo.digest.to_hex()
    );
    let def = json!({"StartAt": "Save", "States": {"Save": {"Type": "Task",
        "Resource": "arn:aws:states:::dynamodb:putItem", "Parameters": {"TableName": "T"}, "End": true}}});
    let out = run(&def, &pinned, Some(ROLE), json!({})).unwrap();
    assert_eq!(out["integration"], "dynamodb:putItem");
    let other = format!("dynamodb:putItem: {{plugin: 'echo#{}'}}", "0".repeat(64));
    let (e, c) = run(&def, &other, Some(ROLE), json!({})).unwrap_err();
    assert_eq!(e, "Weft.PluginNotFound", "{c}");
    // a job-sim build under echo's name is not echo
    let jobsim = host()
        .resolve(&weft_engine::PluginRef::parse("job-sim").unwrap())
        .unwrap();
    let swapped = format!(
        "dynamodb:putItem: {{plugin: 'echo#{}'}}",
        jobsim.digest.to_hex()
    );
    let (e, _) = run(&def, &swapped, Some(ROLE), json!({})).unwrap_err();
    assert_eq!(e, "Weft.PluginNotFound");
}

/// Figures (no assertion on time): what resolving a Task through the map costs, alone and per
/// task against naming the plugin directly. `cargo test --test resource_map -- --nocapture figure`
#[test]
fn figure_map_resolution_overhead() {
    let map: String = (0..200)
        .map(|i| format!("svc{i}:act: {{plugin: echo}}\n"))
        .chain([MAP.to_string()])
        .collect();
    let maps = maps(&map);
    let r = weft_asl::resource::Resource::parse("arn:aws:states:::sns:publish").unwrap();
    let n = 100_000u32;
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(maps.resolve(std::hint::black_box(&r)));
    }
    let lookup = t.elapsed() / n;
    assert!(Integration::of(&r).is_some());
    let chain = |resource: &str| {
        let mut states = serde_json::Map::new();
        for i in 0..20 {
            let mut st = json!({"Type": "Task", "Resource": resource, "Parameters": {"n": i}});
            if i == 19 {
                st["End"] = json!(true);
            } else {
                st["Next"] = json!(format!("T{}", i + 1));
            }
            states.insert(format!("T{i}"), st);
        }
        json!({"StartAt": "T0", "States": states})
    };
    let time = |def: &Value| {
        run(def, &map, Some(ROLE), json!({})).unwrap();
        let t = Instant::now();
        for _ in 0..10 {
            run(def, &map, Some(ROLE), json!({})).unwrap();
        }
        t.elapsed() / 200
    };
    let direct = time(&chain("weft:plugin:echo"));
    let mapped = time(&chain("arn:aws:states:::sns:publish"));
    eprintln!(
        "figure: map lookup (205 entries, wildcard hit) {lookup:?}; per task: weft:plugin:echo {direct:?}, sns:publish mapped to echo {mapped:?} (includes the role decision and the envelope)"
    );
}
