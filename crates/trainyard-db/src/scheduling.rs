//! What a scheduling pass reads and writes: the nodes of every compute
//! target with what their active runs hold, the runs queued on them, and
//! the workspaces' quotas; then the runs it places and why the others wait.
//!
//! A pass runs in one transaction holding an advisory lock, so two server
//! replicas never place runs from the same picture of free capacity.

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{FromRow, Postgres, Transaction};
use std::time::Duration;
use trainyard_core::{RunPlacement, RunStatus};
use uuid::Uuid;

use crate::runs::{columns, lock_run_status, record_event, update_status, Run};
use crate::{Db, DbError};

/// The advisory lock that serializes scheduling passes across replicas.
pub(crate) const PASS_LOCK: i64 = 0x7472_6169_6e79_6172; // "trainyar"

/// Statuses in which a placed run holds its node.
macro_rules! holding {
    () => {
        "status IN ('Preparing', 'Starting', 'Running', 'Finalizing')"
    };
}

/// Whether a run holds the node `$1` (its only node, or one of its ranks').
/// Every placed run has its rank 0's node in `node_id`: saying so lets the
/// partial index of placed active runs answer rather than a scan of all runs.
macro_rules! on_node {
    ($node:literal) => {
        concat!(
            "node_id IS NOT NULL AND (node_id = ",
            $node,
            " OR placement->'ranks' @> jsonb_build_array(jsonb_build_object('node_id', ",
            $node,
            "::text)))"
        )
    };
}
pub(crate) use on_node;

/// A node with its declared capacity and health.
#[derive(Debug, Clone, FromRow)]
pub struct SchedNode {
    /// Its id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// Its compute target's id.
    pub compute_target_id: Uuid,
    /// Its compute target's name.
    pub compute_target: String,
    /// `nvidia`, `simulated` or `none`.
    pub gpu_mode: String,
    /// GPUs installed.
    pub gpus: i32,
    /// CPU cores.
    pub cpus: f64,
    /// Memory, MiB.
    pub memory_mb: i64,
    /// `ready`, `cordoned`, `draining` or `down`.
    pub state: String,
    /// `unknown`, `up` or `down`.
    pub health: String,
    /// Its engine's endpoint (its address for distributed runs).
    pub endpoint: String,
}

/// What an active run holds on a node.
#[derive(Debug, Clone, FromRow)]
pub struct Holding {
    /// The run.
    pub run_id: Uuid,
    /// Its workspace.
    pub workspace_id: Uuid,
    /// Its node.
    pub node_id: Uuid,
    /// What it holds.
    pub placement: Json<RunPlacement>,
}

/// A run queued on a compute target.
#[derive(Debug, Clone, FromRow)]
pub struct QueuedRun {
    /// Its id.
    pub id: Uuid,
    /// Its workspace.
    pub workspace_id: Uuid,
    /// Its compute target's id, when the target still exists.
    pub compute_target_id: Option<Uuid>,
    /// The target's name, as the run names it.
    pub compute_target: String,
    /// What it executes (resources, priority).
    pub spec: Json<serde_json::Value>,
    /// When it was submitted.
    pub created_at: DateTime<Utc>,
    /// Passes that left it waiting.
    pub waited_passes: i32,
}

/// A workspace's limits.
#[derive(Debug, Clone, FromRow)]
pub struct WorkspaceLimits {
    /// Its id.
    pub id: Uuid,
    /// Most GPUs its runs hold at once.
    pub max_gpus: Option<i32>,
    /// Most runs it has placed at once.
    pub max_runs: Option<i32>,
}

/// One pass's picture of the cluster.
#[derive(Debug, Clone, Default)]
pub struct ClusterState {
    /// Every node.
    pub nodes: Vec<SchedNode>,
    /// What active runs hold on them.
    pub holdings: Vec<Holding>,
    /// Runs queued on compute targets, oldest first.
    pub queued: Vec<QueuedRun>,
    /// Workspaces with a quota.
    pub limits: Vec<WorkspaceLimits>,
}

/// An open scheduling pass: holds the pass lock until committed or dropped.
pub struct SchedulingPass {
    tx: Transaction<'static, Postgres>,
}

impl Db {
    /// Starts a pass, or returns `None` when another replica is in one.
    pub async fn begin_scheduling_pass(&self) -> Result<Option<SchedulingPass>, DbError> {
        let mut tx = self.pool().begin().await?;
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
            .bind(PASS_LOCK)
            .fetch_one(&mut *tx)
            .await?;
        Ok(locked.then_some(SchedulingPass { tx }))
    }

