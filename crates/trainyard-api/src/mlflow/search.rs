//! runs/search and metrics/get-history: the two reads that return many
//! rows, written straight into typed responses (get-history streams a whole
//! history page by page when no page size is asked for).

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use trainyard_core::mlflow::search::{parse_run_filter, parse_run_order};
use trainyard_db::metrics::ScalarPoint;
use trainyard_db::mlflow::{millis, ExperimentRef, RunSearch};
use trainyard_db::{Db, DbError};

use super::auth::MlflowCaller;
use super::error::{MlflowError, MlflowResult};
use super::experiments::lifecycle_view;
use super::request::{
    experiment_ref, lenient_i64, max_results, page, page_offset, required, run_id, Input,
};
use super::runs::run_not_found;
use super::search_cache::{RunSearchCache, SearchKey};
use super::views::{MetricJson, RunJson};

#[derive(Debug, Deserialize)]
pub(super) struct SearchRuns {
    #[serde(default)]
    experiment_ids: Vec<String>,
    filter: Option<String>,
    run_view_type: Option<String>,
    #[serde(default, deserialize_with = "lenient_i64")]
    max_results: Option<i64>,
    #[serde(default)]
    order_by: Vec<String>,
    page_token: Option<String>,
}

#[derive(Serialize)]
struct SearchRunsResponse<'a> {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    runs: Vec<RunJson<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_page_token: Option<String>,
}

pub(super) async fn search_runs(
    State(db): State<Db>,
    State(answers): State<Arc<RunSearchCache>>,
    caller: MlflowCaller,
    Input(body): Input<SearchRuns>,
) -> MlflowResult<Response> {
    let workspace_id = caller.read();
    let limit = max_results(body.max_results, 1000, 50000)?;
    let offset = page_offset(&body.page_token)?;
    let mut experiment_ids = Vec::with_capacity(body.experiment_ids.len());
    for id in &body.experiment_ids {
        // An id that names no experiment matches no run, as in MLflow.
        match experiment_ref(id) {
            Ok(ExperimentRef::Id(id)) => experiment_ids.push(id),
            Ok(ExperimentRef::Default) => {
                experiment_ids.push(db.mlflow_default_experiment(workspace_id).await?.id)
            }
            Err(_) => {}
        }
    }
    let search = RunSearch {
        experiment_ids,
        view: lifecycle_view(body.run_view_type.as_deref())?,
        clauses: parse_run_filter("filter", body.filter.as_deref().unwrap_or(""))?,
        order: body
            .order_by
            .iter()
            .map(|text| parse_run_order("order_by", text))
            .collect::<Result<_, _>>()?,
        offset,
        limit: limit + 1,
    };
    // Read before the search's own reads, so that the answer is at least
    // as new.
    let generation = db.mlflow_search_generation(&search.experiment_ids).await?;
    let key = SearchKey {
        workspace_id,
        experiment_ids: search.experiment_ids.clone(),
        filter: body.filter,
        run_view_type: body.run_view_type,
        order_by: body.order_by,
        offset,
        limit,
    };
    if let Some(answer) = generation.and_then(|now| answers.get(&key, now)) {
        return Ok(json_response(answer));
    }
    let found = db.mlflow_search_runs(workspace_id, &search).await?;
    let (found, next_page_token) = page(found, offset, limit);
    let runs = found
        .iter()
        .map(|run| RunJson::new(&run.tracked, &run.latest_metrics, &run.run_io))
        .collect();
    let answer = serde_json::to_vec(&SearchRunsResponse {
        runs,
        next_page_token,
    })
    .map_err(MlflowError::internal)?;
    // Exactly its length: a kept answer holds no spare capacity.
    let answer = Bytes::from(answer.into_boxed_slice());
    if let Some(generation) = generation {
        answers.put(key, generation, answer.clone());
    }
    Ok(json_response(answer))
}

/// A JSON body written already (whole, or as a stream).
fn json_response(body: impl Into<Body>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body.into()).into_response()
}

