//! The `intents` table: the journal of operations, each plan written before
//! any ref moves and settled after, so a crash leaves nothing half done.

use crate::store::Pool;
use sqlx::FromRow;

use super::now;

/// A row of the intent journal: an operation's plan, written before any ref moves.
#[derive(Debug, Clone, FromRow)]
pub struct IntentRow {
    pub id: i64,
    pub actor: String,
    pub action: String,
    pub payload: String,
    pub state: String,
    /// What went wrong with its push, while it is unsettled or after it failed.
    pub error: Option<String>,
}

pub async fn insert_intent(
    pool: &Pool,
    actor: &str,
    action: &str,
    payload: &str,
) -> Result<i64, sqlx::Error> {
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO intents (actor, action, payload, state, created_at) VALUES ($1, $2, $3, 'pending', $4) RETURNING id",
    )
    .bind(actor)
    .bind(action)
    .bind(payload)
    .bind(now())
    .fetch_one(pool)
    .await?;
    Ok(id)
}

/// Settles a pending intent as `done` or `failed`. Returns false (and
/// writes nothing) when it was no longer pending: someone settled it first.
pub async fn finish_intent(
    executor: impl sqlx::Executor<'_, Database = sqlx::Any>,
    id: i64,
    state: &str,
    error: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE intents SET state = $1, error = $2, finished_at = $3 WHERE id = $4 AND state = 'pending'",
    )
    .bind(state)
    .bind(error)
    .bind(now())
    .bind(id)
    .execute(executor)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn pending_intents(pool: &Pool) -> Result<Vec<IntentRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, actor, action, payload, state, error FROM intents WHERE state = 'pending' ORDER BY id",
    )
    .fetch_all(pool)
    .await
}

/// Failed intents whose push may still land, made at or after `since`,
/// oldest first (a late landing is credited to the first that matches).
pub async fn late_landing_candidates(
    pool: &Pool,
    since: &str,
) -> Result<Vec<IntentRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, actor, action, payload, state, error FROM intents
         WHERE state = 'failed' AND unknown_outcome = 1 AND created_at >= $1 ORDER BY id",
    )
    .bind(since)
    .fetch_all(pool)
    .await
}

/// Notes that a pending intent's push may or may not have landed (it stays
/// pending, and if it is failed later, a late landing is still credited).
pub async fn note_unknown_outcome(pool: &Pool, id: i64, error: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE intents SET error = $1, unknown_outcome = 1 WHERE id = $2 AND state = 'pending'",
    )
    .bind(error)
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

/// Fails a pending intent whose push may still land later (it was pending
/// after a crash or an unknown outcome). Returns false when it was not pending.
pub async fn fail_unsettled_intent(
    executor: impl sqlx::Executor<'_, Database = sqlx::Any>,
    id: i64,
    why: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE intents SET state = 'failed', error = $1, unknown_outcome = 1, finished_at = $2 WHERE id = $3 AND state = 'pending'",
    )
    .bind(why)
    .bind(now())
    .bind(id)
    .execute(executor)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Marks a failed intent done after all: its push landed late. Returns false
/// when it was not failed (already settled otherwise).
pub async fn revive_intent(
    executor: impl sqlx::Executor<'_, Database = sqlx::Any>,
    id: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE intents SET state = 'done', error = 'landed after it was marked failed', finished_at = $1 WHERE id = $2 AND state = 'failed'",
    )
    .bind(now())
    .bind(id)
    .execute(executor)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The payload and state of every intent, by id (the evidence check).
pub async fn intent_states(
    pool: &Pool,
) -> Result<std::collections::HashMap<i64, (String, String)>, sqlx::Error> {
    let rows: Vec<(i64, String, String)> = sqlx::query_as("SELECT id, payload, state FROM intents")
        .fetch_all(pool)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, payload, state)| (id, (payload, state)))
        .collect())
}

/// The payloads of the intents `ids` (the changes an anchor vouches for).
pub async fn payloads(pool: &Pool, ids: &[i64]) -> Result<Vec<(i64, String)>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    // `$N` written out: sqlx's query builder writes `?` for the Any driver.
    let list: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT id, payload FROM intents WHERE id IN ({}) ORDER BY id",
        list.join(", ")
    );
    let mut query = sqlx::query_as(&sql);
    for id in ids {
        query = query.bind(id);
    }
    query.fetch_all(pool).await
}
