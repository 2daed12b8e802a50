//! A small YAML document model that remembers the source line of every node.
//!
//! DAG files are YAML; errors must name `file:line`, which serde-based YAML crates lose. This
//! module drives `yaml-rust2`'s event parser and builds a tree of [`Node`]s (scalars resolved
//! with YAML 1.2 core-schema rules, anchors/aliases expanded), and converts nodes to JSON.

use std::collections::{HashMap, HashSet};

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use crate::yaml_tags::{classify, shown, TagUse};

/// A YAML value with the 1-based line it starts on.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The value.
    pub value: Val,
    /// 1-based source line.
    pub line: usize,
}

/// The kinds of YAML values weft understands.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    /// `null`, `~` or empty.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string (quoted, block or plain that is not another type).
    Str(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in file order; keys are strings with their own line.
    Map(Vec<(Key, Node)>),
}

/// A mapping key with its line.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    /// The key text (scalars only; other keys are rejected).
    pub name: String,
    /// 1-based line of the key.
    pub line: usize,
}

impl Node {
    /// Look up a mapping entry by key.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Val::Map(entries) => entries.iter().find(|(k, _)| k.name == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The entries of a mapping (empty for anything else).
    pub fn entries(&self) -> &[(Key, Node)] {
        match &self.value {
            Val::Map(entries) => entries,
            _ => &[],
        }
    }

    /// The string value, if this is a string scalar.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Val::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Whether this node is `null`.
    pub fn is_null(&self) -> bool {
        matches!(self.value, Val::Null)
    }

    /// A short name of the node's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self.value {
            Val::Null => "null",
            Val::Bool(_) => "a boolean",
            Val::Int(_) => "an integer",
            Val::Float(_) => "a number",
            Val::Str(_) => "a string",
            Val::Seq(_) => "a list",
            Val::Map(_) => "a mapping",
        }
    }

    /// Scalar rendered as text (for keys and lenient string fields).
    pub fn scalar_text(&self) -> Option<String> {
        match &self.value {
            Val::Null => Some("null".into()),
            Val::Bool(b) => Some(b.to_string()),
            Val::Int(i) => Some(i.to_string()),
            Val::Float(f) => Some(f.to_string()),
            Val::Str(s) => Some(s.clone()),
            _ => None,
        }
    }

    /// Convert to JSON (floats that are not finite become null).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Val::Null => J::Null,
            Val::Bool(b) => J::Bool(*b),
            Val::Int(i) => J::from(*i),
            Val::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Val::Str(s) => J::String(s.clone()),
            Val::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Val::Map(entries) => J::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.name.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

/// A YAML syntax error, or a refused tag, with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl YamlError {
    /// The error as a DAG file error reason: `YAML syntax error: ...`, or the refusal of a tag
    /// as it is (the text is valid YAML; weft will not read it).
    pub fn reason(&self) -> String {
        if self.message.starts_with("tag `") || self.message.contains("` value: ") {
            self.message.clone()
        } else {
            format!("YAML syntax error: {}", self.message)
        }
    }
}

/// Deepest nesting accepted (keeps recursion over nodes bounded).
const MAX_DEPTH: usize = 128;

enum Frame {
    Seq(Vec<Node>, usize, usize),
    Map(Vec<(Key, Node)>, Option<Key>, usize, usize, HashSet<String>),
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    docs: Vec<Node>,
    /// Anchored nodes with their [`node_weight`].
    anchors: HashMap<usize, (Node, usize)>,
    error: Option<YamlError>,
    nodes: usize,
}

/// Most values a document may expand to (guards against alias bombs).
const MAX_NODES: usize = 1_000_000;

/// Values inside an aliased node, counted again when the alias is expanded.
fn node_weight(node: &Node) -> usize {
    match &node.value {
        Val::Seq(items) => items.iter().map(|n| 1 + node_weight(n)).sum(),
        Val::Map(entries) => entries.iter().map(|(_, n)| 1 + node_weight(n)).sum(),
        _ => 0,
    }
}

/// Resolve a plain scalar as PyYAML's loader does (YAML 1.1 implicit types: `yes`/`no`/`on`/`off`
/// are booleans, `0o17` and `1e5` are strings, `017` is octal, `1:30` is 90), so a value means
/// what it means to dag-factory. Timestamps stay strings: the DAG loader parses dates itself.
fn resolve_plain(s: &str) -> Val {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Val::Null,
        "true" | "True" | "TRUE" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => {
            return Val::Bool(true)
        }
        "false" | "False" | "FALSE" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => {
            return Val::Bool(false)
        }
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => return Val::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Val::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Val::Float(f64::NAN),
        _ => {}
    }
    resolve_int(s)
        .map(Val::Int)
        .or_else(|| resolve_float(s).map(Val::Float))
        .unwrap_or_else(|| Val::Str(s.to_string()))
}

