//! The roles a state machine definition passes to its tasks: every `Credentials.RoleArn` of
//! its Task states at any depth, literal ([`RoleRef::Static`], the creator's `iam:PassRole`
//! decision when the definition is written) or resolved at run time ([`RoleRef::Dynamic`], the
//! execution role's decision when the task runs).

use serde_json::Value;

/// The roles a definition passes: every static `Credentials.RoleArn` of its Task states, at
/// any depth (Parallel branches, Map ItemProcessor/Iterator), with its JSON pointer.
pub fn definition_roles(definition: &Value) -> Vec<(String, RoleRef)> {
    let mut out = Vec::new();
    walk_states(definition, "", &mut out);
    out
}

/// A `Credentials.RoleArn` as written in a definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleRef {
    /// A literal role reference: checked when the definition is created or updated.
    Static(String),
    /// `RoleArn.$`, a JSONata `{% %}` value or a whole-object expression: checked at run time
    /// against the execution role's `iam:PassRole`.
    Dynamic,
}

fn walk_states(machine: &Value, at: &str, out: &mut Vec<(String, RoleRef)>) {
    let Some(states) = machine.get("States").and_then(Value::as_object) else {
        return;
    };
    for (name, st) in states {
        let here = format!("{at}/States/{}", name.replace('~', "~0").replace('/', "~1"));
        if let Some(c) = st.get("Credentials") {
            let at = format!("{here}/Credentials");
            match c {
                Value::Object(m) => {
                    if m.contains_key("RoleArn.$") {
                        out.push((format!("{at}/RoleArn.$"), RoleRef::Dynamic));
                    }
                    match m.get("RoleArn") {
                        Some(Value::String(s)) if is_jsonata(s) => {
                            out.push((format!("{at}/RoleArn"), RoleRef::Dynamic))
                        }
                        Some(Value::String(s)) => {
                            out.push((format!("{at}/RoleArn"), RoleRef::Static(s.clone())))
                        }
                        Some(_) => out.push((format!("{at}/RoleArn"), RoleRef::Dynamic)),
                        None => {}
                    }
                }
                _ => out.push((at, RoleRef::Dynamic)),
            }
        }
        if let Some(branches) = st.get("Branches").and_then(Value::as_array) {
            for (i, b) in branches.iter().enumerate() {
                walk_states(b, &format!("{here}/Branches/{i}"), out);
            }
        }
        for k in ["ItemProcessor", "Iterator"] {
            if let Some(p) = st.get(k) {
                walk_states(p, &format!("{here}/{k}"), out);
            }
        }
    }
}

fn is_jsonata(s: &str) -> bool {
    let t = s.trim();
    t.starts_with("{%") && t.ends_with("%}")
}

/// The static roles of a definition text, canonical (what its creator was allowed to pass).
pub fn static_roles(definition: &str) -> std::collections::HashSet<String> {
    let Ok(v) = serde_json::from_str::<Value>(definition) else {
        return Default::default();
    };
    definition_roles(&v)
        .into_iter()
        .filter_map(|(_, r)| match r {
            RoleRef::Static(s) => crate::roles::canonical_role(&s),
            RoleRef::Dynamic => None,
        })
        .collect()
}
