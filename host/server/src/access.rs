//! Which resources a Step Functions API request touches, and whether its caller may touch them.
//!
//! Every ARN a request carries is parsed once into an [`Arn`] (partition `aws`, this server's
//! region and account, a known resource type, AWS-valid names, a canonical qualifier) and
//! written back into the request in its canonical spelling: the string that is authorised is
//! the string the action then uses. Malformed ARNs are refused with AWS's `InvalidArn`.
//!
//! [`plan`] holds the table of the API: for each action, which request fields name resources
//! and which IAM action each needs. Only those fields are read, so an extra field (a decoy
//! `executionArn` on StartExecution) can change neither what is authorised nor what is acted
//! on. Every role a request passes (`roleArn`, each static `Credentials.RoleArn` of the
//! definition, at any depth) is an `iam:PassRole` decision on its canonical spelling
//! (`weft:role:NAME`, see [`weft_engine::roles::canonical_role`]).
//!
//! Versions and aliases are authorised as AWS does, on the state machine's ARN; an explicit
//! Deny on the qualified ARN (`...:stateMachine:NAME:3`, `...:NAME:prod`) also denies, which
//! stands in for AWS's `states:StateMachineQualifier` condition key.
//!
//! `StartExecution` and `StartSyncExecution` take Step Functions Local's `ARN#TestCase` (a
//! mock test case, see [`weft_asl::mock`]): the suffix is split off before the ARN is parsed,
//! so what is authorised and acted on is the canonical ARN without it, and the test case
//! travels in the request field [`TEST_CASE_FIELD`], which only [`plan`] writes (a request's
//! own value of it is dropped).
//!
//! List actions are authorised on what they list (`*` for ListStateMachines and
//! ListActivities, the state machine for ListExecutions, ListStateMachineVersions and
//! ListStateMachineAliases), and each item is shown only when the caller may describe it
//! (DescribeStateMachine, DescribeExecution, DescribeActivity, DescribeStateMachineAlias).

use crate::auth::Principal;
use crate::error::ApiError;
use crate::records::valid_name;
use crate::AppState;
use serde_json::Value;
use std::sync::atomic::{AtomicUsize, Ordering};
use weft_sandbox::Effect;

use weft_engine::standard::arn::invalid;
pub use weft_engine::standard::arn::{Arn, Qualifier};
pub use weft_engine::standard::definition_roles::{definition_roles, static_roles, RoleRef};

/// The request field that carries the test case split off `stateMachineArn` (`ARN#TestCase`)
/// from [`plan`] to the action; never taken from a caller.
pub const TEST_CASE_FIELD: &str = "weft:testCase";

/// Splits Step Functions Local's `#TestCase` suffix off `stateMachineArn`, writing the ARN
/// without it back into the request. The test case must be a valid name (no `#`, `/`, `%`,
/// ...), and the server must have a mock configuration.
fn split_test_case(app: &AppState, req: &mut Value) -> Result<Option<String>, ApiError> {
    let Some(Value::String(s)) = req.get("stateMachineArn") else {
        return Ok(None);
    };
    let Some((base, case)) = s.split_once('#') else {
        return Ok(None);
    };
    let (base, case) = (base.to_string(), case.to_string());
    valid_name(&case).map_err(|m| {
        ApiError::validation(format!(
            "the test case after '#' in stateMachineArn is not a valid name: {m}"
        ))
    })?;
    if app.mocks.is_none() {
        return Err(ApiError::validation(format!(
            "stateMachineArn names the mock test case '{case}', but this server has no mock configuration (weft server --mock-config FILE, or SFN_MOCK_CONFIG)"
        )));
    }
    req["stateMachineArn"] = Value::String(base);
    Ok(Some(case))
}

/// One decision a request needs: `action` allowed on `resource`, and no explicit Deny of it on
/// `also_denied_on` (the qualified ARN of a version or alias).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    pub action: String,
    pub resource: String,
    pub also_denied_on: Option<String>,
}

