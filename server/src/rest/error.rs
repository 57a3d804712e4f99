//! The API's error answer: the shared [`AppError`] with its HTTP status.

use app::engine::EngineError;
use app::error::AppError;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// An error answered as `{"error": {code, message, details}}`.
pub struct ApiError(pub AppError);

/// What API handlers return.
pub type ApiResult<T> = Result<T, ApiError>;

/// The body of every error answer; also its schema in the OpenAPI document.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong, for a program (`code`) and for a person (`message`).
#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable, machine-readable code (`bad_input`, `forbidden`, `not_found`,
    /// `gates_not_met`, …).
    pub code: String,
    /// What went wrong and what to do.
    pub message: String,
    /// Structured details when there are some: the unmet gates (422), the
    /// missing permission (403), a merge-back's conflicts (409); else `null`.
    pub details: serde_json::Value,
}

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
        let retry_after = e
            .details
            .get("retry_after_seconds")
            .and_then(|s| s.as_u64());
        let body = ErrorBody {
            error: ErrorDetail {
                code: e.code,
                message: e.message,
                details: e.details,
            },
        };
        let mut response = (status, Json(body)).into_response();
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
