//! The Line page's read: one page of the root's first-parent line with every
//! environment on it, and the environments off it.

use envline_api::{EnvironmentView, TimelinePage, Viewer};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// Commits on one page of the line.
pub const LINE_PAGE: usize = 100;

/// A page of the line, the environments (for their badges and the legend),
/// who is looking, and the server's clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinePage {
    pub root: String,
    pub timeline: TimelinePage,
    /// Every environment but the root, in pipeline order.
    pub environments: Vec<EnvironmentView>,
    pub viewer: Viewer,
    pub now: i64,
}

/// The line from `position` down (0 = the oldest commit), or from the tip.
#[server(prefix = "/fn", endpoint = "line")]
pub async fn get_line(position: Option<usize>) -> Result<LinePage, AppError> {
    use super::server::read;
    use envline_api::TimelineStart;
    use envline_engine::caller::Access;
    let (engine, who) = super::server::caller(Access::Read).await?;
    let start = match position {
        Some(p) => TimelineStart::At(p),
        None => TimelineStart::Tip,
    };
    let timeline = read(engine.views().timeline(LINE_PAGE, start)).await?;
    let pipeline = read(engine.views().pipeline()).await?;
    Ok(LinePage {
        root: pipeline.root.clone(),
        timeline,
        environments: pipeline
            .environments
            .iter()
            .filter(|e| !e.is_root)
            .cloned()
            .collect(),
        viewer: engine.viewer(&who),
        now: chrono::Utc::now().timestamp(),
    })
}
