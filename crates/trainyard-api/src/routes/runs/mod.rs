//! Runs: submission, listing, tags and properties, cancel, status history.

mod cancel;
mod create;
mod entries;
mod events;
mod files;
mod get;
mod list;
pub(crate) mod logs;

use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;
use trainyard_core::{RunPlacement, RunStatus};
use trainyard_db::runs::Run;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create::create_run, list::list_runs))
        .routes(routes!(get::get_run))
        .routes(routes!(entries::set_tag, entries::delete_tag))
        .routes(routes!(entries::set_property, entries::delete_property))
        .routes(routes!(cancel::cancel_run))
        .routes(routes!(events::list_run_events))
        .routes(routes!(logs::read_run_log))
        .routes(routes!(logs::follow_run_log))
        .routes(routes!(files::list_run_files))
        .routes(routes!(files::download_run_file))
        .routes(routes!(files::download_run_archive))
        .routes(routes!(files::upload_run_file))
}

/// A run as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunView {
    /// Its id.
    pub id: Uuid,
    /// Its workspace.
    pub workspace_id: Uuid,
    /// Its experiment.
    pub experiment_id: Uuid,
    /// A label chosen by its submitter.
    pub display_name: Option<String>,
    /// Where it is in its life.
    pub status: RunStatus,
    /// Why it failed, when it did.
    pub error: Option<String>,
    /// Mutable labels.
    pub tags: BTreeMap<String, String>,
    /// Descriptive key-values.
    pub properties: BTreeMap<String, String>,
    /// Its process's exit code, once it exited.
    pub exit_code: Option<i32>,
    /// What it executes (script, environment, resources, limits); an empty
    /// object for a run that only records.
    #[schema(value_type = Object)]
    pub spec: serde_json::Value,
    /// Whether it only records what a client logs (an MLflow run, or a run
    /// with nothing to execute): it is never placed on a node, and its
    /// client, not an executor, moves it between Running and its end.
    pub tracked_only: bool,
    /// Whether a cancel was asked for while it was active; it ends Canceled
    /// once its container has stopped.
    pub cancel_requested: bool,
    /// When it was submitted.
    pub created_at: DateTime<Utc>,
    /// When its container started running.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub ended_at: Option<DateTime<Utc>>,
    /// Its node and the GPU indexes, CPUs and memory it holds there, once a
    /// compute target's scheduler placed it.
    pub placement: Option<RunPlacement>,
    /// Why it still waits, while it is Queued on a compute target (e.g.
    /// "needs 2 GPUs; the largest free on gpucluster is 1").
    pub wait_reason: Option<String>,
}

impl From<Run> for RunView {
    fn from(r: Run) -> Self {
        RunView {
            status: r.status(),
            id: r.id,
            workspace_id: r.workspace_id,
            experiment_id: r.experiment_id,
            display_name: r.display_name,
            error: r.error,
            exit_code: r.exit_code,
            spec: r.spec.0,
            tracked_only: r.tracked_only,
            tags: r.tags.0,
            properties: r.properties.0,
            cancel_requested: r.cancel_requested_at.is_some(),
            created_at: r.created_at,
            started_at: r.started_at,
            ended_at: r.ended_at,
            placement: r.placement.map(|p| p.0),
            wait_reason: r.wait_reason,
        }
    }
}
