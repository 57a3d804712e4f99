//! What the pipeline page's dialogs hold: the promotion and rollback
//! previews with their confirmations, and the forms that act on one
//! environment (mark tested, hold, realign). Each shows the server's answer
//! in place: the result, or the refusal with its reasons.

use envline_api::{EnvironmentView, PromotionPreview, RequestKind, RequestState, RollbackPlan};
use leptos::prelude::*;

use crate::api::pipeline::{
    Hold, Promote, Realign, Rollback, Verify, preview_promotion, preview_rollback,
};
use crate::components::commit_row::CommitRow;
use crate::components::diff_view::FileList;
use crate::components::error_note::ErrorNote;
use crate::components::gate_list::GateList;
use crate::components::live::{bump_on_finish, use_changes};
use crate::resource::load;

const INPUT: &str = "mt-1 block w-full rounded-md border border-slate-300 px-2 py-1.5 text-sm focus:border-indigo-500 focus:outline-none focus:ring-2 focus:ring-indigo-500";
const PRIMARY: &str = "rounded-md bg-indigo-700 px-3 py-1.5 text-sm font-semibold text-white shadow-sm hover:bg-indigo-600 focus:outline-none focus:ring-2 focus:ring-indigo-500 focus:ring-offset-2 disabled:cursor-not-allowed disabled:bg-slate-400";
const DANGER: &str = "rounded-md bg-rose-700 px-3 py-1.5 text-sm font-semibold text-white shadow-sm hover:bg-rose-600 focus:outline-none focus:ring-2 focus:ring-rose-500 focus:ring-offset-2 disabled:cursor-not-allowed disabled:bg-slate-400";

/// The time now in seconds (ages in lists), on the server and in the browser.
fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The reason field every change takes.
#[component]
fn ReasonField(#[prop(into)] label: String, #[prop(optional)] required: bool) -> impl IntoView {
    view! {
        <label class="block text-sm font-medium text-slate-800">
            {label}
            <textarea name="reason" rows="2" maxlength="2000" required=required class=INPUT></textarea>
        </label>
    }
}

/// Previews promoting one environment or several, then promotes on confirm.
#[component]
pub fn PromoteDialog(environments: String) -> impl IntoView {
    let changes = use_changes();
    let promote = ServerAction::<Promote>::new();
    bump_on_finish(promote);
    let done = move || promote.value().with(|v| matches!(v, Some(Ok(_))));
    // Gates change while the dialog is open (a hold, a test result): the
    // preview follows them, until the promotion is done.
    let seen = Memo::new(move |previous: Option<&u64>| match previous {
        Some(p) if done() => *p,
        _ => changes.get(),
    });
    let names = environments.clone();
    let previews = load(
        move || (names.clone(), seen.get()),
        |(names, _)| preview_promotion(names, None),
    );
    let environments = StoredValue::new(environments);
    view! {
        <Transition fallback=|| view! { <p class="text-sm text-slate-600">"Working out what would move…"</p> }>
            {move || Suspend::new(async move {
                match previews.await {
                    Ok(previews) => {
                        let sections = previews.into_iter().map(|p| view! { <PreviewSection preview=p/> }).collect_view();
                        view! { <div class="space-y-6">{sections}</div> }.into_any()
                    }
                    Err(error) => view! { <ErrorNote error/> }.into_any(),
                }
            })}
        </Transition>
        <Show when=move || !done() fallback=move || view! { <PromotionResults action=promote/> }>
            <ActionForm action=promote attr:class="mt-6 space-y-3 border-t border-slate-200 pt-4">
                <input type="hidden" name="environments" value=environments.get_value()/>
                <ReasonField label="Reason (kept in the audit log)"/>
                // Rendered once the preview is known (also on the server),
                // apart from the reason field, so a refresh keeps what was typed.
                <Transition fallback=|| view! { <button type="submit" class=PRIMARY disabled=true>"Promote"</button> }>
                    {move || Suspend::new(async move {
                        let (blocked, unmet, label) = match previews.await {
                            Ok(p) => confirm_state(&p),
                            Err(_) => (true, false, "Promote".to_string()),
                        };
                        let cannot = blocked || unmet;
                        view! {
                            {cannot.then(|| view! {
                                <p class="text-sm text-rose-800" id="confirm-why">
                                    <span aria-hidden="true">"✕ "</span>
                                    {if blocked {
                                        "This cannot run as it stands (see above)."
                                    } else {
                                        "Every gate must be met first (see above)."
                                    }}
                                </p>
                            })}
                            <button
                                type="submit"
                                class=PRIMARY
                                disabled=move || cannot || promote.pending().get()
                                aria-describedby=cannot.then_some("confirm-why")
                            >
                                {move || if promote.pending().get() { "Working…".to_string() } else { label.clone() }}
                            </button>
                        }
                    })}
                </Transition>
            </ActionForm>
            {move || promote.value().get().and_then(Result::err).map(|error| view! { <div class="mt-3"><ErrorNote error/></div> })}
        </Show>
    }
}

