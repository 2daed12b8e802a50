//! The resource map: which installed plugin serves each AWS service integration a Task names
//! (`arn:aws:states:::dynamodb:putItem`, `arn:aws:states:::aws-sdk:s3:getObject`,
//! `arn:aws:states:::glue:startJobRun.sync`, `...sns:publish.waitForTaskToken`). It owns the map
//! file's format and checks (size cap, strict schema, errors with file:line), the layering of
//! maps (a state machine's own map, then the one beside the definition, then `$WEFT_HOME`'s),
//! the lookup (exact beats wildcard), the request envelope a mapped plugin receives and the
//! list of integrations a definition names that no map serves (for validation).
//!
//! Built-in resources are never mapped: `http:invoke` (the HTTP Task), Lambda, nested
//! executions, activities and DAG runs keep their own handling; a map entry naming them is an
//! error.

use crate::plugin_host::PluginRef;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use weft_asl::resource::{Resource, ResourceKind};

/// The largest map file (or API body) read.
pub const MAX_MAP_BYTES: usize = 256 * 1024;
/// The most entries one map holds.
pub const MAX_ENTRIES: usize = 1000;
/// The file names a map has in `$WEFT_HOME` and beside a definition, in the order tried.
pub const MAP_FILE_NAMES: [&str; 3] =
    ["resource-map.yaml", "resource-map.yml", "resource-map.json"];
/// The error of a Task whose integration no map serves.
pub const NOT_MAPPED: &str = "Weft.IntegrationNotMapped";
/// The error of a mapped plugin that breaks the start+poll protocol.
pub const PROTOCOL_ERROR: &str = "Weft.IntegrationProtocol";
/// The default pause between two polls of a `start_poll` entry.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(5);
/// The longest pause between two polls.
pub const MAX_POLL_INTERVAL: Duration = Duration::from_secs(3600);
/// The shortest pause between two polls.
pub const MIN_POLL_INTERVAL: Duration = Duration::from_millis(10);
/// Resource prefixes kept by their built-in handlers (the map may not shadow them).
const BUILT_IN_SERVICES: [&str; 3] = ["http", "lambda", "states"];

/// A map file or body that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}: {reason}")]
pub struct MapError {
    /// `FILE:LINE` (or `FILE` when no line applies; the API names its body `request body`).
    pub origin: String,
    /// What is wrong and how to fix it.
    pub reason: String,
}

/// How a `.sync` integration waits for its job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// One call that returns when the job is done.
    Call,
    /// A start call, then polls of `poll_plugin` until it reports SUCCEEDED or FAILED.
    StartPoll,
}

/// One map entry: what serves the integrations its pattern matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapEntry {
    /// The pattern as written (`dynamodb:putItem`, `sns:*`, `glue:startJobRun.sync`).
    pub pattern: String,
    /// The plugin called (the start plugin of a `start_poll` entry).
    pub plugin: PluginRef,
    /// How `.sync` waits.
    pub mode: SyncMode,
    /// The plugin polled (`start_poll`; defaults to `plugin`).
    pub poll_plugin: PluginRef,
    /// The `action` the poll envelope names (defaults to the integration's action).
    pub poll_action: Option<String>,
    /// The pause between polls.
    pub poll_interval: Duration,
    /// Where the entry was written (`FILE:LINE`).
    pub origin: String,
}

/// The integration a Task resource names, as the map sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Integration {
    /// `dynamodb`, `aws-sdk:s3`...
    pub service: String,
    /// `putItem`, `getObject`...
    pub action: String,
    /// `""`, `.sync`, `.sync:2` or `.waitForTaskToken`.
    pub suffix: &'static str,
}

impl Integration {
    /// The integration of a parsed Task resource, when it is one the map serves (an AWS
    /// service integration that is not a built-in and has no `${...}` placeholder).
    pub fn of(resource: &Resource) -> Option<Integration> {
        let ResourceKind::Service { service, action } = &resource.kind else {
            return None;
        };
        if action.is_empty() || BUILT_IN_SERVICES.contains(&service.as_str()) {
            return None;
        }
        let raw = resource.raw.as_str();
        let suffix = if raw.ends_with(".waitForTaskToken") {
            ".waitForTaskToken"
        } else if raw.ends_with(".sync:2") {
            ".sync:2"
        } else if raw.ends_with(".sync") {
            ".sync"
        } else {
            ""
        };
        Some(Integration {
            service: service.clone(),
            action: action.clone(),
            suffix,
        })
    }

    /// `service:action` (`dynamodb:putItem`).
    pub fn name(&self) -> String {
        format!("{}:{}", self.service, self.action)
    }

    /// `service:action` with the integration pattern's suffix (`glue:startJobRun.sync`).
    pub fn key(&self) -> String {
        format!("{}:{}{}", self.service, self.action, self.suffix)
    }

