//! `weft plugin build DIR` and `weft plugin new --lang rust|python|js NAME`: turning an
//! operator's source directory into a weft component, whatever language it is written in.
//!
//! - **Language detection**: `Cargo.toml` -> Rust, `pyproject.toml` or `app.py` -> Python,
//!   `package.json` -> JavaScript ([`detect`]).
//! - **Python**: componentize-py (PyPI, pinned) builds the component from the operator's module,
//!   weft's Python SDK (embedded in this crate) and the operator's pure-Python
//!   `requirements.txt` (pip-installed into the build directory, so they are sealed inside the
//!   component's digest). componentize-py's runtime imports `wasi:sockets/*`, which weft never
//!   provides: [`stub_sockets`] composes the component with a generated stub whose functions trap,
//!   so the result imports only what `inspect_component` allows.
//! - **JavaScript**: componentize-js (npm, pinned) builds the component from a generated entry
//!   module that wraps the operator's `run`/`poke` with weft's JS SDK; `-d http fetch-event`
//!   drops the wasi:http imports. The SDK reads files through `wasi:filesystem` (only the grant's
//!   preopens exist).
//! - **Rust**: Debian's toolchain with build-std for `wasm32-wasip1`, then the preview1 adapter
//!   (see `scripts/guests.sh` and [`crate::componentize`]).
//!
//! The componentizers are installed on first use into a tools directory (`$WEFT_HOME/tools` for
//! the CLI, `target/polyglot-tools` for `scripts/polyglot.sh`); a registry that cannot be reached
//! gives [`BuildError::ToolInstall`] naming the command that failed. A build is skipped when
//! nothing that goes into the component changed since the last one (a blake3 stamp of every
//! input).

use crate::inspect_component;
use std::path::{Path, PathBuf};
use std::process::Command;

/// componentize-py release installed from PyPI.
pub const COMPONENTIZE_PY_VERSION: &str = "0.25.1";
/// @bytecodealliance/componentize-js release installed from npm.
pub const COMPONENTIZE_JS_VERSION: &str = "0.23.0";
/// WASI release whose WIT (shipped with jco, a dependency of componentize-js) the JS SDK imports.
const JS_WASI_WIT: &str = "0.2.12";

const WIT: &str = include_str!("../../../guest-sdk/wit/operator.wit");
const PY_SDK: &[(&str, &str)] = &[
    (
        "weft/__init__.py",
        include_str!("../../../guest-sdk/python/weft/__init__.py"),
    ),
    (
        "weft/_export.py",
        include_str!("../../../guest-sdk/python/weft/_export.py"),
    ),
    (
        "weft/_local.py",
        include_str!("../../../guest-sdk/python/weft/_local.py"),
    ),
    (
        "weft/testing.py",
        include_str!("../../../guest-sdk/python/weft/testing.py"),
    ),
];
const JS_SDK: &str = include_str!("../../../guest-sdk/js/weft.js");

/// An operator's source language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Rust,
    Python,
    Js,
}

impl Lang {
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "rust" | "rs" => Some(Self::Rust),
            "python" | "py" => Some(Self::Python),
            "js" | "javascript" | "node" => Some(Self::Js),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rust => "rust",
            Self::Python => "python",
            Self::Js => "js",
        }
    }
}

/// Why a build (or a scaffold) failed; every message names what to do next.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{}: cannot tell the operator's language: expected Cargo.toml (Rust), pyproject.toml or app.py (Python), or package.json (JavaScript)", dir.display())]
    UnknownLanguage { dir: PathBuf },
    #[error("cannot install {tool} into {}: `{command}` failed: {reason}\n(is the package registry reachable? set a proxy or pre-install it there)", cache.display())]
    ToolInstall {
        tool: String,
        cache: PathBuf,
        command: String,
        reason: String,
    },
    #[error("{}: {reason}", dir.display())]
    Project { dir: PathBuf, reason: String },
    #[error("{tool} failed building {}:\n{output}", dir.display())]
    Tool {
        tool: String,
        dir: PathBuf,
        output: String,
    },
    #[error("{}: {what}: {source}", path.display())]
    Io {
        path: PathBuf,
        what: &'static str,
        source: std::io::Error,
    },
    #[error("{}: the built component is not a weft operator: {reason}", dir.display())]
    NotAnOperator { dir: PathBuf, reason: String },
    #[error("{}: cannot stub out componentize-py's wasi:sockets imports: {reason}", dir.display())]
    Stub { dir: PathBuf, reason: String },
}

fn io(path: &Path, what: &'static str) -> impl FnOnce(std::io::Error) -> BuildError {
    let path = path.to_path_buf();
    move |source| BuildError::Io { path, what, source }
}

/// Detects the language of the operator in `dir`.
pub fn detect(dir: &Path) -> Result<Lang, BuildError> {
    if dir.join("Cargo.toml").is_file() {
        Ok(Lang::Rust)
    } else if dir.join("pyproject.toml").is_file() || dir.join("app.py").is_file() {
        Ok(Lang::Python)
    } else if dir.join("package.json").is_file() {
        Ok(Lang::Js)
    } else {
        Err(BuildError::UnknownLanguage {
            dir: dir.to_path_buf(),
        })
    }
}

