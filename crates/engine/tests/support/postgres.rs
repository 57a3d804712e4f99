//! The tests' PostgreSQL: `.ci/with-postgres` starts a server and names it in
//! `POSTGRES_TEST_URL`; every engine or server a test starts then keeps
//! its state in a database of its own there (Envline creates it), dropped
//! when the test is done. Without the variable the tests run on SQLite.
//! Shared by the engine's tests and the server's (`#[path]`).

#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};

/// A database name no other test of any process uses.
static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A test's own database on the tests' PostgreSQL; dropped with it.
pub struct TestDatabase {
    pub url: String,
}

impl TestDatabase {
    /// A new database's URL when the tests run on PostgreSQL, else `None`.
    pub fn new() -> Option<TestDatabase> {
        let server = std::env::var("POSTGRES_TEST_URL")
            .ok()
            .filter(|u| !u.is_empty())?;
        let base = server.rsplit_once('/').map_or(server.as_str(), |(b, _)| b);
        let name = format!(
            "envline_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        Some(TestDatabase {
            url: format!("{base}/{name}"),
        })
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        use sqlx::migrate::MigrateDatabase;
        let url = self.url.clone();
        // Drop may run inside the test's runtime, which must not block: a
        // thread of its own with a runtime of its own.
        let _ = std::thread::spawn(move || {
            sqlx::any::install_default_drivers();
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(sqlx::Any::force_drop_database(&url))
        })
        .join();
    }
}
