//! The run queue: queued runs are claimed by one server replica with
//! `FOR UPDATE SKIP LOCKED`, held through a lease that the replica renews, and
//! adopted by another replica when the lease lapses.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgListener;
use std::time::Duration;
use trainyard_core::RunStatus;
use uuid::Uuid;

use crate::runs::{columns, lock_run_status, record_event, update_status, Run};
use crate::{Db, DbError};

/// The channel a trigger notifies when a run becomes Queued.
pub const RUN_QUEUED_CHANNEL: &str = "trainyard_run_queued";

impl Db {
    /// A listener on the queue channel. Register it before claiming, so no
    /// notification falls between a claim that found nothing and the wait.
    pub async fn listen_for_queued_runs(&self) -> Result<PgListener, DbError> {
        let mut listener = PgListener::connect_with(self.pool()).await?;
        listener.listen(RUN_QUEUED_CHANNEL).await?;
        Ok(listener)
    }

    /// Claims the oldest queued run that has something to execute (tracked-only
    /// runs are never claimed) for `owner`: it becomes Preparing, owned
    /// by `owner` until `lease` from now. Concurrent claimers never get the
    /// same run. The transaction is short and committed at once.
    pub async fn claim_queued_run(
        &self,
        owner: &str,
        lease: Duration,
    ) -> Result<Option<Run>, DbError> {
        let mut tx = self.pool().begin().await?;
        let Some((run_id, workspace_id)) = sqlx::query_as::<_, (Uuid, Uuid)>(
            "SELECT id, workspace_id FROM runs WHERE status = 'Queued' AND NOT tracked_only AND compute_target IS NULL
             ORDER BY created_at, id LIMIT 1 FOR UPDATE SKIP LOCKED",
        )
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Ok(None);
        };
        let from = lock_run_status(&mut tx, workspace_id, run_id).await?;
        from.transition(RunStatus::Preparing)?;
        update_status(&mut tx, run_id, RunStatus::Preparing, None).await?;
        record_event(
            &mut tx,
            run_id,
            Some(from),
            RunStatus::Preparing,
            &format!("placed on {owner}"),
        )
        .await?;
        let run = sqlx::query_as::<_, Run>(concat!(
            "UPDATE runs SET owner = $2, lease_expires_at = now() + $3 * interval '1 millisecond'
             WHERE id = $1 RETURNING ",
            columns!()
        ))
        .bind(run_id)
        .bind(owner)
        .bind(lease.as_millis() as f64)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(run))
    }

    /// Extends the lease of every active run `owner` holds.
    pub async fn renew_leases(&self, owner: &str, lease: Duration) -> Result<u64, DbError> {
        let done = sqlx::query(
            "UPDATE runs SET lease_expires_at = now() + $2 * interval '1 millisecond'
             WHERE owner = $1 AND status IN ('Preparing', 'Starting', 'Running', 'Finalizing')
               AND NOT tracked_only",
        )
        .bind(owner)
        .bind(lease.as_millis() as f64)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }

    /// Takes over the active runs that `owner` held before a restart, and
    /// those whose owner's lease lapsed, so this replica reconciles them.
    /// Tracked-only runs have no container and no owner: they are left alone.
    pub async fn adopt_active_runs(
        &self,
        owner: &str,
        lease: Duration,
    ) -> Result<Vec<Run>, DbError> {
        Ok(sqlx::query_as::<_, Run>(concat!(
            "UPDATE runs SET owner = $1, lease_expires_at = now() + $2 * interval '1 millisecond'
             WHERE status IN ('Preparing', 'Starting', 'Running', 'Finalizing') AND NOT tracked_only
               AND (owner = $1 OR owner IS NULL OR lease_expires_at < now())
             RETURNING ",
            columns!()
        ))
        .bind(owner)
        .bind(lease.as_millis() as f64)
        .fetch_all(self.pool())
        .await?)
    }

    /// Notes the container a run runs in.
    pub async fn set_run_container(&self, run_id: Uuid, container_id: &str) -> Result<(), DbError> {
        sqlx::query("UPDATE runs SET container_id = $2 WHERE id = $1")
            .bind(run_id)
            .bind(container_id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Notes a run's exit code.
    pub async fn set_run_exit_code(&self, run_id: Uuid, exit_code: i32) -> Result<(), DbError> {
        sqlx::query("UPDATE runs SET exit_code = $2 WHERE id = $1")
            .bind(run_id)
            .bind(exit_code)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// When a cancel was asked for, if it was.
    pub async fn cancel_requested_at(
        &self,
        run_id: Uuid,
    ) -> Result<Option<DateTime<Utc>>, DbError> {
        Ok(
            sqlx::query_scalar("SELECT cancel_requested_at FROM runs WHERE id = $1")
                .bind(run_id)
                .fetch_optional(self.pool())
                .await?
                .flatten(),
        )
    }

    /// Gets a run by id alone, for the executor (which works across workspaces).
    pub async fn get_run_for_executor(&self, run_id: Uuid) -> Result<Run, DbError> {
        sqlx::query_as::<_, Run>(concat!("SELECT ", columns!(), " FROM runs WHERE id = $1"))
            .bind(run_id)
            .fetch_optional(self.pool())
            .await?
            .ok_or(DbError::NotFound("run"))
    }
}
