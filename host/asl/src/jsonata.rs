//! JSONata support for `"QueryLanguage": "JSONata"` states: recognising `{% ... %}` strings,
//! compiling them with the `jsonata-rs` crate, binding `$states` and the workflow variables,
//! adding the functions AWS provides on top of JSONata (`$parse`, `$partition`, `$range`,
//! `$hash`, `$uuid`) and converting results back to `serde_json` values. A crate panic is
//! caught and reported as an evaluation error, never propagated.

use crate::env::Variables;
use crate::limits::{MAX_INTERMEDIATE_BYTES, MAX_VALUE_DEPTH};
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

/// Compiles (syntax checks) an expression, refusing any whose syntax tree could nest deeper
/// than [`MAX_EXPR_DEPTH`] (see [`depth_bound`]) before the parser sees it.
pub fn compile(text: &str) -> Result<Expr, String> {
    if text.is_empty() {
        return Err("empty JSONata expression".into());
    }
    check_text(text)?;
    let r = on_big_stack(|| {
        let arena = Bump::new();
        catch_unwind(AssertUnwindSafe(|| {
            JsonAta::new(text, &arena)
                .map(|_| ())
                .map_err(|e| e.to_string())
        }))
    });
    match r {
        Ok(Ok(())) => Ok(Expr {
            text: text.to_string(),
        }),
        Ok(Err(e)) => Err(format!("invalid JSONata expression '{}': {e}", short(text))),
        Err(_) => Err(format!("invalid JSONata expression '{}'", short(text))),
    }
}

/// The checks made on an expression's text before it is parsed (at validation and again
/// before every evaluation): no reserved name, a bounded syntax tree depth.
fn check_text(text: &str) -> Result<(), String> {
    if text.contains(RESERVED) {
        return Err(format!(
            "the JSONata expression '{}' uses a name starting with '{RESERVED}', which is reserved",
            short(text)
        ));
    }
    let depth = depth_bound(text);
    if depth > MAX_EXPR_DEPTH {
        return Err(format!(
            "the JSONata expression '{}' is nested too deeply (up to {depth} levels of operators, brackets and calls; at most {MAX_EXPR_DEPTH})",
            short(text)
        ));
    }
    Ok(())
}

