//! The `approvals` table: approvers' decisions on requests (I4).

use crate::store::Pool;
use std::collections::HashMap;

use envline_api::{ApprovalView, Decision};
use sqlx::FromRow;

use super::{Tx, now};
use crate::roles::Grant;

/// A row of `approvals`, as the request pages read it.
#[derive(FromRow)]
struct ApprovalRow {
    approver: String,
    #[sqlx(try_from = "String")]
    decision: Decision,
    comment: String,
    at: String,
    withdrawn_reason: Option<String>,
}

impl From<ApprovalRow> for ApprovalView {
    fn from(r: ApprovalRow) -> Self {
        ApprovalView {
            approver: r.approver,
            decision: r.decision,
            comment: r.comment,
            at: r.at,
            withdrawn: r.withdrawn_reason,
        }
    }
}

/// The decisions on one request, oldest first.
pub(super) async fn approvals_of(
    pool: &Pool,
    request_id: i64,
) -> Result<Vec<ApprovalView>, sqlx::Error> {
    let rows: Vec<ApprovalRow> = sqlx::query_as(
        "SELECT approver, decision, comment, at, withdrawn_reason FROM approvals WHERE request_id = $1 ORDER BY at",
    )
    .bind(request_id)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(ApprovalView::from).collect())
}

/// An approval as the evidence check reads it: which request it decides.
#[derive(Debug, Clone, FromRow)]
pub struct ApprovalEvidence {
    pub request_id: i64,
    pub approver: String,
    #[sqlx(try_from = "String")]
    pub decision: Decision,
    pub comment: String,
    pub withdrawn: Option<String>,
}

/// Every approval ever given (the evidence check).
pub async fn all_approvals(pool: &Pool) -> Result<Vec<ApprovalEvidence>, sqlx::Error> {
    sqlx::query_as(
        "SELECT request_id, approver, decision, comment, withdrawn_reason AS withdrawn FROM approvals",
    )
    .fetch_all(pool)
    .await
}

/// The roles, as they stand now, of everyone who decided on a request.
pub(super) async fn approver_grants(
    pool: &Pool,
    request_id: i64,
) -> Result<HashMap<String, Vec<Grant>>, sqlx::Error> {
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT u.name, r.role, r.scope FROM users u JOIN user_roles r ON r.user_id = u.id
         WHERE u.name IN (SELECT approver FROM approvals WHERE request_id = $1)",
    )
    .bind(request_id)
    .fetch_all(pool)
    .await?;
    let mut out: HashMap<String, Vec<Grant>> = HashMap::new();
    for (name, role, scope) in rows {
        if let Some(grant) = role.parse().ok().and_then(|r| Grant::new(r, &scope).ok()) {
            out.entry(name).or_default().push(grant);
        }
    }
    Ok(out)
}

/// An approval withdrawn because its approver lost the role.
pub struct WithdrawnApproval {
    pub request_id: i64,
    pub environment: String,
}

/// I4: withdraws `approver`'s approvals of requests still waiting whose
/// environment `still_may` no longer covers; returns them.
pub async fn withdraw_approvals(
    tx: &mut Tx<'_>,
    approver: &str,
    still_may: impl Fn(&str) -> bool,
    reason: &str,
) -> Result<Vec<WithdrawnApproval>, sqlx::Error> {
    let pending: Vec<(i64, String)> = sqlx::query_as(
        "SELECT a.request_id, r.environment FROM approvals a JOIN promotion_requests r ON r.id = a.request_id
         WHERE a.approver = $1 AND a.decision = 'approve' AND a.withdrawn_at IS NULL AND r.state = 'awaiting_approval'",
    )
    .bind(approver)
    .fetch_all(&mut **tx)
    .await?;
    let mut out = Vec::new();
    for (request_id, environment) in pending {
        if still_may(&environment) {
            continue;
        }
        sqlx::query(
            "UPDATE approvals SET withdrawn_at = $1, withdrawn_reason = $2 WHERE request_id = $3 AND approver = $4",
        )
        .bind(now())
        .bind(reason)
        .bind(request_id)
        .bind(approver)
        .execute(&mut **tx)
        .await?;
        out.push(WithdrawnApproval {
            request_id,
            environment,
        });
    }
    Ok(out)
}

/// Records (or replaces) one approver's decision.
pub async fn upsert_approval(
    tx: &mut Tx<'_>,
    request_id: i64,
    approver: &str,
    decision: Decision,
    comment: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO approvals (request_id, approver, decision, comment, at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (request_id, approver) DO UPDATE SET decision = excluded.decision, comment = excluded.comment, at = excluded.at,
           withdrawn_at = NULL, withdrawn_reason = NULL",
    )
    .bind(request_id)
    .bind(approver)
    .bind(decision.as_str())
    .bind(comment)
    .bind(now())
    .execute(&mut **tx)
    .await?;
    Ok(())
}
