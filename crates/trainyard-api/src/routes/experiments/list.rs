use axum::extract::State;
use serde::{Deserialize, Serialize};
use trainyard_core::Role;
use trainyard_db::Db;
use utoipa::{IntoParams, ToSchema};

use super::ExperimentView;
use crate::auth::InWorkspace;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{AppJson, AppQuery};
use crate::routes::page_args;

/// Filters and paging of the experiment list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListExperimentsQuery {
    /// `true` to include archived experiments.
    #[param(value_type = Option<bool>)]
    pub include_archived: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    #[param(value_type = Option<u32>)]
    pub limit: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of experiments.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExperimentList {
    /// Newest first.
    pub items: Vec<ExperimentView>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Lists the workspace's experiments.
#[utoipa::path(get, path = "/workspaces/{workspace}/experiments", tag = "experiments",
    params(("workspace" = String, Path, description = "Workspace name or id"), ListExperimentsQuery),
    responses(
        (status = 200, description = "A page of experiments", body = ExperimentList),
        (status = 422, description = "A parameter is invalid", body = Problem),
    ))]
pub(super) async fn list_experiments(
    State(db): State<Db>,
    scope: InWorkspace,
    AppQuery(query): AppQuery<ListExperimentsQuery>,
) -> ApiResult<AppJson<ExperimentList>> {
    let workspace_id = scope.require(Role::Reader)?;
    let include_archived = match query.include_archived.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            return Err(ApiError::invalid(
                "include_archived",
                "must be true or false",
            ))
        }
    };
    let (after, limit) = page_args(query.limit.as_deref(), query.cursor.as_deref())?;
    let page = db
        .list_experiments(workspace_id, include_archived, after, limit)
        .await?;
    Ok(AppJson(ExperimentList {
        items: page.items.into_iter().map(Into::into).collect(),
        next_cursor: page.next.map(|c| c.encode()),
    }))
}
