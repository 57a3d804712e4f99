//! The files a promotion changes, each with its unified diff folded away
//! until opened.

use leptos::prelude::*;

use envline_api::FileChange;

/// One diff line with its colour (and its +/- sign, which says the same without it).
fn line_class(line: &str) -> &'static str {
    if line.starts_with("@@") {
        "text-indigo-700"
    } else if line.starts_with('+') && !line.starts_with("+++") {
        "bg-emerald-50 text-emerald-900"
    } else if line.starts_with('-') && !line.starts_with("---") {
        "bg-rose-50 text-rose-900"
    } else {
        "text-slate-700"
    }
}

/// The changed files, with diffs.
#[component]
pub fn FileList(files: Vec<FileChange>, total: usize) -> impl IntoView {
    let shown = files.len();
    let items = files
        .into_iter()
        .map(|f| {
            let diff = match f.diff {
                Some(text) => {
                    let lines = text
                        .lines()
                        .map(|l| view! { <span class=format!("block {}", line_class(l))>{l.to_owned()}</span> })
                        .collect_view();
                    view! {
                        <pre class="mt-1 max-h-80 overflow-auto rounded bg-slate-50 p-2 font-mono text-xs leading-5">{lines}</pre>
                        {f.truncated.then(|| view! { <p class="text-xs text-slate-500">"The diff is cut here; see the full change with git."</p> })}
                    }
                    .into_any()
                }
                None => view! { <p class="mt-1 text-xs text-slate-500">"No text diff (binary or very large file)."</p> }.into_any(),
            };
            view! {
                <li>
                    <details class="rounded border border-slate-200 px-2 py-1">
                        <summary class="cursor-pointer text-sm">
                            <span class="font-mono text-xs text-slate-900">{f.path.clone()}</span>
                            " "
                            <span class="text-xs text-slate-500">{f.change.clone()}</span>
                        </summary>
                        {diff}
                    </details>
                </li>
            }
        })
        .collect_view();
    view! {
        <ul class="space-y-1">{items}</ul>
        {(total > shown).then(|| view! { <p class="mt-1 text-xs text-slate-500">{format!("{} more files not shown", total - shown)}</p> })}
    }
}
