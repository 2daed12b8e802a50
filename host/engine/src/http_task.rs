//! The HTTP Task (`arn:aws:states:::http:invoke`) built in: turns a Task's `Parameters`
//! (`ApiEndpoint`, `Method`, `Headers`, `QueryParameters`, `RequestBody`, `Transform`,
//! `Authentication.ConnectionArn`) into one request sent through the sandbox's outbound HTTP
//! path ([`weft_sandbox::outbound`]: one URL parser, the role's `http:Request` grant, no
//! redirects, a capped body), and its response into AWS's output shape
//! `{Headers, ResponseBody, StatusCode, StatusText}` or AWS's error names
//! (`States.Http.StatusCode.NNN`, `States.Http.Socket`).
//!
//! A connection ARN (`arn:aws:events:REGION:ACCOUNT:connection/NAME/ID` or
//! `weft:connection:NAME`) names the weft connection `NAME` (`weft connections ...`); the role
//! must allow `secrets:Get` on `secret:conn/NAME`, as for any other reader of that connection.
//! The connection's credentials (Basic, an API key header, or an OAuth client-credentials
//! token fetched through the same grant) and invocation parameters are added by the host, and
//! every secret value is replaced by `********` in everything this module returns (output,
//! error causes, audit records), so none reaches history, task logs, audit events or traces.

use serde_json::{Map, Value};
use std::time::{Duration, Instant};
use weft_asl::TaskFailure;
use weft_sandbox::{AuditRecord, Effect, Grant, OutboundRequest, SecretSource};

use crate::variables::{parse_connection, Kind};

/// The largest response body read (AWS's payload limit); a longer one fails the task with
/// `States.DataLimitExceeded`.
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024;

/// The deadline of an HTTP Task without `TimeoutSeconds` (AWS's HTTP Task gives up after 60 s,
/// with `States.Http.Socket`).
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(60);

/// How deep `RequestBody` and `QueryParameters` may nest when URL-encoded.
const MAX_ENCODE_DEPTH: usize = 32;

/// What replaces a secret value wherever it would be shown.
pub const REDACTED: &str = "********";

/// The resource of the HTTP Task.
pub fn is_http_invoke(kind: &weft_asl::resource::ResourceKind) -> bool {
    matches!(kind, weft_asl::resource::ResourceKind::Service { service, action }
        if service == "http" && action == "invoke")
}

/// Header names a definition may not set (AWS's list, plus `Authorization`, which comes from a
/// connection, and `Content-Length`, which the client computes).
const FORBIDDEN_HEADERS: &[&str] = &[
    "a-im",
    "accept-charset",
    "accept-datetime",
    "accept-encoding",
    "authorization",
    "cache-control",
    "connection",
    "content-encoding",
    "content-length",
    "content-md5",
    "date",
    "expect",
    "forwarded",
    "from",
    "host",
    "http2-settings",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "keep-alive",
    "max-forwards",
    "origin",
    "pragma",
    "proxy-authorization",
    "referer",
    "server",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "via",
    "warning",
];
const FORBIDDEN_HEADER_PREFIXES: &[&str] = &["x-forwarded-", "x-amz-", "x-amzn-"];

fn header_forbidden(name: &str) -> bool {
    let l = name.to_ascii_lowercase();
    FORBIDDEN_HEADERS.contains(&l.as_str())
        || FORBIDDEN_HEADER_PREFIXES.iter().any(|p| l.starts_with(p))
}

/// The result of one HTTP Task attempt.
#[derive(Debug)]
pub struct HttpTaskOutcome {
    /// The AWS-shaped output, or the task's error (secrets redacted in both).
    pub result: Result<Value, TaskFailure>,
    /// The `secrets:Get` and `http:Request` decisions taken (secrets redacted).
    pub audit: Vec<AuditRecord>,
    pub duration: Duration,
}

fn runtime(cause: impl Into<String>) -> TaskFailure {
    TaskFailure {
        error: "States.Runtime".into(),
        cause: cause.into(),
    }
}

/// How arrays are written in URL-encoded text (`Transform.RequestEncodingOptions.ArrayFormat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArrayFormat {
    /// `a[0]=x&a[1]=y` (AWS's default).
    Indices,
    /// `a=x&a=y`.
    Repeat,
    /// `a=x,y`.
    Commas,
    /// `a[]=x&a[]=y`.
    Brackets,
}

/// The Task's `Parameters`, checked.
#[derive(Debug)]
struct HttpParams<'a> {
    endpoint: &'a str,
    method: String,
    connection: Option<&'a str>,
    headers: Vec<(String, String)>,
    query: Option<&'a Map<String, Value>>,
    body: Option<&'a Value>,
    url_encoded: bool,
    arrays: ArrayFormat,
}

fn field_str<'a>(
    m: &'a Map<String, Value>,
    k: &str,
    at: &str,
) -> Result<Option<&'a str>, TaskFailure> {
    match m.get(k) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(runtime(format!("{at}/{k} must be a string"))),
    }
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

impl<'a> HttpParams<'a> {
    fn parse(p: &'a Value) -> Result<Self, TaskFailure> {
        const AT: &str = "/Parameters";
        let Some(m) = p.as_object() else {
            return Err(runtime(
                "/Parameters of an http:invoke Task must be an object with ApiEndpoint and Method",
            ));
        };
        for k in m.keys() {
            if !matches!(
                k.as_str(),
                "ApiEndpoint"
                    | "Method"
                    | "Authentication"
                    | "Headers"
                    | "QueryParameters"
                    | "RequestBody"
                    | "Transform"
            ) {
                return Err(runtime(format!(
                    "{AT}/{k}: not a field of the HTTP Task (ApiEndpoint, Method, Authentication, Headers, QueryParameters, RequestBody, Transform)"
                )));
            }
        }
        let endpoint = field_str(m, "ApiEndpoint", AT)?
            .ok_or_else(|| runtime(format!("{AT}/ApiEndpoint is required")))?;
        let method = field_str(m, "Method", AT)?
            .ok_or_else(|| runtime(format!("{AT}/Method is required")))?
            .to_ascii_uppercase();
        if !matches!(
            method.as_str(),
            "GET" | "POST" | "PUT" | "DELETE" | "PATCH" | "OPTIONS" | "HEAD"
        ) {
            return Err(runtime(format!(
                "{AT}/Method: `{method}` is not one of GET, POST, PUT, DELETE, PATCH, OPTIONS, HEAD"
            )));
        }
        let connection = match m.get("Authentication") {
            None => None,
            Some(Value::Object(a)) => {
                if let Some(k) = a.keys().find(|k| k.as_str() != "ConnectionArn") {
                    return Err(runtime(format!(
                        "{AT}/Authentication/{k}: only ConnectionArn is supported"
                    )));
                }
                Some(
                    field_str(a, "ConnectionArn", "/Parameters/Authentication")?.ok_or_else(
                        || runtime(format!("{AT}/Authentication/ConnectionArn is required")),
                    )?,
                )
            }
            Some(_) => return Err(runtime(format!("{AT}/Authentication must be an object"))),
        };
        let mut headers = Vec::new();
        match m.get("Headers") {
            None => {}
            Some(Value::Object(h)) => {
                for (k, v) in h {
                    if header_forbidden(k) {
                        return Err(runtime(format!(
                            "{AT}/Headers/{k}: this header may not be set by a definition{}",
                            if k.eq_ignore_ascii_case("authorization") {
                                " (name a connection in Authentication.ConnectionArn instead)"
                            } else {
                                ""
                            }
                        )));
                    }
                    let v = scalar_text(v).ok_or_else(|| {
                        runtime(format!(
                            "{AT}/Headers/{k} must be a string, number or boolean"
                        ))
                    })?;
                    headers.push((k.clone(), v));
                }
            }
            Some(_) => return Err(runtime(format!("{AT}/Headers must be an object"))),
        }
        let query = match m.get("QueryParameters") {
            None => None,
            Some(Value::Object(q)) => Some(q),
            Some(_) => return Err(runtime(format!("{AT}/QueryParameters must be an object"))),
        };
        let (mut url_encoded, mut arrays) = (false, ArrayFormat::Indices);
        match m.get("Transform") {
            None => {}
            Some(Value::Object(t)) => {
                for (k, v) in t {
                    match (k.as_str(), v) {
                        ("RequestBodyEncoding", Value::String(e)) => match e.as_str() {
                            "NONE" => url_encoded = false,
                            "URL_ENCODED" => url_encoded = true,
                            other => {
                                return Err(runtime(format!(
                                    "{AT}/Transform/RequestBodyEncoding: `{other}` is not NONE or URL_ENCODED"
                                )))
                            }
                        },
                        ("RequestEncodingOptions", Value::Object(o)) => {
                            for (ok, ov) in o {
                                arrays = match (ok.as_str(), ov.as_str()) {
                                    ("ArrayFormat", Some("INDICES")) => ArrayFormat::Indices,
                                    ("ArrayFormat", Some("REPEAT")) => ArrayFormat::Repeat,
                                    ("ArrayFormat", Some("COMMAS")) => ArrayFormat::Commas,
                                    ("ArrayFormat", Some("BRACKETS")) => ArrayFormat::Brackets,
                                    _ => {
                                        return Err(runtime(format!(
                                            "{AT}/Transform/RequestEncodingOptions/{ok}: expected ArrayFormat INDICES, REPEAT, COMMAS or BRACKETS"
                                        )))
                                    }
                                };
                            }
                        }
                        _ => {
                            return Err(runtime(format!(
                                "{AT}/Transform/{k}: expected RequestBodyEncoding (NONE | URL_ENCODED) or RequestEncodingOptions"
                            )))
                        }
                    }
                }
            }
            Some(_) => return Err(runtime(format!("{AT}/Transform must be an object"))),
        }
        Ok(Self {
            endpoint,
            method,
            connection,
            headers,
            query,
            body: m.get("RequestBody"),
            url_encoded,
            arrays,
        })
    }
}

