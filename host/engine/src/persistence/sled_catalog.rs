//! [`SledCatalog`]: the Step Functions catalog ([`super::CatalogStore`]) on sled, in the trees
//! and keys the server has always written, so an existing `$WEFT_HOME` opens unchanged:
//! - `sfn_state_machines`: `name` -> state machine record;
//! - `sfn_versions`: `name \0 version` (8 bytes, big-endian) -> version record;
//! - `sfn_aliases`: `name \0 alias` -> alias record;
//! - `sfn_resource_maps`: `name` -> the state machine's resource map (canonical JSON);
//! - `sfn_tags`: resource ARN -> JSON object of the resource's tags.
//!
//! State machine names cannot hold `\0` (AWS's naming rule refuses control characters), so a
//! name's versions and aliases are exactly the keys under `name \0`.

use std::ops::Bound;

use super::catalog::{CatalogStore, Update};
use super::limits;
use super::PersistenceError;

/// Tree of state machine records.
pub const STATE_MACHINES: &str = "sfn_state_machines";
/// Tree of published versions.
pub const VERSIONS: &str = "sfn_versions";
/// Tree of aliases.
pub const ALIASES: &str = "sfn_aliases";
/// Tree of per-state-machine resource maps.
pub const RESOURCE_MAPS: &str = "sfn_resource_maps";
/// Tree of tags.
pub const TAGS: &str = "sfn_tags";

/// The catalog's sled trees.
#[derive(Clone)]
pub struct SledCatalog {
    state_machines: sled::Tree,
    versions: sled::Tree,
    aliases: sled::Tree,
    resource_maps: sled::Tree,
    tags: sled::Tree,
}

fn prefix(name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(name.len() + 9);
    k.extend_from_slice(name.as_bytes());
    k.push(0);
    k
}

fn version_key(name: &str, v: u64) -> Vec<u8> {
    let mut k = prefix(name);
    k.extend_from_slice(&v.to_be_bytes());
    k
}

fn alias_key(name: &str, alias: &str) -> Vec<u8> {
    let mut k = prefix(name);
    k.extend_from_slice(alias.as_bytes());
    k
}

fn version_of_key(prefix_len: usize, k: &[u8]) -> Result<u64, PersistenceError> {
    k.get(prefix_len..)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| PersistenceError::Corrupt {
            what: "version key",
            reason: format!("{} bytes after the state machine's name, not 8", k.len()),
        })
}

fn utf8(what: &'static str, b: &[u8]) -> Result<String, PersistenceError> {
    String::from_utf8(b.to_vec()).map_err(|e| PersistenceError::Corrupt {
        what,
        reason: e.to_string(),
    })
}

fn get(tree: &sled::Tree, k: &[u8]) -> Result<Option<Vec<u8>>, PersistenceError> {
    Ok(tree.get(k)?.map(|v| v.to_vec()))
}

/// Inserts unless present; the present value otherwise.
fn insert_new(tree: &sled::Tree, k: &[u8], v: &[u8]) -> Result<Option<Vec<u8>>, PersistenceError> {
    match tree.compare_and_swap(k, None as Option<&[u8]>, Some(v))? {
        Ok(()) => Ok(None),
        Err(c) => Ok(Some(c.current.map(|b| b.to_vec()).unwrap_or_default())),
    }
}

/// Read-modify-write through `f`; a new record over the cap leaves the old one and is refused.
fn update(
    tree: &sled::Tree,
    k: &[u8],
    what: &'static str,
    f: Update<'_>,
) -> Result<(), PersistenceError> {
    let mut refused = None;
    tree.fetch_and_update(k, |cur| {
        let new = f(cur);
        match new.as_deref().map(|n| limits::record(what, n)) {
            Some(Err(e)) => {
                refused = Some(e);
                cur.map(<[u8]>::to_vec)
            }
            _ => {
                refused = None;
                new
            }
        }
    })?;
    refused.map_or(Ok(()), Err)
}

impl SledCatalog {
    /// Opens (creating) the catalog's trees in `db`.
    pub fn open(db: &sled::Db) -> Result<Self, PersistenceError> {
        Ok(SledCatalog {
            state_machines: db.open_tree(STATE_MACHINES)?,
            versions: db.open_tree(VERSIONS)?,
            aliases: db.open_tree(ALIASES)?,
            resource_maps: db.open_tree(RESOURCE_MAPS)?,
            tags: db.open_tree(TAGS)?,
        })
    }
}

impl CatalogStore for SledCatalog {
    fn state_machine(&self, name: &str) -> Result<Option<Vec<u8>>, PersistenceError> {
        limits::key("state machine name", name)?;
        get(&self.state_machines, name.as_bytes())
    }

