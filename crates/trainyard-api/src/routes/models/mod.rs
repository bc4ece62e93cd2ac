//! The model registry: immutable versions of named models, with lineage to
//! the run, environment and datasets they came from, aliases, and downloads.

mod change;
mod get;
mod register;

use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;
use trainyard_db::models::Model;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register::register_model, get::list_models))
        .routes(routes!(get::get_model))
        .routes(routes!(get::list_model_versions))
        .routes(routes!(change::update_model, change::delete_model))
        .routes(routes!(get::download_model))
        .routes(routes!(change::set_alias, change::delete_alias))
}

/// Where a model version's files live.
pub(crate) fn model_prefix(id: Uuid) -> String {
    format!("models/{id}")
}

/// A model file.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelFileView {
    /// Its path, relative to the model's root.
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
}

/// A model version as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelView {
    /// Its id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// Its version.
    pub version: i32,
    /// Free text.
    pub description: Option<String>,
    /// Labels (mutable).
    pub tags: BTreeMap<String, String>,
    /// Key-values.
    pub properties: BTreeMap<String, String>,
    /// Framework, e.g. `ScikitLearn`.
    pub framework: Option<String>,
    /// Framework version.
    pub framework_version: Option<String>,
    /// What serving it needs: `{"cpu", "memory_in_gb", "gpu"}`.
    #[schema(value_type = Object)]
    pub resource_configuration: Option<serde_json::Value>,
    /// The run it came from.
    pub run_id: Option<Uuid>,
    /// That run's environment (`{name, version}`).
    #[schema(value_type = Object)]
    pub environment: Option<serde_json::Value>,
    /// The dataset versions that run read (`[{input, name, version}]`).
    #[schema(value_type = Object)]
    pub datasets: serde_json::Value,
    /// Its files.
    pub files: Vec<ModelFileView>,
    /// Aliases pointing at this version.
    pub aliases: Vec<String>,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
}

impl From<Model> for ModelView {
    fn from(m: Model) -> Self {
        ModelView {
            id: m.id,
            name: m.name,
            version: m.version,
            description: m.description,
            tags: m.tags.0,
            properties: m.properties.0,
            framework: m.framework,
            framework_version: m.framework_version,
            resource_configuration: m.resource_configuration.map(|j| j.0),
            run_id: m.run_id,
            environment: m.environment.map(|j| j.0),
            datasets: m.datasets.0,
            files: m
                .files
                .0
                .into_iter()
                .map(|f| ModelFileView {
                    path: f.path,
                    size: f.size,
                })
                .collect(),
            aliases: m.aliases,
            created_at: m.created_at,
        }
    }
}

/// A model list.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelList {
    /// The models.
    pub items: Vec<ModelView>,
}
