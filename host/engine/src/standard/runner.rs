//! Running the tasks of executions, and recording their history.
//!
//! [`ExecutionTaskRunner`] runs plugin tasks in the sandbox (pinning the plugin's digest in the
//! execution's journal the first time it resolves, so a replay or redrive runs the same code)
//! and, for Standard executions, the tasks that wait for the outside world: `.waitForTaskToken`
//! callbacks, activity workers and nested executions (`states:startExecution[.sync]`,
//! `weft:statemachine:NAME`), and AWS service integrations through their resource map
//! ([`super::resource_maps`]). [`DurableHistory`] queues history events for the history store
//! (see [`crate::persistence::pending`]) and, when a run is a replay, recognises the events already recorded
//! so the history holds each event once.
//!
//! Whatever a task makes the host do on the execution's behalf is the execution role's
//! decision, reported to the runtime's [`super::Observer`] (the server audits it), and a
//! denial fails the task with `Sandbox.PermissionDenied`:
//! `states:StartExecution` on a child state machine's ARN (nested executions),
//! `dags:TriggerDagRun` on `weft:dag:ID` (DAG runs), and `iam:PassRole` on a
//! `Credentials.RoleArn` that the definition did not name literally (a `RoleArn.$` or JSONata
//! value resolved at run time; literal ones were the caller's PassRole decision when the
//! definition was created or updated).

use super::runtime::{self, TokenRecord};
use super::Runtime;
use crate::durable::{Entry, ExecControl, Suspension};
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use weft_asl::error::names;
use weft_asl::resource::{IntegrationPattern, ResourceKind};
use weft_asl::{HistoryEvent, HistorySink, TaskFailure, TaskRequest, TaskRunner};
use weft_sandbox::Policy;

pub struct ExecutionTaskRunner {
    /// Plugin digests this run pinned (the journal holds them too; this spares the lookups).
    pub pins: std::sync::Mutex<HashMap<String, String>>,
    pub rt: Arc<Runtime>,
    pub execution_role: Option<Arc<Policy>>,
    /// The durable control of a Standard execution; `None` for Express runs.
    pub ctl: Option<Arc<ExecControl>>,
    /// The execution's trace header (StartExecution `traceHeader`).
    pub trace_header: Option<String>,
    /// The execution role as recorded (`roleArn`), for audit records.
    pub role_arn: String,
    /// The execution's ARN, for audit records.
    pub execution_arn: String,
    /// The canonical roles the definition names literally in `Credentials.RoleArn` (passed by
    /// its creator; see [`super::definition_roles::static_roles`]).
    pub static_roles: std::collections::HashSet<String>,
    /// The resource maps serving AWS service integrations (the state machine's own, then
    /// `$WEFT_HOME`'s; see [`super::resource_maps`]).
    pub resource_maps: crate::resource_map::ResourceMaps,
}

/// The error of a task its execution role does not permit.
pub const PERMISSION_DENIED: &str = "Sandbox.PermissionDenied";

/// Evaluates `action` on `resource` for an execution role (`None`: no role, nothing allowed),
/// reports the decision (made as `principal`) to the runtime's observer, and fails with
/// [`PERMISSION_DENIED`] when it is not allowed.
pub fn role_allows(
    rt: &Runtime,
    role: Option<&Policy>,
    principal: &str,
    action: &str,
    resource: &str,
) -> Result<(), TaskFailure> {
    let allowed = role.is_some_and(|r| r.evaluate(action, resource).allowed());
    rt.observer
        .role_decision(principal, action, resource, allowed);
    if allowed {
        Ok(())
    } else {
        Err(failure(
            PERMISSION_DENIED,
            format!("{principal} is not allowed to perform {action} on {resource}"),
        ))
    }
}

fn failure(error: &str, cause: impl Into<String>) -> TaskFailure {
    TaskFailure {
        error: error.to_string(),
        cause: cause.into(),
    }
}

fn suspended(cause: &str) -> TaskFailure {
    failure(names::SUSPENDED, cause)
}

/// A guest interrupted by StopExecution or shutdown: the run is suspended, not failed.
fn interrupted(f: TaskFailure) -> TaskFailure {
    if f.error == "Sandbox.Cancelled" {
        suspended(&f.cause)
    } else {
        f
    }
}

fn journal_failure(e: impl std::fmt::Display) -> TaskFailure {
    suspended(&format!("the journal cannot be used: {e}"))
}

/// What an external task waits for.
enum Waiting<'a> {
    /// SendTaskSuccess/Failure with the token.
    Callback,
    /// An activity worker (GetActivityTask) with the token.
    Activity(&'a str),
    /// The end of a child execution.
    Child,
}

