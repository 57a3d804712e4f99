//! The Incident page: hotfix mode's plan, start, progress, resolve and merge back.

use envline_api::{HotfixPlan, HotfixStatus, IncidentRecord, IncidentView, Viewer};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// The running incident (if any), past incidents, and what the wizard offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentPage {
    pub current: Option<HotfixStatus>,
    pub incidents: Vec<IncidentRecord>,
    /// Environments a hotfix can start from, production (protected) first.
    pub environments: Vec<(String, bool)>,
    pub viewer: Viewer,
    pub can_run: bool,
    pub now: i64,
}

/// Hotfix mode as it stands.
#[server(prefix = "/fn", endpoint = "incident")]
pub async fn get_incident_page() -> Result<IncidentPage, AppError> {
    use envline_engine::auth::Permission;
    use envline_engine::{caller::Access, ops};
    let (engine, who) = super::server::caller(Access::Read).await?;
    let (current, incidents) = super::server::read(ops::hotfix_status(&engine, &who)).await?;
    let mut environments: Vec<(String, bool)> = engine
        .config
        .pipeline
        .environments()
        .iter()
        .map(|e| (e.name.clone(), e.protected))
        .collect();
    environments.sort_by_key(|(_, protected)| !protected);
    Ok(IncidentPage {
        current,
        incidents,
        environments,
        can_run: who.can(Permission::Hotfix, None),
        viewer: engine.viewer(&who),
        now: chrono::Utc::now().timestamp(),
    })
}

/// What starting hotfix mode would do. Moves nothing.
#[server(prefix = "/fn", endpoint = "hotfix_plan")]
pub async fn plan_hotfix(incident: String, from: String) -> Result<HotfixPlan, AppError> {
    use envline_engine::{caller::Access, ops};
    let (engine, who) = super::server::caller(Access::Read).await?;
    super::server::read(ops::hotfix_plan(&engine, &who, incident.trim(), &from)).await
}

/// Starts hotfix mode; `keep` lists production environments left where they are.
#[server(prefix = "/fn", endpoint = "start_hotfix")]
pub async fn start_hotfix(
    incident: String,
    from: String,
    reason: String,
    keep: Option<Vec<String>>,
) -> Result<IncidentView, AppError> {
    use envline_api::HotfixInput;
    use envline_engine::{caller::Access, ops};
    let (engine, who) = super::server::caller(Access::Change).await?;
    let input = HotfixInput {
        incident: incident.trim().to_owned(),
        from,
        reason: Some(reason),
        keep: keep.unwrap_or_default(),
    };
    super::server::run(async move { ops::start_hotfix(&engine, &who, input).await }).await
}

/// Resolves the incident once the fix is in production.
#[server(prefix = "/fn", endpoint = "resolve_hotfix")]
pub async fn resolve_hotfix(incident: String) -> Result<IncidentView, AppError> {
    use envline_engine::{caller::Access, ops};
    let (engine, who) = super::server::caller(Access::Change).await?;
    super::server::run(async move { ops::resolve_hotfix(&engine, &who, &incident).await }).await
}

/// Merges the fix back into main; a conflict comes back with its report.
#[server(prefix = "/fn", endpoint = "merge_back")]
pub async fn merge_back(incident: String) -> Result<IncidentView, AppError> {
    use envline_engine::{caller::Access, ops};
    let (engine, who) = super::server::caller(Access::Change).await?;
    super::server::run(async move { ops::merge_back(&engine, &who, &incident).await }).await
}
