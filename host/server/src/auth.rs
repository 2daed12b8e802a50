//! Who may call the server. Credentials live in `$WEFT_HOME/credentials`, in the AWS CLI's own
//! shared-credentials format, so `AWS_SHARED_CREDENTIALS_FILE=$WEFT_HOME/credentials aws
//! stepfunctions --endpoint-url ...` and the SDKs sign requests with them unchanged:
//!
//! ```text
//! [default]
//! aws_access_key_id = WEFT...
//! aws_secret_access_key = ...
//! weft_policy = policies/ops.json      # optional: an IAM policy over states:* actions
//! ```
//!
//! A request is accepted with a valid AWS Signature Version 4 (`Authorization:
//! AWS4-HMAC-SHA256 Credential=KEY/DATE/REGION/SERVICE/aws4_request, SignedHeaders=...,
//! Signature=...`, verified as AWS does: see [`crate::sigv4`]), or with `Authorization: Bearer
//! SECRET` (the web UI, curl; compared in constant time). A principal with a `weft_policy` may
//! only call the `states:ACTION`s its policy allows on the resource ARN of the request; one
//! without is allowed everything. A legacy `$WEFT_HOME/tokens` file (one token a line) is still
//! read: each token is a key whose id and secret are the token.

use crate::error::ApiError;
use axum::http::{HeaderMap, StatusCode};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use weft_sandbox::Policy;

/// One access key.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The profile name (or `token`).
    pub name: String,
    pub access_key_id: String,
    pub secret: String,
    /// What it may do; `None`: everything.
    pub policy: Option<Arc<Policy>>,
}

/// The server's access keys, by access key id.
#[derive(Debug, Clone, Default)]
pub struct Tokens(pub HashMap<String, Principal>);

impl Tokens {
    /// Legacy token list: each line a token (id and secret at once).
    pub fn parse(text: &str) -> Self {
        Tokens(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(|t| {
                    (
                        t.to_string(),
                        Principal {
                            name: "token".into(),
                            access_key_id: t.to_string(),
                            secret: t.to_string(),
                            policy: None,
                        },
                    )
                })
                .collect(),
        )
    }

    /// Parses a shared-credentials file; `weft_policy` paths are relative to `base`.
    pub fn parse_credentials(text: &str, origin: &Path, base: &Path) -> anyhow::Result<Self> {
        let mut out = HashMap::new();
        let mut section: Option<(String, usize)> = None;
        let mut fields: HashMap<String, String> = HashMap::new();
        let mut finish = |section: &Option<(String, usize)>,
                          fields: &mut HashMap<String, String>|
         -> anyhow::Result<()> {
            let Some((name, line)) = section else {
                return Ok(());
            };
            let at = format!("{}:{line}", origin.display());
            let id = fields.remove("aws_access_key_id").ok_or_else(|| {
                anyhow::anyhow!("{at}: profile [{name}] has no aws_access_key_id")
            })?;
            let secret = fields.remove("aws_secret_access_key").ok_or_else(|| {
                anyhow::anyhow!("{at}: profile [{name}] has no aws_secret_access_key")
            })?;
            let policy = match fields.remove("weft_policy") {
                None => None,
                Some(p) => {
                    let path = base.join(&p);
                    let text = std::fs::read_to_string(&path).map_err(|e| {
                        anyhow::anyhow!("{at}: weft_policy {}: {e}", path.display())
                    })?;
                    let pol = Policy::parse(&text).map_err(|errs| {
                        let msgs: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
                        anyhow::anyhow!("{}: {}", path.display(), msgs.join("; "))
                    })?;
                    Some(Arc::new(pol))
                }
            };
            out.insert(
                id.clone(),
                Principal {
                    name: name.clone(),
                    access_key_id: id,
                    secret,
                    policy,
                },
            );
            fields.clear();
            Ok(())
        };
        for (i, raw) in text.lines().enumerate() {
            let l = raw.trim();
            if l.is_empty() || l.starts_with('#') || l.starts_with(';') {
                continue;
            }
            if let Some(name) = l.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
                finish(&section, &mut fields)?;
                section = Some((name.trim().to_string(), i + 1));
                continue;
            }
            let Some((k, v)) = l.split_once('=') else {
                anyhow::bail!(
                    "{}:{}: expected `key = value` or `[profile]`",
                    origin.display(),
                    i + 1
                );
            };
            if section.is_none() {
                anyhow::bail!(
                    "{}:{}: `{}` outside a [profile]",
                    origin.display(),
                    i + 1,
                    k.trim()
                );
            }
            fields.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
        finish(&section, &mut fields)?;
        Ok(Tokens(out))
    }

