//! The web UI in a real browser: headless Chromium driven over WebDriver (chromedriver) against
//! the real `weft server` binary with authentication on.
//!
//! One test walks the UI like a user: log in with a token; start an execution from the form
//! (invalid JSON is refused first); watch the graph of the running execution change colour live
//! (server-sent events, no reload); history, Gantt chart and task logs; send a task token for a
//! `.waitForTaskToken` task; stop an execution; executions list filters; plugins and DAG pages;
//! keyboard focus order; a narrow window. It saves screenshots under `target/screenshots/` and
//! prints render timings of an execution with 10,000 history events and a DAG with 1,000 tasks
//! (figures, not assertions).
//!
//! Needs `chromium` and `chromedriver` (Debian: chromium, chromium-driver; `scripts/test.sh`
//! installs them) and the plugins of `make guests`. When they are missing the test fails if
//! `WEFT_BROWSER_TESTS=1` (as `make test` sets it) and is skipped with a note otherwise.
//! `WEFT_CHROMIUM` / `WEFT_CHROMEDRIVER` override the binaries.

mod common;
use common::*;

use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TOKEN: &str = "WEFTBROWSERTESTTOKEN0123456789";
/// The secret of a key whose policy may read DAGs but not change them.
const VIEWER: &str = "WEFTBROWSERVIEWERSECRET0123456789";

/// A DAG with nested task groups and typed params, whose every word is HTML or script.
const OPS_DEMO: &str = r#"# ops demo </pre><script>window.__xss=1</script>
ops_demo:
  description: "Groups and params <img src=x onerror=window.__xss=2><script>window.__xss=3</script>"
  default_args:
    owner: ops
    start_date: 2024-01-01
  schedule: null
  params:
    rows: {default: 10, type: integer, minimum: 1, maximum: 100, description: "rows to load <b>bold</b><script>window.__xss=4</script>"}
    mode: {default: fast, type: string, enum: [fast, "<img src=x onerror=window.__xss=5>"], description: how to load}
    dry_run: {default: false, type: boolean, description: only pretend}
    "<svg onload=window.__xss=8>": plain
  task_groups:
    extract:
      tooltip: "reads <em>sources</em>"
    clean:
      parent_group_name: extract
  tasks:
    start:
      operator: echo
    a:
      operator: echo
      task_group_name: extract
      dependencies: [start]
    b:
      operator: echo
      task_group_name: extract
      dependencies: [start]
    c:
      operator: echo
      task_group_name: clean
      dependencies: [a, b]
    load:
      operator: echo
      dependencies: [extract]
      rows: "{{ params.rows }}"
