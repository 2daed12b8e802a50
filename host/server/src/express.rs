//! Express executions: in memory, at-least-once, at most 5 minutes. StartSyncExecution runs one
//! and answers with its result; StartExecution on an EXPRESS state machine runs one in the
//! background. Nothing is journaled; the history goes to the execution log according to the
//! state machine's `loggingConfiguration` as Step Functions sends it to CloudWatch Logs:
//! `OFF` nothing, `FATAL` the execution's failure, `ERROR` every error event, `ALL` every
//! event; `includeExecutionData: false` strips inputs and outputs. Standard executions log the
//! same way, each event as it is recorded ([`ExecutionLog`], used by the durable history). The
//! log is an append-only log ordered by time ([`weft_engine::persistence::AppendLog`]), served at `GET /v1/logs`
//! (also `GET /v1/express/logs`).

use crate::records::*;
use crate::runner::{event_json, ServerTaskRunner};
use crate::runtime::execution_role;
use crate::AppState;
use serde_json::{json, Value};
use std::sync::Arc;
use weft_asl::{HistoryEvent, HistorySink, Hooks, RunOptions, StateError, SystemClock};
use weft_engine::buckets::BucketAccess;

/// Step Functions' limit on an Express execution's duration.
pub const MAX_SECONDS: u64 = 300;

/// What to log, from a `loggingConfiguration`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Off,
    Fatal,
    Error,
    All,
}