/// An expression's text for messages, cut to a readable length.
fn short(text: &str) -> String {
    const MAX: usize = 200;
    if text.len() <= MAX {
        return text.to_string();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

/// Deepest syntax tree an expression may have: the parser, the crate's tree rewriting, the
/// evaluator and the tree's destructor all recurse once per level.
pub const MAX_EXPR_DEPTH: usize = 400;

/// Deepest evaluation (nested sub-expressions plus nested function calls) the crate's
/// evaluator may reach before failing with "stack overflow" (U1001).
pub const MAX_EVAL_DEPTH: usize = 1000;

/// Wall-clock budget of one evaluation, in milliseconds.
pub const EVAL_TIME_LIMIT_MS: usize = 3000;

/// Memory budget of one evaluation: everything the evaluator builds lives in one arena, whose
/// size is checked at every evaluation step (the input and variables converted into it
/// included). A single step (one built-in call) can pass it by a bounded amount only: the
/// built-ins that amplify are guarded, ranges hold at most 10 million numbers. (The arena's
/// own hard limit cannot be used: the crate's objects are hash maps that abort the process
/// when an allocation fails.)
pub const ARENA_LIMIT: usize = 64 << 20;

/// Step budget of one evaluation (each sub-expression evaluated is a step).
pub const MAX_EVAL_STEPS: usize = 5_000_000;

/// Prefix of the names the evaluator binds for its own use; refused in expressions.
const RESERVED: &str = "__weft";

/// Parsing and evaluation run on the thread's evaluation stack (see [`crate::bigstack`]),
/// deep enough for any nesting the budgets above allow.
fn on_big_stack<R>(f: impl FnOnce() -> R) -> R {
    crate::bigstack::run(f)
}

/// A conservative bound on the depth of the syntax tree the crate builds for `text`,
/// computed without recursion. The text is tokenised the way the crate's tokenizer does it
/// (string literals with `\` escapes, `` `names` ``, `/* comments */` and regular
/// expression literals, which start with `/` only after a token that can precede one), so
/// nothing hidden from this scan is code to the parser. Every operator character, every
/// `and`/`or`/`in` and every opening bracket counts one level within its bracket group;
/// sub-expressions separated by `,` or `;` are siblings, not nested; a group's depth is its
/// deepest sibling's operators plus its deepest sub-group plus one.
pub fn depth_bound(text: &str) -> usize {
    #[derive(Default)]
    struct Group {
        ops: usize,
        child: usize,
        best: usize,
    }
    impl Group {
        fn end_segment(&mut self) {
            self.best = self.best.max(self.ops + self.child);
            self.ops = 0;
            self.child = 0;
        }
    }
    fn close(stack: &mut Vec<Group>) {
        if stack.len() > 1 {
            if let Some(mut g) = stack.pop() {
                g.end_segment();
                if let Some(p) = stack.last_mut() {
                    p.child = p.child.max(g.best + 1);
                }
            }
        }
    }
    fn is_ws(c: char) -> bool {
        matches!(c, '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | ' ')
    }
    fn is_operator(c: char) -> bool {
        matches!(
            c,
            '.' | '['
                | ']'
                | '{'
                | '}'
                | '('
                | ')'
                | ','
                | '@'
                | '#'
                | ';'
                | ':'
                | '?'
                | '+'
                | '-'
                | '*'
                | '/'
                | '%'
                | '|'
                | '='
                | '<'
                | '>'
                | '^'
                | '&'
                | '!'
                | '~'
        )
    }
    let chars: Vec<char> = text.chars().collect();
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    let mut stack = vec![Group::default()];
    // whether a `/` here starts a regular expression (the crate's `can_precede_regex`:
    // at the start, after `~>`, `{`, `(`, `[`, `,`, `:=`, `and`, `or`, `=`, `!=`, `<`,
    // `>`, `<=`, `>=`; whitespace and comments change nothing)
    let mut regex_ok = true;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let mut next_regex_ok = false;
        match c {
            c if is_ws(c) => {
                i += 1;
                continue;
            }
            '"' | '\'' => {
                i += 1;
                while i < chars.len() && chars[i] != c {
                    if chars[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            '`' => {
                i += 1;
                while i < chars.len() && chars[i] != '`' {
                    i += 1;
                }
            }
            '/' if at(i + 1) == '*' => {
                // ends at the first `*/` (the crate's comment never ends sooner)
                i += 2;
                while i < chars.len() && !(chars[i] == '*' && at(i + 1) == '/') {
                    i += 1;
                }
                i += 2;
                continue;
            }
            '/' if regex_ok => {
                i += 1;
                let mut escape = false;
                while i < chars.len() {
                    match chars[i] {
                        '\\' => escape = true,
                        '/' if !escape => break,
                        _ => escape = false,
                    }
                    i += 1;
                }
            }
            '0'..='9' => loop {
                // the crate's number scan
                match at(i + 1) {
                    '.' if at(i + 2) == '.' => break,
                    '.' | '0'..='9' => i += 1,
                    'e' | 'E' => {
                        i += 1;
                        if matches!(at(i + 1), '+' | '-') {
                            i += 1;
                        }
                    }
                    _ => break,
                }
            },
            c if c.is_alphabetic() || c == '$' => {
                let start = i;
                while i + 1 < chars.len() && !(is_ws(chars[i + 1]) || is_operator(chars[i + 1])) {
                    i += 1;
                }
                let word: String = chars[start..=i].iter().collect();
                if matches!(word.as_str(), "and" | "or" | "in") {
                    if let Some(g) = stack.last_mut() {
                        g.ops += 1;
                    }
                    next_regex_ok = word != "in";
                }
            }
            '(' | '[' | '{' => {
                if let Some(g) = stack.last_mut() {
                    g.ops += 1;
                }
                stack.push(Group::default());
                next_regex_ok = true;
            }
            ')' | ']' | '}' => close(&mut stack),
            ',' | ';' => {
                if let Some(g) = stack.last_mut() {
                    g.end_segment();
                }
                next_regex_ok = c == ',';
            }
            _ => {
                // an operator (or a character the parser refuses): one level
                if let Some(g) = stack.last_mut() {
                    g.ops += 1;
                }
                next_regex_ok = match (c, at(i + 1)) {
                    ('~', '>') | (':', '=') | ('!', '=') | ('<', '=') | ('>', '=') => {
                        if let Some(g) = stack.last_mut() {
                            g.ops += 1;
                        }
                        i += 1;
                        true
                    }
                    _ => matches!(c, '=' | '<' | '>'),
                };
            }
        }
        regex_ok = next_regex_ok;
        i += 1;
    }
    while stack.len() > 1 {
        close(&mut stack);
    }
    let mut root = stack.pop().unwrap_or_default();
    root.end_segment();
    root.best + 1
}

/// Converts a value into the arena; `Err` when it nests deeper than
/// [`crate::limits::MAX_VALUE_DEPTH`] (the walk stops there).
fn to_j<'a>(arena: &'a Bump, v: &Value, depth: usize) -> Result<&'a JValue<'a>, String> {
    if depth > MAX_VALUE_DEPTH {
        return Err(format!(
            "a value is nested deeper than {MAX_VALUE_DEPTH} levels"
        ));
    }
    Ok(match v {
        Value::Null => JValue::null(arena),
        Value::Bool(b) => JValue::bool(*b),
        Value::Number(n) => JValue::number(arena, n.as_f64().unwrap_or(0.0)),
        Value::String(s) => JValue::string(arena, s),
        Value::Array(a) => {
            let arr = JValue::array_with_capacity(arena, a.len(), ArrayFlags::empty());
            for x in a {
                arr.push(to_j(arena, x, depth + 1)?);
            }
            arr
        }
        Value::Object(o) => {
            let obj = JValue::object_with_capacity(arena, o.len());
            for (k, x) in o {
                obj.insert(k, to_j(arena, x, depth + 1)?);
            }
            obj
        }
    })
}

/// Converts a JSONata value; `Ok(None)` for undefined (and for functions). Fails when the
/// result would nest deeper than [`MAX_VALUE_DEPTH`] or its JSON text would pass
/// [`MAX_INTERMEDIATE_BYTES`] (an arena value may reference one large value many times;
/// the copy would not).
fn from_j<'a>(v: &'a JValue<'a>) -> Result<Option<Value>, String> {
    let mut budget = MAX_INTERMEDIATE_BYTES;
    from_j_in(v, 0, &mut budget)
}

fn spend(budget: &mut usize, n: usize) -> Result<(), String> {
    match budget.checked_sub(n) {
        Some(b) => {
            *budget = b;
            Ok(())
        }
        None => Err(format!(
            "the result is larger than {MAX_INTERMEDIATE_BYTES} bytes"
        )),
    }
}

fn from_j_in<'a>(
    v: &'a JValue<'a>,
    depth: usize,
    budget: &mut usize,
) -> Result<Option<Value>, String> {
    Ok(Some(match v {
        JValue::Undefined => return Ok(None),
        JValue::Null => {
            spend(budget, 4)?;
            Value::Null
        }
        JValue::Bool(b) => {
            spend(budget, 5)?;
            Value::Bool(*b)
        }
        JValue::Number(n) => {
            spend(budget, 8)?;
            crate::intrinsic::number(*n)
        }
        JValue::String(s) => {
            spend(budget, s.len() + 2)?;
            Value::String(s.to_string())
        }
        JValue::Array(..) | JValue::Range(_) => {
            if depth >= MAX_VALUE_DEPTH {
                return Err(format!(
                    "the result is nested deeper than {MAX_VALUE_DEPTH} levels"
                ));
            }
            spend(budget, 2)?;
            let mut out = Vec::new();
            for m in v.members() {
                spend(budget, 1)?;
                if let Some(x) = from_j_in(m, depth + 1, budget)? {
                    out.push(x);
                }
            }
            Value::Array(out)
        }
        JValue::Object(o) => {
            if depth >= MAX_VALUE_DEPTH {
                return Err(format!(
                    "the result is nested deeper than {MAX_VALUE_DEPTH} levels"
                ));
            }
            spend(budget, 2)?;
            // the crate's objects are hash maps: their order changes from one evaluation to the
            // next, so keys are sorted (a replayed run must print what the recorded one did)
            let mut entries: Vec<_> = o.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            let mut m = serde_json::Map::new();
            for (k, x) in entries {
                spend(budget, k.len() + 4)?;
                if let Some(x) = from_j_in(x, depth + 1, budget)? {
                    m.insert(k.to_string(), x);
                }
            }
            Value::Object(m)
        }
        _ => return Ok(None),
    }))
}

/// A bound on the length of `v`'s JSON text (strings counted without escapes, numbers as
/// 24 bytes), or `None` when it passes `max` or nests deeper than [`MAX_VALUE_DEPTH`]. The
/// walk stops there, so it costs at most `max` steps.
fn jsize<'a>(v: &'a JValue<'a>, max: usize) -> Option<usize> {
    fn go<'a>(v: &'a JValue<'a>, depth: usize, left: &mut usize) -> Option<()> {
        let n = match v {
            JValue::String(s) => s.len() + 2,
            JValue::Array(..) | JValue::Range(_) | JValue::Object(_) => {
                if depth >= MAX_VALUE_DEPTH {
                    return None;
                }
                *left = left.checked_sub(2)?;
                if let JValue::Object(o) = v {
                    for (k, x) in o.iter() {
                        *left = left.checked_sub(k.len() + 4)?;
                        go(x, depth + 1, left)?;
                    }
                } else {
                    for m in v.members() {
                        *left = left.checked_sub(1)?;
                        go(m, depth + 1, left)?;
                    }
                }
                return Some(());
            }
            _ => 24,
        };
        *left = left.checked_sub(n)?;
        Some(())
    }
    let mut left = max;
    go(v, 0, &mut left)?;
    Some(max - left)
}

