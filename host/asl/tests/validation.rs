//! Validation: bad definitions report every problem with a JSON pointer and a reason; and a
//! fuzz-ish test mutating the conformance definitions checks parse/run never panic.

use serde_json::{json, Value};
use weft_asl::{parse, run_express, FakeClock, Hooks, NoTasks, RunOptions};

fn errs(def: Value) -> Vec<(String, String)> {
    match parse(&def.to_string()) {
        Ok(_) => Vec::new(),
        Err(e) => e
            .errors
            .into_iter()
            .map(|e| (e.pointer, e.reason))
            .collect(),
    }
}

fn has(errs: &[(String, String)], ptr: &str, reason_part: &str) -> bool {
    errs.iter()
        .any(|(p, r)| p == ptr && r.contains(reason_part))
}

#[test]
fn all_problems_are_reported_with_pointers() {
    let e = errs(json!({
        "StartAt": "Start",
        "States": {
            "Start": {"Type": "Pass", "Next": "Missing", "Unknown": 1},
            "Orphan": {"Type": "Pass", "End": true},
            "T": {"Type": "Task", "Resource": "weft:plugin:echo", "End": true,
                  "Retry": [{"ErrorEquals": ["States.ALL"]}, {"ErrorEquals": ["X"]}],
                  "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Nowhere"}],
                  "ResultPath": "$.a[*]"},
            "C": {"Type": "Choice", "Choices": [{"Variable": "$.x", "StringEquals": 1, "Next": "Start"}], "Next": "Start"},
            "W": {"Type": "Wait", "Seconds": 1, "Timestamp": "2020-01-01T00:00:00Z", "End": true},
            "F": {"Type": "Fail", "Error": "E", "ErrorPath": "$.e"},
            "P": {"Type": "Pass", "Parameters": {"x.$": "States.Bogus($.a)"}, "InputPath": "$[", "End": true}
        }
    }));
    assert!(
        has(&e, "/States/Start/Next", "does not name a state"),
        "{e:?}"
    );
    assert!(has(&e, "/States/Start/Unknown", "unknown field"), "{e:?}");
    assert!(has(&e, "/States/Orphan", "not reachable"), "{e:?}");
    assert!(
        has(
            &e,
            "/States/T/Retry/0/ErrorEquals",
            "States.ALL must be the last"
        ),
        "{e:?}"
    );
    assert!(
        has(&e, "/States/T/Catch/0/Next", "does not name a state"),
        "{e:?}"
    );
    assert!(
        has(&e, "/States/T/ResultPath", "not a reference path"),
        "{e:?}"
    );
    assert!(
        has(&e, "/States/C/Choices/0/StringEquals", "must be a string"),
        "{e:?}"
    );
    assert!(
        has(&e, "/States/C/Next", "not allowed in a Choice state"),
        "{e:?}"
    );
    assert!(has(&e, "/States/W", "exactly one of Seconds"), "{e:?}");
    assert!(
        has(&e, "/States/F/ErrorPath", "mutually exclusive"),
        "{e:?}"
    );
    assert!(
        has(
            &e,
            "/States/P/Parameters/x.$",
            "unknown intrinsic function 'States.Bogus'"
        ),
        "{e:?}"
    );
    assert!(has(&e, "/States/P/InputPath", "invalid JSONPath"), "{e:?}");
    // Display: one line per error
    let msg = parse(&json!({"StartAt": "A", "States": {"A": {"Type": "Nope"}}}).to_string())
        .expect_err("invalid")
        .to_string();
    assert_eq!(msg.lines().count(), 1, "{msg}");
    assert!(
        msg.starts_with("/States/A/Type: unknown state type 'Nope'"),
        "{msg}"
    );
}

