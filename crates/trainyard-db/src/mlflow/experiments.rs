//! Experiments as MLflow names and changes them: any name up to 500
//! characters, renames, tags one at a time, and the workspace's `Default`
//! experiment, which MLflow calls "0" and which is created on first use.

use sqlx::types::Json;
use sqlx::QueryBuilder;
use std::collections::BTreeMap;
use trainyard_core::mlflow::search::{CatalogClause, CatalogSubject};
use trainyard_core::mlflow::DEFAULT_EXPERIMENT_NAME;
use uuid::Uuid;

use super::search::{push_tag_comparison, push_text_comparison};
use crate::experiments::Experiment;
use crate::{Db, DbError};

/// An experiment as an MLflow client names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExperimentRef {
    /// "0": the workspace's `Default` experiment.
    Default,
    /// Any experiment, by its Trainyard id.
    Id(Uuid),
}

/// How experiments are sorted in a search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExperimentOrder {
    /// By name.
    Name,
    /// By creation time (also MLflow's "last update time", which Trainyard does not keep).
    Created,
    /// By id.
    Id,
}

macro_rules! columns {
    () => {
        "id, workspace_id, name, description, tags, archived_at, created_at"
    };
}

impl Db {
    /// The workspace's `Default` experiment, created if it does not exist yet.
    pub async fn mlflow_default_experiment(
        &self,
        workspace_id: Uuid,
    ) -> Result<Experiment, DbError> {
        if let Some(found) = self
            .experiment_named(workspace_id, DEFAULT_EXPERIMENT_NAME)
            .await?
        {
            return Ok(found);
        }
        // ON CONFLICT keeps concurrent first uses from failing; the loser reads the row.
        let created = sqlx::query_as::<_, Experiment>(concat!(
            "INSERT INTO experiments (id, workspace_id, name) VALUES ($1, $2, $3)
             ON CONFLICT ON CONSTRAINT experiments_workspace_name_key DO NOTHING RETURNING ",
            columns!()
        ))
        .bind(Uuid::now_v7())
        .bind(workspace_id)
        .bind(DEFAULT_EXPERIMENT_NAME)
        .fetch_optional(self.pool())
        .await?;
        match created {
            Some(experiment) => Ok(experiment),
            None => self
                .experiment_named(workspace_id, DEFAULT_EXPERIMENT_NAME)
                .await?
                .ok_or(DbError::NotFound("experiment")),
        }
    }

    async fn experiment_named(
        &self,
        workspace_id: Uuid,
        name: &str,
    ) -> Result<Option<Experiment>, DbError> {
        Ok(sqlx::query_as::<_, Experiment>(concat!(
            "SELECT ",
            columns!(),
            " FROM experiments WHERE workspace_id = $1 AND name = $2"
        ))
        .bind(workspace_id)
        .bind(name)
        .fetch_optional(self.pool())
        .await?)
    }

    /// An experiment by MLflow's reference to it.
    pub async fn mlflow_experiment(
        &self,
        workspace_id: Uuid,
        experiment: ExperimentRef,
    ) -> Result<Experiment, DbError> {
        match experiment {
            ExperimentRef::Default => self.mlflow_default_experiment(workspace_id).await,
            ExperimentRef::Id(id) => sqlx::query_as::<_, Experiment>(concat!(
                "SELECT ",
                columns!(),
                " FROM experiments WHERE workspace_id = $1 AND id = $2"
            ))
            .bind(workspace_id)
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .ok_or(DbError::NotFound("experiment")),
        }
    }

    /// An experiment by its exact name (`Default` is created on first use).
    pub async fn mlflow_experiment_by_name(
        &self,
        workspace_id: Uuid,
        name: &str,
    ) -> Result<Experiment, DbError> {
        match self.experiment_named(workspace_id, name).await? {
            Some(experiment) => Ok(experiment),
            None if name == DEFAULT_EXPERIMENT_NAME => {
                self.mlflow_default_experiment(workspace_id).await
            }
            None => Err(DbError::NotFound("experiment")),
        }
    }

