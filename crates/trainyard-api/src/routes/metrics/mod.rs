//! Metrics of runs: logging in batches, the latest of each, one metric's
//! history (paged or downsampled), and several runs compared.

mod compare;
mod history;
mod log;

use chrono::{DateTime, Utc};
use serde::Serialize;
use trainyard_core::MetricKind;
use trainyard_db::metrics::{HistoryPoint, MetricSummary};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(log::log_metrics, history::list_run_metrics))
        .routes(routes!(history::metric_history))
        .routes(routes!(compare::compare_runs))
        // Batches are larger than other bodies; this limit applies here only.
        .layer(axum::extract::DefaultBodyLimit::max(
            log::MAX_METRICS_BODY_BYTES,
        ))
}

/// The latest point of a metric.
#[derive(Debug, Serialize, ToSchema)]
pub struct LatestPoint {
    /// Its step.
    pub step: Option<i64>,
    /// When it was logged.
    pub timestamp: Option<DateTime<Utc>>,
    /// Its value: a number (NaN and infinities as the strings "NaN",
    /// "Infinity", "-Infinity"), or the JSON of a list, row, table or image.
    #[schema(value_type = Object)]
    pub value: Option<serde_json::Value>,
}

/// A metric of a run.
#[derive(Debug, Serialize, ToSchema)]
pub struct MetricView {
    /// Its name.
    pub name: String,
    /// Its shape.
    pub kind: MetricKind,
    /// How many points it has.
    pub count: i64,
    /// Its latest point (the highest step).
    pub latest: LatestPoint,
}

impl From<MetricSummary> for MetricView {
    fn from(m: MetricSummary) -> Self {
        MetricView {
            kind: m.kind(),
            latest: LatestPoint {
                step: m.latest_step,
                timestamp: m.latest_at,
                value: m.latest(),
            },
            name: m.name,
            count: m.count,
        }
    }
}

/// One point of a history.
#[derive(Debug, Serialize, ToSchema)]
pub struct PointView {
    /// Its step.
    pub step: i64,
    /// When it was logged.
    pub timestamp: DateTime<Utc>,
    /// Its value.
    #[schema(value_type = Object)]
    pub value: serde_json::Value,
}

impl From<HistoryPoint> for PointView {
    fn from(p: HistoryPoint) -> Self {
        PointView {
            step: p.step,
            timestamp: p.at,
            value: p.value,
        }
    }
}