#[test]
fn missing_transitions_and_nested_scopes() {
    let e = errs(json!({
        "StartAt": "M",
        "States": {
            "M": {"Type": "Map", "ItemProcessor": {"StartAt": "I", "States": {
                "I": {"Type": "Pass", "Next": "M"}
            }}},
            "Par": {"Type": "Parallel", "Branches": [], "End": true}
        }
    }));
    assert!(has(&e, "/States/M", "needs 'Next' or"), "{e:?}");
    assert!(
        has(
            &e,
            "/States/M/ItemProcessor/States/I/Next",
            "does not name a state in this scope"
        ),
        "{e:?}"
    );
    assert!(has(&e, "/States/Par/Branches", "non-empty array"), "{e:?}");
    let e = errs(
        json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true, "Output": "{% 1 %}"}}}),
    );
    assert!(
        has(
            &e,
            "/States/A/Output",
            "not allowed in a JSONPath Pass state"
        ),
        "{e:?}"
    );
    let e = errs(
        json!({"QueryLanguage": "JSONata", "StartAt": "A", "States": {"A": {"Type": "Pass", "End": true, "Output": "{% 1 + %}"}}}),
    );
    assert!(
        has(&e, "/States/A/Output", "invalid JSONata expression"),
        "{e:?}"
    );
}

struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn pick(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() as usize) % n
        }
    }
}

fn mutate(v: &mut Value, rng: &mut Lcg, depth: usize) {
    let interesting = [
        json!(null),
        json!(-1),
        json!(1.5),
        json!("$.x"),
        json!("$$.Map.Item.Value"),
        json!("States.Format('{}', $.a)"),
        json!("{% $states.input %}"),
        json!([]),
        json!({}),
        json!("States.ArrayRange(1, 100000, 1)"),
        json!("$..*"),
        json!(true),
        json!("Nope"),
        json!({"Variable": "$.v", "IsPresent": true, "Next": "x"}),
        json!("$[?(@.a > 1)]"),
    ];
    match v {
        Value::Object(m) if !m.is_empty() => {
            let keys: Vec<String> = m.keys().cloned().collect();
            let k = keys[rng.pick(keys.len())].clone();
            match rng.pick(4) {
                0 => {
                    m.shift_remove(&k);
                }
                1 if depth < 8 => {
                    if let Some(c) = m.get_mut(&k) {
                        mutate(c, rng, depth + 1);
                    }
                }
                2 => {
                    m.insert(k, interesting[rng.pick(interesting.len())].clone());
                }
                _ => {
                    let nk = [
                        "Next",
                        "End",
                        "ResultPath",
                        "Parameters",
                        "ItemsPath",
                        "Retry",
                        "Catch",
                        "Assign",
                        "Type",
                    ][rng.pick(9)];
                    m.insert(
                        nk.to_string(),
                        interesting[rng.pick(interesting.len())].clone(),
                    );
                }
            }
        }
        Value::Array(a) if !a.is_empty() => {
            let i = rng.pick(a.len());
            if rng.pick(3) == 0 {
                a.remove(i);
            } else if depth < 8 {
                mutate(&mut a[i], rng, depth + 1);
            }
        }
        other => *other = interesting[rng.pick(interesting.len())].clone(),
    }
}

#[test]
fn hostile_strings_never_panic() {
    let nasty = [
        "$.a\u{3000}",
        "$[\u{3000}0]",
        "$[?(\u{3000}@.a\u{3000}==\u{85}1)]",
        "$.\u{e9}[",
        "$['\u{e9}",
        "States.Array(\u{85}1)",
        "States.Array(\u{a0}'\u{e9}')",
        "States.Format('\u{1F600}{}', $.a\u{85})",
        "States.Array(",
        "States.Array('",
        "States.Array($.[",
        "$$$$",
        "$..",
        "$[-99999999999999999999]",
        "$[1:2:0]",
        "$[::-1]",
        "States.ArrayRange(0, 999999999, 1)",
        "States.MathRandom(1, 1)",
        "States.Hash('x', 'SHA-999')",
        "States.Base64Decode('%%%')",
        "States.JsonMerge(1, 2, true)",
    ];
    let deep_path = format!("$[?{}@.a{}]", "(".repeat(5000), ")".repeat(5000));
    let deep_call = format!("{}1{}", "States.Array(".repeat(3000), ")".repeat(3000));
    let deep_jsonata = format!("{{% {}1{} %}}", "(".repeat(5000), ")".repeat(5000));
    let mut all: Vec<String> = nasty.iter().map(|s| s.to_string()).collect();
    all.extend([deep_path, deep_call]);
    let opts = RunOptions {
        max_transitions: Some(100),
        ..RunOptions::default()
    };
    for s in &all {
        let def = json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Parameters": {"x.$": s}, "End": true}}});
        if let Ok(sm) = parse(&def.to_string()) {
            let clock = FakeClock::default();
            let _ = run_express(
                &sm,
                json!({"a": "\u{e9}"}),
                &opts,
                &NoTasks,
                &clock,
                Hooks::default(),
            );
        }
        let def = json!({"StartAt": "A", "States": {"A": {"Type": "Choice", "Choices": [
            {"Variable": s, "StringMatches": s, "Next": "B"}], "Default": "B"}, "B": {"Type": "Succeed"}}});
        let _ = parse(&def.to_string());
    }
    let def = json!({"TimeoutSeconds": u64::MAX, "StartAt": "A", "States": {"A": {"Type": "Wait", "Seconds": u64::MAX, "End": true}}});
    if let Ok(sm) = parse(&def.to_string()) {
        let clock = FakeClock::default();
        let _ = run_express(&sm, json!({}), &opts, &NoTasks, &clock, Hooks::default());
    }
    let def = json!({"QueryLanguage": "JSONata", "StartAt": "A", "States": {"A": {"Type": "Pass", "Output": deep_jsonata, "End": true}}});
    assert!(parse(&def.to_string()).is_err());
}

