//! The evaluation environment of one state: its input, the context object `$$` (materialized
//! lazily, so the hot path never builds it) and the workflow variables with AWS's scoping
//! (Map/Parallel iterations read the outer scope and write their own).

use crate::error::{names, StateError};
use crate::jsonpath::{JsonPath, Root};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

/// Workflow variables visible to a state.
#[derive(Debug, Clone, Default)]
pub struct Variables {
    outer: Option<Arc<Variables>>,
    local: HashMap<String, Value>,
}

impl Variables {
    /// An empty top-level scope.
    pub fn new() -> Self {
        Self::default()
    }

    /// A child scope for a Map iteration or Parallel branch: reads `outer`, writes locally.
    pub fn child(outer: Arc<Variables>) -> Self {
        Variables {
            outer: Some(outer),
            local: HashMap::new(),
        }
    }

    /// A top-level scope restored from a saved object (see [`Variables::to_object`]).
    pub fn from_object(m: Map<String, Value>) -> Self {
        Variables {
            outer: None,
            local: m.into_iter().collect(),
        }
    }

    /// Looks a variable up through the scope chain.
    pub fn get(&self, name: &str) -> Option<&Value> {
        if let Some(v) = self.local.get(name) {
            return Some(v);
        }
        let mut cur = self.outer.as_deref();
        while let Some(s) = cur {
            if let Some(v) = s.local.get(name) {
                return Some(v);
            }
            cur = s.outer.as_deref();
        }
        None
    }

    /// Sets (or replaces) a variable in this scope.
    pub fn set(&mut self, name: String, value: Value) {
        self.local.insert(name, value);
    }

    /// True when no variable is defined anywhere in the chain.
    pub fn is_empty(&self) -> bool {
        self.local.is_empty() && self.outer.as_ref().is_none_or(|o| o.is_empty())
    }

    /// All visible variables as one JSON object (inner scopes shadow outer ones).
    pub fn to_object(&self) -> Map<String, Value> {
        let mut m = match &self.outer {
            Some(o) => o.to_object(),
            None => Map::new(),
        };
        for (k, v) in &self.local {
            m.insert(k.clone(), v.clone());
        }
        m
    }
}

/// Per-execution constant parts of the context object.
#[derive(Debug, Clone)]
pub struct ExecutionInfo {
    /// `$$.Execution` (Id, Input, Name, RoleArn, StartTime, RedriveCount).
    pub execution: Value,
    /// `$$.StateMachine` (Id, Name).
    pub state_machine: Value,
}

/// The context object of one state, built on demand.
#[derive(Debug)]
pub struct Context<'a> {
    /// Execution-wide part.
    pub exec: &'a ExecutionInfo,
    /// Current state name.
    pub state_name: &'a str,
    /// When the state was entered (RFC 3339, lazily formatted).
    pub entered_ms: i64,
    /// `$$.Map.Item` (Index, Value) inside a Map iteration's ItemSelector.
    pub map_item: Option<(usize, &'a Value)>,
    /// `$$.Task.Token` for `.waitForTaskToken` tasks.
    pub task_token: Option<&'a str>,
    /// Retry count (`$$.State.RetryCount`): set (0 on the first attempt) for the states that
    /// retry (Task, Map, Parallel), absent from the others' context, as in Step Functions.
    pub retry_count: Option<u32>,
    cache: OnceLock<Value>,
}

/// Formats epoch milliseconds the way Step Functions prints timestamps.
pub fn format_time(ms: i64) -> String {
    // (`%Y-%m-%dT%H:%M:%S%.3fZ` without parsing a format string on every call)
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl<'a> Context<'a> {
    /// A new context for `state_name` entered at `entered_ms`.
    pub fn new(exec: &'a ExecutionInfo, state_name: &'a str, entered_ms: i64) -> Self {
        Context {
            exec,
            state_name,
            entered_ms,
            map_item: None,
            task_token: None,
            retry_count: None,
            cache: OnceLock::new(),
        }
    }

    /// The full context object.
    pub fn value(&self) -> &Value {
        self.cache.get_or_init(|| {
            let mut m = Map::new();
            m.insert("Execution".into(), self.exec.execution.clone());
            m.insert("StateMachine".into(), self.exec.state_machine.clone());
            let mut st = Map::new();
            st.insert("Name".into(), Value::String(self.state_name.to_string()));
            st.insert(
                "EnteredTime".into(),
                Value::String(format_time(self.entered_ms)),
            );
            if let Some(n) = self.retry_count {
                st.insert("RetryCount".into(), Value::from(n));
            }
            m.insert("State".into(), Value::Object(st));
            if let Some(t) = self.task_token {
                let mut task = Map::new();
                task.insert("Token".into(), Value::String(t.to_string()));
                m.insert("Task".into(), Value::Object(task));
            }
            if let Some((i, v)) = self.map_item {
                let mut item = Map::new();
                item.insert("Index".into(), Value::from(i));
                item.insert("Value".into(), v.clone());
                let mut map = Map::new();
                map.insert("Item".into(), Value::Object(item));
                m.insert("Map".into(), Value::Object(map));
            }
            Value::Object(m)
        })
    }
}

/// Everything a path, intrinsic or JSONata expression of one state can read.
pub struct Env<'a> {
    /// The value `$` refers to.
    pub input: &'a Value,
    /// `$$`.
    pub ctx: &'a Context<'a>,
    /// `$name`.
    pub vars: &'a Variables,
}

impl<'a> Env<'a> {
    /// Same environment with another `$`.
    pub fn with_input<'b>(&'b self, input: &'b Value) -> Env<'b> {
        Env {
            input,
            ctx: self.ctx,
            vars: self.vars,
        }
    }

    /// The root value a path starts from, `None` for an undefined variable.
    pub fn root(&self, p: &JsonPath) -> Option<&Value> {
        match p.root() {
            Root::Input => Some(self.input),
            Root::Context => Some(self.ctx.value()),
            Root::Variable(n) => self.vars.get(n),
        }
    }

    /// Evaluates a path; `None` when nothing matches (definite paths only).
    pub fn select(&self, p: &JsonPath) -> Option<Cow<'_, Value>> {
        let root = self.root(p)?;
        if p.is_definite() {
            p.lookup(root).map(Cow::Borrowed)
        } else {
            p.select(root).map(Cow::Owned)
        }
    }

    /// Evaluates a path and fails like AWS when nothing matches.
    pub fn select_or_fail(&self, p: &JsonPath) -> Result<Cow<'_, Value>, StateError> {
        self.select(p).ok_or_else(|| self.missing(p))
    }

    /// The `States.Runtime` error AWS raises for a path that matched nothing.
    pub fn missing(&self, p: &JsonPath) -> StateError {
        if let Root::Variable(n) = p.root() {
            if self.vars.get(n).is_none() {
                return StateError::new(
                    names::RUNTIME,
                    format!("Invalid path '{p}': The variable '${n}' is not defined"),
                );
            }
        }
        StateError::new(
            names::RUNTIME,
            format!(
                "Invalid path '{p}' : No results for path: {}",
                p.normalized()
            ),
        )
    }
}

#[cfg(test)]
mod time_tests {
    use super::format_time;

    #[test]
    fn times_have_millisecond_precision_and_a_z() {
        assert_eq!(format_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_time(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(format_time(1_700_000_000_000), "2023-11-14T22:13:20.000Z");
    }
}
