//! Size caps for what enters the store (components, bundles, manifests) and the bounded reads
//! that enforce them: a file's size is checked on its open handle first, then it is read through
//! `Read::take(cap + 1)`, so a file that grows, lies about its size or never ends (a FIFO,
//! `/dev/zero`) costs at most `cap + 1` bytes of memory before it is refused.

use crate::PluginError;
use std::io::Read;
use std::path::Path;

/// Largest component accepted, alone or inside a bundle. Python components made by
/// componentize-py are about 40 MB with the interpreter and standard library; this leaves room
/// for their dependencies.
pub const MAX_COMPONENT_BYTES: u64 = 128 << 20;
/// Largest total uncompressed size of a bundle's entries (and largest bundle file). Everything
/// a bundle holds is verified in memory before anything is written, so this bounds the memory
/// an install takes.
pub const MAX_BUNDLE_BYTES: u64 = 256 << 20;
/// Largest `weft-bundle.json` or `NAME.plugin.json`.
pub const MAX_MANIFEST_BYTES: u64 = 1 << 20;
/// Most entries (files and directories) a bundle may hold.
pub const MAX_ENTRIES: usize = 1024;

/// Reads the regular file `path` whole, refusing it (without reading it) when its size is over
/// `cap`, and refusing it when it turns out longer than `cap` while being read.
pub fn read_capped(path: &Path, cap: u64, what: &'static str) -> Result<Vec<u8>, PluginError> {
    let io = |source| PluginError::Io {
        path: path.to_path_buf(),
        what,
        source,
    };
    let f = std::fs::File::open(path).map_err(io)?;
    let meta = f.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(PluginError::NotAFile {
            path: path.to_path_buf(),
            what,
        });
    }
    let too_large = |size| PluginError::FileTooLarge {
        path: path.to_path_buf(),
        what,
        size,
        limit: cap,
    };
    if meta.len() > cap {
        return Err(too_large(meta.len()));
    }
    let mut buf = Vec::with_capacity(meta.len() as usize);
    f.take(cap + 1).read_to_end(&mut buf).map_err(io)?;
    if buf.len() as u64 > cap {
        return Err(too_large(buf.len() as u64));
    }
    Ok(buf)
}

/// Whether `path` starts like a zip file (reads four bytes, never the whole file).
pub fn looks_like_zip(path: &Path) -> bool {
    let mut head = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .map(|_| head == *b"PK\x03\x04")
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capped_reads_refuse_big_files_and_non_files() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.wasm");
        std::fs::write(&p, vec![7u8; 100]).unwrap();
        assert_eq!(read_capped(&p, 100, "read component").unwrap().len(), 100);
        let e = read_capped(&p, 99, "read component").unwrap_err();
        assert!(
            matches!(
                e,
                PluginError::FileTooLarge {
                    size: 100,
                    limit: 99,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("a.wasm"), "{e}");
        let e = read_capped(d.path(), 99, "read component").unwrap_err();
        assert!(matches!(e, PluginError::NotAFile { .. }), "{e}");
        #[cfg(unix)]
        {
            // A device that never ends is not a regular file: refused before any read.
            let e = read_capped(Path::new("/dev/zero"), 99, "read component").unwrap_err();
            assert!(matches!(e, PluginError::NotAFile { .. }), "{e}");
        }
    }
}
