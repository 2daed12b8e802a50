//! IAM-shaped capability policies: parsing (with JSON-pointer errors) and evaluation.
//!
//! A policy is `{"Version":"2012-10-17","Statement":[{"Sid"?, "Effect":"Allow"|"Deny",
//! "Action": str|[str], "Resource": str|[str]}]}`. Evaluation follows IAM: an explicit Deny wins,
//! otherwise an Allow is needed, otherwise the request is implicitly denied. Patterns use IAM's
//! wildcards (`*` any run of characters, `?` one character). This module knows nothing of WASI.

use crate::resource::{Request, ResourcePattern};
use serde::Serialize;
use serde_json::Value;

pub use crate::glob::glob_match;

/// The actions weft understands; anything else in a policy is an error.
pub const ACTIONS: &[&str] = &[
    "fs:Read",
    "fs:Write",
    "http:Request",
    "secrets:Get",
    "states:StartExecution",
    "states:SendTaskSuccess",
    // a role a definition names (callers and execution roles)
    "iam:PassRole",
    // Distributed Map ItemReader / ResultWriter buckets (`arn:aws:s3:::BUCKET/KEY`)
    "s3:GetObject",
    "s3:ListBucket",
    "s3:PutObject",
];

/// The prefixes of weft's own actions: an action under one of them must be a known one (a
/// typo is an error), anything else shaped `service:Action` is an AWS service action.
const WEFT_PREFIXES: &[&str] = &[
    "fs", "http", "secrets", "states", "iam", "dags", "plugins", "weft",
];

/// An AWS service action (`dynamodb:PutItem`, `s3:Get*`, `sns:*`): what the execution role
/// must allow for a Task whose integration a resource map serves. A service one edit away
/// from a weft prefix (`dag:`, `plugin:`, `state:`) is taken for a misspelling, not a service.
pub fn integration_action(a: &str) -> bool {
    let Some((service, name)) = a.split_once(':') else {
        return false;
    };
    !service.is_empty()
        && service.len() <= 64
        && service
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !WEFT_PREFIXES.iter().any(|w| edit_distance(w, service) <= 1)
        && !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '*')
}

/// Levenshtein distance of two short ASCII words.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, x) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, y) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(x != y))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The actions of `weft server`'s own routes besides `states:*` (DAGs, plugins, the audit log,
/// metrics): a principal's policy may name them, and patterns over them (`dags:*`).
pub const SERVER_ACTIONS: &[&str] = &[
    "dags:ListDags",
    "dags:GetDag",
    "dags:ListDagRuns",
    "dags:TriggerDagRun",
    "dags:ClearTaskInstances",
    "dags:GetTaskLogs",
    "dags:ListImportErrors",
    "dags:PatchDag",
    "dags:DeleteDag",
    "dags:PatchDagRun",
    "dags:DeleteDagRun",
    "dags:PatchTaskInstance",
    "dags:GetXComEntries",
    "variables:GetVariable",
    "variables:PutVariable",
    "variables:DeleteVariable",
    "connections:GetConnection",
    "connections:PutConnection",
    "connections:DeleteConnection",
    "pools:GetPool",
    "assets:GetAsset",
    "plugins:ListPlugins",
    "weft:GetAudit",
    "weft:GetMetrics",
    // remote workers (`weft worker`): what a worker's key needs, and the list of workers
    "weft:PollTask",
    "weft:Heartbeat",
    "weft:ReportTask",
    "weft:GetBlob",
    "weft:ListWorkers",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Effect {
    Allow,
    Deny,
}

#[derive(Debug, Clone)]
pub struct Statement {
    pub sid: Option<String>,
    pub effect: Effect,
    pub actions: Vec<String>,
    /// The `Resource` entries as written.
    pub resources: Vec<String>,
    /// The same entries, interpreted (file patterns relative until [`Policy::resolve`]).
    pub patterns: Vec<ResourcePattern>,
    /// Position in the policy, for audit records (`/Statement/N`).
    pub index: usize,
}

impl Statement {
    pub fn matches_action(&self, action: &str) -> bool {
        self.actions.iter().any(|a| glob_match(a, action))
    }

    fn matches(&self, action: &str, request: &Request) -> bool {
        self.matches_action(action) && self.patterns.iter().any(|p| p.matches(request))
    }

    /// How audit records name this statement.
    pub fn label(&self) -> String {
        match &self.sid {
            Some(s) => format!("{s} (/Statement/{})", self.index),
            None => format!("/Statement/{}", self.index),
        }
    }
}

/// A parsed policy. The empty policy denies everything.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub statements: Vec<Statement>,
}

