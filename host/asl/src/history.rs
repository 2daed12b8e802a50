//! Execution history in Step Functions' event vocabulary (`ExecutionStarted`,
//! `PassStateEntered`, `TaskScheduled`, `MapIterationStarted`, ...): the event type, the
//! sink trait a driver writes to, and the JSON shape of `GetExecutionHistory`.

use serde_json::{Map, Value};

/// One history event.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEvent {
    /// 1-based id, unique in the execution.
    pub id: u64,
    /// The id of the event this one follows causally (0 for the first).
    pub previous_event_id: u64,
    /// Epoch milliseconds.
    pub timestamp_ms: i64,
    /// Event type (`PassStateEntered`, ...).
    pub event_type: &'static str,
    /// The details object (`{"name": .., "input": ..}` ...), keyed in JSON by
    /// [`details_key`].
    pub details: Value,
}

/// The name of the details member for an event type, as in `GetExecutionHistory`
/// (`PassStateEntered` -> `stateEnteredEventDetails`).
pub fn details_key(event_type: &str) -> String {
    for suffix in ["StateEntered", "StateExited"] {
        if event_type.ends_with(suffix) && event_type != "MapRunStarted" {
            let base = if suffix == "StateEntered" {
                "stateEntered"
            } else {
                "stateExited"
            };
            return format!("{base}EventDetails");
        }
    }
    let mut s = String::with_capacity(event_type.len() + 12);
    let mut chars = event_type.chars();
    if let Some(c) = chars.next() {
        s.push(c.to_ascii_lowercase());
    }
    s.extend(chars);
    s.push_str("EventDetails");
    s
}

impl HistoryEvent {
    /// The event as `GetExecutionHistory` prints it.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert(
            "timestamp".into(),
            Value::String(crate::env::format_time(self.timestamp_ms)),
        );
        m.insert("type".into(), Value::String(self.event_type.to_string()));
        m.insert("id".into(), Value::from(self.id));
        m.insert(
            "previousEventId".into(),
            Value::from(self.previous_event_id),
        );
        if !self.details.is_null() {
            m.insert(details_key(self.event_type), self.details.clone());
        }
        Value::Object(m)
    }
}

/// Receives history events as they happen.
pub trait HistorySink: Send {
    /// Records one event.
    fn event(&mut self, ev: HistoryEvent);
}

impl HistorySink for Vec<HistoryEvent> {
    fn event(&mut self, ev: HistoryEvent) {
        self.push(ev);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert_eq!(details_key("PassStateEntered"), "stateEnteredEventDetails");
        assert_eq!(details_key("TaskScheduled"), "taskScheduledEventDetails");
        assert_eq!(
            details_key("MapIterationStarted"),
            "mapIterationStartedEventDetails"
        );
    }
}
