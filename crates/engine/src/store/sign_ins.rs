//! The `sign_in_failures` and `sign_in_attempts` tables: what sign-in
//! throttling counts, shared by every replica. Times are RFC 3339 text as
//! everywhere in the database, so they compare as text.

use crate::store::Pool;

/// Counts one sign-in attempt under `address` (a client's address, or a
/// kind of attempt and the address) in the minute starting at `minute`;
/// returns the attempts counted so in that minute. Drops the counts of
/// minutes before `forget_before`.
pub async fn count_attempt(
    pool: &Pool,
    address: &str,
    minute: &str,
    forget_before: &str,
) -> Result<i64, sqlx::Error> {
    sqlx::query("DELETE FROM sign_in_attempts WHERE minute < $1")
        .bind(forget_before)
        .execute(pool)
        .await?;
    let (attempts,): (i64,) = sqlx::query_as(
        "INSERT INTO sign_in_attempts (address, minute, attempts) VALUES ($1, $2, 1)
         ON CONFLICT (address, minute) DO UPDATE SET attempts = sign_in_attempts.attempts + 1
         RETURNING attempts",
    )
    .bind(address)
    .bind(minute)
    .fetch_one(pool)
    .await?;
    Ok(attempts)
}

/// The run of wrong passwords for an account from an address: how many,
/// and until when the next attempt waits.
pub async fn failures(
    pool: &Pool,
    user: &str,
    address: &str,
) -> Result<Option<(i64, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT failures, not_before FROM sign_in_failures WHERE user_name = $1 AND address = $2",
    )
    .bind(user)
    .bind(address)
    .fetch_optional(pool)
    .await
}

/// Counts a wrong password at `now`: the run goes on, or starts again when
/// its last failure was before `run_ends`. Returns the run's length. Drops
/// the runs nobody continued since `run_ends`.
pub async fn count_failure(
    pool: &Pool,
    user: &str,
    address: &str,
    now: &str,
    run_ends: &str,
) -> Result<i64, sqlx::Error> {
    sqlx::query("DELETE FROM sign_in_failures WHERE last_at < $1")
        .bind(run_ends)
        .execute(pool)
        .await?;
    let (failures,): (i64,) = sqlx::query_as(
        "INSERT INTO sign_in_failures (user_name, address, failures, not_before, last_at)
         VALUES ($1, $2, 1, $3, $3)
         ON CONFLICT (user_name, address) DO UPDATE SET
             failures = sign_in_failures.failures + 1, last_at = $3
         RETURNING failures",
    )
    .bind(user)
    .bind(address)
    .bind(now)
    .fetch_one(pool)
    .await?;
    Ok(failures)
}

/// Makes the next attempt for an account from an address wait until `not_before`.
pub async fn hold_off(
    pool: &Pool,
    user: &str,
    address: &str,
    not_before: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE sign_in_failures SET not_before = $1 WHERE user_name = $2 AND address = $3",
    )
    .bind(not_before)
    .bind(user)
    .bind(address)
    .execute(pool)
    .await?;
    Ok(())
}

/// Ends the run of wrong passwords (the right one came).
pub async fn clear_failures(pool: &Pool, user: &str, address: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM sign_in_failures WHERE user_name = $1 AND address = $2")
        .bind(user)
        .bind(address)
        .execute(pool)
        .await?;
    Ok(())
}
