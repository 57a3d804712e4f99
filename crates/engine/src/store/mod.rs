//! Everything Envline keeps in its database, one module per table: the
//! gates' evidence (verifications, approvals, holds), promotion requests,
//! observed tips, the intent journal, incidents, the audit log, the outbox
//! of notifications, people with their roles and tokens, sessions, sign-in throttling, single sign-ons
//! under way, and the audit anchors pushed. Each module decodes its
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
pub mod sign_ins;
pub mod sso_logins;
mod tips;
mod verifications;

use std::path::Path;

use sqlx::any::AnyPoolOptions;
use sqlx::migrate::MigrateDatabase;
use sqlx::{Any, AnyPool, Executor, Transaction};

pub use crate::config::Database;

pub use approvals::{
    ApprovalEvidence, WithdrawnApproval, all_approvals, upsert_approval, withdraw_approvals,
};
pub(crate) use audit::events;
pub use audit::{
    AuditEventRow, AuditFilter, LedgerMove, RefMove, actions, after, all as all_events, chain_head,
    events_by_id, events_page, head as audit_head, insert_event, ledger_of, moves_of, parse_time,
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
    NewVerification, all_verifications, failures_in, latest_verification, record_verification,
    verifications_in, verifications_of, verifications_of_commits,
};

/// The database handle every query takes: sqlx's `Any` driver, so the
/// queries (written in SQL that SQLite and PostgreSQL share, `$1`
/// parameters) run on the embedded SQLite file and on a database server
/// alike. Three differ, and ask [`backend`] which form to send: reading a
/// JSON array (verifications), a JSON field (incidents), and taking the
/// write lock ([`begin`]).
pub type Pool = AnyPool;

/// A write transaction.
pub type Tx<'a> = Transaction<'a, Any>;

/// Which database a [`Pool`] talks to, for the few statements whose SQL differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The database `pool` was opened on.
pub fn backend(pool: &Pool) -> Backend {
    match pool.connect_options().database_url.scheme() {
        "postgres" | "postgresql" => Backend::Postgres,
        _ => Backend::Sqlite,
    }
}

/// The current time as stored (RFC 3339, UTC, milliseconds).
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Opens (creating if needed) the database and brings its schema up to
/// date: the SQLite file in WAL mode, or the PostgreSQL database, each with
/// its own migrations (`migrations/sqlite`, `migrations/postgres`).
pub async fn open(database: &Database) -> Result<Pool, sqlx::Error> {
    sqlx::any::install_default_drivers();
    match database {
        Database::Sqlite(file) => open_sqlite(file).await,
        Database::Postgres(url) => open_postgres(url).await,
    }
}

async fn open_sqlite(file: &Path) -> Result<Pool, sqlx::Error> {
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).map_err(sqlx::Error::Io)?;
    }
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

async fn open_postgres(url: &str) -> Result<Pool, sqlx::Error> {
    // Like the SQLite file, the database is made when it is not there yet
    // (when Envline's role may create databases; else an administrator
    // makes it once). A replica starting at the same time may win the race.
    if !Any::database_exists(url).await?
        && let Err(e) = Any::create_database(url).await
        && !Any::database_exists(url).await?
    {
        return Err(e);
    }
    let pool = AnyPoolOptions::new()
        .max_connections(16)
        // A server that does not answer is reported, not waited on for ever.
        .acquire_timeout(std::time::Duration::from_secs(10))
        .connect(url)
        .await?;
    // sqlx holds an advisory lock while it migrates: replicas starting
    // together apply each migration once.
    sqlx::migrate!("../../migrations/postgres")
        .run(&pool)
        .await?;
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

/// Something that changes with every committed write to the database, by
/// Envline or by anyone with access to it: what answers computed from the
/// whole database are kept against. For SQLite, the sizes and modification
/// times of the file and its write-ahead log; for PostgreSQL, the server's
/// write-ahead log position (which any write anywhere on it moves, so a
/// kept answer is recomputed more often than needed, never less).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WrittenStamp {
    Files(Vec<(u64, Option<std::time::SystemTime>)>),
    Log(String),
}

/// The [`WrittenStamp`] of `database` now.
pub async fn written_stamp(pool: &Pool, database: &Database) -> Result<WrittenStamp, sqlx::Error> {
    match database {
        Database::Sqlite(file) => {
            let wal = file.with_extension("sqlite-wal");
            Ok(WrittenStamp::Files(
                [file, wal.as_path()]
                    .iter()
                    .map(|f| {
                        std::fs::metadata(f)
                            .map(|m| (m.len(), m.modified().ok()))
                            .unwrap_or_default()
                    })
                    .collect(),
            ))
        }
        Database::Postgres(_) => {
            let (lsn,): (String,) = sqlx::query_as("SELECT pg_current_wal_lsn()::text")
                .fetch_one(pool)
                .await?;
            Ok(WrittenStamp::Log(lsn))
        }
    }
}

/// The advisory lock every PostgreSQL write transaction takes first (any
/// number both sides agree on; this one spells "envline").
const WRITE_LOCK: i64 = 0x0065_6e76_6c69_6e65;

/// Starts a write transaction that holds the database's write lock from its
/// first statement, so what it reads first (the audit chain's head, a
/// request's state) cannot change before it writes: SQLite's `BEGIN
/// IMMEDIATE`; on PostgreSQL, a transaction-scoped advisory lock that every
/// replica's writers take, released at commit or rollback.
pub async fn begin(pool: &Pool) -> Result<Tx<'static>, sqlx::Error> {
    match backend(pool) {
        Backend::Sqlite => pool.begin_with("BEGIN IMMEDIATE").await,
        Backend::Postgres => {
            let mut tx = pool.begin().await?;
            // The function returns void, which sqlx's Any driver cannot
            // read: select a constant from it instead.
            sqlx::query("SELECT 1 FROM pg_advisory_xact_lock($1)")
                .bind(WRITE_LOCK)
                .execute(&mut *tx)
                .await?;
            Ok(tx)
        }
    }
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
