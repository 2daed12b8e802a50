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
//! Signature=...`, checked against the key's secret, with a 15-minute clock skew window), or
//! with `Authorization: Bearer SECRET` (the web UI, curl). A principal with a `weft_policy` may
//! only call the `states:ACTION`s its policy allows on the resource ARN of the request; one
//! without is allowed everything. A legacy `$WEFT_HOME/tokens` file (one token a line) is still
//! read: each token is a key whose id and secret are the token.

use crate::error::ApiError;
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
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

/// The parts of a SigV4 `Authorization` header.
#[derive(Debug, PartialEq, Eq)]
pub struct SigV4<'a> {
    pub access_key: &'a str,
    /// `DATE/REGION/SERVICE/aws4_request`
    pub scope: &'a str,
    pub signed_headers: Vec<&'a str>,
    pub signature: &'a str,
}

/// Parses a SigV4 `Authorization` header.
pub fn parse_sigv4(value: &str) -> Option<SigV4<'_>> {
    let rest = value.strip_prefix("AWS4-HMAC-SHA256")?.trim_start();
    let mut cred = None;
    let mut signed = None;
    let mut sig = None;
    for p in rest.split(',').map(str::trim) {
        if let Some(c) = p.strip_prefix("Credential=") {
            cred = Some(c);
        } else if let Some(s) = p.strip_prefix("SignedHeaders=") {
            signed = Some(s);
        } else if let Some(s) = p.strip_prefix("Signature=") {
            sig = Some(s);
        }
    }
    let (access_key, scope) = cred?.split_once('/')?;
    if access_key.is_empty() {
        return None;
    }
    Some(SigV4 {
        access_key,
        scope,
        signed_headers: signed?.split(';').collect(),
        signature: sig?,
    })
}

/// The access key id of a SigV4 `Authorization` header.
pub fn sigv4_access_key(value: &str) -> Option<&str> {
    parse_sigv4(value).map(|s| s.access_key)
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

/// The SigV4 signature of a request (`path` and `query` as sent).
#[allow(clippy::too_many_arguments)]
pub fn sign(
    secret: &str,
    method: &str,
    path: &str,
    query: &str,
    headers: &[(String, String)],
    signed_headers: &[&str],
    payload_hash: &str,
    amz_date: &str,
    scope: &str,
) -> String {
    let mut q: Vec<(&str, &str)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .collect();
    q.sort_unstable();
    let canonical_query: Vec<String> = q.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut canonical_headers = String::new();
    for h in signed_headers {
        let values: Vec<String> = headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(h))
            .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        canonical_headers.push_str(h);
        canonical_headers.push(':');
        canonical_headers.push_str(&values.join(","));
        canonical_headers.push('\n');
    }
    let canonical_request = format!(
        "{method}\n{}\n{}\n{canonical_headers}\n{}\n{payload_hash}",
        if path.is_empty() { "/" } else { path },
        canonical_query.join("&"),
        signed_headers.join(";")
    );
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex(&Sha256::digest(canonical_request.as_bytes()))
    );
    let mut parts = scope.split('/');
    let (date, region, service) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
    );
    let k = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k = hmac(&k, region.as_bytes());
    let k = hmac(&k, service.as_bytes());
    let k = hmac(&k, b"aws4_request");
    hex(&hmac(&k, string_to_sign.as_bytes()))
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
    let Some(value) = req
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
    else {
        return Err(forbidden(
            "MissingAuthenticationTokenException",
            "Missing Authentication Token: sign the request (SigV4) with a key from $WEFT_HOME/credentials, or send `Authorization: Bearer SECRET`",
        ));
    };
    if let Some(secret) = value.strip_prefix("Bearer ") {
        let secret = secret.trim();
        return tokens
            .0
            .values()
            .find(|p| constant_eq(p.secret.as_bytes(), secret.as_bytes()))
            .cloned()
            .map(Some)
            .ok_or_else(|| {
                ApiError::new(
                    "UnrecognizedClientException",
                    "The security token included in the request is invalid (no key in $WEFT_HOME/credentials has this secret)",
                )
            });
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
    let header = |n: &str| req.headers.get(n).and_then(|v| v.to_str().ok());
    let Some(amz_date) = header("x-amz-date") else {
        return Err(ApiError::new(
            "IncompleteSignatureException",
            "a SigV4-signed request needs an X-Amz-Date header",
        ));
    };
    if let Ok(t) = chrono::NaiveDateTime::parse_from_str(amz_date, "%Y%m%dT%H%M%SZ") {
        let skew = (chrono::Utc::now().naive_utc() - t).num_seconds().abs();
        if skew > 15 * 60 {
            return Err(forbidden(
                "InvalidSignatureException",
                format!("Signature expired: X-Amz-Date {amz_date} is more than 15 minutes from the server's time"),
            ));
        }
    } else {
        return Err(ApiError::new(
            "IncompleteSignatureException",
            format!("X-Amz-Date `{amz_date}` is not YYYYMMDDTHHMMSSZ"),
        ));
    }
    let payload_hash = match header("x-amz-content-sha256") {
        Some(h) if h != "UNSIGNED-PAYLOAD" => h.to_string(),
        _ => hex(&Sha256::digest(req.body)),
    };
    let headers: Vec<(String, String)> = req
        .headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect();
    let want = sign(
        &p.secret,
        req.method,
        req.path,
        req.query,
        &headers,
        &sig.signed_headers,
        &payload_hash,
        amz_date,
        sig.scope,
    );
    if !constant_eq(want.as_bytes(), sig.signature.as_bytes()) {
        return Err(forbidden(
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.",
        ));
    }
    Ok(Some(p.clone()))
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
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
    fn sigv4_header_parts() {
        let h = "AWS4-HMAC-SHA256 Credential=AKID/20261125/us-east-1/states/aws4_request, SignedHeaders=host;x-amz-date, Signature=ab";
        let s = parse_sigv4(h).unwrap();
        assert_eq!(s.access_key, "AKID");
        assert_eq!(s.scope, "20261125/us-east-1/states/aws4_request");
        assert_eq!(s.signed_headers, ["host", "x-amz-date"]);
        assert_eq!(sigv4_access_key("Basic x"), None);
    }

    /// AWS's published example (Signature Version 4 test suite, "get-vanilla").
    #[test]
    fn aws_reference_signature() {
        let headers = vec![
            ("host".to_string(), "example.amazonaws.com".to_string()),
            ("x-amz-date".to_string(), "20150830T123600Z".to_string()),
        ];
        let sig = sign(
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "GET",
            "/",
            "",
            &headers,
            &["host", "x-amz-date"],
            &hex(&Sha256::digest(b"")),
            "20150830T123600Z",
            "20150830/us-east-1/service/aws4_request",
        );
        assert_eq!(
            sig,
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }

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
