//! JSONata support for `"QueryLanguage": "JSONata"` states: recognising `{% ... %}` strings,
//! compiling them with the `jsonata-rs` crate, binding `$states` and the workflow variables,
//! adding the functions AWS provides on top of JSONata (`$parse`, `$partition`, `$range`,
//! `$hash`, `$uuid`) and converting results back to `serde_json` values. A crate panic is
//! caught and reported as an evaluation error, never propagated.

use crate::env::Variables;
use bumpalo::Bump;
use jsonata_rs::{ArrayFlags, FunctionContext, JsonAta, Value as JValue};
use serde_json::Value;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// A `{% expr %}` string's inner expression, syntax-checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    /// Expression text between the delimiters, trimmed.
    pub text: String,
}

/// If `s` is a `{% ... %}` expression, returns its trimmed inner text.
pub fn expression_text(s: &str) -> Option<&str> {
    let t = s.strip_prefix("{%")?.strip_suffix("%}")?;
    Some(t.trim())
}

/// Compiles (syntax checks) an expression.
pub fn compile(text: &str) -> Result<Expr, String> {
    if text.is_empty() {
        return Err("empty JSONata expression".into());
    }
    if nesting(text) > 100 {
        return Err(format!(
            "the JSONata expression '{text}' is nested too deeply"
        ));
    }
    let arena = Bump::new();
    let r = catch_unwind(AssertUnwindSafe(|| {
        JsonAta::new(text, &arena)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }));
    match r {
        Ok(Ok(())) => Ok(Expr {
            text: text.to_string(),
        }),
        Ok(Err(e)) => Err(format!("invalid JSONata expression '{text}': {e}")),
        Err(_) => Err(format!("invalid JSONata expression '{text}'")),
    }
}

/// Bracket nesting depth (outside string literals), bounding the parser's recursion.
fn nesting(text: &str) -> usize {
    let (mut d, mut max) = (0usize, 0usize);
    let mut quote: Option<char> = None;
    let mut esc = false;
    for c in text.chars() {
        if let Some(q) = quote {
            if esc {
                esc = false;
            } else if c == '\\' {
                esc = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' => quote = Some(c),
            '(' | '[' | '{' => {
                d += 1;
                max = max.max(d);
            }
            ')' | ']' | '}' => d = d.saturating_sub(1),
            _ => {}
        }
    }
    max
}

fn to_j<'a>(arena: &'a Bump, v: &Value) -> &'a JValue<'a> {
    match v {
        Value::Null => JValue::null(arena),
        Value::Bool(b) => JValue::bool(*b),
        Value::Number(n) => JValue::number(arena, n.as_f64().unwrap_or(0.0)),
        Value::String(s) => JValue::string(arena, s),
        Value::Array(a) => {
            let arr = JValue::array_with_capacity(arena, a.len(), ArrayFlags::empty());
            for x in a {
                arr.push(to_j(arena, x));
            }
            arr
        }
        Value::Object(o) => {
            let obj = JValue::object_with_capacity(arena, o.len());
            for (k, x) in o {
                obj.insert(k, to_j(arena, x));
            }
            obj
        }
    }
}

/// Converts a JSONata value; `None` for undefined (and for functions).
fn from_j<'a>(v: &'a JValue<'a>) -> Option<Value> {
    Some(match v {
        JValue::Undefined => return None,
        JValue::Null => Value::Null,
        JValue::Bool(b) => Value::Bool(*b),
        JValue::Number(n) => crate::intrinsic::number(*n),
        JValue::String(s) => Value::String(s.to_string()),
        JValue::Array(..) | JValue::Range(_) => {
            let mut out = Vec::new();
            for m in v.members() {
                if let Some(x) = from_j(m) {
                    out.push(x);
                }
            }
            Value::Array(out)
        }
        JValue::Object(o) => {
            // the crate's objects are hash maps: their order changes from one evaluation to the
            // next, so keys are sorted (a replayed run must print what the recorded one did)
            let mut entries: Vec<_> = o.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            let mut m = serde_json::Map::new();
            for (k, x) in entries {
                if let Some(x) = from_j(x) {
                    m.insert(k.to_string(), x);
                }
            }
            Value::Object(m)
        }
        _ => return None,
    })
}

fn fn_parse<'a>(
    ctx: FunctionContext<'a, '_>,
    args: &[&'a JValue<'a>],
) -> jsonata_rs::Result<&'a JValue<'a>> {
    let Some(a) = args.first() else {
        return Ok(JValue::undefined());
    };
    if !a.is_string() {
        return Ok(JValue::undefined());
    }
    match serde_json::from_str::<Value>(&a.as_str()) {
        Ok(v) => Ok(to_j(ctx.arena, &v)),
        Err(_) => Ok(JValue::undefined()),
    }
}

