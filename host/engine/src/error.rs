//! Errors of the runtime glue.

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] weft_store::StoreError),
    #[error(transparent)]
    Sandbox(#[from] weft_sandbox::SandboxError),
    #[error("plugin `{reference}` is not installed{hint}")]
    PluginNotFound { reference: String, hint: String },
    #[error("plugin reference `{reference}`: {reason}")]
    BadPluginRef { reference: String, reason: String },
    #[error("role `{role}`: {reason}")]
    Role { role: String, reason: String },
    #[error("{origin}: {reason}")]
    Secrets { origin: String, reason: String },
}
