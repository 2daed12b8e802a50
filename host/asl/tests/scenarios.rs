//! Hand-written end-to-end scenarios (beyond the recorded conformance cases): JSONata
//! features, variables, Retry/Catch with a task runner, Map/Parallel details, history.

use serde_json::{json, Value};
use std::sync::atomic::{AtomicU32, Ordering};
use weft_asl::{
    parse, run_express, FakeClock, HistoryEvent, Hooks, ItemReader, NoTasks, RunOptions,
    StateError, TaskFailure, TaskRequest, TaskRunner,
};

fn run(def: Value, input: Value) -> Result<Value, (String, Option<String>)> {
    let sm = parse(&def.to_string()).unwrap_or_else(|e| panic!("invalid definition:\n{e}"));
    let clock = FakeClock::default();
    run_express(
        &sm,
        input,
        &RunOptions::default(),
        &NoTasks,
        &clock,
        Hooks::default(),
    )
    .map_err(|e| (e.error, e.cause))
}

fn pass_output(expr: Value, input: Value) -> Result<Value, (String, Option<String>)> {
    run(
        json!({"QueryLanguage": "JSONata", "StartAt": "S", "States": {"S": {"Type": "Pass", "Output": expr, "End": true}}}),
        input,
    )
}

#[test]
fn jsonata_basics() {
    assert_eq!(
        pass_output(json!("{% $variable := 1 %}"), json!({})),
        Ok(json!(1))
    );
    assert_eq!(
        pass_output(json!([1, "{% $number(\"2\") %}", 3]), json!({})),
        Ok(json!([1, 2, 3]))
    );
    assert_eq!(
        pass_output(
            json!("{% $contains('hello$world', /^hello\\$/) %}"),
            json!({})
        ),
        Ok(json!(true))
    );
    assert_eq!(
        pass_output(
            json!({"a": "{% $states.input.x * 2 %}", "b.$": "$"}),
            json!({"x": 21})
        ),
        Ok(json!({"a": 42, "b.$": "$"}))
    );
    assert_eq!(
        pass_output(json!("{% $states.context.State.Name %}"), json!({})),
        Ok(json!("S"))
    );
    assert_eq!(
        pass_output(json!("{% $partition([1,2,3], 2) %}"), json!({})),
        Ok(json!([[1, 2], [3]]))
    );
    assert_eq!(
        pass_output(json!("{% $hash('input data', 'MD5') %}"), json!({})),
        Ok(json!("812f45842bc6d66ee14572ce20db8e86"))
    );
    assert_eq!(
        pass_output(
            json!("{% $random(3) = $random(3) and $random() < 1 %}"),
            json!({})
        ),
        Ok(json!(true))
    );
    assert_eq!(
        pass_output(json!("{% $range(1, 9, 3) %}"), json!({})),
        Ok(json!([1, 4, 7]))
    );
    let def = json!({"QueryLanguage": "JSONata", "StartAt": "A", "States": {
        "A": {"Type": "Pass", "Assign": {"sum": {"a": [1, "x"]}, "count": 2}, "Next": "B"},
        "B": {"Type": "Pass", "Output": "{% [$sum.a[1], $count] %}", "End": true}}});
    assert_eq!(run(def, json!({})), Ok(json!(["x", 2])));
    let e = pass_output(json!("{% $sum %}"), json!({})).unwrap_err();
    assert!(e.1.unwrap_or_default().ends_with(
        "The JSONata expression '$sum' specified for the field 'Output' returned an unsupported result type."
    ));
    let e = pass_output(json!({"r": "{% $nope %}"}), json!({})).unwrap_err();
    assert_eq!(e.0, "States.QueryEvaluationError");
    assert!(e.1.unwrap_or_default().ends_with(
        "The JSONata expression '$nope' specified for the field 'Output/r' returned nothing (undefined)."
    ));
}

