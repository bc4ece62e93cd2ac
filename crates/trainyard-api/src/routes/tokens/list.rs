use axum::extract::State;
use serde::{Deserialize, Serialize};
use trainyard_core::Role;
use trainyard_db::Db;
use utoipa::{IntoParams, ToSchema};

use super::TokenView;
use crate::auth::InWorkspace;
use crate::error::{ApiResult, Problem};
use crate::extract::{AppJson, AppQuery};
use crate::routes::page_args;

/// Paging of the token list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListTokensQuery {
    /// Page size, 1 to 1000 (default 100).
    #[param(value_type = Option<u32>)]
    pub limit: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of tokens, without secrets.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenList {
    /// Newest first, revoked ones included.
    pub items: Vec<TokenView>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Lists the workspace's tokens (workspace administrators).
#[utoipa::path(get, path = "/workspaces/{workspace}/tokens", tag = "tokens",
    params(("workspace" = String, Path, description = "Workspace name or id"), ListTokensQuery),
    responses(
        (status = 200, description = "A page of tokens", body = TokenList),
        (status = 403, description = "Not a workspace administrator", body = Problem),
    ))]
pub(super) async fn list_tokens(
    State(db): State<Db>,
    scope: InWorkspace,
    AppQuery(query): AppQuery<ListTokensQuery>,
) -> ApiResult<AppJson<TokenList>> {
    let workspace_id = scope.require(Role::Admin)?;
    let (after, limit) = page_args(query.limit.as_deref(), query.cursor.as_deref())?;
    let page = db.list_tokens(workspace_id, after, limit).await?;
    Ok(AppJson(TokenList {
        items: page.items.into_iter().map(Into::into).collect(),
        next_cursor: page.next.map(|c| c.encode()),
    }))
}
