//! I4: approvers' decisions on promotion requests; the last needed approval
//! executes the request.

use envline_api::{Decision, DecisionInput, ErrorCode, PromotionView, RequestKind, RequestState};
use serde_json::json;

use super::journal::{self, IntentPayload};
use super::promote::reset_hold;
use super::{environment, facts_for, head_of, reason_of, scope_of, short};
use crate::audit::{self, AuditDraft};
use crate::auth::{Forbidden, Permission, Principal};
use crate::git::{Person, RefChange};
use crate::rules;
use crate::store;
use crate::{Engine, EngineError};

/// I4: an approver's decision on a request. The last needed approval executes it.
pub async fn decide(
    engine: &Engine,
    who: &Principal,
    request_id: i64,
    input: DecisionInput,
) -> Result<PromotionView, EngineError> {
    let comment = reason_of(input.comment.as_deref())?;
    // Recording a decision touches only the database: no ref lock, so a
    // hanging remote cannot hold it up.
    let request = store::request(&engine.pool, request_id)
        .await?
        .ok_or_else(|| EngineError::NotFound(format!("no promotion request {request_id}")))?;
    who.require(Permission::Approve, Some(&request.environment))?;
    if request.state != RequestState::AwaitingApproval {
        return Err(EngineError::Conflict {
            code: ErrorCode::RequestClosed,
            message: format!(
                "request {request_id} is {}; it takes no more decisions",
                request.state
            ),
        });
    }
    if request.requested_by == who.user {
        return Err(EngineError::Forbidden(Forbidden {
            user: who.user.clone(),
            permission: Permission::Approve,
            environment: Some(format!(
                "{} (separation of duties: {} requested this promotion and cannot approve it; it needs another approver)",
                request.environment, who.user
            )),
            grants: who.grants.iter().map(|g| g.to_string()).collect(),
            only: None,
        }));
    }
    let mut tx = store::begin(&engine.pool).await?;
    // Decided (or run) by someone else since it was read: nothing is written.
    if store::request_state(&mut tx, request_id).await? != Some(RequestState::AwaitingApproval) {
        tx.rollback().await?;
        return Err(EngineError::Conflict {
            code: ErrorCode::RequestClosed,
            message: format!(
                "request {request_id} was closed meanwhile; it takes no more decisions"
            ),
        });
    }
    store::upsert_approval(&mut tx, request_id, &who.user, input.decision, &comment).await?;
    audit::append(
        &mut tx,
        &[AuditDraft {
            actor: who.user.clone(),
            action: input.decision.into(),
            environment: Some(request.environment.clone()),
            old: None,
            new: None,
            reason: comment.clone(),
            details: json!({ "request": request_id, "to": request.to_commit }),
        }],
    )
    .await?;
    if input.decision == Decision::Reject {
        store::set_request_state(
            &mut tx,
            request_id,
            RequestState::Rejected,
            Some(&format!("rejected by {}: {comment}", who.user)),
            None,
        )
        .await?;
    }
    tx.commit().await?;
    engine.changes().changed();
    let request = store::request(&engine.pool, request_id)
        .await?
        .ok_or_else(|| EngineError::Internal("request vanished".into()))?;
    if request.state == RequestState::AwaitingApproval && rules::approvals_met(&request) {
        execute_request(engine, &request).await?;
    }
    store::request(&engine.pool, request_id)
        .await?
        .ok_or_else(|| EngineError::Internal("request vanished".into()))
}

/// Runs an approved request, or fails it with the reason when the world
/// changed. Under the ref lock, and only if it is still awaiting approval
/// (two last approvals arriving together run it once).
async fn execute_request(engine: &Engine, request: &PromotionView) -> Result<(), EngineError> {
    let env = environment(engine, &request.environment)?;
    let guard = engine
        .lock_scope(scope_of(engine, &[env], Some(&request.source)))
        .await?;
    journal::settle_pending(engine, guard.scope()).await?;
    let Some(request) = store::request(&engine.pool, request.id).await? else {
        return Ok(());
    };
    if request.state != RequestState::AwaitingApproval || !rules::approvals_met(&request) {
        return Ok(());
    }
    // From here no decision changes it: a rejection arriving now is refused.
    let mut tx = store::begin(&engine.pool).await?;
    if !store::start_executing(&mut tx, request.id).await? {
        tx.rollback().await?;
        return Ok(());
    }
    tx.commit().await?;
    let result = try_execute_request(engine, &request).await;
    match &result {
        Ok(()) => {}
        // The push may still land: the request stays executing, and the
        // refresh that settles the push records it done, or closes it as failed.
        Err(EngineError::Remote {
            code: ErrorCode::OutcomeUnknown,
            ..
        }) => {}
        Err(e) => {
            // The approvals stay recorded; the request is closed with the reason.
            let reason = format!("{e}; nothing was changed; request again");
            let mut tx = store::begin(&engine.pool).await?;
            store::fail_request_if_open(&mut tx, request.id, &reason).await?;
            tx.commit().await?;
            engine.changes().touched();
        }
    }
    result
}

async fn try_execute_request(engine: &Engine, request: &PromotionView) -> Result<(), EngineError> {
    let approvers = rules::counted_approvers(request);
    let env = environment(engine, &request.environment)?;
    let head = head_of(engine, env).await?;
    let expected = request.from_commit.clone().unwrap_or_default();
    if head != expected.as_str() {
        return Err(EngineError::Conflict {
            code: ErrorCode::RefMoved,
            message: format!(
                "`{}` moved from {} to {} since the request was made",
                env.name,
                short(&expected),
                short(&head.to_string())
            ),
        });
    }
    let candidate = engine.views().resolve(&request.to_commit).await?;
    let mut facts = facts_for(
        engine,
        env,
        &request.source,
        head,
        candidate,
        request.kind == RequestKind::Reset,
        false,
    )
    .await?;
    if request.kind == RequestKind::CherryPick {
        facts.is_reset = true;
        facts.candidate_on_source = true;
    }
    rules::check_promotion(&facts)?;
    let new = if request.kind == RequestKind::CherryPick {
        let person = Person::envline(&request.requested_by);
        engine
            .git(move |git| git.cherry_pick(candidate, head, &person))
            .await?
    } else {
        candidate
    };
    let event = AuditDraft {
        actor: request.requested_by.clone(),
        action: request.kind.into(),
        environment: Some(env.name.clone()),
        old: Some(head.to_string()),
        new: Some(new.to_string()),
        reason: request.reason.clone(),
        details: json!({ "source": request.source, "request": request.id, "approvals": approvers, "picked": (request.kind == RequestKind::CherryPick).then_some(&request.to_commit) }),
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
        holds: reset_hold(env, request.kind, &request.requested_by, &request.reason),
        incident: None,
    };
    journal::apply(
        engine,
        &request.requested_by,
        request.kind.as_str(),
        payload,
    )
    .await?;
    Ok(())
}
