//! Task instance states and Airflow 3's trigger-rule evaluation.
//!
//! [`evaluate`] is a transcription of the decision Airflow's `TriggerRuleDep` makes for one task
//! instance from the counts of its direct upstream instances' *finished* states, with
//! `flag_upstream_failed` on (as the scheduler and `dags test` run it): the instance may be
//! marked `skipped` or `upstream_failed` before all upstreams are done, may run, or must wait.

use serde::Serialize;

use crate::model::TriggerRule;

/// State of one task instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TiState {
    /// Not yet scheduled (Airflow's `None`).
    None,
    /// Chosen to run in this pass.
    Scheduled,
    /// Handed to a worker, not yet running.
    Queued,
    /// Running.
    Running,
    /// A sensor in `reschedule` mode waiting for its next poke (its slot is free).
    UpForReschedule,
    /// Failed a try, will retry after its delay.
    UpForRetry,
    /// Finished successfully.
    Success,
    /// Failed (no tries left).
    Failed,
    /// Skipped (by trigger rule, branching or the operator).
    Skipped,
    /// Not run because an upstream failed.
    UpstreamFailed,
    /// Removed (mapped instance that no longer exists).
    Removed,
}

impl TiState {
    /// Airflow's name (`none` for no state).
    pub fn as_str(self) -> &'static str {
        match self {
            TiState::None => "none",
            TiState::Scheduled => "scheduled",
            TiState::Queued => "queued",
            TiState::Running => "running",
            TiState::UpForReschedule => "up_for_reschedule",
            TiState::UpForRetry => "up_for_retry",
            TiState::Success => "success",
            TiState::Failed => "failed",
            TiState::Skipped => "skipped",
            TiState::UpstreamFailed => "upstream_failed",
            TiState::Removed => "removed",
        }
    }

    /// Parse Airflow's name.
    pub fn parse(s: &str) -> Option<TiState> {
        [
            TiState::None,
            TiState::Scheduled,
            TiState::Queued,
            TiState::Running,
            TiState::UpForRetry,
            TiState::UpForReschedule,
            TiState::Success,
            TiState::Failed,
            TiState::Skipped,
            TiState::UpstreamFailed,
            TiState::Removed,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
    }

    /// Success, failed, skipped, upstream_failed or removed.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            TiState::Success
                | TiState::Failed
                | TiState::Skipped
                | TiState::UpstreamFailed
                | TiState::Removed
        )
    }
}

/// Counts of the finished states of a task instance's direct upstream instances.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UpstreamCounts {
    /// Number of upstream instances (finished or not).
    pub upstream: usize,
    /// Succeeded.
    pub success: usize,
    /// Skipped.
    pub skipped: usize,
    /// Failed.
    pub failed: usize,
    /// Upstream-failed.
    pub upstream_failed: usize,
    /// Removed.
    pub removed: usize,
}

impl UpstreamCounts {
    /// Count one upstream instance in `state`.
    pub fn add(&mut self, state: TiState) {
        self.upstream += 1;
        match state {
            TiState::Success => self.success += 1,
            TiState::Skipped => self.skipped += 1,
            TiState::Failed => self.failed += 1,
            TiState::UpstreamFailed => self.upstream_failed += 1,
            TiState::Removed => self.removed += 1,
            _ => {}
        }
    }

    /// Finished upstream instances.
    pub fn done(&self) -> usize {
        self.success + self.skipped + self.failed + self.upstream_failed + self.removed
    }
}

/// What to do with a task instance now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Its trigger rule is met: run it.
    Run,
    /// Not decidable yet.
    Wait,
    /// Mark it skipped.
    Skip,
    /// Mark it upstream_failed.
    UpstreamFailed,
}

