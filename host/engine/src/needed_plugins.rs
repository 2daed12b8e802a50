//! The operators a state machine definition names (`weft:plugin:NAME`, Lambda function ARNs,
//! `lambda:invoke` with a literal `FunctionName`) and which of them are not installed, for
//! `weft validate`'s warnings: a missing operator is a set-up mistake to hear about before a
//! run, not a task failure to retry. Names from paths or expressions (`FunctionName.$`) and
//! `${...}` placeholders cannot be known before a run and are skipped.

use crate::plugin_host::{resolve, PluginRef};
use crate::EngineError;
use serde_json::Value;
use weft_asl::resource::{Resource, ResourceKind};
use weft_store::PluginStore;

/// The depth to which a definition is walked (definitions are already depth-checked).
const MAX_DEPTH: usize = 256;

/// An operator a Task names.
#[derive(Debug, PartialEq, Eq)]
pub struct Needed {
    /// JSON pointer of the Task's `Resource`.
    pub pointer: String,
    /// The plugin reference (`NAME`, `NAME@VERSION`, `NAME#DIGEST`).
    pub name: String,
    /// Named as a Lambda function (a missing one is `Lambda.ResourceNotFoundException`).
    pub lambda: bool,
}

/// Every operator the Tasks of `def` name literally.
pub fn needed(def: &Value) -> Vec<Needed> {
    let mut out = Vec::new();
    walk(def, String::new(), 0, &mut out);
    out
}

fn escape(k: &str) -> String {
    k.replace('~', "~0").replace('/', "~1")
}

fn walk(v: &Value, ptr: String, depth: usize, out: &mut Vec<Needed>) {
    if depth > MAX_DEPTH {
        return;
    }
    match v {
        Value::Object(m) => {
            if m.get("Type").and_then(Value::as_str) == Some("Task") {
                if let Some(r) = m.get("Resource").and_then(Value::as_str) {
                    if let Some((name, lambda)) =
                        operator(r, m.get("Parameters").or(m.get("Arguments")))
                    {
                        out.push(Needed {
                            pointer: format!("{ptr}/Resource"),
                            name,
                            lambda,
                        });
                    }
                }
            }
            for (k, x) in m {
                walk(x, format!("{ptr}/{}", escape(k)), depth + 1, out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                walk(x, format!("{ptr}/{i}"), depth + 1, out);
            }
        }
        _ => {}
    }
}

fn operator(resource: &str, params: Option<&Value>) -> Option<(String, bool)> {
    if resource.contains("${") {
        return None;
    }
    let r = Resource::parse(resource).ok()?;
    let name = match &r.kind {
        ResourceKind::Plugin {
            name,
            version,
            digest,
        } => match (version, digest) {
            (_, Some(d)) => format!("{name}#{d}"),
            (Some(v), None) => format!("{name}@{v}"),
            _ => name.clone(),
        },
        ResourceKind::LambdaFunction { name, .. } => return Some((name.clone(), true)),
        ResourceKind::LambdaInvoke => {
            let f = params?.get("FunctionName")?.as_str()?;
            if f.contains("${") || f.is_empty() {
                return None;
            }
            return Some((weft_asl::resource::function_name(f), true));
        }
        _ => return None,
    };
    Some((name, false))
}

/// Warnings (`POINTER: warning: ...`) for the operators `def` names that `store` lacks.
pub fn missing(store: &PluginStore, def: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for n in needed(def) {
        let Ok(r) = PluginRef::parse(&n.name) else {
            continue;
        };
        if let Err(EngineError::PluginNotFound { .. }) = resolve(store, &r) {
            let error = if n.lambda {
                "Lambda.ResourceNotFoundException"
            } else {
                "Weft.PluginNotFound"
            };
            out.push(format!(
                "{}: warning: operator `{}` is not installed (`weft plugin install FILE.wasm|BUNDLE.zip`); a run fails this state with {error}",
                n.pointer, n.name
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_literal_operators_and_skips_what_only_a_run_knows() {
        let def = json!({"StartAt": "A", "States": {
            "A": {"Type": "Task", "Resource": "weft:plugin:csv@1.0.0", "Next": "B"},
            "B": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                  "Parameters": {"FunctionName": "arn:aws:lambda:us-east-1:1:function:score:live"}, "Next": "C"},
            "C": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                  "Parameters": {"FunctionName.$": "$.fn"}, "Next": "D"},
            "D": {"Type": "Task", "Resource": "${Fn}", "Next": "P"},
            "P": {"Type": "Parallel", "End": true, "Branches": [{"StartAt": "E", "States": {
                "E": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:enrich", "End": true}}}]}}});
        let got: Vec<(String, String, bool)> = needed(&def)
            .into_iter()
            .map(|n| (n.pointer, n.name, n.lambda))
            .collect();
        let want = [
            ("/States/A/Resource", "csv@1.0.0", false),
            ("/States/B/Resource", "score", true),
            ("/States/P/Branches/0/States/E/Resource", "enrich", true),
        ];
        let want: Vec<(String, String, bool)> = want
            .iter()
            .map(|(p, n, l)| (p.to_string(), n.to_string(), *l))
            .collect();
        assert_eq!(got, want);
    }
}
