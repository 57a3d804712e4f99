//! I3's evidence: a tester or CI records that exactly one commit passed (or
//! failed) its tests in one environment.

use envline_api::{AuditAction, ErrorCode, VerificationStatus, VerificationView, VerifyInput};
use serde_json::json;

use super::{MAX_TEXT, environment};
use crate::audit::{self, AuditDraft};
use crate::auth::{Permission, Principal};
use crate::store::{self, NewVerification};
use crate::{Engine, EngineError};

/// How many of the commits an environment held a refusal lists.
const HELD_LISTED: usize = 5;

/// A test can only pass where the commit ran: the environment must hold it
/// now or have held it (its head, or a position in the audit log).
async fn passed_where_it_ran(
    engine: &Engine,
    environment: &str,
    branch: &str,
    commit: &str,
) -> Result<(), EngineError> {
    // Where the environment is as Envline last saw or set it: not the
    // clone, which shows a change whose push is still on the way.
    let head = store::observed_tips(&engine.pool)
        .await?
        .into_iter()
        .find(|(b, _)| b == branch)
        .map(|(_, c)| c)
        .filter(|c| c != store::DELETED);
    if head.as_deref() == Some(commit) {
        return Ok(());
    }
    let moves = audit::moves_of(&engine.pool, environment).await?;
    if moves
        .iter()
        .any(|m| m.new.as_deref() == Some(commit) || m.old.as_deref() == Some(commit))
    {
        return Ok(());
    }
    let mut held: Vec<String> = head.into_iter().collect();
    for m in &moves {
        if let Some(n) = &m.new
            && !held.contains(n)
        {
            held.push(n.clone());
        }
    }
    held.truncate(HELD_LISTED);
    let held: Vec<&str> = held.iter().map(|h| super::short(h)).collect();
    Err(EngineError::Unprocessable {
        code: ErrorCode::NeverHeld,
        message: format!(
            "`{environment}` never held {}, so it cannot have passed there; it held recently: {}. Record the result in the environment where the commit ran",
            super::short(commit),
            held.join(", ")
        ),
    })
}

/// Records a verification of exactly `commit` in `environment` (I3).
pub async fn verify(
    engine: &Engine,
    who: &Principal,
    input: VerifyInput,
) -> Result<VerificationView, EngineError> {
    let env = environment(engine, &input.environment)?;
    who.require(Permission::Verify, Some(&env.name))?;
    let url = input
        .url
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty());
    let summary = input
        .summary
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    if url.is_some_and(|u| u.chars().count() > MAX_TEXT)
        || summary.is_some_and(|s| s.chars().count() > MAX_TEXT)
    {
        return Err(EngineError::BadInput(format!(
            "`url` and `summary` may be at most {MAX_TEXT} characters"
        )));
    }
    if let Some(u) = url
        && !(u.starts_with("https://") || u.starts_with("http://"))
    {
        return Err(EngineError::BadInput(format!(
            "`url` must be an http:// or https:// link to the test run, not `{u}`"
        )));
    }
    let id = engine.views().resolve(&input.commit).await?.to_string();
    if input.status == VerificationStatus::Passed {
        passed_where_it_ran(engine, &env.name, &env.branch, &id).await?;
    }
    // Only the database: a hanging remote never holds up a test result. The
    // transaction is BEGIN IMMEDIATE, so the audit chain has one writer. A
    // promotion decides its gates when it is planned: a failed result that
    // arrives while its push is on the way does not stop that push, but it
    // revokes the commit for every promotion planned after it (I3).
    let mut tx = store::begin(&engine.pool).await?;
    let row = store::record_verification(
        &mut tx,
        &NewVerification {
            environment: &env.name,
            commit: &id,
            status: input.status,
            url,
            summary,
            recorded_by: &who.user,
        },
    )
    .await?;
    audit::append(
        &mut tx,
        &[AuditDraft {
            actor: who.user.clone(),
            action: AuditAction::Verify,
            environment: Some(env.name.clone()),
            old: None,
            new: None,
            reason: summary.unwrap_or("").to_owned(),
            details: json!({ "commit": id, "status": input.status, "url": url, "verification": row.id }),
        }],
    )
    .await?;
    tx.commit().await?;
    engine.changes().changed();
    Ok(row)
}
