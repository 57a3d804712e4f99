//! The Line: the root's first-parent history as one vertical line, newest
//! on top, with every environment's badge at the commit it sits on, what
//! each commit affects and where it was tested; environments off the line
//! are drawn beside it with their stray commits and a *Realign* action.
//! Pages of 100 commits are addressed by position (`/line?position=4200`).

use envline_api::{ErrorCode, OffLineEnvironment, TimelineEntry, VerificationView, age_text};
use leptos::prelude::*;
use leptos_router::hooks::{use_navigate, use_query_map};

use crate::api::line::{LINE_PAGE, LinePage as Data, get_line};
use crate::api::pipeline::get_pipeline;
use crate::components::badge::{Badge, Tone};
use crate::components::commit_row::CommitRow;
use crate::components::error_note::ErrorNote;
use crate::components::live::use_changes;
use crate::components::modal::Modal;
use crate::components::pipeline_dialogs::RealignForm;
use crate::error::AppError;
use crate::resource::load;

/// The address of the page starting at `position` (the tip when `None`).
fn page_href(position: Option<usize>) -> String {
    match position {
        Some(p) => format!("/line?position={p}"),
        None => "/line".to_string(),
    }
}

/// The Line page.
#[component]
pub fn LinePage() -> impl IntoView {
    let changes = use_changes();
    let query = use_query_map();
    // `Err` holds what was typed when it is not a position.
    let position = Memo::new(move |_| {
        query.with(
            |q| match q.get("position").filter(|p| !p.trim().is_empty()) {
                None => Ok(None),
                Some(p) => p.trim().parse::<usize>().map(Some).map_err(|_| p),
            },
        )
    });
    let data = load(
        move || (changes.get(), position.get()),
        |(_, position)| async move {
            match position {
                Ok(p) => get_line(p).await,
                Err(typed) => Err(AppError::new(
                    400,
                    ErrorCode::BadInput,
                    format!(
                        "`{typed}` is not a position: give a whole number, 0 for the oldest commit"
                    ),
                )),
            }
        },
    );
    let realign = Memo::new(move |_| query.with(|q| q.get("realign").filter(|v| !v.is_empty())));
    let back = move || page_href(position.get_untracked().ok().flatten());
    let navigate = use_navigate();
    let on_close = Callback::new(move |_| {
        if realign.get_untracked().is_some() {
            navigate(&back(), Default::default());
        }
    });
    view! {
        <div class="mb-4">
            <h1 class="text-xl font-semibold text-slate-900">"Line"</h1>
            <p class="text-sm text-slate-600">
                "The root's history as one straight line, newest on top. Every environment sits on it; promoting moves its badge up."
            </p>
        </div>
        <Transition fallback=|| view! { <p class="text-slate-600">"Reading the line…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(page) => view! { <Line page/> }.into_any(),
                    Err(error) => view! {
                        <ErrorNote error/>
                        <p class="mt-2 text-sm"><a class="text-indigo-700 underline" href="/line">"Go to the newest commits"</a></p>
                    }
                    .into_any(),
                }
            })}
        </Transition>
        <Modal
            open=Signal::derive(move || realign.get().is_some())
            title=Signal::derive(move || format!("Realign {}", realign.get().unwrap_or_default()))
            close_href=page_href(position.get_untracked().ok().flatten())
            on_close
            return_focus=Signal::derive(move || realign.get().map(|e| format!("realign-{e}")))
        >
            {move || realign.get().map(|name| view! { <RealignDialog name/> })}
        </Modal>
    }
}

/// The realign form for one environment, read once when the dialog opens.
#[component]
fn RealignDialog(name: String) -> impl IntoView {
    // Where environments stand (cached on the server), not a page of the line.
    let data = load(|| (), |_| get_pipeline());
    view! {
        <Suspense fallback=|| view! { <p>"Reading…"</p> }>
            {move || {
                let name = name.clone();
                Suspend::new(async move {
                    let page = match data.await {
                        Ok(p) => p,
                        Err(error) => return view! { <ErrorNote error/> }.into_any(),
                    };
                    match page.pipeline.environments.into_iter().find(|e| e.name == name) {
                        Some(env) => view! { <RealignForm env/> }.into_any(),
                        None => view! {
                            <ErrorNote error=AppError::new(404, ErrorCode::NotFound, format!("no environment `{name}`"))/>
                        }
                        .into_any(),
                    }
                })
            }}
        </Suspense>
    }
}

