//! Python DAG files parsed in the sandbox: weft's [`PythonDagEvaluator`], which runs a DAG
//! file's top level inside the `weft-airflow-py` component (installed in the plugin store like
//! any plugin) with an empty grant (no filesystem, network or secrets), under fuel, a memory
//! cap and Airflow's `dagbag_import_timeout`, and caches what it found by the blake3 of the
//! component's digest, the file's path and its text (in memory, then under
//! `$WEFT_HOME/cache/py-dags`), so an unchanged file is parsed once per component.
//!
//! A DAG folder's `requirements.txt` packages ([`crate::py_packages`]) are preopened
//! read-only for the parse (and for the file's callables, see [`packages_for`]); their digest
//! joins the cache key, so a changed requirement parses the file again.
//!
//! A file that raises, loops, runs out of memory or imports something missing is an import
//! error with its line and traceback; a missing parser component is an import error that says
//! how to install it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use weft_dag::{OperatorCheck, PyEvaluation, PyImportError, PythonDagEvaluator};
use weft_sandbox::{Grant, Limits, NoSecrets, Sandbox, SandboxConfig};
use weft_store::PluginStore;

use crate::plugin_host::{resolve, PluginHost, PluginRef};
use crate::py_packages::{self, Packages, PackagesError};

/// Name of the parser component in the plugin store.
pub const PARSER_PLUGIN: &str = "weft-airflow-py";

/// Default of Airflow's `dagbag_import_timeout`, in seconds.
pub const DEFAULT_IMPORT_TIMEOUT_SECS: f64 = 30.0;

/// Fuel one parse may burn (a DAG file's top level; ~10 s of guest work).
pub const PARSE_FUEL: u64 = 20_000_000_000;

/// Memory one parse may use.
pub const PARSE_MEMORY_BYTES: usize = 512 << 20;

/// Largest parser output accepted (the DAG structures of one file).
pub const MAX_PARSE_OUTPUT_BYTES: usize = 16 << 20;

/// Cached parse results kept in memory per process.
const MAX_MEMO_ENTRIES: usize = 4096;

/// The import timeout: `$WEFT_DAGBAG_IMPORT_TIMEOUT`, else Airflow's
/// `$AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT`, else 30 s (seconds, fractions allowed).
pub fn import_timeout() -> Duration {
    let from = |k: &str| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s > 0.0)
    };
    let secs = from("WEFT_DAGBAG_IMPORT_TIMEOUT")
        .or_else(|| from("AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT"))
        .unwrap_or(DEFAULT_IMPORT_TIMEOUT_SECS)
        .min(3600.0);
    Duration::from_secs_f64(secs)
}

/// Parses Python DAG files with the `weft-airflow-py` component of one `$WEFT_HOME`.
pub struct SandboxDagParser {
    home: PathBuf,
    timeout: Duration,
    store: OnceLock<Result<Arc<PluginStore>, String>>,
    host: OnceLock<Result<PluginHost, String>>,
    memo: Mutex<HashMap<blake3::Hash, PyEvaluation>>,
}

impl SandboxDagParser {
    /// A parser for the plugin store at `home` (nothing is opened until a file needs parsing).
    pub fn new(home: &Path, timeout: Duration) -> Self {
        Self {
            home: home.to_path_buf(),
            timeout,
            store: OnceLock::new(),
            host: OnceLock::new(),
            memo: Mutex::new(HashMap::new()),
        }
    }

    /// The process's parser for `home` (one sandbox and one memo per home), with
    /// [`import_timeout`].
    pub fn shared(home: &Path) -> Arc<Self> {
        static ALL: OnceLock<Mutex<HashMap<PathBuf, Arc<SandboxDagParser>>>> = OnceLock::new();
        let mut all = ALL
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        all.entry(home.to_path_buf())
            .or_insert_with(|| Arc::new(Self::new(home, import_timeout())))
            .clone()
    }

