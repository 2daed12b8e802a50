//! Hostile definitions, expressions and inputs (issue 13, items 7 and 8): each one is either
//! refused when the definition is validated or fails its one execution with a named error;
//! none may overflow a stack, allocate without bound or run without end. Everything runs on
//! threads with small stacks (smaller than any thread of the server) so a missing depth
//! limit shows as a crashed test binary. The users' side (deep but reasonable expressions,
//! large but legal payloads) is checked next to each attack.

use serde_json::{json, Value};
use std::path::PathBuf;
use weft_asl::env::Variables;
use weft_asl::error::names;
use weft_asl::{jsonata, parse, run_express, FakeClock, Hooks, NoTasks, RunOptions};

/// Stack of the threads the cases run on: a quarter of a tokio worker's.
const SMALL_STACK: usize = 512 << 10;

fn small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(SMALL_STACK)
        .spawn(f)
        .expect("spawn")
        .join()
        .expect("the case must not panic")
}

fn run(def: &Value, input: Value) -> Result<Value, (String, String)> {
    // a definition too deep for a fixture file's own parser is stored as text
    let text = match def {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let sm = parse(&text).map_err(|e| ("validation".to_string(), e.to_string()))?;
    run_express(
        &sm,
        input,
        &RunOptions::default(),
        &NoTasks,
        &FakeClock::default(),
        Hooks::default(),
    )
    .map_err(|e| (e.error, e.cause.unwrap_or_default()))
}

fn output_def(expr: &str) -> Value {
    json!({"QueryLanguage": "JSONata", "StartAt": "S",
           "States": {"S": {"Type": "Pass", "Output": format!("{{% {expr} %}}"), "End": true}}})
}

fn eval(expr: &str, input: Value) -> Result<Option<Value>, String> {
    let e = jsonata::compile(expr)?;
    jsonata::eval(&e, &json!({ "input": input }), &Variables::new())
}

fn chain(n: usize, unit: &str, sep: &str, end: &str) -> String {
    let mut s = String::new();
    for i in 0..n {
        if i > 0 {
            s.push_str(sep);
        }
        s.push_str(unit);
    }
    s.push_str(end);
    s
}

/// Expressions whose syntax tree would be far deeper than the limit, in many spellings.
fn deep_expressions(n: usize) -> Vec<String> {
    vec![
        format!("{}1", "-".repeat(n)),
        format!("{}1", "- ".repeat(n)),
        chain(n, "1", "+", ""),
        chain(n, "1", " and ", ""),
        chain(n, "$x", " or ", ""),
        chain(n, "'a'", "&", ""),
        chain(n, "1", "=", ""),
        chain(n, "a", ".", ""),
        chain(n, "$", ".", ""),
        chain(n, "1", "~>", ""),
        chain(n, "1 ? 2", " : ", "3"),
        format!("{}1{}", "(".repeat(n), ")".repeat(n)),
        format!("{}1{}", "[".repeat(n), "]".repeat(n)),
        format!("{}1{}", "{'a':".repeat(n), "}".repeat(n)),
        format!("{}1{}", "$string(".repeat(n), ")".repeat(n)),
        format!("a{}", "[0]".repeat(n)),
        format!("$f{}", "(1)".repeat(n)),
        format!("{}1{}", "function($x){".repeat(n), "}".repeat(n)),
        format!("a{}", "[b=1]".repeat(n)),
        // unbalanced brackets, and brackets hidden from a naive scan
        format!("{}1", "(".repeat(n)),
        format!("\"\" & {}1", "-".repeat(n)),
        format!("/* **/ {}1", "-".repeat(n)),
        format!("abc\"{}1\"", "-".repeat(n)),
        format!("1 / 2 /* x */ {}1", "-".repeat(n)),
        format!("$match('a', /[\"/) & {}1", "-".repeat(n)),
        format!("x; /\"/ {}1", "-".repeat(n)),
    ]
}

#[test]
fn deep_expressions_are_refused_at_validation_with_a_pointer() {
    small_stack(|| {
        for n in [1_000, 20_000] {
            for expr in deep_expressions(n) {
                let def = output_def(&expr);
                let err = parse(&def.to_string())
                    .map(|_| ())
                    .expect_err(&format!("accepted: {}", brief(&expr)));
                let text = err.to_string();
                assert!(text.contains("/States/S/Output"), "{text}");
            }
        }
    });
}

#[test]
fn deep_expressions_fail_at_evaluation_too() {
    small_stack(|| {
        // an expression built in memory (not from a validated definition) is checked again
        for expr in deep_expressions(5_000) {
            let e = jsonata::Expr { text: expr };
            assert!(jsonata::eval(&e, &json!({}), &Variables::new()).is_err());
        }
    });
}

#[test]
fn reasonable_nesting_keeps_working() {
    small_stack(|| {
        let n = 100;
        let cases = [
            (format!("{}1", "-".repeat(n)), json!(1)),
            (chain(n, "1", "+", ""), json!(n)),
            (chain(n, "'a'", "&", ""), json!("a".repeat(n))),
            (format!("{}1{}", "(".repeat(n), ")".repeat(n)), json!(1)),
            (
                format!("{}1{}", "$number(".repeat(n), ")".repeat(n)),
                json!(1),
            ),
            (
                format!("{}1{}", "[".repeat(n), "]".repeat(n)),
                nested_array(n),
            ),
            (format!("$states.input{}", ".a".repeat(n)), json!("leaf")),
            // many siblings are not nesting
            (
                format!("[{}]", chain(2_000, "1", ",", "")),
                Value::Array(vec![json!(1); 2_000]),
            ),
            (
                format!("$sum([{}])", chain(2_000, "1", ",", "")),
                json!(2_000),
            ),
            (
                "'".to_string() + &"-(".repeat(5_000) + "'",
                json!("-(".repeat(5_000)),
            ),
        ];
        let mut input = json!("leaf");
        for _ in 0..n {
            input = json!({ "a": input });
        }
        for (expr, want) in cases {
            let got = eval(&expr, input.clone());
            assert!(
                got == Ok(Some(want)),
                "{}: {}",
                brief(&expr),
                brief(&format!("{got:?}"))
            );
        }
    });
}

#[test]
fn deep_recursion_and_deep_values_fail_with_a_named_error() {
    small_stack(|| {
        for expr in [
            // recursion past the evaluator's depth limit
            "( $f := function($n){ $n = 0 ? 0 : 1 + $f($n - 1) }; $f(100000) )",
            "( $f := function($n){ $n = 0 ? 0 : {'a': $f($n - 1)} }; $f(100000) )",
            // tail calls and reduce building values deeper than memory allows
            "( $f := function($n, $a){ $n = 0 ? $a : $f($n - 1, {'a': $a}) }; $f(1000000, 1) )",
            "( $f := function($n, $a){ $n = 0 ? $a : $f($n - 1, [$a, 0]) }; $f(1000000, 1) )",
            "$reduce([1..1000000], function($a, $b){ [$a, $b] }, 1)",
            // a deep value as the result
            "( $f := function($n, $a){ $n = 0 ? $a : $f($n - 1, {'a': $a}) }; $f(20000, 1) )",
            "$reduce([1..20000], function($a, $b){ [$a, $b] }, 1)",
            // and handed to the built-ins and operators that walk it
            "( $f := function($n, $a){ $n = 0 ? $a : $f($n - 1, {'a': $a}) }; $string($f(20000, 1)) )",
            "( $f := function($n, $a){ $n = 0 ? $a : $f($n - 1, {'a': $a}) }; $f(20000, 1) + 1 )",
            "( $f := function($n, $a){ $n = 0 ? $a : $f($n - 1, {'a': $a}) }; $f(20000, 1) ~> | $ | {'b': 1} | )",
            "( $f := function($n, $a){ $n = 0 ? $a : $f($n - 1, {'a': $a}) }; $distinct([$f(20000, 1), $f(20000, 2)]) )",
        ] {
            let def = output_def(expr);
            let r = run(&def, json!({}));
            let Err((error, cause)) = r else {
                panic!("{expr}: succeeded")
            };
            assert_eq!(error, names::QUERY_EVALUATION_ERROR, "{expr}: {}", brief(&cause));
        }
    });
}

/// Deep values that stay inside the evaluation (compared, searched) are fine: the
/// evaluator's stack is deep enough for any value its memory budget can hold.
#[test]
fn deep_values_inside_an_evaluation_do_not_crash() {
    small_stack(|| {
        let deep =
            "( $f := function($n, $a){ $n = 0 ? $a : $f($n - 1, {'a': $a}) }; $v := $f(20000, 1); ";
        for (tail, want) in [
            ("$v = $f(20000, 1) )", json!(true)),
            ("$v in [$f(20000, 1)] )", json!(true)),
            ("$count($v.**) )", json!(20001)),
        ] {
            let expr = format!("{deep}{tail}");
            let got = run(&output_def(&expr), json!({}));
            assert!(got == Ok(want), "{expr}: {}", brief(&format!("{got:?}")));
        }
    });
}

#[test]
fn amplifying_builtins_fail_fast() {
    small_stack(|| {
        let big = "x".repeat(200_000);
        for expr in [
            "$pad('x', 1e12)",
            "$pad('x', -1e12)",
            "$pad('x', $states.input.n)",
            "$pad('x', 1e6, 'abcdefgh')",
            "$join([1..100000].($states.input.s))",
            "$join([1..100000].('y'), $states.input.s)",
            "$string([1..100000].($states.input.s))",
            "$string([1..100000].($states.input.o), true)",
            "$replace($states.input.s, 'x', $states.input.s)",
            "$replace($states.input.s, /x/, $states.input.s)",
            "$replace('abc', '', 'y')",
            "$replace($pad('', 100000), / /, function($m){ $states.input.s })",
            "$replace($pad('', 100000), ' ', function($m){ $replace('ab', 'a', function($n){ $states.input.s }) })",
            "[1..100000000]",
            "$sum([1..100000000])",
            "$count([1..10000000].($string($)))",
            "$sort([1..10000000])",
            "$reverse([1..10000000])",
            "[1..10000000].($states.input.s)",
            "$reduce([1..40], function($a){ $a & $a }, 'x')",
            "( $f := function($s, $n){ $n = 0 ? $s : $f($s & $s, $n - 1) }; $f('x', 40) )",
            "$partition([1..10000000], 1)",
            "$shuffle([1..10000000])",
            "$spread([1..100000].($states.input.o))",
            "{'k': [1..100000].($states.input.s)}",
            "$split($pad('', 200000), '')",
            "$match($pad('', 200000), /(.)/)",
            "$match($states.input.s, /x/, 1e9)",
            "[1..10000000]",
        ] {
            let def = output_def(expr);
            let input = json!({"n": 1e15, "s": big, "o": {"s": big}});
            let Err((error, cause)) = run(&def, input) else {
                panic!("{expr}: succeeded")
            };
            assert!(
                error == names::QUERY_EVALUATION_ERROR || error == names::DATA_LIMIT_EXCEEDED,
                "{expr}: {error}: {}",
                brief(&cause)
            );
        }
    });
}

#[test]
fn builtins_work_within_their_budgets() {
    small_stack(|| {
        assert_eq!(
            eval("$pad('x', 5, '-')", json!({})),
            Ok(Some(json!("x----")))
        );
        assert_eq!(eval("$pad('x', -3)", json!({})), Ok(Some(json!("  x"))));
        assert_eq!(
            eval("$join(['a', 'b'], ',')", json!({})),
            Ok(Some(json!("a,b")))
        );
        assert_eq!(
            eval("$string({'a': [1, true]})", json!({})),
            Ok(Some(json!("{\"a\":[1,true]}")))
        );
        assert_eq!(
            eval("$replace('abcabc', 'b', 'XY')", json!({})),
            Ok(Some(json!("aXYcaXYc")))
        );
        assert_eq!(
            eval(
                "$replace('a-b-c', /-/, function($m){ $uppercase($m.match) & '+' })",
                json!({})
            ),
            Ok(Some(json!("a-+b-+c")))
        );
        assert_eq!(
            eval(
                "$replace('abc', /(b)/, function($m){ $m.groups[0] & $m.groups[0] })",
                json!({})
            ),
            Ok(Some(json!("abbc")))
        );
        assert_eq!(
            eval("$map(['a', 'b'], $string)", json!({})),
            Ok(Some(json!(["a", "b"])))
        );
        assert_eq!(
            eval("$count([1..100000])", json!({})),
            Ok(Some(json!(100000)))
        );
        // a large legal payload goes through: 200 KB in, 200 KB out
        let s = "y".repeat(200_000);
        let got = eval("$states.input.s & ''", json!({"s": s}));
        assert!(got == Ok(Some(json!(s))), "large string");
        assert_eq!(
            eval("$pad('', 200000)", json!({})).map(|v| v.map(|v| v.as_str().map(str::len))),
            Ok(Some(Some(200_000)))
        );
        // the names the guards use are reserved
        assert!(jsonata::compile("$__weft_orig_pad('x', 1e12)").is_err());
    });
}

fn nested_array(n: usize) -> Value {
    let mut v = json!(1);
    for _ in 0..n {
        v = json!([v]);
    }
    v
}

/// A message's first characters (hostile values are large).
fn brief(s: &str) -> String {
    s.chars().take(300).collect()
}

fn fixtures() -> Vec<(PathBuf, Value)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hostile");
    let mut out = Vec::new();
    for e in std::fs::read_dir(&dir).expect("fixtures dir") {
        let p = e.expect("entry").path();
        if p.extension().is_some_and(|x| x == "json") {
            let text = std::fs::read_to_string(&p).expect("read");
            out.push((p, serde_json::from_str(&text).expect("fixture is JSON")));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Each fixture: `{"definition": ..., "input": ..., "expect": {"invalid": "pointer"} |
/// {"error": "States.X"} | {"output": ...}}`.
#[test]
fn hostile_fixtures() {
    let all = fixtures();
    assert!(all.len() >= 10, "fixtures missing");
    small_stack(move || {
        for (path, f) in all {
            let name = path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string();
            let def = &f["definition"];
            let input = f.get("input").cloned().unwrap_or(json!({}));
            let r = run(def, input);
            let exp = &f["expect"];
            if let Some(ptr) = exp.get("invalid").and_then(Value::as_str) {
                let Err((kind, text)) = r else {
                    panic!("{name}: accepted")
                };
                assert_eq!(kind, "validation", "{name}: {}", brief(&text));
                assert!(text.contains(ptr), "{name}: {}", brief(&text));
            } else if let Some(e) = exp.get("error").and_then(Value::as_str) {
                let Err((kind, cause)) = r else {
                    panic!("{name}: succeeded")
                };
                assert_eq!(kind, e, "{name}: {}", brief(&cause));
            } else {
                let ok = r.as_ref().ok() == exp.get("output");
                assert!(ok, "{name}: {}", brief(&format!("{r:?}")));
            }
        }
    });
}

/// One piece of a generated expression: a prefix, the matching suffix (for brackets and
/// calls) and whether it nests.
const PREFIXES: &[(&str, &str)] = &[
    ("-", ""),
    ("- ", ""),
    ("(", ")"),
    ("[", "]"),
    ("{'k': ", "}"),
    ("$string(", ")"),
    ("$number(", ")"),
    ("$abs(", ")"),
    ("1 + ", ""),
    ("1 * ", ""),
    ("true and ", ""),
    ("'a' & ", ""),
    ("1 = ", ""),
    ("$.", ""),
    ("true ? ", " : 0"),
    ("( $x := ", "; $x )"),
    ("( $g := function($v){ ", " }; $g(1) )"),
    ("/* c */ ", ""),
    ("\"s\" & ", ""),
];

fn build(picks: &[usize]) -> String {
    let mut pre = String::new();
    let mut post = Vec::new();
    for &i in picks {
        let (p, s) = PREFIXES[i % PREFIXES.len()];
        pre.push_str(p);
        post.push(s);
    }
    pre.push('1');
    for s in post.iter().rev() {
        pre.push_str(s);
    }
    pre
}

/// Random nestings of random depth (up to 20 times the limit) never crash: they compile and
/// evaluate, or fail with an error; a definition holding one is valid or refused with the
/// pointer of the field; anything within 100 levels compiles.
#[test]
fn random_nestings_never_crash() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    small_stack(|| {
        let mut runner = TestRunner::new(Config {
            cases: 96,
            failure_persistence: None,
            ..Config::default()
        });
        let strategy = prop::collection::vec(0usize..PREFIXES.len(), 0..8_000);
        runner
            .run(&strategy, |picks| {
                let expr = build(&picks);
                match jsonata::compile(&expr) {
                    Ok(e) => {
                        let _ = jsonata::eval(&e, &json!({"input": {}}), &Variables::new());
                    }
                    Err(msg) => {
                        let too_deep = msg.contains("nested too deeply");
                        prop_assert!(
                            !too_deep || picks.len() > 100,
                            "refused at {}: {}",
                            picks.len(),
                            brief(&msg)
                        );
                        let r = run(&output_def(&expr), json!({}));
                        let refused = matches!(&r, Err((k, t)) if k == "validation" && t.contains("/States/S/Output"));
                        prop_assert!(refused, "{}", brief(&format!("{r:?}")));
                    }
                }
                Ok(())
            })
            .expect("no counterexample");
    });
}

/// Random bytes around operator characters never crash the scan, the parser or the
/// evaluator (a cheap stand-in for the fuzz targets inside `cargo test`).
#[test]
fn random_operator_soup_never_crashes() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    small_stack(|| {
        let mut runner = TestRunner::new(Config {
            cases: 256,
            failure_persistence: None,
            ..Config::default()
        });
        let strategy = prop::collection::vec(
            prop::sample::select(vec![
                "-", "+", "(", ")", "[", "]", "{", "}", "'", "\"", "`", "/", "*", "\\", ",", ";",
                ":", "=", "~>", "$", "a", "1", " ", "and", ".", "?", "..", "|", "^", "#", "@",
                "function", "$f", "%", "&", "<", ">", "!", "\u{a0}", "é",
            ]),
            0..3_000,
        );
        runner
            .run(&strategy, |parts| {
                let expr: String = parts.concat();
                if let Ok(e) = jsonata::compile(&expr) {
                    let _ = jsonata::eval(&e, &json!({"input": {}}), &Variables::new());
                }
                let _ = jsonata::depth_bound(&expr);
                Ok(())
            })
            .expect("no counterexample");
    });
}

fn t_catches(states: &Value) -> bool {
    states["T"].get("Catch").is_some()
}

/// A runner whose task returns a result larger than the payload limit.
struct BigResult;

impl weft_asl::TaskRunner for BigResult {
    fn run_task(&self, _req: &weft_asl::TaskRequest<'_>) -> Result<Value, weft_asl::TaskFailure> {
        Ok(json!({"blob": "z".repeat(300_000), "small": 1}))
    }
}

/// As in Step Functions: a task's result and a task's input after Parameters are bounded
/// (a ResultSelector that keeps a small piece does not make a huge result acceptable), the
/// error is `States.DataLimitExceeded`, which `States.ALL` does not catch but its own name
/// does.
#[test]
fn task_results_and_parameters_are_bounded() {
    let run_with = |def: Value, input: Value| {
        let sm = parse(&def.to_string()).expect("valid");
        run_express(
            &sm,
            input,
            &RunOptions::default(),
            &BigResult,
            &FakeClock::default(),
            Hooks::default(),
        )
        .map_err(|e| e.error)
    };
    let task = |extra: Value| {
        let mut t = json!({"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "f"}, "ResultSelector": {"n.$": "$.small"}, "End": true});
        if let (Some(t), Value::Object(e)) = (t.as_object_mut(), extra) {
            t.extend(e);
        }
        let mut states = json!({"T": t});
        if t_catches(&states) {
            states["Caught"] = json!({"Type": "Pass", "Result": "caught", "End": true});
        }
        json!({"StartAt": "T", "States": states})
    };
    assert_eq!(
        run_with(task(json!({})), json!({})),
        Err(names::DATA_LIMIT_EXCEEDED.to_string())
    );
    assert_eq!(
        run_with(
            task(json!({"Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}]})),
            json!({})
        ),
        Err(names::DATA_LIMIT_EXCEEDED.to_string())
    );
    assert_eq!(
        run_with(
            task(
                json!({"Catch": [{"ErrorEquals": ["States.DataLimitExceeded"], "Next": "Caught"}]})
            ),
            json!({})
        ),
        Ok(json!("caught"))
    );
    // Parameters that copy the same 100 KB input three times: 300 KB of task input
    let params = json!({"FunctionName": "f", "a.$": "$.s", "b.$": "$.s", "c.$": "$.s"});
    assert_eq!(
        run_with(
            task(json!({"Parameters": params})),
            json!({"s": "y".repeat(100_000)})
        ),
        Err(names::DATA_LIMIT_EXCEEDED.to_string())
    );
}