/// The line with its legend, pager and the environments off it.
#[component]
fn Line(page: Data) -> impl IntoView {
    let now = page.now;
    let total = page.timeline.total;
    let commits = page.timeline.commits.clone();
    let top = commits.first().map(|c| c.position);
    let bottom = commits.last().map(|c| c.position);
    let legend = page
        .environments
        .iter()
        .map(|env| {
            let (text, href) = match (env.position, env.on_line, &env.head) {
                (_, _, None) => ("no branch".to_string(), None),
                (Some(p), true, _) => (format!("position {p}"), Some(page_href(Some(p)))),
                (None, true, Some(h)) => (format!("at {} (a merged commit)", h.short), None),
                (_, false, _) => ("off the line".to_string(), Some("#off-line".to_string())),
            };
            let name = env.name.clone();
            let legend = env.name.clone();
            let legend_href = env.name.clone();
            view! {
                <li class="flex items-center gap-1" data-legend=legend>
                    <a class="font-medium text-slate-900 hover:underline" href=format!("/env/{legend_href}")>{name}</a>
                    {match href {
                        Some(href) => view! { <a class="text-indigo-700 underline" href=href>{text}</a> }.into_any(),
                        None => view! { <span class="text-slate-600">{text}</span> }.into_any(),
                    }}
                </li>
            }
        })
        .collect_view();
    let newer = top.filter(|t| t + 1 < total).map(|t| {
        let p = t + LINE_PAGE;
        if p + 1 >= total { None } else { Some(p) }
    });
    let older = bottom.filter(|b| *b > 0).map(|b| b - 1);
    let pager = move || {
        view! {
            <nav class="my-3 flex flex-wrap items-center gap-3 text-sm" aria-label="Pages of the line">
                {match newer {
                    Some(p) => view! {
                        <a class="text-indigo-700 underline" href="/line">"Newest"</a>
                        <a class="text-indigo-700 underline" href=page_href(p) rel="prev">{format!("Newer {LINE_PAGE}")}</a>
                    }
                    .into_any(),
                    None => view! { <span class="text-slate-600">"At the newest commit"</span> }.into_any(),
                }}
                {match older {
                    Some(p) => view! { <a class="text-indigo-700 underline" href=page_href(Some(p)) rel="next">{format!("Older {LINE_PAGE}")}</a> }.into_any(),
                    None => view! { <span class="text-slate-600">"At the first commit"</span> }.into_any(),
                }}
                <span class="text-slate-600">
                    {match (top, bottom) {
                        (Some(t), Some(b)) => format!("positions {t} to {b} of {total}"),
                        _ => "no commits".to_string(),
                    }}
                </span>
            </nav>
        }
    };
    let every = page.environments.len();
    let root = page.root.clone();
    let rows = commits
        .into_iter()
        .map(|entry| {
            let tip = (entry.position + 1 == total).then(|| root.clone());
            view! { <LineCommit entry now every tip/> }
        })
        .collect_view();
    let off_line = page.timeline.off_line.clone();
    let off_line_view = (!off_line.is_empty()).then(|| {
        let items = off_line
            .into_iter()
            .map(|o| {
                let can_realign = page.viewer.on(&o.environment).reset;
                view! { <OffLine o now can_realign/> }
            })
            .collect_view();
        view! {
            <aside id="off-line" aria-labelledby="off-line-title" class="rounded-md border border-amber-300 bg-amber-50 p-4">
                <h2 id="off-line-title" class="text-sm font-semibold text-amber-950">
                    <span aria-hidden="true">"⚠ "</span>"Off the line"
                </h2>
                <p class="mt-1 text-xs text-amber-950">
                    "These environments hold commits the line does not have (I1 is broken). Realign them to their source."
                </p>
                <div class="mt-3 space-y-4">{items}</div>
            </aside>
        }
    });
    view! {
        <div class="grid items-start gap-6 lg:grid-cols-[minmax(0,1fr)_24rem]">
            <section aria-labelledby="line-title">
                <h2 id="line-title" class="sr-only">{format!("The line of {}", page.root)}</h2>
                <div class="flex flex-wrap items-end justify-between gap-3">
                    <div>
                        <h3 class="text-xs font-semibold uppercase tracking-wide text-slate-600">"Environments on the line"</h3>
                        <ul class="mt-1 flex flex-wrap gap-x-4 gap-y-1 text-sm">{legend}</ul>
                    </div>
                    <form method="get" action="/line" class="flex items-end gap-2">
                        <label class="block text-sm text-slate-800">
                            "Go to position"
                            <input
                                type="number"
                                name="position"
                                min="0"
                                max=total.saturating_sub(1)
                                class="mt-1 block w-32 rounded-md border border-slate-300 px-2 py-1 text-sm"
                            />
                        </label>
                        <button type="submit" class="rounded-md border border-slate-300 bg-white px-3 py-1 text-sm font-medium text-slate-800 hover:bg-slate-50 focus:outline-none focus:ring-2 focus:ring-indigo-500">"Go"</button>
                    </form>
                </div>
                {pager()}
                <ol class="ml-2 border-l-2 border-slate-300" data-testid="line">{rows}</ol>
                {pager()}
            </section>
            {off_line_view}
        </div>
    }
}