/// Decide for a task instance with `rule` given its upstream counts (`map_index` >= 0 for a
/// mapped instance, which ignores removed upstreams as Airflow does).
pub fn evaluate(rule: TriggerRule, c: &UpstreamCounts, mapped: bool) -> Decision {
    use TriggerRule as R;
    if c.upstream == 0 || rule == R::Always {
        return Decision::Run;
    }
    let done = c.done();
    let upstream_done = done >= c.upstream;
    let (success, skipped, failed, upstream_failed) =
        (c.success, c.skipped, c.failed, c.upstream_failed);
    let removed = if mapped { c.removed } else { 0 };
    // Instant state assignment (flag_upstream_failed).
    let new_state = match rule {
        R::AllSuccess => {
            if upstream_failed > 0 || failed > 0 {
                Some(Decision::UpstreamFailed)
            } else if skipped > 0 {
                Some(Decision::Skip)
            } else {
                None
            }
        }
        R::AllFailed => (success > 0 || skipped > 0).then_some(Decision::Skip),
        R::OneSuccess => {
            if upstream_done && done == skipped {
                Some(Decision::Skip)
            } else if upstream_done && success == 0 {
                Some(Decision::UpstreamFailed)
            } else {
                None
            }
        }
        R::OneFailed => {
            (upstream_done && failed == 0 && upstream_failed == 0).then_some(Decision::Skip)
        }
        R::OneDone => (upstream_done && failed == 0 && success == 0).then_some(Decision::Skip),
        R::NoneFailed => (upstream_failed > 0 || failed > 0).then_some(Decision::UpstreamFailed),
        R::NoneFailedMinOneSuccess => {
            if upstream_failed > 0 || failed > 0 {
                Some(Decision::UpstreamFailed)
            } else if skipped == c.upstream {
                Some(Decision::Skip)
            } else {
                None
            }
        }
        R::NoneSkipped => (skipped > 0).then_some(Decision::Skip),
        R::AllSkipped => {
            (success > 0 || failed > 0 || upstream_failed > 0).then_some(Decision::Skip)
        }
        R::AllDoneMinOneSuccess => {
            if skipped > 0 {
                Some(Decision::Skip)
            } else if upstream_done && success == 0 {
                Some(Decision::UpstreamFailed)
            } else {
                None
            }
        }
        R::AllDone | R::Always => None,
    };
    if let Some(d) = new_state {
        return d;
    }
    // Is the rule met?
    let met = match rule {
        R::OneSuccess => success > 0,
        R::OneFailed => failed > 0 || upstream_failed > 0,
        R::OneDone => success + failed > 0,
        R::AllSuccess => c.upstream.saturating_sub(success + removed) == 0,
        R::AllFailed => {
            c.upstream
                .saturating_sub(failed + upstream_failed + removed)
                == 0
        }
        R::AllDone => upstream_done,
        R::AllDoneMinOneSuccess => upstream_done && success > 0,
        R::NoneFailed | R::NoneFailedMinOneSuccess => {
            c.upstream.saturating_sub(success + skipped + removed) == 0
        }
        R::NoneSkipped => upstream_done && skipped == 0,
        R::AllSkipped => c.upstream.saturating_sub(skipped + removed) == 0,
        R::Always => true,
    };
    if met {
        Decision::Run
    } else {
        Decision::Wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TiState::*;
    use TriggerRule as R;

    fn decide(rule: R, states: &[TiState]) -> Decision {
        let mut c = UpstreamCounts::default();
        for s in states {
            c.add(*s);
        }
        evaluate(rule, &c, false)
    }

    #[test]
    fn rules() {
        assert_eq!(decide(R::AllSuccess, &[Success, Success]), Decision::Run);
        assert_eq!(decide(R::AllSuccess, &[Success, None]), Decision::Wait);
        assert_eq!(decide(R::AllSuccess, &[Skipped, None]), Decision::Skip);
        assert_eq!(
            decide(R::AllSuccess, &[Skipped, Failed]),
            Decision::UpstreamFailed
        );
        assert_eq!(
            decide(R::AllFailed, &[Failed, UpstreamFailed]),
            Decision::Run
        );
        assert_eq!(decide(R::AllFailed, &[Failed, Success]), Decision::Skip);
        assert_eq!(decide(R::OneSuccess, &[Success, None]), Decision::Run);
        assert_eq!(decide(R::OneSuccess, &[Skipped, Skipped]), Decision::Skip);
        assert_eq!(
            decide(R::OneSuccess, &[Skipped, Failed]),
            Decision::UpstreamFailed
        );
        assert_eq!(decide(R::OneFailed, &[UpstreamFailed, None]), Decision::Run);
        assert_eq!(decide(R::OneFailed, &[Success, Skipped]), Decision::Skip);
        assert_eq!(
            decide(R::OneDone, &[UpstreamFailed, Skipped]),
            Decision::Skip
        );
        assert_eq!(decide(R::OneDone, &[Failed, None]), Decision::Run);
        assert_eq!(decide(R::NoneFailed, &[Success, Skipped]), Decision::Run);
        assert_eq!(
            decide(R::NoneFailed, &[UpstreamFailed, None]),
            Decision::UpstreamFailed
        );
        assert_eq!(
            decide(R::NoneFailedMinOneSuccess, &[Skipped, Skipped]),
            Decision::Skip
        );
        assert_eq!(decide(R::NoneSkipped, &[Failed, Success]), Decision::Run);
        assert_eq!(decide(R::NoneSkipped, &[Failed, Skipped]), Decision::Skip);
        assert_eq!(decide(R::AllSkipped, &[Skipped, Skipped]), Decision::Run);
        assert_eq!(
            decide(R::AllSkipped, &[UpstreamFailed, None]),
            Decision::Skip
        );
        assert_eq!(
            decide(R::AllDone, &[UpstreamFailed, Skipped]),
            Decision::Run
        );
        assert_eq!(
            decide(R::AllDoneMinOneSuccess, &[Failed, Success]),
            Decision::Run
        );
        assert_eq!(
            decide(R::AllDoneMinOneSuccess, &[Failed, Failed]),
            Decision::UpstreamFailed
        );
        assert_eq!(decide(R::Always, &[None]), Decision::Run);
        assert_eq!(decide(R::AllFailed, &[]), Decision::Run);
    }
}
