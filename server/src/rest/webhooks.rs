//! Webhooks in: `POST /api/v1/webhooks/github` and `/gitlab`. The host signs
//! its deliveries with `[webhooks] secret` instead of sending an Envline
//! token; a push to a branch of the pipeline refreshes at once, deduplicated
//! while a refresh runs. The checks live in the engine
//! ([`envline_engine::webhooks`]); these handlers read the request, answer, and
//! count every delivery in `envline_webhook_deliveries_total{host, outcome}`.

use app::state::AppState;
use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use envline_api::ErrorCode;
use envline_engine::refresher::RefreshRequest;
use envline_engine::webhooks::{Delivery, Host, WebhookError};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ApiResult, ErrorBody};

/// The webhook endpoints, routed and documented.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(github))
        .routes(routes!(gitlab))
}

/// The largest delivery taken: GitHub's own cap on a payload (25 MB). A push
/// listing many commits is far over the rest of the API's 256 KiB, and the
/// signature covers the whole body, so it must be read whole.
const WEBHOOK_BODY_LIMIT: usize = 25 * 1024 * 1024;

/// What a delivery did to the refresh.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
enum Refresh {
    /// A push to a branch of the pipeline, and no refresh was running: one started.
    Started,
    /// A push while a refresh runs: one more runs after it, shared by every
    /// delivery meanwhile.
    Queued,
    /// Not a push to a branch of the pipeline (a ping, another event, a tag,
    /// another branch): nothing was done.
    Ignored,
}

/// The answer to a delivery that was taken (202).
#[derive(Serialize, ToSchema)]
struct Taken {
    refresh: Refresh,
    /// Why, for the host's delivery log.
    #[schema(example = "a push to `main`: refreshing now")]
    reason: String,
}

/// A push on GitHub refreshes at once.
///
/// Set up in the repository's Settings → Webhooks: Payload URL
/// `https://<envline>/api/v1/webhooks/github`, content type
/// `application/json` (form-encoded works too), Secret = `[webhooks] secret`,
/// "Just the push event". The signature is checked before anything else;
/// a missing or wrong one gets 401 and does nothing.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks/github",
    tag = "webhooks",
    params(
        ("X-Hub-Signature-256" = String, Header, description = "`sha256=` and the hex HMAC-SHA256 of the raw body, keyed with `[webhooks] secret`"),
        ("X-GitHub-Event" = String, Header, description = "`push` refreshes (when its `ref` is a branch of the pipeline); `ping` is answered; other events are ignored"),
    ),
    request_body(content = Object, description = "GitHub's event payload, as JSON or form-encoded (`payload=<JSON>`); only a push's `ref` is read", content_type = "application/json"),
    security(("github_signature" = [])),
    responses(
        (status = 202, description = "Taken: a refresh started or queued, or the event ignored, with the reason", body = Taken),
        (status = 400, description = "Correctly signed, but no event header, or a push without a readable `ref`", body = ErrorBody),
        (status = 401, description = "No signature, or one that is not the body's HMAC with the secret; nothing was done", body = ErrorBody),
        (status = 408, description = "The body did not arrive within 10 s; nothing was done", body = ErrorBody),
        (status = 413, description = "The body is over 25 MB", body = ErrorBody),
        (status = 503, description = "`webhooks_not_configured`: no `[webhooks] secret` is set; the message says how to set it", body = ErrorBody),
    ),
)]
async fn github(State(state): State<AppState>, request: Request) -> ApiResult<Response> {
    take(&state, Host::GitHub, request).await
}

/// A push on GitLab refreshes at once.
///
/// Set up in the project's Settings → Webhooks: URL
/// `https://<envline>/api/v1/webhooks/gitlab`, Secret token =
/// `[webhooks] secret`, trigger "Push events". The token is checked before
/// anything else; a missing or wrong one gets 401 and does nothing.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks/gitlab",
    tag = "webhooks",
    params(
        ("X-Gitlab-Token" = String, Header, description = "The webhook's secret token: `[webhooks] secret`"),
        ("X-Gitlab-Event" = String, Header, description = "`Push Hook` refreshes (when its `ref` is a branch of the pipeline); other events (`Tag Push Hook`, …) are ignored"),
    ),
    request_body(content = Object, description = "GitLab's event payload; only a push's `ref` is read", content_type = "application/json"),
    security(("gitlab_token" = [])),
    responses(
        (status = 202, description = "Taken: a refresh started or queued, or the event ignored, with the reason", body = Taken),
        (status = 400, description = "The right token, but no event header, or a push without a readable `ref`", body = ErrorBody),
        (status = 401, description = "No token, or not the secret; nothing was done", body = ErrorBody),
        (status = 408, description = "The body did not arrive within 10 s; nothing was done", body = ErrorBody),
        (status = 413, description = "The body is over 25 MB", body = ErrorBody),
        (status = 503, description = "`webhooks_not_configured`: no `[webhooks] secret` is set; the message says how to set it", body = ErrorBody),
    ),
)]
async fn gitlab(State(state): State<AppState>, request: Request) -> ApiResult<Response> {
    take(&state, Host::GitLab, request).await
}

