//! The environment graph: which environment takes its commits from which,
//! and where a commit must have passed before it may enter.

use std::collections::{BTreeMap, HashMap};

/// An environment as written in the configuration, before validation.
#[derive(Debug, Clone)]
pub struct EnvironmentSpec {
    pub name: String,
    pub name_line: usize,
    pub branch: Option<String>,
    pub from: String,
    pub from_line: usize,
    /// `None` means "the default": `[from]` (nothing when `from` is the root).
    pub requires: Option<Vec<(String, usize)>>,
    pub approvals: u32,
    pub protected: bool,
    pub auto_promote: bool,
}

/// A validated environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Environment {
    pub name: String,
    /// The git branch that holds it (defaults to the name).
    pub branch: String,
    /// Where its commits come from: the root branch or another environment.
    pub from: String,
    /// Environments where a commit must have passed verification before it may enter (I3).
    pub requires: Vec<String>,
    /// Distinct approvers needed per promotion (I4).
    pub approvals: u32,
    /// Resets need the incident-commander (or admin) role.
    pub protected: bool,
    /// Promote without a click when a newer commit becomes eligible.
    pub auto_promote: bool,
    /// Distance from the root: 1 for environments fed by the root.
    pub stage: usize,
}

/// A pipeline that cannot be used, with the line of the offending key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineError {
    pub line: Option<usize>,
    pub key: String,
    pub message: String,
}

/// The directed acyclic graph of environments rooted at the root branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pipeline {
    root: String,
    /// The branch the root stands for: the root's own branch, or the hotfix
    /// branch while hotfix mode is on.
    root_branch: String,
    /// In stage order, then in the order of the file.
    environments: Vec<Environment>,
    by_name: HashMap<String, usize>,
}

/// Whether git would accept `name` as a branch name (`refs/heads/<name>`).
pub fn is_valid_branch_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with("refs/")
        && gix::refs::FullName::try_from(format!("refs/heads/{name}")).is_ok()
}

