use trainyard_core::Role;

use super::WorkspaceView;
use crate::auth::InWorkspace;
use crate::error::{ApiResult, Problem};
use crate::extract::AppJson;

/// Gets a workspace by name or id (its members and server administrators).
#[utoipa::path(get, path = "/workspaces/{workspace}", tag = "workspaces",
    params(("workspace" = String, Path, description = "Workspace name or id")),
    responses(
        (status = 200, description = "The workspace", body = WorkspaceView),
        (status = 404, description = "No such workspace visible to the caller", body = Problem),
    ))]
pub(super) async fn get_workspace(scope: InWorkspace) -> ApiResult<AppJson<WorkspaceView>> {
    scope.require(Role::Reader)?;
    Ok(AppJson(scope.workspace.into()))
}
