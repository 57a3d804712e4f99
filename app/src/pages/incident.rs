//! The Incident page (S4): start hotfix mode with a plan-then-confirm
//! wizard, follow the fix through the pipeline, resolve, merge back (with
//! the conflict report and the commands to do it by hand), and the old →
//! new mapping of main's commits.

use envline_api::{
    AuditEventView, CommitMapping, ErrorCode, HotfixStatus, IncidentRecord, IncidentState,
    MergeConflict, age_text,
};
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use crate::api::incident::{
    IncidentPage as Data, MergeBack, ResolveHotfix, StartHotfix, get_incident_page, plan_hotfix,
};
use crate::components::badge::{Badge, Tone};
use crate::components::commit_row::CommitRow;
use crate::components::error_note::ErrorNote;
use crate::components::live::use_changes;
use crate::error::AppError;
use crate::resource::load;

const INPUT: &str = "mt-1 block w-full rounded-md border border-slate-300 px-2 py-1.5 text-sm focus:border-indigo-500 focus:outline-none focus:ring-2 focus:ring-indigo-500";
const PRIMARY: &str = "rounded-md bg-indigo-700 px-3 py-1.5 text-sm font-semibold text-white shadow-sm hover:bg-indigo-600 focus:outline-none focus:ring-2 focus:ring-indigo-500 focus:ring-offset-2 disabled:cursor-not-allowed disabled:bg-slate-400";
const DANGER: &str = "rounded-md bg-rose-700 px-3 py-1.5 text-sm font-semibold text-white shadow-sm hover:bg-rose-600 focus:outline-none focus:ring-2 focus:ring-rose-500 focus:ring-offset-2 disabled:cursor-not-allowed disabled:bg-slate-400";

/// Seconds since the epoch of a stored RFC 3339 time.
fn seconds(text: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp())
}

