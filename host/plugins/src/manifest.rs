//! The bundle manifest (`weft-bundle.json`) and per-plugin sidecar manifests
//! (`NAME.plugin.json` next to `NAME.wasm`), with validation that reports JSON pointers.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const MANIFEST_NAME: &str = "weft-bundle.json";
pub const FORMAT: &str = "weft-bundle/1";

/// One plugin in a bundle.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PluginEntry {
    pub name: String,
    pub version: String,
    /// `task` or `sensor`.
    pub world: String,
    /// Path of the component inside the bundle.
    pub file: String,
    /// blake3 hex of the component.
    pub blake3: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The IAM-shaped policy the plugin asks for by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BundleManifest {
    pub format: String,
    pub plugins: Vec<PluginEntry>,
    /// blake3 hex of every file in the bundle besides the manifest.
    pub files: BTreeMap<String, String>,
}

/// What a sidecar `NAME.plugin.json` may say about a component.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Sidecar {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub grant: Option<serde_json::Value>,
}

/// A plugin name: lowercase letters, digits, `-`, `_`, `.`; starts with a letter.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && name.len() <= 64
        && chars
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
}

pub fn valid_version(v: &str) -> bool {
    semver::Version::parse(v).is_ok()
}

impl BundleManifest {
    /// Checks the manifest's own consistency (names, versions, files listed), not the files.
    pub fn validate(&self, origin: &str) -> Result<(), crate::PluginError> {
        let err = |pointer: String, reason: String| crate::PluginError::Manifest {
            origin: origin.to_string(),
            pointer,
            reason,
        };
        if self.format != FORMAT {
            return Err(err(
                "/format".into(),
                format!("`{}` is not `{FORMAT}`", self.format),
            ));
        }
        for file in self.files.keys() {
            if let Err(crate::PluginError::UnsafeEntry { reason, .. }) =
                crate::bundle::check_entry_name(std::path::Path::new(origin), file)
            {
                return Err(err(
                    format!("/files/{}", file.replace('~', "~0").replace('/', "~1")),
                    format!("`{file}` is not a usable file name: {reason}"),
                ));
            }
            if file.ends_with('/') || file == MANIFEST_NAME {
                return Err(err(
                    format!("/files/{}", file.replace('~', "~0").replace('/', "~1")),
                    format!("`{file}` cannot be a component file"),
                ));
            }
        }
        let mut seen = std::collections::HashSet::new();
        for (i, p) in self.plugins.iter().enumerate() {
            if !valid_name(&p.name) {
                return Err(err(
                    format!("/plugins/{i}/name"),
                    format!(
                        "`{}` is not a valid plugin name (lowercase letters, digits, - _ .)",
                        p.name
                    ),
                ));
            }
            if !valid_version(&p.version) {
                return Err(err(
                    format!("/plugins/{i}/version"),
                    format!("`{}` is not a semantic version", p.version),
                ));
            }
            if p.world != "task" && p.world != "sensor" {
                return Err(err(
                    format!("/plugins/{i}/world"),
                    format!("`{}` is not a weft world (task or sensor)", p.world),
                ));
            }
            if !seen.insert((&p.name, &p.version)) {
                return Err(err(
                    format!("/plugins/{i}"),
                    format!("{}@{} is listed twice", p.name, p.version),
                ));
            }
            match self.files.get(&p.file) {
                None => {
                    return Err(err(
                        format!("/plugins/{i}/file"),
                        format!("`{}` is not listed in /files", p.file),
                    ))
                }
                Some(d) if *d != p.blake3 => {
                    return Err(err(
                        format!("/plugins/{i}/blake3"),
                        format!("differs from /files/{}", p.file),
                    ))
                }
                _ => {}
            }
            if let Some(g) = &p.grant {
                if let Err(errs) = weft_sandbox_policy_check(g) {
                    return Err(err(format!("/plugins/{i}/grant{}", errs.0), errs.1));
                }
            }
        }
        Ok(())
    }
}

/// Grants are checked for shape here (an object with a Statement); the sandbox checks them in
/// full when they are used.
fn weft_sandbox_policy_check(g: &serde_json::Value) -> Result<(), (String, String)> {
    match g.get("Statement") {
        Some(serde_json::Value::Array(_)) | Some(serde_json::Value::Object(_)) => Ok(()),
        _ => Err((
            "/Statement".into(),
            "a grant is an IAM-shaped policy with a Statement".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(valid_name("csv-to-json"));
        assert!(!valid_name("Echo"));
        assert!(!valid_name("../x"));
        assert!(!valid_name(""));
    }
}
