//! A modal dialog on the native `<dialog>` element: the browser traps focus
//! inside it, closes it on Escape, and gives focus back to what opened it.
//! It opens when the page's address asks for it (`?promote=qa`), so a
//! preview can be linked to, and renders open without JavaScript too.

use leptos::prelude::*;

/// A dialog that is open while `open` is true; `on_close` runs when the
/// person closes it (Escape, the close button).
#[component]
pub fn Modal(
    #[prop(into)] open: Signal<bool>,
    #[prop(into)] title: Signal<String>,
    /// Where the close link goes (the page without the dialog).
    #[prop(into)]
    close_href: String,
    on_close: Callback<()>,
    /// The id of the element to focus after closing when the opener was replaced.
    #[prop(into)]
    return_focus: Signal<Option<String>>,
    children: ChildrenFn,
) -> impl IntoView {
    let dialog = NodeRef::<leptos::html::Dialog>::new();
    // Server-rendered open (readable without JavaScript); in the browser the
    // effect below turns it into a modal.
    let initially_open = open.get_untracked();
    // Reopening the server-rendered dialog as a modal closes it first; that
    // close is ours, not the person's.
    let reopening = StoredValue::new(false);
    // The action that opened it, noted while it is open (to focus it after).
    let opener = StoredValue::new(None::<String>);
    Effect::new(move |was_open: Option<bool>| {
        let now_open = open.get();
        let Some(el) = dialog.get() else {
            return now_open;
        };
        if now_open {
            opener.set_value(return_focus.get_untracked());
            if el.open() {
                reopening.set_value(true);
                el.close();
            }
            let _ = el.show_modal();
        } else {
            if el.open() {
                el.close();
            }
            // The browser gives focus back to what had it before the dialog
            // opened; when that was nothing (opened from its address) or it
            // was re-rendered meanwhile, focus the action that opens it.
            if was_open == Some(true)
                && let Some(id) = opener.get_value()
            {
                focus_later(id);
            }
        }
        now_open
    });
    let close_href_clone = close_href.clone();
    view! {
        <dialog
            node_ref=dialog
            open=initially_open
            aria-labelledby="dialog-title"
            class="m-auto w-[min(56rem,calc(100vw-2rem))] max-h-[calc(100vh-2rem)] overflow-auto rounded-lg border border-slate-300 bg-white p-0 text-slate-900 shadow-xl backdrop:bg-slate-900/40"
            on:close=move |_| {
                if reopening.get_value() {
                    reopening.set_value(false);
                } else {
                    on_close.run(());
                }
            }
        >
            <div class="sticky top-0 z-10 flex items-center justify-between gap-4 border-b border-slate-200 bg-white px-5 py-3">
                <h2 id="dialog-title" class="text-lg font-semibold">{move || title.get()}</h2>
                <a
                    href=close_href_clone
                    class="rounded px-2 py-1 text-sm text-slate-600 hover:bg-slate-100 focus:outline-none focus:ring-2 focus:ring-indigo-500"
                    aria-label="Close"
                >
                    "Close ✕"
                </a>
            </div>
            <div class="px-5 py-4">
                {move || open.get().then(|| children())}
            </div>
        </dialog>
    }
}

/// Focuses the element with `id` once the page has re-rendered.
fn focus_later(id: String) {
    #[cfg(feature = "hydrate")]
    {
        set_timeout(
            move || {
                use wasm_bindgen::JsCast;
                let active_is_body = document()
                    .active_element()
                    .map(|e| e.tag_name().eq_ignore_ascii_case("body"))
                    .unwrap_or(true);
                if active_is_body
                    && let Some(el) = document()
                        .get_element_by_id(&id)
                        .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok())
                {
                    let _ = el.focus();
                }
            },
            std::time::Duration::from_millis(50),
        );
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = id;
}
