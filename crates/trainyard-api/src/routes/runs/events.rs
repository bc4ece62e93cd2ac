use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::Serialize;
use trainyard_core::{Role, RunStatus};
use trainyard_db::runs::RunEvent;
use trainyard_db::Db;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::InWorkspace;
use crate::error::{ApiResult, Problem};
use crate::extract::{AppJson, AppPath};

/// One status change of a run.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunEventView {
    /// The status before; absent for the submission.
    pub from: Option<RunStatus>,
    /// The status after.
    pub to: RunStatus,
    /// Why it changed.
    pub reason: String,
    /// When it changed.
    pub at: DateTime<Utc>,
}

impl From<RunEvent> for RunEventView {
    fn from(e: RunEvent) -> Self {
        RunEventView {
            from: e.from_status.as_deref().and_then(RunStatus::parse),
            to: RunStatus::parse(&e.to_status).unwrap_or(RunStatus::Failed),
            reason: e.reason,
            at: e.at,
        }
    }
}

/// A run's status history.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunEventList {
    /// Oldest first.
    pub items: Vec<RunEventView>,
}

/// Lists every status change of a run, with time and reason.
#[utoipa::path(get, path = "/workspaces/{workspace}/runs/{run_id}/events", tag = "runs",
    params(
        ("workspace" = String, Path, description = "Workspace name or id"),
        ("run_id" = Uuid, Path, description = "Run id"),
    ),
    responses(
        (status = 200, description = "The run's history", body = RunEventList),
        (status = 404, description = "No such run in the workspace", body = Problem),
    ))]
pub(super) async fn list_run_events(
    State(db): State<Db>,
    scope: InWorkspace,
    AppPath(path): AppPath<(String, Uuid)>,
) -> ApiResult<AppJson<RunEventList>> {
    let (_, run_id) = path;
    let workspace_id = scope.require(Role::Reader)?;
    let events = db.run_events(workspace_id, run_id).await?;
    Ok(AppJson(RunEventList {
        items: events.into_iter().map(Into::into).collect(),
    }))
}
