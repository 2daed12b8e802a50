//! Tags of state machines and activities: TagResource, UntagResource, ListTagsForResource and
//! the `tags` given to CreateStateMachine / CreateActivity, with AWS's limits (at most 50 tags
//! on a resource, keys 1-128 and values 0-256 characters, keys not starting with `aws:`).
//!
//! Tags live in the catalog ([`weft_engine::persistence::CatalogStore::tags`]: by the resource's
//! canonical ARN, a JSON object of key -> value); only the functions of this module read or
//! write them. Deleting a
//! resource forgets its tags ([`forget`]).

use crate::error::ApiError;
use crate::AppState;
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// AWS's limit on the tags of one resource.
pub const MAX_TAGS: usize = 50;
/// AWS's limit on a tag key (characters).
pub const MAX_KEY: usize = 128;
/// AWS's limit on a tag value (characters).
pub const MAX_VALUE: usize = 256;

fn load(app: &AppState, arn: &str) -> Result<Map<String, Value>, ApiError> {
    Ok(match app.catalog.tags(arn)? {
        Some(b) => serde_json::from_slice(&b)?,
        None => Map::new(),
    })
}

fn too_many(n: usize) -> ApiError {
    ApiError::new(
        "TooManyTags",
        format!(
            "Too many tags: a resource has at most {MAX_TAGS} tags (this request would leave {n})"
        ),
    )
}

/// Reads a `tags` list (`[{"key", "value"}]`) and checks each tag.
pub fn parse_tags(v: Option<&Value>) -> Result<Vec<(String, String)>, ApiError> {
    let list = match v {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(a)) => a,
        Some(_) => {
            return Err(ApiError::new(
                "SerializationException",
                "`tags` must be a list of {\"key\", \"value\"}",
            ))
        }
    };
    if list.len() > MAX_TAGS {
        return Err(too_many(list.len()));
    }
    let mut out = Vec::with_capacity(list.len());
    for (i, t) in list.iter().enumerate() {
        let key = t.get("key").and_then(Value::as_str).ok_or_else(|| {
            ApiError::validation(format!(
                "1 validation error detected: Value null at 'tags.{}.member.key' failed to satisfy constraint: Member must not be null",
                i + 1
            ))
        })?;
        let value = match t.get("value") {
            None | Some(Value::Null) => "",
            Some(Value::String(s)) => s,
            Some(_) => {
                return Err(ApiError::new(
                    "SerializationException",
                    format!("`tags[{i}].value` must be a string"),
                ))
            }
        };
        check_key(key, &format!("tags.{}.member.key", i + 1))?;
        if value.chars().count() > MAX_VALUE {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value at 'tags.{}.member.value' failed to satisfy constraint: Member must have length less than or equal to {MAX_VALUE}",
                i + 1
            )));
        }
        out.push((key.to_string(), value.to_string()));
    }
    Ok(out)
}

fn check_key(key: &str, at: &str) -> Result<(), ApiError> {
    let n = key.chars().count();
    if n == 0 || n > MAX_KEY {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value at '{at}' failed to satisfy constraint: Member must have length between 1 and {MAX_KEY}"
        )));
    }
    if key.to_ascii_lowercase().starts_with("aws:") {
        return Err(ApiError::validation(format!(
            "Tag keys starting with 'aws:' are reserved: '{key}'"
        )));
    }
    Ok(())
}

