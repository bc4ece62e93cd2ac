//! Named, versioned environments and the build state of their images.

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::FromRow;
use trainyard_core::{EnvironmentSpec, Name};
use uuid::Uuid;

use crate::{Db, DbError};

/// One version of an environment.
#[derive(Debug, Clone, FromRow)]
pub struct Environment {
    /// Its id.
    pub id: Uuid,
    /// Its workspace.
    pub workspace_id: Uuid,
    /// Its name.
    pub name: String,
    /// 1 for the first registration, then one more each time.
    pub version: i32,
    /// Free text.
    pub description: Option<String>,
    /// What its image contains.
    pub spec: Json<EnvironmentSpec>,
    /// The image's tag.
    pub image_tag: String,
    /// When this version was registered.
    pub created_at: DateTime<Utc>,
    /// `building`, `ready` or `failed`; `None` until a run needs the image.
    pub image_state: Option<String>,
    /// Why the last build failed.
    pub image_error: Option<String>,
}

/// Build state of an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageState {
    /// Being built now.
    Building,
    /// Built and present on the node.
    Ready,
    /// The last build failed.
    Failed,
}

impl ImageState {
    fn as_str(self) -> &'static str {
        match self {
            ImageState::Building => "building",
            ImageState::Ready => "ready",
            ImageState::Failed => "failed",
        }
    }
}

macro_rules! columns {
    () => {
        "e.id, e.workspace_id, e.name, e.version, e.description, e.spec, e.image_tag, e.created_at,
         i.state AS image_state, i.error AS image_error"
    };
}

impl Db {
    /// Registers a new version of the environment `name` (1 if it is new).
    pub async fn register_environment(
        &self,
        workspace_id: Uuid,
        name: &Name,
        description: Option<&str>,
        spec: &EnvironmentSpec,
        image_tag: &str,
    ) -> Result<Environment, DbError> {
        let mut tx = self.pool().begin().await?;
        // Serializes registrations of one name so versions never collide.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1 || '/' || $2))")
            .bind(workspace_id.to_string())
            .bind(name.as_str())
            .execute(&mut *tx)
            .await?;
        let id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO environments (id, workspace_id, name, version, description, spec, image_tag)
             SELECT $1, $2, $3, coalesce(max(version), 0) + 1, $4, $5, $6
             FROM environments WHERE workspace_id = $2 AND name = $3",
        )
        .bind(id)
        .bind(workspace_id)
        .bind(name.as_str())
        .bind(description)
        .bind(Json(spec))
        .bind(image_tag)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.environment_by_id(id).await
    }

    async fn environment_by_id(&self, id: Uuid) -> Result<Environment, DbError> {
        sqlx::query_as::<_, Environment>(concat!(
            "SELECT ",
            columns!(),
            " FROM environments e LEFT JOIN images i ON i.tag = e.image_tag WHERE e.id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?
        .ok_or(DbError::NotFound("environment"))
    }

    /// Gets a version of an environment, the latest when `version` is `None`.
    pub async fn get_environment(
        &self,
        workspace_id: Uuid,
        name: &str,
        version: Option<i32>,
    ) -> Result<Environment, DbError> {
        sqlx::query_as::<_, Environment>(concat!(
            "SELECT ",
            columns!(),
            " FROM environments e LEFT JOIN images i ON i.tag = e.image_tag
             WHERE e.workspace_id = $1 AND e.name = $2 AND ($3::int IS NULL OR e.version = $3)
             ORDER BY e.version DESC LIMIT 1"
        ))
        .bind(workspace_id)
        .bind(name)
        .bind(version)
        .fetch_optional(self.pool())
        .await?
        .ok_or(DbError::NotFound("environment"))
    }

    /// The latest version of every environment of a workspace, by name.
    pub async fn list_environments(&self, workspace_id: Uuid) -> Result<Vec<Environment>, DbError> {
        Ok(sqlx::query_as::<_, Environment>(concat!(
            "SELECT DISTINCT ON (e.name) ",
            columns!(),
            " FROM environments e LEFT JOIN images i ON i.tag = e.image_tag
             WHERE e.workspace_id = $1 ORDER BY e.name, e.version DESC"
        ))
        .bind(workspace_id)
        .fetch_all(self.pool())
        .await?)
    }

    /// Records the build state of an image.
    pub async fn set_image_state(
        &self,
        tag: &str,
        state: ImageState,
        error: Option<&str>,
    ) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO images (tag, state, error) VALUES ($1, $2, $3)
             ON CONFLICT (tag) DO UPDATE SET state = $2, error = $3, updated_at = now()",
        )
        .bind(tag)
        .bind(state.as_str())
        .bind(error)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Records that `run_id`'s preparation is building the image `tag`.
    pub async fn start_image_build(&self, tag: &str, run_id: Uuid) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO images (tag, state, build_run_id) VALUES ($1, 'building', $2)
             ON CONFLICT (tag) DO UPDATE
               SET state = 'building', error = NULL, build_run_id = $2, updated_at = now()",
        )
        .bind(tag)
        .bind(run_id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The run that last built the image `tag`, when it belongs to
    /// `workspace_id` (another workspace's build log is not shown).
    pub async fn image_build_run(
        &self,
        workspace_id: Uuid,
        tag: &str,
    ) -> Result<Option<Uuid>, DbError> {
        Ok(sqlx::query_scalar(
            "SELECT r.id FROM images i JOIN runs r ON r.id = i.build_run_id
             WHERE i.tag = $1 AND r.workspace_id = $2",
        )
        .bind(tag)
        .bind(workspace_id)
        .fetch_optional(self.pool())
        .await?)
    }
}
