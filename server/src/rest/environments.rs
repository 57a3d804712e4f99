//! `GET /api/v1/environments` and `GET /api/v1/timeline`: where everything stands.

use app::state::AppState;
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use envline_api::{ErrorCode, PipelineView, TimelinePage, TimelineStart};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{Caller, query};

/// The pipeline and the line, routed and documented.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(environments))
        .routes(routes!(timeline))
}

/// Every environment: head, position, `on_line`, `behind_from`, the head's
/// verification, holds, open request; and the merges on the line.
#[utoipa::path(
    get,
    path = "/api/v1/environments",
    tag = "environments",
    security((), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "The pipeline as of the last refresh", body = PipelineView),
        (status = 401, description = "No valid token or session, and anonymous reading is off", body = ErrorBody),
        (status = 403, description = "The caller may not read", body = ErrorBody),
    ),
)]
async fn environments(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    caller.reader()?;
    let view = state.engine.views().pipeline().await?;
    Ok(Json(&*view).into_response())
}

/// Where a page of the line starts, and how long it is.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct TimelineQuery {
    /// Commits on the page, 1 to 500 (50 when not given).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<usize>,
    /// Start just below this commit (the last one of the previous page).
    #[param(pattern = "^[0-9a-fA-F]{7,40}$")]
    before: Option<String>,
    /// Start at this position (0 = the oldest commit); not with `before`.
    #[param(minimum = 0, maximum = 9007199254740991_u64)]
    position: Option<usize>,
}

/// The root's first-parent line, newest first, with the environments at and
/// affected by each commit.
#[utoipa::path(
    get,
    path = "/api/v1/timeline",
    tag = "environments",
    params(TimelineQuery),
    security((), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "One page of the line", body = TimelinePage),
        (status = 400, description = "`limit` out of range, or `before` not a commit id", body = ErrorBody),
        (status = 401, description = "No valid token or session, and anonymous reading is off", body = ErrorBody),
        (status = 403, description = "The caller may not read", body = ErrorBody),
        (status = 404, description = "`before` names no commit, or `position` is past the line", body = ErrorBody),
        (status = 422, description = "`conflicting_parameters`: both `before` and `position`; `off_line`: `before` is not on the line", body = ErrorBody),
    ),
)]
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
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::ConflictingParameters,
                "give `before` (a commit id) or `position` (0 = the oldest commit), not both",
            ));
        }
        (Some(before), None) => TimelineStart::Before(before),
        (None, Some(position)) => TimelineStart::At(position),
        (None, None) => TimelineStart::Tip,
    };
    let page = state.engine.views().timeline(limit, start).await?;
    Ok(Json(page).into_response())
}
