//! Hostile: returns a huge JSON string (expect `Sandbox.OutputTooLarge`).
//! Input: `{"bytes"?: n}` (default 8 MiB, over the host's output cap and well under its memory cap).
use weft_guest::{Context, TaskError, Value};

fn run(_ctx: &Context, input: Value) -> Result<Value, TaskError> {
    let n = input
        .get("bytes")
        .and_then(Value::as_u64)
        .unwrap_or(8 << 20) as usize;
    Ok(Value::String("x".repeat(n)))
}

weft_guest::export_operator!(run);
