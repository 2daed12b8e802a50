//! `weft server`: Step Functions' own wire protocol (AWS JSON 1.0) over axum, so the AWS CLI and
//! SDKs (boto3's `stepfunctions` client) work against weft with `--endpoint-url`.
//!
//! `POST /` with `X-Amz-Target: AWSStepFunctions.<Action>` and a JSON body; answers use AWS's
//! field names, timestamps as epoch seconds, errors as HTTP 400 `{"__type", "message"}`.
//! State machines, executions and history live in sled trees of the store (see [`records`]).
//!
//! Executions run in-process on the blocking pool through the ASL interpreter with tasks in the
//! sandbox. Durable resume is not implemented yet: on start-up an execution left RUNNING by a
//! crash is marked FAILED (`States.Runtime`, "interrupted by a restart").

pub mod api;
pub mod auth;
pub mod error;
pub mod live;
pub mod records;
pub mod rest;
mod runner;
pub mod task_logs;
pub mod ui;

use anyhow::Context as _;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, OnceLock};

pub use error::ApiError;

/// The content type of AWS JSON 1.0.
pub const AMZ_JSON: &str = "application/x-amz-json-1.0";
/// Largest accepted request body (AWS's 256 KiB input limit plus room for the envelope).
pub const MAX_BODY: usize = 1 << 20;
/// Default bound on concurrently running executions (`WEFT_SERVER_MAX_RUNNING` overrides).
/// Each running execution holds a blocking thread until durable timers land.
pub const DEFAULT_MAX_RUNNING: usize = 400;

/// A running execution's stop switch; the lock also orders history writes against StopExecution.
#[derive(Default)]
pub(crate) struct RunControl {
    pub aborted: Mutex<bool>,
    pub flag: std::sync::atomic::AtomicBool,
}

pub struct AppState {
    pub store: Arc<weft_store::Store>,
    pub(crate) state_machines: sled::Tree,
    pub(crate) executions: sled::Tree,
    pub(crate) history: sled::Tree,
    /// `None`: no authentication (loopback with `--no-auth`).
    pub tokens: Option<auth::Tokens>,
    pub(crate) running: Mutex<HashMap<String, Arc<RunControl>>>,
    /// Tasks paused on `.waitForTaskToken`, by token (in memory: lost with the process).
    pub(crate) callbacks: Mutex<HashMap<String, Arc<runner::Callback>>>,
    /// The plugin host, created on the first Task (creating the sandbox is not free).
    pub(crate) host: OnceLock<Result<Arc<weft_engine::PluginHost>, String>>,
    pub(crate) roles: weft_engine::Roles,
    /// Where relative `file:` grants are resolved.
    pub base_dir: PathBuf,
    /// At most this many executions run at once; StartExecution beyond it fails with
    /// `ExecutionLimitExceeded` (back-pressure instead of an unbounded queue).
    pub max_running: usize,
    /// Live updates for the web UI (history events and status changes; see [`live`]).
    pub(crate) live: live::Live,
    /// Task logs: tree `sfn_task_logs` (see [`task_logs`]).
    pub(crate) task_logs: sled::Tree,
}

impl AppState {
    /// Opens the server's trees in `store` and fails executions a crash left RUNNING.
    pub fn new(
        store: Arc<weft_store::Store>,
        tokens: Option<auth::Tokens>,
    ) -> anyhow::Result<Arc<Self>> {
        let max_running = std::env::var("WEFT_SERVER_MAX_RUNNING")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(DEFAULT_MAX_RUNNING);
        Self::with_limit(store, tokens, max_running)
    }

    /// [`AppState::new`] with an explicit bound on concurrently running executions.
    pub fn with_limit(
        store: Arc<weft_store::Store>,
        tokens: Option<auth::Tokens>,
        max_running: usize,
    ) -> anyhow::Result<Arc<Self>> {
        let db = store.db();
        let state = Arc::new(AppState {
            state_machines: db.open_tree("sfn_state_machines")?,
            executions: db.open_tree("sfn_executions")?,
            history: db.open_tree("sfn_history")?,
            task_logs: db.open_tree(task_logs::TREE)?,
            live: live::Live::default(),
            roles: weft_engine::Roles::new(vec![store.home().join("roles")]),
            base_dir: std::env::current_dir().unwrap_or_else(|_| store.home().to_path_buf()),
            store,
            tokens,
            running: Mutex::new(HashMap::new()),
            callbacks: Mutex::new(HashMap::new()),
            host: OnceLock::new(),
            max_running,
        });
        let n = api::recover_interrupted(&state)?;
        if n > 0 {
            tracing::warn!(
                "{n} execution(s) left RUNNING by a previous process were marked FAILED"
            );
        }
        Ok(state)
    }
}

