//! Validation warnings: what a valid definition says that weft accepts but does not act on.
//! Nothing is accepted and then silently ignored: each such field, and each unsubstituted
//! SAM/CloudFormation `${Name}` placeholder, becomes a [`Warning`] with its JSON pointer.
//!
//! (AWS service integrations are acted on: a resource map names the plugin that serves each;
//! the engine reports the unmapped ones, see `weft_engine::resource_map`.)
//!
//! Fields that warn (all are otherwise validated like AWS does):
//! - `ItemProcessor.ProcessorConfig.ExecutionType` (iterations run in-process either way);
//! - `ProcessorConfig` fields other than `Mode`/`ExecutionType`, and `ProcessorConfig` in a
//!   Parallel branch;
//! - `ItemReader` fields other than `Resource`, `ReaderConfig`, `Parameters`/`Arguments`, and
//!   `ReaderConfig` fields other than `InputType`, `CSVHeaderLocation`, `CSVHeaders`,
//!   `CSVDelimiter`, `MaxItems`, `MaxItemsPath` (e.g. `ManifestType`, `Transformation`);
//! - `ErrorEquals` names starting with `States.` that are not predefined errors (they only
//!   match a task error of that exact name);
//! - any string holding a `${Name}` placeholder (in `Resource` the task cannot run until it
//!   is substituted; elsewhere the text is used literally).

use crate::error::{names, Warning};
use crate::resource::placeholders;
use crate::template::escape_ptr;
use serde_json::{Map, Value};

/// Deepest nesting the placeholder scan descends into (definitions are bounded far below
/// this by the parser; the cap only keeps the walk iterative-safe).
const MAX_SCAN_DEPTH: usize = 512;

/// The warnings for a definition that already validated.
pub fn collect(def: &Value) -> Vec<Warning> {
    let mut out = Vec::new();
    machine(def, "", Scope::Top, &mut out);
    scan_placeholders(def, &mut String::new(), 0, &mut out);
    out
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    Top,
    MapProcessor,
    ParallelBranch,
}

fn warn(out: &mut Vec<Warning>, pointer: String, message: impl Into<String>) {
    out.push(Warning {
        pointer,
        message: message.into(),
    });
}

fn child(ptr: &str, k: &str) -> String {
    format!("{ptr}/{}", escape_ptr(k))
}

fn machine(v: &Value, ptr: &str, scope: Scope, out: &mut Vec<Warning>) {
    let Some(o) = v.as_object() else { return };
    if let Some(pc) = o.get("ProcessorConfig") {
        let pcp = child(ptr, "ProcessorConfig");
        match scope {
            Scope::MapProcessor => processor_config(pc, &pcp, out),
            _ => warn(
                out,
                pcp,
                "ProcessorConfig only applies to a Map's ItemProcessor; it is ignored here",
            ),
        }
    }
    if let Some(Value::Object(states)) = o.get("States") {
        let sptr = child(ptr, "States");
        for (name, s) in states {
            state(s, &child(&sptr, name), out);
        }
    }
}

fn processor_config(pc: &Value, ptr: &str, out: &mut Vec<Warning>) {
    let Some(o) = pc.as_object() else { return };
    for k in o.keys() {
        match k.as_str() {
            "Mode" => {}
            "ExecutionType" => warn(
                out,
                child(ptr, k),
                "ExecutionType is not used: weft runs every Map iteration in-process, not as a STANDARD or EXPRESS child execution",
            ),
            _ => warn(out, child(ptr, k), format!("'{k}' is not a ProcessorConfig field weft knows; it is ignored")),
        }
    }
}

fn state(v: &Value, ptr: &str, out: &mut Vec<Warning>) {
    let Some(o) = v.as_object() else { return };
    for list in ["Retry", "Catch"] {
        if let Some(Value::Array(a)) = o.get(list) {
            for (i, r) in a.iter().enumerate() {
                if let Some(Value::Array(ee)) = r.get("ErrorEquals") {
                    for (j, e) in ee.iter().enumerate() {
                        if let Some(s) = e.as_str() {
                            if s.starts_with("States.") && !names::PREDEFINED.contains(&s) {
                                warn(
                                    out,
                                    format!("{ptr}/{list}/{i}/ErrorEquals/{j}"),
                                    format!("'{s}' is not a predefined States error; it only matches a task error with exactly that name"),
                                );
                            }
                        }
                    }
                }
            }
        }
    }
    match o.get("Type").and_then(Value::as_str) {
        Some("Map") => map_state(o, ptr, out),
        Some("Parallel") => {
            if let Some(Value::Array(bs)) = o.get("Branches") {
                for (i, b) in bs.iter().enumerate() {
                    machine(
                        b,
                        &format!("{ptr}/Branches/{i}"),
                        Scope::ParallelBranch,
                        out,
                    );
                }
            }
        }
        _ => {}
    }
}

