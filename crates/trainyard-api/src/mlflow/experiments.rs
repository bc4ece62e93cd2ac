//! experiments/*: Trainyard experiments under MLflow's names. Deleting one
//! archives it; "0" is the workspace's `Default` experiment.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use trainyard_core::mlflow::search::{parse_catalog_filter, CatalogSearch};
use trainyard_core::mlflow::{self as rules, DEFAULT_EXPERIMENT_NAME};
use trainyard_db::mlflow::{ExperimentOrder, LifecycleView};
use trainyard_db::{Db, DbError};

use super::auth::MlflowCaller;
use super::error::{MlflowError, MlflowResult};
use super::request::{
    experiment_ref, lenient_i64, max_results, page, page_offset, required, Input,
};
use super::views::{experiment_id, ExperimentJson};

/// A key and value as requests carry them.
#[derive(Debug, Deserialize)]
pub struct Tag {
    /// The key.
    pub key: Option<String>,
    /// The value.
    #[serde(default)]
    pub value: Option<String>,
}

/// Checks tags against MLflow's key rules and a value length limit.
pub fn tag_map(tags: &[Tag], value_limit: usize) -> MlflowResult<BTreeMap<String, String>> {
    let mut map = BTreeMap::new();
    for (i, tag) in tags.iter().enumerate() {
        let key = required("key", &tag.key)?;
        rules::entity_key(&format!("tags[{i}].key"), key)?;
        let value = tag.value.clone().unwrap_or_default();
        rules::length(&format!("tags[{i}].value"), &value, value_limit)?;
        map.insert(key.to_string(), value);
    }
    Ok(map)
}

#[derive(Debug, Deserialize)]
pub(super) struct CreateExperiment {
    name: Option<String>,
    #[serde(default)]
    tags: Vec<Tag>,
}

pub(super) async fn create_experiment(
    State(db): State<Db>,
    caller: MlflowCaller,
    Input(body): Input<CreateExperiment>,
) -> MlflowResult<Json<Value>> {
    let workspace_id = caller.write()?;
    let name = required("name", &body.name)?;
    rules::experiment_name("name", name)?;
    let tags = tag_map(&body.tags, rules::MAX_EXPERIMENT_TAG_VALUE_LENGTH)?;
    let experiment = match db.mlflow_create_experiment(workspace_id, name, &tags).await {
        Err(DbError::Conflict { .. }) => {
            return Err(MlflowError::exists(format!(
                "Experiment '{name}' already exists."
            )))
        }
        other => other?,
    };
    let id = experiment_id(experiment.id, experiment.name == DEFAULT_EXPERIMENT_NAME);
    Ok(Json(json!({ "experiment_id": id })))
}

#[derive(Debug, Deserialize)]
pub(super) struct ExperimentQuery {
    experiment_id: Option<String>,
    experiment_name: Option<String>,
}

/// An experiment by MLflow id, answered as not found the way MLflow words it.
pub(super) async fn find(
    db: &Db,
    workspace_id: uuid::Uuid,
    id: &str,
) -> MlflowResult<trainyard_db::experiments::Experiment> {
    match db
        .mlflow_experiment(workspace_id, experiment_ref(id)?)
        .await
    {
        Err(DbError::NotFound(_)) => Err(MlflowError::not_found(format!(
            "No Experiment with id={id} exists"
        ))),
        other => Ok(other?),
    }
}

pub(super) async fn get_experiment(
    State(db): State<Db>,
    caller: MlflowCaller,
    Input(query): Input<ExperimentQuery>,
) -> MlflowResult<Json<Value>> {
    let id = required("experiment_id", &query.experiment_id)?;
    let experiment = find(&db, caller.read(), id).await?;
    Ok(Json(
        json!({ "experiment": ExperimentJson::from(&experiment) }),
    ))
}

pub(super) async fn get_experiment_by_name(
    State(db): State<Db>,
    caller: MlflowCaller,
    Input(query): Input<ExperimentQuery>,
) -> MlflowResult<Json<Value>> {
    let name = required("experiment_name", &query.experiment_name)?;
    let experiment = match db.mlflow_experiment_by_name(caller.read(), name).await {
        Err(DbError::NotFound(_)) => {
            return Err(MlflowError::not_found(format!(
                "Could not find experiment with name '{name}'"
            )))
        }
        other => other?,
    };
    Ok(Json(
        json!({ "experiment": ExperimentJson::from(&experiment) }),
    ))
}

#[derive(Debug, Deserialize)]
pub(super) struct SearchExperiments {
    #[serde(default, deserialize_with = "lenient_i64")]
    max_results: Option<i64>,
    page_token: Option<String>,
    filter: Option<String>,
    #[serde(default)]
    order_by: Vec<String>,
    view_type: Option<String>,
}

/// MLflow's `view_type` / `run_view_type`.
pub(super) fn lifecycle_view(view: Option<&str>) -> MlflowResult<LifecycleView> {
    match view {
        None | Some("ACTIVE_ONLY") | Some("1") => Ok(LifecycleView::Active),
        Some("DELETED_ONLY") | Some("2") => Ok(LifecycleView::Deleted),
        Some("ALL") | Some("3") => Ok(LifecycleView::All),
        Some(other) => Err(MlflowError::invalid(format!("Invalid view type '{other}'"))),
    }
}

