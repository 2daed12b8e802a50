//! `http-request`: one HTTP request through the host's `http.send` (the grant's `http:Request`
//! allowlist decides; an undeclared host is `Sandbox.PermissionDenied`).
//!
//! Input: `{"url": "...", "method"?: "GET", "headers"?: {"name": "value"} | [["name","value"]],
//!          "body"?: string, "json"?: any, "timeout_ms"?: n, "fail_on_status"?: false}`
//! (`json` sets the body and `content-type: application/json`).
//! Output: `{"status": n, "headers": {"lower-case-name": "value", ..}, "json": any}` when the
//! response is JSON, else `{"status", "headers", "body": "text"}`. With `fail_on_status`, a
//! non-2xx status is `Http.StatusError`.
use serde::Deserialize;
use weft_guest::http::Request;
use weft_guest::{json, Context, TaskError, Value};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    url: String,
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    headers: Option<Value>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    json: Option<Value>,
    #[serde(default)]
    timeout_ms: Option<u32>,
    #[serde(default)]
    fail_on_status: bool,
}

fn header_list(v: &Value) -> Result<Vec<(String, String)>, TaskError> {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match v {
        Value::Object(m) => Ok(m.iter().map(|(k, v)| (k.clone(), text(v))).collect()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, pair)| match pair.as_array().map(Vec::as_slice) {
                Some([Value::String(k), v]) => Ok((k.clone(), text(v))),
                _ => Err(TaskError::invalid_input(format!(
                    "/headers/{i}: expected [name, value]"
                ))),
            })
            .collect(),
        Value::Null => Ok(Vec::new()),
        other => Err(TaskError::invalid_input(format!(
            "/headers: expected an object or a list of pairs, got {other}"
        ))),
    }
}

fn run(ctx: &Context, input: Input) -> Result<Value, TaskError> {
    if input.body.is_some() && input.json.is_some() {
        return Err(TaskError::invalid_input(
            "give either `body` or `json`, not both",
        ));
    }
    let method = input
        .method
        .as_deref()
        .unwrap_or("GET")
        .to_ascii_uppercase();
    let mut req = Request::new(method.clone(), input.url.clone());
    if let Some(h) = &input.headers {
        for (k, v) in header_list(h)? {
            req = req.header(k, v);
        }
    }
    if let Some(j) = &input.json {
        req = req.json(j);
    } else if let Some(b) = input.body {
        req = req.body(b.into_bytes());
    }
    if let Some(ms) = input.timeout_ms {
        req = req.timeout_ms(ms);
    }
    let resp = ctx.send(req)?;
    ctx.info(format!("{method} {} -> {}", input.url, resp.status));
    let mut headers = serde_json::Map::new();
    for (k, v) in &resp.headers {
        let k = k.to_ascii_lowercase();
        match headers.get_mut(&k) {
            Some(Value::String(prev)) => {
                prev.push_str(", ");
                prev.push_str(v);
            }
            _ => {
                headers.insert(k, Value::String(v.clone()));
            }
        }
    }
    let resp = if input.fail_on_status {
        resp.error_for_status()?
    } else {
        resp
    };
    let mut out = json!({ "status": resp.status, "headers": headers });
    match resp.is_json().then(|| resp.json().ok()).flatten() {
        Some(j) => out["json"] = j,
        None => out["body"] = Value::String(resp.text()),
    }
    Ok(out)
}

weft_guest::export_operator!(run);
