//! Assets (Airflow 3; "datasets" in Airflow 2): the canonical form of an asset URI, the
//! condition a DAG's asset schedule states ([`Condition`]: all of, any of, nested) and the
//! assets a task's `outlets` name.
//!
//! Every URI is canonicalised once, where it enters (a DAG file, an API request), and only the
//! canonical text is authorised, stored and compared, so two spellings of one asset
//! (`S3://b//k/../k/` and `s3://b/k`) are one asset to the scheduler and to a policy.

use serde_json::{Map, Value};

/// Longest asset URI accepted, in bytes (Airflow's column width).
pub const MAX_URI_BYTES: usize = 1500;
/// Deepest `&` / `|` nesting accepted in a condition.
pub const MAX_CONDITION_DEPTH: usize = 32;
/// Largest `extra` of one asset event, in bytes of JSON.
pub const MAX_EXTRA_BYTES: usize = 64 * 1024;
/// Most assets one condition or one task's `outlets` may name.
pub const MAX_CONDITION_ASSETS: usize = 1000;

/// Class names (last path segment) of a single asset object.
const ASSET_CLASSES: &[&str] = &["Asset", "Dataset", "Model"];
/// Class names of an asset alias object.
const ALIAS_CLASSES: &[&str] = &["AssetAlias", "DatasetAlias"];
/// Longest asset alias name accepted, in bytes (Airflow's column width).
pub const MAX_ALIAS_BYTES: usize = 1500;
/// Class names of "all of" / "any of" objects.
const ALL_CLASSES: &[&str] = &["AssetAll", "DatasetAll"];
const ANY_CLASSES: &[&str] = &["AssetAny", "DatasetAny"];

/// Why an asset URI or condition is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssetError {
    /// The URI is not acceptable.
    #[error("asset URI `{uri}`: {why}")]
    BadUri {
        /// The URI as given (clipped).
        uri: String,
        /// Why.
        why: String,
    },
    /// The condition or outlet list has a shape weft does not know.
    #[error("{0}")]
    BadShape(String),
}

fn clip(s: &str) -> String {
    s.chars().take(120).collect()
}

fn bad(uri: &str, why: impl Into<String>) -> AssetError {
    AssetError::BadUri {
        uri: clip(uri),
        why: why.into(),
    }
}

/// The canonical form of an asset URI.
///
/// A plain name (no `scheme://`) is kept as written (trimmed). A URI gets a lowercase scheme
/// and host, its path's `.` and `..` segments resolved and empty segments dropped (no trailing
/// slash), percent-escapes of unreserved characters decoded and the others written in
/// uppercase, its query parameters sorted. Refused: empty text, non-ASCII or control
/// characters, whitespace, user info (`user:pass@`), fragments, `..` above the root, the
/// reserved `airflow` scheme (as Airflow refuses it) and URIs longer than [`MAX_URI_BYTES`].
pub fn canonical_uri(raw: &str) -> Result<String, AssetError> {
    let s = raw.trim();
    if s.is_empty() {
        return Err(bad(raw, "is empty"));
    }
    if s.len() > MAX_URI_BYTES {
        return Err(bad(raw, format!("is longer than {MAX_URI_BYTES} bytes")));
    }
    if !s.is_ascii() {
        return Err(bad(raw, "must consist of ASCII characters only"));
    }
    if s.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return Err(bad(
            raw,
            "must not contain whitespace or control characters",
        ));
    }
    let Some((scheme, rest)) = s.split_once("://") else {
        return Ok(s.to_string());
    };
    let valid_scheme = scheme
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !valid_scheme {
        return Err(bad(raw, format!("`{}` is not a URI scheme", clip(scheme))));
    }
    let scheme = scheme.to_ascii_lowercase();
    if scheme == "airflow" {
        return Err(bad(raw, "the scheme `airflow` is reserved"));
    }
    if rest.contains('#') {
        return Err(bad(raw, "must not have a fragment (`#...`)"));
    }
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if host.contains('@') {
        return Err(bad(raw, "must not carry user info (`user:password@`)"));
    }
    let host = normalize_escapes(host, raw)?.to_ascii_lowercase();
    let mut segments: Vec<String> = Vec::new();
    for seg in path.split('/') {
        let seg = normalize_escapes(seg, raw)?;
        match seg.as_str() {
            "" | "." => {}
            ".." => {
                if segments.pop().is_none() {
                    return Err(bad(raw, "`..` climbs above the root"));
                }
            }
            _ => segments.push(seg),
        }
    }
    let mut out = format!("{scheme}://{host}");
    for seg in &segments {
        out.push('/');
        out.push_str(seg);
    }
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        let mut pairs: Vec<String> = q
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| normalize_escapes(p, raw))
            .collect::<Result<_, _>>()?;
        pairs.sort();
        if !pairs.is_empty() {
            out.push('?');
            out.push_str(&pairs.join("&"));
        }
    }
    if out.len() > MAX_URI_BYTES {
        return Err(bad(raw, format!("is longer than {MAX_URI_BYTES} bytes")));
    }
    Ok(out)
}

