//! The per-invocation host state (WASI context, limits, grant, captured logs) and the
//! implementations of the `host` and `http` imports. Every capability check happens here and
//! is recorded as an audit record; secret values never reach a log or an audit record.

use crate::bindings::{host, http, types};
use crate::capture::CappedPipe;
use crate::grant::{AuditRecord, Grant};
use crate::limits::Limiter;
use crate::secret_name::SecretName;
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Where secret values come from (a local secrets file, the environment, a vault...). A source
/// is asked only by canonical name, the one the grant was evaluated on.
pub trait SecretSource: Send + Sync {
    fn secret(&self, name: &SecretName) -> Option<String>;

    /// Every name this source holds a value for, when it can list them (a remote task is sent
    /// the values of the listed names its grant allows, and no others). Default: none.
    fn names(&self) -> Vec<SecretName> {
        Vec::new()
    }
}

/// No secrets at all.
pub struct NoSecrets;
impl SecretSource for NoSecrets {
    fn secret(&self, _name: &SecretName) -> Option<String> {
        None
    }
}

/// A line the guest logged through the `host.log` import.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LogLine {
    pub level: &'static str,
    pub message: String,
    /// Milliseconds since the invocation started.
    pub at_ms: u64,
}

pub(crate) const MAX_LOG_LINES: usize = 1000;
pub(crate) const MAX_LOG_LINE: usize = 8 * 1024;

pub(crate) struct HostState {
    pub wasi: WasiCtx,
    pub table: ResourceTable,
    pub limiter: Limiter,
    pub grant: Arc<Grant>,
    pub secrets: Arc<dyn SecretSource>,
    pub heartbeat: Option<Arc<dyn Fn() + Send + Sync>>,
    pub logs: Vec<LogLine>,
    pub logs_dropped: u64,
    pub audit: Vec<AuditRecord>,
    pub started: Instant,
    pub deadline: Instant,
    pub http_body_cap: usize,
    pub stdout: CappedPipe,
    pub stderr: CappedPipe,
    pub plugin: String,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl types::Host for HostState {}

impl host::Host for HostState {
    fn log(&mut self, level: types::Level, msg: String) {
        let level = match level {
            types::Level::Trace => "trace",
            types::Level::Debug => "debug",
            types::Level::Info => "info",
            types::Level::Warn => "warn",
            types::Level::Error => "error",
        };
        tracing::debug!(plugin = %self.plugin, level, "guest log: {}", truncate(&msg, 200));
        if self.logs.len() >= MAX_LOG_LINES {
            self.logs_dropped += 1;
            return;
        }
        let mut message = msg;
        if message.len() > MAX_LOG_LINE {
            let cut = floor_char_boundary(&message, MAX_LOG_LINE);
            message.truncate(cut);
            message.push_str(" [truncated]");
        }
        self.logs.push(LogLine {
            level,
            message,
            at_ms: self.started.elapsed().as_millis() as u64,
        });
    }

    fn heartbeat(&mut self) {
        if let Some(h) = &self.heartbeat {
            h();
        }
    }

    fn get_secret(&mut self, name: String) -> Result<String, String> {
        // One canonical name: what the grant is evaluated on is what is looked up.
        let name = match SecretName::parse(&name) {
            Ok(n) => n,
            Err(e) => {
                let denied = crate::Decision {
                    effect: crate::Effect::Deny,
                    statement: None,
                };
                self.audit.push(AuditRecord::from_decision(
                    "secrets:Get",
                    &format!("secret:{}", e.shown),
                    &denied,
                    Some(e.reason.clone()),
                ));
                return Err(e.to_string());
            }
        };
        let resource = name.resource();
        let d = self.grant.evaluate("secrets:Get", &resource);
        if !d.allowed() {
            self.audit.push(AuditRecord::from_decision(
                "secrets:Get",
                &resource,
                &d,
                None,
            ));
            return Err(format!(
                "Sandbox.PermissionDenied: the grant does not allow secrets:Get on {resource}"
            ));
        }
        match self.secrets.secret(&name) {
            Some(v) => {
                self.audit.push(AuditRecord::from_decision(
                    "secrets:Get",
                    &resource,
                    &d,
                    None,
                ));
                Ok(v)
            }
            None => {
                self.audit.push(AuditRecord::from_decision(
                    "secrets:Get",
                    &resource,
                    &d,
                    Some("allowed, but no such secret is set".into()),
                ));
                Err(format!("Secrets.NotFound: no secret named `{name}` is set"))
            }
        }
    }
}

impl http::Host for HostState {
    fn send(&mut self, req: http::Request) -> Result<http::Response, http::HttpError> {
        // canonicalise once: the grant is matched on this value and the request goes to it
        let (url, record) = crate::outbound::authorize(&self.grant, &req.method, &req.url);
        self.audit.push(record);
        let url = url.map_err(|e| http::HttpError {
            error: e.error,
            cause: e.cause,
        })?;
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        let timeout = req
            .timeout_ms
            .map(|ms| Duration::from_millis(ms as u64).min(remaining))
            .unwrap_or(remaining);
        crate::http_client::send(&url, req, timeout, self.http_body_cap)
    }
}

pub(crate) fn truncate(s: &str, n: usize) -> &str {
    &s[..floor_char_boundary(s, n)]
}

/// The largest index at most `n` that starts a character of `s` (`s.len()` when `n` is past
/// it): where to cut `s` to at most `n` bytes.
pub fn floor_char_boundary(s: &str, mut n: usize) -> usize {
    if n >= s.len() {
        return s.len();
    }
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    n
}
