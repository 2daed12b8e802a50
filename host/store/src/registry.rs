//! The plugin registry: one JSON record per installed version under
//! `$WEFT_HOME/plugins/NAME/VERSION.json`, a `digest -> name@version` index under
//! `$WEFT_HOME/plugins/.by-digest/HEX`, and the precompiled-artifact index under
//! `$WEFT_HOME/precompiled/`.
//!
//! Plain files, each written whole (temp file, fsync, rename, fsync of the directory), so any
//! number of processes read the registry at once without a lock, and a writer never leaves a
//! half record: `weft run` and `weft invoke` never wait for a server or scheduler that holds the
//! database. Names and versions are encoded before they become file names (`/`, `..`, NUL and
//! the like cannot address anything outside the registry).

use crate::atomic::{sync_dir, write_atomically, Content};
use crate::{Digest, StoreError};
use serde::{Deserialize, Serialize};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// One installed plugin version.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PluginRecord {
    pub name: String,
    pub version: String,
    pub digest: Digest,
    /// `task` or `sensor`.
    pub world: String,
    /// The manifest entry the plugin was installed with (description, requested grant, ...).
    #[serde(default)]
    pub manifest: serde_json::Value,
    /// Unix seconds.
    pub installed_at: u64,
}

impl PluginRecord {
    pub fn key(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }
}

pub struct Registry {
    /// `plugins/`: `NAME/VERSION.json` records and `.by-digest/`.
    root: PathBuf,
    /// `precompiled/`: `DIGEST-FINGERPRINT` files holding the artifact's blob digest.
    precompiled: PathBuf,
    /// [`Registry::by_digest`] answers (executions resolve their pinned digest on every task);
    /// emptied by every change this process makes to the registry.
    /// (generation, answers): the generation changes with every write, and an answer read
    /// under an older one is not kept.
    digest_cache: std::sync::Mutex<(u64, std::collections::HashMap<Digest, PluginRecord>)>,
    /// [`Registry::latest`] answers (a Task naming a plugin without a version resolves it on
    /// every run), each with the modification time of the name's directory it was read under.
    latest_cache: std::sync::Mutex<std::collections::HashMap<PathBuf, (SystemTime, PluginRecord)>>,
}

const BY_DIGEST: &str = ".by-digest";
const TMP: &str = ".tmp";

impl Registry {
    pub(crate) fn open(home: &Path) -> Result<Self, StoreError> {
        let root = home.join("plugins");
        let precompiled = home.join("precompiled");
        for dir in [root.join(BY_DIGEST), root.join(TMP), precompiled.clone()] {
            fs::create_dir_all(&dir)
                .map_err(|e| StoreError::io(&dir, "create registry directory", e))?;
        }
        Ok(Self {
            root,
            precompiled,
            digest_cache: Default::default(),
            latest_cache: Default::default(),
        })
    }

