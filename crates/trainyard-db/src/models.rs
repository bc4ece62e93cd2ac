//! The model registry: immutable, numbered versions of named models, with
//! lineage to the run, environment and datasets they came from.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use sqlx::FromRow;
use std::collections::BTreeMap;
use trainyard_core::Name;
use uuid::Uuid;

use crate::{Db, DbError};

/// One file of a model version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelFile {
    /// Its path, relative to the model's root.
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
}

/// A model version.
#[derive(Debug, Clone, FromRow)]
pub struct Model {
    /// Its id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// Its version: 1, then one more each registration.
    pub version: i32,
    /// Free text.
    pub description: Option<String>,
    /// Mutable labels.
    pub tags: Json<BTreeMap<String, String>>,
    /// Descriptive key-values.
    pub properties: Json<BTreeMap<String, String>>,
    /// The framework, e.g. `ScikitLearn`.
    pub framework: Option<String>,
    /// The framework's version.
    pub framework_version: Option<String>,
    /// What serving it needs (CPU, memory, GPU).
    pub resource_configuration: Option<Json<serde_json::Value>>,
    /// The run it came from.
    pub run_id: Option<Uuid>,
    /// The environment (name, version) of that run.
    pub environment: Option<Json<serde_json::Value>>,
    /// The dataset versions that run read.
    pub datasets: Json<serde_json::Value>,
    /// Its files.
    pub files: Json<Vec<ModelFile>>,
    /// Aliases pointing at this version.
    pub aliases: Vec<String>,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
}

/// What is needed to register a model version.
#[derive(Debug)]
pub struct NewModel<'a> {
    /// Its name.
    pub name: &'a Name,
    /// Its id, chosen by the caller (its files are stored under it first).
    pub id: Uuid,
    /// Free text.
    pub description: Option<&'a str>,
    /// Labels.
    pub tags: &'a BTreeMap<String, String>,
    /// Key-values.
    pub properties: &'a BTreeMap<String, String>,
    /// Framework.
    pub framework: Option<&'a str>,
    /// Framework version.
    pub framework_version: Option<&'a str>,
    /// Resource needs.
    pub resource_configuration: Option<serde_json::Value>,
    /// Source run.
    pub run_id: Option<Uuid>,
    /// Its environment.
    pub environment: Option<serde_json::Value>,
    /// Its datasets.
    pub datasets: serde_json::Value,
    /// Its files.
    pub files: Vec<ModelFile>,
}

macro_rules! columns {
    () => {
        "m.id, m.name, m.version, m.description, m.tags, m.properties, m.framework, m.framework_version,
         m.resource_configuration, m.run_id, m.environment, m.datasets, m.files, m.created_at,
         coalesce((SELECT array_agg(a.alias ORDER BY a.alias) FROM model_aliases a
                   WHERE a.workspace_id = m.workspace_id AND a.name = m.name AND a.version = m.version),
                  '{}') AS aliases"
    };
}