impl Need {
    fn on(action: &str, resource: impl Into<String>) -> Self {
        Need {
            action: action.to_string(),
            resource: resource.into(),
            also_denied_on: None,
        }
    }

    fn on_arn(action: &str, arn: &Arn) -> Self {
        let canonical = arn.canonical();
        let base = arn.unqualified();
        Need {
            action: action.to_string(),
            also_denied_on: (canonical != base).then_some(canonical),
            resource: base,
        }
    }
}

/// What a request needs: its decisions, and for list actions the action each listed item
/// needs to be shown.
#[derive(Debug, Default)]
pub struct Plan {
    pub needs: Vec<Need>,
    pub item_action: Option<&'static str>,
}

impl Plan {
    fn need(&mut self, n: Need) {
        if !self.needs.contains(&n) {
            self.needs.push(n);
        }
    }

    /// The resources, for the call's audit record.
    pub fn resources(&self) -> String {
        let mut out: Vec<&str> = Vec::new();
        for n in &self.needs {
            let r = n.also_denied_on.as_deref().unwrap_or(&n.resource);
            if !out.contains(&r) {
                out.push(r);
            }
        }
        if out.is_empty() {
            "*".into()
        } else {
            out.join(", ")
        }
    }
}

fn missing(field: &str) -> ApiError {
    ApiError::validation(format!(
        "1 validation error detected: Value null at '{field}' failed to satisfy constraint: Member must not be null"
    ))
}

/// What kind of ARN a field takes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Want {
    /// A state machine, unqualified.
    StateMachine,
    /// A state machine, possibly a version or an alias.
    AnyStateMachine,
    Version,
    Alias,
    Execution,
    Activity,
    /// What has tags: an unqualified state machine or an activity.
    Taggable,
}

/// Reads the ARN in `v[field]` (`None` when absent), checks its kind, and writes it back in
/// its canonical spelling.
fn arn_at(v: &mut Value, field: &str, want: Want, at: &str) -> Result<Option<Arn>, ApiError> {
    let s = match v.get(field) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s.clone(),
        Some(_) => {
            return Err(ApiError::new(
                "SerializationException",
                format!("`{at}{field}` must be a string"),
            ))
        }
    };
    let arn = Arn::parse(&s)?;
    let ok = matches!(
        (&arn, want),
        (
            Arn::StateMachine {
                qualifier: None,
                ..
            },
            Want::StateMachine
        ) | (Arn::StateMachine { .. }, Want::AnyStateMachine)
            | (
                Arn::StateMachine {
                    qualifier: Some(Qualifier::Version(_)),
                    ..
                },
                Want::Version
            )
            | (
                Arn::StateMachine {
                    qualifier: Some(Qualifier::Alias(_)),
                    ..
                },
                Want::Alias
            )
            | (Arn::Execution { .. }, Want::Execution)
            | (Arn::Activity { .. }, Want::Activity)
            | (
                Arn::StateMachine {
                    qualifier: None,
                    ..
                } | Arn::Activity { .. },
                Want::Taggable
            )
    );
    if !ok {
        let what = match want {
            Want::StateMachine => "an unqualified state machine ARN",
            Want::AnyStateMachine => "a state machine, version or alias ARN",
            Want::Version => "a state machine version ARN (NAME:N)",
            Want::Alias => "a state machine alias ARN (NAME:ALIAS)",
            Want::Execution => "an execution ARN",
            Want::Activity => "an activity ARN",
            Want::Taggable => "an unqualified state machine ARN or an activity ARN",
        };
        return Err(invalid(&s, &format!("`{at}{field}` must be {what}")).into());
    }
    v[field] = Value::String(arn.canonical());
    Ok(Some(arn))
}

fn required(v: &mut Value, field: &str, want: Want) -> Result<Arn, ApiError> {
    arn_at(v, field, want, "")?.ok_or_else(|| missing(field))
}