fn too_large(ctx: &FunctionContext<'_, '_>, what: &str) -> jsonata_rs::Error {
    jsonata_rs::Error::D3137Error(format!(
        "${}: {what} would be larger than {MAX_INTERMEDIATE_BYTES} bytes",
        ctx.name.trim_start_matches(GUARD)
    ))
}

/// Calls the crate's own implementation of a guarded built-in, saved under a reserved name
/// by the prelude [`eval`] puts in front of the expression.
fn call_original<'a>(
    ctx: &FunctionContext<'a, '_>,
    name: &str,
    args: &[&'a JValue<'a>],
) -> jsonata_rs::Result<&'a JValue<'a>> {
    match ctx.frame.lookup(&format!("{ORIGINAL}{name}")) {
        Some(f) => ctx.evaluate_function(f, args),
        None => Err(jsonata_rs::Error::D3137Error(format!(
            "${name} is not available"
        ))),
    }
}

/// Byte length of a string value, 0 for anything else.
fn slen(v: &JValue<'_>) -> usize {
    match v {
        JValue::String(s) => s.len(),
        _ => 0,
    }
}

/// `$pad(str, width, char)`: the width is bounded.
fn guard_pad<'a>(
    ctx: FunctionContext<'a, '_>,
    args: &[&'a JValue<'a>],
) -> jsonata_rs::Result<&'a JValue<'a>> {
    if let Some(w) = args.get(1).filter(|w| w.is_number()) {
        let width = w.as_f64().abs();
        let fill = args.get(2).map_or(1, |c| slen(c).max(1));
        let within = width * fill as f64 <= MAX_INTERMEDIATE_BYTES as f64; // false for NaN
        if !within {
            return Err(too_large(&ctx, "the padded string"));
        }
    }
    call_original(&ctx, "pad", args)
}

