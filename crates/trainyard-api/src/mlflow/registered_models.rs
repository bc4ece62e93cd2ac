//! registered-models/*: names in Trainyard's model registry, with MLflow's
//! description, tags and aliases (the same aliases Trainyard's API shows).

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use trainyard_core::mlflow::search::{parse_catalog_filter, CatalogSearch};
use trainyard_core::mlflow::{self as rules};
use trainyard_db::mlflow::{ModelVersion, RegisteredModel, VersionChange};
use trainyard_db::DbError;

use super::auth::MlflowCaller;
use super::error::{MlflowError, MlflowResult};
use super::experiments::{tag_map, Tag};
use super::model_versions::{parse_version, remove_files, version_json};
use super::request::{lenient_i64, max_results, page, page_offset, required, Input};
use super::views::RegisteredModelJson;
use crate::AppState;

#[derive(Debug, Deserialize)]
pub(super) struct ModelRequest {
    name: Option<String>,
    new_name: Option<String>,
    description: Option<String>,
    #[serde(default)]
    tags: Vec<Tag>,
    key: Option<String>,
    value: Option<String>,
    alias: Option<String>,
    version: Option<String>,
    #[serde(default)]
    stages: Vec<String>,
}

/// Checks a registered model name as MLflow does.
pub(super) fn model_name<'a>(field: &str, name: &'a Option<String>) -> MlflowResult<&'a str> {
    let name = required(field, name)?;
    if name.trim().is_empty() || name.contains(['/', ':']) {
        return Err(MlflowError::invalid(format!(
            "Invalid model name '{name}'. Names cannot contain '/' or ':'."
        )));
    }
    rules::length(field, name, 256)?;
    Ok(name)
}

/// Not found, in MLflow's words.
pub(super) fn no_model(name: &str) -> impl Fn(DbError) -> MlflowError + '_ {
    move |err| match err {
        DbError::NotFound(_) => {
            MlflowError::not_found(format!("Registered Model with name={name} not found"))
        }
        other => other.into(),
    }
}

/// The model with its latest version per stage.
async fn model_json(
    state: &AppState,
    workspace_id: uuid::Uuid,
    model: RegisteredModel,
) -> MlflowResult<Value> {
    let latest = state
        .db
        .mlflow_versions_of(workspace_id, std::slice::from_ref(&model.name), true)
        .await?;
    Ok(json!({ "registered_model": RegisteredModelJson::new(&model, &latest) }))
}

pub(super) async fn create_model(
    State(state): State<AppState>,
    caller: MlflowCaller,
    Input(body): Input<ModelRequest>,
) -> MlflowResult<Json<Value>> {
    // A run's own token may create a name, as it may register its own models.
    let workspace_id = match caller.own_run() {
        Some(_) => caller.read(),
        None => caller.write()?,
    };
    let name = model_name("name", &body.name)?;
    let tags = tag_map(&body.tags, rules::MAX_REGISTRY_TAG_VALUE_LENGTH)?;
    let model = state
        .db
        .mlflow_create_registered_model(workspace_id, name, body.description.as_deref(), &tags)
        .await
        .map_err(|err| match err {
            DbError::Conflict { .. } => {
                MlflowError::exists(format!("Registered Model (name={name}) already exists."))
            }
            other => other.into(),
        })?;
    Ok(Json(model_json(&state, workspace_id, model).await?))
}

pub(super) async fn get_model(
    State(state): State<AppState>,
    caller: MlflowCaller,
    Input(query): Input<ModelRequest>,
) -> MlflowResult<Json<Value>> {
    let name = required("name", &query.name)?;
    let model = state
        .db
        .mlflow_registered_model(caller.read(), name)
        .await
        .map_err(no_model(name))?;
    Ok(Json(model_json(&state, caller.read(), model).await?))
}

pub(super) async fn rename_model(
    State(state): State<AppState>,
    caller: MlflowCaller,
    Input(body): Input<ModelRequest>,
) -> MlflowResult<Json<Value>> {
    let workspace_id = caller.write()?;
    let name = required("name", &body.name)?;
    let new_name = model_name("new_name", &body.new_name)?;
    let model = state
        .db
        .mlflow_rename_registered_model(workspace_id, name, new_name)
        .await
        .map_err(|err| match err {
            DbError::Conflict { .. } => MlflowError::exists(format!(
                "Registered Model (name={new_name}) already exists."
            )),
            other => no_model(name)(other),
        })?;
    Ok(Json(model_json(&state, workspace_id, model).await?))
}

