//! Parser and validator: turns definition JSON into a [`StateMachine`], reporting every
//! problem at once as a [`ValidationErrors`] list (JSON pointer + one-line reason): unknown,
//! missing or illegal fields per state type, bad `Next` targets, missing `Next`/`End`,
//! unreachable states, bad paths, templates and intrinsic calls, Retry/Catch rules.

use crate::error::{names, ValidationErrors, Warning};
use crate::jsonpath::JsonPath;
use crate::model::*;
use crate::resource::Resource;
use crate::template::{escape_ptr, Template};
use serde_json::{Map, Value};
use std::collections::HashMap;

/// Decodes a JSON definition, or the one error saying why it is not JSON.
fn decode_json(definition_json: &str) -> Result<Value, ValidationErrors> {
    serde_json::from_str(definition_json).map_err(|e| {
        let mut errs = ValidationErrors::default();
        errs.push("", format!("not valid JSON: {e}"));
        errs
    })
}

/// Parses and validates a definition.
pub fn parse(definition_json: &str) -> Result<StateMachine, ValidationErrors> {
    parse_value(&decode_json(definition_json)?)
}

/// Parses and validates a definition like [`parse`], also returning the [`Warning`]s: what
/// the definition says that weft accepts but does not act on ([`crate::warnings`]).
pub fn validate_with_warnings(
    definition_json: &str,
) -> Result<(StateMachine, Vec<Warning>), ValidationErrors> {
    validate_value_with_warnings(&decode_json(definition_json)?)
}

/// [`validate_with_warnings`] for an already-decoded definition.
pub fn validate_value_with_warnings(
    v: &Value,
) -> Result<(StateMachine, Vec<Warning>), ValidationErrors> {
    let sm = parse_value(v)?;
    Ok((sm, crate::warnings::collect(v)))
}

/// Parses and validates an already-decoded definition.
pub fn parse_value(v: &Value) -> Result<StateMachine, ValidationErrors> {
    let mut errs = ValidationErrors::default();
    let sm = machine(v, "", QueryLanguage::JsonPath, true, &mut errs);
    match sm {
        Some(sm) if errs.is_empty() => Ok(sm),
        _ => {
            if errs.is_empty() {
                errs.push("", "invalid state machine");
            }
            Err(errs)
        }
    }
}

const TOP_FIELDS: &[&str] = &[
    "Comment",
    "StartAt",
    "States",
    "Version",
    "TimeoutSeconds",
    "QueryLanguage",
];
const BRANCH_FIELDS: &[&str] = &[
    "Comment",
    "StartAt",
    "States",
    "ProcessorConfig",
    "QueryLanguage",
];

fn ql_of(
    v: Option<&Value>,
    ptr: &str,
    default: QueryLanguage,
    errs: &mut ValidationErrors,
) -> QueryLanguage {
    match v {
        None => default,
        Some(Value::String(s)) if s == "JSONPath" => QueryLanguage::JsonPath,
        Some(Value::String(s)) if s == "JSONata" => QueryLanguage::Jsonata,
        Some(_) => {
            errs.push(
                format!("{ptr}/QueryLanguage"),
                "QueryLanguage must be \"JSONPath\" or \"JSONata\"",
            );
            default
        }
    }
}

fn machine(
    v: &Value,
    ptr: &str,
    parent_ql: QueryLanguage,
    top: bool,
    errs: &mut ValidationErrors,
) -> Option<StateMachine> {
    let Some(o) = v.as_object() else {
        errs.push(ptr, "a state machine must be a JSON object");
        return None;
    };
    let allowed = if top { TOP_FIELDS } else { BRANCH_FIELDS };
    for k in o.keys() {
        if !allowed.contains(&k.as_str()) {
            errs.push(
                format!("{ptr}/{}", escape_ptr(k)),
                format!("unknown field '{k}'"),
            );
        }
    }
    let ql = ql_of(o.get("QueryLanguage"), ptr, parent_ql, errs);
    if !top
        && parent_ql == QueryLanguage::Jsonata
        && ql == QueryLanguage::JsonPath
        && o.contains_key("QueryLanguage")
    {
        errs.push(
            format!("{ptr}/QueryLanguage"),
            "a JSONPath branch cannot be nested in a JSONata state machine",
        );
    }
    let timeout_seconds = if top {
        match o.get("TimeoutSeconds") {
            None => None,
            Some(t) => match t.as_u64() {
                Some(n) if n > 0 => Some(n),
                _ => {
                    errs.push(
                        format!("{ptr}/TimeoutSeconds"),
                        "TimeoutSeconds must be a positive integer",
                    );
                    None
                }
            },
        }
    } else {
        None
    };
    if let Some(vv) = o.get("Version") {
        if !vv.is_string() {
            errs.push(format!("{ptr}/Version"), "Version must be a string");
        }
    }
    let comment = match o.get("Comment") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            errs.push(format!("{ptr}/Comment"), "Comment must be a string");
            None
        }
    };
    let start = match o.get("StartAt") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            errs.push(format!("{ptr}/StartAt"), "StartAt must be a string");
            None
        }
        None => {
            errs.push(ptr, "missing required field 'StartAt'");
            None
        }
    };
    let states_obj = match o.get("States") {
        Some(Value::Object(m)) if !m.is_empty() => m,
        Some(Value::Object(_)) => {
            errs.push(
                format!("{ptr}/States"),
                "States must contain at least one state",
            );
            return None;
        }
        Some(_) => {
            errs.push(format!("{ptr}/States"), "States must be a JSON object");
            return None;
        }
        None => {
            errs.push(ptr, "missing required field 'States'");
            return None;
        }
    };
    let mut index = HashMap::with_capacity(states_obj.len());
    for (i, name) in states_obj.keys().enumerate() {
        index.insert(name.clone(), i);
        if name.is_empty() || name.chars().count() > 80 {
            errs.push(
                format!("{ptr}/States/{}", escape_ptr(name)),
                "a state name must be 1 to 80 characters long",
            );
        }
    }
    let start_at = match &start {
        Some(s) => match index.get(s) {
            Some(&i) => i,
            None => {
                errs.push(
                    format!("{ptr}/StartAt"),
                    format!("StartAt '{s}' does not name a state"),
                );
                0
            }
        },
        None => 0,
    };
    let mut states = Vec::with_capacity(states_obj.len());
    for (name, sv) in states_obj {
        let sptr = format!("{ptr}/States/{}", escape_ptr(name));
        states.push(state(name, sv, &sptr, ql, &index, errs));
    }
    // reachability
    let mut seen = vec![false; states.len()];
    let mut stack = vec![start_at];
    while let Some(i) = stack.pop() {
        if i >= states.len() || seen[i] {
            continue;
        }
        seen[i] = true;
        let s: &State = &states[i];
        if let Transition::Next(n) = s.transition {
            stack.push(n);
        }
        for c in &s.catch {
            stack.push(c.next);
        }
        if let StateKind::Choice { choices, default } = &s.kind {
            stack.extend(choices.iter().map(|c| c.next));
            stack.extend(default.iter().copied());
        }
    }
    if start.is_some() && index.contains_key(start.as_deref().unwrap_or("")) {
        for (i, s) in states.iter().enumerate() {
            if !seen[i] {
                errs.push(
                    format!("{ptr}/States/{}", escape_ptr(&s.name)),
                    format!("state '{}' is not reachable from StartAt", s.name),
                );
            }
        }
    }
    Some(StateMachine {
        comment,
        start_at,
        states,
        index,
        timeout_seconds,
        query_language: ql,
    })
}

struct Fields<'a> {
    o: &'a Map<String, Value>,
    ptr: &'a str,
}

