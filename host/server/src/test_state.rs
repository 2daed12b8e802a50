//! TestState: one state run in isolation, as AWS's TestState API does.
//!
//! The request's `definition` is one state (or a whole state machine with `stateName`). The
//! state runs once inside a small machine of its own: every state it can go to (`Next`,
//! `Default`, each Choice rule's and each catcher's `Next`) is a `Succeed` stand-in, so the
//! run ends at the first transition and its output is the tested state's output. `Retry` and
//! `Catch` are not run: an error is answered with what they would decide (`RETRIABLE` when a
//! retrier matches, `CAUGHT_ERROR` with the catcher's output and next state, else `FAILED`).
//! Wait states do not wait (a clock of their own).
//!
//! A Task runs its operator in the sandbox exactly as an Express execution does, under the
//! grant of `roleArn` (its PassRole is decided by [`crate::access::plan`]). Only operators that
//! answer at once run (`weft:plugin:*`, Lambda functions, `lambda:invoke`, the built-in HTTP
//! Task `http:invoke`, whose connection secrets stay redacted even with `revealSecrets`):
//! integrations that start executions or DAG runs, activities, `.sync` and
//! `.waitForTaskToken` are refused, as TestState does not run them either.
//!
//! `inspectionLevel` `DEBUG` and `TRACE` add `inspectionData`: the input, `afterInputPath`,
//! `afterParameters` (`afterArguments` for JSONata), the `result`, `afterResultSelector` and
//! `afterResultPath`, each as JSON text.

use crate::error::ApiError;
use crate::records::*;
use crate::runner::ExecutionTaskRunner;
use crate::AppState;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use weft_asl::env::{Context, Env, ExecutionInfo, Variables};
use weft_asl::model::{QueryLanguage, StateKind};
use weft_asl::resource::{IntegrationPattern, Resource, ResourceKind};
use weft_asl::step::{self, ErrorDecision};
use weft_asl::{FakeClock, HistoryEvent, Hooks, RunOptions, StateError};

/// The execution name the run gets (its ARN is an Express ARN of a machine named like it).
const RUN_NAME: &str = "TestState";
/// The most state transitions one TestState run makes (a Map's iterations count).
const MAX_TRANSITIONS: u64 = 100_000;
/// How deep the resource check descends into nested states (the parser bounds depth first).
const MAX_DEPTH: usize = 64;

fn invalid(msg: impl Into<String>) -> ApiError {
    ApiError::new(
        "InvalidDefinition",
        format!("Invalid State Machine Definition: '{}'", msg.into()),
    )
}

/// The tested state: its name and its JSON, and the top-level `QueryLanguage` it inherits.
fn pick_state(
    def: Value,
    state_name: Option<&str>,
) -> Result<(String, Value, Option<Value>), ApiError> {
    let Value::Object(mut m) = def else {
        return Err(invalid("the definition must be a JSON object (one state)"));
    };
    if let Some(states) = m.remove("States") {
        let name = match state_name {
            Some(n) => n.to_string(),
            None => m
                .get("StartAt")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    invalid("a state machine definition needs `stateName` or `StartAt`")
                })?
                .to_string(),
        };
        let st = states.get(&name).cloned().ok_or_else(|| {
            ApiError::validation(format!(
                "stateName '{name}' is not a state of the definition"
            ))
        })?;
        return Ok((name, st, m.remove("QueryLanguage")));
    }
    if state_name.is_some() {
        return Err(ApiError::validation(
            "stateName needs a whole state machine definition (with States)",
        ));
    }
    if !m.contains_key("Type") {
        return Err(invalid("/Type: a state needs a Type"));
    }
    Ok(("TestState".to_string(), Value::Object(m), None))
}

/// The states `st` can go to.
fn targets(st: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut push = |v: Option<&Value>| {
        if let Some(Value::String(s)) = v {
            if !out.contains(s) {
                out.push(s.clone());
            }
        }
    };
    push(st.get("Next"));
    push(st.get("Default"));
    for list in ["Choices", "Catch"] {
        if let Some(Value::Array(a)) = st.get(list) {
            for r in a {
                push(r.get("Next"));
            }
        }
    }
    out
}

/// Replaces the transitions of `st` that point to itself by `stand_in`.
fn retarget_self(st: &mut Value, name: &str, stand_in: &str) {
    let fix = |v: &mut Value| {
        if let Some(n) = v.get_mut("Next") {
            if n == name {
                *n = json!(stand_in);
            }
        }
    };
    fix(st);
    if st.get("Default").is_some_and(|d| d == name) {
        st["Default"] = json!(stand_in);
    }
    for list in ["Choices", "Catch"] {
        if let Some(Value::Array(a)) = st.get_mut(list) {
            a.iter_mut().for_each(fix);
        }
    }
}

