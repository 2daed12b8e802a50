//! JSONPath as Amazon States Language uses it: paths rooted at the state input (`$`), the
//! context object (`$$`) or a variable (`$name`), Jayway semantics (a *definite* path yields one
//! value or nothing; an *indefinite* path — wildcard, slice, union, filter, deep scan — always
//! yields an array, possibly empty) and AWS's *reference paths* for `ResultPath` (definite,
//! object fields and array indices only, creating missing objects on write).
//!
//! It is hand-written rather than borrowed because ASL needs both Jayway's definite/indefinite
//! split (RFC 9535 always returns node lists) and an allocation-free lookup for the hot path
//! (`Choice` variables, `InputPath`), and AWS's exact error texts.

use serde_json::{Map, Value};
use std::fmt;

/// Where a path starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Root {
    /// `$`: the state input (or the effective value the field is applied to).
    Input,
    /// `$$`: the context object.
    Context,
    /// `$name`: a workflow variable.
    Variable(String),
}

/// Comparison operator inside a filter expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A filter expression `[?( ... )]`.
#[derive(Debug, Clone, PartialEq)]
enum Filter {
    Exists(Vec<Segment>),
    /// `[?($.flag)]`: the `$` operand (an [`Operand::Root`]) matches something.
    RootExists(Operand),
    Cmp(Operand, CmpOp, Operand),
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
}

#[derive(Debug, Clone, PartialEq)]
enum Operand {
    /// `@...`: relative to the element being filtered.
    Current(Vec<Segment>),
    /// `$...`: relative to the root of the document being queried (Jayway's semantics); its
    /// value does not depend on the element, so it is computed once per [`JsonPath::select`].
    Root(Vec<Segment>),
    Literal(Value),
}

/// One step of a path.
#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Field(String),
    Index(i64),
    Wildcard,
    Slice(Option<i64>, Option<i64>, Option<i64>),
    Union(Vec<UnionItem>),
    DeepScan(Option<String>),
    Filter(Box<Filter>),
}

#[derive(Debug, Clone, PartialEq)]
enum UnionItem {
    Field(String),
    Index(i64),
}

/// A compiled path.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonPath {
    text: String,
    root: Root,
    segments: Vec<Segment>,
    definite: bool,
    function: Option<PathFn>,
}

/// A Jayway path function ending a path (`$.items.length()`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PathFn {
    Length,
    Sum,
    Min,
    Max,
    Avg,
    Keys,
    First,
    Last,
}

impl PathFn {
    fn from_name(n: &str) -> Option<PathFn> {
        Some(match n {
            "length()" | "size()" => PathFn::Length,
            "sum()" => PathFn::Sum,
            "min()" => PathFn::Min,
            "max()" => PathFn::Max,
            "avg()" => PathFn::Avg,
            "keys()" => PathFn::Keys,
            "first()" => PathFn::First,
            "last()" => PathFn::Last,
            _ => return None,
        })
    }

    fn apply(self, v: Value) -> Option<Value> {
        let nums = |a: &Vec<Value>| -> Vec<f64> { a.iter().filter_map(Value::as_f64).collect() };
        match (self, v) {
            (PathFn::Length, Value::Array(a)) => Some(Value::from(a.len())),
            (PathFn::Length, Value::String(s)) => Some(Value::from(s.chars().count())),
            (PathFn::Length, Value::Object(o)) => Some(Value::from(o.len())),
            (PathFn::Sum, Value::Array(a)) => Some(crate::intrinsic::number(nums(&a).iter().sum())),
            (PathFn::Min, Value::Array(a)) => nums(&a)
                .into_iter()
                .reduce(f64::min)
                .map(crate::intrinsic::number),
            (PathFn::Max, Value::Array(a)) => nums(&a)
                .into_iter()
                .reduce(f64::max)
                .map(crate::intrinsic::number),
            (PathFn::Avg, Value::Array(a)) => {
                let n = nums(&a);
                (!n.is_empty())
                    .then(|| crate::intrinsic::number(n.iter().sum::<f64>() / n.len() as f64))
            }
            (PathFn::Keys, Value::Object(o)) => Some(Value::Array(
                o.keys().map(|k| Value::String(k.clone())).collect(),
            )),
            (PathFn::First, Value::Array(mut a)) if !a.is_empty() => Some(a.swap_remove(0)),
            (PathFn::Last, Value::Array(mut a)) => a.pop(),
            _ => None,
        }
    }
}

