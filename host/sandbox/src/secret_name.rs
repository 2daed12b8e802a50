//! Secret names: the one canonical spelling of a secret, computed once from what a guest or a
//! template asked for, on which the grant is evaluated (`secret:NAME`) and by which the value
//! is looked up, so no two spellings can reach one value under different grant decisions.
//!
//! A name is `/`-separated segments of ASCII letters, digits, `_`, `.` and `-`, each starting
//! with a letter, digit or `_` (so no empty, `.` or `..` segments), at most
//! [`SecretName::MAX_LEN`] bytes; anything else (spaces, NUL, percent-encoding, Unicode
//! look-alikes, `//`, `./`) is refused as `Secrets.InvalidName`. Names are case-insensitive: the
//! canonical form is lower case, and `secret:` patterns in policies match case-insensitively.
//!
//! The environment (`WEFT_SECRET_<NAME>`) can only spell upper-case letters, digits and `_`, so
//! it is consulted only for names made of letters, digits and `_`: `root_password` reads
//! `WEFT_SECRET_ROOT_PASSWORD`, and `root-password`, `root.password` or `var/x` never read the
//! environment. The mapping is one-to-one.

use std::fmt;

/// A validated, canonical (lower-case) secret name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SecretName(String);

/// Why a name is not a secret name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Secrets.InvalidName: {shown} is not a valid secret name: {reason}")]
pub struct InvalidSecretName {
    /// The name as asked, escaped and shortened for messages.
    pub shown: String,
    pub reason: String,
}

fn shown(raw: &str) -> String {
    let mut s: String = raw.chars().take(80).collect();
    if s.len() < raw.len() {
        s.push('…');
    }
    format!("{s:?}")
}

/// Checks one segment of a name.
fn check_segment(seg: &str) -> Result<(), String> {
    let Some(first) = seg.chars().next() else {
        return Err("empty segments (`//`, or a leading or trailing `/`) are not allowed".into());
    };
    if !(first.is_ascii_alphanumeric() || first == '_') {
        return Err(format!(
            "a segment starts with a letter, digit or `_`, not {first:?} (no `.`, `..`, `./`)"
        ));
    }
    if let Some(c) = seg
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(format!(
            "{c:?} is not allowed (ASCII letters, digits, `_`, `.`, `-`, and `/` between segments)"
        ));
    }
    Ok(())
}

impl SecretName {
    /// Longest name accepted, in bytes.
    pub const MAX_LEN: usize = 256;

    /// Validates `raw` and returns its canonical form.
    pub fn parse(raw: &str) -> Result<Self, InvalidSecretName> {
        let invalid = |reason: String| InvalidSecretName {
            shown: shown(raw),
            reason,
        };
        if raw.is_empty() || raw.len() > Self::MAX_LEN {
            return Err(invalid(format!(
                "a name is 1 to {} bytes long",
                Self::MAX_LEN
            )));
        }
        for seg in raw.split('/') {
            check_segment(seg).map_err(invalid)?;
        }
        Ok(Self(raw.to_ascii_lowercase()))
    }

    /// The secret `PREFIX/NAME` (`var/NAME`, `conn/NAME`) where `name` must be one segment.
    pub fn with_prefix(prefix: &str, name: &str) -> Result<Self, InvalidSecretName> {
        if name.contains('/') {
            return Err(InvalidSecretName {
                shown: shown(name),
                reason: "a variable or connection name is one segment (no `/`)".into(),
            });
        }
        check_segment(name).map_err(|reason| InvalidSecretName {
            shown: shown(name),
            reason,
        })?;
        Self::parse(&format!("{prefix}/{name}"))
    }

    /// The canonical name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The resource the grant is evaluated on: `secret:NAME`.
    pub fn resource(&self) -> String {
        format!("secret:{}", self.0)
    }

    /// The environment variable that may hold this secret, for names the environment can
    /// spell one-to-one (letters, digits and `_` only); `None` for every other name.
    pub fn env_var(&self) -> Option<String> {
        self.0
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            .then(|| format!("WEFT_SECRET_{}", self.0.to_ascii_uppercase()))
    }
}

