//! weft's storage layer: a blake3 content-addressed blob store on the filesystem, the plugin
//! registry and precompiled-artifact index beside it (plain files, readable by any number of
//! processes at once: [`PluginStore`]), and the sled database of everything else ([`Store`]).
//!
//! It owns the on-disk layout under `$WEFT_HOME` (`blobs/`, `plugins/`, `precompiled/`, `db/`)
//! and the integrity rules
//! (atomic writes, verification on every read). It knows nothing of wasm, ASL or DAGs: callers
//! hand it bytes and JSON manifests.

mod atomic;
mod blobs;
mod digest;
mod error;
mod registry;
mod settled;

pub use blobs::BlobStore;
pub use digest::Digest;
pub use error::StoreError;
pub use registry::{version_cmp, PluginRecord, Registry};
pub use settled::{settled, SETTLED};

use std::path::{Path, PathBuf};
use std::sync::Arc;

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

/// The plugin side of a `$WEFT_HOME`: blobs, the plugin registry and the precompiled-artifact
/// index, all plain files. Any number of processes open it at once, without a lock: this is
/// all `weft run`, `weft invoke` and `weft validate` need.
pub struct PluginStore {
    home: PathBuf,
    blobs: BlobStore,
    registry: Registry,
}

impl PluginStore {
    /// Opens (creating when absent) the plugin side of the store rooted at `home`. Never waits:
    /// it takes no lock. (A home whose registry still lives in the database, from before the
    /// registry became files, is migrated by the first [`Store::open`].)
    pub fn open(home: impl AsRef<Path>) -> Result<Self, StoreError> {
        let store = Self::open_files(home.as_ref())?;
        // an old home: migrate when nobody holds its database, else read what is there
        if store.registry.is_empty()? && store.home.join("db").exists() {
            if let Ok(db) = open_db(&store.home.join("db"), std::time::Duration::ZERO) {
                migrate_registry(&db, &store)?;
            }
        }
        Ok(store)
    }

    /// Creates (when absent) and opens the directories under `home`, nothing else.
    fn open_files(home: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(home).map_err(|e| StoreError::io(home, "create WEFT_HOME", e))?;
        Ok(Self {
            home: home.to_path_buf(),
            blobs: BlobStore::open(home.join("blobs"))?,
            registry: Registry::open(home)?,
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

    /// Looks up a precompiled artifact for `digest` under the compiler `fingerprint`; the
    /// artifact is itself a verified blob, so a corrupt cache entry is refused, never loaded.
    pub fn precompiled(
        &self,
        digest: &Digest,
        fingerprint: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(artifact) = self.registry.precompiled(digest, fingerprint)? else {
            return Ok(None);
        };
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
            .put_precompiled(digest, fingerprint, &artifact_digest)?;
        Ok(artifact_digest)
    }
}

/// Copies a registry kept in the database's `plugins`/`precompiled` trees (stores made before
/// the registry became files) into the file registry. The trees are left as they were.
fn migrate_registry(db: &sled::Db, store: &PluginStore) -> Result<(), StoreError> {
    let plugins = db.open_tree("plugins")?;
    let mut n = 0usize;
    for kv in plugins.iter() {
        let (k, v) = kv?;
        let rec: PluginRecord = serde_json::from_slice(&v).map_err(|e| StoreError::BadRecord {
            key: String::from_utf8_lossy(&k).into_owned(),
            reason: e.to_string(),
        })?;
        store.registry.put(&rec)?;
        n += 1;
    }
    let precompiled = db.open_tree("precompiled")?;
    for kv in precompiled.iter() {
        let (k, v) = kv?;
        let key = String::from_utf8_lossy(&k);
        let (Some((digest, fingerprint)), Ok(artifact)) =
            (key.split_once(':'), Digest::from_bytes_slice(&v))
        else {
            continue;
        };
        if let Ok(digest) = digest.parse::<Digest>() {
            store
                .registry
                .put_precompiled(&digest, fingerprint, &artifact)?;
        }
    }
    if n > 0 {
        tracing::info!(plugins = n, home = %store.home.display(), "moved the plugin registry out of the database into files");
    }
    Ok(())
}

/// Everything persistent that lives under one `$WEFT_HOME`: the [`PluginStore`] (which this
/// dereferences to) and the database of executions, history, timers and DAG runs, which one
/// process holds at a time.
pub struct Store {
    plugins: Arc<PluginStore>,
    db: sled::Db,
}

impl std::ops::Deref for Store {
    type Target = PluginStore;
    fn deref(&self) -> &PluginStore {
        &self.plugins
    }
}

impl Store {
    /// Opens (creating when absent) the store rooted at `home`, waiting up to
    /// `WEFT_STORE_LOCK_WAIT` seconds (default 60) while another process holds its database.
    pub fn open(home: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_waiting(home, lock_wait())
    }

    /// [`Store::open`], waiting up to `wait` for another process to release the database.
    pub fn open_waiting(
        home: impl AsRef<Path>,
        wait: std::time::Duration,
    ) -> Result<Self, StoreError> {
        let home = home.as_ref();
        std::fs::create_dir_all(home).map_err(|e| StoreError::io(home, "create WEFT_HOME", e))?;
        let db = open_db(&home.join("db"), wait)?;
        let plugins = PluginStore::open_files(home)?;
        if plugins.registry.is_empty()? {
            migrate_registry(&db, &plugins)?;
        }
        Ok(Self {
            plugins: Arc::new(plugins),
            db,
        })
    }

    /// The plugin side of this store, shareable on its own (a `PluginHost` needs only it).
    pub fn plugin_store(&self) -> Arc<PluginStore> {
        self.plugins.clone()
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
    fn the_plugin_side_opens_while_another_process_holds_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let held = Store::open(dir.path()).unwrap();
        let d = held.blobs().put(b"component").unwrap();
        held.registry()
            .put(&PluginRecord {
                name: "echo".into(),
                version: "1.0.0".into(),
                digest: d,
                world: "task".into(),
                manifest: serde_json::json!({}),
                installed_at: 0,
            })
            .unwrap();
        let t = std::time::Instant::now();
        let reader = PluginStore::open(dir.path()).unwrap();
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "it did not wait for the lock"
        );
        let rec = reader.registry().latest("echo").unwrap().unwrap();
        assert_eq!(reader.blobs().get(&rec.digest).unwrap(), b"component");
        reader.put_precompiled(&d, "fp", b"native").unwrap();
        assert_eq!(held.precompiled(&d, "fp").unwrap().unwrap(), b"native");
    }

    #[test]
    fn a_registry_kept_in_the_database_moves_to_files() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = sled::open(dir.path().join("db")).unwrap();
            let d = Digest::of(b"x");
            let rec = PluginRecord {
                name: "old".into(),
                version: "0.1.0".into(),
                digest: d,
                world: "task".into(),
                manifest: serde_json::json!({}),
                installed_at: 0,
            };
            db.open_tree("plugins")
                .unwrap()
                .insert("old@0.1.0", serde_json::to_vec(&rec).unwrap())
                .unwrap();
            let mut key = d.to_hex().into_bytes();
            key.extend_from_slice(b":fp");
            db.open_tree("precompiled")
                .unwrap()
                .insert(key, Digest::of(b"native").as_bytes().as_slice())
                .unwrap();
            db.flush().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(
            store.registry().latest("old").unwrap().unwrap().version,
            "0.1.0"
        );
        assert_eq!(
            store
                .registry()
                .precompiled(&Digest::of(b"x"), "fp")
                .unwrap(),
            Some(Digest::of(b"native"))
        );
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
