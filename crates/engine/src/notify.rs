//! Notifications out, never lost: the `[[notify]]` targets of the
//! configuration, the outbox row queued in the audit event's own transaction
//! (no event without its notification, no notification without its event),
//! and one delivery task per target that retries with back-off until its
//! receiver takes it: at least once, with the same `id` on every attempt,
//! across restarts. One dead receiver never delays another; a delivery that
//! has failed for `give_up_after` (24 h) is given up, audited and counted as
//! dropped, so the outbox never grows without bound.

use std::sync::Arc;
use std::time::Duration;

use crate::store::Pool;
use envline_api::{AuditAction, AuditEventView, NotificationState, NotificationView};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::EngineError;
use crate::changes::Changes;
use crate::config::Config;
pub use crate::config::{GIVE_UP_AFTER, NotifyTarget};
pub use crate::redact::hook_url as redact;
use crate::store::outbox;

/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// How long one attempt may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// How many deliveries to one receiver are on the way at once.
const PER_TARGET_CONCURRENCY: usize = 4;

/// Makes the database's targets those of the configuration; what was still
/// owed to a target that left it is marked dropped (and says why).
pub async fn sync_targets(pool: &Pool, targets: &[NotifyTarget]) -> Result<(), sqlx::Error> {
    let wanted: Vec<(String, Vec<String>)> = targets
        .iter()
        .map(|t| (t.url.clone(), t.events.clone()))
        .collect();
    let dropped = outbox::set_targets(pool, &wanted).await?;
    if dropped > 0 {
        tracing::warn!(
            "{dropped} undelivered notifications are dropped: their [[notify]] url is no longer in the configuration \
             (GET /api/v1/notifications?state=dropped lists them)"
        );
    }
    Ok(())
}

/// The id receivers de-duplicate on: the same for every attempt.
fn delivery_id(audit_id: i64, event: &str) -> String {
    format!("envline-{audit_id}-{event}")
}

/// What the receiver gets: the fields the issue names, plus when and a
/// sentence chat tools show as is.
pub fn payload(event: &str, e: &AuditEventView, base_url: &str) -> Value {
    let details = e.details.value();
    let (from, to) = if event == "approval_needed" {
        (
            details["from"].as_str().map(str::to_owned),
            details["to"].as_str().map(str::to_owned),
        )
    } else {
        (e.old.clone(), e.new.clone())
    };
    let env = e.environment.clone().unwrap_or_default();
    let url = match event {
        "approval_needed" => format!("{base_url}/approvals"),
        "hotfix_started" | "hotfix_resolved" | "hotfix_merged" => format!("{base_url}/incident"),
        _ if !env.is_empty() => format!("{base_url}/env/{env}"),
        _ => format!("{base_url}/"),
    };
    let short = |c: &Option<String>| {
        c.as_deref()
            .map(|c| c.get(..10).unwrap_or(c).to_owned())
            .unwrap_or_else(|| "(none)".into())
    };
    let why = if e.reason.is_empty() {
        String::new()
    } else {
        format!(" ({})", e.reason)
    };
    let actor = &e.actor;
    let (a, b) = (short(&from), short(&to));
    let text = match event {
        "approval_needed" => format!(
            "{env} needs {} approvals: {actor} asks to promote {a} → {b}{why}. Review: {url}",
            details["required_approvals"].as_u64().unwrap_or(1)
        ),
        "promoted" => format!("{actor} promoted {env}: {a} → {b}{why} {url}"),
        "rejected" => format!("{actor} rejected the promotion of {env}{why} {url}"),
        "rolled_back" => format!("{actor} rolled back {env}: {a} → {b}{why} {url}"),
        "out_of_band" => format!("{env} moved outside Envline: {a} → {b}{why} {url}"),
        "held" => format!("{actor} held {env}{why} {url}"),
        "released" => format!("{actor} released the hold on {env}{why} {url}"),
        "hotfix_started" => format!("{actor} started hotfix mode from {env}{why} {url}"),
        "hotfix_resolved" => {
            format!("{actor} resolved the incident: the fix is in {env}{why} {url}")
        }
        "hotfix_merged" => {
            format!("{actor} merged the hotfix back into {env}: hotfix mode is over {url}")
        }
        _ => format!("{actor}: {event} {env}{why} {url}"),
    };
    json!({
        "id": delivery_id(e.id, event),
        "event": event,
        "environment": e.environment,
        "from": from,
        "to": to,
        "actor": e.actor,
        "reason": e.reason,
        "url": url,
        "text": text,
        "at": e.at,
        "audit_id": e.id,
    })
}

