//! [`MapRunStore`]: per Map Run ARN, the execution it belongs to and the limits
//! `UpdateMapRun` set (a JSON object; everything else about a Map Run is read from its
//! execution's history).

use super::PersistenceError;

/// Map Run records, by Map Run ARN.
pub trait MapRunStore: Send + Sync {
    /// A Map Run's record.
    fn map_run(&self, arn: &str) -> Result<Option<Vec<u8>>, PersistenceError>;
    /// Records a new Map Run; an existing record is kept (a replay records it again) and
    /// returned.
    fn insert_map_run(&self, arn: &str, json: &[u8]) -> Result<Option<Vec<u8>>, PersistenceError>;
    /// Overwrites a Map Run's record.
    fn put_map_run(&self, arn: &str, json: &[u8]) -> Result<(), PersistenceError>;
}
