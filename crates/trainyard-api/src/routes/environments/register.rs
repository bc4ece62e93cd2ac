use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use trainyard_core::{validate, EnvironmentSpec, Name, Role};
use utoipa::ToSchema;

use super::EnvironmentView;
use crate::auth::InWorkspace;
use crate::error::{ApiResult, Problem};
use crate::extract::AppJson;
use crate::AppState;

/// An environment version to register.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterEnvironment {
    /// Its name; registering an existing name adds a version.
    pub name: String,
    /// Free text, at most 5000 characters.
    #[serde(default)]
    pub description: Option<String>,
    /// What the image contains.
    pub spec: EnvironmentSpec,
}

/// Registers a new version of an environment (version 1 for a new name).
#[utoipa::path(post, path = "/workspaces/{workspace}/environments", tag = "environments",
    params(("workspace" = String, Path, description = "Workspace name or id")),
    request_body = RegisterEnvironment,
    responses(
        (status = 201, description = "Registered", body = EnvironmentView),
        (status = 403, description = "Needs the contributor role", body = Problem),
        (status = 422, description = "A field is invalid", body = Problem),
    ))]
pub(super) async fn register_environment(
    State(state): State<AppState>,
    scope: InWorkspace,
    AppJson(body): AppJson<RegisterEnvironment>,
) -> ApiResult<(StatusCode, AppJson<EnvironmentView>)> {
    let workspace_id = scope.require(Role::Contributor)?;
    let name = Name::parse("name", &body.name)?;
    let description = validate::description("description", body.description)?;
    body.spec.validate("spec")?;
    let tag = body.spec.image_tag(&state.extra_ca);
    let environment = state
        .db
        .register_environment(
            workspace_id,
            &name,
            description.as_deref(),
            &body.spec,
            &tag,
        )
        .await?;
    Ok((StatusCode::CREATED, AppJson(environment.into())))
}
