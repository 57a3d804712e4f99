//! Who the caller is: `envline login` checks a token with it, and scripts
//! can ask what they may do before they try.

use app::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use envline_api::Viewer;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiResult, ErrorBody};
use super::extract::{Body, Caller};

/// The caller's own view, routed and documented.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(me))
        .routes(routes!(change_password))
}

/// `POST /api/v1/me/password`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"current": "correct horse battery", "new": "staple battery horse correct"}))]
struct PasswordChange {
    /// The password now.
    current: String,
    /// The new one (8 characters or more).
    #[schema(min_length = 8)]
    new: String,
}

/// The answer of `POST /api/v1/me/password`.
#[derive(Serialize, ToSchema)]
struct PasswordChanged {
    /// How many other sessions were ended.
    sessions_ended: u64,
}

/// Changes the caller's own password, proving the current one. Every other
/// session of theirs ends (the one that asked, if any, stays signed in).
#[utoipa::path(
    post,
    path = "/api/v1/me/password",
    tag = "admin",
    request_body = PasswordChange,
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "Changed", body = PasswordChanged),
        (status = 400, description = "The new password is too short", body = ErrorBody),
        (status = 401, description = "No valid token or session", body = ErrorBody),
        (status = 403, description = "A browser's change from another site", body = ErrorBody),
        (status = 413, description = "The body is over the size limit", body = ErrorBody),
        (status = 422, description = "`wrong_password`: the current password is not right; `same_password`: the new one is the current one", body = ErrorBody),
    ),
)]
async fn change_password(
    State(state): State<AppState>,
    headers: HeaderMap,
    caller: Caller,
    body: Body,
) -> ApiResult<Response> {
    let input: PasswordChange = body.json()?;
    let keep = envline_engine::session::session_secret(&headers);
    let ended = state
        .engine
        .people()
        .change_own_password(&caller.0, &input.current, &input.new, keep.as_deref())
        .await?;
    Ok(Json(PasswordChanged {
        sessions_ended: ended,
    })
    .into_response())
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
