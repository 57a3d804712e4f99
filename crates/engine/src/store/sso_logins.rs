//! The `sso_logins` table: single sign-ons under way, from sending the
//! browser to the identity provider until it comes back (to any replica),
//! each used once and only for a few minutes.

use crate::store::Pool;

use super::now;

/// A sign-in under way: what finishing it needs.
#[derive(Debug, sqlx::FromRow)]
pub struct PendingSignIn {
    /// PKCE code verifier, sent with the code.
    pub verifier: String,
    /// What the ID token must carry back.
    pub nonce: String,
    /// The page to return to afterwards.
    pub next: String,
}

/// Records a sign-in under way, keyed by the digest of its `state`, until
/// `expires_at`; drops those that expired.
pub async fn insert(
    pool: &Pool,
    state_digest: &str,
    pending: &PendingSignIn,
    expires_at: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM sso_logins WHERE expires_at <= $1")
        .bind(now())
        .execute(pool)
        .await?;
    sqlx::query(
        "INSERT INTO sso_logins (state_digest, verifier, nonce, next, expires_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(state_digest)
    .bind(&pending.verifier)
    .bind(&pending.nonce)
    .bind(&pending.next)
    .bind(expires_at)
    .execute(pool)
    .await?;
    Ok(())
}

/// Takes the sign-in a `state` names, if it is live: it is gone afterwards,
/// so a provider's answer is used at most once.
pub async fn take(pool: &Pool, state_digest: &str) -> Result<Option<PendingSignIn>, sqlx::Error> {
    sqlx::query_as(
        "DELETE FROM sso_logins WHERE state_digest = $1 AND expires_at > $2 RETURNING verifier, nonce, next",
    )
    .bind(state_digest)
    .bind(now())
    .fetch_optional(pool)
    .await
}
