//! Pure single-state steps, the building blocks a durable engine drives one state at a time
//! (the Express driver in [`crate::express`] is one such driver): input processing
//! (`InputPath` -> `Parameters`/`Arguments`), result processing (`ResultSelector` ->
//! `ResultPath` -> `OutputPath`, JSONata `Output`, `Assign`), Choice decisions, Wait
//! deadlines, Fail values, Map item preparation and Retry/Catch decisions. Nothing here
//! sleeps, performs I/O or reads a clock: time comes in as arguments.

use crate::choice;
use crate::env::Env;
use crate::error::{names, StateError};
use crate::jsonpath::{type_name, JsonPath};
use crate::model::*;
use crate::template::Template;
use serde_json::{Map, Value};

/// Variables assigned by a state, applied once the state completes.
pub type Assignments = Vec<(String, Value)>;

/// The processed outcome of a state that produced a result.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    /// The state output (input of the next state).
    pub output: Value,
    /// Variable assignments to apply after the state.
    pub assign: Assignments,
}

/// What to do with an error raised by a state.
#[derive(Debug, Clone, PartialEq)]
pub enum ErrorDecision {
    /// Retry the state after `delay_ms` (the retrier at `retrier` used one more attempt).
    Retry {
        /// Index of the matching retrier.
        retrier: usize,
        /// Delay before the next attempt, in milliseconds.
        delay_ms: u64,
    },
    /// Go to a catcher's `Next` with this output.
    Catch {
        /// Next state index.
        next: usize,
        /// Output given to the next state.
        output: Value,
        /// Catcher assignments.
        assign: Assignments,
    },
    /// No handler: the error propagates.
    Fail(StateError),
}

/// True when an `ErrorEquals` list matches an error name, with AWS's wildcard rules.
pub fn error_matches(list: &[String], error: &str) -> bool {
    if error == names::SUSPENDED || error == names::CANCELLED {
        return false;
    }
    let terminal = error == names::RUNTIME || error == names::DATA_LIMIT_EXCEEDED;
    list.iter().any(|e| {
        e == error
            || (e == names::ALL && !terminal)
            || (e == names::TASK_FAILED && !terminal && error != names::TIMEOUT)
    })
}

fn rt(msg: String) -> StateError {
    StateError::new(names::RUNTIME, msg)
}

/// `$states` for JSONata expressions.
pub fn states_value(
    env: &Env<'_>,
    input: &Value,
    result: Option<&Value>,
    error_output: Option<&Value>,
) -> Value {
    let mut m = Map::with_capacity(4);
    m.insert("input".into(), input.clone());
    m.insert("context".into(), env.ctx.value().clone());
    if let Some(r) = result {
        m.insert("result".into(), r.clone());
    }
    if let Some(e) = error_output {
        m.insert("errorOutput".into(), e.clone());
    }
    Value::Object(m)
}

/// Applies `InputPath` (JSONPath) to the raw state input. JSONata states use the raw input.
pub fn effective_input(state: &State, raw: Value, env: &Env<'_>) -> Result<Value, StateError> {
    match &state.input_path {
        PathSpec::Identity => Ok(raw),
        PathSpec::Null => Ok(Value::Object(Map::new())),
        PathSpec::Path(p) => select_required(p, &raw, env),
    }
}

fn select_required(p: &JsonPath, input: &Value, env: &Env<'_>) -> Result<Value, StateError> {
    let e = env.with_input(input);
    e.select_or_fail(p).map(|c| c.into_owned())
}

/// Evaluates `Parameters` (JSONPath) or `Arguments` (JSONata) over the effective input.
/// Without either, the payload is the effective input itself.
pub fn payload(state: &State, effective: Value, env: &Env<'_>) -> Result<Value, StateError> {
    if let Some(t) = &state.parameters {
        return t.eval(&env.with_input(&effective), None);
    }
    if let Some(t) = &state.arguments {
        let st = states_value(env, &effective, None, None);
        return t.eval(&env.with_input(&effective), Some(&st));
    }
    Ok(effective)
}

