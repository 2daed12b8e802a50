//! Where a request may come from, checked before any route runs (a layer of [`crate::router`]).
//!
//! - **Without authentication** (`--no-auth`, loopback only) the `Host` header (and the
//!   authority of an absolute-form request target) must name the loopback: `localhost`, a name
//!   under `.localhost` (reserved by RFC 6761, no public DNS answers for it), an IPv4 address
//!   in `127.0.0.0/8` or `[::1]`, any port. A page on an attacker's domain that DNS-rebinds
//!   its name to 127.0.0.1 sends its own name as `Host` and is refused, so it can neither read
//!   the UI's data nor act on it.
//! - **Every state-changing request** (any method but GET, HEAD and OPTIONS), with or without
//!   authentication: a browser's `Origin`, when present, must be the server's own origin (the
//!   scheme's host and port equal to `Host`) or a loopback origin; `Origin: null` and
//!   `Sec-Fetch-Site: cross-site` are refused; and the body must be declared JSON by exactly
//!   one `Content-Type`: `application/json` (the UI's `/v1` calls, curl), or
//!   `application/x-amz-json-1.0` / `1.1` (the AWS CLI, boto3, `weft sm`), parameters such as
//!   `charset` allowed (a DELETE may declare none). An HTML form can only send `application/x-www-form-urlencoded`,
//!   `multipart/form-data` or `text/plain`, and a cross-site script that sets a JSON type
//!   needs a CORS preflight this server never grants, so no other site can make a browser act
//!   on the API.
//!
//! Refusals are AWS-shaped errors: 403 `InvalidHostHeader` / `CrossSiteRequestRefused`, 415
//! `UnsupportedMediaTypeException`.

use crate::error::ApiError;
use crate::AppState;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::IpAddr;
use std::sync::Arc;

/// The media types a state-changing request may declare.
pub const JSON_TYPES: &[&str] = &[
    "application/json",
    "application/x-amz-json-1.0",
    "application/x-amz-json-1.1",
];

/// The layer: refuses what [`check`] refuses, passes the rest on.
pub async fn layer(State(app): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    match check(app.tokens.is_none(), req.method(), req.uri(), req.headers()) {
        Ok(()) => next.run(req).await,
        Err(e) => {
            tracing::warn!(
                method = %req.method(),
                path = req.uri().path(),
                error = e.kind,
                "request refused: {}",
                e.message
            );
            e.into_response()
        }
    }
}

/// The checks of this module on one request's head; `no_auth`: the server runs without
/// authentication.
pub fn check(
    no_auth: bool,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<(), ApiError> {
    if no_auth {
        check_loopback_host(uri, headers)?;
    }
    if !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        check_same_site(headers)?;
        // a DELETE carries no body (Airflow's API clients send no Content-Type with it), and
        // no HTML form or CORS-simple request can send one
        if *method != Method::DELETE || headers.contains_key("content-type") {
            check_json_body(headers)?;
        }
    }
    Ok(())
}

fn refused_host(msg: impl Into<String>) -> ApiError {
    ApiError::new("InvalidHostHeader", msg).with_status(StatusCode::FORBIDDEN)
}

fn cross_site(msg: impl Into<String>) -> ApiError {
    ApiError::new("CrossSiteRequestRefused", msg).with_status(StatusCode::FORBIDDEN)
}

/// The single value of header `name` as text; `Ok(None)` when absent.
fn single<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, String> {
    let mut all = headers.get_all(name).iter();
    let Some(first) = all.next() else {
        return Ok(None);
    };
    if all.next().is_some() {
        return Err(format!("more than one `{name}` header"));
    }
    first
        .to_str()
        .map(|s| Some(s.trim()))
        .map_err(|_| format!("`{name}` is not visible ASCII"))
}

