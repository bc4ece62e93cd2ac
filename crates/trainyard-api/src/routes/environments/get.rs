use axum::extract::State;
use trainyard_core::Role;
use trainyard_db::Db;

use super::EnvironmentView;
use crate::auth::InWorkspace;
use crate::error::{ApiResult, Problem};
use crate::extract::{AppJson, AppPath, AppQuery};
use crate::routes::{version_param, VersionQuery};

/// Gets a version of an environment (the latest by default), with its
/// image reference and build state.
#[utoipa::path(get, path = "/workspaces/{workspace}/environments/{name}", tag = "environments",
    params(
        ("workspace" = String, Path, description = "Workspace name or id"),
        ("name" = String, Path, description = "Environment name"),
        VersionQuery,
    ),
    responses(
        (status = 200, description = "The environment version", body = EnvironmentView),
        (status = 404, description = "No such environment or version", body = Problem),
    ))]
pub(super) async fn get_environment(
    State(db): State<Db>,
    scope: InWorkspace,
    AppPath(path): AppPath<(String, String)>,
    AppQuery(query): AppQuery<VersionQuery>,
) -> ApiResult<AppJson<EnvironmentView>> {
    let (_, name) = path;
    let workspace_id = scope.require(Role::Reader)?;
    let version = version_param("version", query.version.as_deref())?;
    Ok(AppJson(
        db.get_environment(workspace_id, &name, version)
            .await?
            .into(),
    ))
}
