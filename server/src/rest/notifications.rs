//! The notification outbox as scripts and on-call see it: what is failing,
//! what waits, what was delivered.

use app::state::AppState;
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use envline_api::{NotificationList, NotificationState, parse_choice};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{Caller, query};

/// The outbox, routed and documented.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(notifications))
}

/// Which notifications to list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct NotificationQuery {
    /// Only notifications in this state (`failing` for those being retried).
    #[param(value_type = Option<NotificationState>)]
    state: Option<String>,
    /// At most this many, newest first (100 when not given, 1000 at most).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

/// Notifications to the `[[notify]]` targets, newest first, with their
/// attempts and last error. Targets are shown without their path (a chat
/// hook's path is its secret).
#[utoipa::path(
    get,
    path = "/api/v1/notifications",
    tag = "system",
    params(NotificationQuery),
    security((), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "The notifications", body = NotificationList),
        (status = 400, description = "An unknown `state`, or a `limit` out of range", body = ErrorBody),
        (status = 401, description = "No valid token or session, and anonymous reading is off", body = ErrorBody),
        (status = 403, description = "The caller may not read", body = ErrorBody),
    ),
)]
async fn notifications(
    State(state): State<AppState>,
    caller: Caller,
    q: Result<Query<NotificationQuery>, QueryRejection>,
) -> ApiResult<Response> {
    caller.reader()?;
    let q = query(q)?;
    let filter = q
        .state
        .as_deref()
        .map(|s| parse_choice::<NotificationState>("state", s))
        .transpose()
        .map_err(ApiError::bad_input)?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_input("`limit` must be between 1 and 1000"));
    }
    let list = state.engine.notifications().list(filter, limit).await?;
    Ok(Json(NotificationList {
        notifications: list,
    })
    .into_response())
}
