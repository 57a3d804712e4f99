//! The browser's way through single sign-on: `/auth/oidc/start` sends it to
//! the identity provider, `/auth/oidc/callback` takes it back, signed in, to
//! the page it came from. Thin: [`envline_engine::sso`] does the work. A
//! failed sign-in goes back to `/login?sso_error=CODE`, which says why, and
//! its details go to the log.

use app::state::AppState;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::http::header::SET_COOKIE;
use axum::response::{AppendHeaders, IntoResponse, Redirect, Response};
use axum::routing::get;
use envline_engine::sso::{CALLBACK_PATH, SsoCallback, SsoError};
use serde::Deserialize;

use crate::rest::error::ApiError;

/// The single sign-on routes (open to everyone: they are how one signs in).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/auth/oidc/start", get(start))
        .route(CALLBACK_PATH, get(callback))
}

#[derive(Deserialize)]
struct Start {
    /// The page to come back to (on this site).
    next: Option<String>,
}

async fn start(
    State(state): State<AppState>,
    Query(start): Query<Start>,
    headers: HeaderMap,
) -> Response {
    let people = state.engine.people();
    match people.sso_begin(start.next.as_deref(), &headers).await {
        Ok(begun) => (
            AppendHeaders([(SET_COOKIE, begun.state_cookie)]),
            Redirect::to(&begun.location),
        )
            .into_response(),
        Err(e) => failed(&state, e, &headers),
    }
}

async fn callback(
    State(state): State<AppState>,
    Query(answer): Query<SsoCallback>,
    headers: HeaderMap,
) -> Response {
    let people = state.engine.people();
    match people.sso_finish(answer, &headers).await {
        Ok(done) => {
            tracing::info!(
                user = %done.signed_in.principal.user,
                "signed in with single sign-on"
            );
            (
                AppendHeaders([
                    (
                        SET_COOKIE,
                        people.session_cookie(&done.signed_in.secret, &headers),
                    ),
                    (SET_COOKIE, people.cleared_state_cookie(&headers)),
                ]),
                Redirect::to(&done.next),
            )
                .into_response()
        }
        Err(e) => failed(&state, e, &headers),
    }
}

/// A sign-in that failed goes back to the sign-in page with the reason's
/// code; Envline's own failure is answered as any other.
fn failed(state: &AppState, error: SsoError, headers: &HeaderMap) -> Response {
    match error {
        SsoError::Failed { failure, detail } => {
            tracing::warn!(%failure, "single sign-on did not sign someone in: {detail}");
            (
                AppendHeaders([(
                    SET_COOKIE,
                    state.engine.people().cleared_state_cookie(headers),
                )]),
                Redirect::to(&format!("/login?sso_error={failure}")),
            )
                .into_response()
        }
        SsoError::Engine(e) => ApiError::from(e).into_response(),
    }
}
