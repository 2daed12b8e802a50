//! Runs DAG task instances in the sandbox: the [`weft_dag::TaskExecutor`] behind `weft dag test`
//! and the scheduler. Each task's plugin is resolved in the store, its grant is the role its
//! `grant:` names (no capabilities without one) and its `execution_timeout` becomes the
//! sandbox deadline. Task logs and audit records are kept per try.

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

/// Strips `weft:plugin:` from an operator reference.
pub fn operator_ref(op: &str) -> &str {
    op.strip_prefix("weft:plugin:").unwrap_or(op)
}

impl TaskExecutor for SandboxTaskExecutor<'_> {
    fn execute(&self, ti: &TaskInvocation) -> Result<Value, TaskFailure> {
        let r = PluginRef::parse(operator_ref(&ti.operator))
            .map_err(|e| TaskFailure::new("Weft.UnknownOperator", e.to_string()))?;
        let grant = self.grant(&ti.grant)?;
        let mut limits = self.limits;
        if let Some(t) = ti.execution_timeout {
            limits.timeout = t;
        }
        let input = ti.arguments.to_string();
        let ctx = ti.context_json().to_string();
        let (_, outcome) = self
            .host
            .run_task(&r, &input, &ctx, grant, limits)
            .map_err(|e| match e {
                EngineError::PluginNotFound { .. } => {
                    TaskFailure::new("Weft.UnknownOperator", e.to_string())
                }
                other => TaskFailure::new("States.TaskFailed", other.to_string()),
            })?;
        self.tries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(TryLog {
                task: ti.display_id(),
                try_number: ti.try_number,
                logs: outcome.logs,
                stdout: outcome.stdout,
                stderr: outcome.stderr,
                audit: outcome.audit,
            });
        output_value(outcome.result).map_err(|e| TaskFailure::new(e.error, e.cause))
    }
}
