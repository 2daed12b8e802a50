//! The DAG model: what a parsed, validated DAG file turns into.
//!
//! [`Dag`] and [`Task`] carry resolved values (defaults applied, `default_args` merged, task-group
//! prefixes applied, operators mapped to weft plugins) so the executor and the scheduler never
//! look at YAML again. [`TriggerRule`] names Airflow 3's rules; [`Expand`] describes mapping.

use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use indexmap::IndexMap;
use serde_json::{Map, Value};

use crate::timetable::Schedule;

/// Airflow 3's trigger rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TriggerRule {
    /// All upstreams succeeded (default).
    AllSuccess,
    /// All upstreams failed or upstream_failed.
    AllFailed,
    /// All upstreams finished, whatever their state.
    AllDone,
    /// All upstreams finished, none skipped, at least one succeeded.
    AllDoneMinOneSuccess,
    /// All upstreams skipped.
    AllSkipped,
    /// At least one upstream succeeded.
    OneSuccess,
    /// At least one upstream failed or upstream_failed.
    OneFailed,
    /// At least one upstream succeeded or failed.
    OneDone,
    /// No upstream failed or upstream_failed.
    NoneFailed,
    /// No upstream failed, and at least one succeeded.
    NoneFailedMinOneSuccess,
    /// No upstream skipped.
    NoneSkipped,
    /// Always runs.
    Always,
}

impl TriggerRule {
    /// Every rule, with its Airflow name.
    pub const ALL: [(TriggerRule, &'static str); 12] = [
        (TriggerRule::AllSuccess, "all_success"),
        (TriggerRule::AllFailed, "all_failed"),
        (TriggerRule::AllDone, "all_done"),
        (
            TriggerRule::AllDoneMinOneSuccess,
            "all_done_min_one_success",
        ),
        (TriggerRule::AllSkipped, "all_skipped"),
        (TriggerRule::OneSuccess, "one_success"),
        (TriggerRule::OneFailed, "one_failed"),
        (TriggerRule::OneDone, "one_done"),
        (TriggerRule::NoneFailed, "none_failed"),
        (
            TriggerRule::NoneFailedMinOneSuccess,
            "none_failed_min_one_success",
        ),
        (TriggerRule::NoneSkipped, "none_skipped"),
        (TriggerRule::Always, "always"),
    ];

    /// Parse an Airflow rule name (also the deprecated aliases `dummy` and `none_failed_or_skipped`).
    pub fn parse(name: &str) -> Option<TriggerRule> {
        match name {
            "dummy" => return Some(TriggerRule::Always),
            "none_failed_or_skipped" => return Some(TriggerRule::NoneFailedMinOneSuccess),
            _ => {}
        }
        Self::ALL.iter().find(|(_, n)| *n == name).map(|(r, _)| *r)
    }

    /// The Airflow name.
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(r, _)| *r == self)
            .map(|(_, n)| *n)
            .unwrap_or("all_success")
    }
}

/// How Airflow computes a task's effective priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightRule {
    /// Own weight plus all downstream weights (Airflow's default).
    Downstream,
    /// Own weight plus all upstream weights.
    Upstream,
    /// Own weight only.
    Absolute,
}

/// Where a mapped task's list of inputs comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum ExpandSource {
    /// A literal list (or mapping, mapped over its entries as `[key, value]`).
    Literal(Value),
    /// An upstream task's XCom (`+task`, `task.output`, or `{{ ti.xcom_pull('task') }}`).
    XCom {
        /// Upstream task id.
        task_id: String,
        /// XCom key (`return_value` by default).
        key: String,
    },
    /// Any other template expression evaluated natively at expansion time.
    Template(String),
}

/// `expand:` — one source per argument; instances are the cross product (Airflow's semantics).
#[derive(Debug, Clone, PartialEq)]
pub struct Expand {
    /// Argument name -> source, in file order.
    pub args: IndexMap<String, ExpandSource>,
}