"#;
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn find_binary(env: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env) {
        let p = PathBuf::from(p);
        return p.is_file().then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for n in names {
            let p = dir.join(n);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// Child processes killed when the test ends, however it ends.
struct Procs(Vec<(&'static str, Child)>);

impl Drop for Procs {
    fn drop(&mut self) {
        for (name, c) in self.0.iter_mut().rev() {
            if let Err(e) = c.kill() {
                eprintln!("browser test: stopping {name}: {e}");
            }
            let _ = c.wait();
        }
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into()
}

fn http(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> (u16, Value) {
    let resp = match (method, body) {
        ("GET", _) => {
            let mut r = agent.get(url);
            for (k, v) in headers {
                r = r.header(*k, *v);
            }
            r.call()
        }
        ("DELETE", _) => agent.delete(url).call(),
        (_, b) => {
            // one Content-Type: the server refuses a request with two
            let mut r = if method == "PATCH" {
                agent.patch(url)
            } else {
                agent.post(url)
            };
            if !headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            {
                r = r.header("Content-Type", "application/json");
            }
            for (k, v) in headers {
                r = r.header(*k, *v);
            }
            r.send(b.map(|b| b.to_string()).unwrap_or_else(|| "{}".into()))
        }
    };
    let mut resp = resp.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = resp.status().as_u16();
    let text = resp
        .body_mut()
        .with_config()
        .limit(256 << 20)
        .read_to_string()
        .unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// The Step Functions API of the server under test.
struct Sfn {
    agent: ureq::Agent,
    base: String,
}

impl Sfn {
    fn call(&self, action: &str, body: Value) -> Value {
        let target = format!("AWSStepFunctions.{action}");
        let auth = format!("Bearer {TOKEN}");
        let (status, v) = http(
            &self.agent,
            "POST",
            &format!("{}/", self.base),
            &[
                ("X-Amz-Target", &target),
                ("Authorization", &auth),
                ("Content-Type", "application/x-amz-json-1.0"),
            ],
            Some(&body),
        );
        assert_eq!(status, 200, "{action}: {v}");
        v
    }

    fn create(&self, name: &str, def: Value) -> String {
        self.call(
            "CreateStateMachine",
            json!({"name": name, "definition": def.to_string(), "roleArn": "arn:aws:iam::000000000000:role/ui"}),
        )["stateMachineArn"]
            .as_str()
            .unwrap()
            .to_string()
    }

    fn start(&self, sm: &str, name: &str, input: Value) -> String {
        self.call(
            "StartExecution",
            json!({"stateMachineArn": sm, "name": name, "input": input.to_string()}),
        )["executionArn"]
            .as_str()
            .unwrap()
            .to_string()
    }

    fn status(&self, exec: &str) -> Value {
        self.call("DescribeExecution", json!({"executionArn": exec}))
    }

    fn wait_done(&self, exec: &str, timeout: Duration) -> Value {
        let end = Instant::now() + timeout;
        loop {
            let d = self.status(exec);
            if d["status"] != "RUNNING" {
                return d;
            }
            assert!(
                Instant::now() < end,
                "{exec} still RUNNING after {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// A WebDriver session.
struct Browser {
    agent: ureq::Agent,
    base: String,
}

impl Browser {
    fn cmd(&self, method: &str, path: &str, body: Value) -> Value {
        let (status, v) = http(
            &self.agent,
            method,
            &format!("{}{path}", self.base),
            &[],
            Some(&body),
        );
        assert_eq!(status, 200, "WebDriver {method} {path}: {v}");
        v["value"].clone()
    }

    fn goto(&self, url: &str) {
        self.cmd("POST", "/url", json!({"url": url}));
    }

    fn js(&self, script: &str) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            json!({"script": script, "args": []}),
        )
    }

    fn find(&self, css: &str) -> String {
        let v = self.cmd(
            "POST",
            "/element",
            json!({"using": "css selector", "value": css}),
        );
        v[ELEMENT].as_str().unwrap().to_string()
    }

    /// Waits until `css` matches an element, then returns it.
    fn wait_for(&self, css: &str) -> String {
        self.wait_js(
            &format!("return !!document.querySelector({})", json!(css)),
            &format!("an element `{css}`"),
        );
        self.find(css)
    }

    fn click(&self, css: &str) {
        let el = self.wait_for(css);
        self.cmd("POST", &format!("/element/{el}/click"), json!({}));
    }

    fn type_into(&self, css: &str, text: &str) {
        let el = self.wait_for(css);
        self.cmd("POST", &format!("/element/{el}/clear"), json!({}));
        self.cmd(
            "POST",
            &format!("/element/{el}/value"),
            json!({"text": text}),
        );
    }

    fn text(&self, css: &str) -> String {
        self.js(&format!(
            "const e = document.querySelector({}); return e ? e.textContent : null",
            json!(css)
        ))
        .as_str()
        .unwrap_or("")
        .to_string()
    }

    /// Waits until `script` returns a truthy value (and returns it).
    fn wait_js(&self, script: &str, what: &str) -> Value {
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            let v = self.js(script);
            if !(v.is_null() || v == json!(false) || v == json!("") || v == json!(0)) {
                return v;
            }
            if Instant::now() > end {
                let body =
                    self.js("return document.querySelector('main').innerText.slice(0, 3000)");
                panic!(
                    "timed out waiting for {what}; the page shows:\n{}",
                    body.as_str().unwrap_or("")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn state_class(&self, state: &str) -> String {
        self.js(&format!(
            "const g = document.querySelector('g.node[data-state=\"{state}\"]'); return g ? g.getAttribute('class') : ''"
        ))
        .as_str()
        .unwrap_or("")
        .to_string()
    }

    fn wait_state(&self, state: &str, class: &str) {
        self.wait_js(
            &format!("const g = document.querySelector('g.node[data-state=\"{state}\"]'); return g && g.classList.contains('{class}')"),
            &format!("state {state} to be coloured {class}"),
        );
    }

    fn screenshot(&self, name: &str) {
        let b64 = self.cmd("GET", "/screenshot", Value::Null);
        let bytes = base64_decode(b64.as_str().unwrap());
        let dir = repo().join("target/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), bytes).unwrap();
    }

    /// The script errors the page raised so far (Chromium's console log at SEVERE: refused
    /// requests are logged there too and left out).
    fn script_errors(&self) -> Vec<String> {
        let v = self.cmd("POST", "/se/log", json!({"type": "browser"}));
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["message"].as_str())
            .filter(|m| m.contains("Uncaught") || m.contains("Error:"))
            .filter(|m| !m.contains("Failed to load resource"))
            .map(str::to_string)
            .collect()
    }

    /// A screenshot of the element `css` alone (smaller pictures for the README).
    fn element_screenshot(&self, css: &str, name: &str) {
        let el = self.wait_for(css);
        self.js(&format!(
            "document.querySelector({}).scrollIntoView({{block: 'start'}}); return 1",
            json!(css)
        ));
        let b64 = self.cmd("GET", &format!("/element/{el}/screenshot"), Value::Null);
        let bytes = base64_decode(b64.as_str().unwrap());
        let dir = repo().join("target/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), bytes).unwrap();
    }

    /// Sizes the window so that the page's viewport is `w` x `h` CSS pixels.
    fn window(&self, w: i64, h: i64) {
        self.cmd("POST", "/window/rect", json!({"width": w, "height": h}));
        let extra = self.js("return [outerWidth - innerWidth, outerHeight - innerHeight]");
        let (dw, dh) = (
            extra[0].as_i64().unwrap_or(0),
            extra[1].as_i64().unwrap_or(0),
        );
        if dw > 0 || dh > 0 {
            self.cmd(
                "POST",
                "/window/rect",
                json!({"width": w + dw, "height": h + dh}),
            );
        }
    }

    /// Scrolls the card headed `heading` to the top of the viewport.
    fn scroll_to(&self, heading_id: &str) {
        self.js(&format!(
            "document.getElementById('{heading_id}').closest('section').scrollIntoView(); return 1"
        ));
    }

    fn perf(&self, view: &str, min_items: usize) -> Value {
        self.wait_js(
            &format!("return (window.weftPerf || []).filter(p => p.view === '{view}' && p.items >= {min_items}).pop() || null"),
            &format!("a render timing of {view}"),
        )
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => (c - b'A') as u32,
            b'a'..=b'z' => (c - b'a' + 26) as u32,
            b'0'..=b'9' => (c - b'0' + 52) as u32,
            b'+' => 62,
            b'/' => 63,
            _ => 0,
        }
    };
    let clean: Vec<u8> = s.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    let mut out = Vec::with_capacity(clean.len() * 3 / 4);
    for chunk in clean.chunks(4) {
        let pad = chunk.iter().filter(|&&c| c == b'=').count();
        let n = chunk.iter().fold(0u32, |acc, &c| (acc << 6) | val(c)) << (6 * (4 - chunk.len()));
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad.min(3)]);
    }
    out
}

fn wait_http(agent: &ureq::Agent, url: &str, what: &str, child: &mut Child) {
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(resp) = agent.get(url).call() {
            if resp.status().as_u16() == 200 {
                return;
            }
        }
        if let Ok(Some(st)) = child.try_wait() {
            panic!("{what} exited before it was ready: {st}");
        }
        assert!(
            Instant::now() < end,
            "{what} did not answer {url} within 30 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A YAML DAG with `n` echo tasks in chains of 10 fanning out from one root.
fn big_dag_yaml(n: usize) -> String {
    let mut y = String::from("big_dag:\n  description: 1000 echo tasks (render test)\n  schedule: '@hourly'\n  default_args:\n    start_date: 2024-01-01\n  catchup: false\n  tags: [generated]\n  tasks:\n    root:\n      operator: echo\n");
    for i in 1..n {
        let up = if i % 10 == 1 {
            "root".to_string()
        } else {
            format!("t{}", i - 1)
        };
        y.push_str(&format!(
            "    t{i}:\n      operator: echo\n      dependencies: [{up}]\n"
        ));
    }
    y
}

#[test]
fn web_ui_in_a_browser() {
    let required = std::env::var("WEFT_BROWSER_TESTS").is_ok_and(|v| v == "1");
    let chromium = find_binary(
        "WEFT_CHROMIUM",
        &["chromium", "chromium-browser", "google-chrome"],
    );
    let driver = find_binary("WEFT_CHROMEDRIVER", &["chromedriver"]);
    let plugins = plugins_dir();
    let missing: Vec<String> = [
        chromium
            .is_none()
            .then(|| "chromium (Debian package `chromium`)".to_string()),
        driver
            .is_none()
            .then(|| "chromedriver (Debian package `chromium-driver`)".to_string()),
        (!plugins.join("echo.wasm").is_file() || !plugins.join("weft-airflow-py.wasm").is_file())
            .then(|| format!("the plugins in {} (`make guests`)", plugins.display())),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !missing.is_empty() {
        let msg = format!(
            "browser test needs {}; `bash scripts/test.sh` installs them",
            missing.join(", ")
        );
        if required {
            panic!("{msg} (WEFT_BROWSER_TESTS=1: failing instead of skipping)");
        }
        // written to the process's stderr directly, so the note shows despite output capture
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "browser test SKIPPED: {msg} (set WEFT_BROWSER_TESTS=1 to fail instead)"
        );
        return;
    }
    let (chromium, driver) = (chromium.unwrap(), driver.unwrap());
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir_all(home.join("dags")).unwrap();
    std::fs::create_dir_all(home.join("roles")).unwrap();
    std::fs::write(home.join("tokens"), format!("# browser test\n{TOKEN}\n")).unwrap();
    for f in ["read-data.json", "etl-role.json"] {
        std::fs::copy(
            repo().join("examples/roles").join(f),
            home.join("roles").join(f),
        )
        .unwrap();
    }
    std::fs::copy(
        repo().join("examples/dags/daily_orders.yaml"),
        home.join("dags/daily_orders.yaml"),
    )
    .unwrap();
    std::fs::write(home.join("dags/big_dag.yaml"), big_dag_yaml(1000)).unwrap();
    // the attacker's DAG files: text that is HTML or script everywhere the UI shows a DAG's
    // words (description, params, group tooltip, file text, load errors, a traceback)
    std::fs::write(home.join("dags/ops_demo.yaml"), OPS_DEMO).unwrap();
    std::fs::write(
        home.join("dags/broken.yaml"),
        "broken_dag:\n  tasks:\n    x:\n      operator: \"<img src=x onerror=window.__xss=6>\"\n",
    )
    .unwrap();
    std::fs::write(
        home.join("dags/raises.py"),
        "from airflow import DAG\n\ndef load():\n    raise ValueError('<script>window.__xss=7</script> bad <b>config</b>')\n\nload()\n",
    )
    .unwrap();
    // a key that may read DAGs but change nothing
    std::fs::write(
        home.join("viewer.json"),
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Action": ["dags:ListDags", "dags:GetDag", "dags:ListDagRuns", "dags:GetTaskLogs"],
            "Resource": ["weft:dag:*"]}]})
        .to_string(),
    )
    .unwrap();
    std::fs::write(
        home.join("credentials"),
        format!("[viewer]\naws_access_key_id = WEFTVIEWER\naws_secret_access_key = {VIEWER}\nweft_policy = viewer.json\n"),
    )
    .unwrap();
    std::fs::write(
        home.join("dags/lake.yaml"),
        "lake_producer:\n  tasks:\n    load:\n      operator: echo\n      outlets: ['s3://lake/orders']\n\
         lake_consumer:\n  is_paused_upon_creation: false\n  schedule: ['S3://lake//orders/']\n  tasks:\n    use:\n      operator: airflow.operators.empty.EmptyOperator\n",
    )
    .unwrap();
    for p in [
        "echo",
        "fail",
        "csv-to-json",
        "json-transform",
        "weft-airflow-py",
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_weft"))
            .args(["plugin", "install"])
            .arg(plugins.join(format!("{p}.wasm")))
            .env("WEFT_HOME", &home)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "installing {p}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let mut procs = Procs(Vec::new());
    let port = free_port();
    let server = Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(["server", "--listen", &format!("127.0.0.1:{port}")])
        .env("WEFT_HOME", &home)
        .current_dir(repo())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting weft server");
    procs.0.push(("weft server", server));
    let agent = agent();
    let base = format!("http://127.0.0.1:{port}");
    wait_http(
        &agent,
        &format!("{base}/healthz"),
        "weft server",
        &mut procs.0[0].1,
    );

    let dport = free_port();
    let chromedriver = Command::new(&driver)
        .arg(format!("--port={dport}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", driver.display()));
    procs.0.push(("chromedriver", chromedriver));
    let dbase = format!("http://127.0.0.1:{dport}");
    wait_http(
        &agent,
        &format!("{dbase}/status"),
        "chromedriver",
        &mut procs.0[1].1,
    );
    let profile = tmp.path().join("chromium-profile");
    let (status, session) = http(
        &agent,
        "POST",
        &format!("{dbase}/session"),
        &[],
        Some(&json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:loggingPrefs": {"browser": "SEVERE"},
            "goog:chromeOptions": {
                "binary": chromium.display().to_string(),
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1280,800", "--hide-scrollbars", "--force-device-scale-factor=1",
                         format!("--user-data-dir={}", profile.display())]
            }
        }}})),
    );
    assert_eq!(status, 200, "creating a WebDriver session: {session}");
    let sid = session["value"]["sessionId"].as_str().unwrap().to_string();
    let b = Browser {
        agent: agent.clone(),
        base: format!("{dbase}/session/{sid}"),
    };
    // ends the browser session before the processes are killed, even when a step panics
    struct Session<'a>(&'a Browser);
    impl Drop for Session<'_> {
        fn drop(&mut self) {
            let _ = http(&self.0.agent, "DELETE", &self.0.base, &[], None);
        }
    }
    let _session = Session(&b);
    b.window(1280, 800);
    let sfn = Sfn {
        agent: agent.clone(),
        base: base.clone(),
    };

    // ---- state machines ----
    let live_def = json!({
        "Comment": "A pipeline that is observably running: a Wait, tasks in the sandbox, a caught failure.",
        "StartAt": "Prepare",
        "States": {
            "Prepare": {"Type": "Pass", "Result": {"path": "/examples/data/orders.csv"}, "ResultPath": "$.file", "Next": "Pause"},
            "Pause": {"Type": "Wait", "Seconds": 4, "Next": "ReadOrders"},
            "ReadOrders": {"Type": "Task", "Resource": "weft:plugin:csv-to-json",
                "Credentials": {"RoleArn": "weft:role:read-data"},
                "Parameters": {"path.$": "$.file.path", "include_rows": false},
                "ResultSelector": {"count.$": "$.count"}, "ResultPath": "$.stats", "Next": "Fanout"},
            "Fanout": {"Type": "Parallel", "ResultPath": "$.fan", "Next": "Export", "Branches": [
                {"StartAt": "Summarise", "States": {"Summarise": {"Type": "Task", "Resource": "weft:plugin:echo", "End": true}}},
                {"StartAt": "Audit", "States": {"Audit": {"Type": "Pass", "End": true}}}
            ]},
            "Export": {"Type": "Task", "Resource": "weft:plugin:fail",
                "Parameters": {"error": "Export.Unavailable", "cause": "the warehouse rejected the load"},
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.exportError", "Next": "Recover"}],
                "Next": "Done"},
            "Recover": {"Type": "Pass", "Next": "Settle"},
            "Settle": {"Type": "Wait", "Seconds": 1, "Next": "Done"},
            "Done": {"Type": "Succeed"}
        }
    });
    let live_sm = sfn.create("live-demo", live_def);
    let token_sm = sfn.create(
        "approval",
        json!({"StartAt": "Ask", "States": {
            "Ask": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                    "Parameters": {"QueueUrl": "approvals", "MessageBody": {"token.$": "$$.Task.Token"}},
                    "TimeoutSeconds": 300, "Next": "Approved"},
            "Approved": {"Type": "Pass", "End": true}}}),
    );
    let big_sm = sfn.create(
        "big-history",
        json!({"StartAt": "Each", "States": {
            "Each": {"Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 1, "ResultPath": null, "End": true,
                     "ItemProcessor": {"StartAt": "Touch", "States": {"Touch": {"Type": "Pass", "End": true}}}}}}),
    );
    let big_exec = sfn.start(
        &big_sm,
        "ten-thousand",
        json!({"items": (1..=2500).collect::<Vec<_>>()}),
    );

    // ---- 1. login with a token (auth is on) ----
    b.goto(&format!("{base}/"));
    b.wait_js(
        "const a = document.querySelector('main [role=alert]'); return a && /Log in/.test(a.textContent)",
        "the log-in prompt without a token",
    );
    b.type_into("#token", TOKEN);
    b.click("#login-btn");
    b.wait_js(
        "return [...document.querySelectorAll('main a')].some(a => a.textContent === 'live-demo')",
        "the state machines list",
    );
    assert_eq!(b.text("#login-status"), "Logged in (token saved)");
    assert_eq!(
        b.js("return localStorage.getItem('weft.token')"),
        json!(TOKEN)
    );
    b.screenshot("state-machines");

    // ---- 2. the start form refuses invalid JSON, then starts an execution ----
    b.goto(&format!("{base}/#/sm/{}", urlenc(&live_sm)));
    b.wait_for("#exec-input");
    b.type_into("#exec-name", "from-the-form");
    b.type_into("#exec-input", "{\"orders\": [1, 2,]");
    b.click("#start-btn");
    b.wait_js(
        "return /not valid JSON/.test(document.querySelector('#start-msg').textContent)",
        "the invalid-JSON message",
    );
    assert_eq!(
        b.js("return document.activeElement.id"),
        json!("exec-input"),
        "focus goes back to the input"
    );
    assert_eq!(
        b.js("return document.querySelector('#exec-input').getAttribute('aria-invalid')"),
        json!("true")
    );
    let listed = sfn.call("ListExecutions", json!({"stateMachineArn": live_sm}));
    assert_eq!(
        listed["executions"].as_array().unwrap().len(),
        0,
        "invalid JSON must not start anything"
    );
    b.type_into("#exec-input", "{\"orders\": [1, 2, 3]}");
    b.click("#start-btn");
    b.wait_js(
        "return location.hash.startsWith('#/exec/')",
        "the execution page after starting",
    );
    let exec = urldec(
        b.js("return location.hash.slice('#/exec/'.length)")
            .as_str()
            .unwrap(),
    );
    assert!(exec.ends_with(":live-demo:from-the-form"), "{exec}");
    assert_eq!(sfn.status(&exec)["input"], json!("{\"orders\": [1, 2, 3]}"));

    // ---- 3. the running execution's graph changes colour live (no reload, no polling) ----
    b.js("window.__sameDocument = true; return 1");
    b.wait_state("Pause", "running");
    assert_eq!(b.text("#live-note"), "Live");
    b.scroll_to("g-h");
    b.screenshot("graph-running");
    b.wait_state("Pause", "succeeded");
    b.wait_state("ReadOrders", "succeeded");
    b.wait_state("Summarise", "succeeded");
    b.wait_state("Export", "caught");
    b.wait_state("Done", "succeeded");
    b.wait_js(
        "return document.querySelector('#exec-status').textContent === 'SUCCEEDED'",
        "the status badge to turn SUCCEEDED",
    );
    assert_eq!(
        b.js("return window.__sameDocument === true"),
        json!(true),
        "updates arrived without a reload"
    );
    assert!(b.state_class("Prepare").contains("succeeded"));
    // colour is not the only cue: the status is written in the node and in a table
    assert_eq!(
        b.text("g.node[data-state=\"Export\"] text.type"),
        "Task · fail · caught"
    );
    assert!(
        b.text("table.state-status").contains("Exportcaught"),
        "{}",
        b.text("table.state-status")
    );
    assert!(
        b.text("#exec-output").contains("exportError"),
        "output shown: {}",
        b.text("#exec-output")
    );

    // ---- 4. history (expandable JSON), Gantt, task logs ----
    let n_events = sfn.call(
        "GetExecutionHistory",
        json!({"executionArn": exec, "maxResults": 1000}),
    )["events"]
        .as_array()
        .unwrap()
        .len();
    b.wait_js(
        &format!(
            "return document.querySelectorAll('table.history tbody tr').length === {n_events}"
        ),
        "every history event in the table (appended live)",
    );
    b.click("table.history tbody tr:first-child summary");
    b.wait_js(
        "return /\"ExecutionStarted\"/.test(document.querySelector('table.history tbody tr:first-child pre').textContent)",
        "the first event's JSON when its row is expanded",
    );
    let bars = b
        .js("return document.querySelectorAll('svg.gantt rect.bar').length")
        .as_u64()
        .unwrap();
    assert!(bars >= 8, "Gantt bars: {bars}");
    assert!(
        b.js("return document.querySelectorAll('svg.gantt rect.bar.caught').length")
            .as_u64()
            .unwrap()
            >= 1
    );
    b.wait_js(
        "return document.querySelectorAll('details.task').length >= 3",
        "task logs of three tasks",
    );
    let tasks = b.text("main");
    assert!(
        tasks.contains("csv-to-json@") && tasks.contains("echo@") && tasks.contains("fail@"),
        "{tasks}"
    );
    assert!(tasks.contains("Export.Unavailable"));
    b.js("document.querySelectorAll('details.task').forEach(d => d.open = true); return 1");
    let audit = b.text("details.task table.audit");
    assert!(
        audit.contains("fs:Read") && audit.contains("Allow"),
        "audit decisions: {audit}"
    );
    assert!(b.js("return document.querySelector('#redrive-btn') === null || document.querySelector('#redrive-btn').hidden").as_bool().unwrap());
    b.js("window.scrollTo(0, 0); return 1");
    b.screenshot("execution");
    b.scroll_to("g-h");
    b.screenshot("execution-graph");
    b.scroll_to("ga-h");
    b.screenshot("execution-gantt-logs");

    // ---- 5. send a task token ----
    let waiting = sfn.start(&token_sm, "needs-approval", json!({"order": 7}));
    b.goto(&format!("{base}/#/exec/{}", urlenc(&waiting)));
    b.wait_for("code.task-token");
    let token_text = b.text("code.task-token");
    let in_history =
        sfn.call("GetExecutionHistory", json!({"executionArn": waiting}))["events"].to_string();
    assert!(
        in_history.contains(&token_text),
        "the token shown is the one in TaskScheduled"
    );
    b.type_into("#tok-out-0", "{approved: yes}");
    b.click("form.token-success button");
    b.wait_js(
        "return /not valid JSON/.test(document.querySelector('#tok-msg-0').textContent)",
        "the refused output",
    );
    assert_eq!(sfn.status(&waiting)["status"], "RUNNING");
    b.type_into("#tok-out-0", "{\"approved\": true}");
    b.click("form.token-success button");
    b.wait_js(
        "return document.querySelector('#exec-status').textContent === 'SUCCEEDED'",
        "the approved execution to succeed",
    );
    assert_eq!(sfn.status(&waiting)["output"], json!("{\"approved\":true}"));

    // ---- 6. stop a running execution, redrive it from the page, stop it again ----
    let to_stop = sfn.start(&live_sm, "to-stop", json!({}));
    b.goto(&format!("{base}/#/exec/{}", urlenc(&to_stop)));
    b.wait_state("Pause", "running");
    b.js("window.confirm = () => true; return 1");
    b.click("#stop-btn");
    b.wait_js(
        "return document.querySelector('#exec-status').textContent === 'ABORTED'",
        "the stopped execution",
    );
    assert_eq!(sfn.status(&to_stop)["status"], "ABORTED");
    assert_eq!(
        b.js("const r = document.querySelector('#redrive-btn'); return !r.hidden && !r.disabled"),
        json!(true)
    );
    b.click("#redrive-btn");
    b.wait_js(
        "return document.querySelector('#exec-status').textContent === 'RUNNING'",
        "the redriven execution",
    );
    assert_eq!(sfn.status(&to_stop)["redriveCount"], json!(1));
    b.wait_state("Pause", "running");
    b.click("#stop-btn");
    b.wait_js(
        "return document.querySelector('#exec-status').textContent === 'ABORTED'",
        "the execution stopped again",
    );

    // ---- 7. executions list: filters and paging ----
    b.goto(&format!("{base}/#/executions"));
    b.wait_js(
        "return document.querySelectorAll('table.executions tbody tr').length === 4",
        "four executions",
    );
    b.click("#all-status option[value=ABORTED]");
    b.wait_js("const r = document.querySelectorAll('table.executions tbody tr'); return r.length === 1 && /to-stop/.test(r[0].textContent)", "the ABORTED filter");
    b.click("#all-status option[value='']");
    b.type_into("#all-name", "approval");
    b.click("form.filters button[type=submit]");
    b.wait_js("const r = document.querySelectorAll('table.executions tbody tr'); return r.length === 1 && /needs-approval/.test(r[0].textContent)", "the name filter");
    b.screenshot("executions");

    // ---- 8. plugins ----
    b.goto(&format!("{base}/#/plugins"));
    b.wait_js(
        "return document.querySelectorAll('table.plugins tbody tr').length === 5",
        "five plugins (the Python DAG parser is one)",
    );
    let plugins_text = b.text("table.plugins");
    assert!(
        plugins_text.contains("live-demo")
            && plugins_text.contains("big_dag")
            && plugins_text.contains("daily_orders"),
        "{plugins_text}"
    );
    assert!(
        plugins_text.contains("fs:Read"),
        "requested grants shown: {plugins_text}"
    );
    b.screenshot("plugins");

    // ---- 8a. assets: producers, consumers and an event posted through Airflow's API ----
    let auth = format!("Bearer {TOKEN}");
    let (st, assets) = http(
        &agent,
        "GET",
        &format!("{base}/api/v2/assets"),
        &[("Authorization", &auth)],
        None,
    );
    assert_eq!(st, 200, "{assets}");
    let id = assets["assets"][0]["id"].clone();
    let (st, ev) = http(
        &agent,
        "POST",
        &format!("{base}/api/v2/assets/events"),
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        Some(&json!({"asset_id": id, "extra": {"rows": 42}})),
    );
    assert_eq!(st, 200, "{ev}");
    b.goto(&format!("{base}/#/assets"));
    b.wait_js(
        "const r = document.querySelectorAll('table.assets tbody tr'); return r.length === 1 && /lake_producer/.test(r[0].textContent) && /lake_consumer/.test(r[0].textContent)",
        "the asset with its producer and consumer",
    );
    b.wait_js(
        "return /s3:\\/\\/lake\\/orders/.test(document.querySelector('table.asset-events').textContent) && /rows/.test(document.querySelector('table.asset-events').textContent)",
        "the posted event",
    );
    b.screenshot("assets");

    // ---- 8b. workers: none connected to this node ----
    b.goto(&format!("{base}/#/workers"));
    b.wait_js(
        "return /No worker connected/.test(document.querySelector('main').textContent) && /none waiting/.test(document.querySelector('#queue-depths').textContent)",
        "the empty workers page",
    );

    // ---- 9. DAGs: list with next run, a 1,000-task graph ----
    b.goto(&format!("{base}/#/dags"));
    b.wait_js("return /big_dag/.test(document.querySelector('main').textContent) && /daily_orders/.test(document.querySelector('main').textContent)", "the DAG list");
    assert!(b.text("main").contains("@daily"));
    b.screenshot("dags");
    b.goto(&format!("{base}/#/dag/big_dag"));
    b.wait_js(
        "return document.querySelectorAll('svg.dag g.node').length === 1000",
        "1,000 DAG tasks drawn",
    );
    let dag_perf = b.perf("dag", 1000);
    b.wait_for("#grid-empty");
    b.goto(&format!("{base}/#/dag/daily_orders"));
    b.wait_js(
        "return document.querySelectorAll('svg.dag g.node').length === 5",
        "the daily_orders graph",
    );
    // trigger a run: the server's scheduler runs it once the DAG is unpaused (new DAGs start
    // paused, and a paused DAG's runs wait, as in Airflow; a task fails after its retry) and
    // the grid fills in, beside the latest scheduled run that unpausing a `catchup: false` DAG
    // creates; then clear a task of a finished run from its grid cell
    let (status, v) = http(
        &agent,
        "PATCH",
        &format!("{base}/api/v2/dags/daily_orders"),
        &[("Authorization", &format!("Bearer {TOKEN}"))],
        Some(&serde_json::json!({"is_paused": false})),
    );
    assert_eq!(status, 200, "{v}");
    b.click("#trigger-btn");
    // the form holds the DAG's param (min_amount: 100) and its conf
    b.wait_for("#trigger-form [data-param=min_amount]");
    assert_eq!(
        b.js("return JSON.parse(document.querySelector('#trigger-conf').value)"),
        json!({"min_amount": 100})
    );
    b.click("#trigger-submit");
    b.wait_js(
        "return /Triggered manual__/.test(document.querySelector('#dag-msg').textContent)",
        "the triggered run",
    );
    b.wait_js(
        "return document.querySelectorAll('table.grid td.cell.success').length === 8 && document.querySelectorAll('table.grid td.cell.failed').length === 2",
        "the run's task states in the grid",
    );
    b.screenshot("dag");
    // the selected (newest) run's Gantt chart: a bar per try, flaky_export's two tries
    b.wait_js(
        "const r = document.querySelector('svg.dag-gantt g.gantt-row[data-task=flaky_export]'); return r && r.querySelectorAll('rect.bar').length === 2",
        "flaky_export's two tries in the Gantt chart",
    );
    assert_eq!(
        b.js("return [...document.querySelectorAll('svg.dag-gantt g.gantt-row[data-task=flaky_export] rect.bar')].map(r => r.getAttribute('class'))"),
        json!(["bar st-failed", "bar st-failed"])
    );
    assert_eq!(
        b.js("return document.querySelectorAll('svg.dag-gantt g.gantt-row').length"),
        json!(5)
    );
    b.scroll_to("run-h");
    b.screenshot("dag-gantt");
    b.element_screenshot("section[aria-labelledby=run-h]", "dag-run-gantt");
    // a cell opens the task instance: its logs per try, and Clear
    b.click("table.grid button.cell-btn[data-task='flaky_export']");
    b.wait_js(
        "return /Try 2/.test(document.querySelector('#ti-logs').textContent)",
        "the failed task's logs of both tries",
    );
    b.js("window.confirm = () => true; return 1");
    b.click("#clear-btn");
    b.wait_js(
        "return /Cleared flaky_export/.test(document.querySelector('#dag-msg').textContent)",
        "the cleared task",
    );

    dag_operations(&b, &agent, &base);

    // ---- 10. an execution with 10,000 history events ----
    let big = sfn.wait_done(&big_exec, Duration::from_secs(120));
    assert_eq!(big["status"], "SUCCEEDED", "{big}");
    b.goto(&format!("{base}/#/exec/{}", urlenc(&big_exec)));
    let exec_perf = b.perf("execution", 10000);
    let total_perf = b.perf("execution+fetch", 10000);
    let shown = b
        .js("return document.querySelectorAll('table.history tbody tr').length")
        .as_u64()
        .unwrap();
    assert_eq!(shown, 1000, "the first page of history rows");
    b.click("section[aria-labelledby=h-h] .row button");
    b.wait_js(
        "return document.querySelectorAll('table.history tbody tr').length === 2000",
        "the next page of history",
    );

    // ---- 10b. landing pages: executions by status per state machine, DAGs' recent runs ----
    // recorded so far: live-demo from-the-form SUCCEEDED and to-stop ABORTED (stopped,
    // redriven, stopped again), approval needs-approval SUCCEEDED, big-history SUCCEEDED;
    // one more approval execution waits (RUNNING)
    let landing_waiting = sfn.start(&token_sm, "landing-waiting", json!({}));
    assert_eq!(sfn.status(&landing_waiting)["status"], "RUNNING");
    b.goto(&format!("{base}/#/"));
    b.wait_for("table.sm-landing");
    let count = |sm: &str, status: &str| {
        b.js(&format!(
            "const c = document.querySelector('table.sm-landing tr[data-sm=\"{sm}\"] td.count[data-status={status}]'); return c ? c.textContent : null"
        ))
    };
    for (sm, status, n) in [
        ("live-demo", "SUCCEEDED", "1"),
        ("live-demo", "ABORTED", "1"),
        ("live-demo", "RUNNING", "0"),
        ("live-demo", "FAILED", "0"),
        ("approval", "SUCCEEDED", "1"),
        ("approval", "RUNNING", "1"),
        ("big-history", "SUCCEEDED", "1"),
        ("big-history", "TIMED_OUT", "0"),
    ] {
        assert_eq!(count(sm, status), json!(n), "{sm} {status}");
    }
    assert_eq!(
        b.js("return document.querySelectorAll('table.sm-landing tbody tr').length"),
        json!(3)
    );
    assert_eq!(
        b.js("return [...document.querySelectorAll('table.sm-landing td.last-exec')].filter(c => c.textContent === 'never').length"),
        json!(0),
        "every state machine shows its last execution"
    );
    assert!(b.text("#sm-window").contains("last 24 hours"));
    let sm_perf = b.perf("state-machines", 3);
    b.screenshot("state-machines-landing");
    // the DAG list: daily_orders' runs of step 9 (the manual one and the scheduled one) as
    // squares in their runs' states, once they have finished; big_dag has none; both show their next run
    let end = Instant::now() + Duration::from_secs(120);
    let runs = loop {
        let (status, runs) = http(
            &agent,
            "GET",
            &format!("{base}/v1/dags/daily_orders/runs"),
            &[("Authorization", &format!("Bearer {TOKEN}"))],
            None,
        );
        assert_eq!(status, 200, "{runs}");
        let all = runs["runs"].as_array().unwrap();
        if all.len() == 2
            && all
                .iter()
                .all(|r| matches!(r["state"].as_str(), Some("success" | "failed")))
        {
            break runs;
        }
        assert!(
            Instant::now() < end,
            "daily_orders' cleared run did not finish: {runs}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut expected: Vec<(String, String)> = runs["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["runId"].as_str().unwrap().to_string(),
                format!("run-sq {}", r["state"].as_str().unwrap()),
            )
        })
        .collect();
    expected.sort();
    b.goto(&format!("{base}/#/dags"));
    b.wait_js(
        "return document.querySelectorAll('tr[data-dag=daily_orders] a.run-sq').length === 2",
        "daily_orders' two runs as squares",
    );
    let mut shown: Vec<(String, String)> = serde_json::from_value(b.js(
        "return [...document.querySelectorAll('tr[data-dag=daily_orders] a.run-sq')].map(a => [a.dataset.run, a.className])",
    ))
    .unwrap();
    shown.sort();
    assert_eq!(shown, expected, "{runs}");
    assert_eq!(b.text("tr[data-dag=big_dag] td.recent-runs"), "no runs");
    assert_eq!(b.text("tr[data-dag=daily_orders] td.owners"), "data-eng");
    // @daily without catchup, yesterday's run made: today's interval is next
    assert_eq!(
        b.js("const d = new Date(); d.setUTCHours(0, 0, 0, 0); return document.querySelector('tr[data-dag=daily_orders] .next-run').textContent === d.toLocaleString()"),
        json!(true),
        "daily_orders' next run: {}",
        b.text("tr[data-dag=daily_orders] td.next")
    );
    assert_eq!(
        b.js("return [...document.querySelectorAll('table.dag-landing tr.broken')].map(r => r.dataset.dag)"),
        json!(["broken_dag"])
    );
    b.screenshot("dags-landing");

    // ---- 11. keyboard: skip link first, then the header; buttons are buttons ----
    b.goto(&format!("{base}/#/sm/{}", urlenc(&live_sm)));
    b.wait_for("#start-btn");
    b.js("document.querySelector('a.skip').focus(); return 1");
    assert_eq!(b.text("a.skip"), "Skip to content");
    let mut order = Vec::new();
    for _ in 0..24 {
        b.cmd(
            "POST",
            "/actions",
            json!({"actions": [{"type": "key", "id": "kb", "actions": [
            {"type": "keyDown", "value": "\u{E004}"}, {"type": "keyUp", "value": "\u{E004}"}]}]}),
        );
        order.push(b.js("const e = document.activeElement; return e.id || e.textContent.trim().slice(0, 20) || e.tagName").as_str().unwrap_or("").to_string());
    }
    assert_eq!(
        order[..10],
        [
            "weft server",
            "State machines",
            "Executions",
            "DAGs",
            "Assets",
            "Plugins",
            "Workers",
            "token",
            "login-btn",
            "logout"
        ],
        "focus order: {order:?}"
    );
    assert!(
        order.iter().any(|o| o == "start-btn"),
        "the start button is reachable by Tab: {order:?}"
    );
    let fake_buttons = b.js("return document.querySelectorAll('[onclick]:not(button):not(a), div[role=button], span[role=button]').length");
    assert_eq!(fake_buttons, json!(0));
    let unlabeled = b.js("return [...document.querySelectorAll('input, select, textarea')].filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')).map(e => e.id)");
    assert_eq!(unlabeled, json!([]), "every form control has a label");
    b.js("document.querySelector('#start-btn').focus(); return 1");
    let outline = b.js("return getComputedStyle(document.activeElement).outlineStyle");
    assert_ne!(outline, json!("none"), "focused buttons show an outline");

    // ---- 12. narrow window: no horizontal scrolling of the page itself ----
    // (Chrome's windows are at least 500 px wide: emulate a 400 px viewport instead)
    b.cmd(
        "POST",
        "/goog/cdp/execute",
        json!({"cmd": "Emulation.setDeviceMetricsOverride",
        "params": {"width": 400, "height": 800, "deviceScaleFactor": 1, "mobile": false}}),
    );
    b.goto(&format!("{base}/#/exec/{}", urlenc(&exec)));
    b.wait_state("Done", "succeeded");
    let overflow =
        b.js("return document.documentElement.scrollWidth - document.documentElement.clientWidth");
    if overflow.as_i64().unwrap() > 0 {
        let wide = b.js("const w = document.documentElement.clientWidth; return [...document.querySelectorAll('body *')].filter(e => !(e instanceof SVGElement) && getComputedStyle(e).overflowX === 'visible' && e.scrollWidth > e.clientWidth + 1).slice(0, 8).map(e => e.tagName + '.' + e.className + '#' + e.id + ' ' + e.scrollWidth + '/' + e.clientWidth)");
        let dims = b.js("const d = document.documentElement; return [innerWidth, d.clientWidth, d.scrollWidth, document.body.scrollWidth, document.querySelector('main').scrollWidth, document.querySelector('header').scrollWidth]");
        b.screenshot("execution-narrow-overflow");
        panic!("the page scrolls sideways at 400 px by {overflow} px: {wide} {dims}");
    }
    assert_eq!(
        b.js("return document.documentElement.clientWidth"),
        json!(400)
    );
    b.screenshot("execution-narrow");
    b.cmd(
        "POST",
        "/goog/cdp/execute",
        json!({"cmd": "Emulation.clearDeviceMetricsOverride", "params": {}}),
    );

    // ---- 12b. a Distributed Map's Map Run and its item counts by status ----
    let dist_sm = sfn.create(
        "ui-distributed",
        json!({"StartAt": "Each", "States": {"Each": {"Type": "Map", "ItemsPath": "$.items",
            "ToleratedFailureCount": 1,
            "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                "StartAt": "C", "States": {
                    "C": {"Type": "Choice", "Choices": [{"Variable": "$", "NumericEquals": 2, "Next": "F"}], "Default": "P"},
                    "F": {"Type": "Fail", "Error": "Two"},
                    "P": {"Type": "Pass", "End": true}}},
            "End": true}}}),
    );
    let dist = sfn.start(&dist_sm, "counts", json!({"items": [1, 2, 3]}));
    assert_eq!(
        sfn.wait_done(&dist, Duration::from_secs(30))["status"],
        "SUCCEEDED"
    );
    b.goto(&format!("{base}/#/exec/{}", urlenc(&dist)));
    b.wait_for("#map-runs td[data-count=succeeded]");
    assert_eq!(b.text("#map-runs td[data-count=succeeded]"), "2");
    assert_eq!(b.text("#map-runs td[data-count=failed]"), "1");
    assert_eq!(b.text("#map-runs td[data-count=total]"), "3");
    b.scroll_to("mr-h");
    b.screenshot("execution-map-runs");

    // ---- 13. SIGTERM stops the server although a page streams a still-waiting execution ----
    // (and the secret never travels in a URL, where logs, history and Referer keep it: the
    // page's requests, the live stream's included, carry it in the Authorization header)
    let still = sfn.start(&token_sm, "still-waiting", json!({}));
    b.js("window.__urls = []; const f = window.fetch; window.fetch = function (u, init) { window.__urls.push([String(u), String(((init || {}).headers || {}).Authorization || '')]); return f.apply(this, arguments); }; return 1");
    b.js(&format!(
        "location.hash = '#/exec/{}'; return 1",
        urlenc(&still)
    ));
    b.wait_for("code.task-token");
    b.wait_js(
        "return document.querySelector('#live-note').textContent === 'Live'",
        "the live stream",
    );
    let requests = b.js("return window.__urls");
    let requests = requests.as_array().unwrap();
    assert!(
        requests
            .iter()
            .any(|r| r[0].as_str().unwrap().ends_with("/events")
                && r[1] == json!(format!("Bearer {TOKEN}"))),
        "the stream sends the key in its header: {requests:?}"
    );
    for r in requests {
        let url = r[0].as_str().unwrap();
        assert!(
            !url.contains(TOKEN) && !url.contains("token="),
            "a secret in a URL: {url}"
        );
    }
    assert!(!b.js("return location.href").to_string().contains(TOKEN));
    let server = &mut procs.0[0].1;
    let killed = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let end = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(st) = server.try_wait().unwrap() {
            break st;
        }
        assert!(
            Instant::now() < end,
            "weft server did not stop within 15 s of SIGTERM with a UI stream open"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "weft server exited with {status}");

    eprintln!(
        "UI render timings (performance.now, DOM + layout; figures, not assertions):\n  \
         execution with {} history events: {} ms render, {} ms including fetching the history\n  \
         DAG graph with {} tasks: {} ms\n  \
         state machines landing page ({} state machines): {} ms including the fetch",
        exec_perf["items"],
        exec_perf["ms"],
        total_perf["ms"],
        dag_perf["items"],
        dag_perf["ms"],
        sm_perf["items"],
        sm_perf["ms"]
    );
    eprintln!(
        "screenshots in {}",
        repo().join("target/screenshots").display()
    );
}