fn map_state(o: &Map<String, Value>, ptr: &str, out: &mut Vec<Warning>) {
    if let Some(Value::Object(r)) = o.get("ItemReader") {
        let rptr = child(ptr, "ItemReader");
        for k in r.keys() {
            if ![
                "Resource",
                "ReaderConfig",
                "Parameters",
                "Arguments",
                "Comment",
            ]
            .contains(&k.as_str())
            {
                warn(
                    out,
                    child(&rptr, k),
                    format!("'{k}' is not an ItemReader field weft reads; it is ignored"),
                );
            }
        }
        if let Some(Value::Object(c)) = r.get("ReaderConfig") {
            let cptr = child(&rptr, "ReaderConfig");
            for k in c.keys() {
                if ![
                    "InputType",
                    "CSVHeaderLocation",
                    "CSVHeaders",
                    "CSVDelimiter",
                    "MaxItems",
                    "MaxItemsPath",
                ]
                .contains(&k.as_str())
                {
                    warn(out, child(&cptr, k), format!("ReaderConfig '{k}' is not supported by weft's item reader; it is ignored"));
                }
            }
        }
    }
    for key in ["ItemProcessor", "Iterator"] {
        if let Some(p) = o.get(key) {
            machine(p, &child(ptr, key), Scope::MapProcessor, out);
        }
    }
}

fn scan_placeholders(v: &Value, ptr: &mut String, depth: usize, out: &mut Vec<Warning>) {
    if depth > MAX_SCAN_DEPTH {
        return;
    }
    match v {
        Value::String(s) => {
            let found = placeholders(s);
            if found.is_empty() {
                return;
            }
            let list = found.join(", ");
            let message = if ptr.ends_with("/Resource") {
                format!("Resource holds the unsubstituted placeholder {list} (SAM/CloudFormation DefinitionSubstitutions); the task fails when it runs until it is substituted")
            } else {
                format!("{list} looks like an unsubstituted SAM/CloudFormation DefinitionSubstitutions placeholder; the text is used as written")
            };
            warn(out, ptr.clone(), message);
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                let len = ptr.len();
                ptr.push('/');
                ptr.push_str(&i.to_string());
                scan_placeholders(x, ptr, depth + 1, out);
                ptr.truncate(len);
            }
        }
        Value::Object(o) => {
            for (k, x) in o {
                let len = ptr.len();
                ptr.push('/');
                ptr.push_str(&escape_ptr(k));
                scan_placeholders(x, ptr, depth + 1, out);
                ptr.truncate(len);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ptrs(v: Value) -> Vec<String> {
        collect(&v).into_iter().map(|w| w.pointer).collect()
    }

    #[test]
    fn unhonoured_map_fields_warn() {
        let p = ptrs(json!({"StartAt": "M", "States": {"M": {
            "Type": "Map", "End": true, "Label": "L",
            "ResultWriter": {"Resource": "arn:aws:states:::s3:putObject",
                "Parameters": {"Bucket": "b", "Prefix": "p"}},
            "ItemReader": {"Resource": "arn:aws:states:::s3:getObject",
                "ReaderConfig": {"InputType": "CSV", "CSVDelimiter": "SEMICOLON",
                    "ManifestType": "ATHENA_DATA"}},
            "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"},
                "StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}}}}));
        assert_eq!(
            p,
            vec![
                "/States/M/ItemReader/ReaderConfig/ManifestType",
                "/States/M/ItemProcessor/ProcessorConfig/ExecutionType",
            ]
        );
    }

    #[test]
    fn aws_service_tasks_warn_unless_they_wait_for_a_token() {
        let task = |r: &str| {
            ptrs(
                json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": r, "End": true}}}),
            )
        };
        // service integrations are served by resource maps (the engine reports unmapped ones)
        assert!(task("arn:aws:states:::dynamodb:getItem").is_empty());
        assert!(task("arn:aws:states:us-east-1:123456789012:aws-sdk:s3:getObject").is_empty());
        assert!(task("arn:aws:states:::sqs:sendMessage.waitForTaskToken").is_empty());
        assert!(task("arn:aws:states:::lambda:invoke").is_empty());
        assert!(task("arn:aws:states:::http:invoke").is_empty());
        assert!(task("weft:plugin:echo").is_empty());
    }

    #[test]
    fn placeholders_and_unknown_states_errors_warn() {
        let w = collect(&json!({"StartAt": "T", "States": {"T": {
            "Type": "Task", "Resource": "${ProcessFunctionArn}", "End": true,
            "Parameters": {"FunctionName": "${Fn}", "Keep": "$.x"},
            "Retry": [{"ErrorEquals": ["States.Nope"]}]}}}));
        let p: Vec<&str> = w.iter().map(|w| w.pointer.as_str()).collect();
        assert_eq!(
            p,
            vec![
                "/States/T/Retry/0/ErrorEquals/0",
                "/States/T/Resource",
                "/States/T/Parameters/FunctionName"
            ]
        );
        assert!(w[1]
            .to_string()
            .starts_with("/States/T/Resource: warning: Resource holds"));
    }
}