    /// Reads `$WEFT_HOME/credentials` (and a legacy `tokens` file); creates the credentials
    /// file with one fresh key when there is none. Returns whether it was created.
    pub fn load_or_create(home: &Path) -> anyhow::Result<(Self, bool)> {
        let cred_path = home.join("credentials");
        let mut all = Tokens::default();
        match std::fs::read_to_string(&cred_path) {
            Ok(t) => all
                .0
                .extend(Tokens::parse_credentials(&t, &cred_path, home)?.0),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => anyhow::bail!("{}: cannot read: {e}", cred_path.display()),
        }
        if let Ok(t) = std::fs::read_to_string(home.join("tokens")) {
            all.0.extend(Tokens::parse(&t).0);
        }
        if !all.0.is_empty() {
            return Ok((all, false));
        }
        let id = format!("WEFT{}", &uuid::Uuid::new_v4().simple().to_string()[..16]).to_uppercase();
        let secret = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        std::fs::create_dir_all(home)?;
        let text = format!(
            "# weft server credentials, in the AWS shared-credentials format:\n#   AWS_SHARED_CREDENTIALS_FILE={} aws stepfunctions --endpoint-url http://127.0.0.1:8470 list-state-machines\n# The web UI logs in with the secret access key.\n[default]\naws_access_key_id = {id}\naws_secret_access_key = {secret}\n",
            cred_path.display()
        );
        write_private(&cred_path, &text)
            .map_err(|e| anyhow::anyhow!("{}: cannot write: {e}", cred_path.display()))?;
        let t = Tokens::parse_credentials(&text, &cred_path, home)?;
        Ok((t, true))
    }

    /// A key set from literal (id, secret) pairs (tests, embedding).
    pub fn from_keys(keys: &[(&str, &str)]) -> Self {
        Tokens(
            keys.iter()
                .map(|(id, secret)| {
                    (
                        id.to_string(),
                        Principal {
                            name: id.to_string(),
                            access_key_id: id.to_string(),
                            secret: secret.to_string(),
                            policy: None,
                        },
                    )
                })
                .collect(),
        )
    }
}

#[cfg(unix)]
pub(crate) fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
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
pub(crate) fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

pub use crate::sigv4::{parse as parse_sigv4, sign, SigV4};

/// The access key id of a SigV4 `Authorization` header.
pub fn sigv4_access_key(value: &str) -> Option<&str> {
    parse_sigv4(value).map(|s| s.access_key)
}

fn forbidden(kind: &'static str, msg: impl Into<String>) -> ApiError {
    ApiError::new(kind, msg).with_status(StatusCode::FORBIDDEN)
}

