//! The `promotion_requests` table: promotions, resets and cherry-picks and
//! where each stands, read with their approvals.

use crate::store::Pool;
use envline_api::{Decision, PromotionView, RequestKind, RequestState};
use sqlx::FromRow;

use super::approvals::{approvals_of, approver_grants};
use super::{Tx, choice, now};
use crate::roles::{Permission, Principal};

/// A row of `promotion_requests`.
#[derive(FromRow)]
struct RequestRow {
    id: i64,
    #[sqlx(try_from = "String")]
    kind: RequestKind,
    environment: String,
    source: String,
    from_commit: Option<String>,
    to_commit: String,
    requested_by: String,
    reason: String,
    #[sqlx(try_from = "i64")]
    required_approvals: u32,
    #[sqlx(try_from = "String")]
    state: RequestState,
    state_reason: Option<String>,
    result_commit: Option<String>,
    created_at: String,
    updated_at: String,
}

impl From<RequestRow> for PromotionView {
    fn from(r: RequestRow) -> Self {
        PromotionView {
            id: r.id,
            kind: r.kind,
            environment: r.environment,
            source: r.source,
            from_commit: r.from_commit,
            to_commit: r.to_commit,
            requested_by: r.requested_by,
            reason: r.reason,
            required_approvals: r.required_approvals,
            state: r.state,
            state_reason: r.state_reason,
            result_commit: r.result_commit,
            approvals: Vec::new(),
            counted_approvers: Vec::new(),
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// Requests with their approvals, newest first; `state` filters when given.
pub async fn requests(
    pool: &Pool,
    state: Option<RequestState>,
    limit: i64,
) -> Result<Vec<PromotionView>, sqlx::Error> {
    let rows: Vec<RequestRow> = sqlx::query_as(
        "SELECT * FROM promotion_requests WHERE ($1 IS NULL OR state = $1) ORDER BY id DESC LIMIT $2",
    )
    .bind(state.map(RequestState::as_str))
    .bind(limit)
    .fetch_all(pool)
    .await?;
    with_approvals(pool, rows).await
}

pub async fn request(pool: &Pool, id: i64) -> Result<Option<PromotionView>, sqlx::Error> {
    let rows: Vec<RequestRow> = sqlx::query_as("SELECT * FROM promotion_requests WHERE id = $1")
        .bind(id)
        .fetch_all(pool)
        .await?;
    Ok(with_approvals(pool, rows).await?.into_iter().next())
}

/// The open request for an environment, if any.
pub async fn open_request_for(
    pool: &Pool,
    environment: &str,
) -> Result<Option<PromotionView>, sqlx::Error> {
    let rows: Vec<RequestRow> = sqlx::query_as(
        "SELECT * FROM promotion_requests WHERE state = 'awaiting_approval' AND environment = $1 ORDER BY id DESC LIMIT 1",
    )
    .bind(environment)
    .fetch_all(pool)
    .await?;
    Ok(with_approvals(pool, rows).await?.into_iter().next())
}

/// The ids of the requests awaiting approval for an environment.
pub async fn awaiting_request_ids(
    tx: &mut Tx<'_>,
    environment: &str,
) -> Result<Vec<i64>, sqlx::Error> {
    let rows: Vec<(i64,)> = sqlx::query_as(
        "SELECT id FROM promotion_requests WHERE state = 'awaiting_approval' AND environment = $1",
    )
    .bind(environment)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// The newest closed request (rejected, failed or cancelled) for exactly this
/// move, so auto-promotion does not ask again what people already answered.
pub async fn closed_request_for_move(
    pool: &Pool,
    environment: &str,
    from_commit: &str,
    to_commit: &str,
) -> Result<Option<(i64, RequestState)>, sqlx::Error> {
    let row: Option<(i64, String)> = sqlx::query_as(
        "SELECT id, state FROM promotion_requests WHERE environment = $1 AND to_commit = $2 AND from_commit = $3
         AND state IN ('rejected', 'failed', 'cancelled') ORDER BY id DESC LIMIT 1",
    )
    .bind(environment)
    .bind(to_commit)
    .bind(from_commit)
    .fetch_optional(pool)
    .await?;
    row.map(|(id, s)| Ok((id, choice("state", s)?))).transpose()
}

/// Fills in each request's approvals. An approval counts only while its
/// approver may approve the request's environment (I4): one withdrawn when a
/// role was removed says so, and one whose approver no longer holds the role
/// for any other reason is shown withdrawn too, as the roles stand now.
async fn with_approvals(
    pool: &Pool,
    rows: Vec<RequestRow>,
) -> Result<Vec<PromotionView>, sqlx::Error> {
    let mut rows: Vec<PromotionView> = rows.into_iter().map(PromotionView::from).collect();
    for row in &mut rows {
        row.approvals = approvals_of(pool, row.id).await?;
        let approving = row
            .approvals
            .iter()
            .any(|a| a.decision == Decision::Approve && a.withdrawn.is_none());
        if approving {
            let grants = approver_grants(pool, row.id).await?;
            for a in &mut row.approvals {
                if a.decision != Decision::Approve || a.withdrawn.is_some() {
                    continue;
                }
                let who = Principal {
                    user: a.approver.clone(),
                    grants: grants.get(&a.approver).cloned().unwrap_or_default(),
                    system: false,
                };
                if !who.can(Permission::Approve, Some(&row.environment)) {
                    a.withdrawn = Some(format!(
                        "{} no longer holds a role that may approve `{}`",
                        a.approver, row.environment
                    ));
                }
            }
        }
        row.counted_approvers = crate::rules::counted_approvers(row);
    }
    Ok(rows)
}

/// A new request to promote, as stored.
pub struct NewRequest<'a> {
    pub kind: RequestKind,
    pub environment: &'a str,
    pub source: &'a str,
    pub from_commit: Option<&'a str>,
    pub to_commit: &'a str,
    pub requested_by: &'a str,
    pub reason: &'a str,
    pub required_approvals: u32,
    pub state: RequestState,
}

pub async fn insert_request(tx: &mut Tx<'_>, r: &NewRequest<'_>) -> Result<i64, sqlx::Error> {
    let now = now();
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO promotion_requests (kind, environment, source, from_commit, to_commit, requested_by, reason, required_approvals, state, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
    )
    .bind(r.kind.as_str())
    .bind(r.environment)
    .bind(r.source)
    .bind(r.from_commit)
    .bind(r.to_commit)
    .bind(r.requested_by)
    .bind(r.reason)
    .bind(i64::from(r.required_approvals))
    .bind(r.state.as_str())
    .bind(&now)
    .bind(&now)
    .fetch_one(&mut **tx)
    .await?;
    Ok(id)
}

pub async fn set_request_state(
    tx: &mut Tx<'_>,
    id: i64,
    state: RequestState,
    reason: Option<&str>,
    result_commit: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE promotion_requests SET state = $1, state_reason = $2, result_commit = COALESCE($3, result_commit), updated_at = $4 WHERE id = $5",
    )
    .bind(state.as_str())
    .bind(reason)
    .bind(result_commit)
    .bind(now())
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Starts carrying out an approved request: awaiting → executing, so no
/// decision can change it while its push is on the way. False when it was
/// no longer awaiting (rejected, or run by someone else).
pub async fn start_executing(tx: &mut Tx<'_>, id: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE promotion_requests SET state = 'executing', updated_at = $1 WHERE id = $2 AND state = 'awaiting_approval'",
    )
    .bind(now())
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Requests left `executing` with no push on the way (a crash before their
/// intent was written) are closed as failed: every one, or those into
/// `environments` (whose branches the caller holds the locks of).
pub async fn fail_orphaned_executing(
    tx: &mut Tx<'_>,
    environments: Option<&[String]>,
) -> Result<u64, sqlx::Error> {
    let executing: Vec<(i64, String)> =
        sqlx::query_as("SELECT id, environment FROM promotion_requests WHERE state = 'executing'")
            .fetch_all(&mut **tx)
            .await?;
    let mut failed = 0;
    for (id, environment) in executing {
        if environments.is_some_and(|only| !only.contains(&environment)) {
            continue;
        }
        failed += sqlx::query(
            "UPDATE promotion_requests SET state = 'failed', state_reason = 'interrupted before its push reached the remote; nothing was changed; request again', updated_at = $1
             WHERE id = $2 AND state = 'executing'",
        )
        .bind(now())
        .bind(id)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    }
    Ok(failed)
}

/// A request's state, read inside a write transaction.
pub async fn request_state(tx: &mut Tx<'_>, id: i64) -> Result<Option<RequestState>, sqlx::Error> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT state FROM promotion_requests WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?;
    row.map(|(s,)| choice("state", s)).transpose()
}

/// Closes a request as failed, if it is still open.
pub async fn fail_request_if_open(
    tx: &mut Tx<'_>,
    id: i64,
    reason: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE promotion_requests SET state = 'failed', state_reason = $1, updated_at = $2 WHERE id = $3 AND state IN ('awaiting_approval', 'executing')",
    )
    .bind(reason)
    .bind(now())
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Cancels every request still awaiting approval; returns their ids.
pub async fn cancel_open_requests(tx: &mut Tx<'_>, reason: &str) -> Result<Vec<i64>, sqlx::Error> {
    let rows: Vec<(i64,)> = sqlx::query_as(
        "UPDATE promotion_requests SET state = 'cancelled', state_reason = $1, updated_at = $2 WHERE state = 'awaiting_approval' RETURNING id",
    )
    .bind(reason)
    .bind(now())
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}
