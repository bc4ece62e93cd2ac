//! runs/create, get, update, delete, restore, set-tag, delete-tag: MLflow
//! runs are tracked-only Trainyard runs (Running from creation, moved by the
//! client); runs Trainyard executes can be read and logged to as well.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use trainyard_core::mlflow::{self as rules, parse_run_status, RUN_NAME_TAG, USER_TAG};
use trainyard_db::mlflow::{from_millis, NewTrackedRun, RunChange, TrackedRun};
use trainyard_db::{Db, DbError};
use uuid::Uuid;

use super::auth::MlflowCaller;
use super::error::{MlflowError, MlflowResult};
use super::experiments::{tag_map, Tag};
use super::request::{experiment_ref, lenient_i64, required, run_id, Input};
use super::views::{RunInfoJson, RunJson};

#[derive(Debug, Deserialize)]
pub(super) struct CreateRun {
    experiment_id: Option<String>,
    user_id: Option<String>,
    run_name: Option<String>,
    #[serde(default, deserialize_with = "lenient_i64")]
    start_time: Option<i64>,
    #[serde(default)]
    tags: Vec<Tag>,
}

pub(super) async fn create_run(
    State(db): State<Db>,
    caller: MlflowCaller,
    Input(body): Input<CreateRun>,
) -> MlflowResult<Json<Value>> {
    let workspace_id = caller.write()?;
    let mut tags = tag_map(&body.tags, rules::MAX_TAG_VALUE_LENGTH)?;
    let named = tags.remove(RUN_NAME_TAG);
    let name = body
        .run_name
        .filter(|n| !n.is_empty())
        .or(named)
        .unwrap_or_else(|| format!("run-{}", &Uuid::new_v4().simple().to_string()[..8]));
    if let Some(user) = body.user_id.filter(|u| !u.is_empty()) {
        tags.entry(USER_TAG.to_string()).or_insert(user);
    }
    let experiment_id = body.experiment_id.as_deref().unwrap_or("0");
    let start = body
        .start_time
        .map(from_millis)
        .unwrap_or_else(chrono::Utc::now);
    let new_run = NewTrackedRun {
        experiment: experiment_ref(experiment_id)?,
        name,
        start,
        tags,
    };
    let run = db
        .mlflow_create_run(workspace_id, new_run)
        .await
        .map_err(|err| match err {
            DbError::NotFound(_) => MlflowError::not_found(format!("No Experiment with id={experiment_id} exists")),
            DbError::Deleted(_) => MlflowError::invalid(format!(
                "The experiment {experiment_id} must be in the 'active' state. Current state is deleted."
            )),
            other => other.into(),
        })?;
    // A new run has no metrics, inputs or outputs yet: nothing more to read.
    Ok(Json(json!({ "run": RunJson::new(&run, &[], &[]) })))
}

#[derive(Debug, Deserialize)]
pub(super) struct RunRequest {
    run_id: Option<String>,
    run_uuid: Option<String>,
    status: Option<String>,
    #[serde(default, deserialize_with = "lenient_i64")]
    end_time: Option<i64>,
    run_name: Option<String>,
    key: Option<String>,
    value: Option<String>,
}

/// A run of the workspace, answered as not found the way MLflow words it.
pub(super) async fn find_run(db: &Db, workspace_id: Uuid, id: Uuid) -> MlflowResult<TrackedRun> {
    match db.mlflow_run(workspace_id, id).await {
        Err(DbError::NotFound(_)) => Err(run_not_found(id)),
        other => Ok(other?),
    }
}

/// MLflow's answer for a run that is not there.
pub(super) fn run_not_found(id: Uuid) -> MlflowError {
    MlflowError::not_found(format!("Run with id={id} not found"))
}

pub(super) async fn get_run(
    State(db): State<Db>,
    caller: MlflowCaller,
    Input(query): Input<RunRequest>,
) -> MlflowResult<Json<Value>> {
    let id = run_id(&query.run_id, &query.run_uuid)?;
    let run = match db.mlflow_run_with_data(caller.read(), id).await {
        Err(DbError::NotFound(_)) => return Err(run_not_found(id)),
        other => other?,
    };
    let run = RunJson::new(&run.tracked, &run.latest_metrics, &run.run_io);
    Ok(Json(json!({ "run": run })))
}

