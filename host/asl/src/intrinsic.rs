//! Intrinsic functions (`States.Format(...)`, `States.Array(...)`, ...): the parser for the
//! call syntax used in `.$` fields and the evaluator with AWS's argument checks. Failures are
//! `States.IntrinsicFailure` errors (path lookups that find nothing are `States.Runtime`).

use crate::env::Env;
use crate::error::{names, StateError};
use crate::jsonpath::{type_name, JsonPath};
use base64::Engine as _;
use serde_json::{Map, Number, Value};

/// Names of the supported functions (without the `States.` prefix).
pub const FUNCTIONS: &[&str] = &[
    "Format",
    "StringToJson",
    "JsonToString",
    "Array",
    "ArrayPartition",
    "ArrayContains",
    "ArrayRange",
    "ArrayGetItem",
    "ArrayLength",
    "ArrayUnique",
    "Base64Encode",
    "Base64Decode",
    "Hash",
    "JsonMerge",
    "MathRandom",
    "MathAdd",
    "StringSplit",
    "UUID",
];

/// A parsed argument.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    /// A literal (string, number, boolean, null). Strings keep their raw text for Format.
    Literal(Value, Option<String>),
    /// A path (`$.x`, `$$.x`, `$var`).
    Path(JsonPath),
    /// A nested call.
    Call(Box<Call>),
}

/// A parsed call `States.Name(args...)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// Function name without `States.`.
    pub name: String,
    /// Arguments.
    pub args: Vec<Arg>,
}

/// True when a string looks like an intrinsic call.
pub fn looks_like_call(s: &str) -> bool {
    s.trim_start().starts_with("States.")
}

struct P<'a> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
}

impl P<'_> {
    fn ws(&mut self) {
        while self.i < self.b.len() && self.b[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }
}

/// Parses an intrinsic function call.
pub fn parse(text: &str) -> Result<Call, String> {
    let depth = max_depth(text);
    if depth > 32 {
        return Err(format!(
            "the intrinsic function call is nested too deeply ({depth} levels)"
        ));
    }
    let mut p = P {
        s: text,
        b: text.as_bytes(),
        i: 0,
    };
    p.ws();
    let call = parse_call(&mut p)?;
    p.ws();
    if p.i != p.b.len() {
        return Err(format!(
            "unexpected text after the call: '{}'",
            &text[p.i..]
        ));
    }
    Ok(call)
}

/// Parenthesis nesting depth outside string literals.
fn max_depth(text: &str) -> usize {
    let (mut d, mut max, mut in_str, mut esc) = (0usize, 0usize, false, false);
    for c in text.chars() {
        if in_str {
            if esc {
                esc = false;
            } else if c == '\\' {
                esc = true;
            } else if c == '\'' {
                in_str = false;
            }
            continue;
        }
        match c {
            '\'' => in_str = true,
            '(' => {
                d += 1;
                max = max.max(d);
            }
            ')' => d = d.saturating_sub(1),
            _ => {}
        }
    }
    max
}

fn parse_call(p: &mut P<'_>) -> Result<Call, String> {
    if !p.s[p.i..].starts_with("States.") {
        return Err("an intrinsic function must start with 'States.'".into());
    }
    p.i += 7;
    let start = p.i;
    while p.i < p.b.len() && (p.b[p.i] as char).is_ascii_alphanumeric() {
        p.i += 1;
    }
    let name = p.s[start..p.i].to_string();
    if !FUNCTIONS.contains(&name.as_str()) {
        return Err(format!("unknown intrinsic function 'States.{name}'"));
    }
    p.ws();
    if p.b.get(p.i) != Some(&b'(') {
        return Err(format!("expected '(' after 'States.{name}'"));
    }
    p.i += 1;
    let mut args = Vec::new();
    p.ws();
    if p.b.get(p.i) == Some(&b')') {
        p.i += 1;
    } else {
        loop {
            p.ws();
            args.push(parse_arg(p)?);
            p.ws();
            match p.b.get(p.i) {
                Some(b',') => p.i += 1,
                Some(b')') => {
                    p.i += 1;
                    break;
                }
                _ => return Err(format!("expected ',' or ')' in 'States.{name}' arguments")),
            }
        }
    }
    let call = Call { name, args };
    check_arity(&call)?;
    Ok(call)
}

