//! The intent journal: how every ref change is made all or nothing.
//!
//! An operation hands [`apply`] its ref changes and the audit events that
//! describe them. The plan is written as an intent before any ref moves; the
//! clone moves with compare-and-swap, the remote with an atomic leased push;
//! then the audit events, the requests and the intent's outcome are written
//! in one transaction. Intents left pending (a crash, a push whose outcome is
//! not known) are settled against the remote before the next change and on
//! every refresh, and recorded for the person who asked.

use envline_api::{AuditAction, ErrorCode, HoldKind, RequestKind, RequestState};
use gix::ObjectId;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::super::audit::{self, AuditDraft};
use super::super::cluster::RefScope;
use super::super::git::RefChange;
use super::super::store::{self, NewHold, NewRequest};
use super::super::{Engine, EngineError};

/// What a change recorded: the requests it created or finished, and its audit events.
#[derive(Debug, Clone, Default)]
pub(super) struct Applied {
    pub requests: Vec<i64>,
    pub events: Vec<i64>,
}

/// What an intent carries so that it can be finished after a crash.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct IntentPayload {
    pub changes: Vec<RefChange>,
    pub events: Vec<AuditDraft>,
    /// An existing request to mark done.
    pub request_id: Option<i64>,
    /// Requests to record as done (direct promotions), one per change.
    #[serde(default)]
    pub new_requests: Vec<OwnedRequest>,
    /// Auto-promotion holds to place (rollbacks): (environment, reason).
    pub holds: Vec<(String, String)>,
    /// A step of hotfix mode this change carries out (S4).
    #[serde(default)]
    pub incident: Option<IncidentStep>,
}

/// What a change does to hotfix mode, recorded with it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) enum IncidentStep {
    /// Hotfix mode starts: the incident is recorded and every open request
    /// is cancelled.
    Start(store::NewIncident),
    /// main took the fix: hotfix mode ends.
    MergeBack {
        incident: String,
        merged_by: String,
        mapping: Vec<envline_api::CommitMapping>,
    },
}

/// A request recorded as done when its change lands.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct OwnedRequest {
    pub kind: RequestKind,
    pub environment: String,
    pub source: String,
    pub from_commit: Option<String>,
    pub to_commit: String,
    pub requested_by: String,
    pub reason: String,
    pub required_approvals: u32,
}

/// The all-or-nothing core: intent, CAS in the clone, atomic leased push,
/// then audit + outcome in one transaction. A push the remote refused
/// restores the clone and fails the intent. A push whose outcome is not known
/// (it timed out, the connection broke) is never concluded "did not land":
/// the clone is restored so reads stay true, and the intent stays pending
/// until a refresh sees the remote (then it is recorded for its requester,
/// or failed; a late landing is still credited to it). Returns the request
/// ids recorded. The caller holds the ref lock.
pub(super) async fn apply(
    engine: &Engine,
    actor: &str,
    action: &str,
    payload: IntentPayload,
) -> Result<Applied, EngineError> {
    // The operation settled pending intents on its branches before it
    // planned; one pending now would mean its planning read an unsettled
    // state.
    let branches: Vec<&str> = payload.changes.iter().map(|c| c.branch.as_str()).collect();
    if !pending_on(engine, |b| branches.contains(&b))
        .await?
        .is_empty()
    {
        return Err(EngineError::Conflict {
            code: ErrorCode::Unsettled,
            message: "an earlier change's outcome is not settled yet; try again in a moment".into(),
        });
    }
    let text = serde_json::to_string(&payload).map_err(|e| EngineError::Internal(e.to_string()))?;
    let intent = store::insert_intent(&engine.pool, actor, action, &text).await?;
    engine.crash_point("after_intent");
    let changes = payload.changes.clone();
    let message = format!("envline {action} by {actor}");
    let actor_owned = actor.to_owned();
    let local = engine
        .git(move |git| git.update_refs(&changes, &actor_owned, &message))
        .await;
    if let Err(e) = local {
        store::finish_intent(&engine.pool, intent, "failed", Some(&e.to_string())).await?;
        engine.changes().touched();
        return Err(e);
    }
    engine.crash_point("after_local");
    engine.crash_point("during_push");
    // The branches go alone: the audit anchor follows in a push of its own,
    // once the changes of a burst are recorded (see [`Engine::run_anchorer`]).
    let changes = payload.changes.clone();
    let pushed = engine.git(move |git| git.push(&changes)).await;
    engine.crash_point("after_push_attempt");
    if let Err(e) = pushed {
        // Refused, or never connected: it certainly did not land.
        let refused = matches!(
            &e,
            EngineError::Conflict { .. }
                | EngineError::Remote {
                    code: ErrorCode::RemoteRejected | ErrorCode::RemoteUnreachable,
                    ..
                }
        );
        // A refusal certainly did not land. Otherwise ask the remote once:
        // if it already has the change, record it now.
        let landed = !refused && {
            let branches: Vec<String> = payload.changes.iter().map(|c| c.branch.clone()).collect();
            match engine.git(move |git| git.remote_tips(&branches)).await {
                Ok(tips) => holds_changes(engine, &payload.changes, &tips).await,
                Err(_) => false,
            }
        };
        if !landed {
            restore_clone(engine, actor, &payload.changes).await;
            engine.changes().touched();
            if refused {
                store::finish_intent(&engine.pool, intent, "failed", Some(&e.to_string())).await?;
                return Err(e);
            }
            store::note_unknown_outcome(&engine.pool, intent, &e.to_string()).await?;
            return Err(EngineError::Remote {
                code: ErrorCode::OutcomeUnknown,
                message: format!(
                    "{}; whether the remote took the change is not known yet. Envline settles it as soon as the remote answers (at the next refresh), and records it for {actor} if it landed",
                    e.to_string().trim_end_matches("; nothing was changed")
                ),
            });
        }
        tracing::warn!("git push reported `{e}` but the remote has the change; recording it");
    }
    engine.crash_point("after_push");
    let id = finish(engine, intent, &payload, Settled::Now).await?;
    engine.crash_point("after_record");
    engine.anchor_soon();
    engine.changes().changed();
    Ok(id)
}

