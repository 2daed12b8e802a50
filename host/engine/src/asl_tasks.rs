//! Runs ASL Task states in the sandbox: the [`weft_asl::TaskRunner`] behind `weft run`.
//!
//! `weft:plugin:NAME[@VERSION|#DIGEST]` names a plugin directly; `arn:aws:states:::lambda:invoke`
//! (its `FunctionName`) and `arn:aws:lambda:...:function:NAME` map onto the installed plugin of
//! that name, so definitions copied from AWS run unchanged. A task runs with the execution role,
//! narrowed by `Credentials.RoleArn` (`weft:role:NAME`) when the state names one; with neither,
//! it gets no capabilities. `TimeoutSeconds` becomes the sandbox deadline. The HTTP Task
//! (`arn:aws:states:::http:invoke`) is built in ([`crate::http_task`]).

use crate::plugin_host::output_value;
use crate::{PluginHost, PluginRef, Roles};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use weft_asl::resource::ResourceKind;
use weft_asl::{StateError, TaskFailure, TaskRequest, TaskRunner};
use weft_sandbox::{AuditRecord, Grant, Limits, LogLine, Outcome, Policy};

/// The log of one task attempt.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TaskLog {
    pub state: String,
    pub plugin: String,
    pub attempt: u32,
    pub logs: Vec<LogLine>,
    pub stdout: String,
    pub stderr: String,
    pub audit: Vec<AuditRecord>,
}

/// Default deadline of a Task without `TimeoutSeconds` (an Express execution's own limit).
pub const DEFAULT_TASK_TIMEOUT: Duration = Duration::from_secs(300);

/// Sees every task attempt that reached the sandbox: the request, the plugin it resolved to and
/// the sandbox's [`Outcome`] (logs, stdout/stderr, audit decisions, fuel, duration). The server
/// keeps these as task logs; it does not change what the runner returns.
pub type TaskObserver<'a> =
    dyn Fn(&TaskRequest<'_>, &weft_store::PluginRecord, &Outcome) + Send + Sync + 'a;

pub struct SandboxTaskRunner<'a> {
    pub host: &'a PluginHost,
    pub roles: &'a Roles,
    /// The execution role; `None` means tasks only get what `Credentials` names.
    pub execution_role: Option<Arc<Policy>>,
    /// Where relative `file:` grants are resolved.
    pub base_dir: PathBuf,
    pub limits: Limits,
    pub logs: Mutex<Vec<TaskLog>>,
    /// Interrupts a running guest when it turns true (StopExecution, shutdown).
    pub cancel: Option<crate::plugin_host::Cancel>,
    /// The execution's trace: each task gets a `traceparent` in its context, so guest logs
    /// join the execution's trace, and each attempt is a span when traces are exported.
    pub trace: Option<crate::telemetry::TraceIds>,
    /// Optional observer of each attempt's outcome (see [`TaskObserver`]).
    pub observer: Option<Box<TaskObserver<'a>>>,
}

/// A W3C `traceparent` for one task attempt of a trace.
/// Its span id is the attempt's span ([`crate::telemetry::attempt_span_id`]).
pub fn traceparent(ids: &crate::telemetry::TraceIds, task_key: &str, attempt: u32) -> String {
    let span = crate::telemetry::attempt_span_id(&ids.seed, task_key, attempt);
    format!("00-{}-{span}-01", ids.trace)
}

/// The W3C trace id of an execution: taken from a `traceparent`-shaped trace header, else
/// derived from the execution ARN (stable across restarts and replays).
pub fn trace_id(execution_arn: &str, trace_header: Option<&str>) -> String {
    if let Some(h) = trace_header {
        let parts: Vec<&str> = h.trim().split('-').collect();
        if parts.len() == 4
            && parts[1].len() == 32
            && parts[1].chars().all(|c| c.is_ascii_hexdigit())
        {
            return parts[1].to_ascii_lowercase();
        }
    }
    blake3::hash(execution_arn.as_bytes()).to_hex()[..32].to_string()
}

