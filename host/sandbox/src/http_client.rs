//! The host side of the guest's `http.send`: a blocking request to the canonical URL the grant
//! was checked on, with a deadline, no redirects (a redirect could leave the allowed host; the
//! 3xx response is returned to the guest) and a capped response body. The guest may not set the
//! `Host` header (it would address another virtual host than the one authorised).

use crate::bindings::http;
use crate::http_url::CanonicalUrl;
use std::time::Duration;

fn err(error: &str, cause: impl Into<String>) -> http::HttpError {
    http::HttpError {
        error: error.into(),
        cause: cause.into(),
    }
}

pub(crate) fn send(
    url: &CanonicalUrl,
    req: http::Request,
    timeout: Duration,
    body_cap: usize,
) -> Result<http::Response, http::HttpError> {
    if timeout.is_zero() {
        return Err(err(
            "States.Timeout",
            "no time left before the task's deadline",
        ));
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .max_redirects(0)
        .http_status_as_error(false)
        .allow_non_standard_methods(true)
        .build()
        .into();
    let method =
        ::http::Method::from_bytes(req.method.to_ascii_uppercase().as_bytes()).map_err(|_| {
            err(
                "Http.BadRequest",
                format!("`{}` is not an HTTP method", req.method),
            )
        })?;
    let target = url.to_string();
    let uri: ::http::Uri = target
        .parse()
        .map_err(|e| err("Http.BadRequest", format!("{target}: {e}")))?;
    let mut builder = ::http::Request::builder().method(method).uri(uri);
    for (k, v) in &req.headers {
        if k.eq_ignore_ascii_case("host") {
            return Err(err(
                "Sandbox.PermissionDenied",
                "the Host header is set from the authorised URL and may not be given",
            ));
        }
        builder = builder.header(k.as_str(), v.as_str());
    }
    let result = match req.body {
        Some(body) => {
            let r = builder
                .body(body)
                .map_err(|e| err("Http.BadRequest", format!("{target}: {e}")))?;
            agent.run(r)
        }
        None => {
            let r = builder
                .body(())
                .map_err(|e| err("Http.BadRequest", format!("{target}: {e}")))?;
            agent.run(r)
        }
    };
    let resp = result.map_err(|e| match e {
        ureq::Error::Timeout(_) => err("States.Timeout", format!("{target}: {e}")),
        other => err("Http.ConnectionFailed", format!("{target}: {other}")),
    })?;
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = resp
        .into_body()
        .with_config()
        .limit(body_cap as u64)
        .read_to_vec()
        .map_err(|e| {
            err(
                "Http.ResponseTooLarge",
                format!("{target}: {e} (cap {body_cap} bytes)"),
            )
        })?;
    Ok(http::Response {
        status,
        headers,
        body,
    })
}
