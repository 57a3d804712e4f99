//! `GET /api/v1/environments` and `GET /api/v1/timeline`: where everything stands.

use app::model::TimelineStart;
use app::state::AppState;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::error::{ApiError, ApiResult};
use super::extract::{Caller, query};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/environments", get(environments))
        .route("/api/v1/timeline", get(timeline))
}

async fn environments(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    caller.reader()?;
    let view = state.engine.pipeline().await?;
    Ok(Json(json!({ "root": view.root, "environments": view.environments, "merges": view.merges, "refreshed_at": view.refreshed_at, "refresh_error": view.refresh_error })).into_response())
}

#[derive(Deserialize)]
struct TimelineQuery {
    limit: Option<usize>,
    before: Option<String>,
    position: Option<usize>,
}

async fn timeline(
    State(state): State<AppState>,
    caller: Caller,
    q: Result<Query<TimelineQuery>, QueryRejection>,
) -> ApiResult<Response> {
    caller.reader()?;
    let q = query(q)?;
    let limit = q.limit.unwrap_or(50);
    if limit == 0 || limit > 500 {
        return Err(ApiError::bad_input("`limit` must be between 1 and 500"));
    }
    let start = match (q.before, q.position) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_input(
                "give `before` (a commit id) or `position` (0 = the oldest commit), not both",
            ));
        }
        (Some(before), None) => TimelineStart::Before(before),
        (None, Some(position)) => TimelineStart::At(position),
        (None, None) => TimelineStart::Tip,
    };
    let page = state.engine.timeline(limit, start).await?;
    Ok(Json(page).into_response())
}
