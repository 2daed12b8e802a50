//! Traces of executions and DAG runs as OpenTelemetry spans: which spans exist, their ids,
//! parents and attributes. An execution is one trace (its W3C trace id, see
//! [`crate::asl_tasks::trace_id`]) with a root span, a span per state visit and a child span per
//! sandboxed task attempt; a DAG run is one trace with a root span, a span per task instance and
//! a child span per try.
//!
//! Span ids derive from the trace id and the visit's replay-stable key (as the `traceparent` a
//! task receives does), so a replayed Standard execution names the same spans, and a child can
//! be exported before its parent (spans are recorded when they end). This module only builds
//! span records and hands them to the processor the binary installed ([`install`]); it knows
//! nothing of the exporter or the network. With nothing installed every function returns at
//! once.

use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks, SpanProcessor};
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

static PROCESSOR: OnceLock<Arc<dyn SpanProcessor>> = OnceLock::new();

/// Sends every span weft records to `processor` (a batching exporter). Returns false when one
/// was installed already (the first stays).
pub fn install(processor: Arc<dyn SpanProcessor>) -> bool {
    PROCESSOR.set(processor).is_ok()
}

/// Whether spans are recorded (a processor is installed).
#[inline]
pub fn enabled() -> bool {
    PROCESSOR.get().is_some()
}

/// Exports what is queued, waiting at most as long as the processor's own flush timeout.
pub fn flush() {
    if let Some(p) = PROCESSOR.get() {
        if let Err(e) = p.force_flush() {
            tracing::warn!("trace export: {e}");
        }
    }
}

/// The ids of one trace: the W3C trace id (32 hex digits) and the seed its span ids derive
/// from. The seed is the trace id itself unless several executions may share the trace (a
/// caller's `traceHeader`): then it is salted with the execution, so their spans stay apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceIds {
    pub trace: String,
    pub seed: String,
}

impl TraceIds {
    /// A trace of its own (a DAG run, a local run).
    pub fn new(trace: String) -> Self {
        TraceIds {
            seed: trace.clone(),
            trace,
        }
    }

    /// The trace of an execution (see [`crate::asl_tasks::trace_id`]).
    pub fn execution(arn: &str, trace_header: Option<&str>) -> Self {
        let trace = crate::asl_tasks::trace_id(arn, trace_header);
        if trace == crate::asl_tasks::trace_id(arn, None) {
            return Self::new(trace);
        }
        let seed = blake3::hash(format!("{trace}\0{arn}").as_bytes()).to_hex()[..32].to_string();
        TraceIds { trace, seed }
    }
}

fn scope() -> InstrumentationScope {
    static SCOPE: OnceLock<InstrumentationScope> = OnceLock::new();
    SCOPE
        .get_or_init(|| {
            InstrumentationScope::builder("weft")
                .with_version(env!("CARGO_PKG_VERSION"))
                .build()
        })
        .clone()
}

fn derive(trace: &str, parts: &[&str]) -> SpanId {
    let mut h = blake3::Hasher::new();
    h.update(trace.as_bytes());
    for p in parts {
        h.update(b"\0");
        h.update(p.as_bytes());
    }
    let b = h.finalize();
    let mut id = [0u8; 8];
    id.copy_from_slice(&b.as_bytes()[..8]);
    if id == [0; 8] {
        id[7] = 1; // the all-zero id is invalid
    }
    SpanId::from_bytes(id)
}

/// The root span of an execution or DAG run (`seed`: [`TraceIds::seed`]).
pub fn root_span_id(seed: &str) -> SpanId {
    derive(seed, &["root"])
}

/// The span of a state visit (its key: [`weft_asl::StateVisit::key`]).
pub fn state_span_id(seed: &str, key: &str) -> SpanId {
    derive(seed, &["state", key])
}

/// The span of one task attempt: the span id of the `traceparent` the task receives.
pub fn attempt_span_id(seed: &str, task_key: &str, attempt: u32) -> SpanId {
    derive(seed, &[task_key, &attempt.to_string()])
}

