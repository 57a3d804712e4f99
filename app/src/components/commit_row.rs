//! One commit in a list: short id, subject, author, age, and the
//! environments its change affects (S2).

use leptos::prelude::*;

use envline_api::{CommitView, age_text};

/// A commit as a row.
#[component]
pub fn CommitRow(
    commit: CommitView,
    now: i64,
    #[prop(optional)] affects: Option<Vec<String>>,
) -> impl IntoView {
    let affects = affects.map(|list| {
        let text = if list.is_empty() {
            "affects no environment".to_string()
        } else {
            format!("affects {}", list.join(", "))
        };
        view! { <span class="block text-xs text-slate-500">{text}</span> }
    });
    view! {
        <li class="flex items-start gap-2 py-1" data-commit=commit.id.clone()>
            <code class="mt-0.5 shrink-0 rounded bg-slate-100 px-1 font-mono text-xs text-slate-800" title=commit.id.clone()>
                {commit.short.clone()}
            </code>
            <span class="min-w-0">
                <span class="block text-sm text-slate-900">{commit.subject.clone()}</span>
                <span class="block text-xs text-slate-500">{commit.author.clone()} " · " {age_text(now - commit.time)}</span>
                {affects}
            </span>
        </li>
    }
}
