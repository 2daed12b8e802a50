//! Jinja templating of task arguments, with Airflow's context.
//!
//! [`TemplateContext`] holds what Airflow puts in a task's template context (`ds`, `ts`,
//! `data_interval_start`, `run_id`, `dag`, `task`, `params`, `ti.xcom_pull(...)`, `var.value`,
//! `var.json`, `conn`); [`render_value`] renders every string of a JSON value with minijinja
//! (strict undefined, like Airflow). Variables and connections come from a caller's [`Secrets`]
//! so their values never live in this crate.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, SecondsFormat, Utc};
use minijinja::value::{Kwargs, Object, Value as JValue};
use minijinja::{Environment, Error as JError, ErrorKind, State, UndefinedBehavior};
use serde_json::{Map, Value};

use crate::error::TemplateError;

/// An Airflow connection.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Connection {
    /// Connection type (`http`, `postgres`, ...).
    pub conn_type: Option<String>,
    /// Host.
    pub host: Option<String>,
    /// Login.
    pub login: Option<String>,
    /// Password.
    pub password: Option<String>,
    /// Schema / database.
    pub schema: Option<String>,
    /// Port.
    pub port: Option<u16>,
    /// Extra JSON text.
    pub extra: Option<String>,
}

/// Supplies Airflow Variables and Connections (weft's secrets store implements it).
pub trait Secrets: Send + Sync {
    /// A variable's value, if it exists and the task may read it; `Err` (a message such as
    /// `Secrets.InvalidName: ...`) when the name itself is refused.
    fn variable(&self, name: &str) -> Result<Option<String>, String>;
    /// A connection, if it exists and the task may read it; `Err` when the name is refused.
    fn connection(&self, conn_id: &str) -> Result<Option<Connection>, String>;
    /// The view of a task running with grant (role) `grant`; `None` keeps this one. weft's
    /// secrets store answers only what the role allows (`secrets:Get` on `secret:var/NAME`,
    /// `secret:conn/NAME`).
    fn for_grant(&self, grant: Option<&str>) -> Option<Arc<dyn Secrets>> {
        let _ = grant;
        None
    }
}

/// No variables or connections.
pub struct NoSecrets;

impl Secrets for NoSecrets {
    fn variable(&self, _: &str) -> Result<Option<String>, String> {
        Ok(None)
    }
    fn connection(&self, _: &str) -> Result<Option<Connection>, String> {
        Ok(None)
    }
}

/// The XComs of one task: (map index, key -> value), sorted by map index.
type TaskXComs = Vec<(i64, Map<String, Value>)>;

/// XComs of one DAG run: task id -> map index (-1 unmapped) -> key -> value.
#[derive(Debug, Default)]
pub struct XComStore {
    inner: RwLock<HashMap<String, TaskXComs>>,
}

impl XComStore {
    /// Store `value` under `key` for a task instance.
    pub fn push(&self, task_id: &str, map_index: i64, key: &str, value: Value) {
        let Ok(mut g) = self.inner.write() else {
            return;
        };
        let list = g.entry(task_id.to_string()).or_default();
        match list.iter_mut().find(|(i, _)| *i == map_index) {
            Some((_, m)) => {
                m.insert(key.to_string(), value);
            }
            None => {
                let mut m = Map::new();
                m.insert(key.to_string(), value);
                list.push((map_index, m));
                list.sort_by_key(|(i, _)| *i);
            }
        }
    }

    /// Every XCom of the run as JSON, `{TASK_ID: [[MAP_INDEX, {KEY: VALUE}], ...]}` (what a
    /// Python callable's `ti.xcom_pull` reads), or `None` when it is larger than `max_bytes`.
    pub fn snapshot(&self, max_bytes: usize) -> Option<Value> {
        let g = self.inner.read().ok()?;
        let mut out = Map::new();
        let mut size = 0usize;
        for (task, list) in g.iter() {
            let entries: Vec<Value> = list
                .iter()
                .map(|(i, m)| Value::Array(vec![Value::from(*i), Value::Object(m.clone())]))
                .collect();
            let v = Value::Array(entries);
            size += task.len() + serde_json::to_vec(&v).map(|b| b.len()).unwrap_or(0);
            if size > max_bytes {
                return None;
            }
            out.insert(task.clone(), v);
        }
        Some(Value::Object(out))
    }

