//! The parsed, validated form of a state machine: states indexed by position (transitions
//! are resolved to indices at parse time so the interpreter never looks names up), compiled
//! paths, templates, choice rules, retriers and catchers.

use crate::jsonpath::JsonPath;
use crate::resource::Resource;
use crate::template::Template;
use serde_json::Value;
use std::collections::HashMap;

/// `QueryLanguage` of a machine or state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QueryLanguage {
    /// Paths, `.$` fields and intrinsic functions (the default).
    #[default]
    JsonPath,
    /// `{% ... %}` JSONata expressions, `Arguments`/`Output`.
    Jsonata,
}

/// A state machine or a Parallel branch / Map item processor.
#[derive(Debug, Clone)]
pub struct StateMachine {
    /// `Comment`.
    pub comment: Option<String>,
    /// Index of the `StartAt` state.
    pub start_at: usize,
    /// States in definition order.
    pub states: Vec<State>,
    /// Name -> index.
    pub index: HashMap<String, usize>,
    /// Machine-level `TimeoutSeconds` (top level only).
    pub timeout_seconds: Option<u64>,
    /// Default query language.
    pub query_language: QueryLanguage,
}

impl StateMachine {
    /// The state called `name`.
    pub fn state(&self, name: &str) -> Option<&State> {
        self.index.get(name).map(|&i| &self.states[i])
    }
}

/// `InputPath` / `OutputPath` / `ItemsPath`.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum PathSpec {
    /// Absent: `$`.
    #[default]
    Identity,
    /// `null`: `{}`.
    Null,
    /// A path.
    Path(JsonPath),
}

/// `ResultPath`.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum ResultPathSpec {
    /// Absent or `$`: the result replaces the input.
    #[default]
    Replace,
    /// `null`: the result is discarded, the input passes through.
    Discard,
    /// A reference path into the input.
    Path(JsonPath),
}

/// Where a state goes next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// `Next` (resolved to a state index).
    Next(usize),
    /// `End: true` (or a terminal state type).
    End,
}

/// One `Retry` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Retrier {
    /// `ErrorEquals`.
    pub error_equals: Vec<String>,
    /// `IntervalSeconds` (default 1).
    pub interval_seconds: f64,
    /// `MaxAttempts` (default 3).
    pub max_attempts: u32,
    /// `BackoffRate` (default 2.0).
    pub backoff_rate: f64,
    /// `MaxDelaySeconds`.
    pub max_delay_seconds: Option<f64>,
    /// `JitterStrategy: FULL`.
    pub jitter_full: bool,
}

/// One `Catch` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Catcher {
    /// `ErrorEquals`.
    pub error_equals: Vec<String>,
    /// `Next` (index).
    pub next: usize,
    /// `ResultPath` (default `$`).
    pub result_path: ResultPathSpec,
    /// `Assign`.
    pub assign: Option<Template>,
    /// JSONata `Output`.
    pub output: Option<Template>,
}

/// A number given literally, by path, or by JSONata expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Dynamic<T> {
    /// Literal.
    Value(T),
    /// `...Path` field.
    Path(JsonPath),
    /// `{% %}` expression.
    Expr(Template),
}

/// Comparison operators of Choice rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum CmpOp {
    StringEquals,
    StringLessThan,
    StringGreaterThan,
    StringLessThanEquals,
    StringGreaterThanEquals,
    StringMatches,
    NumericEquals,
    NumericLessThan,
    NumericGreaterThan,
    NumericLessThanEquals,
    NumericGreaterThanEquals,
    BooleanEquals,
    TimestampEquals,
    TimestampLessThan,
    TimestampGreaterThan,
    TimestampLessThanEquals,
    TimestampGreaterThanEquals,
    IsNull,
    IsPresent,
    IsNumeric,
    IsString,
    IsBoolean,
    IsTimestamp,
}

/// The right-hand side of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    /// A literal.
    Value(Value),
    /// A `...Path` operand.
    Path(JsonPath),
}

