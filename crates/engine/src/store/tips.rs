//! The `observed_tips` table: the last tip Envline saw or set for each
//! branch, so a move made outside Envline is noticed (I5).

use crate::store::Pool;

use super::{Tx, now};

/// The last tip Envline saw or set for each branch.
pub async fn observed_tips(pool: &Pool) -> Result<Vec<(String, String)>, sqlx::Error> {
    sqlx::query_as("SELECT branch, commit_id FROM observed_tips")
        .fetch_all(pool)
        .await
}

pub async fn set_observed_tip(
    tx: &mut Tx<'_>,
    branch: &str,
    commit: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO observed_tips (branch, commit_id, observed_at) VALUES ($1, $2, $3)
         ON CONFLICT (branch) DO UPDATE SET commit_id = excluded.commit_id, observed_at = excluded.observed_at",
    )
    .bind(branch)
    .bind(commit)
    .bind(now())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// What `observed_tips` holds for a branch that was seen and then deleted:
/// re-creating it later is a move too (I5).
pub const DELETED: &str = "";

/// Notes that a branch was deleted (kept, so that re-creating it is noticed).
pub async fn forget_observed_tip(tx: &mut Tx<'_>, branch: &str) -> Result<(), sqlx::Error> {
    set_observed_tip(tx, branch, DELETED).await
}

/// The tip Envline last saw or set for a branch, read inside a write transaction.
pub async fn observed_tip(tx: &mut Tx<'_>, branch: &str) -> Result<Option<String>, sqlx::Error> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT commit_id FROM observed_tips WHERE branch = $1")
            .bind(branch)
            .fetch_optional(&mut **tx)
            .await?;
    Ok(row.map(|(c,)| c))
}
