//! The Step Functions actions. Each takes the request object and returns the response object
//! (field names as in AWS's API reference) or an [`ApiError`] with AWS's error name.

use crate::access::Visible;
use crate::error::ApiError;
use crate::records::*;
use crate::runtime::{insert_execution, new_record};
use crate::AppState;
use serde_json::{json, Value};
use std::sync::Arc;
use weft_asl::StateError;

/// AWS's limit on an execution's input (characters; weft counts bytes).
pub const MAX_INPUT: usize = 256 * 1024;
/// State machines read from the catalog at once while listing them.
const SM_PAGE: usize = 256;
pub(crate) use crate::records::DEFAULT_ROLE;

/// Runs an action for a caller allowed everything (embedding, benchmarks).
pub async fn dispatch(app: &Arc<AppState>, action: &str, req: Value) -> Result<Value, ApiError> {
    dispatch_as(app, action, req, &Visible::all()).await
}

/// Runs an action whose resources were authorised (see [`crate::access`]); list actions show
/// only the items `vis` lets through.
pub async fn dispatch_as(
    app: &Arc<AppState>,
    action: &str,
    req: Value,
    vis: &Visible<'_>,
) -> Result<Value, ApiError> {
    match action {
        "CreateStateMachine" => create_state_machine(app, &req).await,
        "DescribeStateMachine" => describe_state_machine(app, &req),
        "ListStateMachines" => list_state_machines(app, &req, vis),
        "UpdateStateMachine" => update_state_machine(app, &req).await,
        "DeleteStateMachine" => delete_state_machine(app, &req).await,
        "StartExecution" => start_execution(app, &req).await,
        "StartSyncExecution" => start_sync_execution(app, &req).await,
        "DescribeExecution" => describe_execution(app, &req),
        "ListExecutions" => list_executions(app, &req, vis),
        "GetExecutionHistory" => get_execution_history(app, &req),
        "StopExecution" => stop_execution(app, &req).await,
        "SendTaskSuccess" | "SendTaskFailure" | "SendTaskHeartbeat" => send_task(app, action, &req),
        "RedriveExecution" => redrive_execution(app, &req),
        "PublishStateMachineVersion" => crate::versions::publish_version(app, &req),
        "ListStateMachineVersions" => crate::versions::list_versions(app, &req, vis),
        "DeleteStateMachineVersion" => crate::versions::delete_version(app, &req),
        "CreateStateMachineAlias" => crate::versions::create_alias(app, &req),
        "UpdateStateMachineAlias" => crate::versions::update_alias(app, &req),
        "DescribeStateMachineAlias" => crate::versions::describe_alias(app, &req),
        "ListStateMachineAliases" => crate::versions::list_aliases(app, &req, vis),
        "DeleteStateMachineAlias" => crate::versions::delete_alias(app, &req),
        "CreateActivity" => crate::activities::create(app, &req),
        "DeleteActivity" => crate::activities::delete(app, &req),
        "DescribeActivity" => crate::activities::describe(app, &req),
        "ListActivities" => crate::activities::list(app, &req, vis),
        "GetActivityTask" => crate::activities::get_task(app, &req).await,
        "TagResource" => crate::tags::tag_resource(app, &req).await,
        "UntagResource" => crate::tags::untag_resource(app, &req).await,
        "ListTagsForResource" => crate::tags::list_tags(app, &req),
        "DescribeStateMachineForExecution" => crate::for_execution::describe(app, &req),
        "ValidateStateMachineDefinition" => crate::validate_api::validate(app, &req),
        "TestState" => crate::test_state::test_state(app, &req).await,
        "DescribeMapRun" => crate::map_runs::describe(app, &req),
        "ListMapRuns" => crate::map_runs::list(app, &req),
        "UpdateMapRun" => crate::map_runs::update(app, &req),
        other => Err(ApiError::new(
            "UnknownOperationException",
            format!("weft does not implement the action `{other}` yet"),
        )),
    }
}

// ---- request helpers ----

fn missing(field: &str) -> ApiError {
    ApiError::validation(format!(
        "1 validation error detected: Value null at '{field}' failed to satisfy constraint: Member must not be null"
    ))
}

