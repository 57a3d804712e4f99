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
pub mod config;
pub mod demo;
pub mod error;
pub mod git;
pub mod history;
pub mod integrity;
pub mod line;
pub mod notify;
pub mod ops;
pub mod pipeline;
pub mod redact;
pub mod refresher;
pub mod roles;
pub mod rules;
pub mod session;
pub mod store;
pub mod webhooks;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use gix::ObjectId;
use sqlx::SqlitePool;

use auth::{Permission, Principal};
use config::Config;
use envline_api::{
    Abilities, AuditEventView, CommitView, EnvironmentView, HoldView, MergeSummary,
    OffLineEnvironment, PipelineView, PromotionView, RequestState, TimelineEntry, TimelinePage,
    TimelineStart, Viewer,
};
pub use error::EngineError;
use git::{CommitInfo, GitError, GitRepo};
use line::Line;

/// How long a token's user and roles are remembered before being read again.
const TOKEN_CACHE_TTL: Duration = Duration::from_secs(5);

/// How many merge commits the pipeline lists by name (the rest are counted).
const MERGES_LISTED: usize = 5;

/// Opens the database of a configuration (for the command line's people,
/// tokens and audit commands, which need no clone).
pub async fn open_database(config: &Config) -> Result<SqlitePool, String> {
    store::open(&config.database_file()).await.map_err(|e| {
        format!(
            "cannot open the database {}: {e}",
            config.database_file().display()
        )
    })
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

/// The state of the last fetch of the remote.
#[derive(Debug, Clone, Default)]
struct RefreshState {
    at: Option<String>,
    error: Option<String>,
}

/// Envline's engine: the configuration, the clone, the database, and the
/// caches that make reading the pipeline cheap.
pub struct Engine {
    pub config: Config,
    pub git: Arc<GitRepo>,
    pub pool: SqlitePool,
    /// Serializes every operation that moves refs or talks to the remote
    /// (I6 inside one process; the CAS on the clone and the lease on the
    /// remote guard against others). Operations that only touch the database
    /// (verifications, approvals, holds) never take it, so a hanging remote
    /// cannot stall them; their transactions are `BEGIN IMMEDIATE`.
    ref_lock: tokio::sync::Mutex<()>,
    /// Bumped on every change to refs or to the gates' evidence.
    generation: AtomicU64,
    snapshot: RwLock<Option<(u64, Arc<PipelineView>)>>,
    /// Shared, not copied: rebuilt only when the root moves.
    line: Mutex<Arc<Line>>,
    /// Subject, author and time of commits read lately (bounded).
    commits: Mutex<lru::LruCache<ObjectId, CommitInfo>>,
    /// The line's commits with the environments they affect, computed once.
    facts: history::FactsCache,
    refresh_state: RwLock<RefreshState>,
    /// Refreshes asked for without waiting (webhooks, the timer).
    refresh_queue: refresher::RefreshQueue,
    /// Refreshes that ran since start-up, for `envline_refreshes_total`.
    refreshes: AtomicU64,
    tokens: Mutex<HashMap<String, (Principal, Instant)>>,
    /// Wakes the auto-promotion task.
    pub auto_promote: tokio::sync::Notify,
    /// Tells live pages that something changed (the new generation).
    changes: tokio::sync::broadcast::Sender<u64>,
    /// Turns true when the server stops, so live streams end and let it.
    stopping: tokio::sync::watch::Sender<bool>,
    login_limiter: session::LoginLimiter,
    /// Whether the remote takes the audit anchor.
    anchoring: anchor::Anchoring,
    /// The audit check's last answer (see [`Engine::audit_check`]).
    audit_checked: tokio::sync::Mutex<Option<AuditChecked>>,
    /// The running incident, if hotfix mode is on (S4).
    hotfix: RwLock<Option<envline_api::IncidentView>>,
    /// The pipeline as it stands: its root is the hotfix branch in hotfix mode.
    effective: RwLock<Arc<pipeline::Pipeline>>,
    /// Automatic promotions whose push failed, backing off.
    auto_failures: ops::auto::AutoFailures,
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
        let effective = Arc::new(config.pipeline.clone());
        let running = store::running_incident(&pool)
            .await
            .map_err(|e| format!("cannot read the running incident: {e}"))?;
        let engine = Arc::new(Engine {
            config,
            git: Arc::new(git),
            pool,
            ref_lock: tokio::sync::Mutex::new(()),
            generation: AtomicU64::new(1),
            snapshot: RwLock::new(None),
            line: Mutex::new(Arc::new(Line::default())),
            commits: Mutex::new(lru::LruCache::new(
                std::num::NonZeroUsize::new(history::FACTS_KEPT).expect("not zero"),
            )),
            facts: history::FactsCache::default(),
            refresh_state: RwLock::new(RefreshState::default()),
            refresh_queue: refresher::RefreshQueue::default(),
            refreshes: AtomicU64::new(0),
            tokens: Mutex::new(HashMap::new()),
            auto_promote: tokio::sync::Notify::new(),
            changes: tokio::sync::broadcast::channel(64).0,
            stopping: tokio::sync::watch::channel(false).0,
            login_limiter: session::LoginLimiter::default(),
            auto_failures: ops::auto::AutoFailures::default(),
            anchoring: anchor::Anchoring::default(),
            audit_checked: tokio::sync::Mutex::new(None),
            hotfix: RwLock::new(None),
            effective: RwLock::new(effective),
            _data_dir_lock: data_dir_lock,
            crash_at: std::env::var("ENVLINE_CRASH_AT")
                .ok()
                .filter(|s| !s.is_empty()),
        });
        // Hotfix mode survives a restart.
        engine.set_hotfix(running);
        // Changes whose push never settled (a crash) must not show as done
        // until the remote says they landed: put the clone's refs back first;
        // the refresh then settles them against the remote, if it answers.
        ops::journal::restore_pending(&engine)
            .await
            .map_err(|e| format!("cannot restore the clone's unsettled refs: {e}"))?;
        if let Err(e) = engine.refresh().await {
            tracing::warn!("first refresh failed: {e}");
        }
        Ok(engine)
    }

    /// The pipeline as it stands now: in hotfix mode its root stands for the
    /// hotfix branch (promotions from the root take the fix).
    pub fn pipeline_now(&self) -> Arc<pipeline::Pipeline> {
        self.effective.read().expect("lock").clone()
    }

    /// The running incident, if hotfix mode is on.
    pub fn hotfix(&self) -> Option<envline_api::IncidentView> {
        self.hotfix.read().expect("lock").clone()
    }

    /// Turns hotfix mode on (the incident running) or off (`None`).
    pub(crate) fn set_hotfix(&self, incident: Option<envline_api::IncidentView>) {
        let pipeline = match &incident {
            Some(i) => self.config.pipeline.with_root_branch(&i.branch),
            None => self.config.pipeline.clone(),
        };
        *self.effective.write().expect("lock") = Arc::new(pipeline);
        *self.hotfix.write().expect("lock") = incident;
    }

    /// Runs blocking git work off the async threads.
    pub async fn git<T: Send + 'static>(
        &self,
        f: impl FnOnce(&GitRepo) -> Result<T, GitError> + Send + 'static,
    ) -> Result<T, EngineError> {
        let git = self.git.clone();
        tokio::task::spawn_blocking(move || f(&git))
            .await?
            .map_err(EngineError::from)
    }

    /// Runs an operation in a task of its own, so a client that hangs up (an
    /// HTTP request or a server function dropped mid-way) cannot cancel it
    /// between the push and the record of what was pushed.
    pub async fn detached<T: Send + 'static>(
        op: impl Future<Output = Result<T, EngineError>> + Send + 'static,
    ) -> Result<T, EngineError> {
        tokio::spawn(op).await?
    }

    /// Marks cached views stale after a change, wakes auto-promotion and
    /// tells live pages.
    pub fn changed(&self) {
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        self.auto_promote.notify_one();
        // Nobody listening is fine.
        let _ = self.changes.send(generation);
    }

    /// Marks cached views stale and tells live pages, without waking
    /// auto-promotion (a refused or failed push changed no ref: retrying it
    /// at once would loop).
    pub fn touched(&self) {
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let _ = self.changes.send(generation);
    }

    /// Marks cached views stale without telling anyone (a refresh that found
    /// nothing new).
    fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// A stream of change notices for live pages (the generation after each change).
    /// The address people open: `server.public_url`, else the listen address.
    pub fn public_url(&self) -> String {
        self.config
            .server
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.config.server.listen))
    }

    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Tells long-lived streams that the server is stopping.
    pub fn stop(&self) {
        self.stopping.send_replace(true);
    }

    /// Completes when the server is stopping.
    pub fn stopped(&self) -> impl Future<Output = ()> + Send + 'static + use<> {
        let mut rx = self.stopping.subscribe();
        async move {
            let _ = rx.wait_for(|stopping| *stopping).await;
        }
    }

    /// The current generation: it grows with every change.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
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

    /// Drops every cached token, after a change to people or tokens.
    fn forget_tokens(&self) {
        self.tokens.lock().expect("lock").clear();
    }

    /// The user a bearer token belongs to (cached for a few seconds).
    pub async fn principal_for_token(&self, token: &str) -> Result<Option<Principal>, EngineError> {
        let key = auth::digest(token);
        if let Some((p, at)) = self.tokens.lock().expect("lock").get(&key)
            && at.elapsed() < TOKEN_CACHE_TTL
        {
            return Ok(Some(p.clone()));
        }
        let found = auth::principal_for_token(&self.pool, token).await?;
        if let Some(p) = &found {
            self.tokens
                .lock()
                .expect("lock")
                .insert(key, (p.clone(), Instant::now()));
        }
        Ok(found)
    }

    fn commit_view(&self, id: ObjectId) -> Result<CommitView, GitError> {
        let info = {
            let mut cache = self.commits.lock().expect("lock");
            cache.get(&id).cloned()
        };
        let info = match info {
            Some(i) => i,
            None => {
                let i = self.git.commit_info(id)?;
                self.commits.lock().expect("lock").put(id, i.clone());
                i
            }
        };
        let full = id.to_string();
        Ok(CommitView {
            short: full[..10].to_string(),
            id: full,
            subject: info.subject,
            author: info.author,
            time: info.time,
        })
    }

    /// A commit as people see it.
    pub async fn commit(&self, id: ObjectId) -> Result<CommitView, EngineError> {
        Ok(tokio::task::block_in_place(|| self.commit_view(id))?)
    }

    /// Where every environment stands: cached until something changes.
    pub async fn pipeline(&self) -> Result<Arc<PipelineView>, EngineError> {
        let generation = self.generation.load(Ordering::SeqCst);
        if let Some((g, view)) = &*self.snapshot.read().expect("lock")
            && *g == generation
        {
            return Ok(view.clone());
        }
        let view = Arc::new(self.compute_pipeline().await?);
        *self.snapshot.write().expect("lock") = Some((generation, view.clone()));
        Ok(view)
    }

    async fn compute_pipeline(&self) -> Result<PipelineView, EngineError> {
        let engine_git = self.git.clone();
        let pipeline = self.pipeline_now();
        let previous = self.line.lock().expect("lock").clone();
        let (line, standings) = tokio::task::block_in_place(|| -> Result<_, GitError> {
            let tips = engine_git.branch_tips()?;
            let line = match tips.get(pipeline.root_branch()) {
                Some(root) if previous.tip() == Some(*root) => previous.clone(),
                Some(root) => Arc::new(Line::build(&engine_git, *root, Some(&previous))?),
                None => Arc::new(Line::default()),
            };
            let standings = line::standings(&engine_git, &pipeline, &tips, &line)?;
            Ok((line, standings))
        })?;
        let holds = store::active_holds(&self.pool).await?;
        let mut environments = Vec::with_capacity(standings.len());
        for standing in standings {
            let env = self.config.pipeline.environment(&standing.name);
            let head = match standing.head {
                Some(id) => Some(tokio::task::block_in_place(|| self.commit_view(id))?),
                None => None,
            };
            let verification = match (&head, env) {
                (Some(h), Some(_)) => {
                    store::latest_verification(&self.pool, &standing.name, &h.id).await?
                }
                _ => None,
            };
            let open_request = match env {
                Some(_) => store::open_request_for(&self.pool, &standing.name).await?,
                None => None,
            };
            environments.push(EnvironmentView {
                auto_promotion_failure: self.auto_failures.shown(&standing.name),
                is_root: env.is_none(),
                // In hotfix mode the root's environments take the hotfix branch.
                from: env.map(|e| {
                    self.pipeline_now()
                        .branch_of(&e.from)
                        .filter(|_| e.from == self.config.pipeline.root())
                        .map(str::to_owned)
                        .unwrap_or_else(|| e.from.clone())
                }),
                requires: env.map(|e| e.requires.clone()).unwrap_or_default(),
                approvals: env.map(|e| e.approvals).unwrap_or(0),
                protected: env.map(|e| e.protected).unwrap_or(false),
                auto_promote: env.map(|e| e.auto_promote).unwrap_or(false),
                stage: env.map(|e| e.stage).unwrap_or(0),
                holds: holds
                    .iter()
                    .filter(|h| h.environment == standing.name)
                    .cloned()
                    .collect(),
                name: standing.name,
                branch: standing.branch,
                head,
                position: standing.position,
                on_line: standing.on_line,
                behind_from: standing.behind_from,
                ahead_of_from: standing.ahead_of_from,
                behind_root: standing.behind_root,
                verification,
                open_request,
            });
        }
        let merges = self.merge_summary(&line, &environments)?;
        *self.line.lock().expect("lock") = line;
        let refresh = self.refresh_state.read().expect("lock").clone();
        Ok(PipelineView {
            root: self.pipeline_now().root_branch().to_owned(),
            environments,
            merges,
            refreshed_at: refresh.at,
            refresh_error: refresh.error,
        })
    }

    /// Merge commits on the part of the line that not every environment has
    /// reached: counted, and the newest few named. What is already everywhere
    /// is history nobody can act on, and listing it would make the page as
    /// heavy as the repository is old.
    fn merge_summary(
        &self,
        line: &Line,
        environments: &[EnvironmentView],
    ) -> Result<MergeSummary, EngineError> {
        let lowest = environments
            .iter()
            .filter(|e| !e.is_root)
            .map(|e| e.position)
            .min()
            .flatten()
            .unwrap_or(0);
        let pending: Vec<ObjectId> = line
            .merges()
            .iter()
            .rev()
            .copied()
            .take_while(|m| line.position(m).is_some_and(|p| p > lowest))
            .collect();
        let mut newest = Vec::with_capacity(MERGES_LISTED);
        for id in pending.iter().take(MERGES_LISTED) {
            newest.push(tokio::task::block_in_place(|| self.commit_view(*id))?);
        }
        Ok(MergeSummary {
            count: pending.len(),
            newest,
        })
    }

    /// One page of the root branch's first-parent line, newest first:
    /// `limit` commits from `start` down. Each commit's files and affected
    /// environments are computed once and kept ([`history::FactsCache`]);
    /// a page then costs one database query for the verifications.
    pub async fn timeline(
        &self,
        limit: usize,
        start: TimelineStart,
    ) -> Result<TimelinePage, EngineError> {
        let view = self.pipeline().await?;
        let line = self.line.lock().expect("lock").clone();
        let offset = match start {
            TimelineStart::Tip => 0,
            TimelineStart::Before(b) => {
                let id = self.resolve(&b).await?;
                let pos = line.position(&id).ok_or_else(|| {
                    EngineError::Unprocessable {
                        code: envline_api::ErrorCode::OffLine,
                        message: format!(
                            "`before` = {b} is not on the root branch's line; give a commit the line lists"
                        ),
                    }
                })?;
                line.len() - pos
            }
            TimelineStart::At(position) => {
                if position >= line.len() {
                    return Err(EngineError::NotFound(format!(
                        "`position` = {position} is past the line's newest commit ({}); positions count from 0 at the oldest commit",
                        line.len().saturating_sub(1)
                    )));
                }
                line.len() - 1 - position
            }
        };
        let ids: Vec<ObjectId> = line.newest_first(offset).take(limit).collect();
        let facts = self.commit_facts(ids.clone()).await?;
        let full: Vec<String> = ids.iter().map(|id| id.to_string()).collect();
        let mut verifications = store::verifications_of_commits(&self.pool, &full).await?;
        let mut commits = Vec::with_capacity(ids.len());
        for ((id, full), facts) in ids.iter().zip(full).zip(facts) {
            let environments = view
                .environments
                .iter()
                .filter(|e| !e.is_root && e.head.as_ref().map(|h| h.id.as_str()) == Some(&full))
                .map(|e| e.name.clone())
                .collect();
            let info = &facts.info;
            commits.push(TimelineEntry {
                position: line.position(id).unwrap_or_default(),
                is_merge: info.parent_count > 1,
                commit: CommitView {
                    short: full[..10].to_string(),
                    subject: info.subject.clone(),
                    author: info.author.clone(),
                    time: info.time,
                    id: full.clone(),
                },
                environments,
                affects: facts.affects.clone(),
                verifications: verifications.remove(&full).unwrap_or_default(),
            });
        }
        Ok(TimelinePage {
            commits,
            total: line.len(),
            off_line: self.off_line(&view, &line).await?,
        })
    }

    /// The environments off the line, each with its stray commits.
    async fn off_line(
        &self,
        view: &PipelineView,
        line: &Line,
    ) -> Result<Vec<OffLineEnvironment>, EngineError> {
        const STRAY_LISTED: usize = 20;
        let Some(root) = line.tip() else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for env in view
            .environments
            .iter()
            .filter(|e| !e.is_root && !e.on_line)
        {
            let Some(head) = env.head.clone() else {
                continue;
            };
            let id = self.resolve(&head.id).await?;
            let (stray, stray_total, base) = self
                .git(move |git| {
                    let (stray, total) = git.commits_between(root, id, STRAY_LISTED)?;
                    Ok((stray, total, git.merge_base(id, root)?))
                })
                .await?;
            let mut listed = Vec::with_capacity(stray.len());
            for c in stray {
                listed.push(self.commit(c).await?);
            }
            let left_at = match base {
                Some(b) => Some(self.commit(b).await?),
                None => None,
            };
            out.push(OffLineEnvironment {
                environment: env.name.clone(),
                head,
                stray: listed,
                stray_total,
                left_at_position: base.and_then(|b| line.position(&b)),
                left_at,
            });
        }
        Ok(out)
    }

    /// S2: the environments a commit's changes affect (see [`history::affected`]).
    pub async fn affected_environments(&self, id: ObjectId) -> Result<Vec<String>, EngineError> {
        let facts = self.commit_facts(vec![id]).await?;
        Ok(facts
            .into_iter()
            .next()
            .map(|f| f.affects.clone())
            .unwrap_or_default())
    }

    /// The facts of `ids`, computed once per commit and then kept.
    async fn commit_facts(
        &self,
        ids: Vec<ObjectId>,
    ) -> Result<Vec<Arc<history::CommitFacts>>, EngineError> {
        let names = self.config.pipeline.names();
        let git = self.git.clone();
        let facts = tokio::task::block_in_place(|| self.facts.facts(&git, &ids, &names))?;
        Ok(facts)
    }

    /// Resolves a commit id given by a person or script.
    pub async fn resolve(&self, spec: &str) -> Result<ObjectId, EngineError> {
        let spec_owned = spec.to_owned();
        if !git::looks_like_commit_id(spec) {
            return Err(EngineError::BadInput(format!(
                "`{spec}` is not a commit id: give 7 to 40 hex digits"
            )));
        }
        self.git(move |git| git.resolve_commit(&spec_owned)).await
    }

    /// Fetches the remote, finishes interrupted operations, and logs every
    /// branch that moved without Envline as out-of-band (I5).
    pub async fn refresh(&self) -> Result<(), EngineError> {
        let _guard = self.ref_lock.lock().await;
        let before = self.git(|git| git.branch_tips()).await?;
        let fetched = self.git(|git| git.fetch()).await;
        if fetched.is_ok() {
            self.anchoring.fetched();
        }
        let error_changed = {
            let mut state = self.refresh_state.write().expect("lock");
            state.at = Some(store::now());
            let error = fetched.as_ref().err().map(|e| e.to_string());
            let changed = state.error != error;
            state.error = error;
            changed
        };
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
            self.changed();
        } else {
            self.invalidate();
        }
        self.refreshes.fetch_add(1, Ordering::SeqCst);
        result
    }

    /// How many refreshes ran since start-up (timed, asked for by webhooks
    /// or `POST /api/v1/refresh`, and the first one): what shows whether
    /// webhooks are deduplicated.
    pub fn refreshes(&self) -> u64 {
        self.refreshes.load(Ordering::SeqCst)
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

    /// Notifications being retried, newest first: what the Admin page warns of.
    pub async fn failing_notifications(
        &self,
        limit: i64,
    ) -> Result<Vec<envline_api::NotificationView>, EngineError> {
        Ok(notify::list(
            &self.pool,
            Some(envline_api::NotificationState::Failing),
            limit,
        )
        .await?)
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
            written: store::written_stamp(&self.config.database_file()),
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
