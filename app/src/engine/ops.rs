//! The operations of DESIGN.md §3: promote, approve, verify, roll back,
//! realign, cherry-pick, hold. Each checks its gates, writes an intent,
//! moves refs with compare-and-swap in the clone and on the remote, and
//! records the outcome and its audit events together: all or nothing.

use gix::ObjectId;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::audit::{self, AuditDraft};
use super::auth::{Permission, Principal};
use super::git::RefChange;
use super::pipeline::Environment;
use super::rules::{self, PromotionFacts};
use super::store::{self, NewRequest};
use super::{Engine, EngineError};
use crate::model::{HoldView, PromotionView, VerificationView};

/// What an intent carries so that it can be finished after a crash.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct IntentPayload {
    changes: Vec<RefChange>,
    events: Vec<AuditDraft>,
    /// An existing request to mark done.
    request_id: Option<i64>,
    /// Requests to record as done (direct promotions), one per change.
    #[serde(default)]
    new_requests: Vec<OwnedRequest>,
    /// Auto-promotion holds to place (rollbacks).
    holds: Vec<(String, String)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct OwnedRequest {
    kind: String,
    environment: String,
    source: String,
    from_commit: Option<String>,
    to_commit: String,
    requested_by: String,
    reason: String,
    required_approvals: u32,
}

/// `POST /api/v1/promotions`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromoteInput {
    /// One environment…
    pub environment: Option<String>,
    /// …or several (names or globs) promoted together.
    pub environments: Option<Vec<String>>,
    pub commit: Option<String>,
    pub from: Option<String>,
    pub reason: Option<String>,
}

/// `POST /api/v1/rollbacks`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackInput {
    pub environments: Vec<String>,
    pub to: Option<String>,
    pub reason: Option<String>,
}

/// `POST /api/v1/holds`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoldInput {
    pub environments: Vec<String>,
    pub reason: String,
    /// `promotion` (default) or `auto_promotion`.
    pub kind: Option<String>,
    pub starts_at: Option<String>,
    pub ends_at: Option<String>,
}

fn environment<'a>(engine: &'a Engine, name: &str) -> Result<&'a Environment, EngineError> {
    engine.config.pipeline.environment(name).ok_or_else(|| {
        EngineError::NotFound(format!(
            "unknown environment `{name}`; the environments are {}",
            engine
                .config
                .pipeline
                .environments()
                .iter()
                .map(|e| e.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })
}

/// Expands names and globs (`prod-*`) into environments, refusing unknown names.
fn environments<'a>(
    engine: &'a Engine,
    names: &[String],
) -> Result<Vec<&'a Environment>, EngineError> {
    if names.is_empty() {
        return Err(EngineError::BadInput(
            "name at least one environment (or a glob like `prod-*`)".into(),
        ));
    }
    let mut out: Vec<&Environment> = Vec::new();
    for name in names {
        let found = if name.contains(['*', '?', '[']) {
            let m = engine.config.pipeline.matching(name);
            if m.is_empty() {
                return Err(EngineError::NotFound(format!(
                    "no environment matches `{name}`"
                )));
            }
            m
        } else {
            vec![environment(engine, name)?]
        };
        for env in found {
            if !out.iter().any(|e| e.name == env.name) {
                out.push(env);
            }
        }
    }
    Ok(out)
}

fn reason_of(reason: Option<&str>) -> Result<String, EngineError> {
    let reason = reason.unwrap_or("").trim();
    if reason.len() > 2000 {
        return Err(EngineError::BadInput(
            "`reason` is longer than 2000 characters".into(),
        ));
    }
    Ok(reason.to_owned())
}

fn short(id: &str) -> &str {
    &id[..id.len().min(10)]
}

/// The facts the gates need, read from the clone and the database.
async fn facts_for(
    engine: &Engine,
    env: &Environment,
    source: &str,
    head: ObjectId,
    candidate: ObjectId,
    is_reset: bool,
    automatic: bool,
) -> Result<PromotionFacts, EngineError> {
    let source_branch = engine
        .config
        .pipeline
        .branch_of(source)
        .ok_or_else(|| EngineError::NotFound(format!("unknown source `{source}`")))?
        .to_owned();
    let root_branch = engine.config.pipeline.root().to_owned();
    let (ff, head_on_line, on_source, on_line) = engine
        .git(move |git| {
            let source_tip = git.branch_tip(&source_branch)?;
            let root_tip = git.branch_tip(&root_branch)?;
            let ff = git.is_ancestor(head, candidate)?;
            let head_on_line = match root_tip {
                Some(r) => git.is_ancestor(head, r)?,
                None => false,
            };
            let on_source = match source_tip {
                Some(s) => git.is_ancestor(candidate, s)?,
                None => false,
            };
            let on_line = match root_tip {
                Some(r) => git.is_ancestor(candidate, r)?,
                None => false,
            };
            Ok((ff, head_on_line, on_source, on_line))
        })
        .await?;
    let candidate_hex = candidate.to_string();
    let mut verifications = Vec::new();
    for required in &env.requires {
        let v = store::latest_verification(&engine.pool, required, &candidate_hex).await?;
        verifications.push((required.clone(), v.map(|v| v.status)));
    }
    let holds = store::active_holds(&engine.pool)
        .await?
        .into_iter()
        .filter(|h| h.environment == env.name)
        .map(|h| (h.kind, h.created_by, h.reason))
        .collect();
    let facts = PromotionFacts {
        environment: env.name.clone(),
        source: source.to_owned(),
        head: head.to_string(),
        candidate: candidate_hex,
        is_reset,
        fast_forward: ff,
        head_on_line,
        candidate_on_source: on_source,
        candidate_on_line: on_line,
        verifications,
        holds,
        automatic,
    };
    Ok(facts)
}

