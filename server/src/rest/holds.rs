//! Holds and freezes: place, list, release.

use app::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use envline_api::{HoldInput, HoldList};
use envline_engine::{Engine, ops};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiResult, ErrorBody};
use super::extract::{Body, Caller, parse_id};

/// Holds and freezes, routed and documented.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(hold, holds))
        .routes(routes!(release))
}

/// Places a hold (now) or a freeze (`starts_at`/`ends_at`) on environments.
#[utoipa::path(
    post,
    path = "/api/v1/holds",
    tag = "holds",
    request_body = HoldInput,
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 201, description = "Placed, one per environment", body = HoldList),
        (status = 400, description = "The body is not a hold, or its times are not RFC 3339", body = ErrorBody),
        (status = 401, description = "No valid token or session", body = ErrorBody),
        (status = 403, description = "The caller may not hold there, or a browser's change from another site", body = ErrorBody),
        (status = 404, description = "An unknown environment", body = ErrorBody),
        (status = 413, description = "The body is over the size limit", body = ErrorBody),
        (status = 422, description = "`bad_window`: `ends_at` is not after `starts_at`, or already over", body = ErrorBody),
    ),
)]
async fn hold(State(state): State<AppState>, caller: Caller, body: Body) -> ApiResult<Response> {
    let input: HoldInput = body.json()?;
    let (engine, who) = (state.engine.clone(), caller.0);
    let result = Engine::detached(async move { ops::hold(&engine, &who, input).await }).await?;
    Ok((StatusCode::CREATED, Json(HoldList { holds: result })).into_response())
}

/// Holds and freezes not yet released (freezes still to come included).
#[utoipa::path(
    get,
    path = "/api/v1/holds",
    tag = "holds",
    security((), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "The holds", body = HoldList),
        (status = 401, description = "No valid token or session, and anonymous reading is off", body = ErrorBody),
        (status = 403, description = "The caller may not read", body = ErrorBody),
    ),
)]
async fn holds(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    caller.reader()?;
    let list = state.engine.holds().await?;
    Ok(Json(HoldList { holds: list }).into_response())
}

/// Releases a hold or freeze.
#[utoipa::path(
    delete,
    path = "/api/v1/holds/{id}",
    tag = "holds",
    params(("id" = i64, Path, minimum = 1, maximum = 9007199254740991_i64, description = "The hold's id")),
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 204, description = "Released"),
        (status = 400, description = "The id is not a number", body = ErrorBody),
        (status = 401, description = "No valid token or session", body = ErrorBody),
        (status = 403, description = "The caller may not hold there, or a browser's change from another site", body = ErrorBody),
        (status = 404, description = "No such hold", body = ErrorBody),
        (status = 409, description = "Already released", body = ErrorBody),
    ),
)]
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
