//! Parsing one DAG file (dag-factory's YAML shape) and validating its DAGs; the walk over a DAG
//! folder is in [`crate::folder`].
//!
//! Each top-level key of a `*.yaml`/`*.yml` file is a DAG id, except `default`, whose contents
//! are merged under every DAG of that file. The folder's `weft.yaml` maps Airflow operator class
//! paths to weft plugins. Every problem becomes a [`DagError`] with `file:line: path: reason`;
//! a DAG with errors is left out, the file's other DAGs and other files still load.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono_tz::Tz;
use indexmap::IndexMap;
use serde_json::{Map, Value};

use crate::error::DagError;
use crate::model::{Dag, Expand, ExpandSource, Task, TaskGroup, TriggerRule, WeightRule};
use crate::scheduler_settings::{parse_airflow_bool, SchedulerSettings};
use crate::timetable::{parse_datetime, parse_duration, Schedule};
use crate::yaml::{self, Key, Node, Val};

/// Decides whether a resolved operator reference names an installed plugin.
pub trait OperatorCheck {
    /// `true` when `plugin_ref` (`echo`, `weft:plugin:NAME@VER`, ...) can be run.
    fn is_known_operator(&self, plugin_ref: &str) -> bool;

    /// What runs Python DAG files (`*.py`); `None` (the default): they are skipped with a note.
    fn python_evaluator(&self) -> Option<&dyn crate::pyfile::PythonDagEvaluator> {
        None
    }
}

impl<F: Fn(&str) -> bool> OperatorCheck for F {
    fn is_known_operator(&self, plugin_ref: &str) -> bool {
        self(plugin_ref)
    }
}

/// Accepts every operator (for tests and for `validate` without a plugin store).
pub struct AnyOperator;

impl OperatorCheck for AnyOperator {
    fn is_known_operator(&self, _: &str) -> bool {
        true
    }
}

/// Settings of a DAG folder, read from its `weft.yaml`.
#[derive(Debug, Clone, Default)]
pub struct FolderConfig {
    /// Operator name (usually an Airflow class path) -> weft plugin reference.
    pub operators: HashMap<String, String>,
    /// The DAG folder root, where dag-factory's `defaults.yml` lookup stops (`None`: no folder
    /// defaults are read, as for a DAG file given as text).
    pub defaults_root: Option<PathBuf>,
    /// Airflow's `[scheduler]` settings that decide what a `schedule` means.
    pub scheduler: SchedulerSettings,
}

/// File name of a DAG folder's settings.
pub const FOLDER_CONFIG: &str = "weft.yaml";

const DAG_KEYS: &[&str] = &[
    "default_args",
    "description",
    "schedule",
    "schedule_interval",
    "timetable",
    "start_date",
    "end_date",
    "catchup",
    "max_active_runs",
    "max_active_tasks",
    "concurrency",
    "params",
    "tags",
    "tasks",
    "task_groups",
    "timezone",
    "dag_id",
    "doc_md",
    "doc_md_file_path",
    "dagrun_timeout",
    "dagrun_timeout_sec",
    "default_view",
    "orientation",
    "is_paused_upon_creation",
    "render_template_as_native_obj",
    "on_success_callback",
    "on_failure_callback",
    "sla_miss_callback",
    "access_control",
    "owner_links",
    "fail_fast",
    "dag_display_name",
    "max_consecutive_failed_dag_runs",
    "template_searchpath",
    "user_defined_macros",
    "user_defined_filters",
    "jinja_environment_kwargs",
    "dag_display_property",
    "owner",
    "trigger",
    "doc_md_python_callable_file",
    "doc_md_python_callable_name",
    "doc_md_python_arguments",
    "on_success_callback_name",
    "on_success_callback_file",
    "on_failure_callback_name",
    "on_failure_callback_file",
    "sla_miss_callback_name",
    "sla_miss_callback_file",
    "on_execute_callback",
    "on_execute_callback_name",
    "on_execute_callback_file",
];

const TASK_META_KEYS: &[&str] = &[
    "operator",
    "dependencies",
    "trigger_rule",
    "task_group_name",
    "pool",
    "pool_slots",
    "priority_weight",
    "weight_rule",
    "retries",
    "retry_delay",
    "retry_delay_sec",
    "retry_exponential_backoff",
    "max_retry_delay",
    "execution_timeout",
    "execution_timeout_secs",
    "expand",
    "partial",
    "branch",
    "grant",
    "owner",
    "queue",
    "multiple_outputs",
    "params",
    "task_id",
    "decorator",
];

const TASK_EXTRA_KEYS: &[&str] = &[
    "doc_md",
    "doc",
    "sla",
    "sla_secs",
    "depends_on_past",
    "wait_for_downstream",
    "email",
    "email_on_failure",
    "email_on_retry",
    "on_success_callback",
    "on_failure_callback",
    "on_retry_callback",
    "on_execute_callback",
    "on_skipped_callback",
    "do_xcom_push",
    "map_index_template",
    "max_active_tis_per_dag",
    "max_active_tis_per_dagrun",
    "executor_config",
    "inlets",
    "outlets",
    "start_date",
    "end_date",
    "run_as_user",
    "resources",
    "task_display_name",
    "poke_interval",
    "timeout",
    "mode",
    "soft_fail",
    "exponential_backoff",
    "max_wait",
];

const GROUP_KEYS: &[&str] = &[
    "tooltip",
    "dependencies",
    "parent_group_name",
    "prefix_group_id",
    "default_args",
    "group_id",
    "ui_color",
    "ui_fgcolor",
    "group_name",
    "add_suffix_on_collision",
    "group_display_name",
];

/// Read `dir/weft.yaml` (absent is fine), with the environment's overrides of Airflow's
/// settings applied (`$AIRFLOW__SCHEDULER__CREATE_CRON_DATA_INTERVALS`).
pub fn load_folder_config(dir: &Path) -> Result<FolderConfig, DagError> {
    let path = dir.join(FOLDER_CONFIG);
    let mut cfg = match std::fs::read_to_string(&path) {
        Ok(text) => parse_folder_config(&path, &text)?,
        Err(_) => FolderConfig::default(),
    };
    // the setting comes from the environment, not from a file: the error names the folder
    cfg.scheduler = cfg.scheduler.with_env().map_err(|reason| DagError {
        file: dir.to_path_buf(),
        line: 0,
        path: String::new(),
        dag_id: None,
        traceback: None,
        reason,
    })?;
    Ok(cfg)
}

/// Parse the text of a folder's `weft.yaml`.
pub fn parse_folder_config(path: &Path, text: &str) -> Result<FolderConfig, DagError> {
    let err = |line, p: &str, reason: String| DagError {
        file: path.to_path_buf(),
        line,
        path: p.to_string(),
        dag_id: None,
        traceback: None,
        reason,
    };
    let root = yaml::parse(text).map_err(|e| err(e.line, "", e.message))?;
    let mut cfg = FolderConfig::default();
    if root.is_null() {
        return Ok(cfg);
    }
    for (k, v) in root.entries() {
        match k.name.as_str() {
            "operators" => {
                if !matches!(v.value, Val::Map(_)) {
                    return Err(err(
                        v.line,
                        "operators",
                        "must be a mapping of operator -> plugin".into(),
                    ));
                }
                for (op, plugin) in v.entries() {
                    let Some(p) = plugin.as_str() else {
                        return Err(err(
                            plugin.line,
                            &format!("operators.{}", op.name),
                            "must be a plugin name".into(),
                        ));
                    };
                    cfg.operators.insert(op.name.clone(), p.to_string());
                }
            }
            "scheduler" => cfg.scheduler = scheduler_section(v, &err)?,
            other => tracing::debug!(key = other, "ignoring weft.yaml key"),
        }
    }
    Ok(cfg)
}

/// `weft.yaml`'s `scheduler:` mapping (Airflow's `[scheduler]` settings weft reads).
fn scheduler_section(
    v: &Node,
    err: &dyn Fn(usize, &str, String) -> DagError,
) -> Result<SchedulerSettings, DagError> {
    if !matches!(v.value, Val::Map(_)) {
        return Err(err(
            v.line,
            "scheduler",
            "must be a mapping of Airflow [scheduler] settings".into(),
        ));
    }
    let mut s = SchedulerSettings::default();
    for (k, x) in v.entries() {
        let path = format!("scheduler.{}", k.name);
        match k.name.as_str() {
            "create_cron_data_intervals" => {
                s.create_cron_data_intervals = match &x.value {
                    Val::Bool(b) => *b,
                    _ => match x.as_str() {
                        Some(t) => parse_airflow_bool(t).map_err(|e| err(x.line, &path, e))?,
                        None => return Err(err(x.line, &path, "expected true or false".into())),
                    },
                }
            }
            _ => {
                return Err(err(
                    k.line,
                    &path,
                    "unknown setting (weft reads create_cron_data_intervals)".into(),
                ))
            }
        }
    }
    Ok(s)
}

/// Parse one DAG file's text. Returns the DAGs without errors, and every error found (a file
/// that is not a DAG file is one error).
pub fn parse_dag_file(
    file: &Path,
    text: &str,
    config: &FolderConfig,
    check: &dyn OperatorCheck,
) -> (Vec<Dag>, Vec<DagError>) {
    match parse_file_of_folder(file, text, config, check) {
        FileOutcome::Parsed(dags, errors) => (dags, errors),
        FileOutcome::NotDagFile(why) => (Vec::new(), vec![why]),
    }
}

