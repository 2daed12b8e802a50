//! Mocked service integrations in Step Functions Local's format: the mock configuration file
//! (`{"StateMachines": {SM: {"TestCases": {CASE: {STATE: RESPONSE}}}}, "MockedResponses":
//! {RESPONSE: {"0": {"Return": ..}, "1-2": {"Throw": {"Error": .., "Cause": ..}}}}}`), its strict
//! validation (every problem with a JSON pointer into the file), the resolution of one test
//! case against a definition, and [`MockTaskRunner`], the [`TaskRunner`] that answers the Task
//! states a test case names from their mocked responses and hands every other task to the
//! runner it wraps.
//!
//! Semantics follow Step Functions Local ("Using mocked service integrations for testing in
//! Step Functions Local" and "Configuration file for mocked service integrations" in the AWS
//! Step Functions developer guide):
//!
//! - the keys of a mocked response are 0-based invocation numbers (`"0"`) or inclusive ranges
//!   (`"1-2"`); the Nth call of a mocked state in the execution gets the response whose key
//!   covers N. Every call counts: retries, each Map iteration and each Parallel branch share
//!   the counter of the state's name (the guide asks for `MaxConcurrency: 1` to make Map
//!   iterations predictable, which is why they share it);
//! - a call past every key fails the execution ("If you do not specify a mocked response, the
//!   state machine execution will fail"): here with `States.Runtime`, which no Retry or Catch
//!   matches;
//! - `Return` is the task's raw result (for `lambda:invoke` the whole `{"StatusCode",
//!   "Payload", ..}` object; it is not wrapped again) and goes through ResultSelector,
//!   ResultPath and OutputPath like a real one; `Throw` fails the attempt with its `Error` and
//!   `Cause`, so Retry and Catch apply;
//! - a mocked `.waitForTaskToken` task still gets a task token and answers at once with the
//!   mocked value as the callback's output.

use crate::error::{names, ValidationErrors};
use crate::express::{TaskFailure, TaskRequest, TaskRunner};
use crate::model::{StateKind, StateMachine};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// Largest mock configuration file read, in bytes.
pub const MAX_MOCK_CONFIG_BYTES: usize = 4 << 20;
/// Most state machines, test cases (in all), mocked states (in all), mocked responses and
/// invocation keys (in all) one file may hold, each.
pub const MAX_MOCK_ENTRIES: usize = 10_000;
/// Longest state machine, test case, state or mocked response name.
pub const MAX_MOCK_NAME: usize = 256;
/// Deepest nesting of JSON values in a mock configuration file.
pub const MAX_MOCK_DEPTH: usize = 64;

/// Why a mock configuration or a test case cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MockError {
    /// The file is larger than [`MAX_MOCK_CONFIG_BYTES`].
    #[error(
        "the mock configuration is {size} bytes, more than the limit of {MAX_MOCK_CONFIG_BYTES}"
    )]
    TooLarge {
        /// Its size.
        size: usize,
    },
    /// The file is not JSON.
    #[error("the mock configuration is not JSON: {0}")]
    NotJson(String),
    /// The file (or a test case, against a definition) is not valid; one problem per line,
    /// each `POINTER: reason`.
    #[error("{0}")]
    Invalid(ValidationErrors),
    /// No entry of `StateMachines` is the state machine asked for.
    #[error("the mock configuration has no state machine '{name}' (it has: {})", list(.available))]
    UnknownStateMachine {
        /// The name asked for.
        name: String,
        /// The names the file has.
        available: Vec<String>,
    },
    /// The state machine has no such test case.
    #[error("the state machine '{state_machine}' has no test case '{name}' in the mock configuration (it has: {})", list(.available))]
    UnknownTestCase {
        /// The state machine.
        state_machine: String,
        /// The test case asked for.
        name: String,
        /// The test cases it has.
        available: Vec<String>,
    },
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// What one invocation of a mocked state does.
#[derive(Debug, Clone, PartialEq)]
pub enum MockOutcome {
    /// Succeed with this raw result.
    Return(Value),
    /// Fail with this error and cause.
    Throw {
        /// `Error`.
        error: String,
        /// `Cause`.
        cause: String,
    },
}

/// A mocked response: invocation ranges (inclusive, sorted, disjoint) and their outcomes.
#[derive(Debug, Clone, PartialEq)]
pub struct MockedResponse {
    ranges: Vec<(u64, u64, MockOutcome)>,
}

impl MockedResponse {
    /// The outcome of the 0-based invocation `n`, if a key covers it.
    pub fn outcome(&self, n: u64) -> Option<&MockOutcome> {
        let i = self.ranges.partition_point(|(_, end, _)| *end < n);
        self.ranges
            .get(i)
            .filter(|(start, _, _)| *start <= n)
            .map(|(_, _, o)| o)
    }

    /// The keys, as written in the file's canonical spelling (`"0"`, `"1-2"`).
    pub fn keys(&self) -> Vec<String> {
        self.ranges
            .iter()
            .map(|(s, e, _)| key_text(*s, *e))
            .collect()
    }

    fn to_json(&self) -> Value {
        let mut m = Map::new();
        for (s, e, o) in &self.ranges {
            let v = match o {
                MockOutcome::Return(v) => json!({ "Return": v }),
                MockOutcome::Throw { error, cause } => {
                    json!({"Throw": {"Error": error, "Cause": cause}})
                }
            };
            m.insert(key_text(*s, *e), v);
        }
        Value::Object(m)
    }
}

fn key_text(s: u64, e: u64) -> String {
    if s == e {
        s.to_string()
    } else {
        format!("{s}-{e}")
    }
}

