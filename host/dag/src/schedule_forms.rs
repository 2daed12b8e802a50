//! The schedule forms dag-factory builds from YAML objects: `__type__` timetables
//! (`CronTriggerTimetable`, `CronDataIntervalTimetable`, `DeltaDataIntervalTimetable`,
//! `relativedelta`), dataset / asset schedules (lists of URIs, asset objects, `__and__` /
//! `__or__` trees, `{datasets: .., file: .., timetable: ..}`) and custom timetable classes.
//!
//! Each becomes a [`Schedule`]. Asset conditions are checked by [`crate::assets::Condition`] and
//! run by the scheduler (with the timetable of a `DatasetOrTimeSchedule` beside them);
//! timetables weft cannot evaluate are kept as [`Schedule::NotRun`]: the DAG loads and runs when
//! triggered. [`not_run_note`] says so in words.

use chrono_tz::Tz;
use serde_json::{Map, Value};

use crate::timetable::{parse_duration, Schedule};

/// Class names (last path segment) of dataset / asset objects.
const ASSET_CLASSES: &[&str] = &[
    "Asset",
    "Dataset",
    "AssetAlias",
    "DatasetAlias",
    "AssetAll",
    "AssetAny",
    "DatasetAll",
    "DatasetAny",
    "Model",
];

fn class_name(type_path: &str) -> &str {
    type_path.rsplit('.').next().unwrap_or(type_path)
}

/// Whether a schedule mapping is one of these forms (not a plain timedelta mapping).
pub fn is_special(m: &Map<String, Value>) -> bool {
    match m.get("__type__").and_then(Value::as_str) {
        Some(t) => !matches!(class_name(t), "timedelta" | "Duration" | "duration"),
        None => m.contains_key("__and__") || m.contains_key("__or__") || m.contains_key("datasets"),
    }
}

/// A schedule given as a list: dataset / asset URIs or objects (`[]` is no schedule).
pub fn parse_assets(items: &[Value]) -> Result<Schedule, String> {
    let items: Vec<Value> = items
        .iter()
        .filter(|v| !v.is_null() && v.as_str().is_none_or(|s| !s.trim().is_empty()))
        .cloned()
        .collect();
    if items.is_empty() {
        return Ok(Schedule::Never);
    }
    for i in &items {
        if !(i.is_string() || i.is_object()) {
            return Err(format!(
                "a schedule list must hold dataset URIs or asset objects, got {i}"
            ));
        }
    }
    Ok(Schedule::Assets {
        condition: Value::Array(items),
        timetable: None,
    })
}

/// A schedule mapping with `__type__`, `__and__` / `__or__` or `datasets`.
pub fn parse_object(m: &Map<String, Value>) -> Result<Schedule, String> {
    if let Some(datasets) = m.get("datasets") {
        for k in m.keys() {
            if !matches!(k.as_str(), "datasets" | "file" | "timetable") {
                return Err(format!(
                    "unknown key `{k}` in a dataset schedule (expected datasets, file, timetable)"
                ));
            }
        }
        let timetable = match m.get("timetable") {
            None | Some(Value::Null) => None,
            Some(t) => Some(Box::new(
                Schedule::parse(t).map_err(|e| format!("timetable: {e}"))?,
            )),
        };
        let mut condition = datasets.clone();
        if let Some(file) = m.get("file") {
            condition = serde_json::json!({"file": file, "datasets": datasets});
        }
        return Ok(Schedule::Assets {
            condition,
            timetable,
        });
    }
    let Some(type_path) = m.get("__type__").and_then(Value::as_str) else {
        return Ok(Schedule::Assets {
            condition: Value::Object(m.clone()),
            timetable: None,
        });
    };
    let args = positional(m)?;
    let field = |name: &str, pos: usize| m.get(name).or_else(|| args.get(pos));
    match class_name(type_path) {
        c if ASSET_CLASSES.contains(&c) => Ok(Schedule::Assets {
            condition: Value::Object(m.clone()),
            timetable: None,
        }),
        "list" => match m.get("items") {
            Some(Value::Array(items)) => parse_assets(items),
            _ => Err("`builtins.list` needs `items: [...]`".into()),
        },
        "CronTriggerTimetable" | "CronDataIntervalTimetable" => {
            let cron = field("cron", 0)
                .and_then(Value::as_str)
                .ok_or_else(|| format!("{type_path} needs `cron`"))?;
            let timezone = match field("timezone", 1) {
                None | Some(Value::Null) => None,
                Some(Value::String(z)) => Some(
                    z.parse::<Tz>()
                        .map_err(|_| format!("{type_path}: unknown timezone `{z}`"))?,
                ),
                Some(other) => {
                    return Err(format!("{type_path}: timezone must be a name, got {other}"))
                }
            };
            let Schedule::Cron { source, cron, .. } = Schedule::parse(&Value::String(cron.into()))?
            else {
                return Err(format!(
                    "{type_path}: `cron` must be a cron expression or preset"
                ));
            };
            if class_name(type_path) == "CronDataIntervalTimetable" {
                return Ok(Schedule::Cron {
                    source,
                    cron,
                    timezone,
                });
            }
            Ok(Schedule::CronTrigger {
                source,
                cron,
                timezone,
                interval: trigger_interval(m, type_path)?,
            })
        }
        "DeltaDataIntervalTimetable" | "DeltaTriggerTimetable" => {
            let delta = field("delta", 0).ok_or_else(|| format!("{type_path} needs `delta`"))?;
            let delta = match Schedule::parse(delta)? {
                Schedule::Delta(d) => d,
                // a relativedelta with calendar fields: kept, not run
                other @ Schedule::NotRun { .. } => return Ok(other),
                _ => return Err(format!("{type_path}: `delta` must be a timedelta")),
            };
            if class_name(type_path) == "DeltaDataIntervalTimetable" {
                return Ok(Schedule::Delta(delta));
            }
            Ok(Schedule::DeltaTrigger {
                delta,
                interval: trigger_interval(m, type_path)?,
            })
        }
        "relativedelta" => Ok(relativedelta(m)),
        _ => Ok(Schedule::NotRun {
            what: format!("the timetable `{type_path}`"),
        }),
    }
}

