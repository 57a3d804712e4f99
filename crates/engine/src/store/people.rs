//! The `users`, `user_roles` and `api_tokens` tables: people, the roles
//! they were granted and their API tokens (stored as digests only).

use crate::store::Pool;
use sqlx::FromRow;

use super::{Tx, now};

/// Adds a person (with a password hash, or none for a token-only user);
/// false when the name is taken.
pub async fn insert_user(
    tx: &mut Tx<'_>,
    name: &str,
    hash: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let created = sqlx::query(
        "INSERT INTO users (name, password_hash, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(hash)
    .bind(now())
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(created == 1)
}

/// Adds a person who signs in with single sign-on (`subject` is the
/// provider's "ISSUER SUBJECT"); false when the name is taken.
pub async fn insert_sso_user(
    tx: &mut Tx<'_>,
    name: &str,
    subject: &str,
) -> Result<bool, sqlx::Error> {
    let created = sqlx::query(
        "INSERT INTO users (name, sso_subject, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(subject)
    .bind(now())
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(created == 1)
}

/// The person (id, name) a single sign-on subject belongs to.
pub async fn user_of_subject(
    tx: &mut Tx<'_>,
    subject: &str,
) -> Result<Option<(i64, String)>, sqlx::Error> {
    sqlx::query_as("SELECT id, name FROM users WHERE sso_subject = $1")
        .bind(subject)
        .fetch_optional(&mut **tx)
        .await
}

/// The single sign-on subject of the person named, when they sign in
/// that way (`None` for a local account, or nobody).
pub async fn sso_subject_of(tx: &mut Tx<'_>, name: &str) -> Result<Option<String>, sqlx::Error> {
    let found: Option<(Option<String>,)> =
        sqlx::query_as("SELECT sso_subject FROM users WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut **tx)
            .await?;
    Ok(found.and_then(|(subject,)| subject))
}

/// A person's id, if there is such a person.
pub async fn user_id(tx: &mut Tx<'_>, name: &str) -> Result<Option<i64>, sqlx::Error> {
    let found: Option<(i64,)> = sqlx::query_as("SELECT id FROM users WHERE name = $1")
        .bind(name)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(found.map(|(id,)| id))
}

/// Sets a person's password hash.
pub async fn set_password_hash(
    tx: &mut Tx<'_>,
    user_id: i64,
    hash: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
        .bind(hash)
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// A person's id and password hash (none for a token-only user), by name;
/// nothing for someone who signs in with single sign-on, whose password is
/// the identity provider's business.
pub async fn credentials(
    pool: &Pool,
    name: &str,
) -> Result<Option<(i64, Option<String>)>, sqlx::Error> {
    sqlx::query_as("SELECT id, password_hash FROM users WHERE name = $1 AND sso_subject IS NULL")
        .bind(name)
        .fetch_optional(pool)
        .await
}

/// Removes a person (their roles, tokens and sessions must be gone first).
pub async fn delete_user(tx: &mut Tx<'_>, user_id: i64) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Grants a role (`scope` is `*` or a glob); false when it was granted already.
pub async fn add_role(
    tx: &mut Tx<'_>,
    user_id: i64,
    role: &str,
    scope: &str,
) -> Result<bool, sqlx::Error> {
    let added = sqlx::query(
        "INSERT INTO user_roles (user_id, role, scope) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind(user_id)
    .bind(role)
    .bind(scope)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(added == 1)
}

/// Takes a role from the person named; false when they did not have it.
pub async fn remove_role(
    tx: &mut Tx<'_>,
    name: &str,
    role: &str,
    scope: &str,
) -> Result<bool, sqlx::Error> {
    let removed = sqlx::query(
        "DELETE FROM user_roles WHERE user_id = (SELECT id FROM users WHERE name = $1) AND role = $2 AND scope = $3",
    )
    .bind(name)
    .bind(role)
    .bind(scope)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(removed > 0)
}

/// Takes every role from a person.
pub async fn remove_roles(tx: &mut Tx<'_>, user_id: i64) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM user_roles WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The `(role, scope)` pairs of the person named, read inside a transaction.
pub async fn roles_named(
    tx: &mut Tx<'_>,
    name: &str,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT r.role, r.scope FROM user_roles r JOIN users u ON u.id = r.user_id WHERE u.name = $1",
    )
    .bind(name)
    .fetch_all(&mut **tx)
    .await
}

/// The `(role, scope)` pairs of a person.
pub async fn roles_of(pool: &Pool, user_id: i64) -> Result<Vec<(String, String)>, sqlx::Error> {
    sqlx::query_as("SELECT role, scope FROM user_roles WHERE user_id = $1")
        .bind(user_id)
        .fetch_all(pool)
        .await
}

/// Whether a person is an admin of everything, and how many others are.
pub async fn admins_besides(tx: &mut Tx<'_>, user_id: i64) -> Result<(bool, i64), sqlx::Error> {
    let is_admin: Option<(i64,)> = sqlx::query_as(
        "SELECT 1 FROM user_roles WHERE user_id = $1 AND role = 'admin' AND scope = '*'",
    )
    .bind(user_id)
    .fetch_optional(&mut **tx)
    .await?;
    let (others,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM user_roles WHERE user_id != $1 AND role = 'admin' AND scope = '*'",
    )
    .bind(user_id)
    .fetch_one(&mut **tx)
    .await?;
    Ok((is_admin.is_some(), others))
}

/// Everyone with their roles: `(name, role, scope)`, a row per role (a
/// person without roles has one row with neither), ordered by name.
pub async fn people_with_roles(
    pool: &Pool,
) -> Result<Vec<(String, Option<String>, Option<String>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT u.name, r.role, r.scope FROM users u LEFT JOIN user_roles r ON r.user_id = u.id ORDER BY u.name, r.role, r.scope",
    )
    .fetch_all(pool)
    .await
}

/// A token as listed: never the token itself.
#[derive(Debug, Clone, FromRow)]
pub struct TokenInfo {
    pub id: i64,
    pub user: String,
    pub label: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

/// The tokens of a person (or of everyone).
pub async fn tokens(pool: &Pool, user: Option<&str>) -> Result<Vec<TokenInfo>, sqlx::Error> {
    sqlx::query_as(
        "SELECT t.id, u.name AS user, t.label, t.created_at, t.revoked_at FROM api_tokens t JOIN users u ON u.id = t.user_id
         WHERE ($1 IS NULL OR u.name = $1) ORDER BY t.id",
    )
    .bind(user)
    .fetch_all(pool)
    .await
}

/// Stores a token's digest; returns its id.
pub async fn insert_token(
    tx: &mut Tx<'_>,
    user_id: i64,
    digest: &str,
    label: &str,
) -> Result<i64, sqlx::Error> {
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO api_tokens (user_id, digest, label, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(user_id)
    .bind(digest)
    .bind(label)
    .bind(now())
    .fetch_one(&mut **tx)
    .await?;
    Ok(id)
}

/// A token's owner and when it was revoked, if there is such a token.
pub async fn token_owner(
    tx: &mut Tx<'_>,
    id: i64,
) -> Result<Option<(String, Option<String>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT u.name, t.revoked_at FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.id = $1",
    )
    .bind(id)
    .fetch_optional(&mut **tx)
    .await
}

/// Revokes a token.
pub async fn revoke_token(tx: &mut Tx<'_>, id: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2")
        .bind(now())
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The ids of a person's tokens not revoked yet.
pub async fn live_tokens_of(tx: &mut Tx<'_>, user_id: i64) -> Result<Vec<i64>, sqlx::Error> {
    let rows: Vec<(i64,)> =
        sqlx::query_as("SELECT id FROM api_tokens WHERE user_id = $1 AND revoked_at IS NULL")
            .bind(user_id)
            .fetch_all(&mut **tx)
            .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// The person (id, name) a live token's digest belongs to.
pub async fn owner_of_token(
    pool: &Pool,
    digest: &str,
) -> Result<Option<(i64, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT u.id, u.name FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.digest = $1 AND t.revoked_at IS NULL",
    )
    .bind(digest)
    .fetch_optional(pool)
    .await
}
