//! Resource maps through the real `weft` binary: `weft validate` names every unmapped AWS
//! service integration with its JSON pointer and the map entry that would serve it; `weft
//! run` uses the map beside the definition (before `$WEFT_HOME`'s) under the execution role;
//! a hostile map file is refused with its file and line.

mod common;
use common::*;

fn orders() -> String {
    serde_json::json!({"StartAt": "Save", "States": {
        "Save": {"Type": "Task", "Resource": "arn:aws:states:::dynamodb:putItem",
                 "Parameters": {"TableName": "Orders", "Item": {"id": {"S.$": "$.id"}}},
                 "ResultPath": "$.saved", "Next": "Ask"},
        "Ask": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                "Parameters": {"QueueUrl": "q", "MessageBody": {"t.$": "$$.Task.Token"}},
                "TimeoutSeconds": 1, "End": true}}})
    .to_string()
}

#[test]
fn validate_names_unmapped_integrations_and_the_entry_that_would_serve_them() {
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let def = work.path().join("orders.asl.json");
    std::fs::write(&def, orders()).unwrap();
    let o = weft(home.path(), &["validate", def.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains(
            "/States/Save/Resource: error: the integration dynamodb:putItem is not mapped"
        ) && err.contains("dynamodb:putItem: {plugin: <plugin>}"),
        "{err}"
    );
    assert!(
        err.contains(
            "/States/Ask/Resource: warning: the integration sqs:sendMessage.waitForTaskToken"
        ) && err.contains("sqs:sendMessage.waitForTaskToken: {plugin: <plugin>}"),
        "{err}"
    );
    // for mocked runs they are warnings
    let o = weft(
        home.path(),
        &["validate", "--allow-unmapped", def.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // the map beside the definition serves Save
    std::fs::write(
        work.path().join("orders.resource-map.yaml"),
        "dynamodb:putItem: {plugin: echo}\n",
    )
    .unwrap();
    let o = weft(home.path(), &["validate", def.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("/States/Ask/Resource: warning"),
        "{}",
        stderr(&o)
    );
    // (the plugin it names is not installed in this home)
    assert!(
        stderr(&o).contains(
            "/States/Save/Resource: warning: the integration dynamodb:putItem maps to plugin `echo`"
        ) && stderr(&o).contains("orders.resource-map.yaml:1"),
        "{}",
        stderr(&o)
    );
    // a hostile map in the folder is refused with its file and line, even when a more
    // specific one exists
    std::fs::write(
        work.path().join("resource-map.yaml"),
        "sqs:*: {plugin: echo}\nhttp:invoke: {plugin: echo}\n",
    )
    .unwrap();
    let o = weft(home.path(), &["validate", def.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("resource-map.yaml:2: `http:invoke`"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn run_calls_the_mapped_plugin_under_the_execution_role() {
    let home = tempfile::tempdir().unwrap();
    let o = weft(
        home.path(),
        &["plugin", "install", plugin("echo.wasm").to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::create_dir_all(home.path().join("roles")).unwrap();
    std::fs::write(
        home.path().join("roles/writer.json"),
        r#"{"Statement": [{"Effect": "Allow", "Action": "dynamodb:PutItem", "Resource": "arn:aws:states:::dynamodb:*"}]}"#,
    )
    .unwrap();
    std::fs::write(
        home.path().join("resource-map.yaml"),
        "dynamodb:*: {plugin: not-installed}\n",
    )
    .unwrap();
    let work = tempfile::tempdir().unwrap();
    let def = work.path().join("save.asl.json");
    std::fs::write(
        &def,
        serde_json::json!({"StartAt": "Save", "States": {"Save": {"Type": "Task",
            "Resource": "arn:aws:states:::dynamodb:putItem",
            "Parameters": {"TableName": "Orders", "Item": {"id": {"S.$": "$.id"}}}, "End": true}}})
        .to_string(),
    )
    .unwrap();
    let run = |role: Option<&str>| {
        let mut args = vec!["run", def.to_str().unwrap(), "--input", r#"{"id":"o-7"}"#];
        if let Some(r) = role {
            args.extend(["--role", r]);
        }
        weft(home.path(), &args)
    };
    // $WEFT_HOME's map names a plugin that is not installed
    let o = run(Some("writer"));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stdout(&o).contains("Weft.PluginNotFound"), "{}", stdout(&o));
    // the map beside the definition comes first
    std::fs::write(
        work.path().join("resource-map.json"),
        r#"{"dynamodb:putItem": {"plugin": "echo"}}"#,
    )
    .unwrap();
    let o = run(Some("writer"));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(out["integration"], "dynamodb:putItem");
    assert_eq!(
        out["request"],
        serde_json::json!({"TableName": "Orders", "Item": {"id": {"S": "o-7"}}})
    );
    // no role: the integration is not allowed
    let o = run(None);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("Sandbox.PermissionDenied") && stdout(&o).contains("dynamodb:PutItem"),
        "{}",
        stdout(&o)
    );
}

fn sm_resource_map_sets_reads_and_deletes_a_state_machines_map(backend: &Backend) {
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let s = start_weft_server_on(backend, home.path(), work.path(), true, &[]);
    let ep = format!("http://127.0.0.1:{}", s.port);
    let def = work.path().join("orders.asl.json");
    std::fs::write(&def, orders()).unwrap();
    let sm = |args: &[&str]| {
        let mut all = vec!["sm", "--endpoint", &ep];
        all.extend_from_slice(args);
        weft(home.path(), &all)
    };
    let o = sm(&["create", "orders", def.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    // a bad map file is refused here, with its line, before anything is sent
    let bad = work.path().join("bad.yaml");
    std::fs::write(&bad, "sqs:*: {plugin: echo}\nlambda:invoke: {plugin: x}\n").unwrap();
    let o = sm(&["resource-map", "orders", "--set", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("bad.yaml:2"), "{}", stderr(&o));
    let good = work.path().join("good.yaml");
    std::fs::write(&good, "dynamodb:putItem: {plugin: echo}\n").unwrap();
    let o = sm(&["resource-map", "orders", "--set", good.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["unmapped"].as_array().map(Vec::len), Some(1), "{v}");
    let o = sm(&["resource-map", "orders"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        v["resourceMap"],
        serde_json::json!({"dynamodb:putItem": {"plugin": "echo"}})
    );
    let o = sm(&["resource-map", "orders", "--delete"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = sm(&["resource-map", "orders"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["resourceMap"], serde_json::json!({}));
}
on_both_backends!(sm_resource_map_sets_reads_and_deletes_a_state_machines_map);
