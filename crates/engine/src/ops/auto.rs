//! Auto-promotion (S1): an environment with `auto_promote` is promoted as
//! soon as a newer commit of its `from` passes its gates (a request is opened
//! instead where approvals are needed). A push that fails is retried with
//! back-off per (environment, candidate), never in a loop, and the last
//! failure is shown on the environment's card and in the API.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use envline_api::{AutoPromotionFailure, ErrorCode, PromoteInput};

use super::promote::promote_inner;
use super::tip_of_source;
use crate::auth::Principal;
use crate::{Engine, EngineError};

/// The first wait after a failure; it doubles with each failure after it.
const FIRST_BACKOFF: Duration = Duration::from_secs(30);
/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);

/// One environment's failing automatic promotion.
#[derive(Debug, Clone)]
struct Failing {
    candidate: String,
    failures: u32,
    retry_at: Instant,
    /// The lease was stale: fetch before trying again.
    fetch_first: bool,
    shown: AutoPromotionFailure,
}

/// Failed automatic promotions, per environment, for the candidate they tried.
#[derive(Debug, Default)]
pub struct AutoFailures {
    by_environment: Mutex<HashMap<String, Failing>>,
}

impl AutoFailures {
    /// What the environment's card and the API show, if its auto-promotion is failing.
    pub fn shown(&self, environment: &str) -> Option<AutoPromotionFailure> {
        self.by_environment
            .lock()
            .expect("lock")
            .get(environment)
            .map(|f| f.shown.clone())
    }

    fn get(&self, environment: &str) -> Option<Failing> {
        self.by_environment
            .lock()
            .expect("lock")
            .get(environment)
            .cloned()
    }

    fn clear(&self, environment: &str) -> bool {
        self.by_environment
            .lock()
            .expect("lock")
            .remove(environment)
            .is_some()
    }

    fn record(&self, environment: &str, candidate: &str, error: &EngineError) -> Failing {
        let mut map = self.by_environment.lock().expect("lock");
        let failures = match map.get(environment) {
            Some(f) if f.candidate == candidate => f.failures + 1,
            _ => 1,
        };
        let wait = FIRST_BACKOFF
            .saturating_mul(1 << (failures - 1).min(10))
            .min(MAX_BACKOFF);
        let now = chrono::Utc::now();
        let failing = Failing {
            candidate: candidate.to_owned(),
            failures,
            retry_at: Instant::now() + wait,
            fetch_first: matches!(
                error,
                EngineError::Conflict {
                    code: ErrorCode::RemoteMoved | ErrorCode::RefMoved,
                    ..
                }
            ),
            shown: AutoPromotionFailure {
                candidate: candidate.to_owned(),
                message: error.to_string(),
                failures,
                at: now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                retry_at: (now + chrono::Duration::from_std(wait).unwrap_or_default())
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            },
        };
        map.insert(environment.to_owned(), failing.clone());
        failing
    }

    /// The earliest time a failing auto-promotion is due again.
    fn next_retry(&self) -> Option<Instant> {
        self.by_environment
            .lock()
            .expect("lock")
            .values()
            .map(|f| f.retry_at)
            .min()
    }
}

/// Whether a refusal is the push failing (to be retried later), rather than
/// the promotion not being possible now (gates, nothing to promote).
fn is_push_failure(error: &EngineError) -> bool {
    error.is_fault()
        || matches!(
            error,
            EngineError::Remote { .. }
                | EngineError::Conflict {
                    code: ErrorCode::RemoteMoved | ErrorCode::RefMoved,
                    ..
                }
        )
}

/// Promotes every `auto_promote` environment whose `from` has an eligible
/// newer commit, skipping those backing off. Returns when it should run
/// again at the latest (the next retry due), if any is waiting.
pub async fn auto_promote(engine: &Engine) -> Result<Option<Instant>, EngineError> {
    // Hotfix mode pauses auto-promotion until the fix is merged back (S4).
    if engine.hotfix_mode().incident().is_some() {
        return Ok(None);
    }
    let system = Principal::system();
    for env in engine
        .config
        .pipeline
        .environments()
        .iter()
        .filter(|e| e.auto_promote)
    {
        let Ok(candidate) = tip_of_source(engine, &env.from).await else {
            // Nothing to promote from: nothing is failing either.
            engine.auto_failures.clear(&env.name);
            continue;
        };
        let candidate = candidate.to_string();
        if let Some(failing) = engine.auto_failures.get(&env.name)
            && failing.candidate == candidate
        {
            if Instant::now() < failing.retry_at {
                continue;
            }
            if failing.fetch_first
                && let Err(e) = engine.refresh().await
            {
                tracing::warn!(
                    "auto-promotion of {}: fetch before retrying failed: {e}",
                    env.name
                );
                let failing = engine.auto_failures.record(&env.name, &candidate, &e);
                tracing::warn!(
                    "auto-promotion of {} retries at {}",
                    env.name,
                    failing.shown.retry_at
                );
                engine.changes().touched();
                continue;
            }
        }
        let result = promote_inner(
            engine,
            &system,
            PromoteInput {
                environment: Some(env.name.clone()),
                reason: Some("auto-promotion".into()),
                ..Default::default()
            },
            true,
        )
        .await;
        match result {
            Ok(r) => {
                if engine.auto_failures.clear(&env.name) {
                    engine.changes().touched();
                }
                for r in r {
                    tracing::info!("auto-promotion of {}: {}", env.name, r.state)
                }
            }
            Err(e) if is_push_failure(&e) => {
                let failing = engine.auto_failures.record(&env.name, &candidate, &e);
                tracing::warn!(
                    "auto-promotion of {} to {} failed ({} time(s)): {e}; next try at {}",
                    env.name,
                    &candidate[..10],
                    failing.failures,
                    failing.shown.retry_at
                );
                engine.changes().touched();
            }
            // Gates not met, nothing to promote, already decided: nothing failed.
            Err(_) => {
                if engine.auto_failures.clear(&env.name) {
                    engine.changes().touched();
                }
            }
        }
    }
    Ok(engine.auto_failures.next_retry())
}