/// A policy that could not be parsed: where (JSON pointer) and why.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
#[error("{pointer}: {reason}")]
pub struct PolicyError {
    pub pointer: String,
    pub reason: String,
}

fn perr(pointer: impl Into<String>, reason: impl Into<String>) -> PolicyError {
    PolicyError {
        pointer: pointer.into(),
        reason: reason.into(),
    }
}

/// The outcome of evaluating one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub effect: Effect,
    /// The statement that decided, `None` for the implicit default deny.
    pub statement: Option<String>,
}

impl Decision {
    pub fn allowed(&self) -> bool {
        self.effect == Effect::Allow
    }
}

impl Policy {
    /// Parses a policy document, reporting every problem found.
    pub fn parse(text: &str) -> Result<Self, Vec<PolicyError>> {
        let v: Value = serde_json::from_str(text).map_err(|e| {
            vec![perr(
                "",
                format!("not JSON (line {}, column {}): {e}", e.line(), e.column()),
            )]
        })?;
        Self::from_value(&v)
    }

    pub fn from_value(v: &Value) -> Result<Self, Vec<PolicyError>> {
        let mut errors = Vec::new();
        let Some(obj) = v.as_object() else {
            return Err(vec![perr(
                "",
                "a policy is a JSON object with `Version` and `Statement`",
            )]);
        };
        for k in obj.keys() {
            if k != "Version" && k != "Statement" && k != "Id" {
                errors.push(perr(
                    format!("/{k}"),
                    "unknown field (expected Version, Id, Statement)",
                ));
            }
        }
        match obj.get("Version") {
            None | Some(Value::String(_)) => {}
            Some(_) => errors.push(perr("/Version", "must be a string such as \"2012-10-17\"")),
        }
        let stmts: Vec<&Value> = match obj.get("Statement") {
            None => {
                errors.push(perr(
                    "/Statement",
                    "missing: a policy needs at least one statement",
                ));
                vec![]
            }
            Some(Value::Array(a)) => a.iter().collect(),
            Some(o @ Value::Object(_)) => vec![o],
            Some(_) => {
                errors.push(perr(
                    "/Statement",
                    "must be an object or an array of objects",
                ));
                vec![]
            }
        };
        let mut statements = Vec::new();
        for (i, s) in stmts.into_iter().enumerate() {
            let at = format!("/Statement/{i}");
            match parse_statement(s, i, &at) {
                Ok(st) => statements.push(st),
                Err(mut e) => errors.append(&mut e),
            }
        }
        if errors.is_empty() {
            Ok(Self { statements })
        } else {
            Err(errors)
        }
    }

    /// IAM evaluation: explicit Deny wins, then Allow, else implicit deny. `resource` is
    /// canonicalised first (see [`Request::from_text`]).
    pub fn evaluate(&self, action: &str, resource: &str) -> Decision {
        self.evaluate_request(action, &Request::from_text(resource))
    }

