//! Shared fixtures of the server tests: the router on 127.0.0.1:0 (stopped when dropped) and a
//! hand-written HTTP/1.1 client.

#![allow(dead_code)]

use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use weft_server::auth::{Principal, Tokens};
use weft_server::AppState;

pub struct Server {
    pub addr: std::net::SocketAddr,
    /// The app behind the listener (its audit tree, its runtime).
    pub state: Arc<AppState>,
    _home: tempfile::TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// The server's `$WEFT_HOME` (roles go in its `roles/`).
    pub fn home(&self) -> &std::path::Path {
        self._home.path()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the app with `tokens` (None: no auth) allowing `max_running` executions at once: on
/// its sled store, or — when `WEFT_SERVER_TEST_DB=postgres` — on a fresh database of the test
/// PostgreSQL cluster (`$WEFT_TEST_PG`), so one test body runs on both backends.
pub async fn start_with(tokens: Option<Tokens>, max_running: usize) -> Server {
    let home = tempfile::tempdir().unwrap();
    let store = Arc::new(weft_store::Store::open(home.path()).unwrap());
    let state = match test_database() {
        None => AppState::with_limit(store, tokens, max_running).unwrap(),
        Some(url) => {
            let db = weft_engine::persistence::Database::open(Some(&url), store.db()).unwrap();
            AppState::with_limit_on(store, tokens, max_running, db).unwrap()
        }
    };
    serve(home, state).await
}

/// A fresh database of `$WEFT_TEST_PG` when `WEFT_SERVER_TEST_DB=postgres`.
fn test_database() -> Option<String> {
    if std::env::var("WEFT_SERVER_TEST_DB").as_deref() != Ok("postgres") {
        return None;
    }
    let admin = std::env::var("WEFT_TEST_PG")
        .expect("WEFT_SERVER_TEST_DB=postgres needs WEFT_TEST_PG (scripts/pg.sh)");
    let name = format!("weft_api_{}", uuid::Uuid::new_v4().simple());
    let o = std::process::Command::new("psql")
        .args([
            &admin,
            "-v",
            "ON_ERROR_STOP=1",
            "-qc",
            &format!("CREATE DATABASE {name}"),
        ])
        .output()
        .expect("psql");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    Some(format!("{}/{name}", admin.rsplit_once('/').unwrap().0))
}

/// Starts the app with `tokens` over a `$WEFT_HOME` whose `dags/` holds `dags` (file name,
/// YAML text) and whose registry names `plugins` (records only, no component: these servers
/// look at records and decisions, not at task results); on PostgreSQL as [`start_with`].
pub async fn start_with_dags(
    tokens: Option<Tokens>,
    dags: &[(&str, String)],
    plugins: &[&str],
) -> Server {
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join("dags")).unwrap();
    for (file, yaml) in dags {
        std::fs::write(home.path().join("dags").join(file), yaml).unwrap();
    }
    let store = Arc::new(weft_store::Store::open(home.path()).unwrap());
    for name in plugins {
        store
            .registry()
            .put(&weft_store::PluginRecord {
                name: name.to_string(),
                version: "0.1.0".into(),
                digest: weft_store::Digest::of(name.as_bytes()),
                world: "task".into(),
                manifest: serde_json::json!({"description": name}),
                installed_at: 0,
            })
            .unwrap();
    }
    let state = match test_database() {
        None => AppState::with_limit(store, tokens, 10).unwrap(),
        Some(url) => {
            let db = weft_engine::persistence::Database::open(Some(&url), store.db()).unwrap();
            AppState::with_limit_on(store, tokens, 10, db).unwrap()
        }
    };
    serve(home, state).await
}

/// Serves `state` (whose store lives in `home`) on a free loopback port.
#[allow(dead_code)]
pub async fn serve_state(home: tempfile::TempDir, state: Arc<AppState>) -> Server {
    serve(home, state).await
}

/// Serves `state` (whose store lives in `home`) on a free loopback port.
async fn serve(home: tempfile::TempDir, state: Arc<AppState>) -> Server {
    let app = state.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        weft_server::serve(listener, state).await.unwrap();
    });
    Server {
        addr,
        state: app,
        _home: home,
        task,
    }
}

/// Starts the app with `tokens` and a mock configuration (`weft server --mock-config`).
pub async fn start_with_mocks(
    tokens: Option<Tokens>,
    mocks: Option<weft_asl::mock::MockConfig>,
) -> Server {
    let home = tempfile::tempdir().unwrap();
    let store = Arc::new(weft_store::Store::open(home.path()).unwrap());
    let state = AppState::with_mocks(store, tokens, mocks).unwrap();
    serve(home, state).await
}

/// One raw HTTP/1.1 request; returns (status, headers lower-cased, body).
pub async fn request(
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

/// A principal named `name` (also its access key id) with `secret` and an IAM-style `policy`
/// (None: allowed everything), as a [`Tokens`] entry.
pub fn principal(
    name: &str,
    secret: &str,
    policy: Option<serde_json::Value>,
) -> (String, Principal) {
    (
        name.to_string(),
        Principal {
            name: name.to_string(),
            access_key_id: name.to_string(),
            secret: secret.to_string(),
            policy: policy.map(|p| Arc::new(weft_sandbox::Policy::from_value(&p).unwrap())),
        },
    )
}

/// One Step Functions JSON call (`X-Amz-Target: AWSStepFunctions.ACTION`) as the bearer
/// `who`: the status and the decoded body.
pub async fn sfn_call(
    s: &Server,
    who: &str,
    action: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let target = format!("AWSStepFunctions.{action}");
    let auth = format!("Bearer {who}");
    let (status, _, text) = request(
        s.addr,
        "POST",
        "/",
        &[
            ("Content-Type", "application/x-amz-json-1.0"),
            ("X-Amz-Target", &target),
            ("Authorization", &auth),
        ],
        &body.to_string(),
    )
    .await;
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}")),
    )
}

/// [`sfn_call`] that must succeed: its body.
pub async fn sfn_ok(
    s: &Server,
    who: &str,
    action: &str,
    body: serde_json::Value,
) -> serde_json::Value {
    let (st, v) = sfn_call(s, who, action, body).await;
    assert_eq!(st, 200, "{action} as {who}: {v}");
    v
}
