//! HTTP requests the host makes on a definition's behalf (the HTTP Task), and the one
//! authorisation step they share with a guest's `http.send`: the request URL is canonicalised
//! once ([`crate::http_url::canonicalize`]), `http:Request` is evaluated on that canonical URL,
//! the decision becomes an [`AuditRecord`], and the request goes to that same URL through the
//! sandbox's client (deadline, no redirects, capped body).

use crate::bindings::http;
use crate::grant::{AuditRecord, Grant};
use crate::host::truncate;
use crate::http_url::CanonicalUrl;
use crate::policy::Effect;
use crate::resource::Request;
use std::time::Duration;

/// A request the host sends.
#[derive(Debug, Clone)]
pub struct OutboundRequest {
    /// The method (`GET`, `POST`, ...).
    pub method: String,
    /// The URL as written; it is canonicalised before the grant sees it.
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

/// The answer of a server (any status: redirects are not followed).
#[derive(Debug, Clone)]
pub struct OutboundResponse {
    pub status: u16,
    /// Header names as the client reports them (lowercase), in order, repeated names kept.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Why a request got no response: `error` is a weft error name (`Sandbox.PermissionDenied`,
/// `Http.ConnectionFailed`, `States.Timeout`, `Http.ResponseTooLarge`, `Http.BadRequest`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}: {cause}")]
pub struct OutboundError {
    pub error: String,
    pub cause: String,
}

/// Canonicalises `raw` and evaluates `http:Request` on it; the audit record says what was
/// decided (`reason`: the method and canonical URL, or why the URL was refused).
pub(crate) fn authorize(
    grant: &Grant,
    method: &str,
    raw: &str,
) -> (Result<CanonicalUrl, OutboundError>, AuditRecord) {
    let url = match crate::http_url::canonicalize(raw) {
        Ok(u) => u,
        Err(e) => {
            let record = AuditRecord {
                action: "http:Request".into(),
                resource: truncate(raw, 512).to_string(),
                decision: Effect::Deny,
                statement: None,
                reason: Some(e.reason.clone()),
            };
            let err = OutboundError {
                error: "Sandbox.PermissionDenied".into(),
                cause: e.to_string(),
            };
            return (Err(err), record);
        }
    };
    let canonical = url.to_string();
    let d = grant.evaluate_request("http:Request", &Request::Url(url.clone()));
    let record = AuditRecord::from_decision(
        "http:Request",
        &canonical,
        &d,
        Some(format!("{method} {canonical}")),
    );
    if !d.allowed() {
        let err = OutboundError {
            error: "Sandbox.PermissionDenied".into(),
            cause: format!("the grant does not allow http:Request on {canonical}"),
        };
        return (Err(err), record);
    }
    (Ok(url), record)
}

/// Sends `req` if `grant` allows `http:Request` on its canonical URL, within `timeout`, reading
/// at most `body_cap` bytes of the response body. The audit record is returned either way.
pub fn send(
    grant: &Grant,
    req: OutboundRequest,
    timeout: Duration,
    body_cap: usize,
) -> (Result<OutboundResponse, OutboundError>, AuditRecord) {
    let (url, record) = authorize(grant, &req.method, &req.url);
    let url = match url {
        Ok(u) => u,
        Err(e) => return (Err(e), record),
    };
    let wire = http::Request {
        method: req.method,
        url: req.url,
        headers: req.headers,
        body: req.body,
        timeout_ms: None,
    };
    let result = crate::http_client::send(&url, wire, timeout, body_cap)
        .map(|r| OutboundResponse {
            status: r.status,
            headers: r.headers,
            body: r.body,
        })
        .map_err(|e| OutboundError {
            error: e.error,
            cause: e.cause,
        });
    (result, record)
}
