//! One environment on the pipeline page: where it is, how far behind, its
//! verification, holds and pending approvals, and the actions the person
//! looking may take on it.

use envline_api::{Abilities, EnvironmentView, HoldKind, age_text};
use leptos::prelude::*;
use leptos_router::components::A;

use crate::api::pipeline::Release;
use crate::components::badge::{Badge, Tone};
use crate::components::error_note::ErrorNote;
use crate::components::live::use_changes;

/// The id of an action's link, so focus can return to it after its dialog.
pub fn action_id(action: &str, env: &str) -> String {
    format!("act-{action}-{env}")
}

/// An environment's card.
#[component]
pub fn EnvCard(env: EnvironmentView, now: i64, can: Abilities, user: String) -> impl IntoView {
    let head_id = env.head.as_ref().map(|h| h.id.clone()).unwrap_or_default();
    let border = if env.head.is_some() && !env.on_line {
        "border-rose-400"
    } else {
        "border-slate-200"
    };
    let behind = match (&env.from, env.behind_from, env.ahead_of_from) {
        (Some(from), Some(0), Some(a)) if a > 0 => (format!("{a} ahead of {from}"), Tone::Warn),
        (Some(from), Some(0), _) => (format!("up to date with {from}"), Tone::Good),
        (Some(from), Some(n), _) => (format!("{n} behind {from}"), Tone::Neutral),
        (None, _, _) => ("root of the pipeline".to_string(), Tone::Neutral),
        _ => (String::new(), Tone::Neutral),
    };
    let line_badge = if env.head.is_none() {
        ("no branch", Tone::Bad)
    } else if env.on_line {
        ("on the line", Tone::Good)
    } else {
        ("off the line", Tone::Bad)
    };
    let verification = env.verification.clone().map(|v| {
        let tone = Tone::from(v.status);
        let title = format!("recorded by {} at {}", v.recorded_by, v.at);
        view! { <span title=title><Badge text=format!("tests {}", v.status) tone/></span> }
    });
    let request = env.open_request.clone().map(|r| {
        let got = r.counted_approvers.len();
        view! {
            <A href=format!("/approvals#request-{}", r.id) attr:class="no-underline">
                <Badge text=format!("awaiting approval {}/{}", got, r.required_approvals) tone=Tone::Warn/>
            </A>
        }
    });
    let gates = {
        let mut parts = Vec::new();
        if env.approvals > 0 {
            parts.push(format!("{} approvals", env.approvals));
        }
        if env.protected {
            parts.push("protected".to_string());
        }
        if env.auto_promote {
            parts.push("auto-promote".to_string());
        }
        if !env.requires.is_empty() {
            parts.push(format!("requires {}", env.requires.join(" + ")));
        }
        parts.join(" · ")
    };
    let head = env.head.clone().map(|h| {
        view! {
            <p class="mt-2 flex items-center gap-2">
                <code class="rounded bg-slate-900 px-1.5 py-0.5 font-mono text-xs text-slate-50" data-testid="head" title=h.id.clone()>
                    {h.short.clone()}
                </code>
                <span class="truncate text-xs text-slate-600">{h.author.clone()} " · " {age_text(now - h.time)}</span>
            </p>
            <p class="mt-1 line-clamp-2 text-sm text-slate-900" title=h.subject.clone()>{h.subject.clone()}</p>
        }
    });
    let branch_note = (env.branch != env.name).then(
        || view! { <span class="font-mono text-xs text-slate-500">{env.branch.clone()}</span> },
    );
    let holds = env
        .holds
        .iter()
        .cloned()
        .map(|h| {
            let can_release = h.releasable_by(&user, &can);
            view! { <HoldLine hold=h can_release/> }
        })
        .collect_view();
    let actions = (!env.is_root && env.head.is_some()).then(|| {
        let name = env.name.clone();
        let link = |action: &'static str, label: &'static str, shown: bool| {
            shown.then(|| {
                view! {
                    <a
                        href=format!("/?{action}={name}")
                        id=action_id(action, &name)
                        class="rounded-md border border-slate-300 bg-white px-2 py-1 text-xs font-medium text-slate-800 hover:bg-slate-50 focus:outline-none focus:ring-2 focus:ring-indigo-500"
                    >
                        {label}
                    </a>
                }
            })
        };
        let promote = can.promote && env.behind_from.is_some_and(|n| n > 0);
        view! {
            <div class="mt-3 flex flex-wrap gap-1" data-actions="">
                {link("promote", "Promote…", promote)}
                {link("rollback", "Roll back…", can.reset && env.on_line)}
                {link("realign", "Realign…", can.reset && !env.on_line)}
                {link("verify", "Mark tested…", can.verify)}
                {link("hold", "Hold…", can.hold)}
            </div>
        }
    });
    view! {
        <article
            class=format!("w-full min-w-0 rounded-lg border-2 {border} bg-white p-3 shadow-sm")
            data-env=env.name.clone()
            data-head=head_id
            data-on-line=env.on_line.to_string()
            aria-label=format!("environment {}", env.name)
        >
            <header class="flex items-center justify-between gap-2">
                <h3 class="font-semibold text-slate-900">
                    <a class="hover:text-indigo-700 hover:underline" href=format!("/env/{}", env.name)>{env.name.clone()}</a>
                    " "
                    {branch_note}
                </h3>
                <Badge text=line_badge.0 tone=line_badge.1/>
            </header>
            {head}
            <div class="mt-2 flex flex-wrap gap-1">
                <Badge text=behind.0 tone=behind.1/>
                {verification}
                {request}
            </div>
            {holds}
            {env.auto_promotion_failure.clone().map(|f| view! {
                <p class="mt-2 rounded border border-rose-300 bg-rose-50 px-2 py-1 text-xs text-rose-900" data-testid="auto-failure">
                    <span aria-hidden="true">"✕ "</span>
                    {format!(
                        "Auto-promotion to {} failed {} time{}: {} Next try at {}.",
                        &f.candidate[..f.candidate.len().min(10)],
                        f.failures,
                        if f.failures == 1 { "" } else { "s" },
                        f.message,
                        f.retry_at
                    )}
                </p>
            })}
            <p class="mt-2 text-xs text-slate-600">{gates}</p>
            {actions}
        </article>
    }
    .into_any()
}