/// The wait before attempt `attempts + 1`: 1 s, 2 s, 4 s, … up to 5 minutes.
pub fn backoff(attempts: i64) -> Duration {
    let exp = attempts.clamp(1, 20) as u32 - 1;
    Duration::from_secs(1u64 << exp).min(MAX_BACKOFF)
}

/// The notification service: what is queued for the `[[notify]]` targets,
/// and its delivery (see the module).
pub struct Notifications {
    config: Arc<Config>,
    pool: Pool,
    changes: Arc<Changes>,
}

impl Notifications {
    /// The notifications of an engine's configuration and database.
    pub(crate) fn new(config: Arc<Config>, pool: Pool, changes: Arc<Changes>) -> Notifications {
        Notifications {
            config,
            pool,
            changes,
        }
    }

    /// Notifications as the API lists them, newest first.
    pub async fn list(
        &self,
        state: Option<NotificationState>,
        limit: i64,
    ) -> Result<Vec<NotificationView>, EngineError> {
        let rows = outbox::notifications(&self.pool, state, limit).await?;
        Ok(rows
            .into_iter()
            .map(|n| {
                let (id, target) = (delivery_id(n.audit_id, &n.event), redact(&n.target));
                n.into_view(id, target)
            })
            .collect())
    }

    /// Notifications being retried, newest first: what the Admin page warns of.
    pub async fn failing(&self, limit: i64) -> Result<Vec<NotificationView>, EngineError> {
        self.list(Some(NotificationState::Failing), limit).await
    }

    /// How many notifications are in each state, for `/metrics`.
    pub async fn counts(&self) -> Result<Vec<(String, i64)>, EngineError> {
        Ok(outbox::counts(&self.pool).await?)
    }
}

/// A notification due for delivery, with the audit event it tells of.
struct Due {
    nid: i64,
    event: String,
    attempts: i64,
    /// When the notification was queued: the give-up clock starts there.
    queued_at: String,
    audit: AuditEventView,
}

impl From<outbox::DueRow> for Due {
    fn from(d: outbox::DueRow) -> Self {
        Due {
            nid: d.nid,
            event: d.event,
            attempts: d.attempts,
            queued_at: d.queued_at,
            audit: d.audit.into(),
        }
    }
}

/// Delivers what is due, forever: one task per target (so a receiver that
/// hangs or refuses holds up only its own notifications), plus the pruning
/// of delivered ones.
pub async fn deliver_forever(engine: Arc<Notifications>) {
    let http = match reqwest::Client::builder()
        .timeout(ATTEMPT_TIMEOUT)
        // A followed redirect would turn the POST into a GET that "succeeds".
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("envline/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(h) => h,
        Err(e) => {
            tracing::error!("notifications are off: cannot set up HTTP: {e}");
            return;
        }
    };
    let mut workers = tokio::task::JoinSet::new();
    let mut seen = std::collections::HashSet::new();
    for target in engine.config.notify.clone() {
        // The same url twice is one receiver (its events were merged).
        if seen.insert(target.url.clone()) {
            workers.spawn(deliver_to(engine.clone(), http.clone(), target));
        }
    }
    let mut changes = engine.changes.subscribe();
    loop {
        match prune(&engine.pool).await {
            Ok(0) => {}
            Ok(n) => tracing::info!("notifications: removed {n} delivered more than 30 days ago"),
            Err(e) => tracing::warn!("notifications: cannot prune: {e}"),
        }
        let stop = tokio::select! {
            r = changes.recv() => matches!(r, Err(tokio::sync::broadcast::error::RecvError::Closed)),
            _ = tokio::time::sleep(PRUNE_EVERY) => false,
        };
        if stop {
            break;
        }
    }
    workers.abort_all();
}

