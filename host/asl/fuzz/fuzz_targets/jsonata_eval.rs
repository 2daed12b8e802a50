//! Fuzz target: any JSONata expression is refused by `compile` or evaluated by `eval`
//! within its budgets (depth, time, memory), ending in a value or an error, never a crash.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::json;
use weft_asl::env::Variables;
use weft_asl::jsonata;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(expr) = jsonata::compile(text) else {
        return;
    };
    let states = json!({"input": {"a": [1, 2, 3], "s": "text", "n": 1e12, "o": {"k": [true, null]}}});
    let mut vars = Variables::new();
    vars.set("v".into(), json!({"x": [1, {"y": "z"}]}));
    let _ = jsonata::eval(&expr, &states, &vars);
});
