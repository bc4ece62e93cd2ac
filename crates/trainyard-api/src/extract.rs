//! Extractors that answer bad input in the API's problem shape, naming the field.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::{header, request::Parts, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::ApiError;
use crate::Limits;

/// A JSON body: refuses other content types, bodies over the limit, malformed
/// JSON, wrong types and unknown fields, each with the field at fault.
#[derive(Debug, Clone, Copy, Default)]
pub struct AppJson<T>(pub T);

impl<S, T> FromRequest<S> for AppJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
    Limits: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                let v = v.trim();
                v == "application/json" || v.ends_with("+json")
            });
        if !is_json {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|rejection| body_error(rejection, Limits::from_ref(state)))?;
        parse_json(&bytes).map(AppJson)
    }
}

impl<T: Serialize> IntoResponse for AppJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

fn body_error(rejection: BytesRejection, limits: Limits) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::TooLarge {
            limit: limits.max_request_body_bytes as u64,
            setting: Some("max_request_body_bytes"),
        }
    } else {
        ApiError::BadRequest {
            code: "unreadable_body",
            detail: rejection.body_text(),
            field: None,
        }
    }
}

/// Parses a JSON document, naming the field that failed.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Tracking the path costs on every value; only a refused body needs it,
    // so it is parsed again with the tracking to name the field.
    if let Ok(value) = serde_json::from_slice(bytes) {
        return Ok(value);
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            return ApiError::BadRequest {
                code: "malformed_json",
                detail: format!("the body is not valid JSON: {inner}"),
                field: None,
            };
        }
        field_error(&path, &inner.to_string())
    })?;
    deserializer.end().map_err(|err| ApiError::BadRequest {
        code: "malformed_json",
        detail: format!("the body is not valid JSON: {err}"),
        field: None,
    })?;
    Ok(value)
}

/// Turns a serde message at `path` into a field error; an unknown field is
/// named itself, not by its parent.
fn field_error(path: &str, message: &str) -> ApiError {
    // serde_json appends " at line L column C"; the client has the field name.
    let message = message
        .split(" at line ")
        .next()
        .unwrap_or(message)
        .to_string();
    let parent = if path == "." { "" } else { path };
    if let Some(rest) = message.strip_prefix("unknown field `") {
        // The path already ends at the unknown key.
        let name = rest.split('`').next().unwrap_or_default();
        let field = if parent.is_empty() { name } else { parent };
        return ApiError::invalid(field, "is not a known field");
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        let name = rest.split('`').next().unwrap_or_default();
        let field = if parent.is_empty() {
            name.to_string()
        } else {
            format!("{parent}.{name}")
        };
        return ApiError::invalid(field, "is required");
    }
    let field = if parent.is_empty() { "body" } else { parent };
    ApiError::invalid(field, message)
}

/// Query parameters (repeated keys allowed for lists); an unknown parameter is
/// refused by name.
#[derive(Debug, Clone, Copy, Default)]
pub struct AppQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for AppQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        // Query structs hold text and lists of text; typed parameters are
        // parsed by the handler, which knows their names.
        serde_html_form::from_str(query)
            .map(AppQuery)
            .map_err(|err| field_error(".", &err.to_string()))
    }
}

/// Path parameters, refused with the parameter's name when one does not parse.
#[derive(Debug, Clone, Copy, Default)]
pub struct AppPath<T>(pub T);

impl<S, T> FromRequestParts<S> for AppPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        use axum::extract::path::ErrorKind;
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(AppPath(value)),
            Err(PathRejection::FailedToDeserializePathParams(err)) => match err.kind() {
                ErrorKind::ParseErrorAtKey { key, .. }
                | ErrorKind::DeserializeError { key, .. } => {
                    Err(ApiError::invalid(key.clone(), "must be a UUID"))
                }
                _ => Err(ApiError::BadRequest {
                    code: "invalid_path",
                    detail: err.body_text(),
                    field: None,
                }),
            },
            Err(other) => Err(ApiError::BadRequest {
                code: "invalid_path",
                detail: other.body_text(),
                field: None,
            }),
        }
    }
}
