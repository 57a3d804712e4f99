//! Reading the pipeline for the home page.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::model::PipelineView;

/// The pipeline plus the server's clock, so ages render the same on the
/// server and in the browser.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelinePage {
    pub pipeline: PipelineView,
    pub now: i64,
}

/// Where every environment stands.
#[server(prefix = "/fn")]
pub async fn get_pipeline() -> Result<PipelinePage, ServerFnError> {
    let state = expect_context::<crate::state::AppState>();
    if !state.engine.config.auth.anonymous_read {
        return Err(ServerFnError::new(
            "this Envline does not allow anonymous reading (auth.anonymous_read = false); read it over the API with a token",
        ));
    }
    let pipeline = state
        .engine
        .pipeline()
        .await
        .map_err(|e| ServerFnError::new(e.to_string()))?;
    Ok(PipelinePage {
        pipeline: (*pipeline).clone(),
        now: chrono::Utc::now().timestamp(),
    })
}
