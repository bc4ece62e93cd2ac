//! runs/log-parameter, log-metric, log-batch, log-inputs and outputs, with
//! MLflow's limits: 1,000 metrics, 100 params and 100 tags a batch (1,000
//! entries in all, 1 MB a body), its key rules, and params that never change.

use axum::body::Bytes;
use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashSet;
use trainyard_core::metrics::rank_metric_name;
use trainyard_core::mlflow::{self as rules};
use trainyard_core::{MetricKind, MetricValue};
use trainyard_db::metrics::NewMetricPoint;
use trainyard_db::mlflow::{from_millis, IoDirection};
use trainyard_db::Db;
use uuid::Uuid;

use super::auth::MlflowCaller;
use super::error::{MlflowError, MlflowResult};
use super::experiments::Tag;
use super::request::{lenient_f64, lenient_i64, required, run_id, Input};
use super::runs::{log_entries, run_not_found};

/// Largest log-batch body, as MLflow's server limits it.
const MAX_BATCH_BODY_BYTES: usize = 1_000_000;

/// One metric point as requests carry it.
#[derive(Debug, Deserialize)]
pub(super) struct Metric {
    key: Option<String>,
    #[serde(default, deserialize_with = "lenient_f64")]
    value: Option<f64>,
    #[serde(default, deserialize_with = "lenient_i64")]
    timestamp: Option<i64>,
    #[serde(default, deserialize_with = "lenient_i64")]
    step: Option<i64>,
}