/// A parsed and validated mock configuration file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MockConfig {
    /// State machine -> test case -> state -> mocked response name.
    state_machines: BTreeMap<String, BTreeMap<String, BTreeMap<String, String>>>,
    responses: BTreeMap<String, Arc<MockedResponse>>,
}

/// One test case, resolved: the state machine and test case names and, for each mocked
/// state, its mocked response.
#[derive(Debug, Clone, PartialEq)]
pub struct TestCase {
    /// The `StateMachines` entry.
    pub state_machine: String,
    /// The test case's name.
    pub name: String,
    /// State name -> (mocked response name, the response).
    pub states: BTreeMap<String, (String, Arc<MockedResponse>)>,
}

/// Escapes one JSON pointer token (RFC 6901).
pub fn pointer_token(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

fn depth_ok(v: &Value, max: usize) -> bool {
    // iterative, so that hostile nesting cannot exhaust the stack
    let mut stack = vec![(v, 1usize)];
    while let Some((v, d)) = stack.pop() {
        if d > max {
            return false;
        }
        match v {
            Value::Array(a) => stack.extend(a.iter().map(|x| (x, d + 1))),
            Value::Object(o) => stack.extend(o.values().map(|x| (x, d + 1))),
            _ => {}
        }
    }
    true
}

fn name_problem(s: &str) -> Option<String> {
    if s.is_empty() {
        Some("a name must not be empty".into())
    } else if s.len() > MAX_MOCK_NAME {
        Some(format!(
            "a name is at most {MAX_MOCK_NAME} bytes (this one has {})",
            s.len()
        ))
    } else if s.chars().any(char::is_control) {
        Some("a name must not contain control characters".into())
    } else {
        None
    }
}

/// Parses one invocation key: `N` or `N-M` (decimal, no sign, no leading zero, `N <= M`).
fn parse_key(k: &str) -> Result<(u64, u64), String> {
    let num = |s: &str| -> Result<u64, String> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "'{k}' is not an invocation number or an inclusive range (\"0\", \"1-2\")"
            ));
        }
        if s.len() > 1 && s.starts_with('0') {
            return Err(format!("'{k}': an invocation number has no leading zero"));
        }
        s.parse::<u64>()
            .map_err(|_| format!("'{k}': the invocation number is out of range"))
    };
    match k.split_once('-') {
        None => {
            let n = num(k)?;
            Ok((n, n))
        }
        Some((a, b)) => {
            let (a, b) = (num(a)?, num(b)?);
            if a > b {
                return Err(format!(
                    "'{k}': a range's start must not be greater than its end"
                ));
            }
            Ok((a, b))
        }
    }
}

fn parse_outcome(v: &Value, at: &str, errs: &mut ValidationErrors) -> Option<MockOutcome> {
    let Value::Object(o) = v else {
        errs.push(
            at,
            "a mocked invocation must be an object with a single field, Return or Throw",
        );
        return None;
    };
    if o.len() != 1 {
        errs.push(
            at,
            format!(
                "a mocked invocation must have exactly one field, Return or Throw (it has {})",
                o.len()
            ),
        );
        return None;
    }
    let (k, v) = o.iter().next()?;
    match k.as_str() {
        "Return" => Some(MockOutcome::Return(v.clone())),
        "Throw" => {
            let at = format!("{at}/Throw");
            let Value::Object(t) = v else {
                errs.push(
                    at,
                    "Throw must be an object with the string fields Error and Cause",
                );
                return None;
            };
            let mut ok = true;
            for k in t.keys() {
                if k != "Error" && k != "Cause" {
                    errs.push(
                        format!("{at}/{}", pointer_token(k)),
                        "unknown field (Throw has Error and Cause)",
                    );
                    ok = false;
                }
            }
            let mut field = |f: &str| match t.get(f) {
                Some(Value::String(s)) => Some(s.clone()),
                Some(_) => {
                    errs.push(format!("{at}/{f}"), format!("{f} must be a string"));
                    None
                }
                None => {
                    errs.push(at.clone(), format!("Throw needs the string field {f}"));
                    None
                }
            };
            let error = field("Error");
            let cause = field("Cause");
            match (error, cause) {
                (Some(error), Some(cause)) if ok => {
                    if error.is_empty() {
                        errs.push(format!("{at}/Error"), "Error must not be empty");
                        return None;
                    }
                    Some(MockOutcome::Throw { error, cause })
                }
                _ => None,
            }
        }
        other => {
            errs.push(
                format!("{at}/{}", pointer_token(other)),
                "unknown field (a mocked invocation has Return or Throw)",
            );
            None
        }
    }
}

fn parse_response(
    v: &Value,
    at: &str,
    errs: &mut ValidationErrors,
    keys: &mut usize,
) -> Option<MockedResponse> {
    let Value::Object(o) = v else {
        errs.push(
            at,
            "a mocked response must be an object of invocation numbers or ranges",
        );
        return None;
    };
    if o.is_empty() {
        errs.push(
            at,
            "a mocked response needs at least one invocation (\"0\")",
        );
        return None;
    }
    let before = errs.len();
    let mut ranges: Vec<(u64, u64, MockOutcome, String)> = Vec::new();
    for (k, v) in o {
        *keys += 1;
        if *keys > MAX_MOCK_ENTRIES {
            errs.push(
                at,
                format!("more than {MAX_MOCK_ENTRIES} invocation keys in the file"),
            );
            return None;
        }
        let kat = format!("{at}/{}", pointer_token(k));
        let range = match parse_key(k) {
            Ok(r) => Some(r),
            Err(m) => {
                errs.push(kat.clone(), m);
                None
            }
        };
        let outcome = parse_outcome(v, &kat, errs);
        if let (Some((s, e)), Some(o)) = (range, outcome) {
            ranges.push((s, e, o, k.clone()));
        }
    }
    ranges.sort_by_key(|r| (r.0, r.1));
    for w in ranges.windows(2) {
        if w[1].0 <= w[0].1 {
            errs.push(
                format!("{at}/{}", pointer_token(&w[1].3)),
                format!(
                    "the invocations of '{}' overlap those of '{}'",
                    w[1].3, w[0].3
                ),
            );
        }
    }
    if errs.len() > before {
        return None;
    }
    Some(MockedResponse {
        ranges: ranges.into_iter().map(|(s, e, o, _)| (s, e, o)).collect(),
    })
}

