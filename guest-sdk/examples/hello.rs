//! The README example: `make guests` builds it into target/plugins/examples/hello.wasm.
use serde_json::{json, Value};
use weft_guest::{Context, TaskError};

fn run(ctx: &Context, input: Value) -> Result<Value, TaskError> {
    let name = input["name"]
        .as_str()
        .ok_or_else(|| TaskError::invalid_input("`name` must be a string"))?;
    ctx.info(format!("greeting {name} (attempt {})", ctx.attempt()));
    if name == "nobody" {
        return Err(TaskError::new("Hello.NoOne", "there is nobody to greet"));
    }
    Ok(json!({ "greeting": format!("hello, {name}"), "task": ctx.task_name() }))
}

weft_guest::export_operator!(run);
