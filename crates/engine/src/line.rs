//! The one-line model (I1): the root branch's first-parent history as an
//! index, and where every environment sits on it.
//!
//! The index is extended incrementally when the root fast-forwards, so a
//! refresh after a new commit on `main` walks only the new commits.

use std::collections::HashMap;
use std::sync::Arc;

use gix::ObjectId;
use gix::commitgraph::Graph;

use super::git::{GitError, GitRepo};
use super::pipeline::Pipeline;

/// The root branch's first-parent history, oldest first, with a position per
/// commit.
///
/// The older part, inside the clone's commit-graph, is kept as graph
/// positions with a table from graph position to place on the line: built
/// without reading one commit id or hashing one, so the first view of a
/// 100,000-commit line costs one pass over the graph. Commits newer than the
/// graph (and those added as the root moves on) are kept by id.
#[derive(Clone, Default)]
pub struct Line {
    /// The commit-graph the older part was read from (kept whole: a later
    /// fetch writes a new one, and the positions are this one's).
    graph: Option<Arc<Graph>>,
    /// The line's commits inside the graph, oldest first, as graph positions.
    in_graph: Vec<u32>,
    /// Each graph position's place on the line; [`NOT_ON_LINE`] for the
    /// graph's commits that are not on it.
    place_of: Vec<u32>,
    /// The line's commits after those, oldest first.
    newer: Vec<ObjectId>,
    /// Their places on the line.
    newer_places: gix::hashtable::HashMap<ObjectId, usize>,
    /// Commits on the line with more than one parent (flagged: the line should be straight).
    merges: Vec<ObjectId>,
}

/// A graph position whose commit is not on the line.
const NOT_ON_LINE: u32 = u32::MAX;

impl std::fmt::Debug for Line {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Line")
            .field("len", &self.len())
            .field("tip", &self.tip())
            .field("merges", &self.merges.len())
            .finish()
    }
}

impl Line {
    /// Builds the line from `tip`, reusing `previous` when `tip` is a
    /// first-parent descendant of its tip.
    pub fn build(git: &GitRepo, tip: ObjectId, previous: Option<&Line>) -> Result<Line, GitError> {
        if let Some(prev) = previous.filter(|p| !p.is_empty()) {
            if prev.tip() == Some(tip) {
                return Ok(prev.clone());
            }
            let prev_tip = prev.tip().expect("non-empty");
            let mut reached = false;
            let newer = git.first_parent_history(tip, |id| {
                if *id == prev_tip {
                    reached = true;
                }
                reached || prev.position(id).is_some()
            })?;
            if reached {
                let mut line = prev.clone();
                for (id, parents) in newer.into_iter().rev() {
                    line.push(id, parents);
                }
                return Ok(line);
            }
        }
        let walk = git.first_parent_walk(tip)?;
        let mut line = Line::default();
        if let Some(graph) = walk.graph {
            line.place_of = vec![NOT_ON_LINE; graph.num_commits() as usize];
            line.in_graph.reserve(walk.in_graph.len());
            for (place, (pos, parents)) in walk.in_graph.into_iter().rev().enumerate() {
                line.place_of[pos as usize] = place as u32;
                line.in_graph.push(pos);
                if parents > 1 {
                    line.merges
                        .push(graph.id_at(gix::commitgraph::Position(pos)).to_owned());
                }
            }
            line.graph = Some(Arc::new(graph));
        }
        for (id, parents) in walk.newer.into_iter().rev() {
            line.push(id, parents);
        }
        Ok(line)
    }

    /// Adds a commit after the tip.
    fn push(&mut self, id: ObjectId, parents: usize) {
        self.newer_places.insert(id, self.len());
        self.newer.push(id);
        if parents > 1 {
            self.merges.push(id);
        }
    }

    /// The commit at `place` (0 = the first commit).
    fn at(&self, place: usize) -> ObjectId {
        match place.checked_sub(self.in_graph.len()) {
            Some(i) => self.newer[i],
            None => self
                .graph
                .as_ref()
                .expect("graph positions come with their graph")
                .id_at(gix::commitgraph::Position(self.in_graph[place]))
                .to_owned(),
        }
    }

    pub fn tip(&self) -> Option<ObjectId> {
        self.len().checked_sub(1).map(|last| self.at(last))
    }

    /// Position of a commit on the line (0 = the first commit), if it is on it.
    pub fn position(&self, id: &ObjectId) -> Option<usize> {
        if let Some(place) = self.newer_places.get(id) {
            return Some(*place);
        }
        let pos = self.graph.as_ref()?.lookup(id)?;
        let place = *self.place_of.get(pos.0 as usize)?;
        (place != NOT_ON_LINE).then_some(place as usize)
    }

    pub fn len(&self) -> usize {
        self.in_graph.len() + self.newer.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Merge commits on the line, oldest first.
    pub fn merges(&self) -> &[ObjectId] {
        &self.merges
    }

    /// Commits newest first, from `offset` commits below the tip.
    pub fn newest_first(&self, offset: usize) -> impl Iterator<Item = ObjectId> + '_ {
        (0..self.len().saturating_sub(offset))
            .rev()
            .map(|place| self.at(place))
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
