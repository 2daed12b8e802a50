//! Remote tasks: the messages a node and a `weft worker` exchange, and the worker's side of
//! running one. This module owns the wire shapes (JSON over HTTP, carried by the server and the
//! CLI; the engine itself speaks no HTTP), the checks a worker makes on what it receives (a
//! plugin blob must hash to the digest the execution pinned, sizes are capped) and the
//! invocation of a received task in the worker's own sandbox.
//!
//! A task message carries everything the sandbox needs and nothing more: the pinned plugin
//! (name, version, blake3 digest), the input and guest context, the deadline, the evaluated
//! grant (the policy layers of the execution role and the task's `Credentials`, as documents;
//! relative `file:` resources resolve on the worker's host) and the values of only those
//! secrets the grant allows. Each try has its own `task_id`, the fencing id: a report or a
//! heartbeat for a try the node no longer waits for is refused.

use crate::cache::StoreArtifacts;
use crate::PluginHost;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use weft_sandbox::{Grant, Invocation, Limits, Outcome, Policy, SecretName, SecretSource};
use weft_store::{Digest, PluginRecord};

/// The error a worker reports when a fetched plugin does not hash to its pinned digest.
pub const PLUGIN_CORRUPT: &str = "Sandbox.PluginCorrupt";
/// Largest task output a node accepts (Step Functions' payload limit).
pub const MAX_OUTPUT_BYTES: usize = 256 * 1024;
/// Largest captured stdout/stderr a node keeps per stream of a remote attempt.
pub const MAX_STDIO_BYTES: usize = 64 * 1024;
/// Most log lines or audit records a node keeps per remote attempt.
pub const MAX_RECORDS: usize = 1000;
/// Longest worker id or host name.
pub const MAX_NAME_LEN: usize = 128;

/// Whether `s` may name a worker, host or queue: 1 to [`MAX_NAME_LEN`] letters, digits, `.`,
/// `_` or `-`.
pub fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_NAME_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// This host's name as workers announce it and task instances record it (`hostname`): the
/// kernel's host name (else `$HOSTNAME`, else `localhost`), reduced to letters, digits, `.`,
/// `_` and `-`, at most 64 characters. Read once per process.
pub fn host_name() -> &'static str {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(|| {
        let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_else(|| "localhost".into());
        let clean: String = raw
            .trim()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                    c
                } else {
                    '-'
                }
            })
            .take(64)
            .collect();
        if clean.is_empty() {
            "localhost".into()
        } else {
            clean
        }
    })
}

/// Most queues one worker may listen to.
pub const MAX_QUEUES: usize = 32;

/// The queue a task goes to when it names none.
pub const DEFAULT_QUEUE: &str = "default";

/// The plugin a task runs, pinned by digest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RemotePlugin {
    pub name: String,
    pub version: String,
    /// blake3, 64 lower-case hex digits.
    pub digest: String,
    /// `task` or `sensor`.
    pub world: String,
}

/// One try of a task, as a node hands it to a worker.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RemoteTask {
    /// Unique per try: the fencing id of this attempt.
    pub task_id: String,
    pub queue: String,
    /// The execution ARN (or DAG run) the task belongs to, for logs.
    pub execution: String,
    /// The state (or DAG task) name.
    pub state: String,
    pub attempt: u32,
    pub plugin: RemotePlugin,
    /// The input JSON text.
    pub input: String,
    /// The guest context JSON text.
    pub ctx: String,
    /// The sandbox deadline.
    pub timeout_ms: u64,
    /// Policy documents, layered (every layer must allow): the evaluated grant.
    pub grant: Vec<Value>,
    /// The values of the secrets the grant allows, by canonical name.
    pub secrets: BTreeMap<String, String>,
    /// How often the worker must heartbeat while the task runs.
    pub heartbeat_ms: u64,
    /// A Python callable's DAG folder packages: the blake3 of their archive (see
    /// [`crate::remote_packages`]), shown read-only at [`crate::py_packages::GUEST_PATH`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packages: Option<String>,
}

