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

/// How long [`Store::open`] waits for another process to release the store
/// (`WEFT_STORE_LOCK_WAIT` seconds; default 60).
fn lock_wait() -> std::time::Duration {
    let s = std::env::var("WEFT_STORE_LOCK_WAIT")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(60)
        .min(24 * 3600);
    std::time::Duration::from_secs(s)
}

/// Opens the sled database; while another process holds it (one process per store), waits up
/// to [`lock_wait`] for it, so that runs started side by side on one `$WEFT_HOME` take turns
/// instead of failing.
fn open_db(db_path: &Path, wait: std::time::Duration) -> Result<sled::Db, StoreError> {
    let start = std::time::Instant::now();
    let mut told = false;
    loop {
        match sled::Config::new()
            .path(db_path)
            .mode(sled::Mode::HighThroughput)
            .open()
        {
            Ok(db) => return Ok(db),
            // (sled reports the lock as an Other error naming it)
            Err(sled::Error::Io(e))
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.to_string().contains("could not acquire lock") =>
            {
                if start.elapsed() >= wait {
                    return Err(StoreError::Locked {
                        path: db_path.to_path_buf(),
                        waited_s: wait.as_secs(),
                    });
                }
                if !told {
                    tracing::info!(path = %db_path.display(), "the store is in use by another weft process; waiting for it");
                    told = true;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(e) => {
                return Err(StoreError::Db {
                    path: db_path.to_path_buf(),
                    cause: e,
                })
            }
        }
    }
}

/// Everything persistent that lives under one `$WEFT_HOME`.
pub struct Store {
    home: PathBuf,
    blobs: BlobStore,
    db: sled::Db,
    registry: Registry,
}

impl Store {
    /// Opens (creating when absent) the store rooted at `home`, waiting up to
    /// `WEFT_STORE_LOCK_WAIT` seconds (default 60) while another process holds it.
    pub fn open(home: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_waiting(home, lock_wait())
    }

    /// [`Store::open`], waiting up to `wait` for another process to release the store.
    pub fn open_waiting(
        home: impl AsRef<Path>,
        wait: std::time::Duration,
    ) -> Result<Self, StoreError> {
        let home = home.as_ref().to_path_buf();
        std::fs::create_dir_all(&home).map_err(|e| StoreError::io(&home, "create WEFT_HOME", e))?;
        let blobs = BlobStore::open(home.join("blobs"))?;
        let db_path = home.join("db");
        let db = open_db(&db_path, wait)?;
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
    use std::time::Duration;

    #[test]
    fn a_second_opener_waits_for_the_first_then_gets_the_store_or_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let first = Store::open(dir.path()).unwrap();
        match Store::open_waiting(dir.path(), Duration::ZERO) {
            Err(StoreError::Locked { .. }) => {}
            Err(e) => panic!("not the lock error: {e}"),
            Ok(_) => panic!("opened a store another opener holds"),
        }
        let home = dir.path().to_path_buf();
        let second = std::thread::spawn(move || Store::open_waiting(home, Duration::from_secs(30)));
        std::thread::sleep(Duration::from_millis(200));
        drop(first);
        assert!(second.join().unwrap().is_ok(), "the waiter got the store");
    }

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