/// What one YAML file of a DAG folder is.
pub(crate) enum FileOutcome {
    /// A DAG file: its DAGs without errors, and every error found.
    Parsed(Vec<Dag>, Vec<DagError>),
    /// Not a DAG file (empty, not a mapping, or no top-level key holds a DAG), and why.
    NotDagFile(DagError),
}

/// Parse one YAML file met in a DAG folder (see [`FileOutcome`]).
pub(crate) fn parse_file_of_folder(
    file: &Path,
    text: &str,
    config: &FolderConfig,
    check: &dyn OperatorCheck,
) -> FileOutcome {
    let not_dag = |line: usize, reason: String| {
        FileOutcome::NotDagFile(DagError {
            file: file.to_path_buf(),
            line,
            path: String::new(),
            dag_id: None,
            traceback: None,
            reason,
        })
    };
    let mut errors = Vec::new();
    let root = match yaml::parse(text) {
        Ok(r) => r,
        Err(e) => {
            errors.push(DagError {
                file: file.to_path_buf(),
                line: e.line,
                path: String::new(),
                dag_id: None,
                traceback: None,
                reason: e.reason(),
            });
            return FileOutcome::Parsed(Vec::new(), errors);
        }
    };
    if root.is_null() {
        return not_dag(1, "empty file: not a DAG file".into());
    }
    let root = match crate::pytypes::normalize(root) {
        Ok(r) => r,
        Err(e) => {
            errors.push(DagError {
                file: file.to_path_buf(),
                line: e.line,
                path: String::new(),
                dag_id: None,
                traceback: None,
                reason: e.message,
            });
            return FileOutcome::Parsed(Vec::new(), errors);
        }
    };
    if let Some(reason) = not_a_dag_file(&root) {
        return not_dag(root.line, reason);
    }
    let folder = match &config.defaults_root {
        None => None,
        Some(r) => match crate::defaults::folder_defaults(r, file) {
            Ok(d) => d,
            Err(e) => {
                errors.push(e);
                return FileOutcome::Parsed(Vec::new(), errors);
            }
        },
    };
    let (default, dag_level) = file_defaults(root.get("default"), folder.as_ref());
    let mut dags = Vec::new();
    for (key, node) in root.entries() {
        // dag-factory's reserved top-level keys: not DAGs
        if key.name == "default" || key.name == "task_groups" {
            continue;
        }
        let mut cx = Cx {
            file,
            errors: Vec::new(),
            warnings: Vec::new(),
        };
        let node = match &dag_level {
            Some(g) if matches!(node.value, Val::Map(_)) => over_dag_level(g, node),
            _ => node.clone(),
        };
        let merged = match &default {
            Some(d) => merge(d, &node),
            None => node,
        };
        let dag = parse_dag(&mut cx, key, &merged, config, check);
        if cx.errors.is_empty() {
            if let Some(dag) = dag {
                dags.push(dag);
            }
        }
        errors.extend(cx.errors.into_iter().map(|mut e| {
            e.dag_id = Some(key.name.clone());
            e
        }));
    }
    FileOutcome::Parsed(dags, errors)
}

/// Why a YAML document is not a dag-factory DAG file, if it is not one: dag-factory reads every
/// top-level key (but `default` and `task_groups`) as a DAG, a mapping of DAG fields. A file none
/// of whose keys holds such a mapping (a Kubernetes manifest, a datasets list, a schedule snippet)
/// is not a DAG file.
fn not_a_dag_file(root: &Node) -> Option<String> {
    if !matches!(root.value, Val::Map(_)) {
        return Some(format!(
            "not a DAG file: a DAG file is a mapping of dag ids, this is {}",
            root.type_name()
        ));
    }
    let looks_like_dag = |n: &Node| {
        n.entries()
            .iter()
            .any(|(k, _)| DAG_KEYS.contains(&k.name.as_str()))
    };
    let dags = root
        .entries()
        .iter()
        .filter(|(k, _)| k.name != "default" && k.name != "task_groups");
    if dags.clone().any(|(_, v)| looks_like_dag(v)) {
        return None;
    }
    let keys: Vec<&str> = dags.map(|(k, _)| k.name.as_str()).take(5).collect();
    Some(if keys.is_empty() {
        "not a DAG file: it holds no DAG, only dag-factory's reserved keys".to_string()
    } else {
        format!(
            "not a DAG file: no top-level key ({}) holds a DAG, a mapping with fields such as `tasks`, `schedule` or `default_args`",
            keys.join(", ")
        )
    })
}

/// The file's `default` block with the folder defaults' `default_args` under its own (file wins
/// key by key), and the folder defaults' other keys, applied to each DAG as DAG arguments.
fn file_defaults(
    file_default: Option<&Node>,
    folder: Option<&Node>,
) -> (Option<Node>, Option<Node>) {
    let Some(folder) = folder else {
        return (file_default.cloned(), None);
    };
    let empty = Node {
        value: Val::Map(Vec::new()),
        line: 0,
    };
    let file_default = file_default.filter(|d| matches!(d.value, Val::Map(_)));
    let mut default = file_default.cloned().unwrap_or_else(|| empty.clone());
    let global_args = folder.get("default_args").unwrap_or(&empty);
    let file_args = default.get("default_args").unwrap_or(&empty);
    let args = crate::defaults::shallow_merge(global_args, file_args);
    if let Val::Map(entries) = &mut default.value {
        match entries.iter_mut().find(|(k, _)| k.name == "default_args") {
            Some(slot) => slot.1 = args,
            None => entries.push((
                Key {
                    name: "default_args".into(),
                    line: args.line,
                },
                args,
            )),
        }
    }
    let level: Vec<(Key, Node)> = folder
        .entries()
        .iter()
        .filter(|(k, _)| k.name != "default_args")
        .cloned()
        .collect();
    let level = (!level.is_empty()).then_some(Node {
        value: Val::Map(level),
        line: folder.line,
    });
    (Some(default), level)
}

/// `{**folder_dag_args, **dag}`: the DAG's own keys replace the folder's whole.
fn over_dag_level(level: &Node, dag: &Node) -> Node {
    let mut out: Vec<(Key, Node)> = level
        .entries()
        .iter()
        .filter(|(k, _)| dag.get(&k.name).is_none())
        .map(|(k, v)| {
            // reported at the DAG's line: the folder value has no line in this file
            let mut k = k.clone();
            k.line = dag.line;
            (k, v.clone())
        })
        .collect();
    out.extend(dag.entries().iter().cloned());
    Node {
        value: Val::Map(out),
        line: dag.line,
    }
}

/// Deep-merge `over` onto `base` (mappings merge, anything else is replaced).
fn merge(base: &Node, over: &Node) -> Node {
    match (&base.value, &over.value) {
        (Val::Map(b), Val::Map(o)) => {
            let mut out: Vec<(Key, Node)> = Vec::new();
            for (k, v) in b {
                match o.iter().find(|(ok, _)| ok.name == k.name) {
                    Some((ok, ov)) => out.push((ok.clone(), merge(v, ov))),
                    None => out.push((k.clone(), v.clone())),
                }
            }
            for (k, v) in o {
                if !b.iter().any(|(bk, _)| bk.name == k.name) {
                    out.push((k.clone(), v.clone()));
                }
            }
            Node {
                value: Val::Map(out),
                line: over.line,
            }
        }
        _ => over.clone(),
    }
}

struct Cx<'a> {
    file: &'a Path,
    errors: Vec<DagError>,
    /// Warnings of the DAG being parsed (fields accepted and not acted on).
    warnings: Vec<String>,
}

/// DAG fields weft accepts (so files written for Airflow load) but does not act on: each is a
/// `weft dag validate` warning at its line.
const IGNORED_DAG_KEYS: &[(&str, &str)] = &[
    ("default_view", "a UI preference of Airflow's"),
    ("orientation", "a UI preference of Airflow's"),
    (
        "access_control",
        "weft authorises with its own policies (`dags:*` on `weft:dag:ID`)",
    ),
    ("owner_links", "not shown anywhere"),
    ("fail_fast", "a failed task does not stop the others"),
    (
        "max_consecutive_failed_dag_runs",
        "the DAG is not paused after failed runs",
    ),
    ("template_searchpath", "templates are not read from files"),
    ("user_defined_macros", "no macro can be added"),
    ("user_defined_filters", "no filter can be added"),
    (
        "jinja_environment_kwargs",
        "the template engine takes no options",
    ),
    ("dag_display_property", "not shown anywhere"),
];

/// Task fields weft accepts but does not act on.
const IGNORED_TASK_KEYS: &[(&str, &str)] = &[
    ("do_xcom_push", "a task's return value is always its XCom"),
    ("map_index_template", "mapped instances are shown by index"),
    (
        "max_active_tis_per_dag",
        "only pools and max_active_tasks limit concurrency",
    ),
    (
        "max_active_tis_per_dagrun",
        "only pools and max_active_tasks limit concurrency",
    ),
    (
        "executor_config",
        "tasks run in weft's sandbox, whatever the executor",
    ),
    ("run_as_user", "tasks run in the sandbox, as no OS user"),
    ("resources", "the sandbox's own limits apply"),
    ("inlets", "lineage is not recorded"),
];

