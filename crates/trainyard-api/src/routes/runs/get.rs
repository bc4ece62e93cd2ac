use axum::extract::State;
use trainyard_core::Role;
use trainyard_db::Db;
use uuid::Uuid;

use super::RunView;
use crate::auth::InWorkspace;
use crate::error::{ApiResult, Problem};
use crate::extract::{AppJson, AppPath};

/// Gets a run.
#[utoipa::path(get, path = "/workspaces/{workspace}/runs/{run_id}", tag = "runs",
    params(
        ("workspace" = String, Path, description = "Workspace name or id"),
        ("run_id" = Uuid, Path, description = "Run id"),
    ),
    responses(
        (status = 200, description = "The run", body = RunView),
        (status = 404, description = "No such run in the workspace", body = Problem),
    ))]
pub(super) async fn get_run(
    State(db): State<Db>,
    scope: InWorkspace,
    AppPath(path): AppPath<(String, Uuid)>,
) -> ApiResult<AppJson<RunView>> {
    let (_, run_id) = path;
    let workspace_id = scope.require(Role::Reader)?;
    Ok(AppJson(db.get_run(workspace_id, run_id).await?.into()))
}
