//! Speed figures for the engine, each against the git command line answering
//! the same question, measured in the same run:
//!
//! 1. status of 12 environments on a 100,000-commit line (cold and warm)
//!    vs `git rev-list --count` + `git merge-base --is-ancestor` per environment;
//! 2. one promotion (CAS + audit row + push to a local bare remote)
//!    vs `git update-ref` + `git push`;
//! 3. hotfix mode (see `hotfix.rs`): starting it for 12 environments vs one
//!    atomic `git push`, and merging back 100 commits vs `git rebase`;
//! 4. the line's pages (see `timeline.rs`) vs `git log --first-parent -100
//!    --name-only`, on `BENCH_REPO` (a real history) or a generated one.
//!
//! Run: `make bench` (or `cargo run --release -p envline-engine --example bench`);
//! one part only: `… --example bench -- timeline` (or `status`, `hotfix`).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use envline_api::PromoteInput;
use envline_engine::Engine;
use envline_engine::auth::Principal;
use envline_engine::config::Config;
use envline_engine::ops;
use fast_import::FastImport;

mod fast_import;
mod hotfix;
mod timeline;

const COMMITS: usize = 100_000;
const ENVS: usize = 12;

/// Runs git on a (bare) repository; panics with its stderr when it fails.
fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("--git-dir")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A bare repository with a line of `n` commits on main, made with git fast-import.
fn make_line(dir: &Path, n: usize) {
    Command::new("git")
        .args(["init", "-q", "--bare"])
        .arg(dir)
        .status()
        .unwrap();
    let mut import = FastImport::start(dir);
    for i in 0..n {
        let parents: &[usize] = if i > 0 { &[i] } else { &[] };
        import.commit(
            "main",
            i + 1,
            "Bot <bot@example.com>",
            1_600_000_000 + i,
            &format!("build-bot: 1.0.{i}"),
            parents,
        );
        import.file(
            "base/version.yml",
            &format!("image: ghcr.io/acme/app:1.0.{i}\n"),
        );
    }
    import.finish();
}

/// An engine configuration for `remote` with the environments `(name, from)`,
/// no gates; those named in `protected` are production.
fn config_for(dir: &Path, remote: &Path, envs: &[(String, String)], protected: &[&str]) -> Config {
    let mut text = format!(
        "[repository]\nurl = \"{}\"\nrefresh_seconds = 3600\n[server]\ndata_dir = \"{}\"\n",
        remote.display(),
        dir.join("data").display()
    );
    for (name, from) in envs {
        text.push_str(&format!(
            "[[environment]]\nname = \"{name}\"\nfrom = \"{from}\"\nrequires = []\nprotected = {}\n",
            protected.contains(&name.as_str())
        ));
    }
    // Under `.ci/with-postgres` (make bench runs both), the same on PostgreSQL.
    if let Ok(server) = std::env::var("POSTGRES_TEST_URL") {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let base = server.rsplit_once('/').map_or(server.as_str(), |(b, _)| b);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        text.push_str(&format!(
            "[database]\nurl = \"{base}/bench_{}_{n}\"\n",
            std::process::id()
        ));
    }
    Config::parse(&dir.join("envline.toml"), &text, &BTreeMap::new()).unwrap()
}

/// The middle one of several measurements.
fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let only = std::env::args().nth(1);
    let database = match std::env::var("POSTGRES_TEST_URL") {
        Ok(_) => "PostgreSQL",
        Err(_) => "SQLite",
    };
    println!("engine figures, the database on {database}:");
    let runs = |part: &str| only.as_deref().is_none_or(|o| o == part);
    if runs("status") {
        status_and_promotion().await;
    }
    if runs("hotfix") {
        hotfix::run().await;
    }
    if runs("timeline") {
        timeline::run().await;
    }
}

