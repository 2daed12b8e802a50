//! Testing the way Step Functions users do: `weft run --mock-config --test-case` (Step
//! Functions Local's mock configuration format), `--fast-forward`, and `weft server
//! --mock-config` / `$SFN_MOCK_CONFIG` with `StartExecution` on `ARN#TestCase`, including a
//! SIGKILL and restart in the middle of a mocked execution. Mocked tasks run no plugin, so
//! none of this needs the guest plugins. And the attacks: malformed and huge mock files, test
//! case names with path characters, `#` tricks on the ARN.

mod common;
use common::*;

use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

const MOCKS: &str = r#"{
  "StateMachines": {
    "order": {
      "TestCases": {
        "HappyPath": {"Charge": "ChargeOk", "Notify": "SqsOk"},
        "RetryPath": {"Charge": "ChargeFlaky", "Notify": "SqsOk"},
        "CatchPath": {"Charge": "ChargeDeclined"},
        "CallbackPath": {"Charge": "ChargeOk", "Notify": "Approved"}
      }
    }
  },
  "MockedResponses": {
    "ChargeOk": {"0": {"Return": {"StatusCode": 200, "Payload": {"charged": 42}}}},
    "ChargeFlaky": {
      "0": {"Throw": {"Error": "Lambda.ServiceException", "Cause": "flaky"}},
      "1-2": {"Throw": {"Error": "Lambda.TooManyRequestsException", "Cause": "slow down"}},
      "3": {"Return": {"StatusCode": 200, "Payload": {"charged": 7}}}
    },
    "ChargeDeclined": {"0-9": {"Throw": {"Error": "Payment.Declined", "Cause": "card declined"}}},
    "SqsOk": {"0": {"Return": {"MessageId": "m-1", "MD5OfMessageBody": "x"}}},
    "Approved": {"0": {"Return": {"approved": true}}}
  }
}"#;

/// Charge (lambda:invoke, retried with back-off) -> Notify (sqs) -> end; a declined payment
/// is caught.
const ORDER: &str = r#"{
  "StartAt": "Charge",
  "States": {
    "Charge": {
      "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
      "Parameters": {"FunctionName": "charge", "Payload.$": "$"},
      "ResultSelector": {"charged.$": "$.Payload.charged"}, "ResultPath": "$.charge",
      "Retry": [{"ErrorEquals": ["Lambda.ServiceException", "Lambda.TooManyRequestsException"],
                 "IntervalSeconds": 10, "MaxAttempts": 3, "BackoffRate": 2, "JitterStrategy": "FULL"}],
      "Catch": [{"ErrorEquals": ["Payment.Declined"], "ResultPath": "$.error", "Next": "Declined"}],
      "Next": "Notify"
    },
    "Notify": {
      "Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage",
      "Parameters": {"QueueUrl": "https://sqs.us-east-1.amazonaws.com/1/q", "MessageBody.$": "$"},
      "ResultSelector": {"id.$": "$.MessageId"}, "ResultPath": "$.notify", "End": true
    },
    "Declined": {"Type": "Pass", "End": true}
  }
}"#;

struct Files {
    dir: tempfile::TempDir,
    home: tempfile::TempDir,
}

impl Files {
    fn new() -> Files {
        Files {
            dir: tempfile::tempdir().unwrap(),
            home: tempfile::tempdir().unwrap(),
        }
    }
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
    /// `weft ARGS` (paths relative to the temp dir); (exit code, stdout, stderr).
    fn weft(&self, args: &[&str]) -> (i32, String, String) {
        let o = Command::new(env!("CARGO_BIN_EXE_weft"))
            .args(args)
            .env("WEFT_HOME", self.home.path())
            .env("WEFT_PLUGINS_DIR", self.dir.path().join("no-plugins"))
            .current_dir(self.dir.path())
            .output()
            .unwrap();
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }
}