/// The Incident page.
#[component]
pub fn IncidentPage() -> impl IntoView {
    let changes = use_changes();
    let start = ServerAction::<StartHotfix>::new();
    let resolve = ServerAction::<ResolveHotfix>::new();
    let merge = ServerAction::<MergeBack>::new();
    Effect::new(move |_| {
        if start.version().get() + resolve.version().get() + merge.version().get() > 0 {
            changes.bump();
        }
    });
    let data = load(move || changes.get(), |_| get_incident_page());
    view! {
        <div class="mb-4">
            <h1 class="text-xl font-semibold text-slate-900">"Incident"</h1>
            <p class="text-sm text-slate-600">
                "Hotfix mode: production breaks while newer versions wait upstream. Every branch goes back to production's commit, the fix goes through the normal gates, and main takes it afterwards."
            </p>
        </div>
        <Transition fallback=|| view! { <p class="text-slate-600">"Reading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(page) => {
                        let past = page.incidents.clone();
                        let body = match page.current.clone() {
                            Some(status) => view! { <Running status can_run=page.can_run now=page.now resolve merge/> }.into_any(),
                            None => view! { <Wizard page=page.clone() start/> }.into_any(),
                        };
                        view! { {body} <Past incidents=past now=page.now/> }.into_any()
                    }
                    Err(error) => view! { <ErrorNote error/> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// Step 1 (what broke, where) and step 2 (the plan, then confirm).
#[component]
fn Wizard(page: Data, start: ServerAction<StartHotfix>) -> impl IntoView {
    let query = use_query_map();
    let asked = move || {
        query.with(|q| match (q.get("incident"), q.get("from")) {
            (Some(i), Some(f)) if !i.trim().is_empty() && !f.is_empty() => {
                Some((i, f, q.get("reason").unwrap_or_default()))
            }
            _ => None,
        })
    };
    let chosen = asked();
    // Hotfix mode starts from production only (the engine refuses others).
    let options = page
        .environments
        .iter()
        .filter(|(_, protected)| *protected)
        .map(|(name, _)| {
            let selected = chosen.as_ref().is_some_and(|(_, f, _)| f == name);
            view! { <option value=name.clone() selected=selected>{name.clone()}</option> }
        })
        .collect_view();
    let (incident, reason) = chosen
        .as_ref()
        .map(|(i, _, r)| (i.clone(), r.clone()))
        .unwrap_or_default();
    if !page.can_run {
        return view! {
            <p class="rounded-md border border-slate-200 bg-white p-4 text-sm text-slate-700">
                "No incident is running. Starting hotfix mode needs the incident-commander role."
            </p>
        }
        .into_any();
    }
    view! {
        <section class="rounded-lg border border-slate-200 bg-white p-4 shadow-sm" aria-labelledby="wizard-title">
            <h2 id="wizard-title" class="text-base font-semibold">"Start hotfix mode"</h2>
            <form method="get" action="/incident" class="mt-3 grid gap-3 md:grid-cols-3">
                <label class="block text-sm font-medium text-slate-800">
                    "Production environment that broke"
                    <select name="from" class=INPUT>{options}</select>
                </label>
                <label class="block text-sm font-medium text-slate-800">
                    "Incident id"
                    <input name="incident" required=true placeholder="INC-42" value=incident class=INPUT/>
                </label>
                <label class="block text-sm font-medium text-slate-800 md:col-span-3">
                    "What broke (everyone sees it while hotfix mode is on)"
                    <textarea name="reason" rows="2" required=true class=INPUT>{reason}</textarea>
                </label>
                <div class="md:col-span-3">
                    <button type="submit" class=PRIMARY>"Show the plan"</button>
                </div>
            </form>
            {chosen.map(|(incident, from, reason)| view! { <Plan incident from reason start/> })}
        </section>
    }
    .into_any()
}

/// The plan with old → new per branch, then Confirm.
#[component]
fn Plan(
    incident: String,
    from: String,
    reason: String,
    start: ServerAction<StartHotfix>,
) -> impl IntoView {
    let (i, f) = (incident.clone(), from.clone());
    let plan = load(move || (i.clone(), f.clone()), |(i, f)| plan_hotfix(i, f));
    view! {
        <Suspense fallback=|| view! { <p class="mt-4 text-sm text-slate-600">"Working out the plan…"</p> }>
            {move || {
                let (incident, from, reason) = (incident.clone(), from.clone(), reason.clone());
                Suspend::new(async move {
                    let plan = match plan.await {
                        Ok(p) => p,
                        Err(error) => return view! { <div class="mt-4"><ErrorNote error/></div> }.into_any(),
                    };
                    let rows = plan
                        .resets
                        .iter()
                        .enumerate()
                        .map(|(index, r)| {
                            let old = r.old.as_ref().map(|c| c.short.clone()).unwrap_or_else(|| "no branch".into());
                            let keep = (r.protected && !r.at_fork).then(|| {
                                let (id, for_id) = (format!("keep-{}", r.environment), format!("keep-{}", r.environment));
                                view! {
                                    <label class="flex items-center gap-1 text-xs" for=for_id>
                                        <input type="checkbox" id=id name=format!("keep[{index}]") value=r.environment.clone()/>
                                        "keep it where it is"
                                    </label>
                                }
                            });
                            view! {
                                <tr data-reset=r.environment.clone()>
                                    <td class="py-1 pr-3 font-medium">{r.environment.clone()}{r.protected.then_some(" (production)")}</td>
                                    <td class="py-1 pr-3 font-mono text-xs">{r.branch.clone()}</td>
                                    <td class="py-1 pr-3 font-mono text-xs">
                                        {if r.at_fork { format!("{old} (already there)") } else { format!("{old} → {}", plan.fork.short) }}
                                    </td>
                                    <td class="py-1">{keep}</td>
                                </tr>
                            }
                        })
                        .collect_view();
                    let cancels = plan.cancels.len();
                    view! {
                        <div class="mt-4 border-t border-slate-200 pt-4" data-testid="hotfix-plan">
                            <h3 class="text-base font-semibold">{format!("The plan for {}", plan.incident)}</h3>
                            <p class="text-sm text-slate-700">
                                {format!("{} is at ", plan.production)}
                                <code class="font-mono">{plan.fork.short.clone()}</code>
                                {format!(" (“{}”). `{}` is made there, and every other branch is reset there, in one atomic push.", plan.fork.subject, plan.branch)}
                            </p>
                            <ActionForm action=start attr:class="mt-3 space-y-3">
                                <input type="hidden" name="incident" value=incident.clone()/>
                                <input type="hidden" name="from" value=from.clone()/>
                                <input type="hidden" name="reason" value=reason.clone()/>
                                <table class="w-full text-left text-sm">
                                    <caption class="sr-only">"Branches and where they go"</caption>
                                    <thead>
                                        <tr class="text-xs uppercase text-slate-600">
                                            <th scope="col" class="pr-3">"Environment"</th>
                                            <th scope="col" class="pr-3">"Branch"</th>
                                            <th scope="col" class="pr-3">"Old → new"</th>
                                            <th scope="col">"Choice"</th>
                                        </tr>
                                    </thead>
                                    <tbody>{rows}</tbody>
                                </table>
                                <p class="text-sm text-slate-700">
                                    {format!("{cancels} open request(s) will be cancelled; auto-promotion pauses for {} until the fix is merged back.", if plan.paused.is_empty() { "no environment".to_string() } else { plan.paused.join(", ") })}
                                </p>
                                <button type="submit" class=DANGER disabled=move || start.pending().get()>
                                    {format!("Start hotfix mode for {}", plan.incident)}
                                </button>
                            </ActionForm>
                            {move || start.value().get().and_then(Result::err).map(|error| view! { <div class="mt-3"><ErrorNote error/></div> })}
                        </div>
                    }
                    .into_any()
                })
            }}
        </Suspense>
    }
}

/// Hotfix mode on: the fix's way, Resolve, Merge back.
#[component]
fn Running(
    status: HotfixStatus,
    can_run: bool,
    now: i64,
    resolve: ServerAction<ResolveHotfix>,
    merge: ServerAction<MergeBack>,
) -> impl IntoView {
    let i = status.incident.clone();
    let (state_text, tone) = match i.state {
        IncidentState::Active => ("active: the fix is on its way", Tone::Bad),
        IncidentState::Resolved => ("resolved: merge it back into main", Tone::Warn),
        IncidentState::Merged => ("merged", Tone::Good),
    };
    let age = seconds(&i.started_at)
        .map(|s| age_text(now - s))
        .unwrap_or_default();
    let tip = status.tip.clone();
    let fix = status
        .fix_commits
        .iter()
        .cloned()
        .map(|c| view! { <CommitRow commit=c now/> })
        .collect_view();
    let progress = status
        .progress
        .iter()
        .map(|p| {
            let (mark, word, class) = if p.has_fix {
                ("✓", "has the fix", "text-emerald-800")
            } else {
                ("·", "not yet", "text-slate-600")
            };
            view! {
                <li class="flex items-center gap-2 text-sm" data-progress=p.environment.clone() data-has-fix=p.has_fix.to_string()>
                    <span class=format!("font-semibold {class}") aria-hidden="true">{mark}</span>
                    <span class="w-32 font-medium">{p.environment.clone()}</span>
                    <code class="font-mono text-xs">{p.head.as_ref().map(|h| h.short.clone()).unwrap_or_default()}</code>
                    <span class=format!("text-xs {class}")>{word}</span>
                </li>
            }
        })
        .collect_view();
    let steps = step_list(&status.steps);
    let incident = i.incident.clone();
    let actions = can_run.then(|| {
        let state = i.state;
        let incident_r = incident.clone();
        let incident_m = incident.clone();
        view! {
            <div class="mt-4 flex flex-wrap gap-3">
                <ActionForm action=resolve>
                    <input type="hidden" name="incident" value=incident_r/>
                    <button type="submit" class=PRIMARY disabled=move || state != IncidentState::Active || resolve.pending().get()>
                        "Resolve: the fix is in production"
                    </button>
                </ActionForm>
                <ActionForm action=merge>
                    <input type="hidden" name="incident" value=incident_m/>
                    <button type="submit" class=PRIMARY disabled=move || state != IncidentState::Resolved || merge.pending().get()>
                        "Merge back into main"
                    </button>
                </ActionForm>
            </div>
            {move || resolve.value().get().and_then(Result::err).map(|error| view! { <div class="mt-3"><ErrorNote error/></div> })}
            {move || merge.value().get().and_then(Result::err).map(|error| view! { <MergeReport error/> })}
        }
    });
    view! {
        <section class="rounded-lg border-2 border-rose-300 bg-white p-4 shadow-sm" data-incident=i.incident.clone() data-state=i.state.as_str()>
            <header class="flex flex-wrap items-center gap-2">
                <h2 class="text-lg font-semibold">{i.incident.clone()}</h2>
                <Badge text=state_text tone/>
            </header>
            <p class="mt-1 text-sm text-slate-700">
                {format!("Started by {} {age} from {}: ", i.started_by, i.production)} {i.reason.clone()}
            </p>
            <p class="mt-2 text-sm text-slate-700">
                "The pipeline's root is "
                <code class="font-mono">{i.branch.clone()}</code>
                ". Push the fix there with git ("
                <code class="font-mono">{format!("git push origin HEAD:{}", i.branch)}</code>
                ") and promote it to production through the usual gates."
            </p>
            <div class="mt-4 grid gap-4 md:grid-cols-2">
                <div>
                    <h3 class="text-sm font-semibold text-slate-800">"The fix"</h3>
                    {match tip {
                        Some(t) if t.id != i.fork => view! { <p class="text-sm">"Tip: " <code class="font-mono">{t.short.clone()}</code> " " {t.subject.clone()}</p> }.into_any(),
                        _ => view! { <p class="text-sm text-slate-600">"No fix pushed yet."</p> }.into_any(),
                    }}
                    <ul class="divide-y divide-slate-100">{fix}</ul>
                    <p class="mt-2 text-xs text-slate-600">{format!("{} commit(s) of main since the fork will be replayed on the fix when merging back.", status.main_ahead)}</p>
                </div>
                <div>
                    <h3 class="text-sm font-semibold text-slate-800">"Its way through the pipeline"</h3>
                    <ul class="space-y-0.5">{progress}</ul>
                </div>
            </div>
            {actions}
            <details class="mt-4">
                <summary class="cursor-pointer text-sm font-semibold text-slate-800">"Steps"</summary>
                <ul class="mt-2 space-y-0.5">{steps}</ul>
            </details>
        </section>
    }
}

/// A merge-back refused on a conflict: what and where, and how to do it by hand.
#[component]
fn MergeReport(error: AppError) -> impl IntoView {
    if error.code != ErrorCode::MergeBackConflict {
        return view! { <div class="mt-3"><ErrorNote error/></div> }.into_any();
    }
    let conflicts: Vec<MergeConflict> = error
        .details
        .get("conflicts")
        .cloned()
        .and_then(|c| serde_json::from_value(c).ok())
        .unwrap_or_default();
    let commands: Vec<String> = error
        .details
        .get("commands")
        .cloned()
        .and_then(|c| serde_json::from_value(c).ok())
        .unwrap_or_default();
    let items = conflicts
        .into_iter()
        .map(|c| {
            view! {
                <li class="text-sm">
                    <code class="font-mono text-xs">{c.commit[..c.commit.len().min(10)].to_owned()}</code>
                    " " {c.subject} ": "
                    {c.paths.join(", ")}
                </li>
            }
        })
        .collect_view();
    view! {
        <div class="mt-3 rounded-md border border-rose-300 bg-rose-50 p-3 text-sm text-rose-950" role="alert" data-testid="merge-conflict">
            <p class="font-semibold">"Merge back stopped on a conflict: nothing moved"</p>
            <p class="mt-1">{error.message.clone()}</p>
            <ul class="mt-2 list-disc pl-5">{items}</ul>
            <p class="mt-2 font-medium">"Do it by hand, then merge back again:"</p>
            <pre class="mt-1 overflow-auto rounded bg-white p-2 font-mono text-xs text-slate-900">{commands.join("\n")}</pre>
        </div>
    }
    .into_any()
}

/// An incident's audit events, oldest first.
fn step_list(steps: &[AuditEventView]) -> impl IntoView + use<> {
    steps
        .iter()
        .map(|e| {
            view! {
                <li class="text-sm">
                    <span class="font-mono text-xs text-slate-600">{e.at.clone()}</span>
                    " "
                    <span class="font-medium">{e.action.as_str()}</span>
                    {format!(" by {}", e.actor)}
                    {e.environment.clone().map(|env| format!(" on {env}"))}
                    {(!e.reason.is_empty()).then(|| format!(": {}", e.reason))}
                </li>
            }
        })
        .collect_view()
}

/// Incidents before this one, with their steps and the mapping of main's commits.
#[component]
fn Past(incidents: Vec<IncidentRecord>, now: i64) -> impl IntoView {
    let rows = incidents
        .into_iter()
        .filter(|r| r.incident.state == IncidentState::Merged)
        .map(|IncidentRecord { incident: i, steps }| {
            let steps = step_list(&steps);
            let when = i
                .merged_at
                .as_deref()
                .and_then(seconds)
                .map(|s| age_text(now - s))
                .unwrap_or_default();
            let mapping: Vec<CommitMapping> = i.mapping.clone();
            let count = mapping.len();
            let list = mapping
                .into_iter()
                .map(|m| {
                    view! {
                        <li class="font-mono text-xs">
                            {format!("{} → {}", &m.old[..10], &m.new[..10])}
                            <span class="font-sans text-slate-700">" " {m.subject}</span>
                        </li>
                    }
                })
                .collect_view();
            view! {
                <li class="py-2" data-past=i.incident.clone()>
                    <p class="text-sm">
                        <span class="font-semibold">{i.incident.clone()}</span>
                        {format!(" from {}, started by {}, merged back by {} {when}", i.production, i.started_by, i.merged_by.clone().unwrap_or_default())}
                    </p>
                    <details class="mt-1">
                        <summary class="cursor-pointer text-xs text-slate-700">"Steps"</summary>
                        <ul class="mt-1 space-y-0.5">{steps}</ul>
                    </details>
                    {(count > 0).then(|| view! {
                        <details class="mt-1">
                            <summary class="cursor-pointer text-xs text-slate-700">{format!("{count} commit(s) of main replayed on the fix: old → new (to restart a cancelled flow from the equivalent commit)")}</summary>
                            <ul class="mt-1">{list}</ul>
                        </details>
                    })}
                </li>
            }
        })
        .collect::<Vec<_>>();
    let none = rows.is_empty();
    view! {
        <h2 class="mt-8 text-sm font-semibold uppercase tracking-wide text-slate-600">"Past incidents"</h2>
        {none.then(|| view! { <p class="text-sm text-slate-600">"None yet."</p> })}
        <ul class="divide-y divide-slate-100">{rows.collect_view()}</ul>
    }
}
