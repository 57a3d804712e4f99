//! The gates of a promotion (I1–I4 and holds) as pure functions over plain
//! facts, so the API, the preview dialog and the tests all use the same
//! decision.

use envline_api::{
    Decision, ErrorCode, GateCheck, GateKind, HoldKind, HoldView, PromotionView,
    VerificationStatus, VerificationView,
};

/// Why a promotion cannot go ahead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The move itself is wrong (HTTP 409): not a fast-forward, off the line, …
    Conflict { code: ErrorCode, message: String },
    /// The move is fine but gates are not met (HTTP 422), each listed.
    Gates(Vec<GateCheck>),
}

/// What is known about a proposed move of `environment` to `candidate`.
#[derive(Debug, Clone)]
pub struct PromotionFacts {
    pub environment: String,
    pub source: String,
    pub head: String,
    pub candidate: String,
    /// The move is a reset (rollback, realign, S6 onto an environment that is ahead): I2 does not apply.
    pub is_reset: bool,
    /// I2: the head is the candidate or one of its ancestors.
    pub fast_forward: bool,
    pub head_on_line: bool,
    pub candidate_on_source: bool,
    pub candidate_on_line: bool,
    /// For each required environment, the latest verification of exactly `candidate` there.
    pub verifications: Vec<(String, Option<VerificationView>)>,
    /// Holds in force on the environment.
    pub holds: Vec<HoldView>,
    /// An automatic promotion (also stopped by `auto_promotion` holds).
    pub automatic: bool,
}

fn short(id: &str) -> &str {
    &id[..id.len().min(10)]
}

/// The move itself: I1 and I2, and that there is something to move.
fn check_move(f: &PromotionFacts) -> Result<(), Refusal> {
    let env = f.environment.as_str();
    if f.head == f.candidate {
        return Err(Refusal::Conflict {
            code: ErrorCode::AlreadyThere,
            message: format!(
                "`{env}` is already at {}; nothing to promote",
                short(&f.candidate)
            ),
        });
    }
    if !f.candidate_on_source {
        return Err(Refusal::Conflict {
            code: ErrorCode::NotOnSource,
            message: format!(
                "{} is not on `{}`'s line; pick a commit `{}` holds",
                short(&f.candidate),
                f.source,
                f.source
            ),
        });
    }
    if !f.candidate_on_line {
        return Err(Refusal::Conflict {
            code: ErrorCode::OffLine,
            message: format!(
                "{} is not on the root branch's line (I1); promote only commits of the line",
                short(&f.candidate)
            ),
        });
    }
    if !f.is_reset {
        if !f.head_on_line {
            return Err(Refusal::Conflict {
                code: ErrorCode::OffLine,
                message: format!(
                    "`{env}` is off the line at {} (after an out-of-order promotion or a direct push); realign it first",
                    short(&f.head)
                ),
            });
        }
        if !f.fast_forward {
            return Err(Refusal::Conflict {
                code: ErrorCode::NotFastForward,
                message: format!(
                    "moving `{env}` from {} to {} is not a fast-forward (I2): {} is not an ancestor of {}; use a rollback to move back",
                    short(&f.head),
                    short(&f.candidate),
                    short(&f.head),
                    short(&f.candidate)
                ),
            });
        }
    }
    Ok(())
}

/// Every gate with its state and evidence: I3 per required environment, then
/// the holds in force. What the preview shows and what [`check_promotion`] decides on.
pub fn gates(f: &PromotionFacts) -> Vec<GateCheck> {
    let env = f.environment.as_str();
    let mut out = Vec::new();
    for (required, verification) in &f.verifications {
        let status = verification.as_ref().map(|v| v.status);
        let met = status == Some(VerificationStatus::Passed);
        let message = match verification {
            Some(v) if met => format!(
                "{} passed in `{required}` ({} at {})",
                short(&f.candidate),
                v.recorded_by,
                v.at
            ),
            Some(v) => format!(
                "{} is `{}` in `{required}`{}; `{env}` needs exactly this commit passed there (I3)",
                short(&f.candidate),
                v.status,
                v.summary
                    .as_deref()
                    .filter(|_| v.status == VerificationStatus::Failed)
                    .map(|s| format!(" ({s}, {} at {})", v.recorded_by, v.at))
                    .unwrap_or_default()
            ),
            None => format!(
                "{} has no verification in `{required}`; `{env}` needs exactly this commit passed there (I3)",
                short(&f.candidate)
            ),
        };
        out.push(GateCheck {
            gate: GateKind::Verified,
            environment: required.clone(),
            met,
            message,
            evidence: verification.clone(),
        });
    }
    let blocking: Vec<&HoldView> = f
        .holds
        .iter()
        .filter(|h| h.kind == HoldKind::Promotion || f.automatic)
        .collect();
    if blocking.is_empty() {
        out.push(GateCheck {
            gate: GateKind::Hold,
            environment: env.to_owned(),
            met: true,
            message: format!("no hold on `{env}`"),
            evidence: None,
        });
    }
    for h in blocking {
        out.push(GateCheck {
            gate: GateKind::Hold,
            environment: env.to_owned(),
            met: false,
            message: format!(
                "`{env}` is held by {}: {}; release the hold first",
                h.created_by, h.reason
            ),
            evidence: None,
        });
    }
    out
}

