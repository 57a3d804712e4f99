//! Throttled sign-ins: a run of wrong passwords slows the next attempt for
//! that account from that address, and an address that tries too many
//! sign-ins waits too; an account is never locked.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::EngineError;

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
    pub(crate) fn check(&self, user: &str, address: Option<IpAddr>) -> Result<(), EngineError> {
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
    pub(crate) fn failed(&self, user: &str, address: Option<IpAddr>) {
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
    pub(crate) fn succeeded(&self, user: &str, address: Option<IpAddr>) {
        let address = address.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        self.by_pair
            .lock()
            .expect("lock")
            .remove(&(user.to_owned(), address));
    }
}
