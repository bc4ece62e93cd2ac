//! What MLflow clients need from the store beyond Trainyard's own queries.
//!
//! MLflow experiments are Trainyard experiments (MLflow's "0" is the
//! workspace's `Default`), MLflow runs are tracked-only Trainyard runs, params
//! are run properties, metrics are Trainyard metrics, and model versions are
//! rows of Trainyard's model registry. The tables of the `mlflow` migration
//! hold only what MLflow has and Trainyard did not.

mod create;
mod experiments;
mod history;
mod io;
mod logged_models;
mod model_versions;
mod registered_models;
mod runs;
mod search;
mod uploads;

pub(crate) use create::CreateQueue;
pub use create::NewTrackedRun;
pub use experiments::{ExperimentOrder, ExperimentRef};
pub use io::{IoDirection, RunIo};
pub use logged_models::{LoggedModel, NewLoggedModel};
pub use model_versions::{ModelVersion, NewModelVersion};
pub use registered_models::{RegisteredModel, VersionChange};
pub use runs::{LatestPoint, RunChange, RunWithData, TrackedRun};
pub use search::{LifecycleView, RunSearch, SearchGeneration};
pub use uploads::Upload;

use chrono::{DateTime, Utc};

/// Milliseconds since the epoch, MLflow's time unit.
pub fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

/// The time `ms` milliseconds after the epoch (the epoch itself when out of range).
pub fn from_millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}
