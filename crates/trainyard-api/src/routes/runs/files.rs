//! A run's files: `outputs/…` and `logs/…` as kept when it ended.

use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use trainyard_core::Role;
use trainyard_storage::StorageError;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::InWorkspace;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{AppJson, AppPath, AppQuery};
use crate::AppState;

/// One file of a run.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunFile {
    /// Its path: `outputs/model.bin`, `logs/train.log`.
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    /// When it was stored.
    pub modified: DateTime<Utc>,
}

/// The files of a run.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunFileList {
    /// Sorted by path.
    pub items: Vec<RunFile>,
}

fn run_prefix(run_id: Uuid) -> String {
    format!("runs/{run_id}")
}

/// Lists a run's files.
#[utoipa::path(get, path = "/workspaces/{workspace}/runs/{run_id}/files", tag = "runs",
    params(
        ("workspace" = String, Path, description = "Workspace name or id"),
        ("run_id" = Uuid, Path, description = "Run id"),
    ),
    responses(
        (status = 200, description = "The run's files", body = RunFileList),
        (status = 404, description = "No such run in the workspace", body = Problem),
    ))]
pub(super) async fn list_run_files(
    State(state): State<AppState>,
    scope: InWorkspace,
    AppPath(path): AppPath<(String, Uuid)>,
) -> ApiResult<AppJson<RunFileList>> {
    let (_, run_id) = path;
    let workspace_id = scope.require(Role::Reader)?;
    state.db.get_run(workspace_id, run_id).await?;
    let objects = state
        .storage
        .list(&run_prefix(run_id))
        .await
        .map_err(storage_error)?;
    Ok(AppJson(RunFileList {
        items: objects
            .into_iter()
            .map(|o| RunFile {
                path: o.key,
                size: o.size,
                modified: o.modified,
            })
            .collect(),
    }))
}

/// Which file to download.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FileQuery {
    /// The file's path, as listed.
    pub path: String,
}

/// Downloads one file of a run, as it was written.
#[utoipa::path(get, path = "/workspaces/{workspace}/runs/{run_id}/files/download", tag = "runs",
    params(
        ("workspace" = String, Path, description = "Workspace name or id"),
        ("run_id" = Uuid, Path, description = "Run id"),
        FileQuery,
    ),
    responses(
        (status = 200, description = "The file's bytes", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 404, description = "No such run or file", body = Problem),
    ))]
pub(super) async fn download_run_file(
    State(state): State<AppState>,
    scope: InWorkspace,
    AppPath(path): AppPath<(String, Uuid)>,
    AppQuery(query): AppQuery<FileQuery>,
) -> ApiResult<Response> {
    let (_, run_id) = path;
    let workspace_id = scope.require(Role::Reader)?;
    state.db.get_run(workspace_id, run_id).await?;
    let key = format!(
        "{}/{}",
        run_prefix(run_id),
        query.path.trim_start_matches('/')
    );
    let stream = state
        .storage
        .get_stream(&key)
        .await
        .map_err(|err| ApiError::from_storage("file", "path", err))?;
    let name = query
        .path
        .rsplit('/')
        .next()
        .unwrap_or("file")
        .replace('"', "");
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

/// Which files to put in the archive.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ArchiveQuery {
    /// Only files under this folder (`outputs`); every file when absent.
    pub prefix: Option<String>,
}

/// Downloads a run's files as one tar.gz.
#[utoipa::path(get, path = "/workspaces/{workspace}/runs/{run_id}/files/archive", tag = "runs",
    params(
        ("workspace" = String, Path, description = "Workspace name or id"),
        ("run_id" = Uuid, Path, description = "Run id"),
        ArchiveQuery,
    ),
    responses(
        (status = 200, description = "A tar.gz of the files", content_type = "application/gzip", body = Vec<u8>),
        (status = 404, description = "No such run in the workspace", body = Problem),
    ))]
pub(super) async fn download_run_archive(
    State(state): State<AppState>,
    scope: InWorkspace,
    AppPath(path): AppPath<(String, Uuid)>,
    AppQuery(query): AppQuery<ArchiveQuery>,
) -> ApiResult<Response> {
    let (_, run_id) = path;
    let workspace_id = scope.require(Role::Reader)?;
    state.db.get_run(workspace_id, run_id).await?;
    let mut prefix = run_prefix(run_id);
    if let Some(sub) = query
        .prefix
        .as_deref()
        .map(|p| p.trim_matches('/'))
        .filter(|p| !p.is_empty())
    {
        prefix = format!("{prefix}/{sub}");
    }
    let file = trainyard_storage::archive(&state.storage, &prefix)
        .await
        .map_err(|err| ApiError::from_storage("file", "prefix", err))?;
    let file = tokio::fs::File::from_std(file.into_file());
    let stream = tokio_util::io::ReaderStream::new(file);
    Ok((
        [
            (header::CONTENT_TYPE, "application/gzip".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"run-{run_id}.tar.gz\""),
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

fn storage_error(err: StorageError) -> ApiError {
    ApiError::Internal(err.to_string())
}

/// Largest single file a client may upload to a run.
pub(crate) const MAX_UPLOAD_BYTES: u64 = 2 * 1024 * 1024 * 1024;

/// Where to store an uploaded file.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// The file's path among the run's files (`images/loss/3.png`, `outputs/report.txt`).
    pub path: String,
}

/// Uploads one file to a run's files (the SDK's `upload_file` and
/// `log_image`); the body is the file's bytes, at most 2 GiB. A run's own
/// token may upload only to that run.
#[utoipa::path(put, path = "/workspaces/{workspace}/runs/{run_id}/files/upload", tag = "runs",
    params(
        ("workspace" = String, Path, description = "Workspace name or id"),
        ("run_id" = Uuid, Path, description = "Run id"),
        UploadQuery,
    ),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses(
        (status = 201, description = "Stored", body = RunFile),
        (status = 413, description = "Over 2 GiB", body = Problem),
        (status = 422, description = "The path is not a relative file path", body = Problem),
    ))]
pub(super) async fn upload_run_file(
    State(state): State<AppState>,
    scope: InWorkspace,
    AppPath(path): AppPath<(String, Uuid)>,
    AppQuery(query): AppQuery<UploadQuery>,
    body: Body,
) -> ApiResult<(axum::http::StatusCode, AppJson<RunFile>)> {
    let (_, run_id) = path;
    let workspace_id = scope.require_run_write(run_id)?;
    state.db.get_run(workspace_id, run_id).await?;
    let relative = query.path.trim_start_matches('/');
    if relative.is_empty()
        || relative
            .split('/')
            .any(|p| p.is_empty() || p == "." || p == "..")
    {
        return Err(ApiError::invalid(
            "path",
            "must be a relative file path without '.' or '..' parts",
        ));
    }
    let file = crate::spool::spool(body, MAX_UPLOAD_BYTES, || ApiError::TooLarge {
        limit: MAX_UPLOAD_BYTES,
        setting: None,
    })
    .await?;
    let key = format!("{}/{relative}", run_prefix(run_id));
    state
        .storage
        .put_file(&key, file.path())
        .await
        .map_err(|err| ApiError::from_storage("file", "path", err))?;
    let stored = state.storage.head(&key).await.map_err(storage_error)?;
    Ok((
        axum::http::StatusCode::CREATED,
        AppJson(RunFile {
            path: relative.to_string(),
            size: stored.size,
            modified: stored.modified,
        }),
    ))
}