/// PyYAML's int: `[-+]?(0b[01_]+|0[0-7_]+|(0|[1-9][0-9_]*)|0x[0-9a-fA-F_]+|[1-9][0-9_]*(:[0-5]?[0-9])+)`.
fn resolve_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let digits = |t: &str, radix: u32| -> Option<i64> {
        let t: String = t.chars().filter(|&c| c != '_').collect();
        if t.is_empty() {
            return None;
        }
        i64::from_str_radix(&t, radix).ok()
    };
    let v = if let Some(b) = body.strip_prefix("0b") {
        b.chars()
            .all(|c| matches!(c, '0' | '1' | '_'))
            .then_some(())?;
        digits(b, 2)?
    } else if let Some(h) = body.strip_prefix("0x") {
        h.chars()
            .all(|c| c.is_ascii_hexdigit() || c == '_')
            .then_some(())?;
        digits(h, 16)?
    } else if body == "0" {
        0
    } else if body.len() > 1 && body.starts_with('0') {
        body[1..]
            .chars()
            .all(|c| matches!(c, '0'..='7' | '_'))
            .then_some(())?;
        digits(&body[1..], 8)?
    } else if body.contains(':') {
        let mut parts = body.split(':');
        let first = parts.next()?;
        if !first.starts_with(|c: char| ('1'..='9').contains(&c))
            || !first.chars().all(|c| c.is_ascii_digit() || c == '_')
        {
            return None;
        }
        let mut total = digits(first, 10)?;
        for p in parts {
            if p.is_empty() || p.len() > 2 || !p.chars().all(|c| c.is_ascii_digit()) {
                return None;
            }
            let n: i64 = p.parse().ok()?;
            if n > 59 {
                return None;
            }
            total = total.checked_mul(60)?.checked_add(n)?;
        }
        total
    } else {
        if !body.starts_with(|c: char| ('1'..='9').contains(&c))
            || !body.chars().all(|c| c.is_ascii_digit() || c == '_')
        {
            return None;
        }
        digits(body, 10)?
    };
    Some(if neg { -v } else { v })
}

/// PyYAML's float: `[-+]?([0-9][0-9_]*)?\.[0-9_]*([eE][-+][0-9]+)?` (a dot is required and
/// an exponent needs its sign).
fn resolve_float(s: &str) -> Option<f64> {
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (mantissa, exp) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (int, frac) = mantissa.split_once('.')?;
    let ok_int = int.is_empty()
        || (int.starts_with(|c: char| c.is_ascii_digit())
            && int.chars().all(|c| c.is_ascii_digit() || c == '_'));
    let ok_frac = frac.chars().all(|c| c.is_ascii_digit() || c == '_');
    let ok_exp = exp.is_none_or(|e| {
        e.len() > 1 && e.starts_with(['-', '+']) && e[1..].chars().all(|c| c.is_ascii_digit())
    });
    if !(ok_int && ok_frac && ok_exp) || (int.is_empty() && frac.is_empty()) {
        return None;
    }
    let clean: String = s.chars().filter(|&c| c != '_').collect();
    clean.parse::<f64>().ok()
}

/// The value of a scalar under a data tag (`!!int "3"` is 3).
fn tagged_scalar(text: String, use_: &TagUse) -> Result<Val, String> {
    let plain = resolve_plain(&text);
    match use_ {
        TagUse::Str => Ok(Val::Str(text)),
        TagUse::PythonName(name) => Ok(Val::Str(name.clone())),
        TagUse::Int => resolve_int(&text)
            .map(Val::Int)
            .ok_or_else(|| format!("`{text}` is not an integer")),
        TagUse::Float => match plain {
            Val::Float(f) => Ok(Val::Float(f)),
            Val::Int(i) => Ok(Val::Float(i as f64)),
            _ => Err(format!("`{text}` is not a number")),
        },
        TagUse::Bool => match plain {
            Val::Bool(b) => Ok(Val::Bool(b)),
            _ => Err(format!("`{text}` is not a boolean")),
        },
        TagUse::Null => Ok(Val::Null),
        TagUse::Plain | TagUse::Seq | TagUse::Map => Ok(plain),
        TagUse::Refused(why) => Err(why.clone()),
    }
}

