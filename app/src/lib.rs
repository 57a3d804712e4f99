#![recursion_limit = "512"]
//! Envline's web application: pages, components and server functions. The
//! wire types come from `envline_api`; the server functions call the
//! promotion engine (`envline_engine`, server only, no Leptos).

pub mod api;
pub mod components;
pub mod error;
pub mod pages;
pub mod resource;

#[cfg(feature = "ssr")]
pub mod state;

use leptos::prelude::*;
use leptos_meta::{MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::{
    Lazy, ParamSegment, SsrMode, StaticSegment,
    components::{A, Route, Router, Routes},
};

use api::session::{SignOut, get_session};
use components::live::provide_live_updates;
use pages::{
    AccountRoute, AdminRoute, ApprovalsRoute, AuditRoute, EnvironmentRoute, IncidentRoute,
    InsightsRoute, LineRoute, LoginRoute, pipeline::PipelinePage,
};
use resource::load;

/// The HTML document around the app, rendered on the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <link rel="icon" type="image/svg+xml" href="/favicon.svg"/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body class="bg-slate-50 text-slate-900 antialiased">
                <App/>
            </body>
        </html>
    }
}

/// The application: header, banners, and the pages. Every page is rendered
/// whole on the server (readable without JavaScript), then hydrated.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    let changes = provide_live_updates();
    view! {
        <Stylesheet id="leptos" href="/pkg/envline.css"/>
        <Title text="Envline"/>
        <Router>
            <a href="#main" class="sr-only focus:not-sr-only focus:absolute focus:left-2 focus:top-2 focus:z-50 focus:rounded focus:bg-white focus:px-3 focus:py-2">
                "Skip to the content"
            </a>
            <Header changes/>
            <main id="main" class="mx-auto max-w-screen-2xl px-6 py-6">
                <Routes fallback=|| view! {
                    <p class="text-slate-700">"No such page. "<a class="text-indigo-700 underline" href="/">"Back to the pipeline"</a></p>
                }>
                    <Route path=StaticSegment("") view=PipelinePage ssr=SsrMode::Async/>
                    <Route path=StaticSegment("line") view={Lazy::<LineRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=(StaticSegment("env"), ParamSegment("name")) view={Lazy::<EnvironmentRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=StaticSegment("approvals") view={Lazy::<ApprovalsRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=StaticSegment("audit") view={Lazy::<AuditRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=StaticSegment("insights") view={Lazy::<InsightsRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=StaticSegment("admin") view={Lazy::<AdminRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=StaticSegment("incident") view={Lazy::<IncidentRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=StaticSegment("login") view={Lazy::<LoginRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=StaticSegment("account") view={Lazy::<AccountRoute>::new()} ssr=SsrMode::Async/>
                </Routes>
            </main>
        </Router>
    }
}

/// The header: navigation, who is signed in with their roles, and the
/// banners every page shows (the remote unreachable; hotfix mode).
#[component]
fn Header(changes: components::live::Changes) -> impl IntoView {
    let sign_out = ServerAction::<SignOut>::new();
    // Signing in or out moves to another page: read the session again then.
    let location = leptos_router::hooks::use_location();
    let session = load(
        move || (changes.get(), location.pathname.get()),
        |_| get_session(),
    );
    view! {
        <header class="border-b border-slate-200 bg-white">
            <nav class="mx-auto flex max-w-screen-2xl flex-wrap items-center gap-6 px-6 py-3" aria-label="Main">
                <A href="/" attr:class="text-lg font-bold tracking-tight text-indigo-800">"Envline"</A>
                <A href="/" attr:class="text-sm font-medium text-slate-800 hover:text-indigo-700 aria-[current=page]:underline">"Pipeline"</A>
                <A href="/line" attr:class="text-sm font-medium text-slate-800 hover:text-indigo-700 aria-[current=page]:underline">"Line"</A>
                <A href="/approvals" attr:class="text-sm font-medium text-slate-800 hover:text-indigo-700 aria-[current=page]:underline">
                    "Approvals"
                    <Transition fallback=|| ()>
                        {move || Suspend::new(async move {
                            let waiting = session.await.ok().map(|s| s.waiting_for_me).unwrap_or(0);
                            (waiting > 0).then(|| view! {
                                <span class="ml-1 rounded-full bg-amber-200 px-1.5 text-xs font-semibold text-amber-950" data-testid="waiting">
                                    {waiting}
                                    <span class="sr-only">" waiting for you"</span>
                                </span>
                            })
                        })}
                    </Transition>
                </A>
                <A href="/incident" attr:class="text-sm font-medium text-slate-800 hover:text-indigo-700 aria-[current=page]:underline">"Incident"</A>
                <A href="/audit" attr:class="text-sm font-medium text-slate-800 hover:text-indigo-700 aria-[current=page]:underline">"Audit"</A>
                <A href="/insights" attr:class="text-sm font-medium text-slate-800 hover:text-indigo-700 aria-[current=page]:underline">"Insights"</A>
                <Transition fallback=|| ()>
                    {move || Suspend::new(async move {
                        let admin = session
                            .await
                            .ok()
                            .and_then(|s| s.viewer)
                            .is_some_and(|v| v.roles.iter().any(|r| r == "admin"));
                        admin.then(|| view! {
                            <A href="/admin" attr:class="text-sm font-medium text-slate-800 hover:text-indigo-700 aria-[current=page]:underline">"Admin"</A>
                        })
                    })}
                </Transition>
                <a href="/api/v1/openapi.json" class="text-sm text-slate-700 hover:text-indigo-700" title="The HTTP API, described in OpenAPI 3.1">"API"</a>
                <div class="ml-auto flex items-center gap-3 text-sm">
                    <Transition fallback=|| ()>
                        {move || Suspend::new(async move {
                            match session.await.ok().and_then(|s| s.viewer) {
                                Some(v) if v.signed_in => {
                                    let name = v.user.clone();
                                    view! {
                                    <span data-testid="signed-in" data-user=v.user.clone()>
                                        <A href="/account" attr:class="font-medium text-slate-900 underline decoration-slate-300 hover:text-indigo-700" attr:title="Your account: change your password">{name}</A>
                                        <span class="text-slate-600">{format!(" · {}", v.roles.join(", "))}</span>
                                    </span>
                                    <ActionForm action=sign_out>
                                        <button type="submit" class="rounded border border-slate-300 px-2 py-1 text-slate-800 hover:bg-slate-50 focus:outline-none focus:ring-2 focus:ring-indigo-500">
                                            "Sign out"
                                        </button>
                                    </ActionForm>
                                    }
                                    .into_any()
                                }
                                _ => view! {
                                    <span class="text-slate-600">"Not signed in"</span>
                                    <Show when=move || location.pathname.get() != "/login">
                                        <A href="/login" attr:class="rounded bg-indigo-700 px-2 py-1 font-medium text-white hover:bg-indigo-600">"Sign in"</A>
                                    </Show>
                                }
                                .into_any(),
                            }
                        })}
                    </Transition>
                </div>
            </nav>
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    session.await.ok().and_then(|s| s.hotfix).map(|i| view! {
                        <div class="border-t border-rose-300 bg-rose-50 px-6 py-2 text-sm text-rose-950" role="status" data-testid="hotfix-banner">
                            <span aria-hidden="true">"⚠ "</span>
                            <span class="font-semibold">{format!("Hotfix mode: {}", i.incident)}</span>
                            {format!(
                                ", started by {} {}: the root is {} until the fix is merged back into main. ",
                                i.started_by,
                                chrono::DateTime::parse_from_rfc3339(&i.started_at)
                                    .map(|t| envline_api::age_text(chrono::Utc::now().timestamp() - t.timestamp()))
                                    .unwrap_or_default(),
                                i.branch
                            )}
                            <A href="/incident" attr:class="font-medium underline">"The incident"</A>
                        </div>
                    })
                })}
            </Transition>
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    session.await.ok().and_then(|s| s.remote_error).map(|e| view! {
                        <div class="border-t border-amber-300 bg-amber-50 px-6 py-2 text-sm text-amber-950" role="status" data-testid="banner">
                            <span aria-hidden="true">"⚠ "</span>
                            "The remote cannot be fetched: " {e} ". What you see may be out of date, and changes cannot reach the remote until it answers."
                        </div>
                    })
                })}
            </Transition>
        </header>
    }
}