/// Where and how to build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Directory the component (`NAME.wasm`) and its sidecar (`NAME.plugin.json`) are written to.
    pub out_dir: PathBuf,
    /// Where the componentizers are installed (created on first use).
    pub tools_dir: PathBuf,
    /// Scratch space (generated entry modules, bundled dependencies, stamps).
    pub work_dir: PathBuf,
    /// Rebuild even when the stamp says nothing changed.
    pub force: bool,
    /// Python interpreter used to run pip and componentize-py.
    pub python: String,
    /// npm executable.
    pub npm: String,
}

impl BuildOptions {
    /// Defaults rooted at `$WEFT_HOME` (`tools/`, `build/`), writing into `out_dir`.
    pub fn under_home(home: &Path, out_dir: &Path) -> Self {
        Self {
            out_dir: out_dir.to_path_buf(),
            tools_dir: home.join("tools"),
            work_dir: home.join("build"),
            force: false,
            python: std::env::var("WEFT_PYTHON").unwrap_or_else(|_| "python3".into()),
            npm: std::env::var("WEFT_NPM").unwrap_or_else(|_| "npm".into()),
        }
    }
}

/// What a build produced.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Built {
    pub name: String,
    pub version: String,
    pub lang: &'static str,
    /// `task` or `sensor`.
    pub world: String,
    pub wasm: PathBuf,
    pub sidecar: PathBuf,
    /// False when the existing output was up to date.
    pub rebuilt: bool,
    pub bytes: u64,
}

impl std::fmt::Display for Built {
    /// `built NAME@VERSION (LANG, WORLD world, SIZE MB) -> PATH` (or `up to date:`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}@{} ({}, {} world, {:.1} MB) -> {}",
            if self.rebuilt { "built" } else { "up to date:" },
            self.name,
            self.version,
            self.lang,
            self.world,
            self.bytes as f64 / 1e6,
            self.wasm.display()
        )
    }
}

/// The operator's metadata: `weft-plugin.json` (name, version, description, grant, and for
/// Python/JS optionally `main` and `world`), falling back to the directory name.
#[derive(Debug, Clone)]
struct Meta {
    name: String,
    version: String,
    description: String,
    grant: Option<serde_json::Value>,
    main: Option<String>,
    world: Option<String>,
}

