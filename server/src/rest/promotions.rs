//! Promotions (S1, S6), their previews, and approvers' decisions (I4).

use app::engine::{Engine, ops};
use app::model::{DecisionInput, PromoteInput, RequestState, parse_choice};
use app::state::AppState;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::error::{ApiError, ApiResult};
use super::extract::{Body, Caller, parse_id, query};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/promotions", post(promote).get(promotions))
        .route("/api/v1/promotions/preview", post(preview))
        .route("/api/v1/promotions/{id}", get(promotion))
        .route("/api/v1/promotions/{id}/approvals", post(decide))
}

async fn promote(State(state): State<AppState>, caller: Caller, body: Body) -> ApiResult<Response> {
    let input: PromoteInput = body.json()?;
    let several = input.environments.is_some();
    let (engine, who) = (state.engine.clone(), caller.0);
    let mut result =
        Engine::detached(async move { ops::promote(&engine, &who, input).await }).await?;
    if several {
        return Ok((StatusCode::CREATED, Json(json!({ "promotions": result }))).into_response());
    }
    let one = result.pop().ok_or_else(|| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "no promotion recorded",
        )
    })?;
    Ok((StatusCode::CREATED, Json(one)).into_response())
}

/// What `POST /api/v1/promotions` with the same body would do; moves nothing.
async fn preview(State(state): State<AppState>, caller: Caller, body: Body) -> ApiResult<Response> {
    let input: PromoteInput = body.json()?;
    let previews = ops::preview_promotion(&state.engine, &caller.0, input).await?;
    Ok(Json(json!({ "previews": previews })).into_response())
}

#[derive(Deserialize)]
struct StateQuery {
    state: Option<String>,
    limit: Option<i64>,
}

async fn promotions(
    State(state): State<AppState>,
    caller: Caller,
    q: Result<Query<StateQuery>, QueryRejection>,
) -> ApiResult<Response> {
    caller.reader()?;
    let q = query(q)?;
    let filter = q
        .state
        .as_deref()
        .map(|s| parse_choice::<RequestState>("state", s))
        .transpose()
        .map_err(ApiError::bad_input)?;
    let list = state
        .engine
        .requests(filter, q.limit.unwrap_or(200))
        .await?;
    Ok(Json(json!({ "promotions": list })).into_response())
}

async fn promotion(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    caller.reader()?;
    let request = state.engine.request(parse_id(&id)?).await?;
    Ok(Json(request).into_response())
}

async fn decide(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Body,
) -> ApiResult<Response> {
    let id = parse_id(&id)?;
    let input: DecisionInput = body.json()?;
    let (engine, who) = (state.engine.clone(), caller.0);
    let result =
        Engine::detached(async move { ops::decide(&engine, &who, id, input).await }).await?;
    Ok(Json(result).into_response())
}
