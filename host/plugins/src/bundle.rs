//! The bundle format: a zip holding `weft-bundle.json` and the components it lists. Packing
//! writes the zip atomically. Reading decides everything it can from the zip directory before
//! inflating a byte (entry names, duplicates, symlinks, the per-entry, per-bundle and entry-count
//! caps of [`crate::limits`]), then inflates and checks the manifest, refuses any entry the
//! manifest does not list without inflating it, and inflates the listed ones through a reader
//! that stops one byte past the size their headers declare, so a lying header costs no more
//! memory than an honest one. Digest mismatches are refused before anything is returned.

use crate::limits::{
    read_capped, MAX_BUNDLE_BYTES, MAX_COMPONENT_BYTES, MAX_ENTRIES, MAX_MANIFEST_BYTES,
};
use crate::manifest::{BundleManifest, PluginEntry, Sidecar, FORMAT, MANIFEST_NAME};
use crate::zip_index::{self, EntryInfo};
use crate::{inspect_component, strict_json, PluginError};
use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Largest single entry accepted from a bundle (see [`crate::limits`]).
pub const MAX_ENTRY_BYTES: u64 = MAX_COMPONENT_BYTES;

fn io(path: &Path, what: &'static str) -> impl FnOnce(std::io::Error) -> PluginError {
    let path = path.to_path_buf();
    move |source| PluginError::Io { path, what, source }
}

