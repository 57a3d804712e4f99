//! People in a browser: signing in with a password (throttled per account
//! and address, and per address, never by locking the account), the session
//! cookie, signing out, and the same-origin check that keeps other sites
//! from acting with someone's cookie.

use std::net::IpAddr;

use cookie::{Cookie, SameSite};
use http::HeaderMap;
use http::header::{HOST, ORIGIN};

use super::EngineError;
use super::auth::{self, Principal};
use super::people::People;

/// The cookie that carries a browser's session.
pub const SESSION_COOKIE: &str = "envline_session";

/// How long a session lasts after signing in.
pub const SESSION_HOURS: i64 = 12;

/// A signed-in session: the cookie value to set and who it belongs to.
pub struct SignedIn {
    pub secret: String,
    pub principal: Principal,
}

impl People {
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
        if !self.config.auth.passwords {
            return Err(EngineError::BadInput(format!(
                "signing in with a password is turned off here (auth.passwords = false): use \"Sign in with {}\"",
                self.sso_name().unwrap_or("single sign-on")
            )));
        }
        self.login_limiter.check(user, address).await?;
        let Some(secret) = auth::login(&self.pool, user, password, SESSION_HOURS).await? else {
            self.login_limiter.failed(user, address).await?;
            return Err(EngineError::Unauthenticated(
                "wrong user name or password; an administrator can set a password with `envline user password NAME`".into(),
            ));
        };
        self.login_limiter.succeeded(user, address).await?;
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
        self.cookie(
            SESSION_COOKIE,
            secret,
            "/",
            cookie::time::Duration::hours(SESSION_HOURS),
            headers,
        )
    }

    /// The `Set-Cookie` value that ends a session.
    pub fn cleared_session_cookie(&self, headers: &HeaderMap) -> String {
        self.cookie(
            SESSION_COOKIE,
            "",
            "/",
            cookie::time::Duration::ZERO,
            headers,
        )
    }

    /// A `Set-Cookie` value for Envline's own cookies: HttpOnly, `Lax` (a
    /// link or an identity provider's redirect from elsewhere carries it; a
    /// form posted from elsewhere does not), `Secure` behind https, under
    /// `path`, for `max_age` (zero drops it).
    pub(crate) fn cookie(
        &self,
        name: &'static str,
        value: &str,
        path: &'static str,
        max_age: cookie::time::Duration,
        headers: &HeaderMap,
    ) -> String {
        Cookie::build((name, value.to_owned()))
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(self.is_https(headers))
            .path(path)
            .max_age(max_age)
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
    cookie(headers, SESSION_COOKIE)
}

/// A cookie's value, when the request carries it and it is not empty.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name && !c.value().is_empty())
        .map(|c| c.value().to_owned())
}

/// Where to go after signing in: a path on this site, never another site
/// (`//evil.example`, `/\\evil`, `https://…`, or anything with control
/// characters, which browsers strip, go to the pipeline instead).
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.chars().any(|c| c == '\\' || c.is_control()) =>
        {
            n.to_owned()
        }
        _ => "/".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn sign_in_only_returns_to_pages_of_this_site() {
        assert_eq!(safe_next(Some("/approvals?x=1")), "/approvals?x=1");
        assert_eq!(safe_next(Some("//evil.example/")), "/");
        assert_eq!(safe_next(Some("https://evil.example/")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(Some("/\t/evil.example")), "/");
        assert_eq!(safe_next(Some("/x\n")), "/");
        assert_eq!(safe_next(None), "/");
    }
}
