//! Parity with AWS Step Functions' CreateStateMachine: definitions AWS accepts validate (and
//! run) here, definitions AWS refuses are refused with a pointer and a reason.

use serde_json::{json, Value};
use weft_asl::{parse, run_express, FakeClock, Hooks, NoTasks, RunOptions};

fn errs(def: &Value) -> Vec<String> {
    match parse(&def.to_string()) {
        Ok(_) => Vec::new(),
        Err(e) => e.errors.iter().map(|e| e.to_string()).collect(),
    }
}

fn one(state: Value) -> Value {
    json!({"StartAt": "S", "States": {"S": state}})
}

fn run(def: &Value, input: Value) -> Result<Value, weft_asl::StateError> {
    let sm = parse(&def.to_string()).unwrap_or_else(|e| panic!("{e}"));
    run_express(
        &sm,
        input,
        &RunOptions::default(),
        &NoTasks,
        &FakeClock::default(),
        Hooks::default(),
    )
}

#[test]
fn filters_with_bare_words_and_root_paths_validate_everywhere() {
    for path in [
        "$.t[?(@.TargetLanguageCode==es)]",
        "$.t[?(@.TargetLanguageCode != es)]",
        "$.t[?( @.TargetLanguageCode == es )].n",
        "$.a.b[?(@.c.d==en-US)]",
        "$.approaches[?(@.workerId == $.agent_id)]",
    ] {
        let defs = [
            one(json!({"Type": "Pass", "InputPath": path, "End": true})),
            one(json!({"Type": "Pass", "Parameters": {"x.$": path}, "End": true})),
            one(
                json!({"Type": "Pass", "Parameters": {"x.$": format!("States.Array({path})")}, "End": true}),
            ),
            one(json!({"Type": "Map", "ItemsPath": path, "End": true,
                "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}})),
            json!({"StartAt": "C", "States": {
                "C": {"Type": "Choice", "Choices": [{"Variable": path, "IsPresent": true, "Next": "E"}], "Default": "E"},
                "E": {"Type": "Succeed"}}}),
        ];
        for d in defs {
            assert_eq!(errs(&d), Vec::<String>::new(), "{path} in {d}");
        }
    }
}

#[test]
fn root_paths_in_filters_evaluate_against_the_input() {
    let def = one(json!({"Type": "Pass", "End": true,
        "Parameters": {"mine.$": "$.approaches[?(@.workerId == $.agent_id)].id",
                       "es.$": "$.langs[?(@.code==es)].name"}}));
    let out = run(
        &def,
        json!({"agent_id": "b", "approaches": [{"workerId": "a", "id": 1}, {"workerId": "b", "id": 2}],
               "langs": [{"code": "es", "name": "Spanish"}, {"code": "fr", "name": "French"}]}),
    );
    assert_eq!(out, Ok(json!({"mine": [2], "es": ["Spanish"]})));
}

#[test]
fn regional_integration_arns_and_placeholders_validate() {
    for r in [
        "arn:aws:states:us-east-1:123456789012:aws-sdk:s3:getObject",
        "arn:aws:states:eu-west-1:123456789012:lambda:invoke",
        "arn:aws:states:eu-west-1:123456789012:lambda:invoke.waitForTaskToken",
        "arn:aws:states:us-east-1:123456789012:states:startExecution.sync:2",
        "arn:aws-cn:states:cn-north-1:123456789012:glue:startJobRun.sync",
        "arn:aws-us-gov:states:::sqs:sendMessage.waitForTaskToken",
        "${ProcessFunctionArn}",
        "arn:aws:lambda:${AWS::Region}:${AWS::AccountId}:function:${Fn}",
    ] {
        let d = one(json!({"Type": "Task", "Resource": r, "End": true}));
        assert_eq!(errs(&d), Vec::<String>::new(), "{r}");
    }
    let d = one(
        json!({"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": "${Fn}"}, "End": true}),
    );
    let (_, w) = weft_asl::validate_with_warnings(&d.to_string()).unwrap();
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].pointer, "/States/S/Parameters/FunctionName");
}

