//! The one-line model on real temporary repositories: where environments
//! stand, off-line environments, merge commits on the root.

use std::collections::HashMap;
use std::process::Command;

use envline_engine::git::{GitRepo, Person, RefChange};
use envline_engine::line::{Line, standings};
use envline_engine::pipeline::{EnvironmentSpec, Pipeline};

fn person(t: i64) -> Person {
    Person {
        name: "Test".into(),
        email: "test@example.com".into(),
        time: Some(1_700_000_000 + t),
    }
}

fn spec(name: &str, from: &str) -> EnvironmentSpec {
    EnvironmentSpec {
        name: name.into(),
        name_line: 1,
        branch: None,
        from: from.into(),
        from_line: 1,
        requires: None,
        approvals: 0,
        protected: false,
        auto_promote: false,
    }
}

/// A line of `n` commits on main; returns the repo and the commits oldest first.
fn line_of(n: usize) -> (tempfile::TempDir, GitRepo, Vec<gix::ObjectId>) {
    let dir = tempfile::tempdir().unwrap();
    let git = GitRepo::init_bare(&dir.path().join("r.git")).unwrap();
    let mut ids = Vec::new();
    let mut parent = None;
    for i in 0..n {
        let content = format!("version: {i}\n");
        let id = git
            .commit_files(
                parent,
                &[("base/version.yml", &content)],
                &format!("commit {i}"),
                &person(i as i64),
            )
            .unwrap();
        ids.push(id);
        parent = Some(id);
    }
    (dir, git, ids)
}

fn set(git: &GitRepo, branch: &str, id: gix::ObjectId) {
    let old = git.branch_tip(branch).unwrap();
    git.update_refs(
        &[RefChange {
            branch: branch.into(),
            old,
            new: id,
        }],
        "test",
        "test",
    )
    .unwrap();
}

fn pipeline() -> Pipeline {
    Pipeline::new(
        "main",
        vec![
            spec("qa", "main"),
            spec("staging", "qa"),
            spec("prod", "staging"),
        ],
    )
    .unwrap()
}

fn rev_parse(git: &GitRepo, rev: &str) -> String {
    let out = Command::new("git")
        .arg("--git-dir")
        .arg(git.dir())
        .args(["rev-parse", rev])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn environments_stand_where_their_branches_are_with_distances() {
    let (_d, git, ids) = line_of(10);
    set(&git, "main", ids[9]);
    set(&git, "qa", ids[8]);
    set(&git, "staging", ids[5]);
    set(&git, "prod", ids[2]);
    let tips = git.branch_tips().unwrap();
    assert_eq!(tips["prod"].to_string(), rev_parse(&git, "prod"));
    let line = Line::build(&git, tips["main"], None).unwrap();
    assert_eq!(line.len(), 10);
    let s: HashMap<String, _> = standings(&git, &pipeline(), &tips, &line)
        .unwrap()
        .into_iter()
        .map(|s| (s.name.clone(), s))
        .collect();
    assert_eq!(s["qa"].behind_from, Some(1));
    assert_eq!(s["staging"].behind_from, Some(3));
    assert_eq!(s["prod"].behind_from, Some(3));
    assert_eq!(s["prod"].behind_root, Some(7));
    assert_eq!(s["prod"].position, Some(2));
    assert!(s.values().all(|s| s.on_line));
}

#[test]
fn an_environment_pushed_off_the_line_is_shown_off_it() {
    let (_d, git, ids) = line_of(6);
    set(&git, "main", ids[5]);
    set(&git, "qa", ids[4]);
    set(&git, "staging", ids[3]);
    set(&git, "prod", ids[1]);
    // A cherry-pick-like commit on staging that main does not have.
    let side = git
        .commit_files(
            Some(ids[3]),
            &[("envs/staging/hotfix.yml", "x: 1\n")],
            "direct push",
            &person(100),
        )
        .unwrap();
    set(&git, "staging", side);
    let tips = git.branch_tips().unwrap();
    let line = Line::build(&git, tips["main"], None).unwrap();
    let s: HashMap<String, _> = standings(&git, &pipeline(), &tips, &line)
        .unwrap()
        .into_iter()
        .map(|s| (s.name.clone(), s))
        .collect();
    assert!(!s["staging"].on_line);
    assert_eq!(s["staging"].position, None);
    assert_eq!(
        s["staging"].behind_from,
        Some(1),
        "qa has ids[4] that staging lacks"
    );
    assert_eq!(
        s["staging"].ahead_of_from,
        Some(1),
        "staging has the side commit qa lacks"
    );
    assert_eq!(
        s["prod"].behind_from,
        Some(3),
        "prod lacks ids[2], ids[3] and the side commit"
    );
    assert!(s["qa"].on_line && s["prod"].on_line);
}

#[test]
fn merge_commits_on_the_root_are_flagged_and_side_commits_count_as_on_the_line() {
    let (_d, git, ids) = line_of(4);
    let side = git
        .commit_files(
            Some(ids[1]),
            &[("envs/qa/x.yml", "side\n")],
            "side branch work",
            &person(50),
        )
        .unwrap();
    // A merge commit: parents ids[3] and side.
    let repo = gix::open(git.dir()).unwrap();
    let tree = repo
        .find_commit(ids[3])
        .unwrap()
        .tree_id()
        .unwrap()
        .detach();
    let sig = gix::actor::Signature {
        name: "T".into(),
        email: "t@e".into(),
        time: gix::date::Time::new(1_700_000_999, 0),
    };
    let merge = repo
        .write_object(&gix::objs::Commit {
            tree,
            parents: [ids[3], side].into_iter().collect(),
            author: sig.clone(),
            committer: sig,
            encoding: None,
            message: "Merge branch 'feature'".into(),
            extra_headers: vec![],
        })
        .unwrap()
        .detach();
    set(&git, "main", merge);
    set(&git, "qa", side);
    set(&git, "staging", ids[2]);
    set(&git, "prod", ids[0]);
    let tips = git.branch_tips().unwrap();
    let line = Line::build(&git, tips["main"], None).unwrap();
    assert_eq!(line.merges(), &[merge]);
    let s: HashMap<String, _> = standings(&git, &pipeline(), &tips, &line)
        .unwrap()
        .into_iter()
        .map(|s| (s.name.clone(), s))
        .collect();
    assert!(
        s["qa"].on_line,
        "an ancestor of main is on the line (I1) even off the first-parent path"
    );
    assert_eq!(s["qa"].position, None);
}

#[test]
fn the_line_grows_incrementally_and_rebuilds_after_a_rewrite() {
    let (_d, git, ids) = line_of(5);
    let line = Line::build(&git, ids[2], None).unwrap();
    assert_eq!(line.len(), 3);
    let grown = Line::build(&git, ids[4], Some(&line)).unwrap();
    assert_eq!(grown.len(), 5);
    assert_eq!(grown.position(&ids[4]), Some(4));
    let rewritten = git
        .commit_files(Some(ids[1]), &[("a", "b")], "rewrite", &person(9))
        .unwrap();
    let rebuilt = Line::build(&git, rewritten, Some(&grown)).unwrap();
    assert_eq!(rebuilt.len(), 3);
    assert_eq!(rebuilt.position(&ids[4]), None);
}

#[test]
fn cherry_pick_applies_one_commit_onto_another_base() {
    let (_d, git, ids) = line_of(3);
    let change = git
        .commit_files(
            Some(ids[2]),
            &[("envs/qa/settings.yml", "log: debug\n")],
            "qa debug",
            &person(10),
        )
        .unwrap();
    let picked = git.cherry_pick(change, ids[0], &person(20)).unwrap();
    assert_eq!(
        git.read_file(picked, "envs/qa/settings.yml")
            .unwrap()
            .as_deref(),
        Some("log: debug\n")
    );
    assert_eq!(
        git.read_file(picked, "base/version.yml")
            .unwrap()
            .as_deref(),
        Some("version: 0\n")
    );
    assert!(
        git.commit_info(picked)
            .unwrap()
            .subject
            .contains("qa debug")
    );
}

#[test]
fn the_commit_graph_and_commits_newer_than_it_give_the_same_line() {
    let (_d, git, ids) = line_of(8);
    set(&git, "main", ids[5]);
    let written = Command::new("git")
        .arg("--git-dir")
        .arg(git.dir())
        .args(["commit-graph", "write", "--reachable"])
        .status()
        .unwrap();
    assert!(written.success());
    // ids[6] and ids[7] are newer than the graph: decoded, then the walk continues inside it.
    let line = Line::build(&git, ids[7], None).unwrap();
    assert_eq!(line.len(), 8);
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(line.position(id), Some(i));
    }
    assert!(line.merges().is_empty());
}

