//! Metrics: a row per metric of a run with its latest value, scalar points in
//! narrow tables (a row per point logged alone, chunks of points logged
//! together; see [`points`]), other shapes as JSON. Batches are written by
//! [`write`]: each is stored whole or not at all.

pub(crate) mod points;
mod write;

pub use points::ScalarPoint;
pub(crate) use write::MetricQueue;
pub use write::PointCopy;

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::FromRow;
use trainyard_core::{MetricKind, MetricValue};
use uuid::Uuid;

use crate::{Db, DbError};

/// One point to store.
#[derive(Debug, Clone)]
pub struct NewMetricPoint {
    /// The metric's name.
    pub name: String,
    /// Its shape.
    pub kind: MetricKind,
    /// Its step; `None` numbers it after the metric's last point.
    pub step: Option<i64>,
    /// When it was logged.
    pub at: DateTime<Utc>,
    /// The value.
    pub value: MetricValue,
}

/// A metric of a run, with its latest value.
#[derive(Debug, Clone, FromRow)]
pub struct MetricSummary {
    /// Its run.
    pub run_id: Uuid,
    /// Its name.
    pub name: String,
    /// Stored kind name; see [`MetricSummary::kind`].
    #[sqlx(rename = "kind")]
    pub kind_name: String,
    /// How many points it has.
    pub count: i64,
    /// Step of the latest point (the highest step).
    pub latest_step: Option<i64>,
    /// Time of the latest point.
    pub latest_at: Option<DateTime<Utc>>,
    /// Latest scalar value.
    pub latest_value: Option<f64>,
    /// Latest value of another shape.
    pub latest_json: Option<Json<serde_json::Value>>,
}

impl MetricSummary {
    /// The metric's shape.
    pub fn kind(&self) -> MetricKind {
        MetricKind::parse(&self.kind_name).unwrap_or_default()
    }

    /// The latest value as JSON (NaN and infinities as strings).
    pub fn latest(&self) -> Option<serde_json::Value> {
        match (&self.latest_json, self.latest_value) {
            (Some(json), _) => Some(json.0.clone()),
            (None, Some(value)) => Some(trainyard_core::metrics::scalar_json(value)),
            (None, None) => None,
        }
    }
}

/// One point of a metric's history.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryPoint {
    /// Its step.
    pub step: i64,
    /// When it was logged.
    pub at: DateTime<Utc>,
    /// Its value as JSON (NaN and infinities as strings).
    pub value: serde_json::Value,
}

#[derive(FromRow)]
struct ScalarRow {
    step: i64,
    at: DateTime<Utc>,
    value: f64,
}

#[derive(FromRow)]
struct JsonRow {
    step: i64,
    at: DateTime<Utc>,
    value: Json<serde_json::Value>,
}

impl Db {
    /// Every metric of a run with its latest value, by name.
    pub async fn run_metrics(&self, run_id: Uuid) -> Result<Vec<MetricSummary>, DbError> {
        self.metrics_of_runs(&[run_id], &[]).await
    }

    /// The chosen metrics (all when `names` is empty) of several runs.
    pub async fn metrics_of_runs(
        &self,
        run_ids: &[Uuid],
        names: &[String],
    ) -> Result<Vec<MetricSummary>, DbError> {
        Ok(sqlx::query_as::<_, MetricSummary>(
            "SELECT run_id, name, kind, count, latest_step, latest_at, latest_value, latest_json
             FROM metrics WHERE run_id = ANY($1) AND (cardinality($2::text[]) = 0 OR name = ANY($2))
             ORDER BY run_id, name",
        )
        .bind(run_ids)
        .bind(names)
        .fetch_all(self.pool())
        .await?)
    }

    /// Up to `limit` points of one metric with step > `after_step`, in order.
    pub async fn metric_history(
        &self,
        run_id: Uuid,
        name: &str,
        after_step: Option<i64>,
        limit: i64,
    ) -> Result<Vec<HistoryPoint>, DbError> {
        let (id, kind) = self.metric_id(run_id, name).await?;
        if kind == MetricKind::Scalar {
            let after = after_step.map_or(points::After::Start, points::After::Step);
            let page = self.scalar_points_after(id, after, limit).await?;
            Ok(page
                .into_iter()
                .map(|point| scalar_point(point.step, point.at, point.value))
                .collect())
        } else {
            let rows = sqlx::query_as::<_, JsonRow>(
                "SELECT step, at, value FROM metric_values
                 WHERE metric_id = $1 AND ($2::bigint IS NULL OR step > $2)
                 ORDER BY step, at LIMIT $3",
            )
            .bind(id)
            .bind(after_step)
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
            Ok(rows
                .into_iter()
                .map(|r| HistoryPoint {
                    step: r.step,
                    at: r.at,
                    value: r.value.0,
                })
                .collect())
        }
    }

    /// A scalar metric's history cut to about `max_points`: the steps are
    /// split into `max_points / 2` buckets and each keeps its lowest and its
    /// highest point, so spikes survive the downsampling.
    pub async fn metric_history_downsampled(
        &self,
        run_id: Uuid,
        name: &str,
        max_points: i64,
    ) -> Result<Vec<HistoryPoint>, DbError> {
        let (id, kind) = self.metric_id(run_id, name).await?;
        if kind != MetricKind::Scalar {
            return self.metric_history(run_id, name, None, max_points).await;
        }
        let buckets = (max_points / 2).max(1);
        let rows = sqlx::query_as::<_, ScalarRow>(
            "WITH all_points AS MATERIALIZED (SELECT step, at, value FROM scalar_points($1)),
             span AS (SELECT min(step) AS lo, max(step) AS hi FROM all_points),
             points AS (
                 SELECT p.step, p.at, p.value,
                        width_bucket(p.step, span.lo, span.hi + 1, $2::int) AS bucket
                 FROM all_points p, span
             ),
             lows AS (SELECT DISTINCT ON (bucket) step, at, value FROM points ORDER BY bucket, value ASC, step, at),
             highs AS (SELECT DISTINCT ON (bucket) step, at, value FROM points ORDER BY bucket, value DESC, step, at)
             SELECT step, at, value FROM lows UNION SELECT step, at, value FROM highs
             ORDER BY step, at",
        )
        .bind(id)
        .bind(buckets as i32)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| scalar_point(row.step, row.at, row.value))
            .collect())
    }

    async fn metric_id(&self, run_id: Uuid, name: &str) -> Result<(i64, MetricKind), DbError> {
        let (id, kind): (i64, String) =
            sqlx::query_as("SELECT id, kind FROM metrics WHERE run_id = $1 AND name = $2")
                .bind(run_id)
                .bind(name)
                .fetch_optional(self.pool())
                .await?
                .ok_or(DbError::NotFound("metric"))?;
        Ok((id, MetricKind::parse(&kind).unwrap_or_default()))
    }
}

fn scalar_point(step: i64, at: DateTime<Utc>, value: f64) -> HistoryPoint {
    HistoryPoint {
        step,
        at,
        value: trainyard_core::metrics::scalar_json(value),
    }
}
