//! File helpers that make sandbox denials visible.
//!
//! Inside the sandbox only the directories a grant names are preopened (read-only for
//! `fs:Read`, read-write for `fs:Write`). A guest only sees an errno, so these helpers report:
//! - permission errors (`EPERM`/`EACCES`/`ENOTCAPABLE`, e.g. `..` or symlink escapes, writes to
//!   a read-only grant) as `Sandbox.PermissionDenied` with cause `"<path>: <why>"`;
//! - paths outside every preopened directory (which wasi-libc reports as "not found") as
//!   `Sandbox.PermissionDenied` too, naming the granted directories;
//! - a missing file inside a granted directory as `File.NotFound`; anything else as `File.Error`.

use std::io;
use std::path::{Component, Path, PathBuf};

use crate::TaskError;

/// Read a UTF-8 file.
pub fn read_to_string(path: impl AsRef<Path>) -> Result<String, TaskError> {
    let path = path.as_ref();
    std::fs::read_to_string(path).map_err(|e| io_error(path, e))
}

/// Read a file's bytes.
pub fn read(path: impl AsRef<Path>) -> Result<Vec<u8>, TaskError> {
    let path = path.as_ref();
    std::fs::read(path).map_err(|e| io_error(path, e))
}

/// Write (create or truncate) a file.
pub fn write(path: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> Result<(), TaskError> {
    let path = path.as_ref();
    std::fs::write(path, contents).map_err(|e| io_error(path, e))
}

/// Create a directory and its parents.
pub fn create_dir_all(path: impl AsRef<Path>) -> Result<(), TaskError> {
    let path = path.as_ref();
    std::fs::create_dir_all(path).map_err(|e| io_error(path, e))
}

/// Whether `path` exists. A path outside every granted directory is an error
/// (`Sandbox.PermissionDenied`), not `false`, so a misconfigured grant is not a silent wait.
pub fn exists(path: impl AsRef<Path>) -> Result<bool, TaskError> {
    let path = path.as_ref();
    match std::fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(denied) = outside_grants(path) {
                Err(denied)
            } else {
                Ok(false)
            }
        }
        Err(e) => Err(io_error(path, e)),
    }
}

/// The entries of a directory (full paths), sorted.
pub fn read_dir(path: impl AsRef<Path>) -> Result<Vec<PathBuf>, TaskError> {
    let path = path.as_ref();
    let mut out = Vec::new();
    for entry in std::fs::read_dir(path).map_err(|e| io_error(path, e))? {
        out.push(entry.map_err(|e| io_error(path, e))?.path());
    }
    out.sort();
    Ok(out)
}

// WASI preview1 errno values (what `raw_os_error` holds on wasm32-wasip1).
const EACCES: i32 = 2;
const EPERM: i32 = 63;
const EROFS: i32 = 69;
const ENOTCAPABLE: i32 = 76;

/// Map an `io::Error` on `path` to a [`TaskError`] (see the module docs).
pub fn io_error(path: &Path, e: io::Error) -> TaskError {
    let shown = path.display();
    let raw = if cfg!(target_os = "wasi") {
        e.raw_os_error()
    } else {
        None
    };
    let denied = e.kind() == io::ErrorKind::PermissionDenied
        || matches!(raw, Some(EACCES | EPERM | EROFS | ENOTCAPABLE))
        || e.to_string().contains("pre-opened");
    if denied {
        if let Some(outside) = outside_grants(path) {
            return outside;
        }
        return TaskError::permission_denied(format!(
            "{shown}: not permitted by the grant (a `..` or symlink escape, or a write to a \
             read-only directory): {e}"
        ));
    }
    if e.kind() == io::ErrorKind::NotFound {
        if let Some(outside) = outside_grants(path) {
            return outside;
        }
        return TaskError::new(
            "File.NotFound",
            format!("{shown}: no such file or directory"),
        );
    }
    TaskError::new("File.Error", format!("{shown}: {e}"))
}

/// `Some(PermissionDenied)` if `path` (normalized lexically) is not inside any preopened dir.
fn outside_grants(path: &Path) -> Option<TaskError> {
    let dirs = preopens()?;
    let target = normalize(path);
    if dirs.iter().any(|d| target.starts_with(normalize(d))) {
        return None;
    }
    let granted = if dirs.is_empty() {
        "no directories are granted".to_string()
    } else {
        let names: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        format!("granted directories: {}", names.join(", "))
    };
    Some(TaskError::permission_denied(format!(
        "{}: not inside any granted directory ({granted})",
        path.display()
    )))
}

/// Lexical normalization against the WASI cwd `/`: resolves `.` and `..` (never above `/`).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
        }
    }
    out
}

/// The preopened directory names, or `None` when not running under WASI.
#[cfg(target_os = "wasi")]
pub fn preopens() -> Option<&'static [PathBuf]> {
    use std::sync::OnceLock;
    static DIRS: OnceLock<Vec<PathBuf>> = OnceLock::new();
    Some(DIRS.get_or_init(wasi_preopens::list))
}

/// The preopened directory names, or `None` when not running under WASI.
#[cfg(not(target_os = "wasi"))]
pub fn preopens() -> Option<&'static [PathBuf]> {
    None
}

#[cfg(target_os = "wasi")]
mod wasi_preopens {
    use std::path::PathBuf;

    #[repr(C)]
    struct Prestat {
        tag: u8,
        name_len: usize,
    }

    #[link(wasm_import_module = "wasi_snapshot_preview1")]
    extern "C" {
        #[link_name = "fd_prestat_get"]
        fn fd_prestat_get(fd: u32, out: *mut Prestat) -> u16;
        #[link_name = "fd_prestat_dir_name"]
        fn fd_prestat_dir_name(fd: u32, path: *mut u8, len: usize) -> u16;
    }

    pub fn list() -> Vec<PathBuf> {
        let mut out = Vec::new();
        // Preopens are numbered from 3 up; the first EBADF ends the list.
        for fd in 3u32..1024 {
            let mut st = Prestat {
                tag: 0,
                name_len: 0,
            };
            // SAFETY: `st` is a valid, writable prestat record.
            if unsafe { fd_prestat_get(fd, &mut st) } != 0 {
                break;
            }
            if st.tag != 0 {
                continue;
            }
            let mut buf = vec![0u8; st.name_len];
            // SAFETY: `buf` has exactly `name_len` writable bytes.
            if unsafe { fd_prestat_dir_name(fd, buf.as_mut_ptr(), buf.len()) } != 0 {
                continue;
            }
            while buf.last() == Some(&0) {
                buf.pop();
            }
            out.push(PathBuf::from(String::from_utf8_lossy(&buf).into_owned()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_lexically_against_root() {
        assert_eq!(
            normalize(Path::new("/data/../etc/passwd")),
            PathBuf::from("/etc/passwd")
        );
        assert_eq!(
            normalize(Path::new("data/./in/../x")),
            PathBuf::from("/data/x")
        );
        assert_eq!(normalize(Path::new("/../../x")), PathBuf::from("/x"));
    }

    #[test]
    fn maps_errors_to_names() {
        let p = Path::new("/data/x");
        let denied = io_error(p, io::Error::from(io::ErrorKind::PermissionDenied));
        assert_eq!(denied.error, "Sandbox.PermissionDenied");
        assert!(denied.cause.starts_with("/data/x: "));
        assert_eq!(
            io_error(p, io::Error::from(io::ErrorKind::NotFound)).error,
            "File.NotFound"
        );
        assert_eq!(io_error(p, io::Error::other("boom")).error, "File.Error");
    }
}