/// `$join(array, separator)`: the joined length is bounded.
fn guard_join<'a>(
    ctx: FunctionContext<'a, '_>,
    args: &[&'a JValue<'a>],
) -> jsonata_rs::Result<&'a JValue<'a>> {
    if let Some(a) = args.first().filter(|a| a.is_array()) {
        let sep = args.get(1).map_or(0, |s| slen(s));
        let mut total = 0usize;
        for m in a.members() {
            total = total.saturating_add(slen(m) + sep);
            if total > MAX_INTERMEDIATE_BYTES {
                return Err(too_large(&ctx, "the joined string"));
            }
        }
    }
    call_original(&ctx, "join", args)
}

/// `$string(value, prettify)`: the text (and the serialiser's recursion) is bounded.
fn guard_string<'a>(
    ctx: FunctionContext<'a, '_>,
    args: &[&'a JValue<'a>],
) -> jsonata_rs::Result<&'a JValue<'a>> {
    let v = args.first().copied().unwrap_or(ctx.input);
    // prettified text indents every line: allow for it
    let max = if args.get(1).is_some_and(|p| p.is_truthy()) {
        MAX_INTERMEDIATE_BYTES / 8
    } else {
        MAX_INTERMEDIATE_BYTES
    };
    if !v.is_string() && jsize(v, max).is_none() {
        return Err(too_large(&ctx, "the string"));
    }
    call_original(&ctx, "string", args)
}

