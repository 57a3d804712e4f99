//! The promotion engine: plain Rust, no Leptos. Git, the pipeline rules,
//! the store, people and the operations that tie them together.
//!
//! [`Engine`] is what the server keeps in its state: the REST handlers and
//! the server functions are thin adapters over its methods.

pub mod admin;
pub mod anchor;
pub mod audit;
pub mod auth;
pub mod caller;
pub mod changes;
pub mod cluster;
pub mod config;
pub mod demo;
pub mod error;
pub mod feed;
pub mod git;
pub mod history;
pub mod hotfix_mode;
pub mod insights;
pub mod integrity;
pub mod line;
pub mod login_limiter;
pub mod notify;
pub mod ops;
pub mod people;
pub mod pipeline;
pub mod readiness;
pub mod redact;
pub mod refresher;
pub mod roles;
pub mod rules;
pub mod session;
pub mod sso;
pub mod sso_sign_in;
pub mod store;
pub mod view;
pub mod webhooks;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::store::Pool;
use gix::ObjectId;

use auth::{Permission, Principal};
use changes::Changes;
use config::Config;
use envline_api::{Abilities, AuditEventView, HoldView, PromotionView, RequestState, Viewer};
pub use error::EngineError;
use git::{GitError, GitRepo};
use hotfix_mode::HotfixMode;
use notify::Notifications;
use people::People;
use refresher::Refresher;
use view::PipelineViews;

/// Opens the database of a configuration (for the command line's people,
/// tokens and audit commands, which need no clone).
pub async fn open_database(config: &Config) -> Result<Pool, String> {
    let database = config.database();
    store::open(&database)
        .await
        .map_err(|e| format!("cannot open the database {database}: {e}"))
}

/// The lock file in the data directory: one Envline process per directory.
const LOCK_FILE: &str = "envline.lock";

/// Takes the data directory for this process: an exclusive lock on a file in
/// it, held as long as the returned file is open (the operating system drops
/// it when the process dies, however it dies). A second process is refused
/// with the first one's pid.
pub fn lock_data_dir(dir: &std::path::Path) -> Result<std::fs::File, String> {
    use std::io::{Read, Seek, Write};
    let path = dir.join(LOCK_FILE);
    let mut file = std::fs::File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            return Err(format!(
                "another Envline (pid {}) is already using the data directory {}; stop it first, or give this one its own `server.data_dir`",
                holder.trim(),
                dir.display()
            ));
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(format!("cannot lock {}: {e}", path.display()));
        }
    }
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| writeln!(file, "{}", std::process::id()))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(file)
}

/// What an audit check's answer depends on: the log's head, the clone's
/// anchor, why anchoring is off, and when the database files were last
/// written.
#[derive(PartialEq)]
struct AuditCheckKey {
    head: Option<(i64, String)>,
    anchor: Option<ObjectId>,
    unavailable: Option<String>,
    written: store::WrittenStamp,
}

/// What `who` may do on `env`: the buttons the pages show, and (holds) the
/// rule the engine decides by.
pub fn abilities_on(who: &Principal, env: &pipeline::Environment) -> Abilities {
    let on = Some(env.name.as_str());
    Abilities {
        environment: env.name.clone(),
        promote: who.can(Permission::Promote, on),
        verify: who.can(Permission::Verify, on),
        approve: who.can(Permission::Approve, on),
        reset: who.can(
            Permission::Reset {
                protected: env.protected,
            },
            on,
        ),
        hold: who.can(Permission::Hold, on),
        admin: who.can(Permission::Admin, on),
    }
}

/// The last answer of [`Engine::audit_check`], and what it was for.
struct AuditChecked {
    key: AuditCheckKey,
    remote_read_at: Instant,
    check: audit::ChainCheck,
}

