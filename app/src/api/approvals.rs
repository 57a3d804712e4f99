//! The approvals page: requests waiting for a decision, with exactly what
//! would move and the evidence; approve or reject.

use envline_api::{Decision, GateCheck, PromotionPreview, PromotionView, Viewer};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// One request awaiting approval, as an approver needs to see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalItem {
    pub request: PromotionView,
    /// What would move, and the gates as they stand now.
    pub preview: PromotionPreview,
    /// I4: the approvals counted so far.
    pub approvals: GateCheck,
    /// The viewer asked for it (and cannot approve it).
    pub mine: bool,
    /// The viewer may approve or reject it.
    pub can_decide: bool,
    /// The viewer already approved it.
    pub approved_by_me: bool,
}

/// The requests awaiting approval, who is looking, the server's clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalsPage {
    pub items: Vec<ApprovalItem>,
    /// Recently decided requests, newest first.
    pub decided: Vec<PromotionView>,
    pub viewer: Viewer,
    pub now: i64,
}

/// Requests waiting for approval, each with its preview.
#[server(prefix = "/fn", endpoint = "approvals")]
pub async fn get_approvals() -> Result<ApprovalsPage, AppError> {
    use envline_api::RequestState;
    use envline_engine::{caller::Access, ops, rules};
    let (engine, who) = super::server::caller(Access::Read).await?;
    let viewer = engine.viewer(&who);
    let mut items = Vec::new();
    use super::server::read;
    for request in read(engine.requests(Some(RequestState::AwaitingApproval), 200)).await? {
        let preview = read(ops::preview_request(&engine, &who, &request)).await?;
        let mine = request.requested_by == who.user;
        let approved_by_me = request
            .approvals
            .iter()
            .any(|a| a.approver == who.user && a.decision == Decision::Approve);
        items.push(ApprovalItem {
            approvals: rules::approvals_gate(&request),
            can_decide: viewer.on(&request.environment).approve && !mine,
            mine,
            approved_by_me,
            preview,
            request,
        });
    }
    let decided = read(engine.requests(None, 30))
        .await?
        .into_iter()
        .filter(|r| r.required_approvals > 0 && r.state != RequestState::AwaitingApproval)
        .take(10)
        .collect();
    Ok(ApprovalsPage {
        items,
        decided,
        viewer,
        now: chrono::Utc::now().timestamp(),
    })
}

/// Approves or rejects request `id`; the last needed approval runs it.
#[server(prefix = "/fn", endpoint = "decide")]
pub async fn decide(
    id: i64,
    decision: Decision,
    comment: Option<String>,
) -> Result<PromotionView, AppError> {
    use envline_api::DecisionInput;
    use envline_engine::{caller::Access, ops};
    let (engine, who) = super::server::caller(Access::Change).await?;
    let input = DecisionInput { decision, comment };
    super::server::run(async move { ops::decide(&engine, &who, id, input).await }).await
}