/// Where a state visit sits: the span of the enclosing Map/Parallel visit (or the root) and the
/// branch or iteration it ran in (`("weft.map.iteration", 3)`).
pub fn state_parent(seed: &str, key: &str) -> (SpanId, Option<(&'static str, i64)>) {
    let trace = seed;
    let scope = key.rsplit_once('/').map_or("", |(s, _)| s);
    let Some((parent, tail)) = scope.rsplit_once('@') else {
        return (root_span_id(trace), None);
    };
    let branch = tail.rsplit_once('/').and_then(|(_, b)| {
        let (kind, n) = b.split_at(1.min(b.len()));
        let n = n.parse().ok()?;
        match kind {
            "i" => Some(("weft.map.iteration", n)),
            "b" => Some(("weft.parallel.branch", n)),
            _ => None,
        }
    });
    (state_span_id(trace, parent), branch)
}

/// A trace id from 32 hex digits (`None` when malformed or all zero).
pub fn parse_trace_id(hex: &str) -> Option<TraceId> {
    if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    TraceId::from_hex(hex)
        .ok()
        .filter(|t| *t != TraceId::INVALID)
}

/// The parent span id a W3C `traceparent` names (`00-TRACE-SPAN-FLAGS`), if well formed.
pub fn traceparent_span(header: &str) -> Option<SpanId> {
    let parts: Vec<&str> = header.trim().split('-').collect();
    if parts.len() != 4 || parts[2].len() != 16 || !parts[2].bytes().all(|b| b.is_ascii_hexdigit())
    {
        return None;
    }
    SpanId::from_hex(parts[2])
        .ok()
        .filter(|s| *s != SpanId::INVALID)
}

/// The longest text a span attribute takes from what a guest or a caller chose (error names,
/// task ids); longer ones are cut at a character boundary.
pub const MAX_ATTRIBUTE_CHARS: usize = 256;

fn clip(s: &str) -> String {
    match s.char_indices().nth(MAX_ATTRIBUTE_CHARS) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// One span to record.
pub struct SpanRecord {
    pub trace: TraceId,
    pub id: SpanId,
    /// `SpanId::INVALID` for a root span.
    pub parent: SpanId,
    /// Whether the parent lives in another process (a caller's `traceparent`).
    pub remote_parent: bool,
    pub name: String,
    pub start: SystemTime,
    pub end: SystemTime,
    pub attributes: Vec<KeyValue>,
    /// The error name, when the work failed.
    pub error: Option<String>,
}

impl SpanRecord {
    /// Hands the span to the installed processor (nothing when none is installed).
    pub fn export(self) {
        let Some(p) = PROCESSOR.get() else {
            return;
        };
        let status = match self.error {
            Some(e) => Status::Error {
                description: Cow::Owned(clip(&e)),
            },
            None => Status::Ok,
        };
        p.on_end(SpanData {
            span_context: SpanContext::new(
                self.trace,
                self.id,
                TraceFlags::SAMPLED,
                false,
                TraceState::default(),
            ),
            parent_span_id: self.parent,
            parent_span_is_remote: self.remote_parent,
            span_kind: SpanKind::Internal,
            name: Cow::Owned(self.name),
            start_time: self.start,
            end_time: self.end.max(self.start),
            attributes: self.attributes,
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status,
            instrumentation_scope: scope(),
        });
    }
}

/// Milliseconds since the epoch as a time.
pub fn time_ms(ms: i64) -> SystemTime {
    SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64)
}

fn time_of(t: chrono::DateTime<chrono::Utc>) -> SystemTime {
    SystemTime::from(t)
}

/// The root span of an execution.
pub struct ExecutionSpan<'a> {
    pub ids: &'a TraceIds,
    /// The caller's `traceparent`/trace header, whose span becomes the root's parent.
    pub trace_header: Option<&'a str>,
    pub execution_arn: &'a str,
    pub state_machine: &'a str,
    pub start: SystemTime,
    pub end: SystemTime,
    /// `SUCCEEDED`, `FAILED`, `TIMED_OUT`, `ABORTED`.
    pub status: &'a str,
    pub error: Option<&'a str>,
}

