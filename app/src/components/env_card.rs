//! One environment on the pipeline page.

use leptos::prelude::*;

use crate::model::{EnvironmentView, age_text};

/// A badge with a colour that says good, bad or neutral.
#[component]
pub fn Badge(#[prop(into)] text: String, #[prop(into)] tone: String) -> impl IntoView {
    let class = match tone.as_str() {
        "good" => "bg-emerald-100 text-emerald-800 ring-emerald-600/20",
        "bad" => "bg-rose-100 text-rose-800 ring-rose-600/20",
        "warn" => "bg-amber-100 text-amber-800 ring-amber-600/20",
        _ => "bg-slate-100 text-slate-700 ring-slate-500/20",
    };
    view! {
        <span class=format!("inline-flex items-center rounded-md px-2 py-0.5 text-xs font-medium ring-1 ring-inset {class}")>
            {text}
        </span>
    }
}

/// Tip, subject, author, age, distance from `from`, line, verification, holds.
#[component]
pub fn EnvCard(env: EnvironmentView, now: i64) -> impl IntoView {
    let head_id = env.head.as_ref().map(|h| h.id.clone()).unwrap_or_default();
    let border = if env.head.is_some() && !env.on_line {
        "border-rose-400"
    } else {
        "border-slate-200"
    };
    let behind = match (&env.from, env.behind_from, env.ahead_of_from) {
        (Some(from), Some(0), Some(a)) if a > 0 => (format!("{a} ahead of {from}"), "warn"),
        (Some(from), Some(0), _) => (format!("up to date with {from}"), "good"),
        (Some(from), Some(n), _) => (format!("{n} behind {from}"), "neutral"),
        (None, _, _) => ("root of the pipeline".to_string(), "neutral"),
        _ => (String::new(), "neutral"),
    };
    let line_badge = if env.head.is_none() {
        ("no branch".to_string(), "bad")
    } else if env.on_line {
        ("on the line".to_string(), "good")
    } else {
        ("off the line".to_string(), "bad")
    };
    let verification = env.verification.clone().map(|v| {
        let tone = match v.status.as_str() {
            "passed" => "good",
            "failed" => "bad",
            _ => "warn",
        };
        view! { <Badge text=format!("tests {}", v.status) tone=tone/> }
    });
    let holds = env
        .holds
        .iter()
        .map(|h| {
            let text = if h.kind == "auto_promotion" { "auto-promotion held" } else { "held" };
            view! { <span title=format!("{} by {}: {}", text, h.created_by, h.reason)><Badge text=text tone="warn"/></span> }
        })
        .collect_view();
    let request = env.open_request.clone().map(|r| {
        let got = r.approvals.iter().filter(|a| a.decision == "approve").count();
        view! { <Badge text=format!("awaiting approval {}/{}", got, r.required_approvals) tone="warn"/> }
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
                <span class="truncate text-xs text-slate-500">{h.author.clone()} " · " {age_text(now - h.time)}</span>
            </p>
            <p class="mt-1 line-clamp-2 text-sm text-slate-900" title=h.subject.clone()>{h.subject.clone()}</p>
        }
    });
    let branch_note = (env.branch != env.name).then(
        || view! { <span class="font-mono text-xs text-slate-500">{env.branch.clone()}</span> },
    );
    view! {
        <article
            class=format!("w-full min-w-0 rounded-lg border-2 {border} bg-white p-3 shadow-sm")
            data-env=env.name.clone()
            data-head=head_id
            data-on-line=env.on_line.to_string()
        >
            <header class="flex items-center justify-between gap-2">
                <h3 class="font-semibold text-slate-900">{env.name.clone()} " " {branch_note}</h3>
                <Badge text=line_badge.0 tone=line_badge.1/>
            </header>
            {head}
            <div class="mt-2 flex flex-wrap gap-1">
                <Badge text=behind.0 tone=behind.1/>
                {verification}
                {holds}
                {request}
            </div>
            <p class="mt-2 text-xs text-slate-500">{gates}</p>
        </article>
    }
    .into_any()
}