/// What a worker sends when it asks for work.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PollRequest {
    pub worker_id: String,
    pub host: String,
    pub queues: Vec<String>,
    /// Concurrent sandboxes the worker runs now.
    pub slots: u32,
    /// Of which busy.
    pub busy: u32,
    /// The worker process's session (random per process): a drain names it, so a process
    /// started later under the same worker id is not drained with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
}

/// A worker stops taking tasks (`weft worker` got SIGTERM): the node hands its session no
/// more tasks and answers its waiting polls at once, while its running tries go on.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DrainRequest {
    pub worker_id: String,
    pub session: String,
}

/// The answer to a poll: a task, or none after the long-poll wait.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PollResponse {
    pub task: Option<RemoteTask>,
    /// Tasks waiting on the worker's queues (after this one was taken).
    pub queue_depth: u64,
}

/// A heartbeat of a running try.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HeartbeatRequest {
    pub worker_id: String,
    pub task_id: String,
}

/// The answer to a heartbeat: `cancel` asks the worker to stop the guest (StopExecution, the
/// task's timeout on the node).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HeartbeatResponse {
    pub cancel: bool,
}

/// A task error on the wire.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RemoteError {
    pub error: String,
    pub cause: String,
}

/// What one try produced on the worker.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct RemoteOutcome {
    /// The output JSON text (on success).
    pub output: Option<String>,
    /// The task error (on failure).
    pub error: Option<RemoteError>,
    #[serde(default)]
    pub stdout: String,
    #[serde(default)]
    pub stderr: String,
    #[serde(default)]
    pub logs: Vec<Value>,
    #[serde(default)]
    pub audit: Vec<Value>,
    #[serde(default)]
    pub fuel_used: u64,
    #[serde(default)]
    pub duration_ms: f64,
}

/// Cuts `s` to at most `max` bytes, on a character boundary.
fn truncate_str(s: &mut String, max: usize) {
    s.truncate(weft_sandbox::floor_char_boundary(s, max));
}

impl RemoteOutcome {
    /// Caps what the outcome may make a node keep: an output over [`MAX_OUTPUT_BYTES`] becomes
    /// `States.DataLimitExceeded`, streams are cut to [`MAX_STDIO_BYTES`], record lists to
    /// [`MAX_RECORDS`], the error name to 256 bytes and its cause to 32 KiB; an outcome with
    /// neither output nor error becomes `States.TaskFailed`.
    pub fn cap(&mut self) {
        if self
            .output
            .as_ref()
            .is_some_and(|t| t.len() > MAX_OUTPUT_BYTES)
        {
            self.output = None;
            self.error = Some(RemoteError {
                error: "States.DataLimitExceeded".into(),
                cause: format!("the task output is larger than {MAX_OUTPUT_BYTES} bytes"),
            });
        }
        if self.output.is_none() && self.error.is_none() {
            self.error = Some(RemoteError {
                error: "States.TaskFailed".into(),
                cause: "the worker reported neither an output nor an error".into(),
            });
        }
        truncate_str(&mut self.stdout, MAX_STDIO_BYTES);
        truncate_str(&mut self.stderr, MAX_STDIO_BYTES);
        self.logs.truncate(MAX_RECORDS);
        self.audit.truncate(MAX_RECORDS);
        if let Some(e) = &mut self.error {
            truncate_str(&mut e.error, 256);
            truncate_str(&mut e.cause, 32 * 1024);
        }
    }

