//! Activities: CreateActivity / DeleteActivity / DescribeActivity / ListActivities and the
//! worker side, GetActivityTask (a long poll of up to 60 s, as AWS). A Task whose Resource is
//! `arn:aws:states:REGION:ACCOUNT:activity:NAME` waits (see [`weft_engine::standard::runner`]) until a worker takes it
//! and answers with SendTaskSuccess / SendTaskFailure / SendTaskHeartbeat.

use crate::error::ApiError;
use crate::records::*;
use crate::AppState;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// How long GetActivityTask waits for work (AWS: 60 s).
pub const LONG_POLL: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ActivityRecord {
    name: String,
    arn: String,
    creation_ms: i64,
}

fn activity_arn(name: &str) -> String {
    format!("arn:aws:states:{REGION}:{ACCOUNT}:activity:{name}")
}

fn name_of(arn: &str) -> Result<String, ApiError> {
    let bad = || {
        ApiError::new(
            "InvalidArn",
            format!("Invalid Arn: 'Resource type not valid in this context: {arn}'"),
        )
    };
    let mut it = arn.splitn(7, ':');
    let parts: Vec<&str> = it.by_ref().collect();
    match parts.as_slice() {
        ["arn", p, "states", _, _, "activity", name]
            if p.starts_with("aws") && valid_name(name).is_ok() =>
        {
            Ok(name.to_string())
        }
        _ => Err(bad()),
    }
}

fn str_field<'a>(req: &'a Value, f: &str) -> Result<&'a str, ApiError> {
    match req.get(f) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(ApiError::validation(format!(
            "1 validation error detected: Value at '{f}' must be a string"
        ))),
        None => Err(ApiError::validation(format!(
            "1 validation error detected: Value null at '{f}' failed to satisfy constraint: Member must not be null"
        ))),
    }
}

fn load(app: &AppState, name: &str) -> Result<Option<ActivityRecord>, ApiError> {
    match app.rt.activities.activity(name)? {
        None => Ok(None),
        Some(v) => Ok(Some(serde_json::from_slice(&v)?)),
    }
}

pub(crate) fn create(app: &Arc<AppState>, req: &Value) -> Result<Value, ApiError> {
    let name = str_field(req, "name")?;
    valid_name(name).map_err(|m| ApiError::new("InvalidName", m))?;
    let tags = crate::tags::parse_tags(req.get("tags"))?;
    if let Some(a) = load(app, name)? {
        // as AWS: creating an existing activity is idempotent
        return Ok(json!({"activityArn": a.arn, "creationDate": ts(a.creation_ms)}));
    }
    let rec = ActivityRecord {
        name: name.to_string(),
        arn: activity_arn(name),
        creation_ms: now_ms(),
    };
    app.rt
        .activities
        .put_activity(name, &serde_json::to_vec(&rec)?)?;
    crate::tags::add(app, &rec.arn, &tags)?;
    app.rt
        .commit
        .commit()
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(json!({"activityArn": rec.arn, "creationDate": ts(rec.creation_ms)}))
}

pub(crate) fn delete(app: &Arc<AppState>, req: &Value) -> Result<Value, ApiError> {
    let name = name_of(str_field(req, "activityArn")?)?;
    app.rt.activities.remove_activity(&name)?;
    crate::tags::forget(app, &activity_arn(&name))?;
    app.rt
        .commit
        .commit()
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(json!({}))
}

pub(crate) fn describe(app: &Arc<AppState>, req: &Value) -> Result<Value, ApiError> {
    let arn = str_field(req, "activityArn")?;
    let name = name_of(arn)?;
    let a = load(app, &name)?.ok_or_else(|| {
        ApiError::new(
            "ActivityDoesNotExist",
            format!("Activity Does Not Exist: '{arn}'"),
        )
    })?;
    Ok(json!({"activityArn": a.arn, "name": a.name, "creationDate": ts(a.creation_ms)}))
}

pub(crate) fn list(
    app: &Arc<AppState>,
    req: &Value,
    vis: &crate::access::Visible<'_>,
) -> Result<Value, ApiError> {
    let max =
        match req.get("maxResults") {
            None | Some(Value::Null) => 100,
            Some(v) => match v.as_u64() {
                Some(n) if (0..=1000).contains(&n) => {
                    if n == 0 {
                        100
                    } else {
                        n as usize
                    }
                }
                _ => return Err(ApiError::validation(
                    "1 validation error detected: Value at 'maxResults' must be between 0 and 1000",
                )),
            },
        };
    let after = req.get("nextToken").and_then(Value::as_str).unwrap_or("");
    let mut out = Vec::new();
    let mut next = None;
    let after = Some(after).filter(|a| !a.is_empty());
    for (k, v) in app.rt.activities.activities(after, usize::MAX)? {
        let a: ActivityRecord = serde_json::from_slice(&v)?;
        if !vis.shows(&a.arn) {
            continue;
        }
        if out.len() == max {
            next = Some(k);
            break;
        }
        out.push(json!({"activityArn": a.arn, "name": a.name, "creationDate": ts(a.creation_ms)}));
    }
    let mut v = json!({ "activities": out });
    if let Some(n) = next {
        // the token names the last returned activity
        let last = out_last_name(&v);
        v["nextToken"] = json!(last.unwrap_or(n));
    }
    Ok(v)
}

fn out_last_name(v: &Value) -> Option<String> {
    v["activities"]
        .as_array()?
        .last()?
        .get("name")?
        .as_str()
        .map(str::to_string)
}

/// GetActivityTask: the next task of the activity, waiting up to 60 s for one; an empty answer
/// (no `taskToken`) when none came.
pub(crate) async fn get_task(app: &Arc<AppState>, req: &Value) -> Result<Value, ApiError> {
    let arn = str_field(req, "activityArn")?;
    let name = name_of(arn)?;
    if load(app, &name)?.is_none() {
        return Err(ApiError::new(
            "ActivityDoesNotExist",
            format!("Activity Does Not Exist: '{arn}'"),
        ));
    }
    let worker = req
        .get("workerName")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let deadline = tokio::time::Instant::now() + LONG_POLL;
    loop {
        let notified = app.rt.activity_ready.notified();
        let (a2, n2, w2) = (app.clone(), name.clone(), worker.clone());
        let got = tokio::task::spawn_blocking(move || a2.rt.claim_activity(&n2, &w2))
            .await
            .map_err(|e| ApiError::internal(e.to_string()))??;
        if let Some((token, input)) = got {
            return Ok(json!({"taskToken": token, "input": input}));
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Ok(json!({}));
        }
        // re-check at least every second (a notification may race with the claim above)
        let wait = (deadline - now).min(Duration::from_secs(1));
        let _ = tokio::time::timeout(wait, notified).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activity_arns() {
        assert_eq!(name_of(&activity_arn("work-1")).unwrap(), "work-1");
        assert!(name_of("arn:aws:states:us-east-1:1:stateMachine:x").is_err());
        assert!(name_of("nope").is_err());
    }
}
