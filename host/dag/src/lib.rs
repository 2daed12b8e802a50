//! weft's Airflow-style DAG model: pure parsing, validation and semantics, no I/O beyond reading
//! a DAG folder.
//!
//! DAG files use dag-factory's YAML shape ([`load_dags`]); trigger rules, branching, dynamic task
//! mapping, retries and XCom follow Apache Airflow 3 ([`run_dag_once`] executes one DAG run
//! in-process through a caller's [`TaskExecutor`]); templates are rendered with minijinja
//! ([`template`]); timetables compute data intervals ([`timetable`]). The persistent scheduler
//! lives in `weft-engine`.
//!
//! What `weft dag test DAG_ID [DATE] --json --dags DIR` does with this crate:
//!
//! ```
//! use weft_dag::{load_dags, parse_logical_date, run_dag_once, RunOptions, TaskFailure, TaskInvocation};
//!
//! let dir = std::env::temp_dir().join(format!("weft-dag-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! std::fs::write(dir.join("hello.yaml"), "hello:\n  tasks:\n    a:\n      operator: echo\n      msg: '{{ ds }}'\n").unwrap();
//! // Unknown operators are reported by the caller's check (the plugin store in weft).
//! let (dags, errors) = load_dags(&dir, &|op: &str| op == "echo");
//! assert!(errors.is_empty());
//! let dag = dags.iter().find(|d| d.dag_id == "hello").unwrap();
//! // The executor runs plugins; here `echo` returns its input like weft's real plugin.
//! let exec = |ti: &TaskInvocation| -> Result<serde_json::Value, TaskFailure> { Ok(ti.arguments.clone()) };
//! let report = run_dag_once(dag, parse_logical_date("2024-03-05").unwrap(), &exec, &RunOptions::default());
//! assert_eq!(report.to_json()["tasks"]["a"]["xcom"]["msg"], "2024-03-05");
//! assert_eq!(report.state.as_str(), "success"); // exit 0; `failed` -> exit 1
//! std::fs::remove_dir_all(&dir).ok();
//! ```

pub mod assets;
pub mod builtin;
pub mod cross_dag;
pub mod defaults;
pub mod error;
pub mod folder;
pub mod graph;
pub mod load;
pub mod machine;
pub mod model;
pub mod pyfile;
pub mod pytypes;
pub mod reldate;
pub mod run;
pub mod schedule_forms;
pub mod scheduler_settings;
pub mod template;
pub mod timetable;
pub mod trigger;
pub mod yaml;
mod yaml_flow;
mod yaml_tags;

pub use error::{DagError, TemplateError};
pub use folder::{load_dag_file, load_dag_file_in, load_dags, load_folder, FolderLoad};
pub use load::{
    load_folder_config, parse_dag_file, valid_dag_id, AnyOperator, FolderConfig, OperatorCheck,
};
pub use machine::{
    ti_key, Change, OutletEvent, Poll, RunMachine, TiRecord, MAX_OUTLET_EVENTS, SENSOR_NOT_READY,
};
pub use model::{
    callback_plugins, Dag, Expand, ExpandSource, FileTriggerSpec, Task, TaskGroup, TriggerRule,
    WeightRule,
};
pub use pyfile::{PyDags, PyEvaluation, PyImportError, PythonDagEvaluator};
pub use run::{
    retry_delay, run_dag_once, DagRunReport, PythonCallable, RunOptions, RunState, SensorSpec,
    SleepFn, TaskExecutor, TaskFailure, TaskInvocation, TaskReport,
};
pub use scheduler_settings::SchedulerSettings;
pub use template::{Connection, NoSecrets, Secrets, XComStore};
pub use timetable::{parse_logical_date, DagRunInfo, DataInterval, Restriction, Schedule};
pub use trigger::TiState;
