//! The `notifications` and `notify_targets` tables: the outbox of
//! notifications, queued in the audit event's own transaction and delivered
//! with retries by `crate::notify`.

use crate::store::Pool;
use envline_api::{NotificationState, NotificationView, NotifyEvent};
use sqlx::FromRow;

use super::audit::AuditEventRow;
use super::{Tx, now};

/// Queues `event` (raised by audit event `audit_id`) for every target that
/// wants it.
pub async fn enqueue(
    tx: &mut Tx<'_>,
    audit_id: i64,
    event: NotifyEvent,
    at: &str,
) -> Result<(), sqlx::Error> {
    let event = event.as_str();
    sqlx::query(
        "INSERT INTO notifications (audit_id, event, target, state, attempts, next_attempt_at, created_at)
         SELECT $1, $2, url, 'pending', 0, $3, $4 FROM notify_targets WHERE replace(events, $5, '') <> events",
    )
    .bind(audit_id)
    .bind(event)
    .bind(at)
    .bind(at)
    .bind(format!(",{event},"))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Makes the stored targets these `(url, events)`; what was still owed to a
/// target that left is marked dropped. Returns how many were dropped.
pub async fn set_targets(
    pool: &Pool,
    targets: &[(String, Vec<String>)],
) -> Result<u64, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("DELETE FROM notify_targets")
        .execute(&mut *tx)
        .await?;
    for (url, events) in targets {
        sqlx::query(
            "INSERT INTO notify_targets (url, events) VALUES ($1, $2)
             ON CONFLICT(url) DO UPDATE SET events = notify_targets.events || excluded.events",
        )
        .bind(url)
        .bind(format!(",{},", events.join(",")))
        .execute(&mut *tx)
        .await?;
    }
    let dropped = sqlx::query(
        "UPDATE notifications SET state = 'dropped',
             last_error = 'its target is no longer in the configuration'
         WHERE state IN ('pending', 'failing') AND target NOT IN (SELECT url FROM notify_targets)",
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(dropped)
}

/// A row of `notifications` as the API lists it (its delivery id and the
/// target's redaction are the caller's).
#[derive(FromRow)]
pub struct NotificationRow {
    pub audit_id: i64,
    pub event: String,
    pub target: String,
    #[sqlx(try_from = "String")]
    pub state: NotificationState,
    pub attempts: i64,
    pub next_attempt_at: String,
    pub last_error: Option<String>,
    pub created_at: String,
    pub delivered_at: Option<String>,
}

impl NotificationRow {
    /// The view of this row, with its delivery `id` and the `target` as shown.
    pub fn into_view(self, id: String, target: String) -> NotificationView {
        NotificationView {
            id,
            audit_id: self.audit_id,
            event: self.event,
            target,
            state: self.state,
            attempts: self.attempts,
            next_attempt_at: self.next_attempt_at,
            last_error: self.last_error,
            created_at: self.created_at,
            delivered_at: self.delivered_at,
        }
    }
}

/// Notifications, newest first, in `state` when given.
pub async fn notifications(
    pool: &Pool,
    state: Option<NotificationState>,
    limit: i64,
) -> Result<Vec<NotificationRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT audit_id, event, target, state, attempts,
                next_attempt_at, last_error, created_at, delivered_at
         FROM notifications WHERE ($1 IS NULL OR state = $1) ORDER BY id DESC LIMIT $2",
    )
    .bind(state.map(|s| s.as_str()))
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// How many notifications are in each state.
pub async fn counts(pool: &Pool) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT state, COUNT(*) FROM notifications GROUP BY state")
        .fetch_all(pool)
        .await
}

/// A notification due for delivery, with the audit event it tells of.
#[derive(FromRow)]
pub struct DueRow {
    pub nid: i64,
    pub event: String,
    pub attempts: i64,
    /// When the notification was queued: the give-up clock starts there.
    pub queued_at: String,
    #[sqlx(flatten)]
    pub audit: AuditEventRow,
}

/// Up to 64 of a target's notifications that are due now, oldest first.
pub async fn due(pool: &Pool, target: &str) -> Result<Vec<DueRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT n.id AS nid, n.event, n.attempts, n.created_at AS queued_at, e.*
         FROM notifications n JOIN audit_events e ON e.id = n.audit_id
         WHERE n.target = $1 AND n.state IN ('pending', 'failing') AND n.next_attempt_at <= $2
         ORDER BY n.id LIMIT 64",
    )
    .bind(target)
    .bind(now())
    .fetch_all(pool)
    .await
}

/// Notes that the receiver took notification `id`.
pub async fn mark_delivered(pool: &Pool, id: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE notifications SET state = 'delivered', attempts = attempts + 1,
             delivered_at = $1, last_error = NULL WHERE id = $2",
    )
    .bind(now())
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

/// Notes a failed attempt at notification `id`, and when to try again.
pub async fn mark_failing(
    pool: &Pool,
    id: i64,
    why: &str,
    next_attempt_at: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE notifications SET state = 'failing', attempts = attempts + 1,
             last_error = $1, next_attempt_at = $2 WHERE id = $3",
    )
    .bind(why)
    .bind(next_attempt_at)
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

/// Gives notification `id` up (dropped, with why); false when it was no
/// longer pending or failing.
pub async fn mark_dropped(tx: &mut Tx<'_>, id: i64, why: &str) -> Result<bool, sqlx::Error> {
    let dropped = sqlx::query(
        "UPDATE notifications SET state = 'dropped', attempts = attempts + 1, last_error = $1
         WHERE id = $2 AND state IN ('pending', 'failing')",
    )
    .bind(why)
    .bind(id)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(dropped == 1)
}

/// When a target's next notification is due, if any is owed.
pub async fn next_due(pool: &Pool, target: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT MIN(next_attempt_at) FROM notifications WHERE target = $1 AND state IN ('pending', 'failing')",
    )
    .bind(target)
    .fetch_one(pool)
    .await
}

/// Removes notifications delivered (or dropped) before `before`.
pub async fn prune(pool: &Pool, before: &str) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "DELETE FROM notifications WHERE state IN ('delivered', 'dropped') AND created_at < $1",
    )
    .bind(before)
    .execute(pool)
    .await?
    .rows_affected())
}
