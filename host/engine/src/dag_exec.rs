//! Runs DAG task instances in the sandbox: the [`weft_dag::TaskExecutor`] behind `weft dag test`
//! and the scheduler. Each task's plugin is resolved in the store, its grant is the role its
//! `grant:` names (no capabilities without one) and its `execution_timeout` becomes the
//! sandbox deadline. Task logs and audit records are kept per try. A sensor-world plugin is
//! poked once per try with the task's arguments as ctx params: `true` succeeds, `false` fails
//! with [`weft_dag::SENSOR_NOT_READY`] so the run machine reschedules or times it out.
//! A Python callable also sees its DAG folder's packages read-only (the ones its file was
//! parsed with; see [`crate::py_dags::packages_for`]), pinned by their digest.

use crate::plugin_host::output_value;
use crate::{EngineError, PluginHost, PluginRef, Roles};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use weft_dag::{TaskExecutor, TaskFailure, TaskInvocation};
use weft_sandbox::{AuditRecord, Grant, Limits, LogLine};

/// The log of one task try.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TryLog {
    pub task: String,
    pub try_number: u32,
    pub logs: Vec<LogLine>,
    pub stdout: String,
    pub stderr: String,
    pub audit: Vec<AuditRecord>,
}

pub struct SandboxTaskExecutor<'a> {
    pub host: &'a PluginHost,
    pub roles: &'a Roles,
    pub base_dir: std::path::PathBuf,
    pub limits: Limits,
    grants: Mutex<HashMap<Option<String>, Arc<Grant>>>,
    pub tries: Mutex<Vec<TryLog>>,
    /// Mixed into the runs' trace ids when a run id may run again (`weft dag test`; see
    /// [`crate::telemetry::dag_trace_id`]).
    pub trace_salt: Option<String>,
}

impl<'a> SandboxTaskExecutor<'a> {
    pub fn new(host: &'a PluginHost, roles: &'a Roles, base_dir: std::path::PathBuf) -> Self {
        Self {
            host,
            roles,
            base_dir,
            limits: Limits::default(),
            grants: Mutex::new(HashMap::new()),
            tries: Mutex::new(Vec::new()),
            trace_salt: None,
        }
    }

    fn grant(&self, role: &Option<String>) -> Result<Arc<Grant>, TaskFailure> {
        if let Some(g) = self
            .grants
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(role)
        {
            return Ok(g.clone());
        }
        let g = match role {
            None => Arc::new(Grant::none()),
            Some(name) => {
                let p = self
                    .roles
                    .get(name)
                    .map_err(|e| TaskFailure::new("States.Permissions", e.to_string()))?;
                Arc::new(Grant::compile(vec![p], &self.base_dir))
            }
        };
        self.grants
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(role.clone(), g.clone());
        Ok(g)
    }
}

/// The DAG file whose Python callable `ti` runs (`@task`, PythonOperator, branch and
/// short-circuit callables of a Python DAG file, a YAML task's `python_callable`), run by the
/// parser component in call mode; `None` for any other task.
pub fn python_callable_file(ti: &TaskInvocation) -> Option<&std::path::Path> {
    ti.source_file
        .as_deref()
        .filter(|_| ti.operator.starts_with(weft_dag::builtin::PYTHON))
}

/// Largest snapshot of a run's XComs sent with a Python callable that may `ti.xcom_pull`.
pub const MAX_PULLABLE_XCOM_BYTES: usize = 8 << 20;

