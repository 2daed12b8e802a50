//! `weft server`: Step Functions' own wire protocol (AWS JSON 1.0) over axum, so the AWS CLI and
//! SDKs (boto3's `stepfunctions` client) work against weft with `--endpoint-url`.
//!
//! `POST /` with `X-Amz-Target: AWSStepFunctions.<Action>` and a JSON body; answers use AWS's
//! field names, timestamps as epoch seconds, errors as HTTP 400 `{"__type", "message"}`.
//! State machines, executions and history are kept through the engine's persistence interface
//! ([`weft_engine::persistence::sfn::SfnStores`], opened in [`AppState::new`]; see [`records`]).
//!
//! Executions run in the engine's runtime ([`weft_engine::standard::Runtime`], which
//! [`AppState`] holds and derefs to): Standard ones durable, event-sourced by replay with group
//! commit, suspended without a thread while they wait, resumed after a crash; Express ones
//! (StartSyncExecution) in memory. The server hears from it through [`observer`].

pub mod access;
mod activities;
pub mod airflow_api;
pub mod api;
pub mod audit;
pub mod auth;
pub mod bench;
pub mod console;
pub mod dag_landing;
mod dag_scheduler;
pub mod error;
pub mod express;
mod for_execution;
pub mod guard;
pub mod live;
pub mod map_runs;
pub mod metrics;
pub mod metrics_series;
pub use weft_engine::persistence::pending;
pub mod observer;
pub mod rest;
mod shared_credentials;
pub mod sigv4;
mod sm_resource_map;
pub mod sm_summary;
pub mod tags;
mod test_state;
pub mod ui;
pub mod v1_access;
mod validate_api;
pub mod versions;
pub mod worker_api;

use anyhow::Context as _;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

pub use error::ApiError;
pub use weft_engine::standard::{
    dispatch, records, remote_tasks, runner, runtime, task_logs, traces,
};

/// The content type of AWS JSON 1.0.
pub const AMZ_JSON: &str = "application/x-amz-json-1.0";
/// Largest accepted request body (AWS's 256 KiB input limit plus room for the envelope).
pub const MAX_BODY: usize = 1 << 20;
/// Executions running at once per core by default (worker threads; `WEFT_SERVER_MAX_RUNNING`
/// overrides). Waiting executions hold no worker, so runs are busy with tasks and commits:
/// more workers than this only add context switches (durable transitions on 2 cores: 64
/// workers 12.5k/s, 256 workers 9.2k/s).
pub const MAX_RUNNING_PER_CORE: usize = 32;

/// The default bound on executions running at once: [`MAX_RUNNING_PER_CORE`] per core, between
/// 32 and 1,024.
pub fn default_max_running() -> usize {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    (MAX_RUNNING_PER_CORE * cores).clamp(32, 1024)
}

/// The server's state: the engine's runtime (which it derefs to, for the stores, the plugin
/// host, roles, buckets and the DAG scheduler) and what only the server has: credentials, the
/// audit log, metrics and live UI updates.
pub struct AppState {
    /// The durable runtime: executions, workers, timers, tokens, activities, and the stores.
    pub rt: Arc<weft_engine::standard::Runtime>,
    /// The API audit log (see [`audit`]).
    pub audit: Arc<dyn weft_engine::persistence::AppendLog>,
    /// `None`: no authentication (loopback with `--no-auth`).
    pub tokens: Option<auth::Tokens>,
    pub(crate) metrics: metrics::Metrics,
    /// Live updates for the web UI (history events and status changes; see [`live`]).
    pub(crate) live: live::Live,
}

impl std::ops::Deref for AppState {
    type Target = weft_engine::standard::Runtime;

    fn deref(&self) -> &Self::Target {
        &self.rt
    }
}

impl AppState {
    /// Opens the server's trees in `store` and resumes the executions a previous process left
    /// RUNNING.
    pub fn new(
        store: Arc<weft_store::Store>,
        tokens: Option<auth::Tokens>,
    ) -> anyhow::Result<Arc<Self>> {
        let max_running = std::env::var("WEFT_SERVER_MAX_RUNNING")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(default_max_running);
        Self::with_limit(store, tokens, max_running)
    }

    /// [`AppState::new`] with an explicit bound on concurrently running executions.
    pub fn with_limit(
        store: Arc<weft_store::Store>,
        tokens: Option<auth::Tokens>,
        max_running: usize,
    ) -> anyhow::Result<Arc<Self>> {
        Self::with_limits(store, tokens, max_running, None)
    }

    /// [`AppState::with_limit`] on `database` (a shared PostgreSQL database, or the sled
    /// store of `store`).
    pub fn with_limit_on(
        store: Arc<weft_store::Store>,
        tokens: Option<auth::Tokens>,
        max_running: usize,
        database: weft_engine::persistence::Database,
    ) -> anyhow::Result<Arc<Self>> {
        Self::build(store, tokens, max_running, None, None, true, Some(database))
    }

