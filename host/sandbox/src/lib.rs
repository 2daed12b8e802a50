//! weft's wasm sandbox: runs one operator component per invocation with fuel, an epoch deadline,
//! memory/table/instance caps, bounded stdout/stderr capture, an output cap, and only the
//! capabilities its grant names (WASI preopens, an HTTP allowlist, named secrets).
//!
//! It owns the wasmtime `Engine`, the component cache and the IAM-shaped policy evaluation. It
//! knows nothing of ASL, DAGs or where plugin bytes are stored: callers pass bytes, digests and an
//! optional [`ArtifactCache`].

mod bindings;
mod capture;
mod error;
pub mod grant;
mod host;
mod http_client;
mod limits;
pub mod policy;
mod runtime;
pub mod secret_name;

pub use error::SandboxError;
pub use grant::{AuditRecord, Grant, Preopen};
pub use host::{LogLine, NoSecrets, SecretSource};
pub use limits::Limits;
pub use policy::{Decision, Effect, Policy, PolicyError};
pub use runtime::{
    ArtifactCache, Invocation, LoadedComponent, Outcome, Sandbox, SandboxConfig, TaskError, World,
};
pub use secret_name::{InvalidSecretName, SecretName};
