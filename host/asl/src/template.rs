//! Payload templates: `Parameters`, `ResultSelector`, `ItemSelector`, `Assign` (JSONPath
//! flavour, where `"key.$"` fields take a path or an intrinsic call) and `Arguments`,
//! `Output`, `Items`, `Assign` (JSONata flavour, where `"{% ... %}"` strings are
//! expressions). Templates are compiled once at parse time; constant subtrees are kept as
//! ready values so evaluation only clones them.

use crate::env::Env;
use crate::error::{names, StateError, ValidationErrors};
use crate::intrinsic::{self, Call};
use crate::jsonata::{self, Expr};
use crate::jsonpath::JsonPath;
use crate::limits::{json_size, MAX_INTERMEDIATE_BYTES};
use serde_json::{Map, Value};

/// A compiled template.
#[derive(Debug, Clone, PartialEq)]
pub enum Template {
    /// A constant.
    Literal(Value),
    /// An object with at least one dynamic field.
    Object(Vec<(String, Template)>),
    /// An array with at least one dynamic element.
    Array(Vec<Template>),
    /// `"key.$": "$.path"`.
    Path {
        /// The path.
        path: JsonPath,
        /// Field name as written (`key.$`), for messages.
        field: String,
    },
    /// `"key.$": "States.Fn(...)"`.
    Intrinsic {
        /// The call.
        call: Box<Call>,
        /// Field name as written, for messages.
        field: String,
    },
    /// `"{% expr %}"`.
    Jsonata {
        /// The expression.
        expr: Expr,
        /// Field path (`Output/result`), for messages.
        field: String,
    },
}

impl Template {
    /// True when evaluation cannot depend on input.
    pub fn is_literal(&self) -> bool {
        matches!(self, Template::Literal(_))
    }

    /// Compiles a JSONPath-flavour template. `ptr` is the JSON pointer of `v`.
    pub fn jsonpath(v: &Value, ptr: &str, errs: &mut ValidationErrors) -> Template {
        match v {
            Value::Object(o) => {
                let mut fields = Vec::with_capacity(o.len());
                let mut dynamic = false;
                for (k, x) in o {
                    let p = format!("{ptr}/{}", escape_ptr(k));
                    if let Some(name) = k.strip_suffix(".$") {
                        dynamic = true;
                        let t = match x {
                            Value::String(s) => dynamic_field(s, k, &p, errs),
                            _ => {
                                errs.push(
                                    p,
                                    "a field ending in '.$' must be a string holding a path or an intrinsic function",
                                );
                                Template::Literal(Value::Null)
                            }
                        };
                        fields.push((name.to_string(), t));
                    } else {
                        let t = Template::jsonpath(x, &p, errs);
                        dynamic |= !t.is_literal();
                        fields.push((k.clone(), t));
                    }
                }
                if dynamic {
                    Template::Object(fields)
                } else {
                    Template::Literal(v.clone())
                }
            }
            Value::Array(a) => {
                let items: Vec<Template> = a
                    .iter()
                    .enumerate()
                    .map(|(i, x)| Template::jsonpath(x, &format!("{ptr}/{i}"), errs))
                    .collect();
                if items.iter().all(Template::is_literal) {
                    Template::Literal(v.clone())
                } else {
                    Template::Array(items)
                }
            }
            _ => Template::Literal(v.clone()),
        }
    }

    /// Compiles a JSONata-flavour template. `field` is the field path used in messages
    /// (`Output`, `Output/result`).
    pub fn jsonata(v: &Value, ptr: &str, field: &str, errs: &mut ValidationErrors) -> Template {
        match v {
            Value::String(s) => match jsonata::expression_text(s) {
                Some(text) => match jsonata::compile(text) {
                    Ok(expr) => Template::Jsonata {
                        expr,
                        field: field.to_string(),
                    },
                    Err(e) => {
                        errs.push(ptr, e);
                        Template::Literal(Value::Null)
                    }
                },
                None => Template::Literal(v.clone()),
            },
            Value::Object(o) => {
                let mut fields = Vec::with_capacity(o.len());
                let mut dynamic = false;
                for (k, x) in o {
                    let t = Template::jsonata(
                        x,
                        &format!("{ptr}/{}", escape_ptr(k)),
                        &format!("{field}/{k}"),
                        errs,
                    );
                    dynamic |= !t.is_literal();
                    fields.push((k.clone(), t));
                }
                if dynamic {
                    Template::Object(fields)
                } else {
                    Template::Literal(v.clone())
                }
            }
            Value::Array(a) => {
                let items: Vec<Template> = a
                    .iter()
                    .enumerate()
                    .map(|(i, x)| {
                        Template::jsonata(x, &format!("{ptr}/{i}"), &format!("{field}/{i}"), errs)
                    })
                    .collect();
                if items.iter().all(Template::is_literal) {
                    Template::Literal(v.clone())
                } else {
                    Template::Array(items)
                }
            }
            _ => Template::Literal(v.clone()),
        }
    }

