//! Everything Envline keeps in SQLite but the audit log (which [`super::audit`]
//! owns) and people (which [`super::auth`] owns): the gates' evidence
//! (verifications, approvals, holds), promotion requests, observed tips and
//! the intent journal. Rows decode straight into the shared view types.
//! Queries are checked at run time so the build needs no live database.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{FromRow, Sqlite, SqlitePool, Transaction};

use super::roles::{Grant, Permission, Principal};
use envline_api::{
    Decision, HoldKind, HoldView, PromotionView, RequestKind, RequestState, VerificationStatus,
    VerificationView,
};

/// The database handle every query takes.
pub type Pool = SqlitePool;

/// A write transaction.
pub type Tx<'a> = Transaction<'a, Sqlite>;

/// The current time as stored (RFC 3339, UTC, milliseconds).
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Opens (creating if needed) the database in WAL mode and runs the migrations.
pub async fn open(file: &Path) -> Result<SqlitePool, sqlx::Error> {
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).map_err(sqlx::Error::Io)?;
    }
    let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", file.display()))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // An intent and an outcome, once committed, survive a power cut.
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10));
    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        .connect_with(options)
        .await?;
    sqlx::migrate!("../../migrations").run(&pool).await?;
    Ok(pool)
}

/// The sizes and modification times of the database file and its
/// write-ahead log: any committed write, by Envline or by anyone with the
/// file, changes them. What answers computed from the whole database are
/// kept against.
pub type WrittenStamp = Vec<(u64, Option<std::time::SystemTime>)>;

/// The [`WrittenStamp`] of the database at `file` now.
pub fn written_stamp(file: &Path) -> WrittenStamp {
    let wal = file.with_extension("sqlite-wal");
    [file, wal.as_path()]
        .iter()
        .map(|f| {
            std::fs::metadata(f)
                .map(|m| (m.len(), m.modified().ok()))
                .unwrap_or_default()
        })
        .collect()
}

/// Starts a write transaction that takes the write lock at once (`BEGIN
/// IMMEDIATE`), so what it reads first (the audit chain's head, a request's
/// state) cannot change before it writes.
pub async fn begin(pool: &SqlitePool) -> Result<Tx<'static>, sqlx::Error> {
    pool.begin_with("BEGIN IMMEDIATE").await
}

/// Latest verification of exactly `commit` in `environment` (the one that counts, I3).
pub async fn latest_verification(
    pool: &SqlitePool,
    environment: &str,
    commit: &str,
) -> Result<Option<VerificationView>, sqlx::Error> {
    sqlx::query_as(
        "SELECT * FROM verifications WHERE environment = ? AND commit_id = ? ORDER BY id DESC LIMIT 1",
    )
    .bind(environment)
    .bind(commit)
    .fetch_optional(pool)
    .await
}

/// Every verification of a commit, newest first, in any environment.
pub async fn verifications_of(
    pool: &SqlitePool,
    commit: &str,
) -> Result<Vec<VerificationView>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM verifications WHERE commit_id = ? ORDER BY id DESC")
        .bind(commit)
        .fetch_all(pool)
        .await
}

/// The newest verifications recorded in an environment, newest first.
pub async fn verifications_in(
    pool: &SqlitePool,
    environment: &str,
    limit: i64,
) -> Result<Vec<VerificationView>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM verifications WHERE environment = ? ORDER BY id DESC LIMIT ?")
        .bind(environment)
        .bind(limit)
        .fetch_all(pool)
        .await
}

/// Verifications of several commits in one query, newest first per commit.
pub async fn verifications_of_commits(
    pool: &SqlitePool,
    commits: &[String],
) -> Result<HashMap<String, Vec<VerificationView>>, sqlx::Error> {
    let ids = serde_json::to_string(commits).expect("strings serialize");
    let rows: Vec<VerificationView> = sqlx::query_as(
        "SELECT * FROM verifications WHERE commit_id IN (SELECT value FROM json_each(?)) ORDER BY id DESC",
    )
    .bind(ids)
    .fetch_all(pool)
    .await?;
    let mut out: HashMap<String, Vec<VerificationView>> = HashMap::new();
    for row in rows {
        out.entry(row.commit.clone()).or_default().push(row);
    }
    Ok(out)
}

/// A verification to record.
pub struct NewVerification<'a> {
    pub environment: &'a str,
    pub commit: &'a str,
    pub status: VerificationStatus,
    pub url: Option<&'a str>,
    pub summary: Option<&'a str>,
    pub recorded_by: &'a str,
}