fn name_field<'a>(req: &'a Value, field: &str) -> Result<&'a str, ApiError> {
    match req.get(field) {
        Some(Value::String(s)) => Ok(s),
        None | Some(Value::Null) => Err(missing(field)),
        Some(_) => Err(ApiError::new(
            "SerializationException",
            format!("`{field}` must be a string"),
        )),
    }
}

fn publish(req: &Value) -> bool {
    req.get("publish") == Some(&Value::Bool(true))
}

/// The `iam:PassRole` decision for a role reference (`at` names where it was found).
fn pass_role(plan: &mut Plan, reference: &str, at: &str) -> Result<(), ApiError> {
    let role = weft_engine::roles::canonical_role(reference).ok_or_else(|| {
        ApiError::new(
            "InvalidArn",
            format!(
                "Invalid Arn: '{at}: `{reference}` is not a role (weft:role:NAME or arn:aws:iam::ACCOUNT:role/NAME)'"
            ),
        )
    })?;
    plan.need(Need::on("iam:PassRole", role));
    Ok(())
}

fn definition_pass_roles(plan: &mut Plan, req: &Value) -> Result<(), ApiError> {
    let Some(Value::String(text)) = req.get("definition") else {
        return Ok(()); // the action refuses a missing or non-string definition itself
    };
    let Ok(def) = serde_json::from_str::<Value>(text) else {
        return Ok(()); // not JSON: refused as InvalidDefinition, nothing runs
    };
    for (at, r) in definition_roles(&def) {
        if let RoleRef::Static(s) = r {
            pass_role(plan, &s, &format!("definition{at}")).map_err(|e| {
                ApiError::new(
                    "InvalidDefinition",
                    format!("Invalid State Machine Definition: '{}'", e.message),
                )
            })?;
        }
    }
    Ok(())
}

