use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use std::collections::BTreeMap;
use trainyard_core::{validate, Role};
use trainyard_db::runs::NewRun;
use trainyard_db::{Db, DbError};
use utoipa::ToSchema;

use super::RunView;
use crate::auth::InWorkspace;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::AppJson;

/// A run to submit.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRun {
    /// The experiment, by id or name; it must exist.
    pub experiment: String,
    /// A label, at most 256 characters.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Labels: keys up to 250 characters, values up to 5000.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Descriptive key-values, same limits as tags.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

/// Submits a run; it starts Queued.
#[utoipa::path(post, path = "/workspaces/{workspace}/runs", tag = "runs",
    params(("workspace" = String, Path, description = "Workspace name or id")),
    request_body = CreateRun,
    responses(
        (status = 201, description = "Submitted", body = RunView),
        (status = 403, description = "Needs the contributor role", body = Problem),
        (status = 422, description = "A field is invalid or the experiment does not exist", body = Problem),
    ))]
pub(super) async fn create_run(
    State(db): State<Db>,
    scope: InWorkspace,
    AppJson(body): AppJson<CreateRun>,
) -> ApiResult<(StatusCode, AppJson<RunView>)> {
    let workspace_id = scope.require(Role::Contributor)?;
    let display_name = validate::display_name("display_name", body.display_name)?;
    let tags = validate::tag_map("tags", &body.tags)?;
    let properties = validate::tag_map("properties", &body.properties)?;
    let experiment = db
        .find_experiment(workspace_id, &body.experiment)
        .await
        .map_err(|err| match err {
            DbError::NotFound(_) => ApiError::invalid(
                "experiment",
                "no experiment with this id or name in the workspace",
            ),
            other => other.into(),
        })?;
    let run = db
        .create_run(
            workspace_id,
            NewRun {
                experiment_id: experiment.id,
                display_name,
                spec: serde_json::json!({}),
                tags,
                properties,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, AppJson(run.into())))
}
