//! A small YAML document model that remembers the source line of every node.
//!
//! DAG files are YAML; errors must name `file:line`, which serde-based YAML crates lose. This
//! module drives `yaml-rust2`'s event parser and builds a tree of [`Node`]s (scalars resolved
//! with YAML 1.2 core-schema rules, anchors/aliases expanded), and converts nodes to JSON.

use std::collections::{HashMap, HashSet};

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

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

/// A YAML syntax error with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
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
    anchors: HashMap<usize, Node>,
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

fn resolve_plain(s: &str) -> Val {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Val::Null,
        "true" | "True" | "TRUE" => return Val::Bool(true),
        "false" | "False" | "FALSE" => return Val::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" => return Val::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Val::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Val::Float(f64::NAN),
        _ => {}
    }
    if let Some(hex) = s.strip_prefix("0x") {
        if let Ok(i) = i64::from_str_radix(hex, 16) {
            return Val::Int(i);
        }
    }
    if let Some(oct) = s.strip_prefix("0o") {
        if let Ok(i) = i64::from_str_radix(oct, 8) {
            return Val::Int(i);
        }
    }
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(i) = s.parse::<i64>() {
            return Val::Int(i);
        }
    }
    let looks_numeric = s
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
        && s.bytes().any(|b| b.is_ascii_digit());
    if looks_numeric {
        if let Ok(f) = s.parse::<f64>() {
            return Val::Float(f);
        }
    }
    Val::Str(s.to_string())
}

impl Builder {
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
            self.anchors.insert(anchor, node.clone());
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
                let value = if style != TScalarStyle::Plain
                    || tag.as_ref().is_some_and(|t| t.suffix == "str")
                {
                    Val::Str(text)
                } else {
                    resolve_plain(&text)
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
            Event::SequenceStart(anchor, _) => {
                self.stack.push(Frame::Seq(Vec::new(), line, anchor))
            }
            Event::MappingStart(anchor, _) => {
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
                        value: Val::Map(entries),
                        line,
                    },
                    anchor,
                ),
                None => {}
            },
            Event::Alias(id) => {
                let node = self.anchors.get(&id).cloned().unwrap_or(Node {
                    value: Val::Null,
                    line,
                });
                self.nodes += node_weight(&node);
                self.push(node, 0);
            }
            _ => {}
        }
    }
}

/// Parse the first YAML document of `text` (an empty file is `null`).
pub fn parse(text: &str) -> Result<Node, YamlError> {
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
    fn anchors() {
        let n = parse("x: &d {k: 1}\ny: *d\n").unwrap();
        assert_eq!(n.get("y").unwrap().to_json(), serde_json::json!({"k": 1}));
    }
}