    /// Airflow's `xcom_pull` for one task: the value of an unmapped task, the list of values of
    /// a mapped one (or one instance's with `map_index`).
    pub fn pull(&self, task_id: &str, key: &str, map_index: Option<i64>) -> Option<Value> {
        let g = self.inner.read().ok()?;
        let list = g.get(task_id)?;
        if let Some(i) = map_index {
            return list
                .iter()
                .find(|(m, _)| *m == i)
                .and_then(|(_, m)| m.get(key).cloned());
        }
        if list.len() == 1 && list[0].0 < 0 {
            return list[0].1.get(key).cloned();
        }
        let values: Vec<Value> = list
            .iter()
            .filter(|(i, _)| *i >= 0)
            .map(|(_, m)| m.get(key).cloned().unwrap_or(Value::Null))
            .collect();
        Some(Value::Array(values))
    }
}

/// Everything a task instance's templates can see.
#[derive(Clone)]
pub struct TemplateContext {
    /// DAG id.
    pub dag_id: String,
    /// Task id.
    pub task_id: String,
    /// Map index (-1 when not mapped).
    pub map_index: i64,
    /// Try number.
    pub try_number: u32,
    /// Run id.
    pub run_id: String,
    /// Logical date.
    pub logical_date: DateTime<Utc>,
    /// Data interval start.
    pub data_interval_start: DateTime<Utc>,
    /// Data interval end.
    pub data_interval_end: DateTime<Utc>,
    /// Params (DAG params, task params, run conf).
    pub params: Map<String, Value>,
    /// Run conf.
    pub conf: Map<String, Value>,
    /// The asset events that triggered the run (asset URI -> events).
    pub triggering_asset_events: Value,
    /// Task owner.
    pub owner: String,
    /// Operator reference.
    pub operator: String,
    /// XComs of the run.
    pub xcom: Arc<XComStore>,
    /// Variables and connections.
    pub secrets: Arc<dyn Secrets>,
}

