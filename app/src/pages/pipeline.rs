//! The home page: the environment graph as cards, stage by stage, with the
//! actions of the person looking; previews and confirmations open as dialogs
//! named in the address (`/?promote=qa`, `/?rollback=prod-eu,prod-us`).

use envline_api::{EnvironmentView, ErrorCode, PipelineView};
use leptos::prelude::*;
use leptos_router::hooks::{use_navigate, use_query_map};

use crate::api::pipeline::{PipelinePage as Data, get_pipeline, split_names};
use crate::components::env_card::{EnvCard, action_id};
use crate::components::error_note::ErrorNote;
use crate::components::live::use_changes;
use crate::components::modal::Modal;
use crate::components::pipeline_dialogs::{
    HoldForm, PromoteDialog, RealignForm, RollbackDialog, VerifyForm,
};
use crate::resource::load;

/// The dialogs the page can show, each named by a query parameter.
const DIALOGS: [&str; 5] = ["promote", "rollback", "verify", "hold", "realign"];

/// The dialog the address asks for: (kind, its value).
fn requested_dialog(query: &leptos_router::params::ParamsMap) -> Option<(String, String)> {
    DIALOGS.iter().find_map(|kind| {
        query
            .get(kind)
            .filter(|v| !v.is_empty())
            .map(|v| (kind.to_string(), v))
    })
}

/// Reads the pipeline, refetching whenever something changes.
#[component]
pub fn PipelinePage() -> impl IntoView {
    let changes = use_changes();
    let data = load(move || changes.get(), |_| get_pipeline());
    let query = use_query_map();
    let dialog = Memo::new(move |_| query.with(requested_dialog));
    let navigate = use_navigate();
    let on_close = Callback::new(move |_| {
        if dialog.get_untracked().is_some() {
            navigate("/", Default::default());
        }
    });
    let title = Signal::derive(move || match dialog.get() {
        Some((kind, value)) => {
            let names = split_names(&value).join(", ");
            match kind.as_str() {
                "promote" => format!("Promote {names}"),
                "rollback" => format!("Roll back {names}"),
                "verify" => format!("Mark tested: {names}"),
                "hold" => format!("Hold {names}"),
                _ => format!("Realign {names}"),
            }
        }
        None => String::new(),
    });
    // The action that opens the dialog (focused again after it closes).
    let return_focus = Signal::derive(move || {
        dialog.get().map(|(kind, value)| {
            if value.contains(',') {
                format!("stage-{kind}-{}", value.replace(',', "-"))
            } else {
                action_id(&kind, &value)
            }
        })
    });
    view! {
        <div class="mb-4 flex flex-wrap items-end justify-between gap-2">
            <div>
                <h1 class="text-xl font-semibold text-slate-900">"Pipeline"</h1>
                <p class="text-sm text-slate-600">
                    "Every environment is a branch on one straight line; promotions are fast-forwards."
                </p>
            </div>
        </div>
        <Transition fallback=|| view! { <p class="text-slate-600">"Reading the repository…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(page) => view! { <Stages page/> }.into_any(),
                    Err(error) => view! { <ErrorNote error/> }.into_any(),
                }
            })}
        </Transition>
        <Modal open=Signal::derive(move || dialog.get().is_some()) title close_href="/" on_close return_focus>
            <Suspense fallback=|| view! { <p>"Opening…"</p> }>
                {move || {
                    let (kind, value) = dialog.get().unwrap_or_default();
                    Suspend::new(async move {
                        if kind.is_empty() {
                            return ().into_any();
                        }
                        dialog_body(kind, value).await
                    })
                }}
            </Suspense>
        </Modal>
    }
}

/// Loads the code of the dialog the browser's address asks for, if any, so
/// hydration finds it ready and takes over the server's HTML of the open
/// dialog as it is (a dialog still loading would not match it).
#[cfg(feature = "hydrate")]
pub async fn load_requested_dialog() {
    let asked = web_sys::window()
        .and_then(|w| w.location().search().ok())
        .and_then(|search| web_sys::UrlSearchParams::new_with_str(&search).ok())
        .is_some_and(|params| {
            DIALOGS
                .iter()
                .any(|kind| params.get(kind).is_some_and(|v| !v.is_empty()))
        });
    if asked {
        // An unknown kind shows nothing: this only loads the code.
        let _ = dialog_body(String::new(), String::new()).await;
    }
}

/// What a dialog shows. Its code (the forms, the previews and their server
/// calls) is split from the main bundle (`cargo leptos build --split`) and
/// loaded when a dialog first opens, so the first load of the pipeline
/// carries only the cards.
#[lazy]
async fn dialog_body(kind: String, value: String) -> AnyView {
    match kind.as_str() {
        "promote" => view! { <PromoteDialog environments=value/> }.into_any(),
        "rollback" => view! { <RollbackDialog environments=value/> }.into_any(),
        "verify" | "hold" | "realign" => view! { <EnvironmentForm kind value/> }.into_any(),
        _ => ().into_any(),
    }
}

