//! Map Runs over the Step Functions API: a Distributed Map in a Standard execution is listed by
//! `ListMapRuns` (paged), described by `DescribeMapRun` with its item counts, and
//! `UpdateMapRun` changes its limits; each action is authorised on its own resource (the Map
//! Run's ARN, or the execution's for `ListMapRuns`).

use serde_json::{json, Value};
use std::collections::HashMap;
use weft_server::auth::Tokens;

mod common;

use common::{principal, sfn_call as call, sfn_ok as ok, start_with, Server};

async fn err(s: &Server, who: &str, action: &str, body: Value) -> String {
    let (st, v) = call(s, who, action, body).await;
    assert_eq!(st, 400, "{action}: {v}");
    v["__type"].as_str().unwrap_or("").to_string()
}

/// admin: everything. viewer: describes and lists the `rows` machine's executions and Map
/// Runs, but may not update a Map Run.
fn tokens() -> Tokens {
    let viewer = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["states:Describe*", "states:List*"], "Resource": [
            "arn:aws:states:*:*:stateMachine:rows",
            "arn:aws:states:*:*:execution:rows:*",
            "arn:aws:states:*:*:mapRun:rows/*"]}
    ]});
    Tokens(HashMap::from([
        principal("admin", "admin", None),
        principal("viewer", "viewer", Some(viewer)),
    ]))
}

async fn wait_done(s: &Server, arn: &str) -> Value {
    loop {
        let v = ok(
            s,
            "admin",
            "DescribeExecution",
            json!({"executionArn": arn}),
        )
        .await;
        if v["status"] != "RUNNING" {
            return v;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn map_runs_are_listed_described_updated_and_authorised() {
    let s = start_with(Some(tokens()), 10).await;
    let def = json!({"StartAt": "First", "States": {
        "First": {"Type": "Map", "Label": "First", "ItemsPath": "$.items", "ResultPath": null,
            "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                "StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}},
            "Next": "Second"},
        "Second": {"Type": "Map", "ItemsPath": "$.items", "ToleratedFailureCount": 1,
            "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                "StartAt": "C", "States": {
                    "C": {"Type": "Choice", "Choices": [{"Variable": "$", "NumericEquals": 2, "Next": "F"}], "Default": "P"},
                    "F": {"Type": "Fail", "Error": "Two"},
                    "P": {"Type": "Pass", "End": true}}},
            "End": true}}});
    let sm = ok(
        &s,
        "admin",
        "CreateStateMachine",
        json!({"name": "rows", "definition": def.to_string(),
            "roleArn": "arn:aws:iam::000000000000:role/weft-execution"}),
    )
    .await["stateMachineArn"]
        .as_str()
        .unwrap()
        .to_string();
    let exec = ok(
        &s,
        "admin",
        "StartExecution",
        json!({"stateMachineArn": sm, "name": "e1", "input": "{\"items\": [1, 2, 3]}"}),
    )
    .await["executionArn"]
        .as_str()
        .unwrap()
        .to_string();
    let done = wait_done(&s, &exec).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done}");

    // both Map Runs, in order, one page at a time
    let page = ok(
        &s,
        "viewer",
        "ListMapRuns",
        json!({"executionArn": exec, "maxResults": 1}),
    )
    .await;
    let runs = page["mapRuns"].as_array().unwrap();
    assert_eq!(runs.len(), 1);
    let first = runs[0]["mapRunArn"].as_str().unwrap().to_string();
    assert!(
        first.starts_with("arn:aws:states:us-east-1:000000000000:mapRun:rows/First:"),
        "{first}"
    );
    assert_eq!(runs[0]["executionArn"], exec);
    assert_eq!(runs[0]["stateMachineArn"], sm);
    assert!(runs[0]["stopDate"].is_number());
    let token = page["nextToken"].as_str().unwrap();
    let page = ok(
        &s,
        "viewer",
        "ListMapRuns",
        json!({"executionArn": exec, "maxResults": 1, "nextToken": token}),
    )
    .await;
    let second = page["mapRuns"][0]["mapRunArn"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(second.contains(":mapRun:rows/e1:"), "{second}");
    assert!(page.get("nextToken").is_none());

    // counts by status
    let d = ok(&s, "viewer", "DescribeMapRun", json!({"mapRunArn": second})).await;
    assert_eq!(d["status"], "SUCCEEDED");
    assert_eq!(d["executionArn"], exec);
    let c = &d["itemCounts"];
    assert_eq!(
        (
            c["total"].clone(),
            c["succeeded"].clone(),
            c["failed"].clone(),
            c["pending"].clone(),
            c["running"].clone()
        ),
        (json!(3), json!(2), json!(1), json!(0), json!(0)),
        "{d}"
    );
    assert_eq!(d["executionCounts"]["total"], 3);
    assert_eq!(c["resultsWritten"], 0, "nothing was exported: {d}");
    // before any UpdateMapRun, the limits are the Map state's own
    assert_eq!(
        (
            d["toleratedFailureCount"].clone(),
            d["maxConcurrency"].clone()
        ),
        (json!(1), json!(0)),
        "{d}"
    );

    // limits: updated by someone allowed to, refused to a viewer
    ok(
        &s,
        "admin",
        "UpdateMapRun",
        json!({"mapRunArn": second, "maxConcurrency": 2, "toleratedFailurePercentage": 50.0}),
    )
    .await;
    let d = ok(&s, "admin", "DescribeMapRun", json!({"mapRunArn": second})).await;
    assert_eq!(d["maxConcurrency"], 2);
    assert_eq!(d["toleratedFailurePercentage"], 50.0);
    assert_eq!(
        err(
            &s,
            "viewer",
            "UpdateMapRun",
            json!({"mapRunArn": second, "maxConcurrency": 1})
        )
        .await,
        "AccessDeniedException"
    );
    assert_eq!(
        err(
            &s,
            "admin",
            "UpdateMapRun",
            json!({"mapRunArn": second, "maxConcurrency": -1})
        )
        .await,
        "ValidationException"
    );
    assert_eq!(
        err(&s, "admin", "UpdateMapRun", json!({"mapRunArn": second})).await,
        "ValidationException"
    );
    // unknown and malformed Map Run ARNs
    let unknown = "arn:aws:states:us-east-1:000000000000:mapRun:rows/First:00000000-0000-0000-0000-000000000000";
    assert_eq!(
        err(&s, "admin", "DescribeMapRun", json!({"mapRunArn": unknown})).await,
        "ResourceNotFound"
    );
    for bad in [
        "arn:aws:states:us-east-1:000000000000:execution:rows:e1",
        "arn:aws:states:eu-west-1:000000000000:mapRun:rows/First:x",
        "arn:aws:states:us-east-1:000000000000:mapRun:rows/../x:y",
    ] {
        assert_eq!(
            err(&s, "admin", "DescribeMapRun", json!({"mapRunArn": bad})).await,
            "InvalidArn",
            "{bad}"
        );
    }
    // another machine's Map Runs and executions are not the viewer's
    let other = first.replace(":mapRun:rows/", ":mapRun:other/");
    assert_eq!(
        err(&s, "viewer", "DescribeMapRun", json!({"mapRunArn": other})).await,
        "AccessDeniedException"
    );
    assert_eq!(
        err(
            &s,
            "viewer",
            "ListMapRuns",
            json!({"executionArn": exec.replace(":rows:", ":other:")})
        )
        .await,
        "AccessDeniedException"
    );
}