fn eval_assign(
    t: &Template,
    env: &Env<'_>,
    states: Option<&Value>,
) -> Result<Assignments, StateError> {
    match t.eval(env, states)? {
        Value::Object(m) => Ok(m.into_iter().collect()),
        _ => Ok(Vec::new()),
    }
}

/// Processes a state's result into its output: `ResultSelector` -> `ResultPath` ->
/// `OutputPath` and `Assign` (JSONPath), or `Output` and `Assign` (JSONata).
/// `raw_input` is the state input before `InputPath`.
pub fn finish(
    state: &State,
    raw_input: Value,
    result: Value,
    env: &Env<'_>,
) -> Result<Finished, StateError> {
    if state.query_language == QueryLanguage::Jsonata {
        let has_result = !matches!(
            state.kind,
            StateKind::Pass { .. }
                | StateKind::Wait(_)
                | StateKind::Choice { .. }
                | StateKind::Succeed
        );
        let needs_states = state.output.as_ref().is_some_and(|t| !t.is_literal())
            || state.assign.as_ref().is_some_and(|t| !t.is_literal());
        let st = if needs_states {
            Some(states_value(
                env,
                &raw_input,
                has_result.then_some(&result),
                None,
            ))
        } else {
            None
        };
        let assign = match &state.assign {
            Some(t) => eval_assign(t, env, st.as_ref())?,
            None => Vec::new(),
        };
        let output = match &state.output {
            Some(t) => t.eval(env, st.as_ref())?,
            None => result,
        };
        return Ok(Finished { output, assign });
    }
    let result = match &state.result_selector {
        Some(t) => t.eval(&env.with_input(&result), None)?,
        None => result,
    };
    let assign = match &state.assign {
        Some(t) => eval_assign(t, &env.with_input(&result), None)?,
        None => Vec::new(),
    };
    let combined = apply_result_path(&state.result_path, raw_input, result)?;
    let output = apply_output_path(&state.output_path, combined, env)?;
    Ok(Finished { output, assign })
}

/// Applies a `ResultPath`.
pub fn apply_result_path(
    rp: &ResultPathSpec,
    raw_input: Value,
    result: Value,
) -> Result<Value, StateError> {
    match rp {
        ResultPathSpec::Replace => Ok(result),
        ResultPathSpec::Discard => Ok(raw_input),
        ResultPathSpec::Path(p) => {
            let mut target = raw_input;
            match p.set(&mut target, result) {
                Ok(()) => Ok(target),
                Err(why) => Err(StateError::new(
                    names::RESULT_PATH_MATCH_FAILURE,
                    format!(
                        "Unable to apply step \"ResultPath\" ({p}) to input {}: {why}",
                        serde_json::to_string(&target).unwrap_or_default()
                    ),
                )),
            }
        }
    }
}

/// Applies an `OutputPath`.
pub fn apply_output_path(op: &PathSpec, value: Value, env: &Env<'_>) -> Result<Value, StateError> {
    match op {
        PathSpec::Identity => Ok(value),
        PathSpec::Null => Ok(Value::Object(Map::new())),
        PathSpec::Path(p) => select_required(p, &value, env),
    }
}

/// The result a Pass state produces from its effective input.
pub fn pass_result(state: &State, effective: Value, env: &Env<'_>) -> Result<Value, StateError> {
    if let StateKind::Pass { result: Some(r) } = &state.kind {
        return Ok(r.clone());
    }
    payload(state, effective, env)
}

