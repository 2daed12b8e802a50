//! ValidateStateMachineDefinition: weft's validator answered in AWS's diagnostics shape.
//!
//! Each problem becomes `{"severity", "code", "message", "location"}` with `location` the JSON
//! pointer of the offending member (`/States/Work/Next`). Errors are what CreateStateMachine
//! refuses (`INVALID_JSON_DESCRIPTION`, `MISSING_DESCRIPTION`, `INVALID_RESOURCE`,
//! `SCHEMA_VALIDATION_FAILED`, and for `type: EXPRESS` the integration patterns Express
//! workflows cannot run); warnings are what weft accepts but does not act on
//! (`WEFT_NOT_ACTED_ON`, see [`weft_asl::warnings`]) and operators that are not installed
//! (`OPERATOR_NOT_INSTALLED`). `severity: ERROR` (the default) answers errors only,
//! `WARNING` both; `result` is `FAIL` when there is an error. At most `maxResults` (1-100,
//! default 100) diagnostics, errors first, with `truncated` when more were found.

use crate::error::ApiError;
use crate::AppState;
use serde_json::{json, Value};
use std::sync::Arc;

/// AWS's limit on `maxResults`.
const MAX_RESULTS: u64 = 100;
/// How deep the Express check descends into nested states (definitions are depth-checked by
/// the parser long before this).
const MAX_DEPTH: usize = 64;

fn diag(severity: &str, code: &str, message: &str, location: &str) -> Value {
    let mut d = json!({"severity": severity, "code": code, "message": message});
    if !location.is_empty() {
        d["location"] = json!(location);
    }
    d
}

fn error_code(pointer: &str, reason: &str) -> &'static str {
    if pointer.is_empty() && reason.starts_with("not valid JSON") {
        "INVALID_JSON_DESCRIPTION"
    } else if pointer.ends_with("/Resource") {
        "INVALID_RESOURCE"
    } else {
        "SCHEMA_VALIDATION_FAILED"
    }
}

/// Task resources an Express workflow cannot run (`.sync`, `.waitForTaskToken`), by pointer.
fn express_errors(machine: &Value, at: &str, depth: usize, out: &mut Vec<Value>) {
    let Some(states) = machine.get("States").and_then(Value::as_object) else {
        return;
    };
    if depth > MAX_DEPTH {
        return;
    }
    for (name, st) in states {
        let here = format!("{at}/States/{}", name.replace('~', "~0").replace('/', "~1"));
        if let Some(r) = st.get("Resource").and_then(Value::as_str) {
            if r.contains(".sync") || r.ends_with(".waitForTaskToken") {
                out.push(diag(
                    "ERROR",
                    "SCHEMA_VALIDATION_FAILED",
                    &format!("Express state machines do not support the integration pattern of '{r}' (only request-response)"),
                    &format!("{here}/Resource"),
                ));
            }
        }
        if let Some(branches) = st.get("Branches").and_then(Value::as_array) {
            for (i, b) in branches.iter().enumerate() {
                express_errors(b, &format!("{here}/Branches/{i}"), depth + 1, out);
            }
        }
        for k in ["ItemProcessor", "Iterator"] {
            if let Some(p) = st.get(k) {
                express_errors(p, &format!("{here}/{k}"), depth + 1, out);
            }
        }
    }
}

pub(crate) fn validate(app: &Arc<AppState>, req: &Value) -> Result<Value, ApiError> {
    let definition = crate::api::req_str(req, "definition")?;
    let express = match crate::api::opt_str(req, "type")? {
        None | Some("STANDARD") => false,
        Some("EXPRESS") => true,
        Some(t) => {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value '{t}' at 'type' failed to satisfy constraint: Member must satisfy enum value set: [STANDARD, EXPRESS]"
            )))
        }
    };
    let warnings_too = match crate::api::opt_str(req, "severity")? {
        None | Some("ERROR") => false,
        Some("WARNING") => true,
        Some(s) => {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value '{s}' at 'severity' failed to satisfy constraint: Member must satisfy enum value set: [ERROR, WARNING]"
            )))
        }
    };
    let max = match req.get("maxResults") {
        None | Some(Value::Null) => MAX_RESULTS,
        Some(v) => match v.as_u64() {
            Some(0) => MAX_RESULTS,
            Some(n) if n <= MAX_RESULTS => n,
            _ => {
                return Err(ApiError::validation(format!(
                    "1 validation error detected: Value '{v}' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to {MAX_RESULTS}"
                )))
            }
        },
    } as usize;

    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    if definition.trim().is_empty() {
        errors.push(diag(
            "ERROR",
            "MISSING_DESCRIPTION",
            "The definition is empty",
            "",
        ));
    } else {
        match weft_asl::validate_with_warnings(definition) {
            Err(errs) => {
                for e in &errs.errors {
                    errors.push(diag(
                        "ERROR",
                        error_code(&e.pointer, &e.reason),
                        &e.reason,
                        &e.pointer,
                    ));
                }
            }
            Ok((_, ws)) => {
                let def: Value = serde_json::from_str(definition)?;
                if express {
                    express_errors(&def, "", 0, &mut errors);
                }
                for w in ws {
                    warnings.push(diag("WARNING", "WEFT_NOT_ACTED_ON", &w.message, &w.pointer));
                }
                for w in weft_engine::needed_plugins::missing(&app.store, &def) {
                    let (at, msg) = w.split_once(": warning: ").unwrap_or(("", &w));
                    warnings.push(diag("WARNING", "OPERATOR_NOT_INSTALLED", msg, at));
                }
            }
        }
    }
    let result = if errors.is_empty() { "OK" } else { "FAIL" };
    let mut all = errors;
    if warnings_too {
        all.extend(warnings);
    }
    let truncated = all.len() > max;
    all.truncate(max);
    Ok(json!({"result": result, "diagnostics": all, "truncated": truncated}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        assert_eq!(
            error_code("", "not valid JSON: EOF"),
            "INVALID_JSON_DESCRIPTION"
        );
        assert_eq!(error_code("/States/A/Resource", "x"), "INVALID_RESOURCE");
        assert_eq!(
            error_code("/States/A/Next", "x"),
            "SCHEMA_VALIDATION_FAILED"
        );
        let def = json!({"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": true,
            "Branches": [{"StartAt": "T", "States": {"T": {"Type": "Task", "End": true,
                "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken"}}}]}}});
        let mut out = Vec::new();
        express_errors(&def, "", 0, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0]["location"], "/States/P/Branches/0/States/T/Resource");
    }
}