#[test]
fn jsonata_map_fields() {
    let base = |k: &str, v: Value| {
        let mut m = json!({"Type": "Map", "Items": [1], "MaxConcurrency": 1,
            "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}, "End": true});
        m[k] = v;
        json!({"QueryLanguage": "JSONata", "StartAt": "Start", "States": {"Start": m}})
    };
    assert_eq!(
        run(
            base("MaxConcurrency", json!("{% $variable := 1 %}")),
            json!({})
        ),
        Ok(json!([1]))
    );
    assert_eq!(
        run(
            base("ToleratedFailureCount", json!("{% $variable := 1 %}")),
            json!({})
        ),
        Ok(json!([1]))
    );
    assert_eq!(
        run(
            base("ToleratedFailurePercentage", json!("{% $variable := 1 %}")),
            json!({})
        ),
        Ok(json!([1]))
    );
    assert_eq!(
        run(
            base("Items", json!("{% $states.input.input_value %}")),
            json!({"input_value": [1, 2, 3]})
        ),
        Ok(json!([1, 2, 3]))
    );
    assert_eq!(
        run(
            base(
                "ItemSelector",
                json!({"v": "{% $states.context.Map.Item.Value %}", "i": "{% $states.context.Map.Item.Index %}"})
            ),
            json!({})
        ),
        Ok(json!([{"v": 1, "i": 0}]))
    );
}

#[test]
fn variables_scoping_and_order() {
    // OutputPath sees the value from before this state's Assign
    let def = json!({"StartAt": "State0", "States": {
        "State0": {"Type": "Pass", "Result": {"q": "?"}, "Assign": {"question.$": "$.q", "answer": 42}, "Next": "State1"},
        "State1": {"Type": "Pass", "InputPath": "$answer", "ResultPath": "$.theAnswer", "OutputPath": "$answer",
                   "Assign": {"answer": "<omitted>"}, "End": true}}});
    assert_eq!(run(def, json!({})), Ok(json!(42)));
    // Choice: rule Assign when matched, state Assign on Default
    let def = |v: Value| {
        let _ = v;
        json!({"StartAt": "C", "States": {
            "C": {"Type": "Choice", "Choices": [
                {"Variable": "$.input_value", "IsPresent": false, "Assign": {"status": "UNKNOWN"}, "Next": "F"},
                {"Variable": "$.input_value", "NumericEquals": 42, "Assign": {"status": "CORRECT"}, "Next": "F"}],
              "Assign": {"status": "INCORRECT", "guess.$": "$.input_value"}, "Default": "F"},
            "F": {"Type": "Pass", "Parameters": {"result.$": "$status"}, "End": true}}})
    };
    assert_eq!(
        run(def(json!(0)), json!({"input_value": 42})),
        Ok(json!({"result": "CORRECT"}))
    );
    assert_eq!(
        run(def(json!(0)), json!({"input_value": 1})),
        Ok(json!({"result": "INCORRECT"}))
    );
    assert_eq!(
        run(def(json!(0)), json!({})),
        Ok(json!({"result": "UNKNOWN"}))
    );
    // Parallel branches read outer variables
    let def = json!({"StartAt": "A", "States": {
        "A": {"Type": "Pass", "Assign": {"x": 42}, "Next": "P"},
        "P": {"Type": "Parallel", "End": true, "Branches": [
            {"StartAt": "B", "States": {"B": {"Type": "Pass", "Parameters": {"x.$": "$x"}, "End": true}}},
            {"StartAt": "C", "States": {"C": {"Type": "Pass", "End": true}}}]}}});
    assert_eq!(run(def, json!({"i": 1})), Ok(json!([{"x": 42}, {"i": 1}])));
    // undefined variable
    let def = json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Parameters": {"x.$": "$nope"}, "End": true}}});
    assert_eq!(run(def, json!({})).unwrap_err().0, "States.Runtime");
}

struct Flaky {
    calls: AtomicU32,
    fail_times: u32,
}

impl TaskRunner for Flaky {
    fn run_task(&self, req: &TaskRequest<'_>) -> Result<Value, TaskFailure> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        assert_eq!(req.attempt, n + 1);
        if n < self.fail_times {
            return Err(TaskFailure {
                error: "Boom".into(),
                cause: format!("attempt {}", n + 1),
            });
        }
        Ok(json!({"echo": req.payload, "target": req.target}))
    }
}

#[test]
fn retry_catch_and_lambda_wrapping() {
    let def = json!({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
              "Parameters": {"FunctionName": "arn:aws:lambda:us-east-1:1:function:fn", "Payload": {"a.$": "$.a"}},
              "ResultSelector": {"p.$": "$.Payload", "code.$": "$.StatusCode"},
              "Retry": [{"ErrorEquals": ["Boom"], "IntervalSeconds": 2, "MaxAttempts": 2, "BackoffRate": 3}],
              "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.err", "Next": "Caught"}],
              "End": true},
        "Caught": {"Type": "Pass", "End": true}}});
    let sm = parse(&def.to_string()).expect("valid");
    let clock = FakeClock::default();
    let t0 = clock_ms(&clock);
    let ok = Flaky {
        calls: AtomicU32::new(0),
        fail_times: 2,
    };
    let out = run_express(
        &sm,
        json!({"a": 1}),
        &RunOptions::default(),
        &ok,
        &clock,
        Hooks::default(),
    );
    assert_eq!(
        out,
        Ok(json!({"p": {"echo": {"a": 1}, "target": "fn"}, "code": 200}))
    );
    assert_eq!(
        clock_ms(&clock) - t0,
        2000 + 6000,
        "retry delays 2s then 6s"
    );
    let bad = Flaky {
        calls: AtomicU32::new(0),
        fail_times: 10,
    };
    let out = run_express(
        &sm,
        json!({"a": 1}),
        &RunOptions::default(),
        &bad,
        &clock,
        Hooks::default(),
    );
    assert_eq!(
        out,
        Ok(json!({"a": 1, "err": {"Error": "Boom", "Cause": "attempt 3"}}))
    );
}