    /// [`AppState::with_limit`] plus a bound on the runs of one state machine at once
    /// (`None`: `WEFT_SERVER_MAX_RUNNING_PER_STATE_MACHINE`, else unbounded).
    pub fn with_limits(
        store: Arc<weft_store::Store>,
        tokens: Option<auth::Tokens>,
        max_running: usize,
        per_state_machine: Option<usize>,
    ) -> anyhow::Result<Arc<Self>> {
        Self::build(
            store,
            tokens,
            max_running,
            per_state_machine,
            None,
            true,
            None,
        )
    }

    /// [`AppState::new`] with a mock configuration: `StartExecution` and
    /// `StartSyncExecution` on `STATE_MACHINE_ARN#TestCase` run with the test case's mocks.
    pub fn with_mocks(
        store: Arc<weft_store::Store>,
        tokens: Option<auth::Tokens>,
        mocks: Option<weft_asl::mock::MockConfig>,
    ) -> anyhow::Result<Arc<Self>> {
        Self::with_options(store, tokens, mocks, true)
    }

    /// [`AppState::with_mocks`]; `local_tasks: false` sends every plugin task of a Standard
    /// execution to a queue for remote workers (`weft server --no-local-tasks`).
    pub fn with_options(
        store: Arc<weft_store::Store>,
        tokens: Option<auth::Tokens>,
        mocks: Option<weft_asl::mock::MockConfig>,
        local_tasks: bool,
    ) -> anyhow::Result<Arc<Self>> {
        let max_running = std::env::var("WEFT_SERVER_MAX_RUNNING")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(default_max_running);
        Self::build(store, tokens, max_running, None, mocks, local_tasks, None)
    }

    /// [`AppState::with_options`] on `database` (`weft server --db`) instead of the sled store
    /// of `store` (which keeps the plugins, roles and credentials either way).
    pub fn with_database(
        store: Arc<weft_store::Store>,
        tokens: Option<auth::Tokens>,
        mocks: Option<weft_asl::mock::MockConfig>,
        local_tasks: bool,
        database: weft_engine::persistence::Database,
    ) -> anyhow::Result<Arc<Self>> {
        let max_running = std::env::var("WEFT_SERVER_MAX_RUNNING")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(default_max_running);
        Self::build(
            store,
            tokens,
            max_running,
            None,
            mocks,
            local_tasks,
            Some(database),
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn build(
        store: Arc<weft_store::Store>,
        tokens: Option<auth::Tokens>,
        max_running: usize,
        per_state_machine: Option<usize>,
        mocks: Option<weft_asl::mock::MockConfig>,
        local_tasks: bool,
        database: Option<weft_engine::persistence::Database>,
    ) -> anyhow::Result<Arc<Self>> {
        let database = database
            .unwrap_or_else(|| weft_engine::persistence::Database::Sled(store.db().clone()));
        // the one place that knows which database the Step Functions side runs on
        let stores = weft_engine::persistence::sfn::SfnStores::open(&database)?;
        let settings = weft_engine::standard::Settings {
            max_running,
            per_state_machine,
            mocks,
            local_tasks,
            base_dir: std::env::current_dir().unwrap_or_else(|_| store.home().to_path_buf()),
            buckets: Arc::new(weft_engine::buckets::Buckets::load(store.home())?),
            home_map: sm_resource_map::home_map(store.home())?,
        };
        let state = Arc::new_cyclic(|me| {
            let side = Arc::new(observer::ServerSide::new(me.clone()));
            AppState {
                rt: Arc::new(weft_engine::standard::Runtime::new(
                    store, database, &stores, settings, side,
                )),
                audit: stores.audit.clone(),
                tokens,
                metrics: metrics::Metrics::default(),
                live: live::Live::default(),
            }
        });
        let n = weft_engine::standard::Runtime::start(&state.rt)?;
        weft_engine::standard::cluster::start(&state.rt)?;
        weft_engine::standard::dag_scheduler::start(&state.rt);
        if n > 0 {
            tracing::info!("resuming {n} execution(s) left RUNNING by a previous process");
        }
        Ok(state)
    }
}

/// The HTTP routes: `POST /` (the Step Functions API), `GET /healthz`, the web UI
/// (`GET /`, `GET /ui/app.js`, `GET /ui/app.css`; see [`ui`]) and its JSON endpoints under
/// `/v1` (see [`rest`] and [`live`]), Airflow's REST API under `/api/v2` (see [`airflow_api`]).
/// Every request first passes [`guard`] (loopback `Host`
/// without authentication; same-site JSON for anything that changes state).
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", post(sfn_endpoint).get(ui::index))
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics::endpoint))
        .route("/v1/audit", get(audit::endpoint))
        .route("/v1/express/logs", get(express::logs_endpoint))
        .route("/v1/logs", get(express::logs_endpoint))
        .merge(ui::asset_routes())
        .merge(rest::routes())
        .merge(sm_resource_map::routes())
        .merge(worker_api::routes())
        .merge(airflow_api::routes())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::layer,
        ))
        .with_state(state)
}