fn check_arity(c: &Call) -> Result<(), String> {
    let n = c.args.len();
    let ok = match c.name.as_str() {
        "Format" => n >= 1,
        "Array" => true,
        "UUID" => n == 0,
        "StringToJson" | "JsonToString" | "ArrayLength" | "ArrayUnique" | "Base64Encode"
        | "Base64Decode" => n == 1,
        "ArrayPartition" | "ArrayContains" | "ArrayGetItem" | "Hash" | "MathAdd"
        | "StringSplit" => n == 2,
        "ArrayRange" | "JsonMerge" => n == 3,
        "MathRandom" => n == 2 || n == 3,
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("'States.{}' does not take {n} argument(s)", c.name))
    }
}

fn parse_arg(p: &mut P<'_>) -> Result<Arg, String> {
    match p.b.get(p.i) {
        None => Err("missing argument".into()),
        Some(b'\'') => {
            p.i += 1;
            let start = p.i;
            let mut val = String::new();
            loop {
                let Some(ch) = p.s[p.i..].chars().next() else {
                    return Err("unterminated string literal".into());
                };
                p.i += ch.len_utf8();
                match ch {
                    '\\' => {
                        let Some(n) = p.s[p.i..].chars().next() else {
                            return Err("unterminated string literal".into());
                        };
                        // AWS's reserved characters: only \', \{, \} and \\ are escapes
                        if !matches!(n, '\'' | '{' | '}' | '\\') {
                            return Err(format!(
                                "illegal escape '\\{n}' in a string literal (only \\', \\{{, \\}} and \\\\ are escapes)"
                            ));
                        }
                        p.i += n.len_utf8();
                        val.push(n);
                    }
                    '\'' => break,
                    c => val.push(c),
                }
            }
            let raw = p.s[start..p.i - 1].to_string();
            Ok(Arg::Literal(Value::String(val), Some(raw)))
        }
        Some(b'$') => {
            let start = p.i;
            let mut depth = 0i32;
            let mut quote: Option<u8> = None;
            while p.i < p.b.len() {
                let c = p.b[p.i];
                if let Some(q) = quote {
                    if c == q {
                        quote = None;
                    }
                } else {
                    match c {
                        b'\'' | b'"' => quote = Some(c),
                        b'[' | b'(' => depth += 1,
                        b']' => depth -= 1,
                        b')' if depth == 0 => break,
                        b')' => depth -= 1,
                        b',' if depth == 0 => break,
                        _ => {}
                    }
                }
                p.i += 1;
            }
            let text = p.s[start..p.i].trim_end();
            JsonPath::parse(text)
                .map(Arg::Path)
                .map_err(|e| e.to_string())
        }
        Some(b'S') => Ok(Arg::Call(Box::new(parse_call(p)?))),
        Some(_) => {
            let start = p.i;
            while p.i < p.b.len() && !matches!(p.b[p.i], b',' | b')') {
                p.i += 1;
            }
            let tok = p.s[start..p.i].trim();
            match serde_json::from_str::<Value>(tok) {
                Ok(v @ (Value::Number(_) | Value::Bool(_) | Value::Null)) => {
                    Ok(Arg::Literal(v, None))
                }
                _ => Err(format!("invalid argument '{tok}'")),
            }
        }
    }
}

fn fail(msg: impl Into<String>) -> StateError {
    StateError::new(names::INTRINSIC_FAILURE, msg)
}

fn eval_arg(a: &Arg, env: &Env<'_>) -> Result<Value, StateError> {
    match a {
        Arg::Literal(v, _) => Ok(v.clone()),
        Arg::Path(p) => env.select_or_fail(p).map(|c| c.into_owned()),
        Arg::Call(c) => eval(c, env),
    }
}

fn as_int(v: &Value, f: &str, what: &str) -> Result<i64, StateError> {
    match v {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Ok(i)
            } else {
                let x = n.as_f64().unwrap_or(f64::NAN).round();
                if x.is_finite() && x.abs() < 9.0e15 {
                    Ok(x as i64)
                } else {
                    Err(fail(format!(
                        "States.{f}: the {what} argument must be an integer, got {v}"
                    )))
                }
            }
        }
        _ => Err(fail(format!(
            "States.{f}: the {what} argument must be an integer, got {}",
            type_name(v)
        ))),
    }
}

fn java_round(x: f64) -> i64 {
    (x + 0.5).floor() as i64
}

fn as_num(v: &Value, f: &str) -> Result<f64, StateError> {
    v.as_f64().ok_or_else(|| {
        fail(format!(
            "States.{f}: expected a number, got {}",
            type_name(v)
        ))
    })
}

fn as_array<'v>(v: &'v Value, f: &str) -> Result<&'v Vec<Value>, StateError> {
    v.as_array().ok_or_else(|| {
        fail(format!(
            "States.{f}: expected an array, got {}",
            type_name(v)
        ))
    })
}

