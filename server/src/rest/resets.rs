//! Moves that are not fast-forwards: rollbacks (S3) with their preview,
//! realignments and out-of-order cherry-picks (S5).

use app::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use envline_api::{
    AuditEvents, CherryPickInput, PromotionPreview, PromotionView, RealignInput, RollbackInput,
    RollbackPlans,
};
use envline_engine::{Engine, ops};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiResult, ErrorBody};
use super::extract::{Body, Caller};

/// Rollbacks, realignments and cherry-picks, routed and documented.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(rollback))
        .routes(routes!(preview_rollback))
        .routes(routes!(realign))
        .routes(routes!(cherry_pick))
        .routes(routes!(preview_cherry_pick))
}

/// What `POST /api/v1/cherry-picks` with the same body would do; moves nothing.
///
/// The picked commit's change, the gates and the approvals needed.
#[utoipa::path(
    post,
    path = "/api/v1/cherry-picks/preview",
    tag = "resets",
    request_body = CherryPickInput,
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "What would move", body = PromotionPreview),
        (status = 400, description = "The body is not a cherry-pick", body = ErrorBody),
        (status = 401, description = "No valid token or session", body = ErrorBody),
        (status = 403, description = "The caller may not read, or a browser's change from another site", body = ErrorBody),
        (status = 404, description = "An unknown environment or commit", body = ErrorBody),
        (status = 409, description = "The commit cannot be picked there", body = ErrorBody),
        (status = 413, description = "The body is over the size limit", body = ErrorBody),
    ),
)]
async fn preview_cherry_pick(
    State(state): State<AppState>,
    caller: Caller,
    body: Body,
) -> ApiResult<Response> {
    let input: CherryPickInput = body.json()?;
    let preview = ops::preview_cherry_pick(&state.engine, &caller.0, &input).await?;
    Ok(Json(preview).into_response())
}

/// Moves environments back (by default to their previous position) and
/// holds their auto-promotion.
#[utoipa::path(
    post,
    path = "/api/v1/rollbacks",
    tag = "resets",
    request_body = RollbackInput,
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 201, description = "Rolled back", body = AuditEvents),
        (status = 400, description = "The body is not a rollback", body = ErrorBody),
        (status = 401, description = "No valid token or session", body = ErrorBody),
        (status = 403, description = "The caller may not reset there, or a browser's change from another site", body = ErrorBody),
        (status = 404, description = "An unknown environment or commit", body = ErrorBody),
        (status = 409, description = "Nothing to roll back to, or the branch moved meanwhile", body = ErrorBody),
        (status = 422, description = "The target is not behind the environment, was never held there, or failed there", body = ErrorBody),
        (status = 413, description = "The body is over the size limit", body = ErrorBody),
        (status = 503, description = "The remote is unreachable or refused the push", body = ErrorBody),
    ),
)]
async fn rollback(
    State(state): State<AppState>,
    caller: Caller,
    body: Body,
) -> ApiResult<Response> {
    let input: RollbackInput = body.json()?;
    let (engine, who) = (state.engine.clone(), caller.0);
    let events = Engine::detached(async move { ops::rollback(&engine, &who, input).await }).await?;
    Ok((StatusCode::CREATED, Json(AuditEvents { events })).into_response())
}

/// What `POST /api/v1/rollbacks` with the same body would do; moves nothing.
///
/// Each environment's from → to and the commits that leave.
#[utoipa::path(
    post,
    path = "/api/v1/rollbacks/preview",
    tag = "resets",
    request_body = RollbackInput,
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "What would move", body = RollbackPlans),
        (status = 400, description = "The body is not a rollback", body = ErrorBody),
        (status = 401, description = "No valid token or session", body = ErrorBody),
        (status = 403, description = "The caller may not reset there, or a browser's change from another site", body = ErrorBody),
        (status = 404, description = "An unknown environment or commit", body = ErrorBody),
        (status = 409, description = "Nothing to roll back to", body = ErrorBody),
        (status = 422, description = "The target is not behind the environment, was never held there, or failed there", body = ErrorBody),
        (status = 413, description = "The body is over the size limit", body = ErrorBody),
    ),
)]
async fn preview_rollback(
    State(state): State<AppState>,
    caller: Caller,
    body: Body,
) -> ApiResult<Response> {
    let input: RollbackInput = body.json()?;
    let plans = ops::preview_rollback(&state.engine, &caller.0, input).await?;
    Ok(Json(RollbackPlans { plans }).into_response())
}

/// Brings an environment that is off the root's line back to its `from`.
#[utoipa::path(
    post,
    path = "/api/v1/realignments",
    tag = "resets",
    request_body = RealignInput,
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 201, description = "Recorded: `done`, or `awaiting_approval`", body = PromotionView),
        (status = 400, description = "The body is not a realignment", body = ErrorBody),
        (status = 401, description = "No valid token or session", body = ErrorBody),
        (status = 403, description = "The caller may not reset there, or a browser's change from another site", body = ErrorBody),
        (status = 404, description = "An unknown environment", body = ErrorBody),
        (status = 409, description = "The environment is on the line, a request is already open, or the branch moved meanwhile", body = ErrorBody),
        (status = 413, description = "The body is over the size limit", body = ErrorBody),
        (status = 422, description = "Gates not met, each listed in `details`", body = ErrorBody),
        (status = 503, description = "The remote is unreachable or refused the push", body = ErrorBody),
    ),
)]
async fn realign(State(state): State<AppState>, caller: Caller, body: Body) -> ApiResult<Response> {
    let input: RealignInput = body.json()?;
    let (engine, who) = (state.engine.clone(), caller.0);
    let result = Engine::detached(async move {
        ops::realign(&engine, &who, &input.environment, input.reason.as_deref()).await
    })
    .await?;
    Ok((StatusCode::CREATED, Json(result)).into_response())
}

/// Promotes one commit out of order; the environment goes off the line.
#[utoipa::path(
    post,
    path = "/api/v1/cherry-picks",
    tag = "resets",
    request_body = CherryPickInput,
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 201, description = "Recorded: `done`, or `awaiting_approval`", body = PromotionView),
        (status = 400, description = "The body is not a cherry-pick", body = ErrorBody),
        (status = 401, description = "No valid token or session", body = ErrorBody),
        (status = 403, description = "The caller may not promote there, or a browser's change from another site", body = ErrorBody),
        (status = 404, description = "An unknown environment or commit", body = ErrorBody),
        (status = 409, description = "The commit cannot be picked there, a request is already open, or the branch moved meanwhile", body = ErrorBody),
        (status = 413, description = "The body is over the size limit", body = ErrorBody),
        (status = 422, description = "Gates not met, each listed in `details`", body = ErrorBody),
        (status = 503, description = "The remote is unreachable or refused the push", body = ErrorBody),
    ),
)]
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
