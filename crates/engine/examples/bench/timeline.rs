//! The line's pages (`Engine::timeline`, what `GET /api/v1/timeline` and the
//! Line page serve) against `git log --first-parent -100 --name-only
//! --diff-merges=first-parent`, the git command that lists the same commits
//! with the files each touched:
//!
//! - the first page of 100 right after start (nothing computed yet);
//! - the same page again, served from what was kept;
//! - a page in the middle of the line (`position`), first and again.
//!
//! On `BENCH_REPO` (any repository: its `main` or `master`), else on a
//! generated history of 20,000 first-parent commits, a third of them merges,
//! over a tree of 3,000 files. Medians of `ROUNDS` engine starts.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use envline_api::TimelineStart;
use envline_engine::Engine;

use super::{config_for, git, median};
use crate::fast_import::FastImport;

const COMMITS: usize = 20_000;
const FILES: usize = 3_000;
const ENVS: usize = 12;
const PAGE: usize = 100;
const ROUNDS: usize = 5;

/// A bare repository: `FILES` manifests, then `COMMITS` first-parent commits
/// on main, every third one merging a side commit (a feature branch).
fn make_history(dir: &Path) {
    git_init(dir);
    let mut import = FastImport::start(dir);
    let who = "Dev <dev@example.com>";
    let mut time = 1_600_000_000;
    import.commit("main", 1, who, time, "manifests", &[]);
    for f in 0..FILES {
        import.file(
            &format!("apps/app{:03}/manifest{}.yml", f / 10, f % 10),
            &format!("app: app{}\nreplicas: 2\n", f / 10),
        );
    }
    let (mut mark, mut main) = (1, 1);
    for i in 0..COMMITS - 1 {
        time += 60;
        let path = format!("apps/app{:03}/manifest{}.yml", i % 300, i % 10);
        let content = format!("app: app{}\nimage: 1.0.{i}\n", i % 300);
        if i % 3 == 2 {
            // A side commit, merged into main.
            mark += 1;
            let side = mark;
            import.commit("side", side, who, time, &format!("feature {i}"), &[main]);
            import.file(&path, &content);
            mark += 1;
            import.commit(
                "main",
                mark,
                who,
                time,
                &format!("Merge feature {i}"),
                &[main, side],
            );
        } else {
            mark += 1;
            import.commit("main", mark, who, time, &format!("bump {i}"), &[main]);
        }
        import.file(&path, &content);
        main = mark;
    }
    import.finish();
    git(dir, &["gc", "-q"]);
}

fn git_init(dir: &Path) {
    let ok = Command::new("git")
        .args(["init", "-q", "--bare", "-b", "main"])
        .arg(dir)
        .status()
        .unwrap();
    assert!(ok.success());
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub async fn run() {
    let tmp = tempfile::tempdir().unwrap();
    let remote = tmp.path().join("remote.git");
    let source = match std::env::var("BENCH_REPO") {
        Ok(repo) if !repo.is_empty() => {
            let ok = Command::new("git")
                .args(["clone", "-q", "--bare"])
                .arg(&repo)
                .arg(&remote)
                .status()
                .unwrap();
            assert!(ok.success(), "cannot clone {repo}");
            let tip = Command::new("git")
                .arg("--git-dir")
                .arg(&remote)
                .args(["rev-parse", "-q", "--verify", "refs/heads/main"])
                .output()
                .unwrap();
            if !tip.status.success() {
                let master = git(&remote, &["rev-parse", "refs/heads/master"]);
                git(&remote, &["update-ref", "refs/heads/main", &master]);
            }
            repo
        }
        _ => {
            eprintln!(
                "bench: writing {COMMITS} first-parent commits (a third merges) over {FILES} files …"
            );
            make_history(&remote);
            format!("a generated history ({FILES} files)")
        }
    };
    let first_parent = git(&remote, &["rev-list", "--first-parent", "--count", "main"]);
    let merges = git(
        &remote,
        &["rev-list", "--first-parent", "--merges", "--count", "main"],
    );
    let mut envs = Vec::new();
    for i in 0..ENVS {
        let name = format!("env{i:02}");
        let from = if i == 0 {
            "main".to_string()
        } else {
            format!("env{:02}", i - 1)
        };
        let at = git(&remote, &["rev-parse", &format!("main~{}", (i + 1) * 20)]);
        git(&remote, &["update-ref", &format!("refs/heads/{name}"), &at]);
        envs.push((name, from));
    }
    let config = config_for(tmp.path(), &remote, &envs, &[]);

    let mut cli = Vec::new();
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let out = Command::new("git")
            .arg("--git-dir")
            .arg(&remote)
            .args([
                "log",
                "--first-parent",
                &format!("-{PAGE}"),
                "--name-only",
                "--diff-merges=first-parent",
                "main",
            ])
            .output()
            .unwrap();
        cli.push(t.elapsed());
        assert!(out.status.success());
    }

    let (mut first, mut first_again, mut middle, mut middle_again) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let engine = Engine::start(config.clone()).await.unwrap();
        // Where the environments stand is computed once per change for every
        // page; what is measured here is the line's own work.
        engine.views().pipeline().await.unwrap();
        let t = Instant::now();
        let page = engine
            .views()
            .timeline(PAGE, TimelineStart::Tip)
            .await
            .unwrap();
        first.push(t.elapsed());
        assert_eq!(page.commits.len(), PAGE);
        let t = Instant::now();
        engine
            .views()
            .timeline(PAGE, TimelineStart::Tip)
            .await
            .unwrap();
        first_again.push(t.elapsed());
        let at = TimelineStart::At(page.total / 2);
        let t = Instant::now();
        engine.views().timeline(PAGE, at.clone()).await.unwrap();
        middle.push(t.elapsed());
        let t = Instant::now();
        engine.views().timeline(PAGE, at).await.unwrap();
        middle_again.push(t.elapsed());
        drop(engine);
    }
    let cli = median(cli);
    println!(
        "the line, {PAGE} commits a page, on {source} ({first_parent} first-parent commits, {merges} merges), median of {ROUNDS}:"
    );
    println!(
        "  git log --first-parent -{PAGE} --name-only --diff-merges=first-parent: {:>8.2} ms",
        ms(cli)
    );
    for (what, d) in [
        ("first page, right after start:         ", median(first)),
        (
            "first page again (kept):               ",
            median(first_again),
        ),
        ("a page in the middle, first time:      ", median(middle)),
        (
            "a page in the middle again (kept):     ",
            median(middle_again),
        ),
    ] {
        println!(
            "  envline {what}                   {:>8.2} ms  ({:.2}x the git command)",
            ms(d),
            d.as_secs_f64() / cli.as_secs_f64()
        );
    }
}
