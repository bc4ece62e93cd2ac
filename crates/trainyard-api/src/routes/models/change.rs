use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use std::collections::BTreeMap;
use trainyard_core::{validate, Name, Role};
use utoipa::ToSchema;

use super::get::parse_version;
use super::{model_prefix, ModelView};
use crate::auth::InWorkspace;
use crate::error::{ApiResult, Problem};
use crate::extract::{AppJson, AppPath};
use crate::AppState;

/// What may change on a version: never its files.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateModel {
    /// Replaces the tags.
    #[serde(default)]
    pub tags: Option<BTreeMap<String, String>>,
    /// Replaces the description.
    #[serde(default)]
    pub description: Option<String>,
}

/// Changes a version's tags or description.
#[utoipa::path(patch, path = "/workspaces/{workspace}/models/{name}/versions/{version}", tag = "models",
    params(
        ("workspace" = String, Path, description = "Workspace name or id"),
        ("name" = String, Path, description = "Model name"),
        ("version" = i32, Path, description = "Version"),
    ),
    request_body = UpdateModel,
    responses(
        (status = 200, description = "Changed", body = ModelView),
        (status = 404, description = "No such version", body = Problem),
    ))]
pub(super) async fn update_model(
    State(state): State<AppState>,
    scope: InWorkspace,
    AppPath(path): AppPath<(String, String, String)>,
    AppJson(body): AppJson<UpdateModel>,
) -> ApiResult<AppJson<ModelView>> {
    let (_, name, version) = path;
    let workspace_id = scope.require(Role::Contributor)?;
    let version = parse_version("version", &version)?;
    if let Some(tags) = &body.tags {
        validate::tag_map("tags", tags)?;
    }
    let description = validate::description("description", body.description)?;
    let model = state
        .db
        .update_model(
            workspace_id,
            &name,
            version,
            body.tags.as_ref(),
            description.as_deref(),
        )
        .await?;
    Ok(AppJson(model.into()))
}

/// Deletes a version, its files and the aliases pointing at it.
#[utoipa::path(delete, path = "/workspaces/{workspace}/models/{name}/versions/{version}", tag = "models",
    params(
        ("workspace" = String, Path, description = "Workspace name or id"),
        ("name" = String, Path, description = "Model name"),
        ("version" = i32, Path, description = "Version"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such version", body = Problem),
    ))]
pub(super) async fn delete_model(
    State(state): State<AppState>,
    scope: InWorkspace,
    AppPath(path): AppPath<(String, String, String)>,
) -> ApiResult<StatusCode> {
    let (_, name, version) = path;
    let workspace_id = scope.require(Role::Contributor)?;
    let version = parse_version("version", &version)?;
    let id = state.db.delete_model(workspace_id, &name, version).await?;
    if let Err(err) = state.storage.delete_prefix(&model_prefix(id)).await {
        // The row is gone, so the files are unreachable; say so and go on.
        tracing::warn!(error = %err, "deleting a model's files failed");
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The version an alias points at.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetAlias {
    /// The version.
    pub version: i32,
}

/// Points an alias (e.g. `production`) at a version.
#[utoipa::path(put, path = "/workspaces/{workspace}/models/{name}/aliases/{alias}", tag = "models",
    params(
        ("workspace" = String, Path, description = "Workspace name or id"),
        ("name" = String, Path, description = "Model name"),
        ("alias" = String, Path, description = "Alias"),
    ),
    request_body = SetAlias,
    responses(
        (status = 200, description = "The version it points at", body = ModelView),
        (status = 404, description = "No such version", body = Problem),
    ))]
pub(super) async fn set_alias(
    State(state): State<AppState>,
    scope: InWorkspace,
    AppPath(path): AppPath<(String, String, String)>,
    AppJson(body): AppJson<SetAlias>,
) -> ApiResult<AppJson<ModelView>> {
    let (_, name, alias) = path;
    let workspace_id = scope.require(Role::Contributor)?;
    Name::parse("alias", &alias)?;
    let model = state
        .db
        .set_model_alias(workspace_id, &name, &alias, body.version)
        .await?;
    Ok(AppJson(model.into()))
}

/// Removes an alias.
#[utoipa::path(delete, path = "/workspaces/{workspace}/models/{name}/aliases/{alias}", tag = "models",
    params(
        ("workspace" = String, Path, description = "Workspace name or id"),
        ("name" = String, Path, description = "Model name"),
        ("alias" = String, Path, description = "Alias"),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such alias", body = Problem),
    ))]
pub(super) async fn delete_alias(
    State(state): State<AppState>,
    scope: InWorkspace,
    AppPath(path): AppPath<(String, String, String)>,
) -> ApiResult<StatusCode> {
    let (_, name, alias) = path;
    let workspace_id = scope.require(Role::Contributor)?;
    state
        .db
        .delete_model_alias(workspace_id, &name, &alias)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
