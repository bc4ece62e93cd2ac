//! MLflow 3's logged models: what `mlflow.<flavor>.log_model` creates before
//! any registration, with its params, tags, status and where its files are.

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{FromRow, QueryBuilder};
use std::collections::BTreeMap;
use trainyard_core::mlflow::search::{CatalogClause, CatalogSubject};
use uuid::Uuid;

use super::search::{push_tag_comparison, push_text_comparison};
use crate::{Db, DbError};

/// A logged model.
#[derive(Debug, Clone, FromRow)]
pub struct LoggedModel {
    /// Its id (MLflow shows it as `m-<hex>`).
    pub id: Uuid,
    /// Its experiment.
    pub experiment_id: Uuid,
    /// Whether that is the workspace's `Default` (MLflow's "0").
    pub in_default_experiment: bool,
    /// The run that logged it.
    pub run_id: Option<Uuid>,
    /// Its name (`model`, as passed to `log_model`).
    pub name: String,
    /// Free-form type.
    pub model_type: Option<String>,
    /// `LOGGED_MODEL_PENDING`, `LOGGED_MODEL_READY` or `LOGGED_MODEL_UPLOAD_FAILED`.
    pub status: String,
    /// Why it failed, when it did.
    pub status_message: Option<String>,
    /// Its params.
    pub params: Json<BTreeMap<String, String>>,
    /// Its tags.
    pub tags: Json<BTreeMap<String, String>>,
    /// The storage prefix of its files.
    pub artifact_prefix: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// A logged model to create.
#[derive(Debug)]
pub struct NewLoggedModel<'a> {
    /// Its id.
    pub id: Uuid,
    /// Its experiment.
    pub experiment_id: Uuid,
    /// The run that logs it.
    pub run_id: Option<Uuid>,
    /// Its name.
    pub name: &'a str,
    /// Free-form type.
    pub model_type: Option<&'a str>,
    /// Its params.
    pub params: &'a BTreeMap<String, String>,
    /// Its tags.
    pub tags: &'a BTreeMap<String, String>,
    /// Where its files go.
    pub artifact_prefix: &'a str,
}

macro_rules! columns {
    () => {
        "l.id, l.experiment_id, (SELECT e.name = 'Default' FROM experiments e WHERE e.id = l.experiment_id)
             AS in_default_experiment,
         l.run_id, l.name, l.model_type, l.status, l.status_message, l.params, l.tags, l.artifact_prefix,
         l.created_at, l.updated_at"
    };
}

