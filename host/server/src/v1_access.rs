//! Who calls a `/v1` route and what they may see. Every route of the web UI's JSON endpoints
//! ([`crate::rest`], [`crate::live`], [`crate::audit`], [`crate::express`],
//! [`crate::metrics`], [`crate::sm_summary`], [`crate::dag_landing`]) runs through [`decide`]: the request is authenticated as it was sent
//! (its real method, path, query, headers and body, so a SigV4 signature is bound to its route
//! and body), the route's action is authorised with the caller's policy on the canonical
//! resource the route then uses, and the decision with its outcome is written to the audit
//! log. Lists keep only the items the caller may see ([`Ctx::may`]).
//!
//! The action vocabulary (documented in the README's server section):
//! - Step Functions actions where a route mirrors one, on the execution or state machine ARN:
//!   `states:ListExecutions` (and `states:DescribeExecution` per listed execution),
//!   `states:GetExecutionHistory` (live events, task logs, Express execution logs); the
//!   state machines' summary lists those the caller may `states:DescribeStateMachine`, with
//!   counts only where it may also `states:ListExecutions`; waiting
//!   task tokens need `states:GetExecutionHistory` and `states:SendTaskSuccess` (a token lets
//!   its holder complete the task).
//! - DAGs, on `weft:dag:DAG_ID`: `dags:ListDags`, `dags:GetDag`, `dags:ListDagRuns`,
//!   `dags:TriggerDagRun`, `dags:ClearTaskInstances`, `dags:GetTaskLogs`;
//!   `dags:ListImportErrors` on `weft:dags` (the DAG folder and the files that fail to load).
//! - `plugins:ListPlugins` on `weft:plugin:NAME`; `weft:GetAudit` on `weft:audit`;
//!   `weft:GetMetrics` on `weft:metrics`.

use crate::audit;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// A `/v1` request as it was sent: what authentication checks.
pub struct V1Request {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl V1Request {
    /// The raw query string.
    pub fn query(&self) -> Option<&str> {
        self.uri.query()
    }
}

impl<S: Send + Sync> FromRequest<S> for V1Request {
    type Rejection = Response;

    async fn from_request(req: Request, _: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let body = axum::body::to_bytes(body, crate::MAX_BODY)
            .await
            .map_err(|e| {
                ApiError::validation(format!(
                    "request body larger than {} bytes or unreadable: {e}",
                    crate::MAX_BODY
                ))
                .with_status(StatusCode::PAYLOAD_TOO_LARGE)
                .into_response()
            })?;
        Ok(V1Request {
            method: parts.method,
            uri: parts.uri,
            headers: parts.headers,
            body,
        })
    }
}

/// One request's decisions: the caller, the route's action and the resource it was decided on.
pub struct Ctx {
    principal: Option<Principal>,
    action: &'static str,
    resource: String,
    decided: bool,
}

impl Ctx {
    /// The route's decision: its action on `resource` (canonical: the value the route then
    /// uses). Recorded in the audit log with the request's outcome.
    pub fn authorize(&mut self, resource: impl Into<String>) -> Result<(), ApiError> {
        self.resource = resource.into();
        self.decided = true;
        check(self.principal.as_ref(), self.action, &self.resource)
    }

    /// The route's decision is made per item (a list filtered with [`Ctx::may`]): records
    /// `resource` (the list's scope, `*` for all) as the request's resource.
    pub fn filtered(&mut self, resource: impl Into<String>) {
        self.resource = resource.into();
        self.decided = true;
    }

    /// A further decision the route needs (another action on the same or another resource).
    /// A denial is the request's outcome, recorded with this action and resource.
    pub fn authorize_also(&mut self, action: &'static str, resource: &str) -> Result<(), ApiError> {
        let r = check(self.principal.as_ref(), action, resource);
        if r.is_err() {
            self.action = action;
            self.resource = resource.to_string();
        }
        r
    }

    /// Whether the caller may `action` on `resource`: filters the items of a list (the list
    /// call itself is the audited decision, not each item).
    pub fn may(&self, action: &str, resource: &str) -> bool {
        check(self.principal.as_ref(), action, resource).is_ok()
    }