pub(crate) fn opt_str<'a>(req: &'a Value, field: &str) -> Result<Option<&'a str>, ApiError> {
    match req.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::new(
            "SerializationException",
            format!("`{field}` must be a string"),
        )),
    }
}

pub(crate) fn req_str<'a>(req: &'a Value, field: &str) -> Result<&'a str, ApiError> {
    opt_str(req, field)?.ok_or_else(|| missing(field))
}

fn opt_bool(req: &Value, field: &str) -> Result<Option<bool>, ApiError> {
    match req.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(ApiError::new(
            "SerializationException",
            format!("`{field}` must be a boolean"),
        )),
    }
}

/// `maxResults`: 0 or absent means the default; at most 1000.
fn max_results(req: &Value, default: usize) -> Result<usize, ApiError> {
    match req.get("maxResults") {
        None | Some(Value::Null) => Ok(default),
        Some(v) => match v.as_u64() {
            Some(0) => Ok(default),
            Some(n) if n <= 1000 => Ok(n as usize),
            _ => Err(ApiError::validation(format!(
                "1 validation error detected: Value '{v}' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 1000"
            ))),
        },
    }
}

fn invalid_token(t: &str) -> ApiError {
    ApiError::new("InvalidToken", format!("Invalid Token: '{t}'"))
}

/// Offset-based page tokens (`o:N`).
fn offset_token(req: &Value) -> Result<usize, ApiError> {
    match opt_str(req, "nextToken")? {
        None => Ok(0),
        Some(t) => t
            .strip_prefix("o:")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| invalid_token(t)),
    }
}

fn validate_definition(definition: &str) -> Result<weft_asl::StateMachine, ApiError> {
    weft_asl::parse(definition).map_err(|errs| {
        let lines: Vec<String> = errs.errors.iter().map(|e| e.to_string()).collect();
        ApiError::new(
            "InvalidDefinition",
            format!("Invalid State Machine Definition: '{}'", lines.join("; ")),
        )
    })
}

/// Set-up warnings for a definition about to be stored: the operators its Tasks name that are
/// not installed (a run would fail those states with `Lambda.ResourceNotFoundException` or
/// `Weft.PluginNotFound`), and the AWS service integrations no resource map serves (the
/// entry that would serve each). Logged, and returned beside AWS's response members as `warnings`
/// (AWS SDKs ignore members they do not know).
fn setup_warnings(app: &AppState, name: &str, definition: &str) -> Vec<String> {
    let Ok(def) = serde_json::from_str::<Value>(definition) else {
        return Vec::new();
    };
    let mut warnings = weft_engine::needed_plugins::missing(&app.store, &def);
    // integrations no map serves (the state machine's own map can be set after it is created)
    let maps = weft_engine::standard::resource_maps::maps_for(&app.rt, name);
    warnings.extend(crate::sm_resource_map::unmapped_warnings(definition, &maps));
    warnings.extend(weft_engine::needed_plugins::missing_mapped(
        &app.store, &def, &maps,
    ));
    for w in &warnings {
        tracing::warn!(state_machine = name, "{w}");
    }
    warnings
}

fn sm_type(req: &Value) -> Result<String, ApiError> {
    match opt_str(req, "type")? {
        None => Ok("STANDARD".into()),
        Some(t @ ("STANDARD" | "EXPRESS")) => Ok(t.to_string()),
        Some(t) => Err(ApiError::validation(format!(
            "1 validation error detected: Value '{t}' at 'type' failed to satisfy constraint: Member must satisfy enum value set: [STANDARD, EXPRESS]"
        ))),
    }
}

fn load_sm(app: &AppState, name: &str) -> Result<Option<StateMachineRecord>, ApiError> {
    Ok(match app.catalog.state_machine(name)? {
        Some(b) => Some(serde_json::from_slice(&b)?),
        None => None,
    })
}

fn sm_not_found(arn: &str) -> ApiError {
    ApiError::new(
        "StateMachineDoesNotExist",
        format!("State Machine Does Not Exist: '{arn}'"),
    )
}

pub(crate) fn sm_by_arn(app: &AppState, arn: &str) -> Result<StateMachineRecord, ApiError> {
    let name = parse_sm_arn(arn)?;
    load_sm(app, &name)?.ok_or_else(|| sm_not_found(arn))
}

