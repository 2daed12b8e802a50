//! `.waitForTaskToken` in `weft run`: the task's operator runs and receives `$$.Task.Token`,
//! but its own result is not the task's (as in Step Functions, only a callback completes the
//! task), and no callback can reach an in-process run. So the task waits out its
//! `HeartbeatSeconds` or `TimeoutSeconds` and fails with `States.HeartbeatTimeout` or
//! `States.Timeout` (on the run's clock: `--fast-forward` takes no wall time); with neither
//! set it fails at once with advice instead of waiting Step Functions' default of a year.

use std::time::Duration;
use weft_asl::error::names;
use weft_asl::resource::IntegrationPattern;
use weft_asl::{Clock, TaskFailure, TaskRequest, TaskRunner};

/// Wraps the run's task runner for callback tasks (mocks sit outside it and answer first).
pub struct LocalCallbacks<'a> {
    pub inner: &'a dyn TaskRunner,
    pub clock: &'a dyn Clock,
}

impl TaskRunner for LocalCallbacks<'_> {
    fn run_task(&self, req: &TaskRequest<'_>) -> Result<serde_json::Value, TaskFailure> {
        if req.resource.pattern != IntegrationPattern::WaitForTaskToken {
            return self.inner.run_task(req);
        }
        let (limit, error, what) = match (req.heartbeat_seconds, req.timeout_seconds) {
            (Some(h), t) if t.is_none_or(|t| h < t) => {
                (h, names::HEARTBEAT_TIMEOUT, "HeartbeatSeconds")
            }
            (_, Some(t)) => (t, names::TIMEOUT, "TimeoutSeconds"),
            (Some(_), None) | (None, None) => {
                return Err(TaskFailure {
                    error: names::RUNTIME.into(),
                    cause: format!(
                        "state '{}' waits for a task token callback (.waitForTaskToken), which cannot reach a local run: run the state machine on `weft server` (callbacks: `weft sm send-success`), give the state a mocked response (`--mock-config FILE --test-case NAME`), or set TimeoutSeconds to let it time out here",
                        req.state_name
                    ),
                })
            }
        };
        // the operator gets the token (e.g. to hand it to someone); its result is not the task's
        self.inner.run_task(req)?;
        self.clock
            .sleep_unless_cancelled(Duration::from_secs(limit.min(365 * 24 * 3600)), &req.cancel);
        Err(TaskFailure {
            error: error.into(),
            cause: format!(
                "no callback for the task token arrived within {what} ({limit}s); a local run cannot receive callbacks (use `weft server` or --mock-config)"
            ),
        })
    }

    fn task_token(&self, key: &str, attempt: u32) -> String {
        self.inner.task_token(key, attempt)
    }

    fn wraps_result(&self, req: &TaskRequest<'_>) -> bool {
        self.inner.wraps_result(req)
    }

    fn replayed(&self, req: &TaskRequest<'_>) {
        self.inner.replayed(req)
    }
}