#[test]
fn what_aws_refuses_is_refused() {
    let cases = [
        (
            one(
                json!({"Type": "Task", "Resource": "arn:aws:states:::dynamodb:query", "End": true}),
            ),
            "/States/S/Resource: unsupported resource",
        ),
        (
            one(
                json!({"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke.sync", "End": true}),
            ),
            "/States/S/Resource: unsupported resource",
        ),
        (
            one(
                json!({"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:s3:getObject.sync", "End": true}),
            ),
            "/States/S/Resource: unsupported resource",
        ),
        (
            one(
                json!({"Type": "Pass", "Parameters": {"a.$": "States.Format('a\\qb')"}, "End": true}),
            ),
            "/States/S/Parameters/a.$: ",
        ),
        (
            one(json!({"Type": "Pass", "Parameters": {"a.$": "States.Array('\\n')"}, "End": true})),
            "/States/S/Parameters/a.$: ",
        ),
        (
            one(
                json!({"Type": "Task", "Resource": "weft:plugin:x", "Credentials": {}, "End": true}),
            ),
            "/States/S/Credentials: Credentials needs a 'RoleArn'",
        ),
        (
            one(
                json!({"Type": "Task", "Resource": "weft:plugin:x", "Credentials": {"Role": "r"}, "End": true}),
            ),
            "/States/S/Credentials: Credentials needs a 'RoleArn'",
        ),
        (
            json!({"QueryLanguage": "JSONata", "StartAt": "S", "States": {"S": {"Type": "Pass", "QueryLanguage": "JSONPath", "End": true}}}),
            "/States/S/QueryLanguage: a state cannot use JSONPath",
        ),
    ];
    for (d, want) in cases {
        let e = errs(&d);
        assert!(e.iter().any(|x| x.starts_with(want)), "{want}: {e:?}");
    }
    // the reverse mix is allowed; RoleArn.$ and JSONata RoleArn count
    for d in [
        json!({"StartAt": "S", "States": {"S": {"Type": "Pass", "QueryLanguage": "JSONata", "End": true}}}),
        one(
            json!({"Type": "Task", "Resource": "weft:plugin:x", "Credentials": {"RoleArn.$": "$.r"}, "End": true}),
        ),
        json!({"QueryLanguage": "JSONata", "StartAt": "S", "States": {"S": {"Type": "Task",
            "Resource": "weft:plugin:x", "Credentials": {"RoleArn": "{% $r %}"}, "End": true}}}),
    ] {
        assert_eq!(errs(&d), Vec::<String>::new(), "{d}");
    }
    let map = |label: &str| {
        one(json!({"Type": "Map", "Label": label, "End": true,
        "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}}))
    };
    for bad in [
        "",
        "a b",
        "x/y",
        "a:b",
        "a\u{7}",
        &"l".repeat(41),
        "q?",
        "c$",
    ] {
        let e = errs(&map(bad));
        assert!(
            e.iter().any(|x| x.starts_with("/States/S/Label: ")),
            "{bad:?}: {e:?}"
        );
    }
    assert_eq!(errs(&map(&"l".repeat(40))), Vec::<String>::new());
    assert_eq!(errs(&map("my-label_1.x")), Vec::<String>::new());
}

#[test]
fn numeric_strings_in_path_fields_are_numbers() {
    let def = one(json!({"Type": "Map", "End": true, "ItemsPath": "$.items",
        "MaxConcurrencyPath": "$.mc", "ToleratedFailureCountPath": "$.tc",
        "ToleratedFailurePercentagePath": "$.tp",
        "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}}));
    let ok = run(
        &def,
        json!({"items": [1, 2], "mc": "5", "tc": "1", "tp": "12.5"}),
    );
    assert_eq!(ok, Ok(json!([1, 2])));
    let bad = run(
        &def,
        json!({"items": [1], "mc": "five", "tc": "1", "tp": "1"}),
    )
    .unwrap_err();
    assert_eq!(bad.error, "States.Runtime");
    let wait = one(json!({"Type": "Wait", "SecondsPath": "$.s", "End": true}));
    assert_eq!(run(&wait, json!({"s": "2"})), Ok(json!({"s": "2"})));
    let e = run(&wait, json!({"s": "2.5x"})).unwrap_err();
    assert!(e
        .cause
        .unwrap_or_default()
        .contains("cannot be parsed as a long value"));
}

#[test]
fn yaml_fixture_equals_its_json_twin() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/yaml/");
    let yaml = std::fs::read_to_string(format!("{dir}order.asl.yaml")).unwrap();
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{dir}order.asl.json")).unwrap())
            .unwrap();
    assert_eq!(weft_asl::yaml_to_value(&yaml).unwrap(), json);
    assert!(weft_asl::looks_like_asl_yaml(&yaml));
    let (_, w) = weft_asl::validate_any_with_warnings(&yaml).unwrap();
    let shown: Vec<String> = w.iter().map(|w| w.to_string()).collect();
    assert_eq!(shown.len(), 1, "{shown:?}");
    assert!(shown[0].starts_with("/States/Validate/Resource: warning: "));
}

#[test]
fn jsonata_builtin_with_a_wrong_type_is_a_query_evaluation_error() {
    for (expr, want) in [
        (
            "$partition([1, 2, 3], 'two')",
            "$partition: argument 2 must be a number",
        ),
        ("$range(1, '5', 1)", "$range: argument 2 must be a number"),
    ] {
        let def = json!({"QueryLanguage": "JSONata", "StartAt": "S", "States": {"S": {
            "Type": "Pass", "Output": format!("{{% {expr} %}}"), "End": true}}});
        let e = run(&def, json!({})).unwrap_err();
        assert_eq!(e.error, "States.QueryEvaluationError");
        assert!(e.cause.as_deref().unwrap_or("").contains(want), "{e:?}");
    }
}

#[test]
fn hostile_inputs_are_errors_not_crashes() {
    let t = std::time::Instant::now();
    let nested = format!("$.a{}@.b{}", "[?(".repeat(5000), ")]".repeat(5000));
    let chain = format!("$.a[?({})]", vec!["@.b==x"; 20000].join(" && "));
    let nots = format!("$.a[?({}@.b)]", "!".repeat(20000));
    let rooted = format!(
        "$.a[?(@.b == {}$.c{})]",
        "$.a[?(@.b == ".repeat(3000),
        ")]".repeat(3000)
    );
    for path in [nested, chain, nots, rooted] {
        let d = one(json!({"Type": "Pass", "InputPath": path, "End": true}));
        assert!(!errs(&d).is_empty());
    }
    let d = one(
        json!({"Type": "Map", "Label": "x".repeat(1 << 20), "End": true,
        "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}}),
    );
    assert!(errs(&d).iter().any(|e| e.starts_with("/States/S/Label: ")));
    let yaml = format!(
        "StartAt: A\nStates: {}{}\n",
        "{a: ".repeat(10000),
        "}".repeat(10000)
    );
    assert!(weft_asl::parse_yaml(&yaml).is_err());
    assert!(t.elapsed() < std::time::Duration::from_secs(10));
}
