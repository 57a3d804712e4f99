//! Checking the audit log whole (I5), for `envline audit verify` and
//! `GET /api/v1/audit/verify`: the hash chain; the anchors on the remote
//! (deleted or rewritten events); every environment's branch against the
//! last position the log records; and the gates' evidence rows (test
//! results, approvals, holds) against the events that recorded them.

use std::collections::HashMap;

use sqlx::SqlitePool;

use super::anchor::check_anchors;
use super::audit::{self, ChainCheck};
use super::git::{AUDIT_REF, GitRepo};
use super::pipeline::Pipeline;
use super::store;
use crate::model::{AuditEventView, Decision, HoldView};

/// How the remote's anchor was read.
pub enum RemoteAnchor {
    /// The remote's anchor tip (fetched into the clone's objects).
    Tip(gix::ObjectId),
    /// The remote has no anchor (nothing anchored yet, or it refuses it).
    None,
    /// The remote could not be asked; the clone's copy is used.
    Unreachable(String),
}

/// Asks the remote for its anchor tip and fetches its objects (no ref moves).
pub fn remote_anchor(git: &GitRepo) -> RemoteAnchor {
    match git.fetch_anchor() {
        Ok(Some(tip)) => RemoteAnchor::Tip(tip),
        Ok(None) => RemoteAnchor::None,
        Err(e) => RemoteAnchor::Unreachable(e.to_string()),
    }
}

/// Checks everything; `git` is the clone, read as the remote was last fetched.
pub async fn check(
    pool: &SqlitePool,
    git: std::sync::Arc<GitRepo>,
    pipeline: &Pipeline,
    unavailable: Option<String>,
) -> Result<ChainCheck, super::EngineError> {
    let rows = audit::all(pool).await?;
    let verifications: Vec<crate::model::VerificationView> =
        sqlx::query_as("SELECT * FROM verifications ORDER BY id")
            .fetch_all(pool)
            .await?;
    let approvals: Vec<(i64, String, Decision, String)> =
        sqlx::query_as("SELECT request_id, approver, decision, comment FROM approvals")
            .fetch_all(pool)
            .await?;
    let holds: Vec<store::HoldRecord> = sqlx::query_as(
        "SELECT id, environment, kind, reason, created_by, created_at, starts_at, ends_at, released_at, placed_by FROM holds ORDER BY id",
    )
    .fetch_all(pool)
    .await?;
    let branches: Vec<(String, String)> = pipeline
        .environments()
        .iter()
        .map(|e| (e.name.clone(), e.branch.clone()))
        .collect();
    let task = tokio::task::spawn_blocking(move || {
        let mut result = audit::check_chain(&rows);
        let by_id: HashMap<i64, &AuditEventView> = rows.iter().map(|r| (r.id, r)).collect();
        // Anchors on the remote.
        let tip = match remote_anchor(&git) {
            RemoteAnchor::Tip(t) => Some(t),
            RemoteAnchor::None => None,
            RemoteAnchor::Unreachable(e) => {
                result.problems.push(format!(
                    "the remote cannot be asked for its anchor ({e}); the clone's copy was checked"
                ));
                git.branch_tip(AUDIT_REF).ok().flatten()
            }
        };
        match tip {
            Some(tip) => match git.anchors(tip) {
                Ok(anchors) => {
                    let newest = anchors.first().map(|(_, h)| h.trim().to_owned());
                    result.problems.extend(check_anchors(
                        &anchors,
                        |id| by_id.get(&id).map(|r| r.hash.clone()),
                        result.events,
                    ));
                    result.anchor = Some(match newest {
                        Some(h) => format!(
                            "{} anchors on the remote; the newest vouches for event {h}",
                            anchors.len()
                        ),
                        None => "no anchor yet".into(),
                    });
                }
                Err(e) => result
                    .problems
                    .push(format!("the anchors cannot be read: {e}")),
            },
            None => {
                result.anchor = Some(match &unavailable {
                    Some(why) => format!("not anchored: the remote refuses {AUDIT_REF} ({why})"),
                    None => "no anchor on the remote yet".into(),
                });
            }
        }
        // Each environment's branch against the last position the log records.
        let tips = git.branch_tips().unwrap_or_default();
        for (env, branch) in &branches {
            let recorded = rows
                .iter()
                .rev()
                .find(|r| r.environment.as_deref() == Some(env.as_str()) && r.new.is_some())
                .and_then(|r| r.new.clone());
            let actual = tips.get(branch).map(|t| t.to_string());
            if let (Some(recorded), Some(actual)) = (&recorded, &actual)
                && recorded != actual
            {
                result.problems.push(format!(
                    "`{env}` is at {} but the audit log last recorded {}: a move the log does not explain (a refresh records direct pushes as out_of_band)",
                    &actual[..10],
                    &recorded[..10]
                ));
            }
        }
        result
            .problems
            .extend(check_evidence(&rows, &verifications, &approvals, &holds));
        if !result.problems.is_empty() {
            result.intact = false;
            if result.first_broken.is_none() {
                result.message = result.problems[0].clone();
            }
        }
        result
    });
    task.await
        .map_err(|e| super::EngineError::Internal(e.to_string()))
}