    /// The envelope's `pattern`: `request_response`, `sync`, `sync:2` or `waitForTaskToken`.
    pub fn pattern_name(&self) -> &'static str {
        match self.suffix {
            ".sync" => "sync",
            ".sync:2" => "sync:2",
            ".waitForTaskToken" => "waitForTaskToken",
            _ => "request_response",
        }
    }

    /// The IAM action the execution role must allow: the service's prefix and the action with
    /// a capital first letter (`dynamodb:PutItem`, `s3:GetObject` for `aws-sdk:s3:getObject`).
    pub fn iam_action(&self) -> String {
        let svc = self
            .service
            .strip_prefix("aws-sdk:")
            .unwrap_or(&self.service);
        let mut c = self.action.chars();
        let action: String = match c.next() {
            Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
            None => String::new(),
        };
        format!("{svc}:{action}")
    }

    /// The resource that decision is taken on: the integration's ARN without a region,
    /// account or pattern suffix (`arn:aws:states:::dynamodb:putItem`).
    pub fn iam_resource(&self) -> String {
        format!("arn:aws:states:::{}", self.name())
    }

    /// The map entry line that would serve this integration.
    pub fn suggested_entry(&self) -> String {
        if self.suffix.starts_with(".sync") {
            format!(
                "{}: {{plugin: <plugin>, mode: start_poll, poll_action: <status action>}}",
                self.key()
            )
        } else {
            format!("{}: {{plugin: <plugin>}}", self.key())
        }
    }

    /// The patterns that could serve this integration, most specific first.
    fn candidates(&self) -> Vec<String> {
        let (s, a, x) = (&self.service, &self.action, self.suffix);
        let mut out = Vec::with_capacity(6);
        for action in [a.as_str(), "*"] {
            if !x.is_empty() {
                out.push(format!("{s}:{action}{x}"));
            }
            if x == ".sync:2" {
                out.push(format!("{s}:{action}.sync"));
            }
            out.push(format!("{s}:{action}"));
        }
        out
    }
}

/// One map (a file or a state machine's own).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceMap {
    entries: Vec<MapEntry>,
    /// Entry index by pattern.
    index: HashMap<String, usize>,
}

impl ResourceMap {
    /// Parses a map written in YAML or JSON; `origin` names it in errors (a file path, or
    /// `request body`). Every problem is reported, each with its line.
    pub fn parse(text: &str, origin: &str) -> Result<ResourceMap, Vec<MapError>> {
        let err = |line: Option<usize>, reason: String| MapError {
            origin: match line {
                Some(l) => format!("{origin}:{l}"),
                None => origin.to_string(),
            },
            reason,
        };
        if text.len() > MAX_MAP_BYTES {
            return Err(vec![err(
                None,
                format!(
                    "the map is {} bytes; at most {MAX_MAP_BYTES} are read",
                    text.len()
                ),
            )]);
        }
        if text.trim().is_empty() {
            return Ok(ResourceMap::default());
        }
        // JSON is read as YAML too: duplicate keys are refused and errors carry a line
        let value = weft_asl::yaml::yaml_to_value(text).map_err(|errs| {
            errs.errors
                .iter()
                .map(|e| err(None, format!("not a valid map: {}", e.reason)))
                .collect::<Vec<_>>()
        })?;
        let Value::Object(top) = value else {
            return Err(vec![err(
                Some(1),
                "a map is a mapping of integration patterns to entries (`dynamodb:putItem: {plugin: NAME}`)".into(),
            )]);
        };
        if top.len() > MAX_ENTRIES {
            return Err(vec![err(
                None,
                format!("{} entries; a map holds at most {MAX_ENTRIES}", top.len()),
            )]);
        }
        let mut entries = Vec::with_capacity(top.len());
        let mut problems = Vec::new();
        for (pattern, body) in &top {
            let line = line_of(text, pattern);
            match entry(pattern, body, &format!("{origin}:{line}")) {
                Ok(e) => entries.push(e),
                Err(reason) => problems.push(err(Some(line), format!("`{pattern}`: {reason}"))),
            }
        }
        if problems.is_empty() {
            let index = entries
                .iter()
                .enumerate()
                .map(|(i, e)| (e.pattern.clone(), i))
                .collect();
            Ok(ResourceMap { entries, index })
        } else {
            Err(problems)
        }
    }

