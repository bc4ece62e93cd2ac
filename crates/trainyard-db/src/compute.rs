//! Compute targets (named pools of nodes) and their nodes (Docker engines).

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::FromRow;
use std::collections::BTreeMap;
use trainyard_core::Name;
use uuid::Uuid;

use crate::{Db, DbError};

/// Run statuses during which a run holds or waits for its compute target.
const ACTIVE_STATUSES: &[&str] = &["Queued", "Preparing", "Starting", "Running", "Finalizing"];

/// A compute target.
#[derive(Debug, Clone, FromRow)]
pub struct ComputeTarget {
    /// Its id.
    pub id: Uuid,
    /// Its name, unique in the workspace.
    pub name: String,
    /// Node labels such as a VM size.
    pub labels: Json<BTreeMap<String, String>>,
    /// Most nodes it may hold.
    pub max_nodes: i32,
    /// GPUs a run gets when it asks for none.
    pub default_gpus: i32,
    /// CPUs a run gets when it asks for none.
    pub default_cpus: f64,
    /// Memory (MiB) a run gets when it asks for none.
    pub default_memory_mb: i64,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// A compute target to create.
#[derive(Debug, Clone)]
pub struct NewComputeTarget<'a> {
    /// Its name.
    pub name: &'a Name,
    /// Node labels.
    pub labels: &'a BTreeMap<String, String>,
    /// Most nodes.
    pub max_nodes: i32,
    /// Default GPUs per run.
    pub default_gpus: i32,
    /// Default CPUs per run.
    pub default_cpus: f64,
    /// Default memory per run, MiB.
    pub default_memory_mb: i64,
}

/// A node: one Docker engine of a compute target.
#[derive(Debug, Clone, FromRow)]
pub struct Node {
    /// Its id.
    pub id: Uuid,
    /// Its compute target's name.
    pub compute_target: String,
    /// Its name, unique in the target.
    pub name: String,
    /// `unix:///…` or `tcp://host:port`.
    pub endpoint: String,
    /// TLS files (paths on the server's machine), for TCP.
    pub tls: Option<Json<NodeTls>>,
    /// `nvidia`, `simulated` or `none`.
    pub gpu_mode: String,
    /// GPUs.
    pub gpus: i32,
    /// CPU cores.
    pub cpus: f64,
    /// Memory, MiB.
    pub memory_mb: i64,
    /// `ready`, `cordoned`, `draining` or `down`.
    pub state: String,
    /// Why it is in that state, when it is not ready.
    pub state_reason: Option<String>,
    /// `unknown` (not checked yet), `up` or `down`, from the node monitor.
    pub health: String,
    /// Why it is down.
    pub health_reason: Option<String>,
    /// When its engine last answered.
    pub last_seen_at: Option<DateTime<Utc>>,
    /// Its engine's version, as last reported.
    pub engine_version: Option<String>,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
}

/// The client certificate files of a TCP engine with TLS.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NodeTls {
    /// The CA that signed the engine's certificate.
    pub ca: String,
    /// The client certificate.
    pub cert: String,
    /// The client key.
    pub key: String,
}

/// A node to register.
#[derive(Debug, Clone)]
pub struct NewNode<'a> {
    /// Its name.
    pub name: &'a Name,
    /// Its endpoint.
    pub endpoint: &'a str,
    /// TLS files.
    pub tls: Option<&'a NodeTls>,
    /// `nvidia`, `simulated` or `none`.
    pub gpu_mode: &'a str,
    /// GPUs.
    pub gpus: i32,
    /// CPU cores.
    pub cpus: f64,
    /// Memory, MiB.
    pub memory_mb: i64,
}

const TARGET_COLUMNS: &str =
    "id, name, labels, max_nodes, default_gpus, default_cpus, default_memory_mb, created_at";

const NODE_COLUMNS: &str = "n.id, t.name AS compute_target, n.name, n.endpoint, n.tls, n.gpu_mode,
     n.gpus, n.cpus, n.memory_mb, n.state, n.state_reason, n.health, n.health_reason, n.last_seen_at, n.engine_version,
     n.created_at";

impl Db {
    /// Creates a compute target; its name must be free.
    pub async fn create_compute_target(
        &self,
        workspace_id: Uuid,
        new: NewComputeTarget<'_>,
    ) -> Result<ComputeTarget, DbError> {
        sqlx::query_as::<_, ComputeTarget>(&format!(
            "INSERT INTO compute_targets
                 (id, workspace_id, name, labels, max_nodes, default_gpus, default_cpus, default_memory_mb)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {TARGET_COLUMNS}"
        ))
        .bind(Uuid::now_v7())
        .bind(workspace_id)
        .bind(new.name.as_str())
        .bind(Json(new.labels))
        .bind(new.max_nodes)
        .bind(new.default_gpus)
        .bind(new.default_cpus)
        .bind(new.default_memory_mb)
        .fetch_one(self.pool())
        .await
        .map_err(DbError::on_unique(
            "compute_targets_workspace_name_key",
            "compute target",
            "name",
        ))
    }

