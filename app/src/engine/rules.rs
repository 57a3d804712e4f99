//! The gates of a promotion (I1–I4 and holds) as pure functions over plain
//! facts, so the API, the preview and the tests all use the same decision.

use serde::Serialize;

/// One gate that is not met, as the API lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnmetGate {
    /// `verified`, `hold`.
    pub gate: &'static str,
    pub environment: String,
    pub message: String,
}

/// Why a promotion cannot go ahead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The move itself is wrong (HTTP 409): not a fast-forward, off the line, …
    Conflict { code: &'static str, message: String },
    /// The move is fine but gates are not met (HTTP 422), each listed.
    Gates(Vec<UnmetGate>),
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
    /// For each required environment, the latest verification status of exactly `candidate` there.
    pub verifications: Vec<(String, Option<String>)>,
    /// Holds in force on the environment: (kind, who, reason).
    pub holds: Vec<(String, String, String)>,
    /// An automatic promotion (also stopped by `auto_promotion` holds).
    pub automatic: bool,
}

fn short(id: &str) -> &str {
    &id[..id.len().min(10)]
}

/// Decides whether the move may happen; lists every unmet gate at once.
pub fn check_promotion(f: &PromotionFacts) -> Result<(), Refusal> {
    let env = f.environment.as_str();
    if f.head == f.candidate {
        return Err(Refusal::Conflict {
            code: "already_there",
            message: format!(
                "`{env}` is already at {}; nothing to promote",
                short(&f.candidate)
            ),
        });
    }
    if !f.candidate_on_source {
        return Err(Refusal::Conflict {
            code: "not_on_source",
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
            code: "off_line",
            message: format!(
                "{} is not on the root branch's line (I1); promote only commits of the line",
                short(&f.candidate)
            ),
        });
    }
    if !f.is_reset {
        if !f.head_on_line {
            return Err(Refusal::Conflict {
                code: "off_line",
                message: format!(
                    "`{env}` is off the line at {} (after an out-of-order promotion or a direct push); realign it first",
                    short(&f.head)
                ),
            });
        }
        if !f.fast_forward {
            return Err(Refusal::Conflict {
                code: "not_fast_forward",
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
    let mut unmet = Vec::new();
    for (required, status) in &f.verifications {
        if status.as_deref() != Some("passed") {
            let why = match status.as_deref() {
                None => "has no verification there".to_string(),
                Some(s) => format!("is `{s}` there"),
            };
            unmet.push(UnmetGate {
                gate: "verified",
                environment: required.clone(),
                message: format!(
                    "{} {why}; `{env}` needs exactly this commit passed in `{required}` (I3)",
                    short(&f.candidate)
                ),
            });
        }
    }
    for (kind, who, reason) in &f.holds {
        if kind == "promotion" || f.automatic {
            unmet.push(UnmetGate {
                gate: "hold",
                environment: env.to_owned(),
                message: format!("`{env}` is held by {who}: {reason}; release the hold first"),
            });
        }
    }
    if unmet.is_empty() {
        Ok(())
    } else {
        Err(Refusal::Gates(unmet))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
                ("integration".into(), Some("passed".into())),
                ("loadtest".into(), Some("passed".into())),
            ],
            holds: vec![],
            automatic: false,
        }
    }

    #[test]
    fn all_gates_met_allows_the_promotion() {
        assert_eq!(check_promotion(&facts()), Ok(()));
    }

    #[test]
    fn promote_requires_exact_commit_verified_in_every_required_environment() {
        let mut f = facts();
        f.verifications = vec![
            ("integration".into(), Some("failed".into())),
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
                code: "not_fast_forward",
                ..
            })
        ));
        f.is_reset = true;
        assert_eq!(check_promotion(&f), Ok(()));
    }

    #[test]
    fn auto_promotion_holds_stop_only_automatic_promotions() {
        let mut f = facts();
        f.holds = vec![("auto_promotion".into(), "bob".into(), "rolled back".into())];
        assert_eq!(check_promotion(&f), Ok(()));
        f.automatic = true;
        assert!(matches!(check_promotion(&f), Err(Refusal::Gates(g)) if g[0].gate == "hold"));
    }

    #[test]
    fn off_line_environments_must_be_realigned_first() {
        let mut f = facts();
        f.head_on_line = false;
        assert!(matches!(
            check_promotion(&f),
            Err(Refusal::Conflict {
                code: "off_line",
                ..
            })
        ));
    }
}
