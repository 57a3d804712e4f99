//! The audit log (I5) and its table: appending events in the caller's
//! transaction, reading them back, and the hash chain. Each event's hash
//! covers its canonical content and the hash of the event before, so editing
//! or deleting any row breaks every hash after it.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::{Sqlite, SqlitePool, Transaction};

use crate::model::AuditEventView;

/// The hash the first event chains to.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An event to append: everything but its id and hashes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditDraft {
    pub actor: String,
    pub action: String,
    pub environment: Option<String>,
    pub old: Option<String>,
    pub new: Option<String>,
    pub reason: String,
    pub details: serde_json::Value,
}

/// The result of checking the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainCheck {
    pub intact: bool,
    pub events: i64,
    /// The first event whose stored hash does not match its content or predecessor.
    pub first_broken: Option<i64>,
    pub message: String,
    /// Everything else found wrong: anchors on the remote that disagree,
    /// branches the log does not explain, evidence rows edited.
    #[serde(default)]
    pub problems: Vec<String>,
    /// What the remote's anchor vouches for, or why there is none.
    #[serde(default)]
    pub anchor: Option<String>,
}

fn event_hash(
    prev_hash: &str,
    id: i64,
    at: &str,
    draft_fields: (
        &str,
        &str,
        Option<&str>,
        Option<&str>,
        Option<&str>,
        &str,
        &str,
    ),
) -> String {
    let (actor, action, environment, old, new, reason, details) = draft_fields;
    // A canonical JSON array: field order and escaping are fixed.
    let canonical = serde_json::json!([
        prev_hash,
        id,
        at,
        actor,
        action,
        environment,
        old,
        new,
        reason,
        details
    ])
    .to_string();
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

/// Appends events in the caller's transaction, chaining each to the last.
pub async fn append(
    tx: &mut Transaction<'_, Sqlite>,
    drafts: &[AuditDraft],
) -> Result<Vec<i64>, sqlx::Error> {
    let mut ids = Vec::with_capacity(drafts.len());
    if drafts.is_empty() {
        return Ok(ids);
    }
    let last: Option<(i64, String)> =
        sqlx::query_as("SELECT id, hash FROM audit_events ORDER BY id DESC LIMIT 1")
            .fetch_optional(&mut **tx)
            .await?;
    let (mut prev_id, mut prev_hash) = last.unwrap_or((0, GENESIS.to_string()));
    for draft in drafts {
        let id = prev_id + 1;
        let at = super::store::now();
        let details = draft.details.to_string();
        let hash = event_hash(
            &prev_hash,
            id,
            &at,
            (
                &draft.actor,
                &draft.action,
                draft.environment.as_deref(),
                draft.old.as_deref(),
                draft.new.as_deref(),
                &draft.reason,
                &details,
            ),
        );
        sqlx::query(
            "INSERT INTO audit_events (id, at, actor, action, environment, old_commit, new_commit, reason, details, prev_hash, hash)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(&at)
        .bind(&draft.actor)
        .bind(&draft.action)
        .bind(&draft.environment)
        .bind(&draft.old)
        .bind(&draft.new)
        .bind(&draft.reason)
        .bind(&details)
        .bind(&prev_hash)
        .bind(&hash)
        .execute(&mut **tx)
        .await?;
        ids.push(id);
        (prev_id, prev_hash) = (id, hash);
    }
    Ok(ids)
}

/// Reads every event (the log, oldest first) for checking.
pub async fn all(pool: &SqlitePool) -> Result<Vec<AuditEventView>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM audit_events ORDER BY id")
        .fetch_all(pool)
        .await
}

/// Recomputes every hash and reports the first event that does not match.
/// Pure CPU work over the rows: callers run it off the async threads.
pub fn check_chain(rows: &[AuditEventView]) -> ChainCheck {
    let mut prev = GENESIS.to_string();
    for (expected_id, row) in (1_i64..).zip(rows.iter()) {
        let recomputed = event_hash(
            &prev,
            row.id,
            &row.at,
            (
                &row.actor,
                &row.action,
                row.environment.as_deref(),
                row.old.as_deref(),
                row.new.as_deref(),
                &row.reason,
                row.details.as_str(),
            ),
        );
        let problem = if row.id != expected_id {
            Some(format!(
                "event {expected_id} is missing (next is {})",
                row.id
            ))
        } else if row.prev_hash != prev {
            Some(format!(
                "event {} does not chain to the event before it",
                row.id
            ))
        } else if row.hash != recomputed {
            Some(format!("event {} was changed after it was written", row.id))
        } else {
            None
        };
        if let Some(message) = problem {
            return ChainCheck {
                intact: false,
                events: rows.len() as i64,
                first_broken: Some(expected_id.min(row.id)),
                message,
                problems: Vec::new(),
                anchor: None,
            };
        }
        prev = row.hash.clone();
    }
    ChainCheck {
        intact: true,
        events: rows.len() as i64,
        first_broken: None,
        message: format!("all {} events are intact", rows.len()),
        problems: Vec::new(),
        anchor: None,
    }
}

/// The newest event's id and hash, if there is any event.
pub async fn head(pool: &SqlitePool) -> Result<Option<(i64, String)>, sqlx::Error> {
    sqlx::query_as("SELECT id, hash FROM audit_events ORDER BY id DESC LIMIT 1")
        .fetch_optional(pool)
        .await
}

/// The events after `id`, oldest first.
pub async fn after(pool: &SqlitePool, id: i64) -> Result<Vec<AuditEventView>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM audit_events WHERE id > ? ORDER BY id")
        .bind(id)
        .fetch_all(pool)
        .await
}