fn as_str<'v>(v: &'v Value, f: &str) -> Result<&'v str, StateError> {
    v.as_str().ok_or_else(|| {
        fail(format!(
            "States.{f}: expected a string, got {}",
            type_name(v)
        ))
    })
}

/// Renders a value the way AWS does inside `States.Format` (Java's `toString` for
/// objects and arrays, raw text for strings).
pub fn format_value(v: &Value, out: &mut String) {
    match v {
        Value::String(s) => out.push_str(s),
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                format_value(x, out);
            }
            out.push(']');
        }
        Value::Object(o) => {
            out.push('{');
            for (i, (k, x)) in o.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(k);
                out.push('=');
                format_value(x, out);
            }
            out.push('}');
        }
    }
}

/// A text that two values share exactly when [`json_eq`] holds: numbers by their `f64`
/// value, object keys sorted.
fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or(0.0);
            // 0.0 and -0.0 compare equal
            let x = if x == 0.0 { 0.0 } else { x };
            out.push_str(&format!("n{:x}", x.to_bits()));
        }
        Value::Array(a) => {
            out.push('[');
            for x in a {
                canonical(x, out);
                out.push(',');
            }
            out.push(']');
        }
        Value::Object(o) => {
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort();
            out.push('{');
            for k in keys {
                out.push_str(&serde_json::to_string(k).unwrap_or_default());
                out.push(':');
                if let Some(x) = o.get(k) {
                    canonical(x, out);
                }
                out.push(',');
            }
            out.push('}');
        }
        other => out.push_str(&other.to_string()),
    }
}

fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

fn num_value(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        Value::from(x as i64)
    } else {
        Number::from_f64(x)
            .map(Value::Number)
            .unwrap_or(Value::Null)
    }
}

struct SplitMix(u64);
impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// serde reads the integer literal `-0` as the float `-0.0`; Java (AWS) reads it as the
/// integer 0. Integers written without a fraction stay integers.
fn normalize_neg_zero(v: Value) -> Value {
    match v {
        Value::Number(n) if n.as_f64() == Some(0.0) && n.is_f64() && n.to_string() == "-0.0" => {
            Value::from(0)
        }
        Value::Array(a) => Value::Array(a.into_iter().map(normalize_neg_zero).collect()),
        Value::Object(o) => Value::Object(
            o.into_iter()
                .map(|(k, x)| (k, normalize_neg_zero(x)))
                .collect(),
        ),
        other => other,
    }
}