/// The decisions `action` needs for `req`; rewrites every ARN it reads to its canonical
/// spelling. An unknown action is refused here (nothing is authorised for it).
pub fn plan(app: &AppState, action: &str, req: &mut Value) -> Result<Plan, ApiError> {
    let mut p = Plan::default();
    let a = |name: &str| format!("states:{name}");
    if let Some(o) = req.as_object_mut() {
        o.remove(TEST_CASE_FIELD);
    }
    let test_case = match action {
        "StartExecution" | "StartSyncExecution" => split_test_case(app, req)?,
        _ => None,
    };
    match action {
        "CreateStateMachine" => {
            let name = name_field(req, "name")?;
            valid_name(name).map_err(|m| ApiError::new("InvalidName", m))?;
            let arn = crate::records::sm_arn(name);
            p.need(Need::on(&a(action), &arn));
            if publish(req) {
                p.need(Need::on("states:PublishStateMachineVersion", &arn));
            }
            let role = match req.get("roleArn") {
                Some(Value::String(r)) => r.clone(),
                None | Some(Value::Null) => crate::api::DEFAULT_ROLE.to_string(),
                Some(_) => {
                    return Err(ApiError::new(
                        "SerializationException",
                        "`roleArn` must be a string",
                    ))
                }
            };
            pass_role(&mut p, &role, "roleArn")?;
            definition_pass_roles(&mut p, req)?;
        }
        "UpdateStateMachine" => {
            let arn = required(req, "stateMachineArn", Want::StateMachine)?;
            p.need(Need::on_arn(&a(action), &arn));
            if publish(req) {
                p.need(Need::on_arn("states:PublishStateMachineVersion", &arn));
            }
            match req.get("roleArn") {
                Some(Value::String(r)) => {
                    let r = r.clone();
                    pass_role(&mut p, &r, "roleArn")?
                }
                None | Some(Value::Null) => {}
                Some(_) => {
                    return Err(ApiError::new(
                        "SerializationException",
                        "`roleArn` must be a string",
                    ))
                }
            }
            definition_pass_roles(&mut p, req)?;
        }
        "DescribeStateMachine" | "StartExecution" => {
            let arn = required(req, "stateMachineArn", Want::AnyStateMachine)?;
            p.need(Need::on_arn(&a(action), &arn));
        }
        "DeleteStateMachine" | "StartSyncExecution" | "PublishStateMachineVersion" => {
            let arn = required(req, "stateMachineArn", Want::StateMachine)?;
            p.need(Need::on_arn(&a(action), &arn));
        }
        "ListStateMachines" => {
            p.need(Need::on(&a(action), "*"));
            p.item_action = Some("states:DescribeStateMachine");
        }
        "ListExecutions" => {
            if req.get("mapRunArn").is_some_and(|v| !v.is_null()) {
                return Err(ApiError::validation("weft does not support mapRunArn yet"));
            }
            let arn = arn_at(req, "stateMachineArn", Want::StateMachine, "")?.ok_or_else(|| {
                ApiError::validation("Must provide a StateMachine ARN or MapRun ARN")
            })?;
            p.need(Need::on_arn(&a(action), &arn));
            p.item_action = Some("states:DescribeExecution");
        }
        "ListStateMachineVersions" => {
            let arn = required(req, "stateMachineArn", Want::StateMachine)?;
            p.need(Need::on_arn(&a(action), &arn));
            p.item_action = Some("states:DescribeStateMachine");
        }
        "ListStateMachineAliases" => {
            let arn = required(req, "stateMachineArn", Want::StateMachine)?;
            p.need(Need::on_arn(&a(action), &arn));
            p.item_action = Some("states:DescribeStateMachineAlias");
        }
        "DescribeExecution" | "GetExecutionHistory" | "StopExecution" | "RedriveExecution" => {
            let arn = required(req, "executionArn", Want::Execution)?;
            p.need(Need::on_arn(&a(action), &arn));
        }
        "SendTaskSuccess" | "SendTaskFailure" | "SendTaskHeartbeat" => {
            let token = name_field(req, "taskToken")?;
            if token.is_empty() || token.len() > 1024 {
                return Err(ApiError::new(
                    "InvalidToken",
                    "Invalid Token: a task token is 1 to 1024 characters",
                ));
            }
            // the token's execution is the resource; an unknown token touches nothing
            let Some(rec) = app.rt.token(token)? else {
                return Err(ApiError::new(
                    "TaskDoesNotExist",
                    "Task Does Not Exist: no task is waiting for this token (it finished, timed out, or was never issued)",
                ));
            };
            let arn = Arn::parse(&rec.execution)?;
            p.need(Need::on_arn(&a(action), &arn));
        }
        "CreateActivity" => {
            let name = name_field(req, "name")?;
            valid_name(name).map_err(|m| ApiError::new("InvalidName", m))?;
            let arn = Arn::Activity {
                name: name.to_string(),
            };
            p.need(Need::on_arn(&a(action), &arn));
        }
        "DeleteActivity" | "DescribeActivity" | "GetActivityTask" => {
            let arn = required(req, "activityArn", Want::Activity)?;
            p.need(Need::on_arn(&a(action), &arn));
        }
        "ListActivities" => {
            p.need(Need::on(&a(action), "*"));
            p.item_action = Some("states:DescribeActivity");
        }
        "TagResource" | "UntagResource" | "ListTagsForResource" => {
            let arn = required(req, "resourceArn", Want::Taggable)?;
            p.need(Need::on_arn(&a(action), &arn));
        }
        "DescribeMapRun" | "UpdateMapRun" => {
            let arn = name_field(req, "mapRunArn")?;
            crate::map_runs::check_arn(arn)?;
            p.need(Need::on(&a(action), arn));
        }
        "ListMapRuns" => {
            let arn = required(req, "executionArn", Want::Execution)?;
            p.need(Need::on_arn(&a(action), &arn));
        }
        "DescribeStateMachineForExecution" => {
            let arn = required(req, "executionArn", Want::Execution)?;
            p.need(Need::on_arn(&a(action), &arn));
        }
        "ValidateStateMachineDefinition" => p.need(Need::on(&a(action), "*")),
        "TestState" => {
            // as AWS: no resource of its own; the role it runs under is passed
            p.need(Need::on(&a(action), "*"));
            let role = match req.get("roleArn") {
                Some(Value::String(r)) => r.clone(),
                None | Some(Value::Null) => crate::api::DEFAULT_ROLE.to_string(),
                Some(_) => {
                    return Err(ApiError::new(
                        "SerializationException",
                        "`roleArn` must be a string",
                    ))
                }
            };
            pass_role(&mut p, &role, "roleArn")?;
            if req.get("revealSecrets") == Some(&Value::Bool(true)) {
                p.need(Need::on(&a("RevealSecrets"), "*"));
            }
            if let Some(Value::String(text)) = req.get("definition") {
                if let Ok(def) = serde_json::from_str::<Value>(text) {
                    // one state, or a whole machine with `stateName`
                    let machine = if def.get("States").is_some() {
                        def
                    } else {
                        serde_json::json!({"States": {"S": def}})
                    };
                    for (at, r) in definition_roles(&machine) {
                        if let RoleRef::Static(s) = r {
                            pass_role(&mut p, &s, &format!("definition{at}"))?;
                        }
                    }
                }
            }
        }
        "DeleteStateMachineVersion" => {
            let arn = required(req, "stateMachineVersionArn", Want::Version)?;
            p.need(Need::on_arn(&a(action), &arn));
        }
        "DescribeStateMachineAlias" | "DeleteStateMachineAlias" => {
            let arn = required(req, "stateMachineAliasArn", Want::Alias)?;
            p.need(Need::on_arn(&a(action), &arn));
        }
        "CreateStateMachineAlias" | "UpdateStateMachineAlias" => {
            let alias = if action == "CreateStateMachineAlias" {
                let n = name_field(req, "name")?.to_string();
                valid_name(&n).map_err(|m| ApiError::new("InvalidName", m))?;
                Some(n)
            } else {
                let arn = required(req, "stateMachineAliasArn", Want::Alias)?;
                p.need(Need::on_arn(&a(action), &arn));
                None
            };
            let mut versions = Vec::new();
            if let Some(Value::Array(list)) = req.get_mut("routingConfiguration") {
                for (i, r) in list.iter_mut().enumerate() {
                    if r.is_object() {
                        let at = format!("routingConfiguration/{i}/");
                        if let Some(v) = arn_at(r, "stateMachineVersionArn", Want::Version, &at)? {
                            versions.push(v);
                        }
                    }
                }
            }
            for v in &versions {
                p.need(Need::on_arn(&a(action), v));
                if let (Some(alias), Arn::StateMachine { name, .. }) = (&alias, v) {
                    p.need(Need::on_arn(
                        &a(action),
                        &Arn::StateMachine {
                            name: name.clone(),
                            qualifier: Some(Qualifier::Alias(alias.clone())),
                        },
                    ));
                }
            }
            if p.needs.is_empty() {
                return Err(ApiError::validation(
                    "routingConfiguration: a list of one or two {stateMachineVersionArn, weight}",
                ));
            }
        }
        other => {
            return Err(ApiError::new(
                "UnknownOperationException",
                format!("weft does not implement the action `{other}` yet"),
            ))
        }
    }
    if let Some(case) = test_case {
        req[TEST_CASE_FIELD] = Value::String(case);
    }
    Ok(p)
}