async fn head_of(engine: &Engine, env: &Environment) -> Result<ObjectId, EngineError> {
    let branch = env.branch.clone();
    engine.git(move |git| git.branch_tip(&branch)).await?.ok_or_else(|| EngineError::Conflict {
        code: "branch_missing",
        message: format!(
            "branch `{}` of environment `{}` does not exist on the remote; push it once (e.g. at the root's first commit) and refresh",
            env.branch, env.name
        ),
    })
}

/// S1/S6: promote `environment` (or several `environments` together) to a
/// commit of its `from` (or of `from` given). Returns one request per
/// environment: `done`, or `awaiting_approval` where approvals are needed
/// (I4). When any environment's gates refuse, nothing moves at all.
pub async fn promote(
    engine: &Engine,
    who: &Principal,
    input: PromoteInput,
) -> Result<Vec<PromotionView>, EngineError> {
    promote_inner(engine, who, input, false).await
}

/// One environment's promotion, checked and ready to run.
struct Planned<'a> {
    env: &'a Environment,
    source: String,
    head: ObjectId,
    candidate: ObjectId,
    /// `promote`, or `reset` for S6 onto an environment that is ahead of the source.
    kind: &'static str,
}

async fn plan<'a>(
    engine: &Engine,
    who: &Principal,
    env: &'a Environment,
    from: Option<&str>,
    requested: Option<ObjectId>,
    automatic: bool,
) -> Result<Planned<'a>, EngineError> {
    let source = from.map(str::to_owned).unwrap_or_else(|| env.from.clone());
    if source == env.name {
        return Err(EngineError::BadInput(format!(
            "cannot promote `{source}` into itself"
        )));
    }
    let head = head_of(engine, env).await?;
    let candidate = match requested {
        Some(c) => c,
        None => {
            let branch = engine
                .config
                .pipeline
                .branch_of(&source)
                .unwrap_or_default()
                .to_owned();
            let source = source.clone();
            engine
                .git(move |git| git.branch_tip(&branch))
                .await?
                .ok_or_else(|| EngineError::Conflict {
                    code: "branch_missing",
                    message: format!("the source `{source}` has no branch yet"),
                })?
        }
    };
    // S6: an explicit source behind the target makes this a reset to the source.
    let behind = from.is_some()
        && candidate != head
        && engine
            .git(move |git| git.is_ancestor(candidate, head))
            .await?;
    if behind {
        who.require(
            Permission::Reset {
                protected: env.protected,
            },
            Some(&env.name),
        )?;
    }
    let facts = facts_for(engine, env, &source, head, candidate, behind, automatic).await?;
    rules::check_promotion(&facts)?;
    Ok(Planned {
        env,
        source,
        head,
        candidate,
        kind: if behind { "reset" } else { "promote" },
    })
}

async fn promote_inner(
    engine: &Engine,
    who: &Principal,
    input: PromoteInput,
    automatic: bool,
) -> Result<Vec<PromotionView>, EngineError> {
    let names = match (&input.environment, &input.environments) {
        (Some(one), None) => vec![one.clone()],
        (None, Some(many)) => many.clone(),
        _ => {
            return Err(EngineError::BadInput(
                "give either `environment` (one name) or `environments` (names or globs like `staging-*`)".into(),
            ));
        }
    };
    let envs = environments(engine, &names)?;
    for env in &envs {
        who.require(Permission::Promote, Some(&env.name))?;
    }
    let reason = reason_of(input.reason.as_deref())?;
    if let Some(source) = &input.from
        && engine.config.pipeline.branch_of(source).is_none()
    {
        return Err(EngineError::NotFound(format!(
            "unknown source `{source}`; `from` must be the root branch or an environment"
        )));
    }
    let requested = match &input.commit {
        Some(c) => Some(engine.resolve(c).await?),
        None => None,
    };

    let _guard = engine.write_lock.lock().await;
    let mut planned = Vec::with_capacity(envs.len());
    let mut refusals = Vec::new();
    for env in &envs {
        match plan(
            engine,
            who,
            env,
            input.from.as_deref(),
            requested,
            automatic,
        )
        .await
        {
            Ok(p) => planned.push(p),
            Err(e) if envs.len() == 1 => return Err(e),
            Err(e) => refusals.push((env.name.clone(), e)),
        }
    }
    if !refusals.is_empty() {
        // Several environments: nothing moves unless every one may.
        if refusals
            .iter()
            .all(|(_, e)| matches!(e, EngineError::GatesUnmet(_)))
        {
            let gates = refusals
                .into_iter()
                .flat_map(|(_, e)| match e {
                    EngineError::GatesUnmet(g) => g,
                    _ => Vec::new(),
                })
                .collect();
            return Err(EngineError::GatesUnmet(gates));
        }
        let (name, first) = refusals
            .into_iter()
            .find(|(_, e)| !matches!(e, EngineError::GatesUnmet(_)))
            .expect("a refusal that is not a gate");
        return Err(match first {
            EngineError::Conflict { code, message } => EngineError::Conflict {
                code,
                message: format!("`{name}`: {message}; nothing was promoted"),
            },
            other => other,
        });
    }

    let mut results = Vec::with_capacity(planned.len());
    let mut direct = Vec::new();
    for p in planned {
        if p.env.approvals > 0 {
            let view = open_request(
                engine,
                who,
                p.env,
                p.kind,
                &p.source,
                p.head,
                p.candidate,
                &reason,
                automatic,
            )
            .await?;
            results.push(view);
        } else {
            direct.push(p);
        }
    }
    if direct.is_empty() {
        return Ok(results);
    }
    let kind = if direct.iter().any(|p| p.kind == "reset") {
        "reset"
    } else {
        "promote"
    };
    let payload = IntentPayload {
        changes: direct
            .iter()
            .map(|p| RefChange {
                branch: p.env.branch.clone(),
                old: Some(p.head),
                new: p.candidate,
            })
            .collect(),
        events: direct
            .iter()
            .map(|p| AuditDraft {
                actor: who.user.clone(),
                action: p.kind.into(),
                environment: Some(p.env.name.clone()),
                old: Some(p.head.to_string()),
                new: Some(p.candidate.to_string()),
                reason: reason.clone(),
                details: json!({ "source": p.source, "automatic": automatic, "approvals": [] }),
            })
            .collect(),
        request_id: None,
        new_requests: direct
            .iter()
            .map(|p| OwnedRequest {
                kind: p.kind.into(),
                environment: p.env.name.clone(),
                source: p.source.clone(),
                from_commit: Some(p.head.to_string()),
                to_commit: p.candidate.to_string(),
                requested_by: who.user.clone(),
                reason: reason.clone(),
                required_approvals: 0,
            })
            .collect(),
        holds: direct
            .iter()
            .flat_map(|p| reset_hold(p.env, p.kind, &who.user, &reason))
            .collect(),
    };
    for id in apply(engine, &who.user, kind, payload).await? {
        results.push(
            store::request(&engine.pool, id)
                .await?
                .ok_or_else(|| EngineError::Internal("request vanished".into()))?,
        );
    }
    Ok(results)
}