/// Checks the headers, then reads the body and hands the delivery to the
/// engine; answers 202 at once (the refresh runs on its own).
async fn take(state: &AppState, host: Host, request: Request) -> ApiResult<Response> {
    let count = |outcome: &'static str| {
        metrics::counter!("envline_webhook_deliveries_total", "host" => host.name(), "outcome" => outcome)
            .increment(1);
    };
    let (parts, body) = request.into_parts();
    let signature = header(&parts.headers, host.signature_header());
    let event = header(&parts.headers, host.event_header());
    let refused = |e: WebhookError| {
        let (status, code, outcome) = match &e {
            WebhookError::NotConfigured(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::WebhooksNotConfigured,
                "not_configured",
            ),
            WebhookError::BadSignature(_) => (
                StatusCode::UNAUTHORIZED,
                ErrorCode::BadSignature,
                "bad_signature",
            ),
            WebhookError::BadPayload(_) => {
                (StatusCode::BAD_REQUEST, ErrorCode::BadInput, "bad_payload")
            }
        };
        count(outcome);
        ApiError::new(status, code, e.to_string())
    };
    state
        .engine
        .check_webhook_headers(host, signature.as_deref())
        .map_err(refused)?;
    let body = read_delivery(body).await.inspect_err(|e| {
        count(if e.0.status == 408 {
            "too_slow"
        } else {
            "bad_payload"
        });
    })?;
    let outcome = state
        .engine
        .take_webhook(&Delivery {
            host,
            signature: signature.as_deref(),
            event: event.as_deref(),
            body: &body,
        })
        .map_err(refused)?;
    let refresh = match outcome.refresh {
        Some(RefreshRequest::Started) => Refresh::Started,
        Some(RefreshRequest::Queued) => Refresh::Queued,
        None => Refresh::Ignored,
    };
    count(match refresh {
        Refresh::Started => "started",
        Refresh::Queued => "queued",
        Refresh::Ignored => "ignored",
    });
    let answer = Taken {
        refresh,
        reason: outcome.reason,
    };
    Ok((StatusCode::ACCEPTED, Json(answer)).into_response())
}

/// How many large webhook bodies (over [`SMALL_BODY`], up to 25 MB each) are
/// read at once before their signature can be checked: an unsigned flood
/// waits, it does not fill the memory.
static LARGE_BODY_READS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(4);

/// A body up to this size is read without waiting for a slot: a push's
/// payload usually is, so slow large uploads never keep it waiting.
const SMALL_BODY: usize = 1024 * 1024;

/// How long a delivery's body may take to arrive, slot wait included.
const READ_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

/// Reads a delivery's body within [`READ_DEADLINE`]: 408 when it is too
/// slow, 413 over [`WEBHOOK_BODY_LIMIT`]. Past [`SMALL_BODY`] a body needs
/// one of the [`LARGE_BODY_READS`] slots to go on.
async fn read_delivery(body: axum::body::Body) -> ApiResult<axum::body::Bytes> {
    use http_body_util::BodyExt;
    let read = async {
        let mut body = body;
        let mut buffer = Vec::new();
        let mut slot = None;
        let mut total = 0usize;
        while let Some(frame) = body.frame().await {
            let frame = frame
                .map_err(|e| ApiError::bad_input(format!("cannot read the request body: {e}")))?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            total += data.len();
            if total > WEBHOOK_BODY_LIMIT {
                // Read on (and drop) for a while, so the sender gets the
                // answer rather than a reset connection.
                if total > 2 * WEBHOOK_BODY_LIMIT {
                    break;
                }
                continue;
            }
            if slot.is_none() && buffer.len() + data.len() > SMALL_BODY {
                slot = Some(LARGE_BODY_READS.acquire().await.map_err(|_| {
                    ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        ErrorCode::Stopping,
                        "the server is stopping",
                    )
                })?);
            }
            buffer.extend_from_slice(&data);
        }
        if total > WEBHOOK_BODY_LIMIT {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::BodyTooLarge,
                format!("the delivery is over {WEBHOOK_BODY_LIMIT} bytes; nothing was done"),
            ));
        }
        Ok(axum::body::Bytes::from(buffer))
    };
    tokio::time::timeout(READ_DEADLINE, read)
        .await
        .unwrap_or_else(|_| {
            Err(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                ErrorCode::TooSlow,
                format!(
                    "the delivery's body did not arrive within {} s; nothing was done",
                    READ_DEADLINE.as_secs()
                ),
            ))
        })
}

/// A header's value as text (bytes that are not UTF-8 shown as �, so a bad
/// value is refused as wrong rather than taken for a missing one).
fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}
