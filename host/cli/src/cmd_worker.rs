//! `weft worker --server URL [--queue NAME]... [--min-slots N] [--max-slots N]`: runs a node's
//! sandboxed tasks on this host. Each slot long-polls the node (`POST /v1/worker/poll`) for a
//! task of the worker's queues, fetches the plugin by its pinned blake3 digest when this host's
//! store lacks it (`GET /v1/blobs/{digest}`, verified before it is written), and so a Python
//! callable's DAG folder packages (an archive named by its digest, unpacked once per digest into
//! `$WEFT_HOME/cache/worker-packages`, see [`weft_engine::remote_packages`]), runs it in the local
//! sandbox with the grant and secrets the message carries, heartbeats while it runs and reports
//! the outcome; the report carries the slot's next poll, which the node answers as a poll, so a
//! slot reports and takes (or waits for) its next task in one round trip. Requests are
//! SigV4-signed with a profile of the node's credentials file format
//! (`AWS_SHARED_CREDENTIALS_FILE`, else `$WEFT_HOME/credentials`); the worker holds no
//! database, only a plugin store (blobs and precompiled artifacts) under `$WEFT_HOME`.
//!
//! The first SIGTERM or SIGINT drains the worker (see [`watch_signals`]): no new task is taken,
//! running ones finish and report, then the process exits 0.
//!
//! Slots scale with the queue: the worker starts `--min-slots` pollers; a poll answered with
//! tasks still waiting, or a task taken by the last free slot, adds a slot (up to
//! `--max-slots`); a slot whose poll came back empty ends while more than `--min-slots` remain.
//!
//! `--server` is `http://HOST:PORT` or `https://HOST[:PORT]` (a TLS proxy or load balancer in
//! front of the node; its certificate must chain to the public roots, or to `--ca-bundle`'s /
//! `AWS_CA_BUNDLE`'s PEM certificates when given, as the AWS CLI's). It may be given once per
//! node of a cluster (`weft server --db`): each node queues the tasks of what it runs, so the
//! worker keeps slots polling each of them. `--min-slots` is spread over the nodes (at least one
//! each) and `--max-slots` bounds the slots of all of them together; a slot heartbeats and
//! reports to the node that handed its task out.

use crate::args::WorkerArgs;
use crate::context::usage;
use anyhow::{Context as _, Result};
use serde_json::Value;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;
use weft_engine::remote::{
    DrainRequest, HeartbeatRequest, HeartbeatResponse, PollRequest, PollResponse, RemoteTask,
    RemoteTaskError, TaskReport,
};
use weft_engine::PluginHost;

/// A request's deadline beyond the node's long-poll wait.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(90);
/// Largest answer read from the node besides blobs (a task message is at most a few MiB).
const MAX_ANSWER_BYTES: u64 = 8 << 20;
/// Wait before polling again after the node could not be reached.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// A node, and the key requests are signed with.
struct Node {
    agent: ureq::Agent,
    /// `http://HOST:PORT`
    base: String,
    /// `HOST:PORT`, the signed `Host` header.
    authority: String,
    /// (access key id, secret); `None`: unsigned (a node started with `--no-auth`).
    key: Option<(String, String)>,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The trust an https:// node's certificate is checked against: the PEM bundle of `--ca-bundle`
/// (else `AWS_CA_BUNDLE`), else the public (Mozilla) roots.
fn tls_roots(ca_bundle: Option<&std::path::Path>) -> Result<ureq::tls::RootCerts> {
    let from_env = std::env::var_os("AWS_CA_BUNDLE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let Some(path) = ca_bundle.map(PathBuf::from).or(from_env) else {
        return Ok(ureq::tls::RootCerts::WebPki);
    };
    let pem = std::fs::read(&path)
        .with_context(|| format!("reading the CA bundle {}", path.display()))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item.with_context(|| format!("{}: not a PEM file", path.display()))? {
            ureq::tls::PemItem::Certificate(c) => certs.push(c),
            _ => anyhow::bail!(
                "{}: a CA bundle holds certificates only (it has a private key)",
                path.display()
            ),
        }
    }
    if certs.is_empty() {
        return Err(usage(format!(
            "{}: no certificate in the CA bundle",
            path.display()
        )));
    }
    Ok(certs.into())
}

