//! Holds and freezes: place, list, release.

use app::engine::{Engine, ops};
use app::model::HoldInput;
use app::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use axum::{Json, Router};
use serde_json::json;

use super::error::ApiResult;
use super::extract::{Body, Caller, parse_id};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/holds", post(hold).get(holds))
        .route("/api/v1/holds/{id}", delete(release))
}

async fn hold(State(state): State<AppState>, caller: Caller, body: Body) -> ApiResult<Response> {
    let input: HoldInput = body.json()?;
    let (engine, who) = (state.engine.clone(), caller.0);
    let result = Engine::detached(async move { ops::hold(&engine, &who, input).await }).await?;
    Ok((StatusCode::CREATED, Json(json!({ "holds": result }))).into_response())
}

async fn holds(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    caller.reader()?;
    let list = state.engine.holds().await?;
    Ok(Json(json!({ "holds": list })).into_response())
}

async fn release(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = parse_id(&id)?;
    let (engine, who) = (state.engine.clone(), caller.0);
    Engine::detached(async move { ops::release(&engine, &who, id, None).await }).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
