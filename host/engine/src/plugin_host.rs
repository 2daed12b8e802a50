//! Resolving `NAME[@VERSION|#DIGEST]` references to installed plugins and invoking them in the
//! sandbox. Loaded components are cached by digest in the sandbox; compiled code is cached in
//! the store per digest and engine fingerprint, so only the first load ever compiles.

use crate::cache::StoreArtifacts;
use crate::{EngineError, HomeSecrets};
use std::sync::Arc;
use weft_sandbox::{
    Grant, Invocation, Limits, LoadedComponent, Outcome, Sandbox, SecretSource, TaskError,
};
use weft_store::{Digest, PluginRecord, PluginStore};

/// A cancel switch polled while a guest runs (`true`: interrupt it).
pub type Cancel = Arc<dyn Fn() -> bool + Send + Sync>;

/// A parsed plugin reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginRef {
    Latest(String),
    Version(String, String),
    /// A full digest or a hex prefix of at least 8 digits.
    Digest(String, String),
}

impl PluginRef {
    pub fn parse(s: &str) -> Result<Self, EngineError> {
        let bad = |reason: &str| EngineError::BadPluginRef {
            reference: s.to_string(),
            reason: reason.to_string(),
        };
        if let Some((name, d)) = s.split_once('#') {
            let d = d.strip_prefix("blake3:").unwrap_or(d);
            if d.len() < 8 || !d.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(bad("a digest is at least 8 hex digits (`name#1a2b3c4d`)"));
            }
            return Ok(Self::Digest(name.to_string(), d.to_ascii_lowercase()));
        }
        if let Some((name, v)) = s.split_once('@') {
            if name.is_empty() || v.is_empty() {
                return Err(bad("expected NAME@VERSION"));
            }
            return Ok(Self::Version(name.to_string(), v.to_string()));
        }
        if s.is_empty() {
            return Err(bad("empty plugin name"));
        }
        Ok(Self::Latest(s.to_string()))
    }

    pub fn name(&self) -> &str {
        match self {
            Self::Latest(n) | Self::Version(n, _) | Self::Digest(n, _) => n,
        }
    }
}

/// The store, the sandbox and the secrets of one process.
pub struct PluginHost {
    pub store: Arc<PluginStore>,
    pub sandbox: Arc<Sandbox>,
    pub secrets: Arc<dyn SecretSource>,
}

impl PluginHost {
    pub fn new(store: Arc<PluginStore>, sandbox: Arc<Sandbox>) -> Result<Self, EngineError> {
        let secrets = Arc::new(HomeSecrets::load(store.home())?);
        Ok(Self {
            store,
            sandbox,
            secrets,
        })
    }

    /// Finds the installed plugin a reference names.
    pub fn resolve(&self, r: &PluginRef) -> Result<PluginRecord, EngineError> {
        resolve(&self.store, r)
    }

    /// Loads a plugin's component, from the sandbox cache, the precompiled cache or by compiling.
    pub fn load(&self, rec: &PluginRecord) -> Result<Arc<LoadedComponent>, EngineError> {
        let digest = blake3::Hash::from_bytes(*rec.digest.as_bytes());
        let store = &self.store;
        let d: Digest = rec.digest;
        Ok(self.sandbox.load(
            &format!("{}@{}", rec.name, rec.version),
            digest,
            || {
                store
                    .blobs()
                    .get_capped(&d, weft_plugins::limits::MAX_COMPONENT_BYTES)
                    .map_err(|e| e.to_string())
            },
            Some(&StoreArtifacts(store)),
        )?)
    }

    /// Runs a task plugin once.
    pub fn invoke(
        &self,
        component: &LoadedComponent,
        input: &str,
        ctx: &str,
        grant: Arc<Grant>,
        limits: Limits,
    ) -> Result<Outcome, EngineError> {
        self.invoke_cancellable(component, input, ctx, grant, limits, None)
    }

