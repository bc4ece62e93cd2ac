//! The OpenAPI 3.1 document, built from the handlers' annotations.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::OpenApi as Document;
use utoipa::{Modify, OpenApi};

/// The version of the HTTP API (not of the server build).
pub const API_VERSION: &str = "1.0.0";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Trainyard API",
        description = "Self-hosted training orchestration: workspaces, experiments and runs.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "health", description = "Liveness and readiness probes"),
        (name = "workspaces", description = "Workspaces (server administrators)"),
        (name = "tokens", description = "API tokens of a workspace"),
        (name = "experiments", description = "Experiments: named groups of runs"),
        (name = "runs", description = "Runs: submission, tags, properties, status history, logs and files"),
        (name = "snapshots", description = "Source snapshots, stored once by content"),
        (name = "environments", description = "Named, versioned environments and their images"),
        (name = "datastores", description = "Datastores and their files"),
        (name = "datasets", description = "Versioned file datasets"),
        (name = "models", description = "The model registry"),
        (name = "metrics", description = "Metrics runs log: scalars, lists, rows, tables, images"),
        (name = "compute", description = "Compute targets and their nodes"),
    )
)]
pub(crate) struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut Document) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        openapi.info.version = API_VERSION.to_string();
    }
}

/// The complete OpenAPI document of the API.
pub fn openapi_document() -> Document {
    crate::routes::router().split_for_parts().1
}
