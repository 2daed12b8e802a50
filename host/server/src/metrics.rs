//! Prometheus metrics at `GET /metrics`, named after Step Functions' CloudWatch metrics
//! (ExecutionsStarted, ExecutionsSucceeded, ExecutionsFailed, ExecutionsAborted,
//! ExecutionsTimedOut, ExecutionTime), task figures (runs, failures, duration, fuel, sandbox
//! denials) and the runtime's own gauges; the labelled families (Airflow's metric names, the
//! same Step Functions metrics per state machine, slots per worker) are
//! [`crate::metrics_series`]'s.
//!
//! When the server has credentials the endpoint needs one too, as any `/v1` route
//! (`Authorization: Bearer SECRET`, which Prometheus sends with `authorization: {credentials_file:
//! ...}` in its scrape config) and `weft:GetMetrics` on `weft:metrics`; refusals are audited,
//! allowed scrapes are not (a scraper reads every few seconds). Without authentication
//! (`--no-auth`, loopback only) it is open like any route.

use crate::AppState;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Counters kept by the server.
#[derive(Default)]
pub struct Metrics {
    started: AtomicU64,
    succeeded: AtomicU64,
    failed: AtomicU64,
    aborted: AtomicU64,
    timed_out: AtomicU64,
    /// Sum of execution times of finished executions, in ms.
    time_ms_sum: AtomicU64,
    finished: AtomicU64,
    tasks: AtomicU64,
    tasks_failed: AtomicU64,
    task_us_sum: AtomicU64,
    fuel: AtomicU64,
    denials: AtomicU64,
    /// The same executions per state machine (see [`crate::metrics_series`]).
    pub(crate) by_state_machine: crate::metrics_series::StateMachineSeries,
}

/// Records one sandboxed task attempt.
pub(crate) fn task_finished(app: &AppState, out: &weft_sandbox::Outcome) {
    let m = &app.metrics;
    m.tasks.fetch_add(1, Ordering::Relaxed);
    if out.result.is_err() {
        m.tasks_failed.fetch_add(1, Ordering::Relaxed);
    }
    m.task_us_sum
        .fetch_add(out.duration.as_micros() as u64, Ordering::Relaxed);
    m.fuel.fetch_add(out.fuel_used, Ordering::Relaxed);
    let denied = out
        .audit
        .iter()
        .filter(|a| a.decision == weft_sandbox::Effect::Deny)
        .count();
    m.denials.fetch_add(denied as u64, Ordering::Relaxed);
}

/// A remote worker reported a try (its duration is the worker's, not counted here).
pub(crate) fn remote_task_finished(app: &AppState, failed: bool, fuel: u64) {
    let m = &app.metrics;
    m.tasks.fetch_add(1, Ordering::Relaxed);
    if failed {
        m.tasks_failed.fetch_add(1, Ordering::Relaxed);
    }
    m.fuel.fetch_add(fuel, Ordering::Relaxed);
}

pub(crate) fn execution_started(app: &AppState, execution_arn: &str) {
    app.metrics.started.fetch_add(1, Ordering::Relaxed);
    app.metrics.by_state_machine.started(execution_arn);
}

pub(crate) fn execution_finished(
    app: &AppState,
    execution_arn: &str,
    status: &str,
    elapsed_ms: i64,
) {
    let m = &app.metrics;
    m.by_state_machine
        .finished(execution_arn, status, elapsed_ms);
    let c = match status {
        "SUCCEEDED" => &m.succeeded,
        "FAILED" => &m.failed,
        "ABORTED" => &m.aborted,
        "TIMED_OUT" => &m.timed_out,
        _ => return,
    };
    c.fetch_add(1, Ordering::Relaxed);
    m.time_ms_sum
        .fetch_add(elapsed_ms.max(0) as u64, Ordering::Relaxed);
    m.finished.fetch_add(1, Ordering::Relaxed);
}

