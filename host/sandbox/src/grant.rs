//! Grants: the policies in force for one invocation, compiled into what the sandbox can enforce.
//!
//! `fs:Read` / `fs:Write` statements become read-only / read-write WASI preopens of exactly the
//! directories they name (cap-std then refuses `..` and symlink escapes inside the guest);
//! `http:Request` and `secrets:Get` are evaluated per request by the host imports. A grant may
//! stack several policies (an execution role narrowed by a Task's `Credentials`): a request is
//! allowed only when every layer allows it. Every decision becomes an [`AuditRecord`].

use crate::policy::{glob_match, Decision, Effect, Policy};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One allow/deny decision, as written to an execution's audit events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditRecord {
    pub action: String,
    pub resource: String,
    pub decision: Effect,
    /// The statement that decided (`Sid (/Statement/N)`), absent for the implicit deny.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statement: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl AuditRecord {
    pub(crate) fn from_decision(
        action: &str,
        resource: &str,
        d: &Decision,
        reason: Option<String>,
    ) -> Self {
        Self {
            action: action.to_string(),
            resource: resource.to_string(),
            decision: d.effect,
            statement: d.statement.clone(),
            reason,
        }
    }
}

/// A directory made visible inside the sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preopen {
    pub host: PathBuf,
    pub guest: String,
    pub writable: bool,
}

/// The compiled capabilities of one invocation.
#[derive(Debug, Clone, Default)]
pub struct Grant {
    layers: Vec<Arc<Policy>>,
    preopens: Vec<Preopen>,
    audit: Vec<AuditRecord>,
}

impl Grant {
    /// A grant that allows nothing.
    pub fn none() -> Self {
        Self::default()
    }

    /// Compiles `layers` (all must allow) against `base_dir`, the directory relative `file:`
    /// resources are resolved in.
    pub fn compile(layers: Vec<Arc<Policy>>, base_dir: &Path) -> Self {
        let mut g = Self {
            layers,
            preopens: Vec::new(),
            audit: Vec::new(),
        };
        g.compile_fs(base_dir);
        g
    }

    pub fn preopens(&self) -> &[Preopen] {
        &self.preopens
    }

    /// The decisions taken when the grant was compiled (file-system preopens).
    pub fn audit(&self) -> &[AuditRecord] {
        &self.audit
    }

    /// Evaluates a request against every layer; the first layer that does not allow decides.
    pub fn evaluate(&self, action: &str, resource: &str) -> Decision {
        if self.layers.is_empty() {
            return Decision {
                effect: Effect::Deny,
                statement: None,
            };
        }
        let mut last = None;
        for layer in &self.layers {
            let d = layer.evaluate(action, resource);
            if !d.allowed() {
                return d;
            }
            last = Some(d);
        }
        last.unwrap_or(Decision {
            effect: Effect::Deny,
            statement: None,
        })
    }

    fn compile_fs(&mut self, base_dir: &Path) {
        // Every directory any Allow statement names is a candidate.
        let mut candidates: Vec<String> = Vec::new();
        let mut denied_dirs: Vec<(String, String)> = Vec::new();
        for layer in &self.layers {
            for st in &layer.statements {
                let fs_action = st
                    .actions
                    .iter()
                    .any(|a| glob_match(a, "fs:Read") || glob_match(a, "fs:Write"));
                if !fs_action {
                    continue;
                }
                for r in &st.resources {
                    let Some(p) = r.strip_prefix("file:") else {
                        continue;
                    };
                    let dir = pattern_dir(p).to_string();
                    match st.effect {
                        Effect::Allow => {
                            if !candidates.contains(&dir) && dir != "*" {
                                candidates.push(dir)
                            }
                        }
                        Effect::Deny => denied_dirs.push((dir, st.label())),
                    }
                }
            }
        }
        for dir in candidates {
            let probe = format!("file:{dir}/");
            let read = self.evaluate("fs:Read", &probe);
            let write = self.evaluate("fs:Write", &probe);
            let resource = format!("file:{dir}");
            if !read.allowed() && !write.allowed() {
                // Allowed by one layer but not by all (or denied outright).
                let d = if read.statement.is_some() {
                    read
                } else {
                    write
                };
                self.audit
                    .push(AuditRecord::from_decision("fs:Read", &resource, &d, None));
                continue;
            }
            // A Deny on something inside the directory cannot be enforced by a preopen of the
            // whole directory, so the directory is withheld rather than over-granted.
            if let Some((inner, label)) = denied_dirs.iter().find(|(d, _)| {
                d == "*"
                    || (d.len() > dir.len()
                        && d.starts_with(&dir)
                        && d.as_bytes()[dir.len()] == b'/')
            }) {
                self.audit.push(AuditRecord {
                    action: "fs:Read".into(),
                    resource,
                    decision: Effect::Deny,
                    statement: Some(label.clone()),
                    reason: Some(format!(
                        "a Deny on file:{inner} lies inside this directory; the whole directory is withheld"
                    )),
                });
                continue;
            }
            let host = if Path::new(&dir).is_absolute() {
                PathBuf::from(&dir)
            } else {
                base_dir.join(&dir)
            };
            if !host.is_dir() {
                self.audit.push(AuditRecord {
                    action: if write.allowed() {
                        "fs:Write"
                    } else {
                        "fs:Read"
                    }
                    .into(),
                    resource,
                    decision: Effect::Deny,
                    statement: None,
                    reason: Some(format!(
                        "{} is not an existing directory; nothing preopened",
                        host.display()
                    )),
                });
                continue;
            }
            let guest = if dir.starts_with('/') {
                dir.clone()
            } else {
                format!("/{dir}")
            };
            let writable = write.allowed();
            let (action, d) = if writable {
                ("fs:Write", &write)
            } else {
                ("fs:Read", &read)
            };
            self.audit.push(AuditRecord::from_decision(
                action,
                &resource,
                d,
                Some(format!(
                    "preopened {} at {guest}{}",
                    host.display(),
                    if writable {
                        " read-write"
                    } else {
                        " read-only"
                    }
                )),
            ));
            self.preopens.push(Preopen {
                host,
                guest,
                writable,
            });
        }
    }
}