    /// A compute target by name.
    pub async fn get_compute_target(
        &self,
        workspace_id: Uuid,
        name: &str,
    ) -> Result<ComputeTarget, DbError> {
        sqlx::query_as::<_, ComputeTarget>(&format!(
            "SELECT {TARGET_COLUMNS} FROM compute_targets WHERE workspace_id = $1 AND name = $2"
        ))
        .bind(workspace_id)
        .bind(name)
        .fetch_optional(self.pool())
        .await?
        .ok_or(DbError::NotFound("compute target"))
    }

    /// The workspace's compute targets, by name.
    pub async fn list_compute_targets(
        &self,
        workspace_id: Uuid,
    ) -> Result<Vec<ComputeTarget>, DbError> {
        Ok(sqlx::query_as::<_, ComputeTarget>(&format!(
            "SELECT {TARGET_COLUMNS} FROM compute_targets WHERE workspace_id = $1 ORDER BY name"
        ))
        .bind(workspace_id)
        .fetch_all(self.pool())
        .await?)
    }

    /// Deletes a compute target and its nodes, unless a run that names it is
    /// not finished (checked in the same statement, so none slips in between).
    pub async fn delete_compute_target(
        &self,
        workspace_id: Uuid,
        name: &str,
    ) -> Result<(), DbError> {
        let deleted = sqlx::query(
            "DELETE FROM compute_targets t WHERE t.workspace_id = $1 AND t.name = $2
               AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.workspace_id = $1
                   AND r.spec->>'compute_target' = $2 AND r.status = ANY($3))",
        )
        .bind(workspace_id)
        .bind(name)
        .bind(ACTIVE_STATUSES)
        .execute(self.pool())
        .await?;
        if deleted.rows_affected() == 0 {
            self.get_compute_target(workspace_id, name).await?;
            return Err(DbError::Busy(
                "runs that use this compute target are not finished",
            ));
        }
        Ok(())
    }

    /// Registers a node in a compute target, unless the target is full.
    pub async fn create_node(
        &self,
        target: &ComputeTarget,
        new: NewNode<'_>,
    ) -> Result<Node, DbError> {
        let mut tx = self.pool().begin().await?;
        // Locks the target, so two registrations cannot both take the last place.
        sqlx::query("SELECT 1 FROM compute_targets WHERE id = $1 FOR UPDATE")
            .bind(target.id)
            .execute(&mut *tx)
            .await?;
        let held: i64 =
            sqlx::query_scalar("SELECT count(*) FROM nodes WHERE compute_target_id = $1")
                .bind(target.id)
                .fetch_one(&mut *tx)
                .await?;
        if held >= i64::from(target.max_nodes) {
            return Err(DbError::Busy(
                "the compute target holds max_nodes nodes already",
            ));
        }
        let id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO nodes (id, compute_target_id, name, endpoint, tls, gpu_mode, gpus, cpus, memory_mb)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(id)
        .bind(target.id)
        .bind(new.name.as_str())
        .bind(new.endpoint)
        .bind(new.tls.map(Json))
        .bind(new.gpu_mode)
        .bind(new.gpus)
        .bind(new.cpus)
        .bind(new.memory_mb)
        .execute(&mut *tx)
        .await
        .map_err(DbError::on_unique("nodes_target_name_key", "node", "name"))?;
        wake_scheduler(&mut tx).await?;
        tx.commit().await?;
        self.get_node(target, new.name.as_str()).await
    }

    /// A node of a compute target by name.
    pub async fn get_node(&self, target: &ComputeTarget, name: &str) -> Result<Node, DbError> {
        sqlx::query_as::<_, Node>(&format!(
            "SELECT {NODE_COLUMNS} FROM nodes n JOIN compute_targets t ON t.id = n.compute_target_id
             WHERE n.compute_target_id = $1 AND n.name = $2"
        ))
        .bind(target.id)
        .bind(name)
        .fetch_optional(self.pool())
        .await?
        .ok_or(DbError::NotFound("node"))
    }

    /// The nodes of a compute target, by name.
    pub async fn list_nodes(&self, target: &ComputeTarget) -> Result<Vec<Node>, DbError> {
        Ok(sqlx::query_as::<_, Node>(&format!(
            "SELECT {NODE_COLUMNS} FROM nodes n JOIN compute_targets t ON t.id = n.compute_target_id
             WHERE n.compute_target_id = $1 ORDER BY n.name"
        ))
        .bind(target.id)
        .fetch_all(self.pool())
        .await?)
    }

    /// Sets a node's state (`ready`, `cordoned`, `draining`) with a reason.
    pub async fn set_node_state(
        &self,
        target: &ComputeTarget,
        name: &str,
        state: &str,
        reason: Option<&str>,
    ) -> Result<Node, DbError> {
        let mut tx = self.pool().begin().await?;
        let updated = sqlx::query(
            "UPDATE nodes SET state = $3, state_reason = $4 WHERE compute_target_id = $1 AND name = $2",
        )
        .bind(target.id)
        .bind(name)
        .bind(state)
        .bind(reason)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(DbError::NotFound("node"));
        }
        wake_scheduler(&mut tx).await?;
        tx.commit().await?;
        self.get_node(target, name).await
    }

    /// Removes a node from its compute target; refused while runs hold it.
    /// Serialized with scheduling passes, so none places a run on it
    /// between the check and the removal.
    pub async fn delete_node(&self, target: &ComputeTarget, name: &str) -> Result<(), DbError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(crate::scheduling::PASS_LOCK)
            .execute(&mut *tx)
            .await?;
        let held: bool = sqlx::query_scalar(concat!(
            "SELECT EXISTS (SELECT 1 FROM runs, nodes n
             WHERE n.compute_target_id = $1 AND n.name = $2 AND ",
            crate::scheduling::on_node!("n.id"),
            " AND runs.status IN ('Preparing', 'Starting', 'Running', 'Finalizing'))"
        ))
        .bind(target.id)
        .bind(name)
        .fetch_one(&mut *tx)
        .await?;
        if held {
            return Err(DbError::Busy(
                "runs hold the node; drain it and wait for them to end",
            ));
        }
        let deleted = sqlx::query("DELETE FROM nodes WHERE compute_target_id = $1 AND name = $2")
            .bind(target.id)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        if deleted.rows_affected() == 0 {
            return Err(DbError::NotFound("node"));
        }
        Ok(())
    }
}

