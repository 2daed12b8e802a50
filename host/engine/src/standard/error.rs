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

impl From<std::io::Error> for RuntimeError {
    fn from(e: std::io::Error) -> Self {
        RuntimeError::internal(e.to_string())
    }
}
