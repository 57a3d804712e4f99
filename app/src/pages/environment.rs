//! One environment's page (`/env/{name}`): where it stands, its holds, the
//! diff to its next candidate, every move it made with who, when, from → to,
//! the approvals and why, the tests recorded in it, and cherry-picking one
//! commit onto it (S5) after a preview.

use envline_api::{AuditEventView, PromotionPreview, RequestState, VerificationView, age_text};
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use crate::api::environment::{
    CherryPick, EnvironmentPage as Data, get_environment, preview_cherry_pick,
};
use crate::components::badge::{Badge, Tone};
use crate::components::error_note::ErrorNote;
use crate::components::gate_list::safe_link;
use crate::components::live::{bump_on_finish, use_changes};
use crate::components::pipeline_dialogs::PreviewSection;
use crate::components::table::TableHead;
use crate::error::AppError;
use crate::resource::load;

const LINK: &str = "text-indigo-700 underline";
const BUTTON: &str = "rounded-md border border-slate-300 bg-white px-3 py-1.5 text-sm font-medium text-slate-800 hover:bg-slate-50 focus:outline-none focus:ring-2 focus:ring-indigo-500";
const PRIMARY: &str = "rounded-md bg-indigo-700 px-3 py-1.5 text-sm font-medium text-white hover:bg-indigo-800 focus:outline-none focus:ring-2 focus:ring-indigo-500 focus:ring-offset-2 disabled:opacity-50";
const INPUT: &str =
    "mt-1 block w-full rounded-md border border-slate-300 bg-white px-2 py-1 text-sm";

/// The Environment page.
#[component]
pub fn EnvironmentPage() -> impl IntoView {
    let changes = use_changes();
    let params = use_params_map();
    let name = Memo::new(move |_| params.with(|p| p.get("name").unwrap_or_default()));
    let data = load(
        move || (changes.get(), name.get()),
        |(_, name)| get_environment(name),
    );
    // Kept here, above what live changes re-render, so a change elsewhere
    // does not wipe a preview or what was typed.
    let pick = PickState {
        commit: RwSignal::new(String::new()),
        reason: RwSignal::new(String::new()),
        preview: Action::new(move |(env, commit): &(String, String)| {
            preview_cherry_pick(env.clone(), commit.clone())
        }),
        action: ServerAction::<CherryPick>::new(),
    };
    bump_on_finish(pick.action);
    view! {
        <Transition fallback=|| view! { <p class="text-slate-600">"Reading the environment…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(page) => view! { <Environment page pick/> }.into_any(),
                    Err(error) => view! {
                        <h1 class="mb-4 text-xl font-semibold text-slate-900">{format!("Environment {}", name.get_untracked())}</h1>
                        <ErrorNote error/>
                    }
                    .into_any(),
                }
            })}
        </Transition>
    }
}

/// The cherry-pick form's state: what was typed, the preview, the pick.
#[derive(Clone, Copy)]
struct PickState {
    commit: RwSignal<String>,
    reason: RwSignal<String>,
    preview: Action<(String, String), Result<PromotionPreview, AppError>>,
    action: ServerAction<CherryPick>,
}