/// A Boolean expression of a Choice rule.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// `And`.
    And(Vec<Condition>),
    /// `Or`.
    Or(Vec<Condition>),
    /// `Not`.
    Not(Box<Condition>),
    /// `Variable` + operator.
    Compare {
        /// `Variable`.
        variable: JsonPath,
        /// Operator.
        op: CmpOp,
        /// Operand.
        operand: Operand,
    },
    /// JSONata `Condition`.
    Jsonata(Template),
}

/// One entry of `Choices`.
#[derive(Debug, Clone, PartialEq)]
pub struct ChoiceRule {
    /// The condition.
    pub condition: Condition,
    /// `Next` (index).
    pub next: usize,
    /// `Assign`.
    pub assign: Option<Template>,
    /// JSONata `Output`.
    pub output: Option<Template>,
}

/// `Wait` duration.
#[derive(Debug, Clone, PartialEq)]
pub enum WaitFor {
    /// `Seconds` / `SecondsPath` / JSONata `Seconds`.
    Seconds(Dynamic<u64>),
    /// `Timestamp` / `TimestampPath` / JSONata `Timestamp`.
    Timestamp(Dynamic<String>),
}

/// `Fail.Error` / `Fail.Cause`.
#[derive(Debug, Clone, PartialEq)]
pub enum FailField {
    /// Not given.
    None,
    /// Literal.
    Value(String),
    /// `ErrorPath`/`CausePath` (path or intrinsic).
    Path(Template),
    /// JSONata expression.
    Expr(Template),
}

/// `ItemReader` (distributed-mode subset): the caller reads the source.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemReaderSpec {
    /// `Resource` as written (e.g. `arn:aws:states:::s3:getObject`, `weft:file`).
    pub resource: String,
    /// `ReaderConfig.InputType`: `JSON`, `CSV`, `JSONL`, `MANIFEST`.
    pub input_type: String,
    /// `ReaderConfig.CSVHeaderLocation`: `FIRST_ROW` (default) or `GIVEN`.
    pub csv_headers: Option<Vec<String>>,
    /// `ReaderConfig.CSVDelimiter` as a character (`COMMA`, the default, is `,`; `PIPE`,
    /// `SEMICOLON`, `SPACE`, `TAB`).
    pub csv_delimiter: char,
    /// `ReaderConfig.MaxItems` / `MaxItemsPath` (JSONPath into the state input) / JSONata.
    pub max_items: Option<Dynamic<u64>>,
    /// `Parameters` / `Arguments` (bucket/key or path).
    pub parameters: Option<Template>,
}

/// `ResultWriter.WriterConfig.OutputType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriterOutputType {
    /// One JSON array per result file.
    Json,
    /// JSON Lines: one result per line.
    Jsonl,
}

/// `ResultWriter.WriterConfig.Transformation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriterTransformation {
    /// Each child's result with its execution metadata (AWS's default when exporting).
    None,
    /// Only the children's outputs.
    Compact,
    /// Only the outputs, arrays flattened one level.
    Flatten,
}

/// `ResultWriter`: where and how a Distributed Map's results are exported.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultWriterSpec {
    /// `Resource` (`arn:aws:states:::s3:putObject`); `None` with only `WriterConfig`
    /// (the results are transformed but stay in the state output).
    pub resource: Option<String>,
    /// `Parameters` / `Arguments`: `{"Bucket": .., "Prefix": ..}`.
    pub parameters: Option<Template>,
    /// `WriterConfig.OutputType` (`JSON` by default).
    pub output_type: WriterOutputType,
    /// `WriterConfig.Transformation` (`NONE` by default when exporting, else `COMPACT`).
    pub transformation: WriterTransformation,
}

/// `ItemBatcher`: groups items into `{"Items": [...], "BatchInput": ...}` batches.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemBatcherSpec {
    /// `MaxItemsPerBatch` / `MaxItemsPerBatchPath`.
    pub max_items: Option<Dynamic<u64>>,
    /// `MaxInputBytesPerBatch` / `MaxInputBytesPerBatchPath`.
    pub max_bytes: Option<Dynamic<u64>>,
    /// `BatchInput`.
    pub batch_input: Option<Template>,
}

