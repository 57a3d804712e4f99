//! People, roles and tokens: who may do what to which environment, and
//! why a refusal happened.

use std::fmt;
use std::str::FromStr;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::RngCore;
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::SqlitePool;

use super::audit::{self, AuditDraft};

/// A role, optionally limited to environments matching a glob.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    Viewer,
    Promoter,
    Tester,
    Approver,
    IncidentCommander,
    Admin,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Viewer,
        Role::Promoter,
        Role::Tester,
        Role::Approver,
        Role::IncidentCommander,
        Role::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Promoter => "promoter",
            Role::Tester => "tester",
            Role::Approver => "approver",
            Role::IncidentCommander => "incident-commander",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown role `{s}`; roles are {}",
                    Role::ALL.map(|r| r.as_str()).join(", ")
                )
            })
    }
}

/// A role and the environments it covers (`approver:prod-*`).
#[derive(Debug, Clone)]
pub struct Grant {
    pub role: Role,
    pub scope: String,
    matcher: globset::GlobMatcher,
}

impl Grant {
    pub fn new(role: Role, scope: &str) -> Result<Grant, String> {
        let glob = globset::Glob::new(scope)
            .map_err(|e| format!("bad environment glob `{scope}`: {e}"))?;
        Ok(Grant {
            role,
            scope: scope.to_owned(),
            matcher: glob.compile_matcher(),
        })
    }

    /// Parses `ROLE` or `ROLE:GLOB`.
    pub fn parse(text: &str) -> Result<Grant, String> {
        let (role, scope) = text.split_once(':').unwrap_or((text, "*"));
        Grant::new(role.parse()?, scope)
    }

    fn covers(&self, environment: Option<&str>) -> bool {
        match environment {
            Some(env) => self.matcher.is_match(env),
            None => self.scope == "*",
        }
    }
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.scope == "*" {
            write!(f, "{}", self.role)
        } else {
            write!(f, "{}:{}", self.role, self.scope)
        }
    }
}

/// What an action needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    Read,
    Promote,
    Verify,
    Approve,
    /// Move an environment backwards or sideways (rollback, realign, reset).
    Reset {
        protected: bool,
    },
    Hold,
    Refresh,
    /// Start, resolve and merge back hotfix mode (S4).
    Hotfix,
    Admin,
}

impl Permission {
    /// Roles that grant it (admin grants everything).
    pub fn roles(self) -> &'static [Role] {
        match self {
            Permission::Read => &Role::ALL,
            Permission::Promote => &[Role::Promoter, Role::Admin],
            Permission::Verify => &[Role::Tester, Role::Admin],
            Permission::Approve => &[Role::Approver, Role::Admin],
            Permission::Reset { protected: true } => &[Role::IncidentCommander, Role::Admin],
            Permission::Reset { protected: false } => {
                &[Role::Promoter, Role::IncidentCommander, Role::Admin]
            }
            Permission::Hold => &[Role::Promoter, Role::IncidentCommander, Role::Admin],
            Permission::Refresh => &[
                Role::Promoter,
                Role::Tester,
                Role::IncidentCommander,
                Role::Admin,
            ],
            Permission::Hotfix => &[Role::IncidentCommander, Role::Admin],
            Permission::Admin => &[Role::Admin],
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Permission::Read => "read",
            Permission::Promote => "promote",
            Permission::Verify => "verify",
            Permission::Approve => "approve",
            Permission::Reset { protected: true } => "reset a protected environment",
            Permission::Reset { protected: false } => "reset",
            Permission::Hold => "hold",
            Permission::Refresh => "refresh",
            Permission::Hotfix => "run hotfix mode",
            Permission::Admin => "administer",
        }
    }
}

/// A refusal that names the missing permission.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{user} may not {what}{on}: that needs the role {roles}{scope}; {user} has {has}", what = .permission.name(),
    on = .environment.as_ref().map(|e| format!(" on `{e}`")).unwrap_or_default(),
    roles = .permission.roles().iter().map(|r| r.as_str()).collect::<Vec<_>>().join(" or "),
    scope = .environment.as_ref().map(|e| format!(" for `{e}`")).unwrap_or_default(),
    has = if .grants.is_empty() { "no roles".to_string() } else { .grants.join(", ") })]
pub struct Forbidden {
    pub user: String,
    pub permission: Permission,
    pub environment: Option<String>,
    pub grants: Vec<String>,
}

/// Someone acting: a user with grants, or Envline itself (auto-promotion, reconciliation).
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: String,
    pub grants: Vec<Grant>,
    /// Envline's own actions: every permission.
    pub system: bool,
}

impl Principal {
    /// Envline itself, for auto-promotions and start-up reconciliation.
    pub fn system() -> Principal {
        Principal {
            user: "envline".into(),
            grants: Vec::new(),
            system: true,
        }
    }

    /// The anonymous reader allowed by `auth.anonymous_read`.
    pub fn anonymous() -> Principal {
        Principal {
            user: "anonymous".into(),
            grants: vec![Grant::new(Role::Viewer, "*").expect("valid glob")],
            system: false,
        }
    }