impl ExecutionTaskRunner {
    /// The execution role's decision on `action` over `resource` (audited).
    fn role_allows(&self, action: &str, resource: &str) -> Result<(), TaskFailure> {
        let principal = format!("{} (execution {})", self.role_arn, self.execution_arn);
        role_allows(
            &self.rt,
            self.execution_role.as_deref(),
            &principal,
            action,
            resource,
        )
    }

    /// A task's `Credentials`, checked and with its `RoleArn` in canonical spelling: a role
    /// the definition names literally was passed by its creator; any other (resolved at run
    /// time) needs the execution role's `iam:PassRole` on it.
    fn credentials(&self, credentials: &Value) -> Result<Value, TaskFailure> {
        let Some(reference) = credentials.get("RoleArn").and_then(Value::as_str) else {
            return Err(failure(
                "States.Permissions",
                "Credentials must name a RoleArn (weft:role:NAME)",
            ));
        };
        let Some(role) = crate::roles::canonical_role(reference) else {
            return Err(failure(
                "States.Permissions",
                format!("Credentials.RoleArn `{reference}` is not a role (weft:role:NAME or arn:aws:iam::ACCOUNT:role/NAME)"),
            ));
        };
        if !self.static_roles.contains(&role) {
            self.role_allows("iam:PassRole", &role)?;
        }
        let mut out = credentials.clone();
        out["RoleArn"] = Value::String(role);
        Ok(out)
    }

    fn host(&self) -> Result<Arc<crate::PluginHost>, TaskFailure> {
        self.rt
            .plugin_host()
            .map_err(|e| failure(names::TASK_FAILED, e))
    }

    fn ctl(&self) -> Result<&Arc<ExecControl>, TaskFailure> {
        self.ctl.as_ref().ok_or_else(|| {
            failure(
                names::RUNTIME,
                "this integration pattern needs a STANDARD state machine (Express executions run plugin tasks only)",
            )
        })
    }