/// Records the root span of an execution.
pub fn execution(e: &ExecutionSpan<'_>) {
    if !enabled() {
        return;
    }
    let Some(trace) = parse_trace_id(&e.ids.trace) else {
        return;
    };
    // the caller's span, when the execution joined the caller's trace
    let parent = e
        .trace_header
        .and_then(traceparent_span)
        .filter(|_| e.ids.seed != e.ids.trace);
    let mut attributes = vec![
        KeyValue::new("weft.execution.arn", e.execution_arn.to_string()),
        KeyValue::new("weft.state_machine", e.state_machine.to_string()),
        KeyValue::new("weft.execution.status", e.status.to_string()),
    ];
    if let Some(err) = e.error {
        attributes.push(KeyValue::new("error.type", clip(err)));
    }
    SpanRecord {
        trace,
        id: root_span_id(&e.ids.seed),
        parent: parent.unwrap_or(SpanId::INVALID),
        remote_parent: parent.is_some(),
        name: format!("execution {}", e.state_machine),
        start: e.start,
        end: e.end,
        attributes,
        error: e.error.map(str::to_string),
    }
    .export();
}

/// Records the span of a state visit. `start` overrides the visit's own start (a replay knows
/// when the state was first entered).
pub fn state_visit(ids: &TraceIds, v: &weft_asl::StateVisit<'_>, start: Option<SystemTime>) {
    if !enabled() || v.key.is_empty() {
        return;
    }
    let Some(tid) = parse_trace_id(&ids.trace) else {
        return;
    };
    let (parent, branch) = state_parent(&ids.seed, v.key);
    let mut attributes = vec![
        KeyValue::new("weft.state.name", v.name.to_string()),
        KeyValue::new("weft.state.type", v.kind),
        KeyValue::new("weft.state.key", v.key.to_string()),
    ];
    if let Some((k, n)) = branch {
        attributes.push(KeyValue::new(k, n));
    }
    if let Some(e) = v.error {
        attributes.push(KeyValue::new("error.type", clip(e)));
    }
    SpanRecord {
        trace: tid,
        id: state_span_id(&ids.seed, v.key),
        parent,
        remote_parent: false,
        name: format!("{} {}", v.kind, v.name),
        start: start.unwrap_or_else(|| time_of(v.start)),
        end: time_of(v.end),
        attributes,
        error: v.error.map(str::to_string),
    }
    .export();
}

/// A [`weft_asl::StateObserver`] that records every state visit of one execution.
pub struct StateSpans {
    pub ids: TraceIds,
}

impl weft_asl::StateObserver for StateSpans {
    fn state_visited(&self, v: &weft_asl::StateVisit<'_>) {
        state_visit(&self.ids, v, None);
    }
}

/// What one sandboxed attempt did, for its span.
pub struct AttemptSpan<'a> {
    /// 32 hex digits.
    pub trace: &'a str,
    /// The span id of the attempt and of its parent.
    pub id: SpanId,
    pub parent: SpanId,
    /// `STATE` (ASL) or `TASK_ID[i]` (DAG).
    pub task: &'a str,
    pub attempt: u32,
    pub plugin: &'a str,
    pub version: &'a str,
    pub digest: &'a str,
    pub outcome: &'a weft_sandbox::Outcome,
    /// When the attempt ended.
    pub end: SystemTime,
}

