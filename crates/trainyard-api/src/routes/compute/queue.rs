//! The runs waiting on a compute target, and why each waits.

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use trainyard_core::Role;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::InWorkspace;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{AppJson, AppPath, AppQuery};
use crate::AppState;

/// Most entries one queue request returns.
const MAX_QUEUE_LIMIT: i64 = 10_000;

/// Paging of the queue.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct QueueParams {
    /// Most entries (default 1,000, at most 10,000).
    limit: Option<i64>,
}

/// A run waiting on a compute target.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueueEntry {
    /// The run.
    pub run_id: Uuid,
    /// Its label.
    pub display_name: Option<String>,
    /// Higher goes first.
    pub priority: i32,
    /// When it was submitted.
    pub created_at: DateTime<Utc>,
    /// Why it waits; null until the scheduler's first pass over it.
    pub wait_reason: Option<String>,
}

/// The queue of a compute target, in submission order.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueueView {
    /// Waiting runs, oldest first.
    pub runs: Vec<QueueEntry>,
}

/// Lists the runs waiting on a compute target, with the reason each waits.
#[utoipa::path(get, path = "/workspaces/{workspace}/compute/{name}/queue", tag = "compute",
    params(
        ("workspace" = String, Path, description = "Workspace name or id"),
        ("name" = String, Path, description = "Compute target name"),
        QueueParams,
    ),
    responses(
        (status = 200, description = "The waiting runs", body = QueueView),
        (status = 404, description = "No such compute target", body = Problem),
        (status = 422, description = "limit out of range", body = Problem),
    ))]
pub(super) async fn get_queue(
    State(state): State<AppState>,
    scope: InWorkspace,
    AppPath(path): AppPath<(String, String)>,
    AppQuery(params): AppQuery<QueueParams>,
) -> ApiResult<AppJson<QueueView>> {
    let (_, name) = path;
    let workspace_id = scope.require(Role::Reader)?;
    let limit = params.limit.unwrap_or(1_000);
    if !(1..=MAX_QUEUE_LIMIT).contains(&limit) {
        return Err(ApiError::invalid(
            "limit",
            format!("must be between 1 and {MAX_QUEUE_LIMIT}"),
        ));
    }
    let target = state.db.get_compute_target(workspace_id, &name).await?;
    let runs = state
        .db
        .queue_of_target(workspace_id, &target.name, limit)
        .await?
        .into_iter()
        .map(|run| QueueEntry {
            run_id: run.id,
            priority: run
                .spec
                .0
                .get("priority")
                .and_then(|p| p.as_i64())
                .unwrap_or(0) as i32,
            display_name: run.display_name,
            created_at: run.created_at,
            wait_reason: run.wait_reason,
        })
        .collect();
    Ok(AppJson(QueueView { runs }))
}