/// Runs a whole Pass / Succeed / Choice / Wait-less step that needs no external work.
/// Returns the output and assignments of a Pass state.
pub fn run_pass(state: &State, raw: Value, env: &Env<'_>) -> Result<Finished, StateError> {
    if state.query_language == QueryLanguage::JsonPath
        && state.parameters.is_none()
        && state.assign.is_none()
        && matches!(state.input_path, PathSpec::Identity)
        && matches!(state.output_path, PathSpec::Identity)
        && matches!(state.kind, StateKind::Pass { result: None })
    {
        // fast path: `$` -> `$`; ResultPath on the input itself
        return match &state.result_path {
            ResultPathSpec::Replace | ResultPathSpec::Discard => Ok(Finished {
                output: raw,
                assign: Vec::new(),
            }),
            rp => {
                let copy = raw.clone();
                Ok(Finished {
                    output: apply_result_path(rp, raw, copy)?,
                    assign: Vec::new(),
                })
            }
        };
    }
    let needs_raw = !matches!(state.result_path, ResultPathSpec::Replace)
        || state.query_language == QueryLanguage::Jsonata;
    let raw_copy = if needs_raw { raw.clone() } else { Value::Null };
    let effective = effective_input(state, raw, env)?;
    let result = pass_result(state, effective, env)?;
    finish(state, raw_copy, result, env)
}

/// Decides a Choice state: the next state index and the output/assignments.
pub fn choose(state: &State, raw: Value, env: &Env<'_>) -> Result<(usize, Finished), StateError> {
    let StateKind::Choice { choices, default } = &state.kind else {
        return Err(rt(format!("state '{}' is not a Choice state", state.name)));
    };
    let jsonata = state.query_language == QueryLanguage::Jsonata;
    let effective = if jsonata {
        raw
    } else {
        effective_input(state, raw, env)?
    };
    let st = if jsonata {
        Some(states_value(env, &effective, None, None))
    } else {
        None
    };
    let e = env.with_input(&effective);
    let mut matched: Option<&ChoiceRule> = None;
    for rule in choices {
        if choice::evaluate(&rule.condition, &e, st.as_ref())? {
            matched = Some(rule);
            break;
        }
    }
    let next = match (matched, default) {
        (Some(r), _) => r.next,
        (None, Some(d)) => *d,
        (None, None) => {
            return Err(StateError::new(
                names::NO_CHOICE_MATCHED,
                "No Matches!".to_string(),
            ))
        }
    };
    // a matched rule uses its own Assign/Output; the state-level ones apply on Default
    let (assign_t, output_t) = match matched {
        Some(r) => (r.assign.as_ref(), r.output.as_ref()),
        None => (state.assign.as_ref(), state.output.as_ref()),
    };
    let assign = match assign_t {
        Some(t) => eval_assign(t, &e, st.as_ref())?,
        None => Vec::new(),
    };
    let output = match output_t {
        Some(t) => t.eval(&e, st.as_ref())?,
        None => {
            if jsonata {
                effective
            } else {
                apply_output_path(&state.output_path, effective, env)?
            }
        }
    };
    Ok((next, Finished { output, assign }))
}

/// A value as AWS prints it inside messages: strings raw, everything else as JSON.
fn raw_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The number a `*Path` field refers to. AWS reads `MaxConcurrencyPath`,
/// `ToleratedFailureCountPath`, `ToleratedFailurePercentagePath`, `TimeoutSecondsPath`,
/// `HeartbeatSecondsPath`, Wait `SecondsPath` and ItemBatcher `MaxItemsPerBatchPath` /
/// `MaxInputBytesPerBatchPath` with a coercing number conversion, so a string holding a
/// number (`"5"`) is used as that number; any other string still fails with the field's own
/// error. Integer fields take only an integer string (`"5"`, not `"5.0"`); the percentage
/// takes any decimal.
pub(crate) fn path_number(v: &Value, integer: bool) -> std::borrow::Cow<'_, Value> {
    use std::borrow::Cow;
    let Value::String(s) = v else {
        return Cow::Borrowed(v);
    };
    let t = s.trim();
    if integer {
        if let Ok(i) = t.parse::<i64>() {
            return Cow::Owned(Value::from(i));
        }
    } else if let Ok(x) = t.parse::<f64>() {
        if x.is_finite() {
            if let Some(n) = serde_json::Number::from_f64(x) {
                return Cow::Owned(Value::Number(n));
            }
        }
    }
    Cow::Borrowed(v)
}

