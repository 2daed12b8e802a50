//! Running one execution: the task runner (plugins in the sandbox, host created on first use),
//! a clock whose sleeps end early when the execution is stopped, and a history sink writing to
//! sled that stops recording once the execution is aborted.

use crate::records::history_key;
use crate::{AppState, RunControl};
use serde_json::Value;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
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

impl TaskRunner for ServerTaskRunner {
    fn run_task(&self, req: &TaskRequest<'_>) -> Result<Value, TaskFailure> {
        if self
            .ctl
            .as_ref()
            .is_some_and(|c| c.flag.load(Ordering::SeqCst))
        {
            return Err(TaskFailure {
                error: "States.Runtime".into(),
                cause: "the execution was stopped".into(),
            });
        }
        let host = self.host()?;
        let runner = weft_engine::asl_tasks::SandboxTaskRunner::new(
            &host,
            &self.app.roles,
            self.execution_role.clone(),
            self.app.base_dir.clone(),
        );
        runner.run_task(req)
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
        }
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