pub(super) async fn search_experiments(
    State(db): State<Db>,
    caller: MlflowCaller,
    Input(body): Input<SearchExperiments>,
) -> MlflowResult<Json<Value>> {
    let workspace_id = caller.read();
    let limit = max_results(body.max_results, 1000, 50000)?;
    let offset = page_offset(&body.page_token)?;
    let clauses = parse_catalog_filter(
        "filter",
        body.filter.as_deref().unwrap_or(""),
        CatalogSearch::Experiments,
    )?;
    let mut order = Vec::new();
    for text in &body.order_by {
        let (_, key, ascending) = trainyard_core::mlflow::filter::parse_order("order_by", text)?;
        let key = match key.as_str() {
            "name" => ExperimentOrder::Name,
            "creation_time" | "last_update_time" => ExperimentOrder::Created,
            "experiment_id" => ExperimentOrder::Id,
            other => {
                return Err(MlflowError::invalid(format!(
                    "Invalid order_by key '{other}'"
                )))
            }
        };
        order.push((key, ascending));
    }
    // The Default experiment exists in every workspace, so it is listed.
    db.mlflow_default_experiment(workspace_id).await?;
    let view = lifecycle_view(body.view_type.as_deref())?;
    let found = db
        .mlflow_search_experiments(workspace_id, view, &clauses, &order, offset, limit + 1)
        .await?;
    let (found, next) = page(found, offset, limit);
    let experiments: Vec<ExperimentJson> = found.iter().map(ExperimentJson::from).collect();
    Ok(Json(
        json!({ "experiments": experiments, "next_page_token": next }),
    ))
}

#[derive(Debug, Deserialize)]
pub(super) struct ChangeExperiment {
    experiment_id: Option<String>,
    new_name: Option<String>,
    key: Option<String>,
    value: Option<String>,
}

/// The experiment a change names, checked writable; `Default` may not be
/// renamed or deleted, as in MLflow.
async fn writable(
    db: &Db,
    caller: &MlflowCaller,
    body: &ChangeExperiment,
    forbid_default: bool,
) -> MlflowResult<(uuid::Uuid, uuid::Uuid)> {
    let workspace_id = caller.write()?;
    let id = required("experiment_id", &body.experiment_id)?;
    let experiment = find(db, workspace_id, id).await?;
    if forbid_default && experiment.name == DEFAULT_EXPERIMENT_NAME {
        return Err(MlflowError::invalid(
            "Cannot rename or delete the default experiment '0'.",
        ));
    }
    Ok((workspace_id, experiment.id))
}

pub(super) async fn update_experiment(
    State(db): State<Db>,
    caller: MlflowCaller,
    Input(body): Input<ChangeExperiment>,
) -> MlflowResult<Json<Value>> {
    let (workspace_id, id) = writable(&db, &caller, &body, true).await?;
    let new_name = required("new_name", &body.new_name)?;
    rules::experiment_name("new_name", new_name)?;
    if new_name == DEFAULT_EXPERIMENT_NAME {
        return Err(MlflowError::invalid(
            "The name 'Default' belongs to the default experiment '0'.",
        ));
    }
    match db
        .mlflow_rename_experiment(workspace_id, id, new_name)
        .await
    {
        Err(DbError::Conflict { .. }) => Err(MlflowError::exists(format!(
            "Experiment '{new_name}' already exists."
        ))),
        other => other.map(|_| Json(json!({}))).map_err(Into::into),
    }
}

pub(super) async fn delete_experiment(
    State(db): State<Db>,
    caller: MlflowCaller,
    Input(body): Input<ChangeExperiment>,
) -> MlflowResult<Json<Value>> {
    let (workspace_id, id) = writable(&db, &caller, &body, true).await?;
    db.set_experiment_archived(workspace_id, id, true).await?;
    Ok(Json(json!({})))
}

pub(super) async fn restore_experiment(
    State(db): State<Db>,
    caller: MlflowCaller,
    Input(body): Input<ChangeExperiment>,
) -> MlflowResult<Json<Value>> {
    let (workspace_id, id) = writable(&db, &caller, &body, false).await?;
    db.set_experiment_archived(workspace_id, id, false).await?;
    Ok(Json(json!({})))
}

pub(super) async fn set_experiment_tag(
    State(db): State<Db>,
    caller: MlflowCaller,
    Input(body): Input<ChangeExperiment>,
) -> MlflowResult<Json<Value>> {
    let (workspace_id, id) = writable(&db, &caller, &body, false).await?;
    let key = required("key", &body.key)?;
    rules::entity_key("key", key)?;
    let value = body.value.as_deref().unwrap_or_default();
    rules::length("value", value, rules::MAX_EXPERIMENT_TAG_VALUE_LENGTH)?;
    db.mlflow_set_experiment_tag(workspace_id, id, key, Some(value))
        .await?;
    Ok(Json(json!({})))
}

pub(super) async fn delete_experiment_tag(
    State(db): State<Db>,
    caller: MlflowCaller,
    Input(body): Input<ChangeExperiment>,
) -> MlflowResult<Json<Value>> {
    let (workspace_id, id) = writable(&db, &caller, &body, false).await?;
    let key = required("key", &body.key)?;
    db.mlflow_set_experiment_tag(workspace_id, id, key, None)
        .await?;
    Ok(Json(json!({})))
}
