//! Liveness, Prometheus metrics, fetching the remote now, and the stream of
//! change notices that keeps pages live.

use std::convert::Infallible;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use app::state::AppState;
use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use envline_api::Readiness;
use envline_engine::Engine;
use envline_engine::EngineError;
use envline_engine::auth::Permission;
use envline_engine::caller::Access;
use futures::{Stream, StreamExt};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde::Serialize;
use tokio_stream::wrappers::BroadcastStream;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiResult, ErrorBody};
use super::extract::Caller;

/// Liveness, metrics, refresh and the change stream, routed and documented.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
        .routes(routes!(refresh))
        .routes(routes!(events))
}

/// The answer of `GET /healthz`.
#[derive(Serialize, ToSchema)]
struct Health {
    /// Always `ok`: the server answers.
    #[schema(example = "ok")]
    status: &'static str,
}

/// The answer of `POST /api/v1/refresh`.
#[derive(Serialize, ToSchema)]
struct Refreshed {
    /// When the remote was fetched (RFC 3339).
    refreshed_at: Option<String>,
}

/// Liveness: the server is up and answering.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "system",
    responses((status = 200, description = "The server answers", body = Health)),
)]
async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Readiness: the database answers, the clone reads, the remote was reached
/// at the last fetch. Open to anyone, like `/healthz`; what is wrong (paths,
/// the remote's error) only to callers who may read. A remote that cannot be
/// reached answers 200 `degraded` (pages and reads work); a failing database
/// or clone answers 503 `unready`.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "system",
    responses(
        (status = 200, description = "Ready, or degraded: the remote cannot be reached", body = Readiness),
        (status = 503, description = "Unready: the database or the clone fails", body = Readiness),
    ),
)]
async fn readyz(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
) -> (StatusCode, Json<Readiness>) {
    let mut readiness = state.engine.readiness().await;
    let reader = match state.engine.people().caller(&headers, Access::Read).await {
        Ok(principal) => Caller(principal).reader().is_ok(),
        Err(_) => false,
    };
    if !reader {
        for check in [
            &mut readiness.database,
            &mut readiness.clone,
            &mut readiness.remote,
        ] {
            check.problem = None;
        }
    }
    let status = if readiness.status == "unready" {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (status, Json(readiness))
}

static METRICS: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder once per process.
pub fn install_metrics() {
    METRICS.get_or_init(|| {
        PrometheusBuilder::new()
            .install_recorder()
            .expect("metrics recorder")
    });
}

/// Prometheus metrics: readable like the rest, so a token when anonymous
/// reading is off.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "system",
    security((), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "Prometheus text exposition format", body = String, content_type = "text/plain; version=0.0.4"),
        (status = 401, description = "No valid token or session, and anonymous reading is off", body = ErrorBody),
        (status = 403, description = "The caller may not read", body = ErrorBody),
    ),
)]
async fn metrics(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    caller.reader()?;
    if let Ok(view) = state.engine.views().pipeline().await {
        for env in view.environments.iter().filter(|e| !e.is_root) {
            metrics::gauge!("envline_environment_behind_from", "environment" => env.name.clone())
                .set(env.behind_from.unwrap_or(0) as f64);
            metrics::gauge!("envline_environment_on_line", "environment" => env.name.clone())
                .set(if env.on_line { 1.0 } else { 0.0 });
        }
    }
    if let Ok(counts) = state.engine.notifications().counts().await {
        for state in ["pending", "failing", "delivered", "dropped"] {
            let n = counts.iter().find(|(s, _)| s == state).map_or(0, |c| c.1);
            metrics::gauge!("envline_notifications", "state" => state).set(n as f64);
        }
    }
    metrics::counter!("envline_refreshes_total").absolute(state.engine.refresher().count());
    let body = METRICS.get().map(|h| h.render()).unwrap_or_default();
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        body,
    )
        .into_response())
}

/// Counts requests and their latency by route and status.
pub async fn metrics_middleware(request: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = request.method().to_string();
    let path = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| {
            if request.uri().path().starts_with("/pkg/") {
                "/pkg".into()
            } else {
                "other".into()
            }
        });
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("envline_http_requests_total", "method" => method.clone(), "path" => path.clone(), "status" => status).increment(1);
    metrics::histogram!("envline_http_request_seconds", "method" => method, "path" => path)
        .record(start.elapsed().as_secs_f64());
    response
}