/// Decodes `%XX` escapes of unreserved characters (`A-Z a-z 0-9 - . _ ~`) and uppercases the
/// others; a `%` not followed by two hex digits is refused. A decoded `/` stays escaped, so an
/// escape can never introduce a path separator (nor `.`/`..` segments: `%2E` decodes to `.`
/// only inside a segment, which is then resolved like a literal one).
fn normalize_escapes(s: &str, raw: &str) -> Result<String, AssetError> {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit()));
            let Some(hex) = hex else {
                return Err(bad(raw, "has a `%` not followed by two hex digits"));
            };
            let v = u8::from_str_radix(hex, 16).map_err(|_| bad(raw, "bad percent-escape"))?;
            let c = v as char;
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~') {
                out.push(c);
            } else {
                out.push('%');
                out.push_str(&hex.to_ascii_uppercase());
            }
            i += 3;
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    Ok(out)
}

/// An asset condition: the canonical URIs it names, combined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// One asset.
    Asset(String),
    /// An asset alias (by name): true when an event was emitted through the alias.
    Alias(String),
    /// Every part must be true.
    All(Vec<Condition>),
    /// Any part must be true.
    Any(Vec<Condition>),
}

impl Condition {
    /// The condition a schedule's `Schedule::Assets { condition }` holds: a list (all of), a
    /// URI string or an `&`/`|` expression text (dag-factory's `datasets: "(a & b) | c"`), an
    /// asset object (`{__type__: ...Asset, uri: ...}` or `{uri: ...}`), `__and__`/`__or__`
    /// trees and `AssetAll`/`AssetAny` objects. Anything else is refused with what was found.
    pub fn parse(v: &Value) -> Result<Condition, AssetError> {
        let c = parse_at(v, 0)?;
        let n = c.uris().len() + c.aliases().len();
        if n > MAX_CONDITION_ASSETS {
            return Err(AssetError::BadShape(format!(
                "the condition names {n} assets, more than {MAX_CONDITION_ASSETS}"
            )));
        }
        Ok(c)
    }

    /// Whether the condition holds when exactly the assets in `updated` have queued events.
    /// Alias leaves are false.
    pub fn eval(&self, updated: &dyn Fn(&str) -> bool) -> bool {
        self.eval_with(updated, &|_| false)
    }

    /// Whether the condition holds when exactly the assets in `updated` have queued events
    /// and the aliases in `through_alias` have queued events emitted through them.
    pub fn eval_with(
        &self,
        updated: &dyn Fn(&str) -> bool,
        through_alias: &dyn Fn(&str) -> bool,
    ) -> bool {
        match self {
            Condition::Asset(u) => updated(u),
            Condition::Alias(a) => through_alias(a),
            Condition::All(v) => v.iter().all(|c| c.eval_with(updated, through_alias)),
            Condition::Any(v) => v.iter().any(|c| c.eval_with(updated, through_alias)),
        }
    }

    /// Every alias name the condition names, once each, in order of first mention.
    pub fn aliases(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.collect_aliases(&mut out);
        out
    }

