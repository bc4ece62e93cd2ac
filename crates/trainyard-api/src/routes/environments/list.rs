use axum::extract::State;
use serde::Serialize;
use trainyard_core::Role;
use trainyard_db::Db;
use utoipa::ToSchema;

use super::EnvironmentView;
use crate::auth::InWorkspace;
use crate::error::{ApiResult, Problem};
use crate::extract::AppJson;

/// The environments of a workspace.
#[derive(Debug, Serialize, ToSchema)]
pub struct EnvironmentList {
    /// The latest version of each, by name.
    pub items: Vec<EnvironmentView>,
}

/// Lists the latest version of every environment.
#[utoipa::path(get, path = "/workspaces/{workspace}/environments", tag = "environments",
    params(("workspace" = String, Path, description = "Workspace name or id")),
    responses(
        (status = 200, description = "The environments", body = EnvironmentList),
        (status = 404, description = "No such workspace", body = Problem),
    ))]
pub(super) async fn list_environments(
    State(db): State<Db>,
    scope: InWorkspace,
) -> ApiResult<AppJson<EnvironmentList>> {
    let workspace_id = scope.require(Role::Reader)?;
    let items = db
        .list_environments(workspace_id)
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    Ok(AppJson(EnvironmentList { items }))
}