/// [`apply`] for a change that records one request: returns that request.
pub(super) async fn apply_one(
    engine: &Engine,
    actor: &str,
    action: &str,
    payload: IntentPayload,
) -> Result<envline_api::PromotionView, EngineError> {
    let id = *apply(engine, actor, action, payload)
        .await?
        .requests
        .first()
        .ok_or_else(|| EngineError::Internal("request not recorded".into()))?;
    store::request(&engine.pool, id)
        .await?
        .ok_or_else(|| EngineError::Internal("request vanished".into()))
}

/// Whether the remote's `tips` (one per change, in order) hold every change:
/// the branch is at the change's `new`; or, for a forward change only, at a
/// descendant of `new` that is not its `old` (someone pushed on top
/// afterwards). A move back (a rollback, a reset) counts only when the
/// branch is exactly at `new`: its `old` descends from `new` too.
async fn holds_changes(engine: &Engine, changes: &[RefChange], tips: &[Option<ObjectId>]) -> bool {
    for (change, tip) in changes.iter().zip(tips) {
        let Some(tip) = *tip else { return false };
        if tip == change.new {
            continue;
        }
        if Some(tip) == change.old {
            return false;
        }
        let (new, old) = (change.new, change.old);
        let on_top = engine
            .git(move |git| {
                let forward = match old {
                    Some(old) => git.is_ancestor(old, new)?,
                    None => true,
                };
                Ok(forward && git.is_ancestor(new, tip)?)
            })
            .await
            .unwrap_or(false);
        if !on_top {
            return false;
        }
    }
    !changes.is_empty()
}

/// Puts the clone's refs back where they were before a push that did not land
/// (the next fetch would too; this keeps reads right until then).
async fn restore_clone(engine: &Engine, actor: &str, changes: &[RefChange]) {
    let restore: Vec<RefChange> = changes
        .iter()
        .filter_map(|c| {
            c.old.map(|old| RefChange {
                branch: c.branch.clone(),
                old: Some(c.new),
                new: old,
            })
        })
        .collect();
    let actor = actor.to_owned();
    let restored = engine
        .git(move |git| git.update_refs(&restore, &actor, "envline restore after failed push"))
        .await;
    if let Err(r) = restored {
        tracing::error!(
            "could not restore the clone after a failed push: {r}; the next refresh fetches the remote's state"
        );
    }
}