/// Decides whether the move may happen; lists every unmet gate at once.
pub fn check_promotion(f: &PromotionFacts) -> Result<(), Refusal> {
    check_move(f)?;
    let unmet: Vec<GateCheck> = gates(f).into_iter().filter(|g| !g.met).collect();
    if unmet.is_empty() {
        Ok(())
    } else {
        Err(Refusal::Gates(unmet))
    }
}

/// The refusal of the move alone (I1, I2), without the gates: what a preview
/// shows as "cannot run at all".
pub fn check_move_only(f: &PromotionFacts) -> Result<(), Refusal> {
    check_move(f)
}

/// I4: the approvers who count for a request: distinct people who approved,
/// never the requester, and only while they may approve (a withdrawn
/// approval does not count).
pub fn counted_approvers(request: &PromotionView) -> Vec<String> {
    let mut approvers: Vec<String> = request
        .approvals
        .iter()
        .filter(|a| {
            a.decision == Decision::Approve
                && a.withdrawn.is_none()
                && a.approver != request.requested_by
        })
        .map(|a| a.approver.clone())
        .collect();
    approvers.sort();
    approvers.dedup();
    approvers
}

/// I4: whether a request has all the approvals it needs.
pub fn approvals_met(request: &PromotionView) -> bool {
    counted_approvers(request).len() as u32 >= request.required_approvals
}

