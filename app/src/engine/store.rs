//! Everything Envline keeps in SQLite, through sqlx: the gates' evidence
//! (verifications, approvals, holds), people, intents and the audit log.
//! Queries are checked at run time so the build needs no live database.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{FromRow, SqlitePool};

use crate::model::{ApprovalView, AuditEventView, HoldView, PromotionView, VerificationView};

/// The database handle every query takes.
pub type Pool = SqlitePool;

/// The current time as stored (RFC 3339, UTC, milliseconds).
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Opens (creating if needed) the database in WAL mode and runs the migrations.
pub async fn open(file: &Path) -> Result<SqlitePool, sqlx::Error> {
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).map_err(sqlx::Error::Io)?;
    }
    let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", file.display()))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10));
    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        .connect_with(options)
        .await?;
    sqlx::migrate!("../migrations").run(&pool).await?;
    Ok(pool)
}

#[derive(Debug, Clone, FromRow)]
pub struct VerificationRow {
    pub id: i64,
    pub environment: String,
    pub commit_id: String,
    pub status: String,
    pub url: Option<String>,
    pub summary: Option<String>,
    pub recorded_by: String,
    pub at: String,
}

impl From<VerificationRow> for VerificationView {
    fn from(r: VerificationRow) -> Self {
        VerificationView {
            environment: r.environment,
            commit: r.commit_id,
            status: r.status,
            url: r.url,
            summary: r.summary,
            recorded_by: r.recorded_by,
            at: r.at,
        }
    }
}

#[derive(Debug, Clone, FromRow)]
pub struct HoldRow {
    pub id: i64,
    pub environment: String,
    pub kind: String,
    pub reason: String,
    pub created_by: String,
    pub created_at: String,
    pub starts_at: Option<String>,
    pub ends_at: Option<String>,
}

impl From<HoldRow> for HoldView {
    fn from(r: HoldRow) -> Self {
        HoldView {
            id: r.id,
            environment: r.environment,
            kind: r.kind,
            reason: r.reason,
            created_by: r.created_by,
            created_at: r.created_at,
            starts_at: r.starts_at,
            ends_at: r.ends_at,
        }
    }
}

#[derive(Debug, Clone, FromRow)]
pub struct RequestRow {
    pub id: i64,
    pub kind: String,
    pub environment: String,
    pub source: String,
    pub from_commit: Option<String>,
    pub to_commit: String,
    pub requested_by: String,
    pub reason: String,
    pub required_approvals: i64,
    pub state: String,
    pub state_reason: Option<String>,
    pub result_commit: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, FromRow)]
struct ApprovalRow {
    request_id: i64,
    approver: String,
    decision: String,
    comment: String,
    at: String,
}

/// Latest verification of each (environment, commit) pair asked for.
pub async fn latest_verification(
    pool: &SqlitePool,
    environment: &str,
    commit: &str,
) -> Result<Option<VerificationRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT * FROM verifications WHERE environment = ? AND commit_id = ? ORDER BY id DESC LIMIT 1",
    )
    .bind(environment)
    .bind(commit)
    .fetch_optional(pool)
    .await
}

/// Every verification of a commit, newest first, in any environment.
pub async fn verifications_of(
    pool: &SqlitePool,
    commit: &str,
) -> Result<Vec<VerificationRow>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM verifications WHERE commit_id = ? ORDER BY id DESC")
        .bind(commit)
        .fetch_all(pool)
        .await
}

/// Records a verification; the newest one for (environment, commit) is the one that counts (I3).
pub async fn record_verification(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    environment: &str,
    commit: &str,
    status: &str,
    url: Option<&str>,
    summary: Option<&str>,
    recorded_by: &str,
) -> Result<VerificationRow, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO verifications (environment, commit_id, status, url, summary, recorded_by, at)
         VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING *",
    )
    .bind(environment)
    .bind(commit)
    .bind(status)
    .bind(url)
    .bind(summary)
    .bind(recorded_by)
    .bind(now())
    .fetch_one(&mut **tx)
    .await
}

/// Holds in force now (not released, inside their window).
pub async fn active_holds(pool: &SqlitePool) -> Result<Vec<HoldRow>, sqlx::Error> {
    let now = now();
    sqlx::query_as(
        "SELECT id, environment, kind, reason, created_by, created_at, starts_at, ends_at FROM holds
         WHERE released_at IS NULL AND (starts_at IS NULL OR starts_at <= ?) AND (ends_at IS NULL OR ends_at > ?)
         ORDER BY id",
    )
    .bind(&now)
    .bind(&now)
    .fetch_all(pool)
    .await
}

/// Holds not yet released, including freezes that start later.
pub async fn unreleased_holds(pool: &SqlitePool) -> Result<Vec<HoldRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, environment, kind, reason, created_by, created_at, starts_at, ends_at FROM holds
         WHERE released_at IS NULL AND (ends_at IS NULL OR ends_at > ?) ORDER BY id",
    )
    .bind(now())
    .fetch_all(pool)
    .await
}