fn load_exec(app: &AppState, arn: &str) -> Result<Option<ExecutionRecord>, ApiError> {
    Ok(match app.executions.execution(arn)? {
        Some(b) => Some(serde_json::from_slice(&b)?),
        None => None,
    })
}

pub(crate) fn exec_by_arn(app: &AppState, arn: &str) -> Result<ExecutionRecord, ApiError> {
    let key = parse_exec_arn(arn)?;
    load_exec(app, &key)?.ok_or_else(|| {
        ApiError::new(
            "ExecutionDoesNotExist",
            format!("Execution Does Not Exist: '{arn}'"),
        )
    })
}

/// Makes every write so far durable (the process's store, which holds the catalog on sled).
pub(crate) async fn flush(app: &AppState) -> Result<(), ApiError> {
    app.store
        .db()
        .flush_async()
        .await
        .map_err(|e| ApiError::internal(format!("store: {e}")))?;
    Ok(())
}

// ---- state machines ----

async fn create_state_machine(app: &Arc<AppState>, req: &Value) -> Result<Value, ApiError> {
    let name = req_str(req, "name")?;
    let definition = req_str(req, "definition")?;
    valid_name(name).map_err(|m| ApiError::new("InvalidName", m))?;
    let ty = sm_type(req)?;
    validate_definition(definition)?;
    let tags = crate::tags::parse_tags(req.get("tags"))?;
    let now = now_ms();
    let rec = StateMachineRecord {
        name: name.to_string(),
        arn: sm_arn(name),
        definition: definition.to_string(),
        role_arn: opt_str(req, "roleArn")?.unwrap_or(DEFAULT_ROLE).to_string(),
        sm_type: ty,
        creation_ms: now,
        update_ms: None,
        revision_id: uuid::Uuid::new_v4().to_string(),
        description: None,
        logging_configuration: req.get("loggingConfiguration").cloned(),
        tracing_configuration: req.get("tracingConfiguration").cloned(),
    };
    let bytes = serde_json::to_vec(&rec)?;
    match app.catalog.insert_state_machine(name, &bytes)? {
        None => {
            crate::tags::add(app, &rec.arn, &tags)?;
            let mut out = json!({"stateMachineArn": rec.arn, "creationDate": ts(now)});
            let warnings = setup_warnings(app, name, definition);
            if !warnings.is_empty() {
                out["warnings"] = json!(warnings);
            }
            if opt_bool(req, "publish")? == Some(true) {
                let v = crate::versions::publish(
                    app,
                    &rec,
                    opt_str(req, "versionDescription")?.map(str::to_string),
                )?;
                out["stateMachineVersionArn"] = json!(format!("{}:{}", rec.arn, v.version));
            }
            flush(app).await?;
            Ok(out)
        }
        Some(current) => {
            let old: StateMachineRecord = serde_json::from_slice(&current)?;
            // AWS: creating an identical state machine again is idempotent
            if old.definition == rec.definition
                && old.role_arn == rec.role_arn
                && old.sm_type == rec.sm_type
            {
                Ok(json!({"stateMachineArn": old.arn, "creationDate": ts(old.creation_ms)}))
            } else {
                Err(ApiError::new(
                    "StateMachineAlreadyExists",
                    format!("State Machine Already Exists: '{}'", old.arn),
                ))
            }
        }
    }
}

fn describe_state_machine(app: &Arc<AppState>, req: &Value) -> Result<Value, ApiError> {
    let arn = req_str(req, "stateMachineArn")?;
    let qualified = matches!(
        crate::versions::parse_target(arn)?,
        crate::versions::Target::Version(..)
    );
    let sm = if qualified {
        crate::versions::resolve(app, arn)?.sm
    } else {
        sm_by_arn(app, arn)?
    };
    let mut v = json!({
        "stateMachineArn": sm.arn,
        "name": sm.name,
        "status": "ACTIVE",
        "definition": sm.definition,
        "roleArn": sm.role_arn,
        "type": sm.sm_type,
        "creationDate": ts(sm.creation_ms),
        "loggingConfiguration": sm.logging_configuration.clone()
            .unwrap_or_else(|| json!({"level": "OFF", "includeExecutionData": false})),
        "tracingConfiguration": sm.tracing_configuration.clone().unwrap_or_else(|| json!({"enabled": false})),
        "revisionId": sm.revision_id,
    });
    if let Some(d) = &sm.description {
        v["description"] = json!(d);
    }
    Ok(v)
}