/// Records the span of one sandboxed attempt: plugin, digest, fuel used, peak memory, the
/// counts of the grant's decisions and the error name.
pub fn attempt(a: &AttemptSpan<'_>) {
    if !enabled() {
        return;
    }
    let Some(trace) = parse_trace_id(a.trace) else {
        return;
    };
    let o = a.outcome;
    let allowed = o
        .audit
        .iter()
        .filter(|r| r.decision == weft_sandbox::Effect::Allow)
        .count();
    let error = o.result.as_ref().err().map(|e| e.error.clone());
    let mut attributes = vec![
        KeyValue::new("weft.task", a.task.to_string()),
        KeyValue::new("weft.attempt", i64::from(a.attempt)),
        KeyValue::new("weft.plugin.name", a.plugin.to_string()),
        KeyValue::new("weft.plugin.version", a.version.to_string()),
        KeyValue::new("weft.plugin.digest", a.digest.to_string()),
        KeyValue::new("weft.fuel_used", o.fuel_used as i64),
        KeyValue::new("weft.memory.peak_bytes", o.peak_memory_bytes as i64),
        KeyValue::new("weft.grant.allowed", allowed as i64),
        KeyValue::new("weft.grant.denied", (o.audit.len() - allowed) as i64),
    ];
    if let Some(e) = &error {
        attributes.push(KeyValue::new("error.type", clip(e)));
    }
    SpanRecord {
        trace,
        id: a.id,
        parent: a.parent,
        remote_parent: false,
        name: format!("attempt {}", a.plugin),
        start: a.end.checked_sub(o.duration).unwrap_or(a.end),
        end: a.end,
        attributes,
        error,
    }
    .export();
}

/// The trace id of a DAG run: derived from its DAG and run ids (stable across scheduler
/// restarts), and from `salt` when the same run id may run again (`weft dag test`).
pub fn dag_trace_id(dag_id: &str, run_id: &str, salt: Option<&str>) -> String {
    let h =
        blake3::hash(format!("dag\0{dag_id}\0{run_id}\0{}", salt.unwrap_or_default()).as_bytes());
    h.to_hex()[..32].to_string()
}

/// The span of a DAG task instance (`TASK_ID` or `TASK_ID[i]`).
pub fn task_instance_span_id(trace: &str, ti: &str) -> SpanId {
    derive(trace, &["ti", ti])
}

/// The span of one try of a DAG task instance (the span id of its `traceparent`).
pub fn try_span_id(trace: &str, ti: &str, try_number: u32) -> SpanId {
    derive(trace, &["try", ti, &try_number.to_string()])
}

/// When each task instance's first try started, until its last try ends.
fn first_tries() -> &'static Mutex<HashMap<(String, String), SystemTime>> {
    static M: OnceLock<Mutex<HashMap<(String, String), SystemTime>>> = OnceLock::new();
    M.get_or_init(Default::default)
}

/// At most this many task instances are remembered between their first and last try (a sensor
/// that times out in the run machine never reports a last try).
const MAX_OPEN_TASK_INSTANCES: usize = 10_000;

/// Records a try's start; on its task instance's last try (`last`), records the task
/// instance's span from its first try to now.
pub fn task_instance_try(
    trace: &str,
    dag_id: &str,
    run_id: &str,
    ti: &str,
    started: SystemTime,
    last: Option<Option<&str>>,
) {
    if !enabled() {
        return;
    }
    let key = (trace.to_string(), ti.to_string());
    let first = {
        let mut m = first_tries().lock().unwrap_or_else(|e| e.into_inner());
        match last {
            None => {
                if m.len() >= MAX_OPEN_TASK_INSTANCES {
                    m.clear();
                }
                *m.entry(key).or_insert(started)
            }
            Some(_) => m.remove(&key).unwrap_or(started),
        }
    };
    let Some(error) = last else {
        return;
    };
    let Some(tid) = parse_trace_id(trace) else {
        return;
    };
    let mut attributes = vec![
        KeyValue::new("weft.dag.id", dag_id.to_string()),
        KeyValue::new("weft.dag.run_id", run_id.to_string()),
        KeyValue::new("weft.task", ti.to_string()),
    ];
    if let Some(e) = error {
        attributes.push(KeyValue::new("error.type", clip(e)));
    }
    SpanRecord {
        trace: tid,
        id: task_instance_span_id(trace, ti),
        parent: root_span_id(trace),
        remote_parent: false,
        name: format!("task {ti}"),
        start: first,
        end: SystemTime::now(),
        attributes,
        error: error.map(str::to_string),
    }
    .export();
}

/// The end of a DAG run, for its root span.
pub struct DagRunSpan<'a> {
    /// [`dag_trace_id`].
    pub trace: &'a str,
    pub dag_id: &'a str,
    pub run_id: &'a str,
    pub start: SystemTime,
    pub end: SystemTime,
    /// `success` or `failed`.
    pub state: &'a str,
}

