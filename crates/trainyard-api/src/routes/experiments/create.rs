use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use trainyard_core::{Name, Role};
use trainyard_db::Db;
use utoipa::ToSchema;

use super::{ExperimentFields, ExperimentView};
use crate::auth::InWorkspace;
use crate::error::{ApiResult, Problem};
use crate::extract::{AppJson, AppPath};

/// A new experiment.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateExperiment {
    /// Name, unique in the workspace: letters, digits, `_`, `-`, `.`; at most 128 characters.
    pub name: String,
    /// Free text, at most 5000 characters.
    #[serde(default)]
    pub description: Option<String>,
    /// Labels: keys up to 250 characters, values up to 5000.
    #[serde(default)]
    pub tags: std::collections::BTreeMap<String, String>,
}

/// Creates an experiment; fails if the name is taken.
#[utoipa::path(post, path = "/workspaces/{workspace}/experiments", tag = "experiments",
    params(("workspace" = String, Path, description = "Workspace name or id")),
    request_body = CreateExperiment,
    responses(
        (status = 201, description = "Created", body = ExperimentView),
        (status = 403, description = "Needs the contributor role", body = Problem),
        (status = 409, description = "The name is taken", body = Problem),
        (status = 422, description = "A field is invalid", body = Problem),
    ))]
pub(super) async fn create_experiment(
    State(db): State<Db>,
    scope: InWorkspace,
    AppJson(body): AppJson<CreateExperiment>,
) -> ApiResult<(StatusCode, AppJson<ExperimentView>)> {
    let workspace_id = scope.require(Role::Contributor)?;
    let name = Name::parse("name", &body.name)?;
    let fields = ExperimentFields {
        description: body.description,
        tags: body.tags,
    };
    let new = fields.validate(&name)?;
    let experiment = db.create_experiment(workspace_id, new).await?;
    Ok((StatusCode::CREATED, AppJson(experiment.into())))
}

/// Gets the experiment with this name, creating it if there is none (the
/// SDK's `Experiment(ws, name)`). The body's fields apply only on creation.
#[utoipa::path(put, path = "/workspaces/{workspace}/experiments/{experiment}", tag = "experiments",
    params(
        ("workspace" = String, Path, description = "Workspace name or id"),
        ("experiment" = String, Path, description = "Experiment name"),
    ),
    request_body = ExperimentFields,
    responses(
        (status = 200, description = "It existed", body = ExperimentView),
        (status = 201, description = "Created", body = ExperimentView),
        (status = 403, description = "Needs the contributor role", body = Problem),
        (status = 422, description = "A field is invalid", body = Problem),
    ))]
pub(super) async fn get_or_create_experiment(
    State(db): State<Db>,
    scope: InWorkspace,
    AppPath(path): AppPath<(String, String)>,
    AppJson(body): AppJson<ExperimentFields>,
) -> ApiResult<(StatusCode, AppJson<ExperimentView>)> {
    let (_, experiment) = path;
    let workspace_id = scope.require(Role::Contributor)?;
    let name = Name::parse("experiment", &experiment)?;
    let new = body.validate(&name)?;
    let (experiment, created) = db.get_or_create_experiment(workspace_id, new).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, AppJson(experiment.into())))
}
