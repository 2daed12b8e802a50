//! The plugin registry: sled trees mapping `name@version` to a digest and its manifest, and
//! `digest -> name@version` for reverse lookups. Also holds the precompiled-artifact index tree.

use crate::{Digest, StoreError};
use serde::{Deserialize, Serialize};

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
    plugins: sled::Tree,
    by_digest: sled::Tree,
    precompiled: sled::Tree,
    /// [`Registry::by_digest`] answers (executions resolve their pinned digest on every task);
    /// emptied by every change to the registry.
    /// (generation, answers): the generation changes with every write, and an answer read
    /// under an older one is not kept.
    digest_cache: std::sync::Mutex<(u64, std::collections::HashMap<Digest, PluginRecord>)>,
}

impl Registry {
    pub(crate) fn open(db: &sled::Db) -> Result<Self, StoreError> {
        Ok(Self {
            plugins: db.open_tree("plugins")?,
            by_digest: db.open_tree("plugin_digests")?,
            precompiled: db.open_tree("precompiled")?,
            digest_cache: Default::default(),
        })
    }

    pub(crate) fn precompiled_tree(&self) -> &sled::Tree {
        &self.precompiled
    }

    /// Records (or replaces) a plugin version; durable when this returns.
    pub fn put(&self, rec: &PluginRecord) -> Result<(), StoreError> {
        let key = rec.key();
        let val = serde_json::to_vec(rec).map_err(|e| StoreError::BadRecord {
            key: key.clone(),
            reason: e.to_string(),
        })?;
        self.forget_cached();
        self.plugins.insert(key.as_bytes(), val)?;
        self.by_digest
            .insert(rec.digest.as_bytes(), key.as_bytes())?;
        self.forget_cached();
        self.plugins.flush()?;
        self.by_digest.flush()?;
        Ok(())
    }

    pub fn get(&self, name: &str, version: &str) -> Result<Option<PluginRecord>, StoreError> {
        let key = format!("{name}@{version}");
        self.plugins
            .get(key.as_bytes())?
            .map(|v| decode(&key, &v))
            .transpose()
    }

    /// All versions of all plugins, ordered by name then version.
    pub fn list(&self) -> Result<Vec<PluginRecord>, StoreError> {
        let mut out = Vec::new();
        for kv in self.plugins.iter() {
            let (k, v) = kv?;
            out.push(decode(&String::from_utf8_lossy(&k), &v)?);
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
        let prefix = format!("{name}@");
        let mut out = Vec::new();
        for kv in self.plugins.scan_prefix(prefix.as_bytes()) {
            let (k, v) = kv?;
            out.push(decode(&String::from_utf8_lossy(&k), &v)?);
        }
        out.sort_by(|a, b| version_cmp(&a.version, &b.version));
        Ok(out)
    }

    /// The highest installed version of `name`.
    pub fn latest(&self, name: &str) -> Result<Option<PluginRecord>, StoreError> {
        Ok(self.versions(name)?.pop())
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
        let Some(key) = self.by_digest.get(digest.as_bytes())? else {
            return Ok(None);
        };
        let key = String::from_utf8_lossy(&key).into_owned();
        let rec = self
            .plugins
            .get(key.as_bytes())?
            .map(|v| decode(&key, &v))
            .transpose()?;
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
    }

    pub fn remove(&self, name: &str, version: &str) -> Result<bool, StoreError> {
        let key = format!("{name}@{version}");
        self.forget_cached();
        let Some(old) = self.plugins.remove(key.as_bytes())? else {
            return Ok(false);
        };
        let rec = decode(&key, &old)?;
        self.by_digest.remove(rec.digest.as_bytes())?;
        self.forget_cached();
        Ok(true)
    }
}

fn decode(key: &str, v: &[u8]) -> Result<PluginRecord, StoreError> {
    serde_json::from_slice(v).map_err(|e| StoreError::BadRecord {
        key: key.to_string(),
        reason: e.to_string(),
    })
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

    #[test]
    fn latest_is_highest_semver() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::Store::open(dir.path()).unwrap();
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
        assert_eq!(r.latest("echo").unwrap().unwrap().version, "0.9.0");
    }
}
