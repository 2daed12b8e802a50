//! The content-addressed blob store: `blobs/AB/CDEF...` files named by their blake3 digest.
//!
//! Writes go to a temp file in `blobs/tmp`, are fsynced, renamed into place and the directory
//! fsynced, so a crash leaves either the whole blob or nothing. Every read re-hashes the bytes
//! and refuses a blob whose content does not match its name.

use crate::atomic::{write_atomically, Content};
use crate::{Digest, StoreError};
use std::fs;
use std::path::{Path, PathBuf};

pub struct BlobStore {
    root: PathBuf,
}

impl BlobStore {
    pub fn open(root: PathBuf) -> Result<Self, StoreError> {
        fs::create_dir_all(root.join("tmp"))
            .map_err(|e| StoreError::io(&root, "create blob directory", e))?;
        Ok(Self { root })
    }

    /// Where the blob named `digest` lives (whether or not it exists).
    pub fn path(&self, digest: &Digest) -> PathBuf {
        let hex = digest.to_hex();
        self.root.join(&hex[..2]).join(&hex[2..])
    }

    pub fn contains(&self, digest: &Digest) -> bool {
        self.path(digest).is_file()
    }

    /// Stores `bytes` and returns their digest; storing existing content is a no-op.
    pub fn put(&self, bytes: &[u8]) -> Result<Digest, StoreError> {
        let digest = Digest::of(bytes);
        let dest = self.path(&digest);
        if dest.is_file() && self.verify(&digest).is_ok() {
            return Ok(digest);
        }
        write_atomically(&self.root.join("tmp"), &dest, bytes, Content::Blob)?;
        Ok(digest)
    }

    /// Reads and verifies the blob named `digest`.
    pub fn get(&self, digest: &Digest) -> Result<Vec<u8>, StoreError> {
        self.get_capped(digest, u64::MAX)
    }

    /// Reads and verifies the blob named `digest`, refusing it without reading it when the file
    /// is over `cap` bytes (checked on the open file, then enforced while reading, so a file
    /// that grows meanwhile costs at most `cap + 1` bytes).
    pub fn get_capped(&self, digest: &Digest, cap: u64) -> Result<Vec<u8>, StoreError> {
        use std::io::Read;
        let path = self.path(digest);
        let f = match fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::NotFound {
                    digest: digest.to_string(),
                })
            }
            Err(e) => return Err(StoreError::io(&path, "open blob", e)),
        };
        let len = f
            .metadata()
            .map_err(|e| StoreError::io(&path, "read blob", e))?
            .len();
        let too_large = |size| StoreError::TooLarge {
            digest: digest.to_string(),
            path: path.clone(),
            size,
            limit: cap,
        };
        if len > cap {
            return Err(too_large(len));
        }
        let mut bytes = Vec::with_capacity(len as usize);
        f.take(cap.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| StoreError::io(&path, "read blob", e))?;
        if bytes.len() as u64 > cap {
            return Err(too_large(bytes.len() as u64));
        }
        check(digest, &path, &bytes)?;
        Ok(bytes)
    }

    /// Re-hashes the stored blob without keeping it in memory.
    pub fn verify(&self, digest: &Digest) -> Result<(), StoreError> {
        let path = self.path(digest);
        let mut hasher = blake3::Hasher::new();
        let mut f = fs::File::open(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => StoreError::NotFound {
                digest: digest.to_string(),
            },
            _ => StoreError::io(&path, "open blob", e),
        })?;
        let len = std::io::copy(&mut f, &mut hasher)
            .map_err(|e| StoreError::io(&path, "read blob", e))?;
        let actual = Digest::from_hash(hasher.finalize());
        if actual != *digest {
            return Err(StoreError::Corrupt {
                expected: digest.to_string(),
                actual: actual.to_hex(),
                path,
                len,
            });
        }
        Ok(())
    }
}

fn check(digest: &Digest, path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let actual = Digest::of(bytes);
    if actual != *digest {
        return Err(StoreError::Corrupt {
            expected: digest.to_string(),
            actual: actual.to_hex(),
            path: path.to_path_buf(),
            len: bytes.len() as u64,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, BlobStore) {
        let dir = tempfile::tempdir().unwrap();
        let s = BlobStore::open(dir.path().join("blobs")).unwrap();
        (dir, s)
    }

    #[test]
    fn put_get_round_trip_is_idempotent() {
        let (_d, s) = store();
        let a = s.put(b"hello").unwrap();
        let b = s.put(b"hello").unwrap();
        assert_eq!(a, b);
        assert_eq!(s.get(&a).unwrap(), b"hello");
        assert!(s.contains(&a));
    }

    #[test]
    fn corrupt_and_truncated_blobs_are_refused() {
        let (_d, s) = store();
        let a = s.put(b"some plugin bytes").unwrap();
        fs::write(s.path(&a), b"some plugin bytez").unwrap();
        let e = s.get(&a).unwrap_err().to_string();
        assert!(e.contains("is corrupt"), "{e}");
        fs::write(s.path(&a), b"some").unwrap();
        assert!(matches!(
            s.verify(&a),
            Err(StoreError::Corrupt { len: 4, .. })
        ));
        // a fresh put repairs the damaged blob
        s.put(b"some plugin bytes").unwrap();
        assert_eq!(s.get(&a).unwrap(), b"some plugin bytes");
    }

    #[test]
    fn blobs_over_the_cap_are_refused_before_reading() {
        let (_d, s) = store();
        let a = s.put(b"0123456789").unwrap();
        assert_eq!(s.get_capped(&a, 10).unwrap(), b"0123456789");
        let e = s.get_capped(&a, 9).unwrap_err();
        assert!(
            matches!(
                e,
                StoreError::TooLarge {
                    size: 10,
                    limit: 9,
                    ..
                }
            ),
            "{e}"
        );
        // A blob file replaced by a huge sparse one is refused from its size alone.
        fs::File::create(s.path(&a))
            .unwrap()
            .set_len(1 << 40)
            .unwrap();
        let e = s.get_capped(&a, 1 << 20).unwrap_err();
        assert!(matches!(e, StoreError::TooLarge { .. }), "{e}");
    }

    #[test]
    fn missing_blob_is_not_found() {
        let (_d, s) = store();
        let e = s.get(&Digest::of(b"nope")).unwrap_err();
        assert!(matches!(e, StoreError::NotFound { .. }));
    }
}
