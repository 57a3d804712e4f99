//! Admin (`/admin`, admin role): people and their roles (add, grant,
//! remove), API tokens (create, shown once; revoke), and the holds and
//! freezes in force (place one with a time window; release).

use envline_api::{HoldView, NotificationView, PersonView};
use leptos::prelude::*;

use crate::api::admin::{
    AddPerson, AdminPage as Data, CreateToken, GrantRole, RemovePerson, RemoveRole, ResetPassword,
    RevokeToken, get_admin,
};
use crate::api::pipeline::{Hold, Release};
use crate::components::error_note::ErrorNote;
use crate::components::live::{bump_on_finish, use_changes};
use crate::components::pipeline_dialogs::HoldFields;
use crate::components::table::TableHead;
use crate::error::AppError;
use crate::resource::{Loaded, load};

const INPUT: &str =
    "mt-1 block w-full rounded-md border border-slate-300 bg-white px-2 py-1 text-sm";
const PRIMARY: &str = "rounded-md bg-indigo-700 px-3 py-1.5 text-sm font-medium text-white hover:bg-indigo-800 focus:outline-none focus:ring-2 focus:ring-indigo-500 focus:ring-offset-2 disabled:opacity-50";
const SMALL: &str = "rounded border border-slate-300 bg-white px-2 py-0.5 text-xs font-medium text-slate-800 hover:bg-slate-50 focus:outline-none focus:ring-2 focus:ring-indigo-500";
const CARD: &str = "rounded-md border border-slate-200 bg-white p-4";

/// The actions of the page, shared by its sections.
#[derive(Clone, Copy)]
struct Actions {
    add: ServerAction<AddPerson>,
    grant: ServerAction<GrantRole>,
    remove: ServerAction<RemoveRole>,
    token: ServerAction<CreateToken>,
    revoke: ServerAction<RevokeToken>,
    remove_person: ServerAction<RemovePerson>,
    password: ServerAction<ResetPassword>,
    hold: ServerAction<Hold>,
    release: ServerAction<Release>,
}

/// The Admin page.
#[component]
pub fn AdminPage() -> impl IntoView {
    let changes = use_changes();
    let data = load(move || changes.get(), |_| get_admin());
    let actions = Actions {
        add: ServerAction::new(),
        grant: ServerAction::new(),
        remove: ServerAction::new(),
        token: ServerAction::new(),
        revoke: ServerAction::new(),
        remove_person: ServerAction::new(),
        password: ServerAction::new(),
        hold: ServerAction::new(),
        release: ServerAction::new(),
    };
    bump_on_finish(actions.add);
    bump_on_finish(actions.grant);
    bump_on_finish(actions.remove);
    bump_on_finish(actions.token);
    bump_on_finish(actions.revoke);
    bump_on_finish(actions.remove_person);
    bump_on_finish(actions.password);
    bump_on_finish(actions.hold);
    bump_on_finish(actions.release);
    view! {
        <div class="mb-4">
            <h1 class="text-xl font-semibold text-slate-900">"Admin"</h1>
            <p class="text-sm text-slate-600">"People, their roles and tokens; holds and freezes. Every change here is in the audit log."</p>
        </div>
        <Outcomes actions/>
        // Live changes re-render what is read; the forms stay outside, so
        // what someone is typing is kept.
        <Transition fallback=|| view! { <p class="text-slate-600">"Reading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(page) => view! { <Sections page actions/> }.into_any(),
                    Err(error) => view! { <ErrorNote error/> }.into_any(),
                }
            })}
        </Transition>
        <Forms data actions/>
    }
}