/// Flattens a JSON value into URL-encoded pairs (`a[b]=c`, arrays per `fmt`).
fn flatten(
    key: &str,
    v: &Value,
    fmt: ArrayFormat,
    depth: usize,
    out: &mut Vec<(String, String)>,
) -> Result<(), String> {
    if depth > MAX_ENCODE_DEPTH {
        return Err(format!(
            "`{key}` nests deeper than {MAX_ENCODE_DEPTH} levels"
        ));
    }
    match v {
        Value::Null => out.push((key.to_string(), String::new())),
        Value::Object(m) => {
            for (k, x) in m {
                flatten(&format!("{key}[{k}]"), x, fmt, depth + 1, out)?;
            }
        }
        Value::Array(items) => {
            match fmt {
                ArrayFormat::Indices => {
                    for (i, x) in items.iter().enumerate() {
                        flatten(&format!("{key}[{i}]"), x, fmt, depth + 1, out)?;
                    }
                }
                ArrayFormat::Repeat => {
                    for x in items {
                        flatten(key, x, fmt, depth + 1, out)?;
                    }
                }
                ArrayFormat::Brackets => {
                    for x in items {
                        flatten(&format!("{key}[]"), x, fmt, depth + 1, out)?;
                    }
                }
                ArrayFormat::Commas => {
                    let parts: Option<Vec<String>> = items.iter().map(scalar_text).collect();
                    let parts = parts.ok_or_else(|| {
                    format!("`{key}`: ArrayFormat COMMAS can only join strings, numbers and booleans")
                })?;
                    out.push((key.to_string(), parts.join(",")));
                }
            }
        }
        other => out.push((key.to_string(), scalar_text(other).unwrap_or_default())),
    }
    Ok(())
}

/// `application/x-www-form-urlencoded` text of an object.
pub fn url_encode(m: &Map<String, Value>, fmt: ArrayFormat) -> Result<String, String> {
    let mut pairs = Vec::new();
    for (k, v) in m {
        flatten(k, v, fmt, 0, &mut pairs)?;
    }
    Ok(form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish())
}

/// A connection ARN as the name of a weft connection: `arn:PARTITION:events:REGION:ACCOUNT:
/// connection/NAME[/ID]` or `weft:connection:NAME`.
pub fn connection_name(arn: &str) -> Result<&str, String> {
    let bad = || {
        format!(
            "`{arn}` is not a connection ARN (arn:aws:events:REGION:ACCOUNT:connection/NAME/ID or weft:connection:NAME)"
        )
    };
    if let Some(n) = arn.strip_prefix("weft:connection:") {
        return Ok(n);
    }
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() != 6 || parts[0] != "arn" || parts[2] != "events" {
        return Err(bad());
    }
    let rest = parts[5].strip_prefix("connection/").ok_or_else(bad)?;
    let name = match rest.split_once('/') {
        Some((n, id)) if !id.is_empty() && !id.contains('/') => n,
        Some(_) => return Err(bad()),
        None => rest,
    };
    Ok(name)
}

/// What a connection adds to a request.
#[derive(Default)]
struct ConnectionParts {
    headers: Vec<(String, String)>,
    query: Vec<(String, String)>,
    body: Map<String, Value>,
    /// Values never to show.
    secrets: Vec<String>,
    /// The token request of an OAuth client-credentials connection.
    oauth: Option<OAuthRequest>,
}

/// The largest answer read from an OAuth authorization endpoint.
const MAX_TOKEN_RESPONSE_BYTES: usize = 64 * 1024;

/// How an OAuth client-credentials connection gets its access token (EventBridge's
/// `OAuthParameters`): the client id and secret as Basic authentication, the
/// `OAuthHttpParameters` added, `grant_type=client_credentials` unless they name one.
struct OAuthRequest {
    endpoint: String,
    method: String,
    headers: Vec<(String, String)>,
    query: Vec<(String, String)>,
    body: Vec<(String, String)>,
}

/// EventBridge's `{Key, Value, IsValueSecret}` list.
fn key_values(
    v: Option<&Value>,
    at: &str,
    secrets: &mut Vec<String>,
) -> Result<Vec<(String, String)>, String> {
    let Some(v) = v else { return Ok(Vec::new()) };
    let items = v.as_array().ok_or_else(|| format!("{at} must be a list"))?;
    let mut out = Vec::new();
    for (i, it) in items.iter().enumerate() {
        let k = it.get("Key").and_then(Value::as_str);
        let val = it.get("Value").and_then(scalar_text);
        let (Some(k), Some(val)) = (k, val) else {
            return Err(format!("{at}/{i} needs a Key and a Value"));
        };
        if it
            .get("IsValueSecret")
            .and_then(Value::as_bool)
            .unwrap_or(false)
            && !val.is_empty()
        {
            secrets.push(val.clone());
        }
        out.push((k.to_string(), val));
    }
    Ok(out)
}

