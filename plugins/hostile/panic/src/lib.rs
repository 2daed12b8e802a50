//! Hostile: panics (expect `States.TaskFailed`, Cause = the message the SDK's panic hook writes
//! to stderr: `panicked at FILE:LINE:COL: MESSAGE`). Input: `{"message"?: string}`.
use weft_guest::{Context, TaskError, Value};

fn run(_ctx: &Context, input: Value) -> Result<Value, TaskError> {
    let msg = input
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("the panic operator was asked to panic");
    panic!("{msg}");
}

weft_guest::export_operator!(run);
