//! Figures for several replicas on one PostgreSQL (the README's "Running
//! several replicas"), each measured here, in one run:
//!
//! 1. promotions per second into 12 environments by 32 concurrent clients,
//!    and their p99 latency: one server on SQLite (the baseline), then 1
//!    replica and 3 on PostgreSQL;
//! 2. the time from killing the leader (SIGKILL) to auto-promotion having
//!    run again, median of 5;
//! 3. the time from a change on one replica to a live stream on another
//!    carrying it (what makes a browser there refetch), median of 20.
//!
//! Run: `make bench` (or `.ci/with-postgres cargo bench -p envline --bench replicas`).

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Api, TestServer, git_in};
use serde_json::json;

const ENVS: usize = 12;
const CLIENTS: usize = 32;
const COMMITS: usize = 100;

fn percentile(mut v: Vec<Duration>, p: f64) -> Duration {
    v.sort();
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// A remote with `COMMITS` commits on main, `ENVS` environments from main
/// at its first commit and qa; a server (not started) on it, on the
/// benchmark's PostgreSQL. Returns the commits, oldest first.
fn pipeline(on: Store) -> (TestServer, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let remote = dir.path().join("remote.git");
    let work = dir.path().join("work");
    git_in(
        dir.path(),
        &["init", "-q", "--bare", remote.to_str().unwrap()],
    );
    git_in(
        dir.path(),
        &["init", "-q", "-b", "main", work.to_str().unwrap()],
    );
    for i in 0..COMMITS {
        std::fs::write(work.join("version.txt"), format!("{i}\n")).unwrap();
        git_in(&work, &["add", "version.txt"]);
        git_in(&work, &["commit", "-q", "-m", &format!("release {i}")]);
    }
    git_in(&work, &["push", "-q", remote.to_str().unwrap(), "main"]);
    let commits: Vec<String> = git_in(&work, &["rev-list", "--reverse", "main"])
        .lines()
        .map(str::to_owned)
        .collect();
    let mut config = format!(
        "[repository]\nurl = \"{}\"\nroot = \"main\"\n\n[server]\ndata_dir = \"data\"\n",
        remote.display()
    );
    for i in 0..ENVS {
        git_in(
            &work,
            &[
                "push",
                "-q",
                remote.to_str().unwrap(),
                &format!("{}:refs/heads/env{i:02}", commits[0]),
            ],
        );
        config.push_str(&format!(
            "\n[[environment]]\nname = \"env{i:02}\"\nfrom = \"main\"\n"
        ));
    }
    // qa auto-promotes from main when the part asks (`ENVLINE_ENVIRONMENT_QA_AUTO_PROMOTE`).
    git_in(
        &work,
        &[
            "push",
            "-q",
            remote.to_str().unwrap(),
            &format!("{}:refs/heads/qa", commits[0]),
        ],
    );
    config.push_str("\n[[environment]]\nname = \"qa\"\nfrom = \"main\"\n");
    let file = dir.path().join("envline.toml");
    std::fs::write(&file, config).unwrap();
    let mut server = TestServer::on(dir, file, remote);
    if on == Store::Sqlite {
        // The baseline: one server on its SQLite file.
        let text = std::fs::read_to_string(&server.config).unwrap();
        let text = text.split("\n[database]").next().unwrap().to_owned();
        std::fs::write(&server.config, text).unwrap();
        server.database = None;
    }
    (server, commits)
}

/// Where a part's servers keep their state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Store {
    Sqlite,
    Postgres,
}

fn start(first: &mut TestServer, n: usize, env: &[(&str, &str)]) -> Vec<TestServer> {
    let mut others: Vec<TestServer> = (1..n).map(|_| first.replica()).collect();
    for r in std::iter::once(&mut *first).chain(others.iter_mut()) {
        r.extra_env
            .extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        r.log = Some(std::env::temp_dir().join("envline-bench-replicas.log"));
        r.start();
    }
    others
}

/// Part 1: `CLIENTS` clients promoting into `ENVS` environments, through `n` replicas.
async fn throughput(on: Store, n: usize) -> (f64, Duration, usize, usize) {
    let (mut first, commits) = pipeline(on);
    let token = first.user("pat", &["promoter"]);
    let others = start(&mut first, n, &[]);
    let apis: Arc<Vec<Api>> = Arc::new(
        std::iter::once(&first)
            .chain(others.iter())
            .map(Api::new)
            .collect(),
    );
    let commits = Arc::new(commits);
    // Each environment steps forward one commit at a time; concurrent
    // requests for one environment may arrive out of order, and a step
    // back is refused (409), as it should be.
    let next: Arc<Vec<AtomicUsize>> = Arc::new((0..ENVS).map(|_| AtomicUsize::new(1)).collect());
    let per_client = (COMMITS - 1) * ENVS / CLIENTS;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let (apis, commits, next, token) =
            (apis.clone(), commits.clone(), next.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            let mut done = Vec::new();
            let mut refused = 0;
            for k in 0..per_client {
                let env = (c + k * CLIENTS) % ENVS;
                let i = next[env].fetch_add(1, Ordering::SeqCst);
                let Some(commit) = commits.get(i) else {
                    continue;
                };
                let t = Instant::now();
                let (s, b) = apis[(c + k) % apis.len()]
                    .promote(
                        &token,
                        json!({"environment": format!("env{env:02}"), "commit": commit}),
                    )
                    .await;
                match s {
                    201 => done.push(t.elapsed()),
                    409 => refused += 1,
                    _ => panic!("{s} {b}"),
                }
            }
            (done, refused)
        }));
    }
    let mut latencies = Vec::new();
    let mut refused = 0;
    for t in tasks {
        let (d, r) = t.await.unwrap();
        latencies.extend(d);
        refused += r;
    }
    let elapsed = started.elapsed();
    let moved = latencies.len();
    (
        moved as f64 / elapsed.as_secs_f64(),
        percentile(latencies, 0.99),
        moved,
        refused,
    )
}

