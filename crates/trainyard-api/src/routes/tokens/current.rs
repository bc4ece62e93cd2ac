use serde::Serialize;
use trainyard_core::Role;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Caller;
use crate::error::{ApiResult, Problem};
use crate::extract::AppJson;

/// Who the presented token is.
#[derive(Debug, Serialize, ToSchema)]
pub struct Identity {
    /// The token's id.
    pub token_id: Uuid,
    /// Its workspace; absent for a server administrator.
    pub workspace_id: Option<Uuid>,
    /// Its role.
    pub role: Role,
    /// Whether it may act in every workspace.
    pub server_admin: bool,
}

/// Describes the token that made the request.
#[utoipa::path(get, path = "/whoami", tag = "tokens",
    responses(
        (status = 200, description = "The caller", body = Identity),
        (status = 401, description = "No valid token", body = Problem),
    ))]
pub(super) async fn current_token(caller: Caller) -> ApiResult<AppJson<Identity>> {
    Ok(AppJson(Identity {
        token_id: caller.token_id,
        workspace_id: caller.workspace_id,
        role: caller.role,
        server_admin: caller.is_server_admin(),
    }))
}