impl Cx<'_> {
    fn err(&mut self, line: usize, path: impl Into<String>, reason: impl Into<String>) {
        self.errors.push(DagError {
            file: self.file.to_path_buf(),
            line,
            path: path.into(),
            dag_id: None,
            traceback: None,
            reason: reason.into(),
        });
    }

    fn string(&mut self, n: &Node, path: &str) -> Option<String> {
        match &n.value {
            Val::Str(s) => Some(s.clone()),
            Val::Int(_) | Val::Float(_) | Val::Bool(_) => n.scalar_text(),
            _ => {
                self.err(
                    n.line,
                    path,
                    format!("expected a string, got {}", n.type_name()),
                );
                None
            }
        }
    }

    fn uint(&mut self, n: &Node, path: &str) -> Option<u32> {
        match n.value {
            Val::Int(i) if (0..=i64::from(u32::MAX)).contains(&i) => Some(i as u32),
            _ => {
                self.err(
                    n.line,
                    path,
                    format!("expected a non-negative integer, got {}", describe(n)),
                );
                None
            }
        }
    }

    fn int(&mut self, n: &Node, path: &str) -> Option<i64> {
        match n.value {
            Val::Int(i) => Some(i),
            _ => {
                self.err(
                    n.line,
                    path,
                    format!("expected an integer, got {}", describe(n)),
                );
                None
            }
        }
    }

    fn boolean(&mut self, n: &Node, path: &str) -> Option<bool> {
        match n.value {
            Val::Bool(b) => Some(b),
            _ => {
                self.err(
                    n.line,
                    path,
                    format!("expected true or false, got {}", describe(n)),
                );
                None
            }
        }
    }

    fn duration(&mut self, n: &Node, path: &str, secs_key: bool) -> Option<Duration> {
        let v = n.to_json();
        let r = if secs_key {
            match &v {
                Value::Number(_) => parse_duration(&v),
                _ => Err("expected a number of seconds".into()),
            }
        } else {
            parse_duration(&v)
        };
        match r {
            Ok(d) => Some(d),
            Err(e) => {
                self.err(n.line, path, e);
                None
            }
        }
    }

    fn date(&mut self, n: &Node, path: &str, tz: Tz) -> Option<chrono::DateTime<chrono::Utc>> {
        let Some(s) = n.scalar_text() else {
            self.err(
                n.line,
                path,
                format!("expected a date, got {}", n.type_name()),
            );
            return None;
        };
        let parsed = parse_datetime(&s, tz).or_else(|e| {
            crate::reldate::parse_relative(&s, tz, chrono::Utc::now()).unwrap_or(Err(e))
        });
        match parsed {
            Ok(d) => Some(d),
            Err(e) => {
                self.err(n.line, path, e);
                None
            }
        }
    }
}

fn describe(n: &Node) -> String {
    match n.scalar_text() {
        Some(t) if !matches!(n.value, Val::Null) => format!("`{t}`"),
        _ => n.type_name().to_string(),
    }
}

/// Task-level settings that `default_args` may supply.
#[derive(Clone)]
struct TaskDefaults {
    owner: String,
    retries: u32,
    retry_delay: Duration,
    retry_exponential_backoff: bool,
    max_retry_delay: Option<Duration>,
    execution_timeout: Option<Duration>,
    grant: Option<String>,
    pool: String,
    pool_slots: u32,
    priority_weight: i64,
    weight_rule: WeightRule,
    queue: Option<String>,
    trigger_rule: TriggerRule,
    extra: Map<String, Value>,
}

impl Default for TaskDefaults {
    fn default() -> Self {
        TaskDefaults {
            owner: "airflow".into(),
            retries: 0,
            retry_delay: Duration::from_secs(300),
            retry_exponential_backoff: false,
            max_retry_delay: None,
            execution_timeout: None,
            grant: None,
            pool: "default_pool".into(),
            pool_slots: 1,
            priority_weight: 1,
            weight_rule: WeightRule::Downstream,
            queue: None,
            trigger_rule: TriggerRule::AllSuccess,
            extra: Map::new(),
        }
    }
}

/// Apply one task-setting key to `d`; returns false when the key is not a task setting.
fn apply_setting(cx: &mut Cx, d: &mut TaskDefaults, key: &str, n: &Node, path: &str) -> bool {
    match key {
        "owner" => {
            if let Some(s) = cx.string(n, path) {
                d.owner = s;
            }
        }
        "retries" => {
            if let Some(r) = cx.uint(n, path) {
                d.retries = r;
            }
        }
        "retry_delay" | "retry_delay_sec" => {
            if let Some(x) = cx.duration(n, path, key.ends_with("_sec")) {
                d.retry_delay = x;
            }
        }
        "retry_exponential_backoff" => {
            if let Some(b) = cx.boolean(n, path) {
                d.retry_exponential_backoff = b;
            }
        }
        "max_retry_delay" => {
            if n.is_null() {
                d.max_retry_delay = None;
            } else if let Some(x) = cx.duration(n, path, false) {
                d.max_retry_delay = Some(x);
            }
        }
        "execution_timeout" | "execution_timeout_secs" => {
            if n.is_null() {
                d.execution_timeout = None;
            } else if let Some(x) = cx.duration(n, path, key.ends_with("_secs")) {
                d.execution_timeout = Some(x);
            }
        }
        "grant" => {
            d.grant = if n.is_null() {
                None
            } else {
                cx.string(n, path)
            }
        }
        "pool" => {
            if let Some(s) = cx.string(n, path) {
                d.pool = s;
            }
        }
        "pool_slots" => {
            if let Some(s) = cx.uint(n, path) {
                if s == 0 {
                    cx.err(n.line, path, "pool_slots must be at least 1");
                }
                d.pool_slots = s;
            }
        }
        "priority_weight" => {
            if let Some(p) = cx.int(n, path) {
                d.priority_weight = p;
            }
        }
        "weight_rule" => match n.as_str() {
            Some("downstream") => d.weight_rule = WeightRule::Downstream,
            Some("upstream") => d.weight_rule = WeightRule::Upstream,
            Some("absolute") => d.weight_rule = WeightRule::Absolute,
            _ => cx.err(
                n.line,
                path,
                format!(
                    "unknown weight_rule {}; expected downstream, upstream or absolute",
                    describe(n)
                ),
            ),
        },
        "queue" => d.queue = cx.string(n, path),
        "trigger_rule" => match n.as_str().and_then(TriggerRule::parse) {
            Some(r) => d.trigger_rule = r,
            None => {
                let names: Vec<&str> = TriggerRule::ALL.iter().map(|(_, n)| *n).collect();
                cx.err(
                    n.line,
                    path,
                    format!(
                        "unknown trigger rule {}; expected one of {}",
                        describe(n),
                        names.join(", ")
                    ),
                );
            }
        },
        _ if TASK_EXTRA_KEYS.contains(&key) => {
            if let Some((_, why)) = IGNORED_TASK_KEYS.iter().find(|(k, _)| *k == key) {
                cx.warnings.push(format!(
                    "line {}: `{path}` is accepted and not acted on by weft ({why})",
                    n.line
                ));
            }
            let v = n.to_json();
            let problem = match key {
                "mode" => (!matches!(v.as_str(), Some("poke" | "reschedule")))
                    .then(|| format!("sensor mode must be `poke` or `reschedule`, got {v}")),
                "poke_interval" | "timeout" | "max_wait" | "sla" => {
                    crate::timetable::parse_duration(&v)
                        .err()
                        .map(|e| format!("expected a duration: {e}"))
                }
                "soft_fail" | "exponential_backoff" => {
                    (!v.is_boolean()).then(|| format!("expected true or false, got {v}"))
                }
                "on_success_callback" | "on_failure_callback" | "on_retry_callback" => {
                    crate::model::callback_plugins(&v).err()
                }
                "outlets" => crate::assets::outlet_uris(&v).err().map(|e| e.to_string()),
                _ => None,
            };
            if let Some(reason) = problem {
                cx.err(n.line, path, reason);
            }
            d.extra.insert(key.to_string(), v);
        }
        _ => return false,
    }
    true
}

