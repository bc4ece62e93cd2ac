use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use trainyard_core::Role;
use trainyard_db::Db;
use trainyard_storage::blob_key;
use utoipa::{IntoParams, ToSchema};

use super::DatasetView;
use crate::auth::InWorkspace;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{AppJson, AppPath, AppQuery};
use crate::routes::{version_param, VersionQuery};
use crate::AppState;

/// The datasets of a workspace.
#[derive(Debug, Serialize, ToSchema)]
pub struct DatasetList {
    /// The latest version of each, by name.
    pub items: Vec<DatasetView>,
}

/// Lists the latest version of every dataset.
#[utoipa::path(get, path = "/workspaces/{workspace}/datasets", tag = "datasets",
    params(("workspace" = String, Path, description = "Workspace name or id")),
    responses((status = 200, description = "The datasets", body = DatasetList)))]
pub(super) async fn list_datasets(
    State(db): State<Db>,
    scope: InWorkspace,
) -> ApiResult<AppJson<DatasetList>> {
    let workspace_id = scope.require(Role::Reader)?;
    let items = db
        .list_datasets(workspace_id)
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    Ok(AppJson(DatasetList { items }))
}

/// Gets a dataset version (the latest by default).
#[utoipa::path(get, path = "/workspaces/{workspace}/datasets/{name}", tag = "datasets",
    params(
        ("workspace" = String, Path, description = "Workspace name or id"),
        ("name" = String, Path, description = "Dataset name"),
        VersionQuery,
    ),
    responses(
        (status = 200, description = "The version", body = DatasetView),
        (status = 404, description = "No such dataset or version", body = Problem),
    ))]
pub(super) async fn get_dataset(
    State(db): State<Db>,
    scope: InWorkspace,
    AppPath(path): AppPath<(String, String)>,
    AppQuery(query): AppQuery<VersionQuery>,
) -> ApiResult<AppJson<DatasetView>> {
    let (_, name) = path;
    let workspace_id = scope.require(Role::Reader)?;
    Ok(AppJson(
        db.get_dataset(
            workspace_id,
            &name,
            version_param("version", query.version.as_deref())?,
        )
        .await?
        .into(),
    ))
}

/// A file of a dataset version.
#[derive(Debug, Serialize, ToSchema)]
pub struct DatasetFileView {
    /// Its path in the dataset.
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    /// SHA-256 of its content.
    pub sha256: String,
}

/// The files of a dataset version.
#[derive(Debug, Serialize, ToSchema)]
pub struct DatasetFileList {
    /// By path.
    pub items: Vec<DatasetFileView>,
}

/// Lists the files a dataset version references.
#[utoipa::path(get, path = "/workspaces/{workspace}/datasets/{name}/files", tag = "datasets",
    params(
        ("workspace" = String, Path, description = "Workspace name or id"),
        ("name" = String, Path, description = "Dataset name"),
        VersionQuery,
    ),
    responses(
        (status = 200, description = "The files", body = DatasetFileList),
        (status = 404, description = "No such dataset or version", body = Problem),
    ))]
pub(super) async fn list_dataset_files(
    State(db): State<Db>,
    scope: InWorkspace,
    AppPath(path): AppPath<(String, String)>,
    AppQuery(query): AppQuery<VersionQuery>,
) -> ApiResult<AppJson<DatasetFileList>> {
    let (_, name) = path;
    let workspace_id = scope.require(Role::Reader)?;
    let dataset = db
        .get_dataset(
            workspace_id,
            &name,
            version_param("version", query.version.as_deref())?,
        )
        .await?;
    let items = dataset
        .files
        .0
        .into_iter()
        .map(|f| DatasetFileView {
            path: f.path,
            size: f.size,
            sha256: f.sha256,
        })
        .collect();
    Ok(AppJson(DatasetFileList { items }))
}

/// Which file of which version to download.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DatasetFileQuery {
    /// The file's path in the version.
    pub path: String,
    /// The version; the latest when absent.
    #[param(value_type = Option<i32>)]
    pub version: Option<String>,
}

/// Downloads one file of a dataset version, streamed; its bytes are the ones
/// registered, whatever happened to the source since.
#[utoipa::path(get, path = "/workspaces/{workspace}/datasets/{name}/files/download", tag = "datasets",
    params(
        ("workspace" = String, Path, description = "Workspace name or id"),
        ("name" = String, Path, description = "Dataset name"),
        DatasetFileQuery,
    ),
    responses(
        (status = 200, description = "The file's bytes", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 404, description = "No such dataset, version or file", body = Problem),
    ))]
pub(super) async fn download_dataset_file(
    State(state): State<AppState>,
    scope: InWorkspace,
    AppPath(path): AppPath<(String, String)>,
    AppQuery(query): AppQuery<DatasetFileQuery>,
) -> ApiResult<Response> {
    let (_, name) = path;
    let workspace_id = scope.require(Role::Reader)?;
    let dataset = state
        .db
        .get_dataset(
            workspace_id,
            &name,
            version_param("version", query.version.as_deref())?,
        )
        .await?;
    let file = dataset
        .files
        .0
        .into_iter()
        .find(|f| f.path == query.path)
        .ok_or(ApiError::NotFound("file"))?;
    let stream = state
        .storage
        .get_stream(&blob_key(&file.sha256))
        .await
        .map_err(|e| ApiError::from_storage("file", "path", e))?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_LENGTH, file.size.to_string()),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}
