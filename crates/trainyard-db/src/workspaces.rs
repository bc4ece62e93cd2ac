//! Workspaces: the unit every other resource is scoped by.

use chrono::{DateTime, Utc};
use sqlx::FromRow;
use trainyard_core::Name;
use uuid::Uuid;

use crate::{Cursor, Db, DbError, Page};

/// A workspace row.
#[derive(Debug, Clone, FromRow)]
pub struct Workspace {
    /// Its id.
    pub id: Uuid,
    /// Its unique name.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

impl Workspace {
    fn cursor(&self) -> Cursor {
        Cursor {
            created_at: self.created_at,
            id: self.id,
        }
    }
}

impl Db {
    /// Creates a workspace; its name must be free.
    pub async fn create_workspace(
        &self,
        name: &Name,
        description: Option<&str>,
    ) -> Result<Workspace, DbError> {
        sqlx::query_as::<_, Workspace>(
            "INSERT INTO workspaces (id, name, description) VALUES ($1, $2, $3)
             RETURNING id, name, description, created_at",
        )
        .bind(Uuid::now_v7())
        .bind(name.as_str())
        .bind(description)
        .fetch_one(self.pool())
        .await
        .map_err(DbError::on_unique(
            "workspaces_name_key",
            "workspace",
            "name",
        ))
    }

    /// Finds a workspace by id or, failing that, by name.
    pub async fn find_workspace(&self, id_or_name: &str) -> Result<Workspace, DbError> {
        if let Some(workspace) = self.auth_cache.workspace(id_or_name) {
            return Ok(workspace);
        }
        let id = Uuid::parse_str(id_or_name).ok();
        let workspace = sqlx::query_as::<_, Workspace>(
            "SELECT id, name, description, created_at FROM workspaces
             WHERE id = $1 OR ($1 IS NULL AND name = $2)",
        )
        .bind(id)
        .bind(id_or_name)
        .fetch_optional(self.pool())
        .await?
        .ok_or(DbError::NotFound("workspace"))?;
        self.auth_cache.remember_workspace(&workspace);
        Ok(workspace)
    }

    /// Lists workspaces, newest first.
    pub async fn list_workspaces(
        &self,
        after: Option<Cursor>,
        limit: i64,
    ) -> Result<Page<Workspace>, DbError> {
        let rows = sqlx::query_as::<_, Workspace>(
            "SELECT id, name, description, created_at FROM workspaces
             WHERE ($1::timestamptz IS NULL OR (created_at, id) < ($1, $2))
             ORDER BY created_at DESC, id DESC LIMIT $3",
        )
        .bind(after.map(|c| c.created_at))
        .bind(after.map(|c| c.id))
        .bind(limit + 1)
        .fetch_all(self.pool())
        .await?;
        Ok(Page::from_rows(rows, limit, Workspace::cursor))
    }

    /// A workspace's limits on what its runs hold at once on compute
    /// targets: (most GPUs, most runs); `None` is unlimited.
    pub async fn workspace_quota(
        &self,
        workspace_id: Uuid,
    ) -> Result<(Option<i32>, Option<i32>), DbError> {
        sqlx::query_as("SELECT max_gpus, max_runs FROM workspaces WHERE id = $1")
            .bind(workspace_id)
            .fetch_optional(self.pool())
            .await?
            .ok_or(DbError::NotFound("workspace"))
    }

    /// Sets a workspace's limits; the next scheduling pass applies them.
    pub async fn set_workspace_quota(
        &self,
        workspace_id: Uuid,
        max_gpus: Option<i32>,
        max_runs: Option<i32>,
    ) -> Result<(), DbError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("UPDATE workspaces SET max_gpus = $2, max_runs = $3 WHERE id = $1")
            .bind(workspace_id)
            .bind(max_gpus)
            .bind(max_runs)
            .execute(&mut *tx)
            .await?;
        crate::compute::wake_scheduler(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }
}
