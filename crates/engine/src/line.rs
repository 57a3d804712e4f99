//! The one-line model (I1): the root branch's first-parent history as an
//! index, and where every environment sits on it.
//!
//! The index is extended incrementally when the root fast-forwards, so a
//! refresh after a new commit on `main` walks only the new commits.

use std::collections::HashMap;

use gix::ObjectId;

use super::git::{GitError, GitRepo};
use super::pipeline::Pipeline;

/// The root branch's first-parent history, oldest first, with a position per commit.
#[derive(Debug, Clone, Default)]
pub struct Line {
    commits: Vec<ObjectId>,
    positions: HashMap<ObjectId, usize>,
    /// Commits on the line with more than one parent (flagged: the line should be straight).
    merges: Vec<ObjectId>,
}

impl Line {
    /// Builds the line from `tip`, reusing `previous` when `tip` is a
    /// first-parent descendant of its tip.
    pub fn build(git: &GitRepo, tip: ObjectId, previous: Option<&Line>) -> Result<Line, GitError> {
        if let Some(prev) = previous.filter(|p| !p.commits.is_empty()) {
            if prev.tip() == Some(tip) {
                return Ok(prev.clone());
            }
            let prev_tip = prev.tip().expect("non-empty");
            let mut reached = false;
            let newer = git.first_parent_history(tip, |id| {
                if *id == prev_tip {
                    reached = true;
                }
                reached || prev.positions.contains_key(id)
            })?;
            if reached {
                let mut line = prev.clone();
                for (id, parents) in newer.into_iter().rev() {
                    line.push(id, parents);
                }
                return Ok(line);
            }
        }
        let history = git.first_parent_history(tip, |_| false)?;
        let mut line = Line {
            commits: Vec::with_capacity(history.len()),
            positions: HashMap::with_capacity(history.len()),
            merges: Vec::new(),
        };
        for (id, parents) in history.into_iter().rev() {
            line.push(id, parents);
        }
        Ok(line)
    }

    fn push(&mut self, id: ObjectId, parents: usize) {
        self.positions.insert(id, self.commits.len());
        self.commits.push(id);
        if parents > 1 {
            self.merges.push(id);
        }
    }

    pub fn tip(&self) -> Option<ObjectId> {
        self.commits.last().copied()
    }

    /// Position of a commit on the line (0 = the first commit), if it is on it.
    pub fn position(&self, id: &ObjectId) -> Option<usize> {
        self.positions.get(id).copied()
    }

    pub fn len(&self) -> usize {
        self.commits.len()
    }

    pub fn is_empty(&self) -> bool {
        self.commits.is_empty()
    }

    /// Merge commits on the line, oldest first.
    pub fn merges(&self) -> &[ObjectId] {
        &self.merges
    }

    /// Commits newest first, from `offset` commits below the tip.
    pub fn newest_first(&self, offset: usize) -> impl Iterator<Item = ObjectId> + '_ {
        self.commits.iter().rev().skip(offset).copied()
    }
}

/// Where one environment (or the root) stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    pub name: String,
    pub branch: String,
    /// `None` when the branch does not exist.
    pub head: Option<ObjectId>,
    /// Position on the root's first-parent line.
    pub position: Option<usize>,
    /// I1: the head is the root tip or one of its ancestors.
    pub on_line: bool,
    /// Commits its `from` has that it has not.
    pub behind_from: Option<usize>,
    /// Commits it has that its `from` has not (after an out-of-order promotion, or when `from` was rolled back).
    pub ahead_of_from: Option<usize>,
    /// Commits the root has that it has not.
    pub behind_root: Option<usize>,
}

/// Computes every environment's standing from the branch tips and the line.
pub fn standings(
    git: &GitRepo,
    pipeline: &Pipeline,
    tips: &HashMap<String, ObjectId>,
    line: &Line,
) -> Result<Vec<Standing>, GitError> {
    let root_tip = tips.get(pipeline.root_branch()).copied();
    let head_of = |name: &str| pipeline.branch_of(name).and_then(|b| tips.get(b)).copied();
    let mut on_line_cache: HashMap<ObjectId, bool> = HashMap::new();
    let mut on_line = |id: ObjectId| -> Result<bool, GitError> {
        if line.position(&id).is_some() {
            return Ok(true);
        }
        if line.merges().is_empty() {
            return Ok(false);
        }
        if let Some(v) = on_line_cache.get(&id) {
            return Ok(*v);
        }
        let v = match root_tip {
            Some(root) => git.is_ancestor(id, root)?,
            None => false,
        };
        on_line_cache.insert(id, v);
        Ok(v)
    };
    let distance = |from: ObjectId, to: ObjectId| -> Result<(usize, usize), GitError> {
        match (line.position(&from), line.position(&to)) {
            (Some(a), Some(b)) => Ok((b.saturating_sub(a), a.saturating_sub(b))),
            _ => Ok((
                git.count_commits_between(from, to)?,
                git.count_commits_between(to, from)?,
            )),
        }
    };

    let mut out = Vec::with_capacity(pipeline.environments().len() + 1);
    let root_position = root_tip.and_then(|t| line.position(&t));
    out.push(Standing {
        name: pipeline.root_branch().to_owned(),
        branch: pipeline.root_branch().to_owned(),
        head: root_tip,
        position: root_position,
        on_line: root_tip.is_some(),
        behind_from: None,
        ahead_of_from: None,
        behind_root: root_tip.map(|_| 0),
    });
    for env in pipeline.environments() {
        let head = tips.get(&env.branch).copied();
        let Some(head) = head else {
            out.push(Standing {
                name: env.name.clone(),
                branch: env.branch.clone(),
                head: None,
                position: None,
                on_line: false,
                behind_from: None,
                ahead_of_from: None,
                behind_root: None,
            });
            continue;
        };
        let (behind_from, ahead_of_from) = match head_of(&env.from) {
            Some(from) => {
                let (behind, ahead) = distance(head, from)?;
                (Some(behind), Some(ahead))
            }
            None => (None, None),
        };
        let behind_root = match root_tip {
            Some(root) => Some(distance(head, root)?.0),
            None => None,
        };
        out.push(Standing {
            name: env.name.clone(),
            branch: env.branch.clone(),
            head: Some(head),
            position: line.position(&head),
            on_line: on_line(head)?,
            behind_from,
            ahead_of_from,
            behind_root,
        });
    }
    Ok(out)
}
