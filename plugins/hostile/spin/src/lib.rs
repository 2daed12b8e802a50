//! Hostile: never returns (expect `Sandbox.FuelExhausted` or `States.Timeout`).
use weft_guest::{Context, TaskError, Value};

fn run(_ctx: &Context, _input: Value) -> Result<Value, TaskError> {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

weft_guest::export_operator!(run);
