//! Who the caller is: `envline login` checks a token with it, and scripts
//! can ask what they may do before they try.

use app::model::Viewer;
use app::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiResult, ErrorBody};
use super::extract::Caller;

/// The caller's own view, routed and documented.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(me))
}

/// The caller's name, roles and, per environment, what they may do there
/// (`signed_in` is false for the anonymous reader).
#[utoipa::path(
    get,
    path = "/api/v1/me",
    tag = "admin",
    security((), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "Who the token or session belongs to, and what they may do", body = Viewer),
        (status = 401, description = "The token or session is unknown, or revoked", body = ErrorBody),
    ),
)]
async fn me(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    Ok(Json(state.engine.viewer(&caller.0)).into_response())
}