/// Evaluates `action` on `resource` for `p`: `Ok` when allowed, else the AWS error. A
/// principal without a policy is allowed everything.
pub fn decide(p: Option<&Principal>, need: &Need) -> Result<(), ApiError> {
    let Some(policy) = p.and_then(|p| p.policy.as_ref()) else {
        return Ok(());
    };
    let who = p.map_or("", |p| p.name.as_str());
    let denied = |resource: &str| {
        ApiError::new(
            "AccessDeniedException",
            format!(
                "User: {who} is not authorized to perform: {} on resource: {resource}",
                need.action
            ),
        )
    };
    if !policy.evaluate(&need.action, &need.resource).allowed() {
        return Err(denied(&need.resource));
    }
    if let Some(q) = &need.also_denied_on {
        let d = policy.evaluate(&need.action, q);
        if d.effect == Effect::Deny && d.statement.is_some() {
            return Err(denied(q));
        }
    }
    Ok(())
}

/// Takes every decision of `plan` for `p`, recording each in the audit log when the principal
/// has a policy (one without is allowed everything; its call record names every resource).
pub fn authorize(app: &AppState, p: Option<&Principal>, plan: &Plan) -> Result<(), ApiError> {
    let audited = p.is_some_and(|p| p.policy.is_some());
    let who = p.map_or("-", |p| p.name.as_str());
    for need in &plan.needs {
        let r = decide(p, need);
        if audited {
            let resource = need.also_denied_on.as_deref().unwrap_or(&need.resource);
            let outcome = r.clone().map(|_| Value::Null);
            crate::audit::record(app, who, &need.action, resource, &outcome);
        }
        r?;
    }
    Ok(())
}

