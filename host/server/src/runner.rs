//! Running one execution: the task runner (plugins in the sandbox, host created on first use),
//! a clock whose sleeps end early when the execution is stopped, and a history sink writing to
//! sled that stops recording once the execution is aborted.

use crate::records::history_key;
use crate::{AppState, RunControl};
use serde_json::Value;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use weft_asl::resource::ResourceKind;
use weft_asl::{Clock, HistoryEvent, HistorySink, TaskFailure, TaskRequest, TaskRunner};
use weft_sandbox::{Policy, Sandbox, SandboxConfig};

pub(crate) struct ServerTaskRunner {
    pub app: Arc<AppState>,
    pub execution_role: Option<Arc<Policy>>,
    pub ctl: Option<Arc<RunControl>>,
}

impl ServerTaskRunner {
    fn host(&self) -> Result<Arc<weft_engine::PluginHost>, TaskFailure> {
        self.app
            .host
            .get_or_init(|| {
                let sandbox =
                    Sandbox::new(&SandboxConfig::default()).map_err(|e| format!("sandbox: {e}"))?;
                weft_engine::PluginHost::new(self.app.store.clone(), Arc::new(sandbox))
                    .map(Arc::new)
                    .map_err(|e| e.to_string())
            })
            .clone()
            .map_err(|e| TaskFailure {
                error: "States.TaskFailed".into(),
                cause: e,
            })
    }
}

/// A task waiting for SendTaskSuccess / SendTaskFailure / SendTaskHeartbeat.
pub(crate) struct Callback {
    state: Mutex<CallbackState>,
    cv: Condvar,
    /// Which execution and state wait (for the web UI's `GET /v1/executions/{arn}/tokens`).
    pub info: crate::rest::WaitingTask,
}

struct CallbackState {
    result: Option<Result<Value, TaskFailure>>,
    last_heartbeat: Instant,
    /// The task stopped waiting (answered, timed out, stopped): later callbacks are refused.
    closed: bool,
}

impl Callback {
    fn new(info: crate::rest::WaitingTask) -> Self {
        Callback {
            info,
            state: Mutex::new(CallbackState {
                result: None,
                last_heartbeat: Instant::now(),
                closed: false,
            }),
            cv: Condvar::new(),
        }
    }

    /// Completes the task; false when it already had a result.
    pub(crate) fn complete(&self, r: Result<Value, TaskFailure>) -> bool {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.closed || st.result.is_some() {
            return false;
        }
        st.result = Some(r);
        self.cv.notify_all();
        true
    }

    /// The task no longer waits (answered, timed out or stopped).
    pub(crate) fn is_closed(&self) -> bool {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.closed || st.result.is_some()
    }

    /// Records a heartbeat; false when the task no longer waits.
    pub(crate) fn heartbeat(&self) -> bool {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.last_heartbeat = Instant::now();
        !st.closed
    }
}

fn stopped() -> TaskFailure {
    TaskFailure {
        error: "States.Runtime".into(),
        cause: "the execution was stopped".into(),
    }
}

impl ServerTaskRunner {
    fn is_stopped(&self) -> bool {
        self.ctl
            .as_ref()
            .is_some_and(|c| c.flag.load(Ordering::SeqCst))
    }

    /// `.waitForTaskToken`: runs the plugin (if the resource names one) with the token in its
    /// input, then waits for a callback, enforcing TimeoutSeconds and HeartbeatSeconds.
    fn wait_for_token(&self, req: &TaskRequest<'_>, token: &str) -> Result<Value, TaskFailure> {
        let cb = Arc::new(Callback::new(crate::rest::WaitingTask::of(req)));
        self.app
            .callbacks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(token.to_string(), cb.clone());
        let r = self.wait_inner(req, &cb);
        self.app
            .callbacks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(token);
        r
    }

