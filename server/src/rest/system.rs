//! Liveness, Prometheus metrics, fetching the remote now, and the stream of
//! change notices that keeps pages live.

use std::convert::Infallible;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use app::engine::Engine;
use app::engine::EngineError;
use app::engine::auth::Permission;
use app::state::AppState;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::{Stream, StreamExt};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde_json::json;
use tokio_stream::wrappers::BroadcastStream;

use super::error::ApiResult;
use super::extract::Caller;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/api/v1/refresh", post(refresh))
        .route("/api/v1/events", get(events))
}

async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
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
async fn metrics(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    caller.reader()?;
    if let Ok(view) = state.engine.pipeline().await {
        for env in view.environments.iter().filter(|e| !e.is_root) {
            metrics::gauge!("envline_environment_behind_from", "environment" => env.name.clone())
                .set(env.behind_from.unwrap_or(0) as f64);
            metrics::gauge!("envline_environment_on_line", "environment" => env.name.clone())
                .set(if env.on_line { 1.0 } else { 0.0 });
        }
    }
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

async fn refresh(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    caller
        .0
        .require(Permission::Refresh, None)
        .map_err(EngineError::from)?;
    let engine = state.engine.clone();
    Engine::detached(async move { engine.refresh().await }).await?;
    let view = state.engine.pipeline().await?;
    Ok(Json(json!({ "refreshed_at": view.refreshed_at })).into_response())
}

/// Server-sent events: `event: change` with the new generation whenever refs,
/// requests, verifications or holds change. Pages refetch what they show;
/// browsers reconnect by themselves after a restart (`retry` is 1 s).
async fn events(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    caller.reader()?;
    let hello = Event::default()
        .event("hello")
        .retry(Duration::from_secs(1))
        .data(state.engine.generation().to_string());
    let changes = BroadcastStream::new(state.engine.subscribe()).map(|notice| {
        // A listener that fell behind only needs to know that something changed.
        let generation = notice.unwrap_or_default();
        Ok(Event::default()
            .event("change")
            .data(generation.to_string()))
    });
    let stream = futures::stream::once(async { Ok(hello) })
        .chain(changes)
        .take_until(state.engine.stopped());
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
