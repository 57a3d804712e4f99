//! The home page: the environment graph as cards, stage by stage.

use leptos::prelude::*;

use crate::api::pipeline::{PipelinePage as Data, get_pipeline};
use crate::components::env_card::EnvCard;
use crate::model::PipelineView;

/// Reads the pipeline and refreshes it every few seconds.
#[component]
pub fn PipelinePage() -> impl IntoView {
    let data = Resource::new(|| (), |_| get_pipeline());
    Effect::new(move |_| {
        let handle =
            set_interval_with_handle(move || data.refetch(), std::time::Duration::from_secs(10));
        on_cleanup(move || {
            if let Ok(h) = handle {
                h.clear();
            }
        });
    });
    view! {
        <div class="mb-4 flex items-center justify-between">
            <div>
                <h1 class="text-xl font-semibold text-slate-900">"Pipeline"</h1>
                <p class="text-sm text-slate-500">"Every environment is a branch on one straight line; promotions are fast-forwards."</p>
            </div>
            <button
                class="rounded-md bg-indigo-600 px-3 py-1.5 text-sm font-medium text-white shadow-sm hover:bg-indigo-500"
                on:click=move |_| data.refetch()
            >
                "Reload"
            </button>
        </div>
        <Transition fallback=|| view! { <p class="text-slate-500">"Reading the repository…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(page) => view! { <Stages page/> }.into_any(),
                    Err(e) => view! {
                        <div class="rounded-md border border-rose-300 bg-rose-50 p-4 text-rose-900" role="alert">
                            <p class="font-semibold">"The pipeline cannot be shown"</p>
                            <p class="mt-1 text-sm">{e.to_string()}</p>
                        </div>
                    }.into_any(),
                }
            })}
        </Transition>
    }
}

fn stage_title(stage: usize, view: &PipelineView) -> String {
    if stage == 0 {
        return format!("root · {}", view.root);
    }
    let n = view
        .environments
        .iter()
        .filter(|e| e.stage == stage)
        .count();
    format!(
        "stage {stage} · {n} environment{}",
        if n == 1 { "" } else { "s" }
    )
}

#[component]
fn Stages(page: Data) -> impl IntoView {
    let view = page.pipeline;
    let now = page.now;
    let max_stage = view.environments.iter().map(|e| e.stage).max().unwrap_or(0);
    let off_line: Vec<String> = view
        .environments
        .iter()
        .filter(|e| e.head.is_some() && !e.on_line)
        .map(|e| e.name.clone())
        .collect();
    let warnings = (!off_line.is_empty() || !view.merge_commits.is_empty() || view.refresh_error.is_some()).then(|| {
        let merges = view.merge_commits.len();
        view! {
            <div class="mb-4 rounded-md border border-amber-300 bg-amber-50 p-3 text-sm text-amber-900" role="status">
                {(!off_line.is_empty()).then(|| format!("Off the line: {}. Realign them to their source. ", off_line.join(", ")))}
                {(merges > 0).then(|| format!("{merges} merge commit(s) on {}: the line should be straight. ", view.root))}
                {view.refresh_error.clone().map(|e| format!("Last refresh failed: {e}"))}
            </div>
        }
    });
    let columns = (0..=max_stage)
        .map(|stage| {
            let title = stage_title(stage, &view);
            let cards = view
                .environments
                .iter()
                .filter(|e| e.stage == stage)
                .cloned()
                .map(|env| view! { <EnvCard env now/> })
                .collect_view();
            view! {
                <section class="flex flex-col gap-3" data-stage=stage>
                    <h2 class="text-xs font-semibold uppercase tracking-wide text-slate-500">{title}</h2>
                    {cards}
                </section>
            }
            .into_any()
        })
        .collect_view();
    let refreshed = view.refreshed_at.clone().unwrap_or_else(|| "never".into());
    view! {
        {warnings}
        <div
            class="grid items-start gap-4 overflow-x-auto pb-4"
            style=format!("grid-template-columns: repeat({}, minmax(14rem, 1fr))", max_stage + 1)
        >
            {columns}
        </div>
        <p class="mt-4 text-xs text-slate-500">"Remote last fetched: " {refreshed}</p>
    }
    .into_any()
}