fn clock_ms(c: &FakeClock) -> i64 {
    use weft_asl::Clock;
    c.now().timestamp_millis()
}

#[test]
fn history_ids_and_types() {
    let def = json!({"StartAt": "A", "States": {
        "A": {"Type": "Pass", "Next": "M"},
        "M": {"Type": "Map", "MaxConcurrency": 1, "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}, "End": true}}});
    let sm = parse(&def.to_string()).expect("valid");
    let mut events: Vec<HistoryEvent> = Vec::new();
    let clock = FakeClock::default();
    let out = run_express(
        &sm,
        json!([1, 2]),
        &RunOptions::default(),
        &NoTasks,
        &clock,
        Hooks {
            history: Some(&mut events),
            item_reader: None,
            result_writer: None,
            control: None,
            observer: None,
        },
    );
    assert_eq!(out, Ok(json!([1, 2])));
    let types: Vec<&str> = events.iter().map(|e| e.event_type).collect();
    assert_eq!(
        types,
        vec![
            "ExecutionStarted",
            "PassStateEntered",
            "PassStateExited",
            "MapStateEntered",
            "MapStateStarted",
            "MapIterationStarted",
            "PassStateEntered",
            "PassStateExited",
            "MapIterationSucceeded",
            "MapIterationStarted",
            "PassStateEntered",
            "PassStateExited",
            "MapIterationSucceeded",
            "MapStateSucceeded",
            "MapStateExited",
            "ExecutionSucceeded"
        ]
    );
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.id, i as u64 + 1);
        assert!(e.previous_event_id < e.id);
    }
    assert_eq!(events[1].previous_event_id, 0);
    assert_eq!(events[2].previous_event_id, 2);
    let j = events[1].to_json();
    assert_eq!(j["stateEnteredEventDetails"]["name"], "A");
}

#[test]
fn wait_and_timeouts() {
    let def = json!({"TimeoutSeconds": 5, "StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 10, "End": true}}});
    assert_eq!(run(def, json!({})).unwrap_err().0, "States.Timeout");
    let def = json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "TimestampPath": "$.t", "End": true}}});
    assert_eq!(
        run(def.clone(), json!({"t": "2016-03-14T01:59:00Z"})),
        Ok(json!({"t": "2016-03-14T01:59:00Z"}))
    );
    assert_eq!(
        run(def, json!({"t": "nope"})).unwrap_err().0,
        "States.Runtime"
    );
}

#[test]
fn jsonpath_filters_and_intrinsics() {
    let def = json!({"StartAt": "S0", "States": {
        "S0": {"Type": "Pass", "Parameters": {"FromInput.$": "$.users[?(@.status == 0)]"}, "OutputPath": "$.FromInput", "Next": "S2"},
        "S2": {"Type": "Pass", "Parameters": {"v.$": "$", "s.$": "States.JsonToString($.[?(@.year <= 1998)])"}, "Next": "S3"},
        "S3": {"Type": "Pass", "InputPath": "$.v", "OutputPath": "$.[?(@.year < 1999)].name", "End": true}}});
    let input = json!({"users": [{"name": "a", "status": 0, "year": 1990}, {"name": "b", "status": 1, "year": 1991}, {"name": "c", "status": 0, "year": 2000}]});
    assert_eq!(run(def, input), Ok(json!(["a"])));
}

