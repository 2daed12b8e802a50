//! YAML ASL (`*.asl.yaml`, as SAM and Workflow Studio export it): turns YAML into the JSON
//! value the validator reads, so a YAML definition becomes the same [`StateMachine`] as its
//! JSON twin. Scalars follow YAML 1.2's core schema (quoted `"1"` stays a string, plain `1`
//! is a number); anchors and aliases are expanded within a size budget (alias bombs are
//! refused), nesting is bounded, duplicate keys, non-scalar keys, several documents and
//! application tags (`!Sub`, `!Ref`...) are errors. Errors carry the JSON pointer and the
//! YAML `line:column`.

use crate::error::{ValidationErrors, Warning};
use crate::model::StateMachine;
use crate::template::escape_ptr;
use serde_json::{Map, Number, Value};
use std::collections::HashMap;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// Deepest nesting accepted (as deep as the JSON parser goes).
pub const MAX_DEPTH: usize = 128;
/// Most values a document may hold after alias expansion.
pub const MAX_NODES: usize = 200_000;
/// Most bytes of keys and strings a document may hold after alias expansion (AWS caps a
/// definition at 1 MiB; this leaves room for YAML's verbosity, not for alias bombs).
pub const MAX_BYTES: usize = 8 * 1024 * 1024;

enum Frame {
    Seq(Vec<Value>, usize),
    Map(Map<String, Value>, Option<String>, usize),
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    docs: Vec<Value>,
    anchors: HashMap<usize, (Value, usize, usize)>,
    error: Option<(String, Marker, String)>,
    nodes: usize,
    bytes: usize,
}

/// Values and bytes inside a value.
fn weight(v: &Value) -> (usize, usize) {
    match v {
        Value::String(s) => (1, s.len()),
        Value::Array(a) => a
            .iter()
            .map(weight)
            .fold((1, 0), |x, y| (x.0 + y.0, x.1 + y.1)),
        Value::Object(o) => o
            .iter()
            .map(|(k, v)| {
                let (n, b) = weight(v);
                (n, b + k.len())
            })
            .fold((1, 0), |x, y| (x.0 + y.0, x.1 + y.1)),
        _ => (1, 0),
    }
}

fn is_core_tag(t: &Tag) -> bool {
    t.handle == "!!" || t.handle == "tag:yaml.org,2002:"
}

fn resolve_plain(s: &str) -> Value {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(i) = s.parse::<i64>() {
            return Value::from(i);
        }
        if let Ok(u) = s.trim_start_matches('+').parse::<u64>() {
            return Value::from(u);
        }
    }
    if let Some(hex) = s.strip_prefix("0x") {
        if let Ok(i) = i64::from_str_radix(hex, 16) {
            return Value::from(i);
        }
    }
    if let Some(oct) = s.strip_prefix("0o") {
        if let Ok(i) = i64::from_str_radix(oct, 8) {
            return Value::from(i);
        }
    }
    let looks_numeric = s
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
        && s.bytes().any(|b| b.is_ascii_digit());
    if looks_numeric {
        if let Some(n) = s.parse::<f64>().ok().and_then(Number::from_f64) {
            return Value::Number(n);
        }
    }
    Value::String(s.to_string())
}

impl Builder {
    /// JSON pointer of the value about to be added.
    fn pointer(&self) -> String {
        let mut p = String::new();
        for f in &self.stack {
            match f {
                Frame::Seq(items, _) => p.push_str(&format!("/{}", items.len())),
                Frame::Map(_, Some(k), _) => {
                    p.push('/');
                    p.push_str(&escape_ptr(k));
                }
                Frame::Map(_, None, _) => {}
            }
        }
        p
    }

    fn fail(&mut self, mark: Marker, reason: impl Into<String>) {
        if self.error.is_none() {
            self.error = Some((self.pointer(), mark, reason.into()));
        }
    }