/// Evaluates a call.
pub fn eval(c: &Call, env: &Env<'_>) -> Result<Value, StateError> {
    use crate::limits::{json_size, MAX_INTERMEDIATE_BYTES};
    let f = c.name.as_str();
    let mut args = Vec::with_capacity(c.args.len());
    // the arguments after the first (copies of input values, possibly the same one many
    // times) are bounded, and with them every result built from them
    let mut budget = MAX_INTERMEDIATE_BYTES;
    for (i, a) in c.args.iter().enumerate() {
        let v = eval_arg(a, env)?;
        if i == 0 {
            // one argument alone is one copy of one value, whatever its size
            args.push(v);
            continue;
        }
        match json_size(&v, budget) {
            Ok(n) => budget -= n,
            Err(_) => {
                return Err(fail(format!(
                    "States.{f}: the arguments exceed {MAX_INTERMEDIATE_BYTES} bytes"
                )))
            }
        }
        args.push(v);
    }
    match f {
        "Format" => {
            let template: String = match &c.args[0] {
                Arg::Literal(_, Some(raw)) => raw.clone(),
                _ => as_str(&args[0], f)?.to_string(),
            };
            let mut out = String::new();
            let mut chars = template.chars().peekable();
            let mut next_arg = 1usize;
            while let Some(ch) = chars.next() {
                match ch {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            out.push(n);
                        }
                    }
                    '{' if chars.peek() == Some(&'}') => {
                        chars.next();
                        let Some(v) = args.get(next_arg) else {
                            return Err(fail(
                                "States.Format: the template has more placeholders than arguments",
                            ));
                        };
                        format_value(v, &mut out);
                        next_arg += 1;
                    }
                    c => out.push(c),
                }
            }
            if next_arg != args.len() {
                return Err(fail(
                    "States.Format: the number of arguments does not match the placeholders",
                ));
            }
            Ok(Value::String(out))
        }
        "StringToJson" => {
            let s = as_str(&args[0], f)?;
            if s.trim().is_empty() {
                return Ok(Value::Null);
            }
            let v: Value = serde_json::from_str(s)
                .map_err(|e| fail(format!("States.StringToJson: invalid JSON '{s}': {e}")))?;
            Ok(normalize_neg_zero(v))
        }
        "JsonToString" => Ok(Value::String(
            serde_json::to_string(&args[0]).unwrap_or_default(),
        )),
        "Array" => Ok(Value::Array(args)),
        "ArrayPartition" => {
            let arr = as_array(&args[0], f)?;
            let size = as_int(&args[1], f, "chunk size")?;
            if size <= 0 {
                return Err(fail(
                    "States.ArrayPartition: the chunk size must be a positive integer",
                ));
            }
            Ok(Value::Array(
                arr.chunks(size as usize)
                    .map(|c| Value::Array(c.to_vec()))
                    .collect(),
            ))
        }
        "ArrayContains" => {
            let arr = as_array(&args[0], f)?;
            Ok(Value::Bool(arr.iter().any(|x| json_eq(x, &args[1]))))
        }
        "ArrayRange" => {
            let start = as_int(&args[0], f, "start")?;
            let end = as_int(&args[1], f, "end")?;
            let step = as_int(&args[2], f, "step")?;
            if step == 0 {
                return Err(fail("States.ArrayRange: the step must not be 0"));
            }
            let mut out = Vec::new();
            let mut i = start;
            while (step > 0 && i <= end) || (step < 0 && i >= end) {
                out.push(Value::from(i));
                if out.len() > 1000 {
                    return Err(fail(
                        "States.ArrayRange: the result would have more than 1000 items",
                    ));
                }
                match i.checked_add(step) {
                    Some(n) => i = n,
                    None => break,
                }
            }
            Ok(Value::Array(out))
        }
        "ArrayGetItem" => {
            let arr = as_array(&args[0], f)?;
            let idx = as_int(&args[1], f, "index")?;
            if idx < 0 || idx as usize >= arr.len() {
                return Err(fail(format!(
                    "States.ArrayGetItem: index {idx} is out of bounds for an array of length {}",
                    arr.len()
                )));
            }
            Ok(arr[idx as usize].clone())
        }
        "ArrayLength" => Ok(Value::from(as_array(&args[0], f)?.len())),
        "ArrayUnique" => {
            let arr = as_array(&args[0], f)?;
            // one pass with a set of canonical keys (equal exactly when `json_eq` says so),
            // not a comparison of every pair
            let mut seen = std::collections::HashSet::with_capacity(arr.len());
            let mut out: Vec<Value> = Vec::new();
            for x in arr {
                let mut key = String::new();
                canonical(x, &mut key);
                if seen.insert(key) {
                    out.push(x.clone());
                }
            }
            Ok(Value::Array(out))
        }
        "Base64Encode" => {
            let s = as_str(&args[0], f)?;
            if s.len() > 10_000 {
                return Err(fail(
                    "States.Base64Encode: the input exceeds 10000 characters",
                ));
            }
            Ok(Value::String(
                base64::engine::general_purpose::STANDARD.encode(s.as_bytes()),
            ))
        }
        "Base64Decode" => {
            let s = as_str(&args[0], f)?;
            if s.len() > 10_000 {
                return Err(fail(
                    "States.Base64Decode: the input exceeds 10000 characters",
                ));
            }
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(s.as_bytes())
                .map_err(|e| fail(format!("States.Base64Decode: invalid base64 '{s}': {e}")))?;
            Ok(Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        }
        "Hash" => {
            let data = match &args[0] {
                Value::String(s) => s.clone(),
                Value::Null => return Err(fail("States.Hash: the data argument must not be null")),
                other => serde_json::to_string(other).unwrap_or_default(),
            };
            if data.len() > 10_000 {
                return Err(fail("States.Hash: the input exceeds 10000 characters"));
            }
            let alg = as_str(&args[1], f)?;
            Ok(Value::String(hash_hex(alg, data.as_bytes())?))
        }
        "JsonMerge" => {
            let (Value::Object(a), Value::Object(b)) = (&args[0], &args[1]) else {
                return Err(fail(
                    "States.JsonMerge: both arguments must be JSON objects",
                ));
            };
            match &args[2] {
                Value::Bool(false) => {}
                Value::Bool(true) => {
                    return Err(fail(
                        "States.JsonMerge: only shallow merge is supported (the third argument must be false)",
                    ))
                }
                _ => return Err(fail("States.JsonMerge: the third argument must be a boolean")),
            }
            let mut m: Map<String, Value> = a.clone();
            for (k, v) in b {
                m.insert(k.clone(), v.clone());
            }
            Ok(Value::Object(m))
        }
        "MathRandom" => {
            let start = java_round(as_num(&args[0], f)?);
            let end = java_round(as_num(&args[1], f)?);
            if end <= start {
                return Err(fail(
                    "States.MathRandom: the end must be greater than the start",
                ));
            }
            let seed = match args.get(2) {
                Some(s) => as_int(s, f, "seed")? as u64,
                None => crate::entropy::next_u64(),
            };
            let mut rng = SplitMix(seed);
            let span = (end as i128 - start as i128) as u128;
            let pick = (rng.next() as u128) % span;
            Ok(Value::from((start as i128 + pick as i128) as i64))
        }
        "MathAdd" => {
            let a = java_round(as_num(&args[0], f)?);
            let b = java_round(as_num(&args[1], f)?);
            Ok(Value::from(a.saturating_add(b)))
        }
        "StringSplit" => {
            let s = as_str(&args[0], f)?;
            let d = as_str(&args[1], f)?;
            let parts: Vec<Value> = s
                .split(|c: char| d.contains(c))
                .filter(|p| !p.is_empty())
                .map(|p| Value::String(p.to_string()))
                .collect();
            Ok(Value::Array(parts))
        }
        "UUID" => Ok(Value::String(crate::entropy::uuid_v4().to_string())),
        _ => Err(fail(format!("unknown intrinsic function 'States.{f}'"))),
    }
}

