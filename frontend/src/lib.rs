#![recursion_limit = "512"]
//! The wasm entry point: hydrates the server-rendered [`app::App`].

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    // The pages other than the pipeline are lazy routes: hydrating waits for
    // the visited page's chunk before it takes over the server's HTML. So
    // does a dialog the address opens, whose code is split off too.
    wasm_bindgen_futures::spawn_local(async {
        app::pages::pipeline::load_requested_dialog().await;
        let body = leptos::prelude::document()
            .body()
            .expect("the page has a body");
        leptos::mount::hydrate_from_async(body.clone(), app::App)
            .await
            .forget();
        // Only now do the page's buttons work: the mark tells people's
        // tools (and the end-to-end tests) when they can act. An effect
        // would run while a lazy page's code is still loading.
        let _ = body.set_attribute("data-hydrated", "true");
    });
}
