//! Hostile: asks the host for a secret (expect `Sandbox.PermissionDenied` unless the grant
//! allows `secrets:Get` on `secret:NAME`). Input: `{"name": string}`. Output when allowed:
//! `{"name", "length"}` — never the value itself, so a test can check it without printing it.
use weft_guest::{json, Context, TaskError, Value};

fn run(ctx: &Context, input: Value) -> Result<Value, TaskError> {
    let name = input.get("name").and_then(Value::as_str).unwrap_or("root-password");
    let value = ctx.secret(name)?;
    Ok(json!({ "name": name, "length": value.len() }))
}

weft_guest::export_operator!(run);