    /// Runs the plugin a task names, with its digest pinned in the journal (Standard runs).
    fn run_plugin(&self, req: &TaskRequest<'_>) -> Result<Value, TaskFailure> {
        // the queue key is weft's, never the operator's input
        let queue = super::remote_tasks::queue_of(req)?;
        let stripped = super::remote_tasks::without_queue_key(req);
        let req = &stripped;
        let host = self.host()?;
        // every attempt is recorded in the task-log tree for the web UI; StopExecution and
        // shutdown interrupt the guest (see `sandbox_runner`)
        let runner = self.sandbox_runner(&host);
        let Some(ctl) = &self.ctl else {
            return super::task_logs::run_logged(&self.rt, runner, req);
        };
        // shutdown is not the task's failure
        let interrupted = |r: Result<Value, TaskFailure>| match r {
            Err(f) if f.error == "Sandbox.Cancelled" => Err(suspended(&f.cause)),
            other => other,
        };
        // pin the digest: the first resolution is journaled and reused by replays and redrives
        let (name, reference) = match &req.resource.kind {
            ResourceKind::Plugin {
                name,
                version,
                digest: None,
            } => (
                name.clone(),
                match version {
                    Some(v) => crate::PluginRef::Version(name.clone(), v.clone()),
                    None => crate::PluginRef::Latest(name.clone()),
                },
            ),
            ResourceKind::LambdaInvoke | ResourceKind::LambdaFunction { .. }
                if !req.target.contains('#') =>
            {
                match crate::PluginRef::parse(&req.target) {
                    Ok(r) => (r.name().to_string(), r),
                    Err(_) => {
                        return interrupted(super::task_logs::run_logged(&self.rt, runner, req))
                    }
                }
            }
            _ => return interrupted(self.run_here_or_remote(runner, req, queue, ctl)),
        };
        let pin_key = format!("pin:{}", req.target_or(&name));
        let known = self
            .pins
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&pin_key)
            .cloned();
        let journaled = match known {
            Some(d) => Some(Entry::Pinned { digest: d }),
            None => ctl.lookup(&pin_key).map_err(journal_failure)?,
        };
        let digest = match journaled {
            Some(Entry::Pinned { digest }) => digest,
            _ => match crate::plugin_host::resolve(&self.rt.store, &reference) {
                Ok(rec) => {
                    ctl.record(
                        &pin_key,
                        &Entry::Pinned {
                            digest: rec.digest.to_hex(),
                        },
                    )
                    .map_err(journal_failure)?;
                    rec.digest.to_hex()
                }
                // not installed: let the runner report it with its usual message
                Err(_) => return interrupted(super::task_logs::run_logged(&self.rt, runner, req)),
            },
        };
        self.pins
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(pin_key, digest.clone());
        let mut resource = req.resource.clone();
        let mut pinned = req.clone();
        match &mut resource.kind {
            ResourceKind::Plugin { digest: d, .. } => *d = Some(digest),
            _ => pinned.target = format!("{name}#{digest}"),
        }
        pinned.resource = &resource;
        interrupted(self.run_here_or_remote(runner, &pinned, queue, ctl))
    }

    /// Runs a Standard execution's plugin task on this node, or on a worker of `queue` when
    /// the dispatcher routes the queue remotely (see [`crate::remote_tasks`]).
    fn run_here_or_remote(
        &self,
        runner: crate::asl_tasks::SandboxTaskRunner<'_>,
        req: &TaskRequest<'_>,
        queue: String,
        ctl: &Arc<ExecControl>,
    ) -> Result<Value, TaskFailure> {
        if self.rt.dispatch.routes_remote(&queue) {
            let r = crate::asl_tasks::SandboxTaskRunner::plugin_reference(req)?;
            // not installed: the local runner reports it with its usual message
            if let Ok(rec) = crate::plugin_host::resolve(&self.rt.store, &r) {
                let c = ctl.clone();
                return super::remote_tasks::run(&self.rt, &runner, req, &rec, queue, &move || {
                    c.is_cancelled()
                });
            }
        }
        super::task_logs::run_logged(&self.rt, runner, req)
    }

    /// Registers an external wait (callback token, activity, child execution) and returns its
    /// answer: from the journal when it has arrived, else by suspending the run (at any depth)
    /// until it arrives or times out.
    fn wait_external(
        &self,
        req: &TaskRequest<'_>,
        token: &str,
        waiting: Waiting<'_>,
    ) -> Result<Value, TaskFailure> {
        self.wait_external_registered(req, token, waiting, false)
    }

    /// The record of `token`: what a callback, heartbeat or activity answer finds it by.
    fn token_record(
        req: &TaskRequest<'_>,
        execution: &str,
        key: &str,
        waiting: &Waiting<'_>,
    ) -> TokenRecord {
        let now = super::records::now_ms();
        TokenRecord {
            execution: execution.to_string(),
            key: key.to_string(),
            timeout_at_ms: req
                .timeout_seconds
                .map(|t| now.saturating_add((t.min(i64::MAX as u64 / 1000) as i64) * 1000)),
            heartbeat_ms: req.heartbeat_seconds.map(|h| h.saturating_mul(1000)),
            heartbeat_at_ms: req
                .heartbeat_seconds
                .map(|h| now.saturating_add((h.min(i64::MAX as u64 / 1000) as i64) * 1000)),
            activity: match waiting {
                Waiting::Activity(a) => Some(a.to_string()),
                _ => None,
            },
            input: match waiting {
                Waiting::Activity(_) => Some(req.payload.to_string()),
                _ => None,
            },
            claimed_by: None,
            state: req.state_name.to_string(),
            since_ms: now,
        }
    }

    /// [`Self::wait_external`], the token already stored when `registered`.
    fn wait_external_registered(
        &self,
        req: &TaskRequest<'_>,
        token: &str,
        waiting: Waiting<'_>,
        registered: bool,
    ) -> Result<Value, TaskFailure> {
        let ctl = self.ctl()?;
        let jk = crate::durable::attempt_key(req);
        let rt = &self.rt;
        let journal = ctl.journal();
        let answer = |journal: &crate::durable::Journal| -> Result<Option<Result<Value, TaskFailure>>, TaskFailure> {
            Ok(match journal.get(&jk).map_err(journal_failure)? {
                Some(Entry::Ok { output }) => Some(Ok(output)),
                Some(Entry::Err { error, cause }) => Some(Err(TaskFailure { error, cause })),
                _ => None,
            })
        };
        if let Some(a) = answer(journal)? {
            rt.forget_token(token);
            return a;
        }
        if !matches!(waiting, Waiting::Child) {
            if !registered {
                let rec = Self::token_record(req, journal.execution(), &jk, &waiting);
                rt.register_token(token, &rec).map_err(journal_failure)?;
            }
            // StopExecution forgets the tokens it can see; one registered after its switch
            // flipped is forgotten here
            if ctl.is_stopped() {
                rt.forget_token(token);
                return Err(suspended("the execution is stopping"));
            }
            // an answer may have arrived before the registration was visible
            if let Some(a) = answer(journal)? {
                rt.forget_token(token);
                return a;
            }
        }
        // (top-level or inside Map/Parallel: an answer schedules the execution again)
        ctl.suspend_for(Suspension::External);
        Err(suspended("waiting for an external answer"))
    }

    /// `states:startExecution[.sync[:2]]` and `weft:statemachine:NAME`: starts the child
    /// execution (once: its name derives from this attempt) and, for `.sync`, waits for it.
    fn child_execution(&self, req: &TaskRequest<'_>, name: &str) -> Result<Value, TaskFailure> {
        let ctl = self.ctl()?;
        let params = &req.parameters;
        let sm_name = if name.is_empty() {
            let arn = params
                .get("StateMachineArn")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    failure(
                        names::RUNTIME,
                        "states:startExecution needs Parameters.StateMachineArn",
                    )
                })?;
            match super::arn::Arn::parse(arn) {
                Ok(super::arn::Arn::StateMachine {
                    name,
                    qualifier: None,
                }) => name,
                Ok(_) => {
                    return Err(failure(
                        names::TASK_FAILED,
                        format!("InvalidArn: StateMachineArn `{arn}` must be an unqualified state machine ARN"),
                    ))
                }
                Err(e) => return Err(failure(names::TASK_FAILED, format!("{}: {}", e.kind, e.message))),
            }
        } else {
            name.to_string()
        };
        // the execution role must allow starting the child (its output comes back only then)
        self.role_allows("states:StartExecution", &super::records::sm_arn(&sm_name))?;
        let input = match params.get("Input") {
            Some(Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
            None if name.is_empty() => "{}".to_string(),
            None => req.payload.to_string(),
        };
        let jk = crate::durable::attempt_key(req);
        let child_name = match params.get("Name").and_then(Value::as_str) {
            Some(n) => n.to_string(),
            None => {
                let h = blake3::hash(format!("{}\0{jk}", ctl.journal().execution()).as_bytes());
                h.to_hex()[..32].to_string()
            }
        };
        let wait = req.resource.pattern == IntegrationPattern::Sync;
        let parent = wait.then(|| (ctl.journal().execution().to_string(), jk.clone()));
        let wants_json = req.resource.raw.ends_with(":2");
        let child =
            runtime::start_child(&self.rt, &sm_name, &child_name, &input, parent, wants_json)
                .map_err(|e| failure(names::TASK_FAILED, format!("{}: {}", e.kind, e.message)))?;
        if !wait {
            return Ok(json!({
                "ExecutionArn": child.arn,
                "StartDate": super::records::format_ms(child.start_ms),
            }));
        }
        self.wait_external(req, &child.arn, Waiting::Child)
    }
}

