//! How a run ends, decided from how its container ended: one pure function.

use trainyard_core::RunStatus;
use trainyard_db::runs::Run;

use crate::DockerError;

/// Why the executor stopped a container itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopReason {
    /// A user canceled the run.
    Canceled,
    /// The run passed its time limit.
    TimedOut,
}

/// How a container's life ended.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ended {
    /// The process's exit code, if the container still exists.
    pub exit_code: Option<i64>,
    /// Whether the executor stopped it, and why.
    pub stopped: Option<StopReason>,
}

/// The run's final status, the reason recorded with it, and its error.
pub(crate) fn outcome(
    run: &Run,
    ended: Ended,
    files_kept: Result<(), DockerError>,
) -> (RunStatus, String, Option<String>) {
    let failed = |message: String| (RunStatus::Failed, message.clone(), Some(message));
    match (ended.stopped, ended.exit_code, files_kept) {
        (_, _, Err(err)) => (
            RunStatus::Failed,
            "keeping its files failed".to_string(),
            Some(err.to_string()),
        ),
        (Some(StopReason::Canceled), _, _) => {
            (RunStatus::Canceled, "canceled by user".to_string(), None)
        }
        (Some(StopReason::TimedOut), _, _) => {
            let limit = run
                .spec
                .0
                .get("time_limit_seconds")
                .and_then(|v| v.as_u64())
                .unwrap_or(0);
            failed(format!(
                "the run exceeded its time limit of {limit} s and was stopped"
            ))
        }
        (None, Some(0), _) => (
            RunStatus::Completed,
            "the process exited with code 0".to_string(),
            None,
        ),
        (None, Some(code), _) => failed(format!("the process exited with code {code}")),
        (None, None, _) => failed("the container disappeared before it exited".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use sqlx::types::Json;
    use std::collections::BTreeMap;

    fn run(limit: Option<u64>) -> Run {
        Run {
            id: uuid::Uuid::nil(),
            workspace_id: uuid::Uuid::nil(),
            experiment_id: uuid::Uuid::nil(),
            display_name: None,
            status_name: "Running".into(),
            error: None,
            spec: Json(serde_json::json!({ "time_limit_seconds": limit })),
            tags: Json(BTreeMap::new()),
            properties: Json(BTreeMap::new()),
            cancel_requested_at: None,
            created_at: Utc::now(),
            started_at: None,
            ended_at: None,
            owner: None,
            container_id: None,
            exit_code: None,
            tracked_only: false,
            placement: None,
            wait_reason: None,
        }
    }

    fn ended(exit_code: Option<i64>, stopped: Option<StopReason>) -> Ended {
        Ended { exit_code, stopped }
    }

    #[test]
    fn exit_codes_decide_completed_or_failed() {
        assert_eq!(
            outcome(&run(None), ended(Some(0), None), Ok(())).0,
            RunStatus::Completed
        );
        let (status, _, error) = outcome(&run(None), ended(Some(3), None), Ok(()));
        assert_eq!(status, RunStatus::Failed);
        assert_eq!(error.unwrap(), "the process exited with code 3");
        let (_, _, error) = outcome(&run(None), ended(None, None), Ok(()));
        assert!(error.unwrap().contains("disappeared"));
    }

    #[test]
    fn a_stop_by_the_executor_wins_over_the_exit_code() {
        // A canceled process usually exits 143 (SIGTERM) or 137 (SIGKILL).
        let (status, _, error) = outcome(
            &run(None),
            ended(Some(143), Some(StopReason::Canceled)),
            Ok(()),
        );
        assert_eq!((status, error), (RunStatus::Canceled, None));
        let (status, _, error) = outcome(
            &run(Some(5)),
            ended(Some(137), Some(StopReason::TimedOut)),
            Ok(()),
        );
        assert_eq!(status, RunStatus::Failed);
        assert!(error.unwrap().contains("time limit of 5 s"));
    }

    #[test]
    fn losing_the_files_fails_the_run() {
        let (status, _, error) = outcome(
            &run(None),
            ended(Some(0), None),
            Err(DockerError::Other("disk full".into())),
        );
        assert_eq!(status, RunStatus::Failed);
        assert_eq!(error.unwrap(), "disk full");
    }
}