fn json_out(stdout: &str) -> Value {
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

fn events(stderr: &str) -> Vec<Value> {
    let start = stderr
        .find('{')
        .unwrap_or_else(|| panic!("no history in {stderr}"));
    let v: Value =
        serde_json::from_str(&stderr[start..]).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    v["events"].as_array().unwrap().clone()
}

/// An event's timestamp (RFC 3339), in seconds.
fn ts(e: &Value) -> f64 {
    let t = e["timestamp"]
        .as_str()
        .unwrap_or_else(|| panic!("timestamp of {e}"));
    chrono::DateTime::parse_from_rfc3339(t)
        .unwrap_or_else(|err| panic!("{err}: {t}"))
        .timestamp_millis() as f64
        / 1000.0
}

#[test]
fn happy_path_answers_from_the_mocks() {
    let f = Files::new();
    f.write("order.asl.json", ORDER);
    f.write("mocks.json", MOCKS);
    let (code, out, err) = f.weft(&[
        "run",
        "order.asl.json",
        "--mock-config",
        "mocks.json",
        "--test-case",
        "HappyPath",
        "--input",
        r#"{"order": 1}"#,
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        json_out(&out),
        json!({"order": 1, "charge": {"charged": 42}, "notify": {"id": "m-1"}})
    );
}

#[test]
fn throw_then_retry_then_success_on_a_fast_forward_clock() {
    let f = Files::new();
    f.write("order.asl.json", ORDER);
    f.write("mocks.json", MOCKS);
    let t0 = Instant::now();
    let (code, out, err) = f.weft(&[
        "run",
        "order.asl.json",
        "--mock-config",
        "mocks.json",
        "--test-case",
        "RetryPath",
        "--fast-forward",
        "--history",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    // back-offs of up to 10 + 20 + 40 s took no wall time
    assert!(t0.elapsed() < Duration::from_secs(30));
    assert_eq!(json_out(&out)["charge"], json!({"charged": 7}));
    let evs = events(&err);
    let failed: Vec<_> = evs.iter().filter(|e| e["type"] == "TaskFailed").collect();
    assert_eq!(failed.len(), 3, "{evs:?}");
    assert_eq!(
        failed[0]["taskFailedEventDetails"]["error"],
        "Lambda.ServiceException"
    );
}

#[test]
fn throw_is_caught_and_ranges_apply() {
    let f = Files::new();
    f.write("order.json", ORDER);
    f.write("mocks.json", MOCKS);
    // order.json's stem is the entry too
    let (code, out, err) = f.weft(&[
        "run",
        "order.json",
        "--mock-config",
        "mocks.json",
        "--test-case",
        "CatchPath",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        json_out(&out)["error"],
        json!({"Error": "Payment.Declined", "Cause": "card declined"})
    );
}

#[test]
fn map_iterations_and_parallel_branches_share_a_state_s_counter() {
    let f = Files::new();
    f.write(
        "fan.asl.json",
        r#"{"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": true, "Branches": [
            {"StartAt": "M", "States": {"M": {"Type": "Map", "MaxConcurrency": 1, "ItemsPath": "$.items", "End": true,
              "ItemProcessor": {"StartAt": "Work", "States": {"Work": {"Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke", "Parameters": {"FunctionName": "w", "Payload.$": "$"},
                "OutputPath": "$.Payload", "End": true}}}}}},
            {"StartAt": "Cb", "States": {"Cb": {"Type": "Task",
              "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
              "Parameters": {"QueueUrl": "q", "MessageBody": {"token.$": "$$.Task.Token"}}, "End": true}}}]}}}"#,
    );
    f.write(
        "mocks.json",
        r#"{"StateMachines": {"fan": {"TestCases": {"T": {"Work": "W", "Cb": "Cb"}}}},
            "MockedResponses": {
              "W": {"0": {"Return": {"StatusCode": 200, "Payload": "first"}},
                    "1-2": {"Return": {"StatusCode": 200, "Payload": "middle"}},
                    "3": {"Return": {"StatusCode": 200, "Payload": "last"}}},
              "Cb": {"0": {"Return": {"approved": true}}}}}"#,
    );
    let (code, out, err) = f.weft(&[
        "run",
        "fan.asl.json",
        "--mock-config",
        "mocks.json",
        "--test-case",
        "T",
        "--input",
        r#"{"items": [1, 2, 3, 4]}"#,
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        json_out(&out),
        json!([["first", "middle", "middle", "last"], {"approved": true}])
    );
    // a fifth item runs past the last key: the execution fails
    let (code, out, _) = f.weft(&[
        "run",
        "fan.asl.json",
        "--mock-config",
        "mocks.json",
        "--test-case",
        "T",
        "--input",
        r#"{"items": [1, 2, 3, 4, 5]}"#,
    ]);
    assert_eq!(code, 1);
    assert_eq!(json_out(&out)["Error"], "States.Runtime");
}

#[test]
fn fast_forward_wait_an_hour_instantly() {
    let f = Files::new();
    f.write(
        "wait.asl.json",
        r#"{"StartAt": "W", "States": {
            "W": {"Type": "Wait", "Seconds": 3600, "Next": "Until"},
            "Until": {"Type": "Wait", "Timestamp": "2000-01-01T00:00:00Z", "Next": "T"},
            "T": {"Type": "Pass", "Parameters": {"entered.$": "$$.State.EnteredTime", "start.$": "$$.Execution.StartTime"}, "End": true}}}"#,
    );
    let t0 = Instant::now();
    let (code, out, err) = f.weft(&["run", "wait.asl.json", "--fast-forward", "--history"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(t0.elapsed() < Duration::from_secs(30));
    let evs = events(&err);
    let entered = evs
        .iter()
        .find(|e| e["type"] == "WaitStateEntered")
        .unwrap();
    let exited = evs.iter().find(|e| e["type"] == "WaitStateExited").unwrap();
    assert!(
        (ts(exited) - ts(entered) - 3600.0).abs() < 0.01,
        "{entered} {exited}"
    );
    let first = ts(&evs[0]);
    let last = ts(evs.last().unwrap());
    assert!((last - first - 3600.0).abs() < 1.0, "{first} {last}");
    let o = json_out(&out);
    let at = |k: &str| chrono::DateTime::parse_from_rfc3339(o[k].as_str().unwrap()).unwrap();
    assert_eq!((at("entered") - at("start")).num_seconds(), 3600);
}

#[test]
fn fast_forward_execution_timeout() {
    let f = Files::new();
    f.write(
        "slow.asl.json",
        r#"{"TimeoutSeconds": 120, "StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 86400, "End": true}}}"#,
    );
    let (code, out, err) = f.weft(&["run", "slow.asl.json", "--fast-forward", "--history"]);
    assert_eq!(code, 1, "{out}{err}");
    assert_eq!(json_out(&out)["Error"], "States.Timeout");
    let evs = events(&err);
    let end = evs.last().unwrap();
    assert_eq!(end["type"], "ExecutionTimedOut");
    assert!((ts(end) - ts(&evs[0]) - 120.0).abs() < 1.0);
}

#[test]
fn entry_selection_and_usage_errors() {
    let f = Files::new();
    f.write("order.asl.json", ORDER);
    let two = MOCKS.replacen(
        r#""StateMachines": {"#,
        r#""StateMachines": {"other": {"TestCases": {}}, "#,
        1,
    );
    f.write("mocks.json", &two);
    f.write("renamed.json", ORDER);
    // two entries, the stem names none: exit 2, listing them
    let (code, _, err) = f.weft(&[
        "run",
        "renamed.json",
        "--mock-config",
        "mocks.json",
        "--test-case",
        "HappyPath",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("order") && err.contains("other") && err.contains("--state-machine-name"),
        "{err}"
    );
    // --state-machine-name picks it
    let (code, out, err) = f.weft(&[
        "run",
        "renamed.json",
        "--mock-config",
        "mocks.json",
        "--test-case",
        "HappyPath",
        "--state-machine-name",
        "order",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    // an unknown test case: exit 2, naming it and the available ones
    let (code, _, err) = f.weft(&[
        "run",
        "order.asl.json",
        "--mock-config",
        "mocks.json",
        "--test-case",
        "Nope",
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("'Nope'") && err.contains("CallbackPath, CatchPath, HappyPath, RetryPath"),
        "{err}"
    );
    // one flag without the other
    let (code, _, _) = f.weft(&["run", "order.asl.json", "--test-case", "HappyPath"]);
    assert_eq!(code, 2);
    // a mocked state that is not a Task of the definition
    f.write(
        "pass.asl.json",
        r#"{"StartAt": "Charge", "States": {"Charge": {"Type": "Pass", "End": true}}}"#,
    );
    f.write(
        "pm.json",
        r#"{"StateMachines": {"pass": {"TestCases": {"T": {"Charge": "R"}}}}, "MockedResponses": {"R": {"0": {"Return": 1}}}}"#,
    );
    let (code, _, err) = f.weft(&[
        "run",
        "pass.asl.json",
        "--mock-config",
        "pm.json",
        "--test-case",
        "T",
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("pm.json: /StateMachines/pass/TestCases/T/Charge: ")
            && err.contains("Pass state"),
        "{err}"
    );
}

#[test]
fn hostile_mock_files_are_usage_errors() {
    let f = Files::new();
    f.write("order.asl.json", ORDER);
    let cases: Vec<(&str, String, &str)> = vec![
        ("unknown top-level", r#"{"StateMachines": {}, "MockedResponses": {}, "Evil": 1}"#.into(), "/Evil: "),
        ("missing response", r#"{"StateMachines": {"order": {"TestCases": {"T": {"Charge": "Ghost"}}}}, "MockedResponses": {}}"#.into(), "/StateMachines/order/TestCases/T/Charge: "),
        ("overlap", r#"{"StateMachines": {}, "MockedResponses": {"R": {"0-3": {"Return": 1}, "3-4": {"Return": 2}}}}"#.into(), "overlap"),
        ("bad range", r#"{"StateMachines": {}, "MockedResponses": {"R": {"4-1": {"Return": 1}}}}"#.into(), "/MockedResponses/R/4-1: "),
        ("both", r#"{"StateMachines": {}, "MockedResponses": {"R": {"0": {"Return": 1, "Throw": {"Error": "E", "Cause": "c"}}}}}"#.into(), "/MockedResponses/R/0: "),
        ("not json", "{\"StateMachines\": ".into(), "not JSON"),
        ("deep", format!("{}{}", "[".repeat(50_000), "]".repeat(50_000)), "mocks.json: "),
        ("huge", format!("{{\"StateMachines\": {{}}, \"MockedResponses\": {{}}, \"pad\": \"{}\"}}", "x".repeat(5 << 20)), "larger than the limit"),
        ("binary", "\u{0}\u{1}\u{2}".into(), "mocks.json: "),
    ];
    for (what, text, expect) in cases {
        f.write("mocks.json", &text);
        let (code, out, err) = f.weft(&[
            "run",
            "order.asl.json",
            "--mock-config",
            "mocks.json",
            "--test-case",
            "T",
        ]);
        assert_eq!(code, 2, "{what}: {out}{err}");
        assert!(err.contains(expect), "{what}: {err}");
        assert!(!err.contains("panicked"), "{what}: {err}");
    }
    // test case names with path characters are only looked up, never used as paths
    f.write("mocks.json", MOCKS);
    for name in [
        "../../etc/passwd",
        "/etc/passwd",
        "Happy\u{1}Path",
        "HappyPath/..",
    ] {
        let (code, _, err) = f.weft(&[
            "run",
            "order.asl.json",
            "--mock-config",
            "mocks.json",
            "--test-case",
            name,
        ]);
        assert_eq!(code, 2, "{name}: {err}");
        assert!(err.contains("no test case"), "{name}: {err}");
    }
    // a mock file that is a directory, or missing
    let (code, _, _) = f.weft(&[
        "run",
        "order.asl.json",
        "--mock-config",
        ".",
        "--test-case",
        "T",
    ]);
    assert_eq!(code, 2);
    let (code, _, _) = f.weft(&[
        "run",
        "order.asl.json",
        "--mock-config",
        "missing.json",
        "--test-case",
        "T",
    ]);
    assert_eq!(code, 2);
}

// ---- the server ----

fn wait_done(port: u16, arn: &str) -> Value {
    let end = Instant::now() + Duration::from_secs(60);
    while Instant::now() < end {
        let v = ok(port, "DescribeExecution", json!({"executionArn": arn}));
        if v["status"] != "RUNNING" {
            return v;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{arn} still running");
}

const SM_ARN: &str = "arn:aws:states:us-east-1:000000000000:stateMachine:order";

fn server_runs_arn_hash_test_case_and_survives_a_restart(backend: &Backend) {
    let f = Files::new();
    let mocks = f.write("mocks.json", MOCKS);
    // Charge -> Wait 2 s -> Notify: the kill lands in the Wait, after Charge's mocked answer
    let def = json!({"StartAt": "Charge", "States": {
        "Charge": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
          "Parameters": {"FunctionName": "charge"}, "ResultSelector": {"charged.$": "$.Payload.charged"},
          "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1, "MaxAttempts": 3, "BackoffRate": 1}],
          "Next": "W"},
        "W": {"Type": "Wait", "Seconds": 2, "Next": "Notify"},
        "Notify": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage",
          "Parameters": {"QueueUrl": "q", "MessageBody": "m"}, "ResultPath": "$.sqs", "End": true}}});
    let env = [("SFN_MOCK_CONFIG", mocks.as_path())];
    let s = start_weft_server_on(backend, f.home.path(), f.dir.path(), true, &env);
    ok(
        s.port,
        "CreateStateMachine",
        json!({"name": "order", "definition": def.to_string()}),
    );
    let happy = ok(
        s.port,
        "StartExecution",
        json!({"stateMachineArn": format!("{SM_ARN}#HappyPath"), "name": "happy"}),
    );
    let retry = ok(
        s.port,
        "StartExecution",
        json!({"stateMachineArn": format!("{SM_ARN}#RetryPath"), "name": "retry"}),
    );
    // retried 3 times 1 s apart, then Wait 2 s: still running when killed
    std::thread::sleep(Duration::from_millis(1500));
    s.kill9();
    let s = start_weft_server_on(backend, f.home.path(), f.dir.path(), true, &env);
    let h = wait_done(s.port, happy["executionArn"].as_str().unwrap());
    assert_eq!(h["status"], "SUCCEEDED", "{h}");
    let out: Value = serde_json::from_str(h["output"].as_str().unwrap()).unwrap();
    assert_eq!(
        out,
        json!({"charged": 42, "sqs": {"MessageId": "m-1", "MD5OfMessageBody": "x"}})
    );
    let r = wait_done(s.port, retry["executionArn"].as_str().unwrap());
    assert_eq!(r["status"], "SUCCEEDED", "{r}");
    let out: Value = serde_json::from_str(r["output"].as_str().unwrap()).unwrap();
    assert_eq!(out["charged"], 7);
    // the execution ARN is the canonical one, without the test case
    assert!(!h["executionArn"].as_str().unwrap().contains('#'));
    assert_eq!(h["stateMachineArn"], SM_ARN);

    // an unknown test case is a ValidationException naming it
    let (st, v) = call(
        s.port,
        "StartExecution",
        &json!({"stateMachineArn": format!("{SM_ARN}#Nope")}),
    );
    assert_eq!(st, 400, "{v}");
    assert_eq!(v["__type"], "ValidationException");
    assert!(v["message"].as_str().unwrap().contains("'Nope'"), "{v}");
    // tricks on the suffix are refused, never run
    for arn in [
        format!("{SM_ARN}#../prod"),
        format!("{SM_ARN}#HappyPath#x"),
        format!("{SM_ARN}#"),
        format!("{SM_ARN}%23HappyPath"),
        format!("{SM_ARN}#Happy%2FPath"),
        "arn:aws:states:us-east-1:000000000000:stateMachine:#HappyPath".to_string(),
    ] {
        let (st, v) = call(s.port, "StartExecution", &json!({"stateMachineArn": arn}));
        assert_ne!(st, 200, "{arn}: {v}");
    }
    // the internal field cannot be sent by a caller: without `#`, nothing is mocked (the
    // real lambda task fails: no such plugin)
    let e = ok(
        s.port,
        "StartExecution",
        json!({"stateMachineArn": SM_ARN, "weft:testCase": "HappyPath"}),
    );
    let d = wait_done(s.port, e["executionArn"].as_str().unwrap());
    assert_eq!(d["status"], "FAILED", "{d}");
}
on_both_backends!(server_runs_arn_hash_test_case_and_survives_a_restart);

fn server_without_mocks_refuses_a_test_case(backend: &Backend) {
    let f = Files::new();
    let s = start_weft_server_on(backend, f.home.path(), f.dir.path(), true, &[]);
    ok(
        s.port,
        "CreateStateMachine",
        json!({"name": "order", "definition": ORDER}),
    );
    let (st, v) = call(
        s.port,
        "StartExecution",
        &json!({"stateMachineArn": format!("{SM_ARN}#HappyPath")}),
    );
    assert_eq!(st, 400, "{v}");
    assert_eq!(v["__type"], "ValidationException");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("mock configuration"),
        "{v}"
    );
}
on_both_backends!(server_without_mocks_refuses_a_test_case);

#[test]
fn server_refuses_a_bad_mock_file_at_start() {
    let f = Files::new();
    let bad = f.write(
        "mocks.json",
        r#"{"StateMachines": {}, "MockedResponses": {"R": {"x": {}}}}"#,
    );
    let o = Command::new(env!("CARGO_BIN_EXE_weft"))
        .args([
            "server",
            "--listen",
            "127.0.0.1:0",
            "--no-auth",
            "--mock-config",
        ])
        .arg(&bad)
        .env("WEFT_HOME", f.home.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("/MockedResponses/R/x: "), "{err}");
}