fn list_state_machines(
    app: &Arc<AppState>,
    req: &Value,
    vis: &Visible<'_>,
) -> Result<Value, ApiError> {
    let max = max_results(req, 100)?;
    let start = match opt_str(req, "nextToken")? {
        None => None,
        Some(t) => Some(
            t.strip_prefix("n:")
                .ok_or_else(|| invalid_token(t))?
                .to_string(),
        ),
    };
    let mut out = Vec::new();
    let mut next = None;
    let mut after = start;
    'pages: loop {
        let page = app.catalog.state_machines(after.as_deref(), SM_PAGE)?;
        let full = page.len() == SM_PAGE;
        for (name, v) in page {
            after = Some(name);
            let sm: StateMachineRecord = serde_json::from_slice(&v)?;
            if !vis.shows(&sm.arn) {
                continue;
            }
            if out.len() == max {
                next = Some(format!(
                    "n:{}",
                    out.last()
                        .and_then(|x: &Value| x["name"].as_str())
                        .unwrap_or("")
                ));
                break 'pages;
            }
            out.push(json!({
                "stateMachineArn": sm.arn,
                "name": sm.name,
                "type": sm.sm_type,
                "creationDate": ts(sm.creation_ms),
            }));
        }
        if !full {
            break;
        }
    }
    let mut v = json!({"stateMachines": out});
    if let Some(t) = next {
        v["nextToken"] = json!(t);
    }
    Ok(v)
}

async fn update_state_machine(app: &Arc<AppState>, req: &Value) -> Result<Value, ApiError> {
    let arn = req_str(req, "stateMachineArn")?;
    let name = parse_sm_arn(arn)?;
    let definition = opt_str(req, "definition")?;
    let role = opt_str(req, "roleArn")?;
    let logging = req
        .get("loggingConfiguration")
        .filter(|v| !v.is_null())
        .cloned();
    let tracing_cfg = req
        .get("tracingConfiguration")
        .filter(|v| !v.is_null())
        .cloned();
    if definition.is_none() && role.is_none() && logging.is_none() && tracing_cfg.is_none() {
        return Err(ApiError::new(
            "MissingRequiredParameter",
            "Either the definition, the roleArn, the loggingConfiguration or the tracingConfiguration must be specified",
        ));
    }
    if let Some(d) = definition {
        validate_definition(d)?;
    }
    let now = now_ms();
    let revision = uuid::Uuid::new_v4().to_string();
    let mut found = false;
    app.catalog.update_state_machine(&name, &mut |old| {
        let old = old?;
        let mut sm: StateMachineRecord = serde_json::from_slice(old).ok()?;
        found = true;
        if let Some(d) = definition {
            sm.definition = d.to_string();
        }
        if let Some(r) = role {
            sm.role_arn = r.to_string();
        }
        if logging.is_some() {
            sm.logging_configuration = logging.clone();
        }
        if tracing_cfg.is_some() {
            sm.tracing_configuration = tracing_cfg.clone();
        }
        sm.update_ms = Some(now);
        sm.revision_id = revision.clone();
        serde_json::to_vec(&sm).ok()
    })?;
    if !found {
        return Err(sm_not_found(arn));
    }
    let mut out = json!({"updateDate": ts(now), "revisionId": revision});
    if let Some(d) = definition {
        let warnings = setup_warnings(app, &name, d);
        if !warnings.is_empty() {
            out["warnings"] = json!(warnings);
        }
    }
    if opt_bool(req, "publish")? == Some(true) {
        let sm = sm_by_arn(app, arn)?;
        let v = crate::versions::publish(
            app,
            &sm,
            opt_str(req, "versionDescription")?.map(str::to_string),
        )?;
        out["stateMachineVersionArn"] = json!(format!("{}:{}", sm.arn, v.version));
    }
    flush(app).await?;
    Ok(out)
}

async fn delete_state_machine(app: &Arc<AppState>, req: &Value) -> Result<Value, ApiError> {
    let arn = req_str(req, "stateMachineArn")?;
    let name = parse_sm_arn(arn)?;
    // as AWS: deleting is idempotent; running executions finish, their records stay
    app.catalog.remove_state_machine(&name)?;
    crate::tags::forget(app, &sm_arn(&name))?;
    crate::sm_resource_map::forget(app, &name)?;
    flush(app).await?;
    Ok(json!({}))
}

