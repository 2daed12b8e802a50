//! A DAG folder's vendored Python packages on the wire to remote workers. The node packs its
//! unpacked packages folder ([`crate::py_packages::install`]) into one deterministic zip
//! archive, stores it in its blob store and names it in the task message by the archive's
//! blake3 ([`publish`]); a worker that lacks that digest fetches the archive, verifies it
//! against the digest before anything is written, unpacks it as hostile input (the checks of
//! [`crate::py_packages::wheel::checked_entry`], plus caps on entries and total size) and
//! keeps it per digest under `$WEFT_HOME/cache/worker-packages/<digest>`, the folder that is
//! then shown read-only at [`crate::py_packages::GUEST_PATH`] ([`ensure`]).

use crate::py_packages::wheel::{self, Entry};
use crate::py_packages::{Packages, MAX_TREE_BYTES};
use crate::remote::{read_verified, RemoteTaskError};
use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use weft_store::{BlobStore, Digest};

/// Largest packages archive fetched or unpacked.
pub const MAX_ARCHIVE_BYTES: u64 = MAX_TREE_BYTES;
/// Most files in one packages archive.
pub const MAX_ARCHIVE_ENTRIES: usize = 50_000;
/// Where a worker keeps fetched packages folders, below `$WEFT_HOME`.
pub const CACHE_DIR: &str = "cache/worker-packages";
/// The name of the archive in messages.
const LABEL: &str = "the DAG folder's Python packages";

