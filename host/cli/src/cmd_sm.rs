//! `weft sm ...` and `weft audit`: a client of a running `weft server`. Requests are the
//! Step Functions wire protocol (AWS JSON 1.0), SigV4-signed with a profile of
//! `$WEFT_HOME/credentials`, exactly as the AWS CLI would send them. Plain `http://` only: the
//! server listens on loopback by default.

use crate::args::{AuditArgs, ClientArgs, SmArgs, SmCmd};
use crate::context::usage;
use anyhow::{Context as _, Result};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::process::ExitCode;

struct Client {
    host: String,
    key: String,
    secret: String,
}

fn client(c: &ClientArgs) -> Result<Client> {
    let rest = c.endpoint.strip_prefix("http://").ok_or_else(|| {
        usage(format!(
            "--endpoint {}: only http:// endpoints are supported",
            c.endpoint
        ))
    })?;
    let host = rest.trim_end_matches('/').to_string();
    let home = weft_engine::weft_home();
    let path = home.join("credentials");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        // no credentials: unsigned requests, for a server started with --no-auth
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && c.profile == "default" => {
            return Ok(Client {
                host,
                key: String::new(),
                secret: String::new(),
            });
        }
        Err(e) => anyhow::bail!("reading {}: {e}", path.display()),
    };
    let keys = weft_server::auth::Tokens::parse_credentials(&text, &path, &home)?;
    let p = keys
        .0
        .values()
        .find(|p| p.name == c.profile)
        .ok_or_else(|| usage(format!("{}: no profile [{}]", path.display(), c.profile)))?;
    Ok(Client {
        host,
        key: p.access_key_id.clone(),
        secret: p.secret.clone(),
    })
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Client {
    fn http(
        &self,
        method: &str,
        path: &str,
        headers: &[(String, String)],
        body: &str,
    ) -> Result<(u16, String)> {
        let mut s = std::net::TcpStream::connect(&self.host)
            .with_context(|| format!("connecting to {} (is `weft server` running?)", self.host))?;
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.host,
            body.len()
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        req.push_str(body);
        s.write_all(req.as_bytes())?;
        let mut out = Vec::new();
        s.read_to_end(&mut out)?;
        let text = String::from_utf8_lossy(&out).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        Ok((status, body.to_string()))
    }

    /// One signed API call; an AWS error becomes an error `TYPE: message`.
    fn call(&self, action: &str, req: Value) -> Result<Value> {
        use sha2::Digest;
        let body = req.to_string();
        let date = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
        let scope = format!("{}/us-east-1/states/aws4_request", &date[..8]);
        let target = format!("AWSStepFunctions.{action}");
        // every header sent but Authorization is signed, as the AWS SDKs do
        let headers = vec![
            (
                "content-type".to_string(),
                weft_server::AMZ_JSON.to_string(),
            ),
            ("host".to_string(), self.host.clone()),
            ("x-amz-date".to_string(), date.clone()),
            ("x-amz-target".to_string(), target.clone()),
        ];
        let sig = weft_server::auth::sign(
            &self.secret,
            "POST",
            "/",
            "",
            &headers,
            &["content-type", "host", "x-amz-date", "x-amz-target"],
            &hex(&sha2::Sha256::digest(body.as_bytes())),
            &date,
            &scope,
        );
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature={sig}",
            self.key
        );
        let mut headers = vec![
            ("X-Amz-Date".to_string(), date),
            ("X-Amz-Target".to_string(), target),
            (
                "Content-Type".to_string(),
                weft_server::AMZ_JSON.to_string(),
            ),
        ];
        if !self.key.is_empty() {
            headers.push(("Authorization".into(), auth));
        }
        let (status, text) = self.http("POST", "/", &headers, &body)?;
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status != 200 {
            anyhow::bail!(
                "{}: {}",
                v["__type"].as_str().unwrap_or("HTTP error"),
                v["message"].as_str().unwrap_or(&text)
            );
        }
        Ok(v)
    }
}

fn sm_arn(s: &str) -> String {
    if s.starts_with("arn:") {
        s.to_string()
    } else {
        weft_server::records::sm_arn(s)
    }
}

fn read_arg(s: &str) -> Result<String> {
    match s.strip_prefix('@') {
        Some(p) => std::fs::read_to_string(p).with_context(|| format!("reading {p}")),
        None => Ok(s.to_string()),
    }
}

fn print(v: &Value) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

