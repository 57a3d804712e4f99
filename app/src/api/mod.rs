//! Server functions the pages call. Thin, like the REST handlers: resolve
//! the caller (session cookie, checked for same origin when it changes
//! something), call the engine, return its typed error.

pub mod approvals;
pub mod pipeline;
pub mod session;

#[cfg(feature = "ssr")]
mod server {
    use std::sync::Arc;

    use leptos::prelude::*;

    use crate::engine::Engine;
    use crate::engine::auth::Principal;
    use crate::engine::caller::Access;
    use crate::error::AppError;
    use crate::state::AppState;

    /// The request's headers, as leptos_axum hands them to server functions.
    pub fn headers() -> http::HeaderMap {
        use_context::<http::request::Parts>()
            .map(|p| p.headers)
            .unwrap_or_default()
    }

    /// The engine, and who is calling for `access`.
    pub async fn caller(access: Access) -> Result<(Arc<Engine>, Principal), AppError> {
        let state = expect_context::<AppState>();
        let who = state.engine.caller(&headers(), access).await?;
        Ok((state.engine, who))
    }

    /// Runs a change in a task of its own (see [`Engine::detached`]).
    pub async fn run<T: Send + 'static>(
        op: impl Future<Output = Result<T, crate::engine::EngineError>> + Send + 'static,
    ) -> Result<T, AppError> {
        Ok(Engine::detached(op).await?)
    }
}
