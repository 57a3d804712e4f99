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
        leptos::mount::hydrate_lazy(app::App);
    });
}
