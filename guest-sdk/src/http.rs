//! Outgoing HTTP through the host import `weft:operator/http.send`. The host checks the grant's
//! `http:Request` allowlist on every request; a refusal is `Sandbox.PermissionDenied`.

use serde_json::Value;

use crate::bindings::weft::operator::http as wit;
use crate::TaskError;

/// An HTTP request (builder style).
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// `GET`, `POST`, ...
    pub method: String,
    /// Absolute `http://` or `https://` URL.
    pub url: String,
    /// Header name/value pairs, in order.
    pub headers: Vec<(String, String)>,
    /// Request body.
    pub body: Option<Vec<u8>>,
    /// Per-request timeout; the host applies its own bound as well.
    pub timeout_ms: Option<u32>,
}

impl Request {
    /// A request with any method.
    pub fn new(method: impl Into<String>, url: impl Into<String>) -> Self {
        Self {
            method: method.into(),
            url: url.into(),
            headers: Vec::new(),
            body: None,
            timeout_ms: None,
        }
    }
    /// `GET url`.
    pub fn get(url: impl Into<String>) -> Self {
        Self::new("GET", url)
    }
    /// `POST url`.
    pub fn post(url: impl Into<String>) -> Self {
        Self::new("POST", url)
    }
    /// Add a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
    /// Set a raw body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }
    /// Set a JSON body and `content-type: application/json` (unless already set).
    pub fn json(mut self, value: &Value) -> Self {
        if !self
            .headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        {
            self.headers
                .push(("content-type".into(), "application/json".into()));
        }
        self.body = Some(serde_json::to_vec(value).expect("a serde_json::Value always serializes"));
        self
    }
    /// Set a timeout in milliseconds.
    pub fn timeout_ms(mut self, ms: u32) -> Self {
        self.timeout_ms = Some(ms);
        self
    }
    /// Send it through the host.
    pub fn send(self) -> Result<Response, TaskError> {
        let req = wit::Request {
            method: self.method,
            url: self.url,
            headers: self.headers,
            body: self.body,
            timeout_ms: self.timeout_ms,
        };
        let resp = wit::send(&req)?;
        Ok(Response {
            status: resp.status,
            headers: resp.headers,
            body: resp.body,
        })
    }
}

/// An HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Header name/value pairs as received.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl Response {
    /// First header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    /// Body as UTF-8 (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// Body parsed as JSON; `Http.InvalidJson` otherwise.
    pub fn json(&self) -> Result<Value, TaskError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            TaskError::new(
                "Http.InvalidJson",
                format!("response body is not JSON: {e}"),
            )
        })
    }
    /// `Err(Http.StatusError)` unless the status is 2xx.
    pub fn error_for_status(self) -> Result<Self, TaskError> {
        if (200..300).contains(&self.status) {
            Ok(self)
        } else {
            let mut snippet = self.text();
            if snippet.len() > 200 {
                let mut cut = 200;
                while !snippet.is_char_boundary(cut) {
                    cut -= 1;
                }
                snippet.truncate(cut);
            }
            Err(TaskError::new(
                "Http.StatusError",
                format!("HTTP {}: {snippet}", self.status),
            ))
        }
    }
    /// Whether the content-type is JSON.
    pub fn is_json(&self) -> bool {
        self.header("content-type").is_some_and(|ct| {
            let ct = ct.to_ascii_lowercase();
            ct.starts_with("application/json") || ct.contains("+json")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_builder_and_response_helpers() {
        let r = Request::post("http://127.0.0.1/x").json(&serde_json::json!({"a": 1}));
        assert_eq!(
            r.headers,
            vec![("content-type".to_string(), "application/json".to_string())]
        );
        assert_eq!(r.body.as_deref(), Some(&b"{\"a\":1}"[..]));
        let resp = Response {
            status: 503,
            headers: vec![("Content-Type".into(), "application/problem+json".into())],
            body: b"{\"e\":1}".to_vec(),
        };
        assert!(resp.is_json());
        assert_eq!(
            resp.header("content-type"),
            Some("application/problem+json")
        );
        assert_eq!(resp.json().unwrap()["e"], 1);
        assert_eq!(
            resp.error_for_status().unwrap_err().error,
            "Http.StatusError"
        );
    }
}
