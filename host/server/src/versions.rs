//! State machine versions and aliases: PublishStateMachineVersion, ListStateMachineVersions,
//! DeleteStateMachineVersion, Create/Update/Describe/List/DeleteStateMachineAlias, and the
//! resolution of a qualified ARN (`...:stateMachine:NAME:3` a version, `...:NAME:prod` an
//! alias with weighted routing between one or two versions) to the definition an execution
//! runs. A version is an immutable snapshot of the definition and role; an execution records
//! which version (and alias) it started from and pins that definition.
//!
//! Trees: `sfn_versions` (key `NAME 0x00 VERSION` big-endian u64) and `sfn_aliases`
//! (key `NAME 0x00 ALIAS`).

use crate::error::ApiError;
use crate::records::*;
use crate::AppState;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::Arc;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VersionRecord {
    pub version: u64,
    pub definition: String,
    pub role_arn: String,
    pub description: Option<String>,
    pub revision_id: String,
    pub creation_ms: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AliasRecord {
    pub name: String,
    pub description: Option<String>,
    /// (version, weight)
    pub routing: Vec<(u64, u32)>,
    pub creation_ms: i64,
    pub update_ms: Option<i64>,
}

/// What a state machine ARN names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Latest(String),
    Version(String, u64),
    Alias(String, String),
}

/// Parses `arn:aws:states:R:A:stateMachine:NAME[:VERSION|:ALIAS]`.
pub fn parse_target(arn: &str) -> Result<Target, ApiError> {
    let bad = || {
        ApiError::new(
            "InvalidArn",
            format!("Invalid Arn: 'Resource type not valid in this context: {arn}'"),
        )
    };
    let parts: Vec<&str> = arn.splitn(8, ':').collect();
    if parts.len() < 7 || parts[0] != "arn" || parts[2] != "states" || parts[5] != "stateMachine" {
        return Err(bad());
    }
    let name = parts[6];
    valid_name(name).map_err(|_| bad())?;
    match parts.get(7) {
        None => Ok(Target::Latest(name.to_string())),
        Some(q) if !q.is_empty() && q.chars().all(|c| c.is_ascii_digit()) => Ok(Target::Version(
            name.to_string(),
            q.parse().map_err(|_| bad())?,
        )),
        Some(q) if valid_name(q).is_ok() => Ok(Target::Alias(name.to_string(), q.to_string())),
        Some(_) => Err(bad()),
    }
}

fn version_arn(name: &str, v: u64) -> String {
    format!("{}:{v}", sm_arn(name))
}

fn alias_arn(name: &str, a: &str) -> String {
    format!("{}:{a}", sm_arn(name))
}

fn load_sm(app: &AppState, name: &str) -> Result<StateMachineRecord, ApiError> {
    match app.catalog.state_machine(name)? {
        Some(b) => Ok(serde_json::from_slice(&b)?),
        None => Err(ApiError::new(
            "StateMachineDoesNotExist",
            format!("State Machine Does Not Exist: '{}'", sm_arn(name)),
        )),
    }
}

pub fn load_version(app: &AppState, name: &str, v: u64) -> Result<VersionRecord, ApiError> {
    match app.catalog.version(name, v)? {
        Some(b) => Ok(serde_json::from_slice(&b)?),
        None => Err(ApiError::new(
            "ResourceNotFound",
            format!("Resource not found: '{}'", version_arn(name, v)),
        )),
    }
}

fn load_alias(app: &AppState, name: &str, a: &str) -> Result<AliasRecord, ApiError> {
    match app.catalog.alias(name, a)? {
        Some(b) => Ok(serde_json::from_slice(&b)?),
        None => Err(ApiError::new(
            "ResourceNotFound",
            format!("Resource not found: '{}'", alias_arn(name, a)),
        )),
    }
}

fn latest_version(app: &AppState, name: &str) -> Result<Option<VersionRecord>, ApiError> {
    match app.catalog.latest_version(name)? {
        Some((_, v)) => Ok(Some(serde_json::from_slice(&v)?)),
        None => Ok(None),
    }
}