#[allow(clippy::too_many_arguments)]
async fn open_request(
    engine: &Engine,
    who: &Principal,
    env: &Environment,
    kind: &str,
    source: &str,
    head: ObjectId,
    candidate: ObjectId,
    reason: &str,
    automatic: bool,
) -> Result<PromotionView, EngineError> {
    // Auto-promotion asks once per (environment, commit, position): a request
    // people rejected (or that failed) is not opened again behind their back.
    if automatic {
        let decided: Option<(i64, String)> = sqlx::query_as(
            "SELECT id, state FROM promotion_requests WHERE environment = ? AND to_commit = ? AND from_commit = ?
             AND state IN ('rejected', 'failed', 'cancelled') ORDER BY id DESC LIMIT 1",
        )
        .bind(&env.name)
        .bind(candidate.to_string())
        .bind(head.to_string())
        .fetch_optional(&engine.pool)
        .await?;
        if let Some((id, state)) = decided {
            return Err(EngineError::Conflict {
                code: "already_decided",
                message: format!(
                    "request {id} for this promotion was {state}; not asking again automatically"
                ),
            });
        }
    }
    if let Some(open) = store::open_request_for(&engine.pool, &env.name).await?
        && open.to_commit == candidate
        && open.kind == kind
        && open.from_commit == Some(head.to_string())
    {
        return Ok(open);
    }
    let mut tx = engine.pool.begin().await?;
    let superseded: Vec<(i64,)> = sqlx::query_as(
        "SELECT id FROM promotion_requests WHERE state = 'awaiting_approval' AND environment = ?",
    )
    .bind(&env.name)
    .fetch_all(&mut *tx)
    .await?;
    let candidate_hex = candidate.to_string();
    let head_hex = head.to_string();
    let id = store::insert_request(
        &mut tx,
        &NewRequest {
            kind,
            environment: &env.name,
            source,
            from_commit: Some(&head_hex),
            to_commit: &candidate_hex,
            requested_by: &who.user,
            reason,
            required_approvals: env.approvals,
            state: "awaiting_approval",
        },
    )
    .await?;
    for (old,) in &superseded {
        store::set_request_state(
            &mut tx,
            *old,
            "cancelled",
            Some(&format!("superseded by request {id}")),
            None,
        )
        .await?;
    }
    audit::append(
        &mut tx,
        &[AuditDraft {
            actor: who.user.clone(),
            action: "request".into(),
            environment: Some(env.name.clone()),
            old: None,
            new: None,
            reason: reason.to_owned(),
            details: json!({ "request": id, "kind": kind, "from": head_hex, "to": candidate_hex, "source": source, "required_approvals": env.approvals }),
        }],
    )
    .await?;
    tx.commit().await?;
    engine.changed();
    store::request(&engine.pool, id)
        .await?
        .ok_or_else(|| EngineError::Internal("request vanished".into()))
}