impl MockConfig {
    /// Parses and validates a mock configuration file: every problem is reported, each with
    /// the JSON pointer of where it is.
    pub fn parse(text: &str) -> Result<MockConfig, MockError> {
        if text.len() > MAX_MOCK_CONFIG_BYTES {
            return Err(MockError::TooLarge { size: text.len() });
        }
        let v: Value = serde_json::from_str(text).map_err(|e| MockError::NotJson(e.to_string()))?;
        Self::from_value(&v)
    }

    /// [`MockConfig::parse`] for an already parsed document.
    pub fn from_value(v: &Value) -> Result<MockConfig, MockError> {
        let mut errs = ValidationErrors::default();
        if !depth_ok(v, MAX_MOCK_DEPTH) {
            errs.push(
                "",
                format!("values nest deeper than {MAX_MOCK_DEPTH} levels"),
            );
            return Err(MockError::Invalid(errs));
        }
        let Value::Object(top) = v else {
            errs.push(
                "",
                "a mock configuration is an object with StateMachines and MockedResponses",
            );
            return Err(MockError::Invalid(errs));
        };
        for k in top.keys() {
            if k != "StateMachines" && k != "MockedResponses" {
                errs.push(
                    format!("/{}", pointer_token(k)),
                    "unknown field (a mock configuration has StateMachines and MockedResponses)",
                );
            }
        }
        let mut cfg = MockConfig::default();
        // MockedResponses first: test cases refer to them
        let mut known: BTreeMap<String, bool> = BTreeMap::new();
        match top.get("MockedResponses") {
            None => errs.push("", "missing field MockedResponses"),
            Some(Value::Object(rs)) => {
                if rs.len() > MAX_MOCK_ENTRIES {
                    errs.push(
                        "/MockedResponses",
                        format!("more than {MAX_MOCK_ENTRIES} mocked responses"),
                    );
                } else {
                    let mut keys = 0usize;
                    for (name, r) in rs {
                        let at = format!("/MockedResponses/{}", pointer_token(name));
                        if let Some(m) = name_problem(name) {
                            errs.push(at.clone(), m);
                        }
                        let parsed = parse_response(r, &at, &mut errs, &mut keys);
                        known.insert(name.clone(), parsed.is_some());
                        if let Some(p) = parsed {
                            cfg.responses.insert(name.clone(), Arc::new(p));
                        }
                    }
                }
            }
            Some(_) => errs.push("/MockedResponses", "MockedResponses must be an object"),
        }
        match top.get("StateMachines") {
            None => errs.push("", "missing field StateMachines"),
            Some(Value::Object(sms)) => {
                let (mut cases_n, mut states_n) = (0usize, 0usize);
                if sms.len() > MAX_MOCK_ENTRIES {
                    errs.push(
                        "/StateMachines",
                        format!("more than {MAX_MOCK_ENTRIES} state machines"),
                    );
                    return Err(MockError::Invalid(errs));
                }
                for (sm, body) in sms {
                    let at = format!("/StateMachines/{}", pointer_token(sm));
                    if let Some(m) = name_problem(sm) {
                        errs.push(at.clone(), m);
                    }
                    let Value::Object(body) = body else {
                        errs.push(at, "a state machine entry must be an object with TestCases");
                        continue;
                    };
                    for k in body.keys() {
                        if k != "TestCases" {
                            errs.push(
                                format!("{at}/{}", pointer_token(k)),
                                "unknown field (a state machine entry has TestCases)",
                            );
                        }
                    }
                    let cases = match body.get("TestCases") {
                        Some(Value::Object(c)) => c,
                        Some(_) => {
                            errs.push(format!("{at}/TestCases"), "TestCases must be an object");
                            continue;
                        }
                        None => {
                            errs.push(at, "missing field TestCases");
                            continue;
                        }
                    };
                    let mut out = BTreeMap::new();
                    for (case, states) in cases {
                        cases_n += 1;
                        if cases_n > MAX_MOCK_ENTRIES {
                            errs.push(
                                format!("{at}/TestCases"),
                                format!("more than {MAX_MOCK_ENTRIES} test cases in the file"),
                            );
                            return Err(MockError::Invalid(errs));
                        }
                        let cat = format!("{at}/TestCases/{}", pointer_token(case));
                        if let Some(m) = name_problem(case) {
                            errs.push(cat.clone(), m);
                        }
                        let Value::Object(states) = states else {
                            errs.push(cat, "a test case must be an object of state name -> mocked response name");
                            continue;
                        };
                        let mut m = BTreeMap::new();
                        for (state, resp) in states {
                            states_n += 1;
                            if states_n > MAX_MOCK_ENTRIES {
                                errs.push(
                                    cat.clone(),
                                    format!(
                                        "more than {MAX_MOCK_ENTRIES} mocked states in the file"
                                    ),
                                );
                                return Err(MockError::Invalid(errs));
                            }
                            let sat = format!("{cat}/{}", pointer_token(state));
                            if let Some(m) = name_problem(state) {
                                errs.push(sat.clone(), m);
                            }
                            match resp {
                                Value::String(r) => {
                                    if !known.contains_key(r) {
                                        errs.push(
                                            sat,
                                            format!("no mocked response '{r}' in MockedResponses"),
                                        );
                                    } else {
                                        m.insert(state.clone(), r.clone());
                                    }
                                }
                                _ => errs.push(
                                    sat,
                                    "the value must be the name of a mocked response (a string)",
                                ),
                            }
                        }
                        out.insert(case.clone(), m);
                    }
                    cfg.state_machines.insert(sm.clone(), out);
                }
            }
            Some(_) => errs.push("/StateMachines", "StateMachines must be an object"),
        }
        if errs.is_empty() {
            Ok(cfg)
        } else {
            Err(MockError::Invalid(errs))
        }
    }

