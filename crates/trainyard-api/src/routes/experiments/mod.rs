//! Experiments: named groups of runs inside a workspace.

mod archive;
mod create;
mod get;
mod list;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use trainyard_core::{validate, FieldError, Name};
use trainyard_db::experiments::{Experiment, NewExperiment};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create::create_experiment, list::list_experiments))
        .routes(routes!(
            get::get_experiment,
            create::get_or_create_experiment
        ))
        .routes(routes!(archive::archive_experiment))
        .routes(routes!(archive::restore_experiment))
}

/// An experiment as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExperimentView {
    /// Its id.
    pub id: Uuid,
    /// Its workspace.
    pub workspace_id: Uuid,
    /// Its name, unique in the workspace.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// Labels.
    pub tags: BTreeMap<String, String>,
    /// Whether it is archived (hidden from lists by default).
    pub archived: bool,
    /// When it was archived.
    pub archived_at: Option<DateTime<Utc>>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

impl From<Experiment> for ExperimentView {
    fn from(e: Experiment) -> Self {
        ExperimentView {
            id: e.id,
            workspace_id: e.workspace_id,
            name: e.name,
            description: e.description,
            tags: e.tags.0,
            archived: e.archived_at.is_some(),
            archived_at: e.archived_at,
            created_at: e.created_at,
        }
    }
}

/// The optional parts of a new experiment.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExperimentFields {
    /// Free text, at most 5000 characters.
    #[serde(default)]
    pub description: Option<String>,
    /// Labels: keys up to 250 characters, values up to 5000.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

impl ExperimentFields {
    /// Checks the fields and pairs them with `name`.
    fn validate<'a>(&'a self, name: &'a Name) -> Result<NewExperiment<'a>, FieldError> {
        validate::description("description", self.description.clone())?;
        validate::tag_map("tags", &self.tags)?;
        Ok(NewExperiment {
            name,
            description: self.description.as_deref(),
            tags: self.tags.clone(),
        })
    }
}
