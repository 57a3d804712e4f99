//! A refusal shown in the page: what went wrong, the unmet gates one by one,
//! the missing permission, and what to do.

use envline_api::{ErrorCode, ErrorReply};
use leptos::prelude::*;

use crate::components::gate_list::GateList;

/// Shows an [`ErrorReply`] (or a server function's `AppError`) as an alert.
#[component]
pub fn ErrorNote(#[prop(into)] error: ErrorReply) -> impl IntoView {
    let gates = error.unmet_gates();
    let title = match error.code {
        ErrorCode::GatesNotMet => "Not yet: gates are not met",
        ErrorCode::Forbidden => "Not allowed",
        ErrorCode::Unauthenticated => "Please sign in",
        ErrorCode::CrossOrigin => "Refused: not from this Envline's pages",
        ErrorCode::RateLimited => "Too many attempts",
        ErrorCode::BadInput
        | ErrorCode::WrongPassword
        | ErrorCode::SamePassword
        | ErrorCode::BadWindow
        | ErrorCode::SameEnvironment
        | ErrorCode::CannotKeep => "Check what you entered",
        ErrorCode::NotFound => "Not found",
        ErrorCode::RemoteUnreachable | ErrorCode::RemoteRejected | ErrorCode::Unreachable => {
            "The remote did not take it"
        }
        ErrorCode::OutcomeUnknown | ErrorCode::RemoteTimeout | ErrorCode::ConnectionLost => {
            "Not known yet whether the remote took it"
        }
        ErrorCode::Internal => "Something went wrong in Envline",
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
            data-error-code=error.code.as_str()
        >
            <p class="font-semibold">{title}</p>
            <p class="mt-1 whitespace-pre-line">{error.message.clone()}</p>
            {(!gates.is_empty()).then(|| view! { <div class="mt-2"><GateList gates/></div> })}
            {permission.map(|roles| view! { <p class="mt-1 text-xs">"Roles that may do this: " {roles}</p> })}
        </div>
    }
}
