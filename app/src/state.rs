//! The server's shared state: what REST handlers get through axum's `State`
//! and server functions through Leptos context.

use std::sync::Arc;

use axum::extract::FromRef;
use leptos::config::LeptosOptions;

use envline_engine::Engine;

/// Everything a request handler needs.
#[derive(Clone, FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub engine: Arc<Engine>,
}
