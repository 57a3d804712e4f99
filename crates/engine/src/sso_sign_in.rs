//! Signing people in with single sign-on ([`crate::sso`] is the provider's
//! side). A sign-in under way lives in the database (any replica can finish
//! it) and in a cookie of the browser that started it (a code fetched by
//! someone else cannot sign a victim in as that someone). A person is known
//! by the provider's subject; the Envline name is fixed at their first
//! sign-in, and their roles are the ones their groups give at each sign-in,
//! audited like any change of roles.

use std::net::IpAddr;

use envline_api::{AuditAction, SsoFailure};
use http::HeaderMap;
use openidconnect::core::{CoreGenderClaim, CoreJsonWebKey, CoreResponseType};
use openidconnect::{
    AccessTokenHash, AuthenticationFlow, AuthorizationCode, ClaimsVerificationError, CsrfToken,
    JsonWebKey, JwsSigningAlgorithm, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    PkceCodeVerifier, RequestTokenError, Scope,
};
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use crate::audit::{self, AuditDraft};
use crate::auth::{self, Grant};
use crate::error::with_causes;
use crate::people::People;
use crate::session::{SESSION_HOURS, SignedIn, safe_next};
use crate::sso::{
    CALLBACK_PATH, OtherClaims, SIGN_IN_MINUTES, STATE_COOKIE, SingleSignOn, SsoCallback, SsoError,
    groups_of,
};
use crate::store::{self, people, sso_logins};
use crate::{EngineError, session};

/// The start of a sign-in: where to send the browser, and the cookie that
/// ties the sign-in to it.
pub struct SsoStart {
    pub location: String,
    pub state_cookie: String,
}

/// A finished sign-in: the session, and the page to go to.
pub struct SsoSignedIn {
    pub signed_in: SignedIn,
    pub next: String,
}

impl People {
    /// The provider's name for the sign-in button, when single sign-on is
    /// configured.
    pub fn sso_name(&self) -> Option<&str> {
        self.sso.as_ref().map(SingleSignOn::name)
    }

    /// Whether the person named signs in with single sign-on (and so has
    /// no password here).
    pub async fn signs_in_with_sso(&self, name: &str) -> Result<bool, EngineError> {
        let mut tx = self.pool.begin().await.map_err(EngineError::from)?;
        let subject = people::sso_subject_of(&mut tx, name).await?;
        tx.rollback().await.map_err(EngineError::from)?;
        Ok(subject.is_some())
    }

    fn sso(&self) -> Result<&SingleSignOn, SsoError> {
        self.sso
            .as_ref()
            .ok_or_else(|| SsoError::failed(SsoFailure::NotConfigured, "there is no [auth.oidc]"))
    }

