//! logged-models/*: what MLflow 3's `mlflow.<flavor>.log_model` creates. A
//! logged model's files live among its run's files
//! (`runs/<run>/models/m-<id>/`), or under `logged-models/m-<id>/` when no
//! run logged it; registering it copies them into a model version.

use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use trainyard_core::mlflow::search::{parse_catalog_filter, CatalogSearch};
use trainyard_core::mlflow::{self as rules};
use trainyard_db::mlflow::{ExperimentRef, LoggedModel, NewLoggedModel};
use trainyard_db::DbError;
use uuid::Uuid;

use super::auth::MlflowCaller;
use super::error::{MlflowError, MlflowResult};
use super::experiments::{find, tag_map, Tag};
use super::request::{
    experiment_ref, lenient_i64, max_results, page, page_offset, parse_run_id, Input,
};
use super::views::{logged_model_id, parse_logged_model_id, run_prefix, LoggedModelJson};
use crate::AppState;

fn model_json(model: &LoggedModel) -> Value {
    json!({ "model": LoggedModelJson::from(model) })
}

fn not_found(id: &str) -> MlflowError {
    MlflowError::not_found(format!("Logged model with ID '{id}' not found."))
}

/// The logged model a path names, with the workspace if the caller may change it.
async fn writable(
    state: &AppState,
    caller: &MlflowCaller,
    id: &str,
) -> MlflowResult<(Uuid, LoggedModel)> {
    let model_id = parse_logged_model_id(id).ok_or_else(|| not_found(id))?;
    let model = state
        .db
        .mlflow_logged_model(caller.read(), model_id)
        .await
        .map_err(|err| match err {
            DbError::NotFound(_) => not_found(id),
            other => other.into(),
        })?;
    let workspace_id = match model.run_id {
        Some(run) => caller.write_run(run)?,
        None => caller.write()?,
    };
    Ok((workspace_id, model))
}

#[derive(Debug, Deserialize)]
pub(super) struct ModelRequest {
    experiment_id: Option<String>,
    name: Option<String>,
    model_type: Option<String>,
    source_run_id: Option<String>,
    #[serde(default)]
    params: Vec<Tag>,
    #[serde(default)]
    tags: Vec<Tag>,
    status: Option<String>,
}

pub(super) async fn create_model(
    State(state): State<AppState>,
    caller: MlflowCaller,
    Input(body): Input<ModelRequest>,
) -> MlflowResult<Json<Value>> {
    let run_id = body
        .source_run_id
        .as_deref()
        .filter(|r| !r.is_empty())
        .map(parse_run_id)
        .transpose()?;
    let workspace_id = match run_id {
        Some(run) => caller.write_run(run)?,
        None => caller.write()?,
    };
    let experiment = find(
        &state.db,
        workspace_id,
        body.experiment_id.as_deref().unwrap_or("0"),
    )
    .await?;
    if let Some(run) = run_id {
        state
            .db
            .mlflow_check_run_active(workspace_id, run)
            .await
            .map_err(|err| match err {
                DbError::NotFound(_) => {
                    MlflowError::not_found(format!("Run with id={run} not found"))
                }
                other => other.into(),
            })?;
    }
    let params = tag_map(&body.params, rules::MAX_PARAM_VALUE_LENGTH)?;
    let tags = tag_map(&body.tags, rules::MAX_TAG_VALUE_LENGTH)?;
    let id = Uuid::now_v7();
    let prefix = match run_id {
        Some(run) => format!("{}/models/{}", run_prefix(run), logged_model_id(id)),
        None => format!("logged-models/{}", logged_model_id(id)),
    };
    let model = state
        .db
        .mlflow_create_logged_model(
            workspace_id,
            NewLoggedModel {
                id,
                experiment_id: experiment.id,
                run_id,
                name: body
                    .name
                    .as_deref()
                    .filter(|n| !n.is_empty())
                    .unwrap_or("model"),
                model_type: body.model_type.as_deref().filter(|t| !t.is_empty()),
                params: &params,
                tags: &tags,
                artifact_prefix: &prefix,
            },
        )
        .await?;
    Ok(Json(model_json(&model)))
}

pub(super) async fn get_model(
    State(state): State<AppState>,
    caller: MlflowCaller,
    Path(id): Path<String>,
) -> MlflowResult<Json<Value>> {
    let model_id = parse_logged_model_id(&id).ok_or_else(|| not_found(&id))?;
    let model = state
        .db
        .mlflow_logged_model(caller.read(), model_id)
        .await
        .map_err(|err| match err {
            DbError::NotFound(_) => not_found(&id),
            other => other.into(),
        })?;
    Ok(Json(model_json(&model)))
}

/// Applies one change to a logged model and answers with it.
async fn change(
    state: &AppState,
    caller: &MlflowCaller,
    id: &str,
    status: Option<&str>,
    tags: &BTreeMap<String, String>,
    delete_tag: Option<&str>,
    params: &BTreeMap<String, String>,
) -> MlflowResult<Value> {
    let (workspace_id, model) = writable(state, caller, id).await?;
    let status = status.map(|s| (s, None));
    let model = state
        .db
        .mlflow_change_logged_model(workspace_id, model.id, status, tags, delete_tag, params)
        .await?;
    Ok(model_json(&model))
}

