//! MLflow's REST API over Trainyard's own store, so that
//! `MLFLOW_TRACKING_URI=http://<trainyard>` (with a Trainyard token) makes
//! MLflow clients log into Trainyard experiments, runs, metrics, run files
//! and models: `/api/2.0/mlflow/...` (tracking, registry, logged models),
//! `/api/2.0/mlflow-artifacts/...` (the artifact proxy) and
//! `/api/3.0/mlflow/server-info`.
//!
//! These routes follow MLflow's own specification, with its error shape
//! and limits; they are not part of Trainyard's OpenAPI document.

mod artifacts;
mod auth;
mod error;
mod experiments;
mod logged_models;
mod logging;
mod model_versions;
mod multipart;
mod registered_models;
mod request;
mod runs;
mod search;
mod search_cache;
mod views;

pub use search_cache::RunSearchCache;

use axum::extract::OriginalUri;
use axum::routing::{get, patch, post, put};
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::AppState;
use error::MlflowError;

/// Every MLflow route.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .nest(
            "/api/2.0/mlflow",
            tracking().merge(registry()).fallback(no_endpoint),
        )
        .nest(
            "/api/2.0/mlflow-artifacts",
            artifact_proxy().fallback(no_endpoint),
        )
        .route("/api/3.0/mlflow/server-info", get(server_info))
}

fn tracking() -> Router<AppState> {
    use experiments as e;
    use logging as l;
    use runs as r;
    Router::new()
        .route("/experiments/create", post(e::create_experiment))
        .route("/experiments/get", get(e::get_experiment))
        .route("/experiments/get-by-name", get(e::get_experiment_by_name))
        .route(
            "/experiments/search",
            get(e::search_experiments).post(e::search_experiments),
        )
        .route("/experiments/update", post(e::update_experiment))
        .route("/experiments/delete", post(e::delete_experiment))
        .route("/experiments/restore", post(e::restore_experiment))
        .route(
            "/experiments/set-experiment-tag",
            post(e::set_experiment_tag),
        )
        .route(
            "/experiments/delete-experiment-tag",
            post(e::delete_experiment_tag),
        )
        .route("/runs/create", post(r::create_run))
        .route("/runs/get", get(r::get_run))
        .route("/runs/update", post(r::update_run))
        .route("/runs/delete", post(r::delete_run))
        .route("/runs/restore", post(r::restore_run))
        .route("/runs/set-tag", post(r::set_tag))
        .route("/runs/delete-tag", post(r::delete_tag))
        .route("/runs/search", post(search::search_runs))
        .route("/runs/log-parameter", post(l::log_param))
        .route("/runs/log-metric", post(l::log_metric))
        .route("/runs/log-batch", post(l::log_batch))
        .route("/runs/log-inputs", post(l::log_inputs))
        .route("/runs/outputs", post(l::log_outputs))
        .route("/metrics/get-history", get(search::get_metric_history))
        .route("/artifacts/list", get(artifacts::list_run_artifacts))
}

fn registry() -> Router<AppState> {
    use logged_models as lm;
    use model_versions as mv;
    use registered_models as rm;
    Router::new()
        .route("/registered-models/create", post(rm::create_model))
        .route("/registered-models/get", get(rm::get_model))
        .route("/registered-models/rename", post(rm::rename_model))
        .route("/registered-models/update", patch(rm::update_model))
        .route(
            "/registered-models/delete",
            axum::routing::delete(rm::delete_model),
        )
        .route("/registered-models/search", get(rm::search_models))
        .route(
            "/registered-models/get-latest-versions",
            get(rm::get_latest_versions).post(rm::get_latest_versions),
        )
        .route("/registered-models/set-tag", post(rm::set_model_tag))
        .route(
            "/registered-models/delete-tag",
            axum::routing::delete(rm::delete_model_tag),
        )
        .route(
            "/registered-models/alias",
            get(rm::get_by_alias)
                .post(rm::set_alias)
                .delete(rm::delete_alias),
        )
        .route("/model-versions/create", post(mv::create_version))
        .route("/model-versions/get", get(mv::get_version))
        .route("/model-versions/update", patch(mv::update_version))
        .route(
            "/model-versions/delete",
            axum::routing::delete(mv::delete_version),
        )
        .route("/model-versions/search", get(mv::search_versions))
        .route(
            "/model-versions/get-download-uri",
            get(mv::get_download_uri),
        )
        .route(
            "/model-versions/transition-stage",
            post(mv::transition_stage),
        )
        .route("/model-versions/set-tag", post(mv::set_version_tag))
        .route(
            "/model-versions/delete-tag",
            axum::routing::delete(mv::delete_version_tag),
        )
        .route("/logged-models", post(lm::create_model))
        .route("/logged-models/search", post(lm::search_models))
        .route(
            "/logged-models/{model_id}",
            get(lm::get_model)
                .patch(lm::finalize_model)
                .delete(lm::delete_model),
        )
        .route("/logged-models/{model_id}/tags", patch(lm::set_tags))
        .route(
            "/logged-models/{model_id}/tags/{tag_key}",
            axum::routing::delete(lm::delete_tag),
        )
        .route("/logged-models/{model_id}/params", post(lm::log_params))
}

fn artifact_proxy() -> Router<AppState> {
    use artifacts as a;
    Router::new()
        .route("/artifacts", get(a::list_artifacts))
        .route(
            "/artifacts/{*path}",
            get(a::download_artifact)
                .put(a::upload_artifact)
                .delete(a::delete_artifact),
        )
        .route("/mpu/create/{*path}", post(multipart::create_upload))
        .route("/mpu/complete/{*path}", post(multipart::complete_upload))
        .route("/mpu/abort/{*path}", post(multipart::abort_upload))
        .route("/mpu/parts/{upload_id}/{part}", put(multipart::upload_part))
}

/// What this server offers MLflow clients: multipart uploads through the
/// proxy, plain downloads, no MLflow workspaces (the token chooses).
async fn server_info() -> Json<Value> {
    Json(json!({
        "store_type": "SqlStore",
        "workspaces_enabled": false,
        "multipart_uploads_enabled": true,
        "multipart_downloads_enabled": false,
    }))
}

async fn no_endpoint(OriginalUri(uri): OriginalUri) -> MlflowError {
    MlflowError::no_endpoint(uri.path())
}
