//! Shared fixtures of the `weft` binary's integration tests: where the repository and the
//! guest plugins built by `make guests` are, and free loopback ports.

#![allow(dead_code)]

pub mod backend;
pub mod pg_nodes;

pub use backend::Backend;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A raw HTTP/1.1 exchange with the server on `port`: (status, body). The answer is read to
/// its end or the first read error (a server may close on hostile input); no status is 0.
pub fn raw(port: u16, request: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, body.to_string())
}

/// One AWS JSON 1.0 call to a `weft server` without authentication; (status, body).
pub fn call(port: u16, action: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
    let b = body.to_string();
    let (status, body) = raw(
        port,
        &format!(
            "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Amz-Target: AWSStepFunctions.{action}\r\nContent-Type: application/x-amz-json-1.0\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{b}",
            b.len()
        ),
    );
    // the server answers with a Content-Length body (no chunking) for JSON
    (
        status,
        serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
    )
}

/// [`call`], asserting status 200; the answer.
pub fn ok(port: u16, action: &str, body: serde_json::Value) -> serde_json::Value {
    let (st, v) = call(port, action, &body);
    assert_eq!(st, 200, "{action}: {v}");
    v
}

/// Runs `weft ARGS` with `$WEFT_HOME` = `home` from the repository root.
pub fn weft(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(args)
        .env("WEFT_HOME", home)
        .current_dir(repo())
        .output()
        .unwrap()
}

/// [`weft`] on `backend`'s store.
pub fn weft_on(backend: &Backend, home: &Path, args: &[&str]) -> Output {
    backend
        .apply(&mut Command::new(env!("CARGO_BIN_EXE_weft")))
        .args(args)
        .env("WEFT_HOME", home)
        .current_dir(repo())
        .output()
        .unwrap()
}

/// A finished command's stdout, trimmed.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// A finished command's stderr.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// Where `make guests` put the plugins (`WEFT_PLUGINS_DIR` overrides).
pub fn plugins_dir() -> PathBuf {
    std::env::var_os("WEFT_PLUGINS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/plugins"))
}

/// A built plugin, by path under the plugins directory.
pub fn plugin(rel: &str) -> PathBuf {
    let p = plugins_dir().join(rel);
    assert!(
        p.is_file(),
        "{} is missing: run `make guests` first",
        p.display()
    );
    p
}

/// A port free on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `weft server` child process on a free loopback port; dropping it kills and reaps it.
pub struct Server {
    pub child: Child,
    pub port: u16,
}