/// One commit on the line; `every` is how many environments there are,
/// `tip` the root's name when this is its newest commit.
#[component]
fn LineCommit(entry: TimelineEntry, now: i64, every: usize, tip: Option<String>) -> impl IntoView {
    let c = entry.commit.clone();
    let here = !entry.environments.is_empty();
    let dot = if here {
        "bg-indigo-700"
    } else if entry.is_merge {
        "bg-white ring-2 ring-amber-600"
    } else {
        "bg-slate-400"
    };
    let badges = entry
        .environments
        .iter()
        .map(|name| {
            view! {
                <span data-env-at=name.clone() class="rounded bg-indigo-700 px-1.5 py-0.5 text-xs font-semibold text-white">
                    {name.clone()}
                </span>
            }
        })
        .collect_view();
    let affects = if entry.affects.is_empty() {
        "affects no environment".to_string()
    } else if entry.affects.len() == every {
        "affects every environment".to_string()
    } else {
        format!("affects {}", entry.affects.join(", "))
    };
    let marks = newest_per_environment(&entry.verifications)
        .into_iter()
        .map(|v| {
            let (tone, word) = (Tone::from(v.status), v.status.as_str());
            let text = format!("{word} in {}", v.environment);
            view! { <span data-verification=v.environment.clone() data-status=word><Badge text tone/></span> }
        })
        .collect_view();
    view! {
        <li
            id=format!("c-{}", c.short)
            class="relative pb-4 pl-6"
            data-commit=c.id.clone()
            data-position=entry.position
        >
            <span aria-hidden="true" class=format!("absolute -left-[7px] top-1.5 h-3 w-3 rounded-full {dot}")></span>
            <div class="flex flex-wrap items-center gap-2">
                <code class="rounded bg-slate-100 px-1 font-mono text-xs text-slate-800" title=c.id.clone()>{c.short.clone()}</code>
                <span class="text-sm text-slate-900">{c.subject.clone()}</span>
                {entry.is_merge.then(|| view! { <Badge text="merge commit" tone=Tone::Warn/> })}
                {tip.map(|root| {
                    let label = root.clone();
                    view! {
                        <span data-root=root class="rounded border border-slate-400 px-1.5 py-0.5 text-xs font-semibold text-slate-800">{label}</span>
                    }
                })}
                {badges}
            </div>
            <p class="text-xs text-slate-600">
                {format!("{} · {} · position {}", c.author, age_text(now - c.time), entry.position)}
            </p>
            <p class="text-xs text-slate-600">{affects}</p>
            <div class="mt-1 flex flex-wrap gap-1">{marks}</div>
        </li>
    }
}

/// The newest verification per environment (the one that counts, I3).
fn newest_per_environment(all: &[VerificationView]) -> Vec<VerificationView> {
    let mut out: Vec<VerificationView> = Vec::new();
    for v in all {
        if !out.iter().any(|o| o.environment == v.environment) {
            out.push(v.clone());
        }
    }
    out
}

/// An environment off the line: where it left, its own commits, Realign.
#[component]
fn OffLine(o: OffLineEnvironment, now: i64, can_realign: bool) -> impl IntoView {
    let left = match (&o.left_at, o.left_at_position) {
        (Some(c), Some(p)) => view! {
            "left the line after "
            <a class="text-indigo-700 underline" href=page_href(Some(p))>{format!("{} (position {p})", c.short)}</a>
        }
        .into_any(),
        (Some(c), None) => format!("shares {} with the line", c.short).into_any(),
        (None, _) => "shares no commit with the line".into_any(),
    };
    let more = o.stray_total.saturating_sub(o.stray.len());
    let stray = o
        .stray
        .iter()
        .map(|c| view! { <CommitRow commit=c.clone() now/> })
        .collect_view();
    let name = o.environment.clone();
    view! {
        <section data-off-line=name.clone() aria-label=format!("{name}, off the line")>
            <h3 class="text-sm font-semibold text-slate-900">{name.clone()}</h3>
            <p class="text-xs text-slate-700">
                {format!("at {} · {} commit{} the line lacks · ", o.head.short, o.stray_total, if o.stray_total == 1 { "" } else { "s" })}
                {left}
            </p>
            <ul class="mt-1 border-l-2 border-dashed border-amber-500 pl-3">{stray}</ul>
            {(more > 0).then(|| view! { <p class="text-xs text-slate-700">{format!("and {more} more")}</p> })}
            {can_realign.then(|| view! {
                <a
                    id=format!("realign-{name}")
                    href=format!("/line?realign={name}")
                    class="mt-2 inline-block rounded-md bg-indigo-700 px-3 py-1 text-sm font-medium text-white hover:bg-indigo-800 focus:outline-none focus:ring-2 focus:ring-indigo-500 focus:ring-offset-2"
                >
                    "Realign…"
                </a>
            })}
        </section>
    }
}
