//! What API handlers take from a request: the caller, a size-limited JSON
//! body, a query string, an id in the path; each failing with a clear 4xx.

use app::state::AppState;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use envline_api::ErrorCode;
use envline_engine::EngineError;
use envline_engine::auth::{Permission, Principal};
use envline_engine::caller::Access;
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;

use super::error::{ApiError, ApiResult};

/// The largest request body the API accepts.
const BODY_LIMIT: usize = 256 * 1024;

/// How much of an oversized body is read and dropped before answering 413, so
/// the client, still sending, gets the answer instead of a reset connection.
const DRAIN_LIMIT: usize = 64 * 1024 * 1024;

/// Who is calling: a bearer token's user, a signed-in browser (whose changes
/// must come from Envline's own pages), or the anonymous reader. `GET`s are
/// reads; everything else is a change.
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let access = if parts.method == axum::http::Method::GET {
            Access::Read
        } else {
            Access::Change
        };
        Ok(Caller(
            state.engine.people().caller(&parts.headers, access).await?,
        ))
    }
}

impl Caller {
    /// The caller, once it is checked that they may read.
    pub fn reader(&self) -> ApiResult<&Principal> {
        self.0
            .require(Permission::Read, None)
            .map_err(EngineError::from)?;
        Ok(&self.0)
    }
}

/// A request body read up to [`BODY_LIMIT`].
pub struct Body(ApiResult<Bytes>);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = std::convert::Infallible;

    async fn from_request(request: Request, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Body(read_limited(request.into_body(), BODY_LIMIT).await))
    }
}

/// Reads a request body of at most `limit` bytes: 413 past it (after
/// draining some, see [`DRAIN_LIMIT`]), 400 when it cannot be read.
pub async fn read_limited(mut body: axum::body::Body, limit: usize) -> ApiResult<Bytes> {
    let mut buffer = Vec::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| ApiError::bad_input(format!("cannot read the request body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            total += data.len();
            if total <= limit {
                buffer.extend_from_slice(&data);
            } else if total > DRAIN_LIMIT {
                break;
            }
        }
    }
    if total > limit {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::BodyTooLarge,
            format!(
                "the request body has {total} bytes or more; this endpoint takes at most {limit}"
            ),
        ));
    }
    Ok(Bytes::from(buffer))
}

impl Body {
    /// Parses the body as JSON: 400 for malformed JSON, 413 for a body over the limit.
    pub fn json<T: DeserializeOwned>(self) -> ApiResult<T> {
        let bytes = self.0?;
        serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::bad_input(format!("the body is not the JSON this endpoint takes: {e}"))
        })
    }
}

/// A query string the endpoint understands, or a JSON 400 saying what is wrong with it.
pub fn query<T>(q: Result<Query<T>, QueryRejection>) -> ApiResult<T> {
    q.map(|Query(q)| q).map_err(|e| {
        ApiError::bad_input(format!(
            "the query string is not what this endpoint takes: {}",
            e.body_text()
        ))
    })
}

/// A request id from the path.
pub fn parse_id(text: &str) -> ApiResult<i64> {
    text.parse()
        .map_err(|_| ApiError::bad_input(format!("`{text}` is not a request id (a number)")))
}
