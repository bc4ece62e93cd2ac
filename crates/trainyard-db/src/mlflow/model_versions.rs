//! Model versions as MLflow sees them: Trainyard's model versions, with
//! MLflow's stage, source URI and logged model kept beside them.

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{FromRow, QueryBuilder};
use std::collections::BTreeMap;
use trainyard_core::mlflow::search::{CatalogClause, CatalogSubject};
use uuid::Uuid;

use super::registered_models::{change_parts, VersionChange};
use super::search::{push_tag_comparison, push_text_comparison};
use crate::models::ModelFile;
use crate::{Db, DbError};

/// A model version, with what MLflow keeps of it.
#[derive(Debug, Clone, FromRow)]
pub struct ModelVersion {
    /// Its Trainyard id (its files are stored under `models/<id>`).
    pub id: Uuid,
    /// Its model's name.
    pub name: String,
    /// Its number.
    pub version: i32,
    /// Free text.
    pub description: Option<String>,
    /// Labels.
    pub tags: Json<BTreeMap<String, String>>,
    /// The run it came from.
    pub run_id: Option<Uuid>,
    /// The URI its files were copied from, as the client gave it.
    pub source: Option<String>,
    /// `None`, `Staging`, `Production` or `Archived`.
    pub stage: String,
    /// The MLflow logged model it registers.
    pub logged_model_id: Option<Uuid>,
    /// Its files.
    pub files: Json<Vec<ModelFile>>,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Aliases pointing at it.
    pub aliases: Vec<String>,
}

/// A model version to register (its files already copied under `models/<id>`).
#[derive(Debug)]
pub struct NewModelVersion<'a> {
    /// Its id.
    pub id: Uuid,
    /// Its model's name; the registered model is created if it does not exist.
    pub name: &'a str,
    /// Free text.
    pub description: Option<&'a str>,
    /// Labels.
    pub tags: &'a BTreeMap<String, String>,
    /// The source run.
    pub run_id: Option<Uuid>,
    /// The source URI.
    pub source: &'a str,
    /// The logged model it registers.
    pub logged_model_id: Option<Uuid>,
    /// That run's environment (`{name, version}`), for lineage.
    pub environment: Option<serde_json::Value>,
    /// That run's datasets, for lineage.
    pub datasets: serde_json::Value,
    /// Its files.
    pub files: Vec<ModelFile>,
}

macro_rules! version_columns {
    () => {
        "m.id, m.name, m.version, m.description, m.tags, m.run_id, m.source, m.stage, m.logged_model_id,
         m.files, m.created_at, coalesce(m.updated_at, m.created_at) AS updated_at,
         coalesce((SELECT array_agg(a.alias ORDER BY a.alias) FROM model_aliases a
                   WHERE a.workspace_id = m.workspace_id AND a.name = m.name AND a.version = m.version),
                  '{}') AS aliases"
    };
}

impl Db {
    /// Registers the next version of a model (creating the registered model
    /// when needed) with MLflow's source and logged model.
    pub async fn mlflow_create_model_version(
        &self,
        workspace_id: Uuid,
        new: NewModelVersion<'_>,
    ) -> Result<ModelVersion, DbError> {
        let mut tx = self.pool().begin().await?;
        // The same lock Trainyard's own registration takes, so numbers never collide.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('model/' || $1 || '/' || $2))")
            .bind(workspace_id.to_string())
            .bind(new.name)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO models (id, workspace_id, name, version, description, tags, run_id, environment,
                 datasets, files, source, logged_model_id, updated_at)
             SELECT $1, $2, $3, coalesce(max(version), 0) + 1, $4, $5, $6, $7, $8, $9, $10, $11, clock_timestamp()
             FROM models WHERE workspace_id = $2 AND name = $3",
        )
        .bind(new.id)
        .bind(workspace_id)
        .bind(new.name)
        .bind(new.description)
        .bind(Json(new.tags))
        .bind(new.run_id)
        .bind(new.environment.map(Json))
        .bind(Json(new.datasets))
        .bind(Json(&new.files))
        .bind(new.source)
        .bind(new.logged_model_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.mlflow_model_version_by_id(workspace_id, new.id).await
    }

    /// A model version by its Trainyard id.
    pub async fn mlflow_model_version_by_id(
        &self,
        workspace_id: Uuid,
        id: Uuid,
    ) -> Result<ModelVersion, DbError> {
        sqlx::query_as::<_, ModelVersion>(concat!(
            "SELECT ",
            version_columns!(),
            " FROM models m WHERE m.workspace_id = $1 AND m.id = $2"
        ))
        .bind(workspace_id)
        .bind(id)
        .fetch_optional(self.pool())
        .await?
        .ok_or(DbError::NotFound("model version"))
    }

    /// A model version by number, or the one an alias points at.
    pub async fn mlflow_model_version(
        &self,
        workspace_id: Uuid,
        name: &str,
        version: Option<i32>,
        alias: Option<&str>,
    ) -> Result<ModelVersion, DbError> {
        sqlx::query_as::<_, ModelVersion>(concat!(
            "SELECT ",
            version_columns!(),
            " FROM models m WHERE m.workspace_id = $1 AND m.name = $2
               AND m.version = coalesce($3, (SELECT a.version FROM model_aliases a
                   WHERE a.workspace_id = $1 AND a.name = $2 AND a.alias = $4))"
        ))
        .bind(workspace_id)
        .bind(name)
        .bind(version)
        .bind(alias)
        .fetch_optional(self.pool())
        .await?
        .ok_or(DbError::NotFound("model version"))
    }

