//! S5: an out-of-order promotion of one commit onto an environment, which
//! puts it off the line until it is realigned.

use envline_api::{AuditAction, CherryPickInput, ErrorCode, PromotionView, RequestKind};
use serde_json::json;

use super::journal::{self, IntentPayload, OwnedRequest};
use super::promote::open_request;
use super::{environment, facts_for, head_of, reason_of, scope_of, short};
use crate::audit::AuditDraft;
use crate::auth::{Permission, Principal};
use crate::git::{Person, RefChange};
use crate::rules;
use crate::{Engine, EngineError};

/// S5: cherry-picks one commit onto an environment (out of order). The
/// environment is then off the line until realigned. Gates as for any
/// promotion into it, approvals included.
pub async fn cherry_pick(
    engine: &Engine,
    who: &Principal,
    input: CherryPickInput,
) -> Result<PromotionView, EngineError> {
    let env = environment(engine, &input.environment)?;
    who.require(Permission::Promote, Some(&env.name))?;
    let reason = reason_of(input.reason.as_deref())?;
    let pick = engine.views().resolve(&input.commit).await?;
    let guard = engine.lock_scope(scope_of(engine, &[env], None)).await?;
    journal::settle_pending(engine, guard.scope()).await?;
    let head = head_of(engine, env).await?;
    if engine.git(move |git| git.is_ancestor(pick, head)).await? {
        return Err(EngineError::Conflict {
            code: ErrorCode::AlreadyThere,
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
            RequestKind::CherryPick,
            &root,
            (head, pick),
            &reason,
            false,
        )
        .await;
    }
    let person = Person::envline(&who.user);
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
            action: AuditAction::CherryPick,
            environment: Some(env.name.clone()),
            old: Some(head.to_string()),
            new: Some(new.to_string()),
            reason: reason.clone(),
            details: json!({ "picked": pick.to_string(), "approvals": [] }),
        }],
        request_id: None,
        new_requests: vec![OwnedRequest {
            kind: RequestKind::CherryPick,
            environment: env.name.clone(),
            source: root,
            from_commit: Some(head.to_string()),
            to_commit: pick.to_string(),
            requested_by: who.user.clone(),
            reason,
            required_approvals: 0,
        }],
        holds: Vec::new(),
        incident: None,
    };
    journal::apply_one(engine, &who.user, "cherry_pick", payload).await
}