    fn push(&mut self, v: Value, mark: Marker, anchor: usize, weight: (usize, usize)) {
        if self.error.is_some() {
            return;
        }
        self.nodes += weight.0;
        self.bytes += weight.1;
        if self.nodes > MAX_NODES || self.bytes > MAX_BYTES {
            self.fail(
                mark,
                format!("the document is too large after alias expansion (more than {MAX_NODES} values or {MAX_BYTES} bytes)"),
            );
            return;
        }
        if anchor > 0 {
            let w = self::weight(&v);
            self.anchors.insert(anchor, (v.clone(), w.0, w.1));
        }
        let key_text = match self.stack.last() {
            Some(Frame::Map(_, None, _)) => Some(match &v {
                Value::String(s) => Ok(s.clone()),
                Value::Number(n) => Ok(n.to_string()),
                Value::Bool(b) => Ok(b.to_string()),
                Value::Null => Ok("null".to_string()),
                _ => Err(()),
            }),
            _ => None,
        };
        match key_text {
            Some(Ok(k)) => {
                let dup =
                    matches!(self.stack.last(), Some(Frame::Map(m, _, _)) if m.contains_key(&k));
                if let Some(Frame::Map(_, pending, _)) = self.stack.last_mut() {
                    *pending = Some(k.clone());
                }
                if dup {
                    self.fail(mark, format!("duplicate key '{k}'"));
                }
                return;
            }
            Some(Err(())) => {
                self.fail(
                    mark,
                    "a mapping key must be a scalar (a string, number or boolean)",
                );
                return;
            }
            None => {}
        }
        match self.stack.last_mut() {
            None => self.docs.push(v),
            Some(Frame::Seq(items, _)) => items.push(v),
            Some(Frame::Map(m, pending, _)) => {
                if let Some(k) = pending.take() {
                    m.insert(k, v);
                }
            }
        }
    }