impl ExecutionTaskRunner {
    /// `weft:dag:ID`: triggers a run of the DAG (once per attempt: its id is journaled) with the
    /// task's parameters as `dag_run.conf`, and waits for it, suspended between checks a second
    /// apart. A failed run fails the task (States.TaskFailed, the run's outcome as Cause).
    fn dag_run(&self, req: &TaskRequest<'_>, id: &str) -> Result<Value, TaskFailure> {
        let ctl = self.ctl()?;
        let pin = format!("{}:dagrun", crate::durable::attempt_key(req));
        let run_id = match ctl.journal().get(&pin).map_err(journal_failure)? {
            Some(Entry::Pinned { digest }) => digest,
            _ => {
                // the execution role must allow triggering the DAG (decided once per attempt,
                // not at each poll of its outcome)
                self.role_allows(DAG_TRIGGER, &format!("{DAG_RESOURCE}{id}"))?;
                let conf = match &req.parameters {
                    Value::Object(_) => req.parameters.clone(),
                    _ => json!({}),
                };
                let created = super::dag_scheduler::trigger(&self.rt, id, &json!({"conf": conf}))
                    .map_err(|e| {
                    failure(names::TASK_FAILED, format!("{}: {}", e.kind, e.message))
                })?;
                let run_id = created["runId"].as_str().unwrap_or_default().to_string();
                ctl.journal()
                    .put(
                        &pin,
                        &Entry::Pinned {
                            digest: run_id.clone(),
                        },
                    )
                    .map_err(journal_failure)?;
                ctl.commit().map_err(journal_failure)?;
                run_id
            }
        };
        match super::dag_scheduler::run_outcome(&self.rt, id, &run_id) {
            Err(e) => return Err(failure(names::TASK_FAILED, e)),
            Ok(Some(out)) if out["State"] == "success" => return Ok(out),
            Ok(Some(out)) => return Err(failure(names::TASK_FAILED, out.to_string())),
            Ok(None) => {}
        }
        if ctl.is_cancelled() {
            return Err(suspended("the execution is stopping"));
        }
        // look again in a second
        let until_ms = super::records::now_ms() + 1000;
        ctl.suspend_for(Suspension::Timer { until_ms });
        Err(suspended("waiting for a DAG run"))
    }

