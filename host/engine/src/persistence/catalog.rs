//! [`CatalogStore`]: the Step Functions catalog — state machines, their published versions and
//! aliases, each state machine's own resource map, and the tags of state machines and
//! activities — as one trait that each database implements with the same observable behaviour.
//!
//! Records cross the boundary as the JSON their owners (the server's record types) encode, so
//! the store never interprets them; what the store does guarantee is the ordering of listings
//! (state machines by name, versions by number, aliases by name, all bytewise) and the
//! atomicity of the read-modify-write calls ([`CatalogStore::update_state_machine`],
//! [`CatalogStore::update_tags`]) and of the create calls, which never overwrite.

use super::PersistenceError;

/// A read-modify-write of one record: given the current JSON (`None`: absent), the new JSON
/// (`None`: remove it, or leave it absent). It may be called more than once when writers race,
/// so it must only compute.
pub type Update<'a> = &'a mut dyn FnMut(Option<&[u8]>) -> Option<Vec<u8>>;

/// State machines, versions, aliases, per-state-machine resource maps and tags.
pub trait CatalogStore: Send + Sync {
    /// A state machine's record.
    fn state_machine(&self, name: &str) -> Result<Option<Vec<u8>>, PersistenceError>;
    /// Inserts a new state machine; when `name` exists nothing is written and its current
    /// record is returned.
    fn insert_state_machine(
        &self,
        name: &str,
        json: &[u8],
    ) -> Result<Option<Vec<u8>>, PersistenceError>;
    /// Rewrites a state machine's record atomically through `f`.
    fn update_state_machine(&self, name: &str, f: Update<'_>) -> Result<(), PersistenceError>;
    /// Removes a state machine's record (its versions, aliases and executions stay).
    fn remove_state_machine(&self, name: &str) -> Result<(), PersistenceError>;
    /// State machines with names after `after` (bytewise; `None`: from the first), in name
    /// order, at most `limit`.
    fn state_machines(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, PersistenceError>;

    /// A published version.
    fn version(&self, name: &str, version: u64) -> Result<Option<Vec<u8>>, PersistenceError>;
    /// Writes a version.
    fn put_version(&self, name: &str, version: u64, json: &[u8]) -> Result<(), PersistenceError>;
    /// Removes a version.
    fn remove_version(&self, name: &str, version: u64) -> Result<(), PersistenceError>;
    /// A state machine's versions, oldest first.
    fn versions(&self, name: &str) -> Result<Vec<(u64, Vec<u8>)>, PersistenceError>;
    /// A state machine's newest version.
    fn latest_version(&self, name: &str) -> Result<Option<(u64, Vec<u8>)>, PersistenceError>;

    /// An alias.
    fn alias(&self, name: &str, alias: &str) -> Result<Option<Vec<u8>>, PersistenceError>;
    /// Inserts a new alias; when it exists nothing is written and its record is returned.
    fn insert_alias(
        &self,
        name: &str,
        alias: &str,
        json: &[u8],
    ) -> Result<Option<Vec<u8>>, PersistenceError>;
    /// Overwrites an alias.
    fn put_alias(&self, name: &str, alias: &str, json: &[u8]) -> Result<(), PersistenceError>;
    /// Removes an alias.
    fn remove_alias(&self, name: &str, alias: &str) -> Result<(), PersistenceError>;
    /// A state machine's aliases, by alias name.
    fn aliases(&self, name: &str) -> Result<Vec<(String, Vec<u8>)>, PersistenceError>;

    /// A state machine's own resource map (its canonical JSON text).
    fn resource_map(&self, name: &str) -> Result<Option<Vec<u8>>, PersistenceError>;
    /// Writes a state machine's resource map and makes it durable before returning.
    fn put_resource_map(&self, name: &str, json: &[u8]) -> Result<(), PersistenceError>;
    /// Forgets a state machine's resource map (durable before returning).
    fn remove_resource_map(&self, name: &str) -> Result<(), PersistenceError>;

    /// The tags of a resource (a JSON object of key -> value), by canonical ARN.
    fn tags(&self, arn: &str) -> Result<Option<Vec<u8>>, PersistenceError>;
    /// Rewrites a resource's tags atomically through `f`.
    fn update_tags(&self, arn: &str, f: Update<'_>) -> Result<(), PersistenceError>;
    /// Forgets every tag of a resource.
    fn remove_tags(&self, arn: &str) -> Result<(), PersistenceError>;
}