    /// Whether any run waits on a compute target (a cheap check before a pass).
    pub async fn runs_wait_on_targets(&self) -> Result<bool, DbError> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM runs WHERE status = 'Queued' AND compute_target IS NOT NULL)",
        )
        .fetch_one(self.pool())
        .await?)
    }

    /// The active runs holding each of `node_ids`, for the API's view of nodes.
    pub async fn holdings_on_nodes(&self, node_ids: &[Uuid]) -> Result<Vec<Holding>, DbError> {
        Ok(sqlx::query_as::<_, Holding>(concat!(
            "SELECT id AS run_id, workspace_id, node_id, placement FROM runs
             WHERE node_id IS NOT NULL AND placement IS NOT NULL AND ",
            holding!(),
            " AND (node_id = ANY($1) OR EXISTS (
                 SELECT 1 FROM jsonb_array_elements(placement->'ranks') AS rank
                 WHERE (rank->>'node_id')::uuid = ANY($1)))",
            " ORDER BY created_at, id"
        ))
        .bind(node_ids)
        .fetch_all(self.pool())
        .await?)
    }

    /// The runs queued on a compute target of a workspace, in submission order.
    pub async fn queue_of_target(
        &self,
        workspace_id: Uuid,
        target: &str,
        limit: i64,
    ) -> Result<Vec<Run>, DbError> {
        Ok(sqlx::query_as::<_, Run>(concat!(
            "SELECT ",
            columns!(),
            " FROM runs WHERE status = 'Queued' AND compute_target = $2 AND workspace_id = $1
             ORDER BY created_at, id LIMIT $3"
        ))
        .bind(workspace_id)
        .bind(target)
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }

    /// Puts back in the queue a placed run whose container was never created
    /// (or ends it Canceled when a cancel was asked for): its node stopped
    /// answering (`lost_node`, then marked down so the next pass places the
    /// run elsewhere), or the server stopped between placing and starting
    /// it. `false` when it has a container or had gone past starting.
    pub async fn requeue_unstarted(
        &self,
        workspace_id: Uuid,
        run_id: Uuid,
        lost_node: Option<Uuid>,
        reason: &str,
    ) -> Result<bool, DbError> {
        let mut tx = self.pool().begin().await?;
        let from = lock_run_status(&mut tx, workspace_id, run_id).await?;
        let (container, cancel_requested): (Option<String>, bool) = sqlx::query_as(
            "SELECT container_id, cancel_requested_at IS NOT NULL FROM runs WHERE id = $1",
        )
        .bind(run_id)
        .fetch_one(&mut *tx)
        .await?;
        // A container that may exist holds its GPUs until it is seen gone.
        if !matches!(from, RunStatus::Preparing | RunStatus::Starting) || container.is_some() {
            return Ok(false);
        }
        let to = if cancel_requested {
            RunStatus::Canceled
        } else {
            RunStatus::Queued
        };
        update_status(&mut tx, run_id, to, None).await?;
        record_event(&mut tx, run_id, Some(from), to, reason).await?;
        sqlx::query(
            "UPDATE runs SET owner = NULL, lease_expires_at = NULL, node_id = NULL,
                 placement = NULL, waited_passes = 0
             WHERE id = $1",
        )
        .bind(run_id)
        .execute(&mut *tx)
        .await?;
        if let Some(node_id) = lost_node {
            sqlx::query("UPDATE nodes SET health = 'down', health_reason = $2 WHERE id = $1")
                .bind(node_id)
                .bind(reason)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Whether `container` is left over: its run is known here, and ended or
    /// holds another container (a distributed run holds all of its ranks'). A run this database does not know (another
    /// server sharing the engine) never makes a container left over.
    pub async fn container_is_left_over(
        &self,
        run_id: Uuid,
        container: &str,
    ) -> Result<bool, DbError> {
        Ok(sqlx::query_scalar(concat!(
            "SELECT NOT ((container_id IS NOT DISTINCT FROM $2 OR placement ? 'ranks') AND ",
            holding!(),
            ") FROM runs WHERE id = $1"
        ))
        .bind(run_id)
        .bind(container)
        .fetch_optional(self.pool())
        .await?
        .unwrap_or(false))
    }

    /// The active runs placed on a node, for failing them when it is lost.
    pub async fn active_runs_on_node(&self, node_id: Uuid) -> Result<Vec<Run>, DbError> {
        Ok(sqlx::query_as::<_, Run>(concat!(
            "SELECT ",
            columns!(),
            " FROM runs WHERE ",
            on_node!("$1"),
            " AND ",
            holding!()
        ))
        .bind(node_id)
        .fetch_all(self.pool())
        .await?)
    }
}

impl SchedulingPass {
    /// Reads the nodes, what is held on them, up to `max_queued` queued runs
    /// (oldest first) and the workspaces' quotas.
    pub async fn cluster_state(&mut self, max_queued: i64) -> Result<ClusterState, DbError> {
        let nodes = sqlx::query_as::<_, SchedNode>(
            "SELECT n.id, n.name, t.id AS compute_target_id, t.name AS compute_target, n.gpu_mode,
                    n.gpus, n.cpus, n.memory_mb, n.state, n.health, n.endpoint
             FROM nodes n JOIN compute_targets t ON t.id = n.compute_target_id
             ORDER BY n.id",
        )
        .fetch_all(&mut *self.tx)
        .await?;
        let holdings = sqlx::query_as::<_, Holding>(concat!(
            "SELECT id AS run_id, workspace_id, node_id, placement FROM runs
             WHERE node_id IS NOT NULL AND placement IS NOT NULL AND ",
            holding!()
        ))
        .fetch_all(&mut *self.tx)
        .await?;
        let queued = sqlx::query_as::<_, QueuedRun>(
            "SELECT r.id, r.workspace_id, t.id AS compute_target_id, r.compute_target, r.spec,
                    r.created_at, r.waited_passes
             FROM runs r LEFT JOIN compute_targets t
               ON t.workspace_id = r.workspace_id AND t.name = r.compute_target
             WHERE r.status = 'Queued' AND r.compute_target IS NOT NULL AND r.cancel_requested_at IS NULL
             ORDER BY r.created_at, r.id LIMIT $1",
        )
        .bind(max_queued)
        .fetch_all(&mut *self.tx)
        .await?;
        let limits = sqlx::query_as::<_, WorkspaceLimits>(
            "SELECT id, max_gpus, max_runs FROM workspaces
             WHERE max_gpus IS NOT NULL OR max_runs IS NOT NULL",
        )
        .fetch_all(&mut *self.tx)
        .await?;
        Ok(ClusterState {
            nodes,
            holdings,
            queued,
            limits,
        })
    }

    /// Places a queued run: it becomes Preparing on its node, owned by
    /// `owner` until `lease` from now. `None` when it is no longer Queued
    /// (canceled meanwhile).
    pub async fn place(
        &mut self,
        run_id: Uuid,
        placement: &RunPlacement,
        owner: &str,
        lease: Duration,
    ) -> Result<Option<Run>, DbError> {
        let status: Option<String> =
            sqlx::query_scalar("SELECT status FROM runs WHERE id = $1 FOR UPDATE")
                .bind(run_id)
                .fetch_optional(&mut *self.tx)
                .await?;
        if status.as_deref() != Some(RunStatus::Queued.as_str()) {
            return Ok(None);
        }
        update_status(&mut self.tx, run_id, RunStatus::Preparing, None).await?;
        let gpus = match placement.gpus.as_slice() {
            [] => String::new(),
            gpus => {
                let list: Vec<String> = gpus.iter().map(u32::to_string).collect();
                format!(" (GPUs {})", list.join(","))
            }
        };
        let reason = format!("placed on node {}{gpus} by {owner}", placement.node);
        record_event(
            &mut self.tx,
            run_id,
            Some(RunStatus::Queued),
            RunStatus::Preparing,
            &reason,
        )
        .await?;
        let run = sqlx::query_as::<_, Run>(concat!(
            "UPDATE runs SET owner = $2, lease_expires_at = now() + $3 * interval '1 millisecond',
                 node_id = $4, placement = $5, wait_reason = NULL
             WHERE id = $1 RETURNING ",
            columns!()
        ))
        .bind(run_id)
        .bind(owner)
        .bind(lease.as_millis() as f64)
        .bind(placement.node_id)
        .bind(Json(placement))
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(Some(run))
    }

    /// Records why each run still waits, and that one more pass left it
    /// waiting. Rows whose reason is unchanged and whose count reached
    /// `count_up_to` are left alone, so a long queue is not rewritten each pass.
    pub async fn record_waits(
        &mut self,
        waits: &[(Uuid, String)],
        count_up_to: i32,
    ) -> Result<(), DbError> {
        if waits.is_empty() {
            return Ok(());
        }
        let (ids, reasons): (Vec<Uuid>, Vec<&str>) =
            waits.iter().map(|(id, r)| (*id, r.as_str())).unzip();
        sqlx::query(
            "UPDATE runs SET wait_reason = w.reason, waited_passes = waited_passes + 1
             FROM UNNEST($1::uuid[], $2::text[]) AS w(id, reason)
             WHERE runs.id = w.id AND runs.status = 'Queued'
               AND (runs.wait_reason IS DISTINCT FROM w.reason OR runs.waited_passes < $3)",
        )
        .bind(&ids)
        .bind(&reasons)
        .bind(count_up_to)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Ends the pass, releasing its lock.
    pub async fn commit(self) -> Result<(), DbError> {
        self.tx.commit().await?;
        Ok(())
    }
}