/// The parser component's call-mode input for a Python callable task: the DAG file (read again
/// now, size-capped), which task, its rendered arguments (TaskFlow XComs resolved) and, when the
/// file calls `xcom_pull`, the XComs of its own DAG run so far (no other run's or DAG's), and
/// where its DAG folder's packages are (`packages`, shown read-only by the grant). The input
/// carries the file's text, so a remote worker runs the callable without the DAG folder.
pub fn python_call_input(
    path: &std::path::Path,
    ti: &TaskInvocation,
    packages: Option<&crate::py_packages::Packages>,
) -> Result<String, TaskFailure> {
    if let Some(c) = &ti.python_callable {
        inside_dag_folder(path, &c.dag_dir, &ti.task_id)?;
    }
    let source = weft_dag::folder::read_dag_file(path)
        .map_err(|e| TaskFailure::new("Airflow.DagImportError", e.to_string()))?;
    let xcoms = match (&ti.xcoms, source.contains("xcom_pull")) {
        (Some(store), true) => store.snapshot(MAX_PULLABLE_XCOM_BYTES).ok_or_else(|| {
            TaskFailure::new(
                "Weft.XComTooLarge",
                format!(
                    "task `{}` may call ti.xcom_pull, but the run's XComs are larger than the {} MiB a Python callable is sent",
                    ti.task_id,
                    MAX_PULLABLE_XCOM_BYTES >> 20
                ),
            )
        })?,
        _ => Value::Null,
    };
    let mut input = serde_json::json!({
        "mode": "call",
        "path": path.display().to_string(),
        "source": source,
        "dag_id": ti.dag_id,
        "task_id": ti.task_id,
        "arguments": ti.arguments,
        "xcoms": xcoms,
        "callable": ti.python_callable.as_ref().map(|c| c.name.clone()),
        "operator": ti.operator.strip_prefix(weft_dag::builtin::PYTHON),
    });
    if let Some(p) = packages {
        input["packages"] = crate::py_packages::GUEST_PATH.into();
        input["packages_blake3"] = p.digest.to_hex().as_str().into();
    }
    Ok(input.to_string())
}

/// The grant of a Python callable: the task's, plus its DAG folder's packages read-only.
fn with_packages(
    grant: Arc<Grant>,
    packages: Option<&crate::py_packages::Packages>,
) -> Result<Arc<Grant>, TaskFailure> {
    let Some(p) = packages else {
        return Ok(grant);
    };
    (*grant)
        .clone()
        .with_read_only_dir(&p.dir, crate::py_packages::GUEST_PATH)
        .map(Arc::new)
        .map_err(|e| {
            TaskFailure::new(
                "Airflow.DagImportError",
                format!("cannot show the DAG folder's packages to the callable: {e}"),
            )
        })
}

/// A YAML task's callable file must lie inside its DAG file's folder (after following links):
/// a DAG file must not make the host read, and hand to the sandbox, a file from elsewhere.
fn inside_dag_folder(
    file: &std::path::Path,
    dag_dir: &std::path::Path,
    task_id: &str,
) -> Result<(), TaskFailure> {
    let refuse = |why: String| {
        TaskFailure::new(
            weft_dag::builtin::PYTHON_NOT_RUN,
            format!(
                "task `{task_id}`: the Python callable's file {}: {why}",
                file.display()
            ),
        )
    };
    let dir = dag_dir
        .canonicalize()
        .map_err(|e| refuse(format!("the DAG folder cannot be read: {e}")))?;
    let real = file
        .canonicalize()
        .map_err(|e| refuse(format!("cannot be read: {e}")))?;
    if !real.starts_with(&dir) {
        return Err(refuse(format!(
            "is outside the DAG file's folder {}; weft runs callables from files beside the DAG only",
            dir.display()
        )));
    }
    Ok(())
}

/// Strips `weft:plugin:` from an operator reference.
pub fn operator_ref(op: &str) -> &str {
    op.strip_prefix("weft:plugin:").unwrap_or(op)
}

