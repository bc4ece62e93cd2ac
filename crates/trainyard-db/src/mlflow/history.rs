//! A scalar metric's history in MLflow's order (step, then time, then
//! value): in keyset pages, or whole, streamed with bounded memory however
//! long it is.

use chrono::{DateTime, Utc};
use futures::stream::{self, BoxStream, StreamExt};
use futures::SinkExt;
use sqlx::FromRow;
use uuid::Uuid;

use crate::{Db, DbError};

/// One point of a scalar metric.
#[derive(Debug, Clone, Copy, PartialEq, FromRow)]
pub struct HistoryPoint {
    /// Its step.
    pub step: i64,
    /// When it was logged.
    pub at: DateTime<Utc>,
    /// Its value (NaN and infinities included).
    pub value: f64,
}

/// Points handed on at once when streaming a whole history.
const STREAM_CHUNK: usize = 5_000;

impl Db {
    /// The id of a run's scalar metric, if the run has it.
    async fn scalar_metric_id(&self, run_id: Uuid, key: &str) -> Result<Option<i64>, DbError> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM metrics WHERE run_id = $1 AND name = $2 AND kind = 'scalar'",
        )
        .bind(run_id)
        .bind(key)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Up to `limit` points of a run's scalar metric after `after` (a point's
    /// step, time and value), in order; none when the run lacks the metric.
    pub async fn mlflow_metric_history(
        &self,
        run_id: Uuid,
        key: &str,
        after: Option<(i64, DateTime<Utc>, f64)>,
        limit: i64,
    ) -> Result<Vec<HistoryPoint>, DbError> {
        match self.scalar_metric_id(run_id, key).await? {
            Some(id) => self.points_after(id, after, limit).await,
            None => Ok(Vec::new()),
        }
    }

    /// Every point of a run's scalar metric, in order, from one query whose
    /// rows are handed on in chunks as they arrive (a bounded channel, so a
    /// slow reader holds back the query rather than filling memory).
    pub async fn mlflow_metric_history_stream(
        &self,
        run_id: Uuid,
        key: &str,
    ) -> Result<BoxStream<'static, Result<Vec<HistoryPoint>, DbError>>, DbError> {
        let Some(id) = self.scalar_metric_id(run_id, key).await? else {
            return Ok(stream::empty().boxed());
        };
        let (mut sender, receiver) = futures::channel::mpsc::channel(2);
        let db = self.clone();
        tokio::spawn(async move {
            // The metric's index gives the points in step order, so rows
            // flow from the first one while the few points of a step are
            // sorted on the way. Statistics that lag behind points just
            // logged would otherwise pick reading them all and sorting them
            // before the first row (on disk, beyond `work_mem`), and a
            // large estimate would add JIT compilation to a plain scan.
            // The transaction only reads: dropping it at the end ends it.
            let mut tx = match db
                .pool()
                .begin_with(
                    "BEGIN; SET LOCAL enable_bitmapscan = off; SET LOCAL enable_seqscan = off;
                     SET LOCAL jit = off",
                )
                .await
            {
                Ok(tx) => tx,
                Err(err) => {
                    let _ = sender.send(Err(err.into())).await;
                    return;
                }
            };
            let mut rows = sqlx::query_as::<_, (i64, DateTime<Utc>, f64)>(
                "SELECT step, at, value FROM metric_points WHERE metric_id = $1 ORDER BY step, at, value",
            )
            .bind(id)
            .fetch(&mut *tx);
            let mut chunk = Vec::with_capacity(STREAM_CHUNK);
            loop {
                let next = rows.next().await;
                let done = match next {
                    Some(Ok((step, at, value))) => {
                        chunk.push(HistoryPoint { step, at, value });
                        if chunk.len() < STREAM_CHUNK {
                            continue;
                        }
                        false
                    }
                    Some(Err(err)) => {
                        let _ = sender.send(Err(err.into())).await;
                        return;
                    }
                    None => true,
                };
                if !chunk.is_empty() && sender.send(Ok(std::mem::take(&mut chunk))).await.is_err() {
                    // The reader went away.
                    return;
                }
                if done {
                    return;
                }
            }
        });
        Ok(receiver.boxed())
    }

    async fn points_after(
        &self,
        metric_id: i64,
        after: Option<(i64, DateTime<Utc>, f64)>,
        limit: i64,
    ) -> Result<Vec<HistoryPoint>, DbError> {
        let (step, at, value) = (after.map(|a| a.0), after.map(|a| a.1), after.map(|a| a.2));
        Ok(sqlx::query_as::<_, HistoryPoint>(
            "SELECT step, at, value FROM metric_points
             WHERE metric_id = $1 AND ($2::bigint IS NULL OR (step, at, value) > ($2, $3, $4))
             ORDER BY step, at, value LIMIT $5",
        )
        .bind(metric_id)
        .bind(step)
        .bind(at)
        .bind(value)
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }
}
