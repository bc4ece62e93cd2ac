//! Runs as MLflow clients create and change them: tracked-only runs that
//! start Running, statuses the client sets, soft deletes, params (the run's
//! properties, which never change once logged) and tags.

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{FromRow, Postgres, Transaction};
use std::collections::BTreeMap;
use trainyard_core::mlflow::RUN_NAME_TAG;
use trainyard_core::RunStatus;
use uuid::Uuid;

use super::RunIo;
use crate::runs::{lock_run_status, record_event, Run};
use crate::{Db, DbError};

/// A run as MLflow clients see it.
#[derive(Debug, Clone, FromRow)]
pub struct TrackedRun {
    /// The run.
    #[sqlx(flatten)]
    pub run: Run,
    /// Whether its experiment is the workspace's `Default` (MLflow's "0").
    pub in_default_experiment: bool,
    /// When an MLflow client deleted it (it can be restored).
    pub deleted_at: Option<DateTime<Utc>>,
}

/// A run with what MLflow shows beside it: the latest point of each of its
/// scalar metrics and its declared inputs and outputs (runs/get,
/// runs/search).
#[derive(Debug, Clone)]
pub struct RunWithData {
    /// The run.
    pub tracked: TrackedRun,
    /// Its scalar metrics' latest points, in no particular order.
    pub latest_metrics: Vec<LatestPoint>,
    /// Its inputs and outputs, in the order they were declared.
    pub run_io: Json<Vec<RunIo>>,
}

/// What [`RunWithData`] adds to a run found already. The latest points come
/// as arrays of PostgreSQL's own types: no number or time is written out as
/// text on one side and parsed on the other, and NaN and infinities pass as
/// they are.
#[derive(Debug, FromRow)]
struct RunData {
    metric_keys: Vec<String>,
    metric_values: Vec<Option<f64>>,
    metric_ats: Vec<Option<DateTime<Utc>>>,
    metric_steps: Vec<Option<i64>>,
    run_io: Json<Vec<RunIo>>,
}

impl RunData {
    fn with(self, tracked: TrackedRun) -> RunWithData {
        let latest_metrics = self
            .metric_keys
            .into_iter()
            .zip(self.metric_values)
            .zip(self.metric_ats.into_iter().zip(self.metric_steps))
            .filter_map(|((key, value), (at, step))| {
                Some(LatestPoint {
                    key,
                    value: value?,
                    at,
                    step,
                })
            })
            .collect();
        RunWithData {
            tracked,
            latest_metrics,
            run_io: self.run_io,
        }
    }
}

/// The latest point of a run's scalar metric.
#[derive(Debug, Clone)]
pub struct LatestPoint {
    /// The metric's key.
    pub key: String,
    /// Its latest value.
    pub value: f64,
    /// When that value was logged.
    pub at: Option<DateTime<Utc>>,
    /// Its step.
    pub step: Option<i64>,
}

/// The columns of [`TrackedRun`], for queries `FROM runs`.
macro_rules! run_columns {
    () => {
        concat!(
            crate::runs::columns!(),
            ", deleted_at, ",
            crate::mlflow::runs::in_default_experiment!()
        )
    };
}

/// [`TrackedRun::in_default_experiment`] of the run named `runs`.
macro_rules! in_default_experiment {
    () => {
        "(SELECT e.name = 'Default' FROM experiments e WHERE e.id = runs.experiment_id)
           AS in_default_experiment"
    };
}

pub(super) use {in_default_experiment, run_columns};

/// What runs/update changes; absent fields stay as they are.
#[derive(Debug, Clone, Default)]
pub struct RunChange {
    /// The status a tracked-only run takes (ignored for an executed run,
    /// whose executor decides).
    pub status: Option<RunStatus>,
    /// When it ended (tracked-only runs).
    pub end_time: Option<DateTime<Utc>>,
    /// Its new name.
    pub name: Option<String>,
}

impl Db {
    /// A run of the workspace, deleted or not.
    pub async fn mlflow_run(
        &self,
        workspace_id: Uuid,
        run_id: Uuid,
    ) -> Result<TrackedRun, DbError> {
        sqlx::query_as::<_, TrackedRun>(concat!(
            "SELECT ",
            run_columns!(),
            " FROM runs WHERE workspace_id = $1 AND id = $2"
        ))
        .bind(workspace_id)
        .bind(run_id)
        .fetch_optional(self.pool())
        .await?
        .ok_or(DbError::NotFound("run"))
    }

