//! Multipart uploads for large artifacts (mlflow-artifacts/mpu/*). MLflow's
//! client sends each part to a URL the server hands out, without
//! credentials, as it would to a presigned cloud URL: here the URL points
//! back at this server and carries the upload's random id. Parts are kept
//! apart until `complete` joins them, in order, into the artifact.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::TryStreamExt;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

use super::artifacts::{artifact_key, Access};
use super::auth::MlflowCaller;
use super::error::{MlflowError, MlflowResult};
use super::request::{lenient_i64, Input};
use crate::AppState;

/// Largest part (cloud stores allow 5 GiB).
const MAX_PART_BYTES: u64 = 5 * 1024 * 1024 * 1024;
/// Most parts of one upload (as in S3).
const MAX_PARTS: i64 = 10_000;

/// Where a part waits until the upload completes.
fn part_key(upload: Uuid, number: i32) -> String {
    format!("mlflow-uploads/{upload}/{number:05}")
}

#[derive(Debug, Deserialize)]
pub(super) struct CreateUpload {
    /// The client's local file: its name is the artifact's.
    path: Option<String>,
    #[serde(default, deserialize_with = "lenient_i64")]
    num_parts: Option<i64>,
}

/// The artifact key of a file named after the client's `local_file`, in
/// the folder the URL names.
async fn target(
    state: &AppState,
    caller: &MlflowCaller,
    folder: &str,
    local_file: &Option<String>,
) -> MlflowResult<String> {
    let name = local_file
        .as_deref()
        .and_then(|p| p.rsplit(['/', '\\']).next())
        .filter(|n| !n.is_empty())
        .ok_or_else(|| MlflowError::invalid("Missing value for required parameter 'path'"))?;
    artifact_key(
        state,
        caller,
        &format!("{}/{name}", folder.trim_matches('/')),
        Access::Write,
    )
    .await
}

pub(super) async fn create_upload(
    State(state): State<AppState>,
    caller: MlflowCaller,
    Path(folder): Path<String>,
    headers: HeaderMap,
    Input(body): Input<CreateUpload>,
) -> MlflowResult<Json<Value>> {
    let key = target(&state, &caller, &folder, &body.path).await?;
    let parts = body.num_parts.unwrap_or(1);
    if !(1..=MAX_PARTS).contains(&parts) {
        return Err(MlflowError::invalid(format!(
            "num_parts must be from 1 to {MAX_PARTS}"
        )));
    }
    let upload = state
        .db
        .mlflow_create_upload(caller.read(), &key, parts as i32)
        .await?;
    let base = server_base(&headers);
    let credentials: Vec<Value> = (1..=parts)
        .map(|n| {
            json!({
                "url": format!("{base}/api/2.0/mlflow-artifacts/mpu/parts/{}/{n}", upload.id),
                "part_number": n,
                "headers": {},
            })
        })
        .collect();
    Ok(Json(
        json!({ "upload_id": upload.id.to_string(), "credentials": credentials }),
    ))
}

/// The server's root URL as the client reached it.
fn server_base(headers: &HeaderMap) -> String {
    let value = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let scheme = value("x-forwarded-proto").unwrap_or("http");
    let host = value("x-forwarded-host")
        .or(value(header::HOST.as_str()))
        .unwrap_or("127.0.0.1");
    format!("{scheme}://{host}")
}

/// Receives one part; the upload's id in the URL is the only credential.
pub(super) async fn upload_part(
    State(state): State<AppState>,
    Path((upload, number)): Path<(Uuid, i32)>,
    body: Body,
) -> MlflowResult<Response> {
    let found = state.db.mlflow_upload(upload).await?;
    if !(1..=found.parts).contains(&number) {
        return Err(MlflowError::invalid(format!(
            "part {number} is not one of the upload's {} parts",
            found.parts
        )));
    }
    let file = crate::spool::spool(body, MAX_PART_BYTES, || crate::error::ApiError::TooLarge {
        limit: MAX_PART_BYTES,
        setting: None,
    })
    .await
    .map_err(|err| MlflowError::invalid(err.to_string()))?;
    state
        .storage
        .put_file(&part_key(upload, number), file.path())
        .await?;
    Ok((
        StatusCode::OK,
        [(header::ETAG, format!("\"{upload}-{number}\""))],
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
pub(super) struct FinishUpload {
    path: Option<String>,
    upload_id: Option<String>,
    #[serde(default)]
    parts: Vec<Part>,
}

#[derive(Debug, Deserialize)]
struct Part {
    #[serde(default, deserialize_with = "lenient_i64")]
    part_number: Option<i64>,
}

/// The upload a complete or abort request names, ended (it can be finished once).
async fn finish(
    state: &AppState,
    caller: &MlflowCaller,
    folder: &str,
    body: &FinishUpload,
) -> MlflowResult<(Uuid, String)> {
    let key = target(state, caller, folder, &body.path).await?;
    let id = body
        .upload_id
        .as_deref()
        .and_then(|id| Uuid::parse_str(id).ok())
        .ok_or_else(|| MlflowError::invalid("Missing or invalid 'upload_id'"))?;
    let upload = state.db.mlflow_finish_upload(caller.read(), id).await?;
    if upload.storage_key != key {
        return Err(MlflowError::invalid(
            "the upload was started for another artifact",
        ));
    }
    Ok((id, key))
}

pub(super) async fn complete_upload(
    State(state): State<AppState>,
    caller: MlflowCaller,
    Path(folder): Path<String>,
    Input(body): Input<FinishUpload>,
) -> MlflowResult<Json<Value>> {
    let (id, key) = finish(&state, &caller, &folder, &body).await?;
    let mut numbers: Vec<i32> = body
        .parts
        .iter()
        .filter_map(|p| p.part_number)
        .map(|n| n as i32)
        .collect();
    numbers.sort_unstable();
    numbers.dedup();
    // The parts are joined in a temporary file, then stored as one object.
    let joined = tempfile::NamedTempFile::new().map_err(MlflowError::internal)?;
    let mut file = tokio::fs::File::from_std(joined.reopen().map_err(MlflowError::internal)?);
    for number in &numbers {
        let mut stream = state
            .storage
            .get_stream(&part_key(id, *number))
            .await
            .map_err(|_| MlflowError::invalid(format!("part {number} was never uploaded")))?;
        while let Some(chunk) = stream.try_next().await? {
            file.write_all(&chunk)
                .await
                .map_err(MlflowError::internal)?;
        }
    }
    file.flush().await.map_err(MlflowError::internal)?;
    state.storage.put_file(&key, joined.path()).await?;
    state
        .storage
        .delete_prefix(&format!("mlflow-uploads/{id}"))
        .await?;
    Ok(Json(json!({})))
}

pub(super) async fn abort_upload(
    State(state): State<AppState>,
    caller: MlflowCaller,
    Path(folder): Path<String>,
    Input(body): Input<FinishUpload>,
) -> MlflowResult<Json<Value>> {
    let (id, _) = finish(&state, &caller, &folder, &body).await?;
    state
        .storage
        .delete_prefix(&format!("mlflow-uploads/{id}"))
        .await?;
    Ok(Json(json!({})))
}