impl Server {
    /// SIGKILL: no shutdown hook runs.
    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `weft server` with `$WEFT_HOME` = `home` in `work` (and `env` set), waiting until it
/// listens; `no_auth` adds `--no-auth`.
pub fn start_weft_server(home: &Path, work: &Path, no_auth: bool, env: &[(&str, &Path)]) -> Server {
    start_weft_server_on(&Backend::Sled, home, work, no_auth, env)
}

/// [`start_weft_server`] on `backend`'s store.
pub fn start_weft_server_on(
    backend: &Backend,
    home: &Path,
    work: &Path,
    no_auth: bool,
    env: &[(&str, &Path)],
) -> Server {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut args = vec!["server", "--listen", &listen];
    if no_auth {
        args.push("--no-auth");
    }
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_weft"));
    cmd.args(&args).env("WEFT_HOME", home).current_dir(work);
    backend.apply(&mut cmd);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // dropping the Server kills and reaps the child on every path
    let mut server = Server { child, port };
    wait_until_serving(&mut server.child, port, Duration::from_secs(60));
    server
}

/// Waits until the `weft` child answers `GET /healthz` on `port` with `200 ok`, panicking when it
/// exits first or `patience` runs out. A connection alone proves nothing: the port may belong to
/// another process by then, or the probe may connect to itself (a loopback connect whose
/// ephemeral source port equals the port probed), so only weft's own answer counts.
pub fn wait_until_serving(child: &mut Child, port: u16, patience: Duration) {
    let end = Instant::now() + patience;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the server exited before serving on port {port}: {status}");
        }
        if healthz(port) {
            return;
        }
        assert!(
            Instant::now() < end,
            "the server did not answer /healthz on port {port} within {patience:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether `GET /healthz` on `port` answers `200` with the body `ok`.
fn healthz(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    if s.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.starts_with("HTTP/1.1 200") && out.ends_with("\r\n\r\nok")
}

/// The test cluster's admin URL: `$WEFT_TEST_PG`, else a cluster of this test process started by
/// `scripts/pg.sh` (stopped when the process ends). `None`: PostgreSQL cannot be had here, which
/// is skipped loudly unless `WEFT_REQUIRE_PG=1` makes it a failure.
pub fn pg_cluster() -> Option<String> {
    if let Ok(u) = std::env::var("WEFT_TEST_PG") {
        if !u.is_empty() {
            return Some(u);
        }
    }
    start_pg_cluster(&std::env::temp_dir().join(format!("weft-pg-test-{}", std::process::id())))
}

/// A cluster of `scripts/pg.sh` with its state in `state`, stopped when this test process
/// ends; its admin URL (`None`: as [`pg_cluster`]).
pub fn start_pg_cluster(state: &Path) -> Option<String> {
    let o = Command::new("bash")
        .arg(repo().join("scripts/pg.sh"))
        .args(["start", "--stop-with", &std::process::id().to_string()])
        .env("WEFT_PG_STATE", state)
        .output()
        .ok()?;
    let url = String::from_utf8_lossy(&o.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("export WEFT_TEST_PG=").map(str::to_string));
    if url.is_none() {
        assert!(
            std::env::var("WEFT_REQUIRE_PG").as_deref() != Ok("1"),
            "PostgreSQL is required (WEFT_REQUIRE_PG=1): {}",
            String::from_utf8_lossy(&o.stderr)
        );
        eprintln!("\n*** SKIPPING: PostgreSQL could not be installed or started ***\n");
    }
    url
}

/// A Standard flow over the `record-run` plugin (one file per real run under `/runs`, see
/// [`recorder_home`]): a task, a one-second Wait, a task, then `{"n": INPUT.n, "ok": true}`.
pub const RECORDER_FLOW: &str = r#"{
  "StartAt": "T1",
  "States": {
    "T1": {"Type": "Task", "Resource": "weft:plugin:record-run",
           "Parameters": {"dir": "/runs", "id.$": "States.Format('{}-t1', $$.Execution.Name)", "n.$": "$.n"},
           "ResultPath": "$.t1",
           "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1, "MaxAttempts": 5}],
           "Next": "W"},
    "W": {"Type": "Wait", "Seconds": 1, "Next": "T2"},
    "T2": {"Type": "Task", "Resource": "weft:plugin:record-run",
           "Parameters": {"dir": "/runs", "id.$": "States.Format('{}-t2', $$.Execution.Name)", "n.$": "$.t1.n"},
           "ResultPath": "$.t2",
           "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1, "MaxAttempts": 5}],
           "Next": "Done"},
    "Done": {"Type": "Pass", "Parameters": {"n.$": "$.t2.n", "ok": true}, "End": true}
  }
}"#;

/// A `$WEFT_HOME` with `plugins` installed and the role `weft:role:recorder` (read and write
/// under `runs/` of the working directory: see [`recorder_work`]).
pub fn recorder_home(plugins: &[&str]) -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join("roles")).unwrap();
    std::fs::write(
        home.path().join("roles/recorder.json"),
        serde_json::json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["fs:Read", "fs:Write"], "Resource": ["file:runs/*"]}
        ]})
        .to_string(),
    )
    .unwrap();
    for p in plugins {
        install_plugin(home.path(), p);
    }
    home
}

/// A working directory holding the empty `runs/` that record-run writes into.
pub fn recorder_work() -> tempfile::TempDir {
    let work = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(work.path().join("runs")).unwrap();
    work
}

/// Real runs per task id (`NAME-t1`, `NAME-t2`), from the files record-run left in
/// `work/runs`.
pub fn recorded_runs(work: &Path) -> std::collections::HashMap<String, usize> {
    let mut m = std::collections::HashMap::new();
    for e in std::fs::read_dir(work.join("runs")).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        if let Some((id, _)) = name.rsplit_once('.') {
            *m.entry(id.to_string()).or_insert(0) += 1;
        }
    }
    m
}

/// A temporary folder holding `files` (name, text): a DAG folder for one test.
pub fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for (n, t) in files {
        std::fs::write(d.path().join(n), t).unwrap();
    }
    d
}

/// `weft plugin install --force` of the built plugin `rel` into `home`.
pub fn install_plugin(home: &Path, rel: &str) {
    let o = weft(
        home,
        &[
            "plugin",
            "install",
            "--force",
            plugin(rel).to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "install {rel}: {}", stderr(&o));
}
