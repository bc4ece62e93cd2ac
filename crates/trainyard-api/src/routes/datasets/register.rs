use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use std::collections::BTreeMap;
use trainyard_core::{validate, Name, Role};
use trainyard_db::datasets::NewDataset;
use utoipa::ToSchema;

use super::resolve::{files_from_datastore, files_from_urls};
use super::DatasetView;
use crate::auth::InWorkspace;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::AppJson;
use crate::routes::datastores::{open_datastore, DEFAULT_DATASTORE};
use crate::AppState;

/// A dataset version to register.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterDataset {
    /// Its name.
    pub name: String,
    /// The datastore the paths are in (default `default`).
    #[serde(default)]
    pub datastore: Option<String>,
    /// Files, folders (`train/`) or globs (`images/**/*.png`) in the datastore.
    #[serde(default)]
    pub paths: Vec<String>,
    /// http(s) URLs to fetch (cached by content hash).
    #[serde(default)]
    pub urls: Vec<String>,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
    /// Labels.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// With an existing name: add version N+1 (otherwise 409).
    #[serde(default)]
    pub create_new_version: bool,
}

/// Registers a dataset version. The files' content is copied now, so the
/// version never changes whatever happens to the datastore later.
#[utoipa::path(post, path = "/workspaces/{workspace}/datasets", tag = "datasets",
    params(("workspace" = String, Path, description = "Workspace name or id")),
    request_body = RegisterDataset,
    responses(
        (status = 201, description = "Registered", body = DatasetView),
        (status = 409, description = "The name exists and create_new_version is false", body = Problem),
        (status = 422, description = "A field is invalid (unknown datastore, a path that matches nothing or escapes, a URL that is not http(s))", body = Problem),
    ))]
pub(super) async fn register_dataset(
    State(state): State<AppState>,
    scope: InWorkspace,
    AppJson(body): AppJson<RegisterDataset>,
) -> ApiResult<(StatusCode, AppJson<DatasetView>)> {
    let workspace_id = scope.require(Role::Contributor)?;
    let name = Name::parse("name", &body.name)?;
    let description = validate::description("description", body.description)?;
    validate::tag_map("tags", &body.tags)?;
    if body.paths.is_empty() && body.urls.is_empty() {
        return Err(ApiError::invalid("paths", "give at least one path or URL"));
    }
    let datastore_name = body.datastore.as_deref().unwrap_or(DEFAULT_DATASTORE);
    let mut files = BTreeMap::new();
    if !body.paths.is_empty() {
        let datastore = open_datastore(&state, workspace_id, datastore_name, "datastore").await?;
        files.extend(files_from_datastore(&state.storage, &datastore, &body.paths).await?);
    }
    for (path, file) in files_from_urls(&state.storage, &body.urls).await? {
        if files.contains_key(&path) {
            return Err(ApiError::invalid(
                "urls",
                format!("{path:?} is also a datastore path"),
            ));
        }
        files.insert(path, file);
    }
    let sources: Vec<String> = body.paths.iter().chain(body.urls.iter()).cloned().collect();
    let dataset = state
        .db
        .register_dataset(
            workspace_id,
            NewDataset {
                name: &name,
                description: description.as_deref(),
                tags: &body.tags,
                datastore: (!body.paths.is_empty()).then_some(datastore_name),
                paths: &sources,
                files: files.into_values().collect(),
                create_new_version: body.create_new_version,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, AppJson(dataset.into())))
}
