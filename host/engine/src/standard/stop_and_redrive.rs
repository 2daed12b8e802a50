//! What a caller does to a Standard execution from outside its run: StopExecution
//! ([`stop_execution`]: the run unwinds, the record says ABORTED, the history ends with
//! `ExecutionAborted`) and RedriveExecution ([`redrive_execution`]: a FAILED, TIMED_OUT or
//! ABORTED execution continues from where it failed).

use super::records::*;
use super::runner::event_json;
use super::runtime::read_record;
use super::{Runtime, RuntimeError};
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// Stops a RUNNING execution `e`: its run unwinds at its next state, wait or task boundary and
/// records nothing more; unless it ended meanwhile, its record says ABORTED with `error` and
/// `cause`, its history ends with `ExecutionAborted`, its task tokens are forgotten and a
/// `.sync` parent is answered. Returns the stop time.
pub fn stop_execution(
    rt: &Arc<Runtime>,
    e: &ExecutionRecord,
    error: Option<&str>,
    cause: Option<&str>,
) -> Result<i64, RuntimeError> {
    // the run unwinds at its next state, wait or task boundary and records nothing more
    if let Some(ctl) = rt.active_control(&e.arn) {
        ctl.stop();
    }
    let now = now_ms();
    let mut changed = false;
    rt.executions.update_execution(&e.arn, &mut |old| {
        let old = old?;
        let mut r: ExecutionRecord = serde_json::from_slice(old).ok()?;
        changed = false;
        if r.status == "RUNNING" {
            r.status = "ABORTED".into();
            r.stop_ms = Some(now);
            r.error = error.map(str::to_string);
            r.cause = cause.map(str::to_string);
            changed = true;
        }
        serde_json::to_vec(&r).ok()
    })?;
    if changed {
        // the node that runs it (this one or another) stops its run
        rt.wake(&e.arn);
        append_final_event(rt, &e.arn, now, "ExecutionAborted", error, cause)?;
        rt.forget_tokens_of(&e.arn);
        rt.observer
            .execution_finished(&e.arn, "ABORTED", now - e.start_ms);
        super::traces::execution_ended(e, "ABORTED", error, now);
        rt.observer.status_changed(&e.arn, "ABORTED");
        // a `.sync` parent learns that its child was aborted
        if let Some((parent, key)) = &e.parent {
            if let Ok(Some(rec)) = read_record(rt, &e.arn) {
                super::runtime::answer_parent(rt, &rec, parent, key);
            }
        }
    }
    Ok(now)
}

/// Redrives execution `e`: a FAILED, TIMED_OUT or ABORTED Standard execution continues from
/// where it failed. Its journal forgets the attempts of every task that never succeeded; the
/// replay then re-runs exactly those, with the same definition and plugin digests. Returns the
/// redrive time.
pub fn redrive_execution(rt: &Arc<Runtime>, e: &ExecutionRecord) -> Result<i64, RuntimeError> {
    if !matches!(e.status.as_str(), "FAILED" | "TIMED_OUT" | "ABORTED") {
        return Err(RuntimeError::new(
            "ExecutionNotRedrivable",
            format!(
                "Execution is not redrivable: '{}' has status {} (only FAILED, TIMED_OUT and ABORTED executions are)",
                e.arn, e.status
            ),
        ));
    }
    if e.arn.contains(":express:") {
        return Err(RuntimeError::new(
            "ExecutionNotRedrivable",
            "Express executions cannot be redriven",
        ));
    }
    let journal = crate::durable::Journal::on(&rt.journal, &e.arn);
    let recorded: Vec<_> = super::runtime::recorded_entries(rt, &e.arn)?
        .into_iter()
        .collect();
    journal
        .forget_failures(e.stop_ms.unwrap_or_else(now_ms), &recorded)
        .map_err(|x| RuntimeError::internal(x.to_string()))?;
    let now = now_ms();
    let mut redriven = false;
    rt.executions.update_execution(&e.arn, &mut |old| {
        let old = old?;
        let mut r: ExecutionRecord = serde_json::from_slice(old).ok()?;
        redriven = false;
        if matches!(r.status.as_str(), "FAILED" | "TIMED_OUT" | "ABORTED") {
            r.status = "RUNNING".into();
            r.stop_ms = None;
            r.error = None;
            r.cause = None;
            r.output = None;
            r.redrive_count += 1;
            r.redrive_ms = Some(now);
            redriven = true;
        }
        serde_json::to_vec(&r).ok()
    })?;
    if !redriven {
        return Err(RuntimeError::new(
            "ExecutionNotRedrivable",
            format!("Execution is not redrivable: '{}'", e.arn),
        ));
    }
    rt.pending.apply()?;
    let last = rt.history.last_event_id(&e.arn)?;
    let ev = weft_asl::HistoryEvent {
        id: last + 1,
        previous_event_id: last,
        timestamp_ms: now,
        event_type: "ExecutionRedriven",
        details: json!({"redriveCount": e.redrive_count + 1}),
    };
    rt.history
        .put_event(&e.arn, last + 1, event_json(&ev).to_string().as_bytes())?;
    rt.observer.history_event(&e.arn, &ev);
    rt.observer.status_changed(&e.arn, "RUNNING");
    rt.commit
        .commit()
        .map_err(|x| RuntimeError::internal(x.to_string()))?;
    rt.schedule(&e.arn);
    Ok(now)
}

/// Appends the event `ty` that ends an execution's history (with `error` and `cause` as its
/// details), for the web UI and the execution log too.
fn append_final_event(
    rt: &Runtime,
    arn: &str,
    now: i64,
    ty: &'static str,
    error: Option<&str>,
    cause: Option<&str>,
) -> Result<(), RuntimeError> {
    rt.pending.apply()?;
    let last = rt.history.last_event_id(arn)?;
    let mut details = Map::new();
    if let Some(x) = error {
        details.insert("error".into(), json!(x));
    }
    if let Some(x) = cause {
        details.insert("cause".into(), json!(x));
    }
    let ev = weft_asl::HistoryEvent {
        id: last + 1,
        previous_event_id: last,
        timestamp_ms: now,
        event_type: ty,
        details: Value::Object(details),
    };
    rt.history
        .put_event(arn, last + 1, event_json(&ev).to_string().as_bytes())?;
    rt.observer.history_event(arn, &ev);
    if let Some(log) = super::execution_log::ExecutionLog::of_execution(rt, arn) {
        log.write(rt, arn, std::slice::from_ref(&ev));
    }
    Ok(())
}