    /// Starts a sign-in: records it, and says where to send the browser
    /// (`next` is the page to come back to, on this site only). Counted as
    /// a sign-in attempt of `address`, so that nobody fills the database
    /// with sign-ins they never finish.
    pub async fn sso_begin(
        &self,
        next: Option<&str>,
        address: Option<IpAddr>,
        headers: &HeaderMap,
    ) -> Result<SsoStart, SsoError> {
        let sso = self.sso()?;
        self.login_limiter
            .check_sso_start(address)
            .await
            .map_err(|e| match e {
                EngineError::RateLimited { message, .. } => {
                    SsoError::failed(SsoFailure::TooMany, message)
                }
                other => SsoError::Engine(other),
            })?;
        let client = sso.client(false).await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(
                AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("profile".into()))
            .set_pkce_challenge(challenge);
        for scope in &sso.config.scopes {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (location, state, nonce) = request.url();
        let expires = (chrono::Utc::now() + chrono::Duration::minutes(SIGN_IN_MINUTES))
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        sso_logins::insert(
            &self.pool,
            &auth::digest(state.secret()),
            &sso_logins::PendingSignIn {
                verifier: verifier.secret().clone(),
                nonce: nonce.secret().clone(),
                next: safe_next(next),
            },
            &expires,
        )
        .await?;
        Ok(SsoStart {
            location: location.to_string(),
            state_cookie: self.state_cookie(state.secret(), headers),
        })
    }

    /// Finishes a sign-in from the provider's answer: checks it, brings the
    /// person's roles up to date with their groups, and opens a session.
    pub async fn sso_finish(
        &self,
        answer: SsoCallback,
        headers: &HeaderMap,
    ) -> Result<SsoSignedIn, SsoError> {
        let sso = self.sso()?;
        // The state first: only an answer to this browser's own sign-in is
        // acted on, even to say that it failed.
        let started_here = match (&answer.state, session::cookie(headers, STATE_COOKIE)) {
            (Some(state), Some(cookie)) => bool::from(cookie.as_bytes().ct_eq(state.as_bytes())),
            _ => false,
        };
        if !started_here {
            return Err(SsoError::failed(
                SsoFailure::OtherBrowser,
                "the answer's state is not the one in this browser's cookie",
            ));
        }
        if let Some(error) = &answer.error {
            return Err(SsoError::failed(
                SsoFailure::Refused,
                format!(
                    "the provider answered {error:?}{}",
                    answer
                        .error_description
                        .as_deref()
                        .map(|d| format!(": {d:?}"))
                        .unwrap_or_default()
                ),
            ));
        }
        if let Some(iss) = &answer.iss
            && *iss != sso.config.issuer
        {
            return Err(SsoError::failed(
                SsoFailure::Invalid,
                format!(
                    "the answer comes from the issuer {iss:?}, not `{}`",
                    sso.config.issuer
                ),
            ));
        }
        let (Some(code), Some(state)) = (answer.code, answer.state) else {
            return Err(SsoError::failed(
                SsoFailure::Invalid,
                "the provider's answer carries no code",
            ));
        };
        let Some(pending) = sso_logins::take(&self.pool, &auth::digest(&state)).await? else {
            return Err(SsoError::failed(
                SsoFailure::Expired,
                "no sign-in under way has this state (expired, or used already)",
            ));
        };

        let client = sso.client(false).await?;
        let token = client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| SsoError::failed(SsoFailure::Invalid, with_causes(&e)))?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.verifier))
            .request_async(&sso.http)
            .await
            .map_err(|e| {
                let failure = match &e {
                    RequestTokenError::ServerResponse(_) => SsoFailure::Refused,
                    RequestTokenError::Request(_) => SsoFailure::Unreachable,
                    _ => SsoFailure::Invalid,
                };
                SsoError::failed(
                    failure,
                    format!("exchanging the code for tokens: {}", with_causes(&e)),
                )
            })?;
        let id_token = token.extra_fields().id_token().ok_or_else(|| {
            SsoError::failed(SsoFailure::Invalid, "the token answer carries no ID token")
        })?;
        let nonce = Nonce::new(pending.nonce);
        let invalid = |e: ClaimsVerificationError| {
            SsoError::failed(
                SsoFailure::Invalid,
                format!("the ID token: {}", with_causes(&e)),
            )
        };
        // A signature that fails may be made with a key the provider
        // rotated in since its keys were read: read them once more.
        let signature_failed = matches!(
            id_token.claims(&client.id_token_verifier(), &nonce),
            Err(ClaimsVerificationError::SignatureVerification(_))
        );
        let client = if signature_failed {
            sso.client(true).await?
        } else {
            client
        };
        let verifier = client.id_token_verifier();
        let claims = id_token.claims(&verifier, &nonce).map_err(invalid)?;
        if let Some(expected) = claims.access_token_hash() {
            let actual = id_token
                .signing_alg()
                .and_then(|alg| {
                    let hashed = if alg.uses_shared_secret() {
                        // HS256 and kin are keyed with the client secret.
                        let key = CoreJsonWebKey::new_symmetric(
                            sso.config.client_secret.expose().as_bytes().to_vec(),
                        );
                        AccessTokenHash::from_token(token.access_token(), alg, &key)
                    } else {
                        let key = id_token.signing_key(&verifier)?;
                        AccessTokenHash::from_token(token.access_token(), alg, key)
                    };
                    hashed.map_err(|e| {
                        openidconnect::SignatureVerificationError::Other(e.to_string())
                    })
                })
                .map_err(|e| SsoError::failed(SsoFailure::Invalid, format!("at_hash: {e}")))?;
            if actual != *expected {
                return Err(SsoError::failed(
                    SsoFailure::Invalid,
                    "the ID token's at_hash does not match the access token",
                ));
            }
        }

        let subject = claims.subject().clone();
        let mut found = vec![serde_json::to_value(claims).unwrap_or_default()];
        let (name_claim, groups_claim) = (&sso.config.username_claim, &sso.config.groups_claim);
        let complete = |found: &[Value]| {
            SingleSignOn::claim(found, name_claim).is_some()
                && SingleSignOn::claim(found, groups_claim).is_some()
        };
        // Many providers put only the standard claims in the ID token and
        // the rest at the user-info endpoint.
        if !complete(&found)
            && let Ok(request) =
                client.user_info(token.access_token().clone(), Some(subject.clone()))
        {
            let info = request
                .request_async::<OtherClaims, _, CoreGenderClaim>(&sso.http)
                .await
                .map_err(|e| {
                    let failure = match &e {
                        openidconnect::UserInfoError::Request(_) => SsoFailure::Unreachable,
                        _ => SsoFailure::Invalid,
                    };
                    SsoError::failed(
                        failure,
                        format!("reading the user-info endpoint: {}", with_causes(&e)),
                    )
                })?;
            found.push(serde_json::to_value(info).unwrap_or_default());
        }
        let name = SingleSignOn::claim(&found, name_claim).and_then(Value::as_str);
        let groups = groups_of(SingleSignOn::claim(&found, groups_claim));
        let grants = sso.config.grants_for(&groups);
        // Only the groups that give roles go into the audit log (a person
        // may be in hundreds, some of them nobody's business).
        let mapped: Vec<&str> = sso
            .config
            .roles
            .iter()
            .map(|(g, _)| g.as_str())
            .filter(|g| groups.iter().any(|h| h == g))
            .collect();
        let identity = format!("{} {}", sso.config.issuer, subject.as_str());
        let reason = format!(
            "signed in with {}: groups {}",
            sso.config.name,
            if mapped.is_empty() {
                "giving no role".to_owned()
            } else {
                mapped.join(", ")
            }
        );
        let no_role = || {
            SsoError::failed(
                SsoFailure::NoRole,
                format!(
                    "subject {:?} ({}) is in the groups {groups:?} (claim `{groups_claim}`); [auth.oidc.roles] maps {:?}",
                    subject.as_str(),
                    name.unwrap_or("no name"),
                    sso.config
                        .roles
                        .iter()
                        .map(|(g, _)| g.as_str())
                        .collect::<Vec<_>>()
                ),
            )
        };
        let Some(user_id) = self
            .enroll(&identity, name, name_claim, &grants, &reason)
            .await?
        else {
            return Err(no_role());
        };
        let secret = auth::open_session(&self.pool, user_id, SESSION_HOURS).await?;
        let principal = auth::principal_for_session(&self.pool, &secret)
            .await?
            .ok_or_else(|| {
                SsoError::Engine(EngineError::Internal("the new session vanished".into()))
            })?;
        Ok(SsoSignedIn {
            signed_in: SignedIn { secret, principal },
            next: pending.next,
        })
    }

    /// Finds or creates the person a provider's subject names, and gives
    /// them exactly the roles their groups map to, auditing each change
    /// (I5) and withdrawing approvals the roles they lost no longer cover
    /// (I4). A known person whose groups now give no role loses every role
    /// and their sessions (`None`); somebody new with no role is not
    /// created. Returns the person's id.
    async fn enroll(
        &self,
        identity: &str,
        name: Option<&str>,
        name_claim: &str,
        grants: &[Grant],
        reason: &str,
    ) -> Result<Option<i64>, SsoError> {
        let mut tx = store::begin(&self.pool).await?;
        let mut events: Vec<AuditDraft> = Vec::new();
        let (user_id, name) = match people::user_of_subject(&mut tx, identity).await? {
            Some(found) => found,
            None if grants.is_empty() => return Ok(None),
            None => {
                let Some(name) = name else {
                    return Err(SsoError::failed(
                        SsoFailure::NoUserName,
                        format!("{identity:?} has no claim `{name_claim}`"),
                    ));
                };
                auth::validate_user_name(name).map_err(|e| {
                    SsoError::failed(SsoFailure::BadUserName, format!("{identity:?}: {e}"))
                })?;
                if !people::insert_sso_user(&mut tx, name, identity).await? {
                    let other = people::sso_subject_of(&mut tx, name).await?;
                    return Err(SsoError::failed(
                        SsoFailure::NameTaken,
                        match other {
                            Some(other) => format!(
                                "{identity:?} is called `{name}`, the name of {other:?}, who signed in with single sign-on before"
                            ),
                            None => format!(
                                "{identity:?} is called `{name}`, the name of a local account"
                            ),
                        },
                    ));
                }
                events.push(auth::admin_event(
                    "envline",
                    AuditAction::UserCreated,
                    format!("user `{name}` ({reason})"),
                    json!({ "user": name, "sso": identity }),
                ));
                let id = people::user_id(&mut tx, name).await?.ok_or_else(|| {
                    SsoError::Engine(EngineError::Internal("the new user vanished".into()))
                })?;
                (id, name.to_owned())
            }
        };
        let held = people::roles_named(&mut tx, &name).await?;
        let mut lost = false;
        for (role, scope) in &held {
            let kept = grants
                .iter()
                .any(|g| g.role.as_str() == role && &g.scope == scope);
            if !kept && people::remove_role(&mut tx, &name, role, scope).await? {
                lost = true;
                let grant = if scope == "*" {
                    role.clone()
                } else {
                    format!("{role}:{scope}")
                };
                events.push(auth::admin_event(
                    "envline",
                    AuditAction::RoleRemoved,
                    format!("`{name}` no longer acts as {grant} ({reason})"),
                    json!({ "user": name, "role": role, "scope": scope }),
                ));
            }
        }
        for grant in grants {
            if people::add_role(&mut tx, user_id, grant.role.as_str(), &grant.scope).await? {
                events.push(auth::admin_event(
                    "envline",
                    AuditAction::RoleGranted,
                    format!("`{name}` may act as {grant} ({reason})"),
                    json!({ "user": name, "role": grant.role.as_str(), "scope": grant.scope }),
                ));
            }
        }
        if lost {
            events.extend(auth::withdraw_lost_approvals(&mut tx, "envline", &name, reason).await?);
        }
        if grants.is_empty() {
            // Nothing left to act with: their other browsers stop too.
            store::sessions::end_sessions(&mut tx, user_id, None).await?;
        }
        let changed = !events.is_empty();
        audit::append(&mut tx, &events).await?;
        tx.commit().await?;
        if changed {
            self.forget_tokens();
        }
        Ok((!grants.is_empty()).then_some(user_id))
    }

    /// The `Set-Cookie` value that ties a single sign-on under way to this
    /// browser: sent back only to the callback, and only for as long as a
    /// sign-in may take (`Lax`, so the provider's redirect carries it).
    fn state_cookie(&self, state: &str, headers: &HeaderMap) -> String {
        let minutes = cookie::time::Duration::minutes(SIGN_IN_MINUTES);
        self.cookie(STATE_COOKIE, state, CALLBACK_PATH, minutes, headers)
    }

    /// The `Set-Cookie` value that drops the single sign-on's cookie.
    pub fn cleared_state_cookie(&self, headers: &HeaderMap) -> String {
        let now = cookie::time::Duration::ZERO;
        self.cookie(STATE_COOKIE, "", CALLBACK_PATH, now, headers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn people_of_single_sign_on_get_no_password_and_no_roles_by_hand() {
        let dir = tempfile::tempdir().unwrap();
        let pool = store::open(&store::Database::Sqlite(dir.path().join("envline.sqlite")))
            .await
            .unwrap();
        let mut tx = store::begin(&pool).await.unwrap();
        assert!(
            people::insert_sso_user(&mut tx, "sso-sam", "https://idp 42")
                .await
                .unwrap()
        );
        tx.commit().await.unwrap();

        let e = auth::set_password(&pool, "admin", "sso-sam", "long enough", None)
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("signs in with single sign-on"), "{e}");
        let e = auth::add_user(
            &pool,
            "admin",
            "sso-sam",
            &[Grant::parse("admin").unwrap()],
            None,
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(e.contains("[auth.oidc.roles]"), "{e}");
        assert!(
            !auth::check_password(&pool, "sso-sam", "anything")
                .await
                .unwrap()
        );
        assert!(
            auth::login(&pool, "sso-sam", "anything", 1)
                .await
                .unwrap()
                .is_none()
        );
        // Nothing was written by the refusals.
        let (granted,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM user_roles")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(granted, 0);
    }
}