    fn wait_inner(&self, req: &TaskRequest<'_>, cb: &Callback) -> Result<Value, TaskFailure> {
        let started = Instant::now();
        if matches!(
            req.resource.kind,
            ResourceKind::Plugin { .. }
                | ResourceKind::LambdaInvoke
                | ResourceKind::LambdaFunction { .. }
        ) {
            self.run_plugin(req)?;
        }
        let timeout = req
            .timeout_seconds
            .map(|t| started + Duration::from_secs(t.min(365 * 24 * 3600)));
        let heartbeat = req
            .heartbeat_seconds
            .map(|h| Duration::from_secs(h.min(365 * 24 * 3600)));
        let mut st = cb.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(r) = st.result.take() {
                st.closed = true;
                return r;
            }
            if self.is_stopped() {
                st.closed = true;
                return Err(stopped());
            }
            let now = Instant::now();
            if timeout.is_some_and(|t| now >= t) {
                st.result = Some(Err(TaskFailure {
                    error: "States.Timeout".into(),
                    cause: "no callback within TimeoutSeconds".into(),
                }));
                continue;
            }
            if heartbeat.is_some_and(|h| now >= st.last_heartbeat + h) {
                st.result = Some(Err(TaskFailure {
                    error: "States.HeartbeatTimeout".into(),
                    cause: "no SendTaskHeartbeat within HeartbeatSeconds".into(),
                }));
                continue;
            }
            st = cb
                .cv
                .wait_timeout(st, Duration::from_millis(50))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    fn run_plugin(&self, req: &TaskRequest<'_>) -> Result<Value, TaskFailure> {
        let host = self.host()?;
        let runner = weft_engine::asl_tasks::SandboxTaskRunner::new(
            &host,
            &self.app.roles,
            self.execution_role.clone(),
            self.app.base_dir.clone(),
        );
        // task logs for the web UI (tree sfn_task_logs)
        crate::task_logs::run_logged(&self.app, runner, req)
    }
}

impl TaskRunner for ServerTaskRunner {
    fn run_task(&self, req: &TaskRequest<'_>) -> Result<Value, TaskFailure> {
        if self.is_stopped() {
            return Err(stopped());
        }
        match &req.task_token {
            Some(token) => self.wait_for_token(req, token),
            None => self.run_plugin(req),
        }
    }
}

/// The system clock; a sleep (Wait state, retry back-off) ends early once the execution stops.
pub(crate) struct StoppableClock(pub Option<Arc<RunControl>>);

impl Clock for StoppableClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now()
    }
    fn sleep(&self, d: Duration) {
        let Some(ctl) = &self.0 else {
            std::thread::sleep(d);
            return;
        };
        let end = std::time::Instant::now() + d;
        loop {
            if ctl.flag.load(Ordering::SeqCst) {
                return;
            }
            let now = std::time::Instant::now();
            if now >= end {
                return;
            }
            std::thread::sleep((end - now).min(Duration::from_millis(50)));
        }
    }
}

/// Writes each event to the history tree as it happens (so GetExecutionHistory shows a running
/// execution's progress); nothing is recorded after StopExecution.
pub(crate) struct SledHistory {
    pub tree: sled::Tree,
    pub arn: String,
    pub ctl: Arc<RunControl>,
    /// Live updates for the web UI.
    pub live: crate::live::Live,
}

impl HistorySink for SledHistory {
    fn event(&mut self, ev: HistoryEvent) {
        let aborted = self.ctl.aborted.lock().unwrap_or_else(|e| e.into_inner());
        if *aborted {
            return;
        }
        let v = event_json(&ev);
        if let Err(e) = self
            .tree
            .insert(history_key(&self.arn, ev.id), v.to_string().as_bytes())
        {
            tracing::error!(execution = %self.arn, "cannot record a history event: {e}");
            return;
        }
        self.live.history(&self.arn, &v);
    }
}

/// `HistoryEvent::to_json` with the timestamp as epoch seconds (AWS JSON 1.0's timestamp shape).
pub(crate) fn event_json(ev: &HistoryEvent) -> Value {
    let mut v = ev.to_json();
    if let Some(m) = v.as_object_mut() {
        m.insert("timestamp".into(), crate::records::ts(ev.timestamp_ms));
    }
    v
}