impl<'a> Fields<'a> {
    fn p(&self, k: &str) -> String {
        format!("{}/{}", self.ptr, escape_ptr(k))
    }
    fn get(&self, k: &str) -> Option<&'a Value> {
        self.o.get(k)
    }
}

const COMMON: &[&str] = &["Type", "Comment", "QueryLanguage"];

fn allowed_fields(ty: &str, ql: QueryLanguage) -> &'static [&'static str] {
    use QueryLanguage::*;
    match (ty, ql) {
        ("Pass", JsonPath) => &[
            "Next",
            "End",
            "InputPath",
            "OutputPath",
            "Parameters",
            "Result",
            "ResultPath",
            "Assign",
        ],
        ("Pass", Jsonata) => &["Next", "End", "Output", "Assign"],
        ("Task", JsonPath) => &[
            "Next",
            "End",
            "InputPath",
            "OutputPath",
            "Parameters",
            "ResultSelector",
            "ResultPath",
            "Retry",
            "Catch",
            "Resource",
            "TimeoutSeconds",
            "TimeoutSecondsPath",
            "HeartbeatSeconds",
            "HeartbeatSecondsPath",
            "Credentials",
            "Assign",
        ],
        ("Task", Jsonata) => &[
            "Next",
            "End",
            "Arguments",
            "Output",
            "Retry",
            "Catch",
            "Resource",
            "TimeoutSeconds",
            "HeartbeatSeconds",
            "Credentials",
            "Assign",
        ],
        ("Choice", JsonPath) => &["Choices", "Default", "InputPath", "OutputPath", "Assign"],
        ("Choice", Jsonata) => &["Choices", "Default", "Output", "Assign"],
        ("Wait", JsonPath) => &[
            "Next",
            "End",
            "InputPath",
            "OutputPath",
            "Seconds",
            "Timestamp",
            "SecondsPath",
            "TimestampPath",
            "Assign",
        ],
        ("Wait", Jsonata) => &["Next", "End", "Output", "Seconds", "Timestamp", "Assign"],
        ("Succeed", JsonPath) => &["InputPath", "OutputPath"],
        ("Succeed", Jsonata) => &["Output"],
        ("Fail", JsonPath) => &["Error", "Cause", "ErrorPath", "CausePath"],
        ("Fail", Jsonata) => &["Error", "Cause"],
        ("Parallel", JsonPath) => &[
            "Next",
            "End",
            "InputPath",
            "OutputPath",
            "Parameters",
            "ResultSelector",
            "ResultPath",
            "Retry",
            "Catch",
            "Branches",
            "Assign",
        ],
        ("Parallel", Jsonata) => &[
            "Next",
            "End",
            "Arguments",
            "Output",
            "Retry",
            "Catch",
            "Branches",
            "Assign",
        ],
        ("Map", JsonPath) => &[
            "Next",
            "End",
            "InputPath",
            "OutputPath",
            "ItemsPath",
            "ItemSelector",
            "Parameters",
            "ResultSelector",
            "ResultPath",
            "Retry",
            "Catch",
            "Iterator",
            "ItemProcessor",
            "MaxConcurrency",
            "MaxConcurrencyPath",
            "ItemReader",
            "ResultWriter",
            "ItemBatcher",
            "ToleratedFailureCount",
            "ToleratedFailurePercentage",
            "ToleratedFailureCountPath",
            "ToleratedFailurePercentagePath",
            "Label",
            "Assign",
        ],
        ("Map", Jsonata) => &[
            "Next",
            "End",
            "Items",
            "ItemSelector",
            "Output",
            "Retry",
            "Catch",
            "Iterator",
            "ItemProcessor",
            "MaxConcurrency",
            "ItemReader",
            "ResultWriter",
            "ItemBatcher",
            "ToleratedFailureCount",
            "ToleratedFailurePercentage",
            "Label",
            "Assign",
        ],
        _ => &[],
    }
}

fn path_spec(f: &Fields<'_>, k: &str, errs: &mut ValidationErrors) -> PathSpec {
    match f.get(k) {
        None => PathSpec::Identity,
        Some(Value::Null) => PathSpec::Null,
        Some(Value::String(s)) => match JsonPath::parse(s) {
            Ok(p) => PathSpec::Path(p),
            Err(e) => {
                errs.push(f.p(k), e.to_string());
                PathSpec::Identity
            }
        },
        Some(_) => {
            errs.push(f.p(k), format!("{k} must be a path string or null"));
            PathSpec::Identity
        }
    }
}

fn result_path(f: &Fields<'_>, k: &str, errs: &mut ValidationErrors) -> ResultPathSpec {
    match f.get(k) {
        None => ResultPathSpec::Replace,
        Some(Value::Null) => ResultPathSpec::Discard,
        Some(Value::String(s)) => match JsonPath::parse(s) {
            Ok(p) if p.is_reference_path() => {
                if p.is_root_only() {
                    ResultPathSpec::Replace
                } else {
                    ResultPathSpec::Path(p)
                }
            }
            Ok(_) => {
                errs.push(f.p(k), format!("'{s}' is not a reference path (only '$', fields and array indices are allowed)"));
                ResultPathSpec::Replace
            }
            Err(e) => {
                errs.push(f.p(k), e.to_string());
                ResultPathSpec::Replace
            }
        },
        Some(_) => {
            errs.push(
                f.p(k),
                format!("{k} must be a reference path string or null"),
            );
            ResultPathSpec::Replace
        }
    }
}

fn template(
    f: &Fields<'_>,
    k: &str,
    ql: QueryLanguage,
    must_be_object: bool,
    errs: &mut ValidationErrors,
) -> Option<Template> {
    let v = f.get(k)?;
    if must_be_object && !v.is_object() && !(ql == QueryLanguage::Jsonata && v.is_string()) {
        errs.push(f.p(k), format!("{k} must be a JSON object"));
        return None;
    }
    Some(match ql {
        QueryLanguage::JsonPath => Template::jsonpath(v, &f.p(k), errs),
        QueryLanguage::Jsonata => Template::jsonata(v, &f.p(k), k, errs),
    })
}

/// Compiles `Assign`, checking variable names (letters, digits, `_`; not starting with a
/// digit; at most 80 characters; `states` is reserved).
fn assign_template(
    f: &Fields<'_>,
    ql: QueryLanguage,
    errs: &mut ValidationErrors,
) -> Option<Template> {
    if let Some(Value::Object(o)) = f.get("Assign") {
        for k in o.keys() {
            let name = if ql == QueryLanguage::JsonPath {
                k.strip_suffix(".$").unwrap_or(k)
            } else {
                k
            };
            let valid = !name.is_empty()
                && name.len() <= 80
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && name.chars().all(|c| c.is_alphanumeric() || c == '_');
            if !valid {
                errs.push(
                    format!("{}/Assign/{}", f.ptr, escape_ptr(k)),
                    format!("'{name}' is not a valid variable name"),
                );
            } else if name == "states" {
                errs.push(
                    format!("{}/Assign/{}", f.ptr, escape_ptr(k)),
                    "the variable name 'states' is reserved",
                );
            }
        }
    }
    template(f, "Assign", ql, true, errs)
}

fn next_of(
    f: &Fields<'_>,
    k: &str,
    index: &HashMap<String, usize>,
    errs: &mut ValidationErrors,
) -> Option<usize> {
    match f.get(k) {
        Some(Value::String(s)) => match index.get(s) {
            Some(&i) => Some(i),
            None => {
                errs.push(f.p(k), format!("'{s}' does not name a state in this scope"));
                None
            }
        },
        Some(_) => {
            errs.push(f.p(k), format!("{k} must be a state name"));
            None
        }
        None => None,
    }
}