/// `--server URL`, canonical: (`SCHEME://AUTHORITY`, `AUTHORITY`), the authority as the Host
/// header carries it (no default port).
fn node_address(server: &str) -> Result<(String, String)> {
    let bad = |why: &str| usage(format!("--server {server}: {why}"));
    let url = url::Url::parse(server).map_err(|e| {
        bad(&format!(
            "expected http://HOST:PORT or https://HOST[:PORT] ({e})"
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("expected http://HOST:PORT or https://HOST[:PORT]"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(
            "a user or password has no place in the URL (use the credentials file)",
        ));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(bad("expected no path, query or fragment"));
    }
    let host = url.host_str().ok_or_else(|| bad("expected a host"))?;
    let authority = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    };
    Ok((format!("{}://{authority}", url.scheme()), authority))
}

impl Node {
    /// The node at `base` (`SCHEME://AUTHORITY`, see [`node_address`]).
    fn new(
        (base, authority): (String, String),
        profile: &str,
        roots: &ureq::tls::RootCerts,
    ) -> Result<Self> {
        let path = std::env::var_os("AWS_SHARED_CREDENTIALS_FILE")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| crate::context::home().join("credentials"));
        let key = match std::fs::read_to_string(&path) {
            Ok(text) => {
                let base = path
                    .parent()
                    .map(PathBuf::from)
                    .unwrap_or_else(crate::context::home);
                let keys = weft_server::auth::Tokens::parse_credentials(&text, &path, &base)?;
                let p =
                    keys.0.values().find(|p| p.name == profile).ok_or_else(|| {
                        usage(format!("{}: no profile [{profile}]", path.display()))
                    })?;
                Some((p.access_key_id.clone(), p.secret.clone()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && profile == "default" => None,
            Err(e) => anyhow::bail!("reading {}: {e}", path.display()),
        };
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(REQUEST_TIMEOUT))
            .http_status_as_error(false)
            .max_redirects(0)
            .tls_config(
                ureq::tls::TlsConfig::builder()
                    .root_certs(roots.clone())
                    .build(),
            )
            .build()
            .new_agent();
        Ok(Node {
            agent,
            base,
            authority,
            key,
        })
    }

    /// One request, SigV4-signed over its method, path, headers and body.
    fn send(&self, method: &str, path: &str, body: Vec<u8>) -> Result<http::Response<ureq::Body>> {
        use sha2::Digest;
        let date = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
        let mut b = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("host", &self.authority)
            .header("x-amz-date", &date);
        if method != "GET" {
            b = b.header("content-type", "application/json");
        }
        if let Some((id, secret)) = &self.key {
            let scope = format!("{}/us-east-1/states/aws4_request", &date[..8]);
            let mut headers = vec![
                ("host".to_string(), self.authority.clone()),
                ("x-amz-date".to_string(), date.clone()),
            ];
            let mut names = vec!["host", "x-amz-date"];
            if method != "GET" {
                headers.insert(0, ("content-type".into(), "application/json".into()));
                names.insert(0, "content-type");
            }
            let sig = weft_server::auth::sign(
                secret,
                method,
                path,
                "",
                &headers,
                &names,
                &hex(&sha2::Sha256::digest(&body)),
                &date,
                &scope,
            );
            b = b.header(
                "authorization",
                format!(
                    "AWS4-HMAC-SHA256 Credential={id}/{scope}, SignedHeaders={}, Signature={sig}",
                    names.join(";")
                ),
            );
        }
        let req = b.body(body)?;
        self.agent
            .run(req)
            .with_context(|| format!("{method} {}{path}", self.base))
    }

    /// A JSON call: (status, answer).
    fn call(&self, path: &str, body: &impl serde::Serialize) -> Result<(u16, Value)> {
        let mut resp = self.send("POST", path, serde_json::to_vec(body)?)?;
        let status = resp.status().as_u16();
        let bytes = resp
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER_BYTES)
            .read_to_vec()?;
        Ok((
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ))
    }

    /// A blob (a plugin's component, a packages archive) of at most `cap` bytes, read as it
    /// streams and verified against `digest`.
    fn blob(
        &self,
        name: &str,
        digest: &weft_store::Digest,
        cap: u64,
    ) -> Result<Vec<u8>, RemoteTaskError> {
        let fetch_err = |reason: String| RemoteTaskError::Fetch {
            name: name.to_string(),
            digest: digest.to_hex().to_string(),
            reason,
        };
        let mut resp = self
            .send("GET", &format!("/v1/blobs/{}", digest.to_hex()), Vec::new())
            .map_err(|e| fetch_err(format!("{e:#}")))?;
        if resp.status() != 200 {
            let text = resp
                .body_mut()
                .with_config()
                .limit(64 * 1024)
                .read_to_string()
                .unwrap_or_default();
            return Err(fetch_err(format!("HTTP {}: {text}", resp.status())));
        }
        let reader = resp.body_mut().with_config().limit(cap + 1).reader();
        weft_engine::remote::read_verified(name, digest, reader, cap)
    }
}

/// The worker's part that serves one node.
struct Worker {
    node: Node,
    host: Arc<PluginHost>,
    worker_id: String,
    host_name: String,
    queues: Vec<String>,
    base_dir: PathBuf,
    /// Slots this node keeps however idle.
    min_slots: u32,
    /// `--max-slots`: the bound of all nodes' slots together.
    max_slots: u32,
    /// This node's slots.
    slots: AtomicU32,
    /// Every node's slots (shared by the worker's parts).
    all_slots: Arc<AtomicU32>,
    busy: AtomicU32,
    /// This process's session: its polls carry it, its drain names it.
    session: String,
    /// Set by the first SIGTERM or SIGINT: no new task is taken (shared by the worker's parts).
    draining: Arc<AtomicBool>,
}

/// `len` hex digits unique to this process and `purpose` (a generated worker id, the session).
fn process_token(purpose: &str, len: usize) -> String {
    let seed = format!(
        "{purpose}-{}-{:?}",
        std::process::id(),
        std::time::SystemTime::now()
    );
    blake3::hash(seed.as_bytes()).to_hex()[..len].to_string()
}

/// `min` slots spread over `nodes` nodes, at least one each.
fn minimum_per_node(min: u32, nodes: u32, i: u32) -> u32 {
    (min / nodes + u32::from(i < min % nodes)).max(1)
}

pub fn run(a: WorkerArgs) -> Result<ExitCode> {
    let queues = if a.queue.is_empty() {
        vec![weft_engine::remote::DEFAULT_QUEUE.to_string()]
    } else {
        a.queue.clone()
    };
    for q in &queues {
        if !weft_engine::remote::valid_name(q) {
            return Err(usage(format!(
                "--queue {q}: a queue name is 1 to 128 letters, digits, `.`, `_` or `-`"
            )));
        }
    }
    let max = a
        .max_slots
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get() as u32));
    let min = a.min_slots.unwrap_or(1);
    if min == 0 || max < min || max > weft_server::worker_api::MAX_SLOTS {
        return Err(usage(format!(
            "--min-slots {min} --max-slots {max}: need 1 <= min <= max <= {}",
            weft_server::worker_api::MAX_SLOTS
        )));
    }
    let worker_id = match a.id {
        Some(id) if weft_engine::remote::valid_name(&id) => id,
        Some(id) => {
            return Err(usage(format!(
                "--id {id}: 1 to 128 letters, digits, `.`, `_` or `-`"
            )))
        }
        None => format!("w-{}", process_token("worker", 12)),
    };
    let addresses = a
        .server
        .iter()
        .map(|url| node_address(url))
        .collect::<Result<Vec<_>>>()?;
    // (a bundle is read only for a node reached over TLS)
    let roots = if addresses
        .iter()
        .any(|(base, _)| base.starts_with("https://"))
    {
        tls_roots(a.ca_bundle.as_deref())?
    } else {
        ureq::tls::RootCerts::WebPki
    };
    let nodes = addresses
        .into_iter()
        .map(|address| Node::new(address, &a.profile, &roots))
        .collect::<Result<Vec<_>>>()?;
    for (i, n) in nodes.iter().enumerate() {
        if nodes[..i].iter().any(|o| o.base == n.base) {
            return Err(usage(format!("--server {}: named twice", n.base)));
        }
    }
    let count = nodes.len() as u32;
    if max < count {
        return Err(usage(format!(
            "--max-slots {max}: each of the {count} --server nodes needs a slot"
        )));
    }
    let home = crate::context::home();
    let store = Arc::new(
        weft_store::PluginStore::open(&home)
            .with_context(|| format!("opening the plugin store at {}", home.display()))?,
    );
    let sandbox = Arc::new(weft_sandbox::Sandbox::new(
        &weft_sandbox::SandboxConfig::default(),
    )?);
    let host = Arc::new(PluginHost::new(store, sandbox)?);
    let base_dir = std::env::current_dir()?;
    let all_slots = Arc::new(AtomicU32::new(0));
    let host_name = weft_engine::remote::host_name().to_string();
    let session = process_token("session", 16);
    let draining = Arc::new(AtomicBool::new(false));
    let workers: Vec<Arc<Worker>> = nodes
        .into_iter()
        .enumerate()
        .map(|(i, node)| {
            Arc::new(Worker {
                node,
                host: host.clone(),
                worker_id: worker_id.clone(),
                host_name: host_name.clone(),
                queues: queues.clone(),
                base_dir: base_dir.clone(),
                min_slots: minimum_per_node(min, count, i as u32),
                max_slots: max,
                slots: AtomicU32::new(0),
                all_slots: all_slots.clone(),
                busy: AtomicU32::new(0),
                session: session.clone(),
                draining: draining.clone(),
            })
        })
        .collect();
    weft_server::console::say(format!(
        "weft worker {host_name}/{worker_id}: polling {} for queue(s) {} with {min} to {max} slot(s)",
        workers
            .iter()
            .map(|w| w.node.base.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        queues.join(", ")
    ));
    for w in &workers {
        for _ in 0..w.min_slots {
            spawn_slot(w);
        }
    }
    watch_signals(&workers, &draining)?;
    // slots end when scaling down and, once draining, when their task is reported
    while !(draining.load(Ordering::SeqCst) && all_slots.load(Ordering::SeqCst) == 0) {
        std::thread::sleep(Duration::from_millis(50));
    }
    weft_server::console::say(format!(
        "weft worker {host_name}/{worker_id}: drained, every task it took is reported"
    ));
    Ok(ExitCode::SUCCESS)
}

/// The first SIGTERM or SIGINT drains the worker (Celery's warm shutdown, what a Kubernetes
/// scale-in or an autoscaling group's termination sends): the nodes are told to hand this
/// session no more tasks, running tasks go on (heartbeating) until they are reported, and the
/// process then exits 0. A second signal stops it at once (the running tries are failed over
/// by the node after its heartbeat timeout, as for a lost worker).
fn watch_signals(workers: &[Arc<Worker>], draining: &Arc<AtomicBool>) -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // registered before returning: a signal from now on drains instead of killing
    let (mut term, mut int) = {
        let _in = rt.enter();
        (
            signal(SignalKind::terminate())?,
            signal(SignalKind::interrupt())?,
        )
    };
    let (workers, draining) = (workers.to_vec(), draining.clone());
    std::thread::Builder::new()
        .name("weft-signals".into())
        .spawn(move || {
            rt.block_on(async move {
                let mut first = true;
                loop {
                    let (name, code) = tokio::select! {
                        _ = term.recv() => ("SIGTERM", 143),
                        _ = int.recv() => ("SIGINT", 130),
                    };
                    if !first {
                        weft_server::console::say(format!(
                            "weft worker: {name} again: stopping now"
                        ));
                        std::process::exit(code);
                    }
                    first = false;
                    draining.store(true, Ordering::SeqCst);
                    let running: u32 = workers.iter().map(|w| w.busy.load(Ordering::SeqCst)).sum();
                    weft_server::console::say(format!(
                        "weft worker: {name}: draining: {running} running task(s) finish and report, no new task is taken ({name} again stops at once)"
                    ));
                    for w in &workers {
                        let drain = DrainRequest {
                            worker_id: w.worker_id.clone(),
                            session: w.session.clone(),
                        };
                        match w.node.call("/v1/worker/drain", &drain) {
                            Ok((200, _)) => {}
                            Ok((status, v)) => tracing::warn!(
                                status,
                                node = %w.node.base,
                                "drain refused (its polls end within the poll wait): {}",
                                v["message"].as_str().unwrap_or("")
                            ),
                            Err(e) => tracing::warn!(node = %w.node.base, "cannot tell the node: {e:#}"),
                        }
                    }
                }
            })
        })?;
    Ok(())
}

