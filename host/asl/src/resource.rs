//! Task `Resource` strings: weft plugins (`weft:plugin:NAME[@VERSION|#DIGEST]`), AWS Lambda
//! (`arn:aws:states:::lambda:invoke` with `Parameters.FunctionName`/`Payload`, and plain
//! function ARNs), nested state machines, activities and other service integrations, each
//! with its integration pattern (`.sync`, `.waitForTaskToken`). Also the AWS-shaped wrapper
//! around a `lambda:invoke` result.

use serde_json::{json, Value};
use std::fmt;

/// How the caller waits for a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IntegrationPattern {
    /// Call and take the response.
    #[default]
    RequestResponse,
    /// `.sync` / `.sync:2`: run the job to completion.
    Sync,
    /// `.waitForTaskToken`: pause until SendTaskSuccess/SendTaskFailure with `$$.Task.Token`.
    WaitForTaskToken,
}

/// What a Task's `Resource` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceKind {
    /// `weft:plugin:NAME[@VERSION|#DIGEST]`.
    Plugin {
        /// Plugin name.
        name: String,
        /// Requested version.
        version: Option<String>,
        /// Requested content digest (blake3 hex).
        digest: Option<String>,
    },
    /// `arn:aws:states:::lambda:invoke`: the function is `Parameters.FunctionName`, the
    /// function input `Parameters.Payload`; the result is wrapped ([`wrap_lambda_invoke`]).
    LambdaInvoke,
    /// `arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]`: the result is the
    /// function's own output.
    LambdaFunction {
        /// Function name.
        name: String,
        /// Version or alias.
        qualifier: Option<String>,
    },
    /// `weft:statemachine:NAME` or `arn:aws:states:::states:startExecution`.
    StateMachine {
        /// State machine name (empty for the AWS form, which takes it from Parameters).
        name: String,
    },
    /// `weft:dag:ID`: a run of an Airflow-style DAG (`Parameters` become `dag_run.conf`); the
    /// task waits for the run to finish.
    Dag {
        /// DAG id.
        id: String,
    },
    /// `arn:aws:states:REGION:ACCOUNT:activity:NAME`.
    Activity {
        /// Activity name.
        name: String,
    },
    /// Any other `arn:aws:states:::SERVICE:ACTION` integration.
    Service {
        /// Service (`sqs`, `dynamodb`, `aws-sdk:s3`...).
        service: String,
        /// Action (`sendMessage`, ...).
        action: String,
    },
}

/// A parsed `Resource`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// The text as written.
    pub raw: String,
    /// What it names.
    pub kind: ResourceKind,
    /// Integration pattern from the suffix.
    pub pattern: IntegrationPattern,
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
}

impl Resource {
    /// Classifies a resource string.
    pub fn parse(raw: &str) -> Result<Resource, String> {
        let (base, pattern) = if let Some(b) = raw.strip_suffix(".waitForTaskToken") {
            (b, IntegrationPattern::WaitForTaskToken)
        } else if let Some(b) = raw.strip_suffix(".sync:2") {
            (b, IntegrationPattern::Sync)
        } else if let Some(b) = raw.strip_suffix(".sync") {
            (b, IntegrationPattern::Sync)
        } else {
            (raw, IntegrationPattern::RequestResponse)
        };
        let kind = if let Some(rest) = base.strip_prefix("weft:plugin:") {
            let (name, version, digest) = if let Some((n, d)) = rest.split_once('#') {
                (n, None, Some(d.to_string()))
            } else if let Some((n, v)) = rest.split_once('@') {
                (n, Some(v.to_string()), None)
            } else {
                (rest, None, None)
            };
            if !valid_name(name) {
                return Err(format!("invalid plugin name in '{raw}'"));
            }
            if let Some(d) = &digest {
                if d.is_empty() || !d.chars().all(|c| c.is_ascii_hexdigit()) {
                    return Err(format!("invalid plugin digest in '{raw}' (hex expected)"));
                }
            }
            if version.as_deref() == Some("") {
                return Err(format!("empty plugin version in '{raw}'"));
            }
            ResourceKind::Plugin {
                name: name.to_string(),
                version,
                digest,
            }
        } else if let Some(id) = base.strip_prefix("weft:dag:") {
            if !valid_name(id) {
                return Err(format!("invalid DAG id in '{raw}'"));
            }
            ResourceKind::Dag { id: id.to_string() }
        } else if let Some(name) = base.strip_prefix("weft:statemachine:") {
            if !valid_name(name) {
                return Err(format!("invalid state machine name in '{raw}'"));
            }
            ResourceKind::StateMachine {
                name: name.to_string(),
            }
        } else if base.starts_with("arn:") {
            let parts: Vec<&str> = base.splitn(7, ':').collect();
            if parts.len() < 6 {
                return Err(format!("malformed ARN '{raw}'"));
            }
            let (service, rest) = (parts[2], &parts[5..]);
            match service {
                "states" if parts[3].is_empty() && parts[4].is_empty() => {
                    let svc = rest.first().copied().unwrap_or("");
                    let action = rest.get(1).copied().unwrap_or("");
                    if svc.is_empty() || action.is_empty() {
                        return Err(format!("malformed service integration ARN '{raw}'"));
                    }
                    match (svc, action) {
                        ("lambda", "invoke") => ResourceKind::LambdaInvoke,
                        ("states", "startExecution") => ResourceKind::StateMachine {
                            name: String::new(),
                        },
                        _ => ResourceKind::Service {
                            service: svc.to_string(),
                            action: action.to_string(),
                        },
                    }
                }
                "states" if rest.first() == Some(&"activity") => ResourceKind::Activity {
                    name: rest.get(1).copied().unwrap_or("").to_string(),
                },
                "lambda" if rest.first() == Some(&"function") => {
                    let name = rest.get(1).copied().unwrap_or("");
                    if name.is_empty() {
                        return Err(format!("missing function name in '{raw}'"));
                    }
                    let (name, qualifier) = match name.split_once(':') {
                        Some((n, q)) => (n, Some(q.to_string())),
                        None => (name, None),
                    };
                    ResourceKind::LambdaFunction {
                        name: name.to_string(),
                        qualifier,
                    }
                }
                _ => return Err(format!("unsupported resource ARN '{raw}'")),
            }
        } else {
            return Err(format!(
                "unsupported resource '{raw}' (expected weft:plugin:NAME, weft:statemachine:NAME or an AWS ARN)"
            ));
        };
        Ok(Resource {
            raw: raw.to_string(),
            kind,
            pattern,
        })
    }