    /// The policy as a document [`Policy::from_value`] reads back to the same statements
    /// (each statement's `Sid`, `Effect`, `Action` and `Resource` as written, in order), so a
    /// grant can be sent to another host and evaluated there with the same decisions.
    pub fn to_value(&self) -> Value {
        let statements: Vec<Value> = self
            .statements
            .iter()
            .map(|st| {
                let mut o = serde_json::Map::new();
                if let Some(sid) = &st.sid {
                    o.insert("Sid".into(), Value::String(sid.clone()));
                }
                let effect = match st.effect {
                    Effect::Allow => "Allow",
                    Effect::Deny => "Deny",
                };
                o.insert("Effect".into(), Value::String(effect.into()));
                o.insert("Action".into(), serde_json::json!(st.actions));
                o.insert("Resource".into(), serde_json::json!(st.resources));
                Value::Object(o)
            })
            .collect();
        serde_json::json!({"Version": "2012-10-17", "Statement": statements})
    }

    /// [`Policy::evaluate`] on an already canonical request.
    pub fn evaluate_request(&self, action: &str, resource: &Request) -> Decision {
        let mut allow = None;
        for st in &self.statements {
            if st.matches(action, resource) {
                match st.effect {
                    Effect::Deny => {
                        return Decision {
                            effect: Effect::Deny,
                            statement: Some(st.label()),
                        }
                    }
                    Effect::Allow => {
                        if allow.is_none() {
                            allow = Some(st.label());
                        }
                    }
                }
            }
        }
        match allow {
            Some(s) => Decision {
                effect: Effect::Allow,
                statement: Some(s),
            },
            None => Decision {
                effect: Effect::Deny,
                statement: None,
            },
        }
    }

    /// The policy that allows nothing: what a task gets when no grant names it.
    pub fn deny_all() -> Self {
        Self::default()
    }

    /// The same policy with relative `file:` patterns resolved against `base` (an absolute,
    /// normal path).
    pub fn resolve(&self, base: &str) -> Self {
        Self {
            statements: self
                .statements
                .iter()
                .map(|st| Statement {
                    patterns: st.patterns.iter().map(|p| p.resolve(base)).collect(),
                    ..st.clone()
                })
                .collect(),
        }
    }
}

fn parse_statement(v: &Value, index: usize, at: &str) -> Result<Statement, Vec<PolicyError>> {
    let mut errors = Vec::new();
    let Some(obj) = v.as_object() else {
        return Err(vec![perr(
            at,
            "a statement is an object with Effect, Action and Resource",
        )]);
    };
    for k in obj.keys() {
        if !matches!(k.as_str(), "Sid" | "Effect" | "Action" | "Resource") {
            let reason = match k.as_str() {
                "NotAction" | "NotResource" | "Condition" | "Principal" => {
                    format!("`{k}` is not supported by weft grants; list Actions and Resources explicitly")
                }
                _ => "unknown field (expected Sid, Effect, Action, Resource)".to_string(),
            };
            errors.push(perr(format!("{at}/{k}"), reason));
        }
    }
    let sid = match obj.get("Sid") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            errors.push(perr(format!("{at}/Sid"), "must be a string"));
            None
        }
    };
    let effect = match obj.get("Effect").and_then(Value::as_str) {
        Some("Allow") => Some(Effect::Allow),
        Some("Deny") => Some(Effect::Deny),
        Some(other) => {
            errors.push(perr(
                format!("{at}/Effect"),
                format!("`{other}` is not an effect (expected \"Allow\" or \"Deny\")"),
            ));
            None
        }
        None => {
            errors.push(perr(
                format!("{at}/Effect"),
                "missing or not a string (\"Allow\" or \"Deny\")",
            ));
            None
        }
    };
    let actions = string_list(obj.get("Action"), &format!("{at}/Action"), &mut errors);
    for (i, a) in actions.iter().enumerate() {
        // every Step Functions API action (`states:DescribeExecution`, `states:*`) may be
        // named: the server checks them for its principals
        let states_action = a.strip_prefix("states:").is_some_and(|n| {
            !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '*')
        });
        let known = ACTIONS.iter().chain(SERVER_ACTIONS);
        if !states_action && !integration_action(a) && !known.clone().any(|k| glob_match(a, k)) {
            errors.push(perr(
                format!("{at}/Action/{i}"),
                format!(
                    "`{a}` matches no weft action (known: {}; or an AWS service action a resource-mapped integration needs, such as dynamodb:PutItem)",
                    known.copied().collect::<Vec<_>>().join(", ")
                ),
            ));
        }
    }
    let resources = string_list(obj.get("Resource"), &format!("{at}/Resource"), &mut errors);
    let allow = effect != Some(Effect::Deny);
    let mut patterns = Vec::new();
    for (i, r) in resources.iter().enumerate() {
        match ResourcePattern::parse(r, allow, &actions) {
            Ok(p) => patterns.push(p),
            Err(reason) => errors.push(perr(format!("{at}/Resource/{i}"), reason)),
        }
        if let Some(name) = r.strip_prefix("secret:") {
            if let Err(reason) = crate::secret_name::check_pattern(name) {
                errors.push(perr(format!("{at}/Resource/{i}"), reason));
            }
        }
    }
    match (effect, errors.is_empty()) {
        (Some(effect), true) => Ok(Statement {
            sid,
            effect,
            actions,
            resources,
            patterns,
            index,
        }),
        _ => Err(errors),
    }
}