#[test]
fn map_item_batcher() {
    let def = json!({"StartAt": "M", "States": {"M": {"Type": "Map",
        "ItemBatcher": {"MaxItemsPerBatch": 2, "BatchInput": {"b.$": "$.tag"}},
        "ItemsPath": "$.xs",
        "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}, "End": true}}});
    assert_eq!(
        run(def, json!({"xs": [1, 2, 3], "tag": "t"})),
        Ok(
            json!([{"BatchInput": {"b": "t"}, "Items": [1, 2]}, {"BatchInput": {"b": "t"}, "Items": [3]}])
        )
    );
}

#[test]
fn map_and_parallel_failures() {
    let proc_ = |mode: &str| {
        json!({"ProcessorConfig": {"Mode": mode}, "StartAt": "F",
        "States": {"F": {"Type": "Fail", "Error": "Boom", "Cause": "c"}}})
    };
    let def = |mode: &str| json!({"StartAt": "M", "States": {"M": {"Type": "Map", "ItemProcessor": proc_(mode), "End": true}}});
    assert_eq!(
        run(def("INLINE"), json!([1])),
        Err(("Boom".into(), Some("c".into())))
    );
    assert_eq!(
        run(def("DISTRIBUTED"), json!([1])),
        Err((
            "States.ExceedToleratedFailureThreshold".into(),
            Some("The specified tolerated failure threshold was exceeded".into())
        ))
    );
    let def = json!({"StartAt": "P", "States": {"P": {"Type": "Parallel", "Branches": [
        {"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "FailureType", "Cause": "Cause description"}}}],
        "Catch": [{"ErrorEquals": ["FailureType"], "Next": "C"}], "Next": "N"},
        "C": {"Type": "Pass", "End": true}, "N": {"Type": "Pass", "End": true}}});
    assert_eq!(
        run(def, json!({})),
        Ok(json!({"Error": "FailureType", "Cause": "Cause description"}))
    );
}

#[test]
fn json_string_edge_cases() {
    let def = |f: &str| json!({"StartAt": "S", "States": {"S": {"Type": "Pass", "Parameters": {"r.$": f}, "End": true}}});
    assert_eq!(
        run(def("States.JsonToString($.v)"), json!({"v": -0})),
        Ok(json!({"r": "0"}))
    );
    assert_eq!(
        run(def("States.StringToJson($.v)"), json!({"v": "-0"})),
        Ok(json!({"r": 0}))
    );
    assert_eq!(
        run(def("States.StringToJson($.v)"), json!({"v": " "})),
        Ok(json!({"r": null}))
    );
    assert_eq!(
        run(
            def("States.StringSplit($.v, '.+,=')"),
            json!({"v": "This.is+a,test=string"})
        ),
        Ok(json!({"r": ["This", "is", "a", "test", "string"]}))
    );
}

struct Files;
impl ItemReader for Files {
    fn read(&self, resource: &str, parameters: &Value) -> Result<Vec<u8>, StateError> {
        assert_eq!(resource, "arn:aws:states:::s3:getObject");
        match parameters["Key"].as_str() {
            Some("rows.csv") => Ok(b"id,name\n1,a\n2,\"b,c\"\n".to_vec()),
            _ => Err(StateError::new("States.ItemReaderFailed", "no such key")),
        }
    }
}

#[test]
fn map_item_reader_csv() {
    let def = json!({"StartAt": "M", "States": {"M": {"Type": "Map",
        "ItemReader": {"Resource": "arn:aws:states:::s3:getObject",
            "ReaderConfig": {"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"},
            "Parameters": {"Bucket": "b", "Key.$": "$.key"}},
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"},
            "StartAt": "P", "States": {"P": {"Type": "Pass", "Parameters": {"n.$": "$.name"}, "End": true}}},
        "End": true}}});
    let sm = parse(&def.to_string()).expect("valid");
    let clock = FakeClock::default();
    let out = run_express(
        &sm,
        json!({"key": "rows.csv"}),
        &RunOptions::default(),
        &NoTasks,
        &clock,
        Hooks {
            history: None,
            item_reader: Some(&Files),
            result_writer: None,
            control: None,
            observer: None,
        },
    );
    assert_eq!(out, Ok(json!([{"n": "a"}, {"n": "b,c"}])));
    let out = run_express(
        &sm,
        json!({"key": "nope"}),
        &RunOptions::default(),
        &NoTasks,
        &clock,
        Hooks {
            history: None,
            item_reader: Some(&Files),
            result_writer: None,
            control: None,
            observer: None,
        },
    );
    assert_eq!(
        out.map_err(|e| e.error),
        Err("States.ItemReaderFailed".to_string())
    );
}

#[test]
fn map_item_reader_max_items_path() {
    let def = json!({"StartAt": "M", "States": {"M": {"Type": "Map",
        "ItemReader": {"Resource": "arn:aws:states:::s3:getObject",
            "ReaderConfig": {"InputType": "CSV", "MaxItemsPath": "$.limit"},
            "Parameters": {"Bucket": "b", "Key": "rows.csv"}},
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"},
            "StartAt": "P", "States": {"P": {"Type": "Pass", "Parameters": {"n.$": "$.name"}, "End": true}}},
        "End": true}}});
    let sm = parse(&def.to_string()).expect("valid");
    let run = |input: Value| {
        run_express(
            &sm,
            input,
            &RunOptions::default(),
            &NoTasks,
            &FakeClock::default(),
            Hooks {
                history: None,
                item_reader: Some(&Files),
                result_writer: None,
                control: None,
                observer: None,
            },
        )
    };
    assert_eq!(run(json!({"limit": 1})), Ok(json!([{"n": "a"}])));
    let e = run(json!({"limit": "two"})).unwrap_err();
    assert_eq!(e.error, "States.Runtime");
    // MaxItems and MaxItemsPath together are refused by the validator
    let both = def.to_string().replace(
        r#""MaxItemsPath":"$.limit""#,
        r#""MaxItemsPath":"$.limit","MaxItems":3"#,
    );
    let errs = parse(&both).unwrap_err();
    assert!(
        errs.errors
            .iter()
            .any(|e| e.pointer.ends_with("/ReaderConfig/MaxItemsPath")),
        "{errs:?}"
    );
}

#[test]
fn threaded_map_keeps_order_and_history_ids() {
    let def = json!({"StartAt": "M", "States": {"M": {"Type": "Map", "MaxConcurrency": 3,
        "ItemSelector": {"i.$": "$$.Map.Item.Index", "v.$": "$$.Map.Item.Value"},
        "ItemProcessor": {"StartAt": "P", "States": {
            "P": {"Type": "Pass", "Parameters": {"sq.$": "States.MathAdd($.v, $.i)"}, "Next": "W"},
            "W": {"Type": "Wait", "Seconds": 1, "End": true}}},
        "End": true}}});
    let sm = parse(&def.to_string()).expect("valid");
    let opts = RunOptions {
        max_threads: 4,
        ..RunOptions::default()
    };
    let mut events: Vec<HistoryEvent> = Vec::new();
    let clock = FakeClock::default();
    let input: Vec<Value> = (0..500).map(|i| json!(i)).collect();
    let out = run_express(
        &sm,
        Value::Array(input),
        &opts,
        &NoTasks,
        &clock,
        Hooks {
            history: Some(&mut events),
            item_reader: None,
            result_writer: None,
            control: None,
            observer: None,
        },
    )
    .expect("runs");
    let expected: Vec<Value> = (0..500).map(|i| json!({"sq": 2 * i})).collect();
    assert_eq!(out, Value::Array(expected));
    let mut ids: Vec<u64> = events.iter().map(|e| e.id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), events.len(), "event ids are unique");
    assert_eq!(
        events
            .iter()
            .filter(|e| e.event_type == "MapIterationSucceeded")
            .count(),
        500
    );
}

struct Echo;
impl TaskRunner for Echo {
    fn run_task(&self, req: &TaskRequest<'_>) -> Result<Value, TaskFailure> {
        Ok(json!({"fn": req.target, "got": req.payload, "token": req.task_token.is_some()}))
    }
}

#[test]
fn jsonata_task_dataflow_with_lambda_invoke() {
    let def = json!({"StartAt": "P", "States": {
        "P": {"Type": "Pass", "Result": {"riddle": "?"}, "Assign": {"answer": 42, "inputData.$": "$"},
              "ResultPath": "$.enigma.mystery", "Next": "T"},
        "T": {"QueryLanguage": "JSONata", "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
              "Arguments": {"FunctionName": "{% $states.input.functionName %}",
                            "Payload": {"q": "{% $states.input.enigma.mystery.riddle %}", "a": "{% $answer %}"}},
              "Assign": {"answer": "<omitted>", "code": "{% $states.result.StatusCode %}"},
              "Output": {"result": "{% $states.result.Payload %}", "old": "{% $answer %}"},
              "Next": "Check"},
        "Check": {"Type": "Pass", "Parameters": {"code.$": "$code", "answer.$": "$answer", "r.$": "$.result.got"}, "End": true}}});
    let sm = parse(&def.to_string()).expect("valid");
    let clock = FakeClock::default();
    let out = run_express(
        &sm,
        json!({"functionName": "arn:aws:lambda:us-east-1:1:function:f"}),
        &RunOptions::default(),
        &Echo,
        &clock,
        Hooks::default(),
    );
    assert_eq!(
        out,
        Ok(json!({"code": 200, "answer": "<omitted>", "r": {"q": "?", "a": 42}}))
    );
    let def = json!({"StartAt": "T", "States": {"T": {"Type": "Task",
        "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
        "Parameters": {"MessageBody": {"token.$": "$$.Task.Token"}}, "End": true}}});
    let sm = parse(&def.to_string()).expect("valid");
    let out = run_express(
        &sm,
        json!({}),
        &RunOptions::default(),
        &Echo,
        &clock,
        Hooks::default(),
    )
    .expect("runs");
    assert_eq!(out["token"], json!(true));
    assert!(out["got"]["MessageBody"]["token"]
        .as_str()
        .is_some_and(|t| t.len() == 36));
}

#[test]
fn outputs_over_256_kib_fail_with_data_limit_exceeded_which_catch_all_does_not_match() {
    let def = r#"{"StartAt":"Fan","States":{
        "Fan":{"Type":"Parallel","Next":"Done",
               "Branches":[{"StartAt":"Big","States":{"Big":{"Type":"Pass",
                   "Parameters":{"a.$":"$.s","b.$":"$.s"},"End":true}}}],
               "Catch":[{"ErrorEquals":["States.ALL"],"Next":"Done"}]},
        "Done":{"Type":"Succeed"}}}"#;
    let sm = weft_asl::parse(def).unwrap();
    let opts = weft_asl::RunOptions::default();
    let run = |n: usize| {
        weft_asl::run_express(
            &sm,
            serde_json::json!({"s": "x".repeat(n)}),
            &opts,
            &weft_asl::NoTasks,
            &weft_asl::FakeClock::default(),
            weft_asl::Hooks::default(),
        )
    };
    let e = run(150 * 1024).unwrap_err();
    assert_eq!(e.error, "States.DataLimitExceeded", "{e:?}");
    assert!(e.cause.unwrap().contains("'Big'"));
    // under the limit it passes
    assert!(run(100 * 1024).is_ok());
}

/// `$$.State.RetryCount` is part of the context of the states that retry (0 on the first
/// attempt, then 1, 2, ...) and absent from the others', as in Step Functions.
#[test]
fn retry_count_in_the_context_object() {
    let def = json!({"StartAt": "P", "States": {
        "P": {"Type": "Pass", "Parameters": {"state.$": "$$.State"}, "ResultPath": "$.pass", "Next": "T"},
        "T": {"Type": "Task", "Resource": "weft:plugin:flaky",
              "Parameters": {"retries.$": "$$.State.RetryCount"},
              "Retry": [{"ErrorEquals": ["Boom"], "IntervalSeconds": 1, "MaxAttempts": 3}],
              "ResultSelector": {"retries.$": "$.echo.retries"},
              "ResultPath": "$.task", "End": true}}});
    let sm = parse(&def.to_string()).expect("valid");
    let run_failing = |fail_times| {
        let runner = Flaky {
            calls: AtomicU32::new(0),
            fail_times,
        };
        let clock = FakeClock::default();
        run_express(
            &sm,
            json!({}),
            &RunOptions::default(),
            &runner,
            &clock,
            Hooks::default(),
        )
        .unwrap()
    };
    let out = run_failing(2);
    assert!(out["pass"]["state"].get("RetryCount").is_none(), "{out}");
    assert_eq!(out["pass"]["state"]["Name"], "P");
    assert_eq!(out["task"], json!({"retries": 2}), "the third attempt");
    // the first attempt sees 0 (a path to a missing field would fail the state)
    assert_eq!(run_failing(0)["task"], json!({"retries": 0}));
    // a Parallel retried as a whole sees its own count
    let def = json!({"StartAt": "Par", "States": {
        "Par": {"Type": "Parallel", "End": true,
                "Branches": [{"StartAt": "T", "States": {
                    "T": {"Type": "Task", "Resource": "weft:plugin:flaky", "End": true}}}],
                "Retry": [{"ErrorEquals": ["Boom"], "IntervalSeconds": 1, "MaxAttempts": 2}],
                "ResultSelector": {"retries.$": "$$.State.RetryCount"}}}});
    let sm = parse(&def.to_string()).expect("valid");
    // (each Parallel attempt runs the branch afresh: its task's attempt starts at 1 again)
    struct FailsOnce(AtomicU32);
    impl TaskRunner for FailsOnce {
        fn run_task(&self, _: &TaskRequest<'_>) -> Result<Value, TaskFailure> {
            match self.0.fetch_add(1, Ordering::SeqCst) {
                0 => Err(TaskFailure {
                    error: "Boom".into(),
                    cause: "first call".into(),
                }),
                _ => Ok(json!({})),
            }
        }
    }
    let clock = FakeClock::default();
    let out = run_express(
        &sm,
        json!({}),
        &RunOptions::default(),
        &FailsOnce(AtomicU32::new(0)),
        &clock,
        Hooks::default(),
    );
    assert_eq!(out, Ok(json!({"retries": 1})));
}

/// Keeps what a ResultWriter writes.
#[derive(Default)]
struct Objects(std::sync::Mutex<Vec<(String, String, Vec<u8>)>>);
impl weft_asl::ResultWriter for Objects {
    fn put(
        &self,
        resource: &str,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
    ) -> Result<(), StateError> {
        assert_eq!(resource, "arn:aws:states:::s3:putObject");
        if bucket == "denied" {
            return Err(StateError::new("States.ResultWriterFailed", "denied"));
        }
        self.0
            .lock()
            .unwrap()
            .push((bucket.into(), key.into(), body));
        Ok(())
    }
}

#[test]
fn distributed_map_exports_results_and_records_its_map_run() {
    let def = json!({"StartAt": "M", "States": {"M": {"Type": "Map", "Label": "Rows",
        "ItemReader": {"Resource": "arn:aws:states:::s3:getObject",
            "ReaderConfig": {"InputType": "CSV"},
            "Parameters": {"Bucket": "b", "Key": "rows.csv"}},
        "ResultWriter": {"Resource": "arn:aws:states:::s3:putObject",
            "Parameters": {"Bucket.$": "$.bucket", "Prefix": "out"},
            "WriterConfig": {"OutputType": "JSONL", "Transformation": "COMPACT"}},
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"},
            "StartAt": "P", "States": {"P": {"Type": "Pass", "Parameters": {"n.$": "$.name"}, "End": true}}},
        "End": true}}});
    let sm = parse(&def.to_string()).expect("valid");
    let writer = Objects::default();
    let mut events: Vec<HistoryEvent> = Vec::new();
    let opts = RunOptions {
        state_machine_name: "SM".into(),
        ..RunOptions::default()
    };
    let out = run_express(
        &sm,
        json!({"bucket": "results"}),
        &opts,
        &NoTasks,
        &FakeClock::default(),
        Hooks {
            history: Some(&mut events),
            item_reader: Some(&Files),
            result_writer: Some(&writer),
            control: None,
            observer: None,
        },
    )
    .unwrap();
    let arn = out["MapRunArn"].as_str().unwrap().to_string();
    assert!(
        arn.starts_with("arn:aws:states:us-east-1:000000000000:mapRun:SM/Rows:"),
        "{arn}"
    );
    let id = arn.rsplit(':').next().unwrap();
    assert_eq!(
        out["ResultWriterDetails"],
        json!({"Bucket": "results", "Key": format!("out/{id}/manifest.json")})
    );
    let objects = writer.0.lock().unwrap();
    let keys: Vec<&str> = objects.iter().map(|o| o.1.as_str()).collect();
    assert_eq!(
        keys,
        [
            format!("out/{id}/SUCCEEDED_0.json"),
            format!("out/{id}/manifest.json")
        ]
    );
    assert_eq!(objects[0].2, b"{\"n\":\"a\"}\n{\"n\":\"b,c\"}\n");
    let types: Vec<&str> = events.iter().map(|e| e.event_type).collect();
    let pos = |t: &str| types.iter().position(|x| *x == t).unwrap();
    assert!(pos("MapStateStarted") < pos("MapRunStarted"));
    assert!(pos("MapRunStarted") < pos("MapRunSucceeded"));
    assert!(pos("MapRunSucceeded") < pos("MapStateSucceeded"));
    assert_eq!(events[pos("MapRunStarted")].details["mapRunArn"], arn);
    drop(objects);
    // a bucket the writer refuses fails the state with States.ResultWriterFailed
    let mut events: Vec<HistoryEvent> = Vec::new();
    let e = run_express(
        &sm,
        json!({"bucket": "denied"}),
        &opts,
        &NoTasks,
        &FakeClock::default(),
        Hooks {
            history: Some(&mut events),
            item_reader: Some(&Files),
            result_writer: Some(&writer),
            control: None,
            observer: None,
        },
    )
    .unwrap_err();
    assert_eq!(e.error, "States.ResultWriterFailed");
    assert!(events.iter().any(|e| e.event_type == "MapRunFailed"));
    // only a WriterConfig: the transformed results stay in the output
    let preview = def.to_string().replace(
        r#""Resource":"arn:aws:states:::s3:putObject","Parameters":{"Bucket.$":"$.bucket","Prefix":"out"},"#,
        "",
    );
    let sm = parse(&preview).expect("valid");
    let out = run_express(
        &sm,
        json!({}),
        &opts,
        &NoTasks,
        &FakeClock::default(),
        Hooks {
            item_reader: Some(&Files),
            ..Hooks::default()
        },
    );
    assert_eq!(out, Ok(json!([{"n": "a"}, {"n": "b,c"}])));
    // half a ResultWriter is refused with its pointer
    let half = def.to_string().replace(
        r#","Parameters":{"Bucket.$":"$.bucket","Prefix":"out"}"#,
        "",
    );
    let errs = parse(&half).unwrap_err();
    assert!(
        errs.errors
            .iter()
            .any(|e| e.pointer == "/States/M/ResultWriter"),
        "{errs}"
    );
}

