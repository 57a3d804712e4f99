//! Several Envline replicas on one PostgreSQL database, each with its own
//! clone: what keeps them one Envline.
//!
//! - **The ref lock.** Every operation that moves refs or talks to the
//!   remote holds it from its first check to the record of its outcome. In
//!   one process it is a mutex; on PostgreSQL it is also an advisory lock
//!   that every replica's operations take, so two replicas never
//!   interleave (I6), and a pending intent found while holding it is one
//!   whose replica died: any replica may settle it.
//! - **The leader.** Background work that must run once (timed refreshes,
//!   auto-promotion, notification delivery) runs on the one replica holding
//!   a second advisory lock on a connection of its own. When that replica
//!   dies its connection closes, PostgreSQL releases the lock, and another
//!   replica takes it at its next try ([`ELECTION_EVERY`]).
//!
//! On SQLite there is one process (the data directory is locked): the
//! mutex alone, and this process always leads.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::{Any, AnyConnection, Connection, Transaction};
use tokio::sync::watch;

use envline_api::ErrorCode;

use crate::EngineError;
use crate::store::{self, Backend, Database, Pool};

/// How often a replica that does not lead tries to, and one that leads
/// checks its connection: a dead leader is replaced within about this long.
pub const ELECTION_EVERY: Duration = Duration::from_secs(1);

/// How long the election waits for the database before this replica
/// stops leading and connects again.
const ELECTION_PATIENCE: Duration = Duration::from_secs(3);

/// The advisory lock ref-moving operations hold (any number all replicas
/// agree on; distinct from the store's write lock).
pub const REF_LOCK: i64 = 0x0065_6e76_0000_0001;

/// The advisory lock the leader holds.
const LEADER_LOCK: i64 = 0x0065_6e76_0000_0002;

/// The replicas' shared locks and this replica's part in them (see the module).
pub struct Cluster {
    pool: Pool,
    /// The database's URL when replicas may share it (PostgreSQL).
    shared: Option<String>,
    /// Serializes this process's operations before they queue for the
    /// database's lock, so waiting ones hold no connection.
    queue: tokio::sync::Mutex<()>,
    /// Held while the clone is worked on: by an operation once it holds the
    /// ref lock, and by a fetch after another replica's change (which thus
    /// waits for the operation running here, not for those queued).
    clone: tokio::sync::Mutex<()>,
    /// Whether this replica runs the background work.
    leader: watch::Sender<bool>,
    /// This replica's name in the change feed, new at each start.
    replica: String,
    /// How long an operation waits for another replica's before giving up.
    lock_wait: Duration,
}

/// Held while an operation may move refs; released when dropped.
pub struct RefLock<'a> {
    _queue: tokio::sync::MutexGuard<'a, ()>,
    _clone: tokio::sync::MutexGuard<'a, ()>,
    /// On PostgreSQL, a transaction holding the advisory lock for as long
    /// as it is open: dropping it rolls it back (sqlx sends the rollback
    /// before the connection is used again), which releases the lock, also
    /// when the wait for it was cancelled.
    _held: Option<Transaction<'static, Any>>,
}

impl Cluster {
    /// The cluster of the database `pool` is open on.
    pub(crate) fn new(pool: Pool, database: &Database, lock_wait: Duration) -> Arc<Cluster> {
        let shared = match (store::backend(&pool), database) {
            (Backend::Postgres, Database::Postgres(url)) => Some(url.clone()),
            _ => None,
        };
        Arc::new(Cluster {
            leader: watch::channel(shared.is_none()).0,
            pool,
            shared,
            queue: tokio::sync::Mutex::new(()),
            clone: tokio::sync::Mutex::new(()),
            replica: format!("{:016x}", rand::random::<u64>()),
            lock_wait,
        })
    }

    /// The shared database's URL, when replicas may share it.
    pub(crate) fn shared_url(&self) -> Option<&str> {
        self.shared.as_deref()
    }

    /// This replica's name in the change feed.
    pub(crate) fn replica(&self) -> &str {
        &self.replica
    }

    /// Waits for the operation working on the clone now, not for those
    /// queued nor for other replicas': for work on the clone alone (a fetch
    /// after another replica's change).
    pub(crate) async fn lock_clone(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.clone.lock().await
    }

    /// Whether other replicas may share the database (PostgreSQL).
    pub fn shared(&self) -> bool {
        self.shared.is_some()
    }

