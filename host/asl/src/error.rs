//! Error types of the crate: definition problems found by the validator (each with a JSON
//! pointer), runtime state errors (ASL `Error` + `Cause`, matchable by Retry/Catch) and the
//! predefined `States.*` error names.

use std::fmt;

/// Predefined error names of the Amazon States Language.
pub mod names {
    /// Matches any error name (except `States.Runtime` and `States.DataLimitExceeded`).
    pub const ALL: &str = "States.ALL";
    /// A Task ran longer than `TimeoutSeconds` (or the execution timed out).
    pub const TIMEOUT: &str = "States.Timeout";
    /// A task failed; as a matcher, any error except `States.Timeout`.
    pub const TASK_FAILED: &str = "States.TaskFailed";
    /// Insufficient privileges.
    pub const PERMISSIONS: &str = "States.Permissions";
    /// `ResultPath` cannot be applied to the state input.
    pub const RESULT_PATH_MATCH_FAILURE: &str = "States.ResultPathMatchFailure";
    /// A `Parameters` path could not be resolved.
    pub const PARAMETER_PATH_FAILURE: &str = "States.ParameterPathFailure";
    /// A Parallel branch failed.
    pub const BRANCH_FAILED: &str = "States.BranchFailed";
    /// No Choice rule matched and there is no Default.
    pub const NO_CHOICE_MATCHED: &str = "States.NoChoiceMatched";
    /// An intrinsic function failed.
    pub const INTRINSIC_FAILURE: &str = "States.IntrinsicFailure";
    /// A task missed its heartbeat.
    pub const HEARTBEAT_TIMEOUT: &str = "States.HeartbeatTimeout";
    /// A Map state exceeded its tolerated failures.
    pub const EXCEED_TOLERATED_FAILURE_THRESHOLD: &str = "States.ExceedToleratedFailureThreshold";
    /// A runtime error (bad path, wrong type...); not matched by `States.ALL`.
    pub const RUNTIME: &str = "States.Runtime";
    /// Output too large; not matched by `States.ALL`.
    pub const DATA_LIMIT_EXCEEDED: &str = "States.DataLimitExceeded";
    /// A JSONata expression failed or returned an unusable value.
    pub const QUERY_EVALUATION_ERROR: &str = "States.QueryEvaluationError";
    /// ItemReader could not read its source.
    pub const ITEM_READER_FAILED: &str = "States.ItemReaderFailed";
    /// ResultWriter could not export a Distributed Map's results.
    pub const RESULT_WRITER_FAILED: &str = "States.ResultWriterFailed";
    /// Not an ASL error: the run was suspended by its [`crate::RunControl`] (to resume later
    /// by replay, or because the execution was stopped). Never matched by Retry/Catch, never
    /// recorded as a failure in the history.
    pub const SUSPENDED: &str = "Weft.Suspended";
    /// Not an ASL error: a Parallel branch or Map iteration was stopped because a sibling
    /// failed (see [`crate::Cancellation`]). Never matched by Retry/Catch; the enclosing state
    /// reports the sibling's error instead.
    pub const CANCELLED: &str = "Weft.Cancelled";

    /// Every predefined name (for validation of `ErrorEquals`).
    pub const PREDEFINED: &[&str] = &[
        ALL,
        TIMEOUT,
        TASK_FAILED,
        PERMISSIONS,
        RESULT_PATH_MATCH_FAILURE,
        PARAMETER_PATH_FAILURE,
        BRANCH_FAILED,
        NO_CHOICE_MATCHED,
        INTRINSIC_FAILURE,
        HEARTBEAT_TIMEOUT,
        EXCEED_TOLERATED_FAILURE_THRESHOLD,
        RUNTIME,
        DATA_LIMIT_EXCEEDED,
        QUERY_EVALUATION_ERROR,
        ITEM_READER_FAILED,
        RESULT_WRITER_FAILED,
    ];
}

/// One problem in a definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    /// JSON pointer into the definition (`/States/Foo/Next`).
    pub pointer: String,
    /// One-line reason.
    pub reason: String,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = if self.pointer.is_empty() {
            "/"
        } else {
            &self.pointer
        };
        write!(f, "{p}: {}", self.reason)
    }
}

/// Every problem found in a definition (never empty when returned as an error).
#[derive(Debug, Clone, PartialEq, Eq, Default, thiserror::Error)]
pub struct ValidationErrors {
    /// The problems, in document order.
    pub errors: Vec<ValidationError>,
}

impl ValidationErrors {
    /// Records a problem.
    pub fn push(&mut self, pointer: impl Into<String>, reason: impl Into<String>) {
        self.errors.push(ValidationError {
            pointer: pointer.into(),
            reason: reason.into(),
        });
    }
    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }
    /// Number of problems.
    pub fn len(&self) -> usize {
        self.errors.len()
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// Something a definition says that weft accepts but does not act on (a field it keeps but
/// never honours, an unsubstituted `${Name}` placeholder...): the definition is valid, the
/// author should know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// JSON pointer into the definition.
    pub pointer: String,
    /// One-line explanation.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = if self.pointer.is_empty() {
            "/"
        } else {
            &self.pointer
        };
        write!(f, "{p}: warning: {}", self.message)
    }
}

/// A runtime error raised inside a state: what Retry/Catch match on and what a failed
/// execution reports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}: {}", cause.as_deref().unwrap_or(""))]
pub struct StateError {
    /// Error name (`States.Runtime`, a task's own name, ...).
    pub error: String,
    /// Human readable cause; `None` when the failing state gave none.
    pub cause: Option<String>,
}

impl StateError {
    /// A new error with a cause.
    pub fn new(error: impl Into<String>, cause: impl Into<String>) -> Self {
        StateError {
            error: error.into(),
            cause: Some(cause.into()),
        }
    }

    /// True for [`names::SUSPENDED`]: the run is being unwound, not failing.
    pub fn is_suspended(&self) -> bool {
        self.error == names::SUSPENDED
    }

    /// True for [`names::CANCELLED`]: a sibling failed, this branch or iteration was stopped.
    pub fn is_cancelled(&self) -> bool {
        self.error == names::CANCELLED
    }

    /// The error output object `{"Error": .., "Cause": ..}` given to Catch.
    pub fn to_error_output(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        m.insert(
            "Error".into(),
            serde_json::Value::String(self.error.clone()),
        );
        if let Some(c) = &self.cause {
            m.insert("Cause".into(), serde_json::Value::String(c.clone()));
        }
        serde_json::Value::Object(m)
    }
}

/// How an execution ended when it did not succeed.
pub type ExecutionFailure = StateError;