impl Pipeline {
    /// Validates the specs: unique names, known `from` and `requires`, no
    /// cycles, branch names git accepts.
    pub fn new(root: &str, specs: Vec<EnvironmentSpec>) -> Result<Pipeline, PipelineError> {
        if !is_valid_branch_name(root) {
            return Err(PipelineError {
                line: None,
                key: "repository.root".into(),
                message: format!("`{root}` is not a branch name git accepts"),
            });
        }
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        let mut branches: BTreeMap<String, &str> = BTreeMap::new();
        branches.insert(root.to_owned(), root);
        for spec in &specs {
            let err = |message: String| PipelineError {
                line: Some(spec.name_line),
                key: format!("environment.{}.name", spec.name),
                message,
            };
            if !is_valid_branch_name(&spec.name) {
                return Err(err(format!(
                    "`{}` is not a name git accepts as a branch; use letters, digits, '-', '_' or '/'",
                    spec.name
                )));
            }
            if spec.name == root {
                return Err(err(format!(
                    "`{root}` is the root branch; an environment needs a name of its own"
                )));
            }
            if let Some(line) = seen.insert(&spec.name, spec.name_line) {
                return Err(err(format!(
                    "environment `{}` is defined twice (first on line {line})",
                    spec.name
                )));
            }
            let branch = spec.branch.clone().unwrap_or_else(|| spec.name.clone());
            if !is_valid_branch_name(&branch) {
                return Err(PipelineError {
                    line: Some(spec.name_line),
                    key: format!("environment.{}.branch", spec.name),
                    message: format!("`{branch}` is not a branch name git accepts"),
                });
            }
            if let Some(other) = branches.insert(branch.clone(), &spec.name) {
                return Err(PipelineError {
                    line: Some(spec.name_line),
                    key: format!("environment.{}.branch", spec.name),
                    message: format!("branch `{branch}` is already used by `{other}`"),
                });
            }
        }
        let known = |name: &str| name == root || seen.contains_key(name);
        let names = || {
            std::iter::once(root)
                .chain(specs.iter().map(|s| s.name.as_str()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        for spec in &specs {
            if !known(&spec.from) {
                return Err(PipelineError {
                    line: Some(spec.from_line),
                    key: format!("environment.{}.from", spec.name),
                    message: format!(
                        "unknown environment `{}`; `from` must be the root branch or an environment: {}",
                        spec.from,
                        names()
                    ),
                });
            }
            if spec.from == spec.name {
                return Err(PipelineError {
                    line: Some(spec.from_line),
                    key: format!("environment.{}.from", spec.name),
                    message: "an environment cannot take its commits from itself".into(),
                });
            }
            for (required, line) in spec.requires.iter().flatten() {
                if !seen.contains_key(required.as_str()) {
                    return Err(PipelineError {
                        line: Some(*line),
                        key: format!("environment.{}.requires", spec.name),
                        message: format!(
                            "unknown environment `{required}`; `requires` lists environments where a commit is verified: {}",
                            specs
                                .iter()
                                .map(|s| s.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    });
                }
                if required == &spec.name {
                    return Err(PipelineError {
                        line: Some(*line),
                        key: format!("environment.{}.requires", spec.name),
                        message: "an environment cannot require verification in itself".into(),
                    });
                }
            }
        }

        // Stages by following `from` to the root, refusing cycles.
        let spec_of: HashMap<&str, &EnvironmentSpec> =
            specs.iter().map(|s| (s.name.as_str(), s)).collect();
        let mut stages: HashMap<&str, usize> = HashMap::new();
        for spec in &specs {
            let mut path = vec![spec.name.as_str()];
            let mut current = spec;
            loop {
                if current.from == root {
                    break;
                }
                let next = spec_of[current.from.as_str()];
                if path.contains(&next.name.as_str()) {
                    path.push(&next.name);
                    return Err(PipelineError {
                        line: Some(spec.from_line),
                        key: format!("environment.{}.from", spec.name),
                        message: format!(
                            "the pipeline has a cycle: {}",
                            path.iter().rev().copied().collect::<Vec<_>>().join(" <- ")
                        ),
                    });
                }
                path.push(&next.name);
                current = next;
            }
            stages.insert(&spec.name, path.len());
        }
        // `requires` must not create a cycle with `from` either: a required
        // environment must not itself (transitively) be fed by this one.
        for spec in &specs {
            for (required, line) in spec.requires.iter().flatten() {
                let mut current = spec_of[required.as_str()];
                loop {
                    if current.name == spec.name {
                        return Err(PipelineError {
                            line: Some(*line),
                            key: format!("environment.{}.requires", spec.name),
                            message: format!(
                                "`{required}` receives its commits from `{}`, so requiring it would be a cycle",
                                spec.name
                            ),
                        });
                    }
                    if current.from == root {
                        break;
                    }
                    current = spec_of[current.from.as_str()];
                }
            }
        }

        let mut environments: Vec<Environment> = specs
            .iter()
            .map(|spec| Environment {
                name: spec.name.clone(),
                branch: spec.branch.clone().unwrap_or_else(|| spec.name.clone()),
                from: spec.from.clone(),
                requires: match &spec.requires {
                    Some(list) => list.iter().map(|(n, _)| n.clone()).collect(),
                    None if spec.from == root => Vec::new(),
                    None => vec![spec.from.clone()],
                },
                approvals: spec.approvals,
                protected: spec.protected,
                auto_promote: spec.auto_promote,
                stage: stages[spec.name.as_str()],
            })
            .collect();
        environments.sort_by_key(|e| e.stage);
        let by_name = environments
            .iter()
            .enumerate()
            .map(|(i, e)| (e.name.clone(), i))
            .collect();
        Ok(Pipeline {
            root: root.to_owned(),
            root_branch: root.to_owned(),
            environments,
            by_name,
        })
    }

    /// The root branch (`main`).
    pub fn root(&self) -> &str {
        &self.root
    }

    /// The branch promotions from the root take their commits from.
    pub fn root_branch(&self) -> &str {
        &self.root_branch
    }

    /// The same pipeline with its root standing for another branch (hotfix mode).
    pub fn with_root_branch(&self, branch: &str) -> Pipeline {
        Pipeline {
            root_branch: branch.to_owned(),
            ..self.clone()
        }
    }

    /// The environments' names, upstream first.
    pub fn names(&self) -> Vec<String> {
        self.environments().iter().map(|e| e.name.clone()).collect()
    }

    /// Every environment, upstream first.
    pub fn environments(&self) -> &[Environment] {
        &self.environments
    }

    pub fn environment(&self, name: &str) -> Option<&Environment> {
        self.by_name.get(name).map(|&i| &self.environments[i])
    }

    /// The branch of an environment or of the root.
    pub fn branch_of<'a>(&'a self, name: &'a str) -> Option<&'a str> {
        if name == self.root {
            Some(&self.root_branch)
        } else {
            self.environment(name).map(|e| e.branch.as_str())
        }
    }

    /// The environment (or the root) a branch belongs to.
    pub fn environment_of_branch(&self, branch: &str) -> Option<&str> {
        if branch == self.root || branch == self.root_branch {
            return Some(&self.root);
        }
        self.environments
            .iter()
            .find(|e| e.branch == branch)
            .map(|e| e.name.as_str())
    }

    /// Names of environments matching a glob like `prod-*`.
    pub fn matching(&self, pattern: &str) -> Vec<&Environment> {
        match globset::Glob::new(pattern) {
            Ok(glob) => {
                let m = glob.compile_matcher();
                self.environments
                    .iter()
                    .filter(|e| m.is_match(&e.name))
                    .collect()
            }
            Err(_) => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, from: &str) -> EnvironmentSpec {
        EnvironmentSpec {
            name: name.into(),
            name_line: 1,
            branch: None,
            from: from.into(),
            from_line: 2,
            requires: None,
            approvals: 0,
            protected: false,
            auto_promote: false,
        }
    }

    #[test]
    fn stages_follow_from_and_requires_default_to_from() {
        let p = Pipeline::new(
            "main",
            vec![
                spec("staging", "qa"),
                spec("qa", "main"),
                spec("prod", "staging"),
            ],
        )
        .unwrap();
        let names: Vec<_> = p
            .environments()
            .iter()
            .map(|e| (e.name.as_str(), e.stage))
            .collect();
        assert_eq!(names, vec![("qa", 1), ("staging", 2), ("prod", 3)]);
        assert!(p.environment("qa").unwrap().requires.is_empty());
        assert_eq!(
            p.environment("prod").unwrap().requires,
            vec!["staging".to_string()]
        );
    }

    #[test]
    fn cycles_are_refused() {
        let e = Pipeline::new("main", vec![spec("a", "b"), spec("b", "a")]).unwrap_err();
        assert!(e.message.contains("cycle"), "{e:?}");
    }

    #[test]
    fn requires_that_loops_back_is_refused() {
        let mut qa = spec("qa", "main");
        qa.requires = Some(vec![("staging".into(), 3)]);
        let e = Pipeline::new("main", vec![qa, spec("staging", "qa")]).unwrap_err();
        assert!(e.message.contains("cycle"), "{e:?}");
        assert_eq!(e.line, Some(3));
    }

    #[test]
    fn duplicates_and_bad_names_are_refused() {
        let e = Pipeline::new("main", vec![spec("qa", "main"), spec("qa", "main")]).unwrap_err();
        assert!(e.message.contains("twice"));
        for bad in ["../x", "a..b", "refs/heads/main", "a b", "x.lock", ""] {
            let e = Pipeline::new("main", vec![spec(bad, "main")]).unwrap_err();
            assert!(e.message.contains("not a name git accepts"), "{bad}: {e:?}");
        }
    }

    #[test]
    fn unknown_from_names_the_known_ones() {
        let e = Pipeline::new("main", vec![spec("qa", "mian")]).unwrap_err();
        assert!(
            e.message.contains("`mian`") && e.message.contains("main, qa"),
            "{e:?}"
        );
    }
}
