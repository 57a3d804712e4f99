//! The Audit page's reads: a filtered page of the log, and the check of the
//! whole chain (run when the auditor asks: it reads every event).

use envline_api::{AuditEventView, ChainCheck};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// Events on one page of the Audit page.
pub const AUDIT_PAGE: i64 = 50;

/// What the auditor filters by; empty fields do not narrow.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditQuery {
    pub environment: Option<String>,
    pub actor: Option<String>,
    pub action: Option<String>,
    /// A UTC time (`2026-11-01T09:30`), a date, or RFC 3339.
    pub since: Option<String>,
    pub until: Option<String>,
    /// Events older than this event id.
    pub before: Option<i64>,
}

impl AuditQuery {
    /// Reads this page of the log.
    pub async fn read(self) -> Result<AuditPage, AppError> {
        get_audit(
            self.environment,
            self.actor,
            self.action,
            self.since,
            self.until,
            self.before,
        )
        .await
    }

    /// The filters as a query string (without `before`), for links and exports.
    pub fn filters(&self) -> String {
        let given: Vec<(&str, &str)> = [
            ("environment", &self.environment),
            ("actor", &self.actor),
            ("action", &self.action),
            ("since", &self.since),
            ("until", &self.until),
        ]
        .into_iter()
        .filter_map(|(k, v)| {
            v.as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(|v| (k, v))
        })
        .collect();
        serde_urlencoded::to_string(given).unwrap_or_default()
    }
}

/// One page of the filtered log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditPage {
    pub events: Vec<AuditEventView>,
    /// `before` for the next (older) page, when there is one.
    pub older: Option<i64>,
}

/// What the filters can choose from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterChoices {
    pub environments: Vec<String>,
    pub actions: Vec<String>,
}

/// A page of the audit log, newest first, filtered (see [`AuditQuery`]).
#[server(prefix = "/fn", endpoint = "audit")]
pub async fn get_audit(
    environment: Option<String>,
    actor: Option<String>,
    action: Option<String>,
    since: Option<String>,
    until: Option<String>,
    before: Option<i64>,
) -> Result<AuditPage, AppError> {
    use super::server::{read, refuse};
    use envline_engine::audit::AuditFilter;
    use envline_engine::caller::Access;
    let (engine, _who) = super::server::caller(Access::Read).await?;
    let filter = AuditFilter::given(environment, actor, action, since, until)
        .map_err(|m| refuse(AppError::new(400, envline_api::ErrorCode::BadInput, m)))?;
    let mut events = read(engine.audit_page(&filter, before, AUDIT_PAGE + 1)).await?;
    let older = if events.len() as i64 > AUDIT_PAGE {
        events.truncate(AUDIT_PAGE as usize);
        events.last().map(|e| e.id)
    } else {
        None
    };
    Ok(AuditPage { events, older })
}

/// The environments and the actions the log holds.
#[server(prefix = "/fn", endpoint = "audit_choices")]
pub async fn audit_choices() -> Result<FilterChoices, AppError> {
    use envline_engine::caller::Access;
    let (engine, _who) = super::server::caller(Access::Read).await?;
    Ok(FilterChoices {
        environments: engine.config.pipeline.names(),
        actions: super::server::read(engine.audit_actions()).await?,
    })
}

/// Checks the whole log: the hash chain, the remote's anchors, the branches.
#[server(prefix = "/fn", endpoint = "audit_check")]
pub async fn check_audit() -> Result<ChainCheck, AppError> {
    use envline_engine::caller::Access;
    let (engine, _who) = super::server::caller(Access::Read).await?;
    super::server::read(engine.audit_check()).await
}
