use axum::extract::State;
use serde::{Deserialize, Serialize};
use trainyard_core::Role;
use trainyard_db::Db;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::InWorkspace;
use crate::error::{ApiResult, Problem};
use crate::extract::{AppJson, AppPath, AppQuery};
use crate::routes::runs::logs::{LogLineView, PageWindow};
use crate::routes::version_param;

/// Which version's build log, and which part of it.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BuildLogQuery {
    /// The version (the latest by default).
    #[param(value_type = Option<i32>)]
    pub version: Option<String>,
    /// First line to return (default 0).
    #[param(value_type = Option<i64>)]
    pub from_seq: Option<String>,
    /// Most lines to return, 1 to 10000 (default 1000).
    #[param(value_type = Option<i64>)]
    pub limit: Option<String>,
}

/// An environment version's image build log.
#[derive(Debug, Serialize, ToSchema)]
pub struct BuildLog {
    /// The image reference.
    pub image: String,
    /// `not_built`, `building`, `ready` or `failed`.
    pub build_state: String,
    /// The run whose preparation built the image (its log's `build` source),
    /// when that run is in this workspace; `null` when the image was never
    /// built here, was built before build logs were recorded, or by a run
    /// of another workspace (whose log is not shown).
    pub run_id: Option<Uuid>,
    /// The lines, in order.
    pub lines: Vec<LogLineView>,
    /// Pass as `from_seq` to read on.
    pub next_seq: i64,
}

/// Reads the build log of an environment version's image: the output of the
/// build, as the run that needed the image recorded it.
#[utoipa::path(get, path = "/workspaces/{workspace}/environments/{name}/build-log", tag = "environments",
    params(
        ("workspace" = String, Path, description = "Workspace name or id"),
        ("name" = String, Path, description = "Environment name"),
        BuildLogQuery,
    ),
    responses(
        (status = 200, description = "The build log (empty when there is none to show)", body = BuildLog),
        (status = 404, description = "No such environment or version", body = Problem),
    ))]
pub(super) async fn environment_build_log(
    State(db): State<Db>,
    scope: InWorkspace,
    AppPath(path): AppPath<(String, String)>,
    AppQuery(query): AppQuery<BuildLogQuery>,
) -> ApiResult<AppJson<BuildLog>> {
    let (_, name) = path;
    let workspace_id = scope.require(Role::Reader)?;
    let version = version_param("version", query.version.as_deref())?;
    let window = PageWindow::parse(query.from_seq.as_deref(), query.limit.as_deref())?;
    let environment = db.get_environment(workspace_id, &name, version).await?;
    let run_id = db
        .image_build_run(workspace_id, &environment.image_tag)
        .await?;
    let (lines, next_seq) = match run_id {
        Some(run_id) => window.read(&db, run_id, "build").await?,
        None => window.empty(),
    };
    Ok(AppJson(BuildLog {
        image: environment.image_tag,
        build_state: environment
            .image_state
            .unwrap_or_else(|| "not_built".to_string()),
        run_id,
        lines,
        next_seq,
    }))
}
