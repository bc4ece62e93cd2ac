//! The one error shape of the API: RFC 9457 problem details with a stable
//! `code` and, where one input is at fault, the `field`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use trainyard_core::{FieldError, TransitionError};
use trainyard_db::DbError;
use utoipa::ToSchema;

/// An RFC 9457 problem document, as every 4xx and 5xx answer carries it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem: `urn:trainyard:problem:<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the kind of problem.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong in this case.
    pub detail: String,
    /// A stable machine-readable code, e.g. `invalid_field` or `not_found`.
    pub code: String,
    /// The input at fault, as the client named it (`name`, `tags.team`, `limit`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// Everything a handler can answer instead of success.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// An input field was refused.
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// The request is malformed as a whole (bad JSON, wrong content type).
    #[error("{detail}")]
    BadRequest {
        /// Stable code.
        code: &'static str,
        /// What is wrong.
        detail: String,
        /// The field, when the parser could tell.
        field: Option<String>,
    },
    /// No valid credentials.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// Credentials valid, but not enough for this action.
    #[error("{0}")]
    Forbidden(String),
    /// The resource does not exist, or is not visible to the caller.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A unique name is taken.
    #[error("{what} with this {field} already exists")]
    Conflict {
        /// What collided.
        what: &'static str,
        /// The field holding the colliding value.
        field: &'static str,
    },
    /// The change waits on something still in use; the text says what.
    #[error("{0}")]
    Busy(&'static str),
    /// The run state machine refused the change.
    #[error(transparent)]
    Transition(#[from] TransitionError),
    /// The request body is over the limit.
    #[error("request body is larger than the limit of {limit} bytes{}", setting.map(|s| format!(" (setting {s})")).unwrap_or_default())]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
        /// The setting that raises it, if one does.
        setting: Option<&'static str>,
    },
    /// A source snapshot is over the limit.
    #[error("the snapshot is larger than the limit of {limit} bytes (setting max_snapshot_bytes); leave files out with a .trainyardignore file (gitignore syntax) in the source directory")]
    SnapshotTooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// A request carries more items than one request may.
    #[error("{field} holds {count} items; at most {limit} are accepted in one request")]
    BatchTooLarge {
        /// The list at fault.
        field: &'static str,
        /// How many it held.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// The body is not JSON.
    #[error("expected a body with content type application/json")]
    UnsupportedMediaType,
    /// Something failed inside the server; details are logged, not returned.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// A refusal of `field` for `reason`.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> ApiError {
        ApiError::Invalid(FieldError::new(field, reason))
    }

    fn parts(&self) -> (StatusCode, &'static str, &'static str, Option<String>) {
        use ApiError::*;
        match self {
            Invalid(e) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_field",
                "Invalid field",
                Some(e.field.clone()),
            ),
            BadRequest { code, field, .. } => {
                (StatusCode::BAD_REQUEST, code, "Bad request", field.clone())
            }
            Unauthenticated(_) => (
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "Authentication required",
                None,
            ),
            Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", "Forbidden", None),
            NotFound(_) => (StatusCode::NOT_FOUND, "not_found", "Not found", None),
            Conflict { field, .. } => (
                StatusCode::CONFLICT,
                "already_exists",
                "Already exists",
                Some((*field).to_string()),
            ),
            Busy(_) => (StatusCode::CONFLICT, "in_use", "In use", None),
            Transition(_) => (
                StatusCode::CONFLICT,
                "invalid_transition",
                "Status change not allowed",
                None,
            ),
            TooLarge { .. } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                "Request body too large",
                None,
            ),
            SnapshotTooLarge { .. } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "snapshot_too_large",
                "Snapshot too large",
                None,
            ),
            BatchTooLarge { field, .. } => (
                StatusCode::BAD_REQUEST,
                "batch_too_large",
                "Batch too large",
                Some((*field).to_string()),
            ),
            UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Unsupported media type",
                None,
            ),
            Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal server error",
                None,
            ),
        }
    }

    /// The problem document for this error.
    pub fn problem(&self) -> (StatusCode, Problem) {
        let (status, code, title, field) = self.parts();
        let detail = match self {
            ApiError::Invalid(e) => e.reason.clone(),
            other => other.to_string(),
        };
        let problem = Problem {
            kind: format!("urn:trainyard:problem:{code}"),
            title: title.to_string(),
            status: status.as_u16(),
            detail,
            code: code.to_string(),
            field,
        };
        (status, problem)
    }
}

impl From<DbError> for ApiError {
    fn from(err: DbError) -> ApiError {
        match err {
            DbError::NotFound(what) => ApiError::NotFound(what),
            DbError::Conflict { what, field } => ApiError::Conflict { what, field },
            DbError::Transition(t) => ApiError::Transition(t),
            DbError::Busy(why) => ApiError::Busy(why),
            DbError::BadCursor => ApiError::invalid("cursor", "is not a cursor this server issued"),
            err @ DbError::MetricKind { .. } => ApiError::invalid("metrics", err.to_string()),
            err @ DbError::ParamChanged { .. } => ApiError::invalid("properties", err.to_string()),
            DbError::Deleted(what) => ApiError::NotFound(what),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl ApiError {
    /// A storage failure: a missing key is a missing `what`, a refused key
    /// names `field`, anything else is internal.
    pub fn from_storage(
        what: &'static str,
        field: &str,
        err: trainyard_storage::StorageError,
    ) -> ApiError {
        use trainyard_storage::StorageError;
        match err {
            StorageError::NotFound { .. } => ApiError::NotFound(what),
            StorageError::Invalid { reason } => ApiError::invalid(field, reason),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(source) = &self {
            // The client gets a generic message; the cause goes to the log.
            tracing::error!(error = %source, "request failed");
        }
        let (status, problem) = self.problem();
        let mut response = (status, axum::Json(problem)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// What handlers return.
pub type ApiResult<T> = Result<T, ApiError>;