#[component]
fn Environment(page: Data, pick: PickState) -> impl IntoView {
    let env = page.env.clone();
    let can = page.viewer.on(&env.name);
    let now = page.now;
    let head = env
        .head
        .as_ref()
        .map(|h| format!("at {} {}", h.short, h.subject))
        .unwrap_or_else(|| "its branch does not exist".into());
    let mut facts = vec![
        format!("branch {}", env.branch),
        format!("takes from {}", env.from.clone().unwrap_or_default()),
    ];
    if !env.requires.is_empty() {
        facts.push(format!("needs tests passed in {}", env.requires.join(", ")));
    }
    if env.approvals > 0 {
        facts.push(format!("{} approvals", env.approvals));
    }
    if env.protected {
        facts.push("production (protected)".into());
    }
    if env.auto_promote {
        facts.push("promotes itself".into());
    }
    let name = env.name.clone();
    let holds = env
        .holds
        .iter()
        .map(|h| {
            let window = match (&h.starts_at, &h.ends_at) {
                (Some(s), Some(e)) => format!(" from {s} until {e}"),
                (None, Some(e)) => format!(" until {e}"),
                (Some(s), None) => format!(" from {s}"),
                (None, None) => String::new(),
            };
            view! {
                <li data-hold=h.id>
                    {format!("{} by {}{window}: ", h.kind.as_str().replace('_', " "), h.created_by)}
                    {h.reason.clone()}
                </li>
            }
        })
        .collect_view();
    let has_holds = !env.holds.is_empty();
    view! {
        <div class="mb-4 flex flex-wrap items-start justify-between gap-3">
            <div>
                <h1 class="text-xl font-semibold text-slate-900">{format!("Environment {name}")}</h1>
                <p class="text-sm text-slate-700" data-testid="head" data-head=env.head.as_ref().map(|h| h.id.clone())>{head}</p>
                <p class="text-xs text-slate-600">{facts.join(" · ")}</p>
                {(!env.on_line && env.head.is_some()).then(|| view! {
                    <p class="mt-1 text-sm text-amber-900"><span aria-hidden="true">"⚠ "</span>"Off the line: "<a class=LINK href="/line#off-line">"see it beside the line"</a></p>
                })}
            </div>
            <div class="flex flex-wrap gap-2">
                {can.promote.then(|| view! { <a class=BUTTON href=format!("/?promote={name}")>"Promote…"</a> })}
                {can.reset.then(|| view! { <a class=BUTTON href=format!("/?rollback={name}")>"Roll back…"</a> })}
                {can.hold.then(|| view! { <a class=BUTTON href=format!("/?hold={name}")>"Hold…"</a> })}
            </div>
        </div>
        {has_holds.then(|| view! {
            <section class="mb-4 rounded-md border border-amber-300 bg-amber-50 p-3 text-sm text-amber-950" aria-labelledby="holds-title">
                <h2 id="holds-title" class="font-semibold">"Held"</h2>
                <ul class="list-disc pl-5">{holds}</ul>
            </section>
        })}
        <div class="grid items-start gap-6 xl:grid-cols-2">
            <section class="rounded-md border border-slate-200 bg-white p-4" aria-labelledby="next-title">
                <h2 id="next-title" class="mb-2 text-base font-semibold text-slate-900">"Next candidate"</h2>
                <PreviewSection preview=page.next.clone()/>
            </section>
            <CherryPickSection name=name.clone() can_pick=can.promote state=pick/>
        </div>
        <History events=page.history.clone() now/>
        <Tests verifications=page.verifications.clone() now/>
    }
}

/// S5: one commit onto this environment, previewed first.
#[component]
fn CherryPickSection(name: String, can_pick: bool, state: PickState) -> impl IntoView {
    let PickState {
        commit,
        reason,
        preview,
        action: pick,
    } = state;
    let env = name.clone();
    view! {
        <section class="rounded-md border border-slate-200 bg-white p-4" aria-labelledby="pick-title">
            <h2 id="pick-title" class="text-base font-semibold text-slate-900">"Cherry-pick a commit"</h2>
            <p class="text-sm text-slate-600">
                {format!("Brings one commit's change onto {name} out of order, through the same gates as a promotion. {name} is then off the line until it is realigned.")}
            </p>
            <form
                class="mt-3 flex items-end gap-2"
                on:submit=move |ev| {
                    ev.prevent_default();
                    preview.dispatch((env.clone(), commit.get_untracked()));
                }
            >
                <label class="block flex-1 text-sm font-medium text-slate-800">
                    "Commit id"
                    <input
                        name="commit"
                        required
                        class=INPUT
                        placeholder="7 to 40 hex digits"
                        prop:value=move || commit.get()
                        on:input=move |ev| commit.set(event_target_value(&ev))
                    />
                </label>
                <button type="submit" class=BUTTON disabled=move || preview.pending().get()>"Preview"</button>
            </form>
            <div class="mt-3" aria-live="polite">
                {move || preview.value().get().map(|result| match result {
                    Ok(p) => {
                        let blocked = p.blocked.is_some();
                        let unmet = p.gates.iter().any(|g| !g.met);
                        let id = p.candidate.as_ref().map(|c| c.id.clone()).unwrap_or_default();
                        let environment = p.environment.clone();
                        view! {
                            <div data-testid="pick-preview">
                                <PreviewSection preview=p/>
                                {(can_pick && !blocked && unmet).then(|| view! {
                                    <p class="mt-3 text-sm text-slate-700">"Every gate must be met before this commit can be picked."</p>
                                })}
                                {(can_pick && !blocked && !unmet).then(|| view! {
                                    <ActionForm action=pick attr:class="mt-3 space-y-2">
                                        <input type="hidden" name="environment" value=environment/>
                                        <input type="hidden" name="commit" value=id/>
                                        <label class="block text-sm font-medium text-slate-800">
                                            "Reason (kept in the audit log)"
                                            <textarea
                                                name="reason"
                                                required
                                                rows="2"
                                                class=INPUT
                                                prop:value=move || reason.get()
                                                on:input=move |ev| reason.set(event_target_value(&ev))
                                            ></textarea>
                                        </label>
                                        <button type="submit" class=PRIMARY disabled=move || pick.pending().get()>"Cherry-pick"</button>
                                    </ActionForm>
                                })}
                            </div>
                        }
                        .into_any()
                    }
                    Err(error) => view! { <ErrorNote error/> }.into_any(),
                })}
                {move || pick.value().get().map(|result| match result {
                    Ok(r) => {
                        let text = match r.state {
                            RequestState::Done => format!("Picked: {} is now at {}.", r.environment, r.result_commit.as_deref().map(|c| &c[..c.len().min(10)]).unwrap_or("")),
                            RequestState::AwaitingApproval => format!("Request {} awaits {} approvals on the Approvals page.", r.id, r.required_approvals),
                            other => format!("Request {} is {}.", r.id, other),
                        };
                        view! { <p class="mt-3 rounded-md border border-emerald-300 bg-emerald-50 p-3 text-sm text-emerald-950" role="status">{text}</p> }.into_any()
                    }
                    Err(error) => view! { <div class="mt-3"><ErrorNote error/></div> }.into_any(),
                })}
            </div>
        </section>
    }
}

