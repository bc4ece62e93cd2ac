use axum::extract::State;
use serde::Serialize;
use trainyard_core::Role;
use trainyard_db::Db;
use utoipa::ToSchema;

use super::DatasetView;
use crate::auth::InWorkspace;
use crate::error::{ApiResult, Problem};
use crate::extract::{AppJson, AppPath, AppQuery};
use crate::routes::{version_param, VersionQuery};

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
