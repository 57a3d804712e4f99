//! Hotfix mode (S4) on a GitOps repository of 3,000 files and 3,000 commits,
//! 12 environments in a chain, production 100 commits behind main:
//!
//! - from *confirm* to every branch reset on the remote (`ops::start_hotfix`:
//!   cancel requests, journal, CAS, one atomic push, audit) vs the same refs
//!   pushed with one `git push --atomic --force-with-lease`;
//! - merging back the 100 commits of main since the fork (`ops::merge_back`:
//!   fetch, gix three-way tree merges one commit at a time, CAS, push, audit)
//!   vs `git rebase` (and `git rebase` + `git push`) on the same repository,
//!   in a work tree as a person runs it.
//!
//! Each round uses fresh copies of one remote; the figures are medians.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use envline_api::{HotfixInput, PromoteInput, RequestState};
use envline_engine::Engine;
use envline_engine::auth::Principal;
use envline_engine::ops;

use super::{config_for, git, median};
use crate::fast_import::FastImport;

const APPS: usize = 300;
const FILES_PER_APP: usize = 10;
const COMMITS: usize = 3_000;
const ENVS: usize = 12;
/// main's commits since production's: what merging back replays.
const REPLAYED: usize = 100;
const ROUNDS: usize = 3;
const INCIDENT: &str = "INC-1";

/// Runs a command in `dir` (a work tree); panics with its stderr when it fails.
fn run_in(dir: &Path, program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "Dev")
        .env("GIT_AUTHOR_EMAIL", "dev@example.com")
        .env("GIT_COMMITTER_NAME", "Dev")
        .env("GIT_COMMITTER_EMAIL", "dev@example.com")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A bare GitOps repository: `APPS` apps of `FILES_PER_APP` manifests each, a
/// base and an overlay per environment, then a line of image bumps.
fn make_gitops_repo(dir: &Path) {
    run_in(
        dir.parent().unwrap(),
        "git",
        &["init", "-q", "--bare", "-b", "main", dir.to_str().unwrap()],
    );
    let mut import = FastImport::start(dir);
    for i in 0..COMMITS {
        let msg = if i == 0 {
            "the GitOps repository".to_owned()
        } else {
            format!("app-{:03}: image 1.0.{i}", i % APPS)
        };
        let parents: &[usize] = if i == 0 { &[] } else { &[i] };
        import.commit(
            "main",
            i + 1,
            "Build Bot <bot@example.com>",
            1_600_000_000 + i,
            &msg,
            parents,
        );
        if i == 0 {
            import.file("base/service.yml", "timeout: 30s\n");
            for e in 0..ENVS {
                import.file(
                    &format!("envs/env{e:02}/settings.yml"),
                    &format!("region: r{e}\n"),
                );
            }
            for a in 0..APPS {
                for f in 0..FILES_PER_APP {
                    let name = if f == 0 {
                        "deployment.yml".to_owned()
                    } else {
                        format!("part-{f}.yml")
                    };
                    import.file(
                        &format!("apps/app-{a:03}/{name}"),
                        &format!(
                            "app: app-{a:03}\npart: {f}\nimage: ghcr.io/acme/app-{a:03}:1.0.0\nreplicas: 2\n"
                        ),
                    );
                }
            }
        } else {
            let a = i % APPS;
            import.file(
                &format!("apps/app-{a:03}/deployment.yml"),
                &format!(
                    "app: app-{a:03}\npart: 0\nimage: ghcr.io/acme/app-{a:03}:1.0.{i}\nreplicas: 2\n"
                ),
            );
        }
    }
    import.finish();
}

/// A copy of a bare repository (`cp -a`), so each measurement starts the same.
fn copy(from: &Path, to: &Path) {
    run_in(
        from.parent().unwrap(),
        "cp",
        &["-a", from.to_str().unwrap(), to.to_str().unwrap()],
    );
}

/// Where each environment is before the incident: env00 at main, then a few
/// commits further back each, production (env11) `REPLAYED` behind main.
fn place_environments(remote: &Path) {
    let tip = git(remote, &["rev-parse", "main"]);
    for i in 0..ENVS {
        let back = REPLAYED * i / (ENVS - 1);
        git(
            remote,
            &[
                "update-ref",
                &format!("refs/heads/env{i:02}"),
                &format!("{tip}~{back}"),
            ],
        );
    }
}

/// The fix, pushed by a developer to the hotfix branch.
fn push_fix(remote: &Path, work: &Path) -> String {
    run_in(
        remote.parent().unwrap(),
        "git",
        &[
            "clone",
            "-q",
            "-b",
            &format!("hotfix/{INCIDENT}"),
            remote.to_str().unwrap(),
            work.to_str().unwrap(),
        ],
    );
    std::fs::write(work.join("base/service.yml"), "timeout: 90s\n").unwrap();
    run_in(
        work,
        "git",
        &["commit", "-qam", "fix: raise the checkout timeout"],
    );
    run_in(work, "git", &["push", "-q", "origin", "HEAD"]);
    git(remote, &["rev-parse", &format!("hotfix/{INCIDENT}")])
}