/// What a request presents: method, path, query, headers and body.
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// Authenticates a request; returns its principal (`None` without authentication).
pub fn check(tokens: Option<&Tokens>, req: &Request<'_>) -> Result<Option<Principal>, ApiError> {
    let Some(tokens) = tokens else {
        return Ok(None);
    };
    let mut all = req.headers.get_all("authorization").iter();
    let (Some(value), None) = (all.next(), all.next()) else {
        return Err(forbidden(
            "MissingAuthenticationTokenException",
            "Missing Authentication Token: sign the request (SigV4) with a key from $WEFT_HOME/credentials, or send `Authorization: Bearer SECRET` (exactly one Authorization header)",
        ));
    };
    let Ok(value) = value.to_str() else {
        return Err(ApiError::new(
            "IncompleteSignatureException",
            "the Authorization header is not visible ASCII",
        ));
    };
    if let Some(secret) = value.strip_prefix("Bearer ") {
        return bearer(tokens, secret.trim()).map(Some);
    }
    let Some(sig) = parse_sigv4(value) else {
        return Err(ApiError::new(
            "IncompleteSignatureException",
            "Authorization header is neither SigV4 (AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...) nor `Bearer SECRET`",
        ));
    };
    let Some(p) = tokens.0.get(sig.access_key) else {
        return Err(ApiError::new(
            "UnrecognizedClientException",
            format!(
                "The security token included in the request is invalid: access key `{}` is not in $WEFT_HOME/credentials",
                sig.access_key
            ),
        ));
    };
    let signed = crate::sigv4::Signed {
        method: req.method,
        path: req.path,
        query: req.query,
        headers: req
            .headers
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.to_str().ok().map(str::to_string)))
            .collect(),
        body: req.body,
    };
    match crate::sigv4::verify(&p.secret, &sig, &signed, chrono::Utc::now()) {
        Ok(()) => Ok(Some(p.clone())),
        Err(crate::sigv4::SigError::Incomplete(m)) => {
            Err(ApiError::new("IncompleteSignatureException", m))
        }
        Err(crate::sigv4::SigError::Invalid(m)) => Err(forbidden("InvalidSignatureException", m)),
    }
}

/// The principal whose secret is `secret`: every key is compared (in constant time, through
/// SHA-256 so lengths do not show), none skipped when one matches.
pub fn bearer(tokens: &Tokens, secret: &str) -> Result<Principal, ApiError> {
    let mut found = None;
    for p in tokens.0.values() {
        if crate::sigv4::secret_eq(p.secret.as_bytes(), secret.as_bytes()) {
            found = Some(p);
        }
    }
    found.cloned().ok_or_else(|| {
        ApiError::new(
            "UnrecognizedClientException",
            "The security token included in the request is invalid (no key in $WEFT_HOME/credentials has this secret)",
        )
    })
}

/// Checks a principal's policy for `states:ACTION` on `resource`.
pub fn authorize(p: Option<&Principal>, action: &str, resource: &str) -> Result<(), ApiError> {
    let Some(policy) = p.and_then(|p| p.policy.as_ref()) else {
        return Ok(());
    };
    let a = format!("states:{action}");
    if policy.evaluate(&a, resource).allowed() {
        Ok(())
    } else {
        let who = p.map_or("", |p| p.name.as_str());
        Err(ApiError::new(
            "AccessDeniedException",
            format!("User: {who} is not authorized to perform: {a} on resource: {resource}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("ro.json"),
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["states:Describe*","states:List*"],"Resource":["*"]}]}"#,
        )
        .unwrap();
        let text = "[default]\naws_access_key_id = A1\naws_secret_access_key = s1\n\n[ro]\naws_access_key_id=A2\naws_secret_access_key=s2\nweft_policy = ro.json\n";
        let t = Tokens::parse_credentials(text, Path::new("credentials"), dir.path()).unwrap();
        assert_eq!(t.0.len(), 2);
        let ro = t.0.get("A2").unwrap();
        assert!(authorize(Some(ro), "ListStateMachines", "*").is_ok());
        let e = authorize(
            Some(ro),
            "StartExecution",
            "arn:aws:states:us-east-1:0:stateMachine:x",
        )
        .unwrap_err();
        assert_eq!(e.kind, "AccessDeniedException");
        assert!(authorize(t.0.get("A1"), "StartExecution", "x").is_ok());
        let e = Tokens::parse_credentials("[p]\naws_access_key_id=x\n", Path::new("c"), dir.path())
            .unwrap_err();
        assert!(e.to_string().contains("c:1"), "{e}");
        let e = Tokens::parse_credentials("junk\n", Path::new("c"), dir.path()).unwrap_err();
        assert!(e.to_string().contains("c:1"), "{e}");
    }
}
