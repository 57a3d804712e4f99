//! Several Envline replicas on one PostgreSQL database, each with its own
//! clone: what keeps them one Envline.
//!
//! - **The ref locks.** Every operation that moves refs holds, from its
//!   first check to the record of its outcome, a lock on each branch it
//!   moves (exclusive) and on each environment branch its checks read
//!   (shared), taken in one order so two operations never wait for each
//!   other in a circle: promotions into different environments run side by
//!   side, two moves of one environment never interleave (I6). Work that
//!   concerns every ref (a refresh, hotfix mode, start-up) takes the whole
//!   set at once. In one process these are read-write locks; on PostgreSQL
//!   they are also advisory locks every replica's operations take, so a
//!   pending intent found while holding the locks of all its branches is
//!   one whose replica died: any replica may settle it.
//! - **The leader.** Background work that must run once (timed refreshes,
//!   auto-promotion, notification delivery) runs on the one replica holding
//!   a second advisory lock on a connection of its own. When that replica
//!   dies its connection closes, PostgreSQL releases the lock, and another
//!   replica takes it at its next try ([`ELECTION_EVERY`]).
//!
//! On SQLite there is one process (the data directory is locked): the
//! mutex alone, and this process always leads.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use sqlx::{Any, AnyConnection, Connection, Transaction};
use tokio::sync::{
    OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock, RwLockReadGuard, RwLockWriteGuard, watch,
};

use envline_api::ErrorCode;

use crate::EngineError;
use crate::store::{self, Backend, Database, Pool};

/// How often a replica that does not lead tries to, and one that leads
/// checks its connection: a dead leader is replaced within about this long.
pub const ELECTION_EVERY: Duration = Duration::from_secs(1);

/// How long the election waits for the database before this replica
/// stops leading and connects again.
const ELECTION_PATIENCE: Duration = Duration::from_secs(3);

/// The advisory lock over every ref: work on all of them holds it
/// exclusively, an operation on some branches shares it (any number all
/// replicas agree on; distinct from the store's write lock).
pub const REF_LOCK: i64 = 0x0065_6e76_0000_0001;

/// The advisory locks of single refs are this with a hash of the ref's
/// name in the low 32 bits (two names sharing a hash only wait for each
/// other more than they need to).
const BRANCH_LOCKS: i64 = 0x656e_7601_0000_0000;

/// How many operations of one replica may hold the database's ref locks at
/// once: each keeps a connection for as long as it holds them and needs
/// another for its queries, so they must leave the pool (16) room.
const DATABASE_TURNS: usize = 6;

/// The advisory lock the leader holds.
const LEADER_LOCK: i64 = 0x0065_6e76_0000_0002;

/// The replicas' shared locks and this replica's part in them (see the module).
pub struct Cluster {
    pool: Pool,
    /// The database's URL when replicas may share it (PostgreSQL).
    shared: Option<String>,
    /// This process's side of [`REF_LOCK`], taken before the database's so
    /// waiting operations hold no connection.
    everything: RwLock<()>,
    /// This process's side of each ref's lock, by ref name.
    refs: std::sync::Mutex<HashMap<String, Arc<RwLock<()>>>>,
    /// Held while remote refs are fetched into the clone, which two fetches
    /// must not do at once.
    fetching: tokio::sync::Mutex<()>,
    /// Turns at holding the database's ref locks (see [`DATABASE_TURNS`]).
    database_turns: tokio::sync::Semaphore,
    /// Whether this replica runs the background work.
    leader: watch::Sender<bool>,
    /// This replica's name in the change feed, new at each start.
    replica: String,
    /// How long an operation waits for another replica's before giving up.
    lock_wait: Duration,
}

/// The refs an operation works on, which its locks cover.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RefScope {
    /// Branches it may move: nobody else moves or reads them meanwhile.
    pub writes: BTreeSet<String>,
    /// Environment branches its checks read: nobody moves them meanwhile.
    /// (The root is not one: only people and hotfix mode, which takes
    /// every lock, move it.)
    pub reads: BTreeSet<String>,
    /// Whether it pushes the audit anchor.
    pub anchor: bool,
}

