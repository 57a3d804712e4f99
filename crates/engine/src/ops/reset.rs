//! Moves that are not fast-forwards, each separately authorised and audited
//! (I2): S3 roll back, and S5 realign an environment that is off the line.

use envline_api::{
    AuditAction, AuditEventView, ErrorCode, PromotionView, RequestKind, RollbackInput,
    VerificationStatus,
};
use gix::ObjectId;
use serde_json::json;

use super::journal::{self, IntentPayload, OwnedRequest};
use super::promote::open_request;
use super::{
    environment, environments, facts_for, head_of, reason_of, scope_of, short, tip_of_source,
};
use crate::audit::{self, AuditDraft};
use crate::auth::{Permission, Principal};
use crate::cluster::RefScope;
use crate::git::RefChange;
use crate::pipeline::Environment;
use crate::rules;
use crate::store;
use crate::{Engine, EngineError};

/// Moves that bring an environment forward: what a rollback undoes.
const FORWARD_MOVES: [&str; 2] = ["promote", "cherry_pick"];

/// Envline moves that passed the gates: the positions a rollback may return to.
const GATED_MOVES: [&str; 4] = ["promote", "cherry_pick", "realign", "reset"];

/// One environment's rollback, decided but not run.
pub(super) struct RollbackStep<'a> {
    pub env: &'a Environment,
    pub head: ObjectId,
    pub target: ObjectId,
}

/// Checks the role for every environment and finds where each goes back to:
/// `to` (a position it reached through a gated move, that did not fail its
/// tests there) or the tip before the forward move that brought its head
/// there. A rollback only ever goes back.
pub(super) async fn plan_rollback<'a>(
    engine: &'a Engine,
    who: &Principal,
    input: &RollbackInput,
) -> Result<Vec<RollbackStep<'a>>, EngineError> {
    let envs = environments(engine, &input.environments)?;
    for env in &envs {
        who.require(
            Permission::Reset {
                protected: env.protected,
            },
            Some(&env.name),
        )?;
    }
    let to = match &input.to {
        Some(c) => Some(engine.views().resolve(c).await?),
        None => None,
    };
    let mut steps = Vec::with_capacity(envs.len());
    for env in envs {
        let head = head_of(engine, env).await?;
        let moves = audit::moves_of(&engine.pool, &env.name).await?;
        let head_hex = head.to_string();
        let target = match to {
            Some(t) => {
                let t_hex = t.to_string();
                // Only a position the environment reached through a gated
                // Envline move: never one only observed or pushed around Envline.
                let arrived = moves.iter().any(|m| {
                    GATED_MOVES.contains(&m.action.as_str())
                        && m.new.as_deref() == Some(t_hex.as_str())
                });
                if !arrived {
                    return Err(EngineError::Conflict {
                        code: ErrorCode::NeverHeld,
                        message: format!(
                            "`{}` never reached {} through a gated Envline move (promotion, cherry-pick, realign or reset) as far as the audit log knows; roll back to such a position, or promote instead",
                            env.name,
                            short(&t_hex)
                        ),
                    });
                }
                // Back only: behind the head (unless the head is off the
                // line, where earlier positions are not its ancestors).
                let root = engine.pipeline_now().root_branch().to_owned();
                let (behind, head_on_line) = engine
                    .git(move |git| {
                        let behind = git.is_ancestor(t, head)?;
                        let on_line = match git.branch_tip(&root)? {
                            Some(r) => git.is_ancestor(head, r)?,
                            None => false,
                        };
                        Ok((behind, on_line))
                    })
                    .await?;
                if !behind && head_on_line {
                    return Err(EngineError::Conflict {
                        code: ErrorCode::NotBack,
                        message: format!(
                            "{} is not behind `{}`'s head {}: a rollback only goes back; promote to move forward",
                            short(&t_hex),
                            env.name,
                            short(&head.to_string())
                        ),
                    });
                }
                if let Some(v) = store::latest_verification(&engine.pool, &env.name, &t_hex).await?
                    && v.status == VerificationStatus::Failed
                {
                    return Err(EngineError::Conflict {
                        code: ErrorCode::FailedThere,
                        message: format!(
                            "{} failed its tests in `{}` ({} at {}); roll back to a position that did not",
                            short(&t_hex),
                            env.name,
                            v.recorded_by,
                            v.at
                        ),
                    });
                }
                t
            }
            None => {
                // The tip before the newest forward move that brought the
                // head here (resets and rollbacks are not forward moves, so
                // rolling back never returns to where a reset came from, and
                // rolling back twice goes further back).
                let previous = moves
                    .iter()
                    .filter(|m| FORWARD_MOVES.contains(&m.action.as_str()))
                    .find(|m| m.new.as_deref() == Some(head_hex.as_str()))
                    .and_then(|m| m.old.clone());
                let Some(previous) = previous else {
                    return Err(EngineError::Conflict {
                        code: ErrorCode::NoPreviousPosition,
                        message: format!(
                            "`{}` never reached {} by a promotion, as far as the audit log knows, so there is no earlier position to go back to; give `to` with a position it reached through Envline",
                            env.name,
                            short(&head_hex)
                        ),
                    });
                };
                engine.views().resolve(&previous).await?
            }
        };
        if target == head {
            return Err(EngineError::Conflict {
                code: ErrorCode::AlreadyThere,
                message: format!("`{}` is already at {}", env.name, short(&head.to_string())),
            });
        }
        steps.push(RollbackStep { env, head, target });
    }
    Ok(steps)
}

