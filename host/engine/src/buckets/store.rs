//! The configured buckets and the three operations weft performs on them (read one object
//! with a size cap, list objects under a prefix, write one object). Local buckets are read and
//! written beneath their directory with no symbolic link followed (the sandbox's
//! `fsopen`), and listed through `object_store`'s `LocalFileSystem` with every entry checked
//! the same way; S3 buckets go through `object_store`'s `AmazonS3` on a small runtime of their
//! own, so callers stay synchronous.

use super::config::{self, Location, S3Entry};
use super::{BucketError, ObjectRef};
use futures::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::local::LocalFileSystem;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// The largest object read (an ItemReader source, a manifest, an inventory data file).
pub const MAX_OBJECT_BYTES: u64 = 64 << 20;
/// The most objects one listing returns.
pub const MAX_LISTED_OBJECTS: usize = 1_000_000;

enum Backend {
    Local(PathBuf),
    S3(Arc<AmazonS3>),
}

/// One listed object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedObject {
    pub key: String,
    pub size: u64,
    pub e_tag: Option<String>,
    /// Epoch seconds.
    pub last_modified: i64,
}

/// The configured buckets by name.
#[derive(Default)]
pub struct Buckets {
    map: BTreeMap<String, Backend>,
}

impl std::fmt::Debug for Buckets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.map.keys()).finish()
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("weft-buckets")
            .enable_all()
            .build()
            .expect("a tokio runtime for bucket I/O")
    })
}

/// Runs `fut` on the bucket runtime and waits for it (from any thread, inside a runtime or
/// not).
fn block<T: Send + 'static>(
    fut: impl std::future::Future<Output = T> + Send + 'static,
) -> Result<T, String> {
    futures::executor::block_on(runtime().spawn(fut)).map_err(|e| e.to_string())
}

fn s3(name: &str, e: &S3Entry) -> Result<AmazonS3, BucketError> {
    // the HTTP client's TLS uses ring (as ureq does); the first caller installs it for the
    // process, later calls find it installed
    let _ = rustls::crypto::ring::default_provider().install_default();
    let var = |v: &str| std::env::var(v).ok().filter(|s| !s.is_empty());
    let mut b = AmazonS3Builder::new()
        .with_region(&e.region)
        .with_bucket_name(e.bucket.as_deref().unwrap_or(name))
        .with_allow_http(e.allow_http);
    if let Some(ep) = &e.endpoint {
        // path-style requests: what local S3-compatible servers answer
        b = b.with_endpoint(ep).with_virtual_hosted_style_request(false);
    }
    match (var(&e.access_key_id_env), var(&e.secret_access_key_env)) {
        (Some(k), Some(s)) => {
            b = b.with_access_key_id(k).with_secret_access_key(s);
        }
        _ => b = b.with_skip_signature(true),
    }
    b.build().map_err(|err| BucketError::Config {
        origin: format!("bucket `{name}`"),
        why: err.to_string(),
    })
}

impl Buckets {
    /// The buckets of `$WEFT_HOME/buckets.json` (none without the file).
    pub fn load(home: &Path) -> Result<Self, BucketError> {
        Self::from_locations(config::load(home)?)
    }

    /// Buckets from already parsed locations.
    pub fn from_locations(locs: BTreeMap<String, Location>) -> Result<Self, BucketError> {
        let mut map = BTreeMap::new();
        for (name, loc) in locs {
            let b = match loc {
                Location::Local(p) => Backend::Local(p),
                Location::S3(e) => Backend::S3(Arc::new(s3(&name, &e)?)),
            };
            map.insert(name, b);
        }
        Ok(Buckets { map })
    }

    /// Whether `bucket` is configured.
    pub fn has(&self, bucket: &str) -> bool {
        self.map.contains_key(bucket)
    }

    fn backend(&self, bucket: &str) -> Result<&Backend, BucketError> {
        self.map
            .get(bucket)
            .ok_or_else(|| BucketError::NotConfigured {
                bucket: bucket.to_string(),
            })
    }