/// Records a verification; the newest one for (environment, commit) is the one that counts (I3).
pub async fn record_verification(
    tx: &mut Tx<'_>,
    v: &NewVerification<'_>,
) -> Result<VerificationView, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO verifications (environment, commit_id, status, url, summary, recorded_by, at)
         VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING *",
    )
    .bind(v.environment)
    .bind(v.commit)
    .bind(v.status)
    .bind(v.url)
    .bind(v.summary)
    .bind(v.recorded_by)
    .bind(now())
    .fetch_one(&mut **tx)
    .await
}

const HOLD_COLUMNS: &str =
    "id, environment, kind, reason, created_by, created_at, starts_at, ends_at, placed_by";

/// Holds in force now (not released, inside their window).
pub async fn active_holds(pool: &SqlitePool) -> Result<Vec<HoldView>, sqlx::Error> {
    let now = now();
    sqlx::query_as(&format!(
        "SELECT {HOLD_COLUMNS} FROM holds
         WHERE released_at IS NULL AND (starts_at IS NULL OR starts_at <= ?) AND (ends_at IS NULL OR ends_at > ?)
         ORDER BY id"
    ))
    .bind(&now)
    .bind(&now)
    .fetch_all(pool)
    .await
}

/// Holds not yet released, including freezes that start later.
pub async fn unreleased_holds(pool: &SqlitePool) -> Result<Vec<HoldView>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {HOLD_COLUMNS} FROM holds
         WHERE released_at IS NULL AND (ends_at IS NULL OR ends_at > ?) ORDER BY id"
    ))
    .bind(now())
    .fetch_all(pool)
    .await
}

/// A hold or freeze to place.
pub struct NewHold<'a> {
    pub environment: &'a str,
    pub kind: HoldKind,
    /// What placed it, which decides who may release it: `hold` (a person's
    /// hold or freeze) or `reset` (a rollback or reset's auto-promotion hold).
    pub placed_by: &'a str,
    pub reason: &'a str,
    pub created_by: &'a str,
    pub starts_at: Option<&'a str>,
    pub ends_at: Option<&'a str>,
}

/// Whether an environment already has an unreleased auto-promotion hold
/// placed by a rollback or reset (a second one would say the same).
pub async fn has_reset_hold(tx: &mut Tx<'_>, environment: &str) -> Result<bool, sqlx::Error> {
    let found: Option<(i64,)> = sqlx::query_as(
        "SELECT id FROM holds WHERE environment = ? AND placed_by = 'reset' AND released_at IS NULL LIMIT 1",
    )
    .bind(environment)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(found.is_some())
}

pub async fn insert_hold(tx: &mut Tx<'_>, h: &NewHold<'_>) -> Result<HoldView, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO holds (environment, kind, reason, created_by, created_at, starts_at, ends_at, placed_by)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING {HOLD_COLUMNS}"
    ))
    .bind(h.environment)
    .bind(h.kind)
    .bind(h.reason)
    .bind(h.created_by)
    .bind(now())
    .bind(h.starts_at)
    .bind(h.ends_at)
    .bind(h.placed_by)
    .fetch_one(&mut **tx)
    .await
}

/// A hold whether or not it was released, with when it was released.
#[derive(Debug, Clone, FromRow)]
pub struct HoldRecord {
    #[sqlx(flatten)]
    pub hold: HoldView,
    pub released_at: Option<String>,
}

pub async fn find_hold(pool: &SqlitePool, id: i64) -> Result<Option<HoldRecord>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {HOLD_COLUMNS}, released_at FROM holds WHERE id = ?"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// Releases a hold; false when it was already released (by someone else meanwhile).
pub async fn release_hold(
    tx: &mut Tx<'_>,
    id: i64,
    released_by: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE holds SET released_by = ?, released_at = ? WHERE id = ? AND released_at IS NULL",
    )
    .bind(released_by)
    .bind(now())
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Requests with their approvals, newest first; `state` filters when given.
pub async fn requests(
    pool: &SqlitePool,
    state: Option<RequestState>,
    limit: i64,
) -> Result<Vec<PromotionView>, sqlx::Error> {
    let rows: Vec<PromotionView> = sqlx::query_as(
        "SELECT * FROM promotion_requests WHERE (?1 IS NULL OR state = ?1) ORDER BY id DESC LIMIT ?2",
    )
    .bind(state)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    with_approvals(pool, rows).await
}

