use axum::extract::State;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use trainyard_core::{Role, RunStatus};
use trainyard_db::run_list::{MetricOp, RunFilter};
use trainyard_db::Db;
use utoipa::{IntoParams, ToSchema};

use super::RunView;
use crate::auth::InWorkspace;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{AppJson, AppQuery};
use crate::routes::page_args;

/// Filters and paging of the run list. Filters combine with AND.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListRunsQuery {
    /// Only runs of this experiment (id or name).
    pub experiment: Option<String>,
    /// Only runs in these statuses; repeat the parameter or separate with commas.
    #[serde(default)]
    pub status: Vec<String>,
    /// `key=value` for runs whose tag `key` is `value`, or `key` for runs that
    /// carry the tag at all; repeat for several.
    #[serde(default)]
    pub tag: Vec<String>,
    /// Like `tag`, for properties.
    #[serde(default)]
    pub property: Vec<String>,
    /// `name>value` (or `>=`, `<`, `<=`, `=`, `!=`) on a metric's latest
    /// value; repeat for several.
    #[serde(default)]
    pub metric: Vec<String>,
    /// `created` (newest first, the default) or `metric:<name>` to sort by a
    /// metric's latest value (runs without it last).
    pub order_by: Option<String>,
    /// `desc` (default) or `asc`, for `order_by=metric:<name>`.
    pub order: Option<String>,
    /// Only runs submitted at or after this RFC 3339 time.
    #[param(value_type = Option<DateTime<Utc>>)]
    pub created_after: Option<String>,
    /// Only runs submitted before this RFC 3339 time.
    #[param(value_type = Option<DateTime<Utc>>)]
    pub created_before: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    #[param(value_type = Option<u32>)]
    pub limit: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of runs.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunList {
    /// Newest first.
    pub items: Vec<RunView>,
    /// Pass as `cursor` (with the same filters) to get the next page; absent
    /// on the last page. Runs submitted after the first page was read never
    /// appear on later pages, so no run is skipped or repeated.
    pub next_cursor: Option<String>,
}

/// Lists the workspace's runs, newest first.
#[utoipa::path(get, path = "/workspaces/{workspace}/runs", tag = "runs",
    params(("workspace" = String, Path, description = "Workspace name or id"), ListRunsQuery),
    responses(
        (status = 200, description = "A page of runs", body = RunList),
        (status = 422, description = "A parameter is invalid", body = Problem),
    ))]
pub(super) async fn list_runs(
    State(db): State<Db>,
    scope: InWorkspace,
    AppQuery(query): AppQuery<ListRunsQuery>,
) -> ApiResult<AppJson<RunList>> {
    let workspace_id = scope.require(Role::Reader)?;
    let mut filter = RunFilter {
        created_after: parse_time("created_after", query.created_after.as_deref())?,
        created_before: parse_time("created_before", query.created_before.as_deref())?,
        ..RunFilter::default()
    };
    for status in query.status.iter().flat_map(|s| s.split(',')) {
        let status = RunStatus::parse(status.trim()).ok_or_else(|| {
            ApiError::invalid(
                "status",
                format!("{status:?} is not a status; use one of Queued, Preparing, Starting, Running, Finalizing, Completed, Failed, Canceled"),
            )
        })?;
        filter.statuses.push(status);
    }
    split_pairs(&query.tag, &mut filter.tags, &mut filter.tag_keys);
    split_pairs(
        &query.property,
        &mut filter.properties,
        &mut filter.property_keys,
    );
    for text in &query.metric {
        let parsed = MetricOp::parse_filter(text).ok_or_else(|| {
            ApiError::invalid(
                "metric",
                format!("{text:?} is not a metric filter such as accuracy>=0.9"),
            )
        })?;
        filter.metrics.push(parsed);
    }
    if let Some(experiment) = &query.experiment {
        filter.experiment_id = Some(
            db.find_experiment(workspace_id, experiment)
                .await
                .map_err(|err| match err {
                    trainyard_db::DbError::NotFound(_) => ApiError::invalid(
                        "experiment",
                        "no experiment with this id or name in the workspace",
                    ),
                    other => other.into(),
                })?
                .id,
        );
    }
    let descending = match query.order.as_deref() {
        None | Some("desc") => true,
        Some("asc") => false,
        Some(_) => return Err(ApiError::invalid("order", "must be asc or desc")),
    };
    match query.order_by.as_deref() {
        None | Some("created") => {
            let (after, limit) = page_args(query.limit.as_deref(), query.cursor.as_deref())?;
            let page = db.list_runs(workspace_id, &filter, after, limit).await?;
            Ok(AppJson(RunList {
                items: page.items.into_iter().map(Into::into).collect(),
                next_cursor: page.next.map(|c| c.encode()),
            }))
        }
        Some(order) => {
            let metric = order
                .strip_prefix("metric:")
                .filter(|m| !m.is_empty())
                .ok_or_else(|| ApiError::invalid("order_by", "must be created or metric:<name>"))?;
            let (_, limit) = page_args(query.limit.as_deref(), None)?;
            let offset = query
                .cursor
                .as_deref()
                .map(decode_offset)
                .transpose()?
                .unwrap_or(0);
            let (runs, next) = db
                .list_runs_by_metric(workspace_id, &filter, metric, descending, offset, limit)
                .await?;
            Ok(AppJson(RunList {
                items: runs.into_iter().map(Into::into).collect(),
                next_cursor: next.map(encode_offset),
            }))
        }
    }
}

/// `key=value` pairs into `values`, bare `key`s into `keys`.
fn split_pairs(
    items: &[String],
    values: &mut std::collections::BTreeMap<String, String>,
    keys: &mut Vec<String>,
) {
    for item in items {
        match item.split_once('=') {
            Some((key, value)) => {
                values.insert(key.to_string(), value.to_string());
            }
            None => keys.push(item.clone()),
        }
    }
}

/// Pages sorted by a metric are offset pages; their cursor says so.
fn encode_offset(offset: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("offset|{offset}"))
}

fn decode_offset(text: &str) -> Result<i64, ApiError> {
    URL_SAFE_NO_PAD
        .decode(text)
        .ok()
        .and_then(|raw| String::from_utf8(raw).ok())
        .and_then(|raw| {
            raw.strip_prefix("offset|")
                .and_then(|n| n.parse::<i64>().ok())
        })
        .filter(|n| *n >= 0)
        .ok_or_else(|| {
            ApiError::invalid(
                "cursor",
                "is not a cursor this server issued for this order",
            )
        })
}

fn parse_time(field: &str, value: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    value
        .map(|text| {
            DateTime::parse_from_rfc3339(text)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| {
                    ApiError::invalid(field, "must be an RFC 3339 time, e.g. 2026-11-23T12:00:00Z")
                })
        })
        .transpose()
}
