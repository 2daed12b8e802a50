//! Resource kinds of a policy and of a request, and how one matches the other.
//!
//! A policy's `Resource` is one of: `file:PATH` (a directory and everything beneath it, or a
//! Deny glob over paths), `http://` / `https://` URL patterns ([`HttpPattern`]), `secret:NAME`,
//! `arn:...` / `weft:...` (state machines, DAGs, roles), or a pattern that starts with a
//! wildcard (`*`, `*secret*`), which applies to every kind, matched against the request's
//! canonical text (`file:/abs/path`, `http://host:port/path`). Anything else is a parse error
//! with its JSON pointer; so is a kind that none of the statement's actions can use.
//! Requests are canonicalised before they are matched: file paths are absolute and lexically
//! normal (no `.`, `..`, `//` or trailing `/`), URLs are [`CanonicalUrl`]s.

use crate::glob::{could_match_with_prefix, glob_match, has_wildcard, matches_every_extension};
use crate::http_url::{canonicalize, CanonicalUrl, HttpPattern};

/// What a resource names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Http,
    Secret,
    /// `arn:` and `weft:` names.
    Arn,
}

impl Kind {
    pub fn describe(self) -> &'static str {
        match self {
            Kind::File => "a file resource (file:...)",
            Kind::Http => "an http(s):// resource",
            Kind::Secret => "a secret resource (secret:...)",
            Kind::Arn => "an arn:/weft: resource",
        }
    }
}

/// The kinds an action works on; `None` for actions weft does not model (any kind).
pub fn kinds_of_action(action: &str) -> Option<&'static [Kind]> {
    const ALL: &[Kind] = &[Kind::File, Kind::Http, Kind::Secret, Kind::Arn];
    if action == "*" {
        return Some(ALL);
    }
    let (ns, _) = action.split_once(':')?;
    Some(match ns {
        "fs" => &[Kind::File],
        "http" => &[Kind::Http],
        "secrets" => &[Kind::Secret],
        "states" | "iam" | "dags" | "plugins" | "weft" | "s3" => &[Kind::Arn],
        n if has_wildcard(n) => ALL,
        _ => return None,
    })
}

/// A file pattern after `file:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilePattern {
    /// `file:*`: every path.
    Everything,
    /// A directory and everything beneath it (`D`, `D/`, `D/*`, `D/**`), lexically normal;
    /// relative until resolved against a base directory.
    Tree(String),
    /// (Deny only) a glob over normal paths.
    Glob(String),
}

/// One entry of a statement's `Resource`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourcePattern {
    /// Starts with a wildcard: matches the canonical text of a request of any kind.
    Any(String),
    File(FilePattern),
    Http(HttpPattern),
    /// `secret:`, `arn:`, `weft:`: a glob over the text.
    Text(Kind, String),
}

/// A request, canonicalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// A lexically normal path (absolute once the grant resolved it).
    File(String),
    Url(CanonicalUrl),
    Text(String),
}

impl Request {
    /// Interprets a resource string: `file:` paths are normalised, `http(s)://` URLs
    /// canonicalised; what cannot be is kept as text (only wildcard patterns can match it).
    pub fn from_text(s: &str) -> Self {
        if let Some(p) = s.strip_prefix("file:") {
            if let Ok(n) = normalize_path(p) {
                return Request::File(n);
            }
        } else if starts_with_http(s) {
            if let Ok(u) = canonicalize(s) {
                return Request::Url(u);
            }
        }
        Request::Text(s.to_string())
    }

    /// How audit records and wildcard patterns see the request.
    pub fn text(&self) -> String {
        match self {
            Request::File(p) => format!("file:{p}"),
            Request::Url(u) => u.to_string(),
            Request::Text(t) => t.clone(),
        }
    }
}

fn starts_with_http(s: &str) -> bool {
    let l = s.get(..8).unwrap_or(s).to_ascii_lowercase();
    l.starts_with("http://") || l.starts_with("https://")
}

/// Lexically normalises a path: drops empty and `.` segments, refuses `..` and backslashes;
/// keeps a leading `/`. The result has no trailing `/` (except the root itself).
pub fn normalize_path(p: &str) -> Result<String, String> {
    if p.contains('\\') {
        return Err(format!("`{p}`: backslashes are not allowed in paths"));
    }
    if p.contains('\0') {
        return Err(format!("`{p}`: NUL is not allowed in paths"));
    }
    let mut segs = Vec::new();
    for s in p.split('/') {
        match s {
            "" | "." => {}
            ".." => return Err(format!("`{p}`: `..` is not allowed")),
            s => segs.push(s),
        }
    }
    let body = segs.join("/");
    Ok(if p.starts_with('/') {
        format!("/{body}")
    } else {
        body
    })
}

