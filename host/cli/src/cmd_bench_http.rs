//! `weft bench http`: what the built-in HTTP Task (`arn:aws:states:::http:invoke`) costs per
//! call against a loopback server this command starts: a bare HTTP/1.1 exchange on a fresh
//! socket, the sandbox's granted request ([`weft_sandbox::outbound::send`]), the HTTP Task
//! itself ([`weft_engine::http_task::invoke`]: parameters, encoding, output shape) and a
//! one-state machine through the ASL interpreter. Figures only; no thresholds are asserted.

use crate::args::BenchArgs;
use anyhow::Result;
use serde_json::json;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BODY: &str = r#"{"ok":true,"items":[1,2,3]}"#;

/// Reads one request head (the bench sends no bodies) and answers it.
fn answer(mut s: TcpStream) {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    while !data.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(k) => data.extend_from_slice(&buf[..k]),
        }
    }
    let _ = write!(
        s,
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{BODY}",
        BODY.len()
    );
}

/// A loopback server answering every request with [`BODY`]; stops when dropped.
struct Loopback {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Loopback {
    fn start() -> Result<Self> {
        let l = TcpListener::bind("127.0.0.1:0")?;
        let port = l.local_addr()?.port();
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            for c in l.incoming() {
                if s.load(Ordering::Relaxed) {
                    break;
                }
                if let Ok(c) = c {
                    answer(c);
                }
            }
        });
        Ok(Self {
            port,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Loopback {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn p50_us(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v.get(v.len() / 2)
        .map(|d| d.as_secs_f64() * 1e6)
        .unwrap_or(0.0)
}

fn measure(n: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    for _ in 0..n.min(20) {
        f()?; // warm
    }
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        f()?;
        times.push(t.elapsed());
    }
    Ok(p50_us(times))
}

pub fn run(a: &BenchArgs) -> Result<ExitCode> {
    let n = (a.iterations as usize).clamp(100, 5000);
    let srv = Loopback::start()?;
    let port = srv.port;
    let url = format!("http://127.0.0.1:{port}/items");
    let policy = weft_sandbox::Policy::parse(
        &json!({"Statement": [{"Effect": "Allow", "Action": "http:Request",
                               "Resource": format!("http://127.0.0.1:{port}/*")}]})
        .to_string(),
    )
    .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let policy = Arc::new(policy);
    let dir = std::env::current_dir()?;
    let grant = weft_sandbox::Grant::for_requests(vec![policy.clone()], &dir);

    let bare = measure(n, || {
        let mut s = TcpStream::connect(("127.0.0.1", port))?;
        write!(
            s,
            "GET /items HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\nconnection: close\r\n\r\n"
        )?;
        let mut out = Vec::new();
        s.read_to_end(&mut out)?;
        Ok(())
    })?;
    let granted = measure(n, || {
        let req = weft_sandbox::OutboundRequest {
            method: "GET".into(),
            url: url.clone(),
            headers: Vec::new(),
            body: None,
        };
        let (r, _) = weft_sandbox::outbound::send(&grant, req, Duration::from_secs(10), 1 << 20);
        r.map(|_| ()).map_err(|e| anyhow::anyhow!("{e}"))
    })?;
    let params = json!({"ApiEndpoint": url, "Method": "GET",
                        "Headers": {"X-Trace": "bench"}, "QueryParameters": {"page": 1}});
    let secrets = weft_sandbox::NoSecrets;
    let task = measure(n, || {
        weft_engine::http_task::invoke(&grant, &secrets, &params, Some(Duration::from_secs(10)))
            .result
            .map(|_| ())
            .map_err(|e| anyhow::anyhow!("{e}"))
    })?;
    let def = json!({"StartAt": "Call", "States": {"Call": {"Type": "Task",
        "Resource": "arn:aws:states:::http:invoke", "Parameters": params, "End": true}}})
    .to_string();
    let sm = weft_asl::parse(&def).map_err(|e| anyhow::anyhow!("{e}"))?;
    let host = crate::context::plugin_host()?;
    let roles = weft_engine::Roles::new(Vec::new());
    let runner =
        weft_engine::asl_tasks::SandboxTaskRunner::new(&host, &roles, Some(policy), dir.clone());
    let opts = weft_asl::RunOptions::default();
    let machine = measure(n, || {
        runner
            .logs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        weft_asl::run_express(
            &sm,
            json!({}),
            &opts,
            &runner,
            &weft_asl::SystemClock,
            weft_asl::Hooks::default(),
        )
        .map(|_| ())
        .map_err(|e| anyhow::anyhow!("{}: {:?}", e.error, e.cause))
    })?;
    drop(srv);
    if a.json {
        println!(
            "{}",
            json!({"calls": n, "bare_exchange_p50_us": bare, "granted_request_p50_us": granted,
                   "http_task_p50_us": task, "state_machine_p50_us": machine})
        );
    } else {
        println!(
            "http: {n} calls each, p50 against a loopback server: bare HTTP/1.1 exchange {bare:.0} us, granted request (canonical URL, grant, ureq) {granted:.0} us, HTTP Task {task:.0} us, one-state machine {machine:.0} us: the HTTP Task adds {:.0} us to the granted request, the whole state {:.0} us to a bare exchange",
            task - granted,
            machine - bare
        );
    }
    Ok(ExitCode::SUCCESS)
}
