//! The `verifications` table: test results of exactly one commit in one
//! environment (I3).

use crate::store::Pool;
use std::collections::HashMap;

use envline_api::{VerificationStatus, VerificationView};
use sqlx::FromRow;

use super::{Tx, now};

/// A row of `verifications`.
#[derive(FromRow)]
struct VerificationRow {
    id: i64,
    environment: String,
    commit_id: String,
    #[sqlx(try_from = "String")]
    status: VerificationStatus,
    url: Option<String>,
    summary: Option<String>,
    recorded_by: String,
    at: String,
}

impl From<VerificationRow> for VerificationView {
    fn from(r: VerificationRow) -> Self {
        VerificationView {
            id: r.id,
            environment: r.environment,
            commit: r.commit_id,
            status: r.status,
            url: r.url,
            summary: r.summary,
            recorded_by: r.recorded_by,
            at: r.at,
        }
    }
}

fn views(rows: Vec<VerificationRow>) -> Vec<VerificationView> {
    rows.into_iter().map(VerificationView::from).collect()
}

/// Latest verification of exactly `commit` in `environment` (the one that counts, I3).
pub async fn latest_verification(
    pool: &Pool,
    environment: &str,
    commit: &str,
) -> Result<Option<VerificationView>, sqlx::Error> {
    let row: Option<VerificationRow> = sqlx::query_as(
        "SELECT * FROM verifications WHERE environment = $1 AND commit_id = $2 ORDER BY id DESC LIMIT 1",
    )
    .bind(environment)
    .bind(commit)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(VerificationView::from))
}

/// Every verification of a commit, newest first, in any environment.
pub async fn verifications_of(
    pool: &Pool,
    commit: &str,
) -> Result<Vec<VerificationView>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM verifications WHERE commit_id = $1 ORDER BY id DESC")
        .bind(commit)
        .fetch_all(pool)
        .await
        .map(views)
}

/// The newest verifications recorded in an environment, newest first.
pub async fn verifications_in(
    pool: &Pool,
    environment: &str,
    limit: i64,
) -> Result<Vec<VerificationView>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM verifications WHERE environment = $1 ORDER BY id DESC LIMIT $2")
        .bind(environment)
        .bind(limit)
        .fetch_all(pool)
        .await
        .map(views)
}

/// Every verification ever recorded, oldest first (the evidence check).
pub async fn all_verifications(pool: &Pool) -> Result<Vec<VerificationView>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM verifications ORDER BY id")
        .fetch_all(pool)
        .await
        .map(views)
}

/// Verifications of several commits in one query, newest first per commit.
pub async fn verifications_of_commits(
    pool: &Pool,
    commits: &[String],
) -> Result<HashMap<String, Vec<VerificationView>>, sqlx::Error> {
    let ids = serde_json::to_string(commits).expect("strings serialize");
    // The ids go as one JSON array, however many there are.
    let sql = match super::backend(pool) {
        super::Backend::Sqlite => {
            "SELECT * FROM verifications WHERE commit_id IN (SELECT value FROM json_each($1)) ORDER BY id DESC"
        }
        super::Backend::Postgres => {
            "SELECT * FROM verifications WHERE commit_id IN (SELECT json_array_elements_text($1::json)) ORDER BY id DESC"
        }
    };
    let rows: Vec<VerificationRow> = sqlx::query_as(sql).bind(ids).fetch_all(pool).await?;
    let mut out: HashMap<String, Vec<VerificationView>> = HashMap::new();
    for row in views(rows) {
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
    let row: VerificationRow = sqlx::query_as(
        "INSERT INTO verifications (environment, commit_id, status, url, summary, recorded_by, at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *",
    )
    .bind(v.environment)
    .bind(v.commit)
    .bind(v.status.as_str())
    .bind(v.url)
    .bind(v.summary)
    .bind(v.recorded_by)
    .bind(now())
    .fetch_one(&mut **tx)
    .await?;
    Ok(row.into())
}

/// Every failed test recorded in an environment, oldest first: its commit
/// and when.
pub async fn failures_in(
    pool: &Pool,
    environment: &str,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT commit_id, at FROM verifications WHERE environment = $1 AND status = 'failed' ORDER BY id",
    )
    .bind(environment)
    .fetch_all(pool)
    .await
}
