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
    #[error("{path}: {what}: not a regular file")]
    NotAFile { path: PathBuf, what: &'static str },
    #[error("{path}: {what}: {size} bytes, over the {limit}-byte cap")]
    FileTooLarge {
        path: PathBuf,
        what: &'static str,
        size: u64,
        limit: u64,
    },
    /// One entry's uncompressed size (declared in the zip headers) is over its cap.
    #[error(
        "{bundle}: entry `{entry}` is {size} bytes uncompressed, over the {limit}-byte cap {cap}"
    )]
    TooLarge {
        bundle: PathBuf,
        entry: String,
        size: u64,
        limit: u64,
        /// Which cap, e.g. `for one component`.
        cap: &'static str,
    },
    /// The entries' uncompressed sizes add up to more than a bundle may hold.
    #[error("{bundle}: the entries up to `{entry}` add up to {total} bytes uncompressed, over the {limit}-byte cap for a whole bundle")]
    BundleTooLarge {
        bundle: PathBuf,
        entry: String,
        total: u64,
        limit: u64,
    },
    #[error("{bundle}: {count} entries or more, over the cap of {limit} entries in a bundle")]
    TooManyEntries {
        bundle: PathBuf,
        count: usize,
        limit: usize,
    },
    /// Two entries that name the same file (exactly, or once case is ignored).
    #[error("{bundle}: entries `{first}` and `{second}` name the same file{how}; a bundle holds each file once")]
    DuplicateEntry {
        bundle: PathBuf,
        first: String,
        second: String,
        how: &'static str,
    },
    /// An entry inflates to another size than its headers declare.
    #[error("{bundle}: entry `{entry}` declares {declared} bytes uncompressed but {reason}")]
    SizeMismatch {
        bundle: PathBuf,
        entry: String,
        declared: u64,
        reason: String,
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
