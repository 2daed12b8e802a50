//! [`PgCatalog`]: the Step Functions catalog ([`CatalogStore`]) in PostgreSQL — tables
//! `sfn_state_machines`, `sfn_versions`, `sfn_aliases`, `sfn_resource_maps` and `sfn_tags`,
//! with sled's semantics: listings in byte order (`COLLATE "C"`), creates that never overwrite,
//! compare-and-set read-modify-writes.

use super::call::{params, Kv};
use super::PgDatabase;
use crate::persistence::catalog::{CatalogStore, Update};
use crate::persistence::{limits, PersistenceError};

/// The catalog's tables.
#[derive(Clone)]
pub struct PgCatalog {
    db: PgDatabase,
    state_machines: Kv,
    resource_maps: Kv,
    tags: Kv,
}

const SM: &str = "state machine name";
const ALIAS: &str = "alias name";

fn version_i64(v: u64) -> Result<i64, PersistenceError> {
    i64::try_from(v).map_err(|_| PersistenceError::Invalid {
        what: "version number",
        reason: format!("{v} is over {}", i64::MAX),
    })
}

fn version_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl PgCatalog {
    /// The catalog in `db`.
    pub fn new(db: &PgDatabase) -> Self {
        let kv = |table, key, what, rec| Kv {
            db: db.clone(),
            table,
            key,
            what,
            rec,
        };
        PgCatalog {
            db: db.clone(),
            state_machines: kv("sfn_state_machines", "name", SM, "state machine record"),
            resource_maps: kv("sfn_resource_maps", "name", SM, "resource map"),
            tags: kv("sfn_tags", "arn", "resource ARN", "tags record"),
        }
    }
}

impl CatalogStore for PgCatalog {
    fn state_machine(&self, name: &str) -> Result<Option<Vec<u8>>, PersistenceError> {
        self.state_machines.get(name)
    }

    fn insert_state_machine(
        &self,
        name: &str,
        json: &[u8],
    ) -> Result<Option<Vec<u8>>, PersistenceError> {
        self.state_machines.insert_new(name, json)
    }

    fn update_state_machine(&self, name: &str, f: Update<'_>) -> Result<(), PersistenceError> {
        self.state_machines.update(name, f)
    }

    fn remove_state_machine(&self, name: &str) -> Result<(), PersistenceError> {
        self.state_machines.remove(name)
    }

