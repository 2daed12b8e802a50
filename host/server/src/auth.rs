//! Access tokens: `$WEFT_HOME/tokens`, one token a line (`#` comments). A request is accepted
//! with `Authorization: Bearer TOKEN`, or a SigV4 `Authorization: AWS4-HMAC-SHA256
//! Credential=TOKEN/...` header whose access key id is a token. Signatures are not verified yet.

use crate::error::ApiError;
use axum::http::{HeaderMap, StatusCode};
use std::collections::HashSet;
use std::path::Path;

#[derive(Debug, Clone, Default)]
pub struct Tokens(pub HashSet<String>);

impl Tokens {
    pub fn parse(text: &str) -> Self {
        Tokens(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_string)
                .collect(),
        )
    }

    /// Reads the token file; creates it with one fresh token when absent or empty.
    pub fn load_or_create(path: &Path) -> anyhow::Result<(Self, bool)> {
        let existing = match std::fs::read_to_string(path) {
            Ok(t) => Tokens::parse(&t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Tokens::default(),
            Err(e) => return Err(anyhow::anyhow!("{}: cannot read: {e}", path.display())),
        };
        if !existing.0.is_empty() {
            return Ok((existing, false));
        }
        let token = format!("WEFT{}", uuid::Uuid::new_v4().simple()).to_uppercase();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let text = format!(
            "# weft server access tokens, one a line (use as the AWS access key id)\n{token}\n"
        );
        write_private(path, &text)
            .map_err(|e| anyhow::anyhow!("{}: cannot write: {e}", path.display()))?;
        Ok((Tokens(HashSet::from([token])), true))
    }
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

/// The access key id of a SigV4 `Authorization` header.
pub fn sigv4_access_key(value: &str) -> Option<&str> {
    let rest = value.strip_prefix("AWS4-HMAC-SHA256")?;
    let cred = rest
        .split(',')
        .map(str::trim)
        .find_map(|p| p.strip_prefix("Credential="))?;
    cred.split('/').next().filter(|k| !k.is_empty())
}

pub fn check(tokens: Option<&Tokens>, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(tokens) = tokens else { return Ok(()) };
    let Some(value) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
        return Err(ApiError::new(
            "MissingAuthenticationTokenException",
            "Missing Authentication Token: sign the request (SigV4) with a weft token as the access key id, or send `Authorization: Bearer TOKEN`",
        )
        .with_status(StatusCode::FORBIDDEN));
    };
    let presented = if let Some(t) = value.strip_prefix("Bearer ") {
        t.trim()
    } else if let Some(k) = sigv4_access_key(value) {
        k
    } else {
        return Err(ApiError::new(
            "IncompleteSignatureException",
            "Authorization header is neither SigV4 (AWS4-HMAC-SHA256 Credential=...) nor `Bearer TOKEN`",
        ));
    };
    if tokens.0.contains(presented) {
        Ok(())
    } else {
        Err(ApiError::new(
            "UnrecognizedClientException",
            "The security token included in the request is invalid (not in $WEFT_HOME/tokens)",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigv4() {
        let h = "AWS4-HMAC-SHA256 Credential=AKID/20261125/us-east-1/states/aws4_request, SignedHeaders=host, Signature=ab";
        assert_eq!(sigv4_access_key(h), Some("AKID"));
        assert_eq!(sigv4_access_key("Basic x"), None);
    }
}