pub async fn request(pool: &SqlitePool, id: i64) -> Result<Option<PromotionView>, sqlx::Error> {
    let rows: Vec<PromotionView> = sqlx::query_as("SELECT * FROM promotion_requests WHERE id = ?")
        .bind(id)
        .fetch_all(pool)
        .await?;
    Ok(with_approvals(pool, rows).await?.into_iter().next())
}

/// The open request for an environment, if any.
pub async fn open_request_for(
    pool: &SqlitePool,
    environment: &str,
) -> Result<Option<PromotionView>, sqlx::Error> {
    let rows: Vec<PromotionView> = sqlx::query_as(
        "SELECT * FROM promotion_requests WHERE state = 'awaiting_approval' AND environment = ? ORDER BY id DESC LIMIT 1",
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
        "SELECT id FROM promotion_requests WHERE state = 'awaiting_approval' AND environment = ?",
    )
    .bind(environment)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// The newest closed request (rejected, failed or cancelled) for exactly this
/// move, so auto-promotion does not ask again what people already answered.
pub async fn closed_request_for_move(
    pool: &SqlitePool,
    environment: &str,
    from_commit: &str,
    to_commit: &str,
) -> Result<Option<(i64, RequestState)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, state FROM promotion_requests WHERE environment = ? AND to_commit = ? AND from_commit = ?
         AND state IN ('rejected', 'failed', 'cancelled') ORDER BY id DESC LIMIT 1",
    )
    .bind(environment)
    .bind(to_commit)
    .bind(from_commit)
    .fetch_optional(pool)
    .await
}

/// Fills in each request's approvals. An approval counts only while its
/// approver may approve the request's environment (I4): one withdrawn when a
/// role was removed says so, and one whose approver no longer holds the role
/// for any other reason is shown withdrawn too, as the roles stand now.
async fn with_approvals(
    pool: &SqlitePool,
    mut rows: Vec<PromotionView>,
) -> Result<Vec<PromotionView>, sqlx::Error> {
    for row in &mut rows {
        row.approvals = sqlx::query_as(
            "SELECT approver, decision, comment, at, withdrawn_reason AS withdrawn FROM approvals WHERE request_id = ? ORDER BY at",
        )
        .bind(row.id)
        .fetch_all(pool)
        .await?;
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
        row.counted_approvers = super::rules::counted_approvers(row);
    }
    Ok(rows)
}

/// The roles, as they stand now, of everyone who decided on a request.
async fn approver_grants(
    pool: &SqlitePool,
    request_id: i64,
) -> Result<HashMap<String, Vec<Grant>>, sqlx::Error> {
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT u.name, r.role, r.scope FROM users u JOIN user_roles r ON r.user_id = u.id
         WHERE u.name IN (SELECT approver FROM approvals WHERE request_id = ?)",
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
         WHERE a.approver = ? AND a.decision = 'approve' AND a.withdrawn_at IS NULL AND r.state = 'awaiting_approval'",
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
            "UPDATE approvals SET withdrawn_at = ?, withdrawn_reason = ? WHERE request_id = ? AND approver = ?",
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
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(r.kind)
    .bind(r.environment)
    .bind(r.source)
    .bind(r.from_commit)
    .bind(r.to_commit)
    .bind(r.requested_by)
    .bind(r.reason)
    .bind(r.required_approvals)
    .bind(r.state)
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
        "UPDATE promotion_requests SET state = ?, state_reason = ?, result_commit = COALESCE(?, result_commit), updated_at = ? WHERE id = ?",
    )
    .bind(state)
    .bind(reason)
    .bind(result_commit)
    .bind(now())
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(())
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
        "INSERT INTO approvals (request_id, approver, decision, comment, at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (request_id, approver) DO UPDATE SET decision = excluded.decision, comment = excluded.comment, at = excluded.at,
           withdrawn_at = NULL, withdrawn_reason = NULL",
    )
    .bind(request_id)
    .bind(approver)
    .bind(decision)
    .bind(comment)
    .bind(now())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The last tip Envline saw or set for each branch.
pub async fn observed_tips(pool: &SqlitePool) -> Result<Vec<(String, String)>, sqlx::Error> {
    sqlx::query_as("SELECT branch, commit_id FROM observed_tips")
        .fetch_all(pool)
        .await
}

pub async fn set_observed_tip(
    tx: &mut Tx<'_>,
    branch: &str,
    commit: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO observed_tips (branch, commit_id, observed_at) VALUES (?, ?, ?)
         ON CONFLICT (branch) DO UPDATE SET commit_id = excluded.commit_id, observed_at = excluded.observed_at",
    )
    .bind(branch)
    .bind(commit)
    .bind(now())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// What `observed_tips` holds for a branch that was seen and then deleted:
/// re-creating it later is a move too (I5).
pub const DELETED: &str = "";

/// Notes that a branch was deleted (kept, so that re-creating it is noticed).
pub async fn forget_observed_tip(tx: &mut Tx<'_>, branch: &str) -> Result<(), sqlx::Error> {
    set_observed_tip(tx, branch, DELETED).await
}

/// A row of the intent journal: an operation's plan, written before any ref moves.
#[derive(Debug, Clone, FromRow)]
pub struct IntentRow {
    pub id: i64,
    pub actor: String,
    pub action: String,
    pub payload: String,
    pub state: String,
    /// What went wrong with its push, while it is unsettled or after it failed.
    pub error: Option<String>,
}

pub async fn insert_intent(
    pool: &SqlitePool,
    actor: &str,
    action: &str,
    payload: &str,
) -> Result<i64, sqlx::Error> {
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO intents (actor, action, payload, state, created_at) VALUES (?, ?, ?, 'pending', ?) RETURNING id",
    )
    .bind(actor)
    .bind(action)
    .bind(payload)
    .bind(now())
    .fetch_one(pool)
    .await?;
    Ok(id)
}

/// Settles a pending intent as `done` or `failed`. Returns false (and
/// writes nothing) when it was no longer pending: someone settled it first.
pub async fn finish_intent(
    executor: impl sqlx::Executor<'_, Database = Sqlite>,
    id: i64,
    state: &str,
    error: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE intents SET state = ?, error = ?, finished_at = ? WHERE id = ? AND state = 'pending'",
    )
    .bind(state)
    .bind(error)
    .bind(now())
    .bind(id)
    .execute(executor)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn pending_intents(pool: &SqlitePool) -> Result<Vec<IntentRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, actor, action, payload, state, error FROM intents WHERE state = 'pending' ORDER BY id",
    )
    .fetch_all(pool)
    .await
}

/// Failed intents whose push may still land, made at or after `since`,
/// oldest first (a late landing is credited to the first that matches).
pub async fn late_landing_candidates(
    pool: &SqlitePool,
    since: &str,
) -> Result<Vec<IntentRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, actor, action, payload, state, error FROM intents
         WHERE state = 'failed' AND unknown_outcome = 1 AND created_at >= ? ORDER BY id",
    )
    .bind(since)
    .fetch_all(pool)
    .await
}

/// The tip Envline last saw or set for a branch, read inside a write transaction.
pub async fn observed_tip(tx: &mut Tx<'_>, branch: &str) -> Result<Option<String>, sqlx::Error> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT commit_id FROM observed_tips WHERE branch = ?")
            .bind(branch)
            .fetch_optional(&mut **tx)
            .await?;
    Ok(row.map(|(c,)| c))
}

/// Notes that a pending intent's push may or may not have landed (it stays
/// pending, and if it is failed later, a late landing is still credited).
pub async fn note_unknown_outcome(
    pool: &SqlitePool,
    id: i64,
    error: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE intents SET error = ?, unknown_outcome = 1 WHERE id = ? AND state = 'pending'",
    )
    .bind(error)
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

/// Fails a pending intent whose push may still land later (it was pending
/// after a crash or an unknown outcome). Returns false when it was not pending.
pub async fn fail_unsettled_intent(
    executor: impl sqlx::Executor<'_, Database = Sqlite>,
    id: i64,
    why: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE intents SET state = 'failed', error = ?, unknown_outcome = 1, finished_at = ? WHERE id = ? AND state = 'pending'",
    )
    .bind(why)
    .bind(now())
    .bind(id)
    .execute(executor)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Marks a failed intent done after all: its push landed late. Returns false
/// when it was not failed (already settled otherwise).
pub async fn revive_intent(
    executor: impl sqlx::Executor<'_, Database = Sqlite>,
    id: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE intents SET state = 'done', error = 'landed after it was marked failed', finished_at = ? WHERE id = ? AND state = 'failed'",
    )
    .bind(now())
    .bind(id)
    .execute(executor)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Starts carrying out an approved request: awaiting → executing, so no
/// decision can change it while its push is on the way. False when it was
/// no longer awaiting (rejected, or run by someone else).
pub async fn start_executing(tx: &mut Tx<'_>, id: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE promotion_requests SET state = 'executing', updated_at = ? WHERE id = ? AND state = 'awaiting_approval'",
    )
    .bind(now())
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Requests left `executing` with no push on the way (a crash before their
/// intent was written) are closed as failed.
pub async fn fail_orphaned_executing(tx: &mut Tx<'_>) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE promotion_requests SET state = 'failed', state_reason = 'interrupted before its push reached the remote; nothing was changed; request again', updated_at = ?
         WHERE state = 'executing'",
    )
    .bind(now())
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected())
}

