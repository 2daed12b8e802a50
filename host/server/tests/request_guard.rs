//! `--no-auth` stays local, and no other site can make a browser change anything: attacks
//! over raw HTTP on a server without authentication (cross-site POSTs, foreign and
//! loopback-looking `Host` headers, form content types), and the requests of the UI, curl and
//! the AWS SDKs, which still work.

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod common;

type Srv = common::Server;

/// A server without authentication (as `make demo` runs it) with a DAG `pipe`.
async fn start(tokens: Option<weft_server::auth::Tokens>) -> Srv {
    let dags = [(
        "pipe.yaml",
        "pipe:\n  schedule: null\n  start_date: 2024-01-01\n  tasks:\n    a:\n      operator: echo\n".to_string(),
    )];
    common::start_with_dags(tokens, &dags, &["echo"]).await
}

/// A raw request: `head` is the request line and headers without the final blank line
/// (Content-Length and Connection are added); returns (status, body).
async fn raw(addr: std::net::SocketAddr, head: &str, body: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "{head}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

async fn runs(s: &Srv) -> usize {
    let (status, body) = raw(
        s.addr,
        &format!("GET /v1/dags/pipe/runs HTTP/1.1\r\nHost: {}", s.addr),
        "",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    v["runs"].as_array().unwrap().len()
}

async fn executions(s: &Srv) -> usize {
    let (status, body) = raw(
        s.addr,
        &format!("GET /v1/executions HTTP/1.1\r\nHost: {}", s.addr),
        "",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<Value>(&body).unwrap()["total"]
        .as_u64()
        .unwrap() as usize
}

fn kind(body: &str) -> String {
    serde_json::from_str::<Value>(body).map_or_else(
        |_| body.to_string(),
        |v| v["__type"].as_str().unwrap_or("").to_string(),
    )
}

/// The reproduction of the issue and its variants: a cross-site POST to trigger a DAG run.
#[tokio::test]
async fn cross_site_and_rebound_requests_are_refused() {
    let s = start(None).await;
    let a = s.addr;
    let port = a.port();
    let trigger = "POST /v1/dags/pipe/runs HTTP/1.1";
    let cases: Vec<(String, &str, &str)> = vec![
        // the issue's reproduction: foreign Origin and Host, text/plain
        (format!("{trigger}\r\nHost: evil.example:{port}\r\nOrigin: http://evil.example:{port}\r\nContent-Type: text/plain"), "{}", "InvalidHostHeader"),
        // each part alone
        (format!("{trigger}\r\nHost: {a}\r\nOrigin: http://evil.example\r\nContent-Type: application/json"), "{}", "CrossSiteRequestRefused"),
        (format!("{trigger}\r\nHost: {a}\r\nOrigin: null\r\nContent-Type: application/json"), "{}", "CrossSiteRequestRefused"),
        (format!("{trigger}\r\nHost: {a}\r\nOrigin: http://127.0.0.1.evil.com:{port}\r\nContent-Type: application/json"), "{}", "CrossSiteRequestRefused"),
        (format!("{trigger}\r\nHost: {a}\r\nOrigin: http://localhost.evil.com:{port}\r\nContent-Type: application/json"), "{}", "CrossSiteRequestRefused"),
        (format!("{trigger}\r\nHost: {a}\r\nSec-Fetch-Site: cross-site\r\nContent-Type: application/json"), "{}", "CrossSiteRequestRefused"),
        (format!("{trigger}\r\nHost: {a}\r\nContent-Type: text/plain"), "{}", "UnsupportedMediaTypeException"),
        (format!("{trigger}\r\nHost: {a}\r\nContent-Type: text/plain;charset=UTF-8"), "{}", "UnsupportedMediaTypeException"),
        (format!("{trigger}\r\nHost: {a}\r\nContent-Type: multipart/form-data; boundary=X"), "--X\r\nContent-Disposition: form-data; name=\"conf\"\r\n\r\n{}\r\n--X--\r\n", "UnsupportedMediaTypeException"),
        (format!("{trigger}\r\nHost: {a}\r\nContent-Type: application/x-www-form-urlencoded"), "conf=%7B%7D", "UnsupportedMediaTypeException"),
        (format!("{trigger}\r\nHost: {a}"), "{}", "UnsupportedMediaTypeException"),
        (format!("{trigger}\r\nHost: {a}\r\nContent-Type: application/json\r\nContent-Type: text/plain"), "{}", "UnsupportedMediaTypeException"),
        // DNS rebinding: the attacker's name (or one that looks like the loopback) as Host
        (format!("{trigger}\r\nHost: evil.example\r\nContent-Type: application/json"), "{}", "InvalidHostHeader"),
        (format!("{trigger}\r\nHost: 127.0.0.1.evil.com:{port}\r\nContent-Type: application/json"), "{}", "InvalidHostHeader"),
        (format!("{trigger}\r\nHost: localhost.evil.com:{port}\r\nContent-Type: application/json"), "{}", "InvalidHostHeader"),
        (format!("{trigger}\r\nHost: 2130706433:{port}\r\nContent-Type: application/json"), "{}", "InvalidHostHeader"),
        (format!("{trigger}\r\nHost: [::ffff:7f00:1]:{port}\r\nContent-Type: application/json"), "{}", "InvalidHostHeader"),
        (format!("POST http://evil.example/v1/dags/pipe/runs HTTP/1.1\r\nHost: {a}\r\nContent-Type: application/json"), "{}", "InvalidHostHeader"),
    ];
    for (head, body, want) in &cases {
        let (status, text) = raw(a, head, body).await;
        assert!(
            status == 403 || status == 415 || status == 400,
            "{head}: {status} {text}"
        );
        // hyper itself may refuse a malformed head with a bare 400
        if status != 400 {
            assert_eq!(kind(&text), *want, "{head}: {text}");
        }
    }
    assert_eq!(runs(&s).await, 0, "no refused request made a run");

    // reads through a rebound name are refused too (the UI's data, the API on POST /)
    for head in [
        "GET /v1/executions HTTP/1.1\r\nHost: evil.example".to_string(),
        format!("GET / HTTP/1.1\r\nHost: localhost.evil.com:{port}"),
        format!("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1.evil.com:{port}"),
        format!("GET /healthz HTTP/1.1\r\nHost: evil.example:{port}"),
        format!("POST / HTTP/1.1\r\nHost: evil.example:{port}\r\nX-Amz-Target: AWSStepFunctions.ListStateMachines\r\nContent-Type: application/x-amz-json-1.0"),
    ] {
        let (status, text) = raw(a, &head, "{}").await;
        assert_eq!((status, kind(&text)), (403, "InvalidHostHeader".into()), "{head}");
    }
}

/// The Step Functions endpoint refuses the same cross-site shapes: a form cannot start an
/// execution.
#[tokio::test]
async fn a_form_cannot_use_the_step_functions_api() {
    let s = start(None).await;
    let a = s.addr;
    let create = format!("POST / HTTP/1.1\r\nHost: {a}\r\nX-Amz-Target: AWSStepFunctions.CreateStateMachine\r\nContent-Type: application/x-amz-json-1.0");
    let def = json!({"name": "sm", "definition": r#"{"StartAt":"P","States":{"P":{"Type":"Pass","End":true}}}"#}).to_string();
    let (status, text) = raw(a, &create, &def).await;
    assert_eq!(status, 200, "{text}");
    let start_body =
        json!({"stateMachineArn": "arn:aws:states:us-east-1:000000000000:stateMachine:sm"})
            .to_string();
    for extra in [
        "Content-Type: text/plain",
        "Content-Type: application/x-www-form-urlencoded",
        "Content-Type: multipart/form-data; boundary=x",
        "Content-Type: application/x-amz-json-1.0\r\nOrigin: http://evil.example",
        "Content-Type: application/x-amz-json-1.0\r\nOrigin: null",
        "Content-Type: application/x-amz-json-1.0\r\nSec-Fetch-Site: cross-site",
    ] {
        let head = format!("POST / HTTP/1.1\r\nHost: {a}\r\nX-Amz-Target: AWSStepFunctions.StartExecution\r\n{extra}");
        let (status, text) = raw(a, &head, &start_body).await;
        assert!(status == 403 || status == 415, "{extra}: {status} {text}");
    }
    assert_eq!(executions(&s).await, 0);
}

/// The user's side: the UI's own requests (same origin, JSON), a loopback origin, curl, the
/// AWS SDKs' content types; with and without authentication.
#[tokio::test]
async fn the_ui_curl_and_sdks_still_work() {
    let s = start(None).await;
    let a = s.addr;
    let port = a.port();
    let trigger = "POST /v1/dags/pipe/runs HTTP/1.1";
    for extra in [
        // the UI: same origin, fetch() metadata, JSON
        format!(
            "Origin: http://{a}\r\nSec-Fetch-Site: same-origin\r\nContent-Type: application/json"
        ),
        // curl -H 'content-type: application/json'
        "content-type: application/json".to_string(),
        "Content-Type: application/json; charset=utf-8".to_string(),
        // a loopback origin (a local tool on another port)
        format!(
            "Origin: http://localhost:{}\r\nContent-Type: application/json",
            port + 1
        ),
    ] {
        let (status, text) = raw(a, &format!("{trigger}\r\nHost: {a}\r\n{extra}"), "{}").await;
        assert_eq!(status, 200, "{extra}: {text}");
    }
    for host in [
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
        "app.localhost".into(),
    ] {
        let (status, text) = raw(
            a,
            &format!("{trigger}\r\nHost: {host}\r\nContent-Type: application/json"),
            "{}",
        )
        .await;
        assert_eq!(status, 200, "Host {host}: {text}");
    }
    assert_eq!(runs(&s).await, 7);
    for ct in [
        "application/x-amz-json-1.0",
        "application/x-amz-json-1.1",
        "application/json",
    ] {
        let (status, text) = raw(
            a,
            &format!("POST / HTTP/1.1\r\nHost: {a}\r\nX-Amz-Target: AWSStepFunctions.ListStateMachines\r\nContent-Type: {ct}"),
            "{}",
        )
        .await;
        assert_eq!(status, 200, "{ct}: {text}");
    }
    // a GET needs no content type, and a link from another site still opens the UI
    let (status, _) = raw(
        a,
        &format!("GET / HTTP/1.1\r\nHost: {a}\r\nSec-Fetch-Site: cross-site"),
        "",
    )
    .await;
    assert_eq!(status, 200);

    // with authentication, any Host (a server behind a name), same rules for state changes
    let s = start(Some(weft_server::auth::Tokens::from_keys(&[(
        "K", "secret",
    )])))
    .await;
    let a = s.addr;
    let (status, text) = raw(
        a,
        &format!("{trigger}\r\nHost: weft.example.com\r\nOrigin: https://weft.example.com\r\nAuthorization: Bearer secret\r\nContent-Type: application/json"),
        "{}",
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let (status, text) = raw(
        a,
        &format!("{trigger}\r\nHost: weft.example.com\r\nOrigin: https://evil.example\r\nAuthorization: Bearer secret\r\nContent-Type: application/json"),
        "{}",
    )
    .await;
    assert_eq!(
        (status, kind(&text)),
        (403, "CrossSiteRequestRefused".into())
    );
    let (status, text) = raw(
        a,
        &format!("{trigger}\r\nHost: weft.example.com\r\nAuthorization: Bearer secret\r\nContent-Type: text/plain"),
        "{}",
    )
    .await;
    assert_eq!(
        (status, kind(&text)),
        (415, "UnsupportedMediaTypeException".into())
    );
}
