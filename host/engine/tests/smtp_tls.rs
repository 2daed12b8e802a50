//! Task e-mail over TLS, as the Airflow SMTP provider's connection asks for it: STARTTLS and
//! SMTPS against a sink on 127.0.0.1 whose certificate a test-only CA signed (trusted through
//! [`SmtpTrust`], verification on), login with the connection's password, retries. The
//! attacker's side: an untrusted certificate or a server without STARTTLS gets no credentials,
//! and the password appears neither in any log line nor in the error of a refused login, even
//! when the server echoes it back.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use base64::Engine;
use weft_dag::{parse_dag_file, AnyOperator, Connection, FolderConfig, Secrets, Task};
use weft_engine::scheduler::email::{send_alert, send_alert_trusting, Alert, SmtpTrust};

const PASSWORD: &str = "s3cret-Pw-7731";
const CA: &[u8] = include_bytes!("smtp_fixtures/ca.der");
const CERT: &[u8] = include_bytes!("smtp_fixtures/server.der");
const KEY: &[u8] = include_bytes!("smtp_fixtures/server.key.der");

/// How the sink speaks.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// Plain greeting, offers STARTTLS.
    StartTls,
    /// TLS from the first byte.
    Implicit,
    /// Plain, no STARTTLS offered.
    PlainOnly,
}

/// What the sink saw.
#[derive(Default, Debug)]
struct Seen {
    /// Connections accepted.
    connections: usize,
    /// AUTH payloads received, decoded, and whether the session was encrypted then.
    auth: Vec<(String, bool)>,
    /// Messages accepted: recipients.
    delivered: Vec<Vec<String>>,
}

trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

fn tls_config() -> Arc<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![rustls::pki_types::CertificateDer::from(CERT.to_vec())],
            rustls::pki_types::PrivateKeyDer::Pkcs8(KEY.to_vec().into()),
        )
        .unwrap();
    Arc::new(cfg)
}

fn wrap(tcp: TcpStream) -> Box<dyn Stream> {
    let conn = rustls::ServerConnection::new(tls_config()).unwrap();
    Box::new(rustls::StreamOwned::new(conn, tcp))
}

fn read_line(s: &mut dyn Stream) -> Option<String> {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    loop {
        match s.read(&mut b) {
            Ok(1) => {
                line.push(b[0]);
                if b[0] == b'\n' {
                    return Some(String::from_utf8_lossy(&line).into_owned());
                }
            }
            _ => return None,
        }
    }
}

/// A sink on 127.0.0.1 that drops its first `drop_first` connections at once, then speaks
/// `mode`; it accepts AUTH PLAIN for `weft` with [`PASSWORD`] and refuses anything else,
/// echoing what it got (a hostile or careless server). Its thread ends with the test process.
fn sink(mode: Mode, drop_first: usize) -> (u16, Arc<Mutex<Seen>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let s2 = seen.clone();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(tcp) = c else { return };
            let n = {
                let mut s = s2.lock().unwrap();
                s.connections += 1;
                s.connections
            };
            if n <= drop_first {
                drop(tcp);
                continue;
            }
            let _ = session(mode, tcp, &s2);
        }
    });
    (port, seen)
}