/// Publishes the current definition as a new version (or returns the latest version when
/// the definition and role did not change, as AWS does).
pub fn publish(
    app: &AppState,
    sm: &StateMachineRecord,
    description: Option<String>,
) -> Result<VersionRecord, ApiError> {
    if let Some(v) = latest_version(app, &sm.name)? {
        if v.definition == sm.definition && v.role_arn == sm.role_arn {
            return Ok(v);
        }
    }
    let next = latest_version(app, &sm.name)?.map_or(1, |v| v.version + 1);
    let rec = VersionRecord {
        version: next,
        definition: sm.definition.clone(),
        role_arn: sm.role_arn.clone(),
        description,
        revision_id: sm.revision_id.clone(),
        creation_ms: now_ms(),
    };
    app.catalog
        .put_version(&sm.name, next, &serde_json::to_vec(&rec)?)?;
    Ok(rec)
}

fn str_field<'a>(req: &'a Value, f: &str) -> Result<&'a str, ApiError> {
    req.get(f).and_then(Value::as_str).ok_or_else(|| {
        ApiError::validation(format!(
            "1 validation error detected: Value null at '{f}' failed to satisfy constraint: Member must not be null"
        ))
    })
}

fn commit(app: &AppState) -> Result<(), ApiError> {
    app.rt
        .commit
        .commit()
        .map_err(|e| ApiError::internal(e.to_string()))
}

pub(crate) fn publish_version(app: &Arc<AppState>, req: &Value) -> Result<Value, ApiError> {
    let arn = str_field(req, "stateMachineArn")?;
    let Target::Latest(name) = parse_target(arn)? else {
        return Err(ApiError::validation(
            "stateMachineArn must be an unqualified state machine ARN",
        ));
    };
    let sm = load_sm(app, &name)?;
    if let Some(rev) = req.get("revisionId").and_then(Value::as_str) {
        if rev != sm.revision_id {
            return Err(ApiError::new(
                "ConflictException",
                format!(
                    "the state machine's revision is {}, not {rev}",
                    sm.revision_id
                ),
            ));
        }
    }
    let v = publish(
        app,
        &sm,
        req.get("description")
            .and_then(Value::as_str)
            .map(str::to_string),
    )?;
    commit(app)?;
    Ok(
        json!({"stateMachineVersionArn": version_arn(&name, v.version), "creationDate": ts(v.creation_ms)}),
    )
}

pub(crate) fn list_versions(
    app: &Arc<AppState>,
    req: &Value,
    vis: &crate::access::Visible<'_>,
) -> Result<Value, ApiError> {
    let arn = str_field(req, "stateMachineArn")?;
    let Target::Latest(name) = parse_target(arn)? else {
        return Err(ApiError::validation(
            "stateMachineArn must be an unqualified state machine ARN",
        ));
    };
    load_sm(app, &name)?;
    let mut out = Vec::new();
    for (_, v) in app.catalog.versions(&name)?.into_iter().rev() {
        let v: VersionRecord = serde_json::from_slice(&v)?;
        if !vis.shows(&version_arn(&name, v.version)) {
            continue;
        }
        out.push(json!({"stateMachineVersionArn": version_arn(&name, v.version), "creationDate": ts(v.creation_ms)}));
    }
    Ok(json!({"stateMachineVersions": out}))
}

fn aliases_routing_to(app: &AppState, name: &str, v: u64) -> Result<Vec<String>, ApiError> {
    let mut out = Vec::new();
    for (_, a) in app.catalog.aliases(name)? {
        let a: AliasRecord = serde_json::from_slice(&a)?;
        if a.routing.iter().any(|(x, _)| *x == v) {
            out.push(a.name);
        }
    }
    Ok(out)
}

pub(crate) fn delete_version(app: &Arc<AppState>, req: &Value) -> Result<Value, ApiError> {
    let arn = str_field(req, "stateMachineVersionArn")?;
    let Target::Version(name, v) = parse_target(arn)? else {
        return Err(ApiError::validation(
            "stateMachineVersionArn must name a version (NAME:N)",
        ));
    };
    let used = aliases_routing_to(app, &name, v)?;
    if !used.is_empty() {
        return Err(ApiError::new(
            "ConflictException",
            format!(
                "version {v} is routed to by alias(es) {}; update them first",
                used.join(", ")
            ),
        ));
    }
    app.catalog.remove_version(&name, v)?;
    commit(app)?;
    Ok(json!({}))
}