/// Names of the approvers an event's details list.
fn approvers(e: &AuditEventView) -> Vec<String> {
    match e.details.value().get("approvals") {
        Some(serde_json::Value::Array(list)) => list
            .iter()
            .filter_map(|a| match a {
                serde_json::Value::String(s) => Some(s.clone()),
                other => other
                    .get("approver")
                    .and_then(|v| v.as_str())
                    .map(str::to_owned),
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Every event of this environment: moves, requests, holds, tests.
#[component]
fn History(events: Vec<AuditEventView>, now: i64) -> impl IntoView {
    let empty = events.is_empty();
    let short = |c: &Option<String>| {
        c.as_deref()
            .map(|c| c[..c.len().min(10)].to_string())
            .unwrap_or_else(|| "—".into())
    };
    let rows = events
        .into_iter()
        .map(|e| {
            let moved = match (&e.old, &e.new) {
                (None, None) => String::new(),
                _ => format!("{} → {}", short(&e.old), short(&e.new)),
            };
            let approvals = approvers(&e).join(", ");
            let when = chrono::DateTime::parse_from_rfc3339(&e.at)
                .map(|t| age_text(now - t.timestamp()))
                .unwrap_or_else(|_| e.at.clone());
            view! {
                <tr class="align-top" data-event=e.id data-action=e.action.as_str()>
                    <td class="whitespace-nowrap px-3 py-2 text-xs text-slate-700" title=e.at.clone()>{when}</td>
                    <td class="px-3 py-2">{e.actor.clone()}</td>
                    <td class="px-3 py-2">{e.action.as_str().replace('_', " ")}</td>
                    <td class="whitespace-nowrap px-3 py-2 font-mono text-xs">{moved}</td>
                    <td class="px-3 py-2 text-xs">{approvals}</td>
                    <td class="px-3 py-2">{e.reason.clone()}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <section class="mt-6" aria-labelledby="history-title">
            <h2 id="history-title" class="mb-2 text-base font-semibold text-slate-900">"History"</h2>
            {empty.then(|| view! { <p class="text-sm text-slate-600">"Nothing has happened here yet."</p> })}
            <div class="overflow-x-auto rounded-md border border-slate-200 bg-white">
                <table class="min-w-full text-left text-sm" data-testid="history">
                    <TableHead caption="Events of this environment, newest first" columns=&["When", "Who", "What", "From → to", "Approved by", "Why"]/>
                    <tbody class="divide-y divide-slate-100">{rows}</tbody>
                </table>
            </div>
        </section>
    }
}

/// The tests recorded in this environment.
#[component]
fn Tests(verifications: Vec<VerificationView>, now: i64) -> impl IntoView {
    let empty = verifications.is_empty();
    let rows = verifications
        .into_iter()
        .map(|v| {
            let (tone, word) = (Tone::from(v.status), v.status.as_str());
            let when = chrono::DateTime::parse_from_rfc3339(&v.at)
                .map(|t| age_text(now - t.timestamp()))
                .unwrap_or_else(|_| v.at.clone());
            let link = v.url.as_deref().and_then(safe_link).map(|href| {
                view! { <a class=LINK href=href rel="noopener noreferrer">"test run"</a> }
            });
            view! {
                <li class="flex flex-wrap items-center gap-2 py-1 text-sm" data-verification=v.id data-commit=v.commit.clone()>
                    <Badge text=word tone/>
                    <code class="rounded bg-slate-100 px-1 font-mono text-xs" title=v.commit.clone()>{v.commit[..v.commit.len().min(10)].to_string()}</code>
                    <span class="text-slate-700">{format!("by {} {when}", v.recorded_by)}</span>
                    {v.summary.clone().map(|s| view! { <span class="text-slate-600">{s}</span> })}
                    {link}
                </li>
            }
        })
        .collect_view();
    view! {
        <section class="mt-6" aria-labelledby="tests-title">
            <h2 id="tests-title" class="mb-2 text-base font-semibold text-slate-900">"Tests recorded here"</h2>
            {empty.then(|| view! { <p class="text-sm text-slate-600">"No test result has been recorded here yet."</p> })}
            <ul class="divide-y divide-slate-100">{rows}</ul>
        </section>
    }
}