/// Reads a weft connection as an HTTP Task connection: Basic authentication from `login` and
/// `password` (or `extra.AuthorizationType` = `BASIC`), an API key header
/// (`extra.AuthorizationType` = `API_KEY`, `extra.ApiKeyName`, the key in `password`), and
/// EventBridge's `extra.InvocationHttpParameters` (`HeaderParameters`,
/// `QueryStringParameters`, `BodyParameters`).
fn connection_parts(value: &str) -> Result<ConnectionParts, String> {
    use base64::Engine as _;
    // parse errors can quote the value (serde shows a mistyped field's content): not shown
    let c = parse_connection(value).map_err(|_| {
        "it is not a connection (a JSON object of connection fields or a URI); the parse error is not shown because the value holds credentials".to_string()
    })?;
    let extra: Map<String, Value> = match c.extra.as_deref() {
        None | Some("") => Map::new(),
        Some(t) => match serde_json::from_str(t) {
            Ok(Value::Object(m)) => m,
            _ => return Err("`extra` must be a JSON object".into()),
        },
    };
    let mut parts = ConnectionParts::default();
    if let Some(p) = c.password.as_ref().filter(|p| !p.is_empty()) {
        parts.secrets.push(p.clone());
    }
    let kind = match extra.get("AuthorizationType").and_then(Value::as_str) {
        Some(k) => k.to_ascii_uppercase(),
        None if c.login.is_some() => "BASIC".into(),
        None => "NONE".into(),
    };
    match kind.as_str() {
        "NONE" => {}
        "BASIC" => {
            let user = c.login.clone().unwrap_or_default();
            let token = base64::engine::general_purpose::STANDARD
                .encode(format!("{user}:{}", c.password.clone().unwrap_or_default()));
            parts.secrets.push(token.clone());
            parts
                .headers
                .push(("Authorization".into(), format!("Basic {token}")));
        }
        "API_KEY" => {
            let name = extra
                .get("ApiKeyName")
                .and_then(Value::as_str)
                .ok_or("API_KEY authorization needs extra.ApiKeyName (the header to send)")?;
            let key = c
                .password
                .clone()
                .ok_or("API_KEY authorization needs the key in `password`")?;
            parts.headers.push((name.to_string(), key));
        }
        "OAUTH_CLIENT_CREDENTIALS" => {
            let at = "extra.OAuthHttpParameters";
            let endpoint = extra
                .get("AuthorizationEndpoint")
                .and_then(Value::as_str)
                .ok_or("OAUTH_CLIENT_CREDENTIALS needs extra.AuthorizationEndpoint")?;
            let method = extra
                .get("HttpMethod")
                .and_then(Value::as_str)
                .unwrap_or("POST")
                .to_ascii_uppercase();
            if !matches!(method.as_str(), "GET" | "POST" | "PUT") {
                return Err(format!(
                    "extra.HttpMethod `{method}` is not GET, POST or PUT"
                ));
            }
            let client = c
                .login
                .clone()
                .ok_or("OAUTH_CLIENT_CREDENTIALS needs the client id in `login`")?;
            let basic = base64::engine::general_purpose::STANDARD.encode(format!(
                "{client}:{}",
                c.password.clone().unwrap_or_default()
            ));
            parts.secrets.push(basic.clone());
            let p = extra.get("OAuthHttpParameters");
            let mut headers = key_values(
                p.and_then(|p| p.get("HeaderParameters")),
                &format!("{at}.HeaderParameters"),
                &mut parts.secrets,
            )?;
            headers.push(("Authorization".into(), format!("Basic {basic}")));
            let query = key_values(
                p.and_then(|p| p.get("QueryStringParameters")),
                &format!("{at}.QueryStringParameters"),
                &mut parts.secrets,
            )?;
            let mut body = key_values(
                p.and_then(|p| p.get("BodyParameters")),
                &format!("{at}.BodyParameters"),
                &mut parts.secrets,
            )?;
            if !body.iter().any(|(k, _)| k == "grant_type") {
                body.insert(0, ("grant_type".into(), "client_credentials".into()));
            }
            parts.oauth = Some(OAuthRequest {
                endpoint: endpoint.to_string(),
                method,
                headers,
                query,
                body,
            });
        }
        other => {
            return Err(format!(
                "AuthorizationType `{other}` is not supported (BASIC, API_KEY or OAUTH_CLIENT_CREDENTIALS)"
            ))
        }
    }
    if let Some(inv) = extra.get("InvocationHttpParameters") {
        let at = "extra.InvocationHttpParameters";
        parts.headers.extend(key_values(
            inv.get("HeaderParameters"),
            &format!("{at}.HeaderParameters"),
            &mut parts.secrets,
        )?);
        parts.query = key_values(
            inv.get("QueryStringParameters"),
            &format!("{at}.QueryStringParameters"),
            &mut parts.secrets,
        )?;
        for (k, v) in key_values(
            inv.get("BodyParameters"),
            &format!("{at}.BodyParameters"),
            &mut parts.secrets,
        )? {
            parts.body.insert(k, Value::String(v));
        }
    }
    for (k, _) in &parts.headers {
        if header_forbidden(k) && !k.eq_ignore_ascii_case("authorization") {
            return Err(format!("header `{k}` may not be set"));
        }
    }
    Ok(parts)
}

/// The task error of a request that got no response.
fn outbound_error_name(error: &str, state_timeout: bool) -> &'static str {
    match error {
        "Sandbox.PermissionDenied" => "Sandbox.PermissionDenied",
        "States.Timeout" if state_timeout => "States.Timeout",
        "States.Timeout" | "Http.ConnectionFailed" => "States.Http.Socket",
        "Http.ResponseTooLarge" => "States.DataLimitExceeded",
        _ => "States.Runtime",
    }
}

/// Asks an OAuth authorization endpoint for an access token (through the role's
/// `http:Request`, like the task's own request); the token is the answer's `access_token`.
fn access_token(
    grant: &Grant,
    o: OAuthRequest,
    state_timeout: Option<Duration>,
    audit: &mut Vec<AuditRecord>,
) -> Result<String, TaskFailure> {
    let mut url = o.endpoint;
    if !o.query.is_empty() {
        let q = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(o.query)
            .finish();
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(&q);
    }
    let mut headers = o.headers;
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(o.body)
        .finish();
    let body = if o.method == "GET" {
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(&body);
        None
    } else {
        set_header(
            &mut headers,
            "Content-Type",
            "application/x-www-form-urlencoded".into(),
        );
        Some(body.into_bytes())
    };
    set_header(&mut headers, "Accept", "application/json".into());
    let req = OutboundRequest {
        method: o.method,
        url,
        headers,
        body,
    };
    let timeout = state_timeout.unwrap_or(DEFAULT_HTTP_TIMEOUT);
    let (resp, record) =
        weft_sandbox::outbound::send(grant, req, timeout, MAX_TOKEN_RESPONSE_BYTES);
    audit.push(record);
    let resp = resp.map_err(|e| TaskFailure {
        error: outbound_error_name(&e.error, state_timeout.is_some()).into(),
        cause: format!("the authorization endpoint: {}", e.cause),
    })?;
    if !(200..300).contains(&resp.status) {
        return Err(runtime(format!(
            "the authorization endpoint answered {} (its body is not shown)",
            resp.status
        )));
    }
    let v: Value = serde_json::from_slice(&resp.body)
        .map_err(|_| runtime("the authorization endpoint's answer is not JSON"))?;
    match v.get("access_token").and_then(Value::as_str) {
        Some(t) if !t.is_empty() => Ok(t.to_string()),
        _ => Err(runtime(
            "the authorization endpoint's answer has no access_token",
        )),
    }
}

/// Replaces secret values (as written, URL-encoded and percent-encoded) with [`REDACTED`].
#[derive(Default)]
struct Redactor(Vec<String>);

impl Redactor {
    fn add(&mut self, secret: &str) {
        if secret.is_empty() {
            return;
        }
        // a value such as `Bearer TOKEN` hides its token also when it is shown alone
        for word in secret
            .split_whitespace()
            .filter(|w| w.len() >= 8 && *w != secret)
        {
            self.add(word);
        }
        let form: String = form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        // the canonical URL (audit records) decodes `%7E` back to `~`
        let canonical = form.replace("%7E", "~");
        for s in [
            secret.to_string(),
            form.replace('+', "%20"),
            canonical.replace('+', "%20"),
            canonical,
            form,
        ] {
            if !self.0.contains(&s) {
                self.0.push(s);
            }
        }
        // longest first, so a secret that contains another is replaced whole
        self.0.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }

