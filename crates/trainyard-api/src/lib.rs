//! Trainyard's HTTP API: thin axum handlers over the store, one error shape,
//! bearer-token authentication, and an OpenAPI document of every route.

pub mod auth;
mod console;
pub mod error;
pub mod extract;
mod mlflow;
mod openapi;
mod routes;
mod spool;
mod trace;

use axum::extract::{DefaultBodyLimit, FromRef};
use axum::Router;
use std::future::Future;
use tokio::net::TcpListener;
use trainyard_db::Db;
use trainyard_storage::Storage;

pub use mlflow::RunSearchCache;
pub use openapi::{openapi_document, API_VERSION};

/// Limits the API enforces on every request.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest JSON request body accepted, in bytes.
    pub max_request_body_bytes: usize,
    /// Largest source snapshot accepted, uncompressed, in bytes.
    pub max_snapshot_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_request_body_bytes: 1024 * 1024,
            max_snapshot_bytes: 300 * 1024 * 1024,
        }
    }
}

/// What every handler can reach.
#[derive(Clone, Debug, FromRef)]
pub struct AppState {
    /// The store.
    pub db: Db,
    /// Request limits.
    pub limits: Limits,
    /// Snapshots and run files.
    pub storage: Storage,
    /// CA certificates image builds trust; part of every image's tag.
    pub extra_ca: std::sync::Arc<Vec<u8>>,
    /// MLflow search answers, kept while nothing they read changes.
    pub run_searches: std::sync::Arc<RunSearchCache>,
}

/// The whole application: health probes, `/api/v1`, its OpenAPI document,
/// the interactive docs page, the web console, and the MLflow REST API
/// (outside the OpenAPI document: it follows MLflow's own specification).
pub fn app(state: AppState) -> Router {
    let (api, document) = routes::router().split_for_parts();
    let limit = state.limits.max_request_body_bytes;
    let docs =
        utoipa_swagger_ui::SwaggerUi::new("/api/v1/docs").url("/api/v1/openapi.json", document);
    Router::new()
        .merge(api)
        .merge(docs)
        .merge(console::router())
        .merge(mlflow::router())
        .fallback(routes::not_found)
        .layer(DefaultBodyLimit::max(limit))
        .layer(trace::layer())
        .with_state(state)
}

/// Serves the application on `listener` until `shutdown` completes, then
/// finishes the requests in flight.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await
}