/// I4: an approver's decision on a request. The last needed approval executes it.
pub async fn decide(
    engine: &Engine,
    who: &Principal,
    request_id: i64,
    decision: &str,
    comment: Option<&str>,
) -> Result<PromotionView, EngineError> {
    if decision != "approve" && decision != "reject" {
        return Err(EngineError::BadInput(format!(
            "`decision` must be `approve` or `reject`, not `{decision}`"
        )));
    }
    let comment = reason_of(comment)?;
    let _guard = engine.write_lock.lock().await;
    let request = store::request(&engine.pool, request_id)
        .await?
        .ok_or_else(|| EngineError::NotFound(format!("no promotion request {request_id}")))?;
    who.require(Permission::Approve, Some(&request.environment))?;
    if request.state != "awaiting_approval" {
        return Err(EngineError::Conflict {
            code: "request_closed",
            message: format!(
                "request {request_id} is {}; it takes no more decisions",
                request.state
            ),
        });
    }
    if request.requested_by == who.user {
        return Err(EngineError::Forbidden(super::auth::Forbidden {
            user: who.user.clone(),
            permission: Permission::Approve,
            environment: Some(format!(
                "{} (separation of duties: {} requested this promotion and cannot approve it)",
                request.environment, who.user
            )),
            grants: who.grants.iter().map(|g| g.to_string()).collect(),
        }));
    }
    let mut tx = engine.pool.begin().await?;
    store::upsert_approval(&mut tx, request_id, &who.user, decision, &comment).await?;
    audit::append(
        &mut tx,
        &[AuditDraft {
            actor: who.user.clone(),
            action: if decision == "approve" {
                "approve".into()
            } else {
                "reject".into()
            },
            environment: Some(request.environment.clone()),
            old: None,
            new: None,
            reason: comment.clone(),
            details: json!({ "request": request_id, "to": request.to_commit }),
        }],
    )
    .await?;
    if decision == "reject" {
        store::set_request_state(
            &mut tx,
            request_id,
            "rejected",
            Some(&format!("rejected by {}: {comment}", who.user)),
            None,
        )
        .await?;
    }
    tx.commit().await?;
    engine.changed();
    let request = store::request(&engine.pool, request_id)
        .await?
        .expect("exists");
    let approvers: Vec<String> = request
        .approvals
        .iter()
        .filter(|a| a.decision == "approve" && a.approver != request.requested_by)
        .map(|a| a.approver.clone())
        .collect();
    if request.state == "awaiting_approval" && approvers.len() as u32 >= request.required_approvals
    {
        execute_request(engine, &request, &approvers).await?;
    }
    Ok(store::request(&engine.pool, request_id)
        .await?
        .expect("exists"))
}

/// Runs an approved request, or fails it with the reason when the world changed.
async fn execute_request(
    engine: &Engine,
    request: &PromotionView,
    approvers: &[String],
) -> Result<(), EngineError> {
    let result = try_execute_request(engine, request, approvers).await;
    if let Err(e) = &result {
        // The approvals stay recorded; the request is closed with the reason.
        let reason = format!("{e}; nothing was changed; request again");
        let mut tx = engine.pool.begin().await?;
        store::set_request_state(&mut tx, request.id, "failed", Some(&reason), None).await?;
        tx.commit().await?;
        engine.changed();
    }
    result
}

async fn try_execute_request(
    engine: &Engine,
    request: &PromotionView,
    approvers: &[String],
) -> Result<(), EngineError> {
    let env = environment(engine, &request.environment)?;
    let head = head_of(engine, env).await?;
    let expected = request.from_commit.clone().unwrap_or_default();
    if head != expected.as_str() {
        return Err(EngineError::Conflict {
            code: "ref_moved",
            message: format!(
                "`{}` moved from {} to {} since the request was made",
                env.name,
                short(&expected),
                short(&head.to_string())
            ),
        });
    }
    let candidate = engine.resolve(&request.to_commit).await?;
    let is_reset = request.kind == "reset";
    let mut facts = facts_for(
        engine,
        env,
        &request.source,
        head,
        candidate,
        is_reset,
        false,
    )
    .await?;
    if request.kind == "cherry_pick" {
        facts.is_reset = true;
        facts.candidate_on_source = true;
    }
    rules::check_promotion(&facts)?;
    let new = if request.kind == "cherry_pick" {
        let person = super::git::Person::envline(&request.requested_by);
        engine
            .git(move |git| git.cherry_pick(candidate, head, &person))
            .await?
    } else {
        candidate
    };
    let event = AuditDraft {
        actor: request.requested_by.clone(),
        action: match request.kind.as_str() {
            "cherry_pick" => "cherry_pick".into(),
            "reset" => "reset".into(),
            _ => "promote".into(),
        },
        environment: Some(env.name.clone()),
        old: Some(head.to_string()),
        new: Some(new.to_string()),
        reason: request.reason.clone(),
        details: json!({ "source": request.source, "request": request.id, "approvals": approvers, "picked": if request.kind == "cherry_pick" { Some(&request.to_commit) } else { None } }),
    };
    let payload = IntentPayload {
        changes: vec![RefChange {
            branch: env.branch.clone(),
            old: Some(head),
            new,
        }],
        events: vec![event],
        request_id: Some(request.id),
        new_requests: Vec::new(),
        holds: reset_hold(env, &request.kind, &request.requested_by, &request.reason),
    };
    apply(engine, &request.requested_by, &request.kind, payload).await?;
    Ok(())
}

/// S3: a reset holds the environment's auto-promotion until someone releases it,
/// so it is not fast-forwarded straight back.
fn reset_hold(env: &Environment, kind: &str, actor: &str, reason: &str) -> Vec<(String, String)> {
    if kind == "reset" && env.auto_promote {
        vec![(env.name.clone(), format!("reset by {actor}: {reason}"))]
    } else {
        Vec::new()
    }
}

