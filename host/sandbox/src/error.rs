//! Errors of the sandbox itself (loading, linking), as opposed to task failures, which are
//! values ([`crate::TaskError`]) that ASL Retry/Catch can match.

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("cannot configure the wasm engine: {0}")]
    Engine(String),
    #[error("plugin {plugin} (#{digest}) is not a valid component: {reason}")]
    Compile {
        plugin: String,
        digest: String,
        reason: String,
    },
    #[error("plugin {plugin} (#{digest}) cannot be linked: {reason}")]
    Link {
        plugin: String,
        digest: String,
        reason: String,
    },
    #[error("plugin {plugin} (#{digest}) is not a weft operator: it exports neither `weft:operator/operator@0.1.0` (task world) nor `weft:operator/sensor@0.1.0` (sensor world)")]
    NotAnOperator { plugin: String, digest: String },
    #[error("plugin {plugin} is a {actual} but was invoked as a {expected}")]
    WrongWorld {
        plugin: String,
        expected: &'static str,
        actual: &'static str,
    },
    #[error("cannot set up the sandbox for {plugin}: {reason}")]
    Setup { plugin: String, reason: String },
}