/// Fetches the remote now (it is also fetched every `refresh_seconds`).
#[utoipa::path(
    post,
    path = "/api/v1/refresh",
    tag = "system",
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "Fetched", body = Refreshed),
        (status = 401, description = "No valid token or session", body = ErrorBody),
        (status = 403, description = "The caller may not refresh, or a browser's change from another site", body = ErrorBody),
        (status = 503, description = "The remote is unreachable or refusing", body = ErrorBody),
    ),
)]
async fn refresh(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    caller
        .0
        .require(Permission::Refresh, None)
        .map_err(EngineError::from)?;
    let engine = state.engine.clone();
    Engine::detached(async move { engine.refresh().await }).await?;
    let view = state.engine.views().pipeline().await?;
    Ok(Json(Refreshed {
        refreshed_at: view.refreshed_at.clone(),
    })
    .into_response())
}

/// One event of `GET /api/v1/events`, as the stream carries it.
#[derive(ToSchema)]
#[expect(
    dead_code,
    reason = "describes the stream's events; axum's `Event` writes them"
)]
struct ServerEvent {
    event: ServerEventName,
    /// The generation: a number that grows with every change.
    #[schema(pattern = "^[0-9]+$")]
    data: String,
    /// How long a browser waits before reconnecting, in milliseconds (on `hello`).
    retry: Option<u64>,
}

/// Which event: `hello` opens the stream, `change` follows each change.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[expect(dead_code, reason = "describes the stream's event names")]
enum ServerEventName {
    Hello,
    Change,
}

/// Server-sent events: `event: change` whenever refs, requests,
/// verifications, holds or people change, on this server or on any replica
/// sharing its database.
///
/// Each event's `id` and data is the change's number (the same on every
/// replica). The stream opens with `event: hello` carrying the last one.
/// Browsers reconnect by themselves after a restart (`retry` is 1 s) and
/// send `Last-Event-ID`: when changes were made meanwhile, a `change` event
/// follows the `hello` at once. Pages refetch what they show.
#[utoipa::path(
    get,
    path = "/api/v1/events",
    tag = "system",
    security((), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "An endless `text/event-stream`: `hello`, then `change` events whose id and data is the change's number", body = ServerEvent, content_type = "text/event-stream"),
        (status = 401, description = "No valid token or session, and anonymous reading is off", body = ErrorBody),
        (status = 403, description = "The caller may not read", body = ErrorBody),
    ),
)]
async fn events(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    caller: Caller,
) -> ApiResult<(
    [(&'static str, &'static str); 1],
    Sse<impl Stream<Item = Result<Event, Infallible>>>,
)> {
    caller.reader()?;
    // The stream ends when what opened it no longer stands (a password
    // change, a removal, a revoked token): the browser reconnects and is
    // asked to sign in.
    let credential = (caller.0.user != envline_engine::auth::Principal::anonymous().user)
        .then(|| envline_engine::caller::credential(&headers))
        .flatten();
    let ended = state.engine.people().credential_ended(credential);
    let changes = state.engine.changes();
    // Subscribed before the number is read, so no change falls between.
    let notices = changes.subscribe();
    let now = changes.last_number();
    let hello = Event::default()
        .event("hello")
        .id(now.to_string())
        .retry(Duration::from_secs(1))
        .data(now.to_string());
    // A client coming back (`Last-Event-ID`: the last change it heard of,
    // on this replica or another) that missed changes meanwhile hears of
    // them at once, instead of at the next change.
    let missed = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|seen| *seen != now)
        .map(|_| {
            Ok(Event::default()
                .event("change")
                .id(now.to_string())
                .data(now.to_string()))
        });
    let engine = state.engine.clone();
    let changes = BroadcastStream::new(notices).map(move |notice| {
        // A listener that fell behind only needs to know that something
        // changed, under the last number told.
        let number = notice.unwrap_or_else(|_| engine.changes().last_number());
        Ok(Event::default()
            .event("change")
            .id(number.to_string())
            .data(number.to_string()))
    });
    let stream = futures::stream::once(async { Ok(hello) })
        .chain(futures::stream::iter(missed))
        .chain(changes)
        .take_until(state.engine.changes().stopped())
        .take_until(ended);
    Ok((
        // A proxy (nginx) would otherwise hold events back to fill its buffer.
        [("x-accel-buffering", "no")],
        Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))),
    ))
}