    /// Reads one object, refusing one larger than `max` bytes.
    pub fn get(&self, o: &ObjectRef, max: u64) -> Result<Vec<u8>, BucketError> {
        let io = |why: String| BucketError::Io {
            resource: o.arn(),
            why,
        };
        match self.backend(&o.bucket)? {
            Backend::Local(root) => weft_sandbox::fsopen::read_file_beneath(root, &o.key, max)
                .map_err(|e| match e {
                    weft_sandbox::fsopen::BeneathError::TooLarge(max) => BucketError::TooLarge {
                        resource: o.arn(),
                        max,
                    },
                    weft_sandbox::fsopen::BeneathError::Io(why) => io(why),
                }),
            Backend::S3(store) => {
                let store = store.clone();
                let path = StorePath::from(o.key.as_str());
                let r = block(async move {
                    let got = store.get(&path).await.map_err(|e| e.to_string())?;
                    if got.meta.size > max {
                        return Ok(None);
                    }
                    let mut out = Vec::new();
                    let mut body = got.into_stream();
                    while let Some(chunk) = body.next().await {
                        let chunk = chunk.map_err(|e| e.to_string())?;
                        if (out.len() + chunk.len()) as u64 > max {
                            return Ok(None);
                        }
                        out.extend_from_slice(&chunk);
                    }
                    Ok::<_, String>(Some(out))
                })
                .map_err(io)?
                .map_err(io)?;
                r.ok_or_else(|| BucketError::TooLarge {
                    resource: o.arn(),
                    max,
                })
            }
        }
    }

    /// Lists the objects whose key starts with `prefix.key` (a string prefix, as S3's
    /// `ListObjectsV2` has it), in key order, at most `max` (and [`MAX_LISTED_OBJECTS`]).
    pub fn list(&self, prefix: &ObjectRef, max: usize) -> Result<Vec<ListedObject>, BucketError> {
        let max = max.min(MAX_LISTED_OBJECTS);
        let io = |why: String| BucketError::Io {
            resource: prefix.bucket_arn(),
            why,
        };
        // object_store lists whole path segments: list the prefix's directory, then filter
        let dir = match prefix.key.rfind('/') {
            Some(i) => prefix.key[..i].to_string(),
            None => String::new(),
        };
        let (store, local_root): (Arc<dyn ObjectStore>, Option<PathBuf>) = match self
            .backend(&prefix.bucket)?
        {
            Backend::Local(root) => {
                let fs = LocalFileSystem::new_with_prefix(root).map_err(|e| io(e.to_string()))?;
                (Arc::new(fs) as Arc<dyn ObjectStore>, Some(root.clone()))
            }
            Backend::S3(s) => (s.clone() as Arc<dyn ObjectStore>, None),
        };
        let want = prefix.key.clone();
        let mut objects = block(async move {
            let p = (!dir.is_empty()).then(|| StorePath::from(dir.as_str()));
            let mut stream = store.list(p.as_ref());
            let mut out = Vec::new();
            while let Some(m) = stream.next().await {
                let m = m.map_err(|e| e.to_string())?;
                let key = m.location.to_string();
                if !key.starts_with(&want) {
                    continue;
                }
                out.push(ListedObject {
                    key,
                    size: m.size,
                    e_tag: m.e_tag,
                    last_modified: m.last_modified.timestamp(),
                });
                if out.len() > MAX_LISTED_OBJECTS {
                    return Err(format!("more than {MAX_LISTED_OBJECTS} objects"));
                }
            }
            Ok(out)
        })
        .map_err(io)?
        .map_err(io)?;
        if let Some(root) = local_root {
            // what a link leads to is not in the bucket: only plain files reached without one
            objects.retain(|o| weft_sandbox::fsopen::is_file_beneath(&root, &o.key));
        }
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        objects.truncate(max);
        Ok(objects)
    }

    /// Writes one object (whole, replacing any old one).
    pub fn put(&self, o: &ObjectRef, body: Vec<u8>) -> Result<(), BucketError> {
        let io = |why: String| BucketError::Io {
            resource: o.arn(),
            why,
        };
        match self.backend(&o.bucket)? {
            Backend::Local(root) => weft_sandbox::fsopen::write_file_beneath(root, &o.key, &body)
                .map_err(|e| io(e.to_string())),
            Backend::S3(store) => {
                let store = store.clone();
                let path = StorePath::from(o.key.as_str());
                block(async move {
                    store
                        .put(&path, PutPayload::from(body))
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                })
                .map_err(io)?
                .map_err(io)
            }
        }
    }
}