/// The directory a `file:` pattern names (`data/in/*` -> `data/in`).
fn pattern_dir(p: &str) -> &str {
    let p = p
        .strip_suffix("/**")
        .or_else(|| p.strip_suffix("/*"))
        .unwrap_or(p);
    let p = p.trim_end_matches('/');
    if p.is_empty() {
        "/"
    } else {
        p
    }
}

/// Checks the syntax of a `file:` resource: a directory, optionally ending in `/*` or `/**`.
pub(crate) fn check_file_pattern(p: &str) -> Result<(), String> {
    if p == "*" {
        return Ok(());
    }
    let dir = pattern_dir(p);
    if dir.contains(['*', '?']) {
        return Err(format!(
            "`file:{p}`: wildcards are only allowed as a trailing `/*` or `/**` (a file grant names a directory)"
        ));
    }
    if dir.split('/').any(|c| c == "..") {
        return Err(format!("`file:{p}`: `..` is not allowed in a file grant"));
    }
    if dir.is_empty() {
        return Err("`file:` needs a directory".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pol(s: &str) -> Arc<Policy> {
        Arc::new(Policy::parse(s).unwrap())
    }

    #[test]
    fn fs_statements_become_preopens() {
        let base = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(base.path().join("data/in")).unwrap();
        std::fs::create_dir_all(base.path().join("data/out")).unwrap();
        let g = Grant::compile(
            vec![pol(
                r#"{"Statement":[{"Effect":"Allow","Action":"fs:Read","Resource":"file:data/in/*"},
                                 {"Effect":"Allow","Action":["fs:Read","fs:Write"],"Resource":"file:data/out/"},
                                 {"Effect":"Allow","Action":"fs:Read","Resource":"file:missing/*"}]}"#,
            )],
            base.path(),
        );
        assert_eq!(
            g.preopens(),
            &[
                Preopen {
                    host: base.path().join("data/in"),
                    guest: "/data/in".into(),
                    writable: false
                },
                Preopen {
                    host: base.path().join("data/out"),
                    guest: "/data/out".into(),
                    writable: true
                },
            ]
        );
        assert!(g
            .audit()
            .iter()
            .any(|a| a.resource == "file:missing" && a.decision == Effect::Deny));
    }

    #[test]
    fn deny_inside_an_allowed_directory_withholds_it() {
        let base = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(base.path().join("data/secret")).unwrap();
        let g = Grant::compile(
            vec![pol(
                r#"{"Statement":[{"Effect":"Allow","Action":"fs:Read","Resource":"file:data/*"},
                                 {"Sid":"S","Effect":"Deny","Action":"fs:*","Resource":"file:data/secret/*"}]}"#,
            )],
            base.path(),
        );
        assert!(g.preopens().is_empty());
        let a = &g.audit()[0];
        assert_eq!(a.decision, Effect::Deny);
        assert!(a.reason.as_deref().unwrap().contains("withheld"));
    }

    #[test]
    fn narrowing_layer_limits_the_role() {
        let base = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(base.path().join("a")).unwrap();
        std::fs::create_dir_all(base.path().join("b")).unwrap();
        let role = pol(
            r#"{"Statement":{"Effect":"Allow","Action":"fs:Read","Resource":["file:a/*","file:b/*"]}}"#,
        );
        let task =
            pol(r#"{"Statement":{"Effect":"Allow","Action":"fs:Read","Resource":"file:a/*"}}"#);
        let g = Grant::compile(vec![role, task], base.path());
        assert_eq!(g.preopens().len(), 1);
        assert_eq!(g.preopens()[0].guest, "/a");
    }

    #[test]
    fn file_pattern_syntax() {
        assert!(check_file_pattern("data/in/*").is_ok());
        assert!(check_file_pattern("/abs/**").is_ok());
        assert!(check_file_pattern("data/*/x").is_err());
        assert!(check_file_pattern("data/../etc").is_err());
    }
}
