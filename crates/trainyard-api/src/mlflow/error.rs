//! MLflow's error shape: `{"error_code": "...", "message": "..."}` with the
//! HTTP status MLflow gives each code, so clients raise the exceptions their
//! users expect (`RESOURCE_DOES_NOT_EXIST` makes `get_experiment_by_name`
//! return `None`, for instance).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use trainyard_core::FieldError;
use trainyard_db::DbError;
use trainyard_storage::StorageError;

/// An answer in MLflow's error shape.
#[derive(Debug)]
pub struct MlflowError {
    /// MLflow's error code.
    pub code: &'static str,
    /// What went wrong.
    pub message: String,
}

/// What MLflow handlers return.
pub type MlflowResult<T> = Result<T, MlflowError>;

impl MlflowError {
    fn new(code: &'static str, message: impl Into<String>) -> MlflowError {
        MlflowError {
            code,
            message: message.into(),
        }
    }

    /// A refused parameter (400).
    pub fn invalid(message: impl Into<String>) -> MlflowError {
        MlflowError::new("INVALID_PARAMETER_VALUE", message)
    }

    /// Something that does not exist, or that the caller may not see (404).
    pub fn not_found(message: impl Into<String>) -> MlflowError {
        MlflowError::new("RESOURCE_DOES_NOT_EXIST", message)
    }

    /// A name that is taken (MLflow answers 400).
    pub fn exists(message: impl Into<String>) -> MlflowError {
        MlflowError::new("RESOURCE_ALREADY_EXISTS", message)
    }

    /// A token whose role does not allow the action (403).
    pub fn denied(message: impl Into<String>) -> MlflowError {
        MlflowError::new("PERMISSION_DENIED", message)
    }

    /// No usable credentials (401).
    pub fn unauthenticated(message: impl Into<String>) -> MlflowError {
        MlflowError::new("UNAUTHENTICATED", message)
    }

    /// A route this server does not serve (404).
    pub fn no_endpoint(path: &str) -> MlflowError {
        MlflowError::new(
            "ENDPOINT_NOT_FOUND",
            format!("{path} is not an MLflow endpoint this server serves"),
        )
    }

    /// A failure inside the server; the cause is logged, not returned.
    pub fn internal(cause: impl std::fmt::Display) -> MlflowError {
        tracing::error!(error = %cause, "MLflow request failed");
        MlflowError::new("INTERNAL_ERROR", "internal error")
    }

    fn status(&self) -> StatusCode {
        match self.code {
            "RESOURCE_DOES_NOT_EXIST" | "ENDPOINT_NOT_FOUND" => StatusCode::NOT_FOUND,
            "PERMISSION_DENIED" => StatusCode::FORBIDDEN,
            "UNAUTHENTICATED" => StatusCode::UNAUTHORIZED,
            "INTERNAL_ERROR" => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

impl From<FieldError> for MlflowError {
    fn from(err: FieldError) -> MlflowError {
        MlflowError::invalid(err.reason)
    }
}

impl From<DbError> for MlflowError {
    fn from(err: DbError) -> MlflowError {
        match err {
            DbError::NotFound(what) => {
                MlflowError::not_found(format!("{} not found", capitalized(what)))
            }
            DbError::Conflict { what, .. } => MlflowError::exists(format!(
                "{} with this name already exists",
                capitalized(what)
            )),
            DbError::Deleted(what) => MlflowError::invalid(format!(
                "The {what} must be in the 'active' state. Current state is deleted."
            )),
            err @ (DbError::ParamChanged { .. }
            | DbError::MetricKind { .. }
            | DbError::Transition(_)) => MlflowError::invalid(err.to_string()),
            DbError::BadCursor => MlflowError::invalid("Invalid page token"),
            other => MlflowError::internal(other),
        }
    }
}

impl From<StorageError> for MlflowError {
    fn from(err: StorageError) -> MlflowError {
        match err {
            StorageError::NotFound { .. } => MlflowError::not_found("No such artifact"),
            StorageError::Invalid { reason } => MlflowError::invalid(reason),
            other => MlflowError::internal(other),
        }
    }
}

fn capitalized(what: &str) -> String {
    let mut chars = what.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

impl IntoResponse for MlflowError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error_code": self.code, "message": self.message });
        (self.status(), axum::Json(body)).into_response()
    }
}
