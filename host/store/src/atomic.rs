//! Whole-file writes for everything the store keeps on disk (blobs, registry records): a temp
//! file in a scratch directory of the same filesystem, fsynced, renamed into place, then the
//! directory fsynced, so a crash leaves either the whole new file or the old one, never a part.

use crate::StoreError;
use std::fs;
use std::io::Write;
use std::path::Path;

/// What is being written, for the error messages of each step.
#[derive(Clone, Copy)]
pub(crate) enum Content {
    Blob,
    RegistryRecord,
}

impl Content {
    fn verbs(self) -> [&'static str; 4] {
        match self {
            Content::Blob => [
                "create blob directory",
                "write blob",
                "fsync blob",
                "rename blob into place",
            ],
            Content::RegistryRecord => [
                "create directory",
                "write registry record",
                "fsync registry record",
                "rename registry record into place",
            ],
        }
    }
}

/// Writes `bytes` to `dest` atomically, staging them in `tmp_dir` (on `dest`'s filesystem).
pub(crate) fn write_atomically(
    tmp_dir: &Path,
    dest: &Path,
    bytes: &[u8],
    content: Content,
) -> Result<(), StoreError> {
    let [mkdir, write, fsync, rename] = content.verbs();
    let dir = dest.parent().unwrap_or(tmp_dir).to_path_buf();
    fs::create_dir_all(&dir).map_err(|e| StoreError::io(&dir, mkdir, e))?;
    let mut tmp = tempfile::NamedTempFile::new_in(tmp_dir)
        .map_err(|e| StoreError::io(tmp_dir, "create temp file", e))?;
    tmp.write_all(bytes)
        .map_err(|e| StoreError::io(tmp.path(), write, e))?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| StoreError::io(tmp.path(), fsync, e))?;
    tmp.persist(dest)
        .map_err(|e| StoreError::io(dest, rename, e.error))?;
    sync_dir(&dir)
}

/// Makes a directory's entries (a rename, a removal) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    let f = fs::File::open(dir).map_err(|e| StoreError::io(dir, "open directory for fsync", e))?;
    f.sync_all()
        .map_err(|e| StoreError::io(dir, "fsync directory", e))
}
