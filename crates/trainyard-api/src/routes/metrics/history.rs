use axum::extract::State;
use serde::{Deserialize, Serialize};
use trainyard_core::metrics::is_other_rank_metric;
use trainyard_core::Role;
use trainyard_db::Db;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{MetricView, PointView};
use crate::auth::InWorkspace;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{AppJson, AppPath, AppQuery};
use crate::routes::int_param;

/// Most points one history page returns.
pub(crate) const MAX_HISTORY_PAGE: i64 = 10_000;

/// The metrics of a run.
#[derive(Debug, Serialize, ToSchema)]
pub struct MetricList {
    /// Every metric with its latest value, by name.
    pub items: Vec<MetricView>,
}

/// Which ranks' metrics to list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MetricListQuery {
    /// `all` to list the metrics every rank of a distributed run logged
    /// (rank N's as `rank-N/<name>`); by default only rank 0's, which are
    /// the run's.
    pub ranks: Option<String>,
}

/// Lists every metric of a run with its latest value.
#[utoipa::path(get, path = "/workspaces/{workspace}/runs/{run_id}/metrics", tag = "metrics",
    params(
        ("workspace" = String, Path, description = "Workspace name or id"),
        ("run_id" = Uuid, Path, description = "Run id"),
        MetricListQuery,
    ),
    responses(
        (status = 200, description = "The run's metrics", body = MetricList),
        (status = 404, description = "No such run in the workspace", body = Problem),
    ))]
pub(super) async fn list_run_metrics(
    State(db): State<Db>,
    scope: InWorkspace,
    AppPath(path): AppPath<(String, Uuid)>,
    AppQuery(query): AppQuery<MetricListQuery>,
) -> ApiResult<AppJson<MetricList>> {
    let (_, run_id) = path;
    let workspace_id = scope.require(Role::Reader)?;
    let every_rank = match query.ranks.as_deref() {
        None | Some("0") => false,
        Some("all") => true,
        Some(_) => return Err(ApiError::invalid("ranks", "must be `all` or `0`")),
    };
    db.get_run(workspace_id, run_id).await?;
    let items = db
        .run_metrics(run_id)
        .await?
        .into_iter()
        .filter(|m| every_rank || !is_other_rank_metric(&m.name))
        .map(Into::into)
        .collect();
    Ok(AppJson(MetricList { items }))
}

/// Which part of a metric's history to read.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// The metric.
    pub name: String,
    /// Only points after this step (the previous page's `next_after_step`).
    #[param(value_type = Option<i64>)]
    pub after_step: Option<String>,
    /// Page size, 1 to 10000 (default 1000).
    #[param(value_type = Option<i64>)]
    pub limit: Option<String>,
    /// Instead of a page: the whole history cut to about this many points
    /// (2 to 10000), keeping each bucket's lowest and highest value.
    #[param(value_type = Option<i64>)]
    pub max_points: Option<String>,
}

/// A stretch of a metric's history.
#[derive(Debug, Serialize, ToSchema)]
pub struct History {
    /// The points, by step.
    pub points: Vec<PointView>,
    /// Pass as `after_step` for the next page; absent when this was the last
    /// (or a downsampled answer).
    pub next_after_step: Option<i64>,
}

/// Reads one metric's history: a page after a step, or the whole of it
/// downsampled to `max_points`.
#[utoipa::path(get, path = "/workspaces/{workspace}/runs/{run_id}/metrics/history", tag = "metrics",
    params(
        ("workspace" = String, Path, description = "Workspace name or id"),
        ("run_id" = Uuid, Path, description = "Run id"),
        HistoryQuery,
    ),
    responses(
        (status = 200, description = "The points", body = History),
        (status = 404, description = "No such run or metric", body = Problem),
    ))]
pub(super) async fn metric_history(
    State(db): State<Db>,
    scope: InWorkspace,
    AppPath(path): AppPath<(String, Uuid)>,
    AppQuery(query): AppQuery<HistoryQuery>,
) -> ApiResult<AppJson<History>> {
    let (_, run_id) = path;
    let workspace_id = scope.require(Role::Reader)?;
    db.get_run(workspace_id, run_id).await?;
    if let Some(max_points) = int_param(
        "max_points",
        query.max_points.as_deref(),
        2..=MAX_HISTORY_PAGE,
    )? {
        let points = db
            .metric_history_downsampled(run_id, &query.name, max_points)
            .await?;
        return Ok(AppJson(History {
            points: points.into_iter().map(Into::into).collect(),
            next_after_step: None,
        }));
    }
    let after = int_param(
        "after_step",
        query.after_step.as_deref(),
        i64::MIN..=i64::MAX,
    )?;
    let limit = int_param("limit", query.limit.as_deref(), 1..=MAX_HISTORY_PAGE)?.unwrap_or(1000);
    let points = db.metric_history(run_id, &query.name, after, limit).await?;
    let next_after_step = (points.len() as i64 == limit)
        .then(|| points.last().map(|p| p.step))
        .flatten();
    Ok(AppJson(History {
        points: points.into_iter().map(Into::into).collect(),
        next_after_step,
    }))
}
