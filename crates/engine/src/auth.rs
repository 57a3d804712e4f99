//! People and tokens: accounts, passwords, sessions and API tokens, stored
//! and audited. What roles allow is in [`super::roles`].

use crate::store::Pool;
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use envline_api::AuditAction;
use rand::RngCore;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::audit::{self, AuditDraft};
pub use super::roles::{Forbidden, Grant, Permission, Principal, Role};
use crate::store::{self, people, sessions};

/// Problems managing people.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("{0}")]
    Invalid(String),
    #[error("no user named `{0}`; create it with `envline user add {0} --role ROLE`")]
    UnknownUser(String),
    #[error(
        "`{0}` is the only admin: make someone else an admin first, or nobody could manage people"
    )]
    LastAdmin(String),
    /// What was named does not exist (a token, a role the person lacks).
    #[error("{0}")]
    NotFound(String),
    /// It was done already (a token revoked before).
    #[error("{0}")]
    AlreadyDone(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

pub(crate) fn validate_user_name(name: &str) -> Result<(), AuthError> {
    if name.is_empty()
        || name.len() > 64
        || name == "envline"
        || name == "anonymous"
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c))
    {
        return Err(AuthError::Invalid(format!(
            "`{name}` cannot be a user name: use 1 to 64 letters, digits, '-', '_', '.', '@' (not `envline` or `anonymous`)"
        )));
    }
    Ok(())
}