    /// The names of the `StateMachines` entries.
    pub fn state_machines(&self) -> Vec<String> {
        self.state_machines.keys().cloned().collect()
    }

    /// The test cases of a state machine entry (`None`: no such entry).
    pub fn test_cases(&self, state_machine: &str) -> Option<Vec<String>> {
        self.state_machines
            .get(state_machine)
            .map(|c| c.keys().cloned().collect())
    }

    /// Resolves test case `case` of the state machine entry `state_machine`.
    pub fn test_case(&self, state_machine: &str, case: &str) -> Result<TestCase, MockError> {
        let cases = self.state_machines.get(state_machine).ok_or_else(|| {
            MockError::UnknownStateMachine {
                name: state_machine.to_string(),
                available: self.state_machines(),
            }
        })?;
        let states = cases.get(case).ok_or_else(|| MockError::UnknownTestCase {
            state_machine: state_machine.to_string(),
            name: case.to_string(),
            available: cases.keys().cloned().collect(),
        })?;
        let mut out = BTreeMap::new();
        for (state, r) in states {
            // (validation made sure every referenced response exists)
            if let Some(resp) = self.responses.get(r) {
                out.insert(state.clone(), (r.clone(), resp.clone()));
            }
        }
        Ok(TestCase {
            state_machine: state_machine.to_string(),
            name: case.to_string(),
            states: out,
        })
    }
}

/// The Task states of a machine and of every machine nested in it, by name.
fn task_states(sm: &StateMachine, out: &mut HashMap<String, &'static str>) {
    for st in &sm.states {
        let ty = match &st.kind {
            StateKind::Task(_) => "Task",
            StateKind::Map(m) => {
                task_states(&m.processor, out);
                "Map"
            }
            StateKind::Parallel { branches } => {
                for b in branches {
                    task_states(b, out);
                }
                "Parallel"
            }
            StateKind::Pass { .. } => "Pass",
            StateKind::Choice { .. } => "Choice",
            StateKind::Wait(_) => "Wait",
            StateKind::Succeed => "Succeed",
            StateKind::Fail { .. } => "Fail",
        };
        out.insert(st.name.clone(), ty);
    }
}

impl TestCase {
    /// Checks that every state the test case mocks is a Task state of `sm` (at any depth);
    /// problems point into the mock configuration.
    pub fn check(&self, sm: &StateMachine) -> Result<(), MockError> {
        let mut kinds = HashMap::new();
        task_states(sm, &mut kinds);
        let mut errs = ValidationErrors::default();
        for state in self.states.keys() {
            let at = format!(
                "/StateMachines/{}/TestCases/{}/{}",
                pointer_token(&self.state_machine),
                pointer_token(&self.name),
                pointer_token(state)
            );
            match kinds.get(state) {
                Some(&"Task") => {}
                Some(other) => errs.push(
                    at,
                    format!(
                        "the state '{state}' is a {other} state; only Task states can be mocked"
                    ),
                ),
                None => errs.push(at, format!("the state machine has no state '{state}'")),
            }
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(MockError::Invalid(errs))
        }
    }

    /// The test case as a mock configuration document of its own (its state machine, this
    /// test case and the responses it uses): what a durable execution keeps so that a replay
    /// uses the same mocks. [`TestCase::from_json`] reads it back.
    pub fn to_json(&self) -> Value {
        let mut states = Map::new();
        let mut responses = Map::new();
        for (state, (rname, r)) in &self.states {
            states.insert(state.clone(), Value::String(rname.clone()));
            responses.insert(rname.clone(), r.to_json());
        }
        let mut cases = Map::new();
        cases.insert(self.name.clone(), Value::Object(states));
        let mut sms = Map::new();
        sms.insert(self.state_machine.clone(), json!({ "TestCases": cases }));
        json!({"StateMachines": sms, "MockedResponses": responses})
    }

    /// Reads back [`TestCase::to_json`].
    pub fn from_json(v: &Value) -> Result<TestCase, MockError> {
        let cfg = MockConfig::from_value(v)?;
        let sm = cfg
            .state_machines
            .keys()
            .next()
            .cloned()
            .unwrap_or_default();
        let case = cfg
            .state_machines
            .get(&sm)
            .and_then(|c| c.keys().next().cloned())
            .unwrap_or_default();
        cfg.test_case(&sm, &case)
    }
}

/// A [`TaskRunner`] answering the states of a test case from their mocked responses; other
/// tasks go to `inner`.
pub struct MockTaskRunner<'a> {
    inner: &'a dyn TaskRunner,
    case: TestCase,
    calls: Mutex<HashMap<String, u64>>,
}