/// Whether a promotion can be confirmed, from its previews: (blocked, some
/// gate unmet, the button's label).
fn confirm_state(previews: &[PromotionPreview]) -> (bool, bool, String) {
    let blocked = previews.iter().any(|p| p.blocked.is_some());
    let unmet = previews.iter().any(|p| p.gates.iter().any(|g| !g.met));
    let approvals = previews.iter().any(|p| p.approvals_needed > 0);
    let label = match (previews.len(), approvals) {
        (1, true) => "Request approval".to_string(),
        (1, false) => "Promote".to_string(),
        (n, _) => format!("Promote all {n}"),
    };
    (blocked, unmet, label)
}

/// A box that takes the focus when it appears (a result that replaces the
/// button that was pressed), so keyboard users are not left on the page's body.
#[component]
fn Announce(#[prop(into)] class: String, children: Children) -> impl IntoView {
    let node = NodeRef::<leptos::html::Div>::new();
    Effect::new(move |_| {
        if let Some(el) = node.get() {
            let _ = el.focus();
        }
    });
    view! {
        <div node_ref=node tabindex="-1" role="status" class=class>
            {children()}
        </div>
    }
}

/// What one environment's promotion (or cherry-pick) would do.
#[component]
pub fn PreviewSection(preview: PromotionPreview) -> impl IntoView {
    let now = now();
    let moving = match (&preview.head, &preview.candidate) {
        (Some(h), Some(c)) => format!("{} → {}", h.short, c.short),
        _ => String::new(),
    };
    let kind_note = (preview.kind == RequestKind::Reset).then(|| {
        view! {
            <p class="text-sm text-amber-900">
                <span aria-hidden="true">"! "</span>
                {format!("{} is ahead of {}: this is a reset onto it, and needs the reset role.", preview.environment, preview.source)}
            </p>
        }
    });
    let approvals = (preview.approvals_needed > 0).then(|| {
        view! {
            <p class="text-sm text-slate-700">
                {format!(
                    "Needs {} approvals from people other than you: confirming opens a request that approvers see on the Approvals page; it runs when the last approval arrives.",
                    preview.approvals_needed
                )}
            </p>
        }
    });
    let commits_heading = match preview.kind {
        RequestKind::Reset => format!("Commits that leave ({})", preview.commits_total),
        RequestKind::CherryPick => "The commit picked (its change alone)".to_string(),
        RequestKind::Promote => format!("Commits that move ({})", preview.commits_total),
    };
    let shown = preview.commits.len();
    let more = (preview.commits_total > shown)
        .then(|| view! { <p class="text-xs text-slate-500">{format!("and {} older", preview.commits_total - shown)}</p> });
    let commits = preview
        .commits
        .iter()
        .cloned()
        .map(|c| view! { <CommitRow commit=c.commit now affects=c.affects/> })
        .collect_view();
    view! {
        <section class="space-y-3" data-preview=preview.environment.clone()>
            <h3 class="text-base font-semibold">
                {preview.environment.clone()}
                <span class="ml-2 font-mono text-sm font-normal text-slate-600">{moving}</span>
                <span class="ml-2 text-sm font-normal text-slate-600">{format!("from {}", preview.source)}</span>
            </h3>
            {preview.blocked.clone().map(|error| view! { <ErrorNote error/> })}
            {kind_note}
            {(!preview.gates.is_empty()).then(|| view! {
                <div>
                    <h4 class="text-sm font-semibold text-slate-800">"Gates"</h4>
                    <GateList gates=preview.gates.clone()/>
                </div>
            })}
            {approvals}
            {(preview.commits_total > 0).then(|| view! {
                <div>
                    <h4 class="text-sm font-semibold text-slate-800">{commits_heading}</h4>
                    <ul class="divide-y divide-slate-100">{commits}</ul>
                    {more}
                </div>
            })}
            {(preview.files_total > 0).then(|| view! {
                <div>
                    <h4 class="text-sm font-semibold text-slate-800">{format!("Changed files ({})", preview.files_total)}</h4>
                    <FileList files=preview.files.clone() total=preview.files_total/>
                </div>
            })}
        </section>
    }
}

