//! `record-run`: makes every run countable from outside the sandbox, for exactly-once tests.
//!
//! Input: `{"dir": "/runs", "id": "NAME", ...}`. Each run creates a new file `DIR/ID.N` (the
//! first free N) holding the input, then returns the input unchanged. Counting `ID.*` files
//! tells how many times the task really ran.
use serde::Deserialize;
use weft_guest::{Context, TaskError, Value};

#[derive(Deserialize)]
struct Input {
    dir: String,
    id: String,
}

fn run(_ctx: &Context, input: Value) -> Result<Value, TaskError> {
    let i: Input = serde_json::from_value(input.clone())
        .map_err(|e| TaskError::invalid_input(format!("expected {{dir, id}}: {e}")))?;
    if i.id.is_empty() || i.id.contains('/') || i.id.contains("..") {
        return Err(TaskError::invalid_input(format!("bad id `{}`", i.id)));
    }
    let text = input.to_string();
    for n in 0..10_000u32 {
        let path = format!("{}/{}.{n}", i.dir.trim_end_matches('/'), i.id);
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut f) => {
                use std::io::Write;
                f.write_all(text.as_bytes())
                    .map_err(|e| TaskError::new("States.TaskFailed", format!("{path}: {e}")))?;
                return Ok(input);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                return Err(TaskError::permission_denied(format!("{path}: {e}")))
            }
            Err(e) => return Err(TaskError::new("States.TaskFailed", format!("{path}: {e}"))),
        }
    }
    Err(TaskError::new("States.TaskFailed", "more than 10000 runs recorded"))
}

weft_guest::export_operator!(run);