impl Builder {
    /// Record the first error (later ones are consequences).
    fn fail(&mut self, line: usize, message: String) {
        if self.error.is_none() {
            self.error = Some(YamlError { line, message });
        }
    }

    /// A collection's tag must be a data tag of its kind.
    fn check_collection_tag(&mut self, tag: Option<&Tag>, kind: TagUse, line: usize) {
        let Some(tag) = tag else { return };
        match classify(tag, false) {
            TagUse::Refused(why) => self.fail(line, why),
            u if u != kind => self.fail(
                line,
                format!(
                    "tag `{}` does not fit a {}",
                    shown(tag),
                    if kind == TagUse::Seq {
                        "list"
                    } else {
                        "mapping"
                    }
                ),
            ),
            _ => {}
        }
    }

    fn push(&mut self, node: Node, anchor: usize) {
        if self.error.is_some() {
            return;
        }
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            self.error = Some(YamlError {
                line: node.line,
                message: format!(
                    "document too large (more than {MAX_NODES} values after alias expansion)"
                ),
            });
            return;
        }
        if anchor > 0 {
            let weight = node_weight(&node);
            self.anchors.insert(anchor, (node.clone(), weight));
        }
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some(Frame::Seq(items, _, _)) => items.push(node),
            Some(Frame::Map(entries, pending, _, _, seen)) => match pending.take() {
                Some(key) => {
                    if !seen.insert(key.name.clone()) && self.error.is_none() {
                        self.error = Some(YamlError {
                            line: key.line,
                            message: format!("duplicate key `{}`", key.name),
                        });
                    }
                    entries.push((key, node));
                }
                None => match node.scalar_text() {
                    Some(name) => {
                        *pending = Some(Key {
                            name,
                            line: node.line,
                        })
                    }
                    None => {
                        if self.error.is_none() {
                            self.error = Some(YamlError {
                                line: node.line,
                                message: "mapping keys must be scalars".into(),
                            });
                        }
                        *pending = Some(Key {
                            name: String::new(),
                            line: node.line,
                        });
                    }
                },
            },
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let line = mark.line().max(1);
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                let untagged = |text: String| {
                    if style == TScalarStyle::Plain {
                        resolve_plain(&text)
                    } else {
                        Val::Str(text)
                    }
                };
                let value = match tag.as_ref().map(|t| (t, classify(t, true))) {
                    None | Some((_, TagUse::Plain)) => untagged(text),
                    Some((_, TagUse::Refused(why))) => {
                        self.fail(line, why);
                        Val::Null
                    }
                    Some((t, use_)) => match tagged_scalar(text, &use_) {
                        Ok(v) => v,
                        Err(reason) => {
                            self.fail(line, format!("`{}` value: {reason}", shown(t)));
                            Val::Null
                        }
                    },
                };
                self.push(Node { value, line }, anchor);
            }
            Event::SequenceStart(..) | Event::MappingStart(..) if self.stack.len() >= MAX_DEPTH => {
                if self.error.is_none() {
                    self.error = Some(YamlError {
                        line,
                        message: format!("nesting deeper than {MAX_DEPTH} levels"),
                    });
                }
                // Keep the frame so the matching end event pops it.
                self.stack.push(Frame::Seq(Vec::new(), line, 0));
            }
            Event::SequenceStart(anchor, tag) => {
                self.check_collection_tag(tag.as_ref(), TagUse::Seq, line);
                self.stack.push(Frame::Seq(Vec::new(), line, anchor))
            }
            Event::MappingStart(anchor, tag) => {
                self.check_collection_tag(tag.as_ref(), TagUse::Map, line);
                self.stack
                    .push(Frame::Map(Vec::new(), None, line, anchor, HashSet::new()))
            }
            Event::SequenceEnd | Event::MappingEnd => match self.stack.pop() {
                Some(Frame::Seq(items, line, anchor)) => self.push(
                    Node {
                        value: Val::Seq(items),
                        line,
                    },
                    anchor,
                ),
                Some(Frame::Map(entries, _, line, anchor, _)) => self.push(
                    Node {
                        value: Val::Map(apply_merge_keys(entries)),
                        line,
                    },
                    anchor,
                ),
                None => {}
            },
            Event::Alias(id) => {
                if self.error.is_some() {
                    return;
                }
                // Count the expansion before copying it: an alias bomb stops here, not after
                // a million-node clone per alias.
                let weight = self.anchors.get(&id).map_or(0, |(_, w)| *w);
                if self.nodes.saturating_add(weight) > MAX_NODES {
                    self.fail(
                        line,
                        format!(
                            "document too large (more than {MAX_NODES} values after alias expansion)"
                        ),
                    );
                    return;
                }
                self.nodes += weight;
                let node = self.anchors.get(&id).map_or(
                    Node {
                        value: Val::Null,
                        line,
                    },
                    |(n, _)| n.clone(),
                );
                self.push(node, 0);
            }
            _ => {}
        }
    }
}

