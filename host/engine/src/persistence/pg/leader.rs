//! Leadership of a task only one node of a cluster may do at a time (the DAG scheduler's loop):
//! a session-level advisory lock, keyed by the task's name, on a connection taken out of the
//! pool for as long as the node leads. The lock ends with the leader's session (a clean exit,
//! `kill -9`, a lost connection), and the next node that asks takes over.

use super::call::{conn, pg};
use super::PgDatabase;
use crate::persistence::PersistenceError;

/// Held while this node leads; dropping it ends the leadership.
pub struct Leadership {
    client: deadpool_postgres::ClientWrapper,
}

impl Leadership {
    /// Whether the session that holds the lock is still open (false: the lock is gone).
    pub fn is_held(&self) -> bool {
        !self.client.is_closed()
    }
}

/// The advisory lock key of task `role`.
fn key(role: &str) -> i64 {
    let h = blake3::hash(format!("weft-leader\0{role}").as_bytes());
    i64::from_le_bytes(h.as_bytes()[..8].try_into().unwrap_or([0; 8]))
}

impl PgDatabase {
    /// Leads `role` when no live node does (`None`: another node leads it).
    pub fn try_lead(&self, role: &str) -> Result<Option<Leadership>, PersistenceError> {
        let pool = self.pool().clone();
        let key = key(role);
        self.run(async move {
            // out of the pool: the session (and its lock) lives as long as the leadership
            let client = deadpool_postgres::Object::take(conn(&pool).await?);
            let row = client
                .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
                .await
                .map_err(pg)?;
            Ok(row.get::<_, bool>(0).then_some(Leadership { client }))
        })?
    }
}
