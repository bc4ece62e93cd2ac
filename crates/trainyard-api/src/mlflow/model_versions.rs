//! model-versions/*: Trainyard model versions. Creating one copies the
//! files its source names (a logged model, `runs:/<run>/<path>`, or an
//! `mlflow-artifacts:` URI) into the model store, as Trainyard's own
//! registration does, so the version never changes whatever happens to the run.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use trainyard_core::mlflow::search::{parse_catalog_filter, CatalogSearch};
use trainyard_core::mlflow::{self as rules};
use trainyard_core::RunSpec;
use trainyard_db::mlflow::{ModelVersion, NewModelVersion, VersionChange};
use trainyard_db::models::ModelFile;
use trainyard_db::DbError;
use uuid::Uuid;

use super::artifacts::{artifact_key, Access};
use super::auth::MlflowCaller;
use super::error::{MlflowError, MlflowResult};
use super::experiments::{tag_map, Tag};
use super::registered_models::{canonical_stage, no_model, registry_order};
use super::request::{lenient_i64, max_results, page, page_offset, parse_run_id, required, Input};
use super::views::{artifact_uri, parse_logged_model_id, run_prefix, ModelVersionJson};
use crate::AppState;

/// A model version in MLflow's JSON.
pub(super) fn version_json(version: &ModelVersion) -> Value {
    serde_json::to_value(ModelVersionJson::from(version)).unwrap_or_default()
}

/// A version number, which MLflow sends as text.
pub(super) fn parse_version(version: &Option<String>) -> MlflowResult<i32> {
    let text = required("version", version)?;
    text.parse::<i32>().ok().filter(|v| *v > 0).ok_or_else(|| {
        MlflowError::invalid(format!("Model version must be an integer, got '{text}'"))
    })
}