fn iso(d: &DateTime<Utc>) -> String {
    d.to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

#[derive(Debug)]
struct Ti {
    dag_id: String,
    task_id: String,
    run_id: String,
    map_index: i64,
    try_number: u32,
    xcom: Arc<XComStore>,
}

fn to_jinja(v: Option<Value>) -> JValue {
    match v {
        Some(v) => JValue::from_serialize(&v),
        None => JValue::from(()),
    }
}

impl Object for Ti {
    fn get_value(self: &Arc<Self>, key: &JValue) -> Option<JValue> {
        Some(match key.as_str()? {
            "task_id" => JValue::from(self.task_id.clone()),
            "dag_id" => JValue::from(self.dag_id.clone()),
            "run_id" => JValue::from(self.run_id.clone()),
            "map_index" => JValue::from(self.map_index),
            "try_number" => JValue::from(self.try_number),
            _ => return None,
        })
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[JValue],
    ) -> Result<JValue, JError> {
        if method != "xcom_pull" {
            return Err(JError::from(ErrorKind::UnknownMethod));
        }
        let (positional, kwargs): (&[JValue], Kwargs) = minijinja::value::from_args(args)?;
        let task_ids: JValue = match positional.first() {
            Some(v) => v.clone(),
            None => kwargs
                .get::<Option<JValue>>("task_ids")?
                .unwrap_or(JValue::from(())),
        };
        let key: String = match positional.get(1) {
            Some(v) => v.as_str().unwrap_or("return_value").to_string(),
            None => kwargs
                .get::<Option<String>>("key")?
                .unwrap_or_else(|| "return_value".into()),
        };
        let map_index: Option<i64> = kwargs.get::<Option<i64>>("map_indexes")?;
        let default: Option<JValue> = kwargs.get::<Option<JValue>>("default")?;
        kwargs.assert_all_used()?;
        let one = |t: &str| self.xcom.pull(t, &key, map_index);
        let result = if task_ids.is_undefined() || task_ids.is_none() {
            one(&self.task_id).map(|v| to_jinja(Some(v)))
        } else if let Some(t) = task_ids.as_str() {
            one(t).map(|v| to_jinja(Some(v)))
        } else {
            let mut out = Vec::new();
            for t in task_ids.try_iter()? {
                let t = t
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| t.to_string());
                out.push(to_jinja(one(&t)));
            }
            Some(JValue::from(out))
        };
        Ok(result.or(default).unwrap_or(JValue::from(())))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VarKind {
    Root,
    Value,
    Json,
}

struct Vars {
    kind: VarKind,
    secrets: Arc<dyn Secrets>,
}

impl std::fmt::Debug for Vars {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<variables>")
    }
}

impl Vars {
    /// `Ok(None)` when the variable does not exist (or the task may not read it).
    fn lookup(&self, name: &str) -> Result<Option<JValue>, JError> {
        let raw = self
            .secrets
            .variable(name)
            .map_err(|m| JError::new(ErrorKind::InvalidOperation, m))?;
        raw.map(|raw| self.convert(name, raw)).transpose()
    }

    fn convert(&self, name: &str, raw: String) -> Result<JValue, JError> {
        if self.kind == VarKind::Json {
            let v: Value = serde_json::from_str(&raw).map_err(|e| {
                JError::new(
                    ErrorKind::InvalidOperation,
                    format!("Variable {name} is not JSON: {e}"),
                )
            })?;
            Ok(JValue::from_serialize(&v))
        } else {
            Ok(JValue::from(raw))
        }
    }
}

impl Object for Vars {
    fn get_value(self: &Arc<Self>, key: &JValue) -> Option<JValue> {
        let name = key.as_str()?;
        match self.kind {
            VarKind::Root => match name {
                "value" => Some(JValue::from_object(Vars {
                    kind: VarKind::Value,
                    secrets: self.secrets.clone(),
                })),
                "json" => Some(JValue::from_object(Vars {
                    kind: VarKind::Json,
                    secrets: self.secrets.clone(),
                })),
                _ => None,
            },
            // A missing variable is undefined, which strict mode reports with the name; a
            // refused name is an invalid value whose use fails with the reason.
            _ => self.lookup(name).unwrap_or_else(|e| Some(JValue::from(e))),
        }
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[JValue],
    ) -> Result<JValue, JError> {
        if method != "get" || self.kind == VarKind::Root {
            return Err(JError::from(ErrorKind::UnknownMethod));
        }
        let (name, default): (String, Option<JValue>) = minijinja::value::from_args(args)?;
        match self.lookup(&name)? {
            Some(v) => Ok(v),
            None => default.ok_or_else(|| {
                JError::new(
                    ErrorKind::InvalidOperation,
                    format!("Variable {name} does not exist"),
                )
            }),
        }
    }
}

struct Conns {
    secrets: Arc<dyn Secrets>,
}

impl std::fmt::Debug for Conns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<connections>")
    }
}

impl Object for Conns {
    fn get_value(self: &Arc<Self>, key: &JValue) -> Option<JValue> {
        let c = match self.secrets.connection(key.as_str()?) {
            Ok(c) => c?,
            Err(m) => return Some(JValue::from(JError::new(ErrorKind::InvalidOperation, m))),
        };
        let extra_dejson: Value = c
            .extra
            .as_deref()
            .and_then(|e| serde_json::from_str(e).ok())
            .unwrap_or(Value::Object(Map::new()));
        Some(JValue::from_serialize(serde_json::json!({
            "conn_id": key.as_str(),
            "conn_type": c.conn_type,
            "host": c.host,
            "login": c.login,
            "password": c.password,
            "schema": c.schema,
            "port": c.port,
            "extra": c.extra,
            "extra_dejson": extra_dejson,
        })))
    }
}