/// Add a person, create a token, hold or freeze.
#[component]
fn Forms(data: Loaded<Result<Data, AppError>>, actions: Actions) -> impl IntoView {
    view! {
        <div class="mt-4 grid items-start gap-4 lg:grid-cols-2">
            <section class=CARD aria-labelledby="add-title">
                <h2 id="add-title" class="text-base font-semibold text-slate-900">"Add a person"</h2>
                <ActionForm action=actions.add attr:class="mt-2 space-y-2">
                    <label class="block text-sm font-medium text-slate-800">"Name"<input name="name" required class=INPUT autocomplete="off"/></label>
                    <label class="block text-sm font-medium text-slate-800">
                        "Roles (viewer, promoter, tester, approver, incident-commander, admin; ROLE:GLOB limits one to environments)"
                        <input name="roles" required class=INPUT placeholder="promoter, approver:prod-*"/>
                    </label>
                    <label class="block text-sm font-medium text-slate-800">
                        "Password (optional, 8 characters or more: to sign in here)"
                        <input name="password" type="password" class=INPUT autocomplete="new-password"/>
                    </label>
                    <button type="submit" class=PRIMARY>"Add"</button>
                </ActionForm>
            </section>
            <section class=CARD aria-labelledby="token-title">
                <h2 id="token-title" class="text-base font-semibold text-slate-900">"Create a token"</h2>
                <p class="text-sm text-slate-600">"For a pipeline or a script: it acts with its user's roles, as `Authorization: Bearer …`."</p>
                <ActionForm action=actions.token attr:class="mt-2 space-y-2">
                    <label class="block text-sm font-medium text-slate-800">
                        "User"
                        <select name="user" class=INPUT>
                            <Transition fallback=|| ()>
                                {move || Suspend::new(async move {
                                    data.await
                                        .map(|page| page.people)
                                        .unwrap_or_default()
                                        .into_iter()
                                        .map(|p| view! { <option value=p.name.clone()>{p.name.clone()}</option> })
                                        .collect_view()
                                })}
                            </Transition>
                        </select>
                    </label>
                    <label class="block text-sm font-medium text-slate-800">"Label (where it is used)"<input name="label" required class=INPUT placeholder="ci-pipeline"/></label>
                    <button type="submit" class=PRIMARY>"Create token"</button>
                </ActionForm>
            </section>
        </div>
        <section class=format!("{CARD} mt-4") aria-labelledby="hold-form-title">
            <h2 id="hold-form-title" class="text-base font-semibold text-slate-900">"Hold or freeze"</h2>
            <ActionForm action=actions.hold attr:class="mt-2 grid gap-2 md:grid-cols-3">
                <label class="block text-sm font-medium text-slate-800">
                    "Environments (names or globs, comma-separated)"
                    <input name="environments" required class=INPUT placeholder="prod-*"/>
                </label>
                <label class="block text-sm font-medium text-slate-800 md:col-span-2">
                    "Why"
                    <input name="reason" required class=INPUT placeholder="end-of-year freeze"/>
                </label>
                <HoldFields window=true/>
                <div><button type="submit" class=PRIMARY>"Hold"</button></div>
            </ActionForm>
        </section>
    }
}

/// What the last action did, or why it was refused.
#[component]
fn Outcomes(actions: Actions) -> impl IntoView {
    let done = |text: String| {
        view! { <p class="mb-4 rounded-md border border-emerald-300 bg-emerald-50 p-3 text-sm text-emerald-950" role="status">{text}</p> }
            .into_any()
    };
    let refused = |error| view! { <div class="mb-4"><ErrorNote error/></div> }.into_any();
    view! {
        {move || actions.add.value().get().map(|r| r.map(|name| done(format!("{name} is added."))).unwrap_or_else(refused))}
        {move || actions.grant.value().get().map(|r| r.map(done).unwrap_or_else(refused))}
        {move || actions.remove.value().get().map(|r| r.map(done).unwrap_or_else(refused))}
        {move || actions.remove_person.value().get().map(|r| r.map(done).unwrap_or_else(refused))}
        {move || actions.password.value().get().map(|r| r.map(done).unwrap_or_else(refused))}
        {move || actions.revoke.value().get().map(|r| r.map(|id| done(format!("Token {id} is revoked: it is refused from now on."))).unwrap_or_else(refused))}
        {move || actions.hold.value().get().map(|r| r.map(|holds| done(format!("{} held.", holds.iter().map(|h| h.environment.as_str()).collect::<Vec<_>>().join(", ")))).unwrap_or_else(refused))}
        {move || actions.release.value().get().map(|r| r.map(|()| done("The hold is released.".into())).unwrap_or_else(refused))}
        {move || actions.token.value().get().map(|r| match r {
            Ok(t) => view! {
                <div class="mb-4 rounded-md border border-emerald-300 bg-emerald-50 p-3 text-sm text-emerald-950" role="status" data-testid="new-token">
                    <p>{format!("A token for {} ({}). Copy it now: it is not shown again.", t.user, t.label)}</p>
                    <code class="mt-1 block select-all break-all rounded bg-white px-2 py-1 font-mono text-xs text-slate-900">{t.token}</code>
                    <p class="mt-2">"From a terminal: "<code class="font-mono text-xs">{format!("envline login --server {}", this_server())}</code>" and paste it. In CI: set "<code class="font-mono text-xs">"ENVLINE_SERVER"</code>" and "<code class="font-mono text-xs">"ENVLINE_TOKEN"</code>"."</p>
                </div>
            }
            .into_any(),
            Err(error) => refused(error),
        })}
    }
}

