//! The gates of a promotion, each met or not, with its evidence (who
//! verified it, the link to the test run).

use leptos::prelude::*;

use envline_api::{GateCheck, GateKind};

/// A link only when it is a web address (never `javascript:` or the like).
pub fn safe_link(url: &str) -> Option<String> {
    (url.starts_with("https://") || url.starts_with("http://")).then(|| url.to_owned())
}

/// Every gate as a line with ✓ or ✕ and a word.
#[component]
pub fn GateList(gates: Vec<GateCheck>) -> impl IntoView {
    let items = gates
        .into_iter()
        .map(|g| {
            let label = match g.gate {
                GateKind::Verified => format!("tested in {}", g.environment),
                GateKind::Hold => "no hold".to_string(),
                GateKind::Approvals => "approvals".to_string(),
            };
            let (symbol, state, class) = if g.met {
                ("✓", "met", "text-emerald-800")
            } else {
                ("✕", "not met", "text-rose-800")
            };
            let link = g
                .evidence
                .as_ref()
                .and_then(|v| v.url.as_deref())
                .and_then(safe_link)
                .map(|url| {
                    view! {
                        " "
                        <a class="text-indigo-700 underline" href=url rel="noopener noreferrer" target="_blank">
                            "test run"
                        </a>
                    }
                });
            view! {
                <li class="flex gap-2" data-gate=g.gate.as_str() data-met=g.met.to_string()>
                    <span class=format!("font-semibold {class}") aria-hidden="true">{symbol}</span>
                    <span>
                        <span class=format!("font-medium {class}")>{label} " — " {state}</span>
                        <span class="block text-xs text-slate-600">{g.message.clone()} {link}</span>
                    </span>
                </li>
            }
        })
        .collect_view();
    view! { <ul class="space-y-1 text-sm">{items}</ul> }
}
