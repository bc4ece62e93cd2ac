//! Runs and their status history. Status changes go through
//! [`Db::transition_run`], which asks the core state machine and records the
//! change with its reason in the same transaction.

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{FromRow, Postgres, Transaction};
use std::collections::BTreeMap;
use trainyard_core::{RunPlacement, RunStatus, TagKey, TagValue, TransitionError};
use uuid::Uuid;

use crate::{Cursor, Db, DbError};

/// A run row.
#[derive(Debug, Clone, FromRow)]
pub struct Run {
    /// Its id.
    pub id: Uuid,
    /// The workspace it belongs to.
    pub workspace_id: Uuid,
    /// The experiment it belongs to.
    pub experiment_id: Uuid,
    /// A label chosen by its submitter.
    pub display_name: Option<String>,
    /// Stored status name; see [`Run::status`].
    #[sqlx(rename = "status")]
    pub status_name: String,
    /// Why it failed, when it did.
    pub error: Option<String>,
    /// What to run (script, environment, resources), as submitted.
    pub spec: Json<serde_json::Value>,
    /// Mutable labels.
    pub tags: Json<BTreeMap<String, String>>,
    /// Descriptive key-values.
    pub properties: Json<BTreeMap<String, String>>,
    /// When a user asked to cancel it while it was active.
    pub cancel_requested_at: Option<DateTime<Utc>>,
    /// When it was submitted.
    pub created_at: DateTime<Utc>,
    /// When its container started running.
    pub started_at: Option<DateTime<Utc>>,
    /// When it reached a terminal status.
    pub ended_at: Option<DateTime<Utc>>,
    /// The server replica that executes it, while it is active.
    pub owner: Option<String>,
    /// Its container, once created.
    pub container_id: Option<String>,
    /// Its process's exit code, once it exited.
    pub exit_code: Option<i32>,
    /// Whether it only records what a client logs (an MLflow run, a run with
    /// nothing to execute): never placed on a node, never reconciled.
    pub tracked_only: bool,
    /// Its node and what it holds there, once a compute target's scheduler
    /// placed it.
    pub placement: Option<Json<RunPlacement>>,
    /// Why it still waits, while it is Queued on a compute target.
    pub wait_reason: Option<String>,
}

impl Run {
    /// The run's status.
    pub fn status(&self) -> RunStatus {
        // Only transition_run writes the column, always from a RunStatus.
        RunStatus::parse(&self.status_name).unwrap_or(RunStatus::Failed)
    }

    pub(crate) fn cursor(&self) -> Cursor {
        Cursor {
            created_at: self.created_at,
            id: self.id,
        }
    }
}

/// One status change of a run.
#[derive(Debug, Clone, FromRow)]
pub struct RunEvent {
    /// Order of events of all runs.
    pub id: i64,
    /// The status before; `None` for the submission.
    pub from_status: Option<String>,
    /// The status after.
    pub to_status: String,
    /// Why it changed.
    pub reason: String,
    /// When it changed.
    pub at: DateTime<Utc>,
}

/// What is needed to submit a run.
#[derive(Debug)]
pub struct NewRun {
    /// The experiment it goes into.
    pub experiment_id: Uuid,
    /// A label.
    pub display_name: Option<String>,
    /// What to run.
    pub spec: serde_json::Value,
    /// Labels.
    pub tags: Vec<(TagKey, TagValue)>,
    /// Descriptive key-values.
    pub properties: Vec<(TagKey, TagValue)>,
    /// The dataset versions it reads (its lineage).
    pub inputs: Vec<trainyard_core::RunInput>,
}

/// The two key-value maps a run carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunMap {
    /// Mutable labels.
    Tags,
    /// Descriptive key-values.
    Properties,
}

/// The columns of [`Run`], for `concat!` into queries.
macro_rules! columns {
    () => {
        "id, workspace_id, experiment_id, display_name, status, error, spec, tags, properties,
         cancel_requested_at, created_at, started_at, ended_at, owner, container_id, exit_code,
         tracked_only, placement, wait_reason"
    };
}

pub(crate) use columns;

fn to_map(pairs: Vec<(TagKey, TagValue)>) -> BTreeMap<String, String> {
    pairs
        .into_iter()
        .map(|(k, v)| (k.into_string(), v.into_string()))
        .collect()
}

