use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::{Map, Value};

use crate::bindings::weft::operator::host;
use crate::{fs, http, Level, TaskError};

/// What the host tells an operator about the invocation (the `ctx` JSON), plus helpers for
/// everything the sandbox lets it do: log, heartbeat, secrets, HTTP and files.
///
/// Known ctx keys (all optional; unknown keys stay available through [`Context::raw`]):
/// `task` (or `task_id`/`name`), `attempt` (or `try_number`, 1-based), `execution`
/// (or `execution_id`/`run_id`), `params` (an object: the sensor's or DAG task's parameters).
///
/// The export macros parse the ctx lazily, on the first accessor call, so an operator that
/// never looks at it (like `echo`) pays nothing; a ctx that is not a JSON object then reads as
/// empty. [`Context::parse`] parses eagerly and reports such a ctx as an error.
#[derive(Debug, Clone, Default)]
pub struct Context {
    text: String,
    parsed: OnceLock<Parsed>,
}

#[derive(Debug, Clone, Default)]
struct Parsed {
    task: String,
    attempt: u32,
    execution: Option<String>,
    params: Map<String, Value>,
    raw: Value,
}

fn first<'a>(obj: &'a Map<String, Value>, keys: &[&str]) -> Option<&'a Value> {
    keys.iter()
        .find_map(|k| obj.get(*k).filter(|v| !v.is_null()))
}

impl Context {
    /// Parse the host's ctx JSON now. An empty string is an empty context.
    pub fn parse(ctx: &str) -> Result<Self, TaskError> {
        let parsed = Parsed::from_text(ctx)?;
        Ok(Self {
            text: ctx.to_string(),
            parsed: OnceLock::from(parsed),
        })
    }

    /// A context parsed on first use (what the export macros hand to operators).
    pub fn lazy(ctx: String) -> Self {
        Self {
            text: ctx,
            parsed: OnceLock::new(),
        }
    }

    fn get(&self) -> &Parsed {
        self.parsed
            .get_or_init(|| Parsed::from_text(&self.text).unwrap_or_else(|_| Parsed::empty()))
    }

    /// The ctx text exactly as the host sent it.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The task's name (ASL state name or DAG task id); empty if the host did not say.
    pub fn task_name(&self) -> &str {
        &self.get().task
    }

    /// 1-based attempt number (ASL Retry / Airflow try_number).
    pub fn attempt(&self) -> u32 {
        self.get().attempt
    }

    /// The execution (or DAG run) id, if the host gave one.
    pub fn execution(&self) -> Option<&str> {
        self.get().execution.as_deref()
    }

    /// The `params` object (empty if absent).
    pub fn params(&self) -> &Map<String, Value> {
        &self.get().params
    }

    /// One parameter.
    pub fn param(&self, name: &str) -> Option<&Value> {
        self.get().params.get(name)
    }

    /// A required string parameter; `Operator.InvalidInput` if missing or not a string.
    pub fn param_str(&self, name: &str) -> Result<&str, TaskError> {
        match self.get().params.get(name) {
            Some(Value::String(s)) => Ok(s),
            Some(other) => Err(TaskError::invalid_input(format!(
                "ctx param `{name}` must be a string, got {other}"
            ))),
            None => Err(TaskError::invalid_input(format!(
                "ctx param `{name}` is missing"
            ))),
        }
    }

    /// The whole ctx document as the host sent it.
    pub fn raw(&self) -> &Value {
        &self.get().raw
    }

    // ---- host services -------------------------------------------------------------------

    /// Append a line to the task log.
    pub fn log(&self, level: Level, msg: impl AsRef<str>) {
        host::log(level, msg.as_ref());
    }
    /// `log(Level::Debug, ..)`.
    pub fn debug(&self, msg: impl AsRef<str>) {
        self.log(Level::Debug, msg)
    }
    /// `log(Level::Info, ..)`.
    pub fn info(&self, msg: impl AsRef<str>) {
        self.log(Level::Info, msg)
    }
    /// `log(Level::Warn, ..)`.
    pub fn warn(&self, msg: impl AsRef<str>) {
        self.log(Level::Warn, msg)
    }
    /// `log(Level::Error, ..)`.
    pub fn error(&self, msg: impl AsRef<str>) {
        self.log(Level::Error, msg)
    }

    /// Tell the host the task is still alive (ASL `HeartbeatSeconds`).
    pub fn heartbeat(&self) {
        host::heartbeat();
    }

    /// Read a secret the grant allows (`secrets:Get` on `secret:NAME`).
    /// A denial is `Sandbox.PermissionDenied` with the secret's name as cause.
    pub fn secret(&self, name: &str) -> Result<String, TaskError> {
        host::get_secret(name)
            .map_err(|reason: String| split_error(&reason, "Secrets.Unavailable", name))
    }

    // ---- HTTP (through the host; the grant's http:Request allowlist is checked) ----------

    /// Send a request built with [`http::Request`].
    pub fn send(&self, req: http::Request) -> Result<http::Response, TaskError> {
        req.send()
    }
    /// GET a URL.
    pub fn http_get(&self, url: &str) -> Result<http::Response, TaskError> {
        http::Request::get(url).send()
    }
    /// GET a URL and parse the body as JSON (fails on non-2xx with `Http.StatusError`).
    pub fn http_get_json(&self, url: &str) -> Result<Value, TaskError> {
        http::Request::get(url)
            .header("accept", "application/json")
            .send()?
            .error_for_status()?
            .json()
    }
    /// POST a JSON body and parse the JSON response (fails on non-2xx with `Http.StatusError`).
    pub fn http_post_json(&self, url: &str, body: &Value) -> Result<Value, TaskError> {
        let resp = http::Request::post(url)
            .header("accept", "application/json")
            .json(body)
            .send()?
            .error_for_status()?;
        if resp.body.is_empty() {
            Ok(Value::Null)
        } else {
            resp.json()
        }
    }

