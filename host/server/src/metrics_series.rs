//! The labelled series of `GET /metrics`: Airflow's metric names for the DAG scheduler (as
//! Airflow's StatsD exporter mapping names them in Prometheus: `airflow_dagrun_duration_success`,
//! `airflow_ti_successes`, `airflow_pool_open_slots`, ...), Step Functions' CloudWatch metrics per
//! state machine (`weft_states_ExecutionsStarted{state_machine_arn=...}`, ...), and the
//! connected remote workers' slots per worker and queue. Every family holds at most
//! `WEFT_METRICS_MAX_SERIES` label combinations (default 1,000); label values past that are
//! folded into `other` (see [`weft_engine::metrics`]).

use crate::AppState;
use std::fmt::Write as _;
use weft_engine::metrics::{max_series_from_env, Series};

/// Step Functions' CloudWatch metrics, per state machine ARN.
#[derive(Debug)]
pub struct StateMachineSeries {
    started: Series,
    succeeded: Series,
    failed: Series,
    aborted: Series,
    timed_out: Series,
    /// ExecutionTime, milliseconds (CloudWatch's unit).
    time_ms: Series,
}

impl Default for StateMachineSeries {
    fn default() -> Self {
        let cap = max_series_from_env();
        StateMachineSeries {
            started: Series::new(cap),
            succeeded: Series::new(cap),
            failed: Series::new(cap),
            aborted: Series::new(cap),
            timed_out: Series::new(cap),
            time_ms: Series::new(cap),
        }
    }
}

/// The state machine of an execution ARN (`...:execution:SM:NAME` or `...:express:SM:...`);
/// `unknown` for anything else.
pub fn state_machine_arn(execution_arn: &str) -> String {
    let p: Vec<&str> = execution_arn.splitn(8, ':').collect();
    match p.as_slice() {
        ["arn", partition, "states", region, account, "execution" | "express", sm, ..] => {
            format!("arn:{partition}:states:{region}:{account}:stateMachine:{sm}")
        }
        _ => "unknown".into(),
    }
}

impl StateMachineSeries {
    pub(crate) fn started(&self, execution_arn: &str) {
        self.started
            .observe(&[&state_machine_arn(execution_arn)], 1.0);
    }

    pub(crate) fn finished(&self, execution_arn: &str, status: &str, elapsed_ms: i64) {
        let sm = state_machine_arn(execution_arn);
        let series = match status {
            "SUCCEEDED" => &self.succeeded,
            "FAILED" => &self.failed,
            "ABORTED" => &self.aborted,
            "TIMED_OUT" => &self.timed_out,
            _ => return,
        };
        series.observe(&[&sm], 1.0);
        self.time_ms.observe(&[&sm], elapsed_ms.max(0) as f64);
    }
}

/// A label value in Prometheus' text format (backslash, quote and newline escaped).
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn labels(names: &[&str], values: &[String]) -> String {
    if names.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = names
        .iter()
        .zip(values)
        .map(|(n, v)| format!("{n}=\"{}\"", escape(v)))
        .collect();
    format!("{{{}}}", inner.join(","))
}

/// How a family is exposed.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Counter,
    Gauge,
    /// `_sum` and `_count`.
    Summary,
}

fn family(s: &mut String, name: &str, kind: Kind, help: &str, names: &[&str], series: &Series) {
    let t = match kind {
        Kind::Counter => "counter",
        Kind::Gauge => "gauge",
        Kind::Summary => "summary",
    };
    let _ = writeln!(s, "# HELP {name} {help}");
    let _ = writeln!(s, "# TYPE {name} {t}");
    for (values, v) in series.snapshot() {
        let l = labels(names, &values);
        match kind {
            Kind::Summary => {
                let _ = writeln!(s, "{name}_sum{l} {}", v.sum);
                let _ = writeln!(s, "{name}_count{l} {}", v.count);
            }
            _ => {
                let _ = writeln!(s, "{name}{l} {}", v.sum);
            }
        }
    }
}