fn read_meta(dir: &Path) -> Result<Meta, BuildError> {
    let path = dir.join("weft-plugin.json");
    let v: serde_json::Value = match std::fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b).map_err(|e| BuildError::Project {
            dir: dir.to_path_buf(),
            reason: format!("weft-plugin.json:{}: {e}", e.line()),
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => serde_json::json!({}),
        Err(e) => return Err(io(&path, "read")(e)),
    };
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
    let dir_name = dir
        .canonicalize()
        .ok()
        .and_then(|d| d.file_name().map(|f| f.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "plugin".into());
    let name = s("name").unwrap_or(dir_name);
    if !crate::manifest::valid_name(&name) {
        return Err(BuildError::Project {
            dir: dir.to_path_buf(),
            reason: format!("`{name}` is not a valid plugin name (lowercase letters, digits, - _ .; set \"name\" in weft-plugin.json)"),
        });
    }
    Ok(Meta {
        name,
        version: s("version").unwrap_or_else(|| "0.1.0".into()),
        description: s("description").unwrap_or_default(),
        grant: v.get("grant").cloned(),
        main: s("main"),
        world: s("world"),
    })
}

/// Builds the operator in `dir` into `opts.out_dir/NAME.wasm` (+ `NAME.plugin.json`).
pub fn build(dir: &Path, opts: &BuildOptions) -> Result<Built, BuildError> {
    let lang = detect(dir)?;
    let mut opts = opts.clone();
    for p in [&mut opts.out_dir, &mut opts.tools_dir, &mut opts.work_dir] {
        std::fs::create_dir_all(&*p).map_err(io(p, "create directory"))?;
        *p = p.canonicalize().map_err(io(p, "resolve directory"))?;
    }
    let opts = &opts;
    let meta = read_meta(dir)?;
    std::fs::create_dir_all(&opts.out_dir).map_err(io(&opts.out_dir, "create output directory"))?;
    let wasm = opts.out_dir.join(format!("{}.wasm", meta.name));
    let sidecar = opts.out_dir.join(format!("{}.plugin.json", meta.name));
    let work = opts.work_dir.join(lang.as_str()).join(&meta.name);
    std::fs::create_dir_all(&work).map_err(io(&work, "create build directory"))?;

    let stamp = input_stamp(dir, lang)?;
    let stamp_file = work.join("stamp");
    let up_to_date = !opts.force
        && wasm.is_file()
        && sidecar.is_file()
        && std::fs::read_to_string(&stamp_file)
            .map(|s| s.trim() == stamp)
            .unwrap_or(false);
    let bytes = if up_to_date {
        std::fs::read(&wasm).map_err(io(&wasm, "read component"))?
    } else {
        let bytes = match lang {
            Lang::Python => build_python(dir, &meta, &work, opts)?,
            Lang::Js => build_js(dir, &meta, &work, opts)?,
            Lang::Rust => build_rust(dir, &work)?,
        };
        let tmp = wasm.with_extension("wasm.tmp");
        std::fs::write(&tmp, &bytes).map_err(io(&tmp, "write component"))?;
        std::fs::rename(&tmp, &wasm).map_err(io(&wasm, "rename component into place"))?;
        bytes
    };
    let info = inspect_component(&bytes).map_err(|reason| BuildError::NotAnOperator {
        dir: dir.to_path_buf(),
        reason,
    })?;
    let mut side = serde_json::json!({
        "name": meta.name,
        "version": meta.version,
        "description": meta.description,
    });
    if let Some(g) = &meta.grant {
        side["grant"] = g.clone();
    }
    let side_text = serde_json::to_string_pretty(&side).expect("json") + "\n";
    if std::fs::read_to_string(&sidecar).ok().as_deref() != Some(side_text.as_str()) {
        std::fs::write(&sidecar, side_text).map_err(io(&sidecar, "write sidecar"))?;
    }
    if !up_to_date {
        std::fs::write(&stamp_file, &stamp).map_err(io(&stamp_file, "write stamp"))?;
    }
    Ok(Built {
        name: meta.name,
        version: meta.version,
        lang: lang.as_str(),
        world: info.world,
        wasm,
        sidecar,
        rebuilt: !up_to_date,
        bytes: bytes.len() as u64,
    })
}

/// blake3 over every input of the component: the operator's files (minus build outputs, tests
/// and fixtures), the embedded SDK and WIT, and the componentizer versions.
fn input_stamp(dir: &Path, lang: Lang) -> Result<String, BuildError> {
    let mut h = blake3::Hasher::new();
    h.update(lang.as_str().as_bytes());
    h.update(WIT.as_bytes());
    for (n, t) in PY_SDK {
        h.update(n.as_bytes());
        h.update(t.as_bytes());
    }
    h.update(JS_SDK.as_bytes());
    h.update(COMPONENTIZE_PY_VERSION.as_bytes());
    h.update(COMPONENTIZE_JS_VERSION.as_bytes());
    h.update(env!("CARGO_PKG_VERSION").as_bytes());
    // The build logic itself (entry modules, flags, the sockets stub).
    h.update(include_str!("build.rs").as_bytes());
    let mut files = Vec::new();
    collect_sources(dir, dir, &mut files)?;
    files.sort();
    for rel in files {
        let p = dir.join(&rel);
        h.update(rel.to_string_lossy().as_bytes());
        h.update(&std::fs::read(&p).map_err(io(&p, "read"))?);
    }
    Ok(h.finalize().to_hex().to_string())
}

const SKIP_DIRS: &[&str] = &[
    "target",
    "build",
    "node_modules",
    "__pycache__",
    ".git",
    "fixtures",
    "tests",
    "test",
    ".venv",
];

fn collect_sources(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), BuildError> {
    for e in std::fs::read_dir(dir).map_err(io(dir, "read directory"))? {
        let e = e.map_err(io(dir, "read directory"))?;
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        let ft = e.file_type().map_err(io(&p, "stat"))?;
        if ft.is_dir() {
            if !SKIP_DIRS.contains(&name.as_str()) && !name.starts_with('.') {
                collect_sources(root, &p, out)?;
            }
        } else if ft.is_file()
            && !name.ends_with(".wasm")
            && !name.starts_with("test_")
            && !name.contains(".test.")
        {
            out.push(p.strip_prefix(root).unwrap_or(&p).to_path_buf());
        }
    }
    Ok(())
}

fn run_tool(mut cmd: Command, tool: &str, dir: &Path) -> Result<String, BuildError> {
    let shown = format!("{cmd:?}");
    let out = cmd.output().map_err(|e| BuildError::Tool {
        tool: tool.to_string(),
        dir: dir.to_path_buf(),
        output: format!("cannot run {shown}: {e}"),
    })?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        return Err(BuildError::Tool {
            tool: tool.to_string(),
            dir: dir.to_path_buf(),
            output: tail(&text, 40),
        });
    }
    Ok(text)
}

fn tail(s: &str, lines: usize) -> String {
    let v: Vec<&str> = s.trim_end().lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}

fn write_file(path: &Path, text: &str) -> Result<(), BuildError> {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).map_err(io(p, "create directory"))?;
    }
    if std::fs::read_to_string(path).ok().as_deref() == Some(text) {
        return Ok(());
    }
    std::fs::write(path, text).map_err(io(path, "write"))
}

// ---- componentizers ------------------------------------------------------------------------

/// Installs componentize-py into `tools/py` (pip --target) unless present; returns the
/// directory to put on PYTHONPATH (its `bin/componentize-py` is the entry script).
pub fn ensure_componentize_py(tools: &Path, python: &str) -> Result<PathBuf, BuildError> {
    let dir = tools.join("py");
    let marker = dir.join(format!(
        "componentize_py-{COMPONENTIZE_PY_VERSION}.dist-info"
    ));
    if marker.is_dir() && dir.join("bin/componentize-py").is_file() {
        return Ok(dir);
    }
    std::fs::create_dir_all(&dir).map_err(io(&dir, "create tools directory"))?;
    let spec = format!("componentize-py=={COMPONENTIZE_PY_VERSION}");
    let mut cmd = Command::new(python);
    cmd.args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--retries",
        "2",
        "--timeout",
        "20",
        "--upgrade",
        "--target",
    ])
    .arg(&dir)
    .arg(&spec);
    let shown = format!("{python} -m pip install --target {} {spec}", dir.display());
    let out = cmd.output().map_err(|e| BuildError::ToolInstall {
        tool: "componentize-py".into(),
        cache: dir.clone(),
        command: shown.clone(),
        reason: format!(
            "cannot run {python}: {e} (install Python 3.10+ with pip, or set WEFT_PYTHON)"
        ),
    })?;
    if !out.status.success() || !marker.is_dir() {
        return Err(BuildError::ToolInstall {
            tool: "componentize-py".into(),
            cache: dir,
            command: shown,
            reason: tail(&String::from_utf8_lossy(&out.stderr), 6),
        });
    }
    Ok(dir)
}