    pub fn can(&self, permission: Permission, environment: Option<&str>) -> bool {
        // Reading and refreshing are not about one environment: any grant of
        // a fitting role does, whatever environments it is limited to.
        let unscoped =
            environment.is_none() && matches!(permission, Permission::Read | Permission::Refresh);
        self.system
            || self.grants.iter().any(|g| {
                (g.role == Role::Admin || permission.roles().contains(&g.role))
                    && (unscoped || g.covers(environment))
            })
    }

    /// `Ok` when allowed, else a refusal that says what is missing.
    pub fn require(
        &self,
        permission: Permission,
        environment: Option<&str>,
    ) -> Result<(), Forbidden> {
        if self.can(permission, environment) {
            Ok(())
        } else {
            Err(Forbidden {
                user: self.user.clone(),
                permission,
                environment: environment.map(str::to_owned),
                grants: self.grants.iter().map(|g| g.to_string()).collect(),
            })
        }
    }
}

/// Problems managing people.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("{0}")]
    Invalid(String),
    #[error("no user named `{0}`; create it with `envline user add {0} --role ROLE`")]
    UnknownUser(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

fn validate_user_name(name: &str) -> Result<(), AuthError> {
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
fn admin_event(
    actor: &str,
    action: &str,
    reason: String,
    details: serde_json::Value,
) -> AuditDraft {
    AuditDraft {
        actor: actor.to_owned(),
        action: action.to_owned(),
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
    pool: &SqlitePool,
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
    let hash = password.map(hash_password).transpose()?;
    let mut tx = super::store::begin(pool).await?;
    let mut events = Vec::new();
    let created = sqlx::query("INSERT INTO users (name, password_hash, created_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING")
        .bind(name)
        .bind(&hash)
        .bind(super::store::now())
        .execute(&mut *tx)
        .await?
        .rows_affected()
        == 1;
    if created {
        events.push(admin_event(
            actor,
            "user_created",
            format!("user `{name}`"),
            json!({ "user": name }),
        ));
    } else if let Some(hash) = &hash {
        sqlx::query("UPDATE users SET password_hash = ? WHERE name = ?")
            .bind(hash)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        events.push(admin_event(
            actor,
            "password_set",
            format!("user `{name}`"),
            json!({ "user": name }),
        ));
    }
    let (user_id,): (i64,) = sqlx::query_as("SELECT id FROM users WHERE name = ?")
        .bind(name)
        .fetch_one(&mut *tx)
        .await?;
    for grant in grants {
        let added =
            sqlx::query("INSERT OR IGNORE INTO user_roles (user_id, role, scope) VALUES (?, ?, ?)")
                .bind(user_id)
                .bind(grant.role.as_str())
                .bind(&grant.scope)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                == 1;
        if added {
            events.push(admin_event(
                actor,
                "role_granted",
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
    pool: &SqlitePool,
    actor: &str,
    name: &str,
    grant: &Grant,
) -> Result<(), AuthError> {
    let mut tx = super::store::begin(pool).await?;
    let removed = sqlx::query(
        "DELETE FROM user_roles WHERE user_id = (SELECT id FROM users WHERE name = ?) AND role = ? AND scope = ?",
    )
    .bind(name)
    .bind(grant.role.as_str())
    .bind(&grant.scope)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if removed == 0 {
        return Err(AuthError::Invalid(format!(
            "`{name}` does not have the role {grant}; see `envline user list`"
        )));
    }
    audit::append(
        &mut tx,
        &[admin_event(
            actor,
            "role_removed",
            format!("`{name}` no longer acts as {grant}"),
            json!({ "user": name, "role": grant.role.as_str(), "scope": grant.scope }),
        )],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Every user with their roles (`role` or `role:glob`).
pub async fn users(pool: &SqlitePool) -> Result<Vec<(String, Vec<String>)>, AuthError> {
    let rows: Vec<(String, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT u.name, r.role, r.scope FROM users u LEFT JOIN user_roles r ON r.user_id = u.id ORDER BY u.name, r.role, r.scope",
    )
    .fetch_all(pool)
    .await?;
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

/// A token as listed: never the token itself.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TokenInfo {
    pub id: i64,
    pub user: String,
    pub label: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

/// The tokens of a user (or of everyone).
pub async fn tokens(pool: &SqlitePool, user: Option<&str>) -> Result<Vec<TokenInfo>, AuthError> {
    Ok(sqlx::query_as(
        "SELECT t.id, u.name AS user, t.label, t.created_at, t.revoked_at FROM api_tokens t JOIN users u ON u.id = t.user_id
         WHERE (?1 IS NULL OR u.name = ?1) ORDER BY t.id",
    )
    .bind(user)
    .fetch_all(pool)
    .await?)
}

/// Creates an API token for a user; returns the token, which is stored only
/// as a digest. Audited (without the token).
pub async fn create_token(
    pool: &SqlitePool,
    actor: &str,
    user: &str,
    label: &str,
) -> Result<String, AuthError> {
    let mut tx = super::store::begin(pool).await?;
    let found: Option<(i64,)> = sqlx::query_as("SELECT id FROM users WHERE name = ?")
        .bind(user)
        .fetch_optional(&mut *tx)
        .await?;
    let Some((user_id,)) = found else {
        return Err(AuthError::UnknownUser(user.to_owned()));
    };
    let token = new_secret("envl_");
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO api_tokens (user_id, digest, label, created_at) VALUES (?, ?, ?, ?) RETURNING id",
    )
    .bind(user_id)
    .bind(digest(&token))
    .bind(label)
    .bind(super::store::now())
    .fetch_one(&mut *tx)
    .await?;
    audit::append(
        &mut tx,
        &[admin_event(
            actor,
            "token_created",
            format!("token {id} for `{user}` ({label})"),
            json!({ "user": user, "token": id, "label": label }),
        )],
    )
    .await?;
    tx.commit().await?;
    Ok(token)
}

/// Revokes a token by its id (as `envline token list` shows it); audited.
pub async fn revoke_token(pool: &SqlitePool, actor: &str, id: i64) -> Result<(), AuthError> {
    let mut tx = super::store::begin(pool).await?;
    let found: Option<(String, Option<String>)> = sqlx::query_as(
        "SELECT u.name, t.revoked_at FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.id = ?",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((user, revoked)) = found else {
        return Err(AuthError::Invalid(format!(
            "there is no token {id}; see `envline token list`"
        )));
    };
    if revoked.is_some() {
        return Err(AuthError::Invalid(format!("token {id} is already revoked")));
    }
    sqlx::query("UPDATE api_tokens SET revoked_at = ? WHERE id = ?")
        .bind(super::store::now())
        .bind(id)
        .execute(&mut *tx)
        .await?;
    audit::append(
        &mut tx,
        &[admin_event(
            actor,
            "token_revoked",
            format!("token {id} of `{user}`"),
            json!({ "user": user, "token": id }),
        )],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

async fn principal_of(
    pool: &SqlitePool,
    user_id: i64,
    name: String,
) -> Result<Principal, sqlx::Error> {
    let roles: Vec<(String, String)> =
        sqlx::query_as("SELECT role, scope FROM user_roles WHERE user_id = ?")
            .bind(user_id)
            .fetch_all(pool)
            .await?;
    let grants = roles
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
    pool: &SqlitePool,
    token: &str,
) -> Result<Option<Principal>, sqlx::Error> {
    let found: Option<(i64, String)> = sqlx::query_as(
        "SELECT u.id, u.name FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.digest = ? AND t.revoked_at IS NULL",
    )
    .bind(digest(token))
    .fetch_optional(pool)
    .await?;
    match found {
        Some((id, name)) => Ok(Some(principal_of(pool, id, name).await?)),
        None => Ok(None),
    }
}

/// Checks a password and opens a session; returns the cookie value.
pub async fn login(
    pool: &SqlitePool,
    user: &str,
    password: &str,
    hours: i64,
) -> Result<Option<String>, sqlx::Error> {
    let found: Option<(i64, Option<String>)> =
        sqlx::query_as("SELECT id, password_hash FROM users WHERE name = ?")
            .bind(user)
            .fetch_optional(pool)
            .await?;
    let Some((user_id, Some(hash))) = found else {
        // Spend the same effort for unknown users, so timing does not tell who exists.
        let _ = verify_password(
            password,
            "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$9sTbSlTio3Biev89thdrlKKiCaYsjjYVJxGAL3swxpQ",
        );
        return Ok(None);
    };
    if !verify_password(password, &hash) {
        return Ok(None);
    }
    let secret = new_secret("");
    let expires = (chrono::Utc::now() + chrono::Duration::hours(hours))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    sqlx::query(
        "INSERT INTO sessions (digest, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
    )
    .bind(digest(&secret))
    .bind(user_id)
    .bind(super::store::now())
    .bind(expires)
    .execute(pool)
    .await?;
    Ok(Some(secret))
}

/// The user of a session cookie, if the session is live.
pub async fn principal_for_session(
    pool: &SqlitePool,
    secret: &str,
) -> Result<Option<Principal>, sqlx::Error> {
    let found: Option<(i64, String)> = sqlx::query_as(
        "SELECT u.id, u.name FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.digest = ? AND s.expires_at > ?",
    )
    .bind(digest(secret))
    .bind(super::store::now())
    .fetch_optional(pool)
    .await?;
    match found {
        Some((id, name)) => Ok(Some(principal_of(pool, id, name).await?)),
        None => Ok(None),
    }
}

/// Ends a session.
pub async fn logout(pool: &SqlitePool, secret: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM sessions WHERE digest = ?")
        .bind(digest(secret))
        .execute(pool)
        .await?;
    Ok(())
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
