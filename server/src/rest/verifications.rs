//! `POST /api/v1/verifications`: a tester or CI records a test result (I3).

use app::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use envline_api::{VerificationView, VerifyInput};
use envline_engine::{Engine, ops};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiResult, ErrorBody};
use super::extract::{Body, Caller};

/// Recording test results, routed and documented.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(verify))
}

/// Records the outcome of testing exactly one commit in one environment.
#[utoipa::path(
    post,
    path = "/api/v1/verifications",
    tag = "verifications",
    request_body = VerifyInput,
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 201, description = "Recorded", body = VerificationView),
        (status = 400, description = "The body is not a test result", body = ErrorBody),
        (status = 401, description = "No valid token or session", body = ErrorBody),
        (status = 403, description = "The caller may not verify there, or a browser's change from another site", body = ErrorBody),
        (status = 404, description = "An unknown environment or commit", body = ErrorBody),
        (status = 413, description = "The body is over the size limit", body = ErrorBody),
        (status = 422, description = "The environment never held that commit", body = ErrorBody),
    ),
)]
async fn verify(State(state): State<AppState>, caller: Caller, body: Body) -> ApiResult<Response> {
    let input: VerifyInput = body.json()?;
    let (engine, who) = (state.engine.clone(), caller.0);
    let result = Engine::detached(async move { ops::verify(&engine, &who, input).await }).await?;
    Ok((StatusCode::CREATED, Json(result)).into_response())
}
