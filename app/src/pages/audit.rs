//! Audit: every event of the log, filtered by environment, actor, action and
//! time window, 50 a page; the filtered log exported as CSV or JSON (the
//! API's own export, so the rows are the API's); and the chain check, which
//! names the row where the chain breaks.

use envline_api::{AuditEventView, ChainCheck};
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use crate::api::audit::{AuditPage as Data, AuditQuery, CheckAudit, FilterChoices, audit_choices};
use crate::components::badge::{Badge, Tone};
use crate::components::error_note::ErrorNote;
use crate::components::live::use_changes;
use crate::components::table::TableHead;
use crate::error::AppError;
use crate::resource::{Loaded, load};

const INPUT: &str =
    "mt-1 block w-full rounded-md border border-slate-300 bg-white px-2 py-1 text-sm";
const LINK: &str = "text-indigo-700 underline";

/// The filters the address asks for.
fn query_of(q: &leptos_router::params::ParamsMap) -> AuditQuery {
    let text = |k: &str| q.get(k).filter(|v| !v.trim().is_empty());
    AuditQuery {
        environment: text("environment"),
        actor: text("actor"),
        action: text("action"),
        since: text("since"),
        until: text("until"),
        before: text("before").and_then(|b| b.trim().parse().ok()),
    }
}