impl<'a> SandboxTaskRunner<'a> {
    pub fn new(
        host: &'a PluginHost,
        roles: &'a Roles,
        execution_role: Option<Arc<Policy>>,
        base_dir: PathBuf,
    ) -> Self {
        Self {
            host,
            roles,
            execution_role,
            base_dir,
            limits: Limits {
                timeout: DEFAULT_TASK_TIMEOUT,
                ..Limits::default()
            },
            logs: Mutex::new(Vec::new()),
            cancel: None,
            trace: None,
            observer: None,
        }
    }

    /// Calls `f` with every attempt's outcome (the runner's results are unchanged).
    pub fn with_observer(
        mut self,
        f: impl Fn(&TaskRequest<'_>, &weft_store::PluginRecord, &Outcome) + Send + Sync + 'a,
    ) -> Self {
        self.observer = Some(Box::new(f));
        self
    }

    fn grant(&self, credentials: Option<&Value>) -> Result<Grant, TaskFailure> {
        Ok(Grant::compile(self.layers(credentials)?, &self.base_dir))
    }

    /// The policies a task runs under: the execution role, narrowed by `Credentials.RoleArn`.
    pub(crate) fn layers(
        &self,
        credentials: Option<&Value>,
    ) -> Result<Vec<Arc<Policy>>, TaskFailure> {
        let mut layers = Vec::new();
        if let Some(r) = &self.execution_role {
            layers.push(r.clone());
        }
        if let Some(c) = credentials {
            let Some(role) = c.get("RoleArn").and_then(Value::as_str) else {
                return Err(failure(
                    "States.Permissions",
                    "Credentials must name a RoleArn (weft:role:NAME)",
                ));
            };
            layers.push(
                self.roles
                    .get(role)
                    .map_err(|e| failure("States.Permissions", e.to_string()))?,
            );
        }
        Ok(layers)
    }

    fn plugin_ref(req: &TaskRequest<'_>) -> Result<PluginRef, TaskFailure> {
        match &req.resource.kind {
            ResourceKind::Plugin { name, version, digest } => Ok(match (version, digest) {
                (_, Some(d)) => PluginRef::Digest(name.clone(), d.to_ascii_lowercase()),
                (Some(v), None) => PluginRef::Version(name.clone(), v.clone()),
                (None, None) => PluginRef::Latest(name.clone()),
            }),
            ResourceKind::LambdaInvoke | ResourceKind::LambdaFunction { .. } => {
                if req.target.is_empty() {
                    return Err(failure("States.Runtime", "lambda:invoke needs Parameters.FunctionName"));
                }
                PluginRef::parse(&req.target).map_err(|e| failure("States.Runtime", e.to_string()))
            }
            ResourceKind::Service { .. } => Err(failure(
                "States.Runtime",
                format!(
                    "resource {}: weft does not call AWS services; give this state a mocked response (`weft run --mock-config FILE --test-case NAME`, Step Functions Local's format) or name a plugin instead",
                    req.resource
                ),
            )),
            ResourceKind::Activity { .. } => Err(failure(
                "States.Runtime",
                format!(
                    "resource {}: activity workers poll a running `weft server`; run this state machine there (`weft sm create`), or mock the state with `weft run --mock-config`",
                    req.resource
                ),
            )),
            ResourceKind::StateMachine { .. } | ResourceKind::Dag { .. } => Err(failure(
                "States.Runtime",
                format!(
                    "resource {}: starting another execution or a DAG run needs `weft server` (`weft sm create`), or mock the state with `weft run --mock-config`",
                    req.resource
                ),
            )),
        }
    }
}

/// The error name of a task that could not start: a missing operator is named as AWS names a
/// missing function (`Lambda.ResourceNotFoundException`) for Lambda-shaped resources and
/// `Weft.PluginNotFound` otherwise, so that a Retry on `States.TaskFailed` does not back off
/// on a set-up mistake; anything else is `States.TaskFailed`.
pub fn set_up_error_name(e: &crate::EngineError, req: &TaskRequest<'_>) -> &'static str {
    use weft_asl::resource::ResourceKind;
    match e {
        crate::EngineError::PluginNotFound { .. } => match req.resource.kind {
            ResourceKind::LambdaInvoke | ResourceKind::LambdaFunction { .. } => {
                "Lambda.ResourceNotFoundException"
            }
            _ => "Weft.PluginNotFound",
        },
        _ => "States.TaskFailed",
    }
}

fn failure(error: &str, cause: impl Into<String>) -> TaskFailure {
    TaskFailure {
        error: error.to_string(),
        cause: cause.into(),
    }
}

/// The context a guest receives: `{"task","attempt","execution","params","context"[,"traceparent"]}`.
#[derive(serde::Serialize)]
struct GuestContext<'a> {
    task: &'a str,
    attempt: u32,
    execution: Option<&'a Value>,
    params: EmptyObject,
    context: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    traceparent: Option<String>,
}

/// Serialises as `{}`.
struct EmptyObject;

impl serde::Serialize for EmptyObject {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        s.serialize_map(Some(0))?.end()
    }
}