#[component]
fn Sections(page: Data, actions: Actions) -> impl IntoView {
    let rows = page
        .people
        .into_iter()
        .map(|person| view! { <PersonRow person actions/> })
        .collect_view();
    let anchor = page.anchor_problem.map(|problem| {
        view! {
            <section class="mb-4 rounded-md border border-rose-300 bg-rose-50 p-4 text-sm text-rose-950" role="alert" data-testid="anchor-problem">
                <h2 class="font-semibold">"The audit log's anchor needs attention"</h2>
                <p class="mt-1 break-words">{problem}</p>
            </section>
        }
    });
    view! {
        {anchor}
        <section class=CARD aria-labelledby="people-title">
            <h2 id="people-title" class="mb-2 text-base font-semibold text-slate-900">"People"</h2>
            <div class="overflow-x-auto">
                <table class="min-w-full text-left text-sm" data-testid="people">
                    <TableHead caption="Users, their roles and their tokens" columns=&["Name", "Roles", "Grant a role", "Tokens", "Account"]/>
                    <tbody class="divide-y divide-slate-100">{rows}</tbody>
                </table>
            </div>
        </section>
        <Holds holds=page.holds actions/>
        <Notifications targets=page.notify_targets failing=page.failing_notifications/>
    }
}

/// Notifications that do not get through: what an admin fixes (the
/// receiver, or the `[[notify]]` url) before people miss an approval.
#[component]
fn Notifications(targets: usize, failing: Vec<NotificationView>) -> impl IntoView {
    let summary = match (targets, failing.len()) {
        (0, _) => "No notification targets: add [[notify]] entries to envline.toml (see envline.example.toml) to tell chat and incident tools.".to_string(),
        (n, 0) => format!("{n} target{}; nothing is failing.", if n == 1 { "" } else { "s" }),
        (_, f) => format!("{f} notification{} failing, retried with back-off until the receiver takes {}:", if f == 1 { " is" } else { "s are" }, if f == 1 { "it" } else { "them" }),
    };
    let empty = failing.is_empty();
    let rows = failing
        .into_iter()
        .map(|n| {
            view! {
                <tr data-notification=n.id.clone()>
                    <td class="px-2 py-1">{n.event.replace('_', " ")}</td>
                    <td class="px-2 py-1 font-mono text-xs">{n.target}</td>
                    <td class="px-2 py-1">{n.attempts}</td>
                    <td class="px-2 py-1">{n.last_error.unwrap_or_default()}</td>
                    <td class="px-2 py-1 text-xs">{n.next_attempt_at}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <section class=format!("{CARD} mt-4") aria-labelledby="notifications-title" data-testid="notifications">
            <h2 id="notifications-title" class="text-base font-semibold text-slate-900">"Notifications"</h2>
            <p class="text-sm text-slate-600">{summary}</p>
            {(!empty).then(|| view! {
                <table class="mt-2 min-w-full text-left text-sm">
                    <TableHead caption="Notifications being retried" columns=&["Event", "Receiver", "Attempts", "Last error", "Next attempt (UTC)"]/>
                    <tbody class="divide-y divide-slate-100">{rows}</tbody>
                </table>
            })}
        </section>
    }
}

/// One person: roles (each removable), a grant form, tokens (revocable).
#[component]
fn PersonRow(person: PersonView, actions: Actions) -> impl IntoView {
    let name = person.name.clone();
    let roles = person
        .roles
        .iter()
        .map(|role| {
            let label = format!("Remove {role} from {name}");
            let (name, data_role, shown, value) =
                (name.clone(), role.clone(), role.clone(), role.clone());
            view! {
                <li class="flex items-center gap-1" data-role=data_role>
                    <span>{shown}</span>
                    <ActionForm action=actions.remove>
                        <input type="hidden" name="name" value=name/>
                        <input type="hidden" name="role" value=value/>
                        <button type="submit" class=SMALL aria-label=label>"Remove"</button>
                    </ActionForm>
                </li>
            }
        })
        .collect_view();
    let tokens = person
        .tokens
        .into_iter()
        .map(|t| {
            let label = format!("Revoke token {} ({})", t.id, t.label);
            view! {
                <li class="flex items-center gap-1" data-token=t.id>
                    <span>{format!("{} · {}", t.id, t.label)}</span>
                    {match t.revoked_at.clone() {
                        Some(at) => view! { <span class="text-xs text-slate-600">{format!("revoked {at}")}</span> }.into_any(),
                        None => view! {
                            <ActionForm action=actions.revoke>
                                <input type="hidden" name="id" value=t.id/>
                                <button type="submit" class=SMALL aria-label=label>"Revoke"</button>
                            </ActionForm>
                        }
                        .into_any(),
                    }}
                </li>
            }
        })
        .collect_view();
    let grant_label = format!("Role to grant {name}");
    let password_label = format!("New password for {name} (ends their sessions)");
    let remove_label =
        format!("Remove {name} (roles, tokens, sessions; waiting approvals withdrawn)");
    let (row, heading) = (name.clone(), name.clone());
    let (for_grant, for_password, for_removal) = (name.clone(), name.clone(), name.clone());
    view! {
        <tr class="align-top" data-person=row>
            <th scope="row" class="px-2 py-2 font-medium text-slate-900">{heading}</th>
            <td class="px-2 py-2"><ul class="space-y-1">{roles}</ul></td>
            <td class="px-2 py-2">
                <ActionForm action=actions.grant attr:class="flex items-center gap-1">
                    <input type="hidden" name="name" value=for_grant/>
                    <input name="role" required class="w-40 rounded-md border border-slate-300 px-2 py-0.5 text-sm" placeholder="approver:prod-*" aria-label=grant_label/>
                    <button type="submit" class=SMALL>"Grant"</button>
                </ActionForm>
            </td>
            <td class="px-2 py-2"><ul class="space-y-1">{tokens}</ul></td>
            <td class="px-2 py-2">
                <ActionForm action=actions.password attr:class="flex items-center gap-1">
                    <input type="hidden" name="name" value=for_password/>
                    <input
                        name="password"
                        type="password"
                        required
                        minlength="8"
                        autocomplete="new-password"
                        class="w-36 rounded-md border border-slate-300 px-2 py-0.5 text-sm"
                        aria-label=password_label
                        placeholder="new password"
                    />
                    <button type="submit" class=SMALL>"Set password"</button>
                </ActionForm>
                <ActionForm action=actions.remove_person attr:class="mt-1">
                    <input type="hidden" name="name" value=for_removal.clone()/>
                    <button
                        type="submit"
                        class=SMALL
                        aria-label=remove_label
                        on:click=move |ev| {
                            if !confirmed(&format!("Remove {for_removal}? Their roles, tokens and sessions go, and their approvals of waiting requests are withdrawn.")) {
                                ev.prevent_default();
                            }
                        }
                    >
                        "Remove person"
                    </button>
                </ActionForm>
            </td>
        </tr>
    }
}

/// Holds and freezes in force, each releasable.
#[component]
fn Holds(holds: Vec<HoldView>, actions: Actions) -> impl IntoView {
    let empty = holds.is_empty();
    let rows = holds
        .into_iter()
        .map(|h| {
            let window = match (&h.starts_at, &h.ends_at) {
                (Some(s), Some(e)) => format!("{s} → {e}"),
                (None, Some(e)) => format!("until {e}"),
                (Some(s), None) => format!("from {s}"),
                (None, None) => "until released".into(),
            };
            let label = format!("Release the hold on {}", h.environment);
            view! {
                <tr data-hold=h.id data-environment=h.environment.clone()>
                    <td class="px-2 py-1">{h.environment.clone()}</td>
                    <td class="px-2 py-1">{h.kind.as_str().replace('_', " ")}</td>
                    <td class="px-2 py-1 text-xs">{window}</td>
                    <td class="px-2 py-1">{format!("{}: {}", h.created_by, h.reason)}</td>
                    <td class="px-2 py-1">
                        <ActionForm action=actions.release>
                            <input type="hidden" name="id" value=h.id/>
                            <button type="submit" class=SMALL aria-label=label>"Release"</button>
                        </ActionForm>
                    </td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <section class=format!("{CARD} mt-4") aria-labelledby="holds-title">
            <h2 id="holds-title" class="text-base font-semibold text-slate-900">"Holds and freezes"</h2>
            {empty.then(|| view! { <p class="text-sm text-slate-600">"Nothing is held."</p> })}
            {(!empty).then(|| view! {
                <table class="mt-2 min-w-full text-left text-sm" data-testid="holds">
                    <TableHead caption="Holds and freezes in force or to come" columns=&["Environment", "Stops", "When (UTC)", "Who and why", ""] hidden="Release"/>
                    <tbody class="divide-y divide-slate-100">{rows}</tbody>
                </table>
            })}
        </section>
    }
}

/// Asks the person to confirm a change that cannot be undone (in the
/// browser; a form posted without JavaScript goes ahead).
fn confirmed(question: &str) -> bool {
    #[cfg(feature = "hydrate")]
    {
        leptos::prelude::window()
            .confirm_with_message(question)
            .unwrap_or(false)
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = question;
        true
    }
}

/// The address this page was opened at, for the `envline login` hint.
fn this_server() -> String {
    #[cfg(feature = "hydrate")]
    {
        leptos::prelude::window()
            .location()
            .origin()
            .unwrap_or_else(|_| "URL".into())
    }
    #[cfg(not(feature = "hydrate"))]
    {
        "URL".to_string()
    }
}