/// Which listed items a caller sees: those it may describe.
pub struct Visible<'a> {
    principal: Option<&'a Principal>,
    action: Option<&'static str>,
    hidden: AtomicUsize,
}

impl<'a> Visible<'a> {
    /// Everything (no principal, or a principal without a policy).
    pub fn all() -> Self {
        Visible {
            principal: None,
            action: None,
            hidden: AtomicUsize::new(0),
        }
    }

    pub fn new(principal: Option<&'a Principal>, plan: &Plan) -> Self {
        Visible {
            principal,
            action: plan.item_action,
            hidden: AtomicUsize::new(0),
        }
    }

    /// Whether the item with this (canonical) ARN is shown.
    pub fn shows(&self, arn: &str) -> bool {
        let (Some(action), Some(_)) = (self.action, self.principal.and_then(|p| p.policy.as_ref()))
        else {
            return true;
        };
        let need = match Arn::parse(arn) {
            Ok(a) => Need::on_arn(action, &a),
            Err(_) => Need::on(action, arn),
        };
        let ok = decide(self.principal, &need).is_ok();
        if !ok {
            self.hidden.fetch_add(1, Ordering::Relaxed);
        }
        ok
    }

    /// How many items were hidden.
    pub fn hidden(&self) -> usize {
        self.hidden.load(Ordering::Relaxed)
    }

    /// The action items are checked with.
    pub fn item_action(&self) -> Option<&'static str> {
        self.action
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::sm_arn;

