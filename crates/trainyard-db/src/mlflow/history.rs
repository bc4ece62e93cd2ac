//! A scalar metric's history in MLflow's order (step, then time, then
//! value): in keyset pages, or whole, streamed as it is read (holding only
//! the points of a step that later pieces may still add to; see
//! [`crate::metrics::points`]).

use chrono::{DateTime, Utc};
use futures::stream::{self, BoxStream, StreamExt};
use futures::SinkExt;
use uuid::Uuid;

use crate::metrics::points::{self, After, ScalarPoint, PIECES_SETTINGS};
use crate::{Db, DbError};

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
    ) -> Result<Vec<ScalarPoint>, DbError> {
        let Some(id) = self.scalar_metric_id(run_id, key).await? else {
            return Ok(Vec::new());
        };
        let after = match after {
            Some((step, at, value)) => After::Point(ScalarPoint { step, at, value }),
            None => After::Start,
        };
        self.scalar_points_after(id, after, limit).await
    }

    /// Every point of a run's scalar metric, in order, from one query whose
    /// rows are handed on in chunks as they arrive (a bounded channel, so a
    /// slow reader holds back the query rather than filling memory).
    pub async fn mlflow_metric_history_stream(
        &self,
        run_id: Uuid,
        key: &str,
    ) -> Result<BoxStream<'static, Result<Vec<ScalarPoint>, DbError>>, DbError> {
        let Some(id) = self.scalar_metric_id(run_id, key).await? else {
            return Ok(stream::empty().boxed());
        };
        let (mut sender, receiver) = futures::channel::mpsc::channel(2);
        let db = self.clone();
        tokio::spawn(async move {
            // The transaction only reads: dropping it at the end ends it.
            let mut tx = match db.pool().begin_with(PIECES_SETTINGS).await {
                Ok(tx) => tx,
                Err(err) => {
                    let _ = sender.send(Err(err.into())).await;
                    return;
                }
            };
            let mut points = std::pin::pin!(points::all_points(&mut tx, id));
            let mut chunk = Vec::with_capacity(STREAM_CHUNK);
            loop {
                let done = match points.next().await {
                    Some(Ok(ready)) => {
                        chunk.extend(ready);
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
}
