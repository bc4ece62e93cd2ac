use axum::extract::State;
use trainyard_core::Role;
use trainyard_db::Db;
use uuid::Uuid;

use super::RunView;
use crate::auth::InWorkspace;
use crate::error::{ApiResult, Problem};
use crate::extract::{AppJson, AppPath};

/// Cancels a run. A queued run ends Canceled at once; an active run's
/// container is stopped and it ends Canceled when it has. A run that has
/// ended cannot be canceled.
#[utoipa::path(post, path = "/workspaces/{workspace}/runs/{run_id}/cancel", tag = "runs",
    params(
        ("workspace" = String, Path, description = "Workspace name or id"),
        ("run_id" = Uuid, Path, description = "Run id"),
    ),
    responses(
        (status = 200, description = "Canceled, or cancel requested", body = RunView),
        (status = 404, description = "No such run in the workspace", body = Problem),
        (status = 409, description = "The run has already ended", body = Problem),
    ))]
pub(super) async fn cancel_run(
    State(db): State<Db>,
    scope: InWorkspace,
    AppPath(path): AppPath<(String, Uuid)>,
) -> ApiResult<AppJson<RunView>> {
    let (_, run_id) = path;
    let workspace_id = scope.require(Role::Contributor)?;
    let run = db
        .cancel_run(workspace_id, run_id, "canceled by user")
        .await?;
    Ok(AppJson(run.into()))
}