    /// Whether the registry holds no record at all (a new home, or one not migrated yet).
    pub(crate) fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.names()?.is_empty())
    }

    fn record_path(&self, name: &str, version: &str) -> PathBuf {
        self.root
            .join(encode_component(name))
            .join(format!("{}.json", encode_component(version)))
    }

    fn digest_path(&self, digest: &Digest) -> PathBuf {
        self.root.join(BY_DIGEST).join(digest.to_hex())
    }

    /// Records (or replaces) a plugin version; durable when this returns.
    pub fn put(&self, rec: &PluginRecord) -> Result<(), StoreError> {
        let key = rec.key();
        let val = serde_json::to_vec_pretty(rec).map_err(|e| StoreError::BadRecord {
            key: key.clone(),
            reason: e.to_string(),
        })?;
        self.forget_cached();
        let path = self.record_path(&rec.name, &rec.version);
        self.write_atomically(&path, &val)?;
        self.write_atomically(&self.digest_path(&rec.digest), key.as_bytes())?;
        self.forget_cached();
        Ok(())
    }

    pub fn get(&self, name: &str, version: &str) -> Result<Option<PluginRecord>, StoreError> {
        self.read_record(
            &self.record_path(name, version),
            &format!("{name}@{version}"),
        )
    }

    /// All versions of all plugins, ordered by name then version.
    pub fn list(&self) -> Result<Vec<PluginRecord>, StoreError> {
        let mut out = Vec::new();
        for dir in self.names()? {
            out.extend(self.records_in(&dir)?);
        }
        out.sort_by(|a, b| {
            a.name
                .cmp(&b.name)
                .then_with(|| version_cmp(&a.version, &b.version))
        });
        Ok(out)
    }

    /// Every installed version of `name`, oldest first.
    pub fn versions(&self, name: &str) -> Result<Vec<PluginRecord>, StoreError> {
        let mut out = self.records_in(&self.root.join(encode_component(name)))?;
        out.retain(|r| r.name == name);
        out.sort_by(|a, b| version_cmp(&a.version, &b.version));
        Ok(out)
    }

    /// The highest installed version of `name`. Any process may install or remove versions:
    /// a cached answer is used only while the name's directory keeps the settled modification
    /// time it was read under (every version written, replaced or removed renames or unlinks
    /// an entry of that directory, which changes its time).
    pub fn latest(&self, name: &str) -> Result<Option<PluginRecord>, StoreError> {
        let dir = self.root.join(encode_component(name));
        // taken before reading: a change made meanwhile leaves a later time behind
        let settled = fs::metadata(&dir)
            .and_then(|m| m.modified())
            .ok()
            .filter(|t| crate::settled(*t));
        let cache = || self.latest_cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = settled {
            if let Some((at, rec)) = cache().get(&dir) {
                if *at == t {
                    return Ok(Some(rec.clone()));
                }
            }
        }
        let latest = self.versions(name)?.pop();
        match (&latest, settled) {
            // (only installed names are kept: a directory exists for each)
            (Some(rec), Some(t)) => {
                cache().insert(dir, (t, rec.clone()));
            }
            _ => {
                cache().remove(&dir);
            }
        }
        Ok(latest)
    }

    pub fn by_digest(&self, digest: &Digest) -> Result<Option<PluginRecord>, StoreError> {
        let cache = || self.digest_cache.lock().unwrap_or_else(|e| e.into_inner());
        let generation = {
            let c = cache();
            if let Some(rec) = c.1.get(digest) {
                return Ok(Some(rec.clone()));
            }
            c.0
        };
        let Some(key) = read_optional(&self.digest_path(digest))? else {
            return Ok(None);
        };
        let key = String::from_utf8_lossy(&key).into_owned();
        let Some((name, version)) = key.rsplit_once('@') else {
            return Err(StoreError::BadRecord {
                key,
                reason: "the digest index names no name@version".into(),
            });
        };
        let rec = self.get(name, version)?.filter(|r| r.digest == *digest);
        if let Some(r) = &rec {
            let mut c = cache();
            if c.0 == generation {
                c.1.insert(*digest, r.clone());
            }
        }
        Ok(rec)
    }

    fn forget_cached(&self) {
        let mut c = self.digest_cache.lock().unwrap_or_else(|e| e.into_inner());
        c.0 += 1;
        c.1.clear();
        self.latest_cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    pub fn remove(&self, name: &str, version: &str) -> Result<bool, StoreError> {
        self.forget_cached();
        let Some(rec) = self.get(name, version)? else {
            return Ok(false);
        };
        let path = self.record_path(name, version);
        remove_if_present(&path)?;
        // the digest index entry goes only when it still names this version
        let index = self.digest_path(&rec.digest);
        if read_optional(&index)?.as_deref() == Some(rec.key().as_bytes()) {
            remove_if_present(&index)?;
        }
        if let Some(dir) = path.parent() {
            let _ = fs::remove_dir(dir); // only succeeds when no version is left
            sync_dir(&self.root)?;
        }
        self.forget_cached();
        Ok(true)
    }

    /// The artifact digest recorded for `digest` under the compiler `fingerprint`.
    pub(crate) fn precompiled(
        &self,
        digest: &Digest,
        fingerprint: &str,
    ) -> Result<Option<Digest>, StoreError> {
        let path = self.precompiled_path(digest, fingerprint);
        match read_optional(&path)? {
            None => Ok(None),
            Some(text) => String::from_utf8_lossy(&text)
                .trim()
                .parse::<Digest>()
                .map(Some),
        }
    }

    pub(crate) fn put_precompiled(
        &self,
        digest: &Digest,
        fingerprint: &str,
        artifact: &Digest,
    ) -> Result<(), StoreError> {
        let path = self.precompiled_path(digest, fingerprint);
        self.write_atomically(&path, artifact.to_string().as_bytes())
    }

    fn precompiled_path(&self, digest: &Digest, fingerprint: &str) -> PathBuf {
        self.precompiled.join(format!(
            "{}-{}",
            digest.to_hex(),
            encode_component(fingerprint)
        ))
    }

    /// The per-name directories (encoded names).
    fn names(&self) -> Result<Vec<PathBuf>, StoreError> {
        let mut out = Vec::new();
        let entries =
            fs::read_dir(&self.root).map_err(|e| StoreError::io(&self.root, "list plugins", e))?;
        for entry in entries {
            let entry = entry.map_err(|e| StoreError::io(&self.root, "list plugins", e))?;
            let name = entry.file_name();
            if name.to_string_lossy().starts_with('.') {
                continue;
            }
            // (no symlink is followed: the registry only holds what weft wrote)
            let ft = entry
                .file_type()
                .map_err(|e| StoreError::io(&entry.path(), "stat", e))?;
            if ft.is_dir() {
                out.push(entry.path());
            }
        }
        Ok(out)
    }

    fn records_in(&self, dir: &Path) -> Result<Vec<PluginRecord>, StoreError> {
        let entries = match fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StoreError::io(dir, "list plugin versions", e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| StoreError::io(dir, "list plugin versions", e))?;
            let path = entry.path();
            let is_file = entry.file_type().map(|t| t.is_file()).unwrap_or(false);
            if !is_file || path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let key = path.display().to_string();
            // a version removed between the listing and the read is simply gone
            if let Some(rec) = self.read_record(&path, &key)? {
                out.push(rec);
            }
        }
        Ok(out)
    }

    fn read_record(&self, path: &Path, key: &str) -> Result<Option<PluginRecord>, StoreError> {
        let Some(bytes) = read_optional(path)? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StoreError::BadRecord {
                key: key.to_string(),
                reason: e.to_string(),
            })
    }

    fn write_atomically(&self, dest: &Path, bytes: &[u8]) -> Result<(), StoreError> {
        write_atomically(&self.root.join(TMP), dest, bytes, Content::RegistryRecord)
    }
}

