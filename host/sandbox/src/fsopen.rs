//! Opening host paths without following symbolic links: a granted directory or file is opened
//! beneath a trusted root (the operator's base directory, or `/` for absolute grants) one
//! component at a time with `O_NOFOLLOW`, so a link a guest planted earlier can never redirect
//! a later preopen or read. The opened descriptor is what gets used, never the path again.

use rustix::fs::{openat, statat, AtFlags, FileType, Mode, OFlags, CWD};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

/// Opens a directory the operator trusts (symlinks in it are the operator's own).
pub(crate) fn open_trusted_dir(path: &Path) -> Result<OwnedFd, String> {
    openat(
        CWD,
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("cannot open {}: {e}", path.display()))
}

/// Opens `rel` (a normal relative path, no `.`/`..`; empty: `root` itself) beneath `root`,
/// refusing a symbolic link in any component. `dir`: the last component must be a directory,
/// else a regular file (opened non-blocking, so a planted FIFO cannot hang the host).
pub(crate) fn open_beneath(root: &OwnedFd, rel: &str, dir: bool) -> Result<OwnedFd, String> {
    let segs: Vec<&str> = rel.split('/').filter(|s| !s.is_empty()).collect();
    if segs.iter().any(|s| *s == "." || *s == "..") {
        return Err(format!("`{rel}` is not a normal relative path"));
    }
    let mut cur = openat(
        root.as_fd(),
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("cannot reopen the root: {e}"))?;
    for (i, seg) in segs.iter().enumerate() {
        let last = i + 1 == segs.len();
        let mut flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW;
        if !last || dir {
            flags |= OFlags::DIRECTORY;
        } else {
            flags |= OFlags::NONBLOCK;
        }
        let so_far = segs[..=i].join("/");
        let next = match openat(cur.as_fd(), *seg, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(e) => {
                let why = match statat(cur.as_fd(), *seg, AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Symlink => {
                        "is a symbolic link (links are never followed)".to_string()
                    }
                    Ok(st) if FileType::from_raw_mode(st.st_mode) != FileType::Directory => {
                        if !last || dir {
                            "is not a directory".to_string()
                        } else {
                            e.to_string()
                        }
                    }
                    Ok(_) => e.to_string(),
                    Err(se) => se.to_string(),
                };
                return Err(format!("`{so_far}` {why}"));
            }
        };
        if last && !dir {
            // (a FIFO opened non-blocking, a device: refused here before anything reads it)
            let st = rustix::fs::fstat(&next).map_err(|e| format!("`{so_far}`: {e}"))?;
            if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
                return Err(format!("`{so_far}` is not a regular file"));
            }
        }
        cur = next;
    }
    Ok(cur)
}

/// Reads the regular file `rel` beneath the trusted directory `root` (no symbolic link
/// followed in any component), refusing one larger than `max` bytes.
pub fn read_file_beneath(root: &Path, rel: &str, max: u64) -> Result<Vec<u8>, BeneathError> {
    use std::io::Read;
    let root_fd = open_trusted_dir(root).map_err(BeneathError::Io)?;
    let fd = open_beneath(&root_fd, rel, false).map_err(BeneathError::Io)?;
    let mut out = Vec::new();
    std::fs::File::from(fd)
        .take(max.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| BeneathError::Io(format!("`{rel}`: {e}")))?;
    if out.len() as u64 > max {
        return Err(BeneathError::TooLarge(max));
    }
    Ok(out)
}

/// Whether `rel` is a regular file reachable beneath `root` without a symbolic link.
pub fn is_file_beneath(root: &Path, rel: &str) -> bool {
    open_trusted_dir(root)
        .and_then(|r| open_beneath(&r, rel, false))
        .is_ok()
}

/// Writes `body` as the file `rel` beneath `root`: missing directories are created, no
/// symbolic link is followed in any component, and the file appears whole (written to a
/// temporary name in its directory, then renamed over the old one).
pub fn write_file_beneath(root: &Path, rel: &str, body: &[u8]) -> Result<(), BeneathError> {
    use std::io::Write;
    let segs: Vec<&str> = rel.split('/').filter(|s| !s.is_empty()).collect();
    let Some((name, dirs)) = segs.split_last() else {
        return Err(BeneathError::Io("an empty path names no file".into()));
    };
    if segs.iter().any(|s| *s == "." || *s == "..") {
        return Err(BeneathError::Io(format!(
            "`{rel}` is not a normal relative path"
        )));
    }
    let root_fd = open_trusted_dir(root).map_err(BeneathError::Io)?;
    let mut cur = open_beneath(&root_fd, "", true).map_err(BeneathError::Io)?;
    for (i, seg) in dirs.iter().enumerate() {
        match rustix::fs::mkdirat(cur.as_fd(), *seg, Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => {
                return Err(BeneathError::Io(format!(
                    "cannot create `{}`: {e}",
                    dirs[..=i].join("/")
                )))
            }
        }
        cur = open_beneath(&cur, seg, true)
            .map_err(|e| BeneathError::Io(format!("`{}`: {e}", dirs[..=i].join("/"))))?;
    }
    let tmp = format!(".{name}.weft-{}.tmp", std::process::id());
    let fd = openat(
        cur.as_fd(),
        tmp.as_str(),
        OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o644),
    )
    .map_err(|e| BeneathError::Io(format!("cannot create `{rel}`: {e}")))?;
    let mut f = std::fs::File::from(fd);
    f.write_all(body)
        .and_then(|_| f.sync_all())
        .map_err(|e| BeneathError::Io(format!("cannot write `{rel}`: {e}")))?;
    rustix::fs::renameat(cur.as_fd(), tmp.as_str(), cur.as_fd(), *name)
        .map_err(|e| BeneathError::Io(format!("cannot write `{rel}`: {e}")))?;
    Ok(())
}

/// Why a file beneath a root could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BeneathError {
    #[error("{0}")]
    Io(String),
    #[error("larger than {0} bytes")]
    TooLarge(u64),
}

/// The path under which a process-local descriptor can be opened again: on Linux the
/// `/proc/self/fd` link resolves to the opened directory itself, whatever its path has become.
pub(crate) fn reopen_path(fd: &OwnedFd, host: &Path) -> std::path::PathBuf {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let _ = host;
        std::path::PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = fd;
        host.to_path_buf()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_are_refused_in_every_component() {
        let t = tempfile::tempdir().unwrap();
        let b = t.path();
        std::fs::create_dir_all(b.join("a/b")).unwrap();
        std::fs::write(b.join("a/b/f"), "x").unwrap();
        std::os::unix::fs::symlink("b", b.join("a/l")).unwrap();
        std::os::unix::fs::symlink("f", b.join("a/b/fl")).unwrap();
        let root = open_trusted_dir(b).unwrap();
        assert!(open_beneath(&root, "a/b", true).is_ok());
        assert!(open_beneath(&root, "a/b/f", false).is_ok());
        assert!(open_beneath(&root, "", true).is_ok());
        let e = open_beneath(&root, "a/l", true).unwrap_err();
        assert!(e.contains("symbolic link"), "{e}");
        assert!(open_beneath(&root, "a/l/f", false).is_err());
        assert!(open_beneath(&root, "a/b/fl", false).is_err());
        assert!(open_beneath(&root, "a/b/f", true).is_err());
        assert!(open_beneath(&root, "a/../a", true).is_err());
    }
}