/// Envline's engine: the configuration, the clone and the database, and
/// the services built over them. Each service has its own handle:
/// [`Engine::views`] (where environments stand, the line, commits),
/// [`Engine::people`] (people, sessions, tokens, callers),
/// [`Engine::notifications`] (the outbox and its delivery),
/// [`Engine::refresher`] (fetches asked for and their outcome) and
/// [`Engine::changes`] (the notices that tie them together). The
/// operations that move refs (`ops`) and the refresh that settles the
/// journal are the engine's own, as they use all of these.
pub struct Engine {
    pub config: Arc<Config>,
    pub git: Arc<GitRepo>,
    pub pool: Pool,
    changes: Arc<Changes>,
    views: PipelineViews,
    people: People,
    notifications: Arc<Notifications>,
    delivery: insights::Delivery,
    refresher: Arc<Refresher>,
    /// Whether hotfix mode is on, and the pipeline as it stands.
    mode: Arc<HotfixMode>,
    /// The ref locks that serialize the operations moving each branch,
    /// across replicas on PostgreSQL (I6; the CAS on the clone and the
    /// lease on the remote guard against everyone else), and whether this
    /// replica leads. Operations that only touch the
    /// database (verifications, approvals, holds) never take the ref lock,
    /// so a hanging remote cannot stall them; their transactions hold the
    /// database's write lock ([`store::begin`]).
    cluster: Arc<cluster::Cluster>,
    /// Automatic promotions whose push failed, backing off.
    auto_failures: Arc<ops::auto::AutoFailures>,
    /// Whether the remote takes the audit anchor.
    anchoring: anchor::Anchoring,
    /// The audit check's last answer (see [`Engine::audit_check`]).
    audit_checked: tokio::sync::Mutex<Option<AuditChecked>>,
    /// Held while the engine lives: this process owns the data directory.
    _data_dir_lock: std::fs::File,
    /// Failure injection for crash-safety tests (`ENVLINE_CRASH_AT`).
    crash_at: Option<String>,
}

impl Engine {
    /// Opens the database and the clone (cloning the remote on first start),
    /// reconciles unfinished operations and reads the remote once.
    pub async fn start(config: Config) -> Result<Arc<Engine>, String> {
        std::fs::create_dir_all(&config.server.data_dir).map_err(|e| {
            format!(
                "cannot create data_dir {}: {e}",
                config.server.data_dir.display()
            )
        })?;
        let data_dir_lock = lock_data_dir(&config.server.data_dir)?;
        let pool = open_database(&config).await?;
        // Before anything is logged: events raised from now on queue for these.
        notify::sync_targets(&pool, &config.notify)
            .await
            .map_err(|e| format!("cannot set up the notification targets: {e}"))?;
        let url = config.repository.url.clone();
        let dir = config.clone_dir();
        let timeout = Duration::from_secs(config.repository.network_timeout_seconds);
        let git = tokio::task::spawn_blocking(move || {
            GitRepo::clone_or_open(&url, &dir).map(|g| g.with_network_timeout(timeout))
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| {
            format!(
                "cannot clone {}: {e}",
                redact::credentials(&config.repository.url)
            )
        })?;
        // Hotfix mode survives a restart.
        let running = store::running_incident(&pool)
            .await
            .map_err(|e| format!("cannot read the running incident: {e}"))?;
        let config = Arc::new(config);
        let git = Arc::new(git);
        let changes = Arc::new(Changes::default());
        let refresher = Arc::new(Refresher::default());
        let mode = Arc::new(HotfixMode::new(config.pipeline.clone(), running));
        let auto_failures = Arc::new(ops::auto::AutoFailures::default());
        // Longer than any move takes: a fetch and a push, each within the
        // network timeout, and the work between.
        let lock_wait = Duration::from_secs(3 * config.repository.network_timeout_seconds + 10);
        let cluster = cluster::Cluster::new(pool.clone(), &config.database(), lock_wait);
        let engine = Arc::new(Engine {
            views: PipelineViews::new(view::ViewSources {
                config: config.clone(),
                git: git.clone(),
                pool: pool.clone(),
                changes: changes.clone(),
                refresher: refresher.clone(),
                mode: mode.clone(),
                auto_failures: auto_failures.clone(),
            }),
            people: People::new(config.clone(), pool.clone(), changes.clone())?,
            notifications: Arc::new(Notifications::new(
                config.clone(),
                pool.clone(),
                changes.clone(),
            )),
            delivery: insights::Delivery::new(config.clone(), git.clone(), pool.clone()),
            config,
            git,
            pool,
            changes,
            refresher,
            mode,
            cluster,
            auto_failures,
            anchoring: anchor::Anchoring::default(),
            audit_checked: tokio::sync::Mutex::new(None),
            _data_dir_lock: data_dir_lock,
            crash_at: std::env::var("ENVLINE_CRASH_AT")
                .ok()
                .filter(|s| !s.is_empty()),
        });
        // Changes whose push never settled (a crash) must not show as done
        // until the remote says they landed: put the clone's refs back first;
        // the refresh then settles them against the remote, if it answers.
        {
            // Another replica's pending intent is its operation in flight,
            // until it lets go of the ref lock.
            let _refs = engine
                .cluster
                .lock_refs()
                .await
                .map_err(|e| format!("cannot take the ref lock: {e}"))?;
            ops::journal::restore_pending(&engine)
                .await
                .map_err(|e| format!("cannot restore the clone's unsettled refs: {e}"))?;
        }
        if let Err(e) = engine.refresh().await {
            tracing::warn!("first refresh failed: {e}");
        }
        Ok(engine)
    }

    /// Where environments stand, the line and the commits people see.
    pub fn views(&self) -> &PipelineViews {
        &self.views
    }

    /// People, their sessions and tokens, and who is calling.
    pub fn people(&self) -> &People {
        &self.people
    }

    /// The notifications queued for the `[[notify]]` targets.
    pub fn notifications(&self) -> &Arc<Notifications> {
        &self.notifications
    }

    /// Delivery figures per environment, from the audit log.
    pub fn delivery(&self) -> &insights::Delivery {
        &self.delivery
    }

    /// Refreshes asked for, and how the last one went.
    pub fn refresher(&self) -> &Refresher {
        &self.refresher
    }

    /// The change notices every service shares.
    pub fn changes(&self) -> &Changes {
        &self.changes
    }

    /// The replicas' shared locks, and whether this one leads.
    pub fn cluster(&self) -> &Arc<cluster::Cluster> {
        &self.cluster
    }

    /// Takes the lock of every ref, for work that concerns them all (hotfix
    /// mode), and, when other replicas share the database, first catches up
    /// with what they did: the clone fetched if they moved a branch or the
    /// anchor since it last was, and hotfix mode as the database has it.
    pub(crate) async fn lock_refs(&self) -> Result<cluster::RefLock<'_>, EngineError> {
        let held = self.cluster.lock_refs().await?;
        if self.cluster.shared() {
            ops::journal::catch_up(self, None).await?;
        }
        Ok(held)
    }