/// Why a path string is not a valid path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid JSONPath '{path}': {reason}")]
pub struct PathSyntaxError {
    /// The offending text.
    pub path: String,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Most segments a path may have: more than any value can nest (see
/// [`crate::limits::MAX_VALUE_DEPTH`]), so no path that could match is refused.
pub const MAX_SEGMENTS: usize = 128;

fn is_var_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<char> {
        self.s[self.pos..].chars().next()
    }
    fn peek_at(&self, n: usize) -> Option<char> {
        self.s[self.pos..].chars().nth(n)
    }
    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }
    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }
    fn skip_ws(&mut self) {
        while let Some(c) = self.peek().filter(|c| c.is_whitespace()) {
            self.pos += c.len_utf8();
        }
    }
    fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }
}

impl JsonPath {
    /// Parses a path. Accepts `$`, `$$` and `$name` roots.
    pub fn parse(text: &str) -> Result<JsonPath, PathSyntaxError> {
        let err = |reason: &str| PathSyntaxError {
            path: text.to_string(),
            reason: reason.to_string(),
        };
        // brackets, `!` and `&&`/`||` chains nest the parser and the filter tree (whose
        // evaluation and destructor recurse), each segment one level of the value a
        // ResultPath builds: all bounded before parsing
        let nesting = text.matches(['(', '[', '!']).count()
            + text.matches("&&").count()
            + text.matches("||").count();
        if text.len() > 16_384 || nesting > 128 {
            return Err(err("the path is too long or too deeply nested"));
        }
        let mut c = Cursor { s: text, pos: 0 };
        if !c.eat('$') {
            return Err(err("a path must start with '$'"));
        }
        let root = if c.eat('$') {
            Root::Context
        } else if matches!(c.peek(), Some(ch) if is_var_char(ch)) {
            let start = c.pos;
            while matches!(c.peek(), Some(ch) if is_var_char(ch)) {
                c.bump();
            }
            Root::Variable(text[start..c.pos].to_string())
        } else {
            Root::Input
        };
        let mut segments = parse_segments(&mut c, false).map_err(|r| err(&r))?;
        if segments.len() > MAX_SEGMENTS {
            return Err(err(&format!(
                "the path has more than {MAX_SEGMENTS} segments"
            )));
        }
        if c.pos != text.len() {
            return Err(err(&format!("unexpected '{}'", c.rest())));
        }
        let function = match segments.last() {
            Some(Segment::Field(n)) if n.ends_with("()") => match PathFn::from_name(n) {
                Some(f) => {
                    segments.pop();
                    Some(f)
                }
                None => return Err(err(&format!("unknown path function '{n}'"))),
            },
            _ => None,
        };
        let definite = function.is_none()
            && segments
                .iter()
                .all(|s| matches!(s, Segment::Field(_) | Segment::Index(_)));
        Ok(JsonPath {
            text: text.to_string(),
            root,
            segments,
            definite,
            function,
        })
    }

    /// The source text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The root this path starts at.
    pub fn root(&self) -> &Root {
        &self.root
    }

    /// True when the path always selects at most one value.
    pub fn is_definite(&self) -> bool {
        self.definite
    }

    /// True when the path is a reference path (usable as `ResultPath`): rooted at `$`,
    /// fields and indices only.
    pub fn is_reference_path(&self) -> bool {
        self.root == Root::Input && self.definite
    }

    /// True for the bare root `$` (or `$$` / `$name`).
    pub fn is_root_only(&self) -> bool {
        self.segments.is_empty()
    }

