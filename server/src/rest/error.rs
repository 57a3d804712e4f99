//! The API's error answer: the shared [`AppError`] with its HTTP status.

use app::engine::EngineError;
use app::error::AppError;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error answered as `{"error": {code, message, details}}`.
pub struct ApiError(pub AppError);

/// What API handlers return.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> ApiError {
        ApiError(AppError::new(status.as_u16(), code, message))
    }

    /// 400 with a message saying what is wrong with the input.
    pub fn bad_input(message: impl Into<String>) -> ApiError {
        ApiError(AppError::bad_input(message))
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        ApiError(AppError::from(e))
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        ApiError(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = self.0;
        let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::error!("{}: {}", e.code, e.message);
        }
        (
            status,
            Json(
                json!({ "error": { "code": e.code, "message": e.message, "details": e.details } }),
            ),
        )
            .into_response()
    }
}
