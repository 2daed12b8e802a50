//! AWS Signature Version 4, verified the way AWS verifies it for a JSON-protocol service
//! (Step Functions): this module owns the parsing of the `Authorization` header, the canonical
//! request (real method, path URI-encoded per AWS's non-S3 rule, canonical query string, the
//! signed headers of the real request, and the SHA-256 of the body actually received), the
//! credential scope rules and the clock-skew window. Every secret-dependent comparison is
//! constant-time.
//!
//! Rules enforced (a request breaking any of them is refused):
//! - `x-amz-content-sha256`, when present, must equal the hash of the received body
//!   (`UNSIGNED-PAYLOAD` and streaming payloads are S3-only and refused); the canonical request
//!   always uses the computed hash;
//! - `host` and `x-amz-date` are among the signed headers, and so is every `x-amz-*` header
//!   and `content-type` the request carries (an unsigned one could change the action);
//! - the signed header list is lower-case, sorted and without duplicates, and each header it
//!   names is present with a visible-ASCII value;
//! - the scope is `DATE/REGION/states/aws4_request` with DATE the date of `x-amz-date`;
//! - `x-amz-date` is `YYYYMMDDTHHMMSSZ` within 15 minutes of the server's clock, either way.

use chrono::{DateTime, NaiveDateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The service name a credential scope must carry.
pub const SERVICE: &str = "states";
/// The allowed clock skew, either way.
pub const MAX_SKEW_SECONDS: i64 = 15 * 60;

/// Why a signed request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigError {
    /// The request is not a complete SigV4 request (AWS: IncompleteSignatureException, 400).
    #[error("{0}")]
    Incomplete(String),
    /// The signature or one of its bindings does not hold (AWS: InvalidSignatureException, 403).
    #[error("{0}")]
    Invalid(String),
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

/// Parses a SigV4 `Authorization` header: `AWS4-HMAC-SHA256 Credential=KEY/SCOPE,
/// SignedHeaders=a;b, Signature=HEX`, each part exactly once.
pub fn parse(value: &str) -> Option<SigV4<'_>> {
    let rest = value.strip_prefix("AWS4-HMAC-SHA256 ")?.trim_start();
    let (mut cred, mut signed, mut sig) = (None, None, None);
    for p in rest.split(',').map(str::trim) {
        let slot = if let Some(c) = p.strip_prefix("Credential=") {
            (&mut cred, c)
        } else if let Some(s) = p.strip_prefix("SignedHeaders=") {
            (&mut signed, s)
        } else if let Some(s) = p.strip_prefix("Signature=") {
            (&mut sig, s)
        } else {
            return None;
        };
        if slot.0.replace(slot.1).is_some() {
            return None; // a part given twice
        }
    }
    let (access_key, scope) = cred?.split_once('/')?;
    let signed: &str = signed?;
    if access_key.is_empty() || signed.is_empty() {
        return None;
    }
    Some(SigV4 {
        access_key,
        scope,
        signed_headers: signed.split(';').collect(),
        signature: sig?,
    })
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
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

/// AWS's URI encoding: every byte but the unreserved `A-Z a-z 0-9 - . _ ~` as `%XX` (upper
/// case); `/` kept when `keep_slash`.
pub fn uri_encode(s: &[u8], keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The canonical URI of a non-S3 request: the path as received (already encoded once by the
/// client), URI-encoded again with `/` kept.
pub fn canonical_uri(raw_path: &str) -> String {
    if raw_path.is_empty() {
        return "/".into();
    }
    uri_encode(raw_path.as_bytes(), true)
}

/// The canonical query string: each name and value percent-decoded, encoded again with
/// [`uri_encode`], pairs sorted by name then value, `name=` for a name without a value.
pub fn canonical_query(raw_query: &str) -> String {
    let mut pairs: Vec<(String, String)> = raw_query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let dec = |x: &str| -> Vec<u8> { percent_encoding::percent_decode_str(x).collect() };
            (uri_encode(&dec(k), false), uri_encode(&dec(v), false))
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// A header value as it enters the canonical request: trimmed, inner runs of spaces as one.
fn canonical_value(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The canonical request of AWS's SigV4 (`headers` are the request's, any case).
pub fn canonical_request(
    method: &str,
    raw_path: &str,
    raw_query: &str,
    headers: &[(String, String)],
    signed_headers: &[&str],
    payload_hash: &str,
) -> String {
    let mut canonical_headers = String::new();
    for h in signed_headers {
        let values: Vec<String> = headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(h))
            .map(|(_, v)| canonical_value(v))
            .collect();
        canonical_headers.push_str(&h.to_ascii_lowercase());
        canonical_headers.push(':');
        canonical_headers.push_str(&values.join(","));
        canonical_headers.push('\n');
    }
    format!(
        "{method}\n{}\n{}\n{canonical_headers}\n{}\n{payload_hash}",
        canonical_uri(raw_path),
        canonical_query(raw_query),
        signed_headers.join(";")
    )
}

/// The signing key of a secret for a scope `DATE/REGION/SERVICE/aws4_request`.
fn signing_key(secret: &str, scope: &str) -> Vec<u8> {
    let mut parts = scope.split('/');
    let mut k = hmac(
        format!("AWS4{secret}").as_bytes(),
        parts.next().unwrap_or("").as_bytes(),
    );
    for p in [parts.next().unwrap_or(""), parts.next().unwrap_or("")] {
        k = hmac(&k, p.as_bytes());
    }
    hmac(&k, b"aws4_request")
}

/// The SigV4 signature of a request (`path` and `query` as sent on the wire).
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
    let canonical = canonical_request(method, path, query, headers, signed_headers, payload_hash);
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    hex(&hmac(
        &signing_key(secret, scope),
        string_to_sign.as_bytes(),
    ))
}

/// Constant-time equality of two byte strings (the length is not secret: SHA-256 both first
/// when it is).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Constant-time equality of two secrets of any lengths (compares their SHA-256).
pub fn secret_eq(a: &[u8], b: &[u8]) -> bool {
    bool::from(Sha256::digest(a).ct_eq(&Sha256::digest(b)))
}

/// What a request presents to the verifier.
pub struct Signed<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    /// Every header of the request (name, value); a value that is not visible ASCII is `None`.
    pub headers: Vec<(String, Option<String>)>,
    pub body: &'a [u8],
}

/// The value of a signed header that may appear once.
fn only_one<'v>(values: &'v [(String, String)], name: &str) -> Result<Option<&'v str>, SigError> {
    let mut it = values.iter().filter(|(k, _)| k == name);
    let first = it.next().map(|(_, v)| v.as_str());
    if it.next().is_some() {
        return Err(SigError::Incomplete(format!(
            "the header `{name}` is given more than once"
        )));
    }
    Ok(first)
}