/// Evidence rows against the events that recorded them: an edited test
/// result, approval or hold shows.
fn check_evidence(
    rows: &[AuditEventView],
    verifications: &[crate::model::VerificationView],
    approvals: &[(i64, String, Decision, String)],
    holds: &[store::HoldRecord],
) -> Vec<String> {
    let mut problems = Vec::new();
    let details: Vec<(&AuditEventView, serde_json::Value)> =
        rows.iter().map(|r| (r, r.details.value())).collect();
    for v in verifications {
        let recorded = details.iter().find(|(r, d)| {
            r.action == "verify" && d.get("verification").and_then(|x| x.as_i64()) == Some(v.id)
        });
        let ok = recorded.is_some_and(|(r, d)| {
            r.environment.as_deref() == Some(v.environment.as_str())
                && d.get("commit").and_then(|x| x.as_str()) == Some(v.commit.as_str())
                && d.get("status").and_then(|x| x.as_str()) == Some(v.status.as_str())
                && r.actor == v.recorded_by
        });
        if !ok {
            problems.push(format!(
                "test result {} ({} {} in {}) does not match the event that recorded it",
                v.id,
                &v.commit[..v.commit.len().min(10)],
                v.status,
                v.environment
            ));
        }
    }
    for (request, approver, decision, comment) in approvals {
        let latest = details.iter().rev().find(|(r, d)| {
            (r.action == "approve" || r.action == "reject")
                && r.actor == *approver
                && d.get("request").and_then(|x| x.as_i64()) == Some(*request)
        });
        let ok = latest.is_some_and(|(r, _)| r.action == decision.as_str() && r.reason == *comment);
        if !ok {
            problems.push(format!(
                "{approver}'s decision on request {request} does not match the event that recorded it"
            ));
        }
    }
    for h in holds {
        let hold: &HoldView = &h.hold;
        let placed = details.iter().find(|(r, d)| {
            r.action == "hold" && d.get("hold").and_then(|x| x.as_i64()) == Some(hold.id)
        });
        let placed_ok = match placed {
            Some((r, d)) => {
                r.environment.as_deref() == Some(hold.environment.as_str())
                    && r.reason == hold.reason
                    && d.get("kind").and_then(|x| x.as_str()) == Some(hold.kind.as_str())
                    && d.get("ends_at").and_then(|x| x.as_str()) == hold.ends_at.as_deref()
            }
            // Holds placed by rollbacks are recorded with the rollback itself.
            None => h.placed_by == "reset",
        };
        let released_ok = match &h.released_at {
            Some(_) => details.iter().any(|(r, d)| {
                r.action == "release" && d.get("hold").and_then(|x| x.as_i64()) == Some(hold.id)
            }),
            None => true,
        };
        if !placed_ok || !released_ok {
            problems.push(format!(
                "hold {} on {} does not match the events that recorded it",
                hold.id, hold.environment
            ));
        }
    }
    problems
}
