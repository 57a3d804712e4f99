//! The Admin page's reads and actions: people, their roles and tokens, and
//! the holds and freezes in force. Admin role only.

use envline_api::{HoldView, NotificationView, PersonView};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// Everything the Admin page shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminPage {
    pub people: Vec<PersonView>,
    /// Holds and freezes not released (freezes that start later included).
    pub holds: Vec<HoldView>,
    pub environments: Vec<String>,
    /// How many `[[notify]]` targets are configured.
    pub notify_targets: usize,
    /// Notifications being retried, newest first (at most 20).
    pub failing_notifications: Vec<NotificationView>,
    /// What keeps the audit log from being anchored in the repository (a
    /// rewound anchor, or a remote that keeps refusing it), if anything.
    #[serde(default)]
    pub anchor_problem: Option<String>,
}

/// People and holds, for an admin.
#[server(prefix = "/fn", endpoint = "admin")]
pub async fn get_admin() -> Result<AdminPage, AppError> {
    use super::server::read;
    use envline_engine::caller::Access;
    let (engine, who) = super::server::caller(Access::Read).await?;
    let people = read(engine.people().list(&who)).await?;
    Ok(AdminPage {
        people,
        holds: read(engine.holds()).await?,
        environments: engine.config.pipeline.names(),
        notify_targets: engine.config.notify.len(),
        failing_notifications: read(engine.notifications().failing(20)).await?,
        anchor_problem: engine.anchor_problem(),
    })
}

/// Adds a person with roles (comma- or space-separated) and, if given, a password.
#[server(prefix = "/fn", endpoint = "add_person")]
pub async fn add_person(
    name: String,
    roles: String,
    password: Option<String>,
) -> Result<String, AppError> {
    use envline_engine::caller::Access;
    let (engine, who) = super::server::caller(Access::Change).await?;
    let roles: Vec<String> = roles
        .split([',', ' '])
        .filter(|r| !r.trim().is_empty())
        .map(str::to_owned)
        .collect();
    let password = password.filter(|p| !p.is_empty());
    super::server::run(async move {
        engine
            .people()
            .add_person(&who, &name, &roles, password.as_deref())
            .await
            .map(|()| name)
    })
    .await
}

/// Grants `name` a role (`ROLE` or `ROLE:GLOB`).
#[server(prefix = "/fn", endpoint = "grant_role")]
pub async fn grant_role(name: String, role: String) -> Result<String, AppError> {
    use envline_engine::caller::Access;
    let (engine, who) = super::server::caller(Access::Change).await?;
    super::server::run(async move {
        engine
            .people()
            .grant_role(&who, &name, &role)
            .await
            .map(|()| format!("{name} may now act as {}", role.trim()))
    })
    .await
}

/// Takes a role from `name`.
#[server(prefix = "/fn", endpoint = "remove_role")]
pub async fn remove_role(name: String, role: String) -> Result<String, AppError> {
    use envline_engine::caller::Access;
    let (engine, who) = super::server::caller(Access::Change).await?;
    super::server::run(async move {
        engine
            .people()
            .remove_role(&who, &name, &role)
            .await
            .map(|()| format!("{name} no longer acts as {role}"))
    })
    .await
}

/// A new token for `user`, returned this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewToken {
    pub user: String,
    pub label: String,
    pub token: String,
}

/// Creates an API token for `user`.
#[server(prefix = "/fn", endpoint = "create_token")]
pub async fn create_token(user: String, label: String) -> Result<NewToken, AppError> {
    use envline_engine::caller::Access;
    let (engine, who) = super::server::caller(Access::Change).await?;
    super::server::run(async move {
        let token = engine.people().create_token(&who, &user, &label).await?;
        Ok(NewToken {
            user,
            label: label.trim().to_owned(),
            token,
        })
    })
    .await
}

/// Revokes token `id`.
#[server(prefix = "/fn", endpoint = "revoke_token")]
pub async fn revoke_token(id: i64) -> Result<i64, AppError> {
    use envline_engine::caller::Access;
    let (engine, who) = super::server::caller(Access::Change).await?;
    super::server::run(async move { engine.people().revoke_token(&who, id).await.map(|()| id) })
        .await
}

/// Removes `name`: roles, tokens and sessions go, waiting approvals are withdrawn.
#[server(prefix = "/fn", endpoint = "remove_person")]
pub async fn remove_person(name: String) -> Result<String, AppError> {
    use envline_engine::caller::Access;
    let (engine, who) = super::server::caller(Access::Change).await?;
    super::server::run(async move {
        engine.people().remove_person(&who, &name).await.map(|()| {
            format!("{name} is removed: their sessions and tokens no longer work, and their waiting approvals are withdrawn.")
        })
    })
    .await
}

/// Sets `name`'s password; every session of theirs ends.
#[server(prefix = "/fn", endpoint = "reset_password")]
pub async fn reset_password(name: String, password: String) -> Result<String, AppError> {
    use envline_engine::caller::Access;
    let (engine, who) = super::server::caller(Access::Change).await?;
    super::server::run(async move {
        engine
            .people()
            .reset_password(&who, &name, &password)
            .await
            .map(|()| format!("{name} has a new password; every session of theirs has ended."))
    })
    .await
}
