//! The web console (`console/`, a TypeScript app): its built files are
//! embedded in the binary and served at `/`. It is a client of `/api/v1` like
//! any other; nothing here reads the store.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use include_dir::{include_dir, Dir};

use crate::error::ApiError;

/// `console/dist` as it was when this crate was built (see `build.rs`).
static DIST: Dir<'static> = include_dir!("$TRAINYARD_CONSOLE_DIST");

/// The console's own resources may load; nothing else, and no framing.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data: blob:; \
     style-src 'self' 'unsafe-inline'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/// Served at `/` when the binary was built before the console.
const NOT_BUILT: &str = "<!doctype html><meta charset=utf-8><title>Trainyard</title>\
<h1>The web console was not built</h1>\
<p>This server was compiled before its console. Build the console, then the server:</p>\
<pre>bash deploy/build-console.sh   # npm ci and npm run build in console/\ncargo build --release -p trainyard</pre>\
<p>(<code>deploy/quickstart.sh</code> does both.) The API is at <a href=\"/api/v1/docs/\">/api/v1/docs/</a>.</p>";

/// `/` (the app's one page; its routes live in the URL's fragment),
/// `/assets/…` (named by content hash, so cached for good) and the icon.
pub(crate) fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(index))
        .route("/index.html", get(index))
        .route(
            "/favicon.svg",
            get(|| async { file("favicon.svg", "no-cache") }),
        )
        .route(
            "/assets/{*path}",
            get(|Path(path): Path<String>| async move {
                file(
                    &format!("assets/{path}"),
                    "public, max-age=31536000, immutable",
                )
            }),
        )
}

async fn index() -> Response {
    let (status, body) = match DIST.get_file("index.html") {
        Some(page) => (StatusCode::OK, page.contents()),
        None => (StatusCode::NOT_FOUND, NOT_BUILT.as_bytes()),
    };
    let headers = [
        (header::CACHE_CONTROL, "no-cache"),
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
    ];
    (status, headers, Html(body)).into_response()
}

fn file(path: &str, cache_control: &'static str) -> Response {
    let Some(file) = DIST.get_file(path) else {
        return ApiError::NotFound("console file").into_response();
    };
    let headers = [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static(content_type(path)),
        ),
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static(cache_control),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
    ];
    (headers, file.contents()).into_response()
}

/// The media types a vite build emits.
fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("woff2") => "font/woff2",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::content_type;

    #[test]
    fn built_files_get_their_media_type() {
        assert_eq!(
            content_type("assets/index-x1.js"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(
            content_type("assets/index-x1.css"),
            "text/css; charset=utf-8"
        );
        assert_eq!(content_type("favicon.svg"), "image/svg+xml");
        assert_eq!(content_type("assets/blob"), "application/octet-stream");
    }
}
