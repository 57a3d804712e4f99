//! Approvals: requests waiting for a decision, each showing exactly what
//! would move into which environment, the verification evidence, who asked
//! and why; approve or reject with a comment. Separation of duties is
//! visible: a person's own requests say they need another approver.

use envline_api::{Decision, RequestState, age_text};
use leptos::prelude::*;

use crate::api::approvals::{ApprovalItem, Decide, get_approvals};
use crate::components::badge::{Badge, Tone};
use crate::components::commit_row::CommitRow;
use crate::components::diff_view::FileList;
use crate::components::error_note::ErrorNote;
use crate::components::gate_list::GateList;
use crate::components::live::use_changes;
use crate::resource::load;

/// Comments being written on the page, by request id.
#[derive(Clone, Copy)]
struct CommentDrafts(RwSignal<std::collections::HashMap<i64, String>>);

/// The approvals page.
#[component]
pub fn ApprovalsPage() -> impl IntoView {
    let changes = use_changes();
    let decide = ServerAction::<Decide>::new();
    Effect::new(move |_| {
        if decide.version().get() > 0 {
            changes.bump();
        }
    });
    let data = load(move || changes.get(), |_| get_approvals());
    // Comments being written, by request: kept above what live changes
    // re-render, so an approver's words survive another request arriving.
    let drafts = CommentDrafts(RwSignal::new(std::collections::HashMap::new()));
    provide_context(drafts);
    Effect::new(move |_| {
        if let Some(Ok(r)) = decide.value().get() {
            drafts.0.update(|d| {
                d.remove(&r.id);
            });
        }
    });
    view! {
        <div class="mb-4">
            <h1 class="text-xl font-semibold text-slate-900">"Approvals"</h1>
            <p class="text-sm text-slate-600">
                "Promotions into protected environments wait here for approvers other than the person who asked (I4). The last approval runs the promotion."
            </p>
        </div>
        {move || decide.value().get().map(|result| match result {
            Ok(r) => {
                let text = match r.state {
                    RequestState::Done => format!(
                        "Request {} is approved and done: {} is now at {}.",
                        r.id,
                        r.environment,
                        r.result_commit.as_deref().map(|c| &c[..c.len().min(10)]).unwrap_or("")
                    ),
                    RequestState::Rejected => format!("Request {} is rejected.", r.id),
                    RequestState::AwaitingApproval => format!(
                        "Your approval of request {} is recorded: {} of {} approvals.",
                        r.id,
                        r.counted_approvers.len(),
                        r.required_approvals
                    ),
                    other => format!(
                        "Request {} is {}: {}",
                        r.id,
                        other,
                        r.state_reason.clone().unwrap_or_default()
                    ),
                };
                view! {
                    <p class="mb-4 rounded-md border border-emerald-300 bg-emerald-50 p-3 text-sm text-emerald-950" role="status" data-testid="decision-result">
                        {text}
                    </p>
                }
                .into_any()
            }
            Err(error) => view! { <div class="mb-4"><ErrorNote error/></div> }.into_any(),
        })}
        <Transition fallback=|| view! { <p class="text-slate-600">"Reading requests…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(page) => {
                        let now = page.now;
                        let waiting = page.items.len();
                        let items = page
                            .items
                            .into_iter()
                            .map(|item| view! { <RequestCard item now decide/> })
                            .collect_view();
                        let no_decided = page.decided.is_empty();
                        let decided = page
                            .decided
                            .into_iter()
                            .map(|r| {
                                let tone = match r.state {
                                    RequestState::Done => Tone::Good,
                                    RequestState::Rejected | RequestState::Failed => Tone::Bad,
                                    _ => Tone::Neutral,
                                };
                                view! {
                                    <li class="flex flex-wrap items-center gap-2 py-1 text-sm">
                                        <Badge text=r.state.as_str() tone/>
                                        <span>{format!("#{} {} → {}", r.id, r.environment, &r.to_commit[..10])}</span>
                                        <span class="text-slate-600">{format!("asked by {}; {}", r.requested_by, r.state_reason.clone().unwrap_or_default())}</span>
                                    </li>
                                }
                            })
                            .collect_view();
                        view! {
                            {(waiting == 0).then(|| view! {
                                <p class="rounded-md border border-slate-200 bg-white p-4 text-sm text-slate-700">"Nothing is waiting for approval."</p>
                            })}
                            <div class="space-y-4">{items}</div>
                            <h2 class="mt-8 text-sm font-semibold uppercase tracking-wide text-slate-600">"Recently decided"</h2>
                            {no_decided.then(|| view! { <p class="mt-2 text-sm text-slate-600">"No request has been decided yet."</p> })}
                            <ul class="mt-2 divide-y divide-slate-100">{decided}</ul>
                        }
                        .into_any()
                    }
                    Err(error) => view! { <ErrorNote error/> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// One request with its evidence and the decision form.
#[component]
fn RequestCard(item: ApprovalItem, now: i64, decide: ServerAction<Decide>) -> impl IntoView {
    let r = item.request.clone();
    let p = item.preview.clone();
    let moving = match (&p.head, &p.candidate) {
        (Some(h), Some(c)) => format!("{} → {}", h.short, c.short),
        _ => String::new(),
    };
    let commits = p
        .commits
        .iter()
        .cloned()
        .map(|c| view! { <CommitRow commit=c.commit now affects=c.affects/> })
        .collect_view();
    let mut gates = p.gates.clone();
    gates.push(item.approvals.clone());
    let approvals = r
        .approvals
        .iter()
        .map(|a| {
            let (word, tone) = match (a.decision, &a.withdrawn) {
                (Decision::Approve, Some(_)) => ("approval withdrawn", Tone::Neutral),
                (Decision::Approve, None) => ("approved", Tone::Good),
                (Decision::Reject, _) => ("rejected", Tone::Bad),
            };
            view! {
                <li class="text-sm" data-approver=a.approver.clone() data-withdrawn=a.withdrawn.is_some().to_string()>
                    <Badge text=format!("{} {word}", a.approver) tone/>
                    {(!a.comment.is_empty()).then(|| format!(" “{}”", a.comment))}
                    {a.withdrawn.clone().map(|why| view! { <span class="block text-xs text-slate-600">{format!("Does not count: {why}.")}</span> })}
                </li>
            }
        })
        .collect_view();
    let decision = if item.mine {
        view! {
            <p class="text-sm text-amber-900" data-testid="own-request">
                <span aria-hidden="true">"! "</span>
                "You asked for this promotion: it needs another approver (separation of duties)."
            </p>
        }
        .into_any()
    } else if !item.can_decide {
        view! { <p class="text-sm text-slate-600">"You cannot approve promotions into this environment."</p> }.into_any()
    } else {
        let id = r.id;
        let comment_id = format!("comment-{id}");
        let drafts = expect_context::<CommentDrafts>();
        view! {
            <ActionForm action=decide attr:class="space-y-2" attr:aria-label=format!("Decide on request {id}")>
                <input type="hidden" name="id" value=id/>
                <label class="block text-sm font-medium text-slate-800" for=comment_id.clone()>"Comment (kept in the audit log)"</label>
                <textarea
                    id=comment_id
                    name="comment"
                    rows="2"
                    maxlength="2000"
                    class="block w-full rounded-md border border-slate-300 px-2 py-1.5 text-sm focus:border-indigo-500 focus:outline-none focus:ring-2 focus:ring-indigo-500"
                    prop:value=move || drafts.0.with(|d| d.get(&id).cloned().unwrap_or_default())
                    on:input=move |ev| {
                        let text = event_target_value(&ev);
                        drafts.0.update(|d| {
                            d.insert(id, text);
                        });
                    }
                ></textarea>
                {item.approved_by_me.then(|| view! {
                    <p class="text-sm text-emerald-900"><span aria-hidden="true">"✓ "</span>"You approved this; it waits for another approver. You can still reject it."</p>
                })}
                <div class="flex gap-2">
                    <button
                        type="submit"
                        name="decision"
                        value="approve"
                        class="rounded-md bg-emerald-700 px-3 py-1.5 text-sm font-semibold text-white hover:bg-emerald-600 focus:outline-none focus:ring-2 focus:ring-emerald-500 focus:ring-offset-2 disabled:bg-slate-400"
                        disabled=move || decide.pending().get()
                    >
                        {if item.approved_by_me { "✓ Approve again (update comment)" } else { "✓ Approve" }}
                    </button>
                    <button
                        type="submit"
                        name="decision"
                        value="reject"
                        class="rounded-md border border-rose-400 bg-white px-3 py-1.5 text-sm font-semibold text-rose-800 hover:bg-rose-50 focus:outline-none focus:ring-2 focus:ring-rose-500 focus:ring-offset-2 disabled:text-slate-400"
                        disabled=move || decide.pending().get()
                    >
                        "✕ Reject"
                    </button>
                </div>
            </ActionForm>
        }
        .into_any()
    };
    view! {
        <article
            id=format!("request-{}", r.id)
            class="rounded-lg border border-slate-200 bg-white p-4 shadow-sm"
            data-request=r.id
            data-env=r.environment.clone()
            aria-label=format!("request {} into {}", r.id, r.environment)
        >
            <header class="flex flex-wrap items-baseline justify-between gap-2">
                <h2 class="text-base font-semibold">
                    {format!("#{} {} into {}", r.id, r.kind, r.environment)}
                    <span class="ml-2 font-mono text-sm font-normal text-slate-600">{moving}</span>
                </h2>
                <p class="text-sm text-slate-600">
                    {format!("asked by {} {} from {}", r.requested_by, age_text(now - parse_time(&r.created_at).unwrap_or(now)), r.source)}
                </p>
            </header>
            {(!r.reason.is_empty()).then(|| view! { <p class="mt-1 text-sm text-slate-800">"Why: " {r.reason.clone()}</p> })}
            {p.blocked.clone().map(|error| view! { <div class="mt-2"><ErrorNote error/></div> })}
            <div class="mt-3 grid gap-4 md:grid-cols-2">
                <div>
                    <h3 class="text-sm font-semibold text-slate-800">"Evidence"</h3>
                    <GateList gates/>
                    <ul class="mt-2 flex flex-wrap gap-1">{approvals}</ul>
                </div>
                <div>
                    <h3 class="text-sm font-semibold text-slate-800">{format!("What moves ({} commits)", p.commits_total)}</h3>
                    <ul class="divide-y divide-slate-100">{commits}</ul>
                </div>
            </div>
            {(p.files_total > 0).then(|| view! {
                <details class="mt-3">
                    <summary class="cursor-pointer text-sm font-semibold text-slate-800">{format!("Changed files ({})", p.files_total)}</summary>
                    <div class="mt-2"><FileList files=p.files.clone() total=p.files_total/></div>
                </details>
            })}
            <div class="mt-4 border-t border-slate-100 pt-3">{decision}</div>
        </article>
    }
}

/// Seconds since the epoch of a stored RFC 3339 time.
fn parse_time(text: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp())
}