    /// Looks a definite path up without allocating. For indefinite paths returns `None`
    /// (use [`JsonPath::select`]).
    #[inline]
    pub fn lookup<'v>(&self, root: &'v Value) -> Option<&'v Value> {
        if !self.definite {
            return None;
        }
        let mut cur = root;
        for seg in &self.segments {
            cur = match seg {
                Segment::Field(name) => cur.as_object()?.get(name)?,
                Segment::Index(i) => {
                    let arr = cur.as_array()?;
                    let idx = if *i < 0 { arr.len() as i64 + i } else { *i };
                    if idx < 0 {
                        return None;
                    }
                    arr.get(idx as usize)?
                }
                _ => return None,
            };
        }
        Some(cur)
    }

    /// Evaluates the path against `root`. A definite path yields `Some(value)` or `None`
    /// when nothing matches; an indefinite path always yields `Some(array)`.
    pub fn select(&self, root: &Value) -> Option<Value> {
        if self.definite {
            return self.lookup(root).cloned();
        }
        if let Some(f) = self.function {
            let base_definite = self
                .segments
                .iter()
                .all(|s| matches!(s, Segment::Field(_) | Segment::Index(_)));
            let ctx = FilterCtx::new(root);
            let base = if base_definite {
                let mut cur = root;
                for seg in &self.segments {
                    let mut out = Vec::new();
                    apply_segment(seg, cur, &mut out, &ctx);
                    cur = out.into_iter().next()?;
                }
                cur.clone()
            } else {
                let mut cur: Vec<&Value> = vec![root];
                for seg in &self.segments {
                    let mut next = Vec::new();
                    for v in cur {
                        apply_segment(seg, v, &mut next, &ctx);
                    }
                    cur = next;
                }
                Value::Array(cur.into_iter().cloned().collect())
            };
            return f.apply(base);
        }
        let ctx = FilterCtx::new(root);
        let mut cur: Vec<&Value> = vec![root];
        for seg in &self.segments {
            let mut next = Vec::new();
            for v in cur {
                apply_segment(seg, v, &mut next, &ctx);
            }
            cur = next;
        }
        Some(Value::Array(cur.into_iter().cloned().collect()))
    }

    /// Jayway's normalized form of the path, used in AWS error messages:
    /// `$.a.b[0]` becomes `$['a']['b'][0]`.
    pub fn normalized(&self) -> String {
        let mut s = String::from(match &self.root {
            Root::Input => "$",
            Root::Context => "$$",
            Root::Variable(_) => "$",
        });
        if let Root::Variable(v) = &self.root {
            s.push_str(v);
        }
        for seg in &self.segments {
            match seg {
                Segment::Field(n) => {
                    s.push_str("['");
                    s.push_str(n);
                    s.push_str("']");
                }
                Segment::Index(i) => s.push_str(&format!("[{i}]")),
                Segment::Wildcard => s.push_str("[*]"),
                _ => {}
            }
        }
        s
    }

    /// Writes `value` into `target` at this reference path (AWS `ResultPath` rules): missing
    /// intermediate objects are created, an existing array element can be replaced. Fails
    /// (with a reason) when a step meets a value of the wrong type.
    pub fn set(&self, target: &mut Value, value: Value) -> Result<(), String> {
        let mut cur = target;
        let n = self.segments.len();
        for (i, seg) in self.segments.iter().enumerate() {
            let last = i + 1 == n;
            match seg {
                Segment::Field(name) => {
                    let obj = match cur {
                        Value::Object(o) => o,
                        other => {
                            return Err(format!(
                                "cannot set field '{name}' on a {}",
                                type_name(other)
                            ))
                        }
                    };
                    if last {
                        obj.insert(name.clone(), value);
                        return Ok(());
                    }
                    let entry = obj
                        .entry(name.clone())
                        .or_insert_with(|| Value::Object(Map::new()));
                    cur = entry;
                }
                Segment::Index(idx) => {
                    let arr = match cur {
                        Value::Array(a) => a,
                        other => {
                            return Err(format!("cannot index [{idx}] into a {}", type_name(other)))
                        }
                    };
                    let len = arr.len() as i64;
                    let j = if *idx < 0 { len + idx } else { *idx };
                    if j < 0 || j >= len {
                        return Err(format!("index [{idx}] is out of bounds"));
                    }
                    let slot = &mut arr[j as usize];
                    if last {
                        *slot = value;
                        return Ok(());
                    }
                    cur = slot;
                }
                _ => return Err("not a reference path".to_string()),
            }
        }
        *cur = value;
        Ok(())
    }
}

/// The JSON type name used in messages.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// What a filter needs besides the element: the queried document (for `$` operands) and
/// the values of those operands, computed on first use.
struct FilterCtx<'v> {
    root: &'v Value,
    cache: std::cell::RefCell<Vec<(*const Operand, Option<Value>)>>,
}