fn fn_uuid<'a>(
    ctx: FunctionContext<'a, '_>,
    _args: &[&'a JValue<'a>],
) -> jsonata_rs::Result<&'a JValue<'a>> {
    Ok(JValue::string(
        ctx.arena,
        &crate::entropy::uuid_v4().to_string(),
    ))
}

fn fn_partition<'a>(
    ctx: FunctionContext<'a, '_>,
    args: &[&'a JValue<'a>],
) -> jsonata_rs::Result<&'a JValue<'a>> {
    let (Some(a), Some(n)) = (args.first(), args.get(1)) else {
        return Ok(JValue::undefined());
    };
    let size = n.as_f64();
    if size.is_nan() || size < 1.0 {
        return Ok(JValue::undefined());
    }
    let items: Vec<&JValue<'a>> = a.members().collect();
    let out = JValue::array(ctx.arena, ArrayFlags::empty());
    for chunk in items.chunks(size as usize) {
        let c = JValue::array(ctx.arena, ArrayFlags::empty());
        for x in chunk {
            c.push(x);
        }
        out.push(c);
    }
    Ok(out)
}

fn fn_range<'a>(
    ctx: FunctionContext<'a, '_>,
    args: &[&'a JValue<'a>],
) -> jsonata_rs::Result<&'a JValue<'a>> {
    let (Some(s), Some(e), Some(st)) = (args.first(), args.get(1), args.get(2)) else {
        return Ok(JValue::undefined());
    };
    let (s, e, st) = (s.as_f64(), e.as_f64(), st.as_f64());
    let out = JValue::array(ctx.arena, ArrayFlags::empty());
    if st == 0.0 || !st.is_finite() {
        return Ok(out);
    }
    let mut i = s;
    let mut n = 0;
    while ((st > 0.0 && i <= e) || (st < 0.0 && i >= e)) && n <= 1000 {
        out.push(JValue::number(ctx.arena, i));
        i += st;
        n += 1;
    }
    Ok(out)
}

fn fn_hash<'a>(
    ctx: FunctionContext<'a, '_>,
    args: &[&'a JValue<'a>],
) -> jsonata_rs::Result<&'a JValue<'a>> {
    let (Some(d), Some(a)) = (args.first(), args.get(1)) else {
        return Ok(JValue::undefined());
    };
    if !d.is_string() || !a.is_string() {
        return Ok(JValue::undefined());
    }
    match crate::intrinsic::hash_hex(&a.as_str(), d.as_str().as_bytes()) {
        Ok(h) => Ok(JValue::string(ctx.arena, &h)),
        Err(_) => Ok(JValue::undefined()),
    }
}

fn fn_random<'a>(
    ctx: FunctionContext<'a, '_>,
    args: &[&'a JValue<'a>],
) -> jsonata_rs::Result<&'a JValue<'a>> {
    let seed = match args.first() {
        Some(s) if s.is_number() => s.as_f64() as i64 as u64,
        _ => crate::entropy::next_u64(),
    };
    let x = crate::intrinsic::random_u64(seed);
    Ok(JValue::number(
        ctx.arena,
        (x >> 11) as f64 / (1u64 << 53) as f64,
    ))
}

fn fn_type<'a>(
    ctx: FunctionContext<'a, '_>,
    args: &[&'a JValue<'a>],
) -> jsonata_rs::Result<&'a JValue<'a>> {
    let Some(v) = args.first() else {
        return Ok(JValue::undefined());
    };
    let t = match v {
        JValue::Undefined => return Ok(JValue::undefined()),
        JValue::Null => "null",
        JValue::Number(_) => "number",
        JValue::Bool(_) => "boolean",
        JValue::String(_) => "string",
        JValue::Array(..) | JValue::Range(_) => "array",
        JValue::Object(_) => "object",
        _ => "function",
    };
    Ok(JValue::string(ctx.arena, t))
}

fn fn_average<'a>(
    ctx: FunctionContext<'a, '_>,
    args: &[&'a JValue<'a>],
) -> jsonata_rs::Result<&'a JValue<'a>> {
    let Some(v) = args.first() else {
        return Ok(JValue::undefined());
    };
    let nums: Vec<f64> = if v.is_number() {
        vec![v.as_f64()]
    } else {
        v.members()
            .filter(|m| m.is_number())
            .map(|m| m.as_f64())
            .collect()
    };
    if nums.is_empty() {
        return Ok(JValue::undefined());
    }
    Ok(JValue::number(
        ctx.arena,
        nums.iter().sum::<f64>() / nums.len() as f64,
    ))
}