/// A durable driver's view of `UpdateMapRun`: every Map Run tolerates `count` failures.
struct Updated {
    count: u64,
    asked: std::sync::Mutex<Vec<String>>,
}
impl weft_asl::RunControl for Updated {
    fn wait_until(
        &self,
        _key: &str,
        _until_ms: i64,
        _depth: usize,
        _cancel: &weft_asl::Cancellation,
    ) -> Result<(), StateError> {
        Ok(())
    }
    fn map_run_limits(&self, map_run_arn: &str) -> Option<weft_asl::MapRunLimits> {
        self.asked.lock().unwrap().push(map_run_arn.to_string());
        Some(weft_asl::MapRunLimits {
            max_concurrency: Some(1),
            tolerated_failure_count: Some(self.count),
            tolerated_failure_percentage: None,
        })
    }
}

#[test]
fn update_map_run_limits_reach_the_running_map() {
    let def = json!({"StartAt": "M", "States": {"M": {"Type": "Map", "ItemsPath": "$",
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
            "StartAt": "C", "States": {
                "C": {"Type": "Choice", "Choices": [{"Variable": "$", "NumericGreaterThan": 1, "Next": "F"}], "Default": "P"},
                "F": {"Type": "Fail", "Error": "Big"},
                "P": {"Type": "Pass", "End": true}}},
        "End": true}}});
    let sm = parse(&def.to_string()).expect("valid");
    let run = |count: u64| {
        let ctl = Updated {
            count,
            asked: Default::default(),
        };
        let r = run_express(
            &sm,
            json!([1, 2, 3]),
            &RunOptions::default(),
            &NoTasks,
            &FakeClock::default(),
            Hooks {
                control: Some(&ctl),
                ..Hooks::default()
            },
        );
        (r, ctl.asked.into_inner().unwrap())
    };
    // the definition tolerates nothing; the update tolerates two failures
    let (r, asked) = run(2);
    assert_eq!(r.unwrap()[0], json!(1));
    assert!(asked.iter().all(|a| a.contains(":mapRun:")), "{asked:?}");
    assert!(asked.len() >= 3, "asked as items start and fail: {asked:?}");
    let (r, _) = run(1);
    assert_eq!(
        r.unwrap_err().error,
        "States.ExceedToleratedFailureThreshold"
    );
}