    fn insert_state_machine(
        &self,
        name: &str,
        json: &[u8],
    ) -> Result<Option<Vec<u8>>, PersistenceError> {
        limits::key("state machine name", name)?;
        limits::record("state machine record", json)?;
        insert_new(&self.state_machines, name.as_bytes(), json)
    }

    fn update_state_machine(&self, name: &str, f: Update<'_>) -> Result<(), PersistenceError> {
        limits::key("state machine name", name)?;
        update(
            &self.state_machines,
            name.as_bytes(),
            "state machine record",
            f,
        )
    }

    fn remove_state_machine(&self, name: &str) -> Result<(), PersistenceError> {
        limits::key("state machine name", name)?;
        self.state_machines.remove(name.as_bytes())?;
        Ok(())
    }

    fn state_machines(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, PersistenceError> {
        if let Some(a) = after {
            limits::key("state machine name", a)?;
        }
        let start = match after {
            Some(a) => Bound::Excluded(a.as_bytes().to_vec()),
            None => Bound::Unbounded,
        };
        let mut out = Vec::new();
        for item in self
            .state_machines
            .range::<Vec<u8>, _>((start, Bound::Unbounded))
            .take(limit)
        {
            let (k, v) = item?;
            out.push((utf8("state machine name", &k)?, v.to_vec()));
        }
        Ok(out)
    }

    fn version(&self, name: &str, version: u64) -> Result<Option<Vec<u8>>, PersistenceError> {
        limits::key("state machine name", name)?;
        get(&self.versions, &version_key(name, version))
    }

    fn put_version(&self, name: &str, version: u64, json: &[u8]) -> Result<(), PersistenceError> {
        limits::key("state machine name", name)?;
        limits::record("version record", json)?;
        self.versions.insert(version_key(name, version), json)?;
        Ok(())
    }

    fn remove_version(&self, name: &str, version: u64) -> Result<(), PersistenceError> {
        limits::key("state machine name", name)?;
        self.versions.remove(version_key(name, version))?;
        Ok(())
    }

    fn versions(&self, name: &str) -> Result<Vec<(u64, Vec<u8>)>, PersistenceError> {
        limits::key("state machine name", name)?;
        let p = prefix(name);
        let mut out = Vec::new();
        for item in self.versions.scan_prefix(&p) {
            let (k, v) = item?;
            out.push((version_of_key(p.len(), &k)?, v.to_vec()));
        }
        Ok(out)
    }

    fn latest_version(&self, name: &str) -> Result<Option<(u64, Vec<u8>)>, PersistenceError> {
        limits::key("state machine name", name)?;
        let p = prefix(name);
        match self.versions.scan_prefix(&p).next_back() {
            Some(item) => {
                let (k, v) = item?;
                Ok(Some((version_of_key(p.len(), &k)?, v.to_vec())))
            }
            None => Ok(None),
        }
    }

    fn alias(&self, name: &str, alias: &str) -> Result<Option<Vec<u8>>, PersistenceError> {
        limits::key("state machine name", name)?;
        limits::key("alias name", alias)?;
        get(&self.aliases, &alias_key(name, alias))
    }

    fn insert_alias(
        &self,
        name: &str,
        alias: &str,
        json: &[u8],
    ) -> Result<Option<Vec<u8>>, PersistenceError> {
        limits::key("state machine name", name)?;
        limits::key("alias name", alias)?;
        limits::record("alias record", json)?;
        insert_new(&self.aliases, &alias_key(name, alias), json)
    }

    fn put_alias(&self, name: &str, alias: &str, json: &[u8]) -> Result<(), PersistenceError> {
        limits::key("state machine name", name)?;
        limits::key("alias name", alias)?;
        limits::record("alias record", json)?;
        self.aliases.insert(alias_key(name, alias), json)?;
        Ok(())
    }

    fn remove_alias(&self, name: &str, alias: &str) -> Result<(), PersistenceError> {
        limits::key("state machine name", name)?;
        limits::key("alias name", alias)?;
        self.aliases.remove(alias_key(name, alias))?;
        Ok(())
    }

    fn aliases(&self, name: &str) -> Result<Vec<(String, Vec<u8>)>, PersistenceError> {
        limits::key("state machine name", name)?;
        let p = prefix(name);
        let mut out = Vec::new();
        for item in self.aliases.scan_prefix(&p) {
            let (k, v) = item?;
            out.push((utf8("alias name", &k[p.len()..])?, v.to_vec()));
        }
        Ok(out)
    }

    fn resource_map(&self, name: &str) -> Result<Option<Vec<u8>>, PersistenceError> {
        limits::key("state machine name", name)?;
        get(&self.resource_maps, name.as_bytes())
    }

    fn put_resource_map(&self, name: &str, json: &[u8]) -> Result<(), PersistenceError> {
        limits::key("state machine name", name)?;
        limits::record("resource map", json)?;
        self.resource_maps.insert(name.as_bytes(), json)?;
        self.resource_maps.flush()?;
        Ok(())
    }

    fn remove_resource_map(&self, name: &str) -> Result<(), PersistenceError> {
        limits::key("state machine name", name)?;
        self.resource_maps.remove(name.as_bytes())?;
        self.resource_maps.flush()?;
        Ok(())
    }

    fn tags(&self, arn: &str) -> Result<Option<Vec<u8>>, PersistenceError> {
        limits::key("resource ARN", arn)?;
        get(&self.tags, arn.as_bytes())
    }

    fn update_tags(&self, arn: &str, f: Update<'_>) -> Result<(), PersistenceError> {
        limits::key("resource ARN", arn)?;
        update(&self.tags, arn.as_bytes(), "tags record", f)
    }

    fn remove_tags(&self, arn: &str) -> Result<(), PersistenceError> {
        limits::key("resource ARN", arn)?;
        self.tags.remove(arn.as_bytes())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes the trees as the server wrote them before the catalog had a trait (keys built by
    /// hand, not by this module), then reads them through [`CatalogStore`].
    #[test]
    fn opens_a_store_written_in_the_servers_layout() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = sled::open(dir.path()).unwrap();
            let sms = db.open_tree("sfn_state_machines").unwrap();
            sms.insert(b"b-sm", &b"{\"name\":\"b-sm\"}"[..]).unwrap();
            sms.insert(b"a-sm", &b"{\"name\":\"a-sm\"}"[..]).unwrap();
            let versions = db.open_tree("sfn_versions").unwrap();
            for v in [1u64, 2, 10] {
                let mut k = b"a-sm\0".to_vec();
                k.extend_from_slice(&v.to_be_bytes());
                versions
                    .insert(k, format!("{{\"version\":{v}}}").as_bytes())
                    .unwrap();
            }
            // another state machine whose name extends this one's must not leak in
            let mut k = b"a-sm-2\0".to_vec();
            k.extend_from_slice(&7u64.to_be_bytes());
            versions.insert(k, &b"{}"[..]).unwrap();
            let aliases = db.open_tree("sfn_aliases").unwrap();
            aliases
                .insert(b"a-sm\0prod", &b"{\"name\":\"prod\"}"[..])
                .unwrap();
            aliases
                .insert(b"a-sm\0beta", &b"{\"name\":\"beta\"}"[..])
                .unwrap();
            db.open_tree("sfn_resource_maps")
                .unwrap()
                .insert(b"a-sm", &b"{\"resources\":{}}"[..])
                .unwrap();
            db.open_tree("sfn_tags")
                .unwrap()
                .insert(b"arn:x", &b"{\"team\":\"data\"}"[..])
                .unwrap();
            db.flush().unwrap();
        }
        let db = sled::open(dir.path()).unwrap();
        let c = SledCatalog::open(&db).unwrap();
        let names: Vec<String> = c
            .state_machines(None, 10)
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(names, ["a-sm", "b-sm"]);
        assert_eq!(c.state_machines(Some("a-sm"), 10).unwrap().len(), 1);
        assert_eq!(c.state_machines(None, 1).unwrap().len(), 1);
        assert_eq!(
            c.state_machine("b-sm").unwrap().as_deref(),
            Some(&b"{\"name\":\"b-sm\"}"[..])
        );
        let vs: Vec<u64> = c
            .versions("a-sm")
            .unwrap()
            .into_iter()
            .map(|(v, _)| v)
            .collect();
        assert_eq!(vs, [1, 2, 10]);
        assert_eq!(c.latest_version("a-sm").unwrap().unwrap().0, 10);
        assert_eq!(
            c.version("a-sm", 2).unwrap().as_deref(),
            Some(&b"{\"version\":2}"[..])
        );
        let als: Vec<String> = c
            .aliases("a-sm")
            .unwrap()
            .into_iter()
            .map(|(a, _)| a)
            .collect();
        assert_eq!(als, ["beta", "prod"]);
        assert!(c.resource_map("a-sm").unwrap().is_some());
        assert_eq!(
            c.tags("arn:x").unwrap().as_deref(),
            Some(&b"{\"team\":\"data\"}"[..])
        );
    }
}
