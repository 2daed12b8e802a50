//! Canonical bucket names and object keys: what a definition names is checked here once, and
//! the checked value is what is authorised (as `arn:aws:s3:::BUCKET/KEY`) and then read or
//! written. A key is a relative, normal `/`-separated path: no `.`/`..`/empty segment, no
//! leading `/`, no backslash, no control character, no percent-encoded `.`, `/` or `\`, and at
//! most S3's 1,024 bytes.

use super::BucketError;

/// S3's longest key, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;

/// A bucket name as S3 allows it (3 to 63 of `a-z 0-9 . -`), plus `_` and capitals for local
/// buckets; never `.` or `..`.
pub fn check_bucket(bucket: &str) -> Result<(), BucketError> {
    let ok = !bucket.is_empty()
        && bucket.len() <= 63
        && bucket != "."
        && bucket != ".."
        && bucket
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if ok {
        Ok(())
    } else {
        Err(BucketError::BadBucket {
            bucket: bucket.to_string(),
        })
    }
}

/// Checks a key (`prefix`: it may be empty or end with `/`, as a listing prefix does).
fn check(key: &str, prefix: bool) -> Result<(), String> {
    if key.is_empty() && !prefix {
        return Err("the key is empty".into());
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(format!("the key is longer than {MAX_KEY_BYTES} bytes"));
    }
    if key.starts_with('/') {
        return Err("the key is absolute (starts with `/`)".into());
    }
    if key.chars().any(|c| c.is_control()) {
        return Err("the key holds a control character".into());
    }
    if key.contains('\\') {
        return Err("the key holds a backslash".into());
    }
    let lower = key.to_ascii_lowercase();
    if ["%2e", "%2f", "%5c", "%00"]
        .iter()
        .any(|e| lower.contains(e))
    {
        return Err("the key holds a percent-encoded `.`, `/`, `\\` or NUL".into());
    }
    let body = if prefix {
        key.strip_suffix('/').unwrap_or(key)
    } else {
        key
    };
    if !body.is_empty()
        && body
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err("the key has an empty, `.` or `..` segment".into());
    }
    Ok(())
}

/// One object of one bucket, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    pub bucket: String,
    pub key: String,
}

impl ObjectRef {
    /// Checks `bucket` and `key` (see the module's rules).
    pub fn parse(bucket: &str, key: &str) -> Result<Self, BucketError> {
        check_bucket(bucket)?;
        check(key, false).map_err(|why| BucketError::BadKey {
            bucket: bucket.to_string(),
            key: key.chars().take(200).collect(),
            why,
        })?;
        Ok(ObjectRef {
            bucket: bucket.to_string(),
            key: key.to_string(),
        })
    }

    /// Checks a listing prefix (empty: the whole bucket).
    pub fn prefix(bucket: &str, prefix: &str) -> Result<Self, BucketError> {
        check_bucket(bucket)?;
        check(prefix, true).map_err(|why| BucketError::BadKey {
            bucket: bucket.to_string(),
            key: prefix.chars().take(200).collect(),
            why,
        })?;
        Ok(ObjectRef {
            bucket: bucket.to_string(),
            key: prefix.to_string(),
        })
    }

    /// The policy resource: `arn:aws:s3:::BUCKET/KEY`.
    pub fn arn(&self) -> String {
        format!("arn:aws:s3:::{}/{}", self.bucket, self.key)
    }

    /// The bucket's resource (what `s3:ListBucket` is decided on): `arn:aws:s3:::BUCKET`.
    pub fn bucket_arn(&self) -> String {
        format!("arn:aws:s3:::{}", self.bucket)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_keys_are_refused() {
        assert!(ObjectRef::parse("data", "in/items.json").is_ok());
        assert!(ObjectRef::parse("data", "a b/c%20d.json").is_ok());
        for key in [
            "",
            "/etc/passwd",
            "../etc/passwd",
            "in/../../etc/passwd",
            "in/./x",
            "in//x",
            "in\\..\\x",
            "%2e%2e/etc/passwd",
            "..%2Fetc",
            "a\0b",
            "a\nb",
        ] {
            assert!(ObjectRef::parse("data", key).is_err(), "{key:?}");
        }
        assert!(ObjectRef::parse("data", &"k".repeat(MAX_KEY_BYTES + 1)).is_err());
        for bucket in ["", ".", "..", "a/b", "/etc", "a b", &"b".repeat(64)] {
            assert!(ObjectRef::parse(bucket, "k").is_err(), "{bucket:?}");
        }
        assert!(ObjectRef::prefix("data", "").is_ok());
        assert!(ObjectRef::prefix("data", "in/").is_ok());
        assert!(ObjectRef::prefix("data", "../").is_err());
        assert_eq!(
            ObjectRef::parse("data", "in/x").unwrap().arn(),
            "arn:aws:s3:::data/in/x"
        );
    }
}