fn fn_format_base<'a>(
    ctx: FunctionContext<'a, '_>,
    args: &[&'a JValue<'a>],
) -> jsonata_rs::Result<&'a JValue<'a>> {
    let Some(v) = args.first().filter(|v| v.is_number()) else {
        return Ok(JValue::undefined());
    };
    let radix = args
        .get(1)
        .filter(|r| r.is_number())
        .map_or(10, |r| r.as_f64() as u32);
    if !(2..=36).contains(&radix) {
        return Ok(JValue::undefined());
    }
    let x = v.as_f64().round();
    let neg = x < 0.0;
    let mut n = x.abs().min(9.0e15) as u64;
    let mut digits = Vec::new();
    loop {
        let d = (n % radix as u64) as u32;
        digits.push(std::char::from_digit(d, radix).unwrap_or('0'));
        n /= radix as u64;
        if n == 0 {
            break;
        }
    }
    if neg {
        digits.push('-');
    }
    let s: String = digits.into_iter().rev().collect();
    Ok(JValue::string(ctx.arena, &s))
}

fn url_encode(s: &str, keep: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        let c = b as char;
        if c.is_ascii_alphanumeric() || keep.contains(c) {
            out.push(c);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn url_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let h = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(h, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

const URL_COMPONENT_KEEP: &str = "-_.!~*'()";
const URL_KEEP: &str = "-_.!~*'();/?:@&=+$,#";

fn str_fn<'a>(
    ctx: &FunctionContext<'a, '_>,
    args: &[&'a JValue<'a>],
    f: impl Fn(&str) -> Option<String>,
) -> &'a JValue<'a> {
    match args.first().filter(|v| v.is_string()) {
        Some(v) => match f(&v.as_str()) {
            Some(s) => JValue::string(ctx.arena, &s),
            None => JValue::undefined(),
        },
        None => JValue::undefined(),
    }
}

fn fn_encode_url_component<'a>(
    ctx: FunctionContext<'a, '_>,
    args: &[&'a JValue<'a>],
) -> jsonata_rs::Result<&'a JValue<'a>> {
    Ok(str_fn(&ctx, args, |s| {
        Some(url_encode(s, URL_COMPONENT_KEEP))
    }))
}

fn fn_encode_url<'a>(
    ctx: FunctionContext<'a, '_>,
    args: &[&'a JValue<'a>],
) -> jsonata_rs::Result<&'a JValue<'a>> {
    Ok(str_fn(&ctx, args, |s| Some(url_encode(s, URL_KEEP))))
}

fn fn_decode_url<'a>(
    ctx: FunctionContext<'a, '_>,
    args: &[&'a JValue<'a>],
) -> jsonata_rs::Result<&'a JValue<'a>> {
    Ok(str_fn(&ctx, args, url_decode))
}

fn fn_spread<'a>(
    ctx: FunctionContext<'a, '_>,
    args: &[&'a JValue<'a>],
) -> jsonata_rs::Result<&'a JValue<'a>> {
    let Some(v) = args.first() else {
        return Ok(JValue::undefined());
    };
    let out = JValue::array(ctx.arena, ArrayFlags::SEQUENCE);
    let objs: Vec<&JValue<'a>> = if v.is_object() {
        vec![*v]
    } else {
        v.members().collect()
    };
    for o in objs {
        if let JValue::Object(m) = o {
            for (k, x) in m.iter() {
                let one = JValue::object(ctx.arena);
                one.insert(k, x);
                out.push(one);
            }
        } else {
            out.push(o);
        }
    }
    Ok(out)
}

/// `$sift(object, function)`: the entries for which `function(value, key, object)` is truthy
/// (undefined when none), as JSONata defines it.
fn fn_sift<'a>(
    ctx: FunctionContext<'a, '_>,
    args: &[&'a JValue<'a>],
) -> jsonata_rs::Result<&'a JValue<'a>> {
    let (obj, func) = match args {
        [f] => (ctx.input, *f),
        [o, f, ..] => (*o, *f),
        [] => return Ok(JValue::undefined()),
    };
    if obj.is_undefined() || !obj.is_object() || !func.is_function() {
        return Ok(JValue::undefined());
    }
    let out = JValue::object(ctx.arena);
    let mut any = false;
    for (key, value) in obj.entries() {
        let k = JValue::string(ctx.arena, key);
        let arity = func.arity();
        let mut call: Vec<&'a JValue<'a>> = vec![value];
        if arity >= 2 {
            call.push(k);
        }
        if arity >= 3 {
            call.push(obj);
        }
        if ctx.evaluate_function(func, &call)?.is_truthy() {
            out.insert(key, value);
            any = true;
        }
    }
    Ok(if any { out } else { JValue::undefined() })
}

