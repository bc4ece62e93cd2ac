//! MLflow's rules, as its tracking server applies them: key names, value
//! lengths, batch limits, run statuses, and the search grammar.
//!
//! MLflow clients talk to Trainyard's own runs, metrics and models; this is
//! the part of MLflow's contract that is plain data, kept apart from the
//! HTTP layer so it can be tested on its own.

pub mod filter;
pub mod search;

use crate::{FieldError, RunStatus};

/// Most metrics one `log-batch` may carry.
pub const MAX_METRICS_PER_BATCH: usize = 1000;
/// Most params, and most tags, one `log-batch` may carry.
pub const MAX_PARAMS_TAGS_PER_BATCH: usize = 100;
/// Most metrics, params and tags together in one `log-batch`.
pub const MAX_ENTITIES_PER_BATCH: usize = 1000;
/// Longest metric, param or tag key.
pub const MAX_ENTITY_KEY_LENGTH: usize = 250;
/// Longest param value.
pub const MAX_PARAM_VALUE_LENGTH: usize = 6000;
/// Longest run tag value.
pub const MAX_TAG_VALUE_LENGTH: usize = 8000;
/// Longest experiment name.
pub const MAX_EXPERIMENT_NAME_LENGTH: usize = 500;
/// Longest experiment tag value.
pub const MAX_EXPERIMENT_TAG_VALUE_LENGTH: usize = 20000;
/// Longest registered-model or model-version tag value.
pub const MAX_REGISTRY_TAG_VALUE_LENGTH: usize = 100_000;
/// Longest registered-model alias.
pub const MAX_ALIAS_LENGTH: usize = 255;
/// The name of the experiment MLflow calls "0", which every workspace has.
pub const DEFAULT_EXPERIMENT_NAME: &str = "Default";
/// MLflow's id of the default experiment.
pub const DEFAULT_EXPERIMENT_ID: &str = "0";
/// The run tag MLflow keeps the run name in; Trainyard keeps it as the
/// run's display name.
pub const RUN_NAME_TAG: &str = "mlflow.runName";
/// The run tag holding the user who created the run.
pub const USER_TAG: &str = "mlflow.user";

/// A run's status as MLflow names it.
pub fn run_status_name(status: RunStatus) -> &'static str {
    match status {
        RunStatus::Queued | RunStatus::Preparing | RunStatus::Starting => "SCHEDULED",
        RunStatus::Running | RunStatus::Finalizing => "RUNNING",
        RunStatus::Completed => "FINISHED",
        RunStatus::Failed => "FAILED",
        RunStatus::Canceled => "KILLED",
    }
}

/// The Trainyard status an MLflow client asks a tracked-only run to take.
pub fn parse_run_status(field: &str, name: &str) -> Result<RunStatus, FieldError> {
    match name {
        "RUNNING" => Ok(RunStatus::Running),
        "SCHEDULED" => Ok(RunStatus::Queued),
        "FINISHED" => Ok(RunStatus::Completed),
        "FAILED" => Ok(RunStatus::Failed),
        "KILLED" => Ok(RunStatus::Canceled),
        other => Err(FieldError::new(
            field,
            format!(
                "Invalid value {other:?} for parameter '{field}': one of RUNNING, SCHEDULED, FINISHED, FAILED, KILLED"
            ),
        )),
    }
}

/// Checks a metric, param or tag key the way MLflow does: 1 to 250
/// characters of letters, digits, `_`, `-`, `.`, space, `/` and `:`, and no
/// path that would resolve to another name (`a/../b`, `/a`, `./a`).
pub fn entity_key(field: &str, key: &str) -> Result<(), FieldError> {
    let allowed = |c: char| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ' ' | '/' | ':');
    if key.is_empty() {
        return Err(FieldError::new(
            field,
            format!("Missing value for parameter '{field}'"),
        ));
    }
    if !key.chars().all(allowed) {
        return Err(FieldError::new(
            field,
            format!(
                "Invalid value {key:?} for parameter '{field}' supplied: Names may only contain alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ), colon(:) and slashes (/)."
            ),
        ));
    }
    if !resolves_to_itself(key) {
        return Err(FieldError::new(
            field,
            format!(
                "Invalid value {key:?} for parameter '{field}' supplied: Names may be treated as files in certain cases, and must not resolve to other names when treated as such."
            ),
        ));
    }
    length(field, key, MAX_ENTITY_KEY_LENGTH)
}

/// Whether a `/`-separated name is already in normal form: no empty, `.` or
/// `..` segment, no leading or trailing slash.
fn resolves_to_itself(key: &str) -> bool {
    key.split('/').all(|part| !matches!(part, "" | "." | ".."))
}

/// Refuses a value longer than `limit` characters.
pub fn length(field: &str, value: &str, limit: usize) -> Result<(), FieldError> {
    if value.chars().count() > limit {
        return Err(FieldError::new(
            field,
            format!("'{field}' exceeds the maximum length of {limit} characters"),
        ));
    }
    Ok(())
}

/// Checks an experiment name: not empty, at most 500 characters.
pub fn experiment_name(field: &str, name: &str) -> Result<(), FieldError> {
    if name.is_empty() {
        return Err(FieldError::new(
            field,
            format!("Invalid experiment name: '{name}'"),
        ));
    }
    length(field, name, MAX_EXPERIMENT_NAME_LENGTH)
}

/// Checks a registered-model alias: letters, digits, `_` and `-`, not shaped
/// like a version reference (`v3`, `latest`).
pub fn alias(field: &str, alias: &str) -> Result<(), FieldError> {
    let plain = !alias.is_empty()
        && alias
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-'));
    let version_like = alias.eq_ignore_ascii_case("latest")
        || (alias.len() > 1
            && alias.starts_with(['v', 'V'])
            && alias[1..].chars().all(|c| c.is_ascii_digit()));
    if !plain || version_like {
        return Err(FieldError::new(
            field,
            format!(
                "Invalid alias name: '{alias}'. Aliases may only contain alphanumerics, underscores and dashes, and may not be 'latest' or shaped like a version ('v1')."
            ),
        ));
    }
    length(field, alias, MAX_ALIAS_LENGTH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_mlflow_rules() {
        for good in ["loss", "val/acc", "a b", "x:y", "lr_0.1", "mlflow.runName"] {
            assert!(entity_key("key", good).is_ok(), "{good}");
        }
        for bad in ["", "a/../b", "/abs", "a/", "./a", "semi;colon", "tab\t"] {
            assert!(entity_key("key", bad).is_err(), "{bad:?}");
        }
        assert!(entity_key("key", &"k".repeat(250)).is_ok());
        assert!(entity_key("key", &"k".repeat(251)).is_err());
    }

    #[test]
    fn statuses_map_both_ways() {
        for (name, status) in [
            ("RUNNING", RunStatus::Running),
            ("FINISHED", RunStatus::Completed),
            ("FAILED", RunStatus::Failed),
            ("KILLED", RunStatus::Canceled),
            ("SCHEDULED", RunStatus::Queued),
        ] {
            assert_eq!(parse_run_status("status", name).unwrap(), status);
            assert_eq!(run_status_name(status), name);
        }
        assert_eq!(run_status_name(RunStatus::Finalizing), "RUNNING");
        assert!(parse_run_status("status", "DONE").is_err());
    }

    #[test]
    fn aliases_cannot_look_like_versions() {
        assert!(alias("alias", "champion").is_ok());
        assert!(alias("alias", "prod-2").is_ok());
        for bad in ["", "v1", "V12", "latest", "a.b", "a b"] {
            assert!(alias("alias", bad).is_err(), "{bad:?}");
        }
    }
}
