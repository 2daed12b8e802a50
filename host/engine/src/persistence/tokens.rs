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
    /// The tokens whose record names `execution` (see [`TokenIndex`]), with their records.
    /// The default walks every token; a database with an index overrides it.
    fn tokens_of(&self, execution: &str) -> Result<Vec<(String, Vec<u8>)>, PersistenceError> {
        let mut found = Vec::new();
        self.each_token(&mut |token, v| {
            if TokenIndex::of(v).is_some_and(|i| i.execution.as_deref() == Some(execution)) {
                found.push((token.to_string(), v.to_vec()));
            }
            true
        })?;
        Ok(found)
    }
    /// Up to `limit` tokens of activity tasks of `activity` that no worker has claimed (see
    /// [`TokenIndex`]), in token order. The default walks the tokens; a database with an index
    /// overrides it.
    fn open_activity_tasks(
        &self,
        activity: &str,
        limit: usize,
    ) -> Result<Vec<String>, PersistenceError> {
        let mut found = Vec::new();
        if limit == 0 {
            return Ok(found);
        }
        self.each_token(&mut |token, v| {
            if TokenIndex::of(v).is_some_and(|i| i.open_activity() == Some(activity)) {
                found.push(token.to_string());
            }
            found.len() < limit
        })?;
        Ok(found)
    }
}

/// The fields of a token's record the stores look up by: the record is a JSON object whose
/// `execution` names the waiting execution, `activity` the activity of an activity task and
/// `claimed_by` the worker that took it (absent or null while nobody has). Other fields are
/// the runtime's own.
#[derive(Debug, Default, serde::Deserialize)]
pub struct TokenIndex {
    /// The waiting execution.
    #[serde(default)]
    pub execution: Option<String>,
    /// The activity of an activity task.
    #[serde(default)]
    pub activity: Option<String>,
    /// The worker that claimed the activity task.
    #[serde(default)]
    pub claimed_by: Option<String>,
}

impl TokenIndex {
    /// The fields of `record`; `None` when it is not a JSON object.
    pub fn of(record: &[u8]) -> Option<Self> {
        serde_json::from_slice(record).ok()
    }

    /// The activity whose task this is while no worker has claimed it.
    pub fn open_activity(&self) -> Option<&str> {
        match self.claimed_by {
            None => self.activity.as_deref(),
            Some(_) => None,
        }
    }
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