/// One target's deliveries, forever: woken by every change (a new event is
/// sent at once) and when its next retry is due.
async fn deliver_to(engine: Arc<Notifications>, http: reqwest::Client, target: NotifyTarget) {
    let mut changes = engine.changes.subscribe();
    let give_up = target.give_up_after().unwrap_or(GIVE_UP_AFTER);
    loop {
        let wait = match deliver_due(&engine, &http, &target, give_up).await {
            Ok(next) => next,
            Err(e) => {
                tracing::warn!("notifications to {}: {e}", redact(&target.url));
                Duration::from_secs(5)
            }
        };
        tokio::select! {
            r = changes.recv() => {
                if matches!(r, Err(tokio::sync::broadcast::error::RecvError::Closed)) {
                    return;
                }
            }
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// How often delivered notifications are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Removes notifications delivered (or dropped) more than 30 days ago: the
/// audit log keeps the events themselves.
async fn prune(pool: &Pool) -> Result<u64, sqlx::Error> {
    let before = (chrono::Utc::now() - chrono::Duration::days(30))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    outbox::prune(pool, &before).await
}

/// One pass for one target: sends its due notifications (at most
/// [`PER_TARGET_CONCURRENCY`] at once), records each outcome as it comes,
/// gives up on those that failed for `give_up` since they were queued, and
/// says how long until its next one is due.
async fn deliver_due(
    engine: &Notifications,
    http: &reqwest::Client,
    target: &NotifyTarget,
    give_up: Duration,
) -> Result<Duration, sqlx::Error> {
    let pool = &engine.pool;
    let due: Vec<Due> = outbox::due(pool, &target.url)
        .await?
        .into_iter()
        .map(Due::from)
        .collect();
    let base = engine.config.public_url();
    let slots = Arc::new(tokio::sync::Semaphore::new(PER_TARGET_CONCURRENCY));
    let mut sending = tokio::task::JoinSet::new();
    for d in due {
        let body = payload(&d.event, &d.audit, &base).to_string();
        let (http, url, secret, slots) = (
            http.clone(),
            target.url.clone(),
            target.secret.clone(),
            slots.clone(),
        );
        sending.spawn(async move {
            let _slot = slots.acquire_owned().await;
            let outcome = attempt(&http, &url, &d.event, &d.audit, body, secret).await;
            (d, outcome)
        });
    }
    while let Some(done) = sending.join_next().await {
        let Ok((d, outcome)) = done else {
            continue;
        };
        match outcome {
            Ok(()) => {
                outbox::mark_delivered(pool, d.nid).await?;
            }
            Err(why) if failed_for(&d.queued_at) >= give_up => {
                give_up_on(engine, &d, target, &why, give_up).await?;
            }
            Err(why) => {
                let next = chrono::Utc::now()
                    + chrono::Duration::from_std(backoff(d.attempts + 1)).unwrap_or_default();
                tracing::debug!("notification {} failed: {why}", d.nid);
                let next = next.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
                outbox::mark_failing(pool, d.nid, &why, &next).await?;
            }
        }
    }
    let next = outbox::next_due(pool, &target.url).await?;
    let wait = next
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
        .map(|t| {
            (t.to_utc() - chrono::Utc::now())
                .to_std()
                .unwrap_or_default()
        })
        .unwrap_or(Duration::from_secs(60));
    Ok(wait.min(Duration::from_secs(60)))
}

/// How long since a notification was queued.
fn failed_for(queued_at: &str) -> Duration {
    chrono::DateTime::parse_from_rfc3339(queued_at)
        .ok()
        .and_then(|t| (chrono::Utc::now() - t.to_utc()).to_std().ok())
        .unwrap_or_default()
}

/// Gives a notification up: dropped, with why, and audited (I5: the log
/// says that a receiver never heard of an event).
async fn give_up_on(
    engine: &Notifications,
    d: &Due,
    target: &NotifyTarget,
    why: &str,
    give_up: Duration,
) -> Result<(), sqlx::Error> {
    let reason = format!(
        "given up after {} failing: {why}",
        humantime::format_duration(give_up)
    );
    let mut tx = super::store::begin(&engine.pool).await?;
    if outbox::mark_dropped(&mut tx, d.nid, &reason).await? {
        super::audit::append(
            &mut tx,
            &[super::audit::AuditDraft {
                actor: "envline".into(),
                action: AuditAction::NotificationDropped,
                environment: d.audit.environment.clone(),
                old: None,
                new: None,
                reason: reason.clone(),
                details: json!({
                    "id": delivery_id(d.audit.id, &d.event),
                    "event": d.event,
                    "target": redact(&target.url),
                    "audit_id": d.audit.id,
                    "attempts": d.attempts + 1,
                }),
            }],
        )
        .await?;
    }
    tx.commit().await?;
    tracing::warn!(
        "notification {} to {} is given up: {reason}",
        delivery_id(d.audit.id, &d.event),
        redact(&target.url)
    );
    Ok(())
}

/// One POST; `Err` says why it did not count as delivered.
async fn attempt(
    http: &reqwest::Client,
    url: &str,
    event: &str,
    audit: &AuditEventView,
    body: String,
    secret: Option<String>,
) -> Result<(), String> {
    let id = delivery_id(audit.id, event);
    let mut req = http
        .post(url)
        .header("content-type", "application/json")
        .header("x-envline-event", event)
        .header("x-envline-delivery", &id)
        .header("idempotency-key", &id);
    if let Some(secret) = secret {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(secret.as_bytes()).map_err(|e| e.to_string())?;
        mac.update(body.as_bytes());
        let signature = hex::encode(mac.finalize().into_bytes());
        req = req.header("x-envline-signature-256", format!("sha256={signature}"));
    }
    match req.body(body).send().await {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) if r.status().is_redirection() => Err(format!(
            "the receiver answered {} (a redirect): put the address it redirects to in the [[notify]] url",
            r.status()
        )),
        Ok(r) => Err(format!("the receiver answered {}", r.status())),
        Err(e) if e.is_timeout() => Err(format!(
            "the receiver did not answer in {} s",
            ATTEMPT_TIMEOUT.as_secs()
        )),
        Err(e) if e.is_connect() => Err("cannot connect to the receiver".into()),
        // Without the URL: a chat hook's path is its secret.
        Err(e) => Err(format!("cannot send: {}", e.without_url())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use envline_api::JsonText;

    #[test]
    fn back_off_doubles_up_to_five_minutes() {
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(2), Duration::from_secs(2));
        assert_eq!(backoff(4), Duration::from_secs(8));
        assert_eq!(backoff(30), MAX_BACKOFF);
    }

    #[test]
    fn hook_paths_are_not_shown() {
        assert_eq!(
            redact("https://chat.example.com/hooks/abc"),
            "https://chat.example.com/…"
        );
        assert_eq!(redact("http://127.0.0.1:9"), "http://127.0.0.1:9");
        assert_eq!(
            redact("https://bot:pw@hooks.example.com:8443/T0/B0/XXXX?x=1"),
            "https://hooks.example.com:8443/…"
        );
    }

    #[test]
    fn an_approval_request_says_who_asks_and_links_the_approvals_page() {
        let e = AuditEventView {
            id: 7,
            at: "2026-11-26T06:00:00.000Z".into(),
            actor: "pat".into(),
            action: AuditAction::Request,
            environment: Some("prod-eu".into()),
            old: None,
            new: None,
            reason: "release 1.6".into(),
            details: JsonText(
                r#"{"from":"1111111111aa","to":"2222222222bb","required_approvals":2}"#.into(),
            ),
            prev_hash: String::new(),
            hash: String::new(),
        };
        let p = payload("approval_needed", &e, "https://envline.example.com");
        assert_eq!(p["id"], "envline-7-approval_needed");
        assert_eq!(p["from"], "1111111111aa");
        assert_eq!(p["url"], "https://envline.example.com/approvals");
        assert_eq!(
            p["text"],
            "prod-eu needs 2 approvals: pat asks to promote 1111111111 → 2222222222 (release 1.6). Review: https://envline.example.com/approvals"
        );
    }

    #[test]
    fn targets_are_checked() {
        let t = NotifyTarget {
            url: "https://x/h".into(),
            events: vec!["promoted".into(), "deployed".into()],
            secret: None,
            give_up_after: None,
        };
        assert!(
            t.check()
                .unwrap_err()
                .contains("`deployed` is not an event")
        );
    }
}