/// The approvals gate of a request, for the approvals page and the preview.
pub fn approvals_gate(request: &PromotionView) -> GateCheck {
    let approvers = counted_approvers(request);
    let met = approvers.len() as u32 >= request.required_approvals;
    let withdrawn: Vec<String> = request
        .approvals
        .iter()
        .filter_map(|a| {
            a.withdrawn
                .as_ref()
                .map(|w| format!("{}'s approval was withdrawn ({w})", a.approver))
        })
        .collect();
    let needed = request
        .required_approvals
        .saturating_sub(approvers.len() as u32);
    GateCheck {
        gate: GateKind::Approvals,
        environment: request.environment.clone(),
        met,
        message: format!(
            "{} of {} approvals{}; the requester ({}) does not count{}{}",
            approvers.len(),
            request.required_approvals,
            if approvers.is_empty() {
                String::new()
            } else {
                format!(" ({})", approvers.join(", "))
            },
            request.requested_by,
            withdrawn
                .iter()
                .map(|w| format!("; {w}"))
                .collect::<String>(),
            if needed > 0 && !withdrawn.is_empty() {
                format!("; {needed} more needed")
            } else {
                String::new()
            }
        ),
        evidence: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use envline_api::{ApprovalView, RequestKind, RequestState};

    fn verification(env: &str, status: VerificationStatus) -> Option<VerificationView> {
        Some(VerificationView {
            id: 1,
            environment: env.into(),
            commit: "bbbbbbbbbbbb".into(),
            status,
            url: Some("https://ci.example.com/1".into()),
            summary: None,
            recorded_by: "tess".into(),
            at: "2026-11-25T10:00:00.000Z".into(),
        })
    }

    fn facts() -> PromotionFacts {
        PromotionFacts {
            environment: "staging".into(),
            source: "integration".into(),
            head: "aaaaaaaaaaaa".into(),
            candidate: "bbbbbbbbbbbb".into(),
            is_reset: false,
            fast_forward: true,
            head_on_line: true,
            candidate_on_source: true,
            candidate_on_line: true,
            verifications: vec![
                (
                    "integration".into(),
                    verification("integration", VerificationStatus::Passed),
                ),
                (
                    "loadtest".into(),
                    verification("loadtest", VerificationStatus::Passed),
                ),
            ],
            holds: vec![],
            automatic: false,
        }
    }

    fn hold(kind: HoldKind) -> HoldView {
        HoldView {
            id: 1,
            environment: "staging".into(),
            kind,
            reason: "rolled back".into(),
            created_by: "bob".into(),
            created_at: "2026-11-25T10:00:00.000Z".into(),
            starts_at: None,
            ends_at: None,
            placed_by: "hold".into(),
        }
    }

    #[test]
    fn a_hold_is_released_by_whoever_could_place_it() {
        use envline_api::Abilities;
        let promoter = Abilities {
            hold: true,
            ..Default::default()
        };
        let mut h = hold(HoldKind::Promotion);
        assert!(h.releasable_by("bob", &promoter), "the one who placed it");
        assert!(!h.releasable_by("pat", &promoter), "another promoter");
        assert!(h.releasable_by(
            "ada",
            &Abilities {
                admin: true,
                ..Default::default()
            }
        ));
        assert!(
            !h.releasable_by("bob", &Abilities::default()),
            "bob lost the role"
        );
        h.placed_by = "reset".into();
        let resetter = Abilities {
            reset: true,
            ..Default::default()
        };
        assert!(
            h.releasable_by("ida", &resetter),
            "a rollback's hold: the reset role"
        );
        assert!(!h.releasable_by("pat", &promoter));
    }

    #[test]
    fn all_gates_met_allows_the_promotion_and_shows_the_evidence() {
        let f = facts();
        assert_eq!(check_promotion(&f), Ok(()));
        let g = gates(&f);
        assert!(g.iter().all(|g| g.met));
        assert_eq!(g[0].evidence.as_ref().unwrap().recorded_by, "tess");
        assert!(g[0].message.contains("passed in `integration`"));
    }

    #[test]
    fn promote_requires_exact_commit_verified_in_every_required_environment() {
        let mut f = facts();
        f.verifications = vec![
            (
                "integration".into(),
                verification("integration", VerificationStatus::Failed),
            ),
            ("loadtest".into(), None),
        ];
        let Err(Refusal::Gates(gates)) = check_promotion(&f) else {
            panic!()
        };
        assert_eq!(gates.len(), 2);
        assert!(gates[0].message.contains("`failed`"));
        assert_eq!(gates[1].environment, "loadtest");
    }

    #[test]
    fn not_fast_forward_is_a_conflict_but_a_reset_is_not() {
        let mut f = facts();
        f.fast_forward = false;
        assert!(matches!(
            check_promotion(&f),
            Err(Refusal::Conflict {
                code: ErrorCode::NotFastForward,
                ..
            })
        ));
        f.is_reset = true;
        assert_eq!(check_promotion(&f), Ok(()));
    }

    #[test]
    fn auto_promotion_holds_stop_only_automatic_promotions() {
        let mut f = facts();
        f.holds = vec![hold(HoldKind::AutoPromotion)];
        assert_eq!(check_promotion(&f), Ok(()));
        f.automatic = true;
        assert!(
            matches!(check_promotion(&f), Err(Refusal::Gates(g)) if g[0].gate == GateKind::Hold)
        );
    }

    #[test]
    fn off_line_environments_must_be_realigned_first() {
        let mut f = facts();
        f.head_on_line = false;
        assert!(matches!(
            check_promotion(&f),
            Err(Refusal::Conflict {
                code: ErrorCode::OffLine,
                ..
            })
        ));
    }

    fn request(approvals: &[(&str, Decision)]) -> PromotionView {
        PromotionView {
            id: 1,
            kind: RequestKind::Promote,
            environment: "prod-eu".into(),
            source: "staging-eu".into(),
            from_commit: None,
            to_commit: "b".into(),
            requested_by: "pat".into(),
            reason: String::new(),
            required_approvals: 2,
            state: RequestState::AwaitingApproval,
            state_reason: None,
            result_commit: None,
            counted_approvers: Vec::new(),
            approvals: approvals
                .iter()
                .map(|(who, d)| ApprovalView {
                    approver: who.to_string(),
                    decision: *d,
                    comment: String::new(),
                    at: String::new(),
                    withdrawn: None,
                })
                .collect(),
            created_at: String::new(),
            updated_at: String::new(),
        }
    }

    #[test]
    fn the_requester_never_counts_as_an_approver() {
        let r = request(&[("pat", Decision::Approve), ("ann", Decision::Approve)]);
        assert_eq!(counted_approvers(&r), vec!["ann".to_string()]);
        assert!(!approvals_met(&r));
        let r = request(&[
            ("ann", Decision::Approve),
            ("bob", Decision::Approve),
            ("cat", Decision::Reject),
        ]);
        assert!(approvals_met(&r));
        assert!(approvals_gate(&r).message.starts_with("2 of 2 approvals"));
    }

    #[test]
    fn a_withdrawn_approval_does_not_count_and_the_gate_says_what_is_missing() {
        let mut r = request(&[("ann", Decision::Approve), ("bob", Decision::Approve)]);
        r.approvals[1].withdrawn = Some("ada removed bob's role approver:prod-*".into());
        assert_eq!(counted_approvers(&r), vec!["ann".to_string()]);
        assert!(!approvals_met(&r));
        let gate = approvals_gate(&r);
        assert!(!gate.met);
        assert!(
            gate.message
                .contains("bob's approval was withdrawn (ada removed bob's role approver:prod-*)"),
            "{}",
            gate.message
        );
        assert!(gate.message.ends_with("1 more needed"), "{}", gate.message);
    }
}
