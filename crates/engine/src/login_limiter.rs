//! Throttled sign-ins: a run of wrong passwords slows the next attempt for
//! that account from that address, and an address that tries too many
//! sign-ins waits too; an account is never locked. The counts live in the
//! database ([`crate::store::sign_ins`]), so every replica behind a load
//! balancer sees the same ones.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use chrono::{DateTime, DurationRound, SecondsFormat, Utc};

use crate::EngineError;
use crate::store::{Pool, sign_ins};

/// Wrong passwords in a row, for one account from one address, before each
/// further attempt from there must wait.
const FREE_FAILURES: i64 = 5;
/// The longest wait a run of wrong passwords earns (it doubles up to this).
const LONGEST_WAIT: Duration = Duration::from_secs(15 * 60);
/// Sign-in attempts allowed per client address per minute, whatever the
/// accounts (someone trying one password on many accounts).
const ATTEMPTS_PER_ADDRESS: i64 = 20;
/// Single sign-ons started per client address per minute (the provider
/// checks the person; this only keeps unfinished ones from piling up).
const SSO_STARTS_PER_ADDRESS: i64 = 60;

/// Slows down password guessing without ever locking an account's owner
/// out: a run of wrong passwords makes the next attempt *for that account
/// from that address* wait, longer each time; an address that tries too
/// many sign-ins waits too. The owner, from their own address, is never
/// held up by someone guessing elsewhere.
pub struct LoginLimiter {
    pool: Pool,
}

fn stamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A refusal to try now, with how long to wait (answered as `Retry-After`).
fn wait_for(message: String, wait: chrono::TimeDelta) -> EngineError {
    let millis = wait.num_milliseconds().max(1) as u64;
    let seconds = millis.div_ceil(1000);
    EngineError::RateLimited {
        message: format!("{message}; wait {seconds} s and try again"),
        retry_after: seconds.max(1),
    }
}

/// The address counted: the client's, or "unknown" as one address.
fn address_of(address: Option<IpAddr>) -> String {
    address
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
        .to_string()
}

impl LoginLimiter {
    /// The limiter of a database.
    pub(crate) fn new(pool: Pool) -> LoginLimiter {
        LoginLimiter { pool }
    }

    /// Whether `user` may try a password from `address` now (and counts the
    /// attempt against the address).
    pub(crate) async fn check(
        &self,
        user: &str,
        address: Option<IpAddr>,
    ) -> Result<(), EngineError> {
        self.check_address(address).await?;
        let address = address_of(address);
        let now = Utc::now();
        if let Some((count, not_before)) = sign_ins::failures(&self.pool, user, &address).await?
            && let Ok(not_before) = DateTime::parse_from_rfc3339(&not_before)
            && now < not_before
        {
            return Err(wait_for(
                format!("{count} wrong passwords in a row for `{user}` from {address}"),
                not_before.with_timezone(&Utc) - now,
            ));
        }
        Ok(())
    }

    /// Whether `address` may try a password now, counting this attempt.
    async fn check_address(&self, address: Option<IpAddr>) -> Result<(), EngineError> {
        let address = address_of(address);
        self.count(&address, ATTEMPTS_PER_ADDRESS, || {
            format!("too many sign-in attempts from {address}")
        })
        .await
    }

    /// Whether `address` may start a single sign-on now, counting this one
    /// (each start is a row in the database until it expires).
    pub(crate) async fn check_sso_start(&self, address: Option<IpAddr>) -> Result<(), EngineError> {
        let address = address_of(address);
        self.count(&format!("sso {address}"), SSO_STARTS_PER_ADDRESS, || {
            format!("too many single sign-ons started from {address}")
        })
        .await
    }

    /// Counts one more under `key` this minute; refuses above `limit`.
    async fn count(
        &self,
        key: &str,
        limit: i64,
        refusal: impl FnOnce() -> String,
    ) -> Result<(), EngineError> {
        let now = Utc::now();
        let minute = now
            .duration_trunc(chrono::TimeDelta::minutes(1))
            .expect("a minute divides time");
        let attempts = sign_ins::count_attempt(
            &self.pool,
            key,
            &stamp(minute),
            &stamp(minute - chrono::TimeDelta::minutes(1)),
        )
        .await?;
        if attempts > limit {
            return Err(wait_for(
                refusal(),
                minute + chrono::TimeDelta::minutes(1) - now,
            ));
        }
        Ok(())
    }

    /// A wrong password: from the [`FREE_FAILURES`]th on, the next attempt
    /// waits 1 s, then 2 s, 4 s, … up to [`LONGEST_WAIT`]. A run ends when
    /// nobody continued it for four times that.
    pub(crate) async fn failed(
        &self,
        user: &str,
        address: Option<IpAddr>,
    ) -> Result<(), EngineError> {
        let address = address_of(address);
        let now = Utc::now();
        let run_ends = now - LONGEST_WAIT * 4;
        let count =
            sign_ins::count_failure(&self.pool, user, &address, &stamp(now), &stamp(run_ends))
                .await?;
        if count >= FREE_FAILURES {
            let doublings = (count - FREE_FAILURES).min(20) as u32;
            let wait = Duration::from_secs(1u64 << doublings).min(LONGEST_WAIT);
            sign_ins::hold_off(&self.pool, user, &address, &stamp(now + wait)).await?;
        }
        Ok(())
    }

    /// The right password: the run of failures from there is over.
    pub(crate) async fn succeeded(
        &self,
        user: &str,
        address: Option<IpAddr>,
    ) -> Result<(), EngineError> {
        sign_ins::clear_failures(&self.pool, user, &address_of(address)).await?;
        Ok(())
    }
}