    /// A run of the workspace with its metrics' latest points and its
    /// inputs and outputs, deleted or not.
    pub async fn mlflow_run_with_data(
        &self,
        workspace_id: Uuid,
        run_id: Uuid,
    ) -> Result<RunWithData, DbError> {
        let run = self.mlflow_run(workspace_id, run_id).await?;
        let mut found = runs_with_data(self.pool(), vec![run]).await?;
        found.pop().ok_or(DbError::NotFound("run"))
    }

    /// Whether a run of the workspace exists and is not deleted, so it may be written to.
    pub async fn mlflow_check_run_active(
        &self,
        workspace_id: Uuid,
        run_id: Uuid,
    ) -> Result<(), DbError> {
        let deleted: Option<bool> = sqlx::query_scalar(
            "SELECT deleted_at IS NOT NULL FROM runs WHERE workspace_id = $1 AND id = $2",
        )
        .bind(workspace_id)
        .bind(run_id)
        .fetch_optional(self.pool())
        .await?;
        match deleted {
            None => Err(DbError::NotFound("run")),
            Some(true) => Err(DbError::Deleted("run")),
            Some(false) => Ok(()),
        }
    }

    /// Applies runs/update. A tracked-only run moves by the tracked state
    /// machine, recording the change; an executed run keeps the status its
    /// executor gives it, and only its name changes.
    pub async fn mlflow_update_run(
        &self,
        workspace_id: Uuid,
        run_id: Uuid,
        change: RunChange,
    ) -> Result<TrackedRun, DbError> {
        let mut tx = self.pool().begin().await?;
        let from = lock_run_status(&mut tx, workspace_id, run_id).await?;
        let tracked_only: bool = sqlx::query_scalar("SELECT tracked_only FROM runs WHERE id = $1")
            .bind(run_id)
            .fetch_one(&mut *tx)
            .await?;
        if let Some(name) = &change.name {
            sqlx::query("UPDATE runs SET display_name = $2 WHERE id = $1")
                .bind(run_id)
                .bind(name)
                .execute(&mut *tx)
                .await?;
        }
        if tracked_only {
            if let Some(to) = change.status.filter(|to| *to != from) {
                from.transition_tracked(to)?;
                set_tracked_status(&mut tx, run_id, to, change.end_time).await?;
                record_event(&mut tx, run_id, Some(from), to, "set by an MLflow client").await?;
            } else if let Some(end) = change.end_time.filter(|_| from.is_terminal()) {
                sqlx::query("UPDATE runs SET ended_at = $2 WHERE id = $1")
                    .bind(run_id)
                    .bind(end)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        self.mlflow_run(workspace_id, run_id).await
    }

    /// Marks a run deleted (`true`) or restores it.
    pub async fn mlflow_set_run_deleted(
        &self,
        workspace_id: Uuid,
        run_id: Uuid,
        deleted: bool,
    ) -> Result<(), DbError> {
        let done = sqlx::query(
            "UPDATE runs SET deleted_at = CASE WHEN $3 THEN coalesce(deleted_at, now()) END
             WHERE workspace_id = $1 AND id = $2",
        )
        .bind(workspace_id)
        .bind(run_id)
        .bind(deleted)
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 0 {
            return Err(DbError::NotFound("run"));
        }
        self.forget_run_for_metrics(run_id);
        Ok(())
    }

    /// Logs params and sets tags of an active run in one transaction.
    /// Params never change: a key logged again with another value is refused
    /// (`Err(ParamChanged)`) and nothing is stored. The `mlflow.runName` tag
    /// is the run's display name.
    pub async fn mlflow_log_params_and_tags(
        &self,
        workspace_id: Uuid,
        run_id: Uuid,
        params: &[(String, String)],
        tags: &[(String, String)],
    ) -> Result<(), DbError> {
        let mut tx = self.pool().begin().await?;
        let row: Option<(Json<BTreeMap<String, String>>, bool)> = sqlx::query_as(
            "SELECT properties, deleted_at IS NOT NULL FROM runs
             WHERE workspace_id = $1 AND id = $2 FOR UPDATE",
        )
        .bind(workspace_id)
        .bind(run_id)
        .fetch_optional(&mut *tx)
        .await?;
        let (Json(existing), is_deleted) = row.ok_or(DbError::NotFound("run"))?;
        if is_deleted {
            return Err(DbError::Deleted("run"));
        }
        let mut new_params = BTreeMap::new();
        for (key, value) in params {
            match existing.get(key) {
                Some(old) if old != value => {
                    return Err(DbError::ParamChanged {
                        key: key.clone(),
                        old: old.clone(),
                        new: value.clone(),
                    })
                }
                Some(_) => {}
                None => {
                    new_params.insert(key.as_str(), value.as_str());
                }
            }
        }
        let name = tags
            .iter()
            .rev()
            .find(|(k, _)| k == RUN_NAME_TAG)
            .map(|(_, v)| v);
        let tags: BTreeMap<&str, &str> = tags
            .iter()
            .filter(|(k, _)| k != RUN_NAME_TAG)
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        sqlx::query(
            "UPDATE runs SET properties = properties || $2, tags = tags || $3,
                 display_name = coalesce($4, display_name)
             WHERE id = $1",
        )
        .bind(run_id)
        .bind(Json(&new_params))
        .bind(Json(&tags))
        .bind(name)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes a tag of an active run; a tag the run does not have is not found.
    pub async fn mlflow_delete_run_tag(
        &self,
        workspace_id: Uuid,
        run_id: Uuid,
        key: &str,
    ) -> Result<(), DbError> {
        let done = sqlx::query(
            "UPDATE runs SET tags = tags - $3::text
             WHERE workspace_id = $1 AND id = $2 AND deleted_at IS NULL AND tags ? $3",
        )
        .bind(workspace_id)
        .bind(run_id)
        .bind(key)
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 0 {
            self.mlflow_check_run_active(workspace_id, run_id).await?;
            return Err(DbError::NotFound("tag"));
        }
        Ok(())
    }
}

/// Moves a tracked-only run to `to`: ending it notes when, resuming it
/// clears the end.
async fn set_tracked_status(
    tx: &mut Transaction<'_, Postgres>,
    run_id: Uuid,
    to: RunStatus,
    end_time: Option<DateTime<Utc>>,
) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE runs SET status = $2,
             ended_at = CASE WHEN $3 THEN coalesce($4, clock_timestamp()) END
         WHERE id = $1",
    )
    .bind(run_id)
    .bind(to.as_str())
    .bind(to.is_terminal())
    .bind(end_time)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Runs found already, with their metrics' latest points and their inputs
/// and outputs, in the same order. Metrics without a latest value are
/// skipped when the rows are read, not in the scan: a scan condition that
/// implies the partial index on metric values lets statistics that lag
/// behind new runs pick a scan of that whole index for each run.
pub(super) async fn runs_with_data(
    db: impl sqlx::PgExecutor<'_>,
    runs: Vec<TrackedRun>,
) -> Result<Vec<RunWithData>, DbError> {
    let ids: Vec<Uuid> = runs.iter().map(|r| r.run.id).collect();
    let data = sqlx::query_as::<_, RunData>(
        "SELECT latest.*,
                (SELECT coalesce(json_agg(json_build_array(io.direction, io.key, io.body)
                            ORDER BY io.at, io.key), '[]')
                   FROM mlflow_run_io io WHERE io.run_id = runs.id) AS run_io
           FROM UNNEST($1::uuid[]) WITH ORDINALITY AS runs(id, position)
          CROSS JOIN LATERAL (SELECT coalesce(array_agg(m.name), '{}') AS metric_keys,
                coalesce(array_agg(m.latest_value), '{}') AS metric_values,
                coalesce(array_agg(m.latest_at), '{}') AS metric_ats,
                coalesce(array_agg(m.latest_step), '{}') AS metric_steps
                FROM metrics m WHERE m.run_id = runs.id AND m.kind = 'scalar') AS latest
          ORDER BY runs.position",
    )
    .bind(&ids)
    .fetch_all(db)
    .await?;
    Ok(runs
        .into_iter()
        .zip(data)
        .map(|(tracked, data)| data.with(tracked))
        .collect())
}