impl Metric {
    /// The point to store, checked as MLflow checks it; `field` names it in errors.
    fn point(self, field: &str) -> MlflowResult<NewMetricPoint> {
        let key = self.key.ok_or_else(|| {
            MlflowError::invalid(format!("Missing value for required parameter '{field}key'"))
        })?;
        rules::entity_key(&format!("{field}key"), &key)?;
        let value = self.value.ok_or_else(|| {
            MlflowError::invalid(format!(
                "Missing value for required parameter '{field}value'"
            ))
        })?;
        let timestamp = match self.timestamp {
            Some(ms) if ms < 0 => {
                return Err(MlflowError::invalid(format!(
                    "Invalid value {ms} for parameter '{field}timestamp' supplied: Timestamp must be a nonnegative long (64-bit integer)"
                )))
            }
            Some(ms) => from_millis(ms),
            None => chrono::Utc::now(),
        };
        Ok(NewMetricPoint {
            name: key,
            kind: MetricKind::Scalar,
            step: Some(self.step.unwrap_or(0)),
            at: timestamp,
            value: MetricValue::Scalar(value),
        })
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct LogMetric {
    run_id: Option<String>,
    run_uuid: Option<String>,
    #[serde(flatten)]
    metric: Metric,
}

pub(super) async fn log_metric(
    State(db): State<Db>,
    caller: MlflowCaller,
    Input(body): Input<LogMetric>,
) -> MlflowResult<Json<Value>> {
    let id = run_id(&body.run_id, &body.run_uuid)?;
    let workspace_id = caller.write_run(id)?;
    let mut point = body.metric.point("")?;
    point.name = rank_metric_name(caller.run_rank(), point.name);
    log_points(&db, workspace_id, id, vec![point]).await?;
    Ok(Json(json!({})))
}

/// Stores points of an active run; the run is checked as they are written.
async fn log_points(
    db: &Db,
    workspace_id: Uuid,
    id: Uuid,
    points: Vec<NewMetricPoint>,
) -> MlflowResult<()> {
    db.log_active_run_metrics(workspace_id, id, points)
        .await
        .map(|_| ())
        .map_err(|err| run_error(id, err))
}

/// A run that does not exist, in MLflow's words.
fn run_error(id: Uuid, err: trainyard_db::DbError) -> MlflowError {
    match err {
        trainyard_db::DbError::NotFound(_) => run_not_found(id),
        other => other.into(),
    }
}

/// Refuses a run that does not exist or is deleted, in MLflow's words.
async fn check_active(db: &Db, workspace_id: Uuid, id: Uuid) -> MlflowResult<()> {
    db.mlflow_check_run_active(workspace_id, id)
        .await
        .map_err(|err| run_error(id, err))
}

#[derive(Debug, Deserialize)]
pub(super) struct LogParam {
    run_id: Option<String>,
    run_uuid: Option<String>,
    key: Option<String>,
    value: Option<String>,
}

pub(super) async fn log_param(
    State(db): State<Db>,
    caller: MlflowCaller,
    Input(body): Input<LogParam>,
) -> MlflowResult<Json<Value>> {
    let id = run_id(&body.run_id, &body.run_uuid)?;
    let workspace_id = caller.write_run(id)?;
    let key = required("key", &body.key)?;
    let param = checked_param("", key, body.value.unwrap_or_default())?;
    log_entries(&db, workspace_id, id, &[param], &[]).await?;
    Ok(Json(json!({})))
}

fn checked_param(field: &str, key: &str, value: String) -> MlflowResult<(String, String)> {
    rules::entity_key(&format!("{field}key"), key)?;
    rules::length(
        &format!("{field}value"),
        &value,
        rules::MAX_PARAM_VALUE_LENGTH,
    )?;
    Ok((key.to_string(), value))
}

#[derive(Debug, Deserialize)]
struct LogBatch {
    run_id: Option<String>,
    run_uuid: Option<String>,
    #[serde(default)]
    metrics: Vec<Metric>,
    #[serde(default)]
    params: Vec<Tag>,
    #[serde(default)]
    tags: Vec<Tag>,
}

fn batch_limit(what: &str, count: usize, limit: usize) -> MlflowResult<()> {
    if count > limit {
        return Err(MlflowError::invalid(format!(
            "A batch logging request can contain at most {limit} {what}. Got {count} {what}. Please split up {what} across multiple requests and try again."
        )));
    }
    Ok(())
}

pub(super) async fn log_batch(
    State(db): State<Db>,
    caller: MlflowCaller,
    body: Bytes,
) -> MlflowResult<Json<Value>> {
    if body.len() > MAX_BATCH_BODY_BYTES {
        return Err(MlflowError::invalid(format!(
            "Batched logging API requests must be at most {MAX_BATCH_BODY_BYTES} bytes, got a request of size {}.",
            body.len()
        )));
    }
    let batch: LogBatch = serde_json::from_slice(&body)
        .map_err(|err| MlflowError::invalid(format!("Invalid request body: {err}")))?;
    let id = run_id(&batch.run_id, &batch.run_uuid)?;
    let workspace_id = caller.write_run(id)?;
    batch_limit("metrics", batch.metrics.len(), rules::MAX_METRICS_PER_BATCH)?;
    batch_limit(
        "params",
        batch.params.len(),
        rules::MAX_PARAMS_TAGS_PER_BATCH,
    )?;
    batch_limit("tags", batch.tags.len(), rules::MAX_PARAMS_TAGS_PER_BATCH)?;
    batch_limit(
        "metrics, params, and tags",
        batch.metrics.len() + batch.params.len() + batch.tags.len(),
        rules::MAX_ENTITIES_PER_BATCH,
    )?;
    // Everything is checked before anything is stored.
    let points = batch
        .metrics
        .into_iter()
        .enumerate()
        .map(|(i, m)| {
            let mut point = m.point(&format!("metrics[{i}]."))?;
            point.name = rank_metric_name(caller.run_rank(), point.name);
            Ok(point)
        })
        .collect::<MlflowResult<Vec<_>>>()?;
    let mut seen = HashSet::new();
    let mut params = Vec::with_capacity(batch.params.len());
    for (i, p) in batch.params.into_iter().enumerate() {
        let field = format!("params[{i}].");
        let key = required(&format!("{field}key"), &p.key)?;
        if !seen.insert(key.to_string()) {
            return Err(MlflowError::invalid(format!(
                "Duplicate parameter keys have been submitted: ['{key}']. Please ensure the request contains only one param value per param key."
            )));
        }
        params.push(checked_param(&field, key, p.value.unwrap_or_default())?);
    }
    let mut tags = Vec::with_capacity(batch.tags.len());
    for (i, t) in batch.tags.into_iter().enumerate() {
        let field = format!("tags[{i}].");
        let key = required(&format!("{field}key"), &t.key)?;
        rules::entity_key(&format!("{field}key"), key)?;
        let value = t.value.unwrap_or_default();
        rules::length(
            &format!("{field}value"),
            &value,
            rules::MAX_TAG_VALUE_LENGTH,
        )?;
        tags.push((key.to_string(), value));
    }
    if !params.is_empty() || !tags.is_empty() {
        log_entries(&db, workspace_id, id, &params, &tags).await?;
    }
    if !points.is_empty() {
        log_points(&db, workspace_id, id, points).await?;
    } else if params.is_empty() && tags.is_empty() {
        check_active(&db, workspace_id, id).await?;
    }
    Ok(Json(json!({})))
}

#[derive(Debug, Deserialize)]
pub(super) struct LogIo {
    run_id: Option<String>,
    run_uuid: Option<String>,
    #[serde(default)]
    datasets: Vec<Value>,
    #[serde(default)]
    models: Vec<Value>,
}

/// What identifies a declared input or output among a run's.
fn io_key(entry: &Value, output: bool) -> MlflowResult<String> {
    if let Some(dataset) = entry.get("dataset") {
        let part = |name: &str| {
            dataset[name]
                .as_str()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| {
                    MlflowError::invalid(format!(
                        "Missing value for required parameter 'dataset.{name}'"
                    ))
                })
        };
        return Ok(format!("dataset:{}:{}", part("name")?, part("digest")?));
    }
    let model = entry["model_id"]
        .as_str()
        .ok_or_else(|| MlflowError::invalid("Missing value for required parameter 'model_id'"))?;
    Ok(if output {
        format!("model:{model}:{}", entry["step"])
    } else {
        format!("model:{model}")
    })
}

async fn log_io(
    db: &Db,
    caller: &MlflowCaller,
    body: LogIo,
    direction: IoDirection,
) -> MlflowResult<Json<Value>> {
    let id = run_id(&body.run_id, &body.run_uuid)?;
    let workspace_id = caller.write_run(id)?;
    check_active(db, workspace_id, id).await?;
    let output = direction == IoDirection::Output;
    let entries = body
        .datasets
        .into_iter()
        .chain(body.models)
        .map(|entry| Ok((io_key(&entry, output)?, entry)))
        .collect::<MlflowResult<Vec<_>>>()?;
    if !entries.is_empty() {
        db.mlflow_log_run_io(id, direction, entries).await?;
    }
    Ok(Json(json!({})))
}

pub(super) async fn log_inputs(
    State(db): State<Db>,
    caller: MlflowCaller,
    Input(body): Input<LogIo>,
) -> MlflowResult<Json<Value>> {
    log_io(&db, &caller, body, IoDirection::Input).await
}

pub(super) async fn log_outputs(
    State(db): State<Db>,
    caller: MlflowCaller,
    Input(body): Input<LogIo>,
) -> MlflowResult<Json<Value>> {
    log_io(&db, &caller, body, IoDirection::Output).await
}