    /// Reads a map file: a regular file (not a symbolic link, opened with `O_NOFOLLOW`, so
    /// the file checked is the file read) of at most [`MAX_MAP_BYTES`].
    pub fn read(path: &Path) -> Result<ResourceMap, Vec<MapError>> {
        use rustix::fs::{Mode, OFlags};
        use std::io::Read;
        let origin = path.display().to_string();
        let one = |reason: String| {
            vec![MapError {
                origin: origin.clone(),
                reason,
            }]
        };
        let regular_only = || {
            one(
                "a map must be a regular file (not a symbolic link, a directory or a device)"
                    .into(),
            )
        };
        // (non-blocking: a FIFO planted under the map's name cannot hang the reader)
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let fd = match rustix::fs::open(path, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::LOOP) => return Err(regular_only()),
            Err(e) => return Err(one(format!("cannot open: {e}"))),
        };
        let file = std::fs::File::from(fd);
        let meta = file.metadata().map_err(|e| one(e.to_string()))?;
        if !meta.file_type().is_file() {
            return Err(regular_only());
        }
        if meta.len() > MAX_MAP_BYTES as u64 {
            return Err(one(format!(
                "the map is {} bytes; at most {MAX_MAP_BYTES} are read",
                meta.len()
            )));
        }
        let mut text = String::new();
        file.take(MAX_MAP_BYTES as u64 + 1)
            .read_to_string(&mut text)
            .map_err(|e| one(e.to_string()))?;
        ResourceMap::parse(&text, &origin)
    }

    /// The entries, in the order written.
    pub fn entries(&self) -> &[MapEntry] {
        &self.entries
    }

    /// True when the map has no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry serving `integration` in this map: the most specific pattern wins.
    pub fn lookup(&self, integration: &Integration) -> Option<&MapEntry> {
        integration
            .candidates()
            .iter()
            .find_map(|c| self.index.get(c).map(|&i| &self.entries[i]))
    }

    /// The map as JSON (what `GET .../resource-map` answers).
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        for e in &self.entries {
            let mut v = json!({"plugin": plugin_text(&e.plugin)});
            if e.mode == SyncMode::StartPoll {
                v["mode"] = json!("start_poll");
                v["poll_plugin"] = json!(plugin_text(&e.poll_plugin));
                if let Some(a) = &e.poll_action {
                    v["poll_action"] = json!(a);
                }
                v["poll_interval"] = json!(e.poll_interval.as_secs_f64());
            }
            m.insert(e.pattern.clone(), v);
        }
        Value::Object(m)
    }
}

/// The maps that apply to a run, most specific first: a state machine's own map, the map
/// beside its definition, `$WEFT_HOME`'s. The first map with an entry for an integration
/// serves it.
#[derive(Debug, Clone, Default)]
pub struct ResourceMaps {
    layers: Vec<Arc<ResourceMap>>,
}

impl ResourceMaps {
    /// Layers, most specific first.
    pub fn new(layers: Vec<Arc<ResourceMap>>) -> Self {
        Self { layers }
    }

    /// The entry serving `integration`.
    pub fn lookup(&self, integration: &Integration) -> Option<&MapEntry> {
        self.layers.iter().find_map(|m| m.lookup(integration))
    }

    /// The entry serving a Task resource; `None` when it is not a mapped kind of resource.
    pub fn resolve(
        &self,
        resource: &Resource,
    ) -> Option<Result<(Integration, &MapEntry), Integration>> {
        let i = Integration::of(resource)?;
        Some(match self.lookup(&i) {
            Some(e) => Ok((i, e)),
            None => Err(i),
        })
    }
}

/// The map file in a directory (`resource-map.yaml`, `.yml` or `.json`), if any.
pub fn map_in(dir: &Path) -> Option<PathBuf> {
    MAP_FILE_NAMES
        .iter()
        .map(|n| dir.join(n))
        .find(|p| std::fs::symlink_metadata(p).is_ok())
}

/// The map files beside a definition file, most specific first: `NAME.resource-map.yaml`
/// (`.yml`, `.json`; NAME is the definition's file name without `.asl.json`, `.asl.yaml`,
/// `.json`, `.yaml` or `.yml`), then `resource-map.yaml` in its folder. Both names derive from
/// the definition's own path; nothing in a definition names a map file.
pub fn maps_beside(definition: &Path) -> Vec<PathBuf> {
    let dir = definition
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let file = definition
        .file_name()
        .and_then(|f| f.to_str())
        .unwrap_or("");
    let stem = [
        ".asl.json",
        ".asl.yaml",
        ".asl.yml",
        ".json",
        ".yaml",
        ".yml",
    ]
    .iter()
    .find_map(|x| file.strip_suffix(x))
    .unwrap_or(file);
    let mut out = Vec::new();
    if !stem.is_empty() && !stem.starts_with('.') {
        if let Some(p) = ["yaml", "yml", "json"]
            .iter()
            .map(|x| dir.join(format!("{stem}.resource-map.{x}")))
            .find(|p| std::fs::symlink_metadata(p).is_ok())
        {
            out.push(p);
        }
    }
    out.extend(map_in(dir));
    out
}

/// Reads the maps of a local run (`weft run`, `weft validate`): beside the definition, then
/// `$WEFT_HOME`'s.
pub fn local_maps(definition: &Path, home: &Path) -> Result<ResourceMaps, Vec<MapError>> {
    let mut layers = Vec::new();
    for p in maps_beside(definition).into_iter().chain(map_in(home)) {
        layers.push(Arc::new(ResourceMap::read(&p)?));
    }
    Ok(ResourceMaps::new(layers))
}

/// An integration a definition names that no map serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmapped {
    /// JSON pointer of the Task's `Resource`.
    pub pointer: String,
    /// The integration.
    pub integration: Integration,
}

impl Unmapped {
    /// `POINTER: integration KEY is not mapped to a plugin; add to a resource map: LINE`.
    pub fn message(&self) -> String {
        let wait = if self.integration.suffix == ".waitForTaskToken" {
            " (without one the task only waits for its callback: nothing sends the request)"
        } else {
            " (a run fails this state with Weft.IntegrationNotMapped)"
        };
        format!(
            "the integration {} is not mapped to a plugin{wait}; add this entry to a resource map: {}",
            self.integration.key(),
            self.integration.suggested_entry()
        )
    }

    /// True when a run cannot do without a map entry (anything but `.waitForTaskToken`).
    pub fn is_error(&self) -> bool {
        self.integration.suffix != ".waitForTaskToken"
    }
}

