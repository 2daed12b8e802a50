//! Hostile: unbounded (non-tail) recursion (expect `Sandbox.StackOverflow`).
//! Input: `{"depth"?: n}` (default: unbounded). Locals stay in wasm locals, so it is wasmtime's
//! native stack limit that is hit ("call stack exhausted"), not the shadow stack in memory.
use weft_guest::{json, Context, TaskError, Value};

#[inline(never)]
fn descend(n: u64) -> u64 {
    if n == 0 {
        return 1;
    }
    let r = descend(n - 1);
    r.rotate_left(5) ^ n
}

fn run(_ctx: &Context, input: Value) -> Result<Value, TaskError> {
    let depth = input
        .get("depth")
        .and_then(Value::as_u64)
        .unwrap_or(u64::MAX);
    Ok(json!({ "result": descend(std::hint::black_box(depth)) }))
}

weft_guest::export_operator!(run);
