//! The state observer (what traces are made of): every state visit that ends is reported once,
//! with a key that places it (Map iterations and Parallel branches under their state's key, a
//! second visit of a state apart from the first), the error of a failed state, and the history
//! ids of its entry and exit; a task request carries its visit's key.

use serde_json::{json, Value};
use std::sync::Mutex;
use weft_asl::{
    parse, run_express, HistoryEvent, Hooks, RunOptions, StateObserver, StateVisit, SystemClock,
    TaskFailure, TaskRequest, TaskRunner,
};

/// (name, key, error, entered event id, exited event id) of a reported visit.
type Visit = (String, String, Option<String>, u64, u64);

#[derive(Default)]
struct Visits(Mutex<Vec<Visit>>);

impl StateObserver for Visits {
    fn state_visited(&self, v: &StateVisit<'_>) {
        assert!(v.end >= v.start);
        self.0.lock().unwrap().push((
            v.name.to_string(),
            v.key.to_string(),
            v.error.map(str::to_string),
            v.entered_event,
            v.exited_event,
        ));
    }
}

/// Echoes, or fails with `Boom` when the payload says so; remembers the keys it saw.
#[derive(Default)]
struct Tasks(Mutex<Vec<String>>);

impl TaskRunner for Tasks {
    fn run_task(&self, req: &TaskRequest<'_>) -> Result<Value, TaskFailure> {
        self.0.lock().unwrap().push(req.key.clone());
        if req.payload == json!("boom") {
            return Err(TaskFailure {
                error: "Boom".into(),
                cause: "asked to".into(),
            });
        }
        Ok(req.payload.clone())
    }
}

#[test]
fn every_ended_visit_is_reported_once_with_a_key_that_places_it() {
    let sm = parse(
        &json!({"StartAt": "Fan", "States": {
            "Fan": {"Type": "Parallel", "Next": "Loop", "ResultPath": null, "Branches": [
                {"StartAt": "Each", "States": {"Each": {"Type": "Map", "ItemsPath": "$.items",
                  "End": true, "ItemProcessor": {"StartAt": "T", "States": {
                    "T": {"Type": "Task", "Resource": "weft:plugin:echo", "End": true}}}}}},
                {"StartAt": "Side", "States": {"Side": {"Type": "Pass", "End": true}}}]},
            "Loop": {"Type": "Choice", "Default": "Fail",
              "Choices": [{"Variable": "$.n", "NumericLessThan": 2, "Next": "Inc"}]},
            "Inc": {"Type": "Pass", "Parameters": {"n": 2, "items.$": "$.items"}, "Next": "Loop"},
            "Fail": {"Type": "Task", "Resource": "weft:plugin:echo", "Parameters": "boom", "Next": "Done",
              "Catch": [{"ErrorEquals": ["Boom"], "Next": "Done"}]},
            "Done": {"Type": "Succeed"}}})
        .to_string(),
    )
    .unwrap();
    let visits = Visits::default();
    let tasks = Tasks::default();
    let mut history: Vec<HistoryEvent> = Vec::new();
    let out = run_express(
        &sm,
        json!({"n": 0, "items": ["a", "b"]}),
        &RunOptions::default(),
        &tasks,
        &SystemClock,
        Hooks {
            history: Some(&mut history),
            observer: Some(&visits),
            ..Hooks::default()
        },
    );
    assert!(out.is_ok(), "{out:?}");
    let mut v = visits.0.into_inner().unwrap();
    v.sort_by(|a, b| a.1.cmp(&b.1));
    let keys: Vec<(&str, &str, Option<&str>)> = v
        .iter()
        .map(|(n, k, e, _, _)| (n.as_str(), k.as_str(), e.as_deref()))
        .collect();
    assert_eq!(
        keys,
        [
            ("Fan", "/0.1", None),
            ("Each", "/0.1@1/b0/0.1", None),
            ("T", "/0.1@1/b0/0.1@1/i0/0.1", None),
            ("T", "/0.1@1/b0/0.1@1/i1/0.1", None),
            ("Side", "/0.1@1/b1/0.1", None),
            ("Loop", "/1.1", None),
            ("Loop", "/1.2", None),
            ("Inc", "/2.1", None),
            // caught: the state exits (its attempt's failure is the task runner's to report)
            ("Fail", "/3.1", None),
            ("Done", "/4.1", None),
        ]
    );
    // the entry and exit ids are the visit's own history events
    for (name, _, error, entered, exited) in &v {
        let ev = |id: u64| history.iter().find(|e| e.id == id).unwrap();
        assert!(ev(*entered).event_type.ends_with("StateEntered"), "{name}");
        assert_eq!(ev(*entered).details["name"], json!(name));
        if error.is_none() {
            assert!(ev(*exited).event_type.ends_with("StateExited"), "{name}");
        }
    }
    let mut seen = tasks.0.into_inner().unwrap();
    seen.sort();
    assert_eq!(
        seen,
        ["/0.1@1/b0/0.1@1/i0/0.1", "/0.1@1/b0/0.1@1/i1/0.1", "/3.1"]
    );
}

#[test]
fn without_an_observer_nothing_gets_keys() {
    let sm = parse(
        r#"{"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "weft:plugin:echo", "End": true}}}"#,
    )
    .unwrap();
    let tasks = Tasks::default();
    run_express(
        &sm,
        json!(1),
        &RunOptions::default(),
        &tasks,
        &SystemClock,
        Hooks::default(),
    )
    .unwrap();
    assert_eq!(tasks.0.into_inner().unwrap(), [""]);
}

#[test]
fn a_state_that_fails_the_execution_is_reported_with_its_error() {
    let sm = parse(
        r#"{"StartAt": "P", "States": {"P": {"Type": "Pass", "Next": "T"},
            "T": {"Type": "Task", "Resource": "weft:plugin:echo", "End": true}}}"#,
    )
    .unwrap();
    let visits = Visits::default();
    let r = run_express(
        &sm,
        json!("boom"),
        &RunOptions::default(),
        &Tasks::default(),
        &SystemClock,
        Hooks {
            observer: Some(&visits),
            ..Hooks::default()
        },
    );
    assert_eq!(r.unwrap_err().error, "Boom");
    let v = visits.0.into_inner().unwrap();
    let got: Vec<(&str, Option<&str>, bool)> = v
        .iter()
        .map(|(n, _, e, _, x)| (n.as_str(), e.as_deref(), *x != 0))
        .collect();
    assert_eq!(got, [("P", None, true), ("T", Some("Boom"), false)]);
}
