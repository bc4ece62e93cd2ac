//! File datasets: named, versioned, immutable lists of files whose content is
//! copied at registration, read by runs through mounts or downloads.

mod get;
mod register;
mod resolve;

use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;
use trainyard_db::datasets::Dataset;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register::register_dataset, get::list_datasets))
        .routes(routes!(get::get_dataset))
        .routes(routes!(get::list_dataset_files))
        .routes(routes!(get::download_dataset_file))
}

/// A dataset version as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct DatasetView {
    /// Its id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// Its version.
    pub version: i32,
    /// Free text.
    pub description: Option<String>,
    /// Labels.
    pub tags: BTreeMap<String, String>,
    /// The datastore its files came from.
    pub datastore: Option<String>,
    /// The paths, globs or URLs it was registered from.
    pub paths: Vec<String>,
    /// How many files it holds.
    pub file_count: i64,
    /// Their total size in bytes.
    pub total_bytes: i64,
    /// When this version was registered.
    pub created_at: DateTime<Utc>,
}

impl From<Dataset> for DatasetView {
    fn from(d: Dataset) -> Self {
        DatasetView {
            id: d.id,
            name: d.name,
            version: d.version,
            description: d.description,
            tags: d.tags.0,
            datastore: d.datastore,
            paths: d.paths.0,
            file_count: d.file_count,
            total_bytes: d.total_bytes,
            created_at: d.created_at,
        }
    }
}
