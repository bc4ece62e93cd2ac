//! Multipart uploads in flight: the artifact key they will write, and how
//! many parts the client announced. The id is the secret in the part URLs.

use sqlx::FromRow;
use uuid::Uuid;

use crate::{Db, DbError};

/// A multipart upload in flight.
#[derive(Debug, Clone, FromRow)]
pub struct Upload {
    /// Its id, a random secret.
    pub id: Uuid,
    /// The workspace it writes into.
    pub workspace_id: Uuid,
    /// The storage key the assembled file goes to.
    pub storage_key: String,
    /// How many parts the client announced.
    pub parts: i32,
}

impl Db {
    /// Starts a multipart upload to `storage_key`.
    pub async fn mlflow_create_upload(
        &self,
        workspace_id: Uuid,
        storage_key: &str,
        parts: i32,
    ) -> Result<Upload, DbError> {
        Ok(sqlx::query_as::<_, Upload>(
            "INSERT INTO mlflow_uploads (id, workspace_id, storage_key, parts) VALUES ($1, $2, $3, $4)
             RETURNING id, workspace_id, storage_key, parts",
        )
        // Random, not time-ordered: the id is what lets a part in.
        .bind(Uuid::new_v4())
        .bind(workspace_id)
        .bind(storage_key)
        .bind(parts)
        .fetch_one(self.pool())
        .await?)
    }

    /// An upload in flight, by its id alone (parts come without credentials).
    pub async fn mlflow_upload(&self, id: Uuid) -> Result<Upload, DbError> {
        sqlx::query_as::<_, Upload>(
            "SELECT id, workspace_id, storage_key, parts FROM mlflow_uploads WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?
        .ok_or(DbError::NotFound("upload"))
    }

    /// Ends an upload of the workspace (completed or aborted) and returns it.
    pub async fn mlflow_finish_upload(
        &self,
        workspace_id: Uuid,
        id: Uuid,
    ) -> Result<Upload, DbError> {
        sqlx::query_as::<_, Upload>(
            "DELETE FROM mlflow_uploads WHERE workspace_id = $1 AND id = $2
             RETURNING id, workspace_id, storage_key, parts",
        )
        .bind(workspace_id)
        .bind(id)
        .fetch_optional(self.pool())
        .await?
        .ok_or(DbError::NotFound("upload"))
    }
}