impl SandboxTaskExecutor<'_> {
    /// Run one try (one poke of a sensor) and return its log with the result.
    pub fn execute_logged(
        &self,
        ti: &TaskInvocation,
    ) -> (Result<Value, TaskFailure>, Option<TryLog>) {
        self.execute_cancellable(ti, None)
    }

    /// [`SandboxTaskExecutor::execute_logged`] whose guest is stopped when `cancel` says so.
    pub fn execute_cancellable(
        &self,
        ti: &TaskInvocation,
        cancel: Option<crate::plugin_host::Cancel>,
    ) -> (Result<Value, TaskFailure>, Option<TryLog>) {
        // a Python callable of a Python DAG file runs in the parser component (call mode)
        let python_file = python_callable_file(ti);
        // EmptyOperator and friends: no plugin, no sandbox
        if python_file.is_none() {
            if let Some(r) = weft_dag::builtin::execute(ti) {
                return (r, None);
            }
        }
        if ti.operator.starts_with("weft:statemachine:") {
            return (
                Err(TaskFailure::new(
                    "Weft.NeedsServer",
                    format!(
                        "task `{}` runs a state machine ({}): such tasks run in the scheduler of `weft server`",
                        ti.task_id, ti.operator
                    ),
                )),
                None,
            );
        }
        let map = |e: EngineError| match e {
            EngineError::PluginNotFound { .. } => {
                TaskFailure::new("Weft.UnknownOperator", e.to_string())
            }
            other => TaskFailure::new("States.TaskFailed", other.to_string()),
        };
        let trace =
            crate::telemetry::dag_trace_id(&ti.dag_id, &ti.run_id, self.trace_salt.as_deref());
        let _span = tracing::info_span!(
            "task_try",
            dag_id = %ti.dag_id,
            run_id = %ti.run_id,
            task = %ti.display_id(),
            try_number = ti.try_number,
            trace_id = %trace
        )
        .entered();
        let started = std::time::SystemTime::now();
        let prepared = (|| {
            let r = match python_file {
                Some(_) => PluginRef::Latest(crate::py_dags::PARSER_PLUGIN.into()),
                None => PluginRef::parse(operator_ref(&ti.operator))
                    .map_err(|e| TaskFailure::new("Weft.UnknownOperator", e.to_string()))?,
            };
            let mut grant = self.grant(&ti.grant)?;
            let packages = match python_file {
                // as at parse time: broken requirements leave the packages out (an import
                // of one fails, naming it)
                Some(path) => crate::py_dags::packages_for(self.host.store.home(), path)
                    .unwrap_or_else(|e| {
                        tracing::warn!(error = %e, "the DAG folder's requirements.txt is not installed");
                        None
                    }),
                None => None,
            };
            if let Some(p) = &packages {
                tracing::debug!(packages = %p.digest.to_hex(), "Python packages of the DAG folder");
                grant = with_packages(grant, Some(p))?;
            }
            let rec = self.host.resolve(&r).map_err(map)?;
            let component = self.host.load(&rec).map_err(map)?;
            Ok::<_, TaskFailure>((grant, component, rec, packages))
        })();
        let (grant, component, rec, packages) = match prepared {
            Ok(x) => x,
            Err(f) => return (Err(f), None),
        };
        let mut limits = self.limits;
        if let Some(t) = ti.execution_timeout {
            limits.timeout = t;
        }
        let sensor = component.world == weft_sandbox::World::Sensor;
        let mut ctx = ti.context_json();
        let tp_id = crate::telemetry::try_span_id(&trace, &ti.display_id(), ti.try_number);
        if let (true, Value::Object(m)) = (crate::telemetry::enabled(), &mut ctx) {
            m.insert(
                "traceparent".into(),
                Value::String(format!("00-{trace}-{tp_id}-01")),
            );
        }
        if sensor {
            // A sensor gets its arguments as ctx params (it has no input).
            if let (Some(Value::Object(p)), Value::Object(args)) =
                (ctx.get_mut("params"), &ti.arguments)
            {
                for (k, v) in args {
                    p.insert(k.clone(), v.clone());
                }
            }
        }
        let ctx = ctx.to_string();
        let outcome = if sensor {
            self.host
                .sandbox
                .poke(
                    &component,
                    weft_sandbox::Invocation {
                        input: "",
                        ctx: &ctx,
                        grant,
                        limits,
                        secrets: self.host.secrets.clone(),
                        heartbeat: None,
                        cancel,
                    },
                )
                .map_err(|e| map(e.into()))
        } else {
            let input = match python_file {
                Some(path) => match python_call_input(path, ti, packages.as_ref()) {
                    Ok(i) => i,
                    Err(f) => return (Err(f), None),
                },
                None => ti.arguments.to_string(),
            };
            self.host
                .invoke_cancellable(&component, &input, &ctx, grant, limits, cancel)
                .map_err(map)
        };
        let outcome = match outcome {
            Ok(o) => o,
            Err(f) => return (Err(f), None),
        };
        if crate::telemetry::enabled() {
            let task = ti.display_id();
            crate::telemetry::attempt(&crate::telemetry::AttemptSpan {
                trace: &trace,
                id: tp_id,
                parent: crate::telemetry::task_instance_span_id(&trace, &task),
                task: &task,
                attempt: ti.try_number,
                plugin: &rec.name,
                version: &rec.version,
                digest: &rec.digest.to_hex(),
                outcome: &outcome,
                end: std::time::SystemTime::now(),
            });
        }
        let log = TryLog {
            task: ti.display_id(),
            try_number: ti.try_number,
            logs: outcome.logs,
            stdout: outcome.stdout,
            stderr: outcome.stderr,
            audit: outcome.audit,
        };
        let result = if sensor {
            match outcome.result {
                Ok(t) if t == "true" => Ok(Value::Null),
                Ok(_) => Err(TaskFailure::new(
                    weft_dag::SENSOR_NOT_READY,
                    "the sensor's poke returned false",
                )),
                Err(e) => Err(TaskFailure::new(e.error, e.cause)),
            }
        } else {
            output_value(outcome.result).map_err(|e| TaskFailure::new(e.error, e.cause))
        };
        if crate::telemetry::enabled() {
            // the task instance's span ends with its last try (not a sensor's reschedule, not
            // a try that will be retried)
            let last = match &result {
                Ok(_) => Some(None),
                Err(f) if f.error == weft_dag::SENSOR_NOT_READY => None,
                Err(f)
                    if ti.try_number < ti.max_tries
                        && !matches!(
                            f.error.as_str(),
                            "AirflowFailException"
                                | "Weft.FailNoRetry"
                                | "AirflowSkipException"
                                | "Weft.Skip"
                        ) =>
                {
                    None
                }
                Err(f) => Some(Some(f.error.as_str())),
            };
            crate::telemetry::task_instance_try(
                &trace,
                &ti.dag_id,
                &ti.run_id,
                &ti.display_id(),
                started,
                last,
            );
        }
        (result, Some(log))
    }
}

