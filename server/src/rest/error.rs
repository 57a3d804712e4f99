//! The API's error answer: the shared [`ErrorReply`] with its HTTP status,
//! sent as `{"error": {code, message, details}}` ([`ErrorBody`]).

use app::error::AppError;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
pub use envline_api::ErrorBody;
use envline_api::{ErrorCode, ErrorReply};
use envline_engine::EngineError;

/// An error answered as `{"error": {code, message, details}}`.
pub struct ApiError(pub ErrorReply);

/// What API handlers return.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError(ErrorReply::new(status.as_u16(), code, message))
    }

    /// 400 with a message saying what is wrong with the input.
    pub fn bad_input(message: impl Into<String>) -> ApiError {
        ApiError(ErrorReply::bad_input(message))
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        ApiError(ErrorReply::from(e))
    }
}

impl From<ErrorReply> for ApiError {
    fn from(e: ErrorReply) -> Self {
        ApiError(e)
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        ApiError(e.0)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = self.0;
        let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::error!("{}: {}", e.code, e.message);
        }
        let retry_after = e
            .details
            .get("retry_after_seconds")
            .and_then(|s| s.as_u64());
        let mut response = (status, Json(ErrorBody::from(e))).into_response();
        if status == StatusCode::TOO_MANY_REQUESTS
            && let Some(seconds) = retry_after
        {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}
