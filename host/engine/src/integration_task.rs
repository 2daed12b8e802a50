//! Runs a Task that names an AWS service integration through the plugin its resource map names
//! ([`crate::resource_map`]): the execution role's decision on the integration's IAM action,
//! then one call (request-response, `.waitForTaskToken`, `.sync` in `call` mode) or a start
//! call followed by polls until the job reports SUCCEEDED or FAILED (`.sync` in `start_poll`
//! mode), within the state's `TimeoutSeconds` and stopped by StopExecution. An integration no
//! map serves fails with `Weft.IntegrationNotMapped` and the entry that would serve it.

use crate::asl_tasks::{failure, SandboxTaskRunner};
use crate::resource_map::{
    poll_status, Envelope, Integration, MapEntry, PollStatus, SyncMode, NOT_MAPPED, PROTOCOL_ERROR,
};
use serde_json::Value;
use std::time::{Duration, Instant};
use weft_asl::error::names;
use weft_asl::resource::IntegrationPattern;
use weft_asl::{TaskFailure, TaskRequest};
use weft_sandbox::Grant;

/// The error of an integration call the execution role does not allow.
pub const PERMISSION_DENIED: &str = "Sandbox.PermissionDenied";
/// How often a pause between polls looks at the cancel switches.
const CANCEL_CHECK: Duration = Duration::from_millis(50);

/// Runs `req` through its map entry, or fails naming the entry it lacks.
pub fn run(
    runner: &SandboxTaskRunner<'_>,
    req: &TaskRequest<'_>,
    found: Result<(Integration, &MapEntry), Integration>,
) -> Result<Value, TaskFailure> {
    let (integration, entry) = found.map_err(|i| not_mapped(req.state_name, &i))?;
    authorise(runner, req, &integration)?;
    tracing::info!(
        task = %req.state_name,
        integration = %integration.key(),
        entry = %entry.origin,
        "mapped integration"
    );
    let token = (req.resource.pattern == IntegrationPattern::WaitForTaskToken)
        .then_some(req.task_token.as_deref())
        .flatten();
    let start_poll = is_start_poll(req, entry);
    let envelope = Envelope {
        integration: &integration,
        resource: &req.resource.raw,
        phase: if start_poll { "start" } else { "call" },
        action: &integration.action,
        request: &req.parameters,
        task_token: token,
        poll: None,
    };
    let limits = runner.task_limits(req);
    if !start_poll {
        return runner.invoke(req, &entry.plugin, envelope.to_json(), limits);
    }
    let deadline = Instant::now() + limits.timeout;
    let started = runner.invoke(req, &entry.plugin, envelope.to_json(), limits)?;
    for n in 1u64.. {
        pause(runner, req, entry.poll_interval, deadline)?;
        let remaining = deadline.saturating_duration_since(Instant::now());
        if let Some(output) = poll_job(runner, req, &integration, entry, &started, n, remaining)? {
            return Ok(output);
        }
    }
    unreachable!("the poll loop returns")
}

/// True when `req` runs through `entry` as a start call followed by polls.
pub fn is_start_poll(req: &TaskRequest<'_>, entry: &MapEntry) -> bool {
    req.resource.pattern == IntegrationPattern::Sync && entry.mode == SyncMode::StartPoll
}

/// The start call of a `start_poll` job (after the execution role's decision): its result is
/// what every poll receives as `request`. For runners that keep the job between polls
/// themselves (a durable execution); [`run`] does both in one go.
pub fn start_job(
    runner: &SandboxTaskRunner<'_>,
    req: &TaskRequest<'_>,
    integration: &Integration,
    entry: &MapEntry,
) -> Result<Value, TaskFailure> {
    authorise(runner, req, integration)?;
    let envelope = Envelope {
        integration,
        resource: &req.resource.raw,
        phase: "start",
        action: &integration.action,
        request: &req.parameters,
        task_token: None,
        poll: None,
    };
    runner.invoke(
        req,
        &entry.plugin,
        envelope.to_json(),
        runner.task_limits(req),
    )
}