/// Applies a description or tag change, answering with the model.
async fn change(
    state: &AppState,
    caller: &MlflowCaller,
    name: &str,
    change: VersionChange<'_>,
) -> MlflowResult<Value> {
    let workspace_id = caller.write()?;
    let model = state
        .db
        .mlflow_change_registered_model(workspace_id, name, change)
        .await
        .map_err(no_model(name))?;
    model_json(state, workspace_id, model).await
}

pub(super) async fn update_model(
    State(state): State<AppState>,
    caller: MlflowCaller,
    Input(body): Input<ModelRequest>,
) -> MlflowResult<Json<Value>> {
    let name = required("name", &body.name)?;
    let description = body.description.as_deref().unwrap_or_default();
    Ok(Json(
        change(
            &state,
            &caller,
            name,
            VersionChange::Description(description),
        )
        .await?,
    ))
}

pub(super) async fn set_model_tag(
    State(state): State<AppState>,
    caller: MlflowCaller,
    Input(body): Input<ModelRequest>,
) -> MlflowResult<Json<Value>> {
    let name = required("name", &body.name)?;
    let key = required("key", &body.key)?;
    rules::entity_key("key", key)?;
    let value = body.value.as_deref().unwrap_or_default();
    rules::length("value", value, rules::MAX_REGISTRY_TAG_VALUE_LENGTH)?;
    change(&state, &caller, name, VersionChange::SetTag(key, value)).await?;
    Ok(Json(json!({})))
}

pub(super) async fn delete_model_tag(
    State(state): State<AppState>,
    caller: MlflowCaller,
    Input(body): Input<ModelRequest>,
) -> MlflowResult<Json<Value>> {
    let name = required("name", &body.name)?;
    let key = required("key", &body.key)?;
    change(&state, &caller, name, VersionChange::DeleteTag(key)).await?;
    Ok(Json(json!({})))
}

pub(super) async fn delete_model(
    State(state): State<AppState>,
    caller: MlflowCaller,
    Input(body): Input<ModelRequest>,
) -> MlflowResult<Json<Value>> {
    let workspace_id = caller.write()?;
    let name = required("name", &body.name)?;
    let ids = state
        .db
        .mlflow_delete_registered_model(workspace_id, name)
        .await
        .map_err(no_model(name))?;
    for id in ids {
        remove_files(&state, id).await;
    }
    Ok(Json(json!({})))
}

#[derive(Debug, Deserialize)]
pub(super) struct SearchModels {
    filter: Option<String>,
    #[serde(default, deserialize_with = "lenient_i64")]
    max_results: Option<i64>,
    #[serde(default)]
    order_by: Vec<String>,
    page_token: Option<String>,
}

/// Order-by clauses of registry searches as (key, ascending) pairs.
pub(super) fn registry_order(
    order_by: &[String],
    versions: bool,
) -> MlflowResult<Vec<(&'static str, bool)>> {
    order_by
        .iter()
        .map(|text| {
            let (_, key, ascending) =
                trainyard_core::mlflow::filter::parse_order("order_by", text)?;
            let key = match key.as_str() {
                "name" => "name",
                "timestamp" | "creation_timestamp" => "created",
                "last_updated_timestamp" => "updated",
                "version_number" if versions => "version",
                other => {
                    return Err(MlflowError::invalid(format!(
                        "Invalid order by key '{other}' specified."
                    )))
                }
            };
            Ok((key, ascending))
        })
        .collect()
}

