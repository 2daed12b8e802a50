//! Shared fixtures of the engine's integration tests: the built plugin components
//! (`target/plugins`, made by `make guests`) installed into one store per test binary whose
//! precompiled cache persists across runs, so components compile once per digest.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use weft_engine::{PluginHost, PluginRef};
use weft_sandbox::{Grant, Limits, Outcome, Policy, Sandbox, SandboxConfig};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

pub fn plugins_dir() -> PathBuf {
    std::env::var_os("WEFT_PLUGINS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/plugins"))
}

pub fn component(rel: &str) -> PathBuf {
    let p = plugins_dir().join(rel);
    assert!(
        p.is_file(),
        "{} is missing: run `make guests` first",
        p.display()
    );
    p
}

/// One host per test binary, with every built plugin installed.
pub fn host(home_name: &str) -> &'static PluginHost {
    static HOST: OnceLock<PluginHost> = OnceLock::new();
    HOST.get_or_init(|| {
        let home = repo_root().join("target").join(home_name);
        let store = Arc::new(weft_store::PluginStore::open(&home).unwrap());
        let sandbox = Arc::new(Sandbox::new(&SandboxConfig::default()).unwrap());
        let host = PluginHost::new(store, sandbox).unwrap();
        for rel in [
            "echo.wasm",
            "fail.wasm",
            "csv-to-json.wasm",
            "json-transform.wasm",
            "http-request.wasm",
            "file-sensor.wasm",
            "hostile/spin.wasm",
            "hostile/membomb.wasm",
            "hostile/recurse.wasm",
            "hostile/escape.wasm",
            "hostile/bigout.wasm",
            "hostile/panic.wasm",
            "hostile/secrets.wasm",
            "hostile/symlink.wasm",
            "hostile/bigframes.wasm",
        ] {
            let opts = weft_plugins::InstallOptions { force: true };
            weft_plugins::install_path(&host.store, &component(rel), &opts).unwrap();
        }
        host
    })
}

pub fn policy(json: &str) -> Arc<Policy> {
    Arc::new(Policy::parse(json).unwrap())
}

pub fn grant(json: &str, base: &Path) -> Arc<Grant> {
    Arc::new(Grant::compile(vec![policy(json)], base))
}

pub fn invoke(
    host: &PluginHost,
    plugin: &str,
    input: &str,
    grant: Arc<Grant>,
    limits: Limits,
) -> Outcome {
    let rec = host.resolve(&PluginRef::parse(plugin).unwrap()).unwrap();
    let c = host.load(&rec).unwrap();
    host.invoke(&c, input, r#"{"task":"test","attempt":1}"#, grant, limits)
        .unwrap()
}

pub fn error_of(o: &Outcome) -> (String, String) {
    match &o.result {
        Ok(v) => panic!("expected a failure, got output {v}"),
        Err(e) => (e.error.clone(), e.cause.clone()),
    }
}