/// Airflow's `macros.ds_add` and `macros.ds_format`.
#[derive(Debug)]
struct Macros;

impl Object for Macros {
    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[JValue],
    ) -> Result<JValue, JError> {
        let bad = |m: String| JError::new(ErrorKind::InvalidOperation, m);
        match method {
            "ds_add" => {
                let (ds, days): (String, i64) = minijinja::value::from_args(args)?;
                let d = chrono::NaiveDate::parse_from_str(&ds, "%Y-%m-%d")
                    .map_err(|e| bad(format!("ds_add: bad date `{ds}`: {e}")))?;
                let out = d
                    .checked_add_signed(chrono::Duration::days(days))
                    .ok_or_else(|| bad("ds_add: date out of range".into()))?;
                Ok(JValue::from(out.format("%Y-%m-%d").to_string()))
            }
            "ds_format" => {
                let (ds, input, output): (String, String, String) =
                    minijinja::value::from_args(args)?;
                let d = chrono::NaiveDateTime::parse_from_str(&ds, &input)
                    .or_else(|_| {
                        chrono::NaiveDate::parse_from_str(&ds, &input)
                            .map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default())
                    })
                    .map_err(|e| bad(format!("ds_format: `{ds}` does not match `{input}`: {e}")))?;
                let mut out = String::new();
                std::fmt::Write::write_fmt(&mut out, format_args!("{}", d.format(&output)))
                    .map_err(|_| bad(format!("ds_format: bad output format `{output}`")))?;
                Ok(JValue::from(out))
            }
            _ => Err(JError::from(ErrorKind::UnknownMethod)),
        }
    }
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_keep_trailing_newline(true);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    // Airflow renders with Python's Jinja: a list or mapping in a string template prints as
    // Python's `str()` does (`{'max': 3}`, `[1, 'a', None]`), not as JSON
    env.set_formatter(|out, state, value| {
        use minijinja::value::ValueKind;
        if matches!(value.kind(), ValueKind::Map | ValueKind::Seq) {
            let mut s = String::new();
            python_repr(value, &mut s, 0);
            out.write_str(&s)
                .map_err(|_| JError::new(ErrorKind::WriteFailure, "cannot write"))
        } else {
            minijinja::escape_formatter(out, state, value)
        }
    });
    env
}

/// Python's `repr()` of a template value (strings quoted as Python quotes them, `True`,
/// `False`, `None`); nesting deeper than 64 levels prints `...`.
fn python_repr(v: &JValue, out: &mut String, depth: usize) {
    use minijinja::value::ValueKind;
    if depth > 64 {
        out.push_str("...");
        return;
    }
    match v.kind() {
        ValueKind::Undefined | ValueKind::None => out.push_str("None"),
        ValueKind::Bool => out.push_str(if v.is_true() { "True" } else { "False" }),
        ValueKind::String => {
            let s = v.as_str().unwrap_or_default();
            let q = if s.contains('\'') && !s.contains('"') {
                '"'
            } else {
                '\''
            };
            out.push(q);
            for c in s.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    c if c == q => {
                        out.push('\\');
                        out.push(c);
                    }
                    c => out.push(c),
                }
            }
            out.push(q);
        }
        ValueKind::Seq => {
            out.push('[');
            if let Ok(items) = v.try_iter() {
                for (i, x) in items.enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    python_repr(&x, out, depth + 1);
                }
            }
            out.push(']');
        }
        ValueKind::Map => {
            out.push('{');
            if let Ok(keys) = v.try_iter() {
                for (i, k) in keys.enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    python_repr(&k, out, depth + 1);
                    out.push_str(": ");
                    let x = v.get_item(&k).unwrap_or_default();
                    python_repr(&x, out, depth + 1);
                }
            }
            out.push('}');
        }
        _ => out.push_str(&v.to_string()),
    }
}

