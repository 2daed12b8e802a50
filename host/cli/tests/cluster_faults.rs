//! Several `weft server` nodes on one PostgreSQL database, under faults. Three nodes run 1,000
//! Standard executions (a task, a Wait, a task; every tenth waits for a callback answered on
//! another node) started round-robin through all of them, and one node is killed (SIGKILL)
//! mid-run: every execution ends with the right output, every task ran, and a task whose
//! completion was durable at the kill never ran again (the `record-run` plugin leaves one file
//! per real run in a directory the nodes' role grants). And PostgreSQL itself restarted mid-run
//! (a cluster of this test's own, on the same port): the nodes reconnect and go on, and no
//! execution whose start was acknowledged is lost.

mod common;
use common::pg_nodes::*;
use common::*;

use std::collections::HashSet;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The tests of this file take turns (each keeps the machine's two cores busy).
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

const FLOW: &str = RECORDER_FLOW;

/// FLOW with a callback between the Wait and T2.
fn flow_with_callback() -> String {
    let mut v: Value = serde_json::from_str(FLOW).unwrap();
    v["States"]["W"]["Next"] = json!("Ask");
    v["States"]["Ask"] = json!({
        "Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
        "Parameters": {"QueueUrl": "q", "MessageBody": {"token.$": "$$.Task.Token"}},
        "ResultPath": "$.answer", "Next": "T2"
    });
    v.to_string()
}

fn create(port: u16, name: &str, definition: &str) -> String {
    ok(
        port,
        "CreateStateMachine",
        json!({"name": name, "definition": definition, "roleArn": "weft:role:recorder"}),
    )["stateMachineArn"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Answers the callback of `arn` through `port` once it waits for it.
fn answer(port: u16, arn: &str) {
    let end = Instant::now() + Duration::from_secs(180);
    loop {
        let h = ok(port, "GetExecutionHistory", json!({"executionArn": arn}));
        if let Some(token) = callback_token(&h) {
            let (st, v) = call(
                port,
                "SendTaskSuccess",
                &json!({"taskToken": token, "output": "{\"answered\": true}"}),
            );
            if st == 200 {
                return;
            }
            // (the event may be read a moment before its token is stored)
            assert_eq!(v["__type"], "TaskDoesNotExist", "{v}");
        }
        assert!(Instant::now() < end, "{arn} never waited for its callback");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn three_nodes_run_a_thousand_executions_and_survive_a_kill() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some((admin, url, name)) = fresh_database("faults") else {
        return;
    };
    let work = recorder_work();
    let homes: Vec<_> = (0..3)
        .map(|_| recorder_home(&["record-run.wasm"]))
        .collect();
    let mut nodes: Vec<Option<Server>> = homes
        .iter()
        .map(|h| Some(start_node_in(h.path(), work.path(), &url, true)))
        .collect();
    let port = |nodes: &[Option<Server>], i: usize| nodes[i].as_ref().unwrap().port;
    let flow = create(port(&nodes, 0), "flow", FLOW);
    let callback = create(port(&nodes, 1), "callback-flow", &flow_with_callback());

    const N: usize = 1000;
    let mut arns = Vec::new();
    // what was durable the moment node 0 died: taken at once, well inside its lease, before
    // any survivor may adopt (and legitimately re-run) what node 0 had not yet recorded
    let mut durable_at_kill = HashSet::new();
    for i in 0..N {
        let (sm, exec) = if i % 10 == 0 {
            (&callback, format!("cb{i}"))
        } else {
            (&flow, format!("x{i}"))
        };
        // (through node 1 once node 0 is gone)
        let via = if i > N / 2 && i % 3 == 0 { 1 } else { i % 3 };
        let v = ok(
            port(&nodes, via),
            "StartExecution",
            json!({"stateMachineArn": sm, "name": exec, "input": format!("{{\"n\": {i}}}")}),
        );
        arns.push((i, exec, v["executionArn"].as_str().unwrap().to_string()));
        if i == N / 2 {
            // node 0 dies mid-run; what was durable then must not run again
            nodes[0].take().unwrap().kill9();
            durable_at_kill =
                durably_completed_tasks(
                    &url,
                    |name| if name.starts_with("cb") { "/3." } else { "/2." },
                );
        }
    }

    for (i, exec, arn) in &arns {
        if exec.starts_with("cb") {
            answer(port(&nodes, 1 + i % 2), arn);
        }
    }
    for (i, exec, arn) in &arns {
        let d = wait_done(port(&nodes, 1 + i % 2), arn);
        assert_eq!(d["status"], "SUCCEEDED", "{exec}: {d}");
        let out: Value = serde_json::from_str(d["output"].as_str().unwrap()).unwrap();
        assert_eq!(out, json!({"n": i, "ok": true}), "{exec}");
    }
    let runs = recorded_runs(work.path());
    for (_, exec, _) in &arns {
        for t in ["t1", "t2"] {
            let id = format!("{exec}-{t}");
            let n = runs.get(&id).copied().unwrap_or(0);
            assert!(n >= 1, "{id} never ran");
            if durable_at_kill.contains(&id) {
                assert_eq!(n, 1, "{id} was complete on disk at the kill and ran again");
            }
        }
    }
    // the dead node's unfinished executions were adopted (a new fencing epoch each)
    let adopted: usize = psql(&url, "SELECT count(*) FROM sfn_executions WHERE epoch > 1")
        .parse()
        .unwrap();
    assert!(adopted > 0, "no execution was adopted from the killed node");
    assert_eq!(
        psql(
            &url,
            "SELECT count(*) FROM sfn_executions WHERE status = 'RUNNING'"
        ),
        "0"
    );
    drop(nodes);
    psql(
        &admin,
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    );
}

/// A PostgreSQL cluster of this test alone (it is restarted), stopped when the test process
/// ends: (its state directory, URL).
fn private_cluster() -> Option<(std::path::PathBuf, String)> {
    let state = std::env::temp_dir().join(format!("weft-pg-restart-{}", std::process::id()));
    let url = start_pg_cluster(&state)?;
    Some((state, url))
}

#[test]
fn nodes_go_on_after_postgresql_restarts() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some((state, url)) = private_cluster() else {
        return;
    };
    let work = recorder_work();
    let homes: Vec<_> = (0..2)
        .map(|_| recorder_home(&["record-run.wasm"]))
        .collect();
    let nodes: Vec<Server> = homes
        .iter()
        .map(|h| start_node_in(h.path(), work.path(), &url, true))
        .collect();
    let flow = create(nodes[0].port, "flow", FLOW);
    let mut acknowledged = Vec::new();
    for i in 0..200 {
        if i == 100 {
            let st = Command::new("bash")
                .arg(repo().join("scripts/pg.sh"))
                .arg("restart")
                .env("WEFT_PG_STATE", &state)
                .status()
                .unwrap();
            assert!(st.success(), "the cluster did not restart");
        }
        // a start refused while the database is away was not acknowledged: nothing to keep
        let (st, v) = call(
            nodes[i % 2].port,
            "StartExecution",
            &json!({"stateMachineArn": flow, "name": format!("x{i}"), "input": format!("{{\"n\": {i}}}")}),
        );
        if st == 200 {
            acknowledged.push((i, v["executionArn"].as_str().unwrap().to_string()));
        }
    }
    assert!(
        acknowledged.len() >= 150,
        "{} of 200 starts acknowledged",
        acknowledged.len()
    );
    for (i, arn) in &acknowledged {
        let d = wait_done(nodes[i % 2].port, arn);
        assert_eq!(d["status"], "SUCCEEDED", "{arn}: {d}");
        let out: Value = serde_json::from_str(d["output"].as_str().unwrap()).unwrap();
        assert_eq!(out, json!({"n": i, "ok": true}));
    }
}