fn check_loopback_host(uri: &Uri, headers: &HeaderMap) -> Result<(), ApiError> {
    let host = single(headers, "host").map_err(refused_host)?;
    let Some(host) = host else {
        return Err(refused_host(
            "a request without a Host header is refused by a server running with --no-auth",
        ));
    };
    if !is_loopback_authority(host) {
        return Err(refused_host(format!(
            "Host `{host}` is not a loopback name: a server running with --no-auth answers only \
             requests addressed to localhost, 127.0.0.1 or [::1] (a foreign name here is how \
             DNS rebinding reaches a local server)"
        )));
    }
    if let Some(a) = uri.authority() {
        if !is_loopback_authority(a.as_str()) {
            return Err(refused_host(format!(
                "request target authority `{a}` is not a loopback name"
            )));
        }
    }
    Ok(())
}

/// The host of an authority (`HOST[:PORT]`, `[V6][:PORT]`), lower-cased; `None` when it is not
/// one (userinfo, empty host, a port that is not a number).
fn authority_parts(authority: &str) -> Option<(String, Option<u16>)> {
    if authority.contains('@') || authority.is_empty() {
        return None;
    }
    let a: axum::http::uri::Authority = authority.parse().ok()?;
    // after the host: nothing, or `:` and a port number (`Authority` also takes `:` alone and
    // ports that are not numbers)
    let port = match authority.strip_prefix(a.host())? {
        "" => None,
        rest => {
            let digits = rest.strip_prefix(':')?;
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            Some(digits.parse::<u16>().ok()?)
        }
    };
    let host = a.host().to_ascii_lowercase();
    if host.is_empty() {
        return None;
    }
    Some((host, port))
}

/// Whether `host` (no port, IPv6 in brackets) names the loopback.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    if host == "localhost" {
        return true;
    }
    if let Some(sub) = host.strip_suffix(".localhost") {
        // a DNS name under .localhost: labels of letters, digits and hyphens
        return !sub.is_empty()
            && sub.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
    }
    let ip = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6),
        // only the dotted-quad form: std refuses short, octal, hex and decimal spellings
        None => host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4),
    };
    ip.is_some_and(|ip| ip.is_loopback())
}

/// Whether an authority (`HOST[:PORT]`) names the loopback.
pub fn is_loopback_authority(authority: &str) -> bool {
    authority_parts(authority).is_some_and(|(h, _)| is_loopback_host(&h))
}

fn check_same_site(headers: &HeaderMap) -> Result<(), ApiError> {
    match single(headers, "sec-fetch-site").map_err(cross_site)? {
        Some(v) if v.eq_ignore_ascii_case("cross-site") => {
            return Err(cross_site(
                "Sec-Fetch-Site: cross-site: another site's page may not change anything here",
            ))
        }
        _ => {}
    }
    let Some(origin) = single(headers, "origin").map_err(cross_site)? else {
        // not sent by a browser (AWS CLI, SDKs, curl) or a same-origin GET-like request
        return Ok(());
    };
    let host = single(headers, "host").map_err(cross_site)?.unwrap_or("");
    if origin_allowed(origin, host) {
        Ok(())
    } else {
        Err(cross_site(format!(
            "Origin `{origin}` is neither this server's origin (Host `{host}`) nor a loopback \
             origin: another site's page may not change anything here"
        )))
    }
}

/// Whether a browser's `Origin` may change state on a server addressed as `host`.
pub fn origin_allowed(origin: &str, host: &str) -> bool {
    let Ok(url) = url::Url::parse(origin) else {
        return false; // `null` and anything that is not scheme://host[:port]
    };
    if !matches!(url.scheme(), "http" | "https")
        || !url.username().is_empty()
        || url.password().is_some()
        || url.path() != "/"
        || url.query().is_some()
        || url.fragment().is_some()
        || origin.trim_end_matches('/').len() != origin.len()
    {
        return false;
    }
    let Some(o_host) = url.host_str() else {
        return false;
    };
    let o_host = o_host.to_ascii_lowercase();
    if is_loopback_host(&o_host) {
        return true;
    }
    let Some(port) = url.port_or_known_default() else {
        return false;
    };
    match authority_parts(host) {
        Some((h, p)) => {
            let default = if url.scheme() == "https" { 443 } else { 80 };
            h == o_host && p.unwrap_or(default) == port
        }
        None => false,
    }
}

