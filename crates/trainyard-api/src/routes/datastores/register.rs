use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use trainyard_core::{Name, Role};
use trainyard_storage::Storage;
use utoipa::ToSchema;

use super::{check_options, resolve_options, DatastoreView, OptionValue, DEFAULT_DATASTORE};
use crate::auth::InWorkspace;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{AppJson, AppPath};
use crate::AppState;
use std::collections::BTreeMap;

/// A datastore to register.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterDatastore {
    /// Its name, unique in the workspace (`default` is taken).
    pub name: String,
    /// `file:///absolute/folder` on the server's machine,
    /// `s3://bucket/prefix`, `az://container/prefix` or `gs://bucket/prefix`.
    pub url: String,
    /// For s3/az/gs: object_store's configuration keys (`aws_region`,
    /// `aws_endpoint`, `aws_access_key_id`, `azure_storage_account_name`,
    /// `google_service_account_key`, …). A secret (a key whose name holds
    /// key, secret, token, password, credential or sas) must be
    /// `{"env": "NAME"}`, a variable of the server's environment.
    #[serde(default)]
    pub options: BTreeMap<String, OptionValue>,
}

/// Registers a datastore (workspace administrators).
#[utoipa::path(post, path = "/workspaces/{workspace}/datastores", tag = "datastores",
    params(("workspace" = String, Path, description = "Workspace name or id")),
    request_body = RegisterDatastore,
    responses(
        (status = 201, description = "Registered", body = DatastoreView),
        (status = 409, description = "The name is taken", body = Problem),
        (status = 422, description = "A field is invalid", body = Problem),
    ))]
pub(super) async fn register_datastore(
    State(state): State<AppState>,
    scope: InWorkspace,
    AppJson(body): AppJson<RegisterDatastore>,
) -> ApiResult<(StatusCode, AppJson<DatastoreView>)> {
    let workspace_id = scope.require(Role::Admin)?;
    let name = Name::parse("name", &body.name)?;
    if name.as_str() == DEFAULT_DATASTORE {
        return Err(ApiError::Conflict {
            what: "datastore",
            field: "name",
        });
    }
    let stored_options = check_options(&body.options)?;
    let resolved = resolve_options(&body.options)?;
    Storage::from_url(&body.url, &resolved).map_err(|e| ApiError::invalid("url", e.to_string()))?;
    let kind = body.url.split("://").next().unwrap_or_default();
    let datastore = state
        .db
        .create_datastore(workspace_id, &name, kind, &body.url, &stored_options)
        .await?;
    Ok((StatusCode::CREATED, AppJson(datastore.into())))
}

/// The datastores of a workspace.
#[derive(Debug, Serialize, ToSchema)]
pub struct DatastoreList {
    /// The default first, then by name.
    pub items: Vec<DatastoreView>,
}

/// Lists the workspace's datastores.
#[utoipa::path(get, path = "/workspaces/{workspace}/datastores", tag = "datastores",
    params(("workspace" = String, Path, description = "Workspace name or id")),
    responses((status = 200, description = "The datastores", body = DatastoreList)))]
pub(super) async fn list_datastores(
    State(state): State<AppState>,
    scope: InWorkspace,
) -> ApiResult<AppJson<DatastoreList>> {
    let workspace_id = scope.require(Role::Reader)?;
    let mut items = vec![DatastoreView::builtin()];
    items.extend(
        state
            .db
            .list_datastores(workspace_id)
            .await?
            .into_iter()
            .map(DatastoreView::from),
    );
    Ok(AppJson(DatastoreList { items }))
}

/// Gets a datastore.
#[utoipa::path(get, path = "/workspaces/{workspace}/datastores/{name}", tag = "datastores",
    params(
        ("workspace" = String, Path, description = "Workspace name or id"),
        ("name" = String, Path, description = "Datastore name"),
    ),
    responses(
        (status = 200, description = "The datastore", body = DatastoreView),
        (status = 404, description = "No such datastore", body = Problem),
    ))]
pub(super) async fn get_datastore(
    State(state): State<AppState>,
    scope: InWorkspace,
    AppPath(path): AppPath<(String, String)>,
) -> ApiResult<AppJson<DatastoreView>> {
    let (_, name) = path;
    let workspace_id = scope.require(Role::Reader)?;
    if name == DEFAULT_DATASTORE {
        return Ok(AppJson(DatastoreView::builtin()));
    }
    let datastore = state.db.get_datastore(workspace_id, &name).await?;
    Ok(AppJson(datastore.into()))
}
