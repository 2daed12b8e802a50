//! Shared pieces of the commands: opening `$WEFT_HOME`, reading `JSON|@file` arguments, parsing
//! sizes and durations, and the `Usage` error kind (exit code 2).

use anyhow::{Context as _, Result};
use std::path::PathBuf;
use std::sync::Arc;
use weft_engine::PluginHost;
use weft_sandbox::{Sandbox, SandboxConfig};
use weft_store::{PluginStore, Store};

/// An error in what the user typed or supplied (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

pub fn usage(msg: impl Into<String>) -> anyhow::Error {
    Usage(msg.into()).into()
}

pub fn home() -> PathBuf {
    weft_engine::weft_home()
}

pub fn open_store() -> Result<Arc<Store>> {
    let home = home();
    Ok(Arc::new(Store::open(&home).with_context(|| {
        format!("opening the weft store at {}", home.display())
    })?))
}

/// The plugin side of `$WEFT_HOME` (registry, blobs, precompiled artifacts): opened without
/// a lock, so runs and invocations go side by side with each other and with a server.
pub fn open_plugin_store() -> Result<Arc<PluginStore>> {
    let home = home();
    Ok(Arc::new(PluginStore::open(&home).with_context(|| {
        format!("opening the weft store at {}", home.display())
    })?))
}

pub fn plugin_host() -> Result<PluginHost> {
    plugin_host_on(open_plugin_store()?)
}

/// A plugin host over `store` (the plugin side of a [`Store`] a command already holds).
pub fn plugin_host_on(store: Arc<PluginStore>) -> Result<PluginHost> {
    let sandbox = Arc::new(Sandbox::new(&SandboxConfig::default())?);
    Ok(PluginHost::new(store, sandbox)?)
}

/// Reads a `JSON` or `@FILE` argument and checks it is JSON.
pub fn json_arg(what: &str, arg: &str) -> Result<serde_json::Value> {
    let (text, origin) = match arg.strip_prefix('@') {
        Some(path) => (
            std::fs::read_to_string(path)
                .map_err(|e| usage(format!("{what}: cannot read {path}: {e}")))?,
            path.to_string(),
        ),
        None => (arg.to_string(), format!("--{what}")),
    };
    serde_json::from_str(&text).map_err(|e| {
        usage(format!(
            "{origin}:{}:{}: {what} is not JSON: {e}",
            e.line(),
            e.column()
        ))
    })
}

/// Parses `64MiB`, `512KiB`, `1G`, `1048576`.
pub fn parse_size(s: &str) -> Result<usize> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: usize = num
        .parse()
        .map_err(|_| usage(format!("`{s}` is not a size (e.g. 64MiB)")))?;
    let mult: usize = match unit.trim() {
        "" | "B" => 1,
        "K" | "KB" => 1000,
        "KiB" | "Ki" => 1 << 10,
        "M" | "MB" => 1_000_000,
        "MiB" | "Mi" => 1 << 20,
        "G" | "GB" => 1_000_000_000,
        "GiB" | "Gi" => 1 << 30,
        other => {
            return Err(usage(format!(
                "`{s}`: unknown size unit `{other}` (use B, KiB, MiB, GiB)"
            )))
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| usage(format!("`{s}` is too large")))
}

pub fn parse_duration(s: &str) -> Result<std::time::Duration> {
    humantime::parse_duration(s)
        .map_err(|e| usage(format!("`{s}` is not a duration (e.g. 500ms, 5s, 2m): {e}")))
}

/// Prints `{"Error":..,"Cause":..}` on stdout, the failure contract of `run` and `invoke`.
pub fn print_failure(error: &str, cause: &str) {
    println!("{}", serde_json::json!({"Error": error, "Cause": cause}));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("100").unwrap(), 100);
        assert!(parse_size("12XB").is_err());
        assert!(parse_size("MiB").is_err());
    }
}