fn dyn_seconds(
    d: &Dynamic<u64>,
    field: &str,
    env: &Env<'_>,
    st: Option<&Value>,
) -> Result<u64, StateError> {
    match d {
        Dynamic::Value(n) => Ok(*n),
        Dynamic::Path(p) => {
            let v = env.select_or_fail(p)?;
            match path_number(v.as_ref(), true).as_ref() {
                Value::Number(n) => match n.as_i64() {
                    Some(i) if i < 0 => Err(rt(format!(
                        "The {field}Path parameter references a negative value: {p} == {i}"
                    ))),
                    Some(i) => Ok(i as u64),
                    None => Err(rt(format!(
                        "The {field}Path parameter cannot be parsed as a long value: {p} == {n}"
                    ))),
                },
                other => Err(rt(format!(
                    "The {field}Path parameter cannot be parsed as a long value: {p} == {}",
                    raw_text(other)
                ))),
            }
        }
        Dynamic::Expr(t) => {
            let v = t.eval(env, st)?;
            match v.as_u64() {
                Some(n) => Ok(n),
                None => Err(StateError::new(
                    names::QUERY_EVALUATION_ERROR,
                    format!(
                        "The {field} field must evaluate to a non-negative integer, but was: {v}"
                    ),
                )),
            }
        }
    }
}

/// Computes when a Wait state ends (epoch ms), from its effective input and `now_ms`.
pub fn wait_until(
    state: &State,
    effective: &Value,
    env: &Env<'_>,
    now_ms: i64,
) -> Result<i64, StateError> {
    let StateKind::Wait(w) = &state.kind else {
        return Ok(now_ms);
    };
    let e = env.with_input(effective);
    let st = if state.query_language == QueryLanguage::Jsonata {
        Some(states_value(env, effective, None, None))
    } else {
        None
    };
    match w {
        WaitFor::Seconds(d) => {
            let s = dyn_seconds(d, "Seconds", &e, st.as_ref())?;
            Ok(now_ms.saturating_add((s.min(i64::MAX as u64 / 1000) as i64) * 1000))
        }
        WaitFor::Timestamp(d) => {
            let (text, label) = match d {
                Dynamic::Value(s) => (s.clone(), String::new()),
                Dynamic::Path(p) => {
                    let v = e.select_or_fail(p)?;
                    match v.as_ref() {
                        Value::String(s) => (s.clone(), format!("{p} == {s}")),
                        other => {
                            return Err(rt(format!(
                                "The TimestampPath parameter does not reference a valid ISO-8601 extended offset date-time format string: {p} == {}",
                                raw_text(other)
                            )))
                        }
                    }
                }
                Dynamic::Expr(t) => match t.eval(&e, st.as_ref())? {
                    Value::String(s) => (s, String::new()),
                    other => {
                        return Err(StateError::new(
                            names::QUERY_EVALUATION_ERROR,
                            format!(
                                "The Timestamp field must evaluate to a string, but was: {other}"
                            ),
                        ))
                    }
                },
            };
            match choice::parse_timestamp(&text) {
                Some(t) => Ok(t.timestamp_millis()),
                None => Err(rt(format!(
                    "The TimestampPath parameter does not reference a valid ISO-8601 extended offset date-time format string: {label}"
                ))),
            }
        }
    }
}

fn fail_text(
    f: &FailField,
    what: &str,
    env: &Env<'_>,
    st: Option<&Value>,
) -> Result<Option<String>, StateError> {
    match f {
        FailField::None => Ok(None),
        FailField::Value(s) => Ok(Some(s.clone())),
        FailField::Path(t) | FailField::Expr(t) => match t.eval(env, st)? {
            Value::String(s) => Ok(Some(s)),
            other => Err(rt(format!(
                "The {what} field must be a string, but was: {}",
                type_name(&other)
            ))),
        },
    }
}

