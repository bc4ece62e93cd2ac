use axum::extract::State;
use trainyard_core::Role;
use trainyard_db::Db;

use super::ExperimentView;
use crate::auth::InWorkspace;
use crate::error::{ApiResult, Problem};
use crate::extract::{AppJson, AppPath};

/// Archives an experiment: it and its runs stay, hidden from default lists.
#[utoipa::path(post, path = "/workspaces/{workspace}/experiments/{experiment}/archive", tag = "experiments",
    params(
        ("workspace" = String, Path, description = "Workspace name or id"),
        ("experiment" = String, Path, description = "Experiment id or name"),
    ),
    responses(
        (status = 200, description = "Archived", body = ExperimentView),
        (status = 404, description = "No such experiment in the workspace", body = Problem),
    ))]
pub(super) async fn archive_experiment(
    State(db): State<Db>,
    scope: InWorkspace,
    AppPath(path): AppPath<(String, String)>,
) -> ApiResult<AppJson<ExperimentView>> {
    let (_, experiment) = path;
    set_archived(db, scope, &experiment, true).await
}

/// Restores an archived experiment to the default lists.
#[utoipa::path(post, path = "/workspaces/{workspace}/experiments/{experiment}/restore", tag = "experiments",
    params(
        ("workspace" = String, Path, description = "Workspace name or id"),
        ("experiment" = String, Path, description = "Experiment id or name"),
    ),
    responses(
        (status = 200, description = "Restored", body = ExperimentView),
        (status = 404, description = "No such experiment in the workspace", body = Problem),
    ))]
pub(super) async fn restore_experiment(
    State(db): State<Db>,
    scope: InWorkspace,
    AppPath(path): AppPath<(String, String)>,
) -> ApiResult<AppJson<ExperimentView>> {
    let (_, experiment) = path;
    set_archived(db, scope, &experiment, false).await
}

async fn set_archived(
    db: Db,
    scope: InWorkspace,
    experiment: &str,
    archived: bool,
) -> ApiResult<AppJson<ExperimentView>> {
    let workspace_id = scope.require(Role::Contributor)?;
    let found = db.find_experiment(workspace_id, experiment).await?;
    let updated = db
        .set_experiment_archived(workspace_id, found.id, archived)
        .await?;
    Ok(AppJson(updated.into()))
}
