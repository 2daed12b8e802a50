//! Fuzz target: any JSONata expression is refused by `compile` or evaluated by `eval`
//! within its budgets (depth, time, memory), ending in a value or an error, never a crash.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::json;
use weft_asl::env::Variables;
use weft_asl::jsonata;

/// libfuzzer-sys aborts on every panic, even one the code under test catches (weft-asl
/// catches the JSONata crate's panics and reports an error). The hook is made silent and a
/// panic that escapes the call is what aborts.
fn escaped_panic_aborts(f: impl FnOnce()) {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_err() {
        std::process::abort();
    }
}

fuzz_target!(|data: &[u8]| escaped_panic_aborts(|| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(expr) = jsonata::compile(text) else {
        return;
    };
    let states =
        json!({"input": {"a": [1, 2, 3], "s": "text", "n": 1e12, "o": {"k": [true, null]}}});
    let mut vars = Variables::new();
    vars.set("v".into(), json!({"x": [1, {"y": "z"}]}));
    let _ = jsonata::eval(&expr, &states, &vars);
}));
