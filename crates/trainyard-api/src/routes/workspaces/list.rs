use axum::extract::State;
use serde::{Deserialize, Serialize};
use trainyard_db::Db;
use utoipa::{IntoParams, ToSchema};

use super::WorkspaceView;
use crate::auth::Caller;
use crate::error::{ApiResult, Problem};
use crate::extract::{AppJson, AppQuery};
use crate::routes::page_args;

/// Paging of the workspace list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListWorkspacesQuery {
    /// Page size, 1 to 1000 (default 100).
    #[param(value_type = Option<u32>)]
    pub limit: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of workspaces.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkspaceList {
    /// Newest first.
    pub items: Vec<WorkspaceView>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Lists workspaces (server administrators only).
#[utoipa::path(get, path = "/workspaces", tag = "workspaces",
    params(ListWorkspacesQuery),
    responses(
        (status = 200, description = "A page of workspaces", body = WorkspaceList),
        (status = 403, description = "Not a server administrator", body = Problem),
    ))]
pub(super) async fn list_workspaces(
    State(db): State<Db>,
    caller: Caller,
    AppQuery(query): AppQuery<ListWorkspacesQuery>,
) -> ApiResult<AppJson<WorkspaceList>> {
    caller.require_server_admin()?;
    let (after, limit) = page_args(query.limit.as_deref(), query.cursor.as_deref())?;
    let page = db.list_workspaces(after, limit).await?;
    Ok(AppJson(WorkspaceList {
        items: page.items.into_iter().map(Into::into).collect(),
        next_cursor: page.next.map(|c| c.encode()),
    }))
}
