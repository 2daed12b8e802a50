//! The claim a `weft server` node holds on its PostgreSQL database while it serves it: a
//! session-level advisory lock on a connection taken out of the pool for the node's lifetime.
//!
//! Until executions are owned through leases with fencing epochs, two nodes replaying the same
//! RUNNING executions would run their tasks twice; so a second node on a database that a live
//! node serves refuses to start, naming the database. The lock ends with the node's session (a
//! clean exit, `kill -9`, a lost connection), so a restarted or replacement node takes over.

use super::call::{conn, pg};
use super::PgDatabase;
use crate::persistence::PersistenceError;

/// The advisory lock key of the node claim (`weftnode` in ASCII).
const NODE_LOCK_KEY: i64 = 0x7765_6674_6e6f_6465;

/// Held while a node serves the database; dropping it ends the claim.
pub struct NodeClaim {
    _client: deadpool_postgres::ClientWrapper,
}

impl PgDatabase {
    /// Claims the database for this node, or refuses with [`PersistenceError::Claimed`] when a
    /// live node holds it.
    pub fn claim_for_node(&self) -> Result<NodeClaim, PersistenceError> {
        let pool = self.pool().clone();
        let target = self.target();
        self.run(async move {
            // out of the pool: the session (and its lock) lives as long as the claim
            let client = deadpool_postgres::Object::take(conn(&pool).await?);
            let row = client
                .query_one("SELECT pg_try_advisory_lock($1)", &[&NODE_LOCK_KEY])
                .await
                .map_err(pg)?;
            if row.get::<_, bool>(0) {
                Ok(NodeClaim { _client: client })
            } else {
                Err(PersistenceError::Claimed { database: target })
            }
        })?
    }
}
