//! The two databases' schemas stay one: the SQLite and the PostgreSQL
//! migrations (`migrations/sqlite`, `migrations/postgres`) must end with the
//! same tables, columns and indexes, or a query would work on one and fail
//! on the other. Runs under `.ci/with-postgres` (`make test` does).

#[path = "support/postgres.rs"]
mod postgres;

use std::collections::BTreeSet;

use envline_engine::store::{self, Database, Pool};

async fn names(pool: &Pool, sql: &str) -> BTreeSet<String> {
    sqlx::query_as::<_, (String,)>(sql)
        .fetch_all(pool)
        .await
        .unwrap()
        .into_iter()
        .map(|(name,)| name)
        .collect()
}

#[tokio::test]
async fn sqlite_and_postgres_end_with_the_same_tables_columns_and_indexes() {
    let Some(database) = postgres::TestDatabase::new() else {
        eprintln!("no POSTGRES_TEST_URL: run under .ci/with-postgres to compare the schemas");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let sqlite = store::open(&Database::Sqlite(dir.path().join("envline.sqlite")))
        .await
        .unwrap();
    let pg = store::open(&Database::Postgres(database.url.clone()))
        .await
        .unwrap();

    let sqlite_columns = names(
        &sqlite,
        "SELECT m.name || '.' || p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name <> '_sqlx_migrations'",
    )
    .await;
    let pg_columns = names(
        &pg,
        "SELECT (table_name || '.' || column_name)::text FROM information_schema.columns
         WHERE table_schema = current_schema() AND table_name <> '_sqlx_migrations'",
    )
    .await;
    assert!(sqlite_columns.len() > 50, "{sqlite_columns:?}");
    assert_eq!(sqlite_columns, pg_columns, "tables and columns differ");

    // Indexes made by name (constraints' own indexes are named by each
    // database its own way).
    let sqlite_indexes = names(
        &sqlite,
        "SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_autoindex%'",
    )
    .await;
    let pg_indexes = names(
        &pg,
        "SELECT indexname::text FROM pg_indexes WHERE schemaname = current_schema()
         AND indexname NOT LIKE '%\\_pkey' AND indexname NOT LIKE '%\\_key'",
    )
    .await;
    assert_eq!(sqlite_indexes, pg_indexes, "indexes differ");

    // The audit log refuses edits on both.
    for pool in [&sqlite, &pg] {
        sqlx::query(
            "INSERT INTO audit_events (id, at, actor, action, reason, details, prev_hash, hash)
             VALUES (1, '2026-12-07T00:00:00.000Z', 'ann', 'promoted', 'r', '{}', 'p', 'h')",
        )
        .execute(pool)
        .await
        .unwrap();
        for edit in [
            "UPDATE audit_events SET actor = 'mallory'",
            "DELETE FROM audit_events",
        ] {
            let refused = sqlx::query(edit).execute(pool).await;
            let error = refused.expect_err(edit).to_string();
            assert!(error.contains("append-only"), "{edit}: {error}");
        }
    }
    pg.close().await;
}