/// A request's state, read inside a write transaction.
pub async fn request_state(tx: &mut Tx<'_>, id: i64) -> Result<Option<RequestState>, sqlx::Error> {
    let row: Option<(RequestState,)> =
        sqlx::query_as("SELECT state FROM promotion_requests WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?;
    Ok(row.map(|(s,)| s))
}

/// Closes a request as failed, if it is still open.
pub async fn fail_request_if_open(
    tx: &mut Tx<'_>,
    id: i64,
    reason: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE promotion_requests SET state = 'failed', state_reason = ?, updated_at = ? WHERE id = ? AND state IN ('awaiting_approval', 'executing')",
    )
    .bind(reason)
    .bind(now())
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The incident whose hotfix mode is on (active or resolved), if any.
pub async fn running_incident(
    pool: &SqlitePool,
) -> Result<Option<envline_api::IncidentView>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM incidents WHERE state IN ('active', 'resolved') LIMIT 1")
        .fetch_optional(pool)
        .await
}

/// Every incident, newest first.
pub async fn incidents(pool: &SqlitePool) -> Result<Vec<envline_api::IncidentView>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM incidents ORDER BY id DESC")
        .fetch_all(pool)
        .await
}

/// An incident by its id (`INC-42`).
pub async fn incident(
    pool: &SqlitePool,
    incident: &str,
) -> Result<Option<envline_api::IncidentView>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM incidents WHERE incident = ?")
        .bind(incident)
        .fetch_optional(pool)
        .await
}

/// An incident to record when hotfix mode starts.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct NewIncident {
    pub incident: String,
    pub branch: String,
    pub production: String,
    pub fork: String,
    pub reason: String,
    pub started_by: String,
    pub kept: Vec<String>,
}

/// Records a started incident (active).
pub async fn insert_incident(tx: &mut Tx<'_>, i: &NewIncident) -> Result<i64, sqlx::Error> {
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO incidents (incident, branch, production, fork, reason, state, started_by, started_at, kept)
         VALUES (?, ?, ?, ?, ?, 'active', ?, ?, ?) RETURNING id",
    )
    .bind(&i.incident)
    .bind(&i.branch)
    .bind(&i.production)
    .bind(&i.fork)
    .bind(&i.reason)
    .bind(&i.started_by)
    .bind(now())
    .bind(sqlx::types::Json(&i.kept))
    .fetch_one(&mut **tx)
    .await?;
    Ok(id)
}

/// Marks an active incident resolved; false when it was not active.
pub async fn resolve_incident(
    tx: &mut Tx<'_>,
    incident: &str,
    by: &str,
    fix: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE incidents SET state = 'resolved', resolved_by = ?, resolved_at = ?, fix = ? WHERE incident = ? AND state = 'active'",
    )
    .bind(by)
    .bind(now())
    .bind(fix)
    .bind(incident)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Marks a resolved incident merged back, with the mapping of main's
/// commits; false when it was not resolved.
pub async fn merge_incident(
    tx: &mut Tx<'_>,
    incident: &str,
    by: &str,
    mapping: &[envline_api::CommitMapping],
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE incidents SET state = 'merged', merged_by = ?, merged_at = ?, mapping = ? WHERE incident = ? AND state = 'resolved'",
    )
    .bind(by)
    .bind(now())
    .bind(sqlx::types::Json(mapping))
    .bind(incident)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Cancels every request still awaiting approval; returns their ids.
pub async fn cancel_open_requests(tx: &mut Tx<'_>, reason: &str) -> Result<Vec<i64>, sqlx::Error> {
    let rows: Vec<(i64,)> = sqlx::query_as(
        "UPDATE promotion_requests SET state = 'cancelled', state_reason = ?, updated_at = ? WHERE state = 'awaiting_approval' RETURNING id",
    )
    .bind(reason)
    .bind(now())
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// The audit events of an incident, oldest first.
pub async fn incident_events(
    pool: &SqlitePool,
    incident: &str,
) -> Result<Vec<envline_api::AuditEventView>, sqlx::Error> {
    sqlx::query_as(
        "SELECT * FROM audit_events WHERE json_extract(details, '$.incident') = ? ORDER BY id",
    )
    .bind(incident)
    .fetch_all(pool)
    .await
}
