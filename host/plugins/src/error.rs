//! Errors of plugin packaging and installation; each names the file or entry and the reason.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("{path}: {what}: {source}")]
    Io {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a readable zip bundle: {reason}")]
    BadZip { path: PathBuf, reason: String },
    #[error("{bundle}: entry `{entry}` is unsafe: {reason}")]
    UnsafeEntry {
        bundle: PathBuf,
        entry: String,
        reason: String,
    },
    #[error("{bundle}: entry `{entry}` is {size} bytes, over the {limit}-byte limit")]
    TooLarge {
        bundle: PathBuf,
        entry: String,
        size: u64,
        limit: u64,
    },
    #[error("{origin}: manifest {pointer}: {reason}")]
    Manifest {
        origin: String,
        pointer: String,
        reason: String,
    },
    #[error(
        "{origin}: `{file}` hashes to blake3:{actual} but the manifest says blake3:{expected}"
    )]
    DigestMismatch {
        origin: String,
        file: String,
        expected: String,
        actual: String,
    },
    #[error("{origin}: {reason}")]
    NotAnOperator { origin: String, reason: String },
    #[error("plugin {name}@{version} is already installed with digest {existing}; the new one is {new} (use --force to replace it)")]
    Duplicate {
        name: String,
        version: String,
        existing: String,
        new: String,
    },
    #[error(transparent)]
    Store(#[from] weft_store::StoreError),
    #[error("cannot make a component: {0}")]
    Componentize(String),
}