/// The outcome of a promotion, one line per environment.
#[component]
fn PromotionResults(action: ServerAction<Promote>) -> impl IntoView {
    move || {
        let Some(Ok(results)) = action.value().get() else {
            return ().into_any();
        };
        let lines = results
            .into_iter()
            .map(|r| {
                let text = match r.state {
                    RequestState::Done => {
                        let at = r.result_commit.clone().unwrap_or(r.to_commit.clone());
                        format!("{} is now at {}.", r.environment, &at[..at.len().min(10)])
                    }
                    RequestState::AwaitingApproval => format!(
                        "{}: request {} awaits {} approvals; approvers see it on the Approvals page.",
                        r.environment, r.id, r.required_approvals
                    ),
                    other => format!("{}: {}", r.environment, other),
                };
                view! { <li data-result=r.environment.clone() data-state=r.state.as_str()><span aria-hidden="true">"✓ "</span>{text}</li> }
            })
            .collect_view();
        view! {
            <Announce class="mt-6 rounded-md border border-emerald-300 bg-emerald-50 p-3 text-sm text-emerald-950 focus:outline-none focus:ring-2 focus:ring-emerald-500">
                <ul class="space-y-1">{lines}</ul>
            </Announce>
        }
        .into_any()
    }
}

/// Shows the rollback plan of one environment or several, then rolls back on confirm.
#[component]
pub fn RollbackDialog(environments: String) -> impl IntoView {
    let names = environments.clone();
    let plans = load(move || names.clone(), preview_rollback);
    let rollback = ServerAction::<Rollback>::new();
    bump_on_finish(rollback);
    view! {
        <Suspense fallback=|| view! { <p class="text-sm text-slate-600">"Working out the plan…"</p> }>
            {move || {
                let environments = environments.clone();
                Suspend::new(async move {
                    let plans = match plans.await {
                        Ok(p) => p,
                        Err(error) => return view! { <ErrorNote error/> }.into_any(),
                    };
                    let n = plans.len();
                    let rows = plans.into_iter().map(|p| view! { <PlanRow plan=p/> }).collect_view();
                    let environments = StoredValue::new(environments);
                    view! {
                        <p class="text-sm text-slate-700">
                            "A rollback resets each environment to where it was before its last promotion, in one atomic push, and holds its auto-promotion until someone releases it."
                        </p>
                        <div class="mt-3 space-y-4">{rows}</div>
                        <Show
                            when=move || !matches!(rollback.value().get(), Some(Ok(_)))
                            fallback=move || view! {
                                <Announce class="mt-6 rounded-md border border-emerald-300 bg-emerald-50 p-3 text-sm text-emerald-950 focus:outline-none focus:ring-2 focus:ring-emerald-500">
                                    {move || match rollback.value().get() {
                                        Some(Ok(events)) => events.iter().map(|e| format!(
                                            "{} is back at {}.",
                                            e.environment.clone().unwrap_or_default(),
                                            e.new.as_deref().map(|n| &n[..n.len().min(10)]).unwrap_or("")
                                        )).collect::<Vec<_>>().join(" "),
                                        _ => String::new(),
                                    }}
                                </Announce>
                            }
                        >
                            <ActionForm action=rollback attr:class="mt-6 space-y-3 border-t border-slate-200 pt-4">
                                <input type="hidden" name="environments" value=environments.get_value()/>
                                <ReasonField label="Why (kept in the audit log)" required=true/>
                                <button type="submit" class=DANGER disabled=move || rollback.pending().get()>
                                    {if n == 1 { "Roll back".to_string() } else { format!("Roll back all {n}") }}
                                </button>
                            </ActionForm>
                            {move || rollback.value().get().and_then(Result::err).map(|error| view! { <div class="mt-3"><ErrorNote error/></div> })}
                        </Show>
                    }
                    .into_any()
                })
            }}
        </Suspense>
    }
}