    fn text(&self, s: &str) -> String {
        let mut out = s.to_string();
        for secret in &self.0 {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), REDACTED);
            }
        }
        out
    }

    fn value(&self, v: &mut Value) {
        match v {
            Value::String(s) if self.0.iter().any(|x| s.contains(x.as_str())) => {
                *s = self.text(s);
            }
            Value::Array(a) => a.iter_mut().for_each(|x| self.value(x)),
            Value::Object(m) => {
                let keys: Vec<String> = m.keys().cloned().collect();
                for k in keys {
                    if let Some(mut x) = m.remove(&k) {
                        self.value(&mut x);
                        m.insert(self.text(&k), x);
                    }
                }
            }
            _ => {}
        }
    }
}

fn has_header(headers: &[(String, String)], name: &str) -> bool {
    headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name))
}

/// Sets `k` to `v`, replacing any header of that name.
fn set_header(headers: &mut Vec<(String, String)>, k: &str, v: String) {
    headers.retain(|(h, _)| !h.eq_ignore_ascii_case(k));
    headers.push((k.to_string(), v));
}

/// The AWS-shaped output of a response.
fn output_of(resp: weft_sandbox::OutboundResponse) -> Value {
    let mut headers = Map::new();
    let mut json_body = false;
    for (k, v) in resp.headers {
        let k = k.to_ascii_lowercase();
        if k == "content-type" {
            let t = v.to_ascii_lowercase();
            json_body = t.starts_with("application/json") || t.contains("+json");
        }
        if let Value::Array(a) = headers.entry(k).or_insert_with(|| Value::Array(Vec::new())) {
            a.push(Value::String(v));
        }
    }
    let text = String::from_utf8_lossy(&resp.body).into_owned();
    let body = if json_body && !text.trim().is_empty() {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    } else {
        Value::String(text)
    };
    let status = http::StatusCode::from_u16(resp.status).ok();
    serde_json::json!({
        "Headers": headers,
        "ResponseBody": body,
        "StatusCode": resp.status,
        "StatusText": status.and_then(|s| s.canonical_reason()).unwrap_or(""),
    })
}

/// Runs one HTTP Task: `parameters` are the state's effective `Parameters`, `grant` the
/// execution role (narrowed by `Credentials`), `state_timeout` the state's `TimeoutSeconds`:
/// past it the task fails with `States.Timeout`; without it the request gets
/// [`DEFAULT_HTTP_TIMEOUT`] and fails with `States.Http.Socket`, as on AWS.
pub fn invoke(
    grant: &Grant,
    secrets: &dyn SecretSource,
    parameters: &Value,
    state_timeout: Option<Duration>,
) -> HttpTaskOutcome {
    let started = Instant::now();
    let mut audit = Vec::new();
    let mut redact = Redactor::default();
    let mut result = invoke_inner(
        grant,
        secrets,
        parameters,
        state_timeout,
        &mut audit,
        &mut redact,
    );
    match &mut result {
        Ok(v) => redact.value(v),
        Err(f) => f.cause = redact.text(&f.cause),
    }
    for a in &mut audit {
        a.resource = redact.text(&a.resource);
        a.reason = a.reason.as_deref().map(|r| redact.text(r));
    }
    for a in &audit {
        tracing::info!(
            action = %a.action,
            resource = %a.resource,
            decision = ?a.decision,
            statement = a.statement.as_deref().unwrap_or("-"),
            "HTTP Task access"
        );
    }
    HttpTaskOutcome {
        result,
        audit,
        duration: started.elapsed(),
    }
}

fn invoke_inner(
    grant: &Grant,
    secrets: &dyn SecretSource,
    parameters: &Value,
    state_timeout: Option<Duration>,
    audit: &mut Vec<AuditRecord>,
    redact: &mut Redactor,
) -> Result<Value, TaskFailure> {
    let started = Instant::now();
    let p = HttpParams::parse(parameters)?;
    let conn = match p.connection {
        None => ConnectionParts::default(),
        Some(arn) => {
            let at = "/Parameters/Authentication/ConnectionArn";
            let name = connection_name(arn).map_err(|e| runtime(format!("{at}: {e}")))?;
            let secret = Kind::Connection
                .secret(name)
                .map_err(|e| runtime(format!("{at}: {e}")))?;
            let resource = secret.resource();
            let d = grant.evaluate("secrets:Get", &resource);
            let mut record = AuditRecord {
                action: "secrets:Get".into(),
                resource: resource.clone(),
                decision: d.effect,
                statement: d.statement.clone(),
                reason: Some(format!("HTTP Task connection {arn}")),
            };
            if !d.allowed() {
                audit.push(record);
                return Err(TaskFailure {
                    error: "Sandbox.PermissionDenied".into(),
                    cause: format!(
                        "{at}: the execution role does not allow secrets:Get on {resource}"
                    ),
                });
            }
            let Some(value) = secrets.secret(&secret) else {
                record.reason = Some("allowed, but no such connection is set".into());
                audit.push(record);
                return Err(runtime(format!(
                    "{at}: no connection named `{name}` is set (weft connections set {name} ...)"
                )));
            };
            audit.push(record);
            let mut parts = connection_parts(&value)
                .map_err(|e| runtime(format!("{at}: connection `{name}`: {e}")))?;
            for s in &parts.secrets {
                redact.add(s);
            }
            if let Some(o) = parts.oauth.take() {
                let token =
                    access_token(grant, o, state_timeout, audit).map_err(|e| TaskFailure {
                        error: e.error,
                        cause: format!("{at}: connection `{name}`: {}", e.cause),
                    })?;
                redact.add(&token);
                parts
                    .headers
                    .push(("Authorization".into(), format!("Bearer {token}")));
            }
            parts
        }
    };
    // the URL: ApiEndpoint, then QueryParameters, then the connection's query parameters
    // (a connection's value wins over the definition's for the same key)
    let mut query_pairs = Vec::new();
    if let Some(q) = p.query {
        for (k, v) in q {
            if conn.query.iter().any(|(ck, _)| ck == k) {
                continue;
            }
            flatten(k, v, p.arrays, 0, &mut query_pairs)
                .map_err(|e| runtime(format!("/Parameters/QueryParameters: {e}")))?;
        }
    }
    query_pairs.extend(conn.query.iter().cloned());
    let mut url = p.endpoint.to_string();
    if !query_pairs.is_empty() {
        let q = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(query_pairs)
            .finish();
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(&q);
    }
    // headers: the definition's, the connection's winning
    let mut headers = p.headers.clone();
    for (k, v) in &conn.headers {
        set_header(&mut headers, k, v.clone());
    }
    // the body: the definition's, merged with the connection's body parameters
    let body_value: Option<Value> = match (p.body, conn.body.is_empty()) {
        (b, true) => b.cloned(),
        (None, false) => Some(Value::Object(conn.body.clone())),
        (Some(Value::Object(m)), false) => {
            let mut m = m.clone();
            m.extend(conn.body.clone());
            Some(Value::Object(m))
        }
        (Some(_), false) => {
            return Err(runtime(
                "/Parameters/RequestBody: the connection adds body parameters, so RequestBody must be an object",
            ))
        }
    };
    let body = match body_value {
        None => None,
        Some(Value::Object(m)) if p.url_encoded => {
            let text = url_encode(&m, p.arrays)
                .map_err(|e| runtime(format!("/Parameters/RequestBody: {e}")))?;
            if !has_header(&headers, "content-type") {
                headers.push((
                    "Content-Type".into(),
                    "application/x-www-form-urlencoded".into(),
                ));
            }
            Some(text.into_bytes())
        }
        Some(_) if p.url_encoded => {
            return Err(runtime(
                "/Parameters/RequestBody: URL_ENCODED needs an object",
            ))
        }
        Some(Value::String(s)) => Some(s.into_bytes()),
        Some(v) => {
            if !has_header(&headers, "content-type") {
                headers.push(("Content-Type".into(), "application/json".into()));
            }
            Some(v.to_string().into_bytes())
        }
    };
    let req = OutboundRequest {
        method: p.method.clone(),
        url,
        headers,
        body,
    };
    // one deadline for the token request (if any) and this one
    let timeout = state_timeout
        .unwrap_or(DEFAULT_HTTP_TIMEOUT)
        .saturating_sub(started.elapsed());
    let (resp, record) = weft_sandbox::outbound::send(grant, req, timeout, MAX_RESPONSE_BYTES);
    let denied = record.decision == Effect::Deny;
    audit.push(record);
    let resp = resp.map_err(|e| TaskFailure {
        error: if denied {
            "Sandbox.PermissionDenied"
        } else {
            outbound_error_name(&e.error, state_timeout.is_some())
        }
        .to_string(),
        cause: e.cause,
    })?;
    let status = resp.status;
    let out = output_of(resp);
    if !(200..300).contains(&status) {
        let mut shown = out;
        redact.value(&mut shown);
        return Err(TaskFailure {
            error: format!("States.Http.StatusCode.{status}"),
            cause: shown.to_string(),
        });
    }
    Ok(out)
}