impl Db {
    /// Submits a run: stores it as Queued and records that first event.
    pub async fn create_run(&self, workspace_id: Uuid, new: NewRun) -> Result<Run, DbError> {
        let mut tx = self.pool().begin().await?;
        let run = sqlx::query_as::<_, Run>(concat!(
            "INSERT INTO runs (id, workspace_id, experiment_id, display_name, status, spec, tags, properties, tracked_only)
             SELECT $1, $2, e.id, $4, $5, $6, $7, $8, $6 = '{}'::jsonb FROM experiments e
             WHERE e.id = $3 AND e.workspace_id = $2
             RETURNING ",
            columns!()
        ))
        .bind(Uuid::now_v7())
        .bind(workspace_id)
        .bind(new.experiment_id)
        .bind(new.display_name)
        .bind(RunStatus::Queued.as_str())
        .bind(Json(new.spec))
        .bind(Json(to_map(new.tags)))
        .bind(Json(to_map(new.properties)))
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(DbError::NotFound("experiment"))?;
        crate::datasets::record_run_inputs(&mut tx, run.id, &new.inputs).await?;
        record_event(&mut tx, run.id, None, RunStatus::Queued, "submitted").await?;
        tx.commit().await?;
        Ok(run)
    }

    /// Gets a run of the workspace.
    pub async fn get_run(&self, workspace_id: Uuid, run_id: Uuid) -> Result<Run, DbError> {
        sqlx::query_as::<_, Run>(concat!(
            "SELECT ",
            columns!(),
            " FROM runs WHERE workspace_id = $1 AND id = $2"
        ))
        .bind(workspace_id)
        .bind(run_id)
        .fetch_optional(self.pool())
        .await?
        .ok_or(DbError::NotFound("run"))
    }

    /// Sets one key of a run's tags or properties.
    pub async fn set_run_entry(
        &self,
        workspace_id: Uuid,
        run_id: Uuid,
        map: RunMap,
        key: &TagKey,
        value: &TagValue,
    ) -> Result<Run, DbError> {
        let sql = match map {
            RunMap::Tags => concat!(
                "UPDATE runs SET tags = tags || jsonb_build_object($3::text, $4::text)
                 WHERE workspace_id = $1 AND id = $2 RETURNING ",
                columns!()
            ),
            RunMap::Properties => concat!(
                "UPDATE runs SET properties = properties || jsonb_build_object($3::text, $4::text)
                 WHERE workspace_id = $1 AND id = $2 RETURNING ",
                columns!()
            ),
        };
        sqlx::query_as::<_, Run>(sql)
            .bind(workspace_id)
            .bind(run_id)
            .bind(key.as_str())
            .bind(value.clone().into_string())
            .fetch_optional(self.pool())
            .await?
            .ok_or(DbError::NotFound("run"))
    }

    /// Removes one key of a run's tags or properties; a missing key is not an error.
    pub async fn delete_run_entry(
        &self,
        workspace_id: Uuid,
        run_id: Uuid,
        map: RunMap,
        key: &str,
    ) -> Result<Run, DbError> {
        let sql = match map {
            RunMap::Tags => concat!(
                "UPDATE runs SET tags = tags - $3::text
                 WHERE workspace_id = $1 AND id = $2 RETURNING ",
                columns!()
            ),
            RunMap::Properties => concat!(
                "UPDATE runs SET properties = properties - $3::text
                 WHERE workspace_id = $1 AND id = $2 RETURNING ",
                columns!()
            ),
        };
        sqlx::query_as::<_, Run>(sql)
            .bind(workspace_id)
            .bind(run_id)
            .bind(key)
            .fetch_optional(self.pool())
            .await?
            .ok_or(DbError::NotFound("run"))
    }