    // ---- files (only the directories the grant preopens exist) ---------------------------

    /// Read a UTF-8 file. See [`fs`] for how denials are reported.
    pub fn read_to_string(&self, path: impl AsRef<Path>) -> Result<String, TaskError> {
        fs::read_to_string(path)
    }
    /// Read a file's bytes.
    pub fn read(&self, path: impl AsRef<Path>) -> Result<Vec<u8>, TaskError> {
        fs::read(path)
    }
    /// Write (create or truncate) a file.
    pub fn write(
        &self,
        path: impl AsRef<Path>,
        contents: impl AsRef<[u8]>,
    ) -> Result<(), TaskError> {
        fs::write(path, contents)
    }
    /// Whether a path exists (`Err` only when the path is outside every granted directory).
    pub fn exists(&self, path: impl AsRef<Path>) -> Result<bool, TaskError> {
        fs::exists(path)
    }
    /// The entries of a directory, sorted.
    pub fn read_dir(&self, path: impl AsRef<Path>) -> Result<Vec<PathBuf>, TaskError> {
        fs::read_dir(path)
    }
    /// Create a directory and its parents.
    pub fn create_dir_all(&self, path: impl AsRef<Path>) -> Result<(), TaskError> {
        fs::create_dir_all(path)
    }
}

impl Parsed {
    fn empty() -> Self {
        Self {
            attempt: 1,
            raw: Value::Object(Map::new()),
            ..Self::default()
        }
    }

    fn from_text(ctx: &str) -> Result<Self, TaskError> {
        if ctx.trim().is_empty() {
            return Ok(Self::empty());
        }
        let raw: Value = serde_json::from_str(ctx).map_err(|e| {
            TaskError::new("Operator.InvalidContext", format!("ctx is not JSON: {e}"))
        })?;
        let Some(obj) = raw.as_object() else {
            return Err(TaskError::new(
                "Operator.InvalidContext",
                "ctx is not a JSON object",
            ));
        };
        let task = first(obj, &["task", "task_id", "name"])
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let attempt = first(obj, &["attempt", "try_number"])
            .and_then(Value::as_u64)
            .map(|n| n as u32)
            .unwrap_or(1);
        let execution = first(obj, &["execution", "execution_id", "run_id"]).map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        });
        let params = match first(obj, &["params", "parameters"]) {
            Some(Value::Object(m)) => m.clone(),
            _ => Map::new(),
        };
        Ok(Self {
            task,
            attempt,
            execution,
            params,
            raw,
        })
    }
}

/// Turn a host error string of the form `"Error.Name: cause"` into a TaskError.
fn split_error(reason: &str, default_error: &str, what: &str) -> TaskError {
    if let Some((name, cause)) = reason.split_once(": ") {
        if !name.is_empty() && !name.contains(' ') && name.contains('.') {
            return TaskError::new(name, cause);
        }
    }
    TaskError::new(default_error, format!("{what}: {reason}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_known_keys_and_aliases() {
        let c = Context::parse(
            r#"{"task":"Load","attempt":3,"execution":"arn:x","params":{"path":"/data/a"}}"#,
        )
        .unwrap();
        assert_eq!(
            (c.task_name(), c.attempt(), c.execution()),
            ("Load", 3, Some("arn:x"))
        );
        assert_eq!(c.param_str("path").unwrap(), "/data/a");
        assert_eq!(
            c.param_str("nope").unwrap_err().error,
            "Operator.InvalidInput"
        );
        let c = Context::parse(r#"{"task_id":"t1","try_number":2,"run_id":"r"}"#).unwrap();
        assert_eq!(
            (c.task_name(), c.attempt(), c.execution()),
            ("t1", 2, Some("r"))
        );
        let c = Context::parse("").unwrap();
        assert_eq!((c.task_name(), c.attempt()), ("", 1));
        let c = Context::lazy("not json".into());
        assert_eq!((c.task_name(), c.attempt(), c.text()), ("", 1, "not json"));
        let c = Context::lazy(r#"{"params":{"path":"/data/x"}}"#.into());
        assert_eq!(c.param_str("path").unwrap(), "/data/x");
        assert_eq!(
            Context::parse("[1]").unwrap_err().error,
            "Operator.InvalidContext"
        );
        assert_eq!(
            Context::parse("{").unwrap_err().error,
            "Operator.InvalidContext"
        );
    }

    #[test]
    fn host_error_strings_keep_their_name() {
        let e = split_error(
            "Sandbox.PermissionDenied: secret:db",
            "Secrets.Unavailable",
            "db",
        );
        assert_eq!(
            (e.error.as_str(), e.cause.as_str()),
            ("Sandbox.PermissionDenied", "secret:db")
        );
        let e = split_error("no such secret", "Secrets.Unavailable", "db");
        assert_eq!(
            (e.error.as_str(), e.cause.as_str()),
            ("Secrets.Unavailable", "db: no such secret")
        );
    }
}