fn positive_int(
    f: &Fields<'_>,
    k: &str,
    errs: &mut ValidationErrors,
    allow_zero: bool,
) -> Option<u64> {
    let v = f.get(k)?;
    match v.as_u64() {
        Some(n) if n > 0 || allow_zero => Some(n),
        _ => {
            errs.push(
                f.p(k),
                format!(
                    "{k} must be a {} integer",
                    if allow_zero {
                        "non-negative"
                    } else {
                        "positive"
                    }
                ),
            );
            None
        }
    }
}

/// True for a string that is one `${Name}` placeholder and nothing else.
fn is_whole_placeholder(s: &str) -> bool {
    s.strip_prefix("${")
        .and_then(|r| r.strip_suffix('}'))
        .is_some_and(|n| {
            !n.is_empty()
                && n.len() <= 255
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
        })
}

fn dyn_u64(
    f: &Fields<'_>,
    k: &str,
    kpath: Option<&str>,
    ql: QueryLanguage,
    allow_zero: bool,
    errs: &mut ValidationErrors,
) -> Option<Dynamic<u64>> {
    if let Some(kp) = kpath {
        if let Some(pv) = f.get(kp) {
            if f.get(k).is_some() {
                errs.push(f.p(kp), format!("{k} and {kp} are mutually exclusive"));
            }
            return match pv.as_str().map(JsonPath::parse) {
                Some(Ok(p)) => Some(Dynamic::Path(p)),
                Some(Err(e)) => {
                    errs.push(f.p(kp), e.to_string());
                    None
                }
                None => {
                    errs.push(f.p(kp), format!("{kp} must be a path string"));
                    None
                }
            };
        }
    }
    let v = f.get(k)?;
    // an unsubstituted `${Name}` (SAM's DefinitionSubstitutions) in a number field: AWS never
    // sees it (the template substitutes it first); weft validates the file with a warning
    // (see `warnings`) and a run fails at this field, reading the placeholder as a path that
    // the input does not have
    if let Some(s) = v.as_str().filter(|s| is_whole_placeholder(s)) {
        let quoted = format!("$['{}']", s.replace('\\', "\\\\").replace('\'', "\\'"));
        if let Ok(p) = JsonPath::parse(&quoted) {
            return Some(Dynamic::Path(p));
        }
    }
    if ql == QueryLanguage::Jsonata && v.is_string() {
        let t = Template::jsonata(v, &f.p(k), k, errs);
        if t.is_literal() {
            errs.push(
                f.p(k),
                format!("{k} must be an integer or a JSONata expression"),
            );
            return None;
        }
        return Some(Dynamic::Expr(t));
    }
    positive_int(f, k, errs, allow_zero).map(Dynamic::Value)
}

fn error_equals(f: &Fields<'_>, errs: &mut ValidationErrors) -> Vec<String> {
    match f.get("ErrorEquals") {
        Some(Value::Array(a)) if !a.is_empty() => {
            let mut out = Vec::with_capacity(a.len());
            for (i, x) in a.iter().enumerate() {
                match x.as_str() {
                    Some(s) => {
                        if s.starts_with("States.") && !names::PREDEFINED.contains(&s) {
                            tracing::debug!(pointer = %f.ptr, error = s, "ErrorEquals names an unknown States.* error");
                        }
                        out.push(s.to_string())
                    }
                    None => errs.push(
                        format!("{}/ErrorEquals/{i}", f.ptr),
                        "error names must be strings",
                    ),
                }
            }
            if out.iter().any(|s| s == names::ALL) && out.len() > 1 {
                errs.push(
                    f.p("ErrorEquals"),
                    "States.ALL must appear alone in ErrorEquals",
                );
            }
            out
        }
        Some(_) => {
            errs.push(
                f.p("ErrorEquals"),
                "ErrorEquals must be a non-empty array of error names",
            );
            Vec::new()
        }
        None => {
            errs.push(f.ptr, "missing required field 'ErrorEquals'");
            Vec::new()
        }
    }
}

fn retriers(f: &Fields<'_>, errs: &mut ValidationErrors) -> Vec<Retrier> {
    let Some(v) = f.get("Retry") else {
        return Vec::new();
    };
    let Some(a) = v.as_array() else {
        errs.push(f.p("Retry"), "Retry must be an array");
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, r) in a.iter().enumerate() {
        let ptr = format!("{}/Retry/{i}", f.ptr);
        let Some(o) = r.as_object() else {
            errs.push(ptr, "a retrier must be a JSON object");
            continue;
        };
        let rf = Fields { o, ptr: &ptr };
        for k in o.keys() {
            if ![
                "ErrorEquals",
                "IntervalSeconds",
                "MaxAttempts",
                "BackoffRate",
                "MaxDelaySeconds",
                "JitterStrategy",
                "Comment",
            ]
            .contains(&k.as_str())
            {
                errs.push(rf.p(k), format!("unknown field '{k}' in a retrier"));
            }
        }
        let ee = error_equals(&rf, errs);
        if ee.iter().any(|s| s == names::ALL) && i + 1 != a.len() {
            errs.push(
                rf.p("ErrorEquals"),
                "a retrier with States.ALL must be the last one",
            );
        }
        let interval = match o.get("IntervalSeconds") {
            None => 1.0,
            Some(v) => match v.as_u64() {
                Some(n) if n >= 1 => n as f64,
                _ => {
                    errs.push(
                        rf.p("IntervalSeconds"),
                        "IntervalSeconds must be a positive integer",
                    );
                    1.0
                }
            },
        };
        let max_attempts = match o.get("MaxAttempts") {
            None => 3,
            Some(v) => match v.as_u64() {
                Some(n) if n <= 99_999_999 => n as u32,
                _ => {
                    errs.push(
                        rf.p("MaxAttempts"),
                        "MaxAttempts must be a non-negative integer",
                    );
                    3
                }
            },
        };
        let backoff = match o.get("BackoffRate") {
            None => 2.0,
            Some(v) => match v.as_f64() {
                Some(x) if x >= 1.0 => x,
                _ => {
                    errs.push(rf.p("BackoffRate"), "BackoffRate must be a number >= 1.0");
                    2.0
                }
            },
        };
        let max_delay = match o.get("MaxDelaySeconds") {
            None => None,
            Some(v) => match v.as_u64() {
                Some(n) if n >= 1 => Some(n as f64),
                _ => {
                    errs.push(
                        rf.p("MaxDelaySeconds"),
                        "MaxDelaySeconds must be a positive integer",
                    );
                    None
                }
            },
        };
        let jitter = match o.get("JitterStrategy") {
            None => false,
            Some(Value::String(s)) if s == "FULL" => true,
            Some(Value::String(s)) if s == "NONE" => false,
            Some(_) => {
                errs.push(
                    rf.p("JitterStrategy"),
                    "JitterStrategy must be \"FULL\" or \"NONE\"",
                );
                false
            }
        };
        out.push(Retrier {
            error_equals: ee,
            interval_seconds: interval,
            max_attempts,
            backoff_rate: backoff,
            max_delay_seconds: max_delay,
            jitter_full: jitter,
        });
    }
    out
}