/// A hold on the card: who held it and why, and a Release button for those who may.
#[component]
fn HoldLine(hold: envline_api::HoldView, can_release: bool) -> impl IntoView {
    let release = ServerAction::<Release>::new();
    let changes = use_changes();
    Effect::new(move |_| {
        if release.version().get() > 0 {
            changes.bump();
        }
    });
    let what = match hold.kind {
        HoldKind::AutoPromotion => "auto-promotion held",
        HoldKind::Promotion => "held",
    };
    let window = hold
        .ends_at
        .as_ref()
        .map(|e| format!(" until {e}"))
        .unwrap_or_default();
    view! {
        <div class="mt-2 rounded border border-amber-300 bg-amber-50 px-2 py-1 text-xs text-amber-950" data-hold=hold.id>
            <p>
                <span aria-hidden="true">"⏸ "</span>
                <span class="font-semibold">{what}</span>
                {format!(" by {}{window}: ", hold.created_by)}
                {hold.reason.clone()}
            </p>
            {can_release.then(|| view! {
                <ActionForm action=release attr:class="mt-1">
                    <input type="hidden" name="id" value=hold.id/>
                    <button
                        type="submit"
                        class="rounded border border-amber-400 bg-white px-2 py-0.5 font-medium hover:bg-amber-100 focus:outline-none focus:ring-2 focus:ring-indigo-500"
                        aria-label=format!("Release the hold on {}", hold.environment)
                    >
                        "Release"
                    </button>
                </ActionForm>
                {move || release.value().get().and_then(Result::err).map(|error| view! { <ErrorNote error/> })}
            })}
        </div>
    }
}
