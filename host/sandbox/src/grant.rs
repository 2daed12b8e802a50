//! Grants: the policies in force for one invocation, compiled into what the sandbox can enforce.
//!
//! `fs:Read` / `fs:Write` statements become read-only / read-write WASI preopens of exactly the
//! directories they name, opened beneath a trusted root with no symlink followed in any
//! component (cap-std then refuses `..` and symlink escapes inside the guest); a Deny that could
//! match anything inside a directory withholds the directory (or its write access);
//! `http:Request` and `secrets:Get` are evaluated per request by the host imports. A grant may
//! stack several policies (an execution role narrowed by a Task's `Credentials`): a request is
//! allowed only when every layer allows it. Every decision becomes an [`AuditRecord`].

use crate::fsopen::{open_beneath, open_trusted_dir};
use crate::policy::{Decision, Effect, Policy};
use crate::resource::{join, normalize_path, within, Request};
use serde::Serialize;
use std::os::fd::OwnedFd;
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
#[derive(Debug, Clone)]
pub struct Preopen {
    /// The canonical host path (for audit records and messages; never opened again by path).
    pub host: PathBuf,
    pub guest: String,
    pub writable: bool,
    /// The directory as opened when the grant was compiled, with no symlink followed.
    pub(crate) dir: Arc<OwnedFd>,
}

impl PartialEq for Preopen {
    fn eq(&self, o: &Self) -> bool {
        self.host == o.host && self.guest == o.guest && self.writable == o.writable
    }
}

impl Preopen {
    /// The path the sandbox hands to WASI: one that resolves to the already opened directory.
    pub(crate) fn open_path(&self) -> PathBuf {
        crate::fsopen::reopen_path(&self.dir, &self.host)
    }
}

/// The compiled capabilities of one invocation.
#[derive(Debug, Clone, Default)]
pub struct Grant {
    /// The policies with relative `file:` patterns resolved against `base`.
    layers: Vec<Arc<Policy>>,
    /// The canonical base directory (absolute, normal).
    base: String,
    preopens: Vec<Preopen>,
    audit: Vec<AuditRecord>,
}

/// Why a granted file read failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileReadError {
    #[error("{0}")]
    BadPath(String),
    #[error("Sandbox.PermissionDenied: the grant does not allow fs:Read on {0}")]
    Denied(String),
    #[error("cannot read {path}: {reason}")]
    Io { path: String, reason: String },
    #[error("{path} is larger than {max} bytes")]
    TooLarge { path: String, max: u64 },
}

/// The base directory in canonical form: symlinks in the operator's own base are resolved
/// once, here; nothing beneath it is ever resolved.
fn canonical_base(base_dir: &Path) -> String {
    let abs = std::fs::canonicalize(base_dir).unwrap_or_else(|_| {
        std::env::current_dir()
            .map(|c| c.join(base_dir))
            .unwrap_or_else(|_| base_dir.to_path_buf())
    });
    let s = abs.to_string_lossy();
    normalize_path(&s).unwrap_or_else(|_| s.into_owned())
}

/// How one directory fares against every layer.
struct TreeDecision {
    /// Every layer has an Allow covering the whole tree: the last such statement.
    allowed: Option<String>,
    /// A Deny that could match the directory or something beneath it.
    denied: Option<(String, String)>,
}

impl Grant {
    /// A grant that allows nothing.
    pub fn none() -> Self {
        Self::default()
    }

    /// The grant of `layers` (all must allow) without opening anything: for host-side checks
    /// such as [`Grant::read_file`]. Relative `file:` resources are resolved in `base_dir`.
    pub fn for_requests(layers: Vec<Arc<Policy>>, base_dir: &Path) -> Self {
        let base = canonical_base(base_dir);
        Self {
            layers: layers.iter().map(|l| Arc::new(l.resolve(&base))).collect(),
            base,
            preopens: Vec::new(),
            audit: Vec::new(),
        }
    }

    /// Compiles `layers` (all must allow) against `base_dir`, the directory relative `file:`
    /// resources are resolved in, opening every granted directory (no symlink followed).
    pub fn compile(layers: Vec<Arc<Policy>>, base_dir: &Path) -> Self {
        let mut g = Self::for_requests(layers.clone(), base_dir);
        g.compile_fs(&layers);
        g
    }

