//! What the client commands print for people: tables with short ids and
//! subjects, and refusals with their reasons.

use comfy_table::{ContentArrangement, Table, presets};
use envline_api::{
    AuditEventView, EnvironmentView, ErrorReply, GateCheck, Insights, PromotionView, RequestState,
    span_text,
};

/// A commit id as people read it (as long as the dashboard's).
pub fn short(id: &str) -> &str {
    id.get(..10).unwrap_or(id)
}

/// A borderless table in the style of `kubectl get` and `gh`.
pub fn table<const N: usize>(
    head: [&str; N],
    rows: impl IntoIterator<Item = [String; N]>,
) -> String {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(head);
    for row in rows {
        t.add_row(row);
    }
    // The preset pads every cell by one space; the first column needs none.
    t.to_string()
        .lines()
        .map(|l| l.strip_prefix(' ').unwrap_or(l).trim_end())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The pipeline as `envline status` shows it.
pub fn status(root: &str, environments: &[EnvironmentView]) -> String {
    let rows = environments.iter().map(|e| {
        let head = e
            .head
            .as_ref()
            .map(|h| h.short.clone())
            .unwrap_or_else(|| "(no branch)".into());
        let subject = e
            .head
            .as_ref()
            .map(|h| h.subject.clone())
            .unwrap_or_default();
        let behind = match (e.is_root, e.behind_from) {
            (true, _) => "-".to_string(),
            (false, Some(0)) => "up to date".to_string(),
            (false, Some(n)) => format!("{n} behind {}", e.from.as_deref().unwrap_or(root)),
            (false, None) => "?".to_string(),
        };
        let tests = e
            .verification
            .as_ref()
            .map(|v| v.status.to_string())
            .unwrap_or_else(|| "-".into());
        let mut notes = Vec::new();
        if !e.on_line {
            notes.push(format!("off the line of {root}: realign it"));
        }
        for h in &e.holds {
            notes.push(format!("hold #{} ({}): {}", h.id, h.kind, h.reason));
        }
        if let Some(r) = &e.open_request {
            notes.push(request_note(r));
        }
        if let Some(f) = &e.auto_promotion_failure {
            notes.push(format!("auto-promotion failing: {}", f.message));
        }
        [
            e.name.clone(),
            head,
            subject,
            behind,
            tests,
            notes.join("; "),
        ]
    });
    table(
        ["ENVIRONMENT", "COMMIT", "SUBJECT", "FROM", "TESTS", "NOTES"],
        rows,
    )
}

/// `request #12 awaiting approval (1 of 2: alice)`.
pub fn request_note(r: &PromotionView) -> String {
    let mut text = format!(
        "request #{} {}",
        r.id,
        r.state.to_string().replace('_', " ")
    );
    if r.state == RequestState::AwaitingApproval {
        text.push_str(&format!(
            " ({} of {}{})",
            r.counted_approvers.len(),
            r.required_approvals,
            if r.counted_approvers.is_empty() {
                String::new()
            } else {
                format!(": {}", r.counted_approvers.join(", "))
            }
        ));
    }
    text
}

/// One line for a request after it was made or decided.
pub fn request_line(r: &PromotionView) -> String {
    let from = r.from_commit.as_deref().map(short).unwrap_or("(none)");
    let to = r.result_commit.as_deref().unwrap_or(&r.to_commit);
    match r.state {
        RequestState::Done => format!("{}: {from} → {} ({})", r.environment, short(to), r.kind),
        RequestState::AwaitingApproval => format!(
            "{}: {from} → {} awaits approval: {}; approvers run `envline approve {}`",
            r.environment,
            short(&r.to_commit),
            request_note(r),
            r.id
        ),
        RequestState::Rejected => format!(
            "{}: request #{} was rejected{}",
            r.environment,
            r.id,
            r.approvals
                .iter()
                .rev()
                .find(|a| a.decision == envline_api::Decision::Reject)
                .map(|a| format!(" by {}: {}", a.approver, a.comment))
                .unwrap_or_default()
        ),
        _ => format!(
            "{}: request #{} is {}{}",
            r.environment,
            r.id,
            r.state.to_string().replace('_', " "),
            r.state_reason
                .as_deref()
                .map(|s| format!(": {s}"))
                .unwrap_or_default()
        ),
    }
}

/// An API refusal for people: the message, then each gate or what to do.
pub fn refusal(e: &ErrorReply) -> String {
    let mut text = match e.status {
        401 => format!("not signed in: {}", e.message),
        403 => format!("not allowed: {}", e.message),
        409 | 422 => format!("refused ({}): {}", e.code, e.message),
        _ => format!("{} ({}): {}", e.code, e.status, e.message),
    };
    let gates: Vec<GateCheck> = e.unmet_gates();
    if !gates.is_empty() {
        text = "refused: the gates are not met".to_string();
        for g in &gates {
            text.push_str(&format!(
                "\n  {} {:<9} {}",
                if g.met { "✓" } else { "✗" },
                g.gate,
                g.message
            ));
        }
    }
    if e.status == 401 {
        text.push_str("\n  give a token with --token or ENVLINE_TOKEN, or run `envline login`");
    }
    if let Some(commands) = e.details["commands"].as_array() {
        text.push_str("\n  to finish by hand:");
        for c in commands.iter().filter_map(|c| c.as_str()) {
            text.push_str(&format!("\n    {c}"));
        }
    }
    text
}

/// Audit events as `envline audit` lists them.
pub fn audit(events: &[AuditEventView]) -> String {
    let rows = events.iter().map(|e| {
        let change = match (e.old.as_deref(), e.new.as_deref()) {
            (Some(o), Some(n)) => format!("{} → {}", short(o), short(n)),
            (None, Some(n)) => format!("→ {}", short(n)),
            (Some(o), None) => format!("{} →", short(o)),
            (None, None) => String::new(),
        };
        [
            e.id.to_string(),
            e.at.clone(),
            e.actor.clone(),
            e.action.to_string(),
            e.environment.clone().unwrap_or_default(),
            change,
            e.reason.clone(),
        ]
    });
    table(
        [
            "ID",
            "AT",
            "ACTOR",
            "ACTION",
            "ENVIRONMENT",
            "CHANGE",
            "REASON",
        ],
        rows,
    )
}

/// `envline insights`: the four figures of each environment, one row each.
pub fn insights(all: &[Insights]) -> String {
    let Some(first) = all.first() else {
        return "no environments".into();
    };
    let or_dash = |v: Option<i64>| v.map(span_text).unwrap_or_else(|| "–".into());
    let rows = all.iter().map(|i| {
        [
            i.environment.clone(),
            i.deployments.to_string(),
            format!("{:.2}", i.deployments_per_week),
            i.change_failure_rate
                .map(|r| {
                    format!(
                        "{:.0}% ({} of {})",
                        r * 100.0,
                        i.failed_deployments,
                        i.deployments
                    )
                })
                .unwrap_or_else(|| "–".into()),
            format!(
                "{} / {}",
                or_dash(i.lead_time_seconds.median),
                or_dash(i.lead_time_seconds.p90)
            ),
            or_dash(i.time_to_restore_seconds.median),
        ]
    });
    format!(
        "from {} to {}\n{}",
        first.since,
        first.until,
        table(
            [
                "ENVIRONMENT",
                "DEPLOYMENTS",
                "PER WEEK",
                "CHANGE FAILURE RATE",
                "LEAD TIME (MEDIAN / P90)",
                "TIME TO RESTORE (MEDIAN)",
            ],
            rows,
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_line_up_without_borders() {
        let t = table(
            ["NAME", "HEAD"],
            [
                ["qa".to_string(), "abc1234".to_string()],
                ["prod-eu".to_string(), "-".to_string()],
            ],
        );
        let lines: Vec<_> = t.lines().collect();
        assert_eq!(lines.len(), 3, "{t}");
        assert!(lines[0].starts_with("NAME"), "{t}");
        assert_eq!(lines[1].find("abc1234"), lines[0].find("HEAD"), "{t}");
    }

    #[test]
    fn a_gate_refusal_lists_each_gate() {
        let mut e = ErrorReply::new(422, envline_api::ErrorCode::GatesNotMet, "gates not met");
        e.details = serde_json::json!([{
            "gate": "verified", "environment": "integration", "met": false,
            "message": "abc1234 has no passing test in qa"
        }]);
        let text = refusal(&e);
        assert!(text.contains("✗ verified"), "{text}");
        assert!(text.contains("no passing test in qa"), "{text}");
    }
}