/// Where a node's engine is, for the node monitor.
#[derive(Debug, Clone, FromRow)]
pub struct NodeEndpoint {
    /// The node.
    pub id: Uuid,
    /// `unix:///…` or `tcp://host:port`.
    pub endpoint: String,
    /// TLS files.
    pub tls: Option<Json<NodeTls>>,
    /// Its health as last recorded.
    pub health: String,
}

impl Db {
    /// Every node of every workspace, for the node monitor.
    pub async fn node_endpoints(&self) -> Result<Vec<NodeEndpoint>, DbError> {
        Ok(sqlx::query_as::<_, NodeEndpoint>(
            "SELECT id, endpoint, tls, health FROM nodes ORDER BY id",
        )
        .fetch_all(self.pool())
        .await?)
    }

    /// Where one node's engine is.
    pub async fn node_endpoint(&self, id: Uuid) -> Result<NodeEndpoint, DbError> {
        sqlx::query_as::<_, NodeEndpoint>(
            "SELECT id, endpoint, tls, health FROM nodes WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?
        .ok_or(DbError::NotFound("node"))
    }

    /// Records that a node's engine answered; a node that was not up wakes
    /// the scheduling loops, as runs may fit there now.
    pub async fn node_answered(&self, id: Uuid, engine_version: &str) -> Result<(), DbError> {
        let mut tx = self.pool().begin().await?;
        let was_up: Option<bool> = sqlx::query_scalar(
            "UPDATE nodes SET health = 'up', health_reason = NULL, last_seen_at = now(),
                 engine_version = $2
             FROM (SELECT health = 'up' AS was_up FROM nodes WHERE id = $1 FOR UPDATE) AS before
             WHERE id = $1 RETURNING before.was_up",
        )
        .bind(id)
        .bind(engine_version)
        .fetch_optional(&mut *tx)
        .await?;
        if was_up == Some(false) {
            wake_scheduler(&mut tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Records that a node's engine did not answer, and why.
    pub async fn node_unreachable(&self, id: Uuid, reason: &str) -> Result<(), DbError> {
        sqlx::query("UPDATE nodes SET health = 'down', health_reason = $2 WHERE id = $1")
            .bind(id)
            .bind(reason)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}

/// Wakes the scheduling loops (they listen on the queue channel): capacity
/// changed, so waiting runs may fit now.
pub(crate) async fn wake_scheduler(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
) -> Result<(), DbError> {
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(crate::queue::RUN_QUEUED_CHANNEL)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
