//! `weft server --db postgres://...` (and `WEFT_DB`): a node whose Step Functions state lives
//! entirely in PostgreSQL. A Standard execution (Task -> Wait -> Task) runs to SUCCEEDED; a
//! second one is killed (SIGKILL) in its Wait and finishes after a restart on a *fresh*
//! `$WEFT_HOME` (only the plugin installed again), so everything the restart needs — the
//! state machine, the execution record, its history and journal — came from the database;
//! DescribeExecution and GetExecutionHistory answer the same after the restart; the sled
//! store of the first node holds no execution. Several nodes share one database: executions
//! started round-robin through three nodes, one of them killed mid-run, all end right, and
//! callbacks answered on any node wake the node that owns the execution; a node stopped
//! (SIGSTOP) past its lease writes nothing once it runs again; an activity task queued on one
//! node is handed out by another; every node serves the access keys kept in the database.
//! The cluster is `$WEFT_TEST_PG`, or one `scripts/pg.sh` starts for this test process
//! (skipped loudly without PostgreSQL unless `WEFT_REQUIRE_PG=1`).

mod common;
use common::pg_nodes::*;
use common::*;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const DEFINITION: &str = r#"{
  "StartAt": "T1",
  "States": {
    "T1": {"Type": "Task", "Resource": "weft:plugin:echo", "ResultPath": "$.t1", "Next": "W"},
    "W": {"Type": "Wait", "SecondsPath": "$.wait", "Next": "T2"},
    "T2": {"Type": "Task", "Resource": "weft:plugin:echo", "ResultPath": "$.t2", "End": true}
  }
}"#;

#[test]
fn standard_executions_run_on_postgres_and_survive_a_restart() {
    let Some(admin) = pg_cluster() else { return };
    // (a name made here from digits: identifiers cannot be bound parameters)
    let name = format!("weft_srv_{}", std::process::id());
    psql(&admin, &format!("DROP DATABASE IF EXISTS {name}"));
    psql(&admin, &format!("CREATE DATABASE {name}"));
    let url = format!("{}/{name}", admin.rsplit_once('/').unwrap().0);

    let first = tempfile::tempdir().unwrap();
    home_with_echo(first.path());
    let s = start(first.path(), &url);
    let sm = create_state_machine(s.port, "pg-flow", DEFINITION);
    let quick = start_execution(s.port, &sm, "quick", "{\"wait\": 1}");
    let d = wait_done(s.port, &quick);
    assert_eq!(d["status"], "SUCCEEDED", "{d}");
    let out: Value = serde_json::from_str(d["output"].as_str().unwrap()).unwrap();
    assert_eq!(out["wait"], 1);
    assert!(out.get("t2").is_some(), "{out}");
    let quick_history = event_types(s.port, &quick);
    assert_eq!(quick_history.first().unwrap(), "ExecutionStarted");
    assert_eq!(quick_history.last().unwrap(), "ExecutionSucceeded");
    assert!(quick_history.iter().any(|t| t == "WaitStateEntered"));

    // a second node on the same database serves it too: any node answers any call
    let other_home = tempfile::tempdir().unwrap();
    home_with_echo(other_home.path());
    let other = start(other_home.path(), &url);
    let d = ok(
        other.port,
        "DescribeExecution",
        json!({"executionArn": quick}),
    );
    assert_eq!(d["status"], "SUCCEEDED", "{d}");
    drop(other);

    // a second execution, killed with the node while it waits
    let slow = start_execution(s.port, &sm, "slow", "{\"wait\": 3}");
    let end = Instant::now() + Duration::from_secs(120);
    while !event_types(s.port, &slow)
        .iter()
        .any(|t| t == "WaitStateEntered")
    {
        assert!(Instant::now() < end, "the execution never reached its Wait");
        std::thread::sleep(Duration::from_millis(20));
    }
    s.kill9();

    // nothing of the executions went to the first node's sled store
    {
        let db = sled::open(first.path().join("db")).unwrap();
        assert_eq!(db.open_tree("sfn_executions").unwrap().len(), 0);
        assert_eq!(db.open_tree("sfn_history").unwrap().len(), 0);
    }
    assert_eq!(
        psql(&url, "SELECT count(*) FROM sfn_executions"),
        "2",
        "both executions are rows of PostgreSQL"
    );

    // a node on a fresh home finds everything in the database and finishes the execution
    let second = tempfile::tempdir().unwrap();
    home_with_echo(second.path());
    let s = start(second.path(), &url);
    let d = wait_done(s.port, &slow);
    assert_eq!(d["status"], "SUCCEEDED", "{d}");
    let types = event_types(s.port, &slow);
    assert_eq!(types.last().unwrap(), "ExecutionSucceeded", "{types:?}");
    assert_eq!(
        types.iter().filter(|t| *t == "ExecutionStarted").count(),
        1,
        "the restart resumed the execution, it did not start it again: {types:?}"
    );
    assert_eq!(event_types(s.port, &quick), quick_history);
    let d = ok(s.port, "DescribeExecution", json!({"executionArn": quick}));
    assert_eq!(d["status"], "SUCCEEDED");
    let listed = ok(s.port, "ListExecutions", json!({"stateMachineArn": sm}));
    assert_eq!(
        listed["executions"].as_array().unwrap().len(),
        2,
        "{listed}"
    );
    drop(s);
    psql(
        &admin,
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    );
}

