//! The head of a data table: its caption for screen readers and its column
//! headers, the same on every page.

use leptos::prelude::*;

/// A table's caption (read by screen readers) and column headers; an empty
/// column name makes a header that only screen readers read, as `hidden`.
#[component]
pub fn TableHead(
    #[prop(into)] caption: String,
    columns: &'static [&'static str],
    /// The screen-reader name of the columns with an empty header.
    #[prop(optional)]
    hidden: &'static str,
) -> impl IntoView {
    let headers = columns
        .iter()
        .map(|c| {
            if c.is_empty() {
                view! { <th scope="col" class="px-3 py-2"><span class="sr-only">{hidden}</span></th> }
                    .into_any()
            } else {
                view! { <th scope="col" class="px-3 py-2">{*c}</th> }.into_any()
            }
        })
        .collect_view();
    view! {
        <caption class="sr-only">{caption}</caption>
        <thead class="bg-slate-50 text-xs uppercase tracking-wide text-slate-600">
            <tr>{headers}</tr>
        </thead>
    }
}