/// The error a Fail state raises.
pub fn fail_error(state: &State, raw: &Value, env: &Env<'_>) -> Result<StateError, StateError> {
    let StateKind::Fail { error, cause } = &state.kind else {
        return Err(rt(format!("state '{}' is not a Fail state", state.name)));
    };
    let e = env.with_input(raw);
    let st = if state.query_language == QueryLanguage::Jsonata {
        Some(states_value(env, raw, None, None))
    } else {
        None
    };
    let error = fail_text(error, "Error", &e, st.as_ref())?;
    let cause = fail_text(cause, "Cause", &e, st.as_ref())?;
    Ok(StateError {
        error: error.unwrap_or_default(),
        cause,
    })
}

/// Map state items from its effective input (`ItemsPath`, or JSONata `Items`).
pub fn map_items(
    state: &State,
    spec: &MapSpec,
    effective: &Value,
    env: &Env<'_>,
) -> Result<Vec<Value>, StateError> {
    let e = env.with_input(effective);
    if let Some(t) = &spec.items {
        let st = states_value(env, effective, None, None);
        let v = t.eval(&e, Some(&st))?;
        return match v {
            Value::Array(a) => Ok(a),
            other => {
                let text = match t {
                    Template::Jsonata { expr, .. } => expr.text.clone(),
                    _ => String::new(),
                };
                Err(StateError::new(
                    names::QUERY_EVALUATION_ERROR,
                    format!(
                        "The JSONata expression '{text}' specified for the field 'Items' returned an unexpected result type. Expected 'array', but was '{}' for value: {}",
                        type_name(&other),
                        other
                    ),
                ))
            }
        };
    }
    let v = match &spec.items_path {
        PathSpec::Identity => effective.clone(),
        PathSpec::Null => Value::Object(Map::new()),
        PathSpec::Path(p) => e.select_or_fail(p)?.into_owned(),
    };
    match v {
        Value::Array(a) => Ok(a),
        other => {
            let err = if state.query_language == QueryLanguage::Jsonata {
                names::QUERY_EVALUATION_ERROR
            } else {
                names::RUNTIME
            };
            Err(StateError::new(
                err,
                format!("Map state input must be an array but was: {other}"),
            ))
        }
    }
}

/// `MaxConcurrency` (0 = unlimited).
pub fn map_max_concurrency(
    spec: &MapSpec,
    effective: &Value,
    env: &Env<'_>,
) -> Result<u64, StateError> {
    let e = env.with_input(effective);
    match &spec.max_concurrency {
        Dynamic::Value(n) => Ok(*n),
        Dynamic::Path(p) => {
            let v = e.select_or_fail(p)?;
            match path_number(v.as_ref(), true).as_ref() {
                Value::Number(n) if n.as_u64().is_some() => Ok(n.as_u64().unwrap_or(0)),
                Value::Number(n) if n.as_i64().is_some() => Err(rt(format!(
                    "Expected non-negative integer for MaxConcurrency, got '{n}' instead."
                ))),
                other => Err(rt(format!(
                    "The MaxConcurrencyPath field refers to value \"{}\" which is not a valid integer: {p}",
                    raw_text(other)
                ))),
            }
        }
        Dynamic::Expr(t) => {
            let st = states_value(env, effective, None, None);
            t.eval(&e, Some(&st))?.as_u64().ok_or_else(|| {
                StateError::new(
                    names::QUERY_EVALUATION_ERROR,
                    "The MaxConcurrency field must evaluate to a non-negative integer",
                )
            })
        }
    }
}