/// Removes a deleted version's files; a failure is logged, the version is gone anyway.
pub(super) async fn remove_files(state: &AppState, id: Uuid) {
    if let Err(err) = state.storage.delete_prefix(&format!("models/{id}")).await {
        tracing::warn!(error = %err, model = %id, "removing a deleted model version's files failed");
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct VersionRequest {
    name: Option<String>,
    version: Option<String>,
    source: Option<String>,
    run_id: Option<String>,
    model_id: Option<String>,
    description: Option<String>,
    #[serde(default)]
    tags: Vec<Tag>,
    key: Option<String>,
    value: Option<String>,
    stage: Option<String>,
    #[serde(default)]
    archive_existing_versions: bool,
}

/// Where a version's files come from: a storage prefix, and the run and
/// logged model behind it.
struct Source {
    prefix: String,
    run_id: Option<Uuid>,
    logged_model_id: Option<Uuid>,
}

async fn resolve_source(
    state: &AppState,
    caller: &MlflowCaller,
    body: &VersionRequest,
) -> MlflowResult<Source> {
    let source = required("source", &body.source)?;
    let logged = body
        .model_id
        .as_deref()
        .filter(|id| !id.is_empty())
        .or_else(|| {
            source
                .strip_prefix("models:/")
                .filter(|rest| rest.starts_with("m-"))
        });
    if let Some(id) = logged {
        let model_id = parse_logged_model_id(id.trim_end_matches('/')).ok_or_else(|| {
            MlflowError::not_found(format!("Logged model with ID '{id}' not found"))
        })?;
        let model = state
            .db
            .mlflow_logged_model(caller.read(), model_id)
            .await
            .map_err(|_| {
                MlflowError::not_found(format!("Logged model with ID '{id}' not found"))
            })?;
        return Ok(Source {
            prefix: model.artifact_prefix,
            run_id: model.run_id,
            logged_model_id: Some(model.id),
        });
    }
    let key = if let Some(rest) = source.strip_prefix("runs:/") {
        let (run, path) = rest.split_once('/').unwrap_or((rest, ""));
        format!(
            "{}/{}",
            run_prefix(parse_run_id(run)?),
            path.trim_matches('/')
        )
    } else if let Some(rest) = source.strip_prefix("mlflow-artifacts:") {
        rest.trim_start_matches('/').to_string()
    } else {
        return Err(MlflowError::invalid(format!(
            "Unsupported source '{source}': register a logged model (models:/m-...), a run's artifacts (runs:/<run_id>/<path>) or an mlflow-artifacts: URI of this server"
        )));
    };
    let key = artifact_key(state, caller, &key, Access::Read).await?;
    let run_id = key
        .strip_prefix("runs/")
        .and_then(|rest| Uuid::parse_str(rest.split('/').next().unwrap_or_default()).ok());
    Ok(Source {
        prefix: key,
        run_id,
        logged_model_id: None,
    })
}

/// Copies a file, or every file under a folder, into the version's store.
async fn copy_files(state: &AppState, from: &str, version: Uuid) -> MlflowResult<Vec<ModelFile>> {
    let from = from.trim_end_matches('/');
    let sources: Vec<(String, String)> = match state.storage.head(from).await {
        Ok(_) => vec![(
            from.to_string(),
            from.rsplit('/').next().unwrap_or(from).to_string(),
        )],
        Err(_) => state
            .storage
            .list(from)
            .await?
            .into_iter()
            .map(|o| (format!("{from}/{}", o.key), o.key))
            .collect(),
    };
    if sources.is_empty() {
        return Err(MlflowError::invalid(format!(
            "The source holds no files ({})",
            artifact_uri(from)
        )));
    }
    let mut files = Vec::with_capacity(sources.len());
    for (source, relative) in sources {
        let target = format!("models/{version}/{relative}");
        state.storage.copy(&source, &target).await?;
        let size = state.storage.head(&target).await?.size;
        files.push(ModelFile {
            path: relative,
            size,
        });
    }
    Ok(files)
}

pub(super) async fn create_version(
    State(state): State<AppState>,
    caller: MlflowCaller,
    Input(body): Input<VersionRequest>,
) -> MlflowResult<Json<Value>> {
    let name = required("name", &body.name)?;
    let tags = tag_map(&body.tags, rules::MAX_REGISTRY_TAG_VALUE_LENGTH)?;
    let source = resolve_source(&state, &caller, &body).await?;
    let run_id = match body.run_id.as_deref().filter(|r| !r.is_empty()) {
        Some(run) => Some(parse_run_id(run)?),
        None => source.run_id,
    };
    // A run's own token registers only from its run, as in Trainyard's API.
    let workspace_id = match run_id {
        Some(run) => caller.write_run(run)?,
        None => caller.write()?,
    };
    state
        .db
        .mlflow_registered_model(workspace_id, name)
        .await
        .map_err(no_model(name))?;
    let (environment, datasets) = match run_id {
        Some(run) => lineage(&state, workspace_id, run).await?,
        None => (None, json!([])),
    };
    let id = Uuid::now_v7();
    let files = copy_files(&state, &source.prefix, id).await?;
    let version = state
        .db
        .mlflow_create_model_version(
            workspace_id,
            NewModelVersion {
                id,
                name,
                description: body.description.as_deref().filter(|d| !d.is_empty()),
                tags: &tags,
                run_id,
                source: required("source", &body.source)?,
                logged_model_id: source.logged_model_id,
                environment,
                datasets,
                files,
            },
        )
        .await?;
    Ok(Json(json!({ "model_version": version_json(&version) })))
}

/// The environment and datasets of the run a version comes from.
async fn lineage(
    state: &AppState,
    workspace_id: Uuid,
    run: Uuid,
) -> MlflowResult<(Option<Value>, Value)> {
    let found = state
        .db
        .get_run(workspace_id, run)
        .await
        .map_err(|err| match err {
            DbError::NotFound(_) => MlflowError::not_found(format!("Run with id={run} not found")),
            other => other.into(),
        })?;
    let environment = serde_json::from_value::<RunSpec>(found.spec.0)
        .ok()
        .and_then(|spec| {
            spec.environment
                .name
                .map(|name| json!({ "name": name, "version": spec.environment.version }))
        });
    Ok((environment, state.db.run_dataset_lineage(run).await?))
}

/// Not found, in MLflow's words.
fn no_version(name: &str, version: i32) -> impl Fn(DbError) -> MlflowError + '_ {
    move |err| match err {
        DbError::NotFound(_) => MlflowError::not_found(format!(
            "Model Version (name={name}, version={version}) not found"
        )),
        other => other.into(),
    }
}

pub(super) async fn get_version(
    State(state): State<AppState>,
    caller: MlflowCaller,
    Input(query): Input<VersionRequest>,
) -> MlflowResult<Json<Value>> {
    let name = required("name", &query.name)?;
    let number = parse_version(&query.version)?;
    let version = state
        .db
        .mlflow_model_version(caller.read(), name, Some(number), None)
        .await
        .map_err(no_version(name, number))?;
    Ok(Json(json!({ "model_version": version_json(&version) })))
}

pub(super) async fn get_download_uri(
    State(state): State<AppState>,
    caller: MlflowCaller,
    Input(query): Input<VersionRequest>,
) -> MlflowResult<Json<Value>> {
    let name = required("name", &query.name)?;
    let number = parse_version(&query.version)?;
    let version = state
        .db
        .mlflow_model_version(caller.read(), name, Some(number), None)
        .await
        .map_err(no_version(name, number))?;
    Ok(Json(
        json!({ "artifact_uri": artifact_uri(&format!("models/{}", version.id)) }),
    ))
}

async fn change(
    state: &AppState,
    caller: &MlflowCaller,
    body: &VersionRequest,
    change: VersionChange<'_>,
) -> MlflowResult<Value> {
    let workspace_id = caller.write()?;
    let name = required("name", &body.name)?;
    let number = parse_version(&body.version)?;
    let version = state
        .db
        .mlflow_change_model_version(workspace_id, name, number, change)
        .await
        .map_err(no_version(name, number))?;
    Ok(json!({ "model_version": version_json(&version) }))
}

pub(super) async fn update_version(
    State(state): State<AppState>,
    caller: MlflowCaller,
    Input(body): Input<VersionRequest>,
) -> MlflowResult<Json<Value>> {
    let description = body.description.as_deref().unwrap_or_default();
    Ok(Json(
        change(
            &state,
            &caller,
            &body,
            VersionChange::Description(description),
        )
        .await?,
    ))
}

pub(super) async fn set_version_tag(
    State(state): State<AppState>,
    caller: MlflowCaller,
    Input(body): Input<VersionRequest>,
) -> MlflowResult<Json<Value>> {
    let key = required("key", &body.key)?;
    rules::entity_key("key", key)?;
    let value = body.value.as_deref().unwrap_or_default();
    rules::length("value", value, rules::MAX_REGISTRY_TAG_VALUE_LENGTH)?;
    change(&state, &caller, &body, VersionChange::SetTag(key, value)).await?;
    Ok(Json(json!({})))
}

pub(super) async fn delete_version_tag(
    State(state): State<AppState>,
    caller: MlflowCaller,
    Input(body): Input<VersionRequest>,
) -> MlflowResult<Json<Value>> {
    let key = required("key", &body.key)?;
    change(&state, &caller, &body, VersionChange::DeleteTag(key)).await?;
    Ok(Json(json!({})))
}

pub(super) async fn transition_stage(
    State(state): State<AppState>,
    caller: MlflowCaller,
    Input(body): Input<VersionRequest>,
) -> MlflowResult<Json<Value>> {
    let workspace_id = caller.write()?;
    let name = required("name", &body.name)?;
    let number = parse_version(&body.version)?;
    let stage = canonical_stage(required("stage", &body.stage)?)?;
    let version = state
        .db
        .mlflow_transition_stage(
            workspace_id,
            name,
            number,
            stage,
            body.archive_existing_versions,
        )
        .await
        .map_err(no_version(name, number))?;
    Ok(Json(json!({ "model_version": version_json(&version) })))
}

pub(super) async fn delete_version(
    State(state): State<AppState>,
    caller: MlflowCaller,
    Input(body): Input<VersionRequest>,
) -> MlflowResult<Json<Value>> {
    let workspace_id = caller.write()?;
    let name = required("name", &body.name)?;
    let number = parse_version(&body.version)?;
    let id = state
        .db
        .delete_model(workspace_id, name, number)
        .await
        .map_err(no_version(name, number))?;
    remove_files(&state, id).await;
    Ok(Json(json!({})))
}

#[derive(Debug, Deserialize)]
pub(super) struct SearchVersions {
    filter: Option<String>,
    #[serde(default, deserialize_with = "lenient_i64")]
    max_results: Option<i64>,
    #[serde(default)]
    order_by: Vec<String>,
    page_token: Option<String>,
}

pub(super) async fn search_versions(
    State(state): State<AppState>,
    caller: MlflowCaller,
    Input(query): Input<SearchVersions>,
) -> MlflowResult<Json<Value>> {
    let limit = max_results(query.max_results, 10_000, 200_000)?;
    let offset = page_offset(&query.page_token)?;
    let clauses = parse_catalog_filter(
        "filter",
        query.filter.as_deref().unwrap_or(""),
        CatalogSearch::ModelVersions,
    )?;
    let order = registry_order(&query.order_by, true)?;
    let found = state
        .db
        .mlflow_search_model_versions(caller.read(), &clauses, &order, offset, limit + 1)
        .await?;
    let (found, next) = page(found, offset, limit);
    let versions: Vec<Value> = found.iter().map(version_json).collect();
    Ok(Json(
        json!({ "model_versions": versions, "next_page_token": next }),
    ))
}