#[test]
fn mutated_definitions_never_panic() {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/asl-conformance/cases"
    );
    let Ok(rd) = std::fs::read_dir(dir) else {
        eprintln!("no conformance cases at {dir}; fuzzing a built-in definition only");
        return;
    };
    let mut cases: Vec<Value> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .filter_map(|t| serde_json::from_str(&t).ok())
        .collect();
    cases.sort_by_key(|c: &Value| c["definition"].to_string());
    // WEFT_FUZZ_ROUNDS raises the mutations per case (default 6) for longer local runs
    let rounds: usize = std::env::var("WEFT_FUZZ_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6);
    let mut rng = Lcg(std::env::var("WEFT_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed));
    let opts = RunOptions {
        max_transitions: Some(2_000),
        max_threads: 2,
        ..RunOptions::default()
    };
    let mut runs = 0;
    for case in cases.iter().take(400) {
        for _ in 0..rounds {
            let mut def = case["definition"].clone();
            for _ in 0..=rng.pick(3) {
                mutate(&mut def, &mut rng, 0);
            }
            let text = def.to_string();
            // also a truncated text to exercise the JSON error path
            let cut = &text[..text.len() / 2];
            assert!(parse(cut).is_err());
            if let Ok(sm) = parse(&text) {
                let clock = FakeClock::default();
                let _ = run_express(
                    &sm,
                    case["input"].clone(),
                    &opts,
                    &NoTasks,
                    &clock,
                    Hooks::default(),
                );
                let _ = run_express(
                    &sm,
                    json!({"x": [1, {"a": 2}], "v": null}),
                    &opts,
                    &NoTasks,
                    &clock,
                    Hooks::default(),
                );
                runs += 1;
            }
        }
    }
    eprintln!("{runs} mutated definitions parsed and ran without panicking");
}

#[test]
fn a_whole_placeholder_in_a_number_field_validates_and_fails_the_run_at_that_field() {
    // SAM's DefinitionSubstitutions: `Seconds: ${ReminderTimeout}` in a template AWS accepts
    for field in ["Seconds", "TimeoutSeconds"] {
        let st = if field == "Seconds" {
            serde_json::json!({"Type": "Wait", "Seconds": "${ReminderTimeout}", "End": true})
        } else {
            serde_json::json!({"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": "f"}, "TimeoutSeconds": "${Timeout}", "End": true})
        };
        let def = serde_json::json!({"StartAt": "S", "States": {"S": st}});
        let (_, warnings) = weft_asl::validate_with_warnings(&def.to_string())
            .unwrap_or_else(|e| panic!("{field}: {e}"));
        assert!(
            warnings.iter().any(|w| w.pointer.ends_with(field)),
            "{field}: {warnings:?}"
        );
    }
    // a partial placeholder or a plain word is still an error
    for bad in ["x${A}", "${}", "soon"] {
        let def = serde_json::json!({"StartAt": "S", "States": {"S": {"Type": "Wait", "Seconds": bad, "End": true}}});
        assert!(weft_asl::parse(&def.to_string()).is_err(), "{bad}");
    }
}
