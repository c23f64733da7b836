//! `ApiError`: how a failed REST request becomes an HTTP status and a JSON body `{"error": "..."}`.

use axum::Json;
use axum::http::StatusCode;
use axum::http::header::RETRY_AFTER;
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("missing or wrong bearer token")]
    Unauthorized,
    #[error("storage error: {0}")]
    Storage(String),
    #[error("the server is shutting down")]
    Unavailable,
    /// The store does not take writes now (e.g. the disk is full): 503 with `Retry-After`.
    #[error("storage unavailable: {reason}")]
    StorageUnavailable {
        reason: String,
        retry_after_secs: u64,
    },
    /// Every read permit stayed taken for the whole wait (`rest.read_wait_ms`): 503 with `Retry-After`.
    #[error("too many reads at once; try again in {retry_after_secs} s")]
    Busy { retry_after_secs: u64 },
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::StorageUnavailable {
            retry_after_secs, ..
        }
        | ApiError::Busy { retry_after_secs } = &self
        {
            let retry_after = retry_after_secs.to_string();
            let body = json!({ "error": self.to_string(), "retry_after_secs": retry_after_secs });
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                [(RETRY_AFTER, retry_after)],
                Json(body),
            )
                .into_response();
        }
        let status = match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Storage(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Unavailable | ApiError::StorageUnavailable { .. } | ApiError::Busy { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        };
        (status, Json(json!({ "error": self.to_string() }))).into_response()
    }
}

/// A page size from a query string: `default` when absent, else an integer from 1 to `max`.
pub fn limit_param(
    params: &std::collections::HashMap<String, String>,
    default: usize,
    max: usize,
) -> Result<usize, ApiError> {
    let Some(text) = params.get("limit") else {
        return Ok(default);
    };
    text.parse::<usize>()
        .ok()
        .filter(|n| (1..=max).contains(n))
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "`limit` must be an integer from 1 to {max}, got `{text}`"
            ))
        })
}

impl From<kline_store::StoreError> for ApiError {
    fn from(err: kline_store::StoreError) -> Self {
        ApiError::Storage(err.to_string())
    }
}

impl From<kline_pipeline::service::IngestError> for ApiError {
    fn from(err: kline_pipeline::service::IngestError) -> Self {
        match err {
            kline_pipeline::service::IngestError::ShuttingDown => ApiError::Unavailable,
            kline_pipeline::service::IngestError::Unavailable {
                reason,
                retry_after_ms,
            } => ApiError::StorageUnavailable {
                reason,
                // Whole seconds (the header's unit), at least one.
                retry_after_secs: retry_after_ms.div_ceil(1000).max(1),
            },
        }
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(err: tokio::task::JoinError) -> Self {
        ApiError::Storage(format!("query task failed: {err}"))
    }
}