impl<'v> FilterCtx<'v> {
    fn new(root: &'v Value) -> Self {
        FilterCtx {
            root,
            cache: std::cell::RefCell::new(Vec::new()),
        }
    }

    /// The value of a `$`-rooted operand: definite paths yield the node, indefinite ones
    /// the array of matches (as Jayway does).
    fn root_operand(&self, op: &Operand, segs: &[Segment]) -> Option<Value> {
        let key = op as *const Operand;
        if let Some((_, v)) = self.cache.borrow().iter().find(|(k, _)| *k == key) {
            return v.clone();
        }
        let definite = segs
            .iter()
            .all(|s| matches!(s, Segment::Field(_) | Segment::Index(_)));
        let v = if definite {
            resolve_current(segs, self.root, self).cloned()
        } else {
            let mut cur: Vec<&Value> = vec![self.root];
            for seg in segs {
                let mut next = Vec::new();
                for v in cur {
                    apply_segment(seg, v, &mut next, self);
                }
                cur = next;
            }
            Some(Value::Array(cur.into_iter().cloned().collect()))
        };
        self.cache.borrow_mut().push((key, v.clone()));
        v
    }
}

fn apply_segment<'v>(seg: &Segment, v: &'v Value, out: &mut Vec<&'v Value>, ctx: &FilterCtx<'_>) {
    match seg {
        Segment::Field(n) => {
            if let Some(x) = v.as_object().and_then(|o| o.get(n)) {
                out.push(x);
            }
        }
        Segment::Index(i) => {
            if let Some(a) = v.as_array() {
                let idx = if *i < 0 { a.len() as i64 + i } else { *i };
                if idx >= 0 {
                    if let Some(x) = a.get(idx as usize) {
                        out.push(x);
                    }
                }
            }
        }
        Segment::Wildcard => match v {
            Value::Array(a) => out.extend(a.iter()),
            Value::Object(o) => out.extend(o.values()),
            _ => {}
        },
        Segment::Slice(start, end, step) => {
            if let Some(a) = v.as_array() {
                let len = a.len() as i64;
                let step = step.unwrap_or(1);
                if step <= 0 {
                    return;
                }
                let norm = |x: i64| if x < 0 { (len + x).max(0) } else { x.min(len) };
                let s = norm(start.unwrap_or(0));
                let e = norm(end.unwrap_or(len));
                let mut i = s;
                while i < e {
                    out.push(&a[i as usize]);
                    i += step;
                }
            }
        }
        Segment::Union(items) => {
            for it in items {
                match it {
                    UnionItem::Field(n) => apply_segment(&Segment::Field(n.clone()), v, out, ctx),
                    UnionItem::Index(i) => apply_segment(&Segment::Index(*i), v, out, ctx),
                }
            }
        }
        Segment::DeepScan(name) => deep_scan(name.as_deref(), v, out),
        Segment::Filter(f) => match v {
            Value::Array(a) => out.extend(a.iter().filter(|x| eval_filter(f, x, ctx))),
            Value::Object(o) => out.extend(o.values().filter(|x| eval_filter(f, x, ctx))),
            _ => {}
        },
    }
}

fn deep_scan<'v>(name: Option<&str>, v: &'v Value, out: &mut Vec<&'v Value>) {
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                if name.is_none() || name == Some(k.as_str()) {
                    out.push(x);
                }
            }
            for x in o.values() {
                deep_scan(name, x, out);
            }
        }
        Value::Array(a) => {
            if name.is_none() {
                out.extend(a.iter());
            }
            for x in a {
                deep_scan(name, x, out);
            }
        }
        _ => {}
    }
}

fn resolve_current<'v>(segs: &[Segment], v: &'v Value, ctx: &FilterCtx<'_>) -> Option<&'v Value> {
    let mut cur = v;
    for s in segs {
        let mut out = Vec::new();
        apply_segment(s, cur, &mut out, ctx);
        cur = out.into_iter().next()?;
    }
    Some(cur)
}