/// `$replace(str, pattern, replacement, limit)`: the result's length is bounded by the
/// number of possible matches times the replacement's length; a replacement function's
/// results are counted as they are returned (they may all be one large string).
fn guard_replace<'a>(
    ctx: FunctionContext<'a, '_>,
    args: &[&'a JValue<'a>],
) -> jsonata_rs::Result<&'a JValue<'a>> {
    let (Some(s), Some(r)) = (args.first(), args.get(2)) else {
        return call_original(&ctx, "replace", args);
    };
    if s.is_string() {
        let len = slen(s) as f64;
        let mut matches = len + 1.0;
        if let Some(l) = args.get(3).filter(|l| l.is_number()) {
            matches = matches.min(l.as_f64().max(0.0));
        }
        let each = slen(r) as f64;
        let within = len + matches * each <= MAX_INTERMEDIATE_BYTES as f64; // false for NaN
        if !within {
            return Err(too_large(&ctx, "the replaced string"));
        }
    }
    if !r.is_function() {
        return call_original(&ctx, "replace", args);
    }
    // the replacement function is wrapped (by the prelude's JSONata helper) so that each
    // result passes through `count_replacement`, which adds it to this call's total
    let Some(wrap) = ctx.frame.lookup(&format!("{RESERVED}_wrap_replace")) else {
        return Err(jsonata_rs::Error::D3137Error(
            "$replace is not available".into(),
        ));
    };
    let wrapped = ctx.evaluate_function(wrap, &[r])?;
    let mut call: Vec<&'a JValue<'a>> = args.to_vec();
    call[2] = wrapped;
    let saved = REPLACED.with(|c| c.replace(slen(s)));
    let out = call_original(&ctx, "replace", &call);
    REPLACED.with(|c| c.set(saved));
    out
}

thread_local! {
    /// Bytes the current `$replace` call's replacement function has returned so far (with
    /// the input's length); saved and restored around nested calls.
    static REPLACED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Counts one result of a `$replace` replacement function (see [`guard_replace`]).
fn count_replacement<'a>(
    ctx: FunctionContext<'a, '_>,
    args: &[&'a JValue<'a>],
) -> jsonata_rs::Result<&'a JValue<'a>> {
    let v = args.first().copied().unwrap_or_else(JValue::undefined);
    let total = REPLACED.with(|c| {
        let t = c.get().saturating_add(slen(v));
        c.set(t);
        t
    });
    if total > MAX_INTERMEDIATE_BYTES {
        return Err(too_large(&ctx, "the replaced string"));
    }
    Ok(v)
}

/// Most pieces `$split` and matches `$match` may return: each is an allocation (a match an
/// object with its groups) made within one evaluation step, before the memory budget is
/// checked again.
pub const MAX_PIECES: usize = 50_000;