impl Db {
    /// Creates a logged model, pending until its files are uploaded.
    pub async fn mlflow_create_logged_model(
        &self,
        workspace_id: Uuid,
        new: NewLoggedModel<'_>,
    ) -> Result<LoggedModel, DbError> {
        sqlx::query(
            "INSERT INTO logged_models (id, workspace_id, experiment_id, run_id, name, model_type, status,
                 params, tags, artifact_prefix)
             VALUES ($1, $2, $3, $4, $5, $6, 'LOGGED_MODEL_PENDING', $7, $8, $9)",
        )
        .bind(new.id)
        .bind(workspace_id)
        .bind(new.experiment_id)
        .bind(new.run_id)
        .bind(new.name)
        .bind(new.model_type)
        .bind(Json(new.params))
        .bind(Json(new.tags))
        .bind(new.artifact_prefix)
        .execute(self.pool())
        .await?;
        self.mlflow_logged_model(workspace_id, new.id).await
    }

    /// A logged model of the workspace.
    pub async fn mlflow_logged_model(
        &self,
        workspace_id: Uuid,
        id: Uuid,
    ) -> Result<LoggedModel, DbError> {
        sqlx::query_as::<_, LoggedModel>(concat!(
            "SELECT ",
            columns!(),
            " FROM logged_models l WHERE l.workspace_id = $1 AND l.id = $2"
        ))
        .bind(workspace_id)
        .bind(id)
        .fetch_optional(self.pool())
        .await?
        .ok_or(DbError::NotFound("logged model"))
    }

    /// Changes a logged model: its status (with a message), tags to add,
    /// a tag to remove, params to add.
    pub async fn mlflow_change_logged_model(
        &self,
        workspace_id: Uuid,
        id: Uuid,
        status: Option<(&str, Option<&str>)>,
        set_tags: &BTreeMap<String, String>,
        delete_tag: Option<&str>,
        params: &BTreeMap<String, String>,
    ) -> Result<LoggedModel, DbError> {
        let done = sqlx::query(
            "UPDATE logged_models SET status = coalesce($3, status),
                 status_message = CASE WHEN $3 IS NULL THEN status_message ELSE $4 END,
                 tags = (tags || $5) - coalesce($6, ''), params = params || $7,
                 updated_at = clock_timestamp()
             WHERE workspace_id = $1 AND id = $2",
        )
        .bind(workspace_id)
        .bind(id)
        .bind(status.map(|(s, _)| s))
        .bind(status.and_then(|(_, m)| m))
        .bind(Json(set_tags))
        .bind(delete_tag)
        .bind(Json(params))
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 0 {
            return Err(DbError::NotFound("logged model"));
        }
        self.mlflow_logged_model(workspace_id, id).await
    }

    /// Deletes a logged model; returns it (the caller removes its files).
    pub async fn mlflow_delete_logged_model(
        &self,
        workspace_id: Uuid,
        id: Uuid,
    ) -> Result<LoggedModel, DbError> {
        let model = self.mlflow_logged_model(workspace_id, id).await?;
        sqlx::query("DELETE FROM logged_models WHERE workspace_id = $1 AND id = $2")
            .bind(workspace_id)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(model)
    }

    /// One page of the logged models of some experiments, newest first
    /// unless sorted by `(key, ascending)` pairs (`name`, `created`, `updated`).
    pub async fn mlflow_search_logged_models(
        &self,
        workspace_id: Uuid,
        experiment_ids: &[Uuid],
        clauses: &[CatalogClause],
        order: &[(&'static str, bool)],
        offset: i64,
        limit: i64,
    ) -> Result<Vec<LoggedModel>, DbError> {
        let mut query = QueryBuilder::new(concat!(
            "SELECT ",
            columns!(),
            " FROM logged_models l WHERE l.workspace_id = "
        ));
        query.push_bind(workspace_id);
        query.push(" AND l.experiment_id = ANY(");
        query.push_bind(experiment_ids.to_vec());
        query.push(")");
        for clause in clauses {
            query.push(" AND ");
            match &clause.subject {
                CatalogSubject::Tag(key) => {
                    push_tag_comparison(&mut query, "l.tags", key, clause.op, &clause.value);
                    continue;
                }
                CatalogSubject::Param(key) => {
                    query.push("l.params ->> ");
                    query.push_bind(key.clone());
                }
                CatalogSubject::RunId => {
                    query.push("l.run_id::text");
                }
                CatalogSubject::ModelId => {
                    query.push("('m-' || replace(l.id::text, '-', ''))");
                }
                CatalogSubject::Status => {
                    query.push("l.status");
                }
                CatalogSubject::ModelType => {
                    query.push("l.model_type");
                }
                _ => {
                    query.push("l.name");
                }
            }
            push_text_comparison(&mut query, clause.op, &clause.value);
        }
        query.push(" ORDER BY ");
        for (key, ascending) in order {
            query.push(match *key {
                "name" => "l.name",
                "updated" => "l.updated_at",
                _ => "l.created_at",
            });
            query.push(if *ascending { " ASC, " } else { " DESC, " });
        }
        query.push("l.created_at DESC, l.id OFFSET ");
        query.push_bind(offset);
        query.push(" LIMIT ");
        query.push_bind(limit);
        Ok(query
            .build_query_as::<LoggedModel>()
            .fetch_all(self.pool())
            .await?)
    }
}
