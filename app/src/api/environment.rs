//! The Environment page's reads and its one action of its own: an
//! environment's story (moves, tests, holds), its next candidate, and
//! cherry-picking a commit onto it (S5) with a preview.

use envline_api::{
    AuditEventView, EnvironmentView, PromotionPreview, PromotionView, VerificationView, Viewer,
};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// How many of an environment's events and verifications the page lists.
pub const STORY_LENGTH: i64 = 100;

/// One environment as its page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentPage {
    pub env: EnvironmentView,
    /// Its audit events (moves, holds, tests, requests), newest first.
    pub history: Vec<AuditEventView>,
    pub verifications: Vec<VerificationView>,
    /// What promoting it from its source would do now.
    pub next: PromotionPreview,
    pub viewer: Viewer,
    pub now: i64,
}

/// The environment called `name`, with its story.
#[server(prefix = "/fn", endpoint = "environment")]
pub async fn get_environment(name: String) -> Result<EnvironmentPage, AppError> {
    use super::server::{read, refuse};
    use envline_api::PromoteInput;
    use envline_engine::audit::AuditFilter;
    use envline_engine::{caller::Access, ops};
    let (engine, who) = super::server::caller(Access::Read).await?;
    let pipeline = read(engine.views().pipeline()).await?;
    let Some(env) = pipeline
        .environments
        .iter()
        .find(|e| e.name == name && !e.is_root)
        .cloned()
    else {
        let known: Vec<&str> = pipeline
            .environments
            .iter()
            .filter(|e| !e.is_root)
            .map(|e| e.name.as_str())
            .collect();
        return Err(refuse(AppError::new(
            404,
            envline_api::ErrorCode::NotFound,
            format!(
                "there is no environment `{name}`; the environments are {}",
                known.join(", ")
            ),
        )));
    };
    let filter = AuditFilter {
        environment: Some(name.clone()),
        ..Default::default()
    };
    let history = read(engine.audit_page(&filter, None, STORY_LENGTH)).await?;
    let verifications = read(engine.verifications_in(&name, STORY_LENGTH)).await?;
    let input = PromoteInput {
        environment: Some(name.clone()),
        ..Default::default()
    };
    let next = read(ops::preview_promotion(&engine, &who, input))
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| {
            AppError::new(
                500,
                envline_api::ErrorCode::Internal,
                "no preview for the environment",
            )
        })?;
    Ok(EnvironmentPage {
        env,
        history,
        verifications,
        next,
        viewer: engine.viewer(&who),
        now: chrono::Utc::now().timestamp(),
    })
}

/// What cherry-picking `commit` onto `environment` would do. Moves nothing.
#[server(prefix = "/fn", endpoint = "preview_cherry_pick")]
pub async fn preview_cherry_pick(
    environment: String,
    commit: String,
) -> Result<PromotionPreview, AppError> {
    use envline_api::CherryPickInput;
    use envline_engine::{caller::Access, ops};
    let (engine, who) = super::server::caller(Access::Read).await?;
    let input = CherryPickInput {
        environment,
        commit: commit.trim().to_owned(),
        reason: None,
    };
    super::server::read(ops::preview_cherry_pick(&engine, &who, &input)).await
}

/// Cherry-picks `commit` onto `environment` (S5): done, or awaiting approval.
#[server(prefix = "/fn", endpoint = "cherry_pick")]
pub async fn cherry_pick(
    environment: String,
    commit: String,
    reason: Option<String>,
) -> Result<PromotionView, AppError> {
    use envline_api::CherryPickInput;
    use envline_engine::{caller::Access, ops};
    let (engine, who) = super::server::caller(Access::Change).await?;
    let input = CherryPickInput {
        environment,
        commit: commit.trim().to_owned(),
        reason: reason.filter(|r| !r.trim().is_empty()),
    };
    super::server::run(async move { ops::cherry_pick(&engine, &who, input).await }).await
}
