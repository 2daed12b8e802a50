//! Installing plugins into the store from a bundle or a single `.wasm` component. Everything is
//! verified first (bundle integrity, weft world, duplicates); only then are blobs and registry
//! records written, so a refused install leaves the store as it was.

use crate::manifest::{valid_name, valid_version, PluginEntry};
use crate::{bundle, limits};
use crate::{inspect_component, PluginError};
use serde::Serialize;
use std::path::Path;
use weft_store::{Digest, PluginRecord, PluginStore};

#[derive(Debug, Clone, Default)]
pub struct InstallOptions {
    /// Replace an installed name@version that has a different digest.
    pub force: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Installed {
    pub name: String,
    pub version: String,
    pub digest: String,
    pub world: String,
    /// `installed`, `unchanged` (same digest already there) or `replaced`.
    pub status: &'static str,
}

/// Installs a `.zip` bundle or a `.wasm` component (with its optional sidecar manifest).
pub fn install_path(
    store: &PluginStore,
    path: &Path,
    opts: &InstallOptions,
) -> Result<Vec<Installed>, PluginError> {
    let is_zip = path.extension().is_some_and(|e| e == "zip") || limits::looks_like_zip(path);
    let staged: Vec<(PluginEntry, Vec<u8>)> = if is_zip {
        let b = bundle::read(path)?;
        let origin = path.display().to_string();
        let mut out = Vec::new();
        let mut files = b.files;
        for p in &b.manifest.plugins {
            // Two plugins may share a file; the second takes a copy.
            let bytes = match b
                .manifest
                .plugins
                .iter()
                .filter(|q| q.file == p.file)
                .count()
            {
                1 => files.remove(&p.file).unwrap_or_default(),
                _ => files.get(&p.file).cloned().unwrap_or_default(),
            };
            let info = inspect_component(&bytes).map_err(|reason| PluginError::NotAnOperator {
                origin: format!("{origin}!{}", p.file),
                reason,
            })?;
            if info.world != p.world {
                return Err(PluginError::Manifest {
                    origin: origin.clone(),
                    pointer: format!("/plugins/{}/world", out.len()),
                    reason: format!("says `{}` but the component is a {}", p.world, info.world),
                });
            }
            out.push((p.clone(), bytes));
        }
        out
    } else {
        // Size checked on the open file, then read through a cap: never more than the cap.
        let bytes = limits::read_capped(path, limits::MAX_COMPONENT_BYTES, "read component")?;
        let file = path
            .file_name()
            .and_then(|f| f.to_str())
            .unwrap_or("plugin.wasm")
            .to_string();
        let entry = bundle::describe(path, &bytes, &file)?;
        if !valid_name(&entry.name) {
            return Err(PluginError::Manifest {
                origin: path.display().to_string(),
                pointer: "/name".into(),
                reason: format!("`{}` is not a valid plugin name (lowercase letters, digits, - _ .; rename the file or set \"name\" in its .plugin.json)", entry.name),
            });
        }
        if !valid_version(&entry.version) {
            return Err(PluginError::Manifest {
                origin: path.display().to_string(),
                pointer: "/version".into(),
                reason: format!("`{}` is not a semantic version", entry.version),
            });
        }
        vec![(entry, bytes)]
    };

    // Decide everything before writing anything.
    let mut plan = Vec::new();
    for (entry, bytes) in staged {
        let digest = Digest::of(&bytes);
        let status = match store.registry().get(&entry.name, &entry.version)? {
            Some(existing) if existing.digest == digest => "unchanged",
            Some(existing) if !opts.force => {
                return Err(PluginError::Duplicate {
                    name: entry.name,
                    version: entry.version,
                    existing: existing.digest.to_string(),
                    new: digest.to_string(),
                })
            }
            Some(_) => "replaced",
            None => "installed",
        };
        plan.push((entry, bytes, digest, status));
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut done = Vec::new();
    for (entry, bytes, digest, status) in plan {
        store.blobs().put(&bytes)?;
        if status != "unchanged" {
            store.registry().put(&PluginRecord {
                name: entry.name.clone(),
                version: entry.version.clone(),
                digest,
                world: entry.world.clone(),
                manifest: serde_json::to_value(&entry).unwrap_or_default(),
                installed_at: now,
            })?;
        }
        tracing::info!(plugin = %entry.name, version = %entry.version, %digest, status, "plugin install");
        done.push(Installed {
            name: entry.name,
            version: entry.version,
            digest: digest.to_string(),
            world: entry.world,
            status,
        });
    }
    Ok(done)
}