/// One round: (start, baseline push, merge back, git rebase, git rebase + push).
async fn round(dir: &Path, template: &Path) -> [Duration; 5] {
    std::fs::create_dir_all(dir).unwrap();
    let remote = dir.join("remote.git");
    copy(template, &remote);
    let envs: Vec<(String, String)> = (0..ENVS)
        .map(|i| {
            let from = if i == 0 {
                "main".to_owned()
            } else {
                format!("env{:02}", i - 1)
            };
            (format!("env{i:02}"), from)
        })
        .collect();
    let production = format!("env{:02}", ENVS - 1);
    let fork = git(&remote, &["rev-parse", &production]);

    // The baseline start: the same ref updates, one atomic push from a clone.
    let baseline_remote = dir.join("baseline-remote.git");
    copy(template, &baseline_remote);
    let clone = dir.join("baseline-clone.git");
    run_in(
        dir,
        "git",
        &[
            "clone",
            "-q",
            "--bare",
            baseline_remote.to_str().unwrap(),
            clone.to_str().unwrap(),
        ],
    );
    let mut args = vec!["push".to_owned(), "-q".into(), "--atomic".into()];
    let mut refspecs = vec![format!("{fork}:refs/heads/hotfix/{INCIDENT}")];
    for (name, _) in envs.iter().filter(|(n, _)| *n != production) {
        let old = git(&clone, &["rev-parse", name]);
        args.push(format!("--force-with-lease=refs/heads/{name}:{old}"));
        refspecs.push(format!("+{fork}:refs/heads/{name}"));
    }
    args.push("origin".into());
    args.extend(refspecs);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let t = Instant::now();
    git(&clone, &args);
    let baseline_start = t.elapsed();

    // Envline: confirm → every branch reset on the remote.
    // Hotfix mode starts from production (protected): the last environment.
    let engine = Engine::start(config_for(dir, &remote, &envs, &[production.as_str()]))
        .await
        .unwrap();
    let system = Principal::system();
    let t = Instant::now();
    ops::start_hotfix(
        &engine,
        &system,
        HotfixInput {
            incident: INCIDENT.into(),
            from: production.clone(),
            reason: Some("checkout times out".into()),
            keep: Vec::new(),
        },
    )
    .await
    .unwrap();
    let start = t.elapsed();
    for (name, _) in &envs {
        assert_eq!(git(&remote, &["rev-parse", name]), fork, "{name} reset");
    }

    // The fix through every environment, then resolved.
    let fix = push_fix(&remote, &dir.join("fix"));
    engine.refresh().await.unwrap();
    for (name, _) in &envs {
        let done = ops::promote(
            &engine,
            &system,
            PromoteInput {
                environment: Some(name.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(done[0].state, RequestState::Done);
    }
    assert_eq!(git(&remote, &["rev-parse", &production]), fix);
    ops::resolve_hotfix(&engine, &system, INCIDENT)
        .await
        .unwrap();

    // The baseline merge back: a person's rebase in a work tree of the same repository.
    let rebase_remote = dir.join("rebase-remote.git");
    copy(&remote, &rebase_remote);
    let work = dir.join("rebase");
    run_in(
        dir,
        "git",
        &[
            "clone",
            "-q",
            "-b",
            "main",
            rebase_remote.to_str().unwrap(),
            work.to_str().unwrap(),
        ],
    );
    let t = Instant::now();
    run_in(
        &work,
        "git",
        &["rebase", "-q", &format!("origin/hotfix/{INCIDENT}")],
    );
    let rebase = t.elapsed();
    run_in(
        &work,
        "git",
        &["push", "-q", "--force-with-lease", "origin", "main"],
    );
    let rebase_push = t.elapsed();

    // Envline's merge back.
    let t = Instant::now();
    ops::merge_back(&engine, &system, INCIDENT).await.unwrap();
    let merge_back = t.elapsed();
    let main = git(&remote, &["rev-parse", "main"]);
    let line = git(
        &remote,
        &[
            "rev-list",
            "--count",
            "--first-parent",
            &format!("{fix}..{main}"),
        ],
    );
    assert_eq!(
        line,
        REPLAYED.to_string(),
        "every commit replayed on the fix"
    );
    assert_eq!(
        git(
            &remote,
            &[
                "rev-list",
                "--count",
                "--merges",
                &format!("{fork}..{main}")
            ]
        ),
        "0"
    );
    assert_eq!(
        git(&remote, &["rev-parse", "main^{tree}"]),
        git(&rebase_remote, &["rev-parse", "main^{tree}"]),
        "the same tree as git rebase"
    );
    [start, baseline_start, merge_back, rebase, rebase_push]
}

/// Prints the hotfix figures.
pub async fn run() {
    let tmp = tempfile::tempdir().unwrap();
    let template = tmp.path().join("template.git");
    eprintln!(
        "bench: writing a GitOps repository of {} files and {COMMITS} commits …",
        APPS * FILES_PER_APP + ENVS + 1
    );
    make_gitops_repo(&template);
    place_environments(&template);
    let mut figures: [Vec<Duration>; 5] = Default::default();
    for r in 0..ROUNDS {
        let measured = round(&tmp.path().join(format!("round-{r}")), &template).await;
        for (all, one) in figures.iter_mut().zip(measured) {
            all.push(one);
        }
    }
    let [start, baseline_start, merge_back, rebase, rebase_push] = figures.map(median);
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "hotfix mode, {} files, {ENVS} environments (median of {ROUNDS}):",
        APPS * FILES_PER_APP + ENVS + 1
    );
    println!(
        "  git push --atomic of the same resets:                        {:>8.2} ms",
        ms(baseline_start)
    );
    println!(
        "  envline start, confirm to every branch reset on the remote:  {:>8.2} ms  ({:.2}x the baseline)",
        ms(start),
        ms(start) / ms(baseline_start)
    );
    println!(
        "  git rebase of {REPLAYED} commits onto the fix:                       {:>8.2} ms",
        ms(rebase)
    );
    println!(
        "  git rebase + git push:                                       {:>8.2} ms",
        ms(rebase_push)
    );
    println!(
        "  envline merge back (fetch, replay, CAS, push, audit):        {:>8.2} ms  ({:.2}x git rebase, {:.2}x rebase + push)",
        ms(merge_back),
        ms(merge_back) / ms(rebase),
        ms(merge_back) / ms(rebase_push)
    );
}
