//! The run state machine: the one place that decides which status may follow which.
//!
//! ```text
//! Queued ─► Preparing ─► Starting ─► Running ─► Finalizing ─► Completed
//!   │           │            │          │            │
//!   └───────────┴────────────┴──────────┴────────────┴──► Failed | Canceled
//! ```
//! A run may also go back from Preparing or Starting to Queued, when the node it
//! was placed on goes away before its container started.
//!
//! A tracked-only run (it records what a client logs and executes nothing,
//! such as an MLflow run) has its own, smaller machine: see
//! [`RunStatus::can_become_tracked`].

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Where a run is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub enum RunStatus {
    /// Submitted, waiting for a node with room.
    Queued,
    /// Placed on a node; its image is being built or pulled.
    Preparing,
    /// Its container is being created and started.
    Starting,
    /// Its container runs.
    Running,
    /// The container has exited; outputs and logs are being collected.
    Finalizing,
    /// Exited successfully and everything was collected.
    Completed,
    /// Ended with an error; the run's error says why.
    Failed,
    /// Stopped at a user's request.
    Canceled,
}

/// A status change the state machine does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a run cannot go from {from} to {to}")]
pub struct TransitionError {
    /// The status the run is in.
    pub from: RunStatus,
    /// The status that was asked for.
    pub to: RunStatus,
}

impl RunStatus {
    /// Every status, in the order of a successful run's life.
    pub const ALL: [RunStatus; 8] = [
        RunStatus::Queued,
        RunStatus::Preparing,
        RunStatus::Starting,
        RunStatus::Running,
        RunStatus::Finalizing,
        RunStatus::Completed,
        RunStatus::Failed,
        RunStatus::Canceled,
    ];

    /// The name stored in the database and shown in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "Queued",
            RunStatus::Preparing => "Preparing",
            RunStatus::Starting => "Starting",
            RunStatus::Running => "Running",
            RunStatus::Finalizing => "Finalizing",
            RunStatus::Completed => "Completed",
            RunStatus::Failed => "Failed",
            RunStatus::Canceled => "Canceled",
        }
    }

    /// Parses a stored or submitted status name (exact case).
    pub fn parse(s: &str) -> Option<RunStatus> {
        RunStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
    }

    /// A terminal run never changes status again.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RunStatus::Completed | RunStatus::Failed | RunStatus::Canceled
        )
    }

    /// Whether the state machine allows going from `self` to `next`.
    pub fn can_become(self, next: RunStatus) -> bool {
        use RunStatus::*;
        match (self, next) {
            (Queued, Preparing) => true,
            (Preparing, Starting) | (Preparing, Queued) => true,
            (Starting, Running) | (Starting, Queued) => true,
            (Running, Finalizing) => true,
            (Finalizing, Completed) => true,
            // Any run that has not ended may fail or be canceled.
            (from, Failed | Canceled) => !from.is_terminal(),
            _ => false,
        }
    }

    /// Whether a tracked-only run may go from `self` to `next`. Such a run
    /// records what a client logs (an MLflow run, a notebook's run) and never
    /// executes: its client decides when it runs and ends, and may resume an
    /// ended one (MLflow's `start_run(run_id=...)`), but it never passes
    /// through the stages of execution.
    pub fn can_become_tracked(self, next: RunStatus) -> bool {
        use RunStatus::*;
        let tracked = |s: RunStatus| matches!(s, Queued | Running | Completed | Failed | Canceled);
        self != next && tracked(self) && tracked(next)
    }

    /// Checks a transition of a tracked-only run, naming both ends when it is refused.
    pub fn transition_tracked(self, next: RunStatus) -> Result<RunStatus, TransitionError> {
        if self.can_become_tracked(next) {
            Ok(next)
        } else {
            Err(TransitionError {
                from: self,
                to: next,
            })
        }
    }

    /// Checks a transition, naming both ends when it is refused.
    pub fn transition(self, next: RunStatus) -> Result<RunStatus, TransitionError> {
        if self.can_become(next) {
            Ok(next)
        } else {
            Err(TransitionError {
                from: self,
                to: next,
            })
        }
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::RunStatus::{self, *};

    /// The complete table of allowed transitions; every pair not listed is refused.
    const ALLOWED: &[(RunStatus, RunStatus)] = &[
        (Queued, Preparing),
        (Queued, Failed),
        (Queued, Canceled),
        (Preparing, Starting),
        (Preparing, Queued),
        (Preparing, Failed),
        (Preparing, Canceled),
        (Starting, Running),
        (Starting, Queued),
        (Starting, Failed),
        (Starting, Canceled),
        (Running, Finalizing),
        (Running, Failed),
        (Running, Canceled),
        (Finalizing, Completed),
        (Finalizing, Failed),
        (Finalizing, Canceled),
    ];

    #[test]
    fn every_pair_of_statuses_is_decided_by_the_table() {
        for from in RunStatus::ALL {
            for to in RunStatus::ALL {
                let expected = ALLOWED.contains(&(from, to));
                assert_eq!(
                    from.can_become(to),
                    expected,
                    "{from} -> {to} should be {}",
                    if expected { "allowed" } else { "refused" }
                );
                assert_eq!(from.transition(to).is_ok(), expected);
            }
        }
    }

    #[test]
    fn terminal_statuses_have_no_way_out() {
        for from in [Completed, Failed, Canceled] {
            assert!(from.is_terminal());
            assert!(RunStatus::ALL.iter().all(|to| !from.can_become(*to)));
        }
    }

    #[test]
    fn tracked_runs_move_between_running_and_ended_but_never_execute() {
        assert!(Running.can_become_tracked(Completed));
        assert!(Completed.can_become_tracked(Running));
        assert!(Queued.can_become_tracked(Running));
        assert!(Failed.can_become_tracked(Canceled));
        for stage in [Preparing, Starting, Finalizing] {
            assert!(!Running.can_become_tracked(stage));
            assert!(!stage.can_become_tracked(Running));
        }
        for status in RunStatus::ALL {
            assert!(!status.can_become_tracked(status));
        }
    }

    #[test]
    fn no_status_becomes_itself() {
        for status in RunStatus::ALL {
            assert!(!status.can_become(status));
        }
    }

    #[test]
    fn names_round_trip_and_are_case_exact() {
        for status in RunStatus::ALL {
            assert_eq!(RunStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(RunStatus::parse("queued"), None);
    }

    #[test]
    fn refusal_names_both_ends() {
        let err = Completed.transition(Running).unwrap_err();
        assert_eq!(err.to_string(), "a run cannot go from Completed to Running");
    }
}
