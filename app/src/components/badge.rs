//! A small label whose colour says good, bad or waiting, always with a word
//! (and a symbol) so colour is never the only signal.

use leptos::prelude::*;

use envline_api::VerificationStatus;

/// What a badge says about the thing it labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Good,
    Bad,
    Warn,
    Neutral,
}

impl Tone {
    fn classes(self) -> &'static str {
        match self {
            Tone::Good => "bg-emerald-50 text-emerald-800 ring-emerald-600/30",
            Tone::Bad => "bg-rose-50 text-rose-800 ring-rose-600/30",
            Tone::Warn => "bg-amber-50 text-amber-900 ring-amber-600/30",
            Tone::Neutral => "bg-slate-100 text-slate-700 ring-slate-500/20",
        }
    }

    /// A symbol that carries the tone without colour.
    pub fn symbol(self) -> &'static str {
        match self {
            Tone::Good => "✓",
            Tone::Bad => "✕",
            Tone::Warn => "!",
            Tone::Neutral => "·",
        }
    }
}

impl From<VerificationStatus> for Tone {
    /// A test result's tone: passed is good, failed bad, pending waiting.
    fn from(status: VerificationStatus) -> Tone {
        match status {
            VerificationStatus::Passed => Tone::Good,
            VerificationStatus::Failed => Tone::Bad,
            VerificationStatus::Pending => Tone::Warn,
        }
    }
}

/// A label with a tone.
#[component]
pub fn Badge(#[prop(into)] text: String, tone: Tone) -> impl IntoView {
    view! {
        <span class=format!(
            "inline-flex items-center gap-1 rounded-md px-2 py-0.5 text-xs font-medium ring-1 ring-inset {}",
            tone.classes(),
        )>
            <span aria-hidden="true">{tone.symbol()}</span>
            {text}
        </span>
    }
}