impl Db {
    /// Registers the next version of a model.
    pub async fn register_model(
        &self,
        workspace_id: Uuid,
        new: NewModel<'_>,
    ) -> Result<Model, DbError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('model/' || $1 || '/' || $2))")
            .bind(workspace_id.to_string())
            .bind(new.name.as_str())
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO models (id, workspace_id, name, version, description, tags, properties, framework,
                 framework_version, resource_configuration, run_id, environment, datasets, files)
             SELECT $1, $2, $3, coalesce(max(version), 0) + 1, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13
             FROM models WHERE workspace_id = $2 AND name = $3",
        )
        .bind(new.id)
        .bind(workspace_id)
        .bind(new.name.as_str())
        .bind(new.description)
        .bind(Json(new.tags))
        .bind(Json(new.properties))
        .bind(new.framework)
        .bind(new.framework_version)
        .bind(new.resource_configuration.map(Json))
        .bind(new.run_id)
        .bind(new.environment.map(Json))
        .bind(Json(new.datasets))
        .bind(Json(&new.files))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.model_by_id(workspace_id, new.id).await
    }

    async fn model_by_id(&self, workspace_id: Uuid, id: Uuid) -> Result<Model, DbError> {
        sqlx::query_as::<_, Model>(concat!(
            "SELECT ",
            columns!(),
            " FROM models m WHERE m.workspace_id = $1 AND m.id = $2"
        ))
        .bind(workspace_id)
        .bind(id)
        .fetch_optional(self.pool())
        .await?
        .ok_or(DbError::NotFound("model"))
    }

    /// Gets a model version: a given version, the one an alias points at, or the latest.
    pub async fn get_model(
        &self,
        workspace_id: Uuid,
        name: &str,
        version: Option<i32>,
        alias: Option<&str>,
    ) -> Result<Model, DbError> {
        let version = match alias {
            Some(alias) => Some(
                sqlx::query_scalar::<_, i32>(
                    "SELECT version FROM model_aliases WHERE workspace_id = $1 AND name = $2 AND alias = $3",
                )
                .bind(workspace_id)
                .bind(name)
                .bind(alias)
                .fetch_optional(self.pool())
                .await?
                .ok_or(DbError::NotFound("model alias"))?,
            ),
            None => version,
        };
        sqlx::query_as::<_, Model>(concat!(
            "SELECT ",
            columns!(),
            " FROM models m WHERE m.workspace_id = $1 AND m.name = $2 AND ($3::int IS NULL OR m.version = $3)
             ORDER BY m.version DESC LIMIT 1"
        ))
        .bind(workspace_id)
        .bind(name)
        .bind(version)
        .fetch_optional(self.pool())
        .await?
        .ok_or(DbError::NotFound("model"))
    }

    /// The latest version of every model (`name` = None), or every version of one.
    pub async fn list_models(
        &self,
        workspace_id: Uuid,
        name: Option<&str>,
    ) -> Result<Vec<Model>, DbError> {
        let query = match name {
            None => concat!(
                "SELECT DISTINCT ON (m.name) ",
                columns!(),
                " FROM models m WHERE m.workspace_id = $1 AND $2::text IS NULL ORDER BY m.name, m.version DESC"
            ),
            Some(_) => concat!(
                "SELECT ",
                columns!(),
                " FROM models m WHERE m.workspace_id = $1 AND m.name = $2 ORDER BY m.version DESC"
            ),
        };
        Ok(sqlx::query_as::<_, Model>(query)
            .bind(workspace_id)
            .bind(name)
            .fetch_all(self.pool())
            .await?)
    }

    /// Changes a version's tags and description (its files never change).
    pub async fn update_model(
        &self,
        workspace_id: Uuid,
        name: &str,
        version: i32,
        tags: Option<&BTreeMap<String, String>>,
        description: Option<&str>,
    ) -> Result<Model, DbError> {
        let id: Uuid = sqlx::query_scalar(
            "UPDATE models SET tags = coalesce($4, tags), description = coalesce($5, description)
             WHERE workspace_id = $1 AND name = $2 AND version = $3 RETURNING id",
        )
        .bind(workspace_id)
        .bind(name)
        .bind(version)
        .bind(tags.map(Json))
        .bind(description)
        .fetch_optional(self.pool())
        .await?
        .ok_or(DbError::NotFound("model"))?;
        self.model_by_id(workspace_id, id).await
    }

    /// Deletes a version and the aliases pointing at it; returns its id.
    pub async fn delete_model(
        &self,
        workspace_id: Uuid,
        name: &str,
        version: i32,
    ) -> Result<Uuid, DbError> {
        let mut tx = self.pool().begin().await?;
        let id: Uuid = sqlx::query_scalar(
            "DELETE FROM models WHERE workspace_id = $1 AND name = $2 AND version = $3 RETURNING id",
        )
        .bind(workspace_id)
        .bind(name)
        .bind(version)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(DbError::NotFound("model"))?;
        sqlx::query(
            "DELETE FROM model_aliases WHERE workspace_id = $1 AND name = $2 AND version = $3",
        )
        .bind(workspace_id)
        .bind(name)
        .bind(version)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Points `alias` at a version (moving it if it pointed elsewhere).
    pub async fn set_model_alias(
        &self,
        workspace_id: Uuid,
        name: &str,
        alias: &str,
        version: i32,
    ) -> Result<Model, DbError> {
        let model = self
            .get_model(workspace_id, name, Some(version), None)
            .await?;
        sqlx::query(
            "INSERT INTO model_aliases (workspace_id, name, alias, version) VALUES ($1, $2, $3, $4)
             ON CONFLICT (workspace_id, name, alias) DO UPDATE SET version = $4",
        )
        .bind(workspace_id)
        .bind(name)
        .bind(alias)
        .bind(version)
        .execute(self.pool())
        .await?;
        self.model_by_id(workspace_id, model.id).await
    }

    /// Removes an alias.
    pub async fn delete_model_alias(
        &self,
        workspace_id: Uuid,
        name: &str,
        alias: &str,
    ) -> Result<(), DbError> {
        let done = sqlx::query(
            "DELETE FROM model_aliases WHERE workspace_id = $1 AND name = $2 AND alias = $3",
        )
        .bind(workspace_id)
        .bind(name)
        .bind(alias)
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 0 {
            return Err(DbError::NotFound("model alias"));
        }
        Ok(())
    }

    /// The dataset versions a run read, as `{name, dataset, version}` objects.
    pub async fn run_dataset_lineage(&self, run_id: Uuid) -> Result<serde_json::Value, DbError> {
        let rows: Vec<(String, String, i32)> = sqlx::query_as(
            "SELECT i.name, d.name, d.version FROM run_inputs i JOIN datasets d ON d.id = i.dataset_id
             WHERE i.run_id = $1 ORDER BY i.name",
        )
        .bind(run_id)
        .fetch_all(self.pool())
        .await?;
        Ok(serde_json::Value::Array(
            rows.into_iter()
                .map(|(input, dataset, version)| serde_json::json!({ "input": input, "name": dataset, "version": version }))
                .collect(),
        ))
    }
}