/// Records the root span of a DAG run that ended.
pub fn dag_run(r: &DagRunSpan<'_>) {
    if !enabled() {
        return;
    }
    let (trace, dag_id, run_id, state) = (r.trace, r.dag_id, r.run_id, r.state);
    let (start, end) = (r.start, r.end);
    let Some(tid) = parse_trace_id(trace) else {
        return;
    };
    let failed = state != "success";
    let mut attributes = vec![
        KeyValue::new("weft.dag.id", dag_id.to_string()),
        KeyValue::new("weft.dag.run_id", run_id.to_string()),
        KeyValue::new("weft.dag.state", state.to_string()),
    ];
    if failed {
        attributes.push(KeyValue::new("error.type", state.to_string()));
    }
    SpanRecord {
        trace: tid,
        id: root_span_id(trace),
        parent: SpanId::INVALID,
        remote_parent: false,
        name: format!("dag_run {dag_id}"),
        start,
        end,
        attributes,
        error: failed.then(|| state.to_string()),
    }
    .export();
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "0af7651916cd43dd8448eb211c80319c";

    #[test]
    fn a_state_inside_a_map_is_the_child_of_the_map_visit() {
        assert_eq!(state_parent(T, "/0.1"), (root_span_id(T), None));
        assert_eq!(
            state_parent(T, "/2.1@1/i3/0.1"),
            (state_span_id(T, "/2.1"), Some(("weft.map.iteration", 3)))
        );
        assert_eq!(
            state_parent(T, "/2.1@2/b0/1.1@1/i7/0.2"),
            (
                state_span_id(T, "/2.1@2/b0/1.1"),
                Some(("weft.map.iteration", 7))
            )
        );
        assert_eq!(
            state_parent(T, "/2.1@2/b1/0.1"),
            (state_span_id(T, "/2.1"), Some(("weft.parallel.branch", 1)))
        );
    }

    #[test]
    fn ids_are_stable_and_distinct() {
        assert_eq!(state_span_id(T, "/0.1"), state_span_id(T, "/0.1"));
        assert_ne!(state_span_id(T, "/0.1"), state_span_id(T, "/0.2"));
        assert_ne!(attempt_span_id(T, "/0.1", 1), attempt_span_id(T, "/0.1", 2));
        assert_ne!(root_span_id(T), state_span_id(T, ""));
    }

    #[test]
    fn executions_that_join_one_callers_trace_keep_their_spans_apart() {
        let header = Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        let a = TraceIds::execution("arn:a", header);
        let b = TraceIds::execution("arn:b", header);
        assert_eq!(a.trace, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(a.trace, b.trace);
        assert_ne!(root_span_id(&a.seed), root_span_id(&b.seed));
        assert_ne!(
            state_span_id(&a.seed, "/0.1"),
            state_span_id(&b.seed, "/0.1")
        );
        // without a header, the trace is the execution's own
        let own = TraceIds::execution("arn:a", None);
        assert_eq!(own.seed, own.trace);
        assert_eq!(own, TraceIds::execution("arn:a", Some("not a traceparent")));
    }

    #[test]
    fn long_attributes_from_guests_are_cut() {
        let long = "É".repeat(10_000);
        let c = clip(&long);
        assert_eq!(c.chars().count(), MAX_ATTRIBUTE_CHARS + 1);
        assert_eq!(clip("States.TaskFailed"), "States.TaskFailed");
    }

    #[test]
    fn malformed_ids_are_refused() {
        assert!(parse_trace_id(T).is_some());
        assert!(parse_trace_id("00000000000000000000000000000000").is_none());
        assert!(parse_trace_id("xyz").is_none());
        assert!(parse_trace_id(&"g".repeat(32)).is_none());
        assert_eq!(
            traceparent_span("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
            SpanId::from_hex("b7ad6b7169203331").ok()
        );
        assert_eq!(traceparent_span("00-abc-0000000000000000-01"), None);
        assert_eq!(traceparent_span("garbage"), None);
    }
}
