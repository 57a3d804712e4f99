//! The `audit_events` table (I5): rows in, rows out. The chain's hashing
//! and checking live in `crate::audit`; here is only what is stored.

use crate::store::Pool;
use envline_api::{AuditAction, AuditEventView, JsonText};
use sqlx::FromRow;

use super::Tx;

/// A row of `audit_events`.
#[derive(Debug, Clone, FromRow)]
pub struct AuditEventRow {
    id: i64,
    at: String,
    actor: String,
    #[sqlx(try_from = "String")]
    action: AuditAction,
    environment: Option<String>,
    old_commit: Option<String>,
    new_commit: Option<String>,
    reason: String,
    details: String,
    prev_hash: String,
    hash: String,
}

impl From<AuditEventRow> for AuditEventView {
    fn from(r: AuditEventRow) -> Self {
        AuditEventView {
            id: r.id,
            at: r.at,
            actor: r.actor,
            action: r.action,
            environment: r.environment,
            old: r.old_commit,
            new: r.new_commit,
            reason: r.reason,
            details: JsonText(r.details),
            prev_hash: r.prev_hash,
            hash: r.hash,
        }
    }
}

/// Rows as the events they are.
pub(crate) fn events(rows: Vec<AuditEventRow>) -> Vec<AuditEventView> {
    rows.into_iter().map(AuditEventView::from).collect()
}

/// The newest event's id and hash, read inside the write transaction that
/// appends after it.
pub async fn chain_head(tx: &mut Tx<'_>) -> Result<Option<(i64, String)>, sqlx::Error> {
    sqlx::query_as("SELECT id, hash FROM audit_events ORDER BY id DESC LIMIT 1")
        .fetch_optional(&mut **tx)
        .await
}

/// Writes one event, hashed by the caller.
pub async fn insert_event(tx: &mut Tx<'_>, e: &AuditEventView) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit_events (id, at, actor, action, environment, old_commit, new_commit, reason, details, prev_hash, hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(e.id)
    .bind(&e.at)
    .bind(&e.actor)
    .bind(e.action.as_str())
    .bind(&e.environment)
    .bind(&e.old)
    .bind(&e.new)
    .bind(&e.reason)
    .bind(e.details.as_str())
    .bind(&e.prev_hash)
    .bind(&e.hash)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Reads every event (the log, oldest first) for checking.
pub async fn all(pool: &Pool) -> Result<Vec<AuditEventView>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM audit_events ORDER BY id")
        .fetch_all(pool)
        .await
        .map(events)
}

/// The newest event's id and hash, if there is any event.
pub async fn head(pool: &Pool) -> Result<Option<(i64, String)>, sqlx::Error> {
    sqlx::query_as("SELECT id, hash FROM audit_events ORDER BY id DESC LIMIT 1")
        .fetch_optional(pool)
        .await
}

/// The events after `id`, oldest first.
pub async fn after(pool: &Pool, id: i64) -> Result<Vec<AuditEventView>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM audit_events WHERE id > $1 ORDER BY id")
        .bind(id)
        .fetch_all(pool)
        .await
        .map(events)
}

/// The events with these ids, in that order.
pub async fn events_by_id(pool: &Pool, ids: &[i64]) -> Result<Vec<AuditEventView>, sqlx::Error> {
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let event: Option<AuditEventRow> =
            sqlx::query_as("SELECT * FROM audit_events WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?;
        out.extend(event.map(AuditEventView::from));
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

/// The filter's conditions, on parameters $1 to $5 (the query's own follow).
const FILTERED: &str = "($1 IS NULL OR environment = $1) AND ($2 IS NULL OR actor = $2)
     AND ($3 IS NULL OR action = $3) AND ($4 IS NULL OR at >= $4) AND ($5 IS NULL OR at < $5)";

/// One page of events, newest first, filtered: those older than `before`
/// (an event id), at most `page`. Exports and the Audit page read the log
/// page by page.
pub async fn events_page(
    pool: &Pool,
    filter: &AuditFilter,
    before: Option<i64>,
    page: i64,
) -> Result<Vec<AuditEventView>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT * FROM audit_events WHERE {FILTERED} AND ($6 IS NULL OR id < $6) ORDER BY id DESC LIMIT $7"
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
    .map(events)
}

/// The actions the log holds, for choosing one to filter by.
pub async fn actions(pool: &Pool) -> Result<Vec<String>, sqlx::Error> {
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
    #[sqlx(try_from = "String")]
    pub action: AuditAction,
    #[sqlx(rename = "old_commit")]
    pub old: Option<String>,
    #[sqlx(rename = "new_commit")]
    pub new: Option<String>,
}

/// Every recorded move of an environment, newest first (rollbacks find the
/// previous position here).
pub async fn moves_of(pool: &Pool, environment: &str) -> Result<Vec<RefMove>, sqlx::Error> {
    sqlx::query_as(
        "SELECT action, old_commit, new_commit FROM audit_events
         WHERE environment = $1 AND new_commit IS NOT NULL ORDER BY id DESC",
    )
    .bind(environment)
    .fetch_all(pool)
    .await
}

/// One move of an environment that the delivery figures read: its
/// deployments, rollbacks and hotfix resets.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LedgerMove {
    pub id: i64,
    pub at: String,
    #[sqlx(try_from = "String")]
    pub action: AuditAction,
    #[sqlx(rename = "old_commit")]
    pub old: Option<String>,
    #[sqlx(rename = "new_commit")]
    pub new: Option<String>,
}

/// Every deployment (promotion, cherry-pick), rollback and hotfix reset of
/// an environment, oldest first.
pub async fn ledger_of(pool: &Pool, environment: &str) -> Result<Vec<LedgerMove>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, at, action, old_commit, new_commit FROM audit_events
         WHERE environment = $1 AND action IN ('promote', 'cherry_pick', 'rollback', 'hotfix_reset')
         ORDER BY id",
    )
    .bind(environment)
    .fetch_all(pool)
    .await
}