    pub fn preopens(&self) -> &[Preopen] {
        &self.preopens
    }

    /// This grant plus a directory the host itself provides (not a policy's decision), shown
    /// read-only at `guest` (an absolute guest path no preopen of the grant uses): e.g. the
    /// Python packages vendored for a DAG folder. `host` is opened now, absolute, with no
    /// symlink followed in any component; the preopen is audited like the policy ones.
    pub fn with_read_only_dir(mut self, host: &Path, guest: &str) -> Result<Self, String> {
        if !guest.starts_with('/') || guest.split('/').any(|c| c == "..") {
            return Err(format!("guest path `{guest}` must be absolute and normal"));
        }
        if self.preopens.iter().any(|p| p.guest == guest) {
            return Err(format!("guest path `{guest}` is already preopened"));
        }
        let dir = host
            .to_str()
            .filter(|d| d.starts_with('/'))
            .and_then(|d| normalize_path(d).ok())
            .ok_or_else(|| format!("{} is not an absolute, normal path", host.display()))?;
        let root = open_trusted_dir(Path::new("/"))?;
        let fd = open_beneath(&root, dir.trim_start_matches('/'), true).map_err(|e| {
            format!("{dir} is not an existing directory reachable without symlinks: {e}")
        })?;
        self.audit.push(AuditRecord {
            action: "fs:Read".into(),
            resource: format!("file:{dir}"),
            decision: Effect::Allow,
            statement: None,
            reason: Some(format!(
                "preopened {dir} at {guest} read-only (provided by weft)"
            )),
        });
        self.preopens.push(Preopen {
            host: PathBuf::from(&dir),
            guest: guest.to_string(),
            writable: false,
            dir: Arc::new(fd),
        });
        Ok(self)
    }

    /// The decisions taken when the grant was compiled (file-system preopens).
    pub fn audit(&self) -> &[AuditRecord] {
        &self.audit
    }

    /// Canonicalises `resource` (relative `file:` paths against the base) and evaluates it.
    pub fn evaluate(&self, action: &str, resource: &str) -> Decision {
        self.evaluate_request(action, &self.request(resource))
    }

    /// The canonical form of a resource string as this grant sees it.
    pub fn request(&self, resource: &str) -> Request {
        match Request::from_text(resource) {
            Request::File(p) if !p.starts_with('/') => Request::File(join(&self.base, &p)),
            r => r,
        }
    }