/// How many item failures a Map tolerates, given the item count.
pub fn map_tolerated(
    spec: &MapSpec,
    effective: &Value,
    env: &Env<'_>,
    n_items: usize,
) -> Result<Option<usize>, StateError> {
    let e = env.with_input(effective);
    let count = match &spec.tolerated_failure_count {
        None => None,
        Some(d) => Some(dyn_seconds(d, "ToleratedFailureCount", &e, None)? as usize),
    };
    let pct = match &spec.tolerated_failure_percentage {
        None => None,
        Some(Dynamic::Value(x)) => Some(*x),
        Some(Dynamic::Path(p)) => Some(path_number(e.select_or_fail(p)?.as_ref(), false).as_f64().ok_or_else(|| {
            rt(format!("The ToleratedFailurePercentagePath field refers to a value that is not a number: {p}"))
        })?),
        Some(Dynamic::Expr(t)) => {
            let st = states_value(env, effective, None, None);
            Some(t.eval(&e, Some(&st))?.as_f64().unwrap_or(0.0))
        }
    };
    let from_pct = pct.map(|p| ((p / 100.0) * n_items as f64).floor() as usize);
    Ok(match (count, from_pct) {
        (None, None) => None,
        (Some(c), None) => Some(c),
        (None, Some(p)) => Some(p),
        (Some(c), Some(p)) => Some(c.max(p)),
    })
}

/// The input of one Map iteration (`ItemSelector`/`Parameters` with `$$.Map.Item`).
/// `env.ctx` must carry the map item.
pub fn map_item_input(
    state: &State,
    spec: &MapSpec,
    effective: &Value,
    item: &Value,
    env: &Env<'_>,
) -> Result<Value, StateError> {
    match &spec.item_selector {
        None => Ok(item.clone()),
        Some(t) => {
            let e = env.with_input(effective);
            if state.query_language == QueryLanguage::Jsonata {
                let st = states_value(env, effective, None, None);
                t.eval(&e, Some(&st))
            } else {
                t.eval(&e, None)
            }
        }
    }
}

/// Retry/Catch decision for `err` raised by `state`. `attempts[i]` counts the retries
/// already made by retrier `i` (`attempts.len()` must equal `state.retry.len()`);
/// `random01` supplies the jitter draw in `[0, 1)`. `raw_input` is the state's raw input.
pub fn on_error(
    state: &State,
    err: StateError,
    attempts: &[u32],
    random01: f64,
    raw_input: &Value,
    env: &Env<'_>,
) -> ErrorDecision {
    for (i, r) in state.retry.iter().enumerate() {
        if error_matches(&r.error_equals, &err.error) {
            let done = attempts.get(i).copied().unwrap_or(0);
            if done >= r.max_attempts {
                break;
            }
            let mut delay = r.interval_seconds * r.backoff_rate.powi(done as i32);
            if let Some(m) = r.max_delay_seconds {
                delay = delay.min(m);
            }
            if r.jitter_full {
                delay *= random01.clamp(0.0, 1.0);
            }
            let delay_ms = (delay * 1000.0).clamp(0.0, 1.0e15) as u64;
            return ErrorDecision::Retry {
                retrier: i,
                delay_ms,
            };
        }
    }
    for c in &state.catch {
        if error_matches(&c.error_equals, &err.error) {
            let eo = err.to_error_output();
            if state.query_language == QueryLanguage::Jsonata {
                let st = states_value(env, raw_input, None, Some(&eo));
                let assign = match &c.assign {
                    Some(t) => match eval_assign(t, env, Some(&st)) {
                        Ok(a) => a,
                        Err(e) => return ErrorDecision::Fail(e),
                    },
                    None => Vec::new(),
                };
                let output = match &c.output {
                    Some(t) => match t.eval(env, Some(&st)) {
                        Ok(v) => v,
                        Err(e) => return ErrorDecision::Fail(e),
                    },
                    None => eo,
                };
                return ErrorDecision::Catch {
                    next: c.next,
                    output,
                    assign,
                };
            }
            let assign = match &c.assign {
                Some(t) => match eval_assign(t, &env.with_input(&eo), None) {
                    Ok(a) => a,
                    Err(e) => return ErrorDecision::Fail(e),
                },
                None => Vec::new(),
            };
            return match apply_result_path(&c.result_path, raw_input.clone(), eo) {
                Ok(output) => ErrorDecision::Catch {
                    next: c.next,
                    output,
                    assign,
                },
                Err(e) => ErrorDecision::Fail(e),
            };
        }
    }
    ErrorDecision::Fail(err)
}

