//! The browser's way through single sign-on: `/auth/oidc/start` sends it to
//! the identity provider, `/auth/oidc/callback` takes it back, signed in, to
//! the page it came from. Thin: [`envline_engine::sso`] does the work. A
//! failed sign-in goes back to `/login?sso_error=CODE`, which says why, and
//! its details go to the log.

use app::state::AppState;
use axum::Router;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::HeaderMap;
use axum::http::header::SET_COOKIE;
use axum::response::{AppendHeaders, IntoResponse, Redirect, Response};
use axum::routing::get;
use envline_api::SsoFailure;
use envline_engine::sso::{CALLBACK_PATH, SsoCallback, SsoError};
use serde::Deserialize;

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
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(start): Query<Start>,
    headers: HeaderMap,
) -> Response {
    let people = state.engine.people();
    let address = people.client_address(Some(peer.ip()), &headers);
    match people
        .sso_begin(start.next.as_deref(), address, &headers)
        .await
    {
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
/// code, the details going to the log. The browser's sign-in cookie is
/// dropped unless the answer was not for it (a stray link must not end a
/// sign-in under way).
fn failed(state: &AppState, error: SsoError, headers: &HeaderMap) -> Response {
    let failure = match error {
        SsoError::Failed { failure, detail } => {
            tracing::warn!(%failure, "single sign-on did not sign someone in: {detail}");
            failure
        }
        SsoError::Engine(e) => {
            tracing::error!("single sign-on failed in Envline: {}", e.with_causes());
            SsoFailure::Internal
        }
    };
    let back = Redirect::to(&format!("/login?sso_error={failure}"));
    if failure == SsoFailure::OtherBrowser {
        return back.into_response();
    }
    (
        AppendHeaders([(
            SET_COOKIE,
            state.engine.people().cleared_state_cookie(headers),
        )]),
        back,
    )
        .into_response()
}