    /// Evaluates a canonical request against every layer; the first layer that does not allow
    /// decides.
    pub fn evaluate_request(&self, action: &str, request: &Request) -> Decision {
        if self.layers.is_empty() {
            return Decision {
                effect: Effect::Deny,
                statement: None,
            };
        }
        let mut last = None;
        for layer in &self.layers {
            let d = layer.evaluate_request(action, request);
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

    fn tree_decision(&self, action: &str, dir: &str) -> TreeDecision {
        let mut allowed = None;
        let mut denied = None;
        for layer in &self.layers {
            let mut layer_allows = None;
            for st in &layer.statements {
                if !st.matches_action(action) {
                    continue;
                }
                match st.effect {
                    Effect::Allow => {
                        if layer_allows.is_none() && st.patterns.iter().any(|p| p.covers_tree(dir))
                        {
                            layer_allows = Some(st.label());
                        }
                    }
                    Effect::Deny => {
                        if denied.is_none() {
                            if let Some(i) = st.patterns.iter().position(|p| p.touches_tree(dir)) {
                                denied = Some((st.label(), st.resources[i].clone()));
                            }
                        }
                    }
                }
            }
            match layer_allows {
                Some(l) => allowed = Some(l),
                None => {
                    allowed = None;
                    break;
                }
            }
        }
        if self.layers.is_empty() {
            allowed = None;
        }
        TreeDecision { allowed, denied }
    }

    fn compile_fs(&mut self, unresolved: &[Arc<Policy>]) {
        // Every directory any Allow statement names is a candidate, with the guest path its
        // spelling gives (`file:data/in` -> /data/in, `file:/abs` -> /abs).
        let mut candidates: Vec<(String, String)> = Vec::new();
        for (layer, orig) in self.layers.iter().zip(unresolved) {
            for (st, ost) in layer.statements.iter().zip(&orig.statements) {
                if st.effect != Effect::Allow
                    || !(st.matches_action("fs:Read") || st.matches_action("fs:Write"))
                {
                    continue;
                }
                for (p, op) in st.patterns.iter().zip(&ost.patterns) {
                    let (Some(abs), Some(spelled)) = (p.tree(), op.tree()) else {
                        continue;
                    };
                    let guest = if spelled.starts_with('/') {
                        spelled.to_string()
                    } else {
                        format!("/{spelled}")
                    };
                    let c = (abs.to_string(), guest);
                    if !candidates.contains(&c) {
                        candidates.push(c);
                    }
                }
            }
        }
        for (dir, guest) in candidates {
            let resource = format!("file:{dir}");
            let read = self.tree_decision("fs:Read", &dir);
            let write = self.tree_decision("fs:Write", &dir);
            let deny = |action: &str, statement: Option<String>, reason: String| AuditRecord {
                action: action.into(),
                resource: resource.clone(),
                decision: Effect::Deny,
                statement,
                reason: Some(reason),
            };
            if read.allowed.is_none() && write.allowed.is_none() {
                // allowed by one layer but not by all of them
                self.audit.push(deny(
                    "fs:Read",
                    None,
                    "not allowed by every policy in force; nothing preopened".into(),
                ));
                continue;
            }
            // A preopen exposes the whole tree, so a Deny that could match anything in it
            // withholds the directory rather than being skipped.
            if let Some((label, pattern)) = &read.denied {
                self.audit.push(deny(
                    "fs:Read",
                    Some(label.clone()),
                    format!("the Deny on `{pattern}` could match this directory or something in it; the whole directory is withheld"),
                ));
                continue;
            }
            let mut note = String::new();
            let writable = match (&write.allowed, &write.denied) {
                (Some(_), None) => true,
                (Some(_), Some((_, pattern))) => {
                    note = format!(" (the Deny on `{pattern}` withholds fs:Write)");
                    false
                }
                (None, _) => false,
            };
            if !writable && read.allowed.is_none() {
                let (label, pattern) = write.denied.clone().unwrap_or_default();
                self.audit.push(deny(
                    "fs:Write",
                    Some(label),
                    format!("the Deny on `{pattern}` withholds fs:Write and fs:Read is not allowed; nothing preopened"),
                ));
                continue;
            }
            let action = if writable { "fs:Write" } else { "fs:Read" };
            let fd = match self.open_dir(&dir) {
                Ok(fd) => fd,
                Err(e) => {
                    self.audit
                        .push(deny(action, None, format!("{e}; nothing preopened")));
                    continue;
                }
            };
            let statement = if writable {
                write.allowed.clone()
            } else {
                read.allowed.clone()
            };
            self.audit.push(AuditRecord {
                action: action.into(),
                resource: resource.clone(),
                decision: Effect::Allow,
                statement,
                reason: Some(format!(
                    "preopened {dir} at {guest}{}{note}",
                    if writable {
                        " read-write"
                    } else {
                        " read-only"
                    }
                )),
            });
            self.preopens.push(Preopen {
                host: PathBuf::from(&dir),
                guest,
                writable,
                dir: Arc::new(fd),
            });
        }
    }

    /// Opens `path` (absolute, normal) with no symlink followed below the trusted root: the
    /// base directory for paths inside it, `/` for others.
    fn open_beneath_root(&self, path: &str, dir: bool) -> Result<OwnedFd, String> {
        let (root, rel) = if !self.base.is_empty() && within(path, &self.base) {
            (
                self.base.as_str(),
                path[self.base.len()..].trim_start_matches('/'),
            )
        } else {
            ("/", path.trim_start_matches('/'))
        };
        let root_fd = open_trusted_dir(Path::new(root))?;
        open_beneath(&root_fd, rel, dir)
    }

    fn open_dir(&self, dir: &str) -> Result<OwnedFd, String> {
        self.open_beneath_root(dir, true).map_err(|e| {
            format!("{dir} is not an existing directory reachable without symlinks: {e}")
        })
    }

    /// Reads a host file on a definition's behalf (a Map ItemReader source): `path` is
    /// canonicalised (relative to the base directory), `fs:Read` evaluated on it, and the file
    /// opened with no symlink followed and read up to `max` bytes. The decision is returned as
    /// an audit record either way.
    pub fn read_file(&self, path: &str, max: u64) -> (Result<Vec<u8>, FileReadError>, AuditRecord) {
        let rec = |resource: &str, d: &Decision, reason: Option<String>| {
            AuditRecord::from_decision("fs:Read", resource, d, reason)
        };
        let checked = normalize_path(path).and_then(|p| {
            if p.is_empty() {
                Err(format!("`{path}` names no file"))
            } else {
                Ok(p)
            }
        });
        let norm = match checked {
            Ok(p) => join(&self.base, &p),
            Err(e) => {
                let e = FileReadError::BadPath(e);
                let d = Decision {
                    effect: Effect::Deny,
                    statement: None,
                };
                return (
                    Err(e.clone()),
                    rec(&format!("file:{path}"), &d, Some(e.to_string())),
                );
            }
        };
        let resource = format!("file:{norm}");
        let d = self.evaluate_request("fs:Read", &Request::File(norm.clone()));
        if !d.allowed() {
            return (
                Err(FileReadError::Denied(resource.clone())),
                rec(&resource, &d, None),
            );
        }
        let io = |reason: String| FileReadError::Io {
            path: norm.clone(),
            reason,
        };
        let result = self
            .open_beneath_root(&norm, false)
            .map_err(io)
            .and_then(|fd| {
                use std::io::Read;
                let mut out = Vec::new();
                std::fs::File::from(fd)
                    .take(max.saturating_add(1))
                    .read_to_end(&mut out)
                    .map_err(|e| io(e.to_string()))?;
                if out.len() as u64 > max {
                    return Err(FileReadError::TooLarge {
                        path: norm.clone(),
                        max,
                    });
                }
                Ok(out)
            });
        let reason = result.as_ref().err().map(|e| e.to_string());
        (result, rec(&resource, &d, reason))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pol(s: &str) -> Arc<Policy> {
        Arc::new(Policy::parse(s).unwrap())
    }

    fn opened(g: &Grant) -> Vec<(PathBuf, String, bool)> {
        g.preopens()
            .iter()
            .map(|p| (p.host.clone(), p.guest.clone(), p.writable))
            .collect()
    }

    #[test]
    fn a_weft_provided_dir_is_preopened_read_only_without_links() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().canonicalize().unwrap();
        std::fs::create_dir(dir.join("pkgs")).unwrap();
        let g = Grant::none()
            .with_read_only_dir(&dir.join("pkgs"), "/weft/site-packages")
            .unwrap();
        assert_eq!(
            opened(&g),
            vec![(dir.join("pkgs"), "/weft/site-packages".to_string(), false)]
        );
        assert_eq!(g.audit().len(), 1);
        // the attacker's: a link, a relative host path, a climbing guest path, a second use
        std::os::unix::fs::symlink(dir.join("pkgs"), dir.join("link")).unwrap();
        assert!(Grant::none()
            .with_read_only_dir(&dir.join("link"), "/p")
            .is_err());
        assert!(Grant::none()
            .with_read_only_dir(Path::new("pkgs"), "/p")
            .is_err());
        assert!(Grant::none()
            .with_read_only_dir(&dir.join("pkgs"), "/a/../b")
            .is_err());
        assert!(g
            .with_read_only_dir(&dir.join("pkgs"), "/weft/site-packages")
            .is_err());
    }

    #[test]
    fn fs_statements_become_preopens() {
        let t = tempfile::tempdir().unwrap();
        let base = std::fs::canonicalize(t.path()).unwrap();
        std::fs::create_dir_all(base.join("data/in")).unwrap();
        std::fs::create_dir_all(base.join("data/out")).unwrap();
        let g = Grant::compile(
            vec![pol(
                r#"{"Statement":[{"Effect":"Allow","Action":"fs:Read","Resource":"file:data/in/*"},
                                 {"Effect":"Allow","Action":["fs:Read","fs:Write"],"Resource":"file:data/out/"},
                                 {"Effect":"Allow","Action":"fs:Read","Resource":"file:missing/*"}]}"#,
            )],
            &base,
        );
        assert_eq!(
            opened(&g),
            vec![
                (base.join("data/in"), "/data/in".into(), false),
                (base.join("data/out"), "/data/out".into(), true),
            ]
        );
        let missing = format!("file:{}/missing", base.display());
        assert!(g
            .audit()
            .iter()
            .any(|a| a.resource == missing && a.decision == Effect::Deny));
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

    /// Issue 13 item 9: a Deny without `file:` (`*secret*`, `*`) or spelled absolutely is
    /// applied, never skipped.
    #[test]
    fn denies_in_every_spelling_withhold_the_directory() {
        let t = tempfile::tempdir().unwrap();
        let base = std::fs::canonicalize(t.path()).unwrap();
        std::fs::create_dir_all(base.join("data/secret")).unwrap();
        std::fs::create_dir_all(base.join("other")).unwrap();
        let abs = base.display().to_string();
        for deny in [
            "*secret*".to_string(),
            "*".to_string(),
            format!("file:{abs}/data/secret/*"),
            format!("file:{abs}//data/./secret/"),
            format!("file:{abs}/data/*.pem"),
            "file:./data/secret".to_string(),
            format!("file:{abs}/data"),
            format!("file:{abs}"),
            "file:*".to_string(),
        ] {
            let g = Grant::compile(
                vec![pol(&format!(
                    r#"{{"Statement":[{{"Effect":"Allow","Action":"fs:Read","Resource":"file:data/*"}},
                                     {{"Sid":"D","Effect":"Deny","Action":"fs:Read","Resource":{deny:?}}}]}}"#
                ))],
                &base,
            );
            assert!(g.preopens().is_empty(), "deny {deny} was skipped");
            assert!(
                g.audit().iter().any(|a| a.decision == Effect::Deny
                    && a.statement.as_deref() == Some("D (/Statement/1)")),
                "{deny}: {:?}",
                g.audit()
            );
        }
        // a Deny elsewhere leaves the directory alone
        let g = Grant::compile(
            vec![pol(
                r#"{"Statement":[{"Effect":"Allow","Action":"fs:Read","Resource":"file:data/*"},
                                 {"Effect":"Deny","Action":"fs:Read","Resource":"file:other/*"}]}"#,
            )],
            &base,
        );
        assert_eq!(g.preopens().len(), 1);
        // a kindless Deny only for writes narrows to read-only
        let g = Grant::compile(
            vec![pol(
                r#"{"Statement":[{"Effect":"Allow","Action":["fs:Read","fs:Write"],"Resource":"file:data/*"},
                                 {"Effect":"Deny","Action":"fs:Write","Resource":"*secret*"}]}"#,
            )],
            &base,
        );
        assert_eq!(opened(&g), vec![(base.join("data"), "/data".into(), false)]);
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

    /// Issue 13 item 2: a symlink a guest planted (`shared/reports -> ../../../../etc`) never
    /// becomes a preopen, in any position, whatever it points to.
    #[test]
    fn symlinks_are_never_preopened() {
        let t = tempfile::tempdir().unwrap();
        let base = std::fs::canonicalize(t.path()).unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(base.join("shared/real/deep")).unwrap();
        std::fs::write(base.join("shared/file"), "x").unwrap();
        let ln =
            |target: &str, at: &str| std::os::unix::fs::symlink(target, base.join(at)).unwrap();
        ln("../../../../etc", "shared/reports");
        ln(&outside.path().display().to_string(), "shared/abs");
        ln("real", "shared/mid");
        ln("reports", "shared/chain");
        ln("file", "shared/tofile");
        ln("shared", "link-to-shared");
        for grant in [
            "file:shared/reports/*",
            "file:shared/abs/*",
            "file:shared/mid/deep/*",
            "file:shared/chain/*",
            "file:shared/tofile/*",
            "file:link-to-shared/real/*",
        ] {
            let g = Grant::compile(
                vec![pol(&format!(
                    r#"{{"Statement":[{{"Effect":"Allow","Action":["fs:Read","fs:Write"],"Resource":"{grant}"}}]}}"#
                ))],
                &base,
            );
            assert!(g.preopens().is_empty(), "{grant} was preopened");
            let a = &g.audit()[0];
            assert_eq!(a.decision, Effect::Deny, "{grant}");
            assert!(
                a.reason.as_deref().unwrap().contains("symbolic link")
                    || a.reason.as_deref().unwrap().contains("not a directory"),
                "{grant}: {a:?}"
            );
        }
        // absolute grants are walked from `/` with no link followed either
        let g = Grant::compile(
            vec![pol(&format!(
                r#"{{"Statement":[{{"Effect":"Allow","Action":"fs:Read","Resource":"file:{}/shared/reports/*"}}]}}"#,
                base.display()
            ))],
            Path::new("/nonexistent-base"),
        );
        assert!(g.preopens().is_empty());
    }

    /// The directory is the one opened at compile time: swapping a symlink in afterwards
    /// changes nothing the grant hands out.
    #[test]
    fn swap_after_compile_does_not_redirect() {
        let t = tempfile::tempdir().unwrap();
        let base = std::fs::canonicalize(t.path()).unwrap();
        std::fs::create_dir_all(base.join("shared/reports")).unwrap();
        std::fs::write(base.join("shared/reports/mine.txt"), "mine").unwrap();
        let g = Grant::compile(
            vec![pol(
                r#"{"Statement":[{"Effect":"Allow","Action":"fs:Read","Resource":"file:shared/reports/*"}]}"#,
            )],
            &base,
        );
        assert_eq!(g.preopens().len(), 1);
        std::fs::rename(base.join("shared/reports"), base.join("shared/old")).unwrap();
        std::os::unix::fs::symlink("/etc", base.join("shared/reports")).unwrap();
        let p = g.preopens()[0].open_path();
        assert!(p.join("mine.txt").exists(), "{}", p.display());
        assert!(!p.join("passwd").exists());
    }

    #[test]
    fn granted_reads() {
        let t = tempfile::tempdir().unwrap();
        let base = std::fs::canonicalize(t.path()).unwrap();
        std::fs::create_dir_all(base.join("data/in")).unwrap();
        std::fs::write(base.join("data/in/items.json"), "[1]").unwrap();
        std::os::unix::fs::symlink("/etc", base.join("data/in/etc")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", base.join("data/in/pw")).unwrap();
        let g = Grant::for_requests(
            vec![pol(
                r#"{"Statement":[{"Effect":"Allow","Action":"fs:Read","Resource":"file:data/*"}]}"#,
            )],
            &base,
        );
        let (r, a) = g.read_file("data/in/items.json", 100);
        assert_eq!(r.unwrap(), b"[1]");
        assert_eq!(a.decision, Effect::Allow);
        let abs = format!("{}/data/./in//items.json", base.display());
        assert_eq!(g.read_file(&abs, 100).0.unwrap(), b"[1]");
        assert!(matches!(
            g.read_file("data/in/items.json", 2).0,
            Err(FileReadError::TooLarge { .. })
        ));
        assert!(matches!(
            g.read_file("data", 100).0,
            Err(FileReadError::Io { .. })
        ));
        for p in ["/etc/passwd", "data/../../etc/passwd", "etc/passwd", ""] {
            let (r, a) = g.read_file(p, 100);
            assert!(r.is_err(), "{p}");
            assert_eq!(a.decision, Effect::Deny, "{p}");
        }
        for p in ["data/in/etc/passwd", "data/in/pw"] {
            let (r, a) = g.read_file(p, 100);
            assert!(matches!(r, Err(FileReadError::Io { .. })), "{p}: {r:?}");
            assert_eq!(a.decision, Effect::Allow);
        }
        assert!(Grant::for_requests(vec![], &base)
            .read_file("data/in/items.json", 100)
            .0
            .is_err());
    }
}
