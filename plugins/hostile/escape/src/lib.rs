//! Hostile: reads a path outside its grant (expect `Sandbox.PermissionDenied`).
//! Input: `{"path"?: string}` (default `/data/../etc/passwd`; try `/etc/passwd` or a symlink
//! such as `/data/escape/passwd`). Output if the sandbox failed: `{"path", "content"}`.
use weft_guest::{json, Context, TaskError, Value};

fn run(ctx: &Context, input: Value) -> Result<Value, TaskError> {
    let path = input
        .get("path")
        .and_then(Value::as_str)
        .unwrap_or("/data/../etc/passwd");
    let content = ctx.read_to_string(path)?;
    Ok(json!({ "path": path, "content": content }))
}

weft_guest::export_operator!(run);
