//! dag-factory's typed YAML values, read without importing anything: a mapping with
//! `__type__` (and optional `__args__`) is a Python object dag-factory would construct, and
//! `__join__` concatenates strings.
//!
//! [`normalize`] rewrites the forms the loader needs as plain values: `builtins.list` becomes
//! its `items`, `datetime.timedelta` a mapping of named fields, `datetime.datetime` /
//! `datetime.date` (and pendulum's) an ISO 8601 string, `__join__` a string. Every other
//! `__type__` mapping (timetables, assets, provider objects in task arguments) is kept as
//! written, for the schedule parser or the plugin that receives it. Nothing is imported or run.

use crate::yaml::{Key, Node, Val};

/// A typed value that cannot be built, with its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeError {
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

const TIMEDELTA_ARGS: [&str; 7] = [
    "days",
    "seconds",
    "microseconds",
    "milliseconds",
    "minutes",
    "hours",
    "weeks",
];
const DATETIME_ARGS: [&str; 6] = ["year", "month", "day", "hour", "minute", "second"];

/// Rewrite the typed values of a document (see the module docs).
pub fn normalize(node: Node) -> Result<Node, TypeError> {
    let line = node.line;
    match node.value {
        Val::Seq(items) => Ok(Node {
            value: Val::Seq(items.into_iter().map(normalize).collect::<Result<_, _>>()?),
            line,
        }),
        Val::Map(entries) => {
            let entries: Vec<(Key, Node)> = entries
                .into_iter()
                .map(|(k, v)| normalize(v).map(|v| (k, v)))
                .collect::<Result<_, _>>()?;
            typed(entries, line)
        }
        other => Ok(Node { value: other, line }),
    }
}

fn get<'a>(entries: &'a [(Key, Node)], key: &str) -> Option<&'a Node> {
    entries.iter().find(|(k, _)| k.name == key).map(|(_, v)| v)
}

fn typed(entries: Vec<(Key, Node)>, line: usize) -> Result<Node, TypeError> {
    let err = |message: String| TypeError { line, message };
    if entries.len() == 1 && entries[0].0.name == "__join__" {
        let Val::Seq(items) = &entries[0].1.value else {
            return Err(err("`__join__` needs a list".into()));
        };
        let mut s = String::new();
        for i in items {
            match i.scalar_text() {
                Some(t) if !i.is_null() => s.push_str(&t),
                _ => {
                    return Err(err(format!(
                        "`__join__` joins scalars, got {}",
                        i.type_name()
                    )))
                }
            }
        }
        return Ok(Node {
            value: Val::Str(s),
            line,
        });
    }
    let Some(type_path) = get(&entries, "__type__").and_then(Node::as_str) else {
        return Ok(Node {
            value: Val::Map(entries),
            line,
        });
    };
    let type_path = type_path.to_string();
    let args: Vec<Node> = match get(&entries, "__args__").map(|n| &n.value) {
        None | Some(Val::Null) => Vec::new(),
        Some(Val::Seq(a)) => a.clone(),
        Some(_) => return Err(err(format!("{type_path}: `__args__` must be a list"))),
    };
    // Named fields, with positional `__args__` given their parameter names.
    let named = |names: &[&str]| -> Result<Vec<(Key, Node)>, TypeError> {
        if args.len() > names.len() {
            return Err(err(format!(
                "{type_path} takes at most {} positional arguments, got {}",
                names.len(),
                args.len()
            )));
        }
        let mut out: Vec<(Key, Node)> = args
            .iter()
            .zip(names)
            .map(|(a, n)| {
                (
                    Key {
                        name: n.to_string(),
                        line: a.line,
                    },
                    a.clone(),
                )
            })
            .collect();
        for (k, v) in &entries {
            if k.name == "__type__" || k.name == "__args__" {
                continue;
            }
            if out.iter().any(|(o, _)| o.name == k.name) {
                return Err(err(format!("{type_path}: `{}` given twice", k.name)));
            }
            out.push((k.clone(), v.clone()));
        }
        Ok(out)
    };
    match type_path.as_str() {
        "builtins.list" => match get(&entries, "items") {
            Some(Node {
                value: Val::Seq(items),
                ..
            }) => Ok(Node {
                value: Val::Seq(items.clone()),
                line,
            }),
            _ => Err(err("`builtins.list` needs `items: [...]`".into())),
        },
        "datetime.timedelta" | "pendulum.duration" | "pendulum.Duration" => {
            let mut fields = named(&TIMEDELTA_ARGS)?;
            fields.insert(
                0,
                (
                    Key {
                        name: "__type__".into(),
                        line,
                    },
                    Node {
                        value: Val::Str(type_path.clone()),
                        line,
                    },
                ),
            );
            Ok(Node {
                value: Val::Map(fields),
                line,
            })
        }
        "datetime.datetime" | "datetime.date" | "pendulum.datetime" | "pendulum.DateTime" => {
            let fields = named(&DATETIME_ARGS)?;
            Ok(Node {
                value: Val::Str(iso(&type_path, &fields).map_err(err)?),
                line,
            })
        }
        _ => Ok(Node {
            value: Val::Map(entries),
            line,
        }),
    }
}

