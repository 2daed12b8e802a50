//! Access keys shared by every node of one database (`weft server --db`): the first node stores
//! its `$WEFT_HOME/credentials` (creating a key as a single node does when there is none) and the
//! policy files it names in the database; every node then writes what the database holds into
//! its own `$WEFT_HOME` — where `weft server` says to read them, as on one machine — and loads
//! them from there exactly as a single node does. A key made on one node signs requests to all.
//!
//! The database is trusted, but what it holds still becomes files: policy paths must be
//! relative to `$WEFT_HOME` without `..`, and files are written private (0600).

use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context};
use serde_json::{Map, Value};
use weft_engine::persistence::PgDatabase;

use crate::auth::Tokens;

/// The policy files a credentials text names (`weft_policy = PATH`), as written.
fn policy_paths(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.trim().split_once('='))
        .filter(|(k, _)| k.trim().eq_ignore_ascii_case("weft_policy"))
        .map(|(_, v)| v.trim().to_string())
        .collect()
}

/// `rel` under `home`, refused unless it is a plain relative path.
fn under_home(home: &Path, rel: &str) -> anyhow::Result<PathBuf> {
    let p = Path::new(rel);
    if rel.is_empty()
        || rel.len() > 1024
        || !p.components().all(|c| matches!(c, Component::Normal(_)))
    {
        bail!("weft_policy `{rel}`: a shared policy path must be relative to $WEFT_HOME, without `..`");
    }
    Ok(home.join(p))
}

/// What this home offers the database: its credentials text and the policies it names.
fn offer(home: &Path) -> anyhow::Result<(String, Value)> {
    let cred = home.join("credentials");
    let text =
        std::fs::read_to_string(&cred).with_context(|| format!("reading {}", cred.display()))?;
    let mut policies = Map::new();
    for rel in policy_paths(&text) {
        let path = under_home(home, &rel)?;
        let body = std::fs::read_to_string(&path)
            .with_context(|| format!("reading the policy {}", path.display()))?;
        policies.insert(rel, Value::String(body));
    }
    Ok((text, Value::Object(policies)))
}

/// Writes the database's credentials into `home`.
fn install(home: &Path, text: &str, policies: &Value) -> anyhow::Result<()> {
    std::fs::create_dir_all(home)?;
    if let Some(map) = policies.as_object() {
        for (rel, body) in map {
            let path = under_home(home, rel)?;
            let body = body
                .as_str()
                .with_context(|| format!("the shared policy {rel} is not text"))?;
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            crate::auth::write_private(&path, body)
                .with_context(|| format!("writing {}", path.display()))?;
        }
    }
    let cred = home.join("credentials");
    if std::fs::read_to_string(&cred).ok().as_deref() != Some(text) {
        crate::auth::write_private(&cred, text)
            .with_context(|| format!("writing {}", cred.display()))?;
    }
    Ok(())
}

/// The keys of `db` written into `home` and loaded from there; true when this node created
/// them (the database had none and neither had the home).
pub fn load(home: &Path, db: &PgDatabase) -> anyhow::Result<(Tokens, bool)> {
    if let Some((text, policies)) = db.shared_credentials()? {
        install(home, &text, &policies)?;
        return Ok((Tokens::load_or_create(home)?.0, false));
    }
    let (_, created) = Tokens::load_or_create(home)?;
    let (text, policies) = db.offer_credentials(offer(home)?)?;
    // (another node may have stored its own first: then these are the keys)
    install(home, &text, &policies)?;
    Ok((Tokens::load_or_create(home)?.0, created))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_paths_are_found_and_hostile_ones_refused() {
        let text = "[a]\naws_access_key_id = A\nweft_policy = policies/ops.json\n[b]\nWEFT_POLICY= p.json\n";
        assert_eq!(policy_paths(text), ["policies/ops.json", "p.json"]);
        let home = Path::new("/h");
        assert_eq!(
            under_home(home, "policies/ops.json").unwrap(),
            Path::new("/h/policies/ops.json")
        );
        for bad in ["../x.json", "/etc/passwd", "a/../../b", "", "./a"] {
            assert!(under_home(home, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn installed_credentials_are_private_and_stay_in_the_home() {
        let home = tempfile::tempdir().unwrap();
        let pol = serde_json::json!({"policies/ro.json": "{\"Version\": \"2012-10-17\", \"Statement\": []}"});
        install(home.path(), "[default]\naws_access_key_id = K\naws_secret_access_key = S\nweft_policy = policies/ro.json\n", &pol).unwrap();
        assert!(home.path().join("policies/ro.json").is_file());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let m = std::fs::metadata(home.path().join("credentials")).unwrap();
            assert_eq!(m.permissions().mode() & 0o777, 0o600);
        }
        let hostile = serde_json::json!({"../escape.json": "{}"});
        assert!(install(home.path(), "", &hostile).is_err());
        assert!(!home.path().parent().unwrap().join("escape.json").exists());
    }
}
