use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use trainyard_core::metrics::{
    metric_name, metric_value, rank_metric_name, MAX_METRICS_PER_REQUEST,
};
use trainyard_core::{FieldError, MetricKind};
use trainyard_db::metrics::NewMetricPoint;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::InWorkspace;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{parse_json, AppJson, AppPath};
use crate::AppState;

/// Largest body of a metrics batch: 10,000 entries fit with room to spare.
pub(crate) const MAX_METRICS_BODY_BYTES: usize = 16 * 1024 * 1024;

/// One metric value to log.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricEntry {
    /// The metric's name (1 to 250 characters).
    pub name: String,
    /// Its shape; `scalar` when absent. A metric keeps its first shape.
    #[serde(default)]
    pub kind: MetricKind,
    /// A number (or "NaN", "Infinity", "-Infinity") for a scalar; a list, a
    /// row object, a table (column → list) or `{"path": …}` for an image.
    #[schema(value_type = Object)]
    pub value: serde_json::Value,
    /// Its step; when absent, one more than the metric's last.
    #[serde(default)]
    pub step: Option<i64>,
    /// When it was logged; now when absent.
    #[serde(default)]
    pub timestamp: Option<DateTime<Utc>>,
}

/// A batch of metric values.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LogMetrics {
    /// At most 10,000 entries.
    pub metrics: Vec<MetricEntry>,
}

/// What was stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct Logged {
    /// How many entries were stored (all of them, or none on an error).
    pub accepted: u64,
}

/// Logs a batch of metric values to a run: all are stored, or none. A run's
/// own token may log only to that run.
#[utoipa::path(post, path = "/workspaces/{workspace}/runs/{run_id}/metrics", tag = "metrics",
    params(
        ("workspace" = String, Path, description = "Workspace name or id"),
        ("run_id" = Uuid, Path, description = "Run id"),
    ),
    request_body = LogMetrics,
    responses(
        (status = 200, description = "Stored", body = Logged),
        (status = 400, description = "More than 10,000 entries (`batch_too_large`)", body = Problem),
        (status = 403, description = "Not allowed to write to this run", body = Problem),
        (status = 422, description = "An entry is invalid; `field` names it", body = Problem),
    ))]
pub(super) async fn log_metrics(
    State(state): State<AppState>,
    scope: InWorkspace,
    AppPath(path): AppPath<(String, Uuid)>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult<AppJson<Logged>> {
    let (_, run_id) = path;
    let workspace_id = scope.require_run_write(run_id)?;
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !is_json {
        return Err(ApiError::UnsupportedMediaType);
    }
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge {
                limit: MAX_METRICS_BODY_BYTES as u64,
                setting: None,
            }
        } else {
            ApiError::BadRequest {
                code: "unreadable_body",
                detail: rejection.body_text(),
                field: None,
            }
        }
    })?;
    let batch: LogMetrics = parse_json(&body)?;
    if batch.metrics.len() > MAX_METRICS_PER_REQUEST {
        return Err(ApiError::BatchTooLarge {
            field: "metrics",
            count: batch.metrics.len(),
            limit: MAX_METRICS_PER_REQUEST,
        });
    }
    let now = Utc::now();
    let points = batch
        .metrics
        .into_iter()
        .enumerate()
        .map(|(i, entry)| {
            // Field names are spelled out only for the entry that is refused.
            let in_entry = |err: FieldError| {
                FieldError::new(format!("metrics[{i}].{}", err.field), err.reason)
            };
            // Checked as stored: a rank's prefix counts against the limit.
            let name = rank_metric_name(scope.caller.run_rank, entry.name);
            metric_name("name", &name).map_err(in_entry)?;
            let value = metric_value(entry.kind, "value", &entry.value).map_err(in_entry)?;
            Ok(NewMetricPoint {
                name,
                kind: entry.kind,
                step: entry.step,
                at: entry.timestamp.unwrap_or(now),
                value,
            })
        })
        .collect::<Result<Vec<_>, FieldError>>()?;
    let accepted = state
        .db
        .log_run_metrics(workspace_id, run_id, points)
        .await?;
    Ok(AppJson(Logged { accepted }))
}
