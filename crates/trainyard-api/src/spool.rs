//! Streaming a request body to a temporary file, under a size limit, so that
//! uploads of any size keep memory flat.

use axum::body::Body;
use futures::StreamExt;
use std::io::Write;

use crate::error::ApiError;

/// Writes `body` to a temporary file; past `limit` bytes answers `too_large()`.
pub(crate) async fn spool(
    body: Body,
    limit: u64,
    too_large: impl Fn() -> ApiError,
) -> Result<tempfile::NamedTempFile, ApiError> {
    let mut file = tempfile::NamedTempFile::new().map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut received = 0u64;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::BadRequest {
            code: "unreadable_body",
            detail: e.to_string(),
            field: None,
        })?;
        received += chunk.len() as u64;
        if received > limit {
            return Err(too_large());
        }
        file.write_all(&chunk)
            .map_err(|e| ApiError::Internal(e.to_string()))?;
    }
    file.flush()
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(file)
}

/// Reads and discards a body that will be refused, so the client, still
/// sending, gets the answer instead of a broken connection. Stops after
/// `limit` bytes (the connection is then closed).
pub(crate) async fn drain(body: Body, limit: u64) {
    let mut received = 0u64;
    let mut stream = body.into_data_stream();
    while let Some(Ok(chunk)) = stream.next().await {
        received += chunk.len() as u64;
        if received > limit {
            break;
        }
    }
}
