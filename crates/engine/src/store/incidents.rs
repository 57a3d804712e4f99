//! The `incidents` table: hotfix mode's incidents (S4).

use crate::store::Pool;
use envline_api::{AuditEventView, CommitMapping, IncidentState, IncidentView};
use sqlx::FromRow;

use super::{JsonColumn, Tx, json_text, now};

/// A row of `incidents`.
#[derive(FromRow)]
struct IncidentRow {
    id: i64,
    incident: String,
    branch: String,
    production: String,
    fork: String,
    reason: String,
    #[sqlx(try_from = "String")]
    state: IncidentState,
    started_by: String,
    started_at: String,
    resolved_by: Option<String>,
    resolved_at: Option<String>,
    fix: Option<String>,
    merged_by: Option<String>,
    merged_at: Option<String>,
    #[sqlx(try_from = "String")]
    kept: JsonColumn<Vec<String>>,
    #[sqlx(try_from = "String")]
    mapping: JsonColumn<Vec<CommitMapping>>,
}

impl From<IncidentRow> for IncidentView {
    fn from(r: IncidentRow) -> Self {
        IncidentView {
            id: r.id,
            incident: r.incident,
            branch: r.branch,
            production: r.production,
            fork: r.fork,
            reason: r.reason,
            state: r.state,
            started_by: r.started_by,
            started_at: r.started_at,
            resolved_by: r.resolved_by,
            resolved_at: r.resolved_at,
            fix: r.fix,
            merged_by: r.merged_by,
            merged_at: r.merged_at,
            kept: r.kept.0,
            mapping: r.mapping.0,
        }
    }
}

/// The incident whose hotfix mode is on (active or resolved), if any.
pub async fn running_incident(pool: &Pool) -> Result<Option<IncidentView>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM incidents WHERE state IN ('active', 'resolved') LIMIT 1")
        .fetch_optional(pool)
        .await
        .map(|row: Option<IncidentRow>| row.map(IncidentView::from))
}

/// Every incident, newest first.
pub async fn incidents(pool: &Pool) -> Result<Vec<IncidentView>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM incidents ORDER BY id DESC")
        .fetch_all(pool)
        .await
        .map(|rows: Vec<IncidentRow>| rows.into_iter().map(IncidentView::from).collect())
}

/// An incident by its id (`INC-42`).
pub async fn incident(pool: &Pool, incident: &str) -> Result<Option<IncidentView>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM incidents WHERE incident = $1")
        .bind(incident)
        .fetch_optional(pool)
        .await
        .map(|row: Option<IncidentRow>| row.map(IncidentView::from))
}

/// An incident to record when hotfix mode starts.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct NewIncident {
    pub incident: String,
    pub branch: String,
    pub production: String,
    pub fork: String,
    pub reason: String,
    pub started_by: String,
    pub kept: Vec<String>,
}

/// Records a started incident (active).
pub async fn insert_incident(tx: &mut Tx<'_>, i: &NewIncident) -> Result<i64, sqlx::Error> {
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO incidents (incident, branch, production, fork, reason, state, started_by, started_at, kept)
         VALUES ($1, $2, $3, $4, $5, 'active', $6, $7, $8) RETURNING id",
    )
    .bind(&i.incident)
    .bind(&i.branch)
    .bind(&i.production)
    .bind(&i.fork)
    .bind(&i.reason)
    .bind(&i.started_by)
    .bind(now())
    .bind(json_text(&i.kept))
    .fetch_one(&mut **tx)
    .await?;
    Ok(id)
}

/// Marks an active incident resolved; false when it was not active.
pub async fn resolve_incident(
    tx: &mut Tx<'_>,
    incident: &str,
    by: &str,
    fix: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE incidents SET state = 'resolved', resolved_by = $1, resolved_at = $2, fix = $3 WHERE incident = $4 AND state = 'active'",
    )
    .bind(by)
    .bind(now())
    .bind(fix)
    .bind(incident)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Marks a resolved incident merged back, with the mapping of main's
/// commits; false when it was not resolved.
pub async fn merge_incident(
    tx: &mut Tx<'_>,
    incident: &str,
    by: &str,
    mapping: &[CommitMapping],
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE incidents SET state = 'merged', merged_by = $1, merged_at = $2, mapping = $3 WHERE incident = $4 AND state = 'resolved'",
    )
    .bind(by)
    .bind(now())
    .bind(json_text(mapping))
    .bind(incident)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The audit events of an incident, oldest first.
pub async fn incident_events(
    pool: &Pool,
    incident: &str,
) -> Result<Vec<AuditEventView>, sqlx::Error> {
    let sql = match super::backend(pool) {
        super::Backend::Sqlite => {
            "SELECT * FROM audit_events WHERE json_extract(details, '$.incident') = $1 ORDER BY id"
        }
        super::Backend::Postgres => {
            "SELECT * FROM audit_events WHERE details::json ->> 'incident' = $1 ORDER BY id"
        }
    };
    sqlx::query_as(sql)
        .bind(incident)
        .fetch_all(pool)
        .await
        .map(super::events)
}
