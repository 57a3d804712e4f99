//! The Insights page's read: delivery figures per environment over a
//! window (the same as `GET /api/v1/insights`).

use envline_api::Insights;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// The figures asked for, with what the filters can choose from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InsightsPage {
    /// One per environment shown, in pipeline order.
    pub figures: Vec<Insights>,
    /// Every environment, for the filter.
    pub environments: Vec<String>,
}

/// Figures of `environment` (every one when `None`) since `since` (a span
/// back from now like `30d`, a date or a time; 30 days when `None`).
#[server(prefix = "/fn", endpoint = "insights")]
pub async fn get_insights(
    environment: Option<String>,
    since: Option<String>,
) -> Result<InsightsPage, AppError> {
    use envline_engine::caller::Access;
    use envline_engine::insights::Window;
    let (engine, _who) = super::server::caller(Access::Read).await?;
    let window = Window::parse(since.as_deref(), None, chrono::Utc::now()).map_err(|m| {
        super::server::refuse(AppError::new(422, envline_api::ErrorCode::BadWindow, m))
    })?;
    let figures =
        super::server::read(engine.delivery().insights(environment.as_deref(), &window)).await?;
    Ok(InsightsPage {
        figures,
        environments: engine.config.pipeline.names(),
    })
}