    /// A mapped `.sync` job in `start_poll` mode on a Standard execution: the start call runs
    /// once per attempt (its result and time are journaled, so a restart or replay does not
    /// start the job again), then one poll per wake-up, the execution suspended on a timer
    /// between polls (no thread waits). `TimeoutSeconds` counts from the start call.
    fn durable_job(
        &self,
        req: &TaskRequest<'_>,
        integration: &crate::resource_map::Integration,
        entry: &crate::resource_map::MapEntry,
    ) -> Result<Value, TaskFailure> {
        use crate::integration_task::{poll_job, start_job};
        let ctl = self.ctl()?;
        let journal = ctl.journal();
        let ak = crate::durable::attempt_key(req);
        let (start_key, at_key, polls_key) = (
            format!("{ak}:job"),
            format!("{ak}:job-at"),
            format!("{ak}:job-polls"),
        );
        let pinned = |key: &str| -> Result<Option<String>, TaskFailure> {
            Ok(match journal.get(key).map_err(journal_failure)? {
                Some(Entry::Pinned { digest }) => Some(digest),
                _ => None,
            })
        };
        let host = self.host()?;
        let started = match journal.get(&start_key).map_err(journal_failure)? {
            Some(Entry::Ok { output }) => output,
            _ => {
                let out = super::task_logs::run_logged_with(
                    &self.rt,
                    self.sandbox_runner(&host),
                    req,
                    |r| start_job(r, req, integration, entry),
                )
                .map_err(interrupted)?;
                journal
                    .put(
                        &start_key,
                        &Entry::Ok {
                            output: out.clone(),
                        },
                    )
                    .map_err(journal_failure)?;
                let now = super::records::now_ms().to_string();
                journal
                    .put(&at_key, &Entry::Pinned { digest: now })
                    .map_err(journal_failure)?;
                ctl.commit().map_err(journal_failure)?;
                out
            }
        };
        let started_ms: i64 = pinned(&at_key)?
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(super::records::now_ms);
        let timeout = self.sandbox_runner(&host).task_limits(req).timeout;
        let deadline_ms =
            started_ms.saturating_add(i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX));
        let now = super::records::now_ms();
        if now >= deadline_ms {
            return Err(failure(
                names::TIMEOUT,
                format!(
                    "state '{}': the job did not finish within the task's timeout",
                    req.state_name
                ),
            ));
        }
        let n = pinned(&polls_key)?
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
            + 1;
        let remaining = std::time::Duration::from_millis((deadline_ms - now) as u64);
        let polled =
            super::task_logs::run_logged_with(&self.rt, self.sandbox_runner(&host), req, |r| {
                poll_job(r, req, integration, entry, &started, n, remaining)
            })
            .map_err(interrupted)?;
        if let Some(output) = polled {
            return Ok(output);
        }
        journal
            .put(
                &polls_key,
                &Entry::Pinned {
                    digest: n.to_string(),
                },
            )
            .map_err(journal_failure)?;
        ctl.commit().map_err(journal_failure)?;
        if ctl.is_cancelled() {
            return Err(suspended("the execution is stopping"));
        }
        let wait = i64::try_from(entry.poll_interval.as_millis()).unwrap_or(i64::MAX);
        let until_ms = super::records::now_ms()
            .saturating_add(wait)
            .min(deadline_ms);
        ctl.suspend_for(Suspension::Timer { until_ms });
        Err(suspended("waiting for a mapped job"))
    }

    /// The sandbox runner of this execution's plugin calls (maps, trace, StopExecution).
    fn sandbox_runner<'h>(
        &'h self,
        host: &'h crate::PluginHost,
    ) -> crate::asl_tasks::SandboxTaskRunner<'h> {
        let mut runner = crate::asl_tasks::SandboxTaskRunner::new(
            host,
            &self.rt.roles,
            self.execution_role.clone(),
            self.rt.base_dir.clone(),
        );
        runner.resource_maps = self.resource_maps.clone();
        runner.trace = Some(crate::telemetry::TraceIds::execution(
            &self.execution_arn,
            self.trace_header.as_deref(),
        ));
        if let Some(ctl) = &self.ctl {
            let c = ctl.clone();
            runner.cancel = Some(Arc::new(move || c.is_cancelled()));
        }
        runner
    }

    fn is_cancelled(&self) -> bool {
        self.ctl.as_ref().is_some_and(|c| c.is_cancelled())
    }
}

/// The action a state machine's role needs to run a DAG (`weft:dag:ID` tasks).
pub const DAG_TRIGGER: &str = "dags:TriggerDagRun";
/// The resource prefix of a DAG in policies: `weft:dag:DAG_ID`.
pub const DAG_RESOURCE: &str = "weft:dag:";

trait TargetOr {
    fn target_or<'a>(&'a self, name: &'a str) -> &'a str;
}

impl TargetOr for TaskRequest<'_> {
    fn target_or<'a>(&'a self, name: &'a str) -> &'a str {
        if self.target.is_empty() {
            name
        } else {
            &self.target
        }
    }
}

impl TaskRunner for ExecutionTaskRunner {
    fn run_task(&self, req: &TaskRequest<'_>) -> Result<Value, TaskFailure> {
        let _span =
            tracing::info_span!("task", state = %req.state_name, attempt = req.attempt).entered();
        if self.is_cancelled() {
            return Err(suspended("the execution is stopping"));
        }
        if let Some(c) = &req.credentials {
            let checked = self.credentials(c)?;
            let mut req = req.clone();
            req.credentials = Some(checked);
            return self.dispatch(&req);
        }
        self.dispatch(req)
    }
}

