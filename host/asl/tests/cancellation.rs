//! A failed Parallel branch or Map iteration stops its siblings at once, as in Step
//! Functions: running tasks see their cancel switch, waits end, no further state is entered,
//! a sibling's own Retry/Catch never handles the stop, and the enclosing state reports the
//! failure that caused it.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use weft_asl::{
    parse, run_express, Clock, HistoryEvent, Hooks, RunOptions, SystemClock, TaskFailure,
    TaskRequest, TaskRunner,
};

/// `FunctionName` `block`: runs until its cancel switch is thrown (or 30 s pass, which a
/// working interpreter never lets happen); `fail`: fails at once; anything else echoes.
/// `fail_late`: fails once `late_after` `block` tasks are running (so that the failure
/// surely lands while they run).
#[derive(Default)]
struct Blocker {
    saw_cancel: AtomicU32,
    ran_out: AtomicU32,
    calls: AtomicU32,
    blocking: AtomicU32,
    late_after: u32,
}

impl Blocker {
    fn late(n: u32) -> Self {
        Blocker {
            late_after: n,
            ..Blocker::default()
        }
    }
}

/// The real clock, keeping the sum of what it was asked to sleep.
#[derive(Default)]
struct SpyClock {
    slept_ms: AtomicU64,
}

impl Clock for SpyClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
    fn sleep(&self, d: Duration) {
        self.slept_ms
            .fetch_add(d.as_millis() as u64, Ordering::SeqCst);
        std::thread::sleep(d)
    }
}

impl TaskRunner for Blocker {
    fn run_task(&self, req: &TaskRequest<'_>) -> Result<Value, TaskFailure> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        match req.target.as_str() {
            "block" => {
                self.blocking.fetch_add(1, Ordering::SeqCst);
                let end = Instant::now() + Duration::from_secs(30);
                while Instant::now() < end {
                    if req.cancel.is_cancelled() {
                        self.saw_cancel.fetch_add(1, Ordering::SeqCst);
                        return Err(TaskFailure {
                            error: "Interrupted".into(),
                            cause: "the task was interrupted".into(),
                        });
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
                self.ran_out.fetch_add(1, Ordering::SeqCst);
                Ok(json!("ran to the end"))
            }
            "fail_late" => {
                let end = Instant::now() + Duration::from_secs(30);
                while self.blocking.load(Ordering::SeqCst) < self.late_after && Instant::now() < end
                {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(TaskFailure {
                    error: "Late.Failure".into(),
                    cause: "failed while the others ran".into(),
                })
            }
            "fail" => Err(TaskFailure {
                error: "Work.Failed".into(),
                cause: "the work failed".into(),
            }),
            _ => Ok(req.payload.clone()),
        }
    }
}

fn task(f: &str) -> Value {
    json!({"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
           "Parameters": {"FunctionName": f, "Payload.$": "$"}, "OutputPath": "$.Payload"})
}

/// A run's output, or its error name and cause.
type Outcome = Result<Value, (String, Option<String>)>;

fn run(def: Value, runner: &Blocker, threads: usize) -> (Outcome, Vec<HistoryEvent>) {
    let sm = parse(&def.to_string()).unwrap_or_else(|e| panic!("invalid definition:\n{e}"));
    let opts = RunOptions {
        max_threads: threads,
        ..RunOptions::default()
    };
    let mut history: Vec<HistoryEvent> = Vec::new();
    let r = run_express(
        &sm,
        json!({}),
        &opts,
        runner,
        &SystemClock,
        Hooks {
            history: Some(&mut history),
            ..Hooks::default()
        },
    )
    .map_err(|e| (e.error, e.cause));
    (r, history)
}

fn entered(h: &[HistoryEvent], name: &str) -> bool {
    h.iter()
        .any(|e| e.event_type.ends_with("StateEntered") && e.details["name"] == name)
}

fn count(h: &[HistoryEvent], ty: &str) -> usize {
    h.iter().filter(|e| e.event_type == ty).count()
}

#[test]
fn a_failed_branch_stops_a_running_task_in_its_sibling() {
    let mut work = task("block");
    work["Next"] = json!("AfterWork");
    let def = json!({"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": true, "Branches": [
        {"StartAt": "Work", "States": {"Work": work, "AfterWork": {"Type": "Pass", "End": true}}},
        {"StartAt": "Timeout", "States": {"Timeout": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "fail_late"}, "End": true}}}
    ]}}});
    let b = Blocker::late(1);
    let (r, h) = run(def, &b, 2);
    assert_eq!(r.map_err(|e| e.0), Err("Late.Failure".to_string()));
    assert_eq!(
        b.saw_cancel.load(Ordering::SeqCst),
        1,
        "the task saw its switch"
    );
    assert_eq!(b.ran_out.load(Ordering::SeqCst), 0);
    assert!(!entered(&h, "AfterWork"), "no state after the stop");
    assert_eq!(count(&h, "TaskStateAborted"), 1);
    assert_eq!(count(&h, "ParallelStateFailed"), 1);
    assert_eq!(
        count(&h, "TaskFailed"),
        1,
        "only the failing task failed; the stopped one was aborted"
    );
}

