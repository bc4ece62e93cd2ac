use axum::extract::State;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use trainyard_core::Role;
use trainyard_db::{Db, DbError};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::history::MAX_HISTORY_PAGE;
use super::{MetricView, PointView};
use crate::auth::InWorkspace;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{AppJson, AppQuery};
use crate::routes::int_param;

/// Most runs one comparison covers.
const MAX_COMPARED_RUNS: usize = 100;

/// Which runs and metrics to compare.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CompareQuery {
    /// Run ids; repeat for each run (at most 100).
    #[serde(default)]
    pub run: Vec<String>,
    /// Metric names; repeat for each; every metric when absent.
    #[serde(default)]
    pub name: Vec<String>,
    /// Also return each scalar metric's history cut to about this many points.
    #[param(value_type = Option<i64>)]
    pub max_points: Option<String>,
}

/// A metric of one run in a comparison.
#[derive(Debug, Serialize, ToSchema)]
pub struct ComparedMetric {
    /// The metric and its latest value.
    #[serde(flatten)]
    pub metric: MetricView,
    /// Its history, when `max_points` was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<PointView>>,
}

/// One run in a comparison.
#[derive(Debug, Serialize, ToSchema)]
pub struct ComparedRun {
    /// The run.
    pub run_id: Uuid,
    /// Its chosen metrics, by name.
    pub metrics: Vec<ComparedMetric>,
}

/// Chosen metrics of several runs.
#[derive(Debug, Serialize, ToSchema)]
pub struct Comparison {
    /// In the order asked for.
    pub runs: Vec<ComparedRun>,
}

/// Returns chosen metrics of many runs at once, for charts and tables across runs.
#[utoipa::path(get, path = "/workspaces/{workspace}/metrics/compare", tag = "metrics",
    params(("workspace" = String, Path, description = "Workspace name or id"), CompareQuery),
    responses(
        (status = 200, description = "The runs' metrics", body = Comparison),
        (status = 422, description = "A run is not in the workspace, or a parameter is invalid", body = Problem),
    ))]
pub(super) async fn compare_runs(
    State(db): State<Db>,
    scope: InWorkspace,
    AppQuery(query): AppQuery<CompareQuery>,
) -> ApiResult<AppJson<Comparison>> {
    let workspace_id = scope.require(Role::Reader)?;
    if query.run.is_empty() {
        return Err(ApiError::invalid("run", "name at least one run"));
    }
    if query.run.len() > MAX_COMPARED_RUNS {
        return Err(ApiError::BatchTooLarge {
            field: "run",
            count: query.run.len(),
            limit: MAX_COMPARED_RUNS,
        });
    }
    let max_points = int_param(
        "max_points",
        query.max_points.as_deref(),
        2..=MAX_HISTORY_PAGE,
    )?;
    let mut run_ids = Vec::new();
    for text in &query.run {
        let id = Uuid::parse_str(text)
            .map_err(|_| ApiError::invalid("run", format!("{text:?} is not a run id")))?;
        db.get_run(workspace_id, id)
            .await
            .map_err(|err| match err {
                DbError::NotFound(_) => {
                    ApiError::invalid("run", format!("no run {id} in the workspace"))
                }
                other => other.into(),
            })?;
        run_ids.push(id);
    }
    let mut by_run: BTreeMap<Uuid, Vec<ComparedMetric>> = BTreeMap::new();
    for summary in db.metrics_of_runs(&run_ids, &query.name).await? {
        let history = match max_points {
            Some(max) => Some(
                db.metric_history_downsampled(summary.run_id, &summary.name, max)
                    .await?
                    .into_iter()
                    .map(Into::into)
                    .collect(),
            ),
            None => None,
        };
        by_run
            .entry(summary.run_id)
            .or_default()
            .push(ComparedMetric {
                metric: summary.into(),
                history,
            });
    }
    let runs = run_ids
        .into_iter()
        .map(|run_id| ComparedRun {
            run_id,
            metrics: by_run.remove(&run_id).unwrap_or_default(),
        })
        .collect();
    Ok(AppJson(Comparison { runs }))
}