fn eval_filter(f: &Filter, v: &Value, ctx: &FilterCtx<'_>) -> bool {
    match f {
        Filter::Exists(segs) => resolve_current(segs, v, ctx).is_some(),
        Filter::RootExists(o) => match o {
            Operand::Root(s) => ctx.root_operand(o, s).is_some(),
            _ => false,
        },
        Filter::And(a, b) => eval_filter(a, v, ctx) && eval_filter(b, v, ctx),
        Filter::Or(a, b) => eval_filter(a, v, ctx) || eval_filter(b, v, ctx),
        Filter::Not(a) => !eval_filter(a, v, ctx),
        Filter::Cmp(l, op, r) => {
            fn operand<'a>(
                o: &'a Operand,
                v: &'a Value,
                ctx: &FilterCtx<'_>,
            ) -> Option<std::borrow::Cow<'a, Value>> {
                match o {
                    Operand::Current(s) => {
                        resolve_current(s, v, ctx).map(std::borrow::Cow::Borrowed)
                    }
                    Operand::Root(s) => ctx.root_operand(o, s).map(std::borrow::Cow::Owned),
                    Operand::Literal(x) => Some(std::borrow::Cow::Borrowed(x)),
                }
            }
            let (Some(a), Some(b)) = (operand(l, v, ctx), operand(r, v, ctx)) else {
                return false;
            };
            compare(&a, *op, &b)
        }
    }
}

fn compare(a: &Value, op: CmpOp, b: &Value) -> bool {
    let ord = match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (
                x.as_f64().unwrap_or(f64::NAN),
                y.as_f64().unwrap_or(f64::NAN),
            );
            x.partial_cmp(&y)
        }
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => {
            return match op {
                CmpOp::Eq => a == b,
                CmpOp::Ne => a != b,
                _ => false,
            }
        }
    };
    let Some(ord) = ord else { return false };
    use std::cmp::Ordering::*;
    match op {
        CmpOp::Eq => ord == Equal,
        CmpOp::Ne => ord != Equal,
        CmpOp::Lt => ord == Less,
        CmpOp::Le => ord != Greater,
        CmpOp::Gt => ord == Greater,
        CmpOp::Ge => ord != Less,
    }
}

fn parse_quoted(c: &mut Cursor<'_>) -> Result<String, String> {
    let q = c.bump().ok_or("unterminated string")?;
    let mut s = String::new();
    loop {
        match c.bump() {
            None => return Err("unterminated string".into()),
            Some('\\') => match c.bump() {
                Some('n') => s.push('\n'),
                Some('t') => s.push('\t'),
                Some(x) => s.push(x),
                None => return Err("unterminated string".into()),
            },
            Some(x) if x == q => return Ok(s),
            Some(x) => s.push(x),
        }
    }
}

fn parse_int(c: &mut Cursor<'_>) -> Result<i64, String> {
    let start = c.pos;
    c.eat('-');
    while matches!(c.peek(), Some(d) if d.is_ascii_digit()) {
        c.bump();
    }
    c.s[start..c.pos]
        .parse::<i64>()
        .map_err(|_| format!("expected a number at '{}'", &c.s[start..]))
}

fn parse_segments(c: &mut Cursor<'_>, in_filter: bool) -> Result<Vec<Segment>, String> {
    let mut segs = Vec::new();
    loop {
        match c.peek() {
            Some('.') => {
                c.bump();
                if c.eat('.') {
                    // deep scan
                    if c.eat('*') || c.peek() == Some('[') {
                        segs.push(Segment::DeepScan(None));
                    } else {
                        let name = dot_name(c, in_filter);
                        if name.is_empty() {
                            return Err("expected a name after '..'".into());
                        }
                        segs.push(Segment::DeepScan(Some(name)));
                    }
                } else if c.eat('*') {
                    segs.push(Segment::Wildcard);
                } else if c.peek() == Some('[') {
                    // `$.[...]` is accepted as `$[...]`
                    continue;
                } else {
                    let name = dot_name(c, in_filter);
                    if name.is_empty() {
                        return Err("expected a field name after '.'".into());
                    }
                    segs.push(Segment::Field(name));
                }
            }
            Some('[') => {
                c.bump();
                c.skip_ws();
                segs.push(parse_bracket(c)?);
                c.skip_ws();
                if !c.eat(']') {
                    return Err("expected ']'".into());
                }
            }
            _ => return Ok(segs),
        }
    }
}