/// Records a verification of exactly `commit` in `environment` (I3).
pub async fn verify(
    engine: &Engine,
    who: &Principal,
    environment_name: &str,
    commit: &str,
    status: &str,
    url: Option<&str>,
    summary: Option<&str>,
) -> Result<VerificationView, EngineError> {
    let env = environment(engine, environment_name)?;
    who.require(Permission::Verify, Some(&env.name))?;
    if !matches!(status, "passed" | "failed" | "pending") {
        return Err(EngineError::BadInput(format!(
            "`status` must be passed, failed or pending, not `{status}`"
        )));
    }
    if url.is_some_and(|u| u.len() > 2000) || summary.is_some_and(|s| s.len() > 2000) {
        return Err(EngineError::BadInput(
            "`url` and `summary` may be at most 2000 characters".into(),
        ));
    }
    let id = engine.resolve(commit).await?.to_string();
    // Under the write lock: a failed verification recorded now is seen by any
    // promotion that has not pushed yet (I3), and the audit chain has one writer.
    let _guard = engine.write_lock.lock().await;
    let mut tx = engine.pool.begin().await?;
    let row = store::record_verification(&mut tx, &env.name, &id, status, url, summary, &who.user)
        .await?;
    audit::append(
        &mut tx,
        &[AuditDraft {
            actor: who.user.clone(),
            action: "verify".into(),
            environment: Some(env.name.clone()),
            old: None,
            new: None,
            reason: summary.unwrap_or("").to_owned(),
            details: json!({ "commit": id, "status": status, "url": url, "verification": row.id }),
        }],
    )
    .await?;
    tx.commit().await?;
    engine.changed();
    Ok(row.into())
}

/// S3: moves environments back to their previous position (or to `to`, a
/// commit each held before), all in one atomic push, and holds their
/// auto-promotion until someone releases it.
pub async fn rollback(
    engine: &Engine,
    who: &Principal,
    input: RollbackInput,
) -> Result<Vec<crate::model::AuditEventView>, EngineError> {
    let envs = environments(engine, &input.environments)?;
    for env in &envs {
        who.require(
            Permission::Reset {
                protected: env.protected,
            },
            Some(&env.name),
        )?;
    }
    let reason = reason_of(input.reason.as_deref())?;
    let to = match &input.to {
        Some(c) => Some(engine.resolve(c).await?),
        None => None,
    };
    let _guard = engine.write_lock.lock().await;
    let mut changes = Vec::new();
    let mut events = Vec::new();
    let mut holds = Vec::new();
    for env in &envs {
        let head = head_of(engine, env).await?;
        let history = store::ref_changes_of(&engine.pool, &env.name).await?;
        let held: Vec<String> = history
            .iter()
            .flat_map(|(_, old, new)| [old.clone(), new.clone()])
            .flatten()
            .collect();
        let target = match to {
            Some(t) => {
                if !held.contains(&t.to_string()) {
                    return Err(EngineError::Conflict {
                        code: "never_held",
                        message: format!(
                            "`{}` never held {} as far as the audit log knows; roll back to a commit it held, or promote instead",
                            env.name,
                            short(&t.to_string())
                        ),
                    });
                }
                t
            }
            None => {
                // The tip before the move that brought the head here; rollbacks
                // are skipped, so rolling back twice goes further back, not forth.
                let previous = history
                    .iter()
                    .filter(|(action, _, _)| action != "rollback")
                    .find(|(_, _, new)| new.as_deref() == Some(head.to_string().as_str()))
                    .and_then(|(_, old, _)| old.clone());
                let Some(previous) = previous else {
                    return Err(EngineError::Conflict {
                        code: "no_previous_position",
                        message: format!(
                            "the audit log has no earlier position of `{}` at {}; give `to` with a commit it held",
                            env.name,
                            short(&head.to_string())
                        ),
                    });
                };
                engine.resolve(&previous).await?
            }
        };
        if target == head {
            return Err(EngineError::Conflict {
                code: "already_there",
                message: format!("`{}` is already at {}", env.name, short(&head.to_string())),
            });
        }
        changes.push(RefChange {
            branch: env.branch.clone(),
            old: Some(head),
            new: target,
        });
        events.push(AuditDraft {
            actor: who.user.clone(),
            action: "rollback".into(),
            environment: Some(env.name.clone()),
            old: Some(head.to_string()),
            new: Some(target.to_string()),
            reason: reason.clone(),
            details: json!({ "environments": envs.iter().map(|e| e.name.clone()).collect::<Vec<_>>() }),
        });
        holds.push((
            env.name.clone(),
            format!("rolled back by {}: {reason}", who.user),
        ));
    }
    let first = apply(
        engine,
        &who.user,
        "rollback",
        IntentPayload {
            changes,
            events,
            request_id: None,
            new_requests: Vec::new(),
            holds,
        },
    )
    .await;
    first?;
    let filter = store::AuditFilter {
        limit: Some(envs.len() as i64 * 2),
        ..Default::default()
    };
    Ok(store::audit_events(&engine.pool, &filter)
        .await?
        .into_iter()
        .filter(|e| e.action == "rollback")
        .take(envs.len())
        .collect())
}

