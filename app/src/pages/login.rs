//! Sign-in: with the organisation's identity provider (single sign-on), with
//! a local account, or either, as configured. Works without JavaScript too
//! (the provider's button is a plain form that leaves for the provider; the
//! password form posts and comes back here with the error, or goes on).

use envline_api::SsoFailure;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use crate::api::session::{SignIn, SignInMethods, sign_in_options};
use crate::components::error_note::ErrorNote;
use crate::resource::load;

const INPUT: &str = "mt-1 block w-full rounded-md border border-slate-300 px-2 py-1.5 text-sm focus:border-indigo-500 focus:outline-none focus:ring-2 focus:ring-indigo-500";
const BUTTON: &str = "w-full rounded-md bg-indigo-700 px-3 py-1.5 text-sm font-semibold text-white hover:bg-indigo-600 focus:outline-none focus:ring-2 focus:ring-indigo-500 focus:ring-offset-2";

/// The sign-in page.
#[component]
pub fn LoginPage() -> impl IntoView {
    let query = use_query_map();
    let next = move || query.with(|q| q.get("next")).unwrap_or_else(|| "/".into());
    let sso_failure = move || {
        query
            .with(|q| q.get("sso_error"))
            .and_then(|code| code.parse::<SsoFailure>().ok())
    };
    let options = load(|| (), |_| sign_in_options());
    view! {
        <div class="mx-auto mt-12 max-w-sm rounded-lg border border-slate-200 bg-white p-6 shadow-sm">
            <h1 class="text-xl font-semibold text-slate-900">"Sign in to Envline"</h1>
            {move || sso_failure().map(|failure| view! {
                <div role="alert" data-testid="sso-error" class="mt-3 rounded-md border border-red-300 bg-red-50 p-3 text-sm text-red-900">
                    <p class="font-semibold">"You are not signed in"</p>
                    <p class="mt-1">{failure.message()}</p>
                </div>
            })}
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    let options = options.await.unwrap_or(SignInMethods {
                        passwords: true,
                        single_sign_on: None,
                    });
                    view! { <SignInChoices options next=Signal::derive(next)/> }
                })}
            </Transition>
        </div>
    }
}

/// The ways to sign in this server offers.
#[component]
fn SignInChoices(options: SignInMethods, next: Signal<String>) -> impl IntoView {
    let provider = options.single_sign_on.map(|name| {
        view! {
            // A plain GET form, not a link: the router would take a link for one
            // of its own pages, and the browser encodes `next` itself.
            <form method="get" action="/auth/oidc/start" class="mt-4">
                <input type="hidden" name="next" value=move || next.get()/>
                <button type="submit" class=BUTTON data-testid="sso-sign-in" autofocus=true>
                    {format!("Sign in with {name}")}
                </button>
            </form>
        }
    });
    // The provider's button comes first and takes the focus when there is one.
    let both = provider.is_some() && options.passwords;
    let passwords = options.passwords.then(|| {
        view! {
            <PasswordForm next both/>
        }
    });
    view! { {provider} {passwords} }
}

/// Sign-in with a local account's password.
#[component]
fn PasswordForm(next: Signal<String>, both: bool) -> impl IntoView {
    let sign_in = ServerAction::<SignIn>::new();
    view! {
        {if both {
            view! {
                <p class="mt-5 border-t border-slate-200 pt-4 text-sm text-slate-600">"Or with a local account an administrator made for you:"</p>
            }
            .into_any()
        } else {
            view! { <p class="mt-1 text-sm text-slate-600">"With the account an administrator made for you."</p> }.into_any()
        }}
        <ActionForm action=sign_in attr:class="mt-4 space-y-3">
            <input type="hidden" name="next" value=move || next.get()/>
            <label class="block text-sm font-medium text-slate-800">
                "User name"
                <input
                    type="text"
                    name="user"
                    autocomplete="username"
                    required=true
                    autofocus=!both
                    class=INPUT
                />
            </label>
            <label class="block text-sm font-medium text-slate-800">
                "Password"
                <input
                    type="password"
                    name="password"
                    autocomplete="current-password"
                    required=true
                    class=INPUT
                />
            </label>
            <button type="submit" class=BUTTON disabled=move || sign_in.pending().get()>
                "Sign in"
            </button>
        </ActionForm>
        {move || sign_in.value().get().and_then(Result::err).map(|error| view! { <div class="mt-3"><ErrorNote error/></div> })}
    }
}