#[test]
fn a_failed_branch_ends_a_sibling_wait_and_its_loop() {
    // the common "poll loop + timeout branch" shape: the loop would go on for 30 s
    let def = json!({"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": true,
        "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Handled"}],
        "Branches": [
        {"StartAt": "Poll", "States": {
            "Poll": {"Type": "Wait", "Seconds": 30, "Next": "Check"},
            "Check": {"Type": "Pass", "Next": "Poll"}}},
        {"StartAt": "Work", "States": {"Work": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "fail"}, "End": true}}}
    ]}, "Handled": {"Type": "Pass", "End": true}}});
    let sm = parse(&def.to_string()).expect("valid");
    let b = Blocker::default();
    let clock = SpyClock::default();
    let mut h: Vec<HistoryEvent> = Vec::new();
    let r = run_express(
        &sm,
        json!({}),
        &RunOptions::default(),
        &b,
        &clock,
        Hooks {
            history: Some(&mut h),
            ..Hooks::default()
        },
    );
    let out = r.expect("caught");
    assert_eq!(
        out["Error"], "Work.Failed",
        "the Catch sees the branch's error: {out}"
    );
    assert!(!entered(&h, "Check"), "the loop did not go round");
    assert!(
        clock.slept_ms.load(Ordering::SeqCst) < 30_000,
        "the 30 s wait was cut short"
    );
    assert!(count(&h, "WaitStateAborted") <= 1);
    assert!(entered(&h, "Handled"));
}

#[test]
fn a_siblings_own_catch_and_retry_do_not_handle_the_stop() {
    let mut work = task("block");
    work["Catch"] = json!([{"ErrorEquals": ["States.ALL"], "Next": "Compensate"}]);
    work["Retry"] =
        json!([{"ErrorEquals": ["States.ALL"], "MaxAttempts": 5, "IntervalSeconds": 1}]);
    work["End"] = json!(true);
    let def = json!({"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": true, "Branches": [
        {"StartAt": "Work", "States": {"Work": work, "Compensate": {"Type": "Pass", "End": true}}},
        {"StartAt": "Boom", "States": {"Boom": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "fail_late"}, "End": true}}}
    ]}}});
    let b = Blocker::late(1);
    let (r, h) = run(def, &b, 2);
    assert_eq!(r.map_err(|e| e.0), Err("Late.Failure".to_string()));
    assert!(!entered(&h, "Compensate"));
    assert_eq!(b.saw_cancel.load(Ordering::SeqCst), 1);
    assert_eq!(
        b.calls.load(Ordering::SeqCst),
        2,
        "no retry of the stopped task"
    );
}

