//! The access keys every node of a database shares (`weft server --db`): one row of table
//! `weft_credentials` holding the credentials file's text and the policy files it names, by
//! their path relative to `$WEFT_HOME`. The first node offers its own; every later node takes
//! what the database holds.

use serde_json::Value;

use super::call::{conn, params, pg};
use super::PgDatabase;
use crate::persistence::PersistenceError;

/// The shared credentials: the file's text and `{relative path: policy text}`.
pub type SharedCredentials = (String, Value);

impl PgDatabase {
    /// The credentials the nodes of this database share, if a node stored them.
    pub fn shared_credentials(&self) -> Result<Option<SharedCredentials>, PersistenceError> {
        let rows = self.query(
            "SELECT text, policies FROM weft_credentials WHERE id = 1",
            params![],
        )?;
        Ok(rows.first().map(|r| (r.get(0), r.get(1))))
    }

    /// Stores `offered` unless a node stored credentials first; returns what is stored.
    pub fn offer_credentials(
        &self,
        offered: SharedCredentials,
    ) -> Result<SharedCredentials, PersistenceError> {
        self.call(|pool| async move {
            let c = conn(&pool).await?;
            c.execute(
                "INSERT INTO weft_credentials (id, text, policies) VALUES (1, $1, $2) \
                 ON CONFLICT DO NOTHING",
                &[&offered.0, &offered.1],
            )
            .await
            .map_err(pg)?;
            let r = c
                .query_one(
                    "SELECT text, policies FROM weft_credentials WHERE id = 1",
                    &[],
                )
                .await
                .map_err(pg)?;
            Ok((r.get(0), r.get(1)))
        })
    }
}
