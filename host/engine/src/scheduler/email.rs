//! Airflow's task e-mail: `email` with `email_on_failure` / `email_on_retry` (both true by
//! default, as in Airflow) sends Airflow's default alert through the SMTP connection
//! `smtp_default` (host, port, login, password; `extra`: `from_email`, `timeout`,
//! `retry_limit`, `disable_ssl`, `disable_tls`, `ssl_context`), read with the task's grant like
//! any connection the task uses.
//!
//! The transport follows the Airflow SMTP provider's connection: implicit TLS (SMTPS, port 465
//! by default) unless `disable_ssl` is true; then STARTTLS, required (port 587 by default),
//! unless `disable_tls` is also true, which sends in plain text. Certificates are always
//! verified against the Mozilla roots (`webpki-roots`): `ssl_context: "none"`, which would turn
//! verification off, is refused. `timeout` (seconds, 30 by default) bounds each connection and
//! `retry_limit` (5 by default, at most 10) is how many more attempts follow a failure to connect
//! or a dropped connection; a refused login or a rejected message is not retried.
//!
//! Recipients are parsed as addresses one by one (a value that is not exactly one address, such
//! as `"a@b\r\nBcc: evil@x"`, is dropped and logged, never sent to), and the message builder
//! encodes every header, so nothing a DAG file holds can add a header or a recipient. The
//! connection's password is never logged or returned: it is masked in every error reason.

use lettre::message::{header::ContentType, Mailbox};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{Message, SmtpTransport, Transport};
use serde_json::Value;
use std::time::Duration;
use weft_dag::{Secrets, Task};

/// The connection Airflow sends task e-mail through.
pub const SMTP_CONN: &str = "smtp_default";

/// Why an alert was not sent.
#[derive(Debug, thiserror::Error)]
pub enum EmailError {
    /// No usable connection.
    #[error("connection `{SMTP_CONN}`: {0}")]
    Connection(String),
    /// No recipient left after parsing.
    #[error("no valid recipient in `email`")]
    NoRecipient,
    /// Building or sending the message failed.
    #[error("sending through {host}:{port}: {reason}")]
    Send {
        /// SMTP host.
        host: String,
        /// SMTP port.
        port: u16,
        /// The transport's reason (it never holds the password).
        reason: String,
    },
}

/// Whether `task` wants an alert for `state` (`failed` or `up_for_retry`).
pub fn wanted(task: &Task, state: &str) -> bool {
    let flag = |k: &str| task.extra.get(k).and_then(Value::as_bool).unwrap_or(true);
    let has_email = task.extra.get("email").is_some_and(|v| !v.is_null());
    has_email
        && match state {
            "failed" => flag("email_on_failure"),
            "up_for_retry" => flag("email_on_retry"),
            _ => false,
        }
}

/// The recipients of `email` (a string, comma or semicolon separated, or a list), each parsed
/// as exactly one address; the others are returned apart.
pub fn recipients(v: &Value) -> (Vec<Mailbox>, Vec<String>) {
    let raw: Vec<String> = match v {
        Value::String(s) => s.split([',', ';']).map(str::to_string).collect(),
        Value::Array(a) => a
            .iter()
            .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
            .collect(),
        other => vec![other.to_string()],
    };
    let (mut ok, mut bad) = (Vec::new(), Vec::new());
    for r in raw {
        let t = r.trim();
        if t.is_empty() {
            continue;
        }
        match t.parse::<lettre::Address>() {
            Ok(a) if !t.chars().any(char::is_control) => ok.push(Mailbox::new(None, a)),
            _ => bad.push(t.chars().take(80).collect()),
        }
    }
    (ok, bad)
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// What the alert says about the try.
pub struct Alert<'a> {
    /// DAG id.
    pub dag_id: &'a str,
    /// Run id.
    pub run_id: &'a str,
    /// Task id (with `[map_index]` for a mapped instance).
    pub ti: &'a str,
    /// `failed` or `up_for_retry`.
    pub state: &'a str,
    /// The try that ended.
    pub try_number: u32,
    /// Tries the instance may make.
    pub max_tries: u32,
    /// The failure, as `Error: cause`.
    pub exception: &'a str,
}

/// Airflow's default subject and HTML body.
pub fn subject_and_body(a: &Alert<'_>) -> (String, String) {
    let subject = format!(
        "Airflow alert: <TaskInstance: {}.{} {} [{}]>",
        a.dag_id, a.ti, a.run_id, a.state
    );
    let body = format!(
        "Try {} out of {}<br>\nException:<br>{}<br>\nLog: <a href=\"/#/dag/{}\">Link</a><br>\nHost: weft<br>\nMark success: <a href=\"/#/dag/{}\">Link</a><br>\n",
        a.try_number,
        a.max_tries,
        html_escape(a.exception),
        html_escape(a.dag_id),
        html_escape(a.dag_id),
    );
    (subject, body)
}

