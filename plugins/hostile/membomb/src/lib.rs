//! Hostile: allocates (and touches) 1 MiB chunks until allocation fails and the instance
//! aborts (expect `Sandbox.MemoryLimit`).
use weft_guest::{Context, TaskError, Value};

fn run(_ctx: &Context, _input: Value) -> Result<Value, TaskError> {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        let chunk = vec![0xA5u8; 1 << 20];
        hoard.push(std::hint::black_box(chunk));
    }
}

weft_guest::export_operator!(run);
