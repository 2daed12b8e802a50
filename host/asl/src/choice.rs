//! Choice rule evaluation: every comparison operator (and its `...Path` form), the `Is*`
//! type tests, `StringMatches` with `*` wildcards and `\` escapes, `And`/`Or`/`Not`, and
//! JSONata `Condition`s. Type mismatches make a comparison false, as on AWS.

use crate::env::Env;
use crate::error::{names, StateError};
use crate::model::{CmpOp, Condition, Operand};
use chrono::{DateTime, FixedOffset};
use serde_json::Value;
use std::cmp::Ordering;

/// Parses an RFC 3339 timestamp as ASL accepts it (upper-case `T`, zone required).
pub fn parse_timestamp(s: &str) -> Option<DateTime<FixedOffset>> {
    if !s.contains('T') {
        return None;
    }
    DateTime::parse_from_rfc3339(s).ok()
}

/// `StringMatches`: `*` matches any run of characters; `\*` and `\\` are literal.
pub fn string_matches(s: &str, pattern: &str) -> bool {
    // tokens: Some(c) literal, None star
    let mut toks: Vec<Option<char>> = Vec::with_capacity(pattern.len());
    let mut it = pattern.chars();
    while let Some(c) = it.next() {
        match c {
            '\\' => match it.next() {
                Some(n) => toks.push(Some(n)),
                None => toks.push(Some('\\')),
            },
            '*' => toks.push(None),
            c => toks.push(Some(c)),
        }
    }
    let chars: Vec<char> = s.chars().collect();
    // iterative wildcard matching with backtracking to the last star
    let (mut si, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while si < chars.len() {
        if ti < toks.len() && toks[ti] == Some(chars[si]) {
            si += 1;
            ti += 1;
        } else if ti < toks.len() && toks[ti].is_none() {
            star = Some((ti, si));
            ti += 1;
        } else if let Some((st, ss)) = star {
            ti = st + 1;
            si = ss + 1;
            star = Some((st, ss + 1));
        } else {
            return false;
        }
    }
    while ti < toks.len() && toks[ti].is_none() {
        ti += 1;
    }
    ti == toks.len()
}

fn num_cmp(a: &serde_json::Number, b: &serde_json::Number) -> Option<Ordering> {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        return Some(x.cmp(&y));
    }
    a.as_f64()?.partial_cmp(&b.as_f64()?)
}

fn ord_ok(op: CmpOp, o: Ordering) -> bool {
    use CmpOp::*;
    match op {
        StringEquals | NumericEquals | TimestampEquals => o == Ordering::Equal,
        StringLessThan | NumericLessThan | TimestampLessThan => o == Ordering::Less,
        StringGreaterThan | NumericGreaterThan | TimestampGreaterThan => o == Ordering::Greater,
        StringLessThanEquals | NumericLessThanEquals | TimestampLessThanEquals => {
            o != Ordering::Greater
        }
        StringGreaterThanEquals | NumericGreaterThanEquals | TimestampGreaterThanEquals => {
            o != Ordering::Less
        }
        _ => false,
    }
}

fn compare(op: CmpOp, v: &Value, rhs: &Value) -> bool {
    use CmpOp::*;
    match op {
        StringEquals
        | StringLessThan
        | StringGreaterThan
        | StringLessThanEquals
        | StringGreaterThanEquals => match (v, rhs) {
            (Value::String(a), Value::String(b)) => ord_ok(op, a.as_str().cmp(b.as_str())),
            _ => false,
        },
        StringMatches => match (v, rhs) {
            (Value::String(a), Value::String(b)) => string_matches(a, b),
            _ => false,
        },
        NumericEquals
        | NumericLessThan
        | NumericGreaterThan
        | NumericLessThanEquals
        | NumericGreaterThanEquals => match (v, rhs) {
            (Value::Number(a), Value::Number(b)) => num_cmp(a, b).is_some_and(|o| ord_ok(op, o)),
            _ => false,
        },
        BooleanEquals => match (v, rhs) {
            (Value::Bool(a), Value::Bool(b)) => a == b,
            _ => false,
        },
        TimestampEquals
        | TimestampLessThan
        | TimestampGreaterThan
        | TimestampLessThanEquals
        | TimestampGreaterThanEquals => match (v, rhs) {
            (Value::String(a), Value::String(b)) => {
                match (parse_timestamp(a), parse_timestamp(b)) {
                    (Some(x), Some(y)) => ord_ok(op, x.cmp(&y)),
                    _ => false,
                }
            }
            _ => false,
        },
        IsNull | IsNumeric | IsString | IsBoolean | IsTimestamp | IsPresent => {
            let want = rhs.as_bool().unwrap_or(true);
            let is = match op {
                IsNull => v.is_null(),
                IsNumeric => v.is_number(),
                IsString => v.is_string(),
                IsBoolean => v.is_boolean(),
                IsTimestamp => v.as_str().and_then(parse_timestamp).is_some(),
                _ => true,
            };
            is == want
        }
    }
}

