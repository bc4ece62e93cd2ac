//! Experiments: named groups of runs inside a workspace.

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::FromRow;
use std::collections::BTreeMap;
use trainyard_core::Name;
use uuid::Uuid;

use crate::{Cursor, Db, DbError, Page};

/// An experiment row.
#[derive(Debug, Clone, FromRow)]
pub struct Experiment {
    /// Its id.
    pub id: Uuid,
    /// The workspace it belongs to.
    pub workspace_id: Uuid,
    /// Its name, unique in the workspace.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// Free-form labels.
    pub tags: Json<BTreeMap<String, String>>,
    /// When it was archived; archived experiments are hidden from lists by default.
    pub archived_at: Option<DateTime<Utc>>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

impl Experiment {
    fn cursor(&self) -> Cursor {
        Cursor {
            created_at: self.created_at,
            id: self.id,
        }
    }
}

/// What is needed to create an experiment.
#[derive(Debug)]
pub struct NewExperiment<'a> {
    /// Its name.
    pub name: &'a Name,
    /// Free text.
    pub description: Option<&'a str>,
    /// Labels.
    pub tags: BTreeMap<String, String>,
}

macro_rules! columns {
    () => {
        "id, workspace_id, name, description, tags, archived_at, created_at"
    };
}

impl Db {
    /// Creates an experiment; its name must be free in the workspace.
    pub async fn create_experiment(
        &self,
        workspace_id: Uuid,
        new: NewExperiment<'_>,
    ) -> Result<Experiment, DbError> {
        sqlx::query_as::<_, Experiment>(concat!(
            "INSERT INTO experiments (id, workspace_id, name, description, tags)
             VALUES ($1, $2, $3, $4, $5) RETURNING ",
            columns!()
        ))
        .bind(Uuid::now_v7())
        .bind(workspace_id)
        .bind(new.name.as_str())
        .bind(new.description)
        .bind(Json(&new.tags))
        .fetch_one(self.pool())
        .await
        .map_err(DbError::on_unique(
            "experiments_workspace_name_key",
            "experiment",
            "name",
        ))
    }

    /// Returns the experiment with this name, creating it first if there is
    /// none. The flag tells whether it was created by this call.
    pub async fn get_or_create_experiment(
        &self,
        workspace_id: Uuid,
        new: NewExperiment<'_>,
    ) -> Result<(Experiment, bool), DbError> {
        // ON CONFLICT DO NOTHING keeps concurrent callers from failing: the
        // loser of the race reads the winner's row.
        let created = sqlx::query_as::<_, Experiment>(concat!(
            "INSERT INTO experiments (id, workspace_id, name, description, tags)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT ON CONSTRAINT experiments_workspace_name_key DO NOTHING
             RETURNING ",
            columns!()
        ))
        .bind(Uuid::now_v7())
        .bind(workspace_id)
        .bind(new.name.as_str())
        .bind(new.description)
        .bind(Json(&new.tags))
        .fetch_optional(self.pool())
        .await?;
        match created {
            Some(experiment) => Ok((experiment, true)),
            None => Ok((
                self.find_experiment(workspace_id, new.name.as_str())
                    .await?,
                false,
            )),
        }
    }

    /// Finds an experiment of the workspace by id or, failing that, by name.
    pub async fn find_experiment(
        &self,
        workspace_id: Uuid,
        id_or_name: &str,
    ) -> Result<Experiment, DbError> {
        let id = Uuid::parse_str(id_or_name).ok();
        sqlx::query_as::<_, Experiment>(concat!(
            "SELECT ",
            columns!(),
            " FROM experiments
             WHERE workspace_id = $1 AND (id = $2 OR ($2 IS NULL AND name = $3))"
        ))
        .bind(workspace_id)
        .bind(id)
        .bind(id_or_name)
        .fetch_optional(self.pool())
        .await?
        .ok_or(DbError::NotFound("experiment"))
    }

    /// Lists a workspace's experiments, newest first; archived ones only when asked.
    pub async fn list_experiments(
        &self,
        workspace_id: Uuid,
        include_archived: bool,
        after: Option<Cursor>,
        limit: i64,
    ) -> Result<Page<Experiment>, DbError> {
        let rows = sqlx::query_as::<_, Experiment>(concat!(
            "SELECT ",
            columns!(),
            " FROM experiments
             WHERE workspace_id = $1 AND ($2 OR archived_at IS NULL)
               AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4))
             ORDER BY created_at DESC, id DESC LIMIT $5"
        ))
        .bind(workspace_id)
        .bind(include_archived)
        .bind(after.map(|c| c.created_at))
        .bind(after.map(|c| c.id))
        .bind(limit + 1)
        .fetch_all(self.pool())
        .await?;
        Ok(Page::from_rows(rows, limit, Experiment::cursor))
    }

    /// Archives (or, with `archived = false`, restores) an experiment.
    pub async fn set_experiment_archived(
        &self,
        workspace_id: Uuid,
        experiment_id: Uuid,
        archived: bool,
    ) -> Result<Experiment, DbError> {
        sqlx::query_as::<_, Experiment>(concat!(
            "UPDATE experiments
             SET archived_at = CASE WHEN $3 THEN coalesce(archived_at, now()) END
             WHERE workspace_id = $1 AND id = $2 RETURNING ",
            columns!()
        ))
        .bind(workspace_id)
        .bind(experiment_id)
        .bind(archived)
        .fetch_optional(self.pool())
        .await?
        .ok_or(DbError::NotFound("experiment"))
    }
}