/// S5: brings an off-line environment back onto the line by resetting it to
/// its `from`, which must have passed its gates like any promotion.
pub async fn realign(
    engine: &Engine,
    who: &Principal,
    name: &str,
    reason: Option<&str>,
) -> Result<PromotionView, EngineError> {
    let env = environment(engine, name)?;
    who.require(
        Permission::Reset {
            protected: env.protected,
        },
        Some(&env.name),
    )?;
    let reason = reason_of(reason)?;
    let _guard = engine.write_lock.lock().await;
    let head = head_of(engine, env).await?;
    let from_branch = engine
        .config
        .pipeline
        .branch_of(&env.from)
        .unwrap_or_default()
        .to_owned();
    let target = engine
        .git(move |git| git.branch_tip(&from_branch))
        .await?
        .ok_or_else(|| EngineError::Conflict {
            code: "branch_missing",
            message: format!("`{}` has no branch", env.from),
        })?;
    let facts = facts_for(engine, env, &env.from, head, target, true, false).await?;
    if facts.head_on_line {
        return Err(EngineError::Conflict {
            code: "on_line",
            message: format!(
                "`{}` is on the line; realign is only for environments off it (promote or roll back instead)",
                env.name
            ),
        });
    }
    rules::check_promotion(&facts)?;
    if env.approvals > 0 {
        let from = env.from.clone();
        return open_request(
            engine, who, env, "reset", &from, head, target, &reason, false,
        )
        .await;
    }
    let payload = IntentPayload {
        changes: vec![RefChange {
            branch: env.branch.clone(),
            old: Some(head),
            new: target,
        }],
        events: vec![AuditDraft {
            actor: who.user.clone(),
            action: "realign".into(),
            environment: Some(env.name.clone()),
            old: Some(head.to_string()),
            new: Some(target.to_string()),
            reason: reason.clone(),
            details: json!({ "source": env.from }),
        }],
        request_id: None,
        new_requests: vec![OwnedRequest {
            kind: "reset".into(),
            environment: env.name.clone(),
            source: env.from.clone(),
            from_commit: Some(head.to_string()),
            to_commit: target.to_string(),
            requested_by: who.user.clone(),
            reason,
            required_approvals: 0,
        }],
        holds: Vec::new(),
    };
    let id = *apply(engine, &who.user, "realign", payload)
        .await?
        .first()
        .ok_or_else(|| EngineError::Internal("request not recorded".into()))?;
    Ok(store::request(&engine.pool, id).await?.expect("exists"))
}

/// S5: cherry-picks one commit onto an environment (out of order). The
/// environment is then off the line until realigned. Gates as for any
/// promotion into it, approvals included.
pub async fn cherry_pick(
    engine: &Engine,
    who: &Principal,
    name: &str,
    commit: &str,
    reason: Option<&str>,
) -> Result<PromotionView, EngineError> {
    let env = environment(engine, name)?;
    who.require(Permission::Promote, Some(&env.name))?;
    let reason = reason_of(reason)?;
    let pick = engine.resolve(commit).await?;
    let _guard = engine.write_lock.lock().await;
    let head = head_of(engine, env).await?;
    if engine.git(move |git| git.is_ancestor(pick, head)).await? {
        return Err(EngineError::Conflict {
            code: "already_there",
            message: format!(
                "`{}` already contains {}",
                env.name,
                short(&pick.to_string())
            ),
        });
    }
    let root = engine.config.pipeline.root().to_owned();
    let mut facts = facts_for(engine, env, &root, head, pick, true, false).await?;
    facts.candidate_on_source = facts.candidate_on_line;
    rules::check_promotion(&facts)?;
    if env.approvals > 0 {
        return open_request(
            engine,
            who,
            env,
            "cherry_pick",
            &root,
            head,
            pick,
            &reason,
            false,
        )
        .await;
    }
    let person = super::git::Person::envline(&who.user);
    let new = engine
        .git(move |git| git.cherry_pick(pick, head, &person))
        .await?;
    let payload = IntentPayload {
        changes: vec![RefChange {
            branch: env.branch.clone(),
            old: Some(head),
            new,
        }],
        events: vec![AuditDraft {
            actor: who.user.clone(),
            action: "cherry_pick".into(),
            environment: Some(env.name.clone()),
            old: Some(head.to_string()),
            new: Some(new.to_string()),
            reason: reason.clone(),
            details: json!({ "picked": pick.to_string(), "approvals": [] }),
        }],
        request_id: None,
        new_requests: vec![OwnedRequest {
            kind: "cherry_pick".into(),
            environment: env.name.clone(),
            source: root,
            from_commit: Some(head.to_string()),
            to_commit: pick.to_string(),
            requested_by: who.user.clone(),
            reason,
            required_approvals: 0,
        }],
        holds: Vec::new(),
    };
    let id = *apply(engine, &who.user, "cherry_pick", payload)
        .await?
        .first()
        .ok_or_else(|| EngineError::Internal("request not recorded".into()))?;
    let mut view = store::request(&engine.pool, id).await?.expect("exists");
    view.result_commit = Some(new.to_string());
    Ok(view)
}

/// Holds (or, with a window, freezes) environments.
pub async fn hold(
    engine: &Engine,
    who: &Principal,
    input: HoldInput,
) -> Result<Vec<HoldView>, EngineError> {
    let envs = environments(engine, &input.environments)?;
    for env in &envs {
        who.require(Permission::Hold, Some(&env.name))?;
    }
    let kind = input.kind.as_deref().unwrap_or("promotion");
    if kind != "promotion" && kind != "auto_promotion" {
        return Err(EngineError::BadInput(format!(
            "`kind` must be promotion or auto_promotion, not `{kind}`"
        )));
    }
    if input.reason.trim().is_empty() {
        return Err(EngineError::BadInput(
            "say why in `reason`: a hold tells others who held it and why".into(),
        ));
    }
    let parse = |name: &str, t: &Option<String>| -> Result<Option<String>, EngineError> {
        t.as_deref()
            .map(|t| {
                chrono::DateTime::parse_from_rfc3339(t)
                    .map(|d| {
                        d.with_timezone(&chrono::Utc)
                            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                    })
                    .map_err(|e| {
                        EngineError::BadInput(format!(
                            "`{name}` must be an RFC 3339 time like 2026-12-24T18:00:00Z: {e}"
                        ))
                    })
            })
            .transpose()
    };
    let starts = parse("starts_at", &input.starts_at)?;
    let ends = parse("ends_at", &input.ends_at)?;
    if let (Some(s), Some(e)) = (&starts, &ends)
        && e <= s
    {
        return Err(EngineError::BadInput(
            "`ends_at` must be after `starts_at`".into(),
        ));
    }
    let _guard = engine.write_lock.lock().await;
    let mut tx = engine.pool.begin().await?;
    let mut out = Vec::new();
    for env in envs {
        let row = store::insert_hold(
            &mut tx,
            &env.name,
            kind,
            input.reason.trim(),
            &who.user,
            starts.as_deref(),
            ends.as_deref(),
        )
        .await?;
        audit::append(
            &mut tx,
            &[AuditDraft {
                actor: who.user.clone(),
                action: "hold".into(),
                environment: Some(env.name.clone()),
                old: None,
                new: None,
                reason: input.reason.trim().to_owned(),
                details: json!({ "hold": row.id, "kind": kind, "starts_at": starts, "ends_at": ends }),
            }],
        )
        .await?;
        out.push(row.into());
    }
    tx.commit().await?;
    engine.changed();
    Ok(out)
}

