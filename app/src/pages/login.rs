//! Sign-in with a local account. Works without JavaScript too (a plain
//! form post that comes back here with the error, or goes on).

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use crate::api::session::SignIn;
use crate::components::error_note::ErrorNote;

/// The sign-in page.
#[component]
pub fn LoginPage() -> impl IntoView {
    let sign_in = ServerAction::<SignIn>::new();
    let query = use_query_map();
    let next = move || query.with(|q| q.get("next")).unwrap_or_else(|| "/".into());
    view! {
        <div class="mx-auto mt-12 max-w-sm rounded-lg border border-slate-200 bg-white p-6 shadow-sm">
            <h1 class="text-xl font-semibold text-slate-900">"Sign in to Envline"</h1>
            <p class="mt-1 text-sm text-slate-600">"With the account an administrator made for you."</p>
            <ActionForm action=sign_in attr:class="mt-4 space-y-3">
                <input type="hidden" name="next" value=next/>
                <label class="block text-sm font-medium text-slate-800">
                    "User name"
                    <input
                        type="text"
                        name="user"
                        autocomplete="username"
                        required=true
                        autofocus=true
                        class="mt-1 block w-full rounded-md border border-slate-300 px-2 py-1.5 text-sm focus:border-indigo-500 focus:outline-none focus:ring-2 focus:ring-indigo-500"
                    />
                </label>
                <label class="block text-sm font-medium text-slate-800">
                    "Password"
                    <input
                        type="password"
                        name="password"
                        autocomplete="current-password"
                        required=true
                        class="mt-1 block w-full rounded-md border border-slate-300 px-2 py-1.5 text-sm focus:border-indigo-500 focus:outline-none focus:ring-2 focus:ring-indigo-500"
                    />
                </label>
                <button
                    type="submit"
                    class="w-full rounded-md bg-indigo-700 px-3 py-1.5 text-sm font-semibold text-white hover:bg-indigo-600 focus:outline-none focus:ring-2 focus:ring-indigo-500 focus:ring-offset-2"
                    disabled=move || sign_in.pending().get()
                >
                    "Sign in"
                </button>
            </ActionForm>
            {move || sign_in.value().get().and_then(Result::err).map(|error| view! { <div class="mt-3"><ErrorNote error/></div> })}
        </div>
    }
}