/// Which replica leads now.
async fn leader(replicas: &[&TestServer], token: &str) -> usize {
    loop {
        for (i, r) in replicas.iter().enumerate() {
            if r.child.is_some()
                && Api::new(r).get("/readyz", Some(token)).await.1["role"] == "leader"
            {
                return i;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Parts 2 and 3, on three replicas.
async fn failover_and_visibility() -> (Vec<Duration>, Vec<Duration>) {
    let (mut first, commits) = pipeline(Store::Postgres);
    let token = first.user("pat", &["promoter", "tester"]);
    let env = [
        ("ENVLINE_REPOSITORY_REFRESH_SECONDS", "1"),
        ("ENVLINE_ENVIRONMENT_QA_AUTO_PROMOTE", "true"),
    ];
    let mut others = start(&mut first, 3, &env);
    let work = first.dir.path().join("work");
    let remote = first.remote.clone();

    // 3. A change on one replica, heard on another's live stream.
    let mut seen = Vec::new();
    for round in 0..20 {
        let (a, b) = (&others[0], &others[1]);
        let mut stream = reqwest::Client::new()
            .get(b.url("/api/v1/events"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        let mut text = String::new();
        while !text.contains("event: hello") {
            text.push_str(&String::from_utf8_lossy(
                &stream.chunk().await.unwrap().unwrap(),
            ));
        }
        let t = Instant::now();
        let status = if round % 2 == 0 { "passed" } else { "failed" };
        let (s, body) = Api::new(a)
            .verify(&token, "env00", &commits[0], status)
            .await;
        assert_eq!(s, 201, "{body}");
        while !text.contains("event: change") {
            text.push_str(&String::from_utf8_lossy(
                &stream.chunk().await.unwrap().unwrap(),
            ));
        }
        seen.push(t.elapsed());
    }

    // 2. Kill the leader, push to main: how long until qa is there.
    let mut failovers = Vec::new();
    for round in 0..5 {
        let all: Vec<&TestServer> = std::iter::once(&first).chain(others.iter()).collect();
        let lead = leader(&all, &token).await;
        let killed = Instant::now();
        match lead {
            0 => first.stop(),
            i => others[i - 1].stop(),
        }
        std::fs::write(work.join("version.txt"), format!("failover {round}\n")).unwrap();
        git_in(
            &work,
            &["commit", "-q", "-am", &format!("failover {round}")],
        );
        git_in(&work, &["push", "-q", remote.to_str().unwrap(), "main"]);
        let main = git_in(&work, &["rev-parse", "HEAD"]);
        while first.remote_tip("qa") != main {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        failovers.push(killed.elapsed());
        match lead {
            0 => first.start(),
            i => others[i - 1].start(),
        }
    }
    (failovers, seen)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    if std::env::var("POSTGRES_TEST_URL").is_err() {
        eprintln!(
            "replicas need PostgreSQL: run `.ci/with-postgres cargo bench -p envline --bench replicas`"
        );
        std::process::exit(2);
    }
    println!("replicas on one PostgreSQL, {ENVS} environments, {CLIENTS} concurrent clients:");
    for (on, n) in [
        (Store::Sqlite, 1),
        (Store::Postgres, 1),
        (Store::Postgres, 3),
    ] {
        let (rate, p99, moved, refused) = throughput(on, n).await;
        let what = match on {
            Store::Sqlite => "1 server on SQLite (baseline)".to_owned(),
            Store::Postgres => {
                format!("{n} replica{} on PostgreSQL", if n == 1 { "" } else { "s" })
            }
        };
        println!(
            "  {what:<30} {rate:>6.1} promotions/s, p99 {:>7.1} ms ({moved} moved, {refused} refused as steps back)",
            p99.as_secs_f64() * 1e3
        );
    }
    let (failovers, seen) = failover_and_visibility().await;
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "  leader killed -> auto-promotion ran again: median {:.0} ms of 5 (all: {:?} ms)",
        ms(percentile(failovers.clone(), 0.5)),
        failovers
            .iter()
            .map(|d| ms(*d).round() as u64)
            .collect::<Vec<_>>()
    );
    println!(
        "  a change on one replica -> another's live stream: median {:.1} ms, p95 {:.1} ms (20 changes)",
        ms(percentile(seen.clone(), 0.5)),
        ms(percentile(seen, 0.95))
    );
}
