//! The pipeline page's reads and actions: where every environment stands,
//! previews, promote, roll back, mark tested, hold, release, realign.

use envline_api::{
    AuditEventView, HoldKind, HoldView, PipelineView, PromotionPreview, PromotionView,
    RollbackPlan, VerificationStatus, VerificationView, Viewer,
};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// The pipeline, who is looking, and the server's clock (so ages render the
/// same on the server and in the browser).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelinePage {
    pub pipeline: PipelineView,
    pub viewer: Viewer,
    pub now: i64,
}

/// Splits a comma-separated list of environment names or globs.
pub fn split_names(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// An empty form field means "not given".
#[cfg(feature = "ssr")]
fn given(text: Option<String>) -> Option<String> {
    text.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty())
}

/// Where every environment stands.
#[server(prefix = "/fn", endpoint = "pipeline")]
pub async fn get_pipeline() -> Result<PipelinePage, AppError> {
    use envline_engine::caller::Access;
    let (engine, who) = super::server::caller(Access::Read).await?;
    let pipeline = super::server::read(engine.views().pipeline()).await?;
    Ok(PipelinePage {
        pipeline: (*pipeline).clone(),
        viewer: engine.viewer(&who),
        now: chrono::Utc::now().timestamp(),
    })
}

/// What promoting `environments` (comma-separated names or globs) from their
/// `from` (or from `source`) would do. Moves nothing.
#[server(prefix = "/fn", endpoint = "preview_promotion")]
pub async fn preview_promotion(
    environments: String,
    source: Option<String>,
) -> Result<Vec<PromotionPreview>, AppError> {
    use envline_api::PromoteInput;
    use envline_engine::{caller::Access, ops};
    let (engine, who) = super::server::caller(Access::Read).await?;
    let input = PromoteInput {
        environments: Some(split_names(&environments)),
        from: given(source),
        ..Default::default()
    };
    super::server::read(ops::preview_promotion(&engine, &who, input)).await
}

/// Promotes `environments` (comma-separated) together: each is done, or
/// awaits approval; when any may not, nothing moves.
#[server(prefix = "/fn", endpoint = "promote")]
pub async fn promote(
    environments: String,
    source: Option<String>,
    commit: Option<String>,
    reason: Option<String>,
) -> Result<Vec<PromotionView>, AppError> {
    use envline_api::PromoteInput;
    use envline_engine::{caller::Access, ops};
    let (engine, who) = super::server::caller(Access::Change).await?;
    let input = PromoteInput {
        environments: Some(split_names(&environments)),
        from: given(source),
        commit: given(commit),
        reason: given(reason),
        environment: None,
    };
    super::server::run(async move { ops::promote(&engine, &who, input).await }).await
}

/// What rolling back `environments` (comma-separated) would do. Moves nothing.
#[server(prefix = "/fn", endpoint = "preview_rollback")]
pub async fn preview_rollback(environments: String) -> Result<Vec<RollbackPlan>, AppError> {
    use envline_api::RollbackInput;
    use envline_engine::{caller::Access, ops};
    let (engine, who) = super::server::caller(Access::Read).await?;
    let input = RollbackInput {
        environments: split_names(&environments),
        ..Default::default()
    };
    super::server::read(ops::preview_rollback(&engine, &who, input)).await
}

/// Rolls `environments` (comma-separated) back to their previous positions,
/// together, and holds their auto-promotion (S3).
#[server(prefix = "/fn", endpoint = "rollback")]
pub async fn rollback(
    environments: String,
    reason: Option<String>,
) -> Result<Vec<AuditEventView>, AppError> {
    use envline_api::RollbackInput;
    use envline_engine::{caller::Access, ops};
    let (engine, who) = super::server::caller(Access::Change).await?;
    let input = RollbackInput {
        environments: split_names(&environments),
        to: None,
        reason: given(reason),
    };
    super::server::run(async move { ops::rollback(&engine, &who, input).await }).await
}

/// Records that `commit` passed (or failed) its tests in `environment` (I3).
#[server(prefix = "/fn", endpoint = "verify")]
pub async fn verify(
    environment: String,
    commit: String,
    status: VerificationStatus,
    url: Option<String>,
    summary: Option<String>,
) -> Result<VerificationView, AppError> {
    use envline_api::VerifyInput;
    use envline_engine::{caller::Access, ops};
    let (engine, who) = super::server::caller(Access::Change).await?;
    let input = VerifyInput {
        environment,
        commit,
        status,
        url: given(url),
        summary: given(summary),
    };
    super::server::run(async move { ops::verify(&engine, &who, input).await }).await
}

/// Holds `environments` (comma-separated names or globs), until released or
/// until `ends_at`; with `starts_at` too, a freeze for that window (UTC).
#[server(prefix = "/fn", endpoint = "hold")]
pub async fn hold(
    environments: String,
    reason: String,
    kind: Option<HoldKind>,
    ends_at: Option<String>,
    starts_at: Option<String>,
) -> Result<Vec<HoldView>, AppError> {
    use envline_api::HoldInput;
    use envline_engine::{caller::Access, ops};
    let (engine, who) = super::server::caller(Access::Change).await?;
    let input = HoldInput {
        environments: split_names(&environments),
        reason,
        kind: kind.unwrap_or(HoldKind::Promotion),
        starts_at: given(starts_at),
        ends_at: given(ends_at),
    };
    super::server::run(async move { ops::hold(&engine, &who, input).await }).await
}

/// Releases hold `id`.
#[server(prefix = "/fn", endpoint = "release")]
pub async fn release(id: i64) -> Result<(), AppError> {
    use envline_engine::{caller::Access, ops};
    let (engine, who) = super::server::caller(Access::Change).await?;
    super::server::run(async move { ops::release(&engine, &who, id, None).await }).await
}

/// Brings an environment that is off the line back to its `from` (S5).
#[server(prefix = "/fn", endpoint = "realign")]
pub async fn realign(
    environment: String,
    reason: Option<String>,
) -> Result<PromotionView, AppError> {
    use envline_engine::{caller::Access, ops};
    let (engine, who) = super::server::caller(Access::Change).await?;
    let reason = given(reason);
    super::server::run(
        async move { ops::realign(&engine, &who, &environment, reason.as_deref()).await },
    )
    .await
}