pub async fn insert_hold(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    environment: &str,
    kind: &str,
    reason: &str,
    created_by: &str,
    starts_at: Option<&str>,
    ends_at: Option<&str>,
) -> Result<HoldRow, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO holds (environment, kind, reason, created_by, created_at, starts_at, ends_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)
         RETURNING id, environment, kind, reason, created_by, created_at, starts_at, ends_at",
    )
    .bind(environment)
    .bind(kind)
    .bind(reason)
    .bind(created_by)
    .bind(now())
    .bind(starts_at)
    .bind(ends_at)
    .fetch_one(&mut **tx)
    .await
}

pub async fn find_hold(
    pool: &SqlitePool,
    id: i64,
) -> Result<Option<(HoldRow, Option<String>)>, sqlx::Error> {
    let row: Option<(i64, Option<String>)> =
        sqlx::query_as("SELECT id, released_at FROM holds WHERE id = ?")
            .bind(id)
            .fetch_optional(pool)
            .await?;
    let Some((_, released_at)) = row else {
        return Ok(None);
    };
    let hold: HoldRow = sqlx::query_as(
        "SELECT id, environment, kind, reason, created_by, created_at, starts_at, ends_at FROM holds WHERE id = ?",
    )
    .bind(id)
    .fetch_one(pool)
    .await?;
    Ok(Some((hold, released_at)))
}

pub async fn release_hold(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    id: i64,
    released_by: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE holds SET released_by = ?, released_at = ? WHERE id = ? AND released_at IS NULL",
    )
    .bind(released_by)
    .bind(now())
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Requests with their approvals, newest first; `state` filters when given.
pub async fn requests(
    pool: &SqlitePool,
    state: Option<&str>,
    limit: i64,
) -> Result<Vec<PromotionView>, sqlx::Error> {
    let rows: Vec<RequestRow> = match state {
        Some(s) => {
            sqlx::query_as(
                "SELECT * FROM promotion_requests WHERE state = ? ORDER BY id DESC LIMIT ?",
            )
            .bind(s)
            .bind(limit)
            .fetch_all(pool)
            .await?
        }
        None => {
            sqlx::query_as("SELECT * FROM promotion_requests ORDER BY id DESC LIMIT ?")
                .bind(limit)
                .fetch_all(pool)
                .await?
        }
    };
    with_approvals(pool, rows).await
}

pub async fn request(pool: &SqlitePool, id: i64) -> Result<Option<PromotionView>, sqlx::Error> {
    let rows: Vec<RequestRow> = sqlx::query_as("SELECT * FROM promotion_requests WHERE id = ?")
        .bind(id)
        .fetch_all(pool)
        .await?;
    Ok(with_approvals(pool, rows).await?.into_iter().next())
}

/// The open request for an environment, if any.
pub async fn open_request_for(
    pool: &SqlitePool,
    environment: &str,
) -> Result<Option<PromotionView>, sqlx::Error> {
    let rows: Vec<RequestRow> = sqlx::query_as(
        "SELECT * FROM promotion_requests WHERE state = 'awaiting_approval' AND environment = ? ORDER BY id DESC LIMIT 1",
    )
    .bind(environment)
    .fetch_all(pool)
    .await?;
    Ok(with_approvals(pool, rows).await?.into_iter().next())
}

async fn with_approvals(
    pool: &SqlitePool,
    rows: Vec<RequestRow>,
) -> Result<Vec<PromotionView>, sqlx::Error> {
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let approvals: Vec<ApprovalRow> =
            sqlx::query_as("SELECT * FROM approvals WHERE request_id = ? ORDER BY at")
                .bind(row.id)
                .fetch_all(pool)
                .await?;
        out.push(PromotionView {
            id: row.id,
            kind: row.kind,
            environment: row.environment,
            source: row.source,
            from_commit: row.from_commit,
            to_commit: row.to_commit,
            requested_by: row.requested_by,
            reason: row.reason,
            required_approvals: row.required_approvals as u32,
            state: row.state,
            state_reason: row.state_reason,
            result_commit: row.result_commit,
            approvals: approvals
                .into_iter()
                .filter(|a| a.request_id == row.id)
                .map(|a| ApprovalView {
                    approver: a.approver,
                    decision: a.decision,
                    comment: a.comment,
                    at: a.at,
                })
                .collect(),
            created_at: row.created_at,
            updated_at: row.updated_at,
        });
    }
    Ok(out)
}

/// A new request to promote, as stored.
pub struct NewRequest<'a> {
    pub kind: &'a str,
    pub environment: &'a str,
    pub source: &'a str,
    pub from_commit: Option<&'a str>,
    pub to_commit: &'a str,
    pub requested_by: &'a str,
    pub reason: &'a str,
    pub required_approvals: u32,
    pub state: &'a str,
}