/// Installs @bytecodealliance/componentize-js into `tools/js` (npm) unless present; returns the
/// package root (`node_modules/.bin/componentize-js` lives below it).
pub fn ensure_componentize_js(tools: &Path, npm: &str) -> Result<PathBuf, BuildError> {
    let dir = tools.join("js");
    let pkg = dir.join("node_modules/@bytecodealliance/componentize-js/package.json");
    let have = std::fs::read_to_string(&pkg)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| {
            v.get("version")
                .and_then(|x| x.as_str())
                .map(str::to_string)
        });
    if have.as_deref() == Some(COMPONENTIZE_JS_VERSION)
        && dir.join("node_modules/.bin/componentize-js").exists()
    {
        return Ok(dir);
    }
    std::fs::create_dir_all(&dir).map_err(io(&dir, "create tools directory"))?;
    let pj = dir.join("package.json");
    if !pj.is_file() {
        write_file(&pj, "{\"name\":\"weft-polyglot-tools\",\"private\":true}\n")?;
    }
    let spec = format!("@bytecodealliance/componentize-js@{COMPONENTIZE_JS_VERSION}");
    let mut cmd = Command::new(npm);
    cmd.current_dir(&dir)
        .args([
            "install",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            "--save-exact",
            "--fetch-retries=1",
            "--fetch-timeout=30000",
        ])
        .arg(&spec);
    let shown = format!("cd {} && {npm} install {spec}", dir.display());
    let out = cmd.output().map_err(|e| BuildError::ToolInstall {
        tool: "componentize-js".into(),
        cache: dir.clone(),
        command: shown.clone(),
        reason: format!("cannot run {npm}: {e} (install Node.js 18+ with npm, or set WEFT_NPM)"),
    })?;
    if !out.status.success() || !pkg.is_file() {
        return Err(BuildError::ToolInstall {
            tool: "componentize-js".into(),
            cache: dir,
            command: shown,
            reason: tail(&String::from_utf8_lossy(&out.stderr), 6),
        });
    }
    Ok(dir)
}

// ---- Python ---------------------------------------------------------------------------------

fn py_world(dir: &Path, meta: &Meta, module: &str) -> Result<&'static str, BuildError> {
    if let Some(w) = &meta.world {
        return world_name(dir, w);
    }
    let src = std::fs::read_to_string(dir.join(format!("{module}.py"))).unwrap_or_default();
    let sensor = src.lines().any(|l| {
        let l = l.trim();
        l == "@sensor" || l == "@weft.sensor"
    });
    Ok(if sensor { "sensor-task" } else { "task" })
}

fn world_name(dir: &Path, w: &str) -> Result<&'static str, BuildError> {
    match w {
        "task" => Ok("task"),
        "sensor" | "sensor-task" => Ok("sensor-task"),
        other => Err(BuildError::Project {
            dir: dir.to_path_buf(),
            reason: format!("weft-plugin.json: world `{other}` is neither `task` nor `sensor`"),
        }),
    }
}

fn build_python(
    dir: &Path,
    meta: &Meta,
    work: &Path,
    opts: &BuildOptions,
) -> Result<Vec<u8>, BuildError> {
    let module = meta.main.clone().unwrap_or_else(|| "app".into());
    let module = module.strip_suffix(".py").unwrap_or(&module).to_string();
    if !dir.join(format!("{module}.py")).is_file()
        && !dir.join(&module).join("__init__.py").is_file()
    {
        return Err(BuildError::Project {
            dir: dir.to_path_buf(),
            reason: format!("no {module}.py: a Python operator is a module with an `@operator def run(input, ctx)` (set \"main\" in weft-plugin.json for another module)"),
        });
    }
    let world = py_world(dir, meta, &module)?;
    let tools = ensure_componentize_py(&opts.tools_dir, &opts.python)?;

    write_file(&work.join("wit/operator.wit"), WIT)?;
    for (rel, text) in PY_SDK {
        write_file(&work.join("sdk").join(rel), text)?;
    }
    write_file(
        &work.join("entry/weft_entry.py"),
        &format!("# generated by weft plugin build\nimport {module}  # noqa: F401  (registers @operator / @sensor)\nfrom weft._export import Operator, Sensor  # noqa: F401\n"),
    )?;

    // Pure-Python dependencies, sealed into the component.
    let deps = work.join("deps");
    let req = dir.join("requirements.txt");
    let req_text = std::fs::read_to_string(&req).unwrap_or_default();
    let wanted: Vec<&str> = req_text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .collect();
    let req_stamp = deps.join(".requirements");
    if wanted.is_empty() {
        let _ = std::fs::remove_dir_all(&deps);
    } else if std::fs::read_to_string(&req_stamp).ok().as_deref() != Some(req_text.as_str()) {
        let _ = std::fs::remove_dir_all(&deps);
        std::fs::create_dir_all(&deps).map_err(io(&deps, "create directory"))?;
        let mut cmd = Command::new(&opts.python);
        cmd.args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--retries",
            "2",
            "--timeout",
            "20",
            "--no-compile",
            "--target",
        ])
        .arg(&deps)
        .arg("-r")
        .arg(&req);
        run_tool(cmd, "pip install -r requirements.txt", dir).map_err(|e| match e {
            BuildError::Tool { dir, output, .. } => BuildError::Project {
                dir,
                reason: format!("cannot install requirements.txt (pure-Python packages only; is PyPI reachable?):\n{output}"),
            },
            e => e,
        })?;
        write_file(&req_stamp, &req_text)?;
    }

    // A copy of the sources (minus tests, fixtures, caches): componentize-py writes __pycache__
    // next to what it imports, which must not land in the operator's directory.
    let src = work.join("src");
    let _ = std::fs::remove_dir_all(&src);
    copy_tree(dir, &src)?;
    let out = work.join("component.wasm");
    let mut cmd = Command::new(&opts.python);
    cmd.current_dir(work)
        .env("PYTHONPATH", &tools)
        .arg(tools.join("bin/componentize-py"))
        .args([
            "-d",
            "wit",
            "-w",
            world,
            "componentize",
            "weft_entry",
            "-p",
            "src",
        ])
        .args(["-p", "entry", "-p", "sdk"]);
    if deps.is_dir() {
        cmd.args(["-p", "deps"]);
    }
    cmd.arg("-o").arg(&out);
    run_tool(cmd, "componentize-py", dir)?;
    let bytes = std::fs::read(&out).map_err(io(&out, "read component"))?;
    stub_sockets(&bytes).map_err(|reason| BuildError::Stub {
        dir: dir.to_path_buf(),
        reason,
    })
}