fn spawn_slot(w: &Arc<Worker>) -> bool {
    if w.draining.load(Ordering::SeqCst) {
        return false;
    }
    let n = w.all_slots.fetch_add(1, Ordering::SeqCst);
    if n >= w.max_slots {
        w.all_slots.fetch_sub(1, Ordering::SeqCst);
        return false;
    }
    w.slots.fetch_add(1, Ordering::SeqCst);
    let w = w.clone();
    std::thread::spawn(move || slot_loop(&w));
    true
}

/// What this slot would ask the node for now.
fn poll_request(w: &Worker) -> PollRequest {
    PollRequest {
        worker_id: w.worker_id.clone(),
        host: w.host_name.clone(),
        queues: w.queues.clone(),
        slots: w.slots.load(Ordering::SeqCst).min(w.max_slots),
        busy: w.busy.load(Ordering::SeqCst),
        session: Some(w.session.clone()),
    }
}

/// Gives this slot back (scaling down, or draining).
fn end_slot(w: &Worker) {
    w.slots.fetch_sub(1, Ordering::SeqCst);
    w.all_slots.fetch_sub(1, Ordering::SeqCst);
}

/// One long poll; `None` after a failure (logged, and waited out).
fn long_poll(w: &Worker) -> Option<PollResponse> {
    match w.node.call("/v1/worker/poll", &poll_request(w)) {
        Ok((200, v)) => match serde_json::from_value::<PollResponse>(v) {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::warn!("the node's poll answer is not understood: {e}");
                std::thread::sleep(RETRY_AFTER);
                None
            }
        },
        Ok((status, v)) => {
            tracing::warn!(
                status,
                "poll refused: {}",
                v["message"].as_str().unwrap_or("")
            );
            std::thread::sleep(RETRY_AFTER);
            None
        }
        Err(e) => {
            tracing::warn!("cannot reach the node: {e:#}");
            std::thread::sleep(RETRY_AFTER);
            None
        }
    }
}