impl TaskRunner for SandboxTaskRunner<'_> {
    fn run_task(&self, req: &TaskRequest<'_>) -> Result<Value, TaskFailure> {
        if crate::http_task::is_http_invoke(&req.resource.kind) {
            return self.run_http_task(req);
        }
        let r = Self::plugin_ref(req)?;
        let grant = self.grant(req.credentials.as_ref())?;
        let mut limits = self.limits;
        if let Some(t) = req.timeout_seconds {
            limits.timeout = Duration::from_secs(t.min(365 * 24 * 3600));
        }
        let traceparent = self.trace.as_ref().map(|t| {
            let tp = traceparent(t, &req.key, req.attempt);
            tracing::info!(task = %req.state_name, attempt = req.attempt, traceparent = %tp, "task");
            tp
        });
        // the guest's context, serialised without copying the context object
        let ctx = GuestContext {
            task: req.state_name,
            attempt: req.attempt,
            execution: req.context.pointer("/Execution/Id"),
            params: EmptyObject,
            context: req.context,
            traceparent,
        };
        let ctx =
            serde_json::to_string(&ctx).map_err(|e| failure("States.Runtime", e.to_string()))?;
        let input = req.payload.to_string();
        // the execution's own switch (StopExecution) and the branch's (a sibling failed)
        let cancel = if req.cancel.is_armed() {
            let branch = req.cancel.clone();
            let own = self.cancel.clone();
            let both: crate::plugin_host::Cancel =
                Arc::new(move || branch.is_cancelled() || own.as_ref().is_some_and(|c| c()));
            Some(both)
        } else {
            self.cancel.clone()
        };
        let (rec, outcome) = self
            .host
            .run_task_cancellable(&r, &input, &ctx, Arc::new(grant), limits, cancel)
            .map_err(|e| failure(set_up_error_name(&e, req), e.to_string()))?;
        if let Some(t) = self.trace.as_ref().filter(|_| crate::telemetry::enabled()) {
            crate::telemetry::attempt(&crate::telemetry::AttemptSpan {
                trace: &t.trace,
                id: crate::telemetry::attempt_span_id(&t.seed, &req.key, req.attempt),
                parent: crate::telemetry::state_span_id(&t.seed, &req.key),
                task: req.state_name,
                attempt: req.attempt,
                plugin: &rec.name,
                version: &rec.version,
                digest: &rec.digest.to_hex(),
                outcome: &outcome,
                end: std::time::SystemTime::now(),
            });
        }
        if let Some(observe) = &self.observer {
            // the observer keeps the logs
            observe(req, &rec, &outcome);
            return output_value(outcome.result).map_err(|e| failure(&e.error, e.cause));
        }
        self.logs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(TaskLog {
                state: req.state_name.to_string(),
                plugin: format!("{}@{} {}", rec.name, rec.version, rec.digest),
                attempt: req.attempt,
                logs: outcome.logs,
                stdout: outcome.stdout,
                stderr: outcome.stderr,
                audit: outcome.audit,
            });
        output_value(outcome.result).map_err(|e| failure(&e.error, e.cause))
    }
}