async fn sfn_endpoint(
    State(app): State<Arc<AppState>>,
    uri: axum::http::Uri,
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
    let mut principal_name = String::from("-");
    let mut resource = String::from("*");
    let result = async {
        let body = axum::body::to_bytes(body, MAX_BODY).await.map_err(|e| {
            ApiError::validation(format!("request body larger than {MAX_BODY} bytes or unreadable: {e}"))
                .with_status(axum::http::StatusCode::PAYLOAD_TOO_LARGE)
        })?;
        let principal = auth::check(
            app.tokens.as_ref(),
            &auth::Request {
                method: "POST",
                path: uri.path(),
                query: uri.query().unwrap_or(""),
                headers: &headers,
                body: &body,
            },
        )?;
        if let Some(p) = &principal {
            principal_name = p.name.clone();
        }
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
        // every resource the action touches, canonical, each authorised (see [`access`])
        let mut req = req;
        let plan = access::plan(&app, &action, &mut req)?;
        resource = plan.resources();
        access::authorize(&app, principal.as_ref(), &plan)?;
        let visible = access::Visible::new(principal.as_ref(), &plan);
        let out = api::dispatch_as(&app, &action, req, &visible).await;
        if visible.hidden() > 0 {
            let denied = Err(ApiError::new("AccessDeniedException", "hidden from the list"));
            audit::record(
                &app,
                &principal_name,
                visible.item_action().unwrap_or(""),
                &format!("{} listed item(s) hidden", visible.hidden()),
                &denied,
            );
        }
        out
    }
    .await;
    audit::record(&app, &principal_name, &action, &resource, &result);
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
    run_with_mocks(listen, no_auth, home, None)
}

/// [`run`] with a mock configuration (`weft server --mock-config`, see [`AppState::with_mocks`]).
pub fn run_with_mocks(
    listen: &str,
    no_auth: bool,
    home: &Path,
    mocks: Option<weft_asl::mock::MockConfig>,
) -> anyhow::Result<ExitCode> {
    run_node(listen, no_auth, home, mocks, true, None)
}

/// [`run_with_mocks`]; `local_tasks: false` (`--no-local-tasks`): the node runs no plugin task
/// of a Standard execution itself, every one waits on its queue for a `weft worker`.
pub fn run_node(
    listen: &str,
    no_auth: bool,
    home: &Path,
    mocks: Option<weft_asl::mock::MockConfig>,
    local_tasks: bool,
    db_url: Option<&str>,
) -> anyhow::Result<ExitCode> {
    use std::net::ToSocketAddrs;
    let addrs: Vec<std::net::SocketAddr> = listen
        .to_socket_addrs()
        .with_context(|| format!("--listen {listen}: not an ADDRESS:PORT"))?
        .collect();
    let Some(addr) = addrs.first().copied() else {
        anyhow::bail!("--listen {listen}: resolves to no address");
    };
    if no_auth && !addrs.iter().all(|a| a.ip().is_loopback()) {
        console::error(format!("weft server: --no-auth is only allowed on a loopback address (127.0.0.1, ::1), not {addr}"));
        return Ok(ExitCode::from(2));
    }
    let store = Arc::new(
        weft_store::Store::open(home)
            .with_context(|| format!("opening the weft store at {}", home.display()))?,
    );
    let database = weft_engine::persistence::Database::open(db_url, store.db())?;
    let tokens = if no_auth {
        None
    } else {
        // on a shared database every node serves the keys kept there
        let (tokens, created) = match &database {
            weft_engine::persistence::Database::Postgres(pg) => shared_credentials::load(home, pg)?,
            weft_engine::persistence::Database::Sled(_) => auth::Tokens::load_or_create(home)?,
        };
        let cred = home.join("credentials");
        if created {
            console::say(format!(
                "weft server: created an access key in {}",
                cred.display()
            ));
        }
        console::say(format!(
            "weft server: credentials are read from {} (AWS_SHARED_CREDENTIALS_FILE={} for the AWS CLI/SDKs; the UI logs in with the secret key)",
            cred.display(),
            cred.display()
        ));
        Some(tokens)
    };
    if let Some(m) = &mocks {
        console::say(format!(
            "weft server: mock configuration loaded ({} state machine(s)); start an execution on STATE_MACHINE_ARN#TestCase to use it",
            m.state_machines().len()
        ));
    }
    console::say(format!("weft server: state in {}", database.describe()));
    let state = AppState::with_database(store.clone(), tokens, mocks, local_tasks, database)?;
    if !local_tasks {
        console::say("weft server: --no-local-tasks: plugin tasks of Standard executions wait on their queue for `weft worker`");
    }
    let app = state.clone();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let app_signal = state.clone();
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding {addr}"))?;
        let local = listener.local_addr()?;
        console::say(format!("weft server: listening on http://{local} (Step Functions API: POST / with X-Amz-Target)"));
        axum::serve(listener, router(state))
            .with_graceful_shutdown(async move {
                shutdown_signal().await;
                app_signal.end_live_streams(); // open UI event streams would hold the shutdown
            })
            .await?;
        anyhow::Ok(())
    })?;
    // running executions unwind at their next boundary and stay RUNNING: the next start
    // resumes them from their journal
    app.rt.close();
    app.rt.drain(std::time::Duration::from_secs(5));
    weft_engine::standard::cluster::leave(&app.rt);
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    store.flush().ok();
    console::say("weft server: stopped");
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
