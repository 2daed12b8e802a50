//! `fail`: raises a named error so ASL Retry/Catch (and DAG failure handling) can be exercised.
//! Input: `{"error"?: string, "cause"?: string}` (anything else is ignored).
//! Output: never; always `TaskError { error (default "Custom.Failure"), cause }`.
use weft_guest::{Context, TaskError, Value};

fn run(ctx: &Context, input: Value) -> Result<Value, TaskError> {
    let error = input
        .get("error")
        .and_then(Value::as_str)
        .unwrap_or("Custom.Failure");
    let cause = match input.get("cause") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => format!(
            "the fail operator raised {error} (attempt {})",
            ctx.attempt()
        ),
    };
    Err(TaskError::new(error, cause))
}

weft_guest::export_operator!(run);