/// One task of a DAG, fully resolved.
#[derive(Debug, Clone)]
pub struct Task {
    /// Task id (with its task group prefix, `group.task`).
    pub task_id: String,
    /// Line of the task's key in its file.
    pub line: usize,
    /// The operator as written (`echo`, `airflow.operators.bash.BashOperator`, ...).
    pub operator_source: String,
    /// The weft plugin reference the operator resolved to.
    pub operator: String,
    /// Upstream task ids (direct), in declaration order, deduplicated.
    pub upstream: Vec<String>,
    /// Downstream task ids (direct), filled in by validation.
    pub downstream: Vec<String>,
    /// The trigger rule.
    pub trigger_rule: TriggerRule,
    /// Task group id, if any (full dotted id).
    pub task_group: Option<String>,
    /// Pool name (`default_pool` unless set).
    pub pool: String,
    /// Pool slots taken while running.
    pub pool_slots: u32,
    /// Own priority weight.
    pub priority_weight: i64,
    /// Priority weight rule.
    pub weight_rule: WeightRule,
    /// Retries after the first try.
    pub retries: u32,
    /// Delay before a retry.
    pub retry_delay: Duration,
    /// Double the delay on every retry.
    pub retry_exponential_backoff: bool,
    /// Cap on the retry delay.
    pub max_retry_delay: Option<Duration>,
    /// Per-try deadline.
    pub execution_timeout: Option<Duration>,
    /// Capability grant (role) name.
    pub grant: Option<String>,
    /// Task owner.
    pub owner: String,
    /// Queue name.
    pub queue: Option<String>,
    /// A branching task: its result names the downstream tasks to follow.
    pub branch: bool,
    /// Push each key of an object result as its own XCom (`multiple_outputs`).
    pub multiple_outputs: bool,
    /// Dynamic task mapping.
    pub expand: Option<Expand>,
    /// Task-level params (merged over the DAG's params).
    pub params: Map<String, Value>,
    /// The plugin's input arguments (unrendered templates).
    pub arguments: Map<String, Value>,
    /// Operator-specific extra fields kept for callers (callbacks, sla, ...).
    pub extra: Map<String, Value>,
}

/// A task group.
#[derive(Debug, Clone)]
pub struct TaskGroup {
    /// Full dotted group id.
    pub group_id: String,
    /// Line of the group's key.
    pub line: usize,
    /// Tooltip.
    pub tooltip: Option<String>,
    /// Parent group id.
    pub parent: Option<String>,
    /// Task ids directly or indirectly in the group.
    pub tasks: Vec<String>,
}

/// A parsed and validated DAG.
#[derive(Debug, Clone)]
pub struct Dag {
    /// The DAG id.
    pub dag_id: String,
    /// File it came from.
    pub file: std::path::PathBuf,
    /// Line of the DAG's key.
    pub line: usize,
    /// Description.
    pub description: Option<String>,
    /// The schedule.
    pub schedule: Schedule,
    /// The DAG's timezone (cron schedules are evaluated in it).
    pub timezone: Tz,
    /// First data interval start.
    pub start_date: Option<DateTime<Utc>>,
    /// No interval starts after this.
    pub end_date: Option<DateTime<Utc>>,
    /// Create runs for every missed interval.
    pub catchup: bool,
    /// Maximum concurrently running DAG runs.
    pub max_active_runs: u32,
    /// Maximum concurrently running task instances per run.
    pub max_active_tasks: u32,
    /// Render whole-expression templates as native JSON values.
    pub render_template_as_native_obj: bool,
    /// DAG params (defaults for `{{ params.x }}`).
    pub params: Map<String, Value>,
    /// The params as written (`default_args.params`, then `params`): an Airflow `Param`
    /// keeps its schema (`{default|value, type, description, title, enum, minimum, maximum}`),
    /// what a trigger form is made from.
    pub param_specs: Map<String, Value>,
    /// Tags.
    pub tags: Vec<String>,
    /// The merged `default_args` as written.
    pub default_args: Map<String, Value>,
    /// Tasks in file order.
    pub tasks: IndexMap<String, Task>,
    /// Task groups.
    pub task_groups: IndexMap<String, TaskGroup>,
    /// Task ids in a topological order (file order among independent tasks).
    pub topo_order: Vec<String>,
    /// Other DAG-level keys kept for callers (callbacks, doc_md, ...).
    pub extra: Map<String, Value>,
    /// What weft reads but does not do yet (a dataset schedule, a custom timetable), in words.
    pub warnings: Vec<String>,
}

impl Dag {
    /// Tasks with nothing downstream.
    pub fn leaves(&self) -> impl Iterator<Item = &Task> {
        self.tasks.values().filter(|t| t.downstream.is_empty())
    }

    /// Tasks with nothing upstream.
    pub fn roots(&self) -> impl Iterator<Item = &Task> {
        self.tasks.values().filter(|t| t.upstream.is_empty())
    }

