//! The HTTP API v1 (DESIGN.md §7): thin handlers that authenticate, parse,
//! call the engine and map its errors to `{"error": {code, message, details}}`.

use std::sync::OnceLock;
use std::time::Instant;

use app::engine::auth::{Permission, Principal};
use app::engine::ops::{self, HoldInput, PromoteInput, RollbackInput};
use app::engine::store::{self, AuditFilter};
use app::engine::{EngineError, audit};
use app::state::AppState;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use http_body_util::BodyExt;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;

/// The largest request body the API accepts.
const BODY_LIMIT: usize = 256 * 1024;

/// An API error response.
pub struct ApiError {
    status: StatusCode,
    code: String,
    message: String,
    details: serde_json::Value,
}

impl ApiError {
    fn new(status: StatusCode, code: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code: code.into(),
            message: message.into(),
            details: serde_json::Value::Null,
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        ApiError {
            status: StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            code: e.code().to_owned(),
            message: e.to_string(),
            details: e.details(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!("{}: {}", self.code, self.message);
        }
        (self.status, Json(json!({ "error": { "code": self.code, "message": self.message, "details": self.details } }))).into_response()
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// Who is calling: a bearer token's user, or the anonymous reader.
pub struct Caller(Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let engine = &state.engine;
        match parts.headers.get(header::AUTHORIZATION) {
            Some(value) => {
                let token = value
                    .to_str()
                    .ok()
                    .and_then(|v| v.strip_prefix("Bearer "))
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", "the Authorization header must be `Bearer <token>`; create a token with `envline token create --user NAME`"))?;
                match engine.principal_for_token(token).await? {
                    Some(p) => Ok(Caller(p)),
                    None => Err(ApiError::new(
                        StatusCode::UNAUTHORIZED,
                        "unauthenticated",
                        "unknown or revoked token; create a new one with `envline token create --user NAME`",
                    )),
                }
            }
            None if engine.config.auth.anonymous_read
                && parts.method == axum::http::Method::GET =>
            {
                Ok(Caller(Principal::anonymous()))
            }
            None => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "send `Authorization: Bearer <token>`; create a token with `envline token create --user NAME`",
            )),
        }
    }
}

impl Caller {
    fn read(&self) -> ApiResult<&Principal> {
        self.0
            .require(Permission::Read, None)
            .map_err(EngineError::from)?;
        Ok(&self.0)
    }
}

/// How much of an oversized body is read and dropped before answering 413, so
/// the client, still sending, gets the answer instead of a reset connection.
const DRAIN_LIMIT: usize = 64 * 1024 * 1024;

/// A request body read up to [`BODY_LIMIT`].
pub struct Body(ApiResult<Bytes>);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = std::convert::Infallible;

    async fn from_request(request: Request, _: &S) -> Result<Self, Self::Rejection> {
        let mut body = request.into_body();
        let mut buffer = Vec::new();
        let mut total = 0usize;
        while let Some(frame) = body.frame().await {
            let frame = match frame {
                Ok(f) => f,
                Err(e) => {
                    return Ok(Body(Err(ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "bad_input",
                        format!("cannot read the request body: {e}"),
                    ))));
                }
            };
            if let Ok(data) = frame.into_data() {
                total += data.len();
                if total <= BODY_LIMIT {
                    buffer.extend_from_slice(&data);
                } else if total > DRAIN_LIMIT {
                    break;
                }
            }
        }
        if total > BODY_LIMIT {
            return Ok(Body(Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!(
                    "the request body has {total} bytes or more; the API takes at most {BODY_LIMIT}"
                ),
            ))));
        }
        Ok(Body(Ok(Bytes::from(buffer))))
    }
}

/// Parses a JSON body, answering 400 for malformed JSON and 413 for a body over the limit.
fn parse_json<T: DeserializeOwned>(body: Body) -> ApiResult<T> {
    let bytes = body.0?;
    serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_input",
            format!("the body is not the JSON this endpoint takes: {e}"),
        )
    })
}

