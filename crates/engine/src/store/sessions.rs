//! The `sessions` table: signed-in browsers, stored as digests of their
//! cookies, each with when it expires.

use crate::store::Pool;

use super::{Tx, now};

/// Opens a session for a person until `expires_at`.
pub async fn insert_session(
    pool: &Pool,
    digest: &str,
    user_id: i64,
    expires_at: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO sessions (digest, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(digest)
    .bind(user_id)
    .bind(now())
    .bind(expires_at)
    .execute(pool)
    .await?;
    Ok(())
}

/// Removes the sessions that have expired.
pub async fn prune_expired(pool: &Pool) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
        .bind(now())
        .execute(pool)
        .await?;
    Ok(())
}

/// The person (id, name) a live session's digest belongs to.
pub async fn owner_of_session(
    pool: &Pool,
    digest: &str,
) -> Result<Option<(i64, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT u.id, u.name FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.digest = $1 AND s.expires_at > $2",
    )
    .bind(digest)
    .bind(now())
    .fetch_optional(pool)
    .await
}

/// Ends a person's sessions, all of them or all but the one whose digest is
/// `keep`; returns how many ended.
pub async fn end_sessions(
    tx: &mut Tx<'_>,
    user_id: i64,
    keep: Option<&str>,
) -> Result<u64, sqlx::Error> {
    Ok(
        sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND digest IS DISTINCT FROM $2")
            .bind(user_id)
            .bind(keep)
            .execute(&mut **tx)
            .await?
            .rows_affected(),
    )
}

/// Ends one session.
pub async fn end_session(pool: &Pool, digest: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM sessions WHERE digest = $1")
        .bind(digest)
        .execute(pool)
        .await?;
    Ok(())
}