fn iso(type_path: &str, fields: &[(Key, Node)]) -> Result<String, String> {
    let num = |name: &str, default: Option<i64>| -> Result<i64, String> {
        match fields
            .iter()
            .find(|(k, _)| k.name == name)
            .map(|(_, v)| &v.value)
        {
            Some(Val::Int(i)) => Ok(*i),
            Some(_) => Err(format!("{type_path}: `{name}` must be an integer")),
            None => default.ok_or_else(|| format!("{type_path} needs `{name}`")),
        }
    };
    for (k, _) in fields {
        if !DATETIME_ARGS.contains(&k.name.as_str())
            && !matches!(k.name.as_str(), "tzinfo" | "tz" | "microsecond")
        {
            return Err(format!("{type_path}: unknown field `{}`", k.name));
        }
    }
    let (y, mo, d) = (num("year", None)?, num("month", None)?, num("day", None)?);
    let (h, mi, s) = (
        num("hour", Some(0))?,
        num("minute", Some(0))?,
        num("second", Some(0))?,
    );
    let small = |v: i64| u32::try_from(v).ok();
    let date = i32::try_from(y)
        .ok()
        .zip(small(mo))
        .zip(small(d))
        .and_then(|((y, m), d)| chrono::NaiveDate::from_ymd_opt(y, m, d))
        .ok_or_else(|| format!("{type_path}: no such date {y}-{mo}-{d}"))?;
    let dt = small(h)
        .zip(small(mi))
        .zip(small(s))
        .and_then(|((h, m), s)| date.and_hms_opt(h, m, s))
        .ok_or_else(|| format!("{type_path}: no such time {h}:{mi}:{s}"))?;
    Ok(dt.format("%Y-%m-%dT%H:%M:%S").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn norm(text: &str) -> Result<serde_json::Value, TypeError> {
        normalize(crate::yaml::parse(text).unwrap()).map(|n| n.to_json())
    }

    #[test]
    fn typed_values() {
        let j = norm(
            "a: {__type__: datetime.timedelta, __args__: [1], hours: 2}\n\
             b: {__type__: datetime.datetime, year: 2024, month: 3, day: 5, hour: 6}\n\
             c: {__type__: builtins.list, items: [1, 2]}\n\
             d: {__join__: [s3://, bucket, /x]}\n\
             e: {__type__: airflow.sdk.Asset, uri: s3://a}\n",
        )
        .unwrap();
        assert_eq!(
            j["a"],
            json!({"__type__": "datetime.timedelta", "days": 1, "hours": 2})
        );
        assert_eq!(j["b"], "2024-03-05T06:00:00");
        assert_eq!(j["c"], json!([1, 2]));
        assert_eq!(j["d"], "s3://bucket/x");
        assert_eq!(j["e"]["uri"], "s3://a");
    }

    #[test]
    fn bad_typed_values_name_their_line() {
        let e = norm("a: 1\nb: {__type__: datetime.datetime, year: 2024, month: 13, day: 1}\n")
            .unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("no such date"), "{e:?}");
        let e =
            norm("b: {__type__: datetime.timedelta, __args__: [1,2,3,4,5,6,7,8]}\n").unwrap_err();
        assert!(e.message.contains("at most 7"), "{e:?}");
    }
}