/// Parts 1 and 2: the status of every environment, and one promotion.
async fn status_and_promotion() {
    let tmp = tempfile::tempdir().unwrap();
    let remote = tmp.path().join("remote.git");
    eprintln!("bench: writing a {COMMITS}-commit line with git fast-import …");
    make_line(&remote, COMMITS);
    let tip = git(&remote, &["rev-parse", "main"]);
    // 12 environments in a chain, each a few hundred commits behind the one before.
    let mut envs = Vec::new();
    for i in 0..ENVS {
        let name = format!("env{i:02}");
        let from = if i == 0 {
            "main".to_string()
        } else {
            format!("env{:02}", i - 1)
        };
        git(
            &remote,
            &[
                "update-ref",
                &format!("refs/heads/{name}"),
                &format!("{tip}~{}", (i + 1) * 700),
            ],
        );
        envs.push((name, from));
    }

    // 1. Status of every environment.
    let config = config_for(tmp.path(), &remote, &envs, &[]);
    let clone = config.clone_dir();
    let engine = Engine::start(config).await.unwrap();
    let t = Instant::now();
    let view = engine.views().pipeline().await.unwrap();
    let cold = t.elapsed();
    assert_eq!(view.environments.len(), ENVS + 1);
    let mut warm = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        let _ = engine.views().pipeline().await.unwrap();
        warm.push(t.elapsed());
    }
    let warm = median(warm);
    let mut cli = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        for (name, from) in &envs {
            git(&clone, &["rev-list", "--count", &format!("{name}..{from}")]);
            git(&clone, &["rev-list", "--count", &format!("{name}..main")]);
            let ok = Command::new("git")
                .arg("--git-dir")
                .arg(&clone)
                .args(["merge-base", "--is-ancestor", name, "main"])
                .status()
                .unwrap();
            assert!(ok.success());
        }
        cli.push(t.elapsed());
    }
    let cli = median(cli);
    let status_cli = cli;
    println!("status of {ENVS} environments on a {COMMITS}-commit line:");
    println!(
        "  git CLI (rev-list --count x2 + merge-base --is-ancestor per environment): {:>10.2} ms",
        cli.as_secs_f64() * 1e3
    );
    println!(
        "  envline cold (first computation after start):                          {:>10.2} ms  ({:.1}x faster)",
        cold.as_secs_f64() * 1e3,
        cli.as_secs_f64() / cold.as_secs_f64()
    );
    println!(
        "  envline warm (nothing changed since the last refresh):                 {:>10} ns  ({:.0}x faster)",
        warm.as_nanos(),
        cli.as_secs_f64() / warm.as_secs_f64()
    );

    // 2. One promotion vs update-ref + push, stepping env00 forward one
    // commit at a time. The baseline makes the same move with git on a
    // copy of the remote (the same refs, so the remote's connectivity check
    // walks as far for both: a commit some branch already points at would
    // be checked at once). Rounds alternate, pair by pair, so a machine that
    // slows down or speeds up during the run weighs on both alike.
    let copy = tmp.path().join("remote-copy.git");
    let work = tmp.path().join("baseline.git");
    for (from, to, how) in [(&remote, &copy, "--mirror"), (&copy, &work, "--bare")] {
        let cloned = Command::new("git")
            .args(["clone", "-q", how])
            .arg(from)
            .arg(to)
            .status()
            .unwrap();
        assert!(cloned.success());
    }
    let rounds = 30;
    let system = Principal::system();
    let mut ours = Vec::new();
    let mut after_change = Vec::new();
    let mut theirs = Vec::new();
    for i in 0..rounds {
        let target = git(&remote, &["rev-parse", &format!("{tip}~{}", 700 - 1 - i)]);
        let t = Instant::now();
        let r = ops::promote(
            &engine,
            &system,
            PromoteInput {
                environment: Some("env00".into()),
                commit: Some(target.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        ours.push(t.elapsed());
        assert_eq!(r[0].state, envline_api::RequestState::Done);
        let t = Instant::now();
        let _ = engine.views().pipeline().await.unwrap();
        after_change.push(t.elapsed());

        let old = git(&work, &["rev-parse", "env00"]);
        let t = Instant::now();
        git(&work, &["update-ref", "refs/heads/env00", &target, &old]);
        git(&work, &["push", "-q", "origin", "env00:refs/heads/env00"]);
        theirs.push(t.elapsed());
    }
    let (ours, theirs, after_change) = (median(ours), median(theirs), median(after_change));
    println!(
        "  envline after a change (an environment moved; median of {rounds}):        {:>10.2} ms  ({:.0}x faster)",
        after_change.as_secs_f64() * 1e3,
        status_cli.as_secs_f64() / after_change.as_secs_f64()
    );
    println!("one promotion (median of {rounds}):");
    println!(
        "  git update-ref + git push:                         {:>8.2} ms",
        theirs.as_secs_f64() * 1e3
    );
    println!(
        "  envline (gates + intent + CAS + push + audit row): {:>8.2} ms  ({:.2}x the baseline)",
        ours.as_secs_f64() * 1e3,
        ours.as_secs_f64() / theirs.as_secs_f64()
    );
}
