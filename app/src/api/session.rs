//! Signing in and out, and who is signed in.

use leptos::prelude::*;

use envline_api::Viewer;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// What every page's header and banner show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// Who is looking; `None` when nobody is signed in and the pages cannot
    /// be read anonymously.
    pub viewer: Option<Viewer>,
    /// Requests this person could approve now.
    pub waiting_for_me: usize,
    /// Why the remote could not be fetched, while it cannot.
    pub remote_error: Option<String>,
    /// The incident in hotfix mode, while one is.
    #[serde(default)]
    pub hotfix: Option<envline_api::IncidentView>,
}

/// How people sign in here: with a password, with single sign-on, or both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignInMethods {
    /// Local passwords are accepted (`auth.passwords`).
    pub passwords: bool,
    /// The identity provider's name, when single sign-on is configured.
    pub single_sign_on: Option<String>,
}

/// How the sign-in page offers to sign in.
#[server(prefix = "/fn", endpoint = "sign_in_options")]
pub async fn sign_in_options() -> Result<SignInMethods, AppError> {
    let engine = expect_context::<crate::state::AppState>().engine;
    Ok(SignInMethods {
        passwords: engine.config.auth.passwords,
        single_sign_on: engine.people().sso_name().map(str::to_owned),
    })
}

/// Who is looking, what waits for them, and whether the remote answers.
#[server(prefix = "/fn", endpoint = "session")]
pub async fn get_session() -> Result<SessionInfo, AppError> {
    use envline_api::RequestState;
    use envline_engine::caller::Access;
    let engine = expect_context::<crate::state::AppState>().engine;
    // Nobody signed in is an answer here, not a refusal.
    let who = match engine
        .people()
        .caller(&super::server::headers(), Access::Read)
        .await
    {
        Ok(who) => who,
        Err(envline_engine::EngineError::Unauthenticated(_)) => {
            return Ok(SessionInfo {
                viewer: None,
                waiting_for_me: 0,
                remote_error: None,
                hotfix: None,
            });
        }
        Err(e) => return Err(super::server::refuse(e)),
    };
    let viewer = engine.viewer(&who);
    use super::server::read;
    let waiting_for_me = read(engine.requests(Some(RequestState::AwaitingApproval), 1000))
        .await?
        .iter()
        .filter(|r| {
            r.requested_by != who.user
                && viewer.on(&r.environment).approve
                && !r.counted_approvers.contains(&who.user)
        })
        .count();
    let remote_error = read(engine.views().pipeline()).await?.refresh_error.clone();
    Ok(SessionInfo {
        viewer: Some(viewer),
        waiting_for_me,
        remote_error,
        hotfix: engine.hotfix_mode().incident(),
    })
}

/// Checks the password, sets the session cookie and goes to `next` (a path
/// on this site; anything else goes to the pipeline).
#[server(prefix = "/fn", endpoint = "sign_in")]
pub async fn sign_in(user: String, password: String, next: Option<String>) -> Result<(), AppError> {
    use std::net::SocketAddr;

    use axum::extract::ConnectInfo;
    use http::header::SET_COOKIE;

    let state = expect_context::<crate::state::AppState>();
    let headers = super::server::headers();
    state
        .engine
        .people()
        .require_same_origin(&headers)
        .map_err(super::server::refuse)?;
    let peer = leptos_axum::extract::<ConnectInfo<SocketAddr>>()
        .await
        .ok()
        .map(|ConnectInfo(a)| a.ip());
    let address = state.engine.people().client_address(peer, &headers);
    let signed_in = match state
        .engine
        .people()
        .sign_in(&user, &password, address)
        .await
    {
        Ok(s) => s,
        Err(e) => {
            // 429 says when to come back, as the HTTP standard has it.
            if let envline_engine::EngineError::RateLimited { retry_after, .. } = &e {
                expect_context::<leptos_axum::ResponseOptions>().insert_header(
                    http::header::RETRY_AFTER,
                    http::HeaderValue::from(*retry_after),
                );
            }
            return Err(super::server::refuse(e));
        }
    };
    let cookie = state
        .engine
        .people()
        .session_cookie(&signed_in.secret, &headers);
    let response = expect_context::<leptos_axum::ResponseOptions>();
    response.append_header(
        SET_COOKIE,
        http::HeaderValue::from_str(&cookie)
            .map_err(|e| AppError::new(500, envline_api::ErrorCode::Internal, e.to_string()))?,
    );
    leptos_axum::redirect(&envline_engine::session::safe_next(next.as_deref()));
    Ok(())
}

/// Ends the session and goes to the sign-in page.
#[server(prefix = "/fn", endpoint = "sign_out")]
pub async fn sign_out() -> Result<(), AppError> {
    use http::header::SET_COOKIE;

    let state = expect_context::<crate::state::AppState>();
    let headers = super::server::headers();
    state
        .engine
        .people()
        .require_same_origin(&headers)
        .map_err(super::server::refuse)?;
    super::server::read(state.engine.people().sign_out(&headers)).await?;
    let cookie = state.engine.people().cleared_session_cookie(&headers);
    let response = expect_context::<leptos_axum::ResponseOptions>();
    response.append_header(
        SET_COOKIE,
        http::HeaderValue::from_str(&cookie)
            .map_err(|e| AppError::new(500, envline_api::ErrorCode::Internal, e.to_string()))?,
    );
    leptos_axum::redirect("/login");
    Ok(())
}

/// The identity provider the signed-in person signs in with, when they use
/// single sign-on (they have no password here to change).
#[server(prefix = "/fn", endpoint = "own_provider")]
pub async fn own_provider() -> Result<Option<String>, AppError> {
    use envline_engine::caller::Access;
    let engine = expect_context::<crate::state::AppState>().engine;
    let Ok(who) = engine
        .people()
        .caller(&super::server::headers(), Access::Read)
        .await
    else {
        return Ok(None);
    };
    let Some(provider) = engine.people().sso_name() else {
        return Ok(None);
    };
    let sso = super::server::read(engine.people().signs_in_with_sso(&who.user)).await?;
    Ok(sso.then(|| provider.to_owned()))
}

/// Changes the signed-in person's own password. Their other sessions end;
/// this one stays. Returns how many ended.
#[server(prefix = "/fn", endpoint = "change_password")]
pub async fn change_password(
    current: String,
    new: String,
    confirm: String,
) -> Result<u64, AppError> {
    use envline_engine::caller::Access;
    let (engine, who) = super::server::caller(Access::Change).await?;
    if new != confirm {
        return Err(super::server::refuse(AppError::bad_input(
            "the new password and its confirmation differ; nothing was changed",
        )));
    }
    let keep = envline_engine::session::session_secret(&super::server::headers());
    super::server::run(async move {
        engine
            .people()
            .change_own_password(&who, &current, &new, keep.as_deref())
            .await
    })
    .await
}