    /// The versions of some models: for each model and stage, only the
    /// latest when `latest_per_stage`, else all, newest first.
    pub async fn mlflow_versions_of(
        &self,
        workspace_id: Uuid,
        names: &[String],
        latest_per_stage: bool,
    ) -> Result<Vec<ModelVersion>, DbError> {
        Ok(sqlx::query_as::<_, ModelVersion>(concat!(
            "SELECT * FROM (SELECT DISTINCT ON (m.name, CASE WHEN $3 THEN m.stage ELSE m.id::text END) ",
            version_columns!(),
            " FROM models m WHERE m.workspace_id = $1 AND m.name = ANY($2)
              ORDER BY m.name, CASE WHEN $3 THEN m.stage ELSE m.id::text END, m.version DESC) v
             ORDER BY name, version DESC"
        ))
        .bind(workspace_id)
        .bind(names)
        .bind(latest_per_stage)
        .fetch_all(self.pool())
        .await?)
    }

    /// Changes a version's description or one of its tags.
    pub async fn mlflow_change_model_version(
        &self,
        workspace_id: Uuid,
        name: &str,
        version: i32,
        change: VersionChange<'_>,
    ) -> Result<ModelVersion, DbError> {
        let (description, set, delete) = change_parts(change);
        let id: Uuid = sqlx::query_scalar(
            "UPDATE models SET description = coalesce($4, description),
                 tags = (tags || coalesce($5, '{}'::jsonb)) - coalesce($6, ''),
                 updated_at = clock_timestamp()
             WHERE workspace_id = $1 AND name = $2 AND version = $3 RETURNING id",
        )
        .bind(workspace_id)
        .bind(name)
        .bind(version)
        .bind(description)
        .bind(set)
        .bind(delete)
        .fetch_optional(self.pool())
        .await?
        .ok_or(DbError::NotFound("model version"))?;
        self.mlflow_model_version_by_id(workspace_id, id).await
    }

    /// Moves a version to a stage; with `archive_existing`, the other
    /// versions in that stage move to `Archived`.
    pub async fn mlflow_transition_stage(
        &self,
        workspace_id: Uuid,
        name: &str,
        version: i32,
        stage: &str,
        archive_existing: bool,
    ) -> Result<ModelVersion, DbError> {
        let mut tx = self.pool().begin().await?;
        let id: Uuid = sqlx::query_scalar(
            "UPDATE models SET stage = $4, updated_at = clock_timestamp()
             WHERE workspace_id = $1 AND name = $2 AND version = $3 RETURNING id",
        )
        .bind(workspace_id)
        .bind(name)
        .bind(version)
        .bind(stage)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(DbError::NotFound("model version"))?;
        if archive_existing && matches!(stage, "Staging" | "Production") {
            sqlx::query(
                "UPDATE models SET stage = 'Archived', updated_at = clock_timestamp()
                 WHERE workspace_id = $1 AND name = $2 AND version <> $3 AND stage = $4",
            )
            .bind(workspace_id)
            .bind(name)
            .bind(version)
            .bind(stage)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.mlflow_model_version_by_id(workspace_id, id).await
    }

    /// One page of model versions matching the clauses, sorted by
    /// `(key, ascending)` pairs (`name`, `version`, `created`, `updated`).
    pub async fn mlflow_search_model_versions(
        &self,
        workspace_id: Uuid,
        clauses: &[CatalogClause],
        order: &[(&'static str, bool)],
        offset: i64,
        limit: i64,
    ) -> Result<Vec<ModelVersion>, DbError> {
        let mut query = QueryBuilder::new(concat!(
            "SELECT ",
            version_columns!(),
            " FROM models m WHERE m.workspace_id = "
        ));
        query.push_bind(workspace_id);
        for clause in clauses {
            query.push(" AND ");
            match &clause.subject {
                CatalogSubject::Tag(key) => {
                    push_tag_comparison(&mut query, "m.tags", key, clause.op, &clause.value);
                    continue;
                }
                CatalogSubject::RunId => {
                    query.push("m.run_id::text");
                }
                CatalogSubject::SourcePath => {
                    query.push("m.source");
                }
                CatalogSubject::Version => {
                    query.push("m.version");
                }
                _ => {
                    query.push("m.name");
                }
            }
            push_text_comparison(&mut query, clause.op, &clause.value);
        }
        query.push(" ORDER BY ");
        for (key, ascending) in order {
            query.push(match *key {
                "version" => "m.version",
                "created" => "m.created_at",
                "updated" => "coalesce(m.updated_at, m.created_at)",
                _ => "m.name",
            });
            query.push(if *ascending { " ASC, " } else { " DESC, " });
        }
        query.push("m.name, m.version DESC OFFSET ");
        query.push_bind(offset);
        query.push(" LIMIT ");
        query.push_bind(limit);
        Ok(query
            .build_query_as::<ModelVersion>()
            .fetch_all(self.pool())
            .await?)
    }
}