/// Adds (or overwrites) `tags` on `arn`, keeping at most [`MAX_TAGS`].
pub fn add(app: &AppState, arn: &str, tags: &[(String, String)]) -> Result<(), ApiError> {
    if tags.is_empty() {
        return Ok(());
    }
    let mut err = None;
    app.catalog.update_tags(arn, &mut |old| {
        let mut m: Map<String, Value> = old
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or_default();
        for (k, v) in tags {
            m.insert(k.clone(), json!(v));
        }
        if m.len() > MAX_TAGS {
            err = Some(too_many(m.len()));
            return old.map(<[u8]>::to_vec);
        }
        err = None;
        serde_json::to_vec(&m).ok()
    })?;
    match err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Forgets every tag of `arn` (the resource was deleted).
pub fn forget(app: &AppState, arn: &str) -> Result<(), ApiError> {
    app.catalog.remove_tags(arn)?;
    Ok(())
}

/// The resource must exist: a state machine (unqualified) or an activity.
fn existing(app: &AppState, arn: &str) -> Result<(), ApiError> {
    let found = match crate::access::Arn::parse(arn)? {
        crate::access::Arn::StateMachine {
            name,
            qualifier: None,
        } => app.catalog.state_machine(&name)?.is_some(),
        crate::access::Arn::Activity { name } => app.rt.activities.activity(&name)?.is_some(),
        _ => {
            return Err(ApiError::new(
                "InvalidArn",
                format!("Invalid Arn: 'only state machines and activities have tags: {arn}'"),
            ))
        }
    };
    if found {
        Ok(())
    } else {
        Err(ApiError::new(
            "ResourceNotFound",
            format!("Resource not found: '{arn}'"),
        ))
    }
}

fn resource_arn(req: &Value) -> Result<&str, ApiError> {
    match req.get("resourceArn") {
        Some(Value::String(s)) => Ok(s),
        None | Some(Value::Null) => Err(ApiError::validation(
            "1 validation error detected: Value null at 'resourceArn' failed to satisfy constraint: Member must not be null",
        )),
        Some(_) => Err(ApiError::new(
            "SerializationException",
            "`resourceArn` must be a string",
        )),
    }
}

/// TagResource.
pub(crate) async fn tag_resource(app: &Arc<AppState>, req: &Value) -> Result<Value, ApiError> {
    let arn = resource_arn(req)?;
    let tags = parse_tags(req.get("tags"))?;
    if req.get("tags").is_none_or(Value::is_null) {
        return Err(ApiError::validation(
            "1 validation error detected: Value null at 'tags' failed to satisfy constraint: Member must not be null",
        ));
    }
    existing(app, arn)?;
    add(app, arn, &tags)?;
    crate::api::flush(app).await?;
    Ok(json!({}))
}

/// UntagResource.
pub(crate) async fn untag_resource(app: &Arc<AppState>, req: &Value) -> Result<Value, ApiError> {
    let arn = resource_arn(req)?;
    let keys: Vec<String> = match req.get("tagKeys") {
        Some(Value::Array(a)) if a.len() <= MAX_TAGS => a
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let k = k.as_str().ok_or_else(|| {
                    ApiError::new(
                        "SerializationException",
                        format!("`tagKeys[{i}]` must be a string"),
                    )
                })?;
                check_key(k, &format!("tagKeys.{}.member", i + 1))?;
                Ok(k.to_string())
            })
            .collect::<Result<_, ApiError>>()?,
        Some(Value::Array(_)) => return Err(too_many(0)),
        None | Some(Value::Null) => {
            return Err(ApiError::validation(
                "1 validation error detected: Value null at 'tagKeys' failed to satisfy constraint: Member must not be null",
            ))
        }
        Some(_) => {
            return Err(ApiError::new(
                "SerializationException",
                "`tagKeys` must be a list of strings",
            ))
        }
    };
    existing(app, arn)?;
    app.catalog.update_tags(arn, &mut |old| {
        let mut m: Map<String, Value> = serde_json::from_slice(old?).ok()?;
        for k in &keys {
            m.remove(k);
        }
        if m.is_empty() {
            None
        } else {
            serde_json::to_vec(&m).ok()
        }
    })?;
    crate::api::flush(app).await?;
    Ok(json!({}))
}

/// ListTagsForResource.
pub(crate) fn list_tags(app: &Arc<AppState>, req: &Value) -> Result<Value, ApiError> {
    let arn = resource_arn(req)?;
    existing(app, arn)?;
    let tags: Vec<Value> = load(app, arn)?
        .into_iter()
        .map(|(k, v)| json!({"key": k, "value": v}))
        .collect();
    Ok(json!({ "tags": tags }))
}
