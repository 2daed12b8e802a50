//! Standard executions as traces (see `crate::telemetry`): the state observer of a
//! Standard run, which knows from the run's history which state visits an earlier run already
//! reported, so a replay after a restart or a suspension does not export them twice, and the
//! execution's root span when it ends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use weft_asl::{StateObserver, StateVisit};

/// The events a replay recognised as already recorded: replay event id -> the recorded event's
/// time (epoch ms). Filled by [`super::runner::DurableHistory`] as the replay goes.
#[derive(Default)]
pub struct Replayed {
    seen: Mutex<HashMap<u64, i64>>,
}

impl Replayed {
    pub fn record(&self, replay_id: u64, recorded_ms: i64) {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(replay_id, recorded_ms);
    }

    fn get(&self, replay_id: u64) -> Option<i64> {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&replay_id)
            .copied()
    }
}

/// Reports the state visits of one run of a Standard execution.
pub struct DurableSpans {
    pub ids: crate::telemetry::TraceIds,
    pub replayed: Arc<Replayed>,
}

impl StateObserver for DurableSpans {
    fn state_visited(&self, v: &StateVisit<'_>) {
        // a visit whose last event was recorded by an earlier run was reported by that run
        if v.last_event != 0 && self.replayed.get(v.last_event).is_some() {
            return;
        }
        // a visit that began in an earlier run began when that run entered it
        let start = self
            .replayed
            .get(v.entered_event)
            .map(crate::telemetry::time_ms);
        crate::telemetry::state_visit(&self.ids, v, start);
    }
}

/// The state observer of a run, when traces are exported.
pub fn durable_spans(
    arn: &str,
    trace_header: Option<&str>,
    replayed: Arc<Replayed>,
) -> Option<DurableSpans> {
    crate::telemetry::enabled().then(|| DurableSpans {
        ids: crate::telemetry::TraceIds::execution(arn, trace_header),
        replayed,
    })
}

/// Records the root span of an execution that ended with `status`.
pub fn execution_ended(
    rec: &super::records::ExecutionRecord,
    status: &str,
    error: Option<&str>,
    stop_ms: i64,
) {
    let ids = crate::telemetry::TraceIds::execution(&rec.arn, rec.trace_header.as_deref());
    tracing::info!(execution = %rec.arn, trace_id = %ids.trace, status, "execution ended");
    if !crate::telemetry::enabled() {
        return;
    }
    crate::telemetry::execution(&crate::telemetry::ExecutionSpan {
        ids: &ids,
        trace_header: rec.trace_header.as_deref(),
        execution_arn: &rec.arn,
        state_machine: &rec.state_machine_name,
        start: crate::telemetry::time_ms(rec.start_ms),
        end: crate::telemetry::time_ms(stop_ms),
        status,
        error,
    });
}
