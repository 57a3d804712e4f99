//! Your account (`/account`): who you are signed in as, and changing your
//! own password, which ends your other sessions (a lost laptop stops
//! working; this browser stays signed in).

use leptos::prelude::*;

use crate::api::session::{ChangePassword, get_session, own_provider};
use crate::components::error_note::ErrorNote;
use crate::resource::load;

const INPUT: &str = "mt-1 block w-full rounded-md border border-slate-300 px-2 py-1.5 text-sm focus:border-indigo-500 focus:outline-none focus:ring-2 focus:ring-indigo-500";

/// The account page.
#[component]
pub fn AccountPage() -> impl IntoView {
    let change = ServerAction::<ChangePassword>::new();
    let session = load(|| (), |_| get_session());
    let provider = load(|| (), |_| own_provider());
    view! {
        <div class="mx-auto mt-8 max-w-md rounded-lg border border-slate-200 bg-white p-6 shadow-sm">
            <h1 class="text-xl font-semibold text-slate-900">"Your account"</h1>
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    match session.await.ok().and_then(|s| s.viewer) {
                        Some(v) if v.signed_in => view! {
                            <p class="mt-1 text-sm text-slate-700" data-testid="account-user">
                                {format!("Signed in as {} ({})", v.user, if v.roles.is_empty() { "no roles".to_string() } else { v.roles.join(", ") })}
                            </p>
                        }
                        .into_any(),
                        _ => view! {
                            <p class="mt-1 text-sm text-slate-700">
                                "You are not signed in. "
                                <a class="text-indigo-700 underline" href="/login?next=/account">"Sign in"</a>
                                " to change your password."
                            </p>
                        }
                        .into_any(),
                    }
                })}
            </Transition>
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    match provider.await.ok().flatten() {
                        Some(provider) => view! {
                            <h2 class="mt-6 text-base font-semibold text-slate-900">"Your password"</h2>
                            <p class="text-sm text-slate-700" data-testid="password-at-provider">
                                {format!("You sign in with {provider}: your password is changed there, and your roles come from your groups there. Envline keeps no password of yours.")}
                            </p>
                        }
                        .into_any(),
                        None => view! { <PasswordChange change/> }.into_any(),
                    }
                })}
            </Transition>
        </div>
    }
}

/// Changing one's own password (local accounts).
#[component]
fn PasswordChange(change: ServerAction<ChangePassword>) -> impl IntoView {
    view! {
        <h2 class="mt-6 text-base font-semibold text-slate-900">"Change your password"</h2>
        <p class="text-sm text-slate-600">"Your other sessions end at once (their live pages close within seconds); this one stays signed in."</p>
        <ActionForm action=change attr:class="mt-3 space-y-3">
            <label class="block text-sm font-medium text-slate-800">
                "Current password"
                <input type="password" name="current" autocomplete="current-password" required=true class=INPUT/>
            </label>
            <label class="block text-sm font-medium text-slate-800">
                "New password (8 characters or more)"
                <input type="password" name="new" autocomplete="new-password" minlength="8" required=true class=INPUT/>
            </label>
            <label class="block text-sm font-medium text-slate-800">
                "New password again"
                <input type="password" name="confirm" autocomplete="new-password" minlength="8" required=true class=INPUT/>
            </label>
            <button
                type="submit"
                class="rounded-md bg-indigo-700 px-3 py-1.5 text-sm font-semibold text-white hover:bg-indigo-600 focus:outline-none focus:ring-2 focus:ring-indigo-500 focus:ring-offset-2"
                disabled=move || change.pending().get()
            >
                "Change password"
            </button>
        </ActionForm>
        {move || change.value().get().map(|result| match result {
            Ok(ended) => view! {
                <p class="mt-3 rounded-md border border-emerald-300 bg-emerald-50 p-3 text-sm text-emerald-950" role="status" data-testid="password-changed">
                    {format!("Your password is changed. {ended} other session{} ended.", if ended == 1 { "" } else { "s" })}
                </p>
            }
            .into_any(),
            Err(error) => view! { <div class="mt-3"><ErrorNote error/></div> }.into_any(),
        })}
    }
}