thread_local! {
    static ENV: Environment<'static> = environment();
}

impl TemplateContext {
    fn to_jinja(&self) -> JValue {
        let ds = self.logical_date.format("%Y-%m-%d").to_string();
        let ts = iso(&self.logical_date);
        let mut m: std::collections::BTreeMap<String, JValue> = std::collections::BTreeMap::new();
        m.insert("ds_nodash".into(), JValue::from(ds.replace('-', "")));
        m.insert("ds".into(), JValue::from(ds));
        m.insert(
            "ts_nodash".into(),
            JValue::from(self.logical_date.format("%Y%m%dT%H%M%S").to_string()),
        );
        m.insert(
            "ts_nodash_with_tz".into(),
            JValue::from(self.logical_date.format("%Y%m%dT%H%M%S%z").to_string()),
        );
        m.insert("ts".into(), JValue::from(ts.clone()));
        m.insert("logical_date".into(), JValue::from(ts));
        m.insert(
            "data_interval_start".into(),
            JValue::from(iso(&self.data_interval_start)),
        );
        m.insert(
            "data_interval_end".into(),
            JValue::from(iso(&self.data_interval_end)),
        );
        m.insert("run_id".into(), JValue::from(self.run_id.clone()));
        m.insert("map_index".into(), JValue::from(self.map_index));
        m.insert("params".into(), JValue::from_serialize(&self.params));
        m.insert(
            "dag".into(),
            JValue::from_serialize(serde_json::json!({"dag_id": self.dag_id, "owner": self.owner})),
        );
        m.insert(
            "task".into(),
            JValue::from_serialize(serde_json::json!({
                "task_id": self.task_id, "owner": self.owner, "operator": self.operator,
            })),
        );
        m.insert(
            "dag_run".into(),
            JValue::from_serialize(serde_json::json!({
                "run_id": self.run_id, "dag_id": self.dag_id, "conf": self.conf,
                "logical_date": iso(&self.logical_date),
            })),
        );
        m.insert(
            "ti".into(),
            JValue::from_object(Ti {
                dag_id: self.dag_id.clone(),
                task_id: self.task_id.clone(),
                run_id: self.run_id.clone(),
                map_index: self.map_index,
                try_number: self.try_number,
                xcom: self.xcom.clone(),
            }),
        );
        m.insert("task_instance".into(), m["ti"].clone());
        m.insert(
            "var".into(),
            JValue::from_object(Vars {
                kind: VarKind::Root,
                secrets: self.secrets.clone(),
            }),
        );
        let triggering = JValue::from_serialize(&self.triggering_asset_events);
        m.insert("triggering_asset_events".into(), triggering.clone());
        m.insert("triggering_dataset_events".into(), triggering);
        m.insert("macros".into(), JValue::from_object(Macros));
        m.insert(
            "conn".into(),
            JValue::from_object(Conns {
                secrets: self.secrets.clone(),
            }),
        );
        JValue::from(m)
    }
}

fn has_template(s: &str) -> bool {
    s.contains("{{") || s.contains("{%") || s.contains("{#")
}

/// Whether any string inside `v` contains template syntax.
pub fn needs_rendering(v: &Value) -> bool {
    match v {
        Value::String(s) => has_template(s),
        Value::Array(a) => a.iter().any(needs_rendering),
        Value::Object(m) => m.values().any(needs_rendering),
        _ => false,
    }
}

/// `{{ expr }}` alone: the expression.
fn single_expression(s: &str) -> Option<&str> {
    let inner = s.trim().strip_prefix("{{")?.strip_suffix("}}")?;
    (!inner.contains("{{") && !inner.contains("}}")).then_some(inner.trim())
}