impl TaskExecutor for SandboxTaskExecutor<'_> {
    fn execute(&self, ti: &TaskInvocation) -> Result<Value, TaskFailure> {
        let (result, log) = self.execute_logged(ti);
        if let Some(log) = log {
            self.tries
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(log);
        }
        result
    }
}

impl crate::scheduler::TryRunner for SandboxTaskExecutor<'_> {
    fn run_try(&self, inv: &TaskInvocation) -> crate::scheduler::TryOutcome {
        self.run_try_cancellable(inv, &(Arc::new(|| false) as crate::plugin_host::Cancel))
    }

    fn run_try_cancellable(
        &self,
        inv: &TaskInvocation,
        cancel: &crate::plugin_host::Cancel,
    ) -> crate::scheduler::TryOutcome {
        let (result, log) = self.execute_cancellable(inv, Some(cancel.clone()));
        let log = log
            .and_then(|l| serde_json::to_value(l).ok())
            .unwrap_or(Value::Null);
        crate::scheduler::TryOutcome { result, log }
    }

    fn run_callback(
        &self,
        plugin: &str,
        grant: Option<&str>,
        context: &Value,
    ) -> Result<Value, TaskFailure> {
        let inv = crate::scheduler::runner::callback_invocation(plugin, grant, context);
        self.execute_logged(&inv).0
    }
}