/// `base` joined with a normal path (an absolute `p` stands alone).
pub fn join(base: &str, p: &str) -> String {
    if p.starts_with('/') {
        p.to_string()
    } else if p.is_empty() {
        base.to_string()
    } else if base.ends_with('/') {
        format!("{base}{p}")
    } else {
        format!("{base}/{p}")
    }
}

/// Whether `p` is `dir` or lies beneath it (both normal, both absolute or both relative).
pub fn within(p: &str, dir: &str) -> bool {
    dir == "/"
        || p == dir
        || (p.len() > dir.len() && p.starts_with(dir) && p.as_bytes()[dir.len()] == b'/')
}

fn parse_file(p: &str, allow: bool) -> Result<FilePattern, String> {
    if p == "*" || p == "**" || p == "/*" || p == "/**" {
        return Ok(FilePattern::Everything);
    }
    let dir = p
        .strip_suffix("/**")
        .or_else(|| p.strip_suffix("/*"))
        .unwrap_or(p);
    if !has_wildcard(dir) {
        let n = normalize_path(dir).map_err(|e| format!("`file:{p}`: {e}"))?;
        if n.is_empty() {
            return Err(format!(
                "`file:{p}` names no directory (a file grant names a directory such as file:data/in/*)"
            ));
        }
        return Ok(FilePattern::Tree(n));
    }
    if allow {
        return Err(format!(
            "`file:{p}`: wildcards are only allowed as a trailing `/*` or `/**` (a file grant names a directory)"
        ));
    }
    let n = normalize_path(p).map_err(|e| format!("`file:{p}`: {e}"))?;
    // a trailing `/` named a directory's contents; a normal path has none
    Ok(FilePattern::Glob(if p.ends_with('/') && n != "/" {
        format!("{n}/*")
    } else {
        n
    }))
}

impl ResourcePattern {
    /// Parses one `Resource` entry of a statement with the given effect and actions.
    pub fn parse(text: &str, allow: bool, actions: &[String]) -> Result<Self, String> {
        let kind = if text.starts_with(['*', '?']) {
            return Ok(ResourcePattern::Any(text.to_string()));
        } else if text.starts_with("file:") {
            Kind::File
        } else if text.starts_with("secret:") {
            Kind::Secret
        } else if text.starts_with("arn:") || text.starts_with("weft:") {
            Kind::Arn
        } else if text.contains("://") {
            Kind::Http
        } else {
            let hint = if text.starts_with('/') || !text.contains(':') {
                format!(" (a path is written `file:{text}`)")
            } else {
                String::new()
            };
            return Err(format!(
                "`{text}` is not a resource weft can interpret: use file:PATH, http(s)://HOST/PATH, secret:NAME, an arn:/weft: name, or a pattern starting with `*`{hint}"
            ));
        };
        let usable = actions.iter().any(|a| match kinds_of_action(a) {
            Some(ks) => ks.contains(&kind),
            None => true,
        });
        if !usable {
            return Err(format!(
                "`{text}` is {} and none of the statement's actions ({}) applies to it",
                kind.describe(),
                actions.join(", ")
            ));
        }
        Ok(match kind {
            Kind::File => ResourcePattern::File(parse_file(&text["file:".len()..], allow)?),
            Kind::Http => ResourcePattern::Http(HttpPattern::parse(text)?),
            // secret names are case-insensitive, canonically lower case (`secret_name`)
            Kind::Secret => ResourcePattern::Text(Kind::Secret, text.to_ascii_lowercase()),
            k => ResourcePattern::Text(k, text.to_string()),
        })
    }

    /// Resolves relative file patterns against `base` (absolute, normal).
    pub fn resolve(&self, base: &str) -> Self {
        match self {
            ResourcePattern::File(FilePattern::Tree(d)) => {
                ResourcePattern::File(FilePattern::Tree(join(base, d)))
            }
            // a glob that starts with a wildcard already reaches every path
            ResourcePattern::File(FilePattern::Glob(g)) if !g.starts_with(['/', '*', '?']) => {
                ResourcePattern::File(FilePattern::Glob(join(base, g)))
            }
            other => other.clone(),
        }
    }