impl ExecutionTaskRunner {
    fn dispatch(&self, req: &TaskRequest<'_>) -> Result<Value, TaskFailure> {
        // a mapped integration is the execution role's decision, in the audit log (the sandbox
        // runner decides again with `Credentials` narrowing the role)
        if let Some(Ok((i, _))) = self.resource_maps.resolve(req.resource) {
            self.role_allows(&i.iam_action(), &i.iam_resource())?;
        }
        match &req.resource.kind {
            ResourceKind::Activity { name } => {
                let ctl = self.ctl()?;
                if !self.rt.activity_exists(name) {
                    return Err(failure(
                        "States.Runtime",
                        format!("activity `{name}` does not exist (CreateActivity first)"),
                    ));
                }
                let generation = ctl
                    .token_generation(&crate::durable::attempt_key(req))
                    .map_err(journal_failure)?;
                let token = crate::durable::task_token(
                    &self.rt.secret,
                    ctl.journal().execution(),
                    &req.key,
                    req.attempt,
                    generation,
                );
                self.wait_external(req, &token, Waiting::Activity(name))
            }
            ResourceKind::StateMachine { name } => self.child_execution(req, name),
            ResourceKind::Dag { id } => self.dag_run(req, id),
            // the built-in HTTP Task (it refuses .sync and .waitForTaskToken itself)
            ResourceKind::Service { .. }
                if crate::http_task::is_http_invoke(&req.resource.kind) =>
            {
                self.run_plugin(req)
            }
            ResourceKind::Service { .. } if req.task_token.is_none() => {
                match self.resource_maps.resolve(req.resource) {
                    // a Standard execution keeps a start+poll job in its journal
                    Some(Ok((i, entry)))
                        if self.ctl.is_some()
                            && crate::integration_task::is_start_poll(req, entry) =>
                    {
                        self.durable_job(req, &i, entry)
                    }
                    // the map names the plugin; the sandbox runner makes the call
                    Some(Ok(_)) => self.run_plugin(req),
                    Some(Err(i)) => Err(crate::integration_task::not_mapped(req.state_name, &i)),
                    None => Err(failure(
                        names::RUNTIME,
                        format!(
                            "the resource {} is not available in weft (map the work onto a weft:plugin)",
                            req.resource
                        ),
                    )),
                }
            }
            _ => match &req.task_token {
                Some(token) => {
                    // the plugin (if any) runs once per attempt, with the token in its input
                    let ctl = self.ctl()?;
                    let invoke_key = format!("{}:invoke", crate::durable::attempt_key(req));
                    let done = matches!(
                        ctl.journal().get(&invoke_key).map_err(journal_failure)?,
                        Some(Entry::Ok { .. })
                    );
                    // (an unmapped integration only waits: its callback can still come)
                    let runs_plugin =
                        matches!(
                            req.resource.kind,
                            ResourceKind::Plugin { .. }
                                | ResourceKind::LambdaInvoke
                                | ResourceKind::LambdaFunction { .. }
                        ) || matches!(self.resource_maps.resolve(req.resource), Some(Ok(_)));
                    if runs_plugin && !done {
                        // the token answers from now on: the plugin may hand it to a worker
                        // that calls SendTaskSuccess before the plugin even returns
                        let jk = crate::durable::attempt_key(req);
                        let rec = Self::token_record(
                            req,
                            ctl.journal().execution(),
                            &jk,
                            &Waiting::Callback,
                        );
                        self.rt
                            .register_token(token, &rec)
                            .map_err(journal_failure)?;
                        let invoked = self.run_plugin(req).and_then(|out| {
                            ctl.journal()
                                .put(&invoke_key, &Entry::Ok { output: out })
                                .map_err(journal_failure)?;
                            ctl.commit().map_err(journal_failure)
                        });
                        if let Err(e) = invoked {
                            self.rt.forget_token(token);
                            return Err(e);
                        }
                        return self.wait_external_registered(req, token, Waiting::Callback, true);
                    }
                    self.wait_external(req, token, Waiting::Callback)
                }
                None => self.run_plugin(req),
            },
        }
    }
}

