//! What the runtime tells the service around it: [`Observer`] hears of executions starting
//! and ending, history events, task attempts and the execution role's decisions (the server
//! keeps metrics, live UI updates and the audit log from them). It may not block: it is called
//! on the runtime's worker threads.

use weft_asl::HistoryEvent;

/// Notifications from the runtime; every method does nothing unless implemented.
pub trait Observer: Send + Sync {
    /// A Standard or Express execution started.
    fn execution_started(&self, _execution_arn: &str) {}

    /// An execution ended with `status` (SUCCEEDED, FAILED, TIMED_OUT, ABORTED) after
    /// `elapsed_ms`.
    fn execution_finished(&self, _execution_arn: &str, _status: &str, _elapsed_ms: i64) {}

    /// A Standard execution's status changed to `status`.
    fn status_changed(&self, _execution_arn: &str, _status: &str) {}

    /// A history event of a Standard execution was recorded.
    fn history_event(&self, _execution_arn: &str, _event: &HistoryEvent) {}

    /// A sandboxed task attempt ended here.
    fn task_finished(&self, _outcome: &weft_sandbox::Outcome) {}

    /// A remote worker reported a task attempt.
    fn remote_task_finished(&self, _failed: bool, _fuel_used: u64) {}

    /// The execution role (as `principal`) was, or was not, allowed `action` on `resource`.
    fn role_decision(&self, _principal: &str, _action: &str, _resource: &str, _allowed: bool) {}
}
