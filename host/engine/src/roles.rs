//! Named roles (IAM-shaped policies) that executions and DAG tasks run with: `weft:role:NAME` in
//! ASL (`Credentials.RoleArn`), `grant: NAME` in DAG files. A role `NAME` is the file
//! `NAME.json` in the first of the role directories that has it (`$WEFT_HOME/roles`, then the
//! folder of the DAGs or state machine being run). Parsed roles are cached while their file
//! stays as it was: every lookup looks at the files (one `stat` per role directory up to the
//! one holding the role), so an edited role takes effect at its next use, a removed one is
//! refused, and one added to an earlier directory shadows the cached one. A file modified less
//! than [`weft_store::SETTLED`] ago is read again each time (a second edit in the same clock
//! tick would leave its modification time unchanged).
//!
//! A role has one canonical spelling, `weft:role:NAME` ([`canonical_role`]): `weft:role:NAME`,
//! a bare `NAME` and an IAM role ARN `arn:aws:iam::ACCOUNT:role/[PATH/]NAME` all name the file
//! `NAME.json`, and every permission decision about a role (`iam:PassRole`) is taken on the
//! canonical spelling, the one [`Roles::get`] then loads.

use crate::EngineError;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;
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

/// What identifies a version of a role file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    modified: SystemTime,
    len: u64,
    inode: u64,
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Option<Self> {
        use std::os::unix::fs::MetadataExt;
        Some(Self {
            modified: meta.modified().ok()?,
            len: meta.len(),
            inode: meta.ino(),
        })
    }

    fn settled(&self) -> bool {
        weft_store::settled(self.modified)
    }
}

/// A parsed role, and the file version it was parsed from.
struct Cached {
    policy: Arc<Policy>,
    /// Index of the role directory that held it.
    dir: usize,
    stamp: Stamp,
}

pub struct Roles {
    dirs: Vec<PathBuf>,
    cache: Mutex<HashMap<String, Cached>>,
}

impl Roles {
    pub fn new(dirs: Vec<PathBuf>) -> Self {
        Self {
            dirs,
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, Cached>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The role's policy, as its file says now; an unknown role or a bad policy is an error
    /// naming the file.
    pub fn get(&self, reference: &str) -> Result<Arc<Policy>, EngineError> {
        let canonical = canonical_role(reference).ok_or_else(|| EngineError::Role {
            role: reference.to_string(),
            reason: "a role is weft:role:NAME, NAME or arn:aws:iam::ACCOUNT:role/NAME, NAME of letters, digits and + = , . @ _ - (at most 64)".into(),
        })?;
        let name = &canonical[ROLE_PREFIX.len()..];
        let io_error = |path: &std::path::Path, e: std::io::Error| EngineError::Role {
            role: name.to_string(),
            reason: format!("{}: {e}", path.display()),
        };
        for (i, d) in self.dirs.iter().enumerate() {
            let path = d.join(format!("{name}.json"));
            let meta = match std::fs::metadata(&path) {
                Ok(m) => m,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_error(&path, e)),
            };
            let now = Stamp::of(&meta);
            if let Some(c) = self.cache().get(name) {
                if c.dir == i && Some(c.stamp) == now && c.stamp.settled() {
                    return Ok(c.policy.clone());
                }
            }
            // the version read is the one whose stamp is kept: the open file's
            let mut file = std::fs::File::open(&path).map_err(|e| io_error(&path, e))?;
            let stamp = file
                .metadata()
                .ok()
                .and_then(|m| Stamp::of(&m))
                .ok_or_else(|| io_error(&path, std::io::Error::other("no modification time")))?;
            let mut text = String::new();
            std::io::Read::read_to_string(&mut file, &mut text).map_err(|e| io_error(&path, e))?;
            let parsed = Policy::parse(&text).map_err(|errs| EngineError::Role {
                role: name.to_string(),
                reason: errs
                    .iter()
                    .map(|e| format!("{}: {e}", path.display()))
                    .collect::<Vec<_>>()
                    .join("; "),
            });
            let policy = match parsed {
                Ok(p) => Arc::new(p),
                Err(e) => {
                    // a role edited into a bad policy grants nothing any more
                    self.cache().remove(name);
                    return Err(e);
                }
            };
            self.cache().insert(
                name.to_string(),
                Cached {
                    policy: policy.clone(),
                    dir: i,
                    stamp,
                },
            );
            return Ok(policy);
        }
        self.cache().remove(name);
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
    use std::time::Duration;

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

    /// A role file written now, then aged past [`weft_store::SETTLED`] (so its parse is cached).
    fn write_role(dir: &std::path::Path, name: &str, action: &str, aged: bool) {
        let path = dir.join(format!("{name}.json"));
        std::fs::write(
            &path,
            format!(
                r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"{action}","Resource":"*"}}]}}"#
            ),
        )
        .unwrap();
        if aged {
            let t = SystemTime::now() - Duration::from_secs(60);
            std::fs::File::options()
                .write(true)
                .open(&path)
                .unwrap()
                .set_modified(t)
                .unwrap();
        }
    }

    fn allows(roles: &Roles, action: &str) -> bool {
        let p = roles.get("weft:role:etl").unwrap();
        p.evaluate(action, "anything").allowed()
    }

    #[test]
    fn an_edited_or_removed_role_takes_effect_at_its_next_use() {
        let home = tempfile::tempdir().unwrap();
        let dags = tempfile::tempdir().unwrap();
        let roles = Roles::new(vec![home.path().to_path_buf(), dags.path().to_path_buf()]);
        write_role(dags.path(), "etl", "s3:GetObject", true);
        assert!(allows(&roles, "s3:GetObject"));
        // cached: the same Arc while the file stays as it was
        assert!(Arc::ptr_eq(
            &roles.get("etl").unwrap(),
            &roles.get("arn:aws:iam::123456789012:role/etl").unwrap()
        ));
        // the attacker's window closes: a permission taken away is gone at once
        write_role(dags.path(), "etl", "s3:ListBucket", false);
        assert!(!allows(&roles, "s3:GetObject"));
        assert!(allows(&roles, "s3:ListBucket"));
        // edited twice within one clock tick: not yet settled, so read every time
        write_role(dags.path(), "etl", "s3:PutObject", false);
        assert!(allows(&roles, "s3:PutObject"));
        // a role in an earlier directory shadows the cached one
        write_role(dags.path(), "etl", "s3:GetObject", true);
        assert!(allows(&roles, "s3:GetObject"));
        write_role(home.path(), "etl", "sqs:SendMessage", true);
        assert!(allows(&roles, "sqs:SendMessage") && !allows(&roles, "s3:GetObject"));
        // a policy edited into nonsense grants nothing
        std::fs::write(home.path().join("etl.json"), "{not json").unwrap();
        assert!(roles.get("etl").is_err());
        // removed: refused
        std::fs::remove_file(home.path().join("etl.json")).unwrap();
        std::fs::remove_file(dags.path().join("etl.json")).unwrap();
        let e = roles.get("etl").unwrap_err().to_string();
        assert!(e.contains("no etl.json"), "{e}");
    }
}
