//! The built site (wasm, js, css, public assets), embedded in the release
//! binary by `build.rs`, so a deployment is one file. Served from memory
//! with an ETag, gzip or brotli as the browser accepts, and `no-cache`: the
//! file names carry no hash, so browsers ask again on each load and get a
//! 304 until an upgrade changes the files.

use std::collections::HashSet;
use std::sync::LazyLock;

use axum::Router;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use memory_serve::CacheControl;
use tokio::sync::OnceCell;
use tower::ServiceExt;

/// The paths of the embedded files (`/pkg/envline.wasm`, `/favicon.svg`, …).
static ROUTES: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    memory_serve::load!()
        .manifest()
        .iter()
        .map(|(route, _)| route)
        .collect()
});

/// The files, prepared for serving (decompressed, gzipped) when the first
/// one is asked for rather than at start-up: a server that only answers
/// the API never pays for it.
static FILES: OnceCell<Router> = OnceCell::const_new();

/// Whether the binary carries a built site. Without one the API works, and
/// the pages come without their script and style.
pub fn embedded() -> bool {
    ROUTES.iter().any(|route| route.starts_with("/pkg/"))
}

/// Middleware: answers a request for an embedded file, passes on the rest.
pub async fn serve_embedded(request: Request, next: Next) -> Response {
    if !ROUTES.contains(request.uri().path()) {
        return next.run(request).await;
    }
    let files = FILES
        .get_or_init(|| async {
            tokio::task::spawn_blocking(|| {
                memory_serve::load!()
                    .index_file(None)
                    .cache_control(CacheControl::NoCache)
                    .html_cache_control(CacheControl::NoCache)
                    .into_router()
            })
            .await
            .expect("preparing the embedded site panicked")
        })
        .await;
    match files.clone().oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
    .into_response()
}