fn catchers(
    f: &Fields<'_>,
    ql: QueryLanguage,
    index: &HashMap<String, usize>,
    errs: &mut ValidationErrors,
) -> Vec<Catcher> {
    let Some(v) = f.get("Catch") else {
        return Vec::new();
    };
    let Some(a) = v.as_array() else {
        errs.push(f.p("Catch"), "Catch must be an array");
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, r) in a.iter().enumerate() {
        let ptr = format!("{}/Catch/{i}", f.ptr);
        let Some(o) = r.as_object() else {
            errs.push(ptr, "a catcher must be a JSON object");
            continue;
        };
        let cf = Fields { o, ptr: &ptr };
        let allowed: &[&str] = match ql {
            QueryLanguage::JsonPath => &["ErrorEquals", "Next", "ResultPath", "Assign", "Comment"],
            QueryLanguage::Jsonata => &["ErrorEquals", "Next", "Output", "Assign", "Comment"],
        };
        for k in o.keys() {
            if !allowed.contains(&k.as_str()) {
                errs.push(cf.p(k), format!("field '{k}' is not allowed in a catcher"));
            }
        }
        let ee = error_equals(&cf, errs);
        if ee.iter().any(|s| s == names::ALL) && i + 1 != a.len() {
            errs.push(
                cf.p("ErrorEquals"),
                "a catcher with States.ALL must be the last one",
            );
        }
        let next = next_of(&cf, "Next", index, errs);
        if o.get("Next").is_none() {
            errs.push(ptr.clone(), "missing required field 'Next'");
        }
        let rp = result_path(&cf, "ResultPath", errs);
        let assign = assign_template(&cf, ql, errs);
        let output = if ql == QueryLanguage::Jsonata {
            template(&cf, "Output", ql, false, errs)
        } else {
            None
        };
        if let Some(n) = next {
            out.push(Catcher {
                error_equals: ee,
                next: n,
                result_path: rp,
                assign,
                output,
            });
        }
    }
    out
}

fn state(
    name: &str,
    v: &Value,
    ptr: &str,
    machine_ql: QueryLanguage,
    index: &HashMap<String, usize>,
    errs: &mut ValidationErrors,
) -> State {
    let empty = Map::new();
    let o = match v.as_object() {
        Some(o) => o,
        None => {
            errs.push(ptr, "a state must be a JSON object");
            &empty
        }
    };
    let f = Fields { o, ptr };
    let ql = ql_of(o.get("QueryLanguage"), ptr, machine_ql, errs);
    if machine_ql == QueryLanguage::Jsonata && ql == QueryLanguage::JsonPath {
        errs.push(
            f.p("QueryLanguage"),
            "a state cannot use JSONPath when its state machine's QueryLanguage is JSONata (only JSONPath machines may mix in JSONata states)",
        );
    }
    let ty = match o.get("Type") {
        Some(Value::String(t)) => t.as_str(),
        Some(_) => {
            errs.push(f.p("Type"), "Type must be a string");
            ""
        }
        None => {
            if v.is_object() {
                errs.push(ptr, "missing required field 'Type'");
            }
            ""
        }
    };
    let allowed = allowed_fields(ty, ql);
    if allowed.is_empty() && !ty.is_empty() {
        errs.push(f.p("Type"), format!("unknown state type '{ty}' (Pass, Task, Choice, Wait, Succeed, Fail, Parallel, Map)"));
    } else if !ty.is_empty() {
        for k in o.keys() {
            if COMMON.contains(&k.as_str()) || allowed.contains(&k.as_str()) {
                continue;
            }
            let other = match ql {
                QueryLanguage::JsonPath => QueryLanguage::Jsonata,
                QueryLanguage::Jsonata => QueryLanguage::JsonPath,
            };
            if allowed_fields(ty, other).contains(&k.as_str()) {
                let lang = if ql == QueryLanguage::Jsonata {
                    "JSONata"
                } else {
                    "JSONPath"
                };
                errs.push(
                    f.p(k),
                    format!("field '{k}' is not allowed in a {lang} {ty} state"),
                );
            } else {
                let known = [
                    "Pass", "Task", "Choice", "Wait", "Succeed", "Fail", "Parallel", "Map",
                ]
                .iter()
                .any(|t| {
                    allowed_fields(t, QueryLanguage::JsonPath).contains(&k.as_str())
                        || allowed_fields(t, QueryLanguage::Jsonata).contains(&k.as_str())
                });
                if known {
                    errs.push(
                        f.p(k),
                        format!("field '{k}' is not allowed in a {ty} state"),
                    );
                } else {
                    errs.push(f.p(k), format!("unknown field '{k}'"));
                }
            }
        }
    }
    if let Some(c) = o.get("Comment") {
        if !c.is_string() {
            errs.push(f.p("Comment"), "Comment must be a string");
        }
    }

    // transitions
    let terminal = matches!(ty, "Choice" | "Succeed" | "Fail");
    let next = next_of(&f, "Next", index, errs);
    let end = match o.get("End") {
        None => false,
        Some(Value::Bool(true)) => true,
        Some(Value::Bool(false)) => false,
        Some(_) => {
            errs.push(f.p("End"), "End must be true");
            false
        }
    };
    let transition = if terminal {
        Transition::End
    } else {
        if o.contains_key("Next") && end {
            errs.push(f.p("End"), "a state cannot have both Next and End");
        }
        if !o.contains_key("Next") && !end && !ty.is_empty() && !allowed.is_empty() {
            errs.push(ptr, "a non-terminal state needs 'Next' or '\"End\": true'");
        }
        match next {
            Some(n) => Transition::Next(n),
            None => Transition::End,
        }
    };

    let jp = ql == QueryLanguage::JsonPath;
    let input_path = if jp {
        path_spec(&f, "InputPath", errs)
    } else {
        PathSpec::Identity
    };
    let output_path = if jp {
        path_spec(&f, "OutputPath", errs)
    } else {
        PathSpec::Identity
    };
    let parameters = if jp && ty != "Map" {
        template(&f, "Parameters", ql, false, errs)
    } else {
        None
    };
    let result_selector = if jp {
        template(&f, "ResultSelector", ql, true, errs)
    } else {
        None
    };
    let result_path = if jp {
        result_path(&f, "ResultPath", errs)
    } else {
        ResultPathSpec::Replace
    };
    let assign = assign_template(&f, ql, errs);
    let arguments = if !jp {
        template(&f, "Arguments", ql, false, errs)
    } else {
        None
    };
    let output = if !jp {
        template(&f, "Output", ql, false, errs)
    } else {
        None
    };
    let retry = retriers(&f, errs);
    let catch = catchers(&f, ql, index, errs);

    let kind = match ty {
        "Pass" => StateKind::Pass {
            result: o.get("Result").cloned(),
        },
        "Task" => {
            let resource = match o.get("Resource") {
                Some(Value::String(s)) => match Resource::parse(s) {
                    Ok(r) => Some(r),
                    Err(e) => {
                        errs.push(f.p("Resource"), e);
                        None
                    }
                },
                Some(_) => {
                    errs.push(f.p("Resource"), "Resource must be a string");
                    None
                }
                None => {
                    errs.push(ptr, "missing required field 'Resource'");
                    None
                }
            };
            let timeout = dyn_u64(
                &f,
                "TimeoutSeconds",
                jp.then_some("TimeoutSecondsPath"),
                ql,
                false,
                errs,
            );
            let heartbeat = dyn_u64(
                &f,
                "HeartbeatSeconds",
                jp.then_some("HeartbeatSecondsPath"),
                ql,
                false,
                errs,
            );
            if let (Some(Dynamic::Value(t)), Some(Dynamic::Value(h))) = (&timeout, &heartbeat) {
                if h >= t {
                    errs.push(
                        f.p("HeartbeatSeconds"),
                        "HeartbeatSeconds must be smaller than TimeoutSeconds",
                    );
                }
            }
            if let Some(Value::Object(c)) = o.get("Credentials") {
                let has_role = match ql {
                    QueryLanguage::JsonPath => {
                        c.contains_key("RoleArn") || c.contains_key("RoleArn.$")
                    }
                    QueryLanguage::Jsonata => c.contains_key("RoleArn"),
                };
                if !has_role {
                    errs.push(
                        f.p("Credentials"),
                        if jp {
                            "Credentials needs a 'RoleArn' (or 'RoleArn.$') field naming the role to assume"
                        } else {
                            "Credentials needs a 'RoleArn' field naming the role to assume"
                        },
                    );
                }
            }
            let credentials = template(&f, "Credentials", ql, true, errs);
            match resource {
                Some(resource) => StateKind::Task(Box::new(TaskSpec {
                    resource,
                    timeout_seconds: timeout,
                    heartbeat_seconds: heartbeat,
                    credentials,
                })),
                None => StateKind::Succeed,
            }
        }
        "Choice" => choice_state(&f, ql, index, errs),
        "Wait" => {
            let keys = ["Seconds", "Timestamp", "SecondsPath", "TimestampPath"];
            let present: Vec<&str> = keys
                .iter()
                .copied()
                .filter(|k| o.contains_key(*k))
                .collect();
            if present.len() != 1 {
                errs.push(ptr, "a Wait state needs exactly one of Seconds, Timestamp, SecondsPath, TimestampPath");
            }
            match present.first().copied() {
                Some("Seconds") => match dyn_u64(&f, "Seconds", None, ql, true, errs) {
                    Some(d) => StateKind::Wait(WaitFor::Seconds(d)),
                    None => StateKind::Wait(WaitFor::Seconds(Dynamic::Value(0))),
                },
                Some("Timestamp") => {
                    let v = &o["Timestamp"];
                    match v.as_str() {
                        Some(s) if !jp && crate::jsonata::expression_text(s).is_some() => {
                            StateKind::Wait(WaitFor::Timestamp(Dynamic::Expr(Template::jsonata(
                                v,
                                &f.p("Timestamp"),
                                "Timestamp",
                                errs,
                            ))))
                        }
                        Some(s) => {
                            if crate::choice::parse_timestamp(s).is_none() {
                                errs.push(
                                    f.p("Timestamp"),
                                    format!("'{s}' is not an RFC 3339 timestamp"),
                                );
                            }
                            StateKind::Wait(WaitFor::Timestamp(Dynamic::Value(s.to_string())))
                        }
                        None => {
                            errs.push(f.p("Timestamp"), "Timestamp must be a string");
                            StateKind::Wait(WaitFor::Seconds(Dynamic::Value(0)))
                        }
                    }
                }
                Some(k @ ("SecondsPath" | "TimestampPath")) => {
                    match o[k].as_str().map(JsonPath::parse) {
                        Some(Ok(p)) => StateKind::Wait(if k == "SecondsPath" {
                            WaitFor::Seconds(Dynamic::Path(p))
                        } else {
                            WaitFor::Timestamp(Dynamic::Path(p))
                        }),
                        Some(Err(e)) => {
                            errs.push(f.p(k), e.to_string());
                            StateKind::Wait(WaitFor::Seconds(Dynamic::Value(0)))
                        }
                        None => {
                            errs.push(f.p(k), format!("{k} must be a path string"));
                            StateKind::Wait(WaitFor::Seconds(Dynamic::Value(0)))
                        }
                    }
                }
                _ => StateKind::Wait(WaitFor::Seconds(Dynamic::Value(0))),
            }
        }
        "Succeed" => StateKind::Succeed,
        "Fail" => StateKind::Fail {
            error: fail_field(&f, "Error", "ErrorPath", ql, errs),
            cause: fail_field(&f, "Cause", "CausePath", ql, errs),
        },
        "Parallel" => {
            let mut branches = Vec::new();
            match o.get("Branches") {
                Some(Value::Array(a)) if !a.is_empty() => {
                    for (i, b) in a.iter().enumerate() {
                        if let Some(m) = machine(b, &format!("{ptr}/Branches/{i}"), ql, false, errs)
                        {
                            branches.push(m);
                        }
                    }
                }
                Some(_) => errs.push(
                    f.p("Branches"),
                    "Branches must be a non-empty array of state machines",
                ),
                None => errs.push(ptr, "missing required field 'Branches'"),
            }
            StateKind::Parallel { branches }
        }
        "Map" => map_state(&f, ql, errs),
        _ => StateKind::Succeed,
    };
    State {
        name: name.to_string(),
        query_language: ql,
        kind,
        input_path,
        output_path,
        parameters,
        result_selector,
        result_path,
        assign,
        arguments,
        output,
        retry,
        catch,
        transition,
    }
}

