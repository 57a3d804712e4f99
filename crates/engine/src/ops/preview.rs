//! What a promotion or a rollback would do, shown before anything moves: the
//! commits that would move, the files with their diffs, the environments each
//! change affects (S2), every gate with its evidence, the approvals needed.
//! Read-only: it takes no lock and writes nothing.

use envline_api::{
    CherryPickInput, ErrorCode, ErrorReply, FileChange, MovingCommit, PromoteInput,
    PromotionPreview, PromotionView, RequestKind, RollbackInput, RollbackPlan,
};
use gix::ObjectId;

use super::facts_for;
use super::promote::{Targets, plan, targets};
use super::reset::plan_rollback;
use crate::auth::{Permission, Principal};
use crate::git::{GitRepo, Person, TreeChange};
use crate::pipeline::Environment;
use crate::rules;
use crate::{Engine, EngineError};

/// At most this many commits are listed (the total is always given).
const PREVIEW_COMMITS: usize = 50;
/// At most this many files are listed.
const PREVIEW_FILES: usize = 200;
/// Diff lines shown per file before it is cut.
const DIFF_LINES_PER_FILE: usize = 400;
/// Diff text in one preview, in bytes, before further files show no diff.
const DIFF_BYTES_TOTAL: usize = 256 * 1024;
/// Blobs larger than this are not diffed.
const BLOB_LIMIT: usize = 512 * 1024;

/// Previews a promotion of one environment or several (the same input
/// `promote` takes). Each preview says whether it could run and why not.
pub async fn preview_promotion(
    engine: &Engine,
    who: &Principal,
    input: PromoteInput,
) -> Result<Vec<PromotionPreview>, EngineError> {
    who.require(Permission::Read, None)?;
    // The preview takes what the promotion takes, and refuses it the same way.
    super::reason_of(input.reason.as_deref())?;
    let Targets { envs, requested } = targets(engine, &input).await?;
    let mut out = Vec::with_capacity(envs.len());
    for env in envs {
        out.push(preview_one(engine, env, input.from.as_deref(), requested).await?);
    }
    Ok(out)
}

async fn preview_one(
    engine: &Engine,
    env: &Environment,
    from: Option<&str>,
    requested: Option<ObjectId>,
) -> Result<PromotionPreview, EngineError> {
    let source = from.unwrap_or(&env.from).to_owned();
    let planned = match plan(engine, env, from, requested, false).await {
        Ok(p) => p,
        Err(e) if e.is_fault() || matches!(e, EngineError::Remote { .. }) => return Err(e),
        Err(e) => {
            return Ok(PromotionPreview {
                environment: env.name.clone(),
                source,
                kind: RequestKind::Promote,
                head: None,
                candidate: None,
                commits: Vec::new(),
                commits_total: 0,
                files: Vec::new(),
                files_total: 0,
                gates: Vec::new(),
                approvals_needed: env.approvals,
                blocked: Some(ErrorReply::from(e)),
            });
        }
    };
    describe(
        engine,
        env,
        &planned.source,
        planned.kind,
        (planned.head, planned.candidate),
        &planned.facts,
    )
    .await
}