    /// The caller's name in the audit log (`-` without authentication).
    pub fn caller(&self) -> &str {
        self.principal.as_ref().map_or("-", |p| p.name.as_str())
    }
}

/// Checks the policy of `p` for the full IAM action `action` (`states:…`, `dags:…`, …) on
/// `resource`. A denial is AWS's `AccessDeniedException`, HTTP 403.
pub fn check(p: Option<&Principal>, action: &str, resource: &str) -> Result<(), ApiError> {
    let r = match action.strip_prefix("states:") {
        Some(a) => crate::auth::authorize(p, a, resource),
        None => match p.and_then(|p| p.policy.as_ref()) {
            None => Ok(()),
            Some(policy) if policy.evaluate(action, resource).allowed() => Ok(()),
            Some(_) => Err(ApiError::new(
                "AccessDeniedException",
                format!(
                    "User: {} is not authorized to perform: {action} on resource: {resource}",
                    p.map_or("", |p| p.name.as_str())
                ),
            )),
        },
    };
    r.map_err(|e| e.with_status(StatusCode::FORBIDDEN))
}

/// Runs a `/v1` route: authenticates `req`, runs `f` (which must make the route's decision
/// with [`Ctx::authorize`] before it reads anything), audits the decision and its outcome.
pub fn decide<T>(
    app: &AppState,
    req: &V1Request,
    action: &'static str,
    f: impl FnOnce(&mut Ctx) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    decide_with(app, req, action, true, f)
}

/// [`decide`]; `audit_allowed: false` records only refusals (for `/metrics`, which a scraper
/// reads every few seconds).
pub fn decide_with<T>(
    app: &AppState,
    req: &V1Request,
    action: &'static str,
    audit_allowed: bool,
    f: impl FnOnce(&mut Ctx) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    let mut ctx = Ctx {
        principal: None,
        action,
        resource: "*".to_string(),
        decided: false,
    };
    let r = authenticate(app, req).and_then(|p| {
        ctx.principal = p;
        let r = f(&mut ctx);
        if r.is_ok() && !ctx.decided {
            // a route that forgot its decision must not serve anything
            return Err(ApiError::internal(format!(
                "route {} made no authorization decision",
                req.uri.path()
            )));
        }
        r
    });
    let denied = matches!(&r, Err(e) if e.status == StatusCode::FORBIDDEN);
    if audit_allowed || r.is_err() && (denied || !ctx.decided) {
        let outcome: Result<Value, ApiError> = match &r {
            Ok(_) => Ok(Value::Null),
            Err(e) => Err(e.clone()),
        };
        audit::record(app, ctx.caller(), ctx.action, &ctx.resource, &outcome);
    }
    r
}

/// Authenticates a `/v1` request as sent (`Authorization: Bearer SECRET` or a SigV4 signature
/// over its method, path, query, headers and body). `None`: the server runs without
/// authentication.
pub fn authenticate(app: &AppState, req: &V1Request) -> Result<Option<Principal>, ApiError> {
    crate::auth::check(
        app.tokens.as_ref(),
        &crate::auth::Request {
            method: req.method.as_str(),
            path: req.uri.path(),
            query: req.uri.query().unwrap_or(""),
            headers: &req.headers,
            body: &req.body,
        },
    )
    .map_err(|e| {
        if e.status == StatusCode::BAD_REQUEST {
            // an unknown key or a malformed signature: still "not allowed in"
            e.with_status(StatusCode::FORBIDDEN)
        } else {
            e
        }
    })
}

/// The resource a DAG id names: `weft:dag:DAG_ID`, for ids of Airflow's alphabet (letters,
/// digits, `_`, `-`, `.`; 1 to 250 characters); any other id is a validation error before
/// anything is authorised or read.
pub fn dag_resource(dag_id: &str) -> Result<String, ApiError> {
    if weft_dag::valid_dag_id(dag_id) {
        Ok(format!("weft:dag:{dag_id}"))
    } else {
        Err(ApiError::validation(format!(
            "`{dag_id}` is not a DAG id (1 to 250 letters, digits, `_`, `-` or `.`)"
        )))
    }
}

/// The resource of a DAG folder's import errors.
pub const DAG_FOLDER: &str = "weft:dags";
/// The resource of the audit log.
pub const AUDIT_LOG: &str = "weft:audit";
/// The resource of the Prometheus metrics.
pub const METRICS: &str = "weft:metrics";

/// The resource of a plugin.
pub fn plugin_resource(name: &str) -> String {
    format!("weft:plugin:{name}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn principal(policy: &str) -> Principal {
        Principal {
            name: "dev".into(),
            access_key_id: "K".into(),
            secret: "S".into(),
            policy: Some(Arc::new(weft_sandbox::Policy::parse(policy).unwrap())),
        }
    }

    #[test]
    fn actions_of_every_namespace_are_checked() {
        let p = principal(
            r#"{"Version":"2012-10-17","Statement":[
              {"Effect":"Allow","Action":["states:List*","states:Describe*","dags:ListDags","dags:GetDag"],
               "Resource":["arn:aws:states:*:*:stateMachine:dev-*","arn:aws:states:*:*:execution:dev-*","weft:dag:dev-*"]},
              {"Effect":"Deny","Action":["dags:*"],"Resource":["weft:dag:dev-secret"]}]}"#,
        );
        let p = Some(&p);
        assert!(check(
            p,
            "states:ListExecutions",
            "arn:aws:states:us-east-1:0:stateMachine:dev-a"
        )
        .is_ok());
        let e = check(
            p,
            "states:ListExecutions",
            "arn:aws:states:us-east-1:0:stateMachine:prod",
        )
        .unwrap_err();
        assert_eq!(
            (e.kind, e.status),
            ("AccessDeniedException", StatusCode::FORBIDDEN)
        );
        assert!(check(p, "dags:GetDag", "weft:dag:dev-x").is_ok());
        assert!(check(p, "dags:TriggerDagRun", "weft:dag:dev-x").is_err());
        assert!(check(p, "dags:GetDag", "weft:dag:dev-secret").is_err());
        assert!(check(p, "plugins:ListPlugins", "weft:plugin:echo").is_err());
        assert!(check(None, "dags:TriggerDagRun", "weft:dag:x").is_ok());
        let e = check(p, "weft:GetAudit", AUDIT_LOG).unwrap_err();
        assert!(
            e.message.contains("weft:GetAudit on resource: weft:audit"),
            "{}",
            e.message
        );
    }

    #[test]
    fn dag_ids_are_checked_before_use() {
        assert_eq!(
            dag_resource("daily_orders.v2").unwrap(),
            "weft:dag:daily_orders.v2"
        );
        for bad in ["", "dev-*", "a/b", "a:b", "dev-?", "x y", &"a".repeat(251)] {
            assert!(dag_resource(bad).is_err(), "{bad}");
        }
    }
}
