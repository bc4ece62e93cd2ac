//! Source snapshots: uploaded as tar.gz, stored once by content digest.

mod upload;

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(upload::upload_snapshot))
}