pub(super) async fn update_run(
    State(db): State<Db>,
    caller: MlflowCaller,
    Input(body): Input<RunRequest>,
) -> MlflowResult<Json<Value>> {
    let id = run_id(&body.run_id, &body.run_uuid)?;
    let workspace_id = caller.write_run(id)?;
    let status = body
        .status
        .as_deref()
        .map(|s| parse_run_status("status", s))
        .transpose()?;
    let change = RunChange {
        status,
        end_time: body.end_time.map(from_millis),
        name: body.run_name.filter(|n| !n.is_empty()),
    };
    find_run(&db, workspace_id, id).await?;
    let run = db.mlflow_update_run(workspace_id, id, change).await?;
    Ok(Json(json!({ "run_info": RunInfoJson::from(&run) })))
}

pub(super) async fn delete_run(
    State(db): State<Db>,
    caller: MlflowCaller,
    Input(body): Input<RunRequest>,
) -> MlflowResult<Json<Value>> {
    set_deleted(db, caller, body, true).await
}

pub(super) async fn restore_run(
    State(db): State<Db>,
    caller: MlflowCaller,
    Input(body): Input<RunRequest>,
) -> MlflowResult<Json<Value>> {
    set_deleted(db, caller, body, false).await
}

async fn set_deleted(
    db: Db,
    caller: MlflowCaller,
    body: RunRequest,
    deleted: bool,
) -> MlflowResult<Json<Value>> {
    let id = run_id(&body.run_id, &body.run_uuid)?;
    let workspace_id = caller.write()?;
    match db.mlflow_set_run_deleted(workspace_id, id, deleted).await {
        Err(DbError::NotFound(_)) => Err(run_not_found(id)),
        other => other.map(|_| Json(json!({}))).map_err(Into::into),
    }
}

pub(super) async fn set_tag(
    State(db): State<Db>,
    caller: MlflowCaller,
    Input(body): Input<RunRequest>,
) -> MlflowResult<Json<Value>> {
    let id = run_id(&body.run_id, &body.run_uuid)?;
    let workspace_id = caller.write_run(id)?;
    let key = required("key", &body.key)?;
    rules::entity_key("key", key)?;
    let value = body.value.clone().unwrap_or_default();
    rules::length("value", &value, rules::MAX_TAG_VALUE_LENGTH)?;
    log_entries(&db, workspace_id, id, &[], &[(key.to_string(), value)]).await?;
    Ok(Json(json!({})))
}

pub(super) async fn delete_tag(
    State(db): State<Db>,
    caller: MlflowCaller,
    Input(body): Input<RunRequest>,
) -> MlflowResult<Json<Value>> {
    let id = run_id(&body.run_id, &body.run_uuid)?;
    let workspace_id = caller.write_run(id)?;
    let key = required("key", &body.key)?;
    match db.mlflow_delete_run_tag(workspace_id, id, key).await {
        Err(DbError::NotFound("tag")) => Err(MlflowError::not_found(format!(
            "No tag with name: {key} in run with id {id}"
        ))),
        Err(DbError::NotFound(_)) => Err(run_not_found(id)),
        other => other.map(|_| Json(json!({}))).map_err(Into::into),
    }
}

/// Stores params and tags, with MLflow's wording for a missing run.
pub(super) async fn log_entries(
    db: &Db,
    workspace_id: Uuid,
    id: Uuid,
    params: &[(String, String)],
    tags: &[(String, String)],
) -> MlflowResult<()> {
    match db.mlflow_log_params_and_tags(workspace_id, id, params, tags).await {
        Err(DbError::NotFound(_)) => Err(run_not_found(id)),
        Err(DbError::ParamChanged { key, old, new }) => Err(MlflowError::invalid(format!(
            "Changing param values is not allowed. Param with key='{key}' was already logged with value='{old}' for run ID='{id}'. Attempted logging new value '{new}'."
        ))),
        other => Ok(other?),
    }
}
