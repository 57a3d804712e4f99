//! Who the caller is: `envline login` checks a token with it, and scripts
//! can ask what they may do before they try.

use app::state::AppState;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use super::error::ApiResult;
use super::extract::Caller;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/me", get(me))
}

/// The caller's name, roles and, per environment, what they may do there.
async fn me(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    Ok(Json(state.engine.viewer(&caller.0)).into_response())
}