/// What cherry-picking `commit` onto `environment` would do (S5): that
/// commit's change alone, the gates and approvals as for any promotion into
/// it. Moves nothing.
pub async fn preview_cherry_pick(
    engine: &Engine,
    who: &Principal,
    input: &CherryPickInput,
) -> Result<PromotionPreview, EngineError> {
    who.require(Permission::Read, None)?;
    super::reason_of(input.reason.as_deref())?;
    let env = super::environment(engine, &input.environment)?;
    let pick = engine.views().resolve(&input.commit).await?;
    let head = super::head_of(engine, env).await?;
    let root = engine.config.pipeline.root().to_owned();
    let mut facts = facts_for(engine, env, &root, head, pick, true, false).await?;
    facts.candidate_on_source = facts.candidate_on_line;
    let mut preview = describe(
        engine,
        env,
        &root,
        RequestKind::CherryPick,
        (head, pick),
        &facts,
    )
    .await?;
    if engine.git(move |git| git.is_ancestor(pick, head)).await? {
        preview.blocked = Some(ErrorReply::from(EngineError::Conflict {
            code: ErrorCode::AlreadyThere,
            message: format!(
                "`{}` already contains {}: there is nothing to pick",
                env.name,
                super::short(&pick.to_string())
            ),
        }));
        return Ok(preview);
    }
    // Whether it applies, as the pick itself would find (it writes an
    // unreferenced commit into the clone, nothing else).
    let person = Person::envline(&who.user);
    match engine
        .git(move |git| git.cherry_pick(pick, head, &person))
        .await
    {
        Ok(_) => {}
        Err(e @ EngineError::Conflict { .. }) => preview.blocked = Some(ErrorReply::from(e)),
        Err(e) => return Err(e),
    }
    Ok(preview)
}

/// Previews an open request exactly as it was asked for (its head and
/// candidate, even if the environment moved since), with the gates as they
/// stand now: what an approver signs off.
pub async fn preview_request(
    engine: &Engine,
    who: &Principal,
    request: &PromotionView,
) -> Result<PromotionPreview, EngineError> {
    who.require(Permission::Read, None)?;
    let env = super::environment(engine, &request.environment)?;
    let head = match &request.from_commit {
        Some(h) => engine.views().resolve(h).await?,
        None => super::head_of(engine, env).await?,
    };
    let candidate = engine.views().resolve(&request.to_commit).await?;
    let mut facts = facts_for(
        engine,
        env,
        &request.source,
        head,
        candidate,
        request.kind != RequestKind::Promote,
        false,
    )
    .await?;
    if request.kind == RequestKind::CherryPick {
        facts.candidate_on_source = facts.candidate_on_line;
    }
    describe(
        engine,
        env,
        &request.source,
        request.kind,
        (head, candidate),
        &facts,
    )
    .await
}

/// Everything a preview shows about moving `env` from `head` to `candidate`.
async fn describe(
    engine: &Engine,
    env: &Environment,
    source: &str,
    kind: RequestKind,
    (head, candidate): (ObjectId, ObjectId),
    facts: &rules::PromotionFacts,
) -> Result<PromotionPreview, EngineError> {
    let blocked = rules::check_move_only(facts)
        .err()
        .map(|r| ErrorReply::from(EngineError::from(r)));
    // A cherry-pick brings one commit's change; a reset lists what leaves; a
    // promotion what arrives.
    let (base, tip) = match kind {
        RequestKind::CherryPick => {
            let parent = engine.git(move |git| git.first_parent(candidate)).await?;
            (parent.unwrap_or(candidate), candidate)
        }
        RequestKind::Reset => (candidate, head),
        RequestKind::Promote => (head, candidate),
    };
    let (ids, commits_total) = engine
        .git(move |git| git.commits_between(base, tip, PREVIEW_COMMITS))
        .await?;
    let mut commits = Vec::with_capacity(ids.len());
    for id in ids {
        commits.push(MovingCommit {
            commit: engine.views().commit(id).await?,
            affects: engine.views().affected_environments(id).await?,
        });
    }
    let (from, to) = match kind {
        RequestKind::CherryPick => (base, candidate),
        _ => (head, candidate),
    };
    let (files, files_total) = engine.git(move |git| file_changes(git, from, to)).await?;
    Ok(PromotionPreview {
        environment: env.name.clone(),
        source: source.to_owned(),
        kind,
        head: Some(engine.views().commit(head).await?),
        candidate: Some(engine.views().commit(candidate).await?),
        commits,
        commits_total,
        files,
        files_total,
        gates: rules::gates(facts),
        approvals_needed: env.approvals,
        blocked,
    })
}

