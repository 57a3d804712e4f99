//! Envline's application: pages, components, server functions and shared
//! types; the promotion engine lives in [`engine`] (server only, no Leptos).

pub mod api;
pub mod components;
pub mod model;
pub mod pages;

#[cfg(feature = "ssr")]
pub mod engine;
#[cfg(feature = "ssr")]
pub mod state;

use leptos::prelude::*;
use leptos_meta::{MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::{
    StaticSegment,
    components::{A, Route, Router, Routes},
};

use pages::pipeline::PipelinePage;

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

/// The application: header, navigation and routes.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    // Effects run only in the browser: this marks the page as hydrated, so
    // people (and end-to-end tests) can tell when buttons start working.
    Effect::new(|_| {
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });
    view! {
        <Stylesheet id="leptos" href="/pkg/envline.css"/>
        <Title text="Envline"/>
        <Router>
            <header class="border-b border-slate-200 bg-white">
                <nav class="mx-auto flex max-w-screen-2xl items-center gap-6 px-6 py-3">
                    <A href="/" attr:class="text-lg font-bold tracking-tight text-indigo-700">"Envline"</A>
                    <A href="/" attr:class="text-sm font-medium text-slate-700 hover:text-indigo-700">"Pipeline"</A>
                    <a href="/api/v1/environments" class="text-sm text-slate-500 hover:text-indigo-700">"API"</a>
                </nav>
            </header>
            <main class="mx-auto max-w-screen-2xl px-6 py-6">
                <Routes fallback=|| view! { <p class="text-slate-600">"No such page. "<a class="text-indigo-700 underline" href="/">"Back to the pipeline"</a></p> }>
                    <Route path=StaticSegment("") view=PipelinePage/>
                </Routes>
            </main>
        </Router>
    }
}
