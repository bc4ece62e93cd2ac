//! Which source snapshots a workspace has uploaded. The bytes live once in
//! the object store under their digest; rows give workspaces access.

use chrono::{DateTime, Utc};
use sqlx::FromRow;
use uuid::Uuid;

use crate::{Db, DbError};

/// A snapshot a workspace uploaded.
#[derive(Debug, Clone, FromRow)]
pub struct Snapshot {
    /// SHA-256 of its canonical tar.gz.
    pub digest: String,
    /// Compressed size in bytes.
    pub size_bytes: i64,
    /// How many files it holds.
    pub file_count: i64,
    /// When it was first uploaded to this workspace.
    pub created_at: DateTime<Utc>,
}

impl Db {
    /// Records that `workspace_id` has the snapshot; uploading it again keeps
    /// the first row.
    pub async fn record_snapshot(
        &self,
        workspace_id: Uuid,
        digest: &str,
        size_bytes: i64,
        file_count: i64,
    ) -> Result<Snapshot, DbError> {
        sqlx::query(
            "INSERT INTO snapshots (workspace_id, digest, size_bytes, file_count) VALUES ($1, $2, $3, $4)
             ON CONFLICT (workspace_id, digest) DO NOTHING",
        )
        .bind(workspace_id)
        .bind(digest)
        .bind(size_bytes)
        .bind(file_count)
        .execute(self.pool())
        .await?;
        self.get_snapshot(workspace_id, digest).await
    }

    /// Gets a snapshot the workspace uploaded.
    pub async fn get_snapshot(
        &self,
        workspace_id: Uuid,
        digest: &str,
    ) -> Result<Snapshot, DbError> {
        sqlx::query_as::<_, Snapshot>(
            "SELECT digest, size_bytes, file_count, created_at FROM snapshots
             WHERE workspace_id = $1 AND digest = $2",
        )
        .bind(workspace_id)
        .bind(digest)
        .fetch_optional(self.pool())
        .await?
        .ok_or(DbError::NotFound("snapshot"))
    }
}
