//! The error of the Step Functions runtime's operations: a Step Functions error name
//! (`ExecutionLimitExceeded`, `InvalidArn`, `StateMachineDoesNotExist`, `InternalFailure`, ...)
//! and its message, which the wire protocol sends as they are.

/// An error a Step Functions caller sees by name (`kind`) and message.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct RuntimeError {
    /// Step Functions' error name.
    pub kind: &'static str,
    /// What went wrong.
    pub message: String,
}

/// The name of an error of the runtime itself (a store away, a damaged record).
pub const INTERNAL: &str = "InternalFailure";
/// The name of the error of a DAG run that exists already.
pub const RUN_EXISTS: &str = "DagRunAlreadyExists";
/// The name of the error of a DAG, DAG run or task that does not exist.
pub const NOT_FOUND: &str = "NotFound";

impl RuntimeError {
    /// An error named `kind`.
    pub fn new(kind: &'static str, message: impl Into<String>) -> Self {
        RuntimeError {
            kind,
            message: message.into(),
        }
    }

    /// A `ValidationException`.
    pub fn validation(message: impl Into<String>) -> Self {
        Self::new("ValidationException", message)
    }

    /// An [`INTERNAL`] error: the runtime failed, not the request.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(INTERNAL, message)
    }

    /// True for an [`INTERNAL`] error.
    pub fn is_internal(&self) -> bool {
        self.kind == INTERNAL
    }
}

impl From<crate::persistence::PersistenceError> for RuntimeError {
    fn from(e: crate::persistence::PersistenceError) -> Self {
        RuntimeError::internal(format!("store: {e}"))
    }
}

impl From<serde_json::Error> for RuntimeError {
    fn from(e: serde_json::Error) -> Self {
        RuntimeError::internal(format!("store record: {e}"))
    }
}

/// The DAG scheduler's errors by name: `DagRunAlreadyExists`, `NotFound` (no such DAG, run or
/// task), else [`INTERNAL`].
impl From<crate::scheduler::SchedulerError> for RuntimeError {
    fn from(e: crate::scheduler::SchedulerError) -> Self {
        use crate::scheduler::SchedulerError as E;
        match e {
            E::RunExists { .. } => RuntimeError::new(RUN_EXISTS, e.to_string()),
            E::UnknownDag(_) | E::UnknownRun { .. } | E::UnknownTask { .. } => {
                RuntimeError::new(NOT_FOUND, e.to_string())
            }
            other => RuntimeError::internal(other.to_string()),
        }
    }
}

impl From<std::io::Error> for RuntimeError {
    fn from(e: std::io::Error) -> Self {
        RuntimeError::internal(e.to_string())
    }
}
