//! Hostile: recursion whose frames live in the shadow stack in linear memory (a large local
//! array each), so the stack pointer runs below address 0 before wasmtime's native stack limit
//! is reached (expect `Sandbox.StackOverflow`). Input: `{"depth"?: n}` (default: unbounded).
use weft_guest::{json, Context, TaskError, Value};

#[inline(never)]
fn descend(n: u64) -> u64 {
    let mut frame = [0u8; 16 * 1024];
    frame[(n as usize) % frame.len()] = n as u8;
    let frame = std::hint::black_box(&mut frame);
    if n == 0 {
        return frame[0] as u64;
    }
    let r = descend(n - 1);
    r.wrapping_add(frame[(n as usize * 7) % frame.len()] as u64)
}

fn run(_ctx: &Context, input: Value) -> Result<Value, TaskError> {
    let depth = input
        .get("depth")
        .and_then(Value::as_u64)
        .unwrap_or(u64::MAX);
    Ok(json!({ "result": descend(std::hint::black_box(depth)) }))
}

weft_guest::export_operator!(run);
