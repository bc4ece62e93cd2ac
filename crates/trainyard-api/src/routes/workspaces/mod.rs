//! Workspaces: created and listed by server administrators.

mod create;
mod get;
mod list;
mod quota;

use chrono::{DateTime, Utc};
use serde::Serialize;
use trainyard_db::workspaces::Workspace;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create::create_workspace, list::list_workspaces))
        .routes(routes!(get::get_workspace))
        .routes(routes!(quota::get_quota, quota::set_quota))
}

/// A workspace as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkspaceView {
    /// Its id.
    pub id: Uuid,
    /// Its unique name.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

impl From<Workspace> for WorkspaceView {
    fn from(w: Workspace) -> Self {
        WorkspaceView {
            id: w.id,
            name: w.name,
            description: w.description,
            created_at: w.created_at,
        }
    }
}
