//! Secrets for the sandbox: `$WEFT_HOME/secrets.json` (a flat JSON object of strings) and
//! environment variables `WEFT_SECRET_<NAME>`, the environment winning. Lookups are by canonical
//! [`SecretName`] only, the name the grant was evaluated on; the environment is consulted only
//! for names it can spell one-to-one (letters, digits and `_`: `root_password` reads
//! `WEFT_SECRET_ROOT_PASSWORD`, `root-password` never does). Values are never logged.

use crate::variables::SecretsFile;
use crate::EngineError;
use std::collections::BTreeMap;
use std::path::Path;
use weft_sandbox::{SecretName, SecretSource};

#[derive(Default)]
pub struct HomeSecrets {
    /// Keyed by canonical name.
    file: BTreeMap<String, String>,
}

impl HomeSecrets {
    pub fn load(home: &Path) -> Result<Self, EngineError> {
        Ok(Self {
            file: SecretsFile::new(home).snapshot()?,
        })
    }
}

impl SecretSource for HomeSecrets {
    fn secret(&self, name: &SecretName) -> Option<String> {
        name.env_var()
            .and_then(|v| std::env::var(v).ok())
            .or_else(|| self.file.get(name.as_str()).cloned())
    }

    /// The names in the secrets file and the `WEFT_SECRET_<NAME>` variables (their names
    /// lower-cased, the canonical spelling of a name the environment can hold).
    fn names(&self) -> Vec<SecretName> {
        let mut out: Vec<SecretName> = self
            .file
            .keys()
            .filter_map(|k| SecretName::parse(k).ok())
            .collect();
        for (k, _) in std::env::vars_os() {
            let Some(k) = k.to_str() else { continue };
            if let Some(n) = k.strip_prefix("WEFT_SECRET_") {
                if let Ok(name) = SecretName::parse(&n.to_ascii_lowercase()) {
                    if name.env_var().as_deref() == Some(k) {
                        out.push(name);
                    }
                }
            }
        }
        out.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        out.dedup_by(|a, b| a.as_str() == b.as_str());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> SecretName {
        SecretName::parse(s).unwrap()
    }

    #[test]
    fn file_secrets_and_bad_files() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("secrets.json"), r#"{"DB-Password":"s3cret"}"#).unwrap();
        let s = HomeSecrets::load(d.path()).unwrap();
        assert_eq!(s.secret(&n("db-password")).as_deref(), Some("s3cret"));
        assert_eq!(s.secret(&n("DB-PASSWORD")).as_deref(), Some("s3cret"));
        assert_eq!(s.secret(&n("db_password")), None, "another secret");
        assert_eq!(s.secret(&n("nope")), None);
        std::fs::write(d.path().join("secrets.json"), "[1]").unwrap();
        let e = HomeSecrets::load(d.path()).err().unwrap().to_string();
        assert!(e.contains("secrets.json") && e.contains("line 1"), "{e}");
        // Two keys naming one secret, or a key that is no secret name, are refused.
        std::fs::write(d.path().join("secrets.json"), r#"{"root":"a","ROOT":"b"}"#).unwrap();
        let e = HomeSecrets::load(d.path()).err().unwrap().to_string();
        assert!(e.contains("name the same secret"), "{e}");
        std::fs::write(d.path().join("secrets.json"), r#"{"root password":"a"}"#).unwrap();
        let e = HomeSecrets::load(d.path()).err().unwrap().to_string();
        assert!(e.contains("Secrets.InvalidName"), "{e}");
    }

    #[test]
    fn the_environment_is_read_only_for_names_it_spells_one_to_one() {
        // A variable name no other test uses, so parallel tests do not interfere.
        std::env::set_var("WEFT_SECRET_ALIAS_PROBE_9F3", "from-env");
        let s = HomeSecrets::default();
        for same in ["alias_probe_9f3", "ALIAS_PROBE_9F3", "Alias_Probe_9f3"] {
            assert_eq!(s.secret(&n(same)).as_deref(), Some("from-env"), "{same}");
        }
        for other in [
            "alias-probe-9f3",
            "ALIAS-PROBE-9F3",
            "alias.probe.9f3",
            "alias/probe_9f3",
            "alias_probe-9f3",
        ] {
            assert_eq!(
                s.secret(&n(other)),
                None,
                "{other} must not alias the variable"
            );
        }
    }
}
