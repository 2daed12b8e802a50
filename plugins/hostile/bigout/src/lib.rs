//! Hostile: returns a huge JSON string (expect `Sandbox.OutputTooLarge`).
//! Input: `{"bytes"?: n}` (default 64 MiB).
use weft_guest::{Context, TaskError, Value};

fn run(_ctx: &Context, input: Value) -> Result<Value, TaskError> {
    let n = input.get("bytes").and_then(Value::as_u64).unwrap_or(64 << 20) as usize;
    Ok(Value::String("x".repeat(n)))
}

weft_guest::export_operator!(run);
