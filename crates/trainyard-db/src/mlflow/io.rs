//! What a run declares it read (datasets, models: runs/log-inputs) and
//! produced (models: runs/outputs), kept as the client described it.

use serde::Deserialize;
use sqlx::types::Json;
use uuid::Uuid;

use crate::{Db, DbError};

/// Whether a run read or produced something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoDirection {
    /// runs/log-inputs.
    Input,
    /// runs/outputs.
    Output,
}

impl IoDirection {
    fn as_str(self) -> &'static str {
        match self {
            IoDirection::Input => "input",
            IoDirection::Output => "output",
        }
    }
}

/// One declared input or output of a run, read with the run
/// ([`super::RunWithData`]) as a `[direction, key, body]` array.
#[derive(Debug, Clone, Deserialize)]
pub struct RunIo {
    /// `input` or `output`.
    pub direction: String,
    /// What identifies it among the run's entries.
    pub key: String,
    /// The entry as the client sent it.
    pub body: serde_json::Value,
}

impl Db {
    /// Records a run's inputs or outputs; an entry already recorded (same
    /// key) is kept as it was, as MLflow does.
    pub async fn mlflow_log_run_io(
        &self,
        run_id: Uuid,
        direction: IoDirection,
        entries: Vec<(String, serde_json::Value)>,
    ) -> Result<(), DbError> {
        let (keys, bodies): (Vec<String>, Vec<Json<serde_json::Value>>) =
            entries.into_iter().map(|(k, b)| (k, Json(b))).unzip();
        sqlx::query(
            "INSERT INTO mlflow_run_io (run_id, direction, key, body)
             SELECT $1, $2, k, b FROM UNNEST($3::text[], $4::jsonb[]) WITH ORDINALITY AS u(k, b, n)
             ORDER BY n
             ON CONFLICT DO NOTHING",
        )
        .bind(run_id)
        .bind(direction.as_str())
        .bind(&keys)
        .bind(&bodies)
        .execute(self.pool())
        .await?;
        Ok(())
    }
}
