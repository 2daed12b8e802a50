//! The server's side of the engine's runtime ([`weft_engine::standard::Observer`]): executions
//! starting and ending and task attempts go to the metrics, status changes and history events
//! to the web UI's live updates, the execution role's decisions to the audit log.

use crate::error::ApiError;
use crate::AppState;
use serde_json::Value;
use std::sync::{Arc, Weak};
use weft_asl::HistoryEvent;
use weft_engine::standard::Observer;

/// The server, as the runtime it holds sees it (weakly: the server owns the runtime).
pub struct ServerSide {
    app: Weak<AppState>,
}

impl ServerSide {
    pub(crate) fn new(app: Weak<AppState>) -> Self {
        ServerSide { app }
    }

    fn app(&self) -> Option<Arc<AppState>> {
        self.app.upgrade()
    }
}

impl Observer for ServerSide {
    fn execution_started(&self, execution_arn: &str) {
        if let Some(app) = self.app() {
            crate::metrics::execution_started(&app, execution_arn);
        }
    }

    fn execution_finished(&self, execution_arn: &str, status: &str, elapsed_ms: i64) {
        if let Some(app) = self.app() {
            crate::metrics::execution_finished(&app, execution_arn, status, elapsed_ms);
        }
    }

    fn status_changed(&self, execution_arn: &str, status: &str) {
        if let Some(app) = self.app() {
            app.live.status(execution_arn, status);
        }
    }

    fn history_event(&self, execution_arn: &str, event: &HistoryEvent) {
        if let Some(app) = self.app() {
            if app.live.is_watched() {
                app.live
                    .history(execution_arn, &crate::runner::event_json(event));
            }
        }
    }

    fn task_finished(&self, outcome: &weft_sandbox::Outcome) {
        if let Some(app) = self.app() {
            crate::metrics::task_finished(&app, outcome);
        }
    }

    fn remote_task_finished(&self, failed: bool, fuel_used: u64) {
        if let Some(app) = self.app() {
            crate::metrics::remote_task_finished(&app, failed, fuel_used);
        }
    }

    fn role_decision(&self, principal: &str, action: &str, resource: &str, allowed: bool) {
        let Some(app) = self.app() else {
            return;
        };
        let outcome = if allowed {
            Ok(Value::Null)
        } else {
            Err(ApiError::new("AccessDeniedException", "denied by the role"))
        };
        crate::audit::record(&app, principal, action, resource, &outcome);
    }
}