/// Writes each event of a run to the history tree as it happens (so GetExecutionHistory
/// shows a running execution's progress). A resumed run replays from the start: events that
/// are already recorded are recognised (same type and details) and not written again; new
/// events are appended with fresh ids and their `previousEventId` links mapped. Nothing is
/// recorded once the execution is stopped. Each new event also goes to the execution log when
/// the state machine's `loggingConfiguration` keeps it (see [`super::execution_log::ExecutionLog`]).
pub struct DurableHistory {
    rt: Arc<Runtime>,
    arn: String,
    ctl: Option<Arc<ExecControl>>,
    /// Signatures of the recorded events, by id - 1.
    old: Vec<u64>,
    /// Replay id where the replay stopped matching the recorded prefix.
    diverged_at: Option<u64>,
    /// Recorded events not yet matched after the divergence, by signature.
    unmatched: HashMap<u64, VecDeque<u64>>,
    /// Recorded events matched by position before the divergence, by id - 1. Events of
    /// Parallel branches and Map iterations reach the sink in the order their threads deliver
    /// them, not always in id order: one with a lower replay id can arrive after the divergence,
    /// and must still find its recorded twin.
    matched_at: Vec<bool>,
    /// Replay id -> stored id, for every event recognised or written.
    id_map: HashMap<u64, u64>,
    /// Next free stored id.
    next_id: u64,
    /// Recorded events no run may take as its own: a redriven execution's failed path (see
    /// [`DurableHistory::load`]).
    excluded: std::collections::HashSet<u64>,
    /// The recorded events' times (epoch ms), by id - 1.
    old_ms: Vec<i64>,
    /// The events this replay recognised as recorded, for the run's traces.
    replayed: Arc<super::traces::Replayed>,
    /// The execution log the state machine's `loggingConfiguration` asks for.
    log: Option<super::execution_log::ExecutionLog>,
}

fn signature(ev: &HistoryEvent) -> u64 {
    let mut h = blake3::Hasher::new();
    h.update(ev.event_type.as_bytes());
    h.update(&[0]);
    h.update(ev.details.to_string().as_bytes());
    let b = h.finalize();
    u64::from_le_bytes(b.as_bytes()[..8].try_into().unwrap_or([0; 8]))
}

impl DurableHistory {
    /// True when nothing of the execution is recorded yet (its first run).
    pub fn is_new(&self) -> bool {
        self.old.is_empty()
    }

    /// The events this replay recognised as recorded so far (shared with the run's traces).
    pub fn replayed(&self) -> Arc<super::traces::Replayed> {
        self.replayed.clone()
    }

    fn matched(&self, replay_id: u64, stored_id: u64) {
        // (kept for the run's traces only)
        if let Some(ms) = self.old_ms.get((stored_id as usize).wrapping_sub(1)) {
            self.replayed.record(replay_id, *ms);
        }
    }

    /// A sink for `arn`, loading the signatures of what is already recorded.
    pub fn load(
        rt: &Arc<Runtime>,
        arn: &str,
        ctl: Option<Arc<ExecControl>>,
    ) -> Result<Self, super::RuntimeError> {
        let mut old = Vec::new();
        let mut old_ms = Vec::new();
        let traced = crate::telemetry::enabled();
        // (id, type, state name) of entries and exits, to find the states a redrive re-enters
        let mut marks: Vec<(u64, String, String)> = Vec::new();
        rt.pending.apply_if_queued(arn)?;
        // (id, previousEventId) of every event, and the id of the last ExecutionRedriven
        let mut links: Vec<(u64, u64)> = Vec::new();
        let mut last_redrive: Option<u64> = None;
        for v in crate::persistence::pending::history_events(rt.history.as_ref(), arn)? {
            for v in v {
                let v: Value = serde_json::from_slice(&v)?;
                let ty = v["type"].as_str().unwrap_or("").to_string();
                let id = v["id"].as_u64().unwrap_or(0);
                links.push((id, v["previousEventId"].as_u64().unwrap_or(0)));
                if ty == "ExecutionRedriven" {
                    last_redrive = Some(id);
                }
                if ty.ends_with("StateEntered") || ty.ends_with("StateExited") {
                    let name = v["stateEnteredEventDetails"]["name"]
                        .as_str()
                        .or(v["stateExitedEventDetails"]["name"].as_str())
                        .unwrap_or("")
                        .to_string();
                    marks.push((id, ty.clone(), name));
                }
                if traced {
                    old_ms.push((v["timestamp"].as_f64().unwrap_or(0.0) * 1000.0) as i64);
                }
                let details = super::records::details_of(&v);
                // the same signature as `signature` computes for a live event
                let mut h = blake3::Hasher::new();
                h.update(ty.as_bytes());
                h.update(&[0]);
                h.update(details.to_string().as_bytes());
                let b = h.finalize();
                old.push(u64::from_le_bytes(
                    b.as_bytes()[..8].try_into().unwrap_or([0; 8]),
                ));
            }
        }
        let next_id = old.len() as u64 + 1;
        // a redriven execution re-enters the states that were in progress when it ended: their
        // recorded entries, and the events that followed from them (the failed attempts, the
        // execution's end), belong to the run that failed and are never taken as a later run's
        let mut excluded = std::collections::HashSet::new();
        if let Some(redrive) = last_redrive {
            let mut open: HashMap<String, Vec<u64>> = HashMap::new();
            for (id, ty, name) in marks.into_iter().filter(|m| m.0 < redrive) {
                if ty.ends_with("StateEntered") {
                    open.entry(name).or_default().push(id);
                } else if let Some(v) = open.get_mut(&name) {
                    v.pop();
                }
            }
            excluded = open.into_values().flatten().collect();
            for (id, prev) in links.into_iter().filter(|l| l.0 <= redrive) {
                if excluded.contains(&prev) || id == redrive {
                    excluded.insert(id);
                }
            }
        }
        Ok(DurableHistory {
            rt: rt.clone(),
            arn: arn.to_string(),
            ctl,
            matched_at: vec![false; old.len()],
            old,
            diverged_at: None,
            unmatched: HashMap::new(),
            id_map: HashMap::new(),
            next_id,
            excluded,
            old_ms,
            replayed: Default::default(),
            log: super::execution_log::ExecutionLog::of_execution(rt, arn),
        })
    }