    /// Takes the ref lock, waiting for this process's other operations and
    /// then for every other replica's, for at most `lock_wait`: a replica
    /// that holds it longer is stuck (a push hanging past its timeout), and
    /// the operation is refused, saying so, rather than left waiting.
    pub(crate) async fn lock_refs(&self) -> Result<RefLock<'_>, EngineError> {
        let asked = Instant::now();
        let queue = self.queue.lock().await;
        let held = match &self.shared {
            None => None,
            Some(_) => {
                let mut held = self.pool.begin().await?;
                // The lock lives as long as this session: a server set to end
                // sessions idle in a transaction must not end this one
                // while its operation pushes.
                sqlx::query("SET LOCAL idle_in_transaction_session_timeout = 0")
                    .execute(&mut *held)
                    .await?;
                sqlx::query(&format!(
                    "SET LOCAL lock_timeout = {}",
                    self.lock_wait.as_millis()
                ))
                .execute(&mut *held)
                .await?;
                // The function returns void, which the Any driver cannot
                // read: select a constant from it instead.
                let locked = sqlx::query("SELECT 1 FROM pg_advisory_xact_lock($1)")
                    .bind(REF_LOCK)
                    .execute(&mut *held)
                    .await;
                if let Err(e) = &locked
                    && e.as_database_error().and_then(|d| d.code()).as_deref() == Some("55P03")
                {
                    return Err(EngineError::Remote {
                        code: ErrorCode::RefLockTimeout,
                        message: format!(
                            "another replica has been moving refs for over {} s, longer than any move takes \
                             (a push hanging?); nothing was changed. Try again shortly; if it persists, \
                             look at the replica that logs a long push",
                            self.lock_wait.as_secs()
                        ),
                    });
                }
                locked?;
                Some(held)
            }
        };
        let clone = self.clone.lock().await;
        metrics::histogram!("envline_ref_lock_wait_seconds").record(asked.elapsed().as_secs_f64());
        Ok(RefLock {
            _queue: queue,
            _clone: clone,
            _held: held,
        })
    }

    /// Whether this replica runs the background work now.
    pub fn is_leader(&self) -> bool {
        *self.leader.borrow()
    }

    /// Whether this replica leads, watched: background loops wake when it
    /// changes.
    pub fn leadership(&self) -> watch::Receiver<bool> {
        self.leader.subscribe()
    }

    /// Completes when this replica leads (at once if it does).
    pub async fn led(&self) {
        let mut leader = self.leader.subscribe();
        let _ = leader.wait_for(|leads| *leads).await;
    }

    /// Completes when this replica stops leading.
    pub async fn deposed(&self) {
        let mut leader = self.leader.subscribe();
        let _ = leader.wait_for(|leads| !*leads).await;
    }

    /// Runs the task `work` makes while this replica leads: started when it
    /// comes to lead, stopped when it stops. Returns when a task ends by
    /// itself (the server is stopping).
    pub async fn while_leading<F, Fut>(self: Arc<Self>, work: F)
    where
        F: Fn() -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        loop {
            self.led().await;
            let mut task = tokio::spawn(work());
            tokio::select! {
                _ = &mut task => return,
                _ = self.deposed() => task.abort(),
            }
        }
    }

    fn lead(&self, leads: bool) {
        // Only a change wakes those watching: the election confirms the
        // same answer every second.
        let changed = self.leader.send_if_modified(|now| {
            let changed = *now != leads;
            *now = leads;
            changed
        });
        if changed {
            metrics::gauge!("envline_leader").set(if leads { 1.0 } else { 0.0 });
            if leads {
                tracing::info!("this replica now runs the background work (leader)");
            } else {
                tracing::warn!("this replica no longer runs the background work");
            }
        }
    }

    /// Takes part in electing the leader, forever: on a connection of its
    /// own, tries for the leader's lock every [`ELECTION_EVERY`], and once
    /// held checks at that pace that the connection (and so the lock) is
    /// still there. `envline serve` runs it; on SQLite it returns at once.
    pub async fn run_election(self: Arc<Self>) {
        let Some(url) = self.shared.clone() else {
            metrics::gauge!("envline_leader").set(1.0);
            return;
        };
        metrics::gauge!("envline_leader").set(0.0);
        loop {
            match AnyConnection::connect(&url).await {
                Ok(mut connection) => loop {
                    let ask = async {
                        if self.is_leader() {
                            sqlx::query_as::<_, (i32,)>("SELECT 1")
                                .fetch_one(&mut connection)
                                .await
                                .map(|_| true)
                        } else {
                            sqlx::query_as::<_, (bool,)>("SELECT pg_try_advisory_lock($1)")
                                .bind(LEADER_LOCK)
                                .fetch_one(&mut connection)
                                .await
                                .map(|(got,)| got)
                        }
                    };
                    // A connection that hangs (a half-open one) may have lost
                    // the lock to another replica already: step down.
                    match tokio::time::timeout(ELECTION_PATIENCE, ask).await {
                        Ok(Ok(leads)) => self.lead(leads),
                        Ok(Err(e)) => {
                            tracing::warn!("leader election: the database connection failed: {e}");
                            break;
                        }
                        Err(_) => {
                            tracing::warn!(
                                "leader election: the database did not answer within {} s",
                                ELECTION_PATIENCE.as_secs()
                            );
                            break;
                        }
                    }
                    tokio::time::sleep(ELECTION_EVERY).await;
                },
                Err(e) => tracing::warn!("leader election: cannot connect to the database: {e}"),
            }
            // The lock went with the connection: another replica may lead now.
            self.lead(false);
            tokio::time::sleep(ELECTION_EVERY).await;
        }
    }
}