/// One environment's rollback: from → to, what leaves, the hold.
#[component]
fn PlanRow(plan: RollbackPlan) -> impl IntoView {
    let now = now();
    let leaving = plan
        .leaving
        .iter()
        .cloned()
        .map(|c| view! { <CommitRow commit=c now/> })
        .collect_view();
    view! {
        <section data-plan=plan.environment.clone()>
            <h3 class="text-base font-semibold">
                {plan.environment.clone()}
                <span class="ml-2 font-mono text-sm font-normal text-slate-600">
                    {format!("{} → {}", plan.head.short, plan.target.short)}
                </span>
            </h3>
            <p class="text-sm text-slate-700">{format!("Back to “{}”.", plan.target.subject)}</p>
            <h4 class="mt-2 text-sm font-semibold text-slate-800">{format!("Commits that leave ({})", plan.leaving_total)}</h4>
            <ul class="divide-y divide-slate-100">{leaving}</ul>
            {plan.places_hold.then(|| view! {
                <p class="mt-1 text-sm text-amber-900"><span aria-hidden="true">"⏸ "</span>"Auto-promotion will be held until someone releases it."</p>
            })}
        </section>
    }
}

/// Records a test result for exactly the environment's head (I3).
#[component]
pub fn VerifyForm(env: EnvironmentView) -> impl IntoView {
    let verify = ServerAction::<Verify>::new();
    bump_on_finish(verify);
    let Some(head) = env.head.clone() else {
        return view! { <p>"This environment has no branch yet."</p> }.into_any();
    };
    view! {
        <p class="text-sm text-slate-700">
            "Records a test result for exactly "
            <code class="font-mono">{head.short.clone()}</code>
            {format!(" (“{}”) in {}. Promotions that require {} need this commit passed here.", head.subject, env.name, env.name)}
        </p>
        <ActionForm action=verify attr:class="mt-4 space-y-3">
            <input type="hidden" name="environment" value=env.name.clone()/>
            <input type="hidden" name="commit" value=head.id.clone()/>
            <fieldset>
                <legend class="text-sm font-medium text-slate-800">"Result"</legend>
                <div class="mt-1 flex gap-4 text-sm">
                    <label class="flex items-center gap-1"><input type="radio" name="status" value="passed" checked=true/>"✓ passed"</label>
                    <label class="flex items-center gap-1"><input type="radio" name="status" value="failed"/>"✕ failed"</label>
                    <label class="flex items-center gap-1"><input type="radio" name="status" value="pending"/>"… pending"</label>
                </div>
            </fieldset>
            <label class="block text-sm font-medium text-slate-800">
                "Link to the test run (optional)"
                <input type="url" name="url" placeholder="https://ci.example.com/runs/123" class=INPUT/>
            </label>
            <label class="block text-sm font-medium text-slate-800">
                "Summary (optional)"
                <input type="text" name="summary" maxlength="2000" class=INPUT/>
            </label>
            <button type="submit" class=PRIMARY disabled=move || verify.pending().get()>"Record result"</button>
        </ActionForm>
        {move || match verify.value().get() {
            Some(Ok(v)) => view! {
                <p class="mt-3 rounded-md border border-emerald-300 bg-emerald-50 p-3 text-sm text-emerald-950" role="status">
                    {format!("Recorded: {} {} in {}.", &v.commit[..10], v.status, v.environment)}
                </p>
            }.into_any(),
            Some(Err(error)) => view! { <div class="mt-3"><ErrorNote error/></div> }.into_any(),
            None => ().into_any(),
        }}
    }
    .into_any()
}

