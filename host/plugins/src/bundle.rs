//! The bundle format: a zip holding `weft-bundle.json` and the components it lists. Packing
//! writes the zip atomically; reading refuses zip-slip paths, links, oversized entries, files
//! not listed in the manifest and digest mismatches before anything is returned.

use crate::manifest::{BundleManifest, PluginEntry, Sidecar, FORMAT, MANIFEST_NAME};
use crate::{inspect_component, PluginError};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Largest single entry accepted from a bundle (Python components are ~20 MB).
pub const MAX_ENTRY_BYTES: u64 = 256 << 20;
/// Most entries a bundle may hold.
pub const MAX_ENTRIES: usize = 1024;

fn io(path: &Path, what: &'static str) -> impl FnOnce(std::io::Error) -> PluginError {
    let path = path.to_path_buf();
    move |source| PluginError::Io { path, what, source }
}

/// Reads `NAME.plugin.json` next to a component, if present.
pub fn read_sidecar(wasm: &Path) -> Result<Sidecar, PluginError> {
    let side = wasm.with_extension("plugin.json");
    match std::fs::read(&side) {
        Ok(b) => serde_json::from_slice(&b).map_err(|e| PluginError::Manifest {
            origin: side.display().to_string(),
            pointer: String::new(),
            reason: format!("line {}: {e}", e.line()),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Sidecar::default()),
        Err(e) => Err(io(&side, "read sidecar manifest")(e)),
    }
}

/// Describes one component file as a manifest entry (world from the component itself).
pub fn describe(
    path: &Path,
    bytes: &[u8],
    file_in_bundle: &str,
) -> Result<PluginEntry, PluginError> {
    let info = inspect_component(bytes).map_err(|reason| PluginError::NotAnOperator {
        origin: path.display().to_string(),
        reason,
    })?;
    let side = read_sidecar(path)?;
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("plugin")
        .to_string();
    Ok(PluginEntry {
        name: side.name.unwrap_or(stem),
        version: side.version.unwrap_or_else(|| "0.1.0".into()),
        world: info.world,
        file: file_in_bundle.to_string(),
        blake3: blake3::hash(bytes).to_hex().to_string(),
        description: side.description.unwrap_or_default(),
        grant: side.grant,
    })
}

/// Packs every `*.wasm` in `dir` (with their sidecars) into the bundle `out`.
pub fn pack(dir: &Path, out: &Path) -> Result<BundleManifest, PluginError> {
    let mut wasm_files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io(dir, "read plugin directory"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wasm") && p.is_file())
        .collect();
    wasm_files.sort();
    if wasm_files.is_empty() {
        return Err(PluginError::Manifest {
            origin: dir.display().to_string(),
            pointer: String::new(),
            reason: "no *.wasm components to pack".into(),
        });
    }
    let mut manifest = BundleManifest {
        format: FORMAT.into(),
        plugins: Vec::new(),
        files: BTreeMap::new(),
    };
    let mut contents = Vec::new();
    for p in &wasm_files {
        let bytes = std::fs::read(p).map_err(io(p, "read component"))?;
        let file = p
            .file_name()
            .and_then(|f| f.to_str())
            .unwrap_or("plugin.wasm")
            .to_string();
        let entry = describe(p, &bytes, &file)?;
        manifest.files.insert(file.clone(), entry.blake3.clone());
        manifest.plugins.push(entry);
        contents.push((file, bytes));
    }
    manifest.validate(&dir.display().to_string())?;

    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = tempfile::NamedTempFile::new_in(parent).map_err(io(parent, "create temp file"))?;
    {
        let mut zip = zip::ZipWriter::new(tmp.as_file());
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        let zerr = |e: zip::result::ZipError| PluginError::BadZip {
            path: out.to_path_buf(),
            reason: e.to_string(),
        };
        zip.start_file(MANIFEST_NAME, opts).map_err(zerr)?;
        let text = serde_json::to_vec_pretty(&manifest).expect("manifest serializes");
        zip.write_all(&text).map_err(io(out, "write bundle"))?;
        for (name, bytes) in &contents {
            zip.start_file(name.as_str(), opts).map_err(zerr)?;
            zip.write_all(bytes).map_err(io(out, "write bundle"))?;
        }
        zip.finish().map_err(zerr)?;
    }
    tmp.as_file().sync_all().map_err(io(out, "fsync bundle"))?;
    tmp.persist(out)
        .map_err(|e| io(out, "rename bundle into place")(e.error))?;
    Ok(manifest)
}

/// A bundle read into memory and fully verified.
pub struct Bundle {
    pub manifest: BundleManifest,
    pub files: BTreeMap<String, Vec<u8>>,
}

fn unsafe_entry(bundle: &Path, entry: &str, reason: impl Into<String>) -> PluginError {
    PluginError::UnsafeEntry {
        bundle: bundle.to_path_buf(),
        entry: entry.to_string(),
        reason: reason.into(),
    }
}

/// Checks an entry name is a plain relative path that stays inside the bundle.
fn check_entry_name(bundle: &Path, name: &str) -> Result<(), PluginError> {
    if name.starts_with('/') || name.starts_with('\\') || name.contains('\\') || name.contains('\0')
    {
        return Err(unsafe_entry(
            bundle,
            name,
            "absolute paths and backslashes are not allowed",
        ));
    }
    if name.len() >= 2 && name.as_bytes()[1] == b':' {
        return Err(unsafe_entry(
            bundle,
            name,
            "drive-letter paths are not allowed",
        ));
    }
    if name.split('/').any(|c| c == ".." || c == ".") {
        return Err(unsafe_entry(
            bundle,
            name,
            "`..` and `.` path components are not allowed (zip-slip)",
        ));
    }
    Ok(())
}

/// Reads and verifies a bundle: every entry safe and within limits, every file listed with the
/// right blake3, the manifest consistent.
pub fn read(path: &Path) -> Result<Bundle, PluginError> {
    let f = std::fs::File::open(path).map_err(io(path, "open bundle"))?;
    let mut zip = zip::ZipArchive::new(f).map_err(|e| PluginError::BadZip {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    if zip.len() > MAX_ENTRIES {
        return Err(PluginError::BadZip {
            path: path.to_path_buf(),
            reason: format!("{} entries; at most {MAX_ENTRIES} are accepted", zip.len()),
        });
    }
    let mut manifest_bytes = None;
    let mut files = BTreeMap::new();
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(|e| PluginError::BadZip {
            path: path.to_path_buf(),
            reason: format!("entry {i}: {e}"),
        })?;
        let name = entry.name().to_string();
        check_entry_name(path, &name)?;
        if entry.enclosed_name().is_none() {
            return Err(unsafe_entry(path, &name, "escapes the bundle"));
        }
        if entry.is_symlink() {
            return Err(unsafe_entry(path, &name, "symbolic links are not allowed"));
        }
        if entry.is_dir() {
            continue;
        }
        if entry.size() > MAX_ENTRY_BYTES {
            return Err(PluginError::TooLarge {
                bundle: path.to_path_buf(),
                entry: name,
                size: entry.size(),
                limit: MAX_ENTRY_BYTES,
            });
        }
        let mut buf = Vec::with_capacity(entry.size() as usize);
        // Never trust the declared size: read at most one byte past the limit.
        (&mut entry)
            .take(MAX_ENTRY_BYTES + 1)
            .read_to_end(&mut buf)
            .map_err(|e| PluginError::BadZip {
                path: path.to_path_buf(),
                reason: format!("entry `{name}`: {e}"),
            })?;
        if buf.len() as u64 > MAX_ENTRY_BYTES {
            return Err(PluginError::TooLarge {
                bundle: path.to_path_buf(),
                entry: name,
                size: buf.len() as u64,
                limit: MAX_ENTRY_BYTES,
            });
        }
        if name == MANIFEST_NAME {
            manifest_bytes = Some(buf);
        } else if files.insert(name.clone(), buf).is_some() {
            return Err(unsafe_entry(path, &name, "appears twice"));
        }
    }
    let origin = path.display().to_string();
    let Some(mb) = manifest_bytes else {
        return Err(PluginError::Manifest {
            origin,
            pointer: String::new(),
            reason: format!("the bundle has no {MANIFEST_NAME}"),
        });
    };
    let manifest: BundleManifest =
        serde_json::from_slice(&mb).map_err(|e| PluginError::Manifest {
            origin: format!("{origin}!{MANIFEST_NAME}"),
            pointer: String::new(),
            reason: format!("line {} column {}: {e}", e.line(), e.column()),
        })?;
    manifest.validate(&format!("{origin}!{MANIFEST_NAME}"))?;
    for name in files.keys() {
        if !manifest.files.contains_key(name) {
            return Err(unsafe_entry(
                path,
                name,
                "is not listed in the manifest's files",
            ));
        }
    }
    for (name, expected) in &manifest.files {
        let Some(bytes) = files.get(name) else {
            return Err(PluginError::Manifest {
                origin,
                pointer: format!("/files/{}", name.replace('~', "~0").replace('/', "~1")),
                reason: "listed but missing from the bundle".into(),
            });
        };
        let actual = blake3::hash(bytes).to_hex().to_string();
        if actual != *expected {
            return Err(PluginError::DigestMismatch {
                origin,
                file: name.clone(),
                expected: expected.clone(),
                actual,
            });
        }
    }
    Ok(Bundle { manifest, files })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_names() {
        let b = Path::new("b.zip");
        assert!(check_entry_name(b, "echo.wasm").is_ok());
        assert!(check_entry_name(b, "plugins/echo.wasm").is_ok());
        assert!(check_entry_name(b, "../evil.wasm").is_err());
        assert!(check_entry_name(b, "a/../../evil").is_err());
        assert!(check_entry_name(b, "/etc/passwd").is_err());
        assert!(check_entry_name(b, "C:/x").is_err());
        assert!(check_entry_name(b, "a\\..\\b").is_err());
    }
}
