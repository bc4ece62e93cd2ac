//! A workspace's quota on compute targets: the most GPUs and runs its runs
//! hold at once. Runs over it wait, saying so.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use trainyard_core::Role;
use trainyard_db::Db;
use utoipa::ToSchema;

use crate::auth::InWorkspace;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::AppJson;

/// Largest quota that can be set.
const MAX_QUOTA: u32 = 1_000_000;

/// Limits on what a workspace's runs hold at once on compute targets.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    /// Most GPUs at once; null is unlimited.
    #[serde(default)]
    pub max_gpus: Option<u32>,
    /// Most runs placed at once; null is unlimited.
    #[serde(default)]
    pub max_runs: Option<u32>,
}

/// Gets a workspace's quota.
#[utoipa::path(get, path = "/workspaces/{workspace}/quota", tag = "workspaces",
    params(("workspace" = String, Path, description = "Workspace name or id")),
    responses(
        (status = 200, description = "The quota", body = Quota),
        (status = 404, description = "No such workspace visible to the caller", body = Problem),
    ))]
pub(super) async fn get_quota(
    State(db): State<Db>,
    scope: InWorkspace,
) -> ApiResult<AppJson<Quota>> {
    let workspace_id = scope.require(Role::Reader)?;
    let (max_gpus, max_runs) = db.workspace_quota(workspace_id).await?;
    Ok(AppJson(Quota {
        max_gpus: max_gpus.map(|n| n.max(0) as u32),
        max_runs: max_runs.map(|n| n.max(0) as u32),
    }))
}

/// Sets a workspace's quota (server administrators).
#[utoipa::path(put, path = "/workspaces/{workspace}/quota", tag = "workspaces",
    params(("workspace" = String, Path, description = "Workspace name or id")),
    request_body = Quota,
    responses(
        (status = 200, description = "The quota now", body = Quota),
        (status = 403, description = "Needs a server administrator", body = Problem),
        (status = 422, description = "A limit is out of range", body = Problem),
    ))]
pub(super) async fn set_quota(
    State(db): State<Db>,
    scope: InWorkspace,
    AppJson(quota): AppJson<Quota>,
) -> ApiResult<AppJson<Quota>> {
    scope.caller.require_server_admin()?;
    for (field, value) in [("max_gpus", quota.max_gpus), ("max_runs", quota.max_runs)] {
        if value.is_some_and(|n| n > MAX_QUOTA) {
            return Err(ApiError::invalid(
                field,
                format!("must be at most {MAX_QUOTA}, or null for no limit"),
            ));
        }
    }
    db.set_workspace_quota(
        scope.workspace.id,
        quota.max_gpus.map(|n| n as i32),
        quota.max_runs.map(|n| n as i32),
    )
    .await?;
    Ok(AppJson(quota))
}
