//! weft's runtime glue: resolving plugin references against the store, loading them into the
//! sandbox (with the store's precompiled cache), secrets, and driving ASL executions and DAG runs
//! whose tasks run in the sandbox.
//!
//! It holds the Step Functions runtime ([`standard`]: durable Standard executions, Express
//! executions, task dispatch to local threads or remote workers), independent of HTTP and of
//! the database behind [`persistence`].
//!
//! It owns policy decisions that span crates (which grant a task runs with, where secrets come
//! from); the ASL and DAG semantics stay in their pure crates and the wasm mechanics in the
//! sandbox.

pub mod asl_tasks;
pub mod buckets;
mod cache;
pub mod dag_exec;
pub mod durable;
mod error;
pub mod http_task;
pub mod integration_task;
pub mod metrics;
pub mod needed_plugins;
pub mod persistence;
pub mod plugin_host;
pub mod py_dags;
pub mod py_packages;
pub mod remote;
pub mod remote_packages;
pub mod resource_map;
pub mod roles;
pub mod scheduler;
pub mod secrets;
pub mod standard;
pub mod telemetry;
pub mod variables;

pub use error::EngineError;
pub use plugin_host::{PluginHost, PluginRef};
pub use roles::Roles;
pub use secrets::HomeSecrets;

/// The default `$WEFT_HOME`: `$WEFT_HOME` when set, else `./.weft`.
pub fn weft_home() -> std::path::PathBuf {
    std::env::var_os("WEFT_HOME")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(".weft"))
}
