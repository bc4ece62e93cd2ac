use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use std::collections::BTreeMap;
use trainyard_core::{validate, Name, Role, RunSpec};
use trainyard_db::models::{ModelFile, NewModel};
use trainyard_db::DbError;
use trainyard_storage::Storage;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{model_prefix, ModelView};
use crate::auth::InWorkspace;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::AppJson;
use crate::AppState;

/// A model version to register, from a run's files or from uploaded files.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterModel {
    /// The model's name; each registration adds a version.
    pub name: String,
    /// The run whose files hold the model.
    #[serde(default)]
    pub run_id: Option<Uuid>,
    /// A file or folder among the run's files (`outputs/model.pkl`, `outputs`).
    #[serde(default)]
    pub path: Option<String>,
    /// Instead of a run: the digest of a tar.gz uploaded with `POST …/snapshots`.
    #[serde(default)]
    pub snapshot: Option<String>,
    /// Framework, e.g. `ScikitLearn`, `PyTorch`, `TensorFlow`, `Onnx`, `Custom`.
    #[serde(default)]
    pub framework: Option<String>,
    /// Framework version.
    #[serde(default)]
    pub framework_version: Option<String>,
    /// What serving it needs: `{"cpu": 1, "memory_in_gb": 0.5, "gpu": 0}`.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub resource_configuration: Option<serde_json::Value>,
    /// Labels.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Key-values.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
}

fn internal(err: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(err.to_string())
}

/// Registers a model version: its files are copied into the model store
/// (immutable) and linked to the run, its environment and its datasets.
#[utoipa::path(post, path = "/workspaces/{workspace}/models", tag = "models",
    params(("workspace" = String, Path, description = "Workspace name or id")),
    request_body = RegisterModel,
    responses(
        (status = 201, description = "Registered", body = ModelView),
        (status = 422, description = "A field is invalid (e.g. a path the run does not have)", body = Problem),
    ))]
pub(super) async fn register_model(
    State(state): State<AppState>,
    scope: InWorkspace,
    AppJson(body): AppJson<RegisterModel>,
) -> ApiResult<(StatusCode, AppJson<ModelView>)> {
    let name = Name::parse("name", &body.name)?;
    let description = validate::description("description", body.description.clone())?;
    validate::tag_map("tags", &body.tags)?;
    validate::tag_map("properties", &body.properties)?;
    if let Some(resources) = &body.resource_configuration {
        if !resources.is_object() {
            return Err(ApiError::invalid(
                "resource_configuration",
                "must be an object such as {\"cpu\": 1, \"memory_in_gb\": 0.5}",
            ));
        }
    }
    let id = Uuid::now_v7();
    let (workspace_id, files, run, environment, datasets) = match (&body.run_id, &body.snapshot) {
        (Some(run_id), None) => {
            let workspace_id = scope.require_run_write(*run_id)?;
            let run = state
                .db
                .get_run(workspace_id, *run_id)
                .await
                .map_err(|err| match err {
                    DbError::NotFound(_) => {
                        ApiError::invalid("run_id", "no run with this id in the workspace")
                    }
                    other => other.into(),
                })?;
            let path = body
                .path
                .as_deref()
                .ok_or_else(|| ApiError::invalid("path", "is required with run_id"))?;
            let files = copy_run_files(&state.storage, *run_id, path, id).await?;
            let environment = serde_json::from_value::<RunSpec>(run.spec.0.clone())
                .ok()
                .and_then(|spec| spec.environment.name.map(|name| serde_json::json!({ "name": name, "version": spec.environment.version })));
            let datasets = state.db.run_dataset_lineage(*run_id).await?;
            (workspace_id, files, Some(*run_id), environment, datasets)
        }
        (None, Some(digest)) => {
            let workspace_id = scope.require(Role::Contributor)?;
            state
                .db
                .get_snapshot(workspace_id, digest)
                .await
                .map_err(|err| match err {
                    DbError::NotFound(_) => ApiError::invalid(
                        "snapshot",
                        "no snapshot with this digest was uploaded to the workspace",
                    ),
                    other => other.into(),
                })?;
            let files = copy_snapshot_files(&state.storage, digest, id).await?;
            (workspace_id, files, None, None, serde_json::json!([]))
        }
        _ => {
            return Err(ApiError::invalid(
                "run_id",
                "give either run_id with path, or snapshot",
            ))
        }
    };
    let model = state
        .db
        .register_model(
            workspace_id,
            NewModel {
                name: &name,
                id,
                description: description.as_deref(),
                tags: &body.tags,
                properties: &body.properties,
                framework: body.framework.as_deref(),
                framework_version: body.framework_version.as_deref(),
                resource_configuration: body.resource_configuration.clone(),
                run_id: run,
                environment,
                datasets,
                files,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, AppJson(model.into())))
}

