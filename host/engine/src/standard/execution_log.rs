//! The execution log: what a state machine's `loggingConfiguration` keeps of its executions'
//! history, as Step Functions sends it to CloudWatch Logs: `OFF` nothing, `FATAL` the
//! execution's failure, `ERROR` every error event, `ALL` every event;
//! `includeExecutionData: false` strips inputs and outputs. Records go to the runtime's
//! append-only log ordered by time ([`crate::persistence::AppendLog`]); Standard executions
//! write each event as it is recorded, Express ones when they end.

use super::records::StateMachineRecord;
use super::runner::event_json;
use super::Runtime;
use serde_json::{json, Value};
use weft_asl::HistoryEvent;

/// What to log, from a `loggingConfiguration`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Off,
    Fatal,
    Error,
    All,
}

pub(super) fn level_of(cfg: Option<&Value>) -> (Level, bool) {
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
pub struct ExecutionLog {
    level: Level,
    data: bool,
    state_machine_arn: String,
}

impl ExecutionLog {
    /// The log of `smr`'s executions (`None`: level `OFF` or no configuration).
    pub fn of(smr: &StateMachineRecord) -> Option<Self> {
        let (level, data) = level_of(smr.logging_configuration.as_ref());
        (level != Level::Off).then(|| ExecutionLog {
            level,
            data,
            state_machine_arn: smr.arn.clone(),
        })
    }

    /// The log of a (Standard) execution's state machine, by the execution's ARN
    /// (`arn:aws:states:REGION:ACCOUNT:execution:STATE_MACHINE:NAME`).
    pub fn of_execution(rt: &Runtime, exec_arn: &str) -> Option<Self> {
        /// The two fields read (the definition is skipped, not decoded).
        #[derive(serde::Deserialize)]
        struct Logging {
            arn: String,
            logging_configuration: Option<Value>,
        }
        let sm = exec_arn.split(':').nth(6)?;
        let v = rt.catalog.state_machine(sm).ok().flatten()?;
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
    pub fn write(&self, rt: &Runtime, exec_arn: &str, events: &[HistoryEvent]) {
        let records: Vec<(i64, Vec<u8>)> = events
            .iter()
            .filter_map(|ev| self.record(exec_arn, ev))
            .collect();
        if records.is_empty() {
            return;
        }
        if let Err(e) = rt.execution_log.append(&records) {
            tracing::error!(execution = %exec_arn, "execution log: {e}");
        }
    }
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
