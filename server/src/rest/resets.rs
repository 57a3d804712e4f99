//! Moves that are not fast-forwards: rollbacks (S3) with their preview,
//! realignments and out-of-order cherry-picks (S5).

use app::engine::{Engine, ops};
use app::model::{CherryPickInput, RealignInput, RollbackInput};
use app::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;

use super::error::ApiResult;
use super::extract::{Body, Caller};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/rollbacks", post(rollback))
        .route("/api/v1/rollbacks/preview", post(preview_rollback))
        .route("/api/v1/realignments", post(realign))
        .route("/api/v1/cherry-picks", post(cherry_pick))
        .route("/api/v1/cherry-picks/preview", post(preview_cherry_pick))
}

/// What `POST /api/v1/cherry-picks` with the same body would do; moves nothing.
async fn preview_cherry_pick(
    State(state): State<AppState>,
    caller: Caller,
    body: Body,
) -> ApiResult<Response> {
    let input: CherryPickInput = body.json()?;
    let preview = ops::preview_cherry_pick(&state.engine, &caller.0, &input).await?;
    Ok(Json(preview).into_response())
}

async fn rollback(
    State(state): State<AppState>,
    caller: Caller,
    body: Body,
) -> ApiResult<Response> {
    let input: RollbackInput = body.json()?;
    let (engine, who) = (state.engine.clone(), caller.0);
    let events = Engine::detached(async move { ops::rollback(&engine, &who, input).await }).await?;
    Ok((StatusCode::CREATED, Json(json!({ "events": events }))).into_response())
}

/// What `POST /api/v1/rollbacks` with the same body would do; moves nothing.
async fn preview_rollback(
    State(state): State<AppState>,
    caller: Caller,
    body: Body,
) -> ApiResult<Response> {
    let input: RollbackInput = body.json()?;
    let plans = ops::preview_rollback(&state.engine, &caller.0, input).await?;
    Ok(Json(json!({ "plans": plans })).into_response())
}

async fn realign(State(state): State<AppState>, caller: Caller, body: Body) -> ApiResult<Response> {
    let input: RealignInput = body.json()?;
    let (engine, who) = (state.engine.clone(), caller.0);
    let result = Engine::detached(async move {
        ops::realign(&engine, &who, &input.environment, input.reason.as_deref()).await
    })
    .await?;
    Ok((StatusCode::CREATED, Json(result)).into_response())
}

async fn cherry_pick(
    State(state): State<AppState>,
    caller: Caller,
    body: Body,
) -> ApiResult<Response> {
    let input: CherryPickInput = body.json()?;
    let (engine, who) = (state.engine.clone(), caller.0);
    let result =
        Engine::detached(async move { ops::cherry_pick(&engine, &who, input).await }).await?;
    Ok((StatusCode::CREATED, Json(result)).into_response())
}