/// The depth to which a definition is walked (definitions are already depth-checked).
const MAX_WALK_DEPTH: usize = 256;

/// Every Task of `def` naming an integration `maps` does not serve.
pub fn unmapped(def: &Value, maps: &ResourceMaps) -> Vec<Unmapped> {
    integrations(def, maps)
        .into_iter()
        .filter(|(_, _, e)| e.is_none())
        .map(|(pointer, integration, _)| Unmapped {
            pointer,
            integration,
        })
        .collect()
}

/// Every Task of `def` naming an integration the map serves: the `Resource`'s JSON pointer,
/// the integration and its entry (or `None` when no map serves it).
pub fn integrations(
    def: &Value,
    maps: &ResourceMaps,
) -> Vec<(String, Integration, Option<MapEntry>)> {
    let mut out = Vec::new();
    walk(def, String::new(), 0, maps, &mut out);
    out
}

fn walk(
    v: &Value,
    ptr: String,
    depth: usize,
    maps: &ResourceMaps,
    out: &mut Vec<(String, Integration, Option<MapEntry>)>,
) {
    if depth > MAX_WALK_DEPTH {
        return;
    }
    match v {
        Value::Object(m) => {
            if m.get("Type").and_then(Value::as_str) == Some("Task") {
                let r = m.get("Resource").and_then(Value::as_str);
                if let Some(Ok(r)) = r.map(Resource::parse) {
                    let pointer = format!("{ptr}/Resource");
                    match maps.resolve(&r) {
                        Some(Err(i)) => out.push((pointer, i, None)),
                        Some(Ok((i, e))) => out.push((pointer, i, Some(e.clone()))),
                        None => {}
                    }
                }
            }
            for (k, x) in m {
                let k = k.replace('~', "~0").replace('/', "~1");
                walk(x, format!("{ptr}/{k}"), depth + 1, maps, out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                walk(x, format!("{ptr}/{i}"), depth + 1, maps, out);
            }
        }
        _ => {}
    }
}

/// What a mapped plugin receives (see the README's "Resource maps"):
/// `{"integration", "service", "action", "pattern", "phase", "resource", "request"[, "taskToken"][, "poll"]}`.
pub struct Envelope<'a> {
    pub integration: &'a Integration,
    /// The Task's `Resource` as written.
    pub resource: &'a str,
    /// `call`, `start` or `poll`.
    pub phase: &'a str,
    /// The action named (the poll action when polling).
    pub action: &'a str,
    /// The request: the effective parameters (after `Parameters`/`Arguments`); when polling,
    /// the start call's result.
    pub request: &'a Value,
    pub task_token: Option<&'a str>,
    /// The 1-based poll number.
    pub poll: Option<u64>,
}

impl Envelope<'_> {
    /// The envelope as JSON text.
    pub fn to_json(&self) -> String {
        let mut v = json!({
            "integration": self.integration.name(),
            "service": self.integration.service,
            "action": self.action,
            "pattern": self.integration.pattern_name(),
            "phase": self.phase,
            "resource": self.resource,
            "request": self.request,
        });
        if let Some(t) = self.task_token {
            v["taskToken"] = json!(t);
        }
        if let Some(n) = self.poll {
            v["poll"] = json!(n);
        }
        v.to_string()
    }
}

/// What one poll reported.
#[derive(Debug, Clone, PartialEq)]
pub enum PollStatus {
    Running,
    /// The task's result: the poll result's `output` (else the poll result itself).
    Succeeded(Value),
    /// The task's error and cause (`error` defaults to `States.TaskFailed`).
    Failed {
        error: String,
        cause: String,
    },
}

/// Reads a poll result `{"status": "RUNNING"|"SUCCEEDED"|"FAILED", "output"?, "error"?, "cause"?}`.
pub fn poll_status(result: &Value) -> Result<PollStatus, String> {
    let status = result.get("status").and_then(Value::as_str).ok_or_else(|| {
        format!("a poll result must be {{\"status\": \"RUNNING\"|\"SUCCEEDED\"|\"FAILED\", ...}}; got {}", truncate(&result.to_string()))
    })?;
    match status {
        "RUNNING" => Ok(PollStatus::Running),
        "SUCCEEDED" => Ok(PollStatus::Succeeded(
            result
                .get("output")
                .cloned()
                .unwrap_or_else(|| result.clone()),
        )),
        "FAILED" => Ok(PollStatus::Failed {
            error: result
                .get("error")
                .and_then(Value::as_str)
                .filter(|e| !e.is_empty() && e.len() <= 256)
                .unwrap_or("States.TaskFailed")
                .to_string(),
            cause: match result.get("cause") {
                Some(Value::String(s)) => s.clone(),
                Some(v) => v.to_string(),
                None => String::new(),
            },
        }),
        other => Err(format!(
            "unknown poll status `{}` (RUNNING, SUCCEEDED or FAILED)",
            truncate(other)
        )),
    }
}

fn truncate(s: &str) -> String {
    if s.len() <= 200 {
        return s.to_string();
    }
    format!("{}...", &s[..weft_sandbox::floor_char_boundary(s, 200)])
}