// ---- executions ----

fn input_value(req: &Value) -> Result<(String, Value), ApiError> {
    let text = opt_str(req, "input")?.unwrap_or("{}").to_string();
    if text.len() > MAX_INPUT {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value at 'input' failed to satisfy constraint: Member must have length less than or equal to {MAX_INPUT} (got {} bytes)",
            text.len()
        )));
    }
    let v: Value = serde_json::from_str(&text).map_err(|e| {
        ApiError::new(
            "InvalidExecutionInput",
            format!("Invalid State Machine Execution Input: '{e}'"),
        )
    })?;
    Ok((text, v))
}

fn status_of(
    sm: &weft_asl::StateMachine,
    r: &Result<Value, StateError>,
    elapsed_ms: i64,
) -> &'static str {
    match r {
        Ok(_) => "SUCCEEDED",
        Err(e)
            if e.error == weft_asl::error::names::TIMEOUT
                && sm
                    .timeout_seconds
                    .is_some_and(|t| elapsed_ms >= (t as i64).saturating_mul(1000)) =>
        {
            "TIMED_OUT"
        }
        Err(_) => "FAILED",
    }
}

/// What StartExecution and StartSyncExecution both take from a request: the execution name
/// (given or generated, then checked), its input and the state machine's parsed definition.
struct Start {
    name: String,
    input_text: String,
    input: Value,
    sm: weft_asl::StateMachine,
}

fn start_request(smr: &StateMachineRecord, req: &Value) -> Result<Start, ApiError> {
    let name = match opt_str(req, "name")? {
        Some(n) => n.to_string(),
        None => uuid::Uuid::new_v4().to_string(),
    };
    valid_name(&name).map_err(|m| ApiError::new("InvalidName", m))?;
    let (input_text, input) = input_value(req)?;
    let sm = validate_definition(&smr.definition)?;
    Ok(Start {
        name,
        input_text,
        input,
        sm,
    })
}

/// The test case a start request names (`ARN#TestCase`, split off by [`crate::access::plan`]),
/// resolved in the server's mock configuration for the state machine `smr` and checked
/// against its definition.
fn test_case(
    app: &AppState,
    smr: &StateMachineRecord,
    sm: &weft_asl::StateMachine,
    req: &Value,
) -> Result<Option<weft_asl::mock::TestCase>, ApiError> {
    let Some(case) = opt_str(req, crate::access::TEST_CASE_FIELD)? else {
        return Ok(None);
    };
    let Some(mocks) = &app.mocks else {
        return Err(ApiError::validation(format!(
            "the test case '{case}' was asked for, but this server has no mock configuration"
        )));
    };
    let tc = mocks
        .test_case(&smr.name, case)
        .map_err(|e| ApiError::validation(format!("test case '{case}': {e}")))?;
    tc.check(sm).map_err(|e| {
        ApiError::validation(format!(
            "test case '{case}' does not fit the state machine '{}': {}",
            smr.name,
            e.to_string().replace('\n', "; ")
        ))
    })?;
    Ok(Some(tc))
}

async fn start_execution(app: &Arc<AppState>, req: &Value) -> Result<Value, ApiError> {
    let target = crate::versions::resolve(app, req_str(req, "stateMachineArn")?)?;
    let smr = target.sm;
    let Start {
        name,
        input_text,
        input,
        sm,
    } = start_request(&smr, req)?;
    let mocks = test_case(app, &smr, &sm, req)?;
    if smr.sm_type == "EXPRESS" {
        // asynchronous Express: in memory, at-least-once, no execution record
        return Ok(weft_engine::standard::express::start_async(
            &app.rt, smr, sm, name, input, mocks,
        ));
    }
    let mut rec = new_record(
        &smr,
        &name,
        input_text,
        opt_str(req, "traceHeader")?.map(str::to_string),
        None,
    );
    rec.version_arn = target.version_arn;
    rec.alias_arn = target.alias_arn;
    if let Some(tc) = &mocks {
        rec.test_case = Some(tc.name.clone());
        rec.mocks = Some(tc.to_json());
    }
    let app2 = app.clone();
    let (rec, created) = tokio::task::spawn_blocking(move || insert_execution(&app2.rt, rec))
        .await
        .map_err(|e| ApiError::internal(format!("start: {e}")))??;
    if !created {
        let same_input = serde_json::from_str::<Value>(&rec.input).ok().as_ref() == Some(&input);
        let same_case = rec.test_case.as_deref() == mocks.as_ref().map(|t| t.name.as_str());
        if !same_input || !same_case || rec.status != "RUNNING" {
            return Err(ApiError::new(
                "ExecutionAlreadyExists",
                format!("Execution Already Exists: '{}'", rec.arn),
            ));
        }
    }
    Ok(json!({"executionArn": rec.arn, "startDate": ts(rec.start_ms)}))
}