/// Appends the labelled families to a scrape.
pub(crate) fn render(s: &mut String, app: &AppState) {
    use Kind::{Counter, Gauge, Summary};
    let m = &app.dag_metrics;
    let d = ["dag_id"];
    let dt = ["dag_id", "task_id"];
    let p = ["pool"];
    for (name, kind, help, names, series) in [
        (
            "airflow_dagrun_duration_success",
            Summary,
            "Seconds taken by a DAG run that succeeded (dagrun.duration.success).",
            &d[..],
            &m.dagrun_duration_success,
        ),
        (
            "airflow_dagrun_duration_failed",
            Summary,
            "Seconds taken by a DAG run that failed (dagrun.duration.failed).",
            &d[..],
            &m.dagrun_duration_failed,
        ),
        (
            "airflow_ti_successes",
            Counter,
            "Task instances that succeeded (ti_successes).",
            &dt[..],
            &m.ti_successes,
        ),
        (
            "airflow_ti_failures",
            Counter,
            "Task instances that failed (ti_failures).",
            &dt[..],
            &m.ti_failures,
        ),
        (
            "airflow_task_duration",
            Summary,
            "Seconds taken by task tries (dag.<dag_id>.<task_id>.duration).",
            &dt[..],
            &m.task_duration,
        ),
        (
            "airflow_scheduler_heartbeat",
            Counter,
            "Scheduler loop heartbeats (scheduler_heartbeat).",
            &[][..],
            &m.scheduler_heartbeat,
        ),
        (
            "airflow_pool_open_slots",
            Gauge,
            "Open slots of a pool (pool.open_slots).",
            &p[..],
            &m.pool_open_slots,
        ),
        (
            "airflow_pool_queued_slots",
            Gauge,
            "Slots wanted by task instances waiting for a pool (pool.queued_slots).",
            &p[..],
            &m.pool_queued_slots,
        ),
        (
            "airflow_pool_running_slots",
            Gauge,
            "Slots of a pool in use (pool.running_slots).",
            &p[..],
            &m.pool_running_slots,
        ),
        (
            "airflow_executor_open_slots",
            Gauge,
            "Task instances the executor may still start (executor.open_slots).",
            &[][..],
            &m.executor_open_slots,
        ),
        (
            "airflow_executor_queued_tasks",
            Gauge,
            "Task instances ready and waiting to start (executor.queued_tasks).",
            &[][..],
            &m.executor_queued_tasks,
        ),
        (
            "airflow_executor_running_tasks",
            Gauge,
            "Task instances running (executor.running_tasks).",
            &[][..],
            &m.executor_running_tasks,
        ),
        (
            "airflow_dag_processing_import_errors",
            Gauge,
            "DAG files that failed to load at the last parse (dag_processing.import_errors).",
            &[][..],
            &m.dag_processing_import_errors,
        ),
        (
            "airflow_dag_processing_total_parse_time",
            Gauge,
            "Seconds the last parse of the DAG folder took (dag_processing.total_parse_time).",
            &[][..],
            &m.dag_processing_total_parse_time,
        ),
        (
            "airflow_dag_processing_dag_count",
            Gauge,
            "DAGs loaded at the last parse of the DAG folder.",
            &[][..],
            &m.dag_processing_dag_count,
        ),
    ] {
        family(s, name, kind, help, names, series);
    }
    let sm = &app.metrics.by_state_machine;
    let a = ["state_machine_arn"];
    for (name, kind, help, series) in [
        (
            "weft_states_ExecutionsStarted",
            Counter,
            "ExecutionsStarted per state machine.",
            &sm.started,
        ),
        (
            "weft_states_ExecutionsSucceeded",
            Counter,
            "ExecutionsSucceeded per state machine.",
            &sm.succeeded,
        ),
        (
            "weft_states_ExecutionsFailed",
            Counter,
            "ExecutionsFailed per state machine.",
            &sm.failed,
        ),
        (
            "weft_states_ExecutionsAborted",
            Counter,
            "ExecutionsAborted per state machine.",
            &sm.aborted,
        ),
        (
            "weft_states_ExecutionsTimedOut",
            Counter,
            "ExecutionsTimedOut per state machine.",
            &sm.timed_out,
        ),
        (
            "weft_states_ExecutionTime",
            Summary,
            "ExecutionTime per state machine, milliseconds.",
            &sm.time_ms,
        ),
    ] {
        family(s, name, kind, help, &a, series);
    }
    workers(s, app.dispatch.as_ref());
}

/// Each connected worker's slots, busy or idle, per queue it serves (issue 16's autoscaling
/// signal per worker; the totals are `weft_worker_slots`).
fn workers(s: &mut String, d: &dyn crate::dispatch::TaskDispatch) {
    let cap = max_series_from_env();
    let series = Series::new(cap);
    for w in d.workers() {
        let id = format!("{}@{}", w.worker_id, w.host);
        for q in &w.queues {
            series.set(&[&id, q, "busy"], f64::from(w.busy));
            series.set(&[&id, q, "idle"], f64::from(w.idle_slots()));
        }
    }
    family(
        s,
        "weft_worker_queue_slots",
        Kind::Gauge,
        "Slots of each connected worker, busy or idle, for each queue it serves.",
        &["worker", "queue", "state"],
        &series,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_machines_come_from_execution_arns() {
        assert_eq!(
            state_machine_arn("arn:aws:states:us-east-1:000000000000:execution:orders:run-1"),
            "arn:aws:states:us-east-1:000000000000:stateMachine:orders"
        );
        assert_eq!(
            state_machine_arn("arn:aws:states:us-east-1:1:express:orders:x:y"),
            "arn:aws:states:us-east-1:1:stateMachine:orders"
        );
        assert_eq!(state_machine_arn("garbage"), "unknown");
        assert_eq!(
            labels(&["a"], &["x\"y\\\n".into()]),
            "{a=\"x\\\"y\\\\\\n\"}"
        );
    }
}
