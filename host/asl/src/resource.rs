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
    /// Any other `arn:aws:states:::SERVICE:ACTION` integration (also with a region and
    /// account, or in another partition); or a resource holding a `${Name}` placeholder,
    /// kept whole in `service` with an empty `action`.
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

/// The `${Name}` placeholders (SAM / CloudFormation `DefinitionSubstitutions`, `Fn::Sub`)
/// in a string, in order. Names are letters, digits, `_`, `.`, `:` and `-` (`${AWS::Region}`).
pub fn placeholders(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        let after = &rest[i + 2..];
        match after.find('}') {
            Some(j)
                if j > 0
                    && after[..j].chars().all(|c| {
                        c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-')
                    }) =>
            {
                out.push(&rest[i..i + 2 + j + 1]);
                rest = &after[j + 1..];
            }
            _ => rest = after,
        }
    }
    out
}

/// An AWS partition (`aws`, `aws-cn`, `aws-us-gov`, `aws-iso`, ...).
fn valid_partition(p: &str) -> bool {
    p == "aws"
        || p.strip_prefix("aws-").is_some_and(|r| {
            !r.is_empty()
                && r.split('-').all(|w| {
                    !w.is_empty()
                        && w.chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                })
        })
}

/// A region like `us-east-1`, `eu-west-1`, `us-gov-west-1`, `cn-north-1`.
fn valid_region(r: &str) -> bool {
    let parts: Vec<&str> = r.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts[..parts.len() - 1]
            .iter()
            .all(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase()))
        && parts[parts.len() - 1].chars().all(|c| c.is_ascii_digit())
        && !parts[parts.len() - 1].is_empty()
}

/// An account id: AWS's are 12 digits; shorter all-digit ids (as in weft's own examples) are
/// tolerated.
fn valid_account(a: &str) -> bool {
    (1..=12).contains(&a.len()) && a.chars().all(|c| c.is_ascii_digit())
}

impl Resource {
    /// Classifies a resource string, refusing what AWS refuses at CreateStateMachine:
    /// malformed ARNs, optimized integrations or actions that do not exist, and integration
    /// patterns an action does not support (see [`crate::integrations`]).
    ///
    /// A resource holding a `${Name}` placeholder ([`placeholders`]) is only known after
    /// substitution: it is accepted as written (the validator warns) and classified as a
    /// [`ResourceKind::Service`] named by the whole text, which fails when run.
    pub fn parse(raw: &str) -> Result<Resource, String> {
        use crate::integrations::{self, SYNC, SYNC2, TOKEN};
        let (base, pattern, suffix) = if let Some(b) = raw.strip_suffix(".waitForTaskToken") {
            (b, IntegrationPattern::WaitForTaskToken, TOKEN)
        } else if let Some(b) = raw.strip_suffix(".sync:2") {
            (b, IntegrationPattern::Sync, SYNC2)
        } else if let Some(b) = raw.strip_suffix(".sync") {
            (b, IntegrationPattern::Sync, SYNC)
        } else {
            (raw, IntegrationPattern::RequestResponse, 0)
        };
        if !placeholders(raw).is_empty() {
            return Ok(Resource {
                raw: raw.to_string(),
                kind: ResourceKind::Service {
                    service: base.to_string(),
                    action: String::new(),
                },
                pattern,
            });
        }
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
            let parts: Vec<&str> = base.splitn(6, ':').collect();
            if parts.len() < 6 {
                return Err(format!("malformed ARN '{raw}'"));
            }
            let (partition, service, region, account, rest) =
                (parts[1], parts[2], parts[3], parts[4], parts[5]);
            if !valid_partition(partition) {
                return Err(format!(
                    "unknown partition '{partition}' in '{raw}' (aws, aws-cn, aws-us-gov...)"
                ));
            }
            let regional = !region.is_empty() || !account.is_empty();
            if regional && !(valid_region(region) && valid_account(account)) {
                return Err(format!(
                    "malformed ARN '{raw}': expected a region (us-east-1) and an account id (12 digits), or neither"
                ));
            }
            match service {
                "states" => {
                    if let Some(name) = rest.strip_prefix("activity:") {
                        if !regional {
                            return Err(format!(
                                "an activity ARN needs a region and an account: '{raw}'"
                            ));
                        }
                        if suffix != 0 {
                            return Err(format!(
                                "an activity does not take an integration pattern suffix: '{raw}'"
                            ));
                        }
                        if name.is_empty() || name.chars().count() > 80 {
                            return Err(format!(
                                "the activity name in '{raw}' must be 1 to 80 characters"
                            ));
                        }
                        ResourceKind::Activity {
                            name: name.to_string(),
                        }
                    } else {
                        if rest.split(':').any(str::is_empty) || !rest.contains(':') {
                            return Err(format!("malformed service integration ARN '{raw}'"));
                        }
                        integrations::check(rest, suffix)
                            .map_err(|e| format!("unsupported resource '{raw}': {e}"))?;
                        match rest {
                            "lambda:invoke" => ResourceKind::LambdaInvoke,
                            "states:startExecution" => ResourceKind::StateMachine {
                                name: String::new(),
                            },
                            _ => {
                                let (svc, action) = rest.rsplit_once(':').unwrap_or((rest, ""));
                                ResourceKind::Service {
                                    service: svc.to_string(),
                                    action: action.to_string(),
                                }
                            }
                        }
                    }
                }
                "lambda" if rest.starts_with("function:") => {
                    let name = &rest["function:".len()..];
                    if !regional {
                        return Err(format!(
                            "a Lambda function ARN needs a region and an account: '{raw}'"
                        ));
                    }
                    if suffix != 0 {
                        return Err(format!(
                            "a Lambda function ARN does not take an integration pattern suffix (use arn:aws:states:::lambda:invoke{}): '{raw}'",
                            integrations::suffix_name(suffix)
                        ));
                    }
                    let (name, qualifier) = match name.split_once(':') {
                        Some((n, q)) => (n, Some(q.to_string())),
                        None => (name, None),
                    };
                    let fn_ok = !name.is_empty()
                        && name.len() <= 64
                        && name
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
                    let q_ok = qualifier.as_deref().is_none_or(|q| {
                        !q.is_empty()
                            && q.len() <= 128
                            && q.chars()
                                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '$'))
                    });
                    if !fn_ok || !q_ok {
                        return Err(format!("malformed Lambda function name in '{raw}'"));
                    }
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
        let r = Resource::parse("arn:aws:states:::aws-sdk:s3:getObject").unwrap();
        assert_eq!(
            r.kind,
            ResourceKind::Service {
                service: "aws-sdk:s3".into(),
                action: "getObject".into()
            }
        );
        assert!(Resource::parse("http://x").is_err());
        let inv = Resource::parse("arn:aws:states:::lambda:invoke").unwrap();
        let (t, p) = inv.target(
            &json!({"FunctionName": "arn:aws:lambda:r:1:function:F:1", "Payload": {"a": 1}}),
        );
        assert_eq!((t.as_str(), p), ("F", json!({"a": 1})));
    }
}

