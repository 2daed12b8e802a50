//! The web UI's static files: served by the router on 127.0.0.1:0 without authentication, with
//! the right content types; `POST /` (the API) still answers next to `GET /`.

use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use weft_server::auth::Tokens;
use weft_server::AppState;

struct Server {
    addr: std::net::SocketAddr,
    _home: tempfile::TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn start(tokens: Option<Tokens>) -> Server {
    let home = tempfile::tempdir().unwrap();
    let store = Arc::new(weft_store::Store::open(home.path()).unwrap());
    let state = AppState::with_limit(store, tokens, 10).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        weft_server::serve(listener, state).await.unwrap();
    });
    Server {
        addr,
        _home: home,
        task,
    }
}

/// One raw HTTP/1.1 request; returns (status, headers lower-cased, body).
async fn request(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Vec<(String, String)>, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8(buf).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let hs = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, hs, body.to_string())
}

fn header<'a>(hs: &'a [(String, String)], name: &str) -> &'a str {
    hs.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

fn tokens() -> Tokens {
    Tokens(["secret-token".to_string()].into_iter().collect())
}

#[tokio::test]
async fn index_is_html_without_auth() {
    let srv = start(Some(tokens())).await;
    let (status, hs, body) = request(srv.addr, "GET", "/", &[], "").await;
    assert_eq!(status, 200);
    assert!(
        header(&hs, "content-type").starts_with("text/html"),
        "{hs:?}"
    );
    assert!(body.contains("<title>weft server</title>"), "{body}");
    assert!(body.contains("/ui/app.js") && body.contains("/ui/app.css"));
    assert!(body.contains("<label for=\"token\">"));
}

#[tokio::test]
async fn assets_have_content_types() {
    let srv = start(Some(tokens())).await;
    let (status, hs, body) = request(srv.addr, "GET", "/ui/app.js", &[], "").await;
    assert_eq!(status, 200);
    assert!(
        header(&hs, "content-type").starts_with("text/javascript"),
        "{hs:?}"
    );
    assert!(body.contains("AWSStepFunctions."));
    assert!(body.contains("application/x-amz-json-1.0"));
    assert!(body.contains("ListStateMachines") && body.contains("GetExecutionHistory"));
    assert!(body.contains("JSON.parse"));

    let (status, hs, body) = request(srv.addr, "GET", "/ui/app.css", &[], "").await;
    assert_eq!(status, 200);
    assert!(
        header(&hs, "content-type").starts_with("text/css"),
        "{hs:?}"
    );
    assert!(body.contains("@media"));

    let (status, _, _) = request(srv.addr, "GET", "/ui/missing.js", &[], "").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn api_still_served_on_post() {
    let srv = start(Some(tokens())).await;
    let target = [
        ("X-Amz-Target", "AWSStepFunctions.ListStateMachines"),
        ("Content-Type", "application/x-amz-json-1.0"),
    ];
    let (status, _, body) = request(srv.addr, "POST", "/", &target, "{}").await;
    assert_eq!(status, 403, "{body}");
    let mut with_auth = target.to_vec();
    with_auth.push(("Authorization", "Bearer secret-token"));
    let (status, hs, body) = request(srv.addr, "POST", "/", &with_auth, "{}").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(header(&hs, "content-type"), "application/x-amz-json-1.0");
    assert!(body.contains("stateMachines"));
}