/// The metrics in Prometheus' text exposition format.
pub fn render(app: &AppState) -> String {
    let m = &app.metrics;
    let mut s = String::with_capacity(1024);
    let mut counter = |name: &str, help: &str, v: u64| {
        let _ = writeln!(s, "# HELP weft_{name} {help}");
        let _ = writeln!(s, "# TYPE weft_{name} counter");
        let _ = writeln!(s, "weft_{name} {v}");
    };
    let ld = |a: &AtomicU64| a.load(Ordering::Relaxed);
    counter(
        "executions_started_total",
        "ExecutionsStarted: Standard executions started.",
        ld(&m.started),
    );
    counter(
        "executions_succeeded_total",
        "ExecutionsSucceeded.",
        ld(&m.succeeded),
    );
    counter(
        "executions_failed_total",
        "ExecutionsFailed.",
        ld(&m.failed),
    );
    counter(
        "executions_aborted_total",
        "ExecutionsAborted.",
        ld(&m.aborted),
    );
    counter(
        "executions_timed_out_total",
        "ExecutionsTimedOut.",
        ld(&m.timed_out),
    );
    counter(
        "execution_time_ms_sum",
        "ExecutionTime: total milliseconds of finished executions.",
        ld(&m.time_ms_sum),
    );
    counter(
        "execution_time_count",
        "Finished executions counted in execution_time_ms_sum.",
        ld(&m.finished),
    );
    counter("tasks_total", "Sandboxed task attempts.", ld(&m.tasks));
    counter(
        "tasks_failed_total",
        "Sandboxed task attempts that failed.",
        ld(&m.tasks_failed),
    );
    counter(
        "task_duration_us_sum",
        "Time spent in sandboxed task attempts, microseconds.",
        ld(&m.task_us_sum),
    );
    counter(
        "task_fuel_used_total",
        "Fuel consumed by sandboxed task attempts.",
        ld(&m.fuel),
    );
    counter(
        "sandbox_denials_total",
        "Grant decisions that denied an operator something.",
        ld(&m.denials),
    );
    counter(
        "execution_runs_total",
        "Runs (first runs and resumptions by replay).",
        app.rt.runs.load(Ordering::Relaxed),
    );
    counter(
        "group_commit_flushes_total",
        "fsyncs made by the group committer.",
        app.rt.commit.flushes(),
    );
    let _ = writeln!(
        s,
        "# HELP weft_executions_queued Executions waiting for a worker."
    );
    let _ = writeln!(s, "# TYPE weft_executions_queued gauge");
    let _ = writeln!(s, "weft_executions_queued {}", app.rt.queued());
    remote_series(&mut s, app.dispatch.as_ref());
    crate::metrics_series::render(&mut s, app);
    s
}

/// The dispatcher's gauges: what an external autoscaler of worker hosts reads.
fn remote_series(s: &mut String, d: &dyn crate::dispatch::TaskDispatch) {
    fn gauge(s: &mut String, name: &str, help: &str) {
        let _ = writeln!(s, "# HELP weft_{name} {help}");
        let _ = writeln!(s, "# TYPE weft_{name} gauge");
    }
    gauge(
        s,
        "queue_depth",
        "Tasks waiting on a queue for a remote worker.",
    );
    let depths = d.queue_depths();
    let workers = d.workers();
    let mut lines = String::new();
    for (q, n) in &depths {
        let _ = writeln!(lines, "weft_queue_depth{{queue=\"{q}\"}} {n}");
    }
    // a queue a worker listens to is reported even while empty
    for w in &workers {
        for q in &w.queues {
            if !depths.iter().any(|(d, _)| d == q) && !lines.contains(&format!("queue=\"{q}\"")) {
                let _ = writeln!(lines, "weft_queue_depth{{queue=\"{q}\"}} 0");
            }
        }
    }
    s.push_str(&lines);
    gauge(
        s,
        "remote_tasks_running",
        "Tasks running on remote workers.",
    );
    let _ = writeln!(s, "weft_remote_tasks_running {}", d.running());
    gauge(
        s,
        "workers_connected",
        "Remote workers that polled or heartbeated recently.",
    );
    let _ = writeln!(s, "weft_workers_connected {}", workers.len());
    gauge(
        s,
        "worker_slots",
        "Sandbox slots of connected workers, busy or idle.",
    );
    let busy: u64 = workers.iter().map(|w| u64::from(w.busy)).sum();
    let idle: u64 = workers.iter().map(|w| u64::from(w.idle_slots())).sum();
    let _ = writeln!(s, "weft_worker_slots{{state=\"busy\"}} {busy}");
    let _ = writeln!(s, "weft_worker_slots{{state=\"idle\"}} {idle}");
    gauge(
        s,
        "workers_draining",
        "Connected workers shutting down (they take no new task; their running ones finish).",
    );
    let _ = writeln!(
        s,
        "weft_workers_draining {}",
        workers.iter().filter(|w| w.draining).count()
    );
}

/// `GET /metrics`.
pub async fn endpoint(
    State(app): State<Arc<AppState>>,
    req: crate::v1_access::V1Request,
) -> axum::response::Response {
    let allowed = crate::v1_access::decide_with(&app, &req, "weft:GetMetrics", false, |ctx| {
        ctx.authorize(crate::v1_access::METRICS)
    });
    match allowed {
        Ok(()) => ([(CONTENT_TYPE, "text/plain; version=0.0.4")], render(&app)).into_response(),
        Err(e) => e.into_response(),
    }
}
