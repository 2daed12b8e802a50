//! Named roles (IAM-shaped policies) that executions and DAG tasks run with: `weft:role:NAME` in
//! ASL (`Credentials.RoleArn`), `grant: NAME` in DAG files. A role `NAME` is the file
//! `NAME.json` in the first of the role directories that has it (`$WEFT_HOME/roles`, then the
//! folder of the DAGs or state machine being run). Parsed roles are cached.
//!
//! A role has one canonical spelling, `weft:role:NAME` ([`canonical_role`]): `weft:role:NAME`,
//! a bare `NAME` and an IAM role ARN `arn:aws:iam::ACCOUNT:role/[PATH/]NAME` all name the file
//! `NAME.json`, and every permission decision about a role (`iam:PassRole`) is taken on the
//! canonical spelling, the one [`Roles::get`] then loads.

use crate::EngineError;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use weft_sandbox::Policy;

/// The prefix of weft's own role references.
pub const ROLE_PREFIX: &str = "weft:role:";

/// Whether `name` is a role name: 1 to 64 of IAM's role-name characters (`A-Z a-z 0-9 + = , .
/// @ _ -`), not starting with a dot.
pub fn valid_role_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"+=,.@_-".contains(&c))
}

/// The canonical spelling `weft:role:NAME` of a role reference: `weft:role:NAME`, `NAME`, or
/// `arn:aws:iam::ACCOUNT:role/[PATH/]NAME` (ACCOUNT 12 digits; the path is not part of the
/// name, as IAM's role names are unique without it). `None` for anything else.
pub fn canonical_role(reference: &str) -> Option<String> {
    let name = if let Some(n) = reference.strip_prefix(ROLE_PREFIX) {
        n
    } else if let Some(rest) = reference.strip_prefix("arn:aws:iam::") {
        let (account, path) = rest.split_once(":role/")?;
        if account.len() != 12 || !account.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let (dirs, name) = path.rsplit_once('/').unwrap_or(("", path));
        let path_ok = dirs.split('/').all(|d| {
            d.is_empty()
                || d.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"+=,.@_-".contains(&c))
        });
        if !path_ok || path.starts_with('/') || path.contains("//") {
            return None;
        }
        name
    } else {
        reference
    };
    valid_role_name(name).then(|| format!("{ROLE_PREFIX}{name}"))
}

pub struct Roles {
    dirs: Vec<PathBuf>,
    cache: Mutex<HashMap<String, Arc<Policy>>>,
}

impl Roles {
    pub fn new(dirs: Vec<PathBuf>) -> Self {
        Self {
            dirs,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The role's policy; an unknown role or a bad policy is an error naming the file.
    pub fn get(&self, reference: &str) -> Result<Arc<Policy>, EngineError> {
        let canonical = canonical_role(reference).ok_or_else(|| EngineError::Role {
            role: reference.to_string(),
            reason: "a role is weft:role:NAME, NAME or arn:aws:iam::ACCOUNT:role/NAME, NAME of letters, digits and + = , . @ _ - (at most 64)".into(),
        })?;
        let name = &canonical[ROLE_PREFIX.len()..];
        if let Some(p) = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
        {
            return Ok(p.clone());
        }
        for d in &self.dirs {
            let path = d.join(format!("{name}.json"));
            let text = match std::fs::read_to_string(&path) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(EngineError::Role {
                        role: name.to_string(),
                        reason: format!("{}: {e}", path.display()),
                    })
                }
            };
            let policy = Policy::parse(&text).map_err(|errs| EngineError::Role {
                role: name.to_string(),
                reason: errs
                    .iter()
                    .map(|e| format!("{}: {e}", path.display()))
                    .collect::<Vec<_>>()
                    .join("; "),
            })?;
            let p = Arc::new(policy);
            self.cache
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(name.to_string(), p.clone());
            return Ok(p);
        }
        Err(EngineError::Role {
            role: name.to_string(),
            reason: format!(
                "no {name}.json in {}",
                self.dirs
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_spelling_per_role() {
        for s in [
            "weft:role:etl",
            "etl",
            "arn:aws:iam::000000000000:role/etl",
            "arn:aws:iam::123456789012:role/team/a/etl",
        ] {
            assert_eq!(canonical_role(s).as_deref(), Some("weft:role:etl"), "{s}");
        }
        for bad in [
            "",
            "weft:role:",
            "weft:role:../etl",
            "weft:role:a/b",
            "weft:role:.hidden",
            "weft:role:weft:role:x",
            "etl ",
            "arn:aws:iam::0:role/etl",
            "arn:aws:iam::000000000000:user/etl",
            "arn:aws:iam::000000000000:role/",
            "arn:aws:iam::000000000000:role//etl",
            "arn:aws:iam::000000000000:role/a b/etl",
            "arn:aws-cn:iam::000000000000:role/etl",
            "arn:aws:iam:us-east-1:000000000000:role/etl",
            "WEFT:ROLE:etl",
            "%65tl",
        ] {
            assert_eq!(canonical_role(bad), None, "{bad}");
        }
        assert_eq!(canonical_role(&"a".repeat(65)), None);
    }
}