    /// Moves a run to `to` if the state machine allows it from its current
    /// status, recording the change and `reason`. `error` is kept on the run
    /// when it fails.
    pub async fn transition_run(
        &self,
        workspace_id: Uuid,
        run_id: Uuid,
        to: RunStatus,
        reason: &str,
        error: Option<&str>,
    ) -> Result<Run, DbError> {
        let mut tx = self.pool().begin().await?;
        let from = lock_run_status(&mut tx, workspace_id, run_id).await?;
        from.transition(to)?;
        let run = update_status(&mut tx, run_id, to, error).await?;
        record_event(&mut tx, run_id, Some(from), to, reason).await?;
        tx.commit().await?;
        Ok(run)
    }

    /// Cancels a run: a queued or tracked-only run ends Canceled at once; an
    /// active run is marked, and the executor that owns it stops its
    /// container. A run that has ended cannot be canceled.
    pub async fn cancel_run(
        &self,
        workspace_id: Uuid,
        run_id: Uuid,
        reason: &str,
    ) -> Result<Run, DbError> {
        let mut tx = self.pool().begin().await?;
        let from = lock_run_status(&mut tx, workspace_id, run_id).await?;
        let tracked_only: bool = sqlx::query_scalar("SELECT tracked_only FROM runs WHERE id = $1")
            .bind(run_id)
            .fetch_one(&mut *tx)
            .await?;
        let run = if from == RunStatus::Queued || (tracked_only && !from.is_terminal()) {
            let run = update_status(&mut tx, run_id, RunStatus::Canceled, None).await?;
            record_event(&mut tx, run_id, Some(from), RunStatus::Canceled, reason).await?;
            run
        } else if from.is_terminal() {
            return Err(TransitionError {
                from,
                to: RunStatus::Canceled,
            }
            .into());
        } else {
            sqlx::query_as::<_, Run>(concat!(
                "UPDATE runs SET cancel_requested_at = coalesce(cancel_requested_at, now())
                 WHERE id = $1 RETURNING ",
                columns!()
            ))
            .bind(run_id)
            .fetch_one(&mut *tx)
            .await?
        };
        tx.commit().await?;
        Ok(run)
    }

    /// A run's status history, oldest first.
    pub async fn run_events(
        &self,
        workspace_id: Uuid,
        run_id: Uuid,
    ) -> Result<Vec<RunEvent>, DbError> {
        // Checks the run is in the workspace before reading its history.
        self.get_run(workspace_id, run_id).await?;
        Ok(sqlx::query_as::<_, RunEvent>(
            "SELECT id, from_status, to_status, reason, at FROM run_events
             WHERE run_id = $1 ORDER BY id",
        )
        .bind(run_id)
        .fetch_all(self.pool())
        .await?)
    }
}

pub(crate) async fn lock_run_status(
    tx: &mut Transaction<'_, Postgres>,
    workspace_id: Uuid,
    run_id: Uuid,
) -> Result<RunStatus, DbError> {
    let status: String = sqlx::query_scalar(
        "SELECT status FROM runs WHERE workspace_id = $1 AND id = $2 FOR UPDATE",
    )
    .bind(workspace_id)
    .bind(run_id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(DbError::NotFound("run"))?;
    Ok(RunStatus::parse(&status).unwrap_or(RunStatus::Failed))
}

pub(crate) async fn update_status(
    tx: &mut Transaction<'_, Postgres>,
    run_id: Uuid,
    to: RunStatus,
    error: Option<&str>,
) -> Result<Run, DbError> {
    Ok(sqlx::query_as::<_, Run>(concat!(
        "UPDATE runs SET status = $2,
             error = coalesce($3, error),
             started_at = CASE WHEN $2 = 'Running' THEN clock_timestamp() ELSE started_at END,
             ended_at = CASE WHEN $4 THEN clock_timestamp() ELSE ended_at END
         WHERE id = $1 RETURNING ",
        columns!()
    ))
    .bind(run_id)
    .bind(to.as_str())
    .bind(error)
    .bind(to.is_terminal())
    .fetch_one(&mut **tx)
    .await?)
}

pub(crate) async fn record_event(
    tx: &mut Transaction<'_, Postgres>,
    run_id: Uuid,
    from: Option<RunStatus>,
    to: RunStatus,
    reason: &str,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO run_events (run_id, from_status, to_status, reason) VALUES ($1, $2, $3, $4)",
    )
    .bind(run_id)
    .bind(from.map(RunStatus::as_str))
    .bind(to.as_str())
    .bind(reason)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