/// Everything needed to hand a Task to its executor, computed from the raw state input:
/// `InputPath` -> `Parameters`/`Arguments`, the resolved timeouts and credentials, and for
/// `lambda:invoke` the function name and `Payload`.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedTask {
    /// Input after `InputPath`.
    pub effective: Value,
    /// Effective parameters (after `Parameters` / `Arguments`).
    pub parameters: Value,
    /// Plugin / function to call.
    pub target: String,
    /// What the operator receives.
    pub payload: Value,
    /// `TimeoutSeconds` / `TimeoutSecondsPath`.
    pub timeout_seconds: Option<u64>,
    /// `HeartbeatSeconds` / `HeartbeatSecondsPath`.
    pub heartbeat_seconds: Option<u64>,
    /// Evaluated `Credentials`.
    pub credentials: Option<Value>,
}

/// Prepares a Task invocation (pure). `env.ctx` should carry the task token for
/// `.waitForTaskToken` resources.
pub fn prepare_task(
    st: &State,
    t: &TaskSpec,
    raw: Value,
    env: &Env<'_>,
) -> Result<PreparedTask, StateError> {
    let effective = effective_input(st, raw, env)?;
    let parameters = payload(st, effective.clone(), env)?;
    let resolve = |d: &Option<Dynamic<u64>>, f: &str| -> Result<Option<u64>, StateError> {
        match d {
            None => Ok(None),
            Some(Dynamic::Value(n)) => Ok(Some(*n)),
            Some(Dynamic::Path(p)) => {
                let e = env.with_input(&effective);
                let v = e.select_or_fail(p)?;
                path_number(v.as_ref(), true).as_u64().filter(|n| *n > 0).map(Some).ok_or_else(|| {
                    rt(format!(
                        "The {f}Path field refers to value {} which is not a valid positive integer: {p}",
                        v
                    ))
                })
            }
            Some(Dynamic::Expr(tpl)) => {
                let stv = states_value(env, &effective, None, None);
                let v = tpl.eval(&env.with_input(&effective), Some(&stv))?;
                v.as_u64().filter(|n| *n > 0).map(Some).ok_or_else(|| {
                    StateError::new(
                        names::QUERY_EVALUATION_ERROR,
                        format!("The {f} field must evaluate to a positive integer, but was: {v}"),
                    )
                })
            }
        }
    };
    let timeout_seconds = resolve(&t.timeout_seconds, "TimeoutSeconds")?;
    let heartbeat_seconds = resolve(&t.heartbeat_seconds, "HeartbeatSeconds")?;
    let credentials = match &t.credentials {
        Some(c) => {
            let stv = states_value(env, &effective, None, None);
            Some(c.eval(&env.with_input(&effective), Some(&stv))?)
        }
        None => None,
    };
    let (target, payload) = t.resource.target(&parameters);
    Ok(PreparedTask {
        effective,
        parameters,
        target,
        payload,
        timeout_seconds,
        heartbeat_seconds,
        credentials,
    })
}

/// The next state after a state finished normally (`None`: the machine ends).
pub fn next_state(state: &State) -> Option<usize> {
    match state.transition {
        Transition::Next(n) => Some(n),
        Transition::End => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching_rules() {
        let all = vec![names::ALL.to_string()];
        assert!(error_matches(&all, "Custom"));
        assert!(error_matches(&all, names::TIMEOUT));
        assert!(!error_matches(&all, names::RUNTIME));
        let tf = vec![names::TASK_FAILED.to_string()];
        assert!(error_matches(&tf, "Lambda.Unknown"));
        assert!(!error_matches(&tf, names::TIMEOUT));
    }
}