/// A machine running `st` once: Succeed stand-ins for its targets. Returns the machine and the
/// stand-in names mapped to the targets they stand for.
fn harness(name: &str, mut st: Value, ql: Option<&Value>) -> (Value, BTreeMap<String, String>) {
    let mut map = BTreeMap::new();
    let targets = targets(&st);
    // a short name (state names are at most 80 characters) that is no other target
    let mut stand_in_self = "next".to_string();
    let mut i = 0;
    while targets.contains(&stand_in_self) || stand_in_self == name {
        i += 1;
        stand_in_self = format!("next{i}");
    }
    if targets.iter().any(|t| t == name) {
        retarget_self(&mut st, name, &stand_in_self);
    }
    let mut states = Map::new();
    states.insert(name.to_string(), st);
    for t in targets {
        let stub = if t == name {
            stand_in_self.clone()
        } else {
            t.clone()
        };
        states.insert(stub.clone(), json!({"Type": "Succeed"}));
        map.insert(stub, t);
    }
    let mut m = json!({"StartAt": name, "States": states});
    if let Some(q) = ql {
        m["QueryLanguage"] = q.clone();
    }
    (m, map)
}

/// Refuses Task resources TestState does not run (see the module documentation).
fn check_tasks(machine: &Value, depth: usize) -> Result<(), ApiError> {
    let Some(states) = machine.get("States").and_then(Value::as_object) else {
        return Ok(());
    };
    if depth > MAX_DEPTH {
        return Err(invalid("states nested too deeply"));
    }
    for (name, st) in states {
        if st.get("Type").and_then(Value::as_str) == Some("Task") {
            if let Some(raw) = st.get("Resource").and_then(Value::as_str) {
                if let Ok(r) = Resource::parse(raw) {
                    let runs = (matches!(
                        r.kind,
                        ResourceKind::Plugin { .. }
                            | ResourceKind::LambdaInvoke
                            | ResourceKind::LambdaFunction { .. }
                    ) || weft_engine::http_task::is_http_invoke(&r.kind))
                        && r.pattern == IntegrationPattern::RequestResponse;
                    if !runs {
                        return Err(ApiError::validation(format!(
                            "TestState runs operators that answer at once (weft:plugin:NAME, Lambda functions, lambda:invoke, http:invoke); the state '{name}' uses '{raw}'"
                        )));
                    }
                }
            }
        }
        if let Some(branches) = st.get("Branches").and_then(Value::as_array) {
            for b in branches {
                check_tasks(b, depth + 1)?;
            }
        }
        for k in ["ItemProcessor", "Iterator"] {
            if let Some(p) = st.get(k) {
                check_tasks(p, depth + 1)?;
            }
        }
    }
    Ok(())
}

/// Strips the harness prefix (`/States/NAME`) off validation pointers of a single state.
fn parse_harness(
    machine: &Value,
    name: &str,
    single: bool,
) -> Result<weft_asl::StateMachine, ApiError> {
    weft_asl::parse_value(machine).map_err(|errs| {
        let prefix = format!("/States/{}", name.replace('~', "~0").replace('/', "~1"));
        let lines: Vec<String> = errs
            .errors
            .iter()
            .map(|e| {
                let p = if single {
                    e.pointer.strip_prefix(&prefix).unwrap_or(&e.pointer)
                } else {
                    &e.pointer
                };
                format!("{}: {}", if p.is_empty() { "/" } else { p }, e.reason)
            })
            .collect();
        invalid(lines.join("; "))
    })
}

fn inspection_level(req: &Value) -> Result<u8, ApiError> {
    match crate::api::opt_str(req, "inspectionLevel")? {
        None | Some("INFO") => Ok(0),
        Some("DEBUG") => Ok(1),
        Some("TRACE") => Ok(2),
        Some(l) => Err(ApiError::validation(format!(
            "1 validation error detected: Value '{l}' at 'inspectionLevel' failed to satisfy constraint: Member must satisfy enum value set: [INFO, DEBUG, TRACE]"
        ))),
    }
}

fn text(v: &Value) -> Value {
    json!(v.to_string())
}