/// The 1-based line of the first line whose key is `key` (quoted or not), else 1.
fn line_of(text: &str, key: &str) -> usize {
    for (i, line) in text.lines().enumerate() {
        let t = line.trim_start().trim_start_matches(['{', ',', ' ']);
        for k in [format!("\"{key}\""), format!("'{key}'"), key.to_string()] {
            if let Some(rest) = t.strip_prefix(&k) {
                if rest.trim_start().starts_with(':') {
                    return i + 1;
                }
            }
        }
    }
    1
}

fn plugin_text(r: &PluginRef) -> String {
    match r {
        PluginRef::Latest(n) => n.clone(),
        PluginRef::Version(n, v) => format!("{n}@{v}"),
        PluginRef::Digest(n, d) => format!("{n}#{d}"),
    }
}

/// A pattern: `SERVICE:ACTION[.sync|.sync:2|.waitForTaskToken]` (SERVICE may be
/// `aws-sdk:NAME`, ACTION may be `*`).
fn check_pattern(p: &str) -> Result<(), String> {
    let base = [".waitForTaskToken", ".sync:2", ".sync"]
        .iter()
        .find_map(|x| p.strip_suffix(x))
        .unwrap_or(p);
    let Some((service, action)) = base.rsplit_once(':') else {
        return Err("a pattern is SERVICE:ACTION (`dynamodb:putItem`, `aws-sdk:s3:*`, `glue:startJobRun.sync`)".into());
    };
    let svc = service.strip_prefix("aws-sdk:").unwrap_or(service);
    let svc_ok = !svc.is_empty()
        && svc.len() <= 64
        && svc
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !svc_ok {
        return Err(format!(
            "`{service}` is not a service name (lower-case letters, digits and `-`, optionally after `aws-sdk:`)"
        ));
    }
    if !service.starts_with("aws-sdk:") && BUILT_IN_SERVICES.contains(&svc) {
        return Err(format!(
            "`{svc}:` resources are built in (the HTTP Task, Lambda, nested executions) and cannot be mapped"
        ));
    }
    let action_ok = action == "*"
        || (!action.is_empty()
            && action.len() <= 128
            && action.chars().all(|c| c.is_ascii_alphanumeric()));
    if !action_ok {
        return Err(format!(
            "`{action}` is not an action (letters and digits, as in `putItem`, or `*`)"
        ));
    }
    Ok(())
}

/// A plugin reference written in a map: `NAME`, `NAME@VERSION` or `NAME#DIGEST` with the full
/// 64-digit blake3 digest. Names are letters, digits, `-`, `_` and inner `.`.
fn strict_plugin(v: &Value, field: &str) -> Result<PluginRef, String> {
    let Some(s) = v.as_str() else {
        return Err(format!(
            "`{field}` must be a string (NAME, NAME@VERSION or NAME#DIGEST)"
        ));
    };
    let bad = |why: &str| Err(format!("`{field}: {}`: {why}", truncate(s)));
    let (name, rest) = match s.find(['@', '#']) {
        Some(i) => (&s[..i], Some(&s[i..])),
        None => (s, None),
    };
    let name_ok = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && !name.contains("..")
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !name_ok {
        return bad("a plugin name is letters, digits, `-`, `_` and inner `.`");
    }
    match rest {
        None => Ok(PluginRef::Latest(name.to_string())),
        Some(r) if r.starts_with('@') => {
            let v = &r[1..];
            if v.is_empty()
                || v.len() > 64
                || !v
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+'))
            {
                return bad("a version is letters, digits, `.`, `-` and `+` (`1.2.0`)");
            }
            Ok(PluginRef::Version(name.to_string(), v.to_string()))
        }
        Some(r) => {
            let d = r[1..].strip_prefix("blake3:").unwrap_or(&r[1..]);
            if d.len() != 64 || !d.chars().all(|c| c.is_ascii_hexdigit()) {
                return bad(
                    "a digest in a map is the full 64 hex digits (`weft plugin list` shows it)",
                );
            }
            Ok(PluginRef::Digest(name.to_string(), d.to_ascii_lowercase()))
        }
    }
}

