//! Delivery figures per environment (`GET /api/v1/insights`), exact from
//! the audit log: deployments per week, change failure rate, lead time and
//! time to restore, with their weeks.

use app::state::AppState;
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use envline_api::{ErrorCode, InsightsAnswer, InsightsList, InsightsQuery};
use envline_engine::insights::Window;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{Caller, query};

/// The figures, routed and documented.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(insights))
}

/// Delivery figures of one environment, or of each.
///
/// A deployment is a promotion or cherry-pick that landed; it failed when
/// the environment was later rolled back from it, reset away by hotfix
/// mode, or its commit failed a test there. Lead time runs from each
/// commit's committer time to the deployment that first brought it in;
/// time to restore from a failure to the next deployment.
#[utoipa::path(
    get,
    path = "/api/v1/insights",
    tag = "insights",
    params(InsightsQuery),
    security((), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "With `environment`, its figures; without, `{environments: [...]}`", body = InsightsAnswer),
        (status = 400, description = "A query parameter that is not text", body = ErrorBody),
        (status = 401, description = "No valid token or session, and anonymous reading is off", body = ErrorBody),
        (status = 403, description = "The caller may not read", body = ErrorBody),
        (status = 404, description = "An unknown environment", body = ErrorBody),
        (status = 422, description = "`bad_window`: a time or span that cannot be read, or a window that ends before it starts", body = ErrorBody),
    ),
)]
async fn insights(
    State(state): State<AppState>,
    caller: Caller,
    q: Result<Query<InsightsQuery>, QueryRejection>,
) -> ApiResult<Response> {
    caller.reader()?;
    let q = query(q)?;
    // Any text fits the schema: one that is not a time, or a window that
    // ends before it starts, is refused by what it says (422).
    let window = Window::parse(q.since.as_deref(), q.until.as_deref(), chrono::Utc::now())
        .map_err(|m| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::BadWindow, m))?;
    let mut all = state
        .engine
        .delivery()
        .insights(q.environment.as_deref(), &window)
        .await?;
    let answer = match (&q.environment, all.len()) {
        (Some(_), 1) => InsightsAnswer::One(all.remove(0)),
        _ => InsightsAnswer::All(InsightsList { environments: all }),
    };
    Ok(Json(answer).into_response())
}
