//! The HTTP API v1 (docs/design.md §7), one module per resource, each with its
//! own `router()`. Handlers are thin: they resolve the caller, parse the
//! input, call the engine and answer `{"error": {code, message, details}}`
//! when it refuses. Each handler carries its OpenAPI description
//! (`#[utoipa::path]`) and is routed with `routes!()`, so the document served
//! at `/api/v1/openapi.json` lists exactly the routes there are.

mod admin;
mod audit;
mod environments;
pub(crate) mod error;
mod extract;
mod holds;
mod hotfixes;
mod insights;
mod me;
mod notifications;
mod openapi;
mod promotions;
mod resets;
mod system;
mod verifications;
mod webhooks;

use app::state::AppState;
use axum::extract::{DefaultBodyLimit, Path};
use axum::http::StatusCode;
use axum::{Extension, Router};
use envline_api::ErrorCode;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

pub use error::ApiError;
pub use system::{install_metrics, metrics_middleware};

/// Every API route, plus JSON answers for unknown paths and wrong methods,
/// and the OpenAPI document describing them.
pub fn routes() -> Router<AppState> {
    let (router, document) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(system::router())
        .merge(environments::router())
        .merge(promotions::router())
        .merge(verifications::router())
        .merge(resets::router())
        .merge(holds::router())
        .merge(hotfixes::router())
        .merge(audit::router())
        .merge(insights::router())
        .merge(admin::router())
        .merge(me::router())
        .merge(notifications::router())
        .merge(webhooks::router())
        .merge(openapi::router())
        .split_for_parts();
    router
        .route("/api/v1/{*rest}", axum::routing::any(unknown))
        .method_not_allowed_fallback(wrong_method)
        .layer(Extension(openapi::Document::new(&document)))
        .layer(DefaultBodyLimit::disable())
}

async fn wrong_method(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::MethodNotAllowed,
        format!(
            "{} does not take {method}; GET /api/v1/openapi.json lists the methods of each endpoint",
            uri.path()
        ),
    )
}

async fn unknown(Path(rest): Path<String>) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorCode::NotFound,
        format!("no API endpoint /api/v1/{rest}; GET /api/v1/openapi.json lists them"),
    )
}