/// Reads `NAME.plugin.json` next to a component, if present.
pub fn read_sidecar(wasm: &Path) -> Result<Sidecar, PluginError> {
    let side = wasm.with_extension("plugin.json");
    match read_capped(&side, MAX_MANIFEST_BYTES, "read sidecar manifest") {
        Ok(b) => strict_json::from_slice(&b).map_err(|e| PluginError::Manifest {
            origin: side.display().to_string(),
            pointer: String::new(),
            reason: format!("line {}: {e}", e.line()),
        }),
        Err(PluginError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            Ok(Sidecar::default())
        }
        Err(e) => Err(e),
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
    if wasm_files.len() >= MAX_ENTRIES {
        return Err(PluginError::TooManyEntries {
            bundle: out.to_path_buf(),
            count: wasm_files.len() + 1,
            limit: MAX_ENTRIES,
        });
    }
    let mut contents = Vec::new();
    let mut total = 0u64;
    for p in &wasm_files {
        let bytes = read_capped(p, MAX_COMPONENT_BYTES, "read component")?;
        let file = p
            .file_name()
            .and_then(|f| f.to_str())
            .unwrap_or("plugin.wasm")
            .to_string();
        check_entry_name(out, &file)?;
        total += bytes.len() as u64;
        if total > MAX_BUNDLE_BYTES {
            return Err(PluginError::BundleTooLarge {
                bundle: out.to_path_buf(),
                entry: file,
                total,
                limit: MAX_BUNDLE_BYTES,
            });
        }
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

/// Checks an entry name is a plain relative path that stays inside the bundle and means the same
/// file to every tool: `/`-separated components of ASCII letters, digits, `.`, `_`, `-` and `+`,
/// none empty, `.` or `..` (so no absolute paths, drive letters, backslashes, `a//b`, `./a`,
/// control characters or look-alike Unicode). A directory entry keeps its one trailing `/`.
pub(crate) fn check_entry_name(bundle: &Path, name: &str) -> Result<(), PluginError> {
    let path = name.strip_suffix('/').unwrap_or(name);
    if path.is_empty() || name.len() > 255 {
        return Err(unsafe_entry(
            bundle,
            name,
            "entry names are 1 to 255 characters",
        ));
    }
    if let Some(c) = path
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-' | '+')))
    {
        return Err(unsafe_entry(
            bundle,
            name,
            format!(
                "{c:?} is not allowed in an entry name (ASCII letters, digits, `/`, `.`, `_`, `-`, `+`; no absolute paths, backslashes or drive letters)"
            ),
        ));
    }
    if path.starts_with('/') {
        return Err(unsafe_entry(bundle, name, "absolute paths are not allowed"));
    }
    if path.split('/').any(|c| c == ".." || c == ".") {
        return Err(unsafe_entry(
            bundle,
            name,
            "`..` and `.` path components are not allowed (zip-slip)",
        ));
    }
    if path.split('/').any(str::is_empty) {
        return Err(unsafe_entry(
            bundle,
            name,
            "empty path components (`a//b`) are not allowed",
        ));
    }
    Ok(())
}

/// Inflates one entry, refusing it as soon as it yields a byte past its declared size.
fn inflate(
    bundle: &Path,
    zip: &mut zip::ZipArchive<&std::fs::File>,
    e: &EntryInfo,
) -> Result<Vec<u8>, PluginError> {
    let mut entry = zip.by_index(e.index).map_err(|err| PluginError::BadZip {
        path: bundle.to_path_buf(),
        reason: format!("entry `{}`: {err}", e.name),
    })?;
    // `e.size` is within the caps checked from the headers: the allocation is bounded.
    let mut buf = Vec::with_capacity(e.size as usize);
    (&mut entry)
        .take(e.size + 1)
        .read_to_end(&mut buf)
        .map_err(|err| PluginError::BadZip {
            path: bundle.to_path_buf(),
            reason: format!("entry `{}`: {err}", e.name),
        })?;
    let mismatch = |reason: String| PluginError::SizeMismatch {
        bundle: bundle.to_path_buf(),
        entry: e.name.clone(),
        declared: e.size,
        reason,
    };
    match (buf.len() as u64).cmp(&e.size) {
        std::cmp::Ordering::Greater => Err(mismatch(
            "inflates to more; refused at the first byte past it (a zip bomb?)".into(),
        )),
        std::cmp::Ordering::Less => Err(mismatch(format!("inflates to only {}", buf.len()))),
        std::cmp::Ordering::Equal => Ok(buf),
    }
}

/// Reads and verifies a bundle: every entry safe and within limits, every file listed with the
/// right blake3, the manifest consistent.
pub fn read(path: &Path) -> Result<Bundle, PluginError> {
    let f = std::fs::File::open(path).map_err(io(path, "open bundle"))?;
    let meta = f.metadata().map_err(io(path, "open bundle"))?;
    if !meta.is_file() {
        return Err(PluginError::NotAFile {
            path: path.to_path_buf(),
            what: "read bundle",
        });
    }
    if meta.len() > MAX_BUNDLE_BYTES {
        return Err(PluginError::FileTooLarge {
            path: path.to_path_buf(),
            what: "read bundle",
            size: meta.len(),
            limit: MAX_BUNDLE_BYTES,
        });
    }
    let mut zip = zip::ZipArchive::new(&f).map_err(|e| PluginError::BadZip {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let entries = zip_index::entries(path, &f, &mut zip)?;

    // 1. Everything the headers tell, before anything is inflated.
    let mut seen: HashMap<String, &str> = HashMap::new();
    let mut total = 0u64;
    let mut manifest_entry = None;
    for e in &entries {
        check_entry_name(path, &e.name)?;
        if e.is_symlink {
            return Err(unsafe_entry(
                path,
                &e.name,
                "symbolic links are not allowed",
            ));
        }
        if e.encrypted {
            return Err(unsafe_entry(
                path,
                &e.name,
                "encrypted entries are not supported",
            ));
        }
        // Case-insensitive file systems would write both to one file.
        let key = e.name.trim_end_matches('/').to_ascii_lowercase();
        if let Some(first) = seen.insert(key, &e.name) {
            return Err(PluginError::DuplicateEntry {
                bundle: path.to_path_buf(),
                first: first.to_string(),
                second: e.name.clone(),
                how: " once case is ignored",
            });
        }
        if e.is_dir {
            if e.size != 0 {
                return Err(unsafe_entry(
                    path,
                    &e.name,
                    "a directory entry with content",
                ));
            }
            continue;
        }
        let (limit, cap) = if e.name == MANIFEST_NAME {
            (MAX_MANIFEST_BYTES, "for weft-bundle.json")
        } else {
            (MAX_COMPONENT_BYTES, "for one component")
        };
        if e.size > limit {
            return Err(PluginError::TooLarge {
                bundle: path.to_path_buf(),
                entry: e.name.clone(),
                size: e.size,
                limit,
                cap,
            });
        }
        total = total.saturating_add(e.size);
        if total > MAX_BUNDLE_BYTES {
            return Err(PluginError::BundleTooLarge {
                bundle: path.to_path_buf(),
                entry: e.name.clone(),
                total,
                limit: MAX_BUNDLE_BYTES,
            });
        }
        if e.name == MANIFEST_NAME {
            manifest_entry = Some(e);
        }
    }

    // 2. The manifest, inflated and checked first.
    let origin = path.display().to_string();
    let Some(me) = manifest_entry else {
        return Err(PluginError::Manifest {
            origin,
            pointer: String::new(),
            reason: format!("the bundle has no {MANIFEST_NAME}"),
        });
    };
    let mb = inflate(path, &mut zip, me)?;
    let manifest: BundleManifest =
        strict_json::from_slice(&mb).map_err(|e| PluginError::Manifest {
            origin: format!("{origin}!{MANIFEST_NAME}"),
            pointer: String::new(),
            reason: format!("line {} column {}: {e}", e.line(), e.column()),
        })?;
    manifest.validate(&format!("{origin}!{MANIFEST_NAME}"))?;

    // 3. Entries the manifest does not list are refused without being inflated.
    let mut listed = Vec::new();
    for e in &entries {
        if e.is_dir || e.name == MANIFEST_NAME {
            continue;
        }
        if !manifest.files.contains_key(&e.name) {
            return Err(unsafe_entry(
                path,
                &e.name,
                "is not listed in the manifest's files (nothing unlisted is inflated)",
            ));
        }
        listed.push(e);
    }
    for name in manifest.files.keys() {
        if !listed.iter().any(|e| e.name == *name) {
            return Err(PluginError::Manifest {
                origin,
                pointer: format!("/files/{}", name.replace('~', "~0").replace('/', "~1")),
                reason: "listed but missing from the bundle".into(),
            });
        }
    }

    // 4. The listed files, each bounded by its declared size, then their digests.
    let mut files = BTreeMap::new();
    for e in listed {
        let bytes = inflate(path, &mut zip, e)?;
        let expected = &manifest.files[&e.name];
        let actual = blake3::hash(&bytes).to_hex().to_string();
        if actual != *expected {
            return Err(PluginError::DigestMismatch {
                origin,
                file: e.name.clone(),
                expected: expected.clone(),
                actual,
            });
        }
        files.insert(e.name.clone(), bytes);
    }
    Ok(Bundle { manifest, files })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_names() {
        let b = Path::new("b.zip");
        for ok in [
            "echo.wasm",
            "plugins/echo.wasm",
            "plugins/",
            "a-b_c+1.wasm",
            ".hidden.wasm",
        ] {
            assert!(check_entry_name(b, ok).is_ok(), "{ok}");
        }
        for bad in [
            "../evil.wasm",
            "a/../../evil",
            "/etc/passwd",
            "C:/x",
            "C:\\x",
            "a\\..\\b",
            "./a.wasm",
            "a/./b.wasm",
            "a//b.wasm",
            "//a.wasm",
            "a.wasm//",
            "",
            "/",
            "a.wasm\0",
            "a.wasm ",
            " a.wasm",
            "a%2e%2e/b",
            "caf\u{e9}.wasm",
            "e\u{301}.wasm",
            "\u{ff0e}\u{ff0e}/a.wasm",
            "a\u{2215}b.wasm",
            "a\nb.wasm",
        ] {
            let e = check_entry_name(b, bad).unwrap_err();
            assert!(matches!(e, PluginError::UnsafeEntry { .. }), "{bad:?}: {e}");
        }
        assert!(check_entry_name(b, &"a".repeat(256)).is_err());
    }
}
