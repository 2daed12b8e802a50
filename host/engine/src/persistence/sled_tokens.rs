//! [`SledTokens`]: the [`super::TokenStore`] and [`super::ActivityStore`] on sled, in the trees
//! the server has always written, so an existing `$WEFT_HOME` opens unchanged: `sfn_tokens`
//! (token -> record) and `sfn_activities` (activity name -> record).

use std::ops::Bound;

use super::catalog::Update;
use super::limits;
use super::tokens::{ActivityStore, TokenStore, TokenVisit};
use super::PersistenceError;

/// Tree of task tokens.
pub const TOKENS: &str = "sfn_tokens";
/// Tree of activities.
pub const ACTIVITIES: &str = "sfn_activities";

/// The token and activity trees.
#[derive(Clone)]
pub struct SledTokens {
    tokens: sled::Tree,
    activities: sled::Tree,
}

impl SledTokens {
    /// Opens (creating) the trees in `db`.
    pub fn open(db: &sled::Db) -> Result<Self, PersistenceError> {
        Ok(SledTokens {
            tokens: db.open_tree(TOKENS)?,
            activities: db.open_tree(ACTIVITIES)?,
        })
    }
}

impl TokenStore for SledTokens {
    fn token(&self, token: &str) -> Result<Option<Vec<u8>>, PersistenceError> {
        limits::key("task token", token)?;
        Ok(self.tokens.get(token)?.map(|v| v.to_vec()))
    }

    fn insert_token(&self, token: &str, json: &[u8]) -> Result<bool, PersistenceError> {
        limits::key("task token", token)?;
        limits::record("task token record", json)?;
        Ok(self
            .tokens
            .compare_and_swap(token, None as Option<&[u8]>, Some(json))?
            .is_ok())
    }

    fn put_token(&self, token: &str, json: &[u8]) -> Result<(), PersistenceError> {
        limits::key("task token", token)?;
        limits::record("task token record", json)?;
        self.tokens.insert(token, json)?;
        Ok(())
    }

    fn remove_token(&self, token: &str) -> Result<(), PersistenceError> {
        limits::key("task token", token)?;
        self.tokens.remove(token)?;
        Ok(())
    }

    fn update_token(&self, token: &str, f: Update<'_>) -> Result<(), PersistenceError> {
        limits::key("task token", token)?;
        loop {
            let cur = self.tokens.get(token)?;
            let new = f(cur.as_deref());
            if let Some(n) = &new {
                limits::record("task token record", n)?;
            }
            if cur.is_none() && new.is_none() {
                return Ok(());
            }
            if self.tokens.compare_and_swap(token, cur, new)?.is_ok() {
                return Ok(());
            }
        }
    }

    fn each_token(&self, visit: TokenVisit<'_>) -> Result<(), PersistenceError> {
        for item in self.tokens.iter() {
            let (k, v) = item?;
            if !visit(&String::from_utf8_lossy(&k), &v) {
                break;
            }
        }
        Ok(())
    }
}

impl ActivityStore for SledTokens {
    fn activity(&self, name: &str) -> Result<Option<Vec<u8>>, PersistenceError> {
        limits::key("activity name", name)?;
        Ok(self.activities.get(name)?.map(|v| v.to_vec()))
    }

    fn put_activity(&self, name: &str, json: &[u8]) -> Result<(), PersistenceError> {
        limits::key("activity name", name)?;
        limits::record("activity record", json)?;
        self.activities.insert(name, json)?;
        Ok(())
    }

    fn remove_activity(&self, name: &str) -> Result<(), PersistenceError> {
        limits::key("activity name", name)?;
        self.activities.remove(name)?;
        Ok(())
    }

    fn activities(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, PersistenceError> {
        if let Some(a) = after {
            limits::key("activity name", a)?;
        }
        let start = match after {
            Some(a) => Bound::Excluded(a.as_bytes().to_vec()),
            None => Bound::Unbounded,
        };
        let mut out = Vec::new();
        for item in self
            .activities
            .range::<Vec<u8>, _>((start, Bound::Unbounded))
            .take(limit)
        {
            let (k, v) = item?;
            out.push((String::from_utf8_lossy(&k).into_owned(), v.to_vec()));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tokens and activities written in the server's layout read back; a token is recorded
    /// once; activities list by name after a cursor.
    #[test]
    fn reads_the_servers_layout_and_keeps_the_contract() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = sled::open(dir.path()).unwrap();
            db.open_tree("sfn_tokens")
                .unwrap()
                .insert("tok-1", &b"{\"execution\":\"e\"}"[..])
                .unwrap();
            let a = db.open_tree("sfn_activities").unwrap();
            for n in ["b", "a", "c"] {
                a.insert(n, format!("{{\"name\":\"{n}\"}}").as_bytes())
                    .unwrap();
            }
            db.flush().unwrap();
        }
        let db = sled::open(dir.path()).unwrap();
        let s = SledTokens::open(&db).unwrap();
        assert_eq!(
            s.token("tok-1").unwrap(),
            Some(b"{\"execution\":\"e\"}".to_vec())
        );
        assert!(
            !s.insert_token("tok-1", b"{}").unwrap(),
            "never overwritten"
        );
        assert!(s.insert_token("tok-2", b"{}").unwrap());
        let mut seen = Vec::new();
        s.each_token(&mut |t, _| {
            seen.push(t.to_string());
            true
        })
        .unwrap();
        assert_eq!(seen, ["tok-1", "tok-2"]);
        s.remove_token("tok-1").unwrap();
        assert_eq!(s.token("tok-1").unwrap(), None);
        let names = |v: Vec<(String, Vec<u8>)>| v.into_iter().map(|(n, _)| n).collect::<Vec<_>>();
        assert_eq!(names(s.activities(None, 10).unwrap()), ["a", "b", "c"]);
        assert_eq!(names(s.activities(Some("a"), 1).unwrap()), ["b"]);
        s.remove_activity("b").unwrap();
        assert_eq!(s.activity("b").unwrap(), None);
        assert!(s.activity("c").unwrap().is_some());
    }
}
