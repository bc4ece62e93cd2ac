//! Runs: submission, listing, tags and properties, cancel, status history.

mod cancel;
mod create;
mod entries;
mod events;
mod get;
mod list;

use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;
use trainyard_core::RunStatus;
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
    /// Whether a cancel was asked for while it was active; it ends Canceled
    /// once its container has stopped.
    pub cancel_requested: bool,
    /// When it was submitted.
    pub created_at: DateTime<Utc>,
    /// When its container started running.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub ended_at: Option<DateTime<Utc>>,
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
            tags: r.tags.0,
            properties: r.properties.0,
            cancel_requested: r.cancel_requested_at.is_some(),
            created_at: r.created_at,
            started_at: r.started_at,
            ended_at: r.ended_at,
        }
    }
}
