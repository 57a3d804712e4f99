//! The only module that touches git: reading the line with `gix`, moving
//! refs with compare-and-swap, merging trees, and calling the `git` command
//! line for the network (clone, fetch, push), which keeps the user's ssh and
//! https credential set-up working.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use gix::ObjectId;
use gix::refs::Target;
use gix::refs::transaction::{Change, LogChange, PreviousValue, RefEdit, RefLog};

/// What went wrong talking to git, with what a person needs to act on it.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// The repository could not be read or written: a fault, with its cause.
    #[error("git repository error: {0}")]
    Repository(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The `git` command could not be started.
    #[error("cannot run git: {0}")]
    Spawn(#[from] std::io::Error),
    #[error(
        "`{0}` is not a commit in the repository; give a full or abbreviated (7+ hex digits) commit id that has been pushed"
    )]
    UnknownCommit(String),
    #[error(
        "branch `{branch}` moved meanwhile: expected {expected}, found {actual}; refresh and try again"
    )]
    Conflict {
        branch: String,
        expected: String,
        actual: String,
    },
    #[error("`{prefix}` names several commits ({}); give more hex digits", .candidates.join(", "))]
    AmbiguousId {
        prefix: String,
        candidates: Vec<String>,
    },
    /// git could not connect at all: nothing was sent.
    #[error("the remote cannot be reached: {0}")]
    NotConnected(String),
    /// The connection failed after it was made: a push may or may not have landed.
    #[error("the remote cannot be reached: {0}")]
    RemoteUnreachable(String),
    /// A network command ran out of time and was stopped. For a push the
    /// outcome is not known: the remote may still take it.
    #[error("git did not finish within {0} s and was stopped")]
    Timeout(u64),
    #[error("the remote moved meanwhile (someone pushed): {0}")]
    RemoteMoved(String),
    #[error("the remote refused the update: {0}")]
    RemoteRejected(String),
    #[error("the change does not apply cleanly; conflicting paths: {}", .0.join(", "))]
    MergeConflict(Vec<String>),
    /// Cherry-picking a commit whose change the target already has.
    #[error("{0}'s change is already there: picking it would change nothing")]
    AlreadyApplied(String),
    /// Replaying a commit onto another stopped on conflicting paths.
    #[error("{commit} does not apply on the fix; conflicting paths: {}", .paths.join(", "))]
    RebaseConflict {
        commit: ObjectId,
        subject: String,
        paths: Vec<String>,
    },
}

/// A fault of the repository, keeping its cause.
fn repo_err(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> GitError {
    GitError::Repository(e.into())
}

/// What [`GitRepo::first_parent_walk`] found.
#[derive(Default)]
pub struct FirstParentWalk {
    /// The commit-graph `in_graph` indexes into.
    pub graph: Option<gix::commitgraph::Graph>,
    /// Commits newer than the graph, newest first, with their parent counts.
    pub newer: Vec<(ObjectId, usize)>,
    /// Graph positions, newest first, with their parent counts.
    pub in_graph: Vec<(u32, usize)>,
}

/// Whether `spec` has the form of a commit id people may give: 7 to 40 hex
/// digits (never a revision expression like `main~1` or a ref name).
pub fn looks_like_commit_id(spec: &str) -> bool {
    (7..=40).contains(&spec.len()) && spec.bytes().all(|b| b.is_ascii_hexdigit())
}

/// One compare-and-swap ref change: `branch` moves from `old` (None: must not exist) to `new`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RefChange {
    /// A branch name, or a full ref name (`refs/envline/audit`); branch
    /// names never start with `refs/`.
    pub branch: String,
    pub old: Option<ObjectId>,
    pub new: ObjectId,
}

impl RefChange {
    /// The full name of the ref it changes.
    pub fn ref_name(&self) -> String {
        full_ref_name(&self.branch)
    }
}

/// `refs/heads/<branch>`, or the name itself when it is already a full ref name.
fn full_ref_name(name: &str) -> String {
    if name.starts_with("refs/") {
        name.to_owned()
    } else {
        format!("refs/heads/{name}")
    }
}

/// Where the audit log's anchor lives, on the remote and in the clone.
pub const AUDIT_REF: &str = "refs/envline/audit";

/// A file that differs between two trees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeChange {
    pub path: String,
    /// Where the file was before, when it was renamed.
    pub previous_path: Option<String>,
    /// The blob before (`None`: added).
    pub old: Option<ObjectId>,
    /// The blob after (`None`: deleted).
    pub new: Option<ObjectId>,
}

/// What the pipeline page and the API show about a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitInfo {
    pub id: ObjectId,
    pub subject: String,
    pub author: String,
    pub author_email: String,
    /// Seconds since the Unix epoch (author time).
    pub time: i64,
    pub parent_count: usize,
}

/// Who a commit or reflog entry is attributed to.
#[derive(Debug, Clone)]
pub struct Person {
    pub name: String,
    pub email: String,
    /// Seconds since the epoch; `None` means now.
    pub time: Option<i64>,
}

impl Person {
    pub fn envline(actor: &str) -> Person {
        Person {
            name: format!("{actor} via Envline"),
            email: "envline@localhost".into(),
            time: None,
        }
    }

    fn signature(&self) -> gix::actor::Signature {
        let seconds = self.time.unwrap_or_else(|| chrono::Utc::now().timestamp());
        gix::actor::Signature {
            name: self.name.as_str().into(),
            email: self.email.as_str().into(),
            time: gix::date::Time::new(seconds, 0),
        }
    }
}