fn dot_name(c: &mut Cursor<'_>, in_filter: bool) -> String {
    let start = c.pos;
    while let Some(ch) = c.peek() {
        if ch == '.' || ch == '[' {
            break;
        }
        if in_filter
            && (ch.is_whitespace() || matches!(ch, ')' | '=' | '!' | '<' | '>' | '&' | '|' | ']'))
        {
            break;
        }
        c.bump();
    }
    c.s[start..c.pos].to_string()
}

fn parse_bracket(c: &mut Cursor<'_>) -> Result<Segment, String> {
    match c.peek() {
        Some('*') => {
            c.bump();
            Ok(Segment::Wildcard)
        }
        Some('?') => {
            c.bump();
            c.skip_ws();
            if !c.eat('(') {
                return Err("expected '(' after '?'".into());
            }
            let f = parse_filter_or(c)?;
            c.skip_ws();
            if !c.eat(')') {
                return Err("expected ')' closing the filter".into());
            }
            Ok(Segment::Filter(Box::new(f)))
        }
        Some('\'') | Some('"') => {
            let mut items = vec![UnionItem::Field(parse_quoted(c)?)];
            c.skip_ws();
            while c.eat(',') {
                c.skip_ws();
                items.push(UnionItem::Field(parse_quoted(c)?));
                c.skip_ws();
            }
            if items.len() == 1 {
                if let Some(UnionItem::Field(n)) = items.pop() {
                    return Ok(Segment::Field(n));
                }
            }
            Ok(Segment::Union(items))
        }
        Some(ch) if ch == '-' || ch == ':' || ch.is_ascii_digit() => {
            let first = if c.peek() == Some(':') {
                None
            } else {
                Some(parse_int(c)?)
            };
            c.skip_ws();
            if c.eat(':') {
                c.skip_ws();
                let end = if matches!(c.peek(), Some(d) if d == '-' || d.is_ascii_digit()) {
                    Some(parse_int(c)?)
                } else {
                    None
                };
                c.skip_ws();
                let step = if c.eat(':') {
                    c.skip_ws();
                    if matches!(c.peek(), Some(d) if d == '-' || d.is_ascii_digit()) {
                        Some(parse_int(c)?)
                    } else {
                        None
                    }
                } else {
                    None
                };
                return Ok(Segment::Slice(first, end, step));
            }
            let first = first.ok_or("expected an index")?;
            if c.peek() == Some(',') {
                let mut items = vec![UnionItem::Index(first)];
                while c.eat(',') {
                    c.skip_ws();
                    items.push(UnionItem::Index(parse_int(c)?));
                    c.skip_ws();
                }
                return Ok(Segment::Union(items));
            }
            Ok(Segment::Index(first))
        }
        _ => Err(format!("unexpected '{}' in brackets", c.rest())),
    }
}

fn parse_filter_or(c: &mut Cursor<'_>) -> Result<Filter, String> {
    let mut left = parse_filter_and(c)?;
    loop {
        c.skip_ws();
        if c.rest().starts_with("||") {
            c.pos += 2;
            let right = parse_filter_and(c)?;
            left = Filter::Or(Box::new(left), Box::new(right));
        } else {
            return Ok(left);
        }
    }
}

fn parse_filter_and(c: &mut Cursor<'_>) -> Result<Filter, String> {
    let mut left = parse_filter_atom(c)?;
    loop {
        c.skip_ws();
        if c.rest().starts_with("&&") {
            c.pos += 2;
            let right = parse_filter_atom(c)?;
            left = Filter::And(Box::new(left), Box::new(right));
        } else {
            return Ok(left);
        }
    }
}