pub(crate) fn hash_hex(alg: &str, data: &[u8]) -> Result<String, StateError> {
    use sha2::Digest;
    let bytes: Vec<u8> = match alg {
        "MD5" => md5::Md5::digest(data).to_vec(),
        "SHA-1" => sha1::Sha1::digest(data).to_vec(),
        "SHA-256" => sha2::Sha256::digest(data).to_vec(),
        "SHA-384" => sha2::Sha384::digest(data).to_vec(),
        "SHA-512" => sha2::Sha512::digest(data).to_vec(),
        other => {
            return Err(fail(format!(
            "States.Hash: unsupported algorithm '{other}' (MD5, SHA-1, SHA-256, SHA-384, SHA-512)"
        )))
        }
    };
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    Ok(s)
}

/// One draw of the seeded generator used by `States.MathRandom` and JSONata `$random`.
pub(crate) fn random_u64(seed: u64) -> u64 {
    SplitMix(seed).next()
}

/// Rounds like `num_value` for callers that build numbers.
pub(crate) fn number(x: f64) -> Value {
    num_value(x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::{Context, ExecutionInfo, Variables};
    use serde_json::json;

    fn run(expr: &str, input: Value) -> Result<Value, StateError> {
        let exec = ExecutionInfo {
            execution: json!({}),
            state_machine: json!({"Name": "a-b-c"}),
        };
        let ctx = Context::new(&exec, "S", 0);
        let vars = Variables::new();
        let env = Env {
            input: &input,
            ctx: &ctx,
            vars: &vars,
        };
        eval(&parse(expr).map_err(|e| StateError::new("parse", e))?, &env)
    }

    #[test]
    fn functions() {
        assert_eq!(
            run(
                "States.Format('a {} b \\{\\} {}', $.x, 3)",
                json!({"x": "X"})
            )
            .unwrap(),
            json!("a X b {} 3")
        );
        assert_eq!(
            run("States.MathAdd(-1.5, -1.51)", json!({})).unwrap(),
            json!(-3)
        );
        assert_eq!(
            run("States.StringSplit(', , ,', ',')", json!({})).unwrap(),
            json!([" ", " "])
        );
        assert_eq!(
            run("States.ArrayRange(1, 9, 9)", json!({})).unwrap(),
            json!([1])
        );
        assert_eq!(
            run("States.Hash('input data', 'MD5')", json!({})).unwrap(),
            json!("812f45842bc6d66ee14572ce20db8e86")
        );
        assert_eq!(
            run(
                "States.ArrayGetItem(States.StringSplit($$.StateMachine.Name, '-'), 2)",
                json!({})
            )
            .unwrap(),
            json!("c")
        );
        assert!(run("States.ArrayGetItem(States.Array(1), 5)", json!({})).is_err());
        assert!(parse("States.Nope(1)").is_err());
        assert!(parse("States.UUID(1)").is_err());
    }
}

#[cfg(test)]
mod escape_tests {
    use super::parse;

    #[test]
    fn only_reserved_characters_escape() {
        assert!(parse(r"States.Format('a\\b \' \{\}')").is_ok());
        let e = parse(r"States.Format('a\qb')").unwrap_err();
        assert!(e.contains("illegal escape '\\q'"), "{e}");
        assert!(parse(r"States.Array('x\n')").is_err());
        assert!(parse(r"States.StringSplit($.a, '\t')").is_err());
    }
}
