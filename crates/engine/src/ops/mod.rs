//! The operations of docs/design.md §3, one module each: promote, approve,
//! verify, roll back and realign, cherry-pick, hold, hotfix mode. Each checks its gates,
//! then hands its ref changes and audit events to the [`journal`], which
//! writes an intent, moves refs with compare-and-swap in the clone and on the
//! remote, and records the outcome: all or nothing.

mod approve;
pub mod auto;
mod cherry_pick;
mod hold;
mod hotfix;
pub mod journal;
mod preview;
mod promote;
mod reset;
mod verify;

pub use approve::decide;
pub use auto::auto_promote;
pub use cherry_pick::cherry_pick;
pub use hold::{hold, release};
pub use hotfix::{hotfix_plan, hotfix_status, merge_back, resolve_hotfix, start_hotfix};
pub use journal::{reconcile_intents, record_observations};
pub use preview::{preview_cherry_pick, preview_promotion, preview_request, preview_rollback};
pub use promote::promote;
pub use reset::{realign, rollback};
pub use verify::verify;

use envline_api::ErrorCode;
use gix::ObjectId;

use super::cluster::RefScope;
use super::pipeline::Environment;
use super::rules::PromotionFacts;
use super::store;
use super::{Engine, EngineError};

/// The longest reason, comment or summary a person may give.
const MAX_TEXT: usize = 2000;

/// The refs an operation that moves `targets` works on, for
/// [`Engine::lock_scope`]: their branches, which it moves, and the branches
/// of the environments its checks read: `from`, or each target's own
/// source, unless that is the root (which only people and hotfix mode move).
fn scope_of(engine: &Engine, targets: &[&Environment], from: Option<&str>) -> RefScope {
    let pipeline = engine.pipeline_now();
    RefScope {
        writes: targets.iter().map(|e| e.branch.clone()).collect(),
        reads: targets
            .iter()
            .filter_map(|e| pipeline.environment(from.unwrap_or(&e.from)))
            .map(|source| source.branch.clone())
            .collect(),
        anchor: false,
    }
}

/// The environment called `name`, or a 404 that lists the ones there are.
fn environment<'a>(engine: &'a Engine, name: &str) -> Result<&'a Environment, EngineError> {
    engine.config.pipeline.environment(name).ok_or_else(|| {
        EngineError::NotFound(format!(
            "unknown environment `{name}`; the environments are {}",
            engine
                .config
                .pipeline
                .environments()
                .iter()
                .map(|e| e.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })
}

/// Expands names and globs (`prod-*`) into environments, refusing unknown names.
fn environments<'a>(
    engine: &'a Engine,
    names: &[String],
) -> Result<Vec<&'a Environment>, EngineError> {
    if names.is_empty() {
        return Err(EngineError::BadInput(
            "name at least one environment (or a glob like `prod-*`)".into(),
        ));
    }
    let mut out: Vec<&Environment> = Vec::new();
    for name in names {
        let found = if name.contains(['*', '?', '[']) {
            let m = engine.config.pipeline.matching(name);
            if m.is_empty() {
                return Err(EngineError::NotFound(format!(
                    "no environment matches `{name}`"
                )));
            }
            m
        } else {
            vec![environment(engine, name)?]
        };
        for env in found {
            if !out.iter().any(|e| e.name == env.name) {
                out.push(env);
            }
        }
    }
    Ok(out)
}

/// A reason or comment as stored: trimmed, and not longer than [`MAX_TEXT`].
pub(super) fn reason_of(reason: Option<&str>) -> Result<String, EngineError> {
    let reason = reason.unwrap_or("").trim();
    if reason.chars().count() > MAX_TEXT {
        return Err(EngineError::BadInput(format!(
            "`reason` is longer than {MAX_TEXT} characters"
        )));
    }
    Ok(reason.to_owned())
}

fn short(id: &str) -> &str {
    &id[..id.len().min(10)]
}

/// The facts the gates need, read from the clone and the database.
async fn facts_for(
    engine: &Engine,
    env: &Environment,
    source: &str,
    head: ObjectId,
    candidate: ObjectId,
    is_reset: bool,
    automatic: bool,
) -> Result<PromotionFacts, EngineError> {
    let pipeline = engine.pipeline_now();
    let source_branch = pipeline
        .branch_of(source)
        .ok_or_else(|| EngineError::NotFound(format!("unknown source `{source}`")))?
        .to_owned();
    let root_branch = pipeline.root_branch().to_owned();
    let (ff, head_on_line, on_source, on_line) = engine
        .git(move |git| {
            let source_tip = git.branch_tip(&source_branch)?;
            let root_tip = git.branch_tip(&root_branch)?;
            let ff = git.is_ancestor(head, candidate)?;
            let head_on_line = match root_tip {
                Some(r) => git.is_ancestor(head, r)?,
                None => false,
            };
            let on_source = match source_tip {
                Some(s) => git.is_ancestor(candidate, s)?,
                None => false,
            };
            let on_line = match root_tip {
                Some(r) => git.is_ancestor(candidate, r)?,
                None => false,
            };
            Ok((ff, head_on_line, on_source, on_line))
        })
        .await?;
    let candidate_hex = candidate.to_string();
    let mut verifications = Vec::new();
    for required in &env.requires {
        let v = store::latest_verification(&engine.pool, required, &candidate_hex).await?;
        verifications.push((required.clone(), v));
    }
    let holds = store::active_holds(&engine.pool)
        .await?
        .into_iter()
        .filter(|h| h.environment == env.name)
        .collect();
    Ok(PromotionFacts {
        environment: env.name.clone(),
        source: source.to_owned(),
        head: head.to_string(),
        candidate: candidate_hex,
        is_reset,
        fast_forward: ff,
        head_on_line,
        candidate_on_source: on_source,
        candidate_on_line: on_line,
        verifications,
        holds,
        automatic,
    })
}

/// The tip of an environment's branch, or a 409 saying the branch is missing.
async fn head_of(engine: &Engine, env: &Environment) -> Result<ObjectId, EngineError> {
    let branch = env.branch.clone();
    engine
        .git(move |git| git.branch_tip(&branch))
        .await?
        .ok_or_else(|| EngineError::Conflict {
            code: ErrorCode::BranchMissing,
            message: format!(
                "branch `{}` of environment `{}` does not exist on the remote; push it once (e.g. at the root's first commit) and refresh",
                env.branch, env.name
            ),
        })
}

/// The tip of the branch of `source` (the root or an environment).
async fn tip_of_source(engine: &Engine, source: &str) -> Result<ObjectId, EngineError> {
    let branch = engine
        .pipeline_now()
        .branch_of(source)
        .ok_or_else(|| {
            EngineError::NotFound(format!(
                "unknown source `{source}`; `from` must be the root branch or an environment"
            ))
        })?
        .to_owned();
    engine
        .git(move |git| git.branch_tip(&branch))
        .await?
        .ok_or_else(|| EngineError::Conflict {
            code: ErrorCode::BranchMissing,
            message: format!("the source `{source}` has no branch yet"),
        })
}