impl fmt::Display for SecretName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks the part after `secret:` of a policy resource pattern: the name grammar plus the
/// wildcards `*` and `?`, so a pattern that could never name a secret is an error, not a
/// statement silently skipped.
pub(crate) fn check_pattern(p: &str) -> Result<(), String> {
    if p.is_empty() {
        return Err("`secret:` needs a name or a pattern after it".into());
    }
    if let Some(c) = p
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/' | '*' | '?')))
    {
        return Err(format!(
            "{c:?} can never appear in a secret name (ASCII letters, digits, `_`, `.`, `-`, `/`; wildcards `*` and `?`)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_names_and_refusals() {
        let n = SecretName::parse("Root_Password").unwrap();
        assert_eq!(n.as_str(), "root_password");
        assert_eq!(n.resource(), "secret:root_password");
        assert_eq!(n.env_var().as_deref(), Some("WEFT_SECRET_ROOT_PASSWORD"));
        assert_eq!(SecretName::parse("ROOT_PASSWORD").unwrap(), n);
        for other in [
            "root-password",
            "ROOT.PASSWORD",
            "var/root_password",
            "root/password",
        ] {
            let o = SecretName::parse(other).unwrap();
            assert_ne!(o, n, "{other}");
            assert_eq!(
                o.env_var(),
                None,
                "{other} cannot be spelled in the environment"
            );
        }
        for bad in [
            "",
            " root_password",
            "root_password ",
            "root_password\0",
            "root\tpassword",
            "root%5Fpassword",
            "root%2dpassword",
            "r\u{43e}ot_password",
            "root\u{2010}password",
            "root\u{ff3f}password",
            "\u{212a}ey",
            "root//password",
            "/root_password",
            "root_password/",
            "./root_password",
            "../root_password",
            "var/../root_password",
            ".root",
            "-root",
            "root\\password",
            "root:password",
            "root*",
        ] {
            let e = SecretName::parse(bad).unwrap_err();
            assert!(
                e.to_string().starts_with("Secrets.InvalidName: "),
                "{bad:?}: {e}"
            );
        }
        assert!(SecretName::parse(&"a".repeat(SecretName::MAX_LEN)).is_ok());
        assert!(SecretName::parse(&"a".repeat(SecretName::MAX_LEN + 1)).is_err());
        assert_eq!(
            SecretName::with_prefix("var", "Region").unwrap().as_str(),
            "var/region"
        );
        assert!(SecretName::with_prefix("var", "../conn/x").is_err());
        assert!(SecretName::with_prefix("var", "a/b").is_err());
        assert!(SecretName::with_prefix("var", "").is_err());
    }

    #[test]
    fn the_environment_mapping_is_one_to_one() {
        // Every name over a small alphabet: no two canonical names share an environment name.
        let alphabet = ['a', 'A', '_', '-', '.', '/', '1'];
        let mut seen = std::collections::HashMap::new();
        let mut names = vec![String::new()];
        for _ in 0..4 {
            let mut next = Vec::new();
            for n in &names {
                for c in alphabet {
                    next.push(format!("{n}{c}"));
                }
            }
            for n in &next {
                if let Ok(s) = SecretName::parse(n) {
                    if let Some(env) = s.env_var() {
                        if let Some(prev) = seen.insert(env.clone(), s.clone()) {
                            assert_eq!(prev, s, "{env} is read by two names");
                        }
                    }
                }
            }
            names = next;
        }
        assert!(!seen.is_empty());
    }

    #[test]
    fn patterns() {
        assert!(check_pattern("root*").is_ok());
        assert!(check_pattern("var/*").is_ok());
        assert!(check_pattern("ROOT-?").is_ok());
        assert!(check_pattern("").is_err());
        assert!(check_pattern("root password").is_err());
        assert!(check_pattern("root%2A").is_err());
    }
}
