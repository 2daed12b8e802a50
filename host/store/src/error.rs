//! Errors of the store: each names the path or digest involved and why it failed.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: cannot {what}: {source}")]
    Io {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: the store is in use by another weft process (a server, scheduler or run on this WEFT_HOME) and stayed so for {waited_s}s; use another WEFT_HOME, or run on the server (`weft sm start`)")]
    Locked { path: PathBuf, waited_s: u64 },
    #[error("{path}: cannot open the database: {cause}")]
    Db { path: PathBuf, cause: sled::Error },
    #[error("database error: {0}")]
    Sled(#[from] sled::Error),
    #[error("blob {digest} not found in the store")]
    NotFound { digest: String },
    #[error("blob {expected} at {path} is corrupt: its content hashes to blake3:{actual} ({len} bytes); refusing to use it")]
    Corrupt {
        expected: String,
        actual: String,
        path: PathBuf,
        len: u64,
    },
    #[error(
        "blob {digest} at {path} is {size} bytes, over the {limit}-byte cap; refusing to read it"
    )]
    TooLarge {
        digest: String,
        path: PathBuf,
        size: u64,
        limit: u64,
    },
    #[error("bad digest `{text}`: {reason}")]
    BadDigest { text: String, reason: &'static str },
    #[error("registry record {key} is unreadable: {reason}")]
    BadRecord { key: String, reason: String },
}

impl StoreError {
    pub(crate) fn io(path: &Path, what: &'static str, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            what,
            source,
        }
    }

    pub(crate) fn from_sled(e: sled::Error) -> Self {
        Self::Sled(e)
    }
}
