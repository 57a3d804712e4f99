//! The pipeline view service: where every environment stands, the root
//! branch's line page by page, and the commits people see, read from the
//! clone and the store and kept until the next change (the generation of
//! [`Changes`]) so that reading them is cheap however many pages ask.

use std::sync::{Arc, Mutex, RwLock};

use crate::store::Pool;
use gix::ObjectId;

use envline_api::{
    CommitView, EnvironmentView, MergeSummary, OffLineEnvironment, PipelineView, TimelineEntry,
    TimelinePage, TimelineStart,
};

use crate::changes::Changes;
use crate::config::Config;
use crate::git::{self, CommitInfo, GitError, GitRepo};
use crate::hotfix_mode::HotfixMode;
use crate::line::{self, Line};
use crate::ops::auto::AutoFailures;
use crate::refresher::Refresher;
use crate::{EngineError, history, store};

/// How many merge commits the pipeline lists by name (the rest are counted).
const MERGES_LISTED: usize = 5;

/// The pipeline view service (see the module).
pub struct PipelineViews {
    /// What the views are read from.
    from: ViewSources,
    /// The last view built, and the generation it was built at.
    snapshot: RwLock<Option<(u64, Arc<PipelineView>)>>,
    /// Shared, not copied: rebuilt only when the root moves.
    line: Mutex<Arc<Line>>,
    /// Subject, author and time of commits read lately (bounded).
    commits: Mutex<lru::LruCache<ObjectId, CommitInfo>>,
    /// The line's commits with the environments they affect, computed once.
    facts: history::FactsCache,
}

/// What the pipeline view service reads from, shared with the rest of the engine.
pub(crate) struct ViewSources {
    pub config: Arc<Config>,
    pub git: Arc<GitRepo>,
    pub pool: Pool,
    pub changes: Arc<Changes>,
    pub refresher: Arc<Refresher>,
    pub mode: Arc<HotfixMode>,
    pub auto_failures: Arc<AutoFailures>,
}

impl PipelineViews {
    /// A view service over `sources`, its caches empty.
    pub(crate) fn new(from: ViewSources) -> PipelineViews {
        PipelineViews {
            from,
            snapshot: RwLock::new(None),
            line: Mutex::new(Arc::new(Line::default())),
            commits: Mutex::new(lru::LruCache::new(
                std::num::NonZeroUsize::new(history::FACTS_KEPT).expect("not zero"),
            )),
            facts: history::FactsCache::default(),
        }
    }

    fn commit_view(&self, id: ObjectId) -> Result<CommitView, GitError> {
        let info = {
            let mut cache = self.commits.lock().expect("lock");
            cache.get(&id).cloned()
        };
        let info = match info {
            Some(i) => i,
            None => {
                let i = self.from.git.commit_info(id)?;
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
        let generation = self.from.changes.generation();
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
        let engine_git = self.from.git.clone();
        let pipeline = self.from.mode.pipeline_now();
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
        let holds = store::active_holds(&self.from.pool).await?;
        let mut environments = Vec::with_capacity(standings.len());
        for standing in standings {
            let env = self.from.config.pipeline.environment(&standing.name);
            let head = match standing.head {
                Some(id) => Some(tokio::task::block_in_place(|| self.commit_view(id))?),
                None => None,
            };
            let verification = match (&head, env) {
                (Some(h), Some(_)) => {
                    store::latest_verification(&self.from.pool, &standing.name, &h.id).await?
                }
                _ => None,
            };
            let open_request = match env {
                Some(_) => store::open_request_for(&self.from.pool, &standing.name).await?,
                None => None,
            };
            environments.push(EnvironmentView {
                auto_promotion_failure: self.from.auto_failures.shown(&standing.name),
                is_root: env.is_none(),
                // In hotfix mode the root's environments take the hotfix branch.
                from: env.map(|e| {
                    self.from
                        .mode
                        .pipeline_now()
                        .branch_of(&e.from)
                        .filter(|_| e.from == self.from.config.pipeline.root())
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
        let refresh = self.from.refresher.last();
        Ok(PipelineView {
            root: self.from.mode.pipeline_now().root_branch().to_owned(),
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
        let mut verifications = store::verifications_of_commits(&self.from.pool, &full).await?;
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
            let (stray, stray_total, base) = with_git(&self.from.git, move |git| {
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
        let names = self.from.config.pipeline.names();
        let git = self.from.git.clone();
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
        with_git(&self.from.git, move |git| git.resolve_commit(&spec_owned)).await
    }
}

/// Runs blocking git work off the async threads.
pub(crate) async fn with_git<T: Send + 'static>(
    git: &Arc<GitRepo>,
    f: impl FnOnce(&GitRepo) -> Result<T, GitError> + Send + 'static,
) -> Result<T, EngineError> {
    let git = git.clone();
    tokio::task::spawn_blocking(move || f(&git))
        .await?
        .map_err(EngineError::from)
}