#[test]
fn every_branch_runs_at_once_even_with_more_branches_than_threads() {
    // with one worker thread per core, the failing third branch would only start after the
    // first two ended on their own
    let def = json!({"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": true, "Branches": [
        {"StartAt": "A", "States": {"A": task("block").as_object().map(|o| { let mut o = o.clone(); o.insert("End".into(), json!(true)); Value::Object(o) }).unwrap()}},
        {"StartAt": "B", "States": {"B": task("block").as_object().map(|o| { let mut o = o.clone(); o.insert("End".into(), json!(true)); Value::Object(o) }).unwrap()}},
        {"StartAt": "C", "States": {"C": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "fail_late"}, "End": true}}}
    ]}}});
    let b = Blocker::late(2);
    let (r, _) = run(def, &b, 1);
    assert_eq!(r.map_err(|e| e.0), Err("Late.Failure".to_string()));
    assert_eq!(b.saw_cancel.load(Ordering::SeqCst), 2);
    assert_eq!(b.ran_out.load(Ordering::SeqCst), 0);
}

#[test]
fn a_failed_map_iteration_stops_running_iterations_and_nested_branches() {
    let mut block = task("block");
    block["End"] = json!(true);
    let def = json!({"StartAt": "M", "States": {"M": {"Type": "Map", "End": true,
        "ItemProcessor": {"StartAt": "Which", "States": {
            "Which": {"Type": "Choice", "Choices": [{"Variable": "$.fail", "BooleanEquals": true, "Next": "Boom"}], "Default": "Inner"},
            "Boom": {"Type": "Fail", "Error": "Item.Failed", "Cause": "bad item"},
            "Inner": {"Type": "Parallel", "End": true, "Branches": [
                {"StartAt": "B1", "States": {"B1": block.clone()}},
                {"StartAt": "B2", "States": {"B2": block}}]}}}}}});
    let sm = parse(&def.to_string()).expect("valid");
    let b = Blocker::default();
    let mut history: Vec<HistoryEvent> = Vec::new();
    let opts = RunOptions {
        max_threads: 4,
        ..RunOptions::default()
    };
    let r = run_express(
        &sm,
        json!([{"fail": false}, {"fail": false}, {"fail": true}]),
        &opts,
        &b,
        &SystemClock,
        Hooks {
            history: Some(&mut history),
            ..Hooks::default()
        },
    );
    assert_eq!(r.map_err(|e| e.error), Err("Item.Failed".to_string()));
    assert_eq!(b.ran_out.load(Ordering::SeqCst), 0);
    assert_eq!(
        b.saw_cancel.load(Ordering::SeqCst),
        b.calls.load(Ordering::SeqCst),
        "every task that started was stopped"
    );
    assert_eq!(count(&history, "MapIterationFailed"), 1);
    assert_eq!(count(&history, "MapStateFailed"), 1);
}

#[test]
fn a_tolerated_failure_does_not_stop_the_others_but_one_too_many_does() {
    let mut slow = task("echo");
    slow["End"] = json!(true);
    let def = |tolerated: u64| {
        json!({"StartAt": "M", "States": {"M": {"Type": "Map", "End": true,
        "ToleratedFailureCount": tolerated,
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
            "StartAt": "Which", "States": {
            "Which": {"Type": "Choice", "Choices": [{"Variable": "$.fail", "BooleanEquals": true, "Next": "Boom"}], "Default": "Ok"},
            "Boom": {"Type": "Fail", "Error": "Item.Failed"},
            "Ok": slow.clone()}}}}})
    };
    let items = json!([{"fail": true}, {"fail": false}, {"fail": true}, {"fail": false}]);
    for (tolerated, ok) in [(2, true), (1, false)] {
        let sm = parse(&def(tolerated).to_string()).expect("valid");
        let b = Blocker::default();
        let r = run_express(
            &sm,
            items.clone(),
            &RunOptions::default(),
            &b,
            &SystemClock,
            Hooks::default(),
        );
        if ok {
            let out = r.expect("within tolerance");
            assert_eq!(out[1], json!({"fail": false}));
            assert_eq!(out[0]["Error"], "Item.Failed");
        } else {
            assert_eq!(
                r.map_err(|e| e.error),
                Err("States.ExceedToleratedFailureThreshold".to_string())
            );
        }
    }
}