fn slot_loop(w: &Arc<Worker>) {
    // the answer to the poll the last report carried (no separate poll needed)
    let mut answered: Option<PollResponse> = None;
    loop {
        let answer = match answered.take() {
            Some(answer) => answer,
            // draining: take no new task
            None if w.draining.load(Ordering::SeqCst) => return end_slot(w),
            None => match long_poll(w) {
                Some(answer) => answer,
                None => continue,
            },
        };
        if answer.queue_depth > 0 {
            spawn_slot(w);
        }
        match answer.task {
            Some(task) => {
                // every slot busy: keep one more polling (up to --max-slots), so a task queued
                // later does not wait for a running one
                if w.busy.load(Ordering::SeqCst) + 1 >= w.slots.load(Ordering::SeqCst) {
                    spawn_slot(w);
                }
                answered = execute(w, task);
            }
            None => {
                // idle: give the slot back while more than the minimum remain
                let n = w.slots.load(Ordering::SeqCst);
                if n > w.min_slots
                    && w.slots
                        .compare_exchange(n, n - 1, Ordering::SeqCst, Ordering::SeqCst)
                        .is_ok()
                {
                    w.all_slots.fetch_sub(1, Ordering::SeqCst);
                    return;
                }
            }
        }
    }
}

/// Runs `task` and reports it, polling in the same call for this slot's next task: the node's
/// answer to that poll, given when a task came or the poll wait ran out (`None`: the report was
/// not accepted, or the node answered `{}`).
fn execute(w: &Arc<Worker>, task: RemoteTask) -> Option<PollResponse> {
    w.busy.fetch_add(1, Ordering::SeqCst);
    tracing::info!(task = %task.task_id, state = %task.state, plugin = %task.plugin.name, "task received");
    let (done, done_rx) = std::sync::mpsc::channel::<()>();
    let cancel = Arc::new(AtomicBool::new(false));
    let beat = {
        let (w, cancel) = (w.clone(), cancel.clone());
        let task_id = task.task_id.clone();
        let every = Duration::from_millis(task.heartbeat_ms.max(1));
        std::thread::spawn(move || heartbeat_loop(&w, &task_id, every, &done_rx, &cancel))
    };
    let mut outcome = weft_engine::remote::ensure_plugin(&w.host, &task.plugin, |d| {
        w.node.blob(
            &task.plugin.name,
            d,
            weft_plugins::limits::MAX_COMPONENT_BYTES,
        )
    })
    .and_then(|rec| {
        let packages = match &task.packages {
            Some(digest) => Some(weft_engine::remote_packages::ensure(
                w.host.store.home(),
                digest,
                |d| {
                    w.node.blob(
                        "python-packages",
                        d,
                        weft_engine::remote_packages::MAX_ARCHIVE_BYTES,
                    )
                },
            )?),
            None => None,
        };
        let c = cancel.clone();
        weft_engine::remote::run_task(
            &w.host,
            &task,
            &rec,
            &w.base_dir,
            packages.as_deref(),
            Some(Arc::new(move || c.load(Ordering::Relaxed))),
        )
    })
    .unwrap_or_else(|e| {
        tracing::warn!(task = %task.task_id, "{e}");
        e.outcome()
    });
    drop(done);
    let _ = beat.join();
    // the node refuses a body over its limit: what the guest printed or logged too much of is
    // cut here, not the whole report lost (the rest is the report's envelope and next poll)
    outcome.fit(weft_server::MAX_BODY - 64 * 1024);
    // (this slot is free again once the report is in: the poll counts it so)
    w.busy.fetch_sub(1, Ordering::SeqCst);
    let report = TaskReport {
        worker_id: w.worker_id.clone(),
        task_id: task.task_id.clone(),
        outcome,
        // draining: report only
        next: (!w.draining.load(Ordering::SeqCst)).then(|| poll_request(w)),
    };
    let mut next = None;
    for attempt in 0..5 {
        match w.node.call("/v1/worker/report", &report) {
            Ok((200, v)) => {
                next = serde_json::from_value::<PollResponse>(v).ok();
                break;
            }
            Ok((409, _)) if attempt > 0 => {
                tracing::warn!(task = %task.task_id, "the node refused the report's retry (the first attempt may have landed before its answer was lost, or the try was failed over)");
                break;
            }
            Ok((409, _)) => {
                tracing::warn!(task = %task.task_id, "the node discarded this result (the try was failed over or cancelled)");
                break;
            }
            Ok((status, v)) => {
                tracing::warn!(
                    status,
                    "report refused: {}",
                    v["message"].as_str().unwrap_or("")
                );
                break;
            }
            Err(e) => {
                tracing::warn!(attempt, "cannot report: {e:#}");
                std::thread::sleep(RETRY_AFTER);
            }
        }
    }
    next
}

/// Heartbeats `task_id` every `every` until `done` says the task ended (at once: the report
/// does not wait for the next tick).
fn heartbeat_loop(
    w: &Worker,
    task_id: &str,
    every: Duration,
    done: &std::sync::mpsc::Receiver<()>,
    cancel: &AtomicBool,
) {
    while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = done.recv_timeout(every) {
        let hb = HeartbeatRequest {
            worker_id: w.worker_id.clone(),
            task_id: task_id.to_string(),
        };
        match w.node.call("/v1/worker/heartbeat", &hb) {
            Ok((200, v)) => {
                if serde_json::from_value::<HeartbeatResponse>(v).is_ok_and(|r| r.cancel) {
                    tracing::info!(task = %task_id, "the node cancelled this task");
                    cancel.store(true, Ordering::SeqCst);
                }
            }
            Ok((409, _)) => {
                // the node no longer waits for this try: stop it
                cancel.store(true, Ordering::SeqCst);
            }
            Ok((status, _)) => tracing::warn!(status, "heartbeat refused"),
            Err(e) => tracing::warn!("heartbeat failed: {e:#}"),
        }
    }
}