/// YAML 1.1 merge keys, as PyYAML applies them: `<<: *base` (or a list of mappings) supplies
/// the entries the mapping does not set itself.
fn apply_merge_keys(entries: Vec<(Key, Node)>) -> Vec<(Key, Node)> {
    if !entries.iter().any(|(k, _)| k.name == "<<") {
        return entries;
    }
    let mut own = Vec::new();
    let mut merged: Vec<(Key, Node)> = Vec::new();
    for (k, v) in entries {
        if k.name != "<<" {
            own.push((k, v));
            continue;
        }
        let sources: Vec<Node> = match v.value {
            Val::Seq(items) => items,
            other => vec![Node {
                value: other,
                line: v.line,
            }],
        };
        for src in sources {
            if let Val::Map(src_entries) = src.value {
                for (sk, sv) in src_entries {
                    if !merged.iter().any(|(mk, _)| mk.name == sk.name) {
                        merged.push((sk, sv));
                    }
                }
            }
        }
    }
    for (mk, mv) in merged {
        if !own.iter().any(|(k, _)| k.name == mk.name) {
            own.push((mk, mv));
        }
    }
    own
}

/// Parse the first YAML document of `text` (an empty file is `null`).
///
/// Text is read as PyYAML (and so dag-factory) reads it: where the only complaint is the
/// indentation of a line inside a flow collection (`[`...`]`, `{`...`}`) or a quoted scalar,
/// which PyYAML never checks, such lines are indented further and the text is read again
/// (leading blanks of those lines carry no meaning, so the value is the same).
pub fn parse(text: &str) -> Result<Node, YamlError> {
    match parse_strict(text) {
        Err(e) if e.message.starts_with("invalid indentation") => {
            let relaxed = crate::yaml_flow::indent_flow_lines(text);
            if relaxed == text {
                return Err(e);
            }
            parse_strict(&relaxed).map_err(|_| e)
        }
        other => other,
    }
}

