//! Moves that are not fast-forwards, each separately authorised and audited
//! (I2): S3 roll back, and S5 realign an environment that is off the line.

use gix::ObjectId;
use serde_json::json;

use super::journal::{self, IntentPayload, OwnedRequest};
use super::promote::open_request;
use super::{environment, environments, facts_for, head_of, reason_of, short, tip_of_source};
use crate::engine::audit::{self, AuditDraft};
use crate::engine::auth::{Permission, Principal};
use crate::engine::git::RefChange;
use crate::engine::pipeline::Environment;
use crate::engine::rules;
use crate::engine::store;
use crate::engine::{Engine, EngineError};
use crate::model::{AuditEventView, PromotionView, RequestKind, RollbackInput};

/// One environment's rollback, decided but not run.
pub(super) struct RollbackStep<'a> {
    pub env: &'a Environment,
    pub head: ObjectId,
    pub target: ObjectId,
}

/// Checks the role for every environment and finds where each goes back to:
/// `to` (a commit it held) or the tip before the move that brought its head
/// there. Rollbacks are skipped when looking back, so rolling back twice goes
/// further back, not forth.
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
        Some(c) => Some(engine.resolve(c).await?),
        None => None,
    };
    let mut steps = Vec::with_capacity(envs.len());
    for env in envs {
        let head = head_of(engine, env).await?;
        let moves = audit::moves_of(&engine.pool, &env.name).await?;
        let target = match to {
            Some(t) => {
                let t_hex = t.to_string();
                let held = moves.iter().any(|m| {
                    m.old.as_deref() == Some(t_hex.as_str())
                        || m.new.as_deref() == Some(t_hex.as_str())
                });
                if !held {
                    return Err(EngineError::Conflict {
                        code: "never_held",
                        message: format!(
                            "`{}` never held {} as far as the audit log knows; roll back to a commit it held, or promote instead",
                            env.name,
                            short(&t_hex)
                        ),
                    });
                }
                t
            }
            None => {
                let head_hex = head.to_string();
                let previous = moves
                    .iter()
                    .filter(|m| m.action != "rollback")
                    .find(|m| m.new.as_deref() == Some(head_hex.as_str()))
                    .and_then(|m| m.old.clone());
                let Some(previous) = previous else {
                    return Err(EngineError::Conflict {
                        code: "no_previous_position",
                        message: format!(
                            "the audit log has no earlier position of `{}` at {}; give `to` with a commit it held",
                            env.name,
                            short(&head_hex)
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
    let _guard = engine.write_lock.lock().await;
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
                action: "rollback".into(),
                environment: Some(s.env.name.clone()),
                old: Some(s.head.to_string()),
                new: Some(s.target.to_string()),
                reason: reason.clone(),
                details: json!({ "environments": names }),
            })
            .collect(),
        request_id: None,
        new_requests: Vec::new(),
        holds: steps
            .iter()
            .map(|s| {
                (
                    s.env.name.clone(),
                    format!("rolled back by {}: {reason}", who.user),
                )
            })
            .collect(),
    };
    journal::apply(engine, &who.user, "rollback", payload).await?;
    let filter = audit::AuditFilter {
        limit: Some(steps.len() as i64 * 2),
        ..Default::default()
    };
    Ok(audit::events(&engine.pool, &filter)
        .await?
        .into_iter()
        .filter(|e| e.action == "rollback")
        .take(steps.len())
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
    let target = tip_of_source(engine, &env.from).await?;
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
            action: "realign".into(),
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
    };
    let id = *journal::apply(engine, &who.user, "realign", payload)
        .await?
        .first()
        .ok_or_else(|| EngineError::Internal("request not recorded".into()))?;
    store::request(&engine.pool, id)
        .await?
        .ok_or_else(|| EngineError::Internal("request vanished".into()))
}