/// Holds an environment, optionally until a time.
#[component]
pub fn HoldForm(env: EnvironmentView) -> impl IntoView {
    let hold = ServerAction::<Hold>::new();
    bump_on_finish(hold);
    let name = env.name.clone();
    view! {
        <p class="text-sm text-slate-700">
            {format!("A hold stops promotions into {} and tells everyone who held it and why.", env.name)}
        </p>
        <ActionForm action=hold attr:class="mt-4 space-y-3">
            <input type="hidden" name="environments" value=env.name.clone()/>
            <ReasonField label="Why" required=true/>
            <HoldFields/>
            <button type="submit" class=PRIMARY disabled=move || hold.pending().get()>"Hold"</button>
        </ActionForm>
        {move || match hold.value().get() {
            Some(Ok(_)) => view! {
                <p class="mt-3 rounded-md border border-emerald-300 bg-emerald-50 p-3 text-sm text-emerald-950" role="status">
                    {format!("{name} is held.")}
                </p>
            }.into_any(),
            Some(Err(error)) => view! { <div class="mt-3"><ErrorNote error/></div> }.into_any(),
            None => ().into_any(),
        }}
    }
}

/// What a hold stops, and until when (UTC); with `window`, from when too
/// (a freeze).
#[component]
pub fn HoldFields(#[prop(optional)] window: bool) -> impl IntoView {
    view! {
        <label class="block text-sm font-medium text-slate-800">
            "What it stops"
            <select name="kind" class=INPUT>
                <option value="promotion" selected=true>"every promotion"</option>
                <option value="auto_promotion">"only automatic promotions"</option>
            </select>
        </label>
        {window.then(|| view! {
            <label class="block text-sm font-medium text-slate-800">
                "From (UTC, optional: now)"
                <input type="datetime-local" name="starts_at" class=INPUT/>
            </label>
        })}
        <label class="block text-sm font-medium text-slate-800">
            "Until (UTC, optional: until released)"
            <input type="datetime-local" name="ends_at" class=INPUT/>
        </label>
    }
}

/// Brings an environment that is off the line back to its source (S5).
#[component]
pub fn RealignForm(env: EnvironmentView) -> impl IntoView {
    let realign = ServerAction::<Realign>::new();
    bump_on_finish(realign);
    let from = env.from.clone().unwrap_or_default();
    view! {
        <p class="text-sm text-slate-700">
            {format!(
                "{} is off the line. Realigning resets it to {}'s tip, which must have passed its gates like any promotion; from then on it is fast-forwarded again.",
                env.name, from
            )}
        </p>
        <ActionForm action=realign attr:class="mt-4 space-y-3">
            <input type="hidden" name="environment" value=env.name.clone()/>
            <ReasonField label="Reason (kept in the audit log)"/>
            <button type="submit" class=PRIMARY disabled=move || realign.pending().get()>"Realign"</button>
        </ActionForm>
        {move || match realign.value().get() {
            Some(Ok(r)) => view! {
                <p class="mt-3 rounded-md border border-emerald-300 bg-emerald-50 p-3 text-sm text-emerald-950" role="status">
                    {format!("{}: {}.", r.environment, r.state)}
                </p>
            }.into_any(),
            Some(Err(error)) => view! { <div class="mt-3"><ErrorNote error/></div> }.into_any(),
            None => ().into_any(),
        }}
    }
}
