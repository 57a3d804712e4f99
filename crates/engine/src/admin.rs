//! Administration from the browser and the API: people, their roles and
//! their tokens. Every change needs the admin role and is audited (the
//! storage and the audit events are [`auth`]'s, shared with the CLI). A
//! revoked token or a removed role takes effect on the next request.

use envline_api::{ErrorCode, PersonView, TokenView};

use super::EngineError;
use super::auth::{self, AuthError, Grant, Permission, Principal};
use super::people::People;

/// The longest label a token may have.
const MAX_LABEL: usize = 200;

impl From<AuthError> for EngineError {
    fn from(e: AuthError) -> EngineError {
        match e {
            AuthError::Invalid(m) => EngineError::BadInput(m),
            AuthError::NotFound(m) => EngineError::NotFound(m),
            AuthError::AlreadyDone(m) => EngineError::Conflict {
                code: ErrorCode::AlreadyRevoked,
                message: m,
            },
            AuthError::UnknownUser(name) => {
                EngineError::NotFound(format!("there is no user `{name}`; add them first"))
            }
            AuthError::LastAdmin(_) => EngineError::Conflict {
                code: ErrorCode::LastAdmin,
                message: e.to_string(),
            },
            AuthError::Database(e) => EngineError::from(e),
        }
    }
}

/// Parses roles as people write them (`promoter`, `approver:prod-*`).
fn grants(roles: &[String]) -> Result<Vec<Grant>, EngineError> {
    roles
        .iter()
        .map(|r| r.trim())
        .filter(|r| !r.is_empty())
        .map(|r| Grant::parse(r).map_err(EngineError::BadInput))
        .collect()
}

impl People {
    /// Whether a user called `name` exists.
    async fn user_exists(&self, name: &str) -> Result<bool, EngineError> {
        Ok(auth::users(&self.pool)
            .await?
            .iter()
            .any(|(n, _)| n == name))
    }

    /// Every user with their roles and tokens (never the tokens themselves).
    pub async fn list(&self, who: &Principal) -> Result<Vec<PersonView>, EngineError> {
        who.require(Permission::Admin, None)?;
        let tokens = auth::tokens(&self.pool, None).await?;
        Ok(auth::users(&self.pool)
            .await?
            .into_iter()
            .map(|(name, roles)| PersonView {
                tokens: tokens
                    .iter()
                    .filter(|t| t.user == name)
                    .map(|t| TokenView {
                        id: t.id,
                        label: t.label.clone(),
                        created_at: t.created_at.clone(),
                        revoked_at: t.revoked_at.clone(),
                    })
                    .collect(),
                name,
                roles,
            })
            .collect())
    }

    /// Adds a user with roles (and a password to sign in with, if given).
    pub async fn add_person(
        &self,
        who: &Principal,
        name: &str,
        roles: &[String],
        password: Option<&str>,
    ) -> Result<(), EngineError> {
        who.require(Permission::Admin, None)?;
        let name = name.trim();
        if self.user_exists(name).await? {
            return Err(EngineError::Conflict {
                code: ErrorCode::UserExists,
                message: format!("there is already a user `{name}`; grant them roles instead"),
            });
        }
        if password.is_some_and(|p| p.chars().count() < auth::MIN_PASSWORD) {
            return Err(EngineError::BadInput(
                "a password needs at least 8 characters".into(),
            ));
        }
        auth::add_user(&self.pool, &who.user, name, &grants(roles)?, password).await?;
        self.forget_tokens();
        Ok(())
    }

    /// Grants a user a role (`ROLE` or `ROLE:GLOB`).
    pub async fn grant_role(
        &self,
        who: &Principal,
        name: &str,
        role: &str,
    ) -> Result<(), EngineError> {
        who.require(Permission::Admin, None)?;
        if !self.user_exists(name).await? {
            return Err(AuthError::UnknownUser(name.to_owned()).into());
        }
        auth::add_user(
            &self.pool,
            &who.user,
            name,
            &grants(&[role.to_owned()])?,
            None,
        )
        .await?;
        self.forget_tokens();
        Ok(())
    }