fn fn_shuffle<'a>(
    ctx: FunctionContext<'a, '_>,
    args: &[&'a JValue<'a>],
) -> jsonata_rs::Result<&'a JValue<'a>> {
    let Some(v) = args.first() else {
        return Ok(JValue::undefined());
    };
    let mut items: Vec<&JValue<'a>> = v.members().collect();
    let mut seed = crate::entropy::next_u64();
    for i in (1..items.len()).rev() {
        seed = crate::intrinsic::random_u64(seed);
        items.swap(i, (seed % (i as u64 + 1)) as usize);
    }
    let out = JValue::array(ctx.arena, ArrayFlags::empty());
    for x in items {
        out.push(x);
    }
    Ok(out)
}

/// `$formatNumber(n, picture)` for the common decimal pictures (`#,##0.00`, `0.000`,
/// `#%`): grouping separator, minimum integer digits, fixed/optional fraction digits.
fn fn_format_number<'a>(
    ctx: FunctionContext<'a, '_>,
    args: &[&'a JValue<'a>],
) -> jsonata_rs::Result<&'a JValue<'a>> {
    let (Some(v), Some(p)) = (args.first(), args.get(1)) else {
        return Ok(JValue::undefined());
    };
    if !v.is_number() || !p.is_string() {
        return Ok(JValue::undefined());
    }
    let pic = p.as_str().to_string();
    let mut x = v.as_f64();
    let percent = pic.ends_with('%');
    let core = pic.trim_end_matches('%');
    if percent {
        x *= 100.0;
    }
    let (ip, fp) = core.split_once('.').unwrap_or((core, ""));
    let min_frac = fp.chars().filter(|c| *c == '0').count();
    let max_frac = fp.chars().filter(|c| *c == '0' || *c == '#').count();
    let min_int = ip.chars().filter(|c| *c == '0').count().max(1);
    let group = ip.rfind(',').map(|i| {
        ip[i + 1..]
            .chars()
            .filter(|c| *c == '0' || *c == '#')
            .count()
    });
    let neg = x < 0.0;
    let s = format!("{:.*}", max_frac, x.abs());
    let (int_s, frac_s) = s.split_once('.').unwrap_or((&s, ""));
    let mut frac = frac_s.to_string();
    while frac.len() > min_frac && frac.ends_with('0') {
        frac.pop();
    }
    let mut int_digits = int_s.to_string();
    while int_digits.len() < min_int {
        int_digits.insert(0, '0');
    }
    if let Some(g) = group.filter(|g| *g > 0) {
        let chars: Vec<char> = int_digits.chars().collect();
        let mut out = String::new();
        for (i, c) in chars.iter().enumerate() {
            if i > 0 && (chars.len() - i).checked_rem(g) == Some(0) {
                out.push(',');
            }
            out.push(*c);
        }
        int_digits = out;
    }
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    out.push_str(&int_digits);
    if !frac.is_empty() {
        out.push('.');
        out.push_str(&frac);
    }
    if percent {
        out.push('%');
    }
    Ok(JValue::string(ctx.arena, &out))
}

/// Error text for a function-valued result (mapped to AWS's "unsupported result type").
pub const UNSUPPORTED: &str = "returned an unsupported result type.";

/// Names the crate binds as built-in functions.
const BUILTINS: &[&str] = &[
    "abs",
    "append",
    "assert",
    "boolean",
    "ceil",
    "contains",
    "count",
    "distinct",
    "each",
    "error",
    "exists",
    "fromMillis",
    "toMillis",
    "single",
    "filter",
    "floor",
    "join",
    "keys",
    "length",
    "lookup",
    "lowercase",
    "map",
    "match",
    "max",
    "merge",
    "min",
    "not",
    "now",
    "number",
    "pad",
    "power",
    "random",
    "reduce",
    "replace",
    "reverse",
    "round",
    "sort",
    "split",
    "sqrt",
    "string",
    "substring",
    "substringBefore",
    "substringAfter",
    "sum",
    "trim",
    "uppercase",
    "zip",
    "millis",
    "uuid",
];

/// Rewrites AWS's seeded `$random(seed)` (and LocalStack's `$randomSeeded`) and `$uuid()` to
/// the interpreter's own implementations (whose draws replay; see [`crate::entropy`]), since
/// the crate binds its built-ins last.
fn rewrite(text: &str) -> String {
    text.replace("$randomSeeded(", "$awsrandom(")
        .replace("$random(", "$awsrandom(")
        .replace("$uuid(", "$awsuuid(")
}