    fn collect_aliases(&self, out: &mut Vec<String>) {
        match self {
            Condition::Alias(a) => {
                if !out.contains(a) {
                    out.push(a.clone());
                }
            }
            Condition::Asset(_) => {}
            Condition::All(v) | Condition::Any(v) => v.iter().for_each(|c| c.collect_aliases(out)),
        }
    }

    /// Every URI the condition names, once each, in order of first mention (aliases are not
    /// URIs: see [`Condition::aliases`]).
    pub fn uris(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.collect(&mut out);
        out
    }

    fn collect(&self, out: &mut Vec<String>) {
        match self {
            Condition::Asset(u) => {
                if !out.contains(u) {
                    out.push(u.clone());
                }
            }
            Condition::Alias(_) => {}
            Condition::All(v) | Condition::Any(v) => v.iter().for_each(|c| c.collect(out)),
        }
    }
}

fn depth_check(depth: usize) -> Result<(), AssetError> {
    if depth > MAX_CONDITION_DEPTH {
        return Err(AssetError::BadShape(format!(
            "the asset condition nests deeper than {MAX_CONDITION_DEPTH} levels"
        )));
    }
    Ok(())
}

fn class_name(type_path: &str) -> &str {
    type_path.rsplit('.').next().unwrap_or(type_path)
}

fn parse_list(items: &[Value], depth: usize) -> Result<Vec<Condition>, AssetError> {
    items
        .iter()
        .filter(|v| !v.is_null())
        .map(|v| parse_at(v, depth + 1))
        .collect()
}

fn parse_at(v: &Value, depth: usize) -> Result<Condition, AssetError> {
    depth_check(depth)?;
    match v {
        Value::String(s) => parse_expression(s, depth),
        Value::Array(items) => {
            let parts = parse_list(items, depth)?;
            if parts.is_empty() {
                return Err(AssetError::BadShape("an empty list of assets".into()));
            }
            Ok(Condition::All(parts))
        }
        Value::Object(m) => parse_object(m, depth),
        other => Err(AssetError::BadShape(format!(
            "an asset condition must be a URI, a list, an asset object or an `__and__`/`__or__` mapping, got {other}"
        ))),
    }
}

fn parse_object(m: &Map<String, Value>, depth: usize) -> Result<Condition, AssetError> {
    for (key, all) in [
        ("__and__", true),
        ("__or__", false),
        ("and", true),
        ("or", false),
    ] {
        if let Some(v) = m.get(key) {
            let Value::Array(items) = v else {
                return Err(AssetError::BadShape(format!(
                    "`{key}` must be a list, got {v}"
                )));
            };
            let parts = parse_list(items, depth)?;
            if parts.is_empty() {
                return Err(AssetError::BadShape(format!("`{key}` is an empty list")));
            }
            return Ok(if all {
                Condition::All(parts)
            } else {
                Condition::Any(parts)
            });
        }
    }
    // dag-factory's `{file: names.yml, datasets: ...}`: the names are matched as written (the
    // loader warns that the file is not read)
    if let Some(d) = m.get("datasets") {
        return parse_at(d, depth + 1);
    }
    let args = match m.get("__args__") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.clone(),
        Some(other) => {
            return Err(AssetError::BadShape(format!(
                "`__args__` must be a list, got {other}"
            )))
        }
    };
    let class = m.get("__type__").and_then(Value::as_str).map(class_name);
    match class {
        Some(c) if ALL_CLASSES.contains(&c) || ANY_CLASSES.contains(&c) => {
            let items = match m.get("objects") {
                Some(Value::Array(a)) => a.clone(),
                _ => args,
            };
            let parts = parse_list(&items, depth)?;
            if parts.is_empty() {
                return Err(AssetError::BadShape(format!("`{c}` names no assets")));
            }
            Ok(if ALL_CLASSES.contains(&c) {
                Condition::All(parts)
            } else {
                Condition::Any(parts)
            })
        }
        Some(c) if ALIAS_CLASSES.contains(&c) => {
            let name = m
                .get("name")
                .or_else(|| args.first())
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    AssetError::BadShape(format!(
                        "an asset alias object needs `name`, got {}",
                        Value::Object(m.clone())
                    ))
                })?;
            Ok(Condition::Alias(alias_name(name)?))
        }
        Some(c) if !ASSET_CLASSES.contains(&c) => Err(AssetError::BadShape(format!(
            "`{c}` is not an asset class weft runs (Asset, Dataset, AssetAlias, DatasetAlias, AssetAll, AssetAny, `__and__`, `__or__`)"
        ))),
        _ => {
            let uri = m
                .get("uri")
                .or_else(|| m.get("name"))
                .or_else(|| args.first())
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    AssetError::BadShape(format!(
                        "an asset object needs `uri` (or `name`), got {}",
                        Value::Object(m.clone())
                    ))
                })?;
            Ok(Condition::Asset(canonical_uri(uri)?))
        }
    }
}

