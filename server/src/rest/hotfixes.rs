//! Hotfix mode (S4): plan, start, resolve, merge back, and the incidents.

use app::engine::{Engine, ops};
use app::model::HotfixInput;
use app::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::error::ApiResult;
use super::extract::{Body, Caller};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/hotfixes", post(start).get(status))
        .route("/api/v1/hotfixes/plan", post(plan))
        .route("/api/v1/hotfixes/{incident}/resolve", post(resolve))
        .route("/api/v1/hotfixes/{incident}/merge-back", post(merge_back))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanInput {
    incident: String,
    from: String,
}

/// What `POST /api/v1/hotfixes` with the same incident and environment would do.
async fn plan(State(state): State<AppState>, caller: Caller, body: Body) -> ApiResult<Response> {
    let input: PlanInput = body.json()?;
    let plan = ops::hotfix_plan(&state.engine, &caller.0, &input.incident, &input.from).await?;
    Ok(Json(plan).into_response())
}

async fn start(State(state): State<AppState>, caller: Caller, body: Body) -> ApiResult<Response> {
    let input: HotfixInput = body.json()?;
    let (engine, who) = (state.engine.clone(), caller.0);
    let incident =
        Engine::detached(async move { ops::start_hotfix(&engine, &who, input).await }).await?;
    Ok((StatusCode::CREATED, Json(incident)).into_response())
}

/// The running incident with its progress and steps, and every incident.
async fn status(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    caller.reader()?;
    let (current, incidents) = ops::hotfix_status(&state.engine, &caller.0).await?;
    Ok(Json(json!({ "current": current, "incidents": incidents })).into_response())
}

async fn resolve(
    State(state): State<AppState>,
    caller: Caller,
    Path(incident): Path<String>,
) -> ApiResult<Response> {
    let (engine, who) = (state.engine.clone(), caller.0);
    let incident =
        Engine::detached(async move { ops::resolve_hotfix(&engine, &who, &incident).await })
            .await?;
    Ok(Json(incident).into_response())
}

async fn merge_back(
    State(state): State<AppState>,
    caller: Caller,
    Path(incident): Path<String>,
) -> ApiResult<Response> {
    let (engine, who) = (state.engine.clone(), caller.0);
    let incident =
        Engine::detached(async move { ops::merge_back(&engine, &who, &incident).await }).await?;
    Ok(Json(incident).into_response())
}