/// Replaces a component's `wasi:sockets/*` imports with a stub component whose functions trap
/// (composed with wac-graph). Components without such imports are returned unchanged.
pub fn stub_sockets(component: &[u8]) -> Result<Vec<u8>, String> {
    use wit_parser::decoding::{decode, DecodedWasm};
    use wit_parser::WorldKey;
    let (mut resolve, world) = match decode(component).map_err(|e| format!("{e:#}"))? {
        DecodedWasm::Component(r, w) => (r, w),
        DecodedWasm::WitPackage(..) => return Err("not a component".into()),
    };
    let sockets: Vec<String> = resolve.worlds[world]
        .imports
        .keys()
        .filter_map(|k| match k {
            WorldKey::Interface(_) => Some(resolve.name_world_key(k)),
            WorldKey::Name(_) => None,
        })
        .filter(|n| n.starts_with("wasi:sockets/"))
        .collect();
    if sockets.is_empty() {
        return Ok(component.to_vec());
    }
    let src = format!(
        "package weft:sockets-stub;\nworld stub {{\n{}}}\n",
        sockets
            .iter()
            .map(|s| format!("  export {s};\n"))
            .collect::<String>()
    );
    let pkg = resolve
        .push_str("sockets-stub.wit", &src)
        .map_err(|e| format!("{e:#}"))?;
    let stub_world = resolve
        .select_world(&[pkg], Some("stub"))
        .map_err(|e| format!("{e:#}"))?;
    let mut module = wit_component::dummy_module(
        &resolve,
        stub_world,
        wit_parser::ManglingAndAbi::Legacy(wit_parser::LiftLowerAbi::Sync),
    );
    wit_component::embed_component_metadata(
        &mut module,
        &resolve,
        stub_world,
        wit_component::StringEncoding::UTF8,
    )
    .map_err(|e| format!("{e:#}"))?;
    let stub = wit_component::ComponentEncoder::default()
        .module(&module)
        .and_then(|e| e.validate(true).encode())
        .map_err(|e| format!("encoding the stub: {e:#}"))?;

    let mut graph = wac_graph::CompositionGraph::new();
    let app = wac_graph::types::Package::from_bytes(
        "weft:app",
        None,
        component.to_vec(),
        graph.types_mut(),
    )
    .map_err(|e| format!("{e:#}"))?;
    let app = graph.register_package(app).map_err(|e| format!("{e:#}"))?;
    let stub =
        wac_graph::types::Package::from_bytes("weft:sockets-stub", None, stub, graph.types_mut())
            .map_err(|e| format!("{e:#}"))?;
    let stub = graph.register_package(stub).map_err(|e| format!("{e:#}"))?;
    wac_graph::plug(&mut graph, vec![stub], app).map_err(|e| format!("{e:#}"))?;
    graph
        .encode(wac_graph::EncodeOptions::default())
        .map_err(|e| format!("{e:#}"))
}

// ---- JavaScript -----------------------------------------------------------------------------

fn js_world(dir: &Path, meta: &Meta, src: &str) -> Result<&'static str, BuildError> {
    if let Some(w) = &meta.world {
        return world_name(dir, w);
    }
    let has = |name: &str| {
        src.contains(&format!("function {name}("))
            && (src.contains(&format!("export function {name}("))
                || src.contains(&format!("export async function {name}(")))
            || src.contains(&format!("export const {name} "))
            || src.contains(&format!("export const {name}="))
    };
    Ok(if !has("run") && has("poke") {
        "sensor-task"
    } else {
        "task"
    })
}

