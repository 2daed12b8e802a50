//! Named roles (IAM-shaped policies) that executions and DAG tasks run with: `weft:role:NAME` in
//! ASL (`Credentials.RoleArn`), `grant: NAME` in DAG files. A role `NAME` is the file
//! `NAME.json` in the first of the role directories that has it (`$WEFT_HOME/roles`, then the
//! folder of the DAGs or state machine being run). Parsed roles are cached.

use crate::EngineError;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use weft_sandbox::Policy;

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
    pub fn get(&self, name: &str) -> Result<Arc<Policy>, EngineError> {
        let name = name.strip_prefix("weft:role:").unwrap_or(name);
        if let Some(p) = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
        {
            return Ok(p.clone());
        }
        if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
            return Err(EngineError::Role {
                role: name.to_string(),
                reason: "a role name is a plain file stem (letters, digits, - _ .)".into(),
            });
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
