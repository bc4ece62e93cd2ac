use axum::extract::State;
use trainyard_core::Role;
use trainyard_db::Db;

use super::ExperimentView;
use crate::auth::InWorkspace;
use crate::error::{ApiResult, Problem};
use crate::extract::{AppJson, AppPath};

/// Gets an experiment by id or name.
#[utoipa::path(get, path = "/workspaces/{workspace}/experiments/{experiment}", tag = "experiments",
    params(
        ("workspace" = String, Path, description = "Workspace name or id"),
        ("experiment" = String, Path, description = "Experiment id or name"),
    ),
    responses(
        (status = 200, description = "The experiment", body = ExperimentView),
        (status = 404, description = "No such experiment in the workspace", body = Problem),
    ))]
pub(super) async fn get_experiment(
    State(db): State<Db>,
    scope: InWorkspace,
    AppPath(path): AppPath<(String, String)>,
) -> ApiResult<AppJson<ExperimentView>> {
    let (_, experiment) = path;
    let workspace_id = scope.require(Role::Reader)?;
    let experiment = db.find_experiment(workspace_id, &experiment).await?;
    Ok(AppJson(experiment.into()))
}