async fn start_sync_execution(app: &Arc<AppState>, req: &Value) -> Result<Value, ApiError> {
    let sm_arn_in = req_str(req, "stateMachineArn")?;
    let smr = sm_by_arn(app, sm_arn_in)?;
    if smr.sm_type != "EXPRESS" {
        return Err(ApiError::new(
            "StateMachineTypeNotSupported",
            "This operation is not supported by this type of state machine (StartSyncExecution needs an EXPRESS state machine)",
        ));
    }
    let Start {
        name,
        input_text,
        input,
        mut sm,
    } = start_request(&smr, req)?;
    let mocks = test_case(app, &smr, &sm, req)?;
    let start = now_ms();
    let app2 = app.clone();
    let (smr2, name2) = (smr.clone(), name.clone());
    let arn = express_arn(&smr.name, &name);
    let arn2 = arn.clone();
    let (r, sm) = tokio::task::spawn_blocking(move || {
        let r = weft_engine::standard::express::run(
            &app2.rt, &smr2, &mut sm, &arn2, &name2, input, mocks,
        );
        (r, sm)
    })
    .await
    .map_err(|e| ApiError::internal(format!("execution panicked: {e}")))?;
    let stop = now_ms();
    let mut v = json!({
        "executionArn": arn,
        "stateMachineArn": smr.arn,
        "name": name,
        "startDate": ts(start),
        "stopDate": ts(stop),
        "status": status_of(&sm, &r, stop - start),
        "input": input_text,
        "inputDetails": {"included": true},
        "billingDetails": {
            "billedMemoryUsedInMB": 64,
            "billedDurationInMilliseconds": ((stop - start).max(1) + 99) / 100 * 100,
        },
    });
    match r {
        Ok(out) => {
            v["output"] = json!(out.to_string());
            v["outputDetails"] = json!({"included": true});
        }
        Err(e) => {
            v["error"] = json!(e.error);
            if let Some(c) = e.cause {
                v["cause"] = json!(c);
            }
        }
    }
    if let Some(t) = opt_str(req, "traceHeader")? {
        v["traceHeader"] = json!(t);
    }
    Ok(v)
}

fn describe_execution(app: &Arc<AppState>, req: &Value) -> Result<Value, ApiError> {
    let e = exec_by_arn(app, req_str(req, "executionArn")?)?;
    let mut v = json!({
        "executionArn": e.arn,
        "stateMachineArn": e.state_machine_arn,
        "name": e.name,
        "status": e.status,
        "startDate": ts(e.start_ms),
        "input": e.input,
        "inputDetails": {"included": true},
        "redriveCount": e.redrive_count,
        "redriveStatus": if matches!(e.status.as_str(), "FAILED" | "TIMED_OUT" | "ABORTED") {
            "REDRIVABLE"
        } else {
            "NOT_REDRIVABLE"
        },
    });
    if let Some(r) = e.redrive_ms {
        v["redriveDate"] = ts(r);
    }
    if let Some((parent, _)) = &e.parent {
        v["parentExecutionArn"] = json!(parent);
    }
    if let Some(x) = &e.version_arn {
        v["stateMachineVersionArn"] = json!(x);
    }
    if let Some(x) = &e.alias_arn {
        v["stateMachineAliasArn"] = json!(x);
    }
    if let Some(s) = e.stop_ms {
        v["stopDate"] = ts(s);
    }
    if let Some(o) = &e.output {
        v["output"] = json!(o);
        v["outputDetails"] = json!({"included": true});
    }
    if let Some(x) = &e.error {
        v["error"] = json!(x);
    }
    if let Some(x) = &e.cause {
        v["cause"] = json!(x);
    }
    if let Some(x) = &e.trace_header {
        v["traceHeader"] = json!(x);
    }
    Ok(v)
}