/// Releases a hold.
pub async fn release(
    engine: &Engine,
    who: &Principal,
    id: i64,
    reason: Option<&str>,
) -> Result<(), EngineError> {
    let _guard = engine.write_lock.lock().await;
    let (hold, released) = store::find_hold(&engine.pool, id)
        .await?
        .ok_or_else(|| EngineError::NotFound(format!("no hold {id}")))?;
    who.require(Permission::Hold, Some(&hold.environment))?;
    if released.is_some() {
        return Err(EngineError::Conflict {
            code: "already_released",
            message: format!("hold {id} was already released"),
        });
    }
    let mut tx = engine.pool.begin().await?;
    store::release_hold(&mut tx, id, &who.user).await?;
    audit::append(
        &mut tx,
        &[AuditDraft {
            actor: who.user.clone(),
            action: "release".into(),
            environment: Some(hold.environment.clone()),
            old: None,
            new: None,
            reason: reason_of(reason)?,
            details: json!({ "hold": id }),
        }],
    )
    .await?;
    tx.commit().await?;
    engine.changed();
    Ok(())
}

/// Promotes every `auto_promote` environment whose `from` has an eligible
/// newer commit (opening a request where approvals are needed).
pub async fn auto_promote(engine: &Engine) -> Result<(), EngineError> {
    let system = Principal::system();
    for env in engine
        .config
        .pipeline
        .environments()
        .iter()
        .filter(|e| e.auto_promote)
    {
        let result = promote_inner(
            engine,
            &system,
            PromoteInput {
                environment: Some(env.name.clone()),
                environments: None,
                commit: None,
                from: None,
                reason: Some("auto-promotion".into()),
            },
            true,
        )
        .await;
        match result {
            Ok(r) => {
                for r in r {
                    tracing::info!("auto-promotion of {}: {}", env.name, r.state)
                }
            }
            Err(EngineError::Conflict { .. }) | Err(EngineError::GatesUnmet(_)) => {}
            Err(e) => tracing::warn!("auto-promotion of {} failed: {e}", env.name),
        }
    }
    Ok(())
}

/// The all-or-nothing core: intent, CAS in the clone, atomic leased push,
/// then audit + outcome in one transaction. On a failed push the clone is
/// restored and the intent marked failed. Returns the request id recorded.
/// The caller holds the write lock.
async fn apply(
    engine: &Engine,
    actor: &str,
    action: &str,
    payload: IntentPayload,
) -> Result<Vec<i64>, EngineError> {
    settle_pending(engine).await?;
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
        engine.changed();
        return Err(e);
    }
    engine.crash_point("after_local");
    let changes = payload.changes.clone();
    let pushed = engine.git(move |git| git.push(&changes)).await;
    if let Err(e) = pushed {
        // A refused push certainly did not land; a broken connection may have.
        let landed = if matches!(
            &e,
            EngineError::Remote {
                code: "remote_unreachable",
                ..
            }
        ) {
            let branches: Vec<String> = payload.changes.iter().map(|c| c.branch.clone()).collect();
            match engine.git(move |git| git.remote_tips(&branches)).await {
                Ok(tips)
                    if payload
                        .changes
                        .iter()
                        .zip(&tips)
                        .all(|(c, t)| *t == Some(c.new)) =>
                {
                    Some(true)
                }
                Ok(tips) if payload.changes.iter().zip(&tips).all(|(c, t)| *t == c.old) => {
                    Some(false)
                }
                _ => None,
            }
        } else {
            Some(false)
        };
        if landed == Some(true) {
            tracing::warn!("git push reported `{e}` but the remote has the update; recording it");
        } else {
            restore_clone(engine, actor, &payload.changes).await;
            engine.changed();
            if landed == Some(false) {
                store::finish_intent(&engine.pool, intent, "failed", Some(&e.to_string())).await?;
                return Err(e);
            }
            // Unknown: the intent stays pending and is settled (recorded for
            // its requester, or failed) before any other change, or at the next refresh.
            return Err(EngineError::Remote {
                code: "remote_unreachable",
                message: format!(
                    "{}; whether the remote took the update is not known yet: Envline settles it as soon as the remote answers, before any other change",
                    e.to_string().trim_end_matches("; nothing was changed")
                ),
            });
        }
    }
    engine.crash_point("after_push");
    let id = finish(engine, intent, &payload, false).await?;
    engine.crash_point("after_record");
    engine.changed();
    Ok(id)
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

/// Settles intents left pending (a crash, or a push whose outcome was not
/// known) before a new change, so their outcome is decided against the remote
/// as it was and recorded for the person who asked.
async fn settle_pending(engine: &Engine) -> Result<(), EngineError> {
    if store::pending_intents(&engine.pool).await?.is_empty() {
        return Ok(());
    }
    engine.git(|git| git.fetch()).await.map_err(|e| EngineError::Remote {
        code: "remote_unreachable",
        message: format!(
            "an earlier change's outcome is not settled and the remote cannot be reached to settle it ({e}); try again when the remote answers"
        ),
    })?;
    reconcile_intents(engine).await
}