fn jinja_err(e: &JError) -> String {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
}

/// Evaluate a lone `{{ expr }}` to a native JSON value (other strings render to strings).
pub fn render_native(s: &str, ctx: &TemplateContext) -> Result<Value, String> {
    let jctx = ctx.to_jinja();
    eval_native(s, &jctx)
}

fn eval_native(s: &str, jctx: &JValue) -> Result<Value, String> {
    ENV.with(|env| match single_expression(s) {
        Some(expr) => {
            let e = env.compile_expression(expr).map_err(|e| jinja_err(&e))?;
            let v = e.eval(jctx).map_err(|e| jinja_err(&e))?;
            if v.is_undefined() {
                return Err(format!("`{expr}` is undefined"));
            }
            serde_json::to_value(&v).map_err(|e| e.to_string())
        }
        None => env
            .render_str(s, jctx)
            .map(Value::String)
            .map_err(|e| jinja_err(&e)),
    })
}

/// Render every string in `v` (recursively). With `native`, a string that is a lone
/// `{{ expr }}` becomes the expression's JSON value instead of its text.
pub fn render_value(
    v: &Value,
    ctx: &TemplateContext,
    native: bool,
) -> Result<Value, TemplateError> {
    if !needs_rendering(v) {
        return Ok(v.clone());
    }
    let jctx = ctx.to_jinja();
    let label = if ctx.map_index >= 0 {
        format!("{}[{}]", ctx.task_id, ctx.map_index)
    } else {
        ctx.task_id.clone()
    };
    render_rec(v, &jctx, native, "", &label)
}

