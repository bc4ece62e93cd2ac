use axum::body::Body;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use trainyard_core::Role;
use trainyard_storage::StorageError;
use utoipa::{IntoParams, ToSchema};

use super::{check_relative, open_datastore};
use crate::auth::InWorkspace;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{AppJson, AppPath, AppQuery};
use crate::AppState;

/// Largest single file uploaded to a datastore.
const MAX_DATASTORE_FILE_BYTES: u64 = 64 * 1024 * 1024 * 1024;

/// Most of a refused upload read before answering (see [`crate::spool::drain`]).
const MAX_DRAIN_BYTES: u64 = 4 * 1024 * 1024 * 1024;

/// A file in a datastore.
#[derive(Debug, Serialize, ToSchema)]
pub struct DatastoreFile {
    /// Its path in the datastore.
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    /// When it was written.
    pub modified: Option<DateTime<Utc>>,
}

/// Where to upload.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// The file's path in the datastore.
    pub path: String,
    /// Replace a file already there (default false: 409).
    #[param(value_type = Option<bool>)]
    pub overwrite: Option<String>,
}

fn storage_error(field: &str, err: StorageError) -> ApiError {
    ApiError::from_storage("file", field, err)
}

/// Uploads one file to a datastore (the body is its bytes, streamed; up to 64 GiB).
#[utoipa::path(put, path = "/workspaces/{workspace}/datastores/{name}/files", tag = "datastores",
    params(
        ("workspace" = String, Path, description = "Workspace name or id"),
        ("name" = String, Path, description = "Datastore name"),
        UploadQuery,
    ),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses(
        (status = 201, description = "Stored", body = DatastoreFile),
        (status = 409, description = "The file exists and overwrite is false", body = Problem),
        (status = 422, description = "The path is not inside the datastore", body = Problem),
    ))]
pub(super) async fn upload_datastore_file(
    State(state): State<AppState>,
    scope: InWorkspace,
    AppPath(path): AppPath<(String, String)>,
    AppQuery(query): AppQuery<UploadQuery>,
    body: Body,
) -> ApiResult<(StatusCode, AppJson<DatastoreFile>)> {
    let (_, name) = path;
    let workspace_id = scope.require(Role::Contributor)?;
    check_relative("path", &query.path)?;
    let overwrite = match query.overwrite.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(ApiError::invalid("overwrite", "must be true or false")),
    };
    let datastore = open_datastore(&state, workspace_id, &name, "name").await?;
    let key = datastore.key(&query.path);
    if !overwrite
        && datastore
            .storage
            .exists(&key)
            .await
            .map_err(|e| storage_error("path", e))?
    {
        crate::spool::drain(body, MAX_DRAIN_BYTES).await;
        return Err(ApiError::Conflict {
            what: "file",
            field: "path",
        });
    }
    let file = crate::spool::spool(body, MAX_DATASTORE_FILE_BYTES, || ApiError::TooLarge {
        limit: MAX_DATASTORE_FILE_BYTES,
        setting: None,
    })
    .await?;
    let size = datastore
        .storage
        .put_file(&key, file.path())
        .await
        .map_err(|e| storage_error("path", e))?;
    Ok((
        StatusCode::CREATED,
        AppJson(DatastoreFile {
            path: query.path,
            size,
            modified: Some(Utc::now()),
        }),
    ))
}

/// Which files to list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only files under this folder.
    pub prefix: Option<String>,
}

/// The files of a datastore.
#[derive(Debug, Serialize, ToSchema)]
pub struct DatastoreFileList {
    /// By path.
    pub items: Vec<DatastoreFile>,
}

/// Lists a datastore's files.
#[utoipa::path(get, path = "/workspaces/{workspace}/datastores/{name}/files", tag = "datastores",
    params(
        ("workspace" = String, Path, description = "Workspace name or id"),
        ("name" = String, Path, description = "Datastore name"),
        ListQuery,
    ),
    responses((status = 200, description = "The files", body = DatastoreFileList)))]
pub(super) async fn list_datastore_files(
    State(state): State<AppState>,
    scope: InWorkspace,
    AppPath(path): AppPath<(String, String)>,
    AppQuery(query): AppQuery<ListQuery>,
) -> ApiResult<AppJson<DatastoreFileList>> {
    let (_, name) = path;
    let workspace_id = scope.require(Role::Reader)?;
    let datastore = open_datastore(&state, workspace_id, &name, "name").await?;
    let sub = query
        .prefix
        .as_deref()
        .map(|p| p.trim_matches('/'))
        .filter(|p| !p.is_empty());
    if let Some(sub) = sub {
        check_relative("prefix", sub)?;
    }
    let listing_prefix = match sub {
        Some(sub) => datastore.key(sub),
        None => datastore.prefix.clone(),
    };
    let objects = datastore
        .storage
        .list(&listing_prefix)
        .await
        .map_err(|e| storage_error("prefix", e))?;
    let items = objects
        .into_iter()
        .map(|o| DatastoreFile {
            path: match sub {
                Some(sub) => format!("{sub}/{}", o.key),
                None => o.key,
            },
            size: o.size,
            modified: Some(o.modified),
        })
        .collect();
    Ok(AppJson(DatastoreFileList { items }))
}

/// Which file to download.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DownloadQuery {
    /// The file's path.
    pub path: String,
}

/// Downloads one file of a datastore, streamed.
#[utoipa::path(get, path = "/workspaces/{workspace}/datastores/{name}/files/download", tag = "datastores",
    params(
        ("workspace" = String, Path, description = "Workspace name or id"),
        ("name" = String, Path, description = "Datastore name"),
        DownloadQuery,
    ),
    responses(
        (status = 200, description = "The file's bytes", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 404, description = "No such file", body = Problem),
    ))]
pub(super) async fn download_datastore_file(
    State(state): State<AppState>,
    scope: InWorkspace,
    AppPath(path): AppPath<(String, String)>,
    AppQuery(query): AppQuery<DownloadQuery>,
) -> ApiResult<Response> {
    let (_, name) = path;
    let workspace_id = scope.require(Role::Reader)?;
    check_relative("path", &query.path)?;
    let datastore = open_datastore(&state, workspace_id, &name, "name").await?;
    let stream = datastore
        .storage
        .get_stream(&datastore.key(&query.path))
        .await
        .map_err(|e| storage_error("path", e))?;
    Ok((
        [(header::CONTENT_TYPE, "application/octet-stream")],
        Body::from_stream(stream),
    )
        .into_response())
}