/// The largest ItemReader source read from disk.
pub const MAX_ITEM_SOURCE_BYTES: u64 = 64 << 20;

/// Reads ItemReader sources from the local disk on the execution's behalf, through the
/// execution role's grant: `Parameters.Bucket`/`Parameters.Key` (the s3:getObject shape) name a
/// file (`Bucket/Key`, the key always inside the bucket; relative paths under `base_dir`), the
/// role must allow `fs:Read` on its canonical `file:` resource, and the file is opened with no
/// symbolic link followed. With no role nothing is read. Every decision is kept in `audit` and
/// logged.
pub struct LocalItemReader {
    pub base_dir: PathBuf,
    /// The execution role.
    pub role: Option<Arc<Policy>>,
    pub audit: Mutex<Vec<AuditRecord>>,
}

impl LocalItemReader {
    pub fn new(base_dir: PathBuf, role: Option<Arc<Policy>>) -> Self {
        Self {
            base_dir,
            role,
            audit: Mutex::new(Vec::new()),
        }
    }

    /// The decisions taken so far.
    pub fn audit(&self) -> Vec<AuditRecord> {
        self.audit.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl weft_asl::ItemReader for LocalItemReader {
    fn read(&self, resource: &str, params: &Value) -> Result<Vec<u8>, StateError> {
        let fail = |cause: String| {
            StateError::new(
                "States.ItemReaderFailed",
                format!("ItemReader {resource}: {cause}"),
            )
        };
        let bucket = match params.get("Bucket") {
            None => "",
            Some(Value::String(b)) => b.as_str(),
            Some(_) => return Err(fail("Parameters.Bucket must be a string".into())),
        };
        let Some(key) = params.get("Key").and_then(Value::as_str) else {
            return Err(fail(
                "Parameters.Key (the file to read) is missing or not a string".into(),
            ));
        };
        if key.is_empty() {
            return Err(fail("Parameters.Key is empty".into()));
        }
        // the key always lies inside the bucket, as in S3 (`/etc/passwd` is a key too)
        let path = if bucket.is_empty() {
            key.to_string()
        } else {
            format!("{bucket}/{key}")
        };
        let layers: Vec<Arc<Policy>> = self.role.iter().cloned().collect();
        let grant = Grant::for_requests(layers, &self.base_dir);
        let (result, record) = grant.read_file(&path, MAX_ITEM_SOURCE_BYTES);
        tracing::info!(
            action = %record.action,
            resource = %record.resource,
            decision = ?record.decision,
            statement = record.statement.as_deref().unwrap_or("-"),
            "ItemReader access"
        );
        self.audit
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(record);
        result.map_err(|e| match e {
            weft_sandbox::FileReadError::Denied(r) if self.role.is_none() => fail(format!(
                "Sandbox.PermissionDenied: there is no execution role, so nothing may be read; give one (`weft run --role NAME`, a state machine's roleArn) that allows fs:Read on {r}"
            )),
            weft_sandbox::FileReadError::Denied(r) => fail(format!(
                "Sandbox.PermissionDenied: the execution role does not allow fs:Read on {r}"
            )),
            other => fail(other.to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_asl::ItemReader;

    fn role(json: &str) -> Option<Arc<Policy>> {
        Some(Arc::new(Policy::parse(json).unwrap()))
    }

    fn params(bucket: &str, key: &str) -> Value {
        serde_json::json!({"Bucket": bucket, "Key": key})
    }

    /// Issue 13 item 14: ItemReader reads only what the execution role grants, never through a
    /// symlink, and every decision is audited.
    #[test]
    fn item_reader_goes_through_the_execution_role() {
        let t = tempfile::tempdir().unwrap();
        let base = std::fs::canonicalize(t.path()).unwrap();
        std::fs::create_dir_all(base.join("data/in")).unwrap();
        std::fs::write(base.join("data/in/items.json"), "[1,2]").unwrap();
        std::os::unix::fs::symlink("/etc", base.join("data/in/etc")).unwrap();
        std::os::unix::fs::symlink("/etc", base.join("linked")).unwrap();
        let r = LocalItemReader::new(
            base.clone(),
            role(
                r#"{"Statement":[{"Effect":"Allow","Action":"fs:Read","Resource":"file:data/*"}]}"#,
            ),
        );
        let res = "arn:aws:states:::s3:getObject";
        assert_eq!(
            r.read(res, &params("data/in", "items.json")).unwrap(),
            b"[1,2]"
        );
        assert_eq!(
            r.read(res, &params("", "data/in/items.json")).unwrap(),
            b"[1,2]"
        );
        let abs = base.join("data").display().to_string();
        assert_eq!(
            r.read(res, &params(&abs, "in//./items.json")).unwrap(),
            b"[1,2]"
        );
        for (bucket, key) in [
            ("/etc", "passwd"),
            ("", "/etc/passwd"),
            (".", "passwd"),
            ("data", "../../etc/passwd"),
            ("data/in", "../../../../etc/passwd"),
            ("data", "/etc/passwd"),
            ("data/in/etc", "passwd"),
            ("linked", "passwd"),
            ("/", "etc/passwd"),
            ("data\\..\\..", "etc/passwd"),
        ] {
            let e = r.read(res, &params(bucket, key)).unwrap_err();
            assert_eq!(e.error, "States.ItemReaderFailed", "{bucket} {key}");
            assert!(
                !e.cause.as_deref().unwrap_or("").contains("root:"),
                "{:?}",
                e.cause
            );
        }
        let e = r.read(res, &params("/etc", "passwd")).unwrap_err();
        assert!(
            e.cause
                .as_deref()
                .unwrap_or("")
                .contains("Sandbox.PermissionDenied"),
            "{:?}",
            e.cause
        );
        assert!(
            e.cause
                .as_deref()
                .unwrap_or("")
                .contains("file:/etc/passwd"),
            "{:?}",
            e.cause
        );
        let e = r.read(res, &params("data/in/etc", "passwd")).unwrap_err();
        assert!(
            e.cause.as_deref().unwrap_or("").contains("symbolic link"),
            "{:?}",
            e.cause
        );
        let audit = r.audit();
        assert!(audit
            .iter()
            .any(|a| a.resource == "file:/etc/passwd" && a.decision == weft_sandbox::Effect::Deny));
        assert!(audit
            .iter()
            .any(|a| a.decision == weft_sandbox::Effect::Allow));
        // no role: nothing at all
        let none = LocalItemReader::new(base.clone(), None);
        let e = none
            .read(res, &params("data/in", "items.json"))
            .unwrap_err();
        assert!(
            e.cause
                .as_deref()
                .unwrap_or("")
                .contains("no execution role"),
            "{:?}",
            e.cause
        );
        // a Deny in any spelling holds
        let r = LocalItemReader::new(
            base.clone(),
            role(
                r#"{"Statement":[{"Effect":"Allow","Action":"fs:Read","Resource":"file:data/*"},
                                  {"Effect":"Deny","Action":"fs:*","Resource":"*items*"}]}"#,
            ),
        );
        assert!(r.read(res, &params("data/in", "items.json")).is_err());
    }

    #[test]
    fn trace_ids_and_traceparents() {
        let a = trace_id("arn:x", None);
        assert_eq!(a.len(), 32);
        assert_eq!(
            a,
            trace_id("arn:x", Some("Root=1-abc")),
            "a non-W3C header is ignored"
        );
        let given = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(
            trace_id("arn:x", Some(given)),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        let ids = crate::telemetry::TraceIds::new(a.clone());
        let tp = traceparent(&ids, "/0.1", 1);
        let parts: Vec<&str> = tp.split('-').collect();
        assert_eq!(
            (parts[0], parts[1], parts[2].len(), parts[3]),
            ("00", a.as_str(), 16, "01")
        );
        assert_ne!(
            tp,
            traceparent(&ids, "/0.1", 2),
            "each attempt is its own span"
        );
        assert_eq!(tp, traceparent(&ids, "/0.1", 1), "stable across replays");
    }
}