fn parse_dag(
    cx: &mut Cx,
    key: &Key,
    node: &Node,
    config: &FolderConfig,
    check: &dyn OperatorCheck,
) -> Option<Dag> {
    let dag_id = key.name.clone();
    if !valid_id(&dag_id) {
        cx.err(
            key.line,
            &dag_id,
            "a dag id may only contain letters, digits, `_`, `-` and `.`",
        );
    }
    if !matches!(node.value, Val::Map(_)) {
        cx.err(
            key.line,
            &dag_id,
            format!("a DAG must be a mapping, got {}", node.type_name()),
        );
        return None;
    }
    // dag-factory passes the DAG fields it knows to Airflow and ignores the rest (files keep
    // YAML anchors under such keys); weft does the same, with a warning for typos.
    let mut warnings = Vec::new();
    cx.warnings.clear();
    for (k, _) in node.entries() {
        if let Some((_, why)) = IGNORED_DAG_KEYS.iter().find(|(i, _)| *i == k.name) {
            warnings.push(format!(
                "line {}: `{}` is accepted and not acted on by weft ({why})",
                k.line, k.name
            ));
        }
        if !DAG_KEYS.contains(&k.name.as_str()) {
            warnings.push(format!(
                "line {}: `{}` is not a DAG field and is ignored, as dag-factory ignores it (task arguments belong under `tasks:`)",
                k.line, k.name
            ));
        }
    }
    if node.get("schedule_interval").is_some() {
        warnings.push(
            "`schedule_interval` is Airflow 2's name (dag-factory 1.0 and Airflow 3 reject it): use `schedule`".into(),
        );
    }
    let empty = Node {
        value: Val::Map(Vec::new()),
        line: key.line,
    };
    let default_args = node.get("default_args").unwrap_or(&empty);
    if !matches!(default_args.value, Val::Map(_) | Val::Null) {
        cx.err(
            default_args.line,
            format!("{dag_id}.default_args"),
            "must be a mapping",
        );
    }
    // Timezone first: dates are read in it.
    let mut tz = Tz::UTC;
    if let Some(t) = node
        .get("timezone")
        .or_else(|| default_args.get("timezone"))
    {
        match t.as_str().map(str::parse::<Tz>) {
            Some(Ok(z)) => tz = z,
            _ => cx.err(
                t.line,
                format!("{dag_id}.timezone"),
                format!("unknown timezone {}", describe(t)),
            ),
        }
    }
    let mut defaults = TaskDefaults::default();
    let mut start_date = None;
    let mut end_date = None;
    let mut default_params = Map::new();
    for (k, v) in default_args.entries() {
        let path = format!("{dag_id}.default_args.{}", k.name);
        match k.name.as_str() {
            "start_date" => start_date = cx.date(v, &path, tz),
            "end_date" => {
                end_date = if v.is_null() {
                    None
                } else {
                    cx.date(v, &path, tz)
                }
            }
            "timezone" => {}
            "params" => {
                if let Value::Object(m) = v.to_json() {
                    default_params = m;
                }
            }
            name => {
                if !apply_setting(cx, &mut defaults, name, v, &path) {
                    tracing::debug!(dag_id, key = name, "default_args key not used by weft");
                }
            }
        }
    }
    if let Some(v) = node.get("owner") {
        if let Some(s) = cx.string(v, &format!("{dag_id}.owner")) {
            defaults.owner = s;
        }
    }
    if let Some(v) = node.get("start_date") {
        start_date = cx.date(v, &format!("{dag_id}.start_date"), tz);
    }
    if let Some(v) = node.get("end_date") {
        end_date = if v.is_null() {
            None
        } else {
            cx.date(v, &format!("{dag_id}.end_date"), tz)
        };
    }
    let sched_node = match (node.get("schedule"), node.get("schedule_interval")) {
        (Some(a), Some(_)) => {
            cx.err(
                a.line,
                format!("{dag_id}.schedule"),
                "set either `schedule` or `schedule_interval`, not both",
            );
            Some(a)
        }
        // Airflow 2's `timetable=` argument
        (None, None) => node.get("timetable").filter(|t| !t.is_null()),
        (a, b) => a.or(b),
    };
    let schedule = match sched_node {
        None => Schedule::Never,
        Some(n) => match Schedule::parse_with(&n.to_json(), &config.scheduler) {
            Ok(Schedule::Assets {
                condition,
                timetable,
            }) => match crate::assets::Condition::parse(&condition) {
                Ok(_) => {
                    if condition.get("file").is_some() {
                        warnings.push(
                            "the dataset names of a schedule's `file` are matched as written: weft does not read that file for their URIs".into(),
                        );
                    }
                    Schedule::Assets {
                        condition,
                        timetable,
                    }
                }
                Err(e) => {
                    cx.err(n.line, format!("{dag_id}.schedule"), e.to_string());
                    Schedule::Never
                }
            },
            Ok(s) => s,
            Err(e) => {
                cx.err(n.line, format!("{dag_id}.schedule"), e);
                Schedule::Never
            }
        },
    };
    if let Some(note) = crate::schedule_forms::not_run_note(&schedule) {
        warnings.push(note);
    }
    if matches!(schedule, Schedule::Once) && start_date.is_none() {
        tracing::debug!(dag_id, "@once without start_date: only manual runs");
    }
    let catchup = node
        .get("catchup")
        .and_then(|n| cx.boolean(n, &format!("{dag_id}.catchup")))
        .unwrap_or(false);
    let max_active_runs = node
        .get("max_active_runs")
        .and_then(|n| cx.uint(n, &format!("{dag_id}.max_active_runs")))
        .unwrap_or(16);
    let max_active_tasks = node
        .get("max_active_tasks")
        .or_else(|| node.get("concurrency"))
        .and_then(|n| cx.uint(n, &format!("{dag_id}.max_active_tasks")))
        .unwrap_or(16);
    for (name, v) in [
        ("max_active_runs", max_active_runs),
        ("max_active_tasks", max_active_tasks),
    ] {
        if v == 0 {
            cx.err(
                node.get(name).map_or(key.line, |n| n.line),
                format!("{dag_id}.{name}"),
                "must be at least 1",
            );
        }
    }
    let render_native = node
        .get("render_template_as_native_obj")
        .and_then(|n| cx.boolean(n, &format!("{dag_id}.render_template_as_native_obj")))
        .unwrap_or(false);
    let description = node.get("description").and_then(|n| {
        if n.is_null() {
            None
        } else {
            cx.string(n, &format!("{dag_id}.description"))
        }
    });
    let mut param_specs = default_params.clone();
    let mut params = default_params;
    if let Some(p) = node.get("params") {
        match p.to_json() {
            Value::Object(m) => {
                param_specs.extend(m.clone());
                params.extend(m.into_iter().map(|(k, v)| (k, param_value(v))));
            }
            Value::Null => {}
            _ => cx.err(p.line, format!("{dag_id}.params"), "must be a mapping"),
        }
    }
    let mut tags = Vec::new();
    if let Some(t) = node.get("tags") {
        match &t.value {
            Val::Seq(items) => {
                for i in items {
                    if let Some(s) = cx.string(i, &format!("{dag_id}.tags")) {
                        tags.push(s);
                    }
                }
            }
            Val::Null => {}
            _ => cx.err(
                t.line,
                format!("{dag_id}.tags"),
                "must be a list of strings",
            ),
        }
    }
    let mut extra = Map::new();
    for (k, v) in node.entries() {
        if matches!(
            k.name.as_str(),
            "doc_md"
                | "dagrun_timeout"
                | "dagrun_timeout_sec"
                | "on_success_callback"
                | "on_failure_callback"
                | "sla_miss_callback"
                | "fail_fast"
                | "dag_display_name"
                | "max_consecutive_failed_dag_runs"
                | "is_paused_upon_creation"
                | "timetable"
                | "user_defined_macros"
                | "trigger"
        ) {
            extra.insert(k.name.clone(), v.to_json());
        }
        if k.name == "trigger" {
            if let Err(e) = crate::model::FileTriggerSpec::parse(&v.to_json()) {
                cx.err(v.line, format!("{dag_id}.trigger"), e);
            }
        }
        if matches!(
            k.name.as_str(),
            "on_success_callback" | "on_failure_callback" | "sla_miss_callback"
        ) {
            if let Err(e) = crate::model::callback_plugins(&v.to_json()) {
                cx.err(v.line, format!("{dag_id}.{}", k.name), e);
            }
        }
    }

    // Task groups.
    let groups = parse_groups(cx, &dag_id, node.get("task_groups"));

    // Tasks.
    let mut raw_tasks: Vec<(Key, &Node)> = Vec::new();
    match node.get("tasks") {
        None => cx.err(key.line, &dag_id, "a DAG needs `tasks:`"),
        Some(t) => match &t.value {
            Val::Map(entries) => raw_tasks.extend(entries.iter().map(|(k, v)| (k.clone(), v))),
            Val::Seq(items) => {
                for item in items {
                    match item.get("task_id").and_then(Node::scalar_text) {
                        Some(id) => raw_tasks.push((
                            Key {
                                name: id,
                                line: item.line,
                            },
                            item,
                        )),
                        None => cx.err(
                            item.line,
                            format!("{dag_id}.tasks"),
                            "a task in a list needs `task_id`",
                        ),
                    }
                }
            }
            _ => cx.err(
                t.line,
                format!("{dag_id}.tasks"),
                "must be a mapping of task id -> task",
            ),
        },
    }
    if raw_tasks.is_empty()
        && node
            .get("tasks")
            .is_some_and(|t| matches!(t.value, Val::Map(_) | Val::Seq(_) | Val::Null))
    {
        cx.err(
            node.get("tasks").map_or(key.line, |n| n.line),
            format!("{dag_id}.tasks"),
            "a DAG needs at least one task",
        );
    }

    // Local name -> full id.
    let mut local: HashMap<String, String> = HashMap::new();
    let mut tasks: IndexMap<String, Task> = IndexMap::new();
    let mut dep_nodes: Vec<(String, Vec<(String, usize)>)> = Vec::new();
    for (tkey, tnode) in &raw_tasks {
        let path = format!("{dag_id}.tasks.{}", tkey.name);
        if !valid_id(&tkey.name) || tkey.name.contains('.') {
            cx.err(
                tkey.line,
                &path,
                "a task id may only contain letters, digits, `_` and `-`",
            );
        }
        if !matches!(tnode.value, Val::Map(_)) {
            cx.err(
                tkey.line,
                &path,
                format!("a task must be a mapping, got {}", tnode.type_name()),
            );
            continue;
        }
        let group = match tnode.get("task_group_name") {
            None => None,
            Some(g) if g.is_null() => None,
            Some(g) => {
                let name = g.scalar_text().unwrap_or_default();
                match groups.get(&name) {
                    Some(full) => Some(full.group_id.clone()),
                    None => {
                        cx.err(
                            g.line,
                            format!("{path}.task_group_name"),
                            format!("unknown task group `{name}`"),
                        );
                        None
                    }
                }
            }
        };
        let full_id = match &group {
            Some(g) => format!("{g}.{}", tkey.name),
            None => tkey.name.clone(),
        };
        if tasks.contains_key(&full_id) {
            cx.err(tkey.line, &path, format!("duplicate task id `{full_id}`"));
            continue;
        }
        local.insert(tkey.name.clone(), full_id.clone());
        if let Some(task) = parse_task(
            cx, &path, &full_id, tkey.line, tnode, &defaults, group, config, check,
        ) {
            let deps = match tnode.get("dependencies") {
                None => Vec::new(),
                Some(d) => match &d.value {
                    Val::Null => Vec::new(),
                    Val::Seq(items) => items
                        .iter()
                        .filter_map(|i| i.scalar_text().map(|s| (s, i.line)))
                        .collect(),
                    Val::Str(s) => vec![(s.clone(), d.line)],
                    _ => {
                        cx.err(
                            d.line,
                            format!("{path}.dependencies"),
                            "must be a list of task ids",
                        );
                        Vec::new()
                    }
                },
            };
            dep_nodes.push((full_id.clone(), deps));
            tasks.insert(full_id, task);
        }
    }
    // Group membership.
    let mut task_groups: IndexMap<String, TaskGroup> = IndexMap::new();
    for g in groups.values() {
        let prefix = format!("{}.", g.group_id);
        let mut g = g.group.clone();
        g.tasks = tasks
            .keys()
            .filter(|t| t.starts_with(&prefix))
            .cloned()
            .collect();
        task_groups.insert(g.group_id.clone(), g);
    }
    // Task-level edges.
    let mut up_seen: HashSet<(String, String)> = HashSet::new();
    let mut ups: IndexMap<String, Vec<String>> =
        tasks.keys().map(|k| (k.clone(), Vec::new())).collect();
    let mut group_edges: Vec<(String, usize, String)> = Vec::new(); // (dependency name, line, downstream task)
    for (tid, deps) in &dep_nodes {
        for (dep, line) in deps {
            let path = format!(
                "{dag_id}.tasks.{}.dependencies",
                tid.rsplit('.').next().unwrap_or(tid)
            );
            if let Some(full) = tasks
                .get_key_value(dep)
                .map(|(k, _)| k)
                .or_else(|| local.get(dep))
            {
                if full == tid {
                    cx.err(*line, path, format!("task `{dep}` depends on itself"));
                } else {
                    push_edge(&mut ups, &mut up_seen, tid, full.clone());
                }
            } else if groups.contains_key(dep) || task_groups.contains_key(dep) {
                group_edges.push((dep.clone(), *line, tid.clone()));
            } else {
                cx.err(*line, path, format!("unknown upstream task `{dep}`"));
            }
        }
    }
    // Mapped tasks depend on the tasks whose XCom they expand over (as Airflow infers).
    for (tid, task) in &tasks {
        if let Some(exp) = &task.expand {
            for src in exp.args.values() {
                let referenced: Vec<String> = match src {
                    ExpandSource::XCom { task_id, .. } => vec![task_id.clone()],
                    ExpandSource::Template(t) => xcom_pull_targets(t),
                    ExpandSource::Literal(_) => Vec::new(),
                };
                for task_id in &referenced {
                    match tasks
                        .get_key_value(task_id)
                        .map(|(k, _)| k)
                        .or_else(|| local.get(task_id))
                    {
                        Some(full) if full != tid => {
                            push_edge(&mut ups, &mut up_seen, tid, full.clone())
                        }
                        _ => cx.err(
                            task.line,
                            format!("{dag_id}.tasks.{tid}.expand"),
                            format!("expands over the output of unknown task `{task_id}`"),
                        ),
                    }
                }
            }
        }
    }
    // TaskFlow arguments `+task` / `+task['key']` pass an upstream's output (dag-factory makes
    // them XComArgs): each is an edge, as Airflow infers it.
    for (tid, task) in &tasks {
        if !crate::builtin::is_task_decorator(&task.operator_source) {
            continue;
        }
        for (arg, value) in &task.arguments {
            let Some((task_id, _key)) = value.as_str().and_then(taskflow_reference) else {
                continue;
            };
            match tasks
                .get_key_value(&task_id)
                .map(|(k, _)| k)
                .or_else(|| local.get(&task_id))
            {
                Some(full) if full != tid => push_edge(&mut ups, &mut up_seen, tid, full.clone()),
                _ => cx.err(
                    task.line,
                    format!("{dag_id}.tasks.{tid}.{arg}"),
                    format!("passes the output of unknown task `{task_id}`"),
                ),
            }
        }
    }
    // Group edges: group dependencies and task -> group dependencies.
    let leaves_roots = |ups: &IndexMap<String, Vec<String>>, g: &TaskGroup| {
        let members: HashSet<&String> = g.tasks.iter().collect();
        let roots: Vec<String> = g
            .tasks
            .iter()
            .filter(|t| !ups[*t].iter().any(|u| members.contains(u)))
            .cloned()
            .collect();
        let leaves: Vec<String> = g
            .tasks
            .iter()
            .filter(|t| !g.tasks.iter().any(|d| ups[d].contains(t)))
            .cloned()
            .collect();
        (roots, leaves)
    };
    let resolve_group = |name: &str| -> Option<&TaskGroup> {
        groups
            .get(name)
            .and_then(|g| task_groups.get(&g.group_id))
            .or_else(|| task_groups.get(name))
    };
    let mut new_edges: Vec<(String, String)> = Vec::new();
    for (dep, line, down) in &group_edges {
        if let Some(g) = resolve_group(dep) {
            if g.tasks.is_empty() {
                cx.err(
                    *line,
                    format!("{dag_id}.tasks.{down}.dependencies"),
                    format!("task group `{dep}` has no tasks"),
                );
            }
            let (_, leaves) = leaves_roots(&ups, g);
            for l in leaves {
                new_edges.push((l, down.clone()));
            }
        }
    }
    for (gname, graw) in &groups {
        for (dep, line) in &graw.deps {
            let Some(g) = task_groups.get(&graw.group_id) else {
                continue;
            };
            let (roots, _) = leaves_roots(&ups, g);
            let upstreams: Vec<String> = if let Some(full) = local.get(dep) {
                vec![full.clone()]
            } else if let Some(dg) = resolve_group(dep) {
                leaves_roots(&ups, dg).1
            } else {
                cx.err(
                    *line,
                    format!("{dag_id}.task_groups.{gname}.dependencies"),
                    format!("unknown upstream task or group `{dep}`"),
                );
                continue;
            };
            for r in &roots {
                for u in &upstreams {
                    if u != r {
                        new_edges.push((u.clone(), r.clone()));
                    }
                }
            }
        }
    }
    for (u, d) in new_edges {
        push_edge(&mut ups, &mut up_seen, &d, u);
    }
    // Downstream lists and cycle check.
    for (tid, u) in &ups {
        if let Some(t) = tasks.get_mut(tid) {
            t.upstream = u.clone();
        }
    }
    let index: HashMap<&str, usize> = tasks
        .keys()
        .enumerate()
        .map(|(i, k)| (k.as_str(), i))
        .collect();
    let up_idx: Vec<Vec<usize>> = tasks
        .values()
        .map(|t| {
            t.upstream
                .iter()
                .filter_map(|u| index.get(u.as_str()).copied())
                .collect()
        })
        .collect();
    let topo_order = match crate::graph::topo_sort(&up_idx) {
        Ok(order) => order
            .into_iter()
            .map(|i| {
                tasks
                    .get_index(i)
                    .map(|(k, _)| k.clone())
                    .unwrap_or_default()
            })
            .collect(),
        Err(cycle) => {
            let names: Vec<String> = cycle
                .iter()
                .filter_map(|&i| tasks.get_index(i).map(|(k, _)| k.clone()))
                .collect();
            let first = tasks.get_index(cycle[0]).map_or(key.line, |(_, t)| t.line);
            cx.err(
                first,
                format!("{dag_id}.tasks"),
                format!("dependency cycle: {}", names.join(" -> ")),
            );
            Vec::new()
        }
    };
    let mut downs: HashMap<String, Vec<String>> = HashMap::new();
    for (tid, t) in &tasks {
        for u in &t.upstream {
            downs.entry(u.clone()).or_default().push(tid.clone());
        }
    }
    for (tid, t) in tasks.iter_mut() {
        t.downstream = downs.remove(tid).unwrap_or_default();
    }
    if !cx.errors.is_empty() {
        return None;
    }
    let mut default_args_json = Map::new();
    if let Value::Object(m) = default_args.to_json() {
        default_args_json = m;
    }
    Some(Dag {
        dag_id,
        file: cx.file.to_path_buf(),
        line: key.line,
        description,
        schedule,
        timezone: tz,
        start_date,
        end_date,
        catchup,
        max_active_runs,
        max_active_tasks,
        render_template_as_native_obj: render_native,
        params,
        param_specs,
        tags,
        default_args: default_args_json,
        tasks,
        task_groups,
        topo_order,
        extra,
        warnings: {
            let mut w = warnings;
            for x in cx.warnings.drain(..) {
                if !w.contains(&x) {
                    w.push(x);
                }
            }
            w
        },
    })
}