fn js_main(dir: &Path, meta: &Meta) -> Result<String, BuildError> {
    if let Some(m) = &meta.main {
        return Ok(m.clone());
    }
    let pj = dir.join("package.json");
    let v: serde_json::Value = std::fs::read(&pj)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    if let Some(m) = v.get("main").and_then(|m| m.as_str()) {
        return Ok(m.trim_start_matches("./").to_string());
    }
    for c in ["index.js", "operator.js", "app.js", "index.mjs"] {
        if dir.join(c).is_file() {
            return Ok(c.into());
        }
    }
    Err(BuildError::Project {
        dir: dir.to_path_buf(),
        reason: "no entry module: set \"main\" in package.json (or add index.js exporting `run(input, ctx)`)".into(),
    })
}

fn copy_tree(from: &Path, to: &Path) -> Result<(), BuildError> {
    std::fs::create_dir_all(to).map_err(io(to, "create directory"))?;
    for e in std::fs::read_dir(from).map_err(io(from, "read directory"))? {
        let e = e.map_err(io(from, "read directory"))?;
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        let ft = e.file_type().map_err(io(&p, "stat"))?;
        if ft.is_dir() {
            if !SKIP_DIRS.contains(&name.as_str()) || name == "node_modules" {
                copy_tree(&p, &to.join(&name))?;
            }
        } else if ft.is_file() {
            std::fs::copy(&p, to.join(&name)).map_err(io(&p, "copy"))?;
        }
    }
    Ok(())
}

/// Points `import ... from 'weft'` in the copied sources at the build's SDK file (componentize-js
/// resolves relative specifiers only).
fn rewrite_weft_imports(dir: &Path, sdk_rel: &str) -> Result<(), BuildError> {
    for e in std::fs::read_dir(dir).map_err(io(dir, "read directory"))? {
        let e = e.map_err(io(dir, "read directory"))?;
        let p = e.path();
        if p.is_dir() {
            if e.file_name() != "node_modules" {
                rewrite_weft_imports(&p, &format!("../{sdk_rel}"))?;
            }
        } else if p.extension().is_some_and(|x| x == "js" || x == "mjs") {
            let text = std::fs::read_to_string(&p).map_err(io(&p, "read"))?;
            let new = text
                .replace("from 'weft'", &format!("from '{sdk_rel}'"))
                .replace("from \"weft\"", &format!("from '{sdk_rel}'"));
            if new != text {
                std::fs::write(&p, new).map_err(io(&p, "write"))?;
            }
        }
    }
    Ok(())
}

fn build_js(
    dir: &Path,
    meta: &Meta,
    work: &Path,
    opts: &BuildOptions,
) -> Result<Vec<u8>, BuildError> {
    let main = js_main(dir, meta)?;
    let src = std::fs::read_to_string(dir.join(&main))
        .map_err(io(&dir.join(&main), "read entry module"))?;
    let world = js_world(dir, meta, &src)?;
    let tools = ensure_componentize_js(&opts.tools_dir, &opts.npm)?;

    // The build world: weft's world plus the wasi:filesystem interfaces the SDK's file helpers
    // use (componentize-js's engine imports them anyway); the contract WIT is unchanged.
    let wit = work.join("wit");
    let _ = std::fs::remove_dir_all(&wit);
    write_file(&wit.join("operator.wit"), WIT)?;
    let builtin = tools
        .join("node_modules/@bytecodealliance/jco/lib/wit/builtin")
        .join(JS_WASI_WIT);
    for dep in ["wasi-filesystem", "wasi-io", "wasi-clocks"] {
        let from = builtin.join(dep);
        if !from.is_dir() {
            return Err(BuildError::ToolInstall {
                tool: "componentize-js".into(),
                cache: tools.clone(),
                command: "npm install".into(),
                reason: format!(
                    "the WASI {JS_WASI_WIT} WIT files are missing at {}",
                    from.display()
                ),
            });
        }
        copy_tree(&from, &wit.join("deps").join(dep))?;
    }
    write_file(
        &wit.join("deps/weft-js/build.wit"),
        &format!(
            "package weft:js-build;\nworld js-{world} {{\n  include weft:operator/{world}@0.1.0;\n  import wasi:filesystem/preopens@{JS_WASI_WIT};\n  import wasi:filesystem/types@{JS_WASI_WIT};\n}}\n"
        ),
    )?;
    // componentize-js reads the directory's top-level package; keep weft:operator there and the
    // build world in a dep that names it.
    let app = work.join("app");
    let _ = std::fs::remove_dir_all(&app);
    copy_tree(dir, &app)?;
    rewrite_weft_imports(&app, "../weft.js")?;
    write_file(&work.join("weft.js"), JS_SDK)?;
    let (export, wrap) = if world == "task" {
        ("operator", "makeOperator")
    } else {
        ("sensor", "makeSensor")
    };
    write_file(
        &work.join("entry.js"),
        &format!(
            "// generated by weft plugin build\nimport * as user from './app/{main}';\nimport {{ {wrap} }} from './weft.js';\nexport const {export} = {wrap}(user);\n"
        ),
    )?;
    let out = work.join("component.wasm");
    let bin = tools.join("node_modules/.bin/componentize-js");
    let mut cmd = Command::new(&bin);
    cmd.current_dir(work)
        .args(["entry.js", "--wit", "wit", "--world-name"])
        .arg(format!("weft:js-build/js-{world}"))
        .args(["-d", "http", "fetch-event", "-o"])
        .arg(&out);
    run_tool(cmd, "componentize-js", dir)?;
    std::fs::read(&out).map_err(io(&out, "read component"))
}

// ---- Rust -----------------------------------------------------------------------------------

