//! People in a browser: signing in with a password (rate-limited per account
//! and per address), the session cookie, signing out, and the same-origin
//! check that keeps other sites from acting with someone's cookie.

use std::net::IpAddr;
use std::num::NonZeroU32;

use cookie::{Cookie, SameSite};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use http::HeaderMap;
use http::header::{HOST, ORIGIN};

use super::auth::{self, Principal};
use super::{Engine, EngineError};

/// The cookie that carries a browser's session.
pub const SESSION_COOKIE: &str = "envline_session";

/// How long a session lasts after signing in.
pub const SESSION_HOURS: i64 = 12;

/// Sign-in attempts allowed per account per minute.
const ATTEMPTS_PER_ACCOUNT: u32 = 5;
/// Sign-in attempts allowed per client address per minute.
const ATTEMPTS_PER_ADDRESS: u32 = 20;

/// Above this many keys, a limiter forgets the ones not seen lately.
const PRUNE_ABOVE: usize = 10_000;

/// Counts sign-in attempts so passwords cannot be guessed quickly.
pub struct LoginLimiter {
    by_account: DefaultKeyedRateLimiter<String>,
    by_address: DefaultKeyedRateLimiter<IpAddr>,
}

impl Default for LoginLimiter {
    fn default() -> Self {
        let per_minute = |n: u32| Quota::per_minute(NonZeroU32::new(n).expect("not zero"));
        LoginLimiter {
            by_account: RateLimiter::keyed(per_minute(ATTEMPTS_PER_ACCOUNT)),
            by_address: RateLimiter::keyed(per_minute(ATTEMPTS_PER_ADDRESS)),
        }
    }
}

impl LoginLimiter {
    fn check(&self, user: &str, address: Option<IpAddr>) -> Result<(), EngineError> {
        // Forget accounts and addresses not seen lately, so guessing random
        // names cannot make the limiter grow without end.
        if self.by_account.len() > PRUNE_ABOVE {
            self.by_account.retain_recent();
        }
        if self.by_address.len() > PRUNE_ABOVE {
            self.by_address.retain_recent();
        }
        let wait = |not_until: governor::NotUntil<_>| {
            not_until
                .wait_time_from(DefaultClock::default().now())
                .as_secs()
                + 1
        };
        if let Err(n) = self.by_account.check_key(&user.to_owned()) {
            return Err(EngineError::RateLimited(format!(
                "too many sign-in attempts for `{user}`; wait {} s and try again",
                wait(n)
            )));
        }
        if let Some(ip) = address
            && let Err(n) = self.by_address.check_key(&ip)
        {
            return Err(EngineError::RateLimited(format!(
                "too many sign-in attempts from {ip}; wait {} s and try again",
                wait(n)
            )));
        }
        Ok(())
    }
}

/// A signed-in session: the cookie value to set and who it belongs to.
pub struct SignedIn {
    pub secret: String,
    pub principal: Principal,
}

impl Engine {
    /// Checks a password and opens a session. A wrong password and an unknown
    /// user get the same answer, after the same work.
    pub async fn sign_in(
        &self,
        user: &str,
        password: &str,
        address: Option<IpAddr>,
    ) -> Result<SignedIn, EngineError> {
        let user = user.trim();
        if user.is_empty() || password.is_empty() {
            return Err(EngineError::BadInput(
                "give your user name and your password".into(),
            ));
        }
        self.login_limiter.check(user, address)?;
        let secret = auth::login(&self.pool, user, password, SESSION_HOURS)
            .await?
            .ok_or_else(|| {
                EngineError::Unauthenticated(
                    "wrong user name or password; an administrator can set a password with `envline user add NAME --role ROLE` and ENVLINE_PASSWORD".into(),
                )
            })?;
        let principal = auth::principal_for_session(&self.pool, &secret)
            .await?
            .ok_or_else(|| EngineError::Internal("the new session vanished".into()))?;
        Ok(SignedIn { secret, principal })
    }

    /// Ends the session a browser's cookie names, if any.
    pub async fn sign_out(&self, headers: &HeaderMap) -> Result<(), EngineError> {
        if let Some(secret) = session_secret(headers) {
            auth::logout(&self.pool, &secret).await?;
        }
        Ok(())
    }

    /// Whether the browser talks to us over https (then the cookie is `Secure`).
    pub fn is_https(&self, headers: &HeaderMap) -> bool {
        self.config
            .server
            .public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"))
            || headers
                .get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.eq_ignore_ascii_case("https"))
    }

    /// The `Set-Cookie` value that starts a session.
    pub fn session_cookie(&self, secret: &str, headers: &HeaderMap) -> String {
        Cookie::build((SESSION_COOKIE, secret.to_owned()))
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(self.is_https(headers))
            .path("/")
            .max_age(cookie::time::Duration::hours(SESSION_HOURS))
            .build()
            .to_string()
    }

    /// The `Set-Cookie` value that ends a session.
    pub fn cleared_session_cookie(&self, headers: &HeaderMap) -> String {
        Cookie::build((SESSION_COOKIE, ""))
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(self.is_https(headers))
            .path("/")
            .max_age(cookie::time::Duration::ZERO)
            .build()
            .to_string()
    }

    /// A state-changing request that a browser sent with a session cookie
    /// must come from Envline's own pages: its `Origin` (or, lacking one,
    /// `Sec-Fetch-Site`) must say so.
    pub fn require_same_origin(&self, headers: &HeaderMap) -> Result<(), EngineError> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        if let Some(origin) = header(ORIGIN.as_str()) {
            let ours = match &self.config.server.public_url {
                Some(url) => origin == url,
                None => header(HOST.as_str()).is_some_and(|host| {
                    origin
                        .split_once("://")
                        .is_some_and(|(_, authority)| authority == host)
                }),
            };
            if ours {
                return Ok(());
            }
            return Err(EngineError::CrossOrigin(format!(
                "this request comes from {origin}, not from Envline's own pages; changes need a page of this Envline (or a bearer token)"
            )));
        }
        match header("sec-fetch-site") {
            Some("same-origin") => Ok(()),
            Some(other) => Err(EngineError::CrossOrigin(format!(
                "this request comes from another site (Sec-Fetch-Site: {other}); changes need a page of this Envline (or a bearer token)"
            ))),
            None => Err(EngineError::CrossOrigin(
                "a change sent with a session cookie needs an Origin header saying it comes from Envline's own pages; scripts should use a bearer token".into(),
            )),
        }
    }
}

/// The session secret in a request's cookies, if any.
pub fn session_secret(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == SESSION_COOKIE && !c.value().is_empty())
        .map(|c| c.value().to_owned())
}