pub async fn insert_request(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    r: &NewRequest<'_>,
) -> Result<i64, sqlx::Error> {
    let now = now();
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO promotion_requests (kind, environment, source, from_commit, to_commit, requested_by, reason, required_approvals, state, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(r.kind)
    .bind(r.environment)
    .bind(r.source)
    .bind(r.from_commit)
    .bind(r.to_commit)
    .bind(r.requested_by)
    .bind(r.reason)
    .bind(r.required_approvals as i64)
    .bind(r.state)
    .bind(&now)
    .bind(&now)
    .fetch_one(&mut **tx)
    .await?;
    Ok(id)
}

pub async fn set_request_state(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    id: i64,
    state: &str,
    reason: Option<&str>,
    result_commit: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE promotion_requests SET state = ?, state_reason = ?, result_commit = COALESCE(?, result_commit), updated_at = ? WHERE id = ?",
    )
    .bind(state)
    .bind(reason)
    .bind(result_commit)
    .bind(now())
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Records (or replaces) one approver's decision.
pub async fn upsert_approval(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    request_id: i64,
    approver: &str,
    decision: &str,
    comment: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO approvals (request_id, approver, decision, comment, at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (request_id, approver) DO UPDATE SET decision = excluded.decision, comment = excluded.comment, at = excluded.at",
    )
    .bind(request_id)
    .bind(approver)
    .bind(decision)
    .bind(comment)
    .bind(now())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The last tip Envline saw or set for each branch.
pub async fn observed_tips(pool: &SqlitePool) -> Result<Vec<(String, String)>, sqlx::Error> {
    sqlx::query_as("SELECT branch, commit_id FROM observed_tips")
        .fetch_all(pool)
        .await
}

pub async fn set_observed_tip(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    branch: &str,
    commit: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO observed_tips (branch, commit_id, observed_at) VALUES (?, ?, ?)
         ON CONFLICT (branch) DO UPDATE SET commit_id = excluded.commit_id, observed_at = excluded.observed_at",
    )
    .bind(branch)
    .bind(commit)
    .bind(now())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, FromRow)]
pub struct IntentRow {
    pub id: i64,
    pub actor: String,
    pub action: String,
    pub payload: String,
    pub state: String,
}

pub async fn insert_intent(
    pool: &SqlitePool,
    actor: &str,
    action: &str,
    payload: &str,
) -> Result<i64, sqlx::Error> {
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO intents (actor, action, payload, state, created_at) VALUES (?, ?, ?, 'pending', ?) RETURNING id",
    )
    .bind(actor)
    .bind(action)
    .bind(payload)
    .bind(now())
    .fetch_one(pool)
    .await?;
    Ok(id)
}

pub async fn finish_intent(
    executor: impl sqlx::Executor<'_, Database = sqlx::Sqlite>,
    id: i64,
    state: &str,
    error: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE intents SET state = ?, error = ?, finished_at = ? WHERE id = ?")
        .bind(state)
        .bind(error)
        .bind(now())
        .bind(id)
        .execute(executor)
        .await?;
    Ok(())
}

pub async fn pending_intents(pool: &SqlitePool) -> Result<Vec<IntentRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, actor, action, payload, state FROM intents WHERE state = 'pending' ORDER BY id",
    )
    .fetch_all(pool)
    .await
}

/// Filters for reading the audit log.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub environment: Option<String>,
    /// RFC 3339 time; events at or after it.
    pub since: Option<String>,
    pub limit: Option<i64>,
}

pub async fn audit_events(
    pool: &SqlitePool,
    filter: &AuditFilter,
) -> Result<Vec<AuditEventView>, sqlx::Error> {
    let rows: Vec<super::audit::AuditRow> = sqlx::query_as(
        "SELECT * FROM audit_events WHERE (?1 IS NULL OR environment = ?1) AND (?2 IS NULL OR at >= ?2)
         ORDER BY id DESC LIMIT ?3",
    )
    .bind(&filter.environment)
    .bind(&filter.since)
    .bind(filter.limit.unwrap_or(i64::MAX))
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| AuditEventView {
            id: r.id,
            at: r.at,
            actor: r.actor,
            action: r.action,
            environment: r.environment,
            old: r.old_commit,
            new: r.new_commit,
            reason: r.reason,
            details: serde_json::from_str(&r.details).unwrap_or(serde_json::Value::Null),
            hash: r.hash,
        })
        .collect())
}

/// The most recent audit events that moved an environment, newest first.
pub async fn ref_changes_of(
    pool: &SqlitePool,
    environment: &str,
) -> Result<Vec<(String, Option<String>, Option<String>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT action, old_commit, new_commit FROM audit_events
         WHERE environment = ? AND new_commit IS NOT NULL ORDER BY id DESC",
    )
    .bind(environment)
    .fetch_all(pool)
    .await
}