/// Previews a rollback (the same input `rollback` takes): per environment,
/// from where to where, what leaves, and the hold it will place. Refused as
/// the rollback itself would be (role, no previous position).
pub async fn preview_rollback(
    engine: &Engine,
    who: &Principal,
    input: RollbackInput,
) -> Result<Vec<RollbackPlan>, EngineError> {
    super::reason_of(input.reason.as_deref())?;
    let steps = plan_rollback(engine, who, &input).await?;
    let mut out = Vec::with_capacity(steps.len());
    for step in steps {
        let (head, target) = (step.head, step.target);
        let (ids, leaving_total) = engine
            .git(move |git| git.commits_between(target, head, PREVIEW_COMMITS))
            .await?;
        let mut leaving = Vec::with_capacity(ids.len());
        for id in ids {
            leaving.push(engine.views().commit(id).await?);
        }
        out.push(RollbackPlan {
            environment: step.env.name.clone(),
            head: engine.views().commit(head).await?,
            target: engine.views().commit(target).await?,
            leaving,
            leaving_total,
            places_hold: step.env.auto_promote,
        });
    }
    Ok(out)
}

/// The files that differ between two commits, with unified diffs of text
/// files, cut to keep a preview readable; and how many files differ in all.
fn file_changes(
    git: &GitRepo,
    from: ObjectId,
    to: ObjectId,
) -> Result<(Vec<FileChange>, usize), crate::git::GitError> {
    let changes = git.tree_changes(from, to)?;
    let total = changes.len();
    let mut budget = DIFF_BYTES_TOTAL;
    let mut out = Vec::with_capacity(total.min(PREVIEW_FILES));
    for change in changes.into_iter().take(PREVIEW_FILES) {
        let (diff, truncated) = if budget == 0 {
            (None, true)
        } else {
            match text_diff(git, &change)? {
                Some((text, cut)) => {
                    let cut_to_budget = text.len() > budget;
                    let text = if cut_to_budget {
                        let mut end = budget;
                        while !text.is_char_boundary(end) {
                            end -= 1;
                        }
                        text[..end].to_owned()
                    } else {
                        text
                    };
                    budget = budget.saturating_sub(text.len());
                    (Some(text), cut || cut_to_budget)
                }
                None => (None, false),
            }
        };
        out.push(FileChange {
            change: match (&change.old, &change.new, &change.previous_path) {
                (None, _, _) => "added",
                (_, None, _) => "deleted",
                (_, _, Some(_)) => "renamed",
                _ => "modified",
            }
            .to_owned(),
            path: match &change.previous_path {
                Some(before) => format!("{before} → {}", change.path),
                None => change.path,
            },
            diff,
            truncated,
        });
    }
    Ok((out, total))
}

/// A unified diff of a text file's change (`None` for binary or large files),
/// and whether it was cut at [`DIFF_LINES_PER_FILE`] lines.
fn text_diff(
    git: &GitRepo,
    change: &TreeChange,
) -> Result<Option<(String, bool)>, crate::git::GitError> {
    let read = |id: Option<ObjectId>| -> Result<Option<Vec<u8>>, crate::git::GitError> {
        id.map(|id| git.blob(id)).transpose()
    };
    let (old, new) = (read(change.old)?, read(change.new)?);
    let as_text = |bytes: &Option<Vec<u8>>| -> Option<String> {
        match bytes {
            None => Some(String::new()),
            Some(b) if b.len() > BLOB_LIMIT || b.contains(&0) => None,
            Some(b) => String::from_utf8(b.clone()).ok(),
        }
    };
    let (Some(old), Some(new)) = (as_text(&old), as_text(&new)) else {
        return Ok(None);
    };
    let diff = similar::TextDiff::from_lines(&old, &new);
    let text = diff
        .unified_diff()
        .context_radius(3)
        .header(
            change.previous_path.as_deref().unwrap_or(&change.path),
            &change.path,
        )
        .to_string();
    let mut lines = text.lines();
    let kept: Vec<&str> = lines.by_ref().take(DIFF_LINES_PER_FILE).collect();
    let cut = lines.next().is_some();
    Ok(Some((kept.join("\n"), cut)))
}