const STATUSES: &[&str] = &[
    "RUNNING",
    "SUCCEEDED",
    "FAILED",
    "TIMED_OUT",
    "ABORTED",
    "PENDING_REDRIVE",
];

fn list_executions(app: &Arc<AppState>, req: &Value, vis: &Visible<'_>) -> Result<Value, ApiError> {
    let Some(arn) = opt_str(req, "stateMachineArn")? else {
        if opt_str(req, "mapRunArn")?.is_some() {
            return Err(ApiError::validation("weft does not support mapRunArn yet"));
        }
        return Err(ApiError::validation(
            "Must provide a StateMachine ARN or MapRun ARN",
        ));
    };
    let sm_name = parse_sm_arn(arn)?;
    if load_sm(app, &sm_name)?.is_none() {
        return Err(sm_not_found(arn));
    }
    let filter = opt_str(req, "statusFilter")?;
    if let Some(f) = filter {
        if !STATUSES.contains(&f) {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value '{f}' at 'statusFilter' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
                STATUSES.join(", ")
            )));
        }
    }
    let max = max_results(req, 100)?;
    let offset = offset_token(req)?;
    let prefix = format!("arn:aws:states:{REGION}:{ACCOUNT}:execution:{sm_name}:");
    let mut all = Vec::new();
    crate::records::each_execution(app.executions.as_ref(), &prefix, |e| {
        if filter.is_none_or(|f| f == e.status) && vis.shows(&e.arn) {
            all.push(e);
        }
    })?;
    // newest first, as AWS lists them
    all.sort_by(|a, b| {
        b.start_ms
            .cmp(&a.start_ms)
            .then_with(|| a.name.cmp(&b.name))
    });
    let page: Vec<Value> = all
        .iter()
        .skip(offset)
        .take(max)
        .map(|e| {
            let mut v = json!({
                "executionArn": e.arn,
                "stateMachineArn": e.state_machine_arn,
                "name": e.name,
                "status": e.status,
                "startDate": ts(e.start_ms),
            });
            if let Some(s) = e.stop_ms {
                v["stopDate"] = ts(s);
            }
            v
        })
        .collect();
    let mut v = json!({"executions": page});
    if offset + max < all.len() {
        v["nextToken"] = json!(format!("o:{}", offset + max));
    }
    Ok(v)
}

fn get_execution_history(app: &Arc<AppState>, req: &Value) -> Result<Value, ApiError> {
    let e = exec_by_arn(app, req_str(req, "executionArn")?)?;
    let max = max_results(req, 100)?;
    let reverse = opt_bool(req, "reverseOrder")?.unwrap_or(false);
    let include_data = opt_bool(req, "includeExecutionData")?.unwrap_or(true);
    let from: Option<u64> = match opt_str(req, "nextToken")? {
        None => None,
        Some(t) => Some(
            t.strip_prefix("e:")
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| invalid_token(t))?,
        ),
    };
    app.pending.apply()?;
    let mut events = Vec::new();
    let mut next = None;
    let mut push = |v: &[u8]| -> Result<bool, ApiError> {
        let mut ev: Value = serde_json::from_slice(v)?;
        let id = ev["id"].as_u64().unwrap_or(0);
        if let Some(f) = from {
            if (!reverse && id < f) || (reverse && id > f) {
                return Ok(true);
            }
        }
        if events.len() == max {
            next = Some(format!("e:{id}"));
            return Ok(false);
        }
        if !include_data {
            strip_data(&mut ev);
        }
        events.push(ev);
        Ok(true)
    };
    let mut failed = None;
    app.history.each_run(&e.arn, reverse, &mut |last, evs| {
        if !reverse && from.is_some_and(|f| last < f) {
            return true; // the whole run is before the page
        }
        let in_order: Box<dyn Iterator<Item = &Vec<u8>>> = if reverse {
            Box::new(evs.iter().rev())
        } else {
            Box::new(evs.iter())
        };
        for v in in_order {
            match push(v) {
                Ok(true) => {}
                Ok(false) => return false,
                Err(e) => {
                    failed = Some(e);
                    return false;
                }
            }
        }
        true
    })?;
    if let Some(e) = failed {
        return Err(e);
    }
    let mut v = json!({"events": events});
    if let Some(t) = next {
        v["nextToken"] = json!(t);
    }
    Ok(v)
}