fn build_rust(dir: &Path, work: &Path) -> Result<Vec<u8>, BuildError> {
    let cargo = std::env::var("GUEST_CARGO").unwrap_or_else(|_| "/usr/bin/cargo".into());
    let rustc = std::env::var("GUEST_RUSTC").unwrap_or_else(|_| "/usr/bin/rustc".into());
    if !Path::new(&cargo).exists() || !Path::new(&rustc).exists() {
        return Err(BuildError::ToolInstall {
            tool: "the Rust guest toolchain".into(),
            cache: PathBuf::from("/usr"),
            command: "apt-get install -y rustc-web cargo-web rust-web-src lld wasi-libc".into(),
            reason: format!("{cargo} / {rustc} not found (`make guests` installs them)"),
        });
    }
    let target_dir = work.join("target");
    let mut cmd = Command::new(&cargo);
    cmd.current_dir(dir)
        .env("RUSTC", &rustc)
        .env("RUSTC_BOOTSTRAP", "1")
        .env("CARGO_TARGET_WASM32_WASIP1_LINKER", "wasm-ld")
        .env(
            "CARGO_TARGET_WASM32_WASIP1_RUSTFLAGS",
            "-C link-self-contained=no -L /usr/lib/wasm32-wasi -C link-arg=/usr/lib/wasm32-wasi/crt1-reactor.o",
        )
        .args(["build", "--release", "-Zbuild-std=std,panic_abort", "--target", "wasm32-wasip1", "--target-dir"])
        .arg(&target_dir);
    run_tool(cmd, "cargo build (wasm32-wasip1)", dir)?;
    let rel = target_dir.join("wasm32-wasip1/release");
    let core = std::fs::read_dir(&rel)
        .map_err(io(&rel, "read build output"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
        .max_by_key(|p| p.metadata().and_then(|m| m.modified()).ok())
        .ok_or_else(|| BuildError::Project {
            dir: dir.to_path_buf(),
            reason: "cargo built no .wasm (is the crate a `cdylib`?)".into(),
        })?;
    let bytes = std::fs::read(&core).map_err(io(&core, "read core module"))?;
    crate::componentize::componentize(&bytes).map_err(|e| BuildError::Project {
        dir: dir.to_path_buf(),
        reason: e.to_string(),
    })
}

// ---- scaffolding ----------------------------------------------------------------------------

/// Writes a working operator named `name` in `lang` under `parent/name` and returns the files
/// written. Refuses to overwrite an existing directory that is not empty.
pub fn scaffold(lang: Lang, name: &str, parent: &Path) -> Result<Vec<PathBuf>, BuildError> {
    let dir = parent.join(name);
    if !crate::manifest::valid_name(name) {
        return Err(BuildError::Project {
            dir,
            reason: format!("`{name}` is not a valid plugin name (lowercase letters, digits, - _ .; starts with a letter)"),
        });
    }
    if dir.exists()
        && std::fs::read_dir(&dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(BuildError::Project {
            dir,
            reason: "already exists and is not empty".into(),
        });
    }
    let meta = format!(
        "{{\n  \"name\": \"{name}\",\n  \"version\": \"0.1.0\",\n  \"description\": \"TODO: what {name} does\",\n  \"grant\": {{\n    \"Version\": \"2012-10-17\",\n    \"Statement\": []\n  }}\n}}\n"
    );
    // weft-guest from the enclosing weft checkout, else `$WEFT_GUEST_SDK`, else the checkout this
    // weft was built from; a path that cannot be found is left for the author with a clear note.
    let built_from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../guest-sdk");
    let sdk_dep = parent
        .canonicalize()
        .ok()
        .and_then(|p| p.ancestors().map(|a| a.join("guest-sdk")).find(|g| g.join("Cargo.toml").is_file()))
        .or_else(|| std::env::var_os("WEFT_GUEST_SDK").map(PathBuf::from))
        .or_else(|| built_from.canonicalize().ok().filter(|g| g.join("Cargo.toml").is_file()))
        .map(|g| format!("{{ path = \"{}\" }}", g.display()))
        .unwrap_or_else(|| "{ path = \"SET-ME/guest-sdk\" } # the guest-sdk folder of a weft checkout (or set WEFT_GUEST_SDK before `weft plugin new`)".into());
    let files: Vec<(String, String)> = match lang {
        Lang::Python => vec![
            ("weft-plugin.json".into(), meta),
            (
                "app.py".into(),
                "\"\"\"A weft operator: `run(input, ctx)` gets the task's input JSON and returns its output.\"\"\"\n\nfrom weft import Context, TaskError, operator\n\n\n@operator\ndef run(input: dict, ctx: Context) -> dict:\n    name = input.get(\"name\")\n    if not name:\n        raise TaskError(\"Input.Invalid\", \"`name` is required\")\n    ctx.log(f\"greeting {name}\")\n    return {\"greeting\": f\"hello, {name}\"}\n".into(),
            ),
            ("requirements.txt".into(), "# Pure-Python packages bundled into the component, one per line.\n".into()),
            (
                "test_app.py".into(),
                "# Run with: PYTHONPATH=<weft>/guest-sdk/python python -m unittest (no sandbox needed)\nimport unittest\n\nimport app\nimport weft.testing as wt\n\n\nclass AppTest(unittest.TestCase):\n    def test_greets(self):\n        self.assertEqual(wt.run(app.run, {\"name\": \"ada\"}), {\"greeting\": \"hello, ada\"})\n\n    def test_requires_a_name(self):\n        self.assertEqual(wt.run_error(app.run, {}).error, \"Input.Invalid\")\n\n\nif __name__ == \"__main__\":\n    unittest.main()\n".into(),
            ),
            ("pyproject.toml".into(), format!("[project]\nname = \"{name}\"\nversion = \"0.1.0\"\nrequires-python = \">=3.10\"\n")),
        ],
        Lang::Js => vec![
            ("weft-plugin.json".into(), meta),
            (
                "package.json".into(),
                format!("{{\n  \"name\": \"{name}\",\n  \"version\": \"0.1.0\",\n  \"type\": \"module\",\n  \"main\": \"index.js\",\n  \"scripts\": {{ \"test\": \"node --test\" }}\n}}\n"),
            ),
            (
                "index.js".into(),
                "// A weft operator: `run(input, ctx)` gets the task's input JSON and returns its output.\nimport { TaskError } from 'weft';\n\nexport async function run(input, ctx) {\n  if (!input.name) throw new TaskError('Input.Invalid', '`name` is required');\n  ctx.log(`greeting ${input.name}`);\n  return { greeting: `hello, ${input.name}` };\n}\n".into(),
            ),
            (
                "index.test.js".into(),
                "// Run with: node --test (plain Node; `weft` resolves to weft's SDK test shim)\nimport test from 'node:test';\nimport assert from 'node:assert';\nimport { run } from './index.js';\n\nconst ctx = { log() {} };\n\ntest('greets', async () => {\n  assert.deepStrictEqual(await run({ name: 'ada' }, ctx), { greeting: 'hello, ada' });\n});\n\ntest('requires a name', async () => {\n  await assert.rejects(run({}, ctx), (e) => e.error === 'Input.Invalid');\n});\n".into(),
            ),
        ],
        Lang::Rust => vec![
            ("weft-plugin.json".into(), meta),
            (
                "Cargo.toml".into(),
                format!("[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[lib]\ncrate-type = [\"cdylib\", \"rlib\"]\n\n[dependencies]\nweft-guest = {sdk_dep}\nserde_json = \"1\"\n\n# Not part of any enclosing workspace: built for wasm32-wasip1 by `weft plugin build`.\n[workspace]\n"),
            ),
            (
                "src/lib.rs".into(),
                format!("//! The `{name}` weft operator.\nuse serde_json::{{json, Value}};\nuse weft_guest::{{Context, TaskError}};\n\npub fn greeting(name: &str) -> String {{\n    format!(\"hello, {{name}}\")\n}}\n\nfn run(ctx: &Context, input: Value) -> Result<Value, TaskError> {{\n    let name = input[\"name\"]\n        .as_str()\n        .ok_or_else(|| TaskError::new(\"Input.Invalid\", \"`name` is required\"))?;\n    ctx.info(format!(\"greeting {{name}}\"));\n    Ok(json!({{ \"greeting\": greeting(name) }}))\n}}\n\nweft_guest::export_operator!(run);\n\n#[cfg(test)]\nmod tests {{\n    #[test]\n    fn greets() {{\n        assert_eq!(super::greeting(\"ada\"), \"hello, ada\");\n    }}\n}}\n"),
            ),
        ],
    };
    let mut written = Vec::new();
    for (rel, text) in files {
        let p = dir.join(&rel);
        write_file(&p, &text)?;
        written.push(p);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_languages() {
        let d = tempfile::tempdir().unwrap();
        assert!(matches!(
            detect(d.path()),
            Err(BuildError::UnknownLanguage { .. })
        ));
        std::fs::write(d.path().join("package.json"), "{}").unwrap();
        assert_eq!(detect(d.path()).unwrap(), Lang::Js);
        std::fs::write(d.path().join("app.py"), "").unwrap();
        assert_eq!(detect(d.path()).unwrap(), Lang::Python);
        std::fs::write(d.path().join("Cargo.toml"), "").unwrap();
        assert_eq!(detect(d.path()).unwrap(), Lang::Rust);
    }

    #[test]
    fn scaffolds_each_language_once() {
        let d = tempfile::tempdir().unwrap();
        for (lang, name) in [
            (Lang::Python, "py-op"),
            (Lang::Js, "js-op"),
            (Lang::Rust, "rs-op"),
        ] {
            let files = scaffold(lang, name, d.path()).unwrap();
            assert!(files.len() >= 3, "{files:?}");
            assert_eq!(detect(&d.path().join(name)).unwrap(), lang);
            assert!(scaffold(lang, name, d.path()).is_err());
        }
        assert!(scaffold(Lang::Python, "Bad Name", d.path()).is_err());
    }

    #[test]
    fn worlds_are_detected_from_sources() {
        let d = tempfile::tempdir().unwrap();
        let op = d.path().join("op");
        std::fs::create_dir(&op).unwrap();
        let m = read_meta(&op).unwrap();
        std::fs::write(
            op.join("app.py"),
            "from weft import sensor\n@sensor\ndef poke(ctx):\n    return True\n",
        )
        .unwrap();
        assert_eq!(py_world(&op, &m, "app").unwrap(), "sensor-task");
        assert_eq!(
            js_world(&op, &m, "export async function run(input, ctx) {}").unwrap(),
            "task"
        );
        assert_eq!(
            js_world(&op, &m, "export function poke(ctx) { return true }").unwrap(),
            "sensor-task"
        );
    }
}