    /// Makes the outcome's JSON at most `budget` bytes (a report is one request, whose body the
    /// node limits): [`Self::cap`]ped, then, while it is too large, its log and audit records
    /// are halved from the end, its streams cut, and last its output replaced by
    /// `States.DataLimitExceeded` (an error alone loses its cause).
    pub fn fit(&mut self, budget: usize) {
        self.cap();
        let mut stdio = MAX_STDIO_BYTES;
        while serde_json::to_vec(self).map_or(0, |b| b.len()) > budget {
            if !self.logs.is_empty() || !self.audit.is_empty() {
                self.logs.truncate(self.logs.len() / 2);
                self.audit.truncate(self.audit.len() / 2);
            } else if stdio > 0 && !(self.stdout.is_empty() && self.stderr.is_empty()) {
                stdio /= 4;
                truncate_str(&mut self.stdout, stdio);
                truncate_str(&mut self.stderr, stdio);
            } else if self.output.is_some() {
                self.output = None;
                self.error = Some(RemoteError {
                    error: "States.DataLimitExceeded".into(),
                    cause: format!("the task's report is larger than {budget} bytes"),
                });
            } else {
                if let Some(e) = &mut self.error {
                    e.cause.clear();
                }
                return;
            }
        }
    }

    /// An outcome that is only an error (the task never reached the sandbox).
    pub fn failed(error: &str, cause: impl Into<String>) -> Self {
        Self {
            error: Some(RemoteError {
                error: error.to_string(),
                cause: cause.into(),
            }),
            ..Self::default()
        }
    }

    fn from_outcome(o: Outcome) -> Self {
        let (output, error) = match o.result {
            Ok(text) => (Some(text), None),
            Err(e) => (
                None,
                Some(RemoteError {
                    error: e.error,
                    cause: e.cause,
                }),
            ),
        };
        Self {
            output,
            error,
            stdout: o.stdout,
            stderr: o.stderr,
            logs: o
                .logs
                .iter()
                .filter_map(|l| serde_json::to_value(l).ok())
                .collect(),
            audit: o
                .audit
                .iter()
                .filter_map(|a| serde_json::to_value(a).ok())
                .collect(),
            fuel_used: o.fuel_used,
            duration_ms: o.duration.as_secs_f64() * 1000.0,
        }
    }
}

/// A worker's report of one try.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TaskReport {
    pub worker_id: String,
    pub task_id: String,
    pub outcome: RemoteOutcome,
    /// A poll the node answers with the report, without waiting: the slot that reported takes
    /// its next task in the same round trip (a [`PollResponse`], `task` null when none is
    /// queued). Absent: the answer is `{}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<PollRequest>,
}

