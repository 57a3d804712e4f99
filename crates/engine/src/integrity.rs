//! Checking the audit log whole (I5), for `envline audit verify` and
//! `GET /api/v1/audit/verify`: the hash chain; the anchors on the remote
//! (deleted or rewritten events); every environment's branch against the
//! last position the log records; and the gates' evidence rows (test
//! results, approvals, holds) against the events that recorded them.

use std::collections::HashMap;

use crate::store::Pool;
use envline_api::{AuditAction, AuditEventView, HoldView};

use super::anchor::check_anchors;
use super::audit::{self, ChainCheck};
use super::git::{AUDIT_REF, GitRepo};
use super::pipeline::Pipeline;
use super::store;

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

/// Checks everything; `git` is the clone, read as the remote was last
/// fetched. With `read_remote` the remote is asked for its anchor; without,
/// the clone's copy (as the last refresh fetched it) is checked.
pub async fn check(
    pool: &Pool,
    git: std::sync::Arc<GitRepo>,
    pipeline: &Pipeline,
    unavailable: Option<String>,
    read_remote: bool,
) -> Result<ChainCheck, super::EngineError> {
    let rows = audit::all(pool).await?;
    let verifications = store::all_verifications(pool).await?;
    let approvals = store::all_approvals(pool).await?;
    let holds = store::all_holds(pool).await?;
    let last_anchor = super::anchor::last_pushed(pool).await?;
    let intents = store::intent_states(pool).await?;
    let branches: Vec<(String, String)> = pipeline
        .environments()
        .iter()
        .map(|e| (e.name.clone(), e.branch.clone()))
        .collect();
    let task = tokio::task::spawn_blocking(move || {
        let mut result = audit::check_chain(&rows);
        let by_id: HashMap<i64, &AuditEventView> = rows.iter().map(|r| (r.id, r)).collect();
        // Anchors on the remote.
        let asked = if read_remote {
            remote_anchor(&git)
        } else {
            match git.branch_tip(AUDIT_REF) {
                Ok(Some(t)) => RemoteAnchor::Tip(t),
                Ok(None) => RemoteAnchor::None,
                Err(e) => RemoteAnchor::Unreachable(e.to_string()),
            }
        };
        let tip = match asked {
            RemoteAnchor::Tip(t) => Some(t),
            RemoteAnchor::None => None,
            RemoteAnchor::Unreachable(e) => {
                result.problems.push(format!(
                    "the remote cannot be asked for its anchor ({e}); the clone's copy was checked"
                ));
                git.branch_tip(AUDIT_REF).ok().flatten()
            }
        };
        // The remote's anchor must keep the last one Envline pushed.
        result
            .problems
            .extend(super::anchor::rewound_problem(&git, tip, last_anchor));
        match tip {
            Some(tip) => match git.anchors(tip) {
                Ok(anchors) => {
                    let newest = anchors.first().map(|(_, h)| h.trim().to_owned());
                    result.problems.extend(check_anchors(
                        &anchors,
                        |id| by_id.get(&id).map(|r| r.hash.clone()),
                        result.events,
                    ));
                    // The changes the anchors vouch for (pushed with them).
                    let anchored: Vec<(gix::ObjectId, i64, String)> = anchors
                        .iter()
                        .flat_map(|(commit, _)| {
                            let text = git.read_file(*commit, "intent").ok().flatten();
                            super::anchor::parse_intents(text.as_deref().unwrap_or_default())
                                .into_iter()
                                .map(|(id, digest)| (*commit, id, digest))
                        })
                        .collect();
                    let mut events_of_intent: HashMap<i64, usize> = HashMap::new();
                    for r in rows
                        .iter()
                        .filter(|r| r.details.as_str().contains("\"intent\""))
                    {
                        if let Some(i) = r.details.value().get("intent").and_then(|i| i.as_i64()) {
                            *events_of_intent.entry(i).or_default() += 1;
                        }
                    }
                    result.problems.extend(super::anchor::check_intents(
                        &anchored,
                        &intents,
                        &events_of_intent,
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
                    Some(why) => format!("not anchored: {why}"),
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
    Ok(task.await?)
}

/// Evidence rows against the events that recorded them: an edited test
/// result, approval or hold shows. One pass over the events builds an index
/// by evidence id, so the check is linear in events plus evidence rows.
fn check_evidence(
    rows: &[AuditEventView],
    verifications: &[envline_api::VerificationView],
    approvals: &[store::ApprovalEvidence],
    holds: &[store::HoldRecord],
) -> Vec<String> {
    let mut problems = Vec::new();
    // What each event says about evidence, indexed once.
    let mut verdicts: HashMap<i64, (&AuditEventView, serde_json::Value)> = HashMap::new();
    let mut decisions: HashMap<(i64, &str), (usize, &AuditEventView)> = HashMap::new();
    let mut withdrawals: HashMap<(i64, String), usize> = HashMap::new();
    let mut placed: HashMap<i64, (&AuditEventView, serde_json::Value)> = HashMap::new();
    let mut released: std::collections::HashSet<i64> = std::collections::HashSet::new();
    for (at, r) in rows.iter().enumerate() {
        use AuditAction as A;
        let interesting = matches!(
            r.action,
            A::Verify
                | A::Rollback
                | A::Approve
                | A::Reject
                | A::ApprovalWithdrawn
                | A::Hold
                | A::Release
        );
        if !interesting {
            continue;
        }
        let d = r.details.value();
        let id = |key: &str| d.get(key).and_then(|x| x.as_i64());
        match r.action {
            A::Verify | A::Rollback => {
                if let Some(v) = id("verification") {
                    verdicts.insert(v, (r, d.clone()));
                }
            }
            A::Approve | A::Reject => {
                if let Some(request) = id("request") {
                    decisions.insert((request, r.actor.as_str()), (at, r));
                }
            }
            A::ApprovalWithdrawn => {
                if let (Some(request), Some(approver)) =
                    (id("request"), d.get("approver").and_then(|x| x.as_str()))
                {
                    withdrawals.insert((request, approver.to_owned()), at);
                }
            }
            A::Hold => {
                if let Some(h) = id("hold") {
                    placed.entry(h).or_insert((r, d.clone()));
                }
            }
            _ => {
                if let Some(h) = id("hold") {
                    released.insert(h);
                }
            }
        }
    }
    for v in verifications {
        let ok = verdicts.get(&v.id).is_some_and(|(r, d)| {
            let same_place = r.environment.as_deref() == Some(v.environment.as_str())
                && r.actor == v.recorded_by;
            if r.action == AuditAction::Rollback {
                // A rollback's verdict: the commit it rolled back from failed there.
                same_place
                    && r.old.as_deref() == Some(v.commit.as_str())
                    && v.status == envline_api::VerificationStatus::Failed
            } else {
                same_place
                    && d.get("commit").and_then(|x| x.as_str()) == Some(v.commit.as_str())
                    && d.get("status").and_then(|x| x.as_str()) == Some(v.status.as_str())
            }
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
    for a in approvals {
        let latest = decisions.get(&(a.request_id, a.approver.as_str()));
        let decided = latest.is_some_and(|(_, r)| {
            r.action == AuditAction::from(a.decision) && r.reason == a.comment
        });
        // A withdrawn approval needs the event that withdrew it, after the decision.
        let withdrawal_ok = match &a.withdrawn {
            Some(_) => latest.is_some_and(|(at, _)| {
                withdrawals
                    .get(&(a.request_id, a.approver.clone()))
                    .is_some_and(|w| w > at)
            }),
            None => true,
        };
        if !decided || !withdrawal_ok {
            problems.push(format!(
                "{}'s decision on request {} does not match the event that recorded it",
                a.approver, a.request_id
            ));
        }
    }
    for h in holds {
        let hold: &HoldView = &h.hold;
        let placed_ok = match placed.get(&hold.id) {
            Some((r, d)) => {
                r.environment.as_deref() == Some(hold.environment.as_str())
                    && r.reason == hold.reason
                    && d.get("kind").and_then(|x| x.as_str()) == Some(hold.kind.as_str())
                    && d.get("ends_at").and_then(|x| x.as_str()) == hold.ends_at.as_deref()
            }
            // Holds placed by rollbacks are recorded with the rollback itself.
            None => hold.placed_by == "reset",
        };
        let released_ok = h.released_at.is_none() || released.contains(&hold.id);
        if !placed_ok || !released_ok {
            problems.push(format!(
                "hold {} on {} does not match the events that recorded it",
                hold.id, hold.environment
            ));
        }
    }
    problems
}