impl crate::asl_tasks::SandboxTaskRunner<'_> {
    /// Runs an HTTP Task with the execution role (narrowed by `Credentials`) and the process's
    /// secrets; the attempt's audit decisions are kept in the runner's task logs.
    pub(crate) fn run_http_task(
        &self,
        req: &weft_asl::TaskRequest<'_>,
    ) -> Result<Value, TaskFailure> {
        // parsing refuses these already; a resource built by other means is refused too
        if req.resource.pattern != weft_asl::resource::IntegrationPattern::RequestResponse {
            return Err(runtime(format!(
                "/Resource: `{}`: the HTTP Task is request-response only (no .sync or .waitForTaskToken)",
                req.resource.raw
            )));
        }
        let grant = Grant::for_requests(self.layers(req.credentials.as_ref())?, &self.base_dir);
        let state_timeout = req
            .timeout_seconds
            .map(|t| Duration::from_secs(t.min(365 * 24 * 3600)));
        let out = invoke(
            &grant,
            self.host.secrets.as_ref(),
            &req.parameters,
            state_timeout,
        );
        tracing::info!(
            task = %req.state_name,
            attempt = req.attempt,
            duration_ms = out.duration.as_secs_f64() * 1000.0,
            error = out.result.as_ref().err().map(|e| e.error.as_str()).unwrap_or("-"),
            "HTTP Task"
        );
        self.logs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(crate::asl_tasks::TaskLog {
                state: req.state_name.to_string(),
                plugin: "arn:aws:states:::http:invoke".into(),
                attempt: req.attempt,
                logs: Vec::new(),
                stdout: String::new(),
                stderr: String::new(),
                audit: out.audit,
            });
        out.result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn connection_arns_name_weft_connections() {
        assert_eq!(
            connection_name(
                "arn:aws:events:us-east-2:123456789012:connection/Stripe/81210c42-8af1-456b-9c4a-6ff02fc664ac"
            ),
            Ok("Stripe")
        );
        assert_eq!(
            connection_name("arn:aws:events:us-east-1:1:connection/x"),
            Ok("x")
        );
        assert_eq!(connection_name("weft:connection:api"), Ok("api"));
        for bad in [
            "arn:aws:secretsmanager:us-east-1:1:secret:x",
            "arn:aws:events:us-east-1:1:rule/x",
            "arn:aws:events:us-east-1:1:connection/a/b/c",
            "arn:aws:events:us-east-1:1:connection/a/",
            "conn/x",
        ] {
            assert!(connection_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn array_formats_encode_like_aws() {
        let m = json!({"array": ["a", "b"], "n": 1, "o": {"k": "v w"}});
        let m = m.as_object().unwrap();
        assert_eq!(
            url_encode(m, ArrayFormat::Indices).unwrap(),
            "array%5B0%5D=a&array%5B1%5D=b&n=1&o%5Bk%5D=v+w"
        );
        assert_eq!(
            url_encode(m, ArrayFormat::Repeat).unwrap(),
            "array=a&array=b&n=1&o%5Bk%5D=v+w"
        );
        assert_eq!(
            url_encode(m, ArrayFormat::Brackets).unwrap(),
            "array%5B%5D=a&array%5B%5D=b&n=1&o%5Bk%5D=v+w"
        );
        assert_eq!(
            url_encode(m, ArrayFormat::Commas).unwrap(),
            "array=a%2Cb&n=1&o%5Bk%5D=v+w"
        );
        // nesting bombs are refused, not recursed into
        let mut deep = json!("x");
        for _ in 0..100 {
            deep = json!({ "a": deep });
        }
        let deep = json!({ "d": deep });
        assert!(url_encode(deep.as_object().unwrap(), ArrayFormat::Indices).is_err());
    }

    #[test]
    fn bad_parameters_say_where() {
        for (p, want) in [
            (
                json!({"Method": "GET"}),
                "/Parameters/ApiEndpoint is required",
            ),
            (
                json!({"ApiEndpoint": "http://x/", "Method": "FETCH"}),
                "/Parameters/Method",
            ),
            (
                json!({"ApiEndpoint": "http://x/", "Method": "GET", "Headers": {"Host": "evil"}}),
                "/Parameters/Headers/Host",
            ),
            (
                json!({"ApiEndpoint": "http://x/", "Method": "GET", "Headers": {"X-Amz-Date": "1"}}),
                "/Parameters/Headers/X-Amz-Date",
            ),
            (
                json!({"ApiEndpoint": "http://x/", "Method": "GET", "Headers": {"authorization": "Bearer x"}}),
                "ConnectionArn instead",
            ),
            (
                json!({"ApiEndpoint": "http://x/", "Method": "GET", "Transform": {"RequestBodyEncoding": "GZIP"}}),
                "/Parameters/Transform/RequestBodyEncoding",
            ),
            (
                json!({"ApiEndpoint": "http://x/", "Method": "GET", "Url": "y"}),
                "/Parameters/Url",
            ),
        ] {
            let e = HttpParams::parse(&p).unwrap_err();
            assert_eq!(e.error, "States.Runtime");
            assert!(e.cause.contains(want), "{} lacks {want}", e.cause);
        }
    }

    #[test]
    fn redaction_covers_encodings_and_keys() {
        let mut r = Redactor::default();
        r.add("p@ss word");
        assert_eq!(r.text("x p@ss word y"), format!("x {REDACTED} y"));
        assert_eq!(r.text("q=p%40ss+word"), format!("q={REDACTED}"));
        assert_eq!(r.text("q=p%40ss%20word"), format!("q={REDACTED}"));
        r.add("Bearer tok-0123456789");
        assert_eq!(r.text("t=tok-0123456789"), format!("t={REDACTED}"));
        r.add("t~ x");
        assert_eq!(
            r.text("q=t~+x&r=t%7E+x"),
            format!("q={REDACTED}&r={REDACTED}")
        );
        let mut v = json!({"p@ss word": ["a p@ss word"]});
        r.value(&mut v);
        assert_eq!(v, json!({ REDACTED: [format!("a {REDACTED}")] }));
    }

    /// An HTTP/1.1 server on 127.0.0.1 for one test: answers by path, records every request
    /// (head and body) and stops when dropped.
    struct LocalServer {
        port: u16,
        seen: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
        stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
        thread: Option<std::thread::JoinHandle<()>>,
    }

    fn read_request(s: &mut std::net::TcpStream) -> String {
        use std::io::Read;
        let mut data = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            let k = s.read(&mut buf).unwrap_or(0);
            if k == 0 {
                break;
            }
            data.extend_from_slice(&buf[..k]);
            let text = String::from_utf8_lossy(&data).to_string();
            if let Some(end) = text.find("\r\n\r\n") {
                let len = text[..end]
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                    })
                    .unwrap_or(0);
                if data.len() >= end + 4 + len {
                    break;
                }
            }
        }
        String::from_utf8_lossy(&data).into_owned()
    }

    fn answer(req: &str, port: u16) -> (String, Vec<(String, String)>, Vec<u8>) {
        let target = req.split(' ').nth(1).unwrap_or("/").to_string();
        let path = target.split('?').next().unwrap_or("").to_string();
        let json = ("content-type".to_string(), "application/json".to_string());
        match path.as_str() {
            "/missing" => (
                "404 Not Found".into(),
                vec![json],
                br#"{"message":"no such thing"}"#.to_vec(),
            ),
            "/text" => (
                "200 OK".into(),
                vec![("content-type".into(), "text/plain".into())],
                b"hello".to_vec(),
            ),
            "/redirect" => (
                "302 Found".into(),
                vec![(
                    "location".into(),
                    format!("http://127.0.0.1:{port}/private/stolen"),
                )],
                Vec::new(),
            ),
            "/huge" => ("200 OK".into(), vec![json], vec![b' '; 1 << 20]),
            // an OAuth authorization endpoint: a token for the right client, else 401
            "/token" | "/token-echo" => {
                let basic = base64::Engine::encode(
                    &base64::engine::general_purpose::STANDARD,
                    format!("cid:{CLIENT_SECRET}"),
                );
                if req.contains(&format!("authorization: Basic {basic}"))
                    && req.ends_with("grant_type=client_credentials&scope=read")
                {
                    let token = if path == "/token" { ACCESS_TOKEN } else { "" };
                    (
                        "200 OK".into(),
                        vec![json],
                        serde_json::json!({"access_token": token, "token_type": "Bearer"})
                            .to_string()
                            .into_bytes(),
                    )
                } else {
                    (
                        "401 Unauthorized".into(),
                        vec![json],
                        serde_json::json!({ "request": req })
                            .to_string()
                            .into_bytes(),
                    )
                }
            }
            // echoes the whole request (a careless or hostile server echoing credentials)
            "/echo" | "/echo-missing" => (
                if path == "/echo" {
                    "200 OK"
                } else {
                    "404 Not Found"
                }
                .into(),
                vec![json],
                serde_json::json!({ "request": req })
                    .to_string()
                    .into_bytes(),
            ),
            _ => (
                "200 OK".into(),
                vec![
                    json,
                    ("x-multi".into(), "1".into()),
                    ("x-multi".into(), "2".into()),
                ],
                serde_json::json!({"ok": true, "target": target})
                    .to_string()
                    .into_bytes(),
            ),
        }
    }

    impl LocalServer {
        fn start() -> Self {
            use std::io::Write;
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.set_nonblocking(true).unwrap();
            let port = l.local_addr().unwrap().port();
            let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let (seen2, stop2) = (seen.clone(), stop.clone());
            let thread = std::thread::spawn(move || {
                while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
                    let Ok((mut s, _)) = l.accept() else {
                        std::thread::sleep(Duration::from_millis(2));
                        continue;
                    };
                    s.set_nonblocking(false).unwrap();
                    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                    let req = read_request(&mut s);
                    seen2.lock().unwrap().push(req.clone());
                    let (status, headers, body) = answer(&req, port);
                    let mut head = format!("HTTP/1.1 {status}\r\n");
                    for (k, v) in headers {
                        head.push_str(&format!("{k}: {v}\r\n"));
                    }
                    head.push_str(&format!(
                        "content-length: {}\r\nconnection: close\r\n\r\n",
                        body.len()
                    ));
                    let _ = s.write_all(head.as_bytes());
                    let _ = s.write_all(&body);
                }
            });
            Self {
                port,
                seen,
                stop,
                thread: Some(thread),
            }
        }

        fn url(&self, path: &str) -> String {
            format!("http://127.0.0.1:{}{path}", self.port)
        }

        fn seen(&self) -> Vec<String> {
            self.seen.lock().unwrap().clone()
        }
    }

    impl Drop for LocalServer {
        fn drop(&mut self) {
            self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }

    struct Secrets(std::collections::BTreeMap<String, String>);
    impl SecretSource for Secrets {
        fn secret(&self, name: &weft_sandbox::SecretName) -> Option<String> {
            self.0.get(name.as_str()).cloned()
        }
    }

    fn no_secrets() -> Secrets {
        Secrets(Default::default())
    }

    fn grant(policy: &str) -> Grant {
        let p = std::sync::Arc::new(weft_sandbox::Policy::parse(policy).unwrap());
        Grant::for_requests(vec![p], std::path::Path::new("/"))
    }

    fn allow_port(port: u16) -> Grant {
        grant(&format!(
            r#"{{"Statement":[{{"Effect":"Allow","Action":"http:Request","Resource":"http://127.0.0.1:{port}/*"}}]}}"#
        ))
    }

    fn call(g: &Grant, s: &dyn SecretSource, p: Value) -> HttpTaskOutcome {
        invoke(g, s, &p, Some(Duration::from_secs(20)))
    }

    #[test]
    fn methods_queries_bodies_and_responses() {
        let srv = LocalServer::start();
        let g = allow_port(srv.port);
        let s = no_secrets();
        // GET with query parameters (INDICES by default) and a header; JSON response parsed
        let out = call(
            &g,
            &s,
            json!({"ApiEndpoint": srv.url("/items"), "Method": "GET",
                   "Headers": {"X-Trace": "t-1", "Accept": "application/json"},
                   "QueryParameters": {"q": "a b", "ids": [1, 2]}}),
        );
        let v = out.result.unwrap();
        assert_eq!(v["StatusCode"], 200);
        assert_eq!(v["StatusText"], "OK");
        assert_eq!(v["ResponseBody"]["ok"], true);
        assert_eq!(v["Headers"]["content-type"], json!(["application/json"]));
        assert_eq!(v["Headers"]["x-multi"], json!(["1", "2"]));
        let seen = srv.seen();
        assert!(
            seen[0].starts_with("GET /items?q=a+b&ids%5B0%5D=1&ids%5B1%5D=2 HTTP/1.1"),
            "{}",
            seen[0]
        );
        assert!(
            seen[0].to_ascii_lowercase().contains("x-trace: t-1"),
            "{}",
            seen[0]
        );
        assert_eq!(out.audit.len(), 1);
        assert_eq!(out.audit[0].decision, Effect::Allow);
        // POST, URL-encoded body with BRACKETS arrays
        let v = call(
            &g,
            &s,
            json!({"ApiEndpoint": srv.url("/form"), "Method": "post",
                   "RequestBody": {"tags": ["x", "y"], "name": "n&m"},
                   "Transform": {"RequestBodyEncoding": "URL_ENCODED",
                                 "RequestEncodingOptions": {"ArrayFormat": "BRACKETS"}}}),
        )
        .result
        .unwrap();
        assert_eq!(v["StatusCode"], 200);
        let req = &srv.seen()[1];
        assert!(req.starts_with("POST /form HTTP/1.1"), "{req}");
        assert!(
            req.to_ascii_lowercase()
                .contains("content-type: application/x-www-form-urlencoded"),
            "{req}"
        );
        assert!(
            req.ends_with("tags%5B%5D=x&tags%5B%5D=y&name=n%26m"),
            "{req}"
        );
        // PUT with a JSON body; a text response stays a string
        let v = call(
            &g,
            &s,
            json!({"ApiEndpoint": srv.url("/text"), "Method": "PUT", "RequestBody": {"a": [1]}}),
        )
        .result
        .unwrap();
        assert_eq!(v["ResponseBody"], "hello");
        let req = &srv.seen()[2];
        assert!(req.starts_with("PUT /text HTTP/1.1"), "{req}");
        assert!(req
            .to_ascii_lowercase()
            .contains("content-type: application/json"));
        assert!(req.ends_with(r#"{"a":[1]}"#), "{req}");
        // DELETE, PATCH, query appended to an endpoint that has one, REPEAT and COMMAS
        for (method, fmt, want) in [
            ("DELETE", "REPEAT", "DELETE /items?x=1&a=1&a=2 HTTP/1.1"),
            ("PATCH", "COMMAS", "PATCH /items?x=1&a=1%2C2 HTTP/1.1"),
        ] {
            call(
                &g,
                &s,
                json!({"ApiEndpoint": srv.url("/items?x=1"), "Method": method,
                       "QueryParameters": {"a": [1, 2]},
                       "Transform": {"RequestEncodingOptions": {"ArrayFormat": fmt}}}),
            )
            .result
            .unwrap();
            let seen = srv.seen();
            assert!(
                seen.last().unwrap().starts_with(want),
                "{}",
                seen.last().unwrap()
            );
        }
        // a non-2xx answer is States.Http.StatusCode.NNN with the response as the cause
        let e = call(
            &g,
            &s,
            json!({"ApiEndpoint": srv.url("/missing"), "Method": "GET"}),
        )
        .result
        .unwrap_err();
        assert_eq!(e.error, "States.Http.StatusCode.404");
        let cause: Value = serde_json::from_str(&e.cause).unwrap();
        assert_eq!(cause["StatusCode"], 404);
        assert_eq!(cause["StatusText"], "Not Found");
        assert_eq!(cause["ResponseBody"]["message"], "no such thing");
        // a refused connection is States.Http.Socket
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let g2 = grant(
            r#"{"Statement":[{"Effect":"Allow","Action":"http:Request","Resource":"http://127.0.0.1:*/*"}]}"#,
        );
        let e = call(
            &g2,
            &s,
            json!({"ApiEndpoint": format!("http://127.0.0.1:{closed}/x"), "Method": "GET"}),
        )
        .result
        .unwrap_err();
        assert_eq!(e.error, "States.Http.Socket");
    }

    #[test]
    fn only_granted_urls_are_requested() {
        let srv = LocalServer::start();
        let p = srv.port;
        let g = grant(&format!(
            r#"{{"Statement":[{{"Effect":"Allow","Action":"http:Request","Resource":"http://127.0.0.1:{p}/public/*"}},
                              {{"Effect":"Deny","Action":"http:Request","Resource":"*/public/secret*"}}]}}"#
        ));
        let s = no_secrets();
        assert!(call(
            &g,
            &s,
            json!({"ApiEndpoint": srv.url("/public/x"), "Method": "GET"})
        )
        .result
        .is_ok());
        for endpoint in [
            srv.url("/private"),
            srv.url("/public/../private"),
            srv.url("/public/%2e%2e/private"),
            srv.url("/public/%2E%2E%2Fprivate"),
            srv.url("/public/secret"),
            format!("http://0x7f.1:{p}/private"),
            format!("http://2130706433:{p}/private"),
            format!("http://127.0.0.1:{p}@127.0.0.2:{p}/public/x"),
            format!("http://u:p@127.0.0.1:{p}/public/x"),
            format!("http://[::ffff:127.0.0.2]:{p}/public/x"),
            format!("http://127.0.0.2:{p}/public/x"),
            format!("https://127.0.0.1:{p}/public/x"),
            "file:///etc/passwd".to_string(),
            format!("gopher://127.0.0.1:{p}/public/x"),
        ] {
            let out = call(&g, &s, json!({"ApiEndpoint": endpoint, "Method": "GET"}));
            let e = out.result.unwrap_err();
            assert_eq!(e.error, "Sandbox.PermissionDenied", "{endpoint}: {e}");
            assert_eq!(
                out.audit.last().unwrap().decision,
                Effect::Deny,
                "{endpoint}"
            );
        }
        // a query parameter cannot smuggle another path in
        let out = call(
            &g,
            &s,
            json!({"ApiEndpoint": srv.url("/private"), "Method": "GET",
                   "QueryParameters": {"x": "/public/y"}}),
        );
        assert_eq!(out.result.unwrap_err().error, "Sandbox.PermissionDenied");
        assert_eq!(
            srv.seen().len(),
            1,
            "only the granted request reached the server"
        );
        // no redirect is followed, granted or not: the 302 is the answer
        let g = allow_port(p);
        let e = call(
            &g,
            &s,
            json!({"ApiEndpoint": srv.url("/redirect"), "Method": "GET"}),
        )
        .result
        .unwrap_err();
        assert_eq!(e.error, "States.Http.StatusCode.302");
        assert!(e.cause.contains("/private/stolen"), "{}", e.cause);
        assert_eq!(srv.seen().len(), 2, "the redirect was not followed");
        // an oversized response is refused
        let e = call(
            &g,
            &s,
            json!({"ApiEndpoint": srv.url("/huge"), "Method": "GET"}),
        )
        .result
        .unwrap_err();
        assert_eq!(e.error, "States.DataLimitExceeded");
        // no role: nothing
        let none = Grant::for_requests(Vec::new(), std::path::Path::new("/"));
        let e = call(
            &none,
            &s,
            json!({"ApiEndpoint": srv.url("/x"), "Method": "GET"}),
        )
        .result
        .unwrap_err();
        assert_eq!(e.error, "Sandbox.PermissionDenied");
        assert_eq!(srv.seen().len(), 3);
    }

    #[test]
    fn a_server_that_never_answers_times_the_state_out() {
        // a listener that never accepts: the connection completes, no answer ever comes
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let g = allow_port(l.local_addr().unwrap().port());
        let p = json!({"ApiEndpoint": format!("http://{}/slow", l.local_addr().unwrap()),
                       "Method": "GET"});
        let out = invoke(&g, &no_secrets(), &p, Some(Duration::from_secs(1)));
        let e = out.result.unwrap_err();
        assert_eq!(e.error, "States.Timeout", "{e}");
        assert_eq!(out.audit[0].decision, Effect::Allow);
    }

    const PASSWORD: &str = "pw-5ecret-Kq9";
    const CLIENT_SECRET: &str = "cs-5ecret-Lm8";
    const ACCESS_TOKEN: &str = "at-5ecret-Wp3";

    fn oauth_secrets(port: u16, path: &str, secret: &str) -> Secrets {
        let mut m = std::collections::BTreeMap::new();
        m.insert(
            "conn/oauth".to_string(),
            json!({"conn_type": "http", "login": "cid", "password": secret,
                   "extra": {"AuthorizationType": "OAUTH_CLIENT_CREDENTIALS",
                             "AuthorizationEndpoint": format!("http://127.0.0.1:{port}{path}"),
                             "HttpMethod": "POST",
                             "OAuthHttpParameters": {
                                 "BodyParameters": [{"Key": "scope", "Value": "read"}]}}})
            .to_string(),
        );
        Secrets(m)
    }

    #[test]
    fn oauth_connections_fetch_a_token_through_the_grant_and_hide_it() {
        let srv = LocalServer::start();
        let p = srv.port;
        let policy = |paths: &str| {
            grant(&format!(
                r#"{{"Statement":[{{"Effect":"Allow","Action":"http:Request","Resource":{paths}}},
                                  {{"Effect":"Allow","Action":"secrets:Get","Resource":"secret:conn/oauth"}}]}}"#
            ))
        };
        let g = policy(&format!(
            r#"["http://127.0.0.1:{p}/echo","http://127.0.0.1:{p}/token*"]"#
        ));
        let task = json!({"ApiEndpoint": srv.url("/echo"), "Method": "GET",
                          "Authentication": {"ConnectionArn": "weft:connection:oauth"}});
        let out = call(&g, &oauth_secrets(p, "/token", CLIENT_SECRET), task.clone());
        let v = out.result.unwrap();
        let seen = srv.seen();
        assert!(seen[0].starts_with("POST /token HTTP/1.1"), "{}", seen[0]);
        assert!(
            seen[1].contains(&format!("authorization: Bearer {ACCESS_TOKEN}")),
            "{}",
            seen[1]
        );
        let shown = format!("{v} {:?}", out.audit);
        assert!(!shown.contains(ACCESS_TOKEN), "{shown}");
        assert!(!shown.contains(CLIENT_SECRET), "{shown}");
        let actions: Vec<_> = out.audit.iter().map(|a| a.resource.as_str()).collect();
        assert_eq!(actions.len(), 3, "{actions:?}");
        assert!(actions[1].ends_with("/token"), "{actions:?}");
        // a wrong client secret: the endpoint's 401 (which echoes the request) is not shown
        let out = call(
            &g,
            &oauth_secrets(p, "/token", "wrong-5ecret"),
            task.clone(),
        );
        let e = out.result.unwrap_err();
        assert_eq!(e.error, "States.Runtime");
        assert!(e.cause.contains("answered 401"), "{}", e.cause);
        assert!(!format!("{e} {:?}", out.audit).contains("wrong-5ecret"));
        // an answer without a token
        let e = call(
            &g,
            &oauth_secrets(p, "/token-echo", CLIENT_SECRET),
            task.clone(),
        )
        .result
        .unwrap_err();
        assert!(e.cause.contains("no access_token"), "{}", e.cause);
        // an authorization endpoint the role does not allow is not asked
        let g = policy(&format!(r#""http://127.0.0.1:{p}/echo""#));
        let sent = srv.seen().len();
        let out = call(&g, &oauth_secrets(p, "/token", CLIENT_SECRET), task);
        assert_eq!(out.result.unwrap_err().error, "Sandbox.PermissionDenied");
        assert_eq!(out.audit.last().unwrap().decision, Effect::Deny);
        assert_eq!(srv.seen().len(), sent, "nothing was sent");
    }
    const QUERY_KEY: &str = "qk-5ecret-Zt4";
    const API_KEY: &str = "ak-5ecret-Hh2";

    fn connection_secrets() -> Secrets {
        let mut m = std::collections::BTreeMap::new();
        m.insert(
            "conn/api".to_string(),
            json!({"conn_type": "http", "login": "svc", "password": PASSWORD,
                   "extra": {"InvocationHttpParameters": {
                       "HeaderParameters": [{"Key": "X-Team", "Value": "data"}],
                       "QueryStringParameters": [{"Key": "token", "Value": QUERY_KEY, "IsValueSecret": true}],
                       "BodyParameters": [{"Key": "client", "Value": "weft"}]}}})
            .to_string(),
        );
        m.insert(
            "conn/key".to_string(),
            json!({"conn_type": "http", "password": API_KEY,
                   "extra": {"AuthorizationType": "API_KEY", "ApiKeyName": "x-api-key"}})
            .to_string(),
        );
        m.insert(
            "conn/theirs".to_string(),
            json!({"conn_type": "http", "login": "other", "password": "their-pw-0"}).to_string(),
        );
        Secrets(m)
    }

    #[test]
    fn connections_authenticate_and_their_secrets_are_never_shown() {
        use base64::Engine as _;
        let srv = LocalServer::start();
        let p = srv.port;
        let g = grant(&format!(
            r#"{{"Statement":[{{"Effect":"Allow","Action":"http:Request","Resource":"http://127.0.0.1:{p}/*"}},
                              {{"Effect":"Allow","Action":"secrets:Get","Resource":["secret:conn/api","secret:conn/key"]}}]}}"#
        ));
        let s = connection_secrets();
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("svc:{PASSWORD}"));
        let secrets = [PASSWORD, QUERY_KEY, API_KEY, basic.as_str()];
        let leaks = |what: &str, text: &str| {
            for secret in secrets {
                assert!(!text.contains(secret), "{what} shows a secret: {text}");
            }
        };
        // the server echoes the request, credentials included: the output is redacted
        let arn = "arn:aws:events:us-east-1:123456789012:connection/api/0b1c2d3e";
        let out = call(
            &g,
            &s,
            json!({"ApiEndpoint": srv.url("/echo"), "Method": "POST",
                   "Authentication": {"ConnectionArn": arn},
                   "Headers": {"X-Team": "mine"},
                   "QueryParameters": {"token": "mine", "page": 2},
                   "RequestBody": {"a": 1}}),
        );
        let v = out.result.unwrap();
        let req = &srv.seen()[0];
        assert!(req.contains(&format!("Basic {basic}")), "{req}");
        assert!(req.contains(&format!("token={QUERY_KEY}")), "{req}");
        assert!(
            !req.contains("token=mine"),
            "the connection's value wins: {req}"
        );
        assert!(req.to_ascii_lowercase().contains("x-team: data"), "{req}");
        assert!(req.ends_with(r#"{"a":1,"client":"weft"}"#), "{req}");
        leaks("output", &v.to_string());
        assert!(v.to_string().contains(REDACTED));
        leaks("audit", &format!("{:?}", out.audit));
        assert_eq!(out.audit[0].resource, "secret:conn/api");
        assert_eq!(out.audit[0].decision, Effect::Allow);
        // an API key connection, and an error response echoing it
        let out = call(
            &g,
            &s,
            json!({"ApiEndpoint": srv.url("/echo-missing"), "Method": "GET",
                   "Authentication": {"ConnectionArn": "weft:connection:key"}}),
        );
        let e = out.result.unwrap_err();
        assert_eq!(e.error, "States.Http.StatusCode.404");
        assert!(srv.seen()[1].contains(&format!("x-api-key: {API_KEY}")));
        leaks("error cause", &e.cause);
        leaks("audit", &format!("{:?}", out.audit));
        // a failure after the secret was read (refused URL) shows no secret either
        let out = call(
            &g,
            &s,
            json!({"ApiEndpoint": format!("http://127.0.0.2:{p}/x"), "Method": "GET",
                   "Authentication": {"ConnectionArn": arn}}),
        );
        let e = out.result.unwrap_err();
        assert_eq!(e.error, "Sandbox.PermissionDenied");
        leaks("error cause", &e.cause);
        leaks("audit", &format!("{:?}", out.audit));
        assert_eq!(srv.seen().len(), 2);
    }

    #[test]
    fn a_connection_the_role_does_not_grant_is_not_read() {
        let srv = LocalServer::start();
        let p = srv.port;
        let g = grant(&format!(
            r#"{{"Statement":[{{"Effect":"Allow","Action":"http:Request","Resource":"http://127.0.0.1:{p}/*"}},
                              {{"Effect":"Allow","Action":"secrets:Get","Resource":"secret:conn/api"}}]}}"#
        ));
        let s = connection_secrets();
        for arn in [
            "arn:aws:events:us-east-1:123456789012:connection/theirs/0b1c",
            "arn:aws:events:us-east-1:123456789012:connection/THEIRS/0b1c",
            "weft:connection:theirs",
            "weft:connection:key",
        ] {
            let out = call(
                &g,
                &s,
                json!({"ApiEndpoint": srv.url("/echo"), "Method": "GET",
                       "Authentication": {"ConnectionArn": arn}}),
            );
            let e = out.result.unwrap_err();
            assert_eq!(e.error, "Sandbox.PermissionDenied", "{arn}");
            assert_eq!(out.audit.len(), 1);
            assert_eq!(out.audit[0].decision, Effect::Deny);
            assert!(!e.cause.contains("their-pw-0"));
        }
        for arn in [
            "arn:aws:events:us-east-1:1:connection/../api",
            "arn:aws:events:us-east-1:1:connection/api/x/y",
            "weft:connection:conn/api",
            "weft:connection:",
        ] {
            let e = call(
                &g,
                &s,
                json!({"ApiEndpoint": srv.url("/echo"), "Method": "GET",
                       "Authentication": {"ConnectionArn": arn}}),
            )
            .result
            .unwrap_err();
            assert_eq!(e.error, "States.Runtime", "{arn}: {e}");
        }
        assert!(srv.seen().is_empty(), "no request was sent");
    }
}