#[test]
fn a_line_read_from_the_graph_keeps_its_merges_order_and_side_commits_apart() {
    let (_d, git, ids) = line_of(6);
    let side = git
        .commit_files(
            Some(ids[2]),
            &[("envs/qa/side.yml", "x: 1\n")],
            "side work",
            &person(50),
        )
        .unwrap();
    let run = |args: &[&str]| {
        let out = Command::new("git")
            .arg("--git-dir")
            .arg(git.dir())
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let tree = format!("{}^{{tree}}", ids[5]);
    let merge = run(&[
        "commit-tree",
        &tree,
        "-p",
        &ids[5].to_string(),
        "-p",
        &side.to_string(),
        "-m",
        "merge side work",
    ]);
    let merge = gix::ObjectId::from_hex(merge.as_bytes()).unwrap();
    set(&git, "main", merge);
    run(&["commit-graph", "write", "--reachable"]);
    // Two commits newer than the graph, on top of the merge.
    let newer1 = git
        .commit_files(Some(merge), &[("base/n.yml", "n: 1\n")], "n1", &person(60))
        .unwrap();
    let newer2 = git
        .commit_files(Some(newer1), &[("base/n.yml", "n: 2\n")], "n2", &person(61))
        .unwrap();
    let line = Line::build(&git, newer2, None).unwrap();
    let mut expected: Vec<gix::ObjectId> = ids.clone();
    expected.extend([merge, newer1, newer2]);
    assert_eq!(line.len(), expected.len());
    assert_eq!(line.tip(), Some(newer2));
    for (i, id) in expected.iter().enumerate() {
        assert_eq!(line.position(id), Some(i), "commit {i}");
    }
    assert_eq!(
        line.position(&side),
        None,
        "in the graph, but not on the line"
    );
    assert_eq!(line.merges(), &[merge]);
    let newest: Vec<_> = line.newest_first(2).collect();
    let mut reversed = expected.clone();
    reversed.reverse();
    assert_eq!(newest, reversed[2..].to_vec());
    // The root moves on: the line grows from the one before.
    let newer3 = git
        .commit_files(Some(newer2), &[("base/n.yml", "n: 3\n")], "n3", &person(62))
        .unwrap();
    let grown = Line::build(&git, newer3, Some(&line)).unwrap();
    assert_eq!(grown.position(&newer3), Some(expected.len()));
    assert_eq!(grown.position(&ids[1]), Some(1));
    assert_eq!(grown.newest_first(0).next(), Some(newer3));
}
