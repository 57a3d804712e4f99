//! The `anchors_pushed` table: each audit anchor Envline pushed, so a
//! remote anchor rewound behind it is noticed (I5).

use crate::store::Pool;

use super::now;

/// The last anchor pushed: its commit id and the event it vouches for.
pub async fn last_pushed(pool: &Pool) -> Result<Option<(String, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT commit_id, event_id FROM anchors_pushed ORDER BY id DESC LIMIT 1")
        .fetch_optional(pool)
        .await
}

/// Remembers an anchor that reached the remote.
pub async fn remember_pushed(pool: &Pool, commit: &str, event_id: i64) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO anchors_pushed (commit_id, event_id, pushed_at) VALUES ($1, $2, $3)")
        .bind(commit)
        .bind(event_id)
        .bind(now())
        .execute(pool)
        .await?;
    Ok(())
}
