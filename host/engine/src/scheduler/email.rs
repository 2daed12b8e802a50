//! Airflow's task e-mail: `email` with `email_on_failure` / `email_on_retry` (both true by
//! default, as in Airflow) sends Airflow's default alert through the SMTP connection
//! `smtp_default` (host, port, login, password; `extra`: `from_email`, `timeout`,
//! `disable_tls`, `disable_ssl`), read with the task's grant like any connection the task uses.
//!
//! Recipients are parsed as addresses one by one (a value that is not exactly one address, such
//! as `"a@b\r\nBcc: evil@x"`, is dropped and logged, never sent to), and the message builder
//! encodes every header, so nothing a DAG file holds can add a header or a recipient. The
//! connection's password is never logged or returned. weft speaks plain SMTP only (a local
//! relay): a connection that does not set `disable_tls` and `disable_ssl` is refused with an
//! error saying so.

use lettre::message::{header::ContentType, Mailbox};
use lettre::transport::smtp::authentication::Credentials;
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
    let flag = |k: &str| extra.get(k).and_then(Value::as_bool).unwrap_or(false);
    if !flag("disable_tls") || !flag("disable_ssl") {
        return Err(EmailError::Connection(
            "weft sends mail over plain SMTP only (to a local relay): set `disable_tls` and `disable_ssl` to true in its extra".into(),
        ));
    }
    let host = conn
        .host
        .clone()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| EmailError::Connection("has no host".into()))?;
    let port = conn.port.unwrap_or(25);
    let send_err = |reason: String| EmailError::Send {
        host: host.clone(),
        port,
        reason,
    };
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
    let msg = b
        .header(ContentType::TEXT_HTML)
        .body(body)
        .map_err(|e| send_err(e.to_string()))?;
    let timeout = extra
        .get("timeout")
        .and_then(Value::as_u64)
        .unwrap_or(30)
        .clamp(1, 300);
    let mut t = SmtpTransport::builder_dangerous(host.as_str())
        .port(port)
        .timeout(Some(Duration::from_secs(timeout)));
    if let (Some(user), Some(pass)) = (conn.login.clone(), conn.password.clone()) {
        t = t.credentials(Credentials::new(user, pass));
    }
    t.build().send(&msg).map_err(|e| send_err(e.to_string()))?;
    Ok(to.iter().map(|m| m.email.to_string()).collect())
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
}
