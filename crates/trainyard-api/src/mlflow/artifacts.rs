//! The mlflow-artifacts proxy: the path after `mlflow-artifacts:/` is the
//! storage key, so a run's artifacts are its Trainyard run files
//! (`runs/<run id>/...`), a logged model's files live among its run's files
//! or under `logged-models/<id>/`, and a model version's under
//! `models/<version id>/` (read only: versions never change).

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use trainyard_db::DbError;
use uuid::Uuid;

use super::auth::MlflowCaller;
use super::error::{MlflowError, MlflowResult};
use super::request::{run_id, Input};
use super::views::{parse_logged_model_id, run_prefix};
use crate::AppState;

/// Largest artifact sent in one PUT (Trainyard's limit for a run file);
/// larger files go through multipart uploads.
const MAX_ARTIFACT_BYTES: u64 = 2 * 1024 * 1024 * 1024;

/// Whether a request reads or writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Access {
    Read,
    Write,
}

/// The storage key an artifact path names, if the caller may reach it so.
pub(super) async fn artifact_key(
    state: &AppState,
    caller: &MlflowCaller,
    path: &str,
    access: Access,
) -> MlflowResult<String> {
    let path = path.trim_matches('/');
    let missing = || MlflowError::not_found(format!("No artifact at '{path}'"));
    let mut parts = path.splitn(3, '/');
    let (area, id) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    match area {
        "runs" => {
            let run = Uuid::parse_str(id).map_err(|_| missing())?;
            let workspace_id = match access {
                Access::Read => caller.read(),
                Access::Write => caller.write_run(run)?,
            };
            match state.db.mlflow_check_run_active(workspace_id, run).await {
                Err(DbError::NotFound(_)) => return Err(missing()),
                Err(DbError::Deleted(_)) if access == Access::Read => {}
                other => other?,
            }
        }
        "logged-models" => {
            let model_id = parse_logged_model_id(id).ok_or_else(missing)?;
            let model = match state.db.mlflow_logged_model(caller.read(), model_id).await {
                Err(DbError::NotFound(_)) => return Err(missing()),
                other => other?,
            };
            if access == Access::Write
                && (model.run_id.is_none() || model.run_id != caller.own_run())
            {
                caller.write()?;
            }
        }
        "models" => {
            let version = Uuid::parse_str(id).map_err(|_| missing())?;
            if access == Access::Write {
                return Err(MlflowError::denied(
                    "model versions never change; register a new version",
                ));
            }
            match state
                .db
                .mlflow_model_version_by_id(caller.read(), version)
                .await
            {
                Err(DbError::NotFound(_)) => return Err(missing()),
                other => other?,
            };
        }
        _ => return Err(missing()),
    }
    Ok(path.to_string())
}

pub(super) async fn download_artifact(
    State(state): State<AppState>,
    caller: MlflowCaller,
    Path(path): Path<String>,
) -> MlflowResult<Response> {
    let key = artifact_key(&state, &caller, &path, Access::Read).await?;
    let stream = state.storage.get_stream(&key).await?;
    Ok((
        [(header::CONTENT_TYPE, "application/octet-stream")],
        Body::from_stream(stream),
    )
        .into_response())
}

pub(super) async fn upload_artifact(
    State(state): State<AppState>,
    caller: MlflowCaller,
    Path(path): Path<String>,
    body: Body,
) -> MlflowResult<Json<Value>> {
    let key = artifact_key(&state, &caller, &path, Access::Write).await?;
    if key.split('/').count() < 3 {
        return Err(MlflowError::invalid("an artifact needs a file name"));
    }
    let file = crate::spool::spool(body, MAX_ARTIFACT_BYTES, || {
        crate::error::ApiError::TooLarge {
            limit: MAX_ARTIFACT_BYTES,
            setting: None,
        }
    })
    .await
    .map_err(|err| MlflowError::invalid(err.to_string()))?;
    state.storage.put_file(&key, file.path()).await?;
    Ok(Json(json!({})))
}

pub(super) async fn delete_artifact(
    State(state): State<AppState>,
    caller: MlflowCaller,
    Path(path): Path<String>,
) -> MlflowResult<Json<Value>> {
    let key = artifact_key(&state, &caller, &path, Access::Write).await?;
    state.storage.delete(&key).await?;
    state.storage.delete_prefix(&key).await?;
    Ok(Json(json!({})))
}

#[derive(Debug, Deserialize)]
pub(super) struct ListQuery {
    path: Option<String>,
}

/// The direct children of a folder: files with their sizes, then folders.
async fn children(state: &AppState, key: &str) -> MlflowResult<Vec<Value>> {
    let mut entries: BTreeMap<String, Option<u64>> = BTreeMap::new();
    for object in state.storage.list(key).await? {
        match object.key.split_once('/') {
            Some((folder, _)) => entries.insert(folder.to_string(), None),
            None => entries.insert(object.key, Some(object.size)),
        };
    }
    Ok(entries
        .into_iter()
        .map(|(path, size)| match size {
            Some(size) => json!({ "path": path, "is_dir": false, "file_size": size }),
            None => json!({ "path": path, "is_dir": true }),
        })
        .collect())
}

pub(super) async fn list_artifacts(
    State(state): State<AppState>,
    caller: MlflowCaller,
    Input(query): Input<ListQuery>,
) -> MlflowResult<Json<Value>> {
    let path = query.path.unwrap_or_default();
    let key = artifact_key(&state, &caller, &path, Access::Read).await?;
    Ok(Json(json!({ "files": children(&state, &key).await? })))
}

#[derive(Debug, Deserialize)]
pub(super) struct RunArtifactsQuery {
    run_id: Option<String>,
    run_uuid: Option<String>,
    path: Option<String>,
}

/// The tracking API's artifacts/list: a run's artifacts under `path`.
pub(super) async fn list_run_artifacts(
    State(state): State<AppState>,
    caller: MlflowCaller,
    Input(query): Input<RunArtifactsQuery>,
) -> MlflowResult<Json<Value>> {
    let id = run_id(&query.run_id, &query.run_uuid)?;
    let root = run_prefix(id);
    let sub = query.path.unwrap_or_default();
    let sub = sub.trim_matches('/');
    let path = if sub.is_empty() {
        root.clone()
    } else {
        format!("{root}/{sub}")
    };
    let key = artifact_key(&state, &caller, &path, Access::Read).await?;
    let files: Vec<Value> = children(&state, &key)
        .await?
        .into_iter()
        .map(|mut file| {
            if !sub.is_empty() {
                let name = file["path"].as_str().unwrap_or_default().to_string();
                file["path"] = format!("{sub}/{name}").into();
            }
            file
        })
        .collect();
    Ok(Json(
        json!({ "root_uri": super::views::artifact_uri(&root), "files": files }),
    ))
}