/// An asset alias name as accepted: trimmed, not empty, at most [`MAX_ALIAS_BYTES`] bytes,
/// without control characters.
pub fn alias_name(raw: &str) -> Result<String, AssetError> {
    let s = raw.trim();
    if s.is_empty() {
        return Err(AssetError::BadShape("an asset alias name is empty".into()));
    }
    if s.len() > MAX_ALIAS_BYTES {
        return Err(AssetError::BadShape(format!(
            "asset alias `{}` is longer than {MAX_ALIAS_BYTES} bytes",
            clip(s)
        )));
    }
    if s.chars().any(char::is_control) {
        return Err(AssetError::BadShape(format!(
            "asset alias `{}` contains control characters",
            clip(s).escape_debug()
        )));
    }
    Ok(s.to_string())
}

/// A condition written as text: one URI, or URIs joined by `&` and `|` with parentheses
/// (`&` binds tighter, as in Python).
fn parse_expression(s: &str, depth: usize) -> Result<Condition, AssetError> {
    if !s.contains(['&', '|', '(', ')']) {
        return Ok(Condition::Asset(canonical_uri(s)?));
    }
    let mut tokens = Vec::new();
    let mut cur = String::new();
    for c in s.chars() {
        if matches!(c, '&' | '|' | '(' | ')') {
            if !cur.trim().is_empty() {
                tokens.push(cur.trim().to_string());
            }
            cur.clear();
            tokens.push(c.to_string());
        } else {
            cur.push(c);
        }
    }
    if !cur.trim().is_empty() {
        tokens.push(cur.trim().to_string());
    }
    let mut p = ExprParser {
        tokens,
        pos: 0,
        text: s,
    };
    let c = p.or(depth)?;
    if p.pos != p.tokens.len() {
        return Err(p.error("unexpected text"));
    }
    Ok(c)
}

struct ExprParser<'a> {
    tokens: Vec<String>,
    pos: usize,
    text: &'a str,
}

impl ExprParser<'_> {
    fn error(&self, what: &str) -> AssetError {
        AssetError::BadShape(format!(
            "asset expression `{}`: {what} at token {}",
            clip(self.text),
            self.pos + 1
        ))
    }

    fn peek(&self) -> Option<&str> {
        self.tokens.get(self.pos).map(String::as_str)
    }

    fn or(&mut self, depth: usize) -> Result<Condition, AssetError> {
        depth_check(depth)?;
        let mut parts = vec![self.and(depth)?];
        while self.peek() == Some("|") {
            self.pos += 1;
            parts.push(self.and(depth)?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Condition::Any(parts)
        })
    }

    fn and(&mut self, depth: usize) -> Result<Condition, AssetError> {
        let mut parts = vec![self.atom(depth)?];
        while self.peek() == Some("&") {
            self.pos += 1;
            parts.push(self.atom(depth)?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Condition::All(parts)
        })
    }

    fn atom(&mut self, depth: usize) -> Result<Condition, AssetError> {
        match self.peek() {
            Some("(") => {
                self.pos += 1;
                let c = self.or(depth + 1)?;
                if self.peek() != Some(")") {
                    return Err(self.error("missing `)`"));
                }
                self.pos += 1;
                Ok(c)
            }
            Some("&" | "|" | ")") | None => Err(self.error("expected an asset URI")),
            Some(uri) => {
                let c = Condition::Asset(canonical_uri(uri)?);
                self.pos += 1;
                Ok(c)
            }
        }
    }
}