/// Calls the original with its limit argument (at index `at`) lowered to one more than
/// [`MAX_PIECES`], and fails when that many came back (the result would have been cut).
fn with_piece_limit<'a>(
    ctx: &FunctionContext<'a, '_>,
    name: &str,
    args: &[&'a JValue<'a>],
    at: usize,
) -> jsonata_rs::Result<&'a JValue<'a>> {
    let cap = (MAX_PIECES + 1) as f64;
    let given = args.get(at).filter(|l| l.is_number()).map(|l| l.as_f64());
    if given.is_some_and(|l| l <= cap) || args.len() < at {
        return call_original(ctx, name, args);
    }
    let mut call: Vec<&'a JValue<'a>> = args.to_vec();
    call.truncate(at);
    call.push(JValue::number(ctx.arena, cap));
    let out = call_original(ctx, name, &call)?;
    if out.is_array() && out.members().count() > MAX_PIECES {
        return Err(jsonata_rs::Error::D3137Error(format!(
            "${name}: more than {MAX_PIECES} results; pass a smaller limit"
        )));
    }
    Ok(out)
}

/// `$split(str, separator, limit)`: at most [`MAX_PIECES`] pieces.
fn guard_split<'a>(
    ctx: FunctionContext<'a, '_>,
    args: &[&'a JValue<'a>],
) -> jsonata_rs::Result<&'a JValue<'a>> {
    with_piece_limit(&ctx, "split", args, 2)
}

/// `$match(str, pattern, limit)`: at most [`MAX_PIECES`] matches.
fn guard_match<'a>(
    ctx: FunctionContext<'a, '_>,
    args: &[&'a JValue<'a>],
) -> jsonata_rs::Result<&'a JValue<'a>> {
    with_piece_limit(&ctx, "match", args, 2)
}

/// Built-ins whose result can be far larger than their arguments, with their guards and
/// arities (the crate's own).
type Native = for<'a, 'b> fn(
    FunctionContext<'a, 'b>,
    &[&'a JValue<'a>],
) -> jsonata_rs::Result<&'a JValue<'a>>;
const GUARDED: &[(&str, usize, Native)] = &[
    ("pad", 2, guard_pad),
    ("join", 2, guard_join),
    ("string", 1, guard_string),
    ("replace", 4, guard_replace),
    ("split", 3, guard_split),
    ("match", 2, guard_match),
];

/// Names of the guards and of the saved originals (see [`RESERVED`]).
const GUARD: &str = "__weft_guard_";
const ORIGINAL: &str = "__weft_orig_";