/// A Task, a Wait, a callback answered from outside, and a Task; a task attempt a dead node
/// left unfinished fails with `States.TaskFailed` and is retried, as after a restart.
const CLUSTER_FLOW: &str = r#"{
  "StartAt": "T1",
  "States": {
    "T1": {"Type": "Task", "Resource": "weft:plugin:echo", "ResultPath": "$.t1", "Next": "W",
           "Retry": [{"ErrorEquals": ["States.TaskFailed"], "IntervalSeconds": 1, "MaxAttempts": 3}]},
    "W": {"Type": "Wait", "SecondsPath": "$.wait", "Next": "Ask"},
    "Ask": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
            "Parameters": {"QueueUrl": "q", "MessageBody": {"token.$": "$$.Task.Token"}},
            "ResultPath": "$.answer", "Next": "T2"},
    "T2": {"Type": "Task", "Resource": "weft:plugin:echo", "ResultPath": "$.t2", "End": true,
           "Retry": [{"ErrorEquals": ["States.TaskFailed"], "IntervalSeconds": 1, "MaxAttempts": 3}]}
  }
}"#;

/// The task token of the callback of `arn`, once it waits for it.
fn token_of(port: u16, arn: &str) -> String {
    let end = Instant::now() + Duration::from_secs(120);
    loop {
        let h = ok(port, "GetExecutionHistory", json!({"executionArn": arn}));
        if let Some(t) = callback_token(&h) {
            return t;
        }
        assert!(Instant::now() < end, "{arn} never waited for its callback");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn node_id(home: &Path) -> String {
    std::fs::read_to_string(home.join("node-id")).unwrap()
}

#[test]
fn three_nodes_share_one_database_and_survive_the_loss_of_one() {
    let Some((admin, url, name)) = fresh_database("cluster") else {
        return;
    };
    let homes: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut nodes: Vec<Option<Server>> = homes
        .iter()
        .map(|h| {
            home_with_echo(h.path());
            Some(start(h.path(), &url))
        })
        .collect();
    let port = |nodes: &[Option<Server>], i: usize| nodes[i].as_ref().unwrap().port;
    let sm = create_state_machine(port(&nodes, 0), "cluster-flow", CLUSTER_FLOW);
    // every node sees what one created
    let d = ok(
        port(&nodes, 2),
        "DescribeStateMachine",
        json!({"stateMachineArn": sm}),
    );
    assert_eq!(d["name"], "cluster-flow");

    // started round-robin through the three nodes
    const N: usize = 24;
    let arns: Vec<String> = (0..N)
        .map(|i| start_execution(port(&nodes, i % 3), &sm, &format!("x{i}"), "{\"wait\": 2}"))
        .collect();
    let dead = node_id(homes[0].path());
    assert_eq!(
        psql(
            &url,
            &format!("SELECT count(*) FROM sfn_executions WHERE owner = '{dead}'")
        ),
        (N / 3).to_string(),
        "each node owns what it started"
    );
    // node 0 dies while its executions wait
    nodes[0].take().unwrap().kill9();

    // every callback answered on another node than the one that started the execution
    for (i, arn) in arns.iter().enumerate() {
        let via = 1 + i % 2;
        let token = token_of(port(&nodes, via), arn);
        // (the TaskScheduled event may be read a moment before its token is stored)
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            let (st, v) = call(
                port(&nodes, via),
                "SendTaskSuccess",
                &json!({"taskToken": token, "output": format!("{{\"n\": {i}}}")}),
            );
            if st == 200 {
                break;
            }
            assert!(
                v["__type"] == "TaskDoesNotExist" && Instant::now() < end,
                "SendTaskSuccess: {v}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    for (i, arn) in arns.iter().enumerate() {
        let d = wait_done(port(&nodes, 1 + i % 2), arn);
        assert_eq!(d["status"], "SUCCEEDED", "{arn}: {d}");
        let out: Value = serde_json::from_str(d["output"].as_str().unwrap()).unwrap();
        assert_eq!(out["answer"]["n"], i, "{out}");
        assert!(out.get("t2").is_some(), "{out}");
        let types = event_types(port(&nodes, 1), arn);
        for once in ["ExecutionStarted", "ExecutionSucceeded", "WaitStateEntered"] {
            assert_eq!(
                types.iter().filter(|t| *t == once).count(),
                1,
                "{arn}: {once} once: {types:?}"
            );
        }
        assert_eq!(
            types.iter().filter(|t| *t == "TaskSucceeded").count(),
            3,
            "{arn}: T1, Ask and T2 each succeeded once: {types:?}"
        );
    }
    // the dead node's executions were adopted (a new epoch) by the living nodes
    assert_eq!(
        psql(
            &url,
            &format!("SELECT count(*) FROM sfn_executions WHERE owner = '{dead}'")
        ),
        "0"
    );
    assert_eq!(
        psql(&url, "SELECT count(*) FROM sfn_executions WHERE epoch > 1"),
        (N / 3).to_string()
    );
    drop(nodes);
    psql(
        &admin,
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    );
}

/// Nodes A and B on `url` (homes `ha`, `hb`), and an execution of DEFINITION started on A that
/// waits `wait` seconds in its Wait state now.
fn two_nodes_and_an_execution_in_its_wait(
    ha: &Path,
    hb: &Path,
    url: &str,
    wait: u32,
) -> (Server, Server, String) {
    home_with_echo(ha);
    home_with_echo(hb);
    let a = start(ha, url);
    let b = start(hb, url);
    let sm = create_state_machine(a.port, "pg-flow", DEFINITION);
    let arn = start_execution(a.port, &sm, "waiting", &format!("{{\"wait\": {wait}}}"));
    let end = Instant::now() + Duration::from_secs(120);
    while !event_types(b.port, &arn)
        .iter()
        .any(|t| t == "WaitStateEntered")
    {
        assert!(Instant::now() < end, "the execution never reached its Wait");
        std::thread::sleep(Duration::from_millis(20));
    }
    (a, b, arn)
}

#[cfg(unix)]
#[test]
fn a_node_paused_past_its_lease_writes_nothing_when_it_runs_again() {
    let Some((admin, url, name)) = fresh_database("paused") else {
        return;
    };
    let (ha, hb) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b, arn) = two_nodes_and_an_execution_in_its_wait(ha.path(), hb.path(), &url, 1);
    let signal = |sig: &str| {
        let st = Command::new("kill")
            .args([sig, &a.child.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
    };
    // A stops with its Wait timer armed; B adopts the execution and finishes it
    signal("-STOP");
    let d = wait_done(b.port, &arn);
    assert_eq!(d["status"], "SUCCEEDED", "{d}");
    let before = psql(
        &url,
        &format!("SELECT count(*), max(id) FROM sfn_history WHERE execution = '{arn}'"),
    );
    let journal = psql(
        &url,
        &format!("SELECT count(*) FROM sfn_journal WHERE execution = '{arn}'"),
    );
    // A runs again: its timer fires, its lease is over; it writes nothing
    signal("-CONT");
    std::thread::sleep(Duration::from_millis(3 * LEASE_MS));
    assert_eq!(
        psql(
            &url,
            &format!("SELECT count(*), max(id) FROM sfn_history WHERE execution = '{arn}'"),
        ),
        before,
        "the paused node wrote history after its lease ended"
    );
    assert_eq!(
        psql(
            &url,
            &format!("SELECT count(*) FROM sfn_journal WHERE execution = '{arn}'")
        ),
        journal
    );
    let types = event_types(a.port, &arn);
    assert_eq!(
        types.iter().filter(|t| *t == "ExecutionSucceeded").count(),
        1,
        "{types:?}"
    );
    // and A serves again under a new id
    assert_ne!(
        psql(
            &url,
            "SELECT count(*) FROM weft_nodes WHERE lease_until > now()"
        ),
        "0"
    );
    drop((a, b));
    psql(
        &admin,
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    );
}

/// The secret access key of `home`'s credentials file.
fn secret_of(home: &Path) -> String {
    let text = std::fs::read_to_string(home.join("credentials")).unwrap();
    text.lines()
        .find_map(|l| {
            l.split_once('=')
                .filter(|(k, _)| k.trim() == "aws_secret_access_key")
        })
        .map(|(_, v)| v.trim().to_string())
        .unwrap()
}

/// ListStateMachines with `Authorization: Bearer SECRET`; the HTTP status.
fn list_with(port: u16, secret: &str) -> u16 {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Amz-Target: AWSStepFunctions.ListStateMachines\r\nContent-Type: application/x-amz-json-1.0\r\nAuthorization: Bearer {secret}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[test]
fn every_node_of_a_database_serves_the_keys_kept_in_it() {
    let Some((admin, url, name)) = fresh_database("keys") else {
        return;
    };
    let (ha, hb) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = start_node(ha.path(), &url, false);
    let key = secret_of(ha.path());
    // a second node on a fresh home writes the database's keys where it says to read them
    let b = start_node(hb.path(), &url, false);
    assert_eq!(
        secret_of(hb.path()),
        key,
        "the second node made a key of its own"
    );
    assert_eq!(list_with(a.port, &key), 200);
    assert_eq!(list_with(b.port, &key), 200);
    assert_eq!(
        list_with(b.port, "not-the-key"),
        400,
        "UnrecognizedClientException"
    );
    // a home with keys of its own joins a database that has keys: the database's win
    let hc = tempfile::tempdir().unwrap();
    std::fs::write(
        hc.path().join("credentials"),
        "[default]\naws_access_key_id = LOCAL\naws_secret_access_key = local-secret\n",
    )
    .unwrap();
    let c = start_node(hc.path(), &url, false);
    assert_eq!(list_with(c.port, &key), 200);
    assert_eq!(list_with(c.port, "local-secret"), 400);
    drop((a, b, c));
    psql(
        &admin,
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    );
}

#[test]
fn an_activity_task_queued_on_one_node_is_handed_out_by_another() {
    let Some((admin, url, name)) = fresh_database("activity") else {
        return;
    };
    let (ha, hb) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = start(ha.path(), &url);
    let b = start(hb.path(), &url);
    let act = ok(a.port, "CreateActivity", json!({"name": "review"}))["activityArn"]
        .as_str()
        .unwrap()
        .to_string();
    let def = json!({"StartAt": "Review", "States": {
        "Review": {"Type": "Task", "Resource": act, "End": true}}})
    .to_string();
    let sm = create_state_machine(a.port, "reviewed", &def);
    let arn = start_execution(a.port, &sm, "r1", "{\"doc\": 7}");
    // a worker polling node B gets the task node A queued; a second poll gets nothing
    let end = Instant::now() + Duration::from_secs(60);
    let task = loop {
        let t = ok(
            b.port,
            "GetActivityTask",
            json!({"activityArn": act, "workerName": "w1"}),
        );
        if t["taskToken"].as_str().is_some_and(|s| !s.is_empty()) {
            break t;
        }
        assert!(Instant::now() < end, "node B never handed out the task");
    };
    let input: Value = serde_json::from_str(task["input"].as_str().unwrap()).unwrap();
    assert_eq!(input["doc"], 7);
    // claimed once, in the database: no other node hands it out again
    assert_eq!(
        psql(
            &url,
            "SELECT count(*) FROM sfn_tokens WHERE convert_from(rec, 'UTF8') LIKE '%\"claimed_by\":\"w1\"%'"
        ),
        "1"
    );
    ok(
        b.port,
        "SendTaskSuccess",
        json!({"taskToken": task["taskToken"], "output": "{\"approved\": true}"}),
    );
    let d = wait_done(a.port, &arn);
    assert_eq!(d["status"], "SUCCEEDED", "{d}");
    let out: Value = serde_json::from_str(d["output"].as_str().unwrap()).unwrap();
    assert_eq!(out, json!({"approved": true}));
    drop((a, b));
    psql(
        &admin,
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    );
}

#[cfg(unix)]
#[test]
fn a_node_that_stops_cleanly_hands_its_executions_over() {
    let Some((admin, url, name)) = fresh_database("leave") else {
        return;
    };
    let (ha, hb) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut a, b, arn) = two_nodes_and_an_execution_in_its_wait(ha.path(), hb.path(), &url, 2);
    let a_id = node_id(ha.path());
    let st = Command::new("kill")
        .args(["-TERM", &a.child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    assert!(a.child.wait().unwrap().success(), "a clean stop");
    // its lease ended with it: nobody has to wait for it to run out
    assert_eq!(
        psql(
            &url,
            &format!("SELECT count(*) FROM weft_nodes WHERE id = '{a_id}' AND lease_until < now()")
        ),
        "1"
    );
    let d = wait_done(b.port, &arn);
    assert_eq!(d["status"], "SUCCEEDED", "{d}");
    drop(b);
    psql(
        &admin,
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    );
}

#[test]
fn two_nodes_schedule_one_dag_folder_and_each_logical_date_runs_once() {
    let Some((admin, url, name)) = fresh_database("dags") else {
        return;
    };
    let start_date = (chrono::Utc::now() - chrono::Duration::days(6)).format("%Y-%m-%d");
    let dag = format!(
        "shared:\n  schedule: \"@daily\"\n  catchup: true\n  is_paused_upon_creation: false\n  \
         start_date: {start_date}\n  tasks:\n    a:\n      operator: echo\n    b:\n      \
         operator: echo\n      dependencies: [a]\n"
    );
    let homes: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let nodes: Vec<Server> = homes
        .iter()
        .map(|h| {
            home_with_echo(h.path());
            std::fs::create_dir_all(h.path().join("dags")).unwrap();
            std::fs::write(h.path().join("dags/shared.dag.yaml"), &dag).unwrap();
            start(h.path(), &url)
        })
        .collect();
    // six past days: six runs, each once, every task tried once
    let end = Instant::now() + Duration::from_secs(180);
    loop {
        let done = psql(
            &url,
            "SELECT count(*) FROM dag_runs WHERE dag_id = 'shared' AND state = 'success'",
        );
        if done.parse::<u32>().unwrap() >= 6 {
            break;
        }
        assert!(
            Instant::now() < end,
            "the catchup never finished: {done} runs"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        psql(
            &url,
            "SELECT count(*) - count(DISTINCT logical_date_us) FROM dag_runs WHERE dag_id = 'shared'"
        ),
        "0"
    );
    assert_eq!(
        psql(
            &url,
            "SELECT count(*) FROM task_instances WHERE dag_id = 'shared' \
             AND (rec->>'try_number')::int <> 1"
        ),
        "0",
        "a task was tried twice"
    );
    drop(nodes);
    psql(
        &admin,
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    );
}

/// The web UI's live stream (`GET /v1/executions/{arn}/events`) on node B follows an execution
/// node A runs: B never hears A's updates, so it reads the store and tells the client to fetch
/// the history A recorded (`resync`), then the final status.
#[test]
fn the_ui_s_live_stream_on_one_node_follows_an_execution_another_runs() {
    let Some((admin, url, name)) = fresh_database("live") else {
        return;
    };
    let (ha, hb) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b, arn) = two_nodes_and_an_execution_in_its_wait(ha.path(), hb.path(), &url, 2);
    let mut s = TcpStream::connect(("127.0.0.1", b.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "GET /v1/executions/{arn}/events HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    // the stream ends after a terminal status
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let events: Vec<(&str, &str)> = text
        .split("\n\n")
        .filter_map(|block| {
            let ev = block.lines().find_map(|l| l.strip_prefix("event: "))?;
            let data = block.lines().find_map(|l| l.strip_prefix("data: "))?;
            Some((ev, data))
        })
        .collect();
    assert_eq!(
        events.first(),
        Some(&("status", r#"{"status":"RUNNING"}"#)),
        "{text}"
    );
    assert!(
        events.iter().any(|(e, _)| *e == "resync"),
        "B tells the client of the events A recorded: {text}"
    );
    assert_eq!(
        events.last(),
        Some(&("status", r#"{"status":"SUCCEEDED"}"#)),
        "{text}"
    );
    drop((a, b));
    psql(
        &admin,
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    );
}