fn parse_operand(c: &mut Cursor<'_>) -> Result<Operand, String> {
    c.skip_ws();
    match c.peek() {
        Some('@') => {
            c.bump();
            Ok(Operand::Current(parse_segments(c, true)?))
        }
        Some('$') => {
            c.bump();
            if matches!(c.peek(), Some(ch) if ch == '$' || is_var_char(ch)) {
                return Err(format!(
                    "only '$' (the document) and '@' (the element) can start a path inside a filter, at '{}'",
                    c.rest()
                ));
            }
            Ok(Operand::Root(parse_segments(c, true)?))
        }
        Some('\'') | Some('"') => Ok(Operand::Literal(Value::String(parse_quoted(c)?))),
        _ => {
            let start = c.pos;
            while let Some(ch) = c.peek() {
                if ch.is_whitespace()
                    || matches!(
                        ch,
                        ')' | '(' | '=' | '!' | '<' | '>' | '&' | '|' | ']' | '['
                    )
                {
                    break;
                }
                c.bump();
            }
            let tok = &c.s[start..c.pos];
            if tok.is_empty() {
                return Err(format!("expected a value in the filter at '{}'", c.rest()));
            }
            // numbers, true, false and null are JSON literals; any other bare word is a
            // string, as AWS's JSONPath reads `[?(@.code==es)]`
            let v = match serde_json::from_str::<Value>(tok) {
                Ok(v @ (Value::Number(_) | Value::Bool(_) | Value::Null)) => v,
                _ if tok.starts_with(|ch: char| ch.is_ascii_digit() || ch == '-' || ch == '+')
                    && tok.chars().all(|ch| {
                        ch.is_ascii_digit() || matches!(ch, '-' | '+' | '.' | 'e' | 'E')
                    }) =>
                {
                    return Err(format!("bad number '{tok}' in filter"));
                }
                _ => Value::String(tok.to_string()),
            };
            Ok(Operand::Literal(v))
        }
    }
}

