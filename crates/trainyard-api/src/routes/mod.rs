//! One module per resource; each `mod.rs` returns the resource's router.

mod compute;
mod datasets;
pub(crate) mod datastores;
mod environments;
mod experiments;
mod health;
mod metrics;
mod models;
mod runs;
mod snapshots;
mod tokens;
mod workspaces;

use axum::http::Uri;
use trainyard_db::Cursor;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::error::ApiError;
use crate::openapi::ApiDoc;
use crate::AppState;

/// Every route with its OpenAPI description.
pub(crate) fn router() -> OpenApiRouter<AppState> {
    let api = OpenApiRouter::new()
        .merge(workspaces::router())
        .merge(tokens::router())
        .merge(experiments::router())
        .merge(runs::router())
        .merge(snapshots::router())
        .merge(environments::router())
        .merge(metrics::router())
        .merge(datastores::router())
        .merge(datasets::router())
        .merge(models::router())
        .merge(compute::router());
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(health::router())
        .nest("/api/v1", api)
}

/// Answer for paths that match no route.
pub(crate) async fn not_found(uri: Uri) -> ApiError {
    tracing::debug!(path = %uri.path(), "no route");
    ApiError::NotFound("route")
}

/// Default page size of every list.
pub(crate) const DEFAULT_PAGE_SIZE: i64 = 100;
/// Largest page size of every list.
pub(crate) const MAX_PAGE_SIZE: i64 = 1000;

/// The `version` query parameter of things that have versions.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct VersionQuery {
    /// The version; the latest when absent.
    #[param(value_type = Option<i32>)]
    pub version: Option<String>,
}

/// Parses an optional whole-number parameter that must lie in `range`.
pub(crate) fn int_param(
    field: &str,
    value: Option<&str>,
    range: std::ops::RangeInclusive<i64>,
) -> Result<Option<i64>, ApiError> {
    value
        .map(|text| {
            text.parse::<i64>()
                .ok()
                .filter(|n| range.contains(n))
                .ok_or_else(|| {
                    let (low, high) = (range.start(), range.end());
                    ApiError::invalid(
                        field,
                        format!("must be a whole number from {low} to {high}"),
                    )
                })
        })
        .transpose()
}

/// Parses an optional version number (1 or more).
pub(crate) fn version_param(field: &str, value: Option<&str>) -> Result<Option<i32>, ApiError> {
    Ok(int_param(field, value, 1..=i64::from(i32::MAX))?.map(|v| v as i32))
}

/// Parses the `limit` and `cursor` query parameters of a list.
pub(crate) fn page_args(
    limit: Option<&str>,
    cursor: Option<&str>,
) -> Result<(Option<Cursor>, i64), ApiError> {
    let limit = match limit {
        None => DEFAULT_PAGE_SIZE,
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=MAX_PAGE_SIZE).contains(n))
            .ok_or_else(|| {
                ApiError::invalid(
                    "limit",
                    format!("must be a whole number from 1 to {MAX_PAGE_SIZE}"),
                )
            })?,
    };
    let cursor = cursor
        .filter(|c| !c.is_empty())
        .map(Cursor::decode)
        .transpose()?;
    Ok((cursor, limit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_outside_the_range_are_refused_by_name() {
        assert_eq!(page_args(None, None).unwrap().1, DEFAULT_PAGE_SIZE);
        assert_eq!(page_args(Some("1000"), None).unwrap().1, 1000);
        for bad in ["0", "1001", "-1", "ten"] {
            let (_, problem) = page_args(Some(bad), None).unwrap_err().problem();
            assert_eq!(problem.field.as_deref(), Some("limit"));
        }
        let (_, problem) = page_args(None, Some("garbage")).unwrap_err().problem();
        assert_eq!(problem.field.as_deref(), Some("cursor"));
    }
}