fn render_rec(
    v: &Value,
    jctx: &JValue,
    native: bool,
    path: &str,
    task: &str,
) -> Result<Value, TemplateError> {
    let err = |message: String| TemplateError {
        task_id: task.to_string(),
        argument: path.to_string(),
        message,
    };
    Ok(match v {
        Value::String(s) if has_template(s) => {
            if native {
                eval_native(s, jctx).map_err(err)?
            } else {
                ENV.with(|env| env.render_str(s, jctx))
                    .map(Value::String)
                    .map_err(|e| err(jinja_err(&e)))?
            }
        }
        Value::Array(a) => Value::Array(
            a.iter()
                .enumerate()
                .map(|(i, x)| render_rec(x, jctx, native, &format!("{path}[{i}]"), task))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, x) in m {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                out.insert(k.clone(), render_rec(x, jctx, native, &p, task)?);
            }
            Value::Object(out)
        }
        other => other.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct S;
    impl Secrets for S {
        fn variable(&self, name: &str) -> Result<Option<String>, String> {
            if name.contains(' ') {
                return Err(format!("Secrets.InvalidName: `{name}` has a space"));
            }
            Ok(match name {
                "env" => Some("prod".into()),
                "cfg" => Some(r#"{"n": 3}"#.into()),
                _ => None,
            })
        }
        fn connection(&self, id: &str) -> Result<Option<Connection>, String> {
            if id.contains(' ') {
                return Err(format!("Secrets.InvalidName: `{id}` has a space"));
            }
            Ok((id == "db").then(|| Connection {
                host: Some("db.local".into()),
                port: Some(5432),
                ..Default::default()
            }))
        }
    }

    fn ctx() -> TemplateContext {
        let xcom = Arc::new(XComStore::default());
        xcom.push("a", -1, "return_value", json!({"rows": 7}));
        xcom.push("m", 0, "return_value", json!(1));
        xcom.push("m", 1, "return_value", json!(2));
        let d = crate::timetable::parse_datetime("2024-03-05", chrono_tz::Tz::UTC).unwrap();
        TemplateContext {
            dag_id: "d".into(),
            task_id: "t".into(),
            map_index: -1,
            try_number: 1,
            run_id: "manual__2024-03-05T00:00:00+00:00".into(),
            logical_date: d,
            data_interval_start: d,
            data_interval_end: d + chrono::Duration::days(1),
            params: json!({"x": 5}).as_object().cloned().unwrap(),
            conf: Map::new(),
            triggering_asset_events: serde_json::json!({}),
            owner: "o".into(),
            operator: "echo".into(),
            xcom,
            secrets: Arc::new(S),
        }
    }

    #[test]
    fn airflow_context() {
        let c = ctx();
        let v = json!({
            "a": "{{ ds }} {{ ds_nodash }} {{ ts }}",
            "b": ["{{ data_interval_end }}", {"c": "{{ dag.dag_id }}/{{ task.task_id }}/{{ params.x }}"}],
            "x": "{{ ti.xcom_pull(task_ids='a', key='return_value')['rows'] }} {{ ti.xcom_pull('m') }}",
            "v": "{{ var.value.env }} {{ var.json.cfg.n }} {{ conn.db.host }}:{{ conn.db.port }} {{ run_id }}",
            "n": 3,
            "m": "{{ macros.ds_add(ds, -5) }} {{ macros.ds_format(ds, '%Y-%m-%d', '%d/%m/%Y') }}",
        });
        let out = render_value(&v, &c, false).unwrap();
        assert_eq!(out["a"], "2024-03-05 20240305 2024-03-05T00:00:00+00:00");
        assert_eq!(out["b"][0], "2024-03-06T00:00:00+00:00");
        assert_eq!(out["b"][1]["c"], "d/t/5");
        assert_eq!(out["x"], "7 [1, 2]");
        assert_eq!(
            out["v"],
            "prod 3 db.local:5432 manual__2024-03-05T00:00:00+00:00"
        );
        assert_eq!(out["n"], 3);
        assert_eq!(out["m"], "2024-02-29 05/03/2024");
    }

    #[test]
    fn containers_render_as_python_prints_them() {
        let c = ctx();
        let v = json!({
            "d": "{{ var.json.get('missing', {'max': 3, 'ok': true, 'none': none}) }}",
            "l": "{{ ['a', \"it's\", 1.5, false] }}",
        });
        let out = render_value(&v, &c, false).unwrap();
        assert_eq!(out["d"], "{'max': 3, 'none': None, 'ok': True}");
        assert_eq!(out["l"], "['a', \"it's\", 1.5, False]");
    }

    #[test]
    fn native_and_errors() {
        let c = ctx();
        assert_eq!(
            render_native("{{ ti.xcom_pull('m') }}", &c).unwrap(),
            json!([1, 2])
        );
        let e = render_value(&json!({"k": {"q": "{{ params.nope }}"}}), &c, false).unwrap_err();
        assert_eq!(e.task_id, "t");
        assert_eq!(e.argument, "k.q");
        assert!(
            e.to_string()
                .starts_with("task t: argument `k.q`: template error"),
            "{e}"
        );
        let e = render_value(&json!("{{ var.value.missing }}"), &c, false).unwrap_err();
        assert!(
            e.message.contains("undefined") || e.message.contains("missing"),
            "{e}"
        );
        // A refused name is an error with its reason, by attribute, item, get() or conn.
        for t in [
            "{{ var.value['bad name'] }}",
            "{{ var.json['bad name'] }}",
            "{{ var.value.get('bad name', 'd') }}",
            "{{ conn['bad name'].host }}",
        ] {
            let e = render_value(&json!(t), &c, false).unwrap_err();
            assert!(e.message.contains("Secrets.InvalidName"), "{t}: {e}");
        }
        assert_eq!(
            render_value(&json!("{{ var.value.get('missing', 'd') }}"), &c, false).unwrap(),
            "d"
        );
        let e = render_value(&json!("{{ ds "), &c, false).unwrap_err();
        assert!(
            e.message.contains("syntax") || e.message.contains("unexpected"),
            "{e}"
        );
    }
}