/// True when `text` names the variable `$name` (not merely a longer name starting so).
fn mentions(text: &str, name: &str) -> bool {
    let pat = format!("${name}");
    text.match_indices(&pat).any(|(i, _)| {
        !text[i + pat.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_alphanumeric() || c == '_')
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
        Ok(v) => to_j(ctx.arena, &v, 0).map_err(jsonata_rs::Error::D3137Error),
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

/// The JSONata type name of a value, for argument errors.
fn jtype(v: &JValue<'_>) -> &'static str {
    match v {
        JValue::Undefined => "undefined",
        JValue::Null => "null",
        JValue::Number(_) => "a number",
        JValue::Bool(_) => "a boolean",
        JValue::String(_) => "a string",
        JValue::Array(..) | JValue::Range(_) => "an array",
        JValue::Object(_) => "an object",
        _ => "a function",
    }
}

/// The error a built-in returns for a wrong-typed argument (1-based `index`), naming the
/// function and the argument; it fails the state with `States.QueryEvaluationError`.
fn arg_error(name: &str, index: usize, want: &str, got: &JValue<'_>) -> jsonata_rs::Error {
    jsonata_rs::Error::D3137Error(format!(
        "${name}: argument {index} must be {want}, but it is {}",
        jtype(got)
    ))
}

fn fn_partition<'a>(
    ctx: FunctionContext<'a, '_>,
    args: &[&'a JValue<'a>],
) -> jsonata_rs::Result<&'a JValue<'a>> {
    let (Some(a), Some(n)) = (args.first(), args.get(1)) else {
        return Ok(JValue::undefined());
    };
    if a.is_undefined() {
        return Ok(JValue::undefined());
    }
    if !a.is_array() {
        return Err(arg_error("partition", 1, "an array", a));
    }
    if !n.is_number() {
        return Err(arg_error("partition", 2, "a number", n));
    }
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
    for (i, v) in [s, e, st].into_iter().enumerate() {
        if !v.is_number() {
            return Err(arg_error("range", i + 1, "a number", v));
        }
    }
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
    let nums: Vec<f64> = if v.is_undefined() {
        return Ok(JValue::undefined());
    } else if v.is_number() {
        vec![v.as_f64()]
    } else if !v.is_array() {
        return Err(arg_error(
            "average",
            1,
            "a number or an array of numbers",
            v,
        ));
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
    } else if v.is_array() {
        v.members().collect()
    } else {
        // a string, number, boolean... spreads to itself, as in JSONata
        return Ok(v);
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
    if v.is_undefined() {
        return Ok(JValue::undefined());
    }
    // a single value is a one-member array, as JSONata's signature <a:a> makes it
    let mut items: Vec<&JValue<'a>> = if v.is_array() {
        v.members().collect()
    } else {
        vec![*v]
    };
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
/// `Ok(None)` means the expression returned nothing (undefined). The evaluation runs within
/// the budgets above ([`MAX_EVAL_DEPTH`], [`EVAL_TIME_LIMIT_MS`], [`ARENA_LIMIT`],
/// [`MAX_INTERMEDIATE_BYTES`] for the built-ins that amplify), on a stack of known size;
/// passing one is an error, never a crash.
pub fn eval(expr: &Expr, states: &Value, vars: &Variables) -> Result<Option<Value>, String> {
    check_text(&expr.text)?;
    let r = on_big_stack(|| {
        let arena = Bump::new();
        let r = catch_unwind(AssertUnwindSafe(|| eval_in(&arena, expr, states, vars)));
        drop(arena);
        r
    });
    match r {
        Ok(x) => x,
        Err(_) => Err(format!(
            "the JSONata expression '{}' could not be evaluated",
            short(&expr.text)
        )),
    }
}

fn eval_in(
    arena: &Bump,
    expr: &Expr,
    states: &Value,
    vars: &Variables,
) -> Result<Option<Value>, String> {
    let mut text = rewrite(&expr.text);
    let mut prelude = String::new();
    for (name, _, _) in GUARDED {
        if mentions(&text, name) {
            prelude.push_str(&format!(
                "${ORIGINAL}{name} := ${name}; ${name} := ${GUARD}{name}; "
            ));
        }
    }
    if mentions(&text, "replace") {
        prelude.push_str(&format!(
            "${RESERVED}_wrap_replace := function($f){{ function($m){{ ${RESERVED}_count_replacement($f($m)) }} }}; "
        ));
    }
    let all_vars = if vars.is_empty() {
        serde_json::Map::new()
    } else {
        vars.to_object()
    };
    for (k, v) in &all_vars {
        // the crate binds its built-ins after our variables; a variable named like one
        // (`$sum`, `$count`...) is declared inside the expression so it shadows it
        if BUILTINS.contains(&k.as_str()) && mentions(&text, k) {
            prelude.push_str(&format!("${k} := {}; ", v));
        }
    }
    if !prelude.is_empty() {
        text = format!("( {prelude}{text} )");
        // the prelude adds a block and its own bindings, never unbounded nesting, but the
        // variables' JSON text is checked like any expression
        if depth_bound(&text) > MAX_EXPR_DEPTH + MAX_VALUE_DEPTH + 2 {
            return Err("a variable is nested too deeply".into());
        }
    }
    let j = JsonAta::new(&text, arena).map_err(|e| e.to_string())?;
    for (k, v) in &all_vars {
        j.assign_var(k, to_j(arena, v, 0)?);
    }
    j.assign_var("states", to_j(arena, states, 0)?);
    for (name, arity, f) in GUARDED {
        j.register_function(&format!("{GUARD}{name}"), *arity, *f);
    }
    j.register_function(
        &format!("{RESERVED}_count_replacement"),
        1,
        count_replacement,
    );
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
        .evaluate_with_limits(
            None,
            Some(MAX_EVAL_DEPTH),
            Some(EVAL_TIME_LIMIT_MS),
            Some(MAX_EVAL_STEPS),
            Some(ARENA_LIMIT),
        )
        .map_err(|e| e.to_string())?;
    if out.is_function() {
        return Err(UNSUPPORTED.to_string());
    }
    from_j(out)
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

#[cfg(test)]
mod wrong_type_tests {
    use super::*;

    /// Every built-in (the crate's and AWS's additions) with a wrong-typed value in each
    /// argument position: an error naming the function, never a panic.
    #[test]
    fn wrong_argument_types_are_errors_not_panics() {
        let names: Vec<&str> = BUILTINS
            .iter()
            .copied()
            .chain([
                "partition",
                "range",
                "hash",
                "parse",
                "formatBase",
                "formatNumber",
                "encodeUrlComponent",
                "encodeUrl",
                "decodeUrlComponent",
                "decodeUrl",
                "spread",
                "shuffle",
                "sift",
                "average",
                "type",
                "random",
                "sort",
                "zip",
                "reduce",
                "substring",
                "substringBefore",
                "substringAfter",
                "split",
                "replace",
                "formatInteger",
                "parseInteger",
                "base64encode",
                "base64decode",
                "round",
                "power",
                "sqrt",
                "trim",
                "uppercase",
                "string",
                "sum",
            ])
            .collect();
        let wrong = [
            "'x'",
            "{'a': 1}",
            "[1, 'a']",
            "true",
            "null",
            "function($v){$v}",
            "1",
        ];
        let mut vague = Vec::new();
        for name in names {
            for arity in 1..=4 {
                for pos in 0..arity {
                    for w in wrong {
                        let args: Vec<String> = (0..arity)
                            .map(|i| {
                                if i == pos {
                                    w.to_string()
                                } else {
                                    "[1,2,3]".to_string()
                                }
                            })
                            .collect();
                        let text = format!("${name}({})", args.join(", "));
                        let Ok(e) = compile(&text) else { continue };
                        if let Err(msg) = eval(&e, &Value::Null, &Variables::default()) {
                            if msg.contains("could not be evaluated") {
                                vague.push(text);
                            }
                        }
                    }
                }
            }
        }
        assert!(vague.is_empty(), "{} panics: {vague:?}", vague.len());
    }

    fn err(text: &str) -> String {
        let e = compile(text).unwrap_or_else(|e| panic!("{e}"));
        eval(&e, &Value::Null, &Variables::default()).unwrap_err()
    }

    #[test]
    fn each_fixed_function_names_its_argument() {
        assert!(err("$partition([1,2], 'x')")
            .contains("$partition: argument 2 must be a number, but it is a string"));
        assert!(err("$partition({'a':1}, 2)").contains("$partition: argument 1 must be an array"));
        assert!(err("$range(0, 'ten', 1)").contains("$range: argument 2 must be a number"));
        assert!(err("$range(true, 3, 1)").contains("$range: argument 1 must be a number"));
        assert!(err("$average('x')").contains("$average: argument 1"));
        assert!(err("$now(1)").contains("Argument 1 of function now"));
        assert!(err("$now('', {})").contains("Argument 2 of function now"));
        let ok = |t: &str| eval(&compile(t).unwrap(), &Value::Null, &Variables::default());
        assert_eq!(ok("$spread('x')"), Ok(Some(Value::from("x"))));
        assert_eq!(ok("$shuffle(5)"), Ok(Some(serde_json::json!([5]))));
        assert_eq!(
            ok("$single([1, 2], function($v){ $v = 2 ? 'yes' : '' })"),
            Ok(Some(Value::from(2)))
        );
        assert!(ok("$join(5)").is_err());
    }
}