/// The bare repository Envline reads and changes: its own clone of the remote
/// (or, in tests and the demo, any bare repository).
pub struct GitRepo {
    repo: gix::ThreadSafeRepository,
    dir: PathBuf,
    /// The limit for fetch, ls-remote and push.
    network_timeout: Duration,
}

impl GitRepo {
    /// Opens an existing bare repository.
    pub fn open(dir: &Path) -> Result<GitRepo, GitError> {
        let repo = gix::ThreadSafeRepository::open(dir).map_err(repo_err)?;
        Ok(GitRepo {
            repo,
            dir: dir.to_owned(),
            network_timeout: NETWORK_TIMEOUT,
        })
    }

    /// Creates an empty bare repository (the demo's remote, tests).
    pub fn init_bare(dir: &Path) -> Result<GitRepo, GitError> {
        gix::init_bare(dir).map_err(repo_err)?;
        let repo = Self::open(dir)?;
        repo.set_config("core.logAllRefUpdates", "always")?;
        Ok(repo)
    }

    /// Opens the clone at `dir`, or makes it from `url` with the git command
    /// line. The clone mirrors the remote's branches: every fetch makes
    /// `refs/heads/*` equal to the remote's.
    pub fn clone_or_open(url: &str, dir: &Path) -> Result<GitRepo, GitError> {
        if dir.join("HEAD").exists() {
            let repo = Self::open(dir)?;
            repo.set_config("remote.origin.url", url)?;
            // Clones made before the audit anchor existed fetch it too.
            repo.add_config("remote.origin.fetch", "+refs/envline/*:refs/envline/*")?;
            return Ok(repo);
        }
        let parent = dir.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent).map_err(repo_err)?;
        let tmp = parent.join(format!(
            ".{}.cloning",
            dir.file_name().unwrap_or_default().to_string_lossy()
        ));
        let _ = std::fs::remove_dir_all(&tmp);
        let mut cmd = Command::new("git");
        cmd.args(["clone", "--bare", "--quiet", "--", url])
            .arg(&tmp);
        let out = run_network(cmd, CLONE_TIMEOUT);
        match out {
            Ok(out) if out.success => {}
            Ok(out) => {
                let _ = std::fs::remove_dir_all(&tmp);
                return Err(classify_network_error(&out.stderr));
            }
            Err(e) => {
                let _ = std::fs::remove_dir_all(&tmp);
                return Err(e);
            }
        }
        std::fs::rename(&tmp, dir).map_err(repo_err)?;
        let repo = Self::open(dir)?;
        repo.set_config("remote.origin.fetch", "+refs/heads/*:refs/heads/*")?;
        repo.add_config("remote.origin.fetch", "+refs/envline/*:refs/envline/*")?;
        repo.set_config("core.logAllRefUpdates", "always")?;
        repo.set_config("fetch.writeCommitGraph", "true")?;
        repo.set_config("gc.auto", "0")?;
        repo.fetch()?;
        // Later fetches keep it current (fetch.writeCommitGraph); walks of the line read it.
        let _ = Command::new("git")
            .arg("--git-dir")
            .arg(dir)
            .args(["commit-graph", "write", "--reachable"])
            .output();
        Ok(repo)
    }

    fn set_config(&self, key: &str, value: &str) -> Result<(), GitError> {
        let out = Command::new("git")
            .arg("--git-dir")
            .arg(&self.dir)
            .args(["config", key, value])
            .output()?;
        if out.status.success() {
            Ok(())
        } else {
            Err(repo_err(
                String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            ))
        }
    }

    /// Adds a value to a multi-valued key, unless it is there already.
    fn add_config(&self, key: &str, value: &str) -> Result<(), GitError> {
        let out = Command::new("git")
            .arg("--git-dir")
            .arg(&self.dir)
            .args(["config", "--get-all", key])
            .output()?;
        if String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l == value)
        {
            return Ok(());
        }
        let out = Command::new("git")
            .arg("--git-dir")
            .arg(&self.dir)
            .args(["config", "--add", key, value])
            .output()?;
        if out.status.success() {
            Ok(())
        } else {
            Err(repo_err(
                String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            ))
        }
    }

    /// Sets how long fetch, ls-remote and push may take.
    pub fn with_network_timeout(mut self, limit: Duration) -> GitRepo {
        self.network_timeout = limit;
        self
    }

    /// The folder of the bare repository.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn local(&self) -> gix::Repository {
        let mut repo = self.repo.to_thread_local();
        repo.object_cache_size_if_unset(4 * 1024 * 1024);
        repo
    }

    /// Makes the clone's branches equal to the remote's (`git fetch --prune`).
    pub fn fetch(&self) -> Result<(), GitError> {
        let mut cmd = Command::new("git");
        cmd.arg("--git-dir")
            .arg(&self.dir)
            .args(["fetch", "--prune", "--quiet", "origin"]);
        let out = run_network(cmd, self.network_timeout)?;
        if out.success {
            Ok(())
        } else {
            Err(classify_network_error(&out.stderr))
        }
    }

    /// Fetches the remote's branches and audit anchor into `refs/fetched/`,
    /// moving none of the clone's own refs: operations pushing other
    /// branches meanwhile keep theirs, and each caller then takes the refs
    /// it holds the locks of with [`GitRepo::adopt_fetched`].
    pub fn fetch_staged(&self) -> Result<(), GitError> {
        let mut cmd = Command::new("git");
        cmd.arg("--git-dir").arg(&self.dir).args([
            "fetch",
            "--prune",
            "--quiet",
            "--no-write-fetch-head",
            // Only the refspecs given here: the configured ones would move
            // the clone's own branches too.
            "--refmap=",
            "origin",
            "+refs/heads/*:refs/fetched/heads/*",
            "+refs/envline/*:refs/fetched/envline/*",
        ]);
        let out = run_network(cmd, self.network_timeout)?;
        if out.success {
            Ok(())
        } else {
            Err(classify_network_error(&out.stderr))
        }
    }

    /// Moves each of `refs` (branch names, or full ref names such as
    /// [`AUDIT_REF`]) to where the last [`GitRepo::fetch_staged`] found it
    /// on the remote, deleting those the remote lacks. Returns the refs
    /// that moved.
    pub fn adopt_fetched(&self, refs: &[String]) -> Result<Vec<String>, GitError> {
        let repo = self.local();
        let mut edits = Vec::new();
        let mut moved = Vec::new();
        for name in refs {
            let full = full_ref_name(name);
            let staged = format!("refs/fetched/{}", &full["refs/".len()..]);
            let there = repo
                .try_find_reference(staged.as_str())
                .map_err(repo_err)?
                .and_then(|r| r.target().try_id().map(ToOwned::to_owned));
            let here = self.branch_tip(name)?;
            if here == there {
                continue;
            }
            let change = match there {
                Some(id) => Change::Update {
                    log: LogChange {
                        mode: RefLog::AndReference,
                        force_create_reflog: true,
                        message: "envline fetch".into(),
                    },
                    expected: PreviousValue::Any,
                    new: Target::Object(id),
                },
                None => Change::Delete {
                    expected: PreviousValue::Any,
                    log: RefLog::AndReference,
                },
            };
            edits.push(RefEdit {
                change,
                name: full.as_str().try_into().map_err(repo_err)?,
                deref: false,
            });
            moved.push(name.clone());
        }
        if !edits.is_empty() {
            let signature = Person::envline("envline").signature();
            let mut time_buf = gix::date::parse::TimeBuf::default();
            repo.edit_references_as(edits, Some(signature.to_ref(&mut time_buf)))
                .map_err(repo_err)?;
        }
        Ok(moved)
    }

    /// The remote's audit anchor tip, with its objects fetched into the clone
    /// (no ref moves); `None` when the remote has none.
    pub fn fetch_anchor(&self) -> Result<Option<ObjectId>, GitError> {
        let tip = self.remote_tips(&[AUDIT_REF.to_owned()])?.pop().flatten();
        let Some(tip) = tip else { return Ok(None) };
        if self.local().find_header(tip).is_err() {
            let mut cmd = Command::new("git");
            cmd.arg("--git-dir").arg(&self.dir).args([
                "fetch",
                "--quiet",
                "--no-write-fetch-head",
                "origin",
                AUDIT_REF,
            ]);
            let out = run_network(cmd, self.network_timeout)?;
            if !out.success {
                return Err(classify_network_error(&out.stderr));
            }
        }
        Ok(Some(tip))
    }

    /// The remote's tips of `branches` right now (`git ls-remote`); `None` where a branch is absent.
    pub fn remote_tips(&self, branches: &[String]) -> Result<Vec<Option<ObjectId>>, GitError> {
        let mut cmd = Command::new("git");
        cmd.arg("--git-dir")
            .arg(&self.dir)
            .args(["ls-remote", "origin"]);
        for b in branches {
            cmd.arg(full_ref_name(b));
        }
        let out = run_network(cmd, self.network_timeout)?;
        if !out.success {
            return Err(classify_network_error(&out.stderr));
        }
        let listed: HashMap<&str, &str> = out
            .stdout
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(id, name)| (name, id))
            .collect();
        Ok(branches
            .iter()
            .map(|b| {
                listed
                    .get(full_ref_name(b).as_str())
                    .and_then(|id| ObjectId::from_hex(id.as_bytes()).ok())
            })
            .collect())
    }

    /// The tip of each local branch.
    pub fn branch_tips(&self) -> Result<HashMap<String, ObjectId>, GitError> {
        let repo = self.local();
        let refs = repo.references().map_err(repo_err)?;
        let mut tips = HashMap::new();
        for reference in refs.local_branches().map_err(repo_err)? {
            let reference = reference.map_err(repo_err)?;
            if let Some(id) = reference.target().try_id() {
                tips.insert(reference.name().shorten().to_string(), id.to_owned());
            }
        }
        Ok(tips)
    }

    /// Whether the clone has the object `id`.
    pub fn has_object(&self, id: ObjectId) -> bool {
        self.local().find_header(id).is_ok()
    }

    /// The tip of one branch, if it exists.
    pub fn branch_tip(&self, branch: &str) -> Result<Option<ObjectId>, GitError> {
        let repo = self.local();
        let found = repo
            .try_find_reference(full_ref_name(branch).as_str())
            .map_err(repo_err)?;
        Ok(found.and_then(|r| r.target().try_id().map(ToOwned::to_owned)))
    }

    /// Resolves a commit id given by a person or a script: 7 to 40 hex digits,
    /// nothing else (no `main~1`, no ref names: a branch or tag that happens
    /// to be named like a short id is never taken), and it must name a
    /// commit. A prefix shared by several commits is refused with them listed.
    pub fn resolve_commit(&self, spec: &str) -> Result<ObjectId, GitError> {
        let spec = spec.trim().to_ascii_lowercase();
        if !looks_like_commit_id(&spec) {
            return Err(GitError::UnknownCommit(spec));
        }
        let repo = self.local();
        let is_commit = |id: &ObjectId| {
            repo.find_header(*id)
                .is_ok_and(|h| h.kind() == gix::object::Kind::Commit)
        };
        let id = if spec.len() == 40 {
            ObjectId::from_hex(spec.as_bytes())
                .map_err(|_| GitError::UnknownCommit(spec.clone()))?
        } else {
            let prefix = gix::hash::Prefix::from_hex(&spec)
                .map_err(|_| GitError::UnknownCommit(spec.clone()))?;
            let mut candidates = std::collections::HashSet::new();
            repo.objects
                .lookup_prefix(prefix, Some(&mut candidates))
                .map_err(repo_err)?;
            let mut commits: Vec<ObjectId> = candidates.into_iter().filter(is_commit).collect();
            commits.sort();
            match commits.len() {
                0 => return Err(GitError::UnknownCommit(spec)),
                1 => commits[0],
                _ => {
                    return Err(GitError::AmbiguousId {
                        prefix: spec,
                        candidates: commits.iter().map(|c| c.to_string()).collect(),
                    });
                }
            }
        };
        if !is_commit(&id) {
            return Err(GitError::UnknownCommit(spec));
        }
        Ok(id)
    }

    /// Subject, author and time of a commit.
    pub fn commit_info(&self, id: ObjectId) -> Result<CommitInfo, GitError> {
        let repo = self.local();
        let commit = repo.find_commit(id).map_err(repo_err)?;
        let message = commit.message().map_err(repo_err)?;
        let subject = message.summary().to_string();
        let author = commit.author().map_err(repo_err)?;
        let time = author.time().map(|t| t.seconds).unwrap_or(0);
        Ok(CommitInfo {
            id,
            subject,
            author: author.name.to_string(),
            author_email: author.email.to_string(),
            time,
            parent_count: commit.parent_ids().count(),
        })
    }

    /// The first-parent history from `tip`, newest first, with each
    /// commit's parent count; stops before the first commit `stop` accepts.
    pub fn first_parent_history(
        &self,
        tip: ObjectId,
        mut stop: impl FnMut(&ObjectId) -> bool,
    ) -> Result<Vec<(ObjectId, usize)>, GitError> {
        let repo = self.local();
        // The commit-graph (written on fetch) answers parents without decoding
        // commits; commits newer than it are decoded.
        let graph = repo.commit_graph_if_enabled().ok().flatten();
        let mut out = Vec::new();
        let mut next = Some(tip);
        while let Some(id) = next {
            if stop(&id) {
                break;
            }
            // Inside the graph, follow positions: no lookups, no decoding.
            if let Some(g) = graph.as_ref()
                && let Some(mut pos) = g.lookup(id)
            {
                next = None;
                loop {
                    let here = g.id_at(pos).to_owned();
                    if stop(&here) {
                        return Ok(out);
                    }
                    let mut first = None;
                    let mut count = 0;
                    for parent in g.commit_at(pos).iter_parents() {
                        let parent = parent.map_err(repo_err)?;
                        if first.is_none() {
                            first = Some(parent);
                        }
                        count += 1;
                    }
                    out.push((here, count));
                    match first {
                        Some(p) => pos = p,
                        None => break,
                    }
                }
                continue;
            }
            let commit = repo.find_commit(id).map_err(repo_err)?;
            let mut parents = commit.parent_ids();
            let first = parents.next().map(|p| p.detach());
            out.push((id, usize::from(first.is_some()) + parents.count()));
            next = first;
        }
        Ok(out)
    }

    /// `tip`'s whole first-parent history, for the line's index: the
    /// commits newer than the commit-graph as ids, then those in it as
    /// graph positions (a commit in the graph has all its ancestors there),
    /// each newest first with its number of parents. Inside the graph no
    /// commit is decoded and no id is read.
    pub fn first_parent_walk(&self, tip: ObjectId) -> Result<FirstParentWalk, GitError> {
        let repo = self.local();
        let graph = repo.commit_graph_if_enabled().ok().flatten();
        let mut walk = FirstParentWalk::default();
        let mut next = Some(tip);
        while let Some(id) = next {
            if let Some(g) = graph.as_ref()
                && let Some(start) = g.lookup(id)
            {
                // The graph orders commits by id, so following parents jumps
                // around it. One pass in order first copies each commit's
                // first parent and parent count into small tables; the chase
                // then stays in them.
                let n = g.num_commits() as usize;
                let mut first_parent = vec![u32::MAX; n];
                let mut parent_count = vec![0u8; n];
                for (pos, (first, count)) in
                    first_parent.iter_mut().zip(&mut parent_count).enumerate()
                {
                    let mut parents = g
                        .commit_at(gix::commitgraph::Position(pos as u32))
                        .iter_parents();
                    if let Some(p) = parents.next().transpose().map_err(repo_err)? {
                        *first = p.0;
                        *count = u8::try_from(1 + parents.count()).unwrap_or(u8::MAX);
                    }
                }
                walk.in_graph.reserve(n);
                let mut pos = start.0;
                loop {
                    walk.in_graph
                        .push((pos, usize::from(parent_count[pos as usize])));
                    match first_parent[pos as usize] {
                        u32::MAX => break,
                        p => pos = p,
                    }
                }
                break;
            }
            let commit = repo.find_commit(id).map_err(repo_err)?;
            let mut parents = commit.parent_ids();
            let first = parents.next().map(|p| p.detach());
            walk.newer
                .push((id, usize::from(first.is_some()) + parents.count()));
            next = first;
        }
        walk.graph = graph.filter(|_| !walk.in_graph.is_empty());
        Ok(walk)
    }

    /// Whether `ancestor` is `descendant` or one of its ancestors.
    pub fn is_ancestor(&self, ancestor: ObjectId, descendant: ObjectId) -> Result<bool, GitError> {
        if ancestor == descendant {
            return Ok(true);
        }
        let repo = self.local();
        match repo.merge_base(ancestor, descendant) {
            Ok(Some(base)) => Ok(base.detach() == ancestor),
            Ok(None) => Ok(false),
            Err(e) => Err(repo_err(e)),
        }
    }

    /// The best common ancestor of two commits, if any.
    pub fn merge_base(&self, one: ObjectId, two: ObjectId) -> Result<Option<ObjectId>, GitError> {
        let repo = self.local();
        repo.merge_base(one, two)
            .map(|base| base.map(|b| b.detach()))
            .map_err(repo_err)
    }

    /// How many commits `tip` has that `base` has not (`git rev-list --count base..tip`).
    pub fn count_commits_between(&self, base: ObjectId, tip: ObjectId) -> Result<usize, GitError> {
        let repo = self.local();
        let walk = repo
            .rev_walk([tip])
            .with_hidden([base])
            .all()
            .map_err(repo_err)?;
        let mut count = 0;
        for info in walk {
            info.map_err(repo_err)?;
            count += 1;
        }
        Ok(count)
    }

    /// Moves refs with compare-and-swap, all or none (I6). Each change names
    /// the value it replaces; when any ref moved meanwhile nothing changes
    /// and the answer is `Conflict`. The reflog records `actor` and `message`.
    pub fn update_refs(
        &self,
        changes: &[RefChange],
        actor: &str,
        message: &str,
    ) -> Result<(), GitError> {
        let repo = self.local();
        let mut edits = Vec::with_capacity(changes.len());
        for change in changes {
            edits.push(RefEdit {
                change: Change::Update {
                    log: LogChange {
                        mode: RefLog::AndReference,
                        force_create_reflog: true,
                        message: message.into(),
                    },
                    expected: match change.old {
                        Some(old) => PreviousValue::MustExistAndMatch(Target::Object(old)),
                        None => PreviousValue::MustNotExist,
                    },
                    new: Target::Object(change.new),
                },
                name: change.ref_name().try_into().map_err(repo_err)?,
                deref: false,
            });
        }
        let signature = Person::envline(actor).signature();
        let mut time_buf = gix::date::parse::TimeBuf::default();
        match repo.edit_references_as(edits, Some(signature.to_ref(&mut time_buf))) {
            Ok(_) => Ok(()),
            Err(e) => {
                for change in changes {
                    let actual = self.branch_tip(&change.branch)?;
                    if actual != change.old {
                        return Err(GitError::Conflict {
                            branch: change.branch.clone(),
                            expected: change
                                .old
                                .map(|o| o.to_string())
                                .unwrap_or_else(|| "no branch".into()),
                            actual: actual
                                .map(|o| o.to_string())
                                .unwrap_or_else(|| "no branch".into()),
                        });
                    }
                }
                Err(repo_err(e))
            }
        }
    }

    /// Pushes ref changes to the remote atomically, each guarded by
    /// `--force-with-lease=<ref>:<old>` so a concurrent push is never
    /// overwritten (I6 on the remote).
    pub fn push(&self, changes: &[RefChange]) -> Result<(), GitError> {
        let mut cmd = Command::new("git");
        cmd.arg("--git-dir")
            .arg(&self.dir)
            .args(["push", "--atomic", "--porcelain", "--quiet"])
            .env("GIT_TERMINAL_PROMPT", "0");
        for change in changes {
            let old = change.old.map(|o| o.to_string()).unwrap_or_default();
            cmd.arg(format!("--force-with-lease={}:{old}", change.ref_name()));
        }
        cmd.arg("origin");
        for change in changes {
            cmd.arg(format!("+{}:{}", change.new, change.ref_name()));
        }
        let out = run_network(cmd, self.network_timeout)?;
        if out.success {
            return Ok(());
        }
        let (stdout, stderr) = (out.stdout, out.stderr);
        let text = format!("{stdout}\n{stderr}");
        if text.contains("stale info") || text.contains("fetch first") {
            Err(GitError::RemoteMoved(summarize(&text)))
        } else if text.contains("[remote rejected]") || text.contains("hook declined") {
            Err(GitError::RemoteRejected(summarize(&text)))
        } else {
            Err(classify_network_error(&text))
        }
    }

    /// The commits on `tip`'s first-parent line after `fork`, oldest first;
    /// `None` when `fork` is not on that line.
    pub fn first_parent_since(
        &self,
        tip: ObjectId,
        fork: ObjectId,
    ) -> Result<Option<Vec<ObjectId>>, GitError> {
        let mut reached = false;
        let mut commits: Vec<ObjectId> = self
            .first_parent_history(tip, |id| {
                reached |= *id == fork;
                reached
            })?
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        if !reached && tip != fork {
            return Ok(None);
        }
        commits.reverse();
        Ok(Some(commits))
    }

    /// Replays `commits` (oldest first) one by one on `onto`, like `git
    /// rebase`: each commit's change relative to its first parent is merged
    /// (three-way, tree by tree) onto the result so far, keeping its author
    /// (name, email, time) and message. Returns each old commit with its new
    /// one. Moves no ref; on the first conflict nothing is kept and the
    /// commit and its paths are returned.
    pub fn rebase(
        &self,
        commits: &[ObjectId],
        onto: ObjectId,
        committer: &Person,
    ) -> Result<Vec<(ObjectId, ObjectId)>, GitError> {
        let repo = self.local();
        let options = repo.tree_merge_options().map_err(repo_err)?;
        let mut current = onto;
        let mut current_tree = repo
            .find_commit(onto)
            .map_err(repo_err)?
            .tree_id()
            .map_err(repo_err)?
            .detach();
        let committer = committer.signature();
        let mut mapping = Vec::with_capacity(commits.len());
        for &id in commits {
            let commit = repo.find_commit(id).map_err(repo_err)?;
            let their_tree = commit.tree_id().map_err(repo_err)?.detach();
            let base_tree = match commit.parent_ids().next() {
                Some(p) => repo
                    .find_commit(p.detach())
                    .map_err(repo_err)?
                    .tree_id()
                    .map_err(repo_err)?
                    .detach(),
                None => ObjectId::empty_tree(repo.object_hash()),
            };
            let labels = gix::merge::blob::builtin_driver::text::Labels {
                ancestor: Some("base".into()),
                current: Some("fix".into()),
                other: Some("main".into()),
            };
            let mut outcome = repo
                .merge_trees(base_tree, current_tree, their_tree, labels, options.clone())
                .map_err(repo_err)?;
            if outcome.has_unresolved_conflicts(gix::merge::tree::TreatAsUnresolved::default()) {
                let mut paths: Vec<String> = outcome
                    .conflicts
                    .iter()
                    .map(|c| c.ours.location().to_string())
                    .collect();
                paths.sort();
                paths.dedup();
                let subject = commit
                    .message()
                    .map(|m| m.summary().to_string())
                    .unwrap_or_default();
                return Err(GitError::RebaseConflict {
                    commit: id,
                    subject,
                    paths,
                });
            }
            let tree = outcome.tree.write().map_err(repo_err)?.detach();
            let author: gix::actor::Signature = commit.author().map_err(repo_err)?.into();
            let message = commit.message_raw().map_err(repo_err)?.to_string();
            let new = self.write_commit(&repo, tree, &[current], &message, &author, &committer)?;
            mapping.push((id, new));
            current = new;
            current_tree = tree;
        }
        Ok(mapping)
    }

    /// Applies the change `pick` made (relative to its first parent) on top
    /// of `onto` as a new commit, like `git cherry-pick -x`. Nothing is moved.
    pub fn cherry_pick(
        &self,
        pick: ObjectId,
        onto: ObjectId,
        committer: &Person,
    ) -> Result<ObjectId, GitError> {
        let repo = self.local();
        let picked = repo.find_commit(pick).map_err(repo_err)?;
        let parent = picked
            .parent_ids()
            .next()
            .ok_or_else(|| repo_err(format!("{pick} has no parent to compare with")))?
            .detach();
        let base_tree = repo
            .find_commit(parent)
            .map_err(repo_err)?
            .tree_id()
            .map_err(repo_err)?
            .detach();
        let their_tree = picked.tree_id().map_err(repo_err)?.detach();
        let onto_commit = repo.find_commit(onto).map_err(repo_err)?;
        let our_tree = onto_commit.tree_id().map_err(repo_err)?.detach();
        let options = repo.tree_merge_options().map_err(repo_err)?;
        let labels = gix::merge::blob::builtin_driver::text::Labels {
            ancestor: Some("base".into()),
            current: Some("environment".into()),
            other: Some("picked".into()),
        };
        let mut outcome = repo
            .merge_trees(base_tree, our_tree, their_tree, labels, options)
            .map_err(repo_err)?;
        let how = gix::merge::tree::TreatAsUnresolved::default();
        if outcome.has_unresolved_conflicts(how) {
            let mut paths: Vec<String> = outcome
                .conflicts
                .iter()
                .map(|c| c.ours.location().to_string())
                .collect();
            paths.sort();
            paths.dedup();
            return Err(GitError::MergeConflict(paths));
        }
        let tree = outcome.tree.write().map_err(repo_err)?.detach();
        if tree == our_tree {
            return Err(GitError::AlreadyApplied(
                pick.to_hex_with_len(10).to_string(),
            ));
        }
        let message = picked.message_raw().map_err(repo_err)?.to_string();
        let message = format!(
            "{}\n\n(cherry picked from commit {pick})\n",
            message.trim_end()
        );
        let author: gix::actor::Signature = picked.author().map_err(repo_err)?.into();
        self.write_commit(
            &repo,
            tree,
            &[onto],
            &message,
            &author,
            &committer.signature(),
        )
    }

    fn write_commit(
        &self,
        repo: &gix::Repository,
        tree: ObjectId,
        parents: &[ObjectId],
        message: &str,
        author: &gix::actor::Signature,
        committer: &gix::actor::Signature,
    ) -> Result<ObjectId, GitError> {
        let commit = gix::objs::Commit {
            tree,
            parents: parents.iter().copied().collect(),
            author: author.clone(),
            committer: committer.clone(),
            encoding: None,
            message: message.into(),
            extra_headers: Vec::new(),
        };
        Ok(repo.write_object(&commit).map_err(repo_err)?.detach())
    }

    /// Writes a commit whose tree is `parent`'s with `files` replaced (path,
    /// content), without moving any ref. For the demo and tests, which build
    /// histories without a work tree.
    pub fn commit_files(
        &self,
        parent: Option<ObjectId>,
        files: &[(&str, &str)],
        message: &str,
        author: &Person,
    ) -> Result<ObjectId, GitError> {
        let repo = self.local();
        let base_tree = match parent {
            Some(p) => repo
                .find_commit(p)
                .map_err(repo_err)?
                .tree_id()
                .map_err(repo_err)?
                .detach(),
            None => ObjectId::empty_tree(repo.object_hash()),
        };
        let mut editor = repo.edit_tree(base_tree).map_err(repo_err)?;
        for (path, content) in files {
            let blob = repo
                .write_blob(content.as_bytes())
                .map_err(repo_err)?
                .detach();
            editor
                .upsert(*path, gix::object::tree::EntryKind::Blob, blob)
                .map_err(repo_err)?;
        }
        let tree = editor.write().map_err(repo_err)?.detach();
        let signature = author.signature();
        let parents: Vec<ObjectId> = parent.into_iter().collect();
        self.write_commit(&repo, tree, &parents, message, &signature, &signature)
    }

    /// Writes an audit anchor: a commit (on `parent`, the previous anchor)
    /// whose tree holds `files`: `head` (the newest event's id and hash),
    /// `events.jsonl` (the events since the previous anchor) and, with a
    /// change, `intent` (its journal entry's id and digest). Moves no ref.
    pub fn write_anchor(
        &self,
        parent: Option<ObjectId>,
        files: &[(&str, &str)],
        message: &str,
    ) -> Result<ObjectId, GitError> {
        let repo = self.local();
        let mut editor = repo
            .edit_tree(ObjectId::empty_tree(repo.object_hash()))
            .map_err(repo_err)?;
        for &(path, content) in files {
            let blob = repo
                .write_blob(content.as_bytes())
                .map_err(repo_err)?
                .detach();
            editor
                .upsert(path, gix::object::tree::EntryKind::Blob, blob)
                .map_err(repo_err)?;
        }
        let tree = editor.write().map_err(repo_err)?.detach();
        let who = Person::envline("audit").signature();
        let parents: Vec<ObjectId> = parent.into_iter().collect();
        self.write_commit(&repo, tree, &parents, message, &who, &who)
    }

    /// Every anchor from `tip` back to the first, newest first: each one's
    /// `head` file (the event id and hash it vouches for).
    pub fn anchors(&self, tip: ObjectId) -> Result<Vec<(ObjectId, String)>, GitError> {
        let mut out = Vec::new();
        for (id, _) in self.first_parent_history(tip, |_| false)? {
            let head = self.read_file(id, "head")?.unwrap_or_default();
            out.push((id, head));
        }
        Ok(out)
    }

    /// The paths a commit changed compared to its first parent.
    pub fn changed_paths(&self, id: ObjectId) -> Result<Vec<String>, GitError> {
        Ok(self
            .commit_changes(&[id])?
            .pop()
            .map(|(_, paths)| paths)
            .unwrap_or_default())
    }

    /// For each commit, what it is and the file paths it changed against its
    /// first parent, sorted. No rename detection: a rename is its two paths,
    /// which is what "which environments does this touch" needs, and it
    /// keeps each diff a plain walk of the two trees. One repository handle
    /// and one diff state serve the whole batch.
    pub fn commit_changes(
        &self,
        ids: &[ObjectId],
    ) -> Result<Vec<(CommitInfo, Vec<String>)>, GitError> {
        use gix::diff::tree::recorder::Change;
        use gix::objs::TreeRefIter;
        let repo = self.local();
        let mut state = gix::diff::tree::State::default();
        let mut out = Vec::with_capacity(ids.len());
        let empty = repo.empty_tree();
        for &id in ids {
            let commit = repo.find_commit(id).map_err(repo_err)?;
            let message = commit.message().map_err(repo_err)?;
            let author = commit.author().map_err(repo_err)?;
            let info = CommitInfo {
                id,
                subject: message.summary().to_string(),
                author: author.name.to_string(),
                author_email: author.email.to_string(),
                time: author.time().map(|t| t.seconds).unwrap_or(0),
                parent_count: commit.parent_ids().count(),
            };
            let new_tree = commit.tree().map_err(repo_err)?;
            let old_tree = match commit.parent_ids().next() {
                Some(p) => repo
                    .find_commit(p.detach())
                    .map_err(repo_err)?
                    .tree()
                    .map_err(repo_err)?,
                None => empty.clone(),
            };
            let mut recorder = gix::diff::tree::Recorder::default();
            gix::diff::tree(
                TreeRefIter::from_bytes(&old_tree.data, old_tree.id.kind()),
                TreeRefIter::from_bytes(&new_tree.data, new_tree.id.kind()),
                &mut state,
                &repo.objects,
                &mut recorder,
            )
            .map_err(repo_err)?;
            let mut paths: Vec<String> = recorder
                .records
                .into_iter()
                .filter_map(|change| match change {
                    Change::Addition {
                        entry_mode, path, ..
                    }
                    | Change::Deletion {
                        entry_mode, path, ..
                    }
                    | Change::Modification {
                        entry_mode, path, ..
                    } => (!entry_mode.is_tree()).then(|| path.to_string()),
                })
                .collect();
            paths.sort();
            paths.dedup();
            out.push((info, paths));
        }
        Ok(out)
    }

    /// Every commit reachable from `tip` but not from `base` (all of `tip`'s
    /// history without one), each with its committer time (seconds since
    /// the epoch): what a deployment brought, for its lead times.
    pub fn commit_times_between(
        &self,
        base: Option<ObjectId>,
        tip: ObjectId,
    ) -> Result<Vec<(ObjectId, i64)>, GitError> {
        let repo = self.local();
        let walk = repo
            .rev_walk([tip])
            .with_hidden(base)
            .all()
            .map_err(repo_err)?;
        let mut commits = Vec::new();
        for info in walk {
            let info = info.map_err(repo_err)?;
            let commit = info.object().map_err(repo_err)?;
            let time = commit.time().map_err(repo_err)?.seconds;
            commits.push((info.id, time));
        }
        Ok(commits)
    }

    /// Commits reachable from `tip` but not from `base` (`git log base..tip`),
    /// newest first: at most `limit` of them, and how many there are in all.
    pub fn commits_between(
        &self,
        base: ObjectId,
        tip: ObjectId,
        limit: usize,
    ) -> Result<(Vec<ObjectId>, usize), GitError> {
        let repo = self.local();
        let walk = repo
            .rev_walk([tip])
            .with_hidden([base])
            .all()
            .map_err(repo_err)?;
        let mut ids = Vec::new();
        let mut total = 0;
        for info in walk {
            let info = info.map_err(repo_err)?;
            if ids.len() < limit {
                ids.push(info.id);
            }
            total += 1;
        }
        Ok((ids, total))
    }

    /// The files that differ between the trees of two commits, with the
    /// blobs on each side (renames are detected as git's configuration says).
    pub fn tree_changes(&self, from: ObjectId, to: ObjectId) -> Result<Vec<TreeChange>, GitError> {
        use gix::object::tree::diff::ChangeDetached as C;
        let repo = self.local();
        let tree_of = |id: ObjectId| -> Result<gix::Tree<'_>, GitError> {
            repo.find_commit(id)
                .map_err(repo_err)?
                .tree()
                .map_err(repo_err)
        };
        let (old_tree, new_tree) = (tree_of(from)?, tree_of(to)?);
        let changes = repo
            .diff_tree_to_tree(&old_tree, &new_tree, None)
            .map_err(repo_err)?;
        let mut out: Vec<TreeChange> = changes
            .into_iter()
            .filter(|c| !c.entry_mode().is_tree())
            .map(|c| match c {
                C::Addition { location, id, .. } => TreeChange {
                    path: location.to_string(),
                    previous_path: None,
                    old: None,
                    new: Some(id),
                },
                C::Deletion { location, id, .. } => TreeChange {
                    path: location.to_string(),
                    previous_path: None,
                    old: Some(id),
                    new: None,
                },
                C::Modification {
                    location,
                    previous_id,
                    id,
                    ..
                } => TreeChange {
                    path: location.to_string(),
                    previous_path: None,
                    old: Some(previous_id),
                    new: Some(id),
                },
                C::Rewrite {
                    source_location,
                    source_id,
                    location,
                    id,
                    ..
                } => TreeChange {
                    path: location.to_string(),
                    previous_path: Some(source_location.to_string()),
                    old: Some(source_id),
                    new: Some(id),
                },
            })
            .collect();
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    /// A commit's first parent, if it has one.
    pub fn first_parent(&self, id: ObjectId) -> Result<Option<ObjectId>, GitError> {
        let repo = self.local();
        let commit = repo.find_commit(id).map_err(repo_err)?;
        Ok(commit.parent_ids().next().map(|p| p.detach()))
    }

    /// The content of a blob.
    pub fn blob(&self, id: ObjectId) -> Result<Vec<u8>, GitError> {
        let repo = self.local();
        let object = repo.find_object(id).map_err(repo_err)?;
        Ok(object.detach().data)
    }

    /// Reads a file at a commit, for the demo's and the line's affected-environment analysis.
    pub fn read_file(&self, id: ObjectId, path: &str) -> Result<Option<String>, GitError> {
        let repo = self.local();
        let tree = repo
            .find_commit(id)
            .map_err(repo_err)?
            .tree()
            .map_err(repo_err)?;
        let Some(entry) = tree.lookup_entry_by_path(path).map_err(repo_err)? else {
            return Ok(None);
        };
        let object = entry.object().map_err(repo_err)?;
        Ok(Some(String::from_utf8_lossy(&object.data).into_owned()))
    }
}