    fn tag_ok(&mut self, tag: &Option<Tag>, mark: Marker, what: &[&str]) -> bool {
        match tag {
            None => true,
            Some(t) if is_core_tag(t) && what.contains(&t.suffix.as_str()) => true,
            Some(t) => {
                self.fail(
                    mark,
                    format!(
                        "the YAML tag '{}{}' is not supported in a state machine definition (CloudFormation functions such as !Sub are resolved at deployment, not by weft)",
                        t.handle, t.suffix
                    ),
                );
                false
            }
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        let is_seq = matches!(ev, Event::SequenceStart(..));
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                if !self.tag_ok(&tag, mark, &["str", "int", "float", "bool", "null"]) {
                    return;
                }
                let v = match tag.as_ref().map(|t| t.suffix.as_str()) {
                    Some("str") => Value::String(text),
                    Some(kind) => {
                        let v = resolve_plain(&text);
                        let fits = match kind {
                            "int" => v.is_i64() || v.is_u64(),
                            "float" => v.is_number(),
                            "bool" => v.is_boolean(),
                            _ => v.is_null(),
                        };
                        if !fits {
                            self.fail(mark, format!("'{text}' is not a valid !!{kind}"));
                            return;
                        }
                        v
                    }
                    None if style != TScalarStyle::Plain => Value::String(text),
                    None => resolve_plain(&text),
                };
                let w = weight(&v);
                self.push(v, mark, anchor, w);
            }
            Event::SequenceStart(..) | Event::MappingStart(..) if self.stack.len() >= MAX_DEPTH => {
                self.fail(mark, format!("nesting deeper than {MAX_DEPTH} levels"));
            }
            Event::SequenceStart(anchor, tag) | Event::MappingStart(anchor, tag) => {
                if !self.tag_ok(&tag, mark, if is_seq { &["seq"] } else { &["map"] }) {
                    return;
                }
                if matches!(self.stack.last(), Some(Frame::Map(_, None, _))) {
                    self.fail(
                        mark,
                        "a mapping key must be a scalar (a string, number or boolean)",
                    );
                    return;
                }
                self.stack.push(if is_seq {
                    Frame::Seq(Vec::new(), anchor)
                } else {
                    Frame::Map(Map::new(), None, anchor)
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (v, anchor) = match self.stack.pop() {
                    Some(Frame::Seq(items, a)) => (Value::Array(items), a),
                    Some(Frame::Map(m, _, a)) => (Value::Object(m), a),
                    None => return,
                };
                // the contents were counted as they arrived
                self.push(v, mark, anchor, (1, 0));
            }
            Event::Alias(id) => match self.anchors.get(&id) {
                Some((v, n, b)) => {
                    let (v, w) = (v.clone(), (*n, *b));
                    // check the budget before the copy lands anywhere
                    if self.nodes + w.0 > MAX_NODES || self.bytes + w.1 > MAX_BYTES {
                        self.fail(mark, format!("the document is too large after alias expansion (more than {MAX_NODES} values or {MAX_BYTES} bytes)"));
                        return;
                    }
                    self.push(v, mark, 0, w);
                }
                None => self.fail(mark, "alias to an unknown anchor"),
            },
            Event::DocumentStart if !self.docs.is_empty() => {
                self.fail(
                    mark,
                    "a state machine file holds one YAML document, found several",
                );
            }
            _ => {}
        }
    }
}

fn at(mark: &Marker) -> String {
    format!("line {}, column {}", mark.line().max(1), mark.col() + 1)
}

/// Turns YAML text into the JSON value of the definition.
pub fn yaml_to_value(text: &str) -> Result<Value, ValidationErrors> {
    let mut errs = ValidationErrors::default();
    let mut b = Builder::default();
    let mut parser = Parser::new_from_str(text);
    if let Err(e) = parser.load(&mut b, true) {
        if let Some((ptr, mark, reason)) = b.error.take() {
            errs.push(ptr, format!("{reason} (YAML {})", at(&mark)));
        } else {
            errs.push(
                "",
                format!("not valid YAML at {}: {}", at(e.marker()), e.info()),
            );
        }
        return Err(errs);
    }
    if let Some((ptr, mark, reason)) = b.error {
        errs.push(ptr, format!("{reason} (YAML {})", at(&mark)));
        return Err(errs);
    }
    match b.docs.into_iter().next() {
        Some(v) => Ok(v),
        None => {
            errs.push("", "the YAML document is empty");
            Err(errs)
        }
    }
}

/// Parses and validates a YAML definition.
pub fn parse_yaml(text: &str) -> Result<StateMachine, ValidationErrors> {
    crate::parse::parse_value(&yaml_to_value(text)?)
}

/// True when the text is JSON (its first non-blank character is `{` and it parses as JSON).
fn json_value(text: &str) -> Option<Result<Value, serde_json::Error>> {
    text.trim_start()
        .starts_with('{')
        .then(|| serde_json::from_str::<Value>(text))
}

/// The definition's JSON value, whether the text is JSON or YAML.
pub fn any_to_value(text: &str) -> Result<Value, ValidationErrors> {
    match json_value(text) {
        Some(Ok(v)) => Ok(v),
        Some(Err(je)) => yaml_to_value(text).map_err(|_| {
            let mut errs = ValidationErrors::default();
            errs.push("", format!("not valid JSON: {je}"));
            errs
        }),
        None => yaml_to_value(text),
    }
}

/// Parses and validates a definition written in JSON or YAML.
pub fn parse_any(text: &str) -> Result<StateMachine, ValidationErrors> {
    crate::parse::parse_value(&any_to_value(text)?)
}

/// [`parse_any`] with the validation warnings ([`crate::warnings`]).
pub fn validate_any_with_warnings(
    text: &str,
) -> Result<(StateMachine, Vec<Warning>), ValidationErrors> {
    crate::parse::validate_value_with_warnings(&any_to_value(text)?)
}

/// True when the text is YAML whose top level is a mapping with `StartAt` and `States`: an
/// ASL definition rather than a DAG file.
pub fn looks_like_asl_yaml(text: &str) -> bool {
    if json_value(text).is_some_and(|r| r.is_ok()) {
        return false;
    }
    match yaml_to_value(text) {
        Ok(Value::Object(o)) => o.contains_key("StartAt") && o.contains_key("States"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const HELLO: &str = "\
Comment: hello
StartAt: Greet
States:
  Greet:
    Type: Pass
    Parameters:
      count: 1
      code: \"1\"
      flag: true
      name.$: $.name
    Next: Done
  Done:
    Type: Succeed
";

    #[test]
    fn yaml_is_the_same_model_as_json() {
        let v = yaml_to_value(HELLO).unwrap();
        assert_eq!(
            v["States"]["Greet"]["Parameters"],
            json!({"count": 1, "code": "1", "flag": true, "name.$": "$.name"})
        );
        let sm = parse_yaml(HELLO).unwrap();
        assert_eq!(sm.states.len(), 2);
        assert!(parse_any(HELLO).is_ok());
        assert!(parse_any(r#"{"StartAt":"A","States":{"A":{"Type":"Succeed"}}}"#).is_ok());
        assert!(parse_any("{StartAt: A, States: {A: {Type: Succeed}}}").is_ok());
        assert!(looks_like_asl_yaml(HELLO));
        assert!(!looks_like_asl_yaml(
            "my_dag:\n  tasks:\n    a:\n      operator: x\n"
        ));
        assert!(!looks_like_asl_yaml("{\"StartAt\": \"A\", \"States\": {}}"));
    }

    #[test]
    fn validation_errors_point_into_the_yaml() {
        let e =
            parse_yaml("StartAt: A\nStates:\n  A:\n    Type: Pass\n    Next: Nope\n").unwrap_err();
        assert_eq!(e.errors[0].pointer, "/States/A/Next");
    }

    #[test]
    fn yaml_errors_carry_pointer_and_position() {
        let e = yaml_to_value("StartAt: A\nStates:\n  A:\n    Type: Pass\n    Type: Succeed\n")
            .unwrap_err();
        assert_eq!(e.errors[0].pointer, "/States/A/Type");
        assert!(e.errors[0].reason.contains("duplicate key 'Type'"), "{e}");
        assert!(e.errors[0].reason.contains("line 5"), "{e}");
        let e = yaml_to_value("StartAt: A\nStates: [1, 2\n").unwrap_err();
        assert!(
            e.errors[0].reason.starts_with("not valid YAML at line"),
            "{e}"
        );
        let e =
            yaml_to_value("StartAt: A\nStates:\n  A:\n    Resource: !Sub '${Fn}'\n").unwrap_err();
        assert_eq!(e.errors[0].pointer, "/States/A/Resource");
        assert!(e.errors[0].reason.contains("!Sub"), "{e}");
        let e = yaml_to_value("StartAt: A\n? [a, b]\n: x\n").unwrap_err();
        assert!(
            e.errors[0].reason.contains("mapping key must be a scalar"),
            "{e}"
        );
        assert!(yaml_to_value("a: 1\n---\nb: 2\n").is_err());
        // non-string scalar keys become their text; tagged scalars follow their tag
        assert_eq!(
            yaml_to_value("1: a\ntrue: b\n").unwrap(),
            json!({"1": "a", "true": "b"})
        );
        assert_eq!(
            yaml_to_value("a: !!str 12\nb: !!int 7\n").unwrap(),
            json!({"a": "12", "b": 7})
        );
    }

    #[test]
    fn hostile_yaml_is_an_error_not_a_crash() {
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..9 {
            let p = i - 1;
            bomb.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let e = yaml_to_value(&bomb).unwrap_err();
        assert!(e.to_string().contains("too large"), "{e}");
        let big = format!(
            "s: &s '{}'\nl: [{}]\n",
            "x".repeat(1 << 20),
            vec!["*s"; 64].join(", ")
        );
        assert!(yaml_to_value(&big)
            .unwrap_err()
            .to_string()
            .contains("too large"));
        let deep = format!("a: {}{}", "[".repeat(5000), "]".repeat(5000));
        assert!(yaml_to_value(&deep).is_err());
        let deep_map = "a:\n".to_string()
            + &(1..300)
                .map(|i| format!("{}k:\n", "  ".repeat(i)))
                .collect::<String>();
        assert!(yaml_to_value(&deep_map).is_err());
    }
}