/// At start-up when the remote cannot be reached: the clone may hold the
/// local half of a change whose push never finished. Put those refs back to
/// what they were, so the pages and the API never show a move that has not
/// happened; the intents stay pending until the remote answers.
pub async fn restore_pending(engine: &Engine) -> Result<(), EngineError> {
    for intent in store::pending_intents(&engine.pool).await? {
        let payload: IntentPayload = serde_json::from_str(&intent.payload).map_err(|e| {
            EngineError::Internal(format!("intent {} is unreadable: {e}", intent.id))
        })?;
        let mut local = Vec::new();
        for change in &payload.changes {
            let branch = change.branch.clone();
            if engine.git(move |git| git.branch_tip(&branch)).await? == Some(change.new) {
                local.push(change.clone());
            }
        }
        if !local.is_empty() {
            tracing::warn!(
                "intent {} ({} by {}) is unsettled and the remote cannot be reached: showing the branches where they were",
                intent.id,
                intent.action,
                intent.actor
            );
            restore_clone(engine, &intent.actor, &local).await;
        }
    }
    Ok(())
}

/// Settles intents left pending (a crash, or a push whose outcome was not
/// known) before a new change, so their outcome is decided against the remote
/// as it was and recorded for the person who asked. Operations call it first,
/// under the ref lock, before they read where branches are and check gates,
/// so no network wait separates their checks from their push.
pub(super) async fn settle_pending(
    engine: &Engine,
    scope: Option<&RefScope>,
) -> Result<(), EngineError> {
    // Also those on the branches it only reads: a change of unknown
    // outcome there (a rollback, say) must be settled before anything
    // decides from where that branch is.
    if pending_on(engine, |b| scope.is_none_or(|s| s.covers(b)))
        .await?
        .is_empty()
    {
        return Ok(());
    }
    fetch_and_settle(
        engine,
        "an earlier change's outcome is not settled and the remote cannot be reached to settle it",
        scope,
    )
    .await
}

/// The pending intents that change a branch `touches` says yes to, each
/// with its payload.
async fn pending_on(
    engine: &Engine,
    touches: impl Fn(&str) -> bool,
) -> Result<Vec<(store::IntentRow, IntentPayload)>, EngineError> {
    let mut pending = Vec::new();
    for intent in store::pending_intents(&engine.pool).await? {
        let payload: IntentPayload = serde_json::from_str(&intent.payload).map_err(|e| {
            EngineError::Internal(format!("intent {} is unreadable: {e}", intent.id))
        })?;
        if payload.changes.iter().any(|c| touches(&c.branch)) {
            pending.push((intent, payload));
        }
    }
    Ok(pending)
}

/// Fetches, settles pending intents against the remote, and records the
/// other moves the fetch brought before anything reads the clone as its
/// starting point (I5): of every ref, or of those `scope` covers (its
/// caller holds their locks, and the intents and moves settled are those of
/// the branches it moves). `why` says, when the remote cannot be reached,
/// why it had to be.
async fn fetch_and_settle(
    engine: &Engine,
    why: &str,
    scope: Option<&RefScope>,
) -> Result<(), EngineError> {
    let unreachable = |e: EngineError| EngineError::Remote {
        code: ErrorCode::RemoteUnreachable,
        message: format!("{why} ({e}); try again when the remote answers"),
    };
    match scope {
        None => engine.git(|git| git.fetch()).await.map_err(unreachable)?,
        Some(scope) => {
            let _fetching = engine.cluster.lock_fetch().await;
            engine
                .git(|git| git.fetch_staged())
                .await
                .map_err(unreachable)?;
            let refs = scope.refs();
            engine.git(move |git| git.adopt_fetched(&refs)).await?;
            if scope.anchor {
                engine.anchoring.fetched();
            }
        }
    }
    reconcile_intents_in(engine, scope).await?;
    record_observations_in(engine, scope).await
}

/// How an intent comes to be recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Settled {
    /// Right after its push.
    Now,
    /// Later, by a refresh that saw the remote holding it (after a crash or
    /// a push whose outcome was not known).
    Later,
    /// After it was marked failed: the push landed late after all.
    Late,
}

