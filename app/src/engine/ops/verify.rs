//! I3's evidence: a tester or CI records that exactly one commit passed (or
//! failed) its tests in one environment.

use serde_json::json;

use super::{MAX_TEXT, environment};
use crate::engine::audit::{self, AuditDraft};
use crate::engine::auth::{Permission, Principal};
use crate::engine::store::{self, NewVerification};
use crate::engine::{Engine, EngineError};
use crate::model::{VerificationView, VerifyInput};

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
    if url.is_some_and(|u| u.len() > MAX_TEXT) || summary.is_some_and(|s| s.len() > MAX_TEXT) {
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
    let id = engine.resolve(&input.commit).await?.to_string();
    // Under the write lock: a failed verification recorded now is seen by any
    // promotion that has not pushed yet (I3), and the audit chain has one writer.
    let _guard = engine.write_lock.lock().await;
    let mut tx = engine.pool.begin().await?;
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
            action: "verify".into(),
            environment: Some(env.name.clone()),
            old: None,
            new: None,
            reason: summary.unwrap_or("").to_owned(),
            details: json!({ "commit": id, "status": input.status, "url": url, "verification": row.id }),
        }],
    )
    .await?;
    tx.commit().await?;
    engine.changed();
    Ok(row)
}
