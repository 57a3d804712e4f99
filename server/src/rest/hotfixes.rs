//! Hotfix mode (S4): plan, start, resolve, merge back, and the incidents.

use app::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use envline_api::{HotfixInput, HotfixPlan, HotfixStatus, IncidentRecord, IncidentView};
use envline_engine::{Engine, ops};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiResult, ErrorBody};
use super::extract::{Body, Caller};

/// Hotfix mode, routed and documented.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(start, status))
        .routes(routes!(plan))
        .routes(routes!(resolve))
        .routes(routes!(merge_back))
}

/// `POST /api/v1/hotfixes/plan`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"incident": "INC-42", "from": "prod-eu"}))]
struct PlanInput {
    /// The incident's name (like `INC-42`).
    #[schema(pattern = "^[A-Za-z0-9_]+([.-][A-Za-z0-9_]+)*$", max_length = 64)]
    incident: String,
    /// The production environment whose commit the fix would start from.
    from: String,
}

/// The answer of `GET /api/v1/hotfixes`.
#[derive(Serialize, ToSchema)]
struct HotfixOverview {
    /// The running incident, if hotfix mode is on.
    current: Option<HotfixStatus>,
    /// Every incident with its steps.
    incidents: Vec<IncidentRecord>,
}

/// What `POST /api/v1/hotfixes` with the same incident and environment would
/// do: the branches it would reset; moves nothing.
#[utoipa::path(
    post,
    path = "/api/v1/hotfixes/plan",
    tag = "hotfixes",
    request_body = PlanInput,
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "What starting hotfix mode would do", body = HotfixPlan),
        (status = 400, description = "The body is not a plan request", body = ErrorBody),
        (status = 401, description = "No valid token or session", body = ErrorBody),
        (status = 403, description = "The caller may not read, or a browser's change from another site", body = ErrorBody),
        (status = 404, description = "An unknown environment", body = ErrorBody),
        (status = 409, description = "Hotfix mode is already on, or the incident's name or branch is taken", body = ErrorBody),
        (status = 413, description = "The body is over the size limit", body = ErrorBody),
        (status = 422, description = "`cannot_keep`: `keep` names an environment that is not protected or not reset", body = ErrorBody),
    ),
)]
async fn plan(State(state): State<AppState>, caller: Caller, body: Body) -> ApiResult<Response> {
    let input: PlanInput = body.json()?;
    let plan = ops::hotfix_plan(&state.engine, &caller.0, &input.incident, &input.from).await?;
    Ok(Json(plan).into_response())
}

/// Starts hotfix mode (`incident-commander`): the pipeline's root becomes
/// `hotfix/<incident>`, forked from the production environment's commit.
#[utoipa::path(
    post,
    path = "/api/v1/hotfixes",
    tag = "hotfixes",
    request_body = HotfixInput,
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 201, description = "Hotfix mode is on", body = IncidentView),
        (status = 400, description = "The body is not a hotfix", body = ErrorBody),
        (status = 401, description = "No valid token or session", body = ErrorBody),
        (status = 403, description = "The caller is not an incident commander, or a browser's change from another site", body = ErrorBody),
        (status = 404, description = "An unknown environment", body = ErrorBody),
        (status = 409, description = "Hotfix mode is already on, or the incident's name or branch is taken", body = ErrorBody),
        (status = 413, description = "The body is over the size limit", body = ErrorBody),
        (status = 422, description = "`cannot_keep`: `keep` names an environment that is not protected or not reset", body = ErrorBody),
        (status = 503, description = "The remote is unreachable or refused the push", body = ErrorBody),
    ),
)]
async fn start(State(state): State<AppState>, caller: Caller, body: Body) -> ApiResult<Response> {
    let input: HotfixInput = body.json()?;
    let (engine, who) = (state.engine.clone(), caller.0);
    let incident =
        Engine::detached(async move { ops::start_hotfix(&engine, &who, input).await }).await?;
    Ok((StatusCode::CREATED, Json(incident)).into_response())
}

/// The running incident with the fix's progress, main's commits to replay
/// and its steps; every incident with its steps and commit mapping.
#[utoipa::path(
    get,
    path = "/api/v1/hotfixes",
    tag = "hotfixes",
    security((), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "Hotfix mode and the incidents", body = HotfixOverview),
        (status = 401, description = "No valid token or session, and anonymous reading is off", body = ErrorBody),
        (status = 403, description = "The caller may not read", body = ErrorBody),
    ),
)]
async fn status(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    caller.reader()?;
    let (current, incidents) = ops::hotfix_status(&state.engine, &caller.0).await?;
    Ok(Json(HotfixOverview { current, incidents }).into_response())
}

/// Resolves the incident once the fix is in production.
#[utoipa::path(
    post,
    path = "/api/v1/hotfixes/{incident}/resolve",
    tag = "hotfixes",
    params(("incident" = String, Path, description = "The incident's name")),
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "Resolved", body = IncidentView),
        (status = 401, description = "No valid token or session", body = ErrorBody),
        (status = 403, description = "The caller is not an incident commander, or a browser's change from another site", body = ErrorBody),
        (status = 404, description = "No such incident", body = ErrorBody),
        (status = 409, description = "Not in hotfix mode, already resolved, or the fix is not in production yet", body = ErrorBody),
        (status = 503, description = "The remote is unreachable", body = ErrorBody),
    ),
)]
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

/// Replays main's commits since the fork on the fix and makes main the root
/// again.
#[utoipa::path(
    post,
    path = "/api/v1/hotfixes/{incident}/merge-back",
    tag = "hotfixes",
    params(("incident" = String, Path, description = "The incident's name")),
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "Merged back: hotfix mode is over", body = IncidentView),
        (status = 401, description = "No valid token or session", body = ErrorBody),
        (status = 403, description = "The caller is not an incident commander, or a browser's change from another site", body = ErrorBody),
        (status = 404, description = "No such incident", body = ErrorBody),
        (status = 409, description = "Not resolved yet, or `merge_back_conflict` with `details.conflicts` and `details.commands` to do it by hand", body = ErrorBody),
        (status = 503, description = "The remote is unreachable or refused the push", body = ErrorBody),
    ),
)]
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