/// Records a pushed change: audit events, observed tips, requests, holds, intent done.
async fn finish(
    engine: &Engine,
    intent: i64,
    payload: &IntentPayload,
    settled: Settled,
) -> Result<Applied, EngineError> {
    let mut tx = store::begin(&engine.pool).await?;
    // An intent is finished once: if another path settled it first, this
    // writes nothing. A late landing may finish one that was marked failed.
    let finished = if settled == Settled::Late {
        store::revive_intent(&mut *tx, intent).await?
    } else {
        store::finish_intent(&mut *tx, intent, "done", None).await?
    };
    if !finished {
        tx.rollback().await?;
        return Ok(Applied::default());
    }
    // The request each environment's change belongs to.
    let mut requests: Vec<(String, i64)> = Vec::new();
    for r in &payload.new_requests {
        let id = store::insert_request(
            &mut tx,
            &NewRequest {
                kind: r.kind,
                environment: &r.environment,
                source: &r.source,
                from_commit: r.from_commit.as_deref(),
                to_commit: &r.to_commit,
                requested_by: &r.requested_by,
                reason: &r.reason,
                required_approvals: r.required_approvals,
                state: RequestState::Done,
            },
        )
        .await?;
        requests.push((r.environment.clone(), id));
    }
    if let Some(id) = payload.request_id {
        for e in &payload.events {
            requests.push((e.environment.clone().unwrap_or_default(), id));
        }
    }
    let events: Vec<AuditDraft> = payload
        .events
        .iter()
        .cloned()
        .map(|mut e| {
            let request = requests
                .iter()
                .find(|(env, _)| Some(env) == e.environment.as_ref())
                .map(|(_, id)| *id);
            if let serde_json::Value::Object(map) = &mut e.details {
                map.insert("intent".into(), json!(intent));
                if let Some(id) = request {
                    map.entry("request").or_insert(json!(id));
                }
                match settled {
                    Settled::Now => {}
                    Settled::Later => {
                        map.insert("settled_later".into(), json!(true));
                    }
                    Settled::Late => {
                        map.insert("landed_late".into(), json!(true));
                    }
                }
            }
            e
        })
        .collect();
    // Each request's result: the new tip of its environment's branch.
    for (i, event) in events.iter().enumerate() {
        if let Some((_, id)) = requests
            .iter()
            .find(|(env, _)| Some(env) == event.environment.as_ref())
        {
            let result = payload.changes.get(i).map(|c| c.new.to_string());
            store::set_request_state(&mut tx, *id, RequestState::Done, None, result.as_deref())
                .await?;
        }
    }
    // I3: rolling an environment back from a commit is a failed verdict on
    // that commit there, recorded with the rollback, so it cannot be promoted
    // onward (through any source) until it passes there again.
    let mut events = events;
    for event in events
        .iter_mut()
        .filter(|e| e.action == AuditAction::Rollback)
    {
        let (Some(env), Some(from)) = (event.environment.clone(), event.old.clone()) else {
            continue;
        };
        let summary = if event.reason.is_empty() {
            format!("rolled back by {}", event.actor)
        } else {
            format!("rolled back by {}: {}", event.actor, event.reason)
        };
        let verdict = store::record_verification(
            &mut tx,
            &store::NewVerification {
                environment: &env,
                commit: &from,
                status: envline_api::VerificationStatus::Failed,
                url: None,
                summary: Some(&summary),
                recorded_by: &event.actor,
            },
        )
        .await?;
        if let serde_json::Value::Object(map) = &mut event.details {
            map.insert("verification".into(), json!(verdict.id));
        }
    }
    // A move Envline did not record between its last look and this change's
    // start is written first, so the log has no gap (I5).
    let mut gaps = Vec::new();
    for change in &payload.changes {
        let seen = store::observed_tip(&mut tx, &change.branch).await?;
        let start = change.old.map(|o| o.to_string());
        if let Some(seen) = seen
            && seen != store::DELETED
            && Some(&seen) != start.as_ref()
        {
            gaps.push(AuditDraft {
                actor: "envline".into(),
                action: AuditAction::OutOfBand,
                environment: engine
                    .config
                    .pipeline
                    .environment_of_branch(&change.branch)
                    .map(str::to_owned),
                old: Some(seen),
                new: start.clone(),
                reason: format!(
                    "branch `{}` moved without Envline before this change",
                    change.branch
                ),
                details: json!({ "branch": change.branch, "intent": intent }),
            });
        }
    }
    audit::append(&mut tx, &gaps).await?;
    let event_ids = audit::append(&mut tx, &events).await?;
    for change in &payload.changes {
        store::set_observed_tip(&mut tx, &change.branch, &change.new.to_string()).await?;
    }
    for (env, reason) in &payload.holds {
        if store::has_reset_hold(&mut tx, env).await? {
            continue;
        }
        let actor = events
            .first()
            .map(|e| e.actor.clone())
            .unwrap_or_else(|| "envline".into());
        store::insert_hold(
            &mut tx,
            &NewHold {
                environment: env,
                kind: HoldKind::AutoPromotion,
                placed_by: "reset",
                reason,
                created_by: &actor,
                starts_at: None,
                ends_at: None,
            },
        )
        .await?;
    }
    let incident_changed = payload.incident.is_some();
    match &payload.incident {
        Some(IncidentStep::Start(new)) => {
            store::insert_incident(&mut tx, new).await?;
            let cancelled = store::cancel_open_requests(
                &mut tx,
                &format!("cancelled: hotfix mode started for {}", new.incident),
            )
            .await?;
            audit::append(
                &mut tx,
                &[AuditDraft {
                    actor: new.started_by.clone(),
                    action: AuditAction::HotfixPaused,
                    environment: None,
                    old: None,
                    new: None,
                    reason: format!(
                        "hotfix mode for {}: open requests cancelled, auto-promotion paused",
                        new.incident
                    ),
                    details: json!({ "incident": new.incident, "cancelled": cancelled }),
                }],
            )
            .await?;
        }
        Some(IncidentStep::MergeBack {
            incident,
            merged_by,
            mapping,
        }) => {
            store::merge_incident(&mut tx, incident, merged_by, mapping).await?;
        }
        None => {}
    }
    tx.commit().await?;
    if incident_changed {
        engine
            .hotfix_mode()
            .set(store::running_incident(&engine.pool).await?);
    }
    let mut ids: Vec<i64> = requests.into_iter().map(|(_, id)| id).collect();
    ids.dedup();
    Ok(Applied {
        requests: ids,
        events: event_ids,
    })
}