/// An Airflow `Param` written as `{value: .., type: ..}` / `{default: ..}` becomes its value.
fn param_value(v: Value) -> Value {
    if let Value::Object(m) = &v {
        let keys: HashSet<&str> = m.keys().map(String::as_str).collect();
        let param_keys = [
            "value",
            "default",
            "type",
            "description",
            "title",
            "enum",
            "minimum",
            "maximum",
        ];
        if (keys.contains("value") || keys.contains("default"))
            && keys.iter().all(|k| param_keys.contains(k))
        {
            return m
                .get("value")
                .or_else(|| m.get("default"))
                .cloned()
                .unwrap_or(Value::Null);
        }
    }
    v
}

fn push_edge(
    ups: &mut IndexMap<String, Vec<String>>,
    seen: &mut HashSet<(String, String)>,
    down: &str,
    up: String,
) {
    if let Some(list) = ups.get_mut(down) {
        if seen.insert((down.to_string(), up.clone())) {
            list.push(up);
        }
    }
}

/// Whether `id` is a valid DAG (or task) id: 1 to 250 of Airflow's characters (letters,
/// digits, `_`, `-`, `.`).
pub fn valid_dag_id(id: &str) -> bool {
    valid_id(id)
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 250
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

#[derive(Clone)]
struct RawGroup {
    group: TaskGroup,
    deps: Vec<(String, usize)>,
}

impl std::ops::Deref for RawGroup {
    type Target = TaskGroup;
    fn deref(&self) -> &TaskGroup {
        &self.group
    }
}

fn parse_groups(cx: &mut Cx, dag_id: &str, node: Option<&Node>) -> IndexMap<String, RawGroup> {
    let mut out: IndexMap<String, RawGroup> = IndexMap::new();
    let Some(node) = node else { return out };
    if node.is_null() {
        return out;
    }
    let listed: Vec<(Key, Node)>;
    let entries: &[(Key, Node)] = match &node.value {
        Val::Map(entries) => entries,
        // newer dag-factory: a list of groups, each naming itself with `group_name`
        Val::Seq(items) => {
            let mut v = Vec::new();
            for item in items {
                match item.get("group_name").and_then(Node::scalar_text) {
                    Some(name) if !v.iter().any(|(k, _): &(Key, Node)| k.name == name) => v.push((
                        Key {
                            name,
                            line: item.line,
                        },
                        item.clone(),
                    )),
                    Some(name) => cx.err(
                        item.line,
                        format!("{dag_id}.task_groups"),
                        format!("duplicate group_name `{name}`"),
                    ),
                    None => cx.err(
                        item.line,
                        format!("{dag_id}.task_groups"),
                        "a task group in a list needs `group_name`",
                    ),
                }
            }
            listed = v;
            &listed
        }
        _ => {
            cx.err(
                node.line,
                format!("{dag_id}.task_groups"),
                "must be a mapping of group name -> group, or a list of groups with `group_name`",
            );
            return out;
        }
    };
    let mut parents: HashMap<String, (String, usize)> = HashMap::new();
    for (k, g) in entries {
        let path = format!("{dag_id}.task_groups.{}", k.name);
        // a dotted name is a full group id (`outer.inner`): its parent is the group named by
        // the part before the last dot (Python DAG files give nested groups so)
        if !k.name.split('.').all(valid_id) {
            cx.err(
                k.line,
                &path,
                "a group id may only contain letters, digits, `_` and `-` (`.` between nested group ids)",
            );
        }
        let mut group = TaskGroup {
            group_id: k.name.clone(),
            line: k.line,
            tooltip: None,
            parent: None,
            tasks: Vec::new(),
        };
        let mut deps = Vec::new();
        for (fk, fv) in g.entries() {
            let fpath = format!("{path}.{}", fk.name);
            match fk.name.as_str() {
                "tooltip" => group.tooltip = fv.scalar_text(),
                "parent_group_name" => {
                    if let Some(p) = fv.scalar_text() {
                        parents.insert(k.name.clone(), (p, fv.line));
                    }
                }
                "dependencies" => match &fv.value {
                    Val::Seq(items) => deps.extend(
                        items
                            .iter()
                            .filter_map(|i| i.scalar_text().map(|s| (s, i.line))),
                    ),
                    Val::Null => {}
                    _ => cx.err(fv.line, fpath, "must be a list of task or group ids"),
                },
                name if GROUP_KEYS.contains(&name) => {}
                _ => cx.err(fk.line, fpath, "unknown task group field"),
            }
        }
        out.insert(k.name.clone(), RawGroup { group, deps });
    }
    // Resolve nested ids.
    let names: Vec<String> = out.keys().cloned().collect();
    for name in &names {
        if let Some((parent, _)) = name.rsplit_once('.') {
            if !out.contains_key(parent) {
                let line = out[name].group.line;
                cx.err(
                    line,
                    format!("{dag_id}.task_groups.{name}"),
                    format!("unknown parent task group `{parent}`"),
                );
            }
            if let Some(g) = out.get_mut(name) {
                g.group.parent = Some(parent.to_string());
            }
        }
    }
    for name in names.into_iter().filter(|n| !n.contains('.')) {
        let mut chain = vec![name.clone()];
        let mut cur = name.clone();
        let mut ok = true;
        while let Some((p, line)) = parents.get(&cur) {
            if !out.contains_key(p) {
                cx.err(
                    *line,
                    format!("{dag_id}.task_groups.{cur}.parent_group_name"),
                    format!("unknown task group `{p}`"),
                );
                ok = false;
                break;
            }
            if chain.contains(p) {
                cx.err(
                    *line,
                    format!("{dag_id}.task_groups.{cur}.parent_group_name"),
                    "task group nesting forms a cycle",
                );
                ok = false;
                break;
            }
            chain.push(p.clone());
            cur = p.clone();
        }
        if ok {
            chain.reverse();
            let full = chain.join(".");
            let parent = (chain.len() > 1).then(|| chain[..chain.len() - 1].join("."));
            if let Some(g) = out.get_mut(&name) {
                g.group.group_id = full;
                g.group.parent = parent;
            }
        }
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn parse_task(
    cx: &mut Cx,
    path: &str,
    full_id: &str,
    line: usize,
    node: &Node,
    defaults: &TaskDefaults,
    group: Option<String>,
    config: &FolderConfig,
    check: &dyn OperatorCheck,
) -> Option<Task> {
    let mut d = defaults.clone();
    let mut arguments = Map::new();
    let mut params = Map::new();
    let mut expand = None;
    let mut branch = false;
    let mut multiple_outputs = false;
    let mut operator_source = None;
    let mut decorator = None;
    for (k, v) in node.entries() {
        let fpath = format!("{path}.{}", k.name);
        match k.name.as_str() {
            "operator" => operator_source = cx.string(v, &fpath),
            "decorator" => decorator = cx.string(v, &fpath),
            "dependencies" | "task_group_name" | "task_id" => {}
            "branch" => branch = cx.boolean(v, &fpath).unwrap_or(false),
            "multiple_outputs" => multiple_outputs = cx.boolean(v, &fpath).unwrap_or(false),
            "params" => match v.to_json() {
                Value::Object(m) => {
                    params = m.into_iter().map(|(k, v)| (k, param_value(v))).collect()
                }
                Value::Null => {}
                _ => cx.err(v.line, fpath, "must be a mapping"),
            },
            "partial" => match v.to_json() {
                Value::Object(m) => arguments.extend(m),
                Value::Null => {}
                _ => cx.err(v.line, fpath, "must be a mapping of arguments"),
            },
            "expand" => expand = parse_expand(cx, &fpath, v),
            name => {
                if !apply_setting(cx, &mut d, name, v, &fpath) {
                    if TASK_META_KEYS.contains(&name) {
                        continue;
                    }
                    arguments.insert(name.to_string(), v.to_json());
                }
            }
        }
    }
    if let Some(e) = &expand {
        for arg in e.args.keys() {
            if arguments.contains_key(arg) {
                cx.err(
                    line,
                    format!("{path}.expand.{arg}"),
                    "an argument cannot be both fixed and expanded",
                );
            }
        }
    }
    // dag-factory imports `python_callable_file` from where it says (after expanding `$VARS`),
    // and refuses a relative path
    if let Some(f) = arguments
        .get("python_callable_file")
        .and_then(Value::as_str)
    {
        if !(f.starts_with('/') || f.starts_with('$')) {
            cx.err(
                node.get("python_callable_file").map_or(line, |n| n.line),
                format!("{path}.python_callable_file"),
                format!("`{f}` must be an absolute path (dag-factory imports the file from there)"),
            );
        }
    }
    let (operator_source, op_key) = match (operator_source, decorator) {
        (Some(o), None) => (o, "operator"),
        (None, Some(d)) => (d, "decorator"),
        (Some(_), Some(_)) => {
            cx.err(
                line,
                path,
                "a task has either `operator` or `decorator`, not both",
            );
            return None;
        }
        (None, None) => {
            cx.err(
                line,
                path,
                "a task needs `operator` (a weft plugin name or a mapped Airflow operator) or `decorator`",
            );
            return None;
        }
    };
    let op_line = node.get(op_key).map_or(line, |n| n.line);
    let mapped = config.operators.get(&operator_source).cloned();
    let builtin = match (&mapped, op_key) {
        (Some(_), _) => None,
        (None, "decorator") if crate::builtin::is_task_decorator(&operator_source) => {
            Some(crate::builtin::python(&operator_source))
        }
        (None, "decorator") => {
            cx.err(
                op_line,
                format!("{path}.decorator"),
                format!(
                    "unknown decorator `{operator_source}`: expected an Airflow task decorator such as airflow.decorators.task, or map it in the DAG folder's {FOLDER_CONFIG}"
                ),
            );
            return None;
        }
        (None, _) => crate::builtin::for_class(&operator_source),
    };
    let operator = match (mapped, builtin) {
        (Some(p), _) => p,
        (None, Some(b)) => b,
        (None, None) if is_class_path(&operator_source) => {
            cx.err(
                op_line,
                format!("{path}.operator"),
                format!(
                    "Airflow operator `{operator_source}` has no weft plugin; map it in the DAG folder's {FOLDER_CONFIG} (operators: {{{operator_source}: PLUGIN}})"
                ),
            );
            return None;
        }
        (None, None) => operator_source.clone(),
    };
    if !crate::builtin::is_builtin(&operator) && !check.is_known_operator(&operator) {
        cx.err(
            op_line,
            format!("{path}.operator"),
            format!("unknown operator `{operator}`: no such plugin is installed"),
        );
    }
    if let Some(why) = crate::cross_dag::check_at_load(&operator, &arguments) {
        cx.err(op_line, path.to_string(), why);
    }
    if let Some(max) = d.max_retry_delay {
        if max.is_zero() {
            cx.err(
                node.get("max_retry_delay").map_or(line, |n| n.line),
                format!("{path}.max_retry_delay"),
                "must be longer than zero",
            );
        }
    }
    Some(Task {
        task_id: full_id.to_string(),
        line,
        operator_source,
        operator,
        upstream: Vec::new(),
        downstream: Vec::new(),
        trigger_rule: d.trigger_rule,
        task_group: group,
        pool: d.pool,
        pool_slots: d.pool_slots,
        priority_weight: d.priority_weight,
        weight_rule: d.weight_rule,
        retries: d.retries,
        retry_delay: d.retry_delay,
        retry_exponential_backoff: d.retry_exponential_backoff,
        max_retry_delay: d.max_retry_delay,
        execution_timeout: d.execution_timeout,
        grant: d.grant,
        owner: d.owner,
        queue: d.queue,
        branch,
        multiple_outputs,
        expand,
        params,
        arguments,
        extra: d.extra,
    })
}

fn is_class_path(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() >= 2
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

fn parse_expand(cx: &mut Cx, path: &str, node: &Node) -> Option<Expand> {
    if !matches!(node.value, Val::Map(_)) || node.entries().is_empty() {
        cx.err(
            node.line,
            path,
            "`expand` must be a mapping of argument -> list or upstream output",
        );
        return None;
    }
    let mut args = IndexMap::new();
    for (k, v) in node.entries() {
        let fpath = format!("{path}.{}", k.name);
        let src = match &v.value {
            Val::Seq(_) | Val::Map(_) => ExpandSource::Literal(v.to_json()),
            Val::Str(s) => match xcom_reference(s) {
                Some((task_id, key)) => ExpandSource::XCom { task_id, key },
                None if s.contains("{{") => ExpandSource::Template(s.clone()),
                None => {
                    cx.err(v.line, fpath, format!("cannot expand over `{s}`: use a list, `+TASK`, `TASK.output` or a `{{{{ ti.xcom_pull('TASK') }}}}` template"));
                    continue;
                }
            },
            _ => {
                cx.err(
                    v.line,
                    fpath,
                    format!("cannot expand over {}", v.type_name()),
                );
                continue;
            }
        };
        args.insert(k.name.clone(), src);
    }
    Some(Expand { args })
}

/// Task ids named by `xcom_pull(...)` calls in a template (first positional or `task_ids=`).
pub fn xcom_pull_targets(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    for part in s.split("xcom_pull(").skip(1) {
        let args = part.split(')').next().unwrap_or("");
        for (i, arg) in args.split(',').enumerate() {
            let arg = arg.trim();
            let value = match arg.split_once('=') {
                Some((name, v)) if name.trim() == "task_ids" => v.trim(),
                Some(_) => continue,
                None if i == 0 => arg,
                None => continue,
            };
            let value = value.trim_start_matches('[').trim_end_matches(']');
            for v in value.split(',') {
                let v = v.trim();
                if (v.starts_with('\'') && v.ends_with('\'')
                    || v.starts_with('"') && v.ends_with('"'))
                    && v.len() >= 2
                {
                    out.push(v[1..v.len() - 1].to_string());
                }
            }
        }
    }
    out
}

/// dag-factory's TaskFlow argument reference: `+task` (the task's output) or `+task['key']` /
/// `+task["key"]` (one key of a `multiple_outputs` task), as `(task, key)`.
pub fn taskflow_reference(s: &str) -> Option<(String, String)> {
    let rest = s.strip_prefix('+')?;
    let end = rest
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    let (task, tail) = rest.split_at(end);
    if task.is_empty() {
        return None;
    }
    if tail.is_empty() {
        return Some((task.to_string(), "return_value".into()));
    }
    let inner = tail.strip_prefix('[')?.strip_suffix(']')?;
    let key = inner
        .strip_prefix('\'')
        .and_then(|k| k.strip_suffix('\''))
        .or_else(|| inner.strip_prefix('"').and_then(|k| k.strip_suffix('"')))?;
    Some((task.to_string(), key.to_string()))
}

/// Recognise a reference to an upstream's XCom: `+task`, `task.output`,
/// `{{ ti.xcom_pull('task') }}` / `{{ ti.xcom_pull(task_ids='task', key='k') }}`.
pub fn xcom_reference(s: &str) -> Option<(String, String)> {
    let s = s.trim();
    let plain = |t: &str| {
        !t.is_empty()
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    };
    if let Some(t) = s.strip_prefix('+') {
        return plain(t).then(|| (t.to_string(), "return_value".into()));
    }
    if let Some(t) = s.strip_suffix(".output") {
        if plain(t) && !s.contains("{{") {
            return Some((t.to_string(), "return_value".into()));
        }
    }
    let inner = s.strip_prefix("{{")?.strip_suffix("}}")?.trim();
    let args = inner.strip_prefix("ti.xcom_pull(")?.strip_suffix(')')?;
    let mut task = None;
    let mut key = "return_value".to_string();
    for (i, part) in args.split(',').enumerate() {
        let part = part.trim();
        let (name, value) = match part.split_once('=') {
            Some((n, v)) => (n.trim(), v.trim()),
            None => (if i == 0 { "task_ids" } else { "key" }, part),
        };
        let value = value.trim_matches(|c| c == '\'' || c == '"');
        if !plain(value) {
            return None;
        }
        match name {
            "task_ids" => task = Some(value.to_string()),
            "key" => key = value.to_string(),
            _ => return None,
        }
    }
    task.map(|t| (t, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> (Vec<Dag>, Vec<DagError>) {
        parse_dag_file(
            Path::new("dags/x.yaml"),
            text,
            &FolderConfig::default(),
            &AnyOperator,
        )
    }

    #[test]
    fn fields_accepted_and_not_acted_on_are_warnings_with_their_line() {
        let (dags, errs) = parse(
            "etl:\n  fail_fast: true\n  default_args:\n    run_as_user: etl\n  tasks:\n    a:\n      operator: echo\n      executor_config: {x: 1}\n    b:\n      operator: echo\n      dependencies: [a]\n      email: ops@example.com\n",
        );
        assert!(errs.is_empty(), "{errs:?}");
        let w = &dags[0].warnings;
        for want in [
            "line 2: `fail_fast` is accepted and not acted on",
            "line 4: `etl.default_args.run_as_user` is accepted and not acted on",
            "line 8: `etl.tasks.a.executor_config` is accepted and not acted on",
        ] {
            assert!(w.iter().any(|x| x.starts_with(want)), "{want}: {w:?}");
        }
        assert!(!w.iter().any(|x| x.contains("email")), "{w:?}");
    }

    #[test]
    fn parses_dag_factory_shape() {
        let (dags, errs) = parse(
            "default:\n  default_args:\n    owner: team\n    retries: 2\n\
             etl:\n  default_args:\n    start_date: 2024-01-01\n    retry_delay: {minutes: 1}\n  schedule: '@daily'\n  params: {x: 1}\n  tags: [a]\n  task_groups:\n    g:\n      tooltip: grp\n      dependencies: [a]\n  tasks:\n    a:\n      operator: echo\n      msg: hi\n    b:\n      operator: echo\n      task_group_name: g\n      retries: 0\n    c:\n      operator: echo\n      dependencies: [g]\n      trigger_rule: one_failed\n",
        );
        assert!(errs.is_empty(), "{errs:?}");
        let d = &dags[0];
        assert_eq!(d.dag_id, "etl");
        let a = &d.tasks["a"];
        assert_eq!(a.owner, "team");
        assert_eq!(a.retries, 2);
        assert_eq!(a.retry_delay, Duration::from_secs(60));
        assert_eq!(a.arguments["msg"], "hi");
        let b = &d.tasks["g.b"];
        assert_eq!(b.retries, 0);
        assert_eq!(b.upstream, vec!["a".to_string()]);
        assert_eq!(d.tasks["c"].upstream, vec!["g.b".to_string()]);
        assert_eq!(d.tasks["c"].trigger_rule, TriggerRule::OneFailed);
        assert_eq!(d.topo_order, vec!["a", "g.b", "c"]);
    }

    #[test]
    fn unknown_dag_fields_warn_and_taskflow_arguments_are_edges() {
        let (dags, errs) = parse(
            "d:\n  vars: {a: &a 1}\n  schedule_interval: '@daily'\n  tasks:\n    - task_id: n\n      decorator: airflow.decorators.task\n      python_callable: m.n\n    - task_id: c\n      decorator: airflow.decorators.task\n      python_callable: m.c\n      multiple_outputs: true\n    - task_id: d\n      decorator: airflow.decorators.task\n      python_callable: m.d\n      x: +n\n      y: \"+c['k']\"\n",
        );
        assert!(errs.is_empty(), "{errs:?}");
        let d = &dags[0];
        assert!(
            d.warnings
                .iter()
                .any(|w| w.contains("line 2: `vars` is not a DAG field")),
            "{:?}",
            d.warnings
        );
        assert!(
            d.warnings
                .iter()
                .any(|w| w.contains("`schedule_interval` is Airflow 2's name")),
            "{:?}",
            d.warnings
        );
        assert_eq!(
            d.tasks["d"].upstream,
            vec!["n".to_string(), "c".to_string()]
        );
        // the reference is kept as written for the callable's runner
        assert_eq!(d.tasks["d"].arguments["x"], "+n");
        let (_, errs) = parse(
            "d:\n  tasks:\n    t:\n      decorator: airflow.decorators.task\n      python_callable: m.n\n      x: +ghost\n    u:\n      operator: airflow.operators.python.PythonOperator\n      python_callable_name: f\n      python_callable_file: dags/f.py\n",
        );
        let text: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert!(
            text.iter()
                .any(|e| e.contains("d.tasks.t.x: passes the output of unknown task `ghost`")),
            "{text:?}"
        );
        assert!(text.iter().any(|e| e.starts_with("dags/x.yaml:10: d.tasks.u.python_callable_file: `dags/f.py` must be an absolute path")), "{text:?}");
    }

    #[test]
    fn errors_carry_file_line_and_path() {
        let (dags, errs) = parse(
            "d:\n  schedule: '61 * * * *'\n  bogus: 1\n  tasks:\n    t1:\n      operator: echo\n      dependencies: [nope]\n      trigger_rule: sometimes\n",
        );
        assert!(dags.is_empty());
        let text: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert!(
            text.iter()
                .any(|e| e.starts_with("dags/x.yaml:2: d.schedule: bad cron")),
            "{text:?}"
        );
        // an unknown DAG field is ignored with a warning, as dag-factory ignores it
        assert!(!text.iter().any(|e| e.contains("bogus")), "{text:?}");
        assert!(
            text.iter()
                .any(|e| e
                    .starts_with("dags/x.yaml:8: d.tasks.t1.trigger_rule: unknown trigger rule")),
            "{text:?}"
        );
        let (_, errs) =
            parse("d:\n  tasks:\n    t1:\n      operator: echo\n      dependencies: [nope]\n");
        assert_eq!(
            errs[0].to_string(),
            "dags/x.yaml:5: d.tasks.t1.dependencies: unknown upstream task `nope`"
        );
    }

    #[test]
    fn dotted_groups_keep_nested_ids_apart_and_full_ids_win_over_local_names() {
        let (dags, errs) = parse(
            "d:\n  task_groups:\n    a: {}\n    a.b: {}\n    c: {}\n    c.b: {}\n  tasks:\n    - task_id: t\n      operator: echo\n      task_group_name: a.b\n    - task_id: t\n      operator: echo\n      task_group_name: c.b\n    - task_id: t\n      operator: echo\n      dependencies: [a.b.t]\n",
        );
        assert!(errs.is_empty(), "{errs:?}");
        let d = &dags[0];
        let ids: Vec<&str> = d.tasks.keys().map(String::as_str).collect();
        assert_eq!(ids, ["a.b.t", "c.b.t", "t"]);
        assert_eq!(d.task_groups["c.b"].parent.as_deref(), Some("c"));
        assert_eq!(d.task_groups["c.b"].tasks, ["c.b.t"]);
        assert_eq!(d.tasks["t"].upstream, ["a.b.t"]);
        let (_, errs) =
            parse("d:\n  task_groups:\n    x.y: {}\n  tasks:\n    t:\n      operator: echo\n");
        assert!(
            errs.iter()
                .any(|e| e.reason.contains("unknown parent task group `x`")),
            "{errs:?}"
        );
    }

    #[test]
    fn cycles_are_reported() {
        let (_, errs) = parse(
            "d:\n  tasks:\n    a:\n      operator: echo\n      dependencies: [c]\n    b:\n      operator: echo\n      dependencies: [a]\n    c:\n      operator: echo\n      dependencies: [b]\n",
        );
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].reason.contains("dependency cycle"), "{}", errs[0]);
        assert!(errs[0].line > 0);
    }

    #[test]
    fn operators_map_and_check() {
        let text = "d:\n  tasks:\n    a:\n      operator: airflow.operators.bash.BashOperator\n      bash_command: echo\n    b:\n      operator: nosuch\n";
        let (_, errs) = parse_dag_file(
            Path::new("x.yaml"),
            text,
            &FolderConfig::default(),
            &|op: &str| op != "nosuch",
        );
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs[0]
            .to_string()
            .starts_with("x.yaml:4: d.tasks.a.operator: Airflow operator"));
        assert!(errs[1]
            .to_string()
            .starts_with("x.yaml:7: d.tasks.b.operator: unknown operator `nosuch`"));
        let mut cfg = FolderConfig::default();
        cfg.operators
            .insert("airflow.operators.bash.BashOperator".into(), "bash".into());
        let (dags, errs) =
            parse_dag_file(Path::new("x.yaml"), text, &cfg, &|op: &str| op != "nosuch");
        assert_eq!(errs.len(), 1);
        assert!(dags.is_empty());
        let cfg2 = parse_folder_config(
            Path::new("weft.yaml"),
            "operators:\n  airflow.operators.bash.BashOperator: bash\n",
        )
        .unwrap();
        assert_eq!(
            cfg2.operators["airflow.operators.bash.BashOperator"],
            "bash"
        );
    }

    #[test]
    fn weft_yaml_scheduler_settings_decide_what_a_cron_string_means() {
        let cfg = |text: &str| parse_folder_config(Path::new("weft.yaml"), text);
        let dag = "ctx:\n  schedule: '30 2 * * *'\n  tasks:\n    a:\n      operator: echo\n";
        let schedule = |c: &FolderConfig| {
            let (dags, errs) = parse_dag_file(Path::new("x.yaml"), dag, c, &AnyOperator);
            assert!(errs.is_empty(), "{errs:?}");
            dags[0].schedule.clone()
        };
        assert!(matches!(
            schedule(&FolderConfig::default()),
            Schedule::Cron { .. }
        ));
        for text in [
            "scheduler:\n  create_cron_data_intervals: false\n",
            "scheduler:\n  create_cron_data_intervals: 'False'\n",
            "scheduler: {create_cron_data_intervals: '0'}\n",
        ] {
            let c = cfg(text).unwrap();
            assert!(!c.scheduler.create_cron_data_intervals, "{text}");
            assert!(
                matches!(schedule(&c), Schedule::CronTrigger { .. }),
                "{text}"
            );
        }
        // hostile or mistaken settings are errors at their line
        for (text, line, why) in [
            (
                "scheduler:\n  create_cron_data_intervals: maybe\n",
                2,
                "not a boolean",
            ),
            (
                "scheduler:\n  create_cron_data_intervals: [true]\n",
                2,
                "expected true or false",
            ),
            (
                "scheduler:\n  catchup_by_default: true\n",
                2,
                "unknown setting",
            ),
            ("scheduler: false\n", 1, "must be a mapping"),
        ] {
            let e = cfg(text).unwrap_err();
            assert_eq!(e.line, line, "{text}: {e}");
            assert!(e.reason.contains(why), "{text}: {e}");
        }
    }

    #[test]
    fn taskflow_references() {
        assert_eq!(
            taskflow_reference("+collect['key1']"),
            Some(("collect".into(), "key1".into()))
        );
        assert_eq!(
            taskflow_reference("+n"),
            Some(("n".into(), "return_value".into()))
        );
        assert_eq!(taskflow_reference("+ n"), None);
        assert_eq!(taskflow_reference("+x[key]"), None);
        assert_eq!(taskflow_reference("x"), None);
    }

    #[test]
    fn expand_references() {
        assert_eq!(
            xcom_reference("+up"),
            Some(("up".into(), "return_value".into()))
        );
        assert_eq!(
            xcom_reference("up.output"),
            Some(("up".into(), "return_value".into()))
        );
        assert_eq!(
            xcom_reference("{{ ti.xcom_pull('up') }}"),
            Some(("up".into(), "return_value".into()))
        );
        assert_eq!(
            xcom_reference("{{ ti.xcom_pull(task_ids='up', key='files') }}"),
            Some(("up".into(), "files".into()))
        );
        let (dags, errs) = parse("d:\n  tasks:\n    up:\n      operator: echo\n    m:\n      operator: echo\n      expand: {x: +up}\n");
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(dags[0].tasks["m"].upstream, vec!["up".to_string()]);
    }

    #[test]
    fn bad_yaml_has_line() {
        let (_, errs) = parse("d:\n  tasks:\n    a: [1,\n");
        assert_eq!(errs.len(), 1);
        assert!(errs[0].reason.starts_with("YAML syntax error"));
        assert!(errs[0].line >= 3);
    }
}