fn routing(app: &AppState, name: &str, req: &Value) -> Result<Vec<(u64, u32)>, ApiError> {
    let Some(list) = req.get("routingConfiguration").and_then(Value::as_array) else {
        return Err(ApiError::validation(
            "routingConfiguration: a list of one or two {stateMachineVersionArn, weight}",
        ));
    };
    if list.is_empty() || list.len() > 2 {
        return Err(ApiError::validation(
            "routingConfiguration must route to one or two versions",
        ));
    }
    let mut out = Vec::new();
    for (i, r) in list.iter().enumerate() {
        let varn = r
            .get("stateMachineVersionArn")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                ApiError::validation(format!(
                    "routingConfiguration/{i}: stateMachineVersionArn missing"
                ))
            })?;
        let Target::Version(n, v) = parse_target(varn)? else {
            return Err(ApiError::validation(format!(
                "routingConfiguration/{i}: `{varn}` is not a version ARN"
            )));
        };
        if n != name {
            return Err(ApiError::validation(format!(
                "routingConfiguration/{i}: version of `{n}`, not of `{name}`"
            )));
        }
        load_version(app, &n, v)?;
        let w = r
            .get("weight")
            .and_then(Value::as_u64)
            .filter(|w| *w <= 100)
            .ok_or_else(|| {
                ApiError::validation(format!("routingConfiguration/{i}: weight must be 0..100"))
            })?;
        out.push((v, w as u32));
    }
    if out.iter().map(|(_, w)| w).sum::<u32>() != 100 {
        return Err(ApiError::validation(
            "routingConfiguration weights must add up to 100",
        ));
    }
    if out.len() == 2 && out[0].0 == out[1].0 {
        return Err(ApiError::validation(
            "routingConfiguration names the same version twice",
        ));
    }
    Ok(out)
}

fn name_of_alias_arn(arn: &str) -> Result<(String, String), ApiError> {
    match parse_target(arn)? {
        Target::Alias(n, a) => Ok((n, a)),
        _ => Err(ApiError::validation(
            "stateMachineAliasArn must name an alias (NAME:ALIAS)",
        )),
    }
}

fn alias_json(name: &str, a: &AliasRecord) -> Value {
    let mut v = json!({
        "stateMachineAliasArn": alias_arn(name, &a.name),
        "name": a.name,
        "routingConfiguration": a.routing.iter().map(|(v, w)| json!({"stateMachineVersionArn": version_arn(name, *v), "weight": w})).collect::<Vec<_>>(),
        "creationDate": ts(a.creation_ms),
        "updateDate": ts(a.update_ms.unwrap_or(a.creation_ms)),
    });
    if let Some(d) = &a.description {
        v["description"] = json!(d);
    }
    v
}

pub(crate) fn create_alias(app: &Arc<AppState>, req: &Value) -> Result<Value, ApiError> {
    let alias = str_field(req, "name")?;
    valid_name(alias).map_err(|m| ApiError::new("InvalidName", m))?;
    if alias.chars().all(|c| c.is_ascii_digit()) {
        return Err(ApiError::new(
            "InvalidName",
            "an alias name cannot be only digits (that is a version)",
        ));
    }
    let list = req.get("routingConfiguration").and_then(Value::as_array);
    let first = list
        .and_then(|l| l.first())
        .and_then(|r| r.get("stateMachineVersionArn"))
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::validation("routingConfiguration: at least one version"))?;
    let Target::Version(name, _) = parse_target(first)? else {
        return Err(ApiError::validation(
            "routingConfiguration names a version ARN",
        ));
    };
    let routing = routing(app, &name, req)?;
    let rec = AliasRecord {
        name: alias.to_string(),
        description: req
            .get("description")
            .and_then(Value::as_str)
            .map(str::to_string),
        routing,
        creation_ms: now_ms(),
        update_ms: None,
    };
    let existing = app
        .catalog
        .insert_alias(&name, alias, &serde_json::to_vec(&rec)?)?;
    if let Some(current) = existing {
        let old: AliasRecord = serde_json::from_slice(&current)?;
        if old.routing != rec.routing {
            return Err(ApiError::new(
                "ConflictException",
                format!(
                    "alias {} already exists with another routing",
                    alias_arn(&name, alias)
                ),
            ));
        }
        return Ok(
            json!({"stateMachineAliasArn": alias_arn(&name, alias), "creationDate": ts(old.creation_ms)}),
        );
    }
    commit(app)?;
    Ok(
        json!({"stateMachineAliasArn": alias_arn(&name, alias), "creationDate": ts(rec.creation_ms)}),
    )
}