/// Runs an operation in a task of its own, so a client that hangs up cannot
/// cancel it between the push and the record of what was pushed.
async fn detached<T: Send + 'static>(
    op: impl Future<Output = Result<T, EngineError>> + Send + 'static,
) -> ApiResult<T> {
    tokio::spawn(op)
        .await
        .map_err(|e| {
            ApiError::from(EngineError::Internal(format!(
                "the operation's task failed: {e}"
            )))
        })?
        .map_err(ApiError::from)
}

/// The API routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/api/v1/environments", get(environments))
        .route("/api/v1/timeline", get(timeline))
        .route("/api/v1/promotions", post(promote).get(promotions))
        .route("/api/v1/promotions/{id}", get(promotion))
        .route("/api/v1/promotions/{id}/approvals", post(approve))
        .route("/api/v1/verifications", post(verify))
        .route("/api/v1/rollbacks", post(rollback))
        .route("/api/v1/realignments", post(realign))
        .route("/api/v1/cherry-picks", post(cherry_pick))
        .route("/api/v1/holds", post(hold).get(holds))
        .route("/api/v1/holds/{id}", delete(release))
        .route("/api/v1/refresh", post(refresh))
        .route("/api/v1/audit", get(audit_log))
        .route("/api/v1/audit/verify", get(audit_verify))
        .route("/api/v1/{*rest}", axum::routing::any(unknown))
        .method_not_allowed_fallback(wrong_method)
        .layer(DefaultBodyLimit::disable())
}

async fn wrong_method(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{} does not take {method}; see the README for the methods of each endpoint",
            uri.path()
        ),
    )
}

async fn unknown(Path(rest): Path<String>) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no API endpoint /api/v1/{rest}; see the README for the list"),
    )
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

async fn metrics(State(state): State<AppState>) -> Response {
    if let Ok(view) = state.engine.pipeline().await {
        for env in view.environments.iter().filter(|e| !e.is_root) {
            metrics::gauge!("envline_environment_behind_from", "environment" => env.name.clone())
                .set(env.behind_from.unwrap_or(0) as f64);
            metrics::gauge!("envline_environment_on_line", "environment" => env.name.clone())
                .set(if env.on_line { 1.0 } else { 0.0 });
        }
    }
    let body = METRICS.get().map(|h| h.render()).unwrap_or_default();
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        body,
    )
        .into_response()
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

async fn environments(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    caller.read()?;
    let view = state.engine.pipeline().await?;
    Ok(Json(json!({ "root": view.root, "environments": view.environments, "merge_commits": view.merge_commits, "refreshed_at": view.refreshed_at, "refresh_error": view.refresh_error })).into_response())
}

#[derive(Deserialize)]
struct TimelineQuery {
    limit: Option<usize>,
    before: Option<String>,
}

async fn timeline(
    State(state): State<AppState>,
    caller: Caller,
    q: Result<Query<TimelineQuery>, QueryRejection>,
) -> ApiResult<Response> {
    caller.read()?;
    let q = query(q)?;
    let limit = q.limit.unwrap_or(50);
    if limit == 0 || limit > 500 {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_input",
            "`limit` must be between 1 and 500",
        ));
    }
    let entries = state.engine.timeline(limit, q.before.as_deref()).await?;
    Ok(Json(json!({ "commits": entries })).into_response())
}

async fn promote(State(state): State<AppState>, caller: Caller, body: Body) -> ApiResult<Response> {
    let input: PromoteInput = parse_json(body)?;
    let several = input.environments.is_some();
    let (engine, who) = (state.engine.clone(), caller.0);
    let mut result = detached(async move { ops::promote(&engine, &who, input).await }).await?;
    if several {
        Ok((StatusCode::CREATED, Json(json!({ "promotions": result }))).into_response())
    } else {
        let one = result.pop().ok_or_else(|| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "no promotion recorded",
            )
        })?;
        Ok((StatusCode::CREATED, Json(one)).into_response())
    }
}