/// At start-up and on every refresh, after a fetch (so the clone equals the
/// remote): an unfinished intent whose changes the remote holds is recorded
/// as done, attributed to the person who asked; any other is marked failed,
/// and a request it was running is closed as failed too.
pub async fn reconcile_intents(engine: &Engine) -> Result<(), EngineError> {
    reconcile_intents_in(engine, None).await
}

/// [`reconcile_intents`] for the intents that move the branches `scope`
/// covers (all when `None`), whose locks the caller holds: an intent pending
/// on them is no operation's in flight. One that also moves a branch the
/// caller does not hold exclusively (one it only reads, or not at all) is
/// left to a refresh (which holds every lock), and the operation refused
/// until then.
async fn reconcile_intents_in(
    engine: &Engine,
    scope: Option<&RefScope>,
) -> Result<(), EngineError> {
    let pending = pending_on(engine, |b| scope.is_none_or(|s| s.covers(b))).await?;
    if let Some(scope) = scope
        && let Some((intent, payload)) = pending
            .iter()
            .find(|(_, p)| p.changes.iter().any(|c| !scope.writes.contains(&c.branch)))
    {
        let _ = engine.refresher().request();
        let branches: Vec<&str> = payload.changes.iter().map(|c| c.branch.as_str()).collect();
        return Err(EngineError::Conflict {
            code: ErrorCode::Unsettled,
            message: format!(
                "an earlier change ({} by {}) of branches {} is not settled yet; the next refresh settles it; try again in a moment",
                intent.action,
                intent.actor,
                branches.join(", ")
            ),
        });
    }
    for (intent, payload) in pending {
        let tips = local_tips(engine, &payload.changes).await?;
        if holds_changes(engine, &payload.changes, &tips).await {
            tracing::warn!(
                "intent {} ({} by {}) is on the remote; recording it for {}",
                intent.id,
                intent.action,
                intent.actor,
                intent.actor
            );
            finish(engine, intent.id, &payload, Settled::Later).await?;
        } else {
            tracing::warn!(
                "intent {} ({} by {}) is not on the remote; marking it failed",
                intent.id,
                intent.action,
                intent.actor
            );
            let why = format!(
                "not on the remote when it answered at {}{}",
                store::now(),
                intent
                    .error
                    .as_deref()
                    .map(|e| format!(" (the push had reported: {e})"))
                    .unwrap_or_default()
            );
            let mut tx = store::begin(&engine.pool).await?;
            if store::fail_unsettled_intent(&mut *tx, intent.id, &why).await?
                && let Some(request) = payload.request_id
            {
                store::fail_request_if_open(
                    &mut tx,
                    request,
                    &format!("its push did not reach the remote ({why}); nothing was changed; request again"),
                )
                .await?;
            }
            tx.commit().await?;
        }
    }
    // Every push of these branches is settled now (this runs under their
    // locks): a request into their environments still `executing` never
    // got as far as its push.
    let environments: Option<Vec<String>> = scope.map(|scope| {
        engine
            .config
            .pipeline
            .environments()
            .iter()
            .filter(|e| scope.writes.contains(&e.branch))
            .map(|e| e.name.clone())
            .collect()
    });
    let mut tx = store::begin(&engine.pool).await?;
    if store::fail_orphaned_executing(&mut tx, environments.as_deref()).await? > 0 {
        tracing::warn!("requests interrupted before their push were closed as failed");
    }
    tx.commit().await?;
    Ok(())
}

