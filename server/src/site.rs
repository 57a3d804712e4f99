//! The built site (wasm, js, css, public assets), embedded in the release
//! binary by `build.rs`, so a deployment is one file. Served from memory
//! with an ETag, gzip or brotli as the browser accepts, and `no-cache`: the
//! file names carry no hash, so browsers ask again on each load and get a
//! 304 until an upgrade changes the files.

use std::collections::HashSet;
use std::sync::{LazyLock, OnceLock};

use axum::Router;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use memory_serve::CacheControl;
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
/// the API never pays for it. Prepared once, on a blocking thread that
/// finishes even if the request that started it goes away (memory-serve
/// keeps what it prepares for the life of the process).
static FILES: OnceLock<Router> = OnceLock::new();

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
    let files = match FILES.get() {
        Some(files) => files.clone(),
        None => tokio::task::spawn_blocking(|| {
            FILES
                .get_or_init(|| {
                    memory_serve::load!()
                        .index_file(None)
                        .cache_control(CacheControl::NoCache)
                        .html_cache_control(CacheControl::NoCache)
                        .into_router()
                })
                .clone()
        })
        .await
        .expect("preparing the embedded site panicked"),
    };
    match files.oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
    .into_response()
}
