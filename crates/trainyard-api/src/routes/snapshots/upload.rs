use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Serialize;
use trainyard_core::Role;
use trainyard_storage::{Storage, StorageError};
use utoipa::ToSchema;

use crate::auth::InWorkspace;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::AppJson;
use crate::AppState;

/// A stored snapshot.
#[derive(Debug, Serialize, ToSchema)]
pub struct SnapshotView {
    /// SHA-256 of the canonical archive: pass it as a run's `snapshot`.
    pub digest: String,
    /// Size of the stored tar.gz in bytes.
    pub size_bytes: i64,
    /// How many files it holds (after the ignore rules).
    pub file_count: i64,
    /// When the workspace first uploaded it.
    pub created_at: DateTime<Utc>,
}

/// Uploads a source directory as a tar.gz (`Content-Type: application/gzip`).
/// The server applies the ignore rules (defaults such as `.git/`,
/// `__pycache__/`, `outputs/`, `logs/`, plus the archive's own
/// `.trainyardignore`), rewrites it canonically and stores it once by digest:
/// the same content uploaded twice is stored once.
#[utoipa::path(post, path = "/workspaces/{workspace}/snapshots", tag = "snapshots",
    params(("workspace" = String, Path, description = "Workspace name or id")),
    request_body(content = Vec<u8>, content_type = "application/gzip", description = "The source directory as tar.gz"),
    responses(
        (status = 201, description = "Stored", body = SnapshotView),
        (status = 403, description = "Needs the contributor role", body = Problem),
        (status = 413, description = "Over max_snapshot_bytes", body = Problem),
        (status = 422, description = "Not a usable tar.gz", body = Problem),
    ))]
pub(super) async fn upload_snapshot(
    State(state): State<AppState>,
    scope: InWorkspace,
    body: Body,
) -> ApiResult<(StatusCode, AppJson<SnapshotView>)> {
    let workspace_id = scope.require(Role::Contributor)?;
    let limit = state.limits.max_snapshot_bytes;
    // A compressed archive larger than the limit cannot fit either.
    let upload = crate::spool::spool(body, limit, || ApiError::SnapshotTooLarge { limit }).await?;
    let packed = tokio::task::spawn_blocking(move || {
        let file = upload.reopen().map_err(StorageError::Io)?;
        trainyard_storage::repack(std::io::BufReader::new(file), limit)
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?
    .map_err(|err| snapshot_error(err, limit))?;
    store(&state.storage, &packed).await?;
    let snapshot = state
        .db
        .record_snapshot(
            workspace_id,
            &packed.digest,
            packed.size as i64,
            packed.files as i64,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        AppJson(SnapshotView {
            digest: snapshot.digest,
            size_bytes: snapshot.size_bytes,
            file_count: snapshot.file_count,
            created_at: snapshot.created_at,
        }),
    ))
}

async fn store(storage: &Storage, packed: &trainyard_storage::Packed) -> Result<(), ApiError> {
    storage
        .put_snapshot(packed)
        .await
        .map(|_| ())
        .map_err(|e| ApiError::Internal(e.to_string()))
}

fn snapshot_error(err: StorageError, limit: u64) -> ApiError {
    match err {
        StorageError::TooLarge { .. } => ApiError::SnapshotTooLarge { limit },
        StorageError::Invalid { reason } => ApiError::invalid("body", reason),
        StorageError::Io(e)
            if e.kind() == std::io::ErrorKind::InvalidData
                || e.kind() == std::io::ErrorKind::UnexpectedEof =>
        {
            ApiError::invalid("body", format!("is not a tar.gz archive: {e}"))
        }
        other => ApiError::Internal(other.to_string()),
    }
}
