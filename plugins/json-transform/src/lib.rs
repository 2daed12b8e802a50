//! `json-transform`: field pick / omit / rename / filter on a JSON object or array of objects.
//!
//! Input: `{"data": object | [object], "filter"?: F, "pick"?: [field], "omit"?: [field],
//!          "rename"?: {"old": "new"}}` — applied in that order (filter sees the original fields).
//! Fields may be dotted paths into nested objects (`"address.city"`); `pick` keeps the nested
//! shape, `rename` moves the value to the new (possibly dotted) name.
//! `F` is either `{"field": value, ..}` (all equal) or a list of conditions
//! `[{"field": f, "op": "eq|ne|gt|ge|lt|le|in|contains|exists|missing", "value"?: v}]` (all hold).
//! Output: the transformed `data` (an array stays an array; an object that fails the filter
//! becomes `null`).
use std::cmp::Ordering;

use serde::Deserialize;
use weft_guest::{Context, TaskError, Value};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    data: Value,
    #[serde(default)]
    pick: Option<Vec<String>>,
    #[serde(default)]
    omit: Option<Vec<String>>,
    #[serde(default)]
    rename: Option<serde_json::Map<String, Value>>,
    #[serde(default)]
    filter: Option<Value>,
}

struct Cond {
    field: String,
    op: String,
    value: Value,
}

fn parse_filter(f: &Value) -> Result<Vec<Cond>, TaskError> {
    match f {
        Value::Object(m) => Ok(m
            .iter()
            .map(|(k, v)| Cond {
                field: k.clone(),
                op: "eq".into(),
                value: v.clone(),
            })
            .collect()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let field = c.get("field").and_then(Value::as_str).ok_or_else(|| {
                    TaskError::invalid_input(format!("/filter/{i}/field: a string is required"))
                })?;
                let op = c.get("op").and_then(Value::as_str).unwrap_or("eq");
                const OPS: &[&str] = &[
                    "eq", "ne", "gt", "ge", "lt", "le", "in", "contains", "exists", "missing",
                ];
                if !OPS.contains(&op) {
                    return Err(TaskError::invalid_input(format!(
                        "/filter/{i}/op: unknown operator `{op}` (expected one of {})",
                        OPS.join(", ")
                    )));
                }
                Ok(Cond {
                    field: field.into(),
                    op: op.into(),
                    value: c.get("value").cloned().unwrap_or(Value::Null),
                })
            })
            .collect(),
        other => Err(TaskError::invalid_input(format!(
            "/filter: expected an object or a list of conditions, got {other}"
        ))),
    }
}

fn get<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(v, |cur, key| cur.as_object()?.get(key))
}

fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(_), Value::Number(_)) => compare(a, b) == Some(Ordering::Equal),
        _ => a == b,
    }
}

fn holds(row: &Value, c: &Cond) -> bool {
    let v = get(row, &c.field);
    match c.op.as_str() {
        "exists" => v.is_some(),
        "missing" => v.is_none(),
        "eq" => v.is_some_and(|v| equal(v, &c.value)),
        "ne" => !v.is_some_and(|v| equal(v, &c.value)),
        "gt" => v.and_then(|v| compare(v, &c.value)) == Some(Ordering::Greater),
        "ge" => matches!(
            v.and_then(|v| compare(v, &c.value)),
            Some(Ordering::Greater | Ordering::Equal)
        ),
        "lt" => v.and_then(|v| compare(v, &c.value)) == Some(Ordering::Less),
        "le" => matches!(
            v.and_then(|v| compare(v, &c.value)),
            Some(Ordering::Less | Ordering::Equal)
        ),
        "in" => v.is_some_and(|v| {
            c.value
                .as_array()
                .is_some_and(|opts| opts.iter().any(|o| equal(v, o)))
        }),
        "contains" => match (v, &c.value) {
            (Some(Value::String(s)), Value::String(needle)) => s.contains(needle.as_str()),
            (Some(Value::Array(items)), needle) => items.iter().any(|i| equal(i, needle)),
            _ => false,
        },
        _ => false,
    }
}

fn insert(target: &mut serde_json::Map<String, Value>, path: &str, value: Value) {
    let mut parts: Vec<&str> = path.split('.').collect();
    let last = parts.pop().unwrap_or(path);
    let mut cur = target;
    for p in parts {
        let entry = cur
            .entry(p.to_string())
            .or_insert_with(|| Value::Object(Default::default()));
        if !entry.is_object() {
            *entry = Value::Object(Default::default());
        }
        cur = entry.as_object_mut().expect("just made an object");
    }
    cur.insert(last.to_string(), value);
}

/// Removes a (dotted) field; parent objects left empty by the removal are removed too.
fn remove(target: &mut serde_json::Map<String, Value>, path: &str) -> Option<Value> {
    match path.split_once('.') {
        None => target.shift_remove(path),
        Some((head, rest)) => {
            let parent = target.get_mut(head)?.as_object_mut()?;
            let v = remove(parent, rest)?;
            if parent.is_empty() {
                target.shift_remove(head);
            }
            Some(v)
        }
    }
}

/// Renames a top-level key in place, keeping the field order.
fn rename_in_place(obj: &mut serde_json::Map<String, Value>, old: &str, new: &str) {
    if !obj.contains_key(old) {
        return;
    }
    let fields = std::mem::take(obj);
    for (k, v) in fields {
        if k == old {
            obj.insert(new.to_string(), v);
        } else if k != new {
            obj.insert(k, v);
        }
    }
}

fn transform(row: Value, input: &Input, at: &str) -> Result<Value, TaskError> {
    let Value::Object(mut obj) = row else {
        return Err(TaskError::invalid_input(format!(
            "{at}: expected an object, got {row}"
        )));
    };
    if let Some(pick) = &input.pick {
        let src = Value::Object(std::mem::take(&mut obj));
        for field in pick {
            if let Some(v) = get(&src, field) {
                insert(&mut obj, field, v.clone());
            }
        }
    }
    for field in input.omit.iter().flatten() {
        remove(&mut obj, field);
    }
    if let Some(rename) = &input.rename {
        for (old, new) in rename {
            let new = new.as_str().ok_or_else(|| {
                TaskError::invalid_input(format!("/rename/{old}: the new name must be a string"))
            })?;
            if !old.contains('.') && !new.contains('.') {
                rename_in_place(&mut obj, old, new);
            } else if let Some(v) = remove(&mut obj, old) {
                insert(&mut obj, new, v);
            }
        }
    }
    Ok(Value::Object(obj))
}

fn run(_ctx: &Context, mut input: Input) -> Result<Value, TaskError> {
    let conds = match &input.filter {
        Some(f) => parse_filter(f)?,
        None => Vec::new(),
    };
    let keep = |row: &Value| conds.iter().all(|c| holds(row, c));
    match std::mem::take(&mut input.data) {
        Value::Array(rows) => {
            let mut out = Vec::with_capacity(rows.len());
            for (i, row) in rows.into_iter().enumerate() {
                if keep(&row) {
                    out.push(transform(row, &input, &format!("/data/{i}"))?);
                }
            }
            Ok(Value::Array(out))
        }
        obj @ Value::Object(_) => {
            if keep(&obj) {
                transform(obj, &input, "/data")
            } else {
                Ok(Value::Null)
            }
        }
        other => Err(TaskError::invalid_input(format!(
            "/data: expected an object or an array of objects, got {other}"
        ))),
    }
}

weft_guest::export_operator!(run);
