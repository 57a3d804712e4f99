//! Server functions the pages call. Thin, like the REST handlers: resolve
//! the caller (session cookie, checked for same origin when it changes
//! something), call the engine, return its typed error.

pub mod admin;
pub mod approvals;
pub mod audit;
pub mod environment;
pub mod incident;
pub mod insights;
pub mod line;
pub mod pipeline;
pub mod session;

#[cfg(feature = "ssr")]
mod server {
    use std::sync::Arc;

    use leptos::prelude::*;

    use crate::error::AppError;
    use crate::state::AppState;
    use envline_engine::auth::Principal;
    use envline_engine::caller::Access;
    use envline_engine::{Engine, EngineError};

    /// The request's headers, as leptos_axum hands them to server functions.
    pub fn headers() -> http::HeaderMap {
        use_context::<http::request::Parts>()
            .map(|p| p.headers)
            .unwrap_or_default()
    }

    /// The engine, and who is calling for `access`.
    pub async fn caller(access: Access) -> Result<(Arc<Engine>, Principal), AppError> {
        let state = expect_context::<AppState>();
        let who = state
            .engine
            .people()
            .caller(&headers(), access)
            .await
            .map_err(refuse)?;
        Ok((state.engine, who))
    }

    /// Runs a change in a task of its own (see [`Engine::detached`]).
    pub async fn run<T: Send + 'static>(
        op: impl Future<Output = Result<T, EngineError>> + Send + 'static,
    ) -> Result<T, AppError> {
        Engine::detached(op).await.map_err(refuse)
    }

    /// Runs a read.
    pub async fn read<T>(op: impl Future<Output = Result<T, EngineError>>) -> Result<T, AppError> {
        op.await.map_err(refuse)
    }

    /// A refusal, answered with its HTTP status when the page called the
    /// server function with `fetch` (the default would be 500). Not for a
    /// form posted without JavaScript (leptos redirects back with the error),
    /// nor while a page renders on the server (its own status stays).
    pub fn refuse(error: impl Into<AppError>) -> AppError {
        let error = error.into();
        let parts = use_context::<http::request::Parts>();
        let called = parts
            .as_ref()
            .is_some_and(|p| p.uri.path().starts_with("/fn/"));
        let form_post = parts
            .as_ref()
            .and_then(|p| p.headers.get(http::header::ACCEPT))
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/html"));
        if called
            && !form_post
            && let (Some(response), Ok(status)) = (
                use_context::<leptos_axum::ResponseOptions>(),
                http::StatusCode::from_u16(error.status),
            )
        {
            response.set_status(status);
        }
        error
    }
}