/// Records a pushed change: audit events, observed tips, requests, holds, intent done.
async fn finish(
    engine: &Engine,
    intent: i64,
    payload: &IntentPayload,
    recovered: bool,
) -> Result<Vec<i64>, EngineError> {
    let mut tx = engine.pool.begin().await?;
    // The request each environment's change belongs to.
    let mut requests: Vec<(String, i64)> = Vec::new();
    for r in &payload.new_requests {
        let id = store::insert_request(
            &mut tx,
            &NewRequest {
                kind: &r.kind,
                environment: &r.environment,
                source: &r.source,
                from_commit: r.from_commit.as_deref(),
                to_commit: &r.to_commit,
                requested_by: &r.requested_by,
                reason: &r.reason,
                required_approvals: r.required_approvals,
                state: "done",
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
                if recovered {
                    map.insert("recovered_after_restart".into(), json!(true));
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
            store::set_request_state(&mut tx, *id, "done", None, result.as_deref()).await?;
        }
    }
    audit::append(&mut tx, &events).await?;
    for change in &payload.changes {
        store::set_observed_tip(&mut tx, &change.branch, &change.new.to_string()).await?;
    }
    for (env, reason) in &payload.holds {
        let actor = events
            .first()
            .map(|e| e.actor.clone())
            .unwrap_or_else(|| "envline".into());
        store::insert_hold(&mut tx, env, "auto_promotion", reason, &actor, None, None).await?;
    }
    store::finish_intent(&mut *tx, intent, "done", None).await?;
    tx.commit().await?;
    let mut ids: Vec<i64> = requests.into_iter().map(|(_, id)| id).collect();
    ids.dedup();
    Ok(ids)
}

/// At start-up and on every refresh (after a fetch, so the clone equals the
/// remote): an unfinished intent whose changes the remote holds is recorded
/// as done, attributed to the person who asked; any other is marked failed.
pub async fn reconcile_intents(engine: &Engine) -> Result<(), EngineError> {
    for intent in store::pending_intents(&engine.pool).await? {
        let payload: IntentPayload = serde_json::from_str(&intent.payload).map_err(|e| {
            EngineError::Internal(format!("intent {} is unreadable: {e}", intent.id))
        })?;
        let branches: Vec<String> = payload.changes.iter().map(|c| c.branch.clone()).collect();
        let tips = engine
            .git(move |git| {
                branches
                    .iter()
                    .map(|b| git.branch_tip(b))
                    .collect::<Result<Vec<_>, _>>()
            })
            .await?;
        let landed = payload
            .changes
            .iter()
            .zip(&tips)
            .all(|(c, tip)| *tip == Some(c.new));
        if landed {
            tracing::warn!(
                "intent {} ({} by {}) reached the remote before a restart; recording it",
                intent.id,
                intent.action,
                intent.actor
            );
            finish(engine, intent.id, &payload, true).await?;
        } else {
            tracing::warn!(
                "intent {} ({} by {}) did not reach the remote; marking it failed",
                intent.id,
                intent.action,
                intent.actor
            );
            store::finish_intent(
                &engine.pool,
                intent.id,
                "failed",
                Some("interrupted before the remote was updated"),
            )
            .await?;
        }
    }
    Ok(())
}

/// I5: logs every environment branch that moved without Envline.
pub async fn record_observations(engine: &Engine) -> Result<(), EngineError> {
    let tips = engine.git(|git| git.branch_tips()).await?;
    let observed: std::collections::HashMap<String, String> = store::observed_tips(&engine.pool)
        .await?
        .into_iter()
        .collect();
    let root = engine.config.pipeline.root().to_owned();
    let mut tracked: Vec<(String, Option<String>)> = vec![(root.clone(), None)];
    tracked.extend(
        engine
            .config
            .pipeline
            .environments()
            .iter()
            .map(|e| (e.branch.clone(), Some(e.name.clone()))),
    );
    let mut tx = engine.pool.begin().await?;
    let mut events = Vec::new();
    for (branch, env) in tracked {
        let Some(tip) = tips.get(&branch) else {
            // A branch deleted outside Envline is a move too (I5).
            if let Some(old) = observed.get(&branch) {
                events.push(AuditDraft {
                    actor: "envline".into(),
                    action: "out_of_band".into(),
                    environment: Some(env.clone().unwrap_or(root.clone())),
                    old: Some(old.clone()),
                    new: None,
                    reason: format!("branch `{branch}` was deleted without Envline"),
                    details: json!({ "branch": branch, "deleted": true }),
                });
                sqlx::query("DELETE FROM observed_tips WHERE branch = ?")
                    .bind(&branch)
                    .execute(&mut *tx)
                    .await?;
            }
            continue;
        };
        let tip_hex = tip.to_string();
        match observed.get(&branch) {
            Some(old) if *old == tip_hex => continue,
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
                        action: "out_of_band".into(),
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
                        action: "observed".into(),
                        environment: env.clone(),
                        old: None,
                        new: Some(tip_hex.clone()),
                        reason: format!("first seen: branch `{branch}`"),
                        details: json!({ "branch": branch }),
                    });
                }
            }
        }
        store::set_observed_tip(&mut tx, &branch, &tip_hex).await?;
    }
    audit::append(&mut tx, &events).await?;
    tx.commit().await?;
    Ok(())
}
