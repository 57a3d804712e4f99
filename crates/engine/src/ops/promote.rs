//! S1 and S6: promote one environment, or several together, to a commit of
//! its `from` (or of another environment), and auto-promotion.

use envline_api::{AuditAction, ErrorCode, PromoteInput, PromotionView, RequestKind, RequestState};
use gix::ObjectId;
use serde_json::json;

use super::journal::{self, IntentPayload, OwnedRequest};
use super::{environments, facts_for, head_of, reason_of, scope_of, tip_of_source};
use crate::audit::{self, AuditDraft};
use crate::auth::{Permission, Principal};
use crate::git::RefChange;
use crate::pipeline::Environment;
use crate::rules;
use crate::store::{self, NewRequest};
use crate::{Engine, EngineError};

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
pub(super) struct Planned<'a> {
    pub env: &'a Environment,
    pub source: String,
    pub head: ObjectId,
    pub candidate: ObjectId,
    /// `Promote`, or `Reset` for S6 onto an environment that is ahead of the source.
    pub kind: RequestKind,
    pub facts: rules::PromotionFacts,
}

/// The environments a promotion input names, with the commit it asks for.
pub(super) struct Targets<'a> {
    pub envs: Vec<&'a Environment>,
    pub requested: Option<ObjectId>,
}

/// Checks the input's shape and names: environments, source, commit.
pub(super) async fn targets<'a>(
    engine: &'a Engine,
    input: &PromoteInput,
) -> Result<Targets<'a>, EngineError> {
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
    if let (Some(source), Some(incident)) = (&input.from, engine.hotfix_mode().incident())
        && source == engine.config.pipeline.root()
    {
        return Err(EngineError::Conflict {
            code: ErrorCode::HotfixMode,
            message: format!(
                "hotfix mode is on for {} (started by {}): the root is `{}` until the fix is merged back, so nothing is promoted from `{source}`; promote from the root's environments instead",
                incident.incident, incident.started_by, incident.branch
            ),
        });
    }
    if let Some(source) = &input.from
        && engine.config.pipeline.branch_of(source).is_none()
    {
        return Err(EngineError::NotFound(format!(
            "unknown source `{source}`; `from` must be the root branch or an environment"
        )));
    }
    let requested = match &input.commit {
        Some(c) => Some(engine.views().resolve(c).await?),
        None => None,
    };
    Ok(Targets { envs, requested })
}

/// Reads where `env` is and what it would move to, and whether that is a
/// fast-forward or (S6, an explicit source behind the target) a reset. The
/// gates are not checked here: the caller decides (promote refuses, the
/// preview shows them).
pub(super) async fn plan<'a>(
    engine: &Engine,
    env: &'a Environment,
    from: Option<&str>,
    requested: Option<ObjectId>,
    automatic: bool,
) -> Result<Planned<'a>, EngineError> {
    let source = from.map(str::to_owned).unwrap_or_else(|| env.from.clone());
    if source == env.name {
        return Err(EngineError::Unprocessable {
            code: ErrorCode::SameEnvironment,
            message: format!("cannot promote `{source}` into itself"),
        });
    }
    let head = head_of(engine, env).await?;
    let candidate = match requested {
        Some(c) => c,
        None => tip_of_source(engine, &source).await?,
    };
    let behind = from.is_some()
        && candidate != head
        && engine
            .git(move |git| git.is_ancestor(candidate, head))
            .await?;
    let facts = facts_for(engine, env, &source, head, candidate, behind, automatic).await?;
    Ok(Planned {
        env,
        source,
        head,
        candidate,
        kind: if behind {
            RequestKind::Reset
        } else {
            RequestKind::Promote
        },
        facts,
    })
}

/// Plans and checks one environment's promotion: the role (a reset needs the
/// reset permission), then I1–I3 and holds.
async fn checked_plan<'a>(
    engine: &Engine,
    who: &Principal,
    env: &'a Environment,
    from: Option<&str>,
    requested: Option<ObjectId>,
    automatic: bool,
) -> Result<Planned<'a>, EngineError> {
    let planned = plan(engine, env, from, requested, automatic).await?;
    if planned.kind == RequestKind::Reset {
        who.require(
            Permission::Reset {
                protected: env.protected,
            },
            Some(&env.name),
        )?;
    }
    rules::check_promotion(&planned.facts)?;
    Ok(planned)
}

