//! Errors of the DAG crate.
//!
//! [`DagError`] is one problem found while loading or validating a DAG file, printed as
//! `file:line: dag_id.tasks.t1: reason` so a human can jump to it. [`TemplateError`] is a task
//! argument that failed to render.

use std::fmt;
use std::path::PathBuf;

/// A problem in a DAG file, with its location.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct DagError {
    /// The file.
    pub file: PathBuf,
    /// 1-based line (0 when the whole file is concerned).
    pub line: usize,
    /// Dotted path inside the file (`dag_id.tasks.t1.trigger_rule`), possibly empty.
    pub path: String,
    /// What is wrong and, where possible, what to do.
    pub reason: String,
    /// The DAG the problem belongs to (`None`: the file as a whole, such as a YAML syntax
    /// error).
    pub dag_id: Option<String>,
    /// The Python traceback of a Python DAG file that failed to import (Airflow's
    /// `stack_trace`); `None` for every other error.
    pub traceback: Option<Box<str>>,
}

impl fmt::Display for DagError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
        }
        if !self.path.is_empty() {
            write!(f, ": {}", self.path)?;
        }
        write!(f, ": {}", self.reason)
    }
}

/// A template that failed to render, for one task.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("task {task_id}: argument `{argument}`: template error: {message}")]
pub struct TemplateError {
    /// Task id (with map index suffix for mapped instances).
    pub task_id: String,
    /// Dotted path of the argument being rendered.
    pub argument: String,
    /// The template engine's message.
    pub message: String,
}
