//! Everything Envline keeps in its database, one module per table: the
//! gates' evidence (verifications, approvals, holds), promotion requests,
//! observed tips, the intent journal, incidents, the audit log, the outbox
//! of notifications, people with their roles and tokens, sessions, and the
//! audit anchors pushed. Each module decodes its
//! rows into a row type of its own and hands the engine the shared wire
//! types, so the wire types know nothing of SQL and a second database is
//! one more implementation of these modules. Queries are checked at run
//! time so the build needs no live database.

pub mod anchors;
mod approvals;
mod audit;
mod holds;
mod incidents;
mod intents;
pub mod outbox;
pub mod people;
mod requests;
pub mod sessions;
mod tips;
mod verifications;

use std::path::Path;

use sqlx::any::AnyPoolOptions;
use sqlx::{Any, AnyPool, Executor, Transaction};

pub use approvals::{
    ApprovalEvidence, WithdrawnApproval, all_approvals, upsert_approval, withdraw_approvals,
};
pub(crate) use audit::events;
pub use audit::{
    AuditEventRow, AuditFilter, RefMove, actions, after, all as all_events, chain_head,
    events_by_id, events_page, head as audit_head, insert_event, moves_of, parse_time,
};
pub use holds::{
    HoldRecord, NewHold, active_holds, all_holds, find_hold, has_reset_hold, insert_hold,
    release_hold, unreleased_holds,
};
pub use incidents::{
    NewIncident, incident, incident_events, incidents, insert_incident, merge_incident,
    resolve_incident, running_incident,
};
pub use intents::{
    IntentRow, fail_unsettled_intent, finish_intent, insert_intent, intent_states,
    late_landing_candidates, note_unknown_outcome, payloads as intent_payloads, pending_intents,
    revive_intent,
};
pub use requests::{
    NewRequest, awaiting_request_ids, cancel_open_requests, closed_request_for_move,
    fail_orphaned_executing, fail_request_if_open, insert_request, open_request_for, request,
    request_state, requests, set_request_state, start_executing,
};
pub use tips::{DELETED, forget_observed_tip, observed_tip, observed_tips, set_observed_tip};
pub use verifications::{
    NewVerification, all_verifications, latest_verification, record_verification, verifications_in,
    verifications_of, verifications_of_commits,
};

/// The database handle every query takes: sqlx's `Any` driver, so the
/// queries (written in SQL that SQLite and PostgreSQL share, `$1`
/// parameters) can run on a database server as on the embedded SQLite file.
/// Three still speak SQLite only and get a PostgreSQL form with it:
/// `json_each` (verifications), `json_extract` (incidents), and
/// `BEGIN IMMEDIATE` ([`begin`]).
pub type Pool = AnyPool;

/// A write transaction.
pub type Tx<'a> = Transaction<'a, Any>;

/// The current time as stored (RFC 3339, UTC, milliseconds).
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Opens (creating if needed) the database in WAL mode and runs the migrations.
pub async fn open(file: &Path) -> Result<Pool, sqlx::Error> {
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).map_err(sqlx::Error::Io)?;
    }
    sqlx::any::install_default_drivers();
    // Absolute: a relative path in a URL would be read as its host.
    let file = std::path::absolute(file).map_err(sqlx::Error::Io)?;
    let url = format!("sqlite://{}?mode=rwc", file.display());
    let pool = AnyPoolOptions::new()
        .max_connections(8)
        .after_connect(|connection, _| {
            Box::pin(async move {
                connection
                    .execute(
                        // Readers never wait for the writer; an intent and an
                        // outcome, once committed, survive a power cut; a
                        // writer waits its turn rather than failing at once.
                        "PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; \
                         PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;",
                    )
                    .await
                    .map(|_| ())
            })
        })
        .connect(&url)
        .await?;
    sqlx::migrate!("../../migrations/sqlite").run(&pool).await?;
    Ok(pool)
}

/// Reads a row of a real table: whether the database answers, and its
/// file (not only the connection) can be read.
pub async fn ping(pool: &Pool) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT id FROM audit_events ORDER BY id DESC LIMIT 1")
        .fetch_optional(pool)
        .await
        .map(|_| ())
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
pub async fn begin(pool: &Pool) -> Result<Tx<'static>, sqlx::Error> {
    pool.begin_with("BEGIN IMMEDIATE").await
}

/// A column holding JSON text, read into `T`: the stored text stays what
/// both databases keep as text.
pub(crate) struct JsonColumn<T>(pub T);

impl<T: serde::de::DeserializeOwned> TryFrom<String> for JsonColumn<T> {
    type Error = serde_json::Error;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        serde_json::from_str(&text).map(JsonColumn)
    }
}

/// A value as the JSON text a [`JsonColumn`] holds.
pub(crate) fn json_text<T: serde::Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).expect("plain data serializes")
}

/// Reads one of the closed text values a column holds (a request's state,
/// a hold's kind), as a decoding error when it is none of them.
fn choice<T>(column: &str, text: String) -> Result<T, sqlx::Error>
where
    T: std::str::FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    text.parse().map_err(|e| sqlx::Error::ColumnDecode {
        index: column.to_owned(),
        source: Box::new(e),
    })
}
