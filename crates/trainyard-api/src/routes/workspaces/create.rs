use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use trainyard_core::{validate, Name};
use trainyard_db::Db;
use utoipa::ToSchema;

use super::WorkspaceView;
use crate::auth::Caller;
use crate::error::{ApiResult, Problem};
use crate::extract::AppJson;

/// A new workspace.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWorkspace {
    /// Unique name: letters, digits, `_`, `-`, `.`; at most 128 characters.
    pub name: String,
    /// Free text, at most 5000 characters.
    #[serde(default)]
    pub description: Option<String>,
}

/// Creates a workspace (server administrators only).
#[utoipa::path(post, path = "/workspaces", tag = "workspaces",
    request_body = CreateWorkspace,
    responses(
        (status = 201, description = "Created", body = WorkspaceView),
        (status = 403, description = "Not a server administrator", body = Problem),
        (status = 409, description = "The name is taken", body = Problem),
        (status = 422, description = "A field is invalid", body = Problem),
    ))]
pub(super) async fn create_workspace(
    State(db): State<Db>,
    caller: Caller,
    AppJson(body): AppJson<CreateWorkspace>,
) -> ApiResult<(StatusCode, AppJson<WorkspaceView>)> {
    caller.require_server_admin()?;
    let name = Name::parse("name", &body.name)?;
    let description = validate::description("description", body.description)?;
    let workspace = db.create_workspace(&name, description.as_deref()).await?;
    Ok((StatusCode::CREATED, AppJson(workspace.into())))
}