pub(crate) fn update_alias(app: &Arc<AppState>, req: &Value) -> Result<Value, ApiError> {
    let (name, alias) = name_of_alias_arn(str_field(req, "stateMachineAliasArn")?)?;
    let mut rec = load_alias(app, &name, &alias)?;
    if req.get("routingConfiguration").is_some() {
        rec.routing = routing(app, &name, req)?;
    }
    if let Some(d) = req.get("description").and_then(Value::as_str) {
        rec.description = Some(d.to_string());
    }
    rec.update_ms = Some(now_ms());
    app.catalog
        .put_alias(&name, &alias, &serde_json::to_vec(&rec)?)?;
    commit(app)?;
    Ok(json!({"updateDate": ts(rec.update_ms.unwrap_or_default())}))
}

pub(crate) fn describe_alias(app: &Arc<AppState>, req: &Value) -> Result<Value, ApiError> {
    let (name, alias) = name_of_alias_arn(str_field(req, "stateMachineAliasArn")?)?;
    Ok(alias_json(&name, &load_alias(app, &name, &alias)?))
}

pub(crate) fn list_aliases(
    app: &Arc<AppState>,
    req: &Value,
    vis: &crate::access::Visible<'_>,
) -> Result<Value, ApiError> {
    let arn = str_field(req, "stateMachineArn")?;
    let Target::Latest(name) = parse_target(arn)? else {
        return Err(ApiError::validation(
            "stateMachineArn must be an unqualified state machine ARN",
        ));
    };
    let mut out = Vec::new();
    for (_, a) in app.catalog.aliases(&name)? {
        let a: AliasRecord = serde_json::from_slice(&a)?;
        if !vis.shows(&alias_arn(&name, &a.name)) {
            continue;
        }
        out.push(json!({"stateMachineAliasArn": alias_arn(&name, &a.name), "creationDate": ts(a.creation_ms)}));
    }
    Ok(json!({"stateMachineAliases": out}))
}

pub(crate) fn delete_alias(app: &Arc<AppState>, req: &Value) -> Result<Value, ApiError> {
    let (name, alias) = name_of_alias_arn(str_field(req, "stateMachineAliasArn")?)?;
    app.catalog.remove_alias(&name, &alias)?;
    commit(app)?;
    Ok(json!({}))
}

/// What an execution started from a (possibly qualified) ARN runs.
pub struct Resolved {
    pub sm: StateMachineRecord,
    pub version_arn: Option<String>,
    pub alias_arn: Option<String>,
}

/// Resolves a StartExecution `stateMachineArn`: the latest definition, a version's snapshot,
/// or an alias' weighted pick between its versions.
pub fn resolve(app: &AppState, arn: &str) -> Result<Resolved, ApiError> {
    let (name, version, alias) = match parse_target(arn)? {
        Target::Latest(n) => (n, None, None),
        Target::Version(n, v) => (n, Some(v), None),
        Target::Alias(n, a) => {
            let rec = load_alias(app, &n, &a)?;
            let roll = (uuid::Uuid::new_v4().as_u128() % 100) as u32;
            let mut acc = 0;
            let mut pick = rec.routing[0].0;
            for (v, w) in &rec.routing {
                acc += w;
                if roll < acc {
                    pick = *v;
                    break;
                }
            }
            let aarn = alias_arn(&n, &a);
            (n, Some(pick), Some(aarn))
        }
    };
    let mut sm = load_sm(app, &name)?;
    let version_arn = match version {
        None => None,
        Some(v) => {
            let vr = load_version(app, &name, v)?;
            sm.definition = vr.definition;
            sm.role_arn = vr.role_arn;
            Some(version_arn(&name, v))
        }
    };
    Ok(Resolved {
        sm,
        version_arn,
        alias_arn: alias,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let b = sm_arn("flow");
        assert_eq!(parse_target(&b).unwrap(), Target::Latest("flow".into()));
        assert_eq!(
            parse_target(&format!("{b}:3")).unwrap(),
            Target::Version("flow".into(), 3)
        );
        assert_eq!(
            parse_target(&format!("{b}:prod")).unwrap(),
            Target::Alias("flow".into(), "prod".into())
        );
        assert!(parse_target("arn:aws:states:us-east-1:1:execution:flow:x").is_err());
        assert!(parse_target(&format!("{b}:a b")).is_err());
    }
}