pub(super) async fn finalize_model(
    State(state): State<AppState>,
    caller: MlflowCaller,
    Path(id): Path<String>,
    Input(body): Input<ModelRequest>,
) -> MlflowResult<Json<Value>> {
    let status = match body.status.as_deref() {
        Some(
            s @ ("LOGGED_MODEL_READY" | "LOGGED_MODEL_UPLOAD_FAILED" | "LOGGED_MODEL_PENDING"),
        ) => s,
        Some("2") => "LOGGED_MODEL_READY",
        Some("3") => "LOGGED_MODEL_UPLOAD_FAILED",
        other => {
            return Err(MlflowError::invalid(format!(
                "Invalid status {other:?}: one of LOGGED_MODEL_READY, LOGGED_MODEL_UPLOAD_FAILED"
            )))
        }
    };
    let empty = BTreeMap::new();
    Ok(Json(
        change(&state, &caller, &id, Some(status), &empty, None, &empty).await?,
    ))
}

pub(super) async fn set_tags(
    State(state): State<AppState>,
    caller: MlflowCaller,
    Path(id): Path<String>,
    Input(body): Input<ModelRequest>,
) -> MlflowResult<Json<Value>> {
    let tags = tag_map(&body.tags, rules::MAX_TAG_VALUE_LENGTH)?;
    change(&state, &caller, &id, None, &tags, None, &BTreeMap::new()).await?;
    Ok(Json(json!({})))
}

pub(super) async fn delete_tag(
    State(state): State<AppState>,
    caller: MlflowCaller,
    Path((id, key)): Path<(String, String)>,
) -> MlflowResult<Json<Value>> {
    let empty = BTreeMap::new();
    change(&state, &caller, &id, None, &empty, Some(&key), &empty).await?;
    Ok(Json(json!({})))
}

pub(super) async fn log_params(
    State(state): State<AppState>,
    caller: MlflowCaller,
    Path(id): Path<String>,
    Input(body): Input<ModelRequest>,
) -> MlflowResult<Json<Value>> {
    let params = tag_map(&body.params, rules::MAX_PARAM_VALUE_LENGTH)?;
    change(&state, &caller, &id, None, &BTreeMap::new(), None, &params).await?;
    Ok(Json(json!({})))
}

pub(super) async fn delete_model(
    State(state): State<AppState>,
    caller: MlflowCaller,
    Path(id): Path<String>,
) -> MlflowResult<Json<Value>> {
    let (workspace_id, model) = writable(&state, &caller, &id).await?;
    let model = state
        .db
        .mlflow_delete_logged_model(workspace_id, model.id)
        .await?;
    state.storage.delete_prefix(&model.artifact_prefix).await?;
    Ok(Json(json!({})))
}

#[derive(Debug, Deserialize)]
pub(super) struct SearchModels {
    #[serde(default)]
    experiment_ids: Vec<String>,
    filter: Option<String>,
    #[serde(default, deserialize_with = "lenient_i64")]
    max_results: Option<i64>,
    #[serde(default)]
    order_by: Vec<OrderBy>,
    page_token: Option<String>,
}

#[derive(Debug, Deserialize)]
struct OrderBy {
    field_name: Option<String>,
    #[serde(default = "ascending_by_default")]
    ascending: bool,
}

fn ascending_by_default() -> bool {
    true
}

pub(super) async fn search_models(
    State(state): State<AppState>,
    caller: MlflowCaller,
    Input(body): Input<SearchModels>,
) -> MlflowResult<Json<Value>> {
    let workspace_id = caller.read();
    let limit = max_results(body.max_results, 100, 1000)?;
    let offset = page_offset(&body.page_token)?;
    let clauses = parse_catalog_filter(
        "filter",
        body.filter.as_deref().unwrap_or(""),
        CatalogSearch::LoggedModels,
    )?;
    let mut experiment_ids = Vec::new();
    for id in &body.experiment_ids {
        match experiment_ref(id) {
            Ok(ExperimentRef::Id(id)) => experiment_ids.push(id),
            Ok(ExperimentRef::Default) => {
                experiment_ids.push(state.db.mlflow_default_experiment(workspace_id).await?.id)
            }
            Err(_) => {}
        }
    }
    let order = body
        .order_by
        .iter()
        .map(|o| {
            let key = match o.field_name.as_deref().unwrap_or("creation_timestamp") {
                "name" => "name",
                "creation_timestamp" | "creation_time" => "created",
                "last_updated_timestamp" => "updated",
                other => {
                    return Err(MlflowError::invalid(format!(
                        "Invalid order by field '{other}'"
                    )))
                }
            };
            Ok((key, o.ascending))
        })
        .collect::<MlflowResult<Vec<_>>>()?;
    let found = state
        .db
        .mlflow_search_logged_models(
            workspace_id,
            &experiment_ids,
            &clauses,
            &order,
            offset,
            limit + 1,
        )
        .await?;
    let (found, next) = page(found, offset, limit);
    let models: Vec<LoggedModelJson> = found.iter().map(LoggedModelJson::from).collect();
    Ok(Json(json!({ "models": models, "next_page_token": next })))
}