    /// Evaluates the template. `states` is the JSONata `$states` value (required only when
    /// the template holds JSONata expressions).
    ///
    /// The values a template copies from its input are counted as they are produced: a
    /// template that would copy more than [`MAX_INTERMEDIATE_BYTES`] besides its first path
    /// (the same input referenced thousands of times) fails with `States.DataLimitExceeded`
    /// before it allocates the copies. One path alone copies one value, whatever its size.
    pub fn eval(&self, env: &Env<'_>, states: Option<&Value>) -> Result<Value, StateError> {
        let mut budget = Budget {
            left: MAX_INTERMEDIATE_BYTES,
            first: true,
        };
        self.eval_in(env, states, &mut budget)
    }

    fn eval_in(
        &self,
        env: &Env<'_>,
        states: Option<&Value>,
        budget: &mut Budget,
    ) -> Result<Value, StateError> {
        match self {
            Template::Literal(v) => Ok(v.clone()),
            Template::Object(fields) => {
                let mut m = Map::with_capacity(fields.len());
                for (k, t) in fields {
                    m.insert(k.clone(), t.eval_in(env, states, budget)?);
                }
                Ok(Value::Object(m))
            }
            Template::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for t in items {
                    out.push(t.eval_in(env, states, budget)?);
                }
                Ok(Value::Array(out))
            }
            Template::Path { path, field } => match env.select(path) {
                Some(v) if std::mem::take(&mut budget.first) => Ok(v.into_owned()),
                Some(v) => {
                    match json_size(&v, budget.left) {
                        Ok(n) => budget.left -= n,
                        Err(_) => {
                            return Err(StateError::new(
                                names::DATA_LIMIT_EXCEEDED,
                                format!(
                                    "The values selected for the field '{field}' and the fields before it exceed {MAX_INTERMEDIATE_BYTES} bytes"
                                ),
                            ))
                        }
                    }
                    Ok(v.into_owned())
                }
                None => {
                    if let crate::jsonpath::Root::Variable(_) = path.root() {
                        return Err(env.missing(path));
                    }
                    let base = env.root(path).map(|r| r.to_string()).unwrap_or_default();
                    Err(StateError::new(
                        names::RUNTIME,
                        format!(
                            "The JSONPath '{path}' specified for the field '{field}' could not be found in the input '{base}'"
                        ),
                    ))
                }
            },
            Template::Intrinsic { call, .. } => intrinsic::eval(call, env),
            Template::Jsonata { expr, field } => {
                let empty = Value::Null;
                let st = states.unwrap_or(&empty);
                match jsonata::eval(expr, st, env.vars) {
                    Ok(Some(v)) => Ok(v),
                    Ok(None) => Err(StateError::new(
                        names::QUERY_EVALUATION_ERROR,
                        format!(
                            "The JSONata expression '{}' specified for the field '{field}' returned nothing (undefined).",
                            expr.text
                        ),
                    )),
                    Err(e) if e == jsonata::UNSUPPORTED => Err(StateError::new(
                        names::QUERY_EVALUATION_ERROR,
                        format!(
                            "The JSONata expression '{}' specified for the field '{field}' {e}",
                            expr.text
                        ),
                    )),
                    Err(e) => Err(StateError::new(
                        names::QUERY_EVALUATION_ERROR,
                        format!(
                            "The JSONata expression '{}' specified for the field '{field}' threw an error during evaluation: {e}",
                            expr.text
                        ),
                    )),
                }
            }
        }
    }
}

/// What a template may still copy from its input (see [`Template::eval`]).
struct Budget {
    left: usize,
    first: bool,
}

/// Compiles the string value of a `.$` field.
fn dynamic_field(s: &str, field: &str, ptr: &str, errs: &mut ValidationErrors) -> Template {
    if intrinsic::looks_like_call(s) {
        match intrinsic::parse(s) {
            Ok(call) => Template::Intrinsic {
                call: Box::new(call),
                field: field.to_string(),
            },
            Err(e) => {
                errs.push(ptr, format!("invalid intrinsic function: {e}"));
                Template::Literal(Value::Null)
            }
        }
    } else {
        match JsonPath::parse(s) {
            Ok(path) => Template::Path {
                path,
                field: field.to_string(),
            },
            Err(e) => {
                errs.push(ptr, e.to_string());
                Template::Literal(Value::Null)
            }
        }
    }
}

/// Escapes a key for a JSON pointer.
pub fn escape_ptr(k: &str) -> String {
    k.replace('~', "~0").replace('/', "~1")
}
