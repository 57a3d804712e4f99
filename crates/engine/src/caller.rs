//! Who is calling, for the REST API and the server functions alike: a bearer
//! token (scripts, CI), a session cookie (people in a browser, whose changes
//! must also come from Envline's own pages), or the anonymous reader that
//! `auth.anonymous_read` allows.

use http::HeaderMap;
use http::header::AUTHORIZATION;

use super::auth::{Credential, Principal};
use super::people::People;
use super::session::session_secret;
use super::{EngineError, auth};

/// What the caller wants to do: reads may be anonymous, changes may not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Change,
}

impl People {
    /// Resolves the caller of a request from its headers.
    pub async fn caller(
        &self,
        headers: &HeaderMap,
        access: Access,
    ) -> Result<Principal, EngineError> {
        if let Some(value) = headers.get(AUTHORIZATION) {
            let token = value
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .ok_or_else(|| {
                    EngineError::Unauthenticated(
                        "the Authorization header must be `Bearer <token>`; create a token with `envline token create --user NAME`".into(),
                    )
                })?;
            return self.principal_for_token(token).await?.ok_or_else(|| {
                EngineError::Unauthenticated(
                    "unknown or revoked token; create a new one with `envline token create --user NAME`".into(),
                )
            });
        }
        if let Some(secret) = session_secret(headers)
            && let Some(principal) = auth::principal_for_session(&self.pool, &secret).await?
        {
            if access == Access::Change {
                self.require_same_origin(headers)?;
            }
            return Ok(principal);
        }
        if access == Access::Read && self.config.auth.anonymous_read {
            return Ok(Principal::anonymous());
        }
        Err(EngineError::Unauthenticated(match access {
            Access::Read => "sign in (or send `Authorization: Bearer <token>`; create a token with `envline token create --user NAME`)".into(),
            Access::Change => "sign in to make changes (or send `Authorization: Bearer <token>`; create a token with `envline token create --user NAME`)".into(),
        }))
    }
}

/// How often a live stream checks that its session or token still stands.
const CREDENTIAL_RECHECK: std::time::Duration = std::time::Duration::from_secs(2);

/// What a request was authenticated with, if anything: a live stream keeps
/// it and checks it again while it runs.
pub fn credential(headers: &HeaderMap) -> Option<Credential> {
    if let Some(token) = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        return Some(Credential::Token(token.to_owned()));
    }
    session_secret(headers).map(Credential::Session)
}

impl People {
    /// Completes when `credential` no longer stands (the session ended with
    /// a password change or a removal, the token was revoked), checked every
    /// [`CREDENTIAL_RECHECK`]; never for the anonymous reader.
    pub fn credential_ended(
        &self,
        credential: Option<Credential>,
    ) -> impl Future<Output = ()> + Send + 'static + use<> {
        let pool = self.pool.clone();
        async move {
            let Some(credential) = credential else {
                return std::future::pending().await;
            };
            loop {
                tokio::time::sleep(CREDENTIAL_RECHECK).await;
                // A database hiccup does not end a stream; only a clear "gone" does.
                if let Ok(false) = auth::credential_live(&pool, &credential).await {
                    return;
                }
            }
        }
    }
}
