//! Live pages: one counter that grows whenever something changed, fed by the
//! server's change stream (`/api/v1/events`, server-sent events) and by the
//! person's own actions. Resources that read it refetch.

use leptos::prelude::*;

/// Grows on every change seen; read it in a resource's source to refetch.
#[derive(Debug, Clone, Copy)]
pub struct Changes(pub RwSignal<u64>);

impl Changes {
    /// Notes a change (an action this page made).
    pub fn bump(&self) {
        self.0.update(|n| *n += 1);
    }

    /// The counter, tracked.
    pub fn get(&self) -> u64 {
        self.0.get()
    }
}

/// The page's [`Changes`].
pub fn use_changes() -> Changes {
    expect_context::<Changes>()
}

/// Provides [`Changes`] and, in the browser, listens to the server's stream.
/// The browser reconnects by itself after a restart; on reconnecting the page
/// refetches, since it may have missed changes while the server was away.
pub fn provide_live_updates() -> Changes {
    let changes = Changes(RwSignal::new(0));
    provide_context(changes);
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        use wasm_bindgen::JsCast;
        use wasm_bindgen::closure::Closure;
        let Ok(source) = web_sys::EventSource::new("/api/v1/events") else {
            return;
        };
        let opened = std::cell::Cell::new(false);
        let on_hello = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |_| {
            // The first hello is the page's own start; later ones are reconnections.
            if opened.replace(true) {
                changes.bump();
            }
        });
        let on_change = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |_| changes.bump());
        let _ = source.add_event_listener_with_callback("hello", on_hello.as_ref().unchecked_ref());
        let _ =
            source.add_event_listener_with_callback("change", on_change.as_ref().unchecked_ref());
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-live", "true");
        }
        let keep = send_wrapper::SendWrapper::new((source, on_hello, on_change));
        on_cleanup(move || {
            let (source, _, _) = keep.take();
            source.close();
        });
    });
    changes
}

/// Tells the page that `action` finished, so what it reads is fetched again
/// (the server's change stream says so too, a moment later).
pub fn bump_on_finish<S>(action: ServerAction<S>)
where
    S: leptos::server_fn::ServerFn + Send + Sync + Clone + 'static,
    S::Output: Send + Sync + 'static,
    S::Error: Send + Sync + 'static,
{
    let changes = use_changes();
    Effect::new(move |_| {
        if action.version().get() > 0 {
            changes.bump();
        }
    });
}