fn level_of(cfg: Option<&Value>) -> (Level, bool) {
    let level = match cfg.and_then(|c| c.get("level")).and_then(Value::as_str) {
        Some("ALL") => Level::All,
        Some("ERROR") => Level::Error,
        Some("FATAL") => Level::Fatal,
        _ => Level::Off,
    };
    let data = cfg
        .and_then(|c| c.get("includeExecutionData"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    (level, data)
}

fn is_error(ty: &str) -> bool {
    ty.ends_with("Failed") || ty.ends_with("TimedOut") || ty.ends_with("Aborted")
}

fn is_fatal(ty: &str) -> bool {
    matches!(
        ty,
        "ExecutionFailed" | "ExecutionTimedOut" | "ExecutionAborted"
    )
}

/// Buffers a run's events; they are logged when the run ends (an Express execution that
/// never ends leaves no partial log, as its at-least-once retry would duplicate it).
struct LogSink {
    events: Vec<HistoryEvent>,
}

impl HistorySink for LogSink {
    fn event(&mut self, ev: HistoryEvent) {
        self.events.push(ev);
    }
}

fn strip_data(v: &mut Value) {
    if let Some(m) = v.as_object_mut() {
        for (_, d) in m.iter_mut() {
            if let Some(dm) = d.as_object_mut() {
                for k in ["input", "output", "parameters"] {
                    dm.remove(k);
                }
            }
        }
    }
}

/// What one state machine's `loggingConfiguration` sends to the execution log.
#[derive(Debug, Clone)]
pub(crate) struct ExecutionLog {
    level: Level,
    data: bool,
    state_machine_arn: String,
}

impl ExecutionLog {
    /// The log of `smr`'s executions (`None`: level `OFF` or no configuration).
    pub(crate) fn of(smr: &StateMachineRecord) -> Option<Self> {
        let (level, data) = level_of(smr.logging_configuration.as_ref());
        (level != Level::Off).then(|| ExecutionLog {
            level,
            data,
            state_machine_arn: smr.arn.clone(),
        })
    }

    /// The log of a (Standard) execution's state machine, by the execution's ARN
    /// (`arn:aws:states:REGION:ACCOUNT:execution:STATE_MACHINE:NAME`).
    pub(crate) fn of_execution(app: &AppState, exec_arn: &str) -> Option<Self> {
        /// The two fields read (the definition is skipped, not decoded).
        #[derive(serde::Deserialize)]
        struct Logging {
            arn: String,
            logging_configuration: Option<Value>,
        }
        let sm = exec_arn.split(':').nth(6)?;
        let v = app.catalog.state_machine(sm).ok().flatten()?;
        let l: Logging = serde_json::from_slice(&v).ok()?;
        let (level, data) = level_of(l.logging_configuration.as_ref());
        (level != Level::Off).then_some(ExecutionLog {
            level,
            data,
            state_machine_arn: l.arn,
        })
    }

    fn keeps(&self, ty: &str) -> bool {
        match self.level {
            Level::All => true,
            Level::Error => is_error(ty),
            Level::Fatal => is_fatal(ty),
            Level::Off => false,
        }
    }

    /// The log record of `ev` (its time, its JSON), when the level keeps it.
    fn record(&self, exec_arn: &str, ev: &HistoryEvent) -> Option<(i64, Vec<u8>)> {
        if !self.keeps(ev.event_type) {
            return None;
        }
        let mut v = event_json(ev);
        if !self.data {
            strip_data(&mut v);
        }
        let rec = json!({
            "execution_arn": exec_arn,
            "state_machine_arn": self.state_machine_arn,
            "event": v,
        });
        Some((ev.timestamp_ms, rec.to_string().into_bytes()))
    }

    /// Appends the events the level keeps to the execution log.
    pub(crate) fn write(&self, app: &AppState, exec_arn: &str, events: &[HistoryEvent]) {
        let records: Vec<(i64, Vec<u8>)> = events
            .iter()
            .filter_map(|ev| self.record(exec_arn, ev))
            .collect();
        if records.is_empty() {
            return;
        }
        if let Err(e) = app.execution_log.append(&records) {
            tracing::error!(execution = %exec_arn, "execution log: {e}");
        }
    }
}

fn write_log(app: &AppState, smr: &StateMachineRecord, exec_arn: &str, events: &[HistoryEvent]) {
    if let Some(log) = ExecutionLog::of(smr) {
        log.write(app, exec_arn, events);
    }
}

/// Runs an Express execution to its end on this (blocking) thread.
pub fn run(
    app: &Arc<AppState>,
    smr: &StateMachineRecord,
    sm: &mut weft_asl::StateMachine,
    exec_arn: &str,
    name: &str,
    input: Value,
    mocks: Option<weft_asl::mock::TestCase>,
) -> Result<Value, StateError> {
    sm.timeout_seconds = Some(
        sm.timeout_seconds
            .map_or(MAX_SECONDS, |t| t.min(MAX_SECONDS)),
    );
    let runner = ServerTaskRunner {
        pins: Default::default(),
        app: app.clone(),
        execution_role: execution_role(app, &smr.role_arn)?,
        ctl: None,
        trace_header: None,
        role_arn: smr.role_arn.clone(),
        execution_arn: exec_arn.to_string(),
        static_roles: crate::access::static_roles(&smr.definition),
        resource_maps: crate::sm_resource_map::maps_for(app, &smr.name),
    };
    let opts = RunOptions {
        execution_name: name.to_string(),
        state_machine_name: smr.name.clone(),
        role_arn: smr.role_arn.clone(),
        execution_arn: Some(exec_arn.to_string()),
        ..RunOptions::default()
    };
    let reader = BucketAccess::new(
        app.buckets.clone(),
        runner.execution_role.clone(),
        app.base_dir.clone(),
    );
    let (level, _) = level_of(smr.logging_configuration.as_ref());
    let mut sink = LogSink { events: Vec::new() };
    let ids = weft_engine::telemetry::TraceIds::execution(exec_arn, None);
    let _span =
        tracing::info_span!("execution", execution = %exec_arn, trace_id = %ids.trace).entered();
    let spans = weft_engine::telemetry::enabled()
        .then(|| weft_engine::telemetry::StateSpans { ids: ids.clone() });
    let hooks = Hooks {
        history: (level != Level::Off).then_some(&mut sink as &mut dyn HistorySink),
        item_reader: Some(&reader),
        result_writer: Some(&reader),
        control: None,
        observer: spans.as_ref().map(|s| s as &dyn weft_asl::StateObserver),
    };
    let mocked = mocks.map(|case| weft_asl::mock::MockTaskRunner::new(&runner, case));
    let tasks: &dyn weft_asl::TaskRunner = match &mocked {
        Some(m) => m,
        None => &runner,
    };
    let started = std::time::SystemTime::now();
    let r = weft_asl::run_express(sm, input, &opts, tasks, &SystemClock, hooks);
    write_log(app, smr, exec_arn, &sink.events);
    let status = if r.is_ok() { "SUCCEEDED" } else { "FAILED" };
    tracing::info!(status, "execution ended");
    weft_engine::telemetry::execution(&weft_engine::telemetry::ExecutionSpan {
        ids: &ids,
        trace_header: None,
        execution_arn: exec_arn,
        state_machine: &smr.name,
        start: started,
        end: std::time::SystemTime::now(),
        status,
        error: r.as_ref().err().map(|e| e.error.as_str()),
    });
    r
}

/// StartExecution on an EXPRESS state machine: runs in the background, answers at once.
pub fn start_async(
    app: &Arc<AppState>,
    smr: StateMachineRecord,
    mut sm: weft_asl::StateMachine,
    name: String,
    input: Value,
    mocks: Option<weft_asl::mock::TestCase>,
) -> Value {
    let arn = express_arn(&smr.name, &name);
    let start = now_ms();
    let (app2, arn2) = (app.clone(), arn.clone());
    tokio::task::spawn_blocking(move || {
        let r = run(&app2, &smr, &mut sm, &arn2, &name, input, mocks);
        let status = if r.is_ok() { "SUCCEEDED" } else { "FAILED" };
        crate::metrics::execution_finished(&app2, &arn2, status, now_ms() - start);
    });
    crate::metrics::execution_started(app, &arn);
    json!({"executionArn": arn, "startDate": ts(start)})
}

/// `GET /v1/logs?stateMachine=NAME&execution=ARN&limit=N` (also `/v1/express/logs`): the
/// newest execution log records (Express and Standard executions whose state machine has a
/// `loggingConfiguration`) of the executions whose history the caller may read
/// (`states:GetExecutionHistory` on each execution ARN).
pub async fn logs_endpoint(
    axum::extract::State(app): axum::extract::State<Arc<AppState>>,
    req: crate::v1_access::V1Request,
) -> axum::response::Response {
    let q = req.query();
    crate::rest::respond(&app, &req, "states:GetExecutionHistory", |ctx| {
        let limit = crate::rest::num_param(q, "limit")?
            .unwrap_or(100)
            .clamp(1, 10_000) as usize;
        let sm = crate::rest::sm_name_param(q, "stateMachine")?.map(|n| sm_arn(&n));
        let execution = crate::live::query_param(q, "execution").filter(|e| !e.is_empty());
        ctx.filtered(execution.as_deref().or(sm.as_deref()).unwrap_or("*"));
        let mut out = Vec::new();
        let mut bad = None;
        app.execution_log.newest_first(&mut |v| {
            let rec: Value = match serde_json::from_slice(v) {
                Ok(r) => r,
                Err(e) => {
                    bad = Some(e);
                    return false;
                }
            };
            if sm.as_ref().is_some_and(|s| rec["state_machine_arn"] != *s) {
                return true;
            }
            if execution
                .as_ref()
                .is_some_and(|e| rec["execution_arn"] != *e)
            {
                return true;
            }
            let exec = rec["execution_arn"].as_str().unwrap_or("");
            if !ctx.may("states:GetExecutionHistory", exec) {
                return true;
            }
            out.push(rec);
            out.len() < limit
        })?;
        if let Some(e) = bad {
            return Err(e.into());
        }
        out.reverse();
        Ok(json!({ "records": out }))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels() {
        assert_eq!(level_of(None), (Level::Off, false));
        let c = json!({"level": "ERROR", "includeExecutionData": true});
        assert_eq!(level_of(Some(&c)), (Level::Error, true));
        assert!(
            is_error("TaskFailed") && is_error("ExecutionTimedOut") && !is_error("TaskSucceeded")
        );
        assert!(is_fatal("ExecutionFailed") && !is_fatal("TaskFailed"));
    }
}
