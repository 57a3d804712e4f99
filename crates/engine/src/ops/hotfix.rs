//! S4, hotfix mode: production breaks while newer versions wait upstream.
//! The incident commander starts it from a production environment: open
//! requests are cancelled, auto-promotion pauses, `hotfix/<incident>` is
//! made at production's commit and every other branch is reset there, in one
//! atomic push. The hotfix branch is then the pipeline's root: the fix is
//! pushed there and promoted through the normal gates. Once it is in
//! production the incident is resolved, and merging back replays main's
//! commits since the fork on the fix (gix three-way merges, one commit at a
//! time) and moves main there; on a conflict nothing moves and a person
//! rebases by hand, which merging back then accepts.

use envline_api::{
    AuditAction, CommitMapping, ErrorCode, FixProgress, HotfixInput, HotfixPlan, HotfixStatus,
    IncidentRecord, IncidentState, IncidentView, PlannedReset, RequestState,
};
use gix::ObjectId;
use serde_json::json;

use super::journal::{self, IncidentStep, IntentPayload};
use super::{MAX_TEXT, environment, head_of, short};
use crate::audit::{self, AuditDraft};
use crate::auth::{Permission, Principal};
use crate::git::{Person, RefChange};
use crate::pipeline::is_valid_branch_name;
use crate::store::{self, NewIncident};
use crate::{Engine, EngineError};

/// Fix commits the Incident page lists.
const FIX_COMMITS_LISTED: usize = 50;