impl<'a> MockTaskRunner<'a> {
    /// Wraps `inner` with the mocks of `case`.
    pub fn new(inner: &'a dyn TaskRunner, case: TestCase) -> Self {
        MockTaskRunner {
            inner,
            case,
            calls: Mutex::new(HashMap::new()),
        }
    }

    /// The test case.
    pub fn test_case(&self) -> &TestCase {
        &self.case
    }

    /// The next 0-based invocation number of `state`.
    fn next_call(&self, state: &str) -> u64 {
        let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        let n = calls.entry(state.to_string()).or_insert(0);
        let this = *n;
        *n = n.saturating_add(1);
        this
    }
}

impl TaskRunner for MockTaskRunner<'_> {
    fn run_task(&self, req: &TaskRequest<'_>) -> Result<Value, TaskFailure> {
        let Some((rname, resp)) = self.case.states.get(req.state_name) else {
            return self.inner.run_task(req);
        };
        let n = self.next_call(req.state_name);
        tracing::debug!(state = %req.state_name, invocation = n, response = %rname, test_case = %self.case.name, "mocked task");
        match resp.outcome(n) {
            Some(MockOutcome::Return(v)) => Ok(v.clone()),
            Some(MockOutcome::Throw { error, cause }) => Err(TaskFailure {
                error: error.clone(),
                cause: cause.clone(),
            }),
            None => Err(TaskFailure {
                error: names::RUNTIME.into(),
                cause: format!(
                    "the mocked response '{rname}' of the state '{}' in the test case '{}' has no answer for invocation {n} (it has: {})",
                    req.state_name,
                    self.case.name,
                    resp.keys().join(", ")
                ),
            }),
        }
    }

    fn task_token(&self, key: &str, attempt: u32) -> String {
        self.inner.task_token(key, attempt)
    }

    fn wraps_result(&self, req: &TaskRequest<'_>) -> bool {
        if self.case.states.contains_key(req.state_name) {
            // a mocked Return is the service's whole response
            false
        } else {
            self.inner.wraps_result(req)
        }
    }

    fn replayed(&self, req: &TaskRequest<'_>) {
        if self.case.states.contains_key(req.state_name) {
            self.next_call(req.state_name);
        } else {
            self.inner.replayed(req);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::express::{run_express, Clock, FakeClock, Hooks, RunOptions};
    use crate::history::HistoryEvent;

    const DOC: &str = r#"{
      "StateMachines": {
        "LambdaSQSIntegration": {
          "TestCases": {
            "HappyPath": {"LambdaState": "MockedLambdaSuccess", "SQSState": "MockedSQSSuccess"},
            "RetryPath": {"LambdaState": "MockedLambdaRetry", "SQSState": "MockedSQSSuccess"},
            "HybridPath": {"LambdaState": "MockedLambdaSuccess"}
          }
        }
      },
      "MockedResponses": {
        "MockedLambdaSuccess": {"0": {"Return": {"StatusCode": 200, "Payload": {"StatusCode": 200, "body": "Hello from Lambda!"}}}},
        "LambdaMockedResourceNotReady": {"0": {"Throw": {"Error": "Lambda.ResourceNotReadyException", "Cause": "Lambda resource is not ready."}}},
        "MockedSQSSuccess": {"0": {"Return": {"MD5OfMessageBody": "3bcb6e8e", "MessageId": "3bcb6e8e-8b51"}}},
        "MockedLambdaRetry": {
          "0": {"Throw": {"Error": "Lambda.ResourceNotReadyException", "Cause": "Lambda resource is not ready."}},
          "1-2": {"Throw": {"Error": "Lambda.TimeoutException", "Cause": "Lambda timed out."}},
          "3": {"Return": {"StatusCode": 200, "Payload": {"StatusCode": 200, "body": "Hello from Lambda!"}}}
        }
      }
    }"#;

    const SM: &str = r#"{
      "StartAt": "LambdaState",
      "States": {
        "LambdaState": {
          "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
          "Parameters": {"FunctionName": "HelloWorldFunction"},
          "ResultSelector": {"body.$": "$.Payload.body"},
          "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 2, "MaxAttempts": 3, "BackoffRate": 2}],
          "Next": "SQSState"
        },
        "SQSState": {
          "Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage",
          "Parameters": {"QueueUrl": "https://sqs.us-east-1.amazonaws.com/123456789012/myQueue", "MessageBody.$": "$"},
          "ResultPath": "$.sqs",
          "End": true
        }
      }
    }"#;

    fn errors(e: MockError) -> Vec<String> {
        match e {
            MockError::Invalid(v) => v.errors.iter().map(|e| e.to_string()).collect(),
            other => vec![other.to_string()],
        }
    }

    fn bad(doc: &str) -> Vec<String> {
        errors(MockConfig::parse(doc).expect_err("invalid"))
    }

    /// Fails every real task: a mocked run must not reach it.
    struct Unreachable;
    impl TaskRunner for Unreachable {
        fn run_task(&self, req: &TaskRequest<'_>) -> Result<Value, TaskFailure> {
            Err(TaskFailure {
                error: "Test.RealTaskRan".into(),
                cause: req.state_name.to_string(),
            })
        }
    }

    fn run(
        sm: &str,
        case: &TestCase,
        input: Value,
    ) -> (Result<Value, crate::StateError>, Vec<HistoryEvent>) {
        let sm = crate::parse(sm).expect("valid definition");
        case.check(&sm).expect("test case fits");
        let runner = MockTaskRunner::new(&Unreachable, case.clone());
        let clock = FakeClock::default();
        let mut events: Vec<HistoryEvent> = Vec::new();
        let hooks = Hooks {
            history: Some(&mut events),
            ..Hooks::default()
        };
        let r = run_express(&sm, input, &RunOptions::default(), &runner, &clock, hooks);
        (r, events)
    }

    #[test]
    fn the_guide_example_parses() {
        let cfg = MockConfig::parse(DOC).expect("valid");
        assert_eq!(cfg.state_machines(), vec!["LambdaSQSIntegration"]);
        let c = cfg.test_case("LambdaSQSIntegration", "RetryPath").unwrap();
        let (_, r) = &c.states["LambdaState"];
        assert!(
            matches!(r.outcome(0), Some(MockOutcome::Throw { error, .. }) if error == "Lambda.ResourceNotReadyException")
        );
        assert!(
            matches!(r.outcome(2), Some(MockOutcome::Throw { error, .. }) if error == "Lambda.TimeoutException")
        );
        assert!(matches!(r.outcome(3), Some(MockOutcome::Return(_))));
        assert_eq!(r.outcome(4), None);
        assert_eq!(r.keys(), vec!["0", "1-2", "3"]);
    }

    #[test]
    fn happy_path_return_goes_through_result_selector_and_result_path() {
        let cfg = MockConfig::parse(DOC).unwrap();
        let c = cfg.test_case("LambdaSQSIntegration", "HappyPath").unwrap();
        let (r, events) = run(SM, &c, json!({"k": 1}));
        assert_eq!(
            r.unwrap(),
            json!({"body": "Hello from Lambda!", "sqs": {"MD5OfMessageBody": "3bcb6e8e", "MessageId": "3bcb6e8e-8b51"}})
        );
        // the mocked lambda:invoke result is the whole response, not wrapped again
        let ok = events
            .iter()
            .find(|e| e.event_type == "TaskSucceeded")
            .unwrap();
        let out: Value = serde_json::from_str(ok.details["output"].as_str().unwrap()).unwrap();
        assert_eq!(out["StatusCode"], 200);
        assert!(out.get("SdkHttpMetadata").is_none());
    }

    #[test]
    fn retry_path_counts_retries_as_invocations() {
        let cfg = MockConfig::parse(DOC).unwrap();
        let c = cfg.test_case("LambdaSQSIntegration", "RetryPath").unwrap();
        let (r, events) = run(SM, &c, json!({}));
        assert_eq!(r.unwrap()["body"], "Hello from Lambda!");
        let failed = events
            .iter()
            .filter(|e| e.event_type == "TaskFailed")
            .count();
        assert_eq!(failed, 3);
        // back-offs 2 + 4 + 8 s on the fake clock
        let first = events.first().unwrap().timestamp_ms;
        let last = events.last().unwrap().timestamp_ms;
        assert!(last - first >= 14_000, "{}", last - first);
    }

    #[test]
    fn hybrid_path_runs_unmocked_states_for_real() {
        let cfg = MockConfig::parse(DOC).unwrap();
        let c = cfg.test_case("LambdaSQSIntegration", "HybridPath").unwrap();
        let (r, _) = run(SM, &c, json!({}));
        assert_eq!(r.unwrap_err().error, "Test.RealTaskRan");
    }

    #[test]
    fn past_the_last_key_fails_the_execution() {
        let doc = r#"{"StateMachines": {"S": {"TestCases": {"T": {"A": "R"}}}},
            "MockedResponses": {"R": {"0": {"Throw": {"Error": "E", "Cause": "c"}}}}}"#;
        let sm = r#"{"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "f"},
            "Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 5}],
            "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "B"}], "End": true},
            "B": {"Type": "Succeed"}}}"#;
        let c = MockConfig::parse(doc).unwrap().test_case("S", "T").unwrap();
        let (r, _) = run(sm, &c, json!({}));
        let e = r.unwrap_err();
        assert_eq!(e.error, names::RUNTIME);
        assert!(e.cause.unwrap().contains("invocation 1"));
    }

    #[test]
    fn throw_is_caught() {
        let doc = r#"{"StateMachines": {"S": {"TestCases": {"T": {"A": "R"}}}},
            "MockedResponses": {"R": {"0": {"Throw": {"Error": "Custom.Err", "Cause": "boom"}}}}}"#;
        let sm = r#"{"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage",
            "Parameters": {"QueueUrl": "q", "MessageBody": "m"},
            "Catch": [{"ErrorEquals": ["Custom.Err"], "ResultPath": "$.err", "Next": "B"}], "End": true},
            "B": {"Type": "Pass", "End": true}}}"#;
        let c = MockConfig::parse(doc).unwrap().test_case("S", "T").unwrap();
        let (r, _) = run(sm, &c, json!({"x": 1}));
        assert_eq!(
            r.unwrap(),
            json!({"x": 1, "err": {"Error": "Custom.Err", "Cause": "boom"}})
        );
    }

    #[test]
    fn map_iterations_share_the_counter() {
        let doc = r#"{"StateMachines": {"S": {"TestCases": {"T": {"Work": "R"}}}},
            "MockedResponses": {"R": {"0": {"Return": "a"}, "1-2": {"Return": "b"}, "3": {"Return": "c"}}}}"#;
        let sm = r#"{"StartAt": "M", "States": {"M": {"Type": "Map", "MaxConcurrency": 1,
            "ItemProcessor": {"StartAt": "Work", "States": {"Work": {"Type": "Task",
              "Resource": "arn:aws:states:::sqs:sendMessage", "Parameters": {"QueueUrl": "q", "MessageBody": "m"}, "End": true}}},
            "End": true}}}"#;
        let c = MockConfig::parse(doc).unwrap().test_case("S", "T").unwrap();
        let (r, _) = run(sm, &c, json!([1, 2, 3, 4]));
        assert_eq!(r.unwrap(), json!(["a", "b", "b", "c"]));
    }

    #[test]
    fn parallel_branches_and_wait_for_task_token() {
        let doc = r#"{"StateMachines": {"S": {"TestCases": {"T": {"L": "R", "Cb": "Tok"}}}},
            "MockedResponses": {"R": {"0": {"Return": {"StatusCode": 200, "Payload": 1}}},
                                "Tok": {"0": {"Return": {"approved": true}}}}}"#;
        let sm = r#"{"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": true, "Branches": [
            {"StartAt": "L", "States": {"L": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
               "Parameters": {"FunctionName": "f"}, "OutputPath": "$.Payload", "End": true}}},
            {"StartAt": "Cb", "States": {"Cb": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
               "Parameters": {"QueueUrl": "q", "MessageBody": {"token.$": "$$.Task.Token"}}, "End": true}}}]}}}"#;
        let c = MockConfig::parse(doc).unwrap().test_case("S", "T").unwrap();
        let (r, _) = run(sm, &c, json!({}));
        assert_eq!(r.unwrap(), json!([1, {"approved": true}]));
    }

    #[test]
    fn fast_forward_wait_and_timestamps() {
        let sm = crate::parse(
            r#"{"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 3600, "Next": "T"},
                "T": {"Type": "Pass", "Parameters": {"at.$": "$$.State.EnteredTime", "start.$": "$$.Execution.StartTime"}, "End": true}}}"#,
        )
        .unwrap();
        let clock = FakeClock::default();
        let mut events: Vec<HistoryEvent> = Vec::new();
        let hooks = Hooks {
            history: Some(&mut events),
            ..Hooks::default()
        };
        let t0 = std::time::Instant::now();
        let out = run_express(
            &sm,
            json!({}),
            &RunOptions::default(),
            &Unreachable,
            &clock,
            hooks,
        )
        .unwrap();
        assert!(t0.elapsed() < std::time::Duration::from_secs(5));
        let entered = events
            .iter()
            .find(|e| e.event_type == "WaitStateEntered")
            .unwrap();
        let exited = events
            .iter()
            .find(|e| e.event_type == "WaitStateExited")
            .unwrap();
        assert_eq!(exited.timestamp_ms - entered.timestamp_ms, 3_600_000);
        let at = chrono::DateTime::parse_from_rfc3339(out["at"].as_str().unwrap()).unwrap();
        let start = chrono::DateTime::parse_from_rfc3339(out["start"].as_str().unwrap()).unwrap();
        assert_eq!((at - start).num_seconds(), 3600);
    }

    #[test]
    fn fast_forward_execution_timeout() {
        let sm = crate::parse(
            r#"{"TimeoutSeconds": 60, "StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 3600, "End": true}}}"#,
        )
        .unwrap();
        let clock = FakeClock::default();
        let start = clock.now();
        let r = run_express(
            &sm,
            json!({}),
            &RunOptions::default(),
            &Unreachable,
            &clock,
            Hooks::default(),
        );
        assert_eq!(r.unwrap_err().error, names::TIMEOUT);
        assert_eq!((clock.now() - start).num_seconds(), 60);
    }

    #[test]
    fn parallel_waits_never_add_up_beyond_their_sum() {
        let sm = crate::parse(
            r#"{"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": true, "Branches": [
                {"StartAt": "A", "States": {"A": {"Type": "Wait", "Seconds": 100, "End": true}}},
                {"StartAt": "B", "States": {"B": {"Type": "Wait", "Seconds": 100, "End": true}}}]}}}"#,
        )
        .unwrap();
        let clock = FakeClock::default();
        let start = clock.now();
        run_express(
            &sm,
            json!({}),
            &RunOptions::default(),
            &Unreachable,
            &clock,
            Hooks::default(),
        )
        .unwrap();
        // branches share the one clock: those that wait side by side overlap, one that starts
        // after another's wait sees the time that wait moved to
        let took = (clock.now() - start).num_seconds();
        assert!((100..=200).contains(&took), "{took}");
    }

    #[test]
    fn test_case_must_name_task_states() {
        let doc = r#"{"StateMachines": {"S": {"TestCases": {"T": {"P": "R", "Nope": "R", "a/b": "R"}}}},
            "MockedResponses": {"R": {"0": {"Return": 1}}}}"#;
        let sm =
            crate::parse(r#"{"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}"#)
                .unwrap();
        let c = MockConfig::parse(doc).unwrap().test_case("S", "T").unwrap();
        let e = errors(c.check(&sm).unwrap_err());
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(
            e.iter()
                .any(|l| l.starts_with("/StateMachines/S/TestCases/T/P: ")
                    && l.contains("Pass state"))
        );
        assert!(e
            .iter()
            .any(|l| l.starts_with("/StateMachines/S/TestCases/T/Nope: ")));
        assert!(e
            .iter()
            .any(|l| l.starts_with("/StateMachines/S/TestCases/T/a~1b: ")));
    }

    #[test]
    fn unknown_names_list_what_exists() {
        let cfg = MockConfig::parse(DOC).unwrap();
        let e = cfg
            .test_case("LambdaSQSIntegration", "../../etc/passwd")
            .unwrap_err();
        let m = e.to_string();
        assert!(
            m.contains("'../../etc/passwd'") && m.contains("HappyPath, HybridPath, RetryPath"),
            "{m}"
        );
        assert!(matches!(
            cfg.test_case("Other", "HappyPath"),
            Err(MockError::UnknownStateMachine { .. })
        ));
    }

    #[test]
    fn strict_validation_with_pointers() {
        let e = bad(r#"{"StateMachines": {}, "MockedResponses": {}, "Extra": 1}"#);
        assert_eq!(e, vec!["/Extra: unknown field (a mock configuration has StateMachines and MockedResponses)"]);
        let e = bad(
            r#"{"StateMachines": {"S": {"TestCases": {"T": {"A": "Missing"}}}}, "MockedResponses": {}}"#,
        );
        assert_eq!(
            e,
            vec!["/StateMachines/S/TestCases/T/A: no mocked response 'Missing' in MockedResponses"]
        );
        let e = bad(
            r#"{"StateMachines": {}, "MockedResponses": {"R": {"0-2": {"Return": 1}, "2": {"Return": 2}}}}"#,
        );
        assert_eq!(e.len(), 1);
        assert!(
            e[0].starts_with("/MockedResponses/R/2: ") && e[0].contains("overlap"),
            "{e:?}"
        );
        for k in [
            "-1",
            "1-",
            "a",
            "2-1",
            "01",
            "1-2-3",
            " 1",
            "99999999999999999999999",
            "",
        ] {
            let doc = format!(
                r#"{{"StateMachines": {{}}, "MockedResponses": {{"R": {{"{k}": {{"Return": 1}}}}}}}}"#
            );
            let e = bad(&doc);
            assert!(
                e[0].starts_with(&format!("/MockedResponses/R/{k}: ")),
                "{k}: {e:?}"
            );
        }
        let e = bad(
            r#"{"StateMachines": {}, "MockedResponses": {"R": {"0": {"Return": 1, "Throw": {}}}}}"#,
        );
        assert!(e[0].starts_with("/MockedResponses/R/0: "));
        let e = bad(
            r#"{"StateMachines": {}, "MockedResponses": {"R": {"0": {"Throw": {"Error": 1}}}}}"#,
        );
        assert!(
            e.iter()
                .any(|l| l.starts_with("/MockedResponses/R/0/Throw/Error: ")),
            "{e:?}"
        );
        assert!(e.iter().any(|l| l.contains("Cause")), "{e:?}");
        let e = bad(r#"{"StateMachines": {}, "MockedResponses": {"R": {}}}"#);
        assert!(e[0].starts_with("/MockedResponses/R: "));
        let e = bad(r#"{"StateMachines": {"S": {"Cases": {}}}, "MockedResponses": {}}"#);
        assert!(e.iter().any(|l| l.starts_with("/StateMachines/S/Cases: ")));
        assert!(e
            .iter()
            .any(|l| l.starts_with("/StateMachines/S: missing field TestCases")));
        assert!(!bad("[]").is_empty());
        assert!(!bad(r#"{"StateMachines": {}}"#).is_empty());
        assert!(!bad("not json").is_empty());
    }

    #[test]
    fn hostile_input_is_refused_without_panic() {
        let big = " ".repeat(MAX_MOCK_CONFIG_BYTES + 1);
        assert!(matches!(
            MockConfig::parse(&big),
            Err(MockError::TooLarge { .. })
        ));
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(MockConfig::parse(&deep).is_err());
        let nested = format!(
            r#"{{"StateMachines": {{}}, "MockedResponses": {{"R": {{"0": {{"Return": {}1{}}}}}}}}}"#,
            "[".repeat(100),
            "]".repeat(100)
        );
        let e = bad(&nested);
        assert!(e[0].contains("nest"), "{e:?}");
        let huge_range = r#"{"StateMachines": {}, "MockedResponses": {"R": {"0-18446744073709551615": {"Return": 1}}}}"#;
        let cfg = MockConfig::parse(huge_range).unwrap();
        assert!(cfg.responses["R"].outcome(u64::MAX).is_some());
        let ctl = "{\"StateMachines\": {\"S\": {\"TestCases\": {\"a\\u0000b\": {}}}}, \"MockedResponses\": {}}";
        assert!(bad(ctl)[0].contains("control"));
        let mut many = String::from(r#"{"StateMachines": {}, "MockedResponses": {"R": {"#);
        for i in 0..(MAX_MOCK_ENTRIES + 1) {
            if i > 0 {
                many.push(',');
            }
            many.push_str(&format!(r#""{i}": {{"Return": 1}}"#));
        }
        many.push_str("}}}");
        assert!(bad(&many)[0].contains("more than"));
    }

    #[test]
    fn test_case_round_trips_through_json() {
        let cfg = MockConfig::parse(DOC).unwrap();
        let c = cfg.test_case("LambdaSQSIntegration", "RetryPath").unwrap();
        let back = TestCase::from_json(&c.to_json()).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn replayed_calls_advance_the_counter() {
        let cfg = MockConfig::parse(DOC).unwrap();
        let c = cfg.test_case("LambdaSQSIntegration", "RetryPath").unwrap();
        let runner = MockTaskRunner::new(&Unreachable, c);
        let sm = crate::parse(SM).unwrap();
        let StateKind::Task(t) = &sm.states[sm.index["LambdaState"]].kind else {
            panic!("task")
        };
        let ctx = Value::Null;
        let req = TaskRequest {
            state_name: "LambdaState",
            resource: &t.resource,
            target: "f".into(),
            parameters: json!({}),
            payload: json!({}),
            credentials: None,
            timeout_seconds: None,
            heartbeat_seconds: None,
            context: &ctx,
            task_token: None,
            attempt: 1,
            key: String::new(),
            depth: 0,
            cancel: Default::default(),
        };
        for _ in 0..3 {
            runner.replayed(&req);
        }
        assert!(runner.run_task(&req).is_ok());
        assert!(!runner.wraps_result(&req));
    }
}
