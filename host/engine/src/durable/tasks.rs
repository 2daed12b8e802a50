//! [`JournalingRunner`]: wraps the real task runner so that a replay answers every attempt whose
//! result is journaled without running it, and journals each new attempt before (`Started`) and
//! after (its result, committed) it runs. A mocking runner ([`weft_asl::mock::MockTaskRunner`])
//! sits inside it, so mocked results are journaled like real ones; an attempt answered from the
//! journal is reported to the inner runner ([`TaskRunner::replayed`]) so that its invocation
//! counts stay those of the first run.

use super::{Entry, ExecControl};
use serde_json::Value;
use weft_asl::error::names;
use weft_asl::{TaskFailure, TaskRequest, TaskRunner};

/// The Cause of an attempt that was running when the process died.
pub const INTERRUPTED_CAUSE: &str =
    "the task was interrupted by a restart of the weft host; it is retried per the state's Retry policy";

/// The journal key of an attempt.
pub fn attempt_key(req: &TaskRequest<'_>) -> String {
    key_of(&req.key, req.attempt)
}

/// The journal key of attempt `attempt` of the task `key`.
fn key_of(key: &str, attempt: u32) -> String {
    format!("{key}@{attempt}")
}

/// A task token for `.waitForTaskToken`, derived from a server secret, the execution, the
/// attempt and the redrive it first ran in (`generation`, see
/// [`super::ExecControl::token_generation`]): unguessable, the same on every replay, and new
/// for an attempt a redrive runs again.
pub fn task_token(
    secret: &[u8; 32],
    execution: &str,
    key: &str,
    attempt: u32,
    generation: u32,
) -> String {
    let mut h = blake3::Hasher::new_keyed(secret);
    h.update(execution.as_bytes());
    h.update(&[0]);
    h.update(key.as_bytes());
    h.update(&attempt.to_le_bytes());
    if generation > 0 {
        h.update(b"\0redrive");
        h.update(&generation.to_le_bytes());
    }
    h.finalize().to_hex().to_string()
}

/// True for attempts no callback, timeout or worker can complete (request-response plugin and
/// Lambda tasks): their results may go through [`super::ExecControl::set_record_sink`].
fn only_the_run_completes(req: &TaskRequest<'_>) -> bool {
    use weft_asl::resource::{IntegrationPattern, ResourceKind};
    req.resource.pattern == IntegrationPattern::RequestResponse
        && matches!(
            req.resource.kind,
            ResourceKind::Plugin { .. }
                | ResourceKind::LambdaInvoke
                | ResourceKind::LambdaFunction { .. }
        )
}

/// The journaling wrapper around a task runner.
pub struct JournalingRunner<'a> {
    /// Runs attempts that are not journaled yet.
    pub inner: &'a dyn TaskRunner,
    /// The execution's control (journal, commit, cancellation).
    pub ctl: &'a ExecControl,
    /// Secret for task tokens.
    pub secret: &'a [u8; 32],
}

fn failure(e: impl std::fmt::Display) -> TaskFailure {
    TaskFailure {
        error: names::SUSPENDED.into(),
        cause: format!("the journal cannot be used: {e}"),
    }
}

impl TaskRunner for JournalingRunner<'_> {
    fn run_task(&self, req: &TaskRequest<'_>) -> Result<Value, TaskFailure> {
        let k = attempt_key(req);
        let j = self.ctl.journal();
        // (a first run's attempt keys are all new: each is looked up before it is written once)
        let recorded = if self.ctl.is_fresh() {
            None
        } else {
            self.ctl.lookup(&k).map_err(failure)?
        };
        match recorded {
            Some(Entry::Ok { output }) => {
                self.inner.replayed(req);
                return Ok(output);
            }
            Some(Entry::Err { error, cause }) => {
                self.inner.replayed(req);
                return Err(TaskFailure { error, cause });
            }
            Some(Entry::Started { .. }) => {
                // (the attempt did call the runner before the restart)
                self.inner.replayed(req);
                tracing::warn!(execution = %j.execution(), task = %k, "task attempt interrupted by a restart");
                let e = Entry::Err {
                    error: names::TASK_FAILED.into(),
                    cause: INTERRUPTED_CAUSE.into(),
                };
                j.complete(&k, &e).map_err(failure)?;
                self.ctl.commit().map_err(failure)?;
                return match j.get(&k).map_err(failure)? {
                    Some(Entry::Ok { output }) => Ok(output),
                    Some(Entry::Err { error, cause }) => Err(TaskFailure { error, cause }),
                    _ => Err(TaskFailure {
                        error: names::TASK_FAILED.into(),
                        cause: INTERRUPTED_CAUSE.into(),
                    }),
                };
            }
            Some(Entry::Timer { .. } | Entry::Pinned { .. } | Entry::Generation { .. }) | None => {}
        }
        if self.ctl.is_cancelled() {
            return Err(TaskFailure {
                error: names::SUSPENDED.into(),
                cause: "the execution is stopping".into(),
            });
        }
        let at_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        j.put(&k, &Entry::Started { at_ms }).map_err(failure)?;
        let r = self.inner.run_task(req);
        if r.is_err() && req.cancel.is_cancelled() {
            // stopped because a sibling branch failed: not an outcome of the attempt (a replay
            // that gets this far runs it again, and the sibling stops it again)
            j.remove_started(&k).map_err(failure)?;
            return Err(TaskFailure {
                error: names::CANCELLED.into(),
                cause: "stopped because another branch or iteration failed".into(),
            });
        }
        let recorded = match &r {
            Err(f) if f.error == names::SUSPENDED => {
                // not an outcome: the attempt resumes later (an answer may already be journaled)
                j.remove_started(&k).map_err(failure)?;
                return r;
            }
            Ok(v) => {
                let e = Entry::Ok { output: v.clone() };
                match self.ctl.record_sink() {
                    // nobody else completes a plugin or Lambda task
                    Some(sink) if only_the_run_completes(req) => j.complete_via(&k, &e, sink),
                    _ => j.complete(&k, &e),
                }
                .map_err(failure)?
            }
            Err(f) => j
                .complete(
                    &k,
                    &Entry::Err {
                        error: f.error.clone(),
                        cause: f.cause.clone(),
                    },
                )
                .map_err(failure)?,
        };
        self.ctl.commit().map_err(failure)?;
        if recorded {
            return r;
        }
        // a callback or timeout completed the attempt first: the journal decides
        match j.get(&k).map_err(failure)? {
            Some(Entry::Ok { output }) => Ok(output),
            Some(Entry::Err { error, cause }) => Err(TaskFailure { error, cause }),
            _ => r,
        }
    }

    fn wraps_result(&self, req: &TaskRequest<'_>) -> bool {
        self.inner.wraps_result(req)
    }

    fn replayed(&self, req: &TaskRequest<'_>) {
        self.inner.replayed(req);
    }

    fn task_token(&self, key: &str, attempt: u32) -> String {
        let generation = self
            .ctl
            .token_generation(&key_of(key, attempt))
            .unwrap_or_else(|e| {
                // (the attempt's own journal write fails the same way and unwinds the run)
                tracing::error!(execution = %self.ctl.journal().execution(), "journal: {e}");
                0
            });
        task_token(
            self.secret,
            self.ctl.journal().execution(),
            key,
            attempt,
            generation,
        )
    }
}
