//! Holds and freezes: a hold blocks promotions into an environment and says
//! who held it and why; a freeze is a hold with a time window.

use envline_api::{AuditAction, ErrorCode, HoldInput, HoldView};
use serde_json::json;

use super::{environments, reason_of};
use crate::audit::{self, AuditDraft};
use crate::auth::{Permission, Principal};
use crate::store::{self, NewHold};
use crate::{Engine, EngineError};

/// A time a person gave (see [`audit::parse_time`]), stored as RFC 3339 UTC
/// with milliseconds.
fn parse_time(name: &str, text: Option<&str>) -> Result<Option<String>, EngineError> {
    match text.map(str::trim) {
        None => Ok(None),
        Some("") => Err(EngineError::BadInput(format!(
            "`{name}` is empty: give a time (RFC 3339, like 2026-11-01T09:30:00Z) or leave it out"
        ))),
        Some(t) => audit::parse_time(name, t)
            .map(Some)
            .map_err(EngineError::BadInput),
    }
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
    let reason = reason_of(Some(&input.reason))?;
    if reason.is_empty() {
        return Err(EngineError::BadInput(
            "say why in `reason`: a hold tells others who held it and why".into(),
        ));
    }
    let starts = parse_time("starts_at", input.starts_at.as_deref())?;
    let ends = parse_time("ends_at", input.ends_at.as_deref())?;
    if let (Some(s), Some(e)) = (&starts, &ends)
        && e <= s
    {
        return Err(EngineError::Unprocessable {
            code: ErrorCode::BadWindow,
            message: "`ends_at` must be after `starts_at`".into(),
        });
    }
    if let Some(e) = &ends
        && *e <= store::now()
    {
        return Err(EngineError::Unprocessable {
            code: ErrorCode::BadWindow,
            message: format!("`ends_at` ({e}) is in the past; a freeze must end later than now"),
        });
    }
    let mut tx = store::begin(&engine.pool).await?;
    let mut out = Vec::new();
    for env in envs {
        let row = store::insert_hold(
            &mut tx,
            &NewHold {
                environment: &env.name,
                kind: input.kind,
                placed_by: "hold",
                reason: &reason,
                created_by: &who.user,
                starts_at: starts.as_deref(),
                ends_at: ends.as_deref(),
            },
        )
        .await?;
        audit::append(
            &mut tx,
            &[AuditDraft {
                actor: who.user.clone(),
                action: AuditAction::Hold,
                environment: Some(env.name.clone()),
                old: None,
                new: None,
                reason: reason.clone(),
                details: json!({ "hold": row.id, "kind": input.kind, "starts_at": starts, "ends_at": ends }),
            }],
        )
        .await?;
        out.push(row);
    }
    tx.commit().await?;
    engine.changes().changed();
    Ok(out)
}

/// A hold or freeze is lifted only by whoever could place it: the person who
/// placed it (while they still may hold that environment), an admin, or, for
/// the auto-promotion hold a rollback placed, anyone who may reset the
/// environment. Everyone else is refused with who can.
fn may_release(
    engine: &Engine,
    who: &Principal,
    record: &store::HoldRecord,
) -> Result<(), EngineError> {
    let hold = &record.hold;
    let env = hold.environment.as_str();
    let by_reset = hold.placed_by == "reset";
    let reset = Permission::Reset {
        protected: engine
            .config
            .pipeline
            .environment(env)
            .is_some_and(|e| e.protected),
    };
    let allowed = match engine.config.pipeline.environment(env) {
        Some(e) => hold.releasable_by(&who.user, &crate::abilities_on(who, e)),
        // An environment no longer configured: only an admin.
        None => who.can(Permission::Admin, None),
    };
    if allowed {
        return Ok(());
    }
    let what = if hold.ends_at.is_some() || hold.starts_at.is_some() {
        "freeze"
    } else {
        "hold"
    };
    let only = if by_reset {
        format!(
            "release {what} {} on `{env}`: it was placed by {}'s rollback; only {}, an admin, or someone who may {} `{env}` (role {}) can release it",
            hold.id,
            hold.created_by,
            hold.created_by,
            reset.name(),
            reset
                .roles()
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(" or ")
        )
    } else {
        format!(
            "release {what} {} on `{env}`: it was placed by {}; only {} or an admin can release it",
            hold.id, hold.created_by, hold.created_by
        )
    };
    Err(EngineError::Forbidden(crate::auth::Forbidden {
        user: who.user.clone(),
        permission: Permission::Hold,
        environment: Some(env.to_owned()),
        grants: who.grants.iter().map(|g| g.to_string()).collect(),
        only: Some(only),
    }))
}

/// Releases a hold.
pub async fn release(
    engine: &Engine,
    who: &Principal,
    id: i64,
    reason: Option<&str>,
) -> Result<(), EngineError> {
    let reason = reason_of(reason)?;
    let record = store::find_hold(&engine.pool, id)
        .await?
        .ok_or_else(|| EngineError::NotFound(format!("no hold {id}")))?;
    may_release(engine, who, &record)?;
    if record.released_at.is_some() {
        return Err(EngineError::Conflict {
            code: ErrorCode::AlreadyReleased,
            message: format!("hold {id} was already released"),
        });
    }
    let mut tx = store::begin(&engine.pool).await?;
    if !store::release_hold(&mut tx, id, &who.user).await? {
        tx.rollback().await?;
        return Err(EngineError::Conflict {
            code: ErrorCode::AlreadyReleased,
            message: format!("hold {id} was released meanwhile"),
        });
    }
    audit::append(
        &mut tx,
        &[AuditDraft {
            actor: who.user.clone(),
            action: AuditAction::Release,
            environment: Some(record.hold.environment.clone()),
            old: None,
            new: None,
            reason,
            details: json!({ "hold": id }),
        }],
    )
    .await?;
    tx.commit().await?;
    engine.changes().changed();
    Ok(())
}
