//! The resource limits every evaluation in this crate runs under, in one place: AWS's
//! 256 KiB payload limit (`States.DataLimitExceeded`), the nesting depth of JSON values the
//! interpreter builds, and the size check that enforces both without serialising: a walk
//! that counts the bytes of the compact JSON text exactly and stops as soon as a limit is
//! passed, so checking a huge or deeply nested value costs no more than the limit.

use crate::error::{names, StateError};
use serde_json::Value;

/// AWS's limit on a state's input or output, an execution's input or output and any value
/// that ends up in one: 256 KiB of UTF-8 JSON text.
pub const MAX_PAYLOAD_BYTES: usize = 262_144;

/// Upper bound for intermediate values built while evaluating one expression (strings made
/// by `$pad`, `$join`, `$string`, `$replace`, `States.Format`...): a little above the
/// payload limit, since an intermediate may be cut down before it reaches an output.
pub const MAX_INTERMEDIATE_BYTES: usize = 4 * MAX_PAYLOAD_BYTES;

/// Deepest nesting of arrays/objects a value may have. The JSON parser used to read
/// definitions, task results and journals back refuses 128 levels; values deeper than this
/// could be written but never read again, and every recursive walk over values is bounded
/// by it.
pub const MAX_VALUE_DEPTH: usize = 110;

/// Why a value is over a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exceeded {
    /// Its JSON text is longer than the byte limit.
    Size,
    /// It nests deeper than [`MAX_VALUE_DEPTH`].
    Depth,
}

/// The exact length in bytes of `v`'s compact JSON text (as `serde_json::to_string` writes
/// it), or which limit it passes first. Never walks further than `max` bytes or
/// [`MAX_VALUE_DEPTH`] levels.
pub fn json_size(v: &Value, max: usize) -> Result<usize, Exceeded> {
    let mut total = 0usize;
    walk(v, 0, max, &mut total)?;
    Ok(total)
}

fn add(total: &mut usize, n: usize, max: usize) -> Result<(), Exceeded> {
    *total = total.saturating_add(n);
    if *total > max {
        Err(Exceeded::Size)
    } else {
        Ok(())
    }
}

/// Bytes of a JSON string literal (quotes and escapes included).
pub fn string_size(s: &str) -> usize {
    let mut n = 2 + s.len();
    for &b in s.as_bytes() {
        match b {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => n += 1,
            0..=0x1f => n += 5,
            _ => {}
        }
    }
    n
}

fn number_size(n: &serde_json::Number) -> usize {
    if let Some(u) = n.as_u64() {
        digits(u)
    } else if let Some(i) = n.as_i64() {
        1 + digits(i.unsigned_abs())
    } else {
        n.to_string().len()
    }
}

fn digits(mut u: u64) -> usize {
    let mut d = 1;
    while u >= 10 {
        u /= 10;
        d += 1;
    }
    d
}

fn walk(v: &Value, depth: usize, max: usize, total: &mut usize) -> Result<(), Exceeded> {
    match v {
        Value::Null => add(total, 4, max),
        Value::Bool(b) => add(total, if *b { 4 } else { 5 }, max),
        Value::Number(n) => add(total, number_size(n), max),
        Value::String(s) => add(total, string_size(s), max),
        Value::Array(a) => {
            if depth >= MAX_VALUE_DEPTH {
                return Err(Exceeded::Depth);
            }
            add(total, 2 + a.len().saturating_sub(1), max)?;
            for x in a {
                walk(x, depth + 1, max, total)?;
            }
            Ok(())
        }
        Value::Object(o) => {
            if depth >= MAX_VALUE_DEPTH {
                return Err(Exceeded::Depth);
            }
            add(total, 2 + o.len().saturating_sub(1), max)?;
            for (k, x) in o {
                add(total, string_size(k) + 1, max)?;
                walk(x, depth + 1, max, total)?;
            }
            Ok(())
        }
    }
}

/// Checks `v` against a payload limit (normally [`MAX_PAYLOAD_BYTES`]):
/// `States.DataLimitExceeded` naming `what` (e.g. "The execution input") when its JSON is
/// longer than `max` bytes or it nests deeper than [`MAX_VALUE_DEPTH`].
pub fn check_payload(
    v: &Value,
    max: usize,
    what: impl FnOnce() -> String,
) -> Result<(), StateError> {
    match json_size(v, max) {
        Ok(_) => Ok(()),
        Err(Exceeded::Size) => Err(StateError::new(
            names::DATA_LIMIT_EXCEEDED,
            format!("{} has exceeded the maximum size of {max} bytes", what()),
        )),
        Err(Exceeded::Depth) => Err(StateError::new(
            names::DATA_LIMIT_EXCEEDED,
            format!("{} is nested deeper than {MAX_VALUE_DEPTH} levels", what()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn size_is_the_compact_json_length() {
        for v in [
            json!(null),
            json!(true),
            json!(false),
            json!(0),
            json!(-12345),
            json!(u64::MAX),
            json!(1.5e300),
            json!(0.1),
            json!("a\"b\\c\n\u{1}é"),
            json!([]),
            json!({}),
            json!([1, [2, {"a": "b", "c\u{7}": [null]}], {}]),
        ] {
            let exact = serde_json::to_string(&v).unwrap().len();
            assert_eq!(json_size(&v, usize::MAX), Ok(exact), "{v}");
        }
    }

    #[test]
    fn limits_stop_the_walk() {
        let big = json!(["x".repeat(100), "y".repeat(100)]);
        assert_eq!(json_size(&big, 150), Err(Exceeded::Size));
        let mut deep = json!(1);
        for _ in 0..MAX_VALUE_DEPTH {
            deep = json!([deep]);
        }
        assert!(json_size(&deep, usize::MAX).is_ok());
        let deeper = json!({ "a": deep });
        assert_eq!(json_size(&deeper, usize::MAX), Err(Exceeded::Depth));
        let e = check_payload(&deeper, MAX_PAYLOAD_BYTES, || "x".into()).unwrap_err();
        assert_eq!(e.error, names::DATA_LIMIT_EXCEEDED);
    }
}
