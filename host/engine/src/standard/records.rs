//! The records of state machines and executions (kept through the engine's
//! [`crate::persistence::CatalogStore`] and [`crate::persistence::ExecutionRecords`]
//! as their JSON) and the ARNs that name them. History events are kept through
//! [`crate::persistence::history::HistoryStore`] (see [`crate::persistence::pending`]).

use super::RuntimeError;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const REGION: &str = "us-east-1";
pub const ACCOUNT: &str = "000000000000";
/// The execution role of a state machine created without `roleArn`.
pub const DEFAULT_ROLE: &str = "arn:aws:iam::000000000000:role/weft-execution";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StateMachineRecord {
    pub name: String,
    pub arn: String,
    pub definition: String,
    pub role_arn: String,
    /// STANDARD | EXPRESS
    pub sm_type: String,
    pub creation_ms: i64,
    pub update_ms: Option<i64>,
    pub revision_id: String,
    pub description: Option<String>,
    pub logging_configuration: Option<Value>,
    pub tracing_configuration: Option<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExecutionRecord {
    pub arn: String,
    pub state_machine_arn: String,
    pub state_machine_name: String,
    pub name: String,
    /// RUNNING | SUCCEEDED | FAILED | TIMED_OUT | ABORTED
    pub status: String,
    pub start_ms: i64,
    pub stop_ms: Option<i64>,
    pub input: String,
    pub output: Option<String>,
    pub error: Option<String>,
    pub cause: Option<String>,
    pub trace_header: Option<String>,
    /// The definition the execution runs (pinned at start: updates of the state machine do
    /// not change a running execution, a replay or a redrive).
    #[serde(default)]
    pub definition: Option<String>,
    /// The execution role ARN it runs with.
    #[serde(default)]
    pub role_arn: Option<String>,
    /// How many times it was redriven, and when last.
    #[serde(default)]
    pub redrive_count: u32,
    #[serde(default)]
    pub redrive_ms: Option<i64>,
    /// A `.sync` parent waiting for this execution: (parent execution ARN, journal key).
    #[serde(default)]
    pub parent: Option<(String, String)>,
    /// The parent used `.sync:2`: it gets the output as JSON rather than as a string.
    #[serde(default)]
    pub parent_wants_json: bool,
    /// The version (and alias) it was started from.
    #[serde(default)]
    pub version_arn: Option<String>,
    #[serde(default)]
    pub alias_arn: Option<String>,
    /// The mock test case it runs with (`StartExecution` on `ARN#TestCase`), and the test
    /// case itself (a mock configuration of its own, see [`weft_asl::mock::TestCase::to_json`])
    /// so that a replay after a restart answers with the same mocks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_case: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mocks: Option<Value>,
}

/// Hands `f` every execution record whose ARN starts with `arn_prefix` (`""`: all), decoded,
/// in ARN order; a record that cannot be decoded ends the walk with its error.
pub fn each_execution(
    executions: &dyn crate::persistence::ExecutionRecords,
    arn_prefix: &str,
    mut f: impl FnMut(ExecutionRecord),
) -> Result<(), RuntimeError> {
    let mut bad = None;
    executions.each_execution(
        arn_prefix,
        &mut |v| match serde_json::from_slice::<ExecutionRecord>(v) {
            Ok(e) => {
                f(e);
                true
            }
            Err(e) => {
                bad = Some(e);
                false
            }
        },
    )?;
    match bad {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

pub fn sm_arn(name: &str) -> String {
    format!("arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{name}")
}

pub fn exec_arn(sm: &str, name: &str) -> String {
    format!("arn:aws:states:{REGION}:{ACCOUNT}:execution:{sm}:{name}")
}

pub fn express_arn(sm: &str, name: &str) -> String {
    format!(
        "arn:aws:states:{REGION}:{ACCOUNT}:express:{sm}:{name}:{}",
        uuid::Uuid::new_v4()
    )
}

/// Splits `arn:aws:states:REGION:ACCOUNT:KIND:REST` into (KIND, REST).
fn split_arn(arn: &str) -> Option<(&str, &str)> {
    let mut it = arn.splitn(7, ':');
    let (a, p, s, _r, _acct) = (it.next()?, it.next()?, it.next()?, it.next()?, it.next()?);
    if a != "arn" || !p.starts_with("aws") || s != "states" {
        return None;
    }
    Some((it.next()?, it.next()?))
}

/// The state machine name in a state machine ARN (a `:VERSION`/`:ALIAS` suffix is refused).
pub fn parse_sm_arn(arn: &str) -> Result<String, RuntimeError> {
    match split_arn(arn) {
        Some(("stateMachine", name)) if valid_name(name).is_ok() => Ok(name.to_string()),
        _ => Err(RuntimeError::new(
            "InvalidArn",
            format!("Invalid Arn: 'Resource type not valid in this context: {arn}'"),
        )),
    }
}

/// Checks an execution ARN and returns it normalised to this server's region and account.
pub fn parse_exec_arn(arn: &str) -> Result<String, RuntimeError> {
    let bad = || {
        RuntimeError::new(
            "InvalidArn",
            format!("Invalid Arn: 'Resource type not valid in this context: {arn}'"),
        )
    };
    match split_arn(arn) {
        Some(("execution", rest)) => {
            let (sm, name) = rest.split_once(':').ok_or_else(bad)?;
            if valid_name(sm).is_err() || valid_name(name).is_err() {
                return Err(bad());
            }
            Ok(exec_arn(sm, name))
        }
        _ => Err(bad()),
    }
}

/// AWS's naming rule for state machines and executions: 1-80 characters, no whitespace, no
/// brackets, wildcards, special characters or control characters.
pub fn valid_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.chars().count() > 80 {
        return Err(format!(
            "Invalid Name: '{name}' (a name is 1 to 80 characters)"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || "<>{}[]?*\"#%\\^|~`$&,;:/".contains(*c))
    {
        return Err(format!(
            "Invalid Name: '{name}' (character {c:?} is not allowed)"
        ));
    }
    Ok(())
}

/// Epoch seconds with millisecond precision: the timestamp shape of AWS JSON 1.0.
pub fn ts(ms: i64) -> Value {
    Value::from(ms as f64 / 1000.0)
}

/// The details object of a stored history event (`null` when it has none).
pub fn details_of(ev: &Value) -> Value {
    let ty = ev["type"].as_str().unwrap_or("");
    ev.get(weft_asl::history::details_key(ty))
        .cloned()
        .unwrap_or(Value::Null)
}

/// RFC 3339 with milliseconds, as Step Functions prints dates inside task results.
pub fn format_ms(ms: i64) -> String {
    weft_asl::env::format_time(ms)
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns() {
        assert_eq!(parse_sm_arn(&sm_arn("a-b_c")).unwrap(), "a-b_c");
        assert!(parse_sm_arn("arn:aws:states:us-east-1:1:execution:x:y").is_err());
        assert!(parse_sm_arn("nope").is_err());
        assert_eq!(
            parse_exec_arn("arn:aws:states:eu-west-1:123:execution:sm:e1").unwrap(),
            exec_arn("sm", "e1")
        );
        assert!(parse_exec_arn("arn:aws:states:eu-west-1:123:execution:sm").is_err());
        assert!(valid_name("a b").is_err());
        assert!(valid_name(&"x".repeat(81)).is_err());
    }
}
