//! The bucket configuration, `$WEFT_HOME/buckets.json`: which bucket names exist and where
//! each one's objects live, a local directory or an S3-compatible endpoint:
//!
//! ```json
//! {"buckets": {
//!   "data":  {"local": "buckets/data"},
//!   "lake":  {"s3": {"endpoint": "http://127.0.0.1:9000", "region": "us-east-1",
//!                    "bucket": "lake", "allow_http": true,
//!                    "access_key_id_env": "LAKE_ACCESS_KEY_ID",
//!                    "secret_access_key_env": "LAKE_SECRET_ACCESS_KEY"}}}}
//! ```
//! A relative `local` path is resolved against the file's directory. S3 credentials are read
//! from the environment variables the entry names (AWS's own variable names by default), never
//! from the file itself.

use super::key::check_bucket;
use super::BucketError;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The configuration file's name in `$WEFT_HOME`.
pub const FILE_NAME: &str = "buckets.json";
/// The largest configuration file read.
const MAX_FILE_BYTES: u64 = 1 << 20;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    buckets: BTreeMap<String, Entry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
enum Entry {
    Local(PathBuf),
    S3(S3Entry),
}

/// An S3-compatible endpoint holding one bucket.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct S3Entry {
    /// `http(s)://host:port`; absent: AWS itself.
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default = "default_region")]
    pub region: String,
    /// The bucket's name at the endpoint (the configured name by default).
    #[serde(default)]
    pub bucket: Option<String>,
    /// Whether a plain `http://` endpoint is acceptable (local test servers).
    #[serde(default)]
    pub allow_http: bool,
    /// The variables holding the credentials.
    #[serde(default = "default_key_env")]
    pub access_key_id_env: String,
    #[serde(default = "default_secret_env")]
    pub secret_access_key_env: String,
}

fn default_region() -> String {
    "us-east-1".into()
}
fn default_key_env() -> String {
    "AWS_ACCESS_KEY_ID".into()
}
fn default_secret_env() -> String {
    "AWS_SECRET_ACCESS_KEY".into()
}

/// Where one bucket's objects live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A directory (absolute).
    Local(PathBuf),
    S3(S3Entry),
}

/// Parses a configuration file's text; `dir` resolves relative local paths; `origin` names
/// the file in errors.
pub fn parse(
    text: &str,
    dir: &Path,
    origin: &str,
) -> Result<BTreeMap<String, Location>, BucketError> {
    let f: File = serde_json::from_str(text).map_err(|e| BucketError::Config {
        origin: format!("{origin}:{}:{}", e.line(), e.column()),
        why: e.to_string(),
    })?;
    let mut out = BTreeMap::new();
    for (name, entry) in f.buckets {
        check_bucket(&name).map_err(|e| BucketError::Config {
            origin: format!("{origin} /buckets/{name}"),
            why: e.to_string(),
        })?;
        let loc = match entry {
            Entry::Local(p) if p.as_os_str().is_empty() => {
                return Err(BucketError::Config {
                    origin: format!("{origin} /buckets/{name}/local"),
                    why: "the directory is empty".into(),
                })
            }
            Entry::Local(p) => Location::Local(dir.join(p)),
            Entry::S3(s) => {
                if let Some(e) = &s.endpoint {
                    let http = e.starts_with("http://");
                    if !(http || e.starts_with("https://")) || (http && !s.allow_http) {
                        return Err(BucketError::Config {
                            origin: format!("{origin} /buckets/{name}/s3/endpoint"),
                            why: format!(
                                "`{e}` must be an https:// URL (or http:// with \"allow_http\": true)"
                            ),
                        });
                    }
                }
                Location::S3(s)
            }
        };
        out.insert(name, loc);
    }
    Ok(out)
}

/// Reads `$WEFT_HOME/buckets.json`; no file: no buckets.
pub fn load(home: &Path) -> Result<BTreeMap<String, Location>, BucketError> {
    use std::io::Read;
    let path = home.join(FILE_NAME);
    let origin = path.display().to_string();
    let f = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => {
            return Err(BucketError::Config {
                origin,
                why: e.to_string(),
            })
        }
    };
    let mut text = String::new();
    f.take(MAX_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| BucketError::Config {
            origin: origin.clone(),
            why: e.to_string(),
        })?;
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(BucketError::Config {
            origin,
            why: format!("larger than {MAX_FILE_BYTES} bytes"),
        });
    }
    let dir = std::path::absolute(home).unwrap_or_else(|_| home.to_path_buf());
    parse(&text, &dir, &origin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_and_their_errors() {
        let m = parse(
            r#"{"buckets": {"data": {"local": "b/data"},
                "lake": {"s3": {"endpoint": "http://127.0.0.1:9", "allow_http": true}}}}"#,
            Path::new("/home"),
            "buckets.json",
        )
        .unwrap();
        assert_eq!(m["data"], Location::Local(PathBuf::from("/home/b/data")));
        assert!(matches!(&m["lake"], Location::S3(s) if s.region == "us-east-1"));
        let e = parse(
            r#"{"buckets": {"lake": {"s3": {"endpoint": "http://x"}}}}"#,
            Path::new("/"),
            "f",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("allow_http"), "{e}");
        let e = parse(r#"{"buckets": {"a": {"ftp": 1}}}"#, Path::new("/"), "f")
            .unwrap_err()
            .to_string();
        assert!(e.contains("f:1:"), "{e}");
        assert!(parse(
            r#"{"buckets": {"../x": {"local": "x"}}}"#,
            Path::new("/"),
            "f"
        )
        .is_err());
    }
}
