//! [`PgTokens`]: task tokens ([`TokenStore`]) in table `sfn_tokens` and activities
//! ([`ActivityStore`]) in table `sfn_activities`, with sled's semantics (a token is recorded
//! once; activities list by name in byte order). A trigger fills the columns `execution` and
//! `open_activity` from each record ([`TokenIndex`]'s fields), so an execution's tokens and an
//! activity's unclaimed tasks are index lookups, not walks of every token.

use super::call::{conn, pg, Kv, PAGE};
use super::PgDatabase;
use crate::persistence::catalog::Update;
#[cfg(doc)]
use crate::persistence::tokens::TokenIndex;
use crate::persistence::tokens::{ActivityStore, TokenStore, TokenVisit};
use crate::persistence::PersistenceError;

/// The token and activity tables.
#[derive(Clone)]
pub struct PgTokens {
    db: PgDatabase,
    tokens: Kv,
    activities: Kv,
}

impl PgTokens {
    /// The tables in `db`.
    pub fn new(db: &PgDatabase) -> Self {
        PgTokens {
            db: db.clone(),
            tokens: Kv {
                db: db.clone(),
                table: "sfn_tokens",
                key: "token",
                what: "task token",
                rec: "task token record",
            },
            activities: Kv {
                db: db.clone(),
                table: "sfn_activities",
                key: "name",
                what: "activity name",
                rec: "activity record",
            },
        }
    }
}

impl TokenStore for PgTokens {
    fn token(&self, token: &str) -> Result<Option<Vec<u8>>, PersistenceError> {
        self.tokens.get(token)
    }

    fn insert_token(&self, token: &str, json: &[u8]) -> Result<bool, PersistenceError> {
        Ok(self.tokens.insert_new(token, json)?.is_none())
    }

    fn put_token(&self, token: &str, json: &[u8]) -> Result<(), PersistenceError> {
        self.tokens.put(token, json)
    }

    fn remove_token(&self, token: &str) -> Result<(), PersistenceError> {
        self.tokens.remove(token)
    }

    fn update_token(&self, token: &str, f: Update<'_>) -> Result<(), PersistenceError> {
        self.tokens.update(token, f)
    }

    fn tokens_of(&self, execution: &str) -> Result<Vec<(String, Vec<u8>)>, PersistenceError> {
        let x = execution.to_string();
        self.db.call(|pool| async move {
            let rows = conn(&pool)
                .await?
                .query(
                    "SELECT token, rec FROM sfn_tokens WHERE execution = $1 ORDER BY token",
                    &[&x],
                )
                .await
                .map_err(pg)?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
    }

    fn open_activity_tasks(
        &self,
        activity: &str,
        limit: usize,
    ) -> Result<Vec<String>, PersistenceError> {
        let a = activity.to_string();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.db.call(|pool| async move {
            let rows = conn(&pool)
                .await?
                .query(
                    "SELECT token FROM sfn_tokens WHERE open_activity = $1 ORDER BY token LIMIT $2",
                    &[&a, &limit],
                )
                .await
                .map_err(pg)?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
    }

    fn each_token(&self, visit: TokenVisit<'_>) -> Result<(), PersistenceError> {
        let mut after: Option<String> = None;
        loop {
            let from = after.clone();
            let rows: Vec<(String, Vec<u8>)> = self.db.call(|pool| async move {
                let rows = conn(&pool)
                    .await?
                    .query(
                        "SELECT token, rec FROM sfn_tokens WHERE $1::TEXT IS NULL OR token > $1 \
                         ORDER BY token LIMIT $2",
                        &[&from, &PAGE],
                    )
                    .await
                    .map_err(pg)?;
                Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
            })?;
            let full = rows.len() as i64 == PAGE;
            for (t, rec) in rows {
                if !visit(&t, &rec) {
                    return Ok(());
                }
                after = Some(t);
            }
            if !full {
                return Ok(());
            }
        }
    }
}

impl ActivityStore for PgTokens {
    fn activity(&self, name: &str) -> Result<Option<Vec<u8>>, PersistenceError> {
        self.activities.get(name)
    }

    fn put_activity(&self, name: &str, json: &[u8]) -> Result<(), PersistenceError> {
        self.activities.put(name, json)
    }

    fn remove_activity(&self, name: &str) -> Result<(), PersistenceError> {
        self.activities.remove(name)
    }

    fn activities(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, PersistenceError> {
        self.activities.after(after, limit)
    }
}