/// Hashes a password with argon2 (default parameters, random salt).
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let mut salt_bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut salt_bytes);
    let salt = SaltString::encode_b64(&salt_bytes)
        .map_err(|e| AuthError::Invalid(format!("cannot make a salt: {e}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Invalid(format!("cannot hash password: {e}")))
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// SHA-256 of a token or session secret, hex: what the database stores.
pub fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A new random secret with a recognisable prefix.
pub fn new_secret(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", hex::encode(bytes))
}

/// An administrative change to people, recorded in the audit log (I5).
pub(crate) fn admin_event(
    actor: &str,
    action: AuditAction,
    reason: String,
    details: serde_json::Value,
) -> AuditDraft {
    AuditDraft {
        actor: actor.to_owned(),
        action,
        environment: None,
        old: None,
        new: None,
        reason,
        details,
    }
}

/// Creates a user (or adds roles to an existing one, and sets the password
/// when given). `actor` is who does it; each change is audited.
pub async fn add_user(
    pool: &Pool,
    actor: &str,
    name: &str,
    grants: &[Grant],
    password: Option<&str>,
) -> Result<(), AuthError> {
    validate_user_name(name)?;
    if grants.is_empty() {
        return Err(AuthError::Invalid(
            "give at least one --role (viewer, promoter, tester, approver, incident-commander, admin; optionally ROLE:GLOB)".into(),
        ));
    }
    let hash = match password {
        Some(p) => Some(hash_password_blocking(p).await?),
        None => None,
    };
    let mut tx = store::begin(pool).await?;
    let mut events = Vec::new();
    let created = people::insert_user(&mut tx, name, hash.as_deref()).await?;
    if !created {
        refuse_single_sign_on(&mut tx, name, "are given by their groups at the identity provider ([auth.oidc.roles]), at each sign-in; change their groups there").await?;
    }
    let user_id = people::user_id(&mut tx, name)
        .await?
        .ok_or_else(|| AuthError::UnknownUser(name.to_owned()))?;
    if created {
        events.push(admin_event(
            actor,
            AuditAction::UserCreated,
            format!("user `{name}`"),
            json!({ "user": name }),
        ));
    } else if let Some(hash) = &hash {
        people::set_password_hash(&mut tx, user_id, hash).await?;
        events.push(admin_event(
            actor,
            AuditAction::PasswordSet,
            format!("user `{name}`"),
            json!({ "user": name }),
        ));
    }
    for grant in grants {
        if people::add_role(&mut tx, user_id, grant.role.as_str(), &grant.scope).await? {
            events.push(admin_event(
                actor,
                AuditAction::RoleGranted,
                format!("`{name}` may act as {grant}"),
                json!({ "user": name, "role": grant.role.as_str(), "scope": grant.scope }),
            ));
        }
    }
    audit::append(&mut tx, &events).await?;
    tx.commit().await?;
    Ok(())
}

/// Takes a role (as granted, `ROLE` or `ROLE:GLOB`) from a user; audited.
pub async fn remove_role(
    pool: &Pool,
    actor: &str,
    name: &str,
    grant: &Grant,
) -> Result<(), AuthError> {
    let mut tx = store::begin(pool).await?;
    if !people::remove_role(&mut tx, name, grant.role.as_str(), &grant.scope).await? {
        return Err(AuthError::NotFound(format!(
            "`{name}` does not have the role {grant}; see `envline user list`"
        )));
    }
    let mut events = vec![admin_event(
        actor,
        AuditAction::RoleRemoved,
        format!("`{name}` no longer acts as {grant}"),
        json!({ "user": name, "role": grant.role.as_str(), "scope": grant.scope }),
    )];
    events.extend(
        withdraw_lost_approvals(
            &mut tx,
            actor,
            name,
            &format!("{actor} removed {name}'s role {grant}"),
        )
        .await?,
    );
    audit::append(&mut tx, &events).await?;
    tx.commit().await?;
    Ok(())
}

/// Refuses a change that people who sign in with single sign-on do not
/// get: a password (theirs is the identity provider's, with its checks and
/// its off-boarding), or roles by hand (`roles_because` says where theirs
/// come from; empty for a password).
async fn refuse_single_sign_on(
    tx: &mut store::Tx<'_>,
    name: &str,
    roles_because: &str,
) -> Result<(), AuthError> {
    if people::sso_subject_of(tx, name).await?.is_none() {
        return Ok(());
    }
    Err(AuthError::Invalid(if roles_because.is_empty() {
        format!(
            "`{name}` signs in with single sign-on: their password is the identity provider's, and Envline keeps none"
        )
    } else {
        format!("`{name}` signs in with single sign-on: their roles {roles_because}")
    }))
}

/// I4: withdraws `name`'s approvals of waiting requests that the roles left
/// to them no longer cover; returns the audit events that record it.
pub(crate) async fn withdraw_lost_approvals(
    tx: &mut store::Tx<'_>,
    actor: &str,
    name: &str,
    reason: &str,
) -> Result<Vec<AuditDraft>, AuthError> {
    let left = grants_in(tx, name).await?;
    let who = Principal {
        user: name.to_owned(),
        grants: left,
        system: false,
    };
    let withdrawn = store::withdraw_approvals(
        tx,
        name,
        |env| who.can(Permission::Approve, Some(env)),
        reason,
    )
    .await?;
    Ok(withdrawn
        .into_iter()
        .map(|w| AuditDraft {
            actor: actor.to_owned(),
            action: AuditAction::ApprovalWithdrawn,
            environment: Some(w.environment),
            old: None,
            new: None,
            reason: reason.to_owned(),
            details: json!({ "request": w.request_id, "approver": name }),
        })
        .collect())
}

/// The roles a user holds, read inside a transaction.
async fn grants_in(tx: &mut store::Tx<'_>, name: &str) -> Result<Vec<Grant>, AuthError> {
    let roles = people::roles_named(tx, name).await?;
    Ok(roles
        .into_iter()
        .filter_map(|(role, scope)| Grant::new(role.parse().ok()?, &scope).ok())
        .collect())
}

/// The shortest password Envline accepts when one is set or changed.
pub const MIN_PASSWORD: usize = 8;

/// Checks a new password's length.
pub fn check_new_password(password: &str) -> Result<(), AuthError> {
    if password.chars().count() < MIN_PASSWORD {
        return Err(AuthError::Invalid(format!(
            "a password needs at least {MIN_PASSWORD} characters"
        )));
    }
    Ok(())
}

/// Hashes a password off the async threads (argon2 takes tens of milliseconds).
pub async fn hash_password_blocking(password: &str) -> Result<String, AuthError> {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| AuthError::Invalid(format!("cannot hash the password: {e}")))?
}

/// Sets (or resets) `name`'s password and ends their sessions: every one,
/// or every one but `keep` (the session of a person changing their own
/// password, who stays signed in there). Audited.
pub async fn set_password(
    pool: &Pool,
    actor: &str,
    name: &str,
    password: &str,
    keep: Option<&str>,
) -> Result<u64, AuthError> {
    check_new_password(password)?;
    let hash = hash_password_blocking(password).await?;
    let mut tx = store::begin(pool).await?;
    let user_id = user_id_in(&mut tx, name).await?;
    refuse_single_sign_on(&mut tx, name, "").await?;
    people::set_password_hash(&mut tx, user_id, &hash).await?;
    let ended = sessions::end_sessions(&mut tx, user_id, keep.map(digest).as_deref()).await?;
    let (action, reason) = if actor == name {
        (
            AuditAction::PasswordChanged,
            format!("`{name}` changed their password"),
        )
    } else {
        (AuditAction::PasswordSet, format!("user `{name}`"))
    };
    audit::append(
        &mut tx,
        &[admin_event(
            actor,
            action,
            reason,
            json!({ "user": name, "sessions_ended": ended }),
        )],
    )
    .await?;
    tx.commit().await?;
    Ok(ended)
}

/// Removes a person: their roles, tokens and sessions go with them, and
/// their approvals of requests still waiting are withdrawn (I4). The last
/// admin cannot be removed. Audited.
pub async fn remove_user(pool: &Pool, actor: &str, name: &str) -> Result<(), AuthError> {
    let mut tx = store::begin(pool).await?;
    let user_id = user_id_in(&mut tx, name).await?;
    let (is_admin, other_admins) = people::admins_besides(&mut tx, user_id).await?;
    if is_admin && other_admins == 0 {
        return Err(AuthError::LastAdmin(name.to_owned()));
    }
    let tokens = people::live_tokens_of(&mut tx, user_id).await?;
    // Roles first: what is left covers nothing, so every approval is withdrawn.
    people::remove_roles(&mut tx, user_id).await?;
    let withdrawn =
        withdraw_lost_approvals(&mut tx, actor, name, &format!("{actor} removed {name}")).await?;
    let ended = sessions::end_sessions(&mut tx, user_id, None).await?;
    people::delete_user(&mut tx, user_id).await?;
    let mut events = vec![admin_event(
        actor,
        AuditAction::UserRemoved,
        format!("user `{name}`"),
        json!({
            "user": name,
            "tokens_revoked": tokens,
            "sessions_ended": ended,
        }),
    )];
    events.extend(withdrawn);
    audit::append(&mut tx, &events).await?;
    tx.commit().await?;
    Ok(())
}

/// A user's id, read inside a transaction.
async fn user_id_in(tx: &mut store::Tx<'_>, name: &str) -> Result<i64, AuthError> {
    people::user_id(tx, name)
        .await?
        .ok_or_else(|| AuthError::UnknownUser(name.to_owned()))
}

/// Whether `password` is `name`'s password (for a person changing their own).
pub async fn check_password(pool: &Pool, name: &str, password: &str) -> Result<bool, AuthError> {
    let Some((_, Some(hash))) = people::credentials(pool, name).await? else {
        return Ok(false);
    };
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || verify_password(&password, &hash))
        .await
        .map_err(|e| AuthError::Invalid(format!("cannot check the password: {e}")))
}

/// Whether the session or token a live stream was opened with still stands:
/// read from the database every time (no cache), so a stream closes soon
/// after a password change, a removal or a revocation.
pub async fn credential_live(pool: &Pool, credential: &Credential) -> Result<bool, sqlx::Error> {
    let owner = match credential {
        Credential::Session(secret) => sessions::owner_of_session(pool, &digest(secret)).await?,
        Credential::Token(token) => people::owner_of_token(pool, &digest(token)).await?,
    };
    Ok(owner.is_some())
}

/// What a request was authenticated with.
#[derive(Debug, Clone)]
pub enum Credential {
    Session(String),
    Token(String),
}

/// Every user with their roles (`role` or `role:glob`).
pub async fn users(pool: &Pool) -> Result<Vec<(String, Vec<String>)>, AuthError> {
    let rows = people::people_with_roles(pool).await?;
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for (name, role, scope) in rows {
        if out.last().is_none_or(|(n, _)| *n != name) {
            out.push((name.clone(), Vec::new()));
        }
        if let (Some(role), Some(scope)) = (role, scope) {
            let text = if scope == "*" {
                role
            } else {
                format!("{role}:{scope}")
            };
            out.last_mut().expect("pushed").1.push(text);
        }
    }
    Ok(out)
}

pub use crate::store::people::TokenInfo;

/// The tokens of a user (or of everyone).
pub async fn tokens(pool: &Pool, user: Option<&str>) -> Result<Vec<TokenInfo>, AuthError> {
    Ok(people::tokens(pool, user).await?)
}

/// Creates an API token for a user; returns the token, which is stored only
/// as a digest. Audited (without the token).
pub async fn create_token(
    pool: &Pool,
    actor: &str,
    user: &str,
    label: &str,
) -> Result<String, AuthError> {
    let mut tx = store::begin(pool).await?;
    let user_id = user_id_in(&mut tx, user).await?;
    let token = new_secret("envl_");
    let id = people::insert_token(&mut tx, user_id, &digest(&token), label).await?;
    audit::append(
        &mut tx,
        &[admin_event(
            actor,
            AuditAction::TokenCreated,
            format!("token {id} for `{user}` ({label})"),
            json!({ "user": user, "token": id, "label": label }),
        )],
    )
    .await?;
    tx.commit().await?;
    Ok(token)
}

/// Revokes a token by its id (as `envline token list` shows it); audited.
pub async fn revoke_token(pool: &Pool, actor: &str, id: i64) -> Result<(), AuthError> {
    let mut tx = store::begin(pool).await?;
    let Some((user, revoked)) = people::token_owner(&mut tx, id).await? else {
        return Err(AuthError::NotFound(format!(
            "there is no token {id}; see `envline token list`"
        )));
    };
    if revoked.is_some() {
        return Err(AuthError::AlreadyDone(format!(
            "token {id} is already revoked"
        )));
    }
    people::revoke_token(&mut tx, id).await?;
    audit::append(
        &mut tx,
        &[admin_event(
            actor,
            AuditAction::TokenRevoked,
            format!("token {id} of `{user}`"),
            json!({ "user": user, "token": id }),
        )],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

async fn principal_of(pool: &Pool, user_id: i64, name: String) -> Result<Principal, sqlx::Error> {
    let grants = people::roles_of(pool, user_id)
        .await?
        .into_iter()
        .filter_map(|(role, scope)| Grant::new(role.parse().ok()?, &scope).ok())
        .collect();
    Ok(Principal {
        user: name,
        grants,
        system: false,
    })
}

/// The user a bearer token belongs to, if the token is known and not revoked.
pub async fn principal_for_token(
    pool: &Pool,
    token: &str,
) -> Result<Option<Principal>, sqlx::Error> {
    match people::owner_of_token(pool, &digest(token)).await? {
        Some((id, name)) => Ok(Some(principal_of(pool, id, name).await?)),
        None => Ok(None),
    }
}

/// Checks a password and opens a session; returns the cookie value.
pub async fn login(
    pool: &Pool,
    user: &str,
    password: &str,
    hours: i64,
) -> Result<Option<String>, sqlx::Error> {
    let found = people::credentials(pool, user).await?;
    // Spend the same effort for unknown users, so timing does not tell who exists.
    const NOBODY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$9sTbSlTio3Biev89thdrlKKiCaYsjjYVJxGAL3swxpQ";
    let (user_id, hash) = match found {
        Some((id, Some(hash))) => (Some(id), hash),
        _ => (None, NOBODY.to_owned()),
    };
    // argon2 takes tens of milliseconds: off the async threads.
    let attempt = password.to_owned();
    let matches = tokio::task::spawn_blocking(move || verify_password(&attempt, &hash))
        .await
        .unwrap_or(false);
    let Some(user_id) = user_id.filter(|_| matches) else {
        return Ok(None);
    };
    open_session(pool, user_id, hours).await.map(Some)
}

/// Opens a session for a person who proved who they are (a password, or
/// single sign-on); returns the cookie value.
pub async fn open_session(pool: &Pool, user_id: i64, hours: i64) -> Result<String, sqlx::Error> {
    // Expired sessions are of no use to anyone: pruned as new ones open.
    sessions::prune_expired(pool).await?;
    let secret = new_secret("");
    let expires = (chrono::Utc::now() + chrono::Duration::hours(hours))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    sessions::insert_session(pool, &digest(&secret), user_id, &expires).await?;
    Ok(secret)
}

/// The user of a session cookie, if the session is live.
pub async fn principal_for_session(
    pool: &Pool,
    secret: &str,
) -> Result<Option<Principal>, sqlx::Error> {
    match sessions::owner_of_session(pool, &digest(secret)).await? {
        Some((id, name)) => Ok(Some(principal_of(pool, id, name).await?)),
        None => Ok(None),
    }
}

/// Ends a session.
pub async fn logout(pool: &Pool, secret: &str) -> Result<(), sqlx::Error> {
    sessions::end_session(pool, &digest(secret)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(grants: &[&str]) -> Principal {
        Principal {
            user: "alice".into(),
            grants: grants.iter().map(|g| Grant::parse(g).unwrap()).collect(),
            system: false,
        }
    }

    #[test]
    fn scoped_roles_cover_only_matching_environments() {
        let p = who(&["approver:prod-*", "promoter"]);
        assert!(p.can(Permission::Approve, Some("prod-eu")));
        assert!(!p.can(Permission::Approve, Some("staging-eu")));
        assert!(p.can(Permission::Promote, Some("qa")));
        assert!(!p.can(Permission::Reset { protected: true }, Some("prod-eu")));
    }

    #[test]
    fn refusals_name_the_missing_permission() {
        let e = who(&["viewer"])
            .require(Permission::Promote, Some("qa"))
            .unwrap_err();
        let text = e.to_string();
        assert!(text.contains("may not promote on `qa`"), "{text}");
        assert!(text.contains("promoter or admin"), "{text}");
        assert!(text.contains("has viewer"), "{text}");
    }

    #[test]
    fn scoped_users_can_still_read() {
        let p = who(&["approver:prod-*"]);
        assert!(p.can(Permission::Read, None));
        assert!(!p.can(Permission::Admin, None));
    }

    #[test]
    fn admin_can_do_everything() {
        let p = who(&["admin"]);
        assert!(p.can(Permission::Reset { protected: true }, Some("prod-eu")));
        assert!(p.can(Permission::Admin, None));
    }

    #[test]
    fn passwords_round_trip() {
        let h = hash_password("s3cret").unwrap();
        assert!(verify_password("s3cret", &h));
        assert!(!verify_password("wrong", &h));
    }
}
