//! Task logs: what each sandboxed task attempt of an execution printed and was allowed or denied.
//!
//! Entries are kept through [`crate::persistence::history::HistoryStore`] (queued in
//! [`crate::persistence::pending`] until the next group commit), each with a process-wide sequence number
//! seeded from the clock in microseconds, so entries keep the order tasks ran in across
//! restarts. An entry is JSON:
//! `{"state","attempt","plugin","digest","stdout","stderr","logs","audit","fuelUsed",
//! "durationMs","error","timestamp"}` (`error`: `{"error","cause"}` or null; `timestamp`:
//! epoch milliseconds when the attempt ended), plus `"worker": "HOST/WORKER_ID"` for an
//! attempt a remote worker ran (see [`super::remote_tasks`]).
//!
//! Entries are written by the execution task runner through
//! [`crate::asl_tasks::SandboxTaskRunner::with_observer`]; a task that failed before it
//! reached the sandbox (unknown plugin, bad credentials) gets an entry with only the error, and
//! a built-in task (the HTTP Task) an entry with its audit decisions and no plugin digest.

use super::records::now_ms;
use super::{Runtime, RuntimeError};
use crate::asl_tasks::SandboxTaskRunner;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;
use weft_asl::{TaskFailure, TaskRequest, TaskRunner};
use weft_sandbox::Outcome;
use weft_store::PluginRecord;

/// At most this many entries are returned for one execution.
pub const MAX_ENTRIES: usize = 2000;

fn next_seq() -> u64 {
    static SEQ: OnceLock<AtomicU64> = OnceLock::new();
    SEQ.get_or_init(|| {
        let micros = chrono::Utc::now().timestamp_micros().max(0) as u64;
        AtomicU64::new(micros)
    })
    .fetch_add(1, Ordering::Relaxed)
}

/// The execution ARN of a task request (`$$.Execution.Id`).
fn execution_of<'r>(req: &'r TaskRequest<'_>) -> Option<&'r str> {
    req.context.pointer("/Execution/Id").and_then(Value::as_str)
}

fn record(rt: &Runtime, req: &TaskRequest<'_>, text: String) {
    let Some(exec) = execution_of(req) else {
        return;
    };
    let seq = next_seq();
    if rt
        .pending
        .push_task_log(exec, seq, req.state_name, req.attempt, text)
    {
        rt.commit.nudge();
    }
}

/// Records an attempt's entry written elsewhere (a remote worker's attempt).
pub fn record_entry(rt: &Runtime, req: &TaskRequest<'_>, text: String) {
    record(rt, req, text)
}

/// One attempt's entry, serialised without building a JSON tree (the hot path): `L` and `A` are
/// the log and audit records as the sandbox (or, for a remote attempt, the worker's report)
/// hands them over.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct OutcomeEntry<'a, L: serde::Serialize, A: serde::Serialize> {
    pub state: &'a str,
    pub attempt: u32,
    pub plugin: String,
    pub digest: String,
    pub stdout: &'a str,
    pub stderr: &'a str,
    pub logs: &'a [L],
    pub audit: &'a [A],
    pub fuel_used: u64,
    pub duration_ms: f64,
    pub error: Option<ErrorEntry<'a>>,
    pub timestamp: i64,
    /// `HOST/WORKER_ID` of the worker that ran a remote attempt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker: Option<&'a str>,
}

#[derive(serde::Serialize)]
pub(super) struct ErrorEntry<'a> {
    pub error: &'a str,
    pub cause: &'a str,
}

fn outcome_text(req: &TaskRequest<'_>, rec: &PluginRecord, out: &Outcome) -> String {
    let entry = OutcomeEntry {
        state: req.state_name,
        attempt: req.attempt,
        plugin: rec.key(),
        digest: rec.digest.to_hex().to_string(),
        stdout: &out.stdout,
        stderr: &out.stderr,
        logs: &out.logs,
        audit: &out.audit,
        fuel_used: out.fuel_used,
        duration_ms: out.duration.as_secs_f64() * 1000.0,
        error: out.result.as_ref().err().map(|e| ErrorEntry {
            error: &e.error,
            cause: &e.cause,
        }),
        timestamp: now_ms(),
        worker: None,
    };
    serde_json::to_string(&entry).unwrap_or_default()
}

/// Runs `runner` on `req`, recording the attempt in [`TREE`].
pub fn run_logged(
    rt: &Runtime,
    runner: SandboxTaskRunner<'_>,
    req: &TaskRequest<'_>,
) -> Result<Value, TaskFailure> {
    run_logged_with(rt, runner, req, |r| r.run_task(req))
}

/// Runs `f` with `runner` for `req` (one or more plugin calls: a mapped job's start or poll),
/// recording each call in [`TREE`] (or, when none reached the sandbox, the failure).
pub fn run_logged_with<T>(
    rt: &Runtime,
    runner: SandboxTaskRunner<'_>,
    req: &TaskRequest<'_>,
    f: impl FnOnce(&SandboxTaskRunner<'_>) -> Result<T, TaskFailure>,
) -> Result<T, TaskFailure> {
    let observed = AtomicBool::new(false);
    let runner = runner.with_observer(|req, rec, out| {
        observed.store(true, Ordering::Relaxed);
        rt.observer.task_finished(out);
        record(rt, req, outcome_text(req, rec, out));
    });
    let r = f(&runner);
    // built-in tasks (the HTTP Task) leave their attempt in the runner's own logs
    let built_in = std::mem::take(&mut *runner.logs.lock().unwrap_or_else(|e| e.into_inner()));
    for log in built_in {
        observed.store(true, Ordering::Relaxed);
        let error = r
            .as_ref()
            .err()
            .map(|e| json!({"error": e.error, "cause": e.cause}));
        record(
            rt,
            req,
            json!({
                "state": log.state,
                "attempt": log.attempt,
                "plugin": log.plugin,
                "digest": null,
                "stdout": log.stdout, "stderr": log.stderr, "logs": log.logs, "audit": log.audit,
                "fuelUsed": null, "durationMs": null,
                "error": error,
                "timestamp": now_ms(),
            })
            .to_string(),
        );
    }
    if let Err(e) = &r {
        if !observed.load(Ordering::Relaxed) {
            record(
                rt,
                req,
                json!({
                    "state": req.state_name,
                    "attempt": req.attempt,
                    "plugin": req.target,
                    "digest": null,
                    "stdout": "", "stderr": "", "logs": [], "audit": [],
                    "fuelUsed": null, "durationMs": null,
                    "error": {"error": e.error, "cause": e.cause},
                    "timestamp": now_ms(),
                })
                .to_string(),
            );
        }
    }
    r
}

/// The task log entries of `execution`, in the order the attempts ran; `true` when truncated.
/// Entries queued for the next group commit are applied first (see [`crate::persistence::pending`]).
pub fn list(rt: &Runtime, execution: &str) -> Result<(Vec<Value>, bool), RuntimeError> {
    rt.pending.apply()?;
    let mut entries = rt.history.task_logs(execution)?;
    entries.sort_by_key(|(seq, _)| *seq);
    let truncated = entries.len() > MAX_ENTRIES;
    let mut out = Vec::with_capacity(entries.len().min(MAX_ENTRIES));
    for (_, v) in entries.into_iter().take(MAX_ENTRIES) {
        out.push(serde_json::from_slice(&v)?);
    }
    Ok((out, truncated))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_increase() {
        assert!(next_seq() < next_seq());
    }
}