/// A trigger timetable's `interval` keyword (zero when absent).
fn trigger_interval(
    m: &Map<String, Value>,
    type_path: &str,
) -> Result<std::time::Duration, String> {
    match m.get("interval") {
        None | Some(Value::Null) => Ok(std::time::Duration::ZERO),
        Some(v) => parse_duration(v).map_err(|e| format!("{type_path}.interval: {e}")),
    }
}

/// `__args__` (positional arguments), if any.
fn positional(m: &Map<String, Value>) -> Result<Vec<Value>, String> {
    match m.get("__args__") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => Ok(a.clone()),
        Some(other) => Err(format!("`__args__` must be a list, got {other}")),
    }
}

/// A `relativedelta` of whole weeks/days/hours/minutes/seconds is a fixed period; one with
/// calendar fields (months, years, absolute `hour: 18`, ...) is kept but not run.
fn relativedelta(m: &Map<String, Value>) -> Schedule {
    let mut fixed = Map::new();
    for (k, v) in m {
        match k.as_str() {
            "__type__" => {}
            "weeks" | "days" | "hours" | "minutes" | "seconds" | "microseconds" => {
                fixed.insert(k.clone(), v.clone());
            }
            _ => {
                return Schedule::NotRun {
                    what: format!("the relativedelta schedule {}", Value::Object(m.clone())),
                }
            }
        }
    }
    match parse_duration(&Value::Object(fixed)) {
        Ok(d) if !d.is_zero() => Schedule::Delta(d),
        _ => Schedule::NotRun {
            what: format!("the relativedelta schedule {}", Value::Object(m.clone())),
        },
    }
}

/// What a loaded DAG's schedule leaves undone, in words (`None` when weft runs all of it).
pub fn not_run_note(s: &Schedule) -> Option<String> {
    match s {
        Schedule::NotRun { what } => Some(format!(
            "{what} is not run by weft yet: the DAG runs only when triggered"
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Schedule {
        Schedule::parse(&v).unwrap()
    }

    #[test]
    fn timetables() {
        let s = parse(
            json!({"__type__": "airflow.timetables.trigger.CronTriggerTimetable", "cron": "0 1 * * 5", "timezone": "UTC"}),
        );
        assert!(
            matches!(s, Schedule::CronTrigger { ref source, timezone: Some(_), .. } if source == "0 1 * * 5"),
            "{s:?}"
        );
        let s = parse(json!({"__type__": "datetime.timedelta", "seconds": 30}));
        assert!(matches!(s, Schedule::Delta(d) if d.as_secs() == 30));
        let s = parse(json!({"__type__": "dateutil.relativedelta.relativedelta", "hour": 18}));
        assert!(matches!(s, Schedule::NotRun { .. }));
        let s = parse(json!({"__type__": "dateutil.relativedelta.relativedelta", "days": 2}));
        assert!(matches!(s, Schedule::Delta(d) if d.as_secs() == 172_800));
        let s = parse(json!({"__type__": "my.pkg.MyTimetable"}));
        assert!(not_run_note(&s).unwrap().contains("my.pkg.MyTimetable"));
        let e = Schedule::parse(&json!({"__type__": "airflow.timetables.trigger.CronTriggerTimetable", "cron": "61 * * * *"})).unwrap_err();
        assert!(e.contains("bad cron"), "{e}");
    }

    #[test]
    fn datasets() {
        for v in [
            json!(["s3://a", "s3://b"]),
            json!({"__or__": [{"__and__": ["s3://a", "s3://b"]}, "s3://c"]}),
            json!({"__type__": "airflow.sdk.Asset", "uri": "s3://a"}),
            json!({"datasets": "((a & b) | c)"}),
        ] {
            let s = parse(v.clone());
            assert!(
                matches!(
                    s,
                    Schedule::Assets {
                        timetable: None,
                        ..
                    }
                ),
                "{v}"
            );
            assert!(not_run_note(&s).is_none(), "{v}");
        }
        let s = parse(
            json!({"datasets": ["a"], "timetable": {"__type__": "airflow.timetables.trigger.CronTriggerTimetable", "cron": "@daily"}}),
        );
        assert!(matches!(
            s,
            Schedule::Assets {
                timetable: Some(_),
                ..
            }
        ));
        assert!(matches!(parse(json!([])), Schedule::Never));
        assert!(Schedule::parse(&json!([1])).is_err());
    }

    #[test]
    fn none_strings() {
        for s in ["none", "None", " NONE ", "null"] {
            assert!(matches!(parse(json!(s)), Schedule::Never), "{s}");
        }
    }
}