    fn write(&mut self, ev: &HistoryEvent) {
        if ev.event_type == "MapRunStarted" {
            if let Some(m) = ev.details["mapRunArn"].as_str() {
                super::map_runs::record_started(&self.rt, m, &self.arn);
            }
        }
        if self.rt.pending.push_event(&self.arn, ev.id, event_text(ev)) {
            self.rt.commit.nudge();
        }
        self.next_id = self.next_id.max(ev.id + 1);
        if let Some(log) = &self.log {
            log.write(&self.rt, &self.arn, std::slice::from_ref(ev));
        }
        self.rt.observer.history_event(&self.arn, ev);
    }
}

impl HistorySink for DurableHistory {
    fn event(&mut self, mut ev: HistoryEvent) {
        if self.ctl.as_ref().is_some_and(|c| c.is_stopped()) {
            return;
        }
        if self.old.is_empty() {
            self.write(&ev);
            return;
        }
        let sig = signature(&ev);
        let Some(d) = self.diverged_at else {
            match self.old.get(ev.id as usize - 1) {
                Some(s) if *s == sig && !self.excluded.contains(&ev.id) => {
                    self.matched_at[ev.id as usize - 1] = true;
                    self.id_map.insert(ev.id, ev.id);
                    self.matched(ev.id, ev.id);
                    return;
                }
                None => {
                    self.write(&ev);
                    return;
                }
                Some(_) => {
                    self.diverged_at = Some(ev.id);
                    // every recorded event not yet matched, also below the divergence (see
                    // `matched_at`)
                    for (i, s) in self.old.iter().enumerate() {
                        if self.matched_at[i] || self.excluded.contains(&(i as u64 + 1)) {
                            continue;
                        }
                        self.unmatched
                            .entry(*s)
                            .or_default()
                            .push_back(i as u64 + 1);
                    }
                    return self.event(ev);
                }
            }
        };
        if let Some(q) = self.unmatched.get_mut(&sig) {
            if let Some(stored) = q.pop_front() {
                self.id_map.insert(ev.id, stored);
                self.matched(ev.id, stored);
                return;
            }
        }
        let replay_id = ev.id;
        ev.id = self.next_id;
        ev.previous_event_id = match self.id_map.get(&ev.previous_event_id) {
            Some(stored) => *stored,
            // (the previous event was not delivered yet: below the divergence its id stays)
            None if ev.previous_event_id < d => ev.previous_event_id,
            None => ev.id - 1,
        };
        self.id_map.insert(replay_id, ev.id);
        self.write(&ev);
    }
}

/// `HistoryEvent::to_json` with the timestamp as epoch seconds (AWS JSON 1.0's timestamp shape).
/// [`event_json`] as text, written without building the JSON tree (the hot path).
pub fn event_text(ev: &HistoryEvent) -> String {
    struct Out<'a>(&'a HistoryEvent);
    impl serde::Serialize for Out<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeMap;
            let ev = self.0;
            let mut m = s.serialize_map(None)?;
            m.serialize_entry("timestamp", &(ev.timestamp_ms as f64 / 1000.0))?;
            m.serialize_entry("type", ev.event_type)?;
            m.serialize_entry("id", &ev.id)?;
            m.serialize_entry("previousEventId", &ev.previous_event_id)?;
            if !ev.details.is_null() {
                m.serialize_entry(&weft_asl::history::details_key(ev.event_type), &ev.details)?;
            }
            m.end()
        }
    }
    serde_json::to_string(&Out(ev)).unwrap_or_default()
}

pub fn event_json(ev: &HistoryEvent) -> Value {
    let mut v = ev.to_json();
    if let Some(m) = v.as_object_mut() {
        m.insert("timestamp".into(), super::records::ts(ev.timestamp_ms));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_text_is_event_json() {
        for details in [
            Value::Null,
            serde_json::json!({"name": "A", "input": "{\"x\":1.5}"}),
        ] {
            let ev = HistoryEvent {
                id: 7,
                previous_event_id: 6,
                timestamp_ms: 1_700_000_000_123,
                event_type: "TaskStateEntered",
                details,
            };
            assert_eq!(event_text(&ev), event_json(&ev).to_string());
        }
    }
}