fn fail_field(
    f: &Fields<'_>,
    k: &str,
    kp: &str,
    ql: QueryLanguage,
    errs: &mut ValidationErrors,
) -> FailField {
    if let Some(pv) = f.get(kp) {
        if f.get(k).is_some() {
            errs.push(f.p(kp), format!("{k} and {kp} are mutually exclusive"));
        }
        return match pv.as_str() {
            Some(s) => {
                let mut o = Map::new();
                o.insert(format!("{k}.$"), Value::String(s.to_string()));
                match Template::jsonpath(&Value::Object(o), &f.p(kp), errs) {
                    Template::Object(mut fields) if fields.len() == 1 => match fields.pop() {
                        Some((_, t)) => FailField::Path(t),
                        None => FailField::None,
                    },
                    _ => FailField::None,
                }
            }
            None => {
                errs.push(f.p(kp), format!("{kp} must be a path string"));
                FailField::None
            }
        };
    }
    match f.get(k) {
        None => FailField::None,
        Some(Value::String(s)) => {
            if ql == QueryLanguage::Jsonata && crate::jsonata::expression_text(s).is_some() {
                FailField::Expr(Template::jsonata(
                    &Value::String(s.clone()),
                    &f.p(k),
                    k,
                    errs,
                ))
            } else {
                FailField::Value(s.clone())
            }
        }
        Some(_) => {
            errs.push(f.p(k), format!("{k} must be a string"));
            FailField::None
        }
    }
}