    pub fn matches(&self, r: &Request) -> bool {
        match (self, r) {
            (ResourcePattern::Any(g), r) => {
                let text = r.text();
                if text.starts_with("secret:") {
                    glob_match(&g.to_ascii_lowercase(), &text)
                } else {
                    glob_match(g, &text)
                }
            }
            (ResourcePattern::File(f), Request::File(p)) => match f {
                FilePattern::Everything => true,
                FilePattern::Tree(d) => within(p, d),
                FilePattern::Glob(g) => glob_match(g, p),
            },
            (ResourcePattern::Http(h), Request::Url(u)) => h.matches(u),
            (ResourcePattern::Text(_, g), Request::Text(t)) => glob_match(g, t),
            _ => false,
        }
    }

    /// (Allow) whether the pattern matches the directory `dir` and every path beneath it.
    pub fn covers_tree(&self, dir: &str) -> bool {
        match self {
            ResourcePattern::Any(g) => matches_every_extension(g, &format!("file:{dir}")),
            ResourcePattern::File(FilePattern::Everything) => true,
            ResourcePattern::File(FilePattern::Tree(d)) => within(dir, d),
            _ => false,
        }
    }

    /// (Deny) whether the pattern could match `dir` or any path beneath it.
    pub fn touches_tree(&self, dir: &str) -> bool {
        let beneath = if dir.ends_with('/') {
            dir.to_string()
        } else {
            format!("{dir}/")
        };
        match self {
            ResourcePattern::Any(g) => {
                glob_match(g, &format!("file:{dir}"))
                    || could_match_with_prefix(g, &format!("file:{beneath}"))
            }
            ResourcePattern::File(FilePattern::Everything) => true,
            ResourcePattern::File(FilePattern::Tree(d)) => within(dir, d) || within(d, dir),
            ResourcePattern::File(FilePattern::Glob(g)) => {
                glob_match(g, dir) || could_match_with_prefix(g, &beneath)
            }
            _ => false,
        }
    }

    /// The directory an Allow file pattern names.
    pub fn tree(&self) -> Option<&str> {
        match self {
            ResourcePattern::File(FilePattern::Tree(d)) => Some(d),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acts(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn kinds_are_checked_against_actions() {
        let fs = acts(&["fs:Read"]);
        assert!(ResourcePattern::parse("http://x/*", true, &fs).is_err());
        assert!(ResourcePattern::parse("data/*", true, &fs).is_err());
        assert!(ResourcePattern::parse("/abs/path/*", false, &fs).is_err());
        assert!(ResourcePattern::parse("*secret*", false, &fs).is_ok());
        assert!(ResourcePattern::parse("file:data/*", true, &acts(&["http:Request"])).is_err());
        assert!(ResourcePattern::parse("file:data/*", true, &acts(&["*"])).is_ok());
        assert!(ResourcePattern::parse("arn:aws:states:*", true, &acts(&["states:*"])).is_ok());
        assert!(ResourcePattern::parse("file:data/*.pem", false, &fs).is_ok());
        assert!(ResourcePattern::parse("file:data/*.pem", true, &fs).is_err());
    }

    #[test]
    fn file_spellings_resolve_alike() {
        let fs = acts(&["fs:Read"]);
        let base = "/srv/base";
        let want = ResourcePattern::File(FilePattern::Tree("/srv/base/data/in".into()));
        for s in [
            "file:data/in/*",
            "file:./data/in/",
            "file:data//in",
            "file:data/./in/**",
            "file:/srv/base/data/in/*",
            "file://srv/base/data/in",
        ] {
            assert_eq!(
                ResourcePattern::parse(s, true, &fs).unwrap().resolve(base),
                want,
                "{s}"
            );
        }
        assert!(ResourcePattern::parse("file:data/../etc", true, &fs).is_err());
    }

    #[test]
    fn deny_touches_and_allow_covers() {
        let any = ResourcePattern::Any("*secret*".into());
        assert!(any.touches_tree("/base/data"));
        assert!(!any.covers_tree("/base/data"));
        let t = ResourcePattern::File(FilePattern::Tree("/base/data".into()));
        assert!(t.covers_tree("/base/data/in"));
        assert!(t.touches_tree("/base"));
        assert!(!t.touches_tree("/base/other"));
        assert!(!t.touches_tree("/base/dat"));
        assert!(t.matches(&Request::File("/base/data/x".into())));
        assert!(!t.matches(&Request::File("/base/database".into())));
    }
}