/// Why a packages folder cannot be packed on the node.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    #[error("{path}: {reason}")]
    Io { path: String, reason: String },
    #[error("{path}: {reason}; refused")]
    Refused { path: String, reason: String },
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> PackError {
    PackError::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// The regular files below `dir`, relative `/`-separated paths in byte order (links and other
/// special files refused: the node's packages folder holds none).
fn files_of(dir: &Path) -> Result<Vec<(String, PathBuf)>, PackError> {
    let mut out = Vec::new();
    let mut todo = vec![(String::new(), dir.to_path_buf())];
    while let Some((rel, path)) = todo.pop() {
        for e in std::fs::read_dir(&path).map_err(|e| io_err(&path, e))? {
            let e = e.map_err(|e| io_err(&path, e))?;
            let name = e
                .file_name()
                .into_string()
                .map_err(|_| PackError::Refused {
                    path: e.path().display().to_string(),
                    reason: "the name is not UTF-8".into(),
                })?;
            let r = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let t = e.file_type().map_err(|err| io_err(&e.path(), err))?;
            if t.is_dir() {
                todo.push((r, e.path()));
            } else if t.is_file() {
                out.push((r, e.path()));
            } else {
                return Err(PackError::Refused {
                    path: e.path().display().to_string(),
                    reason: "not a regular file or folder".into(),
                });
            }
            if out.len() > MAX_ARCHIVE_ENTRIES {
                return Err(PackError::Refused {
                    path: dir.display().to_string(),
                    reason: format!("more than {MAX_ARCHIVE_ENTRIES} files"),
                });
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The packages folder `dir` as one zip archive: its files in byte order of their paths, with
/// a fixed time and mode, so the same folder always gives the same bytes (and digest).
pub fn pack(dir: &Path) -> Result<Vec<u8>, PackError> {
    let files = files_of(dir)?;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(zip::DateTime::default())
        .unix_permissions(0o644);
    let zerr = |e: zip::result::ZipError| io_err(dir, e);
    let mut total = 0u64;
    for (rel, path) in &files {
        let bytes = std::fs::read(path).map_err(|e| io_err(path, e))?;
        total += bytes.len() as u64;
        if total > MAX_TREE_BYTES {
            return Err(PackError::Refused {
                path: dir.display().to_string(),
                reason: format!("more than {MAX_TREE_BYTES} bytes"),
            });
        }
        zip.start_file(rel.as_str(), opts).map_err(zerr)?;
        zip.write_all(&bytes).map_err(|e| io_err(path, e))?;
    }
    Ok(zip.finish().map_err(zerr)?.into_inner())
}

/// The digest of the archive of `packages` in `blobs`, packing and storing it the first time
/// (remembered per packages folder while its blob is in the store).
pub fn publish(blobs: &BlobStore, packages: &Packages) -> Result<Digest, PackError> {
    static MEMO: OnceLock<Mutex<HashMap<PathBuf, Digest>>> = OnceLock::new();
    let memo = MEMO.get_or_init(Default::default);
    let known = memo
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&packages.dir)
        .copied();
    if let Some(d) = known.filter(|d| blobs.contains(d)) {
        return Ok(d);
    }
    let bytes = pack(&packages.dir)?;
    let d = blobs.put(&bytes).map_err(|e| io_err(&packages.dir, e))?;
    tracing::debug!(packages = %packages.digest.to_hex(), archive = %d.to_hex(), bytes = bytes.len(), "Python packages published for workers");
    let mut m = memo.lock().unwrap_or_else(|e| e.into_inner());
    if m.len() > 256 {
        m.clear();
    }
    m.insert(packages.dir.clone(), d);
    Ok(d)
}

/// The archive's files, checked as hostile input (see the module docs).
fn entries_of(bytes: &[u8]) -> Result<Vec<Entry>, String> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| format!("not a readable archive (zip): {e}"))?;
    if zip.len() > MAX_ARCHIVE_ENTRIES {
        return Err(format!("more than {MAX_ARCHIVE_ENTRIES} entries"));
    }
    let mut out = Vec::new();
    let mut total = 0u64;
    for i in 0..zip.len() {
        if let Some(e) = wheel::checked_entry(&mut zip, i, "the archive")? {
            total += e.bytes.len() as u64;
            if total > MAX_TREE_BYTES {
                return Err(format!("unpacks to more than {MAX_TREE_BYTES} bytes"));
            }
            out.push(e);
        }
    }
    Ok(out)
}

/// Parses a packages digest of a task message.
fn parse_digest(hex: &str) -> Result<Digest, RemoteTaskError> {
    hex.parse()
        .ok()
        .filter(|_| hex.len() == 64)
        .ok_or_else(|| RemoteTaskError::BadMessage {
            field: "packages",
            reason: format!(
                "`{}` is not a blake3 digest (64 hex digits)",
                hex.chars().take(80).collect::<String>()
            ),
        })
}

/// The folder of the packages archive `digest` below `home` (a worker's `$WEFT_HOME`): kept
/// from an earlier task, else fetched with `fetch` (which must hand back bytes verified against
/// the digest, as [`read_verified`] does; they are checked again here), unpacked into a staging
/// folder and moved into place in one rename, so a folder of that name is always complete.
pub fn ensure(
    home: &Path,
    digest: &str,
    fetch: impl FnOnce(&Digest) -> Result<Vec<u8>, RemoteTaskError>,
) -> Result<PathBuf, RemoteTaskError> {
    let d = parse_digest(digest)?;
    let hex = d.to_hex().to_string();
    let root = home.join(CACHE_DIR);
    let dir = root.join(&hex);
    if dir.is_dir() {
        return Ok(dir);
    }
    let bytes = fetch(&d).map_err(|e| match e {
        RemoteTaskError::PluginCorrupt { pinned, got, .. } => {
            RemoteTaskError::PackagesCorrupt { pinned, got }
        }
        other => other,
    })?;
    // the fetch verified them; a second look costs little and guards a careless `fetch`
    read_verified(LABEL, &d, &bytes[..], MAX_ARCHIVE_BYTES).map_err(|e| match e {
        RemoteTaskError::PluginCorrupt { pinned, got, .. } => {
            RemoteTaskError::PackagesCorrupt { pinned, got }
        }
        other => other,
    })?;
    let refused = |reason: String| RemoteTaskError::PackagesRefused {
        digest: hex.clone(),
        reason,
    };
    let entries = entries_of(&bytes).map_err(refused)?;
    let io =
        |p: &Path, e: &dyn std::fmt::Display| refused(format!("cannot write {}: {e}", p.display()));
    std::fs::create_dir_all(&root).map_err(|e| io(&root, &e))?;
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let stage = root.join(format!(
        ".stage-{}-{}-{}",
        &hex[..16],
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&stage);
    std::fs::create_dir(&stage).map_err(|e| io(&stage, &e))?;
    if let Err(e) = wheel::write_tree(&stage, &entries) {
        let _ = std::fs::remove_dir_all(&stage);
        return Err(refused(e));
    }
    if std::fs::rename(&stage, &dir).is_err() {
        // another slot finished first: its folder has the same content
        let _ = std::fs::remove_dir_all(&stage);
        if !dir.is_dir() {
            return Err(io(&dir, &"cannot move the unpacked packages here"));
        }
    }
    tracing::info!(packages = %hex, files = entries.len(), "Python packages fetched from the node");
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn tree() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("tinypkg/sub")).unwrap();
        std::fs::write(d.path().join("tinypkg/__init__.py"), "VERSION = '1'\n").unwrap();
        std::fs::write(d.path().join("tinypkg/sub/x.py"), "X = 1\n").unwrap();
        d
    }

    fn zip_of(entries: &[(&str, &[u8], u32)]) -> Vec<u8> {
        let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (name, bytes, mode) in entries {
            let o = zip::write::SimpleFileOptions::default().unix_permissions(*mode);
            if mode & 0o170000 == 0o120000 {
                z.add_symlink(*name, "/etc/passwd", o).unwrap();
            } else {
                z.start_file(*name, o).unwrap();
                z.write_all(bytes).unwrap();
            }
        }
        z.finish().unwrap().into_inner()
    }

    /// `bytes` (a one-entry zip) with the entry's Unix mode set to `mode` in its central
    /// directory record (the writer keeps only permission bits).
    fn with_mode(mut bytes: Vec<u8>, mode: u32) -> Vec<u8> {
        let at = bytes
            .windows(4)
            .position(|w| w == b"PK\x01\x02")
            .expect("a central directory record");
        // version made by: Unix (3); external attributes: the mode in the high half
        bytes[at + 5] = 3;
        bytes[at + 38..at + 42].copy_from_slice(&(mode << 16).to_le_bytes());
        bytes
    }

    #[test]
    fn a_folder_packs_to_the_same_bytes_and_unpacks_once_per_digest() {
        let src = tree();
        let a = pack(src.path()).unwrap();
        assert_eq!(a, pack(src.path()).unwrap(), "deterministic");
        let d = Digest::of(&a);
        let home = tempfile::tempdir().unwrap();
        let fetches = Cell::new(0);
        let fetch = |want: &Digest| {
            fetches.set(fetches.get() + 1);
            read_verified(LABEL, want, &a[..], MAX_ARCHIVE_BYTES)
        };
        let dir = ensure(home.path(), &d.to_hex(), fetch).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("tinypkg/sub/x.py")).unwrap(),
            "X = 1\n"
        );
        // the second task finds it in the cache
        let again = ensure(home.path(), &d.to_hex(), |_| panic!("fetched twice")).unwrap();
        assert_eq!(again, dir);
        assert_eq!(fetches.get(), 1);
    }

    #[test]
    fn a_tampered_archive_is_refused_and_nothing_is_written() {
        let src = tree();
        let good = pack(src.path()).unwrap();
        let pinned = Digest::of(&good);
        let mut bad = good.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 0xff;
        let home = tempfile::tempdir().unwrap();
        let e = ensure(home.path(), &pinned.to_hex(), |d| {
            read_verified(LABEL, d, &bad[..], MAX_ARCHIVE_BYTES)
        })
        .unwrap_err();
        assert_eq!(e.error_name(), crate::remote::PLUGIN_CORRUPT);
        assert!(e.to_string().contains(&pinned.to_hex().to_string()), "{e}");
        // a careless fetch that skips the check is caught too
        let e = ensure(home.path(), &pinned.to_hex(), |_| Ok(bad.clone())).unwrap_err();
        assert_eq!(e.error_name(), crate::remote::PLUGIN_CORRUPT);
        assert!(!home
            .path()
            .join(CACHE_DIR)
            .join(pinned.to_hex().as_str())
            .exists());
        for bad in ["../../etc", "", "zz"] {
            let e = ensure(home.path(), bad, |_| panic!("must not fetch")).unwrap_err();
            assert!(e.to_string().contains("packages"), "{e}");
        }
    }

    #[test]
    fn hostile_archive_entries_are_refused() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (zip_of(&[("/etc/cron.d/x", b"x", 0o644)]), "absolute"),
            (zip_of(&[("a/../../x.py", b"x", 0o644)]), "`..`"),
            (zip_of(&[("link", b"", 0o120777)]), "symbolic link"),
            (
                with_mode(zip_of(&[("dev", b"", 0o644)]), 0o020644),
                "special file",
            ),
            (
                with_mode(zip_of(&[("fifo", b"", 0o644)]), 0o010644),
                "special file",
            ),
            (zip_of(&[("m/_x.so", b"\x7fELF", 0o644)]), "native code"),
            (
                zip_of(&[(
                    "big.py",
                    &vec![b' '; (wheel::MAX_ENTRY_BYTES + 1) as usize],
                    0o644,
                )]),
                "more than",
            ),
            (b"not a zip".to_vec(), "not a readable archive"),
        ];
        for (bytes, why) in cases {
            let home = tempfile::tempdir().unwrap();
            let d = Digest::of(&bytes);
            let out = ensure(home.path(), &d.to_hex(), |d| {
                read_verified(LABEL, d, &bytes[..], MAX_ARCHIVE_BYTES)
            });
            let e = out.expect_err(why);
            assert!(e.to_string().contains(why), "{why}: {e}");
            assert_eq!(e.error_name(), crate::remote::PLUGIN_CORRUPT);
            let left: Vec<_> = std::fs::read_dir(home.path().join(CACHE_DIR))
                .map(|r| r.flatten().collect())
                .unwrap_or_default();
            assert!(
                left.is_empty(),
                "{why}: nothing stays in the cache: {left:?}"
            );
            assert!(!Path::new("/etc/cron.d/x").exists());
        }
    }

    #[test]
    fn publish_stores_the_archive_once() {
        let src = tree();
        let home = tempfile::tempdir().unwrap();
        let blobs = BlobStore::open(home.path().join("blobs")).unwrap();
        let p = Packages {
            dir: src.path().to_path_buf(),
            digest: blake3::hash(b"tree"),
            packages: vec![],
        };
        let d = publish(&blobs, &p).unwrap();
        assert_eq!(blobs.get(&d).unwrap(), pack(src.path()).unwrap());
        assert_eq!(publish(&blobs, &p).unwrap(), d);
        // a link in the folder is refused rather than followed
        std::os::unix::fs::symlink("/etc/passwd", src.path().join("tinypkg/evil.py")).unwrap();
        assert!(matches!(pack(src.path()), Err(PackError::Refused { .. })));
    }
}
