//! Buckets for Distributed Map `ItemReader` and `ResultWriter`: named object stores that a
//! definition reads items from and writes results to, each a local directory or an
//! S3-compatible endpoint (through the `object_store` crate), configured by the operator in
//! `$WEFT_HOME/buckets.json` ([`config`]). Every access is canonicalised ([`key`]), then
//! authorised against the execution role (`s3:GetObject`, `s3:ListBucket`, `s3:PutObject` on
//! `arn:aws:s3:::BUCKET/KEY`), then performed on that same checked value ([`access`]).

pub mod access;
pub mod config;
pub mod key;
mod store;

pub use access::BucketAccess;
pub use config::Location;
pub use key::ObjectRef;
pub use store::{Buckets, ListedObject, MAX_LISTED_OBJECTS, MAX_OBJECT_BYTES};

/// Why a bucket could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BucketError {
    #[error("{origin}: {why}")]
    Config { origin: String, why: String },
    #[error("`{bucket}` is not a bucket name (1 to 63 of a-z A-Z 0-9 . - _)")]
    BadBucket { bucket: String },
    #[error("bucket `{bucket}` key `{key}`: {why}")]
    BadKey {
        bucket: String,
        key: String,
        why: String,
    },
    #[error("bucket `{bucket}` is not configured (add it to $WEFT_HOME/buckets.json)")]
    NotConfigured { bucket: String },
    #[error("Sandbox.PermissionDenied: the execution role does not allow {action} on {resource}")]
    Denied { action: String, resource: String },
    #[error("Sandbox.PermissionDenied: there is no execution role, so {action} on {resource} is not allowed; give one (`weft run --role NAME`, a state machine's roleArn) that allows it")]
    NoRole { action: String, resource: String },
    #[error("{resource} is larger than {max} bytes")]
    TooLarge { resource: String, max: u64 },
    #[error("{resource}: {why}")]
    Io { resource: String, why: String },
}