/// No text of a DAG ran as script or became markup: the fixtures' payloads set `window.__xss`
/// or make `img`, `script` and `svg[onload]` elements.
fn assert_no_injection(b: &Browser, step: &str) {
    assert_eq!(
        b.js("return window.__xss === undefined && document.querySelectorAll('main img, main script, main svg[onload], main b, main em').length === 0"),
        json!(true),
        "{step}: DAG text was parsed as HTML: __xss = {}",
        b.js("return String(window.__xss)")
    );
}

/// Step 9b: the operator's day with DAGs: import errors, pause switches, task groups, the
/// trigger form (params, conf, validation), a run's Gantt chart, marks, the code view, and a
/// key that may not change anything.
fn dag_operations(b: &Browser, agent: &ureq::Agent, base: &str) {
    let auth = format!("Bearer {TOKEN}");
    let api = |method: &str, path: &str, body: Option<&Value>| {
        http(
            agent,
            method,
            &format!("{base}{path}"),
            &[("Authorization", &auth)],
            body,
        )
    };

    // ---- the DAG list: import errors banner (a YAML error, a Python traceback), pause ----
    b.goto(&format!("{base}/#/dags"));
    b.wait_for("#import-errors");
    assert_eq!(b.text("#import-error-count"), "2");
    b.click("#import-errors > summary");
    let banner = b.text("#import-errors");
    assert!(
        banner.contains("broken.yaml:4") && banner.contains("<img src=x onerror=window.__xss=6>"),
        "the YAML file's error with its line, as text: {banner}"
    );
    assert!(
        banner.contains("raises.py")
            && banner.contains("Traceback")
            && banner.contains("ValueError: <script>window.__xss=7</script> bad <b>config</b>"),
        "the Python file's traceback, as text: {banner}"
    );
    let trace = b.text("#import-errors li[data-file$='raises.py'] pre.ie-trace");
    assert!(
        trace.contains("line 4") && trace.contains("line 6"),
        "{trace}"
    );
    assert_no_injection(b, "import errors");
    // new DAGs start paused; the switch unpauses ops_demo and the flag persists
    let switch = "tr[data-dag=ops_demo] button.switch";
    assert_eq!(
        b.js(&format!(
            "return document.querySelector('{switch}').getAttribute('aria-checked')"
        )),
        json!("false")
    );
    b.click(switch);
    b.wait_js(
        "return document.querySelector('#dags-msg').textContent === 'Unpaused ops_demo.'",
        "ops_demo unpaused",
    );
    let (st, dag) = api("GET", "/api/v2/dags/ops_demo", None);
    assert_eq!((st, dag["is_paused"].clone()), (200, json!(false)), "{dag}");
    b.js("window.scrollTo(0, 0); return 1");
    b.element_screenshot("section[aria-label=DAGs]", "dags-import-errors");

    // ---- task groups: collapsed into one node, expanded into a box on click ----
    b.goto(&format!("{base}/#/dag/ops_demo"));
    let nodes = "return [...document.querySelectorAll('svg.dag g.node')].map(n => n.dataset.task || 'group:' + n.dataset.group)";
    b.wait_js(
        "return document.querySelectorAll('svg.dag g.node').length === 3",
        "ops_demo's graph with its group collapsed",
    );
    assert_eq!(b.js(nodes), json!(["start", "group:extract", "load"]));
    assert_eq!(
        b.js("return document.querySelector('.title-row button.switch').getAttribute('aria-checked')"),
        json!("true"),
        "the DAG page shows the persisted pause flag"
    );
    // the keyboard's way: the group's button
    b.click("button.group-btn[data-group=extract]");
    b.wait_js(
        "return document.querySelectorAll('svg.dag g.node').length === 5",
        "extract expanded",
    );
    assert_eq!(
        b.js(nodes),
        json!([
            "start",
            "extract.a",
            "extract.b",
            "group:extract.clean",
            "load"
        ])
    );
    assert_eq!(
        b.js("return [...document.querySelectorAll('svg.dag g.group-box')].map(g => g.dataset.group)"),
        json!(["extract"])
    );
    // the mouse's way: the nested group's node in the graph
    b.click("svg.dag g.node.group[data-group='extract.clean'] rect");
    b.wait_js(
        "return document.querySelectorAll('svg.dag g.group-box').length === 2",
        "extract.clean expanded",
    );
    assert_eq!(
        b.js(nodes),
        json!(["start", "extract.a", "extract.b", "extract.clean.c", "load"])
    );
    // a box holds its tasks
    assert_eq!(
        b.js("const box = document.querySelector('svg.dag g.group-box[data-group=extract]').getBBox(); const m = document.querySelector('svg.dag g.group-box[data-group=extract]').transform.baseVal[0].matrix; const inside = (id) => { const n = document.querySelector('svg.dag g.node[data-task=\"' + id + '\"]').transform.baseVal[0].matrix; return n.e >= m.e && n.e + 170 <= m.e + box.width && n.f >= m.f && n.f + 34 <= m.f + box.height; }; return ['extract.a', 'extract.b', 'extract.clean.c'].every(inside) && !inside('start') && !inside('load')"),
        json!(true)
    );
    assert_no_injection(b, "graph");
    b.element_screenshot("section[aria-labelledby=dg-h]", "dag-groups");

    // ---- the trigger form: fields from params, conf JSON both ways, validation ----
    b.click("#trigger-btn");
    b.wait_for("#trigger-form");
    let field = |name: &str| format!("#trigger-form [data-param={}]", json!(name));
    assert_eq!(
        b.js("return [...document.querySelectorAll('#trigger-form [data-param]')].map(e => [e.dataset.param, e.tagName, e.type])"),
        json!([["rows", "INPUT", "number"], ["mode", "SELECT", "select-one"], ["dry_run", "INPUT", "checkbox"],
               ["<svg onload=window.__xss=8>", "INPUT", "text"]])
    );
    assert_eq!(
        b.js(&format!(
            "return [...document.querySelectorAll('{} option')].map(o => o.textContent)",
            field("mode")
        )),
        json!(["fast", "<img src=x onerror=window.__xss=5>"])
    );
    assert!(b
        .text("#trigger-form")
        .contains("rows to load <b>bold</b><script>window.__xss=4</script>"));
    assert_eq!(
        b.js("return JSON.parse(document.querySelector('#trigger-conf').value)"),
        json!({"rows": 10, "mode": "fast", "dry_run": false, "<svg onload=window.__xss=8>": "plain"})
    );
    let runs_of = |dag: &str| {
        let (st, v) = api("GET", &format!("/api/v2/dags/{dag}/dagRuns"), None);
        assert_eq!(st, 200, "{v}");
        v["total_entries"].as_u64().unwrap()
    };
    // out of the param's range: refused before anything is sent
    b.type_into(&field("rows"), "500");
    b.click("#trigger-submit");
    b.wait_js(
        "return /rows: must be at most 100/.test(document.querySelector('#trigger-msg').textContent)",
        "the range error",
    );
    assert_eq!(
        b.js(&format!("return [document.activeElement.dataset.param, document.querySelector('{}').getAttribute('aria-invalid')]", field("rows"))),
        json!(["rows", "true"])
    );
    assert_eq!(runs_of("ops_demo"), 0, "an invalid form triggers nothing");
    b.element_screenshot("#trigger-form", "dag-trigger-form");
    // a field fills the conf in; the conf fills the fields in
    b.type_into(&field("rows"), "7");
    assert_eq!(
        b.js("return JSON.parse(document.querySelector('#trigger-conf').value).rows"),
        json!(7)
    );
    b.js("const c = document.querySelector('#trigger-conf'); const v = JSON.parse(c.value); v.dry_run = true; v.extra = [1, 2]; c.value = JSON.stringify(v); c.dispatchEvent(new Event('input', {bubbles: true})); return 1");
    assert_eq!(
        b.js(&format!(
            "return document.querySelector('{}').checked",
            field("dry_run")
        )),
        json!(true)
    );
    // conf that is not JSON, a date that is not a date
    b.js("const c = document.querySelector('#trigger-conf'); c.value = '{\"rows\": 7,'; return 1");
    b.type_into("#trigger-date", "not-a-date");
    b.click("#trigger-submit");
    b.wait_js(
        "const t = document.querySelector('#trigger-msg').textContent; return /not valid JSON/.test(t) && /not a date/.test(t)",
        "the JSON and date errors",
    );
    assert_eq!(
        b.js("return document.activeElement.id"),
        json!("trigger-conf")
    );
    b.js("const c = document.querySelector('#trigger-conf'); c.value = JSON.stringify({rows: 7, mode: 'fast', dry_run: true, extra: [1, 2]}, null, 2); c.dispatchEvent(new Event('input', {bubbles: true})); return 1");
    b.type_into("#trigger-date", "2024-03-01T06:00:00Z");
    b.type_into("#trigger-run-id", "ui-run-1");
    assert_no_injection(b, "trigger form");
    assert_eq!(
        b.js("return document.querySelectorAll('#trigger-form [aria-invalid]').length"),
        json!(0),
        "corrected fields are no longer marked"
    );
    b.click("#trigger-submit");
    b.wait_js(
        "return document.querySelector('#dag-msg').textContent === 'Triggered ui-run-1.'",
        "the triggered run",
    );
    let (st, run) = api("GET", "/api/v2/dags/ops_demo/dagRuns/ui-run-1", None);
    assert_eq!(st, 200, "{run}");
    assert_eq!(
        run["conf"],
        json!({"rows": 7, "mode": "fast", "dry_run": true, "extra": [1, 2]})
    );
    assert_eq!(run["logical_date"], json!("2024-03-01T06:00:00Z"));
    // the server's refusal is shown as it answered: the run id is taken
    b.click("#trigger-btn");
    b.type_into("#trigger-run-id", "ui-run-1");
    b.click("#trigger-submit");
    b.wait_js(
        "return /already exists/.test(document.querySelector('#trigger-msg').textContent)",
        "the conflict",
    );
    b.click("#trigger-cancel");

    // ---- the run: grid, Gantt chart, graph coloured by its states ----
    b.wait_js(
        "return document.querySelectorAll('table.grid td.cell.success').length === 5",
        "ui-run-1's five successes",
    );
    b.wait_js(
        "return document.querySelectorAll('svg.dag-gantt g.gantt-row rect.bar.st-success').length === 5",
        "the run's Gantt chart",
    );
    assert_eq!(
        b.js("return document.querySelector('svg.dag g.node[data-task=load]').classList.contains('st-success')"),
        json!(true)
    );
    b.element_screenshot("section[aria-labelledby=run-h]", "dag-gantt-groups");

    // ---- mark: a task instance failed with its downstream (a dry run first), the run success ----
    b.js("window.confirm = () => true; return 1");
    b.click("table.grid button.cell-btn[data-task='extract.a'][data-run='ui-run-1']");
    b.click("#mark-downstream");
    b.click("#mark-failed");
    b.wait_for("#mark-confirm");
    let listed = b.text("ul.mark-list");
    for t in ["extract.a", "extract.clean.c", "load"] {
        assert!(listed.contains(t), "{t} in the marked set: {listed}");
    }
    assert!(!listed.contains("extract.b"), "{listed}");
    assert_eq!(b.text("#mark-confirm"), "Mark 3 failed");
    b.element_screenshot("#ti-box", "dag-mark");
    b.click("#mark-confirm");
    b.wait_js(
        "return document.querySelector('#dag-msg').textContent === 'Marked 3 task instances failed.'",
        "the marked instances",
    );
    let (_, tis) = api(
        "GET",
        "/api/v2/dags/ops_demo/dagRuns/ui-run-1/taskInstances",
        None,
    );
    let state_of = |id: &str| {
        tis["task_instances"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["task_id"] == id)
            .map(|t| t["state"].clone())
    };
    assert_eq!(state_of("extract.a"), Some(json!("failed")), "{tis}");
    assert_eq!(state_of("load"), Some(json!("failed")), "{tis}");
    assert_eq!(state_of("extract.b"), Some(json!("success")), "{tis}");
    let (_, run) = api("GET", "/api/v2/dags/ops_demo/dagRuns/ui-run-1", None);
    assert_eq!(run["state"], "failed", "the run follows its instances");
    b.wait_js(
        "return document.querySelector('#run-success') && !document.querySelector('#run-success').disabled",
        "the failed run's Mark success button",
    );
    b.click("#run-success");
    b.wait_js(
        "return document.querySelector('#dag-msg').textContent === 'Marked run ui-run-1 success.'",
        "the run marked success",
    );
    let (_, run) = api("GET", "/api/v2/dags/ops_demo/dagRuns/ui-run-1", None);
    assert_eq!(run["state"], "success");

    // ---- the code view: the file as text ----
    b.click("#code-details > summary");
    b.wait_js(
        "return /ops_demo:/.test((document.querySelector('#dag-code') || {}).textContent || '')",
        "the DAG file's text",
    );
    let code = b.text("#dag-code");
    assert_eq!(code, OPS_DEMO, "the file, byte for byte, as text");
    assert_no_injection(b, "code view");
    b.element_screenshot("section[aria-labelledby=code-h]", "dag-code");
    b.js("window.scrollTo(0, 0); return 1");
    b.screenshot("dag-ops");

    // ---- a key that may read but not change: the UI shows the 403, nothing changes ----
    b.type_into("#token", VIEWER);
    b.click("#login-btn");
    b.wait_js(
        "return document.querySelectorAll('svg.dag g.node').length >= 3 && !!document.querySelector('#trigger-btn')",
        "the DAG page for the viewer",
    );
    let before = runs_of("ops_demo");
    b.click("#trigger-btn");
    b.click("#trigger-submit");
    b.wait_js(
        "const e = document.querySelector('#trigger-msg .error.denied'); return e && /Not allowed/.test(e.textContent) && /dags:TriggerDagRun/.test(e.textContent)",
        "the refused trigger",
    );
    assert_eq!(runs_of("ops_demo"), before, "the viewer triggered nothing");
    b.element_screenshot("#trigger-form", "dag-trigger-denied");
    b.click("#trigger-cancel");
    b.click(".title-row button.switch");
    b.wait_js(
        "const e = document.querySelector('#dag-msg .error.denied'); return e && /dags:PatchDag/.test(e.textContent)",
        "the refused pause",
    );
    assert_eq!(
        b.js("return document.querySelector('.title-row button.switch').getAttribute('aria-checked')"),
        json!("true"),
        "the switch stays as the server has it"
    );
    let (_, dag) = api("GET", "/api/v2/dags/ops_demo", None);
    assert_eq!(dag["is_paused"], json!(false));
    b.type_into("#token", TOKEN);
    b.click("#login-btn");
    b.wait_js(
        &format!("return localStorage.getItem('weft.token') === '{TOKEN}' && document.querySelectorAll('svg.dag g.node').length >= 3"),
        "logged in again",
    );
    // ---- a narrow window: the DAG pages do not scroll sideways ----
    b.cmd(
        "POST",
        "/goog/cdp/execute",
        json!({"cmd": "Emulation.setDeviceMetricsOverride",
        "params": {"width": 400, "height": 800, "deviceScaleFactor": 1, "mobile": false}}),
    );
    for (page, ready) in [
        ("#/dags", "#import-errors"),
        ("#/dag/ops_demo", "svg.dag-gantt"),
    ] {
        b.goto(&format!("{base}/{page}"));
        b.wait_for(ready);
        if page.starts_with("#/dag/") {
            b.click("#trigger-btn");
            b.click("#code-details > summary");
            b.wait_for("#dag-code");
        }
        let overflow = b.js(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth",
        );
        assert_eq!(overflow, json!(0), "{page} scrolls sideways at 400 px");
    }
    b.screenshot("dag-narrow");
    b.cmd(
        "POST",
        "/goog/cdp/execute",
        json!({"cmd": "Emulation.clearDeviceMetricsOverride", "params": {}}),
    );

    // (a deliberate error first, so that an empty list means the log was read)
    b.js("setTimeout(() => { throw new Error('weft-probe') }, 0); return 1");
    std::thread::sleep(Duration::from_millis(200));
    let (probe, errors): (Vec<String>, Vec<String>) = b
        .script_errors()
        .into_iter()
        .partition(|m| m.contains("weft-probe"));
    assert_eq!(probe.len(), 1, "the browser's log is read: {probe:?}");
    assert_eq!(
        errors,
        Vec::<String>::new(),
        "script errors in the DAG pages"
    );
}

fn urlenc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn urldec(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap()
}
