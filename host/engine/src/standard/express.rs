//! Express executions: in memory, at-least-once, at most 5 minutes. StartSyncExecution runs one
//! ([`run`]) and answers with its result; StartExecution on an EXPRESS state machine runs one
//! in the background ([`start_async`]). Nothing is journaled; the history goes to the
//! execution log as the state machine's `loggingConfiguration` asks (see
//! [`super::execution_log`]) when the execution ends.

use super::execution_log::{level_of, ExecutionLog, Level};
use super::records::*;
use super::runner::ExecutionTaskRunner;
use super::runtime::execution_role;
use super::Runtime;
use crate::buckets::BucketAccess;
use serde_json::{json, Value};
use std::sync::Arc;
use weft_asl::{HistoryEvent, HistorySink, Hooks, RunOptions, StateError, SystemClock};

/// Step Functions' limit on an Express execution's duration.
pub const MAX_SECONDS: u64 = 300;

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

fn write_log(rt: &Runtime, smr: &StateMachineRecord, exec_arn: &str, events: &[HistoryEvent]) {
    if let Some(log) = ExecutionLog::of(smr) {
        log.write(rt, exec_arn, events);
    }
}

/// Runs an Express execution to its end on this (blocking) thread.
pub fn run(
    rt: &Arc<Runtime>,
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
    let runner = ExecutionTaskRunner {
        pins: Default::default(),
        rt: rt.clone(),
        execution_role: execution_role(rt, &smr.role_arn)?,
        ctl: None,
        trace_header: None,
        role_arn: smr.role_arn.clone(),
        execution_arn: exec_arn.to_string(),
        static_roles: super::definition_roles::static_roles(&smr.definition),
        resource_maps: super::resource_maps::maps_for(rt, &smr.name),
    };
    let opts = RunOptions {
        execution_name: name.to_string(),
        state_machine_name: smr.name.clone(),
        role_arn: smr.role_arn.clone(),
        execution_arn: Some(exec_arn.to_string()),
        ..RunOptions::default()
    };
    let reader = BucketAccess::new(
        rt.buckets.clone(),
        runner.execution_role.clone(),
        rt.base_dir.clone(),
    );
    let (level, _) = level_of(smr.logging_configuration.as_ref());
    let mut sink = LogSink { events: Vec::new() };
    let ids = crate::telemetry::TraceIds::execution(exec_arn, None);
    let _span =
        tracing::info_span!("execution", execution = %exec_arn, trace_id = %ids.trace).entered();
    let spans =
        crate::telemetry::enabled().then(|| crate::telemetry::StateSpans { ids: ids.clone() });
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
    write_log(rt, smr, exec_arn, &sink.events);
    let status = if r.is_ok() { "SUCCEEDED" } else { "FAILED" };
    tracing::info!(status, "execution ended");
    crate::telemetry::execution(&crate::telemetry::ExecutionSpan {
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
    rt: &Arc<Runtime>,
    smr: StateMachineRecord,
    mut sm: weft_asl::StateMachine,
    name: String,
    input: Value,
    mocks: Option<weft_asl::mock::TestCase>,
) -> Value {
    let arn = express_arn(&smr.name, &name);
    let start = now_ms();
    let (rt2, arn2) = (rt.clone(), arn.clone());
    tokio::task::spawn_blocking(move || {
        let r = run(&rt2, &smr, &mut sm, &arn2, &name, input, mocks);
        let status = if r.is_ok() { "SUCCEEDED" } else { "FAILED" };
        rt2.observer
            .execution_finished(&arn2, status, now_ms() - start);
    });
    rt.observer.execution_started(&arn);
    json!({"executionArn": arn, "startDate": ts(start)})
}