/// How long a network command may take before it is stopped and reported as
/// unreachable (a hung ssh or https connection must not hold up every operation).
pub const CLONE_TIMEOUT: Duration = Duration::from_secs(600);
/// The default limit for fetch, ls-remote and push.
pub const NETWORK_TIMEOUT: Duration = Duration::from_secs(120);

/// What a git command left behind.
struct Ran {
    success: bool,
    stdout: String,
    stderr: String,
}

/// Runs a git command line for the network with a time limit. git runs in
/// a process group of its own, and on timeout the whole group is stopped
/// (git, and the ssh or remote helper it started), so nothing it began keeps
/// talking to the remote behind Envline's back.
fn run_network(mut cmd: Command, limit: Duration) -> Result<Ran, GitError> {
    use std::io::Read;
    use std::os::unix::process::CommandExt;
    use wait_timeout::ChildExt;
    cmd.env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd.spawn()?;
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let status = child.wait_timeout(limit).map_err(repo_err)?;
    let Some(status) = status else {
        // The group's id is git's pid (process_group(0)).
        let group = nix::unistd::Pid::from_raw(child.id() as i32);
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
        let _ = child.wait();
        return Err(GitError::Timeout(limit.as_secs()));
    };
    // What git says can name the remote's URL: never with its password.
    Ok(Ran {
        success: status.success(),
        stdout: super::redact::credentials(&out_reader.join().unwrap_or_default()),
        stderr: super::redact::credentials(&err_reader.join().unwrap_or_default()),
    })
}

fn summarize(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && *l != "Done")
        .collect::<Vec<_>>()
        .join("; ")
}

/// What git says when it could not even connect: nothing reached the remote.
const NOT_CONNECTED: &[&str] = &[
    "unable to connect",
    "Connection refused",
    "Could not resolve host",
    "Name or service not known",
    "No route to host",
    "Network is unreachable",
];

fn classify_network_error(stderr: &str) -> GitError {
    if NOT_CONNECTED.iter().any(|m| stderr.contains(m)) {
        GitError::NotConnected(summarize(stderr))
    } else {
        GitError::RemoteUnreachable(summarize(stderr))
    }
}