pub(super) async fn promote_inner(
    engine: &Engine,
    who: &Principal,
    input: PromoteInput,
    automatic: bool,
) -> Result<Vec<PromotionView>, EngineError> {
    let Targets { envs, requested } = targets(engine, &input).await?;
    for env in &envs {
        who.require(Permission::Promote, Some(&env.name))?;
    }
    let reason = reason_of(input.reason.as_deref())?;

    let guard = engine
        .lock_scope(scope_of(engine, &envs, input.from.as_deref()))
        .await?;
    // Hotfix mode may have started while this automatic promotion waited
    // for the lock: it pauses auto-promotion (S4), so nothing moves.
    if automatic && let Some(incident) = engine.hotfix_mode().incident() {
        return Err(EngineError::Conflict {
            code: ErrorCode::HotfixMode,
            message: format!(
                "hotfix mode is on for {}: automatic promotions wait until it is merged back",
                incident.incident
            ),
        });
    }
    journal::settle_pending(engine, guard.scope()).await?;
    let mut planned = Vec::with_capacity(envs.len());
    let mut refusals = Vec::new();
    for env in &envs {
        match checked_plan(
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
        return Err(combined_refusal(refusals));
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
                (p.head, p.candidate),
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
    let action = if direct.iter().any(|p| p.kind == RequestKind::Reset) {
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
                kind: p.kind,
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
        incident: None,
    };
    for id in journal::apply(engine, &who.user, action, payload)
        .await?
        .requests
    {
        results.push(
            store::request(&engine.pool, id)
                .await?
                .ok_or_else(|| EngineError::Internal("request vanished".into()))?,
        );
    }
    Ok(results)
}

/// Several environments: nothing moves unless every one may. When every
/// refusal is about gates, all unmet gates are listed together; otherwise the
/// first refusal that is not, naming its environment.
fn combined_refusal(refusals: Vec<(String, EngineError)>) -> EngineError {
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
        return EngineError::GatesUnmet(gates);
    }
    let (name, first) = refusals
        .into_iter()
        .find(|(_, e)| !matches!(e, EngineError::GatesUnmet(_)))
        .expect("a refusal that is not a gate");
    match first {
        EngineError::Conflict { code, message } => EngineError::Conflict {
            code,
            message: format!("`{name}`: {message}; nothing was promoted"),
        },
        other => other,
    }
}

/// I4: opens a request approvers see (or returns the same open one), and
/// cancels any other open request for the environment, which it supersedes.
#[allow(clippy::too_many_arguments)]
pub(super) async fn open_request(
    engine: &Engine,
    who: &Principal,
    env: &Environment,
    kind: RequestKind,
    source: &str,
    (head, candidate): (ObjectId, ObjectId),
    reason: &str,
    automatic: bool,
) -> Result<PromotionView, EngineError> {
    let candidate_hex = candidate.to_string();
    let head_hex = head.to_string();
    // Auto-promotion asks once per (environment, commit, position): a request
    // people rejected (or that failed) is not opened again behind their back.
    if automatic
        && let Some((id, state)) =
            store::closed_request_for_move(&engine.pool, &env.name, &head_hex, &candidate_hex)
                .await?
    {
        return Err(EngineError::Conflict {
            code: ErrorCode::AlreadyDecided,
            message: format!(
                "request {id} for this promotion was {state}; not asking again automatically"
            ),
        });
    }
    if let Some(open) = store::open_request_for(&engine.pool, &env.name).await?
        && open.to_commit == candidate_hex
        && open.kind == kind
        && open.from_commit.as_deref() == Some(head_hex.as_str())
    {
        return Ok(open);
    }
    let mut tx = store::begin(&engine.pool).await?;
    let superseded = store::awaiting_request_ids(&mut tx, &env.name).await?;
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
            state: RequestState::AwaitingApproval,
        },
    )
    .await?;
    for old in &superseded {
        store::set_request_state(
            &mut tx,
            *old,
            RequestState::Cancelled,
            Some(&format!("superseded by request {id}")),
            None,
        )
        .await?;
    }
    audit::append(
        &mut tx,
        &[AuditDraft {
            actor: who.user.clone(),
            action: AuditAction::Request,
            environment: Some(env.name.clone()),
            old: None,
            new: None,
            reason: reason.to_owned(),
            details: json!({ "request": id, "kind": kind, "from": head_hex, "to": candidate_hex, "source": source, "required_approvals": env.approvals, "supersedes": superseded }),
        }],
    )
    .await?;
    tx.commit().await?;
    engine.changes().changed();
    store::request(&engine.pool, id)
        .await?
        .ok_or_else(|| EngineError::Internal("request vanished".into()))
}

/// S3: a reset holds the environment's auto-promotion until someone releases it,
/// so it is not fast-forwarded straight back.
pub(super) fn reset_hold(
    env: &Environment,
    kind: RequestKind,
    actor: &str,
    reason: &str,
) -> Vec<(String, String)> {
    if kind == RequestKind::Reset && env.auto_promote {
        vec![(env.name.clone(), format!("reset by {actor}: {reason}"))]
    } else {
        Vec::new()
    }
}