    fn state_machines(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, PersistenceError> {
        self.state_machines.after(after, limit)
    }

    fn version(&self, name: &str, version: u64) -> Result<Option<Vec<u8>>, PersistenceError> {
        limits::key(SM, name)?;
        let rows = self.db.query(
            "SELECT rec FROM sfn_versions WHERE name = $1 AND version = $2",
            params![name.to_string(), version_i64(version)?],
        )?;
        Ok(rows.first().map(|r| r.get(0)))
    }

    fn put_version(&self, name: &str, version: u64, json: &[u8]) -> Result<(), PersistenceError> {
        limits::key(SM, name)?;
        limits::record("version record", json)?;
        self.db.execute(
            "INSERT INTO sfn_versions (name, version, rec) VALUES ($1, $2, $3) \
             ON CONFLICT (name, version) DO UPDATE SET rec = EXCLUDED.rec",
            params![name.to_string(), version_i64(version)?, json.to_vec()],
        )?;
        Ok(())
    }

    fn remove_version(&self, name: &str, version: u64) -> Result<(), PersistenceError> {
        limits::key(SM, name)?;
        self.db.execute(
            "DELETE FROM sfn_versions WHERE name = $1 AND version = $2",
            params![name.to_string(), version_i64(version)?],
        )?;
        Ok(())
    }

    fn versions(&self, name: &str) -> Result<Vec<(u64, Vec<u8>)>, PersistenceError> {
        limits::key(SM, name)?;
        let rows = self.db.query(
            "SELECT version, rec FROM sfn_versions WHERE name = $1 ORDER BY version",
            params![name.to_string()],
        )?;
        Ok(rows
            .iter()
            .map(|r| (version_u64(r.get(0)), r.get(1)))
            .collect())
    }

    fn latest_version(&self, name: &str) -> Result<Option<(u64, Vec<u8>)>, PersistenceError> {
        limits::key(SM, name)?;
        let rows = self.db.query(
            "SELECT version, rec FROM sfn_versions WHERE name = $1 \
             ORDER BY version DESC LIMIT 1",
            params![name.to_string()],
        )?;
        Ok(rows.first().map(|r| (version_u64(r.get(0)), r.get(1))))
    }

    fn alias(&self, name: &str, alias: &str) -> Result<Option<Vec<u8>>, PersistenceError> {
        limits::key(SM, name)?;
        limits::key(ALIAS, alias)?;
        let rows = self.db.query(
            "SELECT rec FROM sfn_aliases WHERE name = $1 AND alias = $2",
            params![name.to_string(), alias.to_string()],
        )?;
        Ok(rows.first().map(|r| r.get(0)))
    }

    fn insert_alias(
        &self,
        name: &str,
        alias: &str,
        json: &[u8],
    ) -> Result<Option<Vec<u8>>, PersistenceError> {
        limits::key(SM, name)?;
        limits::key(ALIAS, alias)?;
        limits::record("alias record", json)?;
        loop {
            let n = self.db.execute(
                "INSERT INTO sfn_aliases (name, alias, rec) VALUES ($1, $2, $3) \
                 ON CONFLICT DO NOTHING",
                params![name.to_string(), alias.to_string(), json.to_vec()],
            )?;
            if n == 1 {
                return Ok(None);
            }
            // (removed meanwhile: try the insert again)
            if let Some(cur) = self.alias(name, alias)? {
                return Ok(Some(cur));
            }
        }
    }

    fn put_alias(&self, name: &str, alias: &str, json: &[u8]) -> Result<(), PersistenceError> {
        limits::key(SM, name)?;
        limits::key(ALIAS, alias)?;
        limits::record("alias record", json)?;
        self.db.execute(
            "INSERT INTO sfn_aliases (name, alias, rec) VALUES ($1, $2, $3) \
             ON CONFLICT (name, alias) DO UPDATE SET rec = EXCLUDED.rec",
            params![name.to_string(), alias.to_string(), json.to_vec()],
        )?;
        Ok(())
    }

    fn remove_alias(&self, name: &str, alias: &str) -> Result<(), PersistenceError> {
        limits::key(SM, name)?;
        limits::key(ALIAS, alias)?;
        self.db.execute(
            "DELETE FROM sfn_aliases WHERE name = $1 AND alias = $2",
            params![name.to_string(), alias.to_string()],
        )?;
        Ok(())
    }

    fn aliases(&self, name: &str) -> Result<Vec<(String, Vec<u8>)>, PersistenceError> {
        limits::key(SM, name)?;
        let rows = self.db.query(
            "SELECT alias, rec FROM sfn_aliases WHERE name = $1 ORDER BY alias",
            params![name.to_string()],
        )?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    fn resource_map(&self, name: &str) -> Result<Option<Vec<u8>>, PersistenceError> {
        self.resource_maps.get(name)
    }

    fn put_resource_map(&self, name: &str, json: &[u8]) -> Result<(), PersistenceError> {
        // (a synchronous commit: durable when it returns)
        self.resource_maps.put(name, json)
    }

    fn remove_resource_map(&self, name: &str) -> Result<(), PersistenceError> {
        self.resource_maps.remove(name)
    }

    fn tags(&self, arn: &str) -> Result<Option<Vec<u8>>, PersistenceError> {
        self.tags.get(arn)
    }

    fn update_tags(&self, arn: &str, f: Update<'_>) -> Result<(), PersistenceError> {
        self.tags.update(arn, f)
    }

    fn remove_tags(&self, arn: &str) -> Result<(), PersistenceError> {
        self.tags.remove(arn)
    }
}
