//! `echo`: returns its input unchanged. Input: any JSON. Output: the same JSON, byte for byte
//! (the input is validated but never turned into a tree, so echo measures the invocation path).
use weft_guest::{Context, RawValue, TaskError};

fn run(_ctx: &Context, input: Box<RawValue>) -> Result<Box<RawValue>, TaskError> {
    Ok(input)
}

weft_guest::export_operator!(run);