/// An incident id people can type and git accepts in a branch name.
/// The rule the API publishes as `incident`'s pattern: words of letters,
/// digits and `_`, joined by single `.` or `-`, 64 characters at most.
fn valid_incident(incident: &str) -> Result<String, EngineError> {
    let words_joined = incident
        .split(['.', '-'])
        .all(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
    let ok = incident.len() <= 64
        && words_joined
        && !incident.ends_with(".lock")
        && is_valid_branch_name(&format!("hotfix/{incident}"));
    if ok {
        Ok(incident.to_owned())
    } else {
        Err(EngineError::BadInput(format!(
            "`{incident}` cannot name an incident: use 1 to 64 letters, digits and '_', in words joined by single '.' or '-' (like INC-42)"
        )))
    }
}

/// No incident may start while another runs.
fn none_running(engine: &Engine) -> Result<(), EngineError> {
    match engine.hotfix_mode().incident() {
        Some(i) => Err(EngineError::Conflict {
            code: ErrorCode::HotfixRunning,
            message: format!(
                "hotfix mode is already on for {} (started by {} at {}); merge it back before starting another",
                i.incident, i.started_by, i.started_at
            ),
        }),
        None => Ok(()),
    }
}

/// What starting hotfix mode for `incident` from `from` would do. Moves nothing.
pub async fn hotfix_plan(
    engine: &Engine,
    who: &Principal,
    incident: &str,
    from: &str,
) -> Result<HotfixPlan, EngineError> {
    who.require(Permission::Read, None)?;
    let incident = valid_incident(incident)?;
    none_running(engine)?;
    if let Some(used) = store::incident(&engine.pool, &incident).await? {
        return Err(EngineError::Conflict {
            code: ErrorCode::IncidentUsed,
            message: format!(
                "the incident id {incident} was already used (started by {} at {}); give this incident an id of its own, like {incident}-2",
                used.started_by, used.started_at
            ),
        });
    }
    let production = environment(engine, from)?;
    if !production.protected {
        return Err(EngineError::BadInput(format!(
            "hotfix mode starts from a production environment, and `{}` is not one (not protected): start from {}",
            production.name,
            engine
                .config
                .pipeline
                .environments()
                .iter()
                .filter(|e| e.protected)
                .map(|e| e.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let fork = head_of(engine, production).await?;
    let branch = format!("hotfix/{incident}");
    let existing = {
        let branch = branch.clone();
        engine.git(move |git| git.branch_tip(&branch)).await?
    };
    if existing.is_some() {
        return Err(EngineError::Conflict {
            code: ErrorCode::BranchExists,
            message: format!(
                "the branch `{branch}` already exists; name the incident differently, or delete that branch"
            ),
        });
    }
    let mut resets = Vec::new();
    for env in engine
        .config
        .pipeline
        .environments()
        .iter()
        .filter(|e| e.name != production.name)
    {
        let branch = env.branch.clone();
        let head = engine.git(move |git| git.branch_tip(&branch)).await?;
        let old = match head {
            Some(h) => Some(engine.views().commit(h).await?),
            None => None,
        };
        resets.push(PlannedReset {
            environment: env.name.clone(),
            branch: env.branch.clone(),
            at_fork: head == Some(fork),
            old,
            protected: env.protected,
        });
    }
    let cancels = engine
        .requests(Some(RequestState::AwaitingApproval), 1000)
        .await?;
    Ok(HotfixPlan {
        incident,
        branch,
        production: production.name.clone(),
        fork: engine.views().commit(fork).await?,
        resets,
        cancels,
        paused: engine
            .config
            .pipeline
            .environments()
            .iter()
            .filter(|e| e.auto_promote)
            .map(|e| e.name.clone())
            .collect(),
    })
}

/// Starts hotfix mode: cancels open requests, pauses auto-promotion, makes
/// `hotfix/<incident>` at production's commit and resets every other
/// environment there (but those kept), in one atomic push, audited.
pub async fn start_hotfix(
    engine: &Engine,
    who: &Principal,
    input: HotfixInput,
) -> Result<IncidentView, EngineError> {
    who.require(Permission::Hotfix, None)?;
    let reason = input.reason.as_deref().unwrap_or("").trim().to_owned();
    if reason.is_empty() {
        return Err(EngineError::BadInput(
            "say what broke in `reason`: everyone sees it while hotfix mode is on".into(),
        ));
    }
    if reason.chars().count() > MAX_TEXT {
        return Err(EngineError::BadInput(format!(
            "`reason` is longer than {MAX_TEXT} characters"
        )));
    }
    // Plan from the remote as it is now: a branch made or moved a moment ago counts.
    engine.refresh().await?;
    let guard = engine.lock_refs().await?;
    journal::settle_pending(engine, guard.scope()).await?;
    let plan = hotfix_plan(engine, who, &input.incident, &input.from).await?;
    for kept in &input.keep {
        let known = plan.resets.iter().find(|r| r.environment == *kept);
        match known {
            Some(r) if r.protected => {}
            Some(_) => {
                return Err(EngineError::Unprocessable {
                    code: ErrorCode::CannotKeep,
                    message: format!(
                        "only production (protected) environments may be kept where they are, not `{kept}`"
                    ),
                });
            }
            None => {
                return Err(EngineError::Unprocessable {
                    code: ErrorCode::CannotKeep,
                    message: format!(
                        "`{kept}` is not an environment hotfix mode resets (the environments are {})",
                        plan.resets
                            .iter()
                            .map(|r| r.environment.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
            }
        }
    }
    let fork = engine.views().resolve(&plan.fork.id).await?;
    let mut changes = vec![RefChange {
        branch: plan.branch.clone(),
        old: None,
        new: fork,
    }];
    let mut events = vec![AuditDraft {
        actor: who.user.clone(),
        action: AuditAction::HotfixStart,
        environment: Some(plan.production.clone()),
        old: None,
        new: Some(fork.to_string()),
        reason: reason.clone(),
        details: json!({ "incident": plan.incident, "branch": plan.branch, "kept": input.keep }),
    }];
    for reset in plan
        .resets
        .iter()
        .filter(|r| !r.at_fork && !input.keep.contains(&r.environment))
    {
        let old = match &reset.old {
            Some(c) => Some(engine.views().resolve(&c.id).await?),
            None => None,
        };
        changes.push(RefChange {
            branch: reset.branch.clone(),
            old,
            new: fork,
        });
        events.push(AuditDraft {
            actor: who.user.clone(),
            action: AuditAction::HotfixReset,
            environment: Some(reset.environment.clone()),
            old: old.map(|o| o.to_string()),
            new: Some(fork.to_string()),
            reason: reason.clone(),
            details: json!({ "incident": plan.incident }),
        });
    }
    let payload = IntentPayload {
        changes,
        events,
        request_id: None,
        new_requests: Vec::new(),
        holds: Vec::new(),
        incident: Some(IncidentStep::Start(NewIncident {
            incident: plan.incident.clone(),
            branch: plan.branch.clone(),
            production: plan.production.clone(),
            fork: fork.to_string(),
            reason,
            started_by: who.user.clone(),
            kept: input.keep.clone(),
        })),
    };
    journal::apply(engine, &who.user, "hotfix_start", payload).await?;
    running(engine, &plan.incident).await
}

/// The running incident called `incident`.
async fn running(engine: &Engine, incident: &str) -> Result<IncidentView, EngineError> {
    store::incident(&engine.pool, incident)
        .await?
        .ok_or_else(|| EngineError::NotFound(format!("no incident {incident}")))
}

/// The running incident, which must be `incident`.
fn the_running(engine: &Engine, incident: &str) -> Result<IncidentView, EngineError> {
    match engine.hotfix_mode().incident() {
        Some(i) if i.incident == incident => Ok(i),
        Some(i) => Err(EngineError::Conflict {
            code: ErrorCode::OtherIncident,
            message: format!(
                "the incident in hotfix mode is {}, not {incident}",
                i.incident
            ),
        }),
        None => Err(EngineError::Conflict {
            code: ErrorCode::NoHotfix,
            message: format!("{incident} is not in hotfix mode (nothing is)"),
        }),
    }
}

/// The production environments the fix must reach: where it started, and
/// every other protected one not kept aside.
fn production_of(engine: &Engine, incident: &IncidentView) -> Vec<(String, String)> {
    engine
        .config
        .pipeline
        .environments()
        .iter()
        .filter(|e| {
            e.name == incident.production || (e.protected && !incident.kept.contains(&e.name))
        })
        .map(|e| (e.name.clone(), e.branch.clone()))
        .collect()
}

/// Resolves the incident once the fix is in production; records who and when.
pub async fn resolve_hotfix(
    engine: &Engine,
    who: &Principal,
    incident: &str,
) -> Result<IncidentView, EngineError> {
    who.require(Permission::Hotfix, None)?;
    // Production as the remote has it now, not as of the last refresh.
    engine.refresh().await?;
    let _guard = engine.lock_refs().await?;
    let running_incident = the_running(engine, incident)?;
    if running_incident.state != IncidentState::Active {
        return Err(EngineError::Conflict {
            code: ErrorCode::AlreadyResolved,
            message: format!("{incident} is already resolved; merge it back"),
        });
    }
    let fork = engine.views().resolve(&running_incident.fork).await?;
    let branch = running_incident.branch.clone();
    let tip = engine
        .git(move |git| git.branch_tip(&branch))
        .await?
        .ok_or_else(|| EngineError::Conflict {
            code: ErrorCode::BranchMissing,
            message: format!("the branch `{}` is gone", running_incident.branch),
        })?;
    if tip == fork || !engine.git(move |git| git.is_ancestor(fork, tip)).await? {
        return Err(EngineError::Conflict {
            code: ErrorCode::NoFix,
            message: format!(
                "no fix is on `{}` yet (its tip must be a descendant of the fork {}, other than it): push the fix there and promote it to production first",
                running_incident.branch,
                short(&running_incident.fork)
            ),
        });
    }
    let mut missing = Vec::new();
    for (env, branch) in production_of(engine, &running_incident) {
        let has = engine
            .git(move |git| match git.branch_tip(&branch)? {
                Some(head) => git.is_ancestor(tip, head),
                None => Ok(false),
            })
            .await?;
        if !has {
            missing.push(env);
        }
    }
    if !missing.is_empty() {
        return Err(EngineError::Conflict {
            code: ErrorCode::FixNotInProduction,
            message: format!(
                "the fix ({}) is not yet in {}; promote it there first",
                short(&tip.to_string()),
                missing.join(", ")
            ),
        });
    }
    let mut tx = store::begin(&engine.pool).await?;
    if !store::resolve_incident(&mut tx, incident, &who.user, &tip.to_string()).await? {
        tx.rollback().await?;
        return Err(EngineError::Conflict {
            code: ErrorCode::AlreadyResolved,
            message: format!("{incident} was resolved meanwhile"),
        });
    }
    audit::append(
        &mut tx,
        &[AuditDraft {
            actor: who.user.clone(),
            action: AuditAction::HotfixResolved,
            environment: Some(running_incident.production.clone()),
            old: None,
            new: Some(tip.to_string()),
            reason: "the fix is in production".to_owned(),
            details: json!({ "incident": incident, "fix": tip.to_string() }),
        }],
    )
    .await?;
    tx.commit().await?;
    engine
        .hotfix_mode()
        .set(store::running_incident(&engine.pool).await?);
    engine.changes().changed();
    running(engine, incident).await
}

/// What a person runs to merge the fix back by hand.
fn by_hand(branch: &str, fix: ObjectId, main: &str, main_tip: ObjectId) -> Vec<String> {
    vec![
        "git fetch origin".into(),
        format!("git checkout -B {main} origin/{main}"),
        format!("# {fix} is the fix as resolved ({branch} then)"),
        format!("git rebase {fix}"),
        "# resolve the conflicting paths, then: git add <paths> && git rebase --continue".into(),
        format!("git push --force-with-lease={main}:{main_tip} origin {main}"),
        "# then merge back again in Envline: it accepts main once main contains the fix".into(),
    ]
}

/// Merges the resolved incident's fix back into main: main's commits since
/// the fork are replayed on the fix and main moves there (CAS, pushed). If
/// main already contains the fix (a person's own rebase), that is accepted.
/// On a conflict nothing moves. Then hotfix mode ends.
pub async fn merge_back(
    engine: &Engine,
    who: &Principal,
    incident: &str,
) -> Result<IncidentView, EngineError> {
    who.require(Permission::Hotfix, None)?;
    // A person's rebase of main was pushed a moment ago: see it.
    engine.refresh().await?;
    let guard = engine.lock_refs().await?;
    journal::settle_pending(engine, guard.scope()).await?;
    let running_incident = the_running(engine, incident)?;
    if running_incident.state != IncidentState::Resolved {
        return Err(EngineError::Conflict {
            code: ErrorCode::NotResolved,
            message: format!(
                "{incident} is not resolved yet: resolve it once the fix is in production, then merge back"
            ),
        });
    }
    let main = engine.config.pipeline.root().to_owned();
    let fork = engine.views().resolve(&running_incident.fork).await?;
    // The fix that was in production when it was resolved, whatever the
    // branch holds now (pushed to since, or rewound by someone).
    let fix = match running_incident.fix.as_deref() {
        Some(f) => engine.views().resolve(f).await?,
        None => {
            return Err(EngineError::Internal(format!(
                "{incident} is resolved but its fix was not recorded"
            )));
        }
    };
    let main_branch = main.clone();
    let main_tip = engine
        .git(move |git| git.branch_tip(&main_branch))
        .await?
        .ok_or_else(|| EngineError::Conflict {
            code: ErrorCode::BranchMissing,
            message: format!(
                "`{main}` is gone from the remote; push it back, then merge back again"
            ),
        })?;
    // A person's own rebase already put the fix into main: accept it.
    if engine
        .git(move |git| git.is_ancestor(fix, main_tip))
        .await?
    {
        return finish_by_hand(engine, who, &running_incident, main_tip).await;
    }
    let commits = engine
        .git(move |git| git.first_parent_since(main_tip, fork))
        .await?
        .ok_or_else(|| EngineError::MergeBackConflict {
            message: format!(
                "the fork point {} is not on `{main}`'s line; rebase main on the fix by hand",
                short(&fork.to_string())
            ),
            conflicts: Vec::new(),
            commands: by_hand(&running_incident.branch, fix, &main, main_tip),
        })?;
    let person = Person::envline(&who.user);
    let replayed = {
        let commits = commits.clone();
        engine
            .git(move |git| git.rebase(&commits, fix, &person))
            .await
    };
    let mapping = match replayed {
        Ok(m) => m,
        Err(EngineError::MergeBackConflict {
            message, conflicts, ..
        }) => {
            return Err(EngineError::MergeBackConflict {
                message: format!(
                    "{message}; nothing moved: rebase `{main}` on `{}` by hand (the commands are listed), then merge back again",
                    running_incident.branch
                ),
                conflicts,
                commands: by_hand(&running_incident.branch, fix, &main, main_tip),
            });
        }
        Err(e) => return Err(e),
    };
    let new_main = mapping.last().map(|(_, n)| *n).unwrap_or(fix);
    let mut mapped = Vec::with_capacity(mapping.len());
    for (old, new) in &mapping {
        mapped.push(CommitMapping {
            old: old.to_string(),
            new: new.to_string(),
            subject: engine.views().commit(*old).await?.subject,
        });
    }
    let payload = IntentPayload {
        changes: vec![RefChange {
            branch: main.clone(),
            old: Some(main_tip),
            new: new_main,
        }],
        events: vec![AuditDraft {
            actor: who.user.clone(),
            action: AuditAction::MergeBack,
            environment: Some(main.clone()),
            old: Some(main_tip.to_string()),
            new: Some(new_main.to_string()),
            reason: format!(
                "{} of {main}'s commits replayed on the fix of {incident}",
                mapped.len()
            ),
            details: json!({ "incident": incident, "fix": fix.to_string(), "replayed": mapped.len() }),
        }],
        request_id: None,
        new_requests: Vec::new(),
        holds: Vec::new(),
        incident: Some(IncidentStep::MergeBack {
            incident: incident.to_owned(),
            merged_by: who.user.clone(),
            mapping: mapped,
        }),
    };
    journal::apply(engine, &who.user, "merge_back", payload).await?;
    running(engine, incident).await
}

/// main already contains the fix: hotfix mode ends without a move.
async fn finish_by_hand(
    engine: &Engine,
    who: &Principal,
    incident: &IncidentView,
    main_tip: ObjectId,
) -> Result<IncidentView, EngineError> {
    let mut tx = store::begin(&engine.pool).await?;
    if !store::merge_incident(&mut tx, &incident.incident, &who.user, &[]).await? {
        tx.rollback().await?;
        return Err(EngineError::Conflict {
            code: ErrorCode::NotResolved,
            message: format!("{} changed meanwhile", incident.incident),
        });
    }
    audit::append(
        &mut tx,
        &[AuditDraft {
            actor: who.user.clone(),
            action: AuditAction::MergeBack,
            environment: Some(engine.config.pipeline.root().to_owned()),
            old: None,
            new: Some(main_tip.to_string()),
            reason: format!(
                "{} already contains the fix of {} (rebased by hand)",
                engine.config.pipeline.root(),
                incident.incident
            ),
            details: json!({ "incident": incident.incident, "by_hand": true }),
        }],
    )
    .await?;
    tx.commit().await?;
    engine.hotfix_mode().set(None);
    engine.changes().changed();
    running(engine, &incident.incident).await
}

/// Hotfix mode as it stands (the running incident, if any) and every incident.
pub async fn hotfix_status(
    engine: &Engine,
    who: &Principal,
) -> Result<(Option<HotfixStatus>, Vec<IncidentRecord>), EngineError> {
    who.require(Permission::Read, None)?;
    let mut all = Vec::new();
    for incident in store::incidents(&engine.pool).await? {
        let steps = store::incident_events(&engine.pool, &incident.incident).await?;
        all.push(IncidentRecord { incident, steps });
    }
    let Some(incident) = engine.hotfix_mode().incident() else {
        return Ok((None, all));
    };
    let fork = engine.views().resolve(&incident.fork).await?;
    let (branch, main) = (
        incident.branch.clone(),
        engine.config.pipeline.root().to_owned(),
    );
    let (tip, main_tip) = engine
        .git(move |git| Ok((git.branch_tip(&branch)?, git.branch_tip(&main)?)))
        .await?;
    let mut fix_commits = Vec::new();
    if let Some(t) = tip {
        let (ids, _) = engine
            .git(move |git| git.commits_between(fork, t, FIX_COMMITS_LISTED))
            .await?;
        for id in ids {
            fix_commits.push(engine.views().commit(id).await?);
        }
    }
    let mut progress = Vec::new();
    for env in engine.config.pipeline.environments() {
        let branch = env.branch.clone();
        let head = engine.git(move |git| git.branch_tip(&branch)).await?;
        let has_fix = match (tip, head) {
            (Some(t), Some(h)) if t != fork => engine.git(move |git| git.is_ancestor(t, h)).await?,
            _ => false,
        };
        progress.push(FixProgress {
            environment: env.name.clone(),
            has_fix,
            head: match head {
                Some(h) => Some(engine.views().commit(h).await?),
                None => None,
            },
        });
    }
    let main_ahead = match main_tip {
        Some(m) => {
            engine
                .git(move |git| git.commits_between(fork, m, 0))
                .await?
                .1
        }
        None => 0,
    };
    let steps = store::incident_events(&engine.pool, &incident.incident).await?;
    Ok((
        Some(HotfixStatus {
            tip: match tip {
                Some(t) => Some(engine.views().commit(t).await?),
                None => None,
            },
            incident,
            fix_commits,
            progress,
            main_ahead,
            steps,
        }),
        all,
    ))
}