fn parse_filter_atom(c: &mut Cursor<'_>) -> Result<Filter, String> {
    c.skip_ws();
    if c.peek() == Some('!') && c.peek_at(1) != Some('=') {
        c.bump();
        return Ok(Filter::Not(Box::new(parse_filter_atom(c)?)));
    }
    if c.eat('(') {
        let f = parse_filter_or(c)?;
        c.skip_ws();
        if !c.eat(')') {
            return Err("expected ')'".into());
        }
        return Ok(f);
    }
    let left = parse_operand(c)?;
    c.skip_ws();
    let rest = c.rest();
    let op = [
        ("==", CmpOp::Eq),
        ("!=", CmpOp::Ne),
        ("<=", CmpOp::Le),
        (">=", CmpOp::Ge),
        ("<", CmpOp::Lt),
        (">", CmpOp::Gt),
    ]
    .iter()
    .find(|(t, _)| rest.starts_with(t));
    match op {
        Some((t, op)) => {
            c.pos += t.len();
            let right = parse_operand(c)?;
            Ok(Filter::Cmp(left, *op, right))
        }
        None => match left {
            Operand::Current(s) => Ok(Filter::Exists(s)),
            o @ Operand::Root(_) => Ok(Filter::RootExists(o)),
            Operand::Literal(_) => Err("a filter needs a comparison".into()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn definite_and_indefinite() {
        let v = json!({"a": {"b": [1, 2, {"c": 3}]}, "x-y": 1});
        let p = JsonPath::parse("$.a.b[2].c").unwrap();
        assert_eq!(p.lookup(&v), Some(&json!(3)));
        assert_eq!(
            JsonPath::parse("$.x-y").unwrap().lookup(&v),
            Some(&json!(1))
        );
        let w = JsonPath::parse("$.a.b[*]").unwrap();
        assert_eq!(w.select(&v), Some(json!([1, 2, {"c": 3}])));
        let s = JsonPath::parse("$.a.b[1:]").unwrap();
        assert_eq!(s.select(&v), Some(json!([2, {"c": 3}])));
        let none = JsonPath::parse("$.q[*].z").unwrap();
        assert_eq!(none.select(&v), Some(json!([])));
        let f = JsonPath::parse("$.a.b[?(@.c == 3)]").unwrap();
        assert_eq!(f.select(&v), Some(json!([{"c": 3}])));
        let d = JsonPath::parse("$..c").unwrap();
        assert_eq!(d.select(&v), Some(json!([3])));
        assert_eq!(
            JsonPath::parse("$['a']['b'][0]").unwrap().lookup(&v),
            Some(&json!(1))
        );
    }

    #[test]
    fn roots_and_errors() {
        assert_eq!(
            JsonPath::parse("$$.Execution").unwrap().root(),
            &Root::Context
        );
        assert_eq!(
            JsonPath::parse("$foo.bar").unwrap().root(),
            &Root::Variable("foo".into())
        );
        assert!(JsonPath::parse("a.b").is_err());
        assert!(JsonPath::parse("$.a[").is_err());
        assert!(JsonPath::parse("$.").is_err());
        assert_eq!(
            JsonPath::parse("$.a.b").unwrap().normalized(),
            "$['a']['b']"
        );
    }

    #[test]
    fn set_reference_path() {
        let mut v = json!({"a": 1});
        JsonPath::parse("$.b.c")
            .unwrap()
            .set(&mut v, json!(2))
            .unwrap();
        assert_eq!(v, json!({"a": 1, "b": {"c": 2}}));
        let mut s = json!("x");
        assert!(JsonPath::parse("$.b")
            .unwrap()
            .set(&mut s, json!(2))
            .is_err());
    }
}

#[cfg(test)]
mod filter_tests {
    use super::*;
    use serde_json::json;

    fn sel(path: &str, v: &Value) -> Value {
        JsonPath::parse(path)
            .unwrap_or_else(|e| panic!("{e}"))
            .select(v)
            .unwrap_or(Value::Null)
    }

    #[test]
    fn bare_word_literals_are_strings() {
        let v = json!({"t": [{"TargetLanguageCode": "es", "n": 1}, {"TargetLanguageCode": "fr", "n": 2}]});
        assert_eq!(
            sel("$.t[?(@.TargetLanguageCode==es)]", &v),
            json!([{"TargetLanguageCode": "es", "n": 1}])
        );
        // variants: !=, spaces, nested path, bare word on the left, hyphenated word
        assert_eq!(sel("$.t[?(@.TargetLanguageCode != es)].n", &v), json!([2]));
        assert_eq!(
            sel("$.t[?( fr == @.TargetLanguageCode )].n", &v),
            json!([2])
        );
        let w = json!({"a": {"b": [{"c": {"d": "en-US"}}, {"c": {"d": "x"}}]}});
        assert_eq!(sel("$.a.b[?(@.c.d==en-US)].c.d", &w), json!(["en-US"]));
        // numbers, booleans and null keep their JSON meaning
        assert_eq!(sel("$.t[?(@.n==2)].n", &v), json!([2]));
        assert!(JsonPath::parse("$.t[?(@.n==1.2.3)]").is_err());
        assert!(JsonPath::parse("$.t[?(@.n==)]").is_err());
    }

    #[test]
    fn dollar_operands_read_the_queried_document() {
        let v = json!({
            "agent_id": "w2",
            "approaches": [{"workerId": "w1"}, {"workerId": "w2"}, {"workerId": "w3"}]
        });
        assert_eq!(
            sel("$.approaches[?(@.workerId == $.agent_id)]", &v),
            json!([{"workerId": "w2"}])
        );
        // variants: on the left, with !=, bracket notation, existence
        assert_eq!(
            sel("$.approaches[?($['agent_id'] != @.workerId)].workerId", &v),
            json!(["w1", "w3"])
        );
        assert_eq!(
            sel("$.approaches[?($.agent_id)].workerId", &v)
                .as_array()
                .map(Vec::len),
            Some(3)
        );
        assert_eq!(sel("$.approaches[?($.nope)]", &v), json!([]));
        assert!(JsonPath::parse("$.a[?(@.x == $$.Execution.Id)]").is_err());
    }

    #[test]
    fn nested_dollar_filters_stay_linear() {
        // each `$` operand is computed once per select, so nesting does not multiply work
        let items: Vec<Value> = (0..3000).map(|i| json!({"k": i})).collect();
        let v = json!({"items": items, "want": 2999});
        let mut p = String::from("$.want");
        for _ in 0..20 {
            p = format!("$.items[?(@.k == {p})].k");
        }
        // the innermost returns [2999]; arrays never equal numbers, so the outer ones are empty
        let path = format!("$.items[?(@.k == {})]", "$.want");
        assert_eq!(sel(&path, &v), json!([{"k": 2999}]));
        let t = std::time::Instant::now();
        let _ = JsonPath::parse(&p).map(|jp| jp.select(&v));
        assert!(t.elapsed() < std::time::Duration::from_secs(5));
    }
}