/// The HTTP routes: `POST /` (the Step Functions API), `GET /healthz`, the web UI
/// (`GET /`, `GET /ui/app.js`, `GET /ui/app.css`; see [`ui`]) and its JSON endpoints under
/// `/v1` (see [`rest`] and [`live`]).
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", post(sfn_endpoint).get(ui::index))
        .route("/healthz", get(|| async { "ok" }))
        .merge(ui::asset_routes())
        .merge(rest::routes())
        .with_state(state)
}

async fn sfn_endpoint(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let action = target
        .strip_prefix("AWSStepFunctions.")
        .unwrap_or("")
        .to_string();
    let result = async {
        auth::check(app.tokens.as_ref(), &headers)?;
        let body = axum::body::to_bytes(body, MAX_BODY).await.map_err(|e| {
            ApiError::validation(format!("request body larger than {MAX_BODY} bytes or unreadable: {e}"))
                .with_status(axum::http::StatusCode::PAYLOAD_TOO_LARGE)
        })?;
        if action.is_empty() {
            return Err(ApiError::new(
                "UnknownOperationException",
                format!("missing or unknown X-Amz-Target `{target}` (expected AWSStepFunctions.<Action>)"),
            ));
        }
        let req: serde_json::Value = if body.iter().all(|b| b.is_ascii_whitespace()) {
            serde_json::Value::Object(Default::default())
        } else {
            serde_json::from_slice(&body).map_err(|e| {
                ApiError::new("SerializationException", format!("request body is not JSON: {e}"))
            })?
        };
        if !req.is_object() {
            return Err(ApiError::new("SerializationException", "request body must be a JSON object"));
        }
        api::dispatch(&app, &action, req).await
    }
    .await;
    let status = if result.is_ok() { "ok" } else { "error" };
    tracing::info!(action = %action, status, "api call");
    let mut resp = match result {
        Ok(v) => {
            let mut r = v.to_string().into_response();
            r.headers_mut()
                .insert("content-type", HeaderValue::from_static(AMZ_JSON));
            r
        }
        Err(e) => e.into_response(),
    };
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("x-amzn-requestid", v);
    }
    resp
}

/// Serves `state` on an already bound listener until the future is dropped.
pub async fn serve(listener: tokio::net::TcpListener, state: Arc<AppState>) -> std::io::Result<()> {
    axum::serve(listener, router(state)).await
}

/// `weft server [--listen ADDR:PORT] [--no-auth]`: opens `$WEFT_HOME`, loads (or creates) the
/// token file, binds and serves until Ctrl-C / SIGTERM.
pub fn run(listen: &str, no_auth: bool, home: &Path) -> anyhow::Result<ExitCode> {
    use std::net::ToSocketAddrs;
    let addrs: Vec<std::net::SocketAddr> = listen
        .to_socket_addrs()
        .with_context(|| format!("--listen {listen}: not an ADDRESS:PORT"))?
        .collect();
    let Some(addr) = addrs.first().copied() else {
        anyhow::bail!("--listen {listen}: resolves to no address");
    };
    if no_auth && !addrs.iter().all(|a| a.ip().is_loopback()) {
        eprintln!("weft server: --no-auth is only allowed on a loopback address (127.0.0.1, ::1), not {addr}");
        return Ok(ExitCode::from(2));
    }
    let store = Arc::new(
        weft_store::Store::open(home)
            .with_context(|| format!("opening the weft store at {}", home.display()))?,
    );
    let tokens = if no_auth {
        None
    } else {
        let (tokens, created) = auth::Tokens::load_or_create(&home.join("tokens"))?;
        if created {
            eprintln!(
                "weft server: created an access token in {}",
                home.join("tokens").display()
            );
        }
        eprintln!(
            "weft server: tokens are read from {} (use one as the AWS access key id, or `Authorization: Bearer TOKEN`)",
            home.join("tokens").display()
        );
        Some(tokens)
    };
    let state = AppState::new(store.clone(), tokens)?;
    let app = state.clone();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding {addr}"))?;
        let local = listener.local_addr()?;
        eprintln!("weft server: listening on http://{local} (Step Functions API: POST / with X-Amz-Target)");
        axum::serve(listener, router(state))
            .with_graceful_shutdown(async move {
                shutdown_signal().await;
                app.end_live_streams(); // open UI event streams would hold the shutdown
            })
            .await?;
        anyhow::Ok(())
    })?;
    // executions still running (a long Wait, a task) are not waited for: they stay RUNNING in
    // the store and the next start marks them FAILED (durable resume is not implemented yet)
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    store.flush().ok();
    eprintln!("weft server: stopped");
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