    /// The function/plugin to call and the payload to give it, from the effective
    /// parameters. For `lambda:invoke` these come from `FunctionName` and `Payload`
    /// (a function ARN in `FunctionName` is reduced to its name).
    pub fn target(&self, params: &Value) -> (String, Value) {
        match &self.kind {
            ResourceKind::Plugin { name, .. }
            | ResourceKind::LambdaFunction { name, .. }
            | ResourceKind::Activity { name }
            | ResourceKind::StateMachine { name }
            | ResourceKind::Dag { id: name } => (name.clone(), params.clone()),
            ResourceKind::LambdaInvoke => {
                let f = params
                    .get("FunctionName")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let name = function_name(f);
                let payload = params.get("Payload").cloned().unwrap_or(Value::Null);
                (name, payload)
            }
            ResourceKind::Service { service, action } => {
                (format!("{service}:{action}"), params.clone())
            }
        }
    }

    /// True when the interpreter wraps the runner's result like `lambda:invoke` does.
    pub fn wraps_result(&self) -> bool {
        matches!(self.kind, ResourceKind::LambdaInvoke)
            && self.pattern != IntegrationPattern::WaitForTaskToken
    }
}

/// Extracts a function name from a name, partial ARN or full ARN.
pub fn function_name(f: &str) -> String {
    if let Some(idx) = f.find(":function:") {
        let rest = &f[idx + 10..];
        rest.split(':').next().unwrap_or(rest).to_string()
    } else {
        f.split(':').next().unwrap_or(f).to_string()
    }
}

/// Wraps a function result the way `arn:aws:states:::lambda:invoke` returns it.
pub fn wrap_lambda_invoke(payload: Value, request_id: &str, date: &str) -> Value {
    json!({
        "ExecutedVersion": "$LATEST",
        "Payload": payload,
        "SdkHttpMetadata": {
            "AllHttpHeaders": {
                "X-Amz-Executed-Version": ["$LATEST"],
                "x-amzn-Remapped-Content-Length": ["0"],
                "Connection": ["keep-alive"],
                "x-amzn-RequestId": [request_id],
                "Date": [date],
                "Content-Type": ["application/json"]
            },
            "HttpHeaders": {
                "Connection": "keep-alive",
                "Content-Type": "application/json",
                "Date": date,
                "X-Amz-Executed-Version": "$LATEST",
                "x-amzn-Remapped-Content-Length": "0",
                "x-amzn-RequestId": request_id
            },
            "HttpStatusCode": 200
        },
        "SdkResponseMetadata": {"RequestId": request_id},
        "StatusCode": 200
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn classifies() {
        let r = Resource::parse("weft:plugin:echo@1.2.0").unwrap();
        assert_eq!(
            r.kind,
            ResourceKind::Plugin {
                name: "echo".into(),
                version: Some("1.2.0".into()),
                digest: None
            }
        );
        let r = Resource::parse("arn:aws:states:::lambda:invoke.waitForTaskToken").unwrap();
        assert_eq!(r.kind, ResourceKind::LambdaInvoke);
        assert_eq!(r.pattern, IntegrationPattern::WaitForTaskToken);
        let r =
            Resource::parse("arn:aws:lambda:us-east-1:123456789012:function:Hello:prod").unwrap();
        assert_eq!(
            r.kind,
            ResourceKind::LambdaFunction {
                name: "Hello".into(),
                qualifier: Some("prod".into())
            }
        );
        let r = Resource::parse("arn:aws:states:us-east-1:1:activity:act").unwrap();
        assert_eq!(r.kind, ResourceKind::Activity { name: "act".into() });
        assert!(Resource::parse("weft:plugin:").is_err());
        assert!(Resource::parse("http://x").is_err());
        let inv = Resource::parse("arn:aws:states:::lambda:invoke").unwrap();
        let (t, p) = inv.target(
            &json!({"FunctionName": "arn:aws:lambda:r:1:function:F:1", "Payload": {"a": 1}}),
        );
        assert_eq!((t.as_str(), p), ("F", json!({"a": 1})));
    }
}
