//! Promotions (S1, S6), their previews, and approvers' decisions (I4).

use app::state::AppState;
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use envline_api::{
    DecisionInput, ErrorCode, PreviewList, PromoteInput, Promoted, PromotionList, PromotionView,
    RequestState, parse_choice,
};
use envline_engine::{Engine, ops};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{Body, Caller, parse_id, query};

/// Promotions, previews and decisions, routed and documented.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(promote, promotions))
        .routes(routes!(preview))
        .routes(routes!(promotion))
        .routes(routes!(decide))
}

/// Promotes a commit (by default the source's head) into one environment or
/// several; it runs at once, or waits for approvals.
#[utoipa::path(
    post,
    path = "/api/v1/promotions",
    tag = "promotions",
    request_body = PromoteInput,
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 201, description = "Recorded: `done`, or `awaiting_approval`", body = Promoted),
        (status = 400, description = "The body is not a promotion", body = ErrorBody),
        (status = 401, description = "No valid token or session", body = ErrorBody),
        (status = 403, description = "The caller may not promote there, or a browser's change from another site", body = ErrorBody),
        (status = 404, description = "An unknown environment or commit", body = ErrorBody),
        (status = 409, description = "Not a fast-forward, off the line, already there, a request already open, or the branch moved meanwhile", body = ErrorBody),
        (status = 413, description = "The body is over the size limit", body = ErrorBody),
        (status = 422, description = "Gates not met, each listed in `details`", body = ErrorBody),
        (status = 503, description = "The remote is unreachable or refused the push", body = ErrorBody),
    ),
)]
async fn promote(State(state): State<AppState>, caller: Caller, body: Body) -> ApiResult<Response> {
    let input: PromoteInput = body.json()?;
    let several = input.environments.is_some();
    let (engine, who) = (state.engine.clone(), caller.0);
    let mut result =
        Engine::detached(async move { ops::promote(&engine, &who, input).await }).await?;
    // A glob in `environment` can promote several: each is answered.
    if several || result.len() > 1 {
        let several = Promoted::Several(PromotionList { promotions: result });
        return Ok((StatusCode::CREATED, Json(several)).into_response());
    }
    let one = result.pop().ok_or_else(|| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            "no promotion recorded",
        )
    })?;
    Ok((StatusCode::CREATED, Json(Promoted::One(Box::new(one)))).into_response())
}

/// What `POST /api/v1/promotions` with the same body would do; moves nothing.
///
/// The commits and files that would move (with diffs), the environments
/// they affect, every gate with its evidence, and the approvals needed.
#[utoipa::path(
    post,
    path = "/api/v1/promotions/preview",
    tag = "promotions",
    request_body = PromoteInput,
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "What would move", body = PreviewList),
        (status = 409, description = "`hotfix_mode`: ordinary promotions wait while hotfix mode is on", body = ErrorBody),
        (status = 400, description = "The body is not a promotion", body = ErrorBody),
        (status = 401, description = "No valid token or session", body = ErrorBody),
        (status = 403, description = "The caller may not read, or a browser's change from another site", body = ErrorBody),
        (status = 404, description = "An unknown environment or commit", body = ErrorBody),
        (status = 413, description = "The body is over the size limit", body = ErrorBody),
    ),
)]
async fn preview(State(state): State<AppState>, caller: Caller, body: Body) -> ApiResult<Response> {
    let input: PromoteInput = body.json()?;
    let previews = ops::preview_promotion(&state.engine, &caller.0, input).await?;
    Ok(Json(PreviewList { previews }).into_response())
}

/// Which requests to list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct StateQuery {
    /// Only requests in this state.
    #[param(value_type = Option<RequestState>)]
    state: Option<String>,
    /// At most this many, newest first (200 when not given, 1000 at most).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

/// Promotion requests with their approvals, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/promotions",
    tag = "promotions",
    params(StateQuery),
    security((), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "The requests", body = PromotionList),
        (status = 400, description = "An unknown `state`, or a `limit` that is not a number", body = ErrorBody),
        (status = 401, description = "No valid token or session, and anonymous reading is off", body = ErrorBody),
        (status = 403, description = "The caller may not read", body = ErrorBody),
    ),
)]
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
    let limit = q.limit.unwrap_or(200);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_input("`limit` must be between 1 and 1000"));
    }
    let list = state.engine.requests(filter, limit).await?;
    Ok(Json(PromotionList { promotions: list }).into_response())
}

/// One promotion request with its approvals.
#[utoipa::path(
    get,
    path = "/api/v1/promotions/{id}",
    tag = "promotions",
    params(("id" = i64, Path, minimum = 1, maximum = 9007199254740991_i64, description = "The request's id")),
    security((), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "The request", body = PromotionView),
        (status = 400, description = "The id is not a number", body = ErrorBody),
        (status = 401, description = "No valid token or session, and anonymous reading is off", body = ErrorBody),
        (status = 403, description = "The caller may not read", body = ErrorBody),
        (status = 404, description = "No such request", body = ErrorBody),
    ),
)]
async fn promotion(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    caller.reader()?;
    let request = state.engine.request(parse_id(&id)?).await?;
    Ok(Json(request).into_response())
}

/// An approver approves or rejects a request; the last approval needed
/// executes the promotion.
#[utoipa::path(
    post,
    path = "/api/v1/promotions/{id}/approvals",
    tag = "promotions",
    params(("id" = i64, Path, minimum = 1, maximum = 9007199254740991_i64, description = "The request's id")),
    request_body = DecisionInput,
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "The request after the decision", body = PromotionView),
        (status = 400, description = "The id is not a number, or the body is not a decision", body = ErrorBody),
        (status = 401, description = "No valid token or session", body = ErrorBody),
        (status = 403, description = "The caller may not approve there (a requester never approves their own), or a browser's change from another site", body = ErrorBody),
        (status = 404, description = "No such request", body = ErrorBody),
        (status = 409, description = "The request is no longer awaiting approval, or the branch moved meanwhile", body = ErrorBody),
        (status = 413, description = "The body is over the size limit", body = ErrorBody),
        (status = 503, description = "The remote is unreachable or refused the push", body = ErrorBody),
    ),
)]
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