fn session(mode: Mode, tcp: TcpStream, seen: &Mutex<Seen>) -> Option<()> {
    let mut encrypted = mode == Mode::Implicit;
    let mut s: Box<dyn Stream> = if encrypted {
        wrap(tcp.try_clone().ok()?)
    } else {
        Box::new(tcp.try_clone().ok()?)
    };
    s.write_all(b"220 sink ESMTP\r\n").ok()?;
    let (mut rcpt, mut in_data) = (Vec::new(), false);
    while let Some(line) = read_line(&mut *s) {
        if in_data {
            if line == ".\r\n" {
                in_data = false;
                seen.lock()
                    .unwrap()
                    .delivered
                    .push(std::mem::take(&mut rcpt));
                s.write_all(b"250 queued\r\n").ok()?;
            }
            continue;
        }
        let up = line.to_ascii_uppercase();
        if up.starts_with("EHLO") {
            let starttls = if mode == Mode::StartTls && !encrypted {
                "250-STARTTLS\r\n"
            } else {
                ""
            };
            s.write_all(format!("250-sink\r\n{starttls}250 AUTH PLAIN LOGIN\r\n").as_bytes())
                .ok()?;
        } else if up.starts_with("STARTTLS") && mode == Mode::StartTls && !encrypted {
            s.write_all(b"220 go ahead\r\n").ok()?;
            s = wrap(tcp.try_clone().ok()?);
            encrypted = true;
        } else if up.starts_with("AUTH PLAIN ") {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(line[11..].trim())
                .unwrap_or_default();
            let text = String::from_utf8_lossy(&raw).replace('\0', ":");
            seen.lock().unwrap().auth.push((text.clone(), encrypted));
            if text == format!(":weft:{PASSWORD}") {
                s.write_all(b"235 2.7.0 accepted\r\n").ok()?;
            } else {
                s.write_all(format!("535 5.7.8 bad credentials {text}\r\n").as_bytes())
                    .ok()?;
            }
        } else if up.starts_with("RCPT TO:") {
            rcpt.push(line[8..].trim().to_string());
            s.write_all(b"250 ok\r\n").ok()?;
        } else if up.starts_with("DATA") {
            in_data = true;
            s.write_all(b"354 go\r\n").ok()?;
        } else if up.starts_with("QUIT") {
            s.write_all(b"221 bye\r\n").ok()?;
            return Some(());
        } else {
            s.write_all(b"250 ok\r\n").ok()?;
        }
    }
    Some(())
}

struct SmtpConn {
    port: u16,
    password: &'static str,
    extra: String,
}

impl Secrets for SmtpConn {
    fn variable(&self, _: &str) -> Result<Option<String>, String> {
        Ok(None)
    }
    fn connection(&self, id: &str) -> Result<Option<Connection>, String> {
        Ok((id == "smtp_default").then(|| Connection {
            conn_type: Some("smtp".into()),
            host: Some("127.0.0.1".into()),
            login: Some("weft".into()),
            password: Some(self.password.into()),
            schema: None,
            port: Some(self.port),
            extra: Some(self.extra.clone()),
        }))
    }
}

fn task() -> Task {
    let (dags, errors) = parse_dag_file(
        std::path::Path::new("t.yaml"),
        "mail:\n  tasks:\n    bad:\n      operator: boom\n      email: ops@example.com\n",
        &FolderConfig::default(),
        &AnyOperator,
    );
    assert!(errors.is_empty(), "{errors:?}");
    dags[0].tasks["bad"].clone()
}

fn alert() -> Alert<'static> {
    Alert {
        dag_id: "mail",
        run_id: "r1",
        ti: "bad",
        state: "failed",
        try_number: 1,
        max_tries: 1,
        exception: "Weft.TaskFailed: boom",
    }
}

fn trust() -> SmtpTrust {
    SmtpTrust {
        extra_roots: vec![CA.to_vec()],
    }
}

/// A writer every log line of the test goes to.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs `f` with every tracing event (all levels, all targets) written to the answer's text.
fn logged<T>(f: impl FnOnce() -> T) -> (T, String) {
    let logs = Logs::default();
    let l2 = logs.clone();
    let sub = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || l2.clone())
        .finish();
    let out = tracing::subscriber::with_default(sub, f);
    let text = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    (out, text)
}

#[test]
fn starttls_with_the_connections_login_delivers_and_never_logs_the_password() {
    let (port, seen) = sink(Mode::StartTls, 0);
    let conn = SmtpConn {
        port,
        password: PASSWORD,
        extra: r#"{"disable_ssl": true, "from_email": "weft@example.com", "timeout": 10}"#.into(),
    };
    let (sent, logs) = logged(|| send_alert_trusting(&conn, &task(), &alert(), &trust()));
    assert_eq!(sent.unwrap(), ["ops@example.com"]);
    let seen = seen.lock().unwrap();
    assert_eq!(
        seen.auth,
        [(format!(":weft:{PASSWORD}"), true)],
        "login after STARTTLS"
    );
    assert_eq!(seen.delivered, [vec!["<ops@example.com>".to_string()]]);
    assert!(
        logs.contains("sending task e-mail"),
        "logs captured: {logs}"
    );
    assert!(!logs.contains(PASSWORD), "{logs}");
}

