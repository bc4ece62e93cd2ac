//! Metrics: a row per metric of a run with its latest value, scalar points in
//! a narrow table loaded with COPY, other shapes as JSON. One batch is one
//! transaction: it is stored whole or not at all.

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::FromRow;
use std::collections::{BTreeMap, HashMap};
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

#[derive(FromRow)]
struct MetricHead {
    id: i64,
    name: String,
    kind: String,
    count: i64,
}

/// The latest point of each metric in a batch, and how many points it adds.
struct Aggregate {
    added: i64,
    step: i64,
    at: DateTime<Utc>,
    value: Option<f64>,
    json: Option<serde_json::Value>,
}

/// PostgreSQL's text COPY spelling of a double.
fn copy_float(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value == f64::INFINITY {
        "Infinity".into()
    } else if value == f64::NEG_INFINITY {
        "-Infinity".into()
    } else {
        format!("{value:e}")
    }
}

impl Db {
    /// Stores a batch of points of a run; returns how many were stored.
    pub async fn log_metrics(
        &self,
        run_id: Uuid,
        points: Vec<NewMetricPoint>,
    ) -> Result<u64, DbError> {
        if points.is_empty() {
            return Ok(0);
        }
        let mut kinds: BTreeMap<&str, MetricKind> = BTreeMap::new();
        for point in &points {
            let kind = kinds.entry(point.name.as_str()).or_insert(point.kind);
            if *kind != point.kind {
                return Err(DbError::MetricKind {
                    name: point.name.clone(),
                    existing: kind.as_str(),
                });
            }
        }
        let mut tx = self.pool().begin().await?;
        // Sorted names lock metric rows in one order, so concurrent batches
        // of one run cannot deadlock.
        let names: Vec<&str> = kinds.keys().copied().collect();
        let kind_names: Vec<&str> = kinds.values().map(|k| k.as_str()).collect();
        let heads = sqlx::query_as::<_, MetricHead>(
            "INSERT INTO metrics (run_id, name, kind)
             SELECT $1, n, k FROM UNNEST($2::text[], $3::text[]) AS u(n, k)
             ON CONFLICT (run_id, name) DO UPDATE SET name = EXCLUDED.name
             RETURNING id, name, kind, count",
        )
        .bind(run_id)
        .bind(&names)
        .bind(&kind_names)
        .fetch_all(&mut *tx)
        .await?;
        let mut metric: HashMap<String, (i64, i64)> = HashMap::new();
        for head in heads {
            let wanted = kinds[head.name.as_str()];
            if head.kind != wanted.as_str() {
                let existing = MetricKind::parse(&head.kind).unwrap_or_default().as_str();
                return Err(DbError::MetricKind {
                    name: head.name,
                    existing,
                });
            }
            metric.insert(head.name, (head.id, head.count));
        }

        let mut copy_text = String::new();
        let (mut json_ids, mut json_steps, mut json_times, mut json_values) =
            (vec![], vec![], vec![], vec![]);
        let mut aggregates: HashMap<i64, Aggregate> = HashMap::new();
        let mut next_step: HashMap<i64, i64> = HashMap::new();
        let stored = points.len() as u64;
        for point in points {
            let (id, count) = metric[point.name.as_str()];
            let auto = next_step.entry(id).or_insert(count);
            let step = point.step.unwrap_or(*auto);
            *auto = (*auto).max(step + 1);
            let (scalar, json) = match point.value {
                MetricValue::Scalar(value) => {
                    copy_text.push_str(&format!(
                        "{id}\t{step}\t{}\t{}\n",
                        point.at.format("%Y-%m-%d %H:%M:%S%.6f+00"),
                        copy_float(value)
                    ));
                    (Some(value), None)
                }
                MetricValue::Json(value) => {
                    json_ids.push(id);
                    json_steps.push(step);
                    json_times.push(point.at);
                    json_values.push(Json(value.clone()));
                    (None, Some(value))
                }
            };
            let aggregate = aggregates.entry(id).or_insert(Aggregate {
                added: 0,
                step,
                at: point.at,
                value: scalar,
                json: json.clone(),
            });
            aggregate.added += 1;
            if (step, point.at) >= (aggregate.step, aggregate.at) {
                aggregate.step = step;
                aggregate.at = point.at;
                aggregate.value = scalar;
                aggregate.json = json;
            }
        }
        if !copy_text.is_empty() {
            let mut copy = tx
                .copy_in_raw("COPY metric_points (metric_id, step, at, value) FROM STDIN")
                .await?;
            copy.send(copy_text.into_bytes()).await?;
            copy.finish().await?;
        }
        if !json_ids.is_empty() {
            sqlx::query(
                "INSERT INTO metric_values (metric_id, step, at, value)
                 SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::timestamptz[], $4::jsonb[])",
            )
            .bind(&json_ids)
            .bind(&json_steps)
            .bind(&json_times)
            .bind(&json_values)
            .execute(&mut *tx)
            .await?;
        }
        let mut ids = Vec::new();
        let (mut added, mut steps, mut times, mut values, mut jsons) =
            (vec![], vec![], vec![], vec![], vec![]);
        for (id, aggregate) in aggregates {
            ids.push(id);
            added.push(aggregate.added);
            steps.push(aggregate.step);
            times.push(aggregate.at);
            values.push(aggregate.value);
            jsons.push(aggregate.json.map(Json));
        }
        sqlx::query(
            "UPDATE metrics m SET count = m.count + u.added,
                 latest_step = CASE WHEN m.latest_step IS NULL OR (u.step, u.at) >= (m.latest_step, m.latest_at) THEN u.step ELSE m.latest_step END,
                 latest_value = CASE WHEN m.latest_step IS NULL OR (u.step, u.at) >= (m.latest_step, m.latest_at) THEN u.value ELSE m.latest_value END,
                 latest_json = CASE WHEN m.latest_step IS NULL OR (u.step, u.at) >= (m.latest_step, m.latest_at) THEN u.json ELSE m.latest_json END,
                 latest_at = CASE WHEN m.latest_step IS NULL OR (u.step, u.at) >= (m.latest_step, m.latest_at) THEN u.at ELSE m.latest_at END
             FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[], $4::timestamptz[], $5::float8[], $6::jsonb[])
                  AS u(id, added, step, at, value, json)
             WHERE m.id = u.id",
        )
        .bind(&ids)
        .bind(&added)
        .bind(&steps)
        .bind(&times)
        .bind(&values)
        .bind(&jsons)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(stored)
    }

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
            let rows = sqlx::query_as::<_, ScalarRow>(
                "SELECT step, at, value FROM metric_points
                 WHERE metric_id = $1 AND ($2::bigint IS NULL OR step > $2)
                 ORDER BY step, at LIMIT $3",
            )
            .bind(id)
            .bind(after_step)
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
            Ok(rows.into_iter().map(scalar_point).collect())
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
            "WITH span AS (SELECT min(step) AS lo, max(step) AS hi FROM metric_points WHERE metric_id = $1),
             points AS (
                 SELECT p.step, p.at, p.value,
                        width_bucket(p.step, span.lo, span.hi + 1, $2::int) AS bucket
                 FROM metric_points p, span WHERE p.metric_id = $1
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
        Ok(rows.into_iter().map(scalar_point).collect())
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

fn scalar_point(row: ScalarRow) -> HistoryPoint {
    HistoryPoint {
        step: row.step,
        at: row.at,
        value: trainyard_core::metrics::scalar_json(row.value),
    }
}
