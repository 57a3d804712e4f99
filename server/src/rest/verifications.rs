//! `POST /api/v1/verifications`: a tester or CI records a test result (I3).

use app::engine::{Engine, ops};
use app::model::VerifyInput;
use app::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};

use super::error::ApiResult;
use super::extract::{Body, Caller};

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/verifications", post(verify))
}

async fn verify(State(state): State<AppState>, caller: Caller, body: Body) -> ApiResult<Response> {
    let input: VerifyInput = body.json()?;
    let (engine, who) = (state.engine.clone(), caller.0);
    let result = Engine::detached(async move { ops::verify(&engine, &who, input).await }).await?;
    Ok((StatusCode::CREATED, Json(result)).into_response())
}
