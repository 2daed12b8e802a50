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
pub mod fsopen;
pub mod glob;
pub mod grant;
mod host;
mod http_client;
pub mod http_url;
mod limits;
pub mod outbound;
pub mod policy;
pub mod resource;
mod runtime;
pub mod secret_name;
mod symlinks;

pub use error::SandboxError;
pub use grant::{AuditRecord, FileReadError, Grant, Preopen};
pub use host::{floor_char_boundary, LogLine, NoSecrets, SecretSource};
pub use limits::Limits;
pub use outbound::{OutboundError, OutboundRequest, OutboundResponse};
pub use policy::{Decision, Effect, Policy, PolicyError};
pub use runtime::{
    ArtifactCache, Invocation, LoadedComponent, Outcome, Sandbox, SandboxConfig, TaskError, World,
};
pub use secret_name::{InvalidSecretName, SecretName};