/// `includeExecutionData: false`: drops input and output from the event details.
fn strip_data(ev: &mut Value) {
    if let Some(m) = ev.as_object_mut() {
        for (k, d) in m.iter_mut() {
            if k.ends_with("EventDetails") {
                if let Some(d) = d.as_object_mut() {
                    d.remove("input");
                    d.remove("output");
                }
            }
        }
    }
}

async fn stop_execution(app: &Arc<AppState>, req: &Value) -> Result<Value, ApiError> {
    let arn_in = req_str(req, "executionArn")?;
    let e = exec_by_arn(app, arn_in)?;
    let error = opt_str(req, "error")?.map(str::to_string);
    let cause = opt_str(req, "cause")?.map(str::to_string);
    if e.status != "RUNNING" {
        return Ok(json!({"stopDate": ts(e.stop_ms.unwrap_or_else(now_ms))}));
    }
    let now = weft_engine::standard::stop_and_redrive::stop_execution(
        &app.rt,
        &e,
        error.as_deref(),
        cause.as_deref(),
    )?;
    flush(app).await?;
    let e = exec_by_arn(app, arn_in)?;
    Ok(json!({"stopDate": ts(e.stop_ms.unwrap_or(now))}))
}

/// RedriveExecution: a FAILED, TIMED_OUT or ABORTED Standard execution continues from where it
/// failed. Its journal forgets the attempts of every task that never succeeded; the replay then
/// re-runs exactly those, with the same definition and plugin digests.
fn redrive_execution(app: &Arc<AppState>, req: &Value) -> Result<Value, ApiError> {
    let arn_in = req_str(req, "executionArn")?;
    let e = exec_by_arn(app, arn_in)?;
    let now = weft_engine::standard::stop_and_redrive::redrive_execution(&app.rt, &e)?;
    Ok(json!({"redriveDate": ts(now)}))
}

// ---- callbacks ----

fn send_task(app: &Arc<AppState>, action: &str, req: &Value) -> Result<Value, ApiError> {
    let token = req_str(req, "taskToken")?;
    if token.is_empty() || token.len() > 1024 {
        return Err(ApiError::new(
            "InvalidToken",
            "Invalid Token: a task token is 1 to 1024 characters",
        ));
    }
    let Some(mut rec) = app.rt.token(token)? else {
        return Err(ApiError::new(
            "TaskDoesNotExist",
            "Task Does Not Exist: no task is waiting for this token (it finished, timed out, or was never issued)",
        ));
    };
    let result = match action {
        "SendTaskHeartbeat" => {
            if let Some(h) = rec.heartbeat_ms {
                rec.heartbeat_at_ms = Some(now_ms().saturating_add(h as i64));
                app.rt.put_token(token, &rec)?;
                app.rt
                    .commit
                    .commit()
                    .map_err(|e| ApiError::internal(e.to_string()))?;
            }
            return Ok(json!({}));
        }
        "SendTaskSuccess" => {
            let out = req_str(req, "output")?;
            if out.len() > MAX_INPUT {
                return Err(ApiError::validation(format!(
                    "1 validation error detected: Value at 'output' failed to satisfy constraint: Member must have length less than or equal to {MAX_INPUT} (got {} bytes)",
                    out.len()
                )));
            }
            let v: Value = serde_json::from_str(out)
                .map_err(|e| ApiError::new("InvalidOutput", format!("Invalid Output: '{e}'")))?;
            Ok(v)
        }
        _ => Err(weft_asl::TaskFailure {
            error: opt_str(req, "error")?
                .unwrap_or("States.TaskFailed")
                .to_string(),
            cause: opt_str(req, "cause")?.unwrap_or("").to_string(),
        }),
    };
    app.rt.forget_token(token);
    if app.rt.complete(&rec.execution, &rec.key, result)? {
        Ok(json!({}))
    } else {
        Err(ApiError::new(
            "TaskTimedOut",
            "Task Timed Out: the task already has a result (it timed out or was answered)",
        ))
    }
}
