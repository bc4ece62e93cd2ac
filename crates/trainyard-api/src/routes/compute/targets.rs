use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use trainyard_core::{Name, Resources, Role};
use trainyard_db::compute::NewComputeTarget;
use utoipa::ToSchema;

use super::{ComputeTargetView, DefaultResources};
use crate::auth::InWorkspace;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{AppJson, AppPath};
use crate::AppState;

/// Most nodes one compute target may hold.
const MAX_NODES_LIMIT: i32 = 10_000;

/// A compute target to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateComputeTarget {
    /// Its name, unique in the workspace (e.g. `gpucluster`).
    pub name: String,
    /// Node labels such as a VM size (`{"vm_size": "8xA100"}`).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Most nodes it may hold (1 to 10,000).
    pub max_nodes: i32,
    /// Resources a run gets when it asks for none.
    #[serde(default)]
    pub default_resources: DefaultResources,
}

/// Creates a compute target (workspace administrators).
#[utoipa::path(post, path = "/workspaces/{workspace}/compute", tag = "compute",
    params(("workspace" = String, Path, description = "Workspace name or id")),
    request_body = CreateComputeTarget,
    responses(
        (status = 201, description = "Created", body = ComputeTargetView),
        (status = 409, description = "The name is taken", body = Problem),
        (status = 422, description = "A field is invalid", body = Problem),
    ))]
pub(super) async fn create_target(
    State(state): State<AppState>,
    scope: InWorkspace,
    AppJson(body): AppJson<CreateComputeTarget>,
) -> ApiResult<(StatusCode, AppJson<ComputeTargetView>)> {
    let workspace_id = scope.require(Role::Admin)?;
    let name = Name::parse("name", &body.name)?;
    if !(1..=MAX_NODES_LIMIT).contains(&body.max_nodes) {
        return Err(ApiError::invalid(
            "max_nodes",
            format!("must be 1 to {MAX_NODES_LIMIT}"),
        ));
    }
    let defaults = &body.default_resources;
    // The same rules as a run's own resources, which the defaults become.
    Resources {
        gpus: defaults.gpus,
        cpus: Some(defaults.cpus),
        memory_mb: Some(defaults.memory_mb),
    }
    .validate("default_resources")?;
    let target = state
        .db
        .create_compute_target(
            workspace_id,
            NewComputeTarget {
                name: &name,
                labels: &body.labels,
                max_nodes: body.max_nodes,
                default_gpus: i32::try_from(defaults.gpus).unwrap_or(i32::MAX),
                default_cpus: defaults.cpus,
                default_memory_mb: i64::try_from(defaults.memory_mb).unwrap_or(i64::MAX),
            },
        )
        .await?;
    Ok((StatusCode::CREATED, AppJson(target.into())))
}

/// The compute targets of a workspace.
#[derive(Debug, Serialize, ToSchema)]
pub struct ComputeTargetList {
    /// By name.
    pub items: Vec<ComputeTargetView>,
}

/// Lists the workspace's compute targets.
#[utoipa::path(get, path = "/workspaces/{workspace}/compute", tag = "compute",
    params(("workspace" = String, Path, description = "Workspace name or id")),
    responses((status = 200, description = "The compute targets", body = ComputeTargetList)))]
pub(super) async fn list_targets(
    State(state): State<AppState>,
    scope: InWorkspace,
) -> ApiResult<AppJson<ComputeTargetList>> {
    let workspace_id = scope.require(Role::Reader)?;
    let items = state
        .db
        .list_compute_targets(workspace_id)
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    Ok(AppJson(ComputeTargetList { items }))
}

/// Gets a compute target (the SDK's "get or create" asks this first).
#[utoipa::path(get, path = "/workspaces/{workspace}/compute/{name}", tag = "compute",
    params(
        ("workspace" = String, Path, description = "Workspace name or id"),
        ("name" = String, Path, description = "Compute target name"),
    ),
    responses(
        (status = 200, description = "The compute target", body = ComputeTargetView),
        (status = 404, description = "No such compute target", body = Problem),
    ))]
pub(super) async fn get_target(
    State(state): State<AppState>,
    scope: InWorkspace,
    AppPath(path): AppPath<(String, String)>,
) -> ApiResult<AppJson<ComputeTargetView>> {
    let (_, name) = path;
    let workspace_id = scope.require(Role::Reader)?;
    let target = state.db.get_compute_target(workspace_id, &name).await?;
    Ok(AppJson(target.into()))
}

/// Deletes a compute target and its nodes; refused (409 `in_use`) while a
/// run that names it is not finished.
#[utoipa::path(delete, path = "/workspaces/{workspace}/compute/{name}", tag = "compute",
    params(
        ("workspace" = String, Path, description = "Workspace name or id"),
        ("name" = String, Path, description = "Compute target name"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such compute target", body = Problem),
        (status = 409, description = "Runs that use it are not finished", body = Problem),
    ))]
pub(super) async fn delete_target(
    State(state): State<AppState>,
    scope: InWorkspace,
    AppPath(path): AppPath<(String, String)>,
) -> ApiResult<StatusCode> {
    let (_, name) = path;
    let workspace_id = scope.require(Role::Admin)?;
    state.db.delete_compute_target(workspace_id, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