    /// Takes a role from a user.
    pub async fn remove_role(
        &self,
        who: &Principal,
        name: &str,
        role: &str,
    ) -> Result<(), EngineError> {
        who.require(Permission::Admin, None)?;
        let grant = Grant::parse(role.trim()).map_err(EngineError::BadInput)?;
        if grant.to_string() == "admin" {
            let admins = auth::users(&self.pool)
                .await?
                .into_iter()
                .filter(|(_, roles)| roles.iter().any(|r| r == "admin"))
                .count();
            if admins <= 1 {
                return Err(EngineError::Conflict {
                    code: ErrorCode::LastAdmin,
                    message: format!(
                        "`{name}` is the only admin: grant admin to someone else first, or nobody could manage people from here"
                    ),
                });
            }
        }
        auth::remove_role(&self.pool, &who.user, name, &grant).await?;
        self.forget_tokens();
        Ok(())
    }

    /// Removes a person: roles, tokens and sessions go, their waiting
    /// approvals are withdrawn, and their live pages close within seconds.
    pub async fn remove_person(&self, who: &Principal, name: &str) -> Result<(), EngineError> {
        who.require(Permission::Admin, None)?;
        if name == who.user {
            return Err(EngineError::Conflict {
                code: ErrorCode::OwnAccount,
                message: "you cannot remove yourself; ask another admin".into(),
            });
        }
        auth::remove_user(&self.pool, &who.user, name).await?;
        self.forget_tokens();
        Ok(())
    }

    /// An admin sets someone's password: every session of theirs ends.
    pub async fn reset_password(
        &self,
        who: &Principal,
        name: &str,
        password: &str,
    ) -> Result<(), EngineError> {
        who.require(Permission::Admin, None)?;
        auth::set_password(&self.pool, &who.user, name, password, None).await?;
        Ok(())
    }

    /// A person changes their own password, proving the current one: every
    /// other session of theirs ends (`keep` is the session they use now).
    pub async fn change_own_password(
        &self,
        who: &Principal,
        current: &str,
        new: &str,
        keep: Option<&str>,
    ) -> Result<u64, EngineError> {
        if who.system || who.user == Principal::anonymous().user {
            return Err(EngineError::Unauthenticated(
                "sign in to change your password".into(),
            ));
        }
        if let Some(provider) = self.sso_name()
            && self.signs_in_with_sso(&who.user).await?
        {
            return Err(EngineError::BadInput(format!(
                "you sign in with {provider}: your password is the identity provider's, changed there; Envline keeps none"
            )));
        }
        if !auth::check_password(&self.pool, &who.user, current).await? {
            return Err(EngineError::Unprocessable {
                code: ErrorCode::WrongPassword,
                message: "the current password is not right; nothing was changed".into(),
            });
        }
        if new == current {
            return Err(EngineError::Unprocessable {
                code: ErrorCode::SamePassword,
                message: "the new password is the current one; choose another".into(),
            });
        }
        Ok(auth::set_password(&self.pool, &who.user, &who.user, new, keep).await?)
    }

    /// Creates an API token for a user: the token is returned this once.
    pub async fn create_token(
        &self,
        who: &Principal,
        user: &str,
        label: &str,
    ) -> Result<String, EngineError> {
        who.require(Permission::Admin, None)?;
        let label = label.trim();
        if label.is_empty() {
            return Err(EngineError::BadInput(
                "give the token a label that says where it is used (like `ci-pipeline`)".into(),
            ));
        }
        if label.chars().count() > MAX_LABEL {
            return Err(EngineError::BadInput(format!(
                "a token's label is at most {MAX_LABEL} characters"
            )));
        }
        Ok(auth::create_token(&self.pool, &who.user, user, label).await?)
    }

    /// Revokes a token: its next request is refused.
    pub async fn revoke_token(&self, who: &Principal, id: i64) -> Result<(), EngineError> {
        who.require(Permission::Admin, None)?;
        auth::revoke_token(&self.pool, &who.user, id).await?;
        self.forget_tokens();
        Ok(())
    }
}