/// The Audit page.
#[component]
pub fn AuditPage() -> impl IntoView {
    let changes = use_changes();
    let params = use_query_map();
    let query = Memo::new(move |_| params.with(query_of));
    let data = load(move || (changes.get(), query.get()), |(_, q)| q.read());
    let check = ServerAction::<CheckAudit>::new();
    view! {
        <div class="mb-4">
            <h1 class="text-xl font-semibold text-slate-900">"Audit"</h1>
            <p class="text-sm text-slate-600">
                "Every change Envline made or saw, newest first. Each event's hash covers the one before it, so an edited or deleted row breaks the chain from there on."
            </p>
        </div>
        <Filters query/>
        <ChainPanel check/>
        <Transition fallback=|| view! { <p class="text-slate-600">"Reading the log…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(page) => view! { <Events page query=query.get_untracked() check/> }.into_any(),
                    Err(error) => view! { <ErrorNote error/> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// The filter form: a plain GET form, so filtered views are addresses.
#[component]
fn Filters(query: Memo<AuditQuery>) -> impl IntoView {
    let choices = load(|| (), |_| audit_choices());
    let q = query.get_untracked();
    let value = |v: &Option<String>| v.clone().unwrap_or_default();
    let (environment, action) = (value(&q.environment), value(&q.action));
    view! {
        <form method="get" action="/audit" class="mb-4 grid gap-3 rounded-md border border-slate-200 bg-white p-4 md:grid-cols-6" aria-label="Filter the log">
            <label class="block text-sm font-medium text-slate-800">
                "Environment"
                <Choice name="environment" chosen=environment choices pick=|c| c.environments/>
            </label>
            <label class="block text-sm font-medium text-slate-800">
                "Actor"
                <input name="actor" value=value(&q.actor) class=INPUT placeholder="a user, or envline"/>
            </label>
            <label class="block text-sm font-medium text-slate-800">
                "Action"
                <Choice name="action" chosen=action choices pick=|c| c.actions/>
            </label>
            <label class="block text-sm font-medium text-slate-800">
                "From (UTC)"
                <input type="datetime-local" name="since" value=value(&q.since) class=INPUT/>
            </label>
            <label class="block text-sm font-medium text-slate-800">
                "Until (UTC)"
                <input type="datetime-local" name="until" value=value(&q.until) class=INPUT/>
            </label>
            <div class="flex items-end gap-2">
                <button type="submit" class="rounded-md bg-indigo-700 px-3 py-1.5 text-sm font-medium text-white hover:bg-indigo-800 focus:outline-none focus:ring-2 focus:ring-indigo-500 focus:ring-offset-2">"Filter"</button>
                <a href="/audit" class="px-2 py-1.5 text-sm text-slate-700 underline">"Clear"</a>
            </div>
        </form>
    }
}

/// A select of the choices `pick` takes from the filter choices (read when
/// they arrive), "any" first, `chosen` selected.
#[component]
fn Choice(
    name: &'static str,
    chosen: String,
    choices: Loaded<Result<FilterChoices, AppError>>,
    pick: fn(FilterChoices) -> Vec<String>,
) -> impl IntoView {
    view! {
        <select name=name class=INPUT>
            <option value="">"any"</option>
            <Transition fallback=|| ()>
                {
                    let chosen = chosen.clone();
                    move || {
                        let chosen = chosen.clone();
                        Suspend::new(async move {
                            choices.await.map(pick).unwrap_or_default().into_iter().map(|c| {
                                let selected = c == chosen;
                                view! { <option value=c.clone() selected=selected>{c.clone()}</option> }
                            }).collect_view()
                        })
                    }
                }
            </Transition>
        </select>
    }
}

/// The chain check, run when asked.
#[component]
fn ChainPanel(check: ServerAction<CheckAudit>) -> impl IntoView {
    view! {
        <section class="mb-4 flex flex-wrap items-start gap-3" aria-labelledby="chain-title">
            <h2 id="chain-title" class="sr-only">"The chain"</h2>
            <button
                type="button"
                class="rounded-md border border-slate-300 bg-white px-3 py-1.5 text-sm font-medium text-slate-800 hover:bg-slate-50 focus:outline-none focus:ring-2 focus:ring-indigo-500"
                on:click=move |_| { check.dispatch(CheckAudit {}); }
                disabled=move || check.pending().get()
            >
                {move || if check.pending().get() { "Checking the chain…" } else { "Check the chain" }}
            </button>
            <div class="min-w-0 flex-1" aria-live="polite">
                {move || check.value().get().map(|result| match result {
                    Ok(c) => view! { <ChainResult c/> }.into_any(),
                    Err(error) => view! { <ErrorNote error/> }.into_any(),
                })}
            </div>
        </section>
    }
}

/// What the chain check found.
#[component]
fn ChainResult(c: ChainCheck) -> impl IntoView {
    let problems = c
        .problems
        .iter()
        .map(|p| view! { <li>{p.clone()}</li> })
        .collect_view();
    let has_problems = !c.problems.is_empty();
    if c.intact && !has_problems {
        return view! {
            <p class="rounded-md border border-emerald-300 bg-emerald-50 p-3 text-sm text-emerald-950" data-testid="chain" data-intact="true">
                <span aria-hidden="true">"✓ "</span>
                {format!("The chain is intact: {} events. ", c.events)}
                {c.anchor.clone().unwrap_or_default()}
            </p>
        }
        .into_any();
    }
    let broken = c.first_broken.map(|id| {
        view! {
            " "
            <a class=LINK href=format!("/audit?before={}#event-{id}", id + 1)>{format!("Show event {id}")}</a>
        }
    });
    view! {
        <div role="alert" class="rounded-md border border-rose-300 bg-rose-50 p-3 text-sm text-rose-950" data-testid="chain" data-intact="false" data-first-broken=c.first_broken>
            <p class="font-semibold">
                {match c.first_broken {
                    Some(id) => format!("The chain breaks at event {id}."),
                    None => "The log has problems.".to_string(),
                }}
            </p>
            <p>{c.message.clone()} {broken}</p>
            {has_problems.then(|| view! { <ul class="mt-1 list-disc pl-5">{problems}</ul> })}
        </div>
    }
    .into_any()
}

/// One page of events with the pager and the exports.
#[component]
fn Events(page: Data, query: AuditQuery, check: ServerAction<CheckAudit>) -> impl IntoView {
    let filters = query.filters();
    let with = |extra: &str| match (filters.is_empty(), extra.is_empty()) {
        (true, true) => String::new(),
        (true, false) => format!("?{extra}"),
        (false, true) => format!("?{filters}"),
        (false, false) => format!("?{filters}&{extra}"),
    };
    let export = |format: &str| format!("/api/v1/audit{}", with(&format!("format={format}")));
    let older = page
        .older
        .map(|before| format!("/audit{}", with(&format!("before={before}"))));
    let newest = query.before.map(|_| format!("/audit{}", with("")));
    let empty = page.events.is_empty();
    let broken = move || {
        check
            .value()
            .get()
            .and_then(|r| r.ok())
            .and_then(|c| c.first_broken)
    };
    let rows = page
        .events
        .into_iter()
        .map(|e| view! { <EventRow e broken=Signal::derive(broken)/> })
        .collect_view();
    view! {
        <div class="mb-2 flex flex-wrap items-center gap-4 text-sm">
            <span class="font-medium text-slate-800">"Export this view:"</span>
            <a class=LINK href=export("csv") download="envline-audit.csv">"CSV"</a>
            <a class=LINK href=export("json") download="envline-audit.json">"JSON"</a>
        </div>
        {empty.then(|| view! {
            <p class="rounded-md border border-slate-200 bg-white p-4 text-sm text-slate-700">"No event matches these filters."</p>
        })}
        <div class="overflow-x-auto rounded-md border border-slate-200 bg-white">
            <table class="min-w-full text-left text-sm" data-testid="audit">
                <TableHead caption="Audit events, newest first" columns=&["Event", "When (UTC)", "Who", "Action", "Environment", "From → to", "Why"]/>
                <tbody class="divide-y divide-slate-100">{rows}</tbody>
            </table>
        </div>
        <nav class="mt-3 flex gap-4 text-sm" aria-label="Pages of the log">
            {newest.map(|href| view! { <a class=LINK href=href>"Newest"</a> })}
            {match older {
                Some(href) => view! { <a class=LINK href=href rel="next">"Older events"</a> }.into_any(),
                None => view! { <span class="text-slate-600">"No older events"</span> }.into_any(),
            }}
        </nav>
    }
}

/// One event as a row; the row where the chain breaks is marked.
#[component]
fn EventRow(e: AuditEventView, broken: Signal<Option<i64>>) -> impl IntoView {
    let id = e.id;
    let short = |c: &Option<String>| {
        c.as_deref()
            .map(|c| c[..c.len().min(10)].to_string())
            .unwrap_or_else(|| "—".into())
    };
    let moved = match (&e.old, &e.new) {
        (None, None) => String::new(),
        _ => format!("{} → {}", short(&e.old), short(&e.new)),
    };
    let details = e.details.as_str().to_owned();
    let details = (details != "{}" && !details.is_empty()).then(|| {
        view! {
            <details class="mt-1 text-xs text-slate-600">
                <summary class="cursor-pointer">"details"</summary>
                <pre class="whitespace-pre-wrap break-all">{details}</pre>
            </details>
        }
    });
    view! {
        <tr
            id=format!("event-{id}")
            data-event=id
            data-broken=move || (broken.get() == Some(id)).then_some("true")
            class=move || if broken.get() == Some(id) { "bg-rose-50 align-top" } else { "align-top" }
        >
            <td class="px-3 py-2 font-mono text-xs">
                {id}
                {move || (broken.get() == Some(id)).then(|| view! { " " <Badge text="chain breaks here" tone=Tone::Bad/> })}
            </td>
            <td class="whitespace-nowrap px-3 py-2 text-xs text-slate-700">{e.at.replace('T', " ").trim_end_matches('Z').to_string()}</td>
            <td class="px-3 py-2">{e.actor.clone()}</td>
            <td class="px-3 py-2">{e.action.as_str()}</td>
            <td class="px-3 py-2">{e.environment.clone().unwrap_or_default()}</td>
            <td class="whitespace-nowrap px-3 py-2 font-mono text-xs">{moved}</td>
            <td class="px-3 py-2">{e.reason.clone()} {details}</td>
        </tr>
    }
}