#[derive(Debug, Deserialize)]
pub(super) struct GetHistory {
    run_id: Option<String>,
    run_uuid: Option<String>,
    metric_key: Option<String>,
    #[serde(default, deserialize_with = "lenient_i64")]
    max_results: Option<i64>,
    page_token: Option<String>,
}

/// A history page token: the last point's step, time (µs) and value bits.
fn history_token(point: &ScalarPoint) -> String {
    URL_SAFE_NO_PAD.encode(format!(
        "{}|{}|{}",
        point.step,
        point.at.timestamp_micros(),
        point.value.to_bits()
    ))
}

fn parse_history_token(token: &str) -> Option<(i64, chrono::DateTime<chrono::Utc>, f64)> {
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(token).ok()?).ok()?;
    let mut parts = text.split('|');
    let step = parts.next()?.parse().ok()?;
    let at = chrono::DateTime::from_timestamp_micros(parts.next()?.parse().ok()?)?;
    let value = f64::from_bits(parts.next()?.parse().ok()?);
    Some((step, at, value))
}

/// Appends points to a JSON array being written, comma-separated.
fn write_points(
    out: &mut Vec<u8>,
    key: &str,
    points: &[ScalarPoint],
    first: &mut bool,
) -> MlflowResult<()> {
    for point in points {
        if !std::mem::take(first) {
            out.push(b',');
        }
        let json = MetricJson {
            key,
            value: point.value,
            timestamp: millis(point.at),
            step: point.step,
        };
        serde_json::to_writer(&mut *out, &json).map_err(MlflowError::internal)?;
    }
    Ok(())
}

pub(super) async fn get_metric_history(
    State(db): State<Db>,
    caller: MlflowCaller,
    Input(query): Input<GetHistory>,
) -> MlflowResult<Response> {
    let id = run_id(&query.run_id, &query.run_uuid)?;
    let key = required("metric_key", &query.metric_key)?.to_string();
    match db.get_run(caller.read(), id).await {
        Err(DbError::NotFound(_)) => return Err(run_not_found(id)),
        other => other?,
    };
    let Some(limit) = query.max_results else {
        return stream_history(db, id, key).await;
    };
    let limit = max_results(Some(limit), 25000, 25000)?;
    let after = match query.page_token.as_deref().filter(|t| !t.is_empty()) {
        Some(token) => Some(
            parse_history_token(token).ok_or_else(|| MlflowError::invalid("Invalid page token"))?,
        ),
        None => None,
    };
    let mut points = db.mlflow_metric_history(id, &key, after, limit + 1).await?;
    let more = points.len() as i64 > limit;
    points.truncate(limit as usize);
    let mut out = b"{\"metrics\":[".to_vec();
    write_points(&mut out, &key, &points, &mut true)?;
    out.push(b']');
    if let (true, Some(last)) = (more, points.last()) {
        out.extend_from_slice(
            format!(",\"next_page_token\":\"{}\"", history_token(last)).as_bytes(),
        );
    }
    out.push(b'}');
    Ok(json_response(out))
}

/// The whole history as one response, written page by page as it is read.
async fn stream_history(db: Db, id: uuid::Uuid, key: String) -> MlflowResult<Response> {
    let pages = db.mlflow_metric_history_stream(id, &key).await?;
    let mut first = true;
    let body = pages.map(move |page| -> Result<Bytes, MlflowError> {
        let page = page.map_err(MlflowError::from)?;
        let mut out = Vec::with_capacity(page.len() * 64);
        write_points(&mut out, &key, &page, &mut first)?;
        Ok(Bytes::from(out))
    });
    let head = futures::stream::once(async { Ok(Bytes::from_static(b"{\"metrics\":[")) });
    let tail = futures::stream::once(async { Ok(Bytes::from_static(b"]}")) });
    let stream = head
        .chain(body)
        .chain(tail)
        .map(|chunk| chunk.map_err(|err| std::io::Error::other(err.message)));
    Ok(json_response(Body::from_stream(stream)))
}
