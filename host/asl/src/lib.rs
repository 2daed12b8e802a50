//! Amazon States Language (ASL) for weft: the model, a parser + validator whose errors carry
//! JSON pointers, JSONPath, intrinsic functions, JSONata, and a pure interpreter that a
//! durable engine can drive one state at a time, plus a synchronous driver for Express-style
//! runs. Nothing in this crate performs I/O: tasks, time and ItemReader sources come from
//! caller-supplied traits.
//!
//! # Entry points
//!
//! ```text
//! parse(definition_json: &str) -> Result<StateMachine, ValidationErrors>
//!     // every problem at once; Display prints one "POINTER: reason" per line
//! validate_with_warnings(definition_json: &str)
//!     -> Result<(StateMachine, Vec<Warning>), ValidationErrors>
//!     // plus what weft accepts but does not act on; Display "POINTER: warning: MESSAGE"
//! parse_yaml(text) / parse_any(text /* JSON or YAML */) -> Result<StateMachine, ValidationErrors>
//! validate_any_with_warnings(text), yaml_to_value(text), looks_like_asl_yaml(text) -> bool
//! run_express(sm: &StateMachine, input: Value, opts: &RunOptions,
//!             runner: &dyn TaskRunner, clock: &dyn Clock, hooks: Hooks)
//!     -> Result<Value, ExecutionFailure /* StateError { error, cause: Option<String> } */>
//!
//! trait TaskRunner: Send + Sync { fn run_task(&self, req: &TaskRequest) -> Result<Value, TaskFailure>; }
//! trait Clock: Send + Sync { fn now(&self) -> DateTime<Utc>; fn sleep(&self, d: Duration); }
//! trait HistorySink: Send { fn event(&mut self, ev: HistoryEvent); }   // via Hooks::history
//! trait ItemReader: Send + Sync { fn read(&self, resource: &str, params: &Value) -> Result<Vec<u8>, StateError>; }
//! ```
//!
//! A run with a history sink and the real clock:
//!
//! ```
//! use serde_json::json;
//! use weft_asl::{parse, run_express, HistoryEvent, Hooks, NoTasks, RunOptions, SystemClock};
//!
//! let sm = parse(r#"{"StartAt": "A", "States": {"A": {"Type": "Pass",
//!     "Parameters": {"greeting.$": "States.Format('hello {}', $.name)"}, "End": true}}}"#)
//!     .expect("valid definition");
//! let mut events: Vec<HistoryEvent> = Vec::new();
//! let hooks = Hooks { history: Some(&mut events), ..Hooks::default() };
//! let out = run_express(&sm, json!({"name": "weft"}), &RunOptions::default(), &NoTasks,
//!     &SystemClock, hooks);
//! assert_eq!(out, Ok(json!({"greeting": "hello weft"})));
//! assert_eq!(events.last().map(|e| e.event_type), Some("ExecutionSucceeded"));
//! ```
//!
//! `TaskRequest` carries the state name, the parsed [`resource::Resource`], the target
//! (plugin / function name), the effective parameters and payload (for `lambda:invoke` the
//! `Payload`; its result is wrapped like AWS's `{"ExecutedVersion", "Payload",
//! "SdkHttpMetadata", "SdkResponseMetadata", "StatusCode"}`), credentials, timeout and
//! heartbeat seconds, the context object (with `Task.Token` for `.waitForTaskToken`) and the
//! attempt number.
//!
//! For a durable engine, [`step`] exposes the pure pieces, each taking the state, its raw
//! input and an [`env::Env`] (input, lazily built context object `$$`, [`env::Variables`]):
//! `effective_input` + `payload` (InputPath -> Parameters/Arguments), `prepare_task`
//! (everything a Task needs, incl. resolved TimeoutSeconds/HeartbeatSeconds/Credentials and
//! the lambda:invoke target), `finish` (ResultSelector -> ResultPath -> OutputPath, or JSONata
//! Output, plus the Assign list to apply), `run_pass`, `choose` (next state index + output),
//! `wait_until` (deadline in epoch ms), `fail_error`, `map_items` / `map_item_input` /
//! `map_max_concurrency` / `map_tolerated`, `on_error` (Retry with its delay in ms / Catch
//! with the next state and output / Fail) and `next_state`. Variables persist as a JSON
//! object (`Variables::to_object` / `Variables::from_object`). Errors raised by these steps
//! are runtime errors; a driver prefixes their cause with AWS's "An error occurred while
//! executing the state 'X' (entered at the event id #N)." as [`run_express`] does.
//!
//! Limits (see [`limits`]): the execution input, every state output, a task's input after
//! Parameters and its result, and the values one Assign sets are bounded by AWS's 256 KiB
//! (`RunOptions::max_payload_bytes`) and by a nesting depth, failing with
//! `States.DataLimitExceeded`; JSONata expressions are refused at validation when their
//! syntax tree could nest too deeply, and each evaluation runs within depth, step, time and
//! memory budgets on a stack of its own ([`bigstack`]), failing one execution with
//! `States.QueryEvaluationError`, never the process.
//!
//! [`run_express`] is the synchronous driver: Map iterations and Parallel branches run on
//! std scoped threads (at most `RunOptions::max_threads`, honouring `MaxConcurrency`),
//! results in order; Wait states and retry delays call `Clock::sleep`; history events use
//! Step Functions' vocabulary and `GetExecutionHistory` JSON shape
//! ([`HistoryEvent::to_json`]).

pub mod bigstack;
pub mod cancel;
pub mod choice;
pub mod entropy;
pub mod env;
pub mod error;
pub mod express;
pub mod history;
pub mod integrations;
pub mod intrinsic;
pub mod jsonata;
pub mod jsonpath;
pub mod limits;
pub mod mock;
pub mod model;
pub mod parse;
pub mod reader;
pub mod resource;
pub mod results;
pub mod step;
pub mod template;
pub mod warnings;
pub mod yaml;

pub use cancel::Cancellation;
pub use error::{ExecutionFailure, StateError, ValidationError, ValidationErrors, Warning};
pub use express::{
    kind_name, run_express, Clock, FakeClock, Hooks, ItemReader, MapRunLimits, NoTasks,
    ResultWriter, RunControl, RunOptions, StateObserver, StateVisit, SystemClock, TaskFailure,
    TaskRequest, TaskRunner,
};
pub use history::{HistoryEvent, HistorySink};
pub use model::StateMachine;
pub use parse::{parse, parse_value, validate_value_with_warnings, validate_with_warnings};
pub use yaml::{
    looks_like_asl_yaml, parse_any, parse_yaml, validate_any_with_warnings, yaml_to_value,
};
