//! [`TokenStore`]: the task tokens of tasks waiting for an answer (`.waitForTaskToken`
//! callbacks and activity tasks), and [`ActivityStore`]: the activities workers poll. Records
//! cross the boundary as the JSON the runtime encodes; each database implements both with the
//! same observable behaviour (activities list by name, bytewise).

use super::catalog::Update;
use super::PersistenceError;

/// A visitor of tokens: the token and its record's JSON; answers false to stop.
pub type TokenVisit<'a> = &'a mut dyn FnMut(&str, &[u8]) -> bool;

/// Task tokens waiting for an answer, by token.
pub trait TokenStore: Send + Sync {
    /// A token's record.
    fn token(&self, token: &str) -> Result<Option<Vec<u8>>, PersistenceError>;
    /// Records a new token; false (and nothing written) when it exists.
    fn insert_token(&self, token: &str, json: &[u8]) -> Result<bool, PersistenceError>;
    /// Overwrites a token's record (a heartbeat, a claim).
    fn put_token(&self, token: &str, json: &[u8]) -> Result<(), PersistenceError>;
    /// Forgets a token.
    fn remove_token(&self, token: &str) -> Result<(), PersistenceError>;
    /// Hands `visit` every token until it answers false.
    fn each_token(&self, visit: TokenVisit<'_>) -> Result<(), PersistenceError>;
    /// Rewrites a token's record with `f` (given the current record or `None`; answering
    /// `None` removes it), atomically against every other writer on any node (a worker
    /// claiming an activity task).
    fn update_token(&self, token: &str, f: Update<'_>) -> Result<(), PersistenceError>;
}

/// Activities, by name.
pub trait ActivityStore: Send + Sync {
    /// An activity's record.
    fn activity(&self, name: &str) -> Result<Option<Vec<u8>>, PersistenceError>;
    /// Writes an activity's record.
    fn put_activity(&self, name: &str, json: &[u8]) -> Result<(), PersistenceError>;
    /// Removes an activity.
    fn remove_activity(&self, name: &str) -> Result<(), PersistenceError>;
    /// Activities with names after `after` (`None`: from the first), by name, at most `limit`.
    fn activities(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, PersistenceError>;
}