/// A name or version as one safe file name: ASCII letters, digits, `_`, `-`, `+` and `.` stay
/// (but not a leading `.`); every other byte becomes `%XX`.
fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, b) in s.bytes().enumerate() {
        let keep =
            b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'+') || (b == b'.' && i > 0);
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.is_empty() {
        out.push_str("%00");
    }
    out
}

fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, StoreError> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StoreError::io(path, "read registry record", e)),
    }
}

fn remove_if_present(path: &Path) -> Result<(), StoreError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StoreError::io(path, "remove registry record", e)),
    }
}

/// Orders versions by semver when both parse, else by their text.
pub fn version_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    match (semver::Version::parse(a), semver::Version::parse(b)) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        _ => a.cmp(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn rec(name: &str, version: &str, bytes: &[u8]) -> PluginRecord {
        PluginRecord {
            name: name.into(),
            version: version.into(),
            digest: Digest::of(bytes),
            world: "task".into(),
            manifest: serde_json::json!({}),
            installed_at: 0,
        }
    }

    /// Sets the modification time of `dir` (a test stands in for the passing of time).
    fn set_mtime(dir: &Path, t: SystemTime) {
        fs::File::open(dir).unwrap().set_modified(t).unwrap();
    }

    #[test]
    fn latest_is_read_again_when_another_process_changes_the_versions() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::PluginStore::open(dir.path()).unwrap();
        // another process: its own registry over the same home
        let other = crate::PluginStore::open(dir.path()).unwrap();
        let r = store.registry();
        r.put(&rec("echo", "1.0.0", b"a")).unwrap();
        let versions = dir.path().join("plugins").join("echo");
        let old = SystemTime::now() - Duration::from_secs(60);
        set_mtime(&versions, old);
        assert_eq!(r.latest("echo").unwrap().unwrap().version, "1.0.0");
        // the cached answer serves while the directory is unchanged: a record edited in place
        // (which weft never does) is not seen, which shows the cache answered
        let path = versions.join("1.0.0.json");
        let edited = fs::read_to_string(&path)
            .unwrap()
            .replace("\"task\"", "\"sensor\"");
        fs::write(&path, edited).unwrap();
        set_mtime(&versions, old);
        assert_eq!(r.latest("echo").unwrap().unwrap().world, "task");
        // another process installs a version, then removes it: seen at once each time
        other.registry().put(&rec("echo", "2.0.0", b"b")).unwrap();
        assert_eq!(r.latest("echo").unwrap().unwrap().version, "2.0.0");
        assert!(other.registry().remove("echo", "2.0.0").unwrap());
        assert_eq!(r.latest("echo").unwrap().unwrap().version, "1.0.0");
        // this process's own changes drop the cache too; a name with no version is none
        set_mtime(&versions, old);
        r.latest("echo").unwrap();
        assert!(r.remove("echo", "1.0.0").unwrap());
        assert_eq!(r.latest("echo").unwrap(), None);
        assert_eq!(r.latest("never-installed").unwrap(), None);
    }

    #[test]
    fn latest_is_highest_semver() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::PluginStore::open(dir.path()).unwrap();
        let r = store.registry();
        r.put(&rec("echo", "0.9.0", b"a")).unwrap();
        r.put(&rec("echo", "0.10.0", b"b")).unwrap();
        r.put(&rec("echoes", "9.0.0", b"c")).unwrap();
        assert_eq!(r.latest("echo").unwrap().unwrap().version, "0.10.0");
        assert_eq!(
            r.by_digest(&Digest::of(b"a")).unwrap().unwrap().version,
            "0.9.0"
        );
        assert_eq!(r.list().unwrap().len(), 3);
        assert!(r.remove("echo", "0.10.0").unwrap());
        assert!(!r.remove("echo", "0.10.0").unwrap());
        assert_eq!(r.latest("echo").unwrap().unwrap().version, "0.9.0");
        assert!(r.by_digest(&Digest::of(b"b")).unwrap().is_none());
    }

    #[test]
    fn hostile_names_and_versions_stay_inside_the_registry() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::PluginStore::open(dir.path()).unwrap();
        let r = store.registry();
        for (name, version) in [
            ("../../etc", "1.0.0"),
            ("a/b", "../x"),
            (".hidden", "..."),
            ("nul\0byte", "1"),
            ("", ""),
            (".by-digest", "1"),
        ] {
            r.put(&rec(name, version, name.as_bytes())).unwrap();
            assert_eq!(r.get(name, version).unwrap().unwrap().name, name);
        }
        // nothing was written beside blobs/, plugins/ and precompiled/
        let mut top: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        top.sort();
        assert_eq!(top, ["blobs", "plugins", "precompiled"]);
        assert_eq!(r.list().unwrap().len(), 6);
        assert_eq!(r.versions("a/b").unwrap().len(), 1);
    }

    #[test]
    fn a_second_process_view_sees_installs_without_a_lock() {
        let dir = tempfile::tempdir().unwrap();
        let writer = crate::PluginStore::open(dir.path()).unwrap();
        let reader = crate::PluginStore::open(dir.path()).unwrap();
        assert!(reader.registry().latest("echo").unwrap().is_none());
        writer.registry().put(&rec("echo", "1.0.0", b"x")).unwrap();
        assert_eq!(
            reader.registry().latest("echo").unwrap().unwrap().version,
            "1.0.0"
        );
    }

    #[test]
    fn a_corrupt_record_is_a_named_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::PluginStore::open(dir.path()).unwrap();
        store.registry().put(&rec("echo", "1.0.0", b"x")).unwrap();
        fs::write(dir.path().join("plugins/echo/1.0.0.json"), b"{not json").unwrap();
        let e = store.registry().get("echo", "1.0.0").unwrap_err();
        assert!(e.to_string().contains("echo@1.0.0"), "{e}");
    }
}