    /// The plugin store (opened on first use; cheap, no lock).
    fn store(&self) -> Result<&Arc<PluginStore>, String> {
        self.store
            .get_or_init(|| {
                PluginStore::open(&self.home)
                    .map(Arc::new)
                    .map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The sandbox, created on the first parse that misses the caches (not free to create).
    fn host(&self) -> Result<&PluginHost, String> {
        let store = self.store()?.clone();
        self.host
            .get_or_init(|| {
                let sandbox = Sandbox::new(&SandboxConfig {
                    max_memory_bytes: PARSE_MEMORY_BYTES
                        .max(SandboxConfig::default().max_memory_bytes),
                    ..SandboxConfig::default()
                })
                .map_err(|e| e.to_string())?;
                Ok(PluginHost {
                    store,
                    sandbox: Arc::new(sandbox),
                    secrets: Arc::new(NoSecrets),
                })
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    fn cache_file(&self, key: &blake3::Hash) -> PathBuf {
        self.home
            .join("cache/py-dags")
            .join(format!("{}.json", key.to_hex()))
    }

    fn limits(&self) -> Limits {
        Limits {
            fuel: PARSE_FUEL,
            timeout: self.timeout,
            memory_bytes: PARSE_MEMORY_BYTES,
            max_output_bytes: MAX_PARSE_OUTPUT_BYTES,
            ..Limits::default()
        }
    }

    fn run(
        &self,
        host: &PluginHost,
        rec: &weft_store::PluginRecord,
        file: &Path,
        source: &str,
        packages: Option<&Packages>,
    ) -> PyEvaluation {
        let failed = |error: String| {
            PyEvaluation::ImportError(PyImportError {
                line: 0,
                error,
                traceback: None,
            })
        };
        let component = match host.load(rec) {
            Ok(c) => c,
            Err(e) => return failed(format!("cannot load the Python DAG parser: {e}")),
        };
        let mut input = serde_json::json!({"path": file.display().to_string(), "source": source});
        let grant = match packages {
            None => Grant::none(),
            Some(p) => {
                input["packages"] = py_packages::GUEST_PATH.into();
                match Grant::none().with_read_only_dir(&p.dir, py_packages::GUEST_PATH) {
                    Ok(g) => g,
                    Err(e) => {
                        return failed(format!(
                            "cannot show the DAG folder's packages to the parser: {e}"
                        ))
                    }
                }
            }
        };
        let outcome = match host.invoke(
            &component,
            &input.to_string(),
            "{}",
            Arc::new(grant),
            self.limits(),
        ) {
            Ok(o) => o,
            Err(e) => return failed(format!("the Python DAG parser failed: {e}")),
        };
        match outcome.result {
            Ok(text) => match serde_json::from_str(&text)
                .map_err(|e| e.to_string())
                .and_then(|v| PyEvaluation::from_output(&v))
            {
                Ok(ev) => ev,
                Err(e) => failed(format!("the Python DAG parser answered nonsense: {e}")),
            },
            Err(e) => failed(explain(&e.error, &e.cause, self.timeout)),
        }
    }
}

/// An import error's message for a sandbox failure (timeouts and limits in Airflow's words).
fn explain(error: &str, cause: &str, timeout: Duration) -> String {
    match error {
        "Sandbox.Timeout" | "States.Timeout" => format!(
            "DagBag import timeout: importing the file took longer than {} s (dagbag_import_timeout; set WEFT_DAGBAG_IMPORT_TIMEOUT)",
            timeout.as_secs_f64()
        ),
        "Sandbox.FuelExhausted" => format!(
            "DagBag import timeout: the file's top level used its whole evaluation budget ({PARSE_FUEL} units of fuel) before dagbag_import_timeout: {cause}"
        ),
        "Sandbox.MemoryLimit" => format!(
            "DagBag import stopped: the file's top level used more than {} MiB: {cause}",
            PARSE_MEMORY_BYTES >> 20
        ),
        _ => format!("{error}: {cause}"),
    }
}

/// The packages the Python DAG file `file` was last parsed with in this process (its callables
/// run with the same ones), else those of the file's own folder.
pub fn packages_for(home: &Path, file: &Path) -> Result<Option<Packages>, PackagesError> {
    let key = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
    if let Some(p) = used().lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return Ok(p.clone());
    }
    match file.parent() {
        Some(dir) => py_packages::prepare(dir, home),
        None => Ok(None),
    }
}

/// DAG file (canonical) -> the packages it was last parsed with.
fn used() -> &'static Mutex<HashMap<PathBuf, Option<Packages>>> {
    static USED: OnceLock<Mutex<HashMap<PathBuf, Option<Packages>>>> = OnceLock::new();
    USED.get_or_init(Default::default)
}

fn remember(file: &Path, packages: Option<&Packages>) {
    let key = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
    let mut m = used().lock().unwrap_or_else(|e| e.into_inner());
    if m.len() >= MAX_MEMO_ENTRIES * 4 {
        m.clear();
    }
    m.insert(key, packages.cloned());
}

impl PythonDagEvaluator for SandboxDagParser {
    fn evaluate(&self, file: &Path, source: &str) -> PyEvaluation {
        self.evaluate_in(None, file, source)
    }

    fn evaluate_in(&self, folder: Option<&Path>, file: &Path, source: &str) -> PyEvaluation {
        let (packages, problem) = match folder.map(|f| py_packages::prepare(f, &self.home)) {
            Some(Ok(p)) => (p, None),
            Some(Err(e)) => (None, Some(e)),
            None => (None, None),
        };
        remember(file, packages.as_ref());
        let ev = self.evaluate_with(file, source, packages.as_ref());
        match (ev, problem) {
            // a missing module may be one requirements.txt should have brought
            (PyEvaluation::ImportError(mut e), Some(p))
                if e.error.starts_with("ModuleNotFoundError") =>
            {
                e.error = format!(
                    "{} (the DAG folder's requirements.txt is not installed: {p})",
                    e.error
                );
                PyEvaluation::ImportError(e)
            }
            (ev, _) => ev,
        }
    }
}

impl SandboxDagParser {
    fn evaluate_with(
        &self,
        file: &Path,
        source: &str,
        packages: Option<&Packages>,
    ) -> PyEvaluation {
        let fail = |error: String| {
            PyEvaluation::ImportError(PyImportError {
                line: 0,
                error,
                traceback: None,
            })
        };
        let store = match self.store() {
            Ok(s) => s,
            Err(e) => return fail(format!("cannot open the plugin store: {e}")),
        };
        let rec = match resolve(store, &PluginRef::Latest(PARSER_PLUGIN.into())) {
            Ok(r) => r,
            Err(_) => {
                return fail(format!(
                    "Python DAG files need weft's parser component `{PARSER_PLUGIN}`: install it with `weft plugin install target/plugins/{PARSER_PLUGIN}.wasm` (built by `make guests`)"
                ))
            }
        };
        let mut h = blake3::Hasher::new();
        h.update(rec.digest.as_bytes());
        h.update(file.display().to_string().as_bytes());
        h.update(&[0]);
        h.update(source.as_bytes());
        h.update(&[0]);
        h.update(packages.map_or(&[0u8; 32], |p| p.digest.as_bytes()));
        let key = h.finalize();
        if let Some(hit) = self
            .memo
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return hit.clone();
        }
        let cached = self.cache_file(&key);
        let from_disk = std::fs::read(&cached)
            .ok()
            .filter(|b| b.len() <= MAX_PARSE_OUTPUT_BYTES)
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| PyEvaluation::from_output(&v).ok());
        let ev = match from_disk {
            Some(ev) => ev,
            None => {
                let ev = match self.host() {
                    Ok(host) => self.run(host, &rec, file, source, packages),
                    Err(e) => {
                        return fail(format!(
                            "cannot start the sandbox for Python DAG files: {e}"
                        ))
                    }
                };
                // only what the file itself decided is cached: a timeout may pass next time
                if let Some(v) = cacheable(&ev) {
                    let _ = std::fs::create_dir_all(cached.parent().unwrap_or(Path::new(".")));
                    let tmp = cached.with_extension(format!("tmp{}", std::process::id()));
                    if std::fs::write(&tmp, v.to_string()).is_ok() {
                        let _ = std::fs::rename(&tmp, &cached);
                    }
                }
                ev
            }
        };
        let mut memo = self.memo.lock().unwrap_or_else(|e| e.into_inner());
        if memo.len() >= MAX_MEMO_ENTRIES {
            memo.clear();
        }
        memo.insert(key, ev.clone());
        ev
    }
}

/// The parser output to store on disk for an evaluation, `None` for failures of the sandbox
/// (timeouts, limits), which are not a property of the file's text alone.
fn cacheable(ev: &PyEvaluation) -> Option<serde_json::Value> {
    match ev {
        PyEvaluation::Dags(d) => Some(serde_json::json!({
            "dags": d.dags,
            "lines": d.lines,
            "task_lines": d.task_lines,
        })),
        PyEvaluation::ImportError(e) if e.traceback.is_some() => Some(serde_json::json!({
            "import_error": {"line": e.line, "error": e.error, "traceback": e.traceback}
        })),
        PyEvaluation::ImportError(_) => None,
    }
}

/// An operator check that also parses Python DAG files with a [`SandboxDagParser`].
pub struct WithPythonDags<C> {
    pub check: C,
    pub parser: Arc<SandboxDagParser>,
}

impl<C: OperatorCheck> OperatorCheck for WithPythonDags<C> {
    fn is_known_operator(&self, plugin_ref: &str) -> bool {
        self.check.is_known_operator(plugin_ref)
    }

    fn python_evaluator(&self) -> Option<&dyn PythonDagEvaluator> {
        Some(self.parser.as_ref())
    }
}