/// Evaluates an expression with `$states` bound to `states` and the variables bound by name.
/// `Ok(None)` means the expression returned nothing (undefined).
pub fn eval(expr: &Expr, states: &Value, vars: &Variables) -> Result<Option<Value>, String> {
    let arena = Bump::new();
    let r = catch_unwind(AssertUnwindSafe(|| -> Result<Option<Value>, String> {
        let mut text = rewrite(&expr.text);
        let mut shadowing = String::new();
        let all_vars = if vars.is_empty() {
            serde_json::Map::new()
        } else {
            vars.to_object()
        };
        for (k, v) in &all_vars {
            // the crate binds its built-ins after our variables; a variable named like one
            // (`$sum`, `$count`...) is declared inside the expression so it shadows it
            if BUILTINS.contains(&k.as_str()) && text.contains(&format!("${k}")) {
                shadowing.push_str(&format!("${k} := {}; ", v));
            }
        }
        if !shadowing.is_empty() {
            text = format!("( {shadowing}{text} )");
        }
        let j = JsonAta::new(&text, &arena).map_err(|e| e.to_string())?;
        for (k, v) in &all_vars {
            j.assign_var(k, to_j(&arena, v));
        }
        j.assign_var("states", to_j(&arena, states));
        j.register_function("parse", 1, fn_parse);
        j.register_function("awsuuid", 0, fn_uuid);
        j.register_function("partition", 2, fn_partition);
        j.register_function("range", 3, fn_range);
        j.register_function("hash", 2, fn_hash);
        j.register_function("awsrandom", 1, fn_random);
        j.register_function("type", 1, fn_type);
        j.register_function("average", 1, fn_average);
        j.register_function("formatBase", 2, fn_format_base);
        j.register_function("formatNumber", 2, fn_format_number);
        j.register_function("encodeUrlComponent", 1, fn_encode_url_component);
        j.register_function("encodeUrl", 1, fn_encode_url);
        j.register_function("decodeUrlComponent", 1, fn_decode_url);
        j.register_function("decodeUrl", 1, fn_decode_url);
        j.register_function("spread", 1, fn_spread);
        j.register_function("shuffle", 1, fn_shuffle);
        j.register_function("sift", 2, fn_sift);
        let out = j
            .evaluate_timeboxed(None, Some(500), Some(10_000))
            .map_err(|e| e.to_string())?;
        if out.is_function() {
            return Err(UNSUPPORTED.to_string());
        }
        Ok(from_j(out))
    }));
    match r {
        Ok(x) => x,
        Err(_) => Err(format!(
            "the JSONata expression '{}' could not be evaluated",
            expr.text
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn evaluates_with_states_and_vars() {
        let mut vars = Variables::new();
        vars.set("x".into(), json!({"f": 2}));
        let st = json!({"input": {"a": [1, 2, 3]}});
        let e = compile("$sum($states.input.a) + $x.f").unwrap();
        assert_eq!(eval(&e, &st, &vars).unwrap(), Some(json!(8)));
        let u = compile("$nope").unwrap();
        assert_eq!(eval(&u, &st, &vars).unwrap(), None);
        let p = compile("$parse('{\"a\": [1]}')").unwrap();
        assert_eq!(eval(&p, &st, &vars).unwrap(), Some(json!({"a": [1]})));
        assert!(compile("1 +").is_err());
    }

    #[test]
    fn sift_keeps_the_entries_a_function_accepts() {
        let vars = Variables::new();
        let st = json!({"input": {"a": 1, "b": 2, "c": 3}});
        let e = compile("$sift($states.input, function($v, $k) { $v > 1 and $k != 'c' })").unwrap();
        assert_eq!(eval(&e, &st, &vars).unwrap(), Some(json!({"b": 2})));
        let none = compile("$sift($states.input, function($v) { $v > 9 })").unwrap();
        assert_eq!(eval(&none, &st, &vars).unwrap(), None);
    }
}

#[cfg(test)]
mod depth_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn deep_recursion_is_an_error_not_a_crash() {
        let h = std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            .spawn(|| {
                let e =
                    compile("( $f := function($n){ $n = 0 ? 0 : 1 + $f($n - 1) }; $f(100000) )")
                        .expect("compiles");
                eval(&e, &json!({}), &Variables::new())
            })
            .expect("spawn");
        let r = h.join().expect("no crash");
        assert!(r.is_err(), "{r:?}");
    }
}
