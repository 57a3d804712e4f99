//! The people service: who may sign in and with what roles, their sessions
//! and tokens, and who is calling a request. Its methods live by concern in
//! [`crate::admin`] (people, roles and tokens from the pages and the API),
//! [`crate::session`] (signing in and out, cookies, the same-origin check),
//! [`crate::sso_sign_in`] (single sign-on with the organisation's provider)
//! and [`crate::caller`] (a request's caller); the storage is
//! [`crate::store::people`] and [`crate::store::sessions`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::store::Pool;

use crate::EngineError;
use crate::auth::{self, Principal};
use crate::changes::Changes;
use crate::config::Config;
use crate::login_limiter::LoginLimiter;
use crate::sso::SingleSignOn;

/// How long a token's user and roles are remembered before being read again.
const TOKEN_CACHE_TTL: Duration = Duration::from_secs(5);

/// People, their sessions and tokens (see the module).
pub struct People {
    pub(crate) config: Arc<Config>,
    pub(crate) pool: Pool,
    pub(crate) changes: Arc<Changes>,
    /// Tokens read lately, by digest, with when they were read.
    tokens: Mutex<HashMap<String, (Principal, Instant)>>,
    pub(crate) login_limiter: LoginLimiter,
    /// Single sign-on, when `[auth.oidc]` is configured.
    pub(crate) sso: Option<SingleSignOn>,
}

impl People {
    /// The people service of an engine's configuration and database.
    pub(crate) fn new(
        config: Arc<Config>,
        pool: Pool,
        changes: Arc<Changes>,
    ) -> Result<People, String> {
        let sso = match &config.auth.oidc {
            Some(oidc) => Some(SingleSignOn::new(
                oidc.clone(),
                &config.public_url(),
                Duration::from_secs(config.repository.network_timeout_seconds),
            )?),
            None => None,
        };
        let login_limiter = LoginLimiter::new(pool.clone());
        Ok(People {
            config,
            pool,
            changes,
            tokens: Mutex::new(HashMap::new()),
            login_limiter,
            sso,
        })
    }

    /// Drops every cached token after a change to people or tokens, and
    /// tells (other replicas drop theirs).
    pub(crate) fn forget_tokens(&self) {
        self.forget_cached_tokens();
        self.changes.changed();
    }

    /// Drops every cached token (another replica may have changed people).
    pub(crate) fn forget_cached_tokens(&self) {
        self.tokens.lock().expect("lock").clear();
    }

    /// The user a bearer token belongs to (cached for a few seconds).
    pub async fn principal_for_token(&self, token: &str) -> Result<Option<Principal>, EngineError> {
        let key = auth::digest(token);
        if let Some((p, at)) = self.tokens.lock().expect("lock").get(&key)
            && at.elapsed() < TOKEN_CACHE_TTL
        {
            return Ok(Some(p.clone()));
        }
        let found = auth::principal_for_token(&self.pool, token).await?;
        if let Some(p) = &found {
            self.tokens
                .lock()
                .expect("lock")
                .insert(key, (p.clone(), Instant::now()));
        }
        Ok(found)
    }
}
