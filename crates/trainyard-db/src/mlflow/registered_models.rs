//! Registered models as MLflow sees them: names with a description, tags
//! and aliases, kept in `registered_models` (a trigger adds every name
//! Trainyard registers a version of), whose versions are Trainyard's model
//! versions ([`super::model_versions`]).

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{FromRow, QueryBuilder};
use std::collections::BTreeMap;
use trainyard_core::mlflow::search::{CatalogClause, CatalogSubject};
use uuid::Uuid;

use super::search::{push_tag_comparison, push_text_comparison};
use crate::{Db, DbError};

/// A registered model.
#[derive(Debug, Clone, FromRow)]
pub struct RegisteredModel {
    /// Its name.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// Labels.
    pub tags: Json<BTreeMap<String, String>>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it or one of its versions last changed.
    pub updated_at: DateTime<Utc>,
    /// Its aliases and the versions they point at.
    pub aliases: Json<Vec<(String, i32)>>,
}

/// A change to a registered model or a model version.
#[derive(Debug, Clone, Copy)]
pub enum VersionChange<'a> {
    /// New description.
    Description(&'a str),
    /// Set one tag.
    SetTag(&'a str, &'a str),
    /// Remove one tag.
    DeleteTag(&'a str),
}

macro_rules! model_columns {
    () => {
        "r.name, r.description, r.tags, r.created_at, r.updated_at,
         coalesce((SELECT jsonb_agg(jsonb_build_array(a.alias, a.version) ORDER BY a.alias)
                   FROM model_aliases a WHERE a.workspace_id = r.workspace_id AND a.name = r.name),
                  '[]') AS aliases"
    };
}

impl Db {
    /// Creates a registered model; its name must be free.
    pub async fn mlflow_create_registered_model(
        &self,
        workspace_id: Uuid,
        name: &str,
        description: Option<&str>,
        tags: &BTreeMap<String, String>,
    ) -> Result<RegisteredModel, DbError> {
        sqlx::query(
            "INSERT INTO registered_models (workspace_id, name, description, tags) VALUES ($1, $2, $3, $4)",
        )
        .bind(workspace_id)
        .bind(name)
        .bind(description)
        .bind(Json(tags))
        .execute(self.pool())
        .await
        .map_err(DbError::on_unique("registered_models_pkey", "registered model", "name"))?;
        self.mlflow_registered_model(workspace_id, name).await
    }

    /// A registered model by name.
    pub async fn mlflow_registered_model(
        &self,
        workspace_id: Uuid,
        name: &str,
    ) -> Result<RegisteredModel, DbError> {
        sqlx::query_as::<_, RegisteredModel>(concat!(
            "SELECT ",
            model_columns!(),
            " FROM registered_models r WHERE r.workspace_id = $1 AND r.name = $2"
        ))
        .bind(workspace_id)
        .bind(name)
        .fetch_optional(self.pool())
        .await?
        .ok_or(DbError::NotFound("registered model"))
    }

    /// Renames a registered model with its versions and aliases.
    pub async fn mlflow_rename_registered_model(
        &self,
        workspace_id: Uuid,
        name: &str,
        new_name: &str,
    ) -> Result<RegisteredModel, DbError> {
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query(
            "UPDATE registered_models SET name = $3, updated_at = clock_timestamp()
             WHERE workspace_id = $1 AND name = $2",
        )
        .bind(workspace_id)
        .bind(name)
        .bind(new_name)
        .execute(&mut *tx)
        .await
        .map_err(DbError::on_unique(
            "registered_models_pkey",
            "registered model",
            "new_name",
        ))?;
        if done.rows_affected() == 0 {
            return Err(DbError::NotFound("registered model"));
        }
        for table in [
            "UPDATE models SET name = $3 WHERE workspace_id = $1 AND name = $2",
            "UPDATE model_aliases SET name = $3 WHERE workspace_id = $1 AND name = $2",
        ] {
            sqlx::query(table)
                .bind(workspace_id)
                .bind(name)
                .bind(new_name)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        self.mlflow_registered_model(workspace_id, new_name).await
    }

    /// Deletes a registered model, its versions and aliases; returns the
    /// ids of the deleted versions (whose files the caller removes).
    pub async fn mlflow_delete_registered_model(
        &self,
        workspace_id: Uuid,
        name: &str,
    ) -> Result<Vec<Uuid>, DbError> {
        let mut tx = self.pool().begin().await?;
        let done =
            sqlx::query("DELETE FROM registered_models WHERE workspace_id = $1 AND name = $2")
                .bind(workspace_id)
                .bind(name)
                .execute(&mut *tx)
                .await?;
        if done.rows_affected() == 0 {
            return Err(DbError::NotFound("registered model"));
        }
        sqlx::query("DELETE FROM model_aliases WHERE workspace_id = $1 AND name = $2")
            .bind(workspace_id)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        let ids = sqlx::query_scalar(
            "DELETE FROM models WHERE workspace_id = $1 AND name = $2 RETURNING id",
        )
        .bind(workspace_id)
        .bind(name)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(ids)
    }

    /// Changes a registered model's description or one of its tags.
    pub async fn mlflow_change_registered_model(
        &self,
        workspace_id: Uuid,
        name: &str,
        change: VersionChange<'_>,
    ) -> Result<RegisteredModel, DbError> {
        let (description, set, delete) = change_parts(change);
        let done = sqlx::query(
            "UPDATE registered_models SET description = coalesce($3, description),
                 tags = (tags || coalesce($4, '{}'::jsonb)) - coalesce($5, ''),
                 updated_at = clock_timestamp()
             WHERE workspace_id = $1 AND name = $2",
        )
        .bind(workspace_id)
        .bind(name)
        .bind(description)
        .bind(set)
        .bind(delete)
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 0 {
            return Err(DbError::NotFound("registered model"));
        }
        self.mlflow_registered_model(workspace_id, name).await
    }

    /// One page of registered models matching the clauses, sorted by
    /// `(key, ascending)` pairs (`name`, `created`, `updated`), then name.
    pub async fn mlflow_search_registered_models(
        &self,
        workspace_id: Uuid,
        clauses: &[CatalogClause],
        order: &[(&'static str, bool)],
        offset: i64,
        limit: i64,
    ) -> Result<Vec<RegisteredModel>, DbError> {
        let mut query = QueryBuilder::new(concat!(
            "SELECT ",
            model_columns!(),
            " FROM registered_models r WHERE r.workspace_id = "
        ));
        query.push_bind(workspace_id);
        for clause in clauses {
            query.push(" AND ");
            match &clause.subject {
                CatalogSubject::Tag(key) => {
                    push_tag_comparison(&mut query, "r.tags", key, clause.op, &clause.value);
                    continue;
                }
                _ => {
                    query.push("r.name");
                }
            }
            push_text_comparison(&mut query, clause.op, &clause.value);
        }
        query.push(" ORDER BY ");
        for (key, ascending) in order {
            query.push(match *key {
                "created" => "r.created_at",
                "updated" => "r.updated_at",
                _ => "r.name",
            });
            query.push(if *ascending { " ASC, " } else { " DESC, " });
        }
        query.push("r.name OFFSET ");
        query.push_bind(offset);
        query.push(" LIMIT ");
        query.push_bind(limit);
        Ok(query
            .build_query_as::<RegisteredModel>()
            .fetch_all(self.pool())
            .await?)
    }
}

/// A change as the new description, the tags to add and the tag to remove.
pub(super) type ChangeParts<'a> = (
    Option<&'a str>,
    Option<Json<BTreeMap<&'a str, &'a str>>>,
    Option<&'a str>,
);

/// A change as the description, tags to add and tag to remove it amounts to.
pub(super) fn change_parts(change: VersionChange<'_>) -> ChangeParts<'_> {
    match change {
        VersionChange::Description(text) => (Some(text), None, None),
        VersionChange::SetTag(key, value) => {
            (None, Some(Json(BTreeMap::from([(key, value)]))), None)
        }
        VersionChange::DeleteTag(key) => (None, None, Some(key)),
    }
}