impl RefScope {
    /// The scope of pushing the audit anchor alone.
    pub fn anchor() -> RefScope {
        RefScope {
            anchor: true,
            ..RefScope::default()
        }
    }

    /// Whether the operation moves or reads `branch`.
    pub fn covers(&self, branch: &str) -> bool {
        self.writes.contains(branch) || self.reads.contains(branch)
    }

    /// The refs it moves or reads, as [`crate::git::GitRepo`] names them.
    pub fn refs(&self) -> Vec<String> {
        let mut refs: Vec<String> = self.writes.union(&self.reads).cloned().collect();
        if self.anchor {
            refs.push(crate::git::AUDIT_REF.to_owned());
        }
        refs
    }

    /// Each ref's name with whether it is held exclusively, by name.
    fn locks(&self) -> BTreeMap<String, bool> {
        let mut locks: BTreeMap<String, bool> =
            self.reads.iter().map(|r| (r.clone(), false)).collect();
        locks.extend(self.writes.iter().map(|w| (w.clone(), true)));
        if self.anchor {
            locks.insert(crate::git::AUDIT_REF.to_owned(), true);
        }
        locks
    }
}

/// The advisory lock of one ref (see [`BRANCH_LOCKS`]).
pub fn ref_lock_key(name: &str) -> i64 {
    let hash = Sha256::digest(name.as_bytes());
    BRANCH_LOCKS | i64::from(u32::from_be_bytes([hash[0], hash[1], hash[2], hash[3]]))
}

/// Held while an operation may move refs; released when dropped.
pub struct RefLock<'a> {
    /// What it covers; `None` for every ref.
    scope: Option<RefScope>,
    _everything: Everything<'a>,
    _refs: Vec<OneRef>,
    _turn: Option<tokio::sync::SemaphorePermit<'a>>,
    /// On PostgreSQL, a transaction holding the advisory locks for as long
    /// as it is open: dropping it rolls it back (sqlx sends the rollback
    /// before the connection is used again), which releases them, also
    /// when the wait for them was cancelled.
    _held: Option<Transaction<'static, Any>>,
}

impl RefLock<'_> {
    /// The refs the lock covers; `None` when it covers every ref.
    pub fn scope(&self) -> Option<&RefScope> {
        self.scope.as_ref()
    }
}

