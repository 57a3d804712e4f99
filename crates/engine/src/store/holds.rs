//! The `holds` table: holds and freezes on environments.

use crate::store::Pool;
use envline_api::{HoldKind, HoldView};
use sqlx::FromRow;

use super::{Tx, now};

const HOLD_COLUMNS: &str =
    "id, environment, kind, reason, created_by, created_at, starts_at, ends_at, placed_by";

/// A row of `holds`, and when it was released (only some queries read that).
#[derive(FromRow)]
struct HoldRow {
    id: i64,
    environment: String,
    #[sqlx(try_from = "String")]
    kind: HoldKind,
    reason: String,
    created_by: String,
    created_at: String,
    starts_at: Option<String>,
    ends_at: Option<String>,
    placed_by: String,
    #[sqlx(default)]
    released_at: Option<String>,
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
            placed_by: r.placed_by,
        }
    }
}

impl From<HoldRow> for HoldRecord {
    fn from(mut r: HoldRow) -> Self {
        let released_at = r.released_at.take();
        HoldRecord {
            hold: r.into(),
            released_at,
        }
    }
}

fn views(rows: Vec<HoldRow>) -> Vec<HoldView> {
    rows.into_iter().map(HoldView::from).collect()
}

/// Holds in force now (not released, inside their window).
pub async fn active_holds(pool: &Pool) -> Result<Vec<HoldView>, sqlx::Error> {
    let now = now();
    sqlx::query_as(&format!(
        "SELECT {HOLD_COLUMNS} FROM holds
         WHERE released_at IS NULL AND (starts_at IS NULL OR starts_at <= $1) AND (ends_at IS NULL OR ends_at > $2)
         ORDER BY id"
    ))
    .bind(&now)
    .bind(&now)
    .fetch_all(pool)
    .await
    .map(views)
}

/// Holds not yet released, including freezes that start later.
pub async fn unreleased_holds(pool: &Pool) -> Result<Vec<HoldView>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {HOLD_COLUMNS} FROM holds
         WHERE released_at IS NULL AND (ends_at IS NULL OR ends_at > $1) ORDER BY id"
    ))
    .bind(now())
    .fetch_all(pool)
    .await
    .map(views)
}

/// Every hold ever placed, released or not, oldest first (the evidence check).
pub async fn all_holds(pool: &Pool) -> Result<Vec<HoldRecord>, sqlx::Error> {
    let rows: Vec<HoldRow> = sqlx::query_as(&format!(
        "SELECT {HOLD_COLUMNS}, released_at FROM holds ORDER BY id"
    ))
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(HoldRecord::from).collect())
}

/// A hold or freeze to place.
pub struct NewHold<'a> {
    pub environment: &'a str,
    pub kind: HoldKind,
    /// What placed it, which decides who may release it: `hold` (a person's
    /// hold or freeze) or `reset` (a rollback or reset's auto-promotion hold).
    pub placed_by: &'a str,
    pub reason: &'a str,
    pub created_by: &'a str,
    pub starts_at: Option<&'a str>,
    pub ends_at: Option<&'a str>,
}

/// Whether an environment already has an unreleased auto-promotion hold
/// placed by a rollback or reset (a second one would say the same).
pub async fn has_reset_hold(tx: &mut Tx<'_>, environment: &str) -> Result<bool, sqlx::Error> {
    let found: Option<(i64,)> = sqlx::query_as(
        "SELECT id FROM holds WHERE environment = $1 AND placed_by = 'reset' AND released_at IS NULL LIMIT 1",
    )
    .bind(environment)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(found.is_some())
}

/// Places a hold or freeze.
pub async fn insert_hold(tx: &mut Tx<'_>, h: &NewHold<'_>) -> Result<HoldView, sqlx::Error> {
    let row: HoldRow = sqlx::query_as(&format!(
        "INSERT INTO holds (environment, kind, reason, created_by, created_at, starts_at, ends_at, placed_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {HOLD_COLUMNS}"
    ))
    .bind(h.environment)
    .bind(h.kind.as_str())
    .bind(h.reason)
    .bind(h.created_by)
    .bind(now())
    .bind(h.starts_at)
    .bind(h.ends_at)
    .bind(h.placed_by)
    .fetch_one(&mut **tx)
    .await?;
    Ok(row.into())
}

/// A hold whether or not it was released, with when it was released.
#[derive(Debug, Clone)]
pub struct HoldRecord {
    pub hold: HoldView,
    pub released_at: Option<String>,
}

/// A hold by its id, released or not.
pub async fn find_hold(pool: &Pool, id: i64) -> Result<Option<HoldRecord>, sqlx::Error> {
    let row: Option<HoldRow> = sqlx::query_as(&format!(
        "SELECT {HOLD_COLUMNS}, released_at FROM holds WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(HoldRecord::from))
}

/// Releases a hold; false when it was already released (by someone else meanwhile).
pub async fn release_hold(
    tx: &mut Tx<'_>,
    id: i64,
    released_by: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE holds SET released_by = $1, released_at = $2 WHERE id = $3 AND released_at IS NULL",
    )
    .bind(released_by)
    .bind(now())
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}
