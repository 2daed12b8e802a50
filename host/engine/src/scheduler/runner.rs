//! The interface the scheduler runs task tries and callbacks through.
//!
//! [`TryRunner`] returns a try's result together with its log (guest log records, stdout,
//! stderr, audit) so the scheduler can store logs per try. The sandbox executor
//! ([`crate::dag_exec::SandboxTaskExecutor`]) implements it; [`Plain`] adapts any
//! [`weft_dag::TaskExecutor`] (tests, benchmarks) with empty logs.

use serde_json::Value;
use weft_dag::{TaskExecutor, TaskFailure, TaskInvocation};

/// A try's result and its log.
#[derive(Debug, Clone)]
pub struct TryOutcome {
    /// The return value (XCom) or the failure.
    pub result: Result<Value, TaskFailure>,
    /// The try's log entry (`null` when there is none).
    pub log: Value,
}

/// Runs task tries and callbacks.
pub trait TryRunner: Sync {
    /// Run one try (one poke for a sensor-world plugin: a poke that says "not yet" fails
    /// with [`weft_dag::SENSOR_NOT_READY`]).
    fn run_try(&self, inv: &TaskInvocation) -> TryOutcome;

    /// [`TryRunner::run_try`] that stops the try when `cancel` says so (a task instance marked
    /// while it runs). Runners that cannot stop a try run it to its end.
    fn run_try_cancellable(
        &self,
        inv: &TaskInvocation,
        cancel: &crate::plugin_host::Cancel,
    ) -> TryOutcome {
        let _ = cancel;
        self.run_try(inv)
    }

    /// Run a callback plugin with a context JSON as its input.
    fn run_callback(
        &self,
        plugin: &str,
        grant: Option<&str>,
        context: &Value,
    ) -> Result<Value, TaskFailure>;
}

/// Adapts a [`TaskExecutor`]: callbacks run as invocations of the named operator with the
/// context as arguments.
pub struct Plain<E>(pub E);

impl<E: TaskExecutor> TryRunner for Plain<E> {
    fn run_try(&self, inv: &TaskInvocation) -> TryOutcome {
        TryOutcome {
            result: self.0.execute(inv),
            log: Value::Null,
        }
    }

    fn run_callback(
        &self,
        plugin: &str,
        grant: Option<&str>,
        context: &Value,
    ) -> Result<Value, TaskFailure> {
        let inv = callback_invocation(plugin, grant, context);
        self.0.execute(&inv)
    }
}

/// The invocation a callback plugin receives: the context JSON as its input.
pub fn callback_invocation(plugin: &str, grant: Option<&str>, context: &Value) -> TaskInvocation {
    let s = |k: &str| {
        context
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    TaskInvocation {
        dag_id: s("dag_id"),
        task_id: format!("{}:{}", s("task_id"), s("callback")),
        run_id: s("run_id"),
        map_index: -1,
        try_number: 1,
        max_tries: 1,
        operator: plugin.to_string(),
        arguments: context.clone(),
        grant: grant.map(str::to_string),
        execution_timeout: Some(std::time::Duration::from_secs(60)),
        pool: "default_pool".into(),
        queue: None,
        logical_date: context
            .get("logical_date")
            .and_then(Value::as_str)
            .and_then(|d| chrono::DateTime::parse_from_rfc3339(d).ok())
            .map(|d| d.with_timezone(&chrono::Utc))
            .unwrap_or_else(chrono::Utc::now),
        params: serde_json::Map::new(),
        sensor: Default::default(),
        first_poke_elapsed: std::time::Duration::ZERO,
        source_file: None,
        xcoms: None,
        data_interval: None,
        python_callable: None,
    }
}