pub(super) async fn search_models(
    State(state): State<AppState>,
    caller: MlflowCaller,
    Input(query): Input<SearchModels>,
) -> MlflowResult<Json<Value>> {
    let workspace_id = caller.read();
    let limit = max_results(query.max_results, 100, 1000)?;
    let offset = page_offset(&query.page_token)?;
    let clauses = parse_catalog_filter(
        "filter",
        query.filter.as_deref().unwrap_or(""),
        CatalogSearch::RegisteredModels,
    )?;
    let order = registry_order(&query.order_by, false)?;
    let found = state
        .db
        .mlflow_search_registered_models(workspace_id, &clauses, &order, offset, limit + 1)
        .await?;
    let (found, next) = page(found, offset, limit);
    let names: Vec<String> = found.iter().map(|m| m.name.clone()).collect();
    let latest = state
        .db
        .mlflow_versions_of(workspace_id, &names, true)
        .await?;
    let models: Vec<RegisteredModelJson> = found
        .iter()
        .map(|m| RegisteredModelJson::new(m, &latest))
        .collect();
    Ok(Json(
        json!({ "registered_models": models, "next_page_token": next }),
    ))
}

pub(super) async fn get_latest_versions(
    State(state): State<AppState>,
    caller: MlflowCaller,
    Input(body): Input<ModelRequest>,
) -> MlflowResult<Json<Value>> {
    let workspace_id = caller.read();
    let name = required("name", &body.name)?;
    state
        .db
        .mlflow_registered_model(workspace_id, name)
        .await
        .map_err(no_model(name))?;
    let stages = body
        .stages
        .iter()
        .map(|s| canonical_stage(s))
        .collect::<MlflowResult<Vec<_>>>()?;
    let latest = state
        .db
        .mlflow_versions_of(workspace_id, std::slice::from_ref(&name.to_string()), true)
        .await?;
    let versions: Vec<Value> = latest
        .iter()
        .filter(|v| stages.is_empty() || stages.contains(&v.stage.as_str()))
        .map(version_json)
        .collect();
    Ok(Json(json!({ "model_versions": versions })))
}

/// A stage name in MLflow's spelling, whatever its case.
pub(super) fn canonical_stage(stage: &str) -> MlflowResult<&'static str> {
    ["None", "Staging", "Production", "Archived"]
        .into_iter()
        .find(|s| s.eq_ignore_ascii_case(stage))
        .ok_or_else(|| {
            MlflowError::invalid(format!(
                "Invalid Model Version stage: {stage}. Value must be one of None, Staging, Production, Archived."
            ))
        })
}

pub(super) async fn set_alias(
    State(state): State<AppState>,
    caller: MlflowCaller,
    Input(body): Input<ModelRequest>,
) -> MlflowResult<Json<Value>> {
    let workspace_id = caller.write()?;
    let name = required("name", &body.name)?;
    let alias = required("alias", &body.alias)?;
    rules::alias("alias", alias)?;
    let version = parse_version(&body.version)?;
    state
        .db
        .set_model_alias(workspace_id, name, alias, version)
        .await
        .map_err(|err| match err {
            DbError::NotFound(_) => MlflowError::not_found(format!(
                "Model Version (name={name}, version={version}) not found"
            )),
            other => other.into(),
        })?;
    Ok(Json(json!({})))
}

pub(super) async fn delete_alias(
    State(state): State<AppState>,
    caller: MlflowCaller,
    Input(body): Input<ModelRequest>,
) -> MlflowResult<Json<Value>> {
    let workspace_id = caller.write()?;
    let name = required("name", &body.name)?;
    let alias = required("alias", &body.alias)?;
    match state.db.delete_model_alias(workspace_id, name, alias).await {
        // Removing an alias that is not set leaves things as asked.
        Ok(()) | Err(DbError::NotFound(_)) => Ok(Json(json!({}))),
        Err(other) => Err(other.into()),
    }
}

pub(super) async fn get_by_alias(
    State(state): State<AppState>,
    caller: MlflowCaller,
    Input(query): Input<ModelRequest>,
) -> MlflowResult<Json<Value>> {
    let name = required("name", &query.name)?;
    let alias = required("alias", &query.alias)?;
    let version: ModelVersion = state
        .db
        .mlflow_model_version(caller.read(), name, None, Some(alias))
        .await
        .map_err(|err| match err {
            DbError::NotFound(_) => {
                MlflowError::not_found(format!("Registered model alias {alias} not found."))
            }
            other => other.into(),
        })?;
    Ok(Json(json!({ "model_version": version_json(&version) })))
}