    /// Takes the locks of the refs an operation moves and reads (see
    /// [`cluster::RefScope`]), and catches up as [`Engine::lock_refs`]
    /// does, for those refs only.
    pub(crate) async fn lock_scope(
        &self,
        scope: cluster::RefScope,
    ) -> Result<cluster::RefLock<'_>, EngineError> {
        let held = self.cluster.lock_scope(scope).await?;
        if self.cluster.shared() {
            ops::journal::catch_up(self, held.scope()).await?;
        }
        Ok(held)
    }

    /// Whether hotfix mode is on, and the pipeline as it stands.
    pub fn hotfix_mode(&self) -> &HotfixMode {
        &self.mode
    }

    /// The pipeline as it stands now (see [`HotfixMode::pipeline_now`]).
    pub fn pipeline_now(&self) -> Arc<pipeline::Pipeline> {
        self.mode.pipeline_now()
    }

    /// Runs blocking git work off the async threads.
    pub async fn git<T: Send + 'static>(
        &self,
        f: impl FnOnce(&GitRepo) -> Result<T, GitError> + Send + 'static,
    ) -> Result<T, EngineError> {
        view::with_git(&self.git, f).await
    }

    /// Runs an operation in a task of its own, so a client that hangs up (an
    /// HTTP request or a server function dropped mid-way) cannot cancel it
    /// between the push and the record of what was pushed.
    pub async fn detached<T: Send + 'static>(
        op: impl Future<Output = Result<T, EngineError>> + Send + 'static,
    ) -> Result<T, EngineError> {
        tokio::spawn(op).await?
    }

    /// Stops the process at a named step, for crash-safety tests.
    /// Kills the process (SIGKILL, as a power cut or the OOM killer would)
    /// at a named step, for crash-safety tests (`ENVLINE_CRASH_AT`). The
    /// step `during_push` kills it a moment after the push has started,
    /// while git is still talking to the remote.
    fn crash_point(&self, step: &str) {
        if self.crash_at.as_deref() != Some(step) {
            return;
        }
        eprintln!("ENVLINE_CRASH_AT={step}: killing this process");
        if step == "during_push" {
            std::thread::spawn(|| {
                std::thread::sleep(Duration::from_millis(300));
                let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
            });
        } else {
            let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
            std::process::abort();
        }
    }

    /// Fetches the remote, finishes interrupted operations, and logs every
    /// branch that moved without Envline as out-of-band (I5).
    pub async fn refresh(&self) -> Result<(), EngineError> {
        let _refs = self.cluster.lock_refs().await?;
        if self.cluster.shared() {
            // Hotfix mode as another replica may have set it.
            ops::journal::follow_hotfix_mode(self).await?;
        }
        let before = self.git(|git| git.branch_tips()).await?;
        let fetched = self.git(|git| git.fetch()).await;
        if fetched.is_ok() {
            self.anchoring.fetched();
        }
        let error_changed = self
            .refresher
            .fetched(fetched.as_ref().err().map(|e| e.to_string()));
        let pending = !store::pending_intents(&self.pool).await?.is_empty();
        let result = match fetched {
            Ok(()) => match ops::reconcile_intents(self).await {
                Ok(()) => ops::record_observations(self).await,
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        // Events that moved no branch are anchored within a refresh.
        if result.is_ok()
            && let Err(e) = self.anchor_now().await
        {
            tracing::warn!("the audit log could not be anchored on the remote: {e}");
        }
        let after = self.git(|git| git.branch_tips()).await?;
        if before != after || error_changed || pending {
            self.changes.changed();
        } else {
            self.changes.invalidate();
        }
        self.refresher.ran();
        result
    }

    /// What `who` may see of themselves and do, per environment: the header's
    /// name and roles, and which buttons each card shows.
    pub fn viewer(&self, who: &Principal) -> Viewer {
        let abilities = self
            .config
            .pipeline
            .environments()
            .iter()
            .map(|env| abilities_on(who, env))
            .collect();
        Viewer {
            signed_in: !who.system && who.user != Principal::anonymous().user,
            user: who.user.clone(),
            roles: who.grants.iter().map(|g| g.to_string()).collect(),
            abilities,
            can_refresh: who.can(Permission::Refresh, None),
        }
    }

    /// Promotion requests, newest first (`state` filters).
    pub async fn requests(
        &self,
        state: Option<RequestState>,
        limit: i64,
    ) -> Result<Vec<PromotionView>, EngineError> {
        Ok(store::requests(&self.pool, state, limit.clamp(1, 1000)).await?)
    }

    /// One promotion request with its approvals.
    pub async fn request(&self, id: i64) -> Result<PromotionView, EngineError> {
        store::request(&self.pool, id)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("no promotion request {id}")))
    }

    /// Holds and freezes not yet released (including freezes that start later).
    pub async fn holds(&self) -> Result<Vec<HoldView>, EngineError> {
        Ok(store::unreleased_holds(&self.pool).await?)
    }

    /// One page of audit events, newest first, filtered: those older than
    /// event `before`, at most `page`.
    pub async fn audit_page(
        &self,
        filter: &audit::AuditFilter,
        before: Option<i64>,
        page: i64,
    ) -> Result<Vec<AuditEventView>, EngineError> {
        Ok(audit::events_page(&self.pool, filter, before, page).await?)
    }

    /// The newest verifications recorded in `environment`.
    pub async fn verifications_in(
        &self,
        environment: &str,
        limit: i64,
    ) -> Result<Vec<envline_api::VerificationView>, EngineError> {
        Ok(store::verifications_in(&self.pool, environment, limit).await?)
    }

    /// The actions the audit log holds.
    pub async fn audit_actions(&self) -> Result<Vec<String>, EngineError> {
        Ok(audit::actions(&self.pool).await?)
    }

    /// Checks the audit log whole: the chain, the remote's anchors, the
    /// branches against the log, the evidence rows.
    ///
    /// Affordable however many readers ask: one check runs at a time and
    /// its answer is kept while nothing was written to the database (by
    /// Envline or anyone else: a row edited behind its back shows at the next
    /// check) and the anchor stays; the remote is asked for its anchor at
    /// most once per `refresh_seconds` (between, the clone's copy, which each
    /// refresh fetches, is read).
    pub async fn audit_check(&self) -> Result<audit::ChainCheck, EngineError> {
        let mut cached = self.audit_checked.lock().await;
        let head = audit::head(&self.pool).await?;
        let anchor = self.git(|git| git.branch_tip(git::AUDIT_REF)).await?;
        let unavailable = self.anchoring.unavailable();
        let key = AuditCheckKey {
            head,
            anchor,
            unavailable: unavailable.clone(),
            written: store::written_stamp(&self.pool, &self.config.database()).await?,
        };
        let every = Duration::from_secs(self.config.repository.refresh_seconds.max(1));
        let fresh = |at: &Instant| at.elapsed() < every;
        if let Some(c) = cached.as_ref()
            && c.key == key
            && fresh(&c.remote_read_at)
        {
            return Ok(c.check.clone());
        }
        let read_remote = cached.as_ref().is_none_or(|c| !fresh(&c.remote_read_at));
        let check = integrity::check(
            &self.pool,
            self.git.clone(),
            &self.config.pipeline,
            unavailable,
            read_remote,
        )
        .await?;
        let remote_read_at = match cached.as_ref() {
            Some(c) if !read_remote => c.remote_read_at,
            _ => Instant::now(),
        };
        *cached = Some(AuditChecked {
            key,
            remote_read_at,
            check: check.clone(),
        });
        Ok(check)
    }
}