#[cfg(test)]
mod arn_tests {
    use super::*;

    fn ok(s: &str) -> ResourceKind {
        Resource::parse(s)
            .unwrap_or_else(|e| panic!("{s}: {e}"))
            .kind
    }

    #[test]
    fn regional_and_partitioned_integration_arns() {
        assert!(matches!(
            ok("arn:aws:states:us-east-1:123456789012:aws-sdk:s3:getObject"),
            ResourceKind::Service { .. }
        ));
        assert_eq!(
            ok("arn:aws:states:eu-west-1:123456789012:lambda:invoke"),
            ResourceKind::LambdaInvoke
        );
        for s in [
            "arn:aws:states:eu-west-1:123456789012:lambda:invoke.waitForTaskToken",
            "arn:aws-cn:states:cn-north-1:123456789012:glue:startJobRun.sync",
            "arn:aws-us-gov:states:us-gov-west-1:123456789012:states:startExecution.sync:2",
            "arn:aws-cn:states:::lambda:invoke",
            "arn:aws-us-gov:states:::aws-sdk:dynamodb:query.waitForTaskToken",
            "arn:aws-us-gov:lambda:us-gov-west-1:123456789012:function:F:$LATEST",
            "arn:aws:states:ap-southeast-2:123456789012:activity:my-activity",
        ] {
            ok(s);
        }
        for s in [
            "arn:aws:states:us-east-1::lambda:invoke",
            "arn:aws:states::123456789012:lambda:invoke",
            "arn:aws:states:useast1:123456789012:lambda:invoke",
            "arn:aws:states:us-east-1:1234567890123:lambda:invoke",
            "arn:aws:states:us-east-1:acct:lambda:invoke",
            "arn:azure:states:::lambda:invoke",
            "arn:aws:states:::activity:x",
            "arn:aws:states:us-east-1:123456789012:activity:",
            "arn:aws:lambda:us-east-1:123456789012:function:F.sync",
            "arn:aws:states:::dynamodb:query",
            "arn:aws-cn:states:cn-north-1:123456789012:dynamodb:query",
            "arn:aws:states:::lambda:invoke.sync",
            "arn:aws:states:::lambda",
            "arn:aws:states:::aws-sdk:s3:getObject.sync",
        ] {
            assert!(Resource::parse(s).is_err(), "{s} should be refused");
        }
    }

    #[test]
    fn placeholders_are_kept_whole() {
        assert_eq!(
            placeholders("${ProcessFunctionArn}"),
            vec!["${ProcessFunctionArn}"]
        );
        assert_eq!(
            placeholders("arn:aws:lambda:${AWS::Region}:${AWS::AccountId}:function:${Fn}"),
            vec!["${AWS::Region}", "${AWS::AccountId}", "${Fn}"]
        );
        assert!(placeholders("$.a ${} ${a b}").is_empty());
        let r = Resource::parse("${ProcessFunctionArn}").unwrap();
        assert_eq!(
            r.kind,
            ResourceKind::Service {
                service: "${ProcessFunctionArn}".into(),
                action: String::new()
            }
        );
        let r = Resource::parse("arn:aws:states:::${Svc}:invoke.waitForTaskToken").unwrap();
        assert_eq!(r.pattern, IntegrationPattern::WaitForTaskToken);
    }
}
