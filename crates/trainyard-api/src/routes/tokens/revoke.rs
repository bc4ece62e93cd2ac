use axum::extract::State;
use trainyard_core::Role;
use trainyard_db::Db;
use uuid::Uuid;

use super::TokenView;
use crate::auth::InWorkspace;
use crate::error::{ApiResult, Problem};
use crate::extract::{AppJson, AppPath};

/// Revokes a token of the workspace (workspace administrators). It stops
/// working at once; revoking again changes nothing.
#[utoipa::path(delete, path = "/workspaces/{workspace}/tokens/{token_id}", tag = "tokens",
    params(
        ("workspace" = String, Path, description = "Workspace name or id"),
        ("token_id" = Uuid, Path, description = "Token id"),
    ),
    responses(
        (status = 200, description = "Revoked", body = TokenView),
        (status = 403, description = "Not a workspace administrator", body = Problem),
        (status = 404, description = "No such token in the workspace", body = Problem),
    ))]
pub(super) async fn revoke_token(
    State(db): State<Db>,
    scope: InWorkspace,
    AppPath(path): AppPath<(String, Uuid)>,
) -> ApiResult<AppJson<TokenView>> {
    let (_, token_id) = path;
    let workspace_id = scope.require(Role::Admin)?;
    let token = db.revoke_token(workspace_id, token_id).await?;
    Ok(AppJson(token.into()))
}