fn map_state(f: &Fields<'_>, ql: QueryLanguage, errs: &mut ValidationErrors) -> StateKind {
    let o = f.o;
    let jp = ql == QueryLanguage::JsonPath;
    let (key, pv) = match (o.get("ItemProcessor"), o.get("Iterator")) {
        (Some(p), None) => ("ItemProcessor", Some(p)),
        (None, Some(p)) => ("Iterator", Some(p)),
        (Some(_), Some(_)) => {
            errs.push(
                f.p("Iterator"),
                "ItemProcessor and Iterator are mutually exclusive",
            );
            ("ItemProcessor", o.get("ItemProcessor"))
        }
        (None, None) => {
            errs.push(f.ptr, "missing required field 'ItemProcessor'");
            ("ItemProcessor", None)
        }
    };
    let mut distributed = false;
    let processor = match pv {
        Some(p) => {
            if let Some(pc) = p.get("ProcessorConfig") {
                match pc.get("Mode").and_then(Value::as_str) {
                    Some("DISTRIBUTED") => distributed = true,
                    Some("INLINE") | None => {}
                    Some(m) => errs.push(
                        format!("{}/{key}/ProcessorConfig/Mode", f.ptr),
                        format!("unknown processor mode '{m}' (INLINE or DISTRIBUTED)"),
                    ),
                }
            }
            machine(p, &f.p(key), ql, false, errs)
        }
        None => None,
    };
    let processor = processor.unwrap_or_else(|| StateMachine {
        comment: None,
        start_at: 0,
        states: vec![State {
            name: "_".into(),
            query_language: ql,
            kind: StateKind::Succeed,
            input_path: PathSpec::Identity,
            output_path: PathSpec::Identity,
            parameters: None,
            result_selector: None,
            result_path: ResultPathSpec::Replace,
            assign: None,
            arguments: None,
            output: None,
            retry: vec![],
            catch: vec![],
            transition: Transition::End,
        }],
        index: HashMap::new(),
        timeout_seconds: None,
        query_language: ql,
    });
    let items_path = if jp {
        path_spec(f, "ItemsPath", errs)
    } else {
        PathSpec::Identity
    };
    let items = if !jp {
        template(f, "Items", ql, false, errs)
    } else {
        None
    };
    if let (Some(_), Some(_)) = (o.get("ItemSelector"), o.get("Parameters")) {
        errs.push(
            f.p("Parameters"),
            "ItemSelector and Parameters are mutually exclusive",
        );
    }
    let sel_key = if o.contains_key("ItemSelector") {
        "ItemSelector"
    } else {
        "Parameters"
    };
    let item_selector = template(f, sel_key, ql, true, errs);
    let max_concurrency = dyn_u64(
        f,
        "MaxConcurrency",
        jp.then_some("MaxConcurrencyPath"),
        ql,
        true,
        errs,
    )
    .unwrap_or(Dynamic::Value(0));
    let tolerated_failure_count = dyn_u64(
        f,
        "ToleratedFailureCount",
        jp.then_some("ToleratedFailureCountPath"),
        ql,
        true,
        errs,
    );
    let tolerated_failure_percentage = {
        let kp = "ToleratedFailurePercentagePath";
        if jp && o.contains_key(kp) {
            match o[kp].as_str().map(JsonPath::parse) {
                Some(Ok(p)) => Some(Dynamic::Path(p)),
                _ => {
                    errs.push(f.p(kp), format!("{kp} must be a valid path"));
                    None
                }
            }
        } else {
            match o.get("ToleratedFailurePercentage") {
                None => None,
                Some(Value::String(s)) if !jp && crate::jsonata::expression_text(s).is_some() => {
                    Some(Dynamic::Expr(Template::jsonata(
                        &o["ToleratedFailurePercentage"],
                        &f.p("ToleratedFailurePercentage"),
                        "ToleratedFailurePercentage",
                        errs,
                    )))
                }
                Some(v) => match v.as_f64() {
                    Some(x) if (0.0..=100.0).contains(&x) => Some(Dynamic::Value(x)),
                    _ => {
                        errs.push(
                            f.p("ToleratedFailurePercentage"),
                            "ToleratedFailurePercentage must be a number between 0 and 100",
                        );
                        None
                    }
                },
            }
        }
    };
    let item_reader = o.get("ItemReader").and_then(|r| {
        let ptr = f.p("ItemReader");
        let Some(ro) = r.as_object() else {
            errs.push(ptr, "ItemReader must be a JSON object");
            return None;
        };
        let rf = Fields { o: ro, ptr: &ptr };
        let resource = match ro.get("Resource").and_then(Value::as_str) {
            Some(s) => s.to_string(),
            None => {
                errs.push(ptr.clone(), "missing required field 'Resource'");
                String::new()
            }
        };
        let cfg = ro.get("ReaderConfig");
        let input_type = cfg
            .and_then(|c| c.get("InputType"))
            .and_then(Value::as_str)
            .unwrap_or("JSON")
            .to_string();
        if !["JSON", "CSV", "JSONL", "MANIFEST"].contains(&input_type.as_str()) {
            errs.push(
                format!("{ptr}/ReaderConfig/InputType"),
                format!("unsupported InputType '{input_type}' (JSON, JSONL, CSV, MANIFEST)"),
            );
        }
        let csv_headers = match cfg
            .and_then(|c| c.get("CSVHeaderLocation"))
            .and_then(Value::as_str)
        {
            Some("GIVEN") => match cfg
                .and_then(|c| c.get("CSVHeaders"))
                .and_then(Value::as_array)
            {
                Some(a) => Some(
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect(),
                ),
                None => {
                    errs.push(
                        format!("{ptr}/ReaderConfig"),
                        "CSVHeaderLocation GIVEN needs CSVHeaders",
                    );
                    None
                }
            },
            _ => None,
        };
        let csv_delimiter = match cfg
            .and_then(|c| c.get("CSVDelimiter"))
            .map(|d| d.as_str().unwrap_or(""))
        {
            None | Some("COMMA") => ',',
            Some("PIPE") => '|',
            Some("SEMICOLON") => ';',
            Some("SPACE") => ' ',
            Some("TAB") => '\t',
            Some(other) => {
                errs.push(
                    format!("{ptr}/ReaderConfig/CSVDelimiter"),
                    format!(
                        "unsupported CSVDelimiter '{other}' (COMMA, PIPE, SEMICOLON, SPACE, TAB)"
                    ),
                );
                ','
            }
        };
        let cfg_ptr = rf.p("ReaderConfig");
        let max_items = cfg.and_then(Value::as_object).and_then(|co| {
            let cf = Fields {
                o: co,
                ptr: &cfg_ptr,
            };
            dyn_u64(
                &cf,
                "MaxItems",
                jp.then_some("MaxItemsPath"),
                ql,
                false,
                errs,
            )
        });
        let pk = if jp { "Parameters" } else { "Arguments" };
        let parameters = template(&rf, pk, ql, true, errs);
        Some(ItemReaderSpec {
            resource,
            input_type,
            csv_headers,
            csv_delimiter,
            max_items,
            parameters,
        })
    });
    let result_writer = o
        .get("ResultWriter")
        .and_then(|w| result_writer(f, w, jp, ql, errs));
    let label = o.get("Label").and_then(Value::as_str).map(str::to_string);
    if let Some(l) = o.get("Label") {
        match l.as_str() {
            Some(s)
                if !s.is_empty()
                    && s.chars().count() <= 40
                    && !s.chars().any(|c| {
                        c.is_whitespace()
                            || c.is_control()
                            || "?*<>{}[]:;,\\|^~$#%&`\"/".contains(c)
                    }) => {}
            _ => errs.push(
                f.p("Label"),
                "Label must be 1 to 40 characters without whitespace, control characters or any of ?*<>{}[]:;,\\|^~$#%&`\"/",
            ),
        }
    }
    let item_batcher = o.get("ItemBatcher").and_then(|b| {
        let ptr = f.p("ItemBatcher");
        let Some(bo) = b.as_object() else {
            errs.push(ptr, "ItemBatcher must be a JSON object");
            return None;
        };
        let bf = Fields { o: bo, ptr: &ptr };
        for k in bo.keys() {
            if ![
                "MaxItemsPerBatch",
                "MaxItemsPerBatchPath",
                "MaxInputBytesPerBatch",
                "MaxInputBytesPerBatchPath",
                "BatchInput",
                "Comment",
            ]
            .contains(&k.as_str())
            {
                errs.push(bf.p(k), format!("unknown field '{k}' in ItemBatcher"));
            }
        }
        let max_items = dyn_u64(
            &bf,
            "MaxItemsPerBatch",
            jp.then_some("MaxItemsPerBatchPath"),
            ql,
            false,
            errs,
        );
        let max_bytes = dyn_u64(
            &bf,
            "MaxInputBytesPerBatch",
            jp.then_some("MaxInputBytesPerBatchPath"),
            ql,
            false,
            errs,
        );
        let batch_input = template(&bf, "BatchInput", ql, true, errs);
        Some(ItemBatcherSpec {
            max_items,
            max_bytes,
            batch_input,
        })
    });
    StateKind::Map(Box::new(MapSpec {
        item_batcher,
        processor: Box::new(processor),
        items_path,
        items,
        item_selector,
        max_concurrency,
        tolerated_failure_count,
        tolerated_failure_percentage,
        item_reader,
        distributed,
        result_writer,
        label,
    }))
}

