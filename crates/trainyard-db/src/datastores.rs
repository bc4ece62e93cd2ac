//! Registered datastores (the built-in `default` has no row).

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::FromRow;
use trainyard_core::Name;
use uuid::Uuid;

use crate::{Db, DbError};

/// A registered datastore.
#[derive(Debug, Clone, FromRow)]
pub struct Datastore {
    /// Its name, unique in the workspace.
    pub name: String,
    /// `file`, `s3`, `az` or `gs`.
    pub kind: String,
    /// Where it is.
    pub url: String,
    /// How to reach it: option name → value or `{"env": NAME}`.
    pub options: Json<serde_json::Value>,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
}

impl Db {
    /// Registers a datastore; its name must be free.
    pub async fn create_datastore(
        &self,
        workspace_id: Uuid,
        name: &Name,
        kind: &str,
        url: &str,
        options: &serde_json::Value,
    ) -> Result<Datastore, DbError> {
        sqlx::query_as::<_, Datastore>(
            "INSERT INTO datastores (id, workspace_id, name, kind, url, options)
             VALUES ($1, $2, $3, $4, $5, $6)
             RETURNING name, kind, url, options, created_at",
        )
        .bind(Uuid::now_v7())
        .bind(workspace_id)
        .bind(name.as_str())
        .bind(kind)
        .bind(url)
        .bind(Json(options))
        .fetch_one(self.pool())
        .await
        .map_err(DbError::on_unique(
            "datastores_workspace_name_key",
            "datastore",
            "name",
        ))
    }

    /// Gets a registered datastore by name.
    pub async fn get_datastore(
        &self,
        workspace_id: Uuid,
        name: &str,
    ) -> Result<Datastore, DbError> {
        sqlx::query_as::<_, Datastore>(
            "SELECT name, kind, url, options, created_at FROM datastores WHERE workspace_id = $1 AND name = $2",
        )
        .bind(workspace_id)
        .bind(name)
        .fetch_optional(self.pool())
        .await?
        .ok_or(DbError::NotFound("datastore"))
    }

    /// The registered datastores of a workspace, by name.
    pub async fn list_datastores(&self, workspace_id: Uuid) -> Result<Vec<Datastore>, DbError> {
        Ok(sqlx::query_as::<_, Datastore>(
            "SELECT name, kind, url, options, created_at FROM datastores WHERE workspace_id = $1 ORDER BY name",
        )
        .bind(workspace_id)
        .fetch_all(self.pool())
        .await?)
    }
}