/// Map-specific fields.
#[derive(Debug, Clone)]
pub struct MapSpec {
    /// `ItemProcessor` / `Iterator`.
    pub processor: Box<StateMachine>,
    /// `ItemsPath`.
    pub items_path: PathSpec,
    /// JSONata `Items`.
    pub items: Option<Template>,
    /// `ItemSelector` / `Parameters`.
    pub item_selector: Option<Template>,
    /// `MaxConcurrency` (0 = unlimited).
    pub max_concurrency: Dynamic<u64>,
    /// `ToleratedFailureCount`.
    pub tolerated_failure_count: Option<Dynamic<u64>>,
    /// `ToleratedFailurePercentage`.
    pub tolerated_failure_percentage: Option<Dynamic<f64>>,
    /// `ItemReader`.
    pub item_reader: Option<ItemReaderSpec>,
    /// `ItemBatcher`.
    pub item_batcher: Option<ItemBatcherSpec>,
    /// `ProcessorConfig.Mode` is DISTRIBUTED.
    pub distributed: bool,
    /// `ResultWriter`.
    pub result_writer: Option<ResultWriterSpec>,
    /// `Label` (names a Distributed Map's Map Run).
    pub label: Option<String>,
}

/// Task-specific fields.
#[derive(Debug, Clone)]
pub struct TaskSpec {
    /// `Resource`.
    pub resource: Resource,
    /// `TimeoutSeconds` / `TimeoutSecondsPath`.
    pub timeout_seconds: Option<Dynamic<u64>>,
    /// `HeartbeatSeconds` / `HeartbeatSecondsPath`.
    pub heartbeat_seconds: Option<Dynamic<u64>>,
    /// `Credentials`.
    pub credentials: Option<Template>,
}

/// What a state does.
#[derive(Debug, Clone)]
pub enum StateKind {
    /// `Pass` with its optional `Result`.
    Pass {
        /// `Result`.
        result: Option<Value>,
    },
    /// `Task`.
    Task(Box<TaskSpec>),
    /// `Choice`.
    Choice {
        /// `Choices`.
        choices: Vec<ChoiceRule>,
        /// `Default` (index).
        default: Option<usize>,
    },
    /// `Wait`.
    Wait(WaitFor),
    /// `Succeed`.
    Succeed,
    /// `Fail`.
    Fail {
        /// `Error` / `ErrorPath`.
        error: FailField,
        /// `Cause` / `CausePath`.
        cause: FailField,
    },
    /// `Parallel`.
    Parallel {
        /// `Branches`.
        branches: Vec<StateMachine>,
    },
    /// `Map`.
    Map(Box<MapSpec>),
}

impl StateKind {
    /// The `Type` name.
    pub fn type_name(&self) -> &'static str {
        match self {
            StateKind::Pass { .. } => "Pass",
            StateKind::Task(_) => "Task",
            StateKind::Choice { .. } => "Choice",
            StateKind::Wait(_) => "Wait",
            StateKind::Succeed => "Succeed",
            StateKind::Fail { .. } => "Fail",
            StateKind::Parallel { .. } => "Parallel",
            StateKind::Map(_) => "Map",
        }
    }
}

/// One state.
#[derive(Debug, Clone)]
pub struct State {
    /// Name.
    pub name: String,
    /// Effective query language.
    pub query_language: QueryLanguage,
    /// Type-specific part.
    pub kind: StateKind,
    /// `InputPath`.
    pub input_path: PathSpec,
    /// `OutputPath`.
    pub output_path: PathSpec,
    /// `Parameters`.
    pub parameters: Option<Template>,
    /// `ResultSelector`.
    pub result_selector: Option<Template>,
    /// `ResultPath`.
    pub result_path: ResultPathSpec,
    /// `Assign`.
    pub assign: Option<Template>,
    /// JSONata `Arguments`.
    pub arguments: Option<Template>,
    /// JSONata `Output`.
    pub output: Option<Template>,
    /// `Retry`.
    pub retry: Vec<Retrier>,
    /// `Catch`.
    pub catch: Vec<Catcher>,
    /// `Next` / `End`.
    pub transition: Transition,
}