/// Parses a Map's `ResultWriter`: `Resource` with `Parameters`/`Arguments` (`Bucket`,
/// `Prefix`) to export, `WriterConfig` to shape the results, or both.
fn result_writer(
    f: &Fields<'_>,
    w: &Value,
    jp: bool,
    ql: QueryLanguage,
    errs: &mut ValidationErrors,
) -> Option<ResultWriterSpec> {
    let ptr = f.p("ResultWriter");
    let Some(wo) = w.as_object() else {
        errs.push(ptr, "ResultWriter must be a JSON object");
        return None;
    };
    let wf = Fields { o: wo, ptr: &ptr };
    let pk = if jp { "Parameters" } else { "Arguments" };
    for k in wo.keys() {
        if ![
            "Resource",
            "Parameters",
            "Arguments",
            "WriterConfig",
            "Comment",
        ]
        .contains(&k.as_str())
            || (k != pk && (k == "Parameters" || k == "Arguments"))
        {
            errs.push(wf.p(k), format!("unknown field '{k}' in ResultWriter"));
        }
    }
    let resource = match wo.get("Resource") {
        None => None,
        Some(Value::String(r)) => {
            if !r.ends_with(":s3:putObject") {
                errs.push(
                    wf.p("Resource"),
                    format!("ResultWriter Resource '{r}' is not supported (arn:aws:states:::s3:putObject)"),
                );
            }
            Some(r.clone())
        }
        Some(_) => {
            errs.push(wf.p("Resource"), "Resource must be a string");
            None
        }
    };
    let parameters = template(&wf, pk, ql, true, errs);
    if resource.is_some() != parameters.is_some() {
        errs.push(
            ptr.clone(),
            format!("ResultWriter needs both Resource and {pk} to export results"),
        );
    }
    let cfg = wo.get("WriterConfig");
    if cfg.is_none() && resource.is_none() {
        errs.push(
            ptr.clone(),
            format!("ResultWriter must not be empty: give Resource and {pk}, WriterConfig, or all three"),
        );
    }
    let mut output_type = WriterOutputType::Json;
    let mut transformation = if resource.is_some() {
        WriterTransformation::None
    } else {
        WriterTransformation::Compact
    };
    match cfg {
        None => {}
        Some(Value::Object(c)) => {
            let cptr = format!("{ptr}/WriterConfig");
            for (k, v) in c {
                match (k.as_str(), v.as_str()) {
                    ("OutputType", Some("JSON")) => output_type = WriterOutputType::Json,
                    ("OutputType", Some("JSONL")) => output_type = WriterOutputType::Jsonl,
                    ("Transformation", Some("NONE")) => transformation = WriterTransformation::None,
                    ("Transformation", Some("COMPACT")) => {
                        transformation = WriterTransformation::Compact
                    }
                    ("Transformation", Some("FLATTEN")) => {
                        transformation = WriterTransformation::Flatten
                    }
                    ("OutputType", _) => errs.push(
                        format!("{cptr}/OutputType"),
                        "OutputType must be JSON or JSONL",
                    ),
                    ("Transformation", _) => errs.push(
                        format!("{cptr}/Transformation"),
                        "Transformation must be NONE, COMPACT or FLATTEN",
                    ),
                    _ => errs.push(
                        format!("{cptr}/{}", escape_ptr(k)),
                        format!("unknown field '{k}' in WriterConfig"),
                    ),
                }
            }
        }
        Some(_) => errs.push(
            format!("{ptr}/WriterConfig"),
            "WriterConfig must be a JSON object",
        ),
    }
    Some(ResultWriterSpec {
        resource,
        parameters,
        output_type,
        transformation,
    })
}

fn choice_state(
    f: &Fields<'_>,
    ql: QueryLanguage,
    index: &HashMap<String, usize>,
    errs: &mut ValidationErrors,
) -> StateKind {
    let default = next_of(f, "Default", index, errs);
    let mut choices = Vec::new();
    match f.get("Choices") {
        Some(Value::Array(a)) if !a.is_empty() => {
            for (i, c) in a.iter().enumerate() {
                let ptr = format!("{}/Choices/{i}", f.ptr);
                let Some(o) = c.as_object() else {
                    errs.push(ptr, "a choice rule must be a JSON object");
                    continue;
                };
                let cf = Fields { o, ptr: &ptr };
                let next = next_of(&cf, "Next", index, errs);
                if !o.contains_key("Next") {
                    errs.push(
                        ptr.clone(),
                        "missing required field 'Next' in a top-level choice rule",
                    );
                }
                let assign = assign_template(&cf, ql, errs);
                let output = if ql == QueryLanguage::Jsonata {
                    template(&cf, "Output", ql, false, errs)
                } else {
                    None
                };
                let cond = if ql == QueryLanguage::Jsonata {
                    for k in o.keys() {
                        if !["Condition", "Next", "Assign", "Output", "Comment"]
                            .contains(&k.as_str())
                        {
                            errs.push(
                                cf.p(k),
                                format!("field '{k}' is not allowed in a JSONata choice rule"),
                            );
                        }
                    }
                    match o.get("Condition") {
                        Some(v @ Value::String(s))
                            if crate::jsonata::expression_text(s).is_some() =>
                        {
                            Some(Condition::Jsonata(Template::jsonata(
                                v,
                                &cf.p("Condition"),
                                "Condition",
                                errs,
                            )))
                        }
                        Some(v @ Value::Bool(_)) => {
                            Some(Condition::Jsonata(Template::Literal(v.clone())))
                        }
                        Some(_) => {
                            errs.push(
                                cf.p("Condition"),
                                "Condition must be a JSONata expression '{% ... %}' or a boolean",
                            );
                            None
                        }
                        None => {
                            errs.push(ptr.clone(), "missing required field 'Condition'");
                            None
                        }
                    }
                } else {
                    condition(o, &ptr, true, errs)
                };
                if let (Some(condition), Some(next)) = (cond, next) {
                    choices.push(ChoiceRule {
                        condition,
                        next,
                        assign,
                        output,
                    });
                }
            }
        }
        Some(_) => errs.push(f.p("Choices"), "Choices must be a non-empty array"),
        None => errs.push(f.ptr, "missing required field 'Choices'"),
    }
    StateKind::Choice { choices, default }
}

/// Operator name -> (op, takes a path operand).
pub(crate) fn operator(k: &str) -> Option<(CmpOp, bool)> {
    use CmpOp::*;
    let (base, path) = match k.strip_suffix("Path") {
        Some(b) if !matches!(k, "IsPresent") => (b, true),
        _ => (k, false),
    };
    let op = match base {
        "StringEquals" => StringEquals,
        "StringLessThan" => StringLessThan,
        "StringGreaterThan" => StringGreaterThan,
        "StringLessThanEquals" => StringLessThanEquals,
        "StringGreaterThanEquals" => StringGreaterThanEquals,
        "StringMatches" if !path => StringMatches,
        "NumericEquals" => NumericEquals,
        "NumericLessThan" => NumericLessThan,
        "NumericGreaterThan" => NumericGreaterThan,
        "NumericLessThanEquals" => NumericLessThanEquals,
        "NumericGreaterThanEquals" => NumericGreaterThanEquals,
        "BooleanEquals" => BooleanEquals,
        "TimestampEquals" => TimestampEquals,
        "TimestampLessThan" => TimestampLessThan,
        "TimestampGreaterThan" => TimestampGreaterThan,
        "TimestampLessThanEquals" => TimestampLessThanEquals,
        "TimestampGreaterThanEquals" => TimestampGreaterThanEquals,
        "IsNull" if !path => IsNull,
        "IsPresent" if !path => IsPresent,
        "IsNumeric" if !path => IsNumeric,
        "IsString" if !path => IsString,
        "IsBoolean" if !path => IsBoolean,
        "IsTimestamp" if !path => IsTimestamp,
        _ => return None,
    };
    Some((op, path))
}

