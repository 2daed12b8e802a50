use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::bindings::weft::operator::host;
use crate::{fs, http, Level, TaskError};

/// What the host tells an operator about the invocation (the `ctx` JSON), plus helpers for
/// everything the sandbox lets it do: log, heartbeat, secrets, HTTP and files.
///
/// Known ctx keys (all optional; unknown keys stay available through [`Context::raw`]):
/// `task` (or `task_id`/`name`), `attempt` (or `try_number`, 1-based), `execution`
/// (or `execution_id`/`run_id`), `params` (an object: the sensor's or DAG task's parameters).
#[derive(Debug, Clone, Default)]
pub struct Context {
    task: String,
    attempt: u32,
    execution: Option<String>,
    params: Map<String, Value>,
    raw: Value,
}

fn first<'a>(obj: &'a Map<String, Value>, keys: &[&str]) -> Option<&'a Value> {
    keys.iter().find_map(|k| obj.get(*k).filter(|v| !v.is_null()))
}

impl Context {
    /// Parse the host's ctx JSON. An empty string is an empty context.
    pub fn parse(ctx: &str) -> Result<Self, TaskError> {
        if ctx.trim().is_empty() {
            return Ok(Self { attempt: 1, raw: Value::Object(Map::new()), ..Self::default() });
        }
        let raw: Value = serde_json::from_str(ctx)
            .map_err(|e| TaskError::new("Operator.InvalidContext", format!("ctx is not JSON: {e}")))?;
        let Some(obj) = raw.as_object() else {
            return Err(TaskError::new("Operator.InvalidContext", "ctx is not a JSON object"));
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
        Ok(Self { task, attempt, execution, params, raw })
    }

    /// The task's name (ASL state name or DAG task id); empty if the host did not say.
    pub fn task_name(&self) -> &str {
        &self.task
    }

    /// 1-based attempt number (ASL Retry / Airflow try_number).
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The execution (or DAG run) id, if the host gave one.
    pub fn execution(&self) -> Option<&str> {
        self.execution.as_deref()
    }

    /// The `params` object (empty if absent).
    pub fn params(&self) -> &Map<String, Value> {
        &self.params
    }

    /// One parameter.
    pub fn param(&self, name: &str) -> Option<&Value> {
        self.params.get(name)
    }

    /// A required string parameter; `Operator.InvalidInput` if missing or not a string.
    pub fn param_str(&self, name: &str) -> Result<&str, TaskError> {
        match self.params.get(name) {
            Some(Value::String(s)) => Ok(s),
            Some(other) => Err(TaskError::invalid_input(format!(
                "ctx param `{name}` must be a string, got {other}"
            ))),
            None => Err(TaskError::invalid_input(format!("ctx param `{name}` is missing"))),
        }
    }

    /// The whole ctx document as the host sent it.
    pub fn raw(&self) -> &Value {
        &self.raw
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
        host::get_secret(name).map_err(|reason: String| split_error(&reason, "Secrets.Unavailable", name))
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
        http::Request::get(url).header("accept", "application/json").send()?.error_for_status()?.json()
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
    pub fn write(&self, path: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> Result<(), TaskError> {
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

/// Turn a host error string of the form `"Error.Name: cause"` into a TaskError.
fn split_error(reason: &str, default_error: &str, what: &str) -> TaskError {
    if let Some((name, cause)) = reason.split_once(": ") {
        if !name.is_empty() && !name.contains(' ') && name.contains('.') {
            return TaskError::new(name, cause);
        }
    }
    TaskError::new(default_error, format!("{what}: {reason}"))
}
