//! The CLI contract of DESIGN.md, driven through the real `weft` binary: output on stdout,
//! `{"Error","Cause"}` with exit 1 for failed runs, exit 2 with precise messages for bad input.

mod common;
use common::*;

use std::process::Command;

#[test]
fn invoke_prints_output_or_error_with_exit_codes() {
    let home = tempfile::tempdir().unwrap();
    for p in ["echo.wasm", "fail.wasm", "hostile/spin.wasm"] {
        let o = weft(
            home.path(),
            &["plugin", "install", plugin(p).to_str().unwrap()],
        );
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let o = weft(
        home.path(),
        &["invoke", "echo", "--input", r#"{"x":[1,2]}"#],
    );
    assert_eq!(
        (o.status.code(), stdout(&o).as_str()),
        (Some(0), r#"{"x":[1,2]}"#)
    );

    let o = weft(
        home.path(),
        &[
            "invoke",
            "fail",
            "--input",
            r#"{"error":"E.X","cause":"why"}"#,
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o), r#"{"Error":"E.X","Cause":"why"}"#);

    let o = weft(
        home.path(),
        &[
            "invoke",
            "hostile-spin",
            "--timeout",
            "200ms",
            "--fuel",
            "1000000000000000",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["Error"], "States.Timeout");

    let o = weft(home.path(), &["invoke", "echo", "--input", "{nope"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("--input:1:2: input is not JSON"),
        "{}",
        stderr(&o)
    );

    let o = weft(home.path(), &["invoke", "nothere"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("plugin `nothere` is not installed"),
        "{}",
        stderr(&o)
    );

    let o = weft(home.path(), &["invoke", "echo", "--memory", "12XB"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("unknown size unit"), "{}", stderr(&o));
}

#[test]
fn bad_policy_files_are_reported_with_pointers() {
    let home = tempfile::tempdir().unwrap();
    weft(
        home.path(),
        &["plugin", "install", plugin("echo.wasm").to_str().unwrap()],
    );
    let pol = home.path().join("bad.json");
    std::fs::write(
        &pol,
        r#"{"Statement":[{"Effect":"Allow","Action":"fs:Reed","Resource":"file:x/*"}]}"#,
    )
    .unwrap();
    let o = weft(
        home.path(),
        &["invoke", "echo", "--policy", pol.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("/Statement/0/Action/0: `fs:Reed` matches no weft action"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn run_contract() {
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ok = dir.path().join("ok.json");
    std::fs::write(
        &ok,
        r#"{"StartAt":"P","States":{"P":{"Type":"Pass","Parameters":{"v.$":"$.a"},"End":true}}}"#,
    )
    .unwrap();
    let o = weft(
        home.path(),
        &["run", ok.to_str().unwrap(), "--input", r#"{"a":5}"#],
    );
    assert_eq!(
        (o.status.code(), stdout(&o).as_str()),
        (Some(0), r#"{"v":5}"#)
    );

    let failing = dir.path().join("fail.json");
    std::fs::write(
        &failing,
        r#"{"StartAt":"F","States":{"F":{"Type":"Fail","Error":"E","Cause":"C"}}}"#,
    )
    .unwrap();
    let o = weft(home.path(), &["run", failing.to_str().unwrap()]);
    assert_eq!(
        (o.status.code(), stdout(&o).as_str()),
        (Some(1), r#"{"Error":"E","Cause":"C"}"#)
    );

    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"{"StartAt":"A","States":{"A":{"Type":"Pass","Next":"Nowhere"},"B":{"Type":"Succeed"}}}"#,
    )
    .unwrap();
    let o = weft(home.path(), &["run", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("/States/A/Next"), "{err}");
    assert!(
        err.contains("/States/B"),
        "the unreachable state is reported too: {err}"
    );
    let o = weft(home.path(), &["validate", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn run_history_uses_step_functions_events() {
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let def = dir.path().join("d.json");
    std::fs::write(
        &def,
        r#"{"StartAt":"P","States":{"P":{"Type":"Pass","End":true}}}"#,
    )
    .unwrap();
    let o = weft(home.path(), &["run", def.to_str().unwrap(), "--history"]);
    assert_eq!(o.status.code(), Some(0));
    let h: serde_json::Value = serde_json::from_str(&stderr(&o)).unwrap();
    let types: Vec<&str> = h["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "ExecutionStarted",
            "PassStateEntered",
            "PassStateExited",
            "ExecutionSucceeded"
        ]
    );
}

#[test]
fn a_failed_parallel_branch_interrupts_a_running_guest_and_ends_sibling_waits() {
    let home = tempfile::tempdir().unwrap();
    for p in ["fail.wasm", "hostile/spin.wasm"] {
        let o = weft(
            home.path(),
            &["plugin", "install", plugin(p).to_str().unwrap()],
        );
        assert!(o.status.success(), "{}", stderr(&o));
    }
    // a spinning guest (it would run until its fuel is gone), a poll loop, and a failure
    let def = serde_json::json!({"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": true, "Branches": [
        {"StartAt": "Spin", "States": {"Spin": {"Type": "Task", "Resource": "weft:plugin:hostile-spin", "End": true}}},
        {"StartAt": "Poll", "States": {"Poll": {"Type": "Wait", "Seconds": 300, "Next": "Again"},
                                       "Again": {"Type": "Pass", "Next": "Poll"}}},
        {"StartAt": "F", "States": {"F": {"Type": "Task", "Resource": "weft:plugin:fail", "End": true}}}
    ]}}});
    let file = home.path().join("parallel.asl.json");
    std::fs::write(&file, def.to_string()).unwrap();
    let o = weft(home.path(), &["run", file.to_str().unwrap(), "--history"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let out: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(out["Error"], "Custom.Failure", "{out}");
    let history: serde_json::Value = serde_json::from_str(&stderr(&o)).unwrap();
    let types: Vec<&str> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["type"].as_str())
        .collect();
    assert!(types.contains(&"WaitStateAborted"), "{types:?}");
    assert!(
        !types.contains(&"PassStateEntered"),
        "the poll loop stopped: {types:?}"
    );
    // the spinning guest was interrupted, or (on a slow machine) had not started yet
    let failed = types.iter().filter(|t| **t == "TaskFailed").count();
    assert_eq!(failed, 1, "only the failing task failed: {types:?}");
}

#[test]
fn express_execution_ids_and_missing_operators_are_named_as_aws_names_them() {
    let home = tempfile::tempdir().unwrap();
    let def = home.path().join("ids.asl.json");
    std::fs::write(
        &def,
        r#"{"StartAt":"S","States":{"S":{"Type":"Pass","Parameters":{"id.$":"$$.Execution.Id"},"End":true}}}"#,
    )
    .unwrap();
    let f = def.to_str().unwrap();
    let o = weft(
        home.path(),
        &["run", f, "--name", "e1", "--type", "EXPRESS"],
    );
    let out: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let id = out["id"].as_str().unwrap();
    let prefix = "arn:aws:states:us-east-1:000000000000:express:ids:e1:";
    assert!(id.starts_with(prefix), "{id}");
    assert_eq!(id[prefix.len()..].len(), 36, "a UUID ends the id: {id}");
    let o = weft(home.path(), &["run", f, "--name", "e1"]);
    assert_eq!(
        stdout(&o),
        r#"{"id":"arn:aws:states:us-east-1:000000000000:execution:ids:e1"}"#
    );

    // a missing operator is a set-up error that the usual Lambda retrier (AWS's generated one)
    // does not back off on (`States.TaskFailed` and `States.ALL` would match it, as on AWS)
    let def = home.path().join("missing.asl.json");
    std::fs::write(&def, serde_json::json!({"StartAt": "L", "States": {
        "L": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Parameters": {"FunctionName": "nope"},
              "Retry": [{"ErrorEquals": ["Lambda.ServiceException", "Lambda.AWSLambdaException",
                  "Lambda.SdkClientException", "Lambda.TooManyRequestsException"], "MaxAttempts": 3}], "Next": "P"},
        "P": {"Type": "Task", "Resource": "weft:plugin:nope", "End": true}}}).to_string()).unwrap();
    let o = weft(home.path(), &["run", def.to_str().unwrap(), "--history"]);
    let out: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(out["Error"], "Lambda.ResourceNotFoundException", "{out}");
    let history: serde_json::Value = serde_json::from_str(&stderr(&o)).unwrap();
    let attempts = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "TaskFailed")
        .count();
    assert_eq!(attempts, 1, "no retry of a missing function");
}

#[test]
fn a_callback_task_in_a_local_run_times_out_instead_of_returning_its_operators_output() {
    let home = tempfile::tempdir().unwrap();
    let o = weft(
        home.path(),
        &["plugin", "install", plugin("echo.wasm").to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let def = |limits: serde_json::Value| {
        let mut st = serde_json::json!({"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
            "Parameters": {"FunctionName": "echo", "Payload": {"token.$": "$$.Task.Token"}}, "End": true});
        for (k, v) in limits.as_object().unwrap() {
            st[k] = v.clone();
        }
        serde_json::json!({"StartAt": "S", "States": {"S": st}}).to_string()
    };
    let file = home.path().join("callback.asl.json");
    let f = file.to_str().unwrap();
    for (limits, error) in [
        (
            serde_json::json!({"TimeoutSeconds": 3600}),
            "States.Timeout",
        ),
        (
            serde_json::json!({"TimeoutSeconds": 3600, "HeartbeatSeconds": 60}),
            "States.HeartbeatTimeout",
        ),
        (serde_json::json!({}), "States.Runtime"),
    ] {
        std::fs::write(&file, def(limits.clone())).unwrap();
        let o = weft(home.path(), &["run", f, "--fast-forward"]);
        assert_eq!(o.status.code(), Some(1), "{limits}: {}", stdout(&o));
        let out: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
        assert_eq!(out["Error"], error, "{limits}: {out}");
    }
}

#[test]
fn validate_warns_about_operators_that_are_not_installed_and_still_exits_0() {
    let home = tempfile::tempdir().unwrap();
    let o = weft(
        home.path(),
        &["plugin", "install", plugin("echo.wasm").to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let file = home.path().join("needs.asl.json");
    std::fs::write(&file, serde_json::json!({"StartAt": "A", "States": {
        "A": {"Type": "Task", "Resource": "weft:plugin:echo", "Next": "B"},
        "B": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Parameters": {"FunctionName": "score"}, "Next": "C"},
        "C": {"Type": "Task", "Resource": "weft:plugin:shaper", "End": true}}}).to_string()).unwrap();
    let o = weft(home.path(), &["validate", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(!err.contains("`echo`"), "{err}");
    assert!(
        err.contains("/States/B/Resource: warning: operator `score` is not installed")
            && err.contains("Lambda.ResourceNotFoundException"),
        "{err}"
    );
    assert!(
        err.contains("/States/C/Resource: warning: operator `shaper`")
            && err.contains("Weft.PluginNotFound"),
        "{err}"
    );
}

/// Runs, invocations, validation and plugin installs only touch the plugin side of
/// `$WEFT_HOME`, which takes no lock: they go side by side with each other and with a process
/// that holds the database (a server or scheduler), without waiting for it.
#[test]
fn runs_go_side_by_side_beside_a_process_holding_the_database() {
    let home = tempfile::tempdir().unwrap();
    let o = weft(
        home.path(),
        &["plugin", "install", plugin("echo.wasm").to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    // this test process holds the database, as a running server would
    let db = sled::open(home.path().join("db")).unwrap();
    let def = home.path().join("echo.asl.json");
    std::fs::write(
        &def,
        r#"{"StartAt":"E","States":{"E":{"Type":"Task","Resource":"weft:plugin:echo","End":true}}}"#,
    )
    .unwrap();
    // weft without waiting for the database's lock
    let no_wait = |args: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_weft"));
        c.args(args)
            .env("WEFT_HOME", home.path())
            .env("WEFT_STORE_LOCK_WAIT", "0")
            .current_dir(repo());
        c
    };
    let runs: Vec<_> = (0..4)
        .map(|i| {
            let input = format!(r#"{{"n":{i}}}"#);
            no_wait(&["run", def.to_str().unwrap(), "--input", &input])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (i, child) in runs.into_iter().enumerate() {
        let o = child.wait_with_output().unwrap();
        assert_eq!(
            (o.status.code(), stdout(&o)),
            (Some(0), format!(r#"{{"n":{i}}}"#)),
            "{}",
            stderr(&o)
        );
    }
    for args in [
        vec!["invoke", "echo", "--input", "{}"],
        vec!["validate", def.to_str().unwrap()],
        vec!["plugin", "install", plugin("fail.wasm").to_str().unwrap()],
        vec!["plugin", "list"],
    ] {
        let o = no_wait(&args).output().unwrap();
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    }
    // a command that needs the database still says, in plain words, that it is in use
    let o = no_wait(&["dag", "runs", "anything"]).output().unwrap();
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("in use by another weft process"),
        "{}",
        stderr(&o)
    );
    drop(db);
}

#[test]
fn completions_are_printed_for_bash_zsh_and_fish() {
    let home = tempfile::tempdir().unwrap();
    for (shell, marker) in [
        ("bash", "complete -F _weft"),
        ("zsh", "#compdef weft"),
        ("fish", "complete -c weft"),
    ] {
        let o = weft(home.path(), &["completions", shell]);
        assert!(o.status.success(), "{shell}: {}", stderr(&o));
        let script = stdout(&o);
        assert!(
            script.contains(marker),
            "{shell}: no `{marker}` in\n{script}"
        );
        // nested subcommands and their flags are completed too
        assert!(
            script.contains("backfill") && script.contains("exit-when-idle"),
            "{shell}"
        );
    }
    let o = weft(home.path(), &["completions", "tcsh"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("possible values"), "{}", stderr(&o));
}

#[test]
fn a_subcommands_help_ends_with_examples() {
    let home = tempfile::tempdir().unwrap();
    let o = weft(home.path(), &["dag", "backfill", "--help"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let help = stdout(&o);
    assert!(
        help.ends_with(
            "Examples:\n  weft dag backfill branching --from 2024-03-01 --to 2024-03-07 --dags examples/dags"
        ),
        "{help}"
    );
    let short = stdout(&weft(home.path(), &["sm", "start", "-h"]));
    assert!(
        short.contains("Examples:\n  weft sm start orders"),
        "{short}"
    );
}

#[test]
fn dag_validate_on_a_folder_follows_dag_factory_conventions() {
    let home = tempfile::tempdir().unwrap();
    let dags = home.path().join("dags");
    std::fs::create_dir_all(dags.join("team")).unwrap();
    // folder defaults, a file with two DAGs, a decorator task, files that are not DAG files
    std::fs::write(
        dags.join("defaults.yml"),
        "default_args:\n  owner: platform\n  start_date: 2024-01-01\nschedule: none\n",
    )
    .unwrap();
    std::fs::write(
        dags.join("team/two.yml"),
        "first:\n  tasks:\n    - task_id: a\n      operator: airflow.operators.empty.EmptyOperator\nsecond:\n  vars: {x: &x 1}\n  tasks:\n    b:\n      decorator: airflow.decorators.task\n      python_callable: mod.f\n",
    )
    .unwrap();
    std::fs::write(dags.join("team/pod.yaml"), "apiVersion: v1\nkind: Pod\n").unwrap();
    std::fs::write(
        dags.join("datasets.yml"),
        "datasets:\n  - name: d\n    uri: s3://b/k\n",
    )
    .unwrap();
    let o = weft(home.path(), &["dag", "validate", dags.to_str().unwrap()]);
    let (out, err) = (stdout(&o), stderr(&o));
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert!(
        out.contains("two.yml: DAG first is valid (1 tasks)"),
        "{out}"
    );
    assert!(
        out.contains("two.yml: DAG second is valid (1 tasks)"),
        "{out}"
    );
    assert!(
        err.contains("pod.yaml:1: not a DAG file") && err.contains("; skipped"),
        "{err}"
    );
    assert!(err.contains("datasets.yml:1: not a DAG file"), "{err}");
    assert!(!err.contains("defaults.yml"), "{err}");
    assert!(
        err.contains("second: warning: line 6: `vars` is not a DAG field"),
        "{err}"
    );

    // An attacker's file in the folder: a tag that would run code is refused at its line and
    // fails validation (exit 2); the other files are still reported.
    std::fs::write(
        dags.join("evil.yml"),
        "evil:\n  tasks:\n    t:\n      operator: airflow.operators.empty.EmptyOperator\n      x: !!python/object/apply:os.system ['touch /tmp/weft-pwned']\n",
    )
    .unwrap();
    let o = weft(home.path(), &["dag", "validate", dags.to_str().unwrap()]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("evil.yml:5: tag `!!python/object/apply:os.system`"),
        "{err}"
    );
    // A folder with no DAG file at all is an error, not silence.
    let empty = home.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    std::fs::write(empty.join("notes.yml"), "- a\n").unwrap();
    let o = weft(home.path(), &["dag", "validate", empty.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("no DAG file found"), "{}", stderr(&o));
}