fn string_list(v: Option<&Value>, at: &str, errors: &mut Vec<PolicyError>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) if !a.is_empty() => {
            let mut out = Vec::new();
            for (i, x) in a.iter().enumerate() {
                match x.as_str() {
                    Some(s) => out.push(s.to_string()),
                    None => errors.push(perr(format!("{at}/{i}"), "must be a string")),
                }
            }
            out
        }
        Some(Value::Array(_)) => {
            errors.push(perr(at, "must not be empty"));
            vec![]
        }
        Some(_) => {
            errors.push(perr(at, "must be a string or an array of strings"));
            vec![]
        }
        None => {
            errors.push(perr(at, "missing"));
            vec![]
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_policy_survives_the_round_trip_through_its_document() {
        let text = r#"{"Version":"2012-10-17","Statement":[
            {"Sid":"data","Effect":"Allow","Action":["fs:Read","fs:Write"],"Resource":["file:data/*"]},
            {"Effect":"Deny","Action":"fs:*","Resource":"file:data/private/*"},
            {"Effect":"Allow","Action":"secrets:Get","Resource":"secret:db-*"}]}"#;
        let p = super::Policy::parse(text).unwrap();
        let back = super::Policy::from_value(&p.to_value()).unwrap();
        for (action, resource) in [
            ("fs:Read", "file:data/a.csv"),
            ("fs:Write", "file:data/private/k"),
            ("secrets:Get", "secret:db-password"),
            ("secrets:Get", "secret:root"),
            ("http:Request", "https://example.com/"),
        ] {
            assert_eq!(
                p.evaluate(action, resource),
                back.evaluate(action, resource),
                "{action} {resource}"
            );
        }
        assert_eq!(back.statements[0].sid.as_deref(), Some("data"));
        assert_eq!(back.statements.len(), 3);
    }

    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("fs:*", "fs:Read"));
        assert!(glob_match("*", ""));
        assert!(glob_match(
            "http://127.0.0.1:*/*",
            "http://127.0.0.1:8080/x"
        ));
        assert!(!glob_match(
            "http://127.0.0.1:*/*",
            "http://127.0.0.2:8080/x"
        ));
        assert!(glob_match("secret:db?", "secret:db1"));
        assert!(!glob_match("secret:db?", "secret:db"));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(!glob_match("a*b*c", "aXXbYY"));
    }

    #[test]
    fn explicit_deny_wins_and_default_denies() {
        let p = Policy::parse(
            r#"{"Version":"2012-10-17","Statement":[
              {"Effect":"Allow","Action":"secrets:Get","Resource":"secret:*"},
              {"Sid":"NoRoot","Effect":"Deny","Action":["secrets:*"],"Resource":["secret:root"]}]}"#,
        )
        .unwrap();
        assert!(p.evaluate("secrets:Get", "secret:db").allowed());
        let d = p.evaluate("secrets:Get", "secret:root");
        assert_eq!(d.effect, Effect::Deny);
        assert_eq!(d.statement.as_deref(), Some("NoRoot (/Statement/1)"));
        let d = p.evaluate("http:Request", "http://x/");
        assert_eq!(
            d,
            Decision {
                effect: Effect::Deny,
                statement: None
            }
        );
        assert!(!Policy::deny_all().evaluate("fs:Read", "file:x").allowed());
    }

    #[test]
    fn aws_service_actions_are_named_but_weft_typos_are_not() {
        let p = Policy::parse(
            r#"{"Statement":[{"Effect":"Allow","Action":["dynamodb:PutItem","sns:*","s3:Get*"],"Resource":"*"}]}"#,
        )
        .unwrap();
        assert!(p
            .evaluate("dynamodb:PutItem", "arn:aws:states:::dynamodb:putItem")
            .allowed());
        assert!(p
            .evaluate("s3:GetObject", "arn:aws:states:::aws-sdk:s3:getObject")
            .allowed());
        assert!(!p.evaluate("dynamodb:DeleteItem", "*").allowed());
        assert!(!p.evaluate("fs:Read", "file:x").allowed());
        for bad in [
            "fs:Raed",
            "dags:Trigger",
            "Dynamodb:PutItem",
            "ddb:",
            "ddb:Put/Item",
        ] {
            let text = format!(
                r#"{{"Statement":[{{"Effect":"Allow","Action":"{bad}","Resource":"*"}}]}}"#
            );
            assert!(Policy::parse(&text).is_err(), "{bad}");
        }
    }

    #[test]
    fn errors_carry_pointers() {
        let errs = Policy::parse(
            r#"{"Statement":[{"Effect":"Allow","Action":["fs:Raed"],"Resource":"file:data/*"},
                             {"Effect":"Permit","Action":"fs:Read","Resource":[],"Condition":{}}]}"#,
        )
        .unwrap_err();
        let text: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert!(
            text.iter()
                .any(|e| e.starts_with("/Statement/0/Action/0: `fs:Raed` matches no weft action")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|e| e.starts_with("/Statement/1/Effect: `Permit`")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|e| e.starts_with("/Statement/1/Resource: must not be empty")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|e| e.starts_with("/Statement/1/Condition:")),
            "{text:?}"
        );
        assert_eq!(Policy::parse("[").unwrap_err()[0].pointer, "");
    }

    #[test]
    fn server_actions_are_known_and_misspellings_refused() {
        let p = Policy::parse(
            r#"{"Statement":[{"Effect":"Allow","Action":["dags:*","plugins:ListPlugins","weft:Get*"],"Resource":"*"},
                             {"Effect":"Deny","Action":"dags:TriggerDagRun","Resource":"weft:dag:prod-*"}]}"#,
        )
        .unwrap();
        assert!(p
            .evaluate("dags:ClearTaskInstances", "weft:dag:a")
            .allowed());
        assert!(!p
            .evaluate("dags:TriggerDagRun", "weft:dag:prod-x")
            .allowed());
        assert!(p.evaluate("weft:GetAudit", "weft:audit").allowed());
        // a misspelt Deny would silently deny nothing: it is an error instead
        for bad in [
            "dags:TrigerDagRun",
            "dag:TriggerDagRun",
            "plugins:List",
            "weft:*Nope",
        ] {
            let text =
                format!(r#"{{"Statement":[{{"Effect":"Deny","Action":"{bad}","Resource":"*"}}]}}"#);
            let errs = Policy::parse(&text).unwrap_err();
            assert_eq!(errs[0].pointer, "/Statement/0/Action/0", "{bad}");
        }
    }
}