/// Sends the alert for `task` to its `email` recipients through `smtp_default` as `secrets`
/// (the task's grant's view) answers it. Returns the recipients it went to.
pub fn send_alert(
    secrets: &dyn Secrets,
    task: &Task,
    alert: &Alert<'_>,
) -> Result<Vec<String>, EmailError> {
    send_alert_trusting(secrets, task, alert, &SmtpTrust::default())
}

/// [`send_alert`], also trusting `trust`'s roots for the server's certificate.
pub fn send_alert_trusting(
    secrets: &dyn Secrets,
    task: &Task,
    alert: &Alert<'_>,
    trust: &SmtpTrust,
) -> Result<Vec<String>, EmailError> {
    let (to, dropped) = recipients(task.extra.get("email").unwrap_or(&Value::Null));
    if !dropped.is_empty() {
        tracing::warn!(
            dag_id = alert.dag_id,
            task = alert.ti,
            ?dropped,
            "e-mail recipients that are not one address each were dropped"
        );
    }
    if to.is_empty() {
        return Err(EmailError::NoRecipient);
    }
    let conn = secrets
        .connection(SMTP_CONN)
        .map_err(EmailError::Connection)?
        .ok_or_else(|| {
            EmailError::Connection(
                "not set, or the task's grant does not allow secrets:Get on secret:conn/smtp_default"
                    .into(),
            )
        })?;
    let extra: serde_json::Map<String, Value> = conn
        .extra
        .as_deref()
        .and_then(|e| serde_json::from_str(e).ok())
        .unwrap_or_default();
    let settings = SmtpSettings::from_extra(&extra)?;
    let host = conn
        .host
        .clone()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| EmailError::Connection("has no host".into()))?;
    let port = conn.port.unwrap_or(settings.default_port());
    let from: Mailbox = extra
        .get("from_email")
        .and_then(Value::as_str)
        .unwrap_or("airflow@example.com")
        .parse()
        .map_err(|e| EmailError::Connection(format!("from_email: {e}")))?;
    let (subject, body) = subject_and_body(alert);
    let mut b = Message::builder().from(from).subject(subject);
    for m in &to {
        b = b.to(m.clone());
    }
    let password = conn.password.clone().filter(|p| !p.is_empty());
    let send_err = |reason: String| EmailError::Send {
        host: host.clone(),
        port,
        reason: mask(&reason, password.as_deref()),
    };
    let msg = b
        .header(ContentType::TEXT_HTML)
        .body(body)
        .map_err(|e| send_err(e.to_string()))?;
    let mut t = SmtpTransport::builder_dangerous(host.as_str())
        .port(port)
        .timeout(Some(Duration::from_secs(settings.timeout_s)));
    if settings.security != Security::Plain {
        let mut params = TlsParameters::builder(host.clone());
        for der in &trust.extra_roots {
            params = params.add_root_certificate(
                Certificate::from_der(der.clone()).map_err(|e| send_err(e.to_string()))?,
            );
        }
        let params = params.build_rustls().map_err(|e| send_err(e.to_string()))?;
        t = t.tls(match settings.security {
            Security::Implicit => Tls::Wrapper(params),
            _ => Tls::Required(params),
        });
    }
    if let (Some(user), Some(pass)) = (conn.login.clone(), password.clone()) {
        tracing::debug!(host = %host, port, login = %user, "SMTP login with the connection's credentials");
        t = t.credentials(Credentials::new(user, pass));
    }
    let transport = t.build();
    let mut attempt = 0;
    loop {
        tracing::info!(host = %host, port, security = ?settings.security, attempt, "sending task e-mail");
        match transport.send(&msg) {
            Ok(_) => break,
            Err(e) if attempt < settings.retry_limit && retryable(&e) => {
                tracing::warn!(host = %host, port, attempt, reason = %mask(&e.to_string(), password.as_deref()), "SMTP attempt failed; trying again");
                attempt += 1;
            }
            Err(e) => return Err(send_err(e.to_string())),
        }
    }
    Ok(to.iter().map(|m| m.email.to_string()).collect())
}

/// Roots a caller trusts besides the Mozilla roots (DER certificates). Production passes none
/// ([`send_alert`]); tests add the CA of a local sink's certificate. Verification stays on.
#[derive(Debug, Clone, Default)]
pub struct SmtpTrust {
    /// Extra root certificates, DER.
    pub extra_roots: Vec<Vec<u8>>,
}

/// How the connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// SMTPS: TLS from the first byte (`disable_ssl` false, the provider's default).
    Implicit,
    /// STARTTLS, required (`disable_ssl` true, `disable_tls` false).
    StartTls,
    /// Plain text (`disable_ssl` and `disable_tls` true).
    Plain,
}

/// The transport settings an SMTP connection's `extra` holds.
#[derive(Debug, Clone, PartialEq)]
pub struct SmtpSettings {
    pub security: Security,
    /// Seconds each connection may take.
    pub timeout_s: u64,
    /// Attempts after the first.
    pub retry_limit: u32,
}

/// Most retries `retry_limit` may ask for.
pub const MAX_RETRY_LIMIT: u32 = 10;

