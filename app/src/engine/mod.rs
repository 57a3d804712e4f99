//! The promotion engine: plain Rust, no Leptos. Git, the pipeline rules,
//! the store, people and the operations that tie them together.
//!
//! [`Engine`] is what the server keeps in its state: the REST handlers and
//! the server functions are thin adapters over its methods.

pub mod audit;
pub mod auth;
pub mod config;
pub mod demo;
pub mod error;
pub mod git;
pub mod line;
pub mod ops;
pub mod pipeline;
pub mod rules;
pub mod store;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use gix::ObjectId;
use sqlx::SqlitePool;

use crate::model::{CommitView, EnvironmentView, PipelineView, TimelineEntry, VerificationView};
use auth::Principal;
use config::Config;
pub use error::EngineError;
use git::{CommitInfo, GitError, GitRepo};
use line::Line;

/// How long a token's user and roles are remembered before being read again.
const TOKEN_CACHE_TTL: Duration = Duration::from_secs(5);

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
    /// Serializes every ref-moving operation and refresh (I6 inside one process;
    /// the CAS on the clone and the lease on the remote guard against others).
    write_lock: tokio::sync::Mutex<()>,
    /// Bumped on every change to refs or to the gates' evidence.
    generation: AtomicU64,
    snapshot: RwLock<Option<(u64, Arc<PipelineView>)>>,
    /// Shared, not copied: rebuilt only when the root moves.
    line: Mutex<Arc<Line>>,
    commits: Mutex<HashMap<ObjectId, CommitInfo>>,
    refresh_state: RwLock<RefreshState>,
    tokens: Mutex<HashMap<String, (Principal, Instant)>>,
    /// Wakes the auto-promotion task.
    pub auto_promote: tokio::sync::Notify,
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
        let pool = store::open(&config.database_file()).await.map_err(|e| {
            format!(
                "cannot open database {}: {e}",
                config.database_file().display()
            )
        })?;
        let url = config.repository.url.clone();
        let dir = config.clone_dir();
        let timeout = Duration::from_secs(config.repository.network_timeout_seconds);
        let git = tokio::task::spawn_blocking(move || {
            GitRepo::clone_or_open(&url, &dir).map(|g| g.with_network_timeout(timeout))
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("cannot clone {}: {e}", config.repository.url))?;
        let engine = Arc::new(Engine {
            config,
            git: Arc::new(git),
            pool,
            write_lock: tokio::sync::Mutex::new(()),
            generation: AtomicU64::new(1),
            snapshot: RwLock::new(None),
            line: Mutex::new(Arc::new(Line::default())),
            commits: Mutex::new(HashMap::new()),
            refresh_state: RwLock::new(RefreshState::default()),
            tokens: Mutex::new(HashMap::new()),
            auto_promote: tokio::sync::Notify::new(),
            crash_at: std::env::var("ENVLINE_CRASH_AT")
                .ok()
                .filter(|s| !s.is_empty()),
        });
        if let Err(e) = engine.refresh().await {
            tracing::warn!("first refresh failed: {e}");
        }
        Ok(engine)
    }

    /// Runs blocking git work off the async threads.
    pub async fn git<T: Send + 'static>(
        &self,
        f: impl FnOnce(&GitRepo) -> Result<T, GitError> + Send + 'static,
    ) -> Result<T, EngineError> {
        let git = self.git.clone();
        tokio::task::spawn_blocking(move || f(&git))
            .await
            .map_err(|e| EngineError::Internal(e.to_string()))?
            .map_err(EngineError::from)
    }

    /// Marks cached views stale after a change.
    pub fn changed(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.auto_promote.notify_one();
    }

    /// Stops the process at a named step, for crash-safety tests.
    fn crash_point(&self, step: &str) {
        if self.crash_at.as_deref() == Some(step) {
            eprintln!("ENVLINE_CRASH_AT={step}: aborting");
            std::process::abort();
        }
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
            let cache = self.commits.lock().expect("lock");
            cache.get(&id).cloned()
        };
        let info = match info {
            Some(i) => i,
            None => {
                let i = self.git.commit_info(id)?;
                self.commits.lock().expect("lock").insert(id, i.clone());
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
        let pipeline = self.config.pipeline.clone();
        let previous = self.line.lock().expect("lock").clone();
        let (line, standings) = tokio::task::block_in_place(|| -> Result<_, GitError> {
            let tips = engine_git.branch_tips()?;
            let line = match tips.get(pipeline.root()) {
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
                (Some(h), Some(_)) => store::latest_verification(&self.pool, &standing.name, &h.id)
                    .await?
                    .map(VerificationView::from),
                _ => None,
            };
            let open_request = match env {
                Some(_) => store::open_request_for(&self.pool, &standing.name).await?,
                None => None,
            };
            environments.push(EnvironmentView {
                is_root: env.is_none(),
                from: env.map(|e| e.from.clone()),
                requires: env.map(|e| e.requires.clone()).unwrap_or_default(),
                approvals: env.map(|e| e.approvals).unwrap_or(0),
                protected: env.map(|e| e.protected).unwrap_or(false),
                auto_promote: env.map(|e| e.auto_promote).unwrap_or(false),
                stage: env.map(|e| e.stage).unwrap_or(0),
                holds: holds
                    .iter()
                    .filter(|h| h.environment == standing.name)
                    .cloned()
                    .map(Into::into)
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
        let merge_commits = line.merges().iter().map(|m| m.to_string()).collect();
        *self.line.lock().expect("lock") = line;
        let refresh = self.refresh_state.read().expect("lock").clone();
        Ok(PipelineView {
            root: self.config.pipeline.root().to_owned(),
            environments,
            merge_commits,
            refreshed_at: refresh.at,
            refresh_error: refresh.error,
        })
    }

    /// The root branch's first-parent line, newest first.
    pub async fn timeline(
        &self,
        limit: usize,
        before: Option<&str>,
    ) -> Result<Vec<TimelineEntry>, EngineError> {
        let view = self.pipeline().await?;
        let line = self.line.lock().expect("lock").clone();
        let offset = match before {
            Some(b) => {
                let id = self.resolve(b).await?;
                let pos = line.position(&id).ok_or_else(|| {
                    EngineError::BadInput(format!(
                        "`before` = {b} is not on the root branch's line"
                    ))
                })?;
                line.len() - pos
            }
            None => 0,
        };
        let ids: Vec<ObjectId> = line.newest_first(offset).take(limit).collect();
        let merges: std::collections::HashSet<ObjectId> = line.merges().iter().copied().collect();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let commit = tokio::task::block_in_place(|| self.commit_view(id))?;
            let environments = view
                .environments
                .iter()
                .filter(|e| {
                    !e.is_root && e.head.as_ref().map(|h| h.id.as_str()) == Some(commit.id.as_str())
                })
                .map(|e| e.name.clone())
                .collect();
            let affects = self.affected_environments(id).await?;
            let verifications = store::verifications_of(&self.pool, &commit.id)
                .await?
                .into_iter()
                .map(Into::into)
                .collect();
            out.push(TimelineEntry {
                position: line.position(&id).unwrap_or_default(),
                is_merge: merges.contains(&id),
                commit,
                environments,
                affects,
                verifications,
            });
        }
        Ok(out)
    }

    /// S2: the environments a commit's changes affect. `envs/<env>/…` affects
    /// that environment; `variants/<v>/…` every environment whose
    /// `envs/<env>/kustomization.yml` lists that component; anything else all.
    pub async fn affected_environments(&self, id: ObjectId) -> Result<Vec<String>, EngineError> {
        let names: Vec<String> = self
            .config
            .pipeline
            .environments()
            .iter()
            .map(|e| e.name.clone())
            .collect();
        self.git(move |git| {
            let paths = git.changed_paths(id)?;
            let mut affected = std::collections::BTreeSet::new();
            for path in &paths {
                let parts: Vec<&str> = path.split('/').collect();
                match parts.as_slice() {
                    ["envs", env, _, ..] => {
                        if names.iter().any(|n| n == env) {
                            affected.insert(env.to_string());
                        }
                    }
                    ["variants", variant, _, ..] => {
                        for name in &names {
                            let file =
                                git.read_file(id, &format!("envs/{name}/kustomization.yml"))?;
                            if file.is_some_and(|k| k.contains(&format!("variants/{variant}"))) {
                                affected.insert(name.clone());
                            }
                        }
                    }
                    _ => return Ok(names.clone()),
                }
            }
            let order: Vec<String> = names
                .iter()
                .filter(|n| affected.contains(*n))
                .cloned()
                .collect();
            Ok(order)
        })
        .await
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
        let _guard = self.write_lock.lock().await;
        let fetched = self.git(|git| git.fetch()).await;
        {
            let mut state = self.refresh_state.write().expect("lock");
            state.at = Some(store::now());
            state.error = fetched.as_ref().err().map(|e| e.to_string());
        }
        let result = match fetched {
            Ok(()) => match ops::reconcile_intents(self).await {
                Ok(()) => ops::record_observations(self).await,
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        self.changed();
        result
    }
}
