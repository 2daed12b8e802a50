//! A run's access to buckets on behalf of its definition: the Map `ItemReader`
//! (`s3:getObject`, `s3:listObjectsV2`) and `ResultWriter` (`s3:putObject`) of one execution.
//! Each request's bucket and key are canonicalised, the execution role is asked for
//! `s3:GetObject` / `s3:ListBucket` / `s3:PutObject` on the canonical resource, every decision
//! is kept as an audit record and logged, and only then is the same object read or written.
//! A `getObject` whose bucket is not configured keeps weft's earlier meaning, a local file
//! `Bucket/Key` read under `fs:Read` ([`LocalItemReader`]).

use super::{BucketError, Buckets, ObjectRef, MAX_OBJECT_BYTES};
use crate::asl_tasks::LocalItemReader;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use weft_asl::StateError;
use weft_sandbox::resource::Request;
use weft_sandbox::{AuditRecord, Effect, Policy};

/// One execution's bucket access (see the module documentation).
pub struct BucketAccess {
    buckets: Arc<Buckets>,
    role: Option<Arc<Policy>>,
    local: LocalItemReader,
    audit: Mutex<Vec<AuditRecord>>,
}

impl BucketAccess {
    /// Access to `buckets` under the execution role `role`; `base_dir` resolves the local
    /// paths of unconfigured buckets.
    pub fn new(buckets: Arc<Buckets>, role: Option<Arc<Policy>>, base_dir: PathBuf) -> Self {
        BucketAccess {
            local: LocalItemReader::new(base_dir, role.clone()),
            buckets,
            role,
            audit: Mutex::new(Vec::new()),
        }
    }

    /// Every decision taken so far (bucket requests and local reads).
    pub fn audit(&self) -> Vec<AuditRecord> {
        let mut out = self.local.audit();
        out.extend(
            self.audit
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .cloned(),
        );
        out
    }

    /// Asks the execution role for `action` on `resource`, recording the decision.
    pub fn authorise(&self, action: &str, resource: &str) -> Result<(), BucketError> {
        let d = match &self.role {
            Some(r) => r.evaluate_request(action, &Request::Text(resource.to_string())),
            None => weft_sandbox::Decision {
                effect: Effect::Deny,
                statement: None,
            },
        };
        tracing::info!(
            action,
            resource,
            decision = ?d.effect,
            statement = d.statement.as_deref().unwrap_or("-"),
            "bucket access"
        );
        self.audit
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(AuditRecord {
                action: action.to_string(),
                resource: resource.to_string(),
                decision: d.effect,
                statement: d.statement.clone(),
                reason: None,
            });
        match (d.allowed(), &self.role) {
            (true, _) => Ok(()),
            (false, None) => Err(BucketError::NoRole {
                action: action.into(),
                resource: resource.into(),
            }),
            (false, Some(_)) => Err(BucketError::Denied {
                action: action.into(),
                resource: resource.into(),
            }),
        }
    }

    /// Reads `bucket`/`key` under `s3:GetObject`.
    pub fn get(&self, bucket: &str, key: &str) -> Result<Vec<u8>, BucketError> {
        let o = ObjectRef::parse(bucket, key)?;
        if !self.buckets.has(&o.bucket) {
            return Err(BucketError::NotConfigured { bucket: o.bucket });
        }
        self.authorise("s3:GetObject", &o.arn())?;
        self.buckets.get(&o, MAX_OBJECT_BYTES)
    }

    /// Lists `bucket` under `prefix` under `s3:ListBucket` (decided on the bucket's ARN, as
    /// AWS does), as `ListObjectsV2` items.
    pub fn list(&self, bucket: &str, prefix: &str, max: usize) -> Result<Vec<Value>, BucketError> {
        let p = ObjectRef::prefix(bucket, prefix)?;
        if !self.buckets.has(&p.bucket) {
            return Err(BucketError::NotConfigured { bucket: p.bucket });
        }
        self.authorise("s3:ListBucket", &p.bucket_arn())?;
        Ok(self
            .buckets
            .list(&p, max)?
            .into_iter()
            .map(|o| {
                json!({
                    "Etag": o.e_tag.unwrap_or_default(),
                    "Key": o.key,
                    "LastModified": o.last_modified,
                    "Size": o.size,
                    "StorageClass": "STANDARD",
                })
            })
            .collect())
    }

    /// Writes `bucket`/`key` under `s3:PutObject`.
    pub fn put(&self, bucket: &str, key: &str, body: Vec<u8>) -> Result<(), BucketError> {
        let o = ObjectRef::parse(bucket, key)?;
        if !self.buckets.has(&o.bucket) {
            return Err(BucketError::NotConfigured { bucket: o.bucket });
        }
        self.authorise("s3:PutObject", &o.arn())?;
        self.buckets.put(&o, body)
    }
}

fn str_param<'a>(params: &'a Value, k: &str) -> Result<&'a str, String> {
    match params.get(k) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(format!("Parameters.{k} must be a string")),
        None => Err(format!("Parameters.{k} is missing")),
    }
}

impl weft_asl::ItemReader for BucketAccess {
    fn read(&self, resource: &str, params: &Value) -> Result<Vec<u8>, StateError> {
        let fail = |cause: String| {
            StateError::new(
                "States.ItemReaderFailed",
                format!("ItemReader {resource}: {cause}"),
            )
        };
        let bucket = match params.get("Bucket") {
            Some(Value::String(b)) => b.as_str(),
            _ => "",
        };
        if !self.buckets.has(bucket) {
            // weft's local-file meaning of an unconfigured bucket (fs:Read on Bucket/Key)
            return self.local.read(resource, params).map_err(|e| {
                let cause = e.cause.unwrap_or_default();
                let cause = cause
                    .strip_prefix(&format!("ItemReader {resource}: "))
                    .unwrap_or(&cause)
                    .to_string();
                fail(format!(
                    "bucket `{bucket}` is not configured in $WEFT_HOME/buckets.json, and as a local path: {cause}"
                ))
            });
        }
        let key = str_param(params, "Key").map_err(fail)?;
        self.get(bucket, key).map_err(|e| fail(e.to_string()))
    }

    fn list(
        &self,
        resource: &str,
        params: &Value,
        max: Option<u64>,
    ) -> Result<Vec<Value>, StateError> {
        let fail = |cause: String| {
            StateError::new(
                "States.ItemReaderFailed",
                format!("ItemReader {resource}: {cause}"),
            )
        };
        let bucket = str_param(params, "Bucket").map_err(fail)?;
        let prefix = match params.get("Prefix") {
            None | Some(Value::Null) => "",
            Some(Value::String(p)) => p.as_str(),
            Some(_) => return Err(fail("Parameters.Prefix must be a string".into())),
        };
        let max = max.map_or(usize::MAX, |m| usize::try_from(m).unwrap_or(usize::MAX));
        BucketAccess::list(self, bucket, prefix, max).map_err(|e| fail(e.to_string()))
    }
}

impl weft_asl::ResultWriter for BucketAccess {
    fn put(
        &self,
        resource: &str,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
    ) -> Result<(), StateError> {
        BucketAccess::put(self, bucket, key, body).map_err(|e| {
            StateError::new(
                "States.ResultWriterFailed",
                format!("ResultWriter {resource}: {e}"),
            )
        })
    }
}
