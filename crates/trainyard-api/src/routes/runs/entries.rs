//! Setting and removing single tags and properties of a run.

use axum::extract::State;
use serde::Deserialize;
use trainyard_core::{TagKey, TagValue};
use trainyard_db::runs::RunMap;
use trainyard_db::Db;
use utoipa::ToSchema;
use uuid::Uuid;

use super::RunView;
use crate::auth::InWorkspace;
use crate::error::{ApiResult, Problem};
use crate::extract::{AppJson, AppPath};

/// The value to set.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EntryValue {
    /// At most 5000 characters.
    pub value: String,
}

/// Sets one tag of a run.
#[utoipa::path(put, path = "/workspaces/{workspace}/runs/{run_id}/tags/{key}", tag = "runs",
    params(
        ("workspace" = String, Path, description = "Workspace name or id"),
        ("run_id" = Uuid, Path, description = "Run id"),
        ("key" = String, Path, description = "Tag key"),
    ),
    request_body = EntryValue,
    responses(
        (status = 200, description = "The run with the tag set", body = RunView),
        (status = 404, description = "No such run in the workspace", body = Problem),
        (status = 422, description = "The key or value is invalid", body = Problem),
    ))]
pub(super) async fn set_tag(
    State(db): State<Db>,
    scope: InWorkspace,
    AppPath(path): AppPath<(String, Uuid, String)>,
    AppJson(body): AppJson<EntryValue>,
) -> ApiResult<AppJson<RunView>> {
    set_entry(db, scope, path, RunMap::Tags, body).await
}

/// Removes one tag of a run; removing a missing tag is not an error.
#[utoipa::path(delete, path = "/workspaces/{workspace}/runs/{run_id}/tags/{key}", tag = "runs",
    params(
        ("workspace" = String, Path, description = "Workspace name or id"),
        ("run_id" = Uuid, Path, description = "Run id"),
        ("key" = String, Path, description = "Tag key"),
    ),
    responses(
        (status = 200, description = "The run without the tag", body = RunView),
        (status = 404, description = "No such run in the workspace", body = Problem),
    ))]
pub(super) async fn delete_tag(
    State(db): State<Db>,
    scope: InWorkspace,
    AppPath(path): AppPath<(String, Uuid, String)>,
) -> ApiResult<AppJson<RunView>> {
    delete_entry(db, scope, path, RunMap::Tags).await
}

/// Sets one property of a run.
#[utoipa::path(put, path = "/workspaces/{workspace}/runs/{run_id}/properties/{key}", tag = "runs",
    params(
        ("workspace" = String, Path, description = "Workspace name or id"),
        ("run_id" = Uuid, Path, description = "Run id"),
        ("key" = String, Path, description = "Property key"),
    ),
    request_body = EntryValue,
    responses(
        (status = 200, description = "The run with the property set", body = RunView),
        (status = 404, description = "No such run in the workspace", body = Problem),
        (status = 422, description = "The key or value is invalid", body = Problem),
    ))]
pub(super) async fn set_property(
    State(db): State<Db>,
    scope: InWorkspace,
    AppPath(path): AppPath<(String, Uuid, String)>,
    AppJson(body): AppJson<EntryValue>,
) -> ApiResult<AppJson<RunView>> {
    set_entry(db, scope, path, RunMap::Properties, body).await
}

/// Removes one property of a run; removing a missing property is not an error.
#[utoipa::path(delete, path = "/workspaces/{workspace}/runs/{run_id}/properties/{key}", tag = "runs",
    params(
        ("workspace" = String, Path, description = "Workspace name or id"),
        ("run_id" = Uuid, Path, description = "Run id"),
        ("key" = String, Path, description = "Property key"),
    ),
    responses(
        (status = 200, description = "The run without the property", body = RunView),
        (status = 404, description = "No such run in the workspace", body = Problem),
    ))]
pub(super) async fn delete_property(
    State(db): State<Db>,
    scope: InWorkspace,
    AppPath(path): AppPath<(String, Uuid, String)>,
) -> ApiResult<AppJson<RunView>> {
    delete_entry(db, scope, path, RunMap::Properties).await
}

async fn set_entry(
    db: Db,
    scope: InWorkspace,
    (_, run_id, key): (String, Uuid, String),
    map: RunMap,
    body: EntryValue,
) -> ApiResult<AppJson<RunView>> {
    let workspace_id = scope.require_run_write(run_id)?;
    let key = TagKey::parse("key", &key)?;
    let value = TagValue::parse("value", &body.value)?;
    let run = db
        .set_run_entry(workspace_id, run_id, map, &key, &value)
        .await?;
    Ok(AppJson(run.into()))
}

async fn delete_entry(
    db: Db,
    scope: InWorkspace,
    (_, run_id, key): (String, Uuid, String),
    map: RunMap,
) -> ApiResult<AppJson<RunView>> {
    let workspace_id = scope.require_run_write(run_id)?;
    let run = db.delete_run_entry(workspace_id, run_id, map, &key).await?;
    Ok(AppJson(run.into()))
}
