//! Secrets for the sandbox: `$WEFT_HOME/secrets.json` (a flat JSON object of strings) and
//! environment variables `WEFT_SECRET_<NAME>` (name upper-cased, `-` and `.` as `_`), the
//! environment winning. Values are never logged.

use crate::EngineError;
use std::collections::HashMap;
use std::path::Path;
use weft_sandbox::SecretSource;

#[derive(Default)]
pub struct HomeSecrets {
    file: HashMap<String, String>,
}

impl HomeSecrets {
    pub fn load(home: &Path) -> Result<Self, EngineError> {
        let path = home.join("secrets.json");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => {
                return Err(EngineError::Secrets {
                    origin: path.display().to_string(),
                    reason: e.to_string(),
                })
            }
        };
        let file: HashMap<String, String> =
            serde_json::from_str(&text).map_err(|e| EngineError::Secrets {
                origin: format!("{}:{}", path.display(), e.line()),
                reason: format!("expected a JSON object of string values: {e}"),
            })?;
        Ok(Self { file })
    }
}

fn env_name(name: &str) -> String {
    let mut s = String::from("WEFT_SECRET_");
    s.extend(name.chars().map(|c| {
        if c.is_ascii_alphanumeric() {
            c.to_ascii_uppercase()
        } else {
            '_'
        }
    }));
    s
}

impl SecretSource for HomeSecrets {
    fn secret(&self, name: &str) -> Option<String> {
        std::env::var(env_name(name))
            .ok()
            .or_else(|| self.file.get(name).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_secrets_and_bad_files() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("secrets.json"), r#"{"db-password":"s3cret"}"#).unwrap();
        let s = HomeSecrets::load(d.path()).unwrap();
        assert_eq!(s.secret("db-password").as_deref(), Some("s3cret"));
        assert_eq!(s.secret("nope"), None);
        assert_eq!(env_name("db-password"), "WEFT_SECRET_DB_PASSWORD");
        std::fs::write(d.path().join("secrets.json"), "[1]").unwrap();
        let e = HomeSecrets::load(d.path()).err().unwrap().to_string();
        assert!(e.contains("secrets.json:1"), "{e}");
    }
}
