//! Versioned file datasets: each version lists its files and their hashes.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use sqlx::FromRow;
use std::collections::BTreeMap;
use trainyard_core::{Name, RunInput};
use uuid::Uuid;

use crate::{Db, DbError};

/// One file of a dataset version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetFile {
    /// Its path inside the dataset.
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    /// The SHA-256 of its content (the blob holding it).
    pub sha256: String,
}

/// A dataset version.
#[derive(Debug, Clone, FromRow)]
pub struct Dataset {
    /// Its id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// Its version.
    pub version: i32,
    /// Free text.
    pub description: Option<String>,
    /// Labels.
    pub tags: Json<BTreeMap<String, String>>,
    /// The datastore its files came from, if any.
    pub datastore: Option<String>,
    /// The paths, globs or URLs it was registered from.
    pub paths: Json<Vec<String>>,
    /// Its files.
    pub files: Json<Vec<DatasetFile>>,
    /// How many files.
    pub file_count: i64,
    /// Their total size.
    pub total_bytes: i64,
    /// When this version was registered.
    pub created_at: DateTime<Utc>,
}

/// What is needed to register a dataset version.
#[derive(Debug)]
pub struct NewDataset<'a> {
    /// Its name.
    pub name: &'a Name,
    /// Free text.
    pub description: Option<&'a str>,
    /// Labels.
    pub tags: &'a BTreeMap<String, String>,
    /// The datastore, if the files came from one.
    pub datastore: Option<&'a str>,
    /// What it was registered from.
    pub paths: &'a [String],
    /// Its files.
    pub files: Vec<DatasetFile>,
    /// Whether a name already registered gets a new version (otherwise: conflict).
    pub create_new_version: bool,
}

/// The columns of [`Dataset`], for `concat!` into queries.
macro_rules! columns {
    () => {
        "id, name, version, description, tags, datastore, paths, files, file_count, total_bytes, created_at"
    };
}

impl Db {
    /// Registers a dataset version: 1 for a new name, N+1 when asked to.
    pub async fn register_dataset(
        &self,
        workspace_id: Uuid,
        new: NewDataset<'_>,
    ) -> Result<Dataset, DbError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('dataset/' || $1 || '/' || $2))")
            .bind(workspace_id.to_string())
            .bind(new.name.as_str())
            .execute(&mut *tx)
            .await?;
        let latest: Option<i32> = sqlx::query_scalar(
            "SELECT max(version) FROM datasets WHERE workspace_id = $1 AND name = $2",
        )
        .bind(workspace_id)
        .bind(new.name.as_str())
        .fetch_one(&mut *tx)
        .await?;
        if latest.is_some() && !new.create_new_version {
            return Err(DbError::Conflict {
                what: "dataset",
                field: "name",
            });
        }
        let total: u64 = new.files.iter().map(|f| f.size).sum();
        let id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO datasets (id, workspace_id, name, version, description, tags, datastore, paths, files, file_count, total_bytes)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(id)
        .bind(workspace_id)
        .bind(new.name.as_str())
        .bind(latest.unwrap_or(0) + 1)
        .bind(new.description)
        .bind(Json(new.tags))
        .bind(new.datastore)
        .bind(Json(new.paths))
        .bind(Json(&new.files))
        .bind(new.files.len() as i64)
        .bind(total as i64)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.dataset_by_id(id).await
    }

    /// Gets a dataset version by id.
    pub async fn dataset_by_id(&self, id: Uuid) -> Result<Dataset, DbError> {
        sqlx::query_as::<_, Dataset>(concat!(
            "SELECT ",
            columns!(),
            " FROM datasets WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?
        .ok_or(DbError::NotFound("dataset"))
    }

    /// Gets a version of a dataset, the latest when `version` is `None`.
    pub async fn get_dataset(
        &self,
        workspace_id: Uuid,
        name: &str,
        version: Option<i32>,
    ) -> Result<Dataset, DbError> {
        sqlx::query_as::<_, Dataset>(concat!(
            "SELECT ",
            columns!(),
            " FROM datasets
             WHERE workspace_id = $1 AND name = $2 AND ($3::int IS NULL OR version = $3)
             ORDER BY version DESC LIMIT 1"
        ))
        .bind(workspace_id)
        .bind(name)
        .bind(version)
        .fetch_optional(self.pool())
        .await?
        .ok_or(DbError::NotFound("dataset"))
    }

    /// The latest version of every dataset of a workspace, by name.
    pub async fn list_datasets(&self, workspace_id: Uuid) -> Result<Vec<Dataset>, DbError> {
        Ok(sqlx::query_as::<_, Dataset>(concat!(
            "SELECT DISTINCT ON (name) ",
            columns!(),
            " FROM datasets WHERE workspace_id = $1 ORDER BY name, version DESC"
        ))
        .bind(workspace_id)
        .fetch_all(self.pool())
        .await?)
    }
}

/// Records which dataset versions a run uses.
pub(crate) async fn record_run_inputs(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    run_id: Uuid,
    inputs: &[RunInput],
) -> Result<(), DbError> {
    for input in inputs {
        sqlx::query("INSERT INTO run_inputs (run_id, name, dataset_id, mode, path) VALUES ($1, $2, $3, $4, $5)")
            .bind(run_id)
            .bind(&input.name)
            .bind(input.dataset_id)
            .bind(input.mode.as_str())
            .bind(&input.path)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}