fn entry(pattern: &str, body: &Value, origin: &str) -> Result<MapEntry, String> {
    check_pattern(pattern)?;
    let Value::Object(m) = body else {
        return Err("an entry is a mapping: `{plugin: NAME[@VERSION|#DIGEST], mode?, poll_plugin?, poll_action?, poll_interval?}`".into());
    };
    for k in m.keys() {
        if !matches!(
            k.as_str(),
            "plugin" | "mode" | "poll_plugin" | "poll_action" | "poll_interval"
        ) {
            return Err(format!(
                "unknown field `{}` (plugin, mode, poll_plugin, poll_action, poll_interval)",
                truncate(k)
            ));
        }
    }
    let plugin = strict_plugin(m.get("plugin").ok_or("`plugin` is required")?, "plugin")?;
    let mode = match m.get("mode").map(|v| v.as_str()) {
        None | Some(Some("call")) => SyncMode::Call,
        Some(Some("start_poll")) => SyncMode::StartPoll,
        _ => return Err("`mode` is `call` or `start_poll`".into()),
    };
    let is_sync_capable = !pattern.ends_with(".waitForTaskToken")
        && (pattern.ends_with(".sync")
            || pattern.ends_with(".sync:2")
            || !pattern.contains(".sync"));
    if mode == SyncMode::StartPoll && !is_sync_capable {
        return Err("`mode: start_poll` only applies to `.sync` integrations".into());
    }
    let poll_fields = ["poll_plugin", "poll_action", "poll_interval"];
    if mode == SyncMode::Call {
        if let Some(f) = poll_fields.iter().find(|f| m.contains_key(**f)) {
            return Err(format!("`{f}` needs `mode: start_poll`"));
        }
    }
    let poll_plugin = match m.get("poll_plugin") {
        Some(v) => strict_plugin(v, "poll_plugin")?,
        None => plugin.clone(),
    };
    let poll_action = match m.get("poll_action") {
        None => None,
        Some(Value::String(a))
            if !a.is_empty() && a.len() <= 128 && a.chars().all(|c| c.is_ascii_alphanumeric()) =>
        {
            Some(a.clone())
        }
        Some(_) => {
            return Err("`poll_action` is an action name (letters and digits, `getJobRun`)".into())
        }
    };
    let poll_interval = match m.get("poll_interval") {
        None => DEFAULT_POLL_INTERVAL,
        Some(v) => {
            let secs = v
                .as_f64()
                .filter(|s| s.is_finite())
                .ok_or("`poll_interval` is a number of seconds")?;
            let d = Duration::from_secs_f64(secs.clamp(0.0, 1e7));
            if d < MIN_POLL_INTERVAL || d > MAX_POLL_INTERVAL {
                return Err(format!(
                    "`poll_interval` is between {} and {} seconds",
                    MIN_POLL_INTERVAL.as_secs_f64(),
                    MAX_POLL_INTERVAL.as_secs()
                ));
            }
            d
        }
    };
    Ok(MapEntry {
        pattern: pattern.to_string(),
        plugin,
        mode,
        poll_plugin,
        poll_action,
        poll_interval,
        origin: origin.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(s: &str) -> Resource {
        Resource::parse(s).unwrap()
    }

    fn map(text: &str) -> ResourceMap {
        ResourceMap::parse(text, "m.yaml").unwrap_or_else(|e| panic!("{e:?}"))
    }

    fn errors(text: &str) -> Vec<String> {
        ResourceMap::parse(text, "m.yaml")
            .unwrap_err()
            .iter()
            .map(|e| e.to_string())
            .collect()
    }

    #[test]
    fn exact_beats_wildcard_and_suffixes_fall_back() {
        let m = map("dynamodb:*: {plugin: any-ddb}\n\
                     sns:publish: {plugin: sns-publish@1.0.0}\n\
                     dynamodb:putItem: {plugin: ddb-put}\n\
                     glue:startJobRun.sync: {plugin: glue, mode: start_poll, poll_action: getJobRun, poll_interval: 0.5}\n\
                     glue:startJobRun: {plugin: glue-call}\n\
                     aws-sdk:s3:*: {plugin: s3}\n");
        let maps = ResourceMaps::new(vec![Arc::new(m)]);
        let plugin = |r: &str| {
            let (_, e) = maps.resolve(&res(r)).unwrap().unwrap();
            e.plugin.clone()
        };
        assert_eq!(
            plugin("arn:aws:states:::sns:publish"),
            PluginRef::Version("sns-publish".into(), "1.0.0".into())
        );
        assert_eq!(
            plugin("arn:aws:states:::sns:publish.waitForTaskToken"),
            PluginRef::Version("sns-publish".into(), "1.0.0".into())
        );
        assert_eq!(
            plugin("arn:aws:states:::dynamodb:getItem"),
            PluginRef::Latest("any-ddb".into())
        );
        assert_eq!(
            plugin("arn:aws:states:::dynamodb:putItem"),
            PluginRef::Latest("ddb-put".into())
        );
        assert_eq!(
            plugin("arn:aws:states:::glue:startJobRun.sync"),
            PluginRef::Latest("glue".into())
        );
        assert_eq!(
            plugin("arn:aws:states:::glue:startJobRun"),
            PluginRef::Latest("glue-call".into())
        );
        assert_eq!(
            plugin("arn:aws:states:us-east-1:123456789012:aws-sdk:s3:getObject"),
            PluginRef::Latest("s3".into())
        );
        let (_, e) = maps
            .resolve(&res("arn:aws:states:::glue:startJobRun.sync"))
            .unwrap()
            .unwrap();
        assert_eq!(e.mode, SyncMode::StartPoll);
        assert_eq!(e.poll_action.as_deref(), Some("getJobRun"));
        assert_eq!(e.poll_interval, Duration::from_millis(500));
        assert_eq!(e.origin, "m.yaml:4");
        let un = maps
            .resolve(&res("arn:aws:states:::sqs:sendMessage"))
            .unwrap()
            .unwrap_err();
        assert_eq!(un.suggested_entry(), "sqs:sendMessage: {plugin: <plugin>}");
        assert_eq!(un.iam_action(), "sqs:SendMessage");
        assert_eq!(un.iam_resource(), "arn:aws:states:::sqs:sendMessage");
        // built-ins and non-integrations are not the map's
        for r in [
            "arn:aws:states:::lambda:invoke",
            "weft:plugin:echo",
            "arn:aws:states:::states:startExecution.sync",
            "${Fn}",
        ] {
            assert!(maps.resolve(&res(r)).is_none(), "{r}");
        }
    }

    #[test]
    fn layers_are_searched_most_specific_first() {
        let own = Arc::new(map("sns:*: {plugin: own}"));
        let home = Arc::new(map(
            "sns:publish: {plugin: home}\ndynamodb:putItem: {plugin: ddb}",
        ));
        let maps = ResourceMaps::new(vec![own, home]);
        let i = Integration::of(&res("arn:aws:states:::sns:publish")).unwrap();
        assert_eq!(
            maps.lookup(&i).unwrap().plugin,
            PluginRef::Latest("own".into())
        );
        let i = Integration::of(&res("arn:aws:states:::dynamodb:putItem")).unwrap();
        assert_eq!(
            maps.lookup(&i).unwrap().plugin,
            PluginRef::Latest("ddb".into())
        );
    }

    #[test]
    fn json_maps_and_round_trip() {
        let m = map(
            r#"{"dynamodb:putItem": {"plugin": "ddb#ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789"}}"#,
        );
        assert_eq!(
            m.entries()[0].plugin,
            PluginRef::Digest(
                "ddb".into(),
                "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789".into()
            )
        );
        let again = map(&m.to_json().to_string());
        assert_eq!(again.entries()[0].plugin, m.entries()[0].plugin);
    }

    /// The map file is hostile input: every bad entry is reported with its line, nothing
    /// built in can be shadowed, and plugin references are strict.
    #[test]
    fn bad_maps_are_refused_with_file_and_line() {
        let e = errors("sns:publish: {plugin: ok}\ndynamodb:putItem: {plugin: ../../etc/x}\nhttp:invoke: {plugin: steal}\n");
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(e[0].starts_with("m.yaml:2: `dynamodb:putItem`"), "{e:?}");
        assert!(e[1].starts_with("m.yaml:3: `http:invoke`"), "{e:?}");
        assert!(e[1].contains("built in"), "{e:?}");
        for (text, why) in [
            ("lambda:invoke: {plugin: x}", "built in"),
            ("states:startExecution.sync: {plugin: x}", "built in"),
            ("sns: {plugin: x}", "SERVICE:ACTION"),
            ("SNS:publish: {plugin: x}", "service name"),
            ("sns:pub/lish: {plugin: x}", "not an action"),
            ("sns:publish: {plugin: x, extra: 1}", "unknown field"),
            ("sns:publish: {}", "`plugin` is required"),
            ("sns:publish: x", "an entry is a mapping"),
            ("sns:publish: {plugin: 'x#abc'}", "full 64 hex"),
            ("sns:publish: {plugin: 'x@'}", "a version"),
            ("sns:publish: {plugin: .hidden}", "plugin name"),
            ("sns:publish: {plugin: 'a/b'}", "plugin name"),
            (
                "sns:publish.waitForTaskToken: {plugin: x, mode: start_poll}",
                "only applies to `.sync`",
            ),
            (
                "glue:startJobRun.sync: {plugin: x, poll_action: y}",
                "needs `mode: start_poll`",
            ),
            (
                "glue:startJobRun.sync: {plugin: x, mode: start_poll, poll_interval: 0}",
                "between",
            ),
            (
                "glue:startJobRun.sync: {plugin: x, mode: start_poll, poll_interval: 1e99}",
                "between",
            ),
            (
                "glue:startJobRun.sync: {plugin: x, mode: fast}",
                "`mode` is",
            ),
            ("- a\n- b", "a mapping of integration patterns"),
            (
                "sns:publish: {plugin: x}\nsns:publish: {plugin: y}",
                "not a valid map",
            ),
        ] {
            let e = errors(text).join("\n");
            assert!(e.contains(why), "{text}: {e}");
        }
    }

    #[test]
    fn huge_and_deep_maps_are_refused() {
        let huge = format!(
            "sns:publish: {{plugin: x}}\n#{}\n",
            "a".repeat(MAX_MAP_BYTES)
        );
        assert!(errors(&huge)[0].contains("at most"));
        let deep = format!("sns:publish: {}1{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(!errors(&deep).is_empty());
        let many: String = (0..=MAX_ENTRIES)
            .map(|i| format!("svc{i}:act: {{plugin: x}}\n"))
            .collect();
        assert!(errors(&many)[0].contains("at most"));
        let bomb = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n\
                    c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n\
                    e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n";
        assert!(!errors(bomb).is_empty());
    }

    /// Map files are found only under names derived from the definition's own path, and a
    /// symbolic link is not read.
    #[test]
    fn map_files_beside_a_definition() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        std::fs::write(
            d.join("orders.resource-map.yaml"),
            "sns:publish: {plugin: a}",
        )
        .unwrap();
        std::fs::write(d.join("resource-map.json"), r#"{"sns:*": {"plugin": "b"}}"#).unwrap();
        let found = maps_beside(&d.join("orders.asl.json"));
        assert_eq!(
            found,
            vec![
                d.join("orders.resource-map.yaml"),
                d.join("resource-map.json")
            ]
        );
        assert_eq!(
            maps_beside(&d.join("other.yaml")),
            vec![d.join("resource-map.json")]
        );
        // a definition named like a traversal still only looks in its own folder
        let sneaky = maps_beside(&d.join("..resource-map.yaml"));
        assert_eq!(sneaky, vec![d.join("resource-map.json")]);
        let home = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(
            d.join("resource-map.json"),
            home.path().join("resource-map.yaml"),
        )
        .unwrap();
        let e = local_maps(&d.join("x.json"), home.path()).unwrap_err();
        assert!(e[0].reason.contains("regular file"), "{e:?}");
        std::fs::remove_file(home.path().join("resource-map.yaml")).unwrap();
        // a FIFO under the map's name is refused at once (never read, so never waited on)
        let fifo = home.path().join("resource-map.yaml");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let e = local_maps(&d.join("x.json"), home.path()).unwrap_err();
        assert!(e[0].reason.contains("regular file"), "{e:?}");
        std::fs::remove_file(&fifo).unwrap();
        std::fs::create_dir(&fifo).unwrap();
        let e = local_maps(&d.join("x.json"), home.path()).unwrap_err();
        assert!(e[0].reason.contains("regular file"), "{e:?}");
        std::fs::remove_dir(&fifo).unwrap();
        let maps = local_maps(&d.join("orders.asl.json"), home.path()).unwrap();
        let i = Integration::of(&res("arn:aws:states:::sns:publish")).unwrap();
        assert_eq!(
            maps.lookup(&i).unwrap().plugin,
            PluginRef::Latest("a".into())
        );
    }

    #[test]
    fn unmapped_integrations_name_pointer_and_entry() {
        let def = json!({"StartAt": "Save", "States": {
            "Save": {"Type": "Task", "Resource": "arn:aws:states:::dynamodb:putItem", "Next": "P"},
            "P": {"Type": "Parallel", "End": true, "Branches": [{"StartAt": "Job", "States": {
                "Job": {"Type": "Task", "Resource": "arn:aws:states:::glue:startJobRun.sync", "Next": "Ask"},
                "Ask": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken", "Next": "Call"},
                "Call": {"Type": "Task", "Resource": "arn:aws:states:::http:invoke", "Next": "Ok"},
                "Ok": {"Type": "Task", "Resource": "arn:aws:states:::sns:publish", "End": true}}}]}}});
        let maps = ResourceMaps::new(vec![Arc::new(map("sns:publish: {plugin: n}"))]);
        let got: Vec<(String, String, bool)> = unmapped(&def, &maps)
            .iter()
            .map(|u| {
                (
                    u.pointer.clone(),
                    u.integration.suggested_entry(),
                    u.is_error(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("/States/Save/Resource".into(), "dynamodb:putItem: {plugin: <plugin>}".into(), true),
                (
                    "/States/P/Branches/0/States/Job/Resource".into(),
                    "glue:startJobRun.sync: {plugin: <plugin>, mode: start_poll, poll_action: <status action>}".into(),
                    true
                ),
                (
                    "/States/P/Branches/0/States/Ask/Resource".into(),
                    "sqs:sendMessage.waitForTaskToken: {plugin: <plugin>}".into(),
                    false
                ),
            ]
        );
    }

    #[test]
    fn envelopes_and_poll_results() {
        // (only nested executions take `.sync:2` in AWS; the envelope names it all the same)
        let i = Integration {
            service: "glue".into(),
            action: "startJobRun".into(),
            suffix: ".sync:2",
        };
        assert_eq!(
            i.candidates(),
            [
                "glue:startJobRun.sync:2",
                "glue:startJobRun.sync",
                "glue:startJobRun",
                "glue:*.sync:2",
                "glue:*.sync",
                "glue:*"
            ]
        );
        let e = Envelope {
            integration: &i,
            resource: "arn:aws:states:::glue:startJobRun.sync:2",
            phase: "poll",
            action: "getJobRun",
            request: &json!({"JobRunId": "jr"}),
            task_token: None,
            poll: Some(3),
        };
        let v: Value = serde_json::from_str(&e.to_json()).unwrap();
        assert_eq!(
            v,
            json!({"integration": "glue:startJobRun", "service": "glue", "action": "getJobRun",
                   "pattern": "sync:2", "phase": "poll", "resource": "arn:aws:states:::glue:startJobRun.sync:2",
                   "request": {"JobRunId": "jr"}, "poll": 3})
        );
        assert_eq!(
            poll_status(&json!({"status": "RUNNING"})),
            Ok(PollStatus::Running)
        );
        assert_eq!(
            poll_status(&json!({"status": "SUCCEEDED", "output": {"a": 1}})),
            Ok(PollStatus::Succeeded(json!({"a": 1})))
        );
        assert_eq!(
            poll_status(&json!({"status": "FAILED", "error": "Glue.Failed", "cause": "boom"})),
            Ok(PollStatus::Failed {
                error: "Glue.Failed".into(),
                cause: "boom".into()
            })
        );
        assert!(poll_status(&json!({"status": "DONE"})).is_err());
        assert!(poll_status(&json!([1])).is_err());
    }
}