/// Evaluates a condition. `states` is the JSONata `$states` value for JSONata conditions.
pub fn evaluate(c: &Condition, env: &Env<'_>, states: Option<&Value>) -> Result<bool, StateError> {
    match c {
        Condition::And(cs) => {
            for x in cs {
                if !evaluate(x, env, states)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        Condition::Or(cs) => {
            for x in cs {
                if evaluate(x, env, states)? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        Condition::Not(x) => Ok(!evaluate(x, env, states)?),
        Condition::Compare {
            variable,
            op,
            operand,
        } => {
            let v = env.select(variable);
            if *op == CmpOp::IsPresent {
                let want = match operand {
                    Operand::Value(Value::Bool(b)) => *b,
                    _ => true,
                };
                let present = match &v {
                    None => false,
                    Some(x) => {
                        variable.is_definite() || !x.as_array().is_some_and(|a| a.is_empty())
                    }
                };
                return Ok(present == want);
            }
            let Some(v) = v else {
                // AWS: every operator but IsPresent fails on a path that matches nothing
                return Err(StateError::new(
                    names::RUNTIME,
                    format!(
                        "Invalid path '{variable}': The choice state's condition path references an invalid value."
                    ),
                ));
            };
            match operand {
                Operand::Value(rhs) => Ok(compare(*op, &v, rhs)),
                Operand::Path(p) => {
                    let Some(rhs) = env.select(p) else {
                        return Err(StateError::new(
                            names::RUNTIME,
                            format!(
                                "Invalid path '{p}': The choice state's condition path references an invalid value."
                            ),
                        ));
                    };
                    Ok(compare(*op, &v, &rhs))
                }
            }
        }
        Condition::Jsonata(t) => match t.eval(env, states)? {
            Value::Bool(b) => Ok(b),
            other => Err(StateError::new(
                names::QUERY_EVALUATION_ERROR,
                format!(
                    "The Condition field must evaluate to a boolean, but was: {}",
                    other
                ),
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches() {
        assert!(string_matches("log-2024.txt", "log-*.txt"));
        assert!(string_matches("abc", "*"));
        assert!(string_matches("a*c", "a\\*c"));
        assert!(!string_matches("abc", "a\\*c"));
        assert!(string_matches("a\\b", "a\\\\b"));
        assert!(!string_matches("abd", "*c"));
        assert!(string_matches("", "*"));
        assert!(string_matches("aXbYc", "a*b*c"));
    }

    #[test]
    fn comparisons() {
        use serde_json::json;
        assert!(compare(CmpOp::NumericEquals, &json!(1), &json!(1.0)));
        assert!(!compare(CmpOp::NumericEquals, &json!("1"), &json!(1)));
        assert!(!compare(CmpOp::BooleanEquals, &json!(0), &json!(false)));
        assert!(compare(
            CmpOp::TimestampLessThan,
            &json!("2016-03-14T01:59:00Z"),
            &json!("2016-03-14T02:00:00+00:00")
        ));
        assert!(compare(
            CmpOp::IsTimestamp,
            &json!("2016-03-14T01:59:00Z"),
            &json!(true)
        ));
        assert!(compare(
            CmpOp::IsTimestamp,
            &json!("2023-02-24"),
            &json!(false)
        ));
    }
}