/// The clone's tips of the branches an intent changes, in order.
async fn local_tips(
    engine: &Engine,
    changes: &[RefChange],
) -> Result<Vec<Option<ObjectId>>, EngineError> {
    let branches: Vec<String> = changes.iter().map(|c| c.branch.clone()).collect();
    engine
        .git(move |git| {
            branches
                .iter()
                .map(|b| git.branch_tip(b))
                .collect::<Result<Vec<_>, _>>()
        })
        .await
}

/// A branch that moved without a pending intent may be a push that landed
/// after Envline gave up on it: credit the failed intent it matches (its
/// requester, its approvals), not "out of band". Only an intent whose outcome
/// was unknown, made recently, whose branches were still where it started
/// from, oldest first.
async fn credit_late_landing(
    engine: &Engine,
    branch: &str,
    tip: ObjectId,
    observed: &std::collections::HashMap<String, String>,
    mine: &(dyn Fn(&str) -> bool + Sync),
) -> Result<bool, EngineError> {
    let window = chrono::Duration::from_std(late_landing_window(engine)).unwrap_or_default();
    let since = (chrono::Utc::now() - window).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    for intent in store::late_landing_candidates(&engine.pool, &since).await? {
        let Ok(payload) = serde_json::from_str::<IntentPayload>(&intent.payload) else {
            continue;
        };
        // Recorded only by whoever holds the locks of all its branches.
        if !payload
            .changes
            .iter()
            .any(|c| c.branch == branch && c.new == tip)
            || !payload.changes.iter().all(|c| mine(&c.branch))
        {
            continue;
        }
        // Nothing else moved these branches since the intent was made.
        let unmoved = payload.changes.iter().all(|c| {
            observed.get(&c.branch).map(String::as_str) == c.old.map(|o| o.to_string()).as_deref()
        });
        if !unmoved {
            continue;
        }
        let tips = local_tips(engine, &payload.changes).await?;
        if holds_changes(engine, &payload.changes, &tips).await {
            tracing::warn!(
                "intent {} ({} by {}) landed after it was marked failed; recording it for {}",
                intent.id,
                intent.action,
                intent.actor,
                intent.actor
            );
            finish(engine, intent.id, &payload, Settled::Late).await?;
            return Ok(true);
        }
    }
    Ok(false)
}

/// How long after a push gave up it may still land and be credited.
fn late_landing_window(engine: &Engine) -> std::time::Duration {
    let timeout = std::time::Duration::from_secs(engine.config.repository.network_timeout_seconds);
    (timeout * 5).max(std::time::Duration::from_secs(600))
}

/// The branches whose moves Envline logs, each with the environment it is
/// (`None` for a root: the configured one, and the hotfix branch in hotfix
/// mode, where people push the fix).
pub(crate) fn tracked_branches(engine: &Engine) -> Vec<(String, Option<String>)> {
    let mut tracked: Vec<(String, Option<String>)> =
        vec![(engine.config.pipeline.root().to_owned(), None)];
    if let Some(incident) = engine.hotfix_mode().incident() {
        tracked.push((incident.branch.clone(), None));
    }
    tracked.extend(
        engine
            .config
            .pipeline
            .environments()
            .iter()
            .map(|e| (e.branch.clone(), Some(e.name.clone()))),
    );
    tracked
}

/// Hotfix mode as the database has it: another replica may have started or
/// ended it. Called under the ref lock.
pub(crate) async fn follow_hotfix_mode(engine: &Engine) -> Result<(), EngineError> {
    let running = store::running_incident(&engine.pool).await?;
    if running != engine.hotfix_mode().incident() {
        engine.mode.set(running);
        engine.changes.changed();
    }
    Ok(())
}

