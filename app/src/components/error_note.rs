//! A refusal shown in the page: what went wrong, the unmet gates one by one,
//! the missing permission, and what to do.

use leptos::prelude::*;

use crate::components::gate_list::GateList;
use crate::error::AppError;

/// Shows an [`AppError`] as an alert.
#[component]
pub fn ErrorNote(error: AppError) -> impl IntoView {
    let gates = error.unmet_gates();
    let title = match error.code.as_str() {
        "gates_not_met" => "Not yet: gates are not met",
        "forbidden" => "Not allowed",
        "unauthenticated" => "Please sign in",
        "cross_origin" => "Refused: not from this Envline's pages",
        "rate_limited" => "Too many attempts",
        "bad_input" => "Check what you entered",
        "not_found" => "Not found",
        "remote_unreachable" | "remote_rejected" | "unreachable" => "The remote did not take it",
        "outcome_unknown" | "remote_timeout" | "connection_lost" => {
            "Not known yet whether the remote took it"
        }
        "internal" => "Something went wrong in Envline",
        _ => "Refused",
    };
    let permission = error
        .details
        .get("roles")
        .and_then(|r| r.as_array())
        .map(|roles| {
            roles
                .iter()
                .filter_map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(" or ")
        });
    view! {
        <div
            class="rounded-md border border-rose-300 bg-rose-50 p-3 text-sm text-rose-900"
            role="alert"
            data-error-code=error.code.clone()
        >
            <p class="font-semibold">{title}</p>
            <p class="mt-1 whitespace-pre-line">{error.message.clone()}</p>
            {(!gates.is_empty()).then(|| view! { <div class="mt-2"><GateList gates/></div> })}
            {permission.map(|roles| view! { <p class="mt-1 text-xs">"Roles that may do this: " {roles}</p> })}
        </div>
    }
}