    /// Creates an experiment with an MLflow name (checked by the caller) and tags.
    pub async fn mlflow_create_experiment(
        &self,
        workspace_id: Uuid,
        name: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<Experiment, DbError> {
        sqlx::query_as::<_, Experiment>(concat!(
            "INSERT INTO experiments (id, workspace_id, name, tags) VALUES ($1, $2, $3, $4) RETURNING ",
            columns!()
        ))
        .bind(Uuid::now_v7())
        .bind(workspace_id)
        .bind(name)
        .bind(Json(tags))
        .fetch_one(self.pool())
        .await
        .map_err(DbError::on_unique(
            "experiments_workspace_name_key",
            "experiment",
            "name",
        ))
    }

    /// Renames an experiment; the new name must be free.
    pub async fn mlflow_rename_experiment(
        &self,
        workspace_id: Uuid,
        id: Uuid,
        name: &str,
    ) -> Result<Experiment, DbError> {
        sqlx::query_as::<_, Experiment>(concat!(
            "UPDATE experiments SET name = $3 WHERE workspace_id = $1 AND id = $2 RETURNING ",
            columns!()
        ))
        .bind(workspace_id)
        .bind(id)
        .bind(name)
        .fetch_optional(self.pool())
        .await
        .map_err(DbError::on_unique(
            "experiments_workspace_name_key",
            "experiment",
            "new_name",
        ))?
        .ok_or(DbError::NotFound("experiment"))
    }

    /// Sets (`Some`) or removes (`None`) one tag of an experiment.
    pub async fn mlflow_set_experiment_tag(
        &self,
        workspace_id: Uuid,
        id: Uuid,
        key: &str,
        value: Option<&str>,
    ) -> Result<Experiment, DbError> {
        sqlx::query_as::<_, Experiment>(concat!(
            "UPDATE experiments SET tags = CASE WHEN $4::text IS NULL THEN tags - $3
                                               ELSE tags || jsonb_build_object($3::text, $4::text) END
             WHERE workspace_id = $1 AND id = $2 RETURNING ",
            columns!()
        ))
        .bind(workspace_id)
        .bind(id)
        .bind(key)
        .bind(value)
        .fetch_optional(self.pool())
        .await?
        .ok_or(DbError::NotFound("experiment"))
    }

    /// One page of a workspace's experiments: active ones, archived
    /// (MLflow: deleted) ones, or both, filtered on name and tags.
    #[allow(clippy::too_many_arguments)]
    pub async fn mlflow_search_experiments(
        &self,
        workspace_id: Uuid,
        view: super::LifecycleView,
        clauses: &[CatalogClause],
        order: &[(ExperimentOrder, bool)],
        offset: i64,
        limit: i64,
    ) -> Result<Vec<Experiment>, DbError> {
        let mut query = QueryBuilder::new(concat!(
            "SELECT ",
            columns!(),
            " FROM experiments WHERE workspace_id = "
        ));
        query.push_bind(workspace_id);
        query.push(match view {
            super::LifecycleView::Active => " AND archived_at IS NULL",
            super::LifecycleView::Deleted => " AND archived_at IS NOT NULL",
            super::LifecycleView::All => "",
        });
        for clause in clauses {
            query.push(" AND ");
            match &clause.subject {
                CatalogSubject::Tag(key) => {
                    push_tag_comparison(&mut query, "tags", key, clause.op, &clause.value);
                    continue;
                }
                _ => {
                    query.push("name");
                }
            }
            push_text_comparison(&mut query, clause.op, &clause.value);
        }
        query.push(" ORDER BY ");
        for (key, ascending) in order {
            query.push(match key {
                ExperimentOrder::Name => "name",
                ExperimentOrder::Created => "created_at",
                ExperimentOrder::Id => "id",
            });
            query.push(if *ascending { " ASC, " } else { " DESC, " });
        }
        query.push("created_at DESC, id DESC OFFSET ");
        query.push_bind(offset);
        query.push(" LIMIT ");
        query.push_bind(limit);
        Ok(query
            .build_query_as::<Experiment>()
            .fetch_all(self.pool())
            .await?)
    }
}
