//! Start-up: the engine, the background refresh and auto-promotion, the router.

use std::sync::Arc;
use std::time::Duration;

use app::state::AppState;
use app::{App, shell};
use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use envline_engine::caller::Access;
use envline_engine::config::Config;
use envline_engine::{Engine, ops};
use leptos::config::LeptosOptions;
use leptos_axum::{LeptosRoutes, generate_route_list};

/// Builds the LeptosOptions from the configuration (and cargo-leptos's
/// variables when it runs us), so `envline serve` works outside cargo-leptos.
fn leptos_options(config: &Config) -> LeptosOptions {
    let site_root = std::env::var("LEPTOS_SITE_ROOT")
        .unwrap_or_else(|_| config.server.site_root.to_string_lossy().into_owned());
    LeptosOptions::builder()
        .output_name(std::env::var("LEPTOS_OUTPUT_NAME").unwrap_or_else(|_| "envline".into()))
        .site_root(site_root)
        .site_pkg_dir(std::env::var("LEPTOS_SITE_PKG_DIR").unwrap_or_else(|_| "pkg".into()))
        .site_addr(config.server.listen)
        .build()
}

/// Builds the whole application router for an engine.
pub fn router(engine: Arc<Engine>) -> Router {
    let leptos_options = leptos_options(&engine.config);
    let state = AppState {
        leptos_options,
        engine,
    };
    let routes = generate_route_list(App);
    Router::new()
        .merge(crate::rest::routes())
        .merge(crate::sso::routes())
        .leptos_routes_with_context(&state, routes, || {}, {
            let options = state.leptos_options.clone();
            move || shell(options.clone())
        })
        // Not a page, the API or an embedded file: files in `site_root`
        // if any, else the "No such page" page.
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        .layer(axum::middleware::from_fn(crate::site::serve_embedded))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            sign_in_first,
        ))
        .layer(axum::middleware::from_fn(crate::rest::metrics_middleware))
        .with_state(state)
}

/// Paths anyone may load: sign-in (with a password or single sign-on), the API (which answers 401 itself), the
/// server functions (which check the caller themselves), the built site.
const OPEN_PATHS: &[&str] = &[
    "/login",
    "/auth/oidc/",
    "/api/",
    "/fn/",
    "/pkg/",
    "/healthz",
    "/readyz",
    "/metrics",
    "/favicon.svg",
];

/// With `auth.anonymous_read = false`, a page asked for without a session
/// redirects to the sign-in page, which comes back here afterwards.
async fn sign_in_first(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let open = OPEN_PATHS
        .iter()
        .any(|p| path == p.trim_end_matches('/') || path.starts_with(p));
    if state.engine.config.auth.anonymous_read || open {
        return next.run(request).await;
    }
    if state
        .engine
        .people()
        .caller(request.headers(), Access::Read)
        .await
        .is_ok()
    {
        return next.run(request).await;
    }
    let back = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let target = format!("/login?next={}", urlencoding(back));
    Redirect::to(&target).into_response()
}

/// Percent-encodes a path for a query value.
fn urlencoding(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// Serves until Ctrl-C or SIGTERM.
pub async fn serve(config: Config) -> Result<(), String> {
    let listen = config.server.listen;
    if !crate::site::embedded() && !config.server.site_root.join("pkg").exists() {
        tracing::warn!(
            "this binary carries no built site and {} has none (build it with `make build`); the API works, the pages will lack style and interactivity",
            config.server.site_root.display()
        );
    }
    crate::rest::install_metrics();
    let engine = Engine::start(config).await?;
    spawn_background(engine.clone());
    let stopping = engine.clone();
    use axum::serve::ListenerExt;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?
        // Streamed answers (exports, live events) go out in several writes:
        // without TCP_NODELAY the last one waits for the client's delayed ACK (40 ms).
        .tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!("cannot set TCP_NODELAY: {e}");
            }
        });
    eprintln!("envline: serving http://{listen}");
    axum::serve(
        listener,
        router(engine).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown().await;
        // Live streams end, so the server can.
        stopping.changes().stop();
    })
    .await
    .map_err(|e| e.to_string())
}

/// The work that runs besides requests. With replicas on one database, the
/// work that must run once (notification delivery, auto-promotion, the
/// timed refresh) runs on the elected leader only, and moves to another
/// replica when it dies; the anchor and asked-for refreshes run where the
/// change or the request was.
fn spawn_background(engine: Arc<Engine>) {
    tokio::spawn(engine.cluster().clone().run_election());
    // Other replicas' changes, and this one's for them.
    tokio::spawn(engine.clone().run_feed());
    let notifications = engine.notifications().clone();
    tokio::spawn(
        engine
            .cluster()
            .clone()
            .while_leading(move || envline_engine::notify::deliver_forever(notifications.clone())),
    );
    // Timed refreshes and those webhooks ask for, one at a time.
    tokio::spawn(engine.clone().run_refresher());
    // The audit anchor of what branch moves record, just after them.
    tokio::spawn(engine.clone().run_anchorer());
    tokio::spawn(async move {
        let mut leadership = engine.cluster().leadership();
        loop {
            let leads = *leadership.borrow_and_update();
            let retry = if !leads {
                None
            } else {
                match ops::auto_promote(&engine).await {
                    Ok(retry) => retry,
                    Err(e) => {
                        tracing::warn!("auto-promotion failed: {e}");
                        None
                    }
                }
            };
            // Woken by a change, when a failed push is due again, or when
            // this replica comes to lead (what waited runs at once).
            let due = async {
                match retry {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = engine.changes().auto_promotion_due() => {}
                _ = due => {}
                _ = leadership.changed() => {}
            }
            // Let bursts of changes settle into one pass.
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