fn check_json_body(headers: &HeaderMap) -> Result<(), ApiError> {
    let unsupported = |msg: String| {
        ApiError::new("UnsupportedMediaTypeException", msg)
            .with_status(StatusCode::UNSUPPORTED_MEDIA_TYPE)
    };
    let ct = single(headers, "content-type").map_err(unsupported)?;
    let Some(ct) = ct else {
        return Err(unsupported(format!(
            "a request that changes state must declare a JSON body: Content-Type {}",
            JSON_TYPES.join(", ")
        )));
    };
    let essence = ct
        .parse::<mime::Mime>()
        .ok()
        .map(|m| m.essence_str().to_ascii_lowercase());
    if essence.as_deref().is_some_and(|e| JSON_TYPES.contains(&e)) {
        Ok(())
    } else {
        Err(unsupported(format!(
            "Content-Type `{ct}` is not accepted on a request that changes state (expected {})",
            JSON_TYPES.join(", ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hm(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn loopback_names() {
        for ok in [
            "localhost",
            "LOCALHOST:8470",
            "127.0.0.1",
            "127.0.0.1:1",
            "127.1.2.3:80",
            "[::1]",
            "[::1]:8470",
            "app.localhost:3000",
        ] {
            assert!(is_loopback_authority(ok), "{ok}");
        }
        for bad in [
            "",
            "evil.example",
            "127.0.0.1.evil.com",
            "localhost.evil.com",
            "localhost.evil.com:8470",
            "evil.com:127.0.0.1",
            "127.0.0.1@evil.com",
            "user@localhost",
            "2130706433",
            "0x7f000001",
            "0177.0.0.1",
            "127.1",
            "127.0.0.1:",
            "127.0.0.1:port",
            "[::ffff:127.0.0.1]",
            "[::2]",
            "::1",
            "localhost.",
            ".localhost",
            "a..localhost",
            "-a.localhost",
            "0.0.0.0",
            "10.0.0.1",
            "evil.example%2F@localhost",
        ] {
            assert!(!is_loopback_authority(bad), "{bad}");
        }
    }

    #[test]
    fn a_delete_needs_no_body_type_but_a_declared_one_must_be_json() {
        let uri: Uri = "/api/v2/variables/x".parse().unwrap();
        let del = Method::DELETE;
        assert!(check(false, &del, &uri, &hm(&[])).is_ok());
        let e = check(false, &del, &uri, &hm(&[("content-type", "text/plain")])).unwrap_err();
        assert_eq!(e.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        // still same-site only
        let e = check(
            false,
            &del,
            &uri,
            &hm(&[
                ("host", "127.0.0.1:8470"),
                ("origin", "https://evil.example"),
            ]),
        )
        .unwrap_err();
        assert_eq!(e.status, StatusCode::FORBIDDEN);
        // other methods still need a JSON type
        assert!(check(false, &Method::PATCH, &uri, &hm(&[])).is_err());
        assert!(check(false, &Method::POST, &uri, &hm(&[])).is_err());
    }

    #[test]
    fn origins() {
        let host = "127.0.0.1:8470";
        assert!(origin_allowed("http://127.0.0.1:8470", host));
        assert!(origin_allowed("http://localhost:3000", host));
        assert!(origin_allowed("http://[::1]:1", host));
        assert!(origin_allowed(
            "https://weft.example.com",
            "weft.example.com"
        ));
        assert!(origin_allowed(
            "https://weft.example.com",
            "WEFT.example.com:443"
        ));
        assert!(origin_allowed(
            "http://weft.example.com:8470",
            "weft.example.com:8470"
        ));
        for bad in [
            "null",
            "http://evil.example",
            "http://evil.example:8470",
            "http://127.0.0.1.evil.com:8470",
            "http://localhost.evil.com:8470",
            "file://",
            "chrome-extension://abc",
            "http://user@weft.example.com",
            "http://weft.example.com/path",
            "",
        ] {
            assert!(!origin_allowed(bad, "weft.example.com"), "{bad}");
        }
        assert!(!origin_allowed(
            "https://weft.example.com",
            "weft.example.com:8470"
        ));
        assert!(!origin_allowed(
            "http://weft.example.com",
            "weft.example.com:443"
        ));
    }

    #[test]
    fn state_changing_requests_need_json_and_the_same_site() {
        let post = Method::POST;
        let uri: Uri = "/".parse().unwrap();
        let json = [
            ("host", "127.0.0.1:1"),
            ("content-type", "application/json"),
        ];
        assert!(check(true, &post, &uri, &hm(&json)).is_ok());
        for ct in [
            "application/x-amz-json-1.0",
            "application/x-amz-json-1.1",
            "application/json; charset=utf-8",
            "Application/JSON",
        ] {
            let h = hm(&[("host", "127.0.0.1:1"), ("content-type", ct)]);
            assert!(check(false, &post, &uri, &h).is_ok(), "{ct}");
        }
        for ct in [
            "text/plain",
            "text/plain; charset=application/json",
            "multipart/form-data; boundary=x",
            "application/x-www-form-urlencoded",
            "application/json-seq",
            "application/jsonx",
            "application/x-amz-json-1.2",
            "",
        ] {
            let h = hm(&[("host", "127.0.0.1:1"), ("content-type", ct)]);
            let e = check(false, &post, &uri, &h).unwrap_err();
            assert_eq!(e.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{ct}");
        }
        let e = check(false, &post, &uri, &hm(&[("host", "127.0.0.1:1")])).unwrap_err();
        assert_eq!(e.kind, "UnsupportedMediaTypeException");
        let two = hm(&[
            ("host", "127.0.0.1:1"),
            ("content-type", "application/json"),
            ("content-type", "text/plain"),
        ]);
        assert!(check(false, &post, &uri, &two).is_err());
        // GETs need neither
        assert!(check(false, &Method::GET, &uri, &hm(&[("origin", "null")])).is_ok());
        for (k, v) in [
            ("origin", "http://evil.example"),
            ("origin", "null"),
            ("sec-fetch-site", "cross-site"),
        ] {
            let h = hm(&[
                ("host", "127.0.0.1:1"),
                ("content-type", "application/json"),
                (k, v),
            ]);
            let e = check(false, &Method::PUT, &uri, &h).unwrap_err();
            assert_eq!(e.kind, "CrossSiteRequestRefused", "{k}: {v}");
        }
        let h = hm(&[
            ("host", "127.0.0.1:1"),
            ("content-type", "application/json"),
            ("sec-fetch-site", "same-origin"),
            ("origin", "http://127.0.0.1:1"),
        ]);
        assert!(check(true, &Method::DELETE, &uri, &h).is_ok());
    }

    #[test]
    fn no_auth_needs_a_loopback_host() {
        let uri: Uri = "/v1/dags".parse().unwrap();
        assert!(check(true, &Method::GET, &uri, &hm(&[("host", "localhost:8470")])).is_ok());
        assert!(check(
            false,
            &Method::GET,
            &uri,
            &hm(&[("host", "weft.example.com")])
        )
        .is_ok());
        for host in [
            "evil.example",
            "127.0.0.1.evil.com:8470",
            "localhost.evil.com",
        ] {
            let e = check(true, &Method::GET, &uri, &hm(&[("host", host)])).unwrap_err();
            assert_eq!(e.kind, "InvalidHostHeader", "{host}");
        }
        assert!(check(true, &Method::GET, &uri, &HeaderMap::new()).is_err());
        let two = hm(&[("host", "localhost"), ("host", "evil.example")]);
        assert!(check(true, &Method::GET, &uri, &two).is_err());
        let abs: Uri = "http://evil.example/v1/dags".parse().unwrap();
        let h = hm(&[("host", "localhost")]);
        assert!(check(true, &Method::GET, &abs, &h).is_err());
    }
}