/// The forms that act on one environment's state when the dialog opened
/// (its head): read once, so the form and its answer stay while the page
/// behind refreshes.
#[component]
fn EnvironmentForm(kind: String, value: String) -> impl IntoView {
    let data = load(|| (), |_| get_pipeline());
    view! {
        <Suspense fallback=|| view! { <p>"Reading…"</p> }>
            {move || {
                let (kind, value) = (kind.clone(), value.clone());
                Suspend::new(async move {
                    let page = match data.await {
                        Ok(p) => p,
                        Err(error) => return view! { <ErrorNote error/> }.into_any(),
                    };
                    let Some(env) = page.pipeline.environments.iter().find(|e| e.name == value).cloned() else {
                        return view! {
                            <ErrorNote error=crate::error::AppError::new(404, ErrorCode::NotFound, format!("no environment `{value}`"))/>
                        }
                        .into_any();
                    };
                    match kind.as_str() {
                        "verify" => view! { <VerifyForm env/> }.into_any(),
                        "hold" => view! { <HoldForm env/> }.into_any(),
                        _ => view! { <RealignForm env/> }.into_any(),
                    }
                })
            }}
        </Suspense>
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

/// Stage-wide actions, as the seed runs them in parallel: promote every
/// environment of the stage, or roll them all back.
fn stage_actions(envs: &[&EnvironmentView], page: &Data) -> impl IntoView + use<> {
    if envs.len() < 2 {
        return None;
    }
    let names: Vec<String> = envs.iter().map(|e| e.name.clone()).collect();
    let can_promote = envs.iter().all(|e| page.viewer.on(&e.name).promote);
    let can_reset = envs.iter().all(|e| page.viewer.on(&e.name).reset);
    let joined = names.join(",");
    let link = move |kind: &'static str, label: String, shown: bool| {
        let joined = joined.clone();
        shown.then(|| {
            view! {
                <a
                    href=format!("/?{kind}={joined}")
                    id=format!("stage-{kind}-{}", joined.replace(',', "-"))
                    class="rounded border border-slate-300 bg-white px-2 py-0.5 text-xs font-medium normal-case tracking-normal text-slate-800 hover:bg-slate-50 focus:outline-none focus:ring-2 focus:ring-indigo-500"
                >
                    {label}
                </a>
            }
        })
    };
    let n = names.len();
    Some(view! {
        <div class="flex flex-wrap gap-1">
            {link("promote", format!("Promote all {n}…"), can_promote)}
            {link("rollback", format!("Roll back all {n}…"), can_reset)}
        </div>
    })
}

#[component]
fn Stages(page: Data) -> impl IntoView {
    let view = page.pipeline.clone();
    let now = page.now;
    let max_stage = view.environments.iter().map(|e| e.stage).max().unwrap_or(0);
    let off_line: Vec<String> = view
        .environments
        .iter()
        .filter(|e| e.head.is_some() && !e.on_line)
        .map(|e| e.name.clone())
        .collect();
    let warnings = (!off_line.is_empty() || view.merges.count > 0).then(|| {
        let merges = view.merges.clone();
        let newest = merges
            .newest
            .iter()
            .map(|c| format!("{} {}", c.short, c.subject))
            .collect::<Vec<_>>()
            .join("; ");
        view! {
            <div class="mb-4 space-y-1 rounded-md border border-amber-300 bg-amber-50 p-3 text-sm text-amber-950" role="status">
                {(!off_line.is_empty()).then(|| view! {
                    <p><span aria-hidden="true">"⚠ "</span>{format!("Off the line: {}. Realign them to their source.", off_line.join(", "))}</p>
                })}
                {(merges.count > 0).then(|| view! {
                    <p data-testid="merges">
                        <span aria-hidden="true">"⚠ "</span>
                        {format!("{} merge commit{} on {} not yet in every environment (the line should be straight)", merges.count, if merges.count == 1 { "" } else { "s" }, view.root)}
                        {(!newest.is_empty()).then(|| format!(": newest {newest}"))}
                    </p>
                })}
            </div>
        }
    });
    let columns = (0..=max_stage)
        .map(|stage| {
            let title = stage_title(stage, &view);
            let label = title.clone();
            let in_stage: Vec<&EnvironmentView> =
                view.environments.iter().filter(|e| e.stage == stage).collect();
            let actions = stage_actions(&in_stage, &page);
            let cards = in_stage
                .iter()
                .map(|env| {
                    let can = page.viewer.on(&env.name);
                    let user = page.viewer.user.clone();
                    view! { <EnvCard env=(*env).clone() now can user/> }
                })
                .collect_view();
            view! {
                <section class="flex flex-col gap-3" data-stage=stage aria-label=label>
                    <div class="flex min-h-7 flex-wrap items-center justify-between gap-1">
                        <h2 class="text-xs font-semibold uppercase tracking-wide text-slate-600">{title}</h2>
                        {actions}
                    </div>
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
            style=format!("grid-template-columns: repeat({}, minmax(15rem, 1fr))", max_stage + 1)
        >
            {columns}
        </div>
        <p class="mt-4 text-xs text-slate-600">"Remote last fetched: " {refreshed}</p>
    }
    .into_any()
}