pub(crate) async fn test_state(app: &Arc<AppState>, req: &Value) -> Result<Value, ApiError> {
    let definition = crate::api::req_str(req, "definition")?;
    let role = crate::api::opt_str(req, "roleArn")?
        .unwrap_or(crate::api::DEFAULT_ROLE)
        .to_string();
    let level = inspection_level(req)?;
    let input_text = crate::api::opt_str(req, "input")?
        .unwrap_or("{}")
        .to_string();
    if input_text.len() > crate::api::MAX_INPUT {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value at 'input' failed to satisfy constraint: Member must have length less than or equal to {}",
            crate::api::MAX_INPUT
        )));
    }
    let input: Value = serde_json::from_str(&input_text).map_err(|e| {
        ApiError::new(
            "InvalidExecutionInput",
            format!("Invalid State Machine Execution Input: '{e}'"),
        )
    })?;
    let def: Value =
        serde_json::from_str(definition).map_err(|e| invalid(format!("/: not valid JSON: {e}")))?;
    let state_name = crate::api::opt_str(req, "stateName")?;
    let single = def.get("States").is_none();
    let (name, st, ql) = pick_state(def, state_name)?;
    let (model_json, stand_ins) = harness(&name, st.clone(), ql.as_ref());
    check_tasks(&model_json, 0)?;
    let model = parse_harness(&model_json, &name, single)?;
    // the run: no Retry, no Catch (their decision is answered instead)
    let mut run_state = st;
    if let Some(o) = run_state.as_object_mut() {
        o.remove("Retry");
        o.remove("Catch");
    }
    let (run_json, _) = harness(&name, run_state, ql.as_ref());
    let run_sm = parse_harness(&run_json, &name, single)?;

    let app2 = app.clone();
    let (role2, name2, input2) = (role.clone(), name.clone(), input.clone());
    let definition_text = run_json.to_string();
    let (r, events) = tokio::task::spawn_blocking(move || {
        run_once(&app2, &run_sm, &definition_text, &role2, &name2, input2)
    })
    .await
    .map_err(|e| ApiError::internal(format!("TestState panicked: {e}")))?;

    let sm_name = format!("{RUN_NAME}-{name}");
    let info = ExecutionInfo {
        execution: json!({"Id": express_arn(RUN_NAME, RUN_NAME), "Input": input, "Name": RUN_NAME,
            "RoleArn": role, "StartTime": weft_asl::env::format_time(now_ms()), "RedriveCount": 0}),
        state_machine: json!({"Id": sm_arn(RUN_NAME), "Name": sm_name}),
    };
    let ctx = Context::new(&info, &name, now_ms());
    let vars = Variables::new();
    let env = Env {
        input: &input,
        ctx: &ctx,
        vars: &vars,
    };
    let state = model
        .state(&name)
        .ok_or_else(|| ApiError::internal("the tested state is missing from its harness"))?;
    let name_of = |i: usize| -> Option<String> {
        let n = &model.states.get(i)?.name;
        Some(stand_ins.get(n).cloned().unwrap_or_else(|| n.clone()))
    };
    let mut out = Map::new();
    match &r {
        Ok(output) => {
            out.insert("status".into(), json!("SUCCEEDED"));
            out.insert("output".into(), text(output));
            let next = events
                .iter()
                .rev()
                .find(|e| e.event_type == "SucceedStateEntered")
                .and_then(|e| e.details.get("name").and_then(Value::as_str))
                .and_then(|n| stand_ins.get(n).cloned());
            if let Some(n) = next {
                out.insert("nextState".into(), json!(n));
            }
        }
        Err(e) => {
            out.insert("error".into(), json!(e.error));
            if let Some(c) = &e.cause {
                out.insert("cause".into(), json!(c));
            }
            let attempts = vec![0; state.retry.len()];
            match step::on_error(state, e.clone(), &attempts, 0.0, &input, &env) {
                ErrorDecision::Retry { .. } => {
                    out.insert("status".into(), json!("RETRIABLE"));
                }
                ErrorDecision::Catch { next, output, .. } => {
                    out.insert("status".into(), json!("CAUGHT_ERROR"));
                    out.insert("output".into(), text(&output));
                    if let Some(n) = name_of(next) {
                        out.insert("nextState".into(), json!(n));
                    }
                }
                ErrorDecision::Fail(_) => {
                    out.insert("status".into(), json!("FAILED"));
                }
            }
        }
    }
    if level > 0 {
        out.insert(
            "inspectionData".into(),
            Value::Object(inspect(state, &input, &events, &env)),
        );
    }
    Ok(Value::Object(out))
}