/// Copies a run's file, or every file under a folder of it, into the model's store.
async fn copy_run_files(
    storage: &Storage,
    run_id: Uuid,
    path: &str,
    model: Uuid,
) -> Result<Vec<ModelFile>, ApiError> {
    let path = path.trim_matches('/');
    if path.is_empty() || path.split('/').any(|p| p == ".." || p == ".") {
        return Err(ApiError::invalid(
            "path",
            "must be a path among the run's files, without '..'",
        ));
    }
    let run_prefix = format!("runs/{run_id}");
    let file_key = format!("{run_prefix}/{path}");
    let single = storage.head(&file_key).await.ok();
    let sources: Vec<(String, String)> = match single {
        Some(_) => {
            let name = path.rsplit('/').next().unwrap_or(path).to_string();
            vec![(file_key, name)]
        }
        None => storage
            .list(&file_key)
            .await
            .map_err(internal)?
            .into_iter()
            .map(|o| (format!("{file_key}/{}", o.key), o.key))
            .collect(),
    };
    if sources.is_empty() {
        return Err(ApiError::invalid(
            "path",
            format!("the run has no file or folder {path:?}"),
        ));
    }
    let mut files = Vec::new();
    for (from, relative) in sources {
        let to = format!("{}/{relative}", model_prefix(model));
        storage.copy(&from, &to).await.map_err(internal)?;
        let size = storage.head(&to).await.map_err(internal)?.size;
        files.push(ModelFile {
            path: relative,
            size,
        });
    }
    Ok(files)
}

/// Unpacks an uploaded snapshot into the model's store.
async fn copy_snapshot_files(
    storage: &Storage,
    digest: &str,
    model: Uuid,
) -> Result<Vec<ModelFile>, ApiError> {
    let key =
        Storage::snapshot_key(digest).map_err(|e| ApiError::invalid("snapshot", e.to_string()))?;
    let archive = tempfile::NamedTempFile::new().map_err(internal)?;
    storage
        .get_file(&key, archive.path())
        .await
        .map_err(internal)?;
    let dir = tempfile::tempdir().map_err(internal)?;
    let target = dir.path().to_path_buf();
    let reader = archive.reopen().map_err(internal)?;
    tokio::task::spawn_blocking(move || {
        trainyard_storage::extract_to_dir(std::io::BufReader::new(reader), &target)
    })
    .await
    .map_err(internal)?
    .map_err(internal)?;
    let mut files = Vec::new();
    let mut pending = vec![dir.path().to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).map_err(internal)? {
            let entry = entry.map_err(internal)?;
            let path = entry.path();
            if entry.file_type().map_err(internal)?.is_dir() {
                pending.push(path);
                continue;
            }
            let relative = path
                .strip_prefix(dir.path())
                .map_err(internal)?
                .to_string_lossy()
                .replace('\\', "/");
            let size = storage
                .put_file(&format!("{}/{relative}", model_prefix(model)), &path)
                .await
                .map_err(internal)?;
            files.push(ModelFile {
                path: relative,
                size,
            });
        }
    }
    if files.is_empty() {
        return Err(ApiError::invalid("snapshot", "holds no file"));
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}
