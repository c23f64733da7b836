//! `ApiError`: how a failed REST request becomes an HTTP status and a JSON body `{"error": "..."}`.

use axum::Json;
use axum::http::StatusCode;
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
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Storage(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        };
        (status, Json(json!({ "error": self.to_string() }))).into_response()
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(err: crate::store::StoreError) -> Self {
        ApiError::Storage(err.to_string())
    }
}

impl From<crate::pipeline::service::IngestError> for ApiError {
    fn from(err: crate::pipeline::service::IngestError) -> Self {
        match err {
            crate::pipeline::service::IngestError::ShuttingDown => ApiError::Unavailable,
            crate::pipeline::service::IngestError::Store(message) => ApiError::Storage(message),
        }
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(err: tokio::task::JoinError) -> Self {
        ApiError::Storage(format!("query task failed: {err}"))
    }
}