/// S3: moves environments back to their previous position (or to `to`, a
/// commit each held before), all in one atomic push, and holds their
/// auto-promotion until someone releases it.
pub async fn rollback(
    engine: &Engine,
    who: &Principal,
    input: RollbackInput,
) -> Result<Vec<AuditEventView>, EngineError> {
    let reason = reason_of(input.reason.as_deref())?;
    // A rollback reads only its environments' own history.
    let scope = RefScope {
        writes: environments(engine, &input.environments)?
            .iter()
            .map(|e| e.branch.clone())
            .collect(),
        ..RefScope::default()
    };
    let guard = engine.lock_scope(scope).await?;
    journal::settle_pending(engine, guard.scope()).await?;
    let steps = plan_rollback(engine, who, &input).await?;
    let names: Vec<String> = steps.iter().map(|s| s.env.name.clone()).collect();
    let payload = IntentPayload {
        changes: steps
            .iter()
            .map(|s| RefChange {
                branch: s.env.branch.clone(),
                old: Some(s.head),
                new: s.target,
            })
            .collect(),
        events: steps
            .iter()
            .map(|s| AuditDraft {
                actor: who.user.clone(),
                action: AuditAction::Rollback,
                environment: Some(s.env.name.clone()),
                old: Some(s.head.to_string()),
                new: Some(s.target.to_string()),
                reason: reason.clone(),
                details: json!({ "environments": names }),
            })
            .collect(),
        request_id: None,
        new_requests: Vec::new(),
        // Auto-promotion would move it straight back: hold it (S3).
        holds: steps
            .iter()
            .filter(|s| s.env.auto_promote)
            .map(|s| {
                (
                    s.env.name.clone(),
                    format!("rolled back by {}: {reason}", who.user),
                )
            })
            .collect(),
        incident: None,
    };
    let applied = journal::apply(engine, &who.user, "rollback", payload).await?;
    Ok(audit::events_by_id(&engine.pool, &applied.events).await?)
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
    let guard = engine.lock_scope(scope_of(engine, &[env], None)).await?;
    journal::settle_pending(engine, guard.scope()).await?;
    let head = head_of(engine, env).await?;
    let target = tip_of_source(engine, &env.from).await?;
    let facts = facts_for(engine, env, &env.from, head, target, true, false).await?;
    if facts.head_on_line {
        return Err(EngineError::Conflict {
            code: ErrorCode::OnLine,
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
            engine,
            who,
            env,
            RequestKind::Reset,
            &from,
            (head, target),
            &reason,
            false,
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
            action: AuditAction::Realign,
            environment: Some(env.name.clone()),
            old: Some(head.to_string()),
            new: Some(target.to_string()),
            reason: reason.clone(),
            details: json!({ "source": env.from }),
        }],
        request_id: None,
        new_requests: vec![OwnedRequest {
            kind: RequestKind::Reset,
            environment: env.name.clone(),
            source: env.from.clone(),
            from_commit: Some(head.to_string()),
            to_commit: target.to_string(),
            requested_by: who.user.clone(),
            reason,
            required_approvals: 0,
        }],
        holds: Vec::new(),
        incident: None,
    };
    journal::apply_one(engine, &who.user, "realign", payload).await
}