#[derive(Deserialize)]
struct StateQuery {
    state: Option<String>,
    limit: Option<i64>,
}

async fn promotions(
    State(state): State<AppState>,
    caller: Caller,
    q: Result<Query<StateQuery>, QueryRejection>,
) -> ApiResult<Response> {
    caller.read()?;
    let q = query(q)?;
    if let Some(s) = &q.state
        && ![
            "awaiting_approval",
            "done",
            "rejected",
            "failed",
            "cancelled",
        ]
        .contains(&s.as_str())
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_input",
            format!(
                "unknown state `{s}`; use awaiting_approval, done, rejected, failed or cancelled"
            ),
        ));
    }
    let list = store::requests(
        &state.engine.pool,
        q.state.as_deref(),
        q.limit.unwrap_or(200).clamp(1, 1000),
    )
    .await
    .map_err(EngineError::from)?;
    Ok(Json(json!({ "promotions": list })).into_response())
}

/// A query string the endpoint understands, or a JSON 400 saying what is wrong with it.
fn query<T>(q: Result<Query<T>, QueryRejection>) -> ApiResult<T> {
    q.map(|Query(q)| q).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_input",
            format!(
                "the query string is not what this endpoint takes: {}",
                e.body_text()
            ),
        )
    })
}

fn parse_id(text: &str) -> ApiResult<i64> {
    text.parse().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_input",
            format!("`{text}` is not a request id (a number)"),
        )
    })
}

