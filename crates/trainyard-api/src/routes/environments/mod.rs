//! Environments: named, versioned image specs. Registering a name again adds
//! a version; the image tag is the spec's hash, so equal specs share an image.

mod build_log;
mod get;
mod list;
mod register;

use chrono::{DateTime, Utc};
use serde::Serialize;
use trainyard_core::EnvironmentSpec;
use trainyard_db::environments::Environment;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(
            register::register_environment,
            list::list_environments
        ))
        .routes(routes!(get::get_environment))
        .routes(routes!(build_log::environment_build_log))
}

/// One version of an environment as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct EnvironmentView {
    /// Its id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// Its version: 1, then one more at each registration.
    pub version: i32,
    /// Free text.
    pub description: Option<String>,
    /// What the image contains.
    pub spec: EnvironmentSpec,
    /// The image reference runs use.
    pub image: String,
    /// `not_built` until a run needs it, then `building`, `ready` or `failed`.
    pub build_state: String,
    /// The last build's error, when it failed.
    pub build_error: Option<String>,
    /// When this version was registered.
    pub created_at: DateTime<Utc>,
}

impl From<Environment> for EnvironmentView {
    fn from(e: Environment) -> Self {
        EnvironmentView {
            id: e.id,
            name: e.name,
            version: e.version,
            description: e.description,
            spec: e.spec.0,
            image: e.image_tag,
            build_state: e.image_state.unwrap_or_else(|| "not_built".to_string()),
            build_error: e.image_error,
            created_at: e.created_at,
        }
    }
}