/// Whether the clone is behind what the shared database says Envline did:
/// another replica moved a branch Envline tracks, or the audit anchor,
/// since this clone last fetched.
///
/// With a `scope`, only for the refs it covers.
pub(crate) async fn clone_behind(
    engine: &Engine,
    scope: Option<&RefScope>,
) -> Result<bool, EngineError> {
    let tips = engine.git(|git| git.branch_tips()).await?;
    let observed: std::collections::HashMap<String, String> = store::observed_tips(&engine.pool)
        .await?
        .into_iter()
        .collect();
    for (branch, _) in tracked_branches(engine) {
        if scope.is_some_and(|s| !s.covers(&branch)) {
            continue;
        }
        let Some(there) = observed.get(&branch) else {
            continue;
        };
        let here = tips.get(&branch).map(|t| t.to_string());
        let there = (there != store::DELETED).then(|| there.clone());
        if here != there {
            return Ok(true);
        }
    }
    if scope.is_none_or(|s| s.anchor)
        && let Some((anchor, _)) = store::anchors::last_pushed(&engine.pool).await?
    {
        let here = engine
            .git(|git| git.branch_tip(crate::git::AUDIT_REF))
            .await?;
        if here.map(|h| h.to_string()) != Some(anchor) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Before an operation on a database other replicas share, under the ref
/// lock: hotfix mode as the database has it, and, when the clone is behind
/// what the others did, a fetch, their unsettled intents settled (a replica
/// that died mid-way left them: the lock is free) and other moves recorded,
/// so the operation starts from where the remote is.
pub(crate) async fn catch_up(engine: &Engine, scope: Option<&RefScope>) -> Result<(), EngineError> {
    follow_hotfix_mode(engine).await?;
    if !clone_behind(engine, scope).await? {
        return Ok(());
    }
    if let Some(scope) = scope
        && take_recorded_tips(engine, scope).await?
    {
        engine.changes.changed();
        return Ok(());
    }
    fetch_and_settle(
        engine,
        "another Envline replica moved branches this one has not fetched, and the remote cannot be reached",
        scope,
    )
    .await?;
    engine.changes.changed();
    Ok(())
}

/// Catches up without the network when it can: the branches `scope` covers
/// that other replicas moved are set where the database records their moves
/// landed, when the clone has those commits already (a promotion brings
/// commits of the root, which the clone has). Returns false, moving
/// nothing, when a fetch is needed (a commit the clone lacks, a deleted
/// branch, the anchor). A move made around Envline meanwhile is still
/// caught: the push's lease is this tip, so the remote refuses it.
async fn take_recorded_tips(engine: &Engine, scope: &RefScope) -> Result<bool, EngineError> {
    if scope.anchor {
        return Ok(false);
    }
    // Operations sharing a branch they read may both find it behind: one
    // moves it at a time, the other then finds it in place.
    let _fetching = engine.cluster.lock_fetch().await;
    let observed: std::collections::HashMap<String, String> = store::observed_tips(&engine.pool)
        .await?
        .into_iter()
        .collect();
    let mut changes = Vec::new();
    for branch in scope.writes.iter().chain(&scope.reads) {
        let Some(there) = observed.get(branch) else {
            continue;
        };
        let Ok(there) = ObjectId::from_hex(there.as_bytes()) else {
            return Ok(false);
        };
        let name = branch.clone();
        // Only forward from where the clone is: a clone ahead of the record
        // (a move around Envline it saw already), beside it or behind a move
        // back needs a fetch.
        let (here, forward) = engine
            .git(move |git| {
                let here = git.branch_tip(&name)?;
                let forward = git.has_object(there)
                    && match here {
                        Some(here) => here == there || git.is_ancestor(here, there)?,
                        None => true,
                    };
                Ok((here, forward))
            })
            .await?;
        if here == Some(there) {
            continue;
        }
        if !forward {
            return Ok(false);
        }
        changes.push(RefChange {
            branch: branch.clone(),
            old: here,
            new: there,
        });
    }
    if !changes.is_empty() {
        engine
            .git(move |git| git.update_refs(&changes, "envline", "envline: another replica's move"))
            .await?;
    }
    Ok(true)
}

/// I5: logs every environment branch that moved without Envline.
pub async fn record_observations(engine: &Engine) -> Result<(), EngineError> {
    record_observations_in(engine, None).await
}

/// [`record_observations`] for the branches `scope` moves (all when
/// `None`), whose locks the caller holds.
async fn record_observations_in(
    engine: &Engine,
    scope: Option<&RefScope>,
) -> Result<(), EngineError> {
    let mine = |branch: &str| scope.is_none_or(|s| s.writes.contains(branch));
    let mut tips = engine.git(|git| git.branch_tips()).await?;
    tips.retain(|branch, _| mine(branch));
    let mut observed: std::collections::HashMap<String, String> =
        store::observed_tips(&engine.pool)
            .await?
            .into_iter()
            .collect();
    // First, moves that are Envline's own pushes landing late.
    let mut credited = false;
    for (branch, tip) in &tips {
        if observed.contains_key(branch) && observed.get(branch) != Some(&tip.to_string()) {
            credited |= credit_late_landing(engine, branch, *tip, &observed, &mine).await?;
        }
    }
    if credited {
        observed = store::observed_tips(&engine.pool)
            .await?
            .into_iter()
            .collect();
    }
    let root = engine.config.pipeline.root().to_owned();
    let mut tracked = tracked_branches(engine);
    tracked.retain(|(branch, _)| mine(branch));
    // Everything that reads git is decided first; the write transaction
    // (which holds the database's write lock) only writes.
    let mut events = Vec::new();
    let mut writes: Vec<(String, String)> = Vec::new();
    for (branch, env) in tracked {
        let Some(tip) = tips.get(&branch) else {
            // A branch deleted outside Envline is a move too (I5).
            if let Some(old) = observed.get(&branch)
                && old != store::DELETED
            {
                events.push(AuditDraft {
                    actor: "envline".into(),
                    action: AuditAction::OutOfBand,
                    environment: Some(env.clone().unwrap_or(root.clone())),
                    old: Some(old.clone()),
                    new: None,
                    reason: format!("branch `{branch}` was deleted without Envline"),
                    details: json!({ "branch": branch, "deleted": true }),
                });
                writes.push((branch.clone(), store::DELETED.to_owned()));
            }
            continue;
        };
        let tip_hex = tip.to_string();
        match observed.get(&branch) {
            Some(old) if *old == tip_hex => continue,
            // Deleted, then made again without Envline: a move (I5).
            Some(old) if old == store::DELETED => {
                events.push(AuditDraft {
                    actor: "envline".into(),
                    action: AuditAction::OutOfBand,
                    environment: Some(env.clone().unwrap_or(root.clone())),
                    old: None,
                    new: Some(tip_hex.clone()),
                    reason: format!("branch `{branch}` was re-created without Envline"),
                    details: json!({ "branch": branch, "recreated": true }),
                });
            }
            Some(old) => {
                let is_ff = match ObjectId::from_hex(old.as_bytes()) {
                    Ok(old_id) => {
                        let tip = *tip;
                        engine
                            .git(move |git| git.is_ancestor(old_id, tip))
                            .await
                            .unwrap_or(false)
                    }
                    Err(_) => false,
                };
                if env.is_some() || !is_ff {
                    events.push(AuditDraft {
                        actor: "envline".into(),
                        action: AuditAction::OutOfBand,
                        environment: Some(env.clone().unwrap_or(root.clone())),
                        old: Some(old.clone()),
                        new: Some(tip_hex.clone()),
                        reason: format!(
                            "branch `{branch}` moved without Envline (a direct push){}",
                            if is_ff { "" } else { "; not a fast-forward" }
                        ),
                        details: json!({ "branch": branch, "fast_forward": is_ff }),
                    });
                }
            }
            None => {
                if env.is_some() {
                    events.push(AuditDraft {
                        actor: "envline".into(),
                        action: AuditAction::Observed,
                        environment: env.clone(),
                        old: None,
                        new: Some(tip_hex.clone()),
                        reason: format!("first seen: branch `{branch}`"),
                        details: json!({ "branch": branch }),
                    });
                }
            }
        }
        writes.push((branch.clone(), tip_hex));
    }
    if writes.is_empty() && events.is_empty() {
        return Ok(());
    }
    let mut tx = store::begin(&engine.pool).await?;
    for (branch, tip) in &writes {
        store::set_observed_tip(&mut tx, branch, tip).await?;
    }
    audit::append(&mut tx, &events).await?;
    tx.commit().await?;
    Ok(())
}