async fn promotion(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    caller.read()?;
    let id = parse_id(&id)?;
    let found = store::request(&state.engine.pool, id)
        .await
        .map_err(EngineError::from)?;
    match found {
        Some(r) => Ok(Json(r).into_response()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no promotion request {id}"),
        )),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionInput {
    decision: String,
    comment: Option<String>,
}

async fn approve(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Body,
) -> ApiResult<Response> {
    let id = parse_id(&id)?;
    let input: DecisionInput = parse_json(body)?;
    let (engine, who) = (state.engine.clone(), caller.0);
    let result = detached(async move {
        ops::decide(&engine, &who, id, &input.decision, input.comment.as_deref()).await
    })
    .await?;
    Ok(Json(result).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerificationInput {
    environment: String,
    commit: String,
    status: String,
    url: Option<String>,
    summary: Option<String>,
}

async fn verify(State(state): State<AppState>, caller: Caller, body: Body) -> ApiResult<Response> {
    let v: VerificationInput = parse_json(body)?;
    let (engine, who) = (state.engine.clone(), caller.0);
    let result = detached(async move {
        ops::verify(
            &engine,
            &who,
            &v.environment,
            &v.commit,
            &v.status,
            v.url.as_deref(),
            v.summary.as_deref(),
        )
        .await
    })
    .await?;
    Ok((StatusCode::CREATED, Json(result)).into_response())
}

async fn rollback(
    State(state): State<AppState>,
    caller: Caller,
    body: Body,
) -> ApiResult<Response> {
    let input: RollbackInput = parse_json(body)?;
    let (engine, who) = (state.engine.clone(), caller.0);
    let events = detached(async move { ops::rollback(&engine, &who, input).await }).await?;
    Ok((StatusCode::CREATED, Json(json!({ "events": events }))).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RealignInput {
    environment: String,
    reason: Option<String>,
}

async fn realign(State(state): State<AppState>, caller: Caller, body: Body) -> ApiResult<Response> {
    let input: RealignInput = parse_json(body)?;
    let (engine, who) = (state.engine.clone(), caller.0);
    let result = detached(async move {
        ops::realign(&engine, &who, &input.environment, input.reason.as_deref()).await
    })
    .await?;
    Ok((StatusCode::CREATED, Json(result)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CherryPickInput {
    environment: String,
    commit: String,
    reason: Option<String>,
}

async fn cherry_pick(
    State(state): State<AppState>,
    caller: Caller,
    body: Body,
) -> ApiResult<Response> {
    let input: CherryPickInput = parse_json(body)?;
    let (engine, who) = (state.engine.clone(), caller.0);
    let result = detached(async move {
        ops::cherry_pick(
            &engine,
            &who,
            &input.environment,
            &input.commit,
            input.reason.as_deref(),
        )
        .await
    })
    .await?;
    Ok((StatusCode::CREATED, Json(result)).into_response())
}

async fn hold(State(state): State<AppState>, caller: Caller, body: Body) -> ApiResult<Response> {
    let input: HoldInput = parse_json(body)?;
    let (engine, who) = (state.engine.clone(), caller.0);
    let result = detached(async move { ops::hold(&engine, &who, input).await }).await?;
    Ok((StatusCode::CREATED, Json(json!({ "holds": result }))).into_response())
}

async fn holds(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    caller.read()?;
    let list: Vec<app::model::HoldView> = store::unreleased_holds(&state.engine.pool)
        .await
        .map_err(EngineError::from)?
        .into_iter()
        .map(Into::into)
        .collect();
    Ok(Json(json!({ "holds": list })).into_response())
}

async fn release(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = parse_id(&id)?;
    let (engine, who) = (state.engine.clone(), caller.0);
    detached(async move { ops::release(&engine, &who, id, None).await }).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn refresh(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    caller
        .0
        .require(Permission::Refresh, None)
        .map_err(EngineError::from)?;
    let engine = state.engine.clone();
    detached(async move { engine.refresh().await }).await?;
    let view = state.engine.pipeline().await?;
    Ok(Json(json!({ "refreshed_at": view.refreshed_at })).into_response())
}

#[derive(Deserialize)]
struct AuditQuery {
    format: Option<String>,
    environment: Option<String>,
    since: Option<String>,
    limit: Option<i64>,
}

async fn audit_log(
    State(state): State<AppState>,
    caller: Caller,
    q: Result<Query<AuditQuery>, QueryRejection>,
) -> ApiResult<Response> {
    caller.read()?;
    let q = query(q)?;
    let since = match &q.since {
        Some(s) => Some(
            chrono::DateTime::parse_from_rfc3339(s)
                .map(|d| {
                    d.with_timezone(&chrono::Utc)
                        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                })
                .map_err(|e| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "bad_input",
                        format!("`since` must be an RFC 3339 time like 2026-11-01T00:00:00Z: {e}"),
                    )
                })?,
        ),
        None => None,
    };
    let filter = AuditFilter {
        environment: q.environment.clone(),
        since,
        limit: q.limit,
    };
    let events = store::audit_events(&state.engine.pool, &filter)
        .await
        .map_err(EngineError::from)?;
    match q.format.as_deref().unwrap_or("json") {
        "json" => Ok(Json(json!({ "events": events })).into_response()),
        "csv" => {
            let mut writer = csv::Writer::from_writer(Vec::new());
            let _ = writer.write_record([
                "id",
                "at",
                "actor",
                "action",
                "environment",
                "old",
                "new",
                "reason",
                "details",
                "hash",
            ]);
            for e in &events {
                let _ = writer.write_record([
                    e.id.to_string(),
                    e.at.clone(),
                    e.actor.clone(),
                    e.action.clone(),
                    e.environment.clone().unwrap_or_default(),
                    e.old.clone().unwrap_or_default(),
                    e.new.clone().unwrap_or_default(),
                    e.reason.clone(),
                    e.details.to_string(),
                    e.hash.clone(),
                ]);
            }
            let body = writer.into_inner().unwrap_or_default();
            let mut headers = HeaderMap::new();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            );
            headers.insert(
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment; filename=\"envline-audit.csv\""),
            );
            Ok((headers, body).into_response())
        }
        other => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_input",
            format!("`format` must be json or csv, not `{other}`"),
        )),
    }
}

async fn audit_verify(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    caller.read()?;
    let check = audit::verify(&state.engine.pool)
        .await
        .map_err(EngineError::from)?;
    Ok(Json(check).into_response())
}
