use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use trainyard_core::Role;
use utoipa::IntoParams;

use super::{model_prefix, ModelList, ModelView};
use crate::auth::InWorkspace;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{AppJson, AppPath, AppQuery};
use crate::routes::version_param;
use crate::AppState;

/// Lists the latest version of every model.
#[utoipa::path(get, path = "/workspaces/{workspace}/models", tag = "models",
    params(("workspace" = String, Path, description = "Workspace name or id")),
    responses((status = 200, description = "The models", body = ModelList)))]
pub(super) async fn list_models(
    State(state): State<AppState>,
    scope: InWorkspace,
) -> ApiResult<AppJson<ModelList>> {
    let workspace_id = scope.require(Role::Reader)?;
    let items = state
        .db
        .list_models(workspace_id, None)
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    Ok(AppJson(ModelList { items }))
}

/// Which version.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ModelQuery {
    /// A version number.
    #[param(value_type = Option<i32>)]
    pub version: Option<String>,
    /// An alias such as `production`.
    pub alias: Option<String>,
}

/// Parses a version number given in `field` of the path.
pub(super) fn parse_version(field: &str, text: &str) -> Result<i32, ApiError> {
    Ok(version_param(field, Some(text))?.unwrap_or(1))
}

/// Gets a model version: `version`, or the one `alias` points at, or the latest.
#[utoipa::path(get, path = "/workspaces/{workspace}/models/{name}", tag = "models",
    params(
        ("workspace" = String, Path, description = "Workspace name or id"),
        ("name" = String, Path, description = "Model name"),
        ModelQuery,
    ),
    responses(
        (status = 200, description = "The version", body = ModelView),
        (status = 404, description = "No such model, version or alias", body = Problem),
    ))]
pub(super) async fn get_model(
    State(state): State<AppState>,
    scope: InWorkspace,
    AppPath(path): AppPath<(String, String)>,
    AppQuery(query): AppQuery<ModelQuery>,
) -> ApiResult<AppJson<ModelView>> {
    let (_, name) = path;
    let workspace_id = scope.require(Role::Reader)?;
    let version = version_param("version", query.version.as_deref())?;
    let model = state
        .db
        .get_model(workspace_id, &name, version, query.alias.as_deref())
        .await?;
    Ok(AppJson(model.into()))
}

/// Lists every version of a model, newest first.
#[utoipa::path(get, path = "/workspaces/{workspace}/models/{name}/versions", tag = "models",
    params(
        ("workspace" = String, Path, description = "Workspace name or id"),
        ("name" = String, Path, description = "Model name"),
    ),
    responses((status = 200, description = "The versions", body = ModelList)))]
pub(super) async fn list_model_versions(
    State(state): State<AppState>,
    scope: InWorkspace,
    AppPath(path): AppPath<(String, String)>,
) -> ApiResult<AppJson<ModelList>> {
    let (_, name) = path;
    let workspace_id = scope.require(Role::Reader)?;
    let items = state
        .db
        .list_models(workspace_id, Some(&name))
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    Ok(AppJson(ModelList { items }))
}

/// Downloads a model version's files as one tar.gz (paths relative to the model's root).
#[utoipa::path(get, path = "/workspaces/{workspace}/models/{name}/versions/{version}/download", tag = "models",
    params(
        ("workspace" = String, Path, description = "Workspace name or id"),
        ("name" = String, Path, description = "Model name"),
        ("version" = i32, Path, description = "Version"),
    ),
    responses(
        (status = 200, description = "A tar.gz", content_type = "application/gzip", body = Vec<u8>),
        (status = 404, description = "No such model version", body = Problem),
    ))]
pub(super) async fn download_model(
    State(state): State<AppState>,
    scope: InWorkspace,
    AppPath(path): AppPath<(String, String, String)>,
) -> ApiResult<Response> {
    let (_, name, version) = path;
    let workspace_id = scope.require(Role::Reader)?;
    let version = parse_version("version", &version)?;
    let model = state
        .db
        .get_model(workspace_id, &name, Some(version), None)
        .await?;
    let file = trainyard_storage::archive(&state.storage, &model_prefix(model.id))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let stream = tokio_util::io::ReaderStream::new(tokio::fs::File::from_std(file.into_file()));
    Ok((
        [
            (header::CONTENT_TYPE, "application/gzip".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}-{version}.tar.gz\""),
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}