impl SmtpSettings {
    /// Reads `disable_ssl`, `disable_tls`, `ssl_context`, `timeout` and `retry_limit` (booleans
    /// and numbers, or their string forms as Airflow's UI stores them).
    pub fn from_extra(extra: &serde_json::Map<String, Value>) -> Result<Self, EmailError> {
        let flag = |k: &str| -> Result<bool, EmailError> {
            match extra.get(k) {
                None | Some(Value::Null) => Ok(false),
                Some(Value::Bool(b)) => Ok(*b),
                Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(true),
                Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(false),
                Some(v) => Err(EmailError::Connection(format!(
                    "extra `{k}` must be true or false, not {v}"
                ))),
            }
        };
        let number = |k: &str, default: u64| -> Result<u64, EmailError> {
            match extra.get(k) {
                None | Some(Value::Null) => Some(default),
                Some(Value::Number(n)) => n.as_u64(),
                Some(Value::String(s)) => s.trim().parse().ok(),
                Some(_) => None,
            }
            .ok_or_else(|| {
                EmailError::Connection(format!("extra `{k}` must be a non-negative integer"))
            })
        };
        let security = match (flag("disable_ssl")?, flag("disable_tls")?) {
            (false, _) => Security::Implicit,
            (true, false) => Security::StartTls,
            (true, true) => Security::Plain,
        };
        match extra.get("ssl_context").and_then(Value::as_str) {
            None | Some("default") => {}
            Some("none") => {
                return Err(EmailError::Connection(
                    "extra `ssl_context: none` turns certificate verification off, which weft does not do: trust the server's certificate authority instead".into(),
                ))
            }
            Some(other) => {
                return Err(EmailError::Connection(format!(
                    "extra `ssl_context` must be \"default\" or \"none\", not `{}`",
                    other.chars().take(40).collect::<String>()
                )))
            }
        }
        Ok(SmtpSettings {
            security,
            timeout_s: number("timeout", 30)?.clamp(1, 300),
            retry_limit: number("retry_limit", 5)?.min(MAX_RETRY_LIMIT as u64) as u32,
        })
    }

    /// The provider's default port: 465 for SMTPS, 587 otherwise.
    pub fn default_port(&self) -> u16 {
        match self.security {
            Security::Implicit => 465,
            _ => 587,
        }
    }
}

/// Whether a failed attempt may succeed if tried again: the connection failed or dropped, not
/// a login or a message the server refused, nor a certificate that does not verify.
fn retryable(e: &lettre::transport::smtp::Error) -> bool {
    !(e.is_permanent() || e.is_tls() || e.is_client() || e.is_transient())
}

/// `reason` with every occurrence of `secret` masked.
fn mask(reason: &str, secret: Option<&str>) -> String {
    match secret {
        Some(s) if !s.is_empty() => reason.replace(s, "***"),
        _ => reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recipient_with_a_header_in_it_is_dropped() {
        let (ok, bad) = recipients(&serde_json::json!(
            "a@b.example, x@y.example\r\nBcc: evil@x.example; "
        ));
        assert_eq!(ok.len(), 1, "{ok:?}");
        assert_eq!(bad.len(), 1);
        let (ok, _) = recipients(&serde_json::json!(["c@d.example", "e@f.example"]));
        assert_eq!(ok.len(), 2);
    }

    fn settings(extra: serde_json::Value) -> Result<SmtpSettings, EmailError> {
        SmtpSettings::from_extra(extra.as_object().unwrap())
    }

    #[test]
    fn connection_extras_choose_the_transport_as_the_provider_does() {
        let s = settings(serde_json::json!({})).unwrap();
        assert_eq!(
            (s.security, s.default_port(), s.timeout_s, s.retry_limit),
            (Security::Implicit, 465, 30, 5)
        );
        let s =
            settings(serde_json::json!({"disable_ssl": true, "timeout": "7", "retry_limit": 0}))
                .unwrap();
        assert_eq!(
            (s.security, s.default_port(), s.timeout_s, s.retry_limit),
            (Security::StartTls, 587, 7, 0)
        );
        let s = settings(
            serde_json::json!({"disable_ssl": "true", "disable_tls": true, "retry_limit": 1000}),
        )
        .unwrap();
        assert_eq!(
            (s.security, s.retry_limit),
            (Security::Plain, MAX_RETRY_LIMIT)
        );
        for bad in [
            serde_json::json!({"ssl_context": "none"}),
            serde_json::json!({"ssl_context": "weird"}),
            serde_json::json!({"disable_ssl": "maybe"}),
            serde_json::json!({"timeout": -1}),
            serde_json::json!({"retry_limit": "many"}),
        ] {
            assert!(settings(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_password_is_masked_in_reasons() {
        assert_eq!(
            mask("auth failed for hunter2", Some("hunter2")),
            "auth failed for ***"
        );
        assert_eq!(mask("no secret", None), "no secret");
        assert_eq!(mask("kept", Some("")), "kept");
    }
}