/// The intermediate values of the tested state, as far as it got.
fn inspect(
    state: &weft_asl::model::State,
    input: &Value,
    events: &[HistoryEvent],
    env: &Env<'_>,
) -> Map<String, Value> {
    let mut d = Map::new();
    d.insert("input".into(), text(input));
    let is_task = matches!(state.kind, StateKind::Task(_));
    let task_event = |ty: &str, field: &str| -> Option<Value> {
        let ev = events.iter().find(|e| e.event_type == ty)?;
        serde_json::from_str(ev.details.get(field)?.as_str()?).ok()
    };
    if state.query_language == QueryLanguage::Jsonata {
        if state.arguments.is_some() {
            let args = if is_task {
                task_event("TaskScheduled", "parameters")
            } else {
                step::payload(state, input.clone(), env).ok()
            };
            if let Some(a) = args {
                d.insert("afterArguments".into(), text(&a));
            }
        }
        if is_task {
            if let Some(r) = task_event("TaskSucceeded", "output") {
                d.insert("result".into(), text(&r));
            }
        }
        return d;
    }
    if matches!(state.kind, StateKind::Fail { .. }) {
        return d;
    }
    let Ok(effective) = step::effective_input(state, input.clone(), env) else {
        return d;
    };
    d.insert("afterInputPath".into(), text(&effective));
    let result = match &state.kind {
        StateKind::Task(_) => {
            if let Some(p) = task_event("TaskScheduled", "parameters") {
                d.insert("afterParameters".into(), text(&p));
            }
            task_event("TaskSucceeded", "output")
        }
        StateKind::Pass { .. } => {
            if let Ok(p) = step::payload(state, effective.clone(), env) {
                d.insert("afterParameters".into(), text(&p));
            }
            step::pass_result(state, effective, env).ok()
        }
        _ => None,
    };
    let Some(result) = result else {
        return d;
    };
    d.insert("result".into(), text(&result));
    let selected = match &state.result_selector {
        Some(t) => match t.eval(&env.with_input(&result), None) {
            Ok(v) => v,
            Err(_) => return d,
        },
        None => result,
    };
    d.insert("afterResultSelector".into(), text(&selected));
    if let Ok(v) = step::apply_result_path(&state.result_path, input.clone(), selected) {
        d.insert("afterResultPath".into(), text(&v));
    }
    d
}

/// Runs the harness once on this (blocking) thread with the task runner of Express runs.
fn run_once(
    app: &Arc<AppState>,
    sm: &weft_asl::StateMachine,
    definition: &str,
    role: &str,
    name: &str,
    input: Value,
) -> (Result<Value, StateError>, Vec<HistoryEvent>) {
    let mut events: Vec<HistoryEvent> = Vec::new();
    let exec_arn = express_arn(RUN_NAME, RUN_NAME);
    let execution_role = match crate::runtime::execution_role(app, role) {
        Ok(r) => r,
        Err(e) => return (Err(e), events),
    };
    let runner = ExecutionTaskRunner {
        pins: Default::default(),
        rt: app.rt.clone(),
        execution_role,
        ctl: None,
        trace_header: None,
        role_arn: role.to_string(),
        execution_arn: exec_arn.clone(),
        static_roles: crate::access::static_roles(definition),
        // TestState runs a definition of no state machine: `$WEFT_HOME`'s map serves it
        resource_maps: weft_engine::resource_map::ResourceMaps::new(vec![app.home_map.clone()]),
    };
    let opts = RunOptions {
        execution_name: RUN_NAME.to_string(),
        state_machine_name: format!("{RUN_NAME}-{name}"),
        role_arn: role.to_string(),
        execution_arn: Some(exec_arn),
        max_transitions: Some(MAX_TRANSITIONS),
        ..RunOptions::default()
    };
    // the clock is the run's own (Waits do not wait), so a timeout would count that time:
    // the run is bounded by its transitions and each Task by its sandbox deadline instead
    let mut sm = sm.clone();
    sm.timeout_seconds = None;
    let clock = FakeClock::default();
    let hooks = Hooks {
        history: Some(&mut events),
        item_reader: None,
        result_writer: None,
        control: None,
        observer: None,
    };
    let r = weft_asl::run_express(&sm, input, &opts, &runner, &clock, hooks);
    (r, events)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn harness_stands_in_for_every_target() {
        let st = json!({"Type": "Choice", "Choices": [
            {"Variable": "$.x", "NumericEquals": 1, "Next": "One"},
            {"Variable": "$.x", "NumericEquals": 2, "Next": "Again"}], "Default": "Other"});
        let (m, map) = harness("Again", st, None);
        let states = m["States"].as_object().unwrap();
        assert_eq!(states.len(), 4, "{m}");
        assert_eq!(m["States"]["Again"]["Choices"][1]["Next"], "next");
        assert_eq!(map["next"], "Again");
        assert_eq!(map["One"], "One");
        assert!(weft_asl::parse_value(&m).is_ok());
        let long = "L".repeat(80);
        let st = json!({"Type": "Pass", "Next": long});
        let (m, map) = harness(&long, st, None);
        assert!(weft_asl::parse_value(&m).is_ok(), "{m}");
        assert_eq!(map["next"], long);
    }

    #[test]
    fn only_immediate_operators_run() {
        for r in [
            "arn:aws:states:::states:startExecution.sync",
            "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
            "arn:aws:states:us-east-1:000000000000:activity:a",
            "weft:dag:d",
        ] {
            let m = json!({"States": {"T": {"Type": "Task", "Resource": r, "End": true}}});
            assert!(check_tasks(&m, 0).is_err(), "{r}");
        }
        let m =
            json!({"States": {"T": {"Type": "Task", "Resource": "weft:plugin:echo", "End": true}}});
        assert!(check_tasks(&m, 0).is_ok());
    }
}