enum Everything<'a> {
    Shared(#[allow(dead_code)] RwLockReadGuard<'a, ()>),
    Exclusive(#[allow(dead_code)] RwLockWriteGuard<'a, ()>),
}

/// This process's hold on one ref.
pub(crate) enum OneRef {
    Shared(#[allow(dead_code)] OwnedRwLockReadGuard<()>),
    Exclusive(#[allow(dead_code)] OwnedRwLockWriteGuard<()>),
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
            everything: RwLock::new(()),
            refs: std::sync::Mutex::default(),
            fetching: tokio::sync::Mutex::new(()),
            database_turns: tokio::sync::Semaphore::new(DATABASE_TURNS),
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

    /// Held while remote refs are fetched into the clone (see
    /// [`crate::git::GitRepo::fetch_staged`]).
    pub(crate) async fn lock_fetch(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.fetching.lock().await
    }

    /// Whether other replicas may share the database (PostgreSQL).
    pub fn shared(&self) -> bool {
        self.shared.is_some()
    }

    fn local_lock(&self, name: &str) -> Arc<RwLock<()>> {
        self.refs
            .lock()
            .expect("ref locks")
            .entry(name.to_owned())
            .or_default()
            .clone()
    }

    /// For bringing the clone's refs up to what other replicas did, without
    /// deciding anything: waits for work on every ref here to end, then
    /// takes the locks of those of `names` no operation here moves or reads
    /// now (one that does brings its own up to date under its lock).
    pub(crate) async fn idle_refs(
        &self,
        names: &[String],
    ) -> (RwLockReadGuard<'_, ()>, Vec<(String, OneRef)>) {
        let everything = self.everything.read().await;
        let idle = names
            .iter()
            .filter_map(|name| {
                let guard = self.local_lock(name).try_write_owned().ok()?;
                Some((name.clone(), OneRef::Exclusive(guard)))
            })
            .collect();
        (everything, idle)
    }

    /// Takes the lock of every ref (see [`Cluster::lock`]): for work on all
    /// of them.
    pub(crate) async fn lock_refs(&self) -> Result<RefLock<'_>, EngineError> {
        self.lock(None).await
    }

    /// Takes the locks of the refs `scope` covers (see [`Cluster::lock`]).
    pub(crate) async fn lock_scope(&self, scope: RefScope) -> Result<RefLock<'_>, EngineError> {
        self.lock(Some(scope)).await
    }

    /// Takes ref locks, waiting for this process's other operations on them
    /// and then for every other replica's, for at most `lock_wait` per lock:
    /// a replica that holds one longer is stuck (a push hanging past its
    /// timeout), and the operation is refused, saying so, rather than left
    /// waiting. Every lock is taken in one order (the whole set's first,
    /// then each ref's by name here and by key in the database), so two
    /// operations never wait for each other.
    async fn lock(&self, scope: Option<RefScope>) -> Result<RefLock<'_>, EngineError> {
        let asked = Instant::now();
        let locks = scope.as_ref().map(RefScope::locks).unwrap_or_default();
        let everything = match scope {
            None => Everything::Exclusive(self.everything.write().await),
            Some(_) => Everything::Shared(self.everything.read().await),
        };
        let mut refs = Vec::with_capacity(locks.len());
        for (name, exclusive) in &locks {
            let lock = self.local_lock(name);
            refs.push(if *exclusive {
                OneRef::Exclusive(lock.write_owned().await)
            } else {
                OneRef::Shared(lock.read_owned().await)
            });
        }
        let mut turn = None;
        let held = match &self.shared {
            None => None,
            Some(_) => {
                turn = Some(
                    self.database_turns
                        .acquire()
                        .await
                        .expect("the semaphore is never closed"),
                );
                // One advisory lock per key, exclusive when any ref of that
                // key is, in the order of the keys.
                let mut keys: BTreeMap<i64, bool> = BTreeMap::new();
                for (name, exclusive) in &locks {
                    *keys.entry(ref_lock_key(name)).or_default() |= *exclusive;
                }
                let mut ordered = vec![(REF_LOCK, scope.is_none())];
                ordered.extend(keys);
                Some(self.lock_database(&ordered).await?)
            }
        };
        metrics::histogram!("envline_ref_lock_wait_seconds").record(asked.elapsed().as_secs_f64());
        Ok(RefLock {
            scope,
            _everything: everything,
            _refs: refs,
            _turn: turn,
            _held: held,
        })
    }

    /// Takes advisory locks `(key, exclusive)` in order, in a transaction
    /// that holds them until it ends.
    async fn lock_database(
        &self,
        keys: &[(i64, bool)],
    ) -> Result<Transaction<'static, Any>, EngineError> {
        let mut held = self.pool.begin().await?;
        // The locks live as long as this session: a server set to end
        // sessions idle in a transaction must not end this one while its
        // operation pushes.
        sqlx::query("SET LOCAL idle_in_transaction_session_timeout = 0")
            .execute(&mut *held)
            .await?;
        sqlx::query(&format!(
            "SET LOCAL lock_timeout = {}",
            self.lock_wait.as_millis()
        ))
        .execute(&mut *held)
        .await?;
        for (key, exclusive) in keys {
            // The functions return void, which the Any driver cannot read:
            // select a constant from them instead.
            let statement = if *exclusive {
                "SELECT 1 FROM pg_advisory_xact_lock($1)"
            } else {
                "SELECT 1 FROM pg_advisory_xact_lock_shared($1)"
            };
            let locked = sqlx::query(statement).bind(*key).execute(&mut *held).await;
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
        }
        Ok(held)
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