fn parse_amz_date(d: &str) -> Option<DateTime<Utc>> {
    let b = d.as_bytes();
    let shape = b.len() == 16
        && b[8] == b'T'
        && b[15] == b'Z'
        && b[..8].iter().chain(&b[9..15]).all(u8::is_ascii_digit);
    if !shape {
        return None;
    }
    NaiveDateTime::parse_from_str(d, "%Y%m%dT%H%M%SZ")
        .ok()
        .map(|t| t.and_utc())
}

/// Checks the signature `sig` of `req` with `secret`, at time `now`.
pub fn verify(
    secret: &str,
    sig: &SigV4<'_>,
    req: &Signed<'_>,
    now: DateTime<Utc>,
) -> Result<(), SigError> {
    let incomplete = |m: String| Err(SigError::Incomplete(m));
    // the signed header list: lower case, sorted, unique, naming headers that are present
    let names = &sig.signed_headers;
    if let Some(h) = names
        .iter()
        .find(|h| h.is_empty() || h.bytes().any(|c| c.is_ascii_uppercase()))
    {
        return incomplete(format!(
            "SignedHeaders: `{h}` is not a lower-case header name"
        ));
    }
    if names.windows(2).any(|w| w[0] >= w[1]) {
        return incomplete("SignedHeaders must be sorted and without duplicates".into());
    }
    for required in ["host", "x-amz-date"] {
        if !names.contains(&required) {
            return incomplete(format!(
                "SignedHeaders must include `{required}` (signed: {})",
                names.join(";")
            ));
        }
    }
    for (k, _) in &req.headers {
        let k = k.to_ascii_lowercase();
        if (k.starts_with("x-amz-") || k == "content-type") && !names.contains(&k.as_str()) {
            return Err(SigError::Invalid(format!(
                "the header `{k}` is in the request but not among its SignedHeaders ({})",
                names.join(";")
            )));
        }
    }
    let mut signed_values: Vec<(String, String)> = Vec::new();
    for h in names {
        let mut found = false;
        for (k, v) in &req.headers {
            if k.eq_ignore_ascii_case(h) {
                found = true;
                let Some(v) = v else {
                    return incomplete(format!(
                        "the signed header `{h}` has a value that is not visible ASCII"
                    ));
                };
                signed_values.push((h.to_string(), v.clone()));
            }
        }
        if !found {
            return incomplete(format!("the signed header `{h}` is not in the request"));
        }
    }
    // the date, the scope and the clock
    let Some(amz_date) = only_one(&signed_values, "x-amz-date")? else {
        return incomplete("a SigV4-signed request needs an X-Amz-Date header".into());
    };
    let Some(t) = parse_amz_date(amz_date) else {
        return incomplete(format!("X-Amz-Date `{amz_date}` is not YYYYMMDDTHHMMSSZ"));
    };
    let scope: Vec<&str> = sig.scope.split('/').collect();
    let region_ok = |r: &str| {
        !r.is_empty()
            && r.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
    };
    match scope.as_slice() {
        [date, region, service, "aws4_request"] if region_ok(region) => {
            if *date != &amz_date[..8] {
                return Err(SigError::Invalid(format!(
                    "Credential should be scoped to a valid date: the scope's date {date} is not the date of X-Amz-Date {amz_date}"
                )));
            }
            if *service != SERVICE {
                return Err(SigError::Invalid(format!(
                    "Credential should be scoped to correct service: '{SERVICE}', not '{service}'"
                )));
            }
        }
        _ => {
            return incomplete(format!(
                "Credential scope `{}` is not DATE/REGION/{SERVICE}/aws4_request",
                sig.scope
            ))
        }
    }
    let fmt = |x: DateTime<Utc>| x.format("%Y%m%dT%H%M%SZ").to_string();
    let skew = (now - t).num_seconds();
    if skew > MAX_SKEW_SECONDS {
        return Err(SigError::Invalid(format!(
            "Signature expired: {amz_date} is now earlier than {} ({} - 15 min.)",
            fmt(now - chrono::Duration::seconds(MAX_SKEW_SECONDS)),
            fmt(now)
        )));
    }
    if -skew > MAX_SKEW_SECONDS {
        return Err(SigError::Invalid(format!(
            "Signature not yet current: {amz_date} is still later than {} ({} + 15 min.)",
            fmt(now + chrono::Duration::seconds(MAX_SKEW_SECONDS)),
            fmt(now)
        )));
    }
    // the payload: always the hash of what was received
    let payload_hash = hex(&Sha256::digest(req.body));
    if let Some(claimed) = only_one(&signed_values, "x-amz-content-sha256")? {
        if matches!(claimed, "UNSIGNED-PAYLOAD") || claimed.starts_with("STREAMING-") {
            return Err(SigError::Invalid(format!(
                "x-amz-content-sha256 `{claimed}` is not accepted by this service: sign the payload"
            )));
        }
        if !ct_eq(claimed.as_bytes(), payload_hash.as_bytes()) {
            return Err(SigError::Invalid(
                "The provided 'x-amz-content-sha256' header does not match what was computed."
                    .into(),
            ));
        }
    }
    // the signature: 64 lower-case hex digits
    if sig.signature.len() != 64
        || !sig
            .signature
            .bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
    {
        return incomplete("Signature must be 64 lower-case hex digits".into());
    }
    let want = sign(
        secret,
        req.method,
        req.path,
        req.query,
        &signed_values,
        names,
        &payload_hash,
        amz_date,
        sig.scope,
    );
    if !ct_eq(want.as_bytes(), sig.signature.as_bytes()) {
        return Err(SigError::Invalid(
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_parts() {
        let h = "AWS4-HMAC-SHA256 Credential=AKID/20261125/us-east-1/states/aws4_request, SignedHeaders=host;x-amz-date, Signature=ab";
        let s = parse(h).unwrap();
        assert_eq!(s.access_key, "AKID");
        assert_eq!(s.scope, "20261125/us-east-1/states/aws4_request");
        assert_eq!(s.signed_headers, ["host", "x-amz-date"]);
        assert!(parse("Basic x").is_none());
        // a part twice, an unknown part, a missing part
        assert!(parse(&format!("{h}, Signature=cd")).is_none());
        assert!(parse(&format!("{h}, Extra=1")).is_none());
        assert!(parse("AWS4-HMAC-SHA256 Credential=A/s, Signature=ab").is_none());
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
    fn canonical_parts() {
        // non-S3: the received (encoded) path is encoded again
        assert_eq!(canonical_uri("/a%20b/c"), "/a%2520b/c");
        assert_eq!(canonical_uri(""), "/");
        // sorted by name then value, decoded then encoded the AWS way
        assert_eq!(
            canonical_query("b=2&a=%7e&a=1&c&sp=x%20y&plus=a+b"),
            "a=1&a=~&b=2&c=&plus=a%2Bb&sp=x%20y"
        );
        assert_eq!(canonical_value("  a   b  "), "a b");
        assert!(parse_amz_date("20261205T075100Z").is_some());
        for bad in [
            "2026125T075100Z",
            "20261205T0751Z",
            "20261205 075100Z",
            "+0261205T075100Z",
        ] {
            assert!(parse_amz_date(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(secret_eq(b"abc", b"abc"));
        assert!(!secret_eq(b"abc", b"abd"));
        assert!(!secret_eq(b"abc", b"abcd"));
        assert!(ct_eq(b"x", b"x") && !ct_eq(b"x", b"xy"));
    }

    const SECRET: &str = "the-secret";

    /// A request signed as an SDK signs it: (method, path, query, headers, body) at `date`,
    /// with `signed` headers, and the Authorization value.
    struct Req {
        method: String,
        path: String,
        query: String,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    }

    fn now() -> DateTime<Utc> {
        parse_amz_date("20261205T080000Z").unwrap()
    }

    fn base(body: &[u8]) -> Req {
        Req {
            method: "POST".into(),
            path: "/".into(),
            query: String::new(),
            headers: vec![
                ("host".into(), "127.0.0.1:8470".into()),
                ("content-type".into(), "application/x-amz-json-1.0".into()),
                ("x-amz-date".into(), "20261205T080000Z".into()),
                (
                    "x-amz-target".into(),
                    "AWSStepFunctions.ListStateMachines".into(),
                ),
            ],
            body: body.to_vec(),
        }
    }

    /// Signs `r` over `signed` headers with `scope` (None: the right one); returns the header.
    fn authorize(r: &Req, signed: &[&str], scope: Option<&str>) -> String {
        let date = r
            .headers
            .iter()
            .find(|(k, _)| k == "x-amz-date")
            .map(|(_, v)| v.clone())
            .unwrap();
        let scope = scope
            .map(str::to_string)
            .unwrap_or_else(|| format!("{}/us-east-1/states/aws4_request", &date[..8]));
        let sig = sign(
            SECRET,
            &r.method,
            &r.path,
            &r.query,
            &r.headers,
            signed,
            &hex(&Sha256::digest(&r.body)),
            &date,
            &scope,
        );
        format!(
            "AWS4-HMAC-SHA256 Credential=AKID/{scope}, SignedHeaders={}, Signature={sig}",
            signed.join(";")
        )
    }

    fn check(r: &Req, auth: &str, at: DateTime<Utc>) -> Result<(), SigError> {
        let sig = parse(auth).ok_or_else(|| SigError::Incomplete("unparsable".into()))?;
        let signed = Signed {
            method: &r.method,
            path: &r.path,
            query: &r.query,
            headers: r
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), Some(v.clone())))
                .collect(),
            body: &r.body,
        };
        verify(SECRET, &sig, &signed, at)
    }

    const ALL: &[&str] = &["content-type", "host", "x-amz-date", "x-amz-target"];

    fn set(r: &mut Req, k: &str, v: &str) {
        r.headers.retain(|(x, _)| x != k);
        r.headers.push((k.into(), v.into()));
    }

    #[test]
    fn a_signature_binds_the_whole_request() {
        let r = base(b"{}");
        let auth = authorize(&r, ALL, None);
        check(&r, &auth, now()).unwrap();
        // replayed with another body, even with the old body's hash in x-amz-content-sha256
        let mut x = base(b"{\"maxResults\":1}");
        assert!(check(&x, &auth, now()).is_err());
        set(&mut x, "x-amz-content-sha256", &hex(&Sha256::digest(b"{}")));
        assert!(check(&x, &auth, now()).is_err());
        let signed_hash = [
            "content-type",
            "host",
            "x-amz-content-sha256",
            "x-amz-date",
            "x-amz-target",
        ];
        let mut y = base(b"{}");
        set(&mut y, "x-amz-content-sha256", &hex(&Sha256::digest(b"{}")));
        let a2 = authorize(&y, &signed_hash, None);
        check(&y, &a2, now()).unwrap();
        y.body = b"{\"evil\":1}".to_vec();
        assert!(check(&y, &a2, now()).is_err());
        // a hash that is not the body's, and the S3-only unsigned payload, are refused even
        // when signed
        let mut z = base(b"{}");
        set(
            &mut z,
            "x-amz-content-sha256",
            &hex(&Sha256::digest(b"other")),
        );
        let a3 = authorize(&z, &signed_hash, None);
        assert!(matches!(check(&z, &a3, now()), Err(SigError::Invalid(_))));
        set(&mut z, "x-amz-content-sha256", "UNSIGNED-PAYLOAD");
        let a4 = authorize(&z, &signed_hash, None);
        assert!(matches!(check(&z, &a4, now()), Err(SigError::Invalid(_))));
        // another path, query or method
        for f in [
            (|r: &mut Req| r.path = "/v1/dags/x/runs".into()) as fn(&mut Req),
            |r| r.path = "//".into(),
            |r| r.query = "a=1".into(),
            |r| r.method = "GET".into(),
            |r| r.method = "post".into(),
            |r| set(r, "x-amz-target", "AWSStepFunctions.DeleteStateMachine"),
            |r| set(r, "host", "evil.example"),
            |r| set(r, "content-type", "text/plain"),
        ] {
            let mut m = base(b"{}");
            f(&mut m);
            assert!(check(&m, &auth, now()).is_err());
        }
        // an unsigned x-amz-* or content-type header is refused; other unsigned headers are
        // not part of the signature (as in AWS)
        let only = ["host", "x-amz-date", "x-amz-target"];
        let mut u = base(b"{}");
        u.headers.retain(|(k, _)| k != "content-type");
        let a5 = authorize(&u, &only, None);
        check(&u, &a5, now()).unwrap();
        for extra in [
            "x-amz-security-token",
            "x-amz-content-sha256",
            "content-type",
            "X-Amz-Target",
        ] {
            let mut m = base(b"{}");
            m.headers.retain(|(k, _)| k != "content-type");
            m.headers.push((extra.into(), "x".into()));
            assert!(check(&m, &a5, now()).is_err(), "{extra}");
        }
        let mut ua = base(b"{}");
        ua.headers.retain(|(k, _)| k != "content-type");
        ua.headers.push(("user-agent".into(), "aws-cli".into()));
        check(&ua, &a5, now()).unwrap();
    }

    #[test]
    fn scope_headers_and_clock() {
        let r = base(b"{}");
        // a valid signature over a scope of another date, service or shape
        for scope in [
            "20261204/us-east-1/states/aws4_request",
            "20261205/us-east-1/execute-api/aws4_request",
            "20261205/us-east-1/states/aws4_request/x",
            "20261205/US-EAST-1/states/aws4_request",
            "20261205//states/aws4_request",
        ] {
            let a = authorize(&r, ALL, Some(scope));
            assert!(check(&r, &a, now()).is_err(), "{scope}");
        }
        // host and x-amz-date must be signed; the list sorted, lower case, without duplicates
        for signed in [
            &["content-type", "x-amz-date", "x-amz-target"][..],
            &["content-type", "host", "x-amz-target"],
            &["host", "content-type", "x-amz-date", "x-amz-target"],
            &["content-type", "host", "host", "x-amz-date", "x-amz-target"],
            &["content-type", "Host", "x-amz-date", "x-amz-target"],
            &[
                "content-type",
                "host",
                "x-amz-date",
                "x-amz-target",
                "x-missing",
            ],
        ] {
            let a = authorize(&r, signed, None);
            assert!(check(&r, &a, now()).is_err(), "{signed:?}");
        }
        // 15 minutes either way
        let a = authorize(&r, ALL, None);
        let min = chrono::Duration::minutes;
        check(&r, &a, now() + min(14)).unwrap();
        check(&r, &a, now() - min(14)).unwrap();
        let e = check(&r, &a, now() + min(16)).unwrap_err();
        assert!(e.to_string().contains("expired"), "{e}");
        let e = check(&r, &a, now() - min(16)).unwrap_err();
        assert!(e.to_string().contains("not yet current"), "{e}");
        // the signature's own shape
        let upper = a.replace("Signature=", "Signature=X").to_uppercase();
        assert!(check(&r, &upper, now()).is_err());
    }

    /// Property: any change to the body, path, query, method or a signed header of a signed
    /// request breaks its signature (random requests, random single changes).
    #[test]
    fn prop_any_change_breaks_the_signature() {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n.max(1)
        };
        let alphabet = b"ab/ %=&?+~-_.:\"{}[]0xZ\xc3\xa9";
        for _ in 0..300 {
            let mut gen = |len: u64| -> Vec<u8> {
                (0..next(len))
                    .map(|_| alphabet[next(alphabet.len() as u64) as usize])
                    .collect()
            };
            let body = gen(40);
            let mut r = base(&body);
            r.path = format!(
                "/{}",
                String::from_utf8_lossy(&gen(6)).replace(['?', '#', ' '], "")
            );
            r.query = String::from_utf8_lossy(&gen(8)).replace(['#', ' '], "");
            let auth = authorize(&r, ALL, None);
            check(&r, &auth, now()).unwrap();
            let mut m = Req {
                method: r.method.clone(),
                path: r.path.clone(),
                query: r.query.clone(),
                headers: r.headers.clone(),
                body: r.body.clone(),
            };
            match next(5) {
                0 => {
                    let i = next(m.body.len() as u64 + 1) as usize;
                    if i == m.body.len() {
                        m.body.push(b'x');
                    } else {
                        m.body[i] ^= 1 + next(255) as u8;
                    }
                }
                1 => m.path.push('x'),
                2 => m
                    .query
                    .push_str(if m.query.is_empty() { "k=v" } else { "&k=v" }),
                3 => m.method = "PUT".into(),
                _ => set(&mut m, "x-amz-target", "AWSStepFunctions.StartExecution"),
            }
            assert!(
                check(&m, &auth, now()).is_err(),
                "{:?} {:?} {:?}",
                m.path,
                m.query,
                m.body
            );
        }
    }

    /// A request signed by botocore (boto3 1.43's SigV4Auth for `states`, region eu-west-1):
    /// no x-amz-content-sha256, user-agent unsigned. It verifies, and not with another body.
    #[test]
    fn botocore_signature_verifies() {
        let mut r = Req {
            method: "POST".into(),
            path: "/".into(),
            query: String::new(),
            headers: vec![
                ("host".into(), "127.0.0.1:8470".into()),
                (
                    "x-amz-target".into(),
                    "AWSStepFunctions.ListStateMachines".into(),
                ),
                ("content-type".into(), "application/x-amz-json-1.0".into()),
                ("user-agent".into(), "Boto3/1.43 test".into()),
                ("x-amz-date".into(), "20261205T085230Z".into()),
            ],
            body: br#"{"maxResults": 5}"#.to_vec(),
        };
        let auth = "AWS4-HMAC-SHA256 Credential=AKIDWEFT/20261205/eu-west-1/states/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=57a5a249eddb4cddcd427ad6ecc20d5b67579856ea8625be8db8101867e547aa";
        let at = parse_amz_date("20261205T085500Z").unwrap();
        check(&r, auth, at).unwrap();
        r.body = br#"{"maxResults": 6}"#.to_vec();
        assert!(check(&r, auth, at).is_err());
    }
}
