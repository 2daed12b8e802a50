//! weft's storage layer: a blake3 content-addressed blob store on the filesystem and the sled
//! trees that index it (the plugin registry and the precompiled-artifact cache).
//!
//! It owns the on-disk layout under `$WEFT_HOME` (`blobs/`, `db/`) and the integrity rules
//! (atomic writes, verification on every read). It knows nothing of wasm, ASL or DAGs: callers
//! hand it bytes and JSON manifests.

mod blobs;
mod digest;
mod error;
mod registry;

pub use blobs::BlobStore;
pub use digest::Digest;
pub use error::StoreError;
pub use registry::{version_cmp, PluginRecord, Registry};

use std::path::{Path, PathBuf};

/// Everything persistent that lives under one `$WEFT_HOME`.
pub struct Store {
    home: PathBuf,
    blobs: BlobStore,
    db: sled::Db,
    registry: Registry,
}

impl Store {
    /// Opens (creating when absent) the store rooted at `home`.
    pub fn open(home: impl AsRef<Path>) -> Result<Self, StoreError> {
        let home = home.as_ref().to_path_buf();
        std::fs::create_dir_all(&home).map_err(|e| StoreError::io(&home, "create WEFT_HOME", e))?;
        let blobs = BlobStore::open(home.join("blobs"))?;
        let db_path = home.join("db");
        let db = sled::Config::new()
            .path(&db_path)
            .mode(sled::Mode::HighThroughput)
            .open()
            .map_err(|e| StoreError::Db {
                path: db_path.clone(),
                source: e,
            })?;
        let registry = Registry::open(&db)?;
        Ok(Self {
            home,
            blobs,
            db,
            registry,
        })
    }

    pub fn home(&self) -> &Path {
        &self.home
    }

    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The sled database, for crates that keep their own trees (executions, events, timers).
    pub fn db(&self) -> &sled::Db {
        &self.db
    }

    /// Flushes sled to disk.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map_err(StoreError::from_sled)?;
        Ok(())
    }

    /// Looks up a precompiled artifact for `digest` under the compiler `fingerprint`; the
    /// artifact is itself a verified blob, so a corrupt cache entry is refused, never loaded.
    pub fn precompiled(
        &self,
        digest: &Digest,
        fingerprint: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let key = precompiled_key(digest, fingerprint);
        let Some(v) = self
            .registry
            .precompiled_tree()
            .get(key)
            .map_err(StoreError::from_sled)?
        else {
            return Ok(None);
        };
        let artifact = Digest::from_bytes_slice(&v)?;
        match self.blobs.get(&artifact) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Records the precompiled artifact of `digest` for the compiler `fingerprint`.
    pub fn put_precompiled(
        &self,
        digest: &Digest,
        fingerprint: &str,
        artifact: &[u8],
    ) -> Result<Digest, StoreError> {
        let artifact_digest = self.blobs.put(artifact)?;
        self.registry
            .precompiled_tree()
            .insert(
                precompiled_key(digest, fingerprint),
                artifact_digest.as_bytes().as_slice(),
            )
            .map_err(StoreError::from_sled)?;
        Ok(artifact_digest)
    }
}

fn precompiled_key(digest: &Digest, fingerprint: &str) -> Vec<u8> {
    let mut key = digest.to_hex().into_bytes();
    key.push(b':');
    key.extend_from_slice(fingerprint.as_bytes());
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precompiled_round_trip_and_miss() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let d = store.blobs().put(b"component").unwrap();
        assert!(store.precompiled(&d, "wasmtime-48").unwrap().is_none());
        store.put_precompiled(&d, "wasmtime-48", b"native").unwrap();
        assert_eq!(
            store.precompiled(&d, "wasmtime-48").unwrap().unwrap(),
            b"native"
        );
        assert!(store.precompiled(&d, "wasmtime-49").unwrap().is_none());
    }
}
