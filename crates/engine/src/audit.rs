//! The audit log (I5) and its table: appending events in the caller's
//! transaction, reading them back, and the hash chain. Each event's hash
//! covers its canonical content and the hash of the event before, so editing
//! or deleting any row breaks every hash after it.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::{Sqlite, SqlitePool, Transaction};

use envline_api::AuditEventView;

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

pub use envline_api::ChainCheck;

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

/// Appends events in the caller's transaction, chaining each to the last,
/// and queues their notifications in the same transaction.
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
        super::notify::enqueue(tx, id, &draft.action, &at).await?;
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

/// Which events to read: each given field narrows the log.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub environment: Option<String>,
    pub actor: Option<String>,
    pub action: Option<String>,
    /// RFC 3339 time (UTC, milliseconds, as stored); events at or after it.
    pub since: Option<String>,
    /// RFC 3339 time; events before it.
    pub until: Option<String>,
    pub limit: Option<i64>,
}

impl AuditFilter {
    /// The filter a person or a script asked for: empty fields do not
    /// narrow (a form sends them all); times as [`parse_time`] reads them.
    pub fn given(
        environment: Option<String>,
        actor: Option<String>,
        action: Option<String>,
        since: Option<String>,
        until: Option<String>,
    ) -> Result<AuditFilter, String> {
        let given = |v: Option<String>| v.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let time =
            |field: &str, v: Option<String>| given(v).map(|t| parse_time(field, &t)).transpose();
        Ok(AuditFilter {
            environment: given(environment),
            actor: given(actor),
            action: given(action),
            since: time("since", since)?,
            until: time("until", until)?,
            limit: None,
        })
    }
}

/// The filter's conditions, on parameters ?1 to ?5 (and ?6 for `before`).
const FILTERED: &str = "(?1 IS NULL OR environment = ?1) AND (?2 IS NULL OR actor = ?2)
     AND (?3 IS NULL OR action = ?3) AND (?4 IS NULL OR at >= ?4) AND (?5 IS NULL OR at < ?5)";

/// One page of events, newest first, filtered: those older than `before`
/// (an event id), at most `page`. Exports and the Audit page read the log
/// page by page.
pub async fn events_page(
    pool: &SqlitePool,
    filter: &AuditFilter,
    before: Option<i64>,
    page: i64,
) -> Result<Vec<AuditEventView>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT * FROM audit_events WHERE {FILTERED} AND (?6 IS NULL OR id < ?6) ORDER BY id DESC LIMIT ?7"
    ))
    .bind(&filter.environment)
    .bind(&filter.actor)
    .bind(&filter.action)
    .bind(&filter.since)
    .bind(&filter.until)
    .bind(before)
    .bind(page)
    .fetch_all(pool)
    .await
}

/// The actions the log holds, for choosing one to filter by.
pub async fn actions(pool: &SqlitePool) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT DISTINCT action FROM audit_events ORDER BY action")
        .fetch_all(pool)
        .await
}

/// A time given by a person or a script as stored times compare: RFC 3339
/// (`2026-11-01T09:30:00+01:00`), a UTC date and time as a browser's
/// `datetime-local` field sends it (`2026-11-01T09:30`), or a UTC date.
pub fn parse_time(field: &str, text: &str) -> Result<String, String> {
    use chrono::{NaiveDate, NaiveDateTime, SecondsFormat, Utc};
    let text = text.trim();
    let utc = chrono::DateTime::parse_from_rfc3339(text)
        .map(|d| d.with_timezone(&Utc))
        .or_else(|_| {
            NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S")
                .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M"))
                .map(|d| d.and_utc())
        })
        .or_else(|_| {
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map(|d| d.and_hms_opt(0, 0, 0).expect("midnight").and_utc())
        })
        .map_err(|_| {
            format!(
                "`{field}` = `{text}` is not a time: give RFC 3339 like 2026-11-01T09:30:00Z, or a UTC date like 2026-11-01"
            )
        })?;
    Ok(utc.to_rfc3339_opts(SecondsFormat::Millis, true))
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