/// Why a received task cannot run.
#[derive(Debug, thiserror::Error)]
pub enum RemoteTaskError {
    #[error("{PLUGIN_CORRUPT}: plugin {name} was fetched as blake3 {got}, but the execution pinned {pinned}; refused, nothing was written")]
    PluginCorrupt {
        name: String,
        pinned: String,
        got: String,
    },
    #[error("{PLUGIN_CORRUPT}: plugin {name}: more than {cap} bytes were served; refused")]
    PluginTooLarge { name: String, cap: u64 },
    #[error("{PLUGIN_CORRUPT}: the DAG folder's Python packages were fetched as blake3 {got}, but the task pinned {pinned}; refused, nothing was written")]
    PackagesCorrupt { pinned: String, got: String },
    #[error("{PLUGIN_CORRUPT}: the DAG folder's Python packages {digest}: {reason}; refused, nothing was kept")]
    PackagesRefused { digest: String, reason: String },
    #[error("States.TaskFailed: task message field {field}: {reason}")]
    BadMessage { field: &'static str, reason: String },
    #[error("States.TaskFailed: fetching plugin {name} #{digest}: {reason}")]
    Fetch {
        name: String,
        digest: String,
        reason: String,
    },
    #[error(transparent)]
    Engine(#[from] crate::EngineError),
}

impl RemoteTaskError {
    /// The ASL error name a report carries.
    pub fn error_name(&self) -> &'static str {
        match self {
            Self::PluginCorrupt { .. }
            | Self::PluginTooLarge { .. }
            | Self::PackagesCorrupt { .. }
            | Self::PackagesRefused { .. } => PLUGIN_CORRUPT,
            _ => "States.TaskFailed",
        }
    }

    /// The outcome reported for this error.
    pub fn outcome(&self) -> RemoteOutcome {
        RemoteOutcome::failed(self.error_name(), self.to_string())
    }
}

/// Reads a plugin blob from `body` (at most `cap` bytes), hashing as it reads, and returns it
/// only when it hashes to `pinned`.
pub fn read_verified(
    name: &str,
    pinned: &Digest,
    body: impl Read,
    cap: u64,
) -> Result<Vec<u8>, RemoteTaskError> {
    let mut hasher = blake3::Hasher::new();
    let mut bytes = Vec::new();
    let mut limited = body.take(cap + 1);
    let mut buf = [0u8; 64 * 1024];
    loop {
        let n = limited.read(&mut buf).map_err(|e| RemoteTaskError::Fetch {
            name: name.to_string(),
            digest: pinned.to_hex().to_string(),
            reason: e.to_string(),
        })?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        bytes.extend_from_slice(&buf[..n]);
        if bytes.len() as u64 > cap {
            return Err(RemoteTaskError::PluginTooLarge {
                name: name.to_string(),
                cap,
            });
        }
    }
    let got = Digest::from_hash(hasher.finalize());
    if got != *pinned {
        return Err(RemoteTaskError::PluginCorrupt {
            name: name.to_string(),
            pinned: pinned.to_hex().to_string(),
            got: got.to_hex().to_string(),
        });
    }
    Ok(bytes)
}

/// The secrets a task message carries (and nothing else).
pub struct GrantedSecrets(pub BTreeMap<String, String>);

impl SecretSource for GrantedSecrets {
    fn secret(&self, name: &SecretName) -> Option<String> {
        self.0.get(name.as_str()).cloned()
    }
}

/// The values of the secrets in `source` that `grant` allows `secrets:Get` on.
pub fn granted_secrets(source: &dyn SecretSource, grant: &Grant) -> BTreeMap<String, String> {
    source
        .names()
        .into_iter()
        .filter(|n| grant.evaluate("secrets:Get", &n.resource()).allowed())
        .filter_map(|n| source.secret(&n).map(|v| (n.as_str().to_string(), v)))
        .collect()
}

/// [`granted_secrets`] for a task whose grant is `layers` (relative `file:` resources against
/// `base_dir`): decided for requests only, nothing of the node's filesystem is opened (fs grants
/// name the worker host's files). No layer (no role): no secret, and none is looked at.
pub fn secrets_for_layers(
    source: &dyn SecretSource,
    layers: &[Arc<Policy>],
    base_dir: &Path,
) -> BTreeMap<String, String> {
    if layers.is_empty() {
        return BTreeMap::new();
    }
    granted_secrets(source, &Grant::for_requests(layers.to_vec(), base_dir))
}

/// Ensures the plugin of `task` is in the worker's store (fetching it with `fetch` when it is
/// not, verified against the pinned digest before it is written) and returns its record.
pub fn ensure_plugin(
    host: &PluginHost,
    plugin: &RemotePlugin,
    fetch: impl FnOnce(&Digest) -> Result<Vec<u8>, RemoteTaskError>,
) -> Result<PluginRecord, RemoteTaskError> {
    let digest: Digest = plugin
        .digest
        .parse()
        .ok()
        .filter(|_| plugin.digest.len() == 64)
        .ok_or_else(|| RemoteTaskError::BadMessage {
            field: "plugin.digest",
            reason: format!("`{}` is not a blake3 digest (64 hex digits)", plugin.digest),
        })?;
    let blobs = host.store.blobs();
    if !blobs.contains(&digest) {
        let bytes = fetch(&digest)?;
        // read_verified checked it; put hashes again and must name the same blob
        let stored = blobs.put(&bytes).map_err(crate::EngineError::from)?;
        if stored != digest {
            return Err(RemoteTaskError::PluginCorrupt {
                name: plugin.name.clone(),
                pinned: digest.to_hex().to_string(),
                got: stored.to_hex().to_string(),
            });
        }
    }
    Ok(PluginRecord {
        name: plugin.name.clone(),
        version: plugin.version.clone(),
        digest,
        world: plugin.world.clone(),
        manifest: Value::Null,
        installed_at: 0,
    })
}

/// Runs one received task in the worker's sandbox (a sensor-world plugin is poked: its output
/// is `true` or `false`): the plugin by its pinned digest (the blob
/// store re-hashes it on every read, so no other code can run), the message's grant with
/// relative `file:` resources under `base_dir` (and `packages`, the folder of the message's
/// packages, read-only at [`crate::py_packages::GUEST_PATH`]), only the message's secrets, its
/// deadline, and `cancel` polled while the guest runs.
pub fn run_task(
    host: &PluginHost,
    task: &RemoteTask,
    rec: &PluginRecord,
    base_dir: &std::path::Path,
    packages: Option<&std::path::Path>,
    cancel: Option<crate::plugin_host::Cancel>,
) -> Result<RemoteOutcome, RemoteTaskError> {
    let mut layers = Vec::with_capacity(task.grant.len());
    for (i, doc) in task.grant.iter().enumerate() {
        let p = Policy::from_value(doc).map_err(|errs| RemoteTaskError::BadMessage {
            field: "grant",
            reason: format!(
                "layer {i}: {}",
                errs.iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        })?;
        layers.push(Arc::new(p));
    }
    let mut grant = Grant::compile(layers, base_dir);
    if let Some(dir) = packages {
        grant = grant
            .with_read_only_dir(dir, crate::py_packages::GUEST_PATH)
            .map_err(|reason| RemoteTaskError::PackagesRefused {
                digest: task.packages.clone().unwrap_or_default(),
                reason: format!("cannot show them to the callable: {reason}"),
            })?;
    }
    let digest = blake3::Hash::from_bytes(*rec.digest.as_bytes());
    let store = &host.store;
    let d = rec.digest;
    let component = host
        .sandbox
        .load(
            &format!("{}@{}", rec.name, rec.version),
            digest,
            || {
                store
                    .blobs()
                    .get_capped(&d, weft_plugins::limits::MAX_COMPONENT_BYTES)
                    .map_err(|e| e.to_string())
            },
            Some(&StoreArtifacts(store)),
        )
        .map_err(crate::EngineError::from)?;
    let limits = Limits {
        timeout: Duration::from_millis(task.timeout_ms.clamp(1, 365 * 24 * 3600 * 1000)),
        ..Limits::default()
    };
    let inv = Invocation {
        input: &task.input,
        ctx: &task.ctx,
        grant: Arc::new(grant),
        limits,
        secrets: Arc::new(GrantedSecrets(task.secrets.clone())),
        heartbeat: None,
        cancel,
    };
    // the world of the verified component decides, not the message: a sensor is poked
    let outcome = if component.world == weft_sandbox::World::Sensor {
        host.sandbox.poke(&component, inv)
    } else {
        host.sandbox.invoke(&component, inv)
    }
    .map_err(crate::EngineError::from)?;
    Ok(RemoteOutcome::from_outcome(outcome))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blob_is_accepted_only_with_its_pinned_digest() {
        let good = b"(component)".to_vec();
        let pinned = Digest::of(&good);
        assert_eq!(
            read_verified("echo", &pinned, &good[..], 1 << 20).unwrap(),
            good
        );
        let mut tampered = good.clone();
        tampered[0] ^= 1;
        let e = read_verified("echo", &pinned, &tampered[..], 1 << 20).unwrap_err();
        assert_eq!(e.error_name(), PLUGIN_CORRUPT);
        assert!(e.to_string().contains(&pinned.to_hex().to_string()), "{e}");
        let e = read_verified("echo", &pinned, &good[..], 4).unwrap_err();
        assert_eq!(e.error_name(), PLUGIN_CORRUPT);
        assert!(e.to_string().contains("more than 4 bytes"), "{e}");
    }

    #[test]
    fn a_task_message_carries_only_granted_secrets() {
        struct Two;
        impl SecretSource for Two {
            fn secret(&self, name: &SecretName) -> Option<String> {
                Some(format!("value-of-{name}"))
            }
            fn names(&self) -> Vec<SecretName> {
                vec![
                    SecretName::parse("db-password").unwrap(),
                    SecretName::parse("root-key").unwrap(),
                ]
            }
        }
        let p = Policy::parse(
            r#"{"Statement":[{"Effect":"Allow","Action":"secrets:Get","Resource":"secret:db-*"}]}"#,
        )
        .unwrap();
        let p = Arc::new(p);
        let g = Grant::compile(vec![p.clone()], std::path::Path::new("/"));
        let s = granted_secrets(&Two, &g);
        assert_eq!(s.len(), 1);
        assert_eq!(s["db-password"], "value-of-db-password");
        assert_eq!(secrets_for_layers(&Two, &[p], Path::new("/")), s);
        // no grant at all: nothing
        let none = Grant::compile(vec![], std::path::Path::new("/"));
        assert!(granted_secrets(&Two, &none).is_empty());
        assert!(secrets_for_layers(&Two, &[], Path::new("/")).is_empty());
    }

    #[test]
    fn a_message_with_a_bad_digest_is_refused_before_any_fetch() {
        let home = tempfile::tempdir().unwrap();
        let store = Arc::new(weft_store::PluginStore::open(home.path()).unwrap());
        let sandbox =
            Arc::new(weft_sandbox::Sandbox::new(&weft_sandbox::SandboxConfig::default()).unwrap());
        let host = PluginHost::new(store, sandbox).unwrap();
        let plugin = RemotePlugin {
            name: "echo".into(),
            version: "1".into(),
            digest: "../../etc/passwd".into(),
            world: "task".into(),
        };
        let e = ensure_plugin(&host, &plugin, |_| panic!("must not fetch")).unwrap_err();
        assert!(e.to_string().contains("plugin.digest"), "{e}");
        // a fetch serving other bytes leaves nothing in the store
        let pinned = Digest::of(b"real");
        let plugin = RemotePlugin {
            digest: pinned.to_hex().to_string(),
            ..plugin
        };
        let e = ensure_plugin(&host, &plugin, |d| {
            read_verified("echo", d, &b"fake"[..], 1 << 20)
        })
        .unwrap_err();
        assert_eq!(e.error_name(), PLUGIN_CORRUPT);
        assert!(!host.store.blobs().contains(&pinned));
        assert!(!host.store.blobs().contains(&Digest::of(b"fake")));
    }

    #[test]
    fn an_outcome_is_cut_to_fit_a_report_keeping_what_matters_longest() {
        let outcome = |records: usize, stdio: usize, output: usize| RemoteOutcome {
            output: Some(format!("\"{}\"", "o".repeat(output))),
            stdout: "é".repeat(stdio),
            stderr: "e".repeat(stdio),
            logs: vec![Value::String("l".repeat(1000)); records],
            audit: vec![Value::String("a".repeat(1000)); records],
            ..Default::default()
        };
        let fitted = |mut o: RemoteOutcome, budget: usize| {
            o.fit(budget);
            assert!(serde_json::to_vec(&o).unwrap().len() <= budget);
            o
        };
        // an outcome that fits is sent whole
        let small = outcome(3, 10, 10);
        assert_eq!(fitted(small.clone(), 1 << 20), small);
        // a guest that logs too much: records go first, the output stays
        let o = fitted(outcome(1000, 10, 10), 1 << 20);
        assert!(
            !o.logs.is_empty() && o.logs.len() < 1000,
            "{}",
            o.logs.len()
        );
        assert_eq!(o.output, small.output);
        // then its streams (cut on a character boundary), then the output itself
        let o = fitted(outcome(10, 60_000, 10), 40_000);
        assert!(o.logs.is_empty() && o.stdout.len() < 60_000 && o.output.is_some());
        let o = fitted(outcome(0, 0, 200_000), 100_000);
        assert_eq!(o.output, None);
        assert_eq!(o.error.unwrap().error, "States.DataLimitExceeded");
        // the node's caps apply first: an output over the payload limit is an error
        let o = fitted(outcome(0, 0, MAX_OUTPUT_BYTES + 1), 1 << 20);
        assert_eq!(o.error.unwrap().error, "States.DataLimitExceeded");
    }
}