/// Poll `n` of a `start_poll` job started with result `started`, the call bounded by
/// `remaining` (and `HeartbeatSeconds`): `None` while it runs, its output when it succeeded, a
/// failure when it failed or the poll plugin broke the protocol.
pub fn poll_job(
    runner: &SandboxTaskRunner<'_>,
    req: &TaskRequest<'_>,
    integration: &Integration,
    entry: &MapEntry,
    started: &Value,
    n: u64,
    remaining: Duration,
) -> Result<Option<Value>, TaskFailure> {
    let mut limits = runner.task_limits(req);
    limits.timeout = remaining;
    if let Some(h) = req.heartbeat_seconds {
        limits.timeout = limits.timeout.min(Duration::from_secs(h));
    }
    let poll = Envelope {
        integration,
        resource: &req.resource.raw,
        phase: "poll",
        action: entry.poll_action.as_deref().unwrap_or(&integration.action),
        request: started,
        task_token: None,
        poll: Some(n),
    };
    let result = runner.invoke(req, &entry.poll_plugin, poll.to_json(), limits)?;
    match poll_status(&result) {
        Ok(PollStatus::Running) => Ok(None),
        Ok(PollStatus::Succeeded(output)) => Ok(Some(output)),
        Ok(PollStatus::Failed { error, cause }) => Err(failure(&error, cause)),
        Err(why) => Err(failure(
            PROTOCOL_ERROR,
            format!(
                "poll {n} of {} ({}): {why}",
                integration.key(),
                entry.origin
            ),
        )),
    }
}

/// The failure of an unmapped integration: the entry line that would serve it.
pub fn not_mapped(state: &str, i: &Integration) -> TaskFailure {
    failure(
        NOT_MAPPED,
        format!(
            "state '{state}': the integration {} is not mapped to a plugin; add this entry to a resource map ($WEFT_HOME/resource-map.yaml, one beside the definition, or the state machine's own): {}",
            i.key(),
            i.suggested_entry()
        ),
    )
}

/// The execution role (narrowed by `Credentials`) must allow the integration's IAM action on
/// its resource, as AWS asks of a state machine's role; the map never widens a grant.
fn authorise(
    runner: &SandboxTaskRunner<'_>,
    req: &TaskRequest<'_>,
    i: &Integration,
) -> Result<(), TaskFailure> {
    let layers = runner.layers(req.credentials.as_ref())?;
    let none = layers.is_empty();
    let grant = Grant::for_requests(layers, &runner.base_dir);
    let (action, resource) = (i.iam_action(), i.iam_resource());
    let decision = grant.evaluate(&action, &resource);
    tracing::info!(
        task = %req.state_name,
        %action,
        %resource,
        decision = ?decision.effect,
        statement = decision.statement.as_deref().unwrap_or("-"),
        "integration access"
    );
    if decision.allowed() {
        return Ok(());
    }
    let why = if none {
        "there is no execution role (give one: `weft run --role NAME`, a state machine's roleArn)"
    } else {
        "the execution role does not allow it"
    };
    Err(failure(
        PERMISSION_DENIED,
        format!(
            "state '{}': {action} on {resource} is denied: {why}",
            req.state_name
        ),
    ))
}

/// Waits `interval` (cut short by the deadline), failing with `States.Timeout` at the deadline
/// and `Sandbox.Cancelled` when the execution stops.
fn pause(
    runner: &SandboxTaskRunner<'_>,
    req: &TaskRequest<'_>,
    interval: Duration,
    deadline: Instant,
) -> Result<(), TaskFailure> {
    let until = (Instant::now() + interval).min(deadline);
    loop {
        if runner.is_cancelled(req) {
            return Err(failure("Sandbox.Cancelled", "the execution is stopping"));
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(failure(
                names::TIMEOUT,
                format!(
                    "state '{}': the job did not finish within the task's timeout",
                    req.state_name
                ),
            ));
        }
        if now >= until {
            return Ok(());
        }
        std::thread::sleep((until - now).min(CANCEL_CHECK));
    }
}