/// The canonical URIs a task's `outlets` name (a URI, an asset object, a list of them, or
/// dag-factory's `{datasets: [...]}`). `AssetAlias` / `DatasetAlias` outlets name no asset
/// (see [`outlet_aliases`]): they emit nothing by themselves.
pub fn outlet_uris(v: &Value) -> Result<Vec<String>, AssetError> {
    let items: Vec<&Value> = match v {
        Value::Null => return Ok(Vec::new()),
        Value::Array(a) => a.iter().collect(),
        Value::Object(m) if m.contains_key("datasets") && !m.contains_key("__type__") => {
            return outlet_uris(&m["datasets"]);
        }
        other => vec![other],
    };
    let mut out = Vec::new();
    for item in items {
        let is_alias = item
            .get("__type__")
            .and_then(Value::as_str)
            .is_some_and(|t| matches!(class_name(t), "AssetAlias" | "DatasetAlias"));
        let uri = match item {
            Value::Null => continue,
            _ if is_alias => continue,
            Value::String(s) => canonical_uri(s)?,
            Value::Object(m) => match parse_object(m, 0)? {
                Condition::Asset(u) => u,
                _ => {
                    return Err(AssetError::BadShape(format!(
                        "an outlet must be one asset, got {item}"
                    )))
                }
            },
            other => {
                return Err(AssetError::BadShape(format!(
                    "an outlet must be an asset URI or an asset object, got {other}"
                )))
            }
        };
        if !out.contains(&uri) {
            out.push(uri);
        }
    }
    if out.len() > MAX_CONDITION_ASSETS {
        return Err(AssetError::BadShape(format!(
            "`outlets` names more than {MAX_CONDITION_ASSETS} assets"
        )));
    }
    Ok(out)
}