    /// [`Self::invoke`] with a cancel switch polled while the guest runs.
    pub fn invoke_cancellable(
        &self,
        component: &LoadedComponent,
        input: &str,
        ctx: &str,
        grant: Arc<Grant>,
        limits: Limits,
        cancel: Option<Cancel>,
    ) -> Result<Outcome, EngineError> {
        Ok(self.sandbox.invoke(
            component,
            Invocation {
                input,
                ctx,
                grant,
                limits,
                secrets: self.secrets.clone(),
                heartbeat: None,
                cancel,
            },
        )?)
    }

    /// Resolves, loads and runs a task plugin: the one path every sandboxed task takes.
    pub fn run_task(
        &self,
        r: &PluginRef,
        input: &str,
        ctx: &str,
        grant: Arc<Grant>,
        limits: Limits,
    ) -> Result<(PluginRecord, Outcome), EngineError> {
        self.run_task_cancellable(r, input, ctx, grant, limits, None)
    }

    /// [`Self::run_task`] with a cancel switch (see [`Self::invoke_cancellable`]).
    pub fn run_task_cancellable(
        &self,
        r: &PluginRef,
        input: &str,
        ctx: &str,
        grant: Arc<Grant>,
        limits: Limits,
        cancel: Option<Cancel>,
    ) -> Result<(PluginRecord, Outcome), EngineError> {
        let rec = self.resolve(r)?;
        let component = self.load(&rec)?;
        let outcome = self.invoke_cancellable(&component, input, ctx, grant, limits, cancel)?;
        Ok((rec, outcome))
    }
}

/// A task's result as a JSON value (the sandbox has already refused output that is not JSON).
pub fn output_value(result: Result<String, TaskError>) -> Result<serde_json::Value, TaskError> {
    let text = result?;
    serde_json::from_str(&text)
        .map_err(|e| TaskError::new("States.TaskFailed", format!("output is not JSON: {e}")))
}

/// Finds the installed plugin a reference names in `store`.
pub fn resolve(store: &PluginStore, r: &PluginRef) -> Result<PluginRecord, EngineError> {
    let reg = store.registry();
    // a whole digest (what executions pin) is one index lookup; a prefix scans the versions
    let found = match r {
        PluginRef::Latest(n) => reg.latest(n)?,
        PluginRef::Version(n, v) => reg.get(n, v)?,
        PluginRef::Digest(n, prefix) => {
            let indexed = match prefix.parse::<Digest>() {
                Ok(d) if prefix.len() == 64 => reg.by_digest(&d)?.filter(|rec| rec.name == *n),
                _ => None,
            };
            match indexed {
                Some(rec) => Some(rec),
                // the same bytes may be installed under several names: the index knows one
                None => reg
                    .versions(n)?
                    .into_iter()
                    .find(|rec| rec.digest.to_hex().starts_with(prefix.as_str())),
            }
        }
    };
    found.ok_or_else(|| {
        let installed: Vec<String> = reg
            .versions(r.name())
            .unwrap_or_default()
            .iter()
            .map(|p| format!("{}@{} #{}", p.name, p.version, p.digest.short()))
            .collect();
        EngineError::PluginNotFound {
            reference: match r {
                PluginRef::Latest(n) => n.clone(),
                PluginRef::Version(n, v) => format!("{n}@{v}"),
                PluginRef::Digest(n, d) => format!("{n}#{d}"),
            },
            hint: if installed.is_empty() {
                " (install it with `weft plugin install FILE.wasm|BUNDLE.zip`; `weft plugin list` shows what is installed)".into()
            } else {
                format!(" (installed: {})", installed.join(", "))
            },
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        assert_eq!(
            PluginRef::parse("echo").unwrap(),
            PluginRef::Latest("echo".into())
        );
        assert_eq!(
            PluginRef::parse("echo@1.0.0").unwrap(),
            PluginRef::Version("echo".into(), "1.0.0".into())
        );
        assert_eq!(
            PluginRef::parse("echo#blake3:ABCDEF0123").unwrap(),
            PluginRef::Digest("echo".into(), "abcdef0123".into())
        );
        assert!(PluginRef::parse("echo#zz").is_err());
        assert!(PluginRef::parse("@1").is_err());
    }
}