    /// The next automated run after `last` (None: none is due by the timetable).
    pub fn next_dagrun_info(
        &self,
        last: Option<&crate::timetable::DataInterval>,
        now: DateTime<Utc>,
    ) -> Option<crate::timetable::DagRunInfo> {
        self.schedule
            .next_dagrun_info(self.timezone, last, &self.restriction(), now)
    }

    /// Runs due by `now` after `last`: every missed interval with `catchup: true`, else only the
    /// latest (at most `limit`).
    pub fn due_runs(
        &self,
        last: Option<crate::timetable::DataInterval>,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Vec<crate::timetable::DagRunInfo> {
        self.schedule
            .runs_until(self.timezone, last, &self.restriction(), now, limit)
    }

    /// The DAG's `start_date` / `end_date` / `catchup` as a timetable restriction.
    pub fn restriction(&self) -> crate::timetable::Restriction {
        crate::timetable::Restriction {
            earliest: self.start_date,
            latest: self.end_date,
            catchup: self.catchup,
        }
    }

    /// Effective priority of every task (Airflow's weight rules), indexed like `tasks`.
    pub fn effective_priorities(&self) -> Vec<i64> {
        crate::graph::effective_priorities(self)
    }
}

/// A file-arrival trigger (`trigger:` of a DAG): start a run when a file matching `glob`
/// appears in (or changes in) directory `path`, polled every `poll_interval`.
#[derive(Debug, Clone, PartialEq)]
pub struct FileTriggerSpec {
    /// The watched directory (relative paths are relative to the DAG file's folder).
    pub path: String,
    /// File-name pattern (`*` any run of characters, `?` one); `*` by default.
    pub glob: String,
    /// How often the directory is listed.
    pub poll_interval: Duration,
}

impl FileTriggerSpec {
    /// Parse `{path: DIR, glob: "*.csv", poll_interval: 5}` (`type: file` optional).
    pub fn parse(v: &Value) -> Result<FileTriggerSpec, String> {
        let Value::Object(m) = v else {
            return Err("must be a mapping like {path: incoming/, glob: \"*.csv\"}".into());
        };
        for k in m.keys() {
            if !matches!(k.as_str(), "type" | "path" | "glob" | "poll_interval") {
                return Err(format!(
                    "unknown trigger field `{k}` (expected type, path, glob, poll_interval)"
                ));
            }
        }
        if let Some(t) = m.get("type") {
            if t.as_str() != Some("file") {
                return Err(format!("trigger type {t} is not supported; use `file`"));
            }
        }
        let path = m
            .get("path")
            .and_then(Value::as_str)
            .filter(|p| !p.is_empty())
            .ok_or("trigger needs `path`, the directory to watch")?
            .to_string();
        let glob = match m.get("glob") {
            None => "*".to_string(),
            Some(Value::String(g)) if !g.is_empty() && !g.contains('/') => g.clone(),
            Some(other) => {
                return Err(format!(
                    "trigger glob must be a file-name pattern without `/`, got {other}"
                ))
            }
        };
        let poll_interval = match m.get("poll_interval") {
            None => Duration::from_secs(5),
            Some(v) => crate::timetable::parse_duration(v)
                .map_err(|e| format!("trigger poll_interval: {e}"))?,
        };
        Ok(FileTriggerSpec {
            path,
            glob,
            poll_interval,
        })
    }
}

impl Dag {
    /// The DAG's file-arrival trigger, if it declares one (validated when loaded).
    pub fn file_trigger(&self) -> Option<FileTriggerSpec> {
        self.extra
            .get("trigger")
            .and_then(|v| FileTriggerSpec::parse(v).ok())
    }
}

/// The plugins a callback field names: a plugin name, dag-factory's `{callback: NAME, ...}`
/// (its other keys are the callback's arguments), or a list of these.
pub fn callback_plugins(v: &Value) -> Result<Vec<String>, String> {
    let one = |x: &Value| -> Result<String, String> {
        let name = match x {
            Value::Object(m) => m.get("callback").and_then(Value::as_str),
            other => other.as_str(),
        };
        name.filter(|s| !s.is_empty())
            .map(str::to_string)
            .ok_or_else(|| {
                format!(
                    "a callback names a plugin (or is a mapping with `callback: NAME`), got {x}"
                )
            })
    };
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Array(a) => a.iter().map(one).collect(),
        other => one(other).map(|n| vec![n]),
    }
}