pub fn run(a: SmArgs) -> Result<ExitCode> {
    let c = client(&a.client)?;
    match a.cmd {
        SmCmd::Create {
            name,
            file,
            role,
            r#type,
            update,
            publish,
        } => {
            let definition = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let v = if update {
                let mut req = json!({"stateMachineArn": sm_arn(&name), "definition": definition, "publish": publish});
                if let Some(r) = role {
                    req["roleArn"] = json!(r);
                }
                c.call("UpdateStateMachine", req)?
            } else {
                let mut req = json!({"name": name, "definition": definition, "type": r#type, "publish": publish});
                if let Some(r) = role {
                    req["roleArn"] = json!(r);
                }
                c.call("CreateStateMachine", req)?
            };
            print(&v)?;
        }
        SmCmd::List => print(&c.call("ListStateMachines", json!({}))?)?,
        SmCmd::Start {
            state_machine,
            input,
            name,
            wait,
        } => {
            let input = read_arg(&input)?;
            serde_json::from_str::<Value>(&input)
                .map_err(|e| usage(format!("--input is not JSON: {e}")))?;
            let mut req = json!({"stateMachineArn": sm_arn(&state_machine), "input": input});
            if let Some(n) = name {
                req["name"] = json!(n);
            }
            let v = c.call("StartExecution", req)?;
            if !wait {
                print(&v)?;
                return Ok(ExitCode::SUCCESS);
            }
            let arn = v["executionArn"].as_str().unwrap_or_default().to_string();
            loop {
                let d = c.call("DescribeExecution", json!({"executionArn": arn}))?;
                if d["status"] != "RUNNING" {
                    print(&d)?;
                    return Ok(if d["status"] == "SUCCEEDED" {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(1)
                    });
                }
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
        }
        SmCmd::Describe { execution_arn } => {
            print(&c.call("DescribeExecution", json!({"executionArn": execution_arn}))?)?
        }
        SmCmd::Executions {
            state_machine,
            status,
        } => {
            let mut req = json!({"stateMachineArn": sm_arn(&state_machine)});
            if let Some(s) = status {
                req["statusFilter"] = json!(s);
            }
            print(&c.call("ListExecutions", req)?)?
        }
        SmCmd::History { execution_arn } => {
            let mut events = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let mut req = json!({"executionArn": execution_arn, "maxResults": 1000});
                if let Some(t) = &token {
                    req["nextToken"] = json!(t);
                }
                let page = c.call("GetExecutionHistory", req)?;
                events.extend(page["events"].as_array().cloned().unwrap_or_default());
                match page["nextToken"].as_str() {
                    Some(t) => token = Some(t.to_string()),
                    None => break,
                }
            }
            print(&json!({"events": events}))?
        }
        SmCmd::Stop {
            execution_arn,
            error,
            cause,
        } => {
            let mut req = json!({"executionArn": execution_arn});
            if let Some(e) = error {
                req["error"] = json!(e);
            }
            if let Some(x) = cause {
                req["cause"] = json!(x);
            }
            print(&c.call("StopExecution", req)?)?
        }
        SmCmd::Redrive { execution_arn } => {
            print(&c.call("RedriveExecution", json!({"executionArn": execution_arn}))?)?
        }
        SmCmd::SendSuccess { token, output } => {
            let output = read_arg(&output)?;
            print(&c.call(
                "SendTaskSuccess",
                json!({"taskToken": token, "output": output}),
            )?)?
        }
        SmCmd::ResourceMap {
            state_machine,
            set,
            delete,
        } => print(&resource_map(&c, &state_machine, set.as_deref(), delete)?)?,
        SmCmd::SendFailure {
            token,
            error,
            cause,
        } => {
            let mut req = json!({"taskToken": token});
            if let Some(e) = error {
                req["error"] = json!(e);
            }
            if let Some(x) = cause {
                req["cause"] = json!(x);
            }
            print(&c.call("SendTaskFailure", req)?)?
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `weft sm resource-map NAME [--set FILE | --delete]`: the state machine's own resource map
/// through `/v1/state-machines/NAME/resource-map` (a map file is checked here, with its
/// file:line errors, and sent as JSON).
fn resource_map(
    c: &Client,
    state_machine: &str,
    set: Option<&std::path::Path>,
    delete: bool,
) -> Result<Value> {
    let name = state_machine
        .rsplit(":stateMachine:")
        .next()
        .unwrap_or(state_machine);
    weft_server::records::valid_name(name).map_err(usage)?;
    let path = format!("/v1/state-machines/{name}/resource-map");
    let mut headers: Vec<(String, String)> = Vec::new();
    if !c.key.is_empty() {
        headers.push(("Authorization".into(), format!("Bearer {}", c.secret)));
    }
    let (method, body) = match (set, delete) {
        (Some(file), _) => {
            let map = weft_engine::resource_map::ResourceMap::read(file).map_err(|errs| {
                let lines: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
                usage(lines.join("\n"))
            })?;
            headers.push(("Content-Type".into(), "application/json".into()));
            ("PUT", map.to_json().to_string())
        }
        (None, true) => {
            headers.push(("Content-Type".into(), "application/json".into()));
            ("DELETE", String::new())
        }
        (None, false) => ("GET", String::new()),
    };
    let (status, text) = c.http(method, &path, &headers, &body)?;
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    if status != 200 {
        anyhow::bail!(
            "{}: {}",
            v["__type"].as_str().unwrap_or("HTTP error"),
            v["message"].as_str().unwrap_or(&text)
        );
    }
    Ok(v)
}

/// `weft audit`: `GET /v1/audit` with the profile's secret as a Bearer token.
pub fn audit(a: AuditArgs) -> Result<ExitCode> {
    let c = client(&a.client)?;
    let mut path = format!("/v1/audit?limit={}", a.limit);
    if let Some(f) = &a.filter {
        let enc: String = f
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        path.push_str(&format!("&filter={enc}"));
    }
    let auth: Vec<(String, String)> = if c.key.is_empty() {
        Vec::new()
    } else {
        vec![("Authorization".into(), format!("Bearer {}", c.secret))]
    };
    let (status, text) = c.http("GET", &path, &auth, "")?;
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    if status != 200 {
        anyhow::bail!(
            "{}: {}",
            v["__type"].as_str().unwrap_or("HTTP error"),
            v["message"].as_str().unwrap_or(&text)
        );
    }
    if a.json {
        print(&v)?;
    } else {
        for r in v["records"].as_array().into_iter().flatten() {
            println!(
                "{}  {:<12} {:<28} {:<6} {} {}",
                r["time"].as_str().unwrap_or(""),
                r["principal"].as_str().unwrap_or(""),
                r["action"].as_str().unwrap_or(""),
                r["outcome"].as_str().unwrap_or(""),
                r["resource"].as_str().unwrap_or(""),
                r["error"].as_str().unwrap_or("")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
