//! People in a browser: signing in with a password (throttled per account
//! and address, and per address, never by locking the account), the session
//! cookie, signing out, and the same-origin check that keeps other sites
//! from acting with someone's cookie.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

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

/// Wrong passwords in a row, for one account from one address, before each
/// further attempt from there must wait.
const FREE_FAILURES: u32 = 5;
/// The longest wait a run of wrong passwords earns (it doubles up to this).
const LONGEST_WAIT: Duration = Duration::from_secs(15 * 60);
/// Sign-in attempts allowed per client address per minute, whatever the
/// accounts (someone trying one password on many accounts).
const ATTEMPTS_PER_ADDRESS: u32 = 20;

/// Above this many keys, the limiter forgets the ones not seen lately.
const PRUNE_ABOVE: usize = 10_000;

/// A run of wrong passwords for one account from one address.
struct Failures {
    count: u32,
    /// The next attempt from there is answered 429 before this.
    not_before: Instant,
    last: Instant,
}

/// Slows down password guessing without ever locking an account's owner
/// out: a run of wrong passwords makes the next attempt *for that account
/// from that address* wait, longer each time; an address that tries too
/// many sign-ins waits too. The owner, from their own address, is never
/// held up by someone guessing elsewhere.
pub struct LoginLimiter {
    by_pair: Mutex<HashMap<(String, IpAddr), Failures>>,
    by_address: DefaultKeyedRateLimiter<IpAddr>,
}

impl Default for LoginLimiter {
    fn default() -> Self {
        let per_minute = |n: u32| Quota::per_minute(NonZeroU32::new(n).expect("not zero"));
        LoginLimiter {
            by_pair: Mutex::new(HashMap::new()),
            by_address: RateLimiter::keyed(per_minute(ATTEMPTS_PER_ADDRESS)),
        }
    }
}

/// A refusal to try now, with how long to wait (answered as `Retry-After`).
fn wait_for(message: String, wait: Duration) -> EngineError {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    EngineError::RateLimited {
        message: format!("{message}; wait {seconds} s and try again"),
        retry_after: seconds.max(1),
    }
}

impl LoginLimiter {
    /// Whether `user` may try a password from `address` now.
    fn check(&self, user: &str, address: Option<IpAddr>) -> Result<(), EngineError> {
        let address = address.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        if self.by_address.len() > PRUNE_ABOVE {
            self.by_address.retain_recent();
        }
        if let Err(n) = self.by_address.check_key(&address) {
            return Err(wait_for(
                format!("too many sign-in attempts from {address}"),
                n.wait_time_from(DefaultClock::default().now()),
            ));
        }
        let pairs = self.by_pair.lock().expect("lock");
        if let Some(f) = pairs.get(&(user.to_owned(), address)) {
            let now = Instant::now();
            if now < f.not_before {
                return Err(wait_for(
                    format!(
                        "{} wrong passwords in a row for `{user}` from {address}",
                        f.count
                    ),
                    f.not_before - now,
                ));
            }
        }
        Ok(())
    }

    /// A wrong password: from the [`FREE_FAILURES`]th on, the next attempt
    /// waits 1 s, then 2 s, 4 s, … up to [`LONGEST_WAIT`].
    fn failed(&self, user: &str, address: Option<IpAddr>) {
        let address = address.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let now = Instant::now();
        let mut pairs = self.by_pair.lock().expect("lock");
        if pairs.len() > PRUNE_ABOVE {
            pairs.retain(|_, f| now.duration_since(f.last) < LONGEST_WAIT * 4);
        }
        let f = pairs.entry((user.to_owned(), address)).or_insert(Failures {
            count: 0,
            not_before: now,
            last: now,
        });
        // A run ends when nobody tried for a long while.
        if now.duration_since(f.last) > LONGEST_WAIT * 4 {
            f.count = 0;
        }
        f.count += 1;
        f.last = now;
        if f.count >= FREE_FAILURES {
            let doublings = (f.count - FREE_FAILURES).min(20);
            f.not_before = now + Duration::from_secs(1u64 << doublings).min(LONGEST_WAIT);
        }
    }

    /// The right password: the run of failures from there is over.
    fn succeeded(&self, user: &str, address: Option<IpAddr>) {
        let address = address.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        self.by_pair
            .lock()
            .expect("lock")
            .remove(&(user.to_owned(), address));
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
        let Some(secret) = auth::login(&self.pool, user, password, SESSION_HOURS).await? else {
            self.login_limiter.failed(user, address);
            return Err(EngineError::Unauthenticated(
                "wrong user name or password; an administrator can set a password with `envline user password NAME`".into(),
            ));
        };
        self.login_limiter.succeeded(user, address);
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

    /// The client's address for throttling: the connection's peer, unless
    /// the peer is one of `server.trusted_proxies`; then the nearest address
    /// in `X-Forwarded-For` that is not a trusted proxy (what the client
    /// itself wrote further left cannot be trusted).
    pub fn client_address(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        let proxies = &self.config.server.trusted_proxies;
        let peer = peer?;
        if !proxies.contains(&peer) {
            return Some(peer);
        }
        let forwarded: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|a| a.trim().parse().ok())
            .collect();
        Some(
            forwarded
                .into_iter()
                .rev()
                .find(|a| !proxies.contains(a))
                .unwrap_or(peer),
        )
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