#[test]
fn smtps_delivers_from_the_first_byte() {
    let (port, seen) = sink(Mode::Implicit, 0);
    let conn = SmtpConn {
        port,
        password: PASSWORD,
        extra: r#"{"from_email": "weft@example.com"}"#.into(),
    };
    send_alert_trusting(&conn, &task(), &alert(), &trust()).unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.auth.len(), 1);
    assert!(seen.auth[0].1);
    assert_eq!(seen.delivered.len(), 1);
}

#[test]
fn a_refused_login_names_no_password_even_when_the_server_echoes_it() {
    let (port, seen) = sink(Mode::StartTls, 0);
    let wrong = "Wr0ng-pass-991";
    let conn = SmtpConn {
        port,
        password: wrong,
        extra: r#"{"disable_ssl": true, "retry_limit": 3}"#.into(),
    };
    let (sent, logs) = logged(|| send_alert_trusting(&conn, &task(), &alert(), &trust()));
    let e = sent.unwrap_err().to_string();
    assert!(e.contains("535"), "{e}");
    assert!(!e.contains(wrong), "{e}");
    assert!(!logs.contains(wrong), "{logs}");
    let seen = seen.lock().unwrap();
    // the server did get (and echo) it: the masking is what kept it out
    assert_eq!(seen.auth, [(format!(":weft:{wrong}"), true)]);
    assert_eq!(seen.connections, 1, "a refused login is not retried");
    assert!(seen.delivered.is_empty());
}

#[test]
fn an_untrusted_certificate_or_no_starttls_gets_no_credentials() {
    // production trust (the Mozilla roots) does not know the sink's CA
    let (port, seen) = sink(Mode::StartTls, 0);
    let conn = SmtpConn {
        port,
        password: PASSWORD,
        extra: r#"{"disable_ssl": true, "retry_limit": 0}"#.into(),
    };
    let e = send_alert(&conn, &task(), &alert()).unwrap_err();
    assert!(!e.to_string().contains(PASSWORD), "{e}");
    assert!(seen.lock().unwrap().auth.is_empty(), "{e}");
    // a server that does not offer STARTTLS: required, so nothing is sent in the clear
    let (port, seen) = sink(Mode::PlainOnly, 0);
    let conn = SmtpConn {
        port,
        password: PASSWORD,
        extra: r#"{"disable_ssl": true, "retry_limit": 0}"#.into(),
    };
    assert!(send_alert_trusting(&conn, &task(), &alert(), &trust()).is_err());
    let seen = seen.lock().unwrap();
    assert!(
        seen.auth.is_empty() && seen.delivered.is_empty(),
        "{seen:?}"
    );
    // turning verification off is refused outright
    let conn = SmtpConn {
        port,
        password: PASSWORD,
        extra: r#"{"ssl_context": "none"}"#.into(),
    };
    let e = send_alert(&conn, &task(), &alert()).unwrap_err();
    assert!(e.to_string().contains("ssl_context"), "{e}");
}

#[test]
fn dropped_connections_are_retried_up_to_retry_limit() {
    let (port, seen) = sink(Mode::StartTls, 2);
    let conn = SmtpConn {
        port,
        password: PASSWORD,
        extra: r#"{"disable_ssl": true, "retry_limit": 2}"#.into(),
    };
    send_alert_trusting(&conn, &task(), &alert(), &trust()).unwrap();
    assert_eq!(seen.lock().unwrap().connections, 3);
    let (port, seen) = sink(Mode::StartTls, 2);
    let conn = SmtpConn {
        port,
        password: PASSWORD,
        extra: r#"{"disable_ssl": true, "retry_limit": 1}"#.into(),
    };
    assert!(send_alert_trusting(&conn, &task(), &alert(), &trust()).is_err());
    let seen = seen.lock().unwrap();
    assert_eq!(seen.connections, 2);
    assert!(seen.delivered.is_empty());
}
