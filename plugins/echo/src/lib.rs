//! `echo`: returns its input unchanged. Input: any JSON. Output: the same JSON.
use weft_guest::{Context, TaskError, Value};

fn run(_ctx: &Context, input: Value) -> Result<Value, TaskError> {
    Ok(input)
}

weft_guest::export_operator!(run);