fn condition(
    o: &Map<String, Value>,
    ptr: &str,
    top: bool,
    errs: &mut ValidationErrors,
) -> Option<Condition> {
    let mut ops = Vec::new();
    for k in o.keys() {
        match k.as_str() {
            "Next" if top => {}
            "Assign" if top => {}
            "Comment" | "Variable" => {}
            "And" | "Or" | "Not" => ops.push(k.as_str()),
            _ if operator(k).is_some() => ops.push(k.as_str()),
            _ => errs.push(
                format!("{ptr}/{}", escape_ptr(k)),
                format!("unknown field '{k}' in a choice rule"),
            ),
        }
    }
    if ops.len() != 1 {
        errs.push(
            ptr,
            if ops.is_empty() {
                "a choice rule needs exactly one comparison operator, And, Or or Not".to_string()
            } else {
                format!(
                    "a choice rule has more than one operator ({})",
                    ops.join(", ")
                )
            },
        );
        return None;
    }
    let k = ops[0];
    let p = format!("{ptr}/{k}");
    match k {
        "And" | "Or" => {
            let Some(a) = o[k].as_array().filter(|a| !a.is_empty()) else {
                errs.push(p, format!("{k} must be a non-empty array of choice rules"));
                return None;
            };
            if o.contains_key("Variable") {
                errs.push(
                    format!("{ptr}/Variable"),
                    format!("Variable is not allowed next to {k}"),
                );
            }
            let mut subs = Vec::new();
            for (i, s) in a.iter().enumerate() {
                let sp = format!("{p}/{i}");
                match s.as_object() {
                    Some(so) => {
                        if so.contains_key("Next") {
                            errs.push(format!("{sp}/Next"), "nested choice rules cannot have Next");
                        }
                        if let Some(c) = condition(so, &sp, false, errs) {
                            subs.push(c);
                        }
                    }
                    None => errs.push(sp, "a choice rule must be a JSON object"),
                }
            }
            Some(if k == "And" {
                Condition::And(subs)
            } else {
                Condition::Or(subs)
            })
        }
        "Not" => {
            let Some(so) = o[k].as_object() else {
                errs.push(p, "Not must be a choice rule object");
                return None;
            };
            if so.contains_key("Next") {
                errs.push(format!("{p}/Next"), "nested choice rules cannot have Next");
            }
            condition(so, &p, false, errs).map(|c| Condition::Not(Box::new(c)))
        }
        _ => {
            let (op, is_path) = operator(k)?;
            let variable = match o.get("Variable") {
                Some(Value::String(s)) => match JsonPath::parse(s) {
                    Ok(v) => v,
                    Err(e) => {
                        errs.push(format!("{ptr}/Variable"), e.to_string());
                        return None;
                    }
                },
                Some(_) => {
                    errs.push(format!("{ptr}/Variable"), "Variable must be a path string");
                    return None;
                }
                None => {
                    errs.push(ptr, "missing required field 'Variable'");
                    return None;
                }
            };
            let v = &o[k];
            let operand = if is_path {
                match v.as_str().map(JsonPath::parse) {
                    Some(Ok(pp)) => Operand::Path(pp),
                    Some(Err(e)) => {
                        errs.push(p, e.to_string());
                        return None;
                    }
                    None => {
                        errs.push(p, format!("{k} must be a path string"));
                        return None;
                    }
                }
            } else {
                use CmpOp::*;
                let ok = match op {
                    StringEquals
                    | StringLessThan
                    | StringGreaterThan
                    | StringLessThanEquals
                    | StringGreaterThanEquals
                    | StringMatches => v.is_string(),
                    NumericEquals
                    | NumericLessThan
                    | NumericGreaterThan
                    | NumericLessThanEquals
                    | NumericGreaterThanEquals => v.is_number(),
                    BooleanEquals | IsNull | IsPresent | IsNumeric | IsString | IsBoolean
                    | IsTimestamp => v.is_boolean(),
                    TimestampEquals
                    | TimestampLessThan
                    | TimestampGreaterThan
                    | TimestampLessThanEquals
                    | TimestampGreaterThanEquals => v
                        .as_str()
                        .and_then(crate::choice::parse_timestamp)
                        .is_some(),
                };
                if !ok {
                    let want = match op {
                        StringEquals
                        | StringLessThan
                        | StringGreaterThan
                        | StringLessThanEquals
                        | StringGreaterThanEquals
                        | StringMatches => "a string",
                        NumericEquals
                        | NumericLessThan
                        | NumericGreaterThan
                        | NumericLessThanEquals
                        | NumericGreaterThanEquals => "a number",
                        TimestampEquals
                        | TimestampLessThan
                        | TimestampGreaterThan
                        | TimestampLessThanEquals
                        | TimestampGreaterThanEquals => "an RFC 3339 timestamp string",
                        _ => "a boolean",
                    };
                    errs.push(p, format!("{k} must be {want}"));
                    return None;
                }
                Operand::Value(v.clone())
            };
            Some(Condition::Compare {
                variable,
                op,
                operand,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(def: &str) -> Vec<String> {
        match parse(def) {
            Ok(_) => vec![],
            Err(e) => e.errors.iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn valid_minimal() {
        assert!(parse(r#"{"StartAt":"A","States":{"A":{"Type":"Pass","End":true}}}"#).is_ok());
    }

    #[test]
    fn reports_everything_with_pointers() {
        let e = errors(
            r#"{"StartAt":"A","States":{
                "A":{"Type":"Pass","Next":"Nope","Bogus":1},
                "B":{"Type":"Task","Resource":"weft:plugin:x"},
                "C":{"Type":"Choice","Choices":[{"Variable":"$.x","NumericEquals":"1","Next":"A"}]},
                "D":{"Type":"Pass","End":true,"InputPath":"nope",
                     "Retry":[{"ErrorEquals":["States.ALL"]},{"ErrorEquals":["X"]}]},
                "E":{"Type":"Pass","End":true,"Parameters":{"a.$":"States.Nope()"}}
            }}"#,
        );
        let has = |s: &str| e.iter().any(|x| x.starts_with(s));
        assert!(has("/States/A/Next: 'Nope' does not name a state"), "{e:?}");
        assert!(has("/States/A/Bogus: unknown field"), "{e:?}");
        assert!(has("/States/B: a non-terminal state needs"), "{e:?}");
        assert!(
            has("/States/C/Choices/0/NumericEquals: NumericEquals must be a number"),
            "{e:?}"
        );
        assert!(has("/States/D/InputPath: invalid JSONPath"), "{e:?}");
        assert!(
            has("/States/D/Retry/0/ErrorEquals: a retrier with States.ALL must be the last one"),
            "{e:?}"
        );
        assert!(
            has("/States/E/Parameters/a.$: invalid intrinsic function"),
            "{e:?}"
        );
        assert!(has("/States/B: state 'B' is not reachable"), "{e:?}");
        assert!(has("/States/D: state 'D' is not reachable"), "{e:?}");
    }

    #[test]
    fn illegal_field_for_type_and_missing_fields() {
        let e = errors(r#"{"StartAt":"A","States":{"A":{"Type":"Succeed","Result":1}}}"#);
        assert_eq!(
            e,
            vec!["/States/A/Result: field 'Result' is not allowed in a Succeed state"]
        );
        let e = errors(r#"{"States":{}}"#);
        assert!(
            e.contains(&"/: missing required field 'StartAt'".to_string()),
            "{e:?}"
        );
        let e = errors("not json");
        assert!(e[0].starts_with("/: not valid JSON"));
    }
}