/// The events with these ids, in that order.
pub async fn events_by_id(
    pool: &SqlitePool,
    ids: &[i64],
) -> Result<Vec<AuditEventView>, sqlx::Error> {
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let event: Option<AuditEventView> =
            sqlx::query_as("SELECT * FROM audit_events WHERE id = ?")
                .bind(id)
                .fetch_optional(pool)
                .await?;
        out.extend(event);
    }
    Ok(out)
}

/// Filters for reading the audit log.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub environment: Option<String>,
    /// RFC 3339 time; events at or after it.
    pub since: Option<String>,
    pub limit: Option<i64>,
}

/// One page of events, newest first, filtered: those older than `before`
/// (an event id), at most `page`. Exports read the log page by page.
pub async fn events_page(
    pool: &SqlitePool,
    filter: &AuditFilter,
    before: Option<i64>,
    page: i64,
) -> Result<Vec<AuditEventView>, sqlx::Error> {
    sqlx::query_as(
        "SELECT * FROM audit_events WHERE (?1 IS NULL OR environment = ?1) AND (?2 IS NULL OR at >= ?2)
         AND (?3 IS NULL OR id < ?3) ORDER BY id DESC LIMIT ?4",
    )
    .bind(&filter.environment)
    .bind(&filter.since)
    .bind(before)
    .bind(page)
    .fetch_all(pool)
    .await
}

/// Events, newest first, filtered.
pub async fn events(
    pool: &SqlitePool,
    filter: &AuditFilter,
) -> Result<Vec<AuditEventView>, sqlx::Error> {
    sqlx::query_as(
        "SELECT * FROM audit_events WHERE (?1 IS NULL OR environment = ?1) AND (?2 IS NULL OR at >= ?2)
         ORDER BY id DESC LIMIT ?3",
    )
    .bind(&filter.environment)
    .bind(&filter.since)
    .bind(filter.limit.unwrap_or(i64::MAX))
    .fetch_all(pool)
    .await
}

/// One move of an environment's branch as the audit log tells it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RefMove {
    pub action: String,
    #[sqlx(rename = "old_commit")]
    pub old: Option<String>,
    #[sqlx(rename = "new_commit")]
    pub new: Option<String>,
}

/// Every recorded move of an environment, newest first (rollbacks find the
/// previous position here).
pub async fn moves_of(pool: &SqlitePool, environment: &str) -> Result<Vec<RefMove>, sqlx::Error> {
    sqlx::query_as(
        "SELECT action, old_commit, new_commit FROM audit_events
         WHERE environment = ? AND new_commit IS NOT NULL ORDER BY id DESC",
    )
    .bind(environment)
    .fetch_all(pool)
    .await
}