    #[test]
    fn canonical_arns() {
        let sm = sm_arn("prod");
        assert_eq!(Arn::parse(&sm).unwrap().canonical(), sm);
        let v = Arn::parse(&format!("{sm}:12")).unwrap();
        assert_eq!(v.unqualified(), sm);
        assert_eq!(v.canonical(), format!("{sm}:12"));
        let a = Arn::parse(&format!("{sm}:live")).unwrap();
        assert_eq!(
            a,
            Arn::StateMachine {
                name: "prod".into(),
                qualifier: Some(Qualifier::Alias("live".into()))
            }
        );
        for bad in [
            "arn:aws:states:us-east-1:000000000000:stateMachine:prod ".to_string(),
            " arn:aws:states:us-east-1:000000000000:stateMachine:prod".to_string(),
            "arn:aws:states:us-east-1:000000000000:statemachine:prod".to_string(),
            "ARN:aws:states:us-east-1:000000000000:stateMachine:prod".to_string(),
            "arn:AWS:states:us-east-1:000000000000:stateMachine:prod".to_string(),
            "arn:aws-cn:states:us-east-1:000000000000:stateMachine:prod".to_string(),
            "arn:aws:states:eu-west-1:000000000000:stateMachine:prod".to_string(),
            "arn:aws:states:US-EAST-1:000000000000:stateMachine:prod".to_string(),
            "arn:aws:states:us-east-1:123456789012:stateMachine:prod".to_string(),
            "arn:aws:states:us-east-1:000000000000:stateMachine:pr%6Fd".to_string(),
            "arn:aws:states:us-east-1:000000000000:stateMachine:prod*".to_string(),
            "arn:aws:states:us-east-1:000000000000:stateMachine:prod:".to_string(),
            "arn:aws:states:us-east-1:000000000000:stateMachine:prod:01".to_string(),
            "arn:aws:states:us-east-1:000000000000:stateMachine:prod:1:2".to_string(),
            "arn:aws:states:us-east-1:000000000000:stateMachine:".to_string(),
            "arn:aws:states:us-east-1:000000000000:execution:prod".to_string(),
            "arn:aws:states:us-east-1:000000000000:mapRun:prod/x:y".to_string(),
            "arn:aws:states:us-east-1:000000000000:stateMachine:prod\u{0}".to_string(),
            "arn:aws:lambda:us-east-1:000000000000:function:prod".to_string(),
            format!("{sm}:{}", "9".repeat(30)),
        ] {
            let e = Arn::parse(&bad).unwrap_err();
            assert_eq!(e.kind, "InvalidArn", "{bad}");
        }
    }

    #[test]
    fn roles_at_every_depth() {
        let def: Value = serde_json::json!({"StartAt": "P", "States": {
            "P": {"Type": "Parallel", "Branches": [{"StartAt": "T", "States": {
                "T": {"Type": "Task", "Resource": "weft:plugin:x", "Credentials": {"RoleArn": "weft:role:a"}, "End": true}}}],
                "Next": "M"},
            "M": {"Type": "Map", "ItemProcessor": {"StartAt": "U", "States": {
                "U": {"Type": "Task", "Resource": "weft:plugin:x", "Credentials": {"RoleArn": "arn:aws:iam::000000000000:role/b"}, "End": true},
                "I": {"Type": "Map", "Iterator": {"StartAt": "V", "States": {
                    "V": {"Type": "Task", "Resource": "weft:plugin:x", "Credentials": {"RoleArn.$": "$.r"}, "End": true}}}, "End": true}}},
                "Next": "J"},
            "J": {"Type": "Task", "Resource": "weft:plugin:x", "Credentials": {"RoleArn": "{% $states.input.r %}"}, "Next": "K"},
            "K": {"Type": "Task", "Resource": "weft:plugin:x", "Credentials": "{% {'RoleArn': 'c'} %}", "End": true}}});
        let roles = definition_roles(&def);
        let mut statics: Vec<_> = roles
            .iter()
            .filter_map(|(at, r)| match r {
                RoleRef::Static(s) => Some((at.as_str(), s.as_str())),
                _ => None,
            })
            .collect();
        statics.sort();
        assert_eq!(
            statics,
            [
                (
                    "/States/M/ItemProcessor/States/U/Credentials/RoleArn",
                    "arn:aws:iam::000000000000:role/b"
                ),
                (
                    "/States/P/Branches/0/States/T/Credentials/RoleArn",
                    "weft:role:a"
                ),
            ]
        );
        assert_eq!(
            roles.iter().filter(|r| r.1 == RoleRef::Dynamic).count(),
            3,
            "{roles:?}"
        );
        let s = static_roles(&def.to_string());
        assert!(s.contains("weft:role:a") && s.contains("weft:role:b") && s.len() == 2);
    }
}