/// The alias names a task's `outlets` name (`AssetAlias` / `DatasetAlias` objects), once each.
pub fn outlet_aliases(v: &Value) -> Result<Vec<String>, AssetError> {
    let items: Vec<&Value> = match v {
        Value::Null => return Ok(Vec::new()),
        Value::Array(a) => a.iter().collect(),
        Value::Object(m) if m.contains_key("datasets") && !m.contains_key("__type__") => {
            return outlet_aliases(&m["datasets"]);
        }
        other => vec![other],
    };
    let mut out = Vec::new();
    for item in items {
        let Value::Object(m) = item else { continue };
        let is_alias = m
            .get("__type__")
            .and_then(Value::as_str)
            .is_some_and(|t| ALIAS_CLASSES.contains(&class_name(t)));
        if !is_alias {
            continue;
        }
        if let Condition::Alias(a) = parse_object(m, 0)? {
            if !out.contains(&a) {
                out.push(a);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn uris_are_canonical() {
        for (raw, want) in [
            ("s3://b/k", "s3://b/k"),
            ("S3://B//k/../k/", "s3://b/k"),
            ("s3://b/./x/%6b", "s3://b/x/k"),
            ("s3://b/x%2fy", "s3://b/x%2Fy"),
            ("s3://b/k?z=1&a=2", "s3://b/k?a=2&z=1"),
            ("  my_dataset ", "my_dataset"),
            ("file:///tmp/a/../b", "file:///tmp/b"),
        ] {
            assert_eq!(canonical_uri(raw).unwrap(), want, "{raw}");
        }
        for raw in [
            "",
            "s3://b/../../etc",
            "s3://u:p@b/k",
            "s3://b/k#frag",
            "airflow://x",
            "s3://b/é",
            "s3://b/a b",
            "s3://b/%zz",
            "1s://b",
        ] {
            assert!(canonical_uri(raw).is_err(), "{raw}");
        }
        assert!(canonical_uri(&format!("s3://b/{}", "k".repeat(2000))).is_err());
    }

    #[test]
    fn conditions() {
        let c = Condition::parse(&json!(["s3://a", "s3://b"])).unwrap();
        assert!(!c.eval(&|u| u == "s3://a"));
        assert!(c.eval(&|u| u == "s3://a" || u == "s3://b"));
        let c = Condition::parse(&json!({"__or__": [{"__and__": ["s3://a", "s3://b"]}, "s3://c"]}))
            .unwrap();
        assert!(c.eval(&|u| u == "s3://c"));
        assert!(!c.eval(&|u| u == "s3://a"));
        let c = Condition::parse(&json!({"datasets": "((s3://a & s3://b) | S3://c/)"})).unwrap();
        assert_eq!(c.uris(), vec!["s3://a", "s3://b", "s3://c"]);
        assert!(c.eval(&|u| u == "s3://c"));
        let c = Condition::parse(&json!({"__type__": "airflow.sdk.Asset", "uri": "s3://x//y"}))
            .unwrap();
        assert_eq!(c, Condition::Asset("s3://x/y".into()));
        let c = Condition::parse(
            &json!({"__type__": "airflow.sdk.AssetAny", "__args__": ["s3://a", {"uri": "s3://b"}]}),
        )
        .unwrap();
        assert!(c.eval(&|u| u == "s3://b"));
        let c = Condition::parse(
            &json!({"file": "n.yml", "datasets": {"or": [{"and": ["d1", "d2"]}, "d3"]}}),
        )
        .unwrap();
        assert!(c.eval(&|u| u == "d3"));
        for bad in [
            json!(3),
            json!({"__type__": "airflow.sdk.AssetAliasX", "name": "x"}),
            json!({"datasets": "a & (b"}),
            json!({"datasets": "a & | b"}),
            json!({"__and__": "a"}),
            json!({"or": []}),
            json!([]),
        ] {
            assert!(Condition::parse(&bad).is_err(), "{bad}");
        }
        let mut deep = json!("s3://a");
        for _ in 0..40 {
            deep = json!({"__and__": [deep]});
        }
        assert!(Condition::parse(&deep)
            .unwrap_err()
            .to_string()
            .contains("deeper"));
    }

    #[test]
    fn outlets() {
        assert_eq!(
            outlet_uris(&json!(["s3://a/", {"__type__": "airflow.datasets.Dataset", "uri": "s3://b"}, "s3://a"]))
                .unwrap(),
            vec!["s3://a", "s3://b"]
        );
        assert_eq!(
            outlet_uris(&json!({"datasets": ["s3://c"]})).unwrap(),
            vec!["s3://c"]
        );
        assert!(outlet_uris(&json!([{"__and__": ["a", "b"]}])).is_err());
        assert!(outlet_uris(&json!([1])).is_err());
        assert!(
            outlet_uris(&json!([{"__type__": "airflow.datasets.DatasetAlias", "name": "x"}]))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn alias_leaves_parse_and_evaluate() {
        let c = Condition::parse(&json!({"__and__": [
            {"__type__": "airflow.sdk.AssetAlias", "name": " example-alias "},
            {"__type__": "airflow.sdk.Asset", "uri": "s3://b/k"},
        ]}))
        .unwrap();
        assert_eq!(c.uris(), vec!["s3://b/k"]);
        assert_eq!(c.aliases(), vec!["example-alias"]);
        assert!(!c.eval(&|u| u == "s3://b/k"));
        assert!(c.eval_with(&|u| u == "s3://b/k", &|a| a == "example-alias"));
        assert!(!c.eval_with(&|_| false, &|a| a == "example-alias"));
        let legacy = Condition::parse(&json!(
            [{"__type__": "airflow.datasets.DatasetAlias", "__args__": ["old"]}]
        ))
        .unwrap();
        assert_eq!(legacy.aliases(), vec!["old"]);
        for bad in [
            json!({"__type__": "AssetAlias"}),
            json!({"__type__": "AssetAlias", "name": "  "}),
            json!({"__type__": "AssetAlias", "name": "a\nb"}),
        ] {
            assert!(Condition::parse(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn outlet_aliases_are_listed_apart_from_uris() {
        let v = json!([
            "s3://b/k",
            {"__type__": "airflow.sdk.AssetAlias", "name": "x"},
            {"__type__": "airflow.datasets.DatasetAlias", "name": "x"},
        ]);
        assert_eq!(outlet_uris(&v).unwrap(), vec!["s3://b/k"]);
        assert_eq!(outlet_aliases(&v).unwrap(), vec!["x"]);
    }
}
