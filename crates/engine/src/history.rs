//! What each commit of the line is and which environments it affects (S2),
//! computed once per commit and kept: commits never change, so the line's
//! pages are diffed once and then served from memory.
//!
//! The cache is bounded (least recently used go first), so paging through a
//! 100,000-commit history cannot grow the server without limit.

use std::collections::BTreeSet;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use gix::ObjectId;
use lru::LruCache;

use super::git::{CommitInfo, GitError, GitRepo};

/// How many commits' facts are kept: a few hundred pages of the line.
pub const FACTS_KEPT: usize = 50_000;

/// One commit as the line shows it.
#[derive(Debug, Clone)]
pub struct CommitFacts {
    pub info: CommitInfo,
    /// Environments its changes affect, in pipeline order.
    pub affects: Vec<String>,
}

/// Facts of recently read commits, keyed by id.
pub struct FactsCache {
    kept: Mutex<LruCache<ObjectId, Arc<CommitFacts>>>,
}

impl Default for FactsCache {
    fn default() -> Self {
        FactsCache::with_capacity(FACTS_KEPT)
    }
}

impl FactsCache {
    /// A cache keeping at most `capacity` commits.
    pub fn with_capacity(capacity: usize) -> FactsCache {
        FactsCache {
            kept: Mutex::new(LruCache::new(
                NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN),
            )),
        }
    }

    /// The facts of `ids` (in that order), computing in one batch those not
    /// kept yet. `environments` are the pipeline's environment names in order.
    pub fn facts(
        &self,
        git: &GitRepo,
        ids: &[ObjectId],
        environments: &[String],
    ) -> Result<Vec<Arc<CommitFacts>>, GitError> {
        let mut found: Vec<Option<Arc<CommitFacts>>> = {
            let mut kept = self.kept.lock().expect("lock");
            ids.iter().map(|id| kept.get(id).cloned()).collect()
        };
        let missing: Vec<ObjectId> = ids
            .iter()
            .zip(&found)
            .filter(|(_, f)| f.is_none())
            .map(|(id, _)| *id)
            .collect();
        if !missing.is_empty() {
            let computed = compute_in_parallel(git, &missing, environments)?;
            let mut kept = self.kept.lock().expect("lock");
            let mut computed = computed.into_iter();
            for slot in found.iter_mut().filter(|f| f.is_none()) {
                let facts = computed.next().expect("one per missing id");
                kept.put(facts.info.id, facts.clone());
                *slot = Some(facts);
            }
        }
        Ok(found.into_iter().map(|f| f.expect("filled")).collect())
    }
}

/// Computes the facts of `ids` (in order) on up to as many threads as there
/// are cores: each tree diff is independent, and a first page is 100 of them.
fn compute_in_parallel(
    git: &GitRepo,
    ids: &[ObjectId],
    environments: &[String],
) -> Result<Vec<Arc<CommitFacts>>, GitError> {
    let compute = |chunk: &[ObjectId]| -> Result<Vec<Arc<CommitFacts>>, GitError> {
        let mut out = Vec::with_capacity(chunk.len());
        for (info, paths) in git.commit_changes(chunk)? {
            let affects = affected(git, info.id, &paths, environments)?;
            out.push(Arc::new(CommitFacts { info, affects }));
        }
        Ok(out)
    };
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(4);
    if threads < 2 || ids.len() < 16 {
        return compute(ids);
    }
    let chunk = ids.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let workers: Vec<_> = ids
            .chunks(chunk)
            .map(|c| scope.spawn(move || compute(c)))
            .collect();
        let mut out = Vec::with_capacity(ids.len());
        for worker in workers {
            out.extend(worker.join().expect("a facts worker panicked")?);
        }
        Ok(out)
    })
}

/// S2: the environments a commit's changed `paths` affect. `envs/<env>/…`
/// affects that environment; `variants/<v>/…` every environment whose
/// `envs/<env>/kustomization.yml` (at that commit) lists that component;
/// anything else affects all.
pub fn affected(
    git: &GitRepo,
    id: ObjectId,
    paths: &[String],
    environments: &[String],
) -> Result<Vec<String>, GitError> {
    let mut affected = BTreeSet::new();
    for path in paths {
        let parts: Vec<&str> = path.split('/').collect();
        match parts.as_slice() {
            ["envs", env, _, ..] => {
                if environments.iter().any(|n| n == env) {
                    affected.insert(env.to_string());
                }
            }
            ["variants", variant, _, ..] => {
                for name in environments {
                    let file = git.read_file(id, &format!("envs/{name}/kustomization.yml"))?;
                    if file.is_some_and(|k| lists_component(&k, variant)) {
                        affected.insert(name.clone());
                    }
                }
            }
            _ => return Ok(environments.to_vec()),
        }
    }
    Ok(environments
        .iter()
        .filter(|n| affected.contains(*n))
        .cloned()
        .collect())
}

/// Whether a `kustomization.yml` lists the component `variants/<variant>`,
/// matching whole path components (`variants/prod` is not `variants/prod-eu`).
fn lists_component(kustomization: &str, variant: &str) -> bool {
    kustomization.lines().any(|line| {
        let path = line
            .trim()
            .trim_start_matches('-')
            .trim()
            .trim_matches(['"', '\'']);
        let parts: Vec<&str> = path.split('/').collect();
        parts
            .windows(2)
            .any(|w| w[0] == "variants" && w[1] == variant)
    })
}

#[cfg(test)]
mod tests {
    use super::lists_component;

    #[test]
    fn variants_match_whole_path_components() {
        let k = "components:\n  - ../../variants/prod-eu\n  - \"../../variants/non-prod\"\n";
        assert!(lists_component(k, "prod-eu"));
        assert!(lists_component(k, "non-prod"));
        assert!(
            !lists_component(k, "prod"),
            "variants/prod is not variants/prod-eu"
        );
        assert!(!lists_component(k, "eu"));
    }
}