fn parse_strict(text: &str) -> Result<Node, YamlError> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    if let Err(e) = parser.load(&mut builder, false) {
        return Err(YamlError {
            line: e.marker().line().max(1),
            message: e.info().to_string(),
        });
    }
    if let Some(err) = builder.error {
        return Err(err);
    }
    Ok(builder.docs.into_iter().next().unwrap_or(Node {
        value: Val::Null,
        line: 1,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_types() {
        let n = parse("a:\n  b: 1\n  c: [x, 2.5, null, true]\n  d: '3'\n").unwrap();
        let a = n.get("a").unwrap();
        assert_eq!(a.get("b").unwrap().value, Val::Int(1));
        assert_eq!(a.get("b").unwrap().line, 2);
        assert_eq!(a.entries()[1].0.line, 3);
        assert_eq!(a.get("d").unwrap().value, Val::Str("3".into()));
        assert_eq!(
            a.get("c").unwrap().to_json(),
            serde_json::json!(["x", 2.5, null, true])
        );
    }

    #[test]
    fn errors_have_lines() {
        let e = parse("a:\n  b: [1, 2\n").unwrap_err();
        assert!(e.line >= 2, "{e:?}");
        let e = parse("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(e.line, 3);
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let text = format!("a: {}{}", "[".repeat(5000), "]".repeat(5000));
        let e = parse(&text).unwrap_err();
        assert!(
            e.message.contains("nesting") || e.message.contains("recursion"),
            "{e:?}"
        );
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..9 {
            let p = i - 1;
            text.push_str(&format!("a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"));
        }
        let e = parse(&text).unwrap_err();
        assert!(e.message.contains("too large"), "{e:?}");
    }

    #[test]
    fn scalars_resolve_as_pyyaml_resolves_them() {
        let n = parse(
            "a: yes\nb: off\nc: 1e5\nd: 1.0e+5\ne: 017\nf: 0o17\ng: 1:30\nh: 00:05:00\ni: 1_000\nj: 0x1F\nk: .5\nl: 2024-01-01\nm: ~\n",
        )
        .unwrap();
        let j = n.to_json();
        assert_eq!(j["a"], true);
        assert_eq!(j["b"], false);
        assert_eq!(j["c"], "1e5");
        assert_eq!(j["d"], 100000.0);
        assert_eq!(j["e"], 15);
        assert_eq!(j["f"], "0o17");
        assert_eq!(j["g"], 90);
        assert_eq!(j["h"], "00:05:00");
        assert_eq!(j["i"], 1000);
        assert_eq!(j["j"], 31);
        assert_eq!(j["k"], 0.5);
        assert_eq!(j["l"], "2024-01-01");
        assert!(j["m"].is_null());
    }

    #[test]
    fn flow_lines_left_of_their_block_load_as_in_pyyaml() {
        // dag-factory's own tests/fixtures/dag_factory_kubernetes_pod_operator.yml does this.
        let text = "t:\n  args : [\n     'a',\n     'b',\n  ]\n  vars : [\n    {\"v\":\"x\"}\n  ]\n  next: 1\n";
        let n = parse(text).unwrap();
        let t = n.get("t").unwrap();
        assert_eq!(
            t.get("args").unwrap().to_json(),
            serde_json::json!(["a", "b"])
        );
        assert_eq!(
            t.get("vars").unwrap().to_json(),
            serde_json::json!([{"v": "x"}])
        );
        assert_eq!(t.get("next").unwrap().line, 9);
        // A real syntax error is still reported where it is.
        let e = parse("t:\n  a: [1,\n  b: 2\n").unwrap_err();
        assert!(e.line >= 2, "{e:?}");
    }

    #[test]
    fn merge_keys_and_python_names() {
        let n =
            parse("base: &b {x: 1, y: 2}\nd:\n  <<: *b\n  y: 3\nf: !!python/name:sample.double\n")
                .unwrap();
        assert_eq!(
            n.get("d").unwrap().to_json(),
            serde_json::json!({"y": 3, "x": 1})
        );
        assert_eq!(n.get("f").unwrap().as_str(), Some("sample.double"));
    }

    #[test]
    fn data_tags_read_as_pyyaml_reads_them() {
        let n = parse(
            "a: !!str 3\nb: !!int '7'\nc: !!python/tuple [1, 2]\nd: !!python/none ''\ne: !!float 2\nf: !!python/dict {k: v}\n",
        )
        .unwrap();
        let j = n.to_json();
        assert_eq!(j["a"], "3");
        assert_eq!(j["b"], 7);
        assert_eq!(j["c"], serde_json::json!([1, 2]));
        assert!(j["d"].is_null());
        assert_eq!(j["e"], 2.0);
        assert_eq!(j["f"], serde_json::json!({"k": "v"}));
        let e = parse("a: 1\nb: !!int seven\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(
            e.message
                .contains("`!!int` value: `seven` is not an integer"),
            "{e:?}"
        );
    }

    #[test]
    fn tags_that_run_code_or_build_objects_are_refused_at_their_line() {
        for (text, line, shown) in [
            (
                "x: 1\ny: !!python/object/apply:os.system ['id']\n",
                2,
                "!!python/object/apply:os.system",
            ),
            (
                "x: !!python/object/new:subprocess.Popen {args: [id]}\n",
                1,
                "!!python/object/new:subprocess.Popen",
            ),
            ("x:\n  y: !!python/module:os ''\n", 2, "!!python/module:os"),
            (
                "x:\n\n  y: !!python/object:builtins.dict {}\n",
                3,
                "!!python/object:builtins.dict",
            ),
            // a tagged block mapping is reported at its first line
            (
                "pod: !kubernetes.client.models.V1Pod\n  metadata: {}\n",
                2,
                "!kubernetes.client.models.V1Pod",
            ),
            // `!!` redefined by a directive is not the standard prefix any more
            (
                "%TAG !! tag:evil.example,2000:\n---\nx: !!str 1\n",
                3,
                "tag:evil.example",
            ),
        ] {
            let e = parse(text).unwrap_err();
            assert_eq!(e.line, line, "{text}: {e:?}");
            assert!(e.message.contains(shown), "{text}: {e:?}");
        }
    }

    #[test]
    fn anchors() {
        let n = parse("x: &d {k: 1}\ny: *d\n").unwrap();
        assert_eq!(n.get("y").unwrap().to_json(), serde_json::json!({"k": 1}));
    }
}
